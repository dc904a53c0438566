"""Score attribution (``level_changes``) against exact labels (``labels_level_changes``).

The labels come from a venue that publishes every event's cause (LOBSTER, see
:mod:`forensics.ingest.lobster`): per book change ``traded`` / ``cancelled`` / ``added`` /
``out_of_view``. :func:`score` joins them to level_changes on ``(seq, side, price)`` and
reports, per side and overall:

* traded volume: attributed ``traded`` (all rows) vs the true traded volume (decreases labelled
  ``traded``); cancelled volume: attributed cancels (``cancelled`` of rows whose cause is not
  ``truncation``/``gap``) vs the true cancelled volume;
* share of decrease volume classified correctly: on *visible* decreases (truth traded or
  cancelled: the maker/taker events) and on all decreases (out_of_view included, correct =
  ``truncation``); a decrease's volume is split as attributed (traded / cancelled /
  truncation / gap), the part matching its truth counts as correct;
* out-of-view volume called ``truncation``; the share of decrease volume that is truncation
  or gap (unknown);
* per-row confusion (truth x cause: rows and volume).

:func:`evaluate_labels` runs attribution on one instrument of a store (not written) at the
exact timestamps and again with receive-time jitter added to the trades (uniform in +-J, fixed
seed), to show how matching degrades when the book and trade clocks are not shared.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from forensics.errors import ForensicsError
from forensics.store import Store

#: jitter amplitudes (ms) evaluated by default, and the seed (fixed: figures reproducible)
DEFAULT_JITTER_MS = (10, 50)
JITTER_SEED = 7
TRUTHS = ("traded", "cancelled", "added", "out_of_view")


@dataclass
class LabelScore:
    """Figures of one run (volumes in lots)."""

    name: str
    rows: int = 0
    labelled: int = 0
    per_side: dict = field(default_factory=dict)
    overall: dict = field(default_factory=dict)
    confusion: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


def _predicted(lc: pl.DataFrame) -> pl.DataFrame:
    dec = (-pl.col("delta")).clip(0)
    trunc = pl.col("cause") == "truncation"
    gap = pl.col("cause") == "gap"
    return lc.with_columns(
        dec.alias("dec"),
        pl.when(trunc).then(pl.col("cancelled")).otherwise(0).alias("p_trunc"),
        pl.when(gap).then(pl.col("cancelled")).otherwise(0).alias("p_gap"),
        pl.when(trunc | gap).then(0).otherwise(pl.col("cancelled")).alias("p_cancel"),
    )


def score(lc: pl.DataFrame, labels: pl.DataFrame, name: str = "exact") -> LabelScore:
    """Score one level_changes frame (stored units) against its labels."""
    lab = labels.select("seq", "side", "price", pl.col("delta").alias("l_delta"), "truth")
    j = _predicted(lc.filter(~pl.col("is_snapshot"))).join(lab, on=["seq", "side", "price"], how="left")
    out = LabelScore(name, rows=lc.height, labelled=int(j["truth"].is_not_null().sum()))
    j = j.filter(pl.col("truth").is_not_null())
    mismatch = int((j["l_delta"] != j["delta"]).sum())
    if mismatch:
        raise ForensicsError(f"{mismatch} labelled rows disagree with level_changes on delta "
                             "(labels and book_updates of different ingests?)")
    vis = pl.col("truth").is_in(["traded", "cancelled"])
    correct = (pl.when(pl.col("truth") == "traded").then(pl.col("traded"))
               .when(pl.col("truth") == "cancelled").then(pl.col("p_cancel"))
               .when(pl.col("truth") == "out_of_view").then(pl.col("p_trunc")).otherwise(0))
    oov_inc = (pl.col("truth") == "out_of_view") & (pl.col("delta") > 0)

    def figures(df: pl.DataFrame) -> dict:
        r = df.select(
            pl.col("dec").filter(pl.col("truth") == "traded").sum().alias("true_traded"),
            pl.col("traded").sum().alias("attributed_traded"),
            pl.col("dec").filter(pl.col("truth") == "cancelled").sum().alias("true_cancelled"),
            pl.col("p_cancel").sum().alias("attributed_cancelled"),
            pl.col("dec").filter(vis).sum().alias("visible_decrease"),
            correct.filter(vis).sum().alias("visible_correct"),
            pl.col("dec").sum().alias("decrease"),
            correct.sum().alias("decrease_correct"),
            pl.col("dec").filter(pl.col("truth") == "out_of_view").sum().alias("oov_decrease"),
            pl.col("p_trunc").filter(pl.col("truth") == "out_of_view").sum().alias("oov_decrease_truncation"),
            pl.col("delta").filter(oov_inc).sum().alias("oov_increase"),
            pl.col("delta").filter(oov_inc & (pl.col("cause") == "truncation")).sum().alias("oov_increase_truncation"),
            pl.col("p_trunc").sum().alias("truncation_decrease"),
            pl.col("p_gap").sum().alias("gap_decrease"),
            pl.col("implied").sum().alias("implied"),
        ).row(0, named=True)
        r = {k: int(v or 0) for k, v in r.items()}

        def ratio(a, b):
            return None if not r[b] else r[a] / r[b]
        r["traded_error"] = None if not r["true_traded"] else r["attributed_traded"] / r["true_traded"] - 1
        r["cancelled_error"] = None if not r["true_cancelled"] else r["attributed_cancelled"] / r["true_cancelled"] - 1
        r["visible_correct_share"] = ratio("visible_correct", "visible_decrease")
        r["decrease_correct_share"] = ratio("decrease_correct", "decrease")
        r["oov_truncation_share"] = (None if not (r["oov_decrease"] + r["oov_increase"]) else
                                     (r["oov_decrease_truncation"] + r["oov_increase_truncation"])
                                     / (r["oov_decrease"] + r["oov_increase"]))
        r["truncation_or_gap_share"] = (None if not r["decrease"] else
                                        (r["truncation_decrease"] + r["gap_decrease"]) / r["decrease"])
        return r

    out.per_side = {s: figures(j.filter(pl.col("side") == s)) for s in ("bid", "ask")}
    out.overall = figures(j)
    conf = (j.group_by("truth", "cause").agg(pl.len().alias("rows"), pl.col("delta").abs().sum().alias("volume"))
            .sort("truth", "cause"))
    out.confusion = conf.to_dicts()
    return out


def jitter_trades(trades: pl.DataFrame, jitter_ns: int, seed: int = JITTER_SEED) -> pl.DataFrame:
    """Trades with ``ts`` moved by a uniform integer in [-jitter_ns, +jitter_ns] (fixed seed),
    re-sorted: a receive clock not shared with the book's."""
    if jitter_ns <= 0 or trades.height == 0:
        return trades
    rng = np.random.default_rng(seed)
    j = rng.integers(-jitter_ns, jitter_ns + 1, trades.height)
    return (trades.with_columns(pl.col("ts") + pl.Series(j, dtype=pl.Int64))
            .sort(["ts", "seq"], maintain_order=True))


