"""Attribution of every level change: was a decrease traded or cancelled?

One row per book update (``level_changes``, arrival order = ``(ts, seq)``), in stored integer
units (prices in ticks, sizes in lots, times in UTC ns):

* ``prev_size`` the size at that (side, price) in the replayed book just before the update,
  ``size`` the new absolute size, ``delta = size - prev_size``;
* a decrease (``delta < 0``) is split into ``traded`` (matched to trades that hit that side at
  that exact price) and ``cancelled`` (the rest): ``traded + cancelled == -delta``;
* an increase is ``added = delta``;
* ``implied``: trade quantity at that level in excess of the visible decrease (hidden or
  iceberg refills). It is *not* part of the book identity: implied liquidity appeared and traded
  without ever being visible. Never a negative cancel.
* ``cause`` in ``add`` (increase or restatement, delta >= 0), ``trade`` (decrease fully
  matched), ``cancel`` (no trade matched), ``mixed`` (both), ``gap`` (prior size unknown:
  across a gap / resync / before the first snapshot), ``truncation`` (a level leaving or
  re-entering a depth-limited feed's window; not a maker action);
* ``is_snapshot`` (extra column): the row comes from a snapshot block (including the
  synthetic removals below).

Conservation (tested, also with hypothesis): over any set of consecutive rows,
``sum(added) - sum(traded) - sum(cancelled) == sum(delta)`` == the net change of resting
quantity of the replayed book. Gap and truncation rows carry their quantity in ``added`` /
``cancelled`` too (so the identity holds); analyses of maker behaviour must filter on
``cause`` (``forensics.detect`` ignores ``gap`` and ``truncation`` rows).

Matching rules (one pass over the merged stream, identical in :func:`attribute_reference`):

* A trade hits ``bid`` when its aggressor is ``sell`` and ``ask`` when ``buy``; trades without
  aggressor are not matched. Only the exact (side, price) can be matched, so a level swept by a
  large market order is matched to the print at its own price, and a decrease at a price
  strictly beyond the deepest trade price on that side can never be a fill.
* A trade at time ``T`` can only match updates at its (side, price) with ``t`` in
  ``[T - tol_fwd, T + tol_back]``: the depth stream publishes a batch *after* the trades it
  contains (``tol_back`` = batching interval + skew) and clocks may be skewed (``tol_fwd``).
  Several updates of one level in one message / timestamp are normal (event-by-event feeds,
  Tardis exports of them, LOBSTER), so a print is matched to the *decreases* it can explain:

  - ``batch`` matching (feeds that net each level once per batch, e.g. Binance depth@100ms):
    a trade belongs to the first *timestamp group* (all updates sharing one ``ts``) holding an
    update at its level in its window; that group's decreases at the level use its trades,
    oldest first, capped at each decrease; whatever they do not show as a decrease (an
    increase, a smaller decrease: the fill was refilled or hidden) is ``implied`` on the
    level's first update of the group. A trade is never carried to a later batch.
  - ``event`` matching (event-by-event feeds): each decrease takes the unused trades of its
    level whose window holds it, oldest first; increases never take trades (an unrelated add
    may precede the fill); nothing is implied (a print no decrease explains is hidden).
  - ``auto`` (default): ``event`` when >= 0.5% of the incremental rows update a level already
    updated at the same timestamp (a netted batch never does), else ``batch``.

  A trade's quantity is used once; gap rows take no trades; trades flagged ``hidden`` (LOBSTER
  hidden executions) are never matched.
* Default tolerance (:func:`estimate_tolerance`): batching interval = median step between
  distinct update timestamps; skew from the distribution of (nearest same-level decrease time -
  trade time): the contiguous peak of its histogram above the background.

Snapshots, gaps, truncation:

* A snapshot block (consecutive snapshot rows with one ``ts``) is diffed against the book
  before it, row by row; levels in the book but absent from the block get a synthetic removal
  row (size 0, ``ts`` of the block, ``seq`` of its last row, ``is_snapshot`` true), placed
  after the block. These are attributed like any other change (a level swept between two
  snapshots of a snapshot-only feed is matched to its trades).
* Gaps (table ``gaps``: from the first update at or after ``(ts_from, seq_from)`` in
  ``(ts, seq)`` order, a null ``seq_from`` sorting first, as in :mod:`forensics.book`) make
  every level *stale*: its first update after the gap has an unknown
  prior, so it is ``gap`` (never matched); a snapshot makes the whole book known again (rows
  of a snapshot after a gap, and its synthetic removals of stale levels, are ``gap``). The book
  before the first snapshot is unknown (first sightings are ``gap``).
* Truncation. A snapshot is *depth-limited* when both sides hold the same number N of levels
  and N is a standard venue limit (5, 10, 20, 25, 50, 100, 200, 400, 500, 1000, 5000) or the
  feed's ``depth_limit``; then (a) a synthetic removal (absent from the snapshot) at a price
  beyond the snapshot's deepest level on that side is ``truncation``, and, for a full-depth
  diff stream (no ``depth_limit``: Binance's 1000-level REST snapshot + full diffs), (b) the
  first update after it of a level beyond that deepest level (its prior size outside the
  snapshot is unknown) is ``truncation``.
* Depth-limited views of N levels (``depth_limit`` N, or ``'auto'``: both sides sit at the
  same level count N, 1 <= N <= 1000, within +-1 at the end of >= 95% of sampled timestamp
  groups): within each timestamp group and side, a level leaving the view (size -> 0) and one
  entering it (0 -> size) are paired in arrival order. An entry *better* than its paired exit
  pushed that level out of the window: the exit is ``truncation`` (the level is still there)
  unless a print matched it. An entry *deeper* than its exit is the next level revealed: the
  entry is ``truncation`` (it was there all along). One level entering and leaving in the
  group (a depth-limited reader's insert pushed straight out) is a pair too: its exit is
  ``truncation`` when the level is beyond the N-th level at the group start or end, else a
  cancel. Unpaired: an entry beyond the window's N-th level at the group start, an unmatched
  exit beyond the N-th level at the group end, are ``truncation``. This holds for N = 1 (the
  touch only) as for N = 5, 10, 20, ...
  :attr:`AttributionInfo.truncation_qty` / ``gap_qty`` give the decrease volume that is
  truncation / unknown (``forensics detect`` prints the shares).
* Shared clock: when >= 80% of sampled prints have a decrease at their level with exactly
  their timestamp (one matching-engine clock, e.g. LOBSTER), the estimated window of an
  ``event``-matched feed is 0 / 0. A ``batch`` feed has one stamp per batch for all its prints,
  so it keeps the usual estimate (Binance futures stamps a batch with its last event's ``T``:
  on a quiet market most batches hold one print, stamped like its batch, the others precede it).

Speed: a compiled single pass (numba, :func:`_core`) over arrays; prices mapped to dense
indices; named state (``Updates``, ``Trades``, ``Params``, ``RowOut``, ``Synthetic``,
``LevelBook``, ``TradeQueues``, ``ViewWindow``, the ``CURSOR`` record). See
``benchmarks/bench_attribution.py`` (>= 5 M updates/s on the engine).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
import numba as nb
import numpy as np
import polars as pl

from forensics.errors import ForensicsError
from forensics.schema import TABLES
from forensics.store import Store
from forensics.timeutil import NS_PER_MS
from forensics.vocab import Side

CAUSES = ("add", "trade", "cancel", "mixed", "gap", "truncation")
ADD, TRADE, CANCEL, MIXED, GAP, TRUNC = range(6)
SIDE_NAMES = Side.names()
DEFAULT_INTERVAL_NS = 100 * NS_PER_MS
#: columns of the written table (schema's pinned columns + is_snapshot)
COLUMNS = list(TABLES["level_changes"]) + ["is_snapshot"]
_DENSE_MAX = 4_000_000  # price range (ticks) above which prices are compressed with unique()
_STANDARD_LIMITS = (5, 10, 20, 25, 50, 100, 200, 400, 500, 1000, 5000)
SNAP_LIMITS = np.array(_STANDARD_LIMITS, np.int64)


@dataclass
class AttributionInfo:
    """What a run used and saw (tolerances in ns)."""

    tol_back_ns: int = 0
    tol_fwd_ns: int = 0
    interval_ns: int = 0
    depth_limit: int = 0
    tolerance_source: str = "given"
    updates: int = 0
    synthetic: int = 0
    trades: int = 0
    trade_qty: int = 0
    matched_qty: int = 0
    implied_qty: int = 0
    lags_used: int = 0
    decrease_qty: int = 0       # volume of all decreases
    truncation_qty: int = 0     # ... of which attributed to the depth-limited window (truncation)
    gap_qty: int = 0            # ... of which unknown (prior size unknown: gap)
    extra: dict = field(default_factory=dict)

    def shares(self) -> dict:
        """Share of decrease volume that is truncation / gap (unknown), None without decreases."""
        d = self.decrease_qty
        return {"truncation": self.truncation_qty / d if d else None, "gap": self.gap_qty / d if d else None}


# ---------------------------------------------------------------------------------------------
# compiled engine
# ---------------------------------------------------------------------------------------------
#
# Named state for the compiled pass. Inputs and outputs are ``NamedTuple``s of arrays (numba
# passes them as typed tuples, fields read as ``upd.ts``); the running scalars live in one numpy
# record (``CURSOR``: ``cur.epoch``). A new field is one line in its class (and its allocation
# in :func:`_new_state`).


class Updates(NamedTuple):
    """Book updates in arrival order ``(ts, seq)``, one row each."""

    ts: np.ndarray      # int64 UTC ns
    seq: np.ndarray     # int64 (-1 when null)
    snap: np.ndarray    # bool: a row of a snapshot block
    side: np.ndarray    # int8: 0 bid, 1 ask
    level: np.ndarray   # int64: dense price index 0 .. n_levels - 1
    size: np.ndarray    # int64: new absolute size (lots)
    gap: np.ndarray     # bool: a gap starts at this row


class Trades(NamedTuple):
    """Matchable prints (aggressor known, not hidden) in time order."""

    ts: np.ndarray      # int64 UTC ns
    side: np.ndarray    # int8: book side hit (0 bid = aggressor sell, 1 ask = buy)
    level: np.ndarray   # int64: dense price index
    size: np.ndarray    # int64 lots


class Params(NamedTuple):
    """What the pass is told (see :func:`params`)."""

    tol_fwd: int            # ns a trade may follow the update it explains
    tol_back: int           # ns a trade may precede it
    depth_limit: int        # N of a depth-limited view, 0 = full depth
    n_levels: int           # dense price indices per side (R)
    syn_cap: int            # room for synthetic removal rows (the pass reports overflow)
    snap_limits: np.ndarray  # standard venue snapshot depths (int64)
    event_matching: bool    # True: event matching, False: batch matching


def params(tol_fwd: int, tol_back: int, depth_limit: int, n_levels: int, syn_cap: int,
           event_matching: bool) -> Params:
    """:class:`Params` with exact Python types (one compiled specialisation)."""
    return Params(int(tol_fwd), int(tol_back), int(depth_limit), int(n_levels), int(syn_cap), SNAP_LIMITS,
                  bool(event_matching))


class RowOut(NamedTuple):
    """Per real row (``implied`` also has ``syn_cap`` slots for the synthetic rows after them)."""

    prev: np.ndarray    # int64 size before the update
    traded: np.ndarray  # int64 lots matched to trades
    cause: np.ndarray   # int8 index into CAUSES
    implied: np.ndarray  # int64 trade lots beyond the visible decrease


class Synthetic(NamedTuple):
    """Synthetic removals (a level absent from a snapshot block), in creation order."""

    after: np.ndarray   # int64 real row they follow (the block's last row)
    key: np.ndarray     # int64 side * n_levels + level
    prev: np.ndarray    # int64 size removed
    traded: np.ndarray  # int64
    cause: np.ndarray   # int8
    ts: np.ndarray      # int64


class LevelBook(NamedTuple):
    """The replayed book, indexed by level key ``side * n_levels + level``."""

    size: np.ndarray       # int64 resting size
    epoch: np.ndarray      # int32 gap epoch of the level's last change (stale when older)
    snap_id: np.ndarray    # int32 snapshot block of the level's last real change
    setpos: np.ndarray     # int32 position in ``members`` (-1: empty level)
    members: np.ndarray    # int32 the non-empty levels (first ``cur.n_members``)
    count: np.ndarray      # int64 (2,) non-empty levels per side
    fenwick: np.ndarray    # int32 Fenwick tree of non-empty levels per side (depth-limited views)
    bound: np.ndarray      # int64 (2,) deepest level of the last depth-limited snapshot
    has_bound: np.ndarray  # bool (2,)


class TradeQueues(NamedTuple):
    """Unused trades per level key, oldest first (a linked list through ``next``)."""

    head: np.ndarray        # int32 first trade of the level's queue (-1: empty)
    tail: np.ndarray        # int32 last trade
    next: np.ndarray        # int32 next trade of the same level
    left: np.ndarray        # int64 unmatched lots of every trade
    anchor_ts: np.ndarray   # int64 timestamp group that took the level's queue (batch matching)
    anchor_row: np.ndarray  # int64 row of that group that gets the leftover as implied
    anchored: np.ndarray    # int64 level keys anchored in the current group (first cur.n_anchored)


class ViewWindow(NamedTuple):
    """Entries/exits of a depth-limited view within the current timestamp group."""

    pending: np.ndarray     # int64 rows that entered (0 -> size) or left (size -> 0) the view
    fifo: np.ndarray        # int64 scratch for the pairing
    edge_start: np.ndarray  # int64 (2,) N-th best level of each side at the group start (-1: fewer)


#: running scalars of the pass, one record
CURSOR = np.dtype([
    ("epoch", np.int64),        # +1 at every gap
    ("known_epoch", np.int64),  # epoch at the last snapshot (every level known then)
    ("snap_id", np.int64),      # snapshot blocks seen
    ("block_end", np.int64),    # one past the current snapshot block (-1 before any)
    ("next_trade", np.int64),   # first trade not yet queued
    ("n_members", np.int64),    # non-empty levels
    ("n_anchored", np.int64),   # levels anchored in the current timestamp group
    ("n_pending", np.int64),    # view entries/exits in the current timestamp group
    ("n_syn", np.int64),        # synthetic rows written
], align=True)


#: the compiled pass's steps (called once per row, or per group / snapshot): they allocate
#: nothing, so they are compiled without NRT reference counting, which numba would otherwise
#: emit for every array of the state tuples at each call (an atomic inc/dec pair per array per
#: call: measured 20x slower)
_step = nb.njit(cache=True, _nrt=False)
#: ... and the per-row ones are inlined into the row loop (a call would pass every array of the
#: state tuples as arguments)
_row_step = nb.njit(cache=True, _nrt=False, inline="always")


class PassState(NamedTuple):
    cur: np.ndarray          # CURSOR, shape (1,)
    book: LevelBook
    queues: TradeQueues
    window: ViewWindow


@nb.njit(cache=True)
def _new_state(upd, trd, prm):
    n_keys = 2 * prm.n_levels
    view = prm.depth_limit > 0
    cur = np.zeros(1, CURSOR)
    cur[0].epoch = 1
    cur[0].block_end = -1
    book = LevelBook(np.zeros(n_keys, np.int64), np.zeros(n_keys, np.int32), np.zeros(n_keys, np.int32),
                     np.full(n_keys, -1, np.int32), np.empty(n_keys, np.int32), np.zeros(2, np.int64),
                     np.zeros(2 * (prm.n_levels + 1) if view else 1, np.int32), np.zeros(2, np.int64),
                     np.zeros(2, np.bool_))
    queues = TradeQueues(np.full(n_keys, -1, np.int32), np.full(n_keys, -1, np.int32),
                         np.full(max(trd.ts.shape[0], 1), -1, np.int32), trd.size.copy(),
                         np.full(n_keys, np.iinfo(np.int64).min, np.int64), np.empty(n_keys, np.int64),
                         np.empty(n_keys, np.int64))
    n_view = upd.ts.shape[0] if view else 1
    window = ViewWindow(np.empty(n_view, np.int64), np.empty(n_view, np.int64), np.full(2, -1, np.int64))
    return PassState(cur, book, queues, window)


@_step
def _fw_add(fw, base, R, i, v):
    j = i + 1
    while j <= R:
        fw[base + j] += v
        j += j & (-j)


@_step
def _fw_kth(fw, base, R, k):
    """Smallest level index whose prefix count reaches k (k >= 1; the k-th lowest level)."""
    pos = 0
    step = 1
    while step * 2 <= R:
        step *= 2
    while step > 0:
        nxt = pos + step
        if nxt <= R and fw[base + nxt] < k:
            pos = nxt
            k -= fw[base + nxt]
        step //= 2
    return pos  # 1-based position pos+1 -> index pos


@_row_step
def _member_add(members, setpos, n_members, key):
    """Add level ``key`` to the set of non-empty levels; returns the new size."""
    setpos[key] = n_members
    members[n_members] = key
    return n_members + 1


@_row_step
def _member_remove(members, setpos, n_members, key):
    """Remove level ``key`` from the set (swap with the last member); returns the new size."""
    pos = setpos[key]
    last = members[n_members - 1]
    members[pos] = last
    setpos[last] = pos
    setpos[key] = -1
    return n_members - 1


@_step
def _edge(book, prm, side):
    """Level index of the N-th best level of ``side`` (bid: N-th highest), -1 if fewer than N."""
    N, R = prm.depth_limit, prm.n_levels
    if book.count[side] < N:
        return -1
    if side == 0:
        return _fw_kth(book.fenwick, 0, R, book.count[0] - N + 1)
    return _fw_kth(book.fenwick, R + 1, R, N)


@_row_step
def _beyond(side, level, edge):
    """``level`` strictly deeper than ``edge`` (-1: no edge)."""
    return edge >= 0 and ((side == 0 and level < edge) or (side == 1 and level > edge))


@_row_step
def _level_count(prm, st, side, level, key, before, after):
    """Keep the non-empty level set, the per-side counts and the view's Fenwick tree."""
    book, cur = st.book, st.cur[0]
    if before == 0 and after > 0:
        cur.n_members = _member_add(book.members, book.setpos, cur.n_members, key)
        book.count[side] += 1
        if prm.depth_limit > 0:
            _fw_add(book.fenwick, side * (prm.n_levels + 1), prm.n_levels, level, 1)
    elif before > 0 and after == 0:
        cur.n_members = _member_remove(book.members, book.setpos, cur.n_members, key)
        book.count[side] -= 1
        if prm.depth_limit > 0:
            _fw_add(book.fenwick, side * (prm.n_levels + 1), prm.n_levels, level, -1)


