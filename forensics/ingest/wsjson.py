"""Shared machinery of the websocket-capture venue readers (Bybit, OKX, Coinbase, Hyperliquid,
Kraken): the line envelopes users record, a depth-limited level book, gap bookkeeping and the
row builder that turns messages into :class:`~forensics.ingest.normalise.Chunk` frames.

Envelopes (one message per line, plain / gzip / zip / zstd, :class:`~forensics.ingest.source.Source`):

* a raw venue message: ``{...}`` or ``[...]`` (Kraken v1 frames are arrays);
* a collector line ``<local receive time> <json>`` (hftbacktest style; ns, us, ms or s:
  the unit is inferred from the magnitude);
* the recording wrapper of the common open-source collector used for
  ``shared/data/venues/*.jsonl.zst``: a header line ``{"t":"header",...}``, then
  ``{"t":"recv"|"connect"|"send"|"http", "conn", "ts" (receive time, epoch s float), "addr",
  "data": "<raw frame string>"}``; the venue message is ``data`` parsed a second time.
  ``connect`` lines mark a new connection (sequence numbers restart), ``addr`` tells the
  market on venues with one endpoint per market (Bybit ``/v5/public/linear|spot|inverse``).

What a venue reader implements is in the README ("Writing a reader"): a module with
``FORMATS`` (sniff + read), reading messages with :func:`messages`, emitting rows with
:class:`Rows`, following sequence chains and recording gaps with
:class:`~forensics.ingest.seqchain.SeqChain`. ``--exchange``/``--symbol`` are applied by the Writer.

Per-message work is plain Python here (each message carries few levels; a level-book update
needs the previous state), far slower than the vectorised Binance reader: fine for the
captures users record of these venues, not for months of data (figures:
``benchmarks/bench_venues.py`` and the README).
"""
from __future__ import annotations

import bisect
import datetime as dt
import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import orjson
import polars as pl

from forensics.ingest.normalise import LINE_SHIFT, Chunk, ReadOptions, Reject
from forensics.ingest.seqchain import SeqChain
from forensics.ingest.source import Source
from forensics.timeutil import to_ns

WRAPPER_KINDS = ("recv", "header", "http", "connect", "send", "disconnect", "close", "error")
_PREFIX = re.compile(rb"^\s*(\d{9,20})(?:\.\d+)?\s+(?=[\[{])")
_STR = pl.Utf8
_I64 = pl.Int64


@dataclass
class Msg:
    line: int
    local_ts: int | None   # receive time (ns), from the envelope
    conn: str | None       # connection id (recording wrapper), else None
    addr: str | None       # endpoint of that connection (recording wrapper)
    data: Any              # the venue message, parsed (None for a 'connect' marker)
    kind: str = "recv"     # 'recv' | 'connect' | 'http'


def loads_exact(text: str | bytes) -> Any:
    """JSON with numbers kept as their text (``1.10`` stays ``"1.10"``): for venues that send
    prices as JSON numbers (Kraken v2). Integers stay ints."""
    return json.loads(text, parse_float=str)


def messages(src: Source, loads: Callable[[Any], Any] = orjson.loads, keep_http: bool = False
             ) -> Iterator[tuple[list[Msg], list[Reject], int]]:
    """Per block of lines: the messages (any envelope above), rejects for lines that are not
    JSON (``file:line: reason`` comes from the line number), and the block's line count.
    ``keep_http``: also the recording's REST responses (``kind='http'``, ``addr`` = the URL),
    e.g. instrument lists with contract sizes."""
    addrs: dict[str, str] = {}
    doc = _document(src, loads)
    for first, block in ([(1, doc)] if doc is not None else src.blocks()):
        msgs: list[Msg] = []
        rejects: list[Reject] = []
        lines = block.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for i, raw in enumerate(lines):
            line = first + i
            s = raw.strip()
            if not s:
                continue
            local = None
            if s[:1] not in (b"{", b"["):
                m = _PREFIX.match(s)
                if not m:
                    rejects.append(Reject(line, "not a JSON line (expected '<json>' or '<receive time> <json>')",
                                          raw[:200].decode("utf-8", "replace")))
                    continue
                local = to_ns(int(m.group(1)))
                s = s[m.end():]
            try:
                obj = loads(s)
            except (orjson.JSONDecodeError, ValueError) as exc:
                rejects.append(Reject(line, f"malformed JSON ({exc})", raw[:200].decode("utf-8", "replace")))
                continue
            if isinstance(obj, dict) and isinstance(obj.get("t"), str) and obj["t"] in WRAPPER_KINDS:
                kind = obj["t"]
                conn = obj.get("conn")
                if obj.get("addr") and conn is not None:
                    addrs[conn] = obj["addr"]
                if kind == "connect":
                    msgs.append(Msg(line, _wrapper_ts(obj), conn, addrs.get(conn), None, "connect"))
                    continue
                if kind == "http" and keep_http and isinstance(obj.get("data"), str):
                    try:
                        msgs.append(Msg(line, _wrapper_ts(obj), conn, obj.get("url"), loads(obj["data"]), "http"))
                    except (orjson.JSONDecodeError, ValueError):
                        pass
                    continue
                if kind != "recv":
                    continue
                data = obj.get("data")
                if not isinstance(data, str):
                    rejects.append(Reject(line, "recording line without a 'data' frame string"))
                    continue
                try:
                    inner = loads(data)
                except (orjson.JSONDecodeError, ValueError) as exc:
                    # a venue text frame that is not JSON (e.g. a 'pong'): not market data
                    if data.strip() in ("pong", "ping", ""):
                        continue
                    rejects.append(Reject(line, f"malformed JSON in the recorded frame ({exc})", data[:200]))
                    continue
                msgs.append(Msg(line, _wrapper_ts(obj) if local is None else local, conn,
                                addrs.get(conn) if conn is not None else None, inner))
                continue
            msgs.append(Msg(line, local, None, None, obj))
        yield msgs, rejects, len(lines)


