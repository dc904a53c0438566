"""Bybit v5: historical ``ob500``/``ob200`` ``.data.zip`` dumps and websocket captures of
``orderbook.{1,50,200,500}.<SYMBOL>`` and ``publicTrade.<SYMBOL>`` -> book_updates, trades, gaps.

The historical dump (``2024-12-01_XRPUSDT_ob500.data.zip`` from Bybit's download page) is
JSON lines of the same ``snapshot``/``delta`` messages the websocket sends; a capture may be
raw JSON lines, ``<receive ns> <json>`` collector lines or the recording wrapper (see
:mod:`forensics.ingest.wsjson`), plain, gzip, zip or zstd.

Traps:

* **Restart is not a gap.** ``type: snapshot`` (or ``u == 1``: Bybit's service restarted and
  re-sent the book) replaces the book; it closes an open gap and never opens one.
* **``u`` chain.** Each delta's ``u`` is the previous message's ``u + 1`` per topic; anything
  else is a gap (reason ``chain_break``; the book is unknown until the next snapshot; rows after
  the break are stored). ``seq`` (the cross sequence of the matching engine) is cross-checked:
  a delta whose ``seq`` is not above the previous one is a gap (reason ``seq``).
* **Times.** ``cts`` is the matching-engine time of the book change, ``ts`` the push time
  (later, batched). ``publicTrade`` carries ``T`` (matching-engine time), so ``ts = cts`` (else
  ``ts``) puts book changes on the same clock as the trades that caused them.
* **Aggressor.** ``publicTrade`` ``S`` is the taker side: ``Buy`` hit the asks
  (``aggressor='buy'``). Block trades (``BT: true``) did not trade against the book: dropped.
* **Depth-limited view.** ``orderbook.N`` is the top N levels; Bybit sends a delete when a
  level leaves the view (checked on the real recording: never more than N levels), and the
  reader also truncates its book to N after every delta and writes a size-0 row for any level
  beyond N, so a level leaving the window reads as ``truncation`` in attribution (rank >= N,
  unmatched), never as a cancel by a maker.
* **Market.** The endpoint decides: ``/v5/public/linear`` -> ``bybit-linear``, ``/spot`` ->
  ``bybit-spot``, ``/inverse`` -> ``bybit-inverse``, ``/option`` -> ``bybit-option`` (the
  recording wrapper's ``addr``). Without it (raw lines, historical dumps): symbols like
  ``BTCUSD`` / ``BTCUSDH25`` are inverse, others linear; ``--exchange bybit-spot`` for spot
  dumps (the same symbol exists on both). Linear sizes are base coin, inverse sizes contracts
  of 1 USD: venue units are kept.
* ``tickers``, ``kline``, liquidations, subscription replies are ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from forensics.ingest.normalise import Chunk, Format, ReadOptions
from forensics.ingest.seqchain import SeqChain
from forensics.ingest.source import Source
from forensics.ingest.wsjson import (LevelBook, Rows, apply_update, entries, level_pair, messages, ms_ns, line_sniffer,
                                     write_snapshot)

INVERSE = re.compile(r"^[A-Z0-9]+USD([A-Z]\d{2})?$")
_MARKETS = (("/linear", "bybit-linear"), ("/spot", "bybit-spot"), ("/inverse", "bybit-inverse"),
            ("/option", "bybit-option"))


def market(addr: str | None, symbol: str) -> str:
    for part, name in _MARKETS:
        if addr and part in addr:
            return name
    return "bybit-inverse" if INVERSE.match(symbol) else "bybit-linear"


@dataclass
class _State:
    book: LevelBook = field(default_factory=LevelBook)
    last_seq: int | None = None  # cross sequence of the last delta (the u chain is in SeqChain)


def read(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    state: dict[tuple[str, str], _State] = {}
    chain = SeqChain()
    rows = Rows(opts)
    for msgs, rejects, n in messages(src):
        for m in msgs:
            j = m.data
            if m.kind != "recv" or not isinstance(j, dict):
                continue
            topic = j.get("topic")
            if not isinstance(topic, str):
                continue
            if topic.startswith("orderbook."):
                _book(j, topic, m, state, chain, rows)
            elif topic.startswith("publicTrade.") or topic.startswith("trade."):
                _trades(j, m, rows)
        yield rows.chunk(rejects, n, chain.drain())
    yield rows.chunk([], 0, chain.drain(eof=True))


def _book(j: dict, topic: str, m, state, chain: SeqChain, rows: Rows) -> None:
    d = j.get("data")
    kind = j.get("type")
    if not isinstance(d, dict) or kind not in ("snapshot", "delta") or not isinstance(d.get("u"), int):
        rows.reject(m.line, "Bybit orderbook message without type snapshot/delta and data.u")
        return
    parts = topic.split(".")
    depth = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
    sym = d.get("s") or (parts[-1] if len(parts) == 3 else None)
    ts = ms_ns(j.get("cts") if j.get("cts") is not None else j.get("ts"))
    if not sym or ts is None:
        rows.reject(m.line, "Bybit orderbook message without symbol or time (cts/ts)")
        return
    levels = []
    for side, k in (("bid", "b"), ("ask", "a")):
        for lv in d.get(k) or []:
            p = level_pair(lv, m.line, rows, "Bybit orderbook")
            if p is None:
                return
            levels.append((side, p[0], p[1]))
    key = (market(m.addr, sym), sym)
    st = state.setdefault(key, _State())
    cs = chain.st(key)
    u, seq = d["u"], d.get("seq")
    snap = kind == "snapshot" or u == 1
    if snap:
        first = rows.next_arrival(m.line)
        write_snapshot(st.book, levels, depth,
                       lambda side, p, q: rows.level(*key, ts, m.local_ts, side, p, q, m.line, snap=True, uid=u))
        chain.restart(key, ts, first)
    else:
        arr = rows.next_arrival(m.line)
        last_u = cs.last_id
        if chain.no_snapshot(key, ts, arr, "Bybit deltas before any snapshot: book unknown"):
            pass
        elif last_u is not None and u != last_u + 1:
            chain.chain_break(key, arr, f"u={u} after u={last_u} (expected {last_u + 1}): updates missing")
        elif seq is not None and st.last_seq is not None and seq <= st.last_seq:
            chain.chain_break(key, arr, f"seq={seq} not above the previous seq={st.last_seq} (u={u})", reason="sequence")
        # the N-level view: a level pushed beyond N has left it (a size-0 row: truncation)
        apply_update(st.book, levels, depth,
                     lambda side, p, q: rows.level(*key, ts, m.local_ts, side, p, q, m.line, uid=u, prev=last_u))
    chain.advance(key, u, ts)
    st.last_seq = seq if seq is not None else st.last_seq


def _trades(j: dict, m, rows: Rows) -> None:
    for t in entries(j.get("data"), m.line, rows, "Bybit publicTrade"):
        if t.get("BT"):
            rows.dropped += 1  # block trade: not against the book
            continue
        sym = t.get("s")
        side = t.get("S")
        agg = {"Buy": "buy", "Sell": "sell"}.get(side, str(side))
        rows.trade(market(m.addr, sym or ""), sym, ms_ns(t.get("T")), m.local_ts, t.get("i"), t.get("p"),
                   t.get("v"), agg, m.line)


# The venue's declaration for the registry (pattern, sniff, FORMATS): the same few lines in every
# websocket venue module on purpose, as the reader contract asks (README "Writing a reader");
# `duplicates` lists them as pairs.
_PAT = re.compile(rb'\\?"topic\\?"\s*:\s*\\?"(orderbook\.\d+|publicTrade|trade\.(linear|spot|inverse|option))\.')


sniff = line_sniffer(_PAT, b"BYBIT")


FORMATS = [
    Format("bybit", "Bybit v5 orderbook.{1,50,200,500} snapshot/delta + publicTrade: historical ob500/ob200 "
           ".data.zip, ws JSON lines, '<receive ns> <json>' or recording wrapper (.jsonl.zst). Traps: u==1 or "
           "snapshot restarts (not a gap), u chain + seq cross-check, ts=cts (matching engine, = trade T), "
           "S=taker side, depth-limited view (truncation)", sniff, read),
]
