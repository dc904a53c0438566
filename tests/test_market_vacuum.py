"""The vacuum curve (queries/vacuum_curve.sql, forensics.market.vacuum): impact per volume and
Kyle's lambda against hand / numpy references, recovery readings, no-trades behaviour."""
from __future__ import annotations

import math

import numpy as np

from forensics.market import iso_param, run_named
from forensics.market.vacuum import vacuum_curve
from market_fixtures import EX, S, SY, T0, new_store, top_rows, trade_rows, write

M = 60 * S


def _store(tmp_path, trades=True, seed=5):
    rng = np.random.default_rng(seed)
    at = T0 + 10 * M
    samples, tr = [], []
    bid = 100000
    for i in range(20 * 60):                       # 20 min of 1 s top of book, trades every second
        t = T0 + i * S
        sv = int(rng.integers(-20, 21))
        bid += int(round(0.05 * sv + rng.normal(0, 1)))
        samples.append((t, bid, 1000, bid + 2, 1000))
        if trades and sv:
            tr.append((t + 100_000_000, bid, abs(sv), "buy" if sv > 0 else "sell"))
    st_ = new_store(tmp_path / "s")
    write(st_, "book_top", top_rows(samples))
    if trades:
        write(st_, "trades", trade_rows(tr))
    return st_, at, samples, tr


def _params(at):
    return {"at": iso_param(at), "exchange": EX, "symbol": SY, "before": "5m", "after": "5m", "roll": "2m"}


def test_impact_and_kyle_lambda_exact(tmp_path):
    st_, at, samples, tr = _store(tmp_path)
    c = run_named(st_.connect(), "vacuum_curve", _params(at)).frame
    mid = {t // S: (b + a) / 2 / 10 for t, b, _qb, a, _qa in samples}          # real units (0.1)
    sv, vol = {}, {}
    for t, _p, q, a in tr:
        sv[t // S] = sv.get(t // S, 0.0) + (q if a == "buy" else -q) / 1000
        vol[t // S] = vol.get(t // S, 0.0) + q / 1000
    for row in c.iter_rows(named=True):
        s0 = row["ts_ns"] // S
        secs = [s for s in range(s0, s0 + 60) if s in mid and s - 1 in mid]
        moves = [abs(mid[s] - mid[s - 1]) / mid[s - 1] * 1e4 for s in secs]
        v = sum(vol.get(s, 0.0) for s in range(s0, s0 + 60))
        assert math.isclose(row["impact_per_vol"], round(sum(moves) / v, 8), rel_tol=1e-7)
        rsecs = [s for s in range(s0 + 60 - 120, s0 + 60) if s in mid and s - 1 in mid]
        x = np.array([sv.get(s, 0.0) for s in rsecs])
        y = np.array([(mid[s] - mid[s - 1]) / mid[s - 1] * 1e4 for s in rsecs])
        slope = np.polyfit(x, y, 1)[0]                                           # least squares reference
        assert math.isclose(row["kyle_lambda"], round(slope, 8), rel_tol=1e-6, abs_tol=1e-8)
        assert row["kyle_n"] == len(rsecs)


def test_kyle_lambda_tiny_by_hand(tmp_path):
    """Three seconds: mid 100.0 -> 100.1 -> 100.0 -> 100.2 with signed volume +1, -1, +2:
    slope of (10, -9.99, 20 bps) on (1, -1, 2) by the normal equations."""
    at = T0 + 60 * S
    samples = [(at + i * S, b, 1000, b + 2, 1000) for i, b in enumerate((999, 1000, 999, 1001))]
    st_ = new_store(tmp_path / "s")
    write(st_, "book_top", top_rows(samples))
    write(st_, "trades", trade_rows([(at + S, 1000, 1000, "buy"), (at + 2 * S, 999, 1000, "sell"),
                                     (at + 3 * S, 1001, 2000, "buy")]))
    p = {"at": iso_param(at), "exchange": EX, "symbol": SY, "before": "1m", "after": "1m", "roll": "1m"}
    row = run_named(st_.connect(), "vacuum_curve", p).frame.row(1, named=True)
    y = np.array([0.1 / 100.0, -0.1 / 100.1, 0.2 / 100.0]) * 1e4
    x = np.array([1.0, -1.0, 2.0])
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    assert row["step"] == 0 and math.isclose(row["kyle_lambda"], round(slope, 8), rel_tol=1e-7)
    assert math.isclose(row["impact_per_vol"], round(np.abs(y).sum() / 4.0, 8), rel_tol=1e-7)
    assert row["volume"] == 4.0 and row["trades"] == 3


def test_no_trades_null_with_reason(tmp_path):
    st_, at, _s, _t = _store(tmp_path, trades=False)
    r = vacuum_curve(st_.connect(), EX, SY, at, before_ns=5 * M, after_ns=5 * M)
    c = r["curve"]
    for col in ("impact_per_vol", "kyle_lambda", "volume"):
        assert c[col].null_count() == c.height, col            # null, never 0
    assert r["reasons"]["impact_per_vol"].startswith("no trades")
    assert r["vacuum"] is None and r["baseline"]["impact_per_vol"] is None
    assert c["spread_bps"].null_count() == 0                    # the book half still works


def test_recovery_readings(tmp_path):
    """Depth 10 BTC, falls to 2 at the event, 6 one minute later, 9.5 two minutes later."""
    at = T0 + 10 * M
    st_ = new_store(tmp_path / "s")
    rows = []
    for i in range(20):
        t = T0 + i * M
        k = i - 10
        q = {0: 2000, 1: 6000, 2: 9500}.get(k, 10000)
        for side in ("bid", "ask"):
            rows.append({"ts": t, "side": side, "band_pct": 1.0, "qty": q // 2, "notional": None, "levels": 3,
                         "grid_ns": S, "data_kind": "book"})
    write(st_, "depth", rows)
    write(st_, "book_top", top_rows([(T0 + i * M, 1000, 1000, 1002 + (8 if i == 10 else 0), 1000)
                                     for i in range(20)]))
    r = vacuum_curve(st_.connect(), EX, SY, at)
    assert r["baseline"]["depth"] == 10.0
    assert r["depth_recovery"]["50"]["ns"] == 1 * M and r["depth_recovery"]["90"]["ns"] == 2 * M
    assert r["depth_recovery"]["trough_frac"] == 0.2
    assert r["half_life"]["depth"]["ns"] == 1 * M            # deviation 8 -> 4 after a minute
    assert r["half_life"]["spread"]["ns"] == 1 * M