def _document(src: Source, loads, limit: int = 64 << 20) -> bytes | None:
    """A file holding one pretty-printed JSON document (a message, or an array of messages, as
    saved from an API client, ``jq .`` or the venues' docs) -> the messages as JSON lines (line
    numbers are then message numbers). None when the file is JSON lines (the normal case)."""
    head = src.head(1 << 16).lstrip()
    first = head.split(b"\n", 1)[0].strip()
    if not head.startswith((b"{", b"[")) or b"\n" not in head.rstrip() and len(head) < (1 << 16):
        return None
    try:
        loads(first)
        return None  # the first line is a whole message: JSON lines
    except (orjson.JSONDecodeError, ValueError):
        pass
    if src.size > limit:
        return None
    body = b"".join(b for _, b in src.blocks())
    try:
        doc = loads(body)
    except (orjson.JSONDecodeError, ValueError):
        return None
    is_frame = isinstance(doc, list) and doc and not isinstance(doc[0], (dict, list))  # a Kraken v1 frame
    msgs = [doc] if isinstance(doc, dict) or is_frame else doc if isinstance(doc, list) else [doc]
    return b"".join(json.dumps(m).encode() + b"\n" for m in msgs)


def _wrapper_ts(obj: dict) -> int | None:
    ts = obj.get("ts")
    if isinstance(ts, (int, float)):
        return int(round(float(ts) * 1e6)) * 1000 if ts < 1e11 else to_ns(int(ts))
    return None


# ---- times --------------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")
_DAYS: dict[str, int] = {}


def iso_ns(text: str | None) -> int | None:
    """``2026-04-07T14:30:00.123456789Z`` -> UTC ns, exactly (no float); None if unreadable."""
    if not isinstance(text, str):
        return None
    m = _ISO.match(text.strip())
    if not m:
        return None
    day, hh, mm, ss, frac, tz = m.groups()
    base = _DAYS.get(day)
    if base is None:
        try:
            base = int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc).timestamp())
        except ValueError:
            return None
        _DAYS[day] = base
    secs = base + int(hh) * 3600 + int(mm) * 60 + int(ss)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        t = tz[1:].replace(":", "")
        secs -= sign * (int(t[:2]) * 3600 + int(t[2:]) * 60)
    return secs * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)


def ms_ns(value) -> int | None:
    """A venue epoch time (ms as int or string; s/us/ns inferred by magnitude) -> ns."""
    try:
        return to_ns(int(value))
    except (TypeError, ValueError):
        try:
            return int(round(float(value) * 1e6)) * 1000  # '1618678145.920708' (seconds)
        except (TypeError, ValueError):
            return None


# ---- exact level keys ---------------------------------------------------------------------

_KEY_DEC = 18


@functools.lru_cache(maxsize=1 << 16)  # prices repeat: a book touches few distinct ones
def price_key(p: str) -> int:
    """An exact integer sort key of a decimal price string (``"8476.98"`` ->
    8476980000000000000000). Raises ValueError for anything that is not a plain decimal."""
    if p[:1] in ("-", "+") or "e" in p or "E" in p:
        raise ValueError(p)
    a, _, b = p.partition(".")
    if len(b) > _KEY_DEC or not (a or b):
        raise ValueError(p)
    return int((a or "0") + b.ljust(_KEY_DEC, "0"))


