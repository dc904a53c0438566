"""Rule-based event classifier: synchronized withdrawal, one-sided pull, consumption, flicker.

Input: the metrics of one event (an :class:`EventMetrics`, built by
:func:`forensics.detect.metrics.event_metrics`); output: a label,
a confidence in [0, 1] and the evidence (list of short sentences, stored as JSON text).

Labels (design.md): ``synchronized_withdrawal``, ``one_sided_pull``, ``consumption``,
``flicker``, ``mixed``, ``depth_collapse`` (depth fell but no trade data covers the window: cause
undetermined) and ``data_anomaly`` (the fall exists only in bands under a data-quality flag).

Thresholds: all in :class:`Thresholds` (overridable), each with its one-line reason there.
The main ones: ``cancel_max`` 0.25 (cancellation-driven: net traded share <= this),
``trade_min`` 0.60 (trade-driven; ``flow_trade_min`` 0.50 for an event found by its aggressive
volume), ``sync_min`` 0.50 / ``fast_ms`` 1500 (concentrated: share of the removal within the
busiest 500 ms, or the 10-90% fall time), ``burst_min`` 0.25 (a pull: share of the depth
cancelled net of re-adds within one 500 ms; with a gross traded share <= cancel_max the event is
cancellation-driven even when trades followed), ``pull_both_min`` 0.15 / ``pull_max_lag_ms`` 500
/ ``pull_lead_ms`` 1000 / ``pull_noise_k`` 1.5 (both sides pulled at once at the start, see rule
2), ``pull_other_max`` 0.12 (rule 3), ``flicker_min_pairs`` 3 / ``flicker_max_traded`` 0.10,
``bands_factor`` 0.60 (confidence multiplier for band-only data), and the fallback confidences
(``conf_undetermined``, ``conf_mixed``, ``conf_no_split``).

*Per-side pull bursts* (``_pull_bid`` / ``_pull_ask``, level data, from detect): each side's
largest net cancellation within one 500 ms from 3 s before to 2 s after the event's start, as a
share of the narrowest band's depth, the time between the two bursts and the later one's time
from the start; ``_pull_noise_*`` the side's 99th-percentile 500 ms depth fall over the run.

*Net traded share* = traded / (traded + max(cancelled - added, 0)) over the decreases of the
falling side(s) inside the band and window: cancel/replace churn (makers re-quoting while the
price moves) nets out against the re-adds, so a taker walking the book reads as trade-driven
even when the makers also re-quote, and a pull (cancels without re-adds) as cancel-driven.
The gross share (traded / all decreases) is reported too (``traded_share``).

Rules, in order:

0. the fall exists only in flagged bands -> ``data_anomaly``; no trade data covers the window
   (or only part of it) -> ``depth_collapse`` (the traded share is unknown, not 0).
1. trigger ``flicker`` (repeated large add/cancel far from the touch, see detect) with
   >= flicker_min_pairs pairs and traded share <= flicker_max_traded -> ``flicker``.
2. both sides pulled at once at the start (each side's burst >= pull_both_min, the two within
   pull_max_lag_ms; for a flow event the bursts also no later than pull_lead_ms after its first
   print and >= pull_noise_k x the side's ordinary 500 ms fall) -> ``synchronized_withdrawal``,
   whatever traded after it (the cascade into the thinned book). Also when the two largest
   bursts came further apart but, at the later one, the other side lost a burst of its own within
   ``pull_pair_ms`` (detect) and both bursts left >= pull_both_min of the depth away
   ``requote_s`` later (burst x kept share): the earlier burst was that side's churn (volatile
   books), and this rule comes before rule 3's re-quote and bursts-apart readings. Likewise
   (whatever traded) when both sides' bursts within ``pull_pair_ms`` of the later side's fall
   start (detect's ``pull_fall_pair``) left that much away: the first side's earlier fall was a
   leading dip and the pull came as the later side started falling.
3. both sides fell, one side pulled (>= pull_both_min) and the other not (<= pull_other_max),
   or the two bursts more than ``pull_apart_ms`` apart (the later one not kept away, see
   ``requote_kept_max``), or the weaker burst re-added within
   ``requote_s`` (keeps < ``requote_kept_max`` of it, net, while the stronger keeps more: a
   re-quote, not a pull; rule 2 then does not apply), not trade-driven -> ``one_sided_pull``
   (the other side only moved with the mid).
4. trade-driven (net share >= trade_min; flow events flow_trade_min) -> ``consumption``
   (sequential erosion from the touch, erosion correlation > erosion_corr_min, raises the
   confidence). A flow event whose program eroded the book from the touch (erosion correlation >
   erosion_corr_min) while the mid moved with its aggressor, not a block pulled at once, reads
   ``consumption`` down to a net share of flow_backed_trade_min (the makers cancelled along the
   program, but the program is what moved the book).
5. cancellation-driven (net share <= cancel_max, or a net cancel burst >= burst_min with a gross
   traded share <= cancel_max):
   both sides fell and concentrated (band data: the fall between two samples counts as
   concentrated; the sampling step bounds what can be seen) -> ``synchronized_withdrawal``;
   one side fell -> ``one_sided_pull``;
   both sides but not concentrated -> ``mixed`` (cancel-driven but staggered).
6. otherwise ``mixed``.

Confidence = the smallest margin score of the criteria the label relies on, each mapped to
[0, 1] as ``0.5 + distance past the threshold / scale`` (clipped), times ``bands_factor`` for
band-only data and times (1 - share of the window's level changes that were gaps).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

LABELS = ("synchronized_withdrawal", "one_sided_pull", "consumption", "flicker", "mixed", "depth_collapse",
          "data_anomaly")


@dataclass(frozen=True)
class Thresholds:
    """Every classification threshold, with its reason (the table above has the rules; the
    detection thresholds are in :class:`forensics.detect.DetectParams`). Tuned on the
    development seeds only (:data:`forensics.evaluate.DEV_SEEDS`)."""

    cancel_max: float = 0.25          # cancel-driven: at most a quarter traded net (pulls trade little)
    trade_min: float = 0.60           # trade-driven: a clear majority traded net (takers walked the book)
    flow_trade_min: float = 0.50      # flow events: found by their volume, so more traded than cancelled suffices
    flow_backed_trade_min: float = 0.26  # ... and down to 26% net when the program eroded the book from the touch with the mid moving its way (dev 161-400: seeds 277, 343, a 3.4x and a 9.8x program in volatile btc with makers cancelling along them, 37-40% net; dev5 seed 705, a 9.6x program, 27%; was 0.30: the flow events of dev 1-1000 under 30% net not taken by rules 2-3 are 705 and 879 (17%, consumption) and two withdrawals, 449 / 920, now their cliff's accompanying flow (DetectParams.flow_defers_to_withdrawal); just above cancel_max, so a cancellation-driven fall never reads consumption)
    sync_min: float = 0.50            # concentrated: half the removal within the busiest 500 ms ...
    fast_ms: float = 1500.0           # ... or the 10-90% fall within 1.5 s (a maker pull lands in ~300 ms)
    burst_min: float = 0.25           # pull: 25% of the depth cancelled net in 500 ms (the smallest drawn pull, 30% of the quotes, shows as 27-30% of the touch band; dev 1-160 at 0.25: seed 123's pull held and labelled, nothing else changes)
    pull_both_min: float = 0.15       # two-sided pull: each side lost >= 15% net in 500 ms at the start ...
    pull_max_lag_ms: float = 500.0    # ... the two bursts within 500 ms of each other (makers pull together) ...
    pull_lead_ms: float = 1000.0      # ... and, for a flow event, no later than 1 s after its first print (the cascade follows the pull)
    pull_noise_k: float = 1.5         # flow event: each burst >= 1.5x the side's 99th-percentile 500 ms fall (volatile books churn)
    pull_other_max: float = 0.12      # one-sided: the other side lost <= 12% net (withdrawals' weaker side loses >= 17% on dev)
    requote_kept_max: float = 0.5     # re-quote: the weaker burst keeps < half of it 1 s on (net of re-adds), the stronger >= half (dev 1-160 two-sided cliffs: one-sided pulls' weaker burst -0.70..0.38, withdrawals' 0.64..1.0 but seed 88, where both were re-added)
    pull_apart_ms: float = 1000.0     # one-sided: the two bursts > 1 s apart and the later a re-quote (keeps < requote_kept_max; dev withdrawals: all but 5 within 340 ms, the 2 of those read one-sided kept 0.64 / 0.91)
    flicker_min_pairs: int = 3        # flicker: three or more large add->cancel pairs (one or two is a maker changing its mind)
    flicker_max_traded: float = 0.10  # flicker: <= 10% of the flicker orders traded (they were not meant to trade)
    flicker_pairs_scale: float = 3.0  # flicker confidence: full at 3 pairs past the minimum
    bands_factor: float = 0.60        # band data only: no level detail, the timing inside a step is unknown
    bands_sync_score: float = 0.75    # band data: the fall between two samples is as concentrated as can be seen
    erosion_corr_min: float = 0.20    # sequential erosion from the touch (Spearman) that raises a consumption's confidence ...
    erosion_bonus: float = 0.10       # ... by this much
    conf_undetermined: float = 0.50   # depth_collapse / data_anomaly: a fall is certain, its cause is not
    conf_mixed: float = 0.50          # mixed: neither reading wins
    conf_no_split: float = 0.30       # no traded/cancelled split at all: the weakest reading


@dataclass(frozen=True)
class EventMetrics:
    """What the classifier reads of one event, by name (built from the event's metrics by
    :func:`forensics.detect.metrics.event_metrics`; None = not measured). The names are the
    event dict's keys; the underscored ones are kept off the ``events`` table."""

    trigger: str | None = None                  # cliff | flow | flicker
    data_kind: str | None = None                # book (level data) | bands
    sides: str | None = None                    # bid | ask | both: the side(s) that fell
    band_pct: float | None = None               # the band the fall was found in (% of mid)
    removed_frac: float | None = None           # share of the falling side(s)' depth removed
    gap_share: float | None = None              # share of the window's level changes that were gaps
    traded_share: float | None = None           # traded / all decreases (gross)
    traded_share_net: float | None = None       # traded / (traded + cancels net of re-adds)
    sync_share_500ms: float | None = None       # share of the removal within the busiest 500 ms
    speed_ms: float | None = None               # the fall's 10-90% time (flow: the episode's length)
    side_lag_ms: float | None = None            # ask start - bid start (both sides fell)
    erosion_corr: float | None = None           # distance from the touch vs removal time (Spearman)
    price_move_bps: float | None = None         # the mid's move over the event (bps, + up)
    flicker_pairs: int | None = None            # flicker: large add->cancel pairs
    flicker_traded_share: float | None = None   # flicker: share of the flicker orders traded
    program: Mapping | None = None              # flow: the taker program (aggressor, bursts, prints, volume_base, ratio, z)
    _anomaly: tuple | list | None = None        # bands: (side, band, flag) of the flagged bands that fell
    _trade_coverage: str | None = None          # full | partial | none: trade data over the window
    _trade_reason: str | None = None            # why the coverage is not full
    _sync_cancel_500ms: float | None = None     # share of the cancelled quantity within the busiest 500 ms
    _burst_pull_frac: float | None = None       # largest net cancel in 500 ms / the falling sides' depth
    _pull_bid: float | None = None              # per-side pull bursts at the start (see module docstring)
    _pull_ask: float | None = None
    _pull_lag_ms: float | None = None           # time between the two sides' bursts
    _pull_at_ms: float | None = None            # the later burst's time from the start
    _pull_noise_bid: float | None = None        # the side's ordinary 500 ms fall (99th percentile)
    _pull_noise_ask: float | None = None
    _pull_later: str | None = None              # the side whose burst came later (bid | ask)
    _pair_bid: float | None = None              # bursts apart: the side's burst within pull_pair_ms of the other side's
    _pair_ask: float | None = None
    _pair_kept_bid: float | None = None         # ... and its share still missing requote_s later
    _pair_kept_ask: float | None = None
    _fall_pair_bid: float | None = None         # both sides fell: the side's burst within pull_pair_ms of the later side's fall start
    _fall_pair_ask: float | None = None
    _fall_pair_kept_bid: float | None = None    # ... and its share still missing requote_s later
    _fall_pair_kept_ask: float | None = None
    _pull_kept_bid: float | None = None         # share of the side's burst still missing requote_s later (net of re-adds)
    _pull_kept_ask: float | None = None

    @classmethod
    def from_event(cls, e: Mapping) -> EventMetrics:
        """The fields of an event dict (other keys ignored, missing ones None)."""
        return cls(**{f.name: e[f.name] for f in fields(cls) if f.name in e})


