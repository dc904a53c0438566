"""The reader contract, for every registered format (one fixture each, built here): a new venue
module passes this file or it is not done (README "Writing a reader").

Per format: the fixture is sniffed as that format and no other; a UTF-8 BOM and CRLF line ends
give the same rows; a truncated gzip keeps the rows before the damage and says where it broke;
a bad line is rejected with ``file:line`` (``--strict``: an error naming it, nothing written);
ingesting twice changes nothing; ``--exchange``/``--symbol`` reach every row and gap; a reader
whose frame misspells a column fails loudly, naming the reader and the table.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import orjson
import polars as pl
import pytest

from forensics.errors import ForensicsError
from forensics.ingest import IngestError, formats, ingest
from forensics.ingest.contract import OPTIONAL, ReaderContractError, check_frame, check_gap
from forensics.ingest.seqchain import SeqChain, gap_row, straddles
from forensics.ingest.source import Source, infer_from_name
from forensics.store import Store

REPO = Path(__file__).resolve().parents[1]
SHARED_FORMATS = next((p for p in (REPO.parent / "shared" / "formats", REPO.parent.parent / "shared" / "formats")
                       if p.is_dir()), REPO.parent / "shared" / "formats")
T0_MS = 1_760_129_400_000  # 2025-10-10


def _jl(msgs) -> bytes:
    return b"".join(orjson.dumps(m) + b"\n" for m in msgs)


# ---- one fixture per registered format: (file name, bytes, companions [(name, bytes)]) -------

def _bybit():
    msgs = [{"topic": "orderbook.50.BTCUSDT", "type": "snapshot", "ts": T0_MS, "cts": T0_MS,
             "data": {"s": "BTCUSDT", "b": [["100.0", "1.5"], ["99.5", "2"]], "a": [["100.5", "1"], ["101.0", "3"]],
                      "u": 100, "seq": 1000}}]
    for i in range(1, 40):
        msgs.append({"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": T0_MS + 100 * i, "cts": T0_MS + 100 * i,
                     "data": {"s": "BTCUSDT", "b": [["100.0", f"{1 + i % 5}.5"]], "a": [], "u": 100 + i,
                              "seq": 1000 + i}})
        if i % 5 == 0:
            msgs.append({"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": T0_MS + 100 * i,
                         "data": [{"T": T0_MS + 100 * i, "s": "BTCUSDT", "S": "Buy", "v": "0.1", "p": "100.5",
                                   "i": f"t{i}", "BT": False}]})
    return "bybit-BTCUSDT.jsonl", _jl(msgs), []


def _okx():
    msgs = [{"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot",
             "data": [{"asks": [["100.5", "1", "0", "1"]], "bids": [["100.0", "2", "0", "1"]], "ts": str(T0_MS),
                       "checksum": 0, "seqId": 10, "prevSeqId": -1}]}]
    for i in range(1, 40):
        msgs.append({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
                     "data": [{"asks": [], "bids": [["100.0", f"{1 + i % 4}", "0", "1"]], "ts": str(T0_MS + 100 * i),
                               "checksum": 0, "seqId": 10 + i, "prevSeqId": 9 + i}]})
        if i % 5 == 0:
            msgs.append({"arg": {"channel": "trades", "instId": "BTC-USDT"},
                         "data": [{"instId": "BTC-USDT", "tradeId": str(i), "px": "100.5", "sz": "0.1",
                                   "side": "buy", "ts": str(T0_MS + 100 * i)}]})
    return "okx-BTC-USDT.jsonl", _jl(msgs), []


def _coinbase():
    def t(i):
        return f"2025-10-10T21:00:{i // 10:02d}.{i % 10}00000Z"
    msgs = [{"channel": "l2_data", "client_id": "", "timestamp": t(0), "sequence_num": 0,
             "events": [{"type": "snapshot", "product_id": "BTC-USD", "updates": [
                 {"side": "bid", "event_time": t(0), "price_level": "100.00", "new_quantity": "1.5"},
                 {"side": "offer", "event_time": t(0), "price_level": "100.50", "new_quantity": "2"}]}]}]
    for i in range(1, 40):
        msgs.append({"channel": "l2_data", "client_id": "", "timestamp": t(i), "sequence_num": i,
                     "events": [{"type": "update", "product_id": "BTC-USD", "updates": [
                         {"side": "bid", "event_time": t(i), "price_level": "100.00",
                          "new_quantity": f"{1 + i % 3}.5"}]}]})
    return "coinbase-BTC-USD.jsonl", _jl(msgs), []


def _hyperliquid():
    msgs = [{"channel": "l2Book", "data": {"coin": "BTC", "time": T0_MS + 500 * i,
                                           "levels": [[{"px": "100.0", "sz": f"{1 + i % 4}", "n": 1}],
                                                      [{"px": "100.5", "sz": "2", "n": 1}]]}} for i in range(40)]
    return "hyperliquid-BTC.jsonl", _jl(msgs), []


def _kraken():
    msgs = []
    for i in range(40):
        ts = f"{T0_MS // 1000 + i}.100000"
        msgs.append([42, {"as": [["100.5", "2.0", ts]], "bs": [["100.0", f"{1 + i % 4}.0", ts]]}, "book-10", "XBT/USD"])
    msgs.append([7, [["100.5", "0.1", f"{T0_MS // 1000 + 40}.5", "b", "l", ""]], "trade", "XBT/USD"])
    return "kraken-XBTUSD.jsonl", _jl(msgs), []


def _tardis_book():
    rows = ["exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"]
    us = T0_MS * 1000
    rows += [f"deribit,BTC-PERPETUAL,{us},{us + 5},true,bid,100.0,10", f"deribit,BTC-PERPETUAL,{us},{us + 5},true,ask,100.5,10"]
    rows += [f"deribit,BTC-PERPETUAL,{us + 1000 * i},{us + 1000 * i + 5},false,bid,100.0,{10 + i}" for i in range(1, 40)]
    return "deribit_incremental_book_L2_2025-10-10_BTC-PERPETUAL.csv", ("\n".join(rows) + "\n").encode(), []


def _tardis_trades():
    rows = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    us = T0_MS * 1000
    rows += [f"deribit,BTC-PERPETUAL,{us + 1000 * i},{us + 1000 * i + 5},{i},buy,100.5,{i}" for i in range(1, 40)]
    return "deribit_trades_2025-10-10_BTC-PERPETUAL.csv", ("\n".join(rows) + "\n").encode(), []


def _sample_head(name: str, n: int) -> bytes:
    p = REPO / "sample_data" / name
    data = gzip.open(p).read() if name.endswith(".gz") else p.read_bytes()
    return b"\n".join(data.split(b"\n")[:n]) + b"\n"


def _capture():
    return "BTCUSDT-depth-capture-2025-10-10.jsonl", _sample_head("BTCUSDT-depth-capture-2025-10-10.jsonl.gz", 40), []


def _snapshot():
    doc = {"lastUpdateId": 8000000003413, "E": T0_MS + 773, "T": T0_MS + 772,
           "bids": [["100.0", "1.5"], ["99.5", "2"]], "asks": [["100.5", "1"], ["101.0", "3"]]}
    return "BTCUSDT-depth-snapshot.json", orjson.dumps(doc) + b"\n", []


def _bookdepth():
    rows = ["timestamp,percentage,depth,notional"]
    for i in range(8):
        for pct in (-5, -1, 1, 5):
            rows.append(f"2025-10-10 00:00:{8 + i * 3:02d},{pct},{100 + abs(pct) * 10}.5,{(100 + abs(pct) * 10) * 120000}.25")
    return "BTCUSDT-bookDepth-2025-10-10.csv", ("\n".join(rows) + "\n").encode(), []


def _aggtrades():
    return "BTCUSDT-aggTrades-2025-10-10.csv", _sample_head("BTCUSDT-aggTrades-2025-10-10.csv", 40), []


def _trades():
    rows = ["id,price,qty,quote_qty,time,is_buyer_maker"]
    rows += [f"{6500000000 + i},120002.{i % 10}0,0.0{1 + i % 9},1200.{i},{T0_MS + 37 * i},{'true' if i % 2 else 'false'}"
             for i in range(40)]
    return "BTCUSDT-trades-2025-10-10.csv", ("\n".join(rows) + "\n").encode(), []


HIST_HEADER = "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu"


def _hist_snap_rows() -> list[str]:
    return [f"BTCUSDT,{T0_MS},1000,1000,{s},snap,{p},1.0,-1" for s, p in (("b", "100.0"), ("b", "99.9"), ("a", "100.1"))]


def _histdepth():
    rows = [HIST_HEADER]
    u = 1000
    for i in range(40):
        rows.append(f"BTCUSDT,{T0_MS + 100 * (i + 1)},{u + 1},{u + 5},b,set,100.0,{1 + i % 3}.0,{u}")
        u += 5
    snap = "\n".join([HIST_HEADER] + _hist_snap_rows()) + "\n"
    return ("BTCUSDT_T_DEPTH_2025-10-10_depth_update.csv", ("\n".join(rows) + "\n").encode(),
            [("BTCUSDT_T_DEPTH_2025-10-10_depth_snap.csv", snap.encode())])


def _histdepth_snap():
    rows = [HIST_HEADER] + [f"BTCUSDT,{T0_MS + 1000 * k},{1000 + k},{1000 + k},{s},snap,{p},1.{k},-1"
                            for k in range(12) for s, p in (("b", "100.0"), ("a", "100.1"), ("a", "100.2"))]
    return "BTCUSDT_T_DEPTH_2025-10-10_depth_snap.csv", ("\n".join(rows) + "\n").encode(), []


LOB = "AAPL_2012-06-21_34200000_57600000_{}_1.csv"


def _lobster():
    msg, book = [], []
    bid = 100
    for i in range(40):
        t = 34200.0 + i * 0.5
        msg.append(f"{t:.9f},1,{1000 + i},10,5850000,1")
        bid += 10
        book.append(f"5851000,100,5850000,{bid}")
    return (LOB.format("message"), ("\n".join(msg) + "\n").encode(),
            [(LOB.format("orderbook"), ("\n".join(book) + "\n").encode())])


def _lobster_orderbook():
    name, data, comps = _lobster()
    return comps[0][0], comps[0][1], [(name, data)]


FIXTURES = {
    "lobster": _lobster, "lobster-orderbook": _lobster_orderbook, "bybit": _bybit, "okx": _okx,
    "coinbase": _coinbase, "hyperliquid": _hyperliquid, "kraken": _kraken, "tardis-book": _tardis_book,
    "tardis-trades": _tardis_trades, "binance-capture": _capture, "binance-snapshot": _snapshot,
    "binance-bookdepth": _bookdepth, "binance-aggtrades": _aggtrades, "binance-trades": _trades,
    "binance-histdepth": _histdepth, "binance-histdepth-snap": _histdepth_snap,
}
#: formats read only together with another file (their battery runs through that file's format)
COMPANION_ONLY = {"lobster-orderbook"}
#: one JSON document per file (no line structure to break)
DOCUMENTS = {"binance-snapshot"}
ALL = sorted(formats())
MAIN = [f for f in ALL if f not in COMPANION_ONLY]
LINED = [f for f in MAIN if f not in DOCUMENTS]


def _write(dirpath: Path, fmt: str, transform=None) -> list[Path]:
    """The format's fixture written to ``dirpath`` (main file first, then its companions);
    ``transform(bytes) -> (bytes, suffix)`` changes the main file."""
    name, data, comps = FIXTURES[fmt]()
    dirpath.mkdir(parents=True, exist_ok=True)
    suffix = ""
    if transform is not None:
        data, suffix = transform(data)
    main = dirpath / (name + suffix)
    main.write_bytes(data)
    out = [main]
    for cname, cdata in comps:
        (dirpath / cname).write_bytes(cdata)
        out.append(dirpath / cname)
    return out


def _tables(store_dir: Path) -> dict[str, pl.DataFrame]:
    """Every raw table of the store, in a canonical order, without seq (arrival positions move
    when lines do) and without the partition columns."""
    st = Store(store_dir)
    out = {}
    for t in ("book_updates", "trades", "quotes", "depth_bands", "labels_level_changes", "gaps"):
        files = st.files(t)
        if files:
            df = pl.concat([st.read_part(f) for f in files], how="vertical_relaxed")
            df = df.drop([c for c in ("seq", "seq_from", "seq_to", "source") if c in df.columns])
            out[t] = df.sort(df.columns, nulls_last=True)
    return out


def _ingest(paths, store_dir, **kw):
    try:
        return ingest([str(p) for p in paths], str(store_dir), **kw), None
    except IngestError as exc:
        return exc.results, exc


# ---- every format has a fixture, and sniffing is unambiguous ---------------------------------

def test_every_registered_format_has_a_conformance_fixture():
    assert set(FIXTURES) == set(ALL), ("a registered format without a fixture here (or a stale one): "
                                       f"{sorted(set(ALL) ^ set(FIXTURES))}")


@pytest.mark.parametrize("fmt", ALL)
def test_sniffing_is_unique(tmp_path, fmt):
    main = _write(tmp_path, fmt)[0]
    src = Source(main)
    head, info = src.head(), src.name_info()
    hits = [name for name, f in formats().items() if f.sniff(head, info)]
    assert hits == [fmt], f"{main.name} sniffed as {hits}"


def test_real_samples_sniff_as_one_format():
    if not SHARED_FORMATS.is_dir():
        pytest.skip(f"{SHARED_FORMATS} not present (shared folder absent)")
    for p in sorted(SHARED_FORMATS.iterdir()):
        if p.suffix == ".md":
            continue
        src = Source(p)
        head, info = src.head(), src.name_info()
        hits = [name for name, f in formats().items() if f.sniff(head, info)]
        assert len(hits) == 1, f"{p.name} sniffed as {hits}"


def test_file_name_conventions_come_from_the_format_modules():
    import importlib

    import forensics.ingest as reg
    owners = {}
    for mod in reg.FORMAT_MODULES + reg.VENUE_MODULES:
        for rule in getattr(importlib.import_module(mod), "NAMES", ()):
            owners[rule.pattern.pattern] = mod
    assert {"forensics.ingest.lobster", "forensics.ingest.tardis", "forensics.ingest.binance_files",
            "forensics.ingest.binance_capture"} <= set(owners.values())
    src = (REPO / "forensics" / "ingest" / "source.py").read_text()
    assert "T_DEPTH" not in src and "LOBSTER_SampleFile" not in src and "incremental_book_L2|" not in src
    cases = {
        "BTCUSDT-bookDepth-2025-10-10.zip": (None, "BTCUSDT", "2025-10-10", "bookDepth"),
        "BTCUSDT-aggTrades.csv": (None, "BTCUSDT", None, "aggTrades"),
        "BTCUSDT-depth-capture-2025-10-10.jsonl.gz": (None, "BTCUSDT", "2025-10-10", "depth-capture"),
        "binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz":
            ("binance-futures", "BTCUSDT", "2025-10-10", "incremental_book_L2"),
        "btcusdt_20251010.gz": (None, "BTCUSDT", "2025-10-10", None),
        "BTCUSDT_T_DEPTH_2022-11-01_depth_snap.csv": (None, "BTCUSDT", "2022-11-01", "depth_snap"),
        "LOBSTER_SampleFile_AAPL_2012-06-21_1.zip": ("lobster", "AAPL", "2012-06-21", "lobster-zip"),
        "AAPL_2012-06-21_34200000_57600000_message_5.csv": ("lobster", "AAPL", "2012-06-21", "lobster-message"),
        "BYBIT.jsonl.zst": (None, None, None, None),
    }
    for name, want in cases.items():
        ni = infer_from_name(name)
        assert (ni.exchange, ni.symbol, ni.date, ni.kind) == want, name


# ---- the battery, per format -----------------------------------------------------------------

@pytest.mark.parametrize("fmt", LINED)
def test_bom_and_crlf_give_the_same_rows(tmp_path, fmt):
    _ingest(_write(tmp_path / "plain", fmt), tmp_path / "s1")
    res, err = _ingest(_write(tmp_path / "bom", fmt, lambda b: (b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"), "")),
                       tmp_path / "s2")
    assert err is None, err
    a, b = _tables(tmp_path / "s1"), _tables(tmp_path / "s2")
    assert a and a.keys() == b.keys()
    for t in a:
        assert a[t].drop("detail" if t == "gaps" else []).equals(b[t].drop("detail" if t == "gaps" else [])), t


def _truncate(data: bytes) -> tuple[bytes, str]:
    # the body repeated (a header stays first and single): the damage sits well after the first rows
    head, _, body = data.partition(b"\n")
    gz = gzip.compress(head + b"\n" + body * 40, mtime=0)
    return gz[: len(gz) * 2 // 3], ".gz"


@pytest.mark.parametrize("fmt", LINED)
def test_truncated_gzip_keeps_rows_and_says_where(tmp_path, fmt):
    paths = _write(tmp_path / "in", fmt, _truncate)
    res, err = _ingest(paths, tmp_path / "s")
    main = res[0]
    if main.error is not None:  # a reader may refuse a damaged file, but with a clear message naming it
        assert paths[0].name in main.error and "compressed" in main.error
        pytest.skip(f"{fmt} refuses a damaged file: {main.error}")
    assert main.total_rows > 0
    bad = [r for r in main.first_rejects if "compressed stream" in r.reason]
    rejects = (tmp_path / "s" / "rejects").glob("*.jsonl")
    lines = [json.loads(x) for f in rejects for x in f.read_text().splitlines()]
    hit = [r for r in lines if "compressed stream" in r["reason"]]
    assert hit and hit[0]["line"] and hit[0]["line"] > 1, (bad, lines[:3])
    # --strict: the damage is an error naming file:line, nothing is written
    res2, err2 = _ingest(paths, tmp_path / "s2", strict=True)
    assert err2 is not None and f"{paths[0]}:{hit[0]['line']}:" in str(err2)
    assert not _tables(tmp_path / "s2")


def _bad_line(data: bytes, k: int = 3) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    lines[k - 1] = b"this is not a record \x01"
    return b"\n".join(lines), ""


@pytest.mark.parametrize("fmt", LINED)
def test_bad_line_rejected_with_file_line_and_strict_refuses(tmp_path, fmt):
    paths = _write(tmp_path / "in", fmt, _bad_line)
    res, err = _ingest(paths, tmp_path / "s")
    assert err is None, err
    r = res[0]
    assert r.rejected >= 1 and r.total_rows > 0
    assert any(x.line == 3 for x in r.first_rejects), r.first_rejects
    assert r.rejects_path is not None
    stored = [json.loads(x) for x in Path(r.rejects_path.removeprefix("file://")).read_text().splitlines()]
    assert any(x["line"] == 3 for x in stored)
    res2, err2 = _ingest(paths, tmp_path / "s2", strict=True)
    assert err2 is not None and f"{paths[0]}:3:" in str(err2) and "--strict" in str(err2)
    assert not _tables(tmp_path / "s2")
    assert not Store(tmp_path / "s2").manifest().height


@pytest.mark.parametrize("fmt", MAIN)
def test_reingest_is_idempotent(tmp_path, fmt):
    paths = _write(tmp_path / "in", fmt)
    res, err = _ingest(paths, tmp_path / "s")
    assert err is None, err
    before = _tables(tmp_path / "s")
    assert before
    res2, err2 = _ingest(paths, tmp_path / "s")
    assert err2 is None and all(r.skipped for r in res2)
    after = _tables(tmp_path / "s")
    assert before.keys() == after.keys() and all(before[t].equals(after[t]) for t in before)
    res3, err3 = _ingest(paths, tmp_path / "s", force=True)  # --force replaces, never doubles
    after = _tables(tmp_path / "s")
    assert err3 is None and all(before[t].equals(after[t]) for t in before)


@pytest.mark.parametrize("fmt", MAIN)
def test_overrides_reach_every_row_and_gap(tmp_path, fmt):
    paths = _write(tmp_path / "in", fmt)
    res, err = _ingest(paths, tmp_path / "s", exchange="venue-x", symbol="SYM-1")
    assert err is None, err
    assert res[0].instruments == [("venue-x", "SYM-1")]
    st = Store(tmp_path / "s")
    assert {i.exchange for i in st.instruments()} == {"venue-x"}
    for t in ("book_updates", "trades", "quotes", "depth_bands", "gaps"):
        assert st.instruments_in(t) in ([], [("venue-x", "SYM-1")]), t


@pytest.mark.parametrize("fmt", MAIN)
def test_a_misspelled_column_fails_naming_reader_and_table(tmp_path, fmt, monkeypatch):
    f = formats()[fmt]
    orig = f.read
    hit = {}

    def bad_read(src, opts):
        for ch in orig(src, opts):
            for t, df in ch.tables.items():
                if not hit and df is not None and df.height:
                    col = next(c for c in df.columns if c not in ("exchange", "symbol", "arrival", "line"))
                    ch.tables[t] = df.rename({col: col + "_typo"})
                    hit.update(table=t, col=col)
            yield ch
    monkeypatch.setattr(f, "read", bad_read)
    paths = _write(tmp_path / "in", fmt)
    res, err = _ingest(paths, tmp_path / "s")
    assert hit, "the fixture gave no rows"
    assert err is not None
    msg = str(err)
    assert f"reader {fmt!r}" in msg and f"table {hit['table']!r}" in msg and f"{hit['col']}_typo" in msg
    assert str(paths[0]) in msg
    assert not _tables(tmp_path / "s") and not Store(tmp_path / "s").manifest().height


# ---- the contract and the chain helper, directly ---------------------------------------------

def _book_frame(**extra) -> pl.DataFrame:
    d = {"exchange": ["x"], "symbol": ["Y"], "ts": [T0_MS * 10**6], "local_ts": [None], "is_snapshot": [False],
         "side": ["bid"], "price": ["100.5"], "size": ["1"], "arrival": [1 << 20], "line": [1]}
    d.update(extra)
    return pl.DataFrame(d, schema_overrides={"local_ts": pl.Int64})


def test_contract_declared_optional_columns_are_null_others_are_errors():
    out = check_frame("t", "book_updates", _book_frame())
    assert set(OPTIONAL["book_updates"]) <= set(out.columns)
    assert out["update_id"].dtype == pl.Int64 and out["update_id"].null_count() == 1
    with pytest.raises(ReaderContractError, match=r"reader 't'.*'book_updates'.*missing column\(s\) local_ts"):
        check_frame("t", "book_updates", _book_frame().drop("local_ts"))
    with pytest.raises(ReaderContractError, match=r"missing column\(s\) exchange"):  # even if --exchange is given
        check_frame("t", "book_updates", _book_frame().drop("exchange"))
    with pytest.raises(ReaderContractError, match=r"unknown column\(s\) sise"):
        check_frame("t", "book_updates", _book_frame(sise=["1"]))
    with pytest.raises(ReaderContractError, match=r"cannot write|readers cannot"):
        check_frame("t", "depth", _book_frame())
    # exact casts pass, inexact ones fail: a float price is not the venue's decimal
    assert check_frame("t", "book_updates", _book_frame(ts=[T0_MS * 10**6 * 1.0]))["ts"].dtype == pl.Int64
    with pytest.raises(ReaderContractError, match="values change"):
        check_frame("t", "book_updates", _book_frame(ts=[1.5]))
    with pytest.raises(ReaderContractError, match="decimal text"):
        check_frame("t", "book_updates", _book_frame(price=[100.5]))
    assert check_frame("t", "book_updates", _book_frame(price=[100]))["price"].to_list() == ["100"]
    with pytest.raises(ReaderContractError, match="gap row"):
        check_gap("t", {**gap_row("x", "Y", "chain_break", 1, 2, "d"), "tsfrom": 1})
    assert check_gap("t", {k: v for k, v in gap_row("x", "Y", "halt", 1, 2, "d").items() if k != "ts_to"})["ts_to"] is None


def test_straddle_rules():
    assert straddles(5, 10, 7) and straddles(7, 9, 7) and not straddles(8, 9, 7)
    assert straddles(8, 9, 7, rule="spot") and not straddles(5, 7, 7, rule="spot")
    assert straddles(8, 9, 7, rule="either") and straddles(5, 7, 7, rule="either") and not straddles(9, 12, 7, rule="either")
    with pytest.raises(ValueError):
        straddles(1, 2, 3, rule="nope")


def test_seqchain_break_restart_and_one_gap_per_break():
    c, k = SeqChain(), ("x", "Y")
    assert c.no_snapshot(k, 10, 1 << 20, "no snap") and not c.no_snapshot(k, 11, 2 << 20, "again")
    c.restart(k, 20, 3 << 20)  # closes the no_snapshot gap
    c.advance(k, 5, 20)
    assert c.chain_break(k, 4 << 20, "u jumped") and not c.chain_break(k, 5 << 20, "again")  # one gap per break
    assert c.drain() == [gap_row("x", "Y", "no_snapshot", 10, 1 << 20, "no snap", 20, 3 << 20)]
    c.restart(k, 30, 6 << 20)
    assert c.st(k).synced
    assert c.drain(eof=True) == [gap_row("x", "Y", "chain_break", 20, 4 << 20, "u jumped", 30, 6 << 20)]
    c.advance(k, 9, 40)
    c.chain_break(k, 7 << 20, "open at the end")
    assert c.drain(eof=True) == [gap_row("x", "Y", "chain_break", 40, 7 << 20, "open at the end")]


def test_forensics_error_is_raised_for_contract_bugs():
    assert issubclass(ReaderContractError, ForensicsError)


def test_gap_reasons_are_the_vocabulary():
    """Every gap a reader writes carries a GapReason; an unknown reason is a reader bug."""
    from forensics.ingest.seqchain import gap_row
    from forensics.vocab import GapReason
    assert gap_row("x", "Y", GapReason.CHAIN_BREAK, 1, 2, "d")["reason"] == "chain_break"
    with pytest.raises(ValueError):
        gap_row("x", "Y", "seq", 1, 2, "d")
