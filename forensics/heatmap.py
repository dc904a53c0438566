"""Liquidity heatmap (Bookmap style): resting size by time bucket x price bucket.

API (the report reuses it)::

    data = compute_heatmap(store, exchange=None, symbol=None, ts_from=None, ts_to=None,
                           every_ns=None, price_bucket=None, price_range=None, rows=200)
    draw_heatmap(ax, data, tz="Asia/Shanghai")        # onto any matplotlib Axes
    save_heatmap(data, "heat.png", tz=..., width=1600, height=900)

``data.bid`` / ``data.ask``: float arrays (time x price bucket) of resting size in base units
at each grid time (the book after every update with ts <= t; NaN where the book is unknown),
exact sums of integer lots from the same compiled pass as :func:`forensics.book.compute_depth`
(running per-bucket sums). Column k covers prices [edges[k], edges[k+1]). The mid, best
bid/ask and the trades of the window come along for drawing.

Auto choices: the time step gives about 1000 columns. The price range is a window around the
mid: its low..high over the window (from the stored ``book_top`` when it covers the window,
else a quick replay without the heatmap) +- :data:`MID_HALF_WINDOW`, widened to cover the
0.5-99.5 % quantiles of the trade prices and the 2-98 % quantiles of the levels that changed
near the mid (update prices within :data:`MAX_HALF_WINDOW` of it), never beyond
+- :data:`MAX_HALF_WINDOW`: a 1000-level REST snapshot reaching far from the touch does not
stretch it. Without any mid it falls back to the trade/update quantiles. The bucket is a round
number of ticks giving about ``rows`` rows (a few ticks at the CLI's default). Pre-aggregated
band data has no price levels: the heatmap is unavailable there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import polars as pl

from forensics.book import (CHUNK_ROWS, HeatSpec, _as_store, _row_groups, frames_from_grid, parse_bands,
                            plan_book, replay_store)
from forensics.depth_quality import book_flags
from forensics.errors import ForensicsError
from forensics.store import Store
from forensics.timeutil import NS_PER_MS, NS_PER_S, tzinfo

NICE_STEPS_NS = [10 * NS_PER_MS, 20 * NS_PER_MS, 50 * NS_PER_MS, 100 * NS_PER_MS, 200 * NS_PER_MS,
                 500 * NS_PER_MS] + [s * NS_PER_S for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
                                                           3600, 7200, 21600, 43200, 86400)]
TARGET_COLUMNS = 1000
MAX_TRADE_DOTS = 20_000
MAX_CELLS = 50_000_000  # time columns x price rows (x2 sides x 8 bytes in memory)
#: default price window: mid low..high +- this fraction (where the action is on a liquid book)
MID_HALF_WINDOW = 0.003
#: the default window never reaches further than this from the mid range (far snapshot levels)
MAX_HALF_WINDOW = 0.02


@dataclass
class HeatmapData:
    exchange: str
    symbol: str
    every_ns: int
    times: np.ndarray          # grid times (UTC ns); column k shows [times[k], times[k] + every)
    price_lo: int              # stored price units
    bucket: int                # stored price units per row
    n_buckets: int
    price_decimals: int
    size_decimals: int
    bid: np.ndarray            # (time, bucket) resting bid size, base units, NaN = unknown
    ask: np.ndarray
    best_bid: np.ndarray       # real units, NaN where absent
    best_ask: np.ndarray
    mid: np.ndarray
    valid: np.ndarray
    trades: pl.DataFrame       # ts, price, size (real units, float), aggressor
    flags: pl.DataFrame
    ts_from: int
    ts_to: int
    notes: list[str] = field(default_factory=list)

    @property
    def price_edges(self) -> np.ndarray:
        """Bucket edges in real price units (n_buckets + 1)."""
        return (self.price_lo + self.bucket * np.arange(self.n_buckets + 1)) / 10.0 ** self.price_decimals

    @property
    def total(self) -> np.ndarray:
        """Bid + ask resting size per cell (NaN = unknown)."""
        return self.bid + self.ask

    def matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times ns, price edges, total size (time x bucket))."""
        return self.times, self.price_edges, self.total


