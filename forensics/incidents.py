"""Cross-venue incidents: events of one underlying asset on several venues, who pulled first,
and how the vacuum spread (``forensics incidents``).

Pipeline (reads ``events``, ``book_updates``/``trades``/``depth_bands``, ``level_changes`` and
``depth`` written by ``forensics detect``; writes ``incidents``):

1. **Asset** of every instrument (:func:`asset_of`): an explicit table (``XBTUSD`` -> BTC, ...),
   else the symbol without contract suffixes (``-SWAP``, ``-PERP``, ``-PERPETUAL``, ``_PERP``,
   ``PERP``, dated ``_YYMMDD``), separators and a quote asset (:data:`QUOTE_ASSETS`, longest
   first): ``BTCUSDT``, ``BTC-USDT-SWAP``, ``BTC-USD``, ``BTC-PERP``, ``BTC`` are all BTC. A
   mapping file (:func:`load_mapping`, TOML or JSON) adds or overrides entries.
2. **Venue clock** (:func:`clock_profile`), measured in the ``PROFILE_BEFORE_S`` /
   ``PROFILE_AFTER_S`` around each event:

   * ``batch_ms``: the venue's batching interval, the median step between distinct book
     timestamps (band-only venues: between band samples). A change stamped at a batch time
     happened within the batch before it: ``-batch/2 +- batch/2``. For band samples the fall
     lies between the last sample before it and the next one: the middle of that bracket,
     +- half of it.
   * ``offset_ms`` / ``clock_ms``: where receive times (``local_ts``) exist, the median of
     ``local_ts - ts`` moves the venue's exchange clock onto the recorder's clock (every venue
     recorded by one machine then shares one clock); what stays unknown is the latency
     dispersion, ``clock_ms`` = median - 1st percentile of ``local_ts - ts``. Without receive
     times the exchange clock is taken as is, with ``clock_ms`` = :data:`UNSYNCED_CLOCK_MS`.
     The constant part of a venue's one-way latency cannot be seen in the data (it is the
     same for every venue only if they were recorded from one place).
   * ``skew_ms``: the trade stream against the book stream, each print matched to the nearest
     book decrease at its price and side within ``SKEW_MATCH_MS``: |median(book ts - trade ts)
     - batch/2| (the part batching does not explain). Null (0 in the sum) without trades.

   An event's time (``onset_ts``) is the middle of its 10%->90% fall (``start_ts``..``end_ts``)
   less half a batch, on the common clock. A venue's timing uncertainty is the root sum of
   squares of its terms (half the batch, ``clock_ms``, ``skew_ms``) and the fall's own spread,
   ``onset_ms`` = :data:`ONSET_FRAC` x the 10%->90% time; a pair's lag uncertainty is the root
   sum of squares of both venues'.
3. **Grouping**: events (labels in :data:`GROUPED_LABELS`) of one asset whose onsets (on the
   common clock) follow each other within ``window_s`` (default :data:`DEFAULT_WINDOW_S`)
   form one incident. A venue appears once per incident (its earliest event; later ones are
   counted in ``n_events``). Venues of the asset whose data covers the incident but had no
   event get a row with ``relation='none'``.
4. **Lag**: ``lag_ms`` = onset - the earliest onset; ``lag_uncertainty_ms`` as above;
   ``relation``: ``first`` (the earliest), ``simultaneous`` (``lag_ms <= lag_uncertainty_ms``:
   the order cannot be told), ``later``, ``none``.
5. **Depth in a common unit** at band ``band_pct`` (default :data:`COMMON_BAND_PCT`) of mid,
   from the ``depth`` table: depth before = the last grid sample before the onset, after = the
   minimum over the ``REMOVED_HORIZON_S`` after it; removed per side in base units and quote
   notional. Contracts are converted with :func:`contract_of` (base units per contract for
   linear contracts, quote units per contract for inverse ones; defaults in
   :data:`DEFAULT_CONTRACTS`, file entries override).

``incidents`` rows (one per incident x venue; partitioned by the venue's exchange/symbol and
the date of the incident's first onset) are listed in :data:`INCIDENT_SCHEMA` and the README.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from forensics.errors import ForensicsError
from forensics.schema import TABLES
from forensics.store import Store, read_part
from forensics.vocab import Label
from forensics.timeutil import NS_PER_MS, NS_PER_S


# ---- thresholds (one home each) -----------------------------------------------------------------
#: events whose onsets follow each other within this chain into one incident: makers on other
#: venues react to a shock within seconds (arbitrage and hedging latency), not minutes
DEFAULT_WINDOW_S = 5.0
#: an exchange clock without receive times to check it against: NTP-disciplined servers stay
#: within tens of ms of UTC; nothing in such data bounds the error better
UNSYNCED_CLOCK_MS = 50.0
#: a fall's time is the middle of its 10%->90% span, +- this fraction of the span: makers do not
#: pull in one millisecond, and which part of a slow fall is "the pull" cannot be told (the 10%
#: crossing alone ran up to 800 ms ahead of the simulator's first pull when depth sagged first)
ONSET_FRAC = 0.5
#: a print and the book decrease it caused are matched within this distance
SKEW_MATCH_MS = 1000
#: the clock profile of a venue is measured over this span around an event
PROFILE_BEFORE_S, PROFILE_AFTER_S = 120.0, 60.0
#: depth removed: minimum over this horizon after the onset against the depth just before it
REMOVED_HORIZON_S = 5.0
#: the band (% of mid) in which depth is compared across venues (detect computes 0.1..5)
COMMON_BAND_PCT = 1.0
#: labels that group into incidents (flicker and data anomalies are not vacuums)
GROUPED_LABELS = tuple(m.value for m in Label.grouped())
#: labels the finding sentence calls a pull; a ``depth_collapse`` (no trade data: cause
#: undetermined) is only "lost depth", never a pull
PULL_LABELS = tuple(m.value for m in Label.pulls())

QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDE", "USD", "EUR", "DAI")
#: symbols the suffix rules cannot read
DEFAULT_ASSETS = {"XBTUSD": "BTC", "XBTUSDT": "BTC", "XBTUSDC": "BTC", "XBT": "BTC", "PI_XBTUSD": "BTC",
                  "PF_XBTUSD": "BTC", "XBT/USD": "BTC", "XBT/USDT": "BTC"}
_ALIASES = {"XBT": "BTC"}
_SUFFIX = re.compile(r"(?i)([-_]?(SWAP|PERPETUAL|PERP)|[-_]\d{6}|[-_]?\d{2}[A-Z]{3}\d{2})$")


@dataclass(frozen=True)
class Contract:
    """Size unit of an instrument: ``base`` units of the asset per contract (linear) or
    ``quote`` units per contract (inverse). Spot and most linear perps: base = 1."""

    base: float | None = 1.0
    quote: float | None = None

    def to_base_quote(self, amount: float, notional: float) -> tuple[float, float]:
        """(base, quote) of ``amount`` contracts whose notional (sum price x amount) is given."""
        if self.quote is not None:
            q = amount * self.quote
            vwap = notional / amount if amount else float("nan")
            return (q / vwap if vwap and vwap == vwap else 0.0), q
        return amount * self.base, notional * self.base


#: exchange/symbol -> contract (documented venue specs; a mapping file overrides)
DEFAULT_CONTRACTS: dict[str, Contract] = {
    "okx-swap/BTC-USDT-SWAP": Contract(base=0.01), "okx-swap/ETH-USDT-SWAP": Contract(base=0.1),
    "okx-swap/SOL-USDT-SWAP": Contract(base=1.0), "okx-swap/BTC-USDC-SWAP": Contract(base=0.0001),
    "okx-swap/BTC-USD-SWAP": Contract(base=None, quote=100.0), "okx-swap/ETH-USD-SWAP": Contract(base=None, quote=10.0),
    "binance-delivery/BTCUSD_PERP": Contract(base=None, quote=100.0),
    "binance-delivery/ETHUSD_PERP": Contract(base=None, quote=10.0),
    "bitmex/XBTUSD": Contract(base=None, quote=1.0),
    "deribit/BTC-PERPETUAL": Contract(base=None, quote=1.0),  # Deribit amounts are USD
    "deribit/ETH-PERPETUAL": Contract(base=None, quote=1.0),
}


@dataclass
class Mapping:
    """Instrument -> asset and contract, with the file entries on top of the defaults."""

    assets: dict[str, str] = field(default_factory=dict)        # "exchange/symbol" or "symbol" -> asset
    contracts: dict[str, Contract] = field(default_factory=dict)  # "exchange/symbol" or "symbol"
    source: str | None = None

    def asset(self, exchange: str, symbol: str) -> str:
        for key in (f"{exchange}/{symbol}", symbol, symbol.upper()):
            if key in self.assets:
                return self.assets[key]
        return asset_of(symbol)

    def contract(self, exchange: str, symbol: str) -> Contract:
        for key in (f"{exchange}/{symbol}", symbol):
            if key in self.contracts:
                return self.contracts[key]
        return contract_of(exchange, symbol)


def asset_of(symbol: str) -> str:
    """The underlying asset of a symbol by the default rules (see the module docstring)."""
    s = symbol.strip().upper()
    if s in DEFAULT_ASSETS:
        return DEFAULT_ASSETS[s]
    s = _SUFFIX.sub("", s)
    s = re.sub(r"^(PI|PF)_", "", s)
    parts = [p for p in re.split(r"[-_/:]", s) if p]
    if len(parts) >= 2 and parts[1] in QUOTE_ASSETS:
        base = parts[0]
    else:
        base = "".join(parts)
        for q in sorted(QUOTE_ASSETS, key=len, reverse=True):
            if base.endswith(q) and len(base) > len(q):
                base = base[: -len(q)]
                break
    return _ALIASES.get(base, base)


def contract_of(exchange: str, symbol: str) -> Contract:
    return DEFAULT_CONTRACTS.get(f"{exchange}/{symbol}", Contract())


def _line_of(text: str, key: str) -> int:
    """1-based line where ``key`` first appears as a key in ``text`` (0 if not found)."""
    pat = re.compile(r'^\s*(["\']?)' + re.escape(key) + r'\1\s*[:=]|["\']' + re.escape(key) + r'["\']\s*:')
    for i, line in enumerate(text.splitlines(), 1):
        if pat.search(line):
            return i
    return 0


def load_mapping(path: str | Path | None) -> Mapping:
    """Read a mapping file (TOML or JSON by suffix; JSON if the suffix is neither)::

        [assets]                       # instrument -> asset ("exchange/symbol" or "symbol")
        "binance-futures/BTCUSDT" = "BTC"
        "kraken/XBT/EUR" = "BTC"
        [contracts]                    # base units per contract, or {quote = N} for inverse
        "okx-swap/BTC-USDT-SWAP" = 0.01
        "binance-delivery/BTCUSD_PERP" = { quote = 100 }

    Errors name the file and line."""
    if path is None:
        return Mapping()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ForensicsError(f"{p}: cannot read the mapping file: {exc.strerror or exc}") from None
    if p.suffix.lower() == ".toml":
        import tomllib
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            raise ForensicsError(f"{p}:{m.group(1) if m else '?'}: invalid TOML: {exc}") from None
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ForensicsError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None

    def err(key: str, what: str) -> ForensicsError:
        return ForensicsError(f"{p}:{_line_of(text, key) or '?'}: {what}")

    if not isinstance(doc, dict):
        raise ForensicsError(f"{p}:1: the mapping must be a table/object with 'assets' and/or 'contracts'")
    for k in doc:
        if k not in ("assets", "contracts"):
            raise err(k, f"unknown section {k!r} (expected 'assets' and/or 'contracts')")
    out = Mapping(source=str(p))
    assets = doc.get("assets", {})
    if not isinstance(assets, dict):
        raise err("assets", "'assets' must map instrument -> asset name")
    for k, v in assets.items():
        if not isinstance(v, str) or not v.strip():
            raise err(k, f"asset of {k!r} must be a non-empty text, got {v!r}")
        out.assets[str(k)] = v.strip().upper()
    contracts = doc.get("contracts", {})
    if not isinstance(contracts, dict):
        raise err("contracts", "'contracts' must map instrument -> contract size")
    for k, v in contracts.items():
        if isinstance(v, bool):
            raise err(k, f"contract size of {k!r} must be a positive number, got {v!r}")
        if isinstance(v, (int, float)):
            if not v > 0 or not math.isfinite(v):
                raise err(k, f"contract size of {k!r} must be a positive number, got {v!r}")
            out.contracts[str(k)] = Contract(base=float(v))
        elif isinstance(v, dict) and set(v) <= {"base", "quote"} and len(v) == 1:
            (kind, x), = v.items()
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not x > 0:
                raise err(k, f"contract size of {k!r} must be a positive number, got {x!r}")
            out.contracts[str(k)] = Contract(base=float(x)) if kind == "base" else Contract(base=None, quote=float(x))
        else:
            raise err(k, f"contract of {k!r} must be a number (base per contract) or {{quote = N}} / "
                         f"{{base = N}}, got {v!r}")
    return out


# ---- venue clocks -------------------------------------------------------------------------------

@dataclass
class Clock:
    """Timing of one venue around one time (ms)."""

    data_kind: str                 # 'book' | 'bands'
    batch_ms: float | None         # batching (book) / sampling (bands) interval
    offset_ms: float               # receive clock - exchange clock (0 without receive times)
    clock_ms: float                # what stays unknown of the clock alignment
    skew_ms: float | None          # trade stream vs book stream beyond batching
    has_local: bool


def _median_step(ts: pl.Series) -> float | None:
    u = ts.unique().sort()
    if u.len() < 2:
        return None
    return float(u.diff().drop_nulls().median()) / NS_PER_MS


def clock_profile(store: Store, ex: str, sy: str, around_ns: int) -> Clock:
    """The venue's timing terms measured around ``around_ns`` (see the module docstring)."""
    lo, hi = around_ns - int(PROFILE_BEFORE_S * NS_PER_S), around_ns + int(PROFILE_AFTER_S * NS_PER_S)
    if store.files("book_updates", ex, sy, lo, hi):
        book = store.scan("book_updates", ex, sy, lo, hi).select("ts", "local_ts", "is_snapshot").collect()
        if book.height:
            batch = _median_step(book.filter(~pl.col("is_snapshot"))["ts"])
            d = book.filter(pl.col("local_ts").is_not_null()).select((pl.col("local_ts") - pl.col("ts")).alias("d"))["d"]
            has_local = d.len() > 0
            if has_local:
                off = float(d.median()) / NS_PER_MS
                clk = max(0.0, off - float(d.quantile(0.01, "lower")) / NS_PER_MS)
            else:
                off, clk = 0.0, UNSYNCED_CLOCK_MS
            return Clock("book", batch, off, clk, _trade_skew(store, ex, sy, lo, hi, batch or 0.0), has_local)
    bands = store.scan("depth_bands", ex, sy, lo, hi).select("ts").collect()
    return Clock("bands", _median_step(bands["ts"]) if bands.height else None, 0.0, UNSYNCED_CLOCK_MS, None, False)