@dataclass(frozen=True)
class Features:
    """The figures rules 2-5 read (see :func:`_features`)."""

    kind: str            # data kind (book | bands)
    trig: str            # trigger
    share: float         # net traded share (gross when no net)
    gross: float | None  # gross traded share
    sides: str           # bid | ask | both
    sync: float | None   # sync_share_500ms
    speed: float | None  # speed_ms
    sync_c: float | None  # _sync_cancel_500ms
    burst: float | None  # _burst_pull_frac
    conc: bool           # concentrated in time
    pulled: bool         # a block pulled at once, then traded into
    pb: float | None     # bid pull burst
    pa: float | None     # ask pull burst
    prog: Mapping | None  # the flow program
    corr: float | None   # erosion correlation
    lag: float | None    # _pull_lag_ms
    at: float | None     # _pull_at_ms
    nb: float            # bid pull noise (0 when unknown)
    na: float            # ask pull noise
    requoted: str | None = None  # the side whose burst was a re-quote (see _requoted)


def _score(margin: float, scale: float) -> float:
    """0.5 at the threshold, 1 at ``scale`` past it, 0 at ``scale`` short of it."""
    if margin is None or (isinstance(margin, float) and math.isnan(margin)):
        return 0.5
    return max(0.0, min(1.0, 0.5 + 0.5 * margin / scale))


