"""Binance public daily files (bookDepth, aggTrades, trades) and the tick-level depth CSV."""
import zipfile

import pytest
from click.testing import CliRunner

from forensics.cli import cli
from forensics.errors import ForensicsError
from forensics.ingest import ingest, sniff
from forensics.ingest.binance_files import classify
from forensics.ingest.source import Source
from forensics.store import Store

S = 1_000_000_000
T = 1_760_054_400  # 2025-10-10 00:00:00 UTC, seconds

BOOKDEPTH = """timestamp,percentage,depth,notional
2025-10-10 00:00:08,-5,1500.25,175000000.5
2025-10-10 00:00:08,-1,300.5,36000000.25
2025-10-10 00:00:08,-0.2,10,1200000
2025-10-10 00:00:08,1,250,30100000
2025-10-10 00:00:08,5,1400,170000000
2025-10-10 00:00:38,-5,1490,174000000
"""
AGG_FUT = """agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker
101,120000.10,0.500,1,3,1760054408123,true
102,120000.20,0.250,4,4,1760054409456,false
"""
AGG_SPOT = """201,120000.10000000,0.50000000,1,3,1760054408123456,True,True
202,120000.20000000,0.25000000,4,4,1760054409456789,False,True
"""
TRADES_FUT = """id,price,qty,quote_qty,time,is_buyer_maker
11,120000.10,0.500,60000.05,1760054408123,true
12,120000.20,0.250,30000.05,1760054409456,false
"""
TRADES_SPOT = """21,120000.10000000,0.50000000,60000.05000000,1760054408123456,True,True
22,120000.20000000,0.25000000,30000.05000000,1760054409456789,False,True
"""
HIST = """symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu
BTCUSDT,1760054408000,100,100,b,snap,120000.00,1.500,-1
BTCUSDT,1760054408000,100,100,a,snap,120000.10,2.000,-1
BTCUSDT,1760054409000,99,105,b,set,120000.00,1.700,98
BTCUSDT,1760054409000,99,105,a,set,120000.10,0.000,98
BTCUSDT,1760054410000,106,110,b,set,119999.90,0.300,105
BTCUSDT,1760054411000,115,120,a,set,120000.20,1.000,112
BTCUSDT,1760054412000,121,125,a,set,120000.30,1.000,120
BTCUSDT,1760054413000,130,130,b,snap,119999.00,4.000,-1
BTCUSDT,1760054413000,130,130,a,snap,120001.00,4.000,-1
BTCUSDT,1760054414000,131,135,b,set,119999.00,3.000,130
"""


def q(store_dir, sql):
    return Store(store_dir).connect().execute(sql).fetchall()


def zipped(tmp_path, name, member, text):
    p = tmp_path / name
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr(member, text)
    return p


def test_bookdepth_sides_bands_and_time(write, store_dir):
    r = ingest([write("BTCUSDT-bookDepth-2025-10-10.csv", BOOKDEPTH)], store=store_dir)[0]
    assert r.format == "binance-bookdepth" and r.instruments == [("binance-futures", "BTCUSDT")]
    assert r.rows == {"depth_bands": 6} and r.rejected == 0
    rows = q(store_dir, "select ts_ns, side, band_pct, qty, notional from depth_bands order by seq")
    assert rows[0] == ((T + 8) * S, "bid", 5.0, 1500.25, 175000000.5)
    assert rows[2] == ((T + 8) * S, "bid", 0.2, 10.0, 1200000.0)
    assert rows[3][1:3] == ("ask", 1.0)
    assert rows[5][0] == (T + 38) * S


def test_bookdepth_zip_no_header_epoch(tmp_path, store_dir):
    body = "1760054408000,-5,1500.25,175000000.5\n1760054408000,2,10,1200000\n"
    p = zipped(tmp_path, "BTCUSDT-bookDepth-2025-10-10.zip", "BTCUSDT-bookDepth-2025-10-10.csv", body)
    r = ingest([p], store=store_dir)[0]
    assert r.format == "binance-bookdepth" and r.rows == {"depth_bands": 2}
    assert q(store_dir, "select ts_ns, side from depth_bands order by seq") == [
        ((T + 8) * S, "bid"), ((T + 8) * S, "ask")]


