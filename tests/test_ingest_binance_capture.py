"""Binance capture reader: line styles, sync rules, gaps, snapshots, trades/quotes, bad input."""
import gzip
import json
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest
from click.testing import CliRunner

from forensics.cli import cli
from forensics.errors import ForensicsError
from forensics.ingest import binance_capture, ingest, sniff
from forensics.ingest.source import Source
from forensics.store import Store

T0 = 1_760_130_000_000  # ms, 2025-10-10 21:00:00 UTC
MS = 1_000_000


def depth(i, U, u, pu=None, b=(), a=(), sym="BTCUSDT", spot=False):
    """A depthUpdate event at T0 + 100*i ms (futures: T = E - 1 and pu)."""
    ev = {"e": "depthUpdate", "E": T0 + 100 * i + 1, "s": sym, "U": U, "u": u,
          "b": [list(x) for x in b], "a": [list(x) for x in a]}
    if not spot:
        ev["T"] = T0 + 100 * i
        ev["pu"] = U - 1 if pu is None else pu
    return ev


def snapshot(L, bids, asks, t=None):
    d = {"lastUpdateId": L, "bids": [list(x) for x in bids], "asks": [list(x) for x in asks]}
    if t is not None:
        d["E"], d["T"] = t + 1, t
    return d


def line(ev, style="collector", recv_ms=None, stream=None):
    """One capture line: 'raw' event, 'wrapped' combined stream, or 'collector' (recv ns prefix)."""
    obj = ev
    if style in ("wrapped", "collector") and "lastUpdateId" not in ev:
        name = stream or f"{ev.get('s', 'btcusdt').lower()}@{'depth@100ms' if ev.get('e') == 'depthUpdate' else ev.get('e')}"
        obj = {"stream": name, "data": ev}
    text = orjson.dumps(obj).decode()
    if style == "collector":
        recv = recv_ms if recv_ms is not None else ev.get("E", T0) + 5
        text = f"{recv * MS + 123} {text}"
    return text


def capture(events, style="collector"):
    return "\n".join(line(e, style) if isinstance(e, dict) else e for e in events) + "\n"


def q(store_dir, sql):
    return Store(store_dir).connect().execute(sql).fetchall()


# a futures session: stale event, straddler, snapshot arriving late, chain, a pu break,
# events after the break, a new snapshot (reconnect) and a synced tail
def futures_session():
    snap1 = snapshot(100, [("120000.10", "1.5"), ("119999.90", "2")], [("120000.20", "3")], t=T0 + 90)
    snap2 = snapshot(150, [("119990.00", "1")], [("120010.00", "1")], t=T0 + 590)
    return [
        depth(0, 80, 95, b=[("119999.00", "9")]),                         # stale: before the snapshot
        depth(1, 96, 104, b=[("120000.10", "1.7")]),                      # straddles lastUpdateId=100
        dict(snap1, _recv=T0 + 150),                                       # REST reply arrives late
        depth(2, 105, 110, a=[("120000.20", "0")]),                       # pu == previous u
        depth(3, 115, 120, pu=112, b=[("119999.90", "0")]),               # pu break: 112 != 110
        depth(4, 121, 130, b=[("119999.80", "1")]),                       # after the gap: stored
        depth(6, 141, 152, b=[("119990.00", "2")]),                       # straddles 150
        dict(snap2, _recv=T0 + 700),                                       # reconnect snapshot
        depth(7, 153, 160, a=[("120010.00", "0.5")]),
    ]


def _lines(events, style="collector"):
    out = []
    for e in events:
        if isinstance(e, dict) and "_recv" in e:
            e = dict(e)
            recv = e.pop("_recv")
            out.append(line(e, style, recv_ms=recv))
        else:
            out.append(line(e, style) if isinstance(e, dict) else e)
    return "\n".join(out) + "\n"


def test_futures_sync_gap_and_recovery(write, store_dir):
    p = write("btcusdt_20251010.gz", _lines(futures_session()))
    r = ingest([p], store=store_dir)[0]
    assert r.format == "binance-capture"
    assert r.instruments == [("binance-futures", "BTCUSDT")]
    assert r.dropped == 1 and r.rejected == 0
    assert r.rows["book_updates"] == 3 + 1 + 1 + 1 + 1 + 1 + 2 + 1  # snapshots 3+2 levels, events 6
    rows = q(store_dir, "select seq, ts_ns, is_snapshot, side, price::varchar, size::varchar, update_id, "
                        "first_update_id, prev_update_id, local_ts_ns from book_updates order by ts, seq")
    # the first snapshot is placed right before the straddling event (its seq), at its own T
    snap_rows = [x for x in rows if x[2]]
    assert [x[6] for x in snap_rows] == [100, 100, 100, 150, 150]
    first_event = next(x for x in rows if not x[2])
    assert first_event[6] == 104 and first_event[4] == "120000.1"
    assert snap_rows[0][0] < first_event[0]
    assert snap_rows[0][1] == (T0 + 90) * MS
    assert snap_rows[0][9] == (T0 + 150) * MS + 123  # receive time of the snapshot line
    assert first_event[1] == (T0 + 100) * MS           # ts = T (transaction time), not E
    assert first_event[9] == (T0 + 106) * MS + 123
    assert first_event[7:9] == (96, 95)
    # exact prices: "120000.10" is 120000.1
    assert snap_rows[0][3:6] == ("bid", "120000.1", "1.5")
    # one gap: from the last event applied in sync to the reconnect snapshot
    gaps = q(store_dir, "select reason, ts_from_ns, ts_to_ns, seq_from, seq_to, detail from gaps")
    assert len(gaps) == 1
    reason, ts_from, ts_to, seq_from, seq_to, detail = gaps[0]
    assert reason == "chain_break" and "pu=112" in detail
    assert ts_from == (T0 + 200) * MS and ts_to == (T0 + 590) * MS
    ev3 = next(x for x in rows if x[6] == 120)
    assert seq_from == ev3[0]
    assert seq_to == snap_rows[3][0]
    # events after the break are stored
    assert any(x[6] == 130 for x in rows)


