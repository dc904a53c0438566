"""Cliff detection, classifier and evaluation on simulated markets (short scenarios)."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from forensics.cli import cli
from forensics.detect import DetectParams, detect, find_cliffs, find_flow, flow_scores
from forensics.evaluate import run_one, summarise
from forensics.ingest import ingest
from forensics.store import Store
from tests.detect_util import classify
from tests.taker_flow import S, sell_program, taker_noise

MS = 1_000_000


# ---- units -------------------------------------------------------------------------------------

def _series(values_by_second):
    t = np.arange(len(values_by_second), dtype=np.int64) * 100 * MS
    return t, np.asarray(values_by_second, dtype=np.float64)


def test_find_cliffs_thresholds():
    p = DetectParams()
    base = [1000.0 + 10 * np.sin(i) for i in range(900)]
    deep = base[:700] + [1000, 800, 300, 100] + [100] * 196            # -90% in 300 ms
    t, q = _series(deep)
    cl = find_cliffs(t, q, "bid", 0.1, 5 * S, 60 * S, p)
    assert len(cl) == 1
    c = cl[0]
    assert c.t_trough == t[703] and c.q_trough == 100 and abs(c.baseline - 1000) < 20
    shallow = base[:700] + [780] * 200                                   # -22%: not a cliff
    assert find_cliffs(*_series(shallow), "bid", 0.1, 5 * S, 60 * S, p) == []
    # -35% is a cliff in a band that is normally steady (>= 10x its typical 5 s change) ...
    steady = base[:700] + [650] * 200
    assert len(find_cliffs(*_series(steady), "bid", 0.1, 5 * S, 60 * S, p)) == 1
    # ... not in one that swings by ~20% every few seconds
    rng = np.random.default_rng(1)
    noisy = list(1000 * np.exp(0.2 * rng.standard_normal(900)))
    noisy = noisy[:700] + list(650 * np.exp(0.2 * rng.standard_normal(200)))
    assert all(c.frac >= p.drop_frac for c in find_cliffs(*_series(noisy), "bid", 0.1, 5 * S, 60 * S, p))
    slow = base[:300] + list(np.linspace(1000, 100, 600)) + [100] * 0   # -90% over 60 s: too slow
    assert find_cliffs(*_series(slow), "bid", 0.1, 5 * S, 60 * S, p) == []
    # band data: a fall between two samples
    t = np.arange(30, dtype=np.int64) * 30 * S
    q = np.array([500.0] * 20 + [90.0] * 10)
    cl = find_cliffs(t, q, "ask", 1.0, 30 * S, 300 * S, p, between_samples=True)
    assert len(cl) == 1 and cl[0].t_peak == t[19] and cl[0].t_trough == t[20]


def test_flow_noise_alone_is_not_a_program():
    for seed in range(4):
        assert find_flow(taker_noise(np.random.default_rng(seed), 900).sort("ts"), DetectParams()) == []


@pytest.mark.parametrize("slices", [10, 100, 1000])
@pytest.mark.parametrize("dur_s,x", [(10, 10), (20, 5), (60, 3), (120, 2)])
def test_flow_finds_the_program_however_it_is_sliced(slices, dur_s, x):
    """By volume against the side's own trailing rate: 10 large or 1,000 small prints alike."""
    rng = np.random.default_rng(1000 * slices + dur_s)
    prog, ts = sell_program(rng, 400, dur_s, x, slices, anchor=True)
    eps = find_flow(pl.concat([taker_noise(rng, 900), prog]).sort("ts"), DetectParams())
    hit = [e for e in eps if e["start"] <= ts[-1] and e["end"] >= ts[0]]
    assert len(hit) == 1, eps
    e = hit[0]
    assert e["side"] == "bid" and e["aggressor"] == "sell" and e["ratio"] >= 2 and e["z"] >= 6
    assert e["start"] <= ts[0] + 0.5 * dur_s * S and e["end"] >= ts[-1] - 0.5 * dur_s * S
    assert all(not (e["start"] <= ts[-1] and e["end"] >= ts[0]) or e in hit for e in eps)
    others = [e for e in eps if e not in hit]
    assert len(others) <= 1, others


def test_flow_same_volume_same_score_whatever_the_slicing():
    """The score is volume-based: the same program cut into 10 or 1,000 prints scores alike."""
    from forensics.detect import flow_scores
    zs = []
    for slices in (10, 1000):
        rng = np.random.default_rng(5)
        noise = taker_noise(rng, 900)
        prog, ts = sell_program(np.random.default_rng(6), 400, 30, 4, slices, anchor=True)
        sc = flow_scores(pl.concat([noise, prog]).sort("ts"), "sell", DetectParams())
        s0 = sc["s0"]
        zs.append(float(np.nanmax(sc["windows"][40]["z"][400 - s0:440 - s0])))
    assert zs[0] > 6 and zs[1] > 6 and abs(zs[0] - zs[1]) / max(zs) < 0.35, zs


