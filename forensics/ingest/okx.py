"""OKX v5 websocket captures: ``books`` / ``books5`` / ``books-l2-tbt`` / ``books50-l2-tbt`` /
``bbo-tbt`` and ``trades`` -> book_updates, trades, gaps.

Lines: raw JSON, ``<receive ns> <json>`` collector lines or the recording wrapper
(:mod:`forensics.ingest.wsjson`), plain, gzip, zip or zstd.

Traps:

* **snapshot / update.** ``action: snapshot`` replaces the book (and closes an open gap: a
  resubscription is not a gap); ``update`` levels are absolute sizes, ``"0"`` deletes.
  ``books5`` and ``bbo-tbt`` carry no ``action``: every message is the full top 5 / top 1,
  diffed against the previous one (levels leaving the window are written last, as
  truncation).
* **seqId chain.** ``prevSeqId`` must equal the previous message's ``seqId`` (``-1`` on a
  snapshot); otherwise a gap (reason ``chain_break``, until the next snapshot). ``seqId ==
  prevSeqId`` is a heartbeat (no change). Older captures have no seqId (e.g. the 2022
  recording in ``shared/data/venues``): then only the checksum guards the book.
* **checksum.** CRC32 (signed 32-bit) of ``bid1px:bid1sz:ask1px:ask1sz:...`` over the top 25
  of each side, using the venue's own strings. OKX is deprecating it: verified only when
  present and non-zero; a mismatch is a gap (reason ``checksum``) until the next snapshot.
  The result (matched / mismatched) is in the ingest notes.
* **Trades.** ``side`` is the taker side (``buy`` lifted the asks).
* **Units.** Spot sizes are base currency; ``-SWAP`` / futures / options sizes are
  **contracts**: venue units are kept and the contract value (``ctVal`` ``ctValCcy``, from the
  recording's own instrument list when it has one) is written to the ingest notes.
* **Market.** ``instId`` decides: ``BTC-USDT-SWAP`` -> ``okx-swap``, ``BTC-USD-220527`` ->
  ``okx-futures``, ``BTC-USD-220527-30000-C`` -> ``okx-option``, ``BTC-USDT`` -> ``okx-spot``.
* **Depth.** The book is truncated to the channel's depth (400 / 50 / 5 / 1) after every
  update; levels pushed out get a size-0 row (truncation, not a cancel).
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Iterator

from forensics.ingest.normalise import Chunk, Format, ReadOptions
from forensics.ingest.seqchain import SeqChain
from forensics.ingest.source import Source
from forensics.ingest.wsjson import (LevelBook, Rows, apply_update, checksum_note, diff_snapshot, entries, level_pair,
                                     line_sniffer, messages, ms_ns, write_snapshot)

DEPTHS = {"books": 400, "books-l2-tbt": 400, "books50-l2-tbt": 50, "books5": 5, "bbo-tbt": 1,
          "books-elp": 400}
FULL_EACH_TIME = ("books5", "bbo-tbt")  # every message is the whole top-N
CHECKSUM_LEVELS = 25


def market(inst: str) -> str:
    if inst.endswith("-SWAP"):
        return "okx-swap"
    if re.search(r"-\d{6}-[\d.]+-[CP]$", inst):
        return "okx-option"
    if re.search(r"-\d{6}$", inst):
        return "okx-futures"
    return "okx-spot"


def checksum(book: LevelBook) -> int:
    """OKX's CRC32 over the top 25 bids and asks, interleaved, as a signed 32-bit int."""
    bids, asks = book.top("bid", CHECKSUM_LEVELS), book.top("ask", CHECKSUM_LEVELS)
    parts = []
    for i in range(max(len(bids), len(asks))):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    c = zlib.crc32(":".join(parts).encode())
    return c - (1 << 32) if c >= (1 << 31) else c


@dataclass
class _State:
    book: LevelBook = field(default_factory=LevelBook)  # (the seqId chain is in SeqChain)


@dataclass
class _Stats:
    checked: int = 0
    matched: int = 0