def _trade_skew(store: Store, ex: str, sy: str, lo: int, hi: int, batch_ms: float) -> float | None:
    """|median(book decrease ts - trade ts) - batch/2| over prints matched by price and side."""
    trades = (store.scan("trades", ex, sy, lo, hi).filter(pl.col("aggressor").is_not_null())
              .select("ts", "price", pl.when(pl.col("aggressor") == "sell").then(pl.lit("bid"))
                      .otherwise(pl.lit("ask")).alias("side")).collect())
    if trades.height == 0 or not store.files("level_changes", ex, sy, lo, hi):
        return None
    lc = (store.scan("level_changes", ex, sy, lo, hi).filter(pl.col("delta") < 0)
          .select(pl.col("ts").alias("book_ts"), "price", "side").collect())
    if lc.height == 0:
        return None
    m = (trades.sort("ts").join_asof(lc.sort("book_ts"), left_on="ts", right_on="book_ts", by=["side", "price"],
                                     strategy="nearest", tolerance=SKEW_MATCH_MS * NS_PER_MS,
                                     check_sortedness=False)
         .filter(pl.col("book_ts").is_not_null()))
    if m.height == 0:
        return None
    med = float((m["book_ts"] - m["ts"]).median()) / NS_PER_MS
    return abs(med - batch_ms / 2)