def _num(x, default=None):
    if x is None:
        return default
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(v) else v


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def classify(m: EventMetrics, th: Thresholds = Thresholds()) -> tuple[str, float, list[str]]:
    """(label, confidence, evidence) for one event's metrics (see module docstring): the rules
    in order, each a named step returning a verdict or None."""
    ev: list[str] = []
    factor = _data_factor(m, th, ev)
    for rule in (_rule_undetermined, _rule_flicker):
        got = rule(m, th, factor, ev)
        if got is not None:
            return got
    share = _num(m.traded_share_net, _num(m.traded_share))
    if share is None:
        ev.append("no traded/cancelled split available")
        return "mixed", round(th.conf_no_split * factor, 3), ev
    f = _features(m, th, share, ev)
    for rule in (_rule_pulled_at_start, _rule_one_side_pulled, _rule_trade_driven, _rule_cancel_driven):
        got = rule(m, f, th, factor, ev)
        if got is not None:
            return got
    ev.append("neither clearly trade-driven nor cancellation-driven")
    return "mixed", round(th.conf_mixed * factor, 3), ev


def _data_factor(m: EventMetrics, th: Thresholds, ev: list[str]) -> float:
    """Confidence multiplier for what the data can show (band data only, gaps in the window),
    with the evidence lines saying so and what fell."""
    factor = 1.0
    if (m.data_kind or "book") == "bands":
        factor *= th.bands_factor
        ev.append("band data only: no level detail (traded share = traded volume / depth removed)")
    gap = _num(m.gap_share, 0.0)
    if gap and gap > 0:
        factor *= max(0.0, 1.0 - gap)
        ev.append(f"{_pct(gap)} of the window's level changes fall in a gap (book unknown)")
    if m.band_pct is not None and m.removed_frac is not None:
        ev.append(f"{_pct(_num(m.removed_frac))} of {m.sides or 'bid'} depth within "
                  f"{m.band_pct:g}% of mid removed (trigger: {m.trigger or 'cliff'})")
    return factor


