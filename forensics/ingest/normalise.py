"""What every venue reader hands over, and the writer that turns it into store parts.

A reader yields :class:`Chunk` objects: per table a Polars frame in *venue* terms (prices and
sizes still as the venue's decimal strings) plus ``exchange``, ``symbol``, ``arrival`` and
``line`` columns. The :class:`Writer` does the venue-independent work once:

* validation (exact decimals, non-negative sizes, known sides/aggressors, timestamps present):
  a bad row is rejected with file, line and reason; the other rows are kept;
* exact units: strings -> int64 at the instrument's decimals (raised, and stored data
  rescaled, if a file has finer prices or sizes than seen before);
* ``seq`` = instrument's next seq + ``arrival`` (the reader's arrival position within the
  file, shared by all tables), so trades and book updates of one capture interleave in
  arrival order and ``seq`` is strictly increasing per exchange+symbol;
* per part, a stable sort by ``ts`` (ties stay in arrival order), counting rows that arrived
  with a timestamp older than one already seen (``reordered``);
* staging under ``<store>/.staging/<sha16>/`` and a commit that renames parts into place,
  then saves instruments, gaps, rejects and finally the manifest row.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import orjson
import polars as pl

from forensics import exact
from forensics.schema import AGGRESSORS, SIDES
from forensics.ingest.contract import apply_overrides, check_frame, check_gap, select_stored
from forensics.ingest.source import NameInfo, Source
from forensics.store import Instrument, Store, write_parquet_atomic
from forensics.timeutil import date_bounds, date_expr, date_of, now_iso

#: exact columns per raw table: column -> ('price'|'size', allow_zero)
EXACT_INPUT = {
    "book_updates": {"price": ("price", False), "size": ("size", True)},
    "trades": {"price": ("price", False), "size": ("size", False)},
    "quotes": {"best_bid": ("price", True), "best_ask": ("price", True),
               "best_bid_size": ("size", True), "best_ask_size": ("size", True)},
    "labels_level_changes": {"price": ("price", False)},  # LOBSTER labels (delta: integer shares)
}
#: an arrival position is line << LINE_SHIFT | index of the row within the line
LINE_SHIFT = 20
#: plausible event times, UTC ns: [2000-01-01, 2100-01-01). A 0, -1 or 1970 timestamp is a
#: broken field, not data (electronic order books with such records start in the 2000s)
TS_MIN, TS_MAX = 946_684_800 * 10**9, 4_102_444_800 * 10**9


def name_reason(col: str) -> pl.Expr:
    """Reason (null = fine) why an exchange/symbol value cannot be a partition name; the
    vectorised twin of :func:`forensics.store.name_problem` (checked before names become paths)."""
    from forensics.store import MAX_NAME_BYTES
    c = pl.col(col).cast(pl.Utf8)
    st = c.str.strip_chars()
    return (pl.when(c.is_null() | (st == "")).then(pl.lit(f"missing {col}"))
            .when(st.is_in([".", ".."])).then(pl.lit(f"invalid {col} ") + c)
            .when(c.str.contains(r"[/\\=]")).then(pl.lit(f"invalid {col} (path character / \\ =): ") + c.str.slice(0, 40))
            .when(c.str.contains(r"[\x00-\x1f\x7f]")).then(pl.lit(f"invalid {col} (control character)"))
            .when(c.str.len_bytes() > MAX_NAME_BYTES).then(pl.lit(f"invalid {col} (longer than {MAX_NAME_BYTES} bytes): ")
                                                          + c.str.slice(0, 20) + pl.lit("..."))
            .otherwise(None))


@dataclass
class Reject:
    line: int | None
    reason: str
    text: str = ""


@dataclass
class Chunk:
    """A block of parsed input. Frames carry ``exchange, symbol, arrival, line`` plus the
    table's columns (exact ones as strings). ``gaps`` rows: exchange, symbol, ts_from, ts_to,
    arrival_from, arrival_to (nullable), reason, detail."""

    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    dropped: int = 0  # valid rows deliberately not stored (e.g. stale before a snapshot)
    lines: int = 0
    t_fallback: int = 0  # rows whose transaction time (Binance T) was unreadable: event time E used
    notes: list[str] = field(default_factory=list)  # facts for the summary line (e.g. checksums matched)


@dataclass
class ReadOptions:
    """What the user said plus companion sources (e.g. a Binance REST snapshot file given next
    to a capture). ``--exchange``/``--symbol`` override what files say: the Writer applies them
    to every row and gap; a reader reads them only as a hint where the data names no symbol."""

    exchange: str | None = None
    symbol: str | None = None
    name_info: NameInfo = field(default_factory=NameInfo)
    companions: list[Source] = field(default_factory=list)


@dataclass
class Format:
    name: str
    description: str
    sniff: Callable[[bytes, NameInfo], bool]
    read: Callable[[Source, ReadOptions], Iterator[Chunk]]
    #: a companion format is consumed by another file's reader when given together
    companion_of: str | None = None



def arrival_expr(line: pl.Expr, index: pl.Expr | int = 0) -> pl.Expr:
    """Arrival position of the ``index``-th row produced by source line ``line``."""
    idx = index if isinstance(index, pl.Expr) else pl.lit(index)
    return (line.cast(pl.Int64) * (1 << LINE_SHIFT)) + idx.cast(pl.Int64)


@dataclass
class _Staged:
    path: Path
    table: str
    exchange: str
    symbol: str
    date: str
    price_decimals: int
    size_decimals: int


@dataclass
class IngestResult:
    """What one source file gave. ``rows`` counts stored rows over all tables."""

    source: str
    sha256: str
    format: str
    instruments: list[tuple[str, str]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    dropped: int = 0
    gaps: int = 0
    reordered: int = 0
    ts_min: int | None = None
    ts_max: int | None = None
    seconds: float = 0.0
    duplicates: int = 0  # trades already stored from another source (same trade id), not stored again
    t_fallback: int = 0  # rows timed by E because their T was out of range / unreadable
    skipped: bool = False  # already ingested (same file hash, or same decompressed content)
    same_as: str | None = None  # skipped: the name it was ingested under
    same_content: bool = False  # skipped: same decompressed content as a differently packed file
    companions: str | None = None  # companion files given with it (e.g. a REST snapshot)
    companions_before: str | None = None  # skipped: the companions it was ingested with
    rejects_path: str | None = None
    first_rejects: list[Reject] = field(default_factory=list)
    error: str | None = None  # the file could not be ingested (nothing of it was written)
    notes: list[str] = field(default_factory=list)  # reader notes shown with the summary line

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def level_rows(self) -> int:
        return self.rows.get("book_updates", 0)


class Writer:
    """Stages one source file's rows, then commits them to the store atomically."""

    def __init__(self, store: Store, source_path: Path, sha256: str, fmt: str, companions: str | None = None,
                 exchange: str | None = None, symbol: str | None = None):
        self.store, self.source_path, self.sha, self.fmt = store, Path(source_path), sha256, fmt
        self.exchange, self.symbol = exchange, symbol  # --exchange/--symbol: applied here, once
        self.companions = companions
        self.staging = store.staging_dir(sha256[:16])
        if self.staging.exists() and not store.remote:
            shutil.rmtree(self.staging)
        self.staged: list[_Staged] = []
        self.base_seq: dict[tuple[str, str], int] = {}
        self.max_arrival: dict[tuple[str, str], int] = {}
        self.decimals: dict[tuple[str, str], list[int]] = {}  # current [price, size] scale
        self.stored: dict[tuple[str, str], Instrument | None] = {}
        self.max_units: dict[tuple[str, str], list[int]] = {}   # staged |max| at that scale
        self.stored_max: dict[tuple[str, str], list[int]] = {}  # stored |max| at the stored scale
        self.gap_rows: list[dict] = []
        self.committed: list = []  # parts moved into the store by commit (names as Store.files gives them)
        self.rejects: list[Reject] = []
        self.result = IngestResult(str(source_path), sha256, fmt)
        self._n = 0
        self._t0 = time.perf_counter()
        self.parts: PartWriter | None = None  # started with the first part
        #: seconds per Writer step (benchmarks/bench_ingest.py --profile prints them)
        self.timings: dict[str, float] = {}

    def _time(self, step: str, t0: float) -> float:
        t = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + t - t0
        return t

    def _write_part(self, df: pl.DataFrame, path: Path) -> None:
        if self.parts is None:
            self.parts = PartWriter()
        self.parts.submit(df, path)

    def _stop_parts(self, flush: bool) -> None:
        if self.parts is None:
            return
        try:
            if flush:
                t = time.perf_counter()
                self.parts.flush()
                self._time("wait for part writer", t)
        finally:
            if not flush:
                self.parts.close()

    # ---- per chunk -------------------------------------------------------------------------
    def add(self, chunk: Chunk) -> None:
        self.rejects.extend(chunk.rejects)
        self.result.dropped += chunk.dropped
        self.result.t_fallback += chunk.t_fallback
        self.result.notes.extend(chunk.notes)
        for table, df in chunk.tables.items():
            if df is None:
                continue
            # the reader contract (forensics.ingest.contract): a reader bug fails loudly here
            t = time.perf_counter()
            df = apply_overrides(check_frame(self.fmt, table, df, str(self.source_path)), self.exchange, self.symbol)
            t = self._time("contract", t)
            if df.height == 0:
                continue
            df = self._validate(table, df)
            t = self._time("validate", t)
            if df.height == 0:
                continue
            ex0, sy0 = df["exchange"][0], df["symbol"][0]
            if _constant(df["exchange"]) and _constant(df["symbol"]):
                self._stage(table, ex0, sy0, df)  # one instrument (the common case): no regrouping
            else:
                for (ex, sy), part in df.group_by(["exchange", "symbol"], maintain_order=True):
                    self._stage(table, ex, sy, part)
            self._time("stage", t)
        for g in chunk.gaps:
            g = check_gap(self.fmt, g, str(self.source_path))
            if self.exchange or self.symbol:
                g = {**g, "exchange": self.exchange or g["exchange"], "symbol": self.symbol or g["symbol"]}
            self.gap_rows.append(g)

    def _reject_rows(self, df: pl.DataFrame, checks: list[tuple[pl.Expr, pl.Expr]]) -> pl.DataFrame:
        """Drop (and record) rows failing any ``(bad condition, reason)`` check; the first
        failing check gives the reason. Reasons are only built for the failing rows."""
        if not checks or df.height == 0:
            return df
        bad = df.select(pl.any_horizontal([c.fill_null(False) for c, _ in checks]).alias("b"))["b"]
        if not bad.any():
            return df
        worst = df.filter(bad)
        reason = pl.coalesce([pl.when(c.fill_null(False)).then(r) for c, r in checks])
        for line, r in worst.select("line", reason.alias("__reason")).iter_rows():
            self.rejects.append(Reject(line, r))
        return df.filter(~bad)

    def _validate(self, table: str, df: pl.DataFrame) -> pl.DataFrame:
        fast = _validate_fast(table, df, _checks(table, df))
        if fast is not None:
            return fast
        return self._validate_checked(table, df)

    def _validate_checked(self, table: str, df: pl.DataFrame) -> pl.DataFrame:
        """Validation step by step, rejecting bad rows with their line and reason."""
        df = self._reject_rows(df, _checks(table, df))
        if table not in EXACT_INPUT or df.height == 0:
            return df
        cols = [c for c in EXACT_INPUT[table] if c in df.columns]
        parsed = {c: exact.parse(df[c]) for c in cols}
        checks = []
        for c in cols:
            # syntax, sign, zero, > MAX_DECIMALS here; whether a row fits in int64 depends on
            # the instrument's scale and is decided per instrument in _stage
            reason = _exact_reasons(parsed[c], c.replace("_", " "), 0, EXACT_INPUT[table][c][1])
            if reason is not None:
                df = df.with_columns(reason.alias(f"__r_{c}"))
                checks.append((pl.col(f"__r_{c}").is_not_null(), pl.col(f"__r_{c}")))
        # carry the parsed digits to _stage (select_stored() drops the helper columns)
        df = df.with_columns([s.alias(f"__{k}_{c}") for c in cols for k, s in parsed[c].items()
                              if k in ("digits", "raw", "sig")])
        df = self._reject_rows(df, checks)
        return df.drop([f"__r_{c}" for c in cols if f"__r_{c}" in df.columns])

    def _stage(self, table: str, exchange: str, symbol: str, df: pl.DataFrame) -> None:
        key = (exchange, symbol)
        if key not in self.base_seq:
            inst = self.store.instrument(exchange, symbol)
            self.base_seq[key] = inst.next_seq if inst else 0
            self.stored[key] = inst
            self.decimals[key] = [inst.price_decimals, inst.size_decimals] if inst else [0, 0]
            self.max_units[key] = [0, 0]
        if table in EXACT_INPUT:
            df = self._to_units(table, key, df)
            if df.height == 0:
                return
        import numpy as np

        pdec, sdec = self.decimals[key]
        self.max_arrival[key] = max(self.max_arrival.get(key, -1), int(df["arrival"].max()))
        df = df.with_columns((pl.col("arrival") + self.base_seq[key]).alias("seq"))
        # rows older than one already seen in this file (arrival order) are reported; a part
        # with such rows is sorted by ts (stable: ties keep arrival order)
        ts = df["ts"].to_numpy()
        late = int(np.count_nonzero(ts[1:] < np.maximum.accumulate(ts)[:-1])) if ts.size > 1 else 0
        self.result.reordered += late
        out = select_stored(table, df)
        if late:
            out = out.sort("ts", maintain_order=True)
        day_ns = 86_400_000_000_000
        if int(out["ts"][0]) // day_ns == int(out["ts"][-1]) // day_ns:  # sorted: one UTC day
            days = [((date_of(int(out["ts"][0])),), out)]
        else:
            out = out.with_columns(date_expr("ts").alias("__date"))
            days = [(k, part.drop("__date")) for k, part in out.group_by(["__date"], maintain_order=True)]
        for (day,), part in days:
            self._n += 1
            path = (self.staging / table / f"exchange={exchange}" / f"symbol={symbol}" / f"date={day}"
                    / f"{self.sha[:16]}-{self._n:05d}.parquet")
            self._write_part(part, path)
            self.staged.append(_Staged(path, table, exchange, symbol, day, pdec, sdec))
            self.result.rows[table] = self.result.rows.get(table, 0) + part.height
        tmin, tmax = int(out["ts"].min()), int(out["ts"].max())
        self.result.ts_min = tmin if self.result.ts_min is None else min(self.result.ts_min, tmin)
        self.result.ts_max = tmax if self.result.ts_max is None else max(self.result.ts_max, tmax)
        if key not in self.result.instruments:
            self.result.instruments.append(key)

    def _to_units(self, table: str, key: tuple[str, str], df: pl.DataFrame) -> pl.DataFrame:
        """Exact strings -> int64 units at the instrument's scale, raising the scale (decimals)
        where rows need it and every value stays below 10**18 (the int64 / DECIMAL(18) range):
        stored data, rows staged earlier and this frame. Rows that cannot be held exactly are
        rejected: too many decimals for the room the instrument's values leave, or too large
        at the scale the instrument's data needs. Never wraps around."""
        cols = {c: kind for c, (kind, _) in EXACT_INPUT[table].items() if c in df.columns}
        for k, kind in enumerate(("price", "size")):
            kc = [c for c, kd in cols.items() if kd == kind]
            if not kc or df.height == 0:
                continue
            cur = self.decimals[key][k]
            # decimals the rows need (rows too large even at their own decimals do not count;
            # a row whose digits stay below 10**18 fits at its own decimals: the usual case)
            top_digits = max(int(df[f"__digits_{c}"].max() or 0) for c in kc)
            if top_digits < 10 ** exact.MAX_DIGITS:
                need = max(int(df[f"__sig_{c}"].max() or 0) for c in kc)
            else:
                need = max(int(df.select(pl.col(f"__sig_{c}").filter(
                    _int_part(c) < pl.lit(10, pl.Int64).pow(exact.MAX_DIGITS - pl.col(f"__sig_{c}").clip(0, 18)))
                    .max()).item() or 0) for c in kc)
            new = cur
            if need > cur:
                biggest = self._max_units(key, k)
                new = cur + min(need - cur, exact.room(biggest))
            limit = 10 ** (exact.MAX_DIGITS - new)
            checks = []
            for c in kc:
                what = c.replace("_", " ")
                if need > new:
                    held = exact.units_to_str(self._max_units(key, k), cur)
                    checks.append((pl.col(f"__sig_{c}") > new, pl.lit(f"{what} ") + pl.col(c).cast(pl.Utf8)
                                   + pl.lit(f" has more decimals than {key[0]}/{key[1]} can hold: its {kind}s "
                                            f"(up to {held}) leave int64 room for {new}")))
                if top_digits < limit:  # no integer part can reach the limit
                    continue
                checks.append((_int_part(c) >= limit, pl.lit(f"{what} too large: ") + pl.col(c).cast(pl.Utf8)
                               + pl.lit(f" (at the {new} decimals of {key[0]}/{key[1]} {kind}s it exceeds int64)")))
            df = self._reject_rows(df, checks)
            if new > cur:
                self.max_units[key][k] *= 10 ** (new - cur)
                self.decimals[key][k] = new
            if df.height == 0:
                return df
            conv = {c: _units(df[f"__digits_{c}"], df[f"__raw_{c}"], new) for c in kc}
            df = df.with_columns([v.alias(c) for c, v in conv.items()])
            top = max(int(v.abs().max() or 0) for v in conv.values())
            self.max_units[key][k] = max(self.max_units[key][k], top)
        return df

    def _max_units(self, key: tuple[str, str], k: int) -> int:
        """Largest |value| (0 = price kind, 1 = size kind) at the current scale over the
        instrument's stored data (read from Parquet statistics, once) and the rows staged."""
        inst = self.stored[key]
        if inst is not None and key not in self.stored_max:
            m = self.store.max_abs_units(*key)
            self.stored_max[key] = [m["price"], m["size"]]
        biggest = self.max_units[key][k]
        if inst is not None:
            dec0 = inst.price_decimals if k == 0 else inst.size_decimals
            biggest = max(biggest, self.stored_max[key][k] * 10 ** (self.decimals[key][k] - dec0))
        return biggest

    # ---- commit ------------------------------------------------------------------------------
    def _drop_known_trades(self, st: _Staged, cache: dict) -> bool:
        """Remove trades already stored for the instrument and day from another source (e.g. a
        capture's aggTrade stream and the daily aggTrades file): same ``trade_id``, price and
        size (so ids of different id spaces, Binance trade vs aggTrade ids, never collide).
        Trades repeated within the file itself are dropped the same way (the cache grows with
        each part of the file). Returns False when nothing of the part is left."""
        key = (st.exchange, st.symbol, st.date)
        cols = ["trade_id", "price", "size"]
        if key not in cache:
            files = self.store.files("trades", st.exchange, st.symbol, *date_bounds(st.date))
            cache[key] = (pl.concat([self.store.read_part(f, columns=cols) for f in files])
                          .drop_nulls("trade_id").unique() if files else None)
        known = cache[key]
        df = pl.read_parquet(st.path, glob=False)
        keep = df
        if known is not None and known.height:
            keep = keep.join(known, on=cols, how="anti", nulls_equal=False, maintain_order="left")
        # the same trade twice within this file (a repeated line, a file concatenated twice, a
        # zip or multi-member gzip with two copies): the first one is kept
        again = pl.col("trade_id").is_not_null() & (pl.int_range(pl.len()).over(cols) > 0)
        keep = keep.filter(~again)
        mine = keep.select(cols).drop_nulls("trade_id")
        cache[key] = mine if known is None else pl.concat([known, mine])
        dup = df.height - keep.height
        if dup == 0:
            return True
        self.result.duplicates += dup
        self.result.rows["trades"] -= dup
        if keep.height == 0:
            st.path.unlink()
            return False
        write_parquet_atomic(keep, st.path)
        return True

    def abort(self) -> None:
        self._stop_parts(flush=False)
        if self.staging.exists():
            shutil.rmtree(self.staging)

    def rollback(self) -> None:
        """Undo a commit that failed before its manifest row was written: remove the parts
        already moved into the store (readers never saw them: a raw part without a manifest
        row is invisible) and the staging directory."""
        for p in self.committed:
            self.store.remove_part(p)
        self.committed = []
        self.abort()

    def commit(self, source_errors: list[tuple[int | None, str]] = (), content_sha256: str | None = None
               ) -> IngestResult:
        """Move staged parts into the store and record instruments, gaps, rejects, manifest."""
        self._stop_parts(flush=True)  # every staged part written (or its error raised)
        for line, msg in source_errors:
            self.rejects.append(Reject(line, msg))
        store = self.store
        final: dict[tuple[str, str], Instrument] = {}
        for key, (pdec, sdec) in self.decimals.items():
            inst = store.instrument(*key) or Instrument(key[0], key[1], pdec, sdec, 0)
            inst = store.rescale(inst, max(inst.price_decimals, pdec), max(inst.size_decimals, sdec))
            final[key] = inst
        known_ids: dict[tuple[str, str, str], pl.Series] = {}
        for st in self.staged:
            inst = final[(st.exchange, st.symbol)]
            dp, ds = inst.price_decimals - st.price_decimals, inst.size_decimals - st.size_decimals
            if (dp or ds) and st.table in EXACT_INPUT:
                df = pl.read_parquet(st.path, glob=False)
                df = df.with_columns([pl.col(c) * 10 ** (dp if k == "price" else ds)
                                      for c, (k, _) in EXACT_INPUT[st.table].items() if c in df.columns])
                write_parquet_atomic(df, st.path)
            if st.table == "trades" and not self._drop_known_trades(st, known_ids):
                continue
            self.committed.append(store.publish(st.path, f"{store.partition_rel(st.table, st.exchange, st.symbol, st.date)}/{st.path.name}"))
        # gaps: seq positions in the same arrival space as the rows
        if self.gap_rows:
            g = pl.DataFrame(self.gap_rows, infer_schema_length=None)
            if "arrival_to" not in g.columns:
                g = g.with_columns(pl.lit(None, pl.Int64).alias("arrival_to"))
            for (ex, sy), part in g.group_by(["exchange", "symbol"], maintain_order=True):
                inst = store.instrument(ex, sy)
                base = self.base_seq.get((ex, sy), inst.next_seq if inst else 0)
                part = part.with_columns(
                    (pl.col("arrival_from") + base).alias("seq_from"),
                    (pl.col("arrival_to") + base).alias("seq_to"),
                    pl.lit(self.source_path.name).alias("source"))
                self.committed += store.write_partitioned("gaps", select_stored("gaps", part), ex, sy,
                                                          f"{self.sha[:16]}-gaps", ts_column="ts_from")
            self.result.gaps = g.height
        for key, inst in final.items():
            store.save_instrument(Instrument(inst.exchange, inst.symbol, inst.price_decimals,
                                             inst.size_decimals,
                                             self.base_seq[key] + self.max_arrival.get(key, -1) + 1))
        self.abort()  # remove the (now empty) staging directory
        # rejects
        self.result.rejected = len(self.rejects)
        self.result.first_rejects = self.rejects[:5]
        if self.rejects:
            rel = f"rejects/{self.sha[:16]}-{self.source_path.name}.rejects.jsonl"
            store.location.write_bytes(rel, b"".join(
                orjson.dumps({"line": r.line, "reason": r.reason, "text": r.text}) + b"\n" for r in self.rejects))
            self.result.rejects_path = store.uri(rel)
        self.result.seconds = time.perf_counter() - self._t0
        r = self.result
        store.write_manifest({
            "source": str(self.source_path.resolve()), "name": self.source_path.name, "sha256": self.sha,
            "content_sha256": content_sha256, "companions": self.companions,
            "bytes": self.source_path.stat().st_size, "format": self.fmt,
            "exchange": ",".join(sorted({e for e, _ in r.instruments})) or None,
            "symbol": ",".join(sorted({s for _, s in r.instruments})) or None,
            "rows": r.total_rows, "book_rows": r.rows.get("book_updates", 0),
            "trade_rows": r.rows.get("trades", 0), "quote_rows": r.rows.get("quotes", 0),
            "band_rows": r.rows.get("depth_bands", 0), "rejected": r.rejected, "dropped": r.dropped,
            "duplicates": r.duplicates,
            "gaps": r.gaps, "reordered": r.reordered, "ts_min": r.ts_min, "ts_max": r.ts_max,
            "seconds": r.seconds, "ingested_at": now_iso(),
        })
        return r


