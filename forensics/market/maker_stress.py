"""Maker stress: how long quotes rested, and whether makers widened before they pulled.

* ``queries/quote_life.sql``: the life of added size (FIFO per price level, from
  level_changes) before / during / after the event, size-weighted p10 / p50 / p90, split by
  how it ended (cancelled / traded);
* ``queries/maker_reposting.sql``: per 10 s and side, size cancelled, the part re-posted
  further from mid (widening) and the part that left the book (withdrawal).

:func:`maker_stress` sums the reposting series per phase (widening share = re-posted /
cancelled) and checks the article's sequence, "widen first, then pull": widening is the
first precursor bucket where the spread went beyond 3 sigma (:mod:`precursors`), the pull is
the event start (the detector's cliff); the sequence holds when widening came first.
"""
from __future__ import annotations

import polars as pl

from forensics.market import dur_param, iso_param, run_named
from forensics.timeutil import NS_PER_S

#: the 'during' phase covers the event and at least this long after its start
MIN_DURING_NS = 60 * NS_PER_S
PHASE_NS = 10 * 60 * NS_PER_S   # length of the before / after phases


def _during_ns(at_ns: int, end_ns: int | None) -> int:
    span = (end_ns - at_ns) if end_ns and end_ns > at_ns else 0
    return max(MIN_DURING_NS, -(-(span + 30 * NS_PER_S) // NS_PER_S) * NS_PER_S)


def maker_stress(con, exchange: str, symbol: str, at_ns: int, end_ns: int | None = None, *,
                 precursor: dict | None = None) -> dict:
    during = _during_ns(at_ns, end_ns)
    base = {"at": iso_param(at_ns), "exchange": exchange, "symbol": symbol}
    ql = run_named(con, "quote_life", {**base, "during": dur_param(during), "before": dur_param(PHASE_NS),
                                       "after": dur_param(PHASE_NS)})
    rp = run_named(con, "maker_reposting", {**base, "before": dur_param(PHASE_NS),
                                            "after": dur_param(during + PHASE_NS)})
    s = rp.frame
    phases = {}
    if s.height:
        s = s.with_columns(phase=pl.when(pl.col("bucket_ns") < at_ns).then(pl.lit("before"))
                           .when(pl.col("bucket_ns") < at_ns + during).then(pl.lit("during"))
                           .otherwise(pl.lit("after")))
        agg = s.group_by("phase").agg(pl.col("cancelled").sum(), pl.col("reposted").sum(), pl.col("withdrawn").sum())
        order = {"before": 0, "during": 1, "after": 2}   # report.json stays byte-stable run to run
        for r in sorted(agg.iter_rows(named=True), key=lambda r: order[r["phase"]]):
            c = float(r["cancelled"] or 0)
            phases[r["phase"]] = {"cancelled": c, "reposted": float(r["reposted"] or 0),
                                  "withdrawn": float(r["withdrawn"] or 0),
                                  "widen_share": (float(r["reposted"]) / c) if c else None,
                                  "withdraw_share": (float(r["withdrawn"]) / c) if c else None}
    life = {}
    for r in ql.frame.iter_rows(named=True):
        life.setdefault(r["phase"], {})[r["outcome"]] = {k: r[k] for k in ("size", "pieces", "p10_ms", "p50_ms",
                                                                           "p90_ms", "mean_ms", "censored_size")}
    seq = {"widen_ns": None, "pull_ns": at_ns, "widen_first": None}
    if precursor is not None:
        sp = [f for f in precursor.get("flagged", []) if f["metric"] == "spread_bps"]
        if "spread_bps" in precursor.get("unavailable", {}):
            seq["reason"] = "no spread series: " + precursor["unavailable"]["spread_bps"]
        elif sp:
            seq["widen_ns"] = sp[0]["first_ns"]
            seq["widen_first"] = sp[0]["first_ns"] < at_ns
            seq["lead_ns"] = at_ns - sp[0]["first_ns"]
        else:
            seq["widen_first"] = False
            seq["reason"] = "the spread did not widen beyond 3 sigma before the pull"
    if not ql.frame.height:
        reason = "no level_changes around the event (run forensics detect)"
    else:
        reason = None
    return {"quote_life": life, "reposting": phases, "series": s, "sequence": seq, "during_ns": during,
            "reason": reason, "queries": {"quote_life": ql, "maker_reposting": rp}}
