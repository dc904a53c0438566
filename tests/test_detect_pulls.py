"""Per-side pull bursts on a small hand-built book: a re-quote (cancel and re-add at once) is not
a pull, so a pull on one side with the other side's makers re-quoting reads one-sided."""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from forensics.classify import Thresholds
from forensics.detect.context import Context
from forensics.detect.metrics import _pull_metrics, _side_pulls
from forensics.detect.params import DetectParams
from tests.detect_util import classify, incident_labels


S = 1_000_000_000
MS = 1_000_000
BID, ASK = 9_995, 10_005          # one level each side, inside the 0.1% band of mid 10,000


def _book(ask_readd: int) -> Context:
    """60 s of a 1,000-lot bid and ask level (0.1% band). At 30 s the bid makers pull 600 lots at
    once and keep them away; at 30.3 s the ask makers cancel 500 lots and re-add ``ask_readd``
    of them 600 ms later at the same level (a re-quote after the mid moved when ``ask_readd`` is
    close to 500; a second pull when it is 0)."""
    ts = np.arange(0, 60 * S, 100 * MS)
    bid = np.where(ts >= 30 * S, 400.0, 1000.0)
    ask = np.where((ts >= 30_300 * MS) & (ts < 30_900 * MS), 500.0, 1000.0)
    ask = np.where(ts >= 30_900 * MS, 500.0 + ask_readd, ask)
    depth = pl.concat([pl.DataFrame({"ts": ts, "side": side, "band_pct": 0.1, "qty": q})
                       for side, q in (("bid", bid), ("ask", ask))])
    top = pl.DataFrame({"ts": ts, "mid": np.full(ts.size, 20_000), "spread": np.full(ts.size, 10),
                        "best_bid": np.full(ts.size, BID), "best_ask": np.full(ts.size, ASK)})
    rows = [(30 * S, "bid", BID, "cancel", -600, 600, 0),
            (30_300 * MS, "ask", ASK, "cancel", -500, 500, 0)]
    if ask_readd:
        rows.append((30_900 * MS, "ask", ASK, "add", ask_readd, 0, ask_readd))
    lc = pl.DataFrame(rows, schema={"ts": pl.Int64, "side": pl.Utf8, "price": pl.Int64, "cause": pl.Utf8,
                                    "delta": pl.Int64, "cancelled": pl.Int64, "added": pl.Int64}, orient="row")
    trades = pl.DataFrame(schema={"ts": pl.Int64, "price": pl.Int64, "size": pl.Int64, "aggressor": pl.Utf8})
    return Context("x", "X", "book", 100 * MS, depth, top, trades, lc, 0, 0, [0.1])


def _event(ctx: Context) -> dict:
    """The two-sided cliff event's classifier inputs: cancellation-driven, both sides fell."""
    e = {"data_kind": "book", "trigger": "cliff", "band_pct": 0.1, "sides": "both", "removed_frac": 0.55,
         "traded_share": 0.0, "traded_share_net": 0.0, "sync_share_500ms": 0.55, "speed_ms": 300.0,
         "_burst_pull_frac": 0.55, "start_ts": 30 * S}
    _pull_metrics(ctx, e, 27 * S, 32 * S, DetectParams())
    return e


def test_a_burst_re_added_at_once_is_kept_out():
    sp = _side_pulls(_book(480), 27 * S, 32 * S, DetectParams())
    assert sp["bid"][0] == 0.6 and sp["bid"][2] == 1.0           # pulled and kept away
    assert sp["ask"][0] == 0.5 and abs(sp["ask"][2] - 0.04) < 1e-9  # 480 of its 500 back within 1 s
    # a re-add later than requote_s does not count: the burst is still away
    late = _side_pulls(_book(480), 27 * S, 32 * S, DetectParams(requote_s=0.5))
    assert late["ask"][2] == 1.0


def test_the_other_side_re_quoting_reads_one_sided():
    """Both bursts >= 15% within 300 ms, cancellation-driven, would read synchronized_withdrawal (rule 2); the ask's was
    re-added at once, the bid's stayed away: only the bid was pulled. With the rule off
    (``requote_kept_max`` -inf), or when the ask's burst stays away too, it is a withdrawal."""
    requote = _event(_book(480))
    label, conf, ev = classify(requote)
    assert label == "one_sided_pull" and conf > 0.5 and any("re-quoted" in x for x in ev)
    assert classify(requote, dataclasses.replace(Thresholds(), requote_kept_max=float("-inf")))[0] \
        == "synchronized_withdrawal"
    assert classify(_event(_book(0)))[0] == "synchronized_withdrawal"
    # both sides re-added (no side pulled and kept away): no re-quote reading
    both = dict(requote, _pull_kept_bid=0.1)
    assert classify(both)[0] == "synchronized_withdrawal"
    # a trade-driven fall is not read by this rule
    traded = dict(requote, traded_share=0.5, traded_share_net=0.56, _burst_pull_frac=0.2)
    assert classify(traded)[0] != "one_sided_pull"


