"""The report's PNGs (matplotlib, Agg, no pyplot state): publication style, labelled axes with
units, every time axis in the analyst's timezone.

1. ``depth.png``: ask depth above the zero line, bid depth mirrored below, nested per band,
   price on a second axis, a red line and a short annotation at each event.
2. ``heatmap-<n>.png``: resting size per price level around the event, mid and trades overlaid
   (drawn by ``forensics.heatmap``; unavailable for band-only data).
3. ``attribution-<n>.png``: depth removed per time bucket and side, traded vs cancelled.
4. ``vacuum-<n>.png``: price, spread and price impact per unit volume before vs after.

:func:`draw_all` writes them and records title, caption, size and the plotted numbers in
``doc["json"]["figures"]``.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import polars as pl
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter

from forensics.report.fmt import duration, pct
from forensics.report.metrics import vacuum_windows
from forensics.timeutil import NS_PER_MS, NS_PER_S, tzinfo
from forensics.vocab import DataKind, label_short

DPI = 150
SIZES = {"depth": (12.0, 6.4), "heatmap": (12.0, 5.6), "attribution": (12.0, 4.8), "vacuum": (12.0, 4.2)}
RED = "#d62728"
TRADED = "#c0392b"
CANCELLED = "#7f8c8d"
ADDED = "#1f77b4"
UNKNOWN = "#8e7cc3"       # removed, cause unknown (no trades)
FLAGGED = "#b0b0b0"       # hatch over bands flagged by the data-quality checks
ASK_CMAP, BID_CMAP = "Greys", "Blues"
NS_PER_DAY = 86_400 * NS_PER_S
BUCKETS_MS = (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000)

STYLE = {
    "font.family": "DejaVu Sans", "font.size": 9.5, "axes.titlesize": 11, "axes.titleweight": "bold",
    "axes.titlelocation": "left", "axes.labelsize": 9.5, "axes.spines.top": False, "axes.spines.right": False,
    "axes.edgecolor": "#333333", "axes.grid": True, "grid.color": "#e4e4e4", "grid.linewidth": 0.6,
    "axes.axisbelow": True, "legend.frameon": False, "legend.fontsize": 8.5, "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5, "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
}


def px_size(kind: str) -> tuple[int, int]:
    w, h = SIZES[kind]
    return int(round(w * DPI)), int(round(h * DPI))


def _fig(kind: str, **kw) -> Figure:
    return Figure(figsize=SIZES[kind], dpi=DPI, layout="constrained", **kw)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": "forensics report"})
    return path


def xnum(ns) -> np.ndarray:
    """UTC ns -> matplotlib date numbers (days since 1970-01-01)."""
    return np.asarray(ns, dtype=np.float64) / NS_PER_DAY


def time_axis(ax, ctx, span_ns: int, label: bool = True, maxticks: int = 9) -> None:
    """Ticks and label in the analyst's timezone, resolution chosen from the span shown."""
    tz = tzinfo(ctx.tz)
    if span_ns <= 6 * NS_PER_S:
        fmt, ms = "%H:%M:%S", True
    elif span_ns <= 3 * 60 * NS_PER_S:
        fmt, ms = "%H:%M:%S", False
    else:
        fmt, ms = "%H:%M", False

    def f(x, _pos=None):
        t = mdates.num2date(x, tz)
        s = t.strftime(fmt)
        return s + f".{t.microsecond // 1000:03d}" if ms else s

    ax.xaxis.set_major_locator(FixedLocator(_ticks(ax, ctx, maxticks)))
    ax.xaxis.set_major_formatter(FuncFormatter(f))
    if label:
        from forensics.report.context import tz_offset_label
        ref = ctx.at if ctx.at is not None else ctx.ts_from
        name = ctx.tz if ctx.tz.upper() not in ("UTC", "Z") else "UTC"
        off = tz_offset_label(ctx.tz, ref)
        ax.set_xlabel(f"Time ({name}{', ' + off if off != name else ''})")


TICK_STEPS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800,
                3600, 7200, 10800, 21600, 43200, 86400)


def _ticks(ax, ctx, maxticks: int) -> list[float]:
    """Round local times (multiples of a nice step in the analyst's timezone) inside the view."""
    x0, x1 = ax.get_xlim()
    lo, hi = x0 * 86400.0, x1 * 86400.0                      # epoch seconds
    mid = int((lo + hi) / 2 * NS_PER_S)
    off = local_offset_s(ctx.tz, mid)
    step = next((st for st in TICK_STEPS_S if (hi - lo) / st <= maxticks), TICK_STEPS_S[-1])
    first = math.ceil((lo + off) / step - 1e-9) * step - off
    n = int((hi - first) / step + 1e-9) + 1
    return [(first + i * step) / 86400.0 for i in range(max(n, 0))]


