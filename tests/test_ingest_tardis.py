import polars as pl
import pytest
from click.testing import CliRunner

from forensics.cli import cli
from forensics.errors import ForensicsError
from forensics.ingest import ingest
from forensics.store import Store

BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance-futures,BTCUSDT,1760130000000000,1760130000100000,true,bid,120000.0,1.5
binance-futures,BTCUSDT,1760130000000000,1760130000100000,true,ask,120000.1,2
binance-futures,BTCUSDT,1760130001000000,1760130001100000,false,bid,119999.9,0.5
binance-futures,BTCUSDT,1760130002000000,1760130002100000,false,ask,120000.2,0.25
binance-futures,BTCUSDT,1760130003000000,1760130003100000,false,bid,120000.0,0
binance-futures,BTCUSDT,1760130100000000,1760130100100000,true,bid,120100.0,3
binance-futures,BTCUSDT,1760130100000000,1760130100100000,true,ask,120100.5,4
binance-futures,BTCUSDT,1760130101000000,1760130101100000,false,bid,120099.0,1
"""
TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance-futures,BTCUSDT,1760130001500000,1760130001600000,11,sell,120000.0,1.0
binance-futures,BTCUSDT,1760130001500000,1760130001600000,12,unknown,120000.0,0.001
"""


def test_tardis_book_and_trades_exact(write, store_dir):
    b = write("binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz", BOOK)
    t = write("binance-futures_trades_2025-10-10_BTCUSDT.csv", TRADES)
    res = ingest([b, t], store=store_dir)
    assert [r.total_rows for r in res] == [8, 2]
    assert res[0].gaps == 1  # the second snapshot block is a resync
    con = Store(store_dir).connect()
    rows = con.sql("select side, price::varchar, size::varchar, is_snapshot from book_updates "
                   "order by ts, seq").fetchall()
    assert rows[0] == ("bid", "120000.0", "1.500", True)  # decimals inferred: 1 for price, 3 for size
    assert rows[4] == ("bid", "120000.0", "0.000", False)
    assert rows[6] == ("ask", "120100.5", "4.000", True)
    trades = con.sql("select trade_id, aggressor, size::varchar from trades order by seq").fetchall()
    assert trades == [("11", "sell", "1.000"), ("12", None, "0.001")]
    # seq is strictly increasing per instrument across both files
    seqs = con.sql("select seq from book_updates union all select seq from trades").pl()["seq"]
    assert seqs.n_unique() == 10
    gap = con.sql("select reason, ts_from_ns, ts_to_ns from gaps").fetchall()
    assert gap == [("resync", 1760130003000000000, 1760130100000000000)]


def test_reingest_is_noop_and_force_replaces(write, store_dir):
    b = write("book.csv", BOOK)
    assert ingest([b], store=store_dir)[0].total_rows == 8
    assert ingest([b], store=store_dir)[0].skipped
    assert Store(store_dir).connect().execute("select count(*) from book_updates").fetchone()[0] == 8
    again = ingest([b], store=store_dir, force=True)[0]
    assert not again.skipped and again.total_rows == 8
    assert Store(store_dir).connect().execute("select count(*) from book_updates").fetchone()[0] == 8


def test_two_files_same_day_both_land(write, store_dir):
    ingest([write("a.csv", BOOK)], store=store_dir)
    other = BOOK.replace("119999.9,0.5", "119999.8,0.7")
    ingest([write("b.csv", other)], store=store_dir)
    assert Store(store_dir).connect().execute("select count(*) from book_updates").fetchone()[0] == 16


def test_bad_rows_are_rejected_with_line_and_kept_rows_land(write, store_dir):
    text = BOOK.replace("119999.9,0.5", "abc,0.5").replace("120000.2,0.25", "120000.2,-1")
    text = text.replace("false,bid,120099.0,1", "false,middle,120099.0,1") + "garbage line\n"
    r = ingest([write("bad.csv", text)], store=store_dir)[0]
    assert r.total_rows == 5 and r.rejected == 4
    reasons = {rej.line: rej.reason for rej in r.first_rejects}
    assert reasons[4].startswith("non-numeric price")
    assert reasons[5].startswith("negative size")
    assert reasons[9].startswith("unknown side middle")
    assert "fields" in reasons[10]
    lines = (store_dir / "rejects").glob("*.jsonl")
    assert len(next(iter(lines)).read_text().splitlines()) == 4


def test_strict_writes_nothing(write, store_dir):
    text = BOOK.replace("119999.9,0.5", "abc,0.5")
    with pytest.raises(ForensicsError, match=r"bad.csv:4: non-numeric price"):
        ingest([write("bad.csv", text)], store=store_dir, strict=True)
    assert not list(store_dir.glob("book_updates/**/*.parquet"))


