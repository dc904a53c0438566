"""The read-only SQL session is read-only in fact (issue 12, defects 1 and 2).

Two independent guards, each tested on its own: the statement check refuses anything but
reads (including data-modifying CTEs, which DuckDB classifies as SELECT), and the session's
connection has no file access at all (views over Arrow datasets, no allowed directory, a
private temp directory), so even a statement the check let through cannot read or write a
file.
"""
import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from forensics import sql as fsql
from forensics.cli import cli
from forensics.store import Store

from tests.test_sql import build_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    base = tmp_path_factory.mktemp("rosql")
    return build_store(base / "store", base / "in")


def digest(root: Path) -> dict[str, str]:
    """Every file of the store with its content hash (a write of any kind changes it)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def run(store, *args, input=None):
    return CliRunner().invoke(cli, ["sql", "--store", str(store.root), *args], input=input,
                              catch_exceptions=False)


def a_part(store) -> Path:
    return store.files("trades")[0].resolve()


WRITE_VARIANTS = [
    "WITH x AS (COPY (SELECT 'garbage' g) TO '{part}' (FORMAT csv)) SELECT 1",
    "WITH x AS MATERIALIZED (CoPy (SELECT 'garbage' g) TO '{part}' (FORMAT csv)) SELECT 1",
    "EXPLAIN ANALYZE WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 1",
    "EXPLAIN WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 1",
    "with a as (select 1), x as not materialized (copy (select 1) to '{root}/y.csv') select * from a",
    "SELECT * FROM (WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 1)",
    "WITH x AS (INSERT INTO trades SELECT * FROM trades RETURNING *) SELECT 1",
    "WITH x AS (DELETE FROM trades RETURNING *) SELECT 1",
    "WITH x AS (UPDATE trades SET size = 0 RETURNING *) SELECT 1",
    "SELECT 1 UNION ALL (WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 2)",
    "DESCRIBE WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 1",
    "SUMMARIZE WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 1",
    "SHOW WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 1",
    "FROM (WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 1)",
    "SELECT 1 WHERE EXISTS (WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 1)",
    "EXPLAIN (FORMAT json) WITH x AS (COPY (SELECT 1) TO '{part}') SELECT 1",
    "COPY (SELECT 1) TO '{part}' (FORMAT csv)",
    "COPY trades TO '{root}/x.parquet'",
    "EXPORT DATABASE '{root}/exp'",
    "ATTACH '{root}/x.db' AS x",
    "ATTACH ':memory:' AS m",
    "INSTALL httpfs",
    "LOAD parquet",
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "PRAGMA threads = 4",
    "CREATE MACRO m(x) AS x + 1",
    "CREATE TABLE t AS SELECT 1",
    "CREATE TEMP TABLE t AS SELECT 1",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "CREATE OR REPLACE VIEW trades AS SELECT 1",
    "DROP VIEW trades",
    "CHECKPOINT",
    "VACUUM",
    "CALL enable_logging()",
]


@pytest.mark.parametrize("sql", WRITE_VARIANTS)
def test_every_write_variant_is_refused_and_nothing_changes(store, sql):
    before = digest(store.root)
    text = sql.format(part=a_part(store), root=store.root.resolve())
    with pytest.raises(fsql.SQLError):
        with fsql.Session(store) as s:
            s.df(text)
    r = run(store, text)
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert digest(store.root) == before
    assert run(store, "select count(*) from trades", "-f", "csv").output == "count_star()\n3\n"


@pytest.mark.parametrize("sql", WRITE_VARIANTS[:3])
def test_the_three_reported_variants_are_refused_by_the_check(store, sql):
    with pytest.raises(fsql.SQLError, match="refused"):
        fsql.check_read_only(sql.format(part=a_part(store), root=store.root))


def test_connection_cannot_write_even_if_the_check_is_bypassed(store, monkeypatch):
    """Defence in depth: with the statement check switched off, the connection itself still
    cannot write a part, read a file, attach or load anything."""
    monkeypatch.setattr(fsql, "_check", lambda stmt: None)
    before = digest(store.root)
    part = a_part(store)
    attempts = [
        f"COPY (SELECT 'garbage' g) TO '{part}' (FORMAT csv)",
        f"WITH x AS (COPY (SELECT 'garbage' g) TO '{part}' (FORMAT csv)) SELECT 1",
        f"COPY (SELECT 1) TO '{store.root.resolve()}/new.csv'",
        f"EXPORT DATABASE '{store.root.resolve()}/exp'",
        f"ATTACH '{store.root.resolve()}/x.db' AS x",
        f"SELECT * FROM read_parquet('{part}')",
        f"SELECT * FROM read_text('{part}')",
        f"SELECT * FROM glob('{store.root.resolve()}/*')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ]
    with fsql.Session(store) as s:
        for sql in attempts:
            with pytest.raises(fsql.SQLError):
                s.df(sql)
        # and the views still read
        assert s.df("select count(*) as n from trades")["n"][0] == 3
    assert digest(store.root) == before


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/hostname')",
    "SELECT * FROM read_json('/etc/os-release')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM glob('{root}/../*')",
    "SELECT * FROM read_parquet('{root}/../**/*.parquet')",
    "SELECT * FROM 'etc/passwd'",
    "SELECT getenv('HOME')",
])
def test_nothing_outside_the_views_is_readable(store, sql):
    with fsql.Session(store) as s:
        with pytest.raises(fsql.SQLError):
            s.df(sql.format(root=store.root.resolve()))


def test_tmp_symlink_in_the_working_directory_exposes_nothing(store, tmp_path, monkeypatch):
    """DuckDB's default temp directory is ``<cwd>/.tmp`` and is always allowed: the session
    sets its own, so a ``.tmp`` symlink to /etc in the working directory is not readable."""
    work = tmp_path / "cwd"
    work.mkdir()
    (work / ".tmp").symlink_to("/etc")
    monkeypatch.chdir(work)
    for sql in ["SELECT * FROM read_text('.tmp/passwd')", "SELECT * FROM read_csv('.tmp/passwd')",
                f"SELECT * FROM read_text('{work}/.tmp/passwd')", "SELECT * FROM glob('.tmp/*')"]:
        with fsql.Session(store) as s:
            with pytest.raises(fsql.SQLError):
                s.df(sql)
        r = run(store, sql)
        assert r.exit_code == 1 and "root:" not in r.output
    with fsql.Session(store) as s:
        tmp = s.con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        assert not tmp.startswith(str(work)) and Path(tmp).is_dir()
        assert oct(os.stat(tmp).st_mode & 0o777) == "0o700"
    assert not Path(tmp).exists()  # removed with the session


def test_reads_still_work_and_are_exact(store):
    with fsql.Session(store) as s:
        df = s.df("select price::varchar p, size::varchar q from trades order by seq")
        assert df.rows() == [("120000.0", "1.000"), ("120000.0", "0.001"), ("120500.5", "0.400")]
        assert s.df("select count(*) n from manifest")["n"][0] == 3
        assert s.df("show tables")["name"].to_list()  # the catalogue is readable
        s.df("explain analyze with x as materialized (select * from trades) select count(*) from x")
        assert s.df("select 'copy (select 1) to x' as copy, 1 as \"insert\"").rows() == [("copy (select 1) to x", 1)]


def test_sql_on_a_missing_store_is_an_error(tmp_path):
    r = CliRunner().invoke(cli, ["sql", "--store", str(tmp_path / "nope"), "select 1"])
    assert r.exit_code == 1 and "no store at" in r.output
    with pytest.raises(fsql.ForensicsError, match="no store"):
        fsql.Session(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_a_long_session_sees_a_rescale_at_the_new_scale(tmp_path, write):
    """The session's views are rebuilt when an ingest changed instruments since they were built."""
    from forensics.ingest import ingest
    from tests.test_store import agg
    root = tmp_path / "store"
    ingest([write("BTCUSDT-aggTrades-2025-10-10.csv", agg(("120000.1", "0.5")))], store=root)
    with fsql.Session(root) as s:
        assert s.df("select price::varchar p from trades")["p"].to_list() == ["120000.1"]
        ingest([write("BTCUSDT-aggTrades-2025-10-10-b.csv", agg(("120000.15", "0.5")))], store=root)
        assert sorted(s.df("select price::varchar p from trades")["p"].to_list()) == ["120000.10", "120000.15"]
    assert Store(root).instrument("binance-futures", "BTCUSDT").price_decimals == 2
