"""Hyperliquid websocket captures: ``l2Book`` and ``trades`` -> book_updates, trades.

Lines: ``{"channel": "l2Book", "data": {...}}`` as the websocket sends them, or the bare
``{"coin", "levels", "time"}`` object (as the REST ``l2Book`` answer and the shared sample),
raw, ``<receive ns> <json>`` collector lines or the recording wrapper, plain/gzip/zip/zstd.

Traps:

* **Every l2Book message is a full snapshot** of at most 20 levels per side (``levels`` =
  ``[bids, asks]``, each ``{"px", "sz", "n"}``; ``n`` = number of orders, not stored). The
  first message per coin is written as a snapshot; every later one is *diffed* against the
  previous one, so ``book_updates`` holds real level changes (sizes changed, levels added or
  gone) instead of 40 rows per message.
* **The 20-level window.** A level missing from the next snapshot at a price *beyond* that
  snapshot's deepest level on a full (20-level) side left the window because the book moved:
  it is written last in the message (after the in-window changes, so it sits at rank >= 20
  when applied) and attribution calls it ``truncation``, not a cancel. A level missing inside
  the window was really removed (traded or cancelled).
* No sequence numbers: nothing can prove a lost message, so no gaps are derived (a lost
  message only merges two diffs; the next full snapshot is exact).
* **Trades** ``side`` ``B`` / ``A`` is the taker side (``B`` = buyer lifted the asks ->
  ``aggressor='buy'``); ``time`` is ms; ``tid`` the trade id.
* Exchange ``hyperliquid``, symbol the ``coin`` (``BTC``; spot pairs as ``@107`` / ``PURR/USDC``
  with ``/`` written ``-``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from forensics.ingest.normalise import Chunk, Format, ReadOptions
from forensics.ingest.source import Source
from forensics.ingest.wsjson import (LevelBook, Rows, diff_snapshot, entries, is_zero, line_sniffer, messages, ms_ns,
                                     price_key)

EXCHANGE = "hyperliquid"
WINDOW = 20
AGGRESSOR = {"B": "buy", "A": "sell"}


def _symbol(coin) -> str | None:
    return coin.replace("/", "-") if isinstance(coin, str) and coin else None


@dataclass
class _State:
    book: LevelBook = field(default_factory=LevelBook)
    started: bool = False


def read(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    state: dict[str, _State] = {}
    rows = Rows(opts)
    for msgs, rejects, n in messages(src):
        for m in msgs:
            j = m.data
            if m.kind != "recv" or not isinstance(j, dict):
                continue
            ch = j.get("channel")
            if ch == "l2Book" or (ch is None and "levels" in j and "coin" in j):
                _book(j.get("data") if ch else j, m, state, rows)
            elif ch == "trades":
                _trades(j.get("data"), m, rows)
        yield rows.chunk(rejects, n, [])


def _book(d, m, state, rows: Rows) -> None:
    if not isinstance(d, dict):
        rows.reject(m.line, "Hyperliquid l2Book message without data")
        return
    sym, ts, levels = _symbol(d.get("coin")), ms_ns(d.get("time")), d.get("levels")
    if sym is None or ts is None or not isinstance(levels, list) or len(levels) != 2:
        rows.reject(m.line, "Hyperliquid l2Book needs coin, time and levels [bids, asks]")
        return
    sides = {}
    for side, lv in zip(("bid", "ask"), levels):
        out = []
        for x in lv if isinstance(lv, list) else [None]:
            p, q = (x.get("px"), x.get("sz")) if isinstance(x, dict) else (None, None)
            try:
                if not (isinstance(p, str) and isinstance(q, str)):
                    raise ValueError
                price_key(p)
            except ValueError:
                rows.reject(m.line, f"Hyperliquid l2Book level {str(x)[:60]} needs px and sz decimal strings")
                return
            out.append((p, q))
        sides[side] = out
    st = state.setdefault(sym, _State())
    if not st.started:
        for side in ("bid", "ask"):
            for p, q in sides[side]:
                if not is_zero(q):
                    st.book.set(side, p, q)
                    rows.level(EXCHANGE, sym, ts, m.local_ts, side, p, q, m.line, snap=True)
        st.started = True
        return
    diff_snapshot(st.book, sides, WINDOW,
                  lambda side, p, q: rows.level(EXCHANGE, sym, ts, m.local_ts, side, p, q, m.line))


def _trades(data, m, rows: Rows) -> None:
    for t in entries(data, m.line, rows, "Hyperliquid trades", "Hyperliquid trade"):
        side = t.get("side")
        rows.trade(EXCHANGE, _symbol(t.get("coin")), ms_ns(t.get("time")), m.local_ts, t.get("tid"), t.get("px"),
                   t.get("sz"), AGGRESSOR.get(side, str(side)), m.line)


# The venue's declaration for the registry (pattern, sniff, FORMATS): the same few lines in every
# websocket venue module on purpose, as the reader contract asks (README "Writing a reader");
# `duplicates` lists them as pairs.
_PAT = re.compile(rb'\\?"channel\\?"\s*:\s*\\?"(l2Book|trades)\\?".{0,40}\\?"coin\\?"'
                  rb'|\\?"coin\\?".{0,200}\\?"levels\\?"|\\?"levels\\?".{0,200}\\?"px\\?"')


sniff = line_sniffer(_PAT, b"HYPERLIQUID")


FORMATS = [
    Format("hyperliquid", "Hyperliquid l2Book (full <= 20-level snapshots, diffed) + trades: ws JSON lines, "
           "'<receive ns> <json>' or recording wrapper. Traps: every message a full snapshot (diff "
           "consecutive ones), levels leaving the 20-level window = truncation, trade side B/A = taker, "
           "time ms", sniff, read),
]
