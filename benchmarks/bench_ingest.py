"""Whole-step ingest throughput per format, against the bare decompressor. Figures, no asserts.

For each format a synthetic file is generated (gzip level 6 unless noted), then measured in
the same run:

* ``gzip -dc FILE > /dev/null``: the physical limit of a single-threaded decompressor;
* the decompression alone with the library ingest uses (isal / zlib-ng / zlib);
* the whole ``forensics ingest`` process (a fresh interpreter: start-up, sniffing, hashing,
  parsing, validation, Parquet writing, commit), its CPU time and peak RSS.

It prints rows/s, MB/s of compressed input, the share of the ingest wall time the decompression
alone takes, the ratio of the ingest wall time to ``gzip -dc`` and peak memory. Formats:

* ``tardis``: Tardis ``incremental_book_L2`` CSV (gz), one instrument, a snapshot then updates;
* ``binance``: Binance USD-M futures capture, hftbacktest collector lines (gz): ``depthUpdate``
  with ~20 levels per message, a REST snapshot near the start, aggTrades interleaved;
* ``daily``: Binance daily ``aggTrades`` CSV (zip, as data.binance.vision ships it).

    .venv/bin/python benchmarks/bench_ingest.py                      # 5 M rows per format
    .venv/bin/python benchmarks/bench_ingest.py --formats tardis --rows 50000000   # memory bound
    .venv/bin/python benchmarks/bench_ingest.py --formats tardis --block-mb 1,2,4,8,16
    .venv/bin/python benchmarks/bench_ingest.py --startup            # CLI start-up only
    .venv/bin/python benchmarks/bench_ingest.py --formats tardis --parquet   # part write settings
    .venv/bin/python benchmarks/bench_ingest.py --formats tardis,binance --profile  # per-thread breakdown
    .venv/bin/python benchmarks/bench_ingest.py --formats tardis --rows 50000000 --keep /tmp/b50 --reuse

``--profile`` runs the ingest once more in-process (:mod:`ingest_profile`) and prints the CPU
seconds of each thread (reader: decompression + hashing; parse: the format's scanner; main:
the Writer's validation and staging; part writer: Parquet encoding) and the Writer's step
timings. ``--reuse`` keeps a generated file found in ``--keep`` (the 50 M-row file takes
minutes to write).

``--parquet`` also times writing one stored part with the ingest's part settings
(:func:`forensics.ingest.normalise.write_part`: zstd 1, delta-encoded integers) against the
Polars default (zstd 3, dictionaries), CPU time of this process, best of 5.
"""
from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
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


def generate_binance(path: Path, levels: int, seed: int = 7, per_side_max: int = 40, trade_every: int = 4) -> dict:
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
    return {"rows": total, "what": f"{total:,} level rows in {n_msg:,} depth messages + {nt:,} aggTrades",
            "raw_bytes": len(data)}


def _gzip_writer(path: Path, rows: int):
    """gzip level 6 (as exports are); files over 10 M rows with isal (same format, much faster
    to write) so the 50 M file does not take an hour to generate."""
    if rows > 10_000_000:
        try:
            from isal import igzip
            return igzip.open(path, "wb", compresslevel=3)
        except ImportError:
            pass
    return gzip.open(path, "wb", compresslevel=6)


def generate_tardis(path: Path, rows: int, seed: int = 7, piece: int = 1_000_000) -> dict:
    """Tardis incremental_book_L2 CSV: 1000 snapshot rows then updates, written in pieces (the
    generator's memory does not grow with ``rows``)."""
    rng = np.random.default_rng(seed)
    raw = 0
    t_last, mid_last = 1_760_054_400_000_000, 1_200_000
    with _gzip_writer(path, rows) as fh:
        head = b"exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
        fh.write(head)
        raw += len(head)
        for start in range(0, rows, piece):
            n = min(piece, rows - start)
            ts = t_last + np.cumsum(rng.integers(0, 3, n)) * 100
            mid = mid_last + np.cumsum(rng.integers(-1, 2, n)) // 50
            t_last, mid_last = int(ts[-1]), int(mid[-1])
            bid = rng.integers(0, 2, n) == 0
            px = np.where(bid, mid - rng.integers(1, 2000, n), mid + rng.integers(1, 2000, n))
            snap = np.arange(start, start + n) < 1000
            df = pl.DataFrame({"ts": ts, "local": ts + rng.integers(1000, 5000, n), "snap": snap, "bid": bid,
                               "px": px, "qty": rng.integers(0, 50_000, n)})
            lines = df.select(fmt("binance-futures,BTCUSDT,{},{},{},{},{}.{},{}.{}", "ts", "local",
                                  pl.when(pl.col("snap")).then(pl.lit("true")).otherwise(pl.lit("false")),
                                  pl.when(pl.col("bid")).then(pl.lit("bid")).otherwise(pl.lit("ask")),
                                  pl.col("px") // 10, pl.col("px") % 10, pl.col("qty") // 1000,
                                  (pl.col("qty") % 1000).cast(pl.Utf8).str.pad_start(3, "0")).alias("l"))
            buf = io.BytesIO()
            lines.write_csv(buf, include_header=False, quote_style="never")
            fh.write(buf.getvalue())
            raw += buf.tell()
    return {"rows": rows, "what": f"{rows:,} book rows", "raw_bytes": raw}


