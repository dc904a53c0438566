"""Render the report document as Markdown, self-contained HTML and JSON.

One block list (:func:`blocks`) feeds both text renderers, so md and html say the same thing.
The HTML embeds every PNG as a base64 data URI and carries its CSS inline: no external
resource (no CDN, no web font, no link) is needed to render it.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from forensics.report.fmt import clock, duration
from forensics.vocab import DataKind, Label, label_short, label_title


def _tzname(ctx) -> str:
    from forensics.report.context import tz_offset_label
    ref = ctx.at if ctx.at is not None else ctx.ts_from
    off = tz_offset_label(ctx.tz, ref)
    return off if ctx.tz.upper() in ("UTC", "Z") or ctx.tz == off else f"{ctx.tz}, {off}"


def blocks(ctx, doc, paths: dict[str, Path]) -> list[tuple]:
    """The report as a list of blocks (``(kind, ...)``: title, meta, h2/h3, lead, p, ul, table,
    figure, sql, interactive), in reading order; both text renderers walk it."""
    from forensics.report import article          # issue 18: "Reading the market around the event"
    j = doc["json"]
    figs = j["figures"]
    tzn = _tzname(ctx)
    has_trades = j.get("trades_in_store", True)
    out = _title_and_meta(ctx, doc, tzn, has_trades)
    out += _finding_blocks(doc, figs)
    if doc["events"]:
        out += _events_table(ctx, doc, tzn)
    for pe in doc["events"]:
        out += _event_blocks(ctx, pe, figs, has_trades)
    out += article.blocks(ctx, doc)
    out.append(("h2", "Caveats", "caveats"))
    out.append(("ul", doc["caveats"] or ["None found: no data gaps in the window, level data, and every "
                                         "event's confidence is at least 0.6."]))
    out += _sql_blocks(doc)
    out.append(("h2", "Data provenance", "provenance"))
    out.append(("table", ["table", "source"], [[k, str(v)] for k, v in j["provenance"].items()]))
    return out


def _title_and_meta(ctx, doc, tzn: str, has_trades: bool) -> list[tuple]:
    """The title and the key/value lines under it (window, data, grid, events, generated)."""
    j = doc["json"]
    title = (f"{ctx.symbol} on {ctx.exchange}: "
             + (f"incident report, {clock(ctx.at, ctx.tz, True)[:16]} ({tzn})" if ctx.at is not None
                else f"events from {clock(ctx.ts_from, ctx.tz, True)[:16]} to {clock(ctx.ts_to, ctx.tz, True)[:16]} ({tzn})"))
    out: list[tuple] = [("title", title)]
    kind = ("levels — depth rebuilt from L2 order-book updates" if ctx.data_kind == DataKind.BOOK
            else "bands — pre-aggregated depth bands (depth_bands); no per-level data")
    kind += (" + trades" if has_trades else "; no trades in the store for the window")
    out.append(("meta", [
        ("Window", f"{clock(ctx.ts_from, ctx.tz, True)} – {clock(ctx.ts_to, ctx.tz, True)} ({tzn})"),
        ("Window (UTC)", f"{j['window']['from']} – {j['window']['to']}"),
        ("Data", kind),
        ("Depth grid" if ctx.data_kind == DataKind.BOOK else "Band samples every",
         duration(int(round(j["grid_ms"] * 1_000_000))) if j["grid_ms"] else "n/a"),
        ("Events", str(len(doc["events"]))),
        ("Generated", f"{j['generated_at']} by {j['generated_by']}"),
    ]))
    return out


def _finding_blocks(doc, figs: dict) -> list[tuple]:
    """The headline finding, the interactive charts, the depth chart and the window's figures."""
    out: list[tuple] = []
    out.append(("h2", "Finding", "finding"))
    out.append(("lead", doc["headline"]))
    if doc.get("interactive"):
        out.append(("interactive", doc["interactive"]))
    out.append(_figure("depth", figs))
    if doc.get("window_metrics"):
        out.append(("h3", "The window at a glance"))
        out.append(("table", ["measure", "value", "definition", "SQL"],
                    [[m.label, m.display, m.definition, f"[{m.sql_id}](#{m.sql_id.lower()})"]
                     for m in doc["window_metrics"].values()]))
    return out


