"""What one instrument's detection reads (:class:`Context`: depth grid or band samples, top of book,
trades, level changes) and the series helpers every stage shares (a side/band depth series, rolling
median/max, value-at-time, top of book at a time, band price bounds, level changes in a window)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from forensics.detect.params import DetectParams
from forensics.errors import ForensicsError
from forensics.store import Store
from forensics.timeutil import NS_PER_MS, NS_PER_S


@dataclass
class Context:
    exchange: str
    symbol: str
    data_kind: str                 # 'book' | 'bands'
    grid_ns: int
    depth: pl.DataFrame            # ts, side, band_pct, qty (float, NaN unknown)
    top: pl.DataFrame              # ts, mid (2x), spread, best_bid, best_ask (nulls dropped)
    trades: pl.DataFrame           # ts, price, size, aggressor
    lc: pl.DataFrame | None        # level_changes (book only)
    size_decimals: int
    price_decimals: int
    bands: list[float]
    info: dict = field(default_factory=dict)



def _scan_trades(store: Store, ex: str, sy: str, ts_from, ts_to) -> pl.DataFrame:
    if not store.files("trades", ex, sy):
        return pl.DataFrame(schema={"ts": pl.Int64, "price": pl.Int64, "size": pl.Int64, "aggressor": pl.Utf8})
    return store.scan("trades", ex, sy, ts_from, ts_to).select("ts", "price", "size", "aggressor").collect()



def build_context(store: Store, ex: str, sy: str, ts_from: int | None, ts_to: int | None,
                  p: DetectParams) -> Context:
    """Attribution + depth grid (level data) or band samples + trades for one instrument."""
    from forensics.attribution import attribute_with_info
    from forensics.book import compute_depth
    inst = store.instrument(ex, sy)
    pdec = inst.price_decimals if inst else 0
    has_book = bool(store.files("book_updates", ex, sy))
    if has_book:
        lc, ainfo = attribute_with_info(store, ex, sy, ts_from, ts_to, tolerance_ns=p.tolerance_ns, write=True,
                                        depth_limit=p.depth_limit)
        res = compute_depth(store, ex, sy, ts_from, ts_to, every_ns=p.grid_ms * NS_PER_MS, bands=list(p.bands),
                            write=True, source="book")
        top = res.book_top
        depth = res.depth.select("ts", "side", "band_pct", pl.col("qty").cast(pl.Float64))
        # a side with no level at all is depth 0 (its band is empty whatever the mid)
        empty = top.select("ts", (pl.col("bid_levels") == 0).alias("eb"), (pl.col("ask_levels") == 0).alias("ea"),
                           "valid")
        depth = depth.join(empty, on="ts", how="left").with_columns(
            pl.when(pl.col("valid") & (((pl.col("side") == "bid") & pl.col("eb")) | ((pl.col("side") == "ask") & pl.col("ea"))))
            .then(pl.lit(0.0)).otherwise(pl.col("qty")).alias("qty")).drop("eb", "ea", "valid")
        top = top.filter(pl.col("mid").is_not_null()).select("ts", "mid", "spread", "best_bid", "best_ask")
        trades = _scan_trades(store, ex, sy, ts_from, ts_to)
        info = {"attribution": {"tol_back_ms": ainfo.tol_back_ns / NS_PER_MS, "tol_fwd_ms": ainfo.tol_fwd_ns / NS_PER_MS,
                                "depth_limit": ainfo.depth_limit, "tolerance": ainfo.tolerance_source,
                                "truncation_share": ainfo.shares()["truncation"], "gap_share": ainfo.shares()["gap"]}}
        depth = depth.with_columns(pl.col("qty").fill_null(float("nan")))
        bands, skipped = _usable_bands(list(res.bands), lc, top, p)
        if skipped:
            info["bands_skipped"] = skipped
        return Context(ex, sy, "book", p.grid_ms * NS_PER_MS, depth, top,
                       trades, lc, res.size_decimals, pdec, bands, info)
    if not store.files("depth_bands", ex, sy):
        raise ForensicsError(f"no book_updates or depth_bands for {ex}/{sy} in {store.root}")
    res = compute_depth(store, ex, sy, ts_from, ts_to, bands=None, write=True, source="bands")
    depth = res.depth.select("ts", "side", "band_pct", pl.col("qty").cast(pl.Float64))
    from forensics.band_events import sample_flags
    raw = store.scan("depth_bands", ex, sy, ts_from, ts_to).select("ts", "side", "band_pct", "qty", "notional").collect()
    info = {"band_flags": sample_flags(raw)}
    steps = depth["ts"].unique().sort().diff().drop_nulls()
    grid = int(steps.median()) if steps.len() else 30 * NS_PER_S
    trades = _scan_trades(store, ex, sy, ts_from, ts_to)
    top = _top_from_trades(trades)
    depth = depth.with_columns(pl.col("qty").fill_null(float("nan")))
    return Context(ex, sy, "bands", grid, depth, top, trades, None, res.size_decimals,
                   pdec, list(res.bands), info)



def price_tick(lc: pl.DataFrame | None) -> int:
    """The instrument's real tick in stored price units: the gcd of the level prices seen."""
    if lc is None or lc.height == 0:
        return 1
    # every distinct price, in a fixed order (``unique()`` has no stable order: a head() of it
    # would take a different subset, and so maybe a different gcd, from run to run)
    pr = lc["price"].unique().sort().to_numpy().astype(np.int64)
    g = int(np.gcd.reduce(np.abs(pr - pr.min()))) if pr.size > 1 else 1
    return max(g, 1)



