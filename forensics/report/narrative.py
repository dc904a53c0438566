"""Numbers and words: the evidence behind each event (every number from a SQL snippet run on the
store's views), the headline sentence, the phase 1 / phase 2 narrative and the caveats.

:func:`compose` returns the report document: ``{"json": <report.json>, "blocks": [...],
"events": [...], ...}``; figures and renderers read it. Numbers are never typed into text by
hand: each text fragment formats a :class:`Metric` whose ``sql`` reproduces its ``value``.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import asdict, dataclass
from decimal import Decimal

import polars as pl

from forensics.timeutil import NS_PER_MS, NS_PER_S
from forensics.vocab import Cause, DataKind, Label, label_closing, label_meaning, label_rank, label_short

LOW_CONFIDENCE = 0.6
#: a removed share at or below this is "nothing removed" (no traded share of a removal is quoted)
NOTHING_REMOVED = 0.005
#: level_changes causes that are maker actions (gap / truncation rows are data artefacts)
MAKER_CAUSES = "(" + ", ".join(f"'{c}'" for c in Cause.maker_actions()) + ")"
#: relative tolerance for accepting a derivation SQL as reproducing a detector value
MATCH_RTOL = 1e-9

#: detector columns measured from trades: without trades in the store they are unknown, not 0
TRADE_COLS = ("traded_share", "traded_share_net", "traded_qty", "cancelled_qty", "implied_qty", "trade_volume",
              "impact_before", "impact_after", "vacuum_ratio")
#: words in the detector's reasoning lines that rest on trades (dropped when there are none)
_TRADE_WORDS = re.compile(r"trad|cancel|withdraw|pull|consum|eaten|vacuum|impact|volume|taker|aggress", re.I)

# detector columns that are identity, not figures
_ID_COLS = {"event_id", "exchange", "symbol", "date", "start_ts", "end_ts", "sides", "label", "data_kind",
            "evidence", "start_ts_ns", "end_ts_ns", "continuations"}

#: units of the detector's stored columns (forensics.detect: sizes in lots, prices in ticks,
#: mid_* = bid + ask, window_* in UTC ns); anything else is a plain number
def _exact_events(kind: str, default: set) -> set:
    from forensics.schema import EXACT
    cols = {c for c, k in EXACT.get("events", {}).items() if k == kind}
    return cols or default


SIZE_COLS = _exact_events("size", {"depth_before_bid", "depth_after_bid", "depth_before_ask", "depth_after_ask",
                                   "traded_qty", "cancelled_qty", "added_qty", "implied_qty", "trade_volume"})
PRICE_COLS = _exact_events("price", {"bid_floor", "ask_cap", "spread_before", "spread_after"})
PRICE2_COLS = _exact_events("price2", {"mid_before", "mid_after"})
NS_COLS = {"window_from", "window_to"}

#: detector columns, most telling first (unknown columns follow in their own order)
ORDER = ["confidence", "removed_frac_bid", "removed_frac_ask", "removed_frac", "depth_before_bid", "depth_after_bid",
         "depth_before_ask", "depth_after_ask", "speed_ms", "side_lag_ms", "traded_share_net", "traded_share",
         "traded_qty", "cancelled_qty", "added_qty", "implied_qty", "levels_hit", "sync_share_500ms",
         "levels_emptied_500ms", "erosion_corr", "trade_volume", "other_side_fell", "spread_before", "spread_after",
         "mid_before", "mid_after", "price_move_bps", "price_move_after_bps", "impact_before", "impact_after",
         "vacuum_ratio", "recovery_ms", "band_pct", "bid_floor", "ask_cap", "window_from", "window_to", "gap_share",
         "flicker_pairs", "trigger"]

#: definitions of the detector's columns (forensics.detect module docstring)
DETECTOR_DEFINITIONS = {
    "confidence": "Detector's confidence in the label, 0..1 (smallest margin past the thresholds the label relies on).",
    "trigger": "What found the event: a depth cliff, a flow episode (aggressive program) or flicker.",
    "band_pct": "Depth band the event is measured in: resting size within this % of mid.",
    "removed_frac_bid": "Share of bid depth in the band removed: (depth before - depth after) / depth before.",
    "removed_frac_ask": "Share of ask depth in the band removed: (depth before - depth after) / depth before.",
    "removed_frac": "Share of the falling side(s)' band depth removed, sides summed.",
    "depth_before_bid": "Bid depth in the band at the top of the fall (the last maximum before it).",
    "depth_after_bid": "Bid depth in the band at the bottom of the fall.",
    "depth_before_ask": "Ask depth in the band at the top of the fall (or at the window start if the ask did not fall).",
    "depth_after_ask": "Ask depth in the band at the bottom of the fall (or its minimum over the window).",
    "speed_ms": "Time from 10% to 90% of the fall (start to end of the event).",
    "side_lag_ms": "Ask-side start minus bid-side start (negative: asks went first).",
    "traded_share": "Gross traded share: traded / (traded + cancelled) size over the decreases of the falling "
                    "side(s) in the band and window.",
    "traded_share_net": "Net traded share: traded / (traded + max(cancelled - added, 0)), net of cancel/replace "
                        "churn; it saturates at 100% whenever re-posting exceeds cancelling, so read it next to the "
                        "gross share.",
    "traded_qty": "Size removed by trades (level_changes.traded) on the falling side(s), in the band and window.",
    "cancelled_qty": "Size removed by cancellations (level_changes.cancelled), in the band and window.",
    "added_qty": "Size added (new quotes) on the falling side(s), in the band and window.",
    "implied_qty": "Traded size beyond the visible decreases (hidden / iceberg refills).",
    "levels_hit": "Distinct price levels that lost size (side, price) in the band and window.",
    "sync_share_500ms": "Share of the removed size that went within the busiest 500 ms.",
    "levels_emptied_500ms": "Price levels emptied (size 0) within the busiest 500 ms.",
    "erosion_corr": "Spearman correlation of a level's distance from the touch and the time it lost half its "
                    "size (positive: sequential erosion from the touch, as trades do).",
    "trade_volume": "Aggressive volume hitting the falling side(s) in the window (sells for bids, buys for asks).",
    "other_side_fell": "Whether the other side fell too (abnormally for it).",
    "spread_before": "Spread at the window start.", "spread_after": "Spread at the window end.",
    "mid_before": "Mid price at the window start.", "mid_after": "Mid price at the window end.",
    "price_move_bps": "Mid move over the event, bps.",
    "price_move_after_bps": "Mid move in the 60 s after the event, bps.",
    "impact_before": "Price impact per unit volume before the event (300 s to 5 s before its window): sum of "
                     "1-second |mid changes| in bps / all volume traded (buys and sells).",
    "impact_after": "Price impact per unit volume in the 120 s after the event's window, same definition.",
    "vacuum_ratio": "impact_after / impact_before: how many times more each unit of volume moved the price "
                    "after the event than before.",
    "recovery_ms": "Time from the end until every falling side was back to 50% of its depth before "
                   "(empty: not within 10 min).",
    "bid_floor": "Lowest bid price inside the band at the window start.",
    "ask_cap": "Highest ask price inside the band at the window start.",
    "window_from": "Start of the span over which the quantities are summed (one grid step before the fall).",
    "window_to": "End of that span (the bottom of the fall).",
    "gap_share": "Share of the window's level changes that fall in a data gap (book unknown).",
    "flicker_pairs": "Large orders placed and pulled far from the touch (flicker events).",
}


#: readable names of the detector's columns in the evidence table
LABELS = {
    "confidence": "confidence", "trigger": "trigger", "band_pct": "depth band",
    "removed_frac_bid": "bid depth removed", "removed_frac_ask": "ask depth removed",
    "removed_frac": "depth removed (falling sides)", "depth_before_bid": "bid depth before",
    "depth_after_bid": "bid depth after", "depth_before_ask": "ask depth before", "depth_after_ask": "ask depth after",
    "speed_ms": "fall duration (10%→90%)", "side_lag_ms": "ask start − bid start",
    "traded_share_net": "traded share, net of re-posting", "traded_share": "traded share, gross",
    "traded_qty": "size traded", "cancelled_qty": "size cancelled", "added_qty": "size added",
    "implied_qty": "hidden size traded", "levels_hit": "price levels hit",
    "sync_share_500ms": "removal in busiest 500 ms", "levels_emptied_500ms": "levels emptied in 500 ms",
    "erosion_corr": "erosion from the touch (corr.)", "trade_volume": "aggressive volume",
    "other_side_fell": "other side fell", "spread_before": "spread before", "spread_after": "spread after",
    "mid_before": "mid before", "mid_after": "mid after", "price_move_bps": "mid move during",
    "price_move_after_bps": "mid move, next 60 s", "impact_before": "impact per volume before",
    "impact_after": "impact per volume after", "vacuum_ratio": "vacuum ratio (impact after / before)",
    "recovery_ms": "time to 50% recovery", "bid_floor": "band floor (bids)", "ask_cap": "band cap (asks)",
    "window_from": "window from", "window_to": "window to", "gap_share": "changes inside data gaps",
    "flicker_pairs": "flicker order pairs",
}


@dataclass
class Metric:
    key: str
    label: str
    value: float | int | str | None
    display: str
    unit: str
    definition: str
    source: str                  # 'detector' | 'report'
    sql: str                     # reproduces value: a derivation from the data where verified, else a lookup
    event_id: str | None = None
    sql_id: str | None = None
    sql_lookup: str | None = None      # detector values: the plain read-back from the events view
    lookup_id: str | None = None
    derived: bool = False              # sql recomputes the value from depth/book_top/level_changes/trades

    def as_json(self) -> dict:
        return asdict(self)


# ---- formatting -------------------------------------------------------------------------------

def py(v):
    """A DuckDB/polars scalar as a JSON-able Python value (Decimal -> float, NaN -> None)."""
    if isinstance(v, Decimal):
        v = float(v)
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return v


def pct(x, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    v = 100 * x
    s = f"{v:.1f}" if abs(v) < 10 and round(v, 1) != round(v) else f"{v:.0f}"
    return (("+" if v > 0 else "") if signed else "") + s + "%"


def qty(x, unit: str = "") -> str:
    if x is None:
        return "n/a"
    a = abs(x)
    if a == 0:
        return f"0 {unit}".strip()
    s = f"{x:,.0f}" if a >= 100 else f"{x:,.1f}" if a >= 10 else f"{x:,.2f}" if a >= 0.1 else f"{x:,.4f}"
    return f"{s} {unit}".strip()


def removed(x) -> str:
    """A removed share (1 - after/before): '87%'; a negative one means the depth grew: 'none (grew 4.1%)'."""
    if x is None:
        return "n/a"
    return pct(x) if x >= 0 else f"none (grew {pct(-x)})"


def num(x, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, int):
        return f"{x:,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def duration(ns) -> str:
    if ns is None:
        return "n/a"
    ns = abs(int(ns))
    if ns < NS_PER_S:
        return f"{ns / NS_PER_MS:.0f} ms"
    if ns < 10 * NS_PER_S:
        return f"{ns / NS_PER_S:.1f} s"
    if ns < 120 * NS_PER_S:
        return f"{ns / NS_PER_S:.0f} s"
    m, s = divmod(int(round(ns / NS_PER_S)), 60)
    return f"{m} min {s} s" if s else f"{m} min"


def clock(ns: int, tz: str, with_date: bool = False) -> str:
    from forensics.report.context import local_dt
    t = local_dt(ns, tz)
    s = t.strftime("%H:%M:%S") + (f".{(ns % NS_PER_S) // NS_PER_MS:03d}" if ns % NS_PER_S else "")
    return (t.strftime("%Y-%m-%d ") + s) if with_date else s


def _display(key: str, v, ctx) -> tuple[str, str]:
    """(display text, unit) for a value in real units, judged by the column's name."""
    base, quote = ctx.base, ctx.quote
    if v is None:
        return "n/a", ""
    if isinstance(v, bool):
        return ("yes" if v else "no"), ""
    if isinstance(v, str):
        return v, ""
    k = key.lower()
    if k in NS_COLS:
        return clock(int(v), ctx.tz), "time"
    if k in SIZE_COLS:
        return qty(v, base), base
    if k in PRICE_COLS or k in PRICE2_COLS:
        return qty(v, quote), quote
    if k == "confidence":
        return f"{v:.2f}", "0..1"
    if k.startswith("impact"):
        return f"{v:.3g} bps/{base}", f"bps per {base}"
    if k.startswith("removed_frac") or k.startswith("grid_removed"):
        return removed(v), "share"
    if "share" in k or k.endswith("_frac"):
        return pct(v), "share"
    if k.endswith("_pct") and "band" in k:
        return f"{v:g}%", "% of mid"
    if k.endswith("_ms"):
        sign = "−" if k == "side_lag_ms" and v < 0 else ("+" if k == "side_lag_ms" and v > 0 else "")
        return sign + duration(int(round(v * NS_PER_MS))), "duration"
    if "ratio" in k:
        return f"{v:.1f}×", "ratio"
    if "bps" in k:
        return f"{v:+.1f} bps", "bps"
    if k.endswith("_corr"):
        return f"{v:+.2f}", "correlation"
    if any(w in k for w in ("depth", "qty", "volume", "size")):
        return qty(v, base), base
    if "levels" in k or "pairs" in k or isinstance(v, int):
        return f"{int(v):,}", "count"
    return num(v), ""


