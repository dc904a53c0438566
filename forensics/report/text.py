"""The words: the report's label for an event, the facts the sentences use, the headline, the
chart annotation, the phase 1 (the removal) / phase 2 (the vacuum) narrative and the caveats.
Every number in them is formatted from a :class:`~forensics.report.metrics.Metric`.
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from forensics.report.fmt import clock, duration, pct, qty
from forensics.report.metrics import Metric, event_band, event_sides, first_value, trades_known, vacuum_windows
from forensics.report.params import report_params
from forensics.timeutil import NS_PER_MS
from forensics.vocab import DataKind, Label, Side, label_closing, label_meaning, label_short


# thresholds of the wording (low confidence, "nothing removed"): ctx.report, a
# forensics.report.params.ReportParams


def deciding_file(ctx, ns: int) -> str:
    """The file that would decide traded vs cancelled for an event on that day."""
    from forensics.report.context import local_dt
    day = local_dt(int(ns), "UTC").strftime("%Y-%m-%d")
    if ctx.exchange.lower().startswith("binance"):
        return f"the venue's trades for that day, Binance's `{ctx.symbol}-aggTrades-{day}.csv` (or `-trades-`)"
    return f"the venue's trades file for {ctx.symbol} on {day} (UTC)"


def report_label(ev: dict, ctx) -> str:
    """The label the report can stand behind with the data present: the detector's, except that a
    causal label (withdrawal / pull / consumption / mixed) without any trades in the store becomes
    ``depth_collapse``, and a fall in a band the data-quality checks flagged becomes ``data_anomaly``
    (the detector of issue 11 writes these labels itself; older events are relabelled here)."""
    label = ev.get("label") or "mixed"
    if label in ("depth_collapse", "data_anomaly", "flicker"):
        return label
    if event_flags(ev, ctx):
        return "data_anomaly"
    if label in Label.causal() and not trades_known(ctx):
        return "depth_collapse"
    return label


def event_flags(ev: dict, ctx) -> list[dict]:
    """Data-quality flags on the event's band and side(s) overlapping the event in time."""
    flags = getattr(ctx, "flags", None)
    if flags is None or flags.height == 0:
        return []
    band = event_band(ev, ctx)
    sides = event_sides(ev)
    lo = int(ev.get("window_from") if ev.get("window_from") is not None else ev["start_ts"])
    hi = int(ev.get("window_to") if ev.get("window_to") is not None else ev["end_ts"])
    out = []
    for f in flags.iter_rows(named=True):
        if f.get("band_pct") is not None and abs(f["band_pct"] - band) > 1e-9:
            continue
        if f.get("side") is not None and f["side"] not in sides:
            continue
        if f.get("band_pct") is None and f.get("kind") not in ("non_monotonic", "avg_price_wrong_side"):
            continue
        a, b = f.get("first_ts"), f.get("last_ts")
        if a is not None and b is not None and (b < lo or a > hi):
            continue
        out.append(f)
    return out


def traded_text(f: EventFacts) -> str | None:
    """Gross and net traded share side by side (one definition each, one formatter)."""
    g, n = f.traded_gross, f.traded_net
    if g is not None and n is not None:
        return f"{pct(g)} of the removed volume traded gross, {pct(n)} net of re-posting"
    if g is not None or n is not None:
        return f"{pct(g if g is not None else n)} of the removed volume traded"
    return None


@dataclass
class EventFacts:
    """The handful of numbers the sentences use, the detector's preferred (``None``: not measured,
    or unknown with the data present). Shares are removed fractions; sizes in the base asset."""

    start: int
    end: int
    dur_ns: int
    band: float
    bid_share: float | None
    ask_share: float | None
    traded_share: float | None
    traded_net: float | None
    traded_gross: float | None
    levels: int | None
    lag_ms: float | None
    bid_before: float | None
    bid_after: float | None
    ask_before: float | None
    ask_after: float | None
    sell: float | None
    buy: float | None
    impact_ratio: float | None
    impact_before: float | None
    impact_after: float | None
    spread_before: float | None
    spread_after: float | None
    recovery_ms: float | None
    move_after_bps: float | None
    move_bps: float | None
    nothing_removed: bool = False

    def share(self, side: str) -> float | None:
        return self.bid_share if side == Side.BID else self.ask_share

    def before(self, side: str) -> float | None:
        return self.bid_before if side == Side.BID else self.ask_before

    def after(self, side: str) -> float | None:
        return self.bid_after if side == Side.BID else self.ask_after


