"""forensics.book: the compiled replay equals the reference replay exactly; store, CLI, band data."""
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics.book import (HeatSpec, compute_depth, grid_bounds, parse_bands, reference_replay,
                            replay_arrays)
from forensics.cli import cli
from forensics.errors import ForensicsError
from forensics.ingest import ingest
from forensics.schema import conform
from forensics.store import Instrument, Store

S = 1_000_000_000
T0 = 1_760_130_000 * S  # 2025-10-10 21:00:00 UTC


def both(updates, gaps=(), every=1, g0=None, m=None, bands=("1", "5"), heat=None, chunk_rows=3, dense_max=10**6):
    """(compiled, reference) on the same input; asserts they are exactly equal."""
    ts = [u[0] for u in updates]
    if g0 is None:
        g0, m = grid_bounds(min(ts), max(ts) + 2 * every, every)
    cols = list(zip(*updates)) if updates else [[]] * 6
    got = replay_arrays(*cols, every_ns=every, g0=g0, m=m, bands=bands, heat=heat,
                        gaps=(np.array([g[0] for g in gaps], np.int64), np.array([g[1] for g in gaps], np.int64)),
                        chunk_rows=chunk_rows, dense_max=dense_max)
    ref = reference_replay(updates, gaps, g0=g0, every_ns=every, m=m, bands=bands, heat=heat)
    assert got.diff(ref) == []
    return got, ref


def at(res, t):
    return int(np.searchsorted(res.ts, t))


# ---- hand cases -------------------------------------------------------------------------------

def test_snapshot_block_replaces_book_and_unknown_before_first_snapshot():
    u = [(0, 0, "bid", 99, 5, False),          # before any snapshot: unknown
         (2, 1, "bid", 98, 1, True), (2, 2, "ask", 101, 2, True),
         (3, 3, "bid", 99, 3, False),
         (5, 4, "ask", 105, 7, True),          # new block: bids gone, only this ask
         (5, 5, "bid", 90, 1, True)]
    got, _ = both(u, every=1, g0=0, m=7)
    assert list(got.valid) == [False, False, True, True, True, True, True]
    assert got.best_bid[at(got, 3)] == 99 and got.side_levels[at(got, 3)].tolist() == [2, 1]
    assert got.best_bid[at(got, 5)] == 90 and got.best_ask[at(got, 5)] == 105
    assert got.side_levels[at(got, 5)].tolist() == [1, 1]
    assert got.stats["snapshots"] == 2 and got.stats["unknown_updates"] == 1


def test_gap_makes_book_unknown_until_next_snapshot():
    u = [(0, 0, "bid", 99, 5, True), (0, 1, "ask", 101, 5, True),
         (4, 3, "bid", 99, 6, False),          # after the gap marker (4, 2): applied to an unknown book
         (6, 4, "ask", 102, 1, False),
         (8, 5, "bid", 98, 2, True), (8, 6, "ask", 103, 2, True)]
    got, _ = both(u, gaps=[(4, 2)], every=1, g0=0, m=10)
    assert got.valid.tolist() == [True] * 4 + [False] * 4 + [True] * 2
    assert got.best_bid[3] == 99 and got.best_bid_size[3] == 5
    assert (got.best_bid[4:8] == -1).all() and (got.qty[4:8] == 0).all()
    assert got.best_bid[8] == 98 and got.best_ask[8] == 103
    assert got.stats["unknown_updates"] == 2


def test_gap_marker_position_follows_ts_seq_order():
    u = [(0, 0, "bid", 99, 5, True), (0, 1, "ask", 101, 5, True), (3, 5, "bid", 99, 1, False)]
    # a marker after the update at the same ts, and one with a null seq_from (loaded as int64 min:
    # it sorts before every update at its ts); both make grid time 3 unknown
    a, _ = both(u, gaps=[(3, 6)], every=1, g0=0, m=5)
    assert a.valid.tolist() == [True, True, True, False, False]
    b, _ = both(u, gaps=[(3, -2**63)], every=1, g0=0, m=5)
    assert b.valid.tolist() == [True, True, True, False, False]
    assert b.stats["unknown_updates"] == 1 and a.stats["unknown_updates"] == 0


