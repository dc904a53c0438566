"""Exact depth over time: replay of the level book on a regular time grid (issue 4).

Python API (what ``forensics depth`` / ``forensics heatmap``, the detector and the report call)::

    res = compute_depth(store, exchange=None, symbol=None, ts_from=None, ts_to=None,
                        every_ns=1_000_000_000, bands=(0.1, 0.5, 1, 2, 5), write=True)
    res.depth      # long: ts, side, band_pct, qty, notional, levels, grid_ns, data_kind
    res.book_top   # ts, best_bid, best_ask, mid (=bid+ask, 'price2'), spread, sizes, levels,
                   # crossed, locked, valid, grid_ns, data_kind
    res.flags      # data-quality flags (forensics.depth_quality.FLAG_SCHEMA)
    res.wide()     # one row per grid time in real units (exact Decimals), for CSV/Parquet

Frames are in *stored units* (prices int ticks of 10**-price_decimals, sizes int lots of
10**-size_decimals, ``mid`` = best_bid + best_ask) like the store; ``notional`` is quote
currency (float). ``res.instrument`` has the decimals. ``write=True`` upserts the rows into the
derived tables ``depth`` and ``book_top`` (rows of those dates outside the computed window are
kept, rows inside are replaced), so ``forensics sql`` and the report reuse them.

Semantics (exact, no invention):

* Canonical order is ``(ts, seq)``. A *snapshot block* is a maximal run of ``is_snapshot`` rows
  with the same ``ts`` (consecutive update rows); its first row clears both sides, so the block
  replaces the book and makes it *known*.
* Before the first snapshot the book is unknown. A ``gaps`` row is a marker at
  ``(ts_from, seq_from)`` in canonical order (a null ``seq_from`` sorts first at ``ts_from``):
  from there on the book is unknown until the next snapshot block starts. So grid times in
  [ts_from, next snapshot) are null even when no update arrived in between (a resync gap
  recorded as ts_from = last update before the disconnect is unknown from that time on).
  After the instrument's last recorded update the book is unknown too (not frozen).
* The state at grid time ``g`` (multiples of ``every_ns`` since the epoch, UTC aligned) is the
  book after every update and marker with ``ts <= g``. Unknown => every value null.
* Bands as Binance's bookDepth: bid levels with ``price >= mid*(1-b/100)``, ask levels with
  ``price <= mid*(1+b/100)``, cumulative; compared exactly in integers (``b`` is a decimal
  turned into a rational, ``mid*2 = best_bid + best_ask``). A level exactly on the edge counts.
  Without both sides there is no mid and the bands are null.
* Crossed (best_bid > best_ask) and locked (==) books are kept and flagged, never hidden.

Engine: one compiled sequential pass (:func:`_kernel`, numba, ``cache=True``) over integer
arrays: side int8, price as an index into a dense per-tick array (or, when the observed range
is huge, the rank among the distinct prices) with running per-64-level block and
per-4096-level superblock sums of quantity, notional and level count. Best bid/ask are kept
incrementally (when the touch empties, the scan skips empty blocks). At each grid time the
bands are summed from the touch outwards through those blocks, and the heatmap buckets (when
asked) are copied from running per-bucket sums. Input is processed in time slices with the
state carried over, so memory is bounded by the slice size, not by the day. The pass's state
is named (``Slice``, ``GridParams``, ``Levels``, ``GridOut`` and the ``BOOK_STATE`` record;
see "compiled pass" below) and the pass is cut into named steps.
:func:`reference_replay` is the obviously-correct dict-per-side replay the tests compare with.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
import numba as nb
import numpy as np
import polars as pl

from forensics.depth_params import DepthParams
from forensics.errors import ForensicsError
from forensics.schema import conform
from forensics.store import Instrument, Store

from forensics.schema import DEFAULT_BANDS  # noqa: E402  (re-exported: book.DEFAULT_BANDS)

#: depth grid step (its one home and reason: :class:`forensics.depth_params.DepthParams`)
DEFAULT_EVERY_NS = DepthParams().every_ns
#: rows per time slice read from Parquet (state carried between slices)
CHUNK_ROWS = 4_000_000
#: largest observed price range (in ticks) kept as a dense array; beyond, prices are ranked
DENSE_MAX = 4_000_000
#: refuse grids with more points than this (e.g. --every 1ns over a day)
MAX_GRID = 20_000_000
BID, ASK = 0, 1
_BLK, _SBLK = 64, 4096  # levels per block / superblock (shifts 6 and 12)

_I64_MIN = np.iinfo(np.int64).min
_I64_MAX = np.iinfo(np.int64).max


# =============================================================================================
# bands
# =============================================================================================

@dataclass(frozen=True)
class Bands:
    """Band widths in % of mid as exact decimals; ``num / denom`` per band (ascending)."""

    pct: tuple[Decimal, ...]
    denom: int

    @property
    def num(self) -> np.ndarray:
        return np.array([int(p * self.denom) for p in self.pct], np.int64)

    @property
    def floats(self) -> list[float]:
        return [float(p) for p in self.pct]

    @property
    def labels(self) -> list[str]:
        return [format(p.normalize(), "f") for p in self.pct]

    def __len__(self) -> int:
        return len(self.pct)


def parse_bands(spec: str | Sequence | Bands | None) -> Bands:
    """'0.1,0.5,1,2,5' or a sequence of numbers -> :class:`Bands` (sorted, unique).

    Each band must be a decimal in (0, 100] with at most 6 decimals."""
    if isinstance(spec, Bands):
        return spec
    if spec is None:
        spec = DEFAULT_BANDS
    items = [s for s in spec.replace(";", ",").split(",")] if isinstance(spec, str) else list(spec)
    out = set()
    for item in items:
        text = str(item).strip()
        if text.endswith("%"):
            text = text[:-1].strip()
        if not text:
            continue
        try:
            d = Decimal(text if not isinstance(item, float) else repr(item))
        except (InvalidOperation, ValueError):
            raise ForensicsError(f"bad --bands value {item!r}: use percentages of mid, e.g. 0.1,0.5,1,2,5") from None
        if not d.is_finite() or d <= 0 or d > 100:
            raise ForensicsError(f"bad --bands value {item!r}: each band must be > 0 and <= 100 (% of mid)")
        if d.as_tuple().exponent < -6 and d != d.quantize(Decimal("0.000001")):
            raise ForensicsError(f"bad --bands value {item!r}: at most 6 decimals")
        out.add(d.normalize())
    if not out:
        raise ForensicsError("bad --bands: give at least one band, e.g. 0.1,0.5,1,2,5")
    pct = tuple(sorted(out))
    decs = max(max(0, -p.as_tuple().exponent) for p in pct)
    return Bands(pct, 10 ** decs)


# =============================================================================================
# price index: price (int ticks) -> dense level index
# =============================================================================================

@dataclass
class PriceIndex:
    """Maps stored prices to level indices. ``lp[i]`` is the price of index i (strictly
    increasing, padded to a multiple of 4096 with prices beyond the range that never occur)."""

    lp: np.ndarray
    n_real: int
    dense: bool
    pmin: int

    @classmethod
    def build(cls, pmin: int | None = None, pmax: int | None = None, prices: np.ndarray | None = None,
              dense_max: int = DENSE_MAX) -> "PriceIndex":
        """Dense over [pmin, pmax] if narrow enough, else ranks of ``prices`` (distinct values)."""
        if pmin is None or pmax is None:
            if prices is None or len(prices) == 0:
                pmin = pmax = 0
            else:
                pmin, pmax = int(prices.min()), int(prices.max())
        span = int(pmax) - int(pmin) + 1
        if span <= dense_max:
            npad = max(_SBLK, -(-span // _SBLK) * _SBLK)
            return cls(np.arange(pmin, pmin + npad, dtype=np.int64), span, True, int(pmin))
        if prices is None:
            raise ValueError("price range too wide for a dense index: give the distinct prices")
        uniq = np.unique(np.asarray(prices, np.int64))
        npad = max(_SBLK, -(-uniq.size // _SBLK) * _SBLK)
        pad = uniq[-1] + 1 + np.arange(npad - uniq.size, dtype=np.int64)
        return cls(np.concatenate([uniq, pad]), int(uniq.size), False, int(uniq[0]))

    def index(self, price: np.ndarray) -> np.ndarray:
        price = np.asarray(price, np.int64)
        if self.dense:
            idx = price - self.pmin
            if idx.size and (idx.min() < 0 or idx.max() >= self.n_real):
                raise ValueError("price outside the planned range")
            return idx
        idx = np.searchsorted(self.lp[: self.n_real], price)
        if idx.size and (idx.max() >= self.n_real or not np.array_equal(self.lp[idx], price)):
            raise ValueError("price not in the planned price set")
        return idx.astype(np.int64)


@dataclass(frozen=True)
class HeatSpec:
    """Heatmap price buckets in stored price units: bucket k = [lo + k*width, lo + (k+1)*width)."""

    lo: int
    width: int
    n: int

    @property
    def hi(self) -> int:
        return self.lo + self.width * self.n

    def bucket_map(self, lp: np.ndarray) -> np.ndarray:
        b = (lp - self.lo) // self.width
        return np.where((lp >= self.lo) & (lp < self.hi), b, -1).astype(np.int32)


# =============================================================================================
# compiled pass
# =============================================================================================
#
# Named state. Inputs, parameters, the level book and the grid outputs are ``NamedTuple``s of
# arrays (numba passes them as typed tuples: ``book.size``, ``out.best_bid``); the running
# scalars carried between slices are one numpy record (:data:`BOOK_STATE`: ``cur.best_bid``).
# A new field is one line in its class (and its allocation in :class:`Replayer`).


class Slice(NamedTuple):
    """One time slice of updates, sorted by ``(ts, seq)``."""

    ts: np.ndarray      # int64 UTC ns
    seq: np.ndarray     # int64
    side: np.ndarray    # int8: 0 bid, 1 ask
    level: np.ndarray   # int64: index into GridParams.prices
    size: np.ndarray    # int64: new absolute size (lots)
    snap: np.ndarray    # bool: row of a snapshot block


class GridParams(NamedTuple):
    """What the pass is told: price levels, grid, gap markers, bands, heatmap buckets."""

    prices: np.ndarray       # int64 price of each level index (strictly increasing, padded)
    dense: bool              # prices[i] == prices[0] + i over the whole padded array
    g0: int                  # first grid time (UTC ns)
    every: int               # grid step (ns)
    n_grid: int              # grid times
    gap_ts: np.ndarray       # int64 gap markers (ts_from, seq_from), sorted
    gap_seq: np.ndarray      # int64
    bid_factor: np.ndarray   # int64 per band: bid threshold = ceil(mid2 * bid_factor / band_denom)
    ask_factor: np.ndarray   # int64 per band: ask threshold = floor(mid2 * ask_factor / band_denom)
    band_denom: int          # 200 * the bands' common denominator
    heat_bucket: np.ndarray  # int32 heatmap bucket of each level index (-1: outside)
    do_heat: bool


class Levels(NamedTuple):
    """The level book per side, with running sums per 64-level block and 4096-level superblock."""

    size: np.ndarray            # int64 (2, n_levels)
    blk_qty: np.ndarray         # int64 (2, n_levels / 64)
    blk_notional: np.ndarray    # int64 (2, n_levels / 64): sum of size * price
    blk_count: np.ndarray       # int64 (2, n_levels / 64): non-empty levels
    sblk_qty: np.ndarray        # int64 (2, n_levels / 4096)
    sblk_notional: np.ndarray   # int64
    sblk_count: np.ndarray      # int64
    heat: np.ndarray            # int64 (2, n_buckets): size per heatmap bucket


class GridOut(NamedTuple):
    """One row per grid time (see :class:`GridResult`)."""

    valid: np.ndarray          # uint8 (m,)
    best_bid: np.ndarray       # int64 price, -1 when absent
    best_ask: np.ndarray       # int64 price, -1 when absent
    best_bid_size: np.ndarray  # int64
    best_ask_size: np.ndarray  # int64
    side_levels: np.ndarray    # int64 (m, 2)
    mid_ok: np.ndarray         # uint8 (m,)
    qty: np.ndarray            # int64 (m, 2, n_bands), cumulative from the touch
    notional: np.ndarray       # int64 (m, 2, n_bands)
    levels: np.ndarray         # int64 (m, 2, n_bands)
    heat: np.ndarray           # int64 (m, 2, n_buckets)


#: running scalars of the replay, carried from slice to slice (one record)
BOOK_STATE = np.dtype([
    ("best_bid", np.int64),       # level index of the best bid (-1: none)
    ("best_ask", np.int64),       # level index of the best ask (n_levels: none)
    ("valid", np.int64),          # 1 while the book is known (after a snapshot, before a gap)
    ("prev_snap", np.int64),      # the previous row was a snapshot row
    ("prev_ts", np.int64),        # ts of the previous row
    ("bid_levels", np.int64),     # non-empty levels per side
    ("ask_levels", np.int64),
    ("bid_lo", np.int64),         # level range touched since the last clear, per side
    ("bid_hi", np.int64),
    ("ask_lo", np.int64),
    ("ask_hi", np.int64),
    ("next_gap", np.int64),       # first gap marker not yet applied
    ("next_row", np.int64),       # first grid row not yet emitted
    ("crossed_times", np.int64),  # timestamps ending crossed / locked, and the first of each
    ("first_crossed", np.int64),
    ("locked_times", np.int64),
    ("first_locked", np.int64),
    ("snapshots", np.int64),      # snapshot blocks
    ("updates", np.int64),        # rows applied
    ("unknown_updates", np.int64),  # rows applied while the book was unknown
    ("gap_markers", np.int64),    # gap markers applied
], align=True)

#: the pass's steps allocate nothing, so they are compiled without NRT reference counting
#: (numba would otherwise emit an atomic inc/dec for every array of the state tuples at each
#: call of a step with branches)
_step = nb.njit(cache=True, _nrt=False)
#: ... and the per-row ones are inlined into the pass (a call would pass every array of the
#: state tuples as arguments)
_row_step = nb.njit(cache=True, _nrt=False, inline="always")


@_step
def _lower_bound(a, x):
    lo, hi = 0, a.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_step
def _upper_bound(a, x):
    lo, hi = 0, a.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_step
def _range_sum(book, prices, side, lo, hi):
    """(qty, notional, levels) of ``side`` over level indices [lo, hi]."""
    q = 0
    notional = 0
    count = 0
    i = lo
    while i <= hi:
        if (i & 63) == 0 and i + 63 <= hi:
            b = i >> 6
            if (b & 63) == 0 and i + 4095 <= hi:
                k = b >> 6
                q += book.sblk_qty[side, k]
                notional += book.sblk_notional[side, k]
                count += book.sblk_count[side, k]
                i += 4096
            else:
                q += book.blk_qty[side, b]
                notional += book.blk_notional[side, b]
                count += book.blk_count[side, b]
                i += 64
        else:
            v = book.size[side, i]
            if v != 0:
                q += v
                notional += v * prices[i]
                count += 1
            i += 1
    return q, notional, count


@_step
def _prev_nonempty(book, side, i):
    """Largest index <= i with a non-empty level on ``side``, or -1."""
    k = i
    while k >= 0:
        if (k & 63) == 63:
            b = k >> 6
            if (b & 63) == 63 and book.sblk_count[side, b >> 6] == 0:
                k -= 4096
                continue
            if book.blk_count[side, b] == 0:
                k -= 64
                continue
        if book.size[side, k] != 0:
            return k
        k -= 1
    return -1


@_step
def _next_nonempty(book, side, i, n):
    """Smallest index >= i with a non-empty level on ``side``, or n."""
    k = i
    while k < n:
        if (k & 63) == 0:
            b = k >> 6
            if (b & 63) == 0 and book.sblk_count[side, b >> 6] == 0:
                k += 4096
                continue
            if book.blk_count[side, b] == 0:
                k += 64
                continue
        if book.size[side, k] != 0:
            return k
        k += 1
    return n


@_step
def _emit_bands(k, cfg, book, cur, out):
    """Band sums of grid row ``k`` (both sides present): cumulative from the touch outwards,
    thresholds compared exactly in integers (``mid2 = best_bid + best_ask``)."""
    prices = cfg.prices
    n_levels = prices.shape[0]
    M = cfg.band_denom
    bb, ba = cur.best_bid, cur.best_ask
    mid2 = prices[bb] + prices[ba]
    qq = mid2 // M
    rr = mid2 - qq * M
    # bids: threshold t_r = ceil(mid2 * bid_factor_r / M); levels [lo_r, bb], cumulative
    hi = bb
    cq = 0
    cn = 0
    cc = 0
    for r in range(cfg.bid_factor.shape[0]):
        f = cfg.bid_factor[r]
        thr = qq * f + (rr * f + M - 1) // M
        if cfg.dense:
            lo = min(max(thr - prices[0], 0), n_levels)
        else:
            lo = _lower_bound(prices, thr)
        if lo <= hi:
            q, notional, count = _range_sum(book, prices, 0, lo, hi)
            cq += q
            cn += notional
            cc += count
            hi = lo - 1
        out.qty[k, 0, r] = cq
        out.notional[k, 0, r] = cn
        out.levels[k, 0, r] = cc
    # asks: threshold t_r = floor(mid2 * ask_factor_r / M); levels [ba, hi_r]. The mirror of the
    # bid loop on purpose (duplicates lists the pair): rounding and walk direction differ, and one
    # loop branching on the side measured 4-34% slower (interleaved runs, loaded machine; issue 13)
    lo = ba
    cq = 0
    cn = 0
    cc = 0
    for r in range(cfg.ask_factor.shape[0]):
        f = cfg.ask_factor[r]
        thr = qq * f + (rr * f) // M
        if cfg.dense:
            hi = min(max(thr - prices[0] + 1, 0), n_levels) - 1
        else:
            hi = _upper_bound(prices, thr) - 1
        if lo <= hi:
            q, notional, count = _range_sum(book, prices, 1, lo, hi)
            cq += q
            cn += notional
            cc += count
            lo = hi + 1
        out.qty[k, 1, r] = cq
        out.notional[k, 1, r] = cn
        out.levels[k, 1, r] = cc


@_step
def _emit(k, cfg, book, cur, out):
    """Write grid row ``k`` from the current state (nothing while the book is unknown)."""
    prices = cfg.prices
    n_levels = prices.shape[0]
    if cur.valid == 0:
        return
    bb, ba = cur.best_bid, cur.best_ask
    out.valid[k] = 1
    out.side_levels[k, 0] = cur.bid_levels
    out.side_levels[k, 1] = cur.ask_levels
    if bb >= 0:
        out.best_bid[k] = prices[bb]
        out.best_bid_size[k] = book.size[0, bb]
    if ba < n_levels:
        out.best_ask[k] = prices[ba]
        out.best_ask_size[k] = book.size[1, ba]
    if cfg.do_heat:
        for s in range(2):
            for h in range(book.heat.shape[1]):
                out.heat[k, s, h] = book.heat[s, h]
    if bb >= 0 and ba < n_levels:
        out.mid_ok[k] = 1
        _emit_bands(k, cfg, book, cur, out)


@_row_step
def _markers_through(cfg, cur, t, seq):
    """Apply the gap markers at or before ``(t, seq)``: the book becomes unknown."""
    gp = cur.next_gap
    ng = cfg.gap_ts.shape[0]
    while gp < ng and (cfg.gap_ts[gp] < t or (cfg.gap_ts[gp] == t and cfg.gap_seq[gp] <= seq)):
        cur.valid = 0
        cur.gap_markers += 1
        gp += 1
    cur.next_gap = gp


@_row_step
def _emit_before(cfg, book, cur, out, t):
    """Emit every grid row with grid time < ``t``: the state is final for them (markers at or
    before a grid time apply to it)."""
    gi = cur.next_row
    g = cfg.g0 + gi * cfg.every
    while gi < cfg.n_grid and g < t:
        _markers_through(cfg, cur, g, _I64_MAX)
        _emit(gi, cfg, book, cur, out)
        gi += 1
        g += cfg.every
    cur.next_row = gi


@_step
def _clear_side(book, side, lo, hi):
    """Zero the level range [lo, hi] of ``side`` and its block sums."""
    for i in range(lo, hi + 1):
        book.size[side, i] = 0
    for b in range(lo >> 6, (hi >> 6) + 1):
        book.blk_qty[side, b] = 0
        book.blk_notional[side, b] = 0
        book.blk_count[side, b] = 0
    for k in range(lo >> 12, (hi >> 12) + 1):
        book.sblk_qty[side, k] = 0
        book.sblk_notional[side, k] = 0
        book.sblk_count[side, k] = 0


@_step
def _start_snapshot(cfg, book, cur):
    """A snapshot block starts: clear both sides (only the touched range); the book is known."""
    n_levels = cfg.prices.shape[0]
    if cur.bid_hi >= cur.bid_lo:
        _clear_side(book, 0, cur.bid_lo, cur.bid_hi)
    if cur.ask_hi >= cur.ask_lo:
        _clear_side(book, 1, cur.ask_lo, cur.ask_hi)
    if cfg.do_heat:
        for s in range(2):
            for h in range(book.heat.shape[1]):
                book.heat[s, h] = 0
    cur.bid_lo = n_levels
    cur.bid_hi = -1
    cur.ask_lo = n_levels
    cur.ask_hi = -1
    cur.best_bid = -1
    cur.best_ask = n_levels
    cur.bid_levels = 0
    cur.ask_levels = 0
    cur.valid = 1
    cur.snapshots += 1


@_row_step
def _apply(cfg, book, cur, side, i, new):
    """Level ``i`` of ``side`` takes size ``new``: block sums, heatmap, level counts, best."""
    old = book.size[side, i]
    if new == old:
        return
    d = new - old
    book.size[side, i] = new
    p = cfg.prices[i]
    b = i >> 6
    k = b >> 6
    book.blk_qty[side, b] += d
    book.blk_notional[side, b] += d * p
    book.sblk_qty[side, k] += d
    book.sblk_notional[side, k] += d * p
    if cfg.do_heat:
        h = cfg.heat_bucket[i]
        if h >= 0:
            book.heat[side, h] += d
    # the level appears (+1) or empties (-1): non-empty counts per block and side, and the best
    grew = 1 if old == 0 else -1 if new == 0 else 0
    book.blk_count[side, b] += grew
    book.sblk_count[side, k] += grew
    if side == 0:
        cur.bid_lo, cur.bid_hi = min(cur.bid_lo, i), max(cur.bid_hi, i)
        cur.bid_levels += grew
        if grew > 0 and i > cur.best_bid:
            cur.best_bid = i
        elif grew < 0 and i == cur.best_bid:
            cur.best_bid = _prev_nonempty(book, 0, i - 1)
    else:
        cur.ask_lo, cur.ask_hi = min(cur.ask_lo, i), max(cur.ask_hi, i)
        cur.ask_levels += grew
        if grew > 0 and i < cur.best_ask:
            cur.best_ask = i
        elif grew < 0 and i == cur.best_ask:
            cur.best_ask = _next_nonempty(book, 1, i + 1, cfg.prices.shape[0])


@_row_step
def _end_timestamp(cfg, cur, t):
    """After the last row at ``t``: markers at ``t``, then the crossed / locked check."""
    _markers_through(cfg, cur, t, _I64_MAX)
    if cur.valid == 1 and cur.best_bid >= 0 and cur.best_ask < cfg.prices.shape[0]:
        if cur.best_bid > cur.best_ask:
            cur.crossed_times += 1
            if cur.first_crossed == _I64_MIN:
                cur.first_crossed = t
        elif cur.best_bid == cur.best_ask:
            cur.locked_times += 1
            if cur.first_locked == _I64_MIN:
                cur.first_locked = t


@_step
def _kernel(upd, stop_ts, cfg, book, state, out):
    """Apply one time slice ``upd`` (:class:`Slice`) to ``book`` (:class:`Levels`) and the
    running ``state`` (:data:`BOOK_STATE`, shape (1,)), emitting into ``out`` (:class:`GridOut`)
    every grid row g < ``stop_ts``."""
    cur = state[0]
    n = upd.ts.shape[0]
    for j in range(n):
        t = upd.ts[j]
        _emit_before(cfg, book, cur, out, t)
        _markers_through(cfg, cur, t, upd.seq[j])
        snap = upd.snap[j]
        if snap and not (cur.prev_snap == 1 and cur.prev_ts == t):
            _start_snapshot(cfg, book, cur)
        cur.prev_snap = 1 if snap else 0
        cur.prev_ts = t
        if cur.valid == 0:
            cur.unknown_updates += 1
        _apply(cfg, book, cur, np.int64(upd.side[j]), np.int64(upd.level[j]), upd.size[j])
        if j == n - 1 or upd.ts[j + 1] != t:
            _end_timestamp(cfg, cur, t)
    _emit_before(cfg, book, cur, out, stop_ts)
    cur.updates += n


# =============================================================================================
# grid result + driver
# =============================================================================================

@dataclass
class GridResult:
    """Book state on the grid, in stored integer units. Row k is grid time ``ts[k]``.

    ``best_bid``/``best_ask`` are -1 where absent (invalid or empty side); every other array is
    0 where its value is unknown (``valid`` False, or ``mid_ok`` False for the bands). ``qty``,
    ``notional`` (price*size units) and ``levels`` have shape (m, 2 [bid, ask], n_bands);
    ``heat`` (m, 2, n_buckets) when a heatmap was asked."""

    ts: np.ndarray
    valid: np.ndarray
    best_bid: np.ndarray
    best_ask: np.ndarray
    best_bid_size: np.ndarray
    best_ask_size: np.ndarray
    side_levels: np.ndarray
    mid_ok: np.ndarray
    qty: np.ndarray
    notional: np.ndarray
    levels: np.ndarray
    heat: np.ndarray | None
    stats: dict = field(default_factory=dict)

    ARRAYS = ("ts", "valid", "best_bid", "best_ask", "best_bid_size", "best_ask_size", "side_levels",
              "mid_ok", "qty", "notional", "levels", "heat")
    #: stats compared by :meth:`diff` (``gap_markers`` counts markers applied, which depends on
    #: how far past the last grid time the caller fed markers, so it is not compared)
    STATS = ("updates", "snapshots", "unknown_updates", "crossed_times",
             "first_crossed_ts", "locked_times", "first_locked_ts")

    def diff(self, other: "GridResult", rows: slice | None = None) -> list[str]:
        """Names of arrays (and stats) that differ; [] when exactly equal."""
        out = []
        for name in self.ARRAYS:
            a, b = getattr(self, name), getattr(other, name)
            if a is None or b is None:
                if (a is None) != (b is None):
                    out.append(name)
                continue
            if rows is not None:
                a, b = a[rows], b[rows]
            if a.shape != b.shape or not np.array_equal(a, b):
                out.append(name)
        if rows is None:
            for k in self.STATS:
                if self.stats.get(k) != other.stats.get(k):
                    out.append(f"stats.{k}")
        return out


def grid_bounds(t0: int, t1: int, every_ns: int) -> tuple[int, int]:
    """(first grid time, number of grid times) for [t0, t1] inclusive, UTC aligned."""
    if every_ns <= 0:
        raise ForensicsError("--every must be a positive duration, e.g. 1s or 100ms")
    g0 = -(-t0 // every_ns) * every_ns
    if t1 < g0:
        return g0, 0
    return g0, (t1 - g0) // every_ns + 1


class Replayer:
    """Feeds time slices through the compiled pass; state carried between slices."""

    def __init__(self, prices: PriceIndex, bands: Bands, g0: int, every_ns: int, m: int,
                 gaps_ts: np.ndarray | None = None, gaps_seq: np.ndarray | None = None,
                 heat: HeatSpec | None = None):
        if m > MAX_GRID:
            raise ForensicsError(f"grid of {m:,} times is too fine (max {MAX_GRID:,}): use a coarser "
                                 "--every or a shorter --from/--to window")
        self.prices, self.bands, self.heat_spec = prices, bands, heat
        self.g0, self.every, self.m = int(g0), int(every_ns), int(m)
        npad = prices.lp.size
        nblk, nsb = npad // _BLK, npad // _SBLK
        if gaps_ts is None or len(gaps_ts) == 0:
            gts = gseq = np.zeros(0, np.int64)
        else:
            gts = np.asarray(gaps_ts, np.int64)
            gseq = np.asarray(gaps_seq, np.int64)
            order = np.lexsort((gseq, gts))
            gts, gseq = np.ascontiguousarray(gts[order]), np.ascontiguousarray(gseq[order])
        self.do_heat = heat is not None
        n_buckets = heat.n if heat is not None else 1
        self.params = GridParams(
            prices=prices.lp, dense=bool(prices.dense), g0=self.g0, every=self.every, n_grid=self.m,
            gap_ts=gts, gap_seq=gseq,
            bid_factor=(100 * bands.denom - bands.num).astype(np.int64),
            ask_factor=(100 * bands.denom + bands.num).astype(np.int64),
            band_denom=int(200 * bands.denom),
            heat_bucket=heat.bucket_map(prices.lp) if heat is not None else np.zeros(1, np.int32),
            do_heat=self.do_heat)
        self.book = Levels(*(np.zeros((2, w), np.int64) for w in (npad, nblk, nblk, nblk, nsb, nsb, nsb)),
                           heat=np.zeros((2, n_buckets), np.int64))
        self.state = np.zeros(1, BOOK_STATE)
        for name, value in (("best_bid", -1), ("best_ask", npad), ("bid_lo", npad), ("bid_hi", -1),
                            ("ask_lo", npad), ("ask_hi", -1), ("prev_ts", _I64_MIN),
                            ("first_crossed", _I64_MIN), ("first_locked", _I64_MIN)):
            self.state[name] = value
        nbands = len(bands)
        self.out = GridOut(
            valid=np.zeros(m, np.uint8), best_bid=np.full(m, -1, np.int64), best_ask=np.full(m, -1, np.int64),
            best_bid_size=np.zeros(m, np.int64), best_ask_size=np.zeros(m, np.int64),
            side_levels=np.zeros((m, 2), np.int64), mid_ok=np.zeros(m, np.uint8),
            qty=np.zeros((m, 2, nbands), np.int64), notional=np.zeros((m, 2, nbands), np.int64),
            levels=np.zeros((m, 2, nbands), np.int64),
            heat=np.zeros((m, 2, n_buckets) if heat is not None else (1, 2, 1), np.int64))
        self.last_ts = _I64_MIN
        self.kernel_seconds = 0.0

    def feed(self, ts: np.ndarray, seq: np.ndarray, side: np.ndarray, idx: np.ndarray, size: np.ndarray,
             snap: np.ndarray, stop_ts: int) -> None:
        """One slice, sorted by (ts, seq), starting after the previous slice's last ts; then
        emit grid rows g < stop_ts (stop_ts must be <= the next slice's first ts)."""
        if len(ts):
            if ts[0] <= self.last_ts:
                raise ValueError("slices must not share a timestamp")
            self.last_ts = int(ts[-1])
        t = time.perf_counter()
        _kernel(Slice(ts, seq, side, idx, size, snap), int(stop_ts), self.params, self.book, self.state, self.out)
        self.kernel_seconds += time.perf_counter() - t

    def feed_prices(self, ts, seq, side, price, size, snap, stop_ts) -> None:
        """:meth:`feed` with prices (mapped through the price index)."""
        self.feed(_c(ts, np.int64), _c(seq, np.int64), _c(side, np.int8),
                  self.prices.index(price), _c(size, np.int64), _c(snap, np.bool_), stop_ts)

    def finish(self) -> GridResult:
        empty = np.zeros(0, np.int64)
        self.feed(empty, empty, np.zeros(0, np.int8), empty, empty, np.zeros(0, np.bool_), _I64_MAX)
        cur, out = self.state[0], self.out
        return GridResult(
            ts=self.g0 + self.every * np.arange(self.m, dtype=np.int64),
            valid=out.valid.astype(bool), best_bid=out.best_bid, best_ask=out.best_ask,
            best_bid_size=out.best_bid_size, best_ask_size=out.best_ask_size, side_levels=out.side_levels,
            mid_ok=out.mid_ok.astype(bool), qty=out.qty, notional=out.notional, levels=out.levels,
            heat=out.heat if self.do_heat else None,
            stats={"updates": int(cur["updates"]), "snapshots": int(cur["snapshots"]),
                   "gap_markers": int(cur["gap_markers"]), "unknown_updates": int(cur["unknown_updates"]),
                   "crossed_times": int(cur["crossed_times"]),
                   "first_crossed_ts": None if cur["first_crossed"] == _I64_MIN else int(cur["first_crossed"]),
                   "locked_times": int(cur["locked_times"]),
                   "first_locked_ts": None if cur["first_locked"] == _I64_MIN else int(cur["first_locked"]),
                   "kernel_seconds": self.kernel_seconds})


def _c(a, dtype) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a), dtype=dtype)