def facts(ev: dict, m: dict[str, Metric], ctx) -> EventFacts:
    """The facts of one event from its metrics; a traded share of a removal only when depth was
    removed, and nothing measured against trades when the store has none."""
    start, end = int(ev["start_ts"]), int(ev["end_ts"])
    f = EventFacts(
        start=start, end=end, dur_ns=end - start,
        band=event_band(ev, ctx),
        bid_share=first_value(m, "removed_frac_bid", "grid_removed_bid"),
        ask_share=first_value(m, "removed_frac_ask", "grid_removed_ask"),
        traded_share=first_value(m, "traded_share_net", "traded_share"),
        traded_net=first_value(m, "traded_share_net"), traded_gross=first_value(m, "traded_share"),
        levels=first_value(m, "levels_hit"),
        lag_ms=first_value(m, "side_lag_ms"),
        bid_before=first_value(m, "depth_before_bid", "grid_depth_before_bid"),
        bid_after=first_value(m, "depth_after_bid", "grid_depth_after_bid"),
        ask_before=first_value(m, "depth_before_ask", "grid_depth_before_ask"),
        ask_after=first_value(m, "depth_after_ask", "grid_depth_after_ask"),
        sell=first_value(m, "sell_volume"), buy=first_value(m, "buy_volume"),
        impact_ratio=first_value(m, "vacuum_ratio"),
        impact_before=first_value(m, "impact_before"), impact_after=first_value(m, "impact_after"),
        spread_before=first_value(m, "spread_bps_before"), spread_after=first_value(m, "spread_bps_after"),
        recovery_ms=first_value(m, "recovery_ms"),
        move_after_bps=first_value(m, "price_move_after_bps"), move_bps=first_value(m, "price_move_bps"),
    )
    if f.traded_share is None:
        t = sum(m[f"traded_{s}"].value or 0 for s in event_sides(ev) if f"traded_{s}" in m)
        c = sum(m[f"cancelled_{s}"].value or 0 for s in event_sides(ev) if f"cancelled_{s}" in m)
        f.traded_share = t / (t + c) if t + c > 0 else None
        f.traded_gross = f.traded_share
    shares = [f.share(x) for x in event_sides(ev)]
    grew = [f.after(x) > f.before(x) for x in event_sides(ev)
            if f.after(x) is not None and f.before(x) is not None]
    # nothing left the band on the side(s) the event is about: no share of a removal to speak of
    f.nothing_removed = bool(shares) and all(x is not None and x <= report_params(ctx).nothing_removed for x in shares) \
        or (bool(grew) and all(grew))
    if f.nothing_removed:
        f.traded_share = f.traded_gross = f.traded_net = None
    if not trades_known(ctx):
        f.traded_share = f.traded_gross = f.traded_net = None
        f.sell = f.buy = f.impact_ratio = f.impact_before = f.impact_after = None
    return f