def local_offset_s(tz: str, ns: int) -> float:
    import datetime as dt
    t = dt.datetime.fromtimestamp(ns // NS_PER_S, tz=dt.timezone.utc).astimezone(tzinfo(tz))
    return (t.utcoffset() or dt.timedelta(0)).total_seconds()


def _halo(lw=2.5):
    return [patheffects.withStroke(linewidth=lw, foreground="white")]


def _shade_gaps(ax, ctx, lo, hi):
    for g in ctx.gaps.iter_rows(named=True):
        a, b = g["ts_from"], g.get("ts_to") or hi
        if b >= lo and a <= hi:
            ax.axvspan(xnum(max(a, lo)), xnum(min(b, hi)), facecolor="#f2f2f2", edgecolor="#bbbbbb",
                       hatch="///", lw=0, zorder=0.5)


# ---- 1. depth over time -----------------------------------------------------------------------

def _pivot(d: pl.DataFrame, side: str, bands: list[float], ts: pl.Series) -> dict[float, np.ndarray]:
    s = d.filter(pl.col("side") == side)
    out = {}
    base = pl.DataFrame({"ts": ts})
    for b in bands:
        col = base.join(s.filter(pl.col("band_pct") == b).select("ts", "qty"), on="ts", how="left")["qty"]
        out[b] = col.cast(pl.Float64).fill_null(float("nan")).to_numpy()
    return out


def depth_figure(ctx, doc, path: Path) -> dict:
    fig = _fig("depth")
    ax = fig.add_subplot()
    lo, hi = ctx.ts_from, ctx.ts_to
    bands = sorted(ctx.bands, reverse=True)          # widest first, narrower drawn on top
    handles, ymax = _draw_depth_bands(ax, ctx, bands)
    ax.set_xlim(xnum(lo), xnum(hi))
    _shade_gaps(ax, ctx, lo, hi)
    ax.text(0.006, 0.985, "ASKS ▲", transform=ax.transAxes, va="top", ha="left", fontsize=8.5,
            color="#555555", weight="bold", path_effects=_halo())
    ax.text(0.006, 0.015, "BIDS ▼", transform=ax.transAxes, va="bottom", ha="left", fontsize=8.5,
            color="#1f4e79", weight="bold", path_effects=_halo())

    flagged = _hatch_flags(ax, ctx, lo, hi, ymax)
    if flagged:
        handles.append(Patch(facecolor="none", edgecolor=FLAGGED, hatch="xxx", label="flagged band (data quality)"))
    src, price_label, has_price = _draw_price_line(ax, ctx, lo, hi, handles)
    events = doc["events"]
    anns = _mark_events(ax, events, lo, hi, ymax)
    if events:
        handles.append(Line2D([], [], color=RED, lw=1.4, label="detected event (numbered as in the text)"))
    time_axis(ax, ctx, hi - lo)
    kind = "levels, rebuilt from L2 updates" if ctx.data_kind == DataKind.BOOK else "band-only (depth_bands)"
    ax.set_title(f"{ctx.symbol} · {ctx.exchange}: resting depth within each band of mid")
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8)
    fig.text(0.995, 0.995, f"data: {kind}", ha="right", va="top", fontsize=7.5, color="#777777")
    _save(fig, path)
    price_note = (f"Orange: {price_label.lower()} (right axis)." if has_price
                  else "No price line: the window has neither top of book, trades nor band prices.")
    return {"title": "Depth over time",
            "caption": (f"Resting depth within {', '.join(f'{b:g}%' for b in sorted(bands))} of mid "
                        f"({ctx.base}): asks shaded above the zero line, bids mirrored below; narrower bands "
                        f"darker. {price_note} Red lines: detected events."
                        + (" Cross-hatched: a band over a span the data-quality checks flagged (see the caveats)."
                           if flagged else "")),
            "annotations": anns, "bands_pct": sorted(bands), "price_line": src if has_price else None,
            "flagged": flagged}


def _draw_depth_bands(ax, ctx, bands: list[float]) -> tuple[list, float]:
    """Asks above the zero line, bids mirrored below, one shade per band (narrower darker);
    returns the legend handles and the half-height of the y axis."""
    d = ctx.depth
    ts = d["ts"].unique().sort()
    x = xnum(ts.to_numpy())
    asks, bids = _pivot(d, "ask", bands, ts), _pivot(d, "bid", bands, ts)
    n = max(len(bands), 1)
    ac = matplotlib.colormaps[ASK_CMAP](np.linspace(0.22, 0.62, n))
    bc = matplotlib.colormaps[BID_CMAP](np.linspace(0.30, 0.85, n))
    handles = []
    for i, b in enumerate(bands):
        ax.fill_between(x, 0, asks[b], color=ac[i], lw=0, step="post", zorder=2)
        ax.fill_between(x, 0, -bids[b], color=bc[i], lw=0, step="post", zorder=2)
    for i, b in enumerate(reversed(bands)):
        j = len(bands) - 1 - i
        handles.append(Patch(facecolor=ac[j], label=f"asks ≤{b:g}%"))
    for i, b in enumerate(reversed(bands)):
        j = len(bands) - 1 - i
        handles.append(Patch(facecolor=bc[j], label=f"bids ≤{b:g}%"))
    vals = [np.nanmax(v) for v in list(asks.values()) + list(bids.values()) if np.isfinite(v).any()]
    ymax = (max(vals) if vals else 1.0) * 1.12
    ax.set_ylim(-ymax, ymax)
    ax.axhline(0, color="#222222", lw=0.8, zorder=3)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{abs(v):,.0f}"))
    ax.set_ylabel(f"Resting depth ({ctx.base}) — asks above, bids below")
    return handles, ymax