def test_aggtrades_futures(write, store_dir):
    r = ingest([write("BTCUSDT-aggTrades-2025-10-10.csv", AGG_FUT)], store=store_dir)[0]
    assert r.format == "binance-aggtrades" and r.instruments == [("binance-futures", "BTCUSDT")]
    assert q(store_dir, "select trade_id, price::varchar, size::varchar, aggressor, ts_ns from trades order by seq") == [
        ("101", "120000.1", "0.50", "sell", 1760054408123 * 1_000_000),
        ("102", "120000.2", "0.25", "buy", 1760054409456 * 1_000_000)]


def test_aggtrades_spot_no_header_microseconds_zip(tmp_path, store_dir):
    p = zipped(tmp_path, "BTCUSDT-aggTrades-2025-10-10.zip", "BTCUSDT-aggTrades-2025-10-10.csv", AGG_SPOT)
    r = ingest([p], store=store_dir)[0]
    assert r.format == "binance-aggtrades" and r.instruments == [("binance-spot", "BTCUSDT")]
    assert q(store_dir, "select ts_ns, aggressor from trades order by seq") == [
        (1760054408123456 * 1000, "sell"), (1760054409456789 * 1000, "buy")]


def test_trades_futures_and_spot(write, store_dir):
    a = ingest([write("BTCUSDT-trades-2025-10-10.csv", TRADES_FUT)], store=store_dir)[0]
    b = ingest([write("spot/BTCUSDT-trades-2025-10-10.csv", TRADES_SPOT)], store=store_dir)[0]
    assert a.format == b.format == "binance-trades"
    assert a.instruments == [("binance-futures", "BTCUSDT")] and b.instruments == [("binance-spot", "BTCUSDT")]
    assert q(store_dir, "select exchange, trade_id, ts_ns, price::varchar from trades order by exchange, seq") == [
        ("binance-futures", "11", 1760054408123 * 1_000_000, "120000.1"),
        ("binance-futures", "12", 1760054409456 * 1_000_000, "120000.2"),
        ("binance-spot", "21", 1760054408123456 * 1000, "120000.1"),
        ("binance-spot", "22", 1760054409456789 * 1000, "120000.2")]


def test_coinm_symbol_and_overrides(write, store_dir):
    r = ingest([write("BTCUSD_PERP-aggTrades-2025-10-10.csv", AGG_FUT)], store=store_dir)[0]
    assert r.instruments == [("binance-delivery", "BTCUSD_PERP")]
    r = ingest([write("x.csv", AGG_FUT.replace("0.500", "0.600"))], store=store_dir, symbol="ETHUSDT",
               exchange="binance-futures")[0]
    assert r.instruments == [("binance-futures", "ETHUSDT")]


def test_missing_symbol_asks_for_symbol(write, store_dir):
    with pytest.raises(ForensicsError, match="--symbol"):
        ingest([write("trades.csv", TRADES_FUT)], store=store_dir)


