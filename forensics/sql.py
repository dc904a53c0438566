"""SQL over the store: read-only sessions, the named query library, result export.

The function behind ``forensics sql`` and ``forensics queries``.

Sessions
--------
:func:`session` opens a :class:`Session`: the DuckDB connection of
:func:`forensics.store.connect` (one view per table: ``book_updates``, ``trades``, ``quotes``,
``depth_bands``, ``gaps``, ``depth``, ``book_top``, ``level_changes``, ``events``,
``manifest``, ``instruments``; exact DECIMAL prices/sizes, UTC ``TIMESTAMP_NS`` times with the
raw ns as ``<col>_ns``; ``exchange``/``symbol``/``date`` from the partitioning), locked down
so that it cannot change the store:

* every statement is parsed first (``extract_statements``) and only reads are run:
  ``SELECT``/``WITH``/``FROM``/``VALUES``/``DESCRIBE``/``SHOW``/``SUMMARIZE``, ``EXPLAIN
  [ANALYZE]`` of those, and the read-only ``PRAGMA``\\ s in :data:`READ_PRAGMAS`; anything else
  (``COPY``, ``INSERT``, ``CREATE``, ``ATTACH``, ``SET``, ``LOAD``, ``EXPORT``, ...) is refused
  with a :class:`SQLError`, and so is a SELECT whose parse tree (``json_serialize_sql``) holds
  anything but query nodes (:data:`READ_NODES`): a data-modifying CTE such as
  ``WITH x AS (COPY ... TO ...) SELECT 1``, which DuckDB classifies as a SELECT;
* independently of that check, the connection cannot touch a file: the views read the
  store's parts through pyarrow datasets registered on it (:func:`_arrow_source`), then the
  connection gets a private empty ``temp_directory`` (DuckDB's default ``<cwd>/.tmp`` is
  always allowed), no allowed directory or path, ``enable_external_access = false``, no
  extension auto-install/-load, and a locked configuration (``lock_configuration``);
* each statement's result is read under the store's shared readers lock (no rescale can
  rewrite parts under it), and the views are rebuilt first if an ingest changed the store.

Filters on ``exchange``/``symbol``/``date`` (constants or ``$parameters``) prune Parquet
files: a query on one day of one symbol opens only that partition's files. A filter on
``ts`` alone skips row groups by their statistics but still opens each file's footer, so
add ``date`` (the UTC day) when the store is large.

Named queries
-------------
``queries/<name>.sql`` (repository root; see :func:`query_dirs`) hold one statement each,
headed by ``--`` comment lines::

    -- name: depth_within
    -- description: One line shown by `forensics queries`.
    -- param: pct (float, default 1.0): band edge in percent of mid
    -- param: symbol (text, default null): symbol filter (null = every symbol)
    -- param: event_id (text): an event (no default: required)
    -- tables: depth
    -- example: forensics sql --query depth_within --param pct=0.5

The header is the leading block of comment lines. ``name`` must equal the file name (it is
the query's name anyway); ``description`` is one line; each ``param`` is ``NAME (TYPE[,
default VALUE | , required]): description`` with TYPE one of :data:`PARAM_TYPES`; a param
without default is required; ``default null`` binds SQL NULL, which queries use as "no
filter" (``$symbol IS NULL OR symbol = $symbol``). ``tables`` lists the views the query
reads (an empty result then says which of them are empty and which command fills them);
``example`` lines are shown by ``forensics queries NAME``; other comment lines are notes.
The body uses DuckDB named parameters (``$pct``); every ``$name`` must be declared.
Values come from ``--param name=value`` as text and are converted by type: ``time`` reads
ISO-8601 (without offset: in ``--tz``, default UTC) or epoch numbers and binds a UTC
TIMESTAMP (microseconds), ``date`` a DATE, ``duration`` (``100ms``, ``1s``, ``5m``, ``1h``)
binds BIGINT nanoseconds (bucket with ``make_timestamp_ns(ts_ns // $b * $b)``: exact,
unlike ``time_bucket`` which rounds TIMESTAMP_NS to microseconds), ``decimal`` an exact
DECIMAL; ``null`` is NULL for every type.

Export formats
--------------
``table`` (rich, for people), ``csv``, ``json`` (JSON Lines: one object per row, streamed),
``parquet`` (native types). In csv/json/table, timestamps are ISO-8601 UTC with a ``Z``
(``2025-10-10T21:13:00.123Z``; fractional digits in groups of 3, as many as needed to be
exact, none for whole seconds; TIMESTAMPTZ values are converted to UTC), dates
``YYYY-MM-DD``, decimals exact strings keeping the column's scale (``"120000.10"``; in JSON
they are *strings*, so no consumer rounds them through a float), NaN/inf floats are empty
in csv and ``null`` in json, intervals text, nested values JSON text (csv) or nested JSON.
Parquet keeps DECIMAL and timestamps (marked UTC) as they are.
"""
from __future__ import annotations