@pytest.mark.parametrize("style", ["raw", "wrapped", "collector"])
def test_line_styles(style, write, store_dir):
    p = write(f"cap-{style}.jsonl", _lines(futures_session(), style))
    r = ingest([p], store=store_dir, symbol=None)[0]
    assert r.rows["book_updates"] == 11 and r.gaps == 1 and r.dropped == 1
    local = q(store_dir, "select count(local_ts) from book_updates")[0][0]
    assert local == (11 if style == "collector" else 0)


def test_separate_snapshot_file_is_paired(write, store_dir):
    events = [depth(0, 80, 95, b=[("1.0", "1")]), depth(1, 96, 104, b=[("1.1", "2")]),
              depth(2, 105, 110, a=[("1.3", "1")])]
    cap = write("btcusdt_20251010.gz", capture(events))
    snap = write("snapshot.json", json.dumps(snapshot(100, [("1.0", "5")], [("1.2", "3")], t=T0 + 50), indent=2))
    res = ingest([cap, snap], store=store_dir)
    assert len(res) == 1 and res[0].format == "binance-capture"
    assert res[0].rows["book_updates"] == 2 + 2 and res[0].dropped == 1 and res[0].gaps == 0
    rows = q(store_dir, "select is_snapshot, update_id, ts_ns from book_updates order by ts, seq")
    assert rows[:2] == [(True, 100, (T0 + 50) * MS)] * 2
    assert [x[1] for x in rows[2:]] == [104, 110]


def test_companion_snapshot_of_another_capture_is_ignored(write, store_dir):
    events = [depth(0, 96, 104, b=[("1.1", "2")]), depth(1, 105, 110, a=[("1.3", "1")])]
    cap = write("btcusdt_20251010.gz", capture(events))
    snap = write("snapshot.json", json.dumps(snapshot(5000, [("1.0", "5")], [("1.2", "3")], t=T0 + 50)))
    r = ingest([cap, snap], store=store_dir)[0]
    assert q(store_dir, "select count(*) from book_updates where is_snapshot")[0][0] == 0
    assert r.gaps == 1 and q(store_dir, "select reason from gaps") == [("no_snapshot",)]


def test_futures_snapshot_file_alone(write, store_dir):
    p = write("BTCUSDT-depth-snapshot-2025-10-10.json",
              json.dumps(snapshot(7, [("120000.10", "1")], [("120000.20", "2")], t=T0)))
    src = Source(p)
    assert sniff(src).name == "binance-snapshot"
    r = ingest([p], store=store_dir)[0]
    assert r.instruments == [("binance-futures", "BTCUSDT")] and r.rows == {"book_updates": 2}
    assert q(store_dir, "select is_snapshot, ts_ns, update_id from book_updates") == [(True, T0 * MS, 7)] * 2


def test_spot_snapshot_alone_needs_its_capture(write, store_dir):
    p = write("BTCUSDT-depth-snapshot-2025-10-10.json", json.dumps(snapshot(7, [("1", "1")], [("2", "2")])))
    with pytest.raises(ForensicsError, match="together with its capture"):
        ingest([p], store=store_dir)


def test_snapshot_without_symbol_asks_for_symbol(write, store_dir):
    p = write("snap.json", json.dumps(snapshot(7, [("1", "1")], [("2", "2")], t=T0)))
    with pytest.raises(ForensicsError, match="--symbol"):
        ingest([p], store=store_dir)
    r = ingest([p], store=store_dir, symbol="ETHUSDT")[0]
    assert r.instruments == [("binance-futures", "ETHUSDT")]


def test_spot_rules_and_snapshot_time(write, store_dir):
    ev = [
        depth(0, 90, 100, b=[("1.0", "1")], spot=True),            # u <= lastUpdateId: stale
        depth(1, 101, 105, b=[("1.1", "1")], spot=True),           # U <= L+1 <= u: first
        snapshot(100, [("1.0", "4")], [("1.2", "4")]),             # spot REST: no time
        depth(2, 106, 108, a=[("1.2", "0")], spot=True),           # U == previous u + 1
        depth(3, 110, 112, a=[("1.3", "2")], spot=True),           # U != 109: break
        depth(4, 113, 115, a=[("1.4", "2")], spot=True),
    ]
    p = write("btcusdt_20251010.gz", capture(ev))
    r = ingest([p], store=store_dir)[0]
    assert r.instruments == [("binance-spot", "BTCUSDT")]
    assert r.dropped == 1 and r.rows["book_updates"] == 2 + 4
    rows = q(store_dir, "select is_snapshot, ts_ns, update_id from book_updates order by ts, seq")
    # the snapshot takes the time of the first event applied on top of it (E: spot has no T)
    assert rows[0] == (True, (T0 + 101) * MS, 100) and rows[2] == (False, (T0 + 101) * MS, 105)
    gaps = q(store_dir, "select reason, ts_from_ns, ts_to_ns, detail from gaps")
    assert gaps == [("chain_break", (T0 + 201) * MS, None, gaps[0][3])]
    assert "U=110" in gaps[0][3] and "109" in gaps[0][3]


