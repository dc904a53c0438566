"""Longer fuzz run of every ingest reader (issue 12); prints what it found.

    PYTHONPATH=. python benchmarks/fuzz_ingest.py --seconds 300 --seed 1

Mutations (seeded, reproducible: each finding prints its fixture and seed): replaced fields
(empty, garbage, bad names, huge numbers), inserted bytes (invalid UTF-8, NUL, CR), truncated,
duplicated, deleted, joined or swapped lines, garbage lines, extra fields; containers plain,
gzip, multi-member gzip, zip, zip with a README first, each possibly bit-flipped, truncated or
with a bad gzip CRC trailer. Checked per case: no traceback, exit code 0 or 1, every
untouched line kept (one-row-per-line formats), the store readable and the ingest idempotent.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz_engine import FIXTURES, fuzz  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default=None, help="keep the cases here (default: a temp dir)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(a.workdir or tmp)
        t0 = time.perf_counter()
        cases = fuzz(a.seconds, a.seed, work)
        secs = time.perf_counter() - t0
    bad = [c for c in cases if c.problems]
    per = Counter(c.fixture for c in cases)
    codes = Counter(c.exit_code for c in cases)
    print(f"{len(cases)} cases in {secs:.0f} s ({len(cases) / secs:.1f}/s) over {len(FIXTURES)} fixtures; "
          f"exit codes {dict(sorted(codes.items()))}")
    for fx in FIXTURES:
        n_bad = sum(1 for c in bad if c.fixture == fx.name)
        print(f"  {fx.name:58s} {per[fx.name]:5d} cases  {n_bad:3d} with problems")
    kinds = Counter(p.split(":")[0] for c in bad for p in c.problems)
    print(f"findings: {len(bad)}" + (f" ({dict(kinds)})" if kinds else ""))
    for c in bad[:30]:
        print(f"- {c.fixture} seed={c.seed} {' '.join(c.mutations)} exit={c.exit_code}: "
              + " | ".join(p[:300] for p in c.problems))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
