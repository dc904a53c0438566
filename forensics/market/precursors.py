"""Precursors: what moved in the minutes before an event.

``queries/precursors.sql`` gives, per 10 s bucket over the 15 minutes before the event,
spread (bps), touch depth (best bid + best ask size), quote flicker (level updates that
cancelled), cancel-to-trade ratio, Cont-Kukanov-Stoikov order-flow imbalance and the
trailing-minute aggressive-flow imbalance, each with its z-score against the baseline (the
buckets before the last 5 minutes). :func:`precursors` lists the metrics that went beyond
``Z_THRESHOLD`` in their adverse direction (spread up, depth down, flicker and
cancel-to-trade up, either sign of the two imbalances) for ``PERSIST`` consecutive buckets
inside the watch window, and when they first did. A metric whose inputs are missing (no
trades, no level_changes) is reported as unavailable with the reason, never as 0.
"""
from __future__ import annotations

import polars as pl

from forensics.market import default_of, dur_param, iso_param, run_named

QUERY = "precursors"
#: beyond 3 sigma of the trailing baseline (the issue's definition of "moved")
Z_THRESHOLD = 3.0
#: ...for two consecutive 10 s buckets: one bucket beyond 3 sigma is expected by chance every
#: few hundred buckets across six metrics; two in a row almost never (measured on calm runs)
PERSIST = 2
#: the aggressive-flow imbalance is a trailing-minute sum (overlapping buckets), so "persistent"
#: means beyond 3 sigma for a whole flow window: 6 buckets of 10 s
PERSIST_BY_METRIC = {"aggr_imbalance": 6}
#: metric -> (label, unit, adverse direction: +1 up, -1 down, 0 either, needs)
METRICS = {
    "spread_bps": ("spread widening", "bps", +1, "book_top"),
    "touch_depth": ("touch depth thinning", "base units", -1, "book_top"),
    "quote_flicker": ("quote flicker (cancelling updates)", "updates per bucket", +1, "level_changes"),
    "cancel_to_trade": ("cancel-to-trade ratio", "ratio", +1, "trades"),
    "ofi": ("order-flow imbalance (OFI)", "base units per bucket", 0, "book_top"),
    "aggr_imbalance": ("aggressive-flow imbalance (trailing minute)", "(buy - sell) / (buy + sell)", 0, "trades"),
}


def flags(frame: pl.DataFrame, z: float = Z_THRESHOLD, persist: int | None = None) -> list[dict]:
    """Metrics beyond ``z`` (adverse direction) for ``persist`` consecutive watch buckets
    (None: PERSIST, or the metric's PERSIST_BY_METRIC)."""
    out = []
    watch = frame.filter(~pl.col("baseline")).sort("bucket_ns")
    for key, (label, unit, sign, _need) in METRICS.items():
        need = persist or PERSIST_BY_METRIC.get(key, PERSIST)
        zc = watch[f"{key}_z"]
        beyond = (zc.abs() if sign == 0 else zc * sign) >= z
        run, first = 0, None
        for i, b in enumerate(beyond.fill_null(False).to_list()):
            run = run + 1 if b else 0
            if run >= need:
                first = i - need + 1
                break
        if first is not None:
            row = watch.row(first, named=True)
            zs = watch[f"{key}_z"].drop_nulls()
            peak = zs[int((zs.abs() if sign == 0 else zs * sign).arg_max())]
            out.append({"metric": key, "label": label, "unit": unit, "first_ns": int(row["bucket_ns"]),
                        "z": row[f"{key}_z"], "value": row[key], "peak_z": float(peak), "persist": need})
    return sorted(out, key=lambda f: f["first_ns"])


def precursors(con, exchange: str, symbol: str, at_ns: int, *, lookback_ns: int | None = None,
               watch_ns: int | None = None, bucket_ns: int | None = None) -> dict:
    """The precursor series before ``at_ns`` and the metrics flagged.

    Returns ``{"series": frame, "flagged": [{metric, label, first_ns, z, value, peak_z}],
    "lead_ns": at - first flag (None if none), "unavailable": {metric: reason},
    "baseline": {metric: {mean, std}}, "query": QueryRun}``."""
    params = {"at": iso_param(at_ns), "exchange": exchange, "symbol": symbol}
    for k, v in (("lookback", lookback_ns), ("watch", watch_ns), ("bucket", bucket_ns)):
        if v:
            params[k] = dur_param(v)
    run = run_named(con, QUERY, params)
    fr = run.frame
    unavailable = {}
    for key, (_label, _unit, _sign, need) in METRICS.items():
        col = fr[key] if fr.height else pl.Series([], dtype=pl.Float64)
        if col.null_count() == len(col):
            if need == "trades" and (fr.height == 0 or fr["trades"].null_count() == fr.height):
                unavailable[key] = "no trades in the window: needs trades"
            elif need == "trades":
                unavailable[key] = "no trades in the window's buckets"
            elif need == "level_changes":
                unavailable[key] = "no level_changes (run forensics detect): needs the traded/cancelled split"
            else:
                unavailable[key] = "no top of book in the window (book_top): needs level data"
        elif fr[f"{key}_z"].null_count() == fr.height:
            unavailable[key] = "no variation in the baseline: z-score undefined"
    base = fr.filter(pl.col("baseline"))
    baseline = {k: {"mean": base[k].mean() if base.height else None, "std": base[k].std() if base.height else None}
                for k in METRICS}
    fl = [f for f in flags(fr) if f["metric"] not in unavailable] if fr.height else []
    return {"series": fr, "flagged": fl, "lead_ns": (at_ns - fl[0]["first_ns"]) if fl else None,
            "unavailable": unavailable, "baseline": baseline, "z_threshold": Z_THRESHOLD, "persist": PERSIST,
            "watch_ns": watch_ns or default_of(QUERY, "watch"), "lookback_ns": lookback_ns or default_of(QUERY, "lookback"),
            "bucket_ns": bucket_ns or default_of(QUERY, "bucket"), "query": run}
