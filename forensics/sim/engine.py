"""The compiled engine: a price-time priority limit-order book with market makers and takers,
stepped every 1 ms (see :func:`run_engine`)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import numpy as np

from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
from numba import njit  # noqa: E402

from forensics.sim.config import (  # noqa: E402
    ASK, BATCH_MS, BID, EXO_MS, K_ADD, K_CANCEL, K_TRADE, SimConfig, validate)
from forensics.timeutil import NS_PER_MS  # noqa: E402
from forensics.sim.scenario import Schedules, _n_ms, compile_scenario  # noqa: E402

# --------------------------------------------------------------------------- engine (numba)
#
# Named state. The engine's inputs (schedules, makers), its parameters, the order book, the
# makers' state and the outputs are ``NamedTuple``s of arrays (numba passes them as typed
# tuples: ``book.best[side]``, ``pool.lots[slot]``); the running scalars are one numpy record
# (:data:`ENGINE_CURSOR`: ``cur.n_ops``). A new field is one line in its class (and its
# allocation in :func:`_new_state`). The log arrays (:class:`Logs`) grow, so they are a tuple of
# their own that :func:`_engine` rebuilds when it reallocates.


class Makers(NamedTuple):
    """Per maker ``m`` (:class:`~forensics.sim.config.MakerSpec`, same units)."""

    delta0: np.ndarray       # float64 minimum half-spread, ticks
    spacing: np.ndarray      # float64 ladder level distance, ticks
    size: np.ndarray         # float64 lots at level 0
    tau: np.ndarray          # float64 quote horizon, s
    gamma: np.ndarray        # float64 AS risk aversion
    qmax: np.ndarray         # float64 inventory limit, lots
    react: np.ndarray        # float64 re-quote when fair value moved this far, ticks
    tol0: np.ndarray         # float64 keep an order within tol0 + tol_frac * distance, ticks
    requote_ms: np.ndarray   # float64 mean time between timer re-quotes
    refill_ms: np.ndarray    # int64 cool-down after a fill
    levels: np.ndarray       # int64 ladder levels per side


class Takers(NamedTuple):
    """Market orders in time order (noise and incident flow)."""

    t: np.ndarray       # int64 engine ms
    side: np.ndarray    # int64 aggressor: 0 sells (hits bids), 1 buys (lifts asks)
    lots: np.ndarray    # int64


class Controls(NamedTuple):
    """Maker control events in time order: from ``t`` on, ``maker`` (-1 all) quotes ``side``
    (0 bid, 1 ask, 2 both) with ``presence`` (share of the ladder, size x sqrt) and
    ``spread`` (half-spread multiplier)."""

    t: np.ndarray           # int64 engine ms
    maker: np.ndarray       # int64
    side: np.ndarray        # int64
    presence: np.ndarray    # float64
    spread: np.ndarray      # float64


class FlickerPlan(NamedTuple):
    """Flicker actions in time order: place (``place`` 1) or cancel (0) flicker order ``order_id``."""

    t: np.ndarray           # int64 engine ms
    place: np.ndarray       # int64 1 place / 0 cancel
    side: np.ndarray        # int64 0 bid / 1 ask
    offset: np.ndarray      # int64 ticks from fair value
    lots: np.ndarray        # int64
    order_id: np.ndarray    # int64


class EngineInput(NamedTuple):
    """Everything drawn before the run (:class:`~forensics.sim.scenario.Schedules`) + the makers."""

    fair_exo: np.ndarray    # float64 exogenous fair value per EXO_MS, ticks
    uniforms: np.ndarray    # float64 pre-drawn uniforms, consumed cyclically
    makers: Makers
    takers: Takers
    controls: Controls
    flicker: FlickerPlan


class EngineParams(NamedTuple):
    """What the engine is told (:func:`run_engine` builds it from the :class:`SimConfig`)."""

    n_ms: int               # engine ms to run (warm-up + capture)
    warm_ms: int            # warm-up, not recorded
    batch_ms: int           # batch length (the depth stream's 100 ms)
    price_lo: int           # absolute ticks of price grid index 0
    width: int              # price grid indices per side
    n_flicker_ids: int      # flicker orders in the plan
    order_slots: int        # room for resting orders
    impact_beta: float      # share of a market order's book walk that moves fair value
    impact_lambda: float    # ticks of permanent impact per lot
    sigma0: float           # fair value vol, ticks / sqrt(s) (initial, and the clamp's scale)
    vol_alpha: float        # EWMA weight of a batch in the makers' realised variance
    tol_frac: float         # see Makers.tol0
    size_slope: float       # level j size = size * (1 + size_slope * j)
    horizon_s: float        # AS horizon
    hedge_tau_ms: float     # inventory decay time constant (hedged away elsewhere)
    record_books: bool      # keep every level at every capture batch end


class OrderPool(NamedTuple):
    """Resting orders by slot; a level's orders are a FIFO linked list through ``next``/``prev``."""

    side: np.ndarray        # int64
    level: np.ndarray       # int64 price grid index
    lots: np.ndarray        # int64 remaining
    agent: np.ndarray       # int64 maker index, or n_makers for flicker orders
    rung: np.ndarray        # int64 the maker's ladder level j
    next: np.ndarray        # int32 next slot at the level (-1 last)
    prev: np.ndarray        # int32 previous slot (-1 first)
    free: np.ndarray        # int32 stack of free slots (first ``cur.n_free``)


