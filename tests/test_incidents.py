"""Cross-venue incidents: asset mapping, clock terms, grouping, lags, finding, bad input, and a
small simulated multi-venue incident end to end (Binance capture + two Tardis venues + a
band-only venue, with known lags, skews and batching)."""
from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from forensics import incidents as inc
from forensics.cli import cli
from forensics.errors import ForensicsError
from forensics.schema import conform
from forensics.store import Instrument, Store

MS = 1_000_000
S = 1_000_000_000
T0 = 1_760_129_400 * S  # 2025-10-10 20:50 UTC


# ---- asset mapping ----------------------------------------------------------------------------

@pytest.mark.parametrize("symbol, asset", [
    ("BTCUSDT", "BTC"), ("BTCUSD", "BTC"), ("BTC-USDT-SWAP", "BTC"), ("BTC-USD", "BTC"), ("BTC-PERP", "BTC"),
    ("BTC", "BTC"), ("XBTUSD", "BTC"), ("BTCFDUSD", "BTC"), ("BTCUSDC", "BTC"), ("BTCBUSD", "BTC"),
    ("BTC-PERPETUAL", "BTC"), ("BTCUSD_PERP", "BTC"), ("BTCUSDT_251226", "BTC"), ("ETH-USDT-SWAP", "ETH"),
    ("ethusdt", "ETH"), ("SOL-USD", "SOL"), ("BTC/USDT", "BTC"), ("PI_XBTUSD", "BTC"), ("USDCUSDT", "USDC"),
])
def test_asset_of_defaults(symbol, asset):
    assert inc.asset_of(symbol) == asset


def test_contract_conversion_linear_and_inverse():
    okx = inc.contract_of("okx-swap", "BTC-USDT-SWAP")
    assert okx.base == 0.01
    assert okx.to_base_quote(100.0, 100.0 * 120_000) == pytest.approx((1.0, 120_000.0))
    inv = inc.contract_of("binance-delivery", "BTCUSD_PERP")
    base, quote = inv.to_base_quote(12.0, 12.0 * 120_000)  # 12 contracts of 100 USD at 120k
    assert quote == pytest.approx(1200.0) and base == pytest.approx(0.01)
    assert inc.contract_of("binance-futures", "BTCUSDT") == inc.Contract()


def test_mapping_file_toml_and_json(tmp_path):
    t = tmp_path / "m.toml"
    t.write_text('[assets]\n"kraken/XBT/EUR" = "btc"\nFOOUSDT = "BAR"\n[contracts]\n'
                 '"okx-swap/BTC-USDT-SWAP" = 0.02\n"x/INV" = { quote = 100 }\n')
    m = inc.load_mapping(t)
    assert m.asset("kraken", "XBT/EUR") == "BTC" and m.asset("binance-spot", "FOOUSDT") == "BAR"
    assert m.asset("binance-spot", "ETHUSDT") == "ETH"           # defaults still apply
    assert m.contract("okx-swap", "BTC-USDT-SWAP").base == 0.02
    assert m.contract("x", "INV").quote == 100.0
    j = tmp_path / "m.json"
    j.write_text(json.dumps({"assets": {"ABC": "BTC"}, "contracts": {"ABC": 0.5}}))
    m = inc.load_mapping(j)
    assert m.asset("e", "ABC") == "BTC" and m.contract("e", "ABC").base == 0.5


@pytest.mark.parametrize("name, text, line, what", [
    ("bad.toml", '[assets]\nBTCUSDT = "BTC"\nETHUSDT = \n', 3, "invalid TOML"),
    ("bad.json", '{\n "assets": {\n  "BTCUSDT": "BTC",\n }\n}\n', 4, "invalid JSON"),
    ("val.toml", '[assets]\nBTCUSDT = "BTC"\nETHUSDT = 3\n', 3, "must be a non-empty text"),
    ("neg.toml", '[contracts]\n"okx-swap/BTC-USDT-SWAP" = 0.01\n"x/Y" = -1\n', 3, "positive number"),
    ("sec.json", '{"assets": {},\n "contract": {}}\n', 2, "unknown section"),
    ("kind.toml", '[contracts]\n\n"x/Y" = { size = 1 }\n', 3, "must be a number"),
])
def test_mapping_file_errors_name_file_and_line(tmp_path, name, text, line, what):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(ForensicsError) as e:
        inc.load_mapping(p)
    assert f"{p}:{line}:" in str(e.value) and what in str(e.value)