def test_a_pull_behind_a_re_quote_dip_is_found(tmp_path):
    """Dev seed 88 (btc/volatile): the touch band dips and is back within 2 s just before the
    makers pull 40% of their bid quotes. The cliffs chain into one group whose largest fall is
    the dip, so the group read as a blip and the pull inside it was dropped. With ``later_falls``
    the group's cliffs that bottom out after their side was back are judged on their own and
    the pull is found as a one_sided_pull; with it off it is missed again."""
    found = {on: incident_labels(tmp_path, 88, dataclasses.replace(DetectParams(), later_falls=on))["one_sided_pull"][0]
             for on in (True, False)}
    assert found == {True: "one_sided_pull", False: None}


def test_a_held_partial_pull_at_the_books_churn_is_found(tmp_path):
    """Dev seed 158 (btc/calm): makers pull 31% of their ask quotes for 13 s; the touch band's
    net cancel burst (42% of its depth) is just above the side's 99th-percentile 500 ms fall
    (41%), short of 1.5x it. Held partial pulls are judged at ``partial_noise_k`` 1.0 x that
    churn: found as a one_sided_pull; at 1.5 it is missed (judged in the touch band alone,
    ``partial_any_band`` off, against the whole run's churn, ``pull_noise_block_s`` 0: a wider
    band, or the churn of an ordinary minute, shows the pull further above it)."""
    found = {}
    for k in (DetectParams().partial_noise_k, 1.5):
        label, shape = incident_labels(tmp_path, 158, dataclasses.replace(DetectParams(), partial_noise_k=k,
                                                                          partial_any_band=False,
                                                                          pull_noise_block_s=0.0))["one_sided_pull"]
        assert shape["pull_frac"] < 0.4
        found[k] = label
    assert found == {1.0: "one_sided_pull", 1.5: None}


def test_bursts_far_apart_both_kept_away_are_a_withdrawal():
    """Bursts > pull_apart_ms apart read one-sided only when the later (weaker) one was a
    re-quote (re-added: keeps < requote_kept_max of it). Dev seeds 6 and 118: withdrawals whose
    weaker side's touch band showed the pull 1.1-1.4 s late, kept 0.64 / 0.91 of it: two pulls."""
    base = {"data_kind": "book", "trigger": "cliff", "band_pct": 0.5, "removed_frac": 0.8, "sides": "both",
            "traded_share_net": 0.2, "traded_share": 0.09, "sync_share_500ms": 0.44, "speed_ms": 5900.0,
            "_burst_pull_frac": 0.45, "_pull_bid": 0.61, "_pull_ask": 0.20, "_pull_lag_ms": 1423.0,
            "_pull_at_ms": 1423.0, "_pull_kept_bid": 1.0}
    assert classify({**base, "_pull_kept_ask": 0.64})[0] == "synchronized_withdrawal"
    lab, _, ev = classify({**base, "_pull_kept_ask": 0.2})
    assert lab == "one_sided_pull" and any("1423 ms apart" in x for x in ev)
    # the rule off (every burst counts as re-added): the old reading, one-sided
    off = dataclasses.replace(Thresholds(), requote_kept_max=float("inf"))
    assert classify({**base, "_pull_kept_ask": 0.64}, off)[0] == "one_sided_pull"


def test_a_thirty_percent_pull_at_the_burst_bar_is_found(tmp_path):
    """Dev seed 123 (alt/calm): makers pull 31% of their ask quotes; the touch (0.5%) band's net
    cancel burst is 29.6% of its depth, just under a 30% pull bar. Not held as a pull, the
    makers' first re-quote step 31 s later stood for it (read consumption; before the flow rules'
    60 s aftermath cap it also swallowed the run's withdrawal 2 minutes later). With
    ``burst_min`` 25% the pull is held and read one-sided, and the withdrawal is found; at 30%
    the pull is not read one-sided."""
    found = {bar: incident_labels(tmp_path, 123, dataclasses.replace(
                 DetectParams(), thresholds=dataclasses.replace(Thresholds(), burst_min=bar)),
                 kinds=("withdrawal", "one_sided_pull"))
             for bar in (Thresholds().burst_min, 0.30)}
    found = {bar: {kind: label for kind, (label, _) in got.items()} for bar, got in found.items()}
    assert found[0.25] == {"withdrawal": "synchronized_withdrawal", "one_sided_pull": "one_sided_pull"}
    assert found[0.30]["one_sided_pull"] != "one_sided_pull"


