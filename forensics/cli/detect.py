"""``forensics detect`` and ``forensics eval``: thin layers over forensics.detect / forensics.evaluate."""
from __future__ import annotations

import json
import sys

import click

from forensics.cli import LazyModule, cli, instrument_options, lazy_function, parallel_options, run_with_progress, store_option, time_options
from forensics.cli.params import effective_sections, field_option, params_options
from forensics.cli.params import show_params as show_params_toml
from forensics.errors import ForensicsError

pl = LazyModule("polars")
format_ns = lazy_function("forensics.timeutil", "format_ns")
parse_duration = lazy_function("forensics.timeutil", "parse_duration")
parse_time = lazy_function("forensics.timeutil", "parse_time")


def depth_limit_value(text):
    """``--depth-limit`` text -> the detect.depth_limit value (None: not given)."""
    if text is None:
        return None
    if str(text).lower() == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise ForensicsError(f"--depth-limit must be a number of levels per side (0 = full depth) "
                             f"or auto, not {text!r}") from None
    if n < 0:
        raise ForensicsError("--depth-limit must be >= 0 (0 = full depth)")
    return n


def _positive_seconds(text, flag: str) -> float:
    s = parse_duration(text) / 1e9
    if s <= 0:
        raise ForensicsError(f"--{flag} must be a positive duration")
    return s


def option_layer(drop, window, baseline, every, bands, tolerance, no_flow, no_flicker, depth_limit) -> dict:
    """The [detect] values the command's own options give (only those given), in field units."""
    kw: dict = {}
    if depth_limit is not None:
        kw["depth_limit"] = depth_limit_value(depth_limit)
    if drop is not None:
        if not 0 < drop < 1:
            raise ForensicsError("--drop must be a fraction in (0, 1), e.g. 0.5")
        kw["drop_frac"] = drop
    if window is not None:
        kw["window_s"] = _positive_seconds(window, "window")
    if baseline is not None:
        kw["baseline_s"] = _positive_seconds(baseline, "baseline")
    if every is not None:
        ns = parse_duration(every)
        if ns < 1_000_000:
            raise ForensicsError("--every must be at least 1ms, e.g. 100ms")
        kw["grid_ms"] = ns // 1_000_000
    if bands:
        kw["bands"] = tuple(b.strip().rstrip("%") for b in bands.split(",") if b.strip())
    if tolerance:
        kw["tolerance_ns"] = None if tolerance == "auto" else parse_duration(tolerance)
    if no_flow:
        kw["flow"] = False
    if no_flicker:
        kw["flicker"] = False
    return {"detect": kw} if kw else {}


def detect_params(sections: dict):
    """DetectParams (with its classifier Thresholds) from effective sections."""
    from forensics.params import build
    return build(sections, "detect")


def _pct(x) -> str:
    from forensics.report.fmt import pct
    return "-" if x is None else pct(x)      # the report's formatter: one number, one format


#: the events table's columns, most important first: (header, justify, cell(row, tz)); the
#: first four always show, the rest only while they fit the terminal (or with --wide)
def _ms(v, signed=False):
    if v is None:
        return "-"
    from forensics.report.fmt import duration
    sign = ("+" if v > 0 else "-" if v < 0 else "") if signed else ""
    return sign + duration(int(round(abs(v) * 1_000_000)))


def short_time(ns: int, tz: str) -> str:
    """'2025-10-10 20:54:54' in ``tz`` (milliseconds only when there are some); the zone is in the title."""
    from forensics.report.fmt import clock
    return clock(int(ns), tz, with_date=True)