import io
import os
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Iterable, Iterator

import duckdb
import polars as pl
import pyarrow as pa

from forensics.errors import ForensicsError
from forensics.store import Store, arrow_source, connect

QUERIES_ENV = "FORENSICS_QUERIES"
FORMATS = ("table", "csv", "json", "parquet")
BATCH_ROWS = 65_536

#: PRAGMAs that only read (anything else, e.g. ``PRAGMA threads=1``, is refused)
READ_PRAGMAS = frozenset({
    "table_info", "show", "show_tables", "show_tables_expanded", "show_databases",
    "database_list", "database_size", "version", "platform", "functions", "collations",
    "storage_info", "metadata_info", "user_agent",
})

#: which command fills a (derived) table: for the note on an empty result
PRODUCERS = {
    "book_updates": "forensics ingest", "trades": "forensics ingest", "quotes": "forensics ingest",
    "depth_bands": "forensics ingest", "gaps": "forensics ingest", "manifest": "forensics ingest",
    "instruments": "forensics ingest", "depth": "forensics depth", "book_top": "forensics depth",
    "level_changes": "forensics detect", "events": "forensics detect", "runs": "forensics detect",
    "incidents": "forensics incidents",
}

_ST = duckdb.StatementType
_REFUSE_HINTS = {
    "CREATE": "use WITH name AS (...) SELECT ... instead of CREATE",
    "COPY": "export results with --format csv|json|parquet --out FILE",
    "EXPORT": "export results with --format csv|json|parquet --out FILE",
    "COPY_DATABASE": "export results with --format csv|json|parquet --out FILE",
    "ATTACH": "for other databases use the duckdb CLI with `forensics sql --print-views`",
    "SET": "settings are fixed for the session",
    "VARIABLE_SET": "settings are fixed for the session",
    "LOAD": "extensions cannot be loaded in this session; use the duckdb CLI with --print-views",
    "CALL": "call table functions as SELECT * FROM fn(...)",
}


class SQLError(ForensicsError):
    """A query DuckDB refused or the session does not allow; one line, with a hint."""

    def __init__(self, message: str, hint: str | None = None):
        self.message, self.hint = message, hint
        super().__init__(_one_line(message + (f" (hint: {hint})" if hint else "")))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---- statement checks ----------------------------------------------------------------------

_PARSER = None


def _parser() -> duckdb.DuckDBPyConnection:
    global _PARSER
    if _PARSER is None:
        _PARSER = duckdb.connect()
    return _PARSER


def _strip_comments(text: str) -> str:
    """``text`` without leading whitespace and SQL comments."""
    s = text
    while True:
        s = s.lstrip()
        if s.startswith("--"):
            nl = s.find("\n")
            s = "" if nl < 0 else s[nl + 1:]
        elif s.startswith("/*"):
            end = s.find("*/")
            s = "" if end < 0 else s[end + 2:]
        else:
            return s


_EXPLAIN = re.compile(r"(?is)^explain\b\s*(?:analy[sz]e\b\s*)?")
_EXPLAIN_OPTIONS = re.compile(r"(?s)^\((?:[^()]|\([^()]*\))*\)\s*")
_PRAGMA = re.compile(r"(?is)^pragma\s+([a-z_][a-z0-9_]*)\s*(=)?")


def parse_statements(sql: str) -> list:
    """DuckDB statements of ``sql`` (parsed, not run); SQLError on a syntax error."""
    try:
        stmts = _parser().extract_statements(sql)
    except duckdb.Error as exc:
        raise _duck_error(exc, sql) from None
    if not stmts:
        raise SQLError("no SQL statement given")
    return stmts


#: query nodes a read may contain; anything else (COPY_QUERY_NODE, INSERT_QUERY_NODE, ... in a
#: data-modifying CTE, which DuckDB still classifies as a SELECT statement) is refused
READ_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
_WRITE_WORDS = re.compile(r"(?i)\b(copy|insert|update|delete|merge|attach|export)\b")


