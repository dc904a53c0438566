"""detect() must not depend on the row order polars' group_by / unique happen to produce (thread
scheduling, hash seeds, part layout): two stores with the same data, or two processes with
different PYTHONHASHSEED, give bit-identical events."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from forensics.detect import DetectParams, find_flow, flow_scores, price_tick

S = 1_000_000_000
ROOT = Path(__file__).resolve().parents[1]


def _trades(seed: int = 7, seconds: int = 900) -> pl.DataFrame:
    """Many taker orders per second (distinct ts) with lognormal sizes, plus a sell program."""
    rng = np.random.default_rng(seed)
    n = seconds * 20
    ts = np.sort(rng.choice(seconds * 1000, n, replace=False)).astype(np.int64) * 1_000_000
    size = np.maximum(1, rng.lognormal(3, 1.2, n)).astype(np.int64)
    prog = (ts >= 600 * S) & (ts < 660 * S)
    size[prog] *= 4
    aggr = np.where(rng.random(n) < 0.5, "buy", "sell")
    aggr[prog] = "sell"
    return pl.DataFrame({"ts": ts, "price": 100_000 + rng.integers(-50, 50, n), "size": size, "aggressor": aggr})


def _digest(sc: dict) -> list[bytes]:
    out = [sc[k].tobytes() for k in ("v", "base_mu", "base_var", "base_n")]
    for W in sorted(sc["windows"]):
        out += [sc["windows"][W][k].tobytes() for k in sorted(sc["windows"][W])]
    return out


def test_flow_scores_do_not_depend_on_row_order():
    """The log-size sums of the lognormal fit were taken in group_by order (unstable): the
    variance, z and so the flow episodes and their evidence changed from run to run."""
    tr = _trades()
    p = DetectParams()
    ref = {a: _digest(flow_scores(tr, a, p)) for a in ("buy", "sell")}
    for seed in range(4):
        sh = tr.sample(fraction=1.0, shuffle=True, seed=seed)
        for a in ("buy", "sell"):
            assert _digest(flow_scores(sh, a, p)) == ref[a], (seed, a)
    # the episodes found on the (ts-ordered) trades are the same on every run
    assert find_flow(tr, p) == find_flow(tr.clone(), p) and find_flow(tr, p)


def test_price_tick_uses_every_price_in_a_fixed_order():
    # > 5000 distinct prices on a 10-unit grid, one off-grid price: the tick is the gcd of all
    prices = np.concatenate([np.arange(6000) * 10, [60_005]]) + 1_000_000
    lc = pl.DataFrame({"price": prices})
    assert price_tick(lc) == 5
    assert price_tick(lc.sample(fraction=1.0, shuffle=True, seed=1)) == 5


_SCRIPT = """
import sys
import polars as pl
from forensics import simulate as sim
from forensics.detect import detect
from forensics.ingest import ingest
from pathlib import Path
out = Path(sys.argv[1])
cfg = sim.build_config(seed=5, minutes=12, incidents=["withdrawal@400s:sell", "consumption@560s:sell"])
res = sim.simulate(cfg, out / "sim")
ingest([res.files["capture"]], store=out / "store")
ev = detect(out / "store")
ev.drop([c for c in ("created_at",) if c in ev.columns]).write_parquet(out / "events.parquet")
"""


def test_detect_is_identical_across_processes_and_hash_seeds(tmp_path):
    """Two processes (different PYTHONHASHSEED, as two Dask workers would have) detect on the same
    data into their own stores: every column of ``events`` is bit-identical."""
    frames = []
    procs = []
    for seed in ("1", "2"):
        d = tmp_path / f"h{seed}"
        d.mkdir()
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        procs.append((d, subprocess.Popen([sys.executable, "-c", _SCRIPT, str(d)], env=env, cwd=ROOT,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for d, pr in procs:
        out, _ = pr.communicate(timeout=600)
        assert pr.returncode == 0, out
        frames.append(pl.read_parquet(d / "events.parquet"))
    a, b = frames
    assert a.height > 0
    assert a.equals(b), [(c, [(x, y) for x, y in zip(a[c].to_list(), b[c].to_list()) if x != y][:2])
                         for c in a.columns if not a[c].equals(b[c])]
