"""Fuzz every reader (issue 12): a seeded mutator damages lines and containers of each
format's fixture; ingest never shows a traceback, exits 0 or 1, keeps every untouched line
and leaves a readable store. Bounded to a few seconds here; ``benchmarks/fuzz_ingest.py``
runs it longer and prints what it found."""
import os

from tests.fuzz_engine import FIXTURES, fuzz

SECONDS = float(os.environ.get("FORENSICS_FUZZ_SECONDS", "4"))


def test_fuzz_every_reader(tmp_path):
    cases = fuzz(SECONDS, seed=12, workdir=tmp_path)
    assert {c.fixture for c in cases} == {f.name for f in FIXTURES}  # every reader was fuzzed
    found = [f"{c.fixture} seed={c.seed} {c.mutations}: {'; '.join(c.problems)}" for c in cases if c.problems]
    assert not found, "\n".join(found)
    assert all(c.exit_code in (0, 1) for c in cases)
    assert any(c.exit_code == 0 and c.rows for c in cases)  # not only rejections


def test_fuzz_finds_a_planted_loss(tmp_path, monkeypatch):
    """The checks can fail: a reader that drops its last rows is caught."""
    from forensics.ingest import normalise
    real = normalise.Writer.add

    def lossy(self, chunk):
        chunk.tables = {k: v.head(max(v.height - 3, 0)) for k, v in chunk.tables.items()}
        return real(self, chunk)
    monkeypatch.setattr(normalise.Writer, "add", lossy)
    cases = fuzz(0, seed=3, workdir=tmp_path)
    assert any("lost valid lines" in p for c in cases for p in c.problems)