class Book(NamedTuple):
    """Lots and order queues per (side, price grid index)."""

    lots: np.ndarray        # int64 (2, width)
    head: np.ndarray        # int32 (2, width) first order slot (-1 none)
    tail: np.ndarray        # int32 (2, width) last order slot
    best: np.ndarray        # int64 (2,) best level index per side (-1 none)
    occupied: np.ndarray    # int64 (2,) non-empty levels per side


class MakerState(NamedTuple):
    """Each maker's quotes, inventory and timers."""

    orders: np.ndarray      # int32 (n_makers, 2, max levels) order slot per ladder rung (-1 none)
    inventory: np.ndarray   # float64 lots (long > 0)
    presence: np.ndarray    # float64 (n_makers, 2), see Controls
    spread: np.ndarray      # float64 (n_makers, 2)
    next_quote: np.ndarray  # int64 ms of the next timer re-quote
    cool_until: np.ndarray  # int64 end of the cool-down after a fill
    last_quote: np.ndarray  # int64 ms of the last re-quote (inventory decay)
    fair_at_quote: np.ndarray  # float64 fair value at the last re-quote


class BatchOut(NamedTuple):
    """Per capture batch end (see :class:`EngineOutput`)."""

    fair: np.ndarray        # float64 ticks
    best_bid: np.ndarray    # int64 ticks (-1 none)
    best_ask: np.ndarray    # int64
    sigma: np.ndarray       # float64 the makers' realised vol, ticks / sqrt(s)


class Logs(NamedTuple):
    """The growing logs (rows ``OP_*`` / ``FILL_*`` / ``BOOK_*`` columns, int64)."""

    ops: np.ndarray         # (n, 6) every book operation, first cur.n_ops rows
    fills: np.ndarray       # (n, 6) every maker fill, first cur.n_fills rows
    books: np.ndarray       # (n, 4) batch-end levels (record_books), first cur.n_book_rows rows


#: columns of Logs.ops (EngineOutput.ops), Logs.fills and Logs.books
OP_T, OP_SIDE, OP_PRICE, OP_DELTA, OP_KIND, OP_AGENT = range(6)
FILL_T, FILL_PRICE, FILL_LOTS, FILL_TAKER, FILL_AGGRESSOR, FILL_AGENT = range(6)
BOOK_BATCH, BOOK_SIDE, BOOK_PRICE, BOOK_LOTS = range(4)
#: overflow codes in ``cur.status`` (0 = fine)
OVERFLOW_OPS, OVERFLOW_FILLS, OVERFLOW_SLOTS, OVERFLOW_GRID = 1, 2, 4, 5
OVERFLOW_REASON = {OVERFLOW_OPS: "op log", OVERFLOW_FILLS: "fill log", OVERFLOW_SLOTS: "order slots",
                   OVERFLOW_GRID: "price grid (raise range_frac)"}

#: running scalars of the engine, one record
ENGINE_CURSOR = np.dtype([
    ("n_ops", np.int64),          # rows of Logs.ops written
    ("n_fills", np.int64),        # rows of Logs.fills written
    ("n_free", np.int64),         # free order slots
    ("status", np.int64),         # an OVERFLOW_* code, 0 = fine
    ("n_draws", np.int64),        # uniforms consumed
    ("n_book_rows", np.int64),    # rows of Logs.books written
    ("next_control", np.int64),   # first control event not yet applied
    ("next_flicker", np.int64),   # first flicker action not yet applied
    ("next_taker", np.int64),     # first market order not yet sent
    ("variance", np.float64),     # the makers' realised variance of fair value, ticks^2 / s
    ("impact", np.float64),       # permanent impact of the trades so far, ticks
    ("fair_prev_batch", np.float64),  # fair value at the previous batch end
], align=True)


