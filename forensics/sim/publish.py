"""Publication: the engine's output as a Binance futures capture (depth + aggTrade + the late
REST snapshot), an aggTrades CSV, the ground truth (``truth_level_decreases.parquet``,
``labels.json``) and the README; :func:`simulate` runs engine + publication."""
from __future__ import annotations

import dataclasses
import gzip
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from forensics.sim.book_depth import BOOK_DEPTH_DOC, book_depth_frame
from forensics.sim.config import (
    ASK, BATCH_MS, BID, BOOK_DEPTH_FIELDS, INCIDENT_OPTIONS, K_ADD, K_CANCEL, K_TRADE, SNAPSHOT_LIMIT,
    UID0, TID0, AID0, SimConfig, _dec_expr, _fmt)
from forensics.sim.engine import EngineOutput, run_engine
from forensics.sim.scenario import _rngs, sample_config
from forensics.timeutil import NS_PER_MS

# --------------------------------------------------------------------------- publication
@dataclass
class _Runs:
    """Per (side, price, batch) aggregates of the op log (batch -1 = warm-up)."""

    side: np.ndarray
    price: np.ndarray
    batch: np.ndarray
    prev: np.ndarray
    new: np.ndarray
    added: np.ndarray
    traded: np.ndarray
    cancelled: np.ndarray


