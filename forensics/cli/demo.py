"""``forensics demo``: the main job end to end on the bundled sample data."""
from __future__ import annotations

import click

from forensics.cli import cli, store_option


@cli.command("demo")
@store_option
@click.option("--out", "out", default="reports/sample-0513", show_default=True,
              type=click.Path(file_okay=False), help="Report directory.")
@click.option("--sample-dir", default=None, type=click.Path(file_okay=False),
              help="Sample folder (default: the repository's sample_data/).")
def demo_cmd(store, out, sample_dir):
    """Run the whole pipeline on the bundled sample: ingest the Binance capture and aggTrades
    file, rebuild the 100 ms depth grid, attribute every level change to trades or
    cancellations, detect and classify cliffs, and write the 05:13 (UTC+8) incident report.

    \b
    Example:
      forensics demo --store store --out reports/sample-0513
    """
    from forensics.demo import run_demo
    run_demo(store, sample_dir=sample_dir, out_dir=out, say=click.echo)