class EngineState(NamedTuple):
    """Everything the engine changes as it runs (allocated by :func:`_new_state`)."""

    cur: np.ndarray         # ENGINE_CURSOR, shape (1,)
    book: Book
    pool: OrderPool
    quotes: MakerState
    flicker_slot: np.ndarray   # int32 order slot per flicker order id (-1 not resting)
    flicker_price: np.ndarray  # int64 absolute price ticks per flicker action (-1 none)
    batches: BatchOut


#: the engine's steps allocate nothing, so they are compiled without NRT reference counting
#: (numba would otherwise emit an atomic inc/dec for every array of the state tuples at each
#: call: with the ms loop in an NRT function it ran 6x slower). LLVM inlines the small ones
#: itself; only the per-ms path (:func:`_run_ms`, :func:`_room`: 1.8 M calls in a 30-minute
#: run, most of them doing nothing) is inlined by numba (``_ms_step``). Inlining every step that
#: way measured no faster and doubled the cold compile (~60 s vs ~30 s on a loaded machine).
_step = njit(cache=True, _nrt=False)
_ms_step = njit(cache=True, _nrt=False, inline="always")


@njit(cache=True)
def _new_state(inp, prm):
    """Allocate the engine state: an empty book, every order slot free, makers at presence 1."""
    n_makers = inp.makers.levels.shape[0]
    max_levels = inp.makers.levels.max()
    slots = prm.order_slots
    cur = np.zeros(1, ENGINE_CURSOR)
    cur[0].n_free = slots
    cur[0].variance = prm.sigma0 * prm.sigma0
    cur[0].fair_prev_batch = inp.fair_exo[0]
    book = Book(np.zeros((2, prm.width), np.int64), np.full((2, prm.width), -1, np.int32),
                np.full((2, prm.width), -1, np.int32), np.full(2, -1, np.int64), np.zeros(2, np.int64))
    pool = OrderPool(np.zeros(slots, np.int64), np.zeros(slots, np.int64), np.zeros(slots, np.int64),
                     np.zeros(slots, np.int64), np.zeros(slots, np.int64), np.full(slots, -1, np.int32),
                     np.full(slots, -1, np.int32), np.arange(slots - 1, -1, -1).astype(np.int32))
    quotes = MakerState(np.full((n_makers, 2, max_levels), -1, np.int32), np.zeros(n_makers),
                        np.ones((n_makers, 2)), np.ones((n_makers, 2)), np.zeros(n_makers, np.int64),
                        np.zeros(n_makers, np.int64), np.zeros(n_makers, np.int64), np.zeros(n_makers))
    n_b = (prm.n_ms - prm.warm_ms) // prm.batch_ms
    batches = BatchOut(np.zeros(n_b), np.full(n_b, -1, np.int64), np.full(n_b, -1, np.int64), np.zeros(n_b))
    return EngineState(cur, book, pool, quotes, np.full(max(prm.n_flicker_ids, 1), -1, np.int32),
                       np.full(inp.flicker.t.shape[0], -1, np.int64), batches)


@_step
def _log(st, logs, t, side, price, delta, kind, agent):
    """Append one book operation (ms, side, abs price ticks, signed lots, kind, agent)."""
    cur = st.cur[0]
    n = cur.n_ops
    if n >= logs.ops.shape[0]:
        cur.status = OVERFLOW_OPS
        return
    logs.ops[n, OP_T] = t
    logs.ops[n, OP_SIDE] = side
    logs.ops[n, OP_PRICE] = price
    logs.ops[n, OP_DELTA] = delta
    logs.ops[n, OP_KIND] = kind
    logs.ops[n, OP_AGENT] = agent
    cur.n_ops = n + 1


@_step
def _level_emptied(book, side, level):
    """Bookkeeping after ``level`` lost quantity: occupied count and best price."""
    if book.lots[side, level] != 0:
        return
    book.occupied[side] -= 1
    if book.best[side] != level:
        return
    if book.occupied[side] == 0:
        book.best[side] = -1
        return
    k = level
    if side == 0:
        k -= 1
        while book.lots[0, k] == 0:
            k -= 1
    else:
        k += 1
        while book.lots[1, k] == 0:
            k += 1
    book.best[side] = k