def _draw_price_line(ax, ctx, lo: int, hi: int, handles: list) -> tuple[str, str, bool]:
    """The price line on a right axis (none when there is no price); returns (source, label,
    drawn) and adds its legend handle."""
    p = ctx.price.filter((pl.col("ts") >= lo) & (pl.col("ts") <= hi))
    src = getattr(ctx, "price_source", "") or ("mid" if ctx.data_kind == DataKind.BOOK and ctx.top.height else "last trade")
    price_label = {"mid": "Mid price", "last trade": "Last trade price",
                   "band mid proxy": "Mid proxy (narrowest bands' notional/qty)"}.get(src, "Price")
    if p.height:  # no price axis, no legend entry, when there is no price to draw
        ax2 = ax.twinx()
        ax2.grid(False)
        ax2.spines["right"].set_visible(True)
        ax2.plot(xnum(p["ts"].to_numpy()), p["price"].to_numpy(), color="#e67e22", lw=1.1, zorder=4,
                 path_effects=_halo(2.2))
        pr = p["price"].drop_nulls()
        span = float(pr.max() - pr.min()) or float(pr.max()) * 0.001
        ax2.set_ylim(float(pr.min()) - 0.9 * span, float(pr.max()) + 0.9 * span)
        ax2.set_ylabel(f"{price_label} ({ctx.quote})")
        ax2.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
        handles.append(Line2D([], [], color="#e67e22", lw=1.4, label=f"{price_label.lower()} (right axis)"))
    return src, price_label, p.height > 0


