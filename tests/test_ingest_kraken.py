"""Kraken reader: ws v1 book-N arrays (as the shared real recording) and v2 book messages;
truncation to the subscribed depth, CRC32 checksums, trades."""
import tempfile
import zlib
from decimal import Decimal

import orjson
import polars as pl
import pytest
from click.testing import CliRunner

from forensics.cli import cli
from forensics.ingest.kraken import checksum
from forensics.ingest.wsjson import LevelBook
from tests.venue_util import as_decimal, causes, gaps, ingest_one, random_book_session, raw, real, stored_book

EX, SY = "kraken", "XBT-USD"
T0 = 1_618_678_145


class V1:
    """Kraken v1 frames with correct checksums from a model book truncated to ``depth``."""

    def __init__(self, depth=10, pair="XBT/USD"):
        self.depth, self.pair, self.book, self.i = depth, pair, LevelBook(), 0
        self.pushed = 0  # levels pushed out of the depth (no delete is sent for them)

    def _t(self):
        self.i += 1
        return f"{T0 + self.i // 10}.{self.i % 10:01d}00000"

    def snapshot(self, levels):
        self.book.clear()
        t = self._t()
        for s, p, q in levels:
            self.book.set(s, p, q)
        return [42, {"as": [[p, q, t] for s, p, q in levels if s == "ask"],
                     "bs": [[p, q, t] for s, p, q in levels if s == "bid"]}, f"book-{self.depth}", self.pair]

    def ref(self):
        return as_decimal({s: dict(self.book.levels[s].values()) for s in ("bid", "ask")})

    def update(self, levels, cs=None):
        t = self._t()
        for s, p, q in levels:  # in order, truncating after each (Kraken's algorithm)
            self.book.set(s, p, q)
            self.pushed += len(self.book.truncate(s, self.depth))
        a = {"a": [[p, q, t] for s, p, q in levels if s == "ask"]}
        b = {"b": [[p, q, t] for s, p, q in levels if s == "bid"]}
        last = b if b["b"] else a
        last["c"] = str(checksum(self.book)) if cs is None else cs
        body = [d for d in (a, b) if d.get("a") or d.get("b")] or [last]
        return [42, *body, f"book-{self.depth}", self.pair]


def lines(msgs):
    return "".join(orjson.dumps(m).decode() + "\n" for m in msgs)


def test_checksum_string_layout():
    b = LevelBook()
    for s, p, q in (("ask", "0.05005", "0.00000500"), ("ask", "0.05010", "0.00001"), ("bid", "0.05000", "0.1")):
        b.set(s, p, q)
    assert checksum(b) == zlib.crc32(b"5005500501015000" + b"1")


@pytest.mark.parametrize("seed", range(3))
def test_replay_equals_truncated_reference_checksums_match(seed, write, store_dir):
    snap, upd, _ = random_book_session(seed, 250, depth=10, tick="0.1")
    f = V1(depth=10)
    msgs = [f.snapshot([(s, p, f"{Decimal(q):.8f}") for s, p, q in snap])]
    msgs += [f.update([(s, p, f"{Decimal(q):.8f}") for s, p, q in lv]) for lv in upd]
    r = ingest_one(write("kr.jsonl", lines(msgs)), store_dir)
    assert r.format == "kraken" and r.rejected == 0 and r.gaps == 0
    assert stored_book(store_dir, EX, SY) == f.ref()
    assert r.notes == ["Kraken checksums: 250 of 250 matched"]


def test_no_delete_for_pushed_out_levels_is_truncation(write, store_dir):
    """Kraken sends no delete when an insert pushes a level beyond the depth: the reader's
    size-0 row is truncation in attribution."""
    snap, upd, _ = random_book_session(4, 700, depth=10, tick="0.1")
    f = V1(depth=10)
    msgs = [f.snapshot(snap)]
    sent_deletes = 0
    for lv in upd:
        msgs.append(f.update(lv))
        sent_deletes += sum(1 for _, _, q in lv if Decimal(q) == 0)
    r = ingest_one(write("kr.jsonl", lines(msgs)), store_dir)
    assert r.gaps == 0 and stored_book(store_dir, EX, SY) == f.ref()
    lc = causes(store_dir, EX, SY)
    gone = lc.filter(pl.col("size") == 0)
    # every row the venue did not send (a level pushed out) is truncation; the venue's own
    # deletes are mostly cancels
    assert f.pushed > 50 and gone.height == f.pushed + sent_deletes
    assert gone.filter(pl.col("cause") == "truncation").height >= f.pushed
    assert gone.filter(pl.col("cause") == "cancel").height > 0.5 * sent_deletes


