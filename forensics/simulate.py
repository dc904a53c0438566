"""Market simulator with ground truth: synthetic Binance USD-M futures data + labels.

A small, deterministic agent-based limit-order book. Several market makers quote layered
bids and asks around their own Avellaneda-Stoikov reservation price
``r = s - q * gamma * sigma^2 * H`` (``s`` fair value, ``q`` inventory in lots hedged away
with a half-life, ``H`` a fixed horizon), widen their half-spread with realised volatility
(``max(delta0, 0.75 sigma sqrt(tau))``), stop quoting a side at their inventory limit, and
re-quote on a timer and whenever fair value moves (each order is kept while within a
tolerance of its target, else cancelled and replaced: most resting orders end cancelled,
not filled). After one of its orders fills, a maker cools down for ``refill_ms``: it places
nothing and only cancels quotes priced through its reservation price, so a persistent
taker eats the ladder level by level. Noise takers send market orders of random size on
both sides; fair value is an exogenous random walk plus the permanent impact of trades (a
small per-lot impact plus a share of how far each market order walked the book, so a thin
book moves further per unit volume). Market orders match with price-time priority and walk
the levels (one fill per resting order, one aggTrade per price level). Scripted incidents
(see :func:`parse_incident`) change the makers' behaviour or add flow:
``withdrawal`` (every maker pulls both sides to one small, wide quote within ~300 ms, a
decaying sell cascade hits the thin book 0.8 s later, makers return in steps with wide
spreads over ~90 s), ``consumption`` (a taker sends ~0.6 BTC market orders every 0.6-1.5 s),
``one_sided_pull`` (the same pull on one side, held, then a gradual return), ``flicker``
(30x-size orders 2-3.5 ladder depths from fair value, each resting 0.3-1.5 s) and ``calm``
(nothing: a labelled negative window).

Units (internal): time in ms on the engine axis (``0`` = start of a warm-up that is not
published), prices in integer **ticks** (absolute: ``price = ticks * tick``), sizes in
integer **lots** (``qty = lots * lot``), timestamps in the outputs in UTC **ns** unless a
field is named after Binance's ms fields. Everything random comes from numpy generators
seeded by ``seed`` (independent ``SeedSequence`` streams for fair value, takers, the engine,
the publication, and one per incident); the same config gives byte-identical files. Fair
value is drawn every 10 ms; the engine steps every 1 ms. A run is at most ``MAX_MINUTES``
(6 h): peak memory is ~0.4 GB per simulated hour, a 30-minute run takes about a second.

Outputs of :func:`simulate` in ``out_dir`` (``<date>`` = UTC date of the start):

``<SYMBOL>-depth-capture-<date>.jsonl.gz``
    hftbacktest-collector style: gzipped lines ``<local receive time ns> <json>`` in
    local-receive order. Combined-stream depth events
    ``{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E","T","s","U","u","pu","b","a"}}``
    every 100 ms batch that changed the book (net change per level in the batch, absolute
    new quantity as fixed-decimal strings, ``"0.000"`` deletes the level), aggTrade events
    ``{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E","a","s","p","q","f","l","T","m"}}``
    (``m`` true = buyer is maker = the aggressor sold) and one REST snapshot line
    ``{"lastUpdateId","E","T","bids","asks"}``. The snapshot is fetched after the stream
    started: ``stale_events`` (or a few more) depth events with ``u < lastUpdateId`` come
    before it (to be dropped), the next one straddles ``U <= lastUpdateId <= u``; that
    straddling event lists every level *touched* in its batch (Binance semantics, needed to
    be exact from a mid-batch snapshot). ``U`` is the previous event's ``u + 1`` and ``pu``
    the previous event's ``u``; update ids count the engine's individual book operations.
    Exchange times are ms: a depth event's E is its batch end + 0-2 ms and T the time of the
    batch's last book operation; an aggTrade's T is the match time and E = T + 0-1 ms. The
    local time is E + a per-stream latency (a few ms, rarely tens of ms, monotone per
    stream), so depth and trade lines interleave out of exchange-time order.
    Publication is full depth: every level change is published and the snapshot holds the
    whole book (the makers' ladders keep it far below Binance's 1000-level snapshot limit;
    this is asserted), so the replayed book equals the engine's book exactly.
``<SYMBOL>-aggTrades-<date>.csv``
    Binance public daily aggTrades CSV, header
    ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker``
    (ms, ``true``/``false``), the same aggregated trades as the capture's aggTrade events
    (one per taker order and price level; ``f..l`` are the individual maker fills).
``truth_level_decreases.parquet``
    One row per *published* level decrease (depth events after the straddling one, i.e.
    ``U > lastUpdateId``; a row is a level whose published quantity fell in that event):
    ``ts`` (Int64, UTC ns, the event's E), ``update_id`` (the event's u), ``batch`` (Int32,
    100 ms batch index from the start), ``side`` ('bid'/'ask'), ``price_ticks`` (Int64),
    ``price`` (decimal string as published), ``prev_lots``, ``new_lots`` (published quantity
    before/after, lots), ``decrease_lots`` = prev - new (> 0), ``traded_lots`` +
    ``cancelled_lots`` = ``decrease_lots`` (the truth, below), ``gross_added_lots``,
    ``gross_traded_lots``, ``gross_cancelled_lots`` (all engine operations at that level in
    the batch: prev + added - traded - cancelled = new), ``incident_id`` (Int32, null
    outside incidents) and ``incident_type``: the incident whose
    ``[start_ts_ns, window_end_ts_ns]`` contains ``ts``.

    **Truth.** Within one batch adds and cancels at a level can net out, so the published
    decrease D = prev - new is split as ``traded_lots = min(gross_traded, D)`` and
    ``cancelled_lots = D - traded_lots``: the decrease is explained first by fills at that
    price in that batch (which appear in the trade stream at that price), the rest by
    cancellations net of additions (``cancelled_lots <= gross_cancelled`` always). An
    attribution algorithm is scored per row (or summed per side/window) on ``traded_lots``
    vs ``cancelled_lots``. Levels that traded but did not fall net are not rows.
``labels.json``
    ``schema_version``, ``generator``, ``exchange`` ('binance-futures'), ``symbol``,
    ``date``, ``seed``, ``tick``, ``lot`` (decimal strings), ``price_decimals``,
    ``qty_decimals``, ``batch_ms``, ``start_ts_ns``, ``end_ts_ns``, ``snapshot``
    (``last_update_id``, ``ts_ns``, ``stale_events``), ``files``, ``counts``, ``config``
    (every :class:`SimConfig` field) and ``incidents``: a list of ``{id, type, spec,
    expected_label, sides ('bid'/'ask'/'both'), aggressor ('sell'/'buy'/null), start_ts_ns,
    end_ts_ns, window_end_ts_ns, phases: {name: [start_ns, end_ns]}, ...}``. ``start..end``
    is the scripted removal (withdrawal/one-sided pull: first to last maker pull; consumption:
    first to last child order; flicker/calm: the episode), ``window_end_ts_ns`` the end of
    everything the incident affects (recovery included). Flicker incidents also list
    ``orders`` (side, price, price_ticks, lots, place_ts_ns, cancel_ts_ns); consumption
    incidents list the taker's child ``orders`` (ts_ns, lots) and ``total_lots``.
``README.md``
    This description (:func:`describe_outputs`).

API: :func:`build_config` / :class:`SimConfig`, :func:`parse_incident`,
:func:`simulate` (engine + publication), :func:`run_engine` (in memory),
:func:`engine_books` (the engine's own book at every batch end), :func:`write_sample_data`.

Optional output: a Binance ``bookDepth`` CSV computed from the true book (band-only data for
the same market; :data:`BOOK_DEPTH_DOC`, ``SimConfig.book_depth_every_s``).
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import polars as pl
from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
from numba import njit

BID, ASK = 0, 1
K_ADD, K_TRADE, K_CANCEL = 0, 1, 2
BATCH_MS = 100
NS_PER_MS = 1_000_000
SNAPSHOT_LIMIT = 1000  # Binance REST depth limit per side
UID0 = 8_000_000_000_000  # first engine update id (Binance futures ids are ~8e12)
TID0 = 6_500_000_000      # first individual trade id
AID0 = 2_800_000_000      # first aggregate trade id

INCIDENT_KINDS = ("withdrawal", "consumption", "one_sided_pull", "flicker", "calm")
EXPECTED_LABEL = {
    "withdrawal": "synchronized_withdrawal",
    "consumption": "consumption",
    "one_sided_pull": "one_sided_pull",
    "flicker": "flicker",
    "calm": None,
}
DEFAULT_DURATION_S = {  # main phase length per kind (see parse_incident)
    "withdrawal": 30.0, "consumption": 45.0, "one_sided_pull": 15.0, "flicker": 60.0, "calm": 60.0,
}
DEFAULT_START = "2025-10-10T20:50:00Z"
MAX_MINUTES = 360
EXO_MS = 10  # fair value (exogenous part) resolution
BINANCE_BOOK_DEPTH_BANDS = (1.0, 2.0, 3.0, 4.0, 5.0)  # real files: -5..-1 / 1..5 (newer: also 0.2)
BOOK_DEPTH_FIELDS = ("book_depth_every_s", "book_depth_jitter_s", "book_depth_bands")
INCIDENT_OPTIONS = ("intensity", "slices", "pull_frac", "recovery_s")


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class MakerSpec:
    """One market maker's parameters (ticks, lots, ms, s as named)."""

    delta0_ticks: float      # minimum half-spread
    spacing_ticks: float     # distance between ladder levels
    levels: int              # ladder levels per side
    size_lots: float         # size at level 0 (grows by size_slope per level)
    tau_s: float             # quote horizon: half-spread >= 0.75 * sigma * sqrt(tau)
    requote_ms: float        # mean time between timer re-quotes
    gamma: float             # AS risk aversion, 1/(lot*tick): r shift = q*gamma*sigma^2*H ticks
    qmax_lots: float         # inventory limit: stop quoting the side that adds to it
    react_ticks: float       # re-quote at once when fair value moved this far
    tol0_ticks: float        # keep an order if within tol0 + tol_frac * distance of target
    refill_ms: int           # cool-down after a fill: place nothing, cancel only quotes through r
    deep: bool = False       # resting liquidity far from mid (1-5% bands); not a ladder for flicker sizing