def _node_types(tree, acc: set[str]) -> set[str]:
    """Every query-node type and statement-info type in a ``json_serialize_sql`` tree."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == "type" and isinstance(v, str) and v.endswith("_NODE"):
                acc.add(v)
            elif k == "info_type" and isinstance(v, str):
                acc.add(v)
            else:
                _node_types(v, acc)
    elif isinstance(tree, list):
        for v in tree:
            _node_types(v, acc)
    return acc


def _check_select_tree(query: str) -> None:
    """Refuse a SELECT whose parse tree holds anything but reads (a data-modifying CTE:
    ``WITH x AS (COPY ... TO ...) SELECT 1``, ``AS MATERIALIZED (INSERT ...)``, ...)."""
    import json as _json
    try:
        tree = _json.loads(_parser().execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    except (duckdb.Error, ValueError, TypeError):
        tree = {"error": True}
    if tree.get("error"):
        # not serialisable (rare syntax): refuse only if it could hold a write
        if _WRITE_WORDS.search(query):
            raise SQLError("refused: cannot verify that this statement only reads (it mentions "
                           f"{_WRITE_WORDS.search(query).group(1).upper()})")
        return
    bad = sorted(_node_types(tree, set()) - READ_NODES)
    if bad:
        what = bad[0].replace("_QUERY_NODE", "").replace("_INFO", "").replace("_NODE", "")
        raise SQLError(f"refused: {what} inside a query (a data-modifying WITH clause) is not allowed, "
                       "the SQL session only reads the store", _REFUSE_HINTS.get(what))


def _check(stmt) -> None:
    kind = stmt.type
    if kind == _ST.SELECT:
        _check_select_tree(stmt.query)
        return
    text = _strip_comments(stmt.query)
    if kind == _ST.EXPLAIN:
        m = _EXPLAIN.match(text)
        inner = text[m.end():] if m else ""
        opts = _EXPLAIN_OPTIONS.match(inner)
        if opts and inner[opts.end():].strip().rstrip(";").strip():
            inner = inner[opts.end():]  # EXPLAIN (FORMAT json) <statement>
        if inner.strip().rstrip(";").strip():
            for s in parse_statements(inner):
                _check(s)
            return
        raise SQLError(f"refused: cannot tell what this EXPLAIN runs: {_one_line(text)[:60]!r}")
    if kind == _ST.PRAGMA:
        m = _PRAGMA.match(text)
        if m and m.group(1).lower() in READ_PRAGMAS and not m.group(2):
            return
        name = m.group(1) if m else "?"
        raise SQLError(f"refused: PRAGMA {name} is not a read-only PRAGMA; the SQL session only reads "
                       "the store", f"allowed: {', '.join(sorted(READ_PRAGMAS))}")
    name = kind.name
    raise SQLError(
        f"refused: {name} statements are not allowed, the SQL session only reads the store "
        "(SELECT/WITH/FROM/VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, read-only PRAGMAs)",
        _REFUSE_HINTS.get(name))


def check_read_only(sql: str) -> list[str]:
    """Each statement of ``sql`` as text if every one only reads; else :class:`SQLError`."""
    stmts = parse_statements(sql)
    for st in stmts:
        _check(st)
    return [st.query.strip() for st in stmts]


def statement_parameters(sql: str) -> set[str]:
    """Named parameters (``$name``) used by the statements of ``sql``."""
    out: set[str] = set()
    for st in parse_statements(sql):
        out |= set(st.named_parameters)
    return out


# ---- sessions ------------------------------------------------------------------------------

#: filesystem the session's datasets read through (None = local; tests count opened files)
DATASET_FS = None


def _arrow_source(con: duckdb.DuckDBPyConnection, store: Store):
    """View sources for a locked session: each instrument's parts as a pyarrow dataset
    registered on ``con`` (:func:`forensics.store.arrow_source`); DuckDB scans them without any
    file access of its own."""
    return arrow_source(con, store, DATASET_FS)


class Session:
    """A read-only SQL session over a store (see the module docstring)."""

    def __init__(self, store: Store | str | os.PathLike | None = None, *, locked: bool = True,
                 union_by_name: bool | None = None, progress_bar: bool = False):
        self.store = store if isinstance(store, Store) else Store(store)
        if not self.store.exists():
            raise ForensicsError(f"no store at {self.store.root} (not a directory, or an empty s3:// prefix); "
                                 "ingest data first with `forensics ingest --store DIR` or give --store")
        self.locked, self._union_by_name, self._progress_bar = locked, union_by_name, progress_bar
        self._tmp: str | None = None
        self._views: dict[str, list[tuple[str, str]]] | None = None
        self.con = self._open()

    def _fingerprint(self) -> tuple:
        """What the views were built from: instruments' decimals and the committed sources."""
        insts = tuple((i.exchange, i.symbol, i.price_decimals, i.size_decimals) for i in self.store.instruments())
        return insts, frozenset(self.store._known_sources())

    def _open(self) -> duckdb.DuckDBPyConnection:
        """A connection with the store's views. Locked: the views read registered Arrow datasets
        (the part files listed now), and the connection itself has no file access at all
        (``enable_external_access = false``, no allowed directory, its temp directory a private
        empty one), so no statement can write or read any file, whatever the checks miss."""
        with self.store.reading():
            self._built = self._fingerprint()
            if not self.locked:
                con = connect(self.store, union_by_name=self._union_by_name)
                con.execute(f"SET enable_progress_bar = {'true' if self._progress_bar else 'false'}")
                return con
            import tempfile
            con = duckdb.connect()
            self._tmp = self._tmp or tempfile.mkdtemp(prefix="forensics-sql-")
            con.execute(f"SET temp_directory = {_sql_str(self._tmp)}")
            connect(self.store, union_by_name=self._union_by_name, con=con, source=_arrow_source(con, self.store))
            con.execute(f"SET enable_progress_bar = {'true' if self._progress_bar else 'false'}")
            con.execute("SET allowed_directories = []")
            con.execute("SET allowed_paths = []")
            con.execute("SET enable_external_access = false")
            con.execute("SET autoinstall_known_extensions = false")
            con.execute("SET autoload_known_extensions = false")
            con.execute("SET lock_configuration = true")
            return con

    def refresh(self) -> bool:
        """Rebuild the views if an ingest or rescale changed the store since they were built
        (True if rebuilt): a long session never reads parts at a stale scale."""
        if self._fingerprint() == self._built:
            return False
        self.con.close()
        self._views = None
        self.con = self._open()
        return True

    def close(self) -> None:
        self.con.close()
        if self._tmp:
            import shutil
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- catalogue -------------------------------------------------------------------------
    def views(self) -> dict[str, list[tuple[str, str]]]:
        """View name -> [(column, DuckDB type)], in column order."""
        if self._views is None:
            rows = self.con.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name NOT LIKE '\\_\\_store\\_%' ESCAPE '\\' "
                "ORDER BY table_name, ordinal_position").fetchall()
            out: dict[str, list[tuple[str, str]]] = {}
            for t, c, ty in rows:
                out.setdefault(t, []).append((c, ty))
            self._views = out
        return self._views

    def view_statements(self) -> str:
        """SQL that recreates this session's views in any DuckDB (e.g. the ``duckdb`` CLI)."""
        con = connect(self.store, union_by_name=self._union_by_name)  # read_parquet views, not our datasets
        try:
            rows = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal "
                               "AND schema_name = 'main' ORDER BY view_name").fetchall()
        finally:
            con.close()
        where = self.store.root if self.store.remote else Path(self.store.root).resolve()
        out = [f"-- views over the forensics store {where}",
               "-- (regenerate after ingesting new instruments: `forensics sql --print-views`)",
               "SET TimeZone = 'UTC';"]
        for name, sql in rows:
            sql = sql.strip().rstrip(";")
            sql = re.sub(r"^CREATE VIEW", "CREATE OR REPLACE VIEW", sql, count=1)
            out.append(sql + ";")
        return "\n".join(out) + "\n"

    def empty_tables(self, tables: Iterable[str]) -> list[str]:
        """Those of ``tables`` (views) that hold no row."""
        out = []
        for t in tables:
            if t not in self.views():
                out.append(t)
                continue
            n = self.con.execute(f'SELECT count(*) FROM (SELECT 1 FROM "{t}" LIMIT 1)').fetchone()[0]
            if n == 0:
                out.append(t)
        return out

    # ---- running ---------------------------------------------------------------------------
    def statements(self, sql: str) -> list[str]:
        """The statements of ``sql`` (each checked to be read-only)."""
        return check_read_only(sql)

    def relation(self, sql: str, params: dict | None = None) -> duckdb.DuckDBPyRelation:
        """A relation for one read-only statement; ``params`` bind its ``$name`` parameters
        (extra keys are ignored, a missing one is an error)."""
        stmts = parse_statements(sql)
        if len(stmts) != 1:
            raise SQLError(f"expected one SQL statement, got {len(stmts)}",
                           "run them one at a time, or separate results with the table format")
        _check(stmts[0])
        used = set(stmts[0].named_parameters)
        params = dict(params or {})
        missing = sorted(used - set(params))
        if missing:
            raise SQLError(f"missing parameter(s) {', '.join('$' + m for m in missing)}",
                           "give " + " ".join(f"--param {m}=VALUE" for m in missing))
        values = {k: v for k, v in params.items() if k in used}
        self.refresh()
        try:
            rel = self.con.sql(sql, params=values or None)
        except duckdb.Error as exc:
            raise self.error(exc, sql) from None
        if rel is None:
            raise SQLError("statement returned no result")
        return rel

    def reader(self, sql: str, params: dict | None = None,
               batch_rows: int = BATCH_ROWS) -> "ResultReader":
        """Stream the result of one statement as Arrow record batches."""
        hold = self.store.reading()  # no rescale while the result is read (released at its end)
        hold.__enter__()
        try:
            rel = self.relation(sql, params)
            rdr = rel.to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            hold.__exit__(None, None, None)
            raise self.error(exc, sql) from None
        except BaseException:
            hold.__exit__(None, None, None)
            raise
        return ResultReader(rdr, self, sql, hold)

    def arrow(self, sql: str, params: dict | None = None) -> pa.Table:
        return self.reader(sql, params).read_all()

    def df(self, sql: str, params: dict | None = None) -> pl.DataFrame:
        """The whole result of one statement as a Polars frame (native types)."""
        return pl.from_arrow(_arrow_compatible(self.arrow(sql, params)))

    def run_query(self, name: str | "NamedQuery", params: dict[str, str] | None = None,
                  tz: str = "UTC", dirs: list[Path] | None = None) -> pl.DataFrame:
        """Run a named query with ``--param``-style text values; a Polars frame."""
        q = name if isinstance(name, NamedQuery) else load_query(name, dirs)
        return self.df(q.sql, q.bind(params or {}, tz))

    # ---- errors ----------------------------------------------------------------------------
    def error(self, exc: BaseException, sql: str) -> SQLError:
        return _duck_error(exc, sql, self)