def _op_batches(eng: EngineOutput) -> np.ndarray:
    """Capture batch index of every op (-1 for warm-up ops); nondecreasing."""
    t = eng.ops[:, 0]
    return np.where(t >= eng.warm_ms, (t - eng.warm_ms) // BATCH_MS, -1)


def _sorted_levels(eng: EngineOutput, batch: np.ndarray) -> dict:
    """Ops sorted by (side, price, time) with the level quantity after each op."""
    ops = eng.ops
    order = np.lexsort((np.arange(len(ops)), ops[:, 2], ops[:, 1]))
    side, price, delta, kind = (ops[order, i] for i in (1, 2, 3, 4))
    uid = UID0 + order
    new_grp = np.r_[True, (side[1:] != side[:-1]) | (price[1:] != price[:-1])]
    gstart = np.flatnonzero(new_grp)
    cs = np.cumsum(delta)
    base = np.r_[0, cs][gstart]
    qty_after = cs - np.repeat(base, np.diff(np.r_[gstart, len(cs)]))
    return dict(side=side, price=price, delta=delta, kind=kind, uid=uid, batch=batch[order],
                gstart=gstart, qty_after=qty_after)


def _level_runs(lv: dict) -> _Runs:
    """Aggregate sorted ops into per (side, price, batch) runs: prev/new qty and gross flows."""
    side, price, batch, delta, kind = lv["side"], lv["price"], lv["batch"], lv["delta"], lv["kind"]
    n = len(side)
    brk = np.zeros(n, bool)
    brk[lv["gstart"]] = True
    brk[1:] |= batch[1:] != batch[:-1]
    rs = np.flatnonzero(brk)
    re_ = np.r_[rs[1:], n] - 1
    flow = lambda k: np.add.reduceat(np.where(kind == k, delta, 0), rs)
    return _Runs(side[rs], price[rs], batch[rs], lv["qty_after"][rs] - delta[rs], lv["qty_after"][re_],
                 flow(K_ADD), -flow(K_TRADE), -flow(K_CANCEL))


def _pick_snapshot(runs: _Runs, batch_ops: np.ndarray, stale: int) -> tuple[int, int]:
    """(straddling batch, snapshot op index): the ``stale``-th changed batch with >= 3 ops,
    the snapshot taken a third of the way through its ops (so U <= N < u)."""
    changed = np.unique(runs.batch[(runs.prev != runs.new) & (runs.batch >= 0)])
    lo = np.searchsorted(batch_ops, changed, "left")
    hi = np.searchsorted(batch_ops, changed, "right")
    ok = np.flatnonzero((hi - lo >= 3) & (np.arange(changed.size) >= stale))
    if ok.size == 0:
        raise ValueError("scenario too short for the snapshot sync")
    k = int(ok[0])
    return int(changed[k]), int(lo[k] + (hi[k] - lo[k]) // 3)


def _snapshot_book(lv: dict, n_op: int) -> tuple[np.ndarray, ...]:
    """Book after op index ``n_op``: (side, price, lots) of non-empty levels."""
    mask = (lv["uid"] - UID0) <= n_op
    cnt = np.add.reduceat(mask.astype(np.int64), lv["gstart"])
    has = cnt > 0
    last = lv["gstart"][has] + cnt[has] - 1
    qty = lv["qty_after"][last]
    keep = qty > 0
    return lv["side"][last][keep], lv["price"][last][keep], qty[keep]


def _cat(*parts: str | pl.Expr) -> pl.Expr:
    """Concatenate literal text and expressions (cast to text) into one string column."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p.cast(pl.Utf8) for p in parts])


def _latency_ns(rng: np.random.Generator, sent_ns: np.ndarray) -> np.ndarray:
    """Local receive ns: sent + 1.5-4 ms + Exp(1 ms), 1% spikes of 15-60 ms; monotone (TCP)."""
    n = sent_ns.size
    lat = rng.uniform(1.5e6, 4e6, n) + rng.exponential(1e6, n)
    lat += np.where(rng.random(n) < 0.01, rng.uniform(15e6, 60e6, n), 0.0)
    return np.maximum.accumulate(sent_ns + lat.astype(np.int64))


def _depth_events(eng: EngineOutput, runs: _Runs, batch_ops: np.ndarray, k: int,
                  rng) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, rows): one event per published batch (E, T, U, u, pu in Binance units) and the
    published level rows (event index, side, price ticks, new lots)."""
    pub = (runs.batch >= 0) & ((runs.prev != runs.new) | (runs.batch == k))
    eb = np.unique(runs.batch[pub])
    last_op = np.searchsorted(batch_ops, eb, "right") - 1
    u = UID0 + last_op
    pu = np.r_[UID0 + np.searchsorted(batch_ops, eb[0], "left") - 1, u[:-1]]
    T = eng.abs_ms(eng.ops[last_op, 0])
    E = eng.start_ms + (eb + 1) * BATCH_MS + rng.integers(0, 3, eb.size)
    events = pl.DataFrame({"batch": eb, "E": E, "T": T, "U": pu + 1, "u": u, "pu": pu})
    rows = pl.DataFrame({"ev": np.searchsorted(eb, runs.batch[pub]), "side": runs.side[pub],
                         "price": runs.price[pub], "qty": runs.new[pub]})
    return events, rows


def _levels_json(rows: pl.DataFrame, cfg: SimConfig, key: str) -> pl.DataFrame:
    """Per ``key`` group and side: the JSON array body ``["p","q"],...`` (bids desc, asks asc)."""
    tok = rows.with_columns(
        sort=pl.when(pl.col("side") == BID).then(-pl.col("price")).otherwise(pl.col("price")),
        tok=pl.concat_str([pl.lit('["'), _dec_expr("price", cfg.tick_units(), cfg.price_decimals),
                           pl.lit('","'), _dec_expr("qty", cfg.lot_units(), cfg.qty_decimals), pl.lit('"]')]),
    ).sort([key, "side", "sort"])
    agg = tok.group_by([key, "side"], maintain_order=True).agg(pl.col("tok").str.join(","))
    wide = agg.pivot(on="side", index=key, values="tok")
    for s in (BID, ASK):
        if str(s) not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Utf8).alias(str(s)))
    return wide.select(pl.col(key), pl.col(str(BID)).fill_null("").alias("b"),
                       pl.col(str(ASK)).fill_null("").alias("a"))


