"""Terminal output at 80 columns (issue 19, defect 7): help text wraps at word boundaries, the
detect events table keeps time, label, sides and confidence and moves the rest to --wide or a
per-event block, data-quality flags are one wrapped block each."""
from __future__ import annotations

import io
import json

import polars as pl
import pytest
from click.testing import CliRunner
from rich.console import Console

from forensics.cli import cli

S = 1_000_000_000
COMMANDS = ([], ["detect"], ["eval"], ["depth"], ["heatmap"], ["report"])


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "forensics")
def test_help_fits_80_columns(cmd):
    r = CliRunner().invoke(cli, cmd + ["--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    long = [line for line in r.output.splitlines() if len(line) > 80]
    assert not long, long


def _events():
    t0 = 1_760_130_780 * S
    rows = []
    for i, (label, sides) in enumerate((("synchronized_withdrawal", "both"), ("consumption", "bid"),
                                        ("one_sided_pull", "ask"))):
        rows.append({"exchange": "binance-futures", "symbol": "BTCUSDT", "event_id": f"BTCUSDT-e{i}",
                     "start_ts": t0 + i * 60 * S + 190_000_000, "end_ts": t0 + i * 60 * S + 2 * S,
                     "sides": sides, "label": label, "confidence": 0.91 - i / 10, "band_pct": 0.1,
                     "removed_frac": 0.87, "traded_share": 0.047, "traded_share_net": 0.05,
                     "sync_share_500ms": 0.9, "speed_ms": 81.0, "side_lag_ms": 40.0, "recovery_ms": 69_000.0,
                     "vacuum_ratio": 5.2, "evidence": json.dumps(["both sides pulled at once, within 81 ms of each "
                                                                 "other, across 90 price levels"])})
    return pl.DataFrame(rows)


def _render(width, wide=False, evidence=True):
    from forensics.cli.detect import _print_events
    buf = io.StringIO()
    con = Console(file=buf, width=width, force_terminal=False, color_system=None)
    _print_events(con, _events(), "Asia/Shanghai", evidence, wide)
    return buf.getvalue()


def test_events_table_at_80_columns_keeps_the_important_columns():
    out = _render(80)
    lines = out.splitlines()
    assert all(len(x) <= 80 for x in lines), max(lines, key=len)
    table = [x for x in lines if x.startswith("│")]
    assert len(table) == 3
    for label in ("synchronized_withdrawal", "consumption", "one_sided_pull"):
        assert any(label in x for x in table), label               # not cut to "sy..."
    assert "2025-10-11 05:13:00.190" in table[0] and "0.91" in table[0] and "both" in table[0]
    assert "…" not in "".join(table)
    assert "not shown at this width" in out and "--wide" in out
    # the columns that did not fit are in each event's block
    flat = out.replace("\u00a0", " ")
    assert "recovery 69 s" in flat and "vacuum 5.2x" in flat and "lag +40 ms" in flat
    assert "traded g/n 4.7%/5%" in flat                        # the report's share formatter


def test_events_table_wide_shows_everything():
    out = _render(200, wide=True)
    head = next(x for x in out.splitlines() if "start" in x and "label" in x)
    for col in ("removed", "traded g/n", "band", "10-90%", "vacuum", "in 500ms", "lag", "recovery", "instrument"):
        assert col in head, col
    assert "not shown at this width" not in out


def test_depth_flags_at_80_columns():
    from forensics.cli.depth import _print_flags
    from forensics.depth_quality import FLAG_SCHEMA
    flags = pl.DataFrame([{"kind": "frozen_band", "side": "bid", "band_pct": 1.0, "count": 3,
                           "first_ts": 1_760_130_000 * S, "last_ts": 1_760_130_600 * S,
                           "detail": "bid 1% band repeated the same quantity for 40 consecutive samples (longest of "
                                     "3 runs of >= 3) while other bands of that side moved"}], schema=FLAG_SCHEMA)
    buf = io.StringIO()
    _print_flags(Console(file=buf, width=80, color_system=None), flags, "UTC")
    out = buf.getvalue()
    assert all(len(x) <= 80 for x in out.splitlines())
    assert "frozen_band" in out and "bid 1%" in out and "2025-10-10 21:00:00 .. 21:10:00" in out
    words = " ".join(out.split())
    assert "while other bands of that side moved" in words          # wrapped at word boundaries, nothing lost
