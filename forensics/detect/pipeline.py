"""The detection pipeline per instrument (:func:`detect_instrument`: cliffs -> flow -> flicker ->
merging -> metrics -> classification), trade coverage (no trades, no verdict), and the public
entry :func:`detect` that writes table ``events``."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from forensics.classify import classify, evidence_json
from forensics.detect.bands import (
    _anomaly_events,
    _band_evidence,
)
from forensics.detect.cliffs import (
    _cliff_spans,
    _continuations,
    _group_cliffs,
)
from forensics.detect.context import (
    Context,
    _series,
    build_context,
)
from forensics.detect.flicker import _level_share, find_flicker
from forensics.detect.flow import (
    _program_before,
    _volume_share_before,
    find_flow,
)
from forensics.detect.metrics import (
    _cliff_event,
    _flicker_event,
    _flow_event,
    event_metrics,
)
from forensics.detect.params import EVENT_SCHEMA, DetectParams
from forensics.errors import ForensicsError
from forensics.store import Store
from forensics.timeutil import NS_PER_MS, NS_PER_S


def trade_coverage(trades: pl.DataFrame, w0: int, w1: int, gap_s: float) -> tuple[str, str]:
    """Does trade data cover [w0, w1]? ('full' | 'partial' | 'none', reason). A stretch of more
    than ``gap_s`` without any print within [w0 - gap_s, w1 + gap_s] leaves the window uncovered;
    the stretch from the window's start to the first stored print and from the last stored print
    to the window's end counts as such a stretch too (a window 85 ms after the last print of a
    capture whose book ends 400 ms later is covered: prints are that sparse everywhere). Beyond
    ``gap_s`` past the stored trades: 'none' if the window lies wholly outside them, else
    'partial'."""
    if trades.height == 0:
        return "none", "no trade data in the store for this instrument"
    lo, hi = int(trades["ts"].min()), int(trades["ts"].max())
    g = int(gap_s * NS_PER_S)
    if (w1 < lo and lo - w0 > g) or (w0 > hi and w1 - hi > g):
        return "none", "no trade data covers the window (trades stored from " \
            f"{dt.datetime.fromtimestamp(lo / 1e9, dt.timezone.utc):%Y-%m-%d %H:%M:%S} to " \
            f"{dt.datetime.fromtimestamp(hi / 1e9, dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC)"
    if lo - w0 > g or w1 - hi > g:
        return "partial", "trade data covers only part of the window"
    ts = trades.filter((pl.col("ts") >= w0 - g) & (pl.col("ts") <= w1 + g))["ts"].sort().to_numpy()
    edges = np.concatenate([[min(max(w0 - g, lo), w0)], ts, [max(min(w1 + g, hi), w1)]])
    longest = int(np.diff(edges).max()) if edges.size > 1 else 0
    if longest > g:
        return "partial", f"no print for {longest / NS_PER_S:.0f} s around the window (a gap in the trade data?)"
    return "full", ""



def detect_instrument(store: Store, ex: str, sy: str, ts_from: int | None = None, ts_to: int | None = None,
                      params: DetectParams = DetectParams(), ctx: Context | None = None) -> pl.DataFrame:
    """Events of one instrument (not written). See :func:`detect`: cliffs (and band-data
    anomalies) -> flow episodes -> flicker, then flicker absorbs the cliffs its orders caused,
    each program merges with the events it belongs to, and every event is classified."""
    p = params
    ctx = ctx or build_context(store, ex, sy, ts_from, ts_to, p)
    cliff_events = _continuations(_group_cliffs(ctx, p), ctx, p)
    flows = find_flow(ctx.trades, p, _cliff_spans(cliff_events, p), _flow_book(ctx)) if p.flow else []
    flickers = find_flicker(ctx, p) if (p.flicker and ctx.data_kind == "book") else []
    events = _cliff_stage(ctx, cliff_events, p)
    events = _absorb_into_flicker(ctx, events, flickers, p)
    for fw in _fold_counter_flow(flows, p):
        events = _merge_flow(ctx, events, fw, p)
    events = _fold_aftermath(events, p, lambda e: _label(ctx, e, p))
    events = _fold_refalls(events, p, lambda e: _label(ctx, e, p))
    events = _fold_flicker_inside(events, p)
    rows = [_finish(ctx, e, ex, sy, p) for e in sorted(events, key=lambda e: e["start_ts"])]
    if not rows:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    return pl.DataFrame(rows, schema=EVENT_SCHEMA)


def _fold_counter_flow(flows: list[dict], p: DetectParams) -> list[dict]:
    """Two programs of opposite aggressors overlapping by >= ``flow_opposite_overlap`` of the
    shorter one: the weaker (lower z) is the stronger one's counter-flow (takers leaning against
    the move, makers hedging), listed in its evidence, not an event of its own."""
    drop: set[int] = set()
    for i, a in enumerate(flows):
        for j, b in enumerate(flows):
            if j <= i or a["aggressor"] == b["aggressor"] or i in drop or j in drop:
                continue
            ov = min(a["end"], b["end"]) - max(a["start"], b["start"])
            short = min(a["end"] - a["start"], b["end"] - b["start"])
            if short > 0 and ov >= p.flow_opposite_overlap * short:
                weak, strong = (i, j) if a["z"] < b["z"] else (j, i)
                drop.add(weak)
                flows[strong].setdefault("_counter", []).append(flows[weak])
    return [fw for k, fw in enumerate(flows) if k not in drop]


def _flow_book(ctx: Context) -> dict | None:
    """What the flow trigger reads of the book (level data only: band samples ~30 s apart
    cannot show a few seconds' erosion): the touch band's depth per side and the mid."""
    if ctx.data_kind != "book" or not ctx.bands or ctx.top.height == 0:
        return None
    band = min(ctx.bands)
    return {**{s: _series(ctx, s, band) for s in ("bid", "ask")},
            "mid": (ctx.top["ts"].to_numpy(), ctx.top["mid"].to_numpy().astype(np.float64))}


def _label(ctx: Context, e: dict, p: DetectParams) -> str:
    """The classifier's label of an event under construction (used to decide merges)."""
    return classify(event_metrics(e, ctx.data_kind), p.thresholds)[0]


def _cliff_stage(ctx: Context, cliff_events: list[dict], p: DetectParams) -> list[dict]:
    """Event dicts of the grouped cliffs (band data: plus the ``data_anomaly`` falls that exist
    only in flagged bands, and the band evidence lines)."""
    events = []
    if ctx.data_kind == "bands":
        cliff_events += _anomaly_events(ctx, cliff_events, p)
    for ev in cliff_events:
        ce = _cliff_event(ev, ctx, p)
        if ce.get("_band_edge"):
            continue  # the band followed the mid away: no depth lost at the side's own levels
        if ev.get("_anomaly"):
            ce["_anomaly"] = ev["_anomaly"]
            ce["_recovered_at"] = ce["window_to"]
        if ctx.data_kind == "bands":
            _band_evidence(ctx, ev, ce)
        if _requote_back(ctx, ev, ce, p) and _label(ctx, ce, p) == "one_sided_pull":
            continue  # one side's depth was all back at once: a maker re-quoting its ladder, not a pull
        events.append(ce)
    return events


def _requote_back(ctx: Context, ev: dict, ce: dict, p: DetectParams) -> bool:
    """Level data: a one-sided cliff whose band was back to ``requote_back_frac`` of its usual
    depth (the band's baseline; ``requote_back_usual`` off: the greater of the depth just before
    the fall and the baseline) within ``requote_back_s`` of its trough: the side's quotes were
    re-priced (one maker cancelling its ladder as its inventory or reservation price moved, and
    re-quoting), not pulled (pulled quotes stay away for the hold, then return in steps). Never
    below the baseline: a side already thinned (a pull's re-fall while its makers return in
    steps) is not "back" at its thinned level; a band stacked above its baseline just before the
    fall is back at its usual depth (``requote_back_usual``); and the fall must start from the
    band's usual depth (the depth just before it >= ``requote_back_frac`` of the baseline)."""
    if ctx.data_kind != "book" or p.requote_back_s <= 0 or ce.get("sides") not in ("bid", "ask"):
        return False
    c = ev["cliffs"].get(ce["sides"])
    if c is None or len(ev["cliffs"]) != 1:
        return False
    if c.q_peak < p.requote_back_frac * c.baseline:
        return False  # the fall started in an already thinned band (a pull's later stage), not a full one
    t, q = _series(ctx, c.side, c.band)
    k0 = np.searchsorted(t, c.t_trough, side="left")
    k1 = np.searchsorted(t, c.t_trough + int(p.requote_back_s * NS_PER_S), side="right")
    # a band stacked above its usual depth just before the fall is back when at its usual depth
    ref = c.baseline if p.requote_back_usual else max(c.q_peak, c.baseline)
    return bool(k1 > k0 and np.any(q[k0:k1] >= p.requote_back_frac * ref))


def _absorb_into_flicker(ctx: Context, events: list[dict], flickers: list[dict], p: DetectParams) -> list[dict]:
    """Each flicker episode becomes an event and absorbs the cliffs overlapping it whose net fall
    is >= ``flicker_absorb_share`` its orders being pulled."""
    for fl in flickers:
        levels = {(x["side"], x["price"]) for x in fl["pairs"]}
        keep, absorbed = [], []
        for e in events:
            if e["trigger"] == "cliff" and e["start_ts"] <= fl["end"] + NS_PER_S and e["end_ts"] >= fl["start"] - NS_PER_S:
                share = _level_share(ctx, e, levels)
                if share >= p.flicker_absorb_share:
                    absorbed.append(e)
                    continue
            keep.append(e)
        fe = _flicker_event(fl, ctx, p)
        fe["_absorbed"] = absorbed
        events = keep + [fe]
    return events


def _flow_is_context(ctx: Context, e: dict, fw: dict, p: DetectParams) -> bool:
    """Is program ``fw`` the context of event ``e``: starting inside its window, up to
    ``flow_merge_s`` after it or (a cliff) before its depth recovered (at most
    ``aftermath_max_s``, and at most ``flow_context_max_s`` after its end), or running into a
    two-sided cliff that is not a consumption with no program of its own before it (a long
    program whose cliff comes early, with under ``flow_lead_share`` of its volume before it, is
    still the event: dev seed 114), or with one but the cliff reads synchronized_withdrawal and
    the program's own window does not read consumption (:func:`_defers_to_withdrawal`)?"""
    merge = int(p.flow_merge_s * NS_PER_S)
    until = e["window_to"] + merge
    if e["trigger"] == "cliff":  # the aftermath lasts until the depth is back
        rec = e.get("_recovered_at")
        until = max(until, min(rec if rec is not None else e["window_to"] + int(p.recovery_horizon_s * NS_PER_S),
                               e["window_to"] + int(min(p.aftermath_max_s, p.flow_context_max_s) * NS_PER_S)))
    # a program running into a two-sided cliff with no program of its own before it is that
    # cliff's context (the withdrawal is the event; the flow is reported with it)
    into = False
    if e["trigger"] == "cliff" and e["sides"] == "both" and fw["start"] < e["window_from"] <= fw["end"]:
        lab = _label(ctx, e, p)
        into = lab != "consumption" and (not _program_before(ctx, fw, e["window_from"], p)
                                         or _defers_to_withdrawal(ctx, lab, fw, p))
    return into or (e["trigger"] in ("cliff", "flicker") and e["window_from"] - NS_PER_S <= fw["start"] <= until)


def _defers_to_withdrawal(ctx: Context, cliff_label: str, fw: dict, p: DetectParams) -> bool:
    """(``flow_defers_to_withdrawal``) Does program ``fw``, with a program of its own before
    the two-sided cliff it runs into (whose label is ``cliff_label``), still belong to it: the
    cliff reads synchronized_withdrawal and the program's own window does not read consumption
    (what it saw go was cancelled, the withdrawal's pull, not traded)?"""
    return (p.flow_defers_to_withdrawal and cliff_label == "synchronized_withdrawal"
            and _label(ctx, _flow_event(fw, ctx, p), p) != "consumption")


def _merge_flow(ctx: Context, events: list[dict], fw: dict, p: DetectParams) -> list[dict]:
    """Program ``fw`` joins the first event it is the context of (:func:`_flow_is_context`);
    otherwise it is an event of its own that absorbs the cliffs during it: of the consumed side,
    after ``flow_lead_share`` of its volume, not a pull (trade-driven, or the book re-centring
    under it), or (``flow_absorbs_consumed_pulls``) a one-sided pull of the consumed side while
    the program runs (its makers backing away from the aggressor); a program that opened with both sides pulled (a withdrawal and its cascade)
    absorbs every later fall before the book is back, at most ``aftermath_max_s``. Not absorbed
    (``flow_keeps_withdrawals``): a cliff reading synchronized_withdrawal starting after the
    program's end (the makers' own incident)."""
    for e in events:
        if _flow_is_context(ctx, e, fw, p):
            e["_flow_after"] = fw
            return events
    fe = _flow_event(fw, ctx, p)
    for c in fw.get("_counter", []):
        fe.setdefault("_notes", []).append(
            f"with {c['aggressor']} counter-flow: {c['prints']} taker prints at {c['ratio']:.1f}x that side's trailing "
            f"rate from {(c['start'] - fw['start']) / NS_PER_MS:+.0f} ms (z {c['z']:.1f}, weaker than this program's)")
    wd = _label(ctx, fe, p) == "synchronized_withdrawal"
    until = fw["end"] + int((p.aftermath_max_s if wd else p.flow_merge_s) * NS_PER_S)
    keep = []
    for e in events:
        if not wd and e["start_ts"] > fw["end"] and _withdrawal_after_program(fe, e, p, lambda x: _label(ctx, x, p)):
            keep.append(e)  # makers pulling both sides after the program: an incident of its own
            continue
        if (e["trigger"] == "cliff" and fw["start"] <= e["start_ts"] <= until
                and (wd or e["sides"] == fw["side"]
                     or _volume_share_before(ctx, fw, e["window_from"]) >= p.flow_lead_share
                     or _label(ctx, e, p) in ("consumption", "mixed")
                     or (p.flow_absorbs_consumed_pulls and e["start_ts"] <= fw["end"]
                         and _pulled_side(e) == fw["side"] and _label(ctx, e, p) == "one_sided_pull"))):
            fe.setdefault("_absorbed", []).append(e)
            continue
        keep.append(e)
    return keep + [fe]


def _both_pulled(e: dict, p: DetectParams) -> bool:
    """Did both sides of ``e`` lose a pull burst of their own at its start (each side's largest
    net cancellation in 500 ms >= ``Thresholds.pull_both_min``)? The makers' measured pull, not
    only a two-sided fall (161-400 seed 200: both touch bands empty within one 100 ms step, no
    per-side burst measured, 1 s after a 110 s buy program: its aftermath)."""
    pb, pa = e.get("_pull_bid"), e.get("_pull_ask")
    return pb is not None and pa is not None and min(pb, pa) >= p.thresholds.pull_both_min


def _keeps_withdrawal(fe: dict, p: DetectParams) -> bool:
    """(``flow_keeps_withdrawals``) Is a two-sided pull after flow event ``fe`` an incident of its
    own? Yes unless the program opened with both sides pulled (each side's burst at its start >=
    ``Thresholds.pull_both_min``): then it is a withdrawal's cascade read as a program, and the
    later pulls are its re-pulls (dev4 seed 536: bursts 54% / 49% at the start, a re-pull 34 s
    after the program)."""
    return p.flow_keeps_withdrawals and not _both_pulled(fe, p)


def _withdrawal_after_program(fe: dict, e: dict, p: DetectParams, label) -> bool:
    """(``flow_keeps_withdrawals``) Is cliff ``e``, after the end of program ``fe`` (the caller
    checks the timing), the makers' own incident, neither absorbed into the program nor folded
    into its aftermath: ``e`` reads synchronized_withdrawal with both sides' pull bursts measured
    (:func:`_both_pulled`), after a program that neither reads withdrawal itself nor opened with
    both sides pulled (:func:`_keeps_withdrawal`)? ``label(event)``: the classifier's label."""
    return (fe["trigger"] == "flow" and _keeps_withdrawal(fe, p) and e["trigger"] == "cliff"
            and _both_pulled(e, p) and label(e) == "synchronized_withdrawal"
            and label(fe) != "synchronized_withdrawal")


def _pulled_side(e: dict) -> str | None:
    """The side whose pull burst at the event's start was the larger (None without both)."""
    pb, pa = e.get("_pull_bid"), e.get("_pull_ask")
    if pb is None or pa is None:
        return None
    return "bid" if pb > pa else "ask"


def _fold_aftermath(events: list[dict], p: DetectParams, label=None) -> list[dict]:
    """A cliff or program starting within ``aftermath_fold_s`` after the end of the previous
    (non-flicker) event, of the program reported with it (its cascade), or (``aftermath_from_recovery``)
    of its depth's recovery (at most ``aftermath_max_s`` after its end) is part of that event's
    aftermath (the book has not settled: re-pulls, hedging flow, the deep bands catching up) and
    is folded into it, listed in its evidence; a program within ``flow_tail_fold_s`` after a
    program of the same aggressor is its tail. Not folded (``pulls_after_consumption``): a cliff
    reading as a pull (``label(event)``) after a consumption cliff's depth was back (the
    takers' book refilled; makers pulling then is an incident of its own), nor
    (``flow_keeps_withdrawals``) a cliff reading synchronized_withdrawal with both sides' pull
    bursts measured after a program that does not read withdrawal itself (takers consuming one
    side do not pull both), nor (``own_pull_burst``) a cliff reading one_sided_pull whose pull
    burst is >= that share of its side's depth (the book settling does not cancel that much at once)
    after an event that does not read synchronized_withdrawal (its makers re-pull as they return)."""
    fold = int(p.aftermath_fold_s * NS_PER_S)
    out: list[dict] = []
    label0 = label
    for e in sorted(events, key=lambda e: e["start_ts"]):
        prev = next((x for x in reversed(out) if x["trigger"] != "flicker"), None)
        end = prev.get("_fold_until", prev["window_to"]) if prev is not None else None
        # a program soon after the same aggressor's program is its tail (flow_tail_fold_s)
        tail = (prev is not None and e["trigger"] == prev["trigger"] == "flow"
                and (e.get("program") or {}).get("aggressor") == (prev.get("program") or {}).get("aggressor"))
        reach = int(p.flow_tail_fold_s * NS_PER_S) if tail else fold
        # the aftermath runs on from the end of the program reported with the event (its cascade)
        # and from the time its depth was back (the book settling)
        last = max(end, (prev.get("_flow_after") or {}).get("end", 0)) if prev is not None else None
        rec = prev.get("_recovered_at") if prev is not None and prev["trigger"] == "cliff" else None
        if p.aftermath_from_recovery and rec is not None:
            last = max(last, min(rec, prev["window_to"] + int(p.aftermath_max_s * NS_PER_S)))
        if _foldable(e) and end is not None and end < e["start_ts"] <= last + reach:
            label = _once(label0) if label0 is not None else None  # prev and e unchanged until folded
            if (p.pulls_after_consumption and label is not None and rec is not None and rec < e["start_ts"]
                    and e["trigger"] == "cliff" and label(prev) == "consumption"
                    and label(e) in ("one_sided_pull", "synchronized_withdrawal")):
                out.append(e)
                continue
            if label is not None and _own_pull(e, p, label) and label(prev) != "synchronized_withdrawal":
                out.append(e)  # makers cancelling much of one side at once: a pull of its own (own_pull_burst)
                continue
            if label is not None and _withdrawal_after_program(prev, e, p, label):
                out.append(e)  # both sides pulled after a program: the makers' own incident (flow_keeps_withdrawals)
                continue
            prev.setdefault("_absorbed", []).append(e)
            prev["_fold_until"] = max(end, e["window_to"])
            continue
        out.append(e)
    return out


def _once(label):
    """``label`` computing each event's label at most once (a classification per call: the fold
    rules ask for the same two events' labels up to five times per decision)."""
    seen: dict[int, str] = {}

    def once(e: dict) -> str:
        if id(e) not in seen:
            seen[id(e)] = label(e)
        return seen[id(e)]
    return once


def _own_pull(e: dict, p: DetectParams, label) -> bool:
    """(``own_pull_burst``) Is ``e`` a pull of its own, not another event's aftermath:
    a one-sided cliff reading one_sided_pull (``label(event)``) whose larger side's pull burst (net
    cancellation within 500 ms) is >= ``own_pull_burst`` of its depth? The book settling after
    an event (re-quotes, the deep band catching up, the makers' return steps) does not cancel
    that much of one side at once."""
    return (p.own_pull_burst > 0 and e["trigger"] == "cliff" and e.get("sides") in ("bid", "ask")
            and max(e.get("_pull_bid") or 0.0, e.get("_pull_ask") or 0.0) >= p.own_pull_burst
            and label(e) == "one_sided_pull")


def _foldable(e: dict) -> bool:
    """May ``e`` be folded into an earlier event (and listed in its evidence as one of its
    cliffs)? Not a flicker (an episode of its own), and not a fall that exists only in bands the
    data-quality flags mark (``data_anomaly``): folded, its flag would vanish into another
    event's verdict."""
    return e["trigger"] != "flicker" and not e.get("_anomaly")


def _fold_refalls(events: list[dict], p: DetectParams, label) -> list[dict]:
    """A one-sided cliff whose largest fall is in a band >= ``refall_band_pct`` (0: any) starting
    < ``refall_s`` after an earlier cliff of the same side that reads ``one_sided_pull``
    (``label(event)``) is that pull's re-fall (the deep band catching up, or the makers'
    re-quote step): folded into it, listed in its evidence."""
    if p.refall_s <= 0:
        return events
    reach = int(p.refall_s * NS_PER_S)
    out: list[dict] = []
    pulls: list[dict] = []
    for e in sorted(events, key=lambda e: e["start_ts"]):
        if (_foldable(e) and e["trigger"] == "cliff" and e["sides"] in ("bid", "ask")
                and e.get("band_pct") is not None and e["band_pct"] >= p.refall_band_pct):
            ref = next((x for x in reversed(pulls) if x["sides"] == e["sides"]
                        and x["start_ts"] < e["start_ts"] <= x["start_ts"] + reach), None)
            if ref is not None:
                ref.setdefault("_absorbed", []).append(e)
                ref["_fold_until"] = max(ref.get("_fold_until", ref["window_to"]), e["window_to"])
                continue
        if e["trigger"] == "cliff" and e["sides"] in ("bid", "ask") and label(e) == "one_sided_pull":
            pulls.append(e)
        out.append(e)
    return out


def _extent(e: dict, p: DetectParams) -> tuple[int, int]:
    """(from, to) ns an event keeps the book disturbed: its window, what was folded into it, the
    program reported with it and, for a cliff, its recovery (at most ``aftermath_max_s`` after
    its window)."""
    end = max(e["window_to"], e.get("_fold_until", 0), (e.get("_flow_after") or {}).get("end", 0))
    if e["trigger"] == "cliff":
        cap = e["window_to"] + int(p.aftermath_max_s * NS_PER_S)
        rec = e.get("_recovered_at")
        end = max(end, cap if rec is None else min(rec, cap))
    return e["window_from"], end


def _fold_flicker_inside(events: list[dict], p: DetectParams) -> list[dict]:
    """A flicker episode that absorbed no cliff and lies >= ``flicker_inside_share`` of its span
    inside another event's extent (:func:`_extent`) is that event's makers re-quoting their grid
    while the book is disturbed (quotes placed and pulled as the mid walks, or while the pulled
    side returns), not a flicker of its own: folded into the event, listed in its evidence."""
    if p.flicker_inside_share <= 0:
        return events
    hosts = [(e, *_extent(e, p)) for e in events if e["trigger"] != "flicker"]
    out = []
    for e in events:
        if e["trigger"] == "flicker" and not e.get("_absorbed"):
            span = max(e["end_ts"] - e["start_ts"], 1)
            best, share = None, 0.0
            for h, a, b in hosts:
                ov = (min(b, e["end_ts"]) - max(a, e["start_ts"])) / span
                if ov > share:
                    best, share = h, ov
            if best is not None and share >= p.flicker_inside_share:
                best.setdefault("_notes", []).append(
                    f"{e['flicker_pairs']} large orders placed away from the touch and pulled within seconds from "
                    f"{(e['start_ts'] - best['start_ts']) / NS_PER_MS:+.0f} ms, inside this event ({100 * share:.0f}% "
                    "of their span): its makers re-quoting while the book is disturbed, not a flicker of its own")
                continue
        out.append(e)
    return out


def _null_without_trades(ctx: Context, e: dict, ex: str, sy: str, p: DetectParams) -> None:
    """No evidence, no verdict: a cliff whose window trade data does not fully cover gets its
    trade coverage and the reason (naming the data that would decide it) and null trade figures."""
    cov, why = trade_coverage(ctx.trades, e["window_from"], e["window_to"], p.trade_gap_s)
    if cov == "full":
        return
    day = dt.datetime.fromtimestamp(e["start_ts"] / 1e9, dt.timezone.utc).strftime("%Y-%m-%d")
    e["_trade_coverage"] = cov
    e["_trade_reason"] = (f"{why}: the data cannot tell a pull from a sweep; the venue's trades / "
                          f"aggTrades for {ex} {sy} on {day} would decide it")
    for k in ("traded_share", "traded_share_net", "traded_qty", "cancelled_qty", "trade_volume"):
        e[k] = None


def _context_evidence(e: dict) -> list[str]:
    """Evidence lines for what was merged into an event: a program with it, continuations,
    absorbed cliffs, the liquidity vacuum afterwards."""
    evidence = list(e.get("_notes", []))
    if e.get("_flow_after"):
        fw = e["_flow_after"]
        evidence.append(f"{'followed' if fw['start'] >= e['start_ts'] else 'accompanied'} by a {fw['aggressor']} "
                        f"program: {fw['prints']} taker prints at {fw['ratio']:.1f}x the side's trailing rate "
                        f"from {(fw['start'] - e['end_ts']) / NS_PER_MS:+.0f} ms after the end")
    if e.get("continuations"):
        evidence.append(f"{e['continuations']} further fall(s) before recovery folded in")
    for c in e.get("_absorbed", []):
        evidence.append(f"includes a {c['sides']} depth cliff at {(c['start_ts'] - e['start_ts']) / NS_PER_MS:+.0f} ms "
                        f"({100 * (c.get('removed_frac') or 0):.0f}% removed)")
    if e.get("vacuum_ratio") is not None and e["vacuum_ratio"] == e["vacuum_ratio"]:
        evidence.append(f"afterwards each unit of volume moved the price {e['vacuum_ratio']:.1f}x as much as before")
    return evidence


def _finish(ctx: Context, e: dict, ex: str, sy: str, p: DetectParams) -> dict:
    """One ``events`` row: trade coverage, label, confidence, evidence and id."""
    e.setdefault("data_kind", ctx.data_kind)
    if e["trigger"] == "cliff":
        _null_without_trades(ctx, e, ex, sy, p)
    label, conf, evidence = classify(event_metrics(e), p.thresholds)
    evidence.extend(_context_evidence(e))
    e["label"], e["confidence"], e["evidence"] = label, conf, evidence_json(evidence)
    e["event_id"] = _event_id(sy, e)
    return {k: e.get(k) for k in EVENT_SCHEMA}


def _event_id(sy: str, e: dict) -> str:
    t = dt.datetime.fromtimestamp(e["start_ts"] // NS_PER_S, tz=dt.timezone.utc)
    ms = (e["start_ts"] % NS_PER_S) // NS_PER_MS
    return f"{sy}-{t:%Y%m%dT%H%M%S}.{ms:03d}Z-{e['trigger']}"



def instruments(store: Store, exchange: str | None = None, symbol: str | None = None) -> list[tuple[str, str]]:
    pairs = sorted(set(store.instruments_in("book_updates")) | set(store.instruments_in("depth_bands")))
    out = [x for x in pairs if (exchange is None or x[0] == exchange) and (symbol is None or x[1] == symbol)]
    if not out:
        listing = ", ".join(f"{e}/{s}" for e, s in pairs) or "none"
        raise ForensicsError(f"no level or band data for exchange={exchange or '*'} symbol={symbol or '*'} in "
                             f"{store.root} (instruments: {listing}); ingest data first with `forensics ingest`")
    return out



def write_events(store: Store, ex: str, sy: str, events: pl.DataFrame, lo: int | None, hi: int | None) -> None:
    """Upsert: events of the touched dates outside [lo, hi] are kept, those inside replaced
    (no window: every stored event of the instrument is replaced). Merged and encoded outside
    the writer lock, committed under it (:func:`forensics.upsert.upsert`)."""
    from forensics.upsert import upsert

    def outside(old: pl.DataFrame) -> pl.DataFrame:
        m = pl.lit(False)
        if lo is not None:
            m = m | (pl.col("start_ts") < lo)
        if hi is not None:
            m = m | (pl.col("start_ts") > hi)
        return old.filter(m)

    def merge(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
        keep = [outside(f) for f in frames if "start_ts" in f.columns] if (lo is not None or hi is not None) else []
        df = pl.concat([pl.concat(keep, how="diagonal_relaxed"), events], how="diagonal_relaxed") if keep else events
        return df.sort("start_ts") if df.height else None

    upsert(store, "events", ex, sy, lo, hi, merge, ts_column="start_ts", name="events")


def detect(store: Store | str | None, exchange: str | None = None, symbol: str | None = None,
           ts_from: int | None = None, ts_to: int | None = None, params: DetectParams = DetectParams(),
           write: bool = True) -> pl.DataFrame:
    """Detect and classify liquidity events for every instrument matching the filters.

    Times are UTC ns (inclusive window; None = all data). Runs attribution (written to
    ``level_changes``) and the depth grid (``depth``/``book_top``) for level data, then cliffs,
    flow episodes and flicker, metrics and labels. Returns the events (one row each, columns
    ``exchange``, ``symbol`` + :data:`EVENT_SCHEMA`, stored units) and, with ``write``, stores
    them in table ``events`` (partitioned by the date of ``start_ts``).
    """
    store = store if isinstance(store, Store) else Store(store)
    if ts_from is not None and ts_to is not None and ts_to < ts_from:
        raise ForensicsError("--to is before --from")
    frames = []
    for ex, sy in instruments(store, exchange, symbol):
        with store.reading():  # one consistent version of the instrument (see Store.reading)
            ev = detect_instrument(store, ex, sy, ts_from, ts_to, params)
            if write:
                write_events(store, ex, sy, ev, ts_from, ts_to)
        frames.append(ev.select(pl.lit(ex).alias("exchange"), pl.lit(sy).alias("symbol"), pl.all()))
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame()
