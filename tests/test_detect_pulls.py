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
    churn: found as a one_sided_pull; at 1.5 it is missed."""
    found = {}
    for k in (DetectParams().partial_noise_k, 1.5):
        label, shape = incident_labels(tmp_path, 158, dataclasses.replace(DetectParams(), partial_noise_k=k))["one_sided_pull"]
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
    reads one_sided_pull is folded into it; not with the rule off, not on the other side, not in
    a touch band, not later, and not after a trade-driven cliff (dev seed 65: its pull in the 5%
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
    assert len(_fold_refalls([cliff(73, 80, "ask", 1.0), cliff(119, 125, "ask", 0.5)], p, lab)) == 2
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
