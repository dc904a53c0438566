"""Issue 14 odds and ends: every venue reader registered and sniffed (also through gzip, zip, zstd
and collector lines), `forensics formats` lists them, Tardis venue names, Binance daily files
renamed without the date or with extra columns, zstd truncation."""
import gzip
import io
import zipfile

import orjson
import pytest
import zstandard
from click.testing import CliRunner

from forensics.cli import cli
from forensics.ingest import formats, sniff
from forensics.ingest.source import Source, infer_from_name
from tests.venue_util import ingest_one, raw

SAMPLES = {
    "bybit": {"topic": "orderbook.50.BTCUSDT", "type": "snapshot", "ts": 1709891679000, "cts": 1709891678990,
              "data": {"s": "BTCUSDT", "b": [["27450.00", "0.5"]], "a": [["27451.00", "0.75"]], "u": 5, "seq": 9}},
    "okx": {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot",
            "data": [{"asks": [["8476.98", "415", "0", "13"]], "bids": [["8476.97", "256", "0", "12"]],
                      "ts": "1597026383085", "checksum": 0, "prevSeqId": -1, "seqId": 123456}]},
    "coinbase": {"channel": "l2_data", "client_id": "", "timestamp": "2026-04-07T14:30:00.123456Z",
                 "sequence_num": 0, "events": [{"type": "snapshot", "product_id": "BTC-USD", "updates": [
                     {"side": "bid", "event_time": "2026-04-07T14:30:00.123456Z", "price_level": "68900.00",
                      "new_quantity": "1.5"},
                     {"side": "offer", "event_time": "2026-04-07T14:30:00.123456Z", "price_level": "68901.00",
                      "new_quantity": "0.5"}]}]},
    "hyperliquid": {"channel": "l2Book", "data": {"coin": "BTC", "time": 1703875200000, "levels": [
        [{"px": "98450.50", "sz": "2.5", "n": 3}], [{"px": "98451.00", "sz": "1.5", "n": 2}]]}},
    "kraken": [0, {"as": [["5541.30000", "2.50700000", "1534614248.123678"]],
                   "bs": [["5541.20000", "1.52900000", "1534614248.765567"]]}, "book-10", "XBT/USD"],
}


def test_every_venue_registered_and_listed():
    names = list(formats())
    for v in SAMPLES:
        assert v in names
    out = CliRunner().invoke(cli, ["formats"])
    assert out.exit_code == 0
    for v in SAMPLES:
        line = next(x for x in out.output.splitlines() if x.startswith(v + " "))
        assert "Traps" in line


@pytest.mark.parametrize("venue", list(SAMPLES))
@pytest.mark.parametrize("pack", ["plain", "gz", "zip", "zst", "collector"])
def test_sniffed_and_read_in_every_container(venue, pack, tmp_path, store_dir):
    text = orjson.dumps(SAMPLES[venue]) + b"\n"
    p = tmp_path / f"{venue}.jsonl"
    if pack == "collector":
        text = b"1700000000123456789 " + text
    if pack == "gz":
        p, data = p.with_suffix(".jsonl.gz"), gzip.compress(text)
    elif pack == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(p.name, text)
        p, data = p.with_suffix(".zip"), buf.getvalue()
    elif pack == "zst":
        p, data = p.with_suffix(".jsonl.zst"), zstandard.ZstdCompressor().compress(text)
    else:
        data = text
    p.write_bytes(data)
    assert sniff(Source(p)).name == venue
    r = ingest_one(p, store_dir)
    assert r.rows["book_updates"] == 2 and r.rejected == 0
    if pack == "collector":
        (ex, sy), = r.instruments
        assert raw(store_dir, "book_updates", ex, sy)["local_ts"][0] == 1700000000123456789


