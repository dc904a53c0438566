"""Accuracy of the cross-venue lag estimate (``forensics incidents``) on simulated incidents.

Each scenario simulates one withdrawal on several venues (:mod:`forensics.sim_multivenue`):
a Binance capture (100 ms batches), OKX swap (0.01 BTC contracts), Bybit linear and Coinbase as
Tardis CSVs (batching 100-500 ms drawn per venue, trade-stream skew 0-40 ms), each with a clock
skew drawn in +-800 ms and a receive latency of 1-30 ms; the withdrawal times are drawn 0-2 s
apart. The files are ingested, ``forensics detect`` runs, then ``build_incidents``; the estimate
is scored against the simulator's labelled pull times:

* first venue right, overall and where the true lag from the true first venue to every other
  venue exceeds the stated uncertainty of that pair (there it must be right);
* |estimated lag - true lag| <= stated uncertainty, per venue that followed.

A second pass adds a band-only venue (Binance bookDepth sampled every 2, 5 or 10 s).

Usage: PYTHONPATH=. python benchmarks/eval_incidents.py [--seeds 20] [--first-seed 100] [--no-bands] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time

from forensics.sim_multivenue import evaluate, format_summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=100,
                    help="first seed (default 100: seeds 0-19 were looked at while choosing the uncertainty model)")
    ap.add_argument("--no-bands", action="store_true", help="skip the pass with a band-only venue")
    ap.add_argument("--json", default=None, help="write the summaries (with per-seed results) as JSON")
    args = ap.parse_args()
    out = {}
    passes = [("level venues", False)] + ([] if args.no_bands else [("level venues + one band-only venue", True)])
    for name, bands in passes:
        t0 = time.perf_counter()
        s = evaluate(args.seeds, bands=bands, seed0=args.first_seed)
        print(f"== {name}: {args.seeds} seeds, {time.perf_counter() - t0:.0f} s")
        print(format_summary(s))
        print()
        out[name] = s
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
