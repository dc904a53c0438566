"""The simulator's market in another venue's format: its written Binance capture -> an OKX v5
``books-l2-tbt`` + ``trades`` websocket capture, so the accuracy evaluation also runs through a
non-Binance reader (:mod:`forensics.ingest.okx`).

Works on the simulator's *output files* (``BTCUSDT-depth-capture-<date>.jsonl.gz`` and its
``labels.json`` / ``truth_level_decreases.parquet``), not on its internals, so it does not care
how :mod:`forensics.sim` builds the market. The conversion is what a Binance->OKX
recorder swap would see of the same market:

* Binance's sync rules are applied here (the late REST snapshot lands before the first event
  with ``u >= lastUpdateId``; older events are dropped): OKX sends its snapshot first;
* ``seqId`` = Binance ``u``, ``prevSeqId`` = Binance ``pu`` (the snapshot's ``lastUpdateId``
  for the straddling event, ``-1`` on the snapshot): a broken Binance chain stays a broken
  OKX chain, and the truth table (keyed by Binance update id) joins on ``update_id`` as before;
* every message carries the CRC32 ``checksum`` of the converted book (so the OKX reader's
  checksum verification runs on the whole session);
* ``ts`` = Binance ``T`` (ms), the collector receive time prefix is kept;
* aggTrades -> OKX trades, ``side`` = taker (``m`` true -> ``sell``);
* ``BTCUSDT`` -> ``BTC-USDT-SWAP`` (exchange ``okx-swap``); sizes stay in the simulator's units.

Python::

    from forensics.sim.venues import to_okx, run_one_venue
    to_okx("sim/BTCUSDT-depth-capture-2025-10-10.jsonl.gz", "sim/okx-BTC-USDT-SWAP.jsonl.gz")
    res = run_one_venue(seed=1, workdir="/tmp/eval")  # forensics.sim.evaluate.run_one, via OKX

Command line: ``python -m forensics.sim.venues CAPTURE OUT``.
"""
from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import orjson
import polars as pl

from forensics.errors import ForensicsError
from forensics.ingest.okx import checksum
from forensics.ingest.wsjson import LevelBook

QUOTES = ("USDT", "USDC", "BUSD", "USD")


def okx_inst(symbol: str) -> str:
    """``BTCUSDT`` -> ``BTC-USDT-SWAP`` (a USD-M perpetual's OKX name)."""
    for q in QUOTES:
        if symbol.endswith(q) and len(symbol) > len(q):
            return f"{symbol[:-len(q)]}-{q}-SWAP"
    raise ForensicsError(f"cannot name {symbol!r} on OKX (expected a symbol ending in {', '.join(QUOTES)})")


def _read(capture: Path) -> list[tuple[int | None, dict]]:
    out = []
    opener = gzip.open if capture.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(capture, "rb") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            local = None
            if raw[:1] != b"{":
                head, _, raw = raw.partition(b" ")
                local = int(head)
            obj = orjson.loads(raw)
            out.append((local, obj.get("data", obj) if isinstance(obj.get("data"), dict) else obj))
    return out


