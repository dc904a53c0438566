"""``forensics detect`` and ``forensics eval``: thin layers over forensics.detect / forensics.evaluate."""
from __future__ import annotations

import json

import click
import polars as pl

from forensics.cli import cli, instrument_options, store_option, time_options
from forensics.errors import ForensicsError
from forensics.timeutil import format_ns, parse_duration, parse_time


def _params(drop, window, baseline, every, bands, tolerance, no_flow, no_flicker, depth_limit="auto"):
    from forensics.detect import DetectParams
    kw = {}
    if depth_limit is not None and str(depth_limit).lower() != "auto":
        try:
            n = int(depth_limit)
        except ValueError:
            raise ForensicsError(f"--depth-limit must be a number of levels per side (0 = full depth) "
                                 f"or auto, not {depth_limit!r}") from None
        if n < 0:
            raise ForensicsError("--depth-limit must be >= 0 (0 = full depth)")
        kw["depth_limit"] = n
    if drop is not None:
        if not 0 < drop < 1:
            raise ForensicsError("--drop must be a fraction in (0, 1), e.g. 0.5")
        kw["drop_frac"] = drop
    if window is not None:
        kw["window_s"] = parse_duration(window) / 1e9
    if baseline is not None:
        kw["baseline_s"] = parse_duration(baseline) / 1e9
    if every is not None:
        ns = parse_duration(every)
        if ns < 1_000_000:
            raise ForensicsError("--every must be at least 1ms, e.g. 100ms")
        kw["grid_ms"] = ns // 1_000_000
    if bands:
        kw["bands"] = tuple(b.strip().rstrip("%") for b in bands.split(",") if b.strip())
    if tolerance and tolerance != "auto":
        kw["tolerance_ns"] = parse_duration(tolerance)
    if no_flow:
        kw["flow"] = False
    if no_flicker:
        kw["flicker"] = False
    for k in ("window_s", "baseline_s"):
        if k in kw and kw[k] <= 0:
            raise ForensicsError(f"--{k[:-2]} must be a positive duration")
    return DetectParams(**kw)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _print_events(console, ev: pl.DataFrame, tz: str, evidence: bool) -> None:
    from rich.table import Table
    if ev.height == 0:
        console.print("no events detected")
        return
    t = Table(title=f"{ev.height} event(s) ({tz}); depth = base qty within the band of mid", title_justify="left")
    for c, j in (("start", "left"), ("instrument", "left"), ("sides", "left"), ("label", "left"),
                 ("conf", "right"), ("band", "right"), ("removed", "right"), ("traded", "right"),
                 ("in 500ms", "right"), ("10-90%", "right"), ("lag", "right"), ("recovery", "right"),
                 ("vacuum", "right")):
        t.add_column(c, justify=j)
    for r in ev.iter_rows(named=True):
        rec = r.get("recovery_ms")
        t.add_row(
            format_ns(r["start_ts"], tz), f"{r['exchange']} {r['symbol']}", r["sides"], r["label"],
            f"{r['confidence']:.2f}", "-" if r.get("band_pct") is None else f"{r['band_pct']:g}%",
            _pct(r.get("removed_frac")), _pct(r.get("traded_share_net")), _pct(r.get("sync_share_500ms")),
            "-" if r.get("speed_ms") is None else f"{r['speed_ms']:.0f} ms",
            "-" if r.get("side_lag_ms") is None else f"{r['side_lag_ms']:+.0f} ms",
            "-" if rec is None else f"{rec / 1000:.1f} s",
            "-" if r.get("vacuum_ratio") is None else f"{r['vacuum_ratio']:.1f}x")
    console.print(t)
    console.print("traded = traded share of the removed quantity net of re-adds; in 500ms = share removed "
                  "in the busiest 500 ms; vacuum = price impact per unit volume after / before")
    if evidence:
        for r in ev.iter_rows(named=True):
            console.print(f"[bold]{r['event_id']}[/bold] {r['label']} ({r['confidence']:.2f}):")
            for line in json.loads(r["evidence"] or "[]"):
                console.print(f"  - {line}")


@cli.command("detect")
@store_option
@instrument_options
@time_options
@click.option("--drop", type=float, default=None, help="Cliff: minimum fall as a fraction of the baseline [0.5].")
@click.option("--window", default=None, help="Cliff: the fall must happen within this time [5s].")
@click.option("--baseline", default=None, help="Baseline: median depth over this trailing time [60s].")
@click.option("--every", default=None, help="Depth grid for level data [100ms].")
@click.option("--bands", default=None, help="Bands in %% of mid for level data [0.1,0.5,1,2,5].")
@click.option("--tolerance", default=None, help="Trade/update matching window, e.g. 150ms [auto: estimated].")
@click.option("--depth-limit", default="auto", show_default=True,
              help="Levels per side of a depth-limited feed (e.g. 1, 5, 20; 0 = full depth): levels entering "
                   "or leaving that window are truncation, not adds/cancels [auto: detected from the data].")
