"""Maker stress (queries/quote_life.sql, maker_reposting.sql, forensics.market.maker_stress):
FIFO quote life by hand, censoring, widening vs withdrawal by hand, and a Python reference."""
from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st

from forensics.market import iso_param, run_named
from forensics.market.maker_stress import maker_stress
from market_fixtures import EX, S, SY, T0, change_rows, new_store, top_rows, write


def _ql(st_, at, **kw):
    p = {"at": iso_param(at), "exchange": EX, "symbol": SY, "before": "1m", "during": "1m", "after": "1m",
         "warm": "1m"}
    p.update(kw)
    fr = run_named(st_.connect(), "quote_life", p).frame
    return {(r["phase"], r["outcome"]): r for r in fr.iter_rows(named=True)}


def test_fifo_quote_life_by_hand(tmp_path):
    """bid 100.0: +2 at 0 s, +3 at 1 s, cancel 4 at 5 s, trade 1 at 70 s (prices in 0.1 ticks,
    sizes in lots of 0.001). FIFO: the cancel removes the 2 added at 0 s (5 s old) and 2 of the
    3 added at 1 s (4 s old); the trade removes the last one (69 s old)."""
    at = T0 + 60 * S
    rows = change_rows([(T0, "bid", 1000, 0, 2000, 0, "add"), (T0 + S, "bid", 1000, 2000, 5000, 0, "add"),
                        (T0 + 5 * S, "bid", 1000, 5000, 1000, 0, "cancel"),
                        (T0 + 70 * S, "bid", 1000, 1000, 0, 1000, "trade")])
    st_ = new_store(tmp_path / "s")
    write(st_, "level_changes", rows)
    q = _ql(st_, at)
    b = q[("before", "all")]
    assert b["size"] == 4.0 and b["p10_ms"] == 4000 and b["p50_ms"] == 4000 and b["p90_ms"] == 5000
    assert math.isclose(b["mean_ms"], 4500)
    assert q[("before", "cancelled")]["size"] == 4.0 and ("before", "traded") not in q
    d = q[("during", "traded")]
    assert d["size"] == 1.0 and d["p50_ms"] == 69000
    assert ("during", "cancelled") not in q


def test_resting_size_at_the_start_is_censored(tmp_path):
    at = T0 + 60 * S
    rows = change_rows([(T0 + 50 * S, "ask", 1002, 3000, 1000, 0, "cancel"),      # 3 rested before the read
                        (T0 + 55 * S, "ask", 1002, 1000, 2000, 0, "add"),
                        (T0 + 58 * S, "ask", 1002, 2000, 0, 0, "cancel")])
    st_ = new_store(tmp_path / "s")
    write(st_, "level_changes", rows)
    q = _ql(st_, at, warm="1ms")
    b = q[("before", "all")]
    assert b["size"] == 1.0 and b["p50_ms"] == 3000          # only the unit added at 55 s has a life
    assert b["censored_size"] == 3.0                         # 2 + 1 of the censored 3 left in the window


def fifo_reference(rows):
    """Per level queue of (add time, units); removals pop oldest first. -> [(life_ns, units, rem_ts)]."""
    out, queues = [], {}
    for r in rows:
        key = (r["side"], r["price"])
        if key not in queues:                     # size resting before the first row: no add time
            queues[key] = [[None, float(r["prev_size"])]] if r["prev_size"] > 0 else []
        q = queues[key]
        if r["added"] > 0:
            q.append([r["ts"], float(r["added"])])
        take = float(r["traded"] + r["cancelled"])
        while take > 1e-12 and q:
            t, u = q[0]
            k = min(u, take)
            if t is not None:
                out.append((r["ts"] - t, k, r["ts"]))
            take -= k
            q[0][1] -= k
            if q[0][1] <= 1e-12:
                q.pop(0)
    return out


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 4000)), min_size=1, max_size=30))
def test_quote_life_matches_fifo_reference(tmp_path_factory, ops):
    """Random adds / cancels on one level; the query's size-weighted median equals the
    reference's (all removals in the 'before' phase)."""
    at = T0 + 120 * S
    size, changes = 0, []
    for i, (kind, lots) in enumerate(ops):
        t = T0 + 60 * S + i * 1_000_000_000 // 2
        new = size + lots if kind == 0 or size == 0 else max(0, size - lots)
        changes.append((t, "bid", 1000, size, new, 0, "add" if new > size else "cancel"))
        size = new
    rows = change_rows(changes)
    st_ = new_store(tmp_path_factory.mktemp("ql"))
    write(st_, "level_changes", rows)
    q = _ql(st_, at, before="2m", warm="1ms")
    ref = fifo_reference(rows)
    if not ref:
        assert ("before", "all") not in q
        return
    lives = sorted((life / 1e6, u / 1000) for life, u, _t in ref)
    tot = sum(u for _l, u in lives)
    cw, p50 = 0.0, None
    for life, u in lives:
        cw += u
        if cw / tot >= 0.5 - 1e-12:
            p50 = life
            break
    assert math.isclose(q[("before", "all")]["size"], tot, rel_tol=1e-9)
    assert q[("before", "all")]["p50_ms"] == p50


def test_widening_vs_withdrawal_by_hand(tmp_path):
    """One 10 s bucket, mid 100.0: 2 cancelled 1 bp from mid, 1.5 added 5 bps out: 1.5 re-posted
    (widening), 0.5 withdrawn."""
    at = T0 + 60 * S
    st_ = new_store(tmp_path / "s")
    write(st_, "book_top", top_rows([(at + i * S, 999, 1000, 1001, 1000) for i in range(10)]))
    write(st_, "level_changes", change_rows([(at + S, "bid", 999, 2000, 0, 0, "cancel"),
                                             (at + 2 * S, "bid", 995, 0, 1500, 0, "add")]))
    p = {"at": iso_param(at), "exchange": EX, "symbol": SY, "before": "1m", "after": "1m"}
    fr = run_named(st_.connect(), "maker_reposting", p).frame
    assert fr.height == 1
    r = fr.row(0, named=True)
    assert r["cancelled"] == 2.0 and r["reposted"] == 1.5 and r["withdrawn"] == 0.5 and r["widen_share"] == 0.75
    assert math.isclose(r["cancel_dist_bps"], 0.1 / 100.0 * 1e4)
    m = maker_stress(st_.connect(), EX, SY, at)
    assert m["reposting"]["during"]["widen_share"] == 0.75
    assert m["sequence"]["widen_first"] is None                 # no precursor reading given


def test_no_level_changes(tmp_path):
    at = T0 + 60 * S
    st_ = new_store(tmp_path / "s")
    write(st_, "book_top", top_rows([(at, 999, 1000, 1001, 1000)]))
    m = maker_stress(st_.connect(), EX, SY, at)
    assert m["quote_life"] == {} and m["reason"].startswith("no level_changes")
    assert m["reposting"] == {}
