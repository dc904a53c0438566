"""Synthetic taker prints for the flow-detection tests: Poisson background orders with
lognormal sizes, and sell programs sliced into child orders."""
from __future__ import annotations

import numpy as np
import polars as pl

S = 1_000_000_000


def taker_noise(rng, secs, rate=5.0, med=15, sig=1.2):
    """Noise takers over ``secs`` seconds: Poisson orders (both sides), lognormal sizes."""
    n = rng.poisson(rate * secs)
    ts = np.sort(rng.integers(0, secs * S, n))
    size = np.maximum(1, np.round(med * np.exp(sig * rng.standard_normal(n)))).astype(np.int64)
    return pl.DataFrame({"ts": ts, "price": np.full(n, 1000), "size": size,
                         "aggressor": np.where(rng.random(n) < 0.5, "sell", "buy")})


def sell_program(rng, t0_s, dur_s, x, slices, rate=5.0, med=15, sig=1.2, spread=0.3, anchor=False):
    """A sell program at ``x`` times the side's background volume rate (the background of
    :func:`taker_noise` with the same ``rate/med/sig``), in ``slices`` prints whose sizes vary by
    ``spread`` (lognormal sigma); ``anchor`` puts the first print at ``t0_s``. Returns the prints
    and their times."""
    total = x * rate / 2 * med * np.exp(sig ** 2 / 2) * dur_s
    ts = np.sort(t0_s * S + rng.integers(0, int(dur_s * S), slices))
    if anchor:
        ts[0] = t0_s * S
    q = np.maximum(1, np.round(total / slices * np.exp(spread * rng.standard_normal(slices)))).astype(np.int64)
    return pl.DataFrame({"ts": ts, "price": np.full(slices, 1000), "size": q, "aggressor": ["sell"] * slices}), ts