def headline(ev: dict, m: dict[str, Metric], ctx) -> str:
    f = facts(ev, m, ctx)
    label = ev.get("label") or "mixed"
    sides = event_sides(ev)
    when = f"On {clock(f.start, ctx.tz, True)[:10]} at {clock(f.start, ctx.tz)} ({_tzl(ctx, f.start)})"
    band = f"within {f.band:g}% of mid"
    parts = []
    bid, ask = f.bid_share, f.ask_share
    if label == "flicker" or ev.get("trigger") == "flicker":
        pairs = first_value(m, "flicker_pairs")
        size = first_value(m, "cancelled_qty")
        what = (f"{pairs} large orders" if pairs else "large orders") + (f" ({qty(size, ctx.base)})" if size else "")
        s = (f"{when}, {what} were posted away from the touch and pulled again within seconds, repeatedly over "
             f"{duration(f.dur_ns)}")
        if f.traded_share is not None:
            s += f"; {pct(f.traded_share)} of them traded"
        return s + ": " + Label.FLICKER.info.meaning + "."
    if label == "consumption" and f.nothing_removed:
        side = sides[0] if len(sides) == 1 else "bid"
        aggr = "sell" if side == "bid" else "buy"
        vol = f.sell if aggr == "sell" else f.buy
        b0, a0 = f.before(side), f.after(side)
        depth = (f" ({qty(b0, ctx.base)} before, {qty(a0, ctx.base)} after)" if b0 is not None and a0 is not None
                 else "")
        s = (f"{when}, {aggr}-initiated trades" + (f" ({qty(vol, ctx.base)})" if vol else "")
             + f" hit the {side}s over {duration(f.dur_ns)} while {side} depth {band} did not fall{depth}: "
             f"the detector calls it consumption from the {aggr} program, but no depth was removed, so there is "
             "no traded share of a removal to report.")
        return s
    if label == "consumption":
        side = sides[0] if len(sides) == 1 else "bid"
        share = bid if side == "bid" else ask
        aggr = "sell" if side == "bid" else "buy"
        amount = f"{pct(share)} of {side} depth" if share is not None else f"{side} depth"
        s = f"{when}, {amount} {band} was removed over {duration(f.dur_ns)}"
        tail = []
        if traded_text(f):
            tail.append(traded_text(f))
        corr = first_value(m, "erosion_corr")
        if f.levels:
            tail.append(f"eroding {f.levels} price levels"
                        + (" from the touch outwards" if corr is not None and corr > 0.2 else ""))
        s += ("; " + ", ".join(tail) if tail else "")
        s += ": " + Label.CONSUMPTION.info.meaning.format(aggr=aggr) + "."
        if churn(f):
            s += (f" The label rests on the net share: gross, only {pct(f.traded_gross)} of the removed volume "
                  "traded and the rest was re-posted (maker churn), so treat it as a hypothesis.")
        return s
    if "bid" in sides and "ask" in sides and bid is not None and ask is not None:
        parts.append(f"{pct(bid)} of bid depth {band} and {pct(ask)} of ask depth disappeared "
                     f"within {duration(f.dur_ns)}")
    else:
        side = sides[0] if len(sides) == 1 else ("bid" if bid is not None or ask is None else "ask")
        share = bid if side == "bid" else ask
        who = "resting depth" if len(sides) == 2 and share is None else f"{side} depth"
        amount = f"{pct(share)} of {who}" if share is not None else who
        parts.append(f"{amount} {band} disappeared within {duration(f.dur_ns)}")
    if traded_text(f):
        low = max(x for x in (f.traded_gross, f.traded_net, f.traded_share) if x is not None) < 0.25
        parts.append(("only " if low else "") + traded_text(f))
    if f.levels:
        both = len(sides) == 2
        sync = ("simultaneous" if label == "synchronized_withdrawal" else "spread")
        parts.append(f"the removal was {sync} across {f.levels} price levels" + (" on both sides" if both else ""))
    text = label_meaning(label).format(side=sides[0], aggr="sell")
    out = f"{when}, " + "; ".join(parts) + ": " + text + "."
    if label == "depth_collapse":
        out += (f" The store has no trades for this window: ingesting {deciding_file(ctx, f.start)} would "
                "decide whether it was traded or cancelled.")
    elif label == "data_anomaly":
        kinds = sorted({fl["kind"] for fl in event_flags(ev, ctx)})
        out += f" Flags on that band: {', '.join(kinds) or 'data quality'} (see the caveats)."
    return out


def churn(f: EventFacts) -> bool:
    """Net share says 'traded', gross says most of it was cancelled: re-posting saturated the net."""
    return (f.traded_net is not None and f.traded_gross is not None
            and f.traded_net >= 0.5 and f.traded_gross < 0.5)


def _tzl(ctx, ns):
    from forensics.report.context import tz_offset_label
    return tz_offset_label(ctx.tz, ns)


def _change(share) -> str:
    """Removed share -> signed change with a real minus sign: 0.87 -> '−87%', -0.04 -> '+4%'."""
    return pct(-share, signed=True).replace("-", "−")


def annotation(ev: dict, m: dict[str, Metric], ctx) -> str:
    """Short text next to the red line on the depth chart: 'bids −87% in 1.2 s'."""
    f = facts(ev, m, ctx)
    lines = []
    sides = event_sides(ev)
    first = "ask" if f.lag_ms is not None and f.lag_ms < 0 else "bid"
    order = [first, "ask" if first == "bid" else "bid"]
    for i, side in enumerate(s for s in order if s in sides):
        share = f.bid_share if side == "bid" else f.ask_share
        if share is None:
            continue
        if not lines:
            lines.append(f"{side}s {_change(share)} in {duration(f.dur_ns)}")
        elif f.lag_ms is not None and abs(f.lag_ms) < 1:
            lines.append(f"{side}s {_change(share)}, at the same instant")
        elif f.lag_ms is not None:
            lines.append(f"{side}s {_change(share)}, {duration(int(abs(f.lag_ms) * NS_PER_MS))} later")
        else:
            lines.append(f"{side}s {_change(share)}")
    if f.traded_gross is not None and f.traded_net is not None:
        lines.append(f"{pct(f.traded_gross)} traded gross, {pct(f.traded_net)} net")
    elif f.traded_share is not None:
        lines.append(f"{pct(f.traded_share)} traded")
    elif not trades_known(ctx):
        lines.append("no trades: cause unknown")
    return "\n".join(lines) or label_short(ev.get("label"), ev.get("label") or "event")


