"""The evidence: every figure of an event (or the window) as a :class:`Metric` whose ``sql``,
run on the store's views (``forensics sql``), returns its value. Detector figures are read back
from the events view and, where a derivation from depth / book_top / level_changes / trades
returns the same value, that derivation becomes the primary SQL (:class:`Runner`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from decimal import Decimal

from forensics.report.fmt import clock, duration, num, pct, py, qty, removed
from forensics.timeutil import NS_PER_MS, NS_PER_S
from forensics.vocab import Aggressor, Cause, DataKind


#: level_changes causes that are maker actions (gap / truncation rows are data artefacts)
MAKER_CAUSES = "(" + ", ".join(f"'{c}'" for c in Cause.maker_actions()) + ")"
#: relative tolerance for accepting a derivation SQL as reproducing a detector value
MATCH_RTOL = 1e-9
#: detector columns measured from trades: without trades in the store they are unknown, not 0
TRADE_COLS = ("traded_share", "traded_share_net", "traded_qty", "cancelled_qty", "implied_qty", "trade_volume",
              "impact_before", "impact_after", "vacuum_ratio")
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


def display(key: str, v, ctx) -> tuple[str, str]:
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


def event_sides(ev: dict) -> list[str]:
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
    sides = event_sides(ev)
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
    recomputed from the data) and the report's own, in this order (it numbers the SQL snippets)."""
    out = _detector_figures(ctx, run, ev)
    during, span_txt = _event_span(ctx, ev)
    out.update(_grid_depth_figures(ctx, run, ev, have=out))
    if ctx.data_kind == DataKind.BOOK and ctx.changes is not None and trades_known(ctx):
        out.update(_flow_figures(ctx, run, ev, during, span_txt))
    if ctx.trades.height:
        out.update(_volume_figures(ctx, run, ev, during, span_txt))
    out.update(_vacuum_figures(ctx, run, ev, have=out))
    return out


def _detector_figures(ctx, run: Runner, ev: dict) -> dict[str, Metric]:
    """1. the detector's figures, most telling first; what it did not measure (or measured
    against trades the store does not have) is left out."""
    eid = ev["event_id"]
    defs = dict(DETECTOR_DEFINITIONS)
    defs.update(_detector_definitions())
    cte = _ev_cte(ctx, eid)
    out: dict[str, Metric] = {}
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
            defs.get(c, f"Detector metric `{c}`."), lambda x, c=c: display(c, x, ctx)[0],
            display(c, py(v), ctx)[1], eid)
    return out


def _has_window(ev: dict) -> bool:
    return ev.get("window_from") is not None and ev.get("window_to") is not None


def _event_span(ctx, ev: dict) -> tuple[str, str]:
    """(SQL time condition, words) for the event's span: the detector's window, else start..end."""
    from forensics.report.context import sql_ts
    if _has_window(ev):
        during = f"ts_ns > {int(ev['window_from'])} AND ts_ns <= {int(ev['window_to'])}"
        span_txt = f"in the detector's window ({clock(int(ev['window_from']), ctx.tz)} – {clock(int(ev['window_to']), ctx.tz)})"
    else:
        during = f"ts BETWEEN {sql_ts(int(ev['start_ts']))} AND {sql_ts(int(ev['end_ts']))}"
        span_txt = "from start to end of the event"
    return during, span_txt


def _grid_depth_figures(ctx, run: Runner, ev: dict, have: dict) -> dict[str, Metric]:
    """2. depth before / after from the grid (and the share removed), per side the detector did
    not measure itself."""
    from forensics.report.context import sql_ts
    eid, base = ev["event_id"], ctx.base
    start, end = int(ev["start_ts"]), int(ev["end_ts"])
    band = event_band(ev, ctx)
    out: dict[str, Metric] = {}
    for side in ("bid", "ask"):
        if f"removed_frac_{side}" in have:
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
    return out


def _flow_figures(ctx, run: Runner, ev: dict, during: str, span_txt: str) -> dict[str, Metric]:
    """3. traded / cancelled / added per side (level data): same filter as the detector's totals."""
    from forensics.report.context import sql_str
    eid, base = ev["event_id"], ctx.base
    out: dict[str, Metric] = {}
    for side in ("bid", "ask"):
        if _has_window(ev) and ev.get("bid_floor") is not None:
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
    return out


def _volume_figures(ctx, run: Runner, ev: dict, during: str, span_txt: str) -> dict[str, Metric]:
    """4. sell- and buy-initiated volume in the same window."""
    eid, base = ev["event_id"], ctx.base
    out: dict[str, Metric] = {}
    for aggr in (Aggressor.SELL, Aggressor.BUY):
        out[f"{aggr}_volume"] = run.metric(
            f"{aggr}_volume", f"{aggr}-initiated volume",
            f"SELECT coalesce(sum(size), 0) FROM trades\nWHERE {ctx.where} AND aggressor = '{aggr}'\n"
            f"  AND {during}",
            f"Traded size whose aggressor {'sold (hit the bids)' if aggr == Aggressor.SELL else 'bought (lifted the asks)'}, "
            f"{span_txt}.", lambda x: qty(x, base), base, event_id=eid)
    return out


def _vacuum_figures(ctx, run: Runner, ev: dict, have: dict) -> dict[str, Metric]:
    """5. the vacuum: mean spread over the detector's before/after windows; price impact per
    volume (trades) when the detector did not give it."""
    from forensics.report.context import sql_ts
    eid, base = ev["event_id"], ctx.base
    out: dict[str, Metric] = {}
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
    if not ({"impact_before", "impact_after", "vacuum_ratio"} & set(have)) and ctx.trades.height:
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


def event_band(ev: dict, ctx) -> float:
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


def first_value(m: dict[str, Metric], *keys):
    for k in keys:
        if k in m and m[k].value is not None:
            return m[k].value
    return None
