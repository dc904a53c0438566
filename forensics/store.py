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
* One writer at a time (``Store.lock``); any number of readers.

Where it lives: a local directory or ``s3://bucket/prefix`` (:mod:`forensics.storefs`); every
method below works on both, through the store's :class:`~forensics.storefs.Location`. Part
"files" are root-relative names turned into a path (local) or an ``s3://`` URL by
:meth:`Store.uri`; read them with :meth:`Store.read_part`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

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
TIME_COLUMNS = ("ts", "local_ts", "ts_from", "ts_to", "start_ts", "end_ts", "ts_min", "ts_max")


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


def safe_name(value: str) -> str:
    """A partition value safe as a directory name (venue symbols keep their spelling)."""
    value = str(value).strip()
    if not value or value in (".", "..") or any(c in value for c in "/\\=\0"):
        raise ForensicsError(f"invalid exchange/symbol name {value!r}")
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
        """Part files of a table (local Paths, or ``s3://`` URLs), pruned like :meth:`part_rels`."""
        rels = self.part_rels(table, exchange, symbol, ts_from, ts_to)
        if self.remote:
            return [self.uri(r) for r in rels]
        return [Path(self.uri(r)) for r in rels]

    def instruments_in(self, table: str) -> list[tuple[str, str]]:
        """(exchange, symbol) pairs that have at least one part in ``table``."""
        pairs = set()
        for ex in self._values(table, "exchange"):
            for sy in self._values(f"{table}/exchange={ex}", "symbol"):
                base = f"{table}/exchange={ex}/symbol={sy}"
                if any(self._part_names(f"{base}/date={d}") for d in self._values(base, "date")):
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
        return Instrument(exchange, symbol, int(row["price_decimals"]), int(row["size_decimals"]),
                          int(row["next_seq"]))

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
        """Apply a journalled rescale (idempotent: parts already moved are skipped)."""
        loc = self.location
        j = json.loads(loc.read_text(f"{RESCALE_DIR}/journal.json"))
        for rel in j["files"]:
            src = f"{RESCALE_DIR}/{rel}"
            if loc.exists(src):
                loc.move(src, rel)
        old = self.instrument(j["exchange"], j["symbol"])
        self.save_instrument(Instrument(j["exchange"], j["symbol"], j["price_decimals"], j["size_decimals"],
                                        old.next_seq if old else 0))
        loc.delete_tree(RESCALE_DIR)

    def rescale_pending(self) -> bool:
        return self.location.exists(f"{RESCALE_DIR}/journal.json")

    # ---- writing --------------------------------------------------------------------------
    def lock(self):
        """Exclusive writer lock on the store (blocks until free): an ``fcntl`` lock locally, a
        conditional-create lease object on S3 (:mod:`forensics.storefs`)."""
        return self.location.lock()

    # ---- staging (ingest) -------------------------------------------------------------------
    def staging_dir(self, key: str) -> Path:
        """A local directory to stage one writer's parts before they are published: inside the
        store for a local store (same file system: publication is a rename), a private
        temporary directory for a remote one."""
        if self.remote:
            return Path(tempfile.mkdtemp(prefix=f"forensics-stage-{key}-"))
        return Path(self.root) / ".staging" / key

    def publish(self, local: Path, rel: str) -> None:
        """Move a staged local file to ``rel`` in the store (a rename locally, an upload and a
        local delete on S3; a reader sees the whole object or none)."""
        if self.remote:
            self.location.write_bytes(rel, Path(local).read_bytes())
            Path(local).unlink()
        else:
            dest = Path(self.uri(rel))
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local, dest)

    def write_partitioned(self, table: str, df: pl.DataFrame, exchange: str, symbol: str,
                          name: str, ts_column: str = "ts", replace_dates: bool = False) -> list[Path]:
        """Write ``df`` (one instrument, stored units) as ``<name>.parquet`` in each date it
        spans (UTC date of ``ts_column``), atomically per file.

        With ``replace_dates`` every other part in those date partitions is removed after the
        new file is in place (derived tables recomputed for whole days).
        """
        if df.height == 0:
            return []
        df = df.with_columns(date_expr(ts_column).alias("__date"))
        paths = []
        for (day,), part in df.group_by(["__date"], maintain_order=True):
            rel_dir = self.partition_rel(table, exchange, symbol, day)
            rel = f"{rel_dir}/{name}.parquet"
            self.location.write_parquet(part.drop("__date"), rel)
            if replace_dates:
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
                            elif table in RAW_TABLES and name.endswith(".parquet") and name[:16] not in known:
                                loc.delete(rel)
                                removed += 1
        return removed

    # ---- SQL --------------------------------------------------------------------------------
    def connect(self, database: str = ":memory:", union_by_name: bool | None = None) -> duckdb.DuckDBPyConnection:
        """In-process DuckDB with one view per table (see :func:`connect`)."""
        return connect(self, database, union_by_name)


#: tables written by ingest (parts named after the source hash)
RAW_TABLES = ("book_updates", "trades", "quotes", "depth_bands", "gaps")

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


