"""One incident on several venues, with known lags, clock skews and batching (ground truth for
``forensics incidents``).

Each venue is its own simulated market (:func:`forensics.sim.simulate`, one seed per venue:
different makers, prices and noise) with a scripted ``withdrawal`` at ``at_s + lag`` (lags drawn
0..``max_lag_s``). Its output is then *published* the way that venue would show it:

``binance_capture``
    the simulator's own Binance depth capture (100 ms batches) with every exchange time (``E``,
    ``T``) moved by the venue's clock skew; the receive times (the recorder's clock) stay true
    + latency.
``tardis``
    Tardis ``incremental_book_L2`` + ``trades`` CSVs rebuilt from the ingested capture: book
    changes re-batched to ``batch_ms`` (absolute size of every level changed in a batch, stamped
    with the batch end), sizes in contracts of ``contract_size`` base units, exchange times moved
    by the skew (the trade stream by ``skew_ms + trade_skew_ms``), receive times true + latency.
``bookdepth``
    Binance ``bookDepth`` band samples every ``band_every_s`` (band-only: no levels, no trades,
    no receive times), timestamps moved by the skew.

Ground truth per venue: the simulator's labelled start of the withdrawal (first maker pull, on
the true clock) and the applied skew. :func:`run_scenario` writes everything, ingests it into a
store, runs ``detect`` and :func:`forensics.incidents.build_incidents`; :func:`evaluate` scores
many seeds (first venue, lag error against the stated uncertainty).

Only the simulator's public entry points are used (``build_config``, ``simulate``, the
``labels`` of its result).
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from forensics import sim
from forensics.errors import ForensicsError
from forensics.store import Store
from forensics.timeutil import NS_PER_MS

#: scenario length and the earliest venue's withdrawal: detection wants a minute of baseline
DEFAULT_MINUTES = 4.0
DEFAULT_AT_S = 120.0          # withdrawal of the earliest venue, s after the capture start
BAND_MINUTES = 7.0            # band-only detection wants a 300 s baseline before the fall
BAND_AT_S = 330.0


@dataclass(frozen=True)
class VenueSpec:
    """How one venue publishes the simulated market."""

    exchange: str
    symbol: str
    fmt: str                      # binance_capture | tardis | bookdepth
    batch_ms: int = 100           # book batching (binance_capture: always the simulator's 100 ms)
    skew_ms: float = 0.0          # venue clock - true clock (exchange timestamps)
    trade_skew_ms: float = 0.0    # extra offset of the trade stream's timestamps vs the book's
    latency_ms: float = 5.0       # median one-way latency to the recorder (receive times)
    contract_size: float = 1.0    # base units per contract (tardis amounts are in contracts)
    tardis_exchange: str = ""     # exchange id written in the Tardis CSV
    band_every_s: float = 5.0     # bookdepth sampling


@dataclass
class Scenario:
    seed: int
    venues: list[VenueSpec]
    lags_s: list[float]           # withdrawal time of each venue after the earliest one's
    minutes: float = DEFAULT_MINUTES
    at_s: float = DEFAULT_AT_S

    def to_dict(self) -> dict:
        return {"seed": self.seed, "minutes": self.minutes, "at_s": self.at_s, "lags_s": self.lags_s,
                "venues": [asdict(v) for v in self.venues]}


def default_venues(bands: bool = False) -> list[VenueSpec]:
    """The venue roster: Binance capture, OKX swap (0.01 BTC contracts), Bybit linear, Coinbase
    (Tardis CSVs), and with ``bands`` a band-only Binance bookDepth market."""
    out = [
        VenueSpec("binance-futures", "BTCUSDT", "binance_capture", 100),
        VenueSpec("okx-swap", "BTC-USDT-SWAP", "tardis", 200, contract_size=0.01, tardis_exchange="okex-swap"),
        VenueSpec("bybit-linear", "BTCUSDT", "tardis", 100, tardis_exchange="bybit"),
        VenueSpec("coinbase", "BTC-USD", "tardis", 300, tardis_exchange="coinbase"),
    ]
    if bands:
        out.append(VenueSpec("binance-futures", "BTCUSDC", "bookdepth", band_every_s=5.0))
    return out


def random_scenario(seed: int, venues: list[VenueSpec] | None = None, max_lag_s: float = 2.0,
                    bands: bool = False) -> Scenario:
    """Lags U(0, max_lag_s) per venue, skews, batching, trade-stream skews and latencies per
    venue, all drawn from ``seed``."""
    from forensics.incidents import UNSYNCED_CLOCK_MS
    rng = np.random.default_rng([17, seed])
    venues = list(venues or default_venues(bands))
    out = []
    for v in venues:
        if v.fmt == "bookdepth":
            # no receive times: nothing in the data can reveal this skew, so it is drawn within
            # the bound forensics.incidents assumes for an exchange clock it cannot check
            skew = float(rng.uniform(-UNSYNCED_CLOCK_MS, UNSYNCED_CLOCK_MS))
            out.append(replace(v, skew_ms=round(skew, 1), band_every_s=float(rng.choice([2.0, 5.0, 10.0]))))
            continue
        batch = v.batch_ms if v.fmt == "binance_capture" else int(rng.choice([100, 200, 300, 500]))
        out.append(replace(v, batch_ms=batch, skew_ms=round(float(rng.uniform(-800, 800)), 1),
                           trade_skew_ms=round(float(rng.uniform(0, 40)) if v.fmt == "tardis" else 0.0, 1),
                           latency_ms=round(float(rng.uniform(1, 30)), 1)))
    lags = rng.uniform(0, max_lag_s, len(out))
    lags = [round(float(x - lags.min()), 3) for x in lags]
    has_bands = any(v.fmt == "bookdepth" for v in out)
    return Scenario(seed, out, lags, BAND_MINUTES if has_bands else DEFAULT_MINUTES,
                    BAND_AT_S if has_bands else DEFAULT_AT_S)


# ---- publication ------------------------------------------------------------------------------

def _dec(col: str, decimals: int) -> pl.Expr:
    """Exact int units -> decimal text."""
    c = pl.col(col)
    if decimals == 0:
        return c.cast(pl.Utf8)
    neg = pl.when(c < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    a = c.abs()
    return (neg + (a // 10**decimals).cast(pl.Utf8) + pl.lit(".")
            + (a % 10**decimals).cast(pl.Utf8).str.zfill(decimals))


def _contracts(col: str, sd: int, contract: float) -> tuple[pl.Expr, int]:
    """Size lots (10**-sd base) -> contracts text, exact when the contract is a power of ten."""
    k = round(-math.log10(contract)) if contract > 0 else 0
    if contract <= 0 or abs(10.0 ** -k - contract) > 1e-12:
        raise ValueError(f"contract size {contract}: only powers of ten are simulated")
    # base = lots * 10^-sd ; contracts = base * 10^k = lots * 10^(k - sd)
    d = sd - k
    if d >= 0:
        return _dec(col, d), d
    return (pl.col(col) * 10 ** (-d)).cast(pl.Utf8), 0


def _latency(rng: np.random.Generator, n: int, median_ms: float) -> np.ndarray:
    """One-way latency per message, ns: lognormal around the median, rare tail."""
    return (median_ms * np.exp(rng.normal(0, 0.3, n)) * NS_PER_MS).astype(np.int64)


def _skew_capture(path: Path, skew_ms: int) -> None:
    """Move every exchange time of a Binance capture by ``skew_ms`` (receive times kept)."""
    import gzip
    lines = pl.DataFrame({"line": gzip.decompress(path.read_bytes()).decode().splitlines()})
    for key in ("E", "T"):
        pat = f'"{key}":(\\d+)'
        new = pl.lit(f'"{key}":') + (pl.col("line").str.extract(pat).cast(pl.Int64) + skew_ms).cast(pl.Utf8)
        lines = lines.with_columns(pl.col("line").str.replace(pat, new, n=1))
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(("\n".join(lines["line"].to_list()) + "\n").encode(), mtime=0))
    tmp.replace(path)


def _tardis_files(v: VenueSpec, scratch: Store, ex: str, sy: str, out: Path, seed: int) -> list[Path]:
    """Tardis CSVs of one venue from its ingested (true-clock) capture."""
    inst = scratch.require_instrument(ex, sy)
    pd, sd = inst.price_decimals, inst.size_decimals
    rng = np.random.default_rng([17, seed, 1])
    b = v.batch_ms * NS_PER_MS
    book = scratch.scan("book_updates", ex, sy).collect()
    snap = book.filter(pl.col("is_snapshot"))
    snap = snap.filter(pl.col("ts") == snap["ts"].min())
    inc = book.filter(~pl.col("is_snapshot") & (pl.col("ts") > snap["ts"].min()))
    inc = (inc.with_columns(((pl.col("ts") + b - 1) // b * b).alias("bt"))
           .group_by("bt", "side", "price", maintain_order=True).agg(pl.col("size").last(), pl.col("seq").last())
           .sort("bt", "seq").rename({"bt": "ts"}))
    rows = pl.concat([snap.select("ts", "side", "price", "size", pl.lit(True).alias("is_snapshot")),
                      inc.select("ts", "side", "price", "size", pl.lit(False).alias("is_snapshot"))])
    # one receive time per batch (monotone), one exchange time per batch
    batches = rows.select("ts").unique(maintain_order=True)
    lat = _latency(rng, batches.height, v.latency_ms)
    batches = batches.with_columns(
        pl.Series("local", np.maximum.accumulate(batches["ts"].to_numpy() + lat)))
    rows = rows.join(batches, on="ts", how="left", maintain_order="left")
    size_txt, _ = _contracts("size", sd, v.contract_size)
    skew = int(round(v.skew_ms * 1000))  # us
    book_csv = rows.select(
        pl.lit(v.tardis_exchange).alias("exchange"), pl.lit(v.symbol).alias("symbol"),
        (pl.col("ts") // 1000 + skew).alias("timestamp"), (pl.col("local") // 1000).alias("local_timestamp"),
        pl.when(pl.col("is_snapshot")).then(pl.lit("true")).otherwise(pl.lit("false")).alias("is_snapshot"),
        pl.col("side"), _dec("price", pd).alias("price"), size_txt.alias("amount"))
    trades = scratch.scan("trades", ex, sy).collect()
    tl = _latency(rng, trades.height, v.latency_ms)
    tskew = int(round((v.skew_ms + v.trade_skew_ms) * 1000))
    tsz, _ = _contracts("size", sd, v.contract_size)
    trades_csv = trades.with_columns(pl.Series("local", np.maximum.accumulate(trades["ts"].to_numpy() + tl))).select(
        pl.lit(v.tardis_exchange).alias("exchange"), pl.lit(v.symbol).alias("symbol"),
        (pl.col("ts") // 1000 + tskew).alias("timestamp"), (pl.col("local") // 1000).alias("local_timestamp"),
        pl.col("trade_id").alias("id"), pl.col("aggressor").fill_null("unknown").alias("side"),
        _dec("price", pd).alias("price"), tsz.alias("amount"))
    # rows in receive order, as Tardis writes them
    bp = out / f"{v.tardis_exchange}_incremental_book_L2_{v.symbol}.csv"
    tp = out / f"{v.tardis_exchange}_trades_{v.symbol}.csv"
    book_csv.sort("local_timestamp", maintain_order=True).write_csv(bp)
    trades_csv.sort("local_timestamp", maintain_order=True).write_csv(tp)
    return [bp, tp]


def _skew_bookdepth(path: Path, skew_ms: float) -> None:
    """bookDepth timestamps are whole seconds: move them by the skew rounded to a second would
    hide it, so the skewed time is written with milliseconds (the reader accepts fractions)."""
    df = pl.read_csv(path, infer_schema_length=0)
    t = pl.col("timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC")
    df = df.with_columns((t + pl.duration(milliseconds=int(round(skew_ms)))).dt.strftime("%Y-%m-%d %H:%M:%S%.3f")
                         .alias("timestamp"))
    df.write_csv(path)


@dataclass
class ScenarioRun:
    scenario: Scenario
    store: Store
    truth: pl.DataFrame           # exchange, symbol, true_start_ns, skew_ms, fmt, batch_ms
    incidents: pl.DataFrame
    files: dict[str, list[Path]] = field(default_factory=dict)


#: simulator outputs by role, found by name when the result does not list them
_OUTPUT_GLOBS = {"capture": "*-depth-capture-*.jsonl.gz", "book_depth_csv": "*-bookDepth-*.csv"}


def _outputs(res, out: Path) -> tuple[dict[str, Path], dict]:
    """(files by role, labels) of a simulator run, tolerant of how the result lists them."""
    files = {k: Path(p) for k, p in (getattr(res, "files", None) or {}).items()}
    for role, pat in _OUTPUT_GLOBS.items():
        if role not in files:
            hits = sorted(out.glob(pat))
            if hits:
                files[role] = hits[0]
    labels = getattr(res, "labels", None)
    if not labels and (out / "labels.json").exists():
        labels = json.loads((out / "labels.json").read_text())
    return files, labels or {}


def publish_scenario(sc: Scenario, out: Path) -> tuple[dict[VenueSpec, list[Path]], pl.DataFrame]:
    """Simulate and publish every venue of ``sc`` into ``out``; returns the files per venue and
    the ground truth."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[VenueSpec, list[Path]] = {}
    truth = []
    for i, (v, lag) in enumerate(zip(sc.venues, sc.lags_s)):
        vdir = out / f"venue{i}-{v.exchange}-{v.symbol}"
        at = sc.at_s + lag
        kw = {"book_depth_every_s": v.band_every_s, "book_depth_jitter_s": 0.0} if v.fmt == "bookdepth" else {}
        cfg = sim.build_config(seed=sc.seed * 101 + i, minutes=sc.minutes, incidents=[f"withdrawal@{at:.3f}s"], **kw)
        res = sim.simulate(cfg, vdir / "sim")
        names, labels = _outputs(res, vdir / "sim")
        inc = [x for x in labels.get("incidents", []) if x.get("type", "withdrawal") == "withdrawal"]
        if not inc:
            raise ForensicsError(f"simulator labelled no withdrawal for venue {i}")
        truth.append({"exchange": v.exchange, "symbol": v.symbol, "fmt": v.fmt, "batch_ms": v.batch_ms,
                      "skew_ms": v.skew_ms, "lag_s": lag, "true_start_ns": int(inc[0]["start_ts_ns"]),
                      "band_every_s": v.band_every_s if v.fmt == "bookdepth" else None})
        if v.fmt == "binance_capture":
            cap = names["capture"]
            _skew_capture(cap, int(round(v.skew_ms)))
            files[v] = [cap]
        elif v.fmt == "bookdepth":
            bd = names["book_depth_csv"]
            _skew_bookdepth(bd, v.skew_ms)
            files[v] = [bd]
        elif v.fmt == "tardis":
            scratch = Store(vdir / "scratch")
            from forensics.ingest import ingest
            ingest([names["capture"]], store=scratch)
            (ex, sy), = scratch.instruments_in("book_updates")
            files[v] = _tardis_files(v, scratch, ex, sy, vdir, sc.seed * 101 + i)
            shutil.rmtree(scratch.root)
        else:
            raise ValueError(f"unknown venue format {v.fmt!r}")
    return files, pl.DataFrame(truth)


