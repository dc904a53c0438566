"""Ingest throughput of the websocket-capture venue readers (Bybit, OKX, Coinbase, Kraken,
Hyperliquid), and the checksum verification on the shared real recordings.

Generates a synthetic session per venue (a snapshot, then update messages of 1-4 levels,
gzipped JSON lines in the venue's own shape), ingests it into a temp store and prints level
rows/s. Then ingests each ``../shared/data/venues/*.jsonl.zst`` present and prints its summary
notes (checksums matched). Figures only: no assertions.

    .venv/bin/python benchmarks/bench_venues.py                 # 200k update messages each
    .venv/bin/python benchmarks/bench_venues.py --messages 50000
"""
from __future__ import annotations

import argparse
import gzip
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forensics.ingest import ingest  # noqa: E402


def session(n: int, seed: int = 1):
    rnd = random.Random(seed)
    snap = [("bid", f"{60000 - k}.5", "1.000") for k in range(1, 51)] + \
           [("ask", f"{60000 + k}.5", "1.000") for k in range(1, 51)]
    msgs = []
    for _ in range(n):
        lv = []
        for _ in range(rnd.randint(1, 4)):
            side = rnd.choice(("bid", "ask"))
            k = rnd.randint(1, 60)
            p = f"{60000 - k if side == 'bid' else 60000 + k}.5"
            lv.append((side, p, "0" if rnd.random() < 0.3 else f"{rnd.randint(1, 9999) / 1000:.3f}"))
        msgs.append(lv)
    return snap, msgs


def bybit(snap, msgs):
    def m(kind, u, lv):
        return {"topic": "orderbook.500.BTCUSDT", "type": kind, "ts": 1_760_000_000_000 + u, "cts": 1_760_000_000_000 + u,
                "data": {"s": "BTCUSDT", "b": [[p, q] for s, p, q in lv if s == "bid"],
                         "a": [[p, q] for s, p, q in lv if s == "ask"], "u": u, "seq": u}}
    yield m("snapshot", 1, snap)
    for i, lv in enumerate(msgs):
        yield m("delta", i + 2, lv)


def okx(snap, msgs):
    def m(kind, i, lv):
        return {"arg": {"channel": "books-l2-tbt", "instId": "BTC-USDT"}, "action": kind,
                "data": [{"asks": [[p, q, "0", "1"] for s, p, q in lv if s == "ask"],
                          "bids": [[p, q, "0", "1"] for s, p, q in lv if s == "bid"], "ts": str(1_760_000_000_000 + i),
                          "checksum": 0, "prevSeqId": -1 if kind == "snapshot" else i - 1, "seqId": i}]}
    yield m("snapshot", 1, snap)
    for i, lv in enumerate(msgs):
        yield m("update", i + 2, lv)


def coinbase(snap, msgs):
    def m(kind, i, lv):
        t = f"2025-10-10T21:{(i // 1000) % 60:02d}:{(i // 10) % 60:02d}.{i % 10}00000Z"
        return {"channel": "l2_data", "timestamp": t, "sequence_num": i, "events": [{
            "type": kind, "product_id": "BTC-USD", "updates": [
                {"side": "bid" if s == "bid" else "offer", "event_time": t, "price_level": p, "new_quantity": q}
                for s, p, q in lv]}]}
    yield m("snapshot", 0, snap)
    for i, lv in enumerate(msgs):
        yield m("update", i + 1, lv)


def kraken(snap, msgs):
    yield [1, {"as": [[p, q, "1760000000.000001"] for s, p, q in snap if s == "ask"],
               "bs": [[p, q, "1760000000.000001"] for s, p, q in snap if s == "bid"]}, "book-100", "XBT/USD"]
    for i, lv in enumerate(msgs):
        t = f"{1760000000 + i // 1000}.{i % 1000:06d}"
        body = [d for d in ({"a": [[p, q, t] for s, p, q in lv if s == "ask"]},
                            {"b": [[p, q, t] for s, p, q in lv if s == "bid"]}) if next(iter(d.values()))]
        yield [1, *body, "book-100", "XBT/USD"]


def hyperliquid(snap, msgs):
    book = {"bid": {}, "ask": {}}
    for s, p, q in snap:
        book[s][p] = q
    for i, lv in enumerate(msgs):
        for s, p, q in lv:
            if q == "0":
                book[s].pop(p, None)
            else:
                book[s][p] = q
        b = sorted(book["bid"], key=float, reverse=True)[:20]
        a = sorted(book["ask"], key=float)[:20]
        yield {"channel": "l2Book", "data": {"coin": "BTC", "time": 1_760_000_000_000 + 500 * i, "levels": [
            [{"px": p, "sz": book["bid"][p], "n": 1} for p in b], [{"px": p, "sz": book["ask"][p], "n": 1} for p in a]]}}


VENUES = {"bybit": bybit, "okx": okx, "coinbase": coinbase, "kraken": kraken, "hyperliquid": hyperliquid}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    ap.add_argument("--venues", default=",".join(VENUES), help="comma-separated subset")
    a = ap.parse_args()
    snap, msgs = session(a.messages)
    with tempfile.TemporaryDirectory() as d:
        for name in a.venues.split(","):
            gen = VENUES[name]
            p = Path(d) / f"{name}.jsonl.gz"
            p.write_bytes(gzip.compress(b"".join(orjson.dumps(m) + b"\n" for m in gen(snap, msgs)), 1))
            t = time.perf_counter()
            (r,) = ingest([p], store=Path(d) / f"store-{name}")
            s = time.perf_counter() - t
            n = r.rows.get("book_updates", 0)
            print(f"{name:12s} {a.messages:,} messages -> {n:,} level rows in {s:.2f} s: {n / s:,.0f} level rows/s, "
                  f"{a.messages / s:,.0f} messages/s")
        venues = Path(a.shared) / "data" / "venues"
        for p in sorted(venues.glob("*.jsonl.zst")) if venues.is_dir() else []:
            t = time.perf_counter()
            (r,) = ingest([p], store=Path(d) / f"real-{p.stem}")
            print(f"{p.name:22s} {r.total_rows:,} rows, {r.gaps} gaps, {r.rejected} rejected in "
                  f"{time.perf_counter() - t:.2f} s; " + "; ".join(r.notes))


if __name__ == "__main__":
    main()
