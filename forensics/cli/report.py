"""``forensics report``: an annotated incident report (md + self-contained html + json + PNGs)."""
from __future__ import annotations

import click

from forensics.cli import cli, instrument_options, lazy_function, parallel_options, run_with_progress, store_option
from forensics.cli.params import effective_sections, field_option, params_options
from forensics.cli.params import show_params as show_params_toml
from forensics.errors import ForensicsError

Store = lazy_function("forensics.store", "Store")
parse_duration = lazy_function("forensics.timeutil", "parse_duration")


@cli.command("report")
@click.option("--at", "at", default=None,
              help="Moment to report on, e.g. \"2025-10-11 05:13\" (read in --tz unless it has an offset).")
@field_option("--window", default=None, field="report.window_s", what="Window centred on --at, e.g. 30m.")
@click.option("--from", "from_", default=None, help="Report every event from this time (instead of --at).")
@click.option("--to", "to_", default=None, help="... to this time.")
@click.option("--tz", default="UTC", show_default=True,
              help="Timezone for input times and for every time shown (e.g. Asia/Shanghai, +08:00).")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False),
              help="Output folder [default: reports/<exchange>-<symbol>-<local time>/].")
@click.option("--every", default=None,
              help="Depth grid when depth must be computed (default: 100 ms .. 1 s from the window).")
@click.option("--no-compute", is_flag=True, help="Use only what the store holds (no depth/detect runs).")
@click.option("--per-event", is_flag=True,
              help="One report per stored event (in --out, default reports/), e.g. with --workers.")
@params_options("report")
@instrument_options
@store_option
@parallel_options
def report_cmd(at, window, from_, to_, tz, out, every, no_compute, per_event, params_file, param_sets,
               show_params, exchange, symbol, store, workers, scheduler):
    """Write an incident report: headline finding, depth chart, heatmap, traded-vs-cancelled
    attribution, the vacuum afterwards, caveats, and the SQL behind every number.

    Depth and events are computed for the window when the store does not have them yet, so
    this works right after `forensics ingest` (with the [detect]/[classify] parameters of
    --params, recorded as a run in table `runs`). report.json's `parameters` carries the
    recorded runs of the events it shows and the [report] parameters.

    \b
    Examples:
      forensics report --at "2025-10-11 05:13" --tz Asia/Shanghai
      forensics report --at 2025-10-10T21:13:00Z --window 10m --out reports/0513/
      forensics report --from "2025-10-10 20:50" --to "2025-10-10 21:30"
      forensics report --per-event --workers 2 --out reports/all/
    """
    from forensics.params import build
    from forensics.report import build_report

    sections = effective_sections("report", params_file, param_sets,
                                  {"report": {"window_s": parse_duration(window) / 1e9}} if window else None)
    if show_params:
        show_params_toml(sections, "forensics report parameters (effective: defaults < --params < --set < options)")
        return
    rp = build(sections, "report")
    window_ns = int(rp.window_s * 1e9)
    if per_event or workers is not None or scheduler:
        _per_event(store, exchange, symbol, from_, to_, tz, out, window_ns, rp, workers, scheduler)
        return

    if at is None and from_ is None and to_ is None:
        raise ForensicsError("say when: --at TIME (a report centred there) or --from/--to (every event in a range)")
    res = build_report(Store(store), exchange=exchange, symbol=symbol, at=at, ts_from=from_, ts_to=to_, tz=tz,
                       window_ns=window_ns, out_dir=out, every_ns=parse_duration(every) if every else None,
                       compute=not no_compute, params=build(sections, "detect"), report_params=rp)
    j = res.json
    click.echo(j["headline"])
    click.echo(f"{len(j['events'])} event(s), data: {j['data_kind']}; report in {res.out_dir}/")
    for role in ("html", "md", "json"):
        click.echo(f"  {res.paths[role]}")


def _per_event(store, exchange, symbol, from_, to_, tz, out, window_ns, report_params, workers, scheduler) -> None:
    from forensics.parallel import parallel_reports
    from forensics.timeutil import parse_time
    res = run_with_progress(parallel_reports, "report", store=Store(store), exchange=exchange, symbol=symbol,
                            ts_from=parse_time(from_, tz) if from_ else None,
                            ts_to=parse_time(to_, tz) if to_ else None, out_root=out or "reports", tz=tz,
                            window_ns=window_ns, report_params=report_params, workers=workers,
                            scheduler=scheduler)
    for r in res:
        click.echo(f"{r.value['dir']}/: {r.value['headline']}")
    click.echo(f"{len(res)} report(s)")