def test_a_deep_band_re_fall_after_a_pull_of_the_same_side_is_folded_in():
    """Dev seeds 260 and 381: 46 s and 68 s after a one-sided ask pull (touch bands) the 5% band
    fell on its own (the deep band catching up / the makers' re-quote step) and stood alone as
    a second one_sided_pull matching no incident. A one-sided cliff whose largest fall is in a
    band >= ``refall_band_pct`` starting < ``refall_s`` after an earlier cliff of that side that
    reads one_sided_pull is folded into it (any band at the default 0; a touch band's re-fall
    is the makers' re-quote step, dev seed 207); not with the rule off, not on the other side,
    not in a touch band at ``refall_band_pct`` 2, not later, and not after a trade-driven cliff (dev seed 65: its pull in the 5%
    band 72 s after a background consumption cliff of the bid side)."""
    from forensics.detect.pipeline import _fold_refalls
    S = 1_000_000_000

    def cliff(t0, t1, side, band, label="one_sided_pull"):
        return {"trigger": "cliff", "start_ts": int(t0 * S), "window_to": int(t1 * S), "sides": side,
                "band_pct": band, "_lab": label}

    def lab(e):
        return e["_lab"]

    p = DetectParams()
    out = _fold_refalls([cliff(73, 80, "ask", 1.0), cliff(119, 125, "ask", 5.0)], p, lab)
    assert len(out) == 1 and len(out[0]["_absorbed"]) == 1
    off = dataclasses.replace(p, refall_s=0.0)
    assert len(_fold_refalls([cliff(73, 80, "ask", 1.0), cliff(119, 125, "ask", 5.0)], off, lab)) == 2
    assert len(_fold_refalls([cliff(73, 80, "bid", 1.0), cliff(119, 125, "ask", 5.0)], p, lab)) == 2
    assert len(_fold_refalls([cliff(73, 80, "ask", 1.0), cliff(119, 125, "ask", 0.5)], p, lab)) == 1  # any band (dev seed 207)
    deep = dataclasses.replace(p, refall_band_pct=2.0)
    assert len(_fold_refalls([cliff(73, 80, "ask", 1.0), cliff(119, 125, "ask", 0.5)], deep, lab)) == 2
    assert len(_fold_refalls([cliff(73, 80, "ask", 1.0), cliff(73 + p.refall_s + 1, 170, "ask", 5.0)], p, lab)) == 2
    assert len(_fold_refalls([cliff(97, 99, "bid", 0.5, "consumption"), cliff(169, 175, "bid", 5.0)], p, lab)) == 2


def test_a_fall_only_in_flagged_bands_is_never_folded_into_another_event():
    """A data_anomaly fall (it exists only in bands the data-quality flags mark) soon after a
    pull or any event stays an event of its own: folded, its flag would vanish into the other
    event's verdict (no pull on a flagged band)."""
    from forensics.detect.pipeline import _fold_aftermath, _fold_refalls
    S = 1_000_000_000

    def cliff(t0, t1, side, band, anomaly=None):
        e = {"trigger": "cliff", "start_ts": int(t0 * S), "window_to": int(t1 * S), "sides": side, "band_pct": band}
        return dict(e, _anomaly=anomaly) if anomaly else e

    p = DetectParams()
    flagged = cliff(100, 130, "ask", 5.0, [("ask", 5.0, "avg_price_wrong_side")])
    assert len(_fold_refalls([cliff(73, 80, "ask", 1.0), flagged], p, lambda e: "one_sided_pull")) == 2
    assert len(_fold_aftermath([cliff(73, 80, "ask", 1.0), cliff(85, 95, "ask", 5.0)], p)) == 1   # unflagged: folded
    assert len(_fold_aftermath([cliff(73, 80, "ask", 1.0), dict(flagged, start_ts=85 * S)], p)) == 2


def _partial_pull_on_off(tmp_path, seed: int, rule: str, max_frac: float) -> dict:
    """The one-sided pull incident's label of drawn run ``seed`` with DetectParams switch ``rule``
    on and off (the run's pull a partial one: under ``max_frac`` of the quotes)."""
    found = {}
    for on in (True, False):
        label, shape = incident_labels(tmp_path, seed, dataclasses.replace(DetectParams(), **{rule: on}))["one_sided_pull"]
        assert shape["pull_frac"] < max_frac
        found[on] = label
    return found