def test_first_event_not_straddling_is_a_gap(write, store_dir):
    ev = [snapshot(100, [("1.0", "4")], [("1.2", "4")], t=T0), depth(1, 105, 110, b=[("1.1", "1")]),
          depth(2, 111, 112, b=[("1.1", "2")])]
    r = ingest([write("c.jsonl", capture(ev, "raw"))], store=store_dir)[0]
    assert r.rows["book_updates"] == 4
    assert q(store_dir, "select reason, ts_from_ns, ts_to_ns from gaps") == [("snapshot_sync", T0 * MS, None)]


def test_stale_snapshot_in_intact_chain_is_dropped(write, store_dir, monkeypatch):
    """A snapshot arriving later than the look-back window cannot be placed where it belongs;
    landing in an intact chain it is redundant: dropped, no gap."""
    monkeypatch.setattr(binance_capture, "LOOKBACK_NS", 150 * MS)
    ev = [depth(0, 96, 104, b=[("1.1", "2")]), depth(1, 105, 110, b=[("1.1", "1")]),
          depth(2, 111, 120, b=[("1.1", "3")]), depth(3, 121, 125, b=[("1.1", "4")])]
    text = [line(ev[0]), line(snapshot(100, [("1.0", "4")], [("1.2", "4")], t=T0 - 10), recv_ms=T0 + 20)]
    text += [line(e) for e in ev[1:]]
    text.append(line(snapshot(104, [("9.0", "4")], [("9.2", "4")], t=T0 + 1), recv_ms=T0 + 320))
    r = ingest([write("c.gz", "\n".join(text) + "\n")], store=store_dir)[0]
    assert r.gaps == 0 and r.dropped == 2
    assert q(store_dir, "select count(*) from book_updates where is_snapshot")[0][0] == 2
    assert q(store_dir, "select count(*) from book_updates where price = 9.0")[0][0] == 0


def test_no_snapshot_at_all_is_stored_under_a_gap(write, store_dir):
    ev = [depth(0, 96, 104, b=[("1.1", "2")]), depth(1, 105, 110, b=[("1.1", "1")])]
    r = ingest([write("c.jsonl", capture(ev, "wrapped"))], store=store_dir)[0]
    assert r.rows["book_updates"] == 2 and r.dropped == 0
    assert q(store_dir, "select reason, ts_from_ns, ts_to_ns, seq_from from gaps") == [
        ("no_snapshot", T0 * MS, None, q(store_dir, "select min(seq) from book_updates")[0][0])]


def test_trades_quotes_and_aggressor(write, store_dir):
    ev = [
        {"e": "aggTrade", "E": T0 + 3, "a": 11, "s": "BTCUSDT", "p": "120000.10", "q": "0.500", "f": 1, "l": 2,
         "T": T0 + 2, "m": True},
        {"e": "aggTrade", "E": T0 + 5, "a": 12, "s": "BTCUSDT", "p": "120000.20", "q": "0.25", "f": 3, "l": 3,
         "T": T0 + 4, "m": False},
        {"e": "bookTicker", "u": 400, "s": "BTCUSDT", "b": "120000.10", "B": "1.5", "a": "120000.20",
         "A": "0.75", "T": T0 + 6, "E": T0 + 7},
    ]
    r = ingest([write("btcusdt_20251010.gz", capture(ev))], store=store_dir)[0]
    assert r.rows == {"trades": 2, "quotes": 1}
    assert q(store_dir, "select exchange, trade_id, price::varchar, size::varchar, aggressor, ts_ns from trades "
                        "order by seq") == [
        ("binance-futures", "11", "120000.1", "0.50", "sell", (T0 + 2) * MS),
        ("binance-futures", "12", "120000.2", "0.25", "buy", (T0 + 4) * MS)]
    assert q(store_dir, "select update_id, best_bid::varchar, best_bid_size::varchar, best_ask::varchar, "
                        "best_ask_size::varchar, ts_ns from quotes") == [
        (400, "120000.1", "1.50", "120000.2", "0.75", (T0 + 6) * MS)]


def test_trade_and_aggtrade_both_captured_keeps_trades(write, store_dir):
    ev = [
        {"e": "trade", "E": T0 + 3, "s": "BTCUSDT", "t": 1, "p": "1.5", "q": "2", "T": T0 + 2, "m": True,
         "X": "MARKET"},
        {"e": "aggTrade", "E": T0 + 3, "a": 1, "s": "BTCUSDT", "p": "1.5", "q": "2", "f": 1, "l": 1,
         "T": T0 + 2, "m": True},
        {"e": "trade", "E": T0 + 9, "s": "BTCUSDT", "t": 2, "p": "1.5", "q": "1", "T": T0 + 8, "m": False,
         "X": "INSURANCE_FUND"},
    ]
    r = ingest([write("c.jsonl", capture(ev, "wrapped"))], store=store_dir)[0]
    assert r.rows == {"trades": 1} and r.dropped == 2
    assert q(store_dir, "select trade_id, aggressor from trades") == [("1", "sell")]


def test_spot_book_ticker_and_trade(write, store_dir):
    ev = [depth(0, 1, 5, b=[("1.0", "1")], spot=True),
          {"u": 400, "s": "BTCUSDT", "b": "1.0", "B": "1", "a": "1.1", "A": "2"},
          {"e": "trade", "E": T0 + 3, "s": "BTCUSDT", "t": 9, "p": "1.0", "q": "1", "T": T0 + 2, "m": False,
           "M": True}]
    r = ingest([write("btcusdt_20251010.gz", capture(ev))], store=store_dir)[0]
    assert r.rows == {"book_updates": 1, "quotes": 1, "trades": 1}
    assert r.instruments == [("binance-spot", "BTCUSDT")]
    # the spot bookTicker has no time: its receive time is used
    assert q(store_dir, "select ts_ns, local_ts_ns from quotes")[0][0] is not None


