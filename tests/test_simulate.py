"""Simulator: determinism, exact replay of the published stream, incident signatures, formats."""
from __future__ import annotations

import csv
import gzip
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest

from forensics import simulate as S

TICK, LOT = Decimal("0.1"), Decimal("0.001")


# --------------------------------------------------------------------------- helpers
def ticks(p: str) -> int:
    return int(Decimal(p) / TICK)


def lots(q: str) -> int:
    return int(Decimal(q) / LOT)


def read_capture(path: Path) -> list[tuple[int, dict]]:
    """(local ns, message) per line, in file order."""
    out = []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            local, js = line.split(b" ", 1)
            out.append((int(local), orjson.loads(js)))
    return out


def replay(lines: list[tuple[int, dict]]) -> dict:
    """Binance futures sync rules with a plain dict per side.

    Returns the snapshot, counts of stale events, the book after every applied event (keyed
    by E) and every published level decrease (E, side, price ticks, prev lots, new lots)."""
    snap = None
    stale_before = stale_dropped = 0
    books: dict[int, tuple[dict, dict]] = {}
    decreases = []
    last_u = None
    book = {"b": {}, "a": {}}
    for _, msg in lines:
        if "lastUpdateId" in msg:
            snap = msg
            book = {"b": {ticks(p): lots(q) for p, q in msg["bids"]},
                    "a": {ticks(p): lots(q) for p, q in msg["asks"]}}
            continue
        d = msg["data"]
        if d["e"] != "depthUpdate":
            continue
        if snap is None:
            stale_before += 1
            assert msg["stream"] == "btcusdt@depth@100ms"
            continue
        n = snap["lastUpdateId"]
        if d["u"] < n:
            stale_dropped += 1
            continue
        if last_u is None:
            assert d["U"] <= n <= d["u"], "first event must straddle the snapshot"
            straddle_E = d["E"]
        else:
            assert d["pu"] == last_u, "broken pu chain"
            assert d["U"] == last_u + 1
        last_u = d["u"]
        for side in ("b", "a"):
            lv = book[side]
            for p, q in d[side]:
                pt, qt = ticks(p), lots(q)
                prev = lv.get(pt, 0)
                if qt < prev and last_u is not None and d["E"] != straddle_E:
                    decreases.append((d["E"] * 1_000_000, "bid" if side == "b" else "ask", pt, prev, qt))
                if qt == 0:
                    lv.pop(pt, None)
                else:
                    lv[pt] = qt
        books[d["E"]] = (dict(book["b"]), dict(book["a"]))
    return dict(snap=snap, stale_before=stale_before, stale_dropped=stale_dropped, books=books,
                decreases=decreases)


