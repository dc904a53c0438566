"""Accuracy of detection, classification and attribution on simulated markets.

Runs :func:`forensics.evaluate.run_eval`: every run simulates a Binance futures capture with one
incident of each type (withdrawal, consumption, one-sided pull, flicker, calm window) in random
order and with random sides, ingests it, runs ``forensics detect`` and scores the events against
the simulator's labels and per-decrease truth.

Passes (``--passes``, default ``eval,legacy``):

* ``eval``: the held-out evaluation seeds (:data:`forensics.evaluate.EVAL_SEEDS`, 10001-10150),
  thresholds never tuned on them; ``eval30`` is its first 30 (10001-10030), the range quoted
  before the widening; ``eval-wide`` the held-out range widened to 10001-10600
  (:data:`forensics.evaluate.EVAL_SEEDS_WIDE`, ~67 runs per regime, run only in aggregate,
  never looked at per seed). Background drawn per run (instrument: tick size and price
  level; volatility regime; noise-taker rate, size and dispersion; 3-8 ladder makers and 2-3
  deep makers quoting out to ~6% of mid) and every incident's shape drawn (consumption 5-120 s,
  2-10x the side's taker rate, 10-1,000 child orders; pulls of 30-90% of the quotes with a
  20-120 s recovery; flicker 20-60 s).
* ``dev``: the development seeds (:data:`forensics.evaluate.DEV_SEEDS`, 1-60) the thresholds
  were tuned on, same draws.
* ``dev2``: drawn seeds 61-160 (:data:`DEV2_SEEDS`), outside both ranges: a wider development
  set (the first 60 seeds were tuned to 1.000 while the held-out seeds were not; issue-11
  thresholds since are chosen on 1-160, never on the evaluation seeds).
* ``dev3``: drawn seeds 161-400 (:data:`DEV3_SEEDS`), a third development range added when 1-160
  reached ~1.000 for every label (the misses and extra events are looked for there).
* ``dev4``: drawn seeds 401-700 (:data:`DEV4_SEEDS`), a fourth development range added when
  161-400 was down to 5 failure rows and the held-out seeds still showed 12.
* ``dev5``: drawn seeds 701-1000 (:data:`DEV5_SEEDS`), a fifth development range added when
  401-700 had been tuned on (its fresh figures had matched the held-out ones; the tuned ones no
  longer tell what generalises).
* ``dev6``: drawn seeds 1001-1300 (:data:`DEV6_SEEDS`), a sixth, added when 701-1000 had been
  tuned on in its turn.
* ``legacy``: the simulator's default market (seeds 101-120), the shape the detector was first
  built against.

Prints precision/recall per label and per regime (instrument/volatility), false events per
hour of calm background, consumption recall by slicing / intensity / duration, the confusion
matrix, event-time error, traded-share error vs truth and the row-level attribution accuracy.

Usage: .venv/bin/python benchmarks/eval_classifier.py [--passes eval,eval-wide,dev,dev2,dev3,dev4,dev5,dev6,legacy] [--seeds N] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time

from forensics.evaluate import DEV_SEEDS, EVAL_SEEDS, EVAL_SEEDS_FIRST, EVAL_SEEDS_WIDE, format_summary, run_eval

#: a wider development range (drawn scenarios, disjoint from DEV_SEEDS and EVAL_SEEDS; seeds 101-120
#: are also the legacy pass's, with another scenario: give the two passes separate --workdir's)
DEV2_SEEDS = range(61, 161)
#: a third development range (drawn, fresh when added: the detector reached ~1.000 on 1-160, where its
#: thresholds were tuned, so misses and extra events are looked for here; never the evaluation seeds)
DEV3_SEEDS = range(161, 401)
#: a fourth (fresh when added, 2026-12-01 23:25 UTC, when 161-400 was down to 5 failure rows while the
#: held-out seeds still showed 12: new failure shapes are looked for here, never on the evaluation seeds)
DEV4_SEEDS = range(401, 701)
#: a fifth (fresh when added, 2026-12-02 00:45 UTC, after two rounds of rules chosen on 1-400 and 401-700:
#: the fitted ranges read better than the held-out seeds, so new failure shapes are looked for here)
DEV5_SEEDS = range(701, 1001)
#: a sixth (fresh when added, 2026-12-02 01:55 UTC, after the third round had been chosen on 701-1000)
DEV6_SEEDS = range(1001, 1301)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", default="eval,legacy", help="comma list of eval, eval30, eval-wide, dev, dev2, dev3, dev4, dev5, dev6, legacy")
    ap.add_argument("--seeds", type=int, default=None, help="runs per pass [whole set; legacy 20]")
    ap.add_argument("--workdir", default=None, help="keep and reuse the simulated stores here")
    ap.add_argument("--json", default=None, help="write the summaries as JSON")
    args = ap.parse_args()
    out = {}
    for name in [x.strip() for x in args.passes.split(",") if x.strip()]:
        t0 = time.perf_counter()
        kw = {"workdir": args.workdir, "keep": args.workdir is not None}
        if name in ("eval", "eval30", "eval-wide", "dev", "dev2", "dev3", "dev4", "dev5", "dev6"):
            pool = {"eval": EVAL_SEEDS, "eval30": EVAL_SEEDS_FIRST, "eval-wide": EVAL_SEEDS_WIDE, "dev": DEV_SEEDS, "dev2": DEV2_SEEDS,
                    "dev3": DEV3_SEEDS, "dev4": DEV4_SEEDS, "dev5": DEV5_SEEDS, "dev6": DEV6_SEEDS}[name]
            seeds = list(pool)[:args.seeds]
            summary, _ = run_eval(len(seeds), seeds[0], drawn=True, seeds=seeds, **kw)
        elif name == "legacy":
            summary, _ = run_eval(args.seeds or 20, 101, **kw)
        else:
            raise SystemExit(f"unknown pass {name!r}: use eval, eval30, eval-wide, dev, dev2, dev3, dev4, dev5, dev6, legacy")
        print(f"== {name}: {time.perf_counter() - t0:.0f} s")
        print(format_summary(summary))
        print()
        out[name] = summary
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