def is_zero(size: str) -> bool:
    return not size.strip().strip("0.") and bool(size.strip())


class LevelBook:
    """One instrument's L2 book as the venue states it: ``levels[side][key] = (price, size)``
    (the venue's own strings), keys kept sorted best-first for the touch, truncation and
    checksums."""

    def __init__(self):
        self.levels: dict[str, dict[int, tuple[str, str]]] = {"bid": {}, "ask": {}}
        self.order: dict[str, list[int]] = {"bid": [], "ask": []}  # best first (bids: -key)

    def clear(self) -> None:
        for s in ("bid", "ask"):
            self.levels[s].clear()
            self.order[s].clear()

    def set(self, side: str, price: str, size: str) -> int:
        """Apply an absolute size (zero removes). Returns the level's rank (0 = touch) before
        a removal / after an insert or change, or -1 when a removed level was not there."""
        k = price_key(price)
        sk = -k if side == "bid" else k
        lv, order = self.levels[side], self.order[side]
        if is_zero(size):
            if k not in lv:
                return -1
            del lv[k]
            i = bisect.bisect_left(order, sk)
            del order[i]
            return i
        if k not in lv:
            bisect.insort(order, sk)
        lv[k] = (price, size)
        return bisect.bisect_left(order, sk)

    def __len__(self):
        return len(self.levels["bid"]) + len(self.levels["ask"])

    def depth(self, side: str) -> int:
        return len(self.order[side])

    def top(self, side: str, n: int) -> list[tuple[str, str]]:
        lv = self.levels[side]
        return [lv[-sk if side == "bid" else sk] for sk in self.order[side][:n]]

    def truncate(self, side: str, depth: int) -> list[tuple[str, str]]:
        """Drop levels beyond ``depth`` from the touch; returns the dropped (price, size)."""
        order = self.order[side]
        if len(order) <= depth:
            return []
        lv = self.levels[side]
        gone = order[depth:]
        del order[depth:]
        return [lv.pop(-sk if side == "bid" else sk) for sk in gone]

    def worst(self, side: str) -> int | None:
        """Key of the deepest level (bids: the lowest price), or None."""
        order = self.order[side]
        if not order:
            return None
        return -order[-1] if side == "bid" else order[-1]

    def keys(self, side: str) -> set[int]:
        return set(self.levels[side])


def write_snapshot(book: LevelBook, levels, depth: int | None, emit: Callable[[str, str], None]) -> None:
    """Replace ``book`` by a snapshot's ``levels`` [(side, price, size)] and ``emit(side, price,
    size)`` its rows, bids then asks, best first. A snapshot deeper than the view it belongs
    to (``depth``) is cut to the view: levels outside it are not written."""
    book.clear()
    for side, p, q in levels:
        if not is_zero(q):
            book.set(side, p, q)
    for side in ("bid", "ask"):
        if depth is not None:
            book.truncate(side, depth)
        for p, q in book.top(side, len(book.order[side])):
            emit(side, p, q)


def apply_update(book: LevelBook, levels, depth: int | None, emit: Callable[[str, str, str], None],
                 in_order: bool = False) -> None:
    """Apply one update message's ``levels`` [(side, price, size)] to ``book`` and emit the
    rows: removals first, then inserts/changes, each insert followed (for a depth-limited view
    of ``depth`` levels) by a size-0 row for the level it pushed beyond ``depth``. Removals
    first keeps a level the venue still shows from being pushed out by an insert of the same
    message; truncating after each insert keeps the side at <= depth+1 levels at any time (what
    attribution's depth-limit detection expects). The final book is the venue's top ``depth``.
    ``in_order``: apply in the message's order instead, truncating after each insert (Kraken's
    documented algorithm: a level pushed out then freed again is re-sent as a republish)."""
    if in_order:
        for side, p, q in levels:
            book.set(side, p, q)
            emit(side, p, q)
            if depth is not None and not is_zero(q) and book.depth(side) > depth:
                for gp, _ in book.truncate(side, depth):
                    emit(side, gp, "0")
        return
    for side, p, q in levels:
        if is_zero(q):
            book.set(side, p, q)
            emit(side, p, q)
    for side, p, q in levels:
        if not is_zero(q):
            book.set(side, p, q)
            emit(side, p, q)
            if depth is not None and book.depth(side) > depth:
                for gp, _ in book.truncate(side, depth):
                    emit(side, gp, "0")


