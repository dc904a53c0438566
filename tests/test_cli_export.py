"""`--format csv|json|parquet` of `forensics depth` and `forensics detect` go through the one
export path `forensics sql` uses (forensics.sql.export): json is JSON Lines there too, files are
written atomically, the format follows --out's suffix when --format is not given."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from forensics.cli import cli


@pytest.fixture(scope="module")
def sim_store(sim_store, tmp_path_factory):
    """A writable copy of the session's simulated store (tests/conftest.py): detect writes events."""
    return Path(shutil.copytree(sim_store, tmp_path_factory.mktemp("export") / "store"))


def _lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def test_depth_json_is_json_lines_with_the_csv_rows(sim_store, tmp_path):
    r = CliRunner()
    args = ["depth", "--store", str(sim_store), "--every", "1s", "--bands", "0.1,1", "--no-write"]
    out_j, out_c = r.invoke(cli, args + ["--format", "json"]), r.invoke(cli, args + ["--format", "csv"])
    assert out_j.exit_code == 0 and out_c.exit_code == 0, out_j.output + out_c.output
    objs = _lines(out_j.stdout)
    csv = pl.read_csv(out_c.stdout.encode(), infer_schema_length=0)
    assert len(objs) == csv.height > 100
    assert [o["time"] for o in objs] == csv["time"].to_list()
    assert [None if o["best_bid"] is None else str(o["best_bid"]) for o in objs] == csv["best_bid"].to_list()
    f = tmp_path / "depth.jsonl"            # format from the suffix, written atomically
    assert r.invoke(cli, args + ["--out", str(f)]).exit_code == 0
    assert len(f.read_text().splitlines()) == csv.height and not list(tmp_path.glob(".*.tmp"))
    p = tmp_path / "depth.parquet"
    assert r.invoke(cli, args + ["--out", str(p)]).exit_code == 0
    assert pl.read_parquet(p).height == csv.height


def test_detect_json_csv_parquet_agree(sim_store, tmp_path):
    r = CliRunner()
    args = ["detect", "--store", str(sim_store)]
    out_j, out_c = r.invoke(cli, args + ["--format", "json"]), r.invoke(cli, args + ["--format", "csv"])
    assert out_j.exit_code == 0 and out_c.exit_code == 0, out_j.output + out_c.output
    objs = _lines(out_j.stdout)
    csv = pl.read_csv(out_c.stdout.encode())
    assert [o["label"] for o in objs] == csv["label"].to_list() == ["synchronized_withdrawal"]
    assert objs[0]["start_ts"] == csv["start_ts"][0] and json.loads(objs[0]["evidence"])
    p = tmp_path / "events.parquet"
    out = r.invoke(cli, args + ["--out", str(p)])
    assert out.exit_code == 0 and "1 event(s) written" in out.output
    assert pl.read_parquet(p)["start_ts"].to_list() == csv["start_ts"].to_list()
    out = r.invoke(cli, args + ["--format", "parquet"])
    assert out.exit_code != 0 and "--format parquet needs --out FILE" in out.output
