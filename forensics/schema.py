"""Table schemas of the store (the contract in shared/design.md, extended).

Storage units: timestamps int64 UTC ns; ``price``-kind columns int64 counts of the
instrument's tick unit (10**-price_decimals); ``size``-kind columns int64 counts of its lot
unit (10**-size_decimals); ``price2`` columns hold twice a price (a mid is (bid+ask), exact in
integers). The SQL views (``store.connect``) turn those into exact DECIMALs in real units.

Partition columns ``exchange``, ``symbol``, ``date`` are not stored in the files; they come
from the hive directory names.
"""
from __future__ import annotations

import polars as pl

from forensics.depth_params import DepthParams
from forensics.vocab import Aggressor, Side

I64, F64, STR, BOOL = pl.Int64, pl.Float64, pl.Utf8, pl.Boolean

#: table -> ordered {column: dtype} as stored in Parquet (partition columns excluded)
#: depth bands (% of mid) computed by default (their one home and reason:
#: :class:`forensics.depth_params.DepthParams`, section ``[depth]``), for depth, detect and reports
DEFAULT_BANDS: tuple[str, ...] = DepthParams.bands

TABLES: dict[str, dict[str, pl.DataType]] = {
    "book_updates": {
        "ts": I64, "local_ts": I64, "seq": I64, "update_id": I64, "first_update_id": I64,
        "prev_update_id": I64, "is_snapshot": BOOL, "side": STR, "price": I64, "size": I64,
    },
    "trades": {
        "ts": I64, "local_ts": I64, "seq": I64, "trade_id": STR, "price": I64, "size": I64,
        "aggressor": STR,
        "hidden": BOOL,  # execution of a hidden order (LOBSTER type 5): never a fill of visible depth
    },
    "quotes": {
        "ts": I64, "local_ts": I64, "seq": I64, "update_id": I64, "best_bid": I64,
        "best_bid_size": I64, "best_ask": I64, "best_ask_size": I64,
    },
    "depth_bands": {
        "ts": I64, "seq": I64, "side": STR, "band_pct": F64, "qty": F64, "notional": F64,
    },
    "gaps": {
        "ts_from": I64, "ts_to": I64, "seq_from": I64, "seq_to": I64, "reason": STR,
        "source": STR, "detail": STR,
    },
    # ground truth per book change (LOBSTER ingest): truth in traded/cancelled/added/out_of_view;
    # same ts/seq as its book_updates row; delta in lots
    "labels_level_changes": {
        "ts": I64, "seq": I64, "side": STR, "price": I64, "delta": I64, "truth": STR,
    },
    # ---- derived (written by forensics.book / attribution / detect) ----------------------
    # one row per grid time x side x band; qty null while the book is unknown (gap/no snapshot)
    "depth": {
        "ts": I64, "side": STR, "band_pct": F64, "qty": I64, "notional": F64, "levels": I64,
        "grid_ns": I64, "data_kind": STR,  # 'book' (replayed levels) | 'bands' (pre-aggregated)
    },
    # one row per grid time; prices null while unknown; crossed/locked flagged, never hidden
    "book_top": {
        "ts": I64, "best_bid": I64, "best_ask": I64, "mid": I64, "spread": I64,
        "best_bid_size": I64, "best_ask_size": I64, "bid_levels": I64, "ask_levels": I64,
        "crossed": BOOL, "locked": BOOL, "valid": BOOL, "grid_ns": I64, "data_kind": STR,
    },
    # one row per book update (arrival order); decreases split into traded + cancelled
    "level_changes": {
        "ts": I64, "seq": I64, "side": STR, "price": I64, "prev_size": I64, "size": I64,
        "delta": I64, "added": I64, "traded": I64, "cancelled": I64, "implied": I64, "cause": STR,
        "is_snapshot": BOOL,  # the row diffs a snapshot against the book before it
    },
    # one row per detected cliff (metrics columns may be extended by forensics.detect)
    "events": {
        "event_id": STR, "start_ts": I64, "end_ts": I64, "sides": STR, "label": STR,
        "confidence": F64, "data_kind": STR, "evidence": STR,
        # metrics (forensics.detect; units in its docstring)
        "trigger": STR, "window_from": I64, "window_to": I64, "band_pct": F64, "bid_floor": I64,
        "ask_cap": I64, "depth_before_bid": I64, "depth_after_bid": I64, "depth_before_ask": I64,
        "depth_after_ask": I64, "removed_frac_bid": F64, "removed_frac_ask": F64, "removed_frac": F64,
        "speed_ms": F64, "levels_hit": I64, "traded_qty": I64, "cancelled_qty": I64, "added_qty": I64,
        "implied_qty": I64, "traded_share": F64, "traded_share_net": F64, "other_side_fell": BOOL,
        "side_lag_ms": F64, "spread_before": I64, "spread_after": I64, "mid_before": I64,
        "mid_after": I64, "price_move_bps": F64, "price_move_after_bps": F64, "recovery_ms": F64,
        "impact_before": F64, "impact_after": F64, "vacuum_ratio": F64, "sync_share_500ms": F64,
        "levels_emptied_500ms": I64, "erosion_corr": F64, "trade_volume": I64, "gap_share": F64,
        "flicker_pairs": I64,
        # the run that produced the event (table runs: its parameters; null for events written
        # before runs were recorded, or by the library's detect() without forensics.runs)
        "run_id": STR,
    },
    # one row per incident x venue (forensics.incidents): events of one asset across venues;
    # times UTC ns (onset on the common clock), *_ms in ms, *_base in base units, *_quote in quote
    "incidents": {
        "incident_id": STR, "asset": STR, "event_id": STR, "start_ts": I64, "onset_ts": I64,
        "lag_ms": F64, "lag_uncertainty_ms": F64, "first": BOOL, "relation": STR, "label": STR,
        "sides": STR, "data_kind": STR, "n_venues": I64, "n_events": I64, "timing_uncertainty_ms": F64,
        "batch_ms": F64, "clock_offset_ms": F64, "clock_ms": F64, "skew_ms": F64, "onset_ms": F64,
        "band_pct": F64, "depth_before_base": F64, "removed_bid_base": F64, "removed_ask_base": F64,
        "removed_base": F64, "removed_bid_quote": F64, "removed_ask_quote": F64, "removed_quote": F64,
        "removed_share": F64, "event_band_pct": F64, "removed_frac": F64, "traded_share": F64,
        "contract_base": F64, "contract_quote": F64,
    },
}

