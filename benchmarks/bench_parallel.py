"""Partition-parallel depth and detect on a local Dask cluster vs the serial run, with the
parallel run broken down into its parts.

Builds a store of several simulated symbols whose captures straddle midnight (2 UTC days
each: ``--symbols 4`` gives 8 symbol-days), warms the compiled kernels in this process, then
times ``depth`` (one task per exchange/symbol/day; days that would replay the day before
merged, :func:`forensics.parallel.merge_replays`) and ``detect`` (one task per instrument)
serially and with ``--workers N``, back to back (``--repeat`` pairs; the best of each is the
figure, every pair is printed), checks the stored results are identical, and prints:

* cluster start (LocalCluster + Client) and worker warm-up (imports + kernels loaded from
  numba's cache, :func:`forensics.parallel.warm_worker`), both once per cluster;
* per task: submit-side serialisation (pickled task size and time), worker compute time, of
  which store reads (the task's input tables read alone) and writer-lock wait / hold
  (the stored outputs are written by the task itself, under the store's writer lock), and
  result gathering (compute end on the worker to result in the client, result size);
* the per-partition overhead: worker time not spent computing, per task
  ``(workers x wall - sum of task compute) / tasks``, and the round trip of a no-op task;
* the speed-up with the cluster running (the figure a long job approaches) and with the
  cluster start and warm-up counted (one short command);
* CPU time (serial process vs each worker process): on a loaded machine wall times are
  scheduling noise, while serial CPU / busiest worker's CPU is the speed-up the same run
  approaches when each process has a core of its own.

    PYTHONPATH=$PWD python benchmarks/bench_parallel.py [--symbols 4] [--minutes 40] [--workers 2]
                                                      [--repeat 2] [--workdir DIR]

``--workdir`` keeps the simulated captures there (re-runs skip the simulation).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from forensics.book import compute_depth
from forensics.detect import detect
from forensics.ingest import ingest
from forensics.parallel import (Partition, client_for, day_partitions, parallel_depth, parallel_detect,
                                run_partitions)
from forensics.simulate import Incident, SimConfig, simulate
from forensics.store import Store
from forensics.timeutil import parse_time

START = "2025-10-10 23:40:00"


# ---- probes (installed in this process for the serial run and on every worker) -------------

def _probe() -> dict:
    """The lock timings of this process (kept on a module: the probe functions are pickled by
    value to the workers, each with its own copy of this script's globals)."""
    import forensics.store as m
    return m.__dict__.setdefault("_bench_probe", {"lock_wait": 0.0, "lock_held": 0.0, "locks": 0})


def _install_probe() -> bool:
    """Time every Store.lock(): waiting for it and holding it (the writes)."""
    from forensics.store import Store as S
    if getattr(S.lock, "_probe", False):
        return True
    orig = S.lock

    @contextlib.contextmanager
    def lock(self, *a, **k):
        t0 = time.perf_counter()
        with orig(self, *a, **k):
            t1 = time.perf_counter()
            try:
                yield
            finally:
                p = _probe()
                p["lock_wait"] += t1 - t0
                p["lock_held"] += time.perf_counter() - t1
                p["locks"] += 1
    lock._probe = True
    S.lock = lock
    return True


def _take_probe() -> dict:
    p = _probe()
    out = dict(p)
    p.update(lock_wait=0.0, lock_held=0.0, locks=0)
    return out


def _sum_probes(probes) -> dict:
    out = {"lock_wait": 0.0, "lock_held": 0.0, "locks": 0}
    for p in probes:
        for k in out:
            out[k] += p[k]
    return out


def _noop(part):
    return 0


def _read_inputs(part: Partition, store: Store) -> int:
    """What a detect task reads from the store, read alone: its level updates and trades."""
    n = 0
    for t in ("book_updates", "trades"):
        if store.files(t, part.exchange, part.symbol):
            n += store.scan(t, part.exchange, part.symbol).collect().height
    return n


# ---- one serial and one parallel measurement -----------------------------------------------

def _serial(store: Store, symbols: list[str], every: int) -> dict:
    _take_probe()
    t, c = time.perf_counter(), time.process_time()
    for sy in symbols:
        compute_depth(store, symbol=sy, every_ns=every)
    depth_s, depth_cpu = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    ev = detect(store)
    detect_s, detect_cpu = time.perf_counter() - t, time.process_time() - c
    probe = _take_probe()
    return {"depth": depth_s, "detect": detect_s, "cpu": {"depth": depth_cpu, "detect": detect_cpu},
            "events": ev.height, "probe": probe}


def _run_phase(client, fn, parts: list[Partition], **kw) -> dict:
    """One parallel phase with its task stream: wall, per-task compute and gather times."""
    from dask.distributed import get_task_stream
    client.run(_take_probe)
    received = {}
    cpu0 = client.run(time.process_time)
    t = time.perf_counter()
    with get_task_stream(client) as ts:
        res = fn(client=client, progress=lambda i, n, p: received.__setitem__(p, time.time()), **kw)
    wall = time.perf_counter() - t
    cpu = [c - cpu0[w] for w, c in client.run(time.process_time).items()]
    probe = _sum_probes(client.run(_take_probe).values())
    compute, gather, workers_used = [], [], set()
    stops = {}
    for rec in ts.data:
        for ss in rec["startstops"]:
            if ss["action"] == "compute":
                compute.append(ss["stop"] - ss["start"])
                stops[rec["key"]] = ss["stop"]
        workers_used.add(rec.get("worker"))
    # result gathering: compute end on the worker -> the result in this process (task i = parts[i])
    gather = [received[parts[int(k.rsplit("-", 1)[1])]] - stop for k, stop in stops.items()
              if parts[int(k.rsplit("-", 1)[1])] in received]
    return {"wall": wall, "res": res, "compute": compute, "gather": gather, "probe": probe, "cpu": cpu,
            "workers_used": len(workers_used)}


def _parallel(client, store: Store, every: int) -> dict:
    from forensics.detect import instruments
    from forensics.parallel import merge_replays
    d = _run_phase(client, parallel_depth, merge_replays(store, day_partitions(store, None, None, None, None)),
                   store=store, every_ns=every)
    e = _run_phase(client, parallel_detect, [Partition(ex, sy) for ex, sy in instruments(store)], store=store)
    return {"depth": d, "detect": e}


def _tables(st: Store, tables) -> dict[str, pl.DataFrame]:
    con = st.connect()
    return {t: con.sql(f"SELECT * EXCLUDE (date) FROM {t} ORDER BY ALL").pl() for t in tables}


def _captures(root: Path, symbols: int, minutes: float) -> list[Path]:
    files = []
    start = parse_time(START)
    for i in range(symbols):
        sy = f"SYM{i}USDT"
        d = root / f"{sy}-{minutes:g}m"
        if not (d / ".done").exists():
            inc = (Incident("withdrawal", 60 * (minutes / 2) - 30 + 7 * i, "sell"),)
            simulate(SimConfig(seed=100 + i, symbol=sy, minutes=minutes, start_ns=start, incidents=inc), d)
            (d / ".done").touch()
        files += sorted(p for p in d.iterdir() if p.suffix in (".gz", ".csv") and "truth" not in p.name)
    return files


def _warm_store(root: Path) -> Store:
    """A 2-minute capture over midnight: one depth + detect on it loads or compiles every kernel."""
    d = root / "warm-capture"
    if not (d / ".done").exists():
        simulate(SimConfig(seed=7, symbol="WARMUSDT", minutes=2, start_ns=parse_time("2025-10-10 23:59:00"),
                           incidents=(Incident("withdrawal", 50, "sell"),)), d)
        (d / ".done").touch()
    st = Store(root / "warm-store")
    ingest(sorted(p for p in d.iterdir() if p.suffix in (".gz", ".csv") and "truth" not in p.name), store=st)
    return st


def _ms(x: float) -> str:
    return f"{1000 * x:7.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--minutes", type=float, default=40.0, help="per symbol, from 23:40 UTC")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--every", type=float, default=0.1, help="depth grid step, s")
    ap.add_argument("--repeat", type=int, default=2, help="serial/parallel pairs, back to back")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the simulated captures here")
    args = ap.parse_args()
    every = int(args.every * 1e9)
    symbols = [f"SYM{i}USDT" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        work = args.workdir or tmp
        work.mkdir(parents=True, exist_ok=True)
        files = _captures(work, args.symbols, args.minutes)
        serial, par = Store(tmp / "serial"), Store(tmp / "par")
        for st in (serial, par):
            ingest(files, store=st)
        n_updates = serial.connect().execute("select count(*) from book_updates").fetchone()[0]
        n_days = len(day_partitions(serial, None, None, None, None))
        warm = _warm_store(work)
        # this process: kernels compiled (first run ever) or loaded from numba's cache, outside the timings
        compute_depth(warm, every_ns=every, write=False)
        detect(warm, write=False)
        _install_probe()
        # store reads of a detect task, alone (serially, in this process)
        t = time.perf_counter()
        for sy in symbols:
            _read_inputs(Partition("binance-futures", sy), serial)
        read_per_inst = (time.perf_counter() - t) / len(symbols)
        exchange = serial.instruments_in("book_updates")[0][0]

        # the other way to start workers, for comparison: fresh interpreters (spawn)
        t = time.perf_counter()
        with client_for(args.workers, start_method="spawn") as client:
            up_spawn = time.perf_counter() - t
            startup_spawn = client.forensics_startup
        t = time.perf_counter()
        with client_for(args.workers) as client:
            up = time.perf_counter() - t
            startup = client.forensics_startup
            client.run(_install_probe)
            # submit-side serialisation of one detect task (what the client pickles per task)
            import cloudpickle
            from forensics.detect import DetectParams
            from forensics.parallel import _detect_task, _timed
            payload = (_timed, _detect_task, Partition(exchange, symbols[0]), par, None, None, DetectParams())
            t = time.perf_counter()
            blob = cloudpickle.dumps(payload)
            ser_s = time.perf_counter() - t
            pairs = []
            for _ in range(args.repeat):
                s = _serial(serial, symbols, every)
                p = _parallel(client, par, every)
                pairs.append((s, p))
            t = time.perf_counter()
            parts = [Partition("x", f"s{i}", "2025-01-01") for i in range(64)]
            run_partitions(_noop, parts, client=client)
            noop = (time.perf_counter() - t) / len(parts)

        a = _tables(serial, ("depth", "book_top", "level_changes", "events"))
        b = _tables(par, ("depth", "book_top", "level_changes", "events"))
        same = {k: a[k].equals(b[k]) for k in a}
        same_events = all(p["detect"]["res"].height == s["events"] for s, p in pairs)

    W = args.workers
    load = os.getloadavg()
    print(f"store: {args.symbols} symbols x 2 UTC days = {n_days} symbol-days, {n_updates:,} book updates; "
          f"depth grid {args.every:g} s; {W} worker processes (LocalCluster, 127.0.0.1, 1 thread each); "
          f"{os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end")
    for name, u, st in (("spawn", up_spawn, startup_spawn), (startup.start_method, up, startup)):
        print(f"cluster start ({name:>10}) {u:5.2f} s = LocalCluster + Client {st.cluster_s:.2f} s "
              f"+ worker warm-up {st.warm_s:.2f} s (per worker: "
              + ", ".join(f"imports {w['import_s']:.2f} s + {w['kernels']} kernels loaded {w['kernels_s']:.2f} s"
                          for w in st.workers.values()) + ")")
    print(f"  used: {startup.start_method} (the fork server imports the task modules and loads the kernels once, "
          f"inside its LocalCluster time; every worker is forked from it warm)")
    print()
    print("pair  phase   serial   parallel  speed-up | CPU: serial  busiest worker  ratio | lock wait (workers)")
    for i, (s, p) in enumerate(pairs):
        for ph in ("depth", "detect"):
            c, q = s["cpu"][ph], p[ph]
            print(f"{i + 1:>4}  {ph:<6} {s[ph]:6.2f} s  {q['wall']:6.2f} s   {s[ph] / q['wall']:5.2f}x  | "
                  f"{c:8.2f} s  {max(q['cpu']):8.2f} s    {c / max(q['cpu']):5.2f}x | {q['probe']['lock_wait']:.2f} s")
    best_s = {ph: min(s[ph] for s, _ in pairs) for ph in ("depth", "detect")}
    best_p = {ph: min(p[ph]["wall"] for _, p in pairs) for ph in ("depth", "detect")}
    tot_s, tot_p = sum(best_s.values()), sum(best_p.values())
    print()
    for ph in ("depth", "detect"):
        p = min((p[ph] for _, p in pairs), key=lambda x: x["wall"])
        n = len(p["compute"])
        comp = sum(p["compute"])
        gathers = p["gather"]
        over = (W * p["wall"] - comp) / n
        pr = p["probe"]
        print(f"{ph} with {W} workers (best pair): {n} tasks on {p['workers_used']} workers, wall {p['wall']:.2f} s, "
              f"task compute {comp:.2f} s in all (median {statistics.median(p['compute']):.2f} s, "
              f"max {max(p['compute']):.2f} s)")
        print(f"  writer lock: waited {pr['lock_wait']:.2f} s, held (writing outputs) {pr['lock_held']:.2f} s "
              f"over {pr['locks']} writes; per-partition overhead {over * 1000:.0f} ms "
              f"(worker time not computing, per task)"
              + (f"; result gather median {_ms(statistics.median(gathers)).strip()}" if gathers else ""))
        s_cpu = min(s["cpu"][ph] for s, _ in pairs)
        print(f"  speed-up {best_s[ph] / p['wall']:.2f}x (serial {best_s[ph]:.2f} s); CPU time: serial {s_cpu:.2f} s, "
              f"workers {' + '.join(f'{c:.2f}' for c in p['cpu'])} s = {sum(p['cpu']) / s_cpu:.2f}x the serial work, "
              f"busiest worker {max(p['cpu']):.2f} s (serial CPU / busiest worker CPU "
              f"{s_cpu / max(p['cpu']):.2f}x: the speed-up if each process had a core to itself)")
    print()
    print(f"per task: submit serialisation {len(blob):,} bytes in {_ms(ser_s).strip()}; "
          f"no-op task round trip {_ms(noop).strip()} (64 tasks); "
          f"store reads of a detect task (its book_updates + trades, alone) {read_per_inst:.2f} s")
    print(f"serial depth+detect {tot_s:.2f} s, parallel {tot_p:.2f} s: speed-up {tot_s / tot_p:.2f}x with the cluster "
          f"running, {tot_s / (tot_p + up):.2f}x counting its start and warm-up ({up:.2f} s)")
    print(f"serial writes: lock held {pairs[-1][0]['probe']['lock_held']:.2f} s of the serial run")
    print("results identical to serial: " + ", ".join(f"{k} {v}" for k, v in same.items())
          + f", events returned {same_events}")


if __name__ == "__main__":
    main()
