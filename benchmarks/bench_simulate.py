"""Generation speed of the market simulator: a 30-minute BTCUSDT-like scenario, one incident.

Prints the one-off JIT cost (compile, or load from numba's cache), then engine and
publication time (the best of ``--repeat`` runs: the machine's load only ever adds time),
throughput and the size of each output file.

    .venv/bin/python benchmarks/bench_simulate.py [--minutes 30] [--seed 1] [--incident withdrawal@15m] [--repeat 5]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from forensics import simulate as S


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--incident", action="append", default=None, help="e.g. withdrawal@15m (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="keep the output here (default: temp dir)")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best engine/publish times are printed")
    args = ap.parse_args()
    incidents = args.incident or ["withdrawal@15m"]

    t0 = time.perf_counter()
    S.run_engine(S.build_config(seed=0, minutes=0.5))
    jit = time.perf_counter() - t0

    cfg = S.build_config(seed=args.seed, minutes=args.minutes, incidents=incidents)
    runs = []
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory() as tmp:
            out = args.out or Path(tmp)
            t0 = time.perf_counter()
            res = S.simulate(cfg, out)
            runs.append((time.perf_counter() - t0, res.engine_seconds, res.publish_seconds))
            sizes = res.sizes()
    total = min(r[0] for r in runs)
    res.engine_seconds = min(r[1] for r in runs)
    res.publish_seconds = min(r[2] for r in runs)

    counts = res.labels["counts"]
    print(f"scenario: {args.minutes:g} min, seed {args.seed}, incidents {', '.join(incidents)}, "
          f"{len(cfg.makers)} makers; best of {len(runs)} runs")
    print(f"jit (compile or cache load, once per process): {jit:6.2f} s")
    print(f"engine:   {res.engine_seconds:6.2f} s  ({res.n_batches / res.engine_seconds:,.0f} batches/s, "
          f"{counts['engine_ops'] / res.engine_seconds:,.0f} book ops/s, {counts['fills']:,} fills)")
    print(f"publish:  {res.publish_seconds:6.2f} s  ({res.n_depth_events:,} depth events, "
          f"{res.n_agg_trades:,} aggTrades, {res.n_truth_rows:,} truth rows)")
    print(f"total:    {total:6.2f} s  for {res.n_batches:,} batches of 100 ms")
    for role, n in sizes.items():
        print(f"  {role:15s} {n / 1e6:7.2f} MB")
    print(f"  {'all':15s} {sum(sizes.values()) / 1e6:7.2f} MB")


if __name__ == "__main__":
    main()
