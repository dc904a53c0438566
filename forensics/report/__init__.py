"""Annotated incident reports: the "05:13 analysis" as a folder of md + html + json + PNGs.

:func:`build_report` gathers what one instrument's store holds around a moment (or over a
range): depth on a grid, top of book, trades, level changes (traded vs cancelled) and the
detector's events, computing whatever is missing (``forensics.book.compute_depth``,
``forensics.attribution``, ``forensics.detect.detect``) so it works on a freshly ingested
store. Every number in the report is the result of a SQL snippet run against the store's
views (``forensics sql``), kept next to the number in ``report.json``; the detector's
figures are copied verbatim.

Layout of the output folder (default ``reports/<exchange>-<symbol>-<local time>/``)::

    report.md    report.html (self-contained)    report.json
    depth.png    heatmap-<n>.png    attribution-<n>.png    vacuum-<n>.png
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from forensics.report.context import DEFAULT_WINDOW_NS, Context, ContextRequest, load_context, local_dt
from forensics.store import Store

__all__ = ["build_report", "ReportResult", "DEFAULT_WINDOW_NS", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
MAX_EVENT_FIGURES = 6                 # events that get their own heatmap/attribution/vacuum PNGs


@dataclass
class ReportResult:
    """What :func:`build_report` wrote: the folder, the JSON document, and file paths by role
    (``md``, ``html``, ``json``, ``depth``, ``heatmap-1``, ``attribution-1``, ``vacuum-1``...)."""

    out_dir: Path
    json: dict
    paths: dict[str, Path] = field(default_factory=dict)


# ---- the public entry point ----------------------------------------------------------------------

def default_out_dir(ctx: Context, root: str | Path = "reports") -> Path:
    ref = ctx.at if ctx.at is not None else ctx.ts_from
    stamp = local_dt(ref, ctx.tz).strftime("%Y%m%d-%H%M")
    suffix = "" if ctx.at is not None else "-" + local_dt(ctx.ts_to, ctx.tz).strftime("%Y%m%d-%H%M")
    return Path(root) / f"{ctx.exchange}-{ctx.symbol}-{stamp}{suffix}"


def build_report(store: Store | str | Path | None, exchange: str | None = None, symbol: str | None = None,
                 at=None, ts_from=None, ts_to=None, tz: str = "UTC", window_ns: int = DEFAULT_WINDOW_NS,
                 out_dir: str | Path | None = None, *, every_ns: int | None = None, bands=None,
                 params=None, compute: bool = True,
                 max_event_figures: int = MAX_EVENT_FIGURES, interactive: bool = True) -> ReportResult:
    """Write an annotated incident report and return it.

    ``at`` (a report centred on that time, ``window_ns`` wide) or ``ts_from``/``ts_to`` (every
    detected event in the range). Times are UTC ns ints, datetimes, or strings (ISO-8601; without
    an offset read in ``tz``). ``tz`` is also the timezone of every time shown. ``every_ns`` and
    ``bands`` are passed to ``forensics.book.compute_depth`` when the store has no depth for the
    window; ``params`` to ``forensics.detect.detect`` when it has no events. ``compute=False``
    uses only what the store holds. ``interactive=False`` leaves the Plotly charts (and the
    ~5 MB plotly.js) out of report.html.
    """
    from forensics.report import article, figures, narrative, render

    store = store if isinstance(store, Store) else Store(store)
    ctx = load_context(store, ContextRequest(exchange=exchange, symbol=symbol, at=at, ts_from=ts_from, ts_to=ts_to,
                                             tz=tz, window_ns=window_ns, every_ns=every_ns, bands=bands,
                                             params=params, compute=compute))
    out = Path(out_dir) if out_dir else default_out_dir(ctx)
    out.mkdir(parents=True, exist_ok=True)
    con = store.connect()
    try:
        doc = narrative.compose(ctx, con, max_event_figures=max_event_figures)
        article.extend(ctx, con, doc)        # issue 18: regime, precursors, vacuum curve, maker stress
    finally:
        con.close()
    paths = figures.draw_all(ctx, doc, out)
    paths.update(article.draw(ctx, doc, out))   # issue 18
    if interactive:
        from forensics.report import interactive as ix
        doc["interactive"], caps = ix.html_fragment(ctx, doc)
        doc["json"]["interactive"] = {"library": "plotly.js (inlined)", "charts": caps}
    paths.update(render.write_all(ctx, doc, out, paths))
    return ReportResult(out_dir=out, json=doc["json"], paths=paths)
