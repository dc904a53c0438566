"""What a report needs, loaded in real units: :func:`load_context` reads one instrument's store
around a moment (or over a range) into a :class:`Context` (depth on a grid, top of book, trades,
level changes, the detector's events, band quality flags), computing whatever is missing
(``forensics.book.compute_depth``, ``forensics.attribution``, ``forensics.detect.detect``) and
recording where each frame came from (``provenance``). Also the small formatting helpers every
report module shares (SQL literals, ISO times, time-zone labels, asset names).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from forensics.errors import ForensicsError
from forensics.report.params import ReportParams
from forensics.store import Instrument, Store
from forensics.timeutil import NS_PER_MS, NS_PER_S, iso_utc, parse_time, tzinfo
from forensics.vocab import Cause, DataKind

#: the report's windows and thresholds, each with its reason: :class:`ReportParams`
DEFAULT_WINDOW_NS = int(ReportParams().window_s * NS_PER_S)
NICE_GRIDS_MS = (100, 200, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000)
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "EUR", "BTC", "ETH")


# ---- everything the report needs, in real units -----------------------------------------------

@dataclass
class Context:
    store: Store
    exchange: str
    symbol: str
    inst: Instrument | None
    tz: str
    at: int | None
    ts_from: int
    ts_to: int
    data_kind: DataKind                  # book (replayed levels) | bands
    grid_ns: int | None
    bands: list[float]
    depth: pl.DataFrame                  # ts, side, band_pct, qty (base units), notional
    top: pl.DataFrame                    # ts, best_bid, best_ask, mid, spread, valid (may be empty)
    price: pl.DataFrame                  # ts, price (mid, or last trade for band-only data)
    trades: pl.DataFrame                 # ts, seq, price, size, aggressor (window +- vacuum)
    changes: pl.DataFrame | None         # ts, side, price, traded, cancelled, added (levels only)
    events: pl.DataFrame                 # the detector's frame, verbatim, by start_ts
    gaps: pl.DataFrame                   # ts_from, ts_to, reason
    notes: list[str] = field(default_factory=list)       # caveats found while loading
    provenance: dict = field(default_factory=dict)       # table -> 'store' | 'computed' | ...
    flags: pl.DataFrame | None = None    # data-quality flags (forensics.depth_quality.FLAG_SCHEMA)
    trades_known: bool = True            # the store has trades for the window (else: cause unknown)
    price_source: str = ""               # what the price line is ('mid', 'last trade', 'band mid proxy')
    report: ReportParams = field(default_factory=ReportParams)   # windows and wording thresholds

    @property
    def base(self) -> str:
        return base_asset(self.symbol)

    @property
    def quote(self) -> str:
        return quote_asset(self.symbol)

    @property
    def where(self) -> str:
        """SQL predicate selecting this instrument in any view."""
        return f"exchange = {sql_str(self.exchange)} AND symbol = {sql_str(self.symbol)}"


def base_asset(symbol: str) -> str:
    s = symbol.upper().replace("-", "").replace("_", "").replace("/", "")
    for q in QUOTES:
        if s.endswith(q) and len(s) > len(q):
            return s[: -len(q)]
    return "base units"


def quote_asset(symbol: str) -> str:
    s = symbol.upper().replace("-", "").replace("_", "").replace("/", "")
    for q in QUOTES:
        if s.endswith(q) and len(s) > len(q):
            return q
    return "quote"


def sql_str(s) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def sql_ts(ns: int) -> str:
    """An exact TIMESTAMP_NS literal (UTC)."""
    t = dt.datetime.fromtimestamp(ns // NS_PER_S, tz=dt.timezone.utc)
    return f"TIMESTAMP_NS '{t:%Y-%m-%d %H:%M:%S}.{ns % NS_PER_S:09d}'"


def iso_ns(ns: int | None) -> str | None:
    """ISO-8601 UTC; milliseconds unless the value has sub-millisecond digits."""
    if ns is None:
        return None
    ns = int(ns)
    if ns % NS_PER_MS == 0:
        return iso_utc(ns)
    t = dt.datetime.fromtimestamp(ns // NS_PER_S, tz=dt.timezone.utc)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{ns % NS_PER_S:09d}Z"


def tz_offset_label(tz: str, ns: int) -> str:
    """'UTC+08:00' for Asia/Shanghai at that instant ('UTC' for UTC)."""
    t = dt.datetime.fromtimestamp(ns // NS_PER_S, tz=dt.timezone.utc).astimezone(tzinfo(tz))
    off = t.utcoffset() or dt.timedelta(0)
    if off == dt.timedelta(0):
        return "UTC"
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return f"UTC{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


def local_dt(ns: int, tz: str) -> dt.datetime:
    t = dt.datetime.fromtimestamp(ns // NS_PER_S, tz=dt.timezone.utc).replace(microsecond=(ns % NS_PER_S) // 1000)
    return t.astimezone(tzinfo(tz))


def nice_grid_ns(window_ns: int, max_points: int = 8000) -> int:
    """A round grid step (100 ms .. 60 s) giving at most ``max_points`` grid times."""
    for ms in NICE_GRIDS_MS:
        if window_ns / (ms * NS_PER_MS) <= max_points:
            return ms * NS_PER_MS
    return NICE_GRIDS_MS[-1] * NS_PER_MS


def _as_ns(value, tz: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=tzinfo(tz))
        return int(value.timestamp()) * NS_PER_S + value.microsecond * 1000
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return int(value)
    return parse_time(str(value), tz)


# ---- loading ------------------------------------------------------------------------------------

def _count(store: Store, table: str, ex: str, sy: str, a: int, b: int, ts_column: str = "ts") -> int:
    if not store.files(table, ex, sy, a, b):
        return 0
    return int(store.scan(table, ex, sy, a, b, ts_column=ts_column).select(pl.len()).collect().item())


def _count_level_depth(store: Store, ex: str, sy: str, a: int, b: int) -> int:
    """Rows of the derived ``depth`` table in [a, b] that were replayed from levels: depth that
    ``forensics detect``/``depth`` derived from ``depth_bands`` (``data_kind='bands'``) is band
    data, not level data (a null kind, from stores written before the column, counts as levels)."""
    if not store.files("depth", ex, sy, a, b):
        return 0
    lf = store.scan("depth", ex, sy, a, b)
    if "data_kind" in lf.collect_schema().names():
        lf = lf.filter(pl.col("data_kind").fill_null("book") != "bands")
    return int(lf.select(pl.len()).collect().item())


def _data_range(store: Store, ex: str, sy: str) -> str:
    spans = []
    for table in ("book_updates", "depth_bands", "trades", "depth"):
        if store.files(table, ex, sy):
            lf = store.scan(table, ex, sy)
            r = lf.select(pl.col("ts").min().alias("a"), pl.col("ts").max().alias("b")).collect().row(0)
            if r[0] is not None:
                spans.append(f"{table} {iso_ns(r[0])} .. {iso_ns(r[1])}")
    return "; ".join(spans) or "nothing"


def _px(inst: Instrument | None, col: str, scale: float = 1.0) -> pl.Expr:
    k = (inst.tick if inst else 1.0) * scale
    return (pl.col(col).cast(pl.Float64) * k).alias(col)


def _sz(inst: Instrument | None, col: str) -> pl.Expr:
    return (pl.col(col).cast(pl.Float64) * (inst.lot if inst else 1.0)).alias(col)


def _depth_frames(store: Store, ex: str, sy: str, a: int, b: int, ea: int, eb: int, every_ns: int | None,
                  bands, compute: bool, notes: list[str], prov: dict):
    """(depth, top, grid_ns) for level data: from the store if it covers the window at <= 1 s
    (and the requested grid, if any), else via forensics.book.compute_depth over the window
    widened to [ea, eb] (so before/after windows of events near the edges have a book)."""
    inst = store.instrument(ex, sy)
    want = every_ns or nice_grid_ns(b - a)
    depth = store.scan("depth", ex, sy, a, b).collect() if store.files("depth", ex, sy, a, b) else None
    chosen = None
    if depth is not None and depth.height:
        grids = sorted(g for g in depth["grid_ns"].unique().to_list() if g is not None) or [None]
        for g in grids:
            if every_ns and g != every_ns:
                continue
            d = depth if g is None else depth.filter(pl.col("grid_ns") == g)
            step = g or int(d["ts"].unique().sort().diff().median() or NS_PER_S)
            if step <= max(want, NS_PER_S) and d["ts"].min() <= a + 2 * step and d["ts"].max() >= b - 2 * step:
                chosen = (d, g, step)
                break
    if chosen is None and compute:
        from forensics import book
        kwargs = {"every_ns": want, "write": True}
        if bands:
            kwargs["bands"] = list(bands)
        res = book.compute_depth(store, ex, sy, ea, eb, **kwargs)
        inst = getattr(res, "instrument", None) or store.instrument(ex, sy)
        d = res.depth.filter((pl.col("ts") >= a) & (pl.col("ts") <= b))
        prov["depth"] = prov["book_top"] = (f"computed by forensics.book.compute_depth every "
                                            f"{_fmt_grid(want)} (written to the store)")
        return _real_depth(d, inst), _real_top(res.book_top, inst), want
    if chosen is None:
        if depth is None or not depth.height:
            raise ForensicsError(
                f"no depth for {ex}/{sy} in the window and it cannot be computed here "
                "(run `forensics depth` first)")
        g = sorted(depth["grid_ns"].drop_nulls().unique().to_list() or [None])[0]
        d = depth if g is None else depth.filter(pl.col("grid_ns") == g)
        chosen = (d, g, g or NS_PER_S)
        notes.append("The stored depth grid does not cover the whole window; the depth chart shows what exists.")
    d, g, step = chosen
    prov["depth"] = f"store (grid {_fmt_grid(step)})"
    top = store.scan("book_top", ex, sy, ea, eb).collect() if store.files("book_top", ex, sy, ea, eb) else None
    if top is not None and g is not None and "grid_ns" in top.columns:
        top = top.filter(pl.col("grid_ns") == g)
    prov["book_top"] = "store" if top is not None and top.height else "missing"
    return _real_depth(d, inst), _real_top(top, inst), g


def _real_depth(d: pl.DataFrame, inst) -> pl.DataFrame:
    if d is None or d.height == 0:
        return pl.DataFrame(schema={"ts": pl.Int64, "side": pl.Utf8, "band_pct": pl.Float64,
                                    "qty": pl.Float64, "notional": pl.Float64})
    cols = ["ts", "side", "band_pct", "qty", "notional"]
    d = d.select([c for c in cols if c in d.columns])
    if d.schema["qty"] != pl.Float64 or inst is not None:
        d = d.with_columns(_sz(inst, "qty") if d.schema["qty"].is_integer() else pl.col("qty").cast(pl.Float64))
    if "notional" not in d.columns:
        d = d.with_columns(notional=pl.lit(None, pl.Float64))
    return d.sort("ts", "side", "band_pct")


def _real_top(top: pl.DataFrame | None, inst) -> pl.DataFrame:
    schema = {"ts": pl.Int64, "best_bid": pl.Float64, "best_ask": pl.Float64, "mid": pl.Float64,
              "spread": pl.Float64, "valid": pl.Boolean}
    if top is None or top.height == 0:
        return pl.DataFrame(schema=schema)
    valid = pl.col("valid").fill_null(True) if "valid" in top.columns else pl.lit(True)
    if "crossed" in top.columns:
        valid = valid & ~pl.col("crossed").fill_null(False)
    return top.select(
        "ts", _px(inst, "best_bid"), _px(inst, "best_ask"), _px(inst, "mid", 0.5), _px(inst, "spread"),
        valid.alias("valid")).sort("ts")


@dataclass(frozen=True)
class ContextRequest:
    """What :func:`load_context` is asked for: an instrument (``None`` = the store's only one), a
    moment (``at``, a window ``window_ns`` wide centred on it) or a range (``ts_from``/``ts_to``;
    times as UTC ns ints, datetimes or strings read in ``tz``), the display timezone, and how to
    compute what the store lacks (``every_ns``/``bands`` for depth, ``params`` for detect;
    ``compute=False`` uses only what the store holds)."""

    exchange: str | None = None
    symbol: str | None = None
    at: object = None
    ts_from: object = None
    ts_to: object = None
    tz: str = "UTC"
    window_ns: int = DEFAULT_WINDOW_NS
    every_ns: int | None = None
    bands: object = None
    params: object = None
    compute: bool = True
    report: ReportParams = field(default_factory=ReportParams)
    run: object = None                  # forensics.runs.Run recording events computed here (None: a new one)


def _report_range(req: ContextRequest) -> tuple[int | None, int, int]:
    """(at, ts_from, ts_to) in UTC ns from the request: a window centred on ``at`` or the range."""
    tzinfo(req.tz)  # validate early: unknown timezone -> ForensicsError
    at_ns, a, b = _as_ns(req.at, req.tz), _as_ns(req.ts_from, req.tz), _as_ns(req.ts_to, req.tz)
    window_ns = int(req.window_ns or DEFAULT_WINDOW_NS)
    if window_ns <= 0:
        raise ForensicsError("the report window must be positive (e.g. --window 30m)")
    if at_ns is not None and (a is not None or b is not None):
        raise ForensicsError("give either --at (with --window) or --from/--to, not both")
    if at_ns is not None:
        a, b = at_ns - window_ns // 2, at_ns + window_ns // 2
    elif a is not None or b is not None:
        a = a if a is not None else b - window_ns
        b = b if b is not None else a + window_ns
    else:
        raise ForensicsError("say when: --at TIME (a report centred there) or --from/--to (every event in a range)")
    if b <= a:
        raise ForensicsError(f"empty time range: {iso_ns(a)} .. {iso_ns(b)} (--to must be after --from)")
    return at_ns, a, b


def _data_kind(store: Store, ex: str, sy: str, a: int, b: int) -> DataKind:
    """book when the store has updates or level depth for the range, bands when only depth_bands."""
    if _count(store, "book_updates", ex, sy, a, b) or _count_level_depth(store, ex, sy, a, b):
        return DataKind.BOOK
    if _count(store, "depth_bands", ex, sy, a, b):
        return DataKind.BANDS
    raise ForensicsError(
        f"no order-book data for {ex}/{sy} between {iso_ns(a)} and {iso_ns(b)} "
        f"(the store has: {_data_range(store, ex, sy)})")


def _band_frames(store: Store, ex: str, sy: str, a: int, b: int, inst, prov: dict
                 ) -> tuple[pl.DataFrame, pl.DataFrame, int | None]:
    """Depth straight from depth_bands (no top of book), and its median sampling step."""
    raw = store.scan("depth_bands", ex, sy, a, b).collect()
    depth = raw.select("ts", "side", pl.col("band_pct").abs().cast(pl.Float64),
                       pl.col("qty").cast(pl.Float64), pl.col("notional").cast(pl.Float64)).sort("ts", "side", "band_pct")
    top = _real_top(None, inst)
    steps = depth["ts"].unique().sort().diff().drop_nulls()
    grid = int(steps.median()) if steps.len() else None
    prov["depth"] = "store (depth_bands)"
    prov["book_top"] = "unavailable (band-only data)"
    return depth, top, grid


def _band_note(grid: int | None, have_trades: bool) -> str:
    traded = ("the traded share is the traded volume between two samples against the depth removed "
              "(cancellations inferred as the rest), " if have_trades else "")
    return ("Band-only data, level detail missing: depth comes from pre-aggregated bands (depth_bands, "
            f"e.g. Binance bookDepth) sampled every {_fmt_grid(grid)}; there are no per-level prices, "
            f"so the heatmap and the per-level traded/cancelled split are unavailable, {traded}event "
            "times are only known to within one sampling step, a fall that recovers before the next "
            "sample is invisible, and the detector's confidence is reduced accordingly.")


def _trades(store: Store, ex: str, sy: str, ea: int, eb: int, inst, prov: dict) -> pl.DataFrame:
    trades = (store.scan("trades", ex, sy, ea, eb).collect() if store.files("trades", ex, sy, ea, eb)
              else pl.DataFrame(schema={"ts": pl.Int64, "seq": pl.Int64, "price": pl.Int64, "size": pl.Int64,
                                        "aggressor": pl.Utf8}))
    trades = trades.select("ts", "seq", _px(inst, "price"), _sz(inst, "size"), "aggressor")
    prov["trades"] = f"store ({trades.height:,} rows)" if trades.height else "none"
    return trades


def _gaps(store: Store, ex: str, sy: str, a: int, b: int) -> pl.DataFrame:
    """Recorded gaps overlapping the range."""
    gaps = (store.scan("gaps", ex, sy, None, None, ts_column="ts_from").collect()
            if store.files("gaps", ex, sy) else pl.DataFrame(schema={"ts_from": pl.Int64, "ts_to": pl.Int64,
                                                                     "reason": pl.Utf8}))
    if gaps.height:
        gaps = gaps.filter((pl.col("ts_from") <= b) & (pl.col("ts_to").fill_null(b) >= a))
    return gaps


def _price_line(kind: DataKind, top: pl.DataFrame, trades: pl.DataFrame, depth: pl.DataFrame,
                grid: int | None, notes: list[str]) -> tuple[pl.DataFrame, str]:
    """The price line and what it is: the mid, else the last trade, else (bands) a band mid proxy."""
    price_source = ""
    if kind == DataKind.BOOK and top.height:
        price = top.filter(pl.col("valid") & pl.col("mid").is_not_null()).select("ts", pl.col("mid").alias("price"))
        price_source = "mid"
    else:
        price = pl.DataFrame(schema={"ts": pl.Int64, "price": pl.Float64})
    if price.height == 0 and trades.height:
        step = max(grid or NS_PER_S, 100 * NS_PER_MS)
        price = (trades.sort("ts", "seq").group_by((pl.col("ts") // step * step).alias("ts"), maintain_order=True)
                 .agg(pl.col("price").last()).sort("ts"))
        price_source = "last trade"
        if kind == DataKind.BOOK:
            notes.append("No top of book: the price line is the last trade price.")
    if price.height == 0 and kind == DataKind.BANDS:
        price, ref = band_mid_proxy(depth)
        if price.height:
            price_source = "band mid proxy"
            notes.append(f"No trades and no top of book: the price line is a mid proxy, the midpoint of the "
                         f"average prices (notional / qty) of the narrowest bid and ask bands ({ref:g}%).")
    return price, price_source


def _quality_flags(kind: DataKind, depth: pl.DataFrame) -> pl.DataFrame:
    from forensics import depth_quality as dq
    if kind == DataKind.BANDS and depth.height:
        return dq.band_flags(depth)
    return pl.DataFrame(schema=dq.FLAG_SCHEMA)


def load_context(store: Store, req: ContextRequest) -> Context:
    """Load what the report needs for ``req`` from ``store`` (computing what is missing)."""
    at_ns, a, b = _report_range(req)
    ex, sy = store.resolve_instrument(req.exchange, req.symbol,
                                      tables=("book_updates", "depth_bands", "depth", "trades"))
    inst = store.instrument(ex, sy)
    notes: list[str] = []
    prov: dict = {}
    kind = _data_kind(store, ex, sy, a, b)

    # events first: detect writes depth/book_top on its own grid, which the charts then reuse
    events = _events(store, ex, sy, a, b, kind, req, prov)
    rp = req.report
    ea, eb = a - int(rp.margin_before_s * NS_PER_S), b + int(rp.margin_after_s * NS_PER_S)   # trades/top a little wider: before/after windows
    if kind == DataKind.BOOK:
        depth, top, grid = _depth_frames(store, ex, sy, a, b, ea, eb, req.every_ns, req.bands, req.compute,
                                         notes, prov)
    else:
        depth, top, grid = _band_frames(store, ex, sy, a, b, inst, prov)
    trades = _trades(store, ex, sy, ea, eb, inst, prov)
    if kind == DataKind.BANDS:
        notes.append(_band_note(grid, trades.height > 0))
    if trades.height == 0:
        notes.append("No trades in the store for the window: what removed the depth (trades or cancellations) "
                     "and the price impact per volume cannot be measured, so no event is given a cause. The file "
                     f"that would decide it: {deciding_file_for(ex, sy, a)}, ingested with `forensics ingest`.")
    changes = _level_changes(store, ex, sy, a, b, req.compute, prov, inst) if kind == DataKind.BOOK else None
    gaps = _gaps(store, ex, sy, a, b)
    price, price_source = _price_line(kind, top, trades, depth, grid, notes)
    return Context(store=store, exchange=ex, symbol=sy, inst=inst, tz=req.tz, at=at_ns, ts_from=a, ts_to=b,
                   data_kind=kind, grid_ns=grid, bands=sorted(depth["band_pct"].unique().to_list()),
                   depth=depth, top=top, price=price, trades=trades, changes=changes, events=events,
                   gaps=gaps, notes=notes, provenance=prov, flags=_quality_flags(kind, depth),
                   trades_known=trades.height > 0, price_source=price_source, report=rp)


def deciding_file_for(exchange: str, symbol: str, ns: int) -> str:
    from forensics.report.text import deciding_file

    class _C:  # the two fields deciding_file reads
        pass
    c = _C()
    c.exchange, c.symbol = exchange, symbol
    return deciding_file(c, ns)


def band_mid_proxy(depth: pl.DataFrame) -> tuple[pl.DataFrame, float | None]:
    """(ts, price) from band data: the midpoint of the average prices (notional / qty) of the
    narrowest band both sides have, and that band."""
    d = depth.filter((pl.col("qty") > 0) & pl.col("notional").is_not_null())
    common = sorted(set(d.filter(pl.col("side") == "bid")["band_pct"].unique().to_list())
                    & set(d.filter(pl.col("side") == "ask")["band_pct"].unique().to_list()))
    if not common:
        return pl.DataFrame(schema={"ts": pl.Int64, "price": pl.Float64}), None
    ref = common[0]
    p = (d.filter(pl.col("band_pct") == ref).with_columns(avg=pl.col("notional") / pl.col("qty"))
         .group_by("ts").agg(pl.col("avg").filter(pl.col("side") == "bid").first().alias("b"),
                             pl.col("avg").filter(pl.col("side") == "ask").first().alias("a"))
         .drop_nulls().select("ts", ((pl.col("b") + pl.col("a")) / 2).alias("price")).sort("ts"))
    return p, ref


def _fmt_grid(ns: int | None) -> str:
    if not ns:
        return "an irregular interval"
    return f"{ns / NS_PER_S:g} s" if ns >= NS_PER_S else f"{ns // NS_PER_MS} ms"


def _level_changes(store, ex, sy, a, b, compute, prov, inst) -> pl.DataFrame | None:
    """level_changes in the window (real units), without gap/truncation rows (not maker actions).
    Computed by forensics.attribution.attribute (which writes whole days) when missing."""
    lc = store.scan("level_changes", ex, sy, a, b).collect() if store.files("level_changes", ex, sy, a, b) else None
    if (lc is None or lc.height == 0) and compute:
        from forensics import attribution
        if store.files("book_updates", ex, sy):
            lc = attribution.attribute(store, ex, sy, a, b, write=True)
            prov["level_changes"] = "computed by forensics.attribution.attribute (written to the store)"
    else:
        prov["level_changes"] = "store" if lc is not None and lc.height else "missing"
    if lc is None or lc.height == 0:
        prov["level_changes"] = prov.get("level_changes", "missing")
        return None
    if "cause" in lc.columns:
        lc = lc.filter(~pl.col("cause").is_in([Cause.GAP.value, Cause.TRUNCATION.value]))
    return lc.select("ts", "seq", "side", _px(inst, "price"), _sz(inst, "traded"), _sz(inst, "cancelled"),
                     _sz(inst, "added"))


def _events(store, ex, sy, a, b, kind, req: ContextRequest, prov) -> pl.DataFrame:
    ev = (store.scan("events", ex, sy, a, b, ts_column="start_ts").collect()
          if store.files("events", ex, sy, a, b) else None)
    if ev is not None and ev.height:
        prov["events"] = "store"
    elif req.compute:
        from forensics import params as fparams
        from forensics.runs import detect_recorded
        pad = int(req.report.detect_pad_s * NS_PER_S)
        lo, hi = a - pad, b + pad
        p = req.params
        if p is None:
            from forensics.detect import DetectParams
            p = DetectParams()
        sections = {**fparams.flatten(p, "detect"), **fparams.flatten(req.report, "report")}
        ev, run = detect_recorded(store, ex, sy, lo, hi, p, command="report", sections=sections)
        prov["events"] = (f"computed by forensics.detect over {iso_ns(lo)} .. {iso_ns(hi)} "
                          f"(written to the store, run {run.run_id})")
        if ev is not None and ev.height and not _events_visible(store, ex, sy, ev):
            store.write_partitioned("events", ev.drop([c for c in ("exchange", "symbol") if c in ev.columns]),
                                    ex, sy, f"report-{a}-{b}", ts_column="start_ts")
    if ev is None or ev.height == 0:
        prov.setdefault("events", "none")
        return pl.DataFrame(schema={"event_id": pl.Utf8, "start_ts": pl.Int64, "end_ts": pl.Int64,
                                    "sides": pl.Utf8, "label": pl.Utf8, "confidence": pl.Float64,
                                    "data_kind": pl.Utf8, "evidence": pl.Utf8})
    ev = ev.filter((pl.col("start_ts") >= a) & (pl.col("start_ts") <= b)).sort("start_ts")
    if "data_kind" not in ev.columns:
        ev = ev.with_columns(data_kind=pl.lit(str(kind)))
    return ev


def _events_visible(store, ex, sy, ev) -> bool:
    """True when every event id is already readable through the events view."""
    if not store.files("events", ex, sy):
        return False
    stored = store.scan("events", ex, sy, ts_column="start_ts").select("event_id").collect()["event_id"]
    return set(ev["event_id"].to_list()) <= set(stored.to_list())