def test_coinm_and_overrides(write, store_dir):
    ev = [depth(0, 1, 5, b=[("1.0", "1")], sym="BTCUSD_PERP"), depth(1, 6, 9, b=[("1.1", "1")], sym="BTCUSD_PERP")]
    r = ingest([write("a.jsonl", capture(ev, "raw"))], store=store_dir)[0]
    assert r.instruments == [("binance-delivery", "BTCUSD_PERP")]
    r = ingest([write("b.jsonl", capture(ev, "raw").replace('"1.0"', '"2.0"'))], store=store_dir,
               exchange="my-venue", symbol="XBT")[0]
    assert r.instruments == [("my-venue", "XBT")]
    assert q(store_dir, "select distinct exchange, symbol from gaps order by 1") == [
        ("binance-delivery", "BTCUSD_PERP"), ("my-venue", "XBT")]


def test_partial_depth_stream_is_ignored(write, store_dir):
    ev = [depth(0, 1, 5, b=[("1.0", "1")])]
    text = capture(ev, "wrapped")
    partial = line(dict(depth(1, 6, 9, b=[("7.0", "1")])), "wrapped", stream="btcusdt@depth5@100ms")
    r = ingest([write("c.jsonl", text + partial + "\n")], store=store_dir)[0]
    assert r.rows == {"book_updates": 1} and r.rejected == 0


def test_malformed_lines_rejected_with_line_numbers(write, store_dir):
    ev = futures_session()
    text = _lines(ev).splitlines()
    text.insert(3, '1760130000000000000 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate",')  # cut
    text.insert(5, "not json at all")
    text.insert(6, '{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":"x","u":2,"pu":1,"b":[],"a":[]}')
    text.insert(7, "")
    bad_px = line(depth(5, 131, 140, b=[("abc", "1"), ("119999.70", "-2"), ("119999.60", "1")]))
    text.insert(9, bad_px)
    r = ingest([write("bad.gz", "\n".join(text) + "\n")], store=store_dir)[0]
    reasons = {x.line: x.reason for x in r.first_rejects}
    assert reasons[4].startswith("malformed JSON")
    assert reasons[6] == "not a JSON line"
    assert "unexpected field types" in reasons[7]
    assert reasons[10].startswith("non-numeric price") or reasons[10].startswith("negative size")
    assert r.rejected == 5
    # every valid row landed: the session's 11 plus one good level of the bad-price event
    assert r.rows["book_updates"] == 12


def test_truncated_gzip_keeps_earlier_rows(tmp_path, store_dir):
    ev = [depth(i, 10 * i + 1, 10 * i + 10, b=[(f"{1000 + i}.5", "1")]) for i in range(3000)]
    data = gzip.compress(capture(ev).encode())
    p = tmp_path / "btcusdt_20251010.gz"
    p.write_bytes(data[: len(data) // 2])
    r = ingest([p], store=store_dir)[0]
    assert 0 < r.rows["book_updates"] < 3000
    assert any("truncated" in x.reason for x in r.first_rejects)


def test_block_boundaries_do_not_change_the_result(write, tmp_path, monkeypatch):
    """Carry-over between blocks (late snapshots, open gaps, the look-back window) is exact."""
    events, u = [], 0
    for i in range(60):
        if i == 30:
            u += 5  # a break
        events.append(depth(i, u + 1, u + 3, b=[(f"{100 + i % 7}.5", str(i))], a=[("200.1", str(i))]))
        u += 3
    out = []
    for i, e in enumerate(events):
        out.append(line(e))
        if i in (5, 45):  # a snapshot straddled by the event two lines back arrives now
            s = events[i - 2]
            out.append(line(snapshot(s["U"], [("100.5", "9")], [("200.1", "9")], t=s["T"] - 1), recv_ms=e["E"] + 1))
    p = write("btcusdt_20251010.gz", "\n".join(out) + "\n")

    def run(block_bytes, lookback):
        monkeypatch.setattr(binance_capture, "LOOKBACK_NS", lookback)
        real = Source.blocks
        monkeypatch.setattr(Source, "blocks", lambda self, bb=block_bytes: real(self, bb))
        d = tmp_path / f"s{block_bytes}-{lookback}"
        r = ingest([p], store=d)[0]
        rows = q(d, "select seq, ts_ns, is_snapshot, side, price, size, update_id from book_updates order by seq")
        gaps = q(d, "select reason, ts_from_ns, ts_to_ns, seq_from, seq_to from gaps order by seq_from")
        return r.dropped, rows, gaps

    ref = run(1 << 23, 600 * 1_000_000_000)
    assert ref[0] == 6  # three events (two levels each) before the first snapshot
    assert [g[0] for g in ref[2]] == ["chain_break"] and ref[2][0][2] is not None
    for bb in (300, 1000, 4000):
        assert run(bb, 2_000 * MS) == ref


def test_sniffing(write):
    assert sniff(Source(write("a.gz", capture([depth(0, 1, 2)])))).name == "binance-capture"
    assert sniff(Source(write("b.jsonl", capture([depth(0, 1, 2)], "raw")))).name == "binance-capture"
    snap_first = capture([snapshot(1, [("1", "1")], [("2", "1")], t=T0), depth(0, 1, 2)])
    assert sniff(Source(write("c.gz", snap_first))).name == "binance-capture"
    assert sniff(Source(write("d.json", json.dumps(snapshot(1, [], []), indent=1)))).name == "binance-snapshot"


def test_cli_ingest_then_sql(write, store_dir):
    p = write("btcusdt_20251010.gz", _lines(futures_session()))
    runner = CliRunner()
    out = runner.invoke(cli, ["ingest", str(p), "--store", str(store_dir), "-q"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["sql", "select count(*) as n from book_updates", "--store", str(store_dir)])
    assert out.exit_code == 0 and "11" in out.output


def test_two_symbols_with_bare_snapshots(write, store_dir):
    btc = [depth(0, 96, 104, b=[("1.1", "2")]), depth(2, 105, 110, b=[("1.2", "1")])]
    eth = [depth(1, 5001, 5010, b=[("2.1", "2")], sym="ETHUSDT"), depth(3, 5011, 5020, b=[("2.2", "1")], sym="ETHUSDT")]
    text = [line(btc[0]), line(eth[0]), line(snapshot(5005, [("2.0", "1")], [("2.5", "1")], t=T0 + 99)),
            line(snapshot(100, [("1.0", "1")], [("1.5", "1")], t=T0 - 1)), line(btc[1]), line(eth[1])]
    r = ingest([write("multi.jsonl", "\n".join(text) + "\n")], store=store_dir)[0]
    assert sorted(r.instruments) == [("binance-futures", "BTCUSDT"), ("binance-futures", "ETHUSDT")]
    assert r.gaps == 0 and r.dropped == 0
    assert q(store_dir, "select symbol, update_id from book_updates where is_snapshot group by all order by 1") == [
        ("BTCUSDT", 100), ("ETHUSDT", 5005)]


def test_bom_and_crlf_lines(write, store_dir):
    text = "\ufeff" + capture([depth(0, 1, 5, b=[("1.0", "1")]), depth(1, 6, 9, b=[("1.1", "1")])], "raw")
    r = ingest([write("c.jsonl", text.replace("\n", "\r\n"))], store=store_dir)[0]
    assert r.rows == {"book_updates": 2} and r.rejected == 0


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(1, 4), st.booleans(), st.integers(0, 3)), min_size=5, max_size=40),
       st.sets(st.integers(0, 39), max_size=3), st.integers(0, 2))