def _depth_lines(events: pl.DataFrame, rows: pl.DataFrame, cfg: SimConfig, rng) -> pl.DataFrame:
    """Capture lines (local_ns, order, line text) for the depth events."""
    body = events.with_row_index("ev").with_columns(pl.col("ev").cast(pl.Int64)).join(
        _levels_json(rows.with_columns(pl.col("ev").cast(pl.Int64)), cfg, "ev"), on="ev", how="left")
    stream = f"{cfg.symbol.lower()}@depth@100ms"
    local = _latency_ns(rng, body["E"].to_numpy() * NS_PER_MS)
    return body.with_columns(local=pl.Series(local), kind=pl.lit(1, pl.Int64)).select(
        "local", "kind", pl.col("u").alias("seq"),
        _cat('{"stream":"' + stream + '","data":{"e":"depthUpdate","E":', pl.col("E"), ',"T":', pl.col("T"),
             ',"s":"' + cfg.symbol + '","U":', pl.col("U"), ',"u":', pl.col("u"), ',"pu":', pl.col("pu"),
             ',"b":[', pl.col("b").fill_null(""), '],"a":[', pl.col("a").fill_null(""), ']}}').alias("json"))


def _agg_trades(eng: EngineOutput) -> pl.DataFrame:
    """Aggregate maker fills into Binance aggTrades (one per taker order and price), capture only."""
    f = eng.fills
    if len(f) == 0:
        return pl.DataFrame(schema={"a": pl.Int64, "price": pl.Int64, "qty": pl.Int64, "f": pl.Int64,
                                    "l": pl.Int64, "T": pl.Int64, "m": pl.Boolean})
    new = np.r_[True, (f[1:, 3] != f[:-1, 3]) | (f[1:, 1] != f[:-1, 1])]
    gs = np.flatnonzero(new)
    ge = np.r_[gs[1:], len(f)] - 1
    df = pl.DataFrame({"a": AID0 + np.arange(gs.size), "price": f[gs, 1], "qty": np.add.reduceat(f[:, 2], gs),
                       "f": TID0 + gs, "l": TID0 + ge, "T": eng.abs_ms(f[gs, 0]), "m": f[gs, 4] == 0})
    return df.filter(pl.col("T") >= eng.start_ms)


def _trade_lines(trades: pl.DataFrame, cfg: SimConfig, rng) -> pl.DataFrame:
    """Capture lines for aggTrade events (E = T + 0..1 ms)."""
    E = trades["T"].to_numpy() + rng.integers(0, 2, trades.height)
    local = _latency_ns(rng, E * NS_PER_MS)
    stream = f"{cfg.symbol.lower()}@aggTrade"
    return trades.with_columns(E=pl.Series(E), local=pl.Series(local), kind=pl.lit(2, pl.Int64)).select(
        "local", "kind", pl.col("a").alias("seq"),
        _cat('{"stream":"' + stream + '","data":{"e":"aggTrade","E":', pl.col("E"), ',"a":', pl.col("a"),
             ',"s":"' + cfg.symbol + '","p":"', _dec_expr("price", cfg.tick_units(), cfg.price_decimals),
             '","q":"', _dec_expr("qty", cfg.lot_units(), cfg.qty_decimals), '","f":', pl.col("f"),
             ',"l":', pl.col("l"), ',"T":', pl.col("T"), ',"m":',
             pl.when(pl.col("m")).then(pl.lit("true")).otherwise(pl.lit("false")), '}}').alias("json"))


def _snapshot_line(eng: EngineOutput, lv: dict, n_op: int, depth_lines: pl.DataFrame, k_ev: int,
                   rng) -> tuple[pl.DataFrame, dict]:
    """The REST snapshot line at update id UID0 + n_op, received between depth events k-1 and k."""
    cfg = eng.config
    side, price, qty = _snapshot_book(lv, n_op)
    for s in (BID, ASK):
        if (side == s).sum() > SNAPSHOT_LIMIT:
            raise RuntimeError("book deeper than the 1000-level snapshot limit")
    body = _levels_json(pl.DataFrame({"g": np.zeros(side.size, np.int64), "side": side, "price": price, "qty": qty}),
                        cfg, "g")
    T = int(eng.abs_ms(eng.ops[n_op, 0]))
    E = T + 1
    local = depth_lines["local"].to_numpy()
    lo, hi = int(local[k_ev - 1]) + 1000, int(local[k_ev]) - int(rng.uniform(5e4, 1e6))
    recv = min(max(E * NS_PER_MS + int(rng.uniform(8e6, 30e6)), lo), max(hi, lo))
    text = ('{"lastUpdateId":%d,"E":%d,"T":%d,"bids":[%s],"asks":[%s]}'
            % (UID0 + n_op, E, T, body["b"][0], body["a"][0]))
    line = pl.DataFrame({"local": [recv], "kind": [0], "seq": [0], "json": [text]})
    return line, {"last_update_id": UID0 + n_op, "ts_ns": E * NS_PER_MS, "stale_events": k_ev,
                  "bids": int((side == BID).sum()), "asks": int((side == ASK).sum())}