@_step
def _place(prm, st, logs, t, side, level, lots, agent, rung):
    """Rest a new order at the tail of its level (time priority); returns its slot."""
    cur = st.cur[0]
    book, pool = st.book, st.pool
    if cur.n_free == 0:
        cur.status = OVERFLOW_SLOTS
        return -1
    cur.n_free -= 1
    s = pool.free[cur.n_free]
    pool.side[s] = side
    pool.level[s] = level
    pool.lots[s] = lots
    pool.agent[s] = agent
    pool.rung[s] = rung
    pool.next[s] = -1
    pool.prev[s] = book.tail[side, level]
    if book.tail[side, level] >= 0:
        pool.next[book.tail[side, level]] = s
    else:
        book.head[side, level] = s
    book.tail[side, level] = s
    if book.lots[side, level] == 0:
        book.occupied[side] += 1
    book.lots[side, level] += lots
    if side == 0:
        if book.best[0] < 0 or level > book.best[0]:
            book.best[0] = level
    else:
        if book.best[1] < 0 or level < book.best[1]:
            book.best[1] = level
    _log(st, logs, t, side, prm.price_lo + level, lots, np.int64(K_ADD), agent)
    return s


@_step
def _unlink(st, side, level, s):
    """Remove slot ``s`` from its level's FIFO and return it to the free stack."""
    book, pool, cur = st.book, st.pool, st.cur[0]
    nx = pool.next[s]
    pv = pool.prev[s]
    if pv >= 0:
        pool.next[pv] = nx
    else:
        book.head[side, level] = nx
    if nx >= 0:
        pool.prev[nx] = pv
    else:
        book.tail[side, level] = pv
    pool.free[cur.n_free] = s
    cur.n_free += 1


@_step
def _cancel(prm, st, logs, t, s):
    """Cancel resting order ``s`` (its whole remaining quantity)."""
    pool = st.pool
    side = pool.side[s]
    level = pool.level[s]
    lots = pool.lots[s]
    _unlink(st, side, level, s)
    st.book.lots[side, level] -= lots
    _level_emptied(st.book, side, level)
    _log(st, logs, t, side, prm.price_lo + level, -lots, np.int64(K_CANCEL), pool.agent[s])


@_step
def _fill(inp, prm, st, logs, t, aggressor, taker, s, level, lots):
    """One maker fill of ``lots`` against slot ``s`` at ``level``: the fill and trade op logged,
    the order and level reduced, the maker's inventory and cool-down updated, a filled order
    unlinked. Returns False when the fill log is full."""
    cur, book, pool, quotes = st.cur[0], st.book, st.pool, st.quotes
    side = 0 if aggressor == 0 else 1
    agent = pool.agent[s]
    nf = cur.n_fills
    if nf >= logs.fills.shape[0]:
        cur.status = OVERFLOW_FILLS
        return False
    logs.fills[nf, FILL_T] = t
    logs.fills[nf, FILL_PRICE] = prm.price_lo + level
    logs.fills[nf, FILL_LOTS] = lots
    logs.fills[nf, FILL_TAKER] = taker
    logs.fills[nf, FILL_AGGRESSOR] = aggressor
    logs.fills[nf, FILL_AGENT] = agent
    cur.n_fills = nf + 1
    _log(st, logs, t, side, prm.price_lo + level, -lots, np.int64(K_TRADE), agent)
    pool.lots[s] -= lots
    book.lots[side, level] -= lots
    n_makers = quotes.inventory.shape[0]
    if agent < n_makers:
        quotes.inventory[agent] += lots if side == 0 else -lots
        quotes.cool_until[agent] = t + inp.makers.refill_ms[agent]  # cool-down: no re-quote until then, then one
        quotes.next_quote[agent] = quotes.cool_until[agent]
    if pool.lots[s] == 0:
        _unlink(st, side, level, s)
        if agent < n_makers:
            quotes.orders[agent, side, pool.rung[s]] = -1
        else:
            for k in range(st.flicker_slot.shape[0]):
                if st.flicker_slot[k] == s:
                    st.flicker_slot[k] = -1
    return True


@_step
def _market(inp, prm, st, logs, t, aggressor, lots, taker):
    """Match a market order (aggressor 0 sells into bids, 1 buys asks), price-time priority.

    Returns (filled lots, pre-trade best level, last fill level); an unfilled rest is dropped
    (IOC)."""
    book, pool = st.book, st.pool
    side = 0 if aggressor == 0 else 1
    rem = lots
    pre = book.best[side]
    last = -1
    filled = 0
    while rem > 0 and book.best[side] >= 0:
        level = book.best[side]
        s = book.head[side, level]
        while rem > 0 and s >= 0:
            x = min(rem, pool.lots[s])
            nx = pool.next[s]
            if not _fill(inp, prm, st, logs, t, aggressor, taker, s, level, x):
                return filled, pre, last
            rem -= x
            filled += x
            last = level
            s = nx
        _level_emptied(book, side, level)
    return filled, pre, last


@_step
def _draw(inp, st):
    """Next uniform from the pre-drawn pool (cyclic)."""
    cur = st.cur[0]
    u = inp.uniforms[cur.n_draws % inp.uniforms.shape[0]]
    cur.n_draws += 1
    return u


