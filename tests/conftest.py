import gzip
import os
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
