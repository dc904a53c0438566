"""forensics sql / queries: read-only sessions, named queries, export formats, pruning."""
import datetime as dt
import json
import re
import shutil
from decimal import Decimal

import polars as pl
import pytest
from click.testing import CliRunner

from forensics import sql as fsql
from forensics.cli import cli
from forensics.errors import ForensicsError
from forensics.ingest import ingest
from forensics.schema import conform
from forensics.store import Store

EX, BTC, ETH = "binance-futures", "BTCUSDT", "ETHUSDT"
S = 1_000_000_000
T0 = 1760130000 * S            # 2025-10-10T21:00:00Z
T1 = 1760140800 * S            # 2025-10-11T00:00:00Z

BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance-futures,BTCUSDT,1760130000000000,1760130000100000,true,bid,120000.0,1.5
binance-futures,BTCUSDT,1760130000000000,1760130000100000,true,ask,120000.1,2
binance-futures,BTCUSDT,1760130001000000,1760130001100000,false,bid,119999.9,0.5
binance-futures,BTCUSDT,1760130002000000,1760130002100000,false,ask,120000.2,0.25
binance-futures,BTCUSDT,1760130003000000,1760130003100000,false,bid,120000.0,0
binance-futures,BTCUSDT,1760130100000000,1760130100100000,true,bid,120100.0,3
binance-futures,BTCUSDT,1760130100000000,1760130100100000,true,ask,120100.5,4
binance-futures,BTCUSDT,1760130101000000,1760130101100000,false,bid,120099.0,1
binance-futures,BTCUSDT,1760140800000000,1760140800100000,false,bid,120500.0,2
binance-futures,BTCUSDT,1760140805000000,1760140805100000,false,ask,120500.5,1
binance-futures,BTCUSDT,1760140806000000,1760140806100000,false,bid,120499.0,0.75
"""
ETH_BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance-futures,ETHUSDT,1760130000000000,1760130000100000,true,bid,4300.25,1
binance-futures,ETHUSDT,1760130000000000,1760130000100000,true,ask,4300.50,2.5
"""
TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance-futures,BTCUSDT,1760130001500000,1760130001600000,11,sell,120000.0,1.0
binance-futures,BTCUSDT,1760130001500000,1760130001600000,12,unknown,120000.0,0.001
binance-futures,BTCUSDT,1760140801123456,1760140801200000,13,buy,120500.5,0.4
"""


def _depth() -> pl.DataFrame:
    rows = [  # ts, side, band_pct, qty (lots of 0.001), notional, levels
        (T0, "bid", 0.5, 1500, 180000.0, 1), (T0, "ask", 0.5, 2000, 240000.2, 1),
        (T0, "bid", 1.0, 2000, 240000.0, 2), (T0, "ask", 1.0, 2250, 270000.5, 2),
        (T0 + S, "bid", 1.0, 500, 60000.0, 1), (T0 + S, "ask", 1.0, 2250, 270000.5, 2),
        (T1, "bid", 1.0, 2000, 241000.0, 1), (T1, "ask", 1.0, 1000, 120500.5, 1),
    ]
    df = pl.DataFrame(rows, schema=["ts", "side", "band_pct", "qty", "notional", "levels"], orient="row")
    return conform("depth", df.with_columns(grid_ns=pl.lit(S)))


def _book_top() -> pl.DataFrame:
    rows = [  # ts, best_bid, best_ask (ticks of 0.1), sizes (lots)
        (T0, 1200000, 1200001, 1500, 2000), (T0 + 30 * S, 1200000, 1200003, 1500, 100),
        (T0 + 60 * S, 1199990, 1200010, 3000, 2000), (T0 + 61 * S, None, None, None, None),
    ]
    df = pl.DataFrame(rows, schema=["ts", "best_bid", "best_ask", "best_bid_size", "best_ask_size"],
                      orient="row")
    df = df.with_columns(mid=pl.col("best_bid") + pl.col("best_ask"),  # 'price2': twice the mid
                         spread=pl.col("best_ask") - pl.col("best_bid"),
                         crossed=pl.lit(False), locked=pl.lit(False),
                         valid=pl.col("best_bid").is_not_null(), grid_ns=pl.lit(S))
    return conform("book_top", df)


def _level_changes() -> pl.DataFrame:
    rows = [  # ts, seq, side, price, prev, size, delta, added, traded, cancelled, implied, cause
        (T0 + 1 * S, 10, "bid", 1200000, 1500, 500, -1000, 0, 1000, 0, 0, "trade"),
        (T0 + 2 * S, 11, "ask", 1200002, 0, 250, 250, 250, 0, 0, 0, "add"),
        (T0 + 3 * S, 12, "bid", 1200000, 500, 0, -500, 0, 0, 500, 0, "cancel"),
        (T0 + 65 * S, 13, "ask", 1200001, 2000, 0, -2000, 0, 500, 1500, 0, "mixed"),
        (T0 + 70 * S, 14, "bid", 1199990, 3000, 1000, -2000, 0, 0, 2000, 0, "cancel"),
    ]
    cols = ["ts", "seq", "side", "price", "prev_size", "size", "delta", "added", "traded", "cancelled",
            "implied", "cause"]
    return conform("level_changes", pl.DataFrame(rows, schema=cols, orient="row"))


def _events(with_lag: bool, **row) -> pl.DataFrame:
    df = conform("events", pl.DataFrame([row])).with_columns(removed_share=pl.lit(row.pop("removed", 0.5)))
    if with_lag:
        df = df.with_columns(side_lag_ms=pl.lit(12.5))
    return df


def build_store(root, tmp):
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in [("binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv", BOOK),
                       ("binance-futures_incremental_book_L2_2025-10-10_ETHUSDT.csv", ETH_BOOK),
                       ("binance-futures_trades_2025-10-10_BTCUSDT.csv", TRADES)]:
        (tmp / name).write_text(text)
        paths.append(tmp / name)
    ingest(paths, store=root)
    st = Store(root)
    st.write_partitioned("depth", _depth(), EX, BTC, "depth")
    st.write_partitioned("book_top", _book_top(), EX, BTC, "book_top")
    st.write_partitioned("level_changes", _level_changes(), EX, BTC, "level_changes")
    # two parts with different metric columns: the view reads events by column name
    ev1 = _events(False, event_id="ev1", start_ts=T0 + S, end_ts=T0 + 3 * S, sides="bid",
                  label="one_sided_pull", confidence=0.9, data_kind="l2", evidence='{"why": 1}')
    ev2 = _events(True, event_id="ev2", start_ts=T0 + 64 * S, end_ts=T0 + 71 * S, sides="both",
                  label="synchronized_withdrawal", confidence=0.8, data_kind="l2", evidence='{"why": 2}')
    st.write_partitioned("events", ev1, EX, BTC, "a", ts_column="start_ts")
    st.write_partitioned("events", ev2, EX, BTC, "b", ts_column="start_ts")
    return st


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    base = tmp_path_factory.mktemp("sqlstore")
    return build_store(base / "store", base / "in")


@pytest.fixture(scope="module")
def sess(store):
    with fsql.Session(store) as s:
        yield s


def q(sess, name, **params):
    return sess.run_query(name, {k: str(v) for k, v in params.items()})


def D(x):
    return Decimal(x)


def utc(ns):
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1000)


def run(store, *args, input=None):
    return CliRunner().invoke(cli, ["sql", "--store", str(store.root), *args], input=input,
                              catch_exceptions=False)


# ---- the query library -----------------------------------------------------------------------

SHIPPED = {"biggest_pulls", "cancel_to_trade", "cliffs", "daily_summary", "depth_within",
           "event_breakdown", "gaps", "spread", "traded_vs_cancelled"}


def test_shipped_queries_have_headers_and_use_every_param():
    qs = {x.name: x for x in fsql.list_queries(fsql.query_dirs())}
    assert SHIPPED <= set(qs)
    for x in qs.values():
        assert x.description and "\n" not in x.description
        assert x.path.read_text().startswith(f"-- name: {x.name}\n")
        assert set(x.params) == fsql.statement_parameters(x.sql), x.name
        assert x.examples and all(e.startswith(f"forensics sql --query {x.name}") for e in x.examples)
    assert [p for p in qs["event_breakdown"].params.values() if p.required][0].name == "event_id"


def test_queries_command_lists_names_descriptions_params():
    r = CliRunner().invoke(cli, ["queries"])
    assert r.exit_code == 0, r.output
    for name in SHIPPED:
        assert name in r.output
    assert "Cancel-to-trade ratio" in r.output and "pct=1.0" in r.output and "event_id (required)" in r.output
    one = CliRunner().invoke(cli, ["queries", "depth_within"])
    assert one.exit_code == 0 and "band edge in percent" in one.output and "FROM depth" in one.output


def test_depth_within(sess):
    df = q(sess, "depth_within", symbol=BTC)  # pct defaults to 1.0
    assert df["ts"].to_list() == [utc(T0), utc(T0 + S), utc(T1)]
    assert df["bid_qty"].to_list() == [D("2.000"), D("0.500"), D("2.000")]
    assert df["ask_qty"].to_list() == [D("2.250"), D("2.250"), D("1.000")]
    assert df["bid_levels"].to_list() == [2, 1, 1]
    assert df["imbalance"].to_list() == pytest.approx([-0.0588, -0.6364, 0.3333])
    narrow = q(sess, "depth_within", pct=0.5)
    assert narrow.select("bid_qty", "ask_qty").rows() == [(D("1.500"), D("2.000"))]
    window = q(sess, "depth_within", **{"from": "2025-10-10T21:00:00.5Z", "to": "2025-10-11 00:00"})
    assert window["ts"].to_list() == [utc(T0 + S), utc(T1)]
    # --tz: a time without offset is read in that zone (05:00 in Shanghai = 21:00 UTC the day before)
    sh = sess.run_query("depth_within", {"from": "2025-10-11 05:00:01", "to": "2025-10-11 05:00:01"},
                        tz="Asia/Shanghai")
    assert sh["ts"].to_list() == [utc(T0 + S)]
    assert q(sess, "depth_within", symbol=ETH).height == 0


def test_cliffs(sess):
    df = q(sess, "cliffs")
    assert df["event_id"].to_list() == ["ev1", "ev2"]
    assert df["duration_ms"].to_list() == [2000.0, 7000.0]
    assert df["removed_share"].to_list() == [0.5, 0.5]
    assert df["side_lag_ms"].to_list() == [None, 12.5]  # column only in the second part
    assert df["evidence"].to_list() == [None, None]
    assert df["start_ts"][0] == utc(T0 + S) and df["exchange"][0] == EX and df["symbol"][0] == BTC
    assert q(sess, "cliffs", label="synchronized_withdrawal")["event_id"].to_list() == ["ev2"]
    assert q(sess, "cliffs", min_confidence=0.85)["event_id"].to_list() == ["ev1"]
    assert q(sess, "cliffs", evidence="true")["evidence"].to_list() == ['{"why": 1}', '{"why": 2}']
    assert q(sess, "cliffs", **{"from": "2025-10-10T21:00:10Z"})["event_id"].to_list() == ["ev2"]


def test_traded_vs_cancelled(sess):
    df = q(sess, "traded_vs_cancelled")  # 1 minute buckets
    got = {(r["bucket"], r["side"]): r for r in df.iter_rows(named=True)}
    m0, m1 = utc(T0), utc(T0 + 60 * S)
    assert set(got) == {(m0, "ask"), (m0, "bid"), (m1, "ask"), (m1, "bid")}
    assert (got[m0, "bid"]["updates"], got[m0, "bid"]["traded"], got[m0, "bid"]["cancelled"]) == (2, D("1.000"), D("0.500"))
    assert got[m0, "bid"]["cancelled_share"] == pytest.approx(0.3333)
    assert got[m0, "ask"]["added"] == D("0.250") and got[m0, "ask"]["cancelled_share"] is None
    assert (got[m1, "ask"]["traded"], got[m1, "ask"]["cancelled"], got[m1, "ask"]["cancelled_share"]) == (D("0.500"), D("1.500"), 0.75)
    assert got[m1, "ask"]["traded_notional"] == D("60000.05")  # 0.5 x 120000.1, exact
    assert got[m1, "bid"]["cancelled_share"] == 1.0
    secs = q(sess, "traded_vs_cancelled", bucket="1s", side="bid")
    assert secs["bucket"].to_list() == [utc(T0 + S), utc(T0 + 3 * S), utc(T0 + 70 * S)]


def test_cancel_to_trade(sess):
    df = q(sess, "cancel_to_trade", symbol=BTC)
    rows = {r["side"]: r for r in df.iter_rows(named=True)}
    assert df["side"].to_list() == ["ask", "bid", "both"]
    assert (rows["bid"]["cancelled_qty"], rows["bid"]["traded_qty"]) == (D("2.500"), D("1.000"))
    assert rows["bid"]["cancel_to_trade_qty"] == 2.5 and rows["bid"]["cancel_to_trade_count"] == 2.0
    assert rows["ask"]["cancel_to_trade_qty"] == 3.0 and rows["ask"]["cancel_to_trade_count"] == 1.0
    assert rows["both"]["cancelled_qty"] == D("4.000") and rows["both"]["updates"] == 5
    assert rows["both"]["cancel_to_trade_qty"] == pytest.approx(2.6667)
    assert rows["both"]["cancel_to_trade_count"] == 1.5


def test_spread(sess):
    df = q(sess, "spread")
    assert df["bucket"].to_list() == [utc(T0), utc(T0 + 60 * S)]
    a, b = df.iter_rows(named=True)
    assert (a["samples"], a["best_bid"], a["best_ask"], a["mid"]) == (2, D("120000.0"), D("120000.3"), D("120000.15"))
    assert (a["spread_min"], a["spread_max"]) == (D("0.1"), D("0.3")) and a["spread_avg"] == pytest.approx(0.2)
    assert a["spread_bps_avg"] == pytest.approx(0.2 / 120000.1 * 1e4, abs=1e-3)
    assert a["best_ask_size"] == D("0.100") and a["unknown"] == 0
    # the last sample of the second minute is unknown: last known values, counted as unknown
    assert (b["samples"], b["best_bid"], b["best_ask"], b["spread_max"], b["unknown"]) == (
        2, D("119999.0"), D("120001.0"), D("2.0"), 1)


def test_biggest_pulls(sess):
    df = q(sess, "biggest_pulls", limit=2)
    assert df["seq"].to_list() == [14, 13]
    assert df["cancelled_notional"].to_list() == [D("239998.0000"), D("180000.1500")]
    assert df["mid"].to_list() == [D("120000.00"), D("120000.00")]  # as-of the 60 s sample
    assert df["distance_bps"].to_list() == [0.08, 0.01]
    assert q(sess, "biggest_pulls", side="ask")["seq"].to_list() == [13]
    assert q(sess, "biggest_pulls")["seq"].to_list() == [14, 13, 12]


def test_gaps(sess):
    df = q(sess, "gaps")
    assert df.select("symbol", "reason", "seconds").rows() == [(BTC, "resync", 97.0)]
    assert df["ts_from"][0] == utc(1760130003 * S) and df["date"][0] == dt.date(2025, 10, 10)
    assert q(sess, "gaps", min_seconds=100).height == 0


def test_daily_summary(sess):
    df = q(sess, "daily_summary")
    rows = {(r["symbol"], str(r["date"])): r for r in df.iter_rows(named=True)}
    assert list(rows) == [(BTC, "2025-10-10"), (BTC, "2025-10-11"), (ETH, "2025-10-10")]
    d1 = rows[BTC, "2025-10-10"]
    assert (d1["book_updates"], d1["snapshot_rows"], d1["trades"], d1["gaps"], d1["gap_seconds"]) == (8, 4, 2, 1, 97.0)
    assert (d1["trade_qty"], d1["trade_notional"]) == (D("1.001"), D("120120.0000"))
    assert (d1["first_ts"], d1["last_ts"]) == (utc(T0), utc(1760130101 * S))
    d2 = rows[BTC, "2025-10-11"]
    assert (d2["book_updates"], d2["trades"], d2["trade_qty"]) == (3, 1, D("0.400"))
    assert d2["trade_first_ts"] == utc(1760140801123456000) and d2["last_ts"] == utc(1760140806 * S)
    assert rows[ETH, "2025-10-10"]["trades"] == 0 and rows[ETH, "2025-10-10"]["trade_qty"] is None
    only = q(sess, "daily_summary", symbol=BTC, **{"from": "2025-10-11"})
    assert only.select("symbol", "date").rows() == [(BTC, dt.date(2025, 10, 11))]


def test_event_breakdown(sess):
    df = q(sess, "event_breakdown", event_id="ev2")
    assert df["side"].to_list() == ["bid", "ask"]
    bid, ask = df.iter_rows(named=True)
    assert (bid["updates"], bid["cancelled"], bid["cancelled_share"], bid["prints"]) == (1, D("2.000"), 1.0, 0)
    assert (ask["traded"], ask["cancelled"], ask["cancelled_share"]) == (D("0.500"), D("1.500"), 0.75)
    one = q(sess, "event_breakdown", event_id="ev1")
    bid, ask = one.iter_rows(named=True)
    assert (bid["updates"], bid["traded"], bid["cancelled"], bid["prints"], bid["print_qty"]) == (
        2, D("1.000"), D("0.500"), 1, D("1.000"))  # the sell print hit the bid; 'unknown' counted nowhere
    assert (ask["updates"], ask["added"], ask["prints"]) == (1, D("0.250"), 0)


# ---- parameters and errors ---------------------------------------------------------------------

def test_missing_and_unknown_params_are_clear(store):
    r = run(store, "--query", "event_breakdown")
    assert r.exit_code == 1 and "needs --param event_id=<text>" in r.output
    r = run(store, "--query", "spread", "--param", "nope=1")
    assert r.exit_code == 1 and "has no parameter nope" in r.output and "bucket=1m" in r.output
    r = run(store, "--query", "spread", "--param", "bucket=soon")
    assert r.exit_code == 1 and "--param bucket=soon" in r.output
    r = run(store, "select * from trades where symbol = $s")
    assert r.exit_code == 1 and "missing parameter(s) $s" in r.output and "--param s=VALUE" in r.output
    r = run(store, "select count(*) AS n from trades where symbol = $s", "-p", "s=BTCUSDT", "-f", "csv")
    assert r.exit_code == 0 and r.output == "n\n3\n"
    r = run(store, "--query", "no_such_query")
    assert r.exit_code == 1 and "no query named 'no_such_query'" in r.output and "daily_summary" in r.output


@pytest.mark.parametrize("sql, expect", [
    ("select * from boo", "views: book_top, book_updates, depth"),
    ("select pricee from trades", "trades columns: exchange, symbol, date, ts,"),
    ("selec 1", "Parser Error"),
])
def test_bad_sql_is_one_line_with_hint(store, sql, expect):
    r = run(store, sql)
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0]
    assert "Traceback" not in r.output


def test_error_hint_names_duckdb_candidates(sess):
    with pytest.raises(fsql.SQLError) as ei:
        sess.df("select * from book_update")
    assert 'Did you mean "book_updates"' in str(ei.value) and ei.value.hint.startswith("views:")


# ---- read-only ------------------------------------------------------------------------------------

def _listing(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in root.rglob("*") if p.is_file() and p.name != ".lock")


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 1) TO '{root}/x.csv'",
    "COPY trades TO '{root}/trades/x.parquet' (FORMAT parquet)",
    "INSERT INTO trades SELECT * FROM trades",
    "CREATE TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW trades AS SELECT 1",
    "DROP VIEW trades",
    "DELETE FROM trades",
    "ATTACH '{root}/x.db'",
    "EXPORT DATABASE '{root}/exp'",
    "SET enable_external_access = true",
    "PRAGMA threads = 1",
    "LOAD json",
    "INSTALL json",
    "CALL checkpoint()",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{root}/x.csv'",
    "EXPLAIN (FORMAT json) COPY (SELECT 1) TO '{root}/x.csv'",
    "SELECT 1; COPY (SELECT 1) TO '{root}/x.csv'",
    "/* sneaky */ -- comment\nCOPY (SELECT 1) TO '{root}/x.csv'",
])
def test_write_statements_are_refused(store, sql):
    root = store.root.resolve()
    before = _listing(root)
    text = sql.format(root=root)
    with pytest.raises(fsql.SQLError, match="refused"):
        with fsql.Session(store) as s:
            s.df(text) if ";" not in text else [s.df(x) for x in s.statements(text)]
    r = run(store, text)
    assert r.exit_code == 1 and "refused" in r.output and len(r.output.strip().splitlines()) == 1
    assert _listing(root) == before


@pytest.mark.parametrize("sql", [
    "select 1", "with a as (select 1 x) select * from a", "from trades", "values (1)",
    "describe trades", "show tables", "summarize trades", "explain select * from trades",
    "explain analyze select count(*) from trades", "explain analyze (select 1)",
    "explain (format json) select 1", "pragma table_info('trades')", "pragma version",
    "-- leading comment\nselect 2",
])
def test_read_statements_are_accepted(sess, sql):
    assert len(sess.statements(sql)) == 1
    sess.arrow(sql)


def test_session_cannot_reach_other_files(sess, tmp_path):
    other = tmp_path / "x.csv"
    other.write_text("a\n1\n")
    with pytest.raises(fsql.SQLError, match="Permission Error") as ei:
        sess.df(f"select * from read_csv('{other}')")
    assert "reads only the store" in ei.value.hint


# ---- pruning --------------------------------------------------------------------------------------

class _CountingFS:
    """A pyarrow filesystem handler over the local one that records the files opened."""

    def __new__(cls):
        import pyarrow.fs as pafs

        class Handler(pafs.FileSystemHandler):
            def __init__(self):
                self.local, self.opened = pafs.LocalFileSystem(), []

            def get_type_name(self): return "counting"
            def get_file_info(self, paths): return self.local.get_file_info(paths)
            def get_file_info_selector(self, sel): return self.local.get_file_info(sel)
            def normalize_path(self, path): return path
            def open_input_file(self, path):
                self.opened.append(path)
                return self.local.open_input_file(path)
            def open_input_stream(self, path):
                self.opened.append(path)
                return self.local.open_input_stream(path)
            def __eq__(self, other): return self is other
            def __ne__(self, other): return self is not other
            def create_dir(self, *a): raise OSError("read only")
            delete_dir = delete_dir_contents = delete_root_dir_contents = delete_file = create_dir
            move = copy_file = open_output_stream = open_append_stream = create_dir

        h = Handler()
        return pafs.PyFileSystem(h), h


def files_read(store, sql, params=None, table="book_updates", monkeypatch=None):
    """How many part files of ``table`` the query opens (the locked session reads Arrow
    datasets; their file opens are counted through a recording filesystem)."""
    fs, h = _CountingFS()
    old = fsql.DATASET_FS
    fsql.DATASET_FS = fs
    try:
        with fsql.Session(store) as s:
            h.opened.clear()
            s.df(sql, params)
    finally:
        fsql.DATASET_FS = old
    parts = {str(f.resolve()) for f in store.files(table)}
    return len(set(h.opened) & parts)


def test_partition_pruning_reads_only_wanted_files(sess, store):
    assert len(store.files("book_updates")) == 3  # BTC x 2 days, ETH x 1 day
    assert files_read(store, "select count(*) from book_updates") == 3
    assert files_read(store, f"select count(*) from book_updates where symbol = '{BTC}'") == 2
    one_day = (f"select count(*) from book_updates where exchange = '{EX}' and symbol = '{BTC}' "
               "and date = '2025-10-11'")
    assert files_read(store, one_day) == 1
    assert sess.con.execute(one_day).fetchall()[0][0] == 3
    assert files_read(store, one_day.replace("where", "where $d is null and"), {"d": None}) == 1
    # parameters prune too: the named queries filter with $params
    dq = fsql.load_query("depth_within")
    params = {k: v for k, v in dq.bind({"from": "2025-10-11T00:00:00Z"}).items()
              if k in fsql.statement_parameters(dq.sql)}
    assert len(store.files("depth")) == 2
    assert files_read(store, dq.sql, params, table="depth") == 1
    lc = fsql.load_query("daily_summary")
    p = lc.bind({"symbol": ETH})
    assert files_read(store, lc.sql, p) == 1  # only ETH's book_updates file (it has nothing else)


def test_pruned_files_are_never_opened(store, tmp_path):
    """Corrupt the other day's part: a query on one day still works, so it never opened it."""
    root = tmp_path / "copy"
    shutil.copytree(store.root, root)
    bad = next((root / "book_updates" / f"exchange={EX}" / f"symbol={BTC}" / "date=2025-10-11").glob("*.parquet"))
    bad.write_bytes(b"not parquet at all")
    with fsql.Session(root) as s:
        n = s.con.execute(f"select count(*) from book_updates where symbol = '{BTC}' "
                          "and date = '2025-10-10'").fetchone()[0]
        assert n == 8
        with pytest.raises(fsql.SQLError):
            s.df(f"select count(*) from book_updates where symbol = '{BTC}'")