def default_makers(n: int = 6) -> tuple[MakerSpec, ...]:
    """``n`` (1..8) heterogeneous makers, fastest/tightest first."""
    rows = [
        # delta0 spacing levels size tau requote gamma  qmax  react tol0 refill
        (1.0, 1.0, 5, 40, 0.05, 250, 2e-5, 3000, 6, 1, 300),
        (2.0, 2.0, 6, 70, 0.10, 400, 1.5e-5, 4000, 8, 1, 400),
        (3.0, 3.0, 8, 100, 0.20, 600, 1e-5, 5000, 10, 2, 600),
        (5.0, 5.0, 8, 150, 0.40, 900, 8e-6, 7000, 14, 2, 800),
        (8.0, 8.0, 8, 250, 0.80, 1300, 6e-6, 9000, 18, 3, 1200),
        (12.0, 13.0, 8, 400, 1.50, 2000, 5e-6, 12000, 24, 4, 1600),
        (4.0, 4.0, 6, 120, 0.30, 700, 1e-5, 6000, 12, 2, 500),
        (6.0, 6.0, 6, 200, 0.60, 1100, 7e-6, 8000, 16, 2, 700),
    ]
    if not 1 <= n <= len(rows):
        raise ValueError(f"makers must be 1..{len(rows)}")
    return tuple(MakerSpec(*r[:2], int(r[2]), *r[3:10], int(r[10])) for r in rows[:n])