def run_scenario(sc: Scenario, out: Path | str, window_s: float | None = None) -> ScenarioRun:
    """Publish, ingest, detect, build incidents. ``out`` receives the files and the store."""
    from forensics.detect import DetectParams, detect
    from forensics.incidents import DEFAULT_WINDOW_S, build_incidents
    from forensics.ingest import ingest
    out = Path(out)
    files, truth = publish_scenario(sc, out)
    store = Store(out / "store")
    for v, paths in files.items():
        ingest(paths, store=store, exchange=v.exchange, symbol=v.symbol)
    detect(store, params=DetectParams(flow=False, flicker=False))
    inc = build_incidents(store, window_s=window_s or DEFAULT_WINDOW_S)
    (out / "scenario.json").write_text(json.dumps({**sc.to_dict(), "truth": truth.to_dicts()}, indent=1))
    return ScenarioRun(sc, store, truth, inc, {f"{v.exchange}/{v.symbol}": p for v, p in files.items()})


# ---- scoring -------------------------------------------------------------------------------

def score(run: ScenarioRun) -> dict:
    """Compare one scenario's incident with the truth.

    ``first_ok``: the estimated first venue is the true first; ``first_required``: the true lag
    from the true first venue to every other venue exceeds that pair's stated uncertainty (then
    the first venue must be right). Per other venue: ``err_ms`` = |estimated lag - true lag|
    (both relative to the estimated first venue), ``within`` = err <= stated uncertainty;
    ``pairs_resolvable`` / ``pairs_ordered``: venue pairs whose true lag exceeds their combined
    stated uncertainty, and how many of them the estimate orders right."""
    inc = run.incidents
    t = run.truth.with_columns(((pl.col("true_start_ns") - pl.col("true_start_ns").min()) / NS_PER_MS).alias("true_ms"))
    if inc.height == 0:
        return {"seed": run.scenario.seed, "incidents": 0, "venues": [], "first_ok": False,
                "first_required": True, "found": 0}
    # the incident that holds the most venues (the scripted one)
    main = inc.group_by("incident_id").len().sort("len", descending=True)["incident_id"][0]
    rows = inc.filter(pl.col("incident_id") == main).join(t, on=["exchange", "symbol"], how="left")
    est_first = rows.filter(pl.col("first"))
    ef = est_first.row(0, named=True)
    true_first = t.sort("true_ms").row(0, named=True)
    venues = []
    pulled = rows.filter(pl.col("event_id").is_not_null())
    for r in pulled.iter_rows(named=True):
        true_lag = r["true_ms"] - ef["true_ms"]
        err = abs(r["lag_ms"] - true_lag)
        venues.append({"venue": f"{r['exchange']}/{r['symbol']}", "fmt": r["fmt"], "est_lag_ms": r["lag_ms"],
                       "true_lag_ms": true_lag, "unc_ms": r["lag_uncertainty_ms"], "err_ms": err,
                       "within": bool(err <= r["lag_uncertainty_ms"]) if not r["first"] else True,
                       "first": r["first"], "relation": r["relation"]})
    # pair uncertainty against the true first: combine the two venues' timing uncertainties
    tf = pulled.filter((pl.col("exchange") == true_first["exchange"]) & (pl.col("symbol") == true_first["symbol"]))
    required = False
    if tf.height:
        u0 = tf["timing_uncertainty_ms"][0]
        others = pulled.filter(~((pl.col("exchange") == true_first["exchange"])
                                 & (pl.col("symbol") == true_first["symbol"])))
        required = bool(others.height and all(
            (r["true_ms"] - true_first["true_ms"]) > math.hypot(r["timing_uncertainty_ms"], u0)
            for r in others.iter_rows(named=True)))
    # every pair of venues whose true lag exceeds the pair's stated uncertainty: ordered right?
    pr = pulled.select("exchange", "symbol", "onset_ts", "timing_uncertainty_ms", "true_ms").to_dicts()
    pairs_req = pairs_ok = 0
    for a in range(len(pr)):
        for b in range(a + 1, len(pr)):
            x, y = pr[a], pr[b]
            if abs(x["true_ms"] - y["true_ms"]) > math.hypot(x["timing_uncertainty_ms"], y["timing_uncertainty_ms"]):
                pairs_req += 1
                pairs_ok += (x["true_ms"] < y["true_ms"]) == (x["onset_ts"] < y["onset_ts"])
    return {"seed": run.scenario.seed, "incidents": inc["incident_id"].n_unique(), "found": pulled.height,
            "pairs_resolvable": pairs_req, "pairs_ordered": pairs_ok,
            "expected": len(run.scenario.venues), "venues": [v for v in venues if not v["first"]],
            "first_ok": (ef["exchange"], ef["symbol"]) == (true_first["exchange"], true_first["symbol"]),
            "first_required": required}


