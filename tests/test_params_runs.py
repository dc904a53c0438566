"""Parameters in one place (forensics.params: TOML files, --set, CLI help from the dataclasses)
and runs recorded with their results (forensics.runs: the runs table, run_id on events, a run
reproduced from its stored parameters gives identical events; serial, --workers and s3://)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from forensics import params as P
from forensics.cli import cli
from forensics.classify import Thresholds
from forensics.depth_params import DepthParams
from forensics.detect import DetectParams
from forensics.report.params import ReportParams
from forensics.store import Store
from tests.s3server import s3_env, s3_server  # noqa: F401  (fixtures)


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# ---- parameters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [DetectParams, Thresholds, ReportParams, DepthParams])
def test_every_parameter_has_a_reason(cls):
    infos = P.field_infos(cls)
    assert infos and all(fi.reason for fi in infos if not fi.nested), \
        [fi.name for fi in infos if not fi.reason and not fi.nested]


def test_one_default_band_list():
    from forensics.book import DEFAULT_BANDS
    assert tuple(DetectParams().bands) == tuple(DEFAULT_BANDS) == DepthParams().bands


def test_toml_round_trip_gives_the_defaults(tmp_path):
    text = P.to_toml(P.defaults(("detect", "classify", "report")), "header line")
    f = tmp_path / "p.toml"
    f.write_text(text)
    got = P.load_file(f)
    assert P.build(got, "detect") == DetectParams() and P.build(got, "report") == ReportParams()
    assert text.startswith("# header line\n") and "# a fall to half the baseline" in text


def test_json_round_trip_is_typed():
    p = DetectParams(bands=("0.5", "1"), tolerance_ns=150_000_000, depth_limit=None,
                     thresholds=Thresholds(trade_min=0.7))
    back = P.build(P.from_json(P.to_json(P.flatten(p, "detect"))), "detect")
    assert back == p and isinstance(back.bands, tuple) and back.thresholds.trade_min == 0.7


@pytest.mark.parametrize("body, expect", [
    ("[detect]\ndrop_fract = 0.4\n", ["unknown key 'drop_fract'", "did you mean 'drop_frac'"]),
    ("[detect]\ndrop_frac = \"half\"\n", ["drop_frac = 'half'", "expected a number"]),
    ("[detect]\nflow = 1\n", ["flow = 1", "expected true/false"]),
    ("[detect]\nbands = 0.5\n", ["bands", "expected a list of a string"]),
    ("[detekt]\ndrop_frac = 0.4\n", ["unknown section [detekt]", "[detect], [classify]"]),
    ("[report]\nlow_confidence = 0.7\n", ["unknown section [report]"]),       # detect does not read it
    ("[detect\ndrop_frac = 0.4\n", ["not valid TOML"]),
    ("[detect]\nthresholds = 1\n", ["unknown key 'thresholds'"]),             # nested: its own section
])
def test_bad_params_file_is_one_clear_error(tmp_path, body, expect):
    f = tmp_path / "bad.toml"
    f.write_text(body)
    r = _invoke("detect", "--params", f, "--show-params")
    assert r.exit_code == 1, r.output
    assert str(f) in r.output and "Traceback" not in r.output
    for e in expect:
        assert e in r.output, (e, r.output)


def test_missing_params_file(tmp_path):
    r = _invoke("detect", "--params", tmp_path / "nope.toml", "--show-params")
    assert r.exit_code == 1 and "cannot read parameters file" in r.output


def test_overrides_defaults_file_set_options(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[detect]\ndrop_frac = 0.4\nwindow_s = 3.0\nbands = [0.5, 1]\n[classify]\ntrade_min = 0.7\n")
    r = _invoke("detect", "--params", f, "--set", "detect.window_s=2", "--set", "classify.trade_min=0.65",
                "--drop", "0.45", "--tolerance", "150ms", "--no-flow", "--show-params")
    assert r.exit_code == 0, r.output
    got = P.check_sections(__import__("tomllib").loads(r.output), "output")
    assert got["detect"]["drop_frac"] == 0.45            # option over file
    assert got["detect"]["window_s"] == 2.0              # --set over file
    assert got["detect"]["bands"] == ("0.5", "1")        # file over default (numbers read as band text)
    assert got["detect"]["tolerance_ns"] == 150_000_000 and got["detect"]["flow"] is False
    assert got["classify"]["trade_min"] == 0.65
    assert got["detect"]["baseline_s"] == DetectParams().baseline_s
    assert "(default 0.5)" in r.output                   # a changed value names its default
    bad = _invoke("detect", "--set", "detect.drop_frac=lots", "--show-params")
    assert bad.exit_code == 1 and "--set detect.drop_frac=lots" in bad.output and "expected a number" in bad.output
    bad = _invoke("detect", "--set", "drop_frac=0.4", "--show-params")
    assert bad.exit_code == 1 and "SECTION.KEY=VALUE" in bad.output


def test_params_command_prints_a_file_to_start_from(tmp_path):
    r = _invoke("params", "--command", "report")
    assert r.exit_code == 0, r.output
    f = tmp_path / "start.toml"
    f.write_text(r.output)
    assert set(P.load_file(f)) == {"detect", "classify", "report"}
    r2 = _invoke("params", "--params", f)       # the detect command's sections only
    assert r2.exit_code == 1 and "unknown section [report]" in r2.output


def test_help_defaults_come_from_the_dataclasses(monkeypatch):
    r = _invoke("detect", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    reason = P.field_info("detect", "drop_frac").reason
    assert f"detect.drop_frac = {DetectParams().drop_frac}: {reason}" in text
    assert "detect.bands = " + ",".join(DetectParams().bands) in text
    r = _invoke("report", "--help")
    assert f"report.window_s = {ReportParams().window_s}" in " ".join(r.output.split())
    r = _invoke("depth", "--help")
    text = " ".join(r.output.split())
    reason = P.field_info("depth", "bands").reason
    assert f"depth.bands = {','.join(DepthParams().bands)}: {reason}" in text, text
    assert f"depth.every = {DepthParams().every}: " in text and "depth.source = auto: " in text


def test_depth_section(tmp_path):
    """[depth]: printed by `forensics params --command depth`, read back to the defaults, layered
    like the others (file < --set < options), checked (an unknown source names the choices)."""
    r = _invoke("params", "--command", "depth")
    assert r.exit_code == 0, r.output
    f = tmp_path / "depth.toml"
    f.write_text(r.output)
    got = P.load_file(f, ("depth",))
    assert set(got) == {"depth"} and P.build(got, "depth") == DepthParams()
    assert "# grid step: 1 s resolves a cliff" in r.output
    from forensics.book import DEFAULT_EVERY_NS
    assert DepthParams().every_ns == DEFAULT_EVERY_NS == 1_000_000_000
    f.write_text('[depth]\nevery = "250ms"\nbands = [0.5, 2]\nsource = "book"\n')
    r = _invoke("depth", "--params", f, "--set", "depth.every=500ms", "--bands", "1,0.25", "--show-params")
    assert r.exit_code == 0, r.output
    eff = P.check_sections(__import__("tomllib").loads(r.output), "output")["depth"]
    assert eff == {"every": "500ms", "bands": ("0.25", "1"), "source": "book"}
    f.write_text('[depth]\nsource = "levels"\n')
    bad = _invoke("depth", "--params", f, "--store", tmp_path / "none")
    assert bad.exit_code == 1 and "source must be one of auto, book, bands" in bad.output
    bad = _invoke("detect", "--params", f, "--show-params")      # [depth] is the depth command's
    assert bad.exit_code == 1 and "unknown section [depth]" in bad.output


def test_depth_params_file_sets_the_grid(capture, tmp_path):
    """A --params file's grid step and bands are the ones the depth series is computed with; the
    command's own option wins over the file."""
    store = _ingested(tmp_path / "store", capture)
    f = tmp_path / "d.toml"
    f.write_text('[depth]\nevery = "500ms"\nbands = ["0.5", "2"]\n')
    out = tmp_path / "depth.csv"

    def grid(*opts):
        r = _invoke("depth", "--store", store, "--params", f, "--no-write", "--out", out, *opts)
        assert r.exit_code == 0, r.output
        df = pl.read_csv(out)
        return df, set(df["time"].str.to_datetime(time_zone="UTC").dt.epoch("ms").diff().drop_nulls().to_list())

    df, steps = grid()
    assert {"bid_qty_0.5", "bid_qty_2"} <= set(df.columns) and "bid_qty_1" not in df.columns
    assert steps == {500} and df.height > 100
    assert grid("--every", "2s")[1] == {2000}