def _rule_undetermined(m: EventMetrics, th: Thresholds, factor: float, ev: list[str]):
    """Rule 0: only flagged bands fell -> data_anomaly; no (full) trade coverage -> depth_collapse."""
    if m._anomaly:
        where = "; ".join(f"{sd} {b:g}% ({f})" for sd, b, f in m._anomaly)
        ev.append(f"the fall exists only in bands under a data-quality flag: {where}; not a liquidity event "
                  "(never read as a pull)")
        return "data_anomaly", round(th.conf_undetermined * factor, 3), ev
    if m._trade_coverage in ("none", "partial"):
        ev.append(f"cause undetermined: {m._trade_reason or 'no trade data covers the window'}")
        ev.append("traded share unknown (null), not 0")
        return "depth_collapse", round(th.conf_undetermined * factor, 3), ev
    return None


def _rule_flicker(m: EventMetrics, th: Thresholds, factor: float, ev: list[str]):
    """Rule 1: a flicker episode with enough pairs, barely traded."""
    if (m.trigger or "cliff") != "flicker":
        return None
    pairs = int(m.flicker_pairs or 0)
    ftr = _num(m.flicker_traded_share, 0.0)
    ev.append(f"{pairs} large orders placed and pulled away from the touch, {_pct(ftr)} of them traded")
    if pairs >= th.flicker_min_pairs and ftr <= th.flicker_max_traded:
        conf = min(_score(pairs - th.flicker_min_pairs + 0.5, th.flicker_pairs_scale),
                   _score(th.flicker_max_traded - ftr, th.flicker_max_traded))
        return "flicker", round(conf * factor, 3), ev
    return None