# ---- output formats -------------------------------------------------------------------------------

ROWS = ("select exchange, symbol, date, ts, seq, price, size, aggressor from trades "
        "order by ts, seq")


def test_csv_round_trip(store, sess, tmp_path):
    out = tmp_path / "t.csv"
    r = run(store, ROWS, "--out", str(out))  # format from the suffix
    assert r.exit_code == 0, r.output
    assert "wrote 3 rows" in r.output
    text = out.read_text()
    assert "2025-10-11T00:00:01.123456Z" in text and ",120500.5,0.400," in text
    back = pl.read_csv(out, infer_schema=False)
    want = sess.df(ROWS)
    assert back["ts"].str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ns").to_list() == want["ts"].to_list()
    assert [Decimal(x) for x in back["price"]] == want["price"].to_list()
    assert [Decimal(x) for x in back["size"]] == want["size"].to_list()
    assert back["aggressor"].to_list() == ["sell", None, "buy"]  # null -> empty field
    assert back["date"].to_list() == ["2025-10-10", "2025-10-10", "2025-10-11"]
    # stdout too
    r = run(store, ROWS, "--format", "csv")
    assert r.output.replace("\r\n", "\n") == text


def test_json_lines_round_trip(store, sess, tmp_path):
    r = run(store, ROWS, "--format", "json")
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.output.splitlines()]
    want = sess.df(ROWS)
    assert len(recs) == want.height == 3
    assert recs[0] == {"exchange": EX, "symbol": BTC, "date": "2025-10-10", "ts": "2025-10-10T21:00:01.500Z",
                       "seq": want["seq"][0], "price": "120000.0", "size": "1.000", "aggressor": "sell"}
    assert [dt.datetime.fromisoformat(x["ts"].replace("Z", "+00:00")).replace(tzinfo=None) for x in recs] == want["ts"].to_list()
    assert [Decimal(x["size"]) for x in recs] == want["size"].to_list()
    assert recs[1]["aggressor"] is None