def _usable_bands(bands: list[float], lc, top: pl.DataFrame, p: DetectParams) -> tuple[list[float], list[float]]:
    """Bands at least ``min_band_ticks`` ticks wide at the median mid: a band of a handful of
    ticks empties with every ordinary print (a coarse-tick instrument), so its falls say nothing.
    The widest band is always kept."""
    if top.height == 0 or not bands:
        return bands, []
    tick = price_tick(lc)
    mid = float(top["mid"].median()) / 2.0
    keep = [b for b in bands if b / 100.0 * mid / tick >= p.min_band_ticks] or [max(bands)]
    return keep, [b for b in bands if b not in keep]



def _top_from_trades(trades: pl.DataFrame) -> pl.DataFrame:
    """A mid proxy per second from trade prices (band data has no book): 2 x last price."""
    if trades.height == 0:
        return pl.DataFrame(schema={"ts": pl.Int64, "mid": pl.Int64, "spread": pl.Int64,
                                    "best_bid": pl.Int64, "best_ask": pl.Int64})
    return (trades.with_columns((pl.col("ts") // NS_PER_S * NS_PER_S).alias("ts"))
            .group_by("ts", maintain_order=True).agg(pl.col("price").last())
            .select("ts", (2 * pl.col("price")).alias("mid"), pl.lit(None, pl.Int64).alias("spread"),
                    pl.lit(None, pl.Int64).alias("best_bid"), pl.lit(None, pl.Int64).alias("best_ask")))



@dataclass
class Cliff:
    side: str
    band: float
    t_first: int      # first grid time meeting the condition
    t_peak: int       # last max before the fall
    t_trough: int     # the minimum reached
    q_peak: float
    q_trough: float
    baseline: float

    @property
    def frac(self) -> float:
        return (self.q_peak - self.q_trough) / self.baseline if self.baseline > 0 else 0.0



def _series(ctx: Context, side: str, band: float) -> tuple[np.ndarray, np.ndarray]:
    """(ts, qty) of one side's band with the unknown readings dropped, built once per context
    (every candidate and metric reads it; the arrays are shared, hence read-only)."""
    key = ("series", side, band)
    if key not in ctx.info:
        s = ctx.depth.filter((pl.col("side") == side) & (pl.col("band_pct") == band)).sort("ts")
        q = s["qty"].to_numpy().astype(np.float64)
        t = s["ts"].to_numpy()
        ok = ~np.isnan(q)
        t, q = t[ok], q[ok]
        t.setflags(write=False)
        q.setflags(write=False)
        ctx.info[key] = (t, q)
    return ctx.info[key]



def _rolling(t: np.ndarray, q: np.ndarray, window_ns: int, how: str) -> np.ndarray:
    df = pl.DataFrame({"t": t, "q": q})
    expr = {"median": pl.col("q").rolling_median_by("t", window_size=f"{window_ns}i", closed="both"),
            "max": pl.col("q").rolling_max_by("t", window_size=f"{window_ns}i", closed="both")}[how]
    return df.select(expr).to_series().to_numpy()



def _at(t: np.ndarray, v: np.ndarray, when: np.ndarray) -> np.ndarray:
    """v at the last t <= when (NaN before the first)."""
    idx = np.searchsorted(t, when, side="right") - 1
    out = np.full(when.shape, np.nan)
    ok = idx >= 0
    out[ok] = v[idx[ok]]
    return out



def _typical_change(t: np.ndarray, q: np.ndarray, span_ns: int) -> float:
    """Median |q(t) - q(t - span)| over the series (the side's usual move over that span)."""
    prev = _at(t, q, t - span_ns)
    d = np.abs(q - prev)
    d = d[~np.isnan(d)]
    return float(np.median(d)) if d.size else float("nan")



def _top_at(top: pl.DataFrame, ts: int, after: bool = False, within: int | None = None) -> dict | None:
    if top.height == 0:
        return None
    t = top["ts"].to_numpy()
    if after:
        k = int(np.searchsorted(t, ts, side="left"))
        if k >= t.size or (within is not None and t[k] - ts > within):
            return None
    else:
        k = int(np.searchsorted(t, ts, side="right")) - 1
        if k < 0:
            return None
    return top.row(k, named=True)



def _band_bounds(mid2: int | None, band: float) -> tuple[int | None, int | None]:
    if mid2 is None:
        return None, None
    mid = mid2 / 2.0
    return int(math.ceil(mid * (1 - band / 100) - 1e-9)), int(math.floor(mid * (1 + band / 100) + 1e-9))



def _window_changes(ctx: Context, sides: list[str], w0: int, w1: int, floor, cap) -> pl.DataFrame:
    lc = ctx.lc
    f = (pl.col("ts") > w0) & (pl.col("ts") <= w1) & pl.col("side").is_in(sides)
    if floor is not None:
        f = f & (((pl.col("side") == "bid") & (pl.col("price") >= floor)) | ((pl.col("side") == "ask") & (pl.col("price") <= cap)))
    return lc.filter(f)
