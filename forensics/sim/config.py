"""Scenario configuration: instrument units, makers, incidents, :class:`SimConfig`, the
incident spec parser and :func:`build_config` / :func:`validate`."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Sequence

import polars as pl

from forensics.errors import ForensicsError
from forensics.timeutil import NS_PER_MS, NS_PER_S, parse_duration, parse_time  # noqa: F401 (NS_PER_MS: re-exported)
from forensics.vocab import Label

BID, ASK = 0, 1
K_ADD, K_TRADE, K_CANCEL = 0, 1, 2
BATCH_MS = 100
SNAPSHOT_LIMIT = 1000  # Binance REST depth limit per side
UID0 = 8_000_000_000_000  # first engine update id (Binance futures ids are ~8e12)
TID0 = 6_500_000_000      # first individual trade id
AID0 = 2_800_000_000      # first aggregate trade id

INCIDENT_KINDS = ("withdrawal", "consumption", "one_sided_pull", "flicker", "calm")
EXPECTED_LABEL: dict[str, Label | None] = {  # the label a correct detection gives each incident kind
    "withdrawal": Label.SYNCHRONIZED_WITHDRAWAL,
    "consumption": Label.CONSUMPTION,
    "one_sided_pull": Label.ONE_SIDED_PULL,
    "flicker": Label.FLICKER,
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

#: issue 18 background regimes (SimConfig.regime, from regime_from_s; before it the default calm walk):
#: range = 1-min vol x RANGE_VOL but mean-reverting (OU, RANGE_REVERT_S), so 10-min moves stay small;
#: trend = the calm noise plus a drift of TREND_DRIFT_SIGMAS one-minute sigmas per minute (random sign);
#: crisis = a random walk with CRISIS_VOL x the vol at every horizon
REGIMES = ("stable", "range", "trend", "crisis")
RANGE_VOL, RANGE_REVERT_S, TREND_DRIFT_SIGMAS, CRISIS_VOL = 4.0, 40.0, 1.5, 4.0
PRECURSOR_PRESENCE, PRECURSOR_SPREAD = 0.5, 2.5  # precursor_widen_s: size x0.5, half-spread x2.5


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
    """ISO-8601 text (no offset = UTC), datetime (naive = UTC) or int ns -> UTC ns
    (:func:`forensics.timeutil.parse_time`); raises ValueError on bad text."""
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        value = value.isoformat()
    try:
        return parse_time(value)
    except ForensicsError as exc:
        raise ValueError(str(exc)) from exc


_SPEC_RE = re.compile(
    r"^(?P<kind>[a-z_]+)@(?P<when>\d+(?:\.\d+)?(?:ms|s|m|h)|\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"(?::(?P<side>bid|ask|buy|sell|both))?(?:~(?P<dur>\d+(?:\.\d+)?(?:ms|s|m|h)))?$"
)


def parse_duration_s(text: str) -> float:
    """'600s', '20m', '1.5h', '250ms' -> seconds (:func:`forensics.timeutil.parse_duration`);
    raises ValueError on bad text."""
    try:
        return parse_duration(text) / NS_PER_S
    except ForensicsError as exc:
        raise ValueError(f"bad duration {text!r} (use e.g. 250ms, 30s, 10m, 1h)") from exc


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


def _dec_expr(col: str, scale: int, decimals: int) -> pl.Expr:
    """Integer count of ``scale`` units of 10**-decimals -> fixed-decimal string (vectorised)."""
    v = pl.col(col).cast(pl.Int64) * scale
    if decimals == 0:
        return v.cast(pl.Utf8)
    p = 10 ** decimals
    return pl.concat_str([(v // p).cast(pl.Utf8), pl.lit("."), (v % p).cast(pl.Utf8).str.zfill(decimals)])


def _fmt(n: int, scale: int, decimals: int) -> str:
    """One integer count -> fixed-decimal string (same as :func:`_dec_expr`)."""
    v = n * scale
    return str(v) if decimals == 0 else f"{v // 10**decimals}.{v % 10**decimals:0{decimals}d}"