def _parquet_columns(store: "Store", rel: str) -> list[str]:
    """Column names of one Parquet part (reads only its footer)."""
    try:
        return list(store.location.parquet_metadata(rel).schema.names)
    except Exception as exc:  # truncated / not Parquet
        raise ForensicsError(f"unreadable Parquet part {store.uri(rel)}: {exc}") from exc


def _arrow_source(con: duckdb.DuckDBPyConnection, store: "Store", table: str, ex: str, sy: str) -> str:
    """A remote store's parts of one instrument as a ``pyarrow.dataset`` registered on ``con``
    (DuckDB scans it through pyarrow.fs: no httpfs extension, which would need a download);
    ``date`` comes from the hive partitioning and filters on it prune fragments."""
    import pyarrow as pa
    import pyarrow.dataset as pads
    loc = store.location
    base = f"{table}/exchange={ex}/symbol={sy}"
    rels = store.part_rels(table, ex, sy)
    part = pads.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
    ds = pads.dataset([loc.arrow_path(r) for r in rels], filesystem=loc.arrow_fs, format="parquet",
                      partitioning=part, partition_base_dir=loc.arrow_path(base))
    name = f"__src_{table}_{abs(hash((ex, sy))) % 10**12}"
    con.register(name, ds)
    return (f"(SELECT {_sql_str(ex)} AS exchange, {_sql_str(sy)} AS symbol, "
            f"CAST(date AS DATE) AS date, * EXCLUDE (date) FROM {name})")


#: tables whose parts may legitimately differ in columns (metrics extended over versions):
#: always read with ``union_by_name`` (they are small)
OPEN_SCHEMA_TABLES = ("events", "heatmap")


def _time_cols(cols) -> list[str]:
    return [c for c in cols if c in TIME_COLUMNS]


def _view_sql(store: Store, table: str, union_by_name: bool | None = None,
              con: duckdb.DuckDBPyConnection | None = None) -> str | None:
    """SELECT for one table's view, or None when the table has no data and no schema.

    ``union_by_name``: None = only where needed (see below); True/False force it.
    """
    pairs = store.instruments_in(table)
    exact = EXACT.get(table, {})
    if not pairs:
        schema = TABLES.get(table)
        if schema is None:
            return None
        cols = [f"NULL::VARCHAR AS exchange", "NULL::VARCHAR AS symbol", "NULL::DATE AS date"]
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
    root = None if store.remote else Path(store.root).resolve()
    for ex, sy in pairs:
        # One read_parquet per instrument: a filter on exchange/symbol prunes whole branches
        # (hive filter on constant partition values), a filter on date prunes files through
        # DuckDB's hive filter pushdown. Parts of pinned tables all carry the pinned columns
        # (writers conform to schema.TABLES), so the glob is bound from its first file only;
        # union_by_name (which opens every file's footer at bind time, i.e. on every query)
        # is kept for open-schema tables and for instruments whose first part deviates.
        first = store.part_rels(table, ex, sy)[0]
        cols = _parquet_columns(store, first)
        pinned = TABLES.get(table)
        by_name = (union_by_name if union_by_name is not None else
                   table in OPEN_SCHEMA_TABLES or pinned is None or set(cols) != set(pinned))
        if root is None:
            src = _arrow_source(con, store, table, ex, sy)
        else:
            glob = _glob_escape(root / table / f"exchange={ex}" / f"symbol={sy}") + "/date=*/*.parquet"
            src = (f"read_parquet({_sql_str(glob)}, hive_partitioning=true, "
                   f"union_by_name={'true' if by_name else 'false'}, "
                   f"hive_types={{'exchange': VARCHAR, 'symbol': VARCHAR, 'date': DATE}})")
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
            database: str = ":memory:", union_by_name: bool | None = None) -> duckdb.DuckDBPyConnection:
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
    """
    store = store if isinstance(store, Store) else Store(store)
    if store.rescale_pending():  # a rescale was killed half-way
        with store.lock():
            if store.rescale_pending():
                store._finish_rescale()
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    for table in PARTITIONED:
        sql = _view_sql(store, table, union_by_name, con)
        if sql is not None:
            con.execute(f"CREATE OR REPLACE VIEW {table} AS {sql}")
    man_rels = store.manifest_rels()
    if man_rels:
        if store.remote:
            con.register("__src_manifest", store.manifest().to_arrow())
            src = "__src_manifest"
        else:
            man = Path(store.root) / "manifest"
            src = f"read_parquet({_sql_str(_glob_escape(man.resolve()) + '/*.parquet')}, union_by_name=true)"
        con.execute(
            f"CREATE OR REPLACE VIEW manifest AS SELECT * REPLACE (make_timestamp_ns(ts_min) AS ts_min, "
            f"make_timestamp_ns(ts_max) AS ts_max) FROM {src}")
    else:
        cols = ", ".join(f"NULL::{_DUCK_TYPES[t]} AS {c}" for c, t in MANIFEST_SCHEMA.items())
        con.execute(f"CREATE OR REPLACE VIEW manifest AS SELECT {cols} WHERE false")
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
