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
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from forensics.errors import ForensicsError
from forensics.exact import room as exact_room
from forensics.schema import EXACT, PARTITIONED, TABLES
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
    """A Parquet store rooted at a directory. Cheap to construct; no I/O until used."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or os.environ.get("FORENSICS_STORE") or DEFAULT_STORE)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ---- layout -------------------------------------------------------------------------
    def table_dir(self, table: str) -> Path:
        return self.root / table

    def partition_dir(self, table: str, exchange: str, symbol: str, date: str) -> Path:
        return (self.root / table / f"exchange={safe_name(exchange)}" / f"symbol={safe_name(symbol)}"
                / f"date={date}")

    def files(self, table: str, exchange: str | None = None, symbol: str | None = None,
              ts_from: int | None = None, ts_to: int | None = None) -> list[Path]:
        """Part files of a table, pruned by instrument and by date range (UTC ns, inclusive)."""
        base = self.table_dir(table)
        if not base.is_dir():
            return []
        ex = f"exchange={exchange}" if exchange else "exchange=*"
        sy = f"symbol={symbol}" if symbol else "symbol=*"
        d_from = date_of(ts_from) if ts_from is not None else None
        d_to = date_of(ts_to) if ts_to is not None else None
        out = []
        for d in sorted(base.glob(f"{ex}/{sy}/date=*")):
            day = d.name.split("=", 1)[1]
            if (d_from and day < d_from) or (d_to and day > d_to):
                continue
            out.extend(sorted(p for p in d.glob("*.parquet") if not p.name.startswith(".")))
        return out

    def instruments_in(self, table: str) -> list[tuple[str, str]]:
        """(exchange, symbol) pairs that have at least one part in ``table``."""
        base = self.table_dir(table)
        pairs = set()
        for p in base.glob("exchange=*/symbol=*/date=*/*.parquet"):
            if not p.name.startswith("."):
                pairs.add((p.parents[2].name.split("=", 1)[1], p.parents[1].name.split("=", 1)[1]))
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
        lf = pl.scan_parquet([str(f) for f in files], hive_partitioning=False, glob=False)
        if ts_from is not None:
            lf = lf.filter(pl.col(ts_column) >= ts_from)
        if ts_to is not None:
            lf = lf.filter(pl.col(ts_column) <= ts_to)
        cols = lf.collect_schema().names()
        order = [c for c in (ts_column, "seq") if c in cols]
        return lf.sort(order, maintain_order=True) if order else lf

    # ---- instruments ----------------------------------------------------------------------
    def _instrument_path(self, exchange: str, symbol: str) -> Path:
        return (self.root / "instruments" / f"exchange={safe_name(exchange)}" / f"symbol={safe_name(symbol)}"
                / "instrument.parquet")

    def instrument(self, exchange: str, symbol: str) -> Instrument | None:
        path = self._instrument_path(exchange, symbol)
        if not path.exists():
            return None
        row = pl.read_parquet(path, glob=False).row(0, named=True)
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
        write_parquet_atomic(df, self._instrument_path(inst.exchange, inst.symbol))

    def instruments(self) -> list[Instrument]:
        out = []
        for p in sorted((self.root / "instruments").glob("exchange=*/symbol=*/instrument.parquet")):
            ex = p.parents[1].name.split("=", 1)[1]
            sy = p.parent.name.split("=", 1)[1]
            out.append(self.instrument(ex, sy))
        return out

    def max_abs_units(self, exchange: str, symbol: str) -> dict[str, int]:
        """Largest ``|value|`` of the instrument's stored exact columns per kind (``price``
        includes ``price2`` columns; ``size``), over raw and derived tables. Read from the
        Parquet footers' statistics (the column itself only where a part has none)."""
        import pyarrow.parquet as pq
        out = {"price": 0, "size": 0}
        for table, cols in EXACT.items():
            for f in self.files(table, exchange, symbol):
                meta = pq.read_metadata(f)
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
                            v = pl.read_parquet(f, columns=[c], glob=False)[c].abs().max()
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
        work = self.root / RESCALE_DIR
        if work.exists():
            shutil.rmtree(work)
        moved = []
        for table, cols in EXACT.items():
            for f in self.files(table, inst.exchange, inst.symbol):
                df = pl.read_parquet(f, glob=False)
                exprs = [pl.col(c) * (10 ** (dp if kind in ("price", "price2") else ds))
                         for c, kind in cols.items() if c in df.columns]
                rel = f.relative_to(self.root)
                write_parquet_atomic(df.with_columns(exprs), work / rel)
                moved.append(str(rel))
        new = Instrument(inst.exchange, inst.symbol, price_decimals, size_decimals, inst.next_seq)
        journal = work / "journal.json"
        tmp = work / ".journal.json.tmp"
        work.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"exchange": inst.exchange, "symbol": inst.symbol, "price_decimals": price_decimals,
                                   "size_decimals": size_decimals, "files": moved}))
        os.replace(tmp, journal)
        self._finish_rescale(work)
        return new

    def _finish_rescale(self, work: Path) -> None:
        """Apply a journalled rescale (idempotent: parts already moved are skipped)."""
        j = json.loads((work / "journal.json").read_text())
        for rel in j["files"]:
            src = work / rel
            if src.exists():
                os.replace(src, self.root / rel)
        old = self.instrument(j["exchange"], j["symbol"])
        self.save_instrument(Instrument(j["exchange"], j["symbol"], j["price_decimals"], j["size_decimals"],
                                        old.next_seq if old else 0))
        shutil.rmtree(work)

    # ---- writing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self):
        """Exclusive writer lock on the store (blocks until free)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

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
            path = self.partition_dir(table, exchange, symbol, day) / f"{name}.parquet"
            write_parquet_atomic(part.drop("__date"), path)
            if replace_dates:
                for other in path.parent.glob("*.parquet"):
                    if other != path:
                        other.unlink()
            paths.append(path)
        return paths

    def delete(self, table: str, exchange: str, symbol: str, ts_from: int | None = None,
               ts_to: int | None = None) -> int:
        """Remove a derived table's parts for one instrument (whole date partitions)."""
        files = self.files(table, exchange, symbol, ts_from, ts_to)
        for f in files:
            f.unlink()
        return len(files)

    # ---- manifest -------------------------------------------------------------------------
    def manifest(self) -> pl.DataFrame:
        files = sorted((self.root / "manifest").glob("*.parquet"))
        if not files:
            return pl.DataFrame(schema=MANIFEST_SCHEMA)
        return pl.concat([pl.read_parquet(f, glob=False) for f in files], how="diagonal_relaxed")

    def manifest_row(self, sha256: str) -> dict | None:
        path = self.root / "manifest" / f"{sha256}.parquet"
        return pl.read_parquet(path, glob=False).row(0, named=True) if path.exists() else None

    def content_index(self) -> dict[str, dict]:
        """Decompressed-content hash -> ``{sha256, name, companions}`` of every manifest row
        that has one (one read of the manifest's few columns; an ingest loads it once)."""
        files = [str(f) for f in sorted((self.root / "manifest").glob("*.parquet")) if not f.name.startswith(".")]
        if not files:
            return {}
        df = (pl.scan_parquet(files, glob=False, missing_columns="insert")
              .select("content_sha256", "sha256", "name", "companions")
              .filter(pl.col("content_sha256").is_not_null()).collect())
        return {r["content_sha256"]: r for r in df.iter_rows(named=True)}

    def write_manifest(self, row: dict) -> None:
        df = pl.DataFrame([row], schema=MANIFEST_SCHEMA)
        write_parquet_atomic(df, self.root / "manifest" / f"{row['sha256']}.parquet")

    def remove_source(self, sha256: str) -> int:
        """Delete every raw part and the manifest row of one source file (``--force``)."""
        n = 0
        for p in self.root.glob(f"*/exchange=*/symbol=*/date=*/{sha256[:16]}-*.parquet"):
            p.unlink()
            n += 1
        m = self.root / "manifest" / f"{sha256}.parquet"
        if m.exists():
            m.unlink()
        return n

    def recover(self) -> int:
        """Remove leftovers of killed writes: staging dirs, temp files, parts without manifest."""
        removed = 0
        work = self.root / RESCALE_DIR
        if (work / "journal.json").exists():
            self._finish_rescale(work)  # killed while moving rescaled parts: complete it
        elif work.exists():
            shutil.rmtree(work)  # killed while writing them: the stored parts are untouched
        staging = self.root / ".staging"
        if staging.exists():
            removed += sum(1 for p in staging.rglob("*.parquet"))
            shutil.rmtree(staging)
        known = {p.stem[:16] for p in (self.root / "manifest").glob("*.parquet")}
        for p in self.root.glob("*/exchange=*/symbol=*/date=*/*"):
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                p.unlink()
                removed += 1
            elif p.parents[3].name in RAW_TABLES and p.suffix == ".parquet" and p.name[:16] not in known:
                p.unlink()
                removed += 1
        return removed

    # ---- SQL --------------------------------------------------------------------------------
    def connect(self, database: str = ":memory:", union_by_name: bool | None = None) -> duckdb.DuckDBPyConnection:
        """In-process DuckDB with one view per table (see :func:`connect`)."""
        return connect(self, database, union_by_name)


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


