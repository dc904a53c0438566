"""Attribution of level changes: compiled pass == reference, conservation, rules."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics.attribution import (attribute, attribute_frames, attribute_reference,
                                   attribute_with_info, load_inputs)
from forensics.ingest import ingest
from forensics.store import Store

U_SCHEMA = {"ts": pl.Int64, "seq": pl.Int64, "is_snapshot": pl.Boolean, "side": pl.Utf8,
            "price": pl.Int64, "size": pl.Int64}
T_SCHEMA = {"ts": pl.Int64, "seq": pl.Int64, "price": pl.Int64, "size": pl.Int64, "aggressor": pl.Utf8}
G_SCHEMA = {"ts_from": pl.Int64, "ts_to": pl.Int64, "seq_from": pl.Int64}


def frames(updates, trades, gaps=()):
    u = pl.DataFrame(updates, schema=U_SCHEMA, orient="row")
    t = pl.DataFrame(trades, schema=T_SCHEMA, orient="row").sort(["ts", "seq"], maintain_order=True)
    g = pl.DataFrame(list(gaps), schema=G_SCHEMA, orient="row") if gaps else None
    return u, t, g


# ---- hypothesis streams ------------------------------------------------------------------------

@st.composite
def streams(draw):
    n_ev = draw(st.integers(1, 60))
    ts, seq = 0, 0
    updates, trades, gaps = [], [], []
    for _ in range(n_ev):
        ts += draw(st.sampled_from([0, 0, 1, 5, 20, 60]))
        kind = draw(st.sampled_from(["upd", "upd", "upd", "trade", "trade", "snap", "gap", "multi", "sweep",
                                     "view"]))
        if kind == "multi":  # one level updated several times in one message / timestamp
            side = draw(st.sampled_from(["bid", "ask"]))
            price = draw(st.integers(0, 8))
            for q in draw(st.lists(st.sampled_from([0, 1, 2, 4, 7]), min_size=2, max_size=4)):
                updates.append((ts, seq, False, side, price, q))
                seq += 1
        elif kind == "sweep":  # a market order empties levels; prints at each price; next levels show
            side = draw(st.sampled_from(["bid", "ask"]))
            p0 = draw(st.integers(0, 8))
            step = -1 if side == "bid" else 1
            k = draw(st.integers(1, 3))
            lag = draw(st.sampled_from([0, 0, 3, 30]))
            for j in range(k):
                price = min(8, max(0, p0 + step * j))
                trades.append((ts, seq, price, draw(st.integers(1, 6)), "sell" if side == "bid" else "buy"))
                seq += 1
                updates.append((ts + lag, seq, False, side, price, draw(st.sampled_from([0, 0, 1]))))
                seq += 1
            deeper = min(8, max(0, p0 + step * k))
            updates.append((ts + lag, seq, False, side, deeper, draw(st.integers(1, 8))))  # revealed
            seq += 1
            updates.append((ts + lag, seq, False, side, deeper, draw(st.integers(0, 3))))   # and hit
            seq += 1
            ts += lag
        elif kind == "view":  # an N-level window: a push (better level in, edge out) or a reveal
            side = draw(st.sampled_from(["bid", "ask"]))
            a, b = draw(st.integers(0, 8)), draw(st.integers(0, 8))
            first = draw(st.booleans())
            rows_ = [(side, a, 0), (side, b, draw(st.integers(1, 6)))]
            for side_, price, q in (rows_ if first else rows_[::-1]):
                updates.append((ts, seq, False, side_, price, q))
                seq += 1
        elif kind == "upd":
            side = draw(st.sampled_from(["bid", "ask"]))
            price = draw(st.integers(0, 8))
            updates.append((ts, seq, False, side, price, draw(st.sampled_from([0, 0, 1, 2, 3, 5, 8]))))
            seq += 1
        elif kind == "trade":
            jitter = draw(st.integers(-30, 30))
            trades.append((max(0, ts + jitter), seq, draw(st.integers(0, 8)), draw(st.integers(1, 6)),
                           draw(st.sampled_from(["buy", "sell", "sell", None]))))
            seq += 1
        elif kind == "snap":
            ts += 1
            levels = draw(st.lists(st.tuples(st.sampled_from(["bid", "ask"]), st.integers(0, 8),
                                             st.integers(1, 6)), max_size=8, unique_by=lambda x: x[:2]))
            for side, price, size in levels:
                updates.append((ts, seq, True, side, price, size))
                seq += 1
        else:
            if draw(st.booleans()):
                gaps.append((ts, ts, seq))  # starts at the next row
            else:
                gaps.append((ts, ts + 5, None))
    tb = draw(st.sampled_from([0, 10, 40, 100]))
    tf = draw(st.sampled_from([0, 5, 30]))
    dl = draw(st.sampled_from([0, 0, 1, 2, 3]))
    return updates, trades, gaps, tb, tf, dl


def book_total_after(u: pl.DataFrame, t_end: int) -> int:
    """Independent replay: total resting size after every update with ts <= t_end."""
    book, rows = {}, u.filter(pl.col("ts") <= t_end).to_dicts()
    i = 0
    while i < len(rows):
        r = rows[i]
        if r["is_snapshot"]:
            j = i
            while j < len(rows) and rows[j]["is_snapshot"] and rows[j]["ts"] == r["ts"]:
                j += 1
            book = {}
            for b in rows[i:j]:
                book[(b["side"], b["price"])] = b["size"]
            i = j
            continue
        book[(r["side"], r["price"])] = r["size"]
        i += 1
    return sum(book.values())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_compiled_equals_reference(s):
    updates, trades, gaps, tb, tf, dl = s
    u, t, g = frames(updates, trades, gaps)
    for matching in ("batch", "event"):
        fast, _ = attribute_frames(u, t, g, (tb, tf), dl, matching)
        ref = attribute_reference(u, t, g, tb, tf, dl, matching)
        assert fast.equals(ref), (matching, fast, ref)


@settings(max_examples=200, deadline=None)
@given(streams(), st.data())
def test_conservation_and_invariants(s, data):
    updates, trades, gaps, tb, tf, dl = s
    u, t, g = frames(updates, trades, gaps)
    lc, _ = attribute_frames(u, t, g, (tb, tf), dl)
    if lc.height == 0:
        return
    assert (lc["traded"] >= 0).all() and (lc["cancelled"] >= 0).all() and (lc["implied"] >= 0).all()
    assert (lc["added"] * (lc["traded"] + lc["cancelled"]) == 0).all()
    assert ((lc["traded"] + lc["cancelled"]) == (-lc["delta"]).clip(0)).all()
    assert set(lc["cause"].unique()) <= {"add", "trade", "cancel", "mixed", "gap", "truncation"}
    # never more traded+implied at a (side, price) than the trades that hit it
    hit = t.filter(pl.col("aggressor").is_not_null()).with_columns(
        pl.when(pl.col("aggressor") == "sell").then(pl.lit("bid")).otherwise(pl.lit("ask")).alias("side"))
    got = lc.group_by("side", "price").agg((pl.col("traded") + pl.col("implied")).sum().alias("used"))
    avail = hit.group_by("side", "price").agg(pl.col("size").sum().alias("avail"))
    j = got.join(avail, on=["side", "price"], how="left").with_columns(pl.col("avail").fill_null(0))
    assert (j["used"] <= j["avail"]).all()
    # conservation over random time windows
    times = sorted(set(lc["ts"].to_list()))
    t0 = data.draw(st.sampled_from([-1] + times))
    t1 = data.draw(st.sampled_from([x for x in times if x >= t0] or [t0]))
    w = lc.filter((pl.col("ts") > t0) & (pl.col("ts") <= t1))
    net = int(w["added"].sum() - w["traded"].sum() - w["cancelled"].sum())
    assert net == book_total_after(u, t1) - book_total_after(u, t0)


# ---- rules --------------------------------------------------------------------------------------

def test_sweep_matched_per_price_and_beyond_deepest_is_cancel():
    snap = [(0, i, True, "bid", 100 - i, 10) for i in range(5)] + [(0, 5, True, "ask", 101, 10)]
    # a sell market order sweeps 100, 99, 98 at t=1000; the feed publishes 60 ms later
    trades = [(1000, 6, 100, 10, "sell"), (1000, 7, 99, 10, "sell"), (1000, 8, 98, 4, "sell")]
    upd = [(1060, 9, False, "bid", 100, 0), (1060, 10, False, "bid", 99, 0),
           (1060, 11, False, "bid", 98, 0), (1060, 12, False, "bid", 97, 0)]
    u, t, _ = frames(snap + upd, trades)
    lc, _ = attribute_frames(u, t, None, (100, 10), 0)
    tail = lc.filter(~pl.col("is_snapshot")).sort("price", descending=True)
    assert tail["cause"].to_list() == ["trade", "trade", "mixed", "cancel"]
    assert tail["traded"].to_list() == [10, 10, 4, 0]
    assert tail["cancelled"].to_list() == [0, 0, 6, 10]  # 97 is beyond the deepest print (98)


def test_trade_outside_tolerance_is_not_matched_and_qty_used_once():
    snap = [(0, 0, True, "bid", 100, 10), (0, 1, True, "ask", 101, 10)]
    trades = [(1000, 2, 100, 4, "sell")]
    upd = [(1050, 3, False, "bid", 100, 6), (1080, 4, False, "bid", 100, 2), (2000, 5, False, "ask", 101, 5)]
    u, t, _ = frames(snap + upd, trades + [(1500, 6, 101, 5, "buy")])
    lc, _ = attribute_frames(u, t, None, (100, 10), 0)
    inc = lc.filter(~pl.col("is_snapshot"))
    assert inc["traded"].to_list() == [4, 0, 0]      # the 4 lots are used once, by the first decrease
    assert inc["cause"].to_list() == ["trade", "cancel", "cancel"]  # ask print 500 ms earlier: too far


def test_iceberg_excess_is_implied_not_negative_cancel():
    snap = [(0, 0, True, "bid", 100, 5), (0, 1, True, "ask", 101, 5)]
    trades = [(1000, 2, 100, 12, "sell")]
    upd = [(1040, 3, False, "bid", 100, 3)]  # 12 traded, visible drop only 2: 10 refilled
    u, t, _ = frames(snap + upd, trades)
    row = attribute_frames(u, t, None, (100, 10), 0)[0].filter(~pl.col("is_snapshot")).row(0, named=True)
    assert (row["traded"], row["cancelled"], row["implied"], row["cause"]) == (2, 0, 10, "trade")


def test_snapshot_diff_synthetic_removals_and_truncation():
    s1 = [(0, 0, True, "bid", 100, 5), (0, 1, True, "bid", 99, 5), (0, 2, True, "bid", 98, 5),
          (0, 3, True, "ask", 101, 5)]
    # next snapshot (snapshot-only feed): 100 swept by a print, 99 pulled, 98 left the window
    s2 = [(100, 5, True, "bid", 97, 4), (100, 6, True, "bid", 96, 4), (100, 7, True, "ask", 101, 5)]
    trades = [(60, 4, 100, 5, "sell")]
    u, t, _ = frames(s1 + s2, trades)
    lc, info = attribute_frames(u, t, None, (100, 10), 0)
    assert info.synthetic == 3
    late = lc.filter(pl.col("ts") == 100)
    by = {r["price"]: r for r in late.to_dicts()}
    assert by[100]["cause"] == "trade" and by[100]["size"] == 0 and by[100]["seq"] == 7
    assert by[99]["cause"] == "cancel" and by[99]["cancelled"] == 5
    assert by[98]["cause"] == "cancel"   # inside the new snapshot's range: a real removal
    assert by[97]["cause"] == "add" and by[96]["cause"] == "add"
    # the first snapshot diffs against an unknown book
    assert set(lc.filter(pl.col("ts") == 0)["cause"]) == {"gap"}


def test_depth_limited_snapshot_truncation_rules():
    # a 5-level snapshot (a standard limit): what lies beyond its deepest level is unknown
    s1 = [(0, i, True, "bid", 100 - i, 5) for i in range(5)] + [(0, 5 + i, True, "ask", 101 + i, 5) for i in range(5)]
    s1 += [(10, 20, False, "bid", 100, 5)]
    inc = [(20, 21, False, "bid", 94, 7),        # first sighting beyond the deepest bid (96): truncation
           (30, 22, False, "bid", 94, 3),        # then a known level: a cancel
           (40, 23, False, "bid", 101, 2)]       # inside the window: an add
    s2 = [(50, 30 + i, True, "bid", 101 - i, 5) for i in range(5)] + \
         [(50, 40 + i, True, "ask", 102 + i, 5) for i in range(5)]
    u, t, _ = frames(s1 + inc + s2, [])
    lc, _ = attribute_frames(u, t, None, (10, 10), 0)
    got = {(r["ts"], r["side"], r["price"]): r["cause"] for r in lc.to_dicts()}
    assert got[(20, "bid", 94)] == "truncation" and got[(30, "bid", 94)] == "cancel"
    assert got[(40, "bid", 101)] == "add"
    # second snapshot: bid 96 and 94 are beyond its deepest bid (97): left the window
    assert got[(50, "bid", 96)] == "truncation" and got[(50, "bid", 94)] == "truncation"
    assert got[(50, "ask", 101)] == "cancel"     # inside the new range: a real removal
    assert attribute_reference(u, t, None, 10, 10, 0).equals(lc)


def test_gap_rows_are_unknown_until_snapshot():
    snap = [(0, 0, True, "bid", 100, 5), (0, 1, True, "bid", 99, 5), (0, 2, True, "ask", 101, 5)]
    upd = [(10, 3, False, "bid", 100, 4), (20, 4, False, "bid", 100, 1), (30, 5, False, "bid", 99, 1),
           (40, 6, True, "bid", 100, 2), (40, 7, True, "bid", 98, 2), (40, 8, True, "ask", 101, 5),
           (50, 9, False, "bid", 100, 0)]
    u, t, g = frames(snap + upd, [], gaps=[(15, 15, 4)])
    lc, _ = attribute_frames(u, t, g, (10, 10), 0)
    causes = lc.select("ts", "price", "cause").rows()
    assert (10, 100, "cancel") in causes
    assert (20, 100, "gap") in causes and (30, 99, "gap") in causes
    assert (40, 101, "gap") in causes            # stale level restated by the resync snapshot
    assert (40, 100, "add") in causes            # known again since its update at 20
    assert (40, 98, "gap") in causes             # never seen since the gap: prior unknown
    assert (50, 100, "cancel") in causes


def test_depth_limited_feed_auto_detected_truncation():
    rng = np.random.default_rng(1)
    N = 5
    rows, seq = [], 0
    bids = list(range(100, 100 - N, -1))
    asks = list(range(101, 101 + N))
    for p in bids + asks:
        rows.append((0, seq, True, "bid" if p <= 100 else "ask", p, 3)); seq += 1
    ts, expect = 0, []
    for _ in range(400):  # mid random walk in a 5-level window: deep levels leave and re-enter
        ts += 10
        up = rng.random() < 0.5
        if up:   # new best bid, deepest bid leaves; best ask pulled, a deep ask re-enters
            ops = [("bid", bids[0] + 1, 2), ("bid", bids[-1], 0), ("ask", asks[0], 0), ("ask", asks[-1] + 1, 2)]
            bids.insert(0, bids[0] + 1); bids.pop(); asks.pop(0); asks.append(asks[-1] + 1)
            expect += ["add", "truncation", "cancel", "truncation"]
        else:
            ops = [("ask", asks[0] - 1, 2), ("ask", asks[-1], 0), ("bid", bids[0], 0), ("bid", bids[-1] - 1, 2)]
            asks.insert(0, asks[0] - 1); asks.pop(); bids.pop(0); bids.append(bids[-1] - 1)
            expect += ["add", "truncation", "cancel", "truncation"]
        for side, p, q in ops:
            rows.append((ts, seq, False, side, p, q)); seq += 1
    u, t, _ = frames(rows, [])
    lc, info = attribute_frames(u, t, None, (10, 10), "auto")
    assert info.depth_limit == N
    inc = lc.filter(~pl.col("is_snapshot"))
    assert inc["cause"].to_list() == expect
    assert attribute_reference(u, t, None, 10, 10, N).equals(lc)
    lc0, info0 = attribute_frames(u, t, None, (10, 10), 0)
    assert set(lc0.filter((pl.col("size") == 0) & ~pl.col("is_snapshot"))["cause"]) == {"cancel"}


def test_tolerance_estimated_from_batching_and_skew():
    rng = np.random.default_rng(7)
    rows, trades, seq = [], [], 0
    for p in range(90, 100):
        rows.append((0, seq, True, "bid", p, 1000)); seq += 1
    for p in range(100, 110):
        rows.append((0, seq, True, "ask", p, 1000)); seq += 1
    size = {p: 1000 for p in range(90, 110)}
    skew = 30_000_000  # the trade clock runs 30 ms late
    for k in range(1, 3000):
        batch_end = k * 100_000_000
        changed = {}
        for _ in range(3):
            p = int(rng.integers(90, 110))
            q = int(rng.integers(1, 5))
            t_true = batch_end - int(rng.integers(0, 100_000_000))
            trades.append((t_true + skew + int(rng.integers(-5_000_000, 5_000_000)), seq,
                           p, q, "sell" if p < 100 else "buy")); seq += 1
            size[p] -= q
            changed[p] = size[p]
        if rng.random() < 0.3:
            p = int(rng.integers(90, 110))
            size[p] += 5
            changed[p] = size[p]
        for p, s in changed.items():
            rows.append((batch_end, seq, False, "bid" if p < 100 else "ask", p, s)); seq += 1
    u, t, _ = frames(rows, trades)
    lc, info = attribute_frames(u, t, None, None, 0)
    assert info.tolerance_source == "estimated"
    assert abs(info.interval_ns - 100_000_000) < 1_000_000
    assert 60_000_000 <= info.tol_back_ns <= 160_000_000
    assert 30_000_000 <= info.tol_fwd_ns <= 60_000_000
    dec = lc.filter(~pl.col("is_snapshot") & (pl.col("delta") < 0))
    assert dec["traded"].sum() / (-dec["delta"]).sum() > 0.99


# ---- store round trip ---------------------------------------------------------------------------

BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
binance-futures,BTCUSDT,1760130000000000,1760130000100000,true,bid,120000.0,1.5
binance-futures,BTCUSDT,1760130000000000,1760130000100000,true,bid,119999.9,2
binance-futures,BTCUSDT,1760130000000000,1760130000100000,true,ask,120000.1,2
binance-futures,BTCUSDT,1760130001100000,1760130001100000,false,bid,120000.0,0.5
binance-futures,BTCUSDT,1760130002000000,1760130002100000,false,ask,120000.1,0.25
binance-futures,BTCUSDT,1760130003000000,1760130003100000,false,bid,119999.9,0
binance-futures,BTCUSDT,1760130100000000,1760130100100000,true,bid,120100.0,3
binance-futures,BTCUSDT,1760130100000000,1760130100100000,true,ask,120100.5,4
binance-futures,BTCUSDT,1760130101000000,1760130101100000,false,bid,120100.0,1
"""
TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance-futures,BTCUSDT,1760130001050000,1760130001600000,11,sell,120000.0,1.0
binance-futures,BTCUSDT,1760130101020000,1760130101020000,12,sell,120100.0,0.5
"""


def test_store_roundtrip_view_and_replace(write, store_dir):
    ingest([write("book.csv", BOOK), write("trades.csv", TRADES)], store=store_dir)
    lc, info = attribute_with_info(store_dir, "binance-futures", "BTCUSDT", tolerance_ns=(100_000_000, 20_000_000))
    rows = {(r["ts"], r["price"]): r for r in lc.to_dicts()}
    r = rows[(1760130001100000000, 1200000)]
    assert (r["traded"], r["cancelled"], r["cause"]) == (100, 0, "trade")
    assert rows[(1760130002000000000, 1200001)]["cause"] == "cancel"
    assert rows[(1760130101000000000, 1201000)]["cause"] == "mixed"   # 3 -> 1 with a 0.5 print
    # after the resync, the whole old book is unknown: snapshot rows and removals are 'gap'
    assert set(lc.filter(pl.col("ts") == 1760130100000000000)["cause"]) == {"gap"}
    con = Store(store_dir).connect()
    got = con.execute("select price::varchar, traded::varchar, cancelled::varchar, cause from level_changes "
                      "where ts_ns = 1760130101000000000").fetchall()
    assert got == [("120100.0", "0.50", "1.50", "mixed")]
    n1 = con.execute("select count(*) from level_changes").fetchone()[0]
    attribute(store_dir, "binance-futures", "BTCUSDT", tolerance_ns=(100_000_000, 20_000_000))
    assert Store(store_dir).connect().execute("select count(*) from level_changes").fetchone()[0] == n1
    # a window: returns only the window, rewrites whole days
    part = attribute(store_dir, "binance-futures", "BTCUSDT", ts_from=1760130001000000000,
                     ts_to=1760130002500000000, tolerance_ns=(100_000_000, 20_000_000))
    assert part.height == 2
    assert Store(store_dir).connect().execute("select count(*) from level_changes").fetchone()[0] == n1


# ---- multi-update messages, sweeps, depth-limited views (issue 10) -----------------------------

REPRO_BOOK = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
lobster-test,XYZ,1760130000500000,1760130000500000,true,bid,100.00,21
lobster-test,XYZ,1760130000500000,1760130000500000,true,ask,100.01,10
lobster-test,XYZ,1760130001000000,1760130001000000,false,bid,100.00,0
lobster-test,XYZ,1760130001000000,1760130001000000,false,bid,99.99,100
lobster-test,XYZ,1760130001000000,1760130001000000,false,bid,99.99,74
"""
REPRO_TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
lobster-test,XYZ,1760130001000000,1760130001000000,1,sell,100.00,21
lobster-test,XYZ,1760130001000000,1760130001000000,2,sell,99.99,26
"""


def test_issue_repro_sweep_into_depth_limited_view_is_exact(write, store_dir):
    """The issue's minimal reproduction through Tardis CSV ingest: the print at 99.99 belongs to
    the decrease 100 -> 74, not to the level's first update (its appearance)."""
    ingest([write("book.csv", REPRO_BOOK), write("trades.csv", REPRO_TRADES)], store=store_dir)
    for tol in (None, 0, (100_000_000, 20_000_000)):
        for dl, appear in ((1, "truncation"), ("auto", "add"), (0, "add")):
            for matching in ("auto", "batch", "event"):
                lc = attribute(store_dir, "lobster-test", "XYZ", tolerance_ns=tol, write=False,
                               depth_limit=dl, matching=matching)
                inc = lc.filter(~pl.col("is_snapshot")).select(
                    "price", "prev_size", "size", "traded", "cancelled", "implied", "cause").rows()
                assert inc == [(10000, 21, 0, 21, 0, 0, "trade"), (9999, 0, 100, 0, 0, 0, appear),
                               (9999, 100, 74, 26, 0, 0, "trade")], (tol, dl, matching, inc)


