"""Accuracy of the article readings (issue 18) on simulated markets.

Three kinds of runs, each seed its own market (forensics.simulate with the issue-18 options):

* **regime**: 185 minutes, the first 120 the calm default walk, then ``regime`` (stable /
  range / trend / crisis, ``SimConfig.regime``) from minute 120; the regime is read at minute
  180 from the store's trades (1-min vs 10-min volatility of the last hour against the two
  hours before). Only the aggTrades CSV is written and ingested (the regime reads trades; writing
  the full depth capture of two hours would take most of the time).
* **withdrawal**: 25 minutes, a two-sided withdrawal at minute 20 whose makers first widen
  and cut size for ``precursor_widen_s`` (default 60 s) -- the digest's layered controls;
  the capture is ingested, depth (1 s grid) and level_changes computed, and the precursors
  read before the scripted pull (the incident's start in labels.json).
* **consumption**: the same with a consumption-only event (a taker eating the bids; makers
  stay); any precursor flagged before it is a false alarm.

Prints regime accuracy (with the confusion), the share of withdrawals with a precursor and
the median lead, the share of consumption events with none, and which metrics fired.

Usage: PYTHONPATH=. /work/venv/bin/python benchmarks/eval_article.py [--seeds 10] [--first-seed 101]
       [--only regime|withdrawal|consumption] [--json out.json]
Seeds 1..5 were used while tuning the simulator's regimes and the thresholds, and seeds 101-110
for a first regime estimator (15-min returns, one threshold: 80%); quote runs from --first-seed 201.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import polars as pl

from forensics import simulate as S
from forensics.store import Store

MARKET = dict(makers=S.default_makers(5), sigma_ticks=9.0, taker_rate_hz=3.5)   # the bundled sample's market
#: regime runs read only trades: 3 makers keep a 2-hour engine run at a few seconds
REGIME_MARKET = dict(MARKET, makers=S.default_makers(3))


def regime_run(seed: int, regime: str, work: Path) -> dict:
    from forensics.ingest import ingest
    from forensics.market.regime import regime as read_regime
    cfg = S.build_config(seed=seed, minutes=185, regime=regime, regime_from_s=7200, **REGIME_MARKET)
    eng = S.run_engine(cfg)
    trades = S._agg_trades(eng)
    d = work / f"regime-{regime}-{seed}"
    d.mkdir(parents=True, exist_ok=True)
    csv = d / S.output_names(cfg)["agg_trades_csv"]
    trades.select(
        pl.col("a").alias("agg_trade_id"), S._dec_expr("price", cfg.tick_units(), cfg.price_decimals).alias("price"),
        S._dec_expr("qty", cfg.lot_units(), cfg.qty_decimals).alias("quantity"), pl.col("f").alias("first_trade_id"),
        pl.col("l").alias("last_trade_id"), pl.col("T").alias("transact_time"),
        pl.when(pl.col("m")).then(pl.lit("true")).otherwise(pl.lit("false")).alias("is_buyer_maker")).write_csv(csv)
    store = Store(d / "store")
    ingest([csv], store=store)
    at = cfg.resolved_start_ns() + 180 * 60 * 10**9
    ex, sy = store.resolve_instrument(tables=("trades",))
    con = store.connect()
    try:
        r = read_regime(con, ex, sy, at)
    finally:
        con.close()
    shutil.rmtree(d, ignore_errors=True)
    return {"seed": seed, "truth": regime, "got": r["regime"], "reason": r["reason"],
            "short_ratio": r["values"]["short_ratio"], "long_ratio": r["values"]["long_ratio"]}


def event_run(seed: int, kind: str, work: Path, widen_s: float) -> dict:
    from forensics.attribution import attribute
    from forensics.book import compute_depth
    from forensics.ingest import ingest
    from forensics.market.precursors import precursors
    spec = "withdrawal@20m" if kind == "withdrawal" else "consumption@20m:sell"
    cfg = S.build_config(seed=seed, minutes=25, incidents=[spec], precursor_widen_s=widen_s, **MARKET)
    d = work / f"{kind}-{seed}"
    res = S.simulate(cfg, d / "sim")
    store = Store(d / "store")
    ingest([res.files["capture"]], store=store)
    ex, sy = res.labels["exchange"], res.labels["symbol"]
    compute_depth(store, ex, sy, every_ns=10**9)
    attribute(store, ex, sy)
    at = res.labels["incidents"][0]["start_ts_ns"]
    con = store.connect()
    try:
        p = precursors(con, ex, sy, at)
    finally:
        con.close()
    shutil.rmtree(d, ignore_errors=True)
    return {"seed": seed, "kind": kind, "found": bool(p["flagged"]), "lead_s": p["lead_ns"] / 1e9 if p["lead_ns"] else None,
            "metrics": [f["metric"] for f in p["flagged"]]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=201)
    ap.add_argument("--only", choices=("regime", "withdrawal", "consumption"), default=None)
    ap.add_argument("--widen-s", type=float, default=60.0, help="precursor_widen_s of the withdrawals")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    work = Path(tempfile.mkdtemp(prefix="eval-article-"))
    out = {}
    try:
        if args.only in (None, "regime"):
            t0 = time.perf_counter()
            rows = []
            for s in seeds:
                for r in S.REGIMES:
                    rows.append(regime_run(s, r, work))
                    print(f"   seed {s} {r}: {rows[-1]['got']} (short x{rows[-1]['short_ratio']}, "
                          f"long x{rows[-1]['long_ratio']})", flush=True)
            ok = sum(r["got"] == r["truth"] for r in rows)
            conf = Counter((r["truth"], r["got"]) for r in rows)
            print(f"== regime: {ok}/{len(rows)} right ({100 * ok / len(rows):.0f}%), {time.perf_counter() - t0:.0f} s")
            for t in S.REGIMES:
                print(f"   {t:7s} -> " + ", ".join(f"{g}: {n}" for (tt, g), n in sorted(conf.items(), key=str) if tt == t))
            for r in rows:
                if r["got"] != r["truth"]:
                    print(f"   miss seed {r['seed']} {r['truth']}: got {r['got']} (short x{r['short_ratio']}, "
                          f"long x{r['long_ratio']}) {r['reason'] or ''}")
            out["regime"] = {"right": ok, "runs": len(rows), "rows": rows}
        for kind in ("withdrawal", "consumption"):
            if args.only not in (None, kind):
                continue
            t0 = time.perf_counter()
            rows = [event_run(s, kind, work, args.widen_s if kind == "withdrawal" else 0.0) for s in seeds]
            found = [r for r in rows if r["found"]]
            fired = Counter(m for r in rows for m in r["metrics"])
            if kind == "withdrawal":
                leads = [r["lead_s"] for r in found]
                med = statistics.median(leads) if leads else None
                print(f"== withdrawal (makers widen {args.widen_s:g} s before the pull): precursor found before "
                      f"{len(found)}/{len(rows)} ({100 * len(found) / len(rows):.0f}%), median lead "
                      + (f"{med:.0f} s" if med is not None else "n/a") + f", {time.perf_counter() - t0:.0f} s")
                out["withdrawal"] = {"found": len(found), "runs": len(rows), "median_lead_s": med, "rows": rows}
            else:
                clean = len(rows) - len(found)
                print(f"== consumption only: no precursor before {clean}/{len(rows)} ({100 * clean / len(rows):.0f}%), "
                      f"{time.perf_counter() - t0:.0f} s")
                out["consumption"] = {"clean": clean, "runs": len(rows), "rows": rows}
            print("   metrics that fired: " + (", ".join(f"{m} {n}" for m, n in fired.most_common()) or "none"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