# ---- events -> incidents -------------------------------------------------------------------------

#: stored columns of ``incidents`` (schema.TABLES; partition columns exchange/symbol/date aside)
INCIDENT_SCHEMA: dict[str, pl.DataType] = dict(TABLES["incidents"])


def _venues(store: Store) -> list[tuple[str, str]]:
    return sorted(set(store.instruments_in("book_updates")) | set(store.instruments_in("depth_bands")))


def load_events(store: Store, ts_from: int | None = None, ts_to: int | None = None) -> pl.DataFrame:
    """Every stored event (exchange, symbol + stored columns) with a start in the range."""
    frames = []
    for ex, sy in store.instruments_in("events"):
        df = store.scan("events", ex, sy, ts_from, ts_to, ts_column="start_ts").collect()
        if df.height:
            frames.append(df.select(pl.lit(ex).alias("exchange"), pl.lit(sy).alias("symbol"), pl.all()))
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed")


def _ts_range(store: Store, ex: str, sy: str) -> tuple[int | None, int | None]:
    """First and last ``ts`` of a venue's raw data, from the Parquet footers."""
    lo = hi = None
    for table in ("book_updates", "depth_bands"):
        for f in store.files(table, ex, sy):
            meta = store.parquet_file(f).metadata
            names = [meta.schema.column(i).name for i in range(meta.num_columns)]
            if "ts" not in names:
                continue
            j = names.index("ts")
            for g in range(meta.num_row_groups):
                st = meta.row_group(g).column(j).statistics
                if st is None or not st.has_min_max:
                    col = read_part(f, columns=["ts"])["ts"]
                    a, b = col.min(), col.max()
                else:
                    a, b = st.min, st.max
                if a is not None:
                    lo = a if lo is None else min(lo, a)
                    hi = b if hi is None else max(hi, b)
    return lo, hi