def evaluate(seeds: int = 20, bands: bool = False, out: Path | str | None = None, seed0: int = 0,
             progress=None) -> dict:
    """Run ``seeds`` random scenarios and summarise (see :func:`score`)."""
    tmp = None
    if out is None:
        tmp = tempfile.mkdtemp(prefix="forensics-incidents-eval-")
        out = tmp
    out = Path(out)
    results = []
    try:
        for s in range(seed0, seed0 + seeds):
            sc = random_scenario(s, bands=bands)
            run = run_scenario(sc, out / f"seed{s}")
            r = score(run)
            results.append(r)
            if progress:
                progress(r)
            if tmp:
                shutil.rmtree(out / f"seed{s}", ignore_errors=True)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return summarise(results)


def summarise(results: list[dict]) -> dict:
    lags = [v for r in results for v in r["venues"]]
    req = [r for r in results if r["first_required"]]
    by_fmt: dict[str, list] = {}
    for v in lags:
        by_fmt.setdefault(v["fmt"], []).append(v)
    return {
        "scenarios": len(results),
        "venues_found": sum(r["found"] for r in results),
        "venues_expected": sum(r.get("expected", 0) for r in results),
        "first_right": sum(r["first_ok"] for r in results),
        "first_required": len(req),
        "first_right_when_required": sum(r["first_ok"] for r in req),
        "pairs_resolvable": sum(r.get("pairs_resolvable", 0) for r in results),
        "pairs_ordered": sum(r.get("pairs_ordered", 0) for r in results),
        "lags": len(lags),
        "lags_within": sum(v["within"] for v in lags),
        "within_share": (sum(v["within"] for v in lags) / len(lags)) if lags else None,
        "median_err_ms": float(np.median([v["err_ms"] for v in lags])) if lags else None,
        "median_unc_ms": float(np.median([v["unc_ms"] for v in lags])) if lags else None,
        "by_format": {k: {"lags": len(x), "within": sum(v["within"] for v in x),
                          "median_err_ms": float(np.median([v["err_ms"] for v in x])),
                          "median_unc_ms": float(np.median([v["unc_ms"] for v in x]))}
                      for k, x in sorted(by_fmt.items())},
        "results": results,
    }