@_step
def _passive(book, side, level):
    """``level`` moved off the other side's best, so a resting order never crosses."""
    if side == 0:
        if book.best[1] >= 0 and level >= book.best[1]:
            return book.best[1] - 1
    elif book.best[0] >= 0 and level <= book.best[0]:
        return book.best[0] + 1
    return level


@_step
def _quote_level(prm, book, side, reservation, dist):
    """Price grid index of a maker quote ``dist`` ticks from the reservation price (passive)."""
    if side == 0:
        return _passive(book, side, int(math.floor(reservation - dist)) - prm.price_lo)
    return _passive(book, side, int(math.ceil(reservation + dist)) - prm.price_lo)


@_step
def _requote(inp, prm, st, logs, m, t, fair, sigma, cooling):
    """Maker ``m`` re-prices its ladder around its AS reservation price (cancel + new where off).

    While ``cooling`` (just filled) it places nothing and only cancels orders priced through
    its reservation price (a bid above ``r - tol0``, an ask below ``r + tol0``)."""
    spec, quotes, cur = inp.makers, st.quotes, st.cur[0]
    dt = t - quotes.last_quote[m]
    quotes.last_quote[m] = t
    quotes.inventory[m] *= math.exp(-dt / prm.hedge_tau_ms)
    delta0, spacing, size, tau, gamma, qmax = (spec.delta0[m], spec.spacing[m], spec.size[m], spec.tau[m],
                                               spec.gamma[m], spec.qmax[m])
    tol0 = spec.tol0[m]
    n_levels = spec.levels[m]
    shift = quotes.inventory[m] * gamma * sigma * sigma * prm.horizon_s
    cap = 0.5 * (delta0 + n_levels * spacing)
    shift = min(max(shift, -cap), cap)
    reservation = fair - shift
    base_half = max(delta0, 0.75 * sigma * math.sqrt(tau))
    for side in range(2):
        presence = quotes.presence[m, side]
        n_active = 0
        if presence > 0:
            n_active = min(n_levels, max(1, int(math.ceil(presence * n_levels - 1e-9))))
        if side == 0 and quotes.inventory[m] >= qmax:
            n_active = 0
        if side == 1 and quotes.inventory[m] <= -qmax:
            n_active = 0
        half = base_half * quotes.spread[m, side]
        size_mult = math.sqrt(presence) if presence > 0 else 0.0
        for j in range(n_levels):
            s = quotes.orders[m, side, j]
            if j >= n_active:
                if s >= 0:
                    _cancel(prm, st, logs, t, s)
                    quotes.orders[m, side, j] = -1
                continue
            dist = half + j * spacing
            level = _quote_level(prm, st.book, side, reservation, dist)
            if level < 1 or level >= prm.width - 1:
                cur.status = OVERFLOW_GRID
                return
            target = size * (1.0 + prm.size_slope * j) * size_mult
            tol = tol0 + prm.tol_frac * dist
            if cooling:
                if s < 0:
                    continue
                px = prm.price_lo + st.pool.level[s]
                if (side == 0 and px > reservation - tol0) or (side == 1 and px < reservation + tol0):
                    _cancel(prm, st, logs, t, s)
                    quotes.orders[m, side, j] = -1
                continue
            if s >= 0:
                if abs(st.pool.level[s] - level) <= tol and 0.4 * target <= st.pool.lots[s] <= 2.0 * target:
                    continue
                _cancel(prm, st, logs, t, s)
                quotes.orders[m, side, j] = -1
            lots = max(1, int(target * (0.6 + 0.8 * _draw(inp, st))))
            quotes.orders[m, side, j] = _place(prm, st, logs, t, side, level, lots, m, j)


@_step
def _apply_controls(inp, st, t):
    """Control events due at ``t``: set presence/spread and make the makers re-quote now."""
    ctl, quotes, cur = inp.controls, st.quotes, st.cur[0]
    n_makers = quotes.inventory.shape[0]
    while cur.next_control < ctl.t.shape[0] and ctl.t[cur.next_control] <= t:
        ci = cur.next_control
        for m in range(n_makers):
            if ctl.maker[ci] < 0 or ctl.maker[ci] == m:
                for side in range(2):
                    if ctl.side[ci] == 2 or ctl.side[ci] == side:
                        quotes.presence[m, side] = ctl.presence[ci]
                        quotes.spread[m, side] = ctl.spread[ci]
                quotes.next_quote[m] = t
                quotes.cool_until[m] = t
        cur.next_control = ci + 1


