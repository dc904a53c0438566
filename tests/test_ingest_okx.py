"""OKX v5 reader: books snapshot/update (seqId chain, checksum), books5, trades; shaped like the
shared/formats samples."""
import tempfile
from decimal import Decimal

import orjson
import pytest
import polars as pl
from click.testing import CliRunner

from forensics.cli import cli
from forensics.ingest.okx import checksum
from forensics.ingest.source import Source
from forensics.ingest.wsjson import LevelBook
from tests.venue_util import as_decimal, causes, gaps, ingest_one, random_book_session, raw, real, stored_book

T0 = 1_597_026_383_085  # ms
INST = "BTC-USDT-SWAP"
EX = "okx-swap"


class Feed:
    """Builds OKX books messages with a correct checksum from a model book."""

    def __init__(self, channel="books", inst=INST):
        self.ch, self.inst, self.book, self.seq, self.i = channel, inst, LevelBook(), 1000, 0

    def msg(self, action, levels, seq=None, prev=None, cs=None, depth=None):
        self.i += 1
        if action == "snapshot":
            self.book.clear()
        for side, p, q in levels:
            self.book.set(side, p, q)
        if depth:
            for s in ("bid", "ask"):
                self.book.truncate(s, depth)
        new = self.seq + 1 if seq is None else seq
        d = {"asks": [[p, q, "0", "1"] for s, p, q in levels if s == "ask"],
             "bids": [[p, q, "0", "1"] for s, p, q in levels if s == "bid"],
             "ts": str(T0 + 100 * self.i), "checksum": checksum(self.book) if cs is None else cs,
             "prevSeqId": -1 if action == "snapshot" else (self.seq if prev is None else prev), "seqId": new}
        self.seq = new
        return {"arg": {"channel": self.ch, "instId": self.inst}, "action": action, "data": [d]}


def lines(msgs):
    return "".join(orjson.dumps(m).decode() + "\n" for m in msgs)


def test_checksum_string_layout():
    """bid1:bid1sz:ask1:ask1sz:bid2:... over the top 25, venue strings, signed CRC32."""
    import zlib
    b = LevelBook()
    for side, p, q in (("bid", "3366.1", "7"), ("bid", "3366", "6"), ("ask", "3366.8", "9"), ("ask", "3368", "8"),
                       ("ask", "3372", "8")):
        b.set(side, p, q)
    c = zlib.crc32(b"3366.1:7:3366.8:9:3366:6:3368:8:3372:8")
    assert checksum(b) == (c - (1 << 32) if c >= 1 << 31 else c)


@pytest.mark.parametrize("seed", range(3))
def test_replay_equals_reference_and_checksums_match(seed, write, store_dir):
    snap, upd, ref = random_book_session(seed, 200)
    f = Feed()
    msgs = [f.msg("snapshot", snap)] + [f.msg("update", lv) for lv in upd]
    r = ingest_one(write("books.jsonl", lines(msgs)), store_dir)
    assert r.format == "okx" and r.rejected == 0 and r.gaps == 0
    assert stored_book(store_dir, EX, INST) == as_decimal(ref)
    assert "OKX checksums: 201 of 201 matched" in r.notes[0]  # snapshot + 200 updates
    assert any("sizes are contracts" in n for n in r.notes)


def test_chain_break_checksum_mismatch_heartbeat_and_resnapshot(write, store_dir):
    s0 = [("bid", "8476.97", "256"), ("bid", "8475.55", "101"), ("ask", "8476.98", "415"), ("ask", "8477", "7")]
    f = Feed()
    msgs = [f.msg("snapshot", s0), f.msg("update", [("bid", "8476.97", "200")]),
            f.msg("update", [], seq=f.seq, prev=f.seq),                       # heartbeat: no gap
            f.msg("update", [("ask", "8477", "8")], prev=f.seq + 5),          # chain broken
            f.msg("snapshot", s0),                                            # resubscribed: closes it
            f.msg("update", [("ask", "8477", "9")], cs=12345),                # checksum mismatch
            f.msg("snapshot", s0), f.msg("update", [("bid", "8470", "1")], cs=0)]  # 0 = not sent
    r = ingest_one(write("b.jsonl", lines(msgs)), store_dir)
    g = gaps(store_dir, EX, INST)
    assert [x[0] for x in g] == ["chain_break", "checksum"]
    assert g[0][2] is not None and g[1][2] is not None  # both closed by the next snapshot
    assert "12345" in g[1][5]
    assert r.notes[0].startswith("OKX checksums: 5 of 6 matched")  # 3 snapshots + 3 updates


