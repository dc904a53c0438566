"""Tardis.dev normalised CSV (``incremental_book_L2`` and ``trades``), plain or gzipped.

Traps:

* Timestamps are documented as microseconds, but exports with nanoseconds exist (the trades
  sample has 19-digit values): the unit is inferred per value (:func:`forensics.timeutil.to_ns_expr`).
* ``timestamp`` is the exchange time, ``local_timestamp`` Tardis' receive time; rows are in
  receive order, which is the arrival order kept in ``seq``.
* ``amount`` is the new absolute size at the level (0 = level removed).
* A run of ``is_snapshot=true`` rows after incremental rows is a resync (reconnection): the
  book is reset there, and the interval since the last incremental row is recorded as a gap.
* Tardis exchange ids are mapped to this project's venue+market names where they differ
  (:data:`EXCHANGE_NAMES`): ``binance`` -> ``binance-spot``, ``okex-swap`` -> ``okx-swap``,
  ``okex`` -> ``okx-spot``, ``bybit`` -> ``bybit-linear``, ``cryptofacilities`` ->
  ``kraken-futures``, ... (Tardis' ``bybit`` also holds the inverse contracts ``BTCUSD``: ingest
  those with ``--exchange bybit-inverse``). OKX derivative amounts are contracts, as the venue's.
* Trade ``side`` is the aggressor ('buy'/'sell'; 'unknown' is stored as null).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import polars as pl

from forensics.errors import ForensicsError
from forensics.ingest.csvblock import int_or_reject, is_header, read_block
from forensics.ingest.normalise import LINE_SHIFT, Chunk, Format, Reject, arrival_expr
from forensics.ingest.seqchain import gap_row
import re

from forensics.ingest.source import NameInfo, NameRule, Source, count_lines, prefetch
from forensics.timeutil import to_ns_expr

BOOK_COLS = ["exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"]
TRADE_COLS = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]
TIME_TYPES = {"timestamp": pl.Int64, "local_timestamp": pl.Int64}
EXCHANGE_NAMES = {"binance": "binance-spot", "okex-swap": "okx-swap", "okex": "okx-spot",
                  "okex-futures": "okx-futures",
                  # the venues of forensics/ingest/<venue>.py (issue 14): same names as their readers
                  "okex-options": "okx-option", "bybit": "bybit-linear", "bybit-spot": "bybit-spot",
                  "bybit-options": "bybit-option", "coinbase": "coinbase", "hyperliquid": "hyperliquid",
                  "kraken": "kraken", "cryptofacilities": "kraken-futures"}


def _venue(col: pl.Expr) -> pl.Expr:
    return col.str.to_lowercase().replace(EXCHANGE_NAMES)


def _lower(col: pl.Expr, *usual: str) -> pl.Expr:
    """``col.str.to_lowercase()``, with the usual values (already lower case) passed through
    by a cheap comparison instead of a string rewrite."""
    out = pl.when(col == usual[0]).then(pl.lit(usual[0]))
    for u in usual[1:]:
        out = out.when(col == u).then(pl.lit(u))
    return out.otherwise(col.str.to_lowercase())


def _constant(df: pl.DataFrame, col: str, fn) -> pl.Expr:
    """``fn(pl.col(col))``, computed once as a literal when the block has one value there."""
    s = df[col]
    if s.len() and s.null_count() == 0 and bool((s == s[0]).all()):
        return pl.lit(pl.select(fn(pl.lit(s[0], pl.Utf8))).item(), pl.Utf8)
    return fn(pl.col(col))


def _times(df: pl.DataFrame) -> tuple[pl.DataFrame, list]:
    df, r1 = int_or_reject(df, "timestamp", "timestamp")
    df, r2 = int_or_reject(df, "local_timestamp", "local_timestamp")
    return df.with_columns(to_ns_expr(pl.col("timestamp")).alias("ts"),
                           to_ns_expr(pl.col("local_timestamp")).alias("local_ts")), r1 + r2


def _venues(df: pl.DataFrame) -> pl.DataFrame:
    """Tardis exchange ids -> the store's venue names (``--exchange``/``--symbol``: the Writer)."""
    return df.with_columns(_venue(pl.col("exchange")).alias("exchange"))


#: what the readers hand over (the reader contract, forensics.ingest.contract)
BOOK_OUT = ["exchange", "symbol", "ts", "local_ts", "is_snapshot", "side", "price", "size", "arrival", "line"]
TRADE_OUT = ["exchange", "symbol", "ts", "local_ts", "trade_id", "price", "size", "aggressor", "arrival", "line"]


