"""Band-only data (``depth_bands``, e.g. Binance bookDepth every ~30 s): data-quality flags per
sample and abnormal sample-to-sample drops judged against each band's own variability.

Used by :mod:`forensics.detect` when an instrument has band samples but no level data.

**Flags per sample** (:func:`sample_flags`), the per-sample form of
:func:`forensics.depth_quality.band_flags` (same definitions, one row per flagged
(ts, side, band) instead of one summary row per finding):

* ``non_monotonic``: at that sample a wider band of the side holds less quantity (or notional)
  than a narrower one; every band of that side is flagged at that sample (which one is wrong
  cannot be told);
* ``frozen_band``: the band repeats exactly the same quantity for >= ``FROZEN_MIN_SAMPLES``
  consecutive samples while other bands of the side move (every sample of the run);
* ``avg_price_wrong_side``: the band's average price (notional / qty) is above the mid proxy
  for bids (below for asks); the proxy is the midpoint of the 1% (else narrowest common) bid
  and ask average prices (beyond a relative ``AVG_PRICE_TOL`` = 1e-5, so decimal rounding of a
  band sitting at the mid is not a flag).

A change between two samples is *under a flag* when either sample is flagged for that band.

**Abnormal drops** (:func:`abnormal_drops`): per (side, band), the log change between
consecutive samples ``r = ln((q_i + 1) / (q_{i-1} + 1))`` against the band's robust sigma
``1.4826 x median |r|`` over the previous ``bands_sigma_samples`` changes (at least
``bands_sigma_min_samples``, floored at ``bands_sigma_floor``); a drop is abnormal when
``r / sigma <= -bands_z`` and the band lost >= ``bands_min_drop`` of its quantity. A
*two-sided* abnormal drop is a sample step where both sides have an abnormal drop in at least
one unflagged band; its severity is the smaller of the two sides' strongest |z|.
"""
from __future__ import annotations

import polars as pl

from forensics.depth_quality import FROZEN_MIN_SAMPLES, frozen_marks

FLAG_ORDER = ("non_monotonic", "frozen_band", "avg_price_wrong_side")
#: relative tolerance of the wrong-side test: the rounding of published qty / notional decimals
#: moves an average price that sits at the mid by ~1e-7; a real wrong side is far larger
AVG_PRICE_TOL = 1e-5


def sample_flags(raw: pl.DataFrame) -> pl.DataFrame:
    """(ts, side, band_pct, flag) for every flagged band sample of ``raw`` (columns ts, side,
    band_pct, qty, notional; cumulative per side)."""
    schema = {"ts": pl.Int64, "side": pl.Utf8, "band_pct": pl.Float64, "flag": pl.Utf8}
    if raw.height == 0:
        return pl.DataFrame(schema=schema)
    df = raw.select("ts", "side", pl.col("band_pct").cast(pl.Float64), pl.col("qty").cast(pl.Float64),
                    pl.col("notional").cast(pl.Float64)).sort(["side", "ts", "band_pct"])
    # 1) non-monotonic: the whole side at that sample
    bad_ts = (df.with_columns(((pl.col("qty") < pl.col("qty").shift(1).over(["side", "ts"]))
                               | (pl.col("notional") < pl.col("notional").shift(1).over(["side", "ts"])))
                              .fill_null(False).alias("bad"))
              .group_by(["side", "ts"]).agg(pl.col("bad").any()).filter(pl.col("bad")).select("side", "ts"))
    mono = df.join(bad_ts, on=["side", "ts"], how="semi").select("ts", "side", "band_pct",
                                                                  pl.lit("non_monotonic").alias("flag"))
    # 2) frozen while the other bands of the side move (runs of >= FROZEN_MIN_SAMPLES)
    ch = frozen_marks(df)
    ch = ch.with_columns(pl.len().over(["side", "band_pct", "run"]).alias("run_n"))
    frozen = ch.filter(pl.col("frozen") & (pl.col("run_n") >= FROZEN_MIN_SAMPLES)).select(
        "ts", "side", "band_pct", pl.lit("frozen_band").alias("flag"))
    # 3) average price on the wrong side of the mid proxy
    avg = df.filter(pl.col("qty") > 0).with_columns((pl.col("notional") / pl.col("qty")).alias("avg"))
    common = sorted(set(avg.filter(pl.col("side") == "bid")["band_pct"].unique().to_list())
                    & set(avg.filter(pl.col("side") == "ask")["band_pct"].unique().to_list()))
    wrong = pl.DataFrame(schema=schema)
    if common:
        ref = 1.0 if any(abs(b - 1.0) < 1e-9 for b in common) else common[0]
        proxy = (avg.filter((pl.col("band_pct") - ref).abs() < 1e-9)
                 .group_by("ts").agg(pl.col("avg").filter(pl.col("side") == "bid").first().alias("b1"),
                                     pl.col("avg").filter(pl.col("side") == "ask").first().alias("a1"))
                 .select("ts", ((pl.col("b1") + pl.col("a1")) / 2).alias("proxy")))
        wrong = (avg.join(proxy, on="ts", how="inner")
                 .filter(((pl.col("side") == "bid") & (pl.col("avg") > pl.col("proxy") * (1 + AVG_PRICE_TOL)))
                         | ((pl.col("side") == "ask") & (pl.col("avg") < pl.col("proxy") * (1 - AVG_PRICE_TOL))))
                 .select("ts", "side", "band_pct", pl.lit("avg_price_wrong_side").alias("flag")))
    out = pl.concat([mono, frozen, wrong], how="vertical_relaxed")
    return (out.with_columns(pl.col("flag").replace_strict({f: i for i, f in enumerate(FLAG_ORDER)},
                                                           return_dtype=pl.Int64).alias("_o"))
            .sort(["ts", "side", "band_pct", "_o"]).unique(["ts", "side", "band_pct"], keep="first",
                                                           maintain_order=True).drop("_o"))


