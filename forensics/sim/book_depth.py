"""The optional Binance ``bookDepth`` CSV, computed from the engine's true book
(:data:`BOOK_DEPTH_DOC`)."""
from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import polars as pl

from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
from numba import njit  # noqa: E402

from forensics.sim.config import BATCH_MS, SimConfig, _dec_expr  # noqa: E402
from forensics.timeutil import NS_PER_MS  # noqa: E402
from forensics.sim.engine import EngineOutput  # noqa: E402

BOOK_DEPTH_DOC = """
``<SYMBOL>-bookDepth-<date>.csv`` (only with ``book_depth_every_s``, CLI ``--book-depth 30s``)
    Binance futures daily ``bookDepth`` CSV, header ``timestamp,percentage,depth,notional``:
    ``timestamp`` UTC text ``YYYY-MM-DD HH:MM:SS``; one row per (timestamp, percentage),
    percentages ascending (bids negative, asks positive, e.g. ``-5..-1,1..5``); ``depth`` =
    cumulative base quantity resting within that % of the mid, ``notional`` = its cumulative
    quote value (exact decimals). Computed from the engine's **true** book (every operation
    with a time before the sample second), mid = (best bid + best ask) / 2 (when a side is
    empty: the mid at the last 100 ms batch end where both sides were quoted); a level exactly
    on a band edge is inside (integer comparison). Samples every ``book_depth_every_s``
    (Binance: ~30 s) from a seeded phase, each moved by a whole ``-j..+j`` s
    (``book_depth_jitter_s``, default 1, capped so samples stay in order), drawn from
    ``default_rng([seed, 3000])`` (the other outputs do not change). Bands
    ``book_depth_bands`` (default 1..5 as in real files; newer real files also carry 0.2): the
    simulated book is narrow (the makers' ladders reach ~100 ticks = 0.01% of a 120,000 mid,
    calm depth ~17 BTC per side), so bands of 0.05% and wider are all equal and hold the whole
    side; ``0.005,0.01,0.02,0.05`` shows structure (a withdrawal empties them all). Narrower
    bands are noisy (false cliffs), and in bands this narrow a one-sided pull, which moves the
    mid, also empties the other side's band.
"""


@njit(cache=True)
def _band_depth_kernel(t_ops, side_ops, price_ops, delta_ops, sample_t, fallback_mid2, pct_e6, p_lo, width):
    """Cumulative depth per sample x side x band from the op log (ops in time order).

    ``pct_e6``: band percentages x 1e6 (integers, so band edges compare exactly: a bid at
    ``price`` is inside when ``price >= mid * (1 - pct/100)``, an ask when ``price <= mid *
    (1 + pct/100)``). ``fallback_mid2``: 2 x the last two-sided mid at a batch end before each
    sample (-1 none), used when a side is empty at the sample. Returns (lots[n, 2, B], notional
    in tick*lot[n, 2, B], ok[n]); a sample sees every op with ``t < sample_t``."""
    n, nb = sample_t.shape[0], pct_e6.shape[0]
    one = np.int64(100_000_000)           # 100% x 1e6
    lv = np.zeros((2, width), np.int64)
    lots = np.zeros((n, 2, nb), np.int64)
    notl = np.zeros((n, 2, nb), np.int64)
    ok = np.zeros(n, np.bool_)
    wide = pct_e6.max()
    i = 0
    for k in range(n):
        while i < t_ops.shape[0] and t_ops[i] < sample_t[k]:
            lv[side_ops[i], price_ops[i] - p_lo] += delta_ops[i]
            i += 1
        bb = width - 1
        while bb >= 0 and lv[0, bb] <= 0:
            bb -= 1
        ba = 0
        while ba < width and lv[1, ba] <= 0:
            ba += 1
        mid2 = 2 * p_lo + bb + ba if (bb >= 0 and ba < width) else fallback_mid2[k]   # 2 x mid, ticks
        if mid2 < 0:
            continue
        ok[k] = True
        for side in range(2):
            j = bb if side == 0 else ba
            step = -1 if side == 0 else 1
            while 0 <= j < width:
                price2e8 = (p_lo + j) * 2 * one
                if side == 0 and price2e8 < mid2 * (one - wide):
                    break
                if side == 1 and price2e8 > mid2 * (one + wide):
                    break
                q = lv[side, j]
                if q > 0:
                    for b in range(nb):
                        if (price2e8 >= mid2 * (one - pct_e6[b])) if side == 0 else (price2e8 <= mid2 * (one + pct_e6[b])):
                            lots[k, side, b] += q
                            notl[k, side, b] += q * (p_lo + j)
                j += step
    return lots, notl, ok


