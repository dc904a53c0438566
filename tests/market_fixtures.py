"""Tiny hand-made stores for the tests of forensics.market (issue 18)."""
from __future__ import annotations

import polars as pl

from forensics.schema import conform
from forensics.store import Instrument, Store

EX, SY = "binance-futures", "BTCUSDT"
T0 = 1_760_129_400_000_000_000          # 2025-10-10 20:50:00 UTC
S = 1_000_000_000
PD, SD = 1, 3                           # price in 0.1, size in 0.001


def new_store(root) -> Store:
    st = Store(root)
    st.save_instrument(Instrument(EX, SY, PD, SD, 0))
    return st


def write(st: Store, table: str, rows: list[dict], name: str = "t") -> None:
    df = pl.DataFrame(rows)
    st.write_partitioned(table, conform(table, df), EX, SY, name,
                         ts_column="start_ts" if table == "events" else "ts")


def top_rows(samples, grid_ns=S):
    """samples: (ts, bid_ticks, bid_lots, ask_ticks, ask_lots) -> book_top rows."""
    return [{"ts": t, "best_bid": b, "best_ask": a, "mid": b + a, "spread": a - b, "best_bid_size": qb,
             "best_ask_size": qa, "bid_levels": 1, "ask_levels": 1, "crossed": False, "locked": False,
             "valid": True, "grid_ns": grid_ns, "data_kind": "book"} for t, b, qb, a, qa in samples]


def trade_rows(trades):
    """trades: (ts, price_ticks, lots, aggressor)."""
    return [{"ts": t, "local_ts": t, "seq": i + 1, "trade_id": str(i), "price": p, "size": q, "aggressor": a}
            for i, (t, p, q, a) in enumerate(trades)]


def change_rows(changes):
    """changes: (ts, side, price_ticks, prev_lots, new_lots, traded_lots, cause)."""
    out = []
    for i, (t, side, p, prev, new, traded, cause) in enumerate(changes):
        d = new - prev
        added = max(d, 0)
        cancelled = max(-d, 0) - traded
        out.append({"ts": t, "seq": i + 1, "side": side, "price": p, "prev_size": prev, "size": new, "delta": d,
                    "added": added, "traded": traded, "cancelled": cancelled, "implied": 0, "cause": cause,
                    "is_snapshot": False})
    return out