EVENT_COLUMNS = (
    ("start", "left", lambda r, tz: short_time(r["start_ts"], tz)),
    ("label", "left", lambda r, tz: r["label"] or "-"),
    ("sides", "left", lambda r, tz: r["sides"] or "-"),
    ("conf", "right", lambda r, tz: "-" if r.get("confidence") is None else f"{r['confidence']:.2f}"),
    ("removed", "right", lambda r, tz: _pct(r.get("removed_frac"))),
    ("traded g/n", "right", lambda r, tz: (f"{_pct(r.get('traded_share'))}/{_pct(r.get('traded_share_net'))}"
                                           if r.get("traded_share") is not None or r.get("traded_share_net") is not None
                                           else "-")),
    ("band", "right", lambda r, tz: "-" if r.get("band_pct") is None else f"{r['band_pct']:g}%"),
    ("10-90%", "right", lambda r, tz: _ms(r.get("speed_ms"))),
    ("vacuum", "right", lambda r, tz: "-" if r.get("vacuum_ratio") is None else f"{r['vacuum_ratio']:.1f}x"),
    ("in 500ms", "right", lambda r, tz: _pct(r.get("sync_share_500ms"))),
    ("lag", "right", lambda r, tz: _ms(r.get("side_lag_ms"), signed=True)),
    ("recovery", "right", lambda r, tz: _ms(r.get("recovery_ms"))),
    ("instrument", "left", lambda r, tz: f"{r['exchange']} {r['symbol']}"),
)
ALWAYS = 4


def event_columns(rows: list[dict], tz: str, width: int, wide: bool = False) -> list[int]:
    """Indexes of :data:`EVENT_COLUMNS` to show at ``width`` characters: the first ``ALWAYS`` and
    then, in priority order, every further column that still fits (all of them with ``wide``)."""
    if wide:
        return list(range(len(EVENT_COLUMNS)))
    need = [max(len(h), *(len(f(r, tz)) for r in rows)) + 3 for h, _, f in EVENT_COLUMNS]   # padding + border
    used, keep = 1 + sum(need[:ALWAYS]), list(range(ALWAYS))
    for i in range(ALWAYS, len(EVENT_COLUMNS)):   # strictly by priority: stop at the first that does not fit
        if used + need[i] > width:
            break
        keep.append(i)
        used += need[i]
    return keep


def _print_events(console, ev: pl.DataFrame, tz: str, evidence: bool, wide: bool = False) -> None:
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text
    from forensics.report.context import tz_offset_label
    if ev.height == 0:
        console.print("no events detected")
        return
    rows = list(ev.iter_rows(named=True))
    keep = event_columns(rows, tz, console.width, wide)
    hidden = [EVENT_COLUMNS[i][0] for i in range(len(EVENT_COLUMNS)) if i not in keep]
    instruments = {f"{r['exchange']} {r['symbol']}" for r in rows}
    zone = tz if tz.upper() in ("UTC", "Z") else f"{tz}, {tz_offset_label(tz, rows[0]['start_ts'])}"
    title = f"{ev.height} event(s), times {zone}" + (f", {next(iter(instruments))}" if len(instruments) == 1 else "")
    t = Table(title=title, title_justify="left")
    for i in keep:
        h, j, _ = EVENT_COLUMNS[i]
        t.add_column(h, justify=j, no_wrap=True)
    for r in rows:
        t.add_row(*[EVENT_COLUMNS[i][2](r, tz) for i in keep])
    console.print(t)
    console.print("removed = share of band depth removed; traded g/n = traded share of the removed size, gross / "
                  "net of re-posting; in 500ms = share removed in the busiest 500 ms; vacuum = price impact per "
                  "unit volume after / before" + (f"; not shown at this width: {', '.join(hidden)} (--wide, or "
                                                  "see each event below)" if hidden else ""), highlight=False)
    if evidence or hidden:
        for r in rows:
            conf = "-" if r.get("confidence") is None else f"{r['confidence']:.2f}"
            console.print(f"[bold]{r['event_id']}[/bold] {r['label']} ({conf}):", highlight=False)
            if hidden:
                cells = [f"{EVENT_COLUMNS[i][0]} {EVENT_COLUMNS[i][2](r, tz)}".replace(" ", "\u00a0")
                         for i in range(len(EVENT_COLUMNS))
                         if i not in keep and EVENT_COLUMNS[i][2](r, tz) != "-"]
                if cells:   # wrapped between "name value" cells only, never inside one
                    import textwrap
                    for line in textwrap.wrap("; ".join(cells), width=max(20, console.width - 2),
                                              break_long_words=False, break_on_hyphens=False):
                        console.print("  " + line.replace("\u00a0", " "), highlight=False, overflow="ignore",
                                      crop=False)
            if evidence:
                for line in json.loads(r["evidence"] or "[]"):
                    console.print(Padding(Text(f"- {line}"), (0, 0, 0, 2)))


