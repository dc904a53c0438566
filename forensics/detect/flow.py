"""Flow episodes: consumption by sustained one-sided aggressive *volume* against the side's own
trailing rate and variance (:func:`flow_scores`, :func:`find_flow`), whatever the slicing."""
from __future__ import annotations

import math

import numpy as np
import polars as pl

from forensics.detect.context import (
    Context,
)
from forensics.detect.params import DetectParams
from forensics.timeutil import NS_PER_S


def _keep_mask(n: int, s0: int, exclude) -> np.ndarray:
    """1.0 for the seconds of [s0, s0 + n) outside every ``exclude`` interval (ns), else 0.0."""
    keep = np.ones(n)
    for a, b in exclude or ():
        i0, i1 = max(0, int(a) // NS_PER_S - s0), min(n, int(b) // NS_PER_S - s0 + 1)
        if i1 > i0:
            keep[i0:i1] = 0.0
    return keep



def _per_second(t: pl.DataFrame, s0: int, n: int) -> tuple[np.ndarray, ...]:
    """Per second of [s0, s0 + n): volume, number of taker orders and the sums of their log size
    and squared log size, plus each order's second and size. A taker order = the prints of one
    aggressor at one timestamp (one order walking levels), sorted by ts and grouped in that
    order: the float sums of logs are then summed in one fixed order whatever the row order of
    the input (part layout, threads)."""
    orders = (t.group_by("ts").agg(pl.col("size").sum().cast(pl.Float64)).sort("ts")
              .select(((pl.col("ts") // NS_PER_S) - s0).alias("i"), pl.col("size"), pl.col("size").log().alias("l"), "ts"))
    per = orders.group_by("i", maintain_order=True).agg(pl.col("size").sum().alias("v"), pl.len().alias("n"),
                                                        pl.col("l").sum().alias("l1"), (pl.col("l") ** 2).sum().alias("l2"))
    ii = per["i"].to_numpy()
    v, cnt, l1, l2 = (np.zeros(n) for _ in range(4))
    v[ii], cnt[ii], l1[ii], l2[ii] = (per[c].to_numpy().astype(np.float64) for c in ("v", "n", "l1", "l2"))
    return v, cnt, l1, l2, orders["i"].to_numpy(), orders["size"].to_numpy().astype(np.float64), orders["ts"].to_numpy()


def _trailing(cum: dict, end: np.ndarray, B: int) -> dict:
    """The trailing baseline ending (exclusive) at each second of ``end``: it reaches back as far
    as needed to hold ``B`` kept seconds (excluded ones skipped). Returns the mean rate per second
    ``mu``, the empirical variance ``var``, the compound-Poisson variance ``model`` with lognormal
    order sizes fitted on the trailing orders (the tail of the size distribution counts even if
    no huge order happened to be in it), the fit (``m``, ``vl``: mean / variance of log size,
    ``lam``: orders per second) and the number of kept seconds ``nb``."""
    c1, c2, ck = cum["v"], cum["v2"], cum["k"]
    b0 = np.maximum(np.searchsorted(ck, ck[end] - B, side="right") - 1, 0)
    nb = ck[end] - ck[b0]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mu = (c1[end] - c1[b0]) / nb
        var = np.maximum((c2[end] - c2[b0]) / nb - mu * mu, 0.0)
        N = cum["n"][end] - cum["n"][b0]
        m = (cum["l1"][end] - cum["l1"][b0]) / N
        vl = np.maximum((cum["l2"][end] - cum["l2"][b0]) / N - m * m, 0.0)
        model = N / nb * np.exp(2 * m + 2 * vl)
    return {"mu": mu, "var": var, "model": model, "m": m, "vl": vl, "lam": N / np.where(nb > 0, nb, np.nan), "nb": nb}


_PHI = np.vectorize(lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))) if x == x else float("nan"))


def _capped_model(tr: dict, k: float) -> np.ndarray:
    """Compound-Poisson variance per second of the volume with every order capped at
    ``exp(m + k s)`` (the trailing lognormal fit): ``lam E[min(X, c)^2]`` =
    ``lam (exp(2m + 2s^2) Phi(k - 2s) + c^2 (1 - Phi(k)))``."""
    s = np.sqrt(tr["vl"])
    with np.errstate(invalid="ignore", over="ignore"):
        c = np.exp(tr["m"] + k * s)
        tail = 1.0 - 0.5 * (1.0 + math.erf(k / math.sqrt(2.0)))
        return tr["lam"] * (np.exp(2 * tr["m"] + 2 * tr["vl"]) * _PHI(k - 2 * s) + c * c * tail)


def flow_scores(trades: pl.DataFrame, aggressor: str, p: DetectParams, exclude=None, book: dict | None = None) -> dict:
    """Per-second aggressive volume of one aggressor and, per window length ``W`` in
    ``flow_windows_s``, the window volume ``V`` (ending at each second), its rate ratio
    ``V / (W mu)`` and robust-to-slicing z-score ``(V - W mu) / sqrt(W var)`` against the side's
    own trailing per-second mean ``mu`` and variance ``var`` over ``flow_baseline_s`` before the
    window, and the share of ``V`` in its busiest second. Volume, not print count: the same
    program scores the same whether sliced into 10 or 1,000 prints.

    Besides, the *capped* z ``zc``: the same test on the volume with every order capped at the
    trailing ``flow_cap_z`` quantile of order size (lognormal fit at that second). A heavy size
    tail makes the plain volume variance large (one ordinary big order matches a short program);
    capped, the background is light-tailed, and a program of many ordinary-sized orders stands out
    (a program of a few huge orders still stands out in the plain z).

    ``exclude``: (from, to) ns intervals left out of the trailing baselines (episodes already
    flagged and their aftermath: an earlier cascade must not inflate the rate and variance a
    later program is judged against); the baseline then reaches back over ``flow_baseline_s``
    kept seconds, and its length (for the short-history bar) is their number.

    ``book`` (level data: ``{"bid": (ts, qty), "ask": (ts, qty), "mid": (ts, mid)}``, the touch
    band's depth per side and the mid): per window up to ``flow_ero_max_s`` also the erosion the
    program causes (:func:`_erosion`): ``ero``, the consumed side's touch-band fall below its
    median of the ``flow_ero_base_s`` before the window, and ``drift``, the mid's move with the
    aggressor in robust sigmas of its own moves over that window length."""
    t = trades.filter(pl.col("aggressor") == aggressor)
    if t.height == 0:
        return {}
    s0 = int(trades["ts"].min()) // NS_PER_S
    n = int(trades["ts"].max()) // NS_PER_S - s0 + 1
    v, cnt, l1, l2, oi, osz, ots = _per_second(t, s0, n)
    keep = _keep_mask(n, s0, exclude)
    B = int(p.flow_baseline_s)
    cums = lambda vv: {k: np.concatenate([[0.0], np.cumsum(a)]) for k, a in (
        ("v", vv * keep), ("v2", vv * vv * keep), ("n", cnt * keep), ("l1", l1 * keep), ("l2", l2 * keep), ("k", keep))}
    cum = cums(v)
    out = {"s0": s0, "v": v, "windows": {}}
    # the baseline ending at each second j (seconds [j - B, j)): mean rate and variance per second
    tr = _trailing(cum, np.arange(n + 1), B)
    out["base_mu"], out["base_var"], out["base_n"] = tr["mu"], np.fmax(tr["var"], tr["model"]), tr["nb"]
    # order counts: the side's trailing count rate and per-second variance (at least Poisson)
    c1 = np.concatenate([[0.0], np.cumsum(cnt * keep)])
    c2 = np.concatenate([[0.0], np.cumsum(cnt * cnt * keep)])
    ck = cum["k"]
    j = np.arange(n + 1)
    b0 = np.maximum(np.searchsorted(ck, ck[j] - B, side="right") - 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mun = (c1[j] - c1[b0]) / tr["nb"]
        out["base_mu_n"] = mun
        out["base_var_n"] = np.fmax((c2[j] - c2[b0]) / tr["nb"] - mun * mun, mun)
    out["cn"] = np.concatenate([[0.0], np.cumsum(cnt)])
    # capped volume: each order capped at its second's trailing flow_cap_z size quantile
    with np.errstate(invalid="ignore", over="ignore"):
        cap = np.exp(tr["m"] + p.flow_cap_z * np.sqrt(tr["vl"]))[:n]
    cap = np.where(np.isfinite(cap), cap, np.inf)
    vc = np.zeros(n)
    np.add.at(vc, oi, np.minimum(osz, cap[oi]))
    out["oi"], out["osz"], out["ots"] = oi, osz, ots
    cumc = cums(vc)
    trc = _trailing(cumc, np.arange(n + 1), B)
    out["vc"] = vc
    out["base_mu_c"], out["base_var_c"] = trc["mu"], np.fmax(trc["var"], _capped_model(tr, p.flow_cap_z))
    cv = np.concatenate([[0.0], np.cumsum(v)])   # window volumes: every second counts
    cvc = np.concatenate([[0.0], np.cumsum(vc)])
    if book:
        out["book"] = _book_seconds(book, "bid" if aggressor == "sell" else "ask", s0, n, p)
        out["book"]["sign"] = -1.0 if aggressor == "sell" else 1.0
    for W in p.flow_windows_s:
        W = int(W)
        if W < n:
            out["windows"][W] = _window_scores(v, cv, cvc, out, W, p)
            if "book" in out and W <= p.flow_ero_max_s:
                out["windows"][W]["ero"], out["windows"][W]["drift"] = _erosion(out["book"], W, p)
    return out


def _book_seconds(book: dict, side: str, s0: int, n: int, p: DetectParams) -> dict:
    """The consumed side's touch-band depth ``dq`` and the mid at the end of each second of
    [s0, s0 + n) (last value at or before it; NaN before the first), and the trailing median of
    ``dq`` over ``flow_ero_base_s`` seconds ending at each second (``base``)."""
    ends = (s0 + np.arange(n) + 1) * NS_PER_S

    def at(ts, val):
        ts, val = np.asarray(ts), np.asarray(val, dtype=np.float64)
        if ts.size == 0:
            return np.full(n, np.nan)
        i = np.searchsorted(ts, ends, side="left") - 1   # strictly before the next second starts
        return np.where(i >= 0, val[np.maximum(i, 0)], np.nan)

    dq = at(*book[side])
    mid = at(*book["mid"])
    base = pl.Series(dq).rolling_median(int(p.flow_ero_base_s), min_samples=max(1, int(p.flow_ero_base_s) // 6)).to_numpy()
    return {"dq": dq, "mid": mid, "base": base, "drift_sig": {}}


def _drift_sigma(bk: dict, W: int, p: DetectParams) -> np.ndarray:
    """Per second j: the RMS of the mid's W-second moves over the ``flow_baseline_s`` before j
    (the scale its ordinary drift over that length has; RMS, not a median: on a coarse tick most
    moves are zero)."""
    if W not in bk["drift_sig"]:
        mid = bk["mid"]
        d = np.full(mid.size, np.nan)
        d[W:] = mid[W:] - mid[:-W]
        ok = ~np.isnan(d)
        c2 = np.concatenate([[0.0], np.cumsum(np.where(ok, d * d, 0.0))])
        ck = np.concatenate([[0.0], np.cumsum(ok)])
        j = np.arange(mid.size)
        j0 = np.maximum(j - int(p.flow_baseline_s), 0)
        k = ck[j] - ck[j0]
        with np.errstate(invalid="ignore", divide="ignore"):
            bk["drift_sig"][W] = np.where(k >= p.flow_min_history_s, np.sqrt((c2[j] - c2[j0]) / k), np.nan)
    return bk["drift_sig"][W]


def _erosion_of(bk: dict, a: np.ndarray, b: np.ndarray, lows: np.ndarray, sig: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Windows of seconds [a, b) (a >= 1) whose touch band's lowest value is ``lows`` and whose
    mid's ordinary move over their length is ``sig``: the band's fall (1 - lows / its median over
    the minute before) and the mid's move with the aggressor from the end of the second before
    the window to its last second, in units of ``sig`` (NaN where the book does not say)."""
    base = bk["base"][a - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(base > 0, 1.0 - lows / base, np.nan),
                np.where(sig > 0, bk["sign"] * (bk["mid"][b - 1] - bk["mid"][a - 1]) / sig, np.nan))


def _erosion(bk: dict, W: int, p: DetectParams) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_erosion_of` for the ``W``-second windows ending at each second (NaN for those
    starting before the second second: no minute before them)."""
    dq = bk["dq"]
    out_e, out_d = np.full(dq.size, np.nan), np.full(dq.size, np.nan)
    b = np.arange(W + 1, dq.size + 1)
    if b.size == 0:
        return out_e, out_d
    lows = pl.Series(np.where(np.isnan(dq), np.inf, dq)).rolling_min(W, min_samples=1).to_numpy()[b - 1]
    lows = np.where(np.isinf(lows), np.nan, lows)
    out_e[b - 1], out_d[b - 1] = _erosion_of(bk, b - W, b, lows, _drift_sigma(bk, W, p)[b - W - 1])
    return out_e, out_d


def _eroded(bk: dict | None, sa: int, sb: int, p: DetectParams) -> bool:
    """Seconds [sa, sb) erode the consumed side: no longer than ``flow_ero_max_s``, its touch
    band >= ``flow_ero_frac`` below the minute before and the mid moved with the aggressor by >=
    ``flow_ero_drift_z`` sigma."""
    if (not bk or sb - sa > p.flow_ero_max_s or sa < 1 or sb <= sa or sb > bk["dq"].size
            or not bk.get("cover", np.zeros(0, bool))[sa:sb].any()):
        return False
    seg = bk["dq"][sa:sb]
    low = np.array([np.nanmin(seg) if np.isfinite(seg).any() else np.nan])
    e, d = _erosion_of(bk, np.array([sa]), np.array([sb]), low, _drift_sigma(bk, sb - sa, p)[[sa - 1]])
    return bool(e[0] >= p.flow_ero_frac and d[0] >= p.flow_ero_drift_z)


def _window_scores(v: np.ndarray, cv: np.ndarray, cvc: np.ndarray, sc: dict, W: int, p: DetectParams) -> dict:
    """Scores of the ``W``-second windows ending at each second (see :func:`flow_scores`); the
    z bars rise as sqrt(``flow_full_history_s`` / history) on a short history, no verdict
    (NaN) under ``flow_min_history_s``."""
    end = np.arange(v.size) + 1
    start = np.maximum(end - W, 0)
    V, Vc = cv[end] - cv[start], cvc[end] - cvc[start]
    mu, var, nb = sc["base_mu"][start], sc["base_var"][start], sc["base_n"][start]
    muc, varc = sc["base_mu_c"][start], sc["base_var_c"][start]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = V / (W * mu)
        z = (V - W * mu) / np.sqrt(W * var)
        zc = (Vc - W * muc) / np.sqrt(W * varc)
        top = pl.Series(v).rolling_max(W, min_samples=1).to_numpy() / V
        topc = pl.Series(sc["vc"]).rolling_max(W, min_samples=1).to_numpy() / Vc
    active = pl.Series((v > 0).astype(np.float64)).rolling_sum(W, min_samples=1).to_numpy()
    ok_hist = nb >= p.flow_min_history_s
    # a short history estimates the rate and variance poorly: the bar rises as sqrt of it
    short = np.sqrt(np.maximum(1.0, p.flow_full_history_s / np.maximum(nb, 1.0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        zn = (sc["cn"][end] - sc["cn"][start] - W * sc["base_mu_n"][start]) / np.sqrt(W * sc["base_var_n"][start])
    return {"V": V, "mu": mu, "ratio": np.where(ok_hist, ratio, np.nan), "z": np.where(ok_hist, z / short, np.nan),
            "zn": np.where(ok_hist, zn / short, np.nan),
            "zc": np.where(ok_hist, zc / short, np.nan), "top": top, "topc": topc, "active": active}


def find_flow(trades: pl.DataFrame, p: DetectParams, exclude=(), book: dict | None = None) -> list[dict]:
    """Sustained one-sided programs (:func:`_find_flow_once`) judged against a clean baseline:
    a first pass against the trailing rate with the ``exclude`` intervals (ns; e.g. cliff events
    up to their recovery) left out, then up to ``flow_passes - 1`` more with every episode found
    so far (``flow_exclude_before_s`` before to ``flow_exclude_after_s`` after it) left out of
    its aggressor's baseline too, until the episodes no longer change. ``book`` (level data, see
    :func:`flow_scores`): a short program eroding the touch band and moving the mid passes at the
    lower capped-z bar ``flow_ero_zc``."""
    t = trades.filter(pl.col("aggressor").is_not_null())
    if t.height < p.flow_min_trades:
        return []
    base = list(exclude or ())
    eps = _find_flow_once(t, p, {a: base for a in ("sell", "buy")}, book)
    pre, post = int(p.flow_exclude_before_s * NS_PER_S), int(p.flow_exclude_after_s * NS_PER_S)
    for _ in range(max(0, p.flow_passes - 1)):
        ex = {a: base + [(e["start"] - pre, e["end"] + post) for e in eps if e["aggressor"] == a]
              for a in ("sell", "buy")}
        new = _find_flow_once(t, p, ex, book)
        if new == eps:
            break
        eps = new
    return eps



def _find_flow_once(t: pl.DataFrame, p: DetectParams, exclude: dict, book: dict | None = None) -> list[dict]:
    """Sustained one-sided aggressive programs by flow (see the module docstring): any window
    length in ``flow_windows_s`` whose aggressive volume is >= ``flow_min_ratio`` x and
    ``flow_min_z`` sigma above the side's own trailing rate, spread over >= ``flow_min_active_s``
    seconds with no second holding more than ``flow_max_top_share`` of it. Flagged windows of a
    side merge; the episode is the segment of maximal excess volume over
    ``flow_excess_k`` x the trailing rate (so it starts and ends with the program), trimmed to
    its first / last aggressive print. ``exclude``: per aggressor, the intervals left out of
    its trailing baseline (:func:`flow_scores`)."""
    out = []
    for aggr in ("sell", "buy"):
        sc = flow_scores(t, aggr, p, exclude.get(aggr), book)
        if not sc or not sc["windows"]:
            continue
        v, s0 = sc["v"], sc["s0"]
        n = v.size
        flag = np.zeros(n + 1, np.int64)   # difference array of covered seconds
        eflag = np.zeros(n + 1, np.int64)  # ... of those covered by an erosion-backed window
        nflag = np.zeros(n + 1, np.int64)  # ... and by a count-backed one
        mflag = np.zeros(n + 1, np.int64)  # ... and by a mid-length capped-volume one
        fflag = np.zeros(n + 1, np.int64)  # ... and by a short (5 s) capped-volume one
        for W, w in sc["windows"].items():
            spread = (w["ratio"] >= p.flow_min_ratio) & (w["active"] >= p.flow_min_active_s)
            base = spread & (w["top"] <= p.flow_max_top_share)
            # the capped tests judge the capped volume, so its busiest second is what must not
            # hold most of it (one ordinary big order does not make the window one cluster)
            basec = spread & (w["topc"] <= p.flow_max_top_share)
            # comparisons with NaN (no verdict: short history, no book) are False
            hit = (base & (w["z"] >= p.flow_min_z)) | (basec & (w["zc"] >= p.flow_min_zc))
            if W <= p.flow_count_max_s:   # many more same-side orders than the side's count rate
                nhit = basec & (w["zn"] >= p.flow_count_z)
                hit |= nhit
                _cover(nflag, nhit, W)
            if "ero" in w:   # a short program that erodes the touch band and moves the mid: a lower bar
                ehit = basec & (w["zc"] >= p.flow_ero_zc) & (w["ero"] >= p.flow_ero_frac) & (w["drift"] >= p.flow_ero_drift_z)
                hit |= ehit
                _cover(eflag, ehit, W)
            if W < p.flow_mid_min_s:   # 5 s: the capped volume alone at its own bar
                fhit = basec & (w["zc"] >= p.flow_fast_zc)
                hit |= fhit
                _cover(fflag, fhit, W)
            if p.flow_mid_min_s <= W <= p.flow_mid_max_s:   # 10-20 s: the capped volume alone at a lower bar
                mhit = basec & (w["zc"] >= p.flow_mid_zc)
                hit |= mhit
                _cover(mflag, mhit, W)
            _cover(flag, hit, W)
        cover = np.cumsum(flag[:-1]) > 0
        if "book" in sc:   # a segment passes on its erosion only where an erosion-backed window flagged it
            sc["book"]["cover"] = np.cumsum(eflag[:-1]) > 0
        sc["count_cover"] = np.cumsum(nflag[:-1]) > 0   # ... on its order count likewise
        sc["mid_cover"] = np.cumsum(mflag[:-1]) > 0     # ... on the mid-length capped bar likewise
        sc["fast_cover"] = np.cumsum(fflag[:-1]) > 0    # ... on the 5 s capped bar likewise
        sc["cover"] = cover
        if not cover.any():
            continue
        d = np.diff(np.concatenate([[0], cover.astype(np.int8), [0]]))
        wmax = int(max(sc["windows"]))
        segs = []
        for a, b in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]):
            pad = int(p.flow_pad_frac * wmax)
            lo, hi = max(0, a - pad), min(n, b + pad)
            segs += _program_segments(v, sc, lo, hi, p)
        # flagged stretches closer than twice the pad search overlapping ranges and may cut the
        # same program again: each second belongs to one episode (dev4 seed 457: one 3.9 s buy
        # burst reported twice)
        kept: list[tuple[int, int]] = []
        for sa, sb in segs:
            if not any(sa < kb and ka < sb for ka, kb in kept):
                kept.append((sa, sb))
        for sa, sb in kept:
            ts0, ts1 = (s0 + sa) * NS_PER_S, (s0 + sb) * NS_PER_S
            seg = t.filter((pl.col("aggressor") == aggr) & (pl.col("ts") >= ts0) & (pl.col("ts") < ts1))
            if seg.height == 0 or int(seg["ts"][-1]) - int(seg["ts"][0]) < p.flow_min_duration_s * NS_PER_S:
                continue   # one cluster of orders, not a sustained program
            vol = float(seg["size"].sum())
            dur_s = float(sb - sa)
            mu, var = float(sc["base_mu"][sa]), float(sc["base_var"][sa])
            z = (vol - dur_s * mu) / math.sqrt(dur_s * var) if var > 0 else float("inf")
            muc, varc = float(sc["base_mu_c"][sa]), float(sc["base_var_c"][sa])
            volc = float(sc["vc"][sa:sb].sum())
            zc = (volc - dur_s * muc) / math.sqrt(dur_s * varc) if varc > 0 else float("inf")
            out.append({"trigger": "flow", "side": "bid" if aggr == "sell" else "ask", "aggressor": aggr,
                        "start": int(seg["ts"][0]), "end": int(seg["ts"][-1]), "prints": seg.height,
                        "bursts": int(seg["ts"].n_unique()), "volume": int(vol),
                        "ratio": vol / (dur_s * mu) if mu > 0 else float("inf"), "z": z, "zc": zc,
                        "baseline_rate": mu, "baseline_var": var, "price_first": int(seg["price"][0]),
                        "price_last": int(seg["price"][-1])})
    return sorted(out, key=lambda e: e["start"])



def _max_excess(v: np.ndarray, lo: int, hi: int, level: float) -> tuple[int, int]:
    """[a, b) within [lo, hi) maximising sum(v[a:b] - level)."""
    S = np.concatenate([[0.0], np.cumsum(v[lo:hi] - level)])
    runmin = np.minimum.accumulate(S)
    j = int(np.argmax(S[1:] - runmin[:-1])) + 1
    i = int(np.argmax(S[:j] == runmin[j - 1]))
    return lo + i, lo + j



def _program_segments(v: np.ndarray, sc: dict, lo: int, hi: int, p: DetectParams, depth: int = 0
                      ) -> list[tuple[int, int]]:
    """Seconds [a, b) of the programs inside [lo, hi): the segment of maximal excess volume over
    ``flow_excess_k`` x the trailing rate (at ``lo``), kept if it passes the ratio and z tests
    itself; the stretches left and right of it are searched again (two programs, or a program
    then a withdrawal's cascade, inside one flagged stretch)."""
    if hi - lo < 2 or depth > 12:
        return []
    bi = max(lo, int(p.flow_min_history_s))     # the baseline ends where the stretch starts
    if bi >= hi:
        return []
    mu, var = float(sc["base_mu"][bi]), float(sc["base_var"][bi])
    if not (mu > 0 and var > 0):
        return []
    sa, sb = _max_excess(v, lo, hi, p.flow_excess_k * mu)
    if sb <= sa:
        return []
    xa, xb = sa, sb   # the excess stretch before the re-cut (searched again on the capped volume)
    # edges at the program's own pace: re-cut at half its mean rate (a lone background print
    # just before a strong program is not its start)
    rate = float(v[sa:sb].sum()) / (sb - sa)
    if p.flow_recut_frac * rate > p.flow_excess_k * mu:
        a2, b2 = _max_excess(v, sa, sb, p.flow_recut_frac * rate)
        # ... but never below the sustained-program minimum flow_min_duration_s of prints when
        # the excess stretch spans it and passes the capped tests by itself (a program of
        # ordinary-sized child orders ramping up: dev4 seed 468, a 7x program of 17 child orders
        # over 5.2 s whose first two seconds ran at 1.6x / 2.5x the trailing rate, re-cut to 3.3 s
        # of prints and dropped as one cluster, capped z 12.5; a burst of size-tail orders stays
        # one cluster: dev 161-400 seed 314, 42 background prints over 4.5 s at 10x, capped z 5.5),
        # or passes the plain tests with its volume still >= flow_recut_trim x the trailing rate
        # without its flow_trim_n largest orders (a program of a few large child orders whose
        # biggest seconds set the pace: dev6 seed 1300; seed 314's burst keeps 2.2x)
        if b2 > a2 and (_print_span(sc, a2, b2) >= p.flow_min_duration_s
                        or _print_span(sc, sa, sb) < p.flow_min_duration_s
                        or not (_passes(v, sc, sa, sb, bi, p, plain=False) or _recut_plain(v, sc, sa, sb, bi, p))):
            sa, sb = a2, b2
    Q = int(p.flow_quiet_s)
    if sb - sa > 2 * Q:
        # a quiet stretch inside (Q seconds without any excess over the trailing rate): two
        # episodes bridged by the excess sum; split at its middle and search both halves
        c = np.concatenate([[0.0], np.cumsum(v[sa:sb])])
        quiet = np.nonzero(c[Q:] - c[:-Q] <= Q * mu)[0]
        if quiet.size:
            d = np.diff(quiet)
            runs = np.split(quiet, np.nonzero(d > 1)[0] + 1)
            r = max(runs, key=len)
            mid = sa + int(r[len(r) // 2]) + Q // 2
            return (_program_segments(v, sc, lo, mid, p, depth + 1)
                    + _program_segments(v, sc, mid, hi, p, depth + 1))
    if not _passes(v, sc, sa, sb, bi, p):
        # the excess segment may carry a long tail of ordinary flow after a short program:
        # cut at rising levels (flow_tighten_x per step) and keep the first core that passes;
        # then the same on the capped volume over the excess stretch before the re-cut (a lone
        # big order beside a program of ordinary ones is the raw volume's largest excess at every
        # level and sets the raw pace, never the program's core)
        core = None
        muc = float(sc["base_mu_c"][bi])
        # (a core found on the capped volume must pass on the capped tests: the re-cut's
        # narrowing is what keeps a few seconds of size-tail orders from the plain ones)
        for vv, m0, (ca, cb), plain in ((v, mu, (sa, sb), True), (sc["vc"], muc, (xa, xb), False)):
            lvl = p.flow_excess_k * m0
            for _ in range(p.flow_tighten_steps):
                lvl *= p.flow_tighten_x
                a2, b2 = _max_excess(vv, ca, cb, lvl)
                if b2 - a2 >= 2 and _passes(v, sc, a2, b2, bi, p, plain):
                    core = (a2, b2)
                    break
            if core or not muc > 0:
                break
        if core is None:
            # the stretch's largest excess is not a program, but the windows that flagged the
            # stretch may lie beside it (in the pad: dev5 seed 767, a 5.7 s sell program of 704
            # child orders at count z 217 beside 9 s of ordinary flow 25 s later): search the
            # sides that hold flagged seconds
            cov = sc.get("cover")
            if cov is None:
                return []
            lo_a, hi_b = min(xa, sa), max(xb, sb)
            return ((_program_segments(v, sc, lo, lo_a, p, depth + 1) if cov[lo:lo_a].any() else [])
                    + (_program_segments(v, sc, hi_b, hi, p, depth + 1) if cov[hi_b:hi].any() else []))
        sa, sb = core
    return (_program_segments(v, sc, lo, sa, p, depth + 1) + [(sa, sb)]
            + _program_segments(v, sc, sb, hi, p, depth + 1))



def _recut_plain(v: np.ndarray, sc: dict, sa: int, sb: int, bi: int, p: DetectParams) -> bool:
    """Seconds [sa, sb) pass the plain program tests (:func:`_passes`) and keep >=
    ``flow_recut_trim`` x the trailing rate without their ``flow_trim_n`` largest orders
    (0: off)."""
    if not p.flow_recut_trim > 0:
        return False
    mu = float(sc["base_mu"][bi])
    return _trimmed(sc, sa, sb, p) >= p.flow_recut_trim * (sb - sa) * mu and _passes(v, sc, sa, sb, bi, p)



def _print_span(sc: dict, sa: int, sb: int) -> float:
    """Seconds from the first to the last taker order inside seconds [sa, sb) (0 without two)."""
    oi, ots = sc["oi"], sc["ots"]
    i, j = np.searchsorted(oi, sa, side="left"), np.searchsorted(oi, sb, side="left")
    return float(ots[j - 1] - ots[i]) / NS_PER_S if j - i >= 2 else 0.0


def _cover(flag: np.ndarray, hit: np.ndarray, W: int) -> None:
    """Mark in difference array ``flag`` the seconds of every ``W``-second window ending where
    ``hit`` holds (``np.cumsum(flag[:-1]) > 0``: the seconds covered)."""
    ends = np.nonzero(hit)[0]
    np.add.at(flag, np.maximum(ends - W + 1, 0), 1)
    np.add.at(flag, ends + 1, -1)


def _trimmed(sc: dict, sa: int, sb: int, p: DetectParams) -> float:
    """The volume of seconds [sa, sb) without its ``flow_trim_n`` largest taker orders."""
    oi = sc["oi"]
    sz = sc["osz"][np.searchsorted(oi, sa, side="left"):np.searchsorted(oi, sb, side="left")]
    if sz.size <= p.flow_trim_n:
        return 0.0
    return float(sz.sum() - np.sort(sz)[sz.size - p.flow_trim_n:].sum()) if p.flow_trim_n > 0 else float(sz.sum())


def _count_z(sc: dict, sa: int, sb: int, bi: int, p: DetectParams) -> float:
    """Count z of seconds [sa, sb) (no longer than ``flow_count_max_s``, flagged by a count
    window) against the side's count rate ending at ``bi``; NaN otherwise."""
    cover = sc.get("count_cover")
    if sb - sa > p.flow_count_max_s or cover is None or not cover[sa:sb].any():
        return float("nan")
    mun, varn = float(sc["base_mu_n"][bi]), float(sc["base_var_n"][bi])
    if not varn > 0:
        return float("nan")
    return (float(sc["cn"][sb] - sc["cn"][sa]) - (sb - sa) * mun) / math.sqrt((sb - sa) * varn)


def _passes(v: np.ndarray, sc: dict, sa: int, sb: int, bi: int, p: DetectParams, plain: bool = True) -> bool:
    """Seconds [sa, sb) pass the program tests against the baseline ending at ``bi``: ratio >=
    ``flow_min_ratio`` and either the plain volume test (not with ``plain`` False) or a capped one.

    Plain: z >= ``flow_min_z`` with the volume still >= ``flow_min_ratio`` x the rate without its
    ``flow_trim_n`` largest orders (not a handful of size-tail orders, :func:`_trimmed`) and,
    under ``flow_short_s``, z >= ``flow_short_z`` or capped z >= ``flow_short_zc`` (a few seconds
    of size-tail orders score a plain z of 6-8 but cap low); no second above
    ``flow_max_top_share`` of the volume, unless (``flow_rest_sustained``) the volume of the other
    seconds passes the ratio and z tests by itself (a program of a few large child orders whose
    biggest second happens to hold half of it, not one cluster on ordinary flow).

    Capped: capped z >= ``flow_min_zc`` (raised on a short history), or capped z >=
    ``flow_ero_zc`` with the erosion of :func:`_eroded`, or (no longer than ``flow_mid_max_s``:
    a long stretch around a short program passes on its own bars) capped z >= ``flow_mid_zc``
    where a ``flow_mid_min_s``-``flow_mid_max_s`` window flagged it on that bar, or likewise capped
    z >= ``flow_fast_zc`` where a window shorter than ``flow_mid_min_s`` flagged it, or (up to
    ``flow_count_max_s``) an order count >= ``flow_count_z`` sigma above the side's count rate
    (:func:`_count_z`: a program of many ordinary prints); no second above
    ``flow_max_top_share`` of the *capped* volume (the test judged the capped volume: one
    ordinary big order inside a program of small ones does not make it one cluster)."""
    mu, var = float(sc["base_mu"][bi]), float(sc["base_var"][bi])
    vol, dur = float(v[sa:sb].sum()), float(sb - sa)
    if not vol >= p.flow_min_ratio * dur * mu:
        return False
    short = math.sqrt(max(1.0, p.flow_full_history_s / max(float(sc["base_n"][bi]), 1.0)))
    muc, varc = float(sc["base_mu_c"][bi]), float(sc["base_var_c"][bi])
    volc = float(sc["vc"][sa:sb].sum())
    zc = (volc - dur * muc) / math.sqrt(dur * varc) if varc > 0 else float("nan")
    z = (vol - dur * mu) / math.sqrt(dur * var)
    mid = sc.get("mid_cover")
    fast = sc.get("fast_cover")
    capped = (zc >= p.flow_min_zc * short
              or (zc >= p.flow_ero_zc * short and _eroded(sc.get("book"), sa, sb, p))
              or (zc >= p.flow_mid_zc * short and dur <= p.flow_mid_max_s and mid is not None and bool(mid[sa:sb].any()))
              or (zc >= p.flow_fast_zc * short and dur <= p.flow_mid_max_s and fast is not None and bool(fast[sa:sb].any()))
              or _count_z(sc, sa, sb, bi, p) >= p.flow_count_z * short)
    if capped and float(sc["vc"][sa:sb].max()) <= p.flow_max_top_share * volc:
        return True
    if not plain or not (z >= p.flow_min_z * short and _trimmed(sc, sa, sb, p) >= p.flow_min_ratio * dur * mu
            and (dur >= p.flow_short_s or z >= p.flow_short_z * short or zc >= p.flow_short_zc * short)):
        return capped and _rest_sustained(v, sa, sb, vol, dur, mu, var, short, p)
    return _rest_sustained(v, sa, sb, vol, dur, mu, var, short, p)


def _rest_sustained(v: np.ndarray, sa: int, sb: int, vol: float, dur: float, mu: float, var: float,
                    short: float, p: DetectParams) -> bool:
    """No second of [sa, sb) holds more than ``flow_max_top_share`` of its volume ``vol``, or
    (``flow_rest_sustained``) the volume of the other seconds passes the ratio and z tests by itself."""
    top = float(v[sa:sb].max())
    if top <= p.flow_max_top_share * vol:
        return True
    rest = vol - top
    return bool(p.flow_rest_sustained and rest >= p.flow_min_ratio * dur * mu
                and (rest - dur * mu) / math.sqrt(dur * var) >= p.flow_min_z * short)


def _program_before(ctx: Context, fw: dict, ts: int, p: DetectParams) -> bool:
    """Is the part of a program before ``ts`` a program on its own (ratio and z against the
    episode's trailing baseline, at least ``flow_min_duration_s`` long)? A stretch of ordinary
    flow that only passed the test with the cascade after a withdrawal is not."""
    mu, var = fw.get("baseline_rate") or 0.0, fw.get("baseline_var") or 0.0
    dur = (ts - fw["start"]) / NS_PER_S
    if dur < p.flow_min_duration_s or not (mu > 0 and var > 0):
        return False
    vol = float(ctx.trades.filter((pl.col("aggressor") == fw["aggressor"]) & (pl.col("ts") >= fw["start"])
                                  & (pl.col("ts") < ts))["size"].sum() or 0)
    return vol >= p.flow_min_ratio * dur * mu and (vol - dur * mu) / math.sqrt(dur * var) >= p.flow_min_z



def _volume_share_before(ctx: Context, fw: dict, ts: int) -> float:
    """Share of a program's volume (its aggressor's prints in [start, end]) before ``ts``."""
    t = ctx.trades.filter((pl.col("aggressor") == fw["aggressor"]) & (pl.col("ts") >= fw["start"])
                          & (pl.col("ts") <= fw["end"]))
    tot = float(t["size"].sum() or 0)
    return float(t.filter(pl.col("ts") < ts)["size"].sum() or 0) / tot if tot > 0 else 0.0
