"""Cliff detection, event metrics and classification (``forensics detect``).

Pipeline per instrument (level data = ``book_updates`` + ``trades``):

1. :func:`forensics.attribution.attribute` -> ``level_changes`` (traded / cancelled per update);
2. :func:`forensics.book.compute_depth` on a ``grid_ms`` grid (default 100 ms) -> band depth
   per side (``depth``) and top of book (``book_top``);
3. **cliffs** on every (side, band) series, at grid time ``t`` with ``B`` = the median depth of
   the ``baseline_s`` (60 s) before ``t - window_s``:
   ``depth(t) <= (1 - drop_frac) * B`` and ``max(depth over [t - window_s, t]) - depth(t) >=
   drop_frac * B`` (a fall of at least ``drop_frac`` = 50% of the baseline within at most
   ``window_s`` = 5 s, ending at most half the baseline), with ``B >= min_baseline_frac`` (20%)
   of the series' median baseline (no cliffs in a band that is already nearly empty). A side
   with no levels at all counts as depth 0 (without a mid the other side is unknown).
   Cliffs of one side in several bands merge (the band with the largest fall is reported);
   bid and ask cliffs overlapping within ``window_s`` make one two-sided event. The other
   side also counts as falling when its drop during the primary fall (10% -> 90%) is abnormal
   for it: >= ``other_k`` (4) x its median absolute change over an interval of that length and
   >= ``other_min_frac`` (15%) of its baseline. With level data a cliff must hold: depth back
   to 50% of the baseline within ``min_hold_s`` (2 s) of the trough is a re-quote blip
   (cancel/replace storm), not vanished depth. A cliff on a side that has not recovered since
   an earlier event, or within ``merge_gap_s`` (10 s) of its end, continues that event.
4. **flow episodes** (``trigger='flow'``): depth eaten by a sustained aggressive program need not
   leave a band cliff (makers refill behind it and the band follows the mid), so trades are
   scanned too: taker bursts (prints with one timestamp and aggressor) of at least the
   ``flow_quantile`` (99%) burst size (a lognormal quantile from the median and MAD of log
   sizes, so the programs themselves do not raise the bar), >= ``flow_min_bursts`` (5) on one
   side with gaps <= ``flow_gap_s`` (5 s) and total volume >= ``flow_min_x`` (3) x that side's
   average volume over the same duration. Leading/trailing bursts smaller than 40% of the
   episode's median burst, or not followed (preceded) by two gaps within twice its median gap,
   are trimmed. An episode starting inside a cliff event's window, up to ``flow_merge_s``
   (10 s) after it or before its depth recovered, is that event's aftermath (e.g. the sell
   cascade into a withdrawn book), not a separate event; a one-sided cliff of the consumed
   side during an episode is part of the episode's event.
5. **flicker** (``trigger='flicker'``, level data only; no band cliff needed): adds of at least
   ``flicker_min_frac`` (25%) of the side's median depth in the narrowest band and
   ``flicker_min_x`` (5) x the median add, at least ``flicker_min_ticks`` (10) x the median
   spread from the touch, removed (>= 80%) within ``flicker_life_s`` (5 s) with <= 10% traded;
   >= ``flicker_min_pairs`` (3) such pairs chained with gaps <= ``flicker_gap_s`` (30 s). A cliff
   overlapping the episode whose net fall is >= 40% flicker orders being pulled is absorbed.
6. metrics (below) and :func:`forensics.classify.classify` -> label, confidence, evidence.

Band data only (``depth_bands``, e.g. Binance bookDepth every ~30 s): a cliff is a fall between
two consecutive samples (``window`` = one sample step) against the median of the previous
``bands_baseline_s`` (300 s); start/end are those two samples (the time error is up to one
step), the side lag is unknown (null) when both sides fell in the same step; traded share =
per falling side, the aggressive volume hitting it between the two samples capped at its depth
removed, summed, over the total depth removed (every print counts: an upper bound on what
trading explains); ``data_kind='bands'`` and the confidence says level detail was missing.
What band samples cannot show: a fall and its recovery inside one sampling step (at 30 s a
withdrawal held < 30 s may fall between two samples and be invisible), the timing and order of
the fall inside the step, re-quote blips, flicker, and which levels traded.

Event metrics (stored units: sizes in lots, prices in ticks, ``mid_*`` = bid + ask (2x), times
UTC ns; ``*_ms`` durations in ms; ``*_bps`` basis points of mid):
``start_ts``/``end_ts`` (10% / 90% of the fall, refined to the update that crossed it, ms
precision; flow/flicker: first / last burst or order), ``window_from``/``window_to`` (the span
over which quantities are summed), ``band_pct``, ``bid_floor``/``ask_cap`` (the band's prices at
the start), ``depth_before_*``/``depth_after_*`` per side, ``removed_frac_*``, ``removed_frac``,
``speed_ms`` (10%->90%; depth before = at ``window_from``, after = the trough),
``levels_hit`` (price levels that lost size), ``traded_qty``, ``cancelled_qty``, ``added_qty``, ``implied_qty``, ``traded_share`` (gross) and
``traded_share_net`` (see classify), ``other_side_fell``, ``side_lag_ms`` (ask start - bid
start), ``spread_before``/``spread_after``, ``mid_before``/``mid_after``, ``price_move_bps``
(during), ``price_move_after_bps`` (``price_after_s`` = 60 s after), ``recovery_ms`` (end ->
every falling side back to 50% of its baseline depth; null if not within ``recovery_horizon_s``),
``impact_before``/``impact_after`` (sum of 1 s |mid changes| in bps per unit of base volume
traded, ``vacuum_before_s`` = 300 s before / ``vacuum_after_s`` = 120 s after) and
``vacuum_ratio`` = after / before, ``sync_share_500ms`` (share of removed quantity within the
busiest 500 ms), ``levels_emptied_500ms``, ``erosion_corr`` (Spearman correlation between a
level's distance from the touch at the start and the time it lost half its size; sequential
erosion from the touch -> positive), ``trade_volume`` (aggressive volume hitting the falling
side(s) in the window), ``gap_share``, ``flicker_pairs``.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import polars as pl

from forensics.classify import Thresholds, classify, evidence_json
from forensics.errors import ForensicsError
from forensics.schema import TABLES
from forensics.store import Store, read_part

NS_MS = 1_000_000
NS_S = 1_000_000_000
SIDES = ("bid", "ask")


@dataclass(frozen=True)
class DetectParams:
    """Detection parameters (see the module docstring for their meaning)."""

    drop_frac: float = 0.5
    window_s: float = 5.0
    baseline_s: float = 60.0
    grid_ms: int = 100
    bands: tuple[str, ...] = ("0.1", "0.5", "1", "2", "5")
    min_baseline_frac: float = 0.2
    other_k: float = 4.0
    other_min_frac: float = 0.15
    merge_gap_s: float = 10.0
    min_hold_s: float = 2.0
    recovery_frac: float = 0.5
    recovery_horizon_s: float = 600.0
    price_after_s: float = 60.0
    vacuum_before_s: float = 300.0
    vacuum_after_s: float = 120.0
    sync_ms: int = 500
    bands_baseline_s: float = 300.0
    flow: bool = True
    flow_quantile: float = 0.99
    flow_min_bursts: int = 5
    flow_gap_s: float = 5.0
    flow_min_x: float = 3.0
    flow_merge_s: float = 10.0
    flicker: bool = True
    flicker_min_frac: float = 0.25
    flicker_min_x: float = 5.0
    flicker_min_ticks: float = 10.0
    flicker_life_s: float = 5.0
    flicker_min_pairs: int = 3
    flicker_gap_s: float = 30.0
    tolerance_ns: int | None = None
    depth_limit: int | str | None = "auto"  # N-level view of the feed (None/0 full depth, 'auto' detected)
    thresholds: Thresholds = field(default_factory=Thresholds)


#: columns of ``events`` (pinned + metrics, stored units; see schema.TABLES / EXACT)
EVENT_SCHEMA: dict[str, pl.DataType] = dict(TABLES["events"])


# =============================================================================================
# context: everything one instrument's detection reads
# =============================================================================================

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
        res = compute_depth(store, ex, sy, ts_from, ts_to, every_ns=p.grid_ms * NS_MS, bands=list(p.bands),
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
        info = {"attribution": {"tol_back_ms": ainfo.tol_back_ns / NS_MS, "tol_fwd_ms": ainfo.tol_fwd_ns / NS_MS,
                                "depth_limit": ainfo.depth_limit, "tolerance": ainfo.tolerance_source,
                                "truncation_share": ainfo.shares()["truncation"], "gap_share": ainfo.shares()["gap"]}}
        depth = depth.with_columns(pl.col("qty").fill_null(float("nan")))
        return Context(ex, sy, "book", p.grid_ms * NS_MS, depth, top,
                       trades, lc, res.size_decimals, pdec, list(res.bands), info)
    if not store.files("depth_bands", ex, sy):
        raise ForensicsError(f"no book_updates or depth_bands for {ex}/{sy} in {store.root}")
    res = compute_depth(store, ex, sy, ts_from, ts_to, bands=None, write=True, source="bands")
    depth = res.depth.select("ts", "side", "band_pct", pl.col("qty").cast(pl.Float64))
    steps = depth["ts"].unique().sort().diff().drop_nulls()
    grid = int(steps.median()) if steps.len() else 30 * NS_S
    trades = _scan_trades(store, ex, sy, ts_from, ts_to)
    top = _top_from_trades(trades)
    depth = depth.with_columns(pl.col("qty").fill_null(float("nan")))
    return Context(ex, sy, "bands", grid, depth, top, trades, None, res.size_decimals,
                   pdec, list(res.bands), {})


def _top_from_trades(trades: pl.DataFrame) -> pl.DataFrame:
    """A mid proxy per second from trade prices (band data has no book): 2 x last price."""
    if trades.height == 0:
        return pl.DataFrame(schema={"ts": pl.Int64, "mid": pl.Int64, "spread": pl.Int64,
                                    "best_bid": pl.Int64, "best_ask": pl.Int64})
    return (trades.with_columns((pl.col("ts") // NS_S * NS_S).alias("ts"))
            .group_by("ts", maintain_order=True).agg(pl.col("price").last())
            .select("ts", (2 * pl.col("price")).alias("mid"), pl.lit(None, pl.Int64).alias("spread"),
                    pl.lit(None, pl.Int64).alias("best_bid"), pl.lit(None, pl.Int64).alias("best_ask")))


# =============================================================================================
# cliffs
# =============================================================================================

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
    s = ctx.depth.filter((pl.col("side") == side) & (pl.col("band_pct") == band)).sort("ts")
    q = s["qty"].to_numpy().astype(np.float64)
    t = s["ts"].to_numpy()
    ok = ~np.isnan(q)
    return t[ok], q[ok]


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


def find_cliffs(t: np.ndarray, q: np.ndarray, side: str, band: float, window_ns: int, baseline_ns: int,
                p: DetectParams, between_samples: bool = False) -> list[Cliff]:
    """Cliffs in one depth series (see the module docstring)."""
    if t.size < 3:
        return []
    med = _rolling(t, q, baseline_ns, "median")
    bref = _at(t, med, t - window_ns)
    if between_samples:
        mx = np.concatenate([[np.nan], q[:-1]])
    else:
        mx = _rolling(t, q, window_ns, "max")
    floor = p.min_baseline_frac * np.nanmedian(med)
    with np.errstate(invalid="ignore"):
        cond = ((q <= (1 - p.drop_frac) * bref) & (mx - q >= p.drop_frac * bref) & (bref >= floor) & (bref > 0))
    out = []
    i = 0
    n = t.size
    while i < n:
        if not cond[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and cond[j + 1] and t[j + 1] - t[i] <= window_ns:
            j += 1
        if between_samples:  # the fall happened between the previous sample and this one
            k, m = i - 1, i
        else:
            lo = np.searchsorted(t, t[i] - window_ns, side="left")
            seg = q[lo:i + 1]
            k = lo + (len(seg) - 1 - int(np.argmax(seg[::-1])))  # latest max before the fall
            # the trough: the minimum within window after t_i
            hi = np.searchsorted(t, t[i] + window_ns, side="right")
            m = i + int(np.argmin(q[i:hi]))
        out.append(Cliff(side, band, int(t[i]), int(t[k]), int(t[m]), float(q[k]), float(q[m]), float(bref[i])))
        i = max(j, m) + 1
    return out


def _typical_change(t: np.ndarray, q: np.ndarray, span_ns: int) -> float:
    """Median |q(t) - q(t - span)| over the series (the side's usual move over that span)."""
    prev = _at(t, q, t - span_ns)
    d = np.abs(q - prev)
    d = d[~np.isnan(d)]
    return float(np.median(d)) if d.size else float("nan")


# =============================================================================================
# flow episodes and flicker
# =============================================================================================

def find_flow(trades: pl.DataFrame, p: DetectParams) -> list[dict]:
    """Sustained one-sided aggressive programs (see the module docstring)."""
    t = trades.filter(pl.col("aggressor").is_not_null())
    if t.height < 50:
        return []
    bursts = (t.group_by("ts", "aggressor", maintain_order=True)
              .agg(pl.col("size").sum().alias("vol"), pl.col("price").min().alias("pmin"),
                   pl.col("price").max().alias("pmax"), pl.len().alias("prints"))
              .sort("ts"))
    # a robust (lognormal) quantile: the programs being looked for must not set the bar
    logv = np.log(np.maximum(bursts["vol"].to_numpy().astype(np.float64), 1.0))
    med = float(np.median(logv))
    mad = 1.4826 * float(np.median(np.abs(logv - med)))
    q = float(np.exp(med + NormalDist().inv_cdf(p.flow_quantile) * max(mad, 1e-9)))
    span = max(1, int(t["ts"].max() - t["ts"].min()))
    out = []
    for aggr in ("sell", "buy"):
        side_vol = float(t.filter(pl.col("aggressor") == aggr)["size"].sum())
        rate = side_vol / span
        big = bursts.filter((pl.col("aggressor") == aggr) & (pl.col("vol") >= q))
        if big.height == 0:
            continue
        ts = big["ts"].to_numpy()
        vol = big["vol"].to_numpy()
        start = 0
        for k in range(1, ts.size + 1):
            if k == ts.size or ts[k] - ts[k - 1] > p.flow_gap_s * NS_S:
                a, b = _trim(ts[start:k], vol[start:k])
                a, b = start + a, start + b
                n = b - a
                if n >= p.flow_min_bursts:
                    t0, t1 = int(ts[a]), int(ts[b - 1])
                    total = float(t.filter((pl.col("aggressor") == aggr) & (pl.col("ts") >= t0)
                                           & (pl.col("ts") <= t1))["size"].sum())
                    expected = rate * max(t1 - t0, NS_S)
                    if total >= p.flow_min_x * expected:
                        out.append({"trigger": "flow", "side": "bid" if aggr == "sell" else "ask",
                                    "aggressor": aggr, "start": t0, "end": t1, "bursts": n,
                                    "big_volume": int(vol[a:b].sum()), "volume": int(total)})
                start = k
    return sorted(out, key=lambda e: e["start"])


def _trim(ts: np.ndarray, vol: np.ndarray) -> tuple[int, int]:
    """Drop leading/trailing bursts that do not belong to the program: smaller than 40% of its
    median burst, or not followed (preceded) by two gaps of at most twice its median gap."""
    a, b = 0, ts.size
    if b < 3:
        return a, b
    mv = float(np.median(vol))
    mg = float(np.median(np.diff(ts)))
    while b - a > 3 and (vol[a] < 0.4 * mv or ts[a + 1] - ts[a] > 2 * mg or ts[a + 2] - ts[a + 1] > 2 * mg):
        a += 1
    while b - a > 3 and (vol[b - 1] < 0.4 * mv or ts[b - 1] - ts[b - 2] > 2 * mg
                         or ts[b - 2] - ts[b - 3] > 2 * mg):
        b -= 1
    return a, b


def find_flicker(ctx: Context, p: DetectParams) -> list[dict]:
    """Episodes of large orders placed and pulled away from the touch without trading."""
    lc, top = ctx.lc, ctx.top
    if lc is None or lc.height == 0 or top.height == 0:
        return []
    real = lc.filter(pl.col("cause") == "add")
    if real.height == 0:
        return []
    med_add = float(real.filter(pl.col("added") > 0)["added"].median() or 0)
    narrow = min(ctx.bands)
    med_depth = {s: float(ctx.depth.filter((pl.col("side") == s) & (pl.col("band_pct") == narrow))["qty"]
                          .fill_nan(None).median() or 0) for s in SIDES}
    spread_med = float(top["spread"].median() or 1)
    min_dist = max(1.0, p.flicker_min_ticks * spread_med)
    thr = {s: max(p.flicker_min_x * med_add, p.flicker_min_frac * med_depth[s], 1.0) for s in SIDES}
    big = real.filter(((pl.col("side") == "bid") & (pl.col("added") >= thr["bid"]))
                      | ((pl.col("side") == "ask") & (pl.col("added") >= thr["ask"])))
    if big.height == 0:
        return []
    big = big.sort("ts").join_asof(top.select("ts", "best_bid", "best_ask"), on="ts", strategy="backward")
    big = big.with_columns(pl.when(pl.col("side") == "bid").then(pl.col("best_bid") - pl.col("price"))
                           .otherwise(pl.col("price") - pl.col("best_ask")).alias("dist"))
    big = big.filter(pl.col("dist") >= min_dist)
    if big.height == 0:
        return []
    keys = big.select("side", "price").unique()
    rows = lc.join(keys, on=["side", "price"], how="semi").sort("ts", "seq")
    by_level = {k: g for k, g in rows.group_by(["side", "price"])}
    life = int(p.flicker_life_s * NS_S)
    pairs = []
    for r in big.iter_rows(named=True):
        g = by_level.get((r["side"], r["price"]))
        if g is None:
            continue
        after = g.filter((pl.col("ts") >= r["ts"]) & (pl.col("seq") > r["seq"]) & (pl.col("ts") <= r["ts"] + life))
        removed = traded = 0
        t_end = None
        for d in after.iter_rows(named=True):
            removed += d["cancelled"] + d["traded"]
            traded += d["traded"]
            if removed >= 0.8 * r["added"]:
                t_end = d["ts"]
                break
        if t_end is not None and traded <= 0.1 * r["added"]:
            pairs.append({"side": r["side"], "price": r["price"], "add_ts": r["ts"], "cancel_ts": t_end,
                          "qty": r["added"], "traded": traded, "dist": r["dist"]})
    pairs.sort(key=lambda x: x["add_ts"])
    out, cur = [], []
    for pr in pairs + [None]:
        if pr is not None and (not cur or pr["add_ts"] - max(c["cancel_ts"] for c in cur) <= p.flicker_gap_s * NS_S):
            cur.append(pr)
            continue
        if len(cur) >= p.flicker_min_pairs:
            sides = {c["side"] for c in cur}
            out.append({"trigger": "flicker", "side": sides.pop() if len(sides) == 1 else "both",
                        "start": cur[0]["add_ts"], "end": max(c["cancel_ts"] for c in cur), "pairs": cur})
        cur = [pr] if pr is not None else []
    return out


# =============================================================================================
# events
# =============================================================================================

def _group_cliffs(ctx: Context, p: DetectParams) -> list[dict]:
    """Per-side cliffs merged across bands, then across sides; other-side abnormality."""
    between = ctx.data_kind == "bands"
    window_ns = ctx.grid_ns if between else int(p.window_s * NS_S)
    baseline_ns = int((p.bands_baseline_s if between else p.baseline_s) * NS_S)
    series = {(s, b): _series(ctx, s, b) for s in SIDES for b in ctx.bands}
    cliffs = []
    for (s, b), (t, q) in series.items():
        cliffs += find_cliffs(t, q, s, b, window_ns, baseline_ns, p, between)
    per_side: list[Cliff] = []
    for s in SIDES:
        cs = sorted((c for c in cliffs if c.side == s), key=lambda c: c.t_peak)
        groups: list[list[Cliff]] = []
        for c in cs:
            if groups and c.t_peak <= max(x.t_trough for x in groups[-1]) + window_ns:
                groups[-1].append(c)
            else:
                groups.append([c])
        for g in groups:
            best = max(g, key=lambda c: (round(c.frac, 6), -c.band))
            per_side.append(best)
    per_side.sort(key=lambda c: c.t_peak)
    events = []
    used = set()
    for i, c in enumerate(per_side):
        if i in used:
            continue
        ev = {"trigger": "cliff", "cliffs": {c.side: c}, "band": c.band}
        for j in range(i + 1, len(per_side)):
            d = per_side[j]
            if j in used or d.side == c.side:
                continue
            if d.t_peak <= c.t_trough + window_ns and c.t_peak <= d.t_trough + window_ns:
                ev["cliffs"][d.side] = d
                used.add(j)
                break
        events.append(ev)
    # the band of the event: the primary (largest) fall's band, used for both sides
    for ev in events:
        prim = max(ev["cliffs"].values(), key=lambda c: c.frac)
        ev["band"] = prim.band
        ev["t_peak"] = min(c.t_peak for c in ev["cliffs"].values())
        ev["t_trough"] = max(c.t_trough for c in ev["cliffs"].values())
    return events


def _other_abnormal(ctx: Context, other: str, band: float, w0: int, w1: int, p: DetectParams) -> bool:
    """Did ``other`` drop abnormally over [w0, w1]: >= other_min_frac of its baseline and >=
    other_k x its median absolute change over an interval of that length?"""
    t, q = _series(ctx, other, band)
    if t.size < 4:
        return False
    g = ctx.grid_ns
    qb = _at(t, q, np.array([w0]))[0]
    a, b = np.searchsorted(t, w0, side="left"), np.searchsorted(t, w1 + g, side="right")
    if math.isnan(qb) or b <= a:
        return False
    drop = float(qb - np.nanmin(q[a:b]))
    base = _at(t, _rolling(t, q, int(p.baseline_s * NS_S), "median"), np.array([w0]))[0]
    typ = _typical_change(t, q, max(w1 - w0, g) + g)
    return (not math.isnan(base) and drop >= p.other_min_frac * base and drop >= p.other_k * max(typ, 1.0))


def _continuations(events: list[dict], ctx: Context, p: DetectParams) -> list[dict]:
    """Fold cliffs that happen before the previous event's sides recovered (or within
    merge_gap_s of its end) into that event."""
    out: list[dict] = []
    gap = int(p.merge_gap_s * NS_S)
    for ev in sorted(events, key=lambda e: e["t_peak"]):
        if out:
            prev = out[-1]
            same = set(ev["cliffs"]) & set(prev["cliffs"]) or (set(ev["cliffs"]) <= set(prev.get("sides_set", ())))
            rec = prev.get("recovered_at")
            if same and (ev["t_peak"] <= prev["t_trough"] + gap or (rec is None or ev["t_peak"] < rec)):
                prev["continuations"] = prev.get("continuations", 0) + 1
                continue
        ev["recovered_at"] = _recovery_time(ev, ctx, p)
        if (ctx.data_kind == "book" and ev["recovered_at"] is not None
                and ev["recovered_at"] - ev["t_trough"] < p.min_hold_s * NS_S):
            continue  # back within min_hold_s: a re-quote blip, not vanished depth
        ev["sides_set"] = set(ev["cliffs"])
        out.append(ev)
    return out


def _recovery_time(ev: dict, ctx: Context, p: DetectParams) -> int | None:
    """First time after the trough when every falling side is back to recovery_frac of its
    depth before (None: not within the horizon)."""
    horizon = int(p.recovery_horizon_s * NS_S)
    latest = ev["t_trough"]
    for s, c in ev["cliffs"].items():
        t, q = _series(ctx, s, ev["band"])
        k0 = np.searchsorted(t, c.t_trough, side="left")
        k1 = np.searchsorted(t, c.t_trough + horizon, side="right")
        ok = np.nonzero(q[k0:k1] >= p.recovery_frac * min(c.q_peak, c.baseline))[0]
        if ok.size == 0:
            return None
        latest = max(latest, int(t[k0 + ok[0]]))
    return latest


def detect_instrument(store: Store, ex: str, sy: str, ts_from: int | None = None, ts_to: int | None = None,
                      params: DetectParams = DetectParams(), ctx: Context | None = None) -> pl.DataFrame:
    """Events of one instrument (not written). See :func:`detect`."""
    p = params
    ctx = ctx or build_context(store, ex, sy, ts_from, ts_to, p)
    cliff_events = _continuations(_group_cliffs(ctx, p), ctx, p)
    flows = find_flow(ctx.trades, p) if p.flow else []
    flickers = find_flicker(ctx, p) if (p.flicker and ctx.data_kind == "book") else []
    events = []
    absorbed_by: dict[int, list] = {}
    for ev in cliff_events:
        events.append(_cliff_event(ev, ctx, p))
    # flicker absorbs cliffs dominated by its orders
    for fl in flickers:
        levels = {(x["side"], x["price"]) for x in fl["pairs"]}
        keep = []
        for e in events:
            if e["trigger"] == "cliff" and e["start_ts"] <= fl["end"] + NS_S and e["end_ts"] >= fl["start"] - NS_S:
                share = _level_share(ctx, e, levels)
                if share >= 0.4:
                    absorbed_by.setdefault(id(fl), []).append(e)
                    continue
            keep.append(e)
        events = keep
        fe = _flicker_event(fl, ctx, p)
        fe["_absorbed"] = absorbed_by.get(id(fl), [])
        events.append(fe)
    merge = int(p.flow_merge_s * NS_S)
    for fw in flows:
        absorbed = False
        for e in events:
            until = e["window_to"] + merge
            if e["trigger"] == "cliff":  # the aftermath lasts until the depth is back
                rec = e.get("_recovered_at")
                until = max(until, rec if rec is not None else e["window_to"] + int(p.recovery_horizon_s * NS_S))
            if e["trigger"] in ("cliff", "flicker") and e["window_from"] - NS_S <= fw["start"] <= until:
                e["_flow_after"] = fw
                absorbed = True
                break
        if absorbed:
            continue
        # a cliff of the consumed side during the program is part of it
        fe = _flow_event(fw, ctx, p)
        keep = []
        for e in events:
            if (e["trigger"] == "cliff" and fw["start"] <= e["start_ts"] <= fw["end"] + merge
                    and e["sides"] in (fw["side"], "both") and e["sides"] != "both"):
                fe.setdefault("_absorbed", []).append(e)
                continue
            keep.append(e)
        events = keep + [fe]
    rows = []
    for e in sorted(events, key=lambda e: e["start_ts"]):
        e.setdefault("data_kind", ctx.data_kind)
        label, conf, evidence = classify(e, p.thresholds)
        if e.get("_flow_after"):
            fw = e["_flow_after"]
            evidence.append(f"followed by a {fw['aggressor']} program: {fw['bursts']} large taker bursts "
                            f"from {(fw['start'] - e['end_ts']) / NS_MS:+.0f} ms after the end")
        if e.get("continuations"):
            evidence.append(f"{e['continuations']} further fall(s) before recovery folded in")
        for c in e.get("_absorbed", []):
            evidence.append(f"includes a {c['sides']} depth cliff at {(c['start_ts'] - e['start_ts']) / NS_MS:+.0f} ms "
                            f"({100 * (c.get('removed_frac') or 0):.0f}% removed)")
        if e.get("vacuum_ratio") is not None and e["vacuum_ratio"] == e["vacuum_ratio"]:
            evidence.append(f"afterwards each unit of volume moved the price {e['vacuum_ratio']:.1f}x as much as before")
        e["label"], e["confidence"], e["evidence"] = label, conf, evidence_json(evidence)
        e["event_id"] = _event_id(sy, e)
        rows.append({k: e.get(k) for k in EVENT_SCHEMA})
    if not rows:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


def _event_id(sy: str, e: dict) -> str:
    t = dt.datetime.fromtimestamp(e["start_ts"] // NS_S, tz=dt.timezone.utc)
    ms = (e["start_ts"] % NS_S) // NS_MS
    return f"{sy}-{t:%Y%m%dT%H%M%S}.{ms:03d}Z-{e['trigger']}"


# ---- metrics ----------------------------------------------------------------------------------

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


def _level_share(ctx: Context, e: dict, levels: set) -> float:
    """Share of an event's net fall (depth before - after, its sides) removed at the given
    levels (within its window and band)."""
    if ctx.lc is None:
        return 0.0
    sides = ["bid", "ask"] if e["sides"] == "both" else [e["sides"]]
    w = _window_changes(ctx, sides, e["window_from"], e["window_to"], e.get("bid_floor"), e.get("ask_cap"))
    dec = w.filter(pl.col("delta") < 0)
    mask = [(s, pr) in levels for s, pr in zip(dec["side"].to_list(), dec["price"].to_list())]
    at_levels = float((-dec.filter(pl.Series(mask, dtype=pl.Boolean))["delta"]).sum() or 0)
    fall = sum(max(0, (e.get(f"depth_before_{s}") or 0) - (e.get(f"depth_after_{s}") or 0)) for s in sides)
    tot = max(float(fall), at_levels)
    return at_levels / tot if tot > 0 else 0.0


def _quantities(ctx: Context, sides: list[str], w0: int, w1: int, floor, cap, touch: dict | None,
                p: DetectParams) -> dict:
    """traded / cancelled / added, shares, levels hit, synchronisation, erosion (level data)."""
    out: dict = {}
    w = _window_changes(ctx, sides, w0, w1, floor, cap)
    if w.height == 0:
        return out
    ok = w.filter(pl.col("cause").is_in(["add", "trade", "cancel", "mixed"]))
    out["gap_share"] = float((w["cause"] == "gap").sum()) / w.height
    dec = ok.filter(pl.col("delta") < 0)
    traded = int(dec["traded"].sum() or 0)
    cancelled = int(dec["cancelled"].sum() or 0)
    added = int(ok["added"].sum() or 0)
    out.update(traded_qty=traded, cancelled_qty=cancelled, added_qty=added,
               implied_qty=int(ok["implied"].sum() or 0))
    if traded + cancelled > 0:
        out["traded_share"] = traded / (traded + cancelled)
        net_c = max(cancelled - added, 0)
        out["traded_share_net"] = traded / (traded + net_c) if traded + net_c > 0 else 0.0
    out["levels_hit"] = int(dec.select("side", "price").n_unique()) if dec.height else 0
    if dec.height:
        ts = dec["ts"].to_numpy()
        qty = (-dec["delta"]).to_numpy().astype(np.float64)
        cum = np.concatenate([[0.0], np.cumsum(qty)])
        hi = np.searchsorted(ts, ts + p.sync_ms * NS_MS, side="right")
        sums = cum[hi] - cum[np.arange(ts.size)]
        k = int(np.argmax(sums))
        out["sync_share_500ms"] = float(sums[k] / cum[-1]) if cum[-1] > 0 else None
        in_win = dec.slice(k, int(hi[k] - k))
        out["levels_emptied_500ms"] = int(in_win.filter(pl.col("size") == 0).select("side", "price").n_unique())
        if touch is not None:
            lv = (dec.with_columns((-pl.col("delta")).alias("q"))
                  .group_by("side", "price").agg(pl.col("ts"), pl.col("q"), pl.col("prev_size").first()))
            dist, when = [], []
            for r in lv.iter_rows(named=True):
                ref = touch.get("best_bid") if r["side"] == "bid" else touch.get("best_ask")
                if ref is None:
                    continue
                c = np.cumsum(r["q"])
                half = 0.5 * max(float(r["prev_size"]), float(c[-1]))
                j = int(np.searchsorted(c, half, side="left"))
                dist.append(abs(r["price"] - ref))
                when.append(r["ts"][min(j, len(r["ts"]) - 1)])
            if len(dist) >= 3 and len(set(dist)) > 1 and len(set(when)) > 1:
                out["erosion_corr"] = float(pl.DataFrame({"d": dist, "w": when}).select(
                    pl.corr("d", "w", method="spearman")).item())
    return out


def _impact(ctx: Context, a: int, b: int, sides: list[str] | None = None) -> float | None:
    """Sum of 1 s |mid changes| (bps) per unit of base volume traded in [a, b]."""
    if b <= a or ctx.top.height == 0:
        return None
    m = (ctx.top.filter((pl.col("ts") >= a) & (pl.col("ts") <= b))
         .with_columns((pl.col("ts") // NS_S).alias("s")).group_by("s", maintain_order=True)
         .agg(pl.col("mid").last()))
    if m.height < 3:
        return None
    mid = m["mid"].to_numpy().astype(np.float64)
    moves = float(np.abs(np.diff(mid) / mid[:-1]).sum() * 1e4)
    vol = ctx.trades.filter((pl.col("ts") >= a) & (pl.col("ts") <= b))["size"].sum()
    vol = float(vol or 0) / 10 ** ctx.size_decimals
    if vol <= 0:
        return None
    return moves / vol


def _price_metrics(ctx: Context, e: dict, w0: int, w1: int, p: DetectParams) -> None:
    before = _top_at(ctx.top, w0)
    after = _top_at(ctx.top, w1, after=True, within=int(p.window_s * NS_S)) or _top_at(ctx.top, w1)
    if before:
        e["mid_before"], e["spread_before"] = before["mid"], before["spread"]
    if after:
        e["mid_after"], e["spread_after"] = after["mid"], after["spread"]
    if before and after and before["mid"]:
        e["price_move_bps"] = (after["mid"] - before["mid"]) / before["mid"] * 1e4
        later = _top_at(ctx.top, w1 + int(p.price_after_s * NS_S))
        if later and after["mid"]:
            e["price_move_after_bps"] = (later["mid"] - after["mid"]) / after["mid"] * 1e4
    ib = _impact(ctx, w0 - int(p.vacuum_before_s * NS_S), w0 - 5 * NS_S)
    ia = _impact(ctx, w1, w1 + int(p.vacuum_after_s * NS_S))
    e["impact_before"], e["impact_after"] = ib, ia
    if ib and ia is not None and ib > 0:
        e["vacuum_ratio"] = ia / ib
    return before


def _fall_points(ctx: Context, c: Cliff) -> tuple[int, int, float, float, float, float]:
    """Grid times where the fall crossed 10% and 90% for good, the levels, and the depth one grid
    step before each crossing.

    The fall's midpoint is where depth crossed halfway from the baseline to the trough for good
    (its last up-crossing); the reference level is the highest depth in the stretch before it
    (twice the midpoint-to-90% time plus 1 s: a slow fall looks further back), so a dip that
    preceded the cliff does not count as its start. 10% / 90% are measured from that level."""
    t, q = _series(ctx, c.side, c.band)
    k0, k1 = np.searchsorted(t, c.t_peak), np.searchsorted(t, c.t_trough, side="right")
    seg_t, seg_q = t[k0:k1], q[k0:k1]
    base = c.baseline if c.baseline > c.q_trough else c.q_peak
    if seg_t.size == 0:
        return c.t_first, c.t_trough, base, c.q_trough, c.q_peak, c.q_peak
    last = seg_t.size - 1

    def settle(level: float, lo: int, hi: int) -> int:
        """First index in [lo, hi] after which depth stays <= level up to hi."""
        above = np.nonzero(seg_q[lo:hi + 1] > level)[0]
        return min(lo + int(above[-1]) + 1, hi) if above.size else lo

    j50 = settle(base - 0.5 * (base - c.q_trough), 0, last)
    j90b = j50 + int(np.argmax(seg_q[j50:] <= base - 0.9 * (base - c.q_trough)))
    span = 2 * (seg_t[j90b] - seg_t[j50]) + NS_S
    lo = int(np.searchsorted(seg_t, seg_t[j50] - span, side="left"))
    window = seg_q[lo:j50 + 1]
    kmax = lo + (window.size - 1 - int(np.argmax(window[::-1])))
    ref = max(float(seg_q[kmax]), c.q_trough)
    l10, l90 = ref - 0.1 * (ref - c.q_trough), ref - 0.9 * (ref - c.q_trough)
    j10 = settle(l10, kmax, j50)
    j90 = j10 + int(np.argmax(seg_q[j10:] <= l90))
    p10 = float(seg_q[j10 - 1]) if j10 > 0 else ref
    p90 = float(seg_q[j90 - 1]) if j90 > 0 else ref
    return int(seg_t[j10]), int(seg_t[j90]), l10, l90, p10, p90


def _refine(ctx: Context, side: str, c: Cliff, floor, cap) -> tuple[int, int, int, int]:
    """(t10, t90, grid10, grid90): the 10% / 90% crossing times refined to the update (ms
    precision) at which the net decrease inside the crossing grid step reached the level."""
    g = ctx.grid_ns
    g10, g90, l10, l90, p10, p90 = _fall_points(ctx, c)
    if ctx.data_kind == "bands":
        return c.t_peak, c.t_trough, c.t_peak, c.t_trough
    out = []
    for gt, level, prev in ((g10, l10, p10), (g90, l90, p90)):
        tt = gt
        if ctx.lc is not None:
            w = _window_changes(ctx, [side], gt - g, gt, floor, cap)
            need = prev - level
            if w.height and need > 0:
                cum = np.cumsum(-w["delta"].to_numpy().astype(np.float64))
                hit = np.nonzero(cum >= need)[0]
                if hit.size:
                    tt = int(w["ts"][int(hit[0])])
        out.append(tt)
    return out[0], max(out[1], out[0]), g10, g90


def _cliff_event(ev: dict, ctx: Context, p: DetectParams) -> dict:
    band = ev["band"]
    g = ctx.grid_ns
    pre = _top_at(ctx.top, ev["t_peak"] - g)
    floor, cap = _band_bounds(pre["mid"] if pre else None, band)
    starts = {s: _refine(ctx, s, c, floor, cap) for s, c in ev["cliffs"].items()}
    # quantities are summed from the grid step before the 10% crossing to the trough (band data:
    # from the last sample before the fall, which is already the step before it)
    w0 = min(v[2] for v in starts.values()) - (0 if ctx.data_kind == "bands" else g)
    w1 = max(max(v[3] for v in starts.values()), ev["t_trough"])
    e: dict = {"trigger": "cliff", "band_pct": band, "window_from": w0, "window_to": w1,
               "continuations": ev.get("continuations", 0)}
    before = _top_at(ctx.top, w0)
    floor, cap = _band_bounds(before["mid"] if before else None, band)
    e["bid_floor"], e["ask_cap"] = floor, cap
    falling = sorted(ev["cliffs"], key=SIDES.index)
    for s in SIDES:
        t, q = _series(ctx, s, band)
        if t.size == 0:
            continue
        qb = _at(t, q, np.array([w0]))[0]
        qa = float(np.nanmin(q[np.searchsorted(t, w0):np.searchsorted(t, w1, side="right")])) \
            if np.searchsorted(t, w1, side="right") > np.searchsorted(t, w0) else float("nan")
        if s in ev["cliffs"]:
            c = ev["cliffs"][s]
            qb = c.q_peak if math.isnan(qb) else qb     # depth just before the fall started
            qa = c.q_trough
        e[f"depth_before_{s}"] = None if math.isnan(qb) else int(qb)
        e[f"depth_after_{s}"] = None if math.isnan(qa) else int(qa)
        if not math.isnan(qb) and qb > 0 and not math.isnan(qa):
            e[f"removed_frac_{s}"] = max(0.0, (qb - qa) / qb)
    # "simultaneous": over the primary fall itself (to its 90% crossing), not the whole window
    w90 = max(v[3] for v in starts.values())
    abnormal = len(falling) == 1 and _other_abnormal(ctx, "ask" if falling[0] == "bid" else "bid", band, w0,
                                                     w90 + g, p)
    sides = falling if not abnormal else list(SIDES)
    e["sides"] = "both" if len(sides) == 2 else sides[0]
    e["other_side_fell"] = len(sides) == 2
    tot_b = sum(e.get(f"depth_before_{s}") or 0 for s in sides)
    tot_a = sum(e.get(f"depth_after_{s}") or 0 for s in sides)
    e["removed_frac"] = (tot_b - tot_a) / tot_b if tot_b > 0 else None
    e["start_ts"] = min(v[0] for v in starts.values())
    e["end_ts"] = max(v[1] for v in starts.values())
    e["speed_ms"] = (e["end_ts"] - e["start_ts"]) / NS_MS
    if len(starts) == 2 and ctx.data_kind != "bands":  # band data: both fell within one step, order unknown
        e["side_lag_ms"] = (starts["ask"][0] - starts["bid"][0]) / NS_MS
    rec = ev.get("recovered_at")
    e["_recovered_at"] = rec
    e["recovery_ms"] = None if rec is None else max(0.0, (rec - e["end_ts"]) / NS_MS)
    _price_metrics(ctx, e, w0, w1, p)
    e["trade_volume"] = _trade_volume(ctx, sides, w0, w1)
    if ctx.lc is not None:
        e.update(_quantities(ctx, sides, w0, w1, floor, cap, before, p))
    else:
        _band_shares(ctx, e, sides, w0, w1)
    return e


def _trade_volume(ctx: Context, sides: list[str], a: int, b: int) -> int:
    aggr = ["sell" if s == "bid" else "buy" for s in sides]
    t = ctx.trades.filter((pl.col("ts") > a) & (pl.col("ts") <= b) & pl.col("aggressor").is_in(aggr))
    return int(t["size"].sum() or 0)


def _band_shares(ctx: Context, e: dict, sides: list[str], w0: int, w1: int) -> None:
    """Band data: traded share = aggressive volume hitting each falling side between the two
    samples (sells hit bids, buys hit asks), capped at that side's depth removed, over the total
    depth removed. All prints count, whatever their price, so it is an upper bound on what
    trading can explain (a low share, i.e. a withdrawal, is the robust reading); the rest of the
    removal is inferred as cancelled."""
    removed = traded = 0
    for s in sides:
        r = max(0, (e.get(f"depth_before_{s}") or 0) - (e.get(f"depth_after_{s}") or 0))
        removed += r
        traded += min(r, _trade_volume(ctx, [s], w0, w1))
    if removed > 0:
        e["traded_share"] = e["traded_share_net"] = traded / removed
        e["traded_qty"] = traded
        e["cancelled_qty"] = removed - traded


def _flow_event(fw: dict, ctx: Context, p: DetectParams) -> dict:
    s = fw["side"]
    band = min(ctx.bands)
    w0, w1 = fw["start"] - ctx.grid_ns, fw["end"] + ctx.grid_ns
    e: dict = {"trigger": "flow", "band_pct": band, "window_from": w0, "window_to": w1, "sides": s,
               "start_ts": fw["start"], "end_ts": fw["end"], "other_side_fell": False,
               "speed_ms": (fw["end"] - fw["start"]) / NS_MS}
    before = _top_at(ctx.top, w0)
    floor, cap = _band_bounds(before["mid"] if before else None, band)
    e["bid_floor"], e["ask_cap"] = floor, cap
    t, q = _series(ctx, s, band)
    if t.size:
        qb = _at(t, q, np.array([w0]))[0]
        qa = _at(t, q, np.array([w1]))[0]
        if not math.isnan(qb):
            e[f"depth_before_{s}"] = int(qb)
        if not math.isnan(qa):
            e[f"depth_after_{s}"] = int(qa)
        if not math.isnan(qb) and not math.isnan(qa) and qb > 0:
            e[f"removed_frac_{s}"] = e["removed_frac"] = max(0.0, (qb - qa) / qb)
    _price_metrics(ctx, e, w0, w1, p)
    e["trade_volume"] = fw["volume"]
    e["program"] = {"aggressor": fw["aggressor"], "bursts": fw["bursts"],
                    "volume_base": round(fw["volume"] / 10 ** ctx.size_decimals, 8)}
    if ctx.lc is not None:
        # the band follows the mid while the program walks the book: no price filter
        e.update(_quantities(ctx, [s], w0, w1, None, None, before, p))
    else:
        # band data: the program's volume vs the depth the side's band lost over the episode (capped);
        # a band that did not fall net was refilled behind the program: its volume is the removal
        removed = max(0, (e.get(f"depth_before_{s}") or 0) - (e.get(f"depth_after_{s}") or 0))
        vol = fw["volume"]
        traded = min(vol, removed) if removed > 0 else vol
        e["traded_share"] = e["traded_share_net"] = (traded / removed if removed > 0 else 1.0) if vol else None
        e["traded_qty"], e["cancelled_qty"] = traded, max(0, removed - traded)
    return e


def _flicker_event(fl: dict, ctx: Context, p: DetectParams) -> dict:
    pairs = fl["pairs"]
    qty = sum(x["qty"] for x in pairs)
    tr = sum(x["traded"] for x in pairs)
    sides = fl["side"]
    e: dict = {"trigger": "flicker", "sides": sides, "start_ts": fl["start"], "end_ts": fl["end"],
               "window_from": fl["start"], "window_to": fl["end"], "flicker_pairs": len(pairs),
               "flicker_traded_share": tr / qty if qty else 0.0, "other_side_fell": sides == "both",
               "band_pct": None, "speed_ms": (fl["end"] - fl["start"]) / NS_MS,
               "levels_hit": len({(x["side"], x["price"]) for x in pairs}), "removed_frac": None}
    e["traded_qty"], e["cancelled_qty"] = int(tr), int(qty - tr)
    e["traded_share"] = e["traded_share_net"] = tr / qty if qty else 0.0
    _price_metrics(ctx, e, fl["start"], fl["end"], p)
    return e


# =============================================================================================
# public entry
# =============================================================================================

def instruments(store: Store, exchange: str | None = None, symbol: str | None = None) -> list[tuple[str, str]]:
    pairs = sorted(set(store.instruments_in("book_updates")) | set(store.instruments_in("depth_bands")))
    out = [x for x in pairs if (exchange is None or x[0] == exchange) and (symbol is None or x[1] == symbol)]
    if not out:
        listing = ", ".join(f"{e}/{s}" for e, s in pairs) or "none"
        raise ForensicsError(f"no level or band data for exchange={exchange or '*'} symbol={symbol or '*'} in "
                             f"{store.root} (instruments: {listing}); ingest data first with `forensics ingest`")
    return out


def write_events(store: Store, ex: str, sy: str, events: pl.DataFrame, lo: int | None, hi: int | None) -> None:
    """Upsert: events of the touched dates outside [lo, hi] are kept, those inside replaced."""
    with store.lock():
        old_files = store.files("events", ex, sy, lo, hi) if (lo is not None or hi is not None) else []
        keep = []
        for f in old_files:
            old = read_part(f)
            if "start_ts" in old.columns:
                m = pl.lit(False)
                if lo is not None:
                    m = m | (pl.col("start_ts") < lo)
                if hi is not None:
                    m = m | (pl.col("start_ts") > hi)
                keep.append(old.filter(m))
        if lo is None and hi is None:
            store.delete("events", ex, sy)
        df = events
        if keep:
            df = pl.concat([pl.concat(keep, how="diagonal_relaxed"), events], how="diagonal_relaxed")
        if df.height:
            store.write_partitioned("events", df.sort("start_ts"), ex, sy, "events", ts_column="start_ts",
                                    replace_dates=True)
        else:
            for f in old_files:
                f.unlink()


def detect(store: Store | str | None, exchange: str | None = None, symbol: str | None = None,
           ts_from: int | None = None, ts_to: int | None = None, params: DetectParams = DetectParams(),
           write: bool = True) -> pl.DataFrame:
    """Detect and classify liquidity events for every instrument matching the filters.

    Times are UTC ns (inclusive window; None = all data). Runs attribution (written to
    ``level_changes``) and the depth grid (``depth``/``book_top``) for level data, then cliffs,
    flow episodes and flicker, metrics and labels. Returns the events (one row each, columns
    ``exchange``, ``symbol`` + :data:`EVENT_SCHEMA`, stored units) and, with ``write``, stores
    them in table ``events`` (partitioned by the date of ``start_ts``).
    """
    store = store if isinstance(store, Store) else Store(store)
    if ts_from is not None and ts_to is not None and ts_to < ts_from:
        raise ForensicsError("--to is before --from")
    frames = []
    for ex, sy in instruments(store, exchange, symbol):
        ev = detect_instrument(store, ex, sy, ts_from, ts_to, params)
        if write:
            write_events(store, ex, sy, ev, ts_from, ts_to)
        frames.append(ev.select(pl.lit(ex).alias("exchange"), pl.lit(sy).alias("symbol"), pl.all()))
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame()