def test_a_partial_pull_the_touch_band_hides_is_found_in_a_wider_band(tmp_path):
    """Dev seed 336 (alt/calm): makers pull 32% of their bid quotes and widen the rest; the
    touch (0.5%) band gets part of them back at once, so its net cancel burst is 12% of its
    depth (short of ``burst_min``), while the 2% band lost 31% within 500 ms against an ordinary
    500 ms fall of 4% there, and kept it away. Judged in any usable band (``partial_any_band``)
    the held partial fall is a pull, read one-sided; in the touch band alone it is missed."""
    assert _partial_pull_on_off(tmp_path, 336, "partial_any_band", 0.35) == {True: "one_sided_pull", False: None}


def test_a_wider_bands_burst_re_added_at_once_is_no_pull():
    """A wider band's burst counts for a held partial fall only if it stayed away (a flicker
    order's replacement or a re-quote is re-added at once: dev seed 280's flicker, kept 0.08):
    the same 60% bid burst in a 1% band reads pulled when kept away and not when re-added, nor
    in the touch band alone."""
    from forensics.detect.cliffs import _partial_pulled
    from forensics.detect.context import Cliff

    def ctx(readd):
        ts = np.arange(0, 60 * S, 100 * MS)
        wide = np.where(ts >= 30 * S, 400.0, 1000.0)
        if readd:
            wide = np.where(ts >= 30_400 * MS, 1000.0, wide)
        depth = pl.concat([pl.DataFrame({"ts": ts, "side": side, "band_pct": band, "qty": q})
                           for side, band, q in (("bid", 0.1, np.full(ts.size, 1000.0)), ("bid", 1.0, wide),
                                                 ("ask", 0.1, np.full(ts.size, 1000.0)),
                                                 ("ask", 1.0, np.full(ts.size, 1000.0)))])
        top = pl.DataFrame({"ts": ts, "mid": np.full(ts.size, 20_000), "spread": np.full(ts.size, 10),
                            "best_bid": np.full(ts.size, BID), "best_ask": np.full(ts.size, ASK)})
        far = 9_950  # inside the 1% band, outside the 0.1% one
        rows = [(30 * S, "bid", far, "cancel", -600, 600, 0)]
        if readd:
            rows.append((30_400 * MS, "bid", far, "add", 600, 0, 600))
        lc = pl.DataFrame(rows, schema={"ts": pl.Int64, "side": pl.Utf8, "price": pl.Int64, "cause": pl.Utf8,
                                        "delta": pl.Int64, "cancelled": pl.Int64, "added": pl.Int64}, orient="row")
        trades = pl.DataFrame(schema={"ts": pl.Int64, "price": pl.Int64, "size": pl.Int64, "aggressor": pl.Utf8})
        return Context("x", "X", "book", 100 * MS, depth, top, trades, lc, 0, 0, [0.1, 1.0])

    c = Cliff("bid", 1.0, 30 * S, 29_900 * MS, 30 * S, 1000.0, 400.0, 1000.0)
    ev = {"cliffs": {"bid": c}, "band": 1.0, "t_peak": c.t_peak, "t_trough": c.t_trough}
    p = DetectParams()
    assert _partial_pulled(ev, ctx(False), p)
    assert not _partial_pulled(ev, ctx(True), p)
    assert not _partial_pulled(ev, ctx(False), dataclasses.replace(p, partial_any_band=False))


def test_a_pull_merged_with_the_other_sides_blip_is_found(tmp_path):
    """Dev seed 264 (alt/volatile): makers pull 49% of their bid quotes (back after 7 s in the
    touch band) while the ask's touch band dips and is back in 0.2 s; the two cliffs group into
    one two-sided fall that read as a blip as a whole and the pull was dropped. With
    ``blip_side_drop`` the side that stayed down is judged on its own: a one_sided_pull."""
    found = {on: incident_labels(tmp_path, 264, dataclasses.replace(DetectParams(), blip_side_drop=on))["one_sided_pull"][0]
             for on in (True, False)}
    assert found == {True: "one_sided_pull", False: None}


def test_each_side_recovers_in_the_band_its_fall_was_found_in(tmp_path):
    """Dev seed 344 (alt/volatile): a two-sided fall whose bid cliff was found in the 1% band
    (50k lots) and ask cliff in the 0.5% band had its bid recovery judged on the bid's 0.5%
    band (8-20k lots) against half the 1% band's depth: never recovered, so the run's
    withdrawal 88 s later folded into it as a continuation and its cascade program read as a
    consumption. Each side's recovery is measured in its own cliff's band: the withdrawal is
    found."""
    got = incident_labels(tmp_path, 344, DetectParams(), kinds=("withdrawal",))
    assert got["withdrawal"][0] == "synchronized_withdrawal"