#: columns converted to exact real units by the SQL views: column -> 'price' | 'price2' | 'size'
EXACT: dict[str, dict[str, str]] = {
    "book_updates": {"price": "price", "size": "size"},
    "trades": {"price": "price", "size": "size"},
    "labels_level_changes": {"price": "price", "delta": "size"},
    "quotes": {"best_bid": "price", "best_ask": "price", "best_bid_size": "size", "best_ask_size": "size"},
    # derived tables (written by book / attribution / detect)
    "depth": {"qty": "size"},
    "book_top": {"best_bid": "price", "best_ask": "price", "mid": "price2", "spread": "price",
                 "best_bid_size": "size", "best_ask_size": "size"},
    "level_changes": {"price": "price", "prev_size": "size", "size": "size", "delta": "size",
                      "added": "size", "traded": "size", "cancelled": "size", "implied": "size"},
    "events": {"bid_floor": "price", "ask_cap": "price", "depth_before_bid": "size",
               "depth_after_bid": "size", "depth_before_ask": "size", "depth_after_ask": "size",
               "traded_qty": "size", "cancelled_qty": "size", "added_qty": "size", "implied_qty": "size",
               "trade_volume": "size", "spread_before": "price", "spread_after": "price",
               "mid_before": "price2", "mid_after": "price2"},
}

#: tables whose rows belong to one instrument and are partitioned exchange/symbol/date
PARTITIONED = ("book_updates", "trades", "quotes", "depth_bands", "gaps", "labels_level_changes",
               "depth", "book_top", "level_changes", "events", "heatmap", "incidents")

SIDES = Side.names()                               # ("bid", "ask")
AGGRESSORS = tuple(a.value for a in Aggressor)     # ("buy", "sell")


def conform(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Select and cast ``df`` to the stored schema (missing columns become null)."""
    cols = []
    for name, dtype in TABLES[table].items():
        if name in df.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype).alias(name))
    return df.select(cols)