#: Parquet settings of the staged raw parts (measured in benchmarks/bench_ingest.py --parquet):
#: zstd level 1 with integer columns delta-encoded (ts, seq, prices are nearly sorted runs)
#: and only the low-cardinality strings dictionary-encoded takes about half the CPU of the
#: default (zstd 3, dictionary everywhere) and gives smaller files
PART_COMPRESSION, PART_LEVEL = "zstd", 1
PART_ROW_GROUP = 1 << 20


def write_part(df: pl.DataFrame, path: Path) -> Path:
    """Write a staged part (temporary name + rename, like :func:`write_parquet_atomic`) with
    the ingest settings above; readers see ordinary Parquet with min/max statistics."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tab = df.to_arrow()
    ints = [f.name for f in tab.schema if str(f.type) in ("int64", "int32")]
    strs = [f.name for f in tab.schema if f.name not in ints and "string" in str(f.type)]
    tmp = path.parent / f".{path.name}.{time.monotonic_ns():x}.tmp"
    try:
        pq.write_table(tab, tmp, compression=PART_COMPRESSION, compression_level=PART_LEVEL,
                       use_dictionary=strs or False, column_encoding={c: "DELTA_BINARY_PACKED" for c in ints},
                       row_group_size=PART_ROW_GROUP, write_statistics=True)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


class PartWriter:
    """Encodes and writes staged parts in a thread of its own (:func:`write_part`), at most
    ``depth`` parts queued: Parquet encoding and compression release the GIL, so they overlap
    the next block's parsing and validation instead of lengthening the Writer's critical path.
    Parts are only staged (invisible to readers) until the Writer commits, and the commit
    waits for them (:meth:`flush`). An error writing a part (disk full, read-only) is raised
    by the next :meth:`submit` or by :meth:`flush`."""

    def __init__(self, depth: int = 2):
        import queue
        import threading

        self.q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.error: BaseException | None = None
        self.busy = 0.0  # seconds spent writing (the benchmark's breakdown)
        self.t = threading.Thread(target=self._work, name="forensics-part-writer", daemon=True)
        self.t.start()

    def _work(self) -> None:
        while True:
            item = self.q.get()
            try:
                if item is None:
                    return
                if self.error is None:  # after an error the rest is dropped (the file fails)
                    t = time.perf_counter()
                    try:
                        write_part(*item)
                    except BaseException as exc:  # handed to the Writer's thread
                        self.error = exc
                    self.busy += time.perf_counter() - t
            finally:
                self.q.task_done()

    def _raise(self) -> None:
        if self.error is not None:
            exc, self.error = self.error, None
            raise exc

    def submit(self, df: pl.DataFrame, path: Path) -> None:
        self._raise()
        if not self.t.is_alive():
            raise RuntimeError("part writer stopped")
        self.q.put((df, path))

    def flush(self) -> None:
        """Wait until every submitted part is written; raise the first write error."""
        self.q.join()
        self._raise()

    def close(self) -> None:
        """Stop the thread after the queued parts (errors are dropped: the caller is failing
        or done)."""
        if self.t.is_alive():
            self.q.put(None)
            self.t.join()
        self.error = None


def _name_checks(df: pl.DataFrame, col: str) -> list[tuple[pl.Expr, pl.Expr]]:
    """A (bad, reason) check for the rows whose ``col`` cannot be a partition name; judged
    on the column's distinct values (one or a few per block), so valid blocks cost one unique()."""
    s = df[col]
    if _constant(s):  # one value (the usual case): judged once per value and file
        if _name_ok(col, s[0]):
            return []
        u = s[:1].to_frame()
    else:
        u = df.select(pl.col(col).unique())
    bad = u.filter(name_reason(col).is_not_null())[col]
    if bad.len() == 0:
        return []
    cond = pl.col(col).is_in(bad.drop_nulls().implode())
    if bad.null_count():
        cond = cond | pl.col(col).is_null()
    return [(cond, name_reason(col))]


