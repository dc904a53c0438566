"""Data-quality flags for depth series (shown by ``forensics depth``, returned by
:func:`forensics.book.compute_depth` as ``DepthResult.flags``).

One row per finding (:data:`FLAG_SCHEMA`): ``kind``, ``side``, ``band_pct``, ``count``,
``first_ts``, ``last_ts`` (UTC ns), ``detail`` (one readable sentence).

Level data (replayed book):

* ``crossed`` / ``locked``: grid times with best_bid > best_ask (== for locked); the detail also
  counts the update timestamps after which the book was crossed (finer than the grid).
* ``gap``: recorded gaps (``gaps`` table) in the window: the book is unknown from each gap
  until the next snapshot.
* ``unknown``: grid times whose values are null because the book is unknown (no snapshot yet,
  after a gap until the next snapshot, or after the instrument's last recorded update).
* ``one_sided``: known book with one side empty (no mid, bands null).

Pre-aggregated bands (Binance bookDepth style, cumulative per side):

* ``non_monotonic``: a wider band holds less quantity (or notional) than a narrower one.
* ``frozen_band``: a band repeats exactly the same quantity for ``FROZEN_MIN_SAMPLES`` or more
  consecutive samples while other bands of the same side move.
* ``avg_price_wrong_side``: a band's average price (notional/qty) is on the wrong side of the
  mid proxy (midpoint of the 1 % bid and ask average prices; the narrowest common band if there
  is no 1 % band): bids above it or asks below it.
"""
from __future__ import annotations

import polars as pl

from forensics.timeutil import iso_utc

FLAG_SCHEMA = {"kind": pl.Utf8, "side": pl.Utf8, "band_pct": pl.Float64, "count": pl.Int64,
               "first_ts": pl.Int64, "last_ts": pl.Int64, "detail": pl.Utf8}
FROZEN_MIN_SAMPLES = 3


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=FLAG_SCHEMA) if rows else pl.DataFrame(schema=FLAG_SCHEMA)


def _row(kind, count, first, last, detail, side=None, band=None) -> dict:
    return {"kind": kind, "side": side, "band_pct": band, "count": int(count),
            "first_ts": None if first is None else int(first), "last_ts": None if last is None else int(last),
            "detail": detail}


def _span(df: pl.DataFrame, mask: pl.Expr) -> tuple[int, int | None, int | None]:
    sel = df.filter(mask.fill_null(False))
    if sel.height == 0:
        return 0, None, None
    return sel.height, int(sel["ts"].min()), int(sel["ts"].max())


def book_flags(book_top: pl.DataFrame, stats: dict, gaps: pl.DataFrame | None, t0: int, t1: int) -> pl.DataFrame:
    """Flags of a replayed book: crossed/locked, gaps, unknown and one-sided grid times."""
    rows = []
    n = book_top.height
    valid_n = int(book_top["valid"].sum() or 0) if n else 0
    for kind, col, key in (("crossed", "crossed", "crossed_times"), ("locked", "locked", "locked_times")):
        cnt, first, last = _span(book_top, pl.col(col))
        ev = int(stats.get(key) or 0)
        ev_first = stats.get(f"first_{key.split('_')[0]}_ts")
        if cnt or ev:
            rows.append(_row(kind, cnt, first if first is not None else ev_first, last,
                             f"{cnt:,} of {valid_n:,} known grid times {kind} (kept and flagged, not hidden); "
                             f"{ev:,} update timestamps left the book {kind}"
                             + (f", first at {iso_utc(ev_first)}" if ev_first is not None else "")))
    if gaps is not None and gaps.height:
        g = gaps.filter((pl.col("ts_from") <= t1) & (pl.col("ts_to").is_null() | (pl.col("ts_to") >= t0)))
        if g.height:
            reasons = g.group_by("reason").len().sort("len", descending=True)
            why = ", ".join(f"{r or 'unknown'} x{c}" for r, c in reasons.iter_rows())
            dur = g.select((pl.col("ts_to") - pl.col("ts_from")).sum()).item() or 0
            rows.append(_row("gap", g.height, g["ts_from"].min(), g["ts_from"].max(),
                             f"{g.height} recorded gap(s) ({why}), {dur / 1e9:,.1f} s in total: the book is "
                             "unknown from each gap until the next snapshot"))
    cnt, first, last = _span(book_top, ~pl.col("valid"))
    if cnt:
        unk = int(stats.get("unknown_updates") or 0)
        rows.append(_row("unknown", cnt, first, last,
                         f"{cnt:,} of {n:,} grid times have an unknown book (before the first snapshot, "
                         f"after a gap until the next snapshot, or after the recorded data): values are null"
                         + (f"; {unk:,} updates arrived while the book was unknown" if unk else "")))
    cnt, first, last = _span(book_top, pl.col("valid") & (pl.col("best_bid").is_null() | pl.col("best_ask").is_null()))
    if cnt:
        rows.append(_row("one_sided", cnt, first, last,
                         f"{cnt:,} grid times with one side of the book empty: no mid, bands null"))
    return _frame(rows)