def test_mapping_file_missing(tmp_path):
    with pytest.raises(ForensicsError, match="cannot read the mapping file"):
        inc.load_mapping(tmp_path / "nope.toml")


# ---- grouping and lags (pure) --------------------------------------------------------------------

def _on(rows):
    return pl.DataFrame(rows, schema={"asset": pl.Utf8, "exchange": pl.Utf8, "symbol": pl.Utf8,
                                      "onset_ts": pl.Int64, "timing_uncertainty_ms": pl.Float64}, orient="row")


def test_group_onsets_chains_within_window_and_splits_on_gaps():
    on = _on([("BTC", "a", "X", T0, 50.0), ("BTC", "b", "X", T0 + 3 * S, 50.0),
              ("BTC", "c", "X", T0 + 7 * S, 50.0),        # 4 s after b: chained (gap <= 5 s)
              ("BTC", "a", "X", T0 + 13 * S, 50.0),       # 6 s gap: new incident
              ("ETH", "a", "Y", T0 + 1 * S, 50.0),        # other asset: its own incident
              ("BTC", "b", "X", T0 + 14 * S, 50.0), ("BTC", "b", "X", T0 + 15 * S, 50.0)])
    g = inc.group_onsets(on, 5.0)
    inc_of = {(r["asset"], r["exchange"], r["onset_ts"]): r["incident"] for r in g.iter_rows(named=True)}
    assert inc_of[("BTC", "a", T0)] == inc_of[("BTC", "b", T0 + 3 * S)] == inc_of[("BTC", "c", T0 + 7 * S)]
    assert inc_of[("BTC", "a", T0 + 13 * S)] != inc_of[("BTC", "a", T0)]
    assert inc_of[("ETH", "a", T0 + S)] not in {inc_of[("BTC", "a", T0)], inc_of[("BTC", "a", T0 + 13 * S)]}
    ranks = g.filter((pl.col("exchange") == "b") & (pl.col("onset_ts") >= T0 + 14 * S)).sort("onset_ts")["rank"]
    assert ranks.to_list() == [1, 2]
    # a shorter window splits the first chain
    g2 = inc.group_onsets(on, 3.5)
    assert g2.filter(pl.col("asset") == "BTC")["incident"].n_unique() == 3


def test_lag_table_relations_and_uncertainty():
    g = _on([("BTC", "a", "X", T0 + 100 * MS, 30.0), ("BTC", "b", "X", T0, 40.0),
             ("BTC", "c", "X", T0 + 400 * MS, 300.0)]).with_columns(pl.lit(0).alias("incident"))
    t = {r["exchange"]: r for r in inc.lag_table(g).iter_rows(named=True)}
    assert t["b"]["first"] and t["b"]["relation"] == "first" and t["b"]["lag_ms"] == 0
    assert t["a"]["lag_ms"] == pytest.approx(100.0)
    assert t["a"]["lag_uncertainty_ms"] == pytest.approx(50.0)       # hypot(30, 40)
    assert t["a"]["relation"] == "later"
    assert t["c"]["lag_uncertainty_ms"] == pytest.approx(math.hypot(300, 40))
    assert t["c"]["relation"] == "later"                              # 400 ms > 302.7 ms
    # a coarse venue whose onset comes earliest is not the yardstick: it is simultaneous, lag < 0
    g3 = _on([("BTC", "band", "X", T0 - 300 * MS, 1000.0), ("BTC", "lvl", "X", T0, 50.0),
              ("BTC", "lvl2", "X", T0 + 500 * MS, 50.0)]).with_columns(pl.lit(0).alias("incident"))
    t3 = {r["exchange"]: r for r in inc.lag_table(g3).iter_rows(named=True)}
    assert t3["lvl"]["first"] and not t3["band"]["first"]
    assert t3["band"]["relation"] == "simultaneous" and t3["band"]["lag_ms"] == pytest.approx(-300)
    assert t3["lvl2"]["relation"] == "later" and t3["lvl2"]["lag_uncertainty_ms"] == pytest.approx(math.hypot(50, 50))
    # lag no larger than its uncertainty is simultaneous
    g = g.with_columns(pl.when(pl.col("exchange") == "c").then(T0 + 250 * MS).otherwise(pl.col("onset_ts"))
                       .alias("onset_ts"))
    t = {r["exchange"]: r for r in inc.lag_table(g).iter_rows(named=True)}
    assert t["c"]["relation"] == "simultaneous"