def to_okx(capture: str | Path, out: str | Path, symbol: str | None = None) -> dict:
    """Convert a simulator (Binance futures) capture to an OKX capture (gzip when ``out`` ends
    in .gz). Returns counts: messages, trades, snapshots, dropped (events before sync)."""
    capture, out = Path(capture), Path(out)
    recs = _read(capture)
    depth_idx = [i for i, (_, o) in enumerate(recs) if o.get("e") == "depthUpdate"]
    snaps = [i for i, (_, o) in enumerate(recs) if "lastUpdateId" in o]
    sym = symbol or next((o.get("s") for _, o in recs if o.get("s")), None)
    if not sym:
        raise ForensicsError(f"{capture}: no symbol in the capture; pass symbol=")
    inst = okx_inst(sym)
    # where each snapshot lands: before the first event (from the previous landing on) with u >= L
    land: dict[int, int] = {}  # event index -> snapshot index
    k = 0
    for si in snaps:
        L = recs[si][1]["lastUpdateId"]
        while k < len(depth_idx) and recs[depth_idx[k]][1]["u"] < L:
            k += 1
        if k < len(depth_idx):
            land[depth_idx[k]] = si  # a later snapshot at the same place supersedes
    book = LevelBook()
    lines: list[bytes] = []
    synced = False
    stats = {"messages": 0, "trades": 0, "snapshots": 0, "dropped": 0}
    arg_b = {"channel": "books-l2-tbt", "instId": inst}
    arg_t = {"channel": "trades", "instId": inst}

    def emit(local, obj):
        lines.append((f"{local} ".encode() if local is not None else b"") + orjson.dumps(obj))

    for i, (local, o) in enumerate(recs):
        e = o.get("e")
        if e == "depthUpdate":
            prev = o.get("pu")
            if i in land:
                s = recs[land[i]][1]
                book.clear()
                for side, key in (("bid", "bids"), ("ask", "asks")):
                    for p, q in s[key]:
                        book.set(side, p, q)
                ts = min(s.get("T") or s.get("E") or o["T"], o["T"])
                emit(local, {"arg": arg_b, "action": "snapshot", "data": [{
                    "asks": [[p, q, "0", "1"] for p, q in s["asks"]], "bids": [[p, q, "0", "1"] for p, q in s["bids"]],
                    "ts": str(ts), "checksum": checksum(book), "prevSeqId": -1, "seqId": s["lastUpdateId"]}]})
                stats["snapshots"] += 1
                synced = True
                if o["U"] <= s["lastUpdateId"] <= o["u"]:
                    prev = s["lastUpdateId"]
            if not synced:
                stats["dropped"] += 1
                continue
            for side, key in (("bid", "b"), ("ask", "a")):
                for p, q in o[key]:
                    book.set(side, p, q)
            emit(local, {"arg": arg_b, "action": "update", "data": [{
                "asks": [[p, q, "0", "1"] for p, q in o["a"]], "bids": [[p, q, "0", "1"] for p, q in o["b"]],
                "ts": str(o.get("T") or o["E"]), "checksum": checksum(book), "prevSeqId": prev, "seqId": o["u"]}]})
            stats["messages"] += 1
        elif e in ("aggTrade", "trade"):
            emit(local, {"arg": arg_t, "data": [{
                "instId": inst, "tradeId": str(o.get("a", o.get("t"))), "px": o["p"], "sz": o["q"],
                "side": "sell" if o["m"] else "buy", "ts": str(o.get("T") or o["E"])}]})
            stats["trades"] += 1
    data = b"\n".join(lines) + b"\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("." + out.name + ".tmp")
    tmp.write_bytes(gzip.compress(data) if out.name.endswith(".gz") else data)
    tmp.replace(out)
    stats["instrument"] = ("okx-swap", inst)
    return stats


def run_one_venue(seed: int, workdir: str | Path, venue: str = "okx", types=None, spacing_s: float = 180.0,
                  params=None, keep: bool = False, vary: bool = False):
    """:func:`forensics.sim.evaluate.run_one` with the capture converted to ``venue`` first, so
    ingest goes through that venue's reader; scored against the same truth."""
    from forensics import sim as S
    from forensics.sim import evaluate as E
    from forensics.detect import DetectParams, detect
    from forensics.ingest import ingest
    from forensics.store import Store
    if venue != "okx":
        raise ForensicsError(f"simulated venue {venue!r} not supported (okx)")
    types = types or E.TYPES
    params = params or DetectParams()
    specs, minutes = E.scenario(seed, types, spacing_s)
    run_dir = Path(workdir) / f"seed{seed}-{venue}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    cfg = S.build_config(seed=seed, minutes=minutes, incidents=specs, **(E.market_overrides(seed) if vary else {}))
    res = S.simulate(cfg, run_dir / "sim")
    conv = to_okx(res.files["capture"], run_dir / "sim" / f"okx-{okx_inst(res.labels['symbol'])}.jsonl.gz")
    t1 = time.perf_counter()
    store = Store(run_dir / "store")
    (ing,) = ingest([run_dir / "sim" / f"okx-{okx_inst(res.labels['symbol'])}.jsonl.gz"], store=store)
    t2 = time.perf_counter()
    events = detect(store, params=params)
    t3 = time.perf_counter()
    ex, sy = conv["instrument"]
    truth = pl.read_parquet(res.files["truth"])
    rows = E._joined_rows(store, ex, sy, truth)
    matches = E._match(res.labels["incidents"], events)
    exact = float((rows["traded"] == rows["traded_lots"]).mean()) if rows.height else float("nan")
    attribution = {"rows": rows.height, "row_exact": exact, "truth_traded": float(rows["traded_lots"].sum() or 0),
                   "our_traded": float(rows["traded"].sum() or 0), "truth_rows": truth.height,
                   "ingest_notes": ing.notes, "ingest_gaps": ing.gaps, "converted": conv}
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return E.RunResult(seed, res.labels["incidents"], events, matches, attribution,
                       {"simulate": t1 - t0, "ingest": t2 - t1, "detect": t3 - t2})


if __name__ == "__main__":  # python -m forensics.sim.venues CAPTURE OUT
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python -m forensics.sim.venues CAPTURE OUT")
    print(to_okx(sys.argv[1], sys.argv[2]))