def _onsets(ev: pl.DataFrame, clocks: dict, store: Store) -> pl.DataFrame:
    """Per event: onset on the common clock, its half-width and the venue timing terms."""
    rows = []
    for r in ev.select("exchange", "symbol", "event_id", "start_ts", "end_ts", "speed_ms").iter_rows(named=True):
        c: Clock = clocks[(r["exchange"], r["symbol"], r["event_id"])]
        if c.data_kind == "bands":
            nxt = (store.scan("depth_bands", r["exchange"], r["symbol"], r["start_ts"] + 1, None)
                   .select(pl.col("ts").min()).collect().item())
            nxt = nxt if nxt is not None else r["end_ts"]
            half = (nxt - r["start_ts"]) / 2 / NS_PER_MS
            onset = r["start_ts"] + (nxt - r["start_ts"]) // 2
            onset_ms = 0.0  # the fall's shape is invisible inside one sample step
        else:
            half = (c.batch_ms or 0.0) / 2
            fall = max(0, (r["end_ts"] or r["start_ts"]) - r["start_ts"])
            onset = r["start_ts"] + fall // 2 - int(half * NS_PER_MS)
            onset_ms = ONSET_FRAC * fall / NS_PER_MS
        onset += int(round(c.offset_ms * NS_PER_MS))
        unc = math.sqrt(half ** 2 + c.clock_ms ** 2 + (c.skew_ms or 0.0) ** 2 + onset_ms ** 2)
        rows.append({"event_id": r["event_id"], "exchange": r["exchange"], "symbol": r["symbol"],
                     "onset_ts": int(onset), "timing_uncertainty_ms": unc, "batch_ms": c.batch_ms,
                     "clock_offset_ms": c.offset_ms, "clock_ms": c.clock_ms, "skew_ms": c.skew_ms,
                     "onset_ms": onset_ms, "data_kind": c.data_kind})
    return pl.DataFrame(rows, schema_overrides={"batch_ms": pl.Float64, "skew_ms": pl.Float64})