def _write_gz(path: Path, text: str) -> None:
    """Deterministic gzip (no name, mtime 0)."""
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=6) as gz:
        gz.write(text.encode())


def _truth(eng: EngineOutput, runs: _Runs, events: pl.DataFrame, k: int, labels: list[dict]) -> pl.DataFrame:
    """The published level decreases after the straddling event with their true split."""
    cfg = eng.config
    dec = (runs.batch > k) & (runs.new < runs.prev)
    eb = events["batch"].to_numpy()
    ev = np.searchsorted(eb, runs.batch[dec])
    D = runs.prev[dec] - runs.new[dec]
    traded = np.minimum(runs.traded[dec], D)
    ts = events["E"].to_numpy()[ev] * NS_PER_MS
    inc_id = np.full(ts.size, -1, np.int64)
    for lab in labels:
        inside = (inc_id < 0) & (ts >= lab["start_ts_ns"]) & (ts <= lab["window_end_ts_ns"])
        inc_id[inside] = lab["id"]
    kinds = {lab["id"]: lab["type"] for lab in labels}
    df = pl.DataFrame({
        "ts": ts, "update_id": events["u"].to_numpy()[ev], "batch": runs.batch[dec].astype(np.int32),
        "side": np.where(runs.side[dec] == BID, "bid", "ask"), "price_ticks": runs.price[dec],
        "prev_lots": runs.prev[dec], "new_lots": runs.new[dec], "decrease_lots": D, "traded_lots": traded,
        "cancelled_lots": D - traded, "gross_added_lots": runs.added[dec], "gross_traded_lots": runs.traded[dec],
        "gross_cancelled_lots": runs.cancelled[dec], "incident_id": inc_id.astype(np.int32),
    }).with_columns(
        price=_dec_expr("price_ticks", cfg.tick_units(), cfg.price_decimals),
        incident_id=pl.when(pl.col("incident_id") >= 0).then(pl.col("incident_id")),
    ).with_columns(incident_type=pl.col("incident_id").replace_strict(kinds, default=None, return_dtype=pl.Utf8))
    return df.select("ts", "update_id", "batch", "side", "price_ticks", "price", "prev_lots", "new_lots",
                     "decrease_lots", "traded_lots", "cancelled_lots", "gross_added_lots", "gross_traded_lots",
                     "gross_cancelled_lots", "incident_id", "incident_type").sort(["ts", "side", "price_ticks"])


def _incident_labels(eng: EngineOutput) -> list[dict]:
    """Incident label dicts with engine ms converted to UTC ns (flicker orders resolved)."""
    ns = lambda t: int((t - eng.warm_ms + eng.start_ms) * NS_PER_MS)
    sch = eng.schedules
    out = []
    for lab in sch.incidents:
        d = {"id": lab["id"], "type": lab["type"], "spec": lab["spec"], "expected_label": lab["expected_label"],
             "sides": lab["sides"], "aggressor": lab["aggressor"], "start_ts_ns": ns(lab["start"]),
             "end_ts_ns": ns(lab["end"]), "window_end_ts_ns": ns(lab["window_end"]),
             "phases": {k: [ns(a), ns(b)] for k, (a, b) in lab["phases"].items()}}
        if "shape" in lab:
            d["shape"] = lab["shape"]
        if "_children" in lab:
            d["total_lots"] = lab["total_lots"]
            d["orders"] = [{"ts_ns": ns(t), "lots": int(q)} for t, q in zip(*lab["_children"])]
        if lab["type"] == "flicker":
            d["orders"] = _flicker_orders(eng, *lab["fl_ids"], ns)
        out.append(d)
    return out