def book_depth_times_s(cfg: SimConfig, n_batches: int) -> np.ndarray:
    """UTC whole seconds of the bookDepth samples (strictly increasing, inside the capture)."""
    every = float(cfg.book_depth_every_s)
    rng = np.random.default_rng([cfg.seed, 3000])
    start_ns = cfg.resolved_start_ns()
    first = -(-start_ns // NS_PER_MS // 1000)                     # ceil to a whole second
    end = (start_ns // NS_PER_MS + n_batches * BATCH_MS) // 1000
    j = int(min(cfg.book_depth_jitter_s, max(0.0, math.floor((every - 1) / 2))))
    phase = int(rng.integers(0, max(1, int(every))))
    nominal = np.round(first + phase + every * np.arange(int((end - first) / every) + 2)).astype(np.int64)
    ts = nominal + (rng.integers(-j, j + 1, nominal.size) if j else 0)
    return ts[(ts >= first) & (ts <= end)]


def book_depth_frame(eng: EngineOutput) -> pl.DataFrame:
    """The bookDepth CSV rows (text columns ``timestamp,percentage,depth,notional``), see
    :data:`BOOK_DEPTH_DOC`."""
    cfg = eng.config
    ts = book_depth_times_s(cfg, eng.n_batches)
    pct = np.array(sorted(float(b) for b in cfg.book_depth_bands))
    ops = eng.ops
    p_lo, p_hi = int(ops[:, 2].min()), int(ops[:, 2].max())
    sample_t = ts * 1000 - eng.start_ms + eng.warm_ms            # engine ms
    pct_e6 = np.round(pct * 1e6).astype(np.int64)
    # the last two-sided mid at a batch end (engine's batch-end best bid/ask), forward-filled
    two = (eng.best_bid >= 0) & (eng.best_ask >= 0)
    mid2_b = np.where(two, eng.best_bid + eng.best_ask, -1)
    last = np.maximum.accumulate(np.where(two, np.arange(two.size), -1))
    mid2_b = np.where(last >= 0, mid2_b[np.maximum(last, 0)], -1)
    b_end = (ts * 1000 - eng.start_ms) // BATCH_MS - 1          # last batch ending at or before the sample
    fallback = np.where(b_end >= 0, mid2_b[np.clip(b_end, 0, two.size - 1)], -1).astype(np.int64)
    lots, notl, ok = _band_depth_kernel(ops[:, 0], ops[:, 1], ops[:, 2], ops[:, 3], sample_t, fallback, pct_e6,
                                        p_lo, p_hi - p_lo + 1)
    k = np.flatnonzero(ok)
    nb = pct.size
    # rows per sample: bids widest -> narrowest (percentage -5..-1), then asks narrowest -> widest
    side = np.r_[np.zeros(nb, np.int64), np.ones(nb, np.int64)]
    band = np.r_[np.arange(nb)[::-1], np.arange(nb)]
    label = [("-" if s == 0 else "") + format(Decimal(repr(float(pct[b]))).normalize(), "f") for s, b in zip(side, band)]
    df = pl.DataFrame({
        "ts": np.repeat(ts[k], 2 * nb), "percentage": np.tile(np.array(label), k.size),
        "lots": lots[k][:, side, band].reshape(-1), "notl": notl[k][:, side, band].reshape(-1)})
    return df.select(
        pl.from_epoch("ts", time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S").alias("timestamp"), "percentage",
        _dec_expr("lots", cfg.lot_units(), cfg.qty_decimals).alias("depth"),
        _dec_expr("notl", cfg.tick_units() * cfg.lot_units(), cfg.price_decimals + cfg.qty_decimals)
        .alias("notional"))