# ---- runs ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    from forensics import simulate as sim
    cfg = sim.build_config(seed=5, minutes=3.5, incidents=["withdrawal@90s:sell", "consumption@150s:buy"])
    return sim.simulate(cfg, tmp_path_factory.mktemp("sim"))


def _ingested(root, capture):
    from forensics.ingest import ingest
    ingest([capture.files["capture"]], store=Store(root))
    return str(root)


def _events(store) -> pl.DataFrame:
    con = Store(store).connect()
    try:
        return con.sql("SELECT * EXCLUDE (date) FROM events ORDER BY start_ts").pl()
    finally:
        con.close()


def _stored_events(st: Store) -> pl.DataFrame:
    """The events parts as stored (stored units, no partition columns)."""
    return pl.concat([st.scan("events", ex, sy, ts_column="start_ts").collect()
                      for ex, sy in st.instruments_in("events")], how="diagonal_relaxed")


def _same_events(a: pl.DataFrame, b: pl.DataFrame) -> None:
    a, b = a.drop("run_id").sort("start_ts"), b.drop("run_id").sort("start_ts")
    assert a.height > 0 and a.columns == b.columns
    assert a.equals(b), [c for c in a.columns if not a[c].equals(b[c])]


def test_detect_records_its_run_and_the_run_reproduces_its_events(capture, tmp_path):
    store = _ingested(tmp_path / "store", capture)
    f = tmp_path / "p.toml"
    f.write_text("[detect]\ndrop_frac = 0.45\n[classify]\ntrade_min = 0.62\n")
    r = _invoke("detect", "--store", store, "--params", f, "--window", "4s", "--from", "2025-10-10T20:50:00Z",
                "--no-evidence")
    assert r.exit_code == 0, r.output
    ev = _events(store)
    run_id = ev["run_id"].unique().to_list()
    assert len(run_id) == 1 and f"run {run_id[0]}" in r.output
    # the runs table, from `forensics sql`
    q = _invoke("sql", "--store", store, "--format", "json",
                "select r.run_id, r.command, r.version, r.events, r.ts_from_ns, r.partitions, r.params, "
                "count(e.event_id) as n from runs r join events e using (run_id) group by all")
    assert q.exit_code == 0, q.output
    row = json.loads(q.output.splitlines()[0])
    assert row["run_id"] == run_id[0] and row["command"] == "detect" and row["n"] == ev.height == row["events"]
    assert json.loads(row["partitions"]) == ["binance-futures/BTCUSDT"]
    stored = P.from_json(row["params"])
    assert stored["detect"]["drop_frac"] == 0.45 and stored["detect"]["window_s"] == 4.0
    assert stored["classify"]["trade_min"] == 0.62
    # the run's parameters as a --params file; a fresh store detects the same events with it
    out = _invoke("params", "--store", store, "--run", run_id[0])
    assert out.exit_code == 0, out.output
    rerun_file = tmp_path / "run.toml"
    rerun_file.write_text(out.output)
    repro = next(ln for ln in out.output.splitlines() if ln.startswith("# reproduce: "))
    args = repro[len("# reproduce: forensics "):].replace("THIS_FILE", str(rerun_file)).split()
    other = _ingested(tmp_path / "other", capture)
    r2 = _invoke(*args, "--store", other, "--no-evidence")
    assert r2.exit_code == 0, r2.output
    _same_events(ev, _events(other))
    # and the library's rerun (nothing written) gives the run's events, row for row
    from forensics.runs import rerun
    _same_events(_stored_events(Store(store)), rerun(Store(store), run_id[0]).drop("exchange", "symbol"))
    unknown = _invoke("params", "--store", store, "--run", "nope")
    assert unknown.exit_code == 1 and "no run 'nope'" in unknown.output and run_id[0] in unknown.output