def _constant(s: pl.Series) -> bool:
    """``s`` holds one non-null value on every row."""
    return bool(s.len()) and s.null_count() == 0 and bool((s == s[0]).all())


_NAMES_OK: dict[tuple[str, str], bool] = {}


def _name_ok(col: str, value: str) -> bool:
    """:func:`name_reason` of one value is null (cached: a file has one or a few names)."""
    key = (col, value)
    if key not in _NAMES_OK:
        if len(_NAMES_OK) > 4096:
            _NAMES_OK.clear()
        _NAMES_OK[key] = pl.DataFrame({col: [value]}, schema={col: pl.Utf8}).select(
            name_reason(col).is_null()).item()
    return _NAMES_OK[key]


# ---- validation ------------------------------------------------------------------------------

def _checks(table: str, df: pl.DataFrame) -> list[tuple[pl.Expr, pl.Expr]]:
    """Row checks before exact conversion: ``(bad condition, reason)``, first failing one wins."""
    checks = [(pl.col("ts").is_null(), pl.lit("missing or unreadable timestamp")),
              ((pl.col("ts") < TS_MIN) | (pl.col("ts") >= TS_MAX),
               pl.lit("implausible timestamp ") + pl.col("ts").cast(pl.Utf8)
               + pl.lit(" ns (before 2000 or after 2100)"))]
    for c in ("exchange", "symbol"):
        if c in df.columns:
            checks += _name_checks(df, c)
    if table in ("book_updates", "depth_bands"):
        checks.append((~pl.col("side").is_in(SIDES) | pl.col("side").is_null(),
                       pl.lit("unknown side ") + pl.col("side").cast(pl.Utf8).fill_null("(empty)")))
    if table == "trades":
        checks.append((pl.col("aggressor").is_not_null() & ~pl.col("aggressor").is_in(AGGRESSORS),
                       pl.lit("unknown aggressor side ") + pl.col("aggressor")))
    if table == "depth_bands":
        checks.append((pl.col("qty").is_null() | (pl.col("qty") < 0) | pl.col("notional").is_null()
                       | (pl.col("notional") < 0), pl.lit("missing or negative band quantity/notional")))
    return checks