def _book_fast(df: pl.DataFrame, opts, prev_snapshot: bool | None, prev_ts: int | None) -> pl.DataFrame | None:
    """The whole conversion of a parsed block in one plan: timestamps, is_snapshot, venue
    names, arrival, and the resync marks (``__resync``: a snapshot row right after an
    incremental row; ``__prev_ts``: the time of the row before). None if any row would be
    rejected here: the block then takes :func:`_book_checked`, which words the rejects."""
    def ts_int(c: str) -> tuple[pl.Expr, pl.Expr]:
        if df[c].dtype == pl.Int64:  # read as integers already
            return pl.col(c), pl.lit(False)
        v = pl.col(c).str.strip_chars()
        parsed = v.cast(pl.Int64, strict=False)
        return parsed, parsed.is_null() & pl.col(c).is_not_null() & (v != "")
    t, t_bad = ts_int("timestamp")
    lt, lt_bad = ts_int("local_timestamp")
    # the usual spellings compared first (cheap); anything else lower-cased as before
    snap = _lower(pl.col("is_snapshot"), "true", "false")
    snap_bad = (~snap.is_in(["true", "false"])).fill_null(True)
    is_snap = snap == "true"
    ex = _constant(df, "exchange", _venue)
    sy = pl.col("symbol")
    out = df.lazy().select(
        ex.alias("exchange"), sy.alias("symbol"), t.alias("timestamp"), lt.alias("local_timestamp"),
        is_snap.alias("is_snapshot"), _lower(pl.col("side"), "bid", "ask").alias("side"), "price", "amount",
        "line", to_ns_expr(t).alias("ts"), to_ns_expr(lt).alias("local_ts"),
        arrival_expr(pl.col("line")).alias("arrival"), pl.col("amount").alias("size"),
        (is_snap & ~is_snap.shift(1, fill_value=True if prev_snapshot is None else prev_snapshot)).alias("__resync"),
        to_ns_expr(t).shift(1, fill_value=prev_ts).alias("__prev_ts"),
        (t_bad | lt_bad | snap_bad).alias("__bad"),
    ).collect()
    if out["__bad"].any():
        return None
    return out.drop("__bad")


def _book_checked(df: pl.DataFrame, opts, prev_snapshot: bool | None, prev_ts: int | None,
                  rejects: list[Reject]) -> pl.DataFrame:
    """:func:`_book_fast` step by step, rejecting bad rows with their line and reason."""
    df, r = _times(df)
    rejects += r
    snap = pl.col("is_snapshot").str.to_lowercase()
    bad_snap = (~snap.is_in(["true", "false"])).fill_null(True)
    for line, v in df.filter(bad_snap).select("line", "is_snapshot").iter_rows():
        rejects.append(Reject(line, f"is_snapshot must be true/false, got {v!r}"))
    df = df.filter(~bad_snap).with_columns((pl.col("is_snapshot").str.to_lowercase() == "true").alias("is_snapshot"))
    df = _venues(df).with_columns(
        arrival_expr(pl.col("line")).alias("arrival"),
        pl.col("side").str.to_lowercase().alias("side"),
        pl.col("amount").alias("size"))
    return df.with_columns(
        (pl.col("is_snapshot") & ~pl.col("is_snapshot").shift(
            1, fill_value=True if prev_snapshot is None else prev_snapshot)).alias("__resync"),
        pl.col("ts").shift(1, fill_value=prev_ts).alias("__prev_ts"))


#: read canonical blocks with the compiled scanner (:mod:`forensics.ingest.csvscan`); off: every
#: block takes the Polars CSV reader (the reference the scanner is tested against)
FAST_SCAN = True


def _book_scanned(block: bytes, first_line: int, skip_header: bool, opts, prev_snapshot: bool | None,
                  prev_ts: int | None, n_lines: int | None = None) -> pl.DataFrame | None:
    """:func:`_book_fast` of :func:`read_block` of a canonical block, read by the compiled
    scanner in one pass, with the exact columns already parsed (the Writer uses them). None
    for any other block."""
    start = 0
    if skip_header:  # the header must be the block's first line (else the general path)
        if not block[:1].isalpha():
            return None
        start = block.find(b"\n") + 1
        first_line += 1
    from forensics.ingest.csvscan import scan_book

    got = scan_book(block, start, None if n_lines is None else n_lines - (start > 0))
    if got is None:
        return None
    ts, snap, bid, sides, dec, prices, amounts, ex_name, sym_name = got
    n = len(snap)
    # the file's own names: --exchange/--symbol are applied by the Writer, once
    if ex_name not in _VENUES:
        _VENUES[ex_name] = pl.select(_venue(pl.lit(ex_name, pl.Utf8))).item()
    line = np.arange(first_line, first_line + n, dtype=np.int64)
    prev_ts_col = pl.Series("__prev_ts", np.concatenate([[0 if prev_ts is None else prev_ts], ts[0, :-1]]))
    if prev_ts is None:
        prev_ts_col = prev_ts_col.scatter(0, None)
    before = np.concatenate([[True if prev_snapshot is None else prev_snapshot], snap[:-1]])
    cols = {
        "exchange": pl.repeat(_VENUES[ex_name], n, dtype=pl.Utf8, eager=True),
        "symbol": pl.repeat(sym_name, n, dtype=pl.Utf8, eager=True),
        "ts": ts[0], "local_ts": ts[1], "is_snapshot": snap, "side": sides,
        "price": prices, "size": amounts, "arrival": line << LINE_SHIFT, "line": line,
        "__resync": snap & ~before, "__prev_ts": prev_ts_col,
    }
    for j, c in enumerate(("price", "size")):
        for i, k in enumerate(("digits", "raw", "sig")):
            cols[f"__{k}_{c}"] = dec[3 * j + i]  # a contiguous row of the scanner's (6, n) array
    return pl.DataFrame(cols)


