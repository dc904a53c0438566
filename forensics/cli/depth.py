"""``forensics depth`` and ``forensics heatmap``: thin layers over forensics.book / forensics.heatmap."""
from __future__ import annotations

import sys

import click

from forensics.cli import LazyModule, cli, instrument_options, lazy_function, parallel_options, run_with_progress, store_option, time_options
from forensics.cli.params import effective_sections, explicit_keys, field_option, params_options
from forensics.cli.params import show_params as show_params_toml
from forensics.errors import ForensicsError

pl = LazyModule("polars")
Store = lazy_function("forensics.store", "Store")
format_ns = lazy_function("forensics.timeutil", "format_ns")
parse_duration = lazy_function("forensics.timeutil", "parse_duration")
parse_time = lazy_function("forensics.timeutil", "parse_time")


def _window(from_, to_, tz):
    a = parse_time(from_, tz) if from_ else None
    b = parse_time(to_, tz) if to_ else None
    if a is not None and b is not None and b < a:
        raise ForensicsError("--to is before --from")
    return a, b


def _time_text(wide: pl.DataFrame, tz: str) -> pl.Expr:
    """ISO-8601 text with the offset of ``tz``."""
    if wide.schema["time"].time_zone is not None:
        return pl.col("time").dt.to_string("%Y-%m-%dT%H:%M:%S%.3f%:z")
    from forensics.timeutil import tzinfo
    off = tzinfo(tz).utcoffset(None)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return pl.col("time").dt.to_string("%Y-%m-%dT%H:%M:%S%.3f") + f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


def _every(text: str | None) -> int | None:
    if text is None or str(text).strip().lower() == "auto":
        return None
    if str(text).strip().lstrip("0.") == "":
        raise ForensicsError(f"--every must be a positive duration, e.g. 1s or 100ms (got {text!r})")
    ns = parse_duration(text)
    if ns <= 0:
        raise ForensicsError(f"--every must be a positive duration, e.g. 1s or 100ms (got {text!r})")
    return ns


def _print_flags(console, flags: pl.DataFrame, tz: str) -> None:
    """One block per flag, readable at 80 columns: a head line (kind, side, band, count, span)
    and the detail wrapped at word boundaries under it."""
    from rich.padding import Padding
    from rich.text import Text
    if flags.height == 0:
        console.print("data quality: no issues flagged")
        return
    console.print(Text(f"data-quality flags ({flags.height}, times {tz}):", style="bold"))
    for r in flags.iter_rows(named=True):
        where = " ".join(x for x in (r["side"], None if r["band_pct"] is None else f"{r['band_pct']:g}%") if x)
        from forensics.report.fmt import clock
        span = clock(r["first_ts"], tz, with_date=True) if r["first_ts"] is not None else ""
        if r.get("last_ts") is not None and r["last_ts"] != r["first_ts"]:
            same = clock(r["first_ts"], tz, True)[:10] == clock(r["last_ts"], tz, True)[:10]
            span += " .. " + clock(r["last_ts"], tz, with_date=not same)
        head = Text("  ")
        head.append(r["kind"], style="bold yellow")
        head.append(f"  {where}  x{r['count']:,}" if where else f"  x{r['count']:,}")
        if span:
            head.append(f"  {span}")
        console.print(head, overflow="fold")
        console.print(Padding(Text(r["detail"] or ""), (0, 0, 0, 4)))


