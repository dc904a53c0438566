"""``forensics incidents``: cross-venue incidents (thin layer over forensics.incidents,
forensics.report.incident and forensics.sim_multivenue)."""
from __future__ import annotations

import click

from forensics.cli import cli, lazy_function, store_option
from forensics.cli.params import constant_option
from forensics.errors import ForensicsError

Store = lazy_function("forensics.store", "Store")
format_ns = lazy_function("forensics.timeutil", "format_ns")
parse_duration = lazy_function("forensics.timeutil", "parse_duration")
parse_time = lazy_function("forensics.timeutil", "parse_time")


def _print(console, df, tz: str) -> None:
    from rich.table import Table

    from forensics.incidents import summary
    if df.height == 0:
        console.print("no incidents (no grouped events in the store; run `forensics detect` first)")
        return
    for n, s in enumerate(summary(df), 1):
        rows = df.filter(df["incident_id"] == s["incident_id"])
        t = Table(title=f"{n}. {s['incident_id']}  ({s['venues']} venue(s) with an event, {tz})", title_justify="left")
        for c, j in (("venue", "left"), ("relation", "left"), ("label", "left"), ("onset", "left"),
                     ("lag", "right"), ("±", "right"), ("removed base", "right"), ("removed quote", "right"),
                     ("share", "right"), ("traded", "right")):
            t.add_column(c, justify=j)
        for r in rows.iter_rows(named=True):
            t.add_row(f"{r['exchange']} {r['symbol']}", r["relation"], r["label"] or "-",
                      format_ns(r["onset_ts"], tz) if r["onset_ts"] is not None else "-",
                      "-" if r["lag_ms"] is None else f"{r['lag_ms']:.0f} ms",
                      "-" if r["lag_uncertainty_ms"] is None else f"{r['lag_uncertainty_ms']:.0f} ms",
                      "-" if r["removed_base"] is None else f"{r['removed_base']:.3f}",
                      "-" if r["removed_quote"] is None else f"{r['removed_quote']:,.0f}",
                      "-" if r["removed_share"] is None else f"{100 * r['removed_share']:.0f}%",
                      "-" if r["traded_share"] is None else f"{100 * r['traded_share']:.0f}%")
        console.print(t)
        console.print(s["finding"])


@cli.group("incidents", invoke_without_command=True)
@constant_option("--window", default=None, ref="forensics.incidents:DEFAULT_WINDOW_S", show=lambda s: f"{s:g}s",
                 what="Events of one asset whose onsets follow each other within this form one incident.")
@click.option("--mapping", "mapping", default=None, type=click.Path(dir_okay=False),
              help="TOML/JSON file: [assets] instrument -> asset, [contracts] instrument -> contract size.")
@constant_option("--band", default=None, type=float, ref="forensics.incidents:COMMON_BAND_PCT",
                 what="Band (% of mid) in which depth removed is compared across venues.")
@click.option("--asset", default=None, help="Only this asset, e.g. BTC.")
@click.option("--from", "from_", default=None, help="Events starting at or after this time, ISO-8601.")
@click.option("--to", "to_", default=None, help="... at or before this time.")
@click.option("--tz", default="UTC", show_default=True, help="Timezone for input times and display.")
@click.option("--report", "report_dir", default=None, type=click.Path(file_okay=False),
              help="Also write the cross-venue page of every incident under this folder.")
@store_option
@click.pass_context
def incidents_cmd(ctx, window, mapping, band, asset, from_, to_, tz, report_dir, store):
    """Group detected events of the same asset across venues into incidents: who pulled first,
    who followed how much later (with the clock uncertainty), who did not pull.

    Reads the `events` written by `forensics detect` (run it first) and writes the `incidents`
    table (see `forensics sql --query cross_venue_lag`).

    \b
    Examples:
      forensics detect && forensics incidents
      forensics incidents --window 3s --mapping venues.toml
      forensics incidents report --id 1 --out reports/incident-1
      forensics incidents eval --seeds 20
    """
    ctx.ensure_object(dict)
    ctx.obj.update(store=store, mapping=mapping, tz=tz)
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console

    from forensics.incidents import COMMON_BAND_PCT, DEFAULT_WINDOW_S, build_incidents
    w = DEFAULT_WINDOW_S if window is None else parse_duration(window) / 1e9
    band = COMMON_BAND_PCT if band is None else band
    lo = parse_time(from_, tz) if from_ else None
    hi = parse_time(to_, tz) if to_ else None
    if lo is not None and hi is not None and hi < lo:
        raise ForensicsError("--to is before --from")
    df = build_incidents(Store(store), window_s=w, mapping=mapping, ts_from=lo, ts_to=hi, band_pct=band,
                         asset=asset)
    _print(Console(), df, tz)
    if report_dir and df.height:
        from pathlib import Path

        from forensics.report.incident import build_incident_report
        for iid in df["incident_id"].unique(maintain_order=True).to_list():
            res = build_incident_report(Store(store), iid, Path(report_dir) / iid.replace(":", ""), tz=tz,
                                        mapping=mapping)
            click.echo(f"report: {res.paths['md']}")


@incidents_cmd.command("report")
@click.option("--id", "ident", default=None, help="Incident id, or its number in time order (1 = earliest).")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False),
              help="Output folder [default: reports/incident-<id>/].")
@click.pass_context
def incidents_report_cmd(ctx, ident, out):
    """Write the cross-venue page of one stored incident: stacked depth per venue with each
    venue's onset, the lag table, the share of depth removed per venue, the finding (md + json + PNG)."""
    from forensics.report.incident import build_incident_report
    o = ctx.obj
    res = build_incident_report(Store(o["store"]), ident, out, tz=o["tz"], mapping=o["mapping"])
    click.echo(res.json["finding"])
    for role in ("md", "json", "png"):
        click.echo(f"  {res.paths[role]}")


@incidents_cmd.command("eval")
@click.option("--seeds", default=20, show_default=True, type=int, help="Simulated multi-venue incidents.")
@click.option("--first-seed", default=0, show_default=True, type=int)
@click.option("--bands", is_flag=True, help="Add a band-only venue (Binance bookDepth) to every scenario.")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False),
              help="Keep the simulated files and stores here (default: a temporary folder).")
def incidents_eval_cmd(seeds, first_seed, bands, out):
    """Score the lag estimate on simulated multi-venue incidents with known lags, clock skews and
    batching (first venue right; lag error within the stated uncertainty)."""
    from forensics.sim_multivenue import evaluate, format_summary
    if seeds < 1:
        raise ForensicsError("--seeds must be at least 1")
    click.echo(format_summary(evaluate(seeds, bands=bands, out=out, seed0=first_seed)))
