"""The report section "Reading the market around the event" (issue 18): regime, precursors,
the vacuum curve and maker stress, from :mod:`forensics.market`.

Three hooks, each one line in the report builder:

* :func:`extend` (after ``narrative.compose``): runs the four readings for the headline
  event (or the report's moment) and adds their figures as :class:`~metrics.Metric`\\ s,
  each with the SQL that returns it appended to ``doc["json"]["sql"]`` (the report's "SQL
  behind every number"), and the ``report.json`` field ``article``;
* :func:`draw` (after ``figures.draw_all``): ``article-regime.png``,
  ``article-precursors.png``, ``article-vacuum.png``;
* :func:`blocks` (in ``render.blocks``, before the caveats): the section's text and tables.

A number read from a named query's result is registered with a SQL that selects it from that
query (parameters substituted, runnable with ``forensics sql``); a number derived in Python
(a half-life, the vacuum's length) is registered with the query of the series it comes from
and the rule in its definition.
"""
from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from forensics.report.fmt import clock, duration, py
from forensics.report.metrics import Metric
from forensics.timeutil import NS_PER_S
from forensics.vocab import DataKind

SECTION_ID = "article"
#: re-run every snippet at build time and insist it returns the number (the tests do it anyway)
CHECK = False
ROLES = ("article-regime", "article-precursors", "article-vacuum")


# ---- numbers with their SQL -----------------------------------------------------------------------

def _statement(run) -> str:
    """The named query's statement without its header comment, headed by the command."""
    body = "\n".join(line for line in run.sql.splitlines() if not line.lstrip().startswith("--"))
    return f"-- {run.command}\n" + body.strip()


def _select(run, expr: str, where: str | None = None) -> str:
    return f"SELECT {expr}\nFROM (\n{_statement(run)}\n) q" + (f"\nWHERE {where}" if where else "")


def _register(rn, m: Metric, sql: str, value) -> None:
    if hasattr(rn, "_register"):
        m.sql_id = rn._register(m, sql, "report", value)
    else:  # a Runner without the helper: same record shape
        m.sql_id = f"S{len(rn.snippets) + 1}"
        rn.snippets.append({"id": m.sql_id, "key": m.key, "event_id": m.event_id, "role": "report", "sql": sql,
                            "value": value})


class _Metrics:
    def __init__(self, rn, con, event_id, tz="UTC"):
        self.rn, self.con, self.event_id, self.tz = rn, con, event_id, tz
        self.items: dict[str, Metric] = {}
        self.precursors = None

    def add(self, key, label, value, display, unit, definition, sql, check: bool = CHECK) -> Metric:
        """A figure from the data; with ``check`` its SQL is run and must return ``value``."""
        value = py(value)
        if check:
            rows = self.con.execute(sql).fetchall()
            got = py(rows[0][0]) if rows else None
            if not _same(got, value):
                raise AssertionError(f"article metric {key}: SQL returns {got!r}, Python has {value!r}")
        m = Metric(key=key, label=label, value=value, display=display if value is not None else "n/a", unit=unit,
                   definition=definition, source="report", sql=sql.strip(), event_id=self.event_id, derived=True)
        _register(self.rn, m, m.sql, value)
        self.items[key] = m
        return m


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _f(x, digits=2, unit=""):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}{(' ' + unit) if unit else ''}"


def _ratio(x):
    return "n/a" if x is None else f"{x:.2f}×"


# ---- the readings ---------------------------------------------------------------------------------

def _anchor(ctx, doc):
    """(start_ns, end_ns, event_id) of the headline event, else the report's moment."""
    p = doc.get("primary")
    if p is not None and ctx.events.height:
        ev = ctx.events.row(p, named=True)
        return int(ev["start_ts"]), int(ev["end_ts"]), ev["event_id"]
    if ctx.at is not None:
        return int(ctx.at), None, None
    return None, None, None