@_step
def _apply_flicker(inp, prm, st, logs, t, fair):
    """Flicker actions due at ``t``: place ``offset`` ticks from fair value (off the other
    side's best) or cancel; the placed price is recorded per action."""
    fl, cur, book = inp.flicker, st.cur[0], st.book
    n_makers = st.quotes.inventory.shape[0]
    while cur.next_flicker < fl.t.shape[0] and fl.t[cur.next_flicker] <= t:
        fi = cur.next_flicker
        k = fl.order_id[fi]
        if fl.place[fi] == 1:
            side = fl.side[fi]
            if side == 0:
                level = _passive(book, side, int(math.floor(fair)) - fl.offset[fi] - prm.price_lo)
            else:
                level = _passive(book, side, int(math.ceil(fair)) + fl.offset[fi] - prm.price_lo)
            if level < 1 or level >= prm.width - 1:
                cur.status = OVERFLOW_GRID
                return
            st.flicker_slot[k] = _place(prm, st, logs, t, side, level, fl.lots[fi], n_makers, np.int64(0))
            st.flicker_price[fi] = prm.price_lo + level
        elif st.flicker_slot[k] >= 0:
            st.flicker_price[fi] = prm.price_lo + st.pool.level[st.flicker_slot[k]]
            _cancel(prm, st, logs, t, st.flicker_slot[k])
            st.flicker_slot[k] = -1
        cur.next_flicker = fi + 1


@_step
def _maker_quote(inp, prm, st, logs, m, t, fair, sigma):
    """Maker ``m`` re-quotes at ``t`` (see :func:`_requote`); its next timer is exponential around
    ``requote_ms`` (a cooling maker's: its cool-down end)."""
    quotes = st.quotes
    cooling = t < quotes.cool_until[m]
    _requote(inp, prm, st, logs, m, t, fair, sigma, cooling)
    quotes.fair_at_quote[m] = fair
    if cooling:
        quotes.next_quote[m] = quotes.cool_until[m]
    else:
        u = _draw(inp, st)
        quotes.next_quote[m] = t + max(5, int(-math.log(1.0 - u) * inp.makers.requote_ms[m]))


@_step
def _send_takers(inp, prm, st, logs, t):
    """Market orders due at ``t``; each moves fair value by its permanent impact."""
    tk, cur = inp.takers, st.cur[0]
    while cur.next_taker < tk.t.shape[0] and tk.t[cur.next_taker] <= t:
        ti = cur.next_taker
        filled, pre, last = _market(inp, prm, st, logs, t, tk.side[ti], tk.lots[ti], ti)
        if filled > 0:
            walk = abs(last - pre)
            sign = -1.0 if tk.side[ti] == 0 else 1.0
            cur.impact += sign * (prm.impact_beta * walk + prm.impact_lambda * filled)
        cur.next_taker = ti + 1