class ResultReader:
    """Arrow batches of a result; DuckDB errors while reading become :class:`SQLError`."""

    def __init__(self, reader: pa.RecordBatchReader, session: Session | None = None, sql: str = "",
                 hold=None):
        self._reader, self._session, self._sql, self._hold = reader, session, sql, hold

    def close(self) -> None:
        """Let go of the store's readers lock (done when the batches run out)."""
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.__exit__(None, None, None)

    def __del__(self):
        self.close()

    @property
    def schema(self) -> pa.Schema:
        return self._reader.schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        it = iter(self._reader)
        try:
            while True:
                try:
                    batch = next(it)
                except StopIteration:
                    return
                except (duckdb.Error, pa.ArrowException) as exc:
                    raise _duck_error(exc, self._sql, self._session) from None
                yield batch
        finally:
            self.close()

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self), schema=self.schema)


def session(store: Store | str | os.PathLike | None = None, **kw) -> Session:
    """A read-only :class:`Session` over ``store`` (default ``./store`` / ``$FORENSICS_STORE``)."""
    return Session(store, **kw)


def run_sql(sql: str, store: Store | str | os.PathLike | None = None,
            params: dict | None = None) -> pl.DataFrame:
    """One read-only statement against the store's views, as a Polars frame."""
    with Session(store) as s:
        return s.df(sql, params)


