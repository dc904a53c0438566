"""The store: a directory of hive-partitioned, zstd Parquet files, read through DuckDB views.

Layout (``<root>`` defaults to ``./store`` or ``$FORENSICS_STORE``)::

    <root>/<table>/exchange=<x>/symbol=<s>/date=<YYYY-MM-DD>/<part>.parquet
    <root>/instruments/exchange=<x>/symbol=<s>/instrument.parquet   price/size decimals, next seq
    <root>/manifest/<sha256>.parquet                                one row per ingested file
    <root>/rejects/<sha16>-<file name>.rejects.jsonl                rejected input lines

Invariants:

* Every file appears whole or not at all: it is written under a temporary name in the same
  directory and renamed (``os.replace``). An ingest stages all its parts under
  ``<root>/.staging/`` and moves them in; its manifest row is written last, so parts whose
  source has no manifest row are leftovers of a killed ingest and :meth:`Store.recover`
  removes them. A rescale (more decimals for an instrument) is journalled the same way.
* Raw parts are named ``<sha16>-<n>.parquet`` after their source file's content hash, so a
  forced re-ingest replaces exactly that file's rows.
* Within a part rows are sorted by ``ts``, ties kept in arrival order; ``seq`` is the arrival
  order, strictly increasing per exchange+symbol across all its tables and files, so every
  later step orders by ``(ts, seq)`` and never by ``ts`` alone.
* Prices and sizes are int64 in the instrument's units (see :mod:`forensics.exact`); the SQL
  views show them as exact DECIMALs.
* One writer at a time (``Store.lock``); any number of readers. A raw part named after its
  source is visible to readers (:meth:`Store.files`, the views) only once that source's
  manifest row exists, so a failed or killed ingest's parts are never read.
* Readers of derived values (depth, detect, SQL statements) hold the shared readers lock
  (:meth:`Store.reading`); a rescale moves its rewritten parts and saves the new decimals
  holding it exclusively, so a reader sees one version of an instrument; a reader that then
  writes checks under the writer lock that no rescale happened since it read (:class:`StaleRead`).
  (On an ``s3://`` store there is no shared lock: the writer-side check still holds, and a
  long SQL session rebuilds its views when decimals change; see :mod:`forensics.storefs`.)
* Partition values are never glob patterns: ``XBT*`` names one directory, not a pattern.

Where it lives: a local directory or ``s3://bucket/prefix`` (:mod:`forensics.storefs`); every
method below works on both, through the store's :class:`~forensics.storefs.Location`. Part
"files" are root-relative names turned into a path (local) or an ``s3://`` URL by
:meth:`Store.uri`; read them with :meth:`Store.read_part`.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import io
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl

from forensics.errors import ForensicsError
from forensics.exact import room as exact_room
from forensics.schema import EXACT, PARTITIONED, TABLES
from forensics.storefs import Location, LocalLocation, open_location
from forensics.timeutil import date_expr, date_of, now_iso

DEFAULT_STORE = "store"
RESCALE_DIR = ".rescale"
_DUCK_TYPES = {pl.Int64: "BIGINT", pl.Float64: "DOUBLE", pl.Utf8: "VARCHAR", pl.Boolean: "BOOLEAN"}
#: stored int64 ns columns that views also show as TIMESTAMP_NS (UTC); the raw ns stays as <col>_ns
TIME_COLUMNS = ("ts", "local_ts", "ts_from", "ts_to", "start_ts", "end_ts", "ts_min", "ts_max",
                "onset_ts")


@dataclass(frozen=True)
class Instrument:
    """Scale of exact values for one exchange+symbol: price = int * 10**-price_decimals."""

    exchange: str
    symbol: str
    price_decimals: int
    size_decimals: int
    next_seq: int = 0

    @property
    def tick(self) -> float:
        """Price unit of the stored integers (may be finer than the venue's real tick)."""
        return 10.0 ** -self.price_decimals

    @property
    def lot(self) -> float:
        """Size unit of the stored integers (base-asset quantity)."""
        return 10.0 ** -self.size_decimals

    def price(self, units: int) -> float:
        """Integer price units -> float (display only; never compare these)."""
        return units / 10**self.price_decimals

    def size(self, units: int) -> float:
        return units / 10**self.size_decimals


#: longest exchange/symbol name kept (a directory name is at most 255 bytes; venue symbols
#: are far shorter, so anything longer is garbage, not a symbol)
MAX_NAME_BYTES = 100


def name_problem(value) -> str | None:
    """Why ``value`` cannot be an exchange/symbol partition name (None = fine): empty, ``.``/``..``,
    a path separator, ``=``, a control character (NUL, newline, ...) or over MAX_NAME_BYTES."""
    if value is None:
        return "missing"
    value = str(value)
    if not value.strip():
        return "empty"
    if value.strip() in (".", ".."):
        return f"{value!r} is not a name"
    if any(c in value for c in "/\\="):
        return f"{value[:40]!r} holds a path character (/ \\ =)"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"{value[:40]!r} holds a control character"
    if len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes ({value[:20]!r}...)"
    return None


def safe_name(value: str) -> str:
    """A partition value safe as a directory name (venue symbols keep their spelling)."""
    value = str(value).strip()
    why = name_problem(value)
    if why is not None:
        raise ForensicsError(f"invalid exchange/symbol name: {why}")
    return value


def read_part(path: str | os.PathLike, **kwargs) -> pl.DataFrame:
    """Read one part file. The path is a path, never a glob pattern (store roots may contain
    ``[``, ``*`` or ``?``)."""
    return pl.read_parquet(path, glob=False, **kwargs)


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> Path:
    """Write ``df`` to ``path`` via a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


class Store:
    """A Parquet store rooted at a directory or an ``s3://`` prefix. Cheap to construct; no I/O
    until used."""

    def __init__(self, root: str | os.PathLike | Location | None = None):
        self.location = root if isinstance(root, Location) else open_location(root, DEFAULT_STORE)
        #: a Path for a local store, the ``s3://`` URL for a remote one (for messages)
        self.root = self.location.root if isinstance(self.location, LocalLocation) else self.location.url
        self._reader_fh = None   # open .readers.lock while in reading()
        self._reading_depth = 0
        self._seen: dict[tuple[str, str], tuple[int, int]] = {}  # decimals read in reading()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def remote(self) -> bool:
        return self.location.remote

    def exists(self) -> bool:
        """Whether the store holds anything at all (a local directory that exists; an S3 prefix
        with at least one object)."""
        if not self.remote:
            return Path(self.root).is_dir()
        self.location.check()
        return bool(self.location.listdir(""))

    # ---- layout -------------------------------------------------------------------------
    def uri(self, rel: str) -> str:
        """A root-relative name as a local path or an ``s3://`` URL."""
        return self.location.uri(rel)

    def read_part(self, path: str | os.PathLike, **kwargs) -> pl.DataFrame:
        """Read one part (a name from :meth:`files`)."""
        if self.remote:
            return pl.read_parquet(str(path), storage_options=self.location.storage_options, **kwargs)
        return read_part(path, **kwargs)

    def scan_parts(self, files: list) -> pl.LazyFrame:
        """A lazy scan of part names from :meth:`files` (no hive columns, no globbing)."""
        return pl.scan_parquet([str(f) for f in files], hive_partitioning=False, glob=False,
                               storage_options=self.location.storage_options)

    def parquet_file(self, path):
        """A ``pyarrow.parquet.ParquetFile`` of one part name (footer and row-group access)."""
        import pyarrow.parquet as pq
        if self.remote:
            return pq.ParquetFile(self.location.arrow_fs.open_input_file(str(path)[len("s3://"):]))
        return pq.ParquetFile(path)

    @staticmethod
    def part_date(path) -> str:
        """The ``date=`` partition value of a part name."""
        return str(path).rsplit("/date=", 1)[1].split("/", 1)[0]

    def partition_rel(self, table: str, exchange: str, symbol: str, date: str) -> str:
        return f"{table}/exchange={safe_name(exchange)}/symbol={safe_name(symbol)}/date={date}"

    def partition_dir(self, table: str, exchange: str, symbol: str, date: str) -> Path:
        """Local stores only: the partition's directory."""
        return Path(self.uri(self.partition_rel(table, exchange, symbol, date)))

    def _values(self, rel: str, key: str) -> list[str]:
        """Partition values ``key=<v>`` directly under ``rel`` (one listing, no glob)."""
        p = key + "="
        return [n[len(p):] for n in self.location.listdir(rel) if n.startswith(p)]

    def _part_names(self, rel: str) -> list[str]:
        return [f"{rel}/{n}" for n in self.location.listdir(rel)
                if n.endswith(".parquet") and not n.startswith(".")]

    def part_rels(self, table: str, exchange: str | None = None, symbol: str | None = None,
                  ts_from: int | None = None, ts_to: int | None = None) -> list[str]:
        """Root-relative names of a table's parts, pruned by instrument and date range (UTC ns,
        inclusive). Partitions are listed level by level, never globbed, so a symbol such as
        ``XBT*`` matches only itself and a one-symbol, one-day read lists only that prefix."""
        d_from = date_of(ts_from) if ts_from is not None else None
        d_to = date_of(ts_to) if ts_to is not None else None
        out = []
        exchanges = [exchange] if exchange else self._values(table, "exchange")
        for ex in exchanges:
            ex_rel = f"{table}/exchange={ex}"
            for sy in ([symbol] if symbol else self._values(ex_rel, "symbol")):
                sy_rel = f"{ex_rel}/symbol={sy}"
                for day in sorted(self._values(sy_rel, "date")):
                    if (d_from and day < d_from) or (d_to and day > d_to):
                        continue
                    out.extend(sorted(self._part_names(f"{sy_rel}/date={day}")))
        return out

    def files(self, table: str, exchange: str | None = None, symbol: str | None = None,
              ts_from: int | None = None, ts_to: int | None = None) -> list:
        """Visible part files of a table (local Paths, or ``s3://`` URLs), pruned like
        :meth:`part_rels`; raw parts of uncommitted sources are left out (:meth:`_committed_part`)."""
        rels = self.part_rels(table, exchange, symbol, ts_from, ts_to)
        if table in RAW_TABLES:
            known = self._known_sources()
            rels = [r for r in rels if self._committed_part(r.rsplit("/", 1)[1], known)]
        if self.remote:
            return [self.uri(r) for r in rels]
        return [Path(self.uri(r)) for r in rels]

    def _known_sources(self) -> set[str]:
        """sha16 prefixes of the sources that have a manifest row (committed ingests)."""
        return {n[:16] for n in self.location.listdir("manifest")
                if n.endswith(".parquet") and not n.startswith(".")}

    @staticmethod
    def _committed_part(name: str, known: set[str]) -> bool:
        """A raw part named after its source (``<sha16>-...``, as ingest names them) is
        visible only once that source's manifest row exists: the parts of an ingest that
        failed or was killed before its commit finished are never read. Parts written
        directly through :meth:`write_partitioned` under other names are always visible."""
        return _SOURCE_PART.match(name) is None or name[:16] in known

    def orphans(self, table: str) -> list:
        """Raw parts whose source has no manifest row (invisible to every reader)."""
        if table not in RAW_TABLES:
            return []
        known = self._known_sources()
        rels = [r for r in self.part_rels(table) if not self._committed_part(r.rsplit("/", 1)[1], known)]
        return [self.uri(r) if self.remote else Path(self.uri(r)) for r in rels]

    def instruments_in(self, table: str) -> list[tuple[str, str]]:
        """(exchange, symbol) pairs that have at least one part in ``table``."""
        known = self._known_sources() if table in RAW_TABLES else None
        pairs = set()
        for ex in self._values(table, "exchange"):
            for sy in self._values(f"{table}/exchange={ex}", "symbol"):
                base = f"{table}/exchange={ex}/symbol={sy}"
                if any(known is None or self._committed_part(r.rsplit("/", 1)[1], known)
                       for d in self._values(base, "date") for r in self._part_names(f"{base}/date={d}")):
                    pairs.add((ex, sy))
        return sorted(pairs)

    def resolve_instrument(self, exchange: str | None = None, symbol: str | None = None,
                           tables: tuple[str, ...] = ("book_updates", "depth_bands")) -> tuple[str, str]:
        """The one instrument matching the filters; an error listing them if 0 or several."""
        pairs = sorted({p for t in tables for p in self.instruments_in(t)})
        match = [p for p in pairs if (exchange is None or p[0] == exchange) and (symbol is None or p[1] == symbol)]
        if len(match) == 1:
            return match[0]
        listing = ", ".join(f"{e}/{s}" for e, s in pairs) or "none"
        if not match:
            raise ForensicsError(
                f"no data for exchange={exchange or '*'} symbol={symbol or '*'} in {self.root} "
                f"(instruments in store: {listing}); ingest some with `forensics ingest`")
        raise ForensicsError(
            f"several instruments match, choose one with --exchange/--symbol: {listing}")

    # ---- reading (raw integer units, for the engines) -----------------------------------
    def scan(self, table: str, exchange: str, symbol: str, ts_from: int | None = None,
             ts_to: int | None = None, ts_column: str = "ts") -> pl.LazyFrame:
        """Lazy frame of one instrument's rows in stored units, ordered by (ts, seq) if present.

        Date partitions outside [ts_from, ts_to] are not read; rows are filtered exactly.
        """
        files = self.files(table, exchange, symbol, ts_from, ts_to)
        schema = TABLES.get(table)
        if not files:
            if schema is None:
                raise ForensicsError(f"no {table} data for {exchange}/{symbol} in {self.root}")
            return pl.LazyFrame(schema=schema)
        lf = self.scan_parts(files)
        if ts_from is not None:
            lf = lf.filter(pl.col(ts_column) >= ts_from)
        if ts_to is not None:
            lf = lf.filter(pl.col(ts_column) <= ts_to)
        cols = lf.collect_schema().names()
        order = [c for c in (ts_column, "seq") if c in cols]
        return lf.sort(order, maintain_order=True) if order else lf

    # ---- instruments ----------------------------------------------------------------------
    def _instrument_rel(self, exchange: str, symbol: str) -> str:
        return f"instruments/exchange={safe_name(exchange)}/symbol={safe_name(symbol)}/instrument.parquet"

    def instrument(self, exchange: str, symbol: str) -> Instrument | None:
        try:
            row = self.location.read_parquet(self._instrument_rel(exchange, symbol)).row(0, named=True)
        except FileNotFoundError:
            return None
        inst = Instrument(exchange, symbol, int(row["price_decimals"]), int(row["size_decimals"]),
                          int(row["next_seq"]))
        if self._reading_depth:
            self._seen.setdefault((exchange, symbol), (inst.price_decimals, inst.size_decimals))
        return inst

    def require_instrument(self, exchange: str, symbol: str) -> Instrument:
        inst = self.instrument(exchange, symbol)
        if inst is None:
            raise ForensicsError(f"unknown instrument {exchange}/{symbol} in {self.root}")
        return inst

    def save_instrument(self, inst: Instrument) -> None:
        df = pl.DataFrame({
            "price_decimals": [inst.price_decimals], "size_decimals": [inst.size_decimals],
            "next_seq": [inst.next_seq], "updated_at": [now_iso()],
        }, schema={"price_decimals": pl.Int64, "size_decimals": pl.Int64, "next_seq": pl.Int64,
                   "updated_at": pl.Utf8})
        self.location.write_parquet(df, self._instrument_rel(inst.exchange, inst.symbol))

    def instruments(self) -> list[Instrument]:
        out = []
        for ex in self._values("instruments", "exchange"):
            for sy in self._values(f"instruments/exchange={ex}", "symbol"):
                inst = self.instrument(ex, sy)
                if inst is not None:
                    out.append(inst)
        return out

    def max_abs_units(self, exchange: str, symbol: str) -> dict[str, int]:
        """Largest ``|value|`` of the instrument's stored exact columns per kind (``price``
        includes ``price2`` columns; ``size``), over raw and derived tables. Read from the
        Parquet footers' statistics (the column itself only where a part has none)."""
        out = {"price": 0, "size": 0}
        for table, cols in EXACT.items():
            for f in self.part_rels(table, exchange, symbol):
                meta = self.location.parquet_metadata(f)
                names = [meta.schema.column(i).name for i in range(meta.num_columns)]
                for c, kind in cols.items():
                    if c not in names:
                        continue
                    j, k = names.index(c), "size" if kind == "size" else "price"
                    for g in range(meta.num_row_groups):
                        st = meta.row_group(g).column(j).statistics
                        if st is not None and st.has_min_max:
                            out[k] = max(out[k], abs(int(st.min)), abs(int(st.max)))
                        elif meta.row_group(g).num_rows:
                            v = self.location.read_parquet(f, columns=[c])[c].abs().max()
                            out[k] = max(out[k], int(v or 0))
                            break
        return out

    def rescale(self, inst: Instrument, price_decimals: int, size_decimals: int) -> Instrument:
        """Raise an instrument's decimals, rewriting its stored exact columns (rare: a later
        file with finer prices). Values stay exact (multiplication by a power of ten); an
        increase that would take any stored value to 10**18 or beyond (out of int64 /
        DECIMAL(18)) is refused before anything is written.

        Crash-safe: the rewritten parts are written under ``<root>/.rescale/`` first, then a
        journal; the parts are renamed into place and the instrument saved; the journal goes
        last. :meth:`recover` completes a journalled rescale and discards an unjournalled one,
        so the stored values and the instrument's decimals never disagree."""
        dp, ds = price_decimals - inst.price_decimals, size_decimals - inst.size_decimals
        if dp < 0 or ds < 0:
            raise ValueError("rescale only increases decimals")
        if dp == 0 and ds == 0:
            return inst
        biggest = self.max_abs_units(inst.exchange, inst.symbol)
        for kind, d in (("price", dp), ("size", ds)):
            if d and d > exact_room(biggest[kind]):
                raise ForensicsError(
                    f"cannot give {inst.exchange}/{inst.symbol} {d} more {kind} decimals: its stored {kind}s "
                    f"(up to {biggest[kind]} units) would exceed int64")
        loc = self.location
        loc.delete_tree(RESCALE_DIR)
        moved = []
        for table, cols in EXACT.items():
            for rel in self.part_rels(table, inst.exchange, inst.symbol):
                df = loc.read_parquet(rel)
                exprs = [pl.col(c) * (10 ** (dp if kind in ("price", "price2") else ds))
                         for c, kind in cols.items() if c in df.columns]
                loc.write_parquet(df.with_columns(exprs), f"{RESCALE_DIR}/{rel}")
                moved.append(rel)
        new = Instrument(inst.exchange, inst.symbol, price_decimals, size_decimals, inst.next_seq)
        loc.write_text(f"{RESCALE_DIR}/journal.json", json.dumps({
            "exchange": inst.exchange, "symbol": inst.symbol, "price_decimals": price_decimals,
            "size_decimals": size_decimals, "files": moved}))
        self._finish_rescale()
        return new

    def _finish_rescale(self) -> None:
        """Apply a journalled rescale (idempotent: parts already moved are skipped). Runs with
        the readers lock held exclusively: no reader sees some parts rescaled and others not,
        or parts that disagree with the instrument's decimals."""
        with self._readers_exclusive():
            self._apply_rescale()

    def _apply_rescale(self) -> None:
        loc = self.location
        j = json.loads(loc.read_text(f"{RESCALE_DIR}/journal.json"))
        for rel in j["files"]:
            src = f"{RESCALE_DIR}/{rel}"
            if loc.exists(src):
                loc.move(src, rel)
        old = self.instrument(j["exchange"], j["symbol"])
        self.save_instrument(Instrument(j["exchange"], j["symbol"], j["price_decimals"], j["size_decimals"],
                                        old.next_seq if old else 0))
        if (j["exchange"], j["symbol"]) in self._seen:  # our own rescale: what we read is still ours
            self._seen[(j["exchange"], j["symbol"])] = (j["price_decimals"], j["size_decimals"])
        loc.delete_tree(RESCALE_DIR)

    def rescale_pending(self) -> bool:
        return self.location.exists(f"{RESCALE_DIR}/journal.json")

    # ---- writing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self):
        """Exclusive writer lock on the store (blocks until free): an ``fcntl`` lock locally, a
        conditional-create lease object on S3 (:mod:`forensics.storefs`).

        Inside :meth:`reading` (a command that read the store and now writes what it derived)
        the shared readers lock is let go while waiting (an ingest holding the writer lock may
        be waiting for readers to finish a rescale), then every instrument read so far is
        checked: if a concurrent ingest rescaled one, what was computed is in the old units
        and nothing is written (:class:`StaleRead`)."""
        if self.remote:
            with self.location.lock():
                if self._reading_depth:
                    self._check_seen()
                yield
            return
        try:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            fh = open(Path(self.root) / ".lock", "w")
        except OSError as exc:
            raise ForensicsError(f"cannot write to the store {self.root}: {os_reason(exc)}") from None
        with fh:
            reading = self._reader_fh is not None
            if reading:
                fcntl.flock(self._reader_fh, fcntl.LOCK_UN)
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                if reading:
                    fcntl.flock(self._reader_fh, fcntl.LOCK_SH)  # no rescale can run: we hold the writer lock
                    self._check_seen()
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _check_seen(self) -> None:
        for (ex, sy), dec in list(self._seen.items()):
            try:
                row = self.location.read_parquet(self._instrument_rel(ex, sy)).row(0, named=True)
            except FileNotFoundError:
                continue
            now = (int(row["price_decimals"]), int(row["size_decimals"]))
            if now != dec:
                raise StaleRead(
                    f"{ex}/{sy} was rescaled by a concurrent ingest while this command read it "
                    f"(decimals {dec[0]}/{dec[1]} -> {now[0]}/{now[1]}); nothing written, run it again")

    @contextlib.contextmanager
    def reading(self):
        """Shared readers lock for a command that reads the store (depth, detect, sql): a
        rescale (the one write that changes stored parts in place) waits until no reader holds
        it, so a reader sees one consistent version of each instrument and its parts.
        Re-entrant; a store that cannot be written (read-only mount) is read without it, and
        so is an ``s3://`` store (no shared locks on object storage: the writer-side check of
        :meth:`lock` still refuses to store values computed at a stale scale)."""
        if self._reading_depth == 0:
            fh = None
            if not self.remote:
                try:
                    fh = open(Path(self.root) / ".readers.lock", "a")
                except OSError:
                    fh = None  # read-only store: no writer can rescale it either
                if fh is not None:
                    fcntl.flock(fh, fcntl.LOCK_SH)
            self._reader_fh = fh
            self._seen = {}
        self._reading_depth += 1
        try:
            yield self
        finally:
            self._reading_depth -= 1
            if self._reading_depth == 0:
                fh, self._reader_fh = self._reader_fh, None
                if fh is not None:
                    fcntl.flock(fh, fcntl.LOCK_UN)
                    fh.close()
                self._seen = {}

    @contextlib.contextmanager
    def _readers_exclusive(self):
        """The readers lock, exclusively (a rescale's moves). Our own shared hold, if any, is
        converted and given back afterwards."""
        own = self._reader_fh
        if self.remote:
            yield
            return
        if own is not None:
            fcntl.flock(own, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(own, fcntl.LOCK_SH)
            return
        with open(Path(self.root) / ".readers.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ---- staging (ingest) -------------------------------------------------------------------
    def staging_dir(self, key: str) -> Path:
        """A local directory to stage one writer's parts before they are published: inside the
        store for a local store (same file system: publication is a rename), a private
        temporary directory for a remote one."""
        if self.remote:
            return Path(tempfile.mkdtemp(prefix=f"forensics-stage-{key}-"))
        return Path(self.root) / ".staging" / key

    def publish(self, local: Path, rel: str):
        """Move a staged local file to ``rel`` in the store (a rename locally, an upload and a
        local delete on S3; a reader sees the whole object or none). Returns the part's name
        as :meth:`files` gives it."""
        if self.remote:
            self.location.write_bytes(rel, Path(local).read_bytes())
            Path(local).unlink()
            return self.uri(rel)
        dest = Path(self.uri(rel))
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, dest)
        return dest

    def rel_of(self, name) -> str:
        """The root-relative name of a part name from :meth:`files` (Path or URL)."""
        if self.remote:
            return str(name)[len(self.location.uri("")) + 1:]
        return Path(name).resolve().relative_to(Path(self.root).resolve()).as_posix()

    def remove_part(self, name) -> bool:
        """Delete one part (a name from :meth:`files`); False when it was not there."""
        return self.location.delete(self.rel_of(name))

    def write_partitioned(self, table: str, df: pl.DataFrame, exchange: str, symbol: str,
                          name: str, ts_column: str = "ts", replace_dates: bool = False) -> list[Path]:
        """Write ``df`` (one instrument, stored units) as ``<name>.parquet`` in each date it
        spans (UTC date of ``ts_column``), atomically per file.

        With ``replace_dates`` every other part in those date partitions is removed after the
        new file is in place (derived tables recomputed for whole days).
        """
        return self.publish_staged(self.stage_partitioned(table, df, exchange, symbol, name, ts_column),
                                   replace_dates)

    def stage_partitioned(self, table: str, df: pl.DataFrame, exchange: str, symbol: str, name: str,
                          ts_column: str = "ts") -> list[tuple[str, bytes]]:
        """The Parquet parts :meth:`write_partitioned` would write, encoded in memory and not yet
        visible: ``[(relative path, bytes)]``. Encoding needs no lock, so parallel writers
        compress their parts concurrently and hold the writer lock only for
        :meth:`publish_staged`."""
        if df.height == 0:
            return []
        df = df.with_columns(date_expr(ts_column).alias("__date"))
        out = []
        for (day,), part in df.group_by(["__date"], maintain_order=True):
            rel = f"{self.partition_rel(table, exchange, symbol, day)}/{name}.parquet"
            buf = io.BytesIO()
            part.drop("__date").write_parquet(buf, compression="zstd", statistics=True)
            out.append((rel, buf.getvalue()))
        return out

    def publish_staged(self, staged: list[tuple[str, bytes]], replace_dates: bool = False) -> list[Path]:
        """Make staged parts visible, each atomically (call under the writer lock); with
        ``replace_dates`` every other part of their date partitions is removed after it."""
        paths = []
        for rel, data in staged:
            self.location.write_bytes(rel, data)
            if replace_dates:
                rel_dir = rel.rsplit("/", 1)[0]
                for other in self._part_names(rel_dir):
                    if other != rel:
                        self.location.delete(other)
            paths.append(Path(self.uri(rel)) if not self.remote else self.uri(rel))
        return paths

    def delete(self, table: str, exchange: str, symbol: str, ts_from: int | None = None,
               ts_to: int | None = None) -> int:
        """Remove a derived table's parts for one instrument (whole date partitions)."""
        files = self.part_rels(table, exchange, symbol, ts_from, ts_to)
        for f in files:
            self.location.delete(f)
        return len(files)

    # ---- manifest -------------------------------------------------------------------------
    def manifest_rels(self) -> list[str]:
        return self._part_names("manifest")

    def manifest(self) -> pl.DataFrame:
        files = self.manifest_rels()
        if not files:
            return pl.DataFrame(schema=MANIFEST_SCHEMA)
        return pl.concat([self.location.read_parquet(f) for f in files], how="diagonal_relaxed")

    def manifest_row(self, sha256: str) -> dict | None:
        try:
            return self.location.read_parquet(f"manifest/{sha256}.parquet").row(0, named=True)
        except FileNotFoundError:
            return None

    def content_index(self) -> dict[str, dict]:
        """Decompressed-content hash -> ``{sha256, name, companions}`` of every manifest row
        that has one (one read of the manifest's few columns; an ingest loads it once)."""
        files = [self.uri(f) for f in self.manifest_rels()]
        if not files:
            return {}
        df = (pl.scan_parquet(files, glob=False, missing_columns="insert",
                              storage_options=self.location.storage_options)
              .select("content_sha256", "sha256", "name", "companions")
              .filter(pl.col("content_sha256").is_not_null()).collect())
        return {r["content_sha256"]: r for r in df.iter_rows(named=True)}

    def write_manifest(self, row: dict) -> None:
        df = pl.DataFrame([row], schema=MANIFEST_SCHEMA)
        self.location.write_parquet(df, f"manifest/{row['sha256']}.parquet")

    def remove_source(self, sha256: str) -> int:
        """Delete every raw part and the manifest row of one source file (``--force``)."""
        n = 0
        for rel in self._raw_part_rels():
            if rel.rsplit("/", 1)[1].startswith(f"{sha256[:16]}-"):
                self.location.delete(rel)
                n += 1
        self.location.delete(f"manifest/{sha256}.parquet")
        return n

    def _raw_part_rels(self) -> list[str]:
        return [r for t in RAW_TABLES for r in self.part_rels(t)]

    def recover(self) -> int:
        """Remove leftovers of killed writes: staging dirs, temp files, parts without manifest."""
        removed = 0
        loc = self.location
        if self.rescale_pending():
            self._finish_rescale()  # killed while moving rescaled parts: complete it
        else:
            loc.delete_tree(RESCALE_DIR)  # killed while writing them: the stored parts are untouched
        if not self.remote:
            staging = Path(self.root) / ".staging"
            if staging.exists():
                removed += sum(1 for p in staging.rglob("*.parquet"))
                shutil.rmtree(staging)
        known = {r.rsplit("/", 1)[1][:16] for r in self.manifest_rels()}
        for table in PARTITIONED:
            for ex in self._values(table, "exchange"):
                for sy in self._values(f"{table}/exchange={ex}", "symbol"):
                    base = f"{table}/exchange={ex}/symbol={sy}"
                    for d in self._values(base, "date"):
                        for name in loc.listdir(f"{base}/date={d}"):
                            rel = f"{base}/date={d}/{name}"
                            if name.startswith(".") and name.endswith(".tmp"):
                                loc.delete(rel)
                                removed += 1
                            elif (table in RAW_TABLES and name.endswith(".parquet")
                                  and not self._committed_part(name, known)):
                                loc.delete(rel)
                                removed += 1
        return removed

    # ---- SQL --------------------------------------------------------------------------------
    def connect(self, database: str = ":memory:", union_by_name: bool | None = None) -> duckdb.DuckDBPyConnection:
        """In-process DuckDB with one view per table (see :func:`connect`)."""
        return connect(self, database, union_by_name)


class StaleRead(ForensicsError):
    """What a command computed was read at an instrument scale a concurrent ingest changed."""


def os_reason(exc: OSError) -> str:
    """One line for an OS error: 'read-only file system', 'no space left on device', ..."""
    import errno
    text = {errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
            errno.EDQUOT: "disk quota exceeded", errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted"}.get(exc.errno)
    what = text or (exc.strerror or str(exc)).lower()
    return f"{what}" + (f" ({exc.filename})" if getattr(exc, "filename", None) else "")


#: a raw part named after its source file's hash (``<sha16>-<n>.parquet``, ``<sha16>-gaps``)
_SOURCE_PART = re.compile(r"^[0-9a-f]{16}-")

#: tables written by ingest (parts named after the source hash)
RAW_TABLES = ("book_updates", "trades", "quotes", "depth_bands", "gaps", "labels_level_changes")

MANIFEST_SCHEMA = {
    "source": pl.Utf8, "name": pl.Utf8, "sha256": pl.Utf8, "content_sha256": pl.Utf8, "companions": pl.Utf8,
    "bytes": pl.Int64, "format": pl.Utf8,
    "exchange": pl.Utf8, "symbol": pl.Utf8, "rows": pl.Int64, "book_rows": pl.Int64,
    "trade_rows": pl.Int64, "quote_rows": pl.Int64, "band_rows": pl.Int64, "rejected": pl.Int64,
    "dropped": pl.Int64, "duplicates": pl.Int64, "gaps": pl.Int64, "reordered": pl.Int64, "ts_min": pl.Int64,
    "ts_max": pl.Int64, "seconds": pl.Float64, "ingested_at": pl.Utf8,
}


# ---- DuckDB views -------------------------------------------------------------------------

def _sql_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _glob_escape(path: Path) -> str:
    """A literal directory path inside a DuckDB glob (a store under ``/data/x [old]`` works)."""
    import glob
    return glob.escape(str(path))


def _parquet_columns(store: "Store", path) -> list[str]:
    """Column names of one part (a name from :meth:`Store.files`; reads only its footer)."""
    try:
        return list(store.parquet_file(path).schema_arrow.names)
    except Exception as exc:  # truncated / not Parquet
        raise ForensicsError(f"unreadable Parquet part {path}: {exc}") from exc


#: tables whose parts may legitimately differ in columns (metrics extended over versions):
#: always read with ``union_by_name`` (they are small)
OPEN_SCHEMA_TABLES = ("events", "heatmap")


def _time_cols(cols) -> list[str]:
    return [c for c in cols if c in TIME_COLUMNS]


#: a view branch's source: (table, exchange, symbol, part files, union_by_name) -> FROM text
#: yielding the stored columns plus ``exchange``, ``symbol``, ``date``
SourceFn = Callable[[str, str, str, list, bool], str]


def _parquet_source(store: "Store") -> SourceFn:
    """read_parquet over an instrument's partition directory (a glob: new days are seen by a
    long-lived connection), or over the listed parts when uncommitted leftovers sit there.
    Local stores only (DuckDB reads no ``s3://`` without an extension: see :func:`arrow_source`)."""
    root = Path(store.root).resolve()
    orphans = {t: {p.resolve() for p in store.orphans(t)} for t in RAW_TABLES}

    def source(table: str, ex: str, sy: str, files: list, by_name: bool) -> str:
        base = root / table / f"exchange={ex}" / f"symbol={sy}"
        if any(p.parent.parent == base for p in orphans.get(table, ())):
            paths = "[" + ", ".join(_sql_str(_glob_escape(Path(f).resolve())) for f in files) + "]"
        else:
            paths = _sql_str(_glob_escape(base) + "/date=*/*.parquet")
        return (f"read_parquet({paths}, hive_partitioning=true, "
                f"union_by_name={'true' if by_name else 'false'}, "
                f"hive_types={{'exchange': VARCHAR, 'symbol': VARCHAR, 'date': DATE}})")
    return source


def arrow_source(con: duckdb.DuckDBPyConnection, store: "Store", filesystem=None) -> SourceFn:
    """View sources over pyarrow datasets registered on ``con``: each instrument's listed parts
    (partition ``date`` from the path, so date filters prune files and a pruned file is never
    opened), read through the store's ``pyarrow.fs`` (or ``filesystem``). DuckDB scans them with
    no file access of its own: the source of remote stores and of locked SQL sessions."""
    import pyarrow as pa
    import pyarrow.dataset as pads
    n = [0]
    part = pads.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
    if store.remote:
        fs = filesystem or store.location.arrow_fs
        to_path = lambda f: str(f)[len("s3://"):]  # noqa: E731
    else:
        fs = filesystem
        to_path = lambda f: str(Path(f).resolve())  # noqa: E731

    def source(table: str, ex: str, sy: str, files: list, by_name: bool) -> str:
        paths = [to_path(f) for f in files]
        schemas = [store.parquet_file(f).schema_arrow for f in (files if by_name else files[:1])]
        schema = pa.unify_schemas(schemas, promote_options="permissive") if len(schemas) > 1 else schemas[0]
        schema = pa.schema([f for f in schema if f.name not in ("exchange", "symbol", "date")])
        dset = pads.dataset(paths, schema=schema.append(pa.field("date", pa.date32())), format="parquet",
                            partitioning=part, partition_base_dir=paths[0].rsplit("/", 2)[0],
                            filesystem=fs)
        n[0] += 1
        name = f"__store_{table}_{n[0]}"
        con.register(name, dset)
        return f"(SELECT {_sql_str(ex)} AS exchange, {_sql_str(sy)} AS symbol, * FROM {name})"
    return source


def _view_sql(store: Store, table: str, union_by_name: bool | None = None,
              source: SourceFn | None = None) -> str | None:
    """SELECT for one table's view, or None when the table has no data and no schema.

    ``union_by_name``: None = only where needed (see below); True/False force it.
    ``source`` gives each instrument's FROM (default: read_parquet of its parts).
    """
    source = source or _parquet_source(store)
    pairs = store.instruments_in(table)
    exact = EXACT.get(table, {})
    if not pairs:
        schema = TABLES.get(table)
        if schema is None:
            return None
        cols = ["NULL::VARCHAR AS exchange", "NULL::VARCHAR AS symbol", "NULL::DATE AS date"]
        for c, t in schema.items():
            if c in exact:
                cols.append(f"NULL::DECIMAL(38,8) AS {c}")
            elif c in TIME_COLUMNS:
                cols.append(f"NULL::TIMESTAMP_NS AS {c}")
                cols.append(f"NULL::BIGINT AS {c}_ns")
            else:
                cols.append(f"NULL::{_DUCK_TYPES[t]} AS {c}")
        return "SELECT " + ", ".join(cols) + " WHERE false"
    insts = {(i.exchange, i.symbol): i for i in store.instruments()}
    scale = {
        "price": max([insts[p].price_decimals for p in pairs if p in insts] or [0]),
        "size": max([insts[p].size_decimals for p in pairs if p in insts] or [0]),
    }
    scale["price2"] = scale["price"] + 1
    branches = []
    for ex, sy in pairs:
        # One source per instrument: a filter on exchange/symbol prunes whole branches
        # (hive filter on constant partition values), a filter on date prunes files through
        # DuckDB's hive filter pushdown. Parts of pinned tables all carry the pinned columns
        # (writers conform to schema.TABLES), so the glob is bound from its first file only;
        # union_by_name (which opens every file's footer at bind time, i.e. on every query)
        # is kept for open-schema tables and for instruments whose first part deviates.
        files = store.files(table, ex, sy)
        cols = _parquet_columns(store, files[0])
        pinned = TABLES.get(table)
        by_name = (union_by_name if union_by_name is not None else
                   table in OPEN_SCHEMA_TABLES or pinned is None or set(cols) != set(pinned))
        if by_name:
            cols = list(dict.fromkeys(c for f in files for c in _parquet_columns(store, f)))
        src = source(table, ex, sy, files, by_name)
        inst = insts.get((ex, sy))
        repl = []
        for c, kind in exact.items():
            if c not in cols:
                continue
            if inst is None:
                raise ForensicsError(f"{table}: no instrument record for {ex}/{sy}; re-ingest its files")
            dec = inst.price_decimals if kind in ("price", "price2") else inst.size_decimals
            s = scale[kind]
            unit = f"{10 ** -dec:.{max(dec, 1)}f}" if kind != "price2" else f"{5 * 10 ** -(dec + 1):.{dec + 1}f}"
            repl.append(f"CAST({c} AS DECIMAL(18,0)) * CAST({unit} AS DECIMAL(20,{s})) AS {c}")
        for c in _time_cols(cols):
            repl.append(f"make_timestamp_ns({c}) AS {c}")
        extra = ", ".join(f"{c} AS {c}_ns" for c in _time_cols(cols))
        # partition columns first (as in the empty views), then the stored ones
        select = ("SELECT exchange, symbol, date, * EXCLUDE (exchange, symbol, date) "
                  + (f"REPLACE ({', '.join(repl)})" if repl else ""))
        if extra:
            select += ", " + extra
        branches.append(f"{select} FROM {src}")
    return "\nUNION ALL BY NAME\n".join(branches)


def connect(store: Store | str | os.PathLike | None = None,
            database: str = ":memory:", union_by_name: bool | None = None, *,
            con: duckdb.DuckDBPyConnection | None = None, source: SourceFn | None = None
            ) -> duckdb.DuckDBPyConnection:
    """The one DuckDB entry point: an in-process connection with a view per store table.

    Views: every partitioned table (``book_updates``, ``trades``, ``quotes``, ``depth_bands``,
    ``gaps``, and the derived ``depth``, ``book_top``, ``level_changes``, ``events``, ...)
    with ``exchange``, ``symbol``, ``date`` columns from the partitioning, exact DECIMAL prices
    and sizes in real units, timestamps as UTC ``TIMESTAMP_NS`` (raw int64 ns as ``<col>_ns``);
    plus ``manifest`` and ``instruments``. Filters on exchange/symbol/date prune files
    (constants and query parameters alike; a filter on ``ts`` alone only skips row groups,
    so add ``date`` to keep other days' files closed). View paths are absolute, so the
    statements from ``duckdb_views()`` work from any directory.

    ``union_by_name`` forces (True) or forbids (False) DuckDB's per-file schema union for
    every view; the default uses it only where parts may differ in columns.

    ``con``/``source`` (used by the locked SQL session): create the views on that connection,
    each instrument's FROM given by ``source``; the manifest is then registered as an Arrow
    table rather than read from its files by the view. An ``s3://`` store always reads
    through registered Arrow datasets (:func:`arrow_source`).
    """
    store = store if isinstance(store, Store) else Store(store)
    if store.rescale_pending():  # a rescale was killed half-way
        with store.lock():
            if store.rescale_pending():
                store._finish_rescale()
    con = con if con is not None else duckdb.connect(database)
    if source is None and store.remote:
        source = arrow_source(con, store)
    con.execute("SET TimeZone = 'UTC'")
    for table in PARTITIONED:
        sql = _view_sql(store, table, union_by_name, source)
        if sql is not None:
            con.execute(f"CREATE OR REPLACE VIEW {table} AS {sql}")
    ts_repl = "SELECT * REPLACE (make_timestamp_ns(ts_min) AS ts_min, make_timestamp_ns(ts_max) AS ts_max)"
    has_manifest = bool(store.manifest_rels())
    if has_manifest and source is not None:
        con.register("__store_manifest", store.manifest().to_arrow())
        con.execute(f"CREATE OR REPLACE VIEW manifest AS {ts_repl} FROM __store_manifest")
    elif has_manifest:
        man = Path(store.root) / "manifest"
        con.execute(
            f"CREATE OR REPLACE VIEW manifest AS {ts_repl} FROM read_parquet("
            f"{_sql_str(_glob_escape(man.resolve()) + '/*.parquet')}, union_by_name=true)")
    else:
        cols = ", ".join(f"NULL::{_DUCK_TYPES[t]} AS {c}" for c, t in MANIFEST_SCHEMA.items())
        con.execute(f"CREATE OR REPLACE VIEW manifest AS SELECT {cols} WHERE false")
    from forensics.runs import create_runs_view   # the runs table (parameters of each detect run)
    create_runs_view(con, store, registered=source is not None)
    rows = [f"({_sql_str(i.exchange)}, {_sql_str(i.symbol)}, {i.price_decimals}, {i.size_decimals})"
            for i in store.instruments()]
    if rows:
        con.execute(
            "CREATE OR REPLACE VIEW instruments AS SELECT exchange, symbol, price_decimals, size_decimals, "
            "CAST(pow(10, -price_decimals) AS DECIMAL(20,12)) AS tick, "
            "CAST(pow(10, -size_decimals) AS DECIMAL(20,12)) AS lot "
            f"FROM (VALUES {', '.join(rows)}) t(exchange, symbol, price_decimals, size_decimals)")
    else:
        con.execute("CREATE OR REPLACE VIEW instruments AS SELECT NULL::VARCHAR AS exchange, "
                    "NULL::VARCHAR AS symbol, NULL::INT AS price_decimals, NULL::INT AS size_decimals, "
                    "NULL::DECIMAL(20,12) AS tick, NULL::DECIMAL(20,12) AS lot WHERE false")
    return con