def test_a_pull_after_a_consumptions_depth_was_back_is_not_its_aftermath():
    """Dev seed 65: a background consumption cliff of the bid side (recovered at +9 s) and 27 s
    after its end a 33% bid pull: not its aftermath (``pulls_after_consumption``), while a
    withdrawal's re-pull after its depth was back still is; and a program 16 s after a cliff's
    recovery (33 s after its end) is folded in with ``aftermath_from_recovery`` (dev seed 65's
    size-tail buy 'program' after the withdrawal)."""
    from forensics.detect.pipeline import _fold_aftermath

    def cliff(t0, t1, rec, label):
        return {"trigger": "cliff", "start_ts": int(t0 * S), "window_to": int(t1 * S), "sides": "bid",
                "_recovered_at": int(rec * S) if rec is not None else None, "_lab": label}

    def lab(e):
        return e["_lab"]

    p = DetectParams()
    assert len(_fold_aftermath([cliff(97, 97.4, 106, "consumption"), cliff(124.5, 130, None, "one_sided_pull")], p, lab)) == 2
    off = dataclasses.replace(p, pulls_after_consumption=False)
    assert len(_fold_aftermath([cliff(97, 97.4, 106, "consumption"), cliff(124.5, 130, None, "one_sided_pull")], off, lab)) == 1
    assert len(_fold_aftermath([cliff(97, 97.4, 106, "synchronized_withdrawal"),
                                cliff(124.5, 130, None, "synchronized_withdrawal")], p, lab)) == 1
    flow = {"trigger": "flow", "start_ts": 47 * S, "window_to": 74 * S, "sides": "ask", "program": {"aggressor": "buy"}}
    assert len(_fold_aftermath([cliff(0, 14, 31.3, "synchronized_withdrawal"), dict(flow)], p, lab)) == 1
    assert len(_fold_aftermath([cliff(0, 14, 31.3, "synchronized_withdrawal"), dict(flow)],
                               dataclasses.replace(p, aftermath_from_recovery=False), lab)) == 2


def _unmatched(tmp_path, seed: int, params: DetectParams) -> list[str]:
    """Labels of the events of drawn seed ``seed`` that match no incident."""
    from forensics.evaluate import run_eval
    _, runs = run_eval(1, seed, drawn=True, seeds=[seed], workdir=str(tmp_path), keep=True, params=params)
    return [m["event"]["label"] for m in runs[0].matches if m["incident"] is None and m["event"] is not None]


def test_a_pull_of_the_consumed_side_during_a_program_is_part_of_it(tmp_path):
    """Dev seed 184 (eth/volatile): 10 s into a 68 s sell program the bid makers cancel 63% of
    the touch band at once and the ask 23% 3.1 s later; the two-sided cliff read one_sided_pull
    and stood alone, matching no incident. With ``flow_absorbs_consumed_pulls`` a one-sided pull
    of the consumed side while the program runs is part of the program."""
    got = {on: _unmatched(tmp_path, 184, dataclasses.replace(DetectParams(), flow_absorbs_consumed_pulls=on))
           for on in (True, False)}
    assert "one_sided_pull" not in got[True] and "one_sided_pull" in got[False]



