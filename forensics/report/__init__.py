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

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from forensics.report.context import DEFAULT_WINDOW_NS, Context, ContextRequest, load_context, local_dt
from forensics.report.params import ReportParams
from forensics.store import Store

__all__ = ["build_report", "ReportResult", "DEFAULT_WINDOW_NS", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
MAX_EVENT_FIGURES = ReportParams().max_event_figures   # the default; its reason is in ReportParams


@dataclass
class ReportResult:
    """What :func:`build_report` wrote: the folder, the JSON document, and file paths by role
    (``md``, ``html``, ``json``, ``depth``, ``heatmap-1``, ``attribution-1``, ``vacuum-1``...)."""

    out_dir: Path
    json: dict
    paths: dict[str, Path] = field(default_factory=dict)


def parameters_json(store: Store, ctx: Context) -> dict:
    """report.json's ``parameters``: the stored runs of the events shown (run id, command, start,
    version, window, instruments and every parameter section; ``forensics params --run ID``
    writes them as a --params file) and the report's own :class:`ReportParams`."""
    from forensics.runs import runs_of
    ids = ctx.events["run_id"].to_list() if "run_id" in ctx.events.columns else []
    return {"runs": runs_of(store, ids), "events_without_run": sum(1 for r in ids if r is None)
            + (0 if "run_id" in ctx.events.columns else ctx.events.height), "report": asdict(ctx.report)}


# ---- the public entry point ----------------------------------------------------------------------

def default_out_dir(ctx: Context, root: str | Path = "reports") -> Path:
    ref = ctx.at if ctx.at is not None else ctx.ts_from
    stamp = local_dt(ref, ctx.tz).strftime("%Y%m%d-%H%M")
    suffix = "" if ctx.at is not None else "-" + local_dt(ctx.ts_to, ctx.tz).strftime("%Y%m%d-%H%M")
    return Path(root) / f"{ctx.exchange}-{ctx.symbol}-{stamp}{suffix}"


def build_report(store: Store | str | Path | None, exchange: str | None = None, symbol: str | None = None,
                 at=None, ts_from=None, ts_to=None, tz: str = "UTC", window_ns: int = DEFAULT_WINDOW_NS,
                 out_dir: str | Path | None = None, *, every_ns: int | None = None, bands=None,
                 params=None, compute: bool = True, max_event_figures: int | None = None,
                 interactive: bool = True, report_params: ReportParams | None = None) -> ReportResult:
    """Write an annotated incident report and return it.

    ``at`` (a report centred on that time, ``window_ns`` wide) or ``ts_from``/``ts_to`` (every
    detected event in the range). Times are UTC ns ints, datetimes, or strings (ISO-8601; without
    an offset read in ``tz``). ``tz`` is also the timezone of every time shown. ``every_ns`` and
    ``bands`` are passed to ``forensics.book.compute_depth`` when the store has no depth for the
    window; ``params`` to ``forensics.detect.detect`` when it has no events. ``compute=False``
    uses only what the store holds. ``interactive=False`` leaves the Plotly charts (and the
    ~5 MB plotly.js) out of report.html. ``report_params`` (:class:`ReportParams`): the
    report's margins and wording thresholds; ``max_event_figures`` overrides its own.
    report.json's ``parameters`` carries the recorded run(s) of the events it shows
    (:mod:`forensics.runs`: the parameters that reproduce them) and the report's own.
    """
    from forensics.report import article, figures, narrative, render

    store = store if isinstance(store, Store) else Store(store)
    rp = report_params or ReportParams()
    if max_event_figures is not None:
        rp = replace(rp, max_event_figures=max_event_figures)
    ctx = load_context(store, ContextRequest(exchange=exchange, symbol=symbol, at=at, ts_from=ts_from, ts_to=ts_to,
                                             tz=tz, window_ns=window_ns, every_ns=every_ns, bands=bands,
                                             params=params, compute=compute, report=rp))
    out = Path(out_dir) if out_dir else default_out_dir(ctx)
    out.mkdir(parents=True, exist_ok=True)
    con = store.connect()
    try:
        doc = narrative.compose(ctx, con, max_event_figures=rp.max_event_figures)
        doc["json"]["parameters"] = parameters_json(store, ctx)
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