def evaluate_labels(store: Store | str, exchange: str, symbol: str, jitter_ms=DEFAULT_JITTER_MS,
                    tolerance_ns=None, depth_limit="auto", seed: int = JITTER_SEED) -> list[LabelScore]:
    """Attribution of one instrument scored against its labels: exact timestamps first, then
    each receive-time jitter (ms) on the trades. Nothing is written."""
    from forensics.attribution import attribute_frames, load_inputs
    store = store if isinstance(store, Store) else Store(store)
    if not store.files("labels_level_changes", exchange, symbol):
        raise ForensicsError(f"no labels_level_changes for {exchange}/{symbol} in {store.root}: labels come "
                             "with venues that publish causes (ingest a LOBSTER message + orderbook pair)")
    labels = store.scan("labels_level_changes", exchange, symbol).collect()
    updates, trades, gaps = load_inputs(store, exchange, symbol, None, None)
    hidden = trades.filter(pl.col("hidden").fill_null(False)) if "hidden" in trades.columns else trades.clear()
    out = []
    for jm in (0, *jitter_ms):
        t = jitter_trades(trades, int(jm * 1_000_000), seed)
        lc, info = attribute_frames(updates, t, gaps, tolerance_ns, depth_limit)
        sc = score(lc, labels, "exact" if jm == 0 else f"jitter +-{jm:g} ms")
        sc.info = {"tol_back_ms": info.tol_back_ns / 1e6, "tol_fwd_ms": info.tol_fwd_ns / 1e6,
                   "depth_limit": info.depth_limit, "tolerance": info.tolerance_source,
                   "matching": info.extra.get("matching"),
                   "hidden_trades": hidden.height, "hidden_qty": int(hidden["size"].sum() or 0),
                   # prints the matcher saw: visible ones with an aggressor (hidden are excluded)
                   "prints_matched_against": info.trades}
        out.append(sc)
    return out


def _pct(x, signed=False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:+.2f}%" if signed else f"{100 * x:.2f}%"


def format_scores(scores: list[LabelScore], title: str = "") -> str:
    """Plain-text table of the figures (as ``forensics eval --labels`` prints them)."""
    lines = [title] if title else []
    hdr = (f"{'run':<16}{'side':<6}{'traded err':>11}{'cancel err':>11}{'visible ok':>11}{'all dec ok':>11}"
           f"{'oov->trunc':>11}{'trunc+gap':>10}")
    lines.append(hdr)
    for sc in scores:
        for side, r in (("bid", sc.per_side["bid"]), ("ask", sc.per_side["ask"]), ("all", sc.overall)):
            lines.append(f"{sc.name:<16}{side:<6}{_pct(r['traded_error'], True):>11}"
                         f"{_pct(r['cancelled_error'], True):>11}{_pct(r['visible_correct_share']):>11}"
                         f"{_pct(r['decrease_correct_share']):>11}{_pct(r['oov_truncation_share']):>11}"
                         f"{_pct(r['truncation_or_gap_share']):>10}")
        i = sc.info
        lines.append(f"{'':<16}tolerance -{i.get('tol_fwd_ms', 0):g}/+{i.get('tol_back_ms', 0):g} ms "
                     f"({i.get('tolerance')}), depth limit {i.get('depth_limit')}, matching {i.get('matching')}, "
                     f"{i.get('prints_matched_against')} visible prints matched against; hidden executions "
                     f"{i.get('hidden_trades')} ({i.get('hidden_qty')} lots) excluded")
    if scores:
        lines.append("confusion (exact): truth -> cause: rows / volume")
        for r in scores[0].confusion:
            lines.append(f"  {r['truth']:<12}-> {r['cause']:<11}{r['rows']:>9} {r['volume']:>12}")
    lines.append("traded/cancel err = attributed / true volume - 1; visible ok = share of the volume of decreases "
                 "labelled traded or cancelled classified as labelled; all dec ok = the same over every decrease "
                 "(out_of_view correct as truncation); oov->trunc = out-of-view volume called truncation; "
                 "trunc+gap = share of decrease volume attributed to truncation or gap (unknown)")
    return "\n".join(lines)


def to_json(scores: list[LabelScore]) -> str:
    return json.dumps([{"name": s.name, "rows": s.rows, "labelled": s.labelled, "per_side": s.per_side,
                        "overall": s.overall, "confusion": s.confusion, "info": s.info} for s in scores], indent=2)