def read(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    state: dict[tuple[str, str], _State] = {}
    chain = SeqChain()
    rows = Rows(opts)
    stats = _Stats()
    ct: dict[str, tuple[str, str]] = {}  # instId -> (ctVal, ctValCcy) from the instrument lists
    for msgs, rejects, n in messages(src, keep_http=True):
        for m in msgs:
            j = m.data
            if m.kind == "http":
                _instruments(j, ct)
                continue
            if m.kind != "recv" or not isinstance(j, dict) or "event" in j:
                continue
            arg = j.get("arg") if isinstance(j.get("arg"), dict) else {}
            ch = arg.get("channel")
            if ch in DEPTHS:
                _book(j, ch, arg, m, state, chain, rows, stats)
            elif ch in ("trades", "trades-all"):
                _trades(j, arg, m, rows)
        yield rows.chunk(rejects, n, chain.drain())
    ch = rows.chunk([], 0, chain.drain(eof=True))
    if stats.checked:
        ch.notes.append(checksum_note("OKX", stats.checked, stats.matched))
    for inst in sorted({k[1] for k in state if market(k[1]) != "okx-spot"}):
        val = ct.get(inst)
        ch.notes.append(f"okx {inst}: sizes are contracts" + (f" of {val[0]} {val[1]}" if val else
                                                             " (contract value not in this file)"))
    yield ch


def _instruments(doc, ct: dict) -> None:
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        for d in doc["data"]:
            if isinstance(d, dict) and d.get("instId") and d.get("ctVal"):
                ct[d["instId"]] = (d["ctVal"], d.get("ctValCcy") or "")


def _book(j: dict, ch: str, arg: dict, m, state, chain: SeqChain, rows: Rows, stats: _Stats) -> None:
    inst = arg.get("instId")
    data = j.get("data")
    if not inst or not isinstance(data, list):
        rows.reject(m.line, f"OKX {ch} message without arg.instId or data list")
        return
    action = j.get("action") or ("snapshot" if ch in FULL_EACH_TIME else None)
    if action not in ("snapshot", "update"):
        rows.reject(m.line, f"OKX {ch} message without action snapshot/update")
        return
    depth = DEPTHS[ch]
    key = (market(inst), inst)
    st = state.setdefault(key, _State())
    cs = chain.st(key)
    for d in data:
        if not isinstance(d, dict):
            rows.reject(m.line, f"OKX {ch} data entry is not an object")
            continue
        ts = ms_ns(d.get("ts"))
        if ts is None:
            rows.reject(m.line, f"OKX {ch} entry without ts")
            continue
        levels = {"bid": [], "ask": []}
        bad = False
        for side, k in (("bid", "bids"), ("ask", "asks")):
            for lv in d.get(k) or []:
                p = level_pair(lv, m.line, rows, f"OKX {ch}")
                if p is None:
                    bad = True
                    break
                levels[side].append(p)
            if bad:
                break
        if bad:
            continue
        seq, prev = d.get("seqId"), d.get("prevSeqId")
        uid = seq if isinstance(seq, int) else None
        flat = [(side, p, q) for side in ("bid", "ask") for p, q in levels[side]]

        def snap_row(side, p, q, ts=ts, uid=uid):
            rows.level(*key, ts, m.local_ts, side, p, q, m.line, snap=True, uid=uid)
        if action == "snapshot" and ch in FULL_EACH_TIME:
            first = rows.next_arrival(m.line)
            if not cs.started:  # the first one is written as a snapshot
                write_snapshot(st.book, flat, depth, snap_row)
            else:
                diff_snapshot(st.book, levels, depth,
                              lambda side, p, q: rows.level(*key, ts, m.local_ts, side, p, q, m.line, uid=uid))
            chain.restart(key, ts, first)
        elif action == "snapshot":
            first = rows.next_arrival(m.line)
            write_snapshot(st.book, flat, depth, snap_row)
            chain.restart(key, ts, first)
        else:
            if isinstance(seq, int) and seq == prev and not levels["bid"] and not levels["ask"]:
                chain.advance(key, seq, ts)  # heartbeat: no change
                continue
            arr = rows.next_arrival(m.line)
            if chain.no_snapshot(key, ts, arr, "OKX updates before any snapshot"):
                pass
            elif isinstance(prev, int) and cs.last_id is not None and prev != cs.last_id:
                chain.chain_break(key, arr, f"prevSeqId={prev} != previous seqId={cs.last_id}: updates missing")
            pv = prev if isinstance(prev, int) else None
            apply_update(st.book, flat, depth,
                         lambda side, p, q: rows.level(*key, ts, m.local_ts, side, p, q, m.line, uid=uid, prev=pv))
        cs_venue = d.get("checksum")
        if isinstance(cs_venue, int) and cs_venue != 0 and ch not in FULL_EACH_TIME:
            stats.checked += 1
            mine = checksum(st.book)
            if mine == cs_venue:
                stats.matched += 1
            else:
                chain.chain_break(key, rows.next_arrival(m.line), f"OKX checksum {cs_venue} != {mine} computed "
                                  f"from the rebuilt book (seqId={seq})", reason="checksum", ts_from=ts)
        chain.advance(key, seq if isinstance(seq, int) else cs.last_id, ts)


def _trades(j: dict, arg: dict, m, rows: Rows) -> None:
    for t in entries(j.get("data"), m.line, rows, "OKX trades"):
        inst = t.get("instId") or arg.get("instId")
        rows.trade(market(inst or ""), inst, ms_ns(t.get("ts")), m.local_ts, t.get("tradeId"), t.get("px"),
                   t.get("sz"), t.get("side"), m.line)


# The venue's declaration for the registry (pattern, sniff, FORMATS): the same few lines in every
# websocket venue module on purpose, as the reader contract asks (README "Writing a reader");
# `duplicates` lists them as pairs.
_PAT = re.compile(rb'\\?"channel\\?"\s*:\s*\\?"(books|books5|books-l2-tbt|books50-l2-tbt|bbo-tbt|trades)\\?"'
                  rb'.{0,80}\\?"instId\\?"|\\?"instId\\?".{0,80}\\?"channel\\?"\s*:\s*\\?"(books|trades)')


sniff = line_sniffer(_PAT, b"OKX")


FORMATS = [
    Format("okx", "OKX v5 books/books5/books-l2-tbt/books50-l2-tbt snapshot/update + trades: ws JSON lines, "
           "'<receive ns> <json>' or recording wrapper (.jsonl.zst). Traps: seqId/prevSeqId chain (-1 on "
           "snapshot, seqId==prevSeqId heartbeat), CRC32 checksum (gap 'checksum' on mismatch), side=taker, "
           "derivative sizes in contracts (ctVal noted), depth-limited (truncation)", sniff, read),
]