def test_crossed_and_locked_are_flagged_not_hidden():
    u = [(0, 0, "bid", 100, 1, True), (0, 1, "ask", 101, 1, True),
         (2, 2, "bid", 102, 4, False),          # crossed: bid 102 > ask 101
         (4, 3, "bid", 102, 0, False), (4, 4, "bid", 101, 1, False)]  # locked at 101
    got, _ = both(u, every=1, g0=0, m=6, bands=("1",))
    assert got.best_bid[2] == 102 and got.best_ask[2] == 101
    assert got.stats["crossed_times"] == 1 and got.stats["first_crossed_ts"] == 2
    assert got.stats["locked_times"] == 1 and got.stats["first_locked_ts"] == 4
    # bands are still computed on a crossed book: mid 101.5, 1 % bid edge 100.485 -> only the 102 bid
    assert got.mid_ok[2] and got.qty[2, 0, 0] == 4
    assert got.best_bid[4] == got.best_ask[4] == 101


def test_same_ts_ties_follow_seq():
    base = [(0, 0, "bid", 100, 1, True), (0, 1, "ask", 110, 1, True)]
    got, _ = both(base + [(5, 2, "bid", 105, 3, False), (5, 3, "bid", 105, 0, False)], every=5, g0=0, m=2)
    assert got.best_bid[1] == 100
    got, _ = both(base + [(5, 3, "bid", 105, 3, False), (5, 2, "bid", 105, 0, False)], every=5, g0=0, m=2)
    assert got.best_bid[1] == 105  # seq order, not row order


def test_band_edges_are_exact_and_inclusive():
    # mid = (9990 + 10010) / 2 = 10000: 1 % edges 9900 and 10100 exactly
    u = [(0, 0, "bid", 9990, 1, True), (0, 1, "ask", 10010, 2, True),
         (0, 2, "bid", 9900, 10, True), (0, 3, "bid", 9899, 100, True),
         (0, 4, "ask", 10100, 20, True), (0, 5, "ask", 10101, 200, True)]
    got, _ = both(u, every=1, g0=0, m=1, bands=("0.1", "1"))
    assert got.qty[0].tolist() == [[1, 11], [2, 22]]
    assert got.levels[0].tolist() == [[1, 2], [1, 2]]
    assert got.notional[0, 0, 1] == 9990 + 99000
    # odd mid2: mid = 9999.5; 1 % edges 9899.505 / 10099.495 -> 9900 in, 9899 out; 10099 in, 10100 out
    u = [(0, 0, "bid", 9999, 1, True), (0, 1, "ask", 10000, 2, True),
         (0, 2, "bid", 9900, 10, True), (0, 3, "bid", 9899, 100, True),
         (0, 4, "ask", 10099, 20, True), (0, 5, "ask", 10100, 200, True)]
    got, _ = both(u, every=1, g0=0, m=1, bands=("1",))
    assert got.qty[0].tolist() == [[11], [22]]
    # a band with decimals: 0.25 % of 10000 = 25 -> edge 9975 included
    u = [(0, 0, "bid", 9990, 1, True), (0, 1, "ask", 10010, 2, True), (0, 2, "bid", 9975, 4, True),
         (0, 3, "bid", 9974, 8, True)]
    got, _ = both(u, every=1, g0=0, m=1, bands=("0.25",))
    assert got.qty[0, 0, 0] == 5


def test_100ms_grid_includes_updates_at_exactly_t():
    ms = 1_000_000
    u = [(T0, 0, "bid", 100, 1, True), (T0, 1, "ask", 102, 1, True),
         (T0 + 100 * ms, 2, "bid", 101, 1, False),       # exactly on a grid time: included there
         (T0 + 200 * ms + 1, 3, "ask", 101, 0, False)]   # 1 ns after: next grid time
    u[-1] = (T0 + 200 * ms + 1, 3, "ask", 102, 0, False)
    got, _ = both(u, every=100 * ms, g0=T0, m=4, bands=("1",))
    assert got.best_bid.tolist() == [100, 101, 101, 101]
    assert got.best_ask.tolist() == [102, 102, 102, -1]
    assert (got.ts - T0).tolist() == [0, 100 * ms, 200 * ms, 300 * ms]