def _rows(spec):
    cols = {"exchange": pl.Utf8, "symbol": pl.Utf8, "event_id": pl.Utf8, "onset_ts": pl.Int64,
            "lag_ms": pl.Float64, "lag_uncertainty_ms": pl.Float64, "relation": pl.Utf8, "label": pl.Utf8,
            "first": pl.Boolean}
    return pl.DataFrame(spec, schema=cols, orient="row")


def test_finding_sentence_from_rows():
    rows = _rows([("binance-futures", "BTCUSDT", "e1", T0, 0.0, 40.0, "first", "synchronized_withdrawal", True),
                  ("okx-swap", "BTC-USDT-SWAP", "e2", T0 + 180 * MS, 180.0, 60.0, "later",
                   "synchronized_withdrawal", False),
                  ("coinbase", "BTC-USD", None, None, None, None, "none", None, False)])
    assert inc.finding(rows) == ("Makers on binance-futures BTCUSDT pulled first, okx-swap BTC-USDT-SWAP followed "
                                 "180 +-60 ms later, coinbase BTC-USD did not pull.")
    rows = _rows([("a", "X", "e1", T0, 0.0, 40.0, "first", "one_sided_pull", True),
                  ("b", "Y", "e2", T0 + 30 * MS, 30.0, 60.0, "simultaneous", "synchronized_withdrawal", False),
                  ("c", "Z", "e3", T0 + 900 * MS, 900.0, 60.0, "later", "consumption", False)])
    s = inc.finding(rows)
    assert s.startswith("Makers on a X, b Y pulled at the same time") and "30 ms apart, +-60 ms" in s
    assert "cannot be told" in s
    assert "c Z followed 900 +-60 ms later (lost depth (consumption))" in s
    one = _rows([("a", "X", "e1", T0, 0.0, 40.0, "first", "synchronized_withdrawal", True)])
    assert inc.finding(one) == "Makers on a X pulled first (the only venue with an event)."


def test_finding_never_calls_a_collapse_without_trades_a_pull():
    """depth_collapse (no trade data covers the window): the depth left, the cause is not known."""
    rows = _rows([("a", "X", "e1", T0, 0.0, 40.0, "first", "depth_collapse", True),
                  ("b", "Y", "e2", T0 + 900 * MS, 900.0, 60.0, "later", "depth_collapse", False)])
    s = inc.finding(rows)
    assert "pull" not in s
    assert s == ("Makers on a X lost depth (depth collapse) first, "
                 "b Y followed 900 +-60 ms later (lost depth (depth collapse)).")


# ---- clock terms on a small synthetic store ------------------------------------------------------

def _book(store: Store, ex: str, sy: str, ts: np.ndarray, local: np.ndarray | None):
    n = len(ts)
    df = pl.DataFrame({"ts": ts, "local_ts": local if local is not None else [None] * n,
                       "seq": np.arange(n), "is_snapshot": [False] * n, "side": ["bid"] * n,
                       "price": np.full(n, 1000), "size": np.arange(n) % 7 + 1})
    store.write_partitioned("book_updates", conform("book_updates", df), ex, sy, "p0")
    store.save_instrument(Instrument(ex, sy, 0, 0, n))


def test_clock_profile_batching_offset_and_unsynced(store_dir):
    store = Store(store_dir)
    rng = np.random.default_rng(0)
    ts = T0 + np.arange(0, 600) * 250 * MS                   # 250 ms batches
    lat = (20 + rng.integers(0, 10, ts.size)) * MS           # 20..29 ms latency
    _book(store, "v", "A", ts, ts - 300 * MS + lat)          # exchange clock 300 ms ahead
    c = inc.clock_profile(store, "v", "A", int(ts[300]))
    assert c.data_kind == "book" and c.batch_ms == pytest.approx(250.0) and c.has_local
    assert -280 <= c.offset_ms <= -270                       # -300 + median latency
    assert 0 < c.clock_ms <= 9                               # latency dispersion only
    assert c.skew_ms is None                                 # no trades
    _book(store, "w", "B", ts, None)
    c = inc.clock_profile(store, "w", "B", int(ts[300]))
    assert c.offset_ms == 0 and c.clock_ms == inc.UNSYNCED_CLOCK_MS and not c.has_local