def test_books5_full_each_time_truncation(write, store_dir):
    """books5: every message the whole top 5, diffed; a level pushed out by a better one is
    truncation, not a cancel."""
    msgs, mid = [], 60000
    import random
    rnd = random.Random(3)
    for i in range(700):
        mid += rnd.choice((-1, 0, 1))
        bids = [[f"{mid - k}.0", f"{rnd.randint(1, 9)}", "0", "1"] for k in range(1, 6)]
        asks = [[f"{mid + k}.0", f"{rnd.randint(1, 9)}", "0", "1"] for k in range(1, 6)]
        msgs.append({"arg": {"channel": "books5", "instId": "BTC-USDT"},
                     "data": [{"asks": asks, "bids": bids, "ts": str(T0 + 100 * i), "instId": "BTC-USDT"}]})
    r = ingest_one(write("b5.jsonl", lines(msgs)), store_dir)
    assert r.gaps == 0
    last = msgs[-1]["data"][0]
    assert stored_book(store_dir, "okx-spot", "BTC-USDT") == {
        "bid": {Decimal(p): Decimal(q) for p, q, _, _ in last["bids"]},
        "ask": {Decimal(p): Decimal(q) for p, q, _, _ in last["asks"]}}
    lc = causes(store_dir, "okx-spot", "BTC-USDT")
    # when the mid moves up by one, the deepest bid... stays; the lowest ask leaves at the touch
    # side and a bid leaves at the far end: the far-end removals are truncation
    far = lc.filter((pl.col("size") == 0) & (pl.col("cause") == "truncation"))
    assert far.height > 100
    assert lc.filter(pl.col("cause") == "cancel").height > 0


def test_trades_taker_side_and_bad_lines(write, store_dir):
    f = Feed(inst="BTC-USDT")
    msgs = [f.msg("snapshot", [("bid", "100", "1"), ("ask", "101", "1")])]
    msgs.append({"arg": {"channel": "trades", "instId": "BTC-USDT"},
                 "data": [{"instId": "BTC-USDT", "tradeId": "7", "px": "101", "sz": "0.5", "side": "buy",
                           "ts": str(T0 + 500)}]})
    text = lines(msgs) + '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":' \
                         '[["abc","1","0","1"]],"bids":[],"ts":"1"}]}\n' + "garbage\n"
    p = write("t.jsonl", text)
    out = CliRunner().invoke(cli, ["ingest", "--store", str(store_dir), str(p)])
    assert out.exit_code == 0, out.output
    assert f"{p}:3: OKX books: level" in out.output and f"{p}:4: not a JSON line" in out.output
    t = raw(store_dir, "trades", "okx-spot", "BTC-USDT")
    assert t["aggressor"].to_list() == ["buy"] and t["trade_id"].to_list() == ["7"]


def test_collector_lines_gzip(write, store_dir):
    f = Feed()
    msgs = [f.msg("snapshot", [("bid", "100", "1"), ("ask", "101", "1")]), f.msg("update", [("bid", "100", "2")])]
    text = "".join(f"{(T0 + k) * 1_000_000 + 5} {orjson.dumps(m).decode()}\n" for k, m in enumerate(msgs))
    r = ingest_one(write("okx_20200810.gz", text), store_dir)
    assert r.format == "okx" and r.rows["book_updates"] == 3
    assert raw(store_dir, "book_updates", EX, INST)["local_ts"].to_list()[0] == T0 * 1_000_000 + 5


def test_real_recording_checksums_and_ticker():
    """The shared real OKX recording (2022, 400-level books with checksums, no seqId): every
    checksum matches the rebuilt book, no gaps."""
    p = real("OKX.jsonl.zst")
    with tempfile.TemporaryDirectory() as d:
        r = ingest_one(p, d)
        assert r.rejected == 0 and r.gaps == 0
        note = next(n for n in r.notes if n.startswith("OKX checksums"))
        n_ok, n_all = [int(x.replace(",", "")) for x in note.split(":")[1].split(" matched")[0].split(" of ")]
        assert n_all > 250 and n_ok == n_all
        assert any("UNI-USD-SWAP: sizes are contracts of 10 USD" in n for n in r.notes)
    # the rebuilt book is never crossed after any books message (the tickers channel of this
    # 2022 recording lags the book by seconds, so it is no reference)
    from forensics.ingest.wsjson import messages
    books, crossed, total = {}, 0, 0
    for msgs, _, _ in messages(Source(p)):
        for m in msgs:
            j = m.data
            if m.kind != "recv" or not isinstance(j, dict) or j.get("arg", {}).get("channel") != "books" \
                    or "event" in j:
                continue
            b = books.setdefault(j["arg"]["instId"], LevelBook())
            if j["action"] == "snapshot":
                b.clear()
            for side, k in (("bid", "bids"), ("ask", "asks")):
                for lv in j["data"][0][k]:
                    b.set(side, lv[0], lv[1])
            total += 1
            crossed += Decimal(b.top("bid", 1)[0][0]) >= Decimal(b.top("ask", 1)[0][0])
    assert total > 250 and crossed == 0
