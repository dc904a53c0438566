"""Coinbase Advanced Trade websocket captures: ``level2`` (channel ``l2_data``) and
``market_trades`` -> book_updates, trades, gaps.

Lines: raw JSON, ``<receive ns> <json>`` collector lines or the recording wrapper
(:mod:`forensics.ingest.wsjson`), plain, gzip, zip or zstd.

Traps:

* **Maker side in trades.** ``market_trades`` ``side`` is the side of the *maker* (resting)
  order: ``BUY`` prints sit on the bid side of the book (checked on the real recording in
  ``shared/data/venues``: 74 of 78 prints on the side of the rebuilt mid their maker side
  says; the rest arrive after the level they hit was already updated), so the aggressor is the
  opposite: ``BUY`` -> ``aggressor='sell'``, ``SELL`` -> ``'buy'``. (Bybit and OKX report the
  taker side; this is the trap.) The subscription's first ``snapshot`` of recent trades is
  kept (real prints); a trade id already read from this file is not stored twice.
* **Sides and sizes.** ``side`` is ``bid`` / ``offer``; ``new_quantity`` is the new absolute
  size at ``price_level`` (``0`` removes it).
* **sequence_num** counts every message of one websocket *connection* across all its
  channels (heartbeats, ticker, candles too). A skipped number means a lost message: every
  book of that connection is unknown (gap, reason ``sequence``) until its next ``snapshot``.
  A new connection (the recording's ``connect`` line, or numbering starting again) is a
  resubscription: the books of that connection are unknown (reason ``resync``) from the last
  message of the old connection until their new snapshot.
* **Times.** ``event_time`` of each update (matching engine, us or ns precision, ISO text)
  is ``ts``, parsed exactly; the message ``timestamp`` is the push time (used when an update
  has none). A snapshot's rows all take its first update's time (one snapshot block).
* Exchange ``coinbase``, symbol ``product_id`` (``BTC-USD``); sizes base currency.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from forensics.ingest.normalise import Chunk, Format, ReadOptions
from forensics.ingest.source import Source
from forensics.ingest.wsjson import Gaps, Rows, is_zero, iso_ns, line_sniffer, messages, objects, price_key

EXCHANGE = "coinbase"
SIDES = {"bid": "bid", "offer": "ask", "ask": "ask"}
MAKER_TO_AGGRESSOR = {"BUY": "sell", "SELL": "buy"}


@dataclass
class _Book:
    conn: str
    synced: bool = False
    started: bool = False
    last_ts: int | None = None


def read(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    books: dict[tuple[str, str], _Book] = {}
    last_seq: dict[str, int] = {}
    seen_trades: set[tuple[str, str]] = set()
    gaps = Gaps()
    rows = Rows(opts)
    for msgs, rejects, n in messages(src):
        for m in msgs:
            conn = m.conn or "-"
            if m.kind == "connect":
                _resync(books, conn, gaps, rows, m.line, "new connection (resubscribed)")
                last_seq.pop(conn, None)
                continue
            j = m.data
            if not isinstance(j, dict) or "channel" not in j:
                continue
            seq = j.get("sequence_num")
            if isinstance(seq, int):
                prev = last_seq.get(conn)
                if prev is not None and seq <= prev:
                    _resync(books, conn, gaps, rows, m.line, f"sequence_num restarted ({seq} after {prev})")
                elif prev is not None and seq != prev + 1:
                    for key, b in books.items():
                        if b.conn == conn and b.synced:
                            gaps.start(key, "sequence", b.last_ts, rows.next_arrival(m.line),
                                       f"sequence_num {seq} after {prev}: {seq - prev - 1} message(s) of the "
                                       "connection lost")
                            b.synced = False
                last_seq[conn] = seq
            ch = j.get("channel")
            if ch == "l2_data":
                _level2(j, m, conn, books, gaps, rows)
            elif ch == "market_trades":
                _trades(j, m, rows, seen_trades)
        yield rows.chunk(rejects, n, gaps.drain())
    yield rows.chunk([], 0, gaps.drain(eof=True))


def _resync(books, conn: str, gaps: Gaps, rows: Rows, line: int, why: str) -> None:
    for key, b in books.items():
        if b.conn == conn and b.synced:
            gaps.start(key, "resync", b.last_ts, rows.next_arrival(line), why + ": book unknown until its snapshot")
            b.synced = False


def _level2(j: dict, m, conn: str, books, gaps: Gaps, rows: Rows) -> None:
    events = j.get("events")
    if not isinstance(events, list):
        rows.reject(m.line, "Coinbase l2_data message without an events list")
        return
    push_ts = iso_ns(j.get("timestamp"))
    for ev in events:
        if not isinstance(ev, dict) or ev.get("type") not in ("snapshot", "update") or not ev.get("product_id"):
            rows.reject(m.line, "Coinbase l2_data event without type snapshot/update and product_id")
            continue
        ups = ev.get("updates") or []
        parsed = []
        for u in ups:
            side = SIDES.get(u.get("side")) if isinstance(u, dict) else None
            p, q = (u.get("price_level"), u.get("new_quantity")) if isinstance(u, dict) else (None, None)
            ok = side is not None and isinstance(p, str) and isinstance(q, str)
            if ok:
                try:
                    price_key(p)
                except ValueError:
                    ok = False
            if not ok:
                rows.reject(m.line, f"Coinbase level2 update {str(u)[:80]} needs side bid/offer, price_level, "
                                    "new_quantity (decimal strings)")
                parsed = None
                break
            parsed.append((side, p, q, iso_ns(u.get("event_time")) or push_ts))
        if parsed is None:
            continue
        key = (EXCHANGE, ev["product_id"])
        b = books.get(key)
        if b is None or b.conn != conn:
            b = books[key] = _Book(conn, started=b.started if b else False)
        if ev["type"] == "snapshot":
            if not parsed:
                continue
            ts = parsed[0][3]
            first = rows.next_arrival(m.line)
            for side, p, q, _ in parsed:
                if not is_zero(q):
                    rows.level(*key, ts, m.local_ts, side, p, q, m.line, snap=True)
            gaps.close(key, ts, first)
            b.synced = b.started = True
            b.last_ts = ts
        else:
            if not b.started:
                gaps.start(key, "no_snapshot", parsed[0][3] if parsed else push_ts, rows.next_arrival(m.line),
                           "Coinbase level2 updates before any snapshot")
                b.started = True
            for side, p, q, ts in parsed:
                rows.level(*key, ts, m.local_ts, side, p, q, m.line)
                b.last_ts = ts


def _trades(j: dict, m, rows: Rows, seen: set) -> None:
    events = j.get("events")
    if not isinstance(events, list):
        rows.reject(m.line, "Coinbase market_trades message without an events list")
        return
    for ev in events:
        for t in objects((ev.get("trades") or []) if isinstance(ev, dict) else [], m.line, rows,
                         "Coinbase market_trades"):
            tid, sym = t.get("trade_id"), t.get("product_id")
            if tid is not None and (sym, str(tid)) in seen:
                rows.dropped += 1  # re-sent in a later subscription snapshot
                continue
            seen.add((sym, str(tid)))
            side = t.get("side")
            agg = MAKER_TO_AGGRESSOR.get(str(side).upper(), str(side))
            rows.trade(EXCHANGE, sym, iso_ns(t.get("time")), m.local_ts, tid, t.get("price"), t.get("size"),
                       agg, m.line)


# The venue's declaration for the registry (pattern, sniff, FORMATS): the same few lines in every
# websocket venue module on purpose, as the reader contract asks (README "Writing a reader");
# `duplicates` lists them as pairs.
_PAT = re.compile(rb'\\?"channel\\?"\s*:\s*\\?"(l2_data|market_trades)\\?"')


sniff = line_sniffer(_PAT, b"COINBASE")


FORMATS = [
    Format("coinbase", "Coinbase Advanced Trade level2 (l2_data snapshot/update) + market_trades: ws JSON lines, "
           "'<receive ns> <json>' or recording wrapper (.jsonl.zst). Traps: market_trades side is the MAKER "
           "side (aggressor = opposite), side bid/offer, absolute new_quantity, sequence_num per connection "
           "(gaps), exact ISO event_time", sniff, read),
]