def _flicker_orders(eng: EngineOutput, lo: int, hi: int, ns) -> list[dict]:
    """The flicker orders with ids in [lo, hi): side, price, lots, place/cancel times."""
    cfg, sch = eng.config, eng.schedules
    res = []
    for fid in range(lo, hi):
        idx = np.flatnonzero(sch.fl_id == fid)
        place = idx[sch.fl_act[idx] == 1]
        cancel = idx[sch.fl_act[idx] == 0]
        if place.size == 0 or eng.fl_price[place[0]] < 0:
            continue
        p = int(eng.fl_price[place[0]])
        res.append({"side": "bid" if sch.fl_side[place[0]] == BID else "ask", "price_ticks": p,
                    "price": _fmt(p, cfg.tick_units(), cfg.price_decimals), "lots": int(sch.fl_qty[place[0]]),
                    "place_ts_ns": ns(sch.fl_t[place[0]]),
                    "cancel_ts_ns": ns(sch.fl_t[cancel[0]]) if cancel.size else None})
    return res


def output_names(cfg: SimConfig) -> dict[str, str]:
    """File names :func:`simulate` writes, by role."""
    date = datetime.fromtimestamp(cfg.resolved_start_ns() / 1e9, timezone.utc).strftime("%Y-%m-%d")
    return {"capture": f"{cfg.symbol}-depth-capture-{date}.jsonl.gz",
            "agg_trades_csv": f"{cfg.symbol}-aggTrades-{date}.csv",
            "truth": "truth_level_decreases.parquet", "labels": "labels.json", "readme": "README.md",
            **({"book_depth_csv": f"{cfg.symbol}-bookDepth-{date}.csv"} if cfg.book_depth_every_s else {})}


def describe_outputs(book_depth: bool = False) -> str:
    """README text for a simulation output folder (the module docstring's output section, plus
    :data:`BOOK_DEPTH_DOC` when the bookDepth CSV was written)."""
    import forensics.sim
    doc = forensics.sim.__doc__ or ""
    body = doc[doc.index("Outputs of"):doc.index("API:")].rstrip()
    if book_depth:
        body += "\n" + BOOK_DEPTH_DOC.rstrip()
    body = re.sub(r":\w+:`([^`]+)`", r"`\1`", body)
    return "# Simulated market data with ground truth\n\nWritten by `forensics.simulate`.\n\n" + body + "\n"


def _config_dict(cfg: SimConfig) -> dict:
    """SimConfig as JSON-able dict (incidents and makers as lists of dicts)."""
    d = dataclasses.asdict(cfg)
    d["start_ns"] = cfg.resolved_start_ns()
    for m in d["makers"]:   # options at their defaults: labels.json as before they existed
        if not m["deep"]:
            m.pop("deep")
    for i in d["incidents"]:
        for k in INCIDENT_OPTIONS:
            if i[k] is None:
                i.pop(k)
    if cfg.book_depth_every_s is None:  # option off: labels.json as before the option existed
        for k in BOOK_DEPTH_FIELDS:
            d.pop(k)
    return d


@dataclass
class SimResult:
    """What :func:`simulate` wrote. Times in s, sizes in bytes."""

    out_dir: Path
    files: dict[str, Path]
    labels: dict
    n_batches: int
    n_depth_events: int
    n_agg_trades: int
    n_truth_rows: int
    engine_seconds: float
    publish_seconds: float
    engine: EngineOutput | None = None

    def sizes(self) -> dict[str, int]:
        """Bytes per written file."""
        return {k: p.stat().st_size for k, p in self.files.items()}