@dataclass(frozen=True)
class Incident:
    """A scripted incident. ``at_s``: seconds after the capture start.

    ``side``: for ``withdrawal``/``consumption`` the aggressor of the flow ('sell'/'buy');
    for ``one_sided_pull`` the pulled side ('bid'/'ask'); for ``flicker`` 'bid'/'ask'/'both';
    ``None`` for ``calm``. ``duration_s``: main phase length (None = kind default)."""

    kind: str
    at_s: float
    side: str | None = None
    duration_s: float | None = None
    spec: str = ""
    # drawn-incident options (None = the legacy shape, see the planners)
    intensity: float | None = None   # consumption: program volume rate / the side's background taker rate
    slices: int | None = None        # consumption: number of child market orders
    pull_frac: float | None = None   # pulls: share of each maker's quotes pulled (legacy 0.9)
    recovery_s: float | None = None  # pulls: length of the return (legacy 90 s / 45 s)

    @property
    def duration(self) -> float:
        """Main phase length in s (withdrawal: the sell cascade; one_sided_pull: the hold)."""
        return self.duration_s if self.duration_s is not None else DEFAULT_DURATION_S[self.kind]


@dataclass(frozen=True)
class SimConfig:
    """Scenario: instrument, market parameters, incidents. Defaults are BTCUSDT-like."""

    seed: int = 0
    start_ns: int = 0                       # capture start, UTC ns (0 -> DEFAULT_START)
    minutes: float = 30.0
    symbol: str = "BTCUSDT"
    tick: str = "0.1"
    lot: str = "0.001"
    price_decimals: int = 2                 # "120000.10"
    qty_decimals: int = 3                   # "1.234"
    price0: float = 120000.0
    sigma_ticks: float = 12.0               # fair value vol, ticks / sqrt(s)
    taker_rate_hz: float = 5.0              # noise market orders per second (both sides)
    taker_median_lots: float = 15.0
    taker_sigma_log: float = 1.2
    impact_beta: float = 0.5                # share of the book walk that moves fair value
    impact_lambda: float = 0.002           # ticks of permanent impact per lot traded
    size_slope: float = 0.35                # level j size = size * (1 + slope * j)
    tol_frac: float = 0.4
    horizon_s: float = 1.0                  # AS horizon (T - t), fixed
    hedge_half_life_s: float = 60.0         # makers hedge inventory elsewhere
    vol_halflife_s: float = 2.0             # realised-vol EWMA seen by makers
    warmup_s: float = 30.0                  # simulated before the capture, not published
    stale_events: int = 5                   # depth events before the REST snapshot (at least)
    range_frac: float = 0.15                # price grid: price0 * (1 +- range_frac)
    makers: tuple[MakerSpec, ...] = field(default_factory=default_makers)
    incidents: tuple[Incident, ...] = ()
    # optional Binance bookDepth CSV from the true book (see BOOK_DEPTH_DOC); None = not written
    book_depth_every_s: float | None = None  # sampling cadence, s (Binance: ~30)
    book_depth_jitter_s: float = 1.0        # each sample moved by a whole -j..+j s (seeded)
    book_depth_bands: tuple[float, ...] = BINANCE_BOOK_DEPTH_BANDS  # % of mid, per side
    # issue 18 (article metrics), both default off: see _apply_regime / _plan_withdrawal
    regime: str | None = None               # background from regime_from_s: stable/range/trend/crisis
    regime_from_s: float = 0.0              # seconds after the capture start (before: the calm default)
    precursor_widen_s: float = 0.0          # withdrawals: makers widen + cut size this long before the pull

    def resolved_start_ns(self) -> int:
        """The capture start in UTC ns (``start_ns`` or DEFAULT_START)."""
        return self.start_ns or parse_time_ns(DEFAULT_START)

    def tick_units(self) -> int:
        """Tick in units of 10**-price_decimals (exact; raises if not an integer)."""
        return _units(self.tick, self.price_decimals, "tick")

    def lot_units(self) -> int:
        """Lot in units of 10**-qty_decimals (exact; raises if not an integer)."""
        return _units(self.lot, self.qty_decimals, "lot")


def _units(value: str, decimals: int, what: str) -> int:
    """``value * 10**decimals`` as an exact int."""
    x = Decimal(value) * (Decimal(10) ** decimals)
    if x != x.to_integral_value() or x <= 0:
        raise ValueError(f"{what} {value} is not a positive multiple of 1e-{decimals}")
    return int(x)