def _validate_fast(table: str, df: pl.DataFrame, checks: list[tuple[pl.Expr, pl.Expr]]) -> pl.DataFrame | None:
    """:meth:`Writer._validate` for a frame without a bad row: the row checks in one plan and
    the exact columns parsed in one compiled pass each (:func:`forensics.ingest.decscan.parse_plain`,
    giving ``__digits/__raw/__sig_<col>`` as :func:`exact.parse`'s fast path does). None if
    any row would be rejected or needs the slow parse (blanks, ``1e-05``, signs, > 18 digits):
    the frame then takes :meth:`Writer._validate_checked`, whose result it equals otherwise."""
    import numpy as np

    cols = [c for c in EXACT_INPUT.get(table, {}) if c in df.columns]
    parsed = []
    if cols:
        from forensics.ingest.decscan import parse_plain
    for c in cols:
        if f"__digits_{c}" in df.columns:  # parsed by the reader's scanner (plain decimals only)
            digits, raw, sig = (df[f"__{k}_{c}"].to_numpy() for k in ("digits", "raw", "sig"))
            plain, given = np.ones(len(digits), dtype=bool), True
        else:
            (digits, raw, sig, plain), given = parse_plain(df[c]), False
        int_part = digits // np.power(np.int64(10), np.clip(raw, 0, exact.MAX_DIGITS))
        # exactly the rows _exact_reasons (at 0 decimals) or exact.parse's slow path would see
        bad = ~plain | (sig > exact.MAX_DECIMALS) | (int_part >= 10 ** exact.MAX_DIGITS)
        if not EXACT_INPUT[table][c][1]:
            bad |= digits == 0
        if bad.any():
            return None
        if not given:
            parsed += [pl.Series(f"__raw_{c}", raw), pl.Series(f"__sig_{c}", sig), pl.Series(f"__digits_{c}", digits)]
    if checks:
        bad_rows = df.select(pl.any_horizontal([c.fill_null(False) for c, _ in checks]).alias("b"))["b"]
        if bad_rows.any():
            return None
    return df.with_columns(parsed) if parsed else df