def _events_table(ctx, doc, tzn: str) -> list[tuple]:
    """One row per detected event (the headline's starred)."""
    out: list[tuple] = []
    out.append(("h2", "Detected events", "events"))
    rows = []
    for pe in doc["events"]:
        ev = pe["event"]
        rows.append([str(pe["n"]) + (" ★" if pe["primary"] else ""), clock(int(ev["start_ts"]), ctx.tz, True),
                     duration(int(ev["end_ts"]) - int(ev["start_ts"])), ev.get("sides") or "",
                     label_short(ev.get("label"), ev.get("label") or ""),
                     f"{ev['confidence']:.2f}" if ev.get("confidence") is not None else "n/a", ev["event_id"]])
    out.append(("table", ["#", f"start ({tzn})", "duration", "sides", "label", "confidence", "event id"], rows))
    out.append(("p", "★ = the event the headline describes. Times are the detector's start; durations "
                     "run from its start to its end."))
    return out


def _event_blocks(ctx, pe, figs: dict, has_trades: bool) -> list[tuple]:
    """One event's section: headline, the detector's reasoning, phase 1 / phase 2, the evidence
    table and its figures."""
    out: list[tuple] = []
    ev = pe["event"]
    n = pe["n"]
    lab = ev.get("label") or Label.MIXED
    out.append(("h2", f"Event {n}: {label_short(lab, lab)} at {clock(int(ev['start_ts']), ctx.tz)}",
                f"event-{n}"))
    out.append(("lead", pe["headline"]))
    out += _reasoning_blocks(ev, lab)
    out.append(("h3", label_title(lab)))
    out.append(("p", pe["phase1"]))
    out.append(("h3", "Phase 2: the vacuum"))
    out.append(("p", pe["phase2"]))
    out.append(("h3", "Evidence"))
    rows = []
    for m in pe["metrics"].values():
        rows.append([m.label, m.display, m.definition, "detector" if m.source == "detector" else "report",
                     f"[{m.sql_id}](#{m.sql_id.lower()})"])
    out.append(("table", ["measure", "value", "definition", "source", "SQL"], rows))
    if not has_trades:
        out.append(("p", "Not shown: traded share (gross and net), size traded or cancelled, aggressive "
                         "volume and price impact per volume: they are measured against trades, and the "
                         "store has none for this window."))
    if pe["figures"]:
        for role in (f"heatmap-{n}", f"attribution-{n}", f"vacuum-{n}"):
            if role in figs:
                out.append(_figure(role, figs))
    return out


def _reasoning_blocks(ev: dict, lab: str) -> list[tuple]:
    """The detector's reasoning lines, with a note on those the report does not show and why."""
    out: list[tuple] = []
    reasons = ev.get("evidence")
    dropped = ev.get("evidence_dropped") or 0
    if dropped:
        why = ev.get("evidence_dropped_why") or "they rest on trades, which the store does not have for this window"
        reasons = list(reasons or []) + [f"({dropped} more line(s) of the detector's reasoning not shown: {why})"]
    if isinstance(reasons, list) and reasons:
        out.append(("p", f"The detector's reasoning (label {ev.get('detector_label') or lab}, confidence "
                         f"{ev['confidence']:.2f}):" if ev.get("confidence") is not None else
                         "The detector's reasoning:"))
        out.append(("ul", [str(x) for x in reasons]))
    return out


