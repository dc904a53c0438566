"""``forensics ingest``: exchange dumps -> store."""
from __future__ import annotations

import time
from pathlib import Path

import click

from forensics.cli import cli, lazy_function, store_option
from forensics.errors import ForensicsError

formats = lazy_function("forensics.ingest", "formats")
format_ns = lazy_function("forensics.timeutil", "format_ns")


@cli.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", default=None, help="Override content sniffing (see `forensics formats`).")
@click.option("--exchange", default=None, help="Exchange name to record (default: from content/file name).")
@click.option("--symbol", default=None, help="Symbol to record (default: from content/file name).")
@store_option
@click.option("--force", is_flag=True, help="Re-ingest files already in the manifest (replaces their rows).")
@click.option("--strict", is_flag=True, help="Fail on the first bad row and write nothing for that file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ingest_cmd(paths, fmt, exchange, symbol, store, force, strict, quiet):
    """Ingest exchange dumps (plain, .gz or .zip) into the Parquet store.

    The format is sniffed from content; exchange and symbol come from the content or the
    venue's standard file names. Re-ingesting the same file is a no-op unless --force.
    Bad rows are rejected with file:line and listed in <store>/rejects/.

    \b
    Examples:
      forensics ingest btcusdt_20251010.gz                      # Binance capture (collector lines)
      forensics ingest capture.jsonl.gz snapshot.json           # capture + separate REST snapshot
      forensics ingest BTCUSDT-bookDepth-2025-10-10.zip BTCUSDT-aggTrades-2025-10-10.zip
      forensics ingest binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from forensics.ingest import IngestError, ingest
    from forensics.store import Store
    console = Console(stderr=True)
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=console, disable=quiet, transient=True) as bar:
        tasks = {}

        def progress(src, done):
            if src.path not in tasks:
                tasks[src.path] = bar.add_task(src.name[:40], total=src.size)
            bar.update(tasks[src.path], completed=done)

        failed = None
        try:
            results = ingest(list(paths), store=Store(store), format=fmt, exchange=exchange, symbol=symbol,
                             force=force, strict=strict, progress=progress)
        except IngestError as exc:  # every file was tried; report them all, then fail
            if click.get_current_context().find_root().obj.get("debug"):
                raise
            failed, results = exc, exc.results
    secs = time.perf_counter() - t0
    for r in results:
        if r.error is None:
            click.echo(summary_line(r))
    if len(results) > 1 or failed is None:
        total = sum(r.total_rows for r in results)
        click.echo(f"{total:,} rows in {secs:.2f} s ({total / secs if secs else 0:,.0f} rows/s)")
    for r in results:
        if r.error is not None and len(results) > 1:  # a single file's error is the command's error
            click.secho(f"error: {r.error}", err=True, fg="red")
        for rej in r.first_rejects:
            click.echo(f"  rejected {r.source}:{rej.line}: {rej.reason}", err=True)
        if r.rejected > len(r.first_rejects):
            click.echo(f"  ... {r.rejected:,} rejected rows in all, see {r.rejects_path}", err=True)
        if r.reordered:
            click.echo(f"  note: {r.source}: {r.reordered:,} rows arrived with an older timestamp than "
                       "an earlier row; each part is sorted by (ts, arrival)", err=True)
    if failed is not None:
        n = len(failed.errors)
        raise ForensicsError(f"{n} of {len(results)} file{'s' if len(results) > 1 else ''} not ingested"
                             if len(results) > 1 else str(failed))


def summary_line(r) -> str:
    """One line per file: what landed, what was rejected, gaps, time range."""
    if r.skipped:
        what = (f"same data as {r.same_as}, already ingested" if r.same_content
                else f"already ingested as {r.same_as}" if r.same_as and r.same_as != Path(r.source).name
                else "already ingested")
        text = f"{r.source}: {what} (same content hash); skipped, --force to redo"
        if r.companions and r.companions != r.companions_before:
            text += (f" (it was ingested {'with ' + r.companions_before if r.companions_before else 'alone'};"
                     f" --force re-ingests it with {r.companions})")
        return text
    parts = [f"{v:,} {k}" for k, v in r.rows.items() if v]
    inst = ", ".join(f"{e}/{s}" for e, s in r.instruments)
    text = (f"{r.source} [{r.format}] {inst}: " + (", ".join(parts) or "no rows")
            + f"; {r.rejected:,} rejected; {r.gaps:,} gaps")
    if r.duplicates:
        text += f"; {r.duplicates:,} duplicate trades (already stored) skipped"
    if r.dropped:
        text += f"; {r.dropped:,} dropped by the sync rules (stale or superseded; see the manifest)"
    if r.t_fallback:
        text += f"; {r.t_fallback:,} messages with an unreadable T timed by E"
    if r.ts_min is not None:
        text += f"; {format_ns(r.ts_min)} .. {format_ns(r.ts_max)}"
    for note in getattr(r, "notes", None) or []:
        text += f"; note: {note}"
    return text


@cli.command("formats")
def formats_cmd():
    """List the input formats ingest understands.

    \b
    Example:
      forensics formats
    """
    for name, f in formats().items():
        click.echo(f"{name:24s} {f.description}")
