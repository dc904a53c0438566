"""Lower bounds of each ingest stage on this machine, in one run, on bench_ingest.py's files.

What would ANY implementation built on polars/pyarrow need, at least, to ingest the file? Each
stage is timed alone, the input already in memory where it is not the stage under test, no
validation, no exactness checks, no idempotence (except where named):

Tardis book CSV (gz):
  * ``gzip -dc FILE > /dev/null`` (the single-threaded decompressor, a separate process);
  * the in-process decompressor ingest uses (:data:`forensics.ingest.source.GZIP_BACKEND`),
    alone, and with the SHA-256 of the decompressed content (the idempotence digest);
  * Polars' own multi-threaded ``pl.read_csv`` of the decompressed bytes with the Tardis schema
    (price/amount as Float64, then as String), no validation;
  * ``read_csv`` + writing the stored columns with the store's part settings
    (:func:`forensics.ingest.normalise.write_part`: zstd 1, delta integers), in 8 MB blocks
    as ingest writes them; and the whole-file single ``write_part`` for comparison.

Binance capture lines (gz):
  * ``gzip -dc``, the in-process decompressor;
  * ``pl.read_ndjson`` of the depth lines' JSON (receive-time prefixes cut off beforehand, not
    timed) with the depth schema, then ``explode`` of the b/a level arrays to one row per level,
    then ``str.to_decimal`` of the price/qty strings (exact, scale 8), then ``write_part``;
  * ``orjson.loads`` of every line (one Python call per line);
  * the project's compiled ``depthUpdate`` scanner (:func:`forensics.ingest.jsonscan.scan_depth`)
    alone, per 8 MB block, for comparison.

For each stage: wall seconds, CPU seconds of this process (all threads), rows/s on wall. The
implied ceiling on this machine: a pipeline cannot beat the serial decompressor's time, nor
the sum of the stages' CPU spread over the cores, so

    ceiling rows/s = rows / max(decompress CPU, sum of stage CPU / cores)

printed with and without the digest, and with the interpreter start-up added (a fresh
``python -c 'import numpy, polars, pyarrow, pyarrow.parquet'``: paid by every ingest process
before its first row) (CPU seconds, not wall: the decompressor is one thread, so
idle its wall equals its CPU, and CPU times stay comparable on a loaded machine). Figures, no asserts.

    PYTHONPATH=. python benchmarks/bench_ingest.py --formats tardis,binance --rows 5000000 --keep /tmp/b5
    PYTHONPATH=. python benchmarks/ingest_floor.py --keep /tmp/b5
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_ingest import FORMATS

BLOCK = 8 << 20
START = (0.0, 0.0)  # interpreter start-up (wall, CPU), measured by main()
TARDIS_COLS = ["exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"]


def timed(fn, repeat: int = 1):
    """(wall s, CPU s of this process over all threads, result), best wall of ``repeat``."""
    best = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        r = (time.perf_counter() - w, time.process_time() - c, out)
        if best is None or r[0] < best[0]:
            best = r
    return best


def gzip_dc(path: Path) -> tuple[float, float]:
    t = time.perf_counter()
    p = subprocess.Popen(["gzip", "-dc", str(path)], stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("gzip -dc failed")
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime


def startup() -> tuple[float, float]:
    """Wall and CPU of a fresh interpreter importing what any polars/pyarrow ingest needs
    (best of 3): paid once per ``forensics ingest`` process, before the first row."""
    best = (float("inf"), float("inf"))
    for _ in range(3):
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-c", "import numpy, polars, pyarrow, pyarrow.parquet"])
        _, _, ru = os.wait4(p.pid, 0)
        best = min(best, (time.perf_counter() - t, ru.ru_utime + ru.ru_stime))
    return best


def decompress(path: Path, digest: bool) -> bytes:
    """The whole content, decoded as ingest decodes it (its gzip stream class), 8 MB reads."""
    from forensics.ingest.source import Source

    out = []
    h = hashlib.sha256() if digest else None
    for fh in Source(path)._raw_streams():
        while True:
            buf = fh.read(BLOCK)
            if not buf:
                break
            if h is not None:
                h.update(buf)
            out.append(buf)
    return b"".join(out)


def blocks_of(data: bytes) -> list[bytes]:
    """Blocks of whole lines, ~8 MB (as ingest cuts them)."""
    out, p = [], 0
    while p < len(data):
        q = data.rfind(b"\n", p, p + BLOCK)
        q = len(data) - 1 if q < 0 or p + BLOCK >= len(data) else q
        out.append(data[p:q + 1])
        p = q + 1
    return out


class Report:
    def __init__(self, rows: int, comp: int):
        self.rows, self.comp, self.lines = rows, comp, []

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.lines.append((name, wall, cpu))
        print(f"    {name:58s} {wall:6.2f} s wall {cpu:6.2f} s CPU {self.rows / wall / 1e6:7.2f} M rows/s "
              f"{self.comp / 1e6 / wall:7.1f} MB/s gz", flush=True)

    def ceiling(self, what: str, dec_cpu: float, cpus: list[float]) -> None:
        """The serial decompressor's CPU time stands for its idle wall time (one thread, so
        equal when the machine is idle; on a loaded machine wall times are inflated, CPU
        times are not). Plus the interpreter start-up (:func:`startup`, CPU), which a
        whole ``forensics ingest`` process pays before any row."""
        cores = os.cpu_count() or 1
        bound = max(dec_cpu, sum(cpus) / cores)
        print(f"    ceiling ({what}):\n      max({dec_cpu:.2f} s decompress CPU, {sum(cpus):.2f} s CPU / {cores} cores) "
              f"= {bound:.2f} s -> {self.rows / bound / 1e6:.2f} M rows/s; with the {START[1]:.2f} s start-up: "
              f"{self.rows / (bound + START[1]) / 1e6:.2f} M rows/s", flush=True)


def stored_frame(df: pl.DataFrame, seq0: int) -> pl.DataFrame:
    """The stored book_updates columns from a read_csv frame (price x10, amount x1000 as ints:
    the bench files' decimals; a floor, not exact for other data)."""
    return df.select(
        (pl.col("timestamp") * 1000).alias("ts"), (pl.col("local_timestamp") * 1000).alias("local_ts"),
        (pl.int_range(pl.len(), dtype=pl.Int64) + seq0).alias("seq"),
        *[pl.lit(None, pl.Int64).alias(c) for c in ("update_id", "first_update_id", "prev_update_id")],
        "is_snapshot", "side", (pl.col("price") * 10).round().cast(pl.Int64).alias("price"),
        (pl.col("amount") * 1000).round().cast(pl.Int64).alias("size"))


def tardis(path: Path, work: Path, repeat: int) -> None:
    from forensics.ingest.normalise import write_part
    from forensics.ingest.source import GZIP_BACKEND

    comp = path.stat().st_size
    dc = gzip_dc(path)
    w, c, data = timed(lambda: decompress(path, False), repeat)
    rows = data.count(b"\n") - 1
    print(f"\n[tardis] {path.name}: {rows:,} rows, {len(data) / 1e6:.1f} MB raw, {comp / 1e6:.1f} MB gz")
    rep = Report(rows, comp)
    rep.add("gzip -dc > /dev/null (separate process)", *dc)
    rep.add(f"{GZIP_BACKEND} decompress alone (in-process, 8 MB reads)", w, c)
    dec = (w, c)
    data = None
    w, c, data = timed(lambda: decompress(path, True), repeat)
    rep.add(f"{GZIP_BACKEND} decompress + SHA-256 of the content", w, c)
    digest = c - dec[1]
    schema_f = dict(zip(TARDIS_COLS, [pl.String, pl.String, pl.Int64, pl.Int64, pl.Boolean, pl.String,
                                      pl.Float64, pl.Float64]))
    schema_s = {**schema_f, "price": pl.String, "amount": pl.String}
    w, c, df = timed(lambda: pl.read_csv(data, schema=schema_f), repeat)
    rep.add("pl.read_csv whole file, float price (multi-threaded)", w, c)
    parse_f = c
    w, c, _ = timed(lambda: pl.read_csv(data, schema=schema_s), repeat)
    rep.add("pl.read_csv whole file, string price", w, c)
    blocks = blocks_of(data)
    data = None
    head = blocks[0].split(b"\n", 1)
    blocks[0] = head[1]

    def per_block(write: bool):
        seq = 0
        for i, b in enumerate(blocks):
            d = pl.read_csv(b, has_header=False, new_columns=TARDIS_COLS, schema=schema_f)
            if write:
                write_part(stored_frame(d, seq), work / f"part-{i}.parquet")
            seq += d.height
        return seq

    w, c, _ = timed(lambda: per_block(False), repeat)
    rep.add(f"pl.read_csv per 8 MB block ({len(blocks)} blocks), float price", w, c)
    parse_b = c
    w, c, _ = timed(lambda: per_block(True), repeat)
    rep.add("  + stored columns + write_part (zstd 1, delta ints) per block", w, c)
    write_b = c - parse_b
    sf = stored_frame(df, 0)
    w, c, _ = timed(lambda: write_part(sf, work / "whole.parquet"), repeat)
    rep.add("write_part of the whole file's stored columns alone", w, c)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    scan = None
    try:
        from forensics.ingest.csvscan import scan_book

        scan_book(blocks[1][:100_000].rsplit(b"\n", 1)[0] + b"\n")  # load the kernels
        w, c, _ = timed(lambda: [scan_book(b) for b in blocks], repeat)
        rep.add("csvscan.scan_book per 8 MB block (the project's scanner, exact)", w, c)
        scan = c
    except ImportError:
        pass
    rep.ceiling("decompress + read_csv + write_part, no digest", dec[1], [dec[1], parse_b, write_b])
    rep.ceiling("the same + SHA-256 digest", dec[1], [dec[1], digest, parse_b, write_b])
    rep.ceiling("decompress + whole-file read_csv only", dec[1], [dec[1], parse_f])
    if scan is not None:
        rep.ceiling("decompress + digest + the project's exact scan + write_part", dec[1],
                    [dec[1], digest, scan, write_b])


DEPTH_SCHEMA = {"stream": pl.String, "data": pl.Struct({
    "e": pl.String, "E": pl.Int64, "T": pl.Int64, "s": pl.String, "U": pl.Int64, "u": pl.Int64,
    "pu": pl.Int64, "b": pl.List(pl.List(pl.String)), "a": pl.List(pl.List(pl.String))})}


def binance(path: Path, work: Path, repeat: int) -> None:
    import orjson

    from forensics.ingest.normalise import write_part
    from forensics.ingest.source import GZIP_BACKEND

    comp = path.stat().st_size
    dc = gzip_dc(path)
    w, c, data = timed(lambda: decompress(path, False), repeat)
    dec = (w, c)
    lines = data.split(b"\n")
    bodies = [ln[ln.index(b"{"):] for ln in lines if b"depthUpdate" in ln]
    depth_json = b"\n".join(bodies) + b"\n"
    levels = sum(orjson.loads(b)["data"]["b"].__len__() + orjson.loads(b)["data"]["a"].__len__() for b in bodies)
    print(f"\n[binance] {path.name}: {levels:,} level rows in {len(bodies):,} depth lines "
          f"({len(lines) - 1:,} lines), {len(data) / 1e6:.1f} MB raw, {comp / 1e6:.1f} MB gz")
    rep = Report(levels, comp)
    rep.add("gzip -dc > /dev/null (separate process)", *dc)
    rep.add(f"{GZIP_BACKEND} decompress alone (in-process, 8 MB reads)", *dec)
    w, c, _ = timed(lambda: decompress(path, True), repeat)
    rep.add(f"{GZIP_BACKEND} decompress + SHA-256 of the content", w, c)
    digest = c - dec[1]
    w, c, _ = timed(lambda: [orjson.loads(b) for b in bodies], repeat)
    rep.add("orjson.loads of every depth line (Python loop)", w, c)
    dblocks = blocks_of(depth_json)
    w, c, _ = timed(lambda: [pl.read_ndjson(b, schema=DEPTH_SCHEMA) for b in dblocks], repeat)
    rep.add(f"pl.read_ndjson per 8 MB block ({len(dblocks)} blocks), depth schema", w, c)
    nd = c

    def explode(b: bytes) -> pl.DataFrame:
        d = pl.read_ndjson(b, schema=DEPTH_SCHEMA).unnest("data")
        d = d.select("T", "U", "u", "pu", pl.concat_list(
            pl.col("b").list.eval(pl.element().list.concat(pl.lit(["b"]))),
            pl.col("a").list.eval(pl.element().list.concat(pl.lit(["a"])))).alias("lv")).explode("lv")
        return d.select("T", "U", "u", "pu", pl.col("lv").list.get(2).alias("side"),
                        pl.col("lv").list.get(0).alias("price"), pl.col("lv").list.get(1).alias("size"))

    w, c, _ = timed(lambda: [explode(b) for b in dblocks], repeat)
    rep.add("  + explode b/a to one row per level", w, c)
    ex = c - nd

    def to_dec(b: bytes) -> pl.DataFrame:
        return explode(b).with_columns(pl.col("price").str.to_decimal(scale=8), pl.col("size").str.to_decimal(scale=8))

    w, c, _ = timed(lambda: [to_dec(b) for b in dblocks], repeat)
    rep.add("  + str.to_decimal(scale=8) of price and qty (exact)", w, c)
    dc_cpu = c - nd - ex

    def written(b: bytes, i: int) -> None:
        d = to_dec(b)
        d = d.select((pl.col("T") * 1_000_000).alias("ts"), (pl.col("T") * 1_000_000).alias("local_ts"),
                     pl.int_range(pl.len(), dtype=pl.Int64).alias("seq"), pl.col("u").alias("update_id"),
                     pl.col("U").alias("first_update_id"), pl.col("pu").alias("prev_update_id"),
                     pl.lit(False).alias("is_snapshot"),
                     pl.when(pl.col("side") == "b").then(pl.lit("bid")).otherwise(pl.lit("ask")).alias("side"),
                     pl.col("price").cast(pl.Decimal(18, 1)).to_physical().cast(pl.Int64).alias("price"),
                     pl.col("size").cast(pl.Decimal(18, 3)).to_physical().cast(pl.Int64).alias("size"))
        write_part(d, work / f"part-{i}.parquet")

    w, c, _ = timed(lambda: [written(b, i) for i, b in enumerate(dblocks)], repeat)
    rep.add("  + stored columns + write_part (zstd 1, delta ints)", w, c)
    wr = c - nd - ex - dc_cpu
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    scan = None
    try:
        from forensics.ingest.jsonscan import scan_depth

        raw_blocks = blocks_of(data)
        scan_depth(raw_blocks[0][:100_000].rsplit(b"\n", 1)[0] + b"\n")  # load the kernels
        w, c, _ = timed(lambda: [scan_depth(b) for b in raw_blocks], repeat)
        rep.add(f"jsonscan.scan_depth per 8 MB block ({len(raw_blocks)} blocks, the project's scanner, exact)", w, c)
        scan = c
    except ImportError:
        pass
    rep.ceiling("decompress + read_ndjson + explode + to_decimal + write_part, no digest", dec[1],
                [dec[1], nd, ex, dc_cpu, wr])
    rep.ceiling("the same + SHA-256 digest", dec[1], [dec[1], digest, nd, ex, dc_cpu, wr])
    rep.ceiling("decompress + read_ndjson only", dec[1], [dec[1], nd])
    if scan is not None:
        rep.ceiling("decompress + digest + the project's exact scan + write_part", dec[1],
                    [dec[1], digest, scan, wr])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", required=True, help="bench_ingest.py --keep directory holding the generated files")
    ap.add_argument("--formats", default="tardis,binance")
    ap.add_argument("--repeat", type=int, default=1, help="best wall of N per stage")
    args = ap.parse_args()
    keep = Path(args.keep)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start, polars {pl.__version__} "
          f"({pl.thread_pool_size()} threads)")
    global START
    START = startup()
    print(f"start-up: python -c 'import numpy, polars, pyarrow, pyarrow.parquet' {START[0]:.2f} s wall, "
          f"{START[1]:.2f} s CPU (best of 3)")
    work = Path(tempfile.mkdtemp(prefix="ingest_floor_", dir=keep))
    try:
        for name in args.formats.split(","):
            path = keep / FORMATS[name][0]
            if not path.exists():
                raise SystemExit(f"{path} missing: run bench_ingest.py --formats {name} --keep {keep} first")
            (tardis if name == "tardis" else binance)(path, work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