def _sql_blocks(doc) -> list[tuple]:
    """'Reproduce every number': every SQL snippet behind a figure (derived detector values show
    their derivation; the plain read-back stays in report.json / reproduce.sql)."""
    j = doc["json"]
    out: list[tuple] = []
    out.append(("h2", "Reproduce every number", "sql"))
    out.append(("p", "Each number above is the result of one of these queries against the store's views "
                     "(depth, book_top, level_changes, events, trades, depth_bands). Run one with "
                     "`forensics sql \"<query>\"` (add `--store DIR` if the store is not ./store). "
                     "Times are UTC; sizes and prices are exact decimals in real units. A detector figure "
                     "is recomputed from the underlying tables where that reproduces the detector's value "
                     "exactly, else read back from the events table; both forms of every figure are in "
                     "reproduce.sql and report.json."))
    for s in j["sql"]:
        if s.get("role") == "lookup" and any(m.get("lookup_id") == s["id"] for m in j["metrics"]):
            continue  # the plain read-back of a derived detector value: in report.json / reproduce.sql
        ev = f" (event {_event_n(doc, s['event_id'])})" if s.get("event_id") else " (window)"
        how = {"derivation": " — recomputed from the data", "lookup": " — read from the events table"}.get(
            s.get("role"), "")
        out.append(("sql", s["id"], f"{s['id']}: {s['key']}{ev} = {_short(s['value'])}{how}", s["sql"]))
    return out


def _event_n(doc, eid):
    for pe in doc["events"]:
        if pe["event"]["event_id"] == eid:
            return pe["n"]
    return "?"


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _figure(role: str, figs: dict) -> tuple:
    f = figs.get(role, {})
    return ("figure", role, f.get("title") or role, f.get("caption") or "", f.get("file"), f.get("unavailable"))


# ---- markdown -------------------------------------------------------------------------------------

