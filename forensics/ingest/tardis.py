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

import polars as pl

from forensics.errors import ForensicsError
from forensics.ingest.csvblock import int_or_reject, is_header, read_block
from forensics.ingest.normalise import Chunk, Format, Reject, arrival_expr
from forensics.ingest.source import NameInfo, Source
from forensics.timeutil import to_ns_expr

BOOK_COLS = ["exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount"]
TRADE_COLS = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]
EXCHANGE_NAMES = {"binance": "binance-spot", "okex-swap": "okx-swap", "okex": "okx-spot",
                  "okex-futures": "okx-futures",
                  # the venues of forensics/ingest/<venue>.py (issue 14): same names as their readers
                  "okex-options": "okx-option", "bybit": "bybit-linear", "bybit-spot": "bybit-spot",
                  "bybit-options": "bybit-option", "coinbase": "coinbase", "hyperliquid": "hyperliquid",
                  "kraken": "kraken", "cryptofacilities": "kraken-futures"}


def _venue(col: pl.Expr) -> pl.Expr:
    return col.str.to_lowercase().replace(EXCHANGE_NAMES)


def _times(df: pl.DataFrame) -> tuple[pl.DataFrame, list]:
    df, r1 = int_or_reject(df, "timestamp", "timestamp")
    df, r2 = int_or_reject(df, "local_timestamp", "local_timestamp")
    return df.with_columns(to_ns_expr(pl.col("timestamp")).alias("ts"),
                           to_ns_expr(pl.col("local_timestamp")).alias("local_ts")), r1 + r2


def _overrides(df: pl.DataFrame, opts) -> pl.DataFrame:
    ex = pl.lit(opts.exchange) if opts.exchange else _venue(pl.col("exchange"))
    sy = pl.lit(opts.symbol) if opts.symbol else pl.col("symbol")
    return df.with_columns(ex.alias("exchange"), sy.alias("symbol"))


def read_book(src: Source, opts) -> Iterator[Chunk]:
    prev_snapshot, prev_ts = None, None  # last row of the previous block
    for first_line, block in src.blocks():
        df, rejects = read_block(block, first_line, BOOK_COLS, skip_header=first_line == 1 and is_header(block, "exchange"))
        chunk = Chunk(rejects=rejects, lines=block.count(b"\n"))
        if df.height:
            df, r = _times(df)
            chunk.rejects += r
            snap = df["is_snapshot"].str.to_lowercase()
            bad_snap = (~snap.is_in(["true", "false"])).fill_null(True)
            for line, v in df.filter(bad_snap).select("line", "is_snapshot").iter_rows():
                chunk.rejects.append(Reject(line, f"is_snapshot must be true/false, got {v!r}"))
            df = df.filter(~bad_snap).with_columns((pl.col("is_snapshot").str.to_lowercase() == "true").alias("is_snapshot"))
            df = _overrides(df, opts).with_columns(
                arrival_expr(pl.col("line")).alias("arrival"),
                pl.col("side").str.to_lowercase().alias("side"),
                pl.col("amount").alias("size"))
            # resync: a snapshot row right after an incremental row
            prev = df["is_snapshot"].shift(1, fill_value=prev_snapshot if prev_snapshot is not None else True)
            prev_t = df["ts"].shift(1, fill_value=prev_ts)
            starts = df.with_columns(prev.alias("__prev"), prev_t.alias("__prev_ts")).filter(
                pl.col("is_snapshot") & ~pl.col("__prev"))
            for row in starts.iter_rows(named=True):
                chunk.gaps.append({"exchange": row["exchange"], "symbol": row["symbol"],
                                   "ts_from": row["__prev_ts"], "ts_to": row["ts"],
                                   "arrival_from": row["arrival"], "arrival_to": row["arrival"],
                                   "reason": "resync", "detail": "snapshot after incremental updates (reconnect)"})
            if df.height:
                prev_snapshot, prev_ts = bool(df["is_snapshot"][-1]), int(df["ts"][-1])
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
            df = _overrides(df, opts).with_columns(
                arrival_expr(pl.col("line")).alias("arrival"),
                pl.when(side == "unknown").then(None).otherwise(side).alias("aggressor"),
                pl.col("id").alias("trade_id"), pl.col("amount").alias("size"))
            chunk.tables["trades"] = df
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
        return reader(src, opts)
    return read


FORMATS = [
    Format("tardis-book", "Tardis.dev incremental_book_L2 CSV (exchange,symbol,timestamp,local_timestamp,"
           "is_snapshot,side,price,amount)", _sniff(",".join(BOOK_COLS)), _no_header_reader(read_book, "book")),
    Format("tardis-trades", "Tardis.dev trades CSV (exchange,symbol,timestamp,local_timestamp,id,side,price,amount)",
           _sniff(",".join(TRADE_COLS)), _no_header_reader(read_trades, "trades")),
]