def group_onsets(on: pl.DataFrame, window_s: float) -> pl.DataFrame:
    """Assign ``incident`` numbers: per asset, onsets sorted, a gap > window starts a new one.

    Pure (columns ``asset``, ``onset_ts``, ``exchange``, ``symbol``); adds ``incident`` (0-based
    per frame) and ``rank`` (1 = the venue's earliest event in the incident)."""
    w = int(window_s * NS_PER_S)
    on = on.sort("asset", "onset_ts", "exchange", "symbol")
    brk = ((pl.col("onset_ts").diff().over("asset") > w) | pl.col("onset_ts").diff().over("asset").is_null())
    on = on.with_columns(brk.cum_sum().alias("incident") - 1)
    return on.with_columns(pl.col("onset_ts").rank("ordinal").over("incident", "exchange", "symbol").alias("rank"))


def lag_table(g: pl.DataFrame) -> pl.DataFrame:
    """Within each incident (one row per venue, ``onset_ts``, ``timing_uncertainty_ms``):
    ``lag_ms``, ``lag_uncertainty_ms``, ``first`` and ``relation``. Pure.

    The reference ("first") venue is the one whose onset + uncertainty is earliest: the venue
    that had certainly pulled soonest. With venues of equal precision that is simply the
    earliest onset; a coarse venue (band samples) whose onset happens to come earlier does not
    become the yardstick of everyone else, it is reported as ``simultaneous`` with a negative
    lag. ``relation``: ``first``; ``simultaneous`` when |lag| <= its uncertainty (the order
    cannot be told); ``later``."""
    g = g.sort("incident", "onset_ts", "exchange", "symbol")
    key = pl.col("onset_ts") + (pl.col("timing_uncertainty_ms") * NS_PER_MS).round(0).cast(pl.Int64)
    is_first = key.rank("ordinal").over("incident") == 1
    g = g.with_columns(is_first.alias("first"))
    ref_on = pl.col("onset_ts").filter(pl.col("first")).first().over("incident")
    ref_u = pl.col("timing_uncertainty_ms").filter(pl.col("first")).first().over("incident")
    g = g.with_columns(((pl.col("onset_ts") - ref_on) / NS_PER_MS).alias("lag_ms"),
                       pl.when(pl.col("first")).then(pl.col("timing_uncertainty_ms"))
                       .otherwise((pl.col("timing_uncertainty_ms") ** 2 + ref_u ** 2).sqrt())
                       .alias("lag_uncertainty_ms"))
    return g.with_columns(pl.when(pl.col("first")).then(pl.lit("first"))
                          .when(pl.col("lag_ms").abs() <= pl.col("lag_uncertainty_ms")).then(pl.lit("simultaneous"))
                          .otherwise(pl.lit("later")).alias("relation"))


def _depth_removed(store: Store, ex: str, sy: str, at_ns: int, band: float, ct: Contract) -> dict:
    """Depth within ``band`` % before ``at_ns`` (venue clock) and removed over the horizon."""
    lo, hi = at_ns - 60 * NS_PER_S, at_ns + int(REMOVED_HORIZON_S * NS_PER_S)
    d = store.scan("depth", ex, sy, lo, hi).filter(pl.col("band_pct") == band).collect()
    out = {"band_pct": band}
    if d.height == 0:
        bands = store.scan("depth", ex, sy, lo, hi).select("band_pct").unique().collect()["band_pct"].sort()
        if bands.len() == 0:
            return out
        band = float(bands[int(np.argmin(np.abs(bands.to_numpy() - band)))])
        d = store.scan("depth", ex, sy, lo, hi).filter(pl.col("band_pct") == band).collect()
        out["band_pct"] = band
    inst = store.instrument(ex, sy)
    lot = 10.0 ** -(inst.size_decimals if inst else 0)
    tot_b = tot_q = before_b = 0.0
    for side in ("bid", "ask"):
        s = d.filter((pl.col("side") == side) & pl.col("qty").is_not_null()).sort("ts")
        pre = s.filter(pl.col("ts") < at_ns).tail(1)
        post = s.filter(pl.col("ts") >= at_ns)
        if pre.height == 0 or post.height == 0:
            continue
        q0, n0 = float(pre["qty"][0]) * lot, float(pre["notional"][0] or 0.0)
        k = int(post["qty"].arg_min())
        q1, n1 = float(post["qty"][k]) * lot, float(post["notional"][k] or 0.0)
        b0, v0 = ct.to_base_quote(q0, n0)
        b1, v1 = ct.to_base_quote(q1, n1)
        rb, rq = max(0.0, b0 - b1), max(0.0, v0 - v1)
        out[f"removed_{side}_base"], out[f"removed_{side}_quote"] = rb, rq
        tot_b, tot_q, before_b = tot_b + rb, tot_q + rq, before_b + b0
    if any(k.startswith("removed_") for k in out):
        out.update(removed_base=tot_b, removed_quote=tot_q, depth_before_base=before_b)
    return out