def test_random_streams_are_block_invariant(tmp_path_factory, monkeypatch, steps, snaps_at, lag):
    """Random chains with breaks, late snapshots and trades: tiny blocks give the same store."""
    events, u = [], 100
    out = []
    for i, (n, brk, ntr) in enumerate(steps):
        if brk and i % 3 == 0:
            u += 2
        ev = depth(i, u + 1, u + n, b=[(f"{10 + i % 5}.5", str(i))], a=[("20.5", str(n))])
        u += n
        events.append(ev)
        out.append(line(ev))
        for k in range(ntr):
            out.append(line({"e": "aggTrade", "E": ev["E"], "a": i * 10 + k, "s": "BTCUSDT", "p": "10.5", "q": "1",
                             "f": 1, "l": 1, "T": ev["T"], "m": bool(k % 2)}))
        if i in snaps_at and i >= lag:
            s_ev = events[i - lag]
            out.append(line(snapshot(s_ev["U"], [("10.5", "7")], [("20.5", "7")], t=s_ev["T"] - 1),
                            recv_ms=ev["E"] + 1))
    d = tmp_path_factory.mktemp("rs")
    p = d / "btcusdt_20251010.jsonl"
    p.write_text("\n".join(out) + "\n")
    monkeypatch.setattr(binance_capture, "LOOKBACK_NS", 1_000 * MS)
    results = []
    real = Source.blocks
    for bb in (1 << 23, 700):
        monkeypatch.setattr(Source, "blocks", lambda self, bb_=bb: real(self, bb_))
        sd = d / f"s{bb}"
        r = ingest([p], store=sd)[0]
        rows = q(sd, "select seq, ts_ns, is_snapshot, side, price, size, update_id from book_updates order by seq")
        gaps = q(sd, "select reason, ts_from_ns, ts_to_ns, seq_from, seq_to from gaps order by seq_from")
        trades = q(sd, "select count(*) from trades")
        results.append((r.dropped, r.rejected, rows, gaps, trades))
    assert results[0] == results[1]


def test_pretty_printed_json_document_is_read_as_messages(tmp_path):
    import json

    from forensics.ingest import ingest as _ingest
    from forensics.store import Store as _Store
    msgs = [
        {"lastUpdateId": 100, "E": 1760130000000, "T": 1760130000000,
         "bids": [["120000.00", "1.000"]], "asks": [["120000.10", "2.000"]]},
        {"e": "depthUpdate", "E": 1760130000105, "T": 1760130000100, "s": "BTCUSDT", "U": 99, "u": 101,
         "pu": 95, "b": [["120000.00", "0.500"]], "a": []},
        {"e": "aggTrade", "E": 1760130000101, "a": 7, "s": "BTCUSDT", "p": "120000.00", "q": "0.500",
         "f": 1, "l": 1, "T": 1760130000099, "m": True},
    ]
    p = tmp_path / "messages.json"
    p.write_text(json.dumps(msgs, indent=2))
    r = _ingest([p], store=tmp_path / "st")[0]
    assert r.format == "binance-capture"
    assert r.rows == {"book_updates": 3, "trades": 1} and r.rejected == 0 and r.gaps == 0
    con = _Store(tmp_path / "st").connect()
    assert con.execute("select aggressor, size::varchar from trades").fetchall() == [("sell", "0.5")]
    assert con.execute("select is_snapshot, side, size::varchar from book_updates order by ts, seq"
                       ).fetchall() == [(True, "bid", "1.0"), (True, "ask", "2.0"), (False, "bid", "0.5")]


# ---- the compiled depthUpdate scanner against the general (json_decode) path ------------------

def _parse_both(text: str, first_line: int = 1, hint=None):
    block = text.encode()
    out = []
    for fast in (True, False):
        old = binance_capture.FAST_DEPTH
        binance_capture.FAST_DEPTH = fast
        try:
            out.append(binance_capture.parse_block(block, first_line, hint))
        finally:
            binance_capture.FAST_DEPTH = old
    return out


