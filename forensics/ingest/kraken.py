"""Kraken spot websocket captures, API v1 (``book-N`` arrays, as in the real recording in
``shared/data/venues``) and v2 (``{"channel": "book"}``), with trades -> book_updates, trades,
gaps.

Lines: raw frames, ``<receive ns> <json>`` collector lines or the recording wrapper
(:mod:`forensics.ingest.wsjson`), plain/gzip/zip/zstd.

Traps:

* **Depth-limited, no deletes for levels pushed out.** A subscription of depth N keeps the top
  N per side, but Kraken does not send a delete when an insert pushes a level beyond N: the
  client must truncate to N after *every* update. The reader does, and writes a size-0 row
  for each level pushed out (it left the window: ``truncation`` in attribution, not a cancel).
  v1 names the depth in the channel (``book-1000``); v2 does not: the snapshot's level count
  (rounded up to Kraken's depths 10/25/100/500/1000) is used.
* **CRC32 checksum** of the top 10 asks (best first) then top 10 bids, each price and size
  with the decimal point removed and leading zeros stripped, concatenated; v1 sends it as
  ``"c"`` (a decimal string) in the update, v2 as ``checksum``. Verified after every update
  that carries one; a mismatch is a gap (reason ``checksum``) until the next snapshot. The
  count of matches is in the ingest notes. v2 sends prices as JSON numbers: they are read as
  their exact text, and formatted at the pair's precision (from an ``instrument`` message in
  the capture, else the most decimals seen in the pair's snapshot); if the first checksum
  after a snapshot does not match under that precision, the pair is reported as not
  verifiable instead of being flagged as a gap everywhere.
* **v1 frames are arrays** ``[channelID, {"as"/"bs" | "a"/"b", "c"}, (second dict), "book-N",
  "PAIR"]``; level ``[price, volume, time(, "r")]`` (``"r"``: a republished update, applied
  like any other). ``time`` is seconds with 6 decimals: a message's ``ts`` is the latest level
  time in it (exact), the snapshot's likewise.
* **Trades** v1 ``[price, volume, time, side, ordertype, misc]``, v2 ``{side, price, qty,
  trade_id, timestamp}``: ``side`` is the taker side (``b``/``buy`` lifted the asks).
* Exchange ``kraken``; symbol the pair with ``/`` written ``-`` (``XBT/USD`` -> ``XBT-USD``: a
  partition directory name cannot hold ``/``).
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Iterator

from forensics.ingest.normalise import Chunk, Format, ReadOptions
from forensics.ingest.source import Source
from forensics.ingest.wsjson import (Gaps, LevelBook, Rows, apply_update, checksum_note, iso_ns, line_sniffer,
                                     loads_exact, messages, price_key, write_snapshot)

EXCHANGE = "kraken"
DEPTHS = (10, 25, 100, 500, 1000)
CHECKSUM_LEVELS = 10
AGGRESSOR = {"b": "buy", "s": "sell", "buy": "buy", "sell": "sell"}


def _symbol(pair) -> str | None:
    return pair.replace("/", "-") if isinstance(pair, str) and pair else None


def sec_ns(text) -> int | None:
    """Kraken level time ``"1618678145.920708"`` (seconds) -> ns, exactly."""
    if not isinstance(text, str):
        return None
    a, _, b = text.partition(".")
    if not a.isdigit() or (b and not b.isdigit()) or len(b) > 9:
        return None
    return int(a) * 1_000_000_000 + int(b.ljust(9, "0") or 0)


def _digits(s: str) -> str:
    return s.replace(".", "").lstrip("0")


def _fmt(s: str, decimals: int | None) -> str:
    """A decimal text at ``decimals`` places (v2 numbers lose trailing zeros in JSON)."""
    if decimals is None:
        return s
    a, _, b = s.partition(".")
    return a + "." + b.ljust(decimals, "0")[:decimals] if decimals else a


def checksum(book: LevelBook, pdec: int | None = None, qdec: int | None = None) -> int:
    parts = []
    for side in ("ask", "bid"):
        for p, q in book.top(side, CHECKSUM_LEVELS):
            parts.append(_digits(_fmt(p, pdec)))
            parts.append(_digits(_fmt(q, qdec)))
    return zlib.crc32("".join(parts).encode())


def _decimals(s: str) -> int:
    return len(s.partition(".")[2])


@dataclass
class _State:
    book: LevelBook = field(default_factory=LevelBook)
    depth: int = 10
    synced: bool = False
    started: bool = False
    last_ts: int | None = None
    pdec: int | None = None       # v2: price / qty precision for the checksum
    qdec: int | None = None
    verifiable: bool | None = None  # v2: None until the first checksum after a snapshot


@dataclass
class _Stats:
    checked: int = 0
    matched: int = 0
    unverifiable: set = field(default_factory=set)


def read(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    state: dict[str, _State] = {}
    precision: dict[str, tuple[int, int]] = {}  # v2 instrument channel
    gaps, rows, stats = Gaps(), Rows(opts), _Stats()
    for msgs, rejects, n in messages(src, loads=loads_exact):
        for m in msgs:
            j = m.data
            if m.kind != "recv":
                continue
            if isinstance(j, list):
                _v1(j, m, state, gaps, rows, stats)
            elif isinstance(j, dict):
                ch = j.get("channel")
                if ch == "book":
                    _v2_book(j, m, state, precision, gaps, rows, stats)
                elif ch == "trade":
                    _v2_trades(j, m, rows)
                elif ch == "instrument":
                    for p in (j.get("data") or {}).get("pairs") or []:
                        if isinstance(p, dict) and p.get("symbol"):
                            precision[_symbol(p["symbol"])] = (int(p.get("price_precision", 0)),
                                                               int(p.get("qty_precision", 0)))
        yield rows.chunk(rejects, n, gaps.drain())
    ch = rows.chunk([], 0, gaps.drain(eof=True))
    if stats.checked:
        ch.notes.append(checksum_note("Kraken", stats.checked, stats.matched))
    if stats.unverifiable:
        ch.notes.append("Kraken v2 checksums not verifiable (pair precision unknown) for "
                        + ", ".join(sorted(stats.unverifiable)))
    yield ch


# ---- v1 -------------------------------------------------------------------------------------

def _v1(j: list, m, state, gaps: Gaps, rows: Rows, stats: _Stats) -> None:
    if len(j) < 4 or not isinstance(j[-1], str) or not isinstance(j[-2], str):
        return
    name, sym = j[-2], _symbol(j[-1])
    if name == "trade" and isinstance(j[1], list):
        for t in j[1]:
            if not (isinstance(t, list) and len(t) >= 4):
                rows.reject(m.line, "Kraken trade entry is not [price, volume, time, side, ...]")
                continue
            rows.trade(EXCHANGE, sym, sec_ns(t[2]), m.local_ts, None, t[0], t[1], AGGRESSOR.get(t[3], str(t[3])),
                       m.line)
        return
    if not name.startswith("book"):
        return
    dicts = [d for d in j[1:-2] if isinstance(d, dict)]
    if not dicts:
        rows.reject(m.line, "Kraken book frame without level objects")
        return
    st = state.setdefault(sym, _State())
    if name.startswith("book-") and name[5:].isdigit():
        st.depth = int(name[5:])
    snap = any("as" in d or "bs" in d for d in dicts)
    levels, cs, ts = [], None, None
    for d in dicts:
        for k, side in (("as", "ask"), ("bs", "bid"), ("a", "ask"), ("b", "bid")):
            for lv in d.get(k) or []:
                if not (isinstance(lv, list) and len(lv) >= 3 and isinstance(lv[0], str) and isinstance(lv[1], str)):
                    rows.reject(m.line, f"Kraken book level {str(lv)[:60]} is not [price, volume, time]")
                    return
                try:
                    price_key(lv[0])
                except ValueError:
                    rows.reject(m.line, f"Kraken book level price {lv[0]!r} is not a decimal")
                    return
                t = sec_ns(lv[2])
                ts = t if ts is None or (t is not None and t > ts) else ts
                levels.append((side, lv[0], lv[1]))
        if "c" in d:
            cs = d["c"]
    ts = ts if ts is not None else m.local_ts
    if ts is None:
        rows.reject(m.line, "Kraken book frame without level times or receive time")
        return
    _apply(sym, st, snap, levels, ts, m, gaps, rows)
    if cs is not None and not snap:
        _verify(sym, st, str(checksum(st.book)), str(cs), ts, m, gaps, rows, stats)
    st.last_ts = ts


def _verify(sym, st: _State, mine, cs, ts, m, gaps: Gaps, rows: Rows, stats) -> None:
    """Count one checksum comparison; a mismatch while in sync opens a ``checksum`` gap."""
    stats.checked += 1
    if mine == cs:
        stats.matched += 1
    elif st.synced:
        gaps.start((EXCHANGE, sym), "checksum", ts, rows.next_arrival(m.line),
                   f"Kraken checksum {cs} != {mine} computed from the rebuilt top 10")
        st.synced = False


def _apply(sym, st: _State, snap: bool, levels, ts, m, gaps: Gaps, rows: Rows) -> None:
    key = (EXCHANGE, sym)
    if snap:
        first = rows.next_arrival(m.line)
        write_snapshot(st.book, levels, st.depth,
                       lambda side, p, q: rows.level(*key, ts, m.local_ts, side, p, q, m.line, snap=True))
        gaps.close(key, ts, first)
        st.synced = st.started = True
    else:
        if not st.started:
            gaps.start(key, "no_snapshot", ts, rows.next_arrival(m.line), "Kraken book updates before any snapshot")
            st.started = True
        # no delete is sent for levels pushed out of the depth: truncate after every insert
        apply_update(st.book, levels, st.depth,
                     lambda side, p, q: rows.level(*key, ts, m.local_ts, side, p, q, m.line), in_order=True)


# ---- v2 -------------------------------------------------------------------------------------

def _num(v) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return None


def _v2_book(j: dict, m, state, precision, gaps: Gaps, rows: Rows, stats: _Stats) -> None:
    kind = j.get("type")
    data = j.get("data")
    if kind not in ("snapshot", "update") or not isinstance(data, list):
        rows.reject(m.line, "Kraken v2 book message without type snapshot/update and data list")
        return
    for d in data:
        sym = _symbol(d.get("symbol")) if isinstance(d, dict) else None
        if sym is None:
            rows.reject(m.line, "Kraken v2 book entry without symbol")
            continue
        levels = []
        for k, side in (("bids", "bid"), ("asks", "ask")):
            for lv in d.get(k) or []:
                p, q = (_num(lv.get("price")), _num(lv.get("qty"))) if isinstance(lv, dict) else (None, None)
                try:
                    if p is None or q is None:
                        raise ValueError
                    price_key(p)
                except ValueError:
                    rows.reject(m.line, f"Kraken v2 book level {str(lv)[:60]} needs numeric price and qty")
                    levels = None
                    break
                levels.append((side, p, q))
            if levels is None:
                break
        if levels is None:
            continue
        ts = iso_ns(d.get("timestamp")) or m.local_ts
        st = state.setdefault(sym, _State())
        if ts is None:
            ts = st.last_ts
        if ts is None:
            rows.reject(m.line, "Kraken v2 book entry without timestamp or receive time")
            continue
        snap = kind == "snapshot"
        if snap:
            nb = sum(1 for s, _, _ in levels if s == "bid")
            na = len(levels) - nb
            st.depth = next((x for x in DEPTHS if x >= max(nb, na)), DEPTHS[-1])
            if sym in precision:
                st.pdec, st.qdec = precision[sym]
            else:
                st.pdec = max((_decimals(p) for _, p, _ in levels), default=0)
                st.qdec = max((_decimals(q) for _, _, q in levels), default=0)
            st.verifiable = None
        _apply(sym, st, snap, levels, ts, m, gaps, rows)
        cs = d.get("checksum")
        if isinstance(cs, int) and not isinstance(cs, bool) and st.verifiable is not False:
            mine = checksum(st.book, st.pdec, st.qdec)
            if st.verifiable is None and mine != cs and sym not in precision:
                st.verifiable = False  # the precision guess is wrong, not the book
                stats.unverifiable.add(sym)
            else:
                st.verifiable = True
                _verify(sym, st, mine, cs, ts, m, gaps, rows, stats)
        st.last_ts = ts


def _v2_trades(j: dict, m, rows: Rows) -> None:
    for t in j.get("data") or []:
        if not isinstance(t, dict):
            rows.reject(m.line, "Kraken v2 trade entry is not an object")
            continue
        side = t.get("side")
        rows.trade(EXCHANGE, _symbol(t.get("symbol")), iso_ns(t.get("timestamp")), m.local_ts, t.get("trade_id"),
                   _num(t.get("price")), _num(t.get("qty")), AGGRESSOR.get(side, str(side)), m.line)


_PAT = re.compile(rb'^\s*(\d+\s+)?\[\s*\d+\s*,\s*[\[{].*"(book-\d+|trade)"\s*,\s*"[A-Z0-9]+/[A-Z0-9]+"\s*\]\s*$'
                  rb'|\\?"channel\\?"\s*:\s*\\?"book\\?".{0,60}\\?"type\\?"\s*:\s*\\?"(snapshot|update)'
                  rb'|\\?"channel\\?"\s*:\s*\\?"trade\\?".{0,60}\\?"type\\?"\s*:\s*\\?"(snapshot|update)'
                  rb'|\\?"book-\d+\\?"\s*,\s*\\?"[A-Z0-9]+/[A-Z0-9]+')


sniff = line_sniffer(_PAT, b"KRAKEN")


FORMATS = [
    Format("kraken", "Kraken ws v1 book-N arrays and v2 book snapshot/update + trades: JSON lines, "
           "'<receive ns> <json>' or recording wrapper (.jsonl.zst). Traps: depth-limited with no deletes "
           "for levels pushed out (truncate after every update = truncation), CRC32 checksum over the top "
           "10 (gap 'checksum' on mismatch), v2 prices as JSON numbers (kept exact), side = taker",
           sniff, read),
]