@_row_step
def _take(trd, prm, st, key, t, row):
    """The trade queue of level ``key`` for an update at time ``t``: expired trades (no update
    in their window) are dropped; under batch matching the level's first update in this
    timestamp group anchors the queue to the group (its leftover becomes implied on ``row``
    when the group ends). Returns the queue head (-1: no trade)."""
    q = st.queues
    h = q.head[key]
    if h < 0:
        return h   # empty queue (head < 0 implies tail < 0)
    while h >= 0 and trd.ts[h] + prm.tol_back < t:
        h = q.next[h]
    q.head[key] = h
    if h < 0:
        q.tail[key] = -1
    elif not prm.event_matching and q.anchor_ts[key] != t:
        cur = st.cur[0]
        q.anchor_ts[key] = t
        q.anchor_row[key] = row
        q.anchored[cur.n_anchored] = key
        cur.n_anchored += 1
    return h


@_row_step
def _drain(q, key, h, need):
    """Match up to ``need`` lots from level ``key``'s queue starting at trade ``h``, oldest first
    (a trade is never matched twice); the queue head moves on. Returns the lots matched."""
    got = 0
    while need > 0 and h >= 0:
        take = q.left[h] if q.left[h] < need else need
        q.left[h] -= take
        need -= take
        got += take
        if q.left[h] == 0:
            h = q.next[h]
    q.head[key] = h
    if h < 0:
        q.tail[key] = -1
    return got


