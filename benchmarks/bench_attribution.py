"""Throughput of level-change attribution (forensics.attribution).

Builds a synthetic Binance-like stream in memory (100 ms batches of level updates near the
touch, trades that hit the touch, one snapshot at the start) and times:

* engine: the compiled pass ``A._core(updates, trades, params)`` from arrays (tolerance
  given; wall and CPU time, best of 3), the figure the >= 5 M updates/s target refers to
  (batch matching as for this stream; also event matching and a 20-level depth-limited view,
  which adds the window bookkeeping);
* frames: :func:`attribute_frames` from Polars frames to the finished level_changes frame,
  with the tolerance and depth-limit estimated from the data;
* store: optional end-to-end ``attribute(store, ...)`` when ``--store`` is given.

Usage: .venv/bin/python benchmarks/bench_attribution.py [--updates 10000000] [--store DIR]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from forensics import attribution as A


def synth(n_updates: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """~n_updates level updates: a 400-level snapshot, then 100 ms batches; one in five updates
    is the book's view of a trade printed during the batch (same side and price)."""
    rng = np.random.default_rng(seed)
    levels, mid0, batch_ns = 400, 1_200_000, 100_000_000
    n_snap = 2 * levels
    m = n_updates // 5
    n_rand = n_updates - n_snap - m
    n_batches = max(1, n_updates // 40)
    drift = np.cumsum(rng.integers(-1, 2, n_batches))
    # trades: time, aggressor, price near the touch of their batch
    t_ts = np.sort(rng.integers(0, n_batches * batch_ns, m))
    tb = t_ts // batch_ns
    agg = rng.integers(0, 2, m)
    tprice = np.where(agg == 0, mid0 + drift[tb] - rng.geometric(0.6, m) + 1, mid0 + drift[tb] + rng.geometric(0.6, m))
    t_side = np.where(agg == 0, 0, 1)  # sell hits bid
    # random updates
    rb = rng.integers(0, n_batches, n_rand)
    r_side = rng.integers(0, 2, n_rand)
    dist = rng.geometric(0.08, n_rand) - 1
    r_price = np.where(r_side == 0, mid0 + drift[rb] - dist, mid0 + drift[rb] + 1 + dist)
    ts = np.concatenate([np.zeros(n_snap, np.int64), (rb + 1) * batch_ns, (tb + 1) * batch_ns])
    side = np.concatenate([np.repeat([0, 1], levels), r_side, t_side]).astype(np.int8)
    price = np.concatenate([np.concatenate([mid0 - np.arange(levels), mid0 + 1 + np.arange(levels)]),
                            r_price, tprice])
    order = np.argsort(ts, kind="stable")
    ts, side, price = ts[order], side[order], price[order]
    n = ts.size
    size = rng.integers(0, 5000, n)
    size[rng.random(n) < 0.2] = 0
    u = pl.DataFrame({"ts": ts, "seq": np.arange(n, dtype=np.int64) * 2, "is_snapshot": np.arange(n) < n_snap,
                      "side": np.where(side == 0, "bid", "ask"), "price": price, "size": size})
    t = pl.DataFrame({"ts": t_ts, "seq": np.arange(m, dtype=np.int64) * 2 + 1, "price": tprice,
                      "size": rng.integers(1, 2000, m), "aggressor": np.where(agg == 0, "sell", "buy")})
    return u, t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=10_000_000)
    ap.add_argument("--store", default=None)
    ap.add_argument("--exchange", default=None)
    ap.add_argument("--symbol", default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    u, t = synth(args.updates)
    print(f"synthetic stream: {u.height:,} updates, {t.height:,} trades ({time.perf_counter() - t0:.1f} s to build)")
    # warm the compiled code (cached on disk after the first run)
    small_u, small_t = u.head(10_000), t.filter(pl.col("ts") <= u["ts"][9_999])
    A.attribute_frames(small_u, small_t, None, None, "auto")
    a = A._prepare(u, t, None)
    upd, trd = a.updates(), a.trades()
    for label, dl, event in (("batch matching", 0, False), ("event matching", 0, True),
                             ("batch matching, 20-level view", 20, False)):
        prm = A.params(tol_fwd=20_000_000, tol_back=120_000_000, depth_limit=dl, n_levels=a.R,
                       syn_cap=max(1024, u.height // 8), event_matching=event)
        best = best_cpu = 1e9
        for _ in range(3):
            t1, c1 = time.perf_counter(), time.process_time()
            A._core(upd, trd, prm)
            best = min(best, time.perf_counter() - t1)
            best_cpu = min(best_cpu, time.process_time() - c1)
        print(f"engine (compiled pass, arrays in memory, {label}): {u.height / best / 1e6:6.1f} M updates/s  "
              f"({best:.2f} s; CPU time {u.height / best_cpu / 1e6:.1f} M/s, the figure to compare on a shared machine)")
    t1 = time.perf_counter()
    a = A._prepare(u, t, None)
    t_prep = time.perf_counter() - t1
    print(f"prepare (frames -> arrays, dense levels):  {u.height / t_prep / 1e6:6.1f} M updates/s  ({t_prep:.2f} s)")
    runs = []
    for _ in range(3):
        t1 = time.perf_counter()
        lc, info = A.attribute_frames(u, t, None, None, "auto")
        runs.append(time.perf_counter() - t1)
    runs.sort()
    print(f"attribute_frames (estimate tolerance + depth limit, pass, output frame), 3 runs: "
          f"best {u.height / runs[0] / 1e6:.1f} M updates/s ({runs[0]:.2f} s), "
          f"median {u.height / runs[1] / 1e6:.1f} M updates/s ({runs[1]:.2f} s)")
    print(f"  estimated tolerance: trade up to {info.tol_back_ns / 1e6:.0f} ms before / "
          f"{info.tol_fwd_ns / 1e6:.0f} ms after a decrease (interval {info.interval_ns / 1e6:.0f} ms, "
          f"{info.lags_used:,} lags); depth limit {info.depth_limit or 'none'}")
    causes = lc.group_by("cause").len().sort("cause")
    print("  causes:", ", ".join(f"{c}={k:,}" for c, k in causes.rows()))
    print(f"  matched {info.matched_qty / max(info.trade_qty, 1):.1%} of traded quantity; "
          f"implied {info.implied_qty / max(info.trade_qty, 1):.1%}")
    if args.store:
        from forensics.store import Store
        st = Store(args.store)
        ex, sy = st.resolve_instrument(args.exchange, args.symbol, tables=("book_updates",))
        t1 = time.perf_counter()
        df = A.attribute(st, ex, sy, write=False)
        dt_ = time.perf_counter() - t1
        print(f"store end-to-end ({ex}/{sy}, read + attribute): {df.height / dt_ / 1e6:6.1f} M rows/s "
              f"({df.height:,} rows, {dt_:.2f} s)")


if __name__ == "__main__":
    main()
