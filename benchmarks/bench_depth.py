"""Throughput and exactness of the depth replay (forensics.book). Not a test: prints figures.

    .venv/bin/python benchmarks/bench_depth.py                 # 10 M updates
    .venv/bin/python benchmarks/bench_depth.py --n 100000000   # 100 M (bounded memory)

Synthetic but realistic stream: a snapshot of 1000 levels per side, then updates at ~3000/s
with millisecond timestamps (many same-ts ties), most of them within a few ticks of the touch
(geometric distance), 40 % removals, a random walk of the mid (levels crossed by the move
are removed first, so the book stays uncrossed) and a re-snapshot every 5 M updates.

Phases, each in its own process so peak RSS (getrusage) is per phase:

1. ``kernel``: generate slices in memory and feed them to the compiled pass for a 1 s and a
   100 ms grid, bands + top of book + heatmap (200 buckets) in the same pass (best of
   ``--repeat`` passes when the stream fits in memory, else one streamed pass); the pure-Python
   reference replays the first ``--slice`` updates and its grid rows must equal the compiled
   ones exactly. Reports compiled updates/s (kernel time only), reference updates/s, ratio.
2. ``store`` (skip with ``--no-store``): write the stream as Parquet into a temporary store,
   then ``compute_depth`` from it (1 s and 100 ms), reporting Parquet read/convert time,
   compiled time, frame building and write time separately, and peak RSS.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba as nb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.book import (HeatSpec, PriceIndex, Replayer, grid_bounds, parse_bands,  # noqa: E402
                            reference_replay)

T0 = 1_760_130_000_000_000_000  # 2025-10-10 21:00 UTC
BASE_PRICE = 1_200_000          # 120000.0 at price_decimals=1
WINDOW = 1 << 20                # generator's price window in ticks
SNAP_LEVELS = 1000
SNAPSHOT_EVERY = 5_000_000


@nb.njit(cache=True)
def _gen(n, st, gsz, o_ts, o_side, o_price, o_size, o_snap, mean_gap_ns, seed_once):
    """Fill up to n rows; returns rows written. st = [t, c, count, seeded]."""
    if st[3] == 0:
        np.random.seed(seed_once)
        st[3] = 1
    t, c, count = st[0], st[1], st[2]
    j = 0
    while j < n:
        if count % SNAPSHOT_EVERY == 0:
            if j + 2 * SNAP_LEVELS + 2 > n:
                break
            t += 1_000_000
            tsn = (t // 1_000_000) * 1_000_000
            gsz[:, :] = 0
            for d in range(SNAP_LEVELS):
                for s in range(2):
                    p = c - 1 - d if s == 0 else c + d
                    q = 1 + int(np.random.exponential(2000.0))
                    gsz[s, p] = q
                    o_ts[j] = tsn
                    o_side[j] = s
                    o_price[j] = p
                    o_size[j] = q
                    o_snap[j] = True
                    j += 1
            count += 1
            continue
        t += int(np.random.exponential(mean_gap_ns)) + 1
        tsn = (t // 1_000_000) * 1_000_000
        if np.random.random() < 0.03:
            up = np.random.random() < 0.5
            if c < 5000:
                up = True
            if c > WINDOW - 5000:
                up = False
            if up:
                if gsz[1, c] != 0:  # the ask at the old mid is consumed
                    gsz[1, c] = 0
                    o_ts[j] = tsn
                    o_side[j] = 1
                    o_price[j] = c
                    o_size[j] = 0
                    o_snap[j] = False
                    j += 1
                    count += 1
                c += 1
            else:
                if gsz[0, c - 1] != 0:
                    gsz[0, c - 1] = 0
                    o_ts[j] = tsn
                    o_side[j] = 0
                    o_price[j] = c - 1
                    o_size[j] = 0
                    o_snap[j] = False
                    j += 1
                    count += 1
                c -= 1
            continue
        s = 1 if np.random.random() < 0.5 else 0
        d = min(int(np.random.geometric(0.12)) - 1, 1500)
        p = c - 1 - d if s == 0 else c + d
        q = 0 if np.random.random() < 0.4 else 1 + int(np.random.exponential(1500.0))
        gsz[s, p] = q
        o_ts[j] = tsn
        o_side[j] = s
        o_price[j] = p
        o_size[j] = q
        o_snap[j] = False
        j += 1
        count += 1
    st[0], st[1], st[2] = t, c, count
    return j


class Stream:
    """Generates the stream in slices that never split a timestamp."""

    def __init__(self, n: int, seed: int, rate: float, chunk: int):
        self.n, self.chunk, self.seed = n, chunk, seed
        self.st = np.array([T0, WINDOW // 2, 0, 0], np.int64)
        self.gsz = np.zeros((2, WINDOW), np.int64)
        self.mean_gap = 1e9 / rate
        self.done = 0
        self.carry = None

    def __iter__(self):
        seq0 = 0
        while self.done < self.n or self.carry is not None:
            k = min(self.chunk, self.n - self.done)
            bufs = (np.empty(k, np.int64), np.empty(k, np.int8), np.empty(k, np.int64), np.empty(k, np.int64),
                    np.empty(k, np.bool_))
            got = _gen(k, self.st, self.gsz, *bufs, self.mean_gap, self.seed) if k else 0
            self.done += got
            ts, side, price, size, snap = (b[:got] for b in bufs)
            price = price + (BASE_PRICE - WINDOW // 2)
            if self.carry is not None:
                ts, side, price, size, snap = (np.concatenate([a, b]) for a, b in zip(self.carry, (ts, side, price, size, snap)))
                self.carry = None
            if self.done < self.n and ts.size:
                cut = int(np.searchsorted(ts, ts[-1], side="left"))
                if cut > 0:
                    self.carry = tuple(a[cut:] for a in (ts, side, price, size, snap))
                    ts, side, price, size, snap = (a[:cut] for a in (ts, side, price, size, snap))
            if ts.size == 0:
                if got == 0 and k == 0:
                    break
                continue
            seq = seq0 + np.arange(ts.size, dtype=np.int64)
            seq0 += ts.size
            yield ts, seq, side, price, size, snap


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def heat_spec() -> HeatSpec:
    half = BASE_PRICE * 2 // 100  # +-2 % around the start price, 200 rows
    return HeatSpec(BASE_PRICE - half, (2 * half) // 200, 200)


def phase_kernel(args) -> dict:
    bands = parse_bands("0.1,0.5,1,2,5")
    prices = PriceIndex.build(BASE_PRICE - WINDOW // 2, BASE_PRICE + WINDOW // 2)
    grids = {"1s": 1_000_000_000, "100ms": 100_000_000}
    # warm up the compiled code outside the timing
    w = Replayer(PriceIndex.build(0, 10), bands, 0, 1, 2, heat=HeatSpec(0, 1, 2))
    w.feed_prices([0], [0], [0], [5], [1], [True], 1)
    w.finish()
    keep_all = args.n <= args.keep_max  # small enough: keep the stream and time the best of --repeat
    kept, first, n_done, last_ts = [], [], 0, T0
    gen_s = map_s = 0.0
    t = time.perf_counter()
    for ts, seq, side, price, size, snap in Stream(args.n, args.seed, args.rate, args.chunk):
        gen_s += time.perf_counter() - t
        t = time.perf_counter()
        idx = prices.index(price)
        map_s += time.perf_counter() - t
        chunk = (ts, seq, side, idx, size, snap)
        if keep_all:
            kept.append(chunk)
        if sum(len(c[0]) for c in first) < args.slice:
            first.append((ts, seq, side, price, size, snap))
        n_done += ts.size
        last_ts = int(ts[-1])
        t = time.perf_counter()
    out = {"n": n_done, "duration_s": (last_ts - T0) / 1e9, "gen_s": gen_s, "map_s": map_s,
           "repeat": args.repeat if keep_all else 1}
    results, best = {}, {}
    for name, every in grids.items():
        g0, m = grid_bounds(T0, last_ts, every)
        for r in range(out["repeat"]):
            rep = Replayer(prices, bands, g0, every, m, heat=heat_spec())
            source = kept if keep_all else (
                (c[0], c[1], c[2], prices.index(c[3]), c[4], c[5]) for c in Stream(args.n, args.seed, args.rate, args.chunk))
            for c in source:
                rep.feed(*c, int(c[0][-1]) + 1)
            res = rep.finish()
            if name not in best or res.stats["kernel_seconds"] < best[name]:
                best[name], results[name] = res.stats["kernel_seconds"], res
    # exactness on the first slice: grid rows whose state only depends on those updates
    cat = [np.concatenate([k[i] for k in first])[: args.slice] for i in range(6)]
    cut_ts = int(cat[0][-1])
    sel = cat[0] < cut_ts  # drop the last (possibly partial) timestamp
    ref_updates = list(zip(*(a[sel].tolist() for a in cat)))
    for name, every in grids.items():
        res = results[name]
        rows = int(np.searchsorted(res.ts, cut_ts, side="left"))  # grid times < cut_ts
        tr = time.perf_counter()
        ref = reference_replay(ref_updates, [], g0=int(res.ts[0]), every_ns=every, m=rows, bands=bands, heat=heat_spec())
        ref_s = time.perf_counter() - tr
        diff = res.diff(ref, rows=slice(0, rows))
        ks = best[name]
        out[name] = {
            "grid_rows": int(res.ts.size), "valid_rows": int(res.valid.sum()),
            "kernel_s": ks, "updates_per_s": n_done / ks,
            "ref_updates": len(ref_updates), "ref_rows": rows, "ref_s": ref_s,
            "ref_updates_per_s": len(ref_updates) / ref_s,
            "ratio": (n_done / ks) / (len(ref_updates) / ref_s),
            "exact": not diff, "diff": diff,
        }
    out["peak_rss_mb"] = rss_mb()
    return out


def phase_write(args) -> dict:
    import polars as pl
    from forensics.schema import conform
    from forensics.store import Instrument, Store
    store = Store(args.store)
    t = time.perf_counter()
    k = 0
    for ts, seq, side, price, size, snap in Stream(args.n, args.seed, args.rate, args.chunk):
        df = pl.DataFrame({"ts": ts, "seq": seq, "is_snapshot": snap,
                           "side": np.where(side == 1, "ask", "bid"), "price": price, "size": size})
        k += 1
        store.write_partitioned("book_updates", conform("book_updates", df), "bench", "BTCUSDT", f"part-{k:05d}")
        last_seq = int(seq[-1])
    store.save_instrument(Instrument("bench", "BTCUSDT", 1, 3, last_seq + 1))
    return {"write_s": time.perf_counter() - t, "parts": k, "peak_rss_mb": rss_mb()}


def phase_store(args) -> dict:
    from forensics.book import compute_depth
    w = Replayer(PriceIndex.build(0, 10), parse_bands("1"), 0, 1, 2)  # load the compiled code first
    w.feed_prices([0], [0], [0], [5], [1], [True], 1)
    w.finish()
    every = {"1s": 1_000_000_000, "100ms": 100_000_000}[args.grid]
    t = time.perf_counter()
    res = compute_depth(args.store, "bench", "BTCUSDT", every_ns=every, write=True, chunk_rows=args.chunk)
    total = time.perf_counter() - t
    s = res.stats
    return {"grid": args.grid, "total_s": total, "io_s": s["seconds_io"], "kernel_s": s["seconds_kernel"],
            "frames_s": s["seconds_frames"], "write_s": s["seconds_write"], "updates": s["updates"],
            "slices": s["slices"], "rows": res.book_top.height,
            "kernel_updates_per_s": s["updates"] / s["seconds_kernel"],
            "end_to_end_updates_per_s": s["updates"] / total, "peak_rss_mb": rss_mb()}


def run_phase(args, phase: str, **extra) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--n", str(args.n), "--slice", str(args.slice),
           "--seed", str(args.seed), "--rate", str(args.rate), "--chunk", str(args.chunk),
           "--repeat", str(args.repeat), "--keep-max", str(args.keep_max)]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"phase {phase} failed")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000, help="updates to generate")
    ap.add_argument("--slice", type=int, default=500_000, help="updates replayed by the reference")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate", type=float, default=3000.0, help="updates per second of exchange time")
    ap.add_argument("--chunk", type=int, default=4_000_000, help="rows per slice")
    ap.add_argument("--repeat", type=int, default=3, help="kernel passes (best time kept) when the stream "
                    "fits in memory (<= --keep-max updates); the machine may be shared")
    ap.add_argument("--keep-max", type=int, default=20_000_000, help=argparse.SUPPRESS)
    ap.add_argument("--no-store", action="store_true", help="skip the Parquet store phase")
    ap.add_argument("--no-kernel", action="store_true", help="skip the in-memory kernel phase (store phase only, "
                    "e.g. --n 20000000 --no-kernel for the share of compute_depth outside replay and I/O)")
    ap.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--store", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--grid", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        fn = {"kernel": phase_kernel, "write": phase_write, "store": phase_store}[args.phase]
        print(json.dumps(fn(args)))
        return
    print(f"bench_depth: {args.n:,} updates, reference on the first {args.slice:,}, slices of {args.chunk:,}")
    k = None if args.no_kernel else run_phase(args, "kernel")
    if k is not None:
        _print_kernel(k)
    if not args.no_store:
        _store_phases(args)


def _print_kernel(k: dict) -> None:
    print(f"  stream: {k['n']:,} updates over {k['duration_s'] / 60:.1f} min of exchange time "
          f"(generation {k['gen_s']:.1f} s, price->index {k['map_s']:.2f} s, not in the kernel time; "
          f"best of {k['repeat']} passes)")
    for g in ("1s", "100ms"):
        r = k[g]
        print(f"  compiled pass, {g:>5} grid: {r['updates_per_s'] / 1e6:6.1f} M updates/s "
              f"({r['kernel_s']:.2f} s; bands + top + heatmap 200 rows; {r['grid_rows']:,} grid rows)")
        print(f"      reference on {r['ref_updates']:,} updates / {r['ref_rows']:,} rows: "
              f"{r['ref_updates_per_s'] / 1e3:.1f} k updates/s -> ratio x{r['ratio']:,.0f}; "
              f"exact: {'YES' if r['exact'] else 'NO ' + ','.join(r['diff'])}")
    print(f"  peak RSS (kernel phase, incl. the generator{' and the kept stream' if k['repeat'] > 1 else ''}): "
          f"{k['peak_rss_mb']:.0f} MiB")


def _store_phases(args) -> None:
    if True:
        with tempfile.TemporaryDirectory(prefix="bench_depth_") as tmp:
            w = run_phase(args, "write", store=tmp)
            print(f"  store: wrote {args.n:,} updates as {w['parts']} Parquet parts in {w['write_s']:.1f} s "
                  f"(peak RSS {w['peak_rss_mb']:.0f} MiB)")
            for g in ("1s", "100ms"):
                s = run_phase(args, "store", store=tmp, grid=g)
                print(f"  compute_depth from store, {g:>5}: {s['total_s']:.1f} s total = Parquet read+convert "
                      f"{s['io_s']:.1f} s + compiled {s['kernel_s']:.1f} s ({s['kernel_updates_per_s'] / 1e6:.1f} M/s)"
                      f" + frames {s['frames_s']:.1f} s + write {s['write_s']:.1f} s; end-to-end "
                      f"{s['end_to_end_updates_per_s'] / 1e6:.1f} M/s; {s['slices']} slices; "
                      f"peak RSS {s['peak_rss_mb']:.0f} MiB")
                # the done-when of issue 15: < 10 % of the wall time outside the replay and the I/O
                outside = s["total_s"] - s["io_s"] - s["kernel_s"] - s["write_s"]
                print(f"      outside replay and I/O (frames, set-up, commit): {outside:.1f} s = "
                      f"{outside / s['total_s']:.0%} of the wall time")


if __name__ == "__main__":
    main()