def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(bl: list[tuple]) -> str:
    lines: list[str] = []
    for b in bl:
        k = b[0]
        if k == "title":
            lines += [f"# {b[1]}", ""]
        elif k == "meta":
            lines += [f"- **{a}:** {v}" for a, v in b[1]] + [""]
        elif k == "h2":
            lines += [f"## {b[1]}", ""]
        elif k == "h3":
            lines += [f"### {b[1]}", ""]
        elif k == "lead":
            lines += [f"**{b[1]}**", ""]
        elif k == "p":
            lines += [b[1], ""]
        elif k == "ul":
            lines += [f"- {x}" for x in b[1]] + [""]
        elif k == "table":
            lines.append("| " + " | ".join(_md_cell(h) for h in b[1]) + " |")
            lines.append("|" + "|".join("---" for _ in b[1]) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b[2]]
            lines.append("")
        elif k == "interactive":
            lines += ["*Interactive charts (zoomable heatmap and depth, linked time axes, exact values on "
                      "hover): open `report.html`, which works offline.*", ""]
        elif k == "figure":
            _, role, title, cap, file, why = b
            if file:
                lines += [f"![{title}]({file})", "", f"*{title}.* {cap}", ""]
            else:
                lines += [f"*{title}: unavailable — {why}*", ""]
        elif k == "sql":
            _, sid, head, sql = b
            lines += [f'<a id="{sid.lower()}"></a>', f"**{head}**", "", "```sql", sql, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


# ---- html -----------------------------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1d1d1f;max-width:1180px;
margin:2rem auto;padding:0 1.2rem;line-height:1.5;font-size:15px}
h1{font-size:1.55rem;margin:0 0 .6rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #ddd;
padding-bottom:.25rem}h3{font-size:1rem;margin:1.3rem 0 .3rem}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;font-size:.88rem;color:#444;margin:0}
.meta dt{font-weight:600}.meta dd{margin:0}
.lead{font-size:1.06rem;font-weight:600;background:#fdf2f2;border-left:4px solid #d62728;padding:.7rem 1rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem;width:100%}
th,td{border-bottom:1px solid #e5e5e5;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num{white-space:nowrap;font-variant-numeric:tabular-nums;font-weight:600}
figure{margin:1.2rem 0}figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85rem;color:#444;margin-top:.3rem}figure.ix{border:1px solid #eee;padding:.3rem}
.unavailable{color:#777;font-style:italic}
pre{background:#f7f7f9;border:1px solid #e3e3e8;padding:.6rem .8rem;overflow-x:auto;font-size:.8rem}
code{font-family:Menlo,Consolas,monospace}details{margin:.3rem 0}summary{cursor:pointer;font-size:.88rem}
"""


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _inline(s: str) -> str:
    """Escape text; turn `code` spans and [Sx](#sx) links into HTML."""
    import re
    t = _esc(s)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\[(S\d+)\]\(#(s\d+)\)", r'<a href="#\2">\1</a>', t)
    return t


def to_html(bl: list[tuple], out_dir: Path) -> str:
    title = next((b[1] for b in bl if b[0] == "title"), "Report")
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_esc(title)}</title>", f"<style>{CSS}</style>"]
    if any(b[0] == "interactive" for b in bl):
        from forensics.report.interactive import plotly_js
        # plotly.js inlined: the page needs no CDN and makes no request
        parts.append('<script type="text/javascript">' + plotly_js().replace("</script", "<\\/script") + "</script>")
    parts += ["</head>", "<body>"]
    for b in bl:
        k = b[0]
        if k == "title":
            parts.append(f"<h1>{_esc(b[1])}</h1>")
        elif k == "meta":
            parts.append('<dl class="meta">' + "".join(f"<dt>{_esc(a)}</dt><dd>{_esc(v)}</dd>" for a, v in b[1])
                         + "</dl>")
        elif k == "h2":
            parts.append(f'<h2 id="{_esc(b[2])}">{_esc(b[1])}</h2>')
        elif k == "h3":
            parts.append(f"<h3>{_esc(b[1])}</h3>")
        elif k == "lead":
            parts.append(f'<p class="lead">{_inline(b[1])}</p>')
        elif k == "p":
            parts.append(f"<p>{_inline(b[1])}</p>")
        elif k == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b[1]) + "</ul>")
        elif k == "table":
            head = "".join(f"<th>{_esc(h)}</th>" for h in b[1])
            num_col = b[1].index("value") if "value" in b[1] else -1
            body = "".join("<tr>" + "".join(
                f'<td class="num">{_inline(c)}</td>' if i == num_col else f"<td>{_inline(c)}</td>"
                for i, c in enumerate(r)) + "</tr>" for r in b[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif k == "interactive":
            parts.append('<h3>Explore</h3>' + b[1])
        elif k == "figure":
            _, role, ftitle, cap, file, why = b
            if file:
                data = base64.b64encode((Path(out_dir) / file).read_bytes()).decode("ascii")
                parts.append(f'<figure id="fig-{_esc(role)}"><img alt="{_esc(ftitle)}" '
                             f'src="data:image/png;base64,{data}"><figcaption><strong>{_esc(ftitle)}.</strong> '
                             f"{_inline(cap)}</figcaption></figure>")
            else:
                parts.append(f'<p class="unavailable">{_esc(ftitle)}: unavailable — {_esc(why)}</p>')
        elif k == "sql":
            _, sid, head, sql = b
            parts.append(f'<details id="{_esc(sid.lower())}"><summary>{_esc(head)}</summary>'
                         f"<pre><code>{_esc(sql)}</code></pre></details>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


# ---- all files ------------------------------------------------------------------------------------

def write_all(ctx, doc, out: Path, paths: dict[str, Path]) -> dict[str, Path]:
    out = Path(out)
    bl = blocks(ctx, doc, paths)
    files = {"md": out / "report.md", "html": out / "report.html", "json": out / "report.json",
             "sql": out / "reproduce.sql"}
    files["md"].write_text(to_markdown(bl), encoding="utf-8")
    files["html"].write_text(to_html(bl, out), encoding="utf-8")
    files["json"].write_text(json.dumps(doc["json"], indent=2, ensure_ascii=False, default=str) + "\n",
                             encoding="utf-8")
    sql = [f"-- {s['id']}: {s['key']}" + (f" [{s['event_id']}]" if s.get("event_id") else "")
           + f" = {_short(s['value'])}\n{s['sql']};\n" for s in doc["json"]["sql"]]
    files["sql"].write_text("-- Every number in report.md, reproducible with `forensics sql`.\n\n"
                            + "\n".join(sql), encoding="utf-8")
    return files