@_row_step
def _open_group(trd, prm, st, t):
    """A timestamp group starts at ``t``: queue the trades whose window opens by then, note
    the view's edges."""
    q, cur = st.queues, st.cur[0]
    R = prm.n_levels
    ti = cur.next_trade
    m = trd.ts.shape[0]
    while ti < m and trd.ts[ti] - prm.tol_fwd <= t:
        key = trd.side[ti] * R + trd.level[ti]
        if q.tail[key] >= 0:
            q.next[q.tail[key]] = ti
        else:
            q.head[key] = ti
        q.tail[key] = ti
        ti += 1
    cur.next_trade = ti
    if prm.depth_limit > 0:
        st.window.edge_start[0] = _edge(st.book, prm, 0)
        st.window.edge_start[1] = _edge(st.book, prm, 1)


@_step
def _open_snapshot(upd, prm, st, i):
    """A snapshot block starts at row ``i``: find its end and, when it is depth-limited (both
    sides N levels, N a standard limit or the feed's), each side's deepest level."""
    cur, book = st.cur[0], st.book
    t = upd.ts[i]
    n = upd.ts.shape[0]
    j = i
    while j < n and upd.snap[j] and upd.ts[j] == t:
        j += 1
    cur.block_end = j
    cur.snap_id += 1
    book.has_bound[0] = False
    book.has_bound[1] = False
    n_bid = 0
    n_ask = 0
    for k in range(i, j):
        s = upd.side[k]
        lv = upd.level[k]
        if s == 0:
            n_bid += 1
        else:
            n_ask += 1
        if not book.has_bound[s]:
            book.has_bound[s] = True
            book.bound[s] = lv
        elif s == 0 and lv < book.bound[0]:
            book.bound[0] = lv
        elif s == 1 and lv > book.bound[1]:
            book.bound[1] = lv
    limited = n_bid == n_ask and n_bid == prm.depth_limit and prm.depth_limit > 0
    for lim in prm.snap_limits:
        if n_bid == lim and n_ask == lim:
            limited = True
    if not limited:
        book.has_bound[0] = False
        book.has_bound[1] = False


@_row_step
def _apply_update(upd, trd, prm, st, out, i):
    """Row ``i``: prior size, matched quantity and cause; the book takes the new size."""
    book, q, cur = st.book, st.queues, st.cur[0]
    side = upd.side[i]
    level = upd.level[i]
    key = side * prm.n_levels + level
    new = upd.size[i]
    before = book.size[key]
    out.prev[i] = before
    traded = 0
    cause = ADD
    if cur.known_epoch < cur.epoch and book.epoch[key] < cur.epoch:
        cause = GAP
    else:
        view = prm.depth_limit > 0
        h = _take(trd, prm, st, key, upd.ts[i], i)
        if (not view) and book.has_bound[side] and book.snap_id[key] != cur.snap_id and (
                (side == 0 and level < book.bound[0]) or (side == 1 and level > book.bound[1])):
            # a full-depth diff stream seeded by a depth-limited snapshot: the first update of
            # a level beyond the snapshot's deepest level has an unknown prior
            cause = TRUNC
        elif new < before:
            if h >= 0:
                traded = _drain(q, key, h, before - new)
            if traded == before - new:
                cause = TRADE
            elif traded > 0:
                cause = MIXED
            else:
                cause = CANCEL
            if view and new == 0:
                st.window.pending[cur.n_pending] = i   # left the view: judged when the group ends
                cur.n_pending += 1
        elif view and before == 0 and new > 0:
            st.window.pending[cur.n_pending] = i       # entered the view: judged when the group ends
            cur.n_pending += 1
    out.traded[i] = traded
    out.cause[i] = cause
    book.size[key] = new
    book.epoch[key] = cur.epoch
    book.snap_id[key] = cur.snap_id
    _level_count(prm, st, side, level, key, before, new)


@nb.njit(cache=True)
def _remove_absent(upd, trd, prm, st, out, syn, i):
    """After the last row ``i`` of a snapshot block: a synthetic removal for every non-empty
    level the block did not list (in level-key order), attributed like any change. Returns
    False when ``syn`` is full (the caller retries with more room)."""
    cur, book = st.cur[0], st.book
    absent = np.empty(cur.n_members, np.int64)
    n_absent = 0
    for k in range(cur.n_members):
        key = book.members[k]
        if book.snap_id[key] != cur.snap_id:
            absent[n_absent] = key
            n_absent += 1
    absent = np.sort(absent[:n_absent])
    if cur.n_syn + n_absent > prm.syn_cap:
        return False
    _remove_levels(upd, trd, prm, st, syn, i, absent)
    return True


@_step
def _remove_levels(upd, trd, prm, st, syn, i, absent):
    """The synthetic removals of the levels ``absent`` (sorted keys) after row ``i``."""
    cur, book, q = st.cur[0], st.book, st.queues
    R = prm.n_levels
    n = upd.ts.shape[0]
    t = upd.ts[i]
    for k in range(absent.shape[0]):
        key = absent[k]
        side = key // R
        level = key - side * R
        row = cur.n_syn
        before = book.size[key]
        traded = 0
        if cur.known_epoch < cur.epoch and book.epoch[key] < cur.epoch:
            cause = GAP
        else:
            h = _take(trd, prm, st, key, t, n + row)
            if h >= 0:
                traded = _drain(q, key, h, before)
            if traded == before:
                cause = TRADE
            elif traded > 0:
                cause = MIXED
            elif book.has_bound[side] and ((side == 0 and level < book.bound[0])
                                           or (side == 1 and level > book.bound[1])):
                cause = TRUNC
            else:
                cause = CANCEL
        syn.after[row] = i
        syn.key[row] = key
        syn.prev[row] = before
        syn.traded[row] = traded
        syn.cause[row] = cause
        syn.ts[row] = t
        cur.n_syn = row + 1
        book.size[key] = 0
        book.epoch[key] = cur.epoch
        _level_count(prm, st, side, level, key, before, 0)
    cur.known_epoch = cur.epoch


