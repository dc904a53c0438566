"""The explorable part of ``report.html``: Plotly charts with plotly.js inlined (no CDN, no request).

:func:`figures` returns the Plotly figures (also used by the tests); :func:`html_fragment` the
HTML (one ``<div>`` + ``<script>`` per chart) and :func:`plotly_js` the library to inline once.

1. ``ix-main``: the report window. Level data: a zoomable heatmap (time x price; resting bids
   and asks in separate colour maps, best bid/ask lines, trade bubbles with area ~ size and a
   size key, event markers) above the depth chart (asks above zero, bids below, per band, event
   lines); band data: the price line (mid, last trade or the band mid proxy) above the depth
   chart. The two panels share the time axis: zooming or panning one moves the other.
2. ``ix-event-<n>``: the headline event at full resolution (level data): heatmap + depth over
   the event's zoom window.

Hover shows exact values (time in the report's timezone, price, size in the asset). Data are
decimated for the page: heatmap columns of :data:`MAIN_COLUMNS` over the window (the per-event
chart keeps the fine grid), depth per band as the minimum in each of :data:`DEPTH_POINTS`
time buckets (a collapse stays visible), trades aggregated per cell beyond :data:`MAX_BUBBLES`.
Arrays travel as base64 typed arrays (Plotly's JSON), float32.
"""
from __future__ import annotations

import math

import numpy as np
import polars as pl

from forensics.report.fmt import clock
from forensics.timeutil import NS_PER_MS, NS_PER_S
from forensics.vocab import DataKind, label_short

MAIN_COLUMNS = 600          # heatmap columns over the report window (decimation for the page)
EVENT_COLUMNS = 600         # heatmap columns over an event's zoom window
HEAT_ROWS = 400             # target price rows of the window's heatmap (cells of a few ticks)
EVENT_ROWS = 300            # ... of the event's heatmap
DEPTH_POINTS = 1500         # points per depth trace (min per bucket)
MAX_BUBBLES = 4000          # trade markers per chart (aggregated per time x price cell beyond)
BID_SCALE = "Blues"
ASK_SCALE = "Oranges"
EVENT_COLOUR = "#d62728"
HEIGHT_MAIN = 760


def plotly_js() -> str:
    """The plotly.js bundle (minified) shipped with the plotly package."""
    from plotly.offline import get_plotlyjs
    return get_plotlyjs()


