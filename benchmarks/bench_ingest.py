"""Ingest throughput of a Binance futures capture (gzipped collector lines).

Generates N level rows of synthetic USD-M futures ``depthUpdate`` capture lines
(``<receive ns> {"stream": ..., "data": {...}}``, hftbacktest style) with a REST snapshot near
the start and some aggTrades interleaved, gzips them in a temp dir, runs ``forensics.ingest``
and prints level rows/s, MB/s (compressed and uncompressed) and peak RSS. Figures only: no
assertions.

    .venv/bin/python benchmarks/bench_ingest.py            # ~5 M level rows
    .venv/bin/python benchmarks/bench_ingest.py --levels 1000000 --keep DIR
"""
from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl


def fmt(template: str, *args) -> pl.Expr:
    """Like pl.format, but the template may hold JSON braces: only "{}" is a placeholder."""
    pieces = template.split("{}")
    assert len(pieces) == len(args) + 1
    parts = []
    for i, arg in enumerate(args):
        parts += [pl.lit(pieces[i]), (pl.col(arg) if isinstance(arg, str) else arg).cast(pl.Utf8)]
    parts.append(pl.lit(pieces[-1]))
    return pl.concat_str(parts)


def generate(path: Path, levels: int, seed: int = 7, per_side_max: int = 40, trade_every: int = 4) -> dict:
    """Write the synthetic capture; returns counts."""
    rng = np.random.default_rng(seed)
    n_msg = max(2, levels // (per_side_max + 1))
    nb = rng.integers(0, per_side_max + 1, n_msg)
    na = rng.integers(0, per_side_max + 1, n_msg)
    total = int(nb.sum() + na.sum())
    msg = np.repeat(np.arange(n_msg), nb + na)
    within = np.arange(total) - np.repeat(np.cumsum(nb + na) - (nb + na), nb + na)
    is_bid = within < np.repeat(nb, nb + na)
    mid = 1_200_000 + np.cumsum(rng.integers(-3, 4, n_msg))            # in 0.1 ticks
    off = rng.integers(1, 2000, total)
    px = np.where(is_bid, mid[msg] - off, mid[msg] + off)
    qty = rng.integers(0, 50_000, total)
    lv = pl.DataFrame({"msg": msg, "bid": is_bid, "px": px, "qty": qty}).with_columns(
        fmt('["{}.{}","{}.{}"]',
                  pl.col("px") // 10, pl.col("px") % 10,
                  pl.col("qty") // 1000, (pl.col("qty") % 1000).cast(pl.Utf8).str.pad_start(3, "0")).alias("j"))
    sides = lv.group_by("msg", "bid").agg(pl.col("j").str.join(","))
    b = sides.filter(pl.col("bid")).select("msg", pl.col("j").alias("b"))
    a = sides.filter(~pl.col("bid")).select("msg", pl.col("j").alias("a"))
    t0 = 1_760_130_000_000
    u0 = 8_000_000_000_000
    step = rng.integers(5, 500, n_msg)
    u_end = u0 + np.cumsum(step)
    m = pl.DataFrame({"msg": np.arange(n_msg), "T": t0 + np.arange(n_msg) * 100 + rng.integers(0, 50, n_msg),
                      "u": u_end, "U": u_end - step + 1, "pu": np.concatenate([[u0], u_end[:-1]])})
    m = m.join(b, on="msg", how="left").join(a, on="msg", how="left").sort("msg").with_columns(
        pl.col("b").fill_null(""), pl.col("a").fill_null(""),
        ((pl.col("T") + 3) * 1_000_000 + 123_456).alias("recv"), pl.col("msg").cast(pl.Float64).alias("order"))
    depth = m.select("order", fmt(
        '{} {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":{},"T":{},"s":"BTCUSDT",'
        '"U":{},"u":{},"pu":{},"b":[{}],"a":[{}]}}',
        "recv", pl.col("T") + 2, "T", "U", "u", "pu", "b", "a").alias("line"))
    nt = n_msg // trade_every
    tm = np.sort(rng.integers(0, n_msg, nt))
    trades = pl.DataFrame({"k": tm, "id": np.arange(nt) + 1, "px": mid[tm], "q": rng.integers(1, 1000, nt),
                           "m": rng.integers(0, 2, nt).astype(bool)}).with_columns(
        (t0 + pl.col("k") * 100 + 60).alias("T"), (pl.col("k").cast(pl.Float64) + 0.5).alias("order"))
    trades = trades.select("order", fmt(
        '{} {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":{},"a":{},"s":"BTCUSDT","p":"{}.{}",'
        '"q":"0.{}","f":{},"l":{},"T":{},"m":{}}}',
        (pl.col("T") + 3) * 1_000_000, pl.col("T") + 1, "id", pl.col("px") // 10, pl.col("px") % 10,
        pl.col("q").cast(pl.Utf8).str.pad_start(3, "0"), "id", "id", "T",
        pl.when(pl.col("m")).then(pl.lit("true")).otherwise(pl.lit("false"))).alias("line"))
    # the REST snapshot arrives after the event that straddles its lastUpdateId (as collectors do)
    k = min(5, n_msg - 1)
    snap_levels = ",".join(f'["{(int(mid[0]) - i) // 10}.{(int(mid[0]) - i) % 10}","1.000"]' for i in range(1, 501))
    ask_levels = ",".join(f'["{(int(mid[0]) + i) // 10}.{(int(mid[0]) + i) % 10}","1.000"]' for i in range(1, 501))
    L = int(m["U"][k])  # straddled by message k
    snap = pl.DataFrame({"order": [k + 2.25], "line": [
        f'{(t0 + k * 100 + 250) * 1_000_000} {{"lastUpdateId":{L},"E":{t0 + k * 100 - 1},"T":{t0 + k * 100 - 2},'
        f'"bids":[{snap_levels}],"asks":[{ask_levels}]}}']})
    lines = pl.concat([depth, trades, snap]).sort("order")["line"]
    data = ("\n".join(lines.to_list()) + "\n").encode()
    with gzip.open(path, "wb", compresslevel=6) as fh:
        fh.write(data)
    return {"levels": total, "messages": n_msg, "trades": nt, "raw_bytes": len(data)}


def run_ingest(cap: Path, store: Path) -> dict:
    """Ingest in this process; returns the figures (peak RSS is this process's)."""
    from forensics.ingest import ingest
    from forensics.store import Store
    if store.exists():
        shutil.rmtree(store)
    t, c = time.perf_counter(), time.process_time()
    r = ingest([cap], store=Store(store))[0]
    return {"secs": time.perf_counter() - t, "cpu": time.process_time() - c, "rows": r.rows,
            "total": r.total_rows, "dropped": r.dropped, "rejected": r.rejected, "gaps": r.gaps,
            "rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """Peak RSS of this process: VmHWM (ru_maxrss would include the parent's at fork/exec)."""
    try:
        for ln in open("/proc/self/status"):
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, default=5_000_000, help="depth level rows to generate")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", default=None, help="keep the capture and store in this directory")
    ap.add_argument("--ingest-only", nargs=2, metavar=("CAPTURE", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ingest_only:
        print(json.dumps(run_ingest(Path(args.ingest_only[0]), Path(args.ingest_only[1]))))
        return
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    work.mkdir(parents=True, exist_ok=True)
    cap = work / "btcusdt_20251010.gz"
    t = time.perf_counter()
    info = generate(cap, args.levels, args.seed)
    gen_s = time.perf_counter() - t
    comp = cap.stat().st_size
    print(f"generated {info['levels']:,} level rows in {info['messages']:,} depth messages + "
          f"{info['trades']:,} aggTrades: {info['raw_bytes'] / 1e6:,.1f} MB raw, {comp / 1e6:,.1f} MB gz "
          f"({gen_s:.1f} s)")
    # a fresh process, so peak RSS is the ingest's alone
    out = subprocess.run([sys.executable, __file__, "--ingest-only", str(cap), str(work / "store")],
                         check=True, capture_output=True, text=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    secs, lv = r["secs"], r["rows"].get("book_updates", 0)
    print(f"ingest: {secs:.2f} s wall, {r['cpu']:.2f} s CPU (all threads)  rows={r['rows']} "
          f"dropped={r['dropped']} rejected={r['rejected']} gaps={r['gaps']}")
    print(f"  level rows/s      {lv / secs:,.0f}")
    print(f"  all rows/s        {r['total'] / secs:,.0f}")
    print(f"  MB/s (gz input)   {comp / 1e6 / secs:,.1f}")
    print(f"  MB/s (raw JSON)   {info['raw_bytes'] / 1e6 / secs:,.1f}")
    print(f"  peak RSS          {r['rss_mb']:,.0f} MB (ingest process)")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