def test_truncated_gzip_keeps_rows_read(write, store_dir, tmp_path):
    import gzip
    big = BOOK + "".join(f"binance-futures,BTCUSDT,{1760130200000000 + i},{1760130200000000 + i},false,bid,"
                         f"{100000 + i}.0,1\n" for i in range(20000))
    p = tmp_path / "cut.csv.gz"
    data = gzip.compress(big.encode())
    p.write_bytes(data[: len(data) // 2])
    r = ingest([p], store=store_dir)[0]
    assert 0 < r.total_rows < 20008
    assert any("truncated" in rej.reason for rej in r.first_rejects) or r.rejected >= 1


def _gzip_cut_after(prefix: bytes) -> bytes:
    """A gzip file whose stream ends right after ``prefix``: the prefix is sync-flushed, so a
    decoder yields exactly those bytes and then finds the stream cut."""
    import zlib
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(prefix) + c.flush(zlib.Z_SYNC_FLUSH)


def test_a_line_cut_by_a_truncated_stream_is_dropped_not_parsed(tmp_path, store_dir):
    # the stream ends inside the last row, whose amount 1.25 reads 1.2 there: a value that
    # parses, so keeping the cut line would store a wrong row
    text = BOOK[: BOOK.rindex(",1\n")] + ",1.25\n"
    cut_at = text.rindex("1.25") + len("1.2")
    p = tmp_path / "cut.csv.gz"
    p.write_bytes(_gzip_cut_after(text[:cut_at].encode()))
    r = ingest([p], store=store_dir)[0]
    assert r.total_rows == 7                                   # the 7 whole lines, not the cut 8th
    assert [(x.line, "inside line 9" in x.reason) for x in r.first_rejects] == [(9, True)]
    n = Store(store_dir).connect().sql("select count(*) from book_updates where price = 120099.0").fetchall()
    assert n == [(0,)]
    with pytest.raises(ForensicsError, match=r"cut.csv.gz:9: truncated compressed stream inside line 9"):
        ingest([p], store=tmp_path / "s2", strict=True)


def test_killed_write_leaves_no_partial_file(write, store_dir, monkeypatch):
    from forensics.ingest import normalise
    real = normalise.Writer.commit

    def boom(self, *a, **k):
        raise KeyboardInterrupt  # killed before the commit
    monkeypatch.setattr(normalise.Writer, "commit", boom)
    with pytest.raises(KeyboardInterrupt):
        ingest([write("a.csv", BOOK)], store=store_dir)
    assert not list(store_dir.glob("book_updates/**/*.parquet"))
    assert not list(store_dir.glob("**/*.tmp"))
    monkeypatch.setattr(normalise.Writer, "commit", real)
    assert ingest([write("a.csv", BOOK)], store=store_dir)[0].total_rows == 8


def test_orphan_parts_of_a_killed_commit_are_recovered(write, store_dir):
    ingest([write("a.csv", BOOK)], store=store_dir)
    st = Store(store_dir)
    orphan = next(store_dir.glob("book_updates/**/*.parquet")).with_name("deadbeefdeadbeef-00001.parquet")
    pl.DataFrame({"ts": [1]}).write_parquet(orphan)
    assert st.recover() == 1 and not orphan.exists()


def test_cli_ingest_and_sql(write, store_dir):
    b = write("book.csv", BOOK)
    runner = CliRunner()
    out = runner.invoke(cli, ["ingest", str(b), "--store", str(store_dir), "-q"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["sql", "select count(*) as n from book_updates", "--store", str(store_dir)])
    assert out.exit_code == 0 and "8" in out.output


def test_cli_unknown_format_is_one_line_error(write, store_dir):
    p = write("notes.txt", "hello\nworld\n")
    out = CliRunner().invoke(cli, ["ingest", str(p), "--store", str(store_dir)])
    assert out.exit_code == 1
    assert "unknown format" in out.output and "Traceback" not in out.output


def test_same_trades_from_two_sources_are_stored_once(write, store_dir):
    first = ingest([write("a_trades.csv", TRADES)], store=store_dir)[0]
    more = TRADES + "binance-futures,BTCUSDT,1760130001700000,1760130001800000,13,buy,120000.1,0.5\n"
    second = ingest([write("b_trades.csv", more)], store=store_dir)[0]
    assert first.rows["trades"] == 2
    assert second.duplicates == 2 and second.rows["trades"] == 1
    con = Store(store_dir).connect()
    assert con.execute("select count(*), count(distinct trade_id) from trades").fetchone() == (3, 3)
    assert con.execute("select sum(duplicates) from manifest").fetchone()[0] == 2


def test_equal_ids_of_different_prints_are_not_duplicates(write, store_dir):
    ingest([write("a_trades.csv", TRADES)], store=store_dir)
    other = TRADES.replace("120000.0,1.0", "119000.0,3.0")  # id 11 again, but another print
    second = ingest([write("b_trades.csv", other)], store=store_dir)[0]
    assert second.duplicates == 1 and second.rows["trades"] == 1
