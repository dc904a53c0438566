"""Ingest against awkward real-world packaging: byte-order marks, zips made by hand, batches
with a bad file, the same data packed twice, a capture re-ingested with its snapshot."""
import zipfile

import orjson
import pytest
from click.testing import CliRunner

from forensics.cli import cli
from forensics.ingest import IngestError, ingest
from forensics.ingest.source import Source
from forensics.store import Store

TARDIS_BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance-futures,BTCUSDT,1760130000000000,1760130000100000,true,bid,120000.0,1.5
binance-futures,BTCUSDT,1760130000000000,1760130000100000,true,ask,120000.1,2
binance-futures,BTCUSDT,1760130001000000000,1760130001100000000,false,bid,119999.9,0.5
"""
AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
SPOT_TRADES = "21,120000.10000000,0.50000000,60000.05000000,1760054408123456,True,True\n"


def q(store_dir, sql):
    return Store(store_dir).connect().execute(sql).fetchall()


def test_bom_and_crlf_are_handled_once_for_every_reader(write, store_dir):
    # a Tardis export re-saved by a Windows tool: BOM + CRLF (the header must not become a row)
    p = write("binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz",
              "\ufeff" + TARDIS_BOOK.replace("\n", "\r\n"))
    r = ingest([p], store=store_dir)[0]
    assert r.format == "tardis-book" and r.rows == {"book_updates": 3} and r.rejected == 0
    assert q(store_dir, "select max(ts_ns) from book_updates") == [(1760130001000000000,)]
    # the mark is gone at the source level, even when a read returns it alone
    src = Source(write("x.csv", "\ufeffabc\n"))
    assert src.head() == b"abc\n" and list(src.blocks(block_bytes=3)) == [(1, b"abc\n")]


def test_zip_with_folder_and_macos_junk_and_a_plain_member_name(tmp_path, store_dir):
    p = tmp_path / "BTCUSDT-trades-2025-10-10.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr(zipfile.ZipInfo("export/"), b"")
        zf.writestr("export/data.csv", SPOT_TRADES)
        zf.writestr("__MACOSX/export/._data.csv", b"\x00\x05\x16\x07\x00\x02junk")
    r = ingest([p], store=store_dir)[0]
    # the symbol comes from the zip's own name when the member's name tells nothing
    assert r.instruments == [("binance-spot", "BTCUSDT")] and r.rows == {"trades": 1} and r.rejected == 0


def test_header_after_blank_lines_is_not_a_rejected_row(write, store_dir):
    p = write("BTCUSDT-aggTrades-2025-10-10.csv",
              "\r\n\r\n" + AGG_HEADER + "101,120000.10,0.5,1,3,1760054408123,true\n")
    r = ingest([p], store=store_dir)[0]
    assert r.rows == {"trades": 1} and r.rejected == 0


def test_a_bad_file_does_not_stop_the_batch(write, store_dir):
    good1 = write("BTCUSDT-aggTrades-2025-10-10.csv", AGG_HEADER + "1,100.5,1,1,1,1760054408123,true\n")
    empty_day = write("BTCUSDT-aggTrades-2025-10-11.csv", AGG_HEADER)  # header only
    notes = write("README.txt", "hello\n")
    good2 = write("BTCUSDT-aggTrades-2025-10-12.csv", AGG_HEADER + "3,100.5,1,1,1,1760227208123,true\n")
    with pytest.raises(IngestError, match="2 of 4 files failed") as info:
        ingest([good1, empty_day, notes, good2], store=store_dir)
    res = info.value.results
    assert [r.error is None for r in res] == [True, False, False, True]
    assert "no usable rows" in res[1].error and "unknown format" in res[2].error
    assert q(store_dir, "select count(*) from trades") == [(2,)]
    out = CliRunner().invoke(cli, ["ingest", str(empty_day), str(good1), "--store", str(store_dir), "-q"])
    assert out.exit_code == 1 and "already ingested" in out.output and "no usable rows" in out.output
    assert "Traceback" not in out.output


def test_same_data_packed_differently_is_not_stored_twice(write, store_dir):
    body = TARDIS_BOOK
    ingest([write("binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz", body)], store=store_dir)
    plain = write("binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv", body)  # gunzipped copy
    r = ingest([plain], store=store_dir)[0]
    assert r.skipped and r.same_content and r.same_as.endswith(".csv.gz")
    assert q(store_dir, "select count(*) from book_updates") == [(3,)]
    r = ingest([plain], store=store_dir, force=True)[0]  # --force replaces the other packing's rows
    assert not r.skipped and q(store_dir, "select count(*) from book_updates") == [(3,)]
    assert q(store_dir, "select name from manifest") == [(plain.name,)]


def test_capture_then_capture_with_its_snapshot(write, store_dir):
    t = 1_760_130_000_000
    evs = [{"e": "depthUpdate", "E": t + 1, "T": t, "s": "BTCUSDT", "U": 96, "u": 104, "pu": 95,
            "b": [["120000.10", "1.7"]], "a": []},
           {"e": "depthUpdate", "E": t + 101, "T": t + 100, "s": "BTCUSDT", "U": 105, "u": 110, "pu": 104,
            "b": [], "a": [["120000.20", "0"]]}]
    cap = write("btcusdt_20251010.gz", b"".join(orjson.dumps(e) + b"\n" for e in evs))
    snap = write("BTCUSDT-depth-snapshot-2025-10-10.json", orjson.dumps(
        {"lastUpdateId": 100, "E": t - 9, "T": t - 10, "bids": [["120000.10", "1.5"]], "asks": [["120000.20", "3"]]}))
    ingest([cap], store=store_dir)
    assert q(store_dir, "select reason from gaps") == [("no_snapshot",)]
    r = ingest([cap, snap], store=store_dir)[0]  # the same capture: not stored a second time
    assert r.skipped and r.companions == snap.name and r.companions_before is None
    assert q(store_dir, "select count(*) from book_updates") == [(2,)]
    r = ingest([cap, snap], store=store_dir, force=True)[0]
    assert r.rows == {"book_updates": 4} and r.gaps == 0
    assert q(store_dir, "select count(*) from book_updates") == [(4,)] and q(store_dir, "select * from gaps") == []


def test_progress_counts_one_pass_of_the_file(tmp_path, write, store_dir):
    rows = "".join(f"{i},100.5,1,{i},{i},{1760054408123 + i},true\n" for i in range(3000))
    gz = write("BTCUSDT-aggTrades-2025-10-10.csv.gz", AGG_HEADER + rows)
    z = tmp_path / "BTCUSDT-aggTrades-2025-10-11.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BTCUSDT-aggTrades-2025-10-11.csv", AGG_HEADER + rows.replace("17600544", "17601408"))
    seen = {}
    ingest([gz, z], store=store_dir, progress=lambda s, done: seen.setdefault(s.name, []).append((done, s.size)))
    for name, marks in seen.items():  # sniffing reads do not count; a zip advances too
        assert all(0 < done <= size for done, size in marks), (name, marks)
        assert marks[-1][0] >= 0.9 * marks[-1][1]


def test_store_path_with_glob_characters(write, tmp_path):
    store_dir = tmp_path / "stores [old] *"
    ingest([write("binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz", TARDIS_BOOK)], store=store_dir)
    assert q(store_dir, "select count(*) from book_updates") == [(3,)]
    assert q(store_dir, "select count(*) from manifest") == [(1,)]
    assert Store(store_dir).instrument("binance-futures", "BTCUSDT").price_decimals == 1