# ---- exact columns, vectorised (same rules as forensics.exact, fewer string passes) ---------

_POW10 = None


def _units(digits: pl.Series, raw: pl.Series, decimals: int) -> pl.Series:
    """:func:`exact.units` in numpy (one pass, no plan): ``digits * 10**(decimals - raw)``, or
    an exact division dropping trailing zeros when ``raw > decimals``. Callers have checked
    that the rows fit at ``decimals`` (nulls stay null)."""
    import numpy as np

    global _POW10
    if _POW10 is None:
        _POW10 = np.array([10 ** k for k in range(exact.MAX_DIGITS + 1)], dtype=np.int64)
    if digits.null_count() or raw.null_count():
        return exact.units(digits, raw, decimals)
    d, r = digits.to_numpy(), raw.to_numpy()
    k = decimals - r
    up = _POW10[np.clip(k, 0, exact.MAX_DIGITS)]
    down = _POW10[np.clip(-k, 0, exact.MAX_DIGITS)]
    return pl.Series(digits.name, np.where(k >= 0, d * up, d // down), dtype=pl.Int64)


def _int_part(c: str) -> pl.Expr:
    """Integer part of exact column ``c`` from the digits carried by :meth:`Writer._validate`."""
    return exact.int_part(pl.col(f"__digits_{c}"), pl.col(f"__raw_{c}"))


def _exact_reasons(p: dict[str, pl.Series], what: str, decimals: int, allow_zero: bool) -> pl.Series | None:
    """Reasons (null where valid) as :func:`exact.invalid_reason` words them, or None if every
    row is valid. The int64 range is checked at ``decimals`` (the scale the rows will get),
    not at the maximum of 12, so a size of 1234567 is valid."""
    df = pl.DataFrame(p)
    limit = 10 ** (exact.MAX_DIGITS - decimals)
    int_part = pl.col("digits") // pl.lit(10, pl.Int64).pow(pl.col("raw").clip(0, 18))
    bad = df.select((~pl.col("ok") | pl.col("digits").is_null() | (pl.col("sig") > exact.MAX_DECIMALS)
                     | (int_part >= limit) | ((pl.col("digits") == 0) & (not allow_zero))).fill_null(True)
                    .alias("b"))["b"]
    if not bad.any():
        return None
    idx = bad.arg_true()
    sub = p["s"].gather(idx)
    why = exact.invalid_reason(sub, what, exact.MAX_DECIMALS, allow_zero)
    why = pl.DataFrame({"w": why, "s": sub}).select(
        pl.coalesce(pl.col("w"), pl.lit(f"{what} too large: ") + pl.col("s")))["w"]
    return pl.Series([None] * len(bad), dtype=pl.Utf8).scatter(idx, why)
