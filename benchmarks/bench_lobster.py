"""Attribution against exact labels on real Nasdaq data (LOBSTER), as ``forensics eval --labels``.

Ingests each LOBSTER zip (default: the shared samples in ``../shared/data/lobster/``) into a
temporary store, then scores ``level_changes`` against ``labels_level_changes`` at the exact
timestamps and with receive-time jitter on the trades (+-10 ms, +-50 ms, fixed seed), and
prints the figures plus the ingest and attribution times.

Usage: .venv/bin/python benchmarks/bench_lobster.py [ZIP ...] [--jitter 10,50]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from forensics.ingest import ingest
from forensics.labels_eval import evaluate_labels, format_scores

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = (ROOT.parent / "shared" / "data" / "lobster", ROOT.parent.parent / "shared" / "data" / "lobster")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zips", nargs="*")
    ap.add_argument("--jitter", default="10,50")
    args = ap.parse_args()
    zips = [Path(z) for z in args.zips]
    if not zips:
        folder = next((c for c in CANDIDATES if c.exists()), None)
        if folder is None:
            raise SystemExit("no LOBSTER zips given and ../shared/data/lobster not found")
        zips = sorted(folder.glob("*.zip"))
    jit = tuple(float(x) for x in args.jitter.split(",") if x.strip())
    with tempfile.TemporaryDirectory() as tmp:
        for z in zips:
            store = Path(tmp) / z.stem
            t0 = time.perf_counter()
            res = ingest([z], store=store)[0]
            t_ing = time.perf_counter() - t0
            ex, sy = res.instruments[0]
            t0 = time.perf_counter()
            runs = evaluate_labels(store, ex, sy, jit)
            t_eval = time.perf_counter() - t0
            print(f"{z.name}: {res.rows.get('book_updates', 0):,} book changes, {res.rows.get('trades', 0):,} "
                  f"prints, {res.rows.get('labels_level_changes', 0):,} labels; ingest {t_ing:.1f} s, "
                  f"attribution + scoring x{len(runs)} {t_eval:.1f} s")
            print(format_scores(runs, f"{ex} {sy}"))
            print()


if __name__ == "__main__":
    main()
