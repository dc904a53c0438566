"""Partition-parallel depth and detect on a Dask LocalCluster (processes, 127.0.0.1) equal the
serial run row for row, on a store of several symbols whose captures straddle midnight."""
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from forensics.cli import cli
from forensics.errors import ForensicsError
from forensics.ingest import ingest
from forensics.parallel import Partition, day_partitions, run_partitions
from forensics.simulate import Incident, SimConfig, simulate
from forensics.store import Store
from forensics.timeutil import parse_time
from tests.s3server import s3_env, s3_server  # noqa: F401  (fixtures)

SYMBOLS = ("AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT")


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> list[Path]:
    """Four symbols, 12 simulated minutes each from 23:54 UTC: 8 symbol-days."""
    out = []
    base = tmp_path_factory.mktemp("par")
    for i, sy in enumerate(SYMBOLS):
        # a withdrawal that for one symbol starts seconds before midnight, and a consumption after it
        incidents = (Incident("withdrawal", 240 + 38 * i, "sell"), Incident("consumption", 520, "buy"))
        cfg = SimConfig(seed=40 + i, symbol=sy, minutes=12, start_ns=parse_time("2025-10-10 23:54:00"),
                        incidents=incidents)
        simulate(cfg, base / sy)
        out.extend(sorted(p for p in (base / sy).iterdir() if p.suffix in (".gz", ".csv") and "truth" not in p.name))
    return out


def _tables(st: Store, tables) -> dict[str, pl.DataFrame]:
    con = st.connect()
    return {t: con.sql(f"SELECT * EXCLUDE (date) FROM {t} ORDER BY ALL").pl() for t in tables}


def test_partitions_are_symbol_days(captures, tmp_path):
    st = Store(tmp_path / "s")
    ingest(captures, store=st)
    parts = day_partitions(st, None, None, None, None)
    assert len(parts) == 8
    assert {p.date for p in parts} == {"2025-10-10", "2025-10-11"}


def test_parallel_depth_and_detect_equal_serial(captures, tmp_path):
    from forensics.book import compute_depth
    from forensics.detect import detect
    from forensics.parallel import parallel_depth, parallel_detect
    serial, par = Store(tmp_path / "serial"), Store(tmp_path / "par")
    for st in (serial, par):
        ingest(captures, store=st)
    for sy in SYMBOLS:
        compute_depth(serial, symbol=sy, every_ns=1_000_000_000)
    seen = []
    res = parallel_depth(par, every_ns=1_000_000_000, workers=2, progress=lambda i, n, p: seen.append((i, n, str(p))))
    # one snapshot per capture, at its start: day 2 would replay day 1, so each symbol's days are one task
    assert len(res) == 4 and [s[0] for s in seen] == list(range(1, 5))
    assert all(r.partition.date == "2025-10-10" and r.partition.date_to == "2025-10-11" for r in res)
    a, b = _tables(serial, ("depth", "book_top")), _tables(par, ("depth", "book_top"))
    for t in a:
        assert a[t].height > 0 and a[t].equals(b[t]), t
    ev_serial = detect(serial)
    ev_par = parallel_detect(par, workers=2)
    assert ev_serial.height >= 8 and set(ev_serial["symbol"]) == set(SYMBOLS)
    key = ["exchange", "symbol", "start_ts"]
    a_, b_ = ev_serial.sort(key), ev_par.sort(key)
    assert a_.equals(b_), [(c, a_[c].dtype, b_[c].dtype, [(x, y) for x, y in zip(a_[c].to_list(), b_[c].to_list()) if x != y][:2]) for c in a_.columns if not a_[c].equals(b_[c])]
    a, b = _tables(serial, ("level_changes", "events")), _tables(par, ("level_changes", "events"))
    for t in a:
        assert a[t].equals(b[t]), t


def test_a_failing_partition_is_named(tmp_path):
    def boom(part):
        if part.symbol == "B":
            raise ValueError("bad day")
        return 1
    with pytest.raises(ForensicsError, match=r"x/B 2025-01-02: ValueError: bad day"):
        run_partitions(boom, [Partition("x", "A", "2025-01-01"), Partition("x", "B", "2025-01-02")])