def diff_snapshot(book: LevelBook, sides: dict[str, list[tuple[str, str]]], depth: int | None,
                  emit: Callable[[str, str, str], None]) -> None:
    """Turn a full top-``depth`` snapshot (``sides[side]`` = [(price, size)], best first) into
    level changes against ``book`` (updated in place), calling ``emit(side, price, size)``:
    changed and new levels and removals inside the new window first, then (last, so they sit
    at rank >= depth when applied) removals of levels beyond the new window's deepest price
    on a full side: those left the window (truncation), they were not cancelled."""
    late, now = [], []
    for side in ("bid", "ask"):
        new = {}
        for p, q in sides.get(side, []):
            if not is_zero(q):
                new[price_key(p)] = (p, q)
        old = book.levels[side]
        full = depth is not None and len(new) >= depth
        edge = (min(new) if side == "bid" else max(new)) if new else None
        for k, (p, q) in old.items():
            if k in new:
                continue
            beyond = full and edge is not None and (k < edge if side == "bid" else k > edge)
            (late if beyond else now).append((side, p, "0"))
        for k, (p, q) in new.items():
            prev = old.get(k)
            if prev is None or prev[1] != q:
                now.append((side, p, q))
    for side, p, q in now + late:
        book.set(side, p, q)
        emit(side, p, q)


# ---- gaps -----------------------------------------------------------------------------------

#: gap bookkeeping of the readers that do not follow a sequence chain themselves (Coinbase,
#: Kraken, Hyperliquid): the open/close half of :class:`~forensics.ingest.seqchain.SeqChain`
Gaps = SeqChain


# ---- rows -----------------------------------------------------------------------------------

BOOK_COLS = {"exchange": _STR, "symbol": _STR, "ts": _I64, "local_ts": _I64, "update_id": _I64,
             "first_update_id": _I64, "prev_update_id": _I64, "is_snapshot": pl.Boolean, "side": _STR,
             "price": _STR, "size": _STR, "arrival": _I64, "line": _I64}
TRADE_COLS = {"exchange": _STR, "symbol": _STR, "ts": _I64, "local_ts": _I64, "trade_id": _STR,
              "price": _STR, "size": _STR, "aggressor": _STR, "arrival": _I64, "line": _I64}
QUOTE_COLS = {"exchange": _STR, "symbol": _STR, "ts": _I64, "local_ts": _I64, "update_id": _I64,
              "best_bid": _STR, "best_bid_size": _STR, "best_ask": _STR, "best_ask_size": _STR,
              "arrival": _I64, "line": _I64}


class Rows:
    """Row builder. Every row of a source line gets ``arrival = line << LINE_SHIFT | k`` with
    ``k`` counting the rows of that line across tables, so trades and book rows interleave in
    arrival order (the Writer's ``seq``)."""

    def __init__(self, opts: ReadOptions):
        self.opts = opts
        self.book: dict[str, list] = {c: [] for c in BOOK_COLS}
        self.trades: dict[str, list] = {c: [] for c in TRADE_COLS}
        self.quotes: dict[str, list] = {c: [] for c in QUOTE_COLS}
        self._line = -1
        self._k = 0
        self.rejects: list[Reject] = []
        self.dropped = 0

    def arrival(self, line: int) -> int:
        if line != self._line:
            self._line, self._k = line, 0
        a = (line << LINE_SHIFT) | self._k
        self._k += 1
        return a

    def next_arrival(self, line: int) -> int:
        """The arrival the next row of ``line`` will get (for gap markers)."""
        return (line << LINE_SHIFT) | (self._k if line == self._line else 0)

    def level(self, ex, sym, ts, local, side, price, size, line, snap=False, uid=None, first=None, prev=None) -> int:
        b = self.book
        a = self.arrival(line)
        b["exchange"].append(ex); b["symbol"].append(sym); b["ts"].append(ts); b["local_ts"].append(local)
        b["update_id"].append(uid); b["first_update_id"].append(first); b["prev_update_id"].append(prev)
        b["is_snapshot"].append(snap); b["side"].append(side); b["price"].append(price); b["size"].append(size)
        b["arrival"].append(a); b["line"].append(line)
        return a

    def trade(self, ex, sym, ts, local, trade_id, price, size, aggressor, line) -> None:
        t = self.trades
        t["exchange"].append(ex); t["symbol"].append(sym); t["ts"].append(ts); t["local_ts"].append(local)
        t["trade_id"].append(None if trade_id is None else str(trade_id)); t["price"].append(price)
        t["size"].append(size); t["aggressor"].append(aggressor)
        t["arrival"].append(self.arrival(line)); t["line"].append(line)

    def quote(self, ex, sym, ts, local, uid, bid, bid_size, ask, ask_size, line) -> None:
        q = self.quotes
        for c, v in (("exchange", ex), ("symbol", sym), ("ts", ts), ("local_ts", local), ("update_id", uid),
                     ("best_bid", bid), ("best_bid_size", bid_size), ("best_ask", ask),
                     ("best_ask_size", ask_size), ("arrival", self.arrival(line)), ("line", line)):
            q[c].append(v)

    def reject(self, line: int, reason: str, text: str = "") -> None:
        self.rejects.append(Reject(line, reason, text[:200]))

    def chunk(self, rejects: list[Reject], lines: int, gaps: list[dict]) -> Chunk:
        ch = Chunk(rejects=rejects + self.rejects, lines=lines, dropped=self.dropped)
        for table, cols, data in (("book_updates", BOOK_COLS, self.book), ("trades", TRADE_COLS, self.trades),
                                  ("quotes", QUOTE_COLS, self.quotes)):
            if data["arrival"]:
                df = pl.DataFrame(data, schema=cols)
                ch.tables[table] = df
        ch.gaps = list(gaps)
        self.__init__(self.opts)  # reset the lists for the next block
        return ch


