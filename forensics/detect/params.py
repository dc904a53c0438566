"""Detection parameters: :class:`DetectParams` (every detection threshold, one line of reason each) and
the ``events`` column schema."""
from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from forensics.classify import Thresholds
from forensics.schema import DEFAULT_BANDS, TABLES


@dataclass(frozen=True)
class DetectParams:
    """Detection parameters: the one home of every detection threshold, each with its reason
    (the classifier's are in :class:`forensics.classify.Thresholds`). Tuned only on the
    development seeds (:data:`forensics.evaluate.DEV_SEEDS`), never on the evaluation seeds."""

    # -- cliffs (level data)
    drop_frac: float = 0.5            # a fall to half the baseline is a cliff in any band, however noisy
    drop_min_frac: float = 0.3        # smaller falls count down to 30% (partial pulls of 30-90% of quotes) ...
    cliff_k: float = 10.0             # ... where the fall is >= 10x the band's median 5 s change (a steady band)
    window_s: float = 5.0             # a cliff falls within 5 s; slower erosion is the flow trigger's job
    baseline_s: float = 60.0          # baseline = median of the previous minute (long enough to skip blips)
    grid_ms: int = 100                # the feed's own batching (Binance 100 ms)
    bands: tuple[str, ...] = DEFAULT_BANDS   # touch to deep book, % of mid (schema.DEFAULT_BANDS)
    min_baseline_frac: float = 0.2    # no cliffs in a band holding < 20% of its usual depth (already empty)
    min_band_ticks: float = 20.0      # a band of a handful of ticks empties with every print (coarse tick)
    other_k: float = 4.0              # the other side fell too: >= 4x its typical change over the interval ...
    other_min_frac: float = 0.15      # ... and >= 15% of its baseline (and of its own levels' quantity)
    own_loss_frac: float = 0.7        # a cliff (level data) one of whose sides lost >= 70% of its band's fall at its own levels (fixed prices); else the bands only followed the mid away (0: off; dev 1-400: every other cliff has a side >= 0.93; extras 65, 219 -0.04 / -0.03, 344 at 258 s 0.20, 242 at 225 s 0.48; 263's -0.02 is the far side of a sell program, then reported by the flow trigger)
    merge_gap_s: float = 10.0         # a fall within 10 s of an event's end continues it
    aftermath_max_s: float = 120.0    # an unrecovered side folds in later falls / flows for at most 2 min
    aftermath_fold_s: float = 30.0    # an event starting < 30 s after the previous one ends (or the program reported with it: dev seed 138) is its aftermath (dev 61-160: 6 of 10 extra events)
    aftermath_from_recovery: bool = True  # ... or < aftermath_fold_s after its depth was back (at most aftermath_max_s after its end: the book settling; dev seed 65: a size-tail buy 'program' 16 s after a withdrawal's recovery)
    pulls_after_consumption: bool = True  # ... but a cliff reading as a pull after a consumption cliff's depth was back is an incident of its own (dev seed 65: a 33% bid pull 18 s after a background consumption cliff had recovered; the other folds after the previous event's recovery on dev 1-400: a pull's or withdrawal's own re-pulls)
    own_pull_burst: float = 0.45      # ... nor a one-sided cliff reading one_sided_pull whose larger side's pull burst (net cancel in 500 ms) is >= 45% of its depth, after an event not reading synchronized_withdrawal: a pull of its own (0: off; a two-sided one is the book re-centring, 1-160 seed 137: both 0.1% bands in one 100 ms step after a program, kept, read one_sided_pull; the one-sided pulls folded as aftermath of such events on dev 161-400 and dev6: bursts 0-0.27; dev6 seed 1057's true 36% pull, 28.7 s after a consumption program's end: 0.50; after a withdrawal, dev3 seed 374's re-pull 1.1 s after its return: 1.97, so withdrawals keep theirs; not applied to refall_s: dev3 seed 381's true re-fall 68 s after its pull: 0.87)
    refall_s: float = 90.0            # a one-sided cliff (largest fall in a band >= refall_band_pct) < 90 s after an earlier cliff of the same side reading one_sided_pull started is that pull's re-fall (dev 161-400: seeds 260, 381 at 46 and 68 s; true deep-band pulls on 1-400: no same-side pull within 90 s before)
    refall_band_pct: float = 0.0      # any band (was 2.0, the deep bands only: the deep band catching up); a touch band's re-fall is the makers' re-quote step too (dev 161-400 seed 207: a 40% bid pull found at its start now that recoveries are judged in each cliff's own band, and the touch band's second fall 39 s later, as its makers came back in a first step thinner than the pull, stood alone; dev 1-400: no true incident folded)
    later_falls: bool = True          # a blip's merged cliffs that bottom out after it was back are judged on their own (dev seed 88: a pull hidden behind the re-quote dip before it)
    min_hold_s: float = 2.0           # depth back within 2 s = a cancel/replace blip, not vanished depth
    end_hold: bool = True             # an unrecovered fall whose trough is < min_hold_s before the book data's end is no event: it cannot be told from a blip (dev6 seed 1263: a btc/volatile ask re-quote, 66% of the touch band in 150 ms, trough 135 ms before the capture's last update, read depth_collapse / one_sided_pull)
    recovery_frac: float = 0.5        # recovered = back to half the depth before
    requote_back_s: float = 10.0      # a one-sided cliff reading one_sided_pull whose band is back to requote_back_frac of its depth before within 10 s of the trough is a re-quote, no event (0: off; the simulator's pulls hold 8-40 s at reduced presence and widened spread, then return in steps of recovery/8; dev 401-700 extras 413, 509, 551@116, 503@535, 622@607: one or two makers cancelling a whole ladder side in one message and back within 5-20 s, and 551's / 503's true pulls 31 / 35 s later were folded into them)
    requote_back_frac: float = 0.9    # ... "back" = 90% of the greater of the depth just before the fall and the band's baseline (of the baseline alone with requote_back_usual; those extras: max within 10 s 0.97-1.25x the depth before, 1.00-1.53x the baseline; dev seed 6's pull re-fall, 5% band already thinned: 0.98x the depth before but 0.77x the baseline, so the lesser lost it); and the fall starts from a band at >= 90% of its baseline (the extras: depth before 0.94-1.27x the baseline; dev 161-400 true 32% pulls 289, 353, touch band back above its baseline within 10 s: 0.77 / 0.64x)
    requote_back_usual: bool = True  # ... and a band fuller than usual before the fall (depth before > baseline) need only be back to requote_back_frac x its baseline, its usual depth (dev5 seed 806, btc/volatile background: ask touch band at 1.19x its baseline, 92% cancelled in 893 ms, back to 0.90x the depth before = 1.07x the baseline within 10 s, read one_sided_pull)
    partial_regain_frac: float = 0.5  # a fall whose trough is above that level (a 30-40% pull) is held if it regains < half its fall ... (0: off)
    partial_hold_s: float = 5.0       # ... within 5 s (pulled quotes stay away; a re-quote comes back), and then kept only on its pull burst (Thresholds.burst_min, partial_noise_k)
    partial_noise_k: float = 1.0      # ... and >= the side's 99th-percentile 500 ms fall (dev 1-160: held candidates at 1.0-1.5x are 6 pulls, 4 flicker and 1 consumption windows, none in background; was Thresholds.pull_noise_k 1.5)
    partial_any_band: bool = True     # ... in any usable band, not only the touch band (a partial pull widens the quotes too: the touch band gets part back at once; dev 161-400 seeds 205, 336: touch band 0.24 / 0.12 of its depth, the 5% / 2% band 0.35 / 0.31 against a 99th-percentile churn of 0.06 / 0.04); a wider band's burst must stay away (Thresholds.requote_kept_max; dev seed 280: a flicker's last order, re-added at once, kept 0.08, the pulls 0.97-1.0)
    blip_side_drop: bool = True       # a two-sided blip whose one side stayed down in its own band (not back for partial_hold_s, or a held partial fall) while the other was back within min_hold_s is that side's fall alone (dev 161-400 seed 264: a 49% bid pull, back after 7.4 s, merged with an ask dip back in 0.2 s; dev seed 84: a bid back after 2.6 s in a buy program stays a blip)
    held_band_drop: bool = False      # off: on it also kept a false pull on dev 161-400 (seed 231, btc/volatile: a 21%-removed bid fall, sync 0.25, during a flicker), one-sided precision there 1.000 -> 0.996; on: a one-sided blip whose fall in another band of that side held (a held partial fall there) is that band's fall, judged on its own (dev6 seed 1076, alt/normal: a 36% ask pull, the 0.5% band 17.3k -> 8.9k, a 0.5 s dip to 6.6k and "back" at half its depth 0.5 s after that trough, the 1% band 44.6k -> 24.1k held for 15 s: missed)
    recovery_horizon_s: float = 600.0  # recovery looked for over 10 minutes
    price_after_s: float = 60.0       # price move measured 1 minute after
    vacuum_before_s: float = 300.0    # impact per unit volume: 5 min before ...
    vacuum_after_s: float = 120.0     # ... vs 2 min after
    vacuum_gap_s: float = 5.0         # the "before" impact stops 5 s before the window (no run-up)
    sync_ms: int = 500                # synchronisation window (a pull by many makers lands within ~300 ms)
    pull_before_s: float = 3.0        # per-side pull bursts looked for from 3 s before an event's start ...
    pull_after_s: float = 2.0         # ... to 2 s after it (a cascade starts ~1 s after the pull)
    pull_pair_ms: float = 500.0       # bursts further apart than this: each side's burst within 500 ms of the other's is measured too (a volatile side's own churn can outweigh its share of a two-sided pull; Thresholds.pull_max_lag_ms; 0: off, pull_fall_pair's pair too)
    pull_fall_pair: bool = True       # a cliff both of whose sides fell, the later side's fall starting <= pull_side_lag_max_s after the first's: each side's burst within pull_pair_ms of that fall start is measured too, the pair Thresholds read like pull_pair_ms's (the pull is where the later side starts falling, the first side's leading dip started the event: dev5 seed 988, falls 2069 ms apart, the largest bursts bid 6% / ask 20% 2305 ms apart with the bid's pull at the window's end, at the bid's fall start 80% / 61%, read one_sided_pull; dev4 488, 624 alike, falls 2.8 / 2.3 s apart; widening the whole burst window instead: pull_after_s 3 turned dev seeds 18, 24; to the later fall start + 2 s, a later cascade burst outweighed dev5 848's pull)
    pull_side_lag_max_s: float = 3.0  # ... (those withdrawals: 2.1-2.8 s; a side falling later is no part of one pull: with the burst window widened to the later fall start instead, dev5 seed 806's one-sided pull, the other side's fall 11.7 s on, read a withdrawal; with this pair uncapped (1000 s) 806 and every label of 851-1000 stay as they are: a guard, 0: off)
    requote_s: float = 1.0            # a burst's re-adds looked for within 1 s of it (a re-quoting maker re-adds at once; see Thresholds.requote_kept_max)
    pull_noise_q: float = 0.99        # a side's ordinary 500 ms churn: the 99th percentile of its falls
    pull_noise_block_s: float = 60.0  # a held partial pull's churn bar (partial_noise_k): that quantile per minute, the median over the minutes (0: the whole series at once; dev 161-400 seed 217: the run's own ask flicker episode set the ask's whole-run 99th percentile at 0.54 vs the bid's 0.18, per minute 0.14); the classifier's bars keep the whole-series figure (per minute there, btc/volatile programs read withdrawals: dev3 seeds 228, 333)
    # -- band data (bookDepth, ~30 s samples)
    bands_baseline_s: float = 300.0   # halving cliffs: median of the previous 5 minutes of samples
    bands_z: float = 5.0              # abnormal drop: <= -5 robust sigma of the band's own changes ...
    bands_min_drop: float = 0.20      # ... and >= 20% of the band (a 5-sigma wiggle of a very steady band is not a fall)
    bands_sigma_samples: int = 120    # sigma over the previous 120 changes (1 h at 30 s)
    bands_sigma_min_samples: int = 20  # no verdict before 20 changes (10 min at 30 s) of history
    bands_sigma_floor: float = 0.02   # sigma never below 2% per sample (published rounding, frozen stretches)
    trade_gap_s: float = 120.0        # trades "cover" a window without a 2-minute hole around it
    # -- flow (consumption by sustained aggressive volume)
    flow: bool = True                 # the flow trigger on (off: cliffs and flicker only)
    flow_windows_s: tuple[int, ...] = (5, 10, 20, 40, 80, 120)  # programs of 5 s to 2 min
    flow_baseline_s: float = 600.0    # the side's own trailing rate / variance: previous 10 minutes
    flow_min_history_s: float = 60.0  # no verdict on less than a minute of the side's history ...
    flow_full_history_s: float = 300.0  # ... and the z bar rises as sqrt(300 s / history) below 5 minutes
    flow_min_ratio: float = 2.0       # volume >= 2x the side's trailing rate ...
    flow_min_z: float = 6.0           # ... and >= 6 sigma (dev seeds: background tops out near 5.5 over hours)
    flow_cap_z: float = 1.645         # capped z: each order capped at the trailing 95% size quantile (lognormal fit) ...
    flow_min_zc: float = 9.0          # ... >= 9 sigma of the capped volume (dev 1-160: finds 5-10 s programs the size tail hides, +1 calm false event in 16 h)
    flow_trim_n: int = 3              # a program passing on the plain z alone keeps >= flow_min_ratio x the trailing rate without its 3 largest orders (dev 1-160: the 2 calm false events were 2-3 size-tail orders, trimmed ratio 1.25 / 1.57; a program of >= 10 child orders keeps ~70% of its excess)
    flow_recut_trim: float = 3.0      # a stretch the pace re-cut would shrink to one cluster keeps its width if it passes the plain tests and keeps >= 3x the trailing rate without its flow_trim_n largest orders (dev6 seed 1300: a 5.9x program of 11 child orders over 6.5 s, plain z 16.4, capped z 5.5, trimmed 4.46x, re-cut to its 2.x s core and dropped; dev3 seed 314's background burst of two size-tail orders, plain z 11.2: trimmed 2.21x; 0: off)
    flow_short_s: float = 15.0        # a stretch shorter than 15 s passing on the plain volume z alone ...
    flow_short_z: float = 8.0         # ... needs z >= 8 ... (dev 161-400: 3 of the 4 calm false programs were 3.8-4.8 s of 22-31 prints at plain z 6.1-7.8, capped z 4.9-5.9) ...
    flow_short_zc: float = 6.0        # ... or capped z >= 6 (dev seed 298's 9 s program of 11 large child orders: z 6.9, capped z 6.3; a burst of size-tail orders caps low)
    flow_count_z: float = 8.0         # many same-side orders: a 5-20 s window at >= flow_min_ratio whose order count is >= 8 sigma above the side's trailing count rate (per-second variance, Poisson floor) is a program (dev 1-160: calm windows top out at 5.05 in 16 h; the missed 5-10 s programs of 42-80 prints: 14.5-28.7) ...
    flow_count_max_s: int = 20        # ... for windows up to 20 s (the counts of real takers cluster: a long window's count z overstates)
    flow_ero_zc: float = 5.5          # with erosion, a capped z >= 5.5 suffices (dev 1-160: calm 5-20 s windows at >= 2x top out at zc 4.95 in 16 h; the missed 5-10 s programs it finds: 6.0-8.6) ...
    flow_ero_max_s: int = 20          # ... for windows up to 20 s (longer programs reach the plain bars) ...
    flow_ero_frac: float = 0.03       # ... when the consumed side's touch band fell >= 3% below its median of the minute before (those programs: 5-17%; the simulator's makers refill, so this is weak evidence) ...
    flow_ero_drift_z: float = 1.0     # ... and the mid moved with the aggressor >= 1 sigma (RMS over the previous flow_baseline_s) of its moves over that window length (those programs: 1.3-3.6)
    flow_mid_zc: float = 6.0          # a 10-20 s window's capped z >= 6 is a program by itself, no erosion needed (dev 1-400, 40 h of background: 10-20 s windows at >= 2x top out at zc 4.92, 5 s windows at 5.86; the missed 7-13 s programs of 11-23 child orders: 6.0-7.9; flows during dev one-sided pulls: up to 5.93) ...
    flow_mid_min_s: int = 10          # ... for windows of 10 s ...
    flow_mid_max_s: int = 20          # ... to 20 s (5 s windows of background reach 5.9; longer programs reach the plain bars)
    flow_fast_zc: float = 7.5         # a 5 s window (shorter than flow_mid_min_s) whose capped z >= 7.5 is a program by itself, the stretch around it judged on that bar too (5 s windows of dev 1-400 background top out at 5.86 in 40 h; dev4 seed 533's missed 6 s program of 33 child orders at 3.2x: 8.1-8.3, its 10 s windows 5.9-6.0 at the flow_mid_zc bar, found or not by the pass count)
    flow_ero_base_s: int = 60         # erosion baseline: the touch band's median over the minute before the window
    flow_min_duration_s: float = 3.5  # one cluster of orders (< 3.5 s) is not a sustained program (dev seed 67: a 5.2 s program of 15 prints spans 3.9 s inside its seconds; 4 s lost it, nothing else changed on dev 1-160)
    flow_max_top_share: float = 0.5   # no single second holds more than half the window's volume
    flow_rest_sustained: bool = True  # a program whose busiest second holds more than that is kept if the rest alone passes the ratio and z tests (dev seed 67: 15 prints in 5 s, top second 50.2%)
    flow_min_active_s: int = 3        # the window has prints in >= 3 distinct seconds
    flow_excess_k: float = 1.5        # episode = the stretch of maximal volume above 1.5x the trailing rate
    flow_quiet_s: float = 20.0        # 20 s at or below the trailing rate splits two episodes
    flow_tail_fold_s: float = 60.0    # a program starting < 60 s after the same aggressor's program ends is its tail (the side's flow staying up, or the program resuming; dev seed 48: 54 s)
    flow_opposite_overlap: float = 0.5  # an episode overlapping the other side's stronger (higher z) one by >= half its length is that program's counter-flow (dev seed 24, alt/calm: a sell 'program' under a buy program)
    flow_context_max_s: float = 60.0  # a program starting > 60 s after a cliff's end is not its aftermath, recovered or not (dev 1-160: cascades start <= 29 s after, one 59 s; seeds 123, 156: 113 s after an unrecovered one-sided pull, a program of its own)
    flow_merge_s: float = 10.0        # a program starting within 10 s after a cliff is its aftermath
    flow_lead_share: float = 0.25     # >= 25% of a program's volume before a cliff: the cliff is part of it
    flow_absorbs_consumed_pulls: bool = True  # a cliff reading one_sided_pull whose larger pull burst is on the consumed side, starting while the program runs, is the makers backing away from it: part of the program (dev 161-400 seed 184: 10 s into a 68 s sell program, bid burst 63%, ask 23% 3.1 s later, stood alone as a one_sided_pull)
    flow_keeps_withdrawals: bool = True  # a cliff reading synchronized_withdrawal, both sides' pull bursts >= Thresholds.pull_both_min (161-400 seed 200: a two-sided touch-band emptying in one grid step with no burst measured, 1 s after a 110 s program, stays its aftermath), that starts after a program's end is an incident of its own: not absorbed into the program (flow_merge_s, flow_lead_share) nor folded into it as its aftermath (aftermath_fold_s), unless the program itself reads as a withdrawal or opened with both sides pulled (Thresholds.pull_both_min at its start: a withdrawal's cascade read as a program, dev4 seed 536; takers consuming one side do not make every maker pull both sides; dev5 seed 878: a 4.4 s buy stretch ended 2.4 s before a true withdrawal and swallowed it)
    flow_defers_to_withdrawal: bool = True  # a program running into a two-sided cliff that reads synchronized_withdrawal, whose own window does not read consumption (the depth it saw go was cancelled: the withdrawal's), is that cliff's accompanying flow even with a program of its own before it; standing alone it reported the withdrawal's pull a second time (dev4 seed 449: 21 s before the cliff, read one_sided_pull at 21% net traded; dev5 seed 920: 14 s before, 17%)
    flow_recut_frac: float = 0.5      # episode edges re-cut at half the program's own pace (a lone print before it is not its start)
    flow_tighten_steps: int = 3       # a failing episode is re-cut at up to this many rising levels (a short program's long tail) ...
    flow_tighten_x: float = 1.5       # ... each 1.5x the previous one
    flow_pad_frac: float = 0.25       # a flagged stretch is searched a quarter of the longest window beyond its ends
    flow_min_trades: int = 50         # fewer aggressive prints in the whole window: no rate to judge against
    flow_passes: int = 3              # baseline cleaned of the episodes found so far, up to 3 passes
    flow_exclude_before_s: float = 5.0   # an episode leaves its side's baseline from 5 s before ...
    flow_exclude_after_s: float = 30.0   # ... to 30 s after (the cascade's tail, the re-quoting book)
    # -- flicker
    flicker: bool = True              # the flicker trigger on (level data only)
    flicker_min_frac: float = 0.25    # flicker order >= 25% of the narrowest band's median depth ...
    flicker_min_x: float = 5.0        # ... and >= 5x the median add
    flicker_min_ticks: float = 10.0   # placed >= 10 median spreads from the touch (not meant to trade)
    flicker_add_q: float = 0.99       # ... or beyond the 99th percentile of the book's ordinary adds' distance from the touch, whichever is nearer (0: off; dev seeds 73, 88 btc/volatile: median spread 15-16 ticks, adds' q99 49-51 ticks, flicker orders 51-107 ticks out)
    flicker_life_s: float = 5.0       # pulled within 5 s
    flicker_min_pairs: int = 3        # >= 3 such orders make an episode
    flicker_gap_s: float = 30.0       # ... chained with gaps <= 30 s
    flicker_removed_frac: float = 0.8  # "pulled": >= 80% of the order gone within flicker_life_s ...
    flicker_pair_max_traded: float = 0.1  # ... with <= 10% of it traded (not meant to trade)
    flicker_absorb_share: float = 0.4  # a cliff whose net fall is >= 40% flicker orders is the flicker's
    flicker_inside_share: float = 0.5  # an episode (no cliff absorbed) lying >= half its span inside another event's window/program/recovery is that event's re-quoting, folded into it (0: off; dev 1-400: the 6 extra episodes 0.74-1.0, true flicker episodes 0 but one at 0.23)
    tolerance_ns: int | None = None   # trade/update matching window (None: estimated from the data)
    depth_limit: int | str | None = "auto"  # N-level view of the feed (None/0 full depth, 'auto' detected)
    thresholds: Thresholds = field(default_factory=Thresholds)  # the classifier's (forensics.classify)



#: columns of ``events`` (pinned + metrics, stored units; see schema.TABLES / EXACT)
EVENT_SCHEMA: dict[str, pl.DataType] = dict(TABLES["events"])