def _mark_events(ax, events: list[dict], lo: int, hi: int, ymax: float) -> list[dict]:
    """A red line per event: full annotations for the headline event and, when there are few,
    for all; others get their number. Returns what was annotated."""
    anns = []
    full = {pe["n"] for pe in events if pe["primary"] or len(events) <= 3}
    k = 0
    for pe in events:
        ev = pe["event"]
        xs = xnum(ev["start_ts"])
        strong = pe["n"] in full
        ax.axvline(xs, color=RED, lw=1.6 if strong else 0.9, alpha=1.0 if strong else 0.55, zorder=5)
        right = (ev["start_ts"] - lo) > 0.72 * (hi - lo)
        if strong:
            txt = f"{pe['n']}. {label_short(ev.get('label'), ev.get('label') or '')}\n{pe['annotation']}"
            y = (0.97, 0.74, 0.51)[k % 3] * ymax
            k += 1
            ax.annotate(txt, xy=(xs, y), xytext=(-6 if right else 6, 0), textcoords="offset points",
                        ha="right" if right else "left", va="top", fontsize=8.5, color=RED, zorder=6,
                        bbox=dict(boxstyle="round,pad=0.3", fc="white", ec=RED, lw=0.6, alpha=0.92))
        else:
            ax.annotate(str(pe["n"]), xy=(xs, -0.985 * ymax), xytext=(3, 0), textcoords="offset points",
                        ha="left", va="bottom", fontsize=8, color=RED, zorder=6,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
        anns.append({"event_id": ev["event_id"], "x": ev["start_ts"], "text": pe["annotation"],
                     "shown": "full" if strong else "number"})
    return anns


def _hatch_flags(ax, ctx, lo: int, hi: int, ymax: float) -> list[dict]:
    """Cross-hatch (greyed) each flagged band over the flagged span, on its side of the zero line."""
    flags = getattr(ctx, "flags", None)
    out = []
    if flags is None or flags.height == 0:
        return out
    for f in flags.iter_rows(named=True):
        if f.get("band_pct") is None or f.get("first_ts") is None or f.get("last_ts") is None:
            continue
        a, b = max(int(f["first_ts"]), lo), min(int(f["last_ts"]), hi)
        if b < a:
            continue
        b = max(b, a + (ctx.grid_ns or NS_PER_S))
        d = ctx.depth.filter((pl.col("side") == f["side"]) & (pl.col("band_pct") == f["band_pct"])
                             & (pl.col("ts") >= a) & (pl.col("ts") <= b))
        top = float(d["qty"].max() or 0) or ymax * 0.3
        y0, y1 = (0.0, top) if f["side"] == "ask" else (-top, 0.0)
        ax.fill_between([xnum(a), xnum(b)], [y0, y0], [y1, y1], facecolor=(1, 1, 1, 0.45), edgecolor=FLAGGED,
                        hatch="xxx", lw=0, zorder=2.5)
        out.append({"kind": f["kind"], "side": f["side"], "band_pct": f["band_pct"], "from": a, "to": b})
    return out


# ---- 2. heatmap ---------------------------------------------------------------------------------

def zoom_range(ev: dict, ctx, min_half_ns: int = 10 * NS_PER_S) -> tuple[int, int]:
    dur = int(ev["end_ts"]) - int(ev["start_ts"])
    half = min(max(min_half_ns, 6 * dur), 10 * 60 * NS_PER_S)
    return int(ev["start_ts"]) - half, int(ev["end_ts"]) + half


def heatmap_figure(ctx, pe, path: Path) -> dict:
    """Drawn by forensics.heatmap (compute_heatmap + draw_heatmap: resting size per price bucket,
    mid and trades); 'unavailable' with the reason for band-only data or when it cannot be drawn."""
    from forensics.errors import ForensicsError
    from forensics import heatmap as hm
    if ctx.data_kind != DataKind.BOOK:
        return {"unavailable": "band-only data has no per-level prices, so no liquidity heatmap can be drawn."}
    ev = pe["event"]
    lo, hi = zoom_range(ev, ctx, 30 * NS_PER_S)
    try:
        data = hm.compute_heatmap(ctx.store, ctx.exchange, ctx.symbol, lo, hi, rows=300)
    except ForensicsError as exc:
        return {"unavailable": f"the heatmap could not be computed ({exc})."}
    except Exception as exc:  # an illustration must never cost the report
        return {"unavailable": f"the heatmap could not be computed ({type(exc).__name__}: {exc})."}
    if data.times.size == 0:
        return {"unavailable": "no book in the heatmap window."}
    fig = _fig("heatmap")
    ax = fig.add_subplot()
    hm.draw_heatmap(ax, data, tz=ctx.tz, title=f"Event {pe['n']}: resting liquidity by price level around "
                                                 f"{clock_short(ev, ctx)}")
    for e in ctx.events.iter_rows(named=True):
        if lo <= e["start_ts"] <= hi:
            ax.axvline(xnum(e["start_ts"]), color="#ff5252", lw=1.3, ls="--", zorder=6)
    ax.set_xlim(xnum(lo), xnum(hi))
    time_axis(ax, ctx, hi - lo)
    ax.set_ylabel(f"Price ({ctx.quote})")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"))
    ax.grid(False)
    leg = ax.get_legend()
    if leg is not None:  # readable on the dark background whatever the rc style
        leg.set_frame_on(True)
        leg.get_frame().set_facecolor("white")
        leg.get_frame().set_alpha(0.85)
    _save(fig, path)
    bucket = data.bucket / 10.0 ** data.price_decimals
    return {"title": f"Liquidity heatmap, event {pe['n']}",
            "caption": (f"Resting size (bids + asks, {ctx.base}, log colour) per {bucket:g} {ctx.quote} price bucket "
                        f"and {_fmt_bucket(data.every_ns)} column; mid price line; trades as dots (green: buys, "
                        "red: sells; area ~ size); dashed red: event start; hatched: book unknown."),
            "window": [lo, hi], "column_ms": data.every_ns / NS_PER_MS, "price_bucket": bucket,
            "price_range": [float(data.price_edges[0]), float(data.price_edges[-1])]}


def clock_short(ev, ctx) -> str:
    from forensics.report.fmt import clock
    return clock(int(ev["start_ts"]), ctx.tz)


# ---- 3. attribution -----------------------------------------------------------------------------

def _bucket_ns(span_ns: int, target: int = 60) -> int:
    for ms in BUCKETS_MS:
        if span_ns / (ms * NS_PER_MS) <= target:
            return ms * NS_PER_MS
    return BUCKETS_MS[-1] * NS_PER_MS


def attribution_buckets(ctx, lo: int, hi: int, bucket: int, band: float | None = None) -> pl.DataFrame:
    """Per interval and side: size removed that traded vs was cancelled, and size added (in the
    asset). Each row covers [ts, ts_end).

    Level data: level_changes.traded / cancelled per ``bucket`` (aligned to multiples of it).
    Band-only data: one row per pair of consecutive band samples, covering [previous sample,
    sample] exactly as the detector's window does (so a fall between two samples sits under the
    event's shading): the band's decrease, split into traded volume on that side (sells hit bids,
    buys lift asks) between the two samples and the rest (inferred cancellation). ``removed`` is
    traded + cancelled; without trades in the store only ``removed`` is known (traded and
    cancelled are null)."""
    schema = {"ts": pl.Int64, "ts_end": pl.Int64, "side": pl.Utf8, "traded": pl.Float64, "cancelled": pl.Float64,
              "removed": pl.Float64, "added": pl.Float64}
    known = getattr(ctx, "trades_known", True)
    if ctx.data_kind == DataKind.BOOK:
        if ctx.changes is None:
            return pl.DataFrame(schema=schema)
        c = ctx.changes.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
        out = (c.group_by((pl.col("ts") // bucket * bucket).alias("ts"), "side")
               .agg(pl.col("traded").sum(), pl.col("cancelled").sum(), pl.col("added").sum())
               .with_columns(ts_end=pl.col("ts") + bucket, removed=pl.col("traded") + pl.col("cancelled")))
    else:
        band = band if band is not None else (max(ctx.bands) if ctx.bands else None)
        d = (ctx.depth.filter((pl.col("band_pct") == band) & (pl.col("ts") >= lo - bucket) & (pl.col("ts") <= hi))
             .sort("side", "ts"))
        rem = d.with_columns(prev=pl.col("ts").shift(1).over("side"), dq=pl.col("qty").diff().over("side")).filter(
            pl.col("prev").is_not_null()).select(
            pl.col("prev").alias("ts"), pl.col("ts").alias("ts_end"), "side",
            (-pl.col("dq")).clip(lower_bound=0).fill_null(0.0).alias("drop"),
            pl.col("dq").clip(lower_bound=0).fill_null(0.0).alias("added"))
        t = ctx.trades.filter((pl.col("ts") > lo - bucket) & (pl.col("ts") <= hi)).with_columns(
            side=pl.when(pl.col("aggressor") == "sell").then(pl.lit("bid")).otherwise(pl.lit("ask"))).sort("ts")
        # each trade belongs to the interval (previous sample, sample] it falls in
        samples = rem.select("side", "ts_end").sort("ts_end")
        tv = (t.join_asof(samples, left_on="ts", right_on="ts_end", by="side", strategy="forward",
                            check_sortedness=False)
              .filter(pl.col("ts_end").is_not_null()).group_by("side", "ts_end").agg(pl.col("size").sum().alias("vol")))
        j = rem.join(tv, on=["side", "ts_end"], how="left").with_columns(pl.col("vol").fill_null(0.0))
        out = j.with_columns(traded=pl.min_horizontal("drop", "vol"),
                             cancelled=(pl.col("drop") - pl.col("vol")).clip(lower_bound=0),
                             removed=pl.col("drop"))
    out = out.filter((pl.col("ts_end") > lo) & (pl.col("ts") < hi))
    if not known:
        out = out.with_columns(traded=pl.lit(None, pl.Float64), cancelled=pl.lit(None, pl.Float64))
    return out.sort("ts", "side").select([pl.col(c).cast(t) for c, t in schema.items()])


def attribution_figure(ctx, pe, path: Path) -> dict:
    from forensics.report.metrics import event_band
    ev = pe["event"]
    known = getattr(ctx, "trades_known", True)
    lo, hi, bucket = _attribution_range(ctx, ev)
    band = event_band(ev, ctx)
    b = attribution_buckets(ctx, lo, hi, bucket, band)
    fig = _fig("attribution")
    gs = fig.add_gridspec(1, 2, width_ratios=[3.2, 1])
    ax = fig.add_subplot(gs[0])
    axb = fig.add_subplot(gs[1])
    w0 = int(ev.get("window_from") if ev.get("window_from") is not None else ev["start_ts"])
    w1 = int(ev.get("window_to") if ev.get("window_to") is not None else ev["end_ts"])
    per = ("between two band samples" if ctx.data_kind == DataKind.BANDS else f"per {_fmt_bucket(bucket)}")
    _draw_removal_bars(ax, b, known)
    _frame_attribution(ax, ctx, pe, b, (lo, hi), (w0, w1), bucket, per, known)
    totals = _event_totals(pe["metrics"], b, known, w0, w1)
    _draw_totals(axb, ctx, totals, known)
    _save(fig, path)
    what = (("red = executed against by trades, grey = cancelled by makers"
             + (" (inferred: band decrease minus traded volume)" if ctx.data_kind == DataKind.BANDS else ""))
            if known else "purple = removed; with no trades in the store it cannot be split into traded and "
                          "cancelled")
    return {"title": f"Attribution, event {pe['n']}",
            "caption": (f"Size removed from the book {per} ({ctx.base}, "
                        + (f"the event's {band:g}% band" if ctx.data_kind == DataKind.BANDS else "all price levels")
                        + "), asks above and bids "
                        f"below zero: {what}; blue outline = size added in the same interval. Right: totals in the "
                        "detector's window" + (" and band (as in the evidence table)" if known else "")
                        + ". Shaded: the detector's window (each bar spans the interval it measures)."),
            "bucket_ms": bucket / NS_PER_MS, "window": [lo, hi], "band_pct": band,
            "event_window": [w0, w1], "trades_known": known,
            "totals": {s: ({"traded": t[0], "cancelled": t[1]} if known else {"removed": t[2]})
                       for s, t in totals.items()},
            "data": [{"ts": r["ts"], "ts_end": r["ts_end"], "side": r["side"], "traded": r["traded"],
                      "cancelled": r["cancelled"], "removed": r["removed"], "added": r["added"]}
                     for r in b.iter_rows(named=True)]}


def _attribution_range(ctx, ev: dict) -> tuple[int, int, int]:
    """(from, to, bucket) of the attribution chart: band samples around the event for band data,
    else the zoom range in ~80 buckets."""
    if ctx.data_kind == DataKind.BANDS and ctx.grid_ns:
        half = max(10 * ctx.grid_ns, 5 * 60 * NS_PER_S)
        lo, hi = int(ev["start_ts"]) - half, int(ev["end_ts"]) + half
        bucket = ctx.grid_ns
    else:
        lo, hi = zoom_range(ev, ctx)
        bucket = _bucket_ns(hi - lo, 80)
        lo = lo // bucket * bucket
    return lo, hi, bucket


def _draw_removal_bars(ax, b: pl.DataFrame, known: bool) -> None:
    """Per bucket and side (asks up, bids down): traded + cancelled bars (or removed, without
    trades) and the size added as an outline."""
    for side, sign in (("ask", 1), ("bid", -1)):
        s = b.filter(pl.col("side") == side)
        if s.height == 0:
            continue
        a0, a1 = s["ts"].to_numpy(), s["ts_end"].to_numpy()
        x = xnum((a0 + a1) / 2)
        w = (a1 - a0) / NS_PER_DAY * 0.9
        if known:
            tr, cx = s["traded"].to_numpy(), s["cancelled"].to_numpy()
            ax.bar(x, sign * tr, width=w, color=TRADED, lw=0, zorder=3)
            ax.bar(x, sign * cx, bottom=sign * tr, width=w, color=CANCELLED, lw=0, zorder=3)
        else:
            ax.bar(x, sign * s["removed"].to_numpy(), width=w, color=UNKNOWN, lw=0, zorder=3)
        ax.stairs(sign * s["added"].to_numpy(), xnum(np.append(a0, a1[-1])), color=ADDED, lw=1.1, zorder=4,
                  baseline=0)


def _frame_attribution(ax, ctx, pe, b: pl.DataFrame, span: tuple[int, int], window: tuple[int, int], bucket: int,
                       per: str, known: bool) -> None:
    """The detector's window shaded, the event's start, axes, title and legend."""
    ev = pe["event"]
    (lo, hi), (w0, w1) = span, window
    ax.axhline(0, color="#222222", lw=0.8, zorder=4)
    ax.axvspan(xnum(w0), xnum(max(w1, w0 + bucket // 4)), color=RED, alpha=0.10, lw=0, zorder=1)
    ax.axvline(xnum(ev["start_ts"]), color=RED, lw=1.2, zorder=5)
    lim = float(max(b.select(pl.max_horizontal(pl.col("removed"), pl.col("added"))).max().item() or 0, 1e-9)) \
        if b.height else 1.0
    ax.set_ylim(-lim * 1.15, lim * 1.15)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{abs(v):,.3g}"))
    ax.set_xlim(xnum(lo), xnum(hi))
    ax.set_ylabel(f"Size removed / added ({ctx.base}, {per})")
    ax.text(0.006, 0.985, "ASKS ▲", transform=ax.transAxes, va="top", fontsize=8.5, color="#555555", weight="bold")
    ax.text(0.006, 0.015, "BIDS ▼", transform=ax.transAxes, va="bottom", fontsize=8.5, color="#1f4e79",
            weight="bold")
    time_axis(ax, ctx, hi - lo)
    ax.set_title(f"Event {pe['n']}: where the depth went" + (" (traded vs cancelled)" if known
                                                              else " (no trades: traded vs cancelled unknown)"))
    leg = ([Patch(color=TRADED, label="removed: traded (executed)"),
            Patch(color=CANCELLED, label="removed: cancelled" + (" (inferred)" if ctx.data_kind == DataKind.BANDS else ""))]
           if known else [Patch(color=UNKNOWN, label="removed (traded or cancelled: unknown without trades)")])
    ax.legend(handles=leg + [Line2D([], [], color=ADDED, lw=1.1, label="added (new size posted)")],
              loc="upper right", fontsize=8, frameon=True, framealpha=0.9, edgecolor="none")


def _event_totals(m: dict, b: pl.DataFrame, known: bool, w0: int, w1: int) -> dict:
    """Per side, what left during the detector's window: (traded, cancelled) from the evidence
    table when it has them, else summed from the buckets; (None, None, removed) without trades."""
    totals = {}
    for side in ("bid", "ask"):
        if known and f"traded_{side}" in m:
            totals[side] = (m[f"traded_{side}"].value or 0.0, m[f"cancelled_{side}"].value or 0.0)
        else:
            s = b.filter((pl.col("side") == side) & (pl.col("ts_end") > w0) & (pl.col("ts") < max(w1, w0 + 1)))
            if known:
                totals[side] = (float(s["traded"].sum()), float(s["cancelled"].sum()))
            else:
                totals[side] = (None, None, float(s["removed"].sum()))
    return totals


def _draw_totals(axb, ctx, totals: dict, known: bool) -> None:
    """Right panel: the totals during the event as horizontal bars, bids and asks."""
    ys = np.arange(2)
    names = ["bids", "asks"]
    if known:
        tr = np.array([totals["bid"][0], totals["ask"][0]])
        cx = np.array([totals["bid"][1], totals["ask"][1]])
        axb.barh(ys, tr, color=TRADED, height=0.55)
        axb.barh(ys, cx, left=tr, color=CANCELLED, height=0.55)
        tot = tr + cx
        for i in range(2):
            if tot[i] > 0:
                axb.text(tot[i], ys[i], f"  {pct(tr[i] / tot[i])} traded", va="center", ha="left", fontsize=8.5)
    else:
        tot = np.array([totals["bid"][2], totals["ask"][2]])
        axb.barh(ys, tot, color=UNKNOWN, height=0.55)
        for i in range(2):
            if tot[i] > 0:
                axb.text(tot[i], ys[i], f"  {tot[i]:,.3g} {ctx.base}", va="center", ha="left", fontsize=8.5)
    axb.set_yticks(ys, names)
    axb.set_xlim(0, max(float(tot.max()), 1e-9) * 1.6)
    axb.set_xlabel(f"{ctx.base} removed during the event")
    axb.set_title("During the event", fontsize=10)
    axb.grid(axis="y", visible=False)


def _fmt_bucket(ns: int) -> str:
    return f"{ns / NS_PER_S:g} s" if ns >= NS_PER_S else f"{ns / NS_PER_MS:g} ms"


# ---- 4. the vacuum --------------------------------------------------------------------------------

def vacuum_figure(ctx, pe, path: Path) -> dict:
    """Price, spread and impact per volume before vs after; a panel only where there is data, and
    no figure at all (with the reason) when neither spread nor impact can be measured."""
    ev = pe["event"]
    m = pe["metrics"]
    start = int(ev["start_ts"])
    b0, b1, a0, a1 = vacuum_windows(ev, ctx)
    lo, hi = b0, a1
    t = ctx.trades.filter((pl.col("ts") >= lo) & (pl.col("ts") <= hi)).sort("ts", "seq")
    p = ctx.price.filter((pl.col("ts") >= lo) & (pl.col("ts") <= hi))
    top = ctx.top.filter((pl.col("ts") >= lo) & (pl.col("ts") <= hi) & pl.col("valid"))
    before, after = m.get("impact_before"), m.get("impact_after")
    vals = [before.value if before else None, after.value if after else None]
    has_impact = any(v is not None for v in vals)
    if top.height == 0 and not has_impact:
        why = ("no trades in the store and no top of book (band-only data)" if not getattr(ctx, "trades_known", True)
               else "no top of book and no price impact measured around the event")
        return {"unavailable": f"{why}: neither the spread nor price impact per volume can be measured."}
    panels = ["price"] + (["spread"] if top.height else []) + (["impact"] if has_impact else [])
    fig = _fig("vacuum")
    widths = {"price": 1.35, "spread": 1.35, "impact": 1.0}
    gs = fig.add_gridspec(1, len(panels), width_ratios=[widths[k] for k in panels])
    axes = {k: fig.add_subplot(gs[i]) for i, k in enumerate(panels)}
    _draw_vacuum_price(axes["price"], ctx, p, t)
    if "spread" in axes:
        _draw_vacuum_spread(axes["spread"], top, m, (b0, b1, a0, a1))
    for k in ("price", "spread"):
        if k not in axes:
            continue
        ax = axes[k]
        ax.axvspan(xnum(b0), xnum(b1), color="#2980b9", alpha=0.06, lw=0)
        ax.axvspan(xnum(a0), xnum(a1), color=RED, alpha=0.06, lw=0)
        ax.axvline(xnum(start), color=RED, lw=1.2)
        ax.set_xlim(xnum(lo), xnum(hi))
        time_axis(ax, ctx, hi - lo, maxticks=5)
    if "impact" in axes:
        _draw_vacuum_impact(axes["impact"], ctx, m, vals, (b0, b1, a0, a1))
    fig.suptitle(f"Event {pe['n']}: the vacuum — book before vs after", x=0.01, ha="left", fontsize=11,
                 weight="bold")
    _save(fig, path)
    caption = _vacuum_caption(ctx, axes, t, (b0, b1, a0, a1))
    return {"title": f"Spread and impact, event {pe['n']}", "caption": caption, "panels": panels,
            "window": [lo, hi], "before": [b0, b1], "after": [a0, a1],
            "values": {k: (m[k].value if k in m else None) for k in
                       ("spread_bps_before", "spread_bps_after", "impact_before", "impact_after", "vacuum_ratio")}}


def _draw_vacuum_price(axp, ctx, p: pl.DataFrame, t: pl.DataFrame) -> None:
    """Price line and trades (dots) around the event."""
    if p.height:
        axp.plot(xnum(p["ts"].to_numpy()), p["price"].to_numpy(), color="#e67e22", lw=1.1)
    if t.height:
        axp.scatter(xnum(t["ts"].to_numpy()), t["price"].to_numpy(), s=3, color="#555555", lw=0, alpha=0.5)
    axp.set_ylabel(f"Price ({ctx.quote})")
    axp.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:,.0f}"))
    axp.set_title("Price (line)" + (" and trades (dots)" if t.height else ""), fontsize=10)


def _draw_vacuum_spread(axs, top: pl.DataFrame, m: dict, windows: tuple[int, int, int, int]) -> None:
    """Spread in bps of mid with the before / after means (dashed)."""
    b0, b1, a0, a1 = windows
    bps = (top["spread"] / top["mid"] * 1e4).to_numpy()
    axs.plot(xnum(top["ts"].to_numpy()), bps, color="#34495e", lw=0.9, drawstyle="steps-post")
    for when, a, b_ in (("before", b0, b1), ("after", a0, a1)):
        mm = m.get(f"spread_bps_{when}")
        if mm is not None and mm.value is not None:
            axs.hlines(mm.value, xnum(a), xnum(b_), color=RED if when == "after" else "#2980b9", lw=1.6,
                       ls="--", zorder=5)
            axs.annotate(f"mean {mm.display}", xy=(xnum((a + b_) / 2), mm.value), xytext=(0, 5),
                         textcoords="offset points", ha="center", fontsize=8,
                         color=RED if when == "after" else "#2980b9", path_effects=_halo())
    axs.set_ylabel("Spread (bps of mid)")
    axs.set_ylim(bottom=0)
    axs.set_title("Bid-ask spread", fontsize=10)


def _draw_vacuum_impact(axi, ctx, m: dict, vals: list, windows: tuple[int, int, int, int]) -> None:
    """Impact per unit volume before vs after, as two bars."""
    b0, b1, a0, a1 = windows
    xs = [i for i, v in enumerate(vals) if v is not None]
    bars = axi.bar(xs, [vals[i] for i in xs], color=[["#2980b9", RED][i] for i in xs], width=0.6)
    for bar, i in zip(bars, xs):
        axi.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{vals[i]:.3g}", ha="center",
                 va="bottom", fontsize=8.5)
    axi.set_xticks([0, 1], [f"{duration(b1 - b0)} before", f"{duration(a1 - a0)} after"])
    axi.set_xlim(-0.6, 1.6)
    axi.set_ylabel(f"Price move per unit volume (bps per {ctx.base})")
    r = m.get("vacuum_ratio")
    axi.set_title(f"Impact per volume: {r.value:.1f}× after" if r is not None and r.value is not None
                  else "Impact per volume", fontsize=10)
    axi.set_ylim(0, max(v for v in vals if v is not None) * 1.25 or 1.0)
    axi.grid(axis="x", visible=False)


def _vacuum_caption(ctx, axes: dict, t: pl.DataFrame, windows: tuple[int, int, int, int]) -> str:
    """The figure's caption: what each panel drawn shows, and which could not be drawn."""
    b0, b1, a0, a1 = windows
    parts = [f"Before ({duration(b1 - b0)}, shaded blue) and after ({duration(a1 - a0)}, shaded red) the event "
             f"(red line). Price: {getattr(ctx, 'price_source', '') or 'price'}" + (" and trades" if t.height else "")
             + "."]
    if "spread" in axes:
        parts.append("Spread in bps of mid with the before/after means (dashed).")
    if "impact" in axes:
        parts.append(f"Impact: sum of 1-second price moves per unit of traded volume, buys and sells (bps per "
                     f"{ctx.base}), before vs after.")
    missing = [k for k in ("spread", "impact") if k not in axes]
    if missing:
        parts.append("Not drawn (no data): " + ", ".join(missing) + ".")
    return " ".join(parts)


# ---- all of them --------------------------------------------------------------------------------

def draw_all(ctx, doc, out: Path) -> dict[str, Path]:
    """Write every PNG; fill ``doc['json']['figures']`` (role -> file, title, caption, size, data)."""
    out = Path(out)
    figs = doc["json"]["figures"]
    paths: dict[str, Path] = {}
    with matplotlib.rc_context(STYLE):
        jobs = [("depth", "depth", None, depth_figure)]
        for pe in doc["events"]:
            if pe["figures"]:
                n = pe["n"]
                jobs += [(f"heatmap-{n}", "heatmap", pe, heatmap_figure),
                         (f"attribution-{n}", "attribution", pe, attribution_figure),
                         (f"vacuum-{n}", "vacuum", pe, vacuum_figure)]
        for role, kind, pe, fn in jobs:
            path = out / f"{role}.png"
            info = fn(ctx, doc, path) if pe is None else fn(ctx, pe, path)
            if info is None or "unavailable" in info:
                figs[role] = {"file": None, "kind": kind, "event_id": pe["event"]["event_id"] if pe else None,
                              "unavailable": (info or {}).get("unavailable", "not drawn")}
                continue
            w, h = px_size(kind)
            figs[role] = {"file": path.name, "kind": kind, "width": w, "height": h,
                          "event_id": pe["event"]["event_id"] if pe else None, **_jsonable(info)}
            paths[role] = path
    return paths


def _jsonable(obj):
    from forensics.report.context import iso_ns
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in ("ts", "x", "ts_end") and isinstance(v, int):
                out[k] = iso_ns(v)
            elif k in ("window", "before", "after", "event_window") and isinstance(v, (list, tuple)):
                out[k] = [iso_ns(int(x)) for x in v]
            else:
                out[k] = _jsonable(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