@_step
def _judge_window(upd, prm, st, out):
    """Levels that left (size -> 0) or entered (0 -> size) an N-level view within one timestamp
    group, per side in arrival order: each is paired with the earliest unpaired change of the
    other kind. An entry better than its paired exit pushed that level out of the window (the
    exit is truncation unless a print matched it); an entry deeper than its exit is the next
    level revealed (the entry is truncation); a level paired with itself (shown and hidden again)
    has its exit truncation when beyond the edge at the group start or end. Unpaired: an entry
    beyond the window's edge at the group start, an unmatched exit beyond the edge at the group
    end, are truncation."""
    w, cur = st.window, st.cur[0]
    prev, cause, lvl = out.prev, out.cause, upd.level
    fifo = w.fifo
    for s in range(2):
        e_start = w.edge_start[s]
        e_end = _edge(st.book, prm, s)
        qh = 0
        qt = 0
        for q in range(cur.n_pending):
            k = w.pending[q]
            if upd.side[k] != s:
                continue
            entry = prev[k] == 0
            if qt > qh and (prev[fifo[qh]] == 0) != entry:
                o = fifo[qh]
                qh += 1
                ex = k
                en = o
                if entry:
                    ex = o
                    en = k
                better = (s == 0 and lvl[en] > lvl[ex]) or (s == 1 and lvl[en] < lvl[ex])
                if better:
                    if cause[ex] == CANCEL:
                        cause[ex] = TRUNC
                else:
                    cause[en] = TRUNC
                    if lvl[en] == lvl[ex] and cause[ex] == CANCEL and (
                            _beyond(s, lvl[ex], e_start) or _beyond(s, lvl[ex], e_end)):
                        # one level shown and hidden again, beyond the window at the group's
                        # start or end (a depth-limited reader's insert pushed straight out):
                        # it left the view, it was not cancelled
                        cause[ex] = TRUNC
            else:
                fifo[qt] = k
                qt += 1
        for q in range(qh, qt):
            k = fifo[q]
            if prev[k] == 0:
                if _beyond(s, lvl[k], e_start):
                    cause[k] = TRUNC
            elif cause[k] == CANCEL and _beyond(s, lvl[k], e_end):
                cause[k] = TRUNC


@_row_step
def _close_group(upd, prm, st, out):
    """The timestamp group ends: what its updates did not show as decreases was hidden
    (implied on the level's anchoring update); trades are never carried on. Then the view's
    entries and exits of the group are judged."""
    q, cur = st.queues, st.cur[0]
    for g in range(cur.n_anchored):
        key = q.anchored[g]
        h = q.head[key]
        while h >= 0:
            out.implied[q.anchor_row[key]] += q.left[h]
            h = q.next[h]
        q.head[key] = -1
        q.tail[key] = -1
    cur.n_anchored = 0
    if cur.n_pending:
        _judge_window(upd, prm, st, out)
        cur.n_pending = 0


@nb.njit(cache=True)
def _core(upd, trd, prm):
    """The attribution pass over ``upd`` (:class:`Updates`) and ``trd`` (:class:`Trades`) with
    :class:`Params`. Returns (:class:`RowOut`, :class:`Synthetic`, unmatched lots per trade,
    overflow): on overflow (more synthetic rows than ``prm.syn_cap``) the results are void.

    The rows run in :func:`_rows` (no reference counting); this function allocates, and makes
    the synthetic removals (which sort) at the end of each snapshot block."""
    n = upd.ts.shape[0]
    st = _new_state(upd, trd, prm)
    cur = st.cur[0]
    out = RowOut(np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int8),
                 np.zeros(n + prm.syn_cap, np.int64))
    cap = prm.syn_cap
    syn = Synthetic(np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64),
                    np.empty(cap, np.int64), np.empty(cap, np.int8), np.empty(cap, np.int64))
    i = 0
    while i < n:
        i = _rows(upd, trd, prm, st, out, i)
        if i < n:   # row i ended a snapshot block
            if not _remove_absent(upd, trd, prm, st, out, syn, i):
                return out, _syn_head(syn, 0), st.queues.left, True
            _end_row(upd, prm, st, out, i)
            i += 1
    return out, _syn_head(syn, cur.n_syn), st.queues.left, False


@_step
def _rows(upd, trd, prm, st, out, start):
    """Rows from ``start`` on, up to the last row of a snapshot block (returned, applied, its
    synthetic removals and group end left to the caller) or the end (returns n)."""
    cur = st.cur[0]
    n = upd.ts.shape[0]
    for i in range(start, n):
        t = upd.ts[i]
        if i == 0 or upd.ts[i - 1] != t:
            _open_group(trd, prm, st, t)
        if upd.gap[i]:
            cur.epoch += 1
        if upd.snap[i] and i >= cur.block_end and (i == 0 or not upd.snap[i - 1] or upd.ts[i - 1] != t
                                                   or i == cur.block_end):
            _open_snapshot(upd, prm, st, i)
        _apply_update(upd, trd, prm, st, out, i)
        if upd.snap[i] and cur.block_end == i + 1:
            return i
        _end_row(upd, prm, st, out, i)
    return n


@_row_step
def _end_row(upd, prm, st, out, i):
    """After row ``i``: when its timestamp group ends, close the group."""
    cur = st.cur[0]
    if (cur.n_anchored or cur.n_pending) and (i == upd.ts.shape[0] - 1 or upd.ts[i + 1] != upd.ts[i]):
        _close_group(upd, prm, st, out)


@nb.njit(cache=True)
def _syn_head(syn, k):
    return Synthetic(syn.after[:k], syn.key[:k], syn.prev[:k], syn.traded[:k], syn.cause[:k], syn.ts[:k])