def _local(ns, tz: str) -> list[str]:
    """UTC ns -> local wall-clock strings Plotly reads as dates (ms precision)."""
    from forensics.timeutil import tzinfo
    import datetime as dt
    arr = np.asarray(ns, dtype=np.int64)
    if arr.size == 0:
        return []
    off = np.array([(dt.datetime.fromtimestamp(int(x) // NS_PER_S, tz=dt.timezone.utc).astimezone(tzinfo(tz))
                     .utcoffset() or dt.timedelta(0)).total_seconds() for x in (arr[0], arr[-1])])
    if off[0] == off[1]:
        loc = (arr + int(off[0]) * NS_PER_S).astype("datetime64[ns]").astype("datetime64[ms]")
    else:  # a DST change inside the window: convert each
        loc = np.array([np.datetime64(int(x) + int((dt.datetime.fromtimestamp(int(x) // NS_PER_S, tz=dt.timezone.utc)
                                                     .astimezone(tzinfo(tz)).utcoffset()).total_seconds()) * NS_PER_S,
                                      "ns") for x in arr]).astype("datetime64[ms]")
    return [str(x).replace("T", " ") for x in loc]


def _tz_title(ctx) -> str:
    from forensics.report.context import tz_offset_label
    ref = ctx.at if ctx.at is not None else ctx.ts_from
    off = tz_offset_label(ctx.tz, ref)
    return f"Time ({ctx.tz}, {off})" if ctx.tz.upper() not in ("UTC", "Z") else "Time (UTC)"


def _scale(name: str, gamma: float = 0.45) -> list:
    """A sequential colour scale with stops spread by x**gamma: small sizes get more contrast
    (resting size is heavy-tailed) while the colour bar stays in linear size units."""
    import plotly.colors as pc
    cols = pc.get_colorscale(name)
    n = 9
    out = []
    for i in range(n + 1):
        v = i / n
        out.append([v ** (1 / gamma) if 0 < v < 1 else v, pc.sample_colorscale(cols, [0.3 + 0.7 * v])[0]])
    out[0][0], out[-1][0] = 0.0, 1.0
    return out


def _heat(ctx, lo: int, hi: int, columns: int, rows: int = HEAT_ROWS):
    """forensics.heatmap data for [lo, hi] with about ``columns`` columns, or None (reason)."""
    from forensics.errors import ForensicsError
    from forensics import heatmap as hm
    if ctx.data_kind != DataKind.BOOK:
        return None, "band-only data has no per-level prices"
    step = hm.nice_step(hi - lo, columns)
    try:
        return hm.compute_heatmap(ctx.store, ctx.exchange, ctx.symbol, lo, hi, every_ns=step, rows=rows), None
    except ForensicsError as exc:
        return None, str(exc)
    except Exception as exc:  # an illustration must never cost the report
        return None, f"{type(exc).__name__}: {exc}"


def _nice(x: float) -> float:
    if x <= 0:
        return 0.0
    k = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * k >= x * 0.8:
            return m * k
    return 10 * k


def _add_heatmap(fig, data, ctx, row: int, events: list[dict]):
    import plotly.graph_objects as go
    base, quote = ctx.base, ctx.quote
    x = _local(data.times + data.every_ns // 2, ctx.tz)
    edges = data.price_edges
    y = (edges[:-1] + edges[1:]) / 2
    pdig = max(0, data.price_decimals)
    for side, z, scale, bar_x in (("bids", data.bid, BID_SCALE, 1.01), ("asks", data.ask, ASK_SCALE, 1.075)):
        zz = np.where(np.isfinite(z) & (z > 0), z, np.nan).T.astype(np.float32)
        pos = zz[np.isfinite(zz)]
        zmax = float(np.quantile(pos, 0.995)) if pos.size else 1.0
        fig.add_trace(go.Heatmap(
            x=x, y=y, z=zz, name=f"resting {side}", colorscale=_scale(scale), zmin=0, zmax=zmax or 1.0,
            hoverongaps=False, showscale=True, legendgroup=side,
            colorbar=dict(title=dict(text=f"{side}<br>{base}", side="top"), x=bar_x, len=0.42, y=0.78,
                          thickness=11),
            hovertemplate=(f"%{{x|%H:%M:%S.%L}}<br>price %{{y:,.{pdig}f}} {quote}<br>resting {side} "
                           f"%{{z:,.4f}} {base}<extra>{side}</extra>")), row=row, col=1)
    for name, arr, colour in (("best bid", data.best_bid, "#1f4e9c"), ("best ask", data.best_ask, "#d35400")):
        fig.add_trace(go.Scatter(
            x=x, y=arr.astype(np.float32), mode="lines", name=name, line=dict(color=colour, width=1.2, shape="hv"),
            hovertemplate=f"%{{x|%H:%M:%S.%L}}<br>{name} %{{y:,.{pdig}f}} {quote}<extra></extra>"), row=row, col=1)
    # the initial view: the rows that hold resting size or trades (+ a margin), inside the computed window
    has = np.isfinite(data.bid).any(axis=0) | np.isfinite(data.ask).any(axis=0)
    has &= (np.nan_to_num(data.bid) > 0).any(axis=0) | (np.nan_to_num(data.ask) > 0).any(axis=0)
    lo_p, hi_p = float(edges[0]), float(edges[-1])
    if has.any():
        k = np.flatnonzero(has)
        a, b = float(edges[k[0]]), float(edges[k[-1] + 1])
        if data.trades.height:
            a, b = min(a, float(data.trades["price"].min())), max(b, float(data.trades["price"].max()))
        pad = max((b - a) * 0.15, 10 * (edges[1] - edges[0]))
        lo_p, hi_p = max(lo_p, a - pad), min(hi_p, b + pad)
    _add_trades(fig, data.trades, data, ctx, row)
    _event_markers(fig, events, ctx, row, hi_p)
    fig.update_yaxes(title_text=f"Price ({quote})", row=row, col=1, range=[lo_p, hi_p])


def _bubbles(trades: pl.DataFrame, data) -> pl.DataFrame:
    if trades.height <= MAX_BUBBLES or data is None:
        return trades.select("ts", "price", "size", "aggressor")
    from forensics.heatmap import _trade_dots
    return _trade_dots(data, MAX_BUBBLES)


def _add_trades(fig, trades: pl.DataFrame, data, ctx, row: int):
    import plotly.graph_objects as go
    if trades is None or trades.height == 0:
        return
    dots = _bubbles(trades, data)
    q = dots["size"].to_numpy().astype(np.float64)
    ref = float(np.quantile(q, 0.99)) or 1.0
    sizeref = 2.0 * ref / 14.0 ** 2      # sizemode area: a 99th-percentile trade is ~14 px across
    cap = 6.0 * ref                      # bigger prints drawn at the cap (hover shows the exact size)
    base, quote = ctx.base, ctx.quote
    for agg, colour, label in (("buy", "#00a152", "buys (lift asks)"), ("sell", "#d50000", "sells (hit bids)")):
        s = dots.filter(pl.col("aggressor") == agg)
        if s.height == 0:
            continue
        fig.add_trace(go.Scatter(
            x=_local(s["ts"].to_numpy(), ctx.tz), y=s["price"].to_numpy().astype(np.float64), mode="markers",
            name=f"trades: {label}", legendgroup="trades", customdata=s["size"].to_numpy().astype(np.float64),
            marker=dict(size=np.minimum(s["size"].to_numpy(), cap).astype(np.float32), sizemode="area",
                        sizeref=sizeref, sizemin=2, color=colour, opacity=0.55,
                        line=dict(width=0.5, color="white")),
            hovertemplate=(f"%{{x|%H:%M:%S.%L}}<br>{agg} %{{customdata:,.4f}} {base} at %{{y:,.2f}} {quote}"
                           "<extra>trade</extra>")), row=row, col=1)
    # the size key: reference bubbles in the legend
    for v in sorted({_nice(float(np.quantile(q, p))) for p in (0.5, 0.9, 0.99)} - {0.0}):
        fig.add_trace(go.Scatter(
            x=[None], y=[None], mode="markers", name=f"size key: {v:g} {base}", legendgroup="key",
            marker=dict(size=[v], sizemode="area", sizeref=sizeref, color="#888888", opacity=0.6),
            hoverinfo="skip"), row=row, col=1)


def _event_markers(fig, events: list[dict], ctx, row: int, y_top: float):
    """A triangle at each event start (hover: number, label, time) on the top panel; the vertical
    lines across every panel are layout shapes (see :func:`_event_lines`)."""
    import plotly.graph_objects as go
    if not events:
        return
    ts = [int(pe["event"]["start_ts"]) for pe in events]
    fig.add_trace(go.Scatter(
        x=_local(ts, ctx.tz), y=[y_top] * len(ts), mode="markers+text", name="detected events",
        text=[str(pe["n"]) for pe in events], textposition="bottom center",
        marker=dict(symbol="triangle-down", size=13, color=EVENT_COLOUR),
        customdata=[[pe["n"], label_short(pe["event"].get("label"), pe["event"].get("label") or ""),
                     clock(int(pe["event"]["start_ts"]), ctx.tz, True)] for pe in events],
        hovertemplate="event %{customdata[0]}: %{customdata[1]}<br>start %{customdata[2]}<extra></extra>",
        cliponaxis=False), row=row, col=1)


def _event_lines(fig, events: list[dict], ctx):
    for pe in events:
        x = _local([int(pe["event"]["start_ts"])], ctx.tz)[0]
        fig.add_shape(type="line", x0=x, x1=x, xref="x", yref="paper", y0=0, y1=1,
                      line=dict(color=EVENT_COLOUR, width=1.4, dash="dot"), layer="above")


def _decimate_min(d: pl.DataFrame, lo: int, hi: int, points: int) -> tuple[pl.DataFrame, int]:
    step = max(1, (hi - lo) // max(1, points))
    if d.height and d["ts"].n_unique() <= points:
        return d, 0
    out = (d.group_by(((pl.col("ts") - lo) // step * step + lo).alias("ts"), "side", "band_pct")
           .agg(pl.col("qty").min()).sort("ts"))
    return out, step


def _add_depth(fig, ctx, lo: int, hi: int, row: int, events: list[dict]) -> int:
    import plotly.graph_objects as go
    import plotly.colors as pc
    d = ctx.depth.filter((pl.col("ts") >= lo) & (pl.col("ts") <= hi) & pl.col("qty").is_not_null())
    d, step = _decimate_min(d, lo, hi, DEPTH_POINTS)
    bands = sorted(d["band_pct"].unique().to_list(), reverse=True)   # widest first, narrower on top
    n = max(1, len(bands))
    acol = pc.sample_colorscale(pc.get_colorscale("Oranges"), list(np.linspace(0.3, 0.8, n)))
    bcol = pc.sample_colorscale(pc.get_colorscale("Blues"), list(np.linspace(0.35, 0.9, n)))
    base = ctx.base
    for i, b in enumerate(bands):
        for side, sign, cols in (("ask", 1.0, acol), ("bid", -1.0, bcol)):
            s = d.filter((pl.col("side") == side) & (pl.col("band_pct") == b)).sort("ts")
            if s.height == 0:
                continue
            q = s["qty"].to_numpy().astype(np.float32)
            fig.add_trace(go.Scatter(
                x=_local(s["ts"].to_numpy(), ctx.tz), y=sign * q, customdata=q, mode="lines",
                name=f"{side}s ≤{b:g}%", legendgroup=f"depth-{side}", fill="tozeroy",
                line=dict(color=cols[i], width=0.8, shape="hv"), fillcolor=cols[i],
                hovertemplate=(f"%{{x|%H:%M:%S.%L}}<br>{side}s within {b:g}% of mid: %{{customdata:,.4f}} {base}"
                               "<extra></extra>")), row=row, col=1)
    flags = getattr(ctx, "flags", None)
    if flags is not None and flags.height:
        for f in flags.iter_rows(named=True):
            if f.get("band_pct") is None or f.get("first_ts") is None:
                continue
            a, b = max(int(f["first_ts"]), lo), min(int(f["last_ts"]), hi)
            if b < a:
                continue
            b = max(b, a + (ctx.grid_ns or NS_PER_S))
            x0, x1 = _local([a, b], ctx.tz)
            ymax = float(d.filter(pl.col("band_pct") == f["band_pct"])["qty"].max() or 1.0)
            y0, y1 = (0, ymax) if f["side"] == "ask" else (-ymax, 0)
            fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, xref="x", yref=f"y{row}" if row > 1 else "y",
                          fillcolor="rgba(120,120,120,0.35)", line=dict(color="#777777", width=1, dash="dot"),
                          layer="above")
            fig.add_annotation(x=x0, y=y1 if f["side"] == "ask" else y0, xref="x", yref=f"y{row}" if row > 1 else "y",
                               text=f"flagged: {f['kind']} ({f['side']} {f['band_pct']:g}%)", showarrow=False,
                               font=dict(size=10, color="#555555"), xanchor="left")
    fig.update_yaxes(title_text=f"Depth ({base}): asks ▲ / bids ▼", row=row, col=1, zeroline=True,
                     zerolinecolor="#222222")
    return step


def _add_price(fig, ctx, lo: int, hi: int, row: int, events: list[dict]):
    import plotly.graph_objects as go
    p = ctx.price.filter((pl.col("ts") >= lo) & (pl.col("ts") <= hi))
    label = {"mid": "mid", "last trade": "last trade price",
             "band mid proxy": "mid proxy (narrowest bands' notional/qty)"}.get(getattr(ctx, "price_source", ""),
                                                                                "price")
    top = None
    if p.height:
        fig.add_trace(go.Scatter(
            x=_local(p["ts"].to_numpy(), ctx.tz), y=p["price"].to_numpy().astype(np.float64), mode="lines",
            name=label, line=dict(color="#e67e22", width=1.3, shape="hv"),
            hovertemplate=f"%{{x|%H:%M:%S.%L}}<br>{label} %{{y:,.2f}} {ctx.quote}<extra></extra>"), row=row, col=1)
        top = float(p["price"].max())
    tr = ctx.trades.filter((pl.col("ts") >= lo) & (pl.col("ts") <= hi))
    if tr.height:
        _add_trades(fig, tr, None, ctx, row)
        top = max(top or -np.inf, float(tr["price"].max()))
    if top is not None:
        _event_markers(fig, events, ctx, row, top)
    fig.update_yaxes(title_text=f"Price ({ctx.quote})", row=row, col=1)
    return p.height > 0 or tr.height > 0


def _layout(fig, ctx, title: str, height: int):
    fig.update_layout(
        template="plotly_white", height=height, title=dict(text=title, x=0.01, font=dict(size=15)),
        hovermode="closest", dragmode="zoom", margin=dict(l=70, r=150, t=60, b=130),
        legend=dict(orientation="h", yanchor="top", y=-0.12, x=0, font=dict(size=11), itemsizing="trace"),
        uirevision="keep")
    fig.update_xaxes(type="date", showspikes=True, spikemode="across", spikethickness=1, spikecolor="#999999")
    fig.update_xaxes(title_text=_tz_title(ctx), row=2, col=1)


def figures(ctx, doc) -> dict:
    """{div id: (plotly Figure, caption)} for the page."""
    from plotly.subplots import make_subplots
    from forensics.report.figures import zoom_range
    out = {}
    events = doc["events"]
    lo, hi = ctx.ts_from, ctx.ts_to
    data, why = _heat(ctx, lo, hi, MAIN_COLUMNS)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        row_heights=[0.58, 0.42] if data is not None else [0.35, 0.65])
    if data is not None and data.times.size:
        _add_heatmap(fig, data, ctx, 1, events)
        top_txt = (f"Top: resting bids (blue) and asks (orange) per {data.bucket / 10 ** data.price_decimals:g} "
                   f"{ctx.quote} x {_fmt(data.every_ns)} cell, best bid/ask lines, trade bubbles (area ~ size; "
                   "the size key is in the legend), red triangles: detected events.")
    else:
        has = _add_price(fig, ctx, lo, hi, 1, events)
        top_txt = ((f"Top: {getattr(ctx, 'price_source', '') or 'price'}" +
                    (" and trade bubbles (area ~ size)" if ctx.trades.height else "") + "; red triangles: events. ")
                   if has else "Top: no price data in the window. ") + f"No heatmap: {why}."
    step = _add_depth(fig, ctx, lo, hi, 2, events)
    _event_lines(fig, events, ctx)
    _layout(fig, ctx, f"{ctx.symbol} · {ctx.exchange}: explore the window (drag to zoom, double-click to reset)",
            HEIGHT_MAIN)
    dec = (f"each point the minimum of a {_fmt(step)} bucket, so a collapse stays visible" if step
           else "every sample")
    flagged = getattr(ctx, "flags", None) is not None and ctx.flags.height > 0
    out["ix-main"] = (fig, top_txt + f" Bottom: depth per band, asks above zero and bids below ({dec}); dotted red "
                           "lines: event starts" + ("; grey boxes: bands flagged by the data-quality checks"
                                                    if flagged else "")
                           + ". The two panels share the time axis. Hover for exact values.")
    prim = next((pe for pe in events if pe["primary"]), None)
    if prim is not None and ctx.data_kind == DataKind.BOOK:
        elo, ehi = zoom_range(prim["event"], ctx, 30 * NS_PER_S)
        edata, _ = _heat(ctx, elo, ehi, EVENT_COLUMNS, EVENT_ROWS)
        if edata is not None and edata.times.size:
            ef = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.62, 0.38])
            near = [pe for pe in events if elo <= int(pe["event"]["start_ts"]) <= ehi]
            _add_heatmap(ef, edata, ctx, 1, near)
            _add_depth(ef, ctx, elo, ehi, 2, near)
            _event_lines(ef, near, ctx)
            _layout(ef, ctx, f"Event {prim['n']} at full resolution ({_fmt(edata.every_ns)} columns)", 680)
            out[f"ix-event-{prim['n']}"] = (ef, f"Event {prim['n']} ({clock(int(prim['event']['start_ts']), ctx.tz)}): "
                                                 "the same views over its zoom window, undecimated in time.")
    return out


def _fmt(ns: int) -> str:
    return f"{ns / NS_PER_S:g} s" if ns >= NS_PER_S else f"{ns / NS_PER_MS:g} ms"


def html_fragment(ctx, doc) -> tuple[str, dict]:
    """(HTML for the charts, {div id: caption}); plotly.js itself is added once by the renderer."""
    import plotly.io as pio
    parts, caps = [], {}
    config = {"displaylogo": False, "scrollZoom": True, "responsive": True,
              "modeBarButtonsToRemove": ["sendDataToCloud"], "toImageButtonOptions": {"format": "png"}}
    for div, (fig, cap) in figures(ctx, doc).items():
        h = fig.layout.height or 600
        body = pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div, config=config,
                           default_height=f"{h}px", default_width="100%")
        parts.append(f'<figure class="ix" id="fig-{div}">{body}<figcaption>{cap}</figcaption></figure>')
        caps[div] = cap
    return "\n".join(parts), caps
