"""A compiled scanner for Binance ``depthUpdate`` lines (the bulk of a capture).

:func:`scan_depth` walks a block of lines once (numba, no Python per line) and takes the lines
it can read *exactly as the general path reads them*: an optional receive-time prefix
(``<digits><spaces/tabs>``), then a raw ``depthUpdate`` event or a combined-stream wrapper
``{"stream": ..., "data": {...}}`` in plain JSON: integer ``E``/``T``/``U``/``u``/``pu``
(int64), a string ``s``, ``b``/``a`` arrays of ``["price", "qty"]`` string pairs,
other keys with scalar values (skipped, as the typed decoder ignores them). The levels come out
as rows (bids then asks) with their exact decimals, as the Writer would parse them. Anything
else on a line (escapes, nulls, floats, nested unknown values, duplicate keys, a partial-depth
stream name, a missing field, control bytes, ``\\r``, a level that is not a plain decimal,
``b`` after ``a``) makes the scanner *leave the line*: it is blanked
in the block handed to the general path (Polars ``json_decode``, orjson for the reasons of
rejects), which words rejects and decides odd cases. So a line is either read here or there,
never both, and the rows are the same either way (tested against the general path, including
hypothesis-generated lines).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
import numba as nb  # noqa: E402

from forensics.ingest.decscan import find_byte, fits_int64  # noqa: E402

#: presence bits of the event fields
_E, _T, _U, _u, _PU, _S, _B, _A, _EV, _STREAM, _DATA = (1 << k for k in range(11))
_DEPTH_UPDATE = np.frombuffer(b"depthUpdate", dtype=np.uint8).copy()
#: the bit of each one-letter key read here, by its byte (0: a key not read here)
_ONE_CHAR_KEY = np.zeros(256, np.int64)
for _key, _bit in ((b"E", _E), (b"T", _T), (b"U", _U), (b"u", _u), (b"s", _S), (b"b", _B), (b"a", _A),
                   (b"e", _EV)):
    _ONE_CHAR_KEY[_key[0]] = _bit
del _key, _bit

# Named state (the house pattern of :mod:`forensics.book`): the fields of the message being read
# are one numpy record (:data:`MESSAGE`: ``msg.U``, ``msg.s_at``), the level rows of the block a
# ``NamedTuple`` of arrays (:class:`LevelRows`: ``rows.pdata``) with its fill cursor one record
# (:data:`ROWS_USED`: ``rows.used[0].rows``). A new field is one line in its declaration.

#: what :func:`_object` read of one line (cleared per line)
MESSAGE = np.dtype([
    ("E", np.int64),           # event time (ms)
    ("T", np.int64),           # transaction time (ms)
    ("U", np.int64),           # first update id
    ("u", np.int64),           # final update id
    ("pu", np.int64),          # previous final update id (futures)
    ("bits", np.int64),        # presence bits (_E ... _DATA) of the keys read
    ("top_keys", np.int64),    # 1: an event key at the wrapper's level
    ("s_at", np.int64),        # spans in the buffer: symbol ``s`` ...
    ("s_len", np.int64),
    ("stream_at", np.int64),   # ... the stream name ...
    ("stream_len", np.int64),
    ("e_at", np.int64),        # ... and the event type ``e``
    ("e_len", np.int64),
])

#: how much of :class:`LevelRows` is used (rolled back when a line is left to the general path)
ROWS_USED = np.dtype([
    ("price_bytes", np.int64),
    ("size_bytes", np.int64),
    ("rows", np.int64),
])


class LevelRows(NamedTuple):
    """The level rows of a block, appended in place: one row per level, bids then asks per message."""

    pdata: np.ndarray  # uint8 price text (Arrow bytes) ...
    poffs: np.ndarray  # int64 ... and offsets (rows + 1)
    sdata: np.ndarray  # uint8 size text
    soffs: np.ndarray  # int64
    dec: np.ndarray    # int64 (6, cap): price digits, raw, sig, size digits, raw, sig (:func:`_decimal`)
    bid: np.ndarray    # bool per row
    used: np.ndarray   # ROWS_USED (1,)


#: the steps that take the named state allocate nothing, so they are compiled without NRT
#: reference counting (numba would otherwise emit an atomic inc/dec for every array of the
#: state tuples at each call: per key of every message)
_step = nb.njit(cache=True, nogil=True, _nrt=False)


@nb.njit(cache=True, nogil=True, inline="never")
def _ws(buf, p, end):
    while p < end and (buf[p] == 32 or buf[p] == 9):
        p += 1
    return p


@nb.njit(cache=True, nogil=True, inline="never")
def _string(buf, p, end):
    """At an opening quote: index of the closing quote, or -1 (escape, control byte, no end:
    ``buf[end]`` is the line's newline, which stops :func:`find_byte`)."""
    return find_byte(buf, p + 1, 34, 92)


@nb.njit(cache=True, nogil=True)
def _fits(buf, p, n):
    """The n digits at p (no sign, no point) are an int64."""
    return n < 19 or fits_int64(buf, p, p + n, -1, n)


@nb.njit(cache=True, nogil=True)
def _int(buf, p, end):
    """A non-negative JSON integer (int64, no leading zero) at p: (the index after it, its
    value), or (-1, 0)."""
    q = p
    v = 0
    while q < end and 48 <= buf[q] <= 57:
        q += 1
    n = q - p
    if n == 0 or not _fits(buf, p, n) or (n > 1 and buf[p] == 48):
        return -1, 0
    if q < end and (buf[q] == 46 or buf[q] == 101 or buf[q] == 69):  # 1.5, 1e3: not an integer
        return -1, 0
    for i in range(p, q):
        v = v * 10 + (buf[i] - 48)
    return q, v


@nb.njit(cache=True, nogil=True, inline="never")
def _digits(buf, p, end):
    while p < end and 48 <= buf[p] <= 57:
        p += 1
    return p


@nb.njit(cache=True, nogil=True)
def _scalar(buf, p, end):
    """Skip an unknown key's scalar value (string, JSON number, true/false/null); -1 otherwise."""
    c = buf[p]
    if c == 34:
        q = _string(buf, p, end)
        return -1 if q < 0 else q + 1
    if c == 116 or c == 102 or c == 110:
        for lit in (b"true", b"false", b"null"):
            n = len(lit)
            if p + n <= end:
                same = True
                for i in range(n):
                    if buf[p + i] != lit[i]:
                        same = False
                if same:
                    return p + n
        return -1
    # -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    q = p
    if q < end and buf[q] == 45:
        q += 1
    if q >= end or not (48 <= buf[q] <= 57):
        return -1
    if buf[q] == 48:
        q += 1
    else:
        q = _digits(buf, q, end)
    if q < end and buf[q] == 46:
        r = _digits(buf, q + 1, end)
        if r == q + 1:
            return -1
        q = r
    if q < end and (buf[q] == 101 or buf[q] == 69):
        q += 1
        if q < end and (buf[q] == 43 or buf[q] == 45):
            q += 1
        r = _digits(buf, q, end)
        if r == q:
            return -1
        q = r
    return q


@nb.njit(cache=True, nogil=True)
def _decimal(buf, a, b, out, o, dec, k, r):
    """Copy the string ``buf[a:b]`` to ``out[o:]`` and read it as a plain non-negative decimal
    into ``dec[k:k + 3, r]`` (digits without the point, fractional digits as written, fractional
    digits without trailing zeros), in one pass: exactly
    :func:`forensics.ingest.decscan.parse_plain`'s rule. False if it is not plain (a sign,
    ``1e-05``, blank, two points, no digit, digits beyond int64): the line is then the general
    path's, whose Writer words the reject."""
    dot = -1
    nd = 0
    nz = -1  # last non-zero digit after the point
    v = 0
    for i in range(a, b):
        c = buf[i]
        out[o + i - a] = c
        if 48 <= c <= 57:
            nd += 1
            v = v * 10 + (c - 48)
            if dot >= 0 and c != 48:
                nz = i
        elif c == 46 and dot < 0:
            dot = i
        else:
            return False
    if nd == 0:
        return False
    if nd >= 19 and not fits_int64(buf, a, b, dot, nd):
        return False
    dec[k, r] = v
    if dot >= 0:
        dec[k + 1, r] = b - dot - 1
        dec[k + 2, r] = nz - dot if nz >= 0 else 0
    else:
        dec[k + 1, r] = 0
        dec[k + 2, r] = 0
    return True


@_step
def _levels(buf, p, end, is_bid, rows):
    """``[["p","q"], ...]`` at ``p``: one level row each, appended to ``rows`` in place
    (:class:`LevelRows`): price and size text, their exact decimals (:func:`_decimal`; a string
    that is not a plain decimal leaves the line) and the side. Returns the index after ``]``,
    or -1."""
    if buf[p] != 91:
        return -1
    p = _ws(buf, p + 1, end)
    if p < end and buf[p] == 93:
        return p + 1
    used = rows.used[0]
    while p < end:
        if buf[p] != 91:
            return -1
        r = used.rows
        for k in range(2):
            p = _ws(buf, p + 1, end)
            if p >= end or buf[p] != 34:
                return -1
            q = _string(buf, p, end)
            if q < 0:
                return -1
            if k == 0:
                if not _decimal(buf, p + 1, q, rows.pdata, used.price_bytes, rows.dec, 0, r):
                    return -1
                used.price_bytes += q - p - 1
            else:
                if not _decimal(buf, p + 1, q, rows.sdata, used.size_bytes, rows.dec, 3, r):
                    return -1
                used.size_bytes += q - p - 1
            p = _ws(buf, q + 1, end)
            if p >= end:
                return -1
            if k == 0 and buf[p] != 44:
                return -1
        if buf[p] != 93:
            return -1
        rows.poffs[r + 1] = used.price_bytes
        rows.soffs[r + 1] = used.size_bytes
        rows.bid[r] = is_bid
        used.rows = r + 1
        p = _ws(buf, p + 1, end)
        if p >= end:
            return -1
        if buf[p] == 93:
            return p + 1
        if buf[p] != 44:
            return -1
        p = _ws(buf, p + 1, end)
    return -1


@nb.njit(cache=True, nogil=True)
def _key_bit(buf, ks, kn):
    """The bit of the key buf[ks:ks + kn] among those read here (E T U u s b a e pu stream
    data), 0 for any other key."""
    c0 = buf[ks] if kn > 0 else 0
    if kn == 1:
        return _ONE_CHAR_KEY[c0]
    if kn == 2 and c0 == 112 and buf[ks + 1] == 117:
        return _PU
    if kn == 6 and c0 == 115 and buf[ks + 1] == 116 and buf[ks + 2] == 114 and buf[ks + 3] == 101 \
            and buf[ks + 4] == 97 and buf[ks + 5] == 109:
        return _STREAM
    if kn == 4 and c0 == 100 and buf[ks + 1] == 97 and buf[ks + 2] == 116 and buf[ks + 3] == 97:
        return _DATA
    return 0


@_step
def _value(buf, p, end, bit, msg, rows):
    """The value at ``p`` of a key other than ``data`` (``bit``: :func:`_key_bit`) into ``msg``
    (:data:`MESSAGE`; levels into ``rows``), or skipped if the key is not one read here: the index
    after the value, or -1 to leave the line to the general path."""
    if bit == _E or bit == _T or bit == _U or bit == _u or bit == _PU:
        p, v = _int(buf, p, end)
        if bit == _E:
            msg.E = v
        elif bit == _T:
            msg.T = v
        elif bit == _U:
            msg.U = v
        elif bit == _u:
            msg.u = v
        else:
            msg.pu = v
        return p
    if bit == _S or bit == _STREAM or bit == _EV:
        if buf[p] != 34:
            return -1
        q = _string(buf, p, end)
        if q < 0:
            return -1
        if bit == _S:
            msg.s_at, msg.s_len = p + 1, q - p - 1
        elif bit == _STREAM:
            msg.stream_at, msg.stream_len = p + 1, q - p - 1
        else:
            msg.e_at, msg.e_len = p + 1, q - p - 1
        return q + 1
    if bit == _B:  # (levels are stored bids first: "b" after "a" is the general path's)
        if (msg.bits & _A) != 0:
            return -1
        return _levels(buf, p, end, True, rows)
    if bit == _A:
        return _levels(buf, p, end, False, rows)
    if buf[p] == 123 or buf[p] == 91:
        return -1  # a nested unknown value: general path
    return _scalar(buf, p, end)


@_step
def _object(buf, p, end, msg, rows):
    """One JSON object at ``p``: an event, or a wrapper whose ``data`` is an event (one level
    of nesting, handled without recursion). Fields go to ``msg`` (:data:`MESSAGE`), levels to
    ``rows`` (:class:`LevelRows`). Returns the index after the closing ``}``, or -1 to leave the
    line to the general path. One state machine over the bytes: the key test is
    :func:`_key_bit`, each value :func:`_value`."""
    if buf[p] != 123:
        return -1
    level = 0
    p = _ws(buf, p + 1, end)
    if p < end and buf[p] == 125:
        return p + 1
    while p < end:
        if buf[p] != 34:
            return -1
        q = _string(buf, p, end)
        if q < 0:
            return -1
        ks, kn = p + 1, q - p - 1
        p = _ws(buf, q + 1, end)
        if p >= end or buf[p] != 58:
            return -1
        p = _ws(buf, p + 1, end)
        if p >= end:
            return -1
        bit = _key_bit(buf, ks, kn)
        if bit != 0 and (msg.bits & bit) != 0:
            return -1  # a duplicate key: left to the general decoder
        if level == 0 and bit != _DATA and bit != _STREAM:
            msg.top_keys = 1  # an event key at the top level
        opened = False
        if bit == _DATA:
            if level != 0 or buf[p] != 123:
                return -1
            level = 1
            opened = True
            p = _ws(buf, p + 1, end)
        else:
            p = _value(buf, p, end, bit, msg, rows)
        if p < 0:
            return -1
        msg.bits |= bit
        if opened and p < end and buf[p] != 125:
            continue  # the first key of data
        # after a value (or an empty data object): ',' or the end of the object(s)
        while True:
            p = _ws(buf, p, end)
            if p >= end:
                return -1
            if buf[p] == 125:
                if level == 0:
                    return p + 1
                level = 0
                p += 1
                continue
            if buf[p] != 44:
                return -1
            break
        p = _ws(buf, p + 1, end)
    return -1


@nb.njit(cache=True, nogil=True)
def _receive_time(buf, p, end):
    """A collector line's ``<receive time> `` prefix at ``p``: (position of what follows,
    the time or -1 without a prefix); position -1 if the prefix is malformed."""
    if not (p < end and 48 <= buf[p] <= 57):
        return p, -1
    q = p
    while q < end and 48 <= buf[q] <= 57:
        q += 1
    if not (_fits(buf, p, q - p) and q < end and (buf[q] == 32 or buf[q] == 9)):
        return -1, -1
    v = 0
    for i in range(p, q):
        v = v * 10 + (buf[i] - 48)
    return _ws(buf, q, end), v


@_step
def _is_diff_event(buf, whole, msg, word):
    """The object just read (``whole``: it ended the line) is a diff-depth event this scanner
    takes: e == ``word`` (depthUpdate), U, u, s and E or T present, a stream name only with
    its data, and not a partial-depth stream (``@depth5``...: the general path's)."""
    bits = msg.bits
    wrapped = (bits & _DATA) != 0
    ok = whole and msg.top_keys == 0 if wrapped else whole
    if ok and not wrapped and (bits & _STREAM) != 0:
        return False  # a stream name without data: general path
    need = _EV | _U | _u | _S
    if not (ok and (bits & need) == need and (bits & (_E | _T)) != 0):
        return False
    if msg.e_len != word.size:  # "e" is exactly depthUpdate
        return False
    for i in range(word.size):
        if buf[msg.e_at + i] != word[i]:
            return False
    if (bits & _STREAM) != 0:
        s0, sn = msg.stream_at, msg.stream_len
        for i in range(sn - 6):
            if buf[s0 + i] == 64 and buf[s0 + i + 1] == 100 and buf[s0 + i + 2] == 101 \
                    and buf[s0 + i + 3] == 112 and buf[s0 + i + 4] == 116 and buf[s0 + i + 5] == 104 \
                    and 48 <= buf[s0 + i + 6] <= 57:
                return False
    return True


class Messages(NamedTuple):
    """Per message read here (one row each, in line order)."""

    line: np.ndarray   # int64 line number in the block
    ints: np.ndarray   # int64 (m, 6): local (receive time), E, T, U, u, pu
    flags: np.ndarray  # bool (m, 4): has local, has E, has T, has pu
    sym: np.ndarray    # int64 (m, 2): span of s in the block
    first: np.ndarray  # int64 (m + 1,): each message's first level row (then the end)


@_step
def _keep(out, m, line, local, msg, rows):
    """Message ``m`` (``msg``, read from ``line``) into ``out`` (:class:`Messages`)."""
    bits = msg.bits
    out.line[m] = line
    out.ints[m, 0] = local
    out.ints[m, 1] = msg.E
    out.ints[m, 2] = msg.T
    out.ints[m, 3] = msg.U
    out.ints[m, 4] = msg.u
    out.ints[m, 5] = msg.pu
    out.flags[m, 0] = local >= 0
    out.flags[m, 1] = (bits & _E) != 0
    out.flags[m, 2] = (bits & _T) != 0
    out.flags[m, 3] = (bits & _PU) != 0
    out.sym[m, 0] = msg.s_at
    out.sym[m, 1] = msg.s_len
    out.first[m + 1] = rows.used[0].rows


@nb.njit(cache=True, nogil=True)
def _scan(buf, word):
    """Every line of ``buf`` that is a diff-depth event (:func:`_is_diff_event`), read into
    :class:`Messages` and :class:`LevelRows`; the other lines copied to ``rest`` (the read ones
    blanked) for the general path."""
    n_lines = 0
    for i in range(buf.size):
        if buf[i] == 10:
            n_lines += 1
    out = Messages(np.empty(n_lines, np.int64), np.empty((n_lines, 6), np.int64),
                   np.empty((n_lines, 4), np.bool_), np.empty((n_lines, 2), np.int64),
                   np.zeros(n_lines + 1, np.int64))
    cap = buf.size // 4 + 2  # level rows: each takes at least ["1","1"],
    rows = LevelRows(np.empty(buf.size, np.uint8), np.zeros(cap + 1, np.int64), np.empty(buf.size, np.uint8),
                     np.zeros(cap + 1, np.int64), np.empty((6, cap), np.int64), np.empty(cap, np.bool_),
                     np.zeros(1, ROWS_USED))
    used = rows.used[0]
    rest = np.empty(buf.size, np.uint8)  # the block with the lines taken here blanked
    msgs = np.zeros(2, MESSAGE)          # [0]: the line being read, [1]: all zero (to clear it)
    msg = msgs[0]
    r = m = start = line = 0
    for end in range(buf.size):
        if buf[end] != 10:
            continue
        ok = False
        p, local = _receive_time(buf, start, end)
        if p >= 0 and p < end and buf[p] == 123:
            msgs[0] = msgs[1]
            s0, s1, s2 = used.price_bytes, used.size_bytes, used.rows
            q = _object(buf, p, end, msg, rows)
            if q >= 0:
                q = _ws(buf, q, end)
            ok = _is_diff_event(buf, q == end, msg, word)
            if ok:
                _keep(out, m, line, local, msg, rows)
                m += 1
            else:  # roll back the levels this line wrote
                used.price_bytes, used.size_bytes, used.rows = s0, s1, s2
        if not ok:
            for i in range(start, end):
                rest[r] = buf[i]
                r += 1
        rest[r] = 10
        r += 1
        start = end + 1
        line += 1
    n = used.rows
    return (out.line[:m], out.ints[:m], out.flags[:m], out.sym[:m], rows.poffs[:n + 1], rows.pdata[:used.price_bytes],
            rows.soffs[:n + 1], rows.sdata[:used.size_bytes], rows.dec[:, :n], rows.bid[:n], out.first[:m + 1],
            rest[:r])


def scan_depth(block: bytes):
    """Scan a block (whole lines, each ending in ``\\n``). Returns ``(fields, rest)``: the depth
    events read here (``line, ints, flags, sym`` per message, then its level rows
    ``poffs, pdata, soffs, sdata, dec, bid, first``: one row per level in stored order, each
    message's bids then asks, price/size text as Arrow offsets + bytes, ``dec[0:3]`` /
    ``dec[3:6]`` the price / size digits, raw and sig, the bid flag, and each message's first
    row) and the block with those lines blanked, for the general path. ``fields`` is None when
    no line was read here."""
    buf = np.frombuffer(block, dtype=np.uint8)
    out = _scan(buf, _DEPTH_UPDATE)
    rest = out[-1]
    if out[0].size == 0:
        return None, block
    return out[:-1], rest.tobytes()