def test_classifier_rules():
    base = {"data_kind": "book", "trigger": "cliff", "band_pct": 0.1, "removed_frac": 0.95}
    lab, conf, ev = classify({**base, "sides": "both", "traded_share_net": 0.03, "traded_share": 0.02,
                              "sync_share_500ms": 0.95, "speed_ms": 200})
    assert lab == "synchronized_withdrawal" and conf > 0.8 and any("synchronized" in e for e in ev)
    lab, conf, _ = classify({**base, "sides": "bid", "traded_share_net": 0.05, "sync_share_500ms": 0.9})
    assert lab == "one_sided_pull" and conf > 0.7
    lab, conf, ev = classify({**base, "sides": "bid", "traded_share_net": 0.9, "erosion_corr": 0.8})
    assert lab == "consumption" and conf > 0.7 and any("sequential" in e for e in ev)
    lab, _, _ = classify({**base, "sides": "both", "traded_share_net": 0.45})
    assert lab == "mixed"
    lab, conf, _ = classify({**base, "trigger": "flicker", "sides": "ask", "flicker_pairs": 12,
                             "flicker_traded_share": 0.0})
    assert lab == "flicker" and conf > 0.8
    lab_b, conf_b, ev_b = classify({**base, "data_kind": "bands", "sides": "both", "traded_share_net": 0.02,
                                    "speed_ms": 30000})
    assert lab_b == "synchronized_withdrawal" and conf_b < 0.6 and "band data only" in ev_b[0]


# ---- simulated incidents -----------------------------------------------------------------------

SEEDS = (7, 23, 42)


@pytest.fixture(scope="module")
def sim_runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("eval")
    return [run_one(seed, work) for seed in SEEDS]


def test_classifier_on_simulated_incidents(sim_runs):
    s = summarise(sim_runs)
    n = 5 * len(SEEDS)
    correct = sum(v for k, v in s["confusion"].items()
                  if k.split(" -> ")[0] == k.split(" -> ")[1] or k == "none -> no event")
    assert correct >= n - 1, s["confusion"]
    assert len(s["false_positives"]) <= 1, s["false_positives"]
    for label in ("synchronized_withdrawal", "consumption"):
        assert s["per_label"][label]["recall"] == 1.0 and s["per_label"][label]["precision"] == 1.0, s["per_label"]
    assert s["time_error_s"]["median"] < 0.5 and s["time_error_s"]["within_1s"] >= 0.9
    assert s["traded_share_error"]["max"] < 0.05
    assert s["attribution"]["row_exact"] > 0.99


def test_withdrawal_metrics_tell_the_story(sim_runs):
    for r in sim_runs:
        m = next(m for m in r.matches if m["incident"] and m["incident"]["type"] == "withdrawal")
        e = m["event"]
        assert e["sides"] == "both" and e["other_side_fell"]
        assert e["removed_frac"] > 0.8 and e["traded_share"] < 0.15
        assert e["sync_share_500ms"] > 0.6 and e["levels_emptied_500ms"] >= 10
        assert abs(e["side_lag_ms"]) < 500 and e["speed_ms"] < 1000
        assert e["spread_after"] > 5 * e["spread_before"]
        assert e["vacuum_ratio"] > 1.5 and e["recovery_ms"] > 10_000
        c = next(m for m in r.matches if m["incident"] and m["incident"]["type"] == "consumption")["event"]
        assert c["traded_share_net"] > 0.9 and c["erosion_corr"] > 0


# ---- store, CLI, band data ---------------------------------------------------------------------