def _ident(c: str) -> str:
    return c if c.isidentifier() and c.islower() else '"' + c.replace('"', '""') + '"'


def close(a, b) -> bool:
    """Same value (numbers within MATCH_RTOL, others equal)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=MATCH_RTOL, abs_tol=1e-12)
    return a == b


# ---- SQL metrics --------------------------------------------------------------------------------

class Runner:
    """Runs metric SQL on one connection and numbers the snippets S1, S2, ..."""

    def __init__(self, con):
        self.con = con
        self.snippets: list[dict] = []

    def value(self, sql: str):
        row = self.con.execute(sql).fetchone()
        return py(row[0]) if row else None

    def try_value(self, sql: str):
        try:
            return True, self.value(sql)
        except Exception:  # a candidate derivation that does not apply to this store
            return False, None

    def _register(self, m: Metric, sql: str, role: str, value) -> str:
        sid = f"S{len(self.snippets) + 1}"
        self.snippets.append({"id": sid, "key": m.key, "event_id": m.event_id, "role": role, "sql": sql,
                              "value": value})
        return sid

    def metric(self, key, label, sql, definition, fmt, unit, source="report", event_id=None) -> Metric:
        """A report figure: ``sql`` computes it."""
        v = self.value(sql)
        m = Metric(key=key, label=label, value=v, display=fmt(v) if v is not None else "n/a", unit=unit,
                   definition=definition, source=source, sql=sql.strip(), event_id=event_id, derived=True)
        m.sql_id = self._register(m, m.sql, "report", v)
        return m

    def detector_metric(self, key, label, lookup, candidates, definition, fmt, unit, event_id) -> Metric:
        """A detector figure: read back with ``lookup``; the first of ``candidates`` (derivations
        from the underlying tables) that returns the same value becomes the primary SQL."""
        v = self.value(lookup)
        primary, derived = lookup.strip(), False
        for cand in candidates:
            ok, got = self.try_value(cand)
            if ok and v is not None and close(got, v):
                primary, derived = cand.strip(), True
                break
        m = Metric(key=key, label=label, value=v, display=fmt(v) if v is not None else "n/a", unit=unit,
                   definition=definition, source="detector", sql=primary, event_id=event_id, derived=derived)
        m.sql_id = self._register(m, primary, "derivation" if derived else "lookup", v)
        if derived:
            m.sql_lookup = lookup.strip()
            m.lookup_id = self._register(m, m.sql_lookup, "lookup", v)
        return m


def _sides_of(ev: dict) -> list[str]:
    s = (ev.get("sides") or "").lower()
    return ["bid", "ask"] if s in ("both", "") else [s]


def _in_list(items) -> str:
    return "(" + ", ".join(f"'{x}'" for x in items) + ")"


def detector_grids(ctx) -> list[int | None]:
    """Grids the detector may have used for depth/book_top (its default first)."""
    from forensics import detect
    out = []
    if ctx.data_kind == DataKind.BANDS:
        out.append(None)
    else:
        out.append(int(detect.DetectParams().grid_ms) * NS_PER_MS)
    if ctx.grid_ns and ctx.grid_ns not in out:
        out.append(ctx.grid_ns)
    return out


def vacuum_windows(ev: dict, ctx) -> tuple[int, int, int, int]:
    """(before from, before to, after from, after to) as the detector measures impact:
    [window_from - 300 s, window_from - 5 s] and [window_to, window_to + 120 s]."""
    from forensics import detect
    p = detect.DetectParams()
    vb, va = float(p.vacuum_before_s), float(p.vacuum_after_s)
    w0 = int(ev.get("window_from") if ev.get("window_from") is not None else ev["start_ts"])
    w1 = int(ev.get("window_to") if ev.get("window_to") is not None else ev["end_ts"])
    return w0 - int(vb * NS_PER_S), w0 - 5 * NS_PER_S, w1, w1 + int(va * NS_PER_S)


def _grid_cond(alias: str, g) -> str:
    return f"{alias}.grid_ns IS NULL" if g is None else f"{alias}.grid_ns = {g}"


def _derivations(ctx, ev: dict, c: str, cte: str) -> list[str]:
    """Candidate SQL recomputing detector column ``c`` from depth / book_top / level_changes /
    trades (each is kept only if it returns the detector's value)."""
    sides = _sides_of(ev)
    lcw = (f"{cte},\nw AS (  -- the event's level changes: its window, side(s) and band; maker actions only\n"
           f"  SELECT lc.* FROM level_changes lc, e\n"
           f"  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN {_in_list(sides)}\n"
           f"    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to\n"
           f"    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)\n"
           f"                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))\n"
           f"    AND lc.cause IN {MAKER_CAUSES})")
    dec = "FILTER (WHERE delta < 0)"
    q = (f"{lcw},\nq AS (SELECT coalesce(sum(traded) {dec}, 0) AS t, coalesce(sum(cancelled) {dec}, 0) AS c,\n"
         f"             coalesce(sum(added), 0) AS a FROM w)")
    if c in ("traded_qty", "cancelled_qty", "added_qty", "implied_qty", "traded_share", "traded_share_net",
             "levels_hit"):
        if ctx.data_kind != DataKind.BOOK:
            return []
        return [{
            "traded_qty": f"{q}\nSELECT t FROM q",
            "cancelled_qty": f"{q}\nSELECT c FROM q",
            "added_qty": f"{q}\nSELECT a FROM q",
            "implied_qty": f"{lcw}\nSELECT coalesce(sum(implied), 0) FROM w",
            "traded_share": f"{q}\nSELECT t / (t + c) FROM q",
            "traded_share_net": f"{q}\nSELECT t / (t + greatest(c - a, 0)) FROM q",
            "levels_hit": f"{lcw}\nSELECT count(DISTINCT side || ' ' || price::VARCHAR) {dec} FROM w",
        }[c]]
    if c == "trade_volume":
        aggr = _in_list("sell" if s == "bid" else "buy" for s in sides)
        return [f"{cte}\nSELECT coalesce(sum(t.size), 0) FROM trades t, e\n"
                f"WHERE t.exchange = e.exchange AND t.symbol = e.symbol AND t.aggressor IN {aggr}\n"
                f"  AND t.ts_ns > e.window_from AND t.ts_ns <= e.window_to"]
    if c == "speed_ms":
        return [f"{cte}\nSELECT (end_ts_ns - start_ts_ns) / 1e6 FROM e"]
    out = []
    if c.startswith("removed_frac_"):
        s = c.rsplit("_", 1)[1]
        out.append(f"{cte}\nSELECT greatest(0, (depth_before_{s} - depth_after_{s}) / depth_before_{s}) FROM e")
    if c == "removed_frac":
        b = " + ".join(f"coalesce(depth_before_{s}, 0)" for s in sides)
        a = " + ".join(f"coalesce(depth_after_{s}, 0)" for s in sides)
        out.append(f"{cte}\nSELECT (({b}) - ({a})) / ({b}) FROM e")
    if c == "price_move_bps":
        out.append(f"{cte}\nSELECT (mid_after - mid_before) / mid_before * 10000 FROM e")
    if c == "vacuum_ratio":
        out.append(f"{cte}\nSELECT impact_after / impact_before FROM e")
    for g in detector_grids(ctx):
        gc = _grid_cond("d", g)
        if c.startswith("depth_before_") or c.startswith("depth_after_"):
            s = c.rsplit("_", 1)[1]
            src = (f"FROM depth d, e WHERE d.exchange = e.exchange AND d.symbol = e.symbol AND {gc}\n"
                   f"  AND d.side = '{s}' AND d.band_pct = e.band_pct")
            span = "d.ts_ns BETWEEN e.window_from AND e.window_to"
            if c.startswith("depth_before_"):
                out.append(f"{cte}\nSELECT max(d.qty) {src}\n  AND {span}")
                out.append(f"{cte}\nSELECT d.qty {src}\n  AND d.ts_ns <= e.window_from ORDER BY d.ts DESC LIMIT 1")
            else:
                out.append(f"{cte}\nSELECT min(d.qty) {src}\n  AND {span}")
                out.append(f"{cte}\nSELECT d.qty {src}\n  AND d.ts_ns = e.window_to")
        if ctx.data_kind != DataKind.BOOK:
            continue
        gb = _grid_cond("b", g)
        top = f"FROM book_top b, e WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND {gb} AND b.mid IS NOT NULL"
        if c in ("spread_before", "mid_before"):
            out.append(f"{cte}\nSELECT b.{c.split('_')[0]} {top}\n  AND b.ts_ns <= e.window_from ORDER BY b.ts DESC LIMIT 1")
        if c in ("spread_after", "mid_after"):
            out.append(f"{cte}\nSELECT b.{c.split('_')[0]} {top}\n  AND b.ts_ns >= e.window_to ORDER BY b.ts LIMIT 1")
        if c in ("impact_before", "impact_after", "vacuum_ratio"):
            out.append(_impact_sql(cte, g, c))
    return out


def _impact_sql(cte: str, g, which: str) -> str:
    """Sum of 1-second |mid changes| (bps) per unit of base volume, before / after (detector's windows)."""
    win = {"before": "e.window_from - 300000000000 AND e.window_from - 5000000000",
           "after": "e.window_to AND e.window_to + 120000000000"}
    parts = []
    for w in ("before", "after"):
        parts.append(
            f"m_{w} AS (  -- last mid of each second, {w} the event\n"
            f"  SELECT b.ts_ns // 1000000000 AS sec, arg_max(b.mid, b.ts) AS mid FROM book_top b, e\n"
            f"  WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND {_grid_cond('b', g)} AND b.mid IS NOT NULL\n"
            f"    AND b.ts_ns BETWEEN {win[w]} GROUP BY sec),\n"
            f"i_{w} AS (SELECT (SELECT sum(abs(mid - prev) / prev) * 10000 FROM\n"
            f"            (SELECT mid, lag(mid) OVER (ORDER BY sec) AS prev FROM m_{w}))\n"
            f"          / (SELECT sum(t.size) FROM trades t, e WHERE t.exchange = e.exchange AND t.symbol = e.symbol\n"
            f"               AND t.ts_ns BETWEEN {win[w]}) AS impact)")
    sel = {"impact_before": "SELECT impact FROM i_before", "impact_after": "SELECT impact FROM i_after",
           "vacuum_ratio": "SELECT i_after.impact / i_before.impact FROM i_after, i_before"}[which]
    return f"{cte},\n" + ",\n".join(parts) + "\n" + sel


def _ev_cte(ctx, eid: str) -> str:
    from forensics.report.context import sql_str
    return f"WITH e AS (SELECT * FROM events WHERE {ctx.where} AND event_id = {sql_str(eid)})"


def _lookup_sql(ctx, eid: str, c: str) -> str:
    """Read one detector column back from the events view (which shows sizes and prices in real
    units, see schema.EXACT['events'])."""
    from forensics.report.context import sql_str
    return f"SELECT {_ident(c)} FROM events\nWHERE {ctx.where} AND event_id = {sql_str(eid)}"


def event_metrics(ctx, run: Runner, ev: dict) -> dict[str, Metric]:
    """Every figure for one event: the detector's columns (read back and, where possible,
    recomputed from the data) and the report's own."""
    from forensics.report.context import sql_str, sql_ts
    eid = ev["event_id"]
    out: dict[str, Metric] = {}
    defs = dict(DETECTOR_DEFINITIONS)
    defs.update(_detector_definitions())
    base = ctx.base
    start, end = int(ev["start_ts"]), int(ev["end_ts"])
    cte = _ev_cte(ctx, eid)
    sides = _sides_of(ev)

    # 1. the detector's figures
    cols = [c for c in ORDER if c in ev] + [c for c in ev if c not in ORDER]
    for c in cols:
        v = ev[c]
        if c in _ID_COLS or c.endswith("_ns") or isinstance(v, (list, dict)):
            continue
        if v is not None and not isinstance(v, (int, float, bool, str, Decimal)):
            continue
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue  # the detector did not measure it for this event
        if c in TRADE_COLS and not trades_known(ctx):
            continue  # measured against trades the store does not have: unknown, not 0
        out[c] = run.detector_metric(
            c, LABELS.get(c, c.replace("_", " ")), _lookup_sql(ctx, eid, c), _derivations(ctx, ev, c, cte),
            defs.get(c, f"Detector metric `{c}`."), lambda x, c=c: _display(c, x, ctx)[0],
            _display(c, py(v), ctx)[1], eid)

    has_window = ev.get("window_from") is not None and ev.get("window_to") is not None
    if has_window:
        during = f"ts_ns > {int(ev['window_from'])} AND ts_ns <= {int(ev['window_to'])}"
        span_txt = f"in the detector's window ({clock(int(ev['window_from']), ctx.tz)} – {clock(int(ev['window_to']), ctx.tz)})"
    else:
        during = f"ts BETWEEN {sql_ts(start)} AND {sql_ts(end)}"
        span_txt = "from start to end of the event"

    # 2. depth before / after from the grid, if the detector did not give it
    band = _band(ev, ctx)
    for side in ("bid", "ask"):
        if f"removed_frac_{side}" in out:
            continue
        if ctx.data_kind == DataKind.BOOK:
            table, gcond, cond, what = "depth", (f" AND grid_ns = {ctx.grid_ns}" if ctx.grid_ns else ""), \
                f"band_pct = {band}", "grid time"
        else:
            table, gcond, cond, what = "depth_bands", "", f"abs(band_pct) = {band}", "band sample"
        sel = f"SELECT qty FROM {table}\n  WHERE {ctx.where} AND side = '{side}' AND {cond}{gcond}\n"
        before = sel + f"    AND ts <= {sql_ts(start)} AND qty IS NOT NULL ORDER BY ts DESC LIMIT 1"
        after = sel + f"    AND ts >= {sql_ts(end)} AND qty IS NOT NULL ORDER BY ts LIMIT 1"
        out[f"grid_depth_before_{side}"] = run.metric(
            f"grid_depth_before_{side}", f"{side} depth ≤{band:g}% before", before,
            f"Resting {side} size within {band:g}% of mid at the last {what} at or before the event's start "
            f"({table}).", lambda x: qty(x, base), base, event_id=eid)
        out[f"grid_depth_after_{side}"] = run.metric(
            f"grid_depth_after_{side}", f"{side} depth ≤{band:g}% after", after,
            f"Resting {side} size within {band:g}% of mid at the first {what} at or after the event's end "
            f"({table}).", lambda x: qty(x, base), base, event_id=eid)
        out[f"grid_removed_{side}"] = run.metric(
            f"grid_removed_{side}", f"{side} depth ≤{band:g}% removed",
            f"SELECT 1 - a.qty / nullif(b.qty, 0) FROM\n ({after}) a,\n ({before}) b",
            f"1 - (depth after) / (depth before): the share of {side} depth within {band:g}% of mid that "
            f"disappeared between those two {what}s ({table}); negative when it grew.", removed, "share",
            event_id=eid)

    # 3. traded / cancelled / added per side (level data): same filter as the detector's totals
    if ctx.data_kind == DataKind.BOOK and ctx.changes is not None and trades_known(ctx):
        for side in ("bid", "ask"):
            if has_window and ev.get("bid_floor") is not None:
                ref = f"FROM events WHERE {ctx.where} AND event_id = {sql_str(eid)}"
                lim = (f"price >= (SELECT bid_floor {ref})" if side == "bid" else f"price <= (SELECT ask_cap {ref})")
                band_txt = f", inside the event's band ({'bid_floor' if side == 'bid' else 'ask_cap'})"
            else:
                lim, band_txt = "true", ""
            for what in ("traded", "cancelled", "added"):
                flt = "" if what == "added" else " AND delta < 0"
                out[f"{what}_{side}"] = run.metric(
                    f"{what}_{side}", f"{side} size {what}",
                    f"SELECT coalesce(sum({what}), 0) FROM level_changes\n"
                    f"WHERE {ctx.where} AND side = '{side}' AND cause IN {MAKER_CAUSES}{flt}\n"
                    f"  AND {lim}\n  AND {during}",
                    f"Sum of level_changes.{what} on the {side} side {span_txt}{band_txt}; gap and truncation "
                    "rows excluded.", lambda x: qty(x, base), base, event_id=eid)

    # 4. trades in the same window
    if ctx.trades.height:
        for aggr in ("sell", "buy"):
            out[f"{aggr}_volume"] = run.metric(
                f"{aggr}_volume", f"{aggr}-initiated volume",
                f"SELECT coalesce(sum(size), 0) FROM trades\nWHERE {ctx.where} AND aggressor = '{aggr}'\n"
                f"  AND {during}",
                f"Traded size whose aggressor {'sold (hit the bids)' if aggr == 'sell' else 'bought (lifted the asks)'}, "
                f"{span_txt}.", lambda x: qty(x, base), base, event_id=eid)

    # 5. the vacuum: mean spread over the detector's before/after windows; impact if the detector lacks it
    b0, b1, a0, a1 = vacuum_windows(ev, ctx)
    if ctx.top.height and ctx.data_kind == DataKind.BOOK:
        grid = f" AND grid_ns = {ctx.grid_ns}" if ctx.grid_ns else ""
        for when, lo, hi in (("before", b0, b1), ("after", a0, a1)):
            out[f"spread_bps_{when}"] = run.metric(
                f"spread_bps_{when}", f"mean spread {when}",
                f"SELECT avg(spread / mid * 10000) FROM book_top\n"
                f"WHERE {ctx.where}{grid}\n  AND coalesce(valid, true) AND NOT coalesce(crossed, false)\n"
                f"  AND ts BETWEEN {sql_ts(lo)} AND {sql_ts(hi)}",
                f"Mean bid-ask spread in bps of mid from {clock(lo, ctx.tz)} to {clock(hi, ctx.tz)} "
                f"({duration(hi - lo)} {when} the event; book_top).", lambda x: f"{x:.2f} bps", "bps", event_id=eid)
    if not ({"impact_before", "impact_after", "vacuum_ratio"} & set(out)) and ctx.trades.height:
        cte2 = _impact_cte(ctx, b0, b1, a0, a1)
        defn = (f"Price impact per unit volume {{when}} the event ({{span}}): the sum of absolute moves of the "
                f"last trade price between consecutive seconds (bps) divided by the volume traded ({base}).")
        for when, lo, hi in (("before", b0, b1), ("after", a0, a1)):
            out[f"impact_{when}"] = run.metric(
                f"impact_{when}", f"impact per {base} {when}", cte2 + f"\nSELECT bps_per_unit FROM imp WHERE win = '{when}'",
                defn.format(when=when, span=f"{clock(lo, ctx.tz)} – {clock(hi, ctx.tz)}"),
                lambda x: f"{x:.3g} bps/{base}", f"bps per {base}", event_id=eid)
        out["vacuum_ratio"] = run.metric(
            "vacuum_ratio", "impact per volume, after / before",
            cte2 + "\nSELECT max(bps_per_unit) FILTER (WHERE win = 'after')\n"
                   "     / nullif(max(bps_per_unit) FILTER (WHERE win = 'before'), 0) FROM imp",
            "How many times more each unit of traded volume moved the price after the event than before.",
            lambda x: f"{x:.1f}×", "ratio", event_id=eid)
    return out


def _impact_cte(ctx, b0: int, b1: int, a0: int, a1: int) -> str:
    from forensics.report.context import sql_ts
    return f"""WITH px AS (  -- last trade price and volume per second, before / after the event
  SELECT CASE WHEN ts < {sql_ts(a0)} THEN 'before' ELSE 'after' END AS win,
         ts_ns // 1000000000 AS sec, arg_max(price, seq) AS last_px, sum(size) AS vol
  FROM trades
  WHERE {ctx.where}
    AND (ts BETWEEN {sql_ts(b0)} AND {sql_ts(b1)} OR ts BETWEEN {sql_ts(a0)} AND {sql_ts(a1)})
  GROUP BY ALL),
mv AS (  -- absolute move between consecutive seconds with trades, in bps
  SELECT win, vol, abs(last_px - lag(last_px) OVER w) / lag(last_px) OVER w * 10000 AS move_bps
  FROM px WINDOW w AS (PARTITION BY win ORDER BY sec)),
imp AS (SELECT win, sum(move_bps) / sum(vol) AS bps_per_unit FROM mv GROUP BY win)"""


def window_metrics(ctx, run: Runner) -> dict[str, Metric]:
    """A few figures for the whole window (useful with or without events)."""
    from forensics.report.context import sql_ts
    base, quote = ctx.base, ctx.quote
    out: dict[str, Metric] = {}
    span = f"ts BETWEEN {sql_ts(ctx.ts_from)} AND {sql_ts(ctx.ts_to)}"
    if ctx.data_kind == DataKind.BOOK and ctx.top.height:
        grid = f" AND grid_ns = {ctx.grid_ns}" if ctx.grid_ns else ""
        src = f"FROM book_top\nWHERE {ctx.where}{grid} AND coalesce(valid, true)\n  AND {span}"
        for k, agg, label in (("window_mid_max", "max(mid)", "highest mid"), ("window_mid_min", "min(mid)", "lowest mid")):
            out[k] = run.metric(k, label, f"SELECT {agg} {src}", f"{label.capitalize()} price in the window (book_top).",
                                lambda x: qty(x, quote), quote)
        out["window_spread_bps"] = run.metric(
            "window_spread_bps", "mean spread", f"SELECT avg(spread / mid * 10000) {src} AND NOT coalesce(crossed, false)",
            "Mean bid-ask spread over the window, bps of mid (book_top).", lambda x: f"{x:.2f} bps", "bps")
    elif ctx.trades.height:
        src = f"FROM trades\nWHERE {ctx.where}\n  AND {span}"
        for k, agg, label in (("window_price_max", "max(price)", "highest trade price"),
                              ("window_price_min", "min(price)", "lowest trade price")):
            out[k] = run.metric(k, label, f"SELECT {agg} {src}", f"{label.capitalize()} in the window (trades).",
                                lambda x: qty(x, quote), quote)
    if ctx.trades.height:
        for aggr in ("sell", "buy"):
            k = f"window_{aggr}_volume"
            out[k] = run.metric(
                k, f"{aggr}-initiated volume",
                f"SELECT coalesce(sum(size), 0) FROM trades\nWHERE {ctx.where} AND aggressor = '{aggr}'\n  AND {span}",
                f"Traded size with a {aggr} aggressor over the whole window (trades).", lambda x: qty(x, base), base)
    return out


def _band(ev: dict, ctx) -> float:
    b = ev.get("band_pct")
    if isinstance(b, (int, float)) and not (isinstance(b, float) and math.isnan(b)):
        return float(b)
    return 1.0 if 1.0 in ctx.bands else (ctx.bands[len(ctx.bands) // 2] if ctx.bands else 1.0)


def _detector_definitions() -> dict:
    from forensics import detect
    for name in ("METRIC_DEFINITIONS", "DEFINITIONS"):
        d = getattr(detect, name, None)
        if isinstance(d, dict):
            return {k: (v if isinstance(v, str) else str(v.get("definition", v)) if isinstance(v, dict) else str(v))
                    for k, v in d.items()}
    return {}


def trades_known(ctx) -> bool:
    """Whether the store has trades for the report's window: without them nothing can say whether
    depth was traded or cancelled (the detector of the day may still have written 0s)."""
    return bool(getattr(ctx, "trades_known", ctx.trades.height > 0))


def deciding_file(ctx, ns: int) -> str:
    """The file that would decide traded vs cancelled for an event on that day."""
    from forensics.report.context import local_dt
    day = local_dt(int(ns), "UTC").strftime("%Y-%m-%d")
    if ctx.exchange.lower().startswith("binance"):
        return f"the venue's trades for that day, Binance's `{ctx.symbol}-aggTrades-{day}.csv` (or `-trades-`)"
    return f"the venue's trades file for {ctx.symbol} on {day} (UTC)"


def report_label(ev: dict, ctx) -> str:
    """The label the report can stand behind with the data present: the detector's, except that a
    causal label (withdrawal / pull / consumption / mixed) without any trades in the store becomes
    ``depth_collapse``, and a fall in a band the data-quality checks flagged becomes ``data_anomaly``
    (the detector of issue 11 writes these labels itself; older events are relabelled here)."""
    label = ev.get("label") or "mixed"
    if label in ("depth_collapse", "data_anomaly", "flicker"):
        return label
    if event_flags(ev, ctx):
        return "data_anomaly"
    if label in Label.causal() and not trades_known(ctx):
        return "depth_collapse"
    return label


def event_flags(ev: dict, ctx) -> list[dict]:
    """Data-quality flags on the event's band and side(s) overlapping the event in time."""
    flags = getattr(ctx, "flags", None)
    if flags is None or flags.height == 0:
        return []
    band = _band(ev, ctx)
    sides = _sides_of(ev)
    lo = int(ev.get("window_from") if ev.get("window_from") is not None else ev["start_ts"])
    hi = int(ev.get("window_to") if ev.get("window_to") is not None else ev["end_ts"])
    out = []
    for f in flags.iter_rows(named=True):
        if f.get("band_pct") is not None and abs(f["band_pct"] - band) > 1e-9:
            continue
        if f.get("side") is not None and f["side"] not in sides:
            continue
        if f.get("band_pct") is None and f.get("kind") not in ("non_monotonic", "avg_price_wrong_side"):
            continue
        a, b = f.get("first_ts"), f.get("last_ts")
        if a is not None and b is not None and (b < lo or a > hi):
            continue
        out.append(f)
    return out


def traded_text(f: dict) -> str | None:
    """Gross and net traded share side by side (one definition each, one formatter)."""
    g, n = f.get("traded_gross"), f.get("traded_net")
    if g is not None and n is not None:
        return f"{pct(g)} of the removed volume traded gross, {pct(n)} net of re-posting"
    if g is not None or n is not None:
        return f"{pct(g if g is not None else n)} of the removed volume traded"
    return None


def _first(m: dict[str, Metric], *keys):
    for k in keys:
        if k in m and m[k].value is not None:
            return m[k].value
    return None


def facts(ev: dict, m: dict[str, Metric], ctx) -> dict:
    """The handful of numbers the sentences use, the detector's preferred."""
    start, end = int(ev["start_ts"]), int(ev["end_ts"])
    f = {
        "start": start, "end": end, "dur_ns": end - start,
        "band": _band(ev, ctx),
        "bid_share": _first(m, "removed_frac_bid", "grid_removed_bid"),
        "ask_share": _first(m, "removed_frac_ask", "grid_removed_ask"),
        "traded_share": _first(m, "traded_share_net", "traded_share"),
        "traded_net": _first(m, "traded_share_net"), "traded_gross": _first(m, "traded_share"),
        "levels": _first(m, "levels_hit"),
        "lag_ms": _first(m, "side_lag_ms"),
        "bid_before": _first(m, "depth_before_bid", "grid_depth_before_bid"),
        "bid_after": _first(m, "depth_after_bid", "grid_depth_after_bid"),
        "ask_before": _first(m, "depth_before_ask", "grid_depth_before_ask"),
        "ask_after": _first(m, "depth_after_ask", "grid_depth_after_ask"),
        "sell": _first(m, "sell_volume"), "buy": _first(m, "buy_volume"),
        "impact_ratio": _first(m, "vacuum_ratio"),
        "impact_before": _first(m, "impact_before"), "impact_after": _first(m, "impact_after"),
        "spread_before": _first(m, "spread_bps_before"), "spread_after": _first(m, "spread_bps_after"),
        "recovery_ms": _first(m, "recovery_ms"),
        "move_after_bps": _first(m, "price_move_after_bps"), "move_bps": _first(m, "price_move_bps"),
    }
    if f["traded_share"] is None:
        t = sum(m[f"traded_{s}"].value or 0 for s in _sides_of(ev) if f"traded_{s}" in m)
        c = sum(m[f"cancelled_{s}"].value or 0 for s in _sides_of(ev) if f"cancelled_{s}" in m)
        f["traded_share"] = t / (t + c) if t + c > 0 else None
        f["traded_gross"] = f["traded_share"]
    shares = [f[f"{x}_share"] for x in _sides_of(ev)]
    grew = [f[f"{x}_after"] > f[f"{x}_before"] for x in _sides_of(ev)
            if f[f"{x}_after"] is not None and f[f"{x}_before"] is not None]
    # nothing left the band on the side(s) the event is about: no share of a removal to speak of
    f["nothing_removed"] = bool(shares) and all(x is not None and x <= NOTHING_REMOVED for x in shares) \
        or (bool(grew) and all(grew))
    if f["nothing_removed"]:
        f["traded_share"] = f["traded_gross"] = f["traded_net"] = None
    if not trades_known(ctx):
        f["traded_share"] = f["traded_gross"] = f["traded_net"] = None
        f["sell"] = f["buy"] = f["impact_ratio"] = f["impact_before"] = f["impact_after"] = None
    return f


# ---- words --------------------------------------------------------------------------------------

def headline(ev: dict, m: dict[str, Metric], ctx) -> str:
    f = facts(ev, m, ctx)
    label = ev.get("label") or "mixed"
    sides = _sides_of(ev)
    when = f"On {clock(f['start'], ctx.tz, True)[:10]} at {clock(f['start'], ctx.tz)} ({_tzl(ctx, f['start'])})"
    band = f"within {f['band']:g}% of mid"
    parts = []
    bid, ask = f["bid_share"], f["ask_share"]
    if label == "flicker" or ev.get("trigger") == "flicker":
        pairs = _first(m, "flicker_pairs")
        size = _first(m, "cancelled_qty")
        what = (f"{pairs} large orders" if pairs else "large orders") + (f" ({qty(size, ctx.base)})" if size else "")
        s = (f"{when}, {what} were posted away from the touch and pulled again within seconds, repeatedly over "
             f"{duration(f['dur_ns'])}")
        if f["traded_share"] is not None:
            s += f"; {pct(f['traded_share'])} of them traded"
        return s + ": " + Label.FLICKER.info.meaning + "."
    if label == "consumption" and f["nothing_removed"]:
        side = sides[0] if len(sides) == 1 else "bid"
        aggr = "sell" if side == "bid" else "buy"
        vol = f["sell"] if aggr == "sell" else f["buy"]
        b0, a0 = f[f"{side}_before"], f[f"{side}_after"]
        depth = (f" ({qty(b0, ctx.base)} before, {qty(a0, ctx.base)} after)" if b0 is not None and a0 is not None
                 else "")
        s = (f"{when}, {aggr}-initiated trades" + (f" ({qty(vol, ctx.base)})" if vol else "")
             + f" hit the {side}s over {duration(f['dur_ns'])} while {side} depth {band} did not fall{depth}: "
             f"the detector calls it consumption from the {aggr} program, but no depth was removed, so there is "
             "no traded share of a removal to report.")
        return s
    if label == "consumption":
        side = sides[0] if len(sides) == 1 else "bid"
        share = bid if side == "bid" else ask
        aggr = "sell" if side == "bid" else "buy"
        amount = f"{pct(share)} of {side} depth" if share is not None else f"{side} depth"
        s = f"{when}, {amount} {band} was removed over {duration(f['dur_ns'])}"
        tail = []
        if traded_text(f):
            tail.append(traded_text(f))
        corr = _first(m, "erosion_corr")
        if f["levels"]:
            tail.append(f"eroding {f['levels']} price levels"
                        + (" from the touch outwards" if corr is not None and corr > 0.2 else ""))
        s += ("; " + ", ".join(tail) if tail else "")
        s += ": " + Label.CONSUMPTION.info.meaning.format(aggr=aggr) + "."
        if churn(f):
            s += (f" The label rests on the net share: gross, only {pct(f['traded_gross'])} of the removed volume "
                  "traded and the rest was re-posted (maker churn), so treat it as a hypothesis.")
        return s
    if "bid" in sides and "ask" in sides and bid is not None and ask is not None:
        parts.append(f"{pct(bid)} of bid depth {band} and {pct(ask)} of ask depth disappeared "
                     f"within {duration(f['dur_ns'])}")
    else:
        side = sides[0] if len(sides) == 1 else ("bid" if bid is not None or ask is None else "ask")
        share = bid if side == "bid" else ask
        who = "resting depth" if len(sides) == 2 and share is None else f"{side} depth"
        amount = f"{pct(share)} of {who}" if share is not None else who
        parts.append(f"{amount} {band} disappeared within {duration(f['dur_ns'])}")
    if traded_text(f):
        low = max(x for x in (f["traded_gross"], f["traded_net"], f["traded_share"]) if x is not None) < 0.25
        parts.append(("only " if low else "") + traded_text(f))
    if f["levels"]:
        both = len(sides) == 2
        sync = ("simultaneous" if label == "synchronized_withdrawal" else "spread")
        parts.append(f"the removal was {sync} across {f['levels']} price levels" + (" on both sides" if both else ""))
    text = label_meaning(label).format(side=sides[0], aggr="sell")
    out = f"{when}, " + "; ".join(parts) + ": " + text + "."
    if label == "depth_collapse":
        out += (f" The store has no trades for this window: ingesting {deciding_file(ctx, f['start'])} would "
                "decide whether it was traded or cancelled.")
    elif label == "data_anomaly":
        kinds = sorted({fl["kind"] for fl in event_flags(ev, ctx)})
        out += f" Flags on that band: {', '.join(kinds) or 'data quality'} (see the caveats)."
    return out


def churn(f: dict) -> bool:
    """Net share says 'traded', gross says most of it was cancelled: re-posting saturated the net."""
    return (f.get("traded_net") is not None and f.get("traded_gross") is not None
            and f["traded_net"] >= 0.5 and f["traded_gross"] < 0.5)


def _tzl(ctx, ns):
    from forensics.report.context import tz_offset_label
    return tz_offset_label(ctx.tz, ns)


def _change(share) -> str:
    """Removed share -> signed change with a real minus sign: 0.87 -> '−87%', -0.04 -> '+4%'."""
    return pct(-share, signed=True).replace("-", "−")


def annotation(ev: dict, m: dict[str, Metric], ctx) -> str:
    """Short text next to the red line on the depth chart: 'bids −87% in 1.2 s'."""
    f = facts(ev, m, ctx)
    lines = []
    sides = _sides_of(ev)
    first = "ask" if f["lag_ms"] is not None and f["lag_ms"] < 0 else "bid"
    order = [first, "ask" if first == "bid" else "bid"]
    for i, side in enumerate(s for s in order if s in sides):
        share = f["bid_share"] if side == "bid" else f["ask_share"]
        if share is None:
            continue
        if not lines:
            lines.append(f"{side}s {_change(share)} in {duration(f['dur_ns'])}")
        elif f["lag_ms"] is not None and abs(f["lag_ms"]) < 1:
            lines.append(f"{side}s {_change(share)}, at the same instant")
        elif f["lag_ms"] is not None:
            lines.append(f"{side}s {_change(share)}, {duration(int(abs(f['lag_ms']) * NS_PER_MS))} later")
        else:
            lines.append(f"{side}s {_change(share)}")
    if f["traded_gross"] is not None and f["traded_net"] is not None:
        lines.append(f"{pct(f['traded_gross'])} traded gross, {pct(f['traded_net'])} net")
    elif f["traded_share"] is not None:
        lines.append(f"{pct(f['traded_share'])} traded")
    elif not trades_known(ctx):
        lines.append("no trades: cause unknown")
    return "\n".join(lines) or label_short(ev.get("label"), ev.get("label") or "event")




def phases(ev: dict, m: dict[str, Metric], ctx) -> tuple[str, str]:
    """(phase 1: the removal, phase 2: the vacuum) in plain language."""
    f = facts(ev, m, ctx)
    base = ctx.base
    label = ev.get("label") or "mixed"
    t0, t1 = clock(f["start"], ctx.tz), clock(f["end"], ctx.tz)
    p1 = [f"Between {t0} and {t1} ({duration(f['dur_ns'])}), "]
    side_txt = []
    for side in _sides_of(ev):
        b, a = f[f"{side}_before"], f[f"{side}_after"]
        share = f[f"{side}_share"]
        if b is not None and a is not None:
            verb = "rose" if a > b else "fell" if a < b else "stayed at"
            change = pct((a - b) / b, True).replace("-", "−") if b else "n/a"
            side_txt.append(f"resting {side}s within {f['band']:g}% of mid {verb} from {qty(b, base)} to "
                            f"{qty(a, base)} ({change})" if a != b else
                            f"resting {side}s within {f['band']:g}% of mid stayed at {qty(b, base)}")
        elif share is not None:
            side_txt.append(f"{pct(share)} of the {side} depth within {f['band']:g}% of mid vanished")
    p1.append("; ".join(side_txt) if side_txt else "the book thinned")
    bands = getattr(ctx, "data_kind", None) == DataKind.BANDS or ev.get("data_kind") == DataKind.BANDS
    if bands and f["lag_ms"] is None and len(_sides_of(ev)) == 2:
        p1.append("; both sides fell between the same two band samples (which went first is unknown)")
    if f["lag_ms"] is not None and len(_sides_of(ev)) == 2:
        first, second = ("bid", "ask") if f["lag_ms"] >= 0 else ("ask", "bid")
        if abs(f["lag_ms"]) < 1:
            p1.append("; both sides started falling at the same instant")
        else:
            p1.append(f"; the {second} side started {duration(int(abs(f['lag_ms']) * NS_PER_MS))} after the "
                      f"{first} side")
    p1.append(". ")
    tr, cx = m.get("traded_bid"), m.get("cancelled_bid")
    label_done = label in ("depth_collapse", "data_anomaly") or f["nothing_removed"]
    if f["nothing_removed"] and label not in ("depth_collapse", "data_anomaly"):
        p1.append("Nothing left the band on that side, so no traded or cancelled share of a removal is given")
        if f["sell"] is not None:
            p1.append(f"; trades in the same interval: {qty(f['sell'], base)} sold into the bids and "
                      f"{qty(f['buy'], base)} bought from the asks")
        p1.append(". The band's depth did not fall despite the aggressive flow.")
    elif label_done:
        p1.append(Label(label).info.closing)
        if label == "depth_collapse":
            p1.append(f" The file that would decide it: {deciding_file(ctx, f['start'])}, ingested with "
                      "`forensics ingest`.")
        if ev.get("detector_label") and ev["detector_label"] != label:
            p1.append(f" (The detector labelled it {label_short(ev['detector_label'], ev['detector_label'])}; "
                      "the report does not repeat a cause the data present cannot support.)")
        if bands:
            p1.append(" Band data only: the timing inside the sampling step and a fall that recovers before "
                      "the next sample are not visible.")
    elif tr is not None and cx is not None:
        sides = _sides_of(ev)
        traded = sum(m[f"traded_{s}"].value or 0 for s in sides if f"traded_{s}" in m)
        cancelled = sum(m[f"cancelled_{s}"].value or 0 for s in sides if f"cancelled_{s}" in m)
        where = "both sides of the book" if len(sides) == 2 else f"the {sides[0]} side"
        added = sum(m[f"added_{s}"].value or 0 for s in sides if f"added_{s}" in m)
        p1.append(f"Of the {qty(traded + cancelled, base)} that left {where} inside the band, "
                  f"{qty(traded, base)} was executed and {qty(cancelled, base)} was cancelled")
        if f["levels"]:
            p1.append(f", across {f['levels']} price levels")
        if traded_text(f):
            p1.append(f"; {qty(added, base)} was posted again in the same window: " + traded_text(f)
                      if added else "; " + traded_text(f))
        p1.append(". ")
        if churn(f):
            p1.append("The net share saturates when re-posting exceeds cancelling (normal maker churn), so it "
                      "alone does not decide the label here. ")
    elif traded_text(f):
        t = traded_text(f)
        p1.append(("Only " + t if (f["traded_share"] or 0) < 0.5 else t[0].upper() + t[1:]) + ". ")
    if label_done:
        pass
    elif f["sell"] is not None:
        p1.append(f"Trades in the same interval: {qty(f['sell'], base)} sold into the bids and "
                  f"{qty(f['buy'], base)} bought from the asks. ")
    if label_done:
        pass
    elif bands:
        p1.append({
            "synchronized_withdrawal": "With little volume traded against it, the depth that vanished from both "
                                       "sides between two samples was cancelled, not eaten: a withdrawal of "
                                       "liquidity. ",
            "one_sided_pull": "With little volume traded against it, the depth that vanished from one side "
                              "between two samples was cancelled: makers stepped away from that side. ",
            "consumption": "The volume traded against the falling side between the two samples accounts for "
                           "the depth removed: it was eaten by aggressive orders. ",
        }.get(label, "Trading accounts for part of the removal only. "))
        p1.append("Band data only: the traded share compares the aggressive volume between the two samples "
                  "with the depth removed (an upper bound on what trading explains); the timing inside the "
                  "sampling step, the per-level split and a fall that recovers before the next sample are not "
                  "visible.")
    else:
        p1.append(label_closing(label) or "Both trading and cancellation contributed to the removal.")

    p2 = []
    b0, b1, a0, a1 = vacuum_windows(ev, ctx)
    if f["spread_before"] is not None and f["spread_after"] is not None:
        ratio = f["spread_after"] / f["spread_before"] if f["spread_before"] else None
        p2.append(f"In the {duration(a1 - a0)} after the event the mean spread was {f['spread_after']:.2f} bps of "
                  f"mid, against {f['spread_before']:.2f} bps in the {duration(b1 - b0)} before"
                  + (f" ({ratio:.1f}× wider)" if ratio and ratio >= 1.05 else "") + ". ")
    if f["move_after_bps"] is not None and abs(f["move_after_bps"]) >= 1:
        p2.append(f"The mid moved {f['move_after_bps']:+.0f} bps in the following minute. ")
    if f["impact_ratio"] is not None and f["impact_before"] is not None and f["impact_after"] is not None:
        r = f["impact_ratio"]
        vol = "traded volume (buys and sells: the impact is divided by all volume)"
        if r >= 1.5:
            p2.append(f"Afterwards each unit of {vol} moved the price {r:.1f} times more than before "
                      f"({f['impact_after']:.3g} vs {f['impact_before']:.3g} bps per {base}): with the resting "
                      f"depth gone, small orders moved the price as much as large ones did before "
                      f"(a liquidity vacuum).")
        else:
            p2.append(f"Price impact per unit volume afterwards was {r:.1f}× its level before "
                      f"({f['impact_after']:.3g} vs {f['impact_before']:.3g} bps per {base}): no liquidity vacuum "
                      f"followed.")
    elif ctx.trades.height:
        p2.append("Price impact per unit volume could not be compared (no trades or no book on one side of "
                  "the event). ")
    elif not trades_known(ctx):
        p2.append("Without trades, price impact per unit volume cannot be measured. ")
    if f["recovery_ms"] is not None:
        p2.append(f" Depth on the falling side(s) was back to half its pre-event level "
                  f"{duration(int(f['recovery_ms'] * NS_PER_MS))} after the end.")
    elif label in ("synchronized_withdrawal", "one_sided_pull", "depth_collapse") and "recovery_ms" in ev:
        p2.append(" Depth had not recovered to half its pre-event level within 10 minutes.")
    if not p2:
        p2.append("Not enough data after the event to measure the vacuum.")
    return "".join(p1).strip(), " ".join(x.strip() for x in p2)


# ---- caveats ------------------------------------------------------------------------------------

def caveats(ctx, events: list[dict], per_event: list[dict] | None = None) -> list[str]:
    out = list(ctx.notes)
    flags = getattr(ctx, "flags", None)
    if flags is not None and flags.height:
        for fl in flags.iter_rows(named=True):
            where = " ".join(x for x in (fl.get("side"), f"{fl['band_pct']:g}% band" if fl.get("band_pct") is not None
                                          else None) if x)
            span = (f", {clock(fl['first_ts'], ctx.tz)} – {clock(fl['last_ts'], ctx.tz)}"
                    if fl.get("first_ts") is not None and fl.get("last_ts") is not None else "")
            out.append(f"Data-quality flag `{fl['kind']}`{' (' + where + ')' if where else ''}{span}: {fl['detail']}; "
                       "flagged bands are hatched in the figures and not read as makers pulling quotes.")
    for pe in per_event or []:
        e = pe["event"]
        det, lab = e.get("detector_label"), e.get("label")
        if det and det != lab:
            why = ("the store has no trades for the window, so whether the depth was traded or cancelled is unknown"
                   if lab == "depth_collapse" else "its band is flagged by the data-quality checks over the event")
            out.append(f"Event {pe['n']} ({e['event_id']}): the detector labelled it "
                       f"{label_short(det, det)}, but {why}; the report shows it as {label_short(lab, lab)}.")
        f = facts(e, pe["metrics"], ctx)
        if lab == "consumption" and churn(f):
            out.append(f"Event {pe['n']}: labelled consumption on the net traded share ({pct(f['traded_net'])}); "
                       f"the gross share is {pct(f['traded_gross'])}: most of the removed size was cancelled and "
                       "re-posted (maker churn), which saturates the net share. The classifier needs the gross "
                       "share too before calling this consumption.")
    if ctx.gaps.height:
        for g in ctx.gaps.iter_rows(named=True):
            hit = [e["event_id"] for e in events
                   if g["ts_from"] <= e["end_ts"] and (g["ts_to"] or e["start_ts"]) >= e["start_ts"]]
            to = clock(g["ts_to"], ctx.tz) if g.get("ts_to") is not None else "the next snapshot"
            out.append(f"Data gap ({g.get('reason') or 'gap'}) from {clock(g['ts_from'], ctx.tz)} to {to}: "
                       "the book is unknown there and depth is not shown"
                       + (f"; it overlaps event(s) {', '.join(hit)}, whose figures are less certain." if hit else "."))
    for e in events:
        c = e.get("confidence")
        if c is not None and c < LOW_CONFIDENCE:
            out.append(f"Low confidence ({c:.2f}) for event {e['event_id']} "
                       f"({label_short(e.get('label'), e.get('label'))}): treat its label as a hypothesis.")
        evd = e.get("evidence")
        if isinstance(evd, dict):
            for k in ("caveats", "warnings", "flags"):
                v = evd.get(k)
                if isinstance(v, list):
                    out.extend(f"Event {e['event_id']}: {x}" for x in v if x)
                elif isinstance(v, str) and v:
                    out.append(f"Event {e['event_id']}: {v}")
    if ctx.data_kind == DataKind.BOOK and ctx.top.height:
        bad = ctx.top.filter(~pl.col("valid")).height
        if bad:
            out.append(f"{bad:,} of {ctx.top.height:,} top-of-book samples are crossed or invalid and were "
                       "excluded from spread figures.")
    if not events:
        out.append("No event was detected in the window; the charts show the book as it was.")
    return out


# ---- the document -------------------------------------------------------------------------------

def _event_json(ev: dict, ctx=None) -> dict:
    from forensics.report.context import iso_ns
    out = {}
    withheld = {}
    for k, v in ev.items():
        if k in ("start_ts", "end_ts"):
            out[k] = iso_ns(v)
            out[k + "_ns"] = int(v)
        elif k == "evidence" and isinstance(v, str):
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
        elif ctx is not None and k in TRADE_COLS and not trades_known(ctx):
            withheld[k] = py(v)
            out[k] = None          # unknown without trades (the detector of the day may have written 0)
        else:
            out[k] = py(v)
    if withheld:
        out["withheld_without_trades"] = withheld
    return out


def _reasoning(lines, ctx):
    """The detector's reasoning lines as the report can show them: sizes in the asset, and without
    trades no line that rests on them. Returns (lines, number dropped)."""
    if not isinstance(lines, list):
        return lines, 0
    out = [str(x).replace("base units", ctx.base) if ctx.base != "base units" else str(x) for x in lines]
    if trades_known(ctx):
        return out, 0
    keep = [x for x in out if not _TRADE_WORDS.search(x)]
    return keep, len(out) - len(keep)


_SHARE_LINE = re.compile(r"traded share \d+(?:\.\d+)?% net of re-adds \(\d+(?:\.\d+)?% gross\)")


def _restate(lines, m: dict):
    """The detector's reasoning with its traded shares in the report's format (one number, one
    format: '4.3% gross, 4.7% net' everywhere, not '5% net (4% gross)' next to '4.7%')."""
    if not isinstance(lines, list):
        return lines
    g, n = _first(m, "traded_share"), _first(m, "traded_share_net")
    if g is None or n is None:
        return lines
    return [_SHARE_LINE.sub(f"traded share {pct(g)} gross, {pct(n)} net of re-adds", str(x)) for x in lines]


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("forensics")
    except Exception:  # not installed (running from a checkout)
        return "dev"


def _rank(e: dict) -> tuple:
    return (label_rank(e.get("label")), -(e.get("confidence") or 0.0))


def pick_primary(ctx, evs: list[dict]) -> int | None:
    """--at: the most telling event within 60 s of it (else the nearest); a range: the most
    telling event (withdrawal > pull > consumption > mixed > flicker, then confidence)."""
    if not evs:
        return None
    idx = range(len(evs))
    if ctx.at is not None:
        near = [i for i in idx if abs(evs[i]["start_ts"] - ctx.at) <= 60 * NS_PER_S]
        if near:
            return min(near, key=lambda i: _rank(evs[i]) + (abs(evs[i]["start_ts"] - ctx.at),))
        return min(idx, key=lambda i: (abs(evs[i]["start_ts"] - ctx.at),) + _rank(evs[i]))
    return min(idx, key=lambda i: _rank(evs[i]) + (evs[i]["start_ts"],))


def compose(ctx, con, max_event_figures: int = 6) -> dict:
    """The report document (see module doc)."""
    from forensics.report import SCHEMA_VERSION
    from forensics.report.context import iso_ns, tz_offset_label

    run = Runner(con)
    evs = [dict(r) for r in ctx.events.iter_rows(named=True)]
    for e in evs:
        if isinstance(e.get("evidence"), str):
            try:
                e["evidence"] = json.loads(e["evidence"])
            except ValueError:
                pass
        e["detector_label"] = e.get("label")
        e["label"] = report_label(e, ctx)
        e["evidence"], e["evidence_dropped"] = _reasoning(e.get("evidence"), ctx)
    primary = pick_primary(ctx, evs)
    order = ([primary] + sorted((i for i in range(len(evs)) if i != primary), key=lambda i: _rank(evs[i]))
             if primary is not None else [])
    figured = set(order[:max_event_figures])
    per_event = []
    for n, i in enumerate(sorted(range(len(evs)), key=lambda i: evs[i]["start_ts"]), start=1):
        ev = evs[i]
        raw = {k: v for k, v in ctx.events.row(i, named=True).items()}
        m = event_metrics(ctx, run, raw)
        ev["evidence"] = _restate(ev.get("evidence"), m)
        if facts(ev, m, ctx)["nothing_removed"] and isinstance(ev.get("evidence"), list):
            keep = [x for x in ev["evidence"] if "traded share" not in str(x)]
            if len(keep) < len(ev["evidence"]):
                ev["evidence_dropped"] = (ev.get("evidence_dropped") or 0) + len(ev["evidence"]) - len(keep)
                ev["evidence_dropped_why"] = "they quote a traded share of a removal, and no depth was removed"
                ev["evidence"] = keep
        p1, p2 = phases(ev, m, ctx)
        per_event.append({
            "n": n, "index": i, "event": ev, "metrics": m, "headline": headline(ev, m, ctx),
            "annotation": annotation(ev, m, ctx), "phase1": p1, "phase2": p2,
            "primary": i == primary, "figures": i in figured,
        })
    wm = window_metrics(ctx, run)
    cav = caveats(ctx, evs, per_event)
    ref = ctx.at if ctx.at is not None else ctx.ts_from
    span = (f"between {clock(ctx.ts_from, ctx.tz, True)} and {clock(ctx.ts_to, ctx.tz, True)} "
            f"({tz_offset_label(ctx.tz, ctx.ts_from)})")
    if primary is not None:
        head = next(p["headline"] for p in per_event if p["primary"])
        gap = evs[primary]["start_ts"] - ctx.at if ctx.at is not None else 0
        if abs(gap) > 60 * NS_PER_S:
            head = (f"No liquidity cliff was detected within a minute of {clock(ctx.at, ctx.tz)} "
                    f"({tz_offset_label(ctx.tz, ctx.at)}); the nearest event is {duration(abs(gap))} "
                    f"{'later' if gap > 0 else 'earlier'}. " + head)
    elif str(ctx.provenance.get("events", "")).startswith("unavailable"):
        head = (f"Event detection is unavailable here (forensics.detect is not installed): the report shows "
                f"{ctx.exchange} {ctx.symbol} {span} without classifying any cliff.")
        cav.insert(0, "No detector: events were neither found in the store nor detected; run `forensics detect`.")
    else:
        head = f"No liquidity cliff was detected in {ctx.exchange} {ctx.symbol} {span}."
    metrics_json = ([mm.as_json() for mm in wm.values()]
                    + [mm.as_json() for p in per_event for mm in p["metrics"].values()])
    events_json = []
    for p in per_event:
        ej = _event_json(ctx.events.row(p["index"], named=True), ctx)
        ej["report_label"] = p["event"]["label"]
        ej["n"] = p["n"]
        ej["primary"] = p["primary"]
        ej["headline"] = p["headline"]
        ej["narrative"] = {"phase1": p["phase1"], "phase2": p["phase2"]}
        ej["report_metrics"] = {k: mm.value for k, mm in p["metrics"].items() if mm.source == "report"}
        b0, b1, a0, a1 = vacuum_windows(p["event"], ctx)
        ej["vacuum_windows"] = {"before": [iso_ns(b0), iso_ns(b1)], "after": [iso_ns(a0), iso_ns(a1)]}
        events_json.append(ej)
    doc_json = {
        "schema_version": SCHEMA_VERSION,
        "generated_by": f"forensics {_version()}",
        "generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exchange": ctx.exchange, "symbol": ctx.symbol,
        "window": {"from": iso_ns(ctx.ts_from), "to": iso_ns(ctx.ts_to), "tz": ctx.tz,
                   "tz_offset": tz_offset_label(ctx.tz, ref), "at": iso_ns(ctx.at),
                   "from_ns": ctx.ts_from, "to_ns": ctx.ts_to},
        "data_kind": str(ctx.data_kind),
        "grid_ms": (ctx.grid_ns / NS_PER_MS) if ctx.grid_ns else None,
        "bands_pct": ctx.bands,
        "units": {"size": ctx.base, "price": ctx.quote, "notional": ctx.quote, "time": "UTC ISO-8601"},
        "instrument": ({"price_decimals": ctx.inst.price_decimals, "size_decimals": ctx.inst.size_decimals,
                        "tick": ctx.inst.tick, "lot": ctx.inst.lot} if ctx.inst else None),
        "units_note": ("events[] are the detector's rows verbatim (stored units: sizes in lots, prices in ticks, "
                       "mid_* = bid + ask, window_* in UTC ns); metrics[] are in real units "
                       f"({ctx.base}, {ctx.quote}) and each carries the SQL that returns it."),
        "headline": head,
        "primary_event_id": evs[primary]["event_id"] if primary is not None else None,
        "events": events_json,
        "metrics": metrics_json,
        "sql": run.snippets,
        "caveats": cav,
        "provenance": ctx.provenance,
        "gaps": [{"from": iso_ns(g["ts_from"]), "to": iso_ns(g.get("ts_to")), "reason": g.get("reason")}
                 for g in ctx.gaps.iter_rows(named=True)],
        "figures": {},
    }
    doc_json["window_metrics"] = {k: mm.value for k, mm in wm.items()}
    doc_json["trades_in_store"] = trades_known(ctx)
    flags = getattr(ctx, "flags", None)
    doc_json["data_quality_flags"] = ([{**r, "first": iso_ns(r["first_ts"]), "last": iso_ns(r["last_ts"])}
                                       for r in flags.iter_rows(named=True)] if flags is not None else [])
    return {"json": doc_json, "events": per_event, "headline": head, "caveats": cav, "primary": primary,
            "window_metrics": wm}
