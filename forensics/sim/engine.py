"""The compiled engine: a price-time priority limit-order book with market makers and takers,
stepped every 1 ms (see :func:`run_engine`)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
from numba import njit  # noqa: E402

from forensics.sim.config import BATCH_MS, BID, ASK, EXO_MS, NS_PER_MS, SimConfig, validate  # noqa: E402
from forensics.sim.scenario import Schedules, _n_ms, compile_scenario  # noqa: E402

# --------------------------------------------------------------------------- engine (numba)
@njit(cache=True)
def _log(op, st, t, side, price, delta, kind, agent):
    """Append one book operation (ms, side, abs price ticks, signed lots, kind, agent)."""
    n = st[0]
    if n >= op.shape[0]:
        st[3] = 1
        return
    op[n, 0] = t
    op[n, 1] = side
    op[n, 2] = price
    op[n, 3] = delta
    op[n, 4] = kind
    op[n, 5] = agent
    st[0] = n + 1


@njit(cache=True)
def _level_emptied(lv, st, side, idx):
    """Bookkeeping after level ``idx`` lost quantity: occupied count and best price."""
    if lv[side, idx] != 0:
        return
    st[7 + side] -= 1
    if st[5 + side] != idx:
        return
    if st[7 + side] == 0:
        st[5 + side] = -1
        return
    k = idx
    if side == 0:
        k -= 1
        while lv[0, k] == 0:
            k -= 1
    else:
        k += 1
        while lv[1, k] == 0:
            k += 1
    st[5 + side] = k


@njit(cache=True)
def _place(lv, hd, tl, oi, ol, free, st, op, p_lo, t, side, idx, qty, agent, j):
    """Rest a new order at the tail of its level (time priority); returns its slot."""
    if st[2] == 0:
        st[3] = 4
        return -1
    st[2] -= 1
    s = free[st[2]]
    oi[s, 0] = side
    oi[s, 1] = idx
    oi[s, 2] = qty
    oi[s, 3] = agent
    oi[s, 4] = j
    ol[s, 0] = -1
    ol[s, 1] = tl[side, idx]
    if tl[side, idx] >= 0:
        ol[tl[side, idx], 0] = s
    else:
        hd[side, idx] = s
    tl[side, idx] = s
    if lv[side, idx] == 0:
        st[7 + side] += 1
    lv[side, idx] += qty
    if side == 0:
        if st[5] < 0 or idx > st[5]:
            st[5] = idx
    else:
        if st[6] < 0 or idx < st[6]:
            st[6] = idx
    _log(op, st, t, side, p_lo + idx, qty, np.int64(0), agent)
    return s


@njit(cache=True)
def _unlink(hd, tl, ol, free, st, side, idx, s):
    """Remove slot ``s`` from its level's FIFO and return it to the free stack."""
    nx = ol[s, 0]
    pv = ol[s, 1]
    if pv >= 0:
        ol[pv, 0] = nx
    else:
        hd[side, idx] = nx
    if nx >= 0:
        ol[nx, 1] = pv
    else:
        tl[side, idx] = pv
    free[st[2]] = s
    st[2] += 1


@njit(cache=True)
def _cancel(lv, hd, tl, oi, ol, free, st, op, p_lo, t, s):
    """Cancel resting order ``s`` (its whole remaining quantity)."""
    side = oi[s, 0]
    idx = oi[s, 1]
    qty = oi[s, 2]
    _unlink(hd, tl, ol, free, st, side, idx, s)
    lv[side, idx] -= qty
    _level_emptied(lv, st, side, idx)
    _log(op, st, t, side, p_lo + idx, -qty, np.int64(2), oi[s, 3])


