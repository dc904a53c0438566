"""LOBSTER ingest (zip as shipped / CSV pair), its labels, and attribution scored against them."""
from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest

from forensics.attribution import attribute_with_info
from forensics.errors import ForensicsError
from forensics.ingest import ingest
from forensics.ingest.lobster import session_base_ns
from forensics.labels_eval import evaluate_labels, score
from forensics.store import Store

# the shared data sit at ../shared/data relative to the repo root (one more level up from a worktree)
_ROOT = Path(__file__).resolve().parents[1]
SHARED = next((p for p in (_ROOT.parent / "shared" / "data" / "lobster",
                           _ROOT.parent.parent / "shared" / "data" / "lobster") if p.exists()),
              _ROOT.parent / "shared" / "data" / "lobster")
STEM = "XYZ_2012-06-21_34200000_57600000"
D = 9999999999


def _book(asks, bids, n=2):
    """One orderbook row: ask p1, ask s1, bid p1, bid s1, ... (dummies past the book)."""
    out = []
    for k in range(n):
        ap, asz = asks[k] if k < len(asks) else (D, 0)
        bp, bsz = bids[k] if k < len(bids) else (-D, 0)
        out += [ap, asz, bp, bsz]
    return ",".join(str(x) for x in out)


def fixture_pair() -> tuple[str, str]:
    """A 2-level LOBSTER slice written here: every event type, a sweep, a halt."""
    A1, A2, A3 = 1000100, 1000200, 1000300
    B1, B2, B3 = 1000000, 999900, 999800
    msgs, rows = [], []

    def ev(t, typ, oid, size, price, d, asks, bids):
        msgs.append(f"{t},{typ},{oid},{size},{price},{d}")
        rows.append(_book(asks, bids))
    ev("34200.000000001", 1, 1, 100, B1, 1, [(A1, 50), (A2, 70)], [(B1, 100), (B2, 80)])   # snapshot row
    ev("34200.5", 1, 2, 30, B1, 1, [(A1, 50), (A2, 70)], [(B1, 130), (B2, 80)])             # add
    ev("34201.25", 2, 2, 10, B1, 1, [(A1, 50), (A2, 70)], [(B1, 120), (B2, 80)])            # partial cancel
    ev("34202", 4, 1, 20, B1, 1, [(A1, 50), (A2, 70)], [(B1, 100), (B2, 80)])               # sell hits bid
    ev("34202.1", 5, 0, 7, 1000050, -1, [(A1, 50), (A2, 70)], [(B1, 100), (B2, 80)])        # hidden
    # a buy sweep at one ns: A1 emptied (A3 enters the 2-level view), then A2 partly
    ev("34203.000000007", 4, 3, 50, A1, -1, [(A2, 70), (A3, 40)], [(B1, 100), (B2, 80)])
    ev("34203.000000007", 4, 4, 30, A2, -1, [(A2, 40), (A3, 40)], [(B1, 100), (B2, 80)])
    ev("34204", 1, 5, 10, 1000150, -1, [(1000150, 10), (A2, 40)], [(B1, 100), (B2, 80)])   # push A3 out
    ev("34205", 3, 6, 100, B1, 1, [(1000150, 10), (A2, 40)], [(B2, 80), (B3, 60)])          # delete best bid
    ev("34206", 7, 0, 0, -1, -1, [(1000150, 10), (A2, 40)], [(B2, 80), (B3, 60)])           # halt
    ev("34207", 7, 0, 0, 1, -1, [(1000150, 10), (A2, 40)], [(B2, 80), (B3, 60)])            # resume
    ev("34208", 2, 7, 5, B2, 1, [(1000150, 10), (A2, 40)], [(B2, 75), (B3, 60)])
    return "\n".join(msgs) + "\n", "\n".join(rows) + "\n"


def write_zip(dirpath: Path, name: str = "LOBSTER_SampleFile_XYZ_2012-06-21_2.zip") -> Path:
    msg, book = fixture_pair()
    path = dirpath / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{STEM}_orderbook_2.csv", book)
        zf.writestr(f"{STEM}_message_2.csv", msg)
        zf.writestr("LOBSTER_SampleFiles_ReadMe.txt", "LOBSTER sample ReadMe\n")
    return path


def test_zip_ingest_tables_labels_and_times(tmp_path, store_dir):
    res = ingest([write_zip(tmp_path)], store=store_dir)
    assert res[0].format == "lobster" and res[0].instruments == [("lobster", "XYZ")]
    st = Store(store_dir)
    bu = st.scan("book_updates", "lobster", "XYZ").collect()
    con = st.connect()
    snap = con.execute("select side, price::varchar, size::varchar from book_updates where is_snapshot "
                       "and update_id = 1 order by side, price").fetchall()
    assert snap == [("ask", "100.010", "50"), ("ask", "100.020", "70"), ("bid", "99.990", "80"),
                    ("bid", "100.000", "100")]
    base = session_base_ns("2012-06-21")
    assert base == 1340251200 * 10**9            # New York midnight (EDT) = 04:00 UTC
    assert bu["ts"].min() == base + 34200 * 10**9 + 1
    tr = st.scan("trades", "lobster", "XYZ").collect()
    assert tr.select("aggressor", "size", "hidden").rows() == [("sell", 20, False), ("buy", 7, True),
                                                               ("buy", 50, False), ("buy", 30, False)]
    lab = st.scan("labels_level_changes", "lobster", "XYZ").collect()
    truths = lab.group_by("truth").agg(pl.col("delta").abs().sum()).sort("truth").rows()
    assert dict(truths) == {"added": 30 + 10, "cancelled": 10 + 100 + 5, "traded": 20 + 50 + 30,
                            "out_of_view": 40 + 40 + 60}
    # labels share ts/seq with their book rows
    j = lab.join(bu, on=["ts", "seq", "side", "price"], how="left")
    assert j["size"].null_count() == 0
    gaps = st.scan("gaps", "lobster", "XYZ", ts_column="ts_from").collect()
    assert gaps.select("reason").rows() == [("halt",)]
    # the SQL view shows real units
    assert con.execute("select min(price)::varchar from labels_level_changes").fetchone()[0] == "99.980"