def ts_boundaries(ts: np.ndarray, target_rows: int) -> list[int]:
    """Split positions (0 .. n) for slices of about ``target_rows`` that never split a ts."""
    n = len(ts)
    cuts = [0]
    pos = target_rows
    while pos < n:
        # move forward to the first row of a new timestamp
        k = int(np.searchsorted(ts, ts[pos], side="left"))
        if k <= cuts[-1]:
            k = int(np.searchsorted(ts, ts[pos], side="right"))
        if k >= n:
            break
        cuts.append(k)
        pos = k + target_rows
    cuts.append(n)
    return cuts


def replay_arrays(ts, seq, side, price, size, is_snapshot, *, every_ns: int, g0: int | None = None,
                  m: int | None = None, t_end: int | None = None, bands=DEFAULT_BANDS,
                  gaps: tuple[Sequence[int], Sequence[int]] | None = None, heat: HeatSpec | None = None,
                  chunk_rows: int = CHUNK_ROWS, dense_max: int = DENSE_MAX) -> GridResult:
    """The compiled replay over in-memory arrays (tests, benchmarks). ``side`` as 0/1 ints or
    'bid'/'ask'; rows are put in (ts, seq) order. Grid: ``g0`` and ``m``, or from
    ``ts.min()``/``t_end`` (default ts.max()) aligned to ``every_ns``."""
    ts = np.asarray(ts, np.int64)
    seq = np.asarray(seq, np.int64)
    side = np.asarray(side)
    if side.dtype.kind in "UOS":
        side = (side == "ask").astype(np.int8)
    order = np.lexsort((seq, ts))
    ts, seq, side = ts[order], seq[order], np.asarray(side, np.int8)[order]
    price = np.asarray(price, np.int64)[order]
    size = np.asarray(size, np.int64)[order]
    snap = np.asarray(is_snapshot, bool)[order]
    if g0 is None or m is None:
        t0 = int(ts.min()) if ts.size else 0
        t1 = int(t_end if t_end is not None else (ts.max() if ts.size else 0))
        g0, m = grid_bounds(t0, t1, every_ns)
    prices = PriceIndex.build(prices=price, dense_max=dense_max)
    rep = Replayer(prices, parse_bands(bands), g0, every_ns, m,
                   None if gaps is None else gaps[0], None if gaps is None else gaps[1], heat)
    cuts = ts_boundaries(ts, max(1, chunk_rows))
    for a, b in zip(cuts[:-1], cuts[1:]):
        stop = int(ts[b]) if b < len(ts) else _I64_MAX
        rep.feed_prices(ts[a:b], seq[a:b], side[a:b], price[a:b], size[a:b], snap[a:b], stop)
    return rep.finish()


