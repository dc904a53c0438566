"""The report section "Reading the market around the event" (forensics/report/article.py)."""
from __future__ import annotations

import pytest

from forensics.timeutil import NS_PER_S


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from forensics.report import build_report
    from test_report import make_store
    d = tmp_path_factory.mktemp("article")
    store = make_store(d / "store", "levels")
    return build_report(store, at="2025-10-10T21:13:00Z", window_ns=30 * 60 * NS_PER_S, out_dir=d / "out")


def test_section_json_figures_and_sql(report):
    j = report.json
    a = j["article"]
    assert a["anchor"]["event_id"] == j["primary_event_id"]
    # 40 min of data: no regime, and the report says why instead of guessing
    assert a["regime"]["regime"] is None and a["regime"]["reason"].startswith("insufficient history: needs 120 min")
    assert {"flagged", "series", "lead_ms", "unavailable"} <= set(a["precursors"])
    assert {"baseline", "vacuum", "depth_recovery", "half_life", "curve"} <= set(a["vacuum_curve"])
    assert {"quote_life", "reposting", "sequence"} <= set(a["maker_stress"])
    keys = {m["key"] for m in j["metrics"]}
    assert {"regime", "regime_short_ratio", "vacuum_impact_base", "vacuum_lasted", "quote_life_p50_before",
            "widen_then_pull"} <= keys
    ids = {s["id"] for s in j["sql"]}
    assert all(m["sql_id"] in ids for m in j["metrics"] if m["key"] in set(a["metric_keys"]))
    for role in ("article-regime", "article-precursors", "article-vacuum"):
        assert j["figures"][role]["file"] == f"{role}.png" and (report.out_dir / f"{role}.png").exists()
    md = (report.out_dir / "report.md").read_text()
    assert "## Reading the market around the event" in md and "![The vacuum curve](article-vacuum.png)" in md
    assert md.index("## Reading the market around the event") < md.index("## Caveats")


def test_band_only_data_says_what_is_missing(tmp_path):
    from forensics.report import build_report
    from test_report import make_store
    store = make_store(tmp_path / "store", "bands")
    res = build_report(store, at="2025-10-10T21:13:00Z", window_ns=20 * 60 * NS_PER_S, out_dir=tmp_path / "out")
    a = res.json["article"]
    assert "unavailable" in a["precursors"] and "unavailable" in a["vacuum_curve"]
    assert res.json["figures"]["article-vacuum"]["file"] is None
