"""The report document: :func:`compose` gathers the evidence (``report.metrics``) and the words
(``report.text``) for every event and the window into ``{"json": <report.json>, "events": [...],
"headline": ..., "caveats": [...], ...}``; figures and renderers read it. Numbers are never typed
into text by hand: each text fragment formats a :class:`~forensics.report.metrics.Metric` whose
``sql`` reproduces its ``value``.
"""
from __future__ import annotations

import datetime as dt
import json
import re

from forensics.report.fmt import clock, duration, pct, py
from forensics.report.metrics import (TRADE_COLS, Runner, event_metrics, first_value, trades_known,
                                      vacuum_windows, window_metrics)
from forensics.report.params import report_params
from forensics.report.text import annotation, caveats, facts, headline, phases, report_label
from forensics.timeutil import NS_PER_MS, NS_PER_S
from forensics.vocab import label_rank


#: words in the detector's reasoning lines that rest on trades (dropped when there are none)
_TRADE_WORDS = re.compile(r"trad|cancel|withdraw|pull|consum|eaten|vacuum|impact|volume|taker|aggress", re.I)


def _event_json(ev: dict, ctx=None) -> dict:
    from forensics.report.context import iso_ns
    out = {}
    withheld = {}
    for k, v in ev.items():
        if k in ("start_ts", "end_ts"):
            out[k] = iso_ns(v)
            out[k + "_ns"] = int(v)
        elif k == "evidence" and isinstance(v, str):
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
        elif ctx is not None and k in TRADE_COLS and not trades_known(ctx):
            withheld[k] = py(v)
            out[k] = None          # unknown without trades (the detector of the day may have written 0)
        else:
            out[k] = py(v)
    if withheld:
        out["withheld_without_trades"] = withheld
    return out


def _reasoning(lines, ctx):
    """The detector's reasoning lines as the report can show them: sizes in the asset, and without
    trades no line that rests on them. Returns (lines, number dropped)."""
    if not isinstance(lines, list):
        return lines, 0
    out = [str(x).replace("base units", ctx.base) if ctx.base != "base units" else str(x) for x in lines]
    if trades_known(ctx):
        return out, 0
    keep = [x for x in out if not _TRADE_WORDS.search(x)]
    return keep, len(out) - len(keep)


_SHARE_LINE = re.compile(r"traded share \d+(?:\.\d+)?% net of re-adds \(\d+(?:\.\d+)?% gross\)")


def _restate(lines, m: dict):
    """The detector's reasoning with its traded shares in the report's format (one number, one
    format: '4.3% gross, 4.7% net' everywhere, not '5% net (4% gross)' next to '4.7%')."""
    if not isinstance(lines, list):
        return lines
    g, n = first_value(m, "traded_share"), first_value(m, "traded_share_net")
    if g is None or n is None:
        return lines
    return [_SHARE_LINE.sub(f"traded share {pct(g)} gross, {pct(n)} net of re-adds", str(x)) for x in lines]


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("forensics")
    except Exception:  # not installed (running from a checkout)
        return "dev"


def _rank(e: dict) -> tuple:
    return (label_rank(e.get("label")), -(e.get("confidence") or 0.0))


def pick_primary(ctx, evs: list[dict]) -> int | None:
    """--at: the most telling event within 60 s of it (else the nearest); a range: the most
    telling event (withdrawal > pull > consumption > mixed > flicker, then confidence)."""
    if not evs:
        return None
    idx = range(len(evs))
    if ctx.at is not None:
        near = [i for i in idx if abs(evs[i]["start_ts"] - ctx.at) <= 60 * NS_PER_S]
        if near:
            return min(near, key=lambda i: _rank(evs[i]) + (abs(evs[i]["start_ts"] - ctx.at),))
        return min(idx, key=lambda i: (abs(evs[i]["start_ts"] - ctx.at),) + _rank(evs[i]))
    return min(idx, key=lambda i: _rank(evs[i]) + (evs[i]["start_ts"],))