# ---- bad input ------------------------------------------------------------------------------------

def test_build_incidents_empty_store_errors(store_dir):
    with pytest.raises(ForensicsError, match="no level or band data"):
        inc.build_incidents(Store(store_dir))


def test_build_incidents_no_events_writes_nothing(store_dir):
    store = Store(store_dir)
    _book(store, "v", "BTCUSDT", T0 + np.arange(100) * 100 * MS, None)
    out = inc.build_incidents(store)
    assert out.height == 0 and list(out.columns[:2]) == ["exchange", "symbol"]
    assert store.files("incidents") == []
    r = CliRunner().invoke(cli, ["incidents", "--store", str(store_dir)])
    assert r.exit_code == 0 and "no incidents" in r.output
    r = CliRunner().invoke(cli, ["incidents", "--store", str(store_dir), "report", "--id", "1"])
    assert r.exit_code == 1 and "no incidents stored" in r.output


def test_cli_bad_mapping_file_and_window(store_dir, tmp_path):
    store = Store(store_dir)
    _book(store, "v", "BTCUSDT", T0 + np.arange(100) * 100 * MS, None)
    bad = tmp_path / "map.toml"
    bad.write_text('[assets]\n\nBTCUSDT = [1, 2]\n')
    r = CliRunner().invoke(cli, ["incidents", "--store", str(store_dir), "--mapping", str(bad)])
    assert r.exit_code == 1 and f"{bad}:3:" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["incidents", "--store", str(store_dir), "--window", "0s"])
    assert r.exit_code == 1 and "--window" in r.output


# ---- simulated multi-venue incident end to end ----------------------------------------------------

@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    from forensics.sim_multivenue import Scenario, VenueSpec, run_scenario
    d = tmp_path_factory.mktemp("incidents_e2e")
    venues = [
        VenueSpec("binance-futures", "BTCUSDT", "binance_capture", 100, skew_ms=420.0),
        VenueSpec("okx-swap", "BTC-USDT-SWAP", "tardis", 200, skew_ms=-650.0, trade_skew_ms=25.0, latency_ms=12.0,
                  contract_size=0.01, tardis_exchange="okex-swap"),
        VenueSpec("coinbase", "BTC-USD", "tardis", 300, skew_ms=180.0, latency_ms=25.0, tardis_exchange="coinbase"),
        VenueSpec("binance-futures", "BTCUSDC", "bookdepth", skew_ms=20.0, band_every_s=2.0),
    ]
    sc = Scenario(seed=3, venues=venues, lags_s=[0.9, 0.0, 1.7, 0.4], minutes=3.0, at_s=100.0)
    return run_scenario(sc, d)


def test_e2e_first_venue_lags_within_uncertainty(e2e):
    from forensics.sim_multivenue import score
    df = e2e.incidents
    assert df["incident_id"].n_unique() == 1
    assert df.height == 4 and df["event_id"].null_count() == 0
    first = df.filter(pl.col("first")).row(0, named=True)
    assert (first["exchange"], first["symbol"]) == ("okx-swap", "BTC-USDT-SWAP")
    s = score(e2e)
    assert s["first_ok"]
    for v in s["venues"]:
        assert v["err_ms"] <= v["unc_ms"], v
    rows = {(r["exchange"], r["symbol"]): r for r in df.iter_rows(named=True)}
    lvl = rows[("binance-futures", "BTCUSDT")]
    # skews were removed through the receive times: the estimate is near the true 900 ms, not 900 + 420 + 650
    assert abs(lvl["lag_ms"] - 900) < lvl["lag_uncertainty_ms"]
    assert lvl["batch_ms"] == pytest.approx(100, abs=20)
    assert rows[("coinbase", "BTC-USD")]["batch_ms"] == pytest.approx(300)
    assert rows[("okx-swap", "BTC-USDT-SWAP")]["skew_ms"] is not None
    band = rows[("binance-futures", "BTCUSDC")]
    assert band["data_kind"] == "bands" and band["clock_ms"] == inc.UNSYNCED_CLOCK_MS
    assert band["timing_uncertainty_ms"] >= 900          # +- half of its ~2 s sampling step
    assert band["relation"] == "simultaneous"            # 400 ms true lag, far inside its uncertainty
    # contracts converted: OKX (0.01 BTC contracts) removed about as much base as the others
    okx, cb = rows[("okx-swap", "BTC-USDT-SWAP")], rows[("coinbase", "BTC-USD")]
    assert okx["contract_base"] == 0.01
    assert 0.5 < okx["removed_base"] / cb["removed_base"] < 2
    assert okx["removed_quote"] == pytest.approx(okx["removed_base"] * 120_000, rel=0.05)
    assert sum(r["removed_share"] for r in df.iter_rows(named=True)) == pytest.approx(1.0)