@click.option("--no-flow", is_flag=True, help="Do not report sustained aggressive programs (consumption).")
@click.option("--no-flicker", is_flag=True, help="Do not look for flicker (large orders placed and pulled).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the events to this file.")
@click.option("--evidence/--no-evidence", default=True, show_default=True, help="Print each event's evidence.")
def detect_cmd(store, exchange, symbol, from_, to_, tz, drop, window, baseline, every, bands, tolerance,
               depth_limit, no_flow, no_flicker, fmt, out, evidence):
    """Find liquidity cliffs and label them: synchronized withdrawal, one-sided pull,
    consumption, flicker or mixed.

    \b
    Without filters every instrument in the store is analysed. Level data (book_updates +
    trades) gets attribution (table level_changes), a depth grid (depth/book_top) and the full
    metrics; band data alone (depth_bands) gets cliffs between samples with less evidence.
    Events are stored in table `events` (see `forensics sql "select * from events"`).
    Examples:
      forensics detect
      forensics detect --from "2025-10-11 05:00" --to "2025-10-11 05:30" --tz Asia/Shanghai
      forensics detect --drop 0.4 --window 2s --format csv --out events.csv
    """
    from rich.console import Console
    from forensics.detect import detect
    from forensics.store import Store
    a = parse_time(from_, tz) if from_ else None
    b = parse_time(to_, tz) if to_ else None
    if a is not None and b is not None and b < a:
        raise ForensicsError("--to is before --from")
    params = _params(drop, window, baseline, every, bands, tolerance, no_flow, no_flicker, depth_limit)
    st = Store(store)
    if not st.root.exists():
        raise ForensicsError(f"store {st.root} does not exist; ingest data first with `forensics ingest`")
    ev = detect(st, exchange, symbol, a, b, params)
    if out:
        if fmt == "parquet":
            ev.write_parquet(out)
        elif fmt == "json":
            with open(out, "w") as fh:
                fh.write(ev.write_json())
        else:
            ev.write_csv(out)
        click.echo(f"{ev.height} event(s) written to {out}")
        return
    if fmt == "csv":
        click.echo(ev.write_csv(), nl=False)
    elif fmt == "json":
        click.echo(ev.write_json())
    elif fmt == "parquet":
        raise ForensicsError("--format parquet needs --out FILE")
    else:
        _print_events(Console(), ev, tz, evidence)
        _print_decrease_shares(Console(), st, exchange, symbol, a, b)


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
@click.option("--seeds", default=20, show_default=True, help="Simulated runs (each has one incident of every type).")
@click.option("--first-seed", default=1, show_default=True)
@click.option("--types", default="withdrawal,consumption,one_sided_pull,flicker,calm", show_default=True,
              help="Incident types per run.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Where runs are simulated (default: a temporary directory, removed).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No per-run lines.")
@click.option("--labels", "labels", is_flag=True,
              help="Score attribution against the exact labels in the store (labels_level_changes, e.g. from "
                   "LOBSTER) instead of the simulator: exact timestamps and with trade receive-time jitter.")
@store_option
@instrument_options
@click.option("--jitter", default="10,50", show_default=True, help="--labels: jitter amplitudes in ms (+-).")
@click.option("--depth-limit", default="auto", show_default=True, help="--labels: levels per side of the view.")
@click.option("--tolerance", default=None, help="--labels: matching window, e.g. 20ms [auto].")
def eval_cmd(seeds, first_seed, types, workdir, json_out, quiet, labels, store, exchange, symbol, jitter,
             depth_limit, tolerance):
    """Measure detection, labels and attribution against the simulator's ground truth.

    \b
    Prints precision/recall per label, event-time error, traded-share error vs the truth and
    the row-level attribution accuracy. With --labels, scores attribution on real data with
    exact cause labels (every instrument of the store that has labels). Examples:
      forensics eval --seeds 20
      forensics eval --labels --store store
    """
    if labels:
        _eval_labels(store, exchange, symbol, jitter, depth_limit, tolerance, json_out)
        return
    from forensics.evaluate import TYPES, format_summary, run_eval, to_json
    kinds = tuple(t.strip() for t in types.split(",") if t.strip())
    bad = [k for k in kinds if k not in TYPES]
    if bad or not kinds:
        raise ForensicsError(f"unknown incident type(s) {', '.join(bad) or '(none)'}; use: {', '.join(TYPES)}")
    if seeds < 1:
        raise ForensicsError("--seeds must be >= 1")

    def progress(r):
        if quiet:
            return
        got = ", ".join(f"{m['incident']['type'] if m['incident'] else 'none'}->"
                        f"{m['event']['label'] if m['event'] else ('no event' if m['incident'] is None or m['incident']['type'] == 'calm' else 'missed')}"
                        for m in r.matches)
        click.echo(f"seed {r.seed}: {got}")
    summary, _ = run_eval(seeds, first_seed, kinds, workdir=workdir, progress=progress)
    click.echo(format_summary(summary))
    if json_out:
        with open(json_out, "w") as fh:
            fh.write(to_json(summary))


def _eval_labels(store, exchange, symbol, jitter, depth_limit, tolerance, json_out) -> None:
    from forensics.labels_eval import evaluate_labels, format_scores, to_json
    from forensics.store import Store
    st = Store(store)
    if not st.root.exists():
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
    dl = _params(None, None, None, None, None, None, False, False, depth_limit).depth_limit
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