@cli.command("detect")
@store_option
@instrument_options
@time_options
@field_option("--drop", type=float, default=None, field="detect.drop_frac",
              what="Cliff: minimum fall as a fraction of the baseline.")
@field_option("--window", default=None, field="detect.window_s", what="Cliff: the fall must happen within this time.")
@field_option("--baseline", default=None, field="detect.baseline_s",
              what="Baseline: median depth over this trailing time.")
@field_option("--every", default=None, field="detect.grid_ms", what="Depth grid for level data.")
@field_option("--bands", default=None, field="detect.bands", what="Bands in % of mid for level data, comma separated.")
@field_option("--tolerance", default=None, field="detect.tolerance_ns",
              what="Trade/update matching window, e.g. 150ms, or auto.")
@field_option("--depth-limit", default=None, field="detect.depth_limit",
              what="Levels per side of a depth-limited feed (e.g. 1, 5, 20; 0 = full depth; auto): levels entering "
                   "or leaving that window are truncation, not adds/cancels.")
@field_option("--no-flow", is_flag=True, field="detect.flow",
              what="Do not report sustained aggressive programs (consumption).")
@field_option("--no-flicker", is_flag=True, field="detect.flicker",
              what="Do not look for flicker (large orders placed and pulled).")
@params_options("detect")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="csv / json (JSON Lines) / parquet: the same writers as `forensics sql`.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the events to this file (format from --format, else from its suffix, else CSV).")
@click.option("--evidence/--no-evidence", default=True, show_default=True, help="Print each event's evidence.")
@click.option("--wide", is_flag=True, help="Every column in the events table, whatever the terminal width.")
@parallel_options
def detect_cmd(store, exchange, symbol, from_, to_, tz, drop, window, baseline, every, bands, tolerance,
               depth_limit, no_flow, no_flicker, params_file, param_sets, show_params, fmt, out, evidence, wide,
               workers, scheduler):
    """Find liquidity cliffs and label them: synchronized withdrawal, one-sided pull,
    consumption, flicker or mixed.

    Without filters every instrument in the store is analysed. Level data (book_updates +
    trades) gets attribution (table level_changes), a depth grid (depth/book_top) and the full
    metrics; band data alone (depth_bands) gets cliffs between samples with less evidence.
    Events are stored in table `events` (see `forensics sql "select * from events"`). The
    table shows time, label, sides and confidence first and adds columns while they fit the
    terminal (--wide: all). Every run is recorded in table `runs` (its parameters, window and
    instruments; each event's `run_id` names its run): `forensics params --run ID` gives them
    back as a --params file.

    \b
    Examples:
      forensics detect
      forensics detect --from "2025-10-11 05:00" --to "2025-10-11 05:30" \\
          --tz Asia/Shanghai
      forensics detect --drop 0.4 --window 2s --format csv --out events.csv
      forensics detect --params params.toml --set classify.trade_min=0.65
    """
    from forensics.store import Store
    a, b = _window(from_, to_, tz)
    sections = effective_sections("detect", params_file, param_sets,
                                  option_layer(drop, window, baseline, every, bands, tolerance, no_flow, no_flicker,
                                               depth_limit))
    params = detect_params(sections)
    if show_params:
        show_params_toml(sections, "forensics detect parameters (effective: defaults < --params < --set < options)")
        return
    st = Store(store)
    if not st.exists():
        raise ForensicsError(f"store {st.root} does not exist; ingest data first with `forensics ingest`")
    ev, run = _run_detect(st, exchange, symbol, a, b, params, sections, workers, scheduler)
    if fmt != "table" or out:
        _export_events(ev, fmt, out)      # the rows carry their run_id; stdout stays pure data
        if out:
            click.echo(_run_line(run))
        return
    from rich.console import Console
    _print_events(Console(), ev, tz, evidence, wide)
    _print_decrease_shares(Console(), st, exchange, symbol, a, b)
    click.echo(_run_line(run))


