"""The ``forensics`` command line: a thin click layer over importable functions.

One module per command group (ingest, sql, depth, detect, report, simulate, demo); each
registers its commands on :data:`cli`. Errors the user can act on print one line and exit 1;
``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import importlib
import sys

import click

from forensics.errors import ForensicsError

COMMAND_MODULES = ("ingest", "sql", "depth", "detect", "report", "simulate", "demo", "incidents", "params")


class LazyModule:
    """A module imported on first attribute use. Command modules name their heavy imports
    (polars, duckdb, pyarrow, the compiled kernels) this way, so ``forensics --help`` loads
    only click (tested in tests/test_cli_startup.py)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"


def lazy_function(module: str, name: str):
    """``module.name`` (a function or class), imported when first called."""
    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)
    call.__name__ = call.__qualname__ = name
    return call


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ForensicsError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"error: {exc}", err=True, fg="red")
            sys.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except OSError as exc:  # read-only mount, full disk, permissions: the reason, one line
            if ctx.obj and ctx.obj.get("debug"):
                raise
            from forensics.store import os_reason
            click.secho(f"error: {os_reason(exc)}", err=True, fg="red")
            sys.exit(1)
        except Exception as exc:  # an unexpected failure: still one line unless --debug
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                        err=True, fg="red")
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="forensics")
@click.pass_context
def cli(ctx, debug):
    """Order-book forensics: when depth vanished, was it eaten by trades or pulled by makers?

    \b
    Typical session:
      forensics ingest BTCUSDT-depth-capture-2025-10-10.jsonl.gz \\
          BTCUSDT-aggTrades-2025-10-10.csv
      forensics depth --every 100ms
      forensics detect
      forensics report --at "2025-10-11 05:13" --tz Asia/Shanghai
      forensics sql "select count(*) from book_updates"
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def store_option(f):
    """``--store DIR|s3://bucket/prefix`` (default ./store or $FORENSICS_STORE)."""
    return click.option("--store", "store", envvar="FORENSICS_STORE", default="store", show_default=True,
                        metavar="DIR|s3://BUCKET/PREFIX",
                        help="Store: a directory or s3://bucket/prefix (credentials and endpoint from "
                             "AWS_* variables) (env FORENSICS_STORE).")(f)


def parallel_options(f):
    """``--workers N`` / ``--scheduler tcp://host:port``: partition-parallel on Dask."""
    f = click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="Run the partitions on this Dask scheduler's workers.")(f)
    f = click.option("--workers", type=int, default=None, metavar="N",
                     help="Run the partitions on a local Dask cluster of N worker processes.")(f)
    return f


def run_with_progress(fn, label: str, **kw):
    """Call ``fn(..., progress=cb)`` with a rich progress bar fed by task completion (stderr)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True, console=_stderr_console()) as bar:
        task = bar.add_task(label, total=None)

        def cb(done, total, part):
            bar.update(task, completed=done, total=total, description=f"{label} {part}")
        return fn(progress=cb, **kw)


def _stderr_console():
    from rich.console import Console
    return Console(stderr=True)


def instrument_options(f):
    """``--exchange`` / ``--symbol`` filters."""
    f = click.option("--symbol", default=None, help="Symbol as the venue writes it, e.g. BTCUSDT.")(f)
    f = click.option("--exchange", default=None, help="Exchange, e.g. binance-futures.")(f)
    return f


def time_options(f):
    """``--from`` / ``--to`` / ``--tz`` (ISO-8601; without offset read in --tz)."""
    f = click.option("--tz", default="UTC", show_default=True,
                     help="Timezone for times without offset and for display (e.g. Asia/Shanghai, +08:00).")(f)
    f = click.option("--to", "to_", default=None, help="End time (inclusive), ISO-8601.")(f)
    f = click.option("--from", "from_", default=None, help="Start time, ISO-8601.")(f)
    return f


for _name in COMMAND_MODULES:
    try:
        importlib.import_module(f"forensics.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a command group not built yet
        if _exc.name != f"forensics.cli.{_name}":
            raise


def main():
    cli(obj={})


if __name__ == "__main__":
    main()