def test_parquet_round_trip(store, sess, tmp_path):
    r = run(store, ROWS, "--format", "parquet")
    assert r.exit_code == 1 and "needs --out" in r.output
    out = tmp_path / "t.parquet"
    r = run(store, ROWS, "--format", "parquet", "--out", str(out))
    assert r.exit_code == 0, r.output
    back = pl.read_parquet(out)
    want = sess.df(ROWS).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    assert back.schema["price"] == pl.Decimal(38, 1) and back.schema["ts"] == pl.Datetime("ns", "UTC")
    assert back.equals(want)


def test_export_formats_handle_odd_types(sess, tmp_path):
    sql = ("select 1.50::DECIMAL(10,2) d, 'nan'::double f, INTERVAL 90 SECOND iv, [1, 2] l, "
           "{'a': 1} s, TIMESTAMPTZ '2025-01-01 08:00:00+08' tz, make_timestamp_ns(1) ns, NULL n")
    buf = __import__("io").BytesIO()
    fsql.write_json(sess.reader(sql), buf)
    rec = json.loads(buf.getvalue())
    assert rec == {"d": "1.50", "f": None, "iv": "00:01:30", "l": [1, 2], "s": {"a": 1},
                   "tz": "2025-01-01T00:00:00Z", "ns": "1970-01-01T00:00:00.000000001Z", "n": None}
    buf = __import__("io").BytesIO()
    fsql.write_csv(sess.reader(sql), buf)
    assert buf.getvalue().decode().splitlines()[1] == \
        '1.50,,00:01:30,"[1,2]","{""a"":1}",2025-01-01T00:00:00Z,1970-01-01T00:00:00.000000001Z,'
    fsql.write_parquet(sess.reader(sql), tmp_path / "o.parquet")
    assert pl.read_parquet(tmp_path / "o.parquet")["iv"].to_list() == ["00:01:30"]


