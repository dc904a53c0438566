"""Precision of detection on small hand-built books: a band that only followed the mid away is
not a cliff."""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from forensics.detect.cliffs import _continuations, _group_cliffs
from forensics.detect.context import Context
from forensics.detect.params import DetectParams
from forensics.detect.pipeline import _cliff_stage

S = 1_000_000_000
MS = 1_000_000


def _edge_book(own_cancel: bool) -> Context:
    """60 s of a 1,000-lot bid and ask 0.5% band around mid 10,000. At 30 s the bid band falls to
    450 lots and stays there: either the bid makers cancel 550 lots at 9,960 (``own_cancel``: depth
    lost at the side's own levels), or new bids and asks land above the touch (mid 10,030), so the
    0.5% band's floor rises past the deep bids at 9,950-9,980 while not a lot is removed (the
    band followed the mid away: seeds 65 and 219's shape)."""
    ts = np.arange(0, 60 * S, 100 * MS)
    after = ts >= 30 * S
    bid = np.where(after, 450.0, 1000.0)
    ask = np.full(ts.size, 1000.0)
    depth = pl.concat([pl.DataFrame({"ts": ts, "side": side, "band_pct": 0.5, "qty": q})
                       for side, q in (("bid", bid), ("ask", ask))])
    jump = after & (not own_cancel)
    top = pl.DataFrame({"ts": ts, "mid": np.where(jump, 20_060, 20_000), "spread": np.full(ts.size, 10),
                        "best_bid": np.where(jump, 10_025, 9_995), "best_ask": np.where(jump, 10_035, 10_005)})
    if own_cancel:
        rows = [(30 * S, "bid", 9_960, "cancel", -550, 550, 0)]
    else:
        rows = [(30 * S, "bid", 10_025, "add", 100, 0, 100), (30 * S, "ask", 10_035, "add", 100, 0, 100)]
    lc = pl.DataFrame(rows, schema={"ts": pl.Int64, "side": pl.Utf8, "price": pl.Int64, "cause": pl.Utf8,
                                    "delta": pl.Int64, "cancelled": pl.Int64, "added": pl.Int64}, orient="row")
    lc = lc.with_columns(pl.lit(0, pl.Int64).alias("traded"), pl.lit(0, pl.Int64).alias("implied"),
                         pl.lit(1000, pl.Int64).alias("prev_size"),
                         (pl.lit(1000, pl.Int64) + pl.col("delta")).alias("size"))
    trades = pl.DataFrame(schema={"ts": pl.Int64, "price": pl.Int64, "size": pl.Int64, "aggressor": pl.Utf8})
    return Context("x", "X", "book", 100 * MS, depth, top, trades, lc, 0, 0, [0.5])


def _cliffs(ctx: Context, p: DetectParams) -> list[dict]:
    return _cliff_stage(ctx, _continuations(_group_cliffs(ctx, p), ctx, p), p)


def test_a_band_that_followed_the_mid_away_is_not_a_cliff():
    p = DetectParams()
    own = _cliffs(_edge_book(own_cancel=True), p)
    assert len(own) == 1 and own[0]["sides"] == "bid"     # 550 lots cancelled at the side's own levels
    assert _cliffs(_edge_book(own_cancel=False), p) == []  # no lot lost at its levels: the band moved
    # without the own-levels test the moved band reads as a cliff (what dev seeds 65 and 219 reported)
    off = _cliffs(_edge_book(own_cancel=False), dataclasses.replace(p, own_loss_frac=0.0))
    assert len(off) == 1 and off[0]["sides"] == "bid"