def test_runs_with_workers_equal_serial(capture, tmp_path):
    serial, par = (_ingested(tmp_path / n, capture) for n in ("serial", "par"))
    assert _invoke("detect", "--store", serial, "--format", "csv").exit_code == 0
    r = _invoke("detect", "--store", par, "--workers", "2", "--format", "csv")
    assert r.exit_code == 0, r.output
    a, b = _events(serial), _events(par)
    _same_events(a, b)
    con = Store(par).connect()
    runs = con.sql("select run_id, events from runs").fetchall()
    assert len(runs) == 1 and b["run_id"].unique().to_list() == [runs[0][0]] and runs[0][1] == b.height


def test_report_json_carries_the_params_of_its_events(sample_report):
    store, res, _ = sample_report
    prm = res.json["parameters"]
    assert prm["runs"] and prm["events_without_run"] == 0
    ids = {e.get("run_id") for e in res.json["events"] if isinstance(e, dict)} - {None}
    run = prm["runs"][0]
    assert run["command"] == "report" and (not ids or ids <= {r["run_id"] for r in prm["runs"]})
    assert P.build(P.check_sections(run["params"], "report.json"), "detect") == DetectParams()
    assert prm["report"] == dataclasses.asdict(ReportParams())


def test_runs_on_s3(s3_env, capture):
    from forensics.ingest import ingest
    ingest([capture.files["capture"]], store=Store(s3_env))
    r = _invoke("detect", "--store", s3_env, "--format", "csv", "--set", "detect.drop_frac=0.45")
    assert r.exit_code == 0, r.output
    q = _invoke("sql", "--store", s3_env, "--format", "json",
                "select r.run_id, r.params, count(*) as n from events e join runs r using (run_id) group by all")
    assert q.exit_code == 0, q.output
    row = json.loads(q.output.splitlines()[0])
    assert row["n"] >= 1 and P.from_json(row["params"])["detect"]["drop_frac"] == 0.45
    from forensics.runs import rerun
    st = Store(s3_env)
    _same_events(_stored_events(st), rerun(st, row["run_id"]).drop("exchange", "symbol"))