def test_batch_feed_trade_never_carried_past_its_batch():
    """Binance-like net batches: a print whose level was refilled within the batch (an increase)
    is implied there and not carried to the next batch's decrease, in both the compiled pass and
    the reference; the feed is recognised as netted (batch matching)."""
    snap = [(0, 0, True, "bid", 100, 10), (0, 1, True, "ask", 101, 10)]
    upd = [(100, 3, False, "bid", 100, 12),    # 4 traded + 6 refilled: net +2
           (200, 4, False, "bid", 100, 9)]     # the next batch: a cancel
    trades = [(60, 2, 100, 4, "sell")]
    u, t, _ = frames(snap + upd, trades)
    lc, info = attribute_frames(u, t, None, (150, 0), 0)
    assert info.extra["matching"] == "batch"
    inc = lc.filter(~pl.col("is_snapshot")).select("traded", "implied", "cause").rows()
    assert inc == [(0, 4, "add"), (0, 0, "cancel")]
    assert attribute_reference(u, t, None, 150, 0, 0, "batch").equals(lc)
    ev, _ = attribute_frames(u, t, None, (150, 0), 0, "event")   # an event feed would carry it
    assert ev.filter(~pl.col("is_snapshot"))["traded"].to_list() == [0, 3]


def test_depth_limited_view_push_and_reveal_pairing():
    """N = 1 and N = 2 views: an exit paired with a better entry was pushed out (truncation), an
    entry deeper than its exit is the next level revealed (truncation); the real cancel, the
    real add and several messages in one timestamp stay what they are."""
    snap = [(0, 0, True, "bid", 100, 5), (0, 1, True, "ask", 105, 5)]
    rows = [
        (10, 2, False, "bid", 100, 0), (10, 3, False, "bid", 99, 7),     # cancel at the touch, 99 revealed
        (20, 4, False, "bid", 99, 0), (20, 5, False, "bid", 101, 3),     # 101 new best: 99 pushed out
        (30, 6, False, "ask", 104, 2), (30, 7, False, "ask", 105, 0),    # entry first, then the push
        # two messages in one timestamp: a cancel + reveal, then a push of the revealed level
        (40, 8, False, "bid", 101, 0), (40, 9, False, "bid", 99, 7), (40, 10, False, "bid", 99, 0),
        (40, 11, False, "bid", 102, 1),
    ]
    u, t, _ = frames(snap + rows, [])
    lc, _ = attribute_frames(u, t, None, (0, 0), 1)
    got = lc.filter(~pl.col("is_snapshot"))["cause"].to_list()
    assert got == ["cancel", "truncation", "truncation", "add", "add", "truncation",
                   "cancel", "truncation", "truncation", "add"]
    assert attribute_reference(u, t, None, 0, 0, 1).equals(lc)
    # a print explains the exit: a trade, not truncation
    u2, t2, _ = frames(snap + rows[:4], [(20, 30, 99, 7, "sell")])
    lc2, _ = attribute_frames(u2, t2, None, (0, 0), 1)
    assert lc2.filter(~pl.col("is_snapshot"))["cause"].to_list() == ["cancel", "truncation", "trade", "add"]