# =============================================================================================
# reference replay (pure Python, obviously correct; for tests)
# =============================================================================================

def reference_replay(updates: Iterable[tuple], gaps: Iterable[tuple] = (), *, g0: int, every_ns: int,
                     m: int, bands=DEFAULT_BANDS, heat: HeatSpec | None = None) -> GridResult:
    """Replay with one dict per side. ``updates``: (ts, seq, side, price, size, is_snapshot) with
    side 'bid'/'ask' or 0/1; ``gaps``: (ts_from, seq_from). Same output as the compiled pass.

    One long function on purpose: the obviously-correct restatement of the module docstring's
    semantics, read top to bottom, sharing no helper (and so no bug) with the compiled pass."""
    bands = parse_bands(bands)
    fr = [Fraction(p) for p in bands.pct]
    nb_ = len(fr)
    items = []
    for ts, seq, side, price, size, snap in updates:
        s = side if isinstance(side, str) else ("bid", "ask")[int(side)]
        items.append((int(ts), int(seq), 1, (s, int(price), int(size), bool(snap))))
    for ts, seq in gaps:
        items.append((int(ts), _I64_MIN if seq is None else int(seq), 0, None))
    items.sort(key=lambda x: (x[0], x[1], x[2]))

    out = GridResult(
        ts=np.array([g0 + k * every_ns for k in range(m)], np.int64), valid=np.zeros(m, bool),
        best_bid=np.full(m, -1, np.int64), best_ask=np.full(m, -1, np.int64),
        best_bid_size=np.zeros(m, np.int64), best_ask_size=np.zeros(m, np.int64),
        side_levels=np.zeros((m, 2), np.int64), mid_ok=np.zeros(m, bool),
        qty=np.zeros((m, 2, nb_), np.int64), notional=np.zeros((m, 2, nb_), np.int64),
        levels=np.zeros((m, 2, nb_), np.int64),
        heat=np.zeros((m, 2, heat.n), np.int64) if heat is not None else None)
    book = {"bid": {}, "ask": {}}
    valid = False
    prev = None  # (ts, is_snapshot) of the previous update row
    stats = dict.fromkeys(("updates", "snapshots", "gap_markers", "unknown_updates", "crossed_times",
                           "locked_times"), 0)
    stats["first_crossed_ts"] = stats["first_locked_ts"] = None

    def emit(k):
        if not valid:
            return
        out.valid[k] = True
        bids, asks = book["bid"], book["ask"]
        out.side_levels[k] = (len(bids), len(asks))
        if bids:
            bb = max(bids)
            out.best_bid[k], out.best_bid_size[k] = bb, bids[bb]
        if asks:
            ba = min(asks)
            out.best_ask[k], out.best_ask_size[k] = ba, asks[ba]
        if heat is not None:
            for si, s in enumerate(("bid", "ask")):
                for p, q in book[s].items():
                    if heat.lo <= p < heat.hi:
                        out.heat[k, si, (p - heat.lo) // heat.width] += q
        if not bids or not asks:
            return
        out.mid_ok[k] = True
        mid2 = max(bids) + min(asks)
        for r, b in enumerate(fr):
            for si, s in enumerate(("bid", "ask")):
                sel = [(p, q) for p, q in book[s].items()
                       if (s == "bid" and p * 200 >= mid2 * (100 - b)) or (s == "ask" and p * 200 <= mid2 * (100 + b))]
                out.qty[k, si, r] = sum(q for _, q in sel)
                out.notional[k, si, r] = sum(p * q for p, q in sel)
                out.levels[k, si, r] = len(sel)

    k = 0
    group_has_update = False
    for n, (ts, seq, kind, u) in enumerate(items):
        while k < m and g0 + k * every_ns < ts:
            emit(k)
            k += 1
        if n == 0 or items[n - 1][0] != ts:
            group_has_update = False
        if kind == 0:
            valid = False
            stats["gap_markers"] += 1
        else:
            s, price, size, snap = u
            group_has_update = True
            stats["updates"] += 1
            if snap and not (prev is not None and prev[1] and prev[0] == ts):
                book = {"bid": {}, "ask": {}}
                valid = True
                stats["snapshots"] += 1
            prev = (ts, snap)
            if not valid:
                stats["unknown_updates"] += 1
            if size:
                book[s][price] = size
            else:
                book[s].pop(price, None)
        last_of_ts = n == len(items) - 1 or items[n + 1][0] != ts
        if last_of_ts and group_has_update and valid and book["bid"] and book["ask"]:
            bb, ba = max(book["bid"]), min(book["ask"])
            if bb > ba:
                stats["crossed_times"] += 1
                if stats["first_crossed_ts"] is None:
                    stats["first_crossed_ts"] = ts
            elif bb == ba:
                stats["locked_times"] += 1
                if stats["first_locked_ts"] is None:
                    stats["first_locked_ts"] = ts
    while k < m:
        emit(k)
        k += 1
    out.stats = stats
    return out


# =============================================================================================
# store pipeline (book data)
# =============================================================================================

_BOOK_COLS = ["ts", "seq", "side", "price", "size", "is_snapshot"]


def _as_store(store) -> Store:
    return store if isinstance(store, Store) else Store(store)


@dataclass
class _RowGroup:
    file: int
    nrows: int
    ts_min: int | None
    ts_max: int | None
    p_min: int | None
    p_max: int | None


def _row_groups(store: Store, files: list) -> list[_RowGroup]:
    """Row-group statistics (rows, ts and price min/max) from Parquet footers."""
    out = []
    for fi, f in enumerate(files):
        md = store.parquet_file(f).metadata
        names = [md.schema.column(j).name for j in range(md.num_columns)]
        cts, cp = names.index("ts") if "ts" in names else None, names.index("price") if "price" in names else None
        for r in range(md.num_row_groups):
            rg = md.row_group(r)
            def mm(c):
                if c is None:
                    return None, None
                s = rg.column(c).statistics
                if s is None or not s.has_min_max:
                    return None, None
                return int(s.min), int(s.max)
            (a, b), (c, d) = mm(cts), mm(cp)
            out.append(_RowGroup(fi, rg.num_rows, a, b, c, d))
    return out


@dataclass
class BookPlan:
    """What one book replay reads: the window, where the replay starts, the slices."""

    exchange: str
    symbol: str
    t0: int
    t1: int
    start: int
    files: list[Path]
    slices: list[tuple[int, int]]  # [a, b) in ts
    pmin: int | None
    pmax: int | None
    rows_estimate: int
    data_end: int = 0  # last book_updates ts of the instrument: the book is unknown after it
    store: Store | None = None  # where ``files`` are read from


def _data_span(store: Store, table: str, ex: str, sy: str) -> tuple[int, int] | None:
    files = store.files(table, ex, sy)
    if not files:
        return None
    groups = _row_groups(store, files)
    if groups and all(g.ts_min is not None for g in groups):
        return min(g.ts_min for g in groups), max(g.ts_max for g in groups)
    r = store.scan(table, ex, sy).select(pl.col("ts").min(), pl.col("ts").max().alias("b")).collect().row(0)
    return None if r[0] is None else (int(r[0]), int(r[1]))


def _last_snapshot_at_or_before(store: Store, ex: str, sy: str, t0: int) -> int | None:
    """ts of the last snapshot row at or before t0, searching date partitions backwards."""
    files = store.files("book_updates", ex, sy, None, t0)
    by_date: dict[str, list] = {}
    for f in files:
        by_date.setdefault(store.part_date(f), []).append(f)
    for day in sorted(by_date, reverse=True):
        r = (store.scan_parts(by_date[day])
             .filter(pl.col("is_snapshot") & (pl.col("ts") <= t0)).select(pl.col("ts").max()).collect())
        if r.height and r.item() is not None:
            return int(r.item())
    return None


def plan_book(store: Store, ex: str, sy: str, ts_from: int | None, ts_to: int | None,
              chunk_rows: int = CHUNK_ROWS) -> BookPlan:
    span = _data_span(store, "book_updates", ex, sy)
    if span is None:
        raise ForensicsError(f"no book_updates for {ex}/{sy} in {store.root}")
    t0 = span[0] if ts_from is None else int(ts_from)
    t1 = span[1] if ts_to is None else int(ts_to)
    if t1 < t0:
        raise ForensicsError("--to is before --from")
    if t0 <= span[0]:
        start = t0
    else:
        snap = _last_snapshot_at_or_before(store, ex, sy, t0)
        start = snap if snap is not None else t0
    files = store.files("book_updates", ex, sy, start, t1)
    groups = [g for g in _row_groups(store, files)
              if g.ts_min is None or (g.ts_max >= start and g.ts_min <= t1)]
    files_used = sorted({g.file for g in groups})
    remap = {fi: k for k, fi in enumerate(files_used)}
    files = [files[fi] for fi in files_used]
    for g in groups:
        g.file = remap[g.file]
    known = all(g.p_min is not None for g in groups) and groups
    pmin = min(g.p_min for g in groups) if known else None
    pmax = max(g.p_max for g in groups) if known else None
    # slices [a, b): cut at row-group starts once about chunk_rows rows are accumulated; a row
    # group larger than chunk_rows is split by time as if its rows were spread evenly
    pieces = []
    for g in groups:
        if g.ts_min is None:
            pieces.append((start, g.nrows))
            continue
        k = max(1, min(-(-g.nrows // max(1, chunk_rows)), g.ts_max - g.ts_min + 1))
        for j in range(k):
            pieces.append((g.ts_min + (g.ts_max - g.ts_min) * j // k, g.nrows // k + (j < g.nrows % k)))
    cuts, acc = [start], 0
    for t, rows in sorted(pieces):
        if acc >= chunk_rows and cuts[-1] < t <= t1:
            cuts.append(t)
            acc = 0
        acc += rows
    cuts.append(t1 + 1)
    return BookPlan(ex, sy, t0, t1, start, files, list(zip(cuts[:-1], cuts[1:])), pmin, pmax,
                    sum(g.nrows for g in groups), span[1], store)


def read_slice(plan: BookPlan, a: int, b: int) -> pl.DataFrame:
    """Rows with a <= ts < b in (ts, seq) order."""
    if not plan.files:
        return pl.DataFrame(schema={"ts": pl.Int64, "seq": pl.Int64, "side": pl.Int8, "price": pl.Int64,
                                    "size": pl.Int64, "is_snapshot": pl.Boolean})
    lf = plan.store.scan_parts(plan.files)
    df = (lf.filter((pl.col("ts") >= a) & (pl.col("ts") < b))
          .select("ts", "seq", (pl.col("side") == "ask").cast(pl.Int8).alias("side"), "price", "size",
                  "is_snapshot").collect())
    if len(plan.files) > 1 or not _sorted_ts_seq(df):
        df = df.sort(["ts", "seq"], maintain_order=True)
    return df


def _sorted_ts_seq(df: pl.DataFrame) -> bool:
    if df.height < 2:
        return True
    ts, seq = df["ts"].to_numpy(), df["seq"].to_numpy()
    dts = np.diff(ts)
    return bool((dts >= 0).all() and ((dts > 0) | (np.diff(seq) > 0)).all())


def load_gaps(store: Store, ex: str, sy: str, a: int, b: int) -> pl.DataFrame:
    """gaps rows with a <= ts_from <= b, sorted (ts_from, seq_from); null seq_from sorts first."""
    if not store.files("gaps", ex, sy):
        return pl.DataFrame(schema={"ts_from": pl.Int64, "ts_to": pl.Int64, "seq_from": pl.Int64,
                                    "reason": pl.Utf8})
    g = store.scan("gaps", ex, sy, a, b, ts_column="ts_from").collect()
    g = g.filter(pl.col("ts_from").is_not_null())
    return g.with_columns(pl.col("seq_from").fill_null(_I64_MIN)).sort(["ts_from", "seq_from"])


@dataclass
class ReplayRun:
    plan: BookPlan
    grid: GridResult
    gaps: pl.DataFrame
    instrument: Instrument
    every_ns: int
    bands: Bands
    heat: HeatSpec | None
    seconds_io: float
    seconds_kernel: float
    seconds_total: float


def replay_store(store: Store, ex: str, sy: str, ts_from: int | None, ts_to: int | None, every_ns: int,
                 bands: Bands, heat: HeatSpec | None = None, chunk_rows: int = CHUNK_ROWS,
                 plan: BookPlan | None = None, dense_max: int = DENSE_MAX) -> ReplayRun:
    """Replay one instrument's book_updates from the store onto the grid (sliced, bounded memory)."""
    t_all = time.perf_counter()
    inst = store.require_instrument(ex, sy)
    plan = plan or plan_book(store, ex, sy, ts_from, ts_to, chunk_rows)
    g0, m = grid_bounds(plan.t0, plan.t1, every_ns)
    if m > MAX_GRID:
        raise ForensicsError(f"grid of {m:,} times is too fine (max {MAX_GRID:,}): use a coarser --every "
                             "or a shorter --from/--to window")
    t_io = 0.0
    if plan.pmin is not None and plan.pmax - plan.pmin + 1 <= dense_max:
        prices = PriceIndex.build(plan.pmin, plan.pmax, dense_max=dense_max)
    else:
        t = time.perf_counter()
        lf = store.scan_parts(plan.files).filter(
            (pl.col("ts") >= plan.start) & (pl.col("ts") <= plan.t1))
        uniq = lf.select(pl.col("price").unique()).collect()["price"].to_numpy() if plan.files else np.zeros(0, np.int64)
        t_io += time.perf_counter() - t
        prices = PriceIndex.build(prices=uniq, dense_max=dense_max)
    gaps = load_gaps(store, ex, sy, plan.start, plan.t1)
    gts, gseq = gaps["ts_from"].to_numpy(), gaps["seq_from"].to_numpy()
    if plan.t1 > plan.data_end:  # after the recorded data the book is unknown, not frozen
        gts, gseq = np.append(gts, plan.data_end + 1), np.append(gseq, _I64_MIN)
    rep = Replayer(prices, bands, g0, every_ns, m, gts, gseq, heat)
    for a, b in plan.slices:
        t = time.perf_counter()
        df = read_slice(plan, a, b)
        cols = [df[c].to_numpy() for c in ("ts", "seq", "side", "price", "size", "is_snapshot")]
        idx = prices.index(cols[3])
        cols = [_c(cols[0], np.int64), _c(cols[1], np.int64), _c(cols[2], np.int8), idx,
                _c(cols[4], np.int64), _c(cols[5], np.bool_)]
        del df
        t_io += time.perf_counter() - t
        rep.feed(*cols, stop_ts=b)
    grid = rep.finish()
    _check_notional(grid, prices)
    return ReplayRun(plan, grid, gaps, inst, every_ns, bands, heat, t_io, rep.kernel_seconds,
                     time.perf_counter() - t_all)


def _check_notional(grid: GridResult, prices: PriceIndex) -> None:
    """Notional sums are int64 (price units x size units); make sure none wrapped around:
    every band's notional must lie within qty x [0, highest price]."""
    if not grid.mid_ok.any():
        return
    q = grid.qty[grid.mid_ok].astype(np.float64)
    n = grid.notional[grid.mid_ok].astype(np.float64)
    top = float(prices.lp[prices.n_real - 1])
    if (n < 0).any() or (n > q * top * (1 + 1e-9) + 1).any() or (q * top > 9.2e18).any():
        raise ForensicsError("depth notional overflows 64-bit integers for this instrument (price x size units "
                             "too large); depth quantities are still exact: report this instrument")


# =============================================================================================
# frames
# =============================================================================================

def frames_from_grid(grid: GridResult, bands: Bands, every_ns: int, inst: Instrument) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(depth long, book_top) in stored units from a grid result (nulls where unknown)."""
    m, nb_ = grid.ts.size, len(bands)
    valid = grid.valid
    has_b = valid & (grid.best_bid >= 0)
    has_a = valid & (grid.best_ask >= 0)
    both = has_b & has_a
    spread = grid.best_ask - grid.best_bid
    top = pl.DataFrame({
        "ts": grid.ts,
        "best_bid": pl.Series(grid.best_bid).scatter(np.flatnonzero(~has_b), None),
        "best_ask": pl.Series(grid.best_ask).scatter(np.flatnonzero(~has_a), None),
        "mid": pl.Series(grid.best_bid + grid.best_ask).scatter(np.flatnonzero(~both), None),
        "spread": pl.Series(spread).scatter(np.flatnonzero(~both), None),
        "best_bid_size": pl.Series(grid.best_bid_size).scatter(np.flatnonzero(~has_b), None),
        "best_ask_size": pl.Series(grid.best_ask_size).scatter(np.flatnonzero(~has_a), None),
        "bid_levels": pl.Series(grid.side_levels[:, 0]).scatter(np.flatnonzero(~valid), None),
        "ask_levels": pl.Series(grid.side_levels[:, 1]).scatter(np.flatnonzero(~valid), None),
        "crossed": pl.Series(spread < 0).scatter(np.flatnonzero(~both), None),
        "locked": pl.Series(spread == 0).scatter(np.flatnonzero(~both), None),
        "valid": valid,
    }).with_columns(pl.lit(every_ns, pl.Int64).alias("grid_ns"), pl.lit("book").alias("data_kind"))
    top = conform("book_top", top)
    # long depth: row order grid time, side (bid, ask), band (ascending)
    ok = np.repeat(grid.mid_ok, 2 * nb_)
    bad = np.flatnonzero(~ok)
    scale = 10.0 ** (inst.price_decimals + inst.size_decimals)
    notional = grid.notional.reshape(-1).astype(np.float64) / scale
    depth = pl.DataFrame({
        "ts": np.repeat(grid.ts, 2 * nb_),
        "side": pl.Series(np.tile(np.repeat(np.array(["bid", "ask"]), nb_), m)),
        "band_pct": np.tile(np.array(bands.floats * 2, np.float64), m),
        "qty": pl.Series(grid.qty.reshape(-1)).scatter(bad, None),
        "notional": pl.Series(notional).scatter(bad, None),
        "levels": pl.Series(grid.levels.reshape(-1)).scatter(bad, None),
    }).with_columns(pl.lit(every_ns, pl.Int64).alias("grid_ns"), pl.lit("book").alias("data_kind"))
    return conform("depth", depth), top


def _dec(col: str, decimals: int) -> pl.Expr:
    """Stored int units -> exact Decimal in real units."""
    return (pl.col(col).cast(pl.Decimal(38, 0)) * pl.lit(Decimal(1).scaleb(-decimals)).cast(pl.Decimal(38, decimals))
            ).cast(pl.Decimal(38, decimals)).alias(col)


def wide_frame(depth: pl.DataFrame, book_top: pl.DataFrame | None, inst: Instrument, bands_labels: list[str],
               size_decimals: int | None = None, tz: str = "UTC") -> pl.DataFrame:
    """One row per time: ``time`` (in ``tz``), ``ts`` (UTC ns), top of book, and per band
    ``bid_qty_<b>``, ``ask_qty_<b>``, ``*_notional_<b>``, ``*_levels_<b>``. Prices and sizes are
    exact Decimals in real units; notional is float (quote currency)."""
    sd = inst.size_decimals if size_decimals is None else size_decimals
    pd_ = inst.price_decimals
    lab = {float(x): x for x in bands_labels}
    d = depth.with_columns(
        pl.col("band_pct").replace_strict({k: v for k, v in lab.items()}, default=None, return_dtype=pl.Utf8)
        .fill_null(pl.col("band_pct").cast(pl.Utf8)).alias("__b"))
    d = d.with_columns(_dec("qty", sd))
    wide = d.select("ts").unique(maintain_order=True)
    order = ["ts"]
    for value in ("qty", "notional", "levels"):
        if value == "levels" and d["levels"].null_count() == d.height:
            continue
        p = (d.with_columns((pl.col("side") + f"_{value}_" + pl.col("__b")).alias("__k"))
             .pivot(on="__k", index="ts", values=value, aggregate_function="first"))
        wide = wide.join(p, on="ts", how="left")
        order += [c for s in ("bid", "ask") for c in (f"{s}_{value}_{b}" for b in bands_labels) if c in p.columns]
    wide = wide.select(order)
    if book_top is not None and book_top.height:
        top = book_top.select(
            "ts", _dec("best_bid", pd_), _dec("best_ask", pd_),
            (pl.col("mid").cast(pl.Decimal(38, 0)) * pl.lit(Decimal(5).scaleb(-(pd_ + 1))).cast(pl.Decimal(38, pd_ + 1))
             ).cast(pl.Decimal(38, pd_ + 1)).alias("mid"),
            _dec("spread", pd_), _dec("best_bid_size", sd), _dec("best_ask_size", sd), "bid_levels",
            "ask_levels", "crossed", "locked", "valid")
        wide = top.join(wide, on="ts", how="left")
    wide = wide.sort("ts")
    return wide.select(_local_time("ts", tz).alias("time"), pl.all())


def _local_time(col: str, tz: str) -> pl.Expr:
    """UTC ns -> datetime in ``tz`` (tz-aware; a fixed offset that is not whole hours, which
    Polars cannot name, gives the naive local time)."""
    name = _tz_name(tz)
    if name is not None:
        return pl.from_epoch(col, time_unit="ns").dt.replace_time_zone("UTC").dt.convert_time_zone(name)
    from forensics.timeutil import tzinfo
    off = int(tzinfo(tz).utcoffset(None).total_seconds()) * 1_000_000_000
    return pl.from_epoch(pl.col(col) + off, time_unit="ns")


def _tz_name(tz: str) -> str | None:
    from forensics.timeutil import tzinfo
    info = tzinfo(tz)
    key = getattr(info, "key", None)
    if key:
        return key
    off = info.utcoffset(None)
    if not off:
        return "UTC"
    mins = int(off.total_seconds() // 60)
    # Etc/GMT zones are whole hours with inverted sign; fall back to a fixed-offset name otherwise
    if mins % 60 == 0:
        return f"Etc/GMT{'-' if mins > 0 else '+'}{abs(mins) // 60}"
    return None


# =============================================================================================
# compute_depth
# =============================================================================================

@dataclass
class DepthResult:
    """Result of :func:`compute_depth` (frames in stored units; see the module docstring)."""

    exchange: str
    symbol: str
    data_kind: str  # 'book' (replayed levels) or 'bands' (pre-aggregated samples)
    every_ns: int | None
    bands: list[float]
    band_labels: list[str]
    ts_from: int
    ts_to: int
    depth: pl.DataFrame
    book_top: pl.DataFrame
    flags: pl.DataFrame
    instrument: Instrument
    size_decimals: int
    stats: dict = field(default_factory=dict)
    grid: GridResult | None = None
    written: list[Path] = field(default_factory=list)

    def wide(self, tz: str = "UTC") -> pl.DataFrame:
        """One row per time in real units (exact Decimals for prices and sizes)."""
        return wide_frame(self.depth, self.book_top if self.data_kind == "book" else None,
                          self.instrument, self.band_labels, self.size_decimals, tz)

    def real_depth(self) -> pl.DataFrame:
        """depth with qty in base units (float) and band as float: for plots."""
        return self.depth.with_columns((pl.col("qty").cast(pl.Float64) / 10.0 ** self.size_decimals).alias("qty"))


def compute_depth(store: Store | str | None = None, *args, **kwargs) -> DepthResult:
    """:func:`_compute_depth` under the store's readers lock: a concurrent ingest cannot
    rescale the instrument between the replay's reads, and the write checks that it did not
    rescale it before (the run then fails with nothing written: rerun it)."""
    store = _as_store(store)
    with store.reading():
        return _compute_depth(store, *args, **kwargs)


def _compute_depth(store: Store | str | None = None, exchange: str | None = None, symbol: str | None = None,
                  ts_from: int | None = None, ts_to: int | None = None, every_ns: int = DEFAULT_EVERY_NS,
                  bands=None, write: bool = True, source: str = "auto", chunk_rows: int = CHUNK_ROWS
                  ) -> DepthResult:
    """Depth bands and top of book for one instrument over [ts_from, ts_to] (UTC ns, inclusive;
    None = the instrument's full range) on a grid of ``every_ns``.

    ``exchange``/``symbol`` may be omitted when the store holds one instrument. ``bands`` in % of
    mid (default 0.1, 0.5, 1, 2, 5; for band data the native bands). ``source``: 'book'
    (replay book_updates), 'bands' (pre-aggregated depth_bands, e.g. Binance bookDepth, at
    their native cadence: ``every_ns`` is ignored) or 'auto' (book when there is level data).
    ``write`` upserts the derived tables ``depth`` and ``book_top``."""
    store = _as_store(store)
    if every_ns is None or int(every_ns) <= 0:
        raise ForensicsError("--every must be a positive duration, e.g. 1s or 100ms")
    every_ns = int(every_ns)
    explicit_bands = bands is not None
    bands_p = parse_bands(bands)
    if ts_from is not None and ts_to is not None and ts_to < ts_from:
        raise ForensicsError("--to is before --from")
    if source not in ("auto", "book", "bands"):
        raise ForensicsError(f"unknown source {source!r}: auto, book or bands")
    ex, sy = store.resolve_instrument(exchange, symbol)
    has_book = bool(store.files("book_updates", ex, sy))
    has_bands = bool(store.files("depth_bands", ex, sy))
    kind = source if source != "auto" else ("book" if has_book else "bands")
    if kind == "book" and not has_book:
        raise ForensicsError(f"no book_updates for {ex}/{sy}: use --source bands or ingest level data")
    if kind == "bands":
        if not has_bands:
            raise ForensicsError(f"no depth_bands for {ex}/{sy} in {store.root}")
        return _depth_from_bands(store, ex, sy, ts_from, ts_to, bands_p if explicit_bands else None, write)
    from forensics.depth_quality import book_flags
    run = replay_store(store, ex, sy, ts_from, ts_to, every_ns, bands_p, chunk_rows=chunk_rows)
    t = time.perf_counter()
    depth, top = frames_from_grid(run.grid, bands_p, every_ns, run.instrument)
    t_frames = time.perf_counter() - t
    flags = book_flags(top, run.grid.stats, run.gaps, run.plan.t0, run.plan.t1)
    written = []
    t = time.perf_counter()
    if write and top.height:
        written = write_derived(store, ex, sy, {"depth": depth, "book_top": top}, int(top["ts"][0]),
                                int(top["ts"][-1]))
    stats = dict(run.grid.stats)
    stats.update(rows_read=run.plan.rows_estimate, slices=len(run.plan.slices), replay_start=run.plan.start,
                 seconds_io=run.seconds_io, seconds_kernel=run.seconds_kernel, seconds_frames=t_frames,
                 seconds_write=time.perf_counter() - t, seconds_replay=run.seconds_total)
    return DepthResult(ex, sy, "book", every_ns, bands_p.floats, bands_p.labels, run.plan.t0, run.plan.t1,
                       depth, top, flags, run.instrument, run.instrument.size_decimals, stats, run.grid, written)


def write_derived(store: Store, ex: str, sy: str, tables: dict[str, pl.DataFrame], lo: int, hi: int) -> list[Path]:
    """Upsert rows into derived tables: existing rows of the touched dates with ts in [lo, hi]
    are replaced, the others kept; each date partition becomes one part ``<table>.parquet``.
    The merge and the Parquet encoding run outside the writer lock (:func:`forensics.upsert.upsert`)."""
    from forensics.upsert import upsert
    paths = []
    for table, df in tables.items():
        def merge(frames: list[pl.DataFrame], table=table, df=df) -> pl.DataFrame:
            if not frames:
                return df
            old = pl.concat(frames, how="diagonal_relaxed").filter((pl.col("ts") < lo) | (pl.col("ts") > hi))
            if not old.height:
                return df
            return pl.concat([conform(table, old), df], how="vertical_relaxed").sort("ts", maintain_order=True)
        paths += upsert(store, table, ex, sy, lo, hi, merge)
    return paths


# =============================================================================================
# band data (pre-aggregated, e.g. Binance bookDepth)
# =============================================================================================

def _float_decimals(x: np.ndarray, max_dec: int = 8) -> int:
    """Fewest decimals (<= max_dec) that represent every float in ``x`` (to float precision)."""
    x = np.abs(x[np.isfinite(x)])
    if x.size == 0:
        return 0
    for d in range(max_dec + 1):
        v = x * 10.0 ** d
        if np.all(np.abs(v - np.round(v)) <= np.maximum(1e-6, v * 1e-12)):
            return d
    return max_dec


def _depth_from_bands(store: Store, ex: str, sy: str, ts_from, ts_to, bands: Bands | None, write: bool) -> DepthResult:
    from forensics.depth_quality import band_flags
    lf = store.scan("depth_bands", ex, sy, ts_from, ts_to)
    df = lf.select("ts", "side", "band_pct", "qty", "notional").collect()
    if df.height == 0:
        raise ForensicsError(f"no depth_bands rows for {ex}/{sy} in the window")
    native = sorted(df["band_pct"].unique().to_list())
    missing = []
    if bands is not None:
        want = bands.floats
        missing = [b for b in want if not any(math.isclose(b, x, rel_tol=1e-9) for x in native)]
        df = df.filter(pl.col("band_pct").is_in([x for x in native if any(math.isclose(x, b, rel_tol=1e-9) for b in want)]))
        if df.height == 0:
            raise ForensicsError(f"none of the bands {','.join(bands.labels)} exist in depth_bands for {ex}/{sy} "
                                 f"(native bands: {','.join(_label(x) for x in native)})")
    inst = store.instrument(ex, sy) or Instrument(ex, sy, 0, 0, 0)
    need = _float_decimals(df["qty"].to_numpy())
    sd = max(inst.size_decimals, need)
    if write and sd > inst.size_decimals and store.instrument(ex, sy) is not None:
        with store.lock():
            inst = store.rescale(store.require_instrument(ex, sy), inst.price_decimals, sd)
    used = sorted(df["band_pct"].unique().to_list())
    depth = (df.with_columns((pl.col("qty") * 10.0 ** sd).round(0).cast(pl.Int64).alias("qty"),
                             pl.lit(None, pl.Int64).alias("levels"), pl.lit(None, pl.Int64).alias("grid_ns"),
                             pl.lit("bands").alias("data_kind"))
             .sort(["ts", pl.col("side").replace_strict({"bid": 0, "ask": 1}, default=2), "band_pct"]))
    depth = conform("depth", depth)
    flags = band_flags(df)
    if missing:
        flags = pl.concat([flags, pl.DataFrame([{
            "kind": "band_unavailable", "side": None, "band_pct": b, "count": 0, "first_ts": None,
            "last_ts": None, "detail": f"band {_label(b)}% is not in the pre-aggregated data "
                                      f"(native: {','.join(_label(x) for x in native)})"} for b in missing],
            schema=flags.schema)])
    written = []
    if write and store.instrument(ex, sy) is not None:
        written = write_derived(store, ex, sy, {"depth": depth}, int(depth["ts"].min()), int(depth["ts"].max()))
    labels = [_label(x) for x in used]
    t0 = int(df["ts"].min()) if ts_from is None else int(ts_from)
    t1 = int(df["ts"].max()) if ts_to is None else int(ts_to)
    return DepthResult(ex, sy, "bands", None, used, labels, t0, t1, depth,
                       conform("book_top", pl.DataFrame({"ts": []}, schema={"ts": pl.Int64})), flags,
                       inst, sd, {"samples": depth["ts"].n_unique()}, None, written)


def _label(x: float) -> str:
    return format(Decimal(repr(float(x))).normalize(), "f")