def test_sniffing_tells_the_files_apart(write):
    cases = {
        "BTCUSDT-bookDepth-2025-10-10.csv": (BOOKDEPTH, "binance-bookdepth"),
        "a.csv": (AGG_FUT, "binance-aggtrades"),
        "b.csv": (AGG_SPOT, "binance-aggtrades"),
        "c.csv": (TRADES_FUT, "binance-trades"),
        "d.csv": (TRADES_SPOT, "binance-trades"),
        "e.csv": (HIST, "binance-histdepth"),
        "f.csv": ("\n".join(HIST.splitlines()[1:]) + "\n", "binance-histdepth"),
        "BTCUSDT_T_DEPTH_2025-10-10_depth_snap.csv": (HIST, "binance-histdepth-snap"),
        "g.csv": ("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                  "binance-futures,BTCUSDT,1760130001500000,1760130001600000,11,sell,120000.0,1.0\n", "tardis-trades"),
    }
    for name, (text, fmt) in cases.items():
        assert sniff(Source(write(name, text))).name == fmt, name
    # old futures aggTrades without header (7 fields) vs spot trades (7 fields)
    assert classify(b"1,2.5,0.1,1,2,1760054408123,true\n1,2.5,0.1,1,2,1760054408123,true\n").kind == "aggtrades"
    assert classify(b"1,2.5,0.1,0.25,1760054408123,true,true\n1,2.5,0.1,0.25,1760054408123,true,true\n").kind == "trades"


def test_bad_rows_rejected_with_line_numbers(write, store_dir):
    text = AGG_FUT + "103,abc,0.1,5,5,1760054410000,true\n104,120000.3,-0.1,6,6,1760054410000,true\n" \
                     "105,120000.3,0.1,7,7,1760054410000,maybe\n106,120000.3,0.1\n" \
                     "107,120000.3,0.1,8,8,notatime,true\n108,120000.4,0.2,9,9,1760054411000,false\n"
    r = ingest([write("BTCUSDT-aggTrades-2025-10-10.csv", text)], store=store_dir)[0]
    assert r.rows == {"trades": 3} and r.rejected == 5
    reasons = {x.line: x.reason for x in r.first_rejects}
    assert reasons[4].startswith("non-numeric price") and reasons[5].startswith("negative size")
    assert "is_buyer_maker" in reasons[6] and "fields" in reasons[7] and "timestamp" in reasons[8]


def test_histdepth_chain_gap_and_resync(write, store_dir):
    r = ingest([write("BTCUSDT_T_DEPTH_2025-10-10_depth_update.csv", HIST)], store=store_dir)[0]
    assert r.format == "binance-histdepth" and r.instruments == [("binance-futures", "BTCUSDT")]
    assert r.rows == {"book_updates": 10} and r.gaps == 1
    rows = q(store_dir, "select seq, ts_ns, is_snapshot, side, price::varchar, size::varchar, update_id, "
                        "first_update_id, prev_update_id from book_updates order by ts, seq")
    assert rows[0][2:] == (True, "bid", "120000.0", "1.5", 100, 100, None)
    assert rows[2][2:] == (False, "bid", "120000.0", "1.7", 105, 99, 98)
    gaps = q(store_dir, "select reason, ts_from_ns, ts_to_ns, seq_from, seq_to, detail from gaps")
    assert len(gaps) == 1
    reason, ts_from, ts_to, seq_from, seq_to, detail = gaps[0]
    assert reason == "chain_break" and "pu=112" in detail
    assert ts_from == 1760054410000 * 1_000_000 and ts_to == 1760054413000 * 1_000_000
    assert seq_from == rows[5][0] and seq_to == rows[7][0]


def test_histdepth_update_file_alone_and_with_its_snap_file(write, store_dir, tmp_path):
    lines = HIST.splitlines()
    snap = "\n".join(lines[:3]) + "\n"
    upd = "\n".join([lines[0]] + lines[3:7]) + "\n"
    u = write("BTCUSDT_T_DEPTH_2025-10-10_depth_update.csv", upd)
    s = write("BTCUSDT_T_DEPTH_2025-10-10_depth_snap.csv", snap)
    alone = ingest([u], store=tmp_path / "alone")[0]
    assert alone.gaps == 1 and q(tmp_path / "alone", "select reason, ts_to from gaps") == [("no_snapshot", None)]
    res = ingest([u, s], store=store_dir)
    assert len(res) == 1 and res[0].rows == {"book_updates": 6}
    rows = q(store_dir, "select is_snapshot, update_id from book_updates order by seq")
    assert rows[:2] == [(True, 100), (True, 100)] and rows[2] == (False, 105)
    # the chain from the snapshot holds until pu=112 breaks it
    assert q(store_dir, "select reason from gaps") == [("chain_break",)]


def test_histdepth_no_header_and_bad_side(write, store_dir):
    body = "\n".join(HIST.splitlines()[1:4]) + "\nBTCUSDT,1760054409000,99,105,x,set,1.0,1.0,98\n"
    r = ingest([write("h.csv", body)], store=store_dir)[0]
    assert r.rows == {"book_updates": 3} and r.rejected == 1
    assert r.first_rejects[0].line == 4 and r.first_rejects[0].reason.startswith("unknown side")


def test_cli_zip_ingest_then_sql(tmp_path, store_dir):
    p = zipped(tmp_path, "BTCUSDT-aggTrades-2025-10-10.zip", "BTCUSDT-aggTrades-2025-10-10.csv", AGG_FUT)
    runner = CliRunner()
    out = runner.invoke(cli, ["ingest", str(p), "--store", str(store_dir), "-q"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["sql", "select count(*) as n from trades", "--store", str(store_dir)])
    assert out.exit_code == 0 and "2" in out.output