def test_cli_workers(captures, tmp_path):
    st = tmp_path / "cli"
    runner = CliRunner()
    r = runner.invoke(cli, ["ingest", "--store", str(st), *map(str, captures)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["depth", "--store", str(st), "--every", "1s", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert "4 partitions" in r.output
    r = runner.invoke(cli, ["detect", "--store", str(st), "--workers", "2", "--format", "csv"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["depth", "--store", str(st), "--workers", "0"])
    assert r.exit_code == 1 and "at least 1" in r.output
    r = runner.invoke(cli, ["depth", "--store", str(st), "--scheduler", "tcp://127.0.0.1:9"])
    assert r.exit_code == 1 and "cannot reach the Dask scheduler" in r.output


def test_parallel_on_s3_equals_local_serial(captures, tmp_path, s3_env):
    from forensics.book import compute_depth
    from forensics.parallel import parallel_depth
    two = [c for c in captures if c.parent.name in SYMBOLS[:2]]
    local, remote = Store(tmp_path / "local"), Store(s3_env)
    for st in (local, remote):
        ingest(two, store=st)
    for sy in SYMBOLS[:2]:
        compute_depth(local, symbol=sy, every_ns=1_000_000_000)
    assert len(parallel_depth(remote, every_ns=1_000_000_000, workers=2)) == 2
    a, b = _tables(local, ("depth", "book_top")), _tables(remote, ("depth", "book_top"))
    for t in a:
        assert a[t].height > 0 and a[t].equals(b[t]), t


def test_reports_per_event_on_workers(captures, tmp_path):
    from forensics.detect import detect
    st = Store(tmp_path / "rep")
    ingest([c for c in captures if c.parent.name == SYMBOLS[0]], store=st)
    ev = detect(st)
    r = CliRunner().invoke(cli, ["report", "--store", str(st.root), "--per-event", "--workers", "2",
                                 "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    dirs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(dirs) == ev.height and all((tmp_path / "out" / d / "report.html").exists() for d in dirs)
    assert f"{ev.height} report(s)" in r.output


def _worker_state():
    import sys
    import forensics.book as book
    return {"imported": all(m in sys.modules for m in ("forensics.detect", "forensics.attribution")),
            "kernel_loaded": bool(book._kernel.overloads), "polars_threads": __import__("polars").thread_pool_size()}


def test_workers_start_warm(captures, tmp_path):
    """Before any task, every worker has the task modules imported and the kernels that
    numba's cache holds loaded (a depth run here puts them in the cache), and one Polars
    thread (one task per core already fills the cores)."""
    from forensics.book import compute_depth
    from forensics.parallel import client_for
    st = Store(tmp_path / "w")
    ingest([c for c in captures if c.parent.name == SYMBOLS[0]], store=st)
    compute_depth(st, every_ns=1_000_000_000, write=False)
    with client_for(2) as client:
        states = list(client.run(_worker_state).values())
        startup = client.forensics_startup
    assert len(states) == 2
    assert all(s["imported"] and s["kernel_loaded"] and s["polars_threads"] == 1 for s in states), states
    assert startup.cluster_s > 0 and set(startup.workers) and startup.start_method in ("forkserver", "spawn")


def _stamp(part):
    import time
    return time.perf_counter_ns()


def test_heaviest_partitions_start_first():
    from forensics.parallel import client_for
    parts = [Partition("x", s) for s in ("A", "B", "C", "D")]
    with client_for(1) as client:
        res = run_partitions(_stamp, parts, client=client, weights=[1.0, 4.0, 2.0, 3.0])
    order = [r.partition.symbol for r in sorted(res, key=lambda r: r.value)]
    assert order == ["B", "D", "C", "A"]
    assert [r.partition.symbol for r in res] == ["A", "B", "C", "D"]  # results in the order asked


def test_depth_one_task_per_day_equals_serial(captures, tmp_path):
    """Unmerged, one task per (symbol, day): the day-2 task replays from the capture's
    snapshot on day 1 (the book at midnight carried by the replay) and stores only its day."""
    from forensics.book import compute_depth
    from forensics.parallel import _depth_task, merge_replays
    two = [c for c in captures if c.parent.name in SYMBOLS[:2]]
    serial, par = Store(tmp_path / "serial"), Store(tmp_path / "par")
    for st in (serial, par):
        ingest(two, store=st)
    for sy in SYMBOLS[:2]:
        compute_depth(serial, symbol=sy, every_ns=1_000_000_000)
    parts = day_partitions(par, None, None, None, None)
    assert len(parts) == 4 and len(merge_replays(par, parts)) == 2
    res = run_partitions(_depth_task, parts, (par, None, None, 1_000_000_000, None, "auto"), workers=2)
    assert [r.partition for r in res] == parts
    a, b = _tables(serial, ("depth", "book_top")), _tables(par, ("depth", "book_top"))
    for t in a:
        assert a[t].height > 0 and a[t].equals(b[t]), t
