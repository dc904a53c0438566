"""Event metrics (see :mod:`forensics.detect`): quantities traded/cancelled/added, synchronisation,
erosion, price and impact, per-side pull bursts, the event dicts of cliffs, flows and flicker, and
the :class:`~forensics.classify.EventMetrics` the classifier reads of them (:func:`event_metrics`)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import polars as pl

from forensics.classify import EventMetrics
from forensics.detect.cliffs import (
    _other_abnormal,
    _refine,
)
from forensics.detect.context import (
    Context,
    _at,
    _band_bounds,
    _series,
    _top_at,
    _window_changes,
)
from forensics.detect.params import DetectParams
from forensics.schema import SIDES
from forensics.timeutil import NS_PER_MS, NS_PER_S


def event_metrics(e: dict, data_kind: str | None = None) -> EventMetrics:
    """The classifier's input from an event dict (``data_kind``, when given, is the context's and
    replaces the event's: an event under construction does not carry it yet)."""
    m = EventMetrics.from_event(e)
    return m if data_kind is None else dataclasses.replace(m, data_kind=data_kind)


def _quantities(ctx: Context, sides: list[str], w0: int, w1: int, floor, cap, touch: dict | None,
                p: DetectParams) -> dict:
    """traded / cancelled / added, shares, levels hit, synchronisation, erosion (level data)."""
    out: dict = {}
    w = _window_changes(ctx, sides, w0, w1, floor, cap)
    if w.height == 0:
        return out
    ok = w.filter(pl.col("cause").is_in(["add", "trade", "cancel", "mixed"]))
    out["gap_share"] = float((w["cause"] == "gap").sum()) / w.height
    dec = ok.filter(pl.col("delta") < 0)
    traded = int(dec["traded"].sum() or 0)
    cancelled = int(dec["cancelled"].sum() or 0)
    added = int(ok["added"].sum() or 0)
    out.update(traded_qty=traded, cancelled_qty=cancelled, added_qty=added,
               implied_qty=int(ok["implied"].sum() or 0))
    if traded + cancelled > 0:
        out["traded_share"] = traded / (traded + cancelled)
        net_c = max(cancelled - added, 0)
        out["traded_share_net"] = traded / (traded + net_c) if traded + net_c > 0 else 0.0
    out["levels_hit"] = int(dec.select("side", "price").n_unique()) if dec.height else 0
    # the largest net cancellation (cancelled - added) within any sync_ms: a pull removes a
    # block of quotes at once and does not put them back; re-quoting makers cancel and re-add
    if ok.height:
        nt = ok["ts"].to_numpy()
        net = (ok["cancelled"] - ok["added"]).to_numpy().astype(np.float64)
        c = np.concatenate([[0.0], np.cumsum(net)])
        h = np.searchsorted(nt, nt + p.sync_ms * NS_PER_MS, side="right")
        out["_burst_net_cancel"] = float(max(0.0, (c[h] - c[np.arange(nt.size)]).max()))
    if dec.height:
        ts = dec["ts"].to_numpy()
        qty = (-dec["delta"]).to_numpy().astype(np.float64)
        cum = np.concatenate([[0.0], np.cumsum(qty)])
        hi = np.searchsorted(ts, ts + p.sync_ms * NS_PER_MS, side="right")
        sums = cum[hi] - cum[np.arange(ts.size)]
        k = int(np.argmax(sums))
        out["sync_share_500ms"] = float(sums[k] / cum[-1]) if cum[-1] > 0 else None
        # the same over the cancelled quantity only (a pull is synchronised even when trades
        # that follow it are spread out)
        cq = dec["cancelled"].to_numpy().astype(np.float64)
        if cq.sum() > 0:
            ccum = np.concatenate([[0.0], np.cumsum(cq)])
            out["_sync_cancel_500ms"] = float((ccum[hi] - ccum[np.arange(ts.size)]).max() / ccum[-1])
        in_win = dec.slice(k, int(hi[k] - k))
        out["levels_emptied_500ms"] = int(in_win.filter(pl.col("size") == 0).select("side", "price").n_unique())
        if touch is not None:
            lv = (dec.with_columns((-pl.col("delta")).alias("q"))
                  .group_by("side", "price", maintain_order=True)
                  .agg(pl.col("ts"), pl.col("q"), pl.col("prev_size").first()))
            dist, when = [], []
            for r in lv.iter_rows(named=True):
                ref = touch.get("best_bid") if r["side"] == "bid" else touch.get("best_ask")
                if ref is None:
                    continue
                c = np.cumsum(r["q"])
                half = 0.5 * max(float(r["prev_size"]), float(c[-1]))
                j = int(np.searchsorted(c, half, side="left"))
                dist.append(abs(r["price"] - ref))
                when.append(r["ts"][min(j, len(r["ts"]) - 1)])
            if len(dist) >= 3 and len(set(dist)) > 1 and len(set(when)) > 1:
                out["erosion_corr"] = float(pl.DataFrame({"d": dist, "w": when}).select(
                    pl.corr("d", "w", method="spearman")).item())
    return out



