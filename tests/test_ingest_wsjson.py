"""The shared machinery of the websocket venue readers against plain references (hypothesis):
LevelBook (sorted keys, truncation, top-N), apply_update, diff_snapshot, envelopes."""
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from forensics.ingest.source import Source
from forensics.ingest.wsjson import LevelBook, apply_update, diff_snapshot, iso_ns, messages, price_key

prices = st.integers(1, 60).map(lambda k: f"{k / 4:.2f}")
sizes = st.one_of(st.just("0"), st.integers(1, 500).map(lambda k: f"{k / 10:.1f}"))
ops = st.lists(st.tuples(st.sampled_from(["bid", "ask"]), prices, sizes), max_size=60)


def ref_top(book, side, n):
    keys = sorted(book[side], key=Decimal, reverse=side == "bid")[:n]
    return [(p, book[side][p]) for p in keys]


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(1, 8))
def test_levelbook_matches_dict_reference(seq, depth):
    b, ref = LevelBook(), {"bid": {}, "ask": {}}
    for side, p, q in seq:
        b.set(side, p, q)
        if Decimal(q) == 0:
            ref[side].pop(p, None)
        else:
            ref[side][p] = q
        for s in ("bid", "ask"):
            assert b.top(s, 100) == ref_top(ref, s, 100)
    for s in ("bid", "ask"):
        gone = b.truncate(s, depth)
        keep = ref_top(ref, s, depth)
        assert b.top(s, 100) == keep
        assert sorted(gone) == sorted(set(ref[s].items()) - set(keep))


@settings(max_examples=150, deadline=None)
@given(ops, ops, st.integers(1, 6), st.booleans())
def test_apply_update_is_top_n_of_the_applied_levels(start, msg, depth, in_order):
    b = LevelBook()
    for side, p, q in start:
        b.set(side, p, q)
    for s in ("bid", "ask"):
        b.truncate(s, depth)
    uniq = {}
    for side, p, q in msg:  # a venue message names each level once
        uniq[(side, p)] = q
    levels = [(s, p, q) for (s, p), q in uniq.items()]
    ref = {s: dict(b.levels[s].values()) for s in ("bid", "ask")}
    emitted = {"bid": dict(ref["bid"]), "ask": dict(ref["ask"])}

    def emit(side, p, q):
        if Decimal(q) == 0:
            emitted[side].pop(p, None)
        else:
            emitted[side][p] = q
        assert len(emitted[side]) <= depth + 1  # truncation right after each insert
    apply_update(b, levels, depth, emit, in_order=in_order)
    for side, p, q in (levels if in_order else
                       [x for x in levels if Decimal(x[2]) == 0] + [x for x in levels if Decimal(x[2]) != 0]):
        if Decimal(q) == 0:
            ref[side].pop(p, None)
        else:
            ref[side][p] = q
            ref[side] = dict(ref_top(ref, side, depth))
    for s in ("bid", "ask"):
        assert b.top(s, 100) == ref_top(ref, s, depth)
        assert ref_top(emitted, s, 100) == ref_top(ref, s, depth)  # the rows replay to the book


@settings(max_examples=150, deadline=None)
@given(ops, ops, st.integers(1, 6))
def test_diff_snapshot_rows_replay_to_the_new_snapshot(a, c, depth):
    def snap(seq):
        book = {"bid": {}, "ask": {}}
        for side, p, q in seq:
            if Decimal(q) != 0:
                book[side][p] = q
        return {s: ref_top(book, s, depth) for s in ("bid", "ask")}
    s1, s2 = snap(a), snap(c)
    b = LevelBook()
    for side in ("bid", "ask"):
        for p, q in s1[side]:
            b.set(side, p, q)
    replay = {s: dict(s1[s]) for s in ("bid", "ask")}
    rows = []
    diff_snapshot(b, s2, depth, lambda side, p, q: rows.append((side, p, q)))
    seen_late = False
    for side, p, q in rows:
        edge = s2[side][-1][0] if len(s2[side]) >= depth else None
        late = q == "0" and edge is not None and (Decimal(p) < Decimal(edge) if side == "bid" else Decimal(p) > Decimal(edge))
        assert late or not seen_late  # window exits come last
        seen_late |= late
        if q == "0":
            replay[side].pop(p, None)
        else:
            replay[side][p] = q
    for s in ("bid", "ask"):
        assert ref_top(replay, s, 100) == s2[s] == b.top(s, 100)


def test_price_key_exact_order():
    assert price_key("0.1") < price_key("0.10000000001") < price_key("1")
    assert price_key("100") == price_key("100.000")
    assert iso_ns("2026-08-09T21:05:48.1+00:00") == iso_ns("2026-08-09T21:05:48.100Z")


def test_envelopes(write):
    text = ('{"t":"header","exchange":"X"}\n'
            '{"t":"connect","conn":"a","ts":1700000000.5,"addr":"wss://x/linear"}\n'
            '{"t":"recv","conn":"a","ts":1700000001.25,"data":"{\\"k\\":1}"}\n'
            '{"t":"recv","conn":"a","ts":1700000001.5,"data":"pong"}\n'
            '1700000002000000000 {"k":2}\n'
            '{"k":3}\n'
            'junk\n')
    msgs, rejects, n = next(messages(Source(write("e.jsonl", text))))
    assert n == 7
    assert [(m.kind, m.line, m.local_ts, m.addr) for m in msgs] == [
        ("connect", 2, 1700000000500000000, "wss://x/linear"), ("recv", 3, 1700000001250000000, "wss://x/linear"),
        ("recv", 5, 1700000002000000000, None), ("recv", 6, None, None)]
    assert [m.data for m in msgs[1:]] == [{"k": 1}, {"k": 2}, {"k": 3}]
    assert [(r.line, r.reason.split(" (")[0]) for r in rejects] == [(7, "not a JSON line")]
