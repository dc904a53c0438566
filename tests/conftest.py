import gzip
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> Path; gzips when the name ends with .gz."""
    def _write(name: str, text: str | bytes) -> Path:
        p = tmp_path / "in" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        if name.endswith(".gz"):
            data = gzip.compress(data)
        p.write_bytes(data)
        return p
    return _write


@pytest.fixture(scope="session")
def sample_report(tmp_path_factory):
    """The bundled sample (the simulator's Binance capture, ``write_sample_data``) ingested and
    reported around 05:13 UTC+8 with a 10-minute window: ``(store, ReportResult, labels)``.
    Built once per session; tests must only read it."""
    from forensics import simulate
    from forensics.ingest import ingest
    from forensics.report import build_report
    from forensics.store import Store
    d = tmp_path_factory.mktemp("sample")
    sim = simulate.write_sample_data(d / "data")
    store = Store(d / "store")
    ingest([sim.files["capture"]], store=store)
    res = build_report(store, at="2025-10-11 05:13", tz="Asia/Shanghai", window_ns=10 * 60 * 10**9,
                       out_dir=d / "out")
    return store, res, sim.labels


@pytest.fixture(scope="session")
def sim_withdrawal(tmp_path_factory):
    """A short simulated market (seed 5, 3.5 minutes, a sell-side withdrawal at 90 s): the
    simulator's :class:`~forensics.sim.publish.SimResult` (capture, CSV, truth, labels). Built
    once per session; tests must only read it."""
    from forensics import sim
    d = tmp_path_factory.mktemp("sim_withdrawal")
    return sim.simulate(sim.build_config(seed=5, minutes=3.5, incidents=["withdrawal@90s:sell"]), d / "sim")


@pytest.fixture(scope="session")
def sim_store(sim_withdrawal, tmp_path_factory) -> Path:
    """:func:`sim_withdrawal`'s capture ingested into a store (read only: tests that write use
    :func:`sim_store_copy`)."""
    from forensics.ingest import ingest
    store = tmp_path_factory.mktemp("sim_store") / "store"
    ingest([sim_withdrawal.files["capture"]], store=store)
    return store


@pytest.fixture
def sim_store_copy(sim_store, tmp_path) -> Path:
    """A writable copy of :func:`sim_store` for this test."""
    return Path(shutil.copytree(sim_store, tmp_path / "store"))
