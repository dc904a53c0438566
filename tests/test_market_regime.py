"""The regime (queries/regime.sql, forensics.market.regime) against a Python reference on
hand-made price paths; insufficient history; no trades."""
from __future__ import annotations

import math

import numpy as np
import pytest

from forensics.market.regime import regime
from market_fixtures import EX, S, SY, T0, new_store, top_rows, trade_rows, write

M = 60 * S


def _path(n_hist, hist, recent):
    """Minute closes: ``hist`` / ``recent`` give the 1-min log return (bps) of minute i."""
    logp = [math.log(100000.0)]
    for i in range(1, n_hist + 60):
        r = hist(i) if i < n_hist else recent(i)
        logp.append(logp[-1] + r / 1e4)
    return logp


def _store_from(tmp_path, logp):
    """One trade at the end of each minute at the path's price (prices in 0.1 ticks: exact)."""
    st_ = new_store(tmp_path / "s")
    ticks = [int(round(math.exp(x) * 10)) for x in logp]
    write(st_, "trades", trade_rows([(T0 + (i + 1) * M - S, p, 1000, "buy") for i, p in enumerate(ticks)]))
    return st_, ticks, T0 + len(ticks) * M


def reference(ticks, at_minute, recent=60, long=15):
    """The query's definition in plain Python: returns whose end lies in the window."""
    p = np.log(np.array(ticks, dtype=float))
    r1 = {i: (p[i] - p[i - 1]) * 1e4 for i in range(1, len(p))}
    rl = {i: (p[i] - p[i - long]) * 1e4 for i in range(long, len(p))}
    rec = lambda d: [v for i, v in d.items() if i >= at_minute - recent]
    his = lambda d: [v for i, v in d.items() if i < at_minute - recent]
    sd = lambda x: float(np.std(x, ddof=1))
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))
    return sd(rec(r1)) / sd(his(r1)), rms(rec(rl)) / rms(his(rl))


@pytest.mark.parametrize("hist,recent,want", [
    (lambda i: (-1) ** i * 1.0, lambda i: (-1) ** i * 1.1, "stable"),
    (lambda i: (-1) ** i * 1.0 + 0.5, lambda i: (-1) ** i * 4.0, "range"),    # noisy but mean-reverting
    (lambda i: (-1) ** i * 1.0, lambda i: (-1) ** i * 1.0 + 2.0, "trend"),   # same noise plus a drift
    (lambda i: (-1) ** i * 1.0, lambda i: (-1) ** i * 4.0 + 3.0, "crisis"),
])
def test_regimes_against_reference(tmp_path, hist, recent, want):
    logp = _path(90, hist, recent)
    st_, ticks, at = _store_from(tmp_path, logp)
    r = regime(st_.connect(), EX, SY, at, long_ret_ns=15 * M)      # odd: alternating paths do not cancel
    sr, lr = reference(ticks, len(ticks), long=15)
    assert math.isclose(r["values"]["short_ratio"], sr, rel_tol=1e-5)
    assert math.isclose(r["values"]["long_ratio"], lr, rel_tol=1e-5)
    assert r["regime"] == want and r["reason"] is None
    assert r["thresholds"]["high_ratio"] == 1.5 and r["thresholds"]["long_high_ratio"] == 2.0
    assert r["source"] == "trades" and r["thresholds"]["long_ret"] == "15m"
    assert r["values"]["history_ns"] == 90 * M


def test_insufficient_history_says_so(tmp_path):
    logp = _path(10, lambda i: 1.0, lambda i: 1.0)             # 70 minutes in all
    st_, ticks, at = _store_from(tmp_path, logp)
    r = regime(st_.connect(), EX, SY, at)
    assert r["regime"] is None
    assert r["reason"] == ("insufficient history: needs 120 min of prices before the event (the recent 60 min "
                           "+ 60 min of reference history), store has 70 min")


def test_no_trades_reads_the_mid(tmp_path):
    st_ = new_store(tmp_path / "s")
    logp = _path(90, lambda i: (-1) ** i * 1.0 + 0.5, lambda i: (-1) ** i * 4.0)
    mids = [int(round(math.exp(x) * 10)) for x in logp]
    write(st_, "book_top", top_rows([(T0 + (i + 1) * M - S, m - 1, 1000, m + 1, 1000) for i, m in enumerate(mids)]))
    r = regime(st_.connect(), EX, SY, T0 + len(mids) * M)
    assert r["source"] == "mid" and r["regime"] == "range"


def test_nothing_at_all(tmp_path):
    st_ = new_store(tmp_path / "s")
    write(st_, "book_top", top_rows([(T0, 999, 1, 1001, 1)]))
    r = regime(st_.connect(), EX, SY, T0)                      # nothing before the moment
    assert r["regime"] is None and r["reason"].startswith("no top of book before the event")