def build_incidents(store: Store | str | None = None, window_s: float = DEFAULT_WINDOW_S,
                    mapping: Mapping | str | Path | None = None, ts_from: int | None = None,
                    ts_to: int | None = None, band_pct: float = COMMON_BAND_PCT, write: bool = True,
                    asset: str | None = None) -> pl.DataFrame:
    """Group stored events into cross-venue incidents (see the module docstring); returns the
    ``incidents`` rows (exchange, symbol + :data:`INCIDENT_SCHEMA`) and, with ``write``, replaces
    the stored ``incidents`` in the range (all of them without a range)."""
    store = store if isinstance(store, Store) else Store(store)
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping)
    if window_s is None or not window_s > 0:
        raise ForensicsError("--window must be a positive duration, e.g. 5s")
    venues = _venues(store)
    if not venues:
        raise ForensicsError(f"no level or band data in {store.root}; ingest data and run `forensics detect` first")
    ev = _grouped_events(store, mapping, ts_from, ts_to, asset)
    if ev.height == 0:
        out = _empty()
    else:
        g, clocks = _venue_onsets(store, ev, window_s)
        g = _name_incidents(_add_quiet_venues(store, g, venues, mapping))
        out = _incident_rows(_with_depth_removed(store, g, clocks, mapping, band_pct))
    if write:
        _write(store, out, ts_from, ts_to)
    return out


def _grouped_events(store: Store, mapping: Mapping, ts_from: int | None, ts_to: int | None,
                    asset: str | None) -> pl.DataFrame:
    """The stored events with a label that groups into incidents, each with its venue's asset
    (only ``asset``'s when given)."""
    ev = load_events(store, ts_from, ts_to)
    if ev.height and "label" in ev.columns:
        ev = ev.filter(pl.col("label").is_in(GROUPED_LABELS))
    if ev.height:
        pairs = ev.select("exchange", "symbol").unique()
        pairs = pairs.with_columns(pl.Series("asset", [mapping.asset(e, s) for e, s in pairs.iter_rows()],
                                             pl.Utf8))
        ev = ev.join(pairs, on=["exchange", "symbol"], how="left")
        if asset:
            ev = ev.filter(pl.col("asset") == asset.upper())
    return ev


def _venue_onsets(store: Store, ev: pl.DataFrame, window_s: float) -> tuple[pl.DataFrame, dict]:
    """Each event's clock-corrected onset, grouped into incidents (``window_s`` apart at most),
    one row per incident and venue (its first event) with the lag to the first venue; and the
    clock profiles by (exchange, symbol, event_id)."""
    clocks = {(r["exchange"], r["symbol"], r["event_id"]): clock_profile(store, r["exchange"], r["symbol"], r["start_ts"])
              for r in ev.select("exchange", "symbol", "event_id", "start_ts").iter_rows(named=True)}
    on = _onsets(ev, clocks, store).join(
        ev.select("event_id", "exchange", "symbol", "asset", "start_ts", "label", "sides", "band_pct",
                  "removed_frac", pl.col("traded_share_net").alias("traded_share") if "traded_share_net" in ev.columns
                  else pl.lit(None, pl.Float64).alias("traded_share")),
        on=["event_id", "exchange", "symbol"], how="left")
    on = group_onsets(on, window_s)
    counts = on.group_by("incident", "exchange", "symbol").len("n_events")
    g = on.filter(pl.col("rank") == 1).join(counts, on=["incident", "exchange", "symbol"], how="left")
    g = lag_table(g).rename({"band_pct": "event_band_pct"})
    return g, clocks


def _add_quiet_venues(store: Store, g: pl.DataFrame, venues, mapping: Mapping) -> pl.DataFrame:
    """Venues of the asset whose data covers the incident but which had no event (relation 'none')."""
    ranges = {v: _ts_range(store, *v) for v in venues}
    extra = []
    for inc in g.select("incident", "asset", "onset_ts").group_by("incident", "asset").agg(
            pl.col("onset_ts").min()).iter_rows(named=True):
        have = set(g.filter(pl.col("incident") == inc["incident"]).select("exchange", "symbol").iter_rows())
        for ex, sy in venues:
            if (ex, sy) in have or mapping.asset(ex, sy) != inc["asset"]:
                continue
            lo, hi = ranges[(ex, sy)]
            if lo is not None and lo <= inc["onset_ts"] <= hi:
                extra.append({"incident": inc["incident"], "asset": inc["asset"], "exchange": ex, "symbol": sy,
                              "relation": "none", "first": False, "n_events": 0})
    if extra:
        g = pl.concat([g, pl.DataFrame(extra)], how="diagonal_relaxed")
    return g