def _table(console, wide: pl.DataFrame, res, rows: int, tz: str) -> None:
    """Compact view: per band one column with the bid quantity above the ask quantity."""
    from rich.table import Table
    view = wide if wide.height <= rows else pl.concat([wide.head(rows // 2), wide.tail(rows - rows // 2)])
    days = {t.date() for t in view["time"].drop_nulls().to_list()}
    one_day = len(days) == 1
    t = Table(title=f"{res.exchange} {res.symbol} "
                    f"{'levels replayed' if res.data_kind == 'book' else 'pre-aggregated bands'}"
                    f"{' ' + str(next(iter(days))) if one_day else ''} ({tz}); depth = base qty within "
                    "the band of mid, bid above ask", title_justify="left")
    t.add_column("time")
    book = res.data_kind == "book"
    if book:
        t.add_column("best", justify="right")
        t.add_column("spread", justify="right")
        t.add_column("levels", justify="right")
    for b in res.band_labels:
        t.add_column(f"{b}%", justify="right")
    fmt = "%H:%M:%S.%f" if one_day else "%Y-%m-%d %H:%M:%S.%f"

    def two(a, b):
        return f"{'-' if a is None else a}\n{'-' if b is None else b}"
    for i, r in enumerate(view.iter_rows(named=True)):
        if wide.height > rows and i == rows // 2:
            t.add_row(*["..."] * len(t.columns))
        cells = [r["time"].strftime(fmt)[:-3] + ("" if not book or r["valid"] else "\nunknown")]
        if book:
            flag = " X" if r["crossed"] else (" L" if r["locked"] else "")
            cells += [two(r["best_bid"], r["best_ask"]), ("-" if r["spread"] is None else str(r["spread"])) + flag,
                      two(r["bid_levels"], r["ask_levels"])]
        cells += [two(r.get(f"bid_qty_{b}"), r.get(f"ask_qty_{b}")) for b in res.band_labels]
        t.add_row(*cells)
    console.print(t)
    if book:
        console.print("spread flags: X = crossed, L = locked")


@cli.command("depth")
@store_option
@instrument_options
@time_options
@field_option("--every", default=None, field="depth.every", what="Grid step (e.g. 1s, 100ms); ignored for band data.")
@field_option("--bands", default=None, field="depth.bands",
              what="Bands in % of mid, comma separated (band data: its native bands unless set).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table", show_default=True,
              help="csv / json (JSON Lines) / parquet: the same writers as `forensics sql`.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the series to this file.")
@field_option("--source", type=click.Choice(["auto", "book", "bands"]), default=None, field="depth.source",
              what="book = replay level updates; bands = pre-aggregated depth_bands (e.g. Binance bookDepth).")
@click.option("--no-write", is_flag=True, help="Do not store the derived tables depth/book_top.")
@click.option("--rows", default=20, show_default=True, help="Rows shown by --format table (head and tail).")
@params_options("depth")
@parallel_options
def depth_cmd(store, exchange, symbol, from_, to_, tz, every, bands, fmt, out, source, no_write, rows,
              params_file, param_sets, show_params, workers, scheduler):
    """Depth within bands of mid, best bid/ask, mid, spread and levels on a time grid.

    The book at grid time t is the book after every update with ts <= t; unknown periods
    (before the first snapshot, after a gap until the next snapshot) are null. Results are
    also stored as the derived tables `depth` and `book_top` (see `forensics sql`).
    Data-quality flags (frozen bands, average prices on the wrong side of mid, crossed or
    unknown book...) are listed after the table, one block per flag.

    \b
    Examples:
      forensics depth --every 100ms --from "2025-10-11 05:10" \\
          --to "2025-10-11 05:20" --tz Asia/Shanghai
      forensics depth --bands 0.5,1,2 --format csv --out depth.csv
      forensics depth --workers 2     # Dask: a task per exchange/symbol/day
      forensics depth --params params.toml --set depth.every=100ms
    """
    from rich.console import Console
    from forensics import params as P
    from forensics.book import compute_depth, parse_bands
    if every is not None:
        _every(every)  # validate before any work
    options = {k: v for k, v in (("every", every), ("source", source)) if v is not None}
    if bands is not None:
        options["bands"] = tuple(parse_bands(bands).labels)
    sections = effective_sections("depth", params_file, param_sets, {"depth": options} if options else None)
    if show_params:
        show_params_toml(sections, "forensics depth parameters (effective: defaults < --params < --set < options)")
        return
    dp = P.build(sections, "depth")
    every, source = dp.every, dp.source
    every_ns = _every(every)
    if every_ns is None:
        raise ForensicsError("--every must be a duration, e.g. 1s or 100ms")
    # bands only when set (option, --params, --set): band data keeps its native bands otherwise
    bands = dp.bands if ("depth", "bands") in explicit_keys("depth", params_file, param_sets, options) else None
    if bands is not None:
        parse_bands(bands)
    if fmt == "parquet" and not out:
        raise ForensicsError("--format parquet needs --out FILE")
    a, b = _window(from_, to_, tz)
    if workers is not None or scheduler:
        if out or no_write or fmt != "table":
            raise ForensicsError("--workers/--scheduler store the results; read them with `forensics sql` "
                                 "(no --out, --format or --no-write)")
        _parallel(Store(store), exchange, symbol, a, b, every_ns, bands, source, workers, scheduler)
        return
    res = compute_depth(Store(store), exchange, symbol, a, b, every_ns=every_ns, bands=bands,
                        write=not no_write, source=source)
    to_stdout = fmt in ("csv", "json") and not out
    console = Console(stderr=to_stdout)
    wide = res.wide(tz)
    if fmt == "table":
        _table(console, wide, res, max(2, rows), tz)
    if out or to_stdout:
        # the one export path `forensics sql` uses; text formats carry the times as text in --tz too
        from forensics.sql import export, format_for
        kind = fmt if fmt != "table" else format_for(out, None)
        kind = "csv" if kind == "table" else kind      # --out FILE without a known suffix: CSV
        data = wide if kind == "parquet" else wide.with_columns(_time_text(wide, tz))
        sys.stdout.flush()
        export(data.to_arrow(), kind, out, stdout=None if out else sys.stdout.buffer)
        if not out:
            sys.stdout.buffer.flush()
    s = res.stats
    kind = (f"{s.get('updates', 0):,} updates replayed from {format_ns(s.get('replay_start'), tz)}"
            if res.data_kind == "book" else f"{s.get('samples', 0):,} pre-aggregated samples at native cadence")
    grid = f"every {every}" if res.data_kind == "book" else "native cadence"
    console.print(f"{res.exchange}/{res.symbol} {format_ns(res.ts_from, tz)} .. {format_ns(res.ts_to, tz)}: "
                  f"{wide.height:,} rows ({grid}); {kind}"
                  + (f"; stored {len(res.written)} part(s) in "
                     f"{'depth/book_top' if res.data_kind == 'book' else 'depth'}" if res.written else
                     ("; not stored (--no-write)" if no_write else ""))
                  + (f"; wrote {out}" if out else ""))
    _print_flags(console, res.flags, tz)


@cli.command("heatmap")
@store_option
@instrument_options
@time_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--every", default="auto", show_default=True, help="Time bucket (auto: ~1000 columns).")
@click.option("--price-bucket", default="auto", show_default=True, help="Price bucket in price units (auto: ~--rows rows).")
@click.option("--price-range", default=None,
              help="LO:HI in price units (default: mid +- 0.3%, widened to the trades and changed levels).")
@click.option("--rows", default=400, show_default=True,
              help="Price rows when --price-bucket is auto (about 1 tick-multiple cell each).")
@click.option("--size", "size_", default="1600x900", show_default=True, help="Image size in pixels, WxH.")
@click.option("--no-trades", is_flag=True, help="Do not draw trades.")
def heatmap_cmd(store, exchange, symbol, from_, to_, tz, out, every, price_bucket, price_range, rows, size_, no_trades):
    """Bookmap-style heatmap: resting size by time x price (log colour), mid line, trades as
    dots.

    Needs level data (book_updates); for pre-aggregated bands use `forensics depth`. By
    default the price axis is a window around the mid (a few tenths of a percent), widened to
    cover the trades and the levels that changed near it, in cells of a few ticks; a REST
    snapshot reaching far from the touch does not stretch it. --price-range sets it by hand.

    \b
    Example:
      forensics heatmap --from "2025-10-11 05:10" --to "2025-10-11 05:20" \\
          --tz Asia/Shanghai --out heat.png
    """
    from rich.console import Console
    from forensics.heatmap import compute_heatmap, save_heatmap
    try:
        w, h = (int(x) for x in size_.lower().split("x"))
    except ValueError:
        raise ForensicsError(f"bad --size {size_!r}: use WxH, e.g. 1600x900") from None
    rng = None
    if price_range:
        parts = price_range.split(":")
        if len(parts) != 2:
            raise ForensicsError(f"bad --price-range {price_range!r}: use LO:HI, e.g. 104000:123000")
        rng = (parts[0], parts[1])
    a, b = _window(from_, to_, tz)
    data = compute_heatmap(Store(store), exchange, symbol, a, b, every_ns=_every(every),
                           price_bucket=None if price_bucket == "auto" else price_bucket, price_range=rng,
                           rows=rows, trades=not no_trades)
    path = save_heatmap(data, out, tz=tz, width=w, height=h, trades=not no_trades)
    console = Console()
    console.print(f"{data.exchange}/{data.symbol}: {len(data.times):,} x {data.n_buckets} cells "
                  f"({format_ns(data.ts_from, tz)} .. {format_ns(data.ts_to, tz)}), {data.trades.height:,} trades; "
                  f"wrote {path} ({w}x{h})")
    _print_flags(console, data.flags, tz)


def _parallel(store, exchange, symbol, a, b, every_ns, bands, source, workers, scheduler) -> None:
    from forensics.parallel import parallel_depth
    res = run_with_progress(parallel_depth, "depth", store=store, exchange=exchange, symbol=symbol, ts_from=a,
                            ts_to=b, every_ns=every_ns, bands=bands, source=source, workers=workers,
                            scheduler=scheduler)
    rows = sum(r.value["depth_rows"] for r in res)
    task_s = sum(r.seconds for r in res)
    click.echo(f"{len(res)} partitions (exchange, symbol, day or consecutive days): {rows:,} depth rows stored; "
               f"{task_s:.1f} s of task time on {'scheduler ' + scheduler if scheduler else f'{workers} worker(s)'}")