def test_table_format_and_empty_note(store, tmp_path):
    r = run(store, "select symbol, count(*) n from book_updates group by all order by 1")
    assert r.exit_code == 0
    assert re.search(r"BTCUSDT\s+11", r.output) and "2 rows" in r.output
    r = run(store, "select * from book_updates", "--max-rows", "2")
    assert "13 rows, first 2 shown" in r.output
    empty = tmp_path / "empty"
    ingest_dir = tmp_path / "in"
    ingest_dir.mkdir()
    (ingest_dir / "b.csv").write_text(ETH_BOOK)
    ingest([ingest_dir / "b.csv"], store=empty)
    r = CliRunner().invoke(cli, ["sql", "--store", str(empty), "--query", "spread"])
    assert r.exit_code == 0 and "0 rows" in r.output
    assert "note: book_top is empty" in r.output and "forensics depth" in r.output


def test_several_statements(store):
    r = run(store, "select 1 as a; select 2 as b")
    assert r.exit_code == 0 and "a" in r.output and "b" in r.output and r.output.count("1 row") == 2
    r = run(store, "select 1 as a; select 2 as b", "-f", "csv")
    assert r.exit_code == 1 and "2 statements" in r.output


def test_sql_from_stdin(store):
    r = run(store, "-f", "csv", input="select 42 as answer;\n")
    assert r.exit_code == 0 and r.output == "answer\n42\n"
    r = run(store, "-", "-f", "json", input="select 'x' as s")
    assert r.output == '{"s":"x"}\n'