def test_the_sides_ordinary_churn_is_not_set_by_one_episode():
    """A held partial pull's churn bar, the side's ordinary 500 ms fall (``pull_noise_q``
    quantile), is taken per minute and the median over the minutes (``pull_noise_block_s``): ten minutes of a steady 1,000-lot band
    with one minute of large orders placed and pulled every second (dev seed 217: the run's own
    ask flicker episode set the ask's whole-run 99th percentile at 0.54 vs the bid's 0.18) keep
    the churn at the steady minutes' level; over the whole run at once the episode sets it."""
    from forensics.detect.metrics import _fall_noise
    ts = np.arange(0, 600 * S, 100 * MS)
    q = np.full(ts.size, 1000.0)
    ep = (ts >= 300 * S) & (ts < 360 * S) & ((ts // (500 * MS)) % 2 == 0)
    q[ep] = 3000.0                      # a 2,000-lot order every other 500 ms for a minute
    depth = pl.concat([pl.DataFrame({"ts": ts, "side": side, "band_pct": 0.1, "qty": q}) for side in ("bid", "ask")])
    top = pl.DataFrame({"ts": ts, "mid": np.full(ts.size, 20_000), "spread": np.full(ts.size, 10),
                        "best_bid": np.full(ts.size, BID), "best_ask": np.full(ts.size, ASK)})
    trades = pl.DataFrame(schema={"ts": pl.Int64, "price": pl.Int64, "size": pl.Int64, "aggressor": pl.Utf8})

    def ctx():
        return Context("x", "X", "book", 100 * MS, depth, top, trades, None, 0, 0, [0.1])

    assert _fall_noise(ctx(), "ask", 0.1, DetectParams(), per_minute=True) < 0.01
    assert _fall_noise(ctx(), "ask", 0.1, DetectParams(pull_noise_block_s=0.0), per_minute=True) > 0.5
    assert _fall_noise(ctx(), "ask", 0.1, DetectParams()) > 0.5   # the classifier's whole-series figure


def _churn_then_pull(ask_readd: int) -> Context:
    """60 s of a 1,000-lot bid and ask level (0.1% band). At 27.5 s the bid makers cancel 800 lots
    (a volatile book's churn), re-added 1.5 s later; at 30.0 s the bid makers pull 400 lots and keep
    them away and at 30.1 s the ask makers pull 500, re-adding ``ask_readd`` of them 600 ms later."""
    ts = np.arange(0, 60 * S, 100 * MS)
    bid = np.where((ts >= 27_500 * MS) & (ts < 29 * S), 200.0, 1000.0)
    bid = np.where(ts >= 30 * S, 600.0, bid)
    ask = np.where(ts >= 30_100 * MS, 500.0, 1000.0)
    ask = np.where(ts >= 30_700 * MS, 500.0 + ask_readd, ask)
    depth = pl.concat([pl.DataFrame({"ts": ts, "side": side, "band_pct": 0.1, "qty": q})
                       for side, q in (("bid", bid), ("ask", ask))])
    top = pl.DataFrame({"ts": ts, "mid": np.full(ts.size, 20_000), "spread": np.full(ts.size, 10),
                        "best_bid": np.full(ts.size, BID), "best_ask": np.full(ts.size, ASK)})
    rows = [(27_500 * MS, "bid", BID, "cancel", -800, 800, 0), (29 * S, "bid", BID, "add", 800, 0, 800),
            (30 * S, "bid", BID, "cancel", -400, 400, 0), (30_100 * MS, "ask", ASK, "cancel", -500, 500, 0),
            (30_700 * MS, "ask", ASK, "add", ask_readd, 0, ask_readd)]
    lc = pl.DataFrame(rows, schema={"ts": pl.Int64, "side": pl.Utf8, "price": pl.Int64, "cause": pl.Utf8,
                                    "delta": pl.Int64, "cancelled": pl.Int64, "added": pl.Int64}, orient="row")
    trades = pl.DataFrame(schema={"ts": pl.Int64, "price": pl.Int64, "size": pl.Int64, "aggressor": pl.Utf8})
    return Context("x", "X", "book", 100 * MS, depth, top, trades, lc, 0, 0, [0.1])


def test_a_two_sided_pull_behind_one_sides_churn_burst_is_a_withdrawal():
    """The bid's largest burst in the window is its own churn 2.6 s before the two-sided pull, so
    the two largest bursts are > pull_apart_ms apart and the later (ask, partly re-added) read as
    a re-quote: one_sided_pull (dev4 seeds 497, 555: withdrawals in volatile btc books whose 99th-
    percentile 500 ms fall is 0.4-0.6). At the ask's burst the bid was pulled too and both left
    >= pull_both_min of the depth away: a withdrawal. Not when the ask's burst was put back (a
    re-quote leaves 5% away), nor with the pairing off (``pull_pair_ms`` 0)."""
    def event(readd, p=DetectParams()):
        e = {"data_kind": "book", "trigger": "cliff", "band_pct": 0.1, "sides": "both", "removed_frac": 0.5,
             "traded_share": 0.0, "traded_share_net": 0.1, "sync_share_500ms": 0.35, "speed_ms": 4000.0,
             "_burst_pull_frac": 0.45, "start_ts": 29 * S}
        _pull_metrics(_churn_then_pull(readd), e, 27 * S, 31 * S, p)
        return e
    e = event(300)
    assert e["_pull_lag_ms"] == 2600.0 and e["_pull_later"] == "ask"
    assert e["_pair_bid"] == 0.4 and e["_pair_kept_bid"] == 1.0
    label, conf, ev = classify(e)
    assert label == "synchronized_withdrawal" and conf > 0.5 and any("pulled too" in x for x in ev)
    assert classify(event(450))[0] == "one_sided_pull"
    assert classify(event(300, DetectParams(pull_pair_ms=0)))[0] == "one_sided_pull"


def test_a_pull_after_the_other_sides_churn_stays_one_sided():
    """Paired only at the later burst (dev4 seed 671: an ask pull, 95% kept away, 1 s after a bid
    churn burst 40% half re-added; at the bid's burst the ask had lost 20%): the later side pulled
    alone. The same figures with the bid's burst the later one read a withdrawal."""
    e = {"data_kind": "book", "trigger": "cliff", "band_pct": 0.1, "sides": "both", "removed_frac": 0.75,
         "traded_share": 0.014, "traded_share_net": 0.026, "sync_share_500ms": 0.66, "speed_ms": 2000.0,
         "_burst_pull_frac": 0.57, "_pull_bid": 0.4, "_pull_ask": 0.952, "_pull_kept_bid": 0.479,
         "_pull_kept_ask": 0.997, "_pull_lag_ms": 1016.0, "_pull_at_ms": 0.0, "_pull_later": "ask",
         "_pair_bid": 0.241, "_pair_kept_bid": 0.549, "_pair_ask": 0.201, "_pair_kept_ask": 4.649}
    assert classify(e)[0] == "one_sided_pull"
    assert classify({**e, "_pull_later": "bid"})[0] == "synchronized_withdrawal"


def test_a_side_back_within_seconds_is_a_re_quote_not_a_pull(tmp_path):
    """Dev seed 551 (btc/calm): 116 s in, the run's largest maker cancels its whole ask ladder
    in one message (touch band -96% in one step) and is back within 10 s; it read as a
    one_sided_pull, and the makers' true 30% ask pull 31 s later was folded into it as its
    re-fall (missed). With ``requote_back_s`` a one-sided fall back to 90% of its depth within
    10 s is a re-quote: no event, and the true pull is found on its own."""
    from forensics.evaluate import run_eval
    got = {}
    for on in (10.0, 0.0):
        _, runs = run_eval(1, 551, drawn=True, seeds=[551], workdir=str(tmp_path), keep=True,
                           params=dataclasses.replace(DetectParams(), requote_back_s=on))
        pull = [m for m in runs[0].matches if m["incident"] and m["incident"]["type"] == "one_sided_pull"]
        extra = [m for m in runs[0].matches if not m["incident"] and m["event"]["label"] == "one_sided_pull"]
        got[on] = (pull[0]["event"]["label"] if pull[0]["event"] else None, len(extra))
    assert got == {10.0: ("one_sided_pull", 0), 0.0: (None, 1)}


def test_a_withdrawal_behind_one_sides_leading_dip_is_found_at_the_later_sides_fall(tmp_path):
    """Dev seed 988 (alt/normal): a 43% withdrawal whose ask side dipped ~2 s before the makers
    pulled both sides; the cliff's start is that dip, and the largest bursts looked for up to
    ``pull_after_s`` after it caught the bid's pull only at its first milliseconds (bid 6%,
    ask 20%, 2305 ms apart: read one_sided_pull). With ``pull_fall_pair`` both sides' bursts
    within ``pull_pair_ms`` of the later side's own fall start are measured: both pulled there,
    at once, a synchronized_withdrawal; with it off the old reading."""
    found = {on: incident_labels(tmp_path, 988, dataclasses.replace(DetectParams(), pull_fall_pair=on),
                                 kinds=("withdrawal",))["withdrawal"][0]
             for on in (True, False)}
    assert found == {True: "synchronized_withdrawal", False: "one_sided_pull"}


def test_a_pair_of_bursts_at_the_later_sides_fall_start_reads_a_withdrawal():
    """The classifier's side of it: bursts far apart, the weaker re-added (one-sided by rule 3),
    but both sides left >= pull_both_min away at the later side's fall start: a withdrawal,
    whatever traded after it; one side's pair burst re-added there: still one-sided."""
    base = {"data_kind": "book", "trigger": "cliff", "band_pct": 0.5, "removed_frac": 0.96, "sides": "both",
            "traded_share_net": 0.27, "traded_share": 0.22, "sync_share_500ms": 0.75, "speed_ms": 4300.0,
            "_burst_pull_frac": 0.73, "_pull_bid": 0.06, "_pull_ask": 0.20, "_pull_lag_ms": 2305.0,
            "_pull_at_ms": 1965.0, "_pull_later": "bid", "_pull_kept_bid": 1.0, "_pull_kept_ask": 1.0,
            "_fall_pair_bid": 0.80, "_fall_pair_ask": 0.61, "_fall_pair_kept_bid": 0.99}
    assert classify(base)[0] == "one_sided_pull"   # no kept share for the ask's pair burst: not measured
    lab, _, ev = classify({**base, "_fall_pair_kept_ask": 0.95})
    assert lab == "synchronized_withdrawal" and any("started falling" in x for x in ev)
    assert classify({**base, "_fall_pair_kept_ask": 0.95, "traded_share_net": 0.61})[0] == "synchronized_withdrawal"
    assert classify({**base, "_fall_pair_kept_ask": 0.1})[0] == "one_sided_pull"   # re-added: 6% away


def test_a_re_quote_from_a_stacked_band_is_back_at_its_usual_depth(tmp_path):
    """Dev seed 806 (btc/volatile), 323 s in, calm background: the ask touch band, stacked at
    1.19x its baseline, loses 92% in 893 ms by cancels and is back to 1.07x its baseline (0.90x
    the depth just before) within 10 s; measured against the stacked depth it was not "back" and
    read one_sided_pull, matching no incident. With ``requote_back_usual`` a band fuller than
    usual is back at 90% of its baseline: a re-quote, no event."""
    got = {on: _unmatched(tmp_path, 806, dataclasses.replace(DetectParams(), requote_back_usual=on))
           for on in (True, False)}
    assert got == {True: [], False: ["one_sided_pull"]}


def test_a_withdrawal_after_a_short_program_is_found(tmp_path):
    """Dev5 seed 878 (alt/normal): a 4.4 s buy stretch (42 prints at 2.8x) ends 2.4 s before a
    synchronized withdrawal; the program absorbed the withdrawal's cliff (within
    ``flow_merge_s``, all of its volume before it) and the withdrawal was missed. With
    ``flow_keeps_withdrawals`` the withdrawal is an incident of its own and is found."""
    on = incident_labels(tmp_path, 878, DetectParams(), kinds=("withdrawal",))
    off = incident_labels(tmp_path, 878, dataclasses.replace(DetectParams(), flow_keeps_withdrawals=False),
                          kinds=("withdrawal",))
    assert on["withdrawal"][0] == "synchronized_withdrawal" and off["withdrawal"][0] != "synchronized_withdrawal"


def test_a_program_running_into_a_withdrawal_is_its_flow(tmp_path):
    """Dev5 seed 920 (eth/volatile): a buy stretch from 14 s before a withdrawal runs on into its
    cascade (a 48.9 s program of its own before the cliff); it stood alone, reading
    one_sided_pull on the withdrawal's own pull (17% traded net), and matched no incident. With
    ``flow_defers_to_withdrawal`` it is the withdrawal's accompanying flow: no unmatched event."""
    got = {on: _unmatched(tmp_path, 920, dataclasses.replace(DetectParams(), flow_defers_to_withdrawal=on))
           for on in (True, False)}
    assert got[True] == [] and "one_sided_pull" in got[False]


def test_a_partial_pull_whose_touch_band_dips_and_is_back_is_found_in_the_band_that_held(tmp_path):
    """Dev6 seed 1076 (alt/normal): makers pull 36% of their ask quotes. The 0.5% band falls
    17.3k -> 8.9k, dips to 6.6k for 0.5 s and is above half its depth again 0.5 s after that
    trough, so the fall read as a re-quote blip and was dropped, while the 1% band fell
    44.6k -> 24.1k and stayed down for 15 s. With ``held_band_drop`` the blip's held fall in the
    wider band is judged on its own: a one_sided_pull; with it off the pull is missed."""
    assert _partial_pull_on_off(tmp_path, 1076, "held_band_drop", 0.4) == {True: "one_sided_pull", False: None}


def test_a_pull_cancelling_half_its_side_after_a_program_is_not_its_aftermath(tmp_path):
    """Dev6 seed 1057 (alt/calm): 28.7 s after a 56 s buy program ends the ask makers cancel
    half the side's depth within 500 ms (a 36% pull). It started within ``aftermath_fold_s`` of
    the program and was folded into it as its aftermath: missed. With ``own_pull_burst`` a
    cliff reading one_sided_pull whose burst is >= 45% of its depth is a pull of its own."""
    found = {}
    for bar in (DetectParams().own_pull_burst, 0.0):
        found[bar] = incident_labels(tmp_path, 1057, dataclasses.replace(DetectParams(), own_pull_burst=bar))["one_sided_pull"][0]
    assert found == {0.45: "one_sided_pull", 0.0: None}