def parse_time_ns(value: str | int | datetime) -> int:
    """ISO-8601 text (no offset = UTC), datetime or int ns -> UTC ns."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


_DUR_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_SPEC_RE = re.compile(
    r"^(?P<kind>[a-z_]+)@(?P<when>\d+(?:\.\d+)?(?:ms|s|m|h)|\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"(?::(?P<side>bid|ask|buy|sell|both))?(?:~(?P<dur>\d+(?:\.\d+)?(?:ms|s|m|h)))?$"
)
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_s(text: str) -> float:
    """'600s', '20m', '1.5h', '250ms' -> seconds."""
    m = _DUR_RE.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r} (use e.g. 250ms, 30s, 10m, 1h)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def _clock_offset_s(clock: str, start_ns: int) -> float:
    """Seconds from ``start_ns`` to the next UTC wall-clock time ``HH:MM[:SS]`` at or after it."""
    parts = clock.split(":")
    secs = int(parts[0]) * 3600 + int(parts[1]) * 60 + (float(parts[2]) if len(parts) > 2 else 0.0)
    day_ns = start_ns - start_ns % (86400 * 10**9)
    off = (day_ns + round(secs * 1e9) - start_ns) / 1e9
    return off if off >= 0 else off + 86400


def parse_incident(spec: str, start_ns: int | None = None) -> Incident:
    """Parse ``TYPE@WHEN[:SIDE][~DURATION]`` into an :class:`Incident`.

    TYPE: withdrawal | consumption | one_sided_pull | flicker | calm.
    WHEN: an offset from the capture start (``600s``, ``10m``, ``1.5h``, ``250ms``) or a UTC
    wall-clock time ``HH:MM[:SS]`` on the start's day (needs ``start_ns``).
    SIDE: withdrawal: cascade aggressor ``sell`` (default) or ``buy``; consumption: aggressor
    ``sell`` (default, walks the bids) or ``buy`` (``bid``/``ask`` name the consumed side);
    one_sided_pull: pulled side ``bid`` (default) or ``ask``; flicker: ``bid``/``ask``/``both``
    (default). DURATION overrides the main phase (withdrawal: the sell cascade, 30s;
    consumption: the selling program, 45s; one_sided_pull: the hold, 15s; flicker: the
    episode, 60s; calm: the labelled window, 60s).
    Examples: ``withdrawal@600s``, ``consumption@20m:sell``, ``one_sided_pull@15m:bid``,
    ``flicker@5m``, ``withdrawal@21:13:00``, ``consumption@2m:buy~30s``.
    """
    m = _SPEC_RE.match(spec.strip())
    if not m:
        raise ValueError(f"bad incident {spec!r}: use TYPE@WHEN[:SIDE][~DURATION], e.g. withdrawal@10m")
    kind, when, side, dur = m.group("kind"), m.group("when"), m.group("side"), m.group("dur")
    if kind not in INCIDENT_KINDS:
        raise ValueError(f"bad incident type {kind!r}: one of {', '.join(INCIDENT_KINDS)}")
    if ":" in when:
        if start_ns is None:
            raise ValueError(f"{spec!r}: a clock time needs the scenario start")
        at_s = _clock_offset_s(when, start_ns)
    else:
        at_s = parse_duration_s(when)
    return Incident(kind, at_s, _normalise_side(kind, side, spec), parse_duration_s(dur) if dur else None, spec.strip())


def _normalise_side(kind: str, side: str | None, spec: str) -> str | None:
    """Canonical side per kind (see :class:`Incident`); raises on a side that makes no sense."""
    allowed = {
        "withdrawal": {None: "sell", "both": "sell", "sell": "sell", "buy": "buy"},
        "consumption": {None: "sell", "sell": "sell", "buy": "buy", "bid": "sell", "ask": "buy"},
        "one_sided_pull": {None: "bid", "bid": "bid", "ask": "ask"},
        "flicker": {None: "both", "both": "both", "bid": "bid", "ask": "ask"},
        "calm": {None: None},
    }[kind]
    if side not in allowed:
        raise ValueError(f"{spec!r}: side {side!r} not valid for {kind}")
    return allowed[side]


def parse_incidents(specs: Iterable[str], start_ns: int | None = None) -> tuple[Incident, ...]:
    """Parse several incident specs (see :func:`parse_incident`), sorted by time."""
    return tuple(sorted((parse_incident(s, start_ns) for s in specs), key=lambda i: i.at_s))


def build_config(seed: int = 0, minutes: float = 30.0, incidents: Sequence[str | Incident] = (),
                 start: str | int | datetime = DEFAULT_START, **overrides) -> SimConfig:
    """The CLI's entry: a :class:`SimConfig` from a seed, a length, incident specs and a start."""
    start_ns = parse_time_ns(start)
    parsed = tuple(i if isinstance(i, Incident) else parse_incident(i, start_ns) for i in incidents)
    cfg = SimConfig(seed=seed, start_ns=start_ns, minutes=minutes,
                    incidents=tuple(sorted(parsed, key=lambda i: i.at_s)), **overrides)
    validate(cfg)
    return cfg


def validate(cfg: SimConfig) -> None:
    """Raise ValueError for a scenario the engine or the publication cannot honour."""
    cfg.tick_units(), cfg.lot_units()
    if cfg.minutes <= 0 or cfg.minutes > MAX_MINUTES:
        raise ValueError(f"minutes must be in (0, {MAX_MINUTES}] (memory grows ~linearly)")
    if cfg.warmup_s < 5 or (cfg.warmup_s * 1000) % BATCH_MS:
        raise ValueError("warmup_s must be >= 5 and a multiple of 0.1")
    if cfg.stale_events < 1:
        raise ValueError("stale_events must be >= 1")
    if cfg.book_depth_every_s is not None:
        if not cfg.book_depth_every_s >= 1:
            raise ValueError("book_depth_every_s must be >= 1 s (bookDepth timestamps are whole seconds)")
        if cfg.book_depth_jitter_s < 0:
            raise ValueError("book_depth_jitter_s must be >= 0")
        bands = [float(b) for b in cfg.book_depth_bands]
        if not bands or any(not 0 < b < 100 for b in bands) or len(set(bands)) != len(bands):
            raise ValueError("book_depth_bands must be distinct percentages in (0, 100), e.g. 1,2,3,4,5")
    if cfg.regime is not None and cfg.regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)} (or None)")
    if cfg.precursor_widen_s < 0 or cfg.regime_from_s < 0:
        raise ValueError("precursor_widen_s and regime_from_s must be >= 0")
    for inc in cfg.incidents:
        if inc.at_s < 10 or inc.at_s >= cfg.minutes * 60:
            raise ValueError(f"incident {inc.spec or inc.kind} at {inc.at_s:.1f}s: must be in "
                             f"[10s, {cfg.minutes * 60:.0f}s) of the capture")


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


#: issue 18 background regimes (SimConfig.regime, from regime_from_s; before it the default calm walk):
#: range = 1-min vol x RANGE_VOL but mean-reverting (OU, RANGE_REVERT_S), so 10-min moves stay small;
#: trend = the calm noise plus a drift of TREND_DRIFT_SIGMAS one-minute sigmas per minute (random sign);
#: crisis = a random walk with CRISIS_VOL x the vol at every horizon
REGIMES = ("stable", "range", "trend", "crisis")
RANGE_VOL, RANGE_REVERT_S, TREND_DRIFT_SIGMAS, CRISIS_VOL = 4.0, 40.0, 1.5, 4.0
PRECURSOR_PRESENCE, PRECURSOR_SPREAD = 0.5, 2.5  # precursor_widen_s: size x0.5, half-spread x2.5


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