def _parquet_columns(path: Path) -> list[str]:
    """Column names of one Parquet file (reads only its footer)."""
    import pyarrow.parquet as pq
    try:
        return list(pq.read_schema(path).names)
    except Exception as exc:  # truncated / not Parquet
        raise ForensicsError(f"unreadable Parquet part {path}: {exc}") from exc


#: tables whose parts may legitimately differ in columns (metrics extended over versions):
#: always read with ``union_by_name`` (they are small)
OPEN_SCHEMA_TABLES = ("events", "heatmap")


def _time_cols(cols) -> list[str]:
    return [c for c in cols if c in TIME_COLUMNS]


def _view_sql(store: Store, table: str, union_by_name: bool | None = None) -> str | None:
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
    root = store.root.resolve()
    for ex, sy in pairs:
        # One read_parquet per instrument: a filter on exchange/symbol prunes whole branches
        # (hive filter on constant partition values), a filter on date prunes files through
        # DuckDB's hive filter pushdown. Parts of pinned tables all carry the pinned columns
        # (writers conform to schema.TABLES), so the glob is bound from its first file only;
        # union_by_name (which opens every file's footer at bind time, i.e. on every query)
        # is kept for open-schema tables and for instruments whose first part deviates.
        glob = _glob_escape(root / table / f"exchange={ex}" / f"symbol={sy}") + "/date=*/*.parquet"
        first = store.files(table, ex, sy)[0]
        cols = _parquet_columns(first)
        pinned = TABLES.get(table)
        by_name = (union_by_name if union_by_name is not None else
                   table in OPEN_SCHEMA_TABLES or pinned is None or set(cols) != set(pinned))
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
    if (store.root / RESCALE_DIR / "journal.json").exists():  # a rescale was killed half-way
        with store.lock():
            if (store.root / RESCALE_DIR / "journal.json").exists():
                store._finish_rescale(store.root / RESCALE_DIR)
    con = duckdb.connect(database)
    con.execute("SET TimeZone = 'UTC'")
    for table in PARTITIONED:
        sql = _view_sql(store, table, union_by_name)
        if sql is not None:
            con.execute(f"CREATE OR REPLACE VIEW {table} AS {sql}")
    man = store.root / "manifest"
    if any(man.glob("*.parquet")):
        con.execute(
            f"CREATE OR REPLACE VIEW manifest AS SELECT * REPLACE (make_timestamp_ns(ts_min) AS ts_min, "
            f"make_timestamp_ns(ts_max) AS ts_max) FROM read_parquet({_sql_str(_glob_escape(man.resolve()) + '/*.parquet')}, "
            f"union_by_name=true)")
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