def phases(ev: dict, m: dict[str, Metric], ctx) -> tuple[str, str]:
    """(phase 1: the removal, phase 2: the vacuum) in plain language."""
    f = facts(ev, m, ctx)
    label = ev.get("label") or Label.MIXED
    bands = getattr(ctx, "data_kind", None) == DataKind.BANDS or ev.get("data_kind") == DataKind.BANDS
    p1 = _removal_shape(ev, f, ctx, bands) + _removal_cause(ev, m, f, ctx, label, bands)
    p2 = _vacuum_sentences(ev, f, ctx, label)
    return "".join(p1).strip(), " ".join(x.strip() for x in p2)


def _removal_shape(ev: dict, f: EventFacts, ctx, bands: bool) -> list[str]:
    """Phase 1, first sentence: when, how much of each side's depth went, which side first."""
    base = ctx.base
    t0, t1 = clock(f.start, ctx.tz), clock(f.end, ctx.tz)
    p1 = [f"Between {t0} and {t1} ({duration(f.dur_ns)}), "]
    side_txt = []
    for side in event_sides(ev):
        b, a = f.before(side), f.after(side)
        share = f.share(side)
        if b is not None and a is not None:
            verb = "rose" if a > b else "fell" if a < b else "stayed at"
            change = pct((a - b) / b, True).replace("-", "−") if b else "n/a"
            side_txt.append(f"resting {side}s within {f.band:g}% of mid {verb} from {qty(b, base)} to "
                            f"{qty(a, base)} ({change})" if a != b else
                            f"resting {side}s within {f.band:g}% of mid stayed at {qty(b, base)}")
        elif share is not None:
            side_txt.append(f"{pct(share)} of the {side} depth within {f.band:g}% of mid vanished")
    p1.append("; ".join(side_txt) if side_txt else "the book thinned")
    if bands and f.lag_ms is None and len(event_sides(ev)) == 2:
        p1.append("; both sides fell between the same two band samples (which went first is unknown)")
    if f.lag_ms is not None and len(event_sides(ev)) == 2:
        first, second = ("bid", "ask") if f.lag_ms >= 0 else ("ask", "bid")
        if abs(f.lag_ms) < 1:
            p1.append("; both sides started falling at the same instant")
        else:
            p1.append(f"; the {second} side started {duration(int(abs(f.lag_ms) * NS_PER_MS))} after the "
                      f"{first} side")
    p1.append(". ")
    return p1