def compose(ctx, con, max_event_figures: int | None = None) -> dict:
    """The report document (see module doc)."""
    run = Runner(con)
    evs = _report_events(ctx)
    primary = pick_primary(ctx, evs)
    figured = _figured(evs, primary, report_params(ctx).max_event_figures if max_event_figures is None else max_event_figures)
    per_event = [_event_section(ctx, run, evs, i, n, primary, figured)
                 for n, i in enumerate(sorted(range(len(evs)), key=lambda i: evs[i]["start_ts"]), start=1)]
    wm = window_metrics(ctx, run)
    cav = caveats(ctx, evs, per_event)
    head = _report_headline(ctx, evs, primary, per_event, cav)
    doc_json = _document_json(ctx, run, evs, primary, per_event, wm, head, cav)
    return {"json": doc_json, "events": per_event, "headline": head, "caveats": cav, "primary": primary,
            "window_metrics": wm}


def _report_events(ctx) -> list[dict]:
    """The detector's events as the report shows them: evidence decoded, the report's label
    (``detector_label`` keeps the detector's), reasoning lines it can stand behind."""
    evs = [dict(r) for r in ctx.events.iter_rows(named=True)]
    for e in evs:
        if isinstance(e.get("evidence"), str):
            try:
                e["evidence"] = json.loads(e["evidence"])
            except ValueError:
                pass
        e["detector_label"] = e.get("label")
        e["label"] = report_label(e, ctx)
        e["evidence"], e["evidence_dropped"] = _reasoning(e.get("evidence"), ctx)
    return evs


def _figured(evs: list[dict], primary: int | None, max_event_figures: int) -> set[int]:
    """Indexes of the events that get their own figures: the primary, then the most telling."""
    order = ([primary] + sorted((i for i in range(len(evs)) if i != primary), key=lambda i: _rank(evs[i]))
             if primary is not None else [])
    return set(order[:max_event_figures])


def _event_section(ctx, run: Runner, evs: list[dict], i: int, n: int, primary: int | None,
                   figured: set[int]) -> dict:
    """Event ``n`` (chronological) of the report: its metrics, headline, annotation and phases."""
    ev = evs[i]
    raw = {k: v for k, v in ctx.events.row(i, named=True).items()}
    m = event_metrics(ctx, run, raw)
    ev["evidence"] = _restate(ev.get("evidence"), m)
    if facts(ev, m, ctx).nothing_removed:
        _drop_share_lines(ev)
    p1, p2 = phases(ev, m, ctx)
    return {
        "n": n, "index": i, "event": ev, "metrics": m, "headline": headline(ev, m, ctx),
        "annotation": annotation(ev, m, ctx), "phase1": p1, "phase2": p2,
        "primary": i == primary, "figures": i in figured,
    }


def _drop_share_lines(ev: dict) -> None:
    """No depth was removed: drop the detector's reasoning lines that quote a traded share of a removal."""
    if not isinstance(ev.get("evidence"), list):
        return
    keep = [x for x in ev["evidence"] if "traded share" not in str(x)]
    if len(keep) < len(ev["evidence"]):
        ev["evidence_dropped"] = (ev.get("evidence_dropped") or 0) + len(ev["evidence"]) - len(keep)
        ev["evidence_dropped_why"] = "they quote a traded share of a removal, and no depth was removed"
        ev["evidence"] = keep


def _report_headline(ctx, evs: list[dict], primary: int | None, per_event: list[dict], cav: list[str]) -> str:
    """The report's headline: the primary event's (saying so when it is not near --at), else
    that nothing was detected (or could be: then a caveat is added first)."""
    from forensics.report.context import tz_offset_label
    span = (f"between {clock(ctx.ts_from, ctx.tz, True)} and {clock(ctx.ts_to, ctx.tz, True)} "
            f"({tz_offset_label(ctx.tz, ctx.ts_from)})")
    if primary is not None:
        head = next(p["headline"] for p in per_event if p["primary"])
        gap = evs[primary]["start_ts"] - ctx.at if ctx.at is not None else 0
        if abs(gap) > 60 * NS_PER_S:
            head = (f"No liquidity cliff was detected within a minute of {clock(ctx.at, ctx.tz)} "
                    f"({tz_offset_label(ctx.tz, ctx.at)}); the nearest event is {duration(abs(gap))} "
                    f"{'later' if gap > 0 else 'earlier'}. " + head)
    elif str(ctx.provenance.get("events", "")).startswith("unavailable"):
        head = (f"Event detection is unavailable here (forensics.detect is not installed): the report shows "
                f"{ctx.exchange} {ctx.symbol} {span} without classifying any cliff.")
        cav.insert(0, "No detector: events were neither found in the store nor detected; run `forensics detect`.")
    else:
        head = f"No liquidity cliff was detected in {ctx.exchange} {ctx.symbol} {span}."
    return head


