"""Band-only detection on real-format Binance bookDepth rows (``timestamp,percentage,depth,notional``,
bands -5..-1 and 1..5 %, ~30 s cadence): every two-sided abnormal drop is found and ranked, a
band under a data-quality flag never produces a pull, and windows without trades read
``depth_collapse`` with a null traded share."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from forensics.band_events import abnormal_drops, band_changes, sample_flags, two_sided
from forensics.detect import detect
from forensics.ingest import ingest

S = 1_000_000_000
T0 = dt.datetime(2025, 10, 10, 19, 0, tzinfo=dt.timezone.utc)
PCTS = (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)
N = 240                                   # 2 h of 30 s samples
# two-sided drops: sample index -> (bid factor, ask factor), held 3 samples
DROPS = {80: (0.45, 0.62), 120: (0.35, 0.50), 150: (0.70, 0.60), 185: (0.10, 0.12)}
IMPLAUSIBLE_FROM = 205                    # bid bands' average price above mid from here on (and bid -60%)
FROZEN = (60, 70)                         # bid 2% band repeats its value on these samples, then jumps down


def _rows(rng) -> list[str]:
    rows = ["timestamp,percentage,depth,notional"]
    mid = 120_000.0
    frozen_val = None
    for k in range(N):
        t = T0 + dt.timedelta(seconds=30 * k + int(rng.integers(0, 2)))
        mid *= 1 + 2e-4 * rng.standard_normal()
        fb, fa = 1.0, 1.0
        for k0, (b, a) in DROPS.items():
            if k0 <= k < k0 + 3:
                fb, fa = b, a
        for side, sgn in (("bid", -1), ("ask", 1)):
            f = fb if side == "bid" else fa
            if side == "bid" and k >= IMPLAUSIBLE_FROM:
                f = 0.4
            cum_q = cum_n = 0.0
            vals = []
            for b in range(1, 6):      # cumulative: each 1% slice adds its own quantity
                q = 300.0 * b ** -0.3 * f * np.exp(0.03 * rng.standard_normal())
                avg = mid * (1 + sgn * (b - 0.5) / 100)
                if side == "bid" and k >= IMPLAUSIBLE_FROM:
                    avg = mid * (1 + (b + 0.5) / 100)       # the file's bids priced above the mid
                cum_q += q
                cum_n += q * avg
                vals.append((b, cum_q, cum_n))
            for b, q, n in vals:
                if side == "bid" and b == 2:
                    if k == FROZEN[0]:
                        frozen_val = (q, n)
                    if FROZEN[0] <= k <= FROZEN[1]:
                        q, n = frozen_val
                    if k == FROZEN[1] + 1:
                        q, n = 0.3 * q, 0.3 * n               # the stale value snaps to a far lower one
                rows.append((t, sgn * b, q, n))
    out = ["timestamp,percentage,depth,notional"]
    for t, pct, q, n in sorted(rows[1:], key=lambda r: (r[0], r[1])):
        out.append(f"{t:%Y-%m-%d %H:%M:%S},{pct},{q:.3f},{n:.2f}")
    return out


def _trades(rng) -> list[str]:
    """Sparse small background prints (a print every ~2 s) over the whole 2 h."""
    tr = ["agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"]
    ms0 = int(T0.timestamp() * 1000)
    for i in range(N * 15):
        tr.append(f"{i},120000.0,{rng.integers(1, 20) / 1000:.3f},{i},{i},{ms0 + i * 2000 + 500},"
                  f"{'true' if rng.random() < 0.5 else 'false'}")
    return tr


def _sample_ts(k: int, rows: list[str]) -> int:
    want = (T0 + dt.timedelta(seconds=30 * k)).strftime("%Y-%m-%d %H:%M")
    for r in rows[1:]:
        ts = r.split(",")[0]
        d = dt.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc)
        if abs((d - (T0 + dt.timedelta(seconds=30 * k))).total_seconds()) <= 1:
            return int(d.timestamp()) * S
    raise AssertionError(want)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bookdepth")
    rng = np.random.default_rng(11)
    rows = _rows(rng)
    bd = d / "BTCUSDT-bookDepth-2025-10-10.csv"
    bd.write_text("\n".join(rows) + "\n")
    at = d / "BTCUSDT-aggTrades-2025-10-10.csv"
    at.write_text("\n".join(_trades(rng)) + "\n")
    return {"dir": d, "rows": rows, "bd": bd, "at": at}


@pytest.fixture(scope="module")
def with_trades(files):
    store = files["dir"] / "store_t"
    ingest([files["bd"], files["at"]], store=store)
    return detect(store).sort("start_ts")


@pytest.fixture(scope="module")
def no_trades(files):
    store = files["dir"] / "store_n"
    ingest([files["bd"]], store=store)
    return detect(store).sort("start_ts")


def test_flags_per_sample(files):
    raw = pl.read_csv(files["bd"]).with_columns(
        pl.col("timestamp").str.strptime(pl.Datetime("ns", "UTC")).dt.epoch("ns").alias("ts"),
        pl.when(pl.col("percentage") < 0).then(pl.lit("bid")).otherwise(pl.lit("ask")).alias("side"),
        pl.col("percentage").abs().cast(pl.Float64).alias("band_pct"),
        pl.col("depth").alias("qty"))
    fl = sample_flags(raw)
    wrong = fl.filter(pl.col("flag") == "avg_price_wrong_side")
    # bids above the mid proxy (which they also drag up, so some asks read below it)
    assert "bid" in set(wrong["side"]) and wrong["ts"].min() == _sample_ts(IMPLAUSIBLE_FROM, files["rows"])
    frozen = fl.filter(pl.col("flag") == "frozen_band")
    assert set(zip(frozen["side"], frozen["band_pct"])) == {("bid", 2.0)}
    assert frozen.height >= FROZEN[1] - FROZEN[0]
    # the cumulative snap after the frozen run makes the 2% band smaller than the 1%: non-monotonic
    ch = band_changes(raw.select("ts", "side", "band_pct", "qty"), fl, 120, 20, 0.02)
    assert ch.filter(pl.col("flag").is_null() & (pl.col("z").abs() > 5)).height >= 2 * len(DROPS)


def test_every_two_sided_abnormal_drop_found_and_ranked(files, with_trades):
    ev = with_trades
    real = ev.filter(pl.col("label") != "data_anomaly")
    for k in DROPS:
        t = _sample_ts(k, files["rows"])
        hit = real.filter(pl.col("end_ts") == t)
        assert hit.height == 1, (k, real.select("start_ts", "end_ts", "sides", "label"))
        e = hit.row(0, named=True)
        assert e["sides"] == "both" and e["label"] == "synchronized_withdrawal", e
        assert e["start_ts"] == _sample_ts(k - 1, files["rows"])
        assert "two-sided abnormal drop, severity rank" in e["evidence"]
    # ranked by severity: the deepest drop (185) first, the shallowest (150) last
    rank = {k: int(json.loads(real.filter(pl.col("end_ts") == _sample_ts(k, files["rows"]))["evidence"][0])
                   [[i for i, x in enumerate(json.loads(real.filter(pl.col("end_ts") == _sample_ts(k, files["rows"]))
                                                         ["evidence"][0])) if "severity rank" in x][0]]
                   .split("severity rank ")[1].split(" ")[0]) for k in DROPS}
    assert rank[185] == 1 and rank[150] == max(rank.values())
    # nothing else in the unflagged bands: no two-sided event outside the injected steps
    others = real.filter(~pl.col("end_ts").is_in([_sample_ts(k, files["rows"]) for k in DROPS]))
    assert others.filter(pl.col("sides") == "both").height == 0, others


def test_flagged_bands_never_a_pull(files, with_trades):
    ev = with_trades
    t_bad = _sample_ts(IMPLAUSIBLE_FROM, files["rows"])
    t_frozen = _sample_ts(FROZEN[1] + 1, files["rows"])
    for t in (t_bad, t_frozen):
        near = ev.filter((pl.col("end_ts") >= t - 31 * S) & (pl.col("start_ts") <= t + 31 * S))
        assert not near.filter(pl.col("label").is_in(["one_sided_pull", "synchronized_withdrawal",
                                                      "consumption", "mixed"])).height, near
        assert set(near["label"]) <= {"data_anomaly"}
    anomaly = ev.filter(pl.col("label") == "data_anomaly")
    assert anomaly.height >= 1
    assert all("data-quality flag" in x for x in anomaly["evidence"])
    # an unflagged event that co-occurs with flagged bands says which it left out
    assert not ev.filter(pl.col("label") == "one_sided_pull").height


def test_no_trades_no_verdict(files, no_trades):
    ev = no_trades.filter(pl.col("label") != "data_anomaly")
    assert ev.height >= len(DROPS)
    assert set(ev["label"]) == {"depth_collapse"}
    for e in ev.iter_rows(named=True):
        assert e["traded_share"] is None and e["traded_share_net"] is None and e["traded_qty"] is None
        assert e["trade_volume"] is None
        assert "aggTrades" in e["evidence"] and "2025-10-10" in e["evidence"] and "cause undetermined" in e["evidence"]


def test_trades_covering_part_of_the_day(files):
    """Trades for the first hour only: the drops after it read depth_collapse, those inside it keep
    their verdict."""
    store = files["dir"] / "store_p"
    lines = _trades(np.random.default_rng(3))
    cut = int((T0 + dt.timedelta(minutes=60)).timestamp() * 1000)
    part = [lines[0]] + [x for x in lines[1:] if int(x.split(",")[5]) < cut]
    at = files["dir"] / "part" / "BTCUSDT-aggTrades-2025-10-10.csv"
    at.parent.mkdir(exist_ok=True)
    at.write_text("\n".join(part) + "\n")
    ingest([files["bd"], at], store=store)
    ev = detect(store).filter(pl.col("label") != "data_anomaly")
    early = ev.filter(pl.col("end_ts") == _sample_ts(80, files["rows"])).row(0, named=True)
    late = ev.filter(pl.col("end_ts") == _sample_ts(185, files["rows"])).row(0, named=True)
    assert early["label"] == "synchronized_withdrawal" and early["traded_share"] is not None
    assert late["label"] == "depth_collapse" and late["traded_share"] is None


def test_two_sided_needs_both_sides():
    base = [{"ts": k * 30 * S, "side": s, "band_pct": 1.0, "qty": 100.0 * (0.3 if (k == 50 and s == "bid") else 1.0)
             * (1 + 0.02 * ((k * 7919) % 11 - 5) / 5)} for k in range(80) for s in ("bid", "ask")]
    ch = band_changes(pl.DataFrame(base), pl.DataFrame(), 120, 20, 0.02)
    drops = abnormal_drops(ch, 5.0, 0.2)
    assert drops.height == 1 and drops["side"][0] == "bid"
    assert two_sided(drops).height == 0