# --------------------------------------------------------------------------- publication
@dataclass
class _Runs:
    """Per (side, price, batch) aggregates of the op log (batch -1 = warm-up)."""

    side: np.ndarray
    price: np.ndarray
    batch: np.ndarray
    prev: np.ndarray
    new: np.ndarray
    added: np.ndarray
    traded: np.ndarray
    cancelled: np.ndarray


def _op_batches(eng: EngineOutput) -> np.ndarray:
    """Capture batch index of every op (-1 for warm-up ops); nondecreasing."""
    t = eng.ops[:, 0]
    return np.where(t >= eng.warm_ms, (t - eng.warm_ms) // BATCH_MS, -1)


def _sorted_levels(eng: EngineOutput, batch: np.ndarray) -> dict:
    """Ops sorted by (side, price, time) with the level quantity after each op."""
    ops = eng.ops
    order = np.lexsort((np.arange(len(ops)), ops[:, 2], ops[:, 1]))
    side, price, delta, kind = (ops[order, i] for i in (1, 2, 3, 4))
    uid = UID0 + order
    new_grp = np.r_[True, (side[1:] != side[:-1]) | (price[1:] != price[:-1])]
    gstart = np.flatnonzero(new_grp)
    cs = np.cumsum(delta)
    base = np.r_[0, cs][gstart]
    qty_after = cs - np.repeat(base, np.diff(np.r_[gstart, len(cs)]))
    return dict(side=side, price=price, delta=delta, kind=kind, uid=uid, batch=batch[order],
                gstart=gstart, qty_after=qty_after)


def _level_runs(lv: dict) -> _Runs:
    """Aggregate sorted ops into per (side, price, batch) runs: prev/new qty and gross flows."""
    side, price, batch, delta, kind = lv["side"], lv["price"], lv["batch"], lv["delta"], lv["kind"]
    n = len(side)
    brk = np.zeros(n, bool)
    brk[lv["gstart"]] = True
    brk[1:] |= batch[1:] != batch[:-1]
    rs = np.flatnonzero(brk)
    re_ = np.r_[rs[1:], n] - 1
    flow = lambda k: np.add.reduceat(np.where(kind == k, delta, 0), rs)
    return _Runs(side[rs], price[rs], batch[rs], lv["qty_after"][rs] - delta[rs], lv["qty_after"][re_],
                 flow(K_ADD), -flow(K_TRADE), -flow(K_CANCEL))


def _pick_snapshot(runs: _Runs, batch_ops: np.ndarray, stale: int) -> tuple[int, int]:
    """(straddling batch, snapshot op index): the ``stale``-th changed batch with >= 3 ops,
    the snapshot taken a third of the way through its ops (so U <= N < u)."""
    changed = np.unique(runs.batch[(runs.prev != runs.new) & (runs.batch >= 0)])
    lo = np.searchsorted(batch_ops, changed, "left")
    hi = np.searchsorted(batch_ops, changed, "right")
    ok = np.flatnonzero((hi - lo >= 3) & (np.arange(changed.size) >= stale))
    if ok.size == 0:
        raise ValueError("scenario too short for the snapshot sync")
    k = int(ok[0])
    return int(changed[k]), int(lo[k] + (hi[k] - lo[k]) // 3)


def _snapshot_book(lv: dict, n_op: int) -> tuple[np.ndarray, ...]:
    """Book after op index ``n_op``: (side, price, lots) of non-empty levels."""
    mask = (lv["uid"] - UID0) <= n_op
    cnt = np.add.reduceat(mask.astype(np.int64), lv["gstart"])
    has = cnt > 0
    last = lv["gstart"][has] + cnt[has] - 1
    qty = lv["qty_after"][last]
    keep = qty > 0
    return lv["side"][last][keep], lv["price"][last][keep], qty[keep]


def _dec_expr(col: str, scale: int, decimals: int) -> pl.Expr:
    """Integer count of ``scale`` units of 10**-decimals -> fixed-decimal string (vectorised)."""
    v = pl.col(col).cast(pl.Int64) * scale
    if decimals == 0:
        return v.cast(pl.Utf8)
    p = 10 ** decimals
    return pl.concat_str([(v // p).cast(pl.Utf8), pl.lit("."), (v % p).cast(pl.Utf8).str.zfill(decimals)])


def _cat(*parts: str | pl.Expr) -> pl.Expr:
    """Concatenate literal text and expressions (cast to text) into one string column."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p.cast(pl.Utf8) for p in parts])


def _latency_ns(rng: np.random.Generator, sent_ns: np.ndarray) -> np.ndarray:
    """Local receive ns: sent + 1.5-4 ms + Exp(1 ms), 1% spikes of 15-60 ms; monotone (TCP)."""
    n = sent_ns.size
    lat = rng.uniform(1.5e6, 4e6, n) + rng.exponential(1e6, n)
    lat += np.where(rng.random(n) < 0.01, rng.uniform(15e6, 60e6, n), 0.0)
    return np.maximum.accumulate(sent_ns + lat.astype(np.int64))


def _depth_events(eng: EngineOutput, runs: _Runs, batch_ops: np.ndarray, k: int,
                  rng) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, rows): one event per published batch (E, T, U, u, pu in Binance units) and the
    published level rows (event index, side, price ticks, new lots)."""
    pub = (runs.batch >= 0) & ((runs.prev != runs.new) | (runs.batch == k))
    eb = np.unique(runs.batch[pub])
    last_op = np.searchsorted(batch_ops, eb, "right") - 1
    u = UID0 + last_op
    pu = np.r_[UID0 + np.searchsorted(batch_ops, eb[0], "left") - 1, u[:-1]]
    T = eng.abs_ms(eng.ops[last_op, 0])
    E = eng.start_ms + (eb + 1) * BATCH_MS + rng.integers(0, 3, eb.size)
    events = pl.DataFrame({"batch": eb, "E": E, "T": T, "U": pu + 1, "u": u, "pu": pu})
    rows = pl.DataFrame({"ev": np.searchsorted(eb, runs.batch[pub]), "side": runs.side[pub],
                         "price": runs.price[pub], "qty": runs.new[pub]})
    return events, rows


def _levels_json(rows: pl.DataFrame, cfg: SimConfig, key: str) -> pl.DataFrame:
    """Per ``key`` group and side: the JSON array body ``["p","q"],...`` (bids desc, asks asc)."""
    tok = rows.with_columns(
        sort=pl.when(pl.col("side") == BID).then(-pl.col("price")).otherwise(pl.col("price")),
        tok=pl.concat_str([pl.lit('["'), _dec_expr("price", cfg.tick_units(), cfg.price_decimals),
                           pl.lit('","'), _dec_expr("qty", cfg.lot_units(), cfg.qty_decimals), pl.lit('"]')]),
    ).sort([key, "side", "sort"])
    agg = tok.group_by([key, "side"], maintain_order=True).agg(pl.col("tok").str.join(","))
    wide = agg.pivot(on="side", index=key, values="tok")
    for s in (BID, ASK):
        if str(s) not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Utf8).alias(str(s)))
    return wide.select(pl.col(key), pl.col(str(BID)).fill_null("").alias("b"),
                       pl.col(str(ASK)).fill_null("").alias("a"))


def _depth_lines(events: pl.DataFrame, rows: pl.DataFrame, cfg: SimConfig, rng) -> pl.DataFrame:
    """Capture lines (local_ns, order, line text) for the depth events."""
    body = events.with_row_index("ev").with_columns(pl.col("ev").cast(pl.Int64)).join(
        _levels_json(rows.with_columns(pl.col("ev").cast(pl.Int64)), cfg, "ev"), on="ev", how="left")
    stream = f"{cfg.symbol.lower()}@depth@100ms"
    local = _latency_ns(rng, body["E"].to_numpy() * NS_PER_MS)
    return body.with_columns(local=pl.Series(local), kind=pl.lit(1, pl.Int64)).select(
        "local", "kind", pl.col("u").alias("seq"),
        _cat('{"stream":"' + stream + '","data":{"e":"depthUpdate","E":', pl.col("E"), ',"T":', pl.col("T"),
             ',"s":"' + cfg.symbol + '","U":', pl.col("U"), ',"u":', pl.col("u"), ',"pu":', pl.col("pu"),
             ',"b":[', pl.col("b").fill_null(""), '],"a":[', pl.col("a").fill_null(""), ']}}').alias("json"))


def _agg_trades(eng: EngineOutput) -> pl.DataFrame:
    """Aggregate maker fills into Binance aggTrades (one per taker order and price), capture only."""
    f = eng.fills
    if len(f) == 0:
        return pl.DataFrame(schema={"a": pl.Int64, "price": pl.Int64, "qty": pl.Int64, "f": pl.Int64,
                                    "l": pl.Int64, "T": pl.Int64, "m": pl.Boolean})
    new = np.r_[True, (f[1:, 3] != f[:-1, 3]) | (f[1:, 1] != f[:-1, 1])]
    gs = np.flatnonzero(new)
    ge = np.r_[gs[1:], len(f)] - 1
    df = pl.DataFrame({"a": AID0 + np.arange(gs.size), "price": f[gs, 1], "qty": np.add.reduceat(f[:, 2], gs),
                       "f": TID0 + gs, "l": TID0 + ge, "T": eng.abs_ms(f[gs, 0]), "m": f[gs, 4] == 0})
    return df.filter(pl.col("T") >= eng.start_ms)


def _trade_lines(trades: pl.DataFrame, cfg: SimConfig, rng) -> pl.DataFrame:
    """Capture lines for aggTrade events (E = T + 0..1 ms)."""
    E = trades["T"].to_numpy() + rng.integers(0, 2, trades.height)
    local = _latency_ns(rng, E * NS_PER_MS)
    stream = f"{cfg.symbol.lower()}@aggTrade"
    return trades.with_columns(E=pl.Series(E), local=pl.Series(local), kind=pl.lit(2, pl.Int64)).select(
        "local", "kind", pl.col("a").alias("seq"),
        _cat('{"stream":"' + stream + '","data":{"e":"aggTrade","E":', pl.col("E"), ',"a":', pl.col("a"),
             ',"s":"' + cfg.symbol + '","p":"', _dec_expr("price", cfg.tick_units(), cfg.price_decimals),
             '","q":"', _dec_expr("qty", cfg.lot_units(), cfg.qty_decimals), '","f":', pl.col("f"),
             ',"l":', pl.col("l"), ',"T":', pl.col("T"), ',"m":',
             pl.when(pl.col("m")).then(pl.lit("true")).otherwise(pl.lit("false")), '}}').alias("json"))


def _snapshot_line(eng: EngineOutput, lv: dict, n_op: int, depth_lines: pl.DataFrame, k_ev: int,
                   rng) -> tuple[pl.DataFrame, dict]:
    """The REST snapshot line at update id UID0 + n_op, received between depth events k-1 and k."""
    cfg = eng.config
    side, price, qty = _snapshot_book(lv, n_op)
    for s in (BID, ASK):
        if (side == s).sum() > SNAPSHOT_LIMIT:
            raise RuntimeError("book deeper than the 1000-level snapshot limit")
    body = _levels_json(pl.DataFrame({"g": np.zeros(side.size, np.int64), "side": side, "price": price, "qty": qty}),
                        cfg, "g")
    T = int(eng.abs_ms(eng.ops[n_op, 0]))
    E = T + 1
    local = depth_lines["local"].to_numpy()
    lo, hi = int(local[k_ev - 1]) + 1000, int(local[k_ev]) - int(rng.uniform(5e4, 1e6))
    recv = min(max(E * NS_PER_MS + int(rng.uniform(8e6, 30e6)), lo), max(hi, lo))
    text = ('{"lastUpdateId":%d,"E":%d,"T":%d,"bids":[%s],"asks":[%s]}'
            % (UID0 + n_op, E, T, body["b"][0], body["a"][0]))
    line = pl.DataFrame({"local": [recv], "kind": [0], "seq": [0], "json": [text]})
    return line, {"last_update_id": UID0 + n_op, "ts_ns": E * NS_PER_MS, "stale_events": k_ev,
                  "bids": int((side == BID).sum()), "asks": int((side == ASK).sum())}


def _write_gz(path: Path, text: str) -> None:
    """Deterministic gzip (no name, mtime 0)."""
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=6) as gz:
        gz.write(text.encode())


def _truth(eng: EngineOutput, runs: _Runs, events: pl.DataFrame, k: int, labels: list[dict]) -> pl.DataFrame:
    """The published level decreases after the straddling event with their true split."""
    cfg = eng.config
    dec = (runs.batch > k) & (runs.new < runs.prev)
    eb = events["batch"].to_numpy()
    ev = np.searchsorted(eb, runs.batch[dec])
    D = runs.prev[dec] - runs.new[dec]
    traded = np.minimum(runs.traded[dec], D)
    ts = events["E"].to_numpy()[ev] * NS_PER_MS
    inc_id = np.full(ts.size, -1, np.int64)
    for lab in labels:
        inside = (inc_id < 0) & (ts >= lab["start_ts_ns"]) & (ts <= lab["window_end_ts_ns"])
        inc_id[inside] = lab["id"]
    kinds = {lab["id"]: lab["type"] for lab in labels}
    df = pl.DataFrame({
        "ts": ts, "update_id": events["u"].to_numpy()[ev], "batch": runs.batch[dec].astype(np.int32),
        "side": np.where(runs.side[dec] == BID, "bid", "ask"), "price_ticks": runs.price[dec],
        "prev_lots": runs.prev[dec], "new_lots": runs.new[dec], "decrease_lots": D, "traded_lots": traded,
        "cancelled_lots": D - traded, "gross_added_lots": runs.added[dec], "gross_traded_lots": runs.traded[dec],
        "gross_cancelled_lots": runs.cancelled[dec], "incident_id": inc_id.astype(np.int32),
    }).with_columns(
        price=_dec_expr("price_ticks", cfg.tick_units(), cfg.price_decimals),
        incident_id=pl.when(pl.col("incident_id") >= 0).then(pl.col("incident_id")),
    ).with_columns(incident_type=pl.col("incident_id").replace_strict(kinds, default=None, return_dtype=pl.Utf8))
    return df.select("ts", "update_id", "batch", "side", "price_ticks", "price", "prev_lots", "new_lots",
                     "decrease_lots", "traded_lots", "cancelled_lots", "gross_added_lots", "gross_traded_lots",
                     "gross_cancelled_lots", "incident_id", "incident_type").sort(["ts", "side", "price_ticks"])


def _incident_labels(eng: EngineOutput) -> list[dict]:
    """Incident label dicts with engine ms converted to UTC ns (flicker orders resolved)."""
    ns = lambda t: int((t - eng.warm_ms + eng.start_ms) * NS_PER_MS)
    cfg, sch = eng.config, eng.schedules
    out = []
    for lab in sch.incidents:
        d = {"id": lab["id"], "type": lab["type"], "spec": lab["spec"], "expected_label": lab["expected_label"],
             "sides": lab["sides"], "aggressor": lab["aggressor"], "start_ts_ns": ns(lab["start"]),
             "end_ts_ns": ns(lab["end"]), "window_end_ts_ns": ns(lab["window_end"]),
             "phases": {k: [ns(a), ns(b)] for k, (a, b) in lab["phases"].items()}}
        if "shape" in lab:
            d["shape"] = lab["shape"]
        if "_children" in lab:
            d["total_lots"] = lab["total_lots"]
            d["orders"] = [{"ts_ns": ns(t), "lots": int(q)} for t, q in zip(*lab["_children"])]
        if lab["type"] == "flicker":
            d["orders"] = _flicker_orders(eng, *lab["fl_ids"], ns)
        out.append(d)
    return out


def _flicker_orders(eng: EngineOutput, lo: int, hi: int, ns) -> list[dict]:
    """The flicker orders with ids in [lo, hi): side, price, lots, place/cancel times."""
    cfg, sch = eng.config, eng.schedules
    res = []
    for fid in range(lo, hi):
        idx = np.flatnonzero(sch.fl_id == fid)
        place = idx[sch.fl_act[idx] == 1]
        cancel = idx[sch.fl_act[idx] == 0]
        if place.size == 0 or eng.fl_price[place[0]] < 0:
            continue
        p = int(eng.fl_price[place[0]])
        res.append({"side": "bid" if sch.fl_side[place[0]] == BID else "ask", "price_ticks": p,
                    "price": _fmt(p, cfg.tick_units(), cfg.price_decimals), "lots": int(sch.fl_qty[place[0]]),
                    "place_ts_ns": ns(sch.fl_t[place[0]]),
                    "cancel_ts_ns": ns(sch.fl_t[cancel[0]]) if cancel.size else None})
    return res


def _fmt(n: int, scale: int, decimals: int) -> str:
    """One integer count -> fixed-decimal string (same as :func:`_dec_expr`)."""
    v = n * scale
    return str(v) if decimals == 0 else f"{v // 10**decimals}.{v % 10**decimals:0{decimals}d}"


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


def output_names(cfg: SimConfig) -> dict[str, str]:
    """File names :func:`simulate` writes, by role."""
    date = datetime.fromtimestamp(cfg.resolved_start_ns() / 1e9, timezone.utc).strftime("%Y-%m-%d")
    return {"capture": f"{cfg.symbol}-depth-capture-{date}.jsonl.gz",
            "agg_trades_csv": f"{cfg.symbol}-aggTrades-{date}.csv",
            "truth": "truth_level_decreases.parquet", "labels": "labels.json", "readme": "README.md",
            **({"book_depth_csv": f"{cfg.symbol}-bookDepth-{date}.csv"} if cfg.book_depth_every_s else {})}


def describe_outputs(book_depth: bool = False) -> str:
    """README text for a simulation output folder (the module docstring's output section, plus
    :data:`BOOK_DEPTH_DOC` when the bookDepth CSV was written)."""
    doc = __doc__ or ""
    body = doc[doc.index("Outputs of"):doc.index("API:")].rstrip()
    if book_depth:
        body += "\n" + BOOK_DEPTH_DOC.rstrip()
    body = re.sub(r":\w+:`([^`]+)`", r"`\1`", body)
    return "# Simulated market data with ground truth\n\nWritten by `forensics.simulate`.\n\n" + body + "\n"


def _config_dict(cfg: SimConfig) -> dict:
    """SimConfig as JSON-able dict (incidents and makers as lists of dicts)."""
    d = dataclasses.asdict(cfg)
    d["start_ns"] = cfg.resolved_start_ns()
    for m in d["makers"]:   # options at their defaults: labels.json as before they existed
        if not m["deep"]:
            m.pop("deep")
    for i in d["incidents"]:
        for k in INCIDENT_OPTIONS:
            if i[k] is None:
                i.pop(k)
    if cfg.book_depth_every_s is None:  # option off: labels.json as before the option existed
        for k in BOOK_DEPTH_FIELDS:
            d.pop(k)
    return d


@dataclass
class SimResult:
    """What :func:`simulate` wrote. Times in s, sizes in bytes."""

    out_dir: Path
    files: dict[str, Path]
    labels: dict
    n_batches: int
    n_depth_events: int
    n_agg_trades: int
    n_truth_rows: int
    engine_seconds: float
    publish_seconds: float
    engine: EngineOutput | None = None

    def sizes(self) -> dict[str, int]:
        """Bytes per written file."""
        return {k: p.stat().st_size for k, p in self.files.items()}


def simulate(config: SimConfig, out_dir: Path | str, keep_engine: bool = False,
             record_books: bool = False) -> SimResult:
    """Run the scenario and write the capture, aggTrades CSV, truth Parquet, labels and README.

    ``keep_engine`` attaches the :class:`EngineOutput` (``record_books`` adds batch-end books)."""
    eng = run_engine(config, record_books=record_books)
    t0 = time.perf_counter()
    res = publish(eng, Path(out_dir))
    res.publish_seconds = time.perf_counter() - t0
    if keep_engine:
        res.engine = eng
    return res


def publish(eng: EngineOutput, out_dir: Path) -> SimResult:
    """Write the engine's output in the Binance formats plus the ground truth (see module doc)."""
    cfg = eng.config
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = _rngs(cfg.seed)[3]
    batch_ops = _op_batches(eng)
    lv = _sorted_levels(eng, batch_ops)
    runs = _level_runs(lv)
    k, n_op = _pick_snapshot(runs, batch_ops, cfg.stale_events)
    events, rows = _depth_events(eng, runs, batch_ops, k, rng)
    depth = _depth_lines(events, rows, cfg, rng)
    k_ev = int(np.searchsorted(events["batch"].to_numpy(), k))
    snap, snap_info = _snapshot_line(eng, lv, n_op, depth, k_ev, rng)
    trades = _agg_trades(eng)
    tlines = _trade_lines(trades, cfg, rng)
    lines = pl.concat([snap, depth, tlines]).sort(["local", "kind", "seq"])
    names = output_names(cfg)
    files = {k_: out_dir / v for k_, v in names.items()}
    _write_gz(files["capture"], "\n".join((lines["local"].cast(pl.Utf8) + " " + lines["json"]).to_list()) + "\n")
    csv = trades.select(
        pl.col("a").alias("agg_trade_id"), _dec_expr("price", cfg.tick_units(), cfg.price_decimals).alias("price"),
        _dec_expr("qty", cfg.lot_units(), cfg.qty_decimals).alias("quantity"), pl.col("f").alias("first_trade_id"),
        pl.col("l").alias("last_trade_id"), pl.col("T").alias("transact_time"),
        pl.when(pl.col("m")).then(pl.lit("true")).otherwise(pl.lit("false")).alias("is_buyer_maker"))
    csv.write_csv(files["agg_trades_csv"])
    inc = _incident_labels(eng)
    truth = _truth(eng, runs, events, k, inc)
    truth.write_parquet(files["truth"], compression="zstd", statistics=True)
    end_ns = (eng.start_ms + eng.n_batches * BATCH_MS) * NS_PER_MS
    labels = {
        "schema_version": 1, "generator": "forensics.simulate", "exchange": "binance-futures",
        "symbol": cfg.symbol, "date": names["capture"].rsplit("-capture-", 1)[1][:10], "seed": cfg.seed,
        "tick": cfg.tick, "lot": cfg.lot, "price_decimals": cfg.price_decimals, "qty_decimals": cfg.qty_decimals,
        "batch_ms": BATCH_MS, "start_ts_ns": eng.start_ms * NS_PER_MS, "end_ts_ns": end_ns,
        "snapshot": snap_info, "files": {k_: v for k_, v in names.items()},
        "counts": {"depth_events": events.height, "agg_trades": trades.height, "truth_rows": truth.height,
                   "engine_ops": int(len(eng.ops)), "fills": int(len(eng.fills)), "batches": eng.n_batches},
        "config": _config_dict(cfg), "incidents": inc,
    }
    if cfg.book_depth_every_s:
        bd = book_depth_frame(eng)
        bd.write_csv(files["book_depth_csv"])
        labels["counts"]["book_depth_samples"] = bd["timestamp"].n_unique()
    files["labels"].write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
    files["readme"].write_text(describe_outputs(bool(cfg.book_depth_every_s)))
    return SimResult(out_dir, files, labels, eng.n_batches, events.height, trades.height, truth.height,
                     eng.seconds, 0.0)


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


def write_sample_data(out_dir: Path | str) -> SimResult:
    """Write the bundled sample (:func:`sample_config`) into ``out_dir``; a few MB in total."""
    return simulate(sample_config(), Path(out_dir))