def run_query(name: str, params: dict[str, str] | None = None,
              store: Store | str | os.PathLike | None = None, tz: str = "UTC",
              dirs: list[Path] | None = None) -> pl.DataFrame:
    """A named query (``queries/<name>.sql``) with text parameter values, as a Polars frame."""
    with Session(store) as s:
        return s.run_query(name, params, tz, dirs)


# ---- error messages ------------------------------------------------------------------------

def _duck_error(exc: BaseException, sql: str, sess: Session | None = None) -> SQLError:
    text = str(exc).strip()
    lines = text.splitlines()
    head, where = [], ""
    for i, line in enumerate(lines):
        m = re.match(r"LINE (\d+):(.*)$", line)
        if m:
            caret = lines[i + 1] if i + 1 < len(lines) else ""
            col = caret.find("^") - len(f"LINE {m.group(1)}:")
            snippet = m.group(2)[max(col, 0):].strip() if col >= 0 else m.group(2).strip()
            where = f" at line {m.group(1)} near {snippet[:40]!r}" if snippet else f" at line {m.group(1)}"
            break
        if line.strip():
            head.append(line.strip())
    message = " ".join(head) + where
    return SQLError(message, _hint(message, sql, sess))


def _hint(message: str, sql: str, sess: Session | None) -> str | None:
    low = message.lower()
    views = sess.views() if sess is not None else {}
    if "schema mismatch" in low:
        return ("parts of one table differ in columns; rerun with --union-by-name "
                "(Session(union_by_name=True)) to read them by name")
    if "file system operations are disabled" in low or "permission error" in low:
        return ("the session reads only the store; for other files use the duckdb CLI with "
                "`forensics sql --print-views`")
    if "configuration has been locked" in low:
        return "settings are fixed for the session"
    if not views:
        return None
    referenced = [v for v in views if re.search(rf'(?i)(?<![\w."]){re.escape(v)}(?![\w"])', sql)]
    if "catalog error" in low and ("table with name" in low or "does not exist" in low):
        return ("views: " + ", ".join(views)
                + "; `DESCRIBE <view>` or `forensics sql --print-views` shows their columns")
    if "binder error" in low and ("column" in low or "not found" in low):
        shown = referenced or list(views)
        return "; ".join(f"{v} columns: {', '.join(c for c, _ in views[v])}" for v in shown[:4])
    return None


# ---- named queries -------------------------------------------------------------------------

PARAM_TYPES = ("text", "int", "float", "decimal", "bool", "time", "date", "duration")


@dataclass
class Param:
    """A declared query parameter."""

    name: str
    type: str
    default_text: str | None  # None = required
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default_text is None

    def parse(self, text: str | None, tz: str = "UTC"):
        """``--param`` text -> the Python value bound to ``$name`` (``null`` -> None)."""
        if text is None:
            return None
        s = str(text).strip()
        if s.lower() in ("null", "none", ""):
            return None
        try:
            return _PARSERS[self.type](s, tz)
        except ForensicsError as exc:
            raise ForensicsError(f"--param {self.name}={text}: {exc}") from None
        except (ValueError, InvalidOperation):
            raise ForensicsError(f"--param {self.name}={text}: not a valid {self.type}") from None

    def spec(self) -> str:
        return (f"{self.name} (required)" if self.required
                else f"{self.name}={self.default_text}")