def test_depth_limited_view_level_shown_and_pushed_straight_out():
    """A depth-limited reader (Bybit, Kraken) writes an insert beyond the N-level view followed
    by the size-0 row of its push-out: one level entering and leaving in one group. Beyond the
    window's edge at the group start or end, its exit is truncation; the same flicker inside the
    view stays a cancel."""
    snap = [(0, 0, True, "bid", 100, 5), (0, 1, True, "bid", 99, 5),
            (0, 2, True, "ask", 105, 5), (0, 3, True, "ask", 106, 5)]
    rows = [
        (10, 4, False, "bid", 98, 3), (10, 5, False, "bid", 98, 0),      # beyond the N = 2 view
        (20, 6, False, "bid", 101, 2), (20, 7, False, "bid", 101, 0),    # inside the view: a cancel
        # Kraken's order: the insert pushed straight out, then the venue's own delete (the side
        # ends short of N levels: beyond the edge at the group start decides)
        (30, 8, False, "bid", 97, 4), (30, 9, False, "bid", 97, 0), (30, 10, False, "bid", 100, 0),
        (40, 11, False, "bid", 98, 6),                                   # refills the view
        # Bybit's: 100 pushes 98 out, 98 is re-sent and pushed out again (the edge at the end)
        (50, 12, False, "bid", 100, 1), (50, 13, False, "bid", 98, 0), (50, 14, False, "bid", 98, 2),
        (50, 15, False, "bid", 98, 0),
    ]
    u, t, _ = frames(snap + rows, [])
    lc, _ = attribute_frames(u, t, None, (0, 0), 2)
    got = lc.filter(~pl.col("is_snapshot"))["cause"].to_list()
    assert got == ["truncation", "truncation", "truncation", "cancel",
                   "truncation", "truncation", "cancel", "add",
                   "add", "truncation", "truncation", "truncation"]
    assert attribute_reference(u, t, None, 0, 0, 2).equals(lc)