def _features(m: EventMetrics, th: Thresholds, share: float, ev: list[str]) -> Features:
    """The figures rules 2-5 read (traded shares, concentration, per-side pull bursts), with the
    evidence lines describing them."""
    kind = m.data_kind or "book"
    trig = m.trigger or "cliff"
    gross = _num(m.traded_share)
    sync, speed = _num(m.sync_share_500ms), _num(m.speed_ms)
    ev.append(f"traded share {_pct(share)} net of re-adds ({_pct(gross)} gross) of the removed quantity")
    sync_c = _num(m._sync_cancel_500ms)
    burst = _num(m._burst_pull_frac)
    conc = ((sync is not None and sync >= th.sync_min) or (speed is not None and speed <= th.fast_ms)
            or (sync_c is not None and sync_c >= th.sync_min) or (burst is not None and burst >= th.burst_min))
    if burst is not None and burst >= th.burst_min:
        ev.append(f"{_pct(burst)} of the depth before was cancelled (net of re-adds) within one 500 ms")
    # a block of quotes pulled at once, then traded into: cancellation-driven even though the
    # trades that followed lift the net traded share
    pulled = (burst is not None and burst >= th.burst_min and gross is not None and gross <= th.cancel_max
              and share < th.trade_min)
    if kind == "bands" and sync is None:
        conc = True  # the timing inside one sampling step is unknown: the sampling is the limit
        ev.append(f"fall between two band samples {speed / 1000:.0f} s apart (timing within unknown)"
                  if speed is not None else "fall between two band samples")
    pb, pa = _num(m._pull_bid), _num(m._pull_ask)
    if pb is not None or pa is not None:
        ev.append(f"net cancellation within one 500 ms at the start: bid {_pct(pb)}, ask {_pct(pa)} of the "
                  f"narrowest band's depth" + (f" ({float(m._pull_lag_ms):.0f} ms apart, the later "
                                                 f"{float(m._pull_at_ms):+.0f} ms from the start)"
                                               if m._pull_lag_ms is not None else ""))
    prog = m.program
    if trig == "flow" and prog:
        ev.append(f"sustained {prog['aggressor']} program: {prog.get('prints', prog['bursts'])} taker prints over "
                  f"{(speed or 0) / 1000:.1f} s, {prog['volume_base']:g} base units"
                  + (f", {prog['ratio']:.1f}x the side's trailing rate (z {prog['z']:.1f})" if "ratio" in prog else ""))
    elif sync is not None:
        ev.append(f"{_pct(sync)} of the removal within the busiest 500 ms"
                  + (f", 10-90% fall in {speed:.0f} ms" if speed is not None else ""))
    # the weaker side's burst a re-quote: only for a cancellation-driven fall (what rules 2 and 5
    # would call a withdrawal); a trade-driven one stays with rules 4-6
    requoted = _requoted(m, pb, pa, th) if (share <= th.cancel_max or pulled) and share < th.trade_min else None
    return Features(kind=kind, trig=trig, share=share, gross=gross, sides=m.sides or "bid", sync=sync,
                    speed=speed, sync_c=sync_c, burst=burst, conc=conc, pulled=pulled, pb=pb, pa=pa, prog=prog,
                    corr=_num(m.erosion_corr), lag=_num(m._pull_lag_ms), at=_num(m._pull_at_ms),
                    nb=_num(m._pull_noise_bid, 0.0), na=_num(m._pull_noise_ask, 0.0), requoted=requoted)


