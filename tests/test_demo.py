"""The README's main job, end to end on the shipped sample_data (what `make demo` runs)."""
import json

from click.testing import CliRunner

from forensics.cli import cli
from forensics.demo import SAMPLE_DIR as SAMPLE
from forensics.timeutil import parse_time


def test_demo_finds_the_0513_withdrawal_and_writes_the_report(tmp_path):
    # brackets: store paths must never be read as glob patterns
    store, out = tmp_path / "store [1]", tmp_path / "report"
    res = CliRunner().invoke(cli, ["demo", "--store", str(store), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "synchronized_withdrawal" in res.output
    doc = json.loads((out / "report.json").read_text())
    assert doc["exchange"] == "binance-futures" and doc["symbol"] == "BTCUSDT"
    assert doc["data_kind"] == "book" and doc["window"]["tz"] == "Asia/Shanghai"
    by_label = {e["label"]: e for e in doc["events"]}
    wd = by_label["synchronized_withdrawal"]
    # the scripted pull is at 21:13:00 UTC = 05:13 UTC+8 (sample_data/labels.json)
    truth = {i["type"]: i for i in json.loads((SAMPLE / "labels.json").read_text())["incidents"]}
    assert truth["withdrawal"]["start_ts_ns"] == parse_time("2025-10-10T21:13:00Z")
    assert abs(parse_time(wd["start_ts"]) - truth["withdrawal"]["start_ts_ns"]) < 1_000_000_000
    assert wd["sides"] == "both" and wd["confidence"] >= 0.7
    assert abs(parse_time(by_label["consumption"]["start_ts"]) - truth["consumption"]["start_ts_ns"]) < 2_000_000_000
    for name in ("report.md", "report.html", "depth.png"):
        assert (out / name).stat().st_size > 0
    # idempotent: a second run re-ingests nothing
    res2 = CliRunner().invoke(cli, ["demo", "--store", str(store), "--out", str(out)])
    assert res2.exit_code == 0 and "already ingested" in res2.output