def extend(ctx, con, doc) -> None:
    """Run the readings and add the section's figures to ``doc`` (see module doc)."""
    from forensics.market import maker_stress, precursors, regime, vacuum
    from forensics.report.metrics import Runner

    at, end, eid = _anchor(ctx, doc)
    art = {"anchor": None, "metrics": {}, "unavailable": None}
    doc["article"] = art
    doc["json"]["article"] = {"anchor": None}
    if at is None:
        art["unavailable"] = "no event detected and no --at moment: nothing to read the market around"
        doc["json"]["article"]["unavailable"] = art["unavailable"]
        return
    rn = Runner(con)
    rn.snippets = doc["json"]["sql"]          # continue the report's numbering S1, S2, ...
    mx = _Metrics(rn, con, eid, ctx.tz)
    ex, sy = ctx.exchange, ctx.symbol
    art.update(anchor={"start_ns": at, "end_ns": end, "event_id": eid})
    reg = regime.regime(con, ex, sy, at)
    pre = precursors.precursors(con, ex, sy, at) if ctx.data_kind == DataKind.BOOK else None
    vac = vacuum.vacuum_curve(con, ex, sy, at, end, band=_band(ctx)) if ctx.data_kind == DataKind.BOOK else None
    mk = (maker_stress.maker_stress(con, ex, sy, at, end, precursor=pre)
          if ctx.data_kind == DataKind.BOOK and ctx.changes is not None else None)
    art.update(regime=reg, precursors=pre, vacuum=vac, maker=mk)
    _regime_metrics(mx, reg)
    if pre is not None:
        _precursor_metrics(mx, pre, at)
    if vac is not None:
        _vacuum_metrics(mx, vac, at, ctx)
    if mk is not None:
        mx.precursors = pre
        _maker_metrics(mx, mk)
    art["metrics"] = mx.items
    doc["json"]["article"] = _json(ctx, art)
    doc["json"]["metrics"].extend(m.as_json() for m in mx.items.values())