def _events_json(ctx, per_event: list[dict]) -> list[dict]:
    """report.json's events[]: the detector's rows verbatim plus what the report made of them."""
    from forensics.report.context import iso_ns
    events_json = []
    for p in per_event:
        ej = _event_json(ctx.events.row(p["index"], named=True), ctx)
        ej["report_label"] = p["event"]["label"]
        ej["n"] = p["n"]
        ej["primary"] = p["primary"]
        ej["headline"] = p["headline"]
        ej["narrative"] = {"phase1": p["phase1"], "phase2": p["phase2"]}
        ej["report_metrics"] = {k: mm.value for k, mm in p["metrics"].items() if mm.source == "report"}
        b0, b1, a0, a1 = vacuum_windows(p["event"], ctx)
        ej["vacuum_windows"] = {"before": [iso_ns(b0), iso_ns(b1)], "after": [iso_ns(a0), iso_ns(a1)]}
        events_json.append(ej)
    return events_json


def _document_json(ctx, run: Runner, evs: list[dict], primary: int | None, per_event: list[dict], wm: dict,
                   head: str, cav: list[str]) -> dict:
    """report.json (its key order is the document's; ``figures`` is filled in by the figures)."""
    from forensics.report import SCHEMA_VERSION
    from forensics.report.context import iso_ns, tz_offset_label
    ref = ctx.at if ctx.at is not None else ctx.ts_from
    metrics_json = ([mm.as_json() for mm in wm.values()]
                    + [mm.as_json() for p in per_event for mm in p["metrics"].values()])
    doc_json = {
        "schema_version": SCHEMA_VERSION,
        "generated_by": f"forensics {_version()}",
        "generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "exchange": ctx.exchange, "symbol": ctx.symbol,
        "window": {"from": iso_ns(ctx.ts_from), "to": iso_ns(ctx.ts_to), "tz": ctx.tz,
                   "tz_offset": tz_offset_label(ctx.tz, ref), "at": iso_ns(ctx.at),
                   "from_ns": ctx.ts_from, "to_ns": ctx.ts_to},
        "data_kind": str(ctx.data_kind),
        "grid_ms": (ctx.grid_ns / NS_PER_MS) if ctx.grid_ns else None,
        "bands_pct": ctx.bands,
        "units": {"size": ctx.base, "price": ctx.quote, "notional": ctx.quote, "time": "UTC ISO-8601"},
        "instrument": ({"price_decimals": ctx.inst.price_decimals, "size_decimals": ctx.inst.size_decimals,
                        "tick": ctx.inst.tick, "lot": ctx.inst.lot} if ctx.inst else None),
        "units_note": ("events[] are the detector's rows verbatim (stored units: sizes in lots, prices in ticks, "
                       "mid_* = bid + ask, window_* in UTC ns); metrics[] are in real units "
                       f"({ctx.base}, {ctx.quote}) and each carries the SQL that returns it."),
        "headline": head,
        "primary_event_id": evs[primary]["event_id"] if primary is not None else None,
        "events": _events_json(ctx, per_event),
        "metrics": metrics_json,
        "sql": run.snippets,
        "caveats": cav,
        "provenance": ctx.provenance,
        "gaps": [{"from": iso_ns(g["ts_from"]), "to": iso_ns(g.get("ts_to")), "reason": g.get("reason")}
                 for g in ctx.gaps.iter_rows(named=True)],
        "figures": {},
    }
    doc_json["window_metrics"] = {k: mm.value for k, mm in wm.items()}
    doc_json["trades_in_store"] = trades_known(ctx)
    flags = getattr(ctx, "flags", None)
    doc_json["data_quality_flags"] = ([{**r, "first": iso_ns(r["first_ts"]), "last": iso_ns(r["last_ts"])}
                                       for r in flags.iter_rows(named=True)] if flags is not None else [])
    return doc_json