def _kept(m: EventMetrics, side: str) -> float | None:
    return _num(m._pull_kept_bid if side == "bid" else m._pull_kept_ask)


def _requoted(m: EventMetrics, pb: float | None, pa: float | None, th: Thresholds) -> str | None:
    """The side ('bid'/'ask') whose pull burst was a re-quote: the weaker burst had been re-added
    within ``requote_s`` (keeps < ``requote_kept_max`` of it, net) while the stronger one stayed
    away (keeps >= that); None if neither (or no figures)."""
    if pb is None or pa is None:
        return None
    weak, strong = ("bid", "ask") if pb < pa else ("ask", "bid")
    kw, ks = _kept(m, weak), _kept(m, strong)
    if kw is None or ks is None or not (kw < th.requote_kept_max <= ks):
        return None
    return weak


def _rule_pulled_at_start(m: EventMetrics, f: Features, th: Thresholds, factor: float, ev: list[str]):
    """Rule 2: both sides pulled at once at the start -> synchronized_withdrawal, whatever traded
    after it (the cascade into the thinned book lifts the traded share); not when the weaker
    side's burst was a re-quote (rule 3)."""
    pb, pa, lag, at, sides = f.pb, f.pa, f.lag, f.at, f.sides
    # each side's burst must stand out from that side's ordinary 500 ms churn
    # (a flow event only: a cliff event's fall was already judged abnormal for its band)
    above = (pb is not None and pa is not None
             and (sides == "both" or (pb >= th.pull_noise_k * f.nb and pa >= th.pull_noise_k * f.na)))
    paired = _paired(m, f, th)
    if paired is not None:
        s, o, away_s, away_o = paired
        if s == "fall":
            ev.append(f"the two sides' largest bursts came {f.lag:.0f} ms apart, but where the later side started falling "
                      f"both sides were pulled at once (bid {_pct(away_s)}, ask {_pct(away_o)} of the depth still away "
                      f"after the re-quote window): synchronized cancellation (the first side's earlier fall a leading dip)")
        else:
            ev.append(f"the two sides' largest bursts came {f.lag:.0f} ms apart, but at the {s} side's burst the {o} "
                      f"side was pulled too ({_pct(away_s)} and {_pct(away_o)} of the depth still away after the re-quote "
                      f"window): synchronized cancellation (the other largest burst the book's own churn)")
        conf = _score(min(away_s, away_o) - th.pull_both_min, th.pull_both_min)
        return "synchronized_withdrawal", round(conf * factor, 3), ev
    if f.sides == "both" and f.requoted:
        return None  # the weaker side's makers re-quoted (rule 3)
    if not (above and lag is not None and min(pb, pa) >= th.pull_both_min
            and lag <= th.pull_max_lag_ms and (sides == "both" or (f.trig == "flow" and at is not None
                                                                  and at <= th.pull_lead_ms))):
        return None
    ev.append("both sides pulled at once at the start: synchronized cancellation"
              + (" (the trading after it is the cascade into the thinned book)" if f.trig == "flow" or
                 f.share > th.cancel_max else ""))
    conf = min(_score(min(pb, pa) - th.pull_both_min, th.pull_both_min),
               _score(th.pull_max_lag_ms - lag, th.pull_max_lag_ms))
    return "synchronized_withdrawal", round(conf * factor, 3), ev


def _away(share, kept) -> float | None:
    """The share of the depth a burst left away ``requote_s`` later (burst x kept, kept capped at 1)."""
    if share is None or kept is None:
        return None
    return float(share) * min(1.0, max(0.0, float(kept)))


