"""Accuracy of detection, classification and attribution on simulated markets (``forensics eval``).

Each run simulates a Binance futures capture (:mod:`forensics.simulate`: background makers and
noise takers, feed latency jitter, the REST snapshot arriving late) with one incident of each
requested type in a random order (sides drawn at random), ``spacing_s`` apart, ingests the
capture into a fresh store (:func:`forensics.ingest.ingest`), runs :func:`forensics.detect.detect`
and scores the events against ``labels.json`` and ``truth_level_decreases.parquet``.

Scoring:

* ``vary``: the background (noise-taker rate 3-8 Hz and median size 10-25 lots, volatility 8-18
  ticks/sqrt(s)) is drawn per seed instead of the simulator's defaults.
* An event *matches* an incident when its [start, end] intersects [incident start - 2 s,
  incident window end]; each incident takes the matching event whose start is nearest its
  start, each event matches at most one incident. Unmatched events and events matching a
  ``calm`` window are false positives (truth ``none``).
* Precision of label L = matched events labelled L whose incident expects L / events labelled L;
  recall = incidents expecting L whose event is labelled L / incidents expecting L.
* Event-time error = |event start - incident start| (incident start: first maker pull,
  first child order, first flicker order).
* Traded-share error = |event's traded share - truth's| over the same published decreases
  (the event's sides, window and band, rows joined to the truth by update id, side and
  price), and the row-level attribution accuracy over the whole run.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from forensics.detect import DetectParams, detect
from forensics.store import Store

TYPES = ("withdrawal", "consumption", "one_sided_pull", "flicker", "calm")
SIDE_CHOICES = {"withdrawal": ["sell", "buy"], "consumption": ["sell", "buy"],
                "one_sided_pull": ["bid", "ask"], "flicker": ["both", "bid", "ask"], "calm": [None]}
LABELS = ("synchronized_withdrawal", "one_sided_pull", "consumption", "flicker", "mixed")


@dataclass
class RunResult:
    seed: int
    incidents: list[dict]
    events: pl.DataFrame
    matches: list[dict]
    attribution: dict
    seconds: dict = field(default_factory=dict)


def market_overrides(seed: int) -> dict:
    """Background market drawn per seed (``vary``): noise-taker rate and size, volatility."""
    rng = np.random.default_rng(20_000 + seed)
    return {"taker_rate_hz": float(rng.uniform(3.0, 8.0)), "taker_median_lots": float(rng.uniform(10.0, 25.0)),
            "sigma_ticks": float(rng.uniform(8.0, 18.0))}


def scenario(seed: int, types=TYPES, spacing_s: float = 180.0, first_s: float = 70.0) -> tuple[list[str], float]:
    """Incident specs (random order and sides, from ``seed``) and the run length in minutes."""
    rng = np.random.default_rng(10_000 + seed)
    order = list(types)
    rng.shuffle(order)
    specs = []
    for k, kind in enumerate(order):
        side = SIDE_CHOICES[kind][int(rng.integers(0, len(SIDE_CHOICES[kind])))]
        at = first_s + k * spacing_s
        specs.append(f"{kind}@{at:g}s" + (f":{side}" if side else ""))
    minutes = (first_s + len(order) * spacing_s) / 60.0
    return specs, minutes


def _truth_units(truth: pl.DataFrame, price_decimals: int) -> pl.DataFrame:
    scale = Decimal(10) ** price_decimals
    units = [int(Decimal(p) * scale) for p in truth["price"].to_list()]
    return truth.with_columns(pl.Series("price_u", units, dtype=pl.Int64))


def _joined_rows(store: Store, ex: str, sy: str, truth: pl.DataFrame) -> pl.DataFrame:
    """Our level_changes decreases joined with the truth rows (update id, side, price)."""
    inst = store.require_instrument(ex, sy)
    lc = store.scan("level_changes", ex, sy).filter(pl.col("delta") < 0).collect()
    bu = store.scan("book_updates", ex, sy).select("seq", "update_id").collect()
    lc = lc.join(bu, on="seq", how="inner")
    t = _truth_units(truth, inst.price_decimals).select(
        pl.col("update_id"), "side", pl.col("price_u").alias("price"), "decrease_lots", "traded_lots",
        "cancelled_lots", pl.col("ts").alias("truth_ts"))
    return lc.join(t, on=["update_id", "side", "price"], how="inner")


def _match(incidents: list[dict], events: pl.DataFrame) -> list[dict]:
    evs = events.to_dicts()
    used: set[int] = set()
    out = []
    for inc in sorted(incidents, key=lambda i: i["start_ts_ns"]):
        lo, hi = inc["start_ts_ns"] - 2_000_000_000, inc["window_end_ts_ns"]
        cands = [(abs(e["start_ts"] - inc["start_ts_ns"]), k) for k, e in enumerate(evs)
                 if k not in used and e["start_ts"] <= hi and e["end_ts"] >= lo]
        if cands:
            _, k = min(cands)
            used.add(k)
            out.append({"incident": inc, "event": evs[k]})
        else:
            out.append({"incident": inc, "event": None})
    for k, e in enumerate(evs):
        if k not in used:
            out.append({"incident": None, "event": e})
    return out


def run_one(seed: int, workdir: Path, types=TYPES, spacing_s: float = 180.0,
            params: DetectParams = DetectParams(), keep: bool = False, vary: bool = False) -> RunResult:
    """Simulate, ingest, detect and score one run (``vary``: background market drawn per seed)."""
    from forensics import simulate as S
    from forensics.ingest import ingest
    specs, minutes = scenario(seed, types, spacing_s)
    run_dir = Path(workdir) / f"seed{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    cfg = S.build_config(seed=seed, minutes=minutes, incidents=specs, **(market_overrides(seed) if vary else {}))
    res = S.simulate(cfg, run_dir / "sim")
    t1 = time.perf_counter()
    store = Store(run_dir / "store")
    ingest([res.files["capture"]], store=store)
    t2 = time.perf_counter()
    events = detect(store, params=params)
    t3 = time.perf_counter()
    labels = res.labels
    ex, sy = labels["exchange"], labels["symbol"]
    truth = pl.read_parquet(res.files["truth"])
    rows = _joined_rows(store, ex, sy, truth)
    matches = _match(labels["incidents"], events)
    for m in matches:
        e = m["event"]
        if e is None or e.get("window_from") is None:
            continue
        sides = ["bid", "ask"] if e["sides"] == "both" else [e["sides"]]
        f = (pl.col("ts") > e["window_from"]) & (pl.col("ts") <= e["window_to"]) & pl.col("side").is_in(sides) \
            & pl.col("cause").is_in(["trade", "cancel", "mixed"])
        if e["trigger"] == "cliff" and e.get("bid_floor") is not None:
            f = f & (((pl.col("side") == "bid") & (pl.col("price") >= e["bid_floor"]))
                     | ((pl.col("side") == "ask") & (pl.col("price") <= e["ask_cap"])))
        w = rows.filter(f)
        dec = float(w["decrease_lots"].sum() or 0)
        if dec > 0:
            m["truth_share"] = float(w["traded_lots"].sum()) / dec
            m["our_share_rows"] = float(w["traded"].sum()) / float((-w["delta"]).sum())
    exact = float((rows["traded"] == rows["traded_lots"]).mean()) if rows.height else float("nan")
    tot_t = float(rows["traded_lots"].sum() or 0)
    attribution = {"rows": rows.height, "row_exact": exact, "truth_traded": tot_t,
                   "our_traded": float(rows["traded"].sum() or 0),
                   "truth_rows": truth.height}
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return RunResult(seed, labels["incidents"], events, matches, attribution,
                     {"simulate": t1 - t0, "ingest": t2 - t1, "detect": t3 - t2})


def summarise(runs: list[RunResult]) -> dict:
    """Precision/recall per label, time and traded-share errors, attribution accuracy."""
    pred_count = {l: 0 for l in LABELS}
    tp = {l: 0 for l in LABELS}
    expected = {l: 0 for l in LABELS}
    confusion: dict[tuple[str, str], int] = {}
    time_err, share_err, fps = [], [], []
    for r in runs:
        for m in r.matches:
            inc, e = m["incident"], m["event"]
            truth = (inc.get("expected_label") or "none") if inc else "none"  # calm or background
            # no event: a miss for an incident, the right answer for a calm run
            pred = e["label"] if e else ("no event" if truth == "none" else "missed")
            confusion[(truth, pred)] = confusion.get((truth, pred), 0) + 1
            if truth in expected:
                expected[truth] += 1
            if e is not None and pred in pred_count:
                pred_count[pred] += 1
                if pred == truth:
                    tp[pred] += 1
                    time_err.append(abs(e["start_ts"] - inc["start_ts_ns"]) / 1e9)
                if truth == "none":
                    fps.append({"seed": r.seed, "label": pred, "start_ts": e["start_ts"],
                                "incident": inc["type"] if inc else None})
            if "truth_share" in m and e is not None and e.get("traded_share") is not None:
                share_err.append(abs(e["traded_share"] - m["truth_share"]))
    per_label = {l: {"precision": tp[l] / pred_count[l] if pred_count[l] else None,
                     "recall": tp[l] / expected[l] if expected[l] else None,
                     "events": pred_count[l], "incidents": expected[l]} for l in LABELS}
    att_rows = sum(r.attribution["rows"] for r in runs)
    att_exact = sum(r.attribution["row_exact"] * r.attribution["rows"] for r in runs
                    if r.attribution["rows"]) / max(att_rows, 1)
    tt = sum(r.attribution["truth_traded"] for r in runs)
    ot = sum(r.attribution["our_traded"] for r in runs)
    te = np.array(time_err) if time_err else np.array([np.nan])
    se = np.array(share_err) if share_err else np.array([np.nan])
    return {
        "runs": len(runs), "seeds": [r.seed for r in runs], "per_label": per_label,
        "confusion": {f"{a} -> {b}": n for (a, b), n in sorted(confusion.items())},
        "time_error_s": {"mean": float(np.nanmean(te)), "median": float(np.nanmedian(te)),
                         "max": float(np.nanmax(te)), "within_1s": float(np.nanmean(te <= 1.0))},
        "traded_share_error": {"mean": float(np.nanmean(se)), "max": float(np.nanmax(se)), "n": len(share_err)},
        "attribution": {"rows": att_rows, "row_exact": att_exact,
                        "traded_total_rel_error": abs(ot - tt) / tt if tt else None},
        "false_positives": fps,
        "seconds": {k: sum(r.seconds.get(k, 0) for r in runs) for k in ("simulate", "ingest", "detect")},
    }


def run_eval(n_seeds: int = 20, first_seed: int = 1, types=TYPES, spacing_s: float = 180.0,
             params: DetectParams = DetectParams(), workdir: str | Path | None = None,
             progress: Callable[[RunResult], None] | None = None, vary: bool = False
             ) -> tuple[dict, list[RunResult]]:
    """``n_seeds`` runs (each with one incident of every type) -> (summary, runs). ``vary`` draws
    the background market per seed (:func:`market_overrides`)."""
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="forensics-eval-")
        workdir = tmp
    runs = []
    try:
        for seed in range(first_seed, first_seed + n_seeds):
            r = run_one(seed, Path(workdir), types, spacing_s, params, vary=vary)
            runs.append(r)
            if progress:
                progress(r)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return summarise(runs), runs


def format_summary(s: dict) -> str:
    """Plain-text report of :func:`summarise`."""
    lines = [f"runs: {s['runs']} (seeds {s['seeds'][0]}..{s['seeds'][-1]}), one incident of each type per run"]
    lines.append(f"{'label':<26}{'precision':>10}{'recall':>8}{'events':>8}{'incidents':>10}")
    for l, v in s["per_label"].items():
        pr = "-" if v["precision"] is None else f"{v['precision']:.3f}"
        rc = "-" if v["recall"] is None else f"{v['recall']:.3f}"
        lines.append(f"{l:<26}{pr:>10}{rc:>8}{v['events']:>8}{v['incidents']:>10}")
    te = s["time_error_s"]
    lines.append(f"event-time error (s): mean {te['mean']:.3f}, median {te['median']:.3f}, max {te['max']:.3f}, "
                 f"within 1 s {100 * te['within_1s']:.1f}%")
    se = s["traded_share_error"]
    lines.append(f"traded-share error vs truth: mean {se['mean']:.4f}, max {se['max']:.4f} over {se['n']} events")
    a = s["attribution"]
    rel = a["traded_total_rel_error"]
    lines.append(f"attribution: {100 * a['row_exact']:.2f}% of {a['rows']:,} published decreases split exactly; "
                 f"total traded off by {100 * (rel or 0):.2f}%")
    lines.append("confusion (truth -> predicted): " + ", ".join(f"{k}: {v}" for k, v in s["confusion"].items()))
    if s["false_positives"]:
        lines.append(f"false positives: {len(s['false_positives'])}: " + ", ".join(
            f"seed {f['seed']} {f['label']}" for f in s["false_positives"][:10]))
    sec = s["seconds"]
    lines.append(f"time: simulate {sec['simulate']:.0f} s, ingest {sec['ingest']:.0f} s, detect {sec['detect']:.0f} s")
    return "\n".join(lines)


def to_json(s: dict) -> str:
    return json.dumps(s, indent=2, default=str)