def depth_near_mid(bids: dict, asks: dict, pct: float = 0.01) -> tuple[int, int]:
    """Resting lots within pct of mid per side."""
    if not bids or not asks:
        return sum(bids.values()), sum(asks.values())
    mid = (max(bids) + min(asks)) / 2
    return (sum(q for p, q in bids.items() if p >= mid * (1 - pct)),
            sum(q for p, q in asks.items() if p <= mid * (1 + pct)))


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One 6-minute run with every incident type, engine books kept."""
    cfg = S.build_config(seed=11, minutes=6, incidents=[
        "consumption@20s:sell", "one_sided_pull@90s:ask", "flicker@170s~50s", "calm@225s~20s", "withdrawal@250s"])
    out = tmp_path_factory.mktemp("mixed")
    res = S.simulate(cfg, out, keep_engine=True, record_books=True)
    return res


@pytest.fixture(scope="module")
def books(mixed):
    return S.engine_books(mixed.engine)


def incident(res, kind):
    return next(i for i in res.labels["incidents"] if i["type"] == kind)


def batch_of(res, ts_ns: int) -> int:
    """Batch whose end is the last at or before ts."""
    return (ts_ns // 1_000_000 - res.engine.start_ms) // S.BATCH_MS - 1


def trades_df(res) -> pl.DataFrame:
    return pl.read_csv(res.files["agg_trades_csv"], schema_overrides={"price": pl.Utf8, "quantity": pl.Utf8})


# --------------------------------------------------------------------------- parsing
def test_parse_incident_forms():
    start = S.parse_time_ns("2025-10-10T20:50:00Z")
    assert S.parse_incident("withdrawal@600s") == S.Incident("withdrawal", 600.0, "sell", None, "withdrawal@600s")
    assert S.parse_incident("consumption@20m:sell").at_s == 1200.0
    assert S.parse_incident("consumption@20m:ask").side == "buy"
    assert S.parse_incident("one_sided_pull@15m:bid").side == "bid"
    assert S.parse_incident("flicker@5m").side == "both"
    assert S.parse_incident("flicker@250ms~30s").duration == 30.0
    assert S.parse_incident("withdrawal@21:13:00", start).at_s == 23 * 60
    assert S.parse_incident("calm@1h").duration == S.DEFAULT_DURATION_S["calm"]
    for bad in ("withdrawal", "melt@5m", "withdrawal@5x", "one_sided_pull@5m:sell", "calm@5m:bid"):
        with pytest.raises(ValueError):
            S.parse_incident(bad)
    with pytest.raises(ValueError):
        S.parse_incident("withdrawal@21:13")  # clock time needs the start
    with pytest.raises(ValueError):
        S.build_config(minutes=2, incidents=["withdrawal@5m"])  # after the end


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    def run(seed, name):
        cfg = S.build_config(seed=seed, minutes=1.5, incidents=["withdrawal@40s"])
        return S.simulate(cfg, tmp_path / name)

    a, b, c = run(5, "a"), run(5, "b"), run(6, "c")
    for role in ("capture", "agg_trades_csv", "truth", "labels", "readme"):
        assert a.files[role].read_bytes() == b.files[role].read_bytes(), role
    assert a.files["capture"].read_bytes() != c.files["capture"].read_bytes()
    assert a.files["truth"].read_bytes() != c.files["truth"].read_bytes()


#: sha256 (first 16 hex) of each output of two short scenarios, recorded with the simulator before
#: its move to ``forensics.sim`` and the typed engine state: the same seed must keep giving the same
#: market (the detector's evaluation depends on it). Content hashes (the capture decompressed, the
#: truth as CSV), so a new gzip/Parquet writer does not count as a change; floating point is
#: IEEE-754 with numpy's and LLVM's libm, so another CPU family might need these re-recorded.
FINGERPRINTS = {
    "withdrawal_flicker_bookdepth": {
        "ops": "2d91b8e18492c264", "fills": "107d8949d1c53e8e", "capture": "bbd0d56c77cc8170",
        "agg_trades_csv": "9d0091055def92e8", "truth": "ad8e224fd626525b", "labels": "fc810777e68828e1",
        "book_depth_csv": "4d3db6f7bf79863e"},
    "drawn_range_consumption": {
        "ops": "7c16bd0470de4fd6", "fills": "201f7a6e92b1a76c", "capture": "8419954631f034a2",
        "agg_trades_csv": "6ee6de3ac85d6481", "truth": "7db75247049a74b4", "labels": "3d427ab3cbd4fd10"},
}


def _fingerprint_config(name: str) -> S.SimConfig:
    if name == "withdrawal_flicker_bookdepth":
        return S.build_config(seed=5, minutes=1.5, incidents=["flicker@12s~20s", "withdrawal@40s"],
                              book_depth_every_s=10)
    return S.build_config(seed=7, minutes=1.5, incidents=["consumption@30s:buy", "one_sided_pull@60s:ask"],
                          regime="range", **S.draw_background(7)[1])


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_fixed_seed_fixed_fingerprint(tmp_path, name):
    import hashlib

    sha = lambda b: hashlib.sha256(b).hexdigest()[:16]
    res = S.simulate(_fingerprint_config(name), tmp_path, keep_engine=True)
    got = {"ops": sha(res.engine.ops.tobytes()), "fills": sha(res.engine.fills.tobytes()),
           "capture": sha(gzip.decompress(res.files["capture"].read_bytes())),
           "agg_trades_csv": sha(res.files["agg_trades_csv"].read_bytes()),
           "truth": sha(pl.read_parquet(res.files["truth"]).write_csv().encode()),
           "labels": sha(res.files["labels"].read_bytes())}
    if "book_depth_csv" in res.files:
        got["book_depth_csv"] = sha(res.files["book_depth_csv"].read_bytes())
    assert got == FINGERPRINTS[name]


# --------------------------------------------------------------------------- the published stream
def test_published_stream_replays_to_engine_book_every_batch(mixed, books):
    lines = read_capture(mixed.files["capture"])
    r = replay(lines)
    snap = mixed.labels["snapshot"]
    assert r["snap"]["lastUpdateId"] == snap["last_update_id"]
    assert r["stale_before"] == snap["stale_events"] >= mixed.engine.config.stale_events >= 1
    assert r["stale_dropped"] == 0  # every stale event arrived before the snapshot line
    eng = mixed.engine
    by_batch = {(E - eng.start_ms) // S.BATCH_MS - 1: bk for E, bk in r["books"].items()}
    first = min(by_batch)
    current = None
    for b in range(first, eng.n_batches):
        current = by_batch.get(b, current)
        _, bids, asks = books[b]
        assert current[0] == bids and current[1] == asks, f"batch {b} differs"
        if bids and asks:
            assert max(bids) < min(asks), "crossed book"
    assert eng.n_batches - first > 3000
    assert all(len(b_) <= S.SNAPSHOT_LIMIT and len(a_) <= S.SNAPSHOT_LIMIT for _, b_, a_ in books)


def test_truth_is_exactly_the_published_decreases(mixed):
    r = replay(read_capture(mixed.files["capture"]))
    t = pl.read_parquet(mixed.files["truth"])
    got = set(t.select("ts", "side", "price_ticks", "prev_lots", "new_lots").iter_rows())
    assert got == set(r["decreases"])
    assert t.height == len(r["decreases"])
    # the split adds up and is bounded by the gross flows of the batch
    assert (t["traded_lots"] + t["cancelled_lots"] == t["decrease_lots"]).all()
    assert (t["decrease_lots"] == t["prev_lots"] - t["new_lots"]).all()
    assert (t["traded_lots"] <= t["gross_traded_lots"]).all()
    assert (t["cancelled_lots"] <= t["gross_cancelled_lots"]).all()
    assert (t["prev_lots"] + t["gross_added_lots"] - t["gross_traded_lots"] - t["gross_cancelled_lots"]
            == t["new_lots"]).all()
    assert t["price"].map_elements(ticks, return_dtype=pl.Int64).equals(t["price_ticks"])
    assert t["ts"].is_sorted()


def test_capture_format_and_time_order(mixed):
    lines = read_capture(mixed.files["capture"])
    locals_ = [loc for loc, _ in lines]
    assert locals_ == sorted(locals_)
    first_snapshot = next(i for i, (_, m) in enumerate(lines) if "lastUpdateId" in m)
    assert 0 < first_snapshot < 40
    kinds = {m["data"]["e"] for _, m in lines if "data" in m}
    assert kinds == {"depthUpdate", "aggTrade"}
    depth = [m["data"] for _, m in lines if "data" in m and m["data"]["e"] == "depthUpdate"]
    d = depth[10]
    assert list(d) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]
    assert all(len(p.split(".")[1]) == 2 and len(q.split(".")[1]) == 3 for p, q in d["b"] + d["a"])
    assert any(q == "0.000" for x in depth[:50] for _, q in x["b"] + x["a"])
    # exchange time never after local receive time; the two streams interleave out of E order
    ex = [(loc, m["data"]["E"] if "data" in m else m["E"]) for loc, m in lines]
    assert all(loc >= e * 1_000_000 for loc, e in ex)
    es = [e for _, e in ex]
    assert any(es[i + 1] < es[i] for i in range(len(es) - 1))
    trade = next(m for _, m in lines if "data" in m and m["data"]["e"] == "aggTrade")
    assert trade["stream"] == "btcusdt@aggTrade"
    assert list(trade["data"]) == ["e", "E", "a", "s", "p", "q", "f", "l", "T", "m"]


def test_agg_trades_csv_matches_capture(mixed):
    with open(mixed.files["agg_trades_csv"], newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
                       "is_buyer_maker"]
    from_csv = [(int(a), p, q, int(f), int(l_), int(t), m) for a, p, q, f, l_, t, m in rows[1:]]
    events = sorted((m["data"] for _, m in read_capture(mixed.files["capture"])
                     if "data" in m and m["data"]["e"] == "aggTrade"), key=lambda d: d["a"])
    from_ws = [(d["a"], d["p"], d["q"], d["f"], d["l"], d["T"], "true" if d["m"] else "false") for d in events]
    assert from_csv == from_ws
    ids = np.array([r[0] for r in from_csv])
    assert (np.diff(ids) == 1).all()
    first, last = np.array([r[3] for r in from_csv]), np.array([r[4] for r in from_csv])
    assert (last >= first).all() and (first[1:] == last[:-1] + 1).all()
    assert {r[6] for r in from_csv} == {"true", "false"}


# --------------------------------------------------------------------------- incident signatures
def test_withdrawal_signature(mixed, books):
    inc = incident(mixed, "withdrawal")
    assert inc["sides"] == "both" and inc["expected_label"] == "synchronized_withdrawal"
    assert inc["end_ts_ns"] - inc["start_ts_ns"] < 400_000_000  # pulled within a few hundred ms
    b0 = batch_of(mixed, inc["start_ts_ns"])
    before = depth_near_mid(*books[b0][1:])
    after = depth_near_mid(*books[b0 + 10][1:])  # 1 s later
    removed = before[0] - after[0] + before[1] - after[1]
    assert after[0] < 0.5 * before[0] and after[1] < 0.5 * before[1]
    trades = trades_df(mixed).filter(pl.col("transact_time").is_between(
        inc["start_ts_ns"] // 10**6, inc["start_ts_ns"] // 10**6 + 1000))
    traded = sum(lots(q) for q in trades["quantity"])
    assert traded < 0.05 * removed
    t = pl.read_parquet(mixed.files["truth"]).filter(
        pl.col("ts").is_between(inc["start_ts_ns"], inc["end_ts_ns"] + 200_000_000))
    per_side = t.group_by("side").agg(pl.col("traded_lots").sum(), pl.col("cancelled_lots").sum())
    for _, tr, cx in per_side.iter_rows():
        assert cx > 20 * max(tr, 1)


def test_withdrawal_vacuum_moves_price_more_per_unit_volume(mixed):
    eng = mixed.engine
    tr = trades_df(mixed).with_columns(
        lots=pl.col("quantity").map_elements(lots, return_dtype=pl.Int64))

    def impact_per_lot(t0_ns, t1_ns):
        b0, b1 = batch_of(mixed, t0_ns), batch_of(mixed, t1_ns)
        sold = tr.filter(pl.col("transact_time").is_between(t0_ns // 10**6, t1_ns // 10**6)
                         & (pl.col("is_buyer_maker")))["lots"].sum()
        return (eng.fair[b0] - eng.fair[b1]) / sold

    w, c = incident(mixed, "withdrawal"), incident(mixed, "consumption")
    vac = impact_per_lot(*w["phases"]["cascade"])
    cons = impact_per_lot(c["start_ts_ns"], c["end_ts_ns"])
    assert vac > 0 and cons > 0
    assert vac > 5 * cons


def test_consumption_decreases_mostly_traded(mixed):
    """In the batches of the seller's child orders, the bid levels that vanished from the top
    (above the batch-end best bid) went mostly by trades; in calm batches mostly by cancels."""
    inc = incident(mixed, "consumption")
    assert inc["sides"] == "bid" and inc["aggressor"] == "sell" and inc["orders"]
    eng = mixed.engine
    best = pl.DataFrame({"batch": np.arange(eng.n_batches, dtype=np.int32), "bb": eng.best_bid})
    t = pl.read_parquet(mixed.files["truth"]).join(best, on="batch").filter(
        (pl.col("side") == "bid") & (pl.col("price_ticks") > pl.col("bb")))
    child = {(o["ts_ns"] // 10**6 - eng.start_ms) // S.BATCH_MS for o in inc["orders"]}

    def shares(df):
        g = df.group_by("batch").agg(pl.col("traded_lots").sum(), pl.col("decrease_lots").sum())
        return (g["traded_lots"] / g["decrease_lots"]).to_numpy()

    hit = shares(t.filter(pl.col("batch").is_in(list(child))))
    calm = shares(t.filter(pl.col("incident_id").is_null()))
    assert len(hit) > 20
    assert np.median(hit) > 0.8 and (hit > 0.5).mean() > 0.7
    assert np.median(calm) < 0.2
    sold = trades_df(mixed).filter(pl.col("transact_time").is_between(
        inc["start_ts_ns"] // 10**6, inc["end_ts_ns"] // 10**6) & pl.col("is_buyer_maker"))
    assert sum(lots(q) for q in sold["quantity"]) >= inc["total_lots"]


def test_one_sided_pull_only_one_side_falls(mixed, books):
    inc = incident(mixed, "one_sided_pull")
    assert inc["sides"] == "ask"
    b0 = batch_of(mixed, inc["start_ts_ns"])
    before, after = depth_near_mid(*books[b0][1:]), depth_near_mid(*books[b0 + 10][1:])
    assert after[1] < 0.5 * before[1]
    assert abs(after[0] - before[0]) < 0.3 * before[0]


def test_flicker_orders_come_and_go_without_trades(mixed):
    inc = incident(mixed, "flicker")
    orders = inc["orders"]
    assert len(orders) >= 20
    tr = trades_df(mixed)
    truth = pl.read_parquet(mixed.files["truth"])
    for o in orders:
        t0, t1 = o["place_ts_ns"] // 10**6, o["cancel_ts_ns"] // 10**6
        during = tr.filter(pl.col("transact_time").is_between(t0, t1))
        assert (during["price"].map_elements(ticks, return_dtype=pl.Int64) != o["price_ticks"]).all()
        gone = truth.filter((pl.col("price_ticks") == o["price_ticks"]) & (pl.col("side") == o["side"])
                            & pl.col("ts").is_between(o["cancel_ts_ns"], o["cancel_ts_ns"] + 300_000_000))
        assert gone["cancelled_lots"].sum() >= o["lots"] and gone["traded_lots"].sum() == 0


def test_labels_schema(mixed):
    lab = json.loads(mixed.files["labels"].read_text())
    assert lab["exchange"] == "binance-futures" and lab["symbol"] == "BTCUSDT" and lab["date"] == "2025-10-10"
    assert lab["tick"] == "0.1" and lab["lot"] == "0.001" and lab["seed"] == 11
    assert [i["type"] for i in lab["incidents"]] == ["consumption", "one_sided_pull", "flicker", "calm",
                                                     "withdrawal"]
    for i in lab["incidents"]:
        assert lab["start_ts_ns"] <= i["start_ts_ns"] <= i["end_ts_ns"] <= i["window_end_ts_ns"]
        assert i["expected_label"] == S.EXPECTED_LABEL[i["type"]]
    truth = pl.read_parquet(mixed.files["truth"])
    assert set(truth["incident_type"].drop_nulls().unique()) <= {i["type"] for i in lab["incidents"]}
    assert "truth_level_decreases.parquet" in mixed.files["readme"].read_text()


# --------------------------------------------------------------------------- bundled sample
def test_sample_config_story():
    cfg = S.sample_config()
    start = S.parse_time_ns("2025-10-10T20:50:00Z")
    assert cfg.resolved_start_ns() == start and cfg.minutes == 40
    at = {i.kind: start + int(i.at_s * 1e9) for i in cfg.incidents}
    assert at["withdrawal"] == S.parse_time_ns("2025-10-10T21:13:00Z")
    assert at["consumption"] == S.parse_time_ns("2025-10-10T21:00:00Z")


def test_write_sample_data_is_small(tmp_path):
    res = S.write_sample_data(tmp_path)
    total = sum(res.sizes().values())
    assert total < 6_000_000
    assert res.files["capture"].name == "BTCUSDT-depth-capture-2025-10-10.jsonl.gz"
    assert res.files["agg_trades_csv"].name == "BTCUSDT-aggTrades-2025-10-10.csv"


# --------------------------------------------------------------------------- bookDepth (band-only) output
def _bd_config(**kw):
    return S.build_config(seed=5, minutes=1.5, incidents=["withdrawal@40s"], **kw)


def test_book_depth_off_changes_nothing_and_on_adds_only_its_file(tmp_path):
    off = S.simulate(_bd_config(), tmp_path / "off")
    assert "book_depth_csv" not in off.files and not list((tmp_path / "off").glob("*bookDepth*"))
    lab = json.loads(off.files["labels"].read_text())
    assert not any(k.startswith("book_depth") for k in lab["config"]) and "book_depth_samples" not in lab["counts"]
    assert "bookDepth" not in off.files["readme"].read_text()
    on = S.simulate(_bd_config(book_depth_every_s=5, book_depth_bands=(0.005, 0.01, 0.05)), tmp_path / "on")
    again = S.simulate(_bd_config(book_depth_every_s=5, book_depth_bands=(0.005, 0.01, 0.05)), tmp_path / "again")
    for role in ("capture", "agg_trades_csv", "truth"):  # its own random stream: the rest is untouched
        assert on.files[role].read_bytes() == off.files[role].read_bytes(), role
    assert on.files["book_depth_csv"].read_bytes() == again.files["book_depth_csv"].read_bytes()
    assert on.files["book_depth_csv"].name == "BTCUSDT-bookDepth-2025-10-10.csv"
    lab = json.loads(on.files["labels"].read_text())
    assert lab["config"]["book_depth_every_s"] == 5 and lab["config"]["book_depth_bands"] == [0.005, 0.01, 0.05]
    assert lab["files"]["book_depth_csv"] == on.files["book_depth_csv"].name
    assert "bookDepth" in on.files["readme"].read_text()


def test_book_depth_csv_is_the_true_book_in_binance_layout(tmp_path):
    cfg = _bd_config(book_depth_every_s=5, book_depth_bands=(0.005, 0.01, 0.05))
    res = S.simulate(cfg, tmp_path, keep_engine=True, record_books=True)
    with open(res.files["book_depth_csv"], newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["timestamp", "percentage", "depth", "notional"]
    body = rows[1:]
    assert [r[1] for r in body[:6]] == ["-0.05", "-0.01", "-0.005", "0.005", "0.01", "0.05"]
    secs = sorted({int(pl.Series([r[0]]).str.to_datetime("%Y-%m-%d %H:%M:%S").dt.epoch("s")[0]) for r in body})
    assert len(body) == 6 * len(secs) == 6 * res.labels["counts"]["book_depth_samples"]
    assert set(np.diff(secs)) <= {3, 4, 5, 6, 7}              # 5 s cadence, +-1 s jitter
    assert res.labels["start_ts_ns"] // 10**9 <= secs[0] and secs[-1] <= res.labels["end_ts_ns"] // 10**9
    books = {ts: (b, a) for ts, b, a in S.engine_books(res.engine)}
    mid = None
    mids = {}
    for ts in sorted(books):
        b, a = books[ts]
        if b and a:
            mid = Decimal(max(b) + min(a)) / 2
        mids[ts] = mid
    pull = res.labels["incidents"][0]["start_ts_ns"]
    seen_thin = False
    for ts_text, pct, depth, notional in body:
        ts = int(pl.Series([ts_text]).str.to_datetime("%Y-%m-%d %H:%M:%S").dt.epoch("ns")[0])
        bids, asks = books[ts]                                  # the engine's book at that second
        p = Decimal(pct)
        edge = mids[ts] * (1 + p / 100)                         # a level on the edge is inside
        lv = {k: v for k, v in (bids.items() if p < 0 else asks.items()) if (k >= edge if p < 0 else k <= edge)}
        assert Decimal(depth) == sum(lv.values()) * LOT, (ts_text, pct)
        assert Decimal(notional) == sum(k * v for k, v in lv.items()) * TICK * LOT, (ts_text, pct)
        seen_thin |= pull < ts < pull + 10 * 10**9 and Decimal(depth) < 1
    assert seen_thin                                            # the withdrawal shows in the bands


def test_cli_simulate_book_depth(tmp_path):
    from click.testing import CliRunner
    from forensics.cli import cli
    out = CliRunner().invoke(cli, ["simulate", "--seed", "2", "--minutes", "1", "--out", str(tmp_path / "s"),
                                   "--book-depth", "30s"])
    assert out.exit_code == 0, out.output
    assert "book_depth_csv" in out.output
    text = (tmp_path / "s" / "BTCUSDT-bookDepth-2025-10-10.csv").read_text().splitlines()
    assert [x.split(",")[1] for x in text[1:11]] == ["-5", "-4", "-3", "-2", "-1", "1", "2", "3", "4", "5"]
    assert 2 <= (len(text) - 1) // 10 <= 3                      # one minute at ~30 s
    bad = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "b"), "--book-depth-bands", "0.1"])
    assert bad.exit_code == 1 and "--book-depth" in bad.output
    bad = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "b"), "--book-depth", "500ms"])
    assert bad.exit_code == 1 and ">= 1 s" in bad.output
    bad = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "b"), "--book-depth", "30s",
                                   "--book-depth-bands", "0,1"])
    assert bad.exit_code == 1 and "book_depth_bands" in bad.output


def test_old_module_names_still_work():
    """forensics.simulate / evaluate / sim_venues / sim_multivenue re-export forensics.sim (other
    code and scripts import them by those names)."""
    import importlib

    import forensics.sim as sim

    for name in sim.__all__:
        assert getattr(S, name) is getattr(sim, name), name
    assert S.publish is importlib.import_module("forensics.sim.publish").publish
    assert S._dec_expr is importlib.import_module("forensics.sim.config")._dec_expr
    for old, new in (("evaluate", "evaluate"), ("sim_venues", "venues"), ("sim_multivenue", "multivenue")):
        assert importlib.import_module(f"forensics.{old}") is importlib.import_module(f"forensics.sim.{new}")
    from forensics.evaluate import _match, run_one  # noqa: F401  (private names too)
    with pytest.raises(AttributeError):
        S.no_such_name


@pytest.mark.parametrize("name,first,count", [("eval", 10_001, 150), ("eval-wide", 10_001, 600), ("dev", 1, 60)])
def test_cli_eval_seed_sets(monkeypatch, name, first, count):
    """`forensics eval --set` runs the named seed range, drawn (the wide held-out range holds
    the 150 and 450 more, disjoint from the development seeds); --seeds takes its first N."""
    from click.testing import CliRunner

    import forensics.evaluate as E
    from forensics.cli import cli
    seen = {}

    def fake_run_eval(n, first_seed, kinds, seeds=None, drawn=False, **kw):
        seen.update(n=n, seeds=list(seeds), drawn=drawn)
        raise SystemExit(0)
    monkeypatch.setattr(E, "run_eval", fake_run_eval)
    r = CliRunner().invoke(cli, ["eval", "--set", name, "-q"])
    assert r.exit_code == 0, r.output
    assert seen["drawn"] and seen["n"] == count and seen["seeds"] == list(range(first, first + count))
    assert not set(seen["seeds"]) & set(range(1, 1001)) or name == "dev"
    r = CliRunner().invoke(cli, ["eval", "--set", name, "--seeds", "3", "-q"])
    assert seen["seeds"] == list(range(first, first + 3))
    bad = CliRunner().invoke(cli, ["eval", "--set", "eval600"])
    assert bad.exit_code != 0 and "eval-wide" in bad.output
