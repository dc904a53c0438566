"""Precursors (queries/precursors.sql, forensics.market.precursors): OFI exactly, z-scores,
flags, and no-trades behaviour, on tiny hand-made stores."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings, strategies as st

from forensics.market import iso_param, run_named
from forensics.market.precursors import flags, precursors
from market_fixtures import EX, S, SY, T0, change_rows, new_store, top_rows, trade_rows, write


def ofi_reference(samples) -> float:
    """Cont-Kukanov-Stoikov e_n summed, straight from the paper's definition."""
    tot = 0.0
    for (_, pb0, qb0, pa0, qa0), (_, pb, qb, pa, qa) in zip(samples, samples[1:]):
        e = (qb if pb >= pb0 else 0) - (qb0 if pb <= pb0 else 0) - (qa if pa <= pa0 else 0) + (qa0 if pa >= pa0 else 0)
        tot += e
    return tot


def _params(at, **kw):
    p = {"at": iso_param(at), "exchange": EX, "symbol": SY, "bucket": "10s", "lookback": "20s", "watch": "10s"}
    p.update(kw)
    return p


def test_ofi_by_hand(tmp_path):
    at = T0 + 20 * S
    # four samples in the last bucket [at-10s, at); sizes in lots (0.001), prices in ticks (0.1)
    samples = [(at - 9 * S, 10000, 5000, 10010, 4000),     # first: no increment
               (at - 8 * S, 10000, 7000, 10010, 4000),     # bid same price, +2.0; ask unchanged 0   -> +2
               (at - 7 * S, 10010, 3000, 10020, 6000),     # bid up: +3.0; ask up: +4.0 (old ask size) -> +7
               (at - 6 * S, 10000, 2000, 10010, 5000)]     # bid down: -3.0; ask down: -5.0          -> -8
    st_ = new_store(tmp_path / "s")
    write(st_, "book_top", top_rows(samples))
    con = st_.connect()
    fr = run_named(con, "precursors", _params(at)).frame
    last = fr.filter(fr["bucket_ns"] == at - 10 * S)
    assert last["ofi"][0] == 1.0                      # 2 + 7 - 8, in BTC
    assert math.isclose(last["ofi"][0], ofi_reference([(t, b, qb / 1000, a, qa / 1000) for t, b, qb, a, qa in samples]))
    # touch depth = mean of bid + ask size; spread bps = mean spread / mid
    assert math.isclose(last["touch_depth"][0], np.mean([9.0, 11.0, 9.0, 7.0]))
    want = np.mean([10 / ((10000 + 10010) / 2) * 1e4, 10 / ((10000 + 10010) / 2) * 1e4,
                    10 / ((10010 + 10020) / 2) * 1e4, 10 / ((10000 + 10010) / 2) * 1e4])
    assert math.isclose(last["spread_bps"][0], want, rel_tol=1e-6)


sample = st.tuples(st.integers(9990, 10010), st.integers(0, 50), st.integers(1, 20), st.integers(0, 50))


@settings(max_examples=20, deadline=None)
@given(st.lists(sample, min_size=2, max_size=12))
def test_ofi_matches_reference(tmp_path_factory, rows):
    at = T0 + 20 * S
    samples = [(at - 10 * S + i * 500_000_000, b, qb, b + sp, qa) for i, (b, qb, sp, qa) in enumerate(rows)]
    st_ = new_store(tmp_path_factory.mktemp("ofi"))
    write(st_, "book_top", top_rows(samples, grid_ns=500_000_000))
    fr = run_named(st_.connect(), "precursors", _params(at)).frame
    got = fr.filter(fr["bucket_ns"] == at - 10 * S)["ofi"][0]
    want = ofi_reference([(t, b, qb / 1000, a, qa / 1000) for t, b, qb, a, qa in samples])
    assert math.isclose(got, want, abs_tol=1e-9)


def _calm_store(tmp_path, widen_from=None, spike_at=None, trades=True):
    """30 min of 1 s book_top, spread 1 tick (+/- noise); optionally a wider spread from
    ``widen_from`` to the end, or a one-bucket spike at ``spike_at``."""
    rng = np.random.default_rng(3)
    at = T0 + 30 * 60 * S
    samples = []
    for i in range(30 * 60):
        t = T0 + i * S
        sp = 1 + int(rng.integers(0, 2))
        if widen_from is not None and t >= widen_from:
            sp = 8
        if spike_at is not None and spike_at <= t < spike_at + 10 * S:
            sp = 8
        samples.append((t, 100000, int(rng.integers(900, 1100)), 100000 + sp, int(rng.integers(900, 1100))))
    st_ = new_store(tmp_path / "s")
    write(st_, "book_top", top_rows(samples))
    if trades:
        write(st_, "trades", trade_rows([(T0 + i * 2 * S, 100000, 10, "buy" if i % 2 else "sell")
                                         for i in range(15 * 60)]))
    return st_, at


def test_spread_widening_flagged_with_first_time(tmp_path):
    st_, at = _calm_store(tmp_path, widen_from=T0 + 30 * 60 * S - 60 * S)
    r = precursors(st_.connect(), EX, SY, at)
    spread = [f for f in r["flagged"] if f["metric"] == "spread_bps"]
    assert spread and spread[0]["first_ns"] == at - 60 * S
    assert r["lead_ns"] == 60 * S
    assert "cancel_to_trade" in r["unavailable"] and "quote_flicker" in r["unavailable"]   # no level_changes


def test_single_bucket_spike_is_not_persistent(tmp_path):
    st_, at = _calm_store(tmp_path, spike_at=T0 + 30 * 60 * S - 120 * S)
    r = precursors(st_.connect(), EX, SY, at)
    z = r["series"].filter(r["series"]["bucket_ns"] == at - 120 * S)["spread_bps_z"][0]
    assert z > 3                                          # the spike is there ...
    assert not [f for f in r["flagged"] if f["metric"] == "spread_bps"]   # ... but one bucket is not a precursor
    assert flags(r["series"], persist=1)[0]["metric"] == "spread_bps"


def test_no_trades_means_null_with_reason(tmp_path):
    st_, at = _calm_store(tmp_path, trades=False)
    write(st_, "level_changes", change_rows([(at - 100 * S, "bid", 100000, 5, 0, 0, "cancel")]))
    r = precursors(st_.connect(), EX, SY, at)
    s = r["series"]
    for col in ("cancel_to_trade", "aggr_imbalance", "trades"):
        assert s[col].null_count() == s.height, col          # null, never 0
    assert r["unavailable"]["aggr_imbalance"].startswith("no trades")
    assert r["unavailable"]["cancel_to_trade"].startswith("no trades")
    assert s["quote_flicker"].sum() == 1 and s["quote_flicker"].null_count() == 0
