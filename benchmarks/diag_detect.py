"""Per-incident diagnostics of detection on drawn scenarios (misses, wrong labels, false events).

Runs :func:`forensics.evaluate.run_eval` on a seed set (default: the development seeds; tune on
these only) and prints one line per incident whose event is missing or mislabelled and per
false event (no incident matched, or the calm window), with the run's regime and the incident's
drawn shape, plus the summary of :func:`forensics.evaluate.format_summary`. ``--workdir`` keeps
the simulated stores so a later run only re-runs detection.

Usage: PYTHONPATH=. python benchmarks/diag_detect.py [--set dev|dev2|dev3|dev4|dev5|dev6|eval] [--seeds 1-20] [--workdir /tmp/ev]
       [--json out.json] [--all] [--param flow_min_zc=9 ...]
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import json

from forensics.detect import DetectParams
from forensics.evaluate import DEV_SEEDS, EVAL_SEEDS, format_summary, run_eval

COLS = ("trigger", "label", "confidence", "sides", "band_pct", "removed_frac", "traded_share_net", "traded_share",
        "sync_share_500ms", "speed_ms", "other_side_fell")


def _seeds(spec: str | None, base) -> list[int]:
    if not spec:
        return list(base)
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def rows(runs) -> list[dict]:
    out = []
    for r in runs:
        t0 = min(i["start_ts_ns"] for i in r.incidents) if r.incidents else 0
        for m in r.matches:
            inc, e = m["incident"], m["event"]
            truth = (inc.get("expected_label") or "none") if inc else "none"
            got = e["label"] if e else None
            row = {"seed": r.seed, "regime": r.regime_key, "truth": truth,
                   "type": inc["type"] if inc else None, "side": inc.get("side") if inc else None,
                   "shape": inc.get("shape") if inc else None, "got": got,
                   "inc_t": (inc["start_ts_ns"] - t0) / 1e9 if inc else None,
                   "ev_t": (e["start_ts"] - t0) / 1e9 if e else None,
                   "background": r.in_background(e["start_ts"]) if e else None,
                   "ok": (got == truth) if inc and truth != "none" else (e is None)}
            if e:
                row.update({k: e.get(k) for k in COLS})
                row["evidence"] = e.get("evidence")
            out.append(row)
    return out


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def _params(pairs: list[str]) -> DetectParams:
    """DetectParams with ``NAME=VALUE`` overrides (value parsed as a Python literal)."""
    kw = {}
    fields = {f.name for f in dataclasses.fields(DetectParams)}
    for pair in pairs:
        name, _, val = pair.partition("=")
        if name not in fields:
            raise SystemExit(f"--param {pair!r}: DetectParams has no field {name!r}")
        kw[name] = float("inf") if val == "inf" else ast.literal_eval(val)
    return DetectParams(**kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="dev", choices=("dev", "dev2", "dev3", "dev4", "dev5", "dev6", "eval"),
                    help="dev 1-60, dev2 61-160, dev3 161-400, dev4 401-700, dev5 701-1000, dev6 1001-1300 (tune on these), eval the held-out seeds")
    ap.add_argument("--seeds", default=None, help="e.g. 1-20 or 1,5,9 (default: the whole set)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--all", action="store_true", help="print every incident, not only the failures")
    ap.add_argument("--evidence", action="store_true", help="print the failures' evidence")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a DetectParams field for this run (repeatable; try values on dev seeds only)")
    args = ap.parse_args()
    params = _params(args.param)
    seeds = _seeds(args.seeds, {"dev": DEV_SEEDS, "dev2": range(61, 161), "dev3": range(161, 401), "dev4": range(401, 701), "dev5": range(701, 1001), "dev6": range(1001, 1301),
                                "eval": EVAL_SEEDS}[args.set])
    summary, runs = run_eval(len(seeds), seeds[0], drawn=True, seeds=seeds, workdir=args.workdir,
                             keep=args.workdir is not None, params=params)
    rs = rows(runs)
    for r in rs:
        if r["ok"] and not args.all:
            continue
        sh = r["shape"] or {}
        shape = " ".join(f"{k}={_fmt(v)}" for k, v in sh.items())
        ev = " ".join(f"{k}={_fmt(r.get(k))}" for k in COLS if k in r and k != "label")
        print(f"seed {r['seed']:>5} {r['regime']:<13} {r['type'] or '-':<15} {r['side'] or '-':<5} "
              f"truth={r['truth']:<24} got={r['got']!s:<24} inc_t={_fmt(r['inc_t'])} ev_t={_fmt(r['ev_t'])} "
              f"bg={r['background']} | {shape} | {ev}")
        if args.evidence and r.get("evidence"):
            print("      ", r["evidence"])
    print()
    print(format_summary(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"summary": summary, "rows": rs}, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