def _impact(ctx: Context, a: int, b: int, sides: list[str] | None = None) -> float | None:
    """Sum of 1 s |mid changes| (bps) per unit of base volume traded in [a, b]."""
    if b <= a or ctx.top.height == 0:
        return None
    m = (ctx.top.filter((pl.col("ts") >= a) & (pl.col("ts") <= b))
         .with_columns((pl.col("ts") // NS_PER_S).alias("s")).group_by("s", maintain_order=True)
         .agg(pl.col("mid").last()))
    if m.height < 3:
        return None
    mid = m["mid"].to_numpy().astype(np.float64)
    moves = float(np.abs(np.diff(mid) / mid[:-1]).sum() * 1e4)
    vol = ctx.trades.filter((pl.col("ts") >= a) & (pl.col("ts") <= b))["size"].sum()
    vol = float(vol or 0) / 10 ** ctx.size_decimals
    if vol <= 0:
        return None
    return moves / vol



def _price_metrics(ctx: Context, e: dict, w0: int, w1: int, p: DetectParams) -> None:
    before = _top_at(ctx.top, w0)
    after = _top_at(ctx.top, w1, after=True, within=int(p.window_s * NS_PER_S)) or _top_at(ctx.top, w1)
    if before:
        e["mid_before"], e["spread_before"] = before["mid"], before["spread"]
    if after:
        e["mid_after"], e["spread_after"] = after["mid"], after["spread"]
    if before and after and before["mid"]:
        e["price_move_bps"] = (after["mid"] - before["mid"]) / before["mid"] * 1e4
        later = _top_at(ctx.top, w1 + int(p.price_after_s * NS_PER_S))
        if later and after["mid"]:
            e["price_move_after_bps"] = (later["mid"] - after["mid"]) / after["mid"] * 1e4
    ib = _impact(ctx, w0 - int(p.vacuum_before_s * NS_PER_S), w0 - int(p.vacuum_gap_s * NS_PER_S))
    ia = _impact(ctx, w1, w1 + int(p.vacuum_after_s * NS_PER_S))
    e["impact_before"], e["impact_after"] = ib, ia
    if ib and ia is not None and ib > 0:
        e["vacuum_ratio"] = ia / ib
    return before



def _own_loss_late(ctx: Context, e: dict, side: str, band: float, w0: int, w1: int, p: DetectParams) -> bool:
    """The own-levels test on the second half of the side's fall: from the grid step before its
    band first fell below half of that fall (prices fixed at the band there) to the end. A pull
    that follows a slow drift of the mid (dev seed 264: the bid band drifting for 10 s, then the
    makers pulling 49%) loses most of its first half to the drift, the pull in the second; a band
    that only followed the mid away follows it in both halves."""
    qb, qa = e.get(f"depth_before_{side}"), e.get(f"depth_after_{side}")
    if not qb or qa is None or qb <= qa:
        return False
    t, q = _series(ctx, side, band)
    i0, i1 = np.searchsorted(t, w0), np.searchsorted(t, w1, side="right")
    below = np.flatnonzero(q[i0:i1] <= qb - 0.5 * (qb - qa))
    if below.size == 0 or i0 + below[0] == 0:
        return False
    k = i0 + below[0] - 1                   # the last reading above half the fall
    top = _top_at(ctx.top, int(t[k]))
    floor, cap = _band_bounds(top["mid"] if top else None, band)
    if floor is None:
        return False
    fall = float(q[k]) - qa
    lost = -float(_window_changes(ctx, [side], int(t[k]), w1, floor, cap)["delta"].sum() or 0)
    return fall > 0 and lost >= p.own_loss_frac * fall


def _cliff_event(ev: dict, ctx: Context, p: DetectParams) -> dict:
    band = ev["band"]
    g = ctx.grid_ns
    pre = _top_at(ctx.top, ev["t_peak"] - g)
    floor, cap = _band_bounds(pre["mid"] if pre else None, band)
    starts = {s: _refine(ctx, s, c, floor, cap) for s, c in ev["cliffs"].items()}
    # quantities are summed from the grid step before the 10% crossing to the trough (band data:
    # from the last sample before the fall, which is already the step before it)
    w0 = min(v[2] for v in starts.values()) - (0 if ctx.data_kind == "bands" else g)
    w1 = max(max(v[3] for v in starts.values()), ev["t_trough"])
    e: dict = {"trigger": "cliff", "band_pct": band, "window_from": w0, "window_to": w1,
               "continuations": ev.get("continuations", 0)}
    before = _top_at(ctx.top, w0)
    floor, cap = _band_bounds(before["mid"] if before else None, band)
    e["bid_floor"], e["ask_cap"] = floor, cap
    falling = sorted(ev["cliffs"], key=SIDES.index)
    for s in SIDES:
        t, q = _series(ctx, s, band)
        if t.size == 0:
            continue
        qb = _at(t, q, np.array([w0]))[0]
        qa = float(np.nanmin(q[np.searchsorted(t, w0):np.searchsorted(t, w1, side="right")])) \
            if np.searchsorted(t, w1, side="right") > np.searchsorted(t, w0) else float("nan")
        c = ev["cliffs"].get(s)
        if c is not None and c.band == band:
            qb = c.q_peak if math.isnan(qb) else qb     # depth just before the fall started
            qa = c.q_trough
        elif c is not None and (math.isnan(qb) or math.isnan(qa)):
            # the side's cliff is in another band and the event's band has no reading: its own
            # band's figures (before and after from one band, never one from each)
            qb, qa = c.q_peak, c.q_trough
        e[f"depth_before_{s}"] = None if math.isnan(qb) else int(qb)
        e[f"depth_after_{s}"] = None if math.isnan(qa) else int(qa)
        if not math.isnan(qb) and qb > 0 and not math.isnan(qa):
            e[f"removed_frac_{s}"] = max(0.0, (qb - qa) / qb)
    # "simultaneous": over the primary fall itself (to its 90% crossing), not the whole window
    w90 = max(v[3] for v in starts.values())
    abnormal = len(falling) == 1 and _other_abnormal(ctx, "ask" if falling[0] == "bid" else "bid", band, w0,
                                                     w90 + g, p)
    sides = falling if not abnormal else list(SIDES)
    if len(sides) == 2 and ctx.lc is not None and floor is not None:
        # level data: the weaker side must have lost quantity at its own levels (the band at the
        # start, fixed prices), not only moved out of a band that follows a mid the other
        # side's pull dragged away
        prim = max(ev["cliffs"].values(), key=lambda c: c.frac).side if ev["cliffs"] else falling[0]
        other = "ask" if prim == "bid" else "bid"
        lost = -float(_window_changes(ctx, [other], w0, w90 + g, floor, cap)["delta"].sum() or 0)
        dep = e.get(f"depth_before_{other}") or 0
        if dep > 0 and lost < p.other_min_frac * dep:
            sides = [prim]
            e["_other_band_edge"] = other
    if p.own_loss_frac > 0 and ctx.lc is not None and floor is not None:
        # level data: a cliff none of whose sides lost ``own_loss_frac`` of its band's fall at its
        # own levels (fixed prices) did not lose depth: the bands followed a mid that moved away
        # (the other side's touch jumped, a program on the other side walked it, the makers of a
        # pulled side returning)
        edge = []
        for s in sides:
            fall = (e.get(f"depth_before_{s}") or 0) - (e.get(f"depth_after_{s}") or 0)
            lost = -float(_window_changes(ctx, [s], w0, w1, floor, cap)["delta"].sum() or 0)
            if (fall <= 0 or lost < p.own_loss_frac * fall) and not _own_loss_late(ctx, e, s, band, w0, w1, p):
                edge.append(s)
        if len(edge) == len(sides):
            e["_band_edge"] = "+".join(edge)
    e["sides"] = "both" if len(sides) == 2 else sides[0]
    e["other_side_fell"] = len(sides) == 2
    tot_b = sum(e.get(f"depth_before_{s}") or 0 for s in sides)
    tot_a = sum(e.get(f"depth_after_{s}") or 0 for s in sides)
    e["removed_frac"] = (tot_b - tot_a) / tot_b if tot_b > 0 else None
    e["start_ts"] = min(v[0] for v in starts.values())
    e["end_ts"] = max(v[1] for v in starts.values())
    e["speed_ms"] = (e["end_ts"] - e["start_ts"]) / NS_PER_MS
    if len(starts) == 2 and ctx.data_kind != "bands":  # band data: both fell within one step, order unknown
        e["side_lag_ms"] = (starts["ask"][0] - starts["bid"][0]) / NS_PER_MS
    rec = ev.get("recovered_at")
    e["_recovered_at"] = rec
    e["recovery_ms"] = None if rec is None else max(0.0, (rec - e["end_ts"]) / NS_PER_MS)
    _price_metrics(ctx, e, w0, w1, p)
    e["trade_volume"] = _trade_volume(ctx, sides, w0, w1)
    if ctx.lc is not None:
        e.update(_quantities(ctx, sides, w0, w1, floor, cap, before, p))
        dep = sum(e.get(f"depth_before_{s}") or 0 for s in sides)
        if e.get("_burst_net_cancel") is not None and dep > 0:
            e["_burst_pull_frac"] = e["_burst_net_cancel"] / dep
        _pull_metrics(ctx, e, w0 - int(p.pull_before_s * NS_PER_S), e["start_ts"] + int(p.pull_after_s * NS_PER_S), p)
        later = max(v[0] for v in starts.values())
        if (p.pull_fall_pair and p.pull_pair_ms > 0 and len(sides) == 2 and len(starts) == 2 and later > e["start_ts"]
                and later - e["start_ts"] <= int(p.pull_side_lag_max_s * NS_PER_S)):
            # the pull is where the later side starts falling (the first side's leading dip
            # started the event): each side's burst within pull_pair_ms of that moment
            a = w0 - int(p.pull_before_s * NS_PER_S)
            half = int(p.pull_pair_ms * NS_PER_MS)
            got = _side_pulls(ctx, later - half - 1, later + half, p, ref=a)
            for s_, (share, _, kept) in got.items():
                e[f"_fall_pair_{s_}"], e[f"_fall_pair_kept_{s_}"] = share, kept
    else:
        _band_shares(ctx, e, sides, w0, w1)
    return e



def _side_pulls(ctx: Context, a: int, b: int, p: DetectParams, band: float | None = None,
                ref: int | None = None, sides=None) -> dict:
    """Level data: per side, the largest net cancellation (cancelled - added) within any
    ``sync_ms`` in (a, b] inside the narrowest usable band (or ``band``) at ``a``, as a share of that band's
    depth at ``a``, when it happened, and the share of it still missing ``requote_s`` later:
    {side: (share, ts, kept)}. A withdrawal pulls both sides at
    once (whatever trades follow); a one-sided pull or a program leaves the other side in place.
    ``ref``: the time the band's prices and depth are taken at (default ``a``); ``sides``: only
    these sides."""
    out: dict = {}
    if ctx.lc is None:
        return out
    band = min(ctx.bands) if band is None else band
    a_ref = a if ref is None else ref
    before = _top_at(ctx.top, a_ref)
    floor, cap = _band_bounds(before["mid"] if before else None, band)
    if floor is None:
        return out
    for s in (SIDES if sides is None else sides):
        t, q = _series(ctx, s, band)
        dep = _at(t, q, np.array([a_ref]))[0] if t.size else float("nan")
        w = _window_changes(ctx, [s], a, b, floor, cap).filter(pl.col("cause").is_in(["add", "trade", "cancel", "mixed"]))
        if math.isnan(dep) or dep <= 0 or w.height == 0:
            continue
        nt = w["ts"].to_numpy()
        net = (w["cancelled"] - w["added"]).to_numpy().astype(np.float64)
        c = np.concatenate([[0.0], np.cumsum(net)])
        h = np.searchsorted(nt, nt + p.sync_ms * NS_PER_MS, side="right")
        sums = c[h] - c[np.arange(nt.size)]
        k = int(np.argmax(sums))
        # how much of that burst is still missing ``requote_s`` after it started (net of the
        # re-adds at the band's prices): a pull stays away, a re-quote (cancel and re-add
        # nearby after the mid moved) puts it back
        later = _window_changes(ctx, [s], int(nt[k]) - 1, int(nt[k]) + int(p.requote_s * NS_PER_S), floor, cap) \
            .filter(pl.col("cause").is_in(["add", "trade", "cancel", "mixed"]))
        kept = float((later["cancelled"] - later["added"]).sum() or 0) / float(sums[k]) if sums[k] > 0 else None
        out[s] = (max(0.0, float(sums[k])) / dep, int(nt[k]), kept)
    return out



def _fall_noise(ctx: Context, side: str, band: float, p: DetectParams, per_minute: bool = False) -> float | None:
    """The ``pull_noise_q`` quantile of the band's relative depth falls over ``sync_ms`` across
    the whole series (cached): how much a side ordinarily loses in 500 ms (volatile books
    re-quote in large blocks), so a pull burst can be judged against the instrument's own
    churn. ``per_minute``: the quantile of each ``pull_noise_block_s`` block, the median over
    the blocks (a few minutes of incidents, e.g. a flicker episode's orders, do not set it)."""
    block = p.pull_noise_block_s if per_minute else 0.0
    key = ("fall_noise", side, band, block)
    if key not in ctx.info:
        t, q = _series(ctx, side, band)
        val = None
        if t.size > 10:
            later = _at(t, q, t + p.sync_ms * NS_PER_MS)
            with np.errstate(invalid="ignore", divide="ignore"):
                f = (q - later) / np.maximum(q, 1.0)
            keep = ~np.isnan(f)
            f, tf = f[keep], t[keep]
            if f.size and block > 0:
                # t is sorted: the blocks are consecutive runs, split once (not one mask per block)
                blk = (tf - tf[0]) // int(block * NS_PER_S)
                runs = np.split(f, np.flatnonzero(np.diff(blk)) + 1)
                qs = [float(np.quantile(r, p.pull_noise_q)) for r in runs if r.size >= 10]
                if qs:
                    val = float(np.median(qs))
            elif f.size:
                val = float(np.quantile(f, p.pull_noise_q))
        ctx.info[key] = val
    return ctx.info[key]



def _pull_metrics(ctx: Context, e: dict, a: int, b: int, p: DetectParams) -> None:
    """``_pull_bid`` / ``_pull_ask`` (see :func:`_side_pulls`) and ``_pull_lag_ms`` (the time
    between the two sides' bursts) on the event, for the classifier."""
    sp = _side_pulls(ctx, a, b, p)
    for s, (share, _, kept) in sp.items():
        e[f"_pull_{s}"] = share
        e[f"_pull_kept_{s}"] = kept
        e[f"_pull_noise_{s}"] = _fall_noise(ctx, s, min(ctx.bands), p)
    if len(sp) == 2:
        e["_pull_lag_ms"] = abs(sp["ask"][1] - sp["bid"][1]) / NS_PER_MS
        e["_pull_at_ms"] = (max(sp["ask"][1], sp["bid"][1]) - e["start_ts"]) / NS_PER_MS
        e["_pull_later"] = "ask" if sp["ask"][1] > sp["bid"][1] else "bid"
        if p.pull_pair_ms > 0 and e["_pull_lag_ms"] > p.pull_pair_ms:
            # the bursts far apart: each side's largest burst may be its own churn in a volatile
            # book while both sides were pulled together at another moment of the window; each
            # side's burst within pull_pair_ms of the other side's, on the same depth and prices
            for s, o in (("bid", "ask"), ("ask", "bid")):
                ts = sp[o][1]
                got = _side_pulls(ctx, max(a, ts - int(p.pull_pair_ms * NS_PER_MS)) - 1,
                                  min(b, ts + int(p.pull_pair_ms * NS_PER_MS)), p, ref=a, sides=[s])
                if s in got:
                    e[f"_pair_{s}"], e[f"_pair_kept_{s}"] = got[s][0], got[s][2]



def _trade_volume(ctx: Context, sides: list[str], a: int, b: int) -> int:
    aggr = ["sell" if s == "bid" else "buy" for s in sides]
    t = ctx.trades.filter((pl.col("ts") > a) & (pl.col("ts") <= b) & pl.col("aggressor").is_in(aggr))
    return int(t["size"].sum() or 0)



def _band_shares(ctx: Context, e: dict, sides: list[str], w0: int, w1: int) -> None:
    """Band data: traded share = aggressive volume hitting each falling side between the two
    samples (sells hit bids, buys hit asks), capped at that side's depth removed, over the total
    depth removed. All prints count, whatever their price, so it is an upper bound on what
    trading can explain (a low share, i.e. a withdrawal, is the robust reading); the rest of the
    removal is inferred as cancelled."""
    removed = traded = 0
    for s in sides:
        r = max(0, (e.get(f"depth_before_{s}") or 0) - (e.get(f"depth_after_{s}") or 0))
        removed += r
        traded += min(r, _trade_volume(ctx, [s], w0, w1))
    if removed > 0:
        e["traded_share"] = e["traded_share_net"] = traded / removed
        e["traded_qty"] = traded
        e["cancelled_qty"] = removed - traded



def _flow_event(fw: dict, ctx: Context, p: DetectParams) -> dict:
    s = fw["side"]
    band = min(ctx.bands)
    w0, w1 = fw["start"] - ctx.grid_ns, fw["end"] + ctx.grid_ns
    e: dict = {"trigger": "flow", "band_pct": band, "window_from": w0, "window_to": w1, "sides": s,
               "start_ts": fw["start"], "end_ts": fw["end"], "other_side_fell": False,
               "speed_ms": (fw["end"] - fw["start"]) / NS_PER_MS}
    before = _top_at(ctx.top, w0)
    floor, cap = _band_bounds(before["mid"] if before else None, band)
    e["bid_floor"], e["ask_cap"] = floor, cap
    t, q = _series(ctx, s, band)
    if t.size:
        qb = _at(t, q, np.array([w0]))[0]
        qa = _at(t, q, np.array([w1]))[0]
        if not math.isnan(qb):
            e[f"depth_before_{s}"] = int(qb)
        if not math.isnan(qa):
            e[f"depth_after_{s}"] = int(qa)
        if not math.isnan(qb) and not math.isnan(qa) and qb > 0:
            e[f"removed_frac_{s}"] = e["removed_frac"] = max(0.0, (qb - qa) / qb)
    _price_metrics(ctx, e, w0, w1, p)
    e["trade_volume"] = fw["volume"]
    e["program"] = {"aggressor": fw["aggressor"], "bursts": fw["bursts"], "prints": fw["prints"],
                    "ratio": round(fw["ratio"], 2), "z": round(fw["z"], 1),
                    "volume_base": round(fw["volume"] / 10 ** ctx.size_decimals, 8)}
    if ctx.lc is not None:
        # the band follows the mid while the program walks the book: no price filter
        e.update(_quantities(ctx, [s], w0, w1, None, None, before, p))
        _pull_metrics(ctx, e, fw["start"] - int(p.pull_before_s * NS_PER_S), fw["start"] + int(p.pull_after_s * NS_PER_S), p)
    else:
        # band data: the program's volume vs the depth the side's band lost over the episode (capped);
        # a band that did not fall net was refilled behind the program: its volume is the removal
        removed = max(0, (e.get(f"depth_before_{s}") or 0) - (e.get(f"depth_after_{s}") or 0))
        vol = fw["volume"]
        traded = min(vol, removed) if removed > 0 else vol
        e["traded_share"] = e["traded_share_net"] = (traded / removed if removed > 0 else 1.0) if vol else None
        e["traded_qty"], e["cancelled_qty"] = traded, max(0, removed - traded)
    return e



def _flicker_event(fl: dict, ctx: Context, p: DetectParams) -> dict:
    pairs = fl["pairs"]
    qty = sum(x["qty"] for x in pairs)
    tr = sum(x["traded"] for x in pairs)
    sides = fl["side"]
    e: dict = {"trigger": "flicker", "sides": sides, "start_ts": fl["start"], "end_ts": fl["end"],
               "window_from": fl["start"], "window_to": fl["end"], "flicker_pairs": len(pairs),
               "flicker_traded_share": tr / qty if qty else 0.0, "other_side_fell": sides == "both",
               "band_pct": None, "speed_ms": (fl["end"] - fl["start"]) / NS_PER_MS,
               "levels_hit": len({(x["side"], x["price"]) for x in pairs}), "removed_frac": None}
    e["traded_qty"], e["cancelled_qty"] = int(tr), int(qty - tr)
    e["traded_share"] = e["traded_share_net"] = tr / qty if qty else 0.0
    _price_metrics(ctx, e, fl["start"], fl["end"], p)
    return e