@njit(cache=True)
def _market(lv, hd, tl, oi, ol, free, st, op, fills, p_lo, t, aggr, qty, taker, morder, fl_slot,
            inv, next_req, cool, refill, n_makers):
    """Match a market order (aggr 0 sells into bids, 1 buys asks), price-time priority.

    Returns (filled lots, pre-trade best idx, last fill idx); unfilled rest is dropped (IOC)."""
    side = 0 if aggr == 0 else 1
    rem = qty
    pre = st[5 + side]
    last = -1
    filled = 0
    while rem > 0 and st[5 + side] >= 0:
        b = st[5 + side]
        s = hd[side, b]
        while rem > 0 and s >= 0:
            x = min(rem, oi[s, 2])
            agent = oi[s, 3]
            nf = st[1]
            if nf >= fills.shape[0]:
                st[3] = 2
                return filled, pre, last
            fills[nf, 0] = t
            fills[nf, 1] = p_lo + b
            fills[nf, 2] = x
            fills[nf, 3] = taker
            fills[nf, 4] = aggr
            fills[nf, 5] = agent
            st[1] = nf + 1
            _log(op, st, t, side, p_lo + b, -x, np.int64(1), agent)
            oi[s, 2] -= x
            lv[side, b] -= x
            rem -= x
            filled += x
            last = b
            if agent < n_makers:
                inv[agent] += x if side == 0 else -x
                cool[agent] = t + refill[agent]  # cool-down: no re-quote until then, then one
                next_req[agent] = cool[agent]
            nx = ol[s, 0]
            if oi[s, 2] == 0:
                _unlink(hd, tl, ol, free, st, side, b, s)
                if agent < n_makers:
                    morder[agent, side, oi[s, 4]] = -1
                else:
                    for k in range(fl_slot.shape[0]):
                        if fl_slot[k] == s:
                            fl_slot[k] = -1
            s = nx
        _level_emptied(lv, st, side, b)
    return filled, pre, last


@njit(cache=True)
def _draw(pool, st):
    """Next uniform from the pre-drawn pool (cyclic)."""
    u = pool[st[4] % pool.shape[0]]
    st[4] += 1
    return u