# ---- the duckdb CLI route, interactive prompt, query directories ---------------------------------

def test_print_views_and_show_sql_work_in_plain_duckdb(store, tmp_path, monkeypatch):
    import duckdb
    views = run(store, "--print-views").output
    assert "CREATE OR REPLACE VIEW book_updates AS" in views and "SET TimeZone = 'UTC';" in views
    shown = run(store, "--query", "cancel_to_trade", "--param", f"symbol={BTC}", "--show-sql").output
    assert shown.startswith("PREPARE cancel_to_trade AS") and f"\"symbol\" := '{BTC}'" in shown
    monkeypatch.chdir(tmp_path)  # absolute paths: works from anywhere
    con = duckdb.connect()
    res = None
    for st in con.extract_statements(views + shown):
        res = con.execute(st.query)
    rows = res.fetchall()
    assert [r[2] for r in rows] == ["ask", "bid", "both"]


def test_interactive_prompt(store, monkeypatch, capsys, tmp_path):
    from forensics.cli import sql as cli_sql
    lines = iter(["select symbol,", "  count(*) as n from book_updates", "group by 1 order by 1;",
                  ".schema instruments", "select * from nothing_here;", "drop view trades;",
                  ".run gaps", ".quit"])

    def fake_input(prompt=""):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None
    monkeypatch.setattr("builtins.input", fake_input)
    monkeypatch.setenv("FORENSICS_SQL_HISTORY", str(tmp_path / "hist"))
    with fsql.Session(store) as s:
        cli_sql._repl(s, 50, "UTC", ())
    out = capsys.readouterr().out
    assert re.search(r"BTCUSDT\s+11", out) and re.search(r"ETHUSDT\s+2", out)
    assert "price_decimals" in out
    assert "Table with name nothing_here does not exist" in out and "refused: DROP" in out
    assert "resync" in out