def _assert_same(text: str, first_line: int = 1, hint=None):
    a, b = _parse_both(text, first_line, hint)
    ab, bb = binance_capture.book_messages(a), binance_capture.book_messages(b)
    assert ab.equals(bb), (text, ab, bb)
    for k in ("agg", "trade", "ticker"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.drop("j", strict=False).equals(y.drop("j", strict=False)), k
    assert [(r.line, r.reason, r.text) for r in a.rejects] == [(r.line, r.reason, r.text) for r in b.rejects]
    assert a.t_fallback == b.t_fallback
    return a


_BASE = ('{"e":"depthUpdate","E":1760130000101,"T":1760130000100,"s":"BTCUSDT","U":11,"u":15,"pu":10,'
         '"b":[["120000.10","1.5"],["119999.9","0"]],"a":[["120000.2","3"]]}')
# lines the scanner must leave to the general path, or read exactly as it does
ODD_LINES = [
    _BASE, "1760130000105123456 " + _BASE, "1760130000105123456\t  " + _BASE, '  ' + _BASE, _BASE + "  ",
    _BASE + "\r", "\ufeff" + _BASE, "abc " + _BASE, "12a " + _BASE, "99999999999999999999 " + _BASE,
    "9223372036854775807 " + _BASE, "9223372036854775808 " + _BASE, "0 " + _BASE,
    '{"stream":"btcusdt@depth@100ms","data":' + _BASE + '}',
    '{"stream":"btcusdt@depth20@100ms","data":' + _BASE + '}',
    '{"data":' + _BASE + ',"stream":"btcusdt@depth"}', '{"data":' + _BASE + '}',
    '{"stream":"btcusdt@depth","data":' + _BASE + ',"s":"ETHUSDT"}',
    '{"stream":"btcusdt@depth","data":{}}', '{"stream":"x"}' , '{}', '{"e":"depthUpdate"}',
    _BASE.replace('"pu":10,', ''), _BASE.replace('"T":1760130000100,', ''),
    _BASE.replace('"T":1760130000100,', '').replace('"E":1760130000101,', ''),
    _BASE.replace('"s":"BTCUSDT",', ''), _BASE.replace('"U":11,', ''), _BASE.replace('"E":', '"E": '),
    _BASE.replace('"T":1760130000100', '"T":null'), _BASE.replace('"T":1760130000100', '"T":"x"'),
    _BASE.replace('"T":1760130000100', '"T":1e3'), _BASE.replace('"T":1760130000100', '"T":99999999999999999999'),
    _BASE.replace('"T":1760130000100', '"T":-5'), _BASE.replace('"T":1760130000100', '"T":01'),
    _BASE.replace('"U":11', '"U":11.0'), _BASE.replace('"s":"BTCUSDT"', '"s":"BTC\\u0055SDT"'),
    _BASE.replace('"s":"BTCUSDT"', '"s":"BTCUSD_PERP"'), _BASE.replace('"s":"BTCUSDT"', '"s":""'),
    _BASE.replace('"s":"BTCUSDT"', '"s":"ÄBC"'), _BASE.replace('"e":"depthUpdate"', '"e":"depthUpdateX"'),
    _BASE.replace('"b":[[', '"st":1,"ps":"BTCUSDT","x":true,"y":null,"z":-1.5e-3,"b":[['),
    _BASE.replace('"b":[[', '"x":[1],"b":[['), _BASE.replace('"b":[[', '"x":{"a":1},"b":[['),
    _BASE.replace('"b":[[', '"x":1.,"b":[['), _BASE.replace('"b":[[', '"x":tru,"b":[['),
    _BASE.replace('"b":[[', '"E":5,"b":[['), _BASE.replace('["120000.10","1.5"]', '["120000.10"]'),
    _BASE.replace('["120000.10","1.5"]', '["120000.10","1.5","x"]'),
    _BASE.replace('["120000.10","1.5"]', '[120000.10,"1.5"]'), _BASE.replace('["120000.10","1.5"]', '[ "1" , "2" ]'),
    _BASE.replace('"b":[["120000.10","1.5"],["119999.9","0"]]', '"b":[]'),
    _BASE.replace('"b":[["120000.10","1.5"],["119999.9","0"]]', '"b":null'),
    _BASE.replace('"a":[["120000.2","3"]]', '"a":[[]]'), _BASE.replace('"1.5"', '"-1.5"'),
    _BASE.replace('"1.5"', '"1e-5"'), _BASE.replace('"1.5"', '""'), _BASE[:-1], _BASE + "}", _BASE + ",",
    '{"e":"depthUpdate",' + _BASE[1:], "not json at all depthUpdate", "",
    '{"lastUpdateId":12,"E":1760130000090,"T":1760130000089,"bids":[["1","2"]],"asks":[]}',
    '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1760130000105,"a":5,"s":"BTCUSDT","p":"120000.1",'
    '"q":"0.5","f":1,"l":2,"T":1760130000104,"m":true}}',
]


@pytest.mark.parametrize("text", ODD_LINES)
def test_scanner_matches_the_general_path_line_by_line(text):
    _assert_same(_BASE + "\n" + text + "\n" + "17 " + _BASE.replace('"U":11', '"U":16') + "\n", first_line=7)


def test_scanner_takes_the_usual_lines_and_matches_on_a_mixed_block():
    text = "\n".join(ODD_LINES) + "\n"
    a = _assert_same(text, first_line=3)
    from forensics.ingest.jsonscan import scan_depth
    fields, rest = scan_depth(text.encode())
    assert fields is not None and len(fields[0]) >= 10  # the scanner did read lines (not all left over)
    assert rest.count(b"\n") == text.count("\n")
    assert a.book.height > 0


_key = st.sampled_from(["e", "E", "T", "s", "U", "u", "pu", "b", "a", "x", "stream", "data", "ps"])
_scalar = st.one_of(st.integers(-5, 2**64), st.sampled_from(["true", "false", "null", "1.5", "-0", "1e5", "01"]),
                    st.text("abcBTCUSD0123._@depth\\\" ", max_size=8).map(lambda s: json.dumps(s)))
_level = st.lists(st.one_of(st.decimals(0, 10**6, places=3, allow_nan=False).map(lambda d: f'"{d}"'),
                            st.sampled_from(['"1"', '"0"', '"-1"', "1", '""', "null"])), min_size=0, max_size=3)
_levels = st.lists(_level.map(lambda lv: "[" + ",".join(lv) + "]"), max_size=4).map(lambda ls: "[" + ",".join(ls) + "]")


@st.composite
def _depth_line(draw):
    fields = {"e": '"depthUpdate"', "E": str(draw(st.integers(1_760_000_000_000, 1_760_000_999_999))),
              "T": str(draw(st.integers(1_760_000_000_000, 1_760_000_999_999))), "s": '"BTCUSDT"',
              "U": str(draw(st.integers(1, 10**6))), "u": str(draw(st.integers(1, 10**6))),
              "pu": str(draw(st.integers(0, 10**6))), "b": draw(_levels), "a": draw(_levels)}
    for k in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3)):
        fields.pop(k, None)  # missing fields
    for k, v in draw(st.lists(st.tuples(_key, st.one_of(_scalar, _levels)), max_size=3)):
        fields[k] = v  # odd values / extra keys
    items = list(fields.items())
    order = draw(st.permutations(range(len(items))))
    sep = draw(st.sampled_from([":", ": ", " :"]))
    body = "{" + ",".join(f'"{items[i][0]}"{sep}{items[i][1]}' for i in order) + "}"
    style = draw(st.sampled_from(["raw", "wrapped", "wrapped20", "prefix", "prefix-wrapped", "dup"]))
    if "wrapped" in style:
        body = '{"stream":"btcusdt@depth' + ("20" if style == "wrapped20" else "") + '@100ms","data":' + body + "}"
    if style == "dup":
        body = body[:-1] + ',"u":5}'
    if style.startswith("prefix"):
        body = f"{draw(st.integers(0, 2**63 + 5))} " + body
    return body


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_depth_line(), min_size=1, max_size=12), st.integers(1, 10**6))
def test_scanner_matches_the_general_path_on_generated_lines(lines, first_line):
    _assert_same("\n".join(lines) + "\n", first_line=first_line)


_REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
# CI: ../shared next to the repo; a git worktree one level deeper (wt/NN) finds ../../shared
_FORMATS = next((p / "formats" for p in (_REPO.parent / "shared", _REPO.parent.parent / "shared") if p.is_dir()),
                _REPO.parent / "shared" / "formats")


@pytest.mark.skipif(not _FORMATS.is_dir(), reason="shared format samples (../shared/formats) not present")
def test_scanner_matches_on_the_real_binance_samples():
    from forensics.ingest.jsonscan import scan_depth
    taken = 0
    for f in sorted(_FORMATS.glob("binance-*.json")):
        for first, block in binance_capture._document_blocks(Source(f)):
            _assert_same(block.decode(), first)
            fields, _ = scan_depth(block)
            taken += 0 if fields is None else len(fields[0])
    assert taken == 1  # the futures depthUpdate sample (with its extra ps/st keys) is read by the scanner


# ---- the scanner's level rows: exact decimals, carried through the sync engine ----------------

_dec_text = st.one_of(st.decimals(0, 10**7, places=4, allow_nan=False).map(str),
                      st.text("0123456789.", min_size=0, max_size=22),
                      st.sampled_from(["0", "0.0", "1.", ".5", "007.100", "-1", "1e-05", " 1", "9223372036854775807",
                                       "9223372036854775808", "92233720368547758.07", "1.2.3"]))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.lists(st.tuples(_dec_text, _dec_text), max_size=4), min_size=1, max_size=6))
def test_scanner_level_rows_hold_the_writers_exact_decimals(msgs):
    """Every level string the scanner takes is a plain decimal and its digits/raw/sig are the
    Writer's own parse (decscan.parse_plain); a line with any other string is left whole."""
    from forensics.ingest.decscan import parse_plain
    from forensics.ingest.jsonscan import scan_depth

    text = "".join(json.dumps({"e": "depthUpdate", "E": 5, "T": 4, "s": "BTCUSDT", "U": 1 + i, "u": 1 + i,
                               "pu": i, "b": [list(x) for x in lv], "a": [list(x) for x in lv[::-1]]}) + "\n"
                   for i, lv in enumerate(msgs))
    fields, rest = scan_depth(text.encode())
    taken = set() if fields is None else set(fields[0].tolist())
    for i, lv in enumerate(msgs):
        strings = [s for pair in lv for s in pair]
        plain = parse_plain(pl.Series(strings, dtype=pl.Utf8))[3] if strings else []
        assert (i in taken) == bool(all(plain)), (lv, plain)
    if fields is None:
        return
    poffs, pdata, soffs, sdata, dec, bid, first = fields[4:]
    prices = binance_capture._strings(poffs, pdata)
    sizes = binance_capture._strings(soffs, sdata)
    assert len(first) == len(taken) + 1 and first[-1] == len(prices) == len(sizes) == len(bid)
    for k, s in enumerate((prices, sizes)):
        digits, raw, sig, plain = parse_plain(s)
        assert plain.all()
        assert (dec[3 * k] == digits).all() and (dec[3 * k + 1] == raw).all() and (dec[3 * k + 2] == sig).all()
    for j, i in enumerate(fields[0].tolist()):  # each message's bids then asks, as written
        lv = msgs[i]
        rows = range(first[j], first[j + 1])
        assert [(prices[r], sizes[r], bool(bid[r])) for r in rows] == \
            [(p, s, True) for p, s in lv] + [(p, s, False) for p, s in lv[::-1]]


