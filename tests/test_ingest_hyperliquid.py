"""Hyperliquid reader: l2Book full snapshots diffed (20-level window = truncation), trades."""
import random
from decimal import Decimal

import orjson
import polars as pl
from click.testing import CliRunner

from forensics.cli import cli
from forensics.ingest import sniff
from forensics.ingest.source import Source
from tests.venue_util import causes, ingest_one, raw, stored_book

T0 = 1_703_875_200_000
EX, SY = "hyperliquid", "BTC"


def l2(i, bids, asks, coin="BTC", wrapped=True):
    d = {"coin": coin, "levels": [[{"px": p, "sz": q, "n": 1} for p, q in bids],
                                  [{"px": p, "sz": q, "n": 1} for p, q in asks]], "time": T0 + 500 * i}
    return {"channel": "l2Book", "data": d} if wrapped else d


def lines(msgs):
    return "".join(orjson.dumps(m).decode() + "\n" for m in msgs)


def session(n=700, seed=5):
    """A random market seen through a 20-level window; the true book is deeper."""
    rnd = random.Random(seed)
    book = {"bid": {98000 - k: rnd.randint(1, 9) for k in range(1, 40)},
            "ask": {98000 + k: rnd.randint(1, 9) for k in range(1, 40)}}
    snaps = []
    for _ in range(n):
        for _ in range(rnd.randint(1, 3)):
            side = rnd.choice(("bid", "ask"))
            k = rnd.choice(list(book[side]))
            if rnd.random() < 0.4:
                del book[side][k]
            else:
                book[side][k] = rnd.randint(1, 9)
            while len(book[side]) < 30:  # deeper levels keep the true book deeper than 20
                deep = min(book[side]) - 1 if side == "bid" else max(book[side]) + 1
                book[side][deep] = rnd.randint(1, 9)
        if rnd.random() < 0.5:  # the book moves: a better level appears
            side = rnd.choice(("bid", "ask"))
            best = max(book["bid"]) if side == "bid" else min(book["ask"])
            other = min(book["ask"]) if side == "bid" else max(book["bid"])
            new = best + 1 if side == "bid" else best - 1
            if (side == "bid" and new < other) or (side == "ask" and new > other):
                book[side][new] = rnd.randint(1, 9)
        bids = sorted(book["bid"], reverse=True)[:20]
        asks = sorted(book["ask"])[:20]
        snaps.append(([(f"{p}.5", str(book["bid"][p])) for p in bids], [(f"{p}.5", str(book["ask"][p])) for p in asks]))
    return snaps


def test_diffs_replay_to_every_snapshot_and_window_exits_are_truncation(write, store_dir):
    snaps = session()
    msgs = [l2(i, b, a) for i, (b, a) in enumerate(snaps)]
    r = ingest_one(write("hl.jsonl", lines(msgs)), store_dir)
    assert r.format == "hyperliquid" and r.rejected == 0 and r.gaps == 0
    # far fewer rows than 40 per message: only the changes are stored
    assert r.rows["book_updates"] < 10 * len(msgs)
    last_b, last_a = snaps[-1]
    assert stored_book(store_dir, EX, SY) == {"bid": {Decimal(p): Decimal(q) for p, q in last_b},
                                              "ask": {Decimal(p): Decimal(q) for p, q in last_a}}
    lc = causes(store_dir, EX, SY)
    gone = lc.filter(pl.col("size") == 0)
    assert gone.filter(pl.col("cause") == "cancel").height > 20
    # levels that left the window (beyond the next snapshot's deepest level, side full) are
    # truncation; the test knows them from the snapshots themselves
    left = set()
    for i in range(1, len(snaps)):
        for side, k in (("bid", 0), ("ask", 1)):
            prev, cur = snaps[i - 1][k], snaps[i][k]
            if len(cur) < 20:
                continue
            edge = Decimal(cur[-1][0])
            now = {p for p, _ in cur}
            for p, _ in prev:
                if p not in now and (Decimal(p) < edge if side == "bid" else Decimal(p) > edge):
                    left.add(((T0 + 500 * i) * 1_000_000, side, int(Decimal(p) * 10)))
    assert len(left) > 50
    got = {(t, s, p): c for t, s, p, c in gone.select("ts", "side", "price", "cause").rows()}
    assert {got[k] for k in left} == {"truncation"}


def test_intermediate_states_equal_each_snapshot(write, store_dir):
    snaps = session(60, seed=9)
    msgs = [l2(i, b, a, wrapped=False) for i, (b, a) in enumerate(snaps)]  # bare objects as the sample
    ingest_one(write("hl.jsonl", lines(msgs)), store_dir)
    bu = raw(store_dir, "book_updates", EX, SY)
    book = {"bid": {}, "ask": {}}
    by_ts = {}
    for ts, side, price, size in bu.select("ts", "side", "price", "size").rows():
        if size == 0:
            book[side].pop(price, None)
        else:
            book[side][price] = size
        by_ts[ts] = {s: dict(v) for s, v in book.items()}
    for i, (b, a) in enumerate(snaps):
        st = by_ts.get((T0 + 500 * i) * 1_000_000)
        if st is None:  # no change at all in that message
            continue
        assert st["bid"] == {int(Decimal(p) * 10): int(q) for p, q in b}
        assert st["ask"] == {int(Decimal(p) * 10): int(q) for p, q in a}


def test_trades_and_bad_lines(write, store_dir):
    msgs = [l2(0, [("100.5", "1")], [("101.5", "2")]),
            {"channel": "trades", "data": [{"coin": "BTC", "side": "B", "px": "101.5", "sz": "0.1", "time": T0 + 10,
                                             "hash": "0x1", "tid": 42}]},
            {"channel": "trades", "data": [{"coin": "BTC", "side": "A", "px": "100.5", "sz": "0.2", "time": T0 + 20,
                                             "hash": "0x2", "tid": 43}]}]
    text = lines(msgs) + '{"channel":"l2Book","data":{"coin":"BTC","levels":[[{"px":1}],[]],"time":1}}\n'
    p = write("hl.jsonl", text)
    assert sniff(Source(p)).name == "hyperliquid"
    out = CliRunner().invoke(cli, ["ingest", "--store", str(store_dir), str(p)])
    assert out.exit_code == 0, out.output
    assert f"{p}:4: Hyperliquid l2Book level" in out.output
    t = raw(store_dir, "trades", EX, SY)
    assert t["aggressor"].to_list() == ["buy", "sell"] and t["trade_id"].to_list() == ["42", "43"]