@njit(cache=True)
def _requote(m, t, f, sig, lv, hd, tl, oi, ol, free, st, op, p_lo, width, morder, inv, pres, sprd,
             last_req, mk, levels, pool, tol_frac, size_slope, horizon, hedge_tau_ms, cooling):
    """Maker ``m`` re-prices its ladder around its AS reservation price (cancel + new where off).

    While ``cooling`` (just filled) it places nothing and only cancels orders priced through
    its reservation price (a bid above ``r - tol0``, an ask below ``r + tol0``)."""
    dt = t - last_req[m]
    last_req[m] = t
    inv[m] *= math.exp(-dt / hedge_tau_ms)
    delta0, spacing, size, tau, gamma, qmax = mk[m, 0], mk[m, 1], mk[m, 2], mk[m, 3], mk[m, 4], mk[m, 5]
    tol0 = mk[m, 7]
    L = levels[m]
    shift = inv[m] * gamma * sig * sig * horizon
    cap = 0.5 * (delta0 + L * spacing)
    shift = min(max(shift, -cap), cap)
    r = f - shift
    base_half = max(delta0, 0.75 * sig * math.sqrt(tau))
    for side in range(2):
        p = pres[m, side]
        nact = 0
        if p > 0:
            nact = min(L, max(1, int(math.ceil(p * L - 1e-9))))
        if side == 0 and inv[m] >= qmax:
            nact = 0
        if side == 1 and inv[m] <= -qmax:
            nact = 0
        half = base_half * sprd[m, side]
        szm = math.sqrt(p) if p > 0 else 0.0
        for j in range(L):
            s = morder[m, side, j]
            if j >= nact:
                if s >= 0:
                    _cancel(lv, hd, tl, oi, ol, free, st, op, p_lo, t, s)
                    morder[m, side, j] = -1
                continue
            dist = half + j * spacing
            if side == 0:
                idx = int(math.floor(r - dist)) - p_lo
                if st[6] >= 0 and idx >= st[6]:
                    idx = st[6] - 1
            else:
                idx = int(math.ceil(r + dist)) - p_lo
                if st[5] >= 0 and idx <= st[5]:
                    idx = st[5] + 1
            if idx < 1 or idx >= width - 1:
                st[3] = 5
                return
            target = size * (1.0 + size_slope * j) * szm
            tol = tol0 + tol_frac * dist
            if cooling:
                if s < 0:
                    continue
                px = p_lo + oi[s, 1]
                if (side == 0 and px > r - tol0) or (side == 1 and px < r + tol0):
                    _cancel(lv, hd, tl, oi, ol, free, st, op, p_lo, t, s)
                    morder[m, side, j] = -1
                continue
            if s >= 0:
                if abs(oi[s, 1] - idx) <= tol and 0.4 * target <= oi[s, 2] <= 2.0 * target:
                    continue
                _cancel(lv, hd, tl, oi, ol, free, st, op, p_lo, t, s)
                morder[m, side, j] = -1
            qty = max(1, int(target * (0.6 + 0.8 * _draw(pool, st))))
            morder[m, side, j] = _place(lv, hd, tl, oi, ol, free, st, op, p_lo, t, side, idx, qty, m, j)


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
def _engine(n_ms, warm, batch, exo, p_lo, width, mk, levels, tk_t, tk_side, tk_qty,
            c_t, c_maker, c_side, c_pres, c_spread, fl_t, fl_act, fl_side, fl_off, fl_qty, fl_id, n_fl_ids,
            beta, lam, pool, sigma0, vol_alpha, tol_frac, size_slope, horizon, hedge_tau_ms, record_books):
    """The event loop at 1 ms resolution. See :func:`run_engine` for the returned arrays.

    Per ms: control events, flicker actions, maker re-quotes (timer, fair-value move, refill),
    taker orders; at every batch end: realised-vol update and (after warm-up) recording."""
    n_makers = mk.shape[0]
    lmax = levels.max()
    cap_orders = 2 * n_makers * lmax + n_fl_ids + 16
    lv = np.zeros((2, width), np.int64)
    hd = np.full((2, width), -1, np.int32)
    tl = np.full((2, width), -1, np.int32)
    oi = np.zeros((cap_orders, 5), np.int64)
    ol = np.full((cap_orders, 2), -1, np.int32)
    free = np.arange(cap_orders - 1, -1, -1).astype(np.int32)
    st = np.zeros(16, np.int64)
    st[2] = cap_orders
    st[5] = -1
    st[6] = -1
    op = np.zeros((1 << 16, 6), np.int64)
    fills = np.zeros((1 << 12, 6), np.int64)
    bk = np.zeros((1 << 14, 4), np.int64)
    n_b = (n_ms - warm) // batch
    fb = np.zeros(n_b)
    bb = np.full(n_b, -1, np.int64)
    ba = np.full(n_b, -1, np.int64)
    sigb = np.zeros(n_b)
    morder = np.full((n_makers, 2, lmax), -1, np.int32)
    fl_slot = np.full(max(n_fl_ids, 1), -1, np.int32)
    fl_price = np.full(fl_t.shape[0], -1, np.int64)
    inv = np.zeros(n_makers)
    pres = np.ones((n_makers, 2))
    sprd = np.ones((n_makers, 2))
    next_req = np.zeros(n_makers, np.int64)
    cool = np.zeros(n_makers, np.int64)
    last_req = np.zeros(n_makers, np.int64)
    f_lastq = np.zeros(n_makers)
    refill = mk[:, 9].astype(np.int64)
    var = sigma0 * sigma0
    imp = 0.0
    f_prev_b = exo[0]
    ci = np.int64(0)
    fi = np.int64(0)
    ti = np.int64(0)
    zero = np.int64(0)
    for t in range(n_ms):
        op = _grow(op, st[0] + 8 * cap_orders)
        fills = _grow(fills, st[1] + 2 * cap_orders)
        f = exo[t // EXO_MS] + imp
        sig = min(max(math.sqrt(var), 0.5 * sigma0), 20.0 * sigma0)
        while ci < c_t.shape[0] and c_t[ci] <= t:
            for m in range(n_makers):
                if c_maker[ci] < 0 or c_maker[ci] == m:
                    for side in range(2):
                        if c_side[ci] == 2 or c_side[ci] == side:
                            pres[m, side] = c_pres[ci]
                            sprd[m, side] = c_spread[ci]
                    next_req[m] = t
                    cool[m] = t
            ci += 1
        while fi < fl_t.shape[0] and fl_t[fi] <= t:
            k = fl_id[fi]
            if fl_act[fi] == 1:
                side = fl_side[fi]
                if side == 0:
                    idx = int(math.floor(f)) - fl_off[fi] - p_lo
                    if st[6] >= 0 and idx >= st[6]:
                        idx = st[6] - 1
                else:
                    idx = int(math.ceil(f)) + fl_off[fi] - p_lo
                    if st[5] >= 0 and idx <= st[5]:
                        idx = st[5] + 1
                if idx < 1 or idx >= width - 1:
                    st[3] = 5
                    break
                fl_slot[k] = _place(lv, hd, tl, oi, ol, free, st, op, p_lo, t, side, idx, fl_qty[fi], n_makers, zero)
                fl_price[fi] = p_lo + idx
            elif fl_slot[k] >= 0:
                fl_price[fi] = p_lo + oi[fl_slot[k], 1]
                _cancel(lv, hd, tl, oi, ol, free, st, op, p_lo, t, fl_slot[k])
                fl_slot[k] = -1
            fi += 1
        for m in range(n_makers):
            if t >= next_req[m] or abs(f - f_lastq[m]) > mk[m, 6]:
                cooling = t < cool[m]
                _requote(m, t, f, sig, lv, hd, tl, oi, ol, free, st, op, p_lo, width, morder, inv, pres,
                         sprd, last_req, mk, levels, pool, tol_frac, size_slope, horizon, hedge_tau_ms, cooling)
                f_lastq[m] = f
                if cooling:
                    next_req[m] = cool[m]
                else:
                    u = _draw(pool, st)
                    next_req[m] = t + max(5, int(-math.log(1.0 - u) * mk[m, 8]))
        while ti < tk_t.shape[0] and tk_t[ti] <= t:
            filled, pre, last = _market(lv, hd, tl, oi, ol, free, st, op, fills, p_lo, t, tk_side[ti],
                                        tk_qty[ti], ti, morder, fl_slot, inv, next_req, cool, refill, n_makers)
            if filled > 0:
                walk = abs(last - pre)
                sign = -1.0 if tk_side[ti] == 0 else 1.0
                imp += sign * (beta * walk + lam * filled)
            ti += 1
        if st[3] != 0:
            break
        if (t + 1) % batch == 0:
            fnow = exo[t // EXO_MS] + imp
            dv = fnow - f_prev_b
            var = (1.0 - vol_alpha) * var + vol_alpha * dv * dv * (1000.0 / batch)
            f_prev_b = fnow
            if t >= warm:
                b = (t + 1 - warm) // batch - 1
                fb[b] = fnow
                bb[b] = p_lo + st[5] if st[5] >= 0 else -1
                ba[b] = p_lo + st[6] if st[6] >= 0 else -1
                sigb[b] = math.sqrt(var)
                if record_books:
                    bk = _grow(bk, st[9] + cap_orders)
                    for side in range(2):
                        k = st[5 + side]
                        left = st[7 + side]
                        while left > 0:
                            if lv[side, k] > 0:
                                n = st[9]
                                bk[n, 0] = b
                                bk[n, 1] = side
                                bk[n, 2] = p_lo + k
                                bk[n, 3] = lv[side, k]
                                st[9] = n + 1
                                left -= 1
                            k += -1 if side == 0 else 1
    return (st[3], op[: st[0]].copy(), fills[: st[1]].copy(), bk[: st[9]].copy(), fb, bb, ba, sigb, fl_price)


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


def _maker_matrix(cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """Maker specs as float64[M, 10] + levels int64[M] for the kernel."""
    mk = np.array([[m.delta0_ticks, m.spacing_ticks, m.size_lots, m.tau_s, m.gamma, m.qmax_lots,
                    m.react_ticks, m.tol0_ticks, m.requote_ms, m.refill_ms] for m in cfg.makers], float)
    return mk, np.array([m.levels for m in cfg.makers], np.int64)


def run_engine(cfg: SimConfig, record_books: bool = False) -> EngineOutput:
    """Simulate the scenario in memory (no files). ``record_books`` keeps every batch-end book."""
    validate(cfg)
    if cfg.start_ns % NS_PER_MS:
        raise ValueError("start must be a whole millisecond")
    t_start = time.perf_counter()
    warm, n_ms = _n_ms(cfg)
    sch = compile_scenario(cfg)
    tick = float(Decimal(cfg.tick))
    p0 = int(round(cfg.price0 / tick))
    span = int(p0 * cfg.range_frac)
    mk, levels = _maker_matrix(cfg)
    vol_alpha = 1.0 - 0.5 ** (BATCH_MS / 1000.0 / cfg.vol_halflife_s)
    hedge_tau_ms = cfg.hedge_half_life_s * 1000.0 / math.log(2.0)
    out = _engine(n_ms, warm, BATCH_MS, sch.exo, p0 - span, 2 * span, mk, levels, sch.tk_t, sch.tk_side,
                  sch.tk_qty, sch.c_t, sch.c_maker, sch.c_side, sch.c_pres, sch.c_spread, sch.fl_t,
                  sch.fl_act, sch.fl_side, sch.fl_off, sch.fl_qty, sch.fl_id,
                  int(sch.fl_id.max() + 1) if sch.fl_id.size else 0, cfg.impact_beta, cfg.impact_lambda,
                  sch.pool, cfg.sigma_ticks, vol_alpha, cfg.tol_frac, cfg.size_slope, cfg.horizon_s,
                  hedge_tau_ms, record_books)
    status = out[0]
    if status:
        reason = {1: "op log", 2: "fill log", 4: "order slots", 5: "price grid (raise range_frac)"}
        raise RuntimeError(f"simulation engine overflow: {reason.get(int(status), status)}")
    return EngineOutput(cfg, sch, out[1], out[2], out[3] if record_books else None, out[4], out[5], out[6],
                        out[7], out[8], warm, cfg.resolved_start_ns() // NS_PER_MS, (n_ms - warm) // BATCH_MS,
                        time.perf_counter() - t_start)


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