def _removal_cause(ev: dict, m: dict[str, Metric], f: EventFacts, ctx, label: str, bands: bool) -> list[str]:
    """Phase 1, the rest: what removed the depth (executed vs cancelled, the trades alongside)
    and what that makes it, or why the report cannot say."""
    base = ctx.base
    p1 = []
    tr, cx = m.get("traded_bid"), m.get("cancelled_bid")
    label_done = label in (Label.DEPTH_COLLAPSE, Label.DATA_ANOMALY) or f.nothing_removed
    if f.nothing_removed and label not in (Label.DEPTH_COLLAPSE, Label.DATA_ANOMALY):
        p1.append("Nothing left the band on that side, so no traded or cancelled share of a removal is given")
        if f.sell is not None:
            p1.append(f"; trades in the same interval: {qty(f.sell, base)} sold into the bids and "
                      f"{qty(f.buy, base)} bought from the asks")
        p1.append(". The band's depth did not fall despite the aggressive flow.")
    elif label_done:
        p1.append(Label(label).info.closing)
        if label == Label.DEPTH_COLLAPSE:
            p1.append(f" The file that would decide it: {deciding_file(ctx, f.start)}, ingested with "
                      "`forensics ingest`.")
        if ev.get("detector_label") and ev["detector_label"] != label:
            p1.append(f" (The detector labelled it {label_short(ev['detector_label'], ev['detector_label'])}; "
                      "the report does not repeat a cause the data present cannot support.)")
        if bands:
            p1.append(" Band data only: the timing inside the sampling step and a fall that recovers before "
                      "the next sample are not visible.")
    elif tr is not None and cx is not None:
        sides = event_sides(ev)
        traded = sum(m[f"traded_{s}"].value or 0 for s in sides if f"traded_{s}" in m)
        cancelled = sum(m[f"cancelled_{s}"].value or 0 for s in sides if f"cancelled_{s}" in m)
        where = "both sides of the book" if len(sides) == 2 else f"the {sides[0]} side"
        added = sum(m[f"added_{s}"].value or 0 for s in sides if f"added_{s}" in m)
        p1.append(f"Of the {qty(traded + cancelled, base)} that left {where} inside the band, "
                  f"{qty(traded, base)} was executed and {qty(cancelled, base)} was cancelled")
        if f.levels:
            p1.append(f", across {f.levels} price levels")
        if traded_text(f):
            p1.append(f"; {qty(added, base)} was posted again in the same window: " + traded_text(f)
                      if added else "; " + traded_text(f))
        p1.append(". ")
        if churn(f):
            p1.append("The net share saturates when re-posting exceeds cancelling (normal maker churn), so it "
                      "alone does not decide the label here. ")
    elif traded_text(f):
        t = traded_text(f)
        p1.append(("Only " + t if (f.traded_share or 0) < 0.5 else t[0].upper() + t[1:]) + ". ")
    if label_done:
        pass
    elif f.sell is not None:
        p1.append(f"Trades in the same interval: {qty(f.sell, base)} sold into the bids and "
                  f"{qty(f.buy, base)} bought from the asks. ")
    if label_done:
        pass
    elif bands:
        p1.append({
            Label.SYNCHRONIZED_WITHDRAWAL: "With little volume traded against it, the depth that vanished from both "
                                       "sides between two samples was cancelled, not eaten: a withdrawal of "
                                       "liquidity. ",
            Label.ONE_SIDED_PULL: "With little volume traded against it, the depth that vanished from one side "
                              "between two samples was cancelled: makers stepped away from that side. ",
            Label.CONSUMPTION: "The volume traded against the falling side between the two samples accounts for "
                           "the depth removed: it was eaten by aggressive orders. ",
        }.get(label, "Trading accounts for part of the removal only. "))
        p1.append("Band data only: the traded share compares the aggressive volume between the two samples "
                  "with the depth removed (an upper bound on what trading explains); the timing inside the "
                  "sampling step, the per-level split and a fall that recovers before the next sample are not "
                  "visible.")
    else:
        p1.append(label_closing(label) or "Both trading and cancellation contributed to the removal.")
    return p1


def _vacuum_sentences(ev: dict, f: EventFacts, ctx, label: str) -> list[str]:
    """Phase 2: spread, mid move and price impact per volume after the event, and recovery."""
    base = ctx.base
    p2 = []
    b0, b1, a0, a1 = vacuum_windows(ev, ctx)
    if f.spread_before is not None and f.spread_after is not None:
        ratio = f.spread_after / f.spread_before if f.spread_before else None
        p2.append(f"In the {duration(a1 - a0)} after the event the mean spread was {f.spread_after:.2f} bps of "
                  f"mid, against {f.spread_before:.2f} bps in the {duration(b1 - b0)} before"
                  + (f" ({ratio:.1f}× wider)" if ratio and ratio >= 1.05 else "") + ". ")
    if f.move_after_bps is not None and abs(f.move_after_bps) >= 1:
        p2.append(f"The mid moved {f.move_after_bps:+.0f} bps in the following minute. ")
    if f.impact_ratio is not None and f.impact_before is not None and f.impact_after is not None:
        r = f.impact_ratio
        vol = "traded volume (buys and sells: the impact is divided by all volume)"
        if r >= 1.5:
            p2.append(f"Afterwards each unit of {vol} moved the price {r:.1f} times more than before "
                      f"({f.impact_after:.3g} vs {f.impact_before:.3g} bps per {base}): with the resting "
                      f"depth gone, small orders moved the price as much as large ones did before "
                      f"(a liquidity vacuum).")
        else:
            p2.append(f"Price impact per unit volume afterwards was {r:.1f}× its level before "
                      f"({f.impact_after:.3g} vs {f.impact_before:.3g} bps per {base}): no liquidity vacuum "
                      f"followed.")
    elif ctx.trades.height:
        p2.append("Price impact per unit volume could not be compared (no trades or no book on one side of "
                  "the event). ")
    elif not trades_known(ctx):
        p2.append("Without trades, price impact per unit volume cannot be measured. ")
    if f.recovery_ms is not None:
        p2.append(f" Depth on the falling side(s) was back to half its pre-event level "
                  f"{duration(int(f.recovery_ms * NS_PER_MS))} after the end.")
    elif label in (Label.SYNCHRONIZED_WITHDRAWAL, Label.ONE_SIDED_PULL, Label.DEPTH_COLLAPSE) and "recovery_ms" in ev:
        p2.append(" Depth had not recovered to half its pre-event level within 10 minutes.")
    if not p2:
        p2.append("Not enough data after the event to measure the vacuum.")
    return p2


