"""The cross-venue page of one incident (``forensics incidents report``): md + json + PNG.

Contents: the finding sentence (:func:`forensics.incidents.finding`, computed from the stored
``incidents`` rows), a figure with the depth of every venue stacked on one time axis (the
recorder's common clock; base units within the common band of mid, bid + ask) with each venue's
onset marked and its +-uncertainty shaded, the lag table (lag to the first venue, uncertainty
and its terms, relation), and the share of the total depth removed per venue (quote notional).

Layout of the output folder (default ``reports/incident-<incident id>/``)::

    incident.md    incident.json    incident.png
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from forensics.errors import ForensicsError
from forensics.store import Store
from forensics.timeutil import NS_PER_MS, NS_PER_S, format_ns, iso_utc

SCHEMA_VERSION = 1
#: time shown around the first onset
BEFORE_S, AFTER_S = 20.0, 40.0
#: grid the venues' depth series are sampled on for stacking (each venue's own steps are kept
#: by carrying its last value forward)
STACK_GRID_MS = 100


@dataclass
class IncidentReport:
    out_dir: Path
    json: dict
    paths: dict[str, Path] = field(default_factory=dict)


def _venue(r: dict) -> str:
    return f"{r['exchange']} {r['symbol']}"


def _series(store: Store, r: dict, band: float, lo: int, hi: int, mapping) -> pl.DataFrame:
    """One venue's depth (bid + ask, base units) on the common clock, [lo, hi] common-clock ns."""
    off = int(round((r.get("clock_offset_ms") or 0.0) * NS_PER_MS))
    ex, sy = r["exchange"], r["symbol"]
    d = (store.scan("depth", ex, sy, lo - off - 60 * NS_PER_S, hi - off)
         .filter((pl.col("band_pct") == band) & pl.col("qty").is_not_null())
         .group_by("ts").agg(pl.col("qty").sum(), pl.col("notional").sum()).sort("ts").collect())
    if d.height == 0:
        return pl.DataFrame(schema={"ts": pl.Int64, "base": pl.Float64})
    inst = store.instrument(ex, sy)
    lot = 10.0 ** -(inst.size_decimals if inst else 0)
    ct = mapping.contract(ex, sy)
    amount = d["qty"].cast(pl.Float64) * lot
    if ct.quote is not None:
        vwap = d["notional"] / amount
        base = amount * ct.quote / vwap
    else:
        base = amount * ct.base
    return pl.DataFrame({"ts": d["ts"] + off, "base": base.fill_nan(None)})


def _figure(store: Store, rows: list[dict], band: float, t0: int, path: Path, tz: str, mapping) -> dict:
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    lo, hi = t0 - int(BEFORE_S * NS_PER_S), t0 + int(AFTER_S * NS_PER_S)
    grid = pl.DataFrame({"ts": np.arange(lo, hi + 1, STACK_GRID_MS * NS_PER_MS, dtype=np.int64)})
    ys, names = [], []
    for r in rows:
        s = _series(store, r, band, lo, hi, mapping)
        if s.height == 0:
            continue
        y = grid.join_asof(s.sort("ts"), on="ts", strategy="backward")["base"].fill_null(0.0).to_numpy()
        ys.append(y)
        names.append(_venue(r))
    fig = Figure(figsize=(11, 8.2), dpi=110)
    axes = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 1.25]})
    x = (grid["ts"].to_numpy() - t0) / NS_PER_S
    cmap = matplotlib.colormaps["tab10"]
    colors = {n: cmap(i % 10) for i, n in enumerate(_venue(r) for r in rows)}
    top = float(np.sum(ys, axis=0).max()) if ys else 1.0
    onsets = [r for r in rows if r.get("onset_ts") is not None]
    last = max([(r["onset_ts"] - t0) / NS_PER_S + (r.get("timing_uncertainty_ms") or 0) / 1000 for r in onsets] or [0.0])
    first_u = max([(r.get("timing_uncertainty_ms") or 0) / 1000 for r in onsets] or [0.0])
    zoom = (-max(1.0, 2 * first_u), last + max(1.5, 0.5 * last))
    for k, ax in enumerate(axes):
        if ys:
            ax.stackplot(x, *ys, labels=names, colors=[colors[n] for n in names], alpha=0.75, linewidth=0,
                         step="post")
        for i, r in enumerate(onsets):
            t = (r["onset_ts"] - t0) / NS_PER_S
            u = (r.get("timing_uncertainty_ms") or 0.0) / 1000
            c = colors[_venue(r)]
            ax.axvline(t, color=c, linewidth=1.6, linestyle="--" if r["relation"] == "simultaneous" else "-")
            if k == 1:
                ax.axvspan(t - u, t + u, color=c, alpha=0.18, linewidth=0)
                lab = "first" if r["first"] else f"+{r['lag_ms']:.0f} ± {r['lag_uncertainty_ms']:.0f} ms ({r['relation']})"
                ax.annotate(f"{r['exchange']} {lab}", (t, top * (1.0 - 0.07 * i)), color=c, fontsize=8,
                            xytext=(4, 0), textcoords="offset points", va="top")
        ax.set_ylim(0, top * 1.05 if top > 0 else 1)
        ax.grid(alpha=0.25)
        ax.set_ylabel(f"depth within {band:g}% of mid\n(base units, bid + ask)")
    axes[0].set_xlim(x[0], x[-1])
    axes[1].set_xlim(*zoom)
    axes[0].set_title("Depth per venue, stacked, on the recorder's clock; lines = each venue's onset",
                      fontsize=10, loc="left")
    axes[1].set_title("Zoom on the onsets; shading = ± each venue's timing uncertainty, dashed = simultaneous "
                      "with the first", fontsize=10, loc="left")
    axes[1].set_xlabel(f"seconds from the first onset ({format_ns(t0, tz)} {tz})")
    axes[0].legend(loc="lower left", fontsize=8, framealpha=0.85)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    tmp.replace(path)
    return {"file": path.name, "band_pct": band, "venues": names, "from_s": -BEFORE_S, "to_s": AFTER_S,
            "zoom_s": list(zoom)}


