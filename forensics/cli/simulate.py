"""``forensics simulate``: synthetic market data in real dump formats, with ground truth."""
from __future__ import annotations

import dataclasses

import click

from forensics.cli import cli
from forensics.errors import ForensicsError


def _bands(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise ForensicsError(f"bad --book-depth-bands {text!r}: use percentages like 1,2,3,4,5 or 0.005,0.01,0.05") \
            from exc
    return vals


@cli.command("simulate")
@click.option("--seed", type=int, default=0, show_default=True, help="RNG seed (same seed = same bytes).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--minutes", type=float, default=30.0, show_default=True, help="Length of the scenario.")
@click.option("--start", default="2025-10-10T20:50:00Z", show_default=True, help="Start time (UTC).")
@click.option("--incident", "incidents", multiple=True, metavar="TYPE@WHEN[:SIDE][~DURATION]",
              help="Scripted incident (repeatable): withdrawal, consumption, one_sided_pull, flicker, calm; "
                   "WHEN is an offset (600s, 20m) or a UTC clock time (21:13:00).")
@click.option("--book-depth", "book_depth", default=None, metavar="DURATION",
              help="Also write <SYMBOL>-bookDepth-<date>.csv (Binance bookDepth format, band-only data) "
                   "sampled from the true book every DURATION (Binance: 30s; e.g. 10s).")
@click.option("--book-depth-bands", "book_depth_bands", default=None, metavar="PCTS",
              help="Bands of the bookDepth CSV, % of mid per side [default: 1,2,3,4,5 as in real files]. "
                   "The simulated book is narrow (~0.01% of mid): use e.g. 0.005,0.01,0.02,0.05.")
@click.option("--book-depth-jitter", "book_depth_jitter", default="1s", show_default=True, metavar="DURATION",
              help="Each bookDepth sample moves by a whole -j..+j seconds (seeded).")
@click.option("--sample", is_flag=True, help="Write the bundled sample scenario (ignores the scenario options; "
                                             "--book-depth still applies).")
def simulate_cmd(seed, out, minutes, start, incidents, book_depth, book_depth_bands, book_depth_jitter, sample):
    """Simulate a limit order book (market makers, noise takers, scripted incidents) and write it
    as a Binance futures capture (depth + aggTrade + REST snapshot), an aggTrades CSV, the
    ground-truth labels (labels.json) and the true traded/cancelled split of every published
    level decrease (truth_level_decreases.parquet); with --book-depth also a bookDepth CSV
    (cumulative depth within each band of mid, from the true book) for band-only analysis.

    \b
    Examples:
      forensics simulate --seed 7 --out sim/ --minutes 30 --incident withdrawal@15m
      forensics simulate --seed 1 --out sim/ --incident consumption@5m:sell --incident flicker@20m
      forensics simulate --sample --out sample_data/
      forensics ingest sim/BTCUSDT-depth-capture-2025-10-10.jsonl.gz && forensics detect
    \b
    Band-only data (bookDepth + aggTrades, no level updates):
      forensics simulate --seed 7 --out simb/ --minutes 10 --incident withdrawal@5m \\
          --book-depth 10s --book-depth-bands 0.005,0.01,0.02,0.05
      forensics ingest simb/BTCUSDT-bookDepth-2025-10-10.csv simb/BTCUSDT-aggTrades-2025-10-10.csv
    """
    from forensics import sim
    try:
        extra = {}
        if book_depth is not None:
            extra["book_depth_every_s"] = sim.parse_duration_s(book_depth)
            extra["book_depth_jitter_s"] = sim.parse_duration_s(book_depth_jitter)
            bands = _bands(book_depth_bands)
            if bands is not None:
                extra["book_depth_bands"] = bands
        elif book_depth_bands is not None:
            raise ForensicsError("--book-depth-bands needs --book-depth (the sampling interval, e.g. 30s)")
        if sample:
            cfg = dataclasses.replace(sim.sample_config(), **extra)
            sim.validate(cfg)
        else:
            cfg = sim.build_config(seed=seed, minutes=minutes, incidents=list(incidents), start=start, **extra)
        res = sim.simulate(cfg, out)
    except ValueError as exc:
        raise ForensicsError(str(exc)) from exc
    click.echo(f"{res.n_batches:,} batches, {res.n_depth_events:,} depth events, {res.n_agg_trades:,} aggTrades, "
               f"{res.n_truth_rows:,} truth rows in {res.engine_seconds + res.publish_seconds:.2f} s")
    for name, path in res.files.items():
        click.echo(f"  {name:8s} {path}")