def _band(ctx) -> float:
    return 1.0 if 1.0 in ctx.bands else (ctx.bands[len(ctx.bands) // 2] if ctx.bands else 1.0)


def _regime_metrics(mx: _Metrics, reg) -> None:
    run, v, th = reg["query"], reg["values"], reg["thresholds"]
    why = f" ({reg['reason']})" if reg["reason"] else ""
    mx.add("regime", "regime before the event", reg["regime"], reg["regime"] or f"none{why}", "label",
           f"The article's regime: short ({th['short_ret']}) and long ({th['long_ret']}) return volatility of the hour "
           f"before the event, each high when at least {th['high_ratio']:g}× (short) / {th['long_high_ratio']:g}× (long) "
           "its own history in the store (stable low/low, range high/low, "
           "trend low/high, crisis high/high); none when the history is too short.", _select(run, "regime"))
    for key, col, label, d in (
            ("regime_short_vol", "short_vol_recent_bps", "short-term vol, last hour", "Sample std of 1-min log returns over the hour before the event, bps."),
            ("regime_short_vol_hist", "short_vol_history_bps", "short-term vol, history", "The same over the store's history before that hour, bps."),
            ("regime_short_ratio", "short_ratio", "short-term vol vs its history", "Last hour / history."),
            ("regime_long_vol", "long_vol_recent_bps", "long-term vol, last hour", "Root mean square of long-horizon (default 10-min) log returns, sampled every minute, ending in the hour before the event, bps."),
            ("regime_long_vol_hist", "long_vol_history_bps", "long-term vol, history", "The same over the store's history before that hour, bps."),
            ("regime_long_ratio", "long_ratio", "long-term vol vs its history", "Last hour / history.")):
        val = v.get(col)
        disp = _ratio(val) if "ratio" in col else _f(val, 3, "bps")
        mx.add(key, label, val, disp, "ratio" if "ratio" in col else "bps", d, _select(run, col))
    mx.add("regime_history", "price history before the last hour", v.get("history_ns"),
           duration(v["history_ns"]) if v.get("history_ns") else "0 s", "ns",
           f"Span of {reg['source']} prices in the reference history (needs {duration(th['min_history_ns'])}).",
           _select(run, "history_ns"))


def _hit(key: str, sign: int, z: float, persist: int) -> str:
    """SQL condition: bucket starts a run of ``persist`` buckets beyond ``z`` (adverse side)."""
    zc = f"abs({key}_z)" if sign == 0 else (f"{key}_z" if sign > 0 else f"-{key}_z")
    leads = " AND ".join(f"lead({zc}, {i}) OVER (ORDER BY bucket_ns) >= {z:g}" for i in range(1, persist))
    return f"{zc} >= {z:g}" + (f" AND {leads}" if leads else "")


def _z_sql(run, key: str, sign: int, z: float, persist: int) -> str:
    return (f"WITH q AS (\n{_statement(run)}\n)\nSELECT min(bucket_ns) FROM (\n"
            f"  SELECT bucket_ns, baseline, {_hit(key, sign, z, persist)} AS hit FROM q) f\n"
            "WHERE NOT baseline AND hit")


def _lead_sql(run, at: int, z: float, keys) -> str:
    from forensics.market.precursors import METRICS, PERSIST, PERSIST_BY_METRIC
    parts = [f"  SELECT bucket_ns, baseline, {_hit(k, METRICS[k][2], z, PERSIST_BY_METRIC.get(k, PERSIST))} AS hit FROM q"
             for k in keys]
    return (f"WITH q AS (\n{_statement(run)}\n)\nSELECT {at} - min(bucket_ns) AS lead_ns FROM (\n"
            + "\n  UNION ALL\n".join(parts) + "\n) f\nWHERE NOT baseline AND hit")


def _precursor_metrics(mx: _Metrics, pre, at: int) -> None:
    from forensics.market.precursors import METRICS
    run = pre["query"]
    flagged = {f["metric"]: f for f in pre["flagged"]}
    for key, (label, unit, sign, _need) in METRICS.items():
        f = flagged.get(key)
        if f is None:
            continue
        mx.add(f"precursor_{key}_first", f"{label}: first beyond {pre['z_threshold']:g}σ", f["first_ns"],
               f"{clock(f['first_ns'], mx.tz)} ({duration(at - f['first_ns'])} before)", "UTC ns",
               f"First 10 s bucket of the watch window where the {label} z-score (vs the baseline before the last "
               f"{duration(pre['watch_ns'])}) was beyond {pre['z_threshold']:g} in the adverse direction for "
               f"{f['persist']} consecutive buckets.", _z_sql(run, key, sign, pre["z_threshold"], f["persist"]))
    first = min((f["first_ns"] for f in pre["flagged"]), default=None)
    mx.add("precursor_lead", "earliest precursor lead", (at - first) if first is not None else None,
           duration(at - first) if first is not None else "none beyond 3σ", "ns",
           "Event start minus the first time any precursor went beyond 3σ (see the per-metric rows).",
           _lead_sql(run, at, pre["z_threshold"], [k for k in METRICS if k not in pre["unavailable"]]))


def _vacuum_metrics(mx: _Metrics, vac, at: int, ctx) -> None:
    run, b = vac["query"], vac["baseline"]
    base_where = f"ts_ns < {at - vac['baseline_end_ns']}"
    for key, col, label, unit, fmt in (
            ("vacuum_impact_base", "impact_per_vol", "impact per volume, baseline", f"bps per {ctx.base}", lambda x: f"{x:.3g} bps/{ctx.base}"),
            ("vacuum_lambda_base", "kyle_lambda", "Kyle's lambda, baseline", f"bps per {ctx.base}", lambda x: f"{x:.3g} bps/{ctx.base}"),
            ("vacuum_depth_base", "depth", f"depth within {_band(ctx):g}%, baseline", ctx.base, lambda x: f"{x:,.2f} {ctx.base}"),
            ("vacuum_spread_base", "spread_bps", "spread, baseline", "bps", lambda x: f"{x:.3f} bps")):
        if col in vac["reasons"]:
            mx.add(key, label, None, f"n/a ({vac['reasons'][col]})", unit, vac["reasons"][col],
                   _select(run, f"median({col})", base_where))
            continue
        mx.add(key, label, b[col], fmt(b[col]) if b[col] is not None else "n/a", unit,
               f"Median per-minute {col} over the curve's minutes up to {duration(vac['baseline_end_ns'])} before the event.",
               _select(run, f"median({col})", base_where))
    peak_imp = vac["curve"].filter(pl.col("ts_ns") >= at)["impact_per_vol"].max() if vac["curve"].height else None
    mx.add("vacuum_impact_peak", "impact per volume, peak after", peak_imp,
           f"{peak_imp:.3g} bps/{ctx.base}" if peak_imp is not None else "n/a", f"bps per {ctx.base}",
           "Highest per-minute impact per unit volume from the event's minute on.",
           _select(run, "max(impact_per_vol)", f"ts_ns >= {at}"))
    v = vac.get("vacuum") or {}
    rule = (f"Derived from the per-minute curve: from the first minute at or after the event with impact per volume "
            f"at least {vac['vacuum_factor']:g}× the baseline to the first later minute below it.")
    cte = f"WITH c AS (\n{_statement(run)}\n),\n"
    be = at - vac["baseline_end_ns"]
    f = vac["vacuum_factor"]
    if vac.get("vacuum") is not None:
        mx.add("vacuum_lasted", "the vacuum lasted", v.get("lasted_ns"),
               duration(v["lasted_ns"]) if v.get("lasted_ns") is not None else f"n/a ({v.get('reason')})",
               "ns", rule,
               cte + f"b AS (SELECT median(impact_per_vol) AS base FROM c WHERE ts_ns < {be}),\n"
               f"hi AS (SELECT min(ts_ns) AS t0 FROM c, b WHERE ts_ns >= {at} AND impact_per_vol >= {f!r} * base),\n"
               f"lo AS (SELECT min(c.ts_ns) AS t1 FROM c, b, hi WHERE c.ts_ns > hi.t0 AND impact_per_vol < {f!r} * base)\n"
               "SELECT CASE WHEN hi.t0 IS NULL THEN 0 ELSE lo.t1 - hi.t0 END AS lasted_ns FROM hi, lo")
    rec = vac.get("depth_recovery") or {}
    for lv in ("50", "90"):
        r = rec.get(lv) or {}
        if not r:
            continue
        mx.add(f"vacuum_depth_{lv}", f"depth back to {lv}% of baseline", r.get("ns"),
               f"{duration(r['ns'])} after the start" if r.get("ns") is not None else f"n/a ({r.get('reason')})",
               "ns", f"Derived from the curve: first minute from the depth trough on with mean depth at least {lv}% of "
                     "the baseline, minus the event start (minute resolution).",
               cte + f"b AS (SELECT median(depth) AS base FROM c WHERE ts_ns < {be}),\n"
               f"a AS (SELECT * FROM c WHERE ts_ns >= {at} AND depth IS NOT NULL),\n"
               "tr AS (SELECT ts_ns AS t FROM a ORDER BY depth, ts_ns LIMIT 1)\n"
               f"SELECT min(a.ts_ns) - {at} AS ns FROM a, b, tr WHERE a.ts_ns >= tr.t AND a.depth >= {int(lv) / 100!r} * b.base")
    for which, col, worse in (("spread", "spread_bps", 1), ("depth", "depth", -1)):
        h = vac["half_life"][which]
        if b[col] is None:
            continue
        mx.add(f"vacuum_{which}_half_life", f"{which} recovery half-life", h.get("ns"),
               duration(h["ns"]) if h.get("ns") is not None else f"n/a ({h.get('reason')})", "ns",
               f"Derived from the curve: time from the worst minute after the event to the first minute whose {which} "
               "deviation from the baseline is at most half the worst.",
               cte + f"b AS (SELECT median({col}) AS base FROM c WHERE ts_ns < {be}),\n"
               f"d AS (SELECT ts_ns, ({col} - base) * {worse} AS dev FROM c, b WHERE ts_ns >= {at} AND {col} IS NOT NULL),\n"
               "pk AS (SELECT ts_ns AS t, dev AS peak FROM d ORDER BY dev DESC, ts_ns LIMIT 1)\n"
               "SELECT CASE WHEN pk.peak > 0 THEN min(d.ts_ns) FILTER (WHERE d.ts_ns >= pk.t AND d.dev <= pk.peak / 2) - pk.t END\n"
               "FROM d, pk GROUP BY pk.t, pk.peak")


def _maker_metrics(mx: _Metrics, mk) -> None:
    ql, rp = mk["queries"]["quote_life"], mk["queries"]["maker_reposting"]
    for phase in ("before", "during", "after"):
        row = (mk["quote_life"].get(phase) or {}).get("all") or {}
        p50 = row.get("p50_ms")
        mx.add(f"quote_life_p50_{phase}", f"median quote life, {phase}", p50,
               f"{p50:,.0f} ms" if p50 is not None else "n/a", "ms",
               f"Size-weighted median time added size rested before it was cancelled or traded, for removals {phase} "
               "the event (FIFO per price level).", _select(ql, "p50_ms", f"phase = '{phase}' AND outcome = 'all'"))
        r = mk["reposting"].get(phase) or {}
        ws = r.get("widen_share")
        sel = ("sum(reposted) / nullif(sum(cancelled), 0)",
               {"before": f"bucket_ns < {mk_at(mk)}", "during": f"bucket_ns >= {mk_at(mk)} AND bucket_ns < {mk_at(mk) + mk['during_ns']}",
                "after": f"bucket_ns >= {mk_at(mk) + mk['during_ns']}"}[phase])
        mx.add(f"widen_share_{phase}", f"cancelled size re-posted further out, {phase}", ws,
               f"{100 * ws:.0f}%" if ws is not None else "n/a", "share",
               "Re-posted further from mid (widening) / cancelled size; the rest left the book (withdrawal).",
               _select(rp, sel[0], sel[1]))
    seq = mk["sequence"]
    wf = seq.get("widen_first")
    pre = mx.precursors
    if pre is not None and "spread_bps" not in pre["unavailable"]:
        from forensics.market.precursors import PERSIST
        sql = (f"SELECT coalesce(({_z_sql(pre['query'], 'spread_bps', 1, pre['z_threshold'], PERSIST)}) < "
               f"{mk_at(mk)}, false) AS widen_first")
    else:
        sql = "SELECT NULL::BOOLEAN AS widen_first  -- no spread series"
    mx.add("widen_then_pull", "widen first, then pull", wf,
           ("yes, " + duration(seq["lead_ns"]) + " before the pull") if wf else (f"no ({seq.get('reason')})" if wf is False else "n/a"),
           "bool", "The article's sequence: the spread went beyond 3σ (precursors) before the event start (the pull).",
           sql)


def mk_at(mk) -> int:
    return int(mk["sequence"]["pull_ns"])


# ---- report.json ------------------------------------------------------------------------------------

def _jsonable(x):
    from forensics.report.figures import _jsonable as j
    return j(x)


def _json(ctx, art) -> dict:
    from forensics.report.context import iso_ns
    out = {"anchor": {"start": iso_ns(art["anchor"]["start_ns"]), "end": iso_ns(art["anchor"]["end_ns"]),
                      "event_id": art["anchor"]["event_id"]},
           "metric_keys": list(art["metrics"])}
    reg = art["regime"]
    out["regime"] = {"regime": reg["regime"], "reason": reg["reason"], "short_high": reg["short_high"],
                     "long_high": reg["long_high"], "source": reg["source"], "values": _jsonable(reg["values"]),
                     "thresholds": _jsonable(reg["thresholds"]), "query": reg["query"].command}
    pre = art.get("precursors")
    if pre is not None:
        out["precursors"] = {
            "flagged": [{**f, "first": iso_ns(f["first_ns"])} for f in pre["flagged"]],
            "lead_ms": pre["lead_ns"] / 1e6 if pre["lead_ns"] is not None else None,
            "unavailable": pre["unavailable"], "z_threshold": pre["z_threshold"], "persist": pre["persist"],
            "query": pre["query"].command,
            "series": _jsonable(pre["series"].drop("bucket").to_dicts()),
        }
    else:
        out["precursors"] = {"unavailable": "band-only data: no top of book or level changes"}
    vac = art.get("vacuum")
    if vac is not None:
        out["vacuum_curve"] = {"baseline": _jsonable(vac["baseline"]), "vacuum": _jsonable(vac["vacuum"]),
                               "depth_recovery": _jsonable(vac["depth_recovery"]),
                               "half_life": _jsonable(vac["half_life"]), "reasons": vac["reasons"],
                               "query": vac["query"].command,
                               "curve": _jsonable(vac["curve"].drop("ts").to_dicts())}
    else:
        out["vacuum_curve"] = {"unavailable": "band-only data: no top of book"}
    mk = art.get("maker")
    if mk is not None:
        out["maker_stress"] = {"quote_life": _jsonable(mk["quote_life"]), "reposting": _jsonable(mk["reposting"]),
                               "sequence": _jsonable(mk["sequence"]), "reason": mk["reason"],
                               "queries": {k: q.command for k, q in mk["queries"].items()}}
    else:
        out["maker_stress"] = {"unavailable": "no level_changes (band-only data or attribution missing)"}
    return out


# ---- figures ---------------------------------------------------------------------------------------

def draw(ctx, doc, out: Path) -> dict[str, Path]:
    """The section's PNGs; records them in ``doc['json']['figures']`` like figures.draw_all."""
    import matplotlib

    from forensics.report import figures as F
    art = doc.get("article") or {}
    figs = doc["json"]["figures"]
    paths: dict[str, Path] = {}
    if not art.get("anchor"):
        return paths
    jobs = [("article-regime", _regime_fig), ("article-precursors", _precursor_fig), ("article-vacuum", _vacuum_fig)]
    F.SIZES.update(SIZES)
    with matplotlib.rc_context(F.STYLE):
        for role, fn in jobs:
            path = Path(out) / f"{role}.png"
            info = fn(ctx, art, path)
            if info is None or "unavailable" in info:
                figs[role] = {"file": None, "kind": role, "unavailable": (info or {}).get("unavailable", "not drawn")}
                continue
            w, h = F.px_size(role)
            figs[role] = {"file": path.name, "kind": role, "width": w, "height": h, **_jsonable(info)}
            paths[role] = path
    return paths


#: the section's figure sizes (inches), registered with the report's figure sizes
SIZES = {"article-regime": (7.5, 5.2), "article-precursors": (12.0, 7.2), "article-vacuum": (12.0, 7.0)}


def _new_fig(role):
    from matplotlib.figure import Figure
    from forensics.report import figures as F
    F.SIZES.update(SIZES)
    return Figure(figsize=SIZES[role], dpi=F.DPI, layout="constrained")


def _regime_fig(ctx, art, path):
    reg = art["regime"]
    v, th = reg["values"], reg["thresholds"]
    hr = th["high_ratio"] or 1.5
    lh = th.get("long_high_ratio") or hr
    fig = _new_fig("article-regime")
    ax = fig.add_subplot(1, 1, 1)
    sr, lr = v.get("short_ratio"), v.get("long_ratio")
    top = max(3.0, hr * 2, lh * 1.5, (sr or 0) * 1.2, (lr or 0) * 1.2)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.axvline(hr, color="#888888", lw=1, ls="--")
    ax.axhline(lh, color="#888888", lw=1, ls="--")
    for x, y, name in ((hr / 2, lh / 2, "stable"), ((hr + top) / 2, lh / 2, "range"),
                       (hr / 2, (lh + top) / 2, "trend"), ((hr + top) / 2, (lh + top) / 2, "crisis")):
        ax.text(x, y, name, ha="center", va="center", fontsize=13, color="#bbbbbb", weight="bold")
    if sr is not None and lr is not None:
        ax.scatter([sr], [lr], s=90, color="#d62728", zorder=5)
        ax.annotate(f"{reg['regime'] or 'no regime'}\nshort {sr:.2f}×, long {lr:.2f}×", xy=(sr, lr), xytext=(8, 8),
                    textcoords="offset points", fontsize=9)
    if reg["reason"]:
        import textwrap
        ax.text(0.5, 0.04, textwrap.fill(reg["reason"], 70), transform=ax.transAxes, ha="center", va="bottom",
                fontsize=8.5, color="#8a1c1c", bbox=dict(facecolor="white", edgecolor="#dddddd"))
    ax.set_xlabel(f"short-term vol ({th['short_ret']} returns, last hour) / its history")
    ax.set_ylabel(f"long-term vol ({th['long_ret']} returns, last hour) / its history")
    ax.set_title("Regime before the event (the article's four)", fontsize=11)
    fig.savefig(path, dpi=150, format="png", metadata={"Software": "forensics report"})
    return {"title": "Regime before the event",
            "caption": (f"Each axis is a volatility of the hour before the event against the same volatility over the "
                        f"store's history before it; dashed lines at {hr:g}× (short) and {lh:g}× (long): high. "
                        + (f"Regime: {reg['regime']}." if reg["regime"] else f"No regime: {reg['reason']}.")),
            "values": {"short_ratio": sr, "long_ratio": lr, "high_ratio": hr, "long_high_ratio": lh,
                       "regime": reg["regime"]}}


def _fig_input(art, key: str, frame: str, missing: str, empty: str):
    """(the article section ``key``, its ``frame``) for a figure, or the figure's
    ``{"unavailable": reason}`` when the section is missing or its frame empty."""
    sec = art.get(key)
    if sec is None:
        return None, {"unavailable": missing}
    if sec[frame].height == 0:
        return None, {"unavailable": empty}
    return sec, sec[frame]


def _precursor_fig(ctx, art, path):
    from forensics.market.precursors import METRICS
    from forensics.report.figures import time_axis, xnum
    pre, s = _fig_input(art, "precursors", "series", "band-only data: no top of book or level changes",
                        "no data before the event")
    if pre is None:
        return s
    at = art["anchor"]["start_ns"]
    flagged = {f["metric"]: f for f in pre["flagged"]}
    keys = list(METRICS)
    fig = _new_fig("article-precursors")
    axes = fig.subplots(len(keys), 1, sharex=True)
    x = xnum(s["bucket_ns"].to_numpy() + pre["bucket_ns"] // 2)
    base_end = at - pre["watch_ns"]
    z = pre["z_threshold"]
    for ax, key in zip(axes, keys):
        label, unit, sign, _n = METRICS[key]
        zc = s[f"{key}_z"].cast(pl.Float64).to_numpy()
        ax.axvspan(xnum(int(s["bucket_ns"].min())), xnum(base_end), color="#2980b9", alpha=0.06, lw=0)
        if key in pre["unavailable"]:
            ax.text(0.5, 0.5, f"{label}: unavailable ({pre['unavailable'][key]})", transform=ax.transAxes,
                    ha="center", va="center", fontsize=8, color="#777777")
        else:
            ax.plot(x, zc, color="#34495e", lw=1.0, drawstyle="steps-mid")
        for lvl in ((z,) if sign > 0 else (-z,) if sign < 0 else (z, -z)):
            ax.axhline(lvl, color="#d62728", lw=0.8, ls="--")
        if key in flagged:
            ax.axvline(xnum(flagged[key]["first_ns"]), color="#e67e22", lw=1.4)
        ax.axvline(xnum(at), color="#d62728", lw=1.4)
        ax.set_ylabel("z", fontsize=8)
        ax.set_title(label + (f" — beyond {z:g}σ from {clock(flagged[key]['first_ns'], ctx.tz)}" if key in flagged else ""),
                     fontsize=8.5, loc="left")
    lo, hi = int(s["bucket_ns"].min()), at + pre["bucket_ns"]
    axes[-1].set_xlim(xnum(lo), xnum(hi))
    time_axis(axes[-1], ctx, hi - lo, maxticks=8)
    fig.suptitle("Precursors: z-scores against the baseline (shaded) before the event (red line)", x=0.01, ha="left",
                 fontsize=11, weight="bold")
    fig.savefig(path, dpi=150, format="png", metadata={"Software": "forensics report"})
    return {"title": "Precursor timeline",
            "caption": (f"Per {duration(pre['bucket_ns'])} bucket, each metric's z-score against the baseline (blue "
                        f"shade, the buckets before the last {duration(pre['watch_ns'])}); dashed: ±{z:g}σ in the adverse "
                        "direction; orange: the first bucket of a run beyond it; red: the event start. "
                        + ("Beyond 3σ first: " + ", ".join(f"{f['label']} at {clock(f['first_ns'], ctx.tz)}"
                                                         for f in pre["flagged"]) + "." if pre["flagged"]
                           else "No metric went beyond 3σ before the event.")),
            "values": {"flagged": [{"metric": f["metric"], "first_ns": f["first_ns"]} for f in pre["flagged"]]}}


def _vacuum_fig(ctx, art, path):
    from forensics.report.figures import time_axis, xnum
    vac, c = _fig_input(art, "vacuum", "curve", "band-only data: no top of book", "no data around the event")
    if vac is None:
        return c
    at = art["anchor"]["start_ns"]
    b = vac["baseline"]
    fig = _new_fig("article-vacuum")
    a1, a2, a3 = fig.subplots(3, 1, sharex=True)
    x = xnum(c["ts_ns"].to_numpy())
    imp = c["impact_per_vol"].cast(pl.Float64).to_numpy()
    lam = c["kyle_lambda"].cast(pl.Float64).to_numpy()
    if "impact_per_vol" in vac["reasons"]:
        a1.text(0.5, 0.5, f"unavailable: {vac['reasons']['impact_per_vol']}", transform=a1.transAxes, ha="center")
    else:
        a1.plot(x, imp, color="#d62728", lw=1.2, drawstyle="steps-post", label="impact per volume (bps / unit)")
        a1b = a1.twinx()
        a1b.plot(x, lam, color="#2c3e50", lw=1.0, ls="-", drawstyle="steps-post", label="Kyle's lambda (right)")
        a1b.set_ylabel(f"λ (bps per {ctx.base})", fontsize=8)
        a1b.grid(False)
        if b["impact_per_vol"]:
            a1.axhline(vac["vacuum_factor"] * b["impact_per_vol"], color="#d62728", lw=0.8, ls=":")
        a1.legend(loc="upper left", fontsize=8)
        a1b.legend(loc="upper right", fontsize=8)
        v = vac.get("vacuum") or {}
        if v.get("from_ns") is not None:
            a1.axvspan(xnum(v["from_ns"]), xnum(v["to_ns"] or int(c["ts_ns"].max())), color="#d62728", alpha=0.08, lw=0)
    a1.set_ylabel(f"bps per {ctx.base}", fontsize=8)
    a1.set_title("Price impact per unit volume and Kyle's lambda, per minute", fontsize=9, loc="left")
    d = c["depth"].cast(pl.Float64).to_numpy()
    a2.plot(x, d, color="#1f77b4", lw=1.2, drawstyle="steps-post")
    if b["depth"]:
        for lv, ls in ((1.0, "-"), (0.9, "--"), (0.5, ":")):
            a2.axhline(lv * b["depth"], color="#7f8c8d", lw=0.8, ls=ls)
    a2.set_ylabel(ctx.base, fontsize=8)
    a2.set_title(f"Depth within {_band(ctx):g}% of mid (bid + ask); baseline, 90% and 50% of it", fontsize=9, loc="left")
    a3.plot(x, c["spread_bps"].cast(pl.Float64).to_numpy(), color="#34495e", lw=1.0, drawstyle="steps-post")
    a3.set_ylabel("bps", fontsize=8)
    a3.set_title("Mean spread", fontsize=9, loc="left")
    for ax in (a1, a2, a3):
        ax.axvline(xnum(at), color="#d62728", lw=1.3)
    lo, hi = int(c["ts_ns"].min()), int(c["ts_ns"].max()) + 60 * NS_PER_S
    a3.set_xlim(xnum(lo), xnum(hi))
    time_axis(a3, ctx, hi - lo, maxticks=10)
    fig.suptitle("The vacuum curve: 30 min before to 60 min after the event", x=0.01, ha="left", fontsize=11,
                 weight="bold")
    fig.savefig(path, dpi=150, format="png", metadata={"Software": "forensics report"})
    v = vac.get("vacuum") or {}
    return {"title": "The vacuum curve",
            "caption": ("Per minute: sum of 1-second |mid changes| per unit traded volume (red) and Kyle's lambda from "
                        "a 3-minute rolling regression of 1-second mid change on signed volume (dark); the dotted red "
                        f"line is {vac['vacuum_factor']:g}× the baseline impact, the red shade the vacuum. "
                        + (f"The vacuum lasted {duration(v['lasted_ns'])}. " if v.get("lasted_ns") else "")
                        + "Middle: depth in the band against its baseline; bottom: spread."),
            "values": {"baseline": vac["baseline"], "vacuum": v}}


# ---- text -------------------------------------------------------------------------------------------

def blocks(ctx, doc) -> list[tuple]:
    """The section's blocks for render.blocks (empty when nothing was read)."""
    art = doc.get("article")
    if not art:
        return []
    out: list[tuple] = [("h2", "Reading the market around the event", SECTION_ID)]
    if art.get("unavailable"):
        out.append(("p", art["unavailable"] + "."))
        return out
    m = art["metrics"]
    figs = doc["json"]["figures"]

    def link(k):
        return f"[{m[k].sql_id}](#{m[k].sql_id.lower()})" if k in m else ""

    def table(keys):
        return ("table", ["measure", "value", "definition", "SQL"],
                [[m[k].label, m[k].display, m[k].definition, link(k)] for k in keys if k in m])

    at = art["anchor"]["start_ns"]
    who = f"event {art['anchor']['event_id']}" if art["anchor"]["event_id"] else "the report's moment"
    out.append(("p", f"The rest of the article's reading, around {who} at {clock(at, ctx.tz, True)}: the regime "
                     "the market was in, what warned beforehand, how long the vacuum lasted and how makers behaved."))
    reg = art["regime"]
    out.append(("h3", "Regime before the event"))
    if reg["regime"]:
        out.append(("p", f"Regime: {reg['regime']} — short-term volatility {m['regime_short_ratio'].display} and "
                         f"long-term volatility {m['regime_long_ratio'].display} their own history "
                         f"(high from {reg['thresholds']['high_ratio']:g}× and {reg['thresholds']['long_high_ratio']:g}×)."))
    else:
        out.append(("p", f"No regime: {reg['reason']}."))
    out.append(table([k for k in m if k.startswith("regime")]))
    if "article-regime" in figs:
        out.append(_figure("article-regime", figs))
    out.append(("h3", "Precursors in the minutes before"))
    pre = art.get("precursors")
    if pre is None:
        out.append(("p", "Unavailable for band-only data (no top of book, no level changes)."))
    else:
        if pre["flagged"]:
            out.append(("p", "Beyond 3σ of the baseline before the event: " + "; ".join(
                f"{f['label']} from {clock(f['first_ns'], ctx.tz)} ({duration(at - f['first_ns'])} before, "
                f"z {f['z']:+.1f})" for f in pre["flagged"]) + "."))
        else:
            out.append(("p", "No precursor went beyond 3σ of its baseline before the event."))
        if pre["unavailable"]:
            out.append(("ul", [f"{k}: {v}" for k, v in pre["unavailable"].items()]))
        out.append(table([k for k in m if k.startswith("precursor")]))
        out.append(_figure("article-precursors", figs))
    for title, key, missing, prefixes, role in (
            ("The vacuum curve", "vacuum", "Unavailable for band-only data (no top of book).", ("vacuum",),
             "article-vacuum"),
            ("Maker stress", "maker", "Unavailable: no level changes (band-only data, or attribution not run).",
             ("quote_life", "widen"), None)):
        out.append(("h3", title))
        if art.get(key) is None:
            out.append(("p", missing))
            continue
        out.append(table([k for k in m if k.startswith(prefixes)]))
        if role:
            out.append(_figure(role, figs))
    return out


def _figure(role: str, figs: dict) -> tuple:
    f = figs.get(role, {})
    return ("figure", role, f.get("title") or role, f.get("caption") or "", f.get("file"), f.get("unavailable"))


