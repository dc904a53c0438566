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
4. **flow episodes** (``trigger='flow'``): consumption by *volume*, not print size (a program
   is found alike whether sent as 10 large or 1,000 small prints): per aggressor side, volume per
   second; for every window length in ``flow_windows_s`` (5-120 s) the window's volume against
   the side's own trailing rate ``mu`` and variance over ``flow_baseline_s`` (10 min) before it
   (variance: the larger of the empirical one and the compound-Poisson one with lognormal order
   sizes fitted on the trailing orders, so a heavy size tail counts even when no huge order
   happened to be in the baseline): ratio ``V / (W mu) >= flow_min_ratio`` and z ``>=
   flow_min_z`` (raised while the history is shorter than ``flow_full_history_s``), spread over
   ``flow_min_active_s`` seconds with no second holding more than ``flow_max_top_share``.
   Flagged windows of a side merge; the episode is the stretch of maximal volume above
   ``flow_excess_k`` x the rate (re-cut at half the program's own pace), split where
   ``flow_quiet_s`` pass at or below the trailing rate, each piece re-tested, >= 
   ``flow_min_duration_s`` long. The trailing baseline is kept clean: cliff events up to their
   recovery and the episodes already found (``flow_exclude_before_s`` before to
   ``flow_exclude_after_s`` after; re-run up to ``flow_passes`` times) are left out of it, so an
   earlier cascade or program in the same run does not inflate the rate and variance a later
   program is judged against. The erosion it causes is measured on the event (depth of the
   touch band before/after, levels hit, erosion correlation, mid move). A program starting inside
   a cliff event's window, up to ``flow_merge_s`` after it or before its depth recovered (at most
   ``aftermath_max_s``), or running into a two-sided non-trade-driven cliff with less than
   ``flow_lead_share`` of its volume before it, is that event's context (e.g. the sell cascade into
   a withdrawn book); a cliff during a program (of the consumed side, or after
   ``flow_lead_share`` of its volume) is part of the program's event.
5. **flicker** (``trigger='flicker'``, level data only; no band cliff needed): adds of at least
   ``flicker_min_frac`` (25%) of the side's median depth in the narrowest band and
   ``flicker_min_x`` (5) x the median add, at least ``flicker_min_ticks`` (10) x the median
   spread from the touch, removed (>= 80%) within ``flicker_life_s`` (5 s) with <= 10% traded;
   >= ``flicker_min_pairs`` (3) such pairs chained with gaps <= ``flicker_gap_s`` (30 s). A cliff
   overlapping the episode whose net fall is >= 40% flicker orders being pulled is absorbed.
6. metrics (below) and :func:`forensics.classify.classify` -> label, confidence, evidence.
   Level data also gives each cliff and flow event its *per-side pull bursts* (the largest net
   cancellation within ``sync_ms`` per side from ``pull_before_s`` before to ``pull_after_s``
   after the start, over the narrowest band's depth, and the side's ``pull_noise_q`` quantile of
   ordinary 500 ms falls): a flow event that opened with both sides pulled is a withdrawal and
   its cascade, and folds in the later falls of its aftermath; a fall during a program that is
   not a pull (trade-driven or the book re-centring under it) is part of the program.