def frozen_marks(df: pl.DataFrame) -> pl.DataFrame:
    """Band samples (ts, side, band_pct, qty, ...) sorted by (side, band_pct, ts), with
    ``frozen``: the band repeats its previous quantity while another band of its side moved,
    and ``run``: the id of each run of equal ``frozen`` within a band. The one definition of a
    frozen band, shared by :func:`band_flags` (spans) and ``band_events.sample_flags`` (samples)."""
    ch = df.sort(["side", "band_pct", "ts"]).with_columns(
        (pl.col("qty") != pl.col("qty").shift(1).over(["side", "band_pct"])).alias("changed"))
    moved = ch.group_by(["side", "ts"]).agg(pl.col("changed").fill_null(False).cast(pl.Int64).sum().alias("n_changed"))
    ch = ch.join(moved, on=["side", "ts"], how="left").with_columns(
        (pl.col("changed").is_not_null() & ~pl.col("changed").fill_null(True)
         & ((pl.col("n_changed") - pl.col("changed").fill_null(False).cast(pl.Int64)) > 0)).alias("frozen"))
    return ch.sort(["side", "band_pct", "ts"]).with_columns(
        (pl.col("frozen") != pl.col("frozen").shift(1).over(["side", "band_pct"])).fill_null(True)
        .cum_sum().over(["side", "band_pct"]).alias("run"))


def band_flags(bands: pl.DataFrame) -> pl.DataFrame:
    """Flags of pre-aggregated cumulative bands (columns ts, side, band_pct, qty, notional)."""
    rows: list[dict] = []
    if bands.height == 0:
        return _frame(rows)
    df = bands.select("ts", "side", "band_pct", "qty", "notional").sort(["side", "ts", "band_pct"])
    # 1) cumulative bands must not shrink as the band widens
    mono = df.with_columns(
        (pl.col("qty") < pl.col("qty").shift(1).over(["side", "ts"])).alias("q_bad"),
        (pl.col("notional") < pl.col("notional").shift(1).over(["side", "ts"])).alias("n_bad"),
    ).filter(pl.col("q_bad").fill_null(False) | pl.col("n_bad").fill_null(False))
    for side in ("bid", "ask"):
        s = mono.filter(pl.col("side") == side)
        if s.height:
            samples = s["ts"].n_unique()
            bands_hit = ",".join(_label(b) for b in sorted(s["band_pct"].unique().to_list()))
            rows.append(_row("non_monotonic", samples, s["ts"].min(), s["ts"].max(),
                             f"{samples:,} {side} samples where a wider band holds less than a narrower one "
                             f"(bands {bands_hit}%)", side=side))
    # 2) a band frozen while the others of its side move
    ch = frozen_marks(df)
    runs = (ch.filter(pl.col("frozen")).group_by(["side", "band_pct", "run"])
            .agg(pl.len().alias("n"), pl.col("ts").min().alias("a"), pl.col("ts").max().alias("b"))
            .filter(pl.col("n") >= FROZEN_MIN_SAMPLES))
    for (side, band), r in runs.group_by(["side", "band_pct"], maintain_order=True):
        rows.append(_row("frozen_band", r.height, r["a"].min(), r["b"].max(),
                         f"{side} {_label(band)}% band repeated the same quantity for {int(r['n'].max())} "
                         f"consecutive samples (longest of {r.height} runs of >= {FROZEN_MIN_SAMPLES}) while "
                         "other bands of that side moved", side=side, band=band))
    # 3) average price on the wrong side of the mid proxy
    avg = df.filter(pl.col("qty") > 0).with_columns((pl.col("notional") / pl.col("qty")).alias("avg"))
    common = sorted(set(avg.filter(pl.col("side") == "bid")["band_pct"].unique().to_list())
                    & set(avg.filter(pl.col("side") == "ask")["band_pct"].unique().to_list()))
    if common:
        ref = 1.0 if any(abs(b - 1.0) < 1e-9 for b in common) else common[0]
        proxy = (avg.filter((pl.col("band_pct") - ref).abs() < 1e-9)
                 .group_by("ts").agg(
                     pl.col("avg").filter(pl.col("side") == "bid").first().alias("bid1"),
                     pl.col("avg").filter(pl.col("side") == "ask").first().alias("ask1"))
                 .with_columns(((pl.col("bid1") + pl.col("ask1")) / 2).alias("mid_proxy"))
                 .select("ts", "mid_proxy"))
        wrong = avg.join(proxy, on="ts", how="inner").filter(
            ((pl.col("side") == "bid") & (pl.col("avg") > pl.col("mid_proxy")))
            | ((pl.col("side") == "ask") & (pl.col("avg") < pl.col("mid_proxy"))))
        for side in ("bid", "ask"):
            s = wrong.filter(pl.col("side") == side)
            if s.height:
                bands_hit = ",".join(_label(b) for b in sorted(s["band_pct"].unique().to_list()))
                where = "above" if side == "bid" else "below"
                rows.append(_row("avg_price_wrong_side", s.height, s["ts"].min(), s["ts"].max(),
                                 f"{s.height:,} {side} band samples (bands {bands_hit}%) with an average price "
                                 f"{where} the mid proxy (midpoint of the {_label(ref)}% bid/ask average prices)",
                                 side=side))
    return _frame(rows)


def _label(x: float) -> str:
    return f"{x:g}"