def test_one_sided_book_has_no_mid_and_null_bands():
    got, _ = both([(0, 0, "bid", 100, 1, True)], every=1, g0=0, m=2)
    assert got.valid.all() and not got.mid_ok.any() and got.best_ask.tolist() == [-1, -1]


def test_parse_bands():
    b = parse_bands("5, 0.1,1%,0.1")
    assert b.labels == ["0.1", "1", "5"] and b.denom == 10 and b.num.tolist() == [1, 10, 50]
    for bad in ("abc", "-1", "0", "101", "", "1e-9"):
        with pytest.raises(ForensicsError):
            parse_bands(bad)


# ---- property: compiled == reference ------------------------------------------------------------

@st.composite
def streams(draw):
    n = draw(st.integers(0, 70))
    ts, rows = 0, []
    for i in range(n):
        ts += draw(st.sampled_from([0, 0, 0, 1, 1, 2, 5]))
        snap = draw(st.sampled_from([False] * 6 + [True] * 2))
        side = draw(st.sampled_from(["bid", "ask"]))
        price = draw(st.integers(90, 110))
        size = draw(st.sampled_from([0, 0, 1, 2, 3, 7]))
        rows.append((ts, i, side, price, size, snap))
    gaps = draw(st.lists(st.tuples(st.integers(-2, ts + 2), st.integers(-1, n + 1)), max_size=3))
    every = draw(st.sampled_from([1, 2, 3, 7]))
    g0 = draw(st.integers(-3, 3)) * every
    m = draw(st.integers(0, (ts + 10) // every + 2))
    bands = draw(st.lists(st.sampled_from(["0.5", "1", "2.5", "5", "12.5", "50", "100"]), min_size=1, max_size=4,
                          unique=True))
    heat = draw(st.one_of(st.none(), st.builds(HeatSpec, st.integers(85, 100), st.integers(1, 4), st.integers(1, 12))))
    chunk = draw(st.integers(1, 80))
    dense_max = draw(st.sampled_from([3, 10**6]))  # 3 forces the ranked (sparse) price index
    return rows, gaps, every, g0, m, bands, heat, chunk, dense_max


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_compiled_equals_reference(case):
    rows, gaps, every, g0, m, bands, heat, chunk, dense_max = case
    both(rows, gaps, every=every, g0=g0, m=m, bands=bands, heat=heat, chunk_rows=chunk, dense_max=dense_max)


def test_wide_price_range_uses_ranked_index_and_stays_exact():
    rng = np.random.default_rng(3)
    n = 3000
    price = np.where(rng.random(n) < 0.5, rng.integers(1_000_000, 1_000_100, n), rng.integers(1, 10**12, n))
    side = np.where(price >= 1_000_050, "ask", "bid")
    rows = [(int(i // 3), int(i), s, int(p), int(rng.integers(0, 5)), i < 40) for i, (s, p) in enumerate(zip(side, price))]
    got, _ = both(rows, every=50, bands=("0.1", "1", "100"), heat=HeatSpec(999_000, 100, 30), chunk_rows=700,
                  dense_max=10**6)
    assert got.valid.any()


# ---- store: compute_depth equals the reference, windows, slicing ------------------------------

def _store_with_updates(root, rows, gaps=(), inst=(1, 3), parts=2):
    """Write book_updates directly (several overlapping parts) + gaps + instrument."""
    store = Store(root)
    df = pl.DataFrame(rows, schema=["ts", "seq", "side", "price", "size", "is_snapshot"], orient="row")
    for k in range(parts):  # interleaved parts: exercises the (ts, seq) merge of several files
        part = df.filter(pl.col("seq") % parts == k).sort("ts", maintain_order=True)
        store.write_partitioned("book_updates", conform("book_updates", part), "binance-futures", "BTCUSDT", f"p{k}")
    if gaps:
        g = pl.DataFrame([{"ts_from": a, "ts_to": a + 1, "seq_from": b, "reason": "test"} for a, b in gaps])
        store.write_partitioned("gaps", conform("gaps", g), "binance-futures", "BTCUSDT", "g", ts_column="ts_from")
    store.save_instrument(Instrument("binance-futures", "BTCUSDT", inst[0], inst[1], len(rows)))
    return store


def _random_rows(n, seed, t0=T0, span=7200 * S):
    rng = np.random.default_rng(seed)
    ts = np.sort(t0 + rng.integers(0, span, n) // 10**8 * 10**8)
    rows = []
    for i in range(n):
        snap = i < 30 or rng.random() < 0.004
        side = "bid" if rng.random() < 0.5 else "ask"
        mid = 1_200_000 + int(ts[i] - t0) // (60 * S)
        price = mid - 1 - int(rng.geometric(0.1)) if side == "bid" else mid + int(rng.geometric(0.1))
        rows.append((int(ts[i]), i, side, price, int(rng.integers(0, 4)) * 250, bool(snap)))
    # snapshot rows must share a ts to form one block: give the first 30 the first ts
    rows[:30] = [(rows[0][0], *r[1:]) for r in rows[:30]]
    return rows


def test_compute_depth_from_store_equals_reference_across_slices_and_midnight(tmp_path):
    t0 = 1_760_140_800 * S - 3600 * S  # 2025-10-10 23:00 UTC: crosses midnight
    rows = _random_rows(6000, 1, t0=t0)
    gaps = [(rows[2000][0], rows[2000][1]), (rows[4000][0] + 1, 2**62)]
    store = _store_with_updates(tmp_path / "s", rows, gaps)
    res = compute_depth(store, every_ns=10 * S, bands=[0.1, 1, 5], chunk_rows=500, write=True)
    g0, m = grid_bounds(rows[0][0], max(r[0] for r in rows), 10 * S)
    ref = reference_replay(rows, gaps, g0=g0, every_ns=10 * S, m=m, bands=("0.1", "1", "5"))
    assert res.grid.diff(ref) == []
    assert res.stats["slices"] > 3
    assert res.depth.height == m * 6 and res.book_top.height == m
    assert set(res.flags["kind"]) >= {"gap", "unknown"}
    # stored derived tables, seen through SQL in real units, both dates
    con = store.connect()
    n_top, days = con.execute("select count(*), count(distinct date) from book_top").fetchone()
    assert n_top == m and days == 2
    cols = {r[0] for r in con.execute("describe depth").fetchall()}
    assert {"exchange", "symbol", "ts", "side", "band_pct", "qty", "notional", "data_kind"} <= cols
    k = int(np.argmax(ref.mid_ok))
    mid, bb = con.execute(f"select mid::varchar, best_bid::varchar from book_top where ts_ns = {int(ref.ts[k])}").fetchone()
    assert bb == f"{ref.best_bid[k] // 10}.{ref.best_bid[k] % 10}"
    assert mid == str((ref.best_bid[k] + ref.best_ask[k]) / 20) or float(mid) == (ref.best_bid[k] + ref.best_ask[k]) / 20
    q = con.execute(f"select qty::double from depth where ts_ns = {int(ref.ts[k])} and side = 'bid' and band_pct = 1").fetchone()[0]
    assert q == ref.qty[k, 0, 1] / 1000


def test_window_starts_from_last_snapshot_and_upserts(tmp_path):
    rows = _random_rows(3000, 2)
    store = _store_with_updates(tmp_path / "s", rows)
    full = compute_depth(store, every_ns=60 * S, write=True)
    a, b = T0 + 1800 * S, T0 + 2400 * S
    win = compute_depth(store, ts_from=a, ts_to=b, every_ns=60 * S, write=True)
    # the window replays from the last snapshot before it: same values as the full run
    same = full.book_top.filter(pl.col("ts").is_between(a, b))
    assert win.book_top.drop("grid_ns").equals(same.drop("grid_ns"))
    assert win.book_top["valid"].all()
    # upsert: the stored table still has the full range once
    n = store.connect().execute("select count(*), count(distinct ts) from book_top").fetchone()
    assert n == (full.book_top.height, full.book_top.height)
    # a 100 ms grid over the same window
    fine = compute_depth(store, ts_from=a, ts_to=a + 5 * S, every_ns=100_000_000, write=False)
    assert fine.book_top.height == 51 and (fine.book_top["ts"].diff().drop_nulls() == 100_000_000).all()


# ---- CLI on a store ingested from Tardis CSV ------------------------------------------------------

def tardis_book(rows):
    head = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
    return head + "".join(f"binance-futures,BTCUSDT,{t},{t + 100},{'true' if s else 'false'},{side},{p},{q}\n"
                          for t, s, side, p, q in rows)


BOOK = tardis_book([
    (1760130000000000, True, "bid", "120000.0", "1.5"), (1760130000000000, True, "ask", "120000.1", "2"),
    (1760130000000000, True, "bid", "118800.0", "3"), (1760130000000000, True, "bid", "118799.9", "4"),
    (1760130001000000, False, "bid", "119999.9", "0.5"),
    (1760130002000000, False, "ask", "120000.0", "0.25"),      # locked with the 120000.0 bid
    (1760130002500000, False, "bid", "120000.1", "1"),         # crossed
    (1760130003000000, False, "bid", "120000.1", "0"),
    (1760130003000000, False, "ask", "120000.0", "0"),
])


@pytest.fixture
def tardis_store(write, store_dir):
    ingest([write("book.csv", BOOK)], store=store_dir)
    return store_dir


def test_cli_depth_table_csv_parquet(tardis_store, tmp_path):
    r = CliRunner()
    out = r.invoke(cli, ["depth", "--store", str(tardis_store), "--bands", "1,0.1"])
    assert out.exit_code == 0, out.output
    assert "crossed" in out.output and "locked" in out.output and "120000.0" in out.output
    csv = tmp_path / "d.csv"
    out = r.invoke(cli, ["depth", "--store", str(tardis_store), "--every", "100ms", "--format", "csv",
                         "--out", str(csv), "--tz", "Asia/Shanghai", "--bands", "0.1,1"])
    assert out.exit_code == 0, out.output
    df = pl.read_csv(csv, infer_schema_length=0)
    assert df.height == 31 and df["time"][0].startswith("2025-10-11T05:00:00.000+08:00")
    row = df.row(0, named=True)
    # 1 % of mid 120000.05 reaches down to 118800.0495: 118800.0 is outside, exactly like Binance
    assert (row["best_bid"], row["best_ask"], row["mid"], row["bid_qty_0.1"], row["bid_qty_1"]) == \
        ("120000.0", "120000.1", "120000.05", "1.50", "1.50")
    assert df.filter(pl.col("crossed") == "true").height == 5  # 2.5 s .. 2.9 s
    pq = tmp_path / "d.parquet"
    out = r.invoke(cli, ["depth", "--store", str(tardis_store), "--format", "parquet", "--out", str(pq)])
    assert out.exit_code == 0, out.output
    assert pl.read_parquet(pq).schema["best_bid"] == pl.Decimal(38, 1)
    con = Store(tardis_store).connect()
    # the last run (1 s grid) replaced the 100 ms rows of that range: at 2 s the book is locked
    assert con.execute("select count(*), sum(locked::int), sum(crossed::int), min(grid_ns) from book_top").fetchone() \
        == (4, 1, 0, 1_000_000_000)


def test_cli_bad_input_is_one_line_error(tardis_store, write):
    r = CliRunner()
    for args, msg in ((["--exchange", "nope"], "no data for exchange=nope"), (["--every", "0"], "positive"),
                      (["--bands", "1,abc"], "bad --bands"), (["--bands", "0"], "bad --bands"),
                      (["--format", "parquet"], "needs --out"),
                      (["--from", "2025-10-10T22:00:00Z", "--to", "2025-10-10T21:00:00Z"], "before")):
        out = r.invoke(cli, ["depth", "--store", str(tardis_store), *args])
        assert out.exit_code == 1, (args, out.output)
        assert msg in out.output and "Traceback" not in out.output
        assert len(out.output.strip().splitlines()) == 1
    ingest([write("eth.csv", BOOK.replace("BTCUSDT", "ETHUSDT"))], store=tardis_store)
    out = r.invoke(cli, ["depth", "--store", str(tardis_store)])
    assert out.exit_code == 1 and "several instruments" in out.output and "ETHUSDT" in out.output
    with pytest.raises(ForensicsError):
        compute_depth(tardis_store, "binance-futures", "BTCUSDT", every_ns=0)


# ---- pre-aggregated bands (Binance bookDepth) -----------------------------------------------------

def band_rows():
    rows, seq = [], 0
    for k in range(8):
        ts = T0 + k * 30 * S
        for side in ("bid", "ask"):
            mid = 120000.0
            for b in (1.0, 2.0, 3.0, 4.0, 5.0):
                qty = 10.0 * b + k + (0.125 if side == "ask" else 0)
                if side == "bid" and b == 3.0:
                    qty = 17.5                   # frozen, and below the 2 % band (non-monotonic)
                avg = mid * (1 - b / 200) if side == "bid" else mid * (1 + b / 200)
                if side == "ask" and b == 5.0 and k == 3:
                    avg = mid * 0.99             # wrong side of mid
                rows.append({"ts": ts, "seq": seq, "side": side, "band_pct": b, "qty": qty, "notional": qty * avg})
                seq += 1
    return pl.DataFrame(rows)


def test_band_data_depth_and_quality_flags(store_dir):
    store = Store(store_dir)
    store.write_partitioned("depth_bands", conform("depth_bands", band_rows()), "binance-futures", "BTCUSDT", "bd")
    res = compute_depth(store, write=False)
    assert res.data_kind == "bands" and res.bands == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert res.depth.height == 80 and res.depth["data_kind"].unique().to_list() == ["bands"]
    assert res.size_decimals == 3 and res.depth.filter((pl.col("side") == "ask") & (pl.col("band_pct") == 1.0))["qty"][0] == 10125
    kinds = {(r["kind"], r["side"]) for r in res.flags.iter_rows(named=True)}
    assert ("non_monotonic", "bid") in kinds and ("frozen_band", "bid") in kinds
    assert ("avg_price_wrong_side", "ask") in kinds and ("frozen_band", "ask") not in kinds
    wrong = res.flags.filter(pl.col("kind") == "avg_price_wrong_side").row(0, named=True)
    assert wrong["count"] == 1 and wrong["first_ts"] == T0 + 3 * 30 * S
    # explicit bands: native ones only, missing ones reported
    res = compute_depth(store, bands="1,5,0.1", write=False)
    assert res.bands == [1.0, 5.0] and "band_unavailable" in res.flags["kind"].to_list()


def test_band_data_cli_and_stored_table(store_dir):
    store = Store(store_dir)
    store.write_partitioned("depth_bands", conform("depth_bands", band_rows()), "binance-futures", "BTCUSDT", "bd")
    store.save_instrument(Instrument("binance-futures", "BTCUSDT", 0, 0, 80))
    out = CliRunner().invoke(cli, ["depth", "--store", str(store_dir)])
    assert out.exit_code == 0, out.output
    assert "pre-aggregated" in out.output and "non_monotonic" in out.output and "frozen_band" in out.output
    # the instrument's size decimals were raised so the stored qty is exact
    assert store.instrument("binance-futures", "BTCUSDT").size_decimals == 3
    q = store.connect().execute("select qty::varchar from depth where side='ask' and band_pct=1 order by ts limit 1").fetchone()
    assert q == ("10.125",)


def test_after_the_recorded_data_the_book_is_unknown(tardis_store):
    res = compute_depth(tardis_store, ts_to=1760130010 * S, write=False)
    top = res.book_top
    assert top.filter(pl.col("ts") <= 1760130003 * S)["valid"].all()
    assert not top.filter(pl.col("ts") > 1760130003 * S)["valid"].any()
    assert "after the recorded data" in res.flags.filter(pl.col("kind") == "unknown")["detail"][0]


def test_csv_time_in_odd_fixed_offset(tardis_store, tmp_path):
    out = tmp_path / "o.csv"
    r = CliRunner().invoke(cli, ["depth", "--store", str(tardis_store), "--tz", "+05:30", "--format", "csv",
                                 "--out", str(out), "--no-write"])
    assert r.exit_code == 0, r.output
    assert pl.read_csv(out, infer_schema_length=0)["time"][0] == "2025-10-11T02:30:00.000+05:30"