def test_checksum_mismatch_is_gap_until_snapshot(write, store_dir):
    s0 = [("bid", "100.0", "1.0"), ("bid", "99.9", "2.0"), ("ask", "100.1", "3.0"), ("ask", "100.2", "4.0")]
    f = V1(depth=10)
    msgs = [f.snapshot(s0), f.update([("bid", "100.0", "1.5")]), f.update([("ask", "100.1", "2.0")], cs="123"),
            f.update([("ask", "100.1", "2.5")]), f.snapshot(s0), f.update([("bid", "99.9", "0.00000000")])]
    r = ingest_one(write("kr.jsonl", lines(msgs)), store_dir)
    g = gaps(store_dir, EX, SY)
    assert [x[0] for x in g] == ["checksum"] and g[0][2] is not None
    assert "123" in g[0][5]
    assert r.notes[0] == "Kraken checksums: 3 of 4 matched (1 mismatches recorded as gaps)"


def test_v2_messages_numbers_exact(write, store_dir):
    def v2(kind, bids, asks, cs, ts="2025-10-10T21:00:00.123456Z"):
        return ('{"channel":"book","type":"%s","data":[{"symbol":"BTC/USD","bids":[%s],"asks":[%s],'
                '"checksum":%d,"timestamp":"%s"}]}' % (
                    kind, ",".join('{"price":%s,"qty":%s}' % x for x in bids),
                    ",".join('{"price":%s,"qty":%s}' % x for x in asks), cs, ts))
    b = LevelBook()
    bids, asks = [("45283.5", "0.10000000"), ("45283.4", "1.00000000")], [("45285.2", "0.00100000")]
    for p, q in bids:
        b.set("bid", p, q)
    for p, q in asks:
        b.set("ask", p, q)
    cs1 = checksum(b, 1, 8)
    b.set("bid", "45283.5", "0.05")
    cs2 = checksum(b, 1, 8)
    text = v2("snapshot", bids, asks, cs1) + "\n" + v2("update", [("45283.5", "0.05")], [], cs2,
                                                     "2025-10-10T21:00:01Z") + "\n"
    text += '{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":45283.5,' \
            '"qty":0.01,"ord_type":"market","trade_id":7,"timestamp":"2025-10-10T21:00:01.5Z"}]}\n'
    r = ingest_one(write("k2.jsonl", text), store_dir)
    assert r.rejected == 0 and r.notes == ["Kraken checksums: 2 of 2 matched"]  # snapshot + update
    assert stored_book(store_dir, EX, "BTC-USD")["bid"][Decimal("45283.5")] == Decimal("0.05")
    t = raw(store_dir, "trades", EX, "BTC-USD")
    assert t["aggressor"].to_list() == ["sell"] and t["trade_id"].to_list() == ["7"]


def test_bad_frames_rejected(write, store_dir):
    f = V1()
    text = lines([f.snapshot([("bid", "1.0", "1"), ("ask", "1.1", "1")])])
    text += '[42,{"a":[["x","1","1618678145.1"]],"c":"1"},"book-10","XBT/USD"]\n' + "[42, {\n"
    p = write("kr.jsonl", text)
    out = CliRunner().invoke(cli, ["ingest", "--store", str(store_dir), str(p)])
    assert out.exit_code == 0, out.output
    assert f"{p}:2: Kraken book level price 'x' is not a decimal" in out.output
    assert f"{p}:3: malformed JSON" in out.output


def test_real_recording_all_checksums_match():
    """The shared real Kraken recording (ws v1 book-1000 with checksums): every checksum matches
    the book rebuilt with truncation to 1000 levels; no gaps; trades stored."""
    p = real("KRAKEN.jsonl.zst")
    with tempfile.TemporaryDirectory() as d:
        r = ingest_one(p, d)
        assert r.rejected == 0 and r.gaps == 0 and r.rows.get("trades", 0) > 0
        note = next(n for n in r.notes if n.startswith("Kraken checksums"))
        ok, total = [int(x.replace(",", "")) for x in note.split(": ")[1].split(" matched")[0].split(" of ")]
        assert total > 4000 and ok == total
        assert len(r.instruments) == 10