def test_queries_dir_and_env(store, tmp_path, monkeypatch):
    mine = tmp_path / "q"
    mine.mkdir()
    (mine / "top_n.sql").write_text(
        "-- name: top_n\n-- description: First N trades\n"
        "-- param: n (int, default 2): how many\n-- example: forensics sql --query top_n\n"
        "select trade_id from trades order by ts, seq limit $n\n")
    (mine / "gaps.sql").write_text("-- description: my own gaps\nselect 1 as mine\n")  # hides the shipped one
    r = run(store, "--queries-dir", str(mine), "--query", "top_n", "-p", "n=1", "-f", "csv")
    assert r.exit_code == 0 and r.output == "trade_id\n11\n"
    monkeypatch.setenv("FORENSICS_QUERIES", str(mine))
    listing = CliRunner().invoke(cli, ["queries"]).output
    assert "top_n" in listing and "First N trades" in listing and "n=2" in listing and "my own gaps" in listing
    assert run(store, "--query", "gaps", "-f", "csv").output == "mine\n1\n"
    (mine / "broken.sql").write_text("-- description: x\n-- param: a (colour, default 1): ?\nselect $a\n")
    r = CliRunner().invoke(cli, ["queries"])
    assert r.exit_code == 1 and "broken.sql" in r.output and "unknown type 'colour'" in r.output
    (mine / "broken.sql").write_text("-- description: x\nselect $undeclared\n")
    with pytest.raises(ForensicsError, match=r"\$undeclared used but not declared"):
        fsql.load_query("broken")
    (mine / "broken.sql").write_text("-- description: x\ncopy (select 1) to 'x.csv'\n")
    with pytest.raises(ForensicsError, match="refused: COPY"):
        fsql.load_query("broken")
