"""Partition-parallel depth and detect on a local Dask cluster vs the serial run.

Builds a store of several simulated symbols whose captures straddle midnight (2 UTC days
each), then times ``depth`` (one task per exchange/symbol/day) and ``detect`` (one task per
instrument) serially and with ``--workers N``, checks the results are identical, and prints
the speed-up and the per-task overhead (the round trip of a no-op task on the cluster).

    .venv/bin/python benchmarks/bench_parallel.py [--symbols 4] [--minutes 40] [--workers 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from forensics.book import compute_depth
from forensics.detect import detect
from forensics.ingest import ingest
from forensics.parallel import Partition, client_for, parallel_depth, parallel_detect, run_partitions
from forensics.simulate import Incident, SimConfig, simulate
from forensics.store import Store
from forensics.timeutil import parse_time


def _noop(part):
    return 0


def _warm(part, store, start, every):
    compute_depth(store, ts_from=start, ts_to=start + 10**10, every_ns=every, write=False)
    detect(store, ts_from=start, ts_to=start + 60 * 10**9, write=False)
    return 0


def _tables(st: Store, tables) -> dict[str, pl.DataFrame]:
    con = st.connect()
    return {t: con.sql(f"SELECT * EXCLUDE (date) FROM {t} ORDER BY ALL").pl() for t in tables}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=40.0, help="per symbol, from 23:40 UTC")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--every", type=float, default=0.1, help="depth grid step, s")
    args = ap.parse_args()
    every = int(args.every * 1e9)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        start = parse_time("2025-10-10 23:40:00")
        for i in range(args.symbols):
            sy = f"SYM{i}USDT"
            inc = (Incident("withdrawal", 60 * (args.minutes / 2) - 30 + 7 * i, "sell"),)
            simulate(SimConfig(seed=100 + i, symbol=sy, minutes=args.minutes, start_ns=start, incidents=inc), tmp / sy)
            files += [p for p in (tmp / sy).iterdir() if p.suffix in (".gz", ".csv")]
        serial, par = Store(tmp / "serial"), Store(tmp / "par")
        for st in (serial, par):
            ingest(files, store=st)
        n_updates = serial.connect().execute("select count(*) from book_updates").fetchone()[0]
        # warm the compiled kernels once (numba cache), outside the timings
        compute_depth(Store(tmp / "serial"), symbol="SYM0USDT", ts_from=start, ts_to=start + 10**10, every_ns=every,
                      write=False)

        t = time.perf_counter()
        for i in range(args.symbols):
            compute_depth(serial, symbol=f"SYM{i}USDT", every_ns=every)
        depth_serial = time.perf_counter() - t
        t = time.perf_counter()
        ev_serial = detect(serial)
        detect_serial = time.perf_counter() - t

        t = time.perf_counter()
        with client_for(args.workers) as client:
            start_s = time.perf_counter() - t
            # each worker process compiles (or loads from numba's cache) the kernels once
            warm = Store(tmp / "warm")
            ingest([f for f in files if "SYM0USDT" in str(f)], store=warm)
            t = time.perf_counter()
            run_partitions(_warm, [Partition("w", str(i)) for i in range(args.workers * 2)], (warm, start, every),
                           client=client)
            warm_s = time.perf_counter() - t
            t = time.perf_counter()
            res = parallel_depth(par, every_ns=every, client=client)
            depth_par = time.perf_counter() - t
            t = time.perf_counter()
            ev_par = parallel_detect(par, client=client)
            detect_par = time.perf_counter() - t
            t = time.perf_counter()
            parts = [Partition("x", f"s{i}", "2025-01-01") for i in range(64)]
            run_partitions(_noop, parts, client=client)
            noop = (time.perf_counter() - t) / len(parts)

        a = _tables(serial, ("depth", "book_top", "level_changes", "events"))
        b = _tables(par, ("depth", "book_top", "level_changes", "events"))
        same = all(a[k].equals(b[k]) for k in a) and ev_serial.height == ev_par.height
    print(f"store: {args.symbols} symbols x 2 UTC days ({len(res)} symbol-days), {n_updates:,} book updates; "
          f"{args.workers} worker processes (LocalCluster, 127.0.0.1); depth grid {args.every:g} s")
    print(f"depth : serial {depth_serial:6.2f} s   workers={args.workers} {depth_par:6.2f} s   "
          f"speed-up {depth_serial / depth_par:4.2f}x   ({len(res)} tasks, one per symbol-day)")
    print(f"detect: serial {detect_serial:6.2f} s   workers={args.workers} {detect_par:6.2f} s   "
          f"speed-up {detect_serial / detect_par:4.2f}x   ({args.symbols} tasks, one per instrument)")
    print(f"overhead: local cluster start {start_s:.1f} s, kernel warm-up on the workers {warm_s:.1f} s "
          f"(once per cluster), then {1000 * noop:.1f} ms per task (64 no-op tasks)")
    print(f"results identical to serial (depth, book_top, level_changes, events): {same}")


if __name__ == "__main__":
    main()