def test_zstd_truncated_keeps_rows_before(tmp_path, store_dir):
    msg = SAMPLES["bybit"]
    body = b"".join(orjson.dumps({**msg, "type": "delta", "data": {**msg["data"], "u": 6 + k, "seq": 10 + k,
                                                                      "b": [[f"27449.{k % 100:02d}", "1"]]}}) + b"\n"
                    for k in range(3000))
    data = zstandard.ZstdCompressor().compress(orjson.dumps(msg) + b"\n" + body)
    p = tmp_path / "cut.jsonl.zst"
    p.write_bytes(data[: len(data) // 2])
    r = ingest_one(p, store_dir)
    assert 0 < r.rows["book_updates"] < 3002
    assert any("truncated compressed stream" in x.reason for x in r.first_rejects)


def test_tardis_venue_names(write, store_dir):
    head = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
    for tardis, ours in (("bybit", "bybit-linear"), ("okex-swap", "okx-swap"), ("coinbase", "coinbase"),
                         ("hyperliquid", "hyperliquid"), ("kraken", "kraken"), ("bybit-spot", "bybit-spot")):
        p = write(f"{tardis}.csv", head + f"{tardis},BTCUSDT,1700000000000000,1700000000000100,true,bid,100.5,1\n")
        r = ingest_one(p, store_dir)
        assert r.instruments == [(ours, "BTCUSDT")], tardis


def test_binance_daily_renamed_and_extra_columns(write, store_dir):
    assert infer_from_name("BTCUSDT-aggTrades.csv").symbol == "BTCUSDT"
    assert infer_from_name("BTCUSDT-depth-capture-2025-10-10.jsonl.gz").kind == "depth-capture"
    p = write("BTCUSDT-aggTrades.csv", "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
                                      "is_buyer_maker\n1,100.5,0.1,1,1,1760130000000,true\n")
    r = ingest_one(p, store_dir)
    assert r.format == "binance-aggtrades" and r.rows["trades"] == 1
    assert r.notes == ["file name has no date (renamed?): dates taken from the data"]
    p = write("BTCUSDT-bookDepth-2025-10-10.csv", "timestamp,percentage,depth,notional,weighted_avg_price\n"
                                                 "2025-10-10 00:00:08,-5,100.5,1000000.0,99.5\n"
                                                 "2025-10-10 00:00:08,5,80.5,900000.0,100.7\n")
    r = ingest_one(p, store_dir)
    assert r.format == "binance-bookdepth" and r.rows["depth_bands"] == 2
    assert r.notes == ["1 extra column(s) ignored: weighted_avg_price"]
    out = CliRunner().invoke(cli, ["ingest", "--store", str(store_dir) + "b", str(p)])
    assert "note: 1 extra column(s) ignored: weighted_avg_price" in out.output
    p = write("ETHUSDT-bookDepth.csv", "2025-10-10 00:00:08,-5,100.5,1000000.0,99.5\n"
                                      "2025-10-10 00:00:38,5,80.5,900000.0,100.7\n")
    r = ingest_one(p, store_dir)
    assert r.format == "binance-bookdepth" and r.instruments == [("binance-futures", "ETHUSDT")]
    assert len(r.notes) == 2


@pytest.mark.parametrize("venue", list(SAMPLES))
def test_pretty_printed_documents(venue, tmp_path, store_dir):
    """One message or an array of messages saved pretty-printed (docs, API clients, jq)."""
    import json
    p = tmp_path / f"{venue}.json"
    p.write_text(json.dumps([SAMPLES[venue]] if venue != "kraken" else SAMPLES[venue], indent=2))
    assert sniff(Source(p)).name == venue
    r = ingest_one(p, store_dir)
    assert r.rows["book_updates"] == 2 and r.rejected == 0


SHARED_SAMPLES = {"bybit-ws-orderbook-snapshot.json": ("bybit", "book_updates", 2),
                  "bybit-ws-publicTrade.json": ("bybit", "trades", 1),
                  "okx-ws-books-snapshot.json": ("okx", "book_updates", 16),
                  "okx-ws-trades.json": ("okx", "trades", 1),
                  "coinbase-ws-level2-snapshot.json": ("coinbase", "book_updates", 6),
                  "coinbase-ws-market-trades.json": ("coinbase", "trades", 2),
                  "hyperliquid-ws-l2Book.json": ("hyperliquid", "book_updates", 10),
                  "bybit-histdata-ob500-xrpusdt.data.zip": ("bybit", "book_updates", None)}


@pytest.mark.parametrize("name", list(SHARED_SAMPLES))
def test_shared_format_samples(name, store_dir):
    from tests.venue_util import SHARED
    p = SHARED / "formats" / name
    if not p.exists():
        pytest.skip(f"{p} not present")
    fmt, table, n = SHARED_SAMPLES[name]
    assert sniff(Source(p)).name == fmt
    r = ingest_one(p, store_dir)
    assert r.rejected == 0 and (n is None or r.rows[table] == n) and r.rows[table] > 0