def _pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _num(x, nd=0):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{nd}f}"


def build_incident_report(store: Store | str | None, ident: str | int | None = None,
                          out_dir: str | Path | None = None, tz: str = "UTC", mapping=None) -> IncidentReport:
    """Write the cross-venue page of one stored incident (by id or number; see
    :func:`forensics.incidents.select_incident`)."""
    from forensics.incidents import finding, load_mapping, read_incidents, select_incident, Mapping
    store = store if isinstance(store, Store) else Store(store)
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    rows_df = select_incident(read_incidents(store), ident)
    rows_df = rows_df.sort(pl.col("onset_ts").fill_null(2**62), "exchange", "symbol")
    rows = rows_df.to_dicts()
    iid = rows[0]["incident_id"]
    first = next((r for r in rows if r["first"]), None)
    if first is None:
        raise ForensicsError(f"incident {iid}: no first venue stored (re-run `forensics incidents`)")
    t0 = first["onset_ts"]
    band = next((r["band_pct"] for r in rows if r.get("band_pct") is not None), 1.0)
    out = Path(out_dir) if out_dir else Path("reports") / f"incident-{iid.replace(':', '')}"
    out.mkdir(parents=True, exist_ok=True)
    fig = _figure(store, rows, band, t0, out / "incident.png", tz, mapping)
    sentence = finding(rows_df)
    venues = []
    for r in rows:
        venues.append({
            "venue": _venue(r), "exchange": r["exchange"], "symbol": r["symbol"], "event_id": r["event_id"],
            "relation": r["relation"], "first": r["first"], "label": r["label"], "sides": r["sides"],
            "data_kind": r["data_kind"], "onset": iso_utc(r["onset_ts"]), "onset_ts_ns": r["onset_ts"],
            "lag_ms": r["lag_ms"], "lag_uncertainty_ms": r["lag_uncertainty_ms"],
            "timing_uncertainty_ms": r["timing_uncertainty_ms"],
            "terms_ms": {"batch": r["batch_ms"], "clock": r["clock_ms"], "trade_vs_book_skew": r["skew_ms"],
                         "onset_spread": r["onset_ms"]},
            "clock_offset_ms": r["clock_offset_ms"], "band_pct": r["band_pct"],
            "removed_base": {"bid": r["removed_bid_base"], "ask": r["removed_ask_base"], "total": r["removed_base"]},
            "removed_quote": {"bid": r["removed_bid_quote"], "ask": r["removed_ask_quote"], "total": r["removed_quote"]},
            "depth_before_base": r["depth_before_base"], "removed_share": r["removed_share"],
            "traded_share": r["traded_share"], "removed_frac_event_band": r["removed_frac"],
            "event_band_pct": r["event_band_pct"],
            "contract": {"base": r["contract_base"], "quote": r["contract_quote"]},
        })
    doc = {"schema_version": SCHEMA_VERSION, "incident_id": iid, "asset": rows[0]["asset"],
           "first_onset": iso_utc(t0), "tz": tz, "finding": sentence, "band_pct": band,
           "venues": venues, "figure": fig,
           "notes": [
               "Times are on the recorder's clock: each venue's exchange time moved by the median "
               "receive - exchange time (clock_offset_ms); venues without receive times keep their own clock.",
               "A lag no larger than its uncertainty is 'simultaneous': the order cannot be told.",
               "Depth removed = depth within band_pct of mid just before the onset minus its minimum in the "
               "following seconds, per side; contracts converted with the contract size shown.",
               "A venue with relation 'none' had data covering the incident but no detected event.",
           ]}
    (out / "incident.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    md = [f"# Incident {iid} ({rows[0]['asset']})", "",
          f"**{sentence}**", "",
          f"First onset {format_ns(t0, tz)} ({tz}); depth within {band:g}% of mid.", "",
          f"![depth per venue]({fig['file']})", "",
          "## Lags", "",
          "| venue | relation | label | onset | lag (ms) | ± (ms) | batch | clock | skew | onset spread |",
          "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {_venue(r)} | {r['relation']} | {r['label'] or '-'} | "
                  f"{format_ns(r['onset_ts'], tz) if r['onset_ts'] is not None else '-'} | {_num(r['lag_ms'])} | "
                  f"{_num(r['lag_uncertainty_ms'])} | {_num(r['batch_ms'])} | {_num(r['clock_ms'])} | "
                  f"{_num(r['skew_ms'])} | {_num(r['onset_ms'])} |")
    md += ["", "## Depth removed", "",
           "| venue | bid (base) | ask (base) | total (base) | total (quote) | share of all removed | traded share |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        share = r["removed_share"]
        md.append(f"| {_venue(r)} | {_num(r['removed_bid_base'], 3)} | {_num(r['removed_ask_base'], 3)} | "
                  f"{_num(r['removed_base'], 3)} | {_num(r['removed_quote'])} | "
                  f"{_pct(share)} | {_pct(r['traded_share'])} |")
    md += ["", "## Notes", ""] + [f"- {n}" for n in doc["notes"]] + [
        "", f"Rows: `forensics sql --query cross_venue_lag --param incident_id={iid}`", ""]
    (out / "incident.md").write_text("\n".join(md))
    return IncidentReport(out, doc, {"md": out / "incident.md", "json": out / "incident.json",
                                     "png": out / "incident.png"})
