"""``forensics sql`` and ``forensics queries``: read-only SQL over the store, named queries.

A thin layer over :mod:`forensics.sql` (sessions, query library, export).
"""
from __future__ import annotations

import datetime as dt
import os
import sys
from decimal import Decimal
from pathlib import Path

import click

from forensics.cli import LazyModule, cli, store_option
from forensics.errors import ForensicsError

pa = LazyModule("pyarrow")
fsql = LazyModule("forensics.sql")
#: output formats of ``forensics sql`` (= forensics.sql.FORMATS, here so --help needs no duckdb;
#: tests/test_cli_startup.py checks they agree)
OUTPUT_FORMATS = ("table", "csv", "json", "parquet")

EXPLAIN_COLUMNS = ["explain_key", "explain_value"]


def _parse_params(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ForensicsError(f"--param {item!r}: use NAME=VALUE")
        k, v = item.split("=", 1)
        k = k.strip().lstrip("$")
        if not k:
            raise ForensicsError(f"--param {item!r}: empty name")
        out[k] = v
    return out


def sql_literal(v) -> str:
    """A Python parameter value as a DuckDB SQL literal (for --show-sql)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, Decimal)):
        return str(v)
    if isinstance(v, dt.datetime):
        return f"TIMESTAMP '{v.isoformat(sep=' ')}'"
    if isinstance(v, dt.date):
        return f"DATE '{v.isoformat()}'"
    return "'" + str(v).replace("'", "''") + "'"


# ---- table rendering -----------------------------------------------------------------------

def _console(file=None):
    from rich.console import Console
    stream = file or sys.stdout
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(file=file, highlight=False, soft_wrap=not is_tty,
                   width=None if is_tty else 100_000, force_terminal=None if is_tty else False)


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def render_table(reader, console, max_rows: int = 50) -> int:
    """Print a result for people (first ``max_rows`` rows; 0 = all); returns the row count.

    A table; on a terminal too narrow for it, one block of ``column  value`` lines per row
    (like psql's expanded display) so that no value is cut.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    schema = reader.schema
    if schema.names == EXPLAIN_COLUMNS:  # EXPLAIN [ANALYZE]: the plan as DuckDB draws it
        n = 0
        for batch in reader:
            for value in batch.column(1).to_pylist():
                console.print(Text(value or ""), soft_wrap=True)
                n += 1
        return n
    rows: list[tuple] = []
    total = 0
    for batch in reader:
        total += batch.num_rows
        if max_rows and len(rows) >= max_rows:
            continue
        take = batch if not max_rows else batch.slice(0, max_rows - len(rows))
        if take.num_rows:
            rows.extend(fsql.text_frame(take).iter_rows())
    names = schema.names
    cells = [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    needed = sum(widths) + 3 * max(len(names) - 1, 0)
    if console.is_terminal and needed > console.width and cells:
        key_w = max(len(n) for n in names)
        for k, row in enumerate(cells):
            console.print(Text(f"-[ row {k + 1} ]" + "-" * 20, style="dim"))
            for n, v in zip(names, row):
                console.print(Text(f"{n:<{key_w}}  ", style="bold") + Text(v, style="dim" if v == "NULL" else ""),
                              soft_wrap=True)
    else:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=False)
        for f in schema:
            table.add_column(f.name, justify="right" if _is_numeric(f.type) else "left", no_wrap=True)
        for row in cells:
            table.add_row(*[Text(v, style="dim") if v == "NULL" else Text(v) for v in row])
        console.print(table, width=max(needed + 2, console.width if console.is_terminal else 0) or None,
                      crop=False)
    shown = len(cells)
    if shown < total:
        console.print(Text(f"{total} rows, first {shown} shown (--max-rows 0 shows all; "
                           f"--format csv|json|parquet --out FILE exports)", style="dim"))
    else:
        console.print(Text(f"{total} row{'s' if total != 1 else ''}", style="dim"))
    return total


# ---- sql -------------------------------------------------------------------------------------

FORMAT_HELP = ("Output: table (default; for people), csv, json (JSON Lines, one object per row), "
               "parquet (needs --out). Default from the --out suffix (.csv/.json/.jsonl/.parquet).")


@cli.command("sql")
@click.argument("sql_text", metavar="[SQL]", required=False)
@click.option("--query", "-q", "query_name", metavar="NAME", help="Run the named query queries/NAME.sql.")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="Parameter value for $NAME (repeatable; 'null' = SQL NULL).")
@store_option
@click.option("--format", "-f", "fmt", type=click.Choice(OUTPUT_FORMATS), default=None, help=FORMAT_HELP)
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the result to FILE instead of stdout.")
@click.option("--max-rows", type=int, default=50, show_default=True,
              help="Table format: rows printed (0 = all).")
@click.option("--tz", default="UTC", show_default=True,
              help="Timezone of time parameters given without offset (results stay UTC).")
@click.option("--queries-dir", multiple=True, type=click.Path(file_okay=False),
              help="Extra directory of named queries, searched first (also $FORENSICS_QUERIES).")
@click.option("--print-views", is_flag=True,
              help="Print the CREATE VIEW statements of the store (for the duckdb CLI) and exit.")
@click.option("--show-sql", is_flag=True,
              help="Print the SQL (named query: PREPARE + EXECUTE with the values) and exit.")
@click.option("--union-by-name", is_flag=True, hidden=True,
              help="Read every store part by column name (parts with differing columns).")
def sql_cmd(sql_text, query_name, params, store, fmt, out, max_rows, tz, queries_dir, print_views,
            show_sql, union_by_name):
    """Read-only SQL (DuckDB) over every table of the store.

    \b
    Views: book_updates, trades, quotes, depth_bands, gaps, manifest, instruments, runs and
    the derived depth, book_top, level_changes, events. Each has exchange, symbol and date
    (UTC day) columns; prices and sizes are exact DECIMALs; times are UTC TIMESTAMP_NS with
    the raw nanoseconds in <col>_ns. Filter on exchange/symbol/date to read only those files.
    Only reading statements run (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN ...).

    \b
    Examples:
      forensics sql "select exchange, symbol, date, count(*) from book_updates group by all"
      forensics sql "select * from trades where symbol = \\$s and date = '2025-10-10'" -p s=BTCUSDT
      forensics sql -q depth_within -p pct=0.5 -p from=2025-10-10T21:00 --out depth.parquet
      forensics sql -q cliffs --format json | jq .label
      forensics sql < query.sql                     # SQL from stdin
      forensics sql                                 # interactive prompt (on a terminal)
      forensics sql --print-views > views.sql && duckdb -init views.sql   # the duckdb CLI

    Without SQL and --query: an interactive prompt when stdin is a terminal (history;
    statements end with ';'; .help lists commands), else the SQL is read from stdin.
    csv/json write timestamps as ISO-8601 UTC ('...Z') and decimals as exact text (JSON
    strings); parquet keeps the types. `forensics queries` lists the named queries.
    """
    fmt = fsql.format_for(out, fmt)
    if fmt == "parquet" and not out:
        raise ForensicsError("--format parquet needs --out FILE")
    sql, bound, named = _resolve_sql(sql_text, query_name, params, queries_dir, tz, print_views)
    if show_sql:
        if sql is None:
            raise ForensicsError("--show-sql needs SQL or --query NAME")
        click.echo(_show_sql(sql, bound, named))
        return
    with fsql.Session(store, union_by_name=union_by_name or None,
                      progress_bar=(fmt == "table" and sys.stdout.isatty())) as sess:
        if print_views:
            click.echo(sess.view_statements(), nl=False)
            return
        if sql is None:
            _repl(sess, max_rows, tz, queries_dir)
            return
        statements = sess.statements(sql)
        if fmt != "table" and len(statements) > 1:
            raise ForensicsError(f"--format {fmt} writes one result; the SQL has {len(statements)} statements")
        if fmt == "table":
            total = _write_tables(sess, statements, bound, out, max_rows)
        else:
            total = _write_export(sess, statements[0], bound, fmt, out)
            if total is None:       # the reader of stdout went away
                return
        if out:
            click.echo(f"wrote {total} row{'s' if total != 1 else ''} to {out} ({fmt})", err=True)
        if named is not None and total == 0 and named.tables:
            _note_empty_tables(sess, named.tables)


def _resolve_sql(sql_text, query_name, params, queries_dir, tz, print_views):
    """(SQL text or None, bound parameter values, the named query or None) from the arguments:
    SQL, --query NAME with its --param values, or SQL from stdin when it is not a terminal."""
    if sql_text is not None and query_name:
        raise ForensicsError("give either SQL or --query NAME, not both")
    values = _parse_params(params)
    if query_name:
        named = fsql.load_query(query_name, fsql.query_dirs(queries_dir or None))
        return named.sql, named.bind(values, tz), named
    bound = {k: (None if v.strip().lower() == "null" else v) for k, v in values.items()}
    sql = sql_text
    if sql == "-" or (sql is None and not print_views and not sys.stdin.isatty()):
        sql = sys.stdin.read()
    return sql, bound, None


def _write_tables(sess, statements: list[str], bound: dict, out, max_rows: int) -> int:
    """Each statement's result as a table (to ``out`` or stdout); the last one's row count."""
    total = 0
    fh = open(out, "w", encoding="utf-8") if out else None
    try:
        console = _console(fh)
        for st in statements:
            total = render_table(sess.reader(st, bound), console, max_rows)
    finally:
        if fh:
            fh.close()
    return total


def _write_export(sess, statement: str, bound: dict, fmt: str, out) -> int | None:
    """One result as csv / JSON Lines / parquet; None when stdout's reader went away (``| head``)."""
    try:
        sys.stdout.flush()
        total = fsql.export(sess.reader(statement, bound), fmt, out, stdout=sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return total
    except (BrokenPipeError, OSError) as exc:  # e.g. `| head`: the reader went away
        if not isinstance(exc, BrokenPipeError) and "Broken pipe" not in str(exc):
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return None


def _note_empty_tables(sess, tables) -> None:
    for t in sess.empty_tables(tables):
        how = fsql.PRODUCERS.get(t)
        click.echo(f"note: {t} is empty in {sess.store.root}" + (f"; fill it with `{how}`" if how else ""), err=True)


def _show_sql(sql: str, bound: dict, named) -> str:
    used = fsql.statement_parameters(sql)
    if named is None or not used:
        return sql.strip()
    body = sql.strip().rstrip(";")
    args = ", ".join(f'"{k}" := {sql_literal(bound.get(k))}' for k in sorted(used))
    return f"PREPARE {named.name} AS\n{body};\nEXECUTE {named.name}({args});"


# ---- interactive prompt ----------------------------------------------------------------------

REPL_HELP = """\
Statements end with ';' (several lines allowed). Commands:
  .tables                 views and their row-less column counts
  .schema [VIEW]          columns and types (all views without VIEW)
  .queries                named queries
  .run NAME [k=v ...]     run a named query
  .maxrows N              rows shown per result (0 = all)
  .help                   this text
  .quit                   leave (or Ctrl-D)"""


def _repl(sess: fsql.Session, max_rows: int, tz: str, queries_dir) -> None:
    from rich.text import Text
    console = _console()
    hist = Path(os.environ.get("FORENSICS_SQL_HISTORY", "~/.forensics_sql_history")).expanduser()
    try:
        import readline
        try:
            readline.read_history_file(hist)
        except OSError:
            pass
        readline.set_history_length(2000)
    except ImportError:  # pragma: no cover - platforms without readline
        readline = None
    console.print(Text(f"forensics sql on {sess.store.root} (read-only); views: "
                       f"{', '.join(sess.views())}. End statements with ';', .help for commands, "
                       "Ctrl-D to quit.", style="dim"))
    buf: list[str] = []
    state = {"max_rows": max_rows}
    try:
        while True:
            try:
                line = input("sql> " if not buf else "...> ")
            except EOFError:
                console.print()
                break
            except KeyboardInterrupt:
                console.print()
                buf = []
                continue
            if not buf and line.strip().startswith("."):
                if not _dot(line.strip(), sess, console, state, tz, queries_dir):
                    break
                continue
            if not buf and not line.strip():
                continue
            buf.append(line)
            text = "\n".join(buf)
            if not fsql._strip_comments(text).rstrip().endswith(";"):
                continue
            buf = []
            try:
                for st in sess.statements(text):
                    render_table(sess.reader(st), console, state["max_rows"])
            except ForensicsError as exc:
                console.print(Text(f"error: {exc}", style="red"))
            except KeyboardInterrupt:
                sess.con.interrupt()
                console.print(Text("interrupted", style="red"))
    finally:
        if readline is not None:
            try:
                readline.write_history_file(hist)
            except OSError:
                pass


def _dot(line: str, sess: fsql.Session, console, state: dict, tz: str, queries_dir) -> bool:
    """Handle a dot command; False to quit."""
    from rich.text import Text
    parts = line.split()
    cmd, args = parts[0].lower(), parts[1:]
    try:
        if cmd in (".quit", ".exit", ".q"):
            return False
        if cmd == ".help":
            console.print(REPL_HELP)
        elif cmd == ".tables":
            for v, cols in sess.views().items():
                console.print(f"{v} ({len(cols)} columns)")
        elif cmd == ".schema":
            views = sess.views()
            for v in args or list(views):
                if v not in views:
                    raise ForensicsError(f"no view {v!r}; views: {', '.join(views)}")
                console.print(Text(v, style="bold"))
                for c, t in views[v]:
                    console.print(f"  {c:<18} {t}")
        elif cmd == ".queries":
            for q in fsql.list_queries(fsql.query_dirs(queries_dir or None)):
                console.print(f"{q.name:<22} {q.description}")
        elif cmd == ".run":
            if not args:
                raise ForensicsError(".run NAME [k=v ...]")
            q = fsql.load_query(args[0], fsql.query_dirs(queries_dir or None))
            render_table(sess.reader(q.sql, q.bind(_parse_params(tuple(args[1:])), tz)), console,
                         state["max_rows"])
        elif cmd == ".maxrows":
            state["max_rows"] = int(args[0])
        else:
            console.print(Text(f"unknown command {cmd}; .help lists them", style="red"))
    except (ForensicsError, ValueError, IndexError) as exc:
        console.print(Text(f"error: {exc}", style="red"))
    return True


# ---- queries ---------------------------------------------------------------------------------

@cli.command("queries")
@click.argument("name", required=False)
@click.option("--queries-dir", multiple=True, type=click.Path(file_okay=False),
              help="Extra directory of named queries, searched first (also $FORENSICS_QUERIES).")
def queries_cmd(name, queries_dir):
    """List the named queries (queries/*.sql), or show one query's parameters and SQL.

    \b
    Run one with: forensics sql --query NAME --param k=v ...
    A query file starts with comment lines:
      -- name: NAME
      -- description: one line
      -- param: NAME (TYPE, default VALUE): what it is   (TYPE: text int float decimal
      -- param: NAME (TYPE): a required one                bool time date duration)
      -- tables: the views it reads
      -- example: forensics sql --query NAME --param k=v
    and its SQL uses the parameters as $NAME (DuckDB named parameters; null = SQL NULL).
    """
    from rich.table import Table
    from rich.text import Text
    dirs = fsql.query_dirs(queries_dir or None)
    console = _console()
    if name:
        q = fsql.load_query(name, dirs)
        console.print(Text(q.name, style="bold") + Text(f"  ({q.path})", style="dim"))
        console.print(q.description)
        for note in q.notes:
            console.print(Text(note, style="dim"))
        if q.params:
            t = Table(box=None, show_header=True, pad_edge=False)
            for col in ("param", "type", "default", "description"):
                t.add_column(col)
            for p in q.params.values():
                t.add_row(p.name, p.type, "(required)" if p.required else p.default_text, p.description)
            console.print(t)
        if q.tables:
            console.print(Text("reads: " + ", ".join(q.tables), style="dim"))
        for ex in q.examples:
            console.print(Text("example: " + ex, style="dim"))
        console.print()
        console.print(Text(q.sql.strip()))
        return
    qs = fsql.list_queries(dirs)
    if not qs:
        raise ForensicsError("no named queries found (searched "
                             + (", ".join(str(d) for d in dirs) or "nothing") + ")")
    t = Table(box=None, pad_edge=False)
    t.add_column("query", style="bold", no_wrap=True)
    t.add_column("description")
    t.add_column("parameters")
    for q in qs:
        t.add_row(q.name, q.description, " ".join(p.spec() for p in q.params.values()))
    console.print(t)
    console.print(Text("run: forensics sql --query NAME --param k=v ...; details: forensics queries NAME",
                       style="dim"))
