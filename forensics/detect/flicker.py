"""Flicker: large orders placed away from the touch and pulled within seconds without trading,
chained into episodes (:func:`find_flicker`)."""
from __future__ import annotations

import polars as pl

from forensics.detect.context import (
    Context,
    _window_changes,
)
from forensics.detect.params import DetectParams
from forensics.schema import SIDES
from forensics.timeutil import NS_PER_S


def find_flicker(ctx: Context, p: DetectParams) -> list[dict]:
    """Episodes of large orders placed and pulled away from the touch without trading."""
    lc, top = ctx.lc, ctx.top
    if lc is None or lc.height == 0 or top.height == 0:
        return []
    real = lc.filter(pl.col("cause") == "add")
    if real.height == 0:
        return []
    med_add = float(real.filter(pl.col("added") > 0)["added"].median() or 0)
    narrow = min(ctx.bands)
    med_depth = {s: float(ctx.depth.filter((pl.col("side") == s) & (pl.col("band_pct") == narrow))["qty"]
                          .fill_nan(None).median() or 0) for s in SIDES}
    spread_med = float(top["spread"].median() or 1)
    min_dist = max(1.0, p.flicker_min_ticks * spread_med)
    if p.flicker_add_q > 0:
        # a wide-spread book (btc/volatile: median spread 15 ticks, makers adding within ~50 ticks
        # of the touch) would need the order beyond its whole ladder: beyond where the makers'
        # ordinary adds go is as far from the touch
        adds = (real.filter(pl.col("added") > 0).select("ts", "seq", "side", "price").sort("ts", "seq")
                .join_asof(top.select("ts", "best_bid", "best_ask"), on="ts", strategy="backward"))
        d = adds.select(pl.when(pl.col("side") == "bid").then(pl.col("best_bid") - pl.col("price"))
                        .otherwise(pl.col("price") - pl.col("best_ask")).alias("d"))["d"].drop_nulls()
        q = float(d.quantile(p.flicker_add_q, "nearest") or 0) if d.len() else 0.0
        if q > 0:
            min_dist = max(1.0, min(min_dist, q))
    thr = {s: max(p.flicker_min_x * med_add, p.flicker_min_frac * med_depth[s], 1.0) for s in SIDES}
    big = real.filter(((pl.col("side") == "bid") & (pl.col("added") >= thr["bid"]))
                      | ((pl.col("side") == "ask") & (pl.col("added") >= thr["ask"])))
    if big.height == 0:
        return []
    big = big.sort("ts", "seq").join_asof(top.select("ts", "best_bid", "best_ask"), on="ts", strategy="backward")
    big = big.with_columns(pl.when(pl.col("side") == "bid").then(pl.col("best_bid") - pl.col("price"))
                           .otherwise(pl.col("price") - pl.col("best_ask")).alias("dist"))
    big = big.filter(pl.col("dist") >= min_dist)
    if big.height == 0:
        return []
    keys = big.select("side", "price").unique()
    rows = lc.join(keys, on=["side", "price"], how="semi").sort("ts", "seq")
    by_level = {k: g for k, g in rows.group_by(["side", "price"])}
    life = int(p.flicker_life_s * NS_PER_S)
    pairs = []
    for r in big.iter_rows(named=True):
        g = by_level.get((r["side"], r["price"]))
        if g is None:
            continue
        after = g.filter((pl.col("ts") >= r["ts"]) & (pl.col("seq") > r["seq"]) & (pl.col("ts") <= r["ts"] + life))
        removed = traded = 0
        t_end = None
        for d in after.iter_rows(named=True):
            removed += d["cancelled"] + d["traded"]
            traded += d["traded"]
            if removed >= p.flicker_removed_frac * r["added"]:
                t_end = d["ts"]
                break
        if t_end is not None and traded <= p.flicker_pair_max_traded * r["added"]:
            pairs.append({"side": r["side"], "price": r["price"], "add_ts": r["ts"], "cancel_ts": t_end,
                          "qty": r["added"], "traded": traded, "dist": r["dist"]})
    pairs.sort(key=lambda x: x["add_ts"])
    out, cur = [], []
    for pr in pairs + [None]:
        if pr is not None and (not cur or pr["add_ts"] - max(c["cancel_ts"] for c in cur) <= p.flicker_gap_s * NS_PER_S):
            cur.append(pr)
            continue
        if len(cur) >= p.flicker_min_pairs:
            sides = {c["side"] for c in cur}
            out.append({"trigger": "flicker", "side": sides.pop() if len(sides) == 1 else "both",
                        "start": cur[0]["add_ts"], "end": max(c["cancel_ts"] for c in cur), "pairs": cur})
        cur = [pr] if pr is not None else []
    return out



def _level_share(ctx: Context, e: dict, levels: set) -> float:
    """Share of an event's net fall (depth before - after, its sides) removed at the given
    levels (within its window and band)."""
    if ctx.lc is None:
        return 0.0
    sides = ["bid", "ask"] if e["sides"] == "both" else [e["sides"]]
    w = _window_changes(ctx, sides, e["window_from"], e["window_to"], e.get("bid_floor"), e.get("ask_cap"))
    dec = w.filter(pl.col("delta") < 0)
    mask = [(s, pr) in levels for s, pr in zip(dec["side"].to_list(), dec["price"].to_list())]
    at_levels = float((-dec.filter(pl.Series(mask, dtype=pl.Boolean))["delta"]).sum() or 0)
    fall = sum(max(0, (e.get(f"depth_before_{s}") or 0) - (e.get(f"depth_after_{s}") or 0)) for s in sides)
    tot = max(float(fall), at_levels)
    return at_levels / tot if tot > 0 else 0.0