def test_cli_detect_writes_events_and_sql_view(sim_withdrawal, sim_store_copy):
    res, store = sim_withdrawal, sim_store_copy  # seed 5, 3.5 min, withdrawal@90s:sell (conftest)
    out = CliRunner().invoke(cli, ["detect", "--store", str(store), "--format", "csv"])
    assert out.exit_code == 0, out.output
    df = pl.read_csv(out.output.encode())
    assert df["label"].to_list() == ["synchronized_withdrawal"]
    start = res.labels["incidents"][0]["start_ts_ns"]
    assert abs(df["start_ts"][0] - start) < S
    con = Store(store).connect()
    row = con.execute("select exchange, symbol, sides, label, confidence, depth_before_bid::double, "
                      "traded_share, evidence from events").fetchall()
    assert len(row) == 1 and row[0][:4] == ("binance-futures", "BTCUSDT", "both", "synchronized_withdrawal")
    assert 0 < row[0][4] <= 1 and row[0][5] > 1 and json.loads(row[0][7])
    assert con.execute("select count(*) from level_changes").fetchone()[0] > 1000
    # re-running over a window replaces that window's events, keeps the rest
    t0 = dt.datetime.fromtimestamp(start // S, tz=dt.timezone.utc)
    out = CliRunner().invoke(cli, ["detect", "--store", str(store), "--from", (t0 - dt.timedelta(seconds=30)).isoformat(),
                                   "--to", (t0 + dt.timedelta(seconds=60)).isoformat(), "--no-evidence"])
    assert out.exit_code == 0, out.output
    assert "1 event(s)" in out.output
    assert Store(store).connect().execute("select count(*) from events").fetchone()[0] == 1
    bad = CliRunner().invoke(cli, ["detect", "--store", str(store), "--symbol", "ETHUSDT"])
    assert bad.exit_code == 1 and "no level or band data" in bad.output


def test_band_data_only(tmp_path):
    rng = np.random.default_rng(0)
    t0 = dt.datetime(2025, 10, 10, 20, 50, tzinfo=dt.timezone.utc)
    rows = ["timestamp,percentage,depth,notional"]
    for k in range(60):  # 30 min of 30 s samples; both sides pulled between samples 40 and 41
        t = t0 + dt.timedelta(seconds=30 * k)
        f = 0.1 if k >= 41 else 1.0
        for pct in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5):
            depth = abs(pct) * 400 * f * (1 + 0.05 * rng.standard_normal())
            rows.append(f"{t:%Y-%m-%d %H:%M:%S},{pct},{depth:.3f},{depth * 120000:.2f}")
    bd = tmp_path / "BTCUSDT-bookDepth-2025-10-10.csv"
    bd.write_text("\n".join(rows) + "\n")
    tr = ["agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"]
    ms0 = int(t0.timestamp() * 1000)
    for i in range(3000):
        tr.append(f"{i},{120000 + rng.integers(-20, 20) / 10:.1f},{rng.integers(1, 50) / 1000:.3f},{i},{i},"
                  f"{ms0 + i * 600},{'true' if rng.random() < 0.5 else 'false'}")
    at = tmp_path / "BTCUSDT-aggTrades-2025-10-10.csv"
    at.write_text("\n".join(tr) + "\n")
    ingest([bd, at], store=tmp_path / "store")
    ev = detect(tmp_path / "store")
    assert ev.height == 1
    e = ev.row(0, named=True)
    assert e["data_kind"] == "bands" and e["sides"] == "both" and e["label"] == "synchronized_withdrawal"
    assert e["start_ts"] == int((t0 + dt.timedelta(seconds=1200)).timestamp()) * S
    assert e["end_ts"] - e["start_ts"] == 30 * S
    assert e["confidence"] < 0.6 and "band data only" in e["evidence"]
    assert e["traded_share"] < 0.05


def test_band_traded_share_per_side_between_the_two_samples(tmp_path):
    """Band data: traded share = per falling side, the aggressive volume that hit it between the
    two samples (capped at its depth removed), over the total removed; prints before the last
    sample preceding the fall do not count."""
    t0 = dt.datetime(2025, 10, 10, 20, 50, tzinfo=dt.timezone.utc)
    rows = ["timestamp,percentage,depth,notional"]
    for k in range(40):  # both sides 1.000 -> 0.100 BTC between samples 30 and 31
        t = t0 + dt.timedelta(seconds=30 * k)
        depth = 0.1 if k >= 31 else 1.0
        for pct in (-2, -1, 1, 2):
            rows.append(f"{t:%Y-%m-%d %H:%M:%S},{pct},{depth:.3f},{depth * 120000:.2f}")
    bd = tmp_path / "BTCUSDT-bookDepth-2025-10-10.csv"
    bd.write_text("\n".join(rows) + "\n")
    ms = lambda k, off: int((t0 + dt.timedelta(seconds=30 * k)).timestamp() * 1000) + off
    tr = ["agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"]
    trades = [(ms(k, 15_000), "0.001", k % 2 == 0) for k in range(40) if k != 30]  # background
    trades += [(ms(29, 20_000), "10.000", True)]                                  # before the fall: not counted
    trades += [(ms(30, 5_000), "0.100", True), (ms(30, 6_000), "5.000", False)]  # sells 0.1, buys 5 (> 0.9 removed)
    for i, (t, q, m) in enumerate(sorted(trades)):
        tr.append(f"{i},120000.0,{q},{i},{i},{t},{'true' if m else 'false'}")
    at = tmp_path / "BTCUSDT-aggTrades-2025-10-10.csv"
    at.write_text("\n".join(tr) + "\n")
    ingest([bd, at], store=tmp_path / "store")
    ev = detect(tmp_path / "store")
    assert ev.height == 1
    e = ev.row(0, named=True)
    assert e["data_kind"] == "bands" and e["sides"] == "both" and e["side_lag_ms"] is None
    assert e["window_from"] == e["start_ts"] == ms(30, 0) * MS and e["window_to"] == e["end_ts"] == ms(31, 0) * MS
    # bid: min(0.1, 0.9) + ask: min(5, 0.9) over 1.8 removed (lots of 0.001); all volume / removed would be 1
    assert e["traded_qty"] == 1000 and e["cancelled_qty"] == 800
    assert e["traded_share"] == pytest.approx(1000 / 1800)
    assert e["label"] == "mixed"