def test_fixture_attribution_exact_and_scored(tmp_path, store_dir):
    ingest([write_zip(tmp_path)], store=store_dir)
    lc, info = attribute_with_info(store_dir, "lobster", "XYZ", write=False, depth_limit=2)
    lab = Store(store_dir).scan("labels_level_changes", "lobster", "XYZ").collect()
    sc = score(lc, lab)
    o = sc.overall
    assert o["true_traded"] == o["attributed_traded"] == 100
    assert o["true_cancelled"] == o["attributed_cancelled"] == 115
    assert o["visible_correct_share"] == 1.0
    assert o["oov_truncation_share"] == 1.0
    # the hidden execution (at 100.005, inside the spread) never filled anything
    hidden = Store(store_dir).scan("trades", "lobster", "XYZ").filter(pl.col("hidden")).collect()
    assert hidden.height == 1 and info.trades == 3
    assert lc.filter(pl.col("price") == hidden["price"][0]).height == 0
    runs = evaluate_labels(store_dir, "lobster", "XYZ", jitter_ms=(10,), depth_limit=2)
    assert [r.name for r in runs] == ["exact", "jitter +-10 ms"]


def test_csv_pair_equals_zip_and_lone_files_are_errors(tmp_path):
    msg, book = fixture_pair()
    d = tmp_path / "csv"
    d.mkdir()
    (d / f"{STEM}_message_2.csv").write_text(msg)
    (d / f"{STEM}_orderbook_2.csv").write_text(book)
    a, b = tmp_path / "s1", tmp_path / "s2"
    ingest([d / f"{STEM}_message_2.csv", d / f"{STEM}_orderbook_2.csv"], store=a)
    ingest([write_zip(tmp_path)], store=b)
    for table in ("book_updates", "trades", "labels_level_changes"):
        x = Store(a).scan(table, "lobster", "XYZ").collect()
        y = Store(b).scan(table, "lobster", "XYZ").collect()
        assert x.equals(y), table
    with pytest.raises(ForensicsError, match="orderbook"):
        ingest([d / f"{STEM}_message_2.csv"], store=tmp_path / "s3")
    with pytest.raises(ForensicsError, match="message file"):
        ingest([d / f"{STEM}_orderbook_2.csv"], store=tmp_path / "s4")


def test_bad_rows_rejected_with_line(tmp_path, store_dir):
    msg, book = fixture_pair()
    lines = msg.splitlines()
    lines[3] = "34202,4,1,garbage,1000000,1"
    d = tmp_path / "csv"
    d.mkdir()
    (d / f"{STEM}_message_2.csv").write_text("\n".join(lines) + "\n")
    (d / f"{STEM}_orderbook_2.csv").write_text(book)
    res = ingest([d / f"{STEM}_message_2.csv", d / f"{STEM}_orderbook_2.csv"], store=store_dir)
    assert res[0].rejected == 1 and res[0].first_rejects[0].line == 4
    assert res[0].rows["trades"] == 3


# ---- the shared LOBSTER samples (real Nasdaq data) ------------------------------------------------

@pytest.mark.skipif(not SHARED.exists(), reason=f"shared LOBSTER samples not present ({SHARED})")
@pytest.mark.parametrize("name,symbol,level", [("LOBSTER_SampleFile_AAPL_2012-06-21_1.zip", "AAPL", 1),
                                               ("LOBSTER_SampleFile_GOOG_2012-06-21_5.zip", "GOOG", 5)])
def test_shared_samples_meet_the_targets(tmp_path, name, symbol, level):
    store = tmp_path / "store"
    ingest([SHARED / name], store=store)
    runs = evaluate_labels(store, "lobster", symbol, jitter_ms=(10,))
    exact, jit = runs
    assert exact.info["depth_limit"] == level          # detected from the data
    for side in ("bid", "ask"):
        r = exact.per_side[side]
        assert abs(r["traded_error"]) <= 0.01
        assert abs(r["cancelled_error"]) <= 0.03
        assert r["visible_correct_share"] >= 0.99
        assert r["oov_truncation_share"] >= 0.99
        assert jit.per_side[side]["visible_correct_share"] >= 0.97
    assert exact.info["hidden_trades"] > 0


def test_cli_eval_labels_and_depth_limit_option(tmp_path, store_dir):
    from click.testing import CliRunner
    from forensics.cli import cli
    ingest([write_zip(tmp_path)], store=store_dir)
    r = CliRunner().invoke(cli, ["eval", "--labels", "--store", str(store_dir), "--jitter", "10",
                                 "--depth-limit", "2", "--json", str(tmp_path / "e.json")], obj={})
    assert r.exit_code == 0, r.output
    assert "lobster XYZ" in r.output and "jitter +-10 ms" in r.output and "100.00%" in r.output
    assert (tmp_path / "e.json").exists()
    r = CliRunner().invoke(cli, ["detect", "--store", str(store_dir), "--depth-limit", "five"], obj={})
    assert r.exit_code == 1 and "--depth-limit" in r.output
    r = CliRunner().invoke(cli, ["eval", "--labels", "--store", str(tmp_path / "nothing")], obj={})
    assert r.exit_code == 1 and "does not exist" in r.output