def objects(items, line: int, rows: Rows, what: str) -> Iterator[dict]:
    """The objects among a message's entries (trades), each other entry rejected as ``{what}
    entry is not an object``."""
    for t in items:
        if isinstance(t, dict):
            yield t
        else:
            rows.reject(line, f"{what} entry is not an object")


def entries(data, line: int, rows: Rows, what: str, entry: str | None = None) -> Iterator[dict]:
    """The objects of a message's ``data`` list (:func:`objects`, named ``entry``, default
    ``what``); a ``data`` that is not a list is rejected as ``{what} message without a data list``."""
    if not isinstance(data, list):
        rows.reject(line, f"{what} message without a data list")
        return iter(())
    return objects(data, line, rows, entry or what)


def level_pair(lv, line: int, rows: Rows, what: str) -> tuple[str, str] | None:
    """A ``[price, size, ...]`` level as two decimal strings, or None (the line is rejected)."""
    if isinstance(lv, (list, tuple)) and len(lv) >= 2 and isinstance(lv[0], str) and isinstance(lv[1], str):
        try:
            price_key(lv[0])
            return lv[0], lv[1]
        except ValueError:
            pass
    rows.reject(line, f"{what}: level {str(lv)[:60]} is not a [price, size] pair of decimal strings")
    return None


def sniff_lines(head: bytes, pattern: re.Pattern, header_exchange: bytes | None = None, n: int = 60) -> bool:
    """A capture of this venue: the recording header names it, or one of the first complete
    lines (raw, collector-prefixed or wrapped: the wrapper escapes quotes) matches ``pattern``."""
    body = head.removeprefix(b"\xef\xbb\xbf")
    lines = body.split(b"\n")
    complete = lines[:-1] if len(lines) > 1 else lines
    for ln in complete[:n]:
        s = ln.strip()
        if not s:
            continue
        if header_exchange and s.startswith(b'{"t":"header"') and (b'"exchange":"' + header_exchange + b'"') in s:
            return True
        if s[:1] not in (b"{", b"[") and not _PREFIX.match(s):
            break
        if pattern.search(s[:4096]):
            return True
    # a pretty-printed document (one message or an array): judge it with whitespace removed
    if body.lstrip()[:1] in (b"{", b"[") and b"\n" in body.strip():
        flat = re.sub(rb"\s+", b"", body[:1 << 16])
        return bool(pattern.search(flat[:8192]))
    return False


def line_sniffer(pattern: re.Pattern, header_exchange: bytes):
    """The ``sniff(head, info)`` of a JSON-lines venue: :func:`sniff_lines` with its pattern and
    the exchange name its recording header carries."""
    def sniff(head: bytes, info) -> bool:
        return sniff_lines(head, pattern, header_exchange)
    return sniff


def checksum_note(venue: str, checked: int, matched: int) -> str:
    """The ingest note on a venue's book checksums (Kraken, OKX: CRC32 of the top levels)."""
    return (f"{venue} checksums: {matched:,} of {checked:,} matched"
            + ("" if matched == checked else f" ({checked - matched:,} mismatches recorded as gaps)"))
