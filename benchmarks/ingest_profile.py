"""Where the wall time of one ``forensics ingest`` goes, per thread (run by
``bench_ingest.py --profile``; usable alone). No py-spy needed:

* CPU seconds per OS thread, read from ``/proc/self/task/*/stat`` every 20 ms (a thread's
  last reading before it ends), named by the Python thread it runs (``forensics-reader``:
  decompression + hashing, ``forensics-parse``: the format's scanner, ``MainThread``: the
  Writer, ``forensics-part-writer``: Parquet encoding) or as a native pool (Polars, numba);
* the Writer's own step timings (wall seconds in its thread: contract check, validation,
  staging, waiting for the part writer at commit) and the part writer's busy time.

    .venv/bin/python benchmarks/ingest_profile.py STORE FILE
"""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


class ThreadCPU:
    """Polls per-thread CPU time of this process."""

    def __init__(self, every: float = 0.02):
        self.every, self.cpu, self.comm, self.names = every, {}, {}, {}
        self.halt = threading.Event()
        self.t = threading.Thread(target=self._run, name="profiler", daemon=True)

    def _poll(self) -> None:
        for t in threading.enumerate():
            if t.native_id is not None:
                self.names[t.native_id] = t.name
        for tid in os.listdir("/proc/self/task"):
            try:
                stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            f = stat[stat.rindex(")") + 2:].split()
            self.cpu[int(tid)] = (int(f[11]) + int(f[12])) / TICK
            self.comm[int(tid)] = comm

    def _run(self) -> None:
        while not self.halt.is_set():
            self._poll()
            time.sleep(self.every)

    def start(self) -> None:
        self.t.start()

    def stop(self) -> dict[str, float]:
        self._poll()
        self.halt.set()
        self.t.join()
        out: dict[str, float] = defaultdict(float)
        me = self.t.native_id
        for tid, c in self.cpu.items():
            if tid == me:
                continue
            name = self.names.get(tid)
            if name is None:
                comm = self.comm.get(tid, "?")
                name = f"native pool ({comm.rstrip('0123456789-_')})"
            out[name] += c
        return dict(out)


def main(store: str, path: str) -> None:
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    import forensics.ingest as fi
    from forensics.ingest import normalise

    fi.formats()  # the format modules (as the CLI imports them)
    t1 = time.perf_counter()
    seen = {}
    commit = normalise.Writer.commit

    def spy(self, *a, **k):
        t = time.perf_counter()
        out = commit(self, *a, **k)
        if not hasattr(self, "timings"):
            self.timings = {}
        self.timings["commit (publish, manifest)"] = time.perf_counter() - t - self.timings.get(
            "wait for part writer", 0.0)
        seen["w"] = self
        return out
    normalise.Writer.commit = spy
    prof = ThreadCPU()
    prof.start()
    fi.ingest([path], store)
    t2 = time.perf_counter()
    cpu = prof.stop()
    w = seen["w"]
    rows = w.result.total_rows
    print(f"    imports {t1 - t0:.2f} s; ingest {t2 - t1:.2f} s wall for {rows:,} rows "
          f"({rows / (t2 - t1) / 1e6:.2f} M rows/s in-process), {time.process_time():.2f} s CPU")
    print("    CPU seconds per thread:")
    for name, c in sorted(cpu.items(), key=lambda kv: -kv[1]):
        if c >= 0.01:
            print(f"      {name:34s} {c:6.2f} s")
    print("    Writer steps (wall seconds in its thread):")
    for k, v in w.timings.items():
        print(f"      {k:34s} {v:6.2f} s")
    if getattr(w, "parts", None) is not None:
        print(f"      {'part writer busy (own thread)':34s} {w.parts.busy:6.2f} s")


if __name__ == "__main__":
    if not os.environ.get("PYTHONPATH"):
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(sys.argv[1], sys.argv[2])