def _stored(path: Path, st_dir: Path) -> tuple:
    """Ingest ``path`` into a new store: its book rows, gaps, rejected count and row count."""
    r = ingest([path], store=st_dir)[0]
    con = Store(st_dir).connect()
    rows = con.execute("select * from book_updates order by exchange, symbol, seq").fetchall()
    gaps = con.execute("select reason, ts_from, ts_to, seq_from, seq_to, detail from gaps order by all").fetchall()
    return rows, gaps, r.rejected, r.rows


def test_scanned_and_general_paths_store_the_same_rows(tmp_path, monkeypatch):
    """Whole ingest, small blocks (messages carried between rounds, late snapshots, breaks, odd
    lines taking the general path in the same rounds): the stored rows, seq included, the gaps
    and the rejects are the same with the scanner on and off."""
    import random

    from forensics.ingest import source
    rnd = random.Random(3)
    events, u = [], 1000
    events.append(dict(snapshot(1000, [("100.0", "1")], [("100.5", "2")], t=T0 - 10), _recv=T0 + 30))
    for i in range(400):
        U, u = u + 1, u + rnd.randint(1, 4)
        lv = lambda: [(f"{rnd.randint(900, 1100) / 10}", rnd.choice(["0", "1.5", "0.001", "12"]))
                      for _ in range(rnd.randint(0, 5))]
        ev = depth(i, U, u, b=lv(), a=lv(), pu=U - 1 if i % 97 != 50 else U - 3)
        events.append(ev)
        if i % 29 == 7:
            events.append(rnd.choice(ODD_LINES))
        if i == 200:
            events.append(dict(snapshot(u - 2, [("99.0", "3")], [("101.0", "4")], t=T0 + 100 * i - 5),
                               _recv=T0 + 100 * i + 80))
    path = tmp_path / "cap.jsonl"
    path.write_text(_lines(events))
    monkeypatch.setattr(source, "BLOCK_BYTES", 4 << 10)
    out = []
    for fast in (True, False):
        monkeypatch.setattr(binance_capture, "FAST_DEPTH", fast)
        out.append(_stored(path, tmp_path / f"st{fast}"))
    assert out[0][0] and out[0][1]  # rows and gaps were stored
    assert out[0] == out[1]


# ---- the scanner's symbols cut out by numpy, against the per-line decode ----------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["BTCUSDT", "ETHUSDT", "BTCUSD_PERP", "X", "1000PEPEUSDT"]),
                          st.integers(0, 3)), min_size=0, max_size=40))
def test_symbols_match_per_line_decode(spec):
    """_symbols gives, for every (start, length) span, exactly what decoding the span gives:
    one symbol, several of one length, several of different lengths, none."""
    block, spans = b"", []
    for sym, pad in spec:
        line = b"x" * pad + b'{"s":"' + sym.encode() + b'"}\n'
        spans.append((len(block) + pad + 6, len(sym)))
        block += line
    sym = np.array(spans, dtype=np.int64).reshape(-1, 2)
    got = binance_capture._symbols(block, sym)
    assert got.dtype == pl.Utf8 and got.to_list() == [block[a:a + n].decode() for a, n in spans]


def test_scan_thread_pipeline_same_as_inline(tmp_path, monkeypatch):
    """The capture read with the scanner in its own thread (the default) stores exactly what
    the same reader stores with the scan run inline in the parse thread, on the real-format
    depthUpdate sample cut into small blocks (many rounds, carried messages)."""
    import orjson as _oj

    from forensics.ingest import source

    src = _FORMATS / "binance-futures-ws-depthUpdate.json"
    if not src.exists():
        pytest.skip("shared format samples (../shared/formats) not present")
    template = _oj.loads(src.read_bytes())  # the real message's shape (extra keys ps, st included)
    rnd = np.random.default_rng(5)
    lines, u = [], 1000
    lines.append(b"%d " % (T0 * 1_000_000 + 5_000_000) + _oj.dumps(
        {"lastUpdateId": 1003, "E": T0, "T": T0, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]}))
    for i in range(600):
        U, u = u + 1, u + int(rnd.integers(1, 4))
        lv = lambda: [[f"0.00{int(rnd.integers(10, 40))}", str(int(rnd.integers(0, 500)))]
                      for _ in range(int(rnd.integers(0, 6)))]
        m = {**template, "E": T0 + 100 * i + 3, "T": T0 + 100 * i, "U": U, "u": u,
             "pu": U - 1 if i % 151 != 77 else U - 5, "b": lv(), "a": lv()}
        lines.append(b"%d " % ((T0 + 100 * i + 4) * 1_000_000) + _oj.dumps(m))
    path = tmp_path / "btcusdt_20251010.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    monkeypatch.setattr(source, "BLOCK_BYTES", 4 << 10)
    out = []
    for inline in (False, True):
        if inline:
            monkeypatch.setattr(binance_capture, "_scanned_blocks", lambda blocks: ((a, b, False) for a, b in blocks))
        out.append(_stored(path, tmp_path / f"st{inline}"))
    assert out[0][0] and out[0][1]  # rows and a chain-break gap were stored
    assert out[0] == out[1]
