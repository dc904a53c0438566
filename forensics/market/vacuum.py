"""The vacuum curve: how each unit of volume moved the price, minute by minute, around an event.

``queries/vacuum_curve.sql`` gives per minute, from 30 min before to 60 min after the event:
price impact per unit volume (sum of 1-second |mid changes| in bps / volume traded), Kyle's
lambda (regression slope of 1-second mid change on signed aggressive volume over a trailing
3-minute window), mean depth within the band and the mean spread. :func:`vacuum_curve` adds
the readings SQL cannot say cleanly: the baseline (the minutes before ``BASELINE_END_NS``
ahead of the event), how long the vacuum lasted (impact per volume above ``VACUUM_FACTOR``
times its baseline), when depth came back to 50% / 90% of its baseline, and the spread and
depth recovery half-lives (time until the deviation from baseline is half its worst).
Without trades impact and lambda are null with the reason, never 0.
"""
from __future__ import annotations

import polars as pl

from forensics.market import dur_param, iso_param, run_named
from forensics.timeutil import NS_PER_S

QUERY = "vacuum_curve"
#: the baseline is the curve's minutes before this far ahead of the event (the last minutes
#: may hold precursors)
BASELINE_END_NS = 5 * 60 * NS_PER_S
#: the vacuum lasts while impact per unit volume is at least this many times its baseline
#: median (2x: the baseline's minute-to-minute spread is well inside it on calm data)
VACUUM_FACTOR = 2.0
DEPTH_LEVELS = (0.5, 0.9)


def _median(s: pl.Series):
    s = s.drop_nulls()
    return float(s.median()) if len(s) else None


def _first_from(frame: pl.DataFrame, cond: pl.Expr, at_ns: int) -> int | None:
    """First step start (ns) at or after the event where ``cond`` holds."""
    hit = frame.filter((pl.col("ts_ns") >= at_ns) & cond)
    return int(hit["ts_ns"][0]) if hit.height else None


def half_life(frame: pl.DataFrame, col: str, base: float | None, at_ns: int, worse: int) -> dict:
    """Time from the worst step after the event to the first step whose deviation from the
    baseline is at most half the worst (``worse`` +1: higher is worse, -1: lower)."""
    if base is None:
        return {"ns": None, "reason": "no baseline"}
    after = frame.filter((pl.col("ts_ns") >= at_ns) & pl.col(col).is_not_null())
    if after.height == 0:
        return {"ns": None, "reason": "no data after the event"}
    dev = (after[col] - base) * worse
    i = int(dev.arg_max())
    peak = float(dev[i])
    if peak <= 0:
        return {"ns": None, "reason": "no deviation after the event", "peak": peak}
    rest = after[i:].with_columns(dev=dev[i:])
    back = rest.filter(pl.col("dev") <= peak / 2)
    if back.height == 0:
        return {"ns": None, "reason": "not back to half the deviation within the curve", "peak": peak,
                "peak_ns": int(after["ts_ns"][i])}
    return {"ns": int(back["ts_ns"][0] - after["ts_ns"][i]), "peak": peak, "peak_ns": int(after["ts_ns"][i]),
            "reason": None}


def vacuum_curve(con, exchange: str, symbol: str, at_ns: int, end_ns: int | None = None, *,
                 band: float | None = None, before_ns: int | None = None, after_ns: int | None = None) -> dict:
    """The curve and its readings (see module doc); times in UTC ns (``end_ns`` is kept for
    callers that pass an event's end; the curve and its readings are anchored at its start)."""
    params = {"at": iso_param(at_ns), "exchange": exchange, "symbol": symbol}
    if band is not None:
        params["band"] = repr(float(band))
    for k, v in (("before", before_ns), ("after", after_ns)):
        if v:
            params[k] = dur_param(v)
    run = run_named(con, QUERY, params)
    c = run.frame
    base = c.filter(pl.col("ts_ns") < at_ns - BASELINE_END_NS)
    b = {k: _median(base[k]) for k in ("impact_per_vol", "kyle_lambda", "depth", "spread_bps")}
    out = {"curve": c, "baseline": b, "query": run, "reasons": {}, "vacuum_factor": VACUUM_FACTOR,
           "baseline_end_ns": BASELINE_END_NS}
    if c.height == 0 or c["volume"].null_count() == c.height:
        out["reasons"]["impact_per_vol"] = out["reasons"]["kyle_lambda"] = "no trades: impact needs traded volume"
    if c.height == 0 or c["depth"].null_count() == c.height:
        out["reasons"]["depth"] = "no depth in the band (run forensics depth)"
    # vacuum: from the first minute at or after the event with impact >= VACUUM_FACTOR x baseline
    # until the first later minute below it
    vac = None
    if b["impact_per_vol"] and "impact_per_vol" not in out["reasons"]:
        thr = VACUUM_FACTOR * b["impact_per_vol"]
        after = c.filter(pl.col("ts_ns") >= at_ns)
        peak = after["impact_per_vol"].max() if after.height else None
        ratio = float(peak / b["impact_per_vol"]) if peak is not None else None
        first_high = after.filter(pl.col("impact_per_vol") >= thr)
        if first_high.height:
            start = int(first_high["ts_ns"][0])
            back = after.filter((pl.col("ts_ns") > start) & (pl.col("impact_per_vol") < thr))
            end = int(back["ts_ns"][0]) if back.height else None
            vac = {"threshold": thr, "from_ns": start, "to_ns": end, "lasted_ns": (end - start) if end else None,
                   "peak_ratio": ratio,
                   "reason": None if end else "impact per volume still above the threshold at the end of the curve"}
        else:
            vac = {"threshold": thr, "from_ns": None, "to_ns": None, "lasted_ns": 0, "peak_ratio": ratio,
                   "reason": f"impact per volume never reached {VACUUM_FACTOR:g}x its baseline after the event"}
    out["vacuum"] = vac
    # depth back to 50% / 90% of its baseline (first step after the trough)
    rec = {}
    if b["depth"]:
        after = c.filter((pl.col("ts_ns") >= at_ns) & pl.col("depth").is_not_null())
        if after.height:
            i = int(after["depth"].arg_min())
            trough = after[i:]
            for lv in DEPTH_LEVELS:
                hit = trough.filter(pl.col("depth") >= lv * b["depth"])
                rec[f"{int(lv * 100)}"] = {"ns": int(hit["ts_ns"][0] - at_ns) if hit.height else None,
                                           "at_ns": int(hit["ts_ns"][0]) if hit.height else None,
                                           "reason": None if hit.height else "not within the curve"}
            rec["trough_ns"] = int(after["ts_ns"][i])
            rec["trough_frac"] = float(after["depth"][i] / b["depth"])
    out["depth_recovery"] = rec
    out["half_life"] = {"spread": half_life(c, "spread_bps", b["spread_bps"], at_ns, +1),
                        "depth": half_life(c, "depth", b["depth"], at_ns, -1)}
    return out