def _paired(m: EventMetrics, f: Features, th: Thresholds):
    """Two falling sides whose largest bursts came more than ``pull_max_lag_ms`` apart, but at the
    later side's burst the other side lost its own burst within ``pull_pair_ms`` (detect), and
    both left >= ``pull_both_min`` of the depth away ``requote_s`` later (burst x kept share): a
    two-sided pull at that moment, the other side's larger burst before it its own churn
    (volatile books; not a trade-driven fall) -> (side, other, away_side, away_other) or None.
    Not at the earlier burst: the other side's larger burst came after it, alone (a one-sided
    pull after churn; dev4 seed 671). A re-quote after a one-sided pull puts its burst back
    (kept < ``requote_kept_max``), so it leaves little away. Also (side 'fall') when both sides'
    bursts within ``pull_pair_ms`` of the later side's fall start (detect's ``pull_fall_pair``)
    left that much away: the pull came as the later side started falling, the first side's
    earlier fall a leading dip."""
    if f.sides != "both" or f.lag is None or f.lag <= th.pull_max_lag_ms:
        return None
    # the later side's fall start: both sides' bursts there (detect's pull_fall_pair; the first
    # side's leading dip started the event, the pull came as the later side started falling);
    # like rule 2's bursts at once, whatever traded after it (the cascade)
    a_b, a_a = _away(m._fall_pair_bid, m._fall_pair_kept_bid), _away(m._fall_pair_ask, m._fall_pair_kept_ask)
    if a_b is not None and a_a is not None and min(a_b, a_a) >= th.pull_both_min:
        return ("fall", "", a_b, a_a)
    if f.share >= th.trade_min:
        return None
    best = None
    for s, o in (("bid", "ask"), ("ask", "bid")):
        if m._pull_later is not None and s != m._pull_later:
            continue  # paired at the earlier burst: the other side's larger burst came after, alone (a pull after churn)
        a_s = _away(f.pb if s == "bid" else f.pa, _kept(m, s))
        a_o = _away(m._pair_bid if o == "bid" else m._pair_ask, m._pair_kept_bid if o == "bid" else m._pair_kept_ask)
        if a_s is None or a_o is None or min(a_s, a_o) < th.pull_both_min:
            continue
        if best is None or min(a_s, a_o) > min(best[2], best[3]):
            best = (s, o, a_s, a_o)
    return best


def _rule_one_side_pulled(m: EventMetrics, f: Features, th: Thresholds, factor: float, ev: list[str]):
    """Rule 3: both sides fell, one pulled and the other not (or its burst came ``pull_apart_ms``
    after and was not kept away, or was re-added at once: makers re-quoting after the mid
    moved), not trade-driven -> one_sided_pull."""
    pb, pa, lag = f.pb, f.pa, f.lag
    if not (f.sides == "both" and pb is not None and pa is not None and f.share < th.trade_min
            and max(pb, pa) >= th.pull_both_min):
        return None
    # bursts far apart: the weaker one a re-quote after the mid moved, unless it stayed away too
    # (a pull the touch band shows late: two pulls, a withdrawal)
    kw = _kept(m, "bid" if pb < pa else "ask")
    apart = lag is not None and lag > th.pull_apart_ms and (kw is None or kw < th.requote_kept_max)
    requoted = f.requoted
    if not (min(pb, pa) <= th.pull_other_max or apart or requoted):
        return None
    one = "bid" if pb > pa else "ask"
    if requoted and min(pb, pa) > th.pull_other_max and not apart:
        ev.append(f"the {f.requoted} side's cancellation burst was re-added at once ({_pct(max(kw, 0.0))} of it "
                  f"still missing): its makers re-quoted after the mid moved; only the {one} side's quotes were pulled")
        return "one_sided_pull", round(_score(th.requote_kept_max - kw, th.requote_kept_max) * factor, 3), ev
    if apart and min(pb, pa) > th.pull_other_max:
        ev.append(f"the two sides' pull bursts came {lag:.0f} ms apart: not one synchronized withdrawal; the "
                  f"{one} side's quotes were pulled; the other side's burst was not kept away (its makers re-quoting)")
        return "one_sided_pull", round(_score(lag - th.pull_apart_ms, th.pull_apart_ms) * factor, 3), ev
    ev.append(f"only the {one} side's quotes were pulled (the other side's fell without a pull: "
              f"{_pct(min(pb, pa))} net cancelled)")
    conf = min(_score(max(pb, pa) - th.pull_both_min, th.pull_both_min),
               _score(th.pull_other_max - min(pb, pa), th.pull_other_max))
    return "one_sided_pull", round(conf * factor, 3), ev