def _run_line(run) -> str:
    return f"run {run.run_id}: its parameters are in table runs (`forensics params --run {run.run_id}`)"


def _window(from_, to_, tz) -> tuple[int | None, int | None]:
    a = parse_time(from_, tz) if from_ else None
    b = parse_time(to_, tz) if to_ else None
    if a is not None and b is not None and b < a:
        raise ForensicsError("--to is before --from")
    return a, b


def _run_detect(st, exchange, symbol, a, b, params, sections, workers, scheduler):
    """Detect and record the run (forensics.runs): (events, run)."""
    from forensics.runs import detect_recorded
    kw = dict(store=st, exchange=exchange, symbol=symbol, ts_from=a, ts_to=b, params=params, sections=sections)
    if workers is not None or scheduler:
        return run_with_progress(detect_recorded, "detect", workers=workers, scheduler=scheduler, **kw)
    return detect_recorded(**kw)


def _export_events(ev, fmt: str, out: str | None) -> None:
    """The one export path `forensics sql` uses: csv / JSON Lines / parquet mean the same everywhere."""
    from forensics.sql import export, format_for
    kind = fmt if fmt != "table" else format_for(out, None)
    kind = "csv" if kind == "table" else kind      # --out FILE without a known suffix: CSV
    sys.stdout.flush()
    n = export(ev.to_arrow(), kind, out, stdout=sys.stdout.buffer)
    sys.stdout.buffer.flush()
    if out:
        click.echo(f"{n} event(s) written to {out}")


def _print_decrease_shares(console, st, exchange, symbol, a, b) -> None:
    """One line per instrument: how much of the decrease volume is truncation / unknown."""
    from forensics.attribution import decrease_shares
    for ex, sy in st.instruments_in("level_changes"):
        if (exchange and ex != exchange) or (symbol and sy != symbol):
            continue
        r = decrease_shares(st, ex, sy, a, b)
        if r["decrease"]:
            console.print(f"attribution {ex} {sy}: of the decrease volume, {_pct2(r['truncation'])} truncation "
                          f"(levels leaving a depth-limited view), {_pct2(r['gap'])} gap (prior size unknown); "
                          "neither counts as traded or cancelled")