def format_summary(s: dict) -> str:
    """The evaluation's figures as text (the benchmark and ``forensics incidents eval`` print it)."""
    pct = (lambda a, b: f"{a}/{b} ({100 * a / b:.0f}%)" if b else f"{a}/{b}")
    lines = [
        f"scenarios: {s['scenarios']}; venue events found {s['venues_found']}/{s['venues_expected']}",
        f"first venue right: {pct(s['first_right'], s['scenarios'])} overall; "
        f"{pct(s['first_right_when_required'], s['first_required'])} where the true lag exceeds the stated uncertainty",
        f"venue pairs whose true lag exceeds their stated uncertainty, ordered right: "
        f"{pct(s['pairs_ordered'], s['pairs_resolvable'])}",
        f"lag error within the stated uncertainty: {pct(s['lags_within'], s['lags'])}"
        + (f"; median error {s['median_err_ms']:.0f} ms, median stated uncertainty {s['median_unc_ms']:.0f} ms"
           if s["lags"] else ""),
    ]
    for k, v in s["by_format"].items():
        lines.append(f"  {k:16s} lags {v['lags']:3d}  within {pct(v['within'], v['lags']):>12s}  "
                     f"median error {v['median_err_ms']:6.0f} ms  median uncertainty {v['median_unc_ms']:6.0f} ms")
    return "\n".join(lines)