def generate_aggtrades(path: Path, rows: int, seed: int = 7) -> dict:
    """Binance daily aggTrades CSV with header, zipped as data.binance.vision ships it."""
    rng = np.random.default_rng(seed)
    t0 = 1_760_054_400_000
    px = 1_200_000 + np.cumsum(rng.integers(-2, 3, rows))
    first = 6_500_000_000 + np.cumsum(rng.integers(1, 4, rows))
    df = pl.DataFrame({"id": 2_800_000_000 + np.arange(rows), "px": px, "q": rng.integers(1, 50_000, rows),
                       "f": first, "l": first + rng.integers(0, 3, rows),
                       "t": t0 + np.arange(rows) * 86_400_000 // max(rows, 1),
                       "m": rng.integers(0, 2, rows).astype(bool)})
    lines = df.select(fmt("{},{}.{},{}.{},{},{},{},{}", "id", pl.col("px") // 10, pl.col("px") % 10,
                          pl.col("q") // 1000, (pl.col("q") % 1000).cast(pl.Utf8).str.pad_start(3, "0"),
                          "f", "l", "t", pl.when(pl.col("m")).then(pl.lit("true")).otherwise(pl.lit("false"))
                          ).alias("l"))
    buf = io.BytesIO()
    buf.write(b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n")
    lines.write_csv(buf, include_header=False, quote_style="never")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(path.name.replace(".zip", ".csv"), buf.getvalue())
    return {"rows": rows, "what": f"{rows:,} aggTrades", "raw_bytes": buf.tell()}


FORMATS = {
    "tardis": ("binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz", generate_tardis, "book_updates"),
    "binance": ("btcusdt_20251010.gz", generate_binance, "book_updates"),
    "daily": ("BTCUSDT-aggTrades-2025-10-10.zip", generate_aggtrades, "trades"),
}

#: run by the measured subprocess: the real CLI, with the block size under test
#: (its peak RSS is read from its own /proc status at exit: a forked child's ru_maxrss starts at
#: the parent's, which holds the generated data)
CLI = ("import atexit, os, sys, forensics.ingest.source as s; s.BLOCK_BYTES = int(sys.argv.pop(1)); "
       "atexit.register(lambda: open(os.environ['BENCH_STATUS'], 'w').write(open('/proc/self/status').read())); "
       "from forensics.cli import main; sys.argv[0] = 'forensics'; main()")


def _timed(cmd: list[str], **kw) -> tuple[float, float, float]:
    """Run ``cmd``; (wall s, CPU s of the child, peak RSS MB of the child, or of the parent
    if that was larger at the fork)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed with {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def gzip_dc(path: Path) -> tuple[float, float]:
    """Wall and CPU time of ``gzip -dc`` (``unzip -p`` for a zip) to /dev/null."""
    cmd = ["unzip", "-p", str(path)] if path.suffix == ".zip" else ["gzip", "-dc", str(path)]
    if shutil.which(cmd[0]) is None:
        return float("nan"), float("nan")
    return _timed(cmd, stdout=subprocess.DEVNULL)[:2]


def decompress_only(path: Path) -> tuple[float, str]:
    """Seconds to decompress with what ingest uses, in this thread, output discarded."""
    from forensics.ingest.source import GZIP_BACKEND, Source
    src = Source(path)
    t = time.perf_counter()
    for fh in src._raw_streams():
        while fh.read(8 << 20):
            pass
    return time.perf_counter() - t, GZIP_BACKEND if src.compression == "gzip" else "zipfile (zlib)"


def ingest_process(path: Path, store: Path, block_bytes: int) -> dict:
    if store.exists():
        shutil.rmtree(store)
    path, store = path.resolve(), store.resolve()
    status = store.parent / f".{store.name}.status"
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo, "BENCH_STATUS": str(status)}
    # run in the benchmark's own checkout: `python -c` puts the working directory first on
    # sys.path, so run from another checkout it would measure that one's code
    wall, cpu, _ = _timed([sys.executable, "-c", CLI, str(block_bytes), "ingest", "-q", "--store", str(store),
                           str(path)], env=env, stdout=subprocess.DEVNULL, cwd=repo)
    rss = next(int(ln.split()[1]) / 1024 for ln in status.read_text().splitlines() if ln.startswith("VmHWM:"))
    m = pl.read_parquet(store / "manifest" / "*.parquet")
    return {"secs": wall, "cpu": cpu, "rss_mb": rss, "rows": int(m["rows"].sum()),
            "book": int(m["book_rows"].sum()), "trades": int(m["trade_rows"].sum()),
            "rejected": int(m["rejected"].sum())}


def parquet_settings(store: Path, table: str) -> None:
    """CPU time and size of writing one stored part: ingest settings vs the Polars default."""
    from forensics.ingest.normalise import write_part
    parts = sorted((store / table).rglob("*.parquet"), key=lambda p: p.stat().st_size)
    if not parts:
        return
    df = pl.read_parquet(parts[-1])
    out = store.parent / ".bench-part.parquet"
    for name, fn in (("polars default (zstd 3, dictionaries)", lambda: df.write_parquet(out, compression="zstd")),
                     ("ingest write_part (zstd 1, delta ints)", lambda: write_part(df, out))):
        best = float("inf")
        for _ in range(5):
            c = time.process_time()
            fn()
            best = min(best, time.process_time() - c)
        print(f"    part write {name:40s} {best * 1e3:6.1f} ms CPU for {df.height:,} rows "
              f"({df.height / best / 1e6:5.1f} M rows/s), {out.stat().st_size / 1e6:.1f} MB")
    out.unlink()


def startup() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with tempfile.TemporaryDirectory() as d:
        for args in (["--help"], ["sql", "--store", d, "select 1"]):
            walls = [_timed([sys.executable, "-m", "forensics", *args], env=env, stdout=subprocess.DEVNULL)
                     for _ in range(5)]
            best = min(walls)
            print(f"forensics {' '.join(a if a != d else 'STORE' for a in args):28s} "
                  f"best of 5: {best[0]:.3f} s wall, {best[1]:.3f} s CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--formats", default="tardis,binance,daily", help="comma separated: " + ",".join(FORMATS))
    ap.add_argument("--rows", type=int, default=5_000_000, help="rows per format (level rows for binance)")
    ap.add_argument("--block-mb", default=None, help="block sizes to compare, e.g. 1,2,4,8,16 (default: the "
                    "ingest default)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", default=None, help="keep the files and stores in this directory")
    ap.add_argument("--startup", action="store_true", help="only measure CLI start-up")
    ap.add_argument("--parquet", action="store_true", help="also compare Parquet part write settings")
    ap.add_argument("--profile", action="store_true", help="also print CPU per thread and Writer step timings")
    ap.add_argument("--reuse", action="store_true", help="reuse a generated file found in --keep")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if args.startup:
        startup()
        return
    from forensics.ingest.source import BLOCK_BYTES
    blocks = [int(float(x) * (1 << 20)) for x in args.block_mb.split(",")] if args.block_mb else [BLOCK_BYTES]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    try:
        for name in args.formats.split(","):
            fname, gen, table = FORMATS[name]
            path = work / fname
            t = time.perf_counter()
            if args.reuse and path.exists():
                info = {"what": f"{path.name} (reused, --rows not checked)", "raw_bytes": float("nan")}
            else:
                info = gen(path, args.rows, args.seed)
            comp = path.stat().st_size
            print(f"\n[{name}] {info['what']}: {info['raw_bytes'] / 1e6:,.1f} MB raw, {comp / 1e6:,.1f} MB "
                  f"compressed (generated in {time.perf_counter() - t:.1f} s)")
            for bb in blocks:
                dc, dc_cpu = gzip_dc(path)
                dec, lib = decompress_only(path)
                r = ingest_process(path, work / f"store-{name}", bb)
                rows = r["book"] if table == "book_updates" else r["trades"]
                print(f"  block {bb / (1 << 20):g} MB: ingest {r['secs']:.2f} s wall, {r['cpu']:.2f} s CPU "
                      f"(all threads); {r['rows']:,} rows stored, {r['rejected']} rejected")
                print(f"    {'level ' if name == 'binance' else ''}rows/s {rows / r['secs']:>14,.0f}")
                print(f"    MB/s compressed  {comp / 1e6 / r['secs']:>10,.1f}")
                print(f"    decompression    {dec:.2f} s with {lib} = {dec / r['secs']:.0%} of the ingest wall time")
                print(f"    {'gzip -dc' if path.suffix != '.zip' else 'unzip -p'} > /dev/null {dc:.2f} s wall, "
                      f"{dc_cpu:.2f} s CPU: ingest/that = {r['secs'] / dc:.2f}x wall, {r['cpu'] / dc_cpu:.2f}x CPU")
                print(f"    peak RSS         {r['rss_mb']:,.0f} MB (ingest process, {rows / 1e6:g} M rows)")
            if args.profile:
                env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
                print("  profile (in-process, same file):")
                subprocess.run([sys.executable, str(Path(__file__).with_name("ingest_profile.py")),
                                str(work / f"store-{name}-profile"), str(path)], env=env, check=True)
                shutil.rmtree(work / f"store-{name}-profile", ignore_errors=True)
            if args.parquet:
                parquet_settings(work / f"store-{name}", table)
    finally:
        if not args.keep:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