@nb.njit(cache=True)
def _prepass(upd, R, stride):
    """Plain replay (snapshot blocks replace the book): which incremental rows decrease their
    level, and level counts per side at the end of the timestamp group of every ``stride``-th
    row. Used to estimate the tolerance and to detect depth-limited feeds."""
    u_ts, u_snap, u_side, u_lvl, u_size = upd.ts, upd.snap, upd.side, upd.level, upd.size
    n = u_ts.shape[0]
    size = np.zeros(2 * R, np.int64)
    stamp = np.zeros(2 * R, np.int32)
    dec = np.zeros(n, np.bool_)
    cnt = np.zeros(((n + stride - 1) // stride, 2), np.int32)
    count = np.zeros(2, np.int64)
    members = np.empty(2 * R, np.int32)
    setpos = np.full(2 * R, -1, np.int32)
    nmem = 0
    blk = 0
    first_done = -1
    nrec = 0
    start_rec = -1
    want = False
    i = 0
    while i < n:
        t = u_ts[i]
        if u_snap[i] and (i == 0 or not u_snap[i - 1] or u_ts[i - 1] != t):
            j = i
            while j < n and u_snap[j] and u_ts[j] == t:
                j += 1
            blk += 1
            for k in range(i, j):
                stamp[u_side[k] * R + u_lvl[k]] = blk
            q = 0
            while q < nmem:
                L = members[q]
                if stamp[L] != blk:
                    size[L] = 0
                    last = members[nmem - 1]
                    members[q] = last
                    setpos[last] = q
                    setpos[L] = -1
                    nmem -= 1
                    count[L // R] -= 1
                else:
                    q += 1
            if first_done < 0:
                first_done = j
        L = u_side[i] * R + u_lvl[i]
        p = size[L]
        new = u_size[i]
        dec[i] = new < p and not u_snap[i]
        size[L] = new
        if p == 0 and new > 0:
            nmem = _member_add(members, setpos, nmem, L)
            count[u_side[i]] += 1
        elif p > 0 and new == 0:
            nmem = _member_remove(members, setpos, nmem, L)
            count[u_side[i]] -= 1
        if i % stride == 0:
            want = True
        if want and (i == n - 1 or u_ts[i + 1] != t):
            # level counts as the feed shows them: after a whole timestamp group (a message's
            # exit and entry of an N-level view pass through N - 1 or N + 1 levels)
            cnt[nrec, 0] = count[0]
            cnt[nrec, 1] = count[1]
            nrec += 1
            want = False
        if first_done >= 0 and start_rec < 0 and i + 1 >= first_done:
            start_rec = nrec
        i += 1
    return dec, cnt[:nrec], max(start_rec, 0)


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------

@dataclass
class _Arrays:
    u_ts: np.ndarray
    u_seq: np.ndarray
    u_snap: np.ndarray
    u_side: np.ndarray
    u_price: np.ndarray
    u_size: np.ndarray
    u_gap: np.ndarray
    t_ts: np.ndarray
    t_side: np.ndarray
    t_price: np.ndarray
    t_size: np.ndarray
    u_lvl: np.ndarray = None
    t_lvl: np.ndarray = None
    R: int = 1
    pmin: int = 0
    levels: np.ndarray | None = None  # dense index -> price when compressed

    def updates(self) -> Updates:
        return Updates(self.u_ts, self.u_seq, self.u_snap, self.u_side, self.u_lvl, self.u_size, self.u_gap)

    def trades(self) -> Trades:
        return Trades(self.t_ts, self.t_side, self.t_lvl, self.t_size)


def _np(s: pl.Series, dtype) -> np.ndarray:
    return np.ascontiguousarray(s.to_numpy().astype(dtype, copy=False))


def _prepare(updates: pl.DataFrame, trades: pl.DataFrame, gaps: pl.DataFrame | None) -> _Arrays:
    """Frames (already ordered by (ts, seq)) -> contiguous arrays with dense level indices."""
    u = updates
    t = trades.filter(pl.col("aggressor").is_not_null()) if trades.height else trades
    if "hidden" in t.columns and t.height:  # hidden executions are never fills of visible depth
        t = t.filter(~pl.col("hidden").fill_null(False))
    a = _Arrays(
        u_ts=_np(u["ts"], np.int64), u_seq=_np(u["seq"].fill_null(-1), np.int64),
        u_snap=_np(u["is_snapshot"].fill_null(False), np.bool_),
        u_side=_np((u["side"] == "ask").cast(pl.Int8), np.int8),
        u_price=_np(u["price"], np.int64), u_size=_np(u["size"], np.int64),
        u_gap=np.zeros(u.height, np.bool_),
        t_ts=_np(t["ts"], np.int64) if t.height else np.zeros(0, np.int64),
        t_side=_np((t["aggressor"] == "buy").cast(pl.Int8), np.int8) if t.height else np.zeros(0, np.int8),
        t_price=_np(t["price"], np.int64) if t.height else np.zeros(0, np.int64),
        t_size=_np(t["size"], np.int64) if t.height else np.zeros(0, np.int64),
    )
    if gaps is not None and gaps.height and u.height:
        a.u_gap = _gap_flags(a.u_ts, a.u_seq, gaps)
    if a.u_price.size + a.t_price.size == 0:
        a.u_lvl = np.zeros(0, np.int64)
        a.t_lvl = np.zeros(0, np.int64)
        return a
    parts = [x for x in (a.u_price, a.t_price) if x.size]
    pmin, pmax = min(int(x.min()) for x in parts), max(int(x.max()) for x in parts)
    if pmax - pmin + 1 <= _DENSE_MAX:
        a.u_lvl = a.u_price - pmin
        a.t_lvl = a.t_price - pmin
        a.R = pmax - pmin + 1
        a.pmin = pmin
    else:
        levels, inv = np.unique(np.concatenate(parts), return_inverse=True)
        a.u_lvl = np.ascontiguousarray(inv[: a.u_price.size].astype(np.int64))
        a.t_lvl = np.ascontiguousarray(inv[a.u_price.size:].astype(np.int64))
        a.R = int(levels.size)
        a.levels = levels
    return a


def _gap_flags(u_ts: np.ndarray, u_seq: np.ndarray, gaps: pl.DataFrame) -> np.ndarray:
    """Row where each gap starts: the first row at or after (ts_from, seq_from) in (ts, seq)
    order (a null seq_from sorts first at ts_from), as in :mod:`forensics.book`."""
    flags = np.zeros(u_ts.size, np.bool_)
    for row in gaps.iter_rows(named=True):
        tf, sf = row.get("ts_from"), row.get("seq_from")
        if tf is None:
            continue
        k = int(np.searchsorted(u_ts, tf, side="left"))
        if sf is not None:
            e = int(np.searchsorted(u_ts, tf, side="right"))
            k += int(np.searchsorted(u_seq[k:e], sf, side="left"))
        if k < u_ts.size:
            flags[k] = True
    return flags


# ---------------------------------------------------------------------------------------------
# tolerance and depth limit
# ---------------------------------------------------------------------------------------------

#: prints and book share one clock when at least this share of them has a decrease at its own
#: (side, price) with exactly its timestamp (the rest: hidden executions, refills, self-trades)
SHARED_CLOCK_SHARE = 0.8


#: trades sampled (every k-th) for the lag histogram: ~100k prints give > 1 M (trade, decrease)
#: pairs, far more than the ~250 bins need; more only costs time on long days
LAG_SAMPLE_TRADES = 100_000


@nb.njit(cache=True)
def _incremental_steps(u_ts, u_snap):
    """Positive steps between consecutive incremental (non-snapshot) update timestamps; every
    row's when the stream has no snapshot rows."""
    n = u_ts.shape[0]
    any_snap = False
    for i in range(n):
        if u_snap[i]:
            any_snap = True
            break
    out = np.empty(n, np.int64)
    k = 0
    last = 0
    seen = False
    for i in range(n):
        if any_snap and u_snap[i]:
            continue
        if seen and u_ts[i] > last:
            out[k] = u_ts[i] - last
            k += 1
        last = u_ts[i]
        seen = True
    return out[:k]


def estimate_tolerance(a: _Arrays, dec: np.ndarray | None = None, event_matching: bool = True
                       ) -> tuple[int, int, int, int]:
    """(tol_back_ns, tol_fwd_ns, interval_ns, lags_used) estimated from the data.

    interval = median step between distinct incremental update timestamps (the batching).
    Lags: cross-correlation of trades with decreases at their own (side, price) (decrease time -
    trade time within +-(interval + 500 ms), bins of max(1 ms, interval/20)), minus the same
    cross-correlation against the neighbouring price levels (the null: same activity, no causal
    link), minus the remaining far-lag offset. The causal window = bins around the peak whose
    excess is > 15% of the peak (up to 3 quiet bins bridged). tol_back = max(interval, upper
    bin edge), tol_fwd = max(0, -lower bin edge) (capped at interval + 300 ms / 300 ms): when
    no decrease precedes its trade (Binance futures, ``ts = T``) nothing after a decrease can
    match it.
    No clear peak or < 50 pairs: interval + 50 ms / 50 ms. Shared clock (>= 80% of the
    sampled prints have a decrease at their level with exactly their timestamp, e.g. LOBSTER,
    where a print and its fill are one message) on an ``event_matching`` feed: 0 / 0. Not on a
    netted batch feed: a batch has one stamp for all its prints, so a print on its batch's
    stamp (Binance futures ``T`` is the batch's last event; on a quiet market most batches
    hold one print, the last) says nothing of the batch's other prints, which precede it --
    there the usual window applies (its peak then sits at lag 0: tol_fwd 0).
    """
    steps = _incremental_steps(a.u_ts, a.u_snap)
    interval = int(np.median(steps)) if steps.size > 10 else DEFAULT_INTERVAL_NS
    interval = int(min(max(interval, 0), 1_000 * NS_PER_MS))
    default = (interval + 50 * NS_PER_MS, 50 * NS_PER_MS, interval, 0)
    if a.t_ts.size == 0 or a.u_ts.size == 0:
        return default
    if dec is None:  # incremental rows that decrease their level (plain replay)
        dec = _prepass(a.updates(), a.R, 1 << 30)[0]
    if dec.sum() < 10:
        return default
    reach = interval + 500 * NS_PER_MS
    bin_ns = max(NS_PER_MS, interval // 20)
    reach = (reach // bin_ns) * bin_ns
    step = max(1, a.t_ts.size // LAG_SAMPLE_TRADES)
    # null model: the same trades against the neighbouring levels (same activity, no causal link)
    hists, pairs, exact, sampled = _lag_histogram(a.updates(), dec, a.trades(), a.R, reach, bin_ns, step,
                                                  np.array([0, 1, -1], np.int64))
    if pairs < 50:
        return default
    if event_matching and exact >= SHARED_CLOCK_SHARE * sampled:
        # prints and book changes stamped by one clock (the matching engine's): a fill and its
        # print carry the same timestamp, so nothing else may match
        return 0, 0, interval, int(pairs)
    hist = hists[0]
    null = (hists[1] + hists[2]) / 2.0
    lag0 = np.arange(hist.size) * bin_ns - reach          # lower edge of each bin
    excess = hist - null
    outer = np.abs(lag0 + bin_ns // 2) > interval + 250 * NS_PER_MS
    if outer.any():
        excess = excess - float(np.median(excess[outer]))
    mode = int(np.argmax(excess))
    peak = float(excess[mode])
    if peak < 3 * np.sqrt(float(np.median(hist)) + 1) + 5:  # no clear peak: streams unrelated
        return default
    thr = 0.15 * peak
    lo = hi = mode
    for direction in (1, -1):
        k, quiet = mode, 0
        while 0 <= k + direction < hist.size and quiet < 3:
            k += direction
            if excess[k] > thr:
                quiet = 0
                if direction > 0:
                    hi = k
                else:
                    lo = k
            else:
                quiet += 1
    upper = int(lag0[hi] + bin_ns)
    lower = int(lag0[lo])
    tol_back = min(max(interval, upper), interval + 300 * NS_PER_MS)
    tol_fwd = min(max(0, -lower), 300 * NS_PER_MS)
    return int(tol_back), int(tol_fwd), interval, int(pairs)


@nb.njit(cache=True)
def _lag_histogram(upd, dec, trd, R, reach, bin_ns, step, shifts):
    """Cross-correlation of trades and decreases: for each shift, histogram over every pair
    (every ``step``-th trade, any decrease at its side and at its price index + shift) of
    decrease time - trade time within +-reach, in bins of ``bin_ns`` starting at -reach.
    Decreases are bucketed per level with a stable counting sort (time order kept)."""
    u_ts, u_side, u_lvl = upd.ts, upd.side, upd.level
    t_ts, t_side, t_lvl = trd.ts, trd.side, trd.level
    n = u_ts.shape[0]
    R2 = 2 * R
    start = np.zeros(R2 + 1, np.int64)
    for i in range(n):
        if dec[i]:
            start[u_side[i] * R + u_lvl[i] + 1] += 1
    for k in range(R2):
        start[k + 1] += start[k]
    fill = start[:-1].copy()
    times = np.empty(start[R2], np.int64)
    for i in range(n):
        if dec[i]:
            L = u_side[i] * R + u_lvl[i]
            times[fill[L]] = u_ts[i]
            fill[L] += 1
    nbins = (2 * reach) // bin_ns + 1
    hist = np.zeros((shifts.shape[0], nbins), np.int64)
    pairs = 0
    sampled = 0
    exact = 0
    for k in range(0, t_ts.shape[0], step):
        sampled += 1
        for q in range(shifts.shape[0]):
            lv = t_lvl[k] + shifts[q]
            if lv < 0 or lv >= R:
                continue
            L = t_side[k] * R + lv
            lo, hi = start[L], start[L + 1]
            if lo == hi:
                continue
            j = lo + np.searchsorted(times[lo:hi], t_ts[k] - reach)
            hit = False
            while j < hi and times[j] <= t_ts[k] + reach:
                hist[q, (times[j] - t_ts[k] + reach) // bin_ns] += 1
                if q == 0:
                    pairs += 1
                    if times[j] == t_ts[k]:
                        hit = True
                j += 1
            if hit:
                exact += 1
    return hist, pairs, exact, sampled


#: a feed is event-by-event when at least this share of its incremental rows repeat a (side,
#: price) already updated at the same timestamp: a netted batch feed updates a level once per batch
EVENT_FEED_REPEATS = 0.005


@nb.njit(cache=True)
def _repeat_share(upd, R):
    """Share of incremental rows whose level was already updated at the same timestamp."""
    u_ts, u_snap, u_side, u_lvl = upd.ts, upd.snap, upd.side, upd.level
    stamp = np.full(2 * R, -1, np.int64)
    grp = -1
    rep = 0
    inc = 0
    for i in range(u_ts.shape[0]):
        if i == 0 or u_ts[i] != u_ts[i - 1]:
            grp += 1
        if u_snap[i]:
            continue
        inc += 1
        L = u_side[i] * R + u_lvl[i]
        if stamp[L] == grp:
            rep += 1
        stamp[L] = grp
    return rep / inc if inc else 0.0


#: timestamp groups needed before a constant level count is called a depth limit (fewer: too
#: little of the feed seen to tell a window from a quiet full book)
DEPTH_LIMIT_MIN_GROUPS = 200


def detect_depth_limit(a: _Arrays, cnt: np.ndarray, start: int) -> int:
    """N if the feed is depth-limited at N levels per side (see module doc), else 0."""
    c = cnt[start:]
    if c.shape[0] < DEPTH_LIMIT_MIN_GROUPS:
        return 0
    modes = []
    for s in (0, 1):
        vals, counts = np.unique(c[:, s], return_counts=True)
        modes.append(int(vals[np.argmax(counts)]))
    if modes[0] != modes[1] or not (0 < modes[0] <= 1000):
        return 0
    N = modes[0]
    near = (np.abs(c[:, 0] - N) <= 1) & (np.abs(c[:, 1] - N) <= 1)
    if near.mean() >= 0.95 and c.max() <= N + 2:
        return N
    return 0


# ---------------------------------------------------------------------------------------------
# attribution on frames
# ---------------------------------------------------------------------------------------------

def attribute_frames(updates: pl.DataFrame, trades: pl.DataFrame, gaps: pl.DataFrame | None = None,
                     tolerance_ns: int | tuple[int, int] | None = None,
                     depth_limit: int | str | None = "auto", matching: str = "auto"
                     ) -> tuple[pl.DataFrame, AttributionInfo]:
    """Attribute one instrument's updates (ordered by (ts, seq)) given its trades (ordered).

    ``tolerance_ns``: None = estimated; an int = symmetric window (trade up to that many ns
    before or after the decrease); a tuple = (tol_back, tol_fwd): trade before / after the
    decrease. ``depth_limit``: None/0 = full-depth feed, int N, or 'auto'. ``matching``:
    'batch' (a feed netting each level once per batch: a trade belongs to the first update of
    its level), 'event' (event-by-event: to the first decrease) or 'auto' (see
    :func:`detect_matching`). Returns (level_changes frame, info).
    """
    if matching not in ("auto", "batch", "event"):
        raise ForensicsError(f"matching must be 'auto', 'batch' or 'event', not {matching!r}")
    info = AttributionInfo()
    a = _prepare(updates, trades, gaps)
    n = a.u_ts.size
    info.updates, info.trades = n, int(a.t_ts.size)
    info.trade_qty = int(a.t_size.sum()) if a.t_size.size else 0
    if n == 0:
        return _empty(), info
    need_pre = tolerance_ns is None or depth_limit == "auto"
    dec0 = cnt = None
    start = 0
    if need_pre:
        dec0, cnt, start = _prepass(a.updates(), a.R, max(1, n // 1_000_000))
    share = _repeat_share(a.updates(), a.R)
    carry = matching == "event" or (matching == "auto" and share >= EVENT_FEED_REPEATS)
    if tolerance_ns is None:
        tb, tf, interval, nl = estimate_tolerance(a, dec0, carry)
        info.tolerance_source, info.lags_used = "estimated", nl
    elif isinstance(tolerance_ns, (tuple, list)):
        tb, tf = int(tolerance_ns[0]), int(tolerance_ns[1])
        interval = 0
    else:
        tb = tf = int(tolerance_ns)
        interval = 0
    info.tol_back_ns, info.tol_fwd_ns, info.interval_ns = tb, tf, interval
    if depth_limit == "auto":
        dl = detect_depth_limit(a, cnt, start)
    else:
        dl = int(depth_limit or 0)
    info.depth_limit = dl
    info.extra["matching"] = "event" if carry else "batch"
    info.extra["repeat_share"] = share
    cap = max(1024, n // 8)
    upd, trd = a.updates(), a.trades()
    while True:
        rows, syn, trem, overflow = _core(upd, trd, params(tf, tb, dl, a.R, cap, carry))
        if not overflow:
            break
        cap = n + 1
    info.synthetic = int(syn.after.size)
    info.matched_qty = int((a.t_size - trem).sum()) if a.t_size.size else 0
    info.implied_qty = int(rows.implied.sum())
    cols = _with_synthetic(a, rows, syn)
    info.decrease_qty, info.truncation_qty, info.gap_qty = (
        int(x) for x in _decrease_sums(cols["size"], cols["prev_size"], cols["_cause"]))
    return _output_frame(cols), info


def _with_synthetic(a: _Arrays, rows: RowOut, syn: Synthetic) -> dict[str, np.ndarray]:
    """The pass's columns, real rows and synthetic removals merged: each synthetic removal
    goes right after the last row of its snapshot block."""
    n = a.u_ts.size
    cols = {"ts": a.u_ts, "seq": a.u_seq, "_side": a.u_side, "price": a.u_price, "prev_size": rows.prev,
            "size": a.u_size, "traded": rows.traded, "implied": rows.implied[:n], "_cause": rows.cause,
            "is_snapshot": a.u_snap}
    m = syn.after.size
    if not m:
        return cols
    s_side = (syn.key // a.R).astype(np.int8)
    s_lvl = syn.key - s_side.astype(np.int64) * a.R
    s_price = a.levels[s_lvl] if a.levels is not None else s_lvl + a.pmin
    k = np.arange(m)
    pos_real = np.arange(n) + np.searchsorted(syn.after, np.arange(n), side="left")
    order = np.empty(n + m, np.int64)
    order[pos_real] = np.arange(n)
    order[syn.after + 1 + k] = n + k
    extra = {"ts": syn.ts, "seq": a.u_seq[syn.after], "_side": s_side, "price": s_price.astype(np.int64),
             "prev_size": syn.prev, "size": np.zeros(m, np.int64), "traded": syn.traded,
             "implied": rows.implied[n:n + m], "_cause": syn.cause, "is_snapshot": np.ones(m, np.bool_)}
    return {c: np.concatenate([x, extra[c]])[order] for c, x in cols.items()}


def _output_frame(cols: dict[str, np.ndarray]) -> pl.DataFrame:
    """level_changes from the merged columns: one parallel Polars projection from zero-copy
    columns (the string columns and the derived quantities are built concurrently; the arrays
    are never copied through numpy)."""
    base = pl.DataFrame(cols)
    delta = pl.col("size") - pl.col("prev_size")
    return base.select(
        "ts", "seq", pl.lit(pl.Series(SIDE_NAMES)).gather(pl.col("_side")).alias("side"),
        "price", "prev_size", "size", delta.alias("delta"),
        pl.max_horizontal(delta, 0).alias("added"), "traded",
        (pl.max_horizontal(-delta, 0) - pl.col("traded")).alias("cancelled"), "implied",
        pl.lit(pl.Series(CAUSES)).gather(pl.col("_cause")).alias("cause"), "is_snapshot",
    )


@nb.njit(cache=True)
def _decrease_sums(u_size, prev, cause):
    """(decreased, truncated, lost to gaps) quantity over all rows, in one pass."""
    dq = 0
    tq = 0
    gq = 0
    for i in range(u_size.shape[0]):
        d = prev[i] - u_size[i]
        if d > 0:
            dq += d
            if cause[i] == TRUNC:
                tq += d
            elif cause[i] == GAP:
                gq += d
    return dq, tq, gq


def _empty() -> pl.DataFrame:
    schema = dict(TABLES["level_changes"])
    schema["is_snapshot"] = pl.Boolean
    return pl.DataFrame(schema=schema)


# ---------------------------------------------------------------------------------------------
# reference implementation (plain Python, for tests)
# ---------------------------------------------------------------------------------------------

def attribute_reference(updates: pl.DataFrame, trades: pl.DataFrame, gaps: pl.DataFrame | None,
                        tol_back: int, tol_fwd: int, depth_limit: int = 0, matching: str = "batch"
                        ) -> pl.DataFrame:
    """Straightforward restatement of the rules in the module docstring (dicts and loops).

    Pass 1 replays the book (snapshot blocks, synthetic removals, staleness, the entry/exit
    pairing of depth-limited views per timestamp group); pass 2 gives each trade to its
    update group (``matching='batch'``) or lets each decrease take the prints in its window
    (``'event'``); pass 3 splits. Used to check :func:`attribute_frames` exactly.

    One long function on purpose: it is the rules written out top to bottom in the order of
    the module docstring, with its passes marked, so it can be read against that text and
    shares no helper (and so no bug) with the compiled pass.
    """
    U = updates.to_dicts()
    n = len(U)
    ts = [r["ts"] for r in U]
    seq = [r["seq"] for r in U]
    gapflag = [False] * n
    if gaps is not None and gaps.height and n:
        for row in gaps.iter_rows(named=True):
            if row.get("ts_from") is None:
                continue
            sf = row["seq_from"] if row.get("seq_from") is not None else -(2**63)
            later = [i for i in range(n) if (ts[i], seq[i]) >= (row["ts_from"], sf)]
            if later:
                gapflag[later[0]] = True
    book: dict[tuple[str, int], int] = {}
    lvl_epoch: dict = {}
    lvl_snap: dict = {}
    epoch, known, snapc = 1, 0, 0
    bound: dict[str, int | None] = {"bid": None, "ask": None}
    rows = []  # dicts: ts, seq, side, price, prev, size, stale, rule_b, trunc_unmatched, synthetic, snap
    group = {"ts": None, "edge": {}, "pending": []}

    def edge(side):
        """The N-th best price of a side (bid: N-th highest), None with fewer than N levels."""
        lv = sorted((p for (s, p), q in book.items() if s == side and q > 0), reverse=side == "bid")
        return lv[depth_limit - 1] if depth_limit and len(lv) >= depth_limit else None

    def beyond_edge(side, price, e):
        return e is not None and (price < e if side == "bid" else price > e)

    def end_group():
        for side in ("bid", "ask"):
            unpaired = []
            for r in (x for x in group["pending"] if x["side"] == side):
                entry = r["prev_size"] == 0
                if unpaired and (unpaired[0]["prev_size"] == 0) != entry:
                    o = unpaired.pop(0)
                    ex, en = (o, r) if entry else (r, o)
                    better = en["price"] > ex["price"] if side == "bid" else en["price"] < ex["price"]
                    if better:
                        ex["trunc_unmatched"] = True   # pushed out of the window by the entry
                    else:
                        en["trunc_unmatched"] = True   # the next level revealed
                        if en["price"] == ex["price"] and (beyond_edge(side, ex["price"], group["edge"][side])
                                                           or beyond_edge(side, ex["price"], edge(side))):
                            ex["trunc_unmatched"] = True   # shown and hidden again beyond the window
                else:
                    unpaired.append(r)
            for r in unpaired:
                e = group["edge"][side] if r["prev_size"] == 0 else edge(side)
                r["trunc_unmatched"] = beyond_edge(side, r["price"], e)
        group["pending"] = []

    def beyond(side, price):
        b = bound[side]
        return b is not None and (price < b if side == "bid" else price > b)

    def change(i, side, price, new, t, sq, synthetic, snap):
        nonlocal epoch
        key = (side, price)
        p = book.get(key, 0)
        stale = known < epoch and lvl_epoch.get(key, 0) < epoch
        r = {"ts": t, "seq": sq, "side": side, "price": price, "prev_size": p, "size": new,
             "stale": stale, "synthetic": synthetic, "is_snapshot": snap,
             "rule_b": False, "trunc_unmatched": False}
        if not stale:
            if synthetic:
                r["trunc_unmatched"] = beyond(side, price)
            else:
                if not depth_limit and beyond(side, price) and lvl_snap.get(key, 0) != snapc:
                    r["rule_b"] = True
                elif depth_limit and ((new == 0 and p > 0) or (p == 0 and new > 0)):
                    group["pending"].append(r)  # left / entered the view: judged at the group's end
        rows.append(r)
        book[key] = new
        lvl_epoch[key] = epoch
        if not synthetic:
            lvl_snap[key] = snapc

    def start(i):
        if group["ts"] is None or ts[i] != group["ts"]:
            if group["ts"] is not None:
                end_group()
            group["ts"] = ts[i]
            group["edge"] = {s: edge(s) for s in ("bid", "ask")}

    i = 0
    while i < n:
        start(i)
        if gapflag[i]:
            epoch += 1
        u = U[i]
        if u["is_snapshot"]:
            j = i
            while j < n and U[j]["is_snapshot"] and ts[j] == ts[i]:
                j += 1
            snapc += 1
            block = U[i:j]
            counts = [sum(1 for b in block if b["side"] == s) for s in ("bid", "ask")]
            limited = counts[0] == counts[1] and (counts[0] in _STANDARD_LIMITS
                                                  or (depth_limit and counts[0] == depth_limit))
            for s in ("bid", "ask"):
                ps = [b["price"] for b in block if b["side"] == s]
                bound[s] = (min(ps) if s == "bid" else max(ps)) if ps and limited else None
            for k in range(i, j):
                if k > i and gapflag[k]:
                    epoch += 1
                b = U[k]
                change(k, b["side"], b["price"], b["size"], ts[k], seq[k], False, True)
            present = {(b["side"], b["price"]) for b in block}
            absent = sorted((k for k, q in book.items() if q > 0 and k not in present),
                            key=lambda k: (0 if k[0] == "bid" else 1, k[1]))
            for s, p in absent:
                change(None, s, p, 0, ts[i], seq[j - 1], True, True)
            known = epoch
            i = j
            continue
        change(i, u["side"], u["price"], u["size"], ts[i], seq[i], False, False)
        i += 1
    if group["ts"] is not None:
        end_group()
    # pass 2: each trade belongs to the first non-gap row at its level at or after T - tol_fwd
    # (if within T + tol_back), and so to every row of that level with that row's timestamp
    # (the update group); pass 3: the group's decreases use its trades oldest first, the rest is
    # implied on the group's first row
    T = [t for t in trades.to_dicts() if t["aggressor"] is not None and not t.get("hidden")]
    level_rows: dict = {}
    for r in rows:
        r["traded"], r["implied"] = 0, 0
        if not r["stale"]:
            level_rows.setdefault((r["side"], r["price"]), []).append(r)
    if matching == "event":
        # event-by-event feed: each decrease takes the unused prints of its level whose window
        # holds it (T - tol_fwd <= t <= T + tol_back), oldest first; nothing is implied
        by_level: dict = {}
        for t in T:
            side = "bid" if t["aggressor"] == "sell" else "ask"
            by_level.setdefault((side, t["price"]), []).append({"ts": t["ts"], "left": t["size"]})
        for r in rows:
            if r["stale"] or r["rule_b"]:
                continue
            need = r["prev_size"] - r["size"]
            for t in by_level.get((r["side"], r["price"]), []):
                if need <= 0:
                    break
                if t["left"] and t["ts"] - tol_fwd <= r["ts"] <= t["ts"] + tol_back:
                    take = min(need, t["left"])
                    t["left"] -= take
                    need -= take
                    r["traded"] += take
        T = []
    pools: dict = {}  # (side, price, ts) -> [remaining sizes] (oldest first)
    for t in T:
        side = "bid" if t["aggressor"] == "sell" else "ask"
        first = next((r for r in level_rows.get((side, t["price"]), []) if r["ts"] >= t["ts"] - tol_fwd), None)
        if first is not None and first["ts"] <= t["ts"] + tol_back:
            pools.setdefault((side, t["price"], first["ts"]), {"first": first, "q": []})["q"].append(t["size"])
    for r in rows:
        pool = pools.get((r["side"], r["price"], r["ts"])) if not r["stale"] else None
        if pool is None or r["rule_b"]:
            continue
        need = r["prev_size"] - r["size"]
        q = pool["q"]
        while need > 0 and q:
            take = min(need, q[0])
            need -= take
            q[0] -= take
            r["traded"] += take
            if q[0] == 0:
                q.pop(0)
    for pool in pools.values():
        pool["first"]["implied"] += sum(pool["q"])
    out = []
    for r in rows:
        d = r["size"] - r["prev_size"]
        if r["stale"]:
            c = "gap"
        elif r["rule_b"]:
            c = "truncation"
        elif d < 0:
            if r["traded"] == -d:
                c = "trade"
            elif r["traded"] > 0:
                c = "mixed"
            else:
                c = "truncation" if r["trunc_unmatched"] else "cancel"
        else:
            c = "truncation" if r["trunc_unmatched"] else "add"
        out.append({"ts": r["ts"], "seq": r["seq"], "side": r["side"], "price": r["price"],
                    "prev_size": r["prev_size"], "size": r["size"], "delta": d, "added": max(d, 0),
                    "traded": r["traded"], "cancelled": max(-d, 0) - r["traded"],
                    "implied": r["implied"], "cause": c, "is_snapshot": r["is_snapshot"]})
    if not out:
        return _empty()
    return pl.DataFrame(out, schema=_empty().schema)


# ---------------------------------------------------------------------------------------------
# store entry point
# ---------------------------------------------------------------------------------------------

def _day_bounds(ns_from: int, ns_to: int) -> tuple[int, int]:
    d0 = dt.datetime.fromtimestamp(ns_from // 10**9, tz=dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    d1 = dt.datetime.fromtimestamp(ns_to // 10**9, tz=dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(d0.timestamp()) * 10**9, (int(d1.timestamp()) + 86400) * 10**9 - 1


def load_inputs(store: Store, exchange: str, symbol: str, ts_from: int | None, ts_to: int | None,
                margin_ns: int = 5 * 10**9) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Updates from the last snapshot at or before ``ts_from`` (so the book is known), trades
    with a margin around the window, and gaps."""
    start = None
    if ts_from is not None:
        snap = (store.scan("book_updates", exchange, symbol, None, ts_from)
                .filter(pl.col("is_snapshot")).select(pl.col("ts").max()).collect())
        start = snap.item() if snap.height and snap.item() is not None else None
        if start is None:
            first = store.scan("book_updates", exchange, symbol).select(pl.col("ts").min()).collect().item()
            start = first if first is not None and first < ts_from else ts_from
    cols = ["ts", "seq", "is_snapshot", "side", "price", "size"]
    updates = store.scan("book_updates", exchange, symbol, start, ts_to).select(cols).collect()
    t_from = None if start is None else start - margin_ns
    t_to = None if ts_to is None else ts_to + margin_ns
    lf = store.scan("trades", exchange, symbol, t_from, t_to)
    tcols = ["ts", "seq", "price", "size", "aggressor"]
    if "hidden" in lf.collect_schema().names():
        tcols.append("hidden")
    trades = lf.select(tcols).collect()
    gaps = store.scan("gaps", exchange, symbol, ts_column="ts_from").collect() \
        if store.files("gaps", exchange, symbol) else None
    return updates, trades, gaps


def attribute_with_info(store: Store | str, exchange: str, symbol: str, ts_from: int | None = None,
                        ts_to: int | None = None, tolerance_ns: int | tuple[int, int] | None = None,
                        write: bool = True, depth_limit: int | str | None = "auto", matching: str = "auto"
                        ) -> tuple[pl.DataFrame, AttributionInfo]:
    """:func:`attribute` plus the :class:`AttributionInfo` of the run."""
    store = store if isinstance(store, Store) else Store(store)
    if not store.files("book_updates", exchange, symbol):
        raise ForensicsError(f"no book_updates for {exchange}/{symbol} in {store.root}: attribution "
                             "needs level data (ingest a depth capture or Tardis incremental_book_L2)")
    lo, hi = ts_from, ts_to
    if write and (ts_from is not None or ts_to is not None):
        rng = store.scan("book_updates", exchange, symbol).select(
            pl.col("ts").min().alias("a"), pl.col("ts").max().alias("b")).collect().row(0)
        lo, hi = _day_bounds(ts_from if ts_from is not None else rng[0], ts_to if ts_to is not None else rng[1])
    updates, trades, gaps = load_inputs(store, exchange, symbol, lo, hi)
    df, info = attribute_frames(updates, trades, gaps, tolerance_ns, depth_limit, matching)
    if lo is not None:
        df = df.filter(pl.col("ts") >= lo)
    if write and df.height:
        # encode the parts before taking the writer lock: only making them visible needs it
        staged = store.stage_partitioned("level_changes", df, exchange, symbol, "level_changes")
        with store.lock():
            store.publish_staged(staged, replace_dates=True)
    if ts_from is not None:
        df = df.filter(pl.col("ts") >= ts_from)
    if ts_to is not None:
        df = df.filter(pl.col("ts") <= ts_to)
    return df, info


def attribute(store: Store | str, exchange: str, symbol: str, ts_from: int | None = None,
              ts_to: int | None = None, tolerance_ns: int | tuple[int, int] | None = None,
              write: bool = True, depth_limit: int | str | None = "auto", matching: str = "auto") -> pl.DataFrame:
    """level_changes for one instrument over [ts_from, ts_to] (UTC ns, inclusive; None = all).

    Stored units: ``price`` in ticks, sizes in lots, ``ts`` UTC ns. ``tolerance_ns`` is the
    trade/update matching window in ns (None = estimated from the data; int = symmetric;
    (before, after) = trade up to ``before`` ns before / ``after`` ns after the decrease).
    With ``write`` the rows of every UTC day touched are recomputed and replace that day's
    ``level_changes`` partition (the SQL view ``level_changes`` shows them in real units).
    ``depth_limit``: the feed's N-level view (None/0 = full depth, an int N, 'auto' = detected);
    ``matching``: 'batch' / 'event' / 'auto' (see :func:`attribute_frames`).
    """
    return attribute_with_info(store, exchange, symbol, ts_from, ts_to, tolerance_ns, write, depth_limit,
                               matching)[0]


def decrease_shares(store: Store | str, exchange: str, symbol: str, ts_from: int | None = None,
                    ts_to: int | None = None) -> dict:
    """From the stored ``level_changes``: decrease volume (lots) and the shares of it that are
    ``truncation`` (a depth-limited view's window moving) and ``gap`` (prior size unknown)."""
    store = store if isinstance(store, Store) else Store(store)
    if not store.files("level_changes", exchange, symbol):
        return {"decrease": 0, "truncation": None, "gap": None}
    dec = (-pl.col("delta")).clip(0)
    r = store.scan("level_changes", exchange, symbol, ts_from, ts_to).select(
        dec.sum().alias("d"), dec.filter(pl.col("cause") == "truncation").sum().alias("t"),
        dec.filter(pl.col("cause") == "gap").sum().alias("g")).collect().row(0)
    d, t, g = (int(x or 0) for x in r)
    return {"decrease": d, "truncation": t / d if d else None, "gap": g / d if d else None}
