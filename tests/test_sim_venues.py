"""The simulator's market through a non-Binance reader: its Binance capture converted to an OKX
capture (forensics.sim_venues), then ingest -> depth -> detect -> report on okx-swap, and the
accuracy evaluation scored through the OKX reader."""
import json

import polars as pl
import pytest
from click.testing import CliRunner

from forensics.cli import cli
from forensics.sim_venues import okx_inst, run_one_venue, to_okx
from forensics.store import Store

EX, SY = "okx-swap", "BTC-USDT-SWAP"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim_okx")
    r = CliRunner()
    out = r.invoke(cli, ["simulate", "--seed", "3", "--out", str(d / "sim"), "--minutes", "5",
                         "--incident", "withdrawal@150s"])
    assert out.exit_code == 0, out.output
    labels = json.loads((d / "sim" / "labels.json").read_text())
    capture = d / "sim" / labels["files"]["capture"]
    stats = to_okx(capture, d / "okx.jsonl.gz")
    return {"dir": d, "labels": labels, "capture": capture, "okx": d / "okx.jsonl.gz", "stats": stats}


def test_okx_capture_end_to_end(sim):
    d, r = sim["dir"], CliRunner()
    st = str(d / "store")
    out = r.invoke(cli, ["ingest", "--store", st, str(sim["okx"])])
    assert out.exit_code == 0, out.output
    assert "[okx] okx-swap/BTC-USDT-SWAP" in out.output and "0 gaps" in out.output
    n = sim["stats"]["messages"] + sim["stats"]["snapshots"]
    assert f"OKX checksums: {n:,} of {n:,} matched" in out.output
    for cmd in (["depth", "--every", "1s"], ["detect", "--format", "csv"]):
        out = r.invoke(cli, [*cmd, "--store", st])
        assert out.exit_code == 0, out.output
    events = Store(st).scan("events", EX, SY, ts_column="start_ts").collect()
    assert "synchronized_withdrawal" in events["label"].to_list()
    inc = next(i for i in sim["labels"]["incidents"] if i["type"] == "withdrawal")
    t = events.filter(pl.col("label") == "synchronized_withdrawal")["start_ts"][0]
    at = pl.from_epoch(pl.Series([t]), time_unit="ns").dt.strftime("%Y-%m-%dT%H:%M:%SZ")[0]
    out = r.invoke(cli, ["report", "--store", st, "--at", at, "--window", "4m", "--out", str(d / "rep")])
    assert out.exit_code == 0, out.output
    md = (d / "rep" / "report.md").read_text()
    assert "okx-swap" in md and "BTC-USDT-SWAP" in md
    # the same market read from the Binance capture gives the same book rows and events
    out = r.invoke(cli, ["ingest", "--store", str(d / "bn"), str(sim["capture"])])
    assert out.exit_code == 0, out.output
    a = Store(st).scan("book_updates", EX, SY).collect().sort("ts", "seq")
    b = Store(d / "bn").scan("book_updates", "binance-futures", "BTCUSDT").collect().sort("ts", "seq")
    # (within one message the OKX reader writes removals first: compare per message)
    cols = ["ts", "side", "price", "size", "is_snapshot"]
    assert a.select(cols).sort(cols).equals(b.select(cols).sort(cols))
    out = r.invoke(cli, ["detect", "--store", str(d / "bn"), "--format", "csv"])
    assert out.exit_code == 0, out.output
    ev_b = Store(d / "bn").scan("events", "binance-futures", "BTCUSDT", ts_column="start_ts").collect()
    assert sorted(ev_b["label"].to_list()) == sorted(events["label"].to_list())
    assert inc["type"] == "withdrawal"


def test_accuracy_evaluation_through_okx(tmp_path):
    r = run_one_venue(2, tmp_path, types=("withdrawal", "consumption"))
    a = r.attribution
    assert a["ingest_gaps"] == 0 and a["rows"] > 1000
    assert a["row_exact"] > 0.95
    assert any(n.startswith("OKX checksums") and "of" in n for n in a["ingest_notes"])
    labels = {(m["incident"] or {}).get("type"): (m["event"] or {}).get("label") for m in r.matches}
    assert labels.get("withdrawal") == "synchronized_withdrawal"
    assert labels.get("consumption") == "consumption"


def test_okx_inst_names():
    assert okx_inst("BTCUSDT") == "BTC-USDT-SWAP" and okx_inst("ETHUSDC") == "ETH-USDC-SWAP"
