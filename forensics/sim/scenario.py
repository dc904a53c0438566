"""Scenario -> schedules: everything random drawn before the engine runs (fair value path,
noise and incident takers, maker control events, flicker orders), the drawn backgrounds and
incidents of the evaluation, and the bundled sample's scenario."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
from numba import njit  # noqa: E402

from forensics.sim.config import (  # noqa: E402
    ASK, BATCH_MS, BID, EXO_MS, EXPECTED_LABEL, INCIDENT_OPTIONS, CRISIS_VOL, PRECURSOR_PRESENCE, PRECURSOR_SPREAD,
    RANGE_REVERT_S, RANGE_VOL, TREND_DRIFT_SIGMAS, Incident, MakerSpec, SimConfig, build_config, default_makers)

# --------------------------------------------------------------------------- scenario -> schedules
@dataclass
class Schedules:
    """Everything random drawn before the engine runs (all times in engine ms)."""

    exo: np.ndarray            # float64[n_ms / EXO_MS] exogenous fair value, ticks, per 10 ms
    tk_t: np.ndarray           # int64 taker order times
    tk_side: np.ndarray        # int64 0 = sell (hits bids), 1 = buy (hits asks)
    tk_qty: np.ndarray         # int64 lots
    c_t: np.ndarray            # control events: time, maker (-1 all), side (0/1/2), presence, spread
    c_maker: np.ndarray
    c_side: np.ndarray
    c_pres: np.ndarray
    c_spread: np.ndarray
    fl_t: np.ndarray           # flicker actions: time, 1 place / 0 cancel, side, offset ticks, lots, id
    fl_act: np.ndarray
    fl_side: np.ndarray
    fl_off: np.ndarray
    fl_qty: np.ndarray
    fl_id: np.ndarray
    pool: np.ndarray           # uniforms consumed by the engine (cyclically)
    incidents: list            # label dicts (times in engine ms; converted on publication)


class _Plan:
    """Accumulates control events, extra takers, flicker actions and vol multipliers."""

    def __init__(self, n_ms: int):
        self.controls: list[tuple[int, int, int, float, float]] = []
        self.takers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.flicker: list[tuple[int, int, int, int, int, int]] = []
        self.volmult = np.ones(n_ms // EXO_MS)
        self.n_fl_ids = 0
        self.labels: list[dict] = []

    def raise_vol(self, t0: int, t1: int, mult: float) -> None:
        """Fair value volatility at least ``mult`` x on [t0, t1) engine ms."""
        seg = self.volmult[t0 // EXO_MS:t1 // EXO_MS]
        np.maximum(seg, mult, out=seg)


def _ladder_makers(cfg: SimConfig) -> list[MakerSpec]:
    """The near-touch ladder makers (deep resting-liquidity makers excluded)."""
    return [m for m in cfg.makers if not m.deep] or list(cfg.makers)


def _maker_ladder_depth(cfg: SimConfig) -> float:
    """Deepest level distance of any ladder maker at calm volatility, ticks."""
    return max(max(m.delta0_ticks, 0.75 * cfg.sigma_ticks * math.sqrt(m.tau_s))
               + (m.levels - 1) * m.spacing_ticks for m in _ladder_makers(cfg))


def _pull_and_return(plan: _Plan, rng: np.random.Generator, cfg: SimConfig, t0: int,
                     side: int, hold_ms: int, recovery_ms: int, pull_frac: float | None = None
                     ) -> tuple[int, int, int]:
    """Makers pull (presence 0.1, spread x6) within 300 ms, then return in steps.

    ``pull_frac`` (a partial pull): presence ``1 - pull_frac`` and spread ``1 + 5.6 pull_frac``
    (0.9 -> the legacy 0.1 / x6). Returns (last pull ms, recovery start ms, recovery end ms)."""
    n = len(cfg.makers)
    pulls = t0 + np.sort(rng.integers(0, 300, n))
    pres, wide = (0.1, 6.0) if pull_frac is None else (1.0 - pull_frac, 1.0 + 5.6 * pull_frac)
    for m, tp in enumerate(pulls):
        plan.controls.append((int(tp), m, side, pres, wide))
    rec0 = int(pulls[-1]) + hold_ms
    starts = rec0 + rng.integers(0, max(1, int(0.4 * recovery_ms)), n)
    steps = ((0.3, 4.0), (0.5, 2.5), (0.75, 1.6), (1.0, 1.0))
    step_ms = recovery_ms // 8
    end = rec0
    for m in range(n):
        for k, (pres, spread) in enumerate(steps):
            tk = int(starts[m]) + k * step_ms
            plan.controls.append((tk, m, side, pres, spread))
            end = max(end, tk)
    return int(pulls[-1]), rec0, end


def _flow(rng: np.random.Generator, t0: int, t1: int, rate_hz: float, median: float,
          sigma_log: float, side: int, decay_ms: float | None = None) -> tuple[np.ndarray, ...]:
    """Market orders on [t0, t1) ms: Poisson(rate), optionally thinned by exp(-(t-t0)/decay)."""
    n = rng.poisson(rate_hz * (t1 - t0) / 1000.0)
    t = np.sort(rng.integers(t0, t1, n))
    keep = rng.random(n) < (np.exp(-(t - t0) / decay_ms) if decay_ms else 1.0)
    t = t[keep]
    qty = np.maximum(1, np.round(median * np.exp(sigma_log * rng.standard_normal(t.size)))).astype(np.int64)
    return t.astype(np.int64), np.full(t.size, side, np.int64), qty


def _plan_withdrawal(plan: _Plan, rng, cfg: SimConfig, inc: Incident, t0: int) -> dict:
    """Two-sided pull in ~300 ms, a decaying sell (or buy) cascade into the thin book, slow return."""
    cascade_ms = int(inc.duration * 1000)
    rec_ms = 90_000 if inc.recovery_s is None else int(inc.recovery_s * 1000)
    last_pull, rec0, rec1 = _pull_and_return(plan, rng, cfg, t0, 2, hold_ms=cascade_ms // 2,
                                             recovery_ms=rec_ms, pull_frac=inc.pull_frac)
    c0 = t0 + 800
    aggr = 0 if inc.side == "sell" else 1
    plan.takers.append(_flow(rng, c0, c0 + cascade_ms, 16.0, 100.0, 1.0, aggr, decay_ms=cascade_ms / 3))
    plan.raise_vol(t0, c0 + cascade_ms, 3.0)
    plan.raise_vol(c0 + cascade_ms, rec1, 1.5)
    phases = {"pull": [t0, last_pull], "cascade": [c0, c0 + cascade_ms], "recovery": [rec0, rec1]}
    if cfg.precursor_widen_s > 0:  # the digest's layered controls: widen and cut size first, then pull
        w0 = max(0, t0 - int(cfg.precursor_widen_s * 1000))
        for m, tw in enumerate(w0 + np.sort(rng.integers(0, max(1, (t0 - w0) // 4), len(cfg.makers)))):
            plan.controls.append((int(tw), m, 2, PRECURSOR_PRESENCE, PRECURSOR_SPREAD))
        phases["widen"] = [w0, t0]
    return dict(sides="both", aggressor=inc.side, start=t0, end=last_pull, window_end=max(rec1, c0 + cascade_ms),
                phases=phases)


def _plan_consumption(plan: _Plan, rng, cfg: SimConfig, inc: Incident, t0: int) -> dict:
    """A large taker walks one side with ~0.6 BTC market orders every 0.6-1.5 s; makers stay.

    With ``inc.intensity`` (a drawn program): ``slices`` child orders (default 1 per second) at
    uniform random times over the duration, total volume = intensity x the side's background
    taker volume rate (``taker_rate_hz / 2`` x the lognormal mean size) x duration, child sizes
    total / slices x lognormal(0.3) noise."""
    dur = int(inc.duration * 1000)
    if inc.intensity is not None:
        n = max(1, int(inc.slices if inc.slices is not None else max(1, dur // 1000)))
        rate = cfg.taker_rate_hz / 2 * cfg.taker_median_lots * math.exp(cfg.taker_sigma_log ** 2 / 2)  # lots/s
        total = inc.intensity * rate * dur / 1000.0
        t = np.sort(t0 + rng.integers(0, max(1, dur), n)).astype(np.int64)
        t[0] = t0
        qty = np.maximum(1, np.round(total / n * np.exp(0.3 * rng.standard_normal(n)))).astype(np.int64)
    else:
        gaps = rng.integers(600, 1500, size=dur // 600 + 2)
        t = t0 + np.concatenate([[0], np.cumsum(gaps)])
        t = t[t < t0 + dur].astype(np.int64)
        qty = np.maximum(1, np.round(600 * np.exp(0.3 * rng.standard_normal(t.size)))).astype(np.int64)
    aggr = 0 if inc.side == "sell" else 1
    plan.takers.append((t, np.full(t.size, aggr, np.int64), qty))
    phase = "selling" if aggr == 0 else "buying"
    return dict(sides="bid" if aggr == 0 else "ask", aggressor=inc.side, start=int(t[0]), end=int(t[-1]),
                window_end=int(t[-1]) + 5000, phases={phase: [int(t[0]), int(t[-1])]},
                total_lots=int(qty.sum()), _children=(t, qty))


def _plan_one_sided(plan: _Plan, rng, cfg: SimConfig, inc: Incident, t0: int) -> dict:
    """Makers pull one side within ~300 ms, hold, then return gradually; the other side stays."""
    side = BID if inc.side == "bid" else ASK
    rec_ms = 45_000 if inc.recovery_s is None else int(inc.recovery_s * 1000)
    last_pull, rec0, rec1 = _pull_and_return(plan, rng, cfg, t0, side, hold_ms=int(inc.duration * 1000),
                                             recovery_ms=rec_ms, pull_frac=inc.pull_frac)
    return dict(sides=inc.side, aggressor=None, start=t0, end=last_pull, window_end=rec1,
                phases={"pull": [t0, last_pull], "hold": [last_pull, rec0], "recovery": [rec0, rec1]})


def _plan_flicker(plan: _Plan, rng, cfg: SimConfig, inc: Incident, t0: int) -> dict:
    """Large orders placed 2-3.5 ladder depths from fair value, held 0.3-1.5 s, cancelled, again."""
    t1 = t0 + int(inc.duration * 1000)
    depth = _maker_ladder_depth(cfg)
    big = 30 * max(m.size_lots for m in _ladder_makers(cfg))
    t = t0
    while True:
        hold = int(rng.integers(300, 1500))
        if t + hold > t1:
            break
        side = {"bid": BID, "ask": ASK}.get(inc.side, int(rng.integers(0, 2)))
        off = int(round(depth * rng.uniform(2.0, 3.5)))
        qty = int(round(big * rng.uniform(0.6, 1.6)))
        fid = plan.n_fl_ids
        plan.n_fl_ids += 1
        plan.flicker.append((t, 1, side, off, qty, fid))
        plan.flicker.append((t + hold, 0, side, off, qty, fid))
        t += hold + int(rng.integers(200, 800))
    return dict(sides=inc.side, aggressor=None, start=t0, end=t1, window_end=t1,
                phases={"flicker": [t0, t1]})


def _plan_calm(plan: _Plan, rng, cfg: SimConfig, inc: Incident, t0: int) -> dict:
    """Background only: a labelled negative window."""
    t1 = t0 + int(inc.duration * 1000)
    return dict(sides=None, aggressor=None, start=t0, end=t1, window_end=t1, phases={"calm": [t0, t1]})


_PLANNERS = {"withdrawal": _plan_withdrawal, "consumption": _plan_consumption,
             "one_sided_pull": _plan_one_sided, "flicker": _plan_flicker, "calm": _plan_calm}


def _n_ms(cfg: SimConfig) -> tuple[int, int]:
    """(warm-up ms, total engine ms), both multiples of the batch."""
    warm = int(round(cfg.warmup_s * 1000))
    cap = int(round(cfg.minutes * 60_000)) // BATCH_MS * BATCH_MS
    return warm, warm + cap


def _rngs(seed: int) -> list[np.random.Generator]:
    """Independent streams from ``SeedSequence(seed)``: exo path, takers, engine pool, publication.

    Each incident draws from its own ``default_rng([seed, 1000 + k])``, so adding an incident
    leaves the background draws unchanged."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]


