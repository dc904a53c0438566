"""Cliff detection, event metrics and classification (``forensics detect``).

Pipeline per instrument (level data = ``book_updates`` + ``trades``):

1. :func:`forensics.attribution.attribute` -> ``level_changes`` (traded / cancelled per update);
2. :func:`forensics.book.compute_depth` on a ``grid_ms`` grid (default 100 ms) -> band depth
   per side (``depth``) and top of book (``book_top``);
3. **cliffs** on every (side, band) series, at grid time ``t`` with ``B`` = the median depth of
   the ``baseline_s`` (60 s) before ``t - window_s``:
   ``depth(t) <= (1 - drop_frac) * B`` and ``max(depth over [t - window_s, t]) - depth(t) >=
   drop_frac * B`` (a fall of at least ``drop_frac`` = 50% of the baseline within at most
   ``window_s`` = 5 s, ending at most half the baseline), with ``B >= min_baseline_frac`` (20%)
   of the series' median baseline (no cliffs in a band that is already nearly empty). A side
   with no levels at all counts as depth 0 (without a mid the other side is unknown).
   Cliffs of one side in several bands merge (the band with the largest fall is reported);
   bid and ask cliffs overlapping within ``window_s`` make one two-sided event. The other
   side also counts as falling when its drop during the primary fall (10% -> 90%) is abnormal
   for it: >= ``other_k`` (4) x its median absolute change over an interval of that length and
   >= ``other_min_frac`` (15%) of its baseline. With level data a cliff must hold: depth back
   to 50% of the baseline within ``min_hold_s`` (2 s) of the trough is a re-quote blip
   (cancel/replace storm), not vanished depth, unless it is a held partial pull: its trough
   already above that level (30-40% of the quotes pulled), it regains < ``partial_regain_frac``
   (half) of its fall within ``partial_hold_s`` (5 s), its largest side cancelled (net) >=
   ``burst_min`` of the touch band within one ``sync_ms`` and >= ``partial_noise_k`` x its ordinary
   500 ms fall, and it comes back within the horizon (its recovery: half the fall regained).
   A cliff on a side that has not recovered since
   an earlier event, or within ``merge_gap_s`` (10 s) of its end, continues that event.
   With level data a cliff needs a side that lost >= ``own_loss_frac`` (70%) of its band's fall
   at its own levels (the band's prices at the start, net of re-adds); otherwise the bands only
   followed a mid that moved away (the other side's touch jumped, the makers of a pulled side
   returning) and it is dropped. Every side's depth before and after is read in the event's band.
4. **flow episodes** (``trigger='flow'``): consumption by *volume*, not print size (a program
   is found alike whether sent as 10 large or 1,000 small prints): per aggressor side, volume per
   second; for every window length in ``flow_windows_s`` (5-120 s) the window's volume against
   the side's own trailing rate ``mu`` and variance over ``flow_baseline_s`` (10 min) before it
   (variance: the larger of the empirical one and the compound-Poisson one with lognormal order
   sizes fitted on the trailing orders, so a heavy size tail counts even when no huge order
   happened to be in the baseline): ratio ``V / (W mu) >= flow_min_ratio`` and z ``>=
   flow_min_z``, or the *capped* z ``>= flow_min_zc`` (the same test on the volume with every
   order capped at the trailing ``flow_cap_z`` size quantile: the heavy size tail no longer
   swamps a short program of ordinary-sized orders) (both raised while the history is shorter
   than ``flow_full_history_s``); for windows up to 20 s also the capped z ``>= flow_ero_zc``
   when the book shows the erosion (level data: the consumed side's touch band >= ``flow_ero_frac``
   below its median of the minute before and the mid moved with the aggressor >=
   ``flow_ero_drift_z`` sigma), or the order count ``>= flow_count_z`` sigma above the side's
   count rate (many ordinary prints); for windows of ``flow_mid_min_s``-``flow_mid_max_s``
   (10-20 s) the capped z ``>= flow_mid_zc`` alone (a short program of a dozen ordinary child
   orders); spread over
   ``flow_min_active_s`` seconds with no second holding more than ``flow_max_top_share`` (unless
   the rest of the episode is a program by itself; for the capped and count tests, of the capped
   volume: one ordinary big order inside a program of small ones does not make it one cluster). A stretch passing on the plain z alone must
   keep ``flow_min_ratio`` x the rate without its ``flow_trim_n`` largest orders.
   Flagged windows of a side merge; the episode is the stretch of maximal volume above
   ``flow_excess_k`` x the rate (re-cut at half the program's own pace), split where
   ``flow_quiet_s`` pass at or below the trailing rate, each piece re-tested, >= 
   ``flow_min_duration_s`` long. The trailing baseline is kept clean: cliff events up to their
   recovery and the episodes already found (``flow_exclude_before_s`` before to
   ``flow_exclude_after_s`` after; re-run up to ``flow_passes`` times) are left out of it, so an
   earlier cascade or program in the same run does not inflate the rate and variance a later
   program is judged against. The erosion it causes is measured on the event (depth of the
   touch band before/after, levels hit, erosion correlation, mid move). A program starting inside
   a cliff event's window, up to ``flow_merge_s`` after it or before its depth recovered (at most
   ``flow_context_max_s`` after its end), or running into a two-sided non-trade-driven cliff with
   no program of its own before it, is that event's context (e.g. the sell cascade into a
   withdrawn book); a cliff during a program (of the consumed side, or after
   ``flow_lead_share`` of its volume) is part of the program's event. Of two programs of opposite
   aggressors overlapping by >= ``flow_opposite_overlap`` the weaker is the other's counter-flow.
5. **flicker** (``trigger='flicker'``, level data only; no band cliff needed): adds of at least
   ``flicker_min_frac`` (25%) of the side's median depth in the narrowest band and
   ``flicker_min_x`` (5) x the median add, at least ``flicker_min_ticks`` (10) x the median
   spread from the touch (or beyond the ``flicker_add_q`` (99%) quantile of the book's ordinary
   adds' distance from the touch, if nearer: a wide-spread book), removed (>= 80%) within
   ``flicker_life_s`` (5 s) with <= 10% traded; >= ``flicker_min_pairs`` (3) such pairs chained
   with gaps <= ``flicker_gap_s`` (30 s). A cliff overlapping the episode whose net fall is >= 40%
   flicker orders being pulled is absorbed. An episode that absorbed no cliff and lies >=
   ``flicker_inside_share`` (half) of its span inside another event (its window, folds, program,
   recovery up to ``aftermath_max_s``) is that event's makers re-quoting while the book is
   disturbed: folded into it and listed in its evidence.
6. **aftermath**: a cliff or program starting within ``aftermath_fold_s`` (30 s) after the end
   of the previous non-flicker event is folded into it (the book has not settled: re-pulls,
   hedging flow, the deep bands catching up), listed in its evidence; a program within
   ``flow_tail_fold_s`` (60 s) after a program of the same aggressor is its tail.
   The aftermath also runs ``aftermath_fold_s`` past the previous cliff's recovery (at most
   ``aftermath_max_s`` after its end), but a cliff reading as a pull after a consumption
   cliff's depth was back is an event of its own.
   A one-sided cliff (largest fall in a band >= ``refall_band_pct``, 0: any) starting
   < ``refall_s`` (90 s) after an earlier same-side cliff that reads ``one_sided_pull`` is that
   pull's re-fall (the deep band catching up, the makers' re-quote step) and is folded into it.
7. metrics (below) and :func:`forensics.classify.classify` -> label, confidence, evidence.
   Level data also gives each cliff and flow event its *per-side pull bursts* (the largest net
   cancellation within ``sync_ms`` per side from ``pull_before_s`` before to ``pull_after_s``
   after the start, over the narrowest band's depth, and the side's ``pull_noise_q`` quantile of
   ordinary 500 ms falls; bursts further apart than ``pull_pair_ms``: each side's burst within
   ``pull_pair_ms`` of the other's too, and, a cliff both of whose sides fell, the later side's
   fall starting <= ``pull_side_lag_max_s`` after the first's (``pull_fall_pair``), each side's
   burst within ``pull_pair_ms`` of that fall start): a flow event that opened with both sides pulled is a withdrawal and
   its cascade, and folds in the later falls of its aftermath; a fall during a program that is
   not a pull (trade-driven or the book re-centring under it) is part of the program.

Band data only (``depth_bands``, e.g. Binance bookDepth every ~30 s): a cliff is a fall between
two consecutive samples (``window`` = one sample step) against the median of the previous
``bands_baseline_s`` (300 s), plus every *two-sided abnormal drop*: a sample step where both
sides lose >= ``bands_min_drop`` in some band at <= -``bands_z`` robust sigma of that band's own
sample-to-sample changes (:mod:`forensics.band_events`), ranked by severity in the evidence.
Bands under a data-quality flag at either sample (frozen, non-monotonic, average price on the
wrong side: :func:`forensics.band_events.sample_flags`) are left out of the decision and the
evidence says so; a fall that exists only in flagged bands is labelled ``data_anomaly``, never a
pull. Without trade data covering the window (:func:`trade_coverage`; also for level data) a
cliff is ``depth_collapse``: cause undetermined, traded share / traded qty / trade volume null,
the evidence naming the venue's trades / aggTrades of that day as the data that would decide
it. Start/end are the two samples (the time error is up to one
step), the side lag is unknown (null) when both sides fell in the same step; traded share =
per falling side, the aggressive volume hitting it between the two samples capped at its depth
removed, summed, over the total depth removed (every print counts: an upper bound on what
trading explains); ``data_kind='bands'`` and the confidence says level detail was missing.
What band samples cannot show: a fall and its recovery inside one sampling step (at 30 s a
withdrawal held < 30 s may fall between two samples and be invisible), the timing and order of
the fall inside the step, re-quote blips, flicker, and which levels traded.

Event metrics (stored units: sizes in lots, prices in ticks, ``mid_*`` = bid + ask (2x), times
UTC ns; ``*_ms`` durations in ms; ``*_bps`` basis points of mid):
``start_ts``/``end_ts`` (10% / 90% of the fall, refined to the update that crossed it, ms
precision; flow/flicker: first / last burst or order), ``window_from``/``window_to`` (the span
over which quantities are summed), ``band_pct``, ``bid_floor``/``ask_cap`` (the band's prices at
the start), ``depth_before_*``/``depth_after_*`` per side, ``removed_frac_*``, ``removed_frac``,
``speed_ms`` (10%->90%; depth before = at ``window_from``, after = the trough),
``levels_hit`` (price levels that lost size), ``traded_qty``, ``cancelled_qty``, ``added_qty``, ``implied_qty``, ``traded_share`` (gross) and
``traded_share_net`` (see classify), ``other_side_fell``, ``side_lag_ms`` (ask start - bid
start), ``spread_before``/``spread_after``, ``mid_before``/``mid_after``, ``price_move_bps``
(during), ``price_move_after_bps`` (``price_after_s`` = 60 s after), ``recovery_ms`` (end ->
every falling side back to 50% of its baseline depth; null if not within ``recovery_horizon_s``),
``impact_before``/``impact_after`` (sum of 1 s |mid changes| in bps per unit of base volume
traded, ``vacuum_before_s`` = 300 s before / ``vacuum_after_s`` = 120 s after) and
``vacuum_ratio`` = after / before, ``sync_share_500ms`` (share of removed quantity within the
busiest 500 ms), ``levels_emptied_500ms``, ``erosion_corr`` (Spearman correlation between a
level's distance from the touch at the start and the time it lost half its size; sequential
erosion from the touch -> positive), ``trade_volume`` (aggressive volume hitting the falling
side(s) in the window), ``gap_share``, ``flicker_pairs``.

Modules (along the data flow): :mod:`~forensics.detect.params` (DetectParams),
:mod:`~forensics.detect.context` (inputs and shared series helpers), :mod:`~forensics.detect.cliffs`,
:mod:`~forensics.detect.bands` (band-data decisions), :mod:`~forensics.detect.flow`,
:mod:`~forensics.detect.flicker`, :mod:`~forensics.detect.metrics`, :mod:`~forensics.detect.pipeline`
(:func:`detect`). Every name other modules use is re-exported here.
"""
from __future__ import annotations

from forensics.detect.cliffs import find_cliffs
from forensics.detect.context import Cliff, Context, build_context, price_tick
from forensics.detect.flicker import find_flicker
from forensics.detect.flow import find_flow, flow_scores
from forensics.detect.params import EVENT_SCHEMA, DetectParams
from forensics.detect.pipeline import (
           detect,
           detect_instrument,
           instruments,
           trade_coverage,
           write_events,
)

__all__ = ["EVENT_SCHEMA", "Cliff", "Context", "DetectParams", "build_context", "detect", "detect_instrument",
           "find_cliffs", "find_flicker", "find_flow", "flow_scores", "instruments", "price_tick", "trade_coverage",
           "write_events"]