def _rule_trade_driven(m: EventMetrics, f: Features, th: Thresholds, factor: float, ev: list[str]):
    """Rule 4: trade-driven -> consumption (sequential erosion from the touch raises confidence);
    a flow event down to ``flow_backed_trade_min`` when its program's erosion says so
    (:func:`_program_eroded`)."""
    flow = f.trig == "flow" and bool(f.prog)
    tmin = th.flow_trade_min if flow else th.trade_min
    corr = f.corr
    if f.share < tmin:
        if not (flow and f.share >= th.flow_backed_trade_min and not f.pulled and _program_eroded(m, f, th)):
            return None
        ev.append(f"the makers cancelled along the program ({_pct(1 - f.share)} of the removal net of re-adds), but "
                  f"it eroded the book from the touch (distance-from-touch vs removal-time correlation {corr:+.2f}) "
                  f"with the mid moving its way ({float(m.price_move_bps):+.1f} bps): the program moved the book")
        return "consumption", round(_score(f.share - th.flow_backed_trade_min, 1 - th.flow_backed_trade_min) * factor, 3), ev
    conf = _score(f.share - tmin, 1 - tmin)
    if corr is not None:
        ev.append(f"distance-from-touch vs removal-time correlation {corr:+.2f}"
                  + (" (sequential erosion from the touch)" if corr > 0 else ""))
        conf = min(1.0, conf + (th.erosion_bonus if corr > th.erosion_corr_min else 0.0))
    return "consumption", round(conf * factor, 3), ev


def _program_eroded(m: EventMetrics, f: Features, th: Thresholds) -> bool:
    """The flow program's erosion: levels removed in order from the touch outwards (erosion
    correlation > ``erosion_corr_min``) and the mid moved with its aggressor over the event."""
    move = _num(m.price_move_bps)
    aggr = (f.prog or {}).get("aggressor")
    if f.corr is None or move is None or aggr not in ("buy", "sell"):
        return False
    return f.corr > th.erosion_corr_min and (move > 0 if aggr == "buy" else move < 0)


def _rule_cancel_driven(m: EventMetrics, f: Features, th: Thresholds, factor: float, ev: list[str]):
    """Rule 5: cancellation-driven: both sides and concentrated -> synchronized_withdrawal, both
    but staggered -> mixed, one side -> one_sided_pull."""
    share, sides = f.share, f.sides
    if not (share <= th.cancel_max or f.pulled):
        return None
    s_cancel = _score(th.cancel_max - min(share, f.gross if f.pulled else share), th.cancel_max)
    if sides != "both":
        ev.append(f"only the {sides} side fell")
        return "one_sided_pull", round(s_cancel * factor, 3), ev
    if m.side_lag_ms is not None:
        ev.append(f"bid/ask lag {float(m.side_lag_ms):+.0f} ms")
    if not f.conc:
        ev.append("both sides cancelled but spread out in time")
        return "mixed", round(th.conf_mixed * factor, 3), ev
    sync, sync_c, burst, speed = f.sync, f.sync_c, f.burst, f.speed
    if f.kind == "bands" and sync is None:
        s_sync = th.bands_sync_score  # as concentrated as the sampling can show
    else:
        s_sync = max(_score((sync or 0) - th.sync_min, 1 - th.sync_min),
                     _score((sync_c or 0) - th.sync_min, 1 - th.sync_min),
                     _score((burst or 0) - th.burst_min, 1 - th.burst_min),
                     _score(th.fast_ms - (speed if speed is not None else 1e12), th.fast_ms))
        if sync_c is not None:
            ev.append(f"{_pct(sync_c)} of the cancelled quantity within the busiest 500 ms")
    ev.append("both sides pulled at once: synchronized cancellation")
    return "synchronized_withdrawal", round(min(s_cancel, s_sync) * factor, 3), ev


def evidence_json(evidence: list[str]) -> str:
    return json.dumps(evidence, ensure_ascii=False)
