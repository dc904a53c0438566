"""Cliffs: falls of a side/band depth series against its trailing baseline (:func:`find_cliffs`),
merged across bands and sides (:func:`_group_cliffs`), the other side's abnormality, continuations
before recovery, recovery time, and the 10%/90% crossing times of a fall."""
from __future__ import annotations

import math

import numpy as np

from forensics.detect.bands import (
    _band_cliffs,
)
from forensics.detect.context import (
    Cliff,
    Context,
    _at,
    _rolling,
    _series,
    _typical_change,
    _window_changes,
)
from forensics.detect.params import DetectParams
from forensics.schema import SIDES
from forensics.timeutil import NS_PER_S


def find_cliffs(t: np.ndarray, q: np.ndarray, side: str, band: float, window_ns: int, baseline_ns: int,
                p: DetectParams, between_samples: bool = False) -> list[Cliff]:
    """Cliffs in one depth series (see the module docstring)."""
    if t.size < 3:
        return []
    med = _rolling(t, q, baseline_ns, "median")
    bref = _at(t, med, t - window_ns)
    if between_samples:
        mx = np.concatenate([[np.nan], q[:-1]])
    else:
        mx = _rolling(t, q, window_ns, "max")
    floor = p.min_baseline_frac * np.nanmedian(med)
    with np.errstate(invalid="ignore"):
        cond = ((q <= (1 - p.drop_frac) * bref) & (mx - q >= p.drop_frac * bref) & (bref >= floor) & (bref > 0))
        if not between_samples and p.cliff_k > 0:
            # a smaller fall counts in a band that is normally steady: >= drop_min_frac of the
            # baseline and >= cliff_k x the band's median |change| over window_s
            typ = _typical_change(t, q, window_ns)
            if typ == typ:
                fall = mx - q
                cond |= ((q <= (1 - p.drop_min_frac) * bref) & (fall >= p.drop_min_frac * bref)
                         & (fall >= p.cliff_k * max(typ, 1.0)) & (bref >= floor) & (bref > 0))
    out = []
    i = 0
    n = t.size
    while i < n:
        if not cond[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and cond[j + 1] and t[j + 1] - t[i] <= window_ns:
            j += 1
        if between_samples:  # the fall happened between the previous sample and this one
            k, m = i - 1, i
        else:
            lo = np.searchsorted(t, t[i] - window_ns, side="left")
            seg = q[lo:i + 1]
            k = lo + (len(seg) - 1 - int(np.argmax(seg[::-1])))  # latest max before the fall
            # the trough: the minimum within window after t_i
            hi = np.searchsorted(t, t[i] + window_ns, side="right")
            m = i + int(np.argmin(q[i:hi]))
        out.append(Cliff(side, band, int(t[i]), int(t[k]), int(t[m]), float(q[k]), float(q[m]), float(bref[i])))
        i = max(j, m) + 1
    return out



def _group_cliffs(ctx: Context, p: DetectParams) -> list[dict]:
    """Per-side cliffs merged across bands, then across sides; other-side abnormality."""
    between = ctx.data_kind == "bands"
    window_ns = ctx.grid_ns if between else int(p.window_s * NS_PER_S)
    baseline_ns = int((p.bands_baseline_s if between else p.baseline_s) * NS_PER_S)
    series = {(s, b): _series(ctx, s, b) for s in SIDES for b in ctx.bands}
    cliffs = []
    for (s, b), (t, q) in series.items():
        cliffs += find_cliffs(t, q, s, b, window_ns, baseline_ns, p, between)
    ctx.info["anomalies"] = []
    if between:
        cliffs = _band_cliffs(ctx, cliffs, p)
    per_side: list[Cliff] = []
    members: dict[int, list[Cliff]] = {}
    for s in SIDES:
        cs = sorted((c for c in cliffs if c.side == s), key=lambda c: c.t_peak)
        groups: list[list[Cliff]] = []
        for c in cs:
            if groups and c.t_peak <= max(x.t_trough for x in groups[-1]) + window_ns:
                groups[-1].append(c)
            else:
                groups.append([c])
        for g in groups:
            best = max(g, key=_rank)
            per_side.append(best)
            members[id(best)] = g
    per_side.sort(key=lambda c: c.t_peak)
    events = []
    used = set()
    for i, c in enumerate(per_side):
        if i in used:
            continue
        ev = {"trigger": "cliff", "cliffs": {c.side: c}, "band": c.band}
        for j in range(i + 1, len(per_side)):
            d = per_side[j]
            if j in used or d.side == c.side:
                continue
            if d.t_peak <= c.t_trough + window_ns and c.t_peak <= d.t_trough + window_ns:
                ev["cliffs"][d.side] = d
                used.add(j)
                break
        events.append(ev)
    # the band of the event: the primary (largest) fall's band, used for both sides
    for ev in events:
        prim = max(ev["cliffs"].values(), key=lambda c: c.frac)
        ev["band"] = prim.band
        ev["t_peak"] = min(c.t_peak for c in ev["cliffs"].values())
        ev["t_trough"] = max(c.t_trough for c in ev["cliffs"].values())
        ev["_members"] = [x for c in ev["cliffs"].values() for x in members[id(c)]]
    return events



def _rank(c: Cliff) -> tuple:
    """Which of a side's cliffs stands for it: the largest fall, the narrower band on a tie."""
    return (round(c.frac, 6), -c.band)



def _later_fall(ev: dict, ctx: Context, p: DetectParams) -> dict | None:
    """The event of the cliffs merged into blip ``ev`` that bottom out after their side was back
    (``recovery_frac`` of the depth before ``ev``'s fall on that side): the group is chained by
    cliffs 5 s apart, so a re-quote dip just before a pull can be its largest fall and stand for it
    (then dropped as a blip with the pull inside). Each such cliff is measured again from its
    highest depth after that return and kept only if that fall is still >= ``drop_min_frac`` of
    its baseline (a fall of its own, not the tail of the dip)."""
    back = {}
    for s, c in ev["cliffs"].items():
        r = _recovery_time({"cliffs": {s: c}, "band": c.band, "t_trough": c.t_trough}, ctx, p)
        if r is not None:
            back[s] = r
    later = []
    for c in ev.get("_members", []):
        after = back.get(c.side)
        if after is None or c.t_trough <= after:
            continue
        t, q = _series(ctx, c.side, c.band)
        a, b = np.searchsorted(t, after, side="left"), np.searchsorted(t, c.t_trough, side="right")
        if b <= a:
            continue
        seg = q[a:b]
        k = a + (seg.size - 1 - int(np.argmax(seg[::-1])))
        if q[k] - c.q_trough >= p.drop_min_frac * c.baseline:
            later.append(Cliff(c.side, c.band, max(c.t_first, int(t[k])), int(t[k]), c.t_trough, float(q[k]),
                               c.q_trough, c.baseline))
    if not later:
        return None
    cliffs = {}
    for c in later:
        if c.side not in cliffs or _rank(c) > _rank(cliffs[c.side]):
            cliffs[c.side] = c
    prim = max(cliffs.values(), key=lambda c: c.frac)
    return {"trigger": "cliff", "cliffs": cliffs, "band": prim.band, "_members": later, "_later": True,
            "t_peak": min(c.t_peak for c in cliffs.values()), "t_trough": max(c.t_trough for c in cliffs.values())}



def _other_abnormal(ctx: Context, other: str, band: float, w0: int, w1: int, p: DetectParams) -> bool:
    """Did ``other`` drop abnormally over [w0, w1]: >= other_min_frac of its baseline and >=
    other_k x its median absolute change over an interval of that length?"""
    t, q = _series(ctx, other, band)
    if t.size < 4:
        return False
    g = ctx.grid_ns
    qb = _at(t, q, np.array([w0]))[0]
    a, b = np.searchsorted(t, w0, side="left"), np.searchsorted(t, w1 + g, side="right")
    if math.isnan(qb) or b <= a:
        return False
    drop = float(qb - np.nanmin(q[a:b]))
    base = _at(t, _rolling(t, q, int(p.baseline_s * NS_PER_S), "median"), np.array([w0]))[0]
    typ = _typical_change(t, q, max(w1 - w0, g) + g)
    return (not math.isnan(base) and drop >= p.other_min_frac * base and drop >= p.other_k * max(typ, 1.0))



def _continuations(events: list[dict], ctx: Context, p: DetectParams) -> list[dict]:
    """Fold cliffs that happen before the previous event's sides recovered (or within
    merge_gap_s of its end) into that event."""
    out: list[dict] = []
    gap = int(p.merge_gap_s * NS_PER_S)
    queue = sorted(events, key=lambda e: e["t_peak"])
    while queue:
        ev = queue.pop(0)
        if out:
            prev = out[-1]
            same = set(ev["cliffs"]) & set(prev["cliffs"]) or (set(ev["cliffs"]) <= set(prev.get("sides_set", ())))
            rec = prev.get("recovered_at")
            late = ev["t_peak"] > prev["t_trough"] + int(p.aftermath_max_s * NS_PER_S)
            if same and (ev["t_peak"] <= prev["t_trough"] + gap or (not late and (rec is None or ev["t_peak"] < rec))):
                prev["continuations"] = prev.get("continuations", 0) + 1
                continue
        ev["recovered_at"] = _recovery_time(ev, ctx, p)
        if (p.end_hold and ctx.data_kind == "book" and ev["recovered_at"] is None
                and _data_end(ctx, ev) - ev["t_trough"] < p.min_hold_s * NS_PER_S):
            # the book data ends before the fall could have held min_hold_s: a blip cannot be
            # told from vanished depth, no event
            continue
        if (ctx.data_kind == "book" and ev["recovered_at"] is not None
                and ev["recovered_at"] - ev["t_trough"] < p.min_hold_s * NS_PER_S):
            # a partial fall (30-40% of the quotes) is kept if it stays down, came as a pull
            # burst, and comes back within the horizon (a thinning that never returns is the
            # book's new level, not an incident); its recovery is then that return
            back = None if ev.get("_later") else _held_partial(ev, ctx, p)  # a later fall must hold on its own
            if back is None or not _partial_pulled(ev, ctx, p):
                # back within min_hold_s: a re-quote blip, not vanished depth; a side that stayed
                # down while the other blipped is judged on its own; the falls merged into it
                # that bottom out after it was back are judged on their own
                alt = _held_side(ev, ctx, p) if p.blip_side_drop and len(ev["cliffs"]) > 1 else None
                if alt is None:
                    alt = _later_fall(ev, ctx, p) if p.later_falls and not ev.get("_later") else None
                if alt is None and p.held_band_drop:
                    alt = _held_band(ev, ctx, p)
                if alt is not None:
                    queue.insert(next((i for i, x in enumerate(queue) if x["t_peak"] > alt["t_peak"]), len(queue)), alt)
                continue
            ev["recovered_at"] = back
        ev["sides_set"] = set(ev["cliffs"])
        out.append(ev)
    return out



def _held_band(ev: dict, ctx: Context, p: DetectParams) -> dict | None:
    """(``held_band_drop``) One-sided blip ``ev`` (its largest fall back within ``min_hold_s``)
    one of whose other bands' falls on that side held: a held partial fall
    (:func:`_held_partial`) in a wider band. Makers pulling part of their quotes widen the
    rest, so the band the largest fall was found in (often the touch band) dips below the
    pulled level for a moment and is back above half its depth at once, while the wider band
    stays down. Returns the event of the best-ranked such band's fall alone, judged again like
    any fall (a held partial one must still show its pull burst, :func:`_partial_pulled`); None
    if no other band held (a re-quote dip comes back in every band)."""
    if ev.get("_later") or ev.get("_held_band") or len(ev["cliffs"]) != 1:
        return None
    (s, c), = ev["cliffs"].items()
    held = [m for m in ev.get("_members", []) if m.side == s and m.band != c.band
            and _held_partial({"cliffs": {s: m}, "band": m.band, "t_trough": m.t_trough}, ctx, p) is not None]
    if not held:
        return None
    m = max(held, key=_rank)
    return {"trigger": "cliff", "cliffs": {s: m}, "band": m.band, "t_peak": m.t_peak, "t_trough": m.t_trough,
            "_members": [m], "_held_band": True}



def _held_side(ev: dict, ctx: Context, p: DetectParams) -> dict | None:
    """The one side of two-sided blip ``ev`` that stayed down, measured in its own band: not back
    for ``partial_hold_s`` (pulled quotes stay away) or a held partial fall (:func:`_held_partial`),
    while the other side's depth was back within ``min_hold_s`` (a re-quote dip of the other side
    merged with a pull). Returns the event of that side alone (its cliffs and members), judged
    again like any one-sided fall (a held partial one must still show its pull burst,
    :func:`_partial_pulled`); None if both or neither side held."""
    if ev.get("_later"):
        return None
    held, back = [], []
    for s, c in ev["cliffs"].items():
        one = {"cliffs": {s: c}, "band": c.band, "t_trough": c.t_trough}
        r = _recovery_time(one, ctx, p)
        if r is not None and r - c.t_trough < p.min_hold_s * NS_PER_S:
            (held if _held_partial(one, ctx, p) is not None else back).append(s)
        elif r is None or r - c.t_trough >= p.partial_hold_s * NS_PER_S:
            held.append(s)
    if len(held) != 1 or len(back) != len(ev["cliffs"]) - 1:
        return None
    s = held[0]
    c = ev["cliffs"][s]
    return {"trigger": "cliff", "cliffs": {s: c}, "band": c.band, "t_peak": c.t_peak, "t_trough": c.t_trough,
            "_members": [x for x in ev.get("_members", []) if x.side == s]}



def _held_partial(ev: dict, ctx: Context, p: DetectParams) -> int | None:
    """A fall already "recovered" at its trough (above ``recovery_frac`` of the depth before: a
    partial pull of 30-40% of the quotes) that stays down and comes back: every falling side
    first regains ``partial_regain_frac`` of its fall later than ``partial_hold_s`` after the
    trough but within the horizon. Returns the time the last side has regained that much (its
    recovery, so later falls while the makers re-quote in steps are its continuations); None: not
    such a fall (a side regained within ``partial_hold_s``, or not within the horizon)."""
    if p.partial_regain_frac <= 0:
        return None
    latest = ev["t_trough"]
    hold, horizon = int(p.partial_hold_s * NS_PER_S), int(p.recovery_horizon_s * NS_PER_S)
    for s, c in ev["cliffs"].items():
        t, q = _series(ctx, s, c.band)
        fall = min(c.q_peak, c.baseline) - c.q_trough
        if fall <= 0:
            return None
        k0 = np.searchsorted(t, c.t_trough, side="left")
        k1 = np.searchsorted(t, c.t_trough + max(horizon, hold), side="right")
        ok = np.nonzero(q[k0:k1] >= c.q_trough + p.partial_regain_frac * fall)[0]
        if ok.size == 0:
            return None
        back = int(t[k0 + ok[0]])
        if back <= c.t_trough + hold or back > c.t_trough + horizon:
            return None
        latest = max(latest, back)
    return latest



def _partial_pulled(ev: dict, ctx: Context, p: DetectParams) -> bool:
    """A held partial fall is a pull only if its largest falling side cancelled, net of re-adds,
    >= ``burst_min`` of a band's depth within one ``sync_ms`` (from ``pull_before_s`` before the
    fall to ``pull_after_s`` after its trough) and >= ``partial_noise_k`` x that side's ordinary
    500 ms fall in the same band (per minute, the median over the minutes: ``pull_noise_block_s``): makers that pull part of their quotes do it at once; a book
    that thins by re-quoting does not. The band is the touch band or, with
    ``partial_any_band``, any usable band (a partial pull also widens the makers' quotes: the
    touch band gets part of them back at once, the wider bands show the pull)."""
    from forensics.detect.metrics import _fall_noise, _side_pulls
    c = max(ev["cliffs"].values(), key=lambda c: c.frac)
    a, b = c.t_peak - int(p.pull_before_s * NS_PER_S), c.t_trough + int(p.pull_after_s * NS_PER_S)
    for band in (ctx.bands if p.partial_any_band else [min(ctx.bands)]):
        sp = _side_pulls(ctx, a, b, p, band)
        if c.side not in sp:
            continue
        share, _, kept = sp[c.side]
        noise = _fall_noise(ctx, c.side, band, p, per_minute=True) or 0.0
        # a wider band's burst must stay away (a flicker order's replacement or a re-quote is
        # re-added at once: keeps < requote_kept_max of it requote_s later)
        away = band == min(ctx.bands) or (kept is not None and kept >= p.thresholds.requote_kept_max)
        if share >= p.thresholds.burst_min and share >= p.partial_noise_k * noise and away:
            return True
    return False



def _data_end(ctx: Context, ev: dict) -> int:
    """The last depth reading of ``ev``'s falling sides (in the bands their falls were found in)."""
    return min(int(_series(ctx, s, c.band)[0][-1]) for s, c in ev["cliffs"].items())



def _recovery_time(ev: dict, ctx: Context, p: DetectParams) -> int | None:
    """First time after the trough when every falling side is back to recovery_frac of its
    depth before, in the band its fall was found in (None: not within the horizon)."""
    horizon = int(p.recovery_horizon_s * NS_PER_S)
    latest = ev["t_trough"]
    for s, c in ev["cliffs"].items():
        t, q = _series(ctx, s, c.band)
        k0 = np.searchsorted(t, c.t_trough, side="left")
        k1 = np.searchsorted(t, c.t_trough + horizon, side="right")
        ok = np.nonzero(q[k0:k1] >= p.recovery_frac * min(c.q_peak, c.baseline))[0]
        if ok.size == 0:
            return None
        latest = max(latest, int(t[k0 + ok[0]]))
    return latest



def _cliff_spans(cliff_events: list[dict], p: DetectParams) -> list[tuple[int, int]]:
    """(from, to) ns of each cliff event up to its recovery (at most ``aftermath_max_s`` after
    its trough): the stretches the flow baselines leave out (a cascade into a withdrawn book)."""
    out = []
    for ev in cliff_events:
        end = ev["t_trough"] + int(p.aftermath_max_s * NS_PER_S)
        rec = ev.get("recovered_at")
        out.append((ev["t_peak"] - int(p.flow_exclude_before_s * NS_PER_S), min(rec, end) if rec is not None else end))
    return out



def _fall_points(ctx: Context, c: Cliff) -> tuple[int, int, float, float, float, float]:
    """Grid times where the fall crossed 10% and 90% for good, the levels, and the depth one grid
    step before each crossing.

    The fall's midpoint is where depth crossed halfway from the baseline to the trough for good
    (its last up-crossing); the reference level is the highest depth in the stretch before it
    (twice the midpoint-to-90% time plus 1 s: a slow fall looks further back), so a dip that
    preceded the cliff does not count as its start. 10% / 90% are measured from that level."""
    t, q = _series(ctx, c.side, c.band)
    k0, k1 = np.searchsorted(t, c.t_peak), np.searchsorted(t, c.t_trough, side="right")
    seg_t, seg_q = t[k0:k1], q[k0:k1]
    base = c.baseline if c.baseline > c.q_trough else c.q_peak
    if seg_t.size == 0:
        return c.t_first, c.t_trough, base, c.q_trough, c.q_peak, c.q_peak
    last = seg_t.size - 1

    def settle(level: float, lo: int, hi: int) -> int:
        """First index in [lo, hi] after which depth stays <= level up to hi."""
        above = np.nonzero(seg_q[lo:hi + 1] > level)[0]
        return min(lo + int(above[-1]) + 1, hi) if above.size else lo

    j50 = settle(base - 0.5 * (base - c.q_trough), 0, last)
    j90b = j50 + int(np.argmax(seg_q[j50:] <= base - 0.9 * (base - c.q_trough)))
    span = 2 * (seg_t[j90b] - seg_t[j50]) + NS_PER_S
    lo = int(np.searchsorted(seg_t, seg_t[j50] - span, side="left"))
    window = seg_q[lo:j50 + 1]
    kmax = lo + (window.size - 1 - int(np.argmax(window[::-1])))
    ref = max(float(seg_q[kmax]), c.q_trough)
    l10, l90 = ref - 0.1 * (ref - c.q_trough), ref - 0.9 * (ref - c.q_trough)
    j10 = settle(l10, kmax, j50)
    j90 = j10 + int(np.argmax(seg_q[j10:] <= l90))
    p10 = float(seg_q[j10 - 1]) if j10 > 0 else ref
    p90 = float(seg_q[j90 - 1]) if j90 > 0 else ref
    return int(seg_t[j10]), int(seg_t[j90]), l10, l90, p10, p90



def _refine(ctx: Context, side: str, c: Cliff, floor, cap) -> tuple[int, int, int, int]:
    """(t10, t90, grid10, grid90): the 10% / 90% crossing times refined to the update (ms
    precision) at which the net decrease inside the crossing grid step reached the level."""
    g = ctx.grid_ns
    g10, g90, l10, l90, p10, p90 = _fall_points(ctx, c)
    if ctx.data_kind == "bands":
        return c.t_peak, c.t_trough, c.t_peak, c.t_trough
    out = []
    for gt, level, prev in ((g10, l10, p10), (g90, l90, p90)):
        tt = gt
        if ctx.lc is not None:
            w = _window_changes(ctx, [side], gt - g, gt, floor, cap)
            need = prev - level
            if w.height and need > 0:
                cum = np.cumsum(-w["delta"].to_numpy().astype(np.float64))
                hit = np.nonzero(cum >= need)[0]
                if hit.size:
                    tt = int(w["ts"][int(hit[0])])
        out.append(tt)
    return out[0], max(out[1], out[0]), g10, g90