def test_capped_z_finds_a_short_program_the_size_tail_hides():
    """Heavy-tailed background sizes: one ordinary big order matches a short program's volume, so
    the plain z stays low; capped at the trailing 95% size quantile the background is light
    tailed and the program of many ordinary orders stands out (dev seeds: 5-10 s programs)."""
    found = plain_found = 0
    for seed in range(3):
        rng = np.random.default_rng(77 + seed)
        noise = taker_noise(rng, 900, sig=1.5)
        prog, ts = sell_program(rng, 500, 8, 4, 150, sig=1.5, spread=0.2)
        trades = pl.concat([noise, prog]).sort("ts")
        sc = flow_scores(trades, "sell", DetectParams())
        s0 = sc["s0"]
        w = sc["windows"][5]
        seg = slice(500 - s0, 512 - s0)
        assert np.nanmax(w["zc"][seg]) > np.nanmax(w["z"][seg]) + 2
        eps = find_flow(trades, DetectParams())
        found += any(e["start"] <= ts[-1] and e["end"] >= ts[0] for e in eps)
        plain = find_flow(trades, DetectParams(flow_min_zc=float("inf"), flow_count_z=float("inf"),
                                               flow_mid_zc=float("inf"), flow_fast_zc=float("inf")))
        plain_found += any(e["start"] <= ts[-1] and e["end"] >= ts[0] for e in plain)
    assert found == 3 and plain_found < 3, (found, plain_found)   # the plain volume test alone misses some


def test_capped_volume_matches_a_reference_loop():
    """Per-second capped volume: every taker order (prints at one ts) capped at exp(m + k s) of
    the lognormal fit on the orders of the previous ``flow_baseline_s`` seconds."""
    import math
    rng = np.random.default_rng(3)
    tr = taker_noise(rng, secs=400, rate=3.0, sig=1.4).sort("ts")
    p = DetectParams(flow_baseline_s=120)
    sc = flow_scores(tr, "buy", p)
    s0 = sc["s0"]
    t = tr.filter(pl.col("aggressor") == "buy")
    orders = {}
    for ts, size in zip(t["ts"].to_list(), t["size"].to_list()):
        orders[ts] = orders.get(ts, 0) + size
    by_sec: dict[int, list[float]] = {}
    for ts, size in orders.items():
        by_sec.setdefault(ts // S - s0, []).append(float(size))
    n = sc["v"].size
    ref = np.zeros(n)
    for j in range(n):
        logs = [math.log(x) for i in range(max(0, j - 120), j) for x in by_sec.get(i, [])]
        if logs:
            m = sum(logs) / len(logs)
            sd = math.sqrt(max(sum(l * l for l in logs) / len(logs) - m * m, 0.0))
            cap = math.exp(m + p.flow_cap_z * sd)
        else:
            cap = math.inf
        ref[j] = sum(min(x, cap) for x in by_sec.get(j, []))
    assert np.allclose(sc["vc"], ref, rtol=1e-9, atol=1e-9)


def test_classifier_bursts_far_apart_are_one_sided():
    """Both sides fell, both had a pull burst, but more than pull_apart_ms apart: the later side
    re-quoted after the mid moved (dev: one-sided pulls read as withdrawals); within
    pull_max_lag_ms it stays a withdrawal."""
    base = {"data_kind": "book", "trigger": "cliff", "band_pct": 0.1, "removed_frac": 0.8, "sides": "both",
            "traded_share_net": 0.1, "traded_share": 0.02, "sync_share_500ms": 0.3, "speed_ms": 5000,
            "_burst_pull_frac": 0.5, "_pull_bid": 0.9, "_pull_ask": 0.4, "_pull_at_ms": 1500.0}
    lab, conf, ev = classify({**base, "_pull_lag_ms": 1500.0})
    assert lab == "one_sided_pull" and 0 < conf <= 1 and any("1500 ms apart" in e for e in ev)
    assert classify({**base, "_pull_lag_ms": 200.0})[0] == "synchronized_withdrawal"
    # without per-side bursts (band data) nothing changes
    nob = {k: v for k, v in base.items() if not k.startswith("_pull")}
    assert classify(nob)[0] == "synchronized_withdrawal"