def _name_incidents(g: pl.DataFrame) -> pl.DataFrame:
    """Incident id (asset + first onset), first onset (``_t0``) and number of venues with an event."""
    firsts = g.filter(pl.col("first")).select("incident", pl.col("onset_ts").alias("_t0"), "asset")
    g = g.join(firsts.select("incident", "_t0"), on="incident", how="left")
    g = g.with_columns((pl.col("asset") + "-" + pl.from_epoch("_t0", "ns").dt.strftime("%Y%m%dT%H%M%S%.3fZ"))
                       .alias("incident_id"),
                       pl.col("event_id").is_not_null().sum().over("incident").alias("n_venues"))
    return g


def _with_depth_removed(store: Store, g: pl.DataFrame, clocks: dict, mapping: Mapping,
                        band_pct: float) -> pl.DataFrame:
    """Depth removed in the common band at each venue's (clock-corrected) onset, in the
    contract's base and quote, and each venue's share of the incident's removed notional."""
    dep = []
    for r in g.iter_rows(named=True):
        ct = mapping.contract(r["exchange"], r["symbol"])
        prof = clocks.get((r["exchange"], r["symbol"], r.get("event_id")))
        off = prof.offset_ms if prof else _offset_only(store, r["exchange"], r["symbol"], r["_t0"])
        at = (r["onset_ts"] if r.get("onset_ts") is not None else r["_t0"]) - int(round(off * NS_PER_MS))
        d = _depth_removed(store, r["exchange"], r["symbol"], at, band_pct, ct)
        dep.append({"incident": r["incident"], "exchange": r["exchange"], "symbol": r["symbol"],
                    "contract_base": ct.base, "contract_quote": ct.quote, "_off": off, **d})
    dep_df = pl.DataFrame(dep, infer_schema_length=None)
    g = g.join(dep_df, on=["incident", "exchange", "symbol"], how="left")
    g = g.with_columns(pl.coalesce("clock_offset_ms", "_off").alias("clock_offset_ms")) \
        if "clock_offset_ms" in g.columns else g.with_columns(pl.col("_off").alias("clock_offset_ms"))
    for c in ("removed_bid_base", "removed_ask_base", "removed_base", "removed_bid_quote", "removed_ask_quote",
              "removed_quote", "depth_before_base"):
        if c not in g.columns:
            g = g.with_columns(pl.lit(None, pl.Float64).alias(c))
    g = g.with_columns((pl.col("removed_quote") / pl.col("removed_quote").sum().over("incident")).alias("removed_share"))
    return g


def _incident_rows(g: pl.DataFrame) -> pl.DataFrame:
    """The ``incidents`` rows in :data:`INCIDENT_SCHEMA` order, by incident then onset."""
    out = g.sort("_t0", "incident", pl.col("onset_ts").fill_null(2**62), "exchange", "symbol")
    out = out.select(pl.col("exchange"), pl.col("symbol"),
                     *[pl.col(c).cast(t) if c in out.columns else pl.lit(None, t).alias(c)
                       for c, t in INCIDENT_SCHEMA.items()])
    # start_ts: the venue event's start; a venue without an event takes the incident's first time
    out = out.with_columns(pl.col("start_ts").fill_null(pl.col("onset_ts").min().over("incident_id")))
    return out


def _offset_only(store: Store, ex: str, sy: str, around_ns: int) -> float:
    return clock_profile(store, ex, sy, around_ns).offset_ms


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={"exchange": pl.Utf8, "symbol": pl.Utf8, **INCIDENT_SCHEMA})


def _write(store: Store, df: pl.DataFrame, lo: int | None, hi: int | None) -> None:
    """Replace the stored incidents in [lo, hi] (all without a range); partitioned by venue and
    the date of ``start_ts``. New parts are written (atomically, file by file) before the parts
    they replace are removed, so a reader never sees an instrument's incidents missing."""
    with store.lock():
        old_files = [f for ex, sy in store.instruments_in("incidents") for f in store.files("incidents", ex, sy)]
        keep = []
        if lo is not None or hi is not None:
            for f in old_files:
                old = read_part(f)
                m = pl.lit(False)
                if lo is not None:
                    m = m | (pl.col("start_ts") < lo)
                if hi is not None:
                    m = m | (pl.col("start_ts") > hi)
                kept = old.filter(m)
                if kept.height:
                    ex = f.parents[2].name.split("=", 1)[1]
                    sy = f.parents[1].name.split("=", 1)[1]
                    keep.append(kept.select(pl.lit(ex).alias("exchange"), pl.lit(sy).alias("symbol"), pl.all()))
        all_ = pl.concat([*keep, df], how="diagonal_relaxed") if keep else df
        written = set()
        for (ex, sy), part in all_.group_by(["exchange", "symbol"], maintain_order=True):
            part = part.drop("exchange", "symbol").select(list(INCIDENT_SCHEMA))
            written |= set(store.write_partitioned("incidents", part, ex, sy, "incidents", ts_column="start_ts"))
        for f in old_files:
            if f not in written and f.exists():
                f.unlink()