def _pct2(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


@cli.command("eval")
@click.option("--set", "seed_set", type=click.Choice(["eval", "eval-wide", "dev", "legacy"]), default="eval",
              show_default=True,
              help="eval: the 150 held-out seeds (never tuned on), eval-wide: the held-out range widened to 600 "
                   "(~67 runs per regime), dev: tuning seeds (all draw background and "
                   "incident shapes per run); legacy: the simulator's default market, seeds from --first-seed.")
@click.option("--seeds", default=None, type=int, help="Runs (each has one incident of every type) [the whole set; legacy 20].")
@click.option("--first-seed", default=1, show_default=True, help="legacy: first seed.")
@click.option("--types", default="withdrawal,consumption,one_sided_pull,flicker,calm", show_default=True,
              help="Incident types per run.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Where runs are simulated (default: a temporary directory, removed).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the summary as JSON.")
@click.option("--keep", is_flag=True, help="With --workdir: keep the simulated stores and reuse them next time.")
@click.option("--quiet", "-q", is_flag=True, help="No per-run lines.")
@click.option("--labels", "labels", is_flag=True,
              help="Score attribution against the exact labels in the store (labels_level_changes, e.g. from "
                   "LOBSTER) instead of the simulator: exact timestamps and with trade receive-time jitter.")
@store_option
@instrument_options
@click.option("--jitter", default="10,50", show_default=True, help="--labels: jitter amplitudes in ms (+-).")
@click.option("--depth-limit", default="auto", show_default=True, help="--labels: levels per side of the view.")
@click.option("--tolerance", default=None, help="--labels: matching window, e.g. 20ms [auto].")
def eval_cmd(seed_set, seeds, first_seed, types, workdir, json_out, keep, quiet, labels, store, exchange, symbol,
             jitter, depth_limit, tolerance):
    """Measure detection, labels and attribution against the simulator's ground
    truth, or (--labels) attribution against exact cause labels of real data.

    Prints precision/recall per label and per regime (instrument/volatility),
    false events per hour of calm background, consumption recall by slicing,
    intensity and duration, the confusion matrix, event-time error, traded-share
    error and row-level attribution accuracy. Thresholds are tuned on --set dev
    only; the figures to quote come from --set eval. With --labels: every
    labelled instrument of the store (LOBSTER), at exact timestamps and with
    trade receive-time jitter.

    \b
    Examples:
      forensics eval                     # the 150 held-out evaluation seeds
      forensics eval --set eval-wide -q  # 600 held-out seeds: per regime
      forensics eval --set dev --seeds 5 --workdir /tmp/ev --keep
      forensics eval --labels --store store
    """
    if labels:
        _eval_labels(store, exchange, symbol, jitter, depth_limit, tolerance, json_out)
        return
    from forensics.evaluate import DEV_SEEDS, EVAL_SEEDS, EVAL_SEEDS_WIDE, TYPES, format_summary, run_eval, to_json
    kinds = tuple(t.strip() for t in types.split(",") if t.strip())
    bad = [k for k in kinds if k not in TYPES]
    if bad or not kinds:
        raise ForensicsError(f"unknown incident type(s) {', '.join(bad) or '(none)'}; use: {', '.join(TYPES)}")
    if seeds is not None and seeds < 1:
        raise ForensicsError("--seeds must be >= 1")
    pool = {"eval": EVAL_SEEDS, "eval-wide": EVAL_SEEDS_WIDE, "dev": DEV_SEEDS}.get(seed_set)
    seed_list = list(pool)[:seeds] if pool is not None else list(range(first_seed, first_seed + (seeds or 20)))

    def progress(r):
        if quiet:
            return
        got = ", ".join(f"{m['incident']['type'] if m['incident'] else 'none'}->"
                        f"{m['event']['label'] if m['event'] else ('no event' if m['incident'] is None or m['incident']['type'] == 'calm' else 'missed')}"
                        for m in r.matches)
        click.echo(f"seed {r.seed}: {got}")
    summary, _ = run_eval(len(seed_list), seed_list[0], kinds, workdir=workdir, progress=progress,
                          drawn=pool is not None, seeds=seed_list, keep=keep)
    click.echo(format_summary(summary))
    if json_out:
        with open(json_out, "w") as fh:
            fh.write(to_json(summary))


def _eval_labels(store, exchange, symbol, jitter, depth_limit, tolerance, json_out) -> None:
    from forensics.labels_eval import evaluate_labels, format_scores, to_json
    from forensics.store import Store
    st = Store(store)
    if not st.exists():
        raise ForensicsError(f"store {st.root} does not exist; ingest labelled data (LOBSTER) first")
    pairs = [p for p in st.instruments_in("labels_level_changes")
             if (exchange is None or p[0] == exchange) and (symbol is None or p[1] == symbol)]
    if not pairs:
        raise ForensicsError(f"no labelled instrument (labels_level_changes) for exchange={exchange or '*'} "
                             f"symbol={symbol or '*'} in {st.root}; ingest a LOBSTER message + orderbook pair")
    try:
        jit = tuple(float(x) for x in jitter.split(",") if x.strip())
    except ValueError:
        raise ForensicsError(f"--jitter must be comma-separated milliseconds, e.g. 10,50, not {jitter!r}") from None
    dl = depth_limit_value(depth_limit)
    tol = parse_duration(tolerance) if tolerance and tolerance != "auto" else None
    out = []
    for ex, sy in pairs:
        scores = evaluate_labels(st, ex, sy, jit, tolerance_ns=tol, depth_limit=dl)
        click.echo(format_scores(scores, f"{ex} {sy}"))
        click.echo("")
        out.append({"exchange": ex, "symbol": sy, "runs": json.loads(to_json(scores))})
    if json_out:
        with open(json_out, "w") as fh:
            fh.write(json.dumps(out, indent=2))