def simulate(config: SimConfig, out_dir: Path | str, keep_engine: bool = False,
             record_books: bool = False) -> SimResult:
    """Run the scenario and write the capture, aggTrades CSV, truth Parquet, labels and README.

    ``keep_engine`` attaches the :class:`EngineOutput` (``record_books`` adds batch-end books)."""
    eng = run_engine(config, record_books=record_books)
    t0 = time.perf_counter()
    res = publish(eng, Path(out_dir))
    res.publish_seconds = time.perf_counter() - t0
    if keep_engine:
        res.engine = eng
    return res


def publish(eng: EngineOutput, out_dir: Path) -> SimResult:
    """Write the engine's output in the Binance formats plus the ground truth (see module doc)."""
    cfg = eng.config
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = _rngs(cfg.seed)[3]
    batch_ops = _op_batches(eng)
    lv = _sorted_levels(eng, batch_ops)
    runs = _level_runs(lv)
    k, n_op = _pick_snapshot(runs, batch_ops, cfg.stale_events)
    events, rows = _depth_events(eng, runs, batch_ops, k, rng)
    depth = _depth_lines(events, rows, cfg, rng)
    k_ev = int(np.searchsorted(events["batch"].to_numpy(), k))
    snap, snap_info = _snapshot_line(eng, lv, n_op, depth, k_ev, rng)
    trades = _agg_trades(eng)
    tlines = _trade_lines(trades, cfg, rng)
    lines = pl.concat([snap, depth, tlines]).sort(["local", "kind", "seq"])
    names = output_names(cfg)
    files = {k_: out_dir / v for k_, v in names.items()}
    _write_gz(files["capture"], "\n".join((lines["local"].cast(pl.Utf8) + " " + lines["json"]).to_list()) + "\n")
    csv = trades.select(
        pl.col("a").alias("agg_trade_id"), _dec_expr("price", cfg.tick_units(), cfg.price_decimals).alias("price"),
        _dec_expr("qty", cfg.lot_units(), cfg.qty_decimals).alias("quantity"), pl.col("f").alias("first_trade_id"),
        pl.col("l").alias("last_trade_id"), pl.col("T").alias("transact_time"),
        pl.when(pl.col("m")).then(pl.lit("true")).otherwise(pl.lit("false")).alias("is_buyer_maker"))
    csv.write_csv(files["agg_trades_csv"])
    inc = _incident_labels(eng)
    truth = _truth(eng, runs, events, k, inc)
    truth.write_parquet(files["truth"], compression="zstd", statistics=True)
    end_ns = (eng.start_ms + eng.n_batches * BATCH_MS) * NS_PER_MS
    labels = {
        "schema_version": 1, "generator": "forensics.simulate", "exchange": "binance-futures",
        "symbol": cfg.symbol, "date": names["capture"].rsplit("-capture-", 1)[1][:10], "seed": cfg.seed,
        "tick": cfg.tick, "lot": cfg.lot, "price_decimals": cfg.price_decimals, "qty_decimals": cfg.qty_decimals,
        "batch_ms": BATCH_MS, "start_ts_ns": eng.start_ms * NS_PER_MS, "end_ts_ns": end_ns,
        "snapshot": snap_info, "files": {k_: v for k_, v in names.items()},
        "counts": {"depth_events": events.height, "agg_trades": trades.height, "truth_rows": truth.height,
                   "engine_ops": int(len(eng.ops)), "fills": int(len(eng.fills)), "batches": eng.n_batches},
        "config": _config_dict(cfg), "incidents": inc,
    }
    if cfg.book_depth_every_s:
        bd = book_depth_frame(eng)
        bd.write_csv(files["book_depth_csv"])
        labels["counts"]["book_depth_samples"] = bd["timestamp"].n_unique()
    files["labels"].write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
    files["readme"].write_text(describe_outputs(bool(cfg.book_depth_every_s)))
    return SimResult(out_dir, files, labels, eng.n_batches, events.height, trades.height, truth.height,
                     eng.seconds, 0.0)


def write_sample_data(out_dir: Path | str) -> SimResult:
    """Write the bundled sample (:func:`sample_config`) into ``out_dir``; a few MB in total."""
    return simulate(sample_config(), Path(out_dir))