def _apply_regime(exo: np.ndarray, incr: np.ndarray, cfg: SimConfig, warm: int) -> np.ndarray:
    """The fair value path with ``cfg.regime`` applied from ``regime_from_s`` (see REGIMES)."""
    i0 = min(exo.size, (warm + int(cfg.regime_from_s * 1000)) // EXO_MS)
    inc = incr.copy()
    rng = np.random.default_rng([cfg.seed, 999])
    if cfg.regime == "crisis":
        inc[i0:] *= CRISIS_VOL
    elif cfg.regime == "trend":
        per_step = TREND_DRIFT_SIGMAS * cfg.sigma_ticks * math.sqrt(60.0) / (60_000 / EXO_MS)
        inc[i0:] += per_step * (1.0 if rng.random() < 0.5 else -1.0)
    elif cfg.regime == "range":
        inc[i0:] *= RANGE_VOL
        out = exo[0] - incr[0] + np.cumsum(inc)
        if i0 < exo.size:
            out[i0:] = _ou(out[i0 - 1] if i0 else exo[0], inc[i0:], EXO_MS / (RANGE_REVERT_S * 1000.0))
        return out
    return exo[0] - incr[0] + np.cumsum(inc)


@njit(cache=True)
def _ou(anchor, inc, k):
    """x[i] = x[i-1] + inc[i] - k * (x[i-1] - anchor), from x[-1] = anchor."""
    out = np.empty(inc.shape[0])
    x = anchor
    for i in range(inc.shape[0]):
        x = x + inc[i] - k * (x - anchor)
        out[i] = x
    return out


def compile_scenario(cfg: SimConfig) -> Schedules:
    """Draw every random schedule of a scenario (numpy, from ``SeedSequence(cfg.seed)``)."""
    warm, n_ms = _n_ms(cfg)
    r_exo, r_tk, r_pool = _rngs(cfg.seed)[:3]
    plan = _Plan(n_ms)
    for k, inc in enumerate(cfg.incidents):
        t0 = warm + int(round(inc.at_s * 1000))
        fl_before = plan.n_fl_ids
        lab = _PLANNERS[inc.kind](plan, np.random.default_rng([cfg.seed, 1000 + k]), cfg, inc, t0)
        lab.update(id=k, type=inc.kind, spec=inc.spec or f"{inc.kind}@{inc.at_s:g}s",
                   expected_label=EXPECTED_LABEL[inc.kind], fl_ids=(fl_before, plan.n_fl_ids))
        shape = {o: getattr(inc, o) for o in INCIDENT_OPTIONS if getattr(inc, o) is not None}
        if shape:  # a drawn incident: its shape is part of the label
            lab["shape"] = dict(shape, duration_s=inc.duration)
        plan.labels.append(lab)
    step = cfg.sigma_ticks * math.sqrt(EXO_MS / 1000.0) * plan.volmult
    z = r_exo.standard_normal(step.size)
    exo = cfg.price0 / float(Decimal(cfg.tick)) + np.cumsum(step * z)
    if cfg.regime not in (None, "stable"):
        exo = _apply_regime(exo, step * z, cfg, warm)
    parts = [_flow(r_tk, 0, n_ms, cfg.taker_rate_hz / 2, cfg.taker_median_lots, cfg.taker_sigma_log, s)
             for s in (0, 1)]
    parts += [tuple(a[x[0] < n_ms] for a in x) for x in plan.takers]
    tk_t = np.concatenate([p[0] for p in parts])
    order = np.argsort(tk_t, kind="stable")
    ctl = sorted(c for c in plan.controls if c[0] < n_ms)
    fl = sorted((f for f in plan.flicker if f[0] < n_ms), key=lambda f: (f[0], -f[1], f[5]))
    arr = lambda rows, i, dt: np.array([r[i] for r in rows], dtype=dt)
    return Schedules(
        exo=exo, tk_t=tk_t[order].astype(np.int64),
        tk_side=np.concatenate([p[1] for p in parts])[order].astype(np.int64),
        tk_qty=np.concatenate([p[2] for p in parts])[order].astype(np.int64),
        c_t=arr(ctl, 0, np.int64), c_maker=arr(ctl, 1, np.int64), c_side=arr(ctl, 2, np.int64),
        c_pres=arr(ctl, 3, np.float64), c_spread=arr(ctl, 4, np.float64),
        fl_t=arr(fl, 0, np.int64), fl_act=arr(fl, 1, np.int64), fl_side=arr(fl, 2, np.int64),
        fl_off=arr(fl, 3, np.int64), fl_qty=arr(fl, 4, np.int64), fl_id=arr(fl, 5, np.int64),
        pool=r_pool.random(1 << 20), incidents=plan.labels,
    )


# --------------------------------------------------------------------------- drawn scenarios
#: instruments a drawn background picks from: (name, tick, price0, price_decimals, lot, qty_decimals)
INSTRUMENTS = (("btc", "0.1", 120000.0, 2, "0.001", 3), ("eth", "0.01", 3000.0, 2, "0.001", 3),
               ("alt", "0.0001", 0.6, 4, "1", 0))
#: volatility regimes: fair-value volatility relative to the price, per sqrt(s)
VOL_REGIMES = {"calm": 0.4e-5, "normal": 1.0e-5, "volatile": 2.5e-5}


def deep_makers(n: int, price0: float, tick: float, rng: np.random.Generator) -> tuple[MakerSpec, ...]:
    """``n`` slow makers resting liquidity on sparse grids from ~0.2-0.5% out to ~5.5-6% of mid
    (so the 1-5% bands of Binance bookDepth hold something that can fall)."""
    out = []
    ticks_pct = price0 / tick / 100.0          # ticks per 1% of mid
    for _ in range(n):
        d0 = float(rng.uniform(0.15, 0.5)) * ticks_pct
        sp = float(rng.uniform(0.2, 0.5)) * ticks_pct
        levels = int(math.ceil((float(rng.uniform(5.5, 6.0)) * ticks_pct - d0) / sp)) + 1
        out.append(MakerSpec(delta0_ticks=d0, spacing_ticks=sp, levels=levels,
                             size_lots=float(rng.uniform(150, 600)), tau_s=0.5,
                             requote_ms=float(rng.uniform(3000, 8000)), gamma=1e-8, qmax_lots=1e9,
                             react_ticks=max(2.0, 0.5 * sp), tol0_ticks=max(1.0, 0.25 * sp),
                             refill_ms=int(rng.integers(2000, 6000)), deep=True))
    return tuple(out)


def draw_background(seed: int) -> tuple[dict, dict]:
    """A background market drawn from ``seed``: (regime description, :class:`SimConfig` overrides).

    Drawn per run: the instrument (tick size and price level, :data:`INSTRUMENTS`), the
    volatility regime (:data:`VOL_REGIMES`), the noise-taker rate (2-10 Hz), median size
    (5-40 lots) and size dispersion (log sigma 0.8-1.5), the number of near-touch ladder makers
    (3-8, a random subset of :func:`default_makers`' kinds, sizes scaled 0.5-2x) and of deep makers
    (2-3, :func:`deep_makers`)."""
    rng = np.random.default_rng([seed, 77])
    name, tick, price0, pdec, lot, qdec = INSTRUMENTS[int(rng.integers(0, len(INSTRUMENTS)))]
    vol = list(VOL_REGIMES)[int(rng.integers(0, len(VOL_REGIMES)))]
    sigma = VOL_REGIMES[vol] * price0 / float(tick)
    kinds = default_makers(8)
    n_ladder = int(rng.integers(3, 9))
    pick = sorted(rng.choice(len(kinds), n_ladder, replace=False).tolist())
    rate, med, slog = float(rng.uniform(2.0, 10.0)), float(rng.uniform(5.0, 40.0)), float(rng.uniform(0.8, 1.5))
    # book size follows the flow it serves (default: 5 Hz x 15 lots): 0.5-2x that ratio
    flow_x = rate * med * math.exp(slog ** 2 / 2) / (5.0 * 15.0 * math.exp(1.2 ** 2 / 2))
    scale = float(rng.uniform(0.5, 2.0)) * flow_x * 6.0 / n_ladder
    ladder = tuple(dataclasses.replace(kinds[i], size_lots=kinds[i].size_lots * scale) for i in pick)
    n_deep = int(rng.integers(2, 4))
    deep = tuple(dataclasses.replace(m, size_lots=m.size_lots * max(flow_x, 0.2))
                 for m in deep_makers(n_deep, price0, float(tick), rng))
    over = dict(tick=tick, lot=lot, price_decimals=pdec, qty_decimals=qdec, price0=price0,
                sigma_ticks=float(sigma), taker_rate_hz=rate, taker_median_lots=med, taker_sigma_log=slog,
                makers=ladder + deep, range_frac=0.5)
    regime = {"instrument": name, "vol": vol, "makers": n_ladder, "deep_makers": n_deep,
              "taker_rate_hz": round(over["taker_rate_hz"], 2), "taker_median_lots": round(over["taker_median_lots"], 1),
              "taker_sigma_log": round(over["taker_sigma_log"], 2), "sigma_ticks": round(sigma, 3)}
    return regime, over


def draw_incident(rng: np.random.Generator, kind: str, at_s: float, side: str | None) -> Incident:
    """One incident of ``kind`` with its shape drawn: consumption duration 5-120 s (log-uniform),
    intensity 2-10x the side's background rate (log-uniform), 10-1,000 child orders
    (log-uniform); pulls 30-90% of the quotes, withdrawal cascade 10-40 s, one-sided hold 8-40 s,
    recovery 20-120 s; flicker episode 20-60 s; calm 60 s."""
    lu = lambda a, b: float(math.exp(rng.uniform(math.log(a), math.log(b))))
    spec = f"{kind}@{at_s:g}s" + (f":{side}" if side else "")
    if kind == "consumption":
        return Incident(kind, at_s, side, duration_s=lu(5, 120), spec=spec, intensity=lu(2, 10),
                        slices=int(round(lu(10, 1000))))
    if kind == "withdrawal":
        return Incident(kind, at_s, side, duration_s=float(rng.uniform(10, 40)), spec=spec,
                        pull_frac=float(rng.uniform(0.3, 0.9)), recovery_s=float(rng.uniform(20, 120)))
    if kind == "one_sided_pull":
        return Incident(kind, at_s, side, duration_s=float(rng.uniform(8, 40)), spec=spec,
                        pull_frac=float(rng.uniform(0.3, 0.9)), recovery_s=float(rng.uniform(20, 120)))
    if kind == "flicker":
        return Incident(kind, at_s, side, duration_s=float(rng.uniform(20, 60)), spec=spec)
    return Incident(kind, at_s, side, duration_s=60.0, spec=spec)


# --------------------------------------------------------------------------- bundled sample
SAMPLE_START = "2025-10-10T20:50:00Z"


def sample_config() -> SimConfig:
    """The bundled sample: 40 min of BTCUSDT-like data from 2025-10-10 20:50 UTC, a sell
    consumption episode at 21:00:00 and the two-sided withdrawal at 21:13:00 UTC (05:13 UTC+8).

    Lighter than the defaults to stay a few MB (~3.6 MB): 5 makers, fair value vol 9 ticks
    per sqrt(s), 3.5 noise market orders per second."""
    return build_config(seed=1011, minutes=40, start=SAMPLE_START,
                        incidents=["consumption@21:00:00:sell", "withdrawal@21:13:00"],
                        makers=default_makers(5), sigma_ticks=9.0, taker_rate_hz=3.5)