def _to_units(value, decimals: int, what: str) -> int:
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ForensicsError(f"bad {what} {value!r}: give a price, e.g. 5 or 0.1") from None
    u = d.scaleb(decimals)
    if not d.is_finite() or u != u.to_integral_value():
        raise ForensicsError(f"bad {what} {value!r}: finer than the instrument's price unit 1e-{decimals}")
    return int(u)


def nice_step(span_ns: int, columns: int = TARGET_COLUMNS) -> int:
    """A round time step giving at most ``columns`` columns over ``span_ns``."""
    for s in NICE_STEPS_NS:
        if span_ns / s <= columns:
            return s
    return NICE_STEPS_NS[-1]


def nice_bucket(span_units: int, rows: int) -> int:
    """A round bucket (1, 2, 5 x 10^k stored units) giving about ``rows`` rows."""
    raw = max(1.0, span_units / max(1, rows))
    k = 10 ** int(np.floor(np.log10(raw)))
    for m in (1, 2, 5, 10):
        if m * k >= raw:
            return int(m * k)
    return int(10 * k)


def _sample_update_prices(plan, t0: int, t1: int, max_groups: int = 24) -> np.ndarray:
    groups = _row_groups(plan.store, plan.files)
    index = []
    per_file: dict[int, int] = {}
    for g in groups:
        r = per_file.get(g.file, 0)
        per_file[g.file] = r + 1
        if g.ts_min is None or (g.ts_max >= t0 and g.ts_min <= t1):
            index.append((g.file, r))
    if not index:
        return np.zeros(0, np.int64)
    pick = [index[int(i)] for i in np.unique(np.linspace(0, len(index) - 1, min(max_groups, len(index))).astype(int))]
    out = []
    for fi, r in pick:
        t = plan.store.parquet_file(plan.files[fi]).read_row_group(r, columns=["ts", "price", "is_snapshot"])
        df = pl.from_arrow(t).filter((pl.col("ts") >= t0) & (pl.col("ts") <= t1) & ~pl.col("is_snapshot"))
        out.append(df["price"].to_numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def auto_price_range(store: Store, plan, trades: pl.DataFrame | None) -> tuple[int, int]:
    """[lo, hi] in stored price units from trade and update price quantiles, padded."""
    lo, hi = [], []
    if trades is not None and trades.height >= 20:
        p = trades["price"].to_numpy()
        lo.append(np.quantile(p, 0.005))
        hi.append(np.quantile(p, 0.995))
    up = _sample_update_prices(plan, plan.t0, plan.t1)
    if up.size >= 20:
        lo.append(np.quantile(up, 0.02))
        hi.append(np.quantile(up, 0.98))
    elif up.size:
        lo.append(up.min())
        hi.append(up.max())
    if not lo:
        snap = _sample_update_prices(plan, plan.start, plan.t1)
        if snap.size == 0:
            raise ForensicsError("no prices in the window to place the heatmap: give --price-range LO:HI")
        lo.append(np.quantile(snap, 0.02))
        hi.append(np.quantile(snap, 0.98))
    a, b = float(min(lo)), float(max(hi))
    pad = max((b - a) * 0.10, (a + b) / 2 * 0.001, 1.0)
    return int(np.floor(a - pad)), int(np.ceil(b + pad))


def mid_range(store: Store, plan, every_ns: int) -> tuple[int, int] | None:
    """(low, high) of the mid over the window in stored price units x 2 (bid + ask), or None.
    From ``book_top`` when the store has it over the window, else a replay without the heatmap."""
    ex, sy = plan.exchange, plan.symbol
    if store.files("book_top", ex, sy, plan.t0, plan.t1):
        top = (store.scan("book_top", ex, sy, plan.t0, plan.t1).filter(pl.col("mid").is_not_null())
               .select(pl.col("mid").min().alias("a"), pl.col("mid").max().alias("b"),
                       pl.col("ts").min().alias("t0"), pl.col("ts").max().alias("t1")).collect().row(0))
        span = plan.t1 - plan.t0
        if top[0] is not None and top[2] <= plan.t0 + span // 10 and top[3] >= plan.t1 - span // 10:
            return int(top[0]), int(top[1])
    coarse = max(int(every_ns), nice_step(plan.t1 - plan.t0, 400))
    run = replay_store(store, ex, sy, None, None, coarse, parse_bands("1"), heat=None, plan=plan)
    g = run.grid
    ok = g.mid_ok & (g.best_bid >= 0) & (g.best_ask >= 0)
    if not ok.any():
        return None
    mid2 = (g.best_bid + g.best_ask)[ok]
    return int(mid2.min()), int(mid2.max())


def mid_price_range(store: Store, plan, trades: pl.DataFrame | None, every_ns: int) -> tuple[int, int]:
    """The default price window [lo, hi] (stored units): see the module docstring."""
    mids = mid_range(store, plan, every_ns)
    if mids is None:
        return auto_price_range(store, plan, trades)
    m_lo, m_hi = mids[0] / 2.0, mids[1] / 2.0
    lo, hi = m_lo * (1 - MID_HALF_WINDOW), m_hi * (1 + MID_HALF_WINDOW)
    cap_lo, cap_hi = m_lo * (1 - MAX_HALF_WINDOW), m_hi * (1 + MAX_HALF_WINDOW)
    if trades is not None and trades.height:
        p = trades["price"].to_numpy()
        if p.size >= 20:
            lo, hi = min(lo, float(np.quantile(p, 0.005))), max(hi, float(np.quantile(p, 0.995)))
        else:
            lo, hi = min(lo, float(p.min())), max(hi, float(p.max()))
    up = _sample_update_prices(plan, plan.t0, plan.t1)
    up = up[(up >= cap_lo) & (up <= cap_hi)]
    if up.size >= 20:
        lo, hi = min(lo, float(np.quantile(up, 0.02))), max(hi, float(np.quantile(up, 0.98)))
    lo, hi = max(lo, cap_lo), min(hi, cap_hi)
    return int(np.floor(lo)), int(np.ceil(hi))


def compute_heatmap(store: Store | str | None = None, exchange: str | None = None, symbol: str | None = None,
                    ts_from: int | None = None, ts_to: int | None = None, every_ns: int | None = None,
                    price_bucket=None, price_range: tuple | None = None, rows: int = 200,
                    trades: bool = True, chunk_rows: int = CHUNK_ROWS) -> HeatmapData:
    """Resting size per (grid time, price bucket) for one instrument; see the module docstring.

    ``price_bucket``: bucket height in real price units (None/'auto': ~``rows`` rows);
    ``price_range``: (lo, hi) in real price units (None: auto around the traded/quoted prices)."""
    store = _as_store(store)
    ex, sy = store.resolve_instrument(exchange, symbol)
    if not store.files("book_updates", ex, sy):
        if store.files("depth_bands", ex, sy):
            raise ForensicsError(
                f"heatmap unavailable for {ex}/{sy}: the store has only pre-aggregated depth bands "
                "(depth_bands, e.g. Binance bookDepth), no price levels; use `forensics depth` for the band series")
        raise ForensicsError(f"no book_updates for {ex}/{sy} in {store.root}")
    if rows is None or int(rows) < 2:
        raise ForensicsError("--rows must be at least 2")
    inst = store.require_instrument(ex, sy)
    plan = plan_book(store, ex, sy, ts_from, ts_to, chunk_rows)
    if every_ns is None:
        every_ns = nice_step(plan.t1 - plan.t0)
    if int(every_ns) <= 0:
        raise ForensicsError("--every must be a positive duration, e.g. 1s or 100ms")
    tr = None
    if store.files("trades", ex, sy, plan.t0, plan.t1):
        tr = store.scan("trades", ex, sy, plan.t0, plan.t1).select("ts", "price", "size", "aggressor").collect()
    if price_range is not None:
        lo, hi = (_to_units(v, inst.price_decimals, "--price-range") for v in price_range)
        if hi <= lo:
            raise ForensicsError("bad --price-range: LO must be below HI")
    else:
        lo, hi = mid_price_range(store, plan, tr, int(every_ns))
    if price_bucket in (None, "auto"):
        bucket = nice_bucket(hi - lo, int(rows))
    else:
        bucket = _to_units(price_bucket, inst.price_decimals, "--price-bucket")
        if bucket <= 0:
            raise ForensicsError("bad --price-bucket: must be positive")
    lo = (lo // bucket) * bucket
    n = max(1, -(-(hi - lo) // bucket))
    if n > 20_000:
        raise ForensicsError(f"{n:,} price rows is too many: give a larger --price-bucket")
    cells = ((plan.t1 - plan.t0) // int(every_ns) + 1) * n
    if cells > MAX_CELLS:
        raise ForensicsError(f"heatmap of {cells:,} cells is too large (max {MAX_CELLS:,}): use a coarser --every "
                             "or --price-bucket, or a shorter window")
    spec = HeatSpec(int(lo), int(bucket), int(n))
    bands = parse_bands("1")
    run = replay_store(store, ex, sy, None, None, int(every_ns), bands, heat=spec, chunk_rows=chunk_rows, plan=plan)
    g = run.grid
    lot = 10.0 ** inst.size_decimals
    tick = 10.0 ** inst.price_decimals
    unknown = ~g.valid
    bid = g.heat[:, 0, :].astype(np.float64) / lot
    ask = g.heat[:, 1, :].astype(np.float64) / lot
    bid[unknown] = np.nan
    ask[unknown] = np.nan
    best_bid = np.where(g.best_bid >= 0, g.best_bid / tick, np.nan)
    best_ask = np.where(g.best_ask >= 0, g.best_ask / tick, np.nan)
    mid = np.where(g.mid_ok, (g.best_bid + g.best_ask) / (2 * tick), np.nan)
    _, top = frames_from_grid(g, bands, int(every_ns), inst)
    flags = book_flags(top, g.stats, run.gaps, plan.t0, plan.t1)
    if tr is None:
        tr = pl.DataFrame(schema={"ts": pl.Int64, "price": pl.Float64, "size": pl.Float64, "aggressor": pl.Utf8})
    else:
        tr = tr.with_columns((pl.col("price") / tick).alias("price"), (pl.col("size") / lot).alias("size"))
    notes = []
    if not trades:
        tr = tr.clear()
    return HeatmapData(ex, sy, int(every_ns), g.ts, spec.lo, spec.width, spec.n, inst.price_decimals,
                       inst.size_decimals, bid, ask, best_bid, best_ask, mid, g.valid, tr, flags,
                       plan.t0, plan.t1, notes)


# ---- drawing --------------------------------------------------------------------------------------

def _dates(ns: np.ndarray) -> np.ndarray:
    import matplotlib.dates as mdates
    return mdates.date2num(np.asarray(ns, np.int64).astype("datetime64[ns]"))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    out, start = [], None
    for i, v in enumerate(mask):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(mask)))
    return out


def _trade_dots(data: HeatmapData, max_dots: int) -> pl.DataFrame:
    tr = data.trades
    if tr.height <= max_dots:
        return tr
    # aggregate: per time column, price bucket and aggressor -> summed size at the VWAP
    pb = data.bucket / 10.0 ** data.price_decimals
    t0 = int(data.times[0]) if data.times.size else int(data.ts_from)
    return (tr.with_columns(((pl.col("ts") - t0) // data.every_ns).alias("__t"),
                            (pl.col("price") / pb).floor().alias("__p"))
            .group_by(["__t", "__p", "aggressor"])
            .agg(((pl.col("price") * pl.col("size")).sum() / pl.col("size").sum()).alias("price"),
                 pl.col("size").sum().alias("size"))
            .with_columns((t0 + pl.col("__t") * data.every_ns + data.every_ns // 2).alias("ts"))
            .select("ts", "price", "size", "aggressor"))


def draw_heatmap(ax, data: HeatmapData, tz: str = "UTC", trades: bool = True, mid: bool = True,
                 cmap: str = "magma", colorbar: bool = True, max_trade_dots: int = MAX_TRADE_DOTS, title: str | None = None):
    """Draw ``data`` onto ``ax``: log-coloured resting size, mid price line, trades as dots
    (size ~ sqrt(quantity), green = buy aggressor, red = sell), time axis in ``tz``, unknown
    book periods shaded. Returns the QuadMesh."""
    import matplotlib.dates as mdates
    from matplotlib.colors import LogNorm
    import matplotlib as mpl
    tzi = tzinfo(tz)
    t_edges = _dates(np.append(data.times, data.times[-1] + data.every_ns)) if data.times.size else np.zeros(1)
    y_edges = data.price_edges
    z = data.total
    positive = z[np.isfinite(z) & (z > 0)]
    vmin = float(np.percentile(positive, 2)) if positive.size else 1e-9
    vmax = float(np.percentile(positive, 99.8)) if positive.size else 1.0
    vmax = max(vmax, vmin * 10)
    masked = np.ma.masked_where(~np.isfinite(z) | (z <= 0), z)
    cm = mpl.colormaps[cmap].with_extremes(bad="#05050f")
    ax.set_facecolor("#05050f")
    mesh = ax.pcolormesh(t_edges, y_edges, masked.T, cmap=cm, norm=LogNorm(vmin=vmin, vmax=vmax, clip=True),
                         shading="flat", rasterized=True)
    for a, b in _runs(~data.valid):
        ax.axvspan(t_edges[a], t_edges[b], facecolor="#7f7f7f", alpha=0.35, hatch="//", edgecolor="#bbbbbb",
                   linewidth=0, label="book unknown" if a == _runs(~data.valid)[0][0] else None)
    if mid and data.times.size:
        ax.step(t_edges[:-1], data.mid, where="post", color="#4fc3f7", linewidth=0.9, label="mid")
    if trades and data.trades.height:
        dots = _trade_dots(data, max_trade_dots)
        q = dots["size"].to_numpy()
        ref = float(np.quantile(q, 0.99)) if q.size else 1.0
        s = 3 + 80 * np.sqrt(np.clip(q / (ref or 1.0), 0, 4))
        colours = {"buy": "#00e676", "sell": "#ff1744"}
        for agg, label in (("buy", "buy (hits asks)"), ("sell", "sell (hits bids)"), (None, "unknown aggressor")):
            sel = (dots["aggressor"] == agg).fill_null(False).to_numpy() if agg else dots["aggressor"].is_null().to_numpy()
            if sel.any():
                ax.scatter(_dates(dots["ts"].to_numpy()[sel]), dots["price"].to_numpy()[sel], s=s[sel],
                           c=colours.get(agg, "#bdbdbd"), alpha=0.7, linewidths=0, label=label, zorder=3)
    locator = mdates.AutoDateLocator(tz=tzi)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tzi))
    ax.set_xlim(t_edges[0], t_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_xlabel(f"time ({tz})")
    ax.set_ylabel("price")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    bucket = data.bucket / 10.0 ** data.price_decimals
    ax.set_title(title or f"{data.exchange} {data.symbol}: resting size (log colour); cells "
                          f"{_fmt_step(data.every_ns)} x {bucket:g} in price")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.6, markerscale=0.6)
    if colorbar:
        cb = ax.figure.colorbar(mesh, ax=ax, pad=0.01, fraction=0.04)
        from forensics.report.context import base_asset
        cb.set_label(f"resting size ({base_asset(data.symbol)})")
    return mesh


def _fmt_step(ns: int) -> str:
    if ns % NS_PER_S == 0:
        s = ns // NS_PER_S
        return f"{s // 60} min" if s % 60 == 0 and s >= 60 else f"{s} s"
    return f"{ns / NS_PER_MS:g} ms"


def save_heatmap(data: HeatmapData, out: str | Path, tz: str = "UTC", width: int = 1600, height: int = 900,
                 dpi: int = 100, **kwargs) -> Path:
    """Render to a PNG of exactly ``width`` x ``height`` pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    if width < 200 or height < 150:
        raise ForensicsError("--size too small: at least 200x150 pixels")
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    draw_heatmap(ax, data, tz=tz, **kwargs)
    fig.subplots_adjust(left=0.07, right=0.93, top=0.94, bottom=0.09)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, format="png")
    return out