def test_depth_limit_one_auto_detected():
    rng = np.random.default_rng(3)
    rows, seq = [(0, 0, True, "bid", 100, 5), (0, 1, True, "ask", 101, 5)], 2
    bid, ask = 100, 101
    for k in range(1, 800):
        if rng.random() < 0.5 and bid + 1 < ask:   # push: new best bid
            rows += [(k * 10, seq, False, "bid", bid, 0), (k * 10, seq + 1, False, "bid", bid + 1, 3)]
            bid += 1
        else:                                       # the best bid is cancelled, the next one shows
            rows += [(k * 10, seq, False, "bid", bid, 0), (k * 10, seq + 1, False, "bid", bid - 1, 4)]
            bid -= 1
        seq += 2
    u, t, _ = frames(rows, [])
    lc, info = attribute_frames(u, t, None, (0, 0), "auto")
    assert info.depth_limit == 1
    inc = lc.filter(~pl.col("is_snapshot"))
    assert set(inc.filter(pl.col("size") == 0)["cause"].to_list()) <= {"truncation", "cancel"}
    assert info.shares()["truncation"] > 0


def test_hidden_executions_never_fill_visible_depth():
    snap = [(0, 0, True, "bid", 100, 10), (0, 1, True, "ask", 101, 10)]
    upd = [(50, 3, False, "bid", 100, 6)]
    t = pl.DataFrame({"ts": [50], "seq": [2], "price": [100], "size": [4], "aggressor": ["sell"],
                      "hidden": [True]})
    u, _, _ = frames(snap + upd, [])
    lc, info = attribute_frames(u, t, None, (10, 10), 0)
    assert info.trades == 0
    assert lc.filter(~pl.col("is_snapshot")).select("traded", "cancelled", "cause").rows() == [(0, 4, "cancel")]
    assert attribute_reference(u, t, None, 10, 10, 0).equals(lc)


