"""The simulator's issue-18 options (default off): background regimes and makers that widen
before they pull."""
from __future__ import annotations

import numpy as np
import pytest

from forensics import simulate as S


def _exo(**kw):
    cfg = S.build_config(seed=4, minutes=120, **kw)
    return cfg, S.compile_scenario(cfg)


def _rets(exo, lo_min, hi_min, k_min, warm_ms=30_000):
    per_min = 60_000 // S.EXO_MS
    i0 = (warm_ms // S.EXO_MS) + lo_min * per_min
    x = exo[i0:(warm_ms // S.EXO_MS) + hi_min * per_min:per_min]
    return x[k_min:] - x[:-k_min]


def test_defaults_unchanged_and_stable_is_the_default_walk():
    _, base = _exo()
    _, stable = _exo(regime="stable", regime_from_s=600)
    assert np.array_equal(base.exo, stable.exo)
    assert len(base.c_t) == 0


@pytest.mark.parametrize("regime", ["range", "trend", "crisis"])
def test_regime_changes_the_path_after_regime_from_only(regime):
    _, base = _exo()
    cfg, sch = _exo(regime=regime, regime_from_s=3600)
    i0 = (30_000 + 3_600_000) // S.EXO_MS
    assert np.array_equal(base.exo[:i0], sch.exo[:i0])                 # the calm hour is untouched
    rb1, rr1 = np.std(_rets(sch.exo, 0, 60, 1)), np.std(_rets(sch.exo, 60, 120, 1))
    rb15 = np.sqrt(np.mean(_rets(sch.exo, 0, 60, 15) ** 2))
    rr15 = np.sqrt(np.mean(_rets(sch.exo, 60, 120, 15) ** 2))
    if regime == "range":
        assert rr1 > 2 * rb1 and rr15 < 1.5 * rb15
    elif regime == "trend":
        assert rr1 < 1.5 * rb1 and rr15 > 2 * rb15
    else:
        assert rr1 > 2 * rb1 and rr15 > 2 * rb15


def test_precursor_widen_controls_and_label():
    cfg = S.build_config(seed=2, minutes=10, incidents=["withdrawal@5m"], precursor_widen_s=60)
    sch = S.compile_scenario(cfg)
    t0 = 30_000 + 300_000
    pre = [(t, m, p, sp) for t, m, p, sp in zip(sch.c_t, sch.c_maker, sch.c_pres, sch.c_spread) if t < t0]
    assert len(pre) == len(cfg.makers) and {m for _t, m, _p, _s in pre} == set(range(len(cfg.makers)))
    assert all(t0 - 60_000 <= t < t0 and p == S.PRECURSOR_PRESENCE and sp == S.PRECURSOR_SPREAD
               for t, _m, p, sp in pre)
    assert sch.incidents[0]["phases"]["widen"] == [t0 - 60_000, t0]
    off = S.compile_scenario(S.build_config(seed=2, minutes=10, incidents=["withdrawal@5m"]))
    assert all(t >= t0 for t in off.c_t) and "widen" not in off.incidents[0]["phases"]


def test_bad_options():
    with pytest.raises(ValueError):
        S.build_config(regime="panic")
    with pytest.raises(ValueError):
        S.build_config(precursor_widen_s=-1)