def band_changes(depth: pl.DataFrame, flags: pl.DataFrame, sigma_samples: int, sigma_min_samples: int,
                 sigma_floor: float) -> pl.DataFrame:
    """One row per (side, band, sample) with the change from the previous sample: ``ts_prev``,
    ``q_prev``, ``qty``, ``r`` (log change), ``sigma`` (robust, trailing, excluding this change),
    ``z`` = r / sigma, ``drop`` (share lost) and ``flag`` (the flag of either sample, null if
    none)."""
    d = (depth.select("ts", "side", pl.col("band_pct").cast(pl.Float64), pl.col("qty").cast(pl.Float64))
         .filter(pl.col("qty").is_not_nan() & pl.col("qty").is_not_null())
         .sort(["side", "band_pct", "ts"]))
    if flags.height:
        d = d.join(flags, on=["ts", "side", "band_pct"], how="left")
    else:
        d = d.with_columns(pl.lit(None, pl.Utf8).alias("flag"))
    g = ["side", "band_pct"]
    d = d.with_columns(pl.col("ts").shift(1).over(g).alias("ts_prev"), pl.col("qty").shift(1).over(g).alias("q_prev"),
                       pl.col("flag").shift(1).over(g).alias("flag_prev"))
    d = d.with_columns(((pl.col("qty") + 1.0) / (pl.col("q_prev") + 1.0)).log().alias("r"))
    d = d.with_columns((1.4826 * pl.col("r").abs().shift(1).rolling_median(window_size=sigma_samples,
                                                                            min_samples=sigma_min_samples)
                        .over(g)).alias("sigma"))
    return (d.filter(pl.col("q_prev").is_not_null())
            .with_columns(pl.when(pl.col("sigma").is_not_null())
                          .then(pl.max_horizontal(pl.col("sigma"), pl.lit(sigma_floor))).alias("sigma"),
                          pl.coalesce("flag", "flag_prev").alias("flag"))
            .with_columns((pl.col("r") / pl.col("sigma")).alias("z"),
                          pl.when(pl.col("q_prev") > 0).then(1.0 - pl.col("qty") / pl.col("q_prev"))
                          .otherwise(0.0).alias("drop"))
            .drop("flag_prev"))


def abnormal_drops(ch: pl.DataFrame, z_min: float, min_drop: float) -> pl.DataFrame:
    """The abnormal drops among :func:`band_changes` rows (``z <= -z_min`` and ``drop >=
    min_drop``; rows with a null sigma, i.e. too little history, are never abnormal)."""
    return ch.filter(pl.col("z").is_not_null() & (pl.col("z") <= -z_min) & (pl.col("drop") >= min_drop))


def two_sided(drops: pl.DataFrame) -> pl.DataFrame:
    """Sample steps where both sides have an abnormal drop in an unflagged band, ranked by
    severity (the smaller of the two sides' strongest |z|): ts, ts_prev, severity, and per side
    the band with the strongest drop (band_bid, z_bid, q_prev_bid, qty_bid, ts_prev_bid, bands_bid and
    the same with _ask)."""
    ok = drops.filter(pl.col("flag").is_null())
    best = (ok.sort("z").group_by(["ts", "side"], maintain_order=True)
            .agg(pl.col("band_pct").first(), pl.col("z").first(), pl.col("ts_prev").first(),
                 pl.col("q_prev").first(), pl.col("qty").first(), pl.len().alias("bands")))
    bid = best.filter(pl.col("side") == "bid").drop("side")
    ask = best.filter(pl.col("side") == "ask").drop("side")
    both = bid.join(ask, on="ts", suffix="_ask").rename(
        {"band_pct": "band_bid", "z": "z_bid", "q_prev": "q_prev_bid", "qty": "qty_bid", "bands": "bands_bid",
         "ts_prev": "ts_prev_bid", "band_pct_ask": "band_ask"})
    both = both.with_columns(pl.min_horizontal(pl.col("z_bid").abs(), pl.col("z_ask").abs()).alias("severity"),
                             pl.min_horizontal("ts_prev_bid", "ts_prev_ask").alias("ts_prev"))
    return both.sort("severity", descending=True).with_row_index("rank", offset=1)