_VENUES: dict[str, str] = {}


def read_book(src: Source, opts) -> Iterator[Chunk]:
    prev_snapshot, prev_ts = None, None  # last row of the previous block
    for first_line, block in src.blocks():
        skip = first_line == 1 and is_header(block, "exchange")
        n_lines = count_lines(block)
        df = _book_scanned(block, first_line, skip, opts, prev_snapshot, prev_ts, n_lines) if FAST_SCAN else None
        if df is not None:
            chunk = Chunk(lines=n_lines)
        else:
            df, rejects = read_block(block, first_line, BOOK_COLS, skip_header=skip, types=TIME_TYPES)
            chunk = Chunk(rejects=rejects, lines=n_lines)
        if df.height:
            if "__digits_price" not in df.columns:  # (read by the scanner: converted already)
                out = _book_fast(df, opts, prev_snapshot, prev_ts)
                df = out if out is not None else _book_checked(df, opts, prev_snapshot, prev_ts, chunk.rejects)
            # resync: a snapshot row right after an incremental row
            resync = df["__resync"]
            if resync.any():
                for row in df.filter(resync).iter_rows(named=True):
                    chunk.gaps.append(gap_row(row["exchange"], row["symbol"], "resync", row["__prev_ts"],
                                              row["arrival"], "snapshot after incremental updates (reconnect)",
                                              row["ts"], row["arrival"]))
            df = df.select(BOOK_OUT + [c for c in df.columns if c.startswith(("__digits_", "__raw_", "__sig_"))])
            if df.height:
                # (a last row without a timestamp is rejected by the Writer: no time to carry)
                prev_snapshot, prev_ts = bool(df["is_snapshot"][-1]), df["ts"][-1]
            chunk.tables["book_updates"] = df
        yield chunk


def read_trades(src: Source, opts) -> Iterator[Chunk]:
    for first_line, block in src.blocks():
        df, rejects = read_block(block, first_line, TRADE_COLS, skip_header=first_line == 1 and is_header(block, "exchange"))
        chunk = Chunk(rejects=rejects, lines=block.count(b"\n"))
        if df.height:
            df, r = _times(df)
            chunk.rejects += r
            side = pl.col("side").str.to_lowercase()
            df = _venues(df).with_columns(
                arrival_expr(pl.col("line")).alias("arrival"),
                pl.when(side == "unknown").then(None).otherwise(side).alias("aggressor"),
                pl.col("id").alias("trade_id"), pl.col("amount").alias("size"))
            chunk.tables["trades"] = df.select(TRADE_OUT)
        yield chunk


def _sniff(header: str):
    def sniff(head: bytes, info: NameInfo) -> bool:
        return head.lstrip().lower().startswith(header.encode())
    return sniff


def _no_header_reader(reader, kind):
    def read(src: Source, opts):
        head = src.head(4096)
        if not head.lstrip().lower().startswith(b"exchange,symbol,timestamp"):
            raise ForensicsError(f"{src.path}: Tardis {kind} CSV needs its header row")
        # parsed a block ahead in a thread, so parsing overlaps the Writer's work on the last one
        return prefetch(reader(src, opts), depth=1, name="forensics-parse")
    return read


#: Tardis.dev download names: binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz
NAMES = [NameRule(
    re.compile(r"^(?P<exchange>[a-z0-9-]+)_(?P<kind>incremental_book_L2|trades|quotes|book_snapshot_\d+|derivative_ticker)"
               r"_(?P<date>\d{4}-\d{2}-\d{2})_(?P<symbol>[^.]+)"),
    lambda m: NameInfo(m["exchange"], m["symbol"], m["date"], m["kind"]))]

FORMATS = [
    Format("tardis-book", "Tardis.dev incremental_book_L2 CSV (exchange,symbol,timestamp,local_timestamp,"
           "is_snapshot,side,price,amount)", _sniff(",".join(BOOK_COLS)), _no_header_reader(read_book, "book")),
    Format("tardis-trades", "Tardis.dev trades CSV (exchange,symbol,timestamp,local_timestamp,id,side,price,amount)",
           _sniff(",".join(TRADE_COLS)), _no_header_reader(read_trades, "trades")),
]
