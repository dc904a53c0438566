"""``forensics simulate``: synthetic market data in real dump formats, with ground truth."""
from __future__ import annotations

import click

from forensics.cli import cli
from forensics.errors import ForensicsError


@cli.command("simulate")
@click.option("--seed", type=int, default=0, show_default=True, help="RNG seed (same seed = same bytes).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--minutes", type=float, default=30.0, show_default=True, help="Length of the scenario.")
@click.option("--start", default="2025-10-10T20:50:00Z", show_default=True, help="Start time (UTC).")
@click.option("--incident", "incidents", multiple=True, metavar="TYPE@WHEN[:SIDE][~DURATION]",
              help="Scripted incident (repeatable): withdrawal, consumption, one_sided_pull, flicker, calm; "
                   "WHEN is an offset (600s, 20m) or a UTC clock time (21:13:00).")
@click.option("--sample", is_flag=True, help="Write the bundled sample scenario (ignores other options).")
def simulate_cmd(seed, out, minutes, start, incidents, sample):
    """Simulate a limit order book (market makers, noise takers, scripted incidents) and write it
    as a Binance futures capture (depth + aggTrade + REST snapshot), an aggTrades CSV, the
    ground-truth labels (labels.json) and the true traded/cancelled split of every published
    level decrease (truth_level_decreases.parquet).

    \b
    Examples:
      forensics simulate --seed 7 --out sim/ --minutes 30 --incident withdrawal@15m
      forensics simulate --seed 1 --out sim/ --incident consumption@5m:sell --incident flicker@20m
      forensics simulate --sample --out sample_data/
      forensics ingest sim/BTCUSDT-depth-capture-2025-10-10.jsonl.gz && forensics detect
    """
    from forensics import simulate as sim
    try:
        res = sim.write_sample_data(out) if sample else sim.simulate(
            sim.build_config(seed=seed, minutes=minutes, incidents=list(incidents), start=start), out)
    except ValueError as exc:
        raise ForensicsError(str(exc)) from exc
    click.echo(f"{res.n_batches:,} batches, {res.n_depth_events:,} depth events, {res.n_agg_trades:,} aggTrades, "
               f"{res.n_truth_rows:,} truth rows in {res.engine_seconds + res.publish_seconds:.2f} s")
    for name, path in res.files.items():
        click.echo(f"  {name:8s} {path}")
