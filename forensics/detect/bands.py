"""Band data (``depth_bands``, ~30 s samples): data-quality flags, every two-sided abnormal drop
(:mod:`forensics.band_events`) turned into cliffs, ``data_anomaly`` events for falls that exist
only in flagged bands, and the evidence lines naming what was excluded."""
from __future__ import annotations

import polars as pl

from forensics.detect.context import (
    Cliff,
    Context,
)
from forensics.detect.params import DetectParams
from forensics.schema import SIDES


def _flag_lookup(ctx: Context) -> dict:
    fl = ctx.info.get("band_flags")
    if fl is None or fl.height == 0:
        return {}
    return {(r[0], r[1], r[2]): r[3] for r in fl.select("ts", "side", "band_pct", "flag").iter_rows()}



def _band_cliffs(ctx: Context, cliffs: list[Cliff], p: DetectParams) -> list[Cliff]:
    """Band data: drop cliffs in flagged bands (kept in ``ctx.info['anomalies']``), add every
    two-sided abnormal drop (:mod:`forensics.band_events`), ranked by severity."""
    from forensics.band_events import abnormal_drops, band_changes, two_sided
    flags = _flag_lookup(ctx)
    ch = band_changes(ctx.depth, ctx.info.get("band_flags", pl.DataFrame()), p.bands_sigma_samples,
                      p.bands_sigma_min_samples, p.bands_sigma_floor)
    drops = abnormal_drops(ch, p.bands_z, p.bands_min_drop)
    ok, bad = [], []
    for c in cliffs:
        f = flags.get((c.t_peak, c.side, c.band)) or flags.get((c.t_trough, c.side, c.band))
        (bad if f else ok).append((c, f))
    out = [c for c, _ in ok]
    ranked = {}
    for r in two_sided(drops).iter_rows(named=True):
        ranked[r["ts"]] = r
        for side in SIDES:
            band, qp, qa, tp = (r[f"{k}_{side}"] for k in ("band", "q_prev", "qty", "ts_prev"))
            out.append(Cliff(side, band, int(r["ts"]), int(tp), int(r["ts"]), float(qp), float(qa), float(qp)))
    ctx.info["band_drops"] = ranked
    ctx.info["band_drops_n"] = len(ranked)
    # flagged-only falls: the one-sided abnormal drops and cliffs that exist only under a flag
    flagged = drops.filter(pl.col("flag").is_not_null())
    for r in flagged.iter_rows(named=True):
        bad.append((Cliff(r["side"], r["band_pct"], int(r["ts"]), int(r["ts_prev"]), int(r["ts"]), float(r["q_prev"]),
                          float(r["qty"]), float(r["q_prev"])), r["flag"]))
    ctx.info["anomalies"] = bad
    ctx.info["flagged_steps"] = {}
    for c, f in bad:
        ctx.info["flagged_steps"].setdefault(c.t_trough, set()).add((c.side, c.band, f))
    return out



def _band_evidence(ctx: Context, ev: dict, e: dict) -> None:
    """Evidence lines of a band-data event: its severity rank among the two-sided abnormal
    drops, and the bands under a data-quality flag that were left out of the decision."""
    notes = []
    ranked = ctx.info.get("band_drops", {})
    r = ranked.get(ev["t_trough"])
    if r is not None:
        notes.append(f"two-sided abnormal drop, severity rank {r['rank']} of {len(ranked)}: bid {r['band_bid']:g}% "
                     f"band {r['z_bid']:.1f} sigma, ask {r['band_ask']:g}% band {r['z_ask']:.1f} sigma of its own "
                     f"sample-to-sample change")
    step = set()
    for ts in (ev["t_trough"], ev["t_peak"]):
        step |= ctx.info.get("flagged_steps", {}).get(ts, set())
    fl = ctx.info.get("band_flags")
    if fl is not None and fl.height:
        near = fl.filter(pl.col("ts").is_in([ev["t_peak"], ev["t_trough"]]))
        step |= {(a, b, c) for a, b, c in near.select("side", "band_pct", "flag").iter_rows()}
    if step and not ev.get("_anomaly"):
        by: dict[tuple, list] = {}
        for side, band, f in step:
            by.setdefault((side, f), []).append(band)
        notes.append("excluded from the decision (data-quality flag): " + "; ".join(
            f"{side} {','.join(f'{b:g}' for b in sorted(bs))}% ({f})" for (side, f), bs in sorted(by.items())))
    e["_notes"] = e.get("_notes", []) + notes



def _anomaly_events(ctx: Context, events: list[dict], p: DetectParams) -> list[dict]:
    """Falls that exist only in flagged bands (no unflagged event at that sample step):
    one ``data_anomaly`` event per step."""
    steps: dict[int, list] = {}
    for c, f in ctx.info.get("anomalies", []):
        steps.setdefault(c.t_trough, []).append((c, f))
    taken = [(e["t_peak"], e["t_trough"]) for e in events]
    out = []
    for ts, items in sorted(steps.items()):
        if any(a - ctx.grid_ns <= ts <= b + ctx.grid_ns for a, b in taken):
            continue
        cl: dict[str, Cliff] = {}
        for c, f in items:
            if c.side not in cl or c.frac > cl[c.side].frac:
                cl[c.side] = c
        prim = max(cl.values(), key=lambda c: c.frac)
        out.append({"trigger": "cliff", "cliffs": cl, "band": prim.band, "t_peak": min(c.t_peak for c in cl.values()),
                    "t_trough": ts, "recovered_at": None,
                    "_anomaly": sorted({(c.side, c.band, f) for c, f in items})})
    return out