@_step
def _batch_end(inp, prm, st, logs, t):
    """At the end of a batch: the makers' realised-variance update and, in the capture, the
    batch's fair value, best prices, vol and (``record_books``) every level."""
    cur, book, out = st.cur[0], st.book, st.batches
    fair_now = inp.fair_exo[t // EXO_MS] + cur.impact
    dv = fair_now - cur.fair_prev_batch
    cur.variance = (1.0 - prm.vol_alpha) * cur.variance + prm.vol_alpha * dv * dv * (1000.0 / prm.batch_ms)
    cur.fair_prev_batch = fair_now
    if t < prm.warm_ms:
        return
    b = (t + 1 - prm.warm_ms) // prm.batch_ms - 1
    out.fair[b] = fair_now
    out.best_bid[b] = prm.price_lo + book.best[0] if book.best[0] >= 0 else -1
    out.best_ask[b] = prm.price_lo + book.best[1] if book.best[1] >= 0 else -1
    out.sigma[b] = math.sqrt(cur.variance)
    if not prm.record_books:
        return
    for side in range(2):
        k = book.best[side]
        left = book.occupied[side]
        while left > 0:
            if book.lots[side, k] > 0:
                n = cur.n_book_rows
                logs.books[n, BOOK_BATCH] = b
                logs.books[n, BOOK_SIDE] = side
                logs.books[n, BOOK_PRICE] = prm.price_lo + k
                logs.books[n, BOOK_LOTS] = book.lots[side, k]
                cur.n_book_rows = n + 1
                left -= 1
            k += -1 if side == 0 else 1


@_ms_step
def _run_ms(inp, prm, st, logs, t):
    """One engine ms: control events, flicker actions, maker re-quotes (timer, fair-value move
    by ``react``, end of a cool-down), taker orders; at a batch end the variance update and the
    capture's records. The checks are inlined into :func:`_run`, the work is in steps."""
    cur, quotes = st.cur[0], st.quotes
    fair = inp.fair_exo[t // EXO_MS] + cur.impact
    sigma = min(max(math.sqrt(cur.variance), 0.5 * prm.sigma0), 20.0 * prm.sigma0)
    if cur.next_control < inp.controls.t.shape[0] and inp.controls.t[cur.next_control] <= t:
        _apply_controls(inp, st, t)
    if cur.next_flicker < inp.flicker.t.shape[0] and inp.flicker.t[cur.next_flicker] <= t:
        _apply_flicker(inp, prm, st, logs, t, fair)
    for m in range(quotes.inventory.shape[0]):
        if t >= quotes.next_quote[m] or abs(fair - quotes.fair_at_quote[m]) > inp.makers.react[m]:
            _maker_quote(inp, prm, st, logs, m, t, fair, sigma)
    if cur.next_taker < inp.takers.t.shape[0] and inp.takers.t[cur.next_taker] <= t:
        _send_takers(inp, prm, st, logs, t)
    if cur.status != 0:
        return
    if (t + 1) % prm.batch_ms == 0:
        _batch_end(inp, prm, st, logs, t)


@_step
def _run(inp, prm, st, logs, t0):
    """Engine ms from ``t0`` on while the logs have room for one more ms (the worst case: every
    order slot cancelled and re-placed); returns the first ms not run (``prm.n_ms`` at the end,
    or where an overflow stopped the run)."""
    cur = st.cur[0]
    for t in range(t0, prm.n_ms):
        if not _room(prm, cur, logs):
            return t
        _run_ms(inp, prm, st, logs, t)
        if cur.status != 0:
            return t
    return prm.n_ms


@_ms_step
def _room(prm, cur, logs):
    """Do the logs have room for one more ms?"""
    slots = prm.order_slots
    return (cur.n_ops + 8 * slots <= logs.ops.shape[0] and cur.n_fills + 2 * slots <= logs.fills.shape[0]
            and (not prm.record_books or cur.n_book_rows + slots <= logs.books.shape[0]))


@njit(cache=True)
def _grow(a, need):
    """int64 ``a`` with at least ``need`` rows (doubling), contents kept."""
    if need <= a.shape[0]:
        return a
    n = a.shape[0] * 2
    while n < need:
        n *= 2
    b = np.zeros((n, a.shape[1]), np.int64)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            b[i, j] = a[i, j]
    return b


@njit(cache=True)
def _engine(inp, prm):
    """The event loop at 1 ms resolution over :class:`EngineInput` with :class:`EngineParams`.
    Returns (status, ops, fills, books, :class:`BatchOut`, flicker price per action); see
    :func:`run_engine`. This function allocates (the state, the logs as they grow); the ms run
    in :func:`_run`, which does not."""
    st = _new_state(inp, prm)
    cur = st.cur[0]
    slots = prm.order_slots
    logs = Logs(np.zeros((1 << 16, 6), np.int64), np.zeros((1 << 12, 6), np.int64), np.zeros((1 << 14, 4), np.int64))
    t = 0
    while t < prm.n_ms and cur.status == 0:
        logs = Logs(_grow(logs.ops, cur.n_ops + 8 * slots), _grow(logs.fills, cur.n_fills + 2 * slots),
                    _grow(logs.books, cur.n_book_rows + slots) if prm.record_books else logs.books)
        t = _run(inp, prm, st, logs, t)
    return (cur.status, logs.ops[: cur.n_ops].copy(), logs.fills[: cur.n_fills].copy(),
            logs.books[: cur.n_book_rows].copy(), st.batches, st.flicker_price)


@dataclass
class EngineOutput:
    """In-memory result of :func:`run_engine`.

    ``ops``: int64[n, 6] book operations in order (engine ms, side 0 bid/1 ask, abs price
    ticks, signed lots, kind 0 add/1 trade/2 cancel, agent: maker index or n_makers =
    flicker); the update id of row i is ``UID0 + i``. ``fills``: int64[n, 6] maker fills
    (ms, price ticks, lots, taker order index, aggressor 0 sell/1 buy, agent); trade id of
    row i is ``TID0 + i``. ``books``: int64[n, 4] (batch, side, price ticks, lots) of every
    level at every capture batch end (only with ``record_books``). Per capture batch:
    ``fair`` (ticks), ``best_bid``/``best_ask`` (ticks, -1 none), ``sigma`` (ticks/sqrt s)."""

    config: SimConfig
    schedules: Schedules
    ops: np.ndarray
    fills: np.ndarray
    books: np.ndarray | None
    fair: np.ndarray
    best_bid: np.ndarray
    best_ask: np.ndarray
    sigma: np.ndarray
    fl_price: np.ndarray
    warm_ms: int
    start_ms: int              # capture start, UTC ms
    n_batches: int
    seconds: float

    def abs_ms(self, t: np.ndarray) -> np.ndarray:
        """Engine ms -> UTC ms."""
        return t - self.warm_ms + self.start_ms


def _makers(cfg: SimConfig) -> Makers:
    """The makers' specs as arrays for the kernel."""
    col = lambda name, dt=np.float64: np.array([getattr(m, name) for m in cfg.makers], dt)
    return Makers(col("delta0_ticks"), col("spacing_ticks"), col("size_lots"), col("tau_s"), col("gamma"),
                  col("qmax_lots"), col("react_ticks"), col("tol0_ticks"), col("requote_ms"),
                  col("refill_ms", np.int64), col("levels", np.int64))


def engine_inputs(cfg: SimConfig, sch: Schedules, record_books: bool = False) -> tuple[EngineInput, EngineParams]:
    """The kernel's :class:`EngineInput` and :class:`EngineParams` for a scenario and its schedules."""
    warm, n_ms = _n_ms(cfg)
    tick = float(Decimal(cfg.tick))
    p0 = int(round(cfg.price0 / tick))
    span = int(p0 * cfg.range_frac)
    makers = _makers(cfg)
    n_fl_ids = int(sch.fl_id.max() + 1) if sch.fl_id.size else 0
    inp = EngineInput(sch.exo, sch.pool, makers, Takers(sch.tk_t, sch.tk_side, sch.tk_qty),
                      Controls(sch.c_t, sch.c_maker, sch.c_side, sch.c_pres, sch.c_spread),
                      FlickerPlan(sch.fl_t, sch.fl_act, sch.fl_side, sch.fl_off, sch.fl_qty, sch.fl_id))
    prm = EngineParams(
        n_ms=int(n_ms), warm_ms=int(warm), batch_ms=int(BATCH_MS), price_lo=int(p0 - span), width=int(2 * span),
        n_flicker_ids=n_fl_ids, order_slots=int(2 * len(cfg.makers) * int(makers.levels.max()) + n_fl_ids + 16),
        impact_beta=float(cfg.impact_beta), impact_lambda=float(cfg.impact_lambda), sigma0=float(cfg.sigma_ticks),
        vol_alpha=float(1.0 - 0.5 ** (BATCH_MS / 1000.0 / cfg.vol_halflife_s)), tol_frac=float(cfg.tol_frac),
        size_slope=float(cfg.size_slope), horizon_s=float(cfg.horizon_s),
        hedge_tau_ms=float(cfg.hedge_half_life_s * 1000.0 / math.log(2.0)), record_books=bool(record_books))
    return inp, prm


def run_engine(cfg: SimConfig, record_books: bool = False) -> EngineOutput:
    """Simulate the scenario in memory (no files). ``record_books`` keeps every batch-end book."""
    validate(cfg)
    if cfg.start_ns % NS_PER_MS:
        raise ValueError("start must be a whole millisecond")
    t_start = time.perf_counter()
    sch = compile_scenario(cfg)
    inp, prm = engine_inputs(cfg, sch, record_books)
    status, ops, fills, books, batches, fl_price = _engine(inp, prm)
    if status:
        raise RuntimeError(f"simulation engine overflow: {OVERFLOW_REASON.get(int(status), status)}")
    return EngineOutput(cfg, sch, ops, fills, books if record_books else None, batches.fair, batches.best_bid,
                        batches.best_ask, batches.sigma, fl_price, prm.warm_ms, cfg.resolved_start_ns() // NS_PER_MS,
                        (prm.n_ms - prm.warm_ms) // BATCH_MS, time.perf_counter() - t_start)


def engine_books(eng: EngineOutput) -> list[tuple[int, dict[int, int], dict[int, int]]]:
    """The engine's own book at every capture batch end: ``(batch end UTC ns, bids, asks)``
    with ``{price ticks: lots}`` per side. Needs ``run_engine(..., record_books=True)``."""
    if eng.books is None:
        raise ValueError("run the engine with record_books=True")
    bk = eng.books
    cuts = np.searchsorted(bk[:, 0], np.arange(eng.n_batches + 1))
    out = []
    for b in range(eng.n_batches):
        rows = bk[cuts[b]:cuts[b + 1]]
        sides = [rows[rows[:, 1] == s] for s in (BID, ASK)]
        ts = (eng.start_ms + (b + 1) * BATCH_MS) * NS_PER_MS
        out.append((ts, *(dict(zip(r[:, 2].tolist(), r[:, 3].tolist())) for r in sides)))
    return out