def caveats(ctx, events: list[dict], per_event: list[dict] | None = None) -> list[str]:
    out = list(ctx.notes)
    flags = getattr(ctx, "flags", None)
    if flags is not None and flags.height:
        for fl in flags.iter_rows(named=True):
            where = " ".join(x for x in (fl.get("side"), f"{fl['band_pct']:g}% band" if fl.get("band_pct") is not None
                                          else None) if x)
            span = (f", {clock(fl['first_ts'], ctx.tz)} – {clock(fl['last_ts'], ctx.tz)}"
                    if fl.get("first_ts") is not None and fl.get("last_ts") is not None else "")
            out.append(f"Data-quality flag `{fl['kind']}`{' (' + where + ')' if where else ''}{span}: {fl['detail']}; "
                       "flagged bands are hatched in the figures and not read as makers pulling quotes.")
    for pe in per_event or []:
        e = pe["event"]
        det, lab = e.get("detector_label"), e.get("label")
        if det and det != lab:
            why = ("the store has no trades for the window, so whether the depth was traded or cancelled is unknown"
                   if lab == "depth_collapse" else "its band is flagged by the data-quality checks over the event")
            out.append(f"Event {pe['n']} ({e['event_id']}): the detector labelled it "
                       f"{label_short(det, det)}, but {why}; the report shows it as {label_short(lab, lab)}.")
        f = facts(e, pe["metrics"], ctx)
        if lab == "consumption" and churn(f):
            out.append(f"Event {pe['n']}: labelled consumption on the net traded share ({pct(f.traded_net)}); "
                       f"the gross share is {pct(f.traded_gross)}: most of the removed size was cancelled and "
                       "re-posted (maker churn), which saturates the net share. The classifier needs the gross "
                       "share too before calling this consumption.")
    if ctx.gaps.height:
        for g in ctx.gaps.iter_rows(named=True):
            hit = [e["event_id"] for e in events
                   if g["ts_from"] <= e["end_ts"] and (g["ts_to"] or e["start_ts"]) >= e["start_ts"]]
            to = clock(g["ts_to"], ctx.tz) if g.get("ts_to") is not None else "the next snapshot"
            out.append(f"Data gap ({g.get('reason') or 'gap'}) from {clock(g['ts_from'], ctx.tz)} to {to}: "
                       "the book is unknown there and depth is not shown"
                       + (f"; it overlaps event(s) {', '.join(hit)}, whose figures are less certain." if hit else "."))
    for e in events:
        c = e.get("confidence")
        if c is not None and c < report_params(ctx).low_confidence:
            out.append(f"Low confidence ({c:.2f}) for event {e['event_id']} "
                       f"({label_short(e.get('label'), e.get('label'))}): treat its label as a hypothesis.")
        evd = e.get("evidence")
        if isinstance(evd, dict):
            for k in ("caveats", "warnings", "flags"):
                v = evd.get(k)
                if isinstance(v, list):
                    out.extend(f"Event {e['event_id']}: {x}" for x in v if x)
                elif isinstance(v, str) and v:
                    out.append(f"Event {e['event_id']}: {v}")
    if ctx.data_kind == DataKind.BOOK and ctx.top.height:
        bad = ctx.top.filter(~pl.col("valid")).height
        if bad:
            out.append(f"{bad:,} of {ctx.top.height:,} top-of-book samples are crossed or invalid and were "
                       "excluded from spread figures.")
    if not events:
        out.append("No event was detected in the window; the charts show the book as it was.")
    return out