Band data only (``depth_bands``, e.g. Binance bookDepth every ~30 s): a cliff is a fall between
two consecutive samples (``window`` = one sample step) against the median of the previous
``bands_baseline_s`` (300 s), plus every *two-sided abnormal drop*: a sample step where both
sides lose >= ``bands_min_drop`` in some band at <= -``bands_z`` robust sigma of that band's own
sample-to-sample changes (:mod:`forensics.band_events`), ranked by severity in the evidence.
Bands under a data-quality flag at either sample (frozen, non-monotonic, average price on the
wrong side: :func:`forensics.band_events.sample_flags`) are left out of the decision and the
evidence says so; a fall that exists only in flagged bands is labelled ``data_anomaly``, never a
pull. Without trade data covering the window (:func:`trade_coverage`; also for level data) a
cliff is ``depth_collapse``: cause undetermined, traded share / traded qty / trade volume null,
the evidence naming the venue's trades / aggTrades of that day as the data that would decide
it. Start/end are the two samples (the time error is up to one
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

import numpy as np
import polars as pl

from forensics.classify import Thresholds, classify, evidence_json
from forensics.errors import ForensicsError
from forensics.schema import SIDES, TABLES
from forensics.store import Store
from forensics.timeutil import NS_PER_MS, NS_PER_S



@dataclass(frozen=True)
class DetectParams:
    """Detection parameters: the one home of every detection threshold, each with its reason
    (the classifier's are in :class:`forensics.classify.Thresholds`). Tuned only on the
    development seeds (:data:`forensics.evaluate.DEV_SEEDS`), never on the evaluation seeds."""

    # -- cliffs (level data)
    drop_frac: float = 0.5            # a fall to half the baseline is a cliff in any band, however noisy
    drop_min_frac: float = 0.3        # smaller falls count down to 30% (partial pulls of 30-90% of quotes) ...
    cliff_k: float = 10.0             # ... where the fall is >= 10x the band's median 5 s change (a steady band)
    window_s: float = 5.0             # a cliff falls within 5 s; slower erosion is the flow trigger's job
    baseline_s: float = 60.0          # baseline = median of the previous minute (long enough to skip blips)
    grid_ms: int = 100                # the feed's own batching (Binance 100 ms)
    bands: tuple[str, ...] = ("0.1", "0.5", "1", "2", "5")   # touch to deep book, % of mid
    min_baseline_frac: float = 0.2    # no cliffs in a band holding < 20% of its usual depth (already empty)
    min_band_ticks: float = 20.0      # a band of a handful of ticks empties with every print (coarse tick)
    other_k: float = 4.0              # the other side fell too: >= 4x its typical change over the interval ...
    other_min_frac: float = 0.15      # ... and >= 15% of its baseline (and of its own levels' quantity)
    merge_gap_s: float = 10.0         # a fall within 10 s of an event's end continues it
    aftermath_max_s: float = 120.0    # an unrecovered side folds in later falls / flows for at most 2 min
    min_hold_s: float = 2.0           # depth back within 2 s = a cancel/replace blip, not vanished depth
    recovery_frac: float = 0.5        # recovered = back to half the depth before
    recovery_horizon_s: float = 600.0  # recovery looked for over 10 minutes
    price_after_s: float = 60.0       # price move measured 1 minute after
    vacuum_before_s: float = 300.0    # impact per unit volume: 5 min before ...
    vacuum_after_s: float = 120.0     # ... vs 2 min after
    vacuum_gap_s: float = 5.0         # the "before" impact stops 5 s before the window (no run-up)
    sync_ms: int = 500                # synchronisation window (a pull by many makers lands within ~300 ms)
    pull_before_s: float = 3.0        # per-side pull bursts looked for from 3 s before an event's start ...
    pull_after_s: float = 2.0         # ... to 2 s after it (a cascade starts ~1 s after the pull)
    pull_noise_q: float = 0.99        # a side's ordinary 500 ms churn: the 99th percentile of its falls
    # -- band data (bookDepth, ~30 s samples)
    bands_baseline_s: float = 300.0   # halving cliffs: median of the previous 5 minutes of samples
    bands_z: float = 5.0              # abnormal drop: <= -5 robust sigma of the band's own changes ...
    bands_min_drop: float = 0.20      # ... and >= 20% of the band (a 5-sigma wiggle of a very steady band is not a fall)
    bands_sigma_samples: int = 120    # sigma over the previous 120 changes (1 h at 30 s)
    bands_sigma_min_samples: int = 20  # no verdict before 20 changes (10 min at 30 s) of history
    bands_sigma_floor: float = 0.02   # sigma never below 2% per sample (published rounding, frozen stretches)
    trade_gap_s: float = 120.0        # trades "cover" a window without a 2-minute hole around it
    # -- flow (consumption by sustained aggressive volume)
    flow: bool = True                 # the flow trigger on (off: cliffs and flicker only)
    flow_windows_s: tuple[int, ...] = (5, 10, 20, 40, 80, 120)  # programs of 5 s to 2 min
    flow_baseline_s: float = 600.0    # the side's own trailing rate / variance: previous 10 minutes
    flow_min_history_s: float = 60.0  # no verdict on less than a minute of the side's history ...
    flow_full_history_s: float = 300.0  # ... and the z bar rises as sqrt(300 s / history) below 5 minutes
    flow_min_ratio: float = 2.0       # volume >= 2x the side's trailing rate ...
    flow_min_z: float = 6.0           # ... and >= 6 sigma (dev seeds: background tops out near 5.5 over hours)
    flow_min_duration_s: float = 4.0  # one cluster of orders (< 4 s) is not a sustained program
    flow_max_top_share: float = 0.5   # no single second holds more than half the window's volume
    flow_min_active_s: int = 3        # the window has prints in >= 3 distinct seconds
    flow_excess_k: float = 1.5        # episode = the stretch of maximal volume above 1.5x the trailing rate
    flow_quiet_s: float = 20.0        # 20 s at or below the trailing rate splits two episodes
    flow_merge_s: float = 10.0        # a program starting within 10 s after a cliff is its aftermath
    flow_lead_share: float = 0.25     # >= 25% of a program's volume before a cliff: the cliff is part of it
    flow_recut_frac: float = 0.5      # episode edges re-cut at half the program's own pace (a lone print before it is not its start)
    flow_pad_frac: float = 0.25       # a flagged stretch is searched a quarter of the longest window beyond its ends
    flow_min_trades: int = 50         # fewer aggressive prints in the whole window: no rate to judge against
    flow_passes: int = 3              # baseline cleaned of the episodes found so far, up to 3 passes
    flow_exclude_before_s: float = 5.0   # an episode leaves its side's baseline from 5 s before ...
    flow_exclude_after_s: float = 30.0   # ... to 30 s after (the cascade's tail, the re-quoting book)
    # -- flicker
    flicker: bool = True              # the flicker trigger on (level data only)
    flicker_min_frac: float = 0.25    # flicker order >= 25% of the narrowest band's median depth ...
    flicker_min_x: float = 5.0        # ... and >= 5x the median add
    flicker_min_ticks: float = 10.0   # placed >= 10 median spreads from the touch (not meant to trade)
    flicker_life_s: float = 5.0       # pulled within 5 s
    flicker_min_pairs: int = 3        # >= 3 such orders make an episode
    flicker_gap_s: float = 30.0       # ... chained with gaps <= 30 s
    flicker_removed_frac: float = 0.8  # "pulled": >= 80% of the order gone within flicker_life_s ...
    flicker_pair_max_traded: float = 0.1  # ... with <= 10% of it traded (not meant to trade)
    flicker_absorb_share: float = 0.4  # a cliff whose net fall is >= 40% flicker orders is the flicker's
    tolerance_ns: int | None = None   # trade/update matching window (None: estimated from the data)
    depth_limit: int | str | None = "auto"  # N-level view of the feed (None/0 full depth, 'auto' detected)
    thresholds: Thresholds = field(default_factory=Thresholds)  # the classifier's (forensics.classify)


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
        if not between_samples and p.cliff_k > 0:
            # a smaller fall counts in a band that is normally steady: >= drop_min_frac of the
            # baseline and >= cliff_k x the band's median |change| over window_s
            typ = _typical_change(t, q, window_ns)
            if typ == typ:
                fall = mx - q
                cond |= ((q <= (1 - p.drop_min_frac) * bref) & (fall >= p.drop_min_frac * bref)
                         & (fall >= p.cliff_k * max(typ, 1.0)) & (bref >= floor) & (bref > 0))
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

def _keep_mask(n: int, s0: int, exclude) -> np.ndarray:
    """1.0 for the seconds of [s0, s0 + n) outside every ``exclude`` interval (ns), else 0.0."""
    keep = np.ones(n)
    for a, b in exclude or ():
        i0, i1 = max(0, int(a) // NS_PER_S - s0), min(n, int(b) // NS_PER_S - s0 + 1)
        if i1 > i0:
            keep[i0:i1] = 0.0
    return keep


def flow_scores(trades: pl.DataFrame, aggressor: str, p: DetectParams, exclude=None) -> dict:
    """Per-second aggressive volume of one aggressor and, per window length ``W`` in
    ``flow_windows_s``, the window volume ``V`` (ending at each second), its rate ratio
    ``V / (W mu)`` and robust-to-slicing z-score ``(V - W mu) / sqrt(W var)`` against the side's
    own trailing per-second mean ``mu`` and variance ``var`` over ``flow_baseline_s`` before the
    window, and the share of ``V`` in its busiest second. Volume, not print count: the same
    program scores the same whether sliced into 10 or 1,000 prints.

    ``exclude``: (from, to) ns intervals left out of the trailing baselines (episodes already
    flagged and their aftermath: an earlier cascade must not inflate the rate and variance a
    later program is judged against); the baseline then reaches back over ``flow_baseline_s``
    kept seconds, and its length (for the short-history bar) is their number."""
    t = trades.filter(pl.col("aggressor") == aggressor)
    if t.height == 0:
        return {}
    s0 = int(trades["ts"].min()) // NS_PER_S
    s1 = int(trades["ts"].max()) // NS_PER_S
    n = s1 - s0 + 1
    # a taker order = the prints of one aggressor at one timestamp (one order walking levels)
    # sorted by ts and grouped in that order: the float sums of logs below are then summed in one
    # fixed order whatever the row order of the input (part layout, thread scheduling)
    orders = (t.group_by("ts").agg(pl.col("size").sum().cast(pl.Float64)).sort("ts")
              .select(((pl.col("ts") // NS_PER_S) - s0).alias("i"), pl.col("size"), pl.col("size").log().alias("l")))
    per = orders.group_by("i", maintain_order=True).agg(pl.col("size").sum().alias("v"), pl.len().alias("n"), pl.col("l").sum().alias("l1"),
                                   (pl.col("l") ** 2).sum().alias("l2"))
    ii = per["i"].to_numpy()
    v, cnt, l1, l2 = (np.zeros(n) for _ in range(4))
    v[ii], cnt[ii], l1[ii], l2[ii] = (per[c].to_numpy().astype(np.float64) for c in ("v", "n", "l1", "l2"))
    keep = _keep_mask(n, s0, exclude)
    cum = {k: np.concatenate([[0.0], np.cumsum(a)]) for k, a in (("v", v * keep), ("v2", v * v * keep),
                                                                  ("n", cnt * keep), ("l1", l1 * keep),
                                                                  ("l2", l2 * keep), ("k", keep))}
    cv = np.concatenate([[0.0], np.cumsum(v)])   # window volumes: every second counts
    c1, c2, ck = cum["v"], cum["v2"], cum["k"]
    B = int(p.flow_baseline_s)
    idx = np.arange(n)
    out = {"s0": s0, "v": v, "windows": {}}
    # the baseline ending at each second j (seconds [j - B, j)): mean rate and variance per second
    j1 = np.arange(n + 1)
    # the baseline reaches back as far as needed to hold B kept seconds (excluded ones skipped)
    back = lambda e: np.maximum(np.searchsorted(ck, ck[e] - B, side="right") - 1, 0)
    j0 = back(j1)
    nbj = ck[j1] - ck[j0]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mub = (c1[j1] - c1[j0]) / nbj
        varb = np.maximum((c2[j1] - c2[j0]) / nbj - mub * mub, 0.0)
        Nb = cum["n"][j1] - cum["n"][j0]
        mb = (cum["l1"][j1] - cum["l1"][j0]) / Nb
        vlb = np.maximum((cum["l2"][j1] - cum["l2"][j0]) / Nb - mb * mb, 0.0)
        out["base_mu"] = mub
        out["base_var"] = np.fmax(varb, Nb / nbj * np.exp(2 * mb + 2 * vlb))
        out["base_n"] = nbj
    for W in p.flow_windows_s:
        W = int(W)
        if W >= n:
            continue
        end = idx + 1
        start = np.maximum(end - W, 0)
        V = cv[end] - cv[start]
        b1 = start
        b0 = back(b1)
        nb = ck[b1] - ck[b0]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            mu = (c1[b1] - c1[b0]) / nb
            var = np.maximum((c2[b1] - c2[b0]) / nb - mu * mu, 0.0)
            # compound-Poisson variance with lognormal order sizes fitted on the trailing orders:
            # the tail of the size distribution counts even if no huge order happened to be in it
            N = cum["n"][b1] - cum["n"][b0]
            m = (cum["l1"][b1] - cum["l1"][b0]) / N
            vl = np.maximum((cum["l2"][b1] - cum["l2"][b0]) / N - m * m, 0.0)
            model = N / nb * np.exp(2 * m + 2 * vl)
            ratio = V / (W * mu)
            z = (V - W * mu) / np.sqrt(W * np.fmax(var, model))
            top = pl.Series(v).rolling_max(W, min_samples=1).to_numpy() / V
        active = pl.Series((v > 0).astype(np.float64)).rolling_sum(W, min_samples=1).to_numpy()
        ok_hist = nb >= p.flow_min_history_s
        # a short history estimates the rate and variance poorly: the bar rises as sqrt of it
        z = z / np.sqrt(np.maximum(1.0, p.flow_full_history_s / np.maximum(nb, 1.0)))
        out["windows"][W] = {"V": V, "mu": mu, "ratio": np.where(ok_hist, ratio, np.nan),
                             "z": np.where(ok_hist, z, np.nan), "top": top, "active": active}
    return out


def find_flow(trades: pl.DataFrame, p: DetectParams, exclude=()) -> list[dict]:
    """Sustained one-sided programs (:func:`_find_flow_once`) judged against a clean baseline:
    a first pass against the trailing rate with the ``exclude`` intervals (ns; e.g. cliff events
    up to their recovery) left out, then up to ``flow_passes - 1`` more with every episode found
    so far (``flow_exclude_before_s`` before to ``flow_exclude_after_s`` after it) left out of
    its aggressor's baseline too, until the episodes no longer change."""
    t = trades.filter(pl.col("aggressor").is_not_null())
    if t.height < p.flow_min_trades:
        return []
    base = list(exclude or ())
    eps = _find_flow_once(t, p, {a: base for a in ("sell", "buy")})
    pre, post = int(p.flow_exclude_before_s * NS_PER_S), int(p.flow_exclude_after_s * NS_PER_S)
    for _ in range(max(0, p.flow_passes - 1)):
        ex = {a: base + [(e["start"] - pre, e["end"] + post) for e in eps if e["aggressor"] == a]
              for a in ("sell", "buy")}
        new = _find_flow_once(t, p, ex)
        if new == eps:
            break
        eps = new
    return eps


def _find_flow_once(t: pl.DataFrame, p: DetectParams, exclude: dict) -> list[dict]:
    """Sustained one-sided aggressive programs by flow (see the module docstring): any window
    length in ``flow_windows_s`` whose aggressive volume is >= ``flow_min_ratio`` x and
    ``flow_min_z`` sigma above the side's own trailing rate, spread over >= ``flow_min_active_s``
    seconds with no second holding more than ``flow_max_top_share`` of it. Flagged windows of a
    side merge; the episode is the segment of maximal excess volume over
    ``flow_excess_k`` x the trailing rate (so it starts and ends with the program), trimmed to
    its first / last aggressive print. ``exclude``: per aggressor, the intervals left out of
    its trailing baseline (:func:`flow_scores`)."""
    out = []
    for aggr in ("sell", "buy"):
        sc = flow_scores(t, aggr, p, exclude.get(aggr))
        if not sc or not sc["windows"]:
            continue
        v, s0 = sc["v"], sc["s0"]
        n = v.size
        flag = np.zeros(n + 1, np.int64)   # difference array of covered seconds
        best = np.full(n, np.nan)
        for W, w in sc["windows"].items():
            hit = ((w["ratio"] >= p.flow_min_ratio) & (w["z"] >= p.flow_min_z) & (w["top"] <= p.flow_max_top_share)
                   & (w["active"] >= p.flow_min_active_s))
            hit = np.nan_to_num(hit.astype(float)) > 0
            ends = np.nonzero(hit)[0]
            if ends.size == 0:
                continue
            np.add.at(flag, np.maximum(ends - W + 1, 0), 1)
            np.add.at(flag, ends + 1, -1)
            best[ends] = np.fmax(best[ends], w["z"][ends])
        cover = np.cumsum(flag[:-1]) > 0
        if not cover.any():
            continue
        d = np.diff(np.concatenate([[0], cover.astype(np.int8), [0]]))
        wmax = int(max(sc["windows"]))
        segs = []
        for a, b in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]):
            pad = int(p.flow_pad_frac * wmax)
            lo, hi = max(0, a - pad), min(n, b + pad)
            segs += _program_segments(v, sc, lo, hi, p)
        for sa, sb in segs:
            ts0, ts1 = (s0 + sa) * NS_PER_S, (s0 + sb) * NS_PER_S
            seg = t.filter((pl.col("aggressor") == aggr) & (pl.col("ts") >= ts0) & (pl.col("ts") < ts1))
            if seg.height == 0 or int(seg["ts"][-1]) - int(seg["ts"][0]) < p.flow_min_duration_s * NS_PER_S:
                continue   # one cluster of orders, not a sustained program
            vol = float(seg["size"].sum())
            dur_s = float(sb - sa)
            mu, var = float(sc["base_mu"][sa]), float(sc["base_var"][sa])
            z = (vol - dur_s * mu) / math.sqrt(dur_s * var) if var > 0 else float("inf")
            out.append({"trigger": "flow", "side": "bid" if aggr == "sell" else "ask", "aggressor": aggr,
                        "start": int(seg["ts"][0]), "end": int(seg["ts"][-1]), "prints": seg.height,
                        "bursts": int(seg["ts"].n_unique()), "volume": int(vol),
                        "ratio": vol / (dur_s * mu) if mu > 0 else float("inf"), "z": z,
                        "baseline_rate": mu, "baseline_var": var, "price_first": int(seg["price"][0]),
                        "price_last": int(seg["price"][-1])})
    return sorted(out, key=lambda e: e["start"])


def _max_excess(v: np.ndarray, lo: int, hi: int, level: float) -> tuple[int, int]:
    """[a, b) within [lo, hi) maximising sum(v[a:b] - level)."""
    S = np.concatenate([[0.0], np.cumsum(v[lo:hi] - level)])
    runmin = np.minimum.accumulate(S)
    j = int(np.argmax(S[1:] - runmin[:-1])) + 1
    i = int(np.argmax(S[:j] == runmin[j - 1]))
    return lo + i, lo + j


def _program_segments(v: np.ndarray, sc: dict, lo: int, hi: int, p: DetectParams, depth: int = 0
                      ) -> list[tuple[int, int]]:
    """Seconds [a, b) of the programs inside [lo, hi): the segment of maximal excess volume over
    ``flow_excess_k`` x the trailing rate (at ``lo``), kept if it passes the ratio and z tests
    itself; the stretches left and right of it are searched again (two programs, or a program
    then a withdrawal's cascade, inside one flagged stretch)."""
    if hi - lo < 2 or depth > 12:
        return []
    bi = max(lo, int(p.flow_min_history_s))     # the baseline ends where the stretch starts
    if bi >= hi:
        return []
    mu, var = float(sc["base_mu"][bi]), float(sc["base_var"][bi])
    if not (mu > 0 and var > 0):
        return []
    sa, sb = _max_excess(v, lo, hi, p.flow_excess_k * mu)
    if sb <= sa:
        return []
    # edges at the program's own pace: re-cut at half its mean rate (a lone background print
    # just before a strong program is not its start)
    rate = float(v[sa:sb].sum()) / (sb - sa)
    if p.flow_recut_frac * rate > p.flow_excess_k * mu:
        a2, b2 = _max_excess(v, sa, sb, p.flow_recut_frac * rate)
        if b2 > a2:
            sa, sb = a2, b2
    Q = int(p.flow_quiet_s)
    if sb - sa > 2 * Q:
        # a quiet stretch inside (Q seconds without any excess over the trailing rate): two
        # episodes bridged by the excess sum; split at its middle and search both halves
        c = np.concatenate([[0.0], np.cumsum(v[sa:sb])])
        quiet = np.nonzero(c[Q:] - c[:-Q] <= Q * mu)[0]
        if quiet.size:
            d = np.diff(quiet)
            runs = np.split(quiet, np.nonzero(d > 1)[0] + 1)
            r = max(runs, key=len)
            mid = sa + int(r[len(r) // 2]) + Q // 2
            return (_program_segments(v, sc, lo, mid, p, depth + 1)
                    + _program_segments(v, sc, mid, hi, p, depth + 1))
    vol, dur = float(v[sa:sb].sum()), float(sb - sa)
    short = math.sqrt(max(1.0, p.flow_full_history_s / max(float(sc["base_n"][bi]), 1.0)))
    ok = (vol >= p.flow_min_ratio * dur * mu and (vol - dur * mu) / math.sqrt(dur * var) >= p.flow_min_z * short
          and float(v[sa:sb].max()) <= p.flow_max_top_share * vol)
    if not ok:
        return []
    return (_program_segments(v, sc, lo, sa, p, depth + 1) + [(sa, sb)]
            + _program_segments(v, sc, sb, hi, p, depth + 1))


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
    big = big.sort("ts", "seq").join_asof(top.select("ts", "best_bid", "best_ask"), on="ts", strategy="backward")
    big = big.with_columns(pl.when(pl.col("side") == "bid").then(pl.col("best_bid") - pl.col("price"))
                           .otherwise(pl.col("price") - pl.col("best_ask")).alias("dist"))
    big = big.filter(pl.col("dist") >= min_dist)
    if big.height == 0:
        return []
    keys = big.select("side", "price").unique()
    rows = lc.join(keys, on=["side", "price"], how="semi").sort("ts", "seq")
    by_level = {k: g for k, g in rows.group_by(["side", "price"])}
    life = int(p.flicker_life_s * NS_PER_S)
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
            if removed >= p.flicker_removed_frac * r["added"]:
                t_end = d["ts"]
                break
        if t_end is not None and traded <= p.flicker_pair_max_traded * r["added"]:
            pairs.append({"side": r["side"], "price": r["price"], "add_ts": r["ts"], "cancel_ts": t_end,
                          "qty": r["added"], "traded": traded, "dist": r["dist"]})
    pairs.sort(key=lambda x: x["add_ts"])
    out, cur = [], []
    for pr in pairs + [None]:
        if pr is not None and (not cur or pr["add_ts"] - max(c["cancel_ts"] for c in cur) <= p.flicker_gap_s * NS_PER_S):
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
    window_ns = ctx.grid_ns if between else int(p.window_s * NS_PER_S)
    baseline_ns = int((p.bands_baseline_s if between else p.baseline_s) * NS_PER_S)
    series = {(s, b): _series(ctx, s, b) for s in SIDES for b in ctx.bands}
    cliffs = []
    for (s, b), (t, q) in series.items():
        cliffs += find_cliffs(t, q, s, b, window_ns, baseline_ns, p, between)
    ctx.info["anomalies"] = []
    if between:
        cliffs = _band_cliffs(ctx, cliffs, p)
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


def _flag_lookup(ctx: Context) -> dict:
    fl = ctx.info.get("band_flags")
    if fl is None or fl.height == 0:
        return {}
    return {(r[0], r[1], r[2]): r[3] for r in fl.select("ts", "side", "band_pct", "flag").iter_rows()}


def _band_cliffs(ctx: Context, cliffs: list[Cliff], p: DetectParams) -> list[Cliff]:
    """Band data: drop cliffs in flagged bands (kept in ``ctx.info['anomalies']``), add every
    two-sided abnormal drop (:mod:`forensics.band_events`), ranked by severity."""
    from forensics.band_events import abnormal_drops, band_changes, two_sided
    flags = _flag_lookup(ctx)
    ch = band_changes(ctx.depth, ctx.info.get("band_flags", pl.DataFrame()), p.bands_sigma_samples,
                      p.bands_sigma_min_samples, p.bands_sigma_floor)
    drops = abnormal_drops(ch, p.bands_z, p.bands_min_drop)
    ok, bad = [], []
    for c in cliffs:
        f = flags.get((c.t_peak, c.side, c.band)) or flags.get((c.t_trough, c.side, c.band))
        (bad if f else ok).append((c, f))
    out = [c for c, _ in ok]
    ranked = {}
    for r in two_sided(drops).iter_rows(named=True):
        ranked[r["ts"]] = r
        for side in SIDES:
            band, qp, qa, tp = (r[f"{k}_{side}"] for k in ("band", "q_prev", "qty", "ts_prev"))
            out.append(Cliff(side, band, int(r["ts"]), int(tp), int(r["ts"]), float(qp), float(qa), float(qp)))
    ctx.info["band_drops"] = ranked
    ctx.info["band_drops_n"] = len(ranked)
    # flagged-only falls: the one-sided abnormal drops and cliffs that exist only under a flag
    flagged = drops.filter(pl.col("flag").is_not_null())
    for r in flagged.iter_rows(named=True):
        bad.append((Cliff(r["side"], r["band_pct"], int(r["ts"]), int(r["ts_prev"]), int(r["ts"]), float(r["q_prev"]),
                          float(r["qty"]), float(r["q_prev"])), r["flag"]))
    ctx.info["anomalies"] = bad
    ctx.info["flagged_steps"] = {}
    for c, f in bad:
        ctx.info["flagged_steps"].setdefault(c.t_trough, set()).add((c.side, c.band, f))
    return out


def _band_evidence(ctx: Context, ev: dict, e: dict) -> None:
    """Evidence lines of a band-data event: its severity rank among the two-sided abnormal
    drops, and the bands under a data-quality flag that were left out of the decision."""
    notes = []
    ranked = ctx.info.get("band_drops", {})
    r = ranked.get(ev["t_trough"])
    if r is not None:
        notes.append(f"two-sided abnormal drop, severity rank {r['rank']} of {len(ranked)}: bid {r['band_bid']:g}% "
                     f"band {r['z_bid']:.1f} sigma, ask {r['band_ask']:g}% band {r['z_ask']:.1f} sigma of its own "
                     f"sample-to-sample change")
    step = set()
    for ts in (ev["t_trough"], ev["t_peak"]):
        step |= ctx.info.get("flagged_steps", {}).get(ts, set())
    fl = ctx.info.get("band_flags")
    if fl is not None and fl.height:
        near = fl.filter(pl.col("ts").is_in([ev["t_peak"], ev["t_trough"]]))
        step |= {(a, b, c) for a, b, c in near.select("side", "band_pct", "flag").iter_rows()}
    if step and not ev.get("_anomaly"):
        by: dict[tuple, list] = {}
        for side, band, f in step:
            by.setdefault((side, f), []).append(band)
        notes.append("excluded from the decision (data-quality flag): " + "; ".join(
            f"{side} {','.join(f'{b:g}' for b in sorted(bs))}% ({f})" for (side, f), bs in sorted(by.items())))
    e["_notes"] = e.get("_notes", []) + notes


def trade_coverage(trades: pl.DataFrame, w0: int, w1: int, gap_s: float) -> tuple[str, str]:
    """Does trade data cover [w0, w1]? ('full' | 'partial' | 'none', reason). Partial: the
    trades start after w0 or end before w1, or leave a stretch of more than ``gap_s`` without
    any print within [w0 - gap_s, w1 + gap_s]."""
    if trades.height == 0:
        return "none", "no trade data in the store for this instrument"
    lo, hi = int(trades["ts"].min()), int(trades["ts"].max())
    if w1 < lo or w0 > hi:
        return "none", "no trade data covers the window (trades stored from " \
            f"{dt.datetime.fromtimestamp(lo / 1e9, dt.timezone.utc):%Y-%m-%d %H:%M:%S} to " \
            f"{dt.datetime.fromtimestamp(hi / 1e9, dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC)"
    if w0 < lo or w1 > hi:
        return "partial", "trade data covers only part of the window"
    g = int(gap_s * NS_PER_S)
    ts = trades.filter((pl.col("ts") >= w0 - g) & (pl.col("ts") <= w1 + g))["ts"].sort().to_numpy()
    edges = np.concatenate([[max(w0 - g, lo)], ts, [min(w1 + g, hi)]])
    longest = int(np.diff(edges).max()) if edges.size > 1 else 0
    if longest > g:
        return "partial", f"no print for {longest / NS_PER_S:.0f} s around the window (a gap in the trade data?)"
    return "full", ""


def _anomaly_events(ctx: Context, events: list[dict], p: DetectParams) -> list[dict]:
    """Falls that exist only in flagged bands (no unflagged event at that sample step):
    one ``data_anomaly`` event per step."""
    steps: dict[int, list] = {}
    for c, f in ctx.info.get("anomalies", []):
        steps.setdefault(c.t_trough, []).append((c, f))
    taken = [(e["t_peak"], e["t_trough"]) for e in events]
    out = []
    for ts, items in sorted(steps.items()):
        if any(a - ctx.grid_ns <= ts <= b + ctx.grid_ns for a, b in taken):
            continue
        cl: dict[str, Cliff] = {}
        for c, f in items:
            if c.side not in cl or c.frac > cl[c.side].frac:
                cl[c.side] = c
        prim = max(cl.values(), key=lambda c: c.frac)
        out.append({"trigger": "cliff", "cliffs": cl, "band": prim.band, "t_peak": min(c.t_peak for c in cl.values()),
                    "t_trough": ts, "recovered_at": None,
                    "_anomaly": sorted({(c.side, c.band, f) for c, f in items})})
    return out


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
    base = _at(t, _rolling(t, q, int(p.baseline_s * NS_PER_S), "median"), np.array([w0]))[0]
    typ = _typical_change(t, q, max(w1 - w0, g) + g)
    return (not math.isnan(base) and drop >= p.other_min_frac * base and drop >= p.other_k * max(typ, 1.0))


def _continuations(events: list[dict], ctx: Context, p: DetectParams) -> list[dict]:
    """Fold cliffs that happen before the previous event's sides recovered (or within
    merge_gap_s of its end) into that event."""
    out: list[dict] = []
    gap = int(p.merge_gap_s * NS_PER_S)
    for ev in sorted(events, key=lambda e: e["t_peak"]):
        if out:
            prev = out[-1]
            same = set(ev["cliffs"]) & set(prev["cliffs"]) or (set(ev["cliffs"]) <= set(prev.get("sides_set", ())))
            rec = prev.get("recovered_at")
            late = ev["t_peak"] > prev["t_trough"] + int(p.aftermath_max_s * NS_PER_S)
            if same and (ev["t_peak"] <= prev["t_trough"] + gap or (not late and (rec is None or ev["t_peak"] < rec))):
                prev["continuations"] = prev.get("continuations", 0) + 1
                continue
        ev["recovered_at"] = _recovery_time(ev, ctx, p)
        if (ctx.data_kind == "book" and ev["recovered_at"] is not None
                and ev["recovered_at"] - ev["t_trough"] < p.min_hold_s * NS_PER_S):
            continue  # back within min_hold_s: a re-quote blip, not vanished depth
        ev["sides_set"] = set(ev["cliffs"])
        out.append(ev)
    return out


def _recovery_time(ev: dict, ctx: Context, p: DetectParams) -> int | None:
    """First time after the trough when every falling side is back to recovery_frac of its
    depth before (None: not within the horizon)."""
    horizon = int(p.recovery_horizon_s * NS_PER_S)
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
    flows = find_flow(ctx.trades, p, _cliff_spans(cliff_events, p)) if p.flow else []
    flickers = find_flicker(ctx, p) if (p.flicker and ctx.data_kind == "book") else []
    events = []
    absorbed_by: dict[int, list] = {}
    if ctx.data_kind == "bands":
        cliff_events += _anomaly_events(ctx, cliff_events, p)
    for ev in cliff_events:
        ce = _cliff_event(ev, ctx, p)
        if ev.get("_anomaly"):
            ce["_anomaly"] = ev["_anomaly"]
            ce["_recovered_at"] = ce["window_to"]
        if ctx.data_kind == "bands":
            _band_evidence(ctx, ev, ce)
        events.append(ce)
    # flicker absorbs cliffs dominated by its orders
    for fl in flickers:
        levels = {(x["side"], x["price"]) for x in fl["pairs"]}
        keep = []
        for e in events:
            if e["trigger"] == "cliff" and e["start_ts"] <= fl["end"] + NS_PER_S and e["end_ts"] >= fl["start"] - NS_PER_S:
                share = _level_share(ctx, e, levels)
                if share >= p.flicker_absorb_share:
                    absorbed_by.setdefault(id(fl), []).append(e)
                    continue
            keep.append(e)
        events = keep
        fe = _flicker_event(fl, ctx, p)
        fe["_absorbed"] = absorbed_by.get(id(fl), [])
        events.append(fe)
    merge = int(p.flow_merge_s * NS_PER_S)
    for fw in flows:
        absorbed = False
        for e in events:
            until = e["window_to"] + merge
            if e["trigger"] == "cliff":  # the aftermath lasts until the depth is back
                rec = e.get("_recovered_at")
                until = max(until, min(rec if rec is not None else e["window_to"] + int(p.recovery_horizon_s * NS_PER_S),
                                       e["window_to"] + int(p.aftermath_max_s * NS_PER_S)))
            # a program running into a two-sided cliff with little of its volume before it is
            # that cliff's context (the withdrawal is the event; the flow is reported with it)
            into = (e["trigger"] == "cliff" and e["sides"] == "both" and fw["start"] < e["window_from"] <= fw["end"]
                    and (_volume_share_before(ctx, fw, e["window_from"]) < p.flow_lead_share
                         or not _program_before(ctx, fw, e["window_from"], p))
                    and classify(dict(e, data_kind=ctx.data_kind), p.thresholds)[0] != "consumption")
            if into or (e["trigger"] in ("cliff", "flicker") and e["window_from"] - NS_PER_S <= fw["start"] <= until):
                e["_flow_after"] = fw
                absorbed = True
                break
        if absorbed:
            continue
        # a cliff during the program (after flow_lead_share of its volume, or of the consumed
        # side) is part of it: the book thinning and re-centring under the program
        fe = _flow_event(fw, ctx, p)
        # a program that opened with both sides pulled is a withdrawal and its cascade: later
        # falls before the book is back (at most aftermath_max_s) are its continuation
        wd = classify(dict(fe, data_kind=ctx.data_kind), p.thresholds)[0] == "synchronized_withdrawal"
        until = fw["end"] + (int(p.aftermath_max_s * NS_PER_S) if wd else merge)
        keep = []
        for e in events:
            if (e["trigger"] == "cliff" and fw["start"] <= e["start_ts"] <= until
                    and (wd or e["sides"] == fw["side"]
                         or _volume_share_before(ctx, fw, e["window_from"]) >= p.flow_lead_share
                         # a fall during the program that is not a pull (trade-driven, or the
                         # book re-centring under it) is the program
                         or classify(dict(e, data_kind=ctx.data_kind), p.thresholds)[0] in ("consumption", "mixed"))):
                fe.setdefault("_absorbed", []).append(e)
                continue
            keep.append(e)
        events = keep + [fe]
    rows = []
    day = None
    for e in sorted(events, key=lambda e: e["start_ts"]):
        e.setdefault("data_kind", ctx.data_kind)
        if e["trigger"] == "cliff":
            cov, why = trade_coverage(ctx.trades, e["window_from"], e["window_to"], p.trade_gap_s)
            if cov != "full":
                day = dt.datetime.fromtimestamp(e["start_ts"] / 1e9, dt.timezone.utc).strftime("%Y-%m-%d")
                e["_trade_coverage"] = cov
                e["_trade_reason"] = (f"{why}: the data cannot tell a pull from a sweep; the venue's trades / "
                                      f"aggTrades for {ex} {sy} on {day} would decide it")
                for k in ("traded_share", "traded_share_net", "traded_qty", "cancelled_qty", "trade_volume"):
                    e[k] = None
        label, conf, evidence = classify(e, p.thresholds)
        evidence.extend(e.get("_notes", []))
        if e.get("_flow_after"):
            fw = e["_flow_after"]
            evidence.append(f"{'followed' if fw['start'] >= e['start_ts'] else 'accompanied'} by a {fw['aggressor']} "
                            f"program: {fw['prints']} taker prints at {fw['ratio']:.1f}x the side's trailing rate "
                            f"from {(fw['start'] - e['end_ts']) / NS_PER_MS:+.0f} ms after the end")
        if e.get("continuations"):
            evidence.append(f"{e['continuations']} further fall(s) before recovery folded in")
        for c in e.get("_absorbed", []):
            evidence.append(f"includes a {c['sides']} depth cliff at {(c['start_ts'] - e['start_ts']) / NS_PER_MS:+.0f} ms "
                            f"({100 * (c.get('removed_frac') or 0):.0f}% removed)")
        if e.get("vacuum_ratio") is not None and e["vacuum_ratio"] == e["vacuum_ratio"]:
            evidence.append(f"afterwards each unit of volume moved the price {e['vacuum_ratio']:.1f}x as much as before")
        e["label"], e["confidence"], e["evidence"] = label, conf, evidence_json(evidence)
        e["event_id"] = _event_id(sy, e)
        rows.append({k: e.get(k) for k in EVENT_SCHEMA})
    if not rows:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


def _cliff_spans(cliff_events: list[dict], p: DetectParams) -> list[tuple[int, int]]:
    """(from, to) ns of each cliff event up to its recovery (at most ``aftermath_max_s`` after
    its trough): the stretches the flow baselines leave out (a cascade into a withdrawn book)."""
    out = []
    for ev in cliff_events:
        end = ev["t_trough"] + int(p.aftermath_max_s * NS_PER_S)
        rec = ev.get("recovered_at")
        out.append((ev["t_peak"] - int(p.flow_exclude_before_s * NS_PER_S), min(rec, end) if rec is not None else end))
    return out


def _program_before(ctx: Context, fw: dict, ts: int, p: DetectParams) -> bool:
    """Is the part of a program before ``ts`` a program on its own (ratio and z against the
    episode's trailing baseline, at least ``flow_min_duration_s`` long)? A stretch of ordinary
    flow that only passed the test with the cascade after a withdrawal is not."""
    mu, var = fw.get("baseline_rate") or 0.0, fw.get("baseline_var") or 0.0
    dur = (ts - fw["start"]) / NS_PER_S
    if dur < p.flow_min_duration_s or not (mu > 0 and var > 0):
        return False
    vol = float(ctx.trades.filter((pl.col("aggressor") == fw["aggressor"]) & (pl.col("ts") >= fw["start"])
                                  & (pl.col("ts") < ts))["size"].sum() or 0)
    return vol >= p.flow_min_ratio * dur * mu and (vol - dur * mu) / math.sqrt(dur * var) >= p.flow_min_z


def _volume_share_before(ctx: Context, fw: dict, ts: int) -> float:
    """Share of a program's volume (its aggressor's prints in [start, end]) before ``ts``."""
    t = ctx.trades.filter((pl.col("aggressor") == fw["aggressor"]) & (pl.col("ts") >= fw["start"])
                          & (pl.col("ts") <= fw["end"]))
    tot = float(t["size"].sum() or 0)
    return float(t.filter(pl.col("ts") < ts)["size"].sum() or 0) / tot if tot > 0 else 0.0


def _event_id(sy: str, e: dict) -> str:
    t = dt.datetime.fromtimestamp(e["start_ts"] // NS_PER_S, tz=dt.timezone.utc)
    ms = (e["start_ts"] % NS_PER_S) // NS_PER_MS
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
    # the largest net cancellation (cancelled - added) within any sync_ms: a pull removes a
    # block of quotes at once and does not put them back; re-quoting makers cancel and re-add
    if ok.height:
        nt = ok["ts"].to_numpy()
        net = (ok["cancelled"] - ok["added"]).to_numpy().astype(np.float64)
        c = np.concatenate([[0.0], np.cumsum(net)])
        h = np.searchsorted(nt, nt + p.sync_ms * NS_PER_MS, side="right")
        out["_burst_net_cancel"] = float(max(0.0, (c[h] - c[np.arange(nt.size)]).max()))
    if dec.height:
        ts = dec["ts"].to_numpy()
        qty = (-dec["delta"]).to_numpy().astype(np.float64)
        cum = np.concatenate([[0.0], np.cumsum(qty)])
        hi = np.searchsorted(ts, ts + p.sync_ms * NS_PER_MS, side="right")
        sums = cum[hi] - cum[np.arange(ts.size)]
        k = int(np.argmax(sums))
        out["sync_share_500ms"] = float(sums[k] / cum[-1]) if cum[-1] > 0 else None
        # the same over the cancelled quantity only (a pull is synchronised even when trades
        # that follow it are spread out)
        cq = dec["cancelled"].to_numpy().astype(np.float64)
        if cq.sum() > 0:
            ccum = np.concatenate([[0.0], np.cumsum(cq)])
            out["_sync_cancel_500ms"] = float((ccum[hi] - ccum[np.arange(ts.size)]).max() / ccum[-1])
        in_win = dec.slice(k, int(hi[k] - k))
        out["levels_emptied_500ms"] = int(in_win.filter(pl.col("size") == 0).select("side", "price").n_unique())
        if touch is not None:
            lv = (dec.with_columns((-pl.col("delta")).alias("q"))
                  .group_by("side", "price", maintain_order=True)
                  .agg(pl.col("ts"), pl.col("q"), pl.col("prev_size").first()))
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
         .with_columns((pl.col("ts") // NS_PER_S).alias("s")).group_by("s", maintain_order=True)
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
    after = _top_at(ctx.top, w1, after=True, within=int(p.window_s * NS_PER_S)) or _top_at(ctx.top, w1)
    if before:
        e["mid_before"], e["spread_before"] = before["mid"], before["spread"]
    if after:
        e["mid_after"], e["spread_after"] = after["mid"], after["spread"]
    if before and after and before["mid"]:
        e["price_move_bps"] = (after["mid"] - before["mid"]) / before["mid"] * 1e4
        later = _top_at(ctx.top, w1 + int(p.price_after_s * NS_PER_S))
        if later and after["mid"]:
            e["price_move_after_bps"] = (later["mid"] - after["mid"]) / after["mid"] * 1e4
    ib = _impact(ctx, w0 - int(p.vacuum_before_s * NS_PER_S), w0 - int(p.vacuum_gap_s * NS_PER_S))
    ia = _impact(ctx, w1, w1 + int(p.vacuum_after_s * NS_PER_S))
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
    span = 2 * (seg_t[j90b] - seg_t[j50]) + NS_PER_S
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
    if len(sides) == 2 and ctx.lc is not None and floor is not None:
        # level data: the weaker side must have lost quantity at its own levels (the band at the
        # start, fixed prices), not only moved out of a band that follows a mid the other
        # side's pull dragged away
        prim = max(ev["cliffs"].values(), key=lambda c: c.frac).side if ev["cliffs"] else falling[0]
        other = "ask" if prim == "bid" else "bid"
        lost = -float(_window_changes(ctx, [other], w0, w90 + g, floor, cap)["delta"].sum() or 0)
        dep = e.get(f"depth_before_{other}") or 0
        if dep > 0 and lost < p.other_min_frac * dep:
            sides = [prim]
            e["_other_band_edge"] = other
    e["sides"] = "both" if len(sides) == 2 else sides[0]
    e["other_side_fell"] = len(sides) == 2
    tot_b = sum(e.get(f"depth_before_{s}") or 0 for s in sides)
    tot_a = sum(e.get(f"depth_after_{s}") or 0 for s in sides)
    e["removed_frac"] = (tot_b - tot_a) / tot_b if tot_b > 0 else None
    e["start_ts"] = min(v[0] for v in starts.values())
    e["end_ts"] = max(v[1] for v in starts.values())
    e["speed_ms"] = (e["end_ts"] - e["start_ts"]) / NS_PER_MS
    if len(starts) == 2 and ctx.data_kind != "bands":  # band data: both fell within one step, order unknown
        e["side_lag_ms"] = (starts["ask"][0] - starts["bid"][0]) / NS_PER_MS
    rec = ev.get("recovered_at")
    e["_recovered_at"] = rec
    e["recovery_ms"] = None if rec is None else max(0.0, (rec - e["end_ts"]) / NS_PER_MS)
    _price_metrics(ctx, e, w0, w1, p)
    e["trade_volume"] = _trade_volume(ctx, sides, w0, w1)
    if ctx.lc is not None:
        e.update(_quantities(ctx, sides, w0, w1, floor, cap, before, p))
        dep = sum(e.get(f"depth_before_{s}") or 0 for s in sides)
        if e.get("_burst_net_cancel") is not None and dep > 0:
            e["_burst_pull_frac"] = e["_burst_net_cancel"] / dep
        _pull_metrics(ctx, e, w0 - int(p.pull_before_s * NS_PER_S), e["start_ts"] + int(p.pull_after_s * NS_PER_S), p)
    else:
        _band_shares(ctx, e, sides, w0, w1)
    return e


def _side_pulls(ctx: Context, a: int, b: int, p: DetectParams) -> dict:
    """Level data: per side, the largest net cancellation (cancelled - added) within any
    ``sync_ms`` in (a, b] inside the narrowest usable band at ``a``, as a share of that band's
    depth at ``a``, and when it happened: {side: (share, ts)}. A withdrawal pulls both sides at
    once (whatever trades follow); a one-sided pull or a program leaves the other side in place."""
    out: dict = {}
    if ctx.lc is None:
        return out
    band = min(ctx.bands)
    before = _top_at(ctx.top, a)
    floor, cap = _band_bounds(before["mid"] if before else None, band)
    if floor is None:
        return out
    for s in SIDES:
        t, q = _series(ctx, s, band)
        dep = _at(t, q, np.array([a]))[0] if t.size else float("nan")
        w = _window_changes(ctx, [s], a, b, floor, cap).filter(pl.col("cause").is_in(["add", "trade", "cancel", "mixed"]))
        if math.isnan(dep) or dep <= 0 or w.height == 0:
            continue
        nt = w["ts"].to_numpy()
        net = (w["cancelled"] - w["added"]).to_numpy().astype(np.float64)
        c = np.concatenate([[0.0], np.cumsum(net)])
        h = np.searchsorted(nt, nt + p.sync_ms * NS_PER_MS, side="right")
        sums = c[h] - c[np.arange(nt.size)]
        k = int(np.argmax(sums))
        out[s] = (max(0.0, float(sums[k])) / dep, int(nt[k]))
    return out


def _fall_noise(ctx: Context, side: str, band: float, p: DetectParams) -> float | None:
    """The ``pull_noise_q`` quantile of the band's relative depth falls over ``sync_ms`` across
    the whole series (cached): how much a side ordinarily loses in 500 ms (volatile books
    re-quote in large blocks), so a pull burst can be judged against the instrument's own
    churn."""
    key = ("fall_noise", side, band)
    if key not in ctx.info:
        t, q = _series(ctx, side, band)
        val = None
        if t.size > 10:
            later = _at(t, q, t + p.sync_ms * NS_PER_MS)
            with np.errstate(invalid="ignore", divide="ignore"):
                f = (q - later) / np.maximum(q, 1.0)
            f = f[~np.isnan(f)]
            if f.size:
                val = float(np.quantile(f, p.pull_noise_q))
        ctx.info[key] = val
    return ctx.info[key]


def _pull_metrics(ctx: Context, e: dict, a: int, b: int, p: DetectParams) -> None:
    """``_pull_bid`` / ``_pull_ask`` (see :func:`_side_pulls`) and ``_pull_lag_ms`` (the time
    between the two sides' bursts) on the event, for the classifier."""
    sp = _side_pulls(ctx, a, b, p)
    for s, (share, _) in sp.items():
        e[f"_pull_{s}"] = share
        e[f"_pull_noise_{s}"] = _fall_noise(ctx, s, min(ctx.bands), p)
    if len(sp) == 2:
        e["_pull_lag_ms"] = abs(sp["ask"][1] - sp["bid"][1]) / NS_PER_MS
        e["_pull_at_ms"] = (max(sp["ask"][1], sp["bid"][1]) - e["start_ts"]) / NS_PER_MS


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
               "speed_ms": (fw["end"] - fw["start"]) / NS_PER_MS}
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
    e["program"] = {"aggressor": fw["aggressor"], "bursts": fw["bursts"], "prints": fw["prints"],
                    "ratio": round(fw["ratio"], 2), "z": round(fw["z"], 1),
                    "volume_base": round(fw["volume"] / 10 ** ctx.size_decimals, 8)}
    if ctx.lc is not None:
        # the band follows the mid while the program walks the book: no price filter
        e.update(_quantities(ctx, [s], w0, w1, None, None, before, p))
        _pull_metrics(ctx, e, fw["start"] - int(p.pull_before_s * NS_PER_S), fw["start"] + int(p.pull_after_s * NS_PER_S), p)
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
               "band_pct": None, "speed_ms": (fl["end"] - fl["start"]) / NS_PER_MS,
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
            old = store.read_part(f)
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
        with store.reading():  # one consistent version of the instrument (see Store.reading)
            ev = detect_instrument(store, ex, sy, ts_from, ts_to, params)
            if write:
                write_events(store, ex, sy, ev, ts_from, ts_to)
        frames.append(ev.select(pl.lit(ex).alias("exchange"), pl.lit(sy).alias("symbol"), pl.all()))
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame()