def _bool(s: str, tz: str) -> bool:
    low = s.lower()
    if low in ("1", "true", "t", "yes", "y", "on"):
        return True
    if low in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError(s)


def _time(s: str, tz: str):
    import datetime as dt

    from forensics.timeutil import NS_PER_S, parse_time
    ns = parse_time(s, tz)
    base = dt.datetime(1970, 1, 1)
    return base + dt.timedelta(seconds=ns // NS_PER_S, microseconds=(ns % NS_PER_S) // 1000)


def _date(s: str, tz: str):
    import datetime as dt
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        return _time(s, tz).date()


def _duration(s: str, tz: str) -> int:
    from forensics.timeutil import parse_duration
    ns = parse_duration(s)
    if ns <= 0:
        raise ForensicsError("a duration must be positive")
    return ns


_PARSERS = {
    "text": lambda s, tz: s,
    "int": lambda s, tz: int(s),
    "float": lambda s, tz: float(s),
    "decimal": lambda s, tz: Decimal(s),
    "bool": _bool,
    "time": _time,
    "date": _date,
    "duration": _duration,
}


@dataclass
class NamedQuery:
    """A ``queries/<name>.sql`` file: header fields and the SQL."""

    name: str
    path: Path
    description: str
    params: dict[str, Param]
    sql: str
    tables: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def bind(self, values: dict[str, str], tz: str = "UTC") -> dict[str, object]:
        """Text values (``--param k=v``) -> typed values for every declared parameter."""
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise ForensicsError(
                f"query {self.name} has no parameter {', '.join(unknown)}; its parameters: "
                + (", ".join(p.spec() for p in self.params.values()) or "none"))
        missing = [p for p in self.params.values() if p.required and p.name not in values]
        if missing:
            raise ForensicsError(
                f"query {self.name} needs " + ", ".join(
                    f"--param {p.name}=<{p.type}>" + (f" ({p.description})" if p.description else "")
                    for p in missing))
        return {p.name: p.parse(values.get(p.name, p.default_text), tz) for p in self.params.values()}


_HEADER_KEY = re.compile(r"^--\s*(name|description|param|tables|example)\s*:\s*(.*?)\s*$", re.I)
_PARAM_SPEC = re.compile(
    r"^([A-Za-z_]\w*)\s*\(\s*([A-Za-z]+)\s*(?:,\s*(required|default\s+(.*?)))?\s*\)\s*:?\s*(.*)$", re.I)


def parse_query(text: str, path: Path) -> NamedQuery:
    """Parse one query file (header + one statement); ForensicsError naming the file."""
    name = path.stem
    desc, params, tables, examples, notes = "", {}, [], [], []

    def bad(msg: str) -> ForensicsError:
        return ForensicsError(f"{path}: {msg}")

    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if not s.startswith("--"):
            break
        m = _HEADER_KEY.match(s)
        if not m:
            note = s[2:].strip()
            if note:
                notes.append(note)
            continue
        key, value = m.group(1).lower(), m.group(2)
        if key == "name":
            if value != name:
                raise bad(f"header name {value!r} differs from the file name {name!r}")
        elif key == "description":
            desc = value
        elif key == "tables":
            tables = [t.strip() for t in re.split(r"[,\s]+", value) if t.strip()]
        elif key == "example":
            examples.append(value)
        else:
            pm = _PARAM_SPEC.match(value)
            if not pm:
                raise bad(f"cannot read param line {value!r}: use `-- param: NAME (TYPE, default VALUE): "
                          "description` or `-- param: NAME (TYPE): description` (required)")
            pname, ptype = pm.group(1), pm.group(2).lower()
            if ptype not in PARAM_TYPES:
                raise bad(f"param {pname}: unknown type {ptype!r} (one of {', '.join(PARAM_TYPES)})")
            default = None if (pm.group(3) is None or pm.group(3).lower() == "required") else pm.group(4)
            params[pname] = Param(pname, ptype, default, pm.group(5).strip())
    if not desc:
        raise bad("no `-- description:` line in the header")
    try:
        stmts = parse_statements(text)
    except SQLError as exc:
        raise bad(str(exc)) from None
    if len(stmts) != 1:
        raise bad(f"a named query holds exactly one statement, found {len(stmts)}")
    _check(stmts[0])
    undeclared = sorted(set(stmts[0].named_parameters) - set(params))
    if undeclared:
        raise bad(f"parameter(s) {', '.join('$' + u for u in undeclared)} used but not declared "
                  "with `-- param:`")
    for p in params.values():  # defaults must parse
        try:
            p.parse(p.default_text)
        except ForensicsError as exc:
            raise bad(f"default of {exc}") from None
    return NamedQuery(name, path, desc, params, text, tables, examples, notes)


def builtin_queries_dir() -> Path | None:
    """The shipped library: ``queries/`` at the repository root (next to the package in a
    checkout or editable install), else ``forensics/queries`` (package data) or
    ``<prefix>/share/forensics/queries`` (data files of an installed wheel)."""
    pkg = Path(__file__).resolve().parent
    for cand in (pkg.parent / "queries", pkg / "queries",
                 Path(sys.prefix) / "share" / "forensics" / "queries"):
        if cand.is_dir():
            return cand
    return None


def query_dirs(extra: Iterable[str | os.PathLike] | str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for ``<name>.sql``, first match wins: ``extra`` (``--queries-dir``),
    then ``$FORENSICS_QUERIES`` (``os.pathsep``-separated), then the shipped library."""
    dirs: list[Path] = []
    if extra is not None:
        extra = [extra] if isinstance(extra, (str, os.PathLike)) else list(extra)
        for d in extra:
            if not Path(d).is_dir():
                raise ForensicsError(f"--queries-dir {d}: not a directory")
            dirs.append(Path(d))
    for d in filter(None, os.environ.get(QUERIES_ENV, "").split(os.pathsep)):
        if not Path(d).is_dir():
            raise ForensicsError(f"{QUERIES_ENV}={d}: not a directory")
        dirs.append(Path(d))
    builtin = builtin_queries_dir()
    if builtin is not None:
        dirs.append(builtin)
    out = []
    for d in dirs:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def list_queries(dirs: list[Path] | None = None) -> list[NamedQuery]:
    """Every named query (sorted by name; a name in an earlier directory hides later ones)."""
    dirs = query_dirs() if dirs is None else dirs
    seen: dict[str, NamedQuery] = {}
    for d in dirs:
        for p in sorted(Path(d).glob("*.sql")):
            if p.stem not in seen:
                seen[p.stem] = parse_query(p.read_text(encoding="utf-8"), p)
    return [seen[k] for k in sorted(seen)]


def load_query(name: str, dirs: list[Path] | None = None) -> NamedQuery:
    dirs = query_dirs() if dirs is None else dirs
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise ForensicsError(f"bad query name {name!r}")
    name = name[:-4] if name.endswith(".sql") else name
    for d in dirs:
        p = Path(d) / f"{name}.sql"
        if p.is_file():
            return parse_query(p.read_text(encoding="utf-8"), p)
    known = sorted({p.stem for d in dirs for p in Path(d).glob("*.sql")})
    where = ", ".join(str(d) for d in dirs) or "no query directory found"
    raise ForensicsError(f"no query named {name!r} (searched {where}); known: "
                         + (", ".join(known) or "none") + " (`forensics queries` lists them)")


# ---- export --------------------------------------------------------------------------------

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"


def _sql_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _interval_text(v) -> str | None:
    if v is None:
        return None
    months, days, ns = v.months, v.days, v.nanoseconds
    parts = []
    if months:
        y, mo = divmod(abs(months), 12)
        sign = "-" if months < 0 else ""
        if y:
            parts.append(f"{sign}{y} year{'s' if y != 1 else ''}")
        if mo:
            parts.append(f"{sign}{mo} month{'s' if mo != 1 else ''}")
    if days:
        parts.append(f"{days} day{'s' if abs(days) != 1 else ''}")
    if ns or not parts:
        sign = "-" if ns < 0 else ""
        ns = abs(ns)
        h, rem = divmod(ns, 3_600_000_000_000)
        m, rem = divmod(rem, 60_000_000_000)
        sec, frac = divmod(rem, 1_000_000_000)
        t = f"{sign}{h:02d}:{m:02d}:{sec:02d}"
        if frac:
            t += ("." + f"{frac:09d}").rstrip("0")
        parts.append(t)
    return " ".join(parts)


def _arrow_compatible(data: pa.Table | pa.RecordBatch) -> pa.Table | pa.RecordBatch:
    """Replace Arrow types Polars cannot take (intervals) by text."""
    cols, changed = [], False
    for i, f in enumerate(data.schema):
        col = data.column(i)
        if pa.types.is_interval(f.type):
            col = pa.array([_interval_text(v) for v in col.to_pylist()], pa.string())
            changed = True
        cols.append(col)
    if not changed:
        return data
    names = data.schema.names
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatch.from_arrays(cols, names=names)
    return pa.Table.from_arrays(cols, names=names)


def _nested_json(col: str) -> pl.Expr:
    # polars encodes structs as JSON; wrap anything nested in a one-field struct and unwrap
    enc = pl.struct(pl.col(col).alias("v")).struct.json_encode()
    return enc.str.slice(5, enc.str.len_chars() - 6).alias(col)


def text_frame(data: pa.Table | pa.RecordBatch, nested: str = "json") -> pl.DataFrame:
    """A result batch with every value in its export text form (see the module docstring).

    ``nested="json"`` turns lists/structs into JSON text (csv, table); ``"keep"`` leaves them
    nested (JSON Lines), with NaN/inf floats nulled.
    """
    df = pl.from_arrow(_arrow_compatible(data))
    if isinstance(df, pl.Series):
        df = df.to_frame()
    exprs = []
    for name, dtype in df.schema.items():
        c = pl.col(name)
        if dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
            if getattr(dtype, "time_zone", None):
                c = c.dt.convert_time_zone("UTC")
            exprs.append(c.dt.to_string(TIME_FORMAT).alias(name))
        elif isinstance(dtype, (pl.Date, pl.Time, pl.Decimal, pl.Duration, pl.Categorical, pl.Enum)):
            exprs.append(c.cast(pl.Utf8).alias(name))
        elif dtype == pl.Binary:
            exprs.append(c.bin.encode("hex").alias(name))
        elif isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
            exprs.append(_nested_json(name) if nested == "json" else c)
        elif dtype in (pl.Float32, pl.Float64):
            exprs.append(pl.when(c.is_finite()).then(c).otherwise(None).alias(name))
        else:
            exprs.append(c)
    return df.select(exprs) if exprs else df


def _batches(reader) -> Iterator[pa.RecordBatch]:
    if isinstance(reader, (pa.Table,)):
        yield from reader.to_batches()
    else:
        yield from reader


def write_csv(reader, fh: IO[bytes]) -> int:
    """CSV with a header; returns the row count."""
    rows, header = 0, True
    for batch in _batches(reader):
        if batch.num_rows == 0 and not header:
            continue
        text_frame(batch).write_csv(fh, include_header=header, null_value="", float_precision=None)
        header = False
        rows += batch.num_rows
    if header:  # no batch at all: header from the schema
        text_frame(reader.schema.empty_table()).write_csv(fh, include_header=True)
    return rows


def write_json(reader, fh: IO[bytes]) -> int:
    """JSON Lines (one object per row); returns the row count."""
    rows = 0
    for batch in _batches(reader):
        if batch.num_rows:
            buf = io.BytesIO()
            text_frame(batch, nested="keep").write_ndjson(buf)
            fh.write(buf.getvalue())
            rows += batch.num_rows
    return rows


def parquet_schema(schema: pa.Schema) -> pa.Schema:
    """Result schema as written to Parquet: naive timestamps marked UTC, intervals as text."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_timestamp(t) and t.tz is None:
            t = pa.timestamp(t.unit, tz="UTC")
        elif pa.types.is_interval(t):
            t = pa.string()
        fields.append(pa.field(f.name, t, f.nullable))
    return pa.schema(fields)


def write_parquet(reader, path: str | os.PathLike) -> int:
    """Parquet (zstd) with native types; written to a temporary name and renamed."""
    import pyarrow.parquet as pq
    path = Path(path)
    schema = parquet_schema(reader.schema)
    tmp = path.with_name(f".{path.name}.tmp")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
            for batch in _batches(reader):
                batch = _arrow_compatible(batch)
                w.write_batch(batch.cast(schema) if batch.schema != schema else batch)
                rows += batch.num_rows
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return rows


def export(reader, fmt: str, out: str | os.PathLike | None = None,
           stdout: IO[bytes] | None = None) -> int:
    """Write a result as csv/json/parquet to ``out`` (or ``stdout`` for csv/json)."""
    if fmt not in ("csv", "json", "parquet"):
        raise ForensicsError(f"unknown export format {fmt!r} (csv, json, parquet)")
    if fmt == "parquet":
        if out is None:
            raise ForensicsError("--format parquet needs --out FILE")
        return write_parquet(reader, out)
    writer = write_csv if fmt == "csv" else write_json
    if out is None:
        return writer(reader, stdout or sys.stdout.buffer)
    path = Path(out)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            n = writer(reader, fh)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def format_for(out: str | os.PathLike | None, fmt: str | None) -> str:
    """The output format: ``fmt`` if given, else from ``out``'s suffix, else table."""
    if fmt:
        return fmt
    if out is not None:
        suffix = Path(out).suffix.lower()
        by_suffix = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json",
                     ".parquet": "parquet", ".pq": "parquet"}
        if suffix in by_suffix:
            return by_suffix[suffix]
    return "table"


__all__ = [
    "Session", "session", "run_sql", "run_query", "SQLError", "check_read_only", "NamedQuery",
    "Param", "list_queries", "load_query", "parse_query", "query_dirs", "builtin_queries_dir",
    "export", "write_csv", "write_json", "write_parquet", "text_frame", "format_for", "FORMATS",
]