def _quiet_futures_capture(seed=3, batches=400):
    """A Binance futures depth@100ms capture (collector lines) of a quiet market: each depth
    event is stamped ``T`` = its last event's transaction time; 85% of the batches hold one
    print (the batch's last event, so stamped like its batch), 15% two, the first of them
    earlier in the batch. Returns (capture text, {(T ms, side, price ticks): lots traded})."""
    rng = np.random.default_rng(seed)
    t0 = 1_760_130_000_000  # ms
    # 6 bid and 4 ask levels (equal counts would read as a depth-limited view)
    size = {("bid", p): 9000 for p in range(5989, 5995)} | {("ask", p): 9000 for p in range(5995, 5999)}
    snap = {"lastUpdateId": 100, "E": t0 + 1, "T": t0,
            "bids": [[f"0.{p}", str(size["bid", p])] for p in range(5994, 5988, -1)],
            "asks": [[f"0.{p}", str(size["ask", p])] for p in range(5995, 5999)]}
    lines = [f"{(t0 + 2) * 1_000_000} " + json.dumps(snap)]
    uid, agg, fills = 99, 1, {}  # the first event straddles lastUpdateId = 100
    for k in range(1, batches + 1):
        end = t0 + 100 * k
        n_prints = 2 if rng.random() < 0.15 else 1
        stamps = sorted({end - int(rng.integers(20, 90)), end})[-n_prints:]
        changed = {}
        for ts_ms in stamps:
            side = "bid" if rng.random() < 0.5 else "ask"
            p = 5994 - int(rng.integers(0, 2)) if side == "bid" else 5995 + int(rng.integers(0, 2))
            q = int(rng.integers(1, 20))
            size[side, p] -= q
            changed[side, p] = size[side, p]
            fills[ts_ms, side, p] = fills.get((ts_ms, side, p), 0) + q
            ev = {"e": "aggTrade", "E": ts_ms + 1, "a": agg, "s": "BTCUSDT", "p": f"0.{p}", "q": str(q),
                  "f": agg, "l": agg, "T": ts_ms, "m": side == "bid"}
            lines.append(f"{(ts_ms + 3) * 1_000_000} " + json.dumps({"stream": "btcusdt@aggTrade", "data": ev}))
            agg += 1
        ev = {"e": "depthUpdate", "E": end + 2, "T": end, "s": "BTCUSDT", "U": uid + 1, "u": uid + n_prints,
              "pu": uid, "b": [[f"0.{p}", str(s)] for (sd, p), s in changed.items() if sd == "bid"],
              "a": [[f"0.{p}", str(s)] for (sd, p), s in changed.items() if sd == "ask"]}
        uid += n_prints
        lines.append(f"{(end + 5) * 1_000_000} " + json.dumps({"stream": "btcusdt@depth@100ms", "data": ev}))
    return "\n".join(lines) + "\n", fills