def read_incidents(store: Store | str | None = None) -> pl.DataFrame:
    """Stored incidents, every venue, in time order."""
    store = store if isinstance(store, Store) else Store(store)
    frames = []
    for ex, sy in store.instruments_in("incidents"):
        df = store.scan("incidents", ex, sy, ts_column="start_ts").collect()
        frames.append(df.select(pl.lit(ex).alias("exchange"), pl.lit(sy).alias("symbol"), pl.all()))
    if not frames:
        return _empty()
    df = pl.concat(frames, how="diagonal_relaxed")
    return df.sort("start_ts", "incident_id", pl.col("onset_ts").fill_null(2**62), "exchange", "symbol")


def select_incident(df: pl.DataFrame, ident: str | int | None) -> pl.DataFrame:
    """Rows of one incident: by id text, or by number (1 = the earliest); None = the only one."""
    ids = df.select("incident_id", "start_ts").group_by("incident_id").agg(pl.col("start_ts").min()) \
        .sort("start_ts", "incident_id")["incident_id"].to_list()
    if not ids:
        raise ForensicsError("no incidents stored; run `forensics incidents` after `forensics detect`")
    if ident is None:
        if len(ids) > 1:
            raise ForensicsError(f"{len(ids)} incidents, choose one with --id: "
                                 + ", ".join(f"{i + 1}={x}" for i, x in enumerate(ids[:20])))
        key = ids[0]
    elif str(ident).isdigit() and str(ident) not in ids:
        n = int(ident)
        if not 1 <= n <= len(ids):
            raise ForensicsError(f"--id {n}: there are {len(ids)} incident(s) (1..{len(ids)})")
        key = ids[n - 1]
    else:
        if str(ident) not in ids:
            raise ForensicsError(f"no incident {ident!r}; known: " + ", ".join(ids[:20]))
        key = str(ident)
    return df.filter(pl.col("incident_id") == key)


def _venue(r: dict) -> str:
    return f"{r['exchange']} {r['symbol']}"


def finding(rows: pl.DataFrame) -> str:
    """One sentence from an incident's rows: who pulled first, who followed when, who did not."""
    rows = rows.sort(pl.col("onset_ts").fill_null(2**62), "exchange", "symbol")
    ev = [r for r in rows.iter_rows(named=True) if r["event_id"] is not None]
    none = [r for r in rows.iter_rows(named=True) if r["event_id"] is None]
    if not ev:
        return "no venue had an event"

    def verb(r):
        return "pulled" if r["label"] in PULL_LABELS else f"lost depth ({(r['label'] or 'unlabelled').replace('_', ' ')})"

    first = next((r for r in ev if r["first"]), ev[0])
    sim = [r for r in ev if r["relation"] == "simultaneous"]
    later = [r for r in ev if r["relation"] == "later"]
    if sim:
        names = ", ".join(_venue(r) for r in [first, *sim])
        u = max(r["lag_uncertainty_ms"] for r in sim)
        lag = max(abs(r["lag_ms"]) for r in sim)
        head = (f"makers on {names} {verb(first)} at the same time within the clock uncertainty "
                f"({lag:.0f} ms apart, +-{u:.0f} ms): which of them was first cannot be told")
    else:
        head = f"makers on {_venue(first)} {verb(first)} first"
        if len(ev) == 1:
            head += " (the only venue with an event)"
    parts = [head]
    for r in later:
        parts.append(f"{_venue(r)} followed {r['lag_ms']:.0f} +-{r['lag_uncertainty_ms']:.0f} ms later"
                     + ("" if r["label"] in PULL_LABELS else f" ({verb(r)})"))
    if none:
        parts.append(", ".join(_venue(r) for r in none) + " did not pull")
    s = ", ".join(parts)
    return s[0].upper() + s[1:] + "."


def summary(df: pl.DataFrame) -> list[dict]:
    """One dict per incident: id, asset, first venue, venues, finding."""
    out = []
    for (iid,), rows in df.group_by(["incident_id"], maintain_order=True):
        f = rows.filter(pl.col("first"))
        fr = f.row(0, named=True) if f.height else None
        out.append({"incident_id": iid, "asset": rows["asset"][0], "start_ts": int(rows["start_ts"].min()),
                    "first": _venue(fr) if fr else None, "venues": int(rows["event_id"].is_not_null().sum()),
                    "covered": rows.height, "finding": finding(rows)})
    return out