def test_e2e_sql_query_and_view(e2e):
    from forensics.sql import Session
    with Session(e2e.store) as s:
        q = s.run_query("cross_venue_lag", {"asset": "btc"})
        assert q.height == 4 and q["relation"].to_list().count("first") == 1
        assert q.filter(pl.col("first"))["exchange"][0] == "okx-swap"
        assert q["lag_ms"].to_list() == sorted(q["lag_ms"].to_list())
        v = s.df("SELECT exchange, symbol, incident_id, onset_ts, start_ts FROM incidents")
        assert v.height == 4 and v.schema["onset_ts"] == pl.Datetime("ns")
        assert s.run_query("cross_venue_lag", {"relation": "later"}).height == 2


def test_e2e_report_page(e2e, tmp_path):
    r = CliRunner().invoke(cli, ["incidents", "--store", str(e2e.store.root), "report", "--id", "1",
                                 "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "rep" / "incident.json").read_text())
    # the band-only venue (+-1 s) cannot be ordered against the first; the level venues can
    assert doc["finding"].startswith("Makers on okx-swap BTC-USDT-SWAP, binance-futures BTCUSDC pulled at the same time")
    assert "binance-futures BTCUSDT followed" in doc["finding"] and "coinbase BTC-USD followed" in doc["finding"]
    assert doc["finding"] == inc.finding(inc.read_incidents(e2e.store))
    assert len(doc["venues"]) == 4 and [v["relation"] for v in doc["venues"]].count("first") == 1
    assert (tmp_path / "rep" / "incident.png").stat().st_size > 10_000
    md = (tmp_path / "rep" / "incident.md").read_text()
    assert doc["finding"] in md and "| okx-swap BTC-USDT-SWAP | first |" in md
    # rerunning the grouping replaces the stored rows (no duplicates)
    r = CliRunner().invoke(cli, ["incidents", "--store", str(e2e.store.root)])
    assert r.exit_code == 0, r.output
    assert inc.read_incidents(e2e.store).height == 4
    # a range that holds no event leaves the stored incidents outside it alone
    t_end = int(inc.read_incidents(e2e.store)["start_ts"].max())
    assert inc.build_incidents(e2e.store, ts_from=t_end + 60 * S).height == 0
    assert inc.read_incidents(e2e.store).height == 4


def test_one_venue_store(e2e, tmp_path):
    """A store with one venue of the asset: an incident of one venue."""
    import shutil
    st = Store(tmp_path / "one")
    for t in ("book_updates", "trades", "events", "depth", "book_top", "level_changes", "instruments"):
        src = e2e.store.root / t / "exchange=binance-futures" / "symbol=BTCUSDT"
        if src.exists():
            shutil.copytree(src, st.root / t / "exchange=binance-futures" / "symbol=BTCUSDT")
    shutil.copytree(e2e.store.root / "manifest", st.root / "manifest")  # raw parts are visible with their sources
    out = inc.build_incidents(st)
    assert out.height == 1 and out["first"][0] and out["relation"][0] == "first"
    assert inc.finding(out).endswith("(the only venue with an event).")


# ---- real data: the clock terms on a real Tardis sample ------------------------------------------

_REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
#: ../shared next to the repository (CI); one level up as well for worktrees under a folder
FORMATS = next((p / "shared" / "formats" for p in (_REPO.parent, _REPO.parent.parent)
                if (p / "shared" / "formats").is_dir()), _REPO.parent / "shared" / "formats")


@pytest.mark.skipif(not (FORMATS / "tardis-incremental_book_L2-deribit.csv").exists(),
                    reason="shared/formats (real format samples) not present")
def test_clock_profile_on_real_tardis_sample(store_dir):
    """Deribit BTC-PERPETUAL as Tardis recorded it: receive times 100+ ms after exchange times,
    amounts in USD (inverse: 1 USD per unit), asset BTC."""
    from forensics.ingest import ingest
    ingest([FORMATS / "tardis-incremental_book_L2-deribit.csv"], store=store_dir)
    store = Store(store_dir)
    (ex, sy), = store.instruments_in("book_updates")
    assert inc.asset_of(sy) == "BTC" and inc.contract_of(ex, sy).quote == 1.0
    raw = pl.read_csv(FORMATS / "tardis-incremental_book_L2-deribit.csv")
    lag_ms = (raw["local_timestamp"] - raw["timestamp"]) / 1000
    c = inc.clock_profile(store, ex, sy, int(raw["timestamp"][0]) * 1000)
    assert c.has_local and c.offset_ms == pytest.approx(float(lag_ms.median()), abs=0.01)
    assert c.offset_ms > 0 and c.clock_ms >= 0
    assert c.data_kind == "book" and c.batch_ms is None    # a snapshot only: no batching seen


# ---- the vectorised grouping and lag table against a plain reference ----------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402


def _reference(rows, window_ns):
    """Plain loops: per asset in onset order a gap > window starts an incident; the venue's
    earliest event represents it; reference = earliest onset + uncertainty."""
    out = []
    by_asset = {}
    for r in sorted(rows, key=lambda r: (r[0], r[3], r[1], r[2])):
        by_asset.setdefault(r[0], []).append(r)
    for asset in sorted(by_asset):
        groups, cur = [], []
        for r in by_asset[asset]:
            if cur and r[3] - cur[-1][3] > window_ns:
                groups.append(cur)
                cur = []
            cur.append(r)
        groups.append(cur)
        for g in groups:
            venues = {}
            for r in g:
                venues.setdefault((r[1], r[2]), r)
            vs = sorted(venues.values(), key=lambda r: (r[3], r[1], r[2]))
            ref = min(vs, key=lambda r: r[3] + round(r[4] * MS))
            for r in vs:
                lag = (r[3] - ref[3]) / MS
                u = r[4] if r is ref else math.hypot(r[4], ref[4])
                rel = "first" if r is ref else ("simultaneous" if abs(lag) <= u else "later")
                out.append((asset, r[1], r[2], r[3], lag, round(u, 6), rel))
    return sorted(out)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["BTC", "ETH"]), st.sampled_from(["a", "b", "c"]), st.just("X"),
                          st.integers(0, 30_000).map(lambda ms: T0 + ms * MS),
                          st.sampled_from([10.0, 55.5, 200.0, 1000.0])), min_size=1, max_size=25,
                unique_by=lambda r: (r[0], r[1], r[3])),
       st.sampled_from([0.5, 2.0, 5.0]))
def test_grouping_and_lags_match_reference(rows, window_s):
    g = inc.group_onsets(_on(rows), window_s)
    g = inc.lag_table(g.filter(pl.col("rank") == 1))
    got = sorted((r["asset"], r["exchange"], r["symbol"], r["onset_ts"], r["lag_ms"], round(r["lag_uncertainty_ms"], 6),
                  r["relation"]) for r in g.iter_rows(named=True))
    assert got == _reference(rows, int(window_s * S))


def test_cli_eval_one_seed():
    """`forensics incidents eval` runs the evaluation and prints its figures (one seed here;
    the benchmark runs 20)."""
    r = CliRunner().invoke(cli, ["incidents", "eval", "--seeds", "1", "--first-seed", "7"])
    assert r.exit_code == 0, r.output
    assert "scenarios: 1; venue events found 4/4" in r.output
    assert "lag error within the stated uncertainty: " in r.output and "tardis" in r.output