def test_quiet_futures_feed_stamped_by_last_event_is_not_a_shared_clock(write, store_dir):
    """dev5 seeds 884 / 940 (a 0.6 USDT contract, whole lots, ~3 prints/s): >= 80% of the prints
    carry their batch's ``T`` exactly, which read as a shared clock (window 0 / 0), and every
    first print of a two-print batch went unmatched (called a cancel). A netted batch feed is
    never a shared clock (one stamp for all of a batch's prints): the usual window, and every
    decrease is its fills."""
    text, fills = _quiet_futures_capture()
    r = ingest([write("btcusdt_quiet.jsonl.gz", text)], store=store_dir)[0]
    assert r.instruments == [("binance-futures", "BTCUSDT")] and r.dropped == 0 and r.gaps == 0
    lc, info = attribute_with_info(store_dir, "binance-futures", "BTCUSDT", write=False)
    assert info.tolerance_source == "estimated" and info.extra["matching"] == "batch"
    assert info.depth_limit == 0 and info.tol_back_ns >= 90_000_000 and info.tol_fwd_ns == 0
    dec = lc.filter(~pl.col("is_snapshot") & (pl.col("delta") < 0))
    assert dec.height > 300
    assert dec["cancelled"].sum() == 0 and (dec["cause"] == "trade").all()
    assert dec["traded"].sum() == sum(fills.values())
    # the reference pass, with the estimated window and the detected matching, agrees exactly
    u, t, g = load_inputs(Store(store_dir), "binance-futures", "BTCUSDT", None, None)
    assert attribute_reference(u, t, g, info.tol_back_ns, info.tol_fwd_ns, info.depth_limit,
                               info.extra["matching"]).equals(lc)
