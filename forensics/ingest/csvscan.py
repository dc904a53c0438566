"""A compiled reader for canonical Tardis ``incremental_book_L2`` blocks.

:func:`scan_book` reads a block in one pass when every line has the canonical shape
``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount`` with one exchange
and one symbol (byte-identical on every line), integer timestamps, ``true``/``false``,
``bid``/``ask`` and plain decimals (digits with at most one point, fitting int64). It gives the
columns the general path (Polars CSV reader + :func:`forensics.ingest.tardis._book_fast`)
gives, plus the exact columns already parsed (``__digits/__raw/__sig_<col>``, as
:mod:`forensics.ingest.decscan`). Any other block (quotes, blanks, ``\\r``, several symbols,
``1e-05``, upper case, a bad field) returns None and takes the general path, which words the
rejects; the two agree on every block the scanner reads (tested, hypothesis included).
"""
from __future__ import annotations

import numpy as np

from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
import numba as nb  # noqa: E402

from forensics.ingest.decscan import find_byte, fits_int64  # noqa: E402


@nb.njit(cache=True, nogil=True)
def _dec(buf, a, b, out, i):
    """A plain decimal in buf[a:b] -> out[0..2, i] = digits, raw, sig; False if not plain."""
    dot = -1
    nd = 0
    if b <= a:
        return False
    for k in range(a, b):
        c = buf[k]
        if 48 <= c <= 57:
            nd += 1
        elif c == 46 and dot < 0:
            dot = k
        else:
            return False
    if nd == 0 or (nd >= 19 and not fits_int64(buf, a, b, dot, nd)):
        return False
    v = 0
    for k in range(a, b):
        if k != dot:
            v = v * 10 + (buf[k] - 48)
    out[0, i] = v
    if dot >= 0:
        out[1, i] = b - dot - 1
        e = b
        while e > dot + 1 and buf[e - 1] == 48:
            e -= 1
        out[2, i] = e - dot - 1
    else:
        out[1, i] = 0
        out[2, i] = 0
    return True


@nb.njit(cache=True, nogil=True)
def _ns(v):
    """Epoch s/ms/us/ns (inferred by magnitude) -> ns: :func:`forensics.timeutil.to_ns`."""
    if v < 100_000_000_000:
        return v * 1_000_000_000
    if v < 100_000_000_000_000:
        return v * 1_000_000
    if v < 100_000_000_000_000_000:
        return v * 1000
    return v


@nb.njit(cache=True, nogil=True)
def _name_end(buf, p):
    """End (the comma) of an exchange/symbol field starting at ``p``; -1 on a quote or a
    control character (``\\r``, or the line ending early)."""
    return find_byte(buf, p, 44, 34)


@nb.njit(cache=True, nogil=True)
def _same(buf, a, b, ref, n):
    """buf[a:b] holds the same n bytes as buf[ref:ref + n]."""
    if b - a != n:
        return False
    for k in range(n):
        if buf[a + k] != buf[ref + k]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _time_field(buf, p, out, j, i):
    """An integer timestamp (1..18 digits) ending in a comma -> out[j, i] in ns; the comma's
    position, -1 if not such a field. (Indexes, not a view ``out[j]``: a view per call costs
    reference counting in the hot loop.)"""
    v = 0
    q = p
    while True:
        c = buf[q]
        if c == 44:
            break
        if c < 48 or c > 57:
            return -1
        v = v * 10 + (c - 48)
        q += 1
    if q == p or q - p > 18:
        return -1
    out[j, i] = _ns(v)
    return q


@nb.njit(cache=True, nogil=True)
def _word_at(buf, p, word):
    """buf[p:] starts with ``word``."""
    if p + word.size > buf.size:
        return False
    for k in range(word.size):
        if buf[p + k] != word[k]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _word_field(buf, p, w0, w1):
    """0 if the field at ``p`` is the word at w0, 1 if the one at w1 (each ending in a comma,
    as given), -1 otherwise; the field's length is the word's."""
    if _word_at(buf, p, w0):
        return 0
    if _word_at(buf, p, w1):
        return 1
    return -1


@nb.njit(cache=True, nogil=True)
def _dec_field(buf, p, stop, dec, i, j, text, t):
    """A plain decimal ending in byte ``stop``: dec[j..j+2, i] = digits, raw, sig (as
    :func:`_dec`) and its text copied to text[t:]; the stop byte's position, -1 if not plain."""
    v = 0
    nd = 0
    dot = -1
    lastnz = -1  # position of the last non-zero digit
    q = p
    while True:
        c = buf[q]
        if c == stop:
            break
        if 48 <= c <= 57:
            v = v * 10 + (c - 48)
            nd += 1
            if c != 48:
                lastnz = q
        elif c == 46 and dot < 0:
            dot = q
        else:
            return -1
        text[t + q - p] = c
        q += 1
    if nd == 0 or nd > 19:
        return -1
    if nd == 19:  # the 19-digit values that fit int64: checked digit by digit
        if not _dec(buf, p, q, dec[j:j + 3], i):
            return -1
        return q
    dec[j, i] = v
    if dot >= 0:
        dec[j + 1, i] = q - dot - 1
        dec[j + 2, i] = lastnz - dot if lastnz > dot else 0
    else:
        dec[j + 1, i] = 0
        dec[j + 2, i] = 0
    return q


_TRUE, _FALSE = np.frombuffer(b"true,", np.uint8).copy(), np.frombuffer(b"false,", np.uint8).copy()
_BID, _ASK = np.frombuffer(b"bid,", np.uint8).copy(), np.frombuffer(b"ask,", np.uint8).copy()


@nb.njit(cache=True, nogil=True)
def _scan(buf, start, n, t_true, t_false, t_bid, t_ask):
    """One pass over ``n`` lines from ``start``: every field parsed where it is read. Returns
    ok and the columns (``scan_book``); ok is False at the first line that is not canonical."""
    ts = np.empty((2, n), np.int64)    # timestamp, local_timestamp (rows)
    snap = np.empty(n, np.bool_)
    bid = np.empty(n, np.bool_)
    side = np.empty(3 * n, np.uint8)     # 'bid' / 'ask' text (3 bytes each)
    dec = np.empty((6, n), np.int64)     # price digits, raw, sig, amount digits, raw, sig (rows: no copy per column)
    pdata = np.empty(buf.size, np.uint8)
    adata = np.empty(buf.size, np.uint8)
    poffs = np.zeros(n + 1, np.int64)
    aoffs = np.zeros(n + 1, np.int64)
    names = np.zeros(4, np.int64)        # exchange and symbol spans of the first line
    fail = (False, ts, snap, bid, side, dec, pdata, poffs, adata, aoffs, names)
    p = start
    for i in range(n):
        for j in range(2):  # exchange, symbol: the same bytes as on the first line
            if i == 0:
                q = _name_end(buf, p)
                if q <= p:
                    return fail
                names[2 * j], names[2 * j + 1] = p, q - p
            else:
                # the first line's bytes (no comma, quote or control byte in them) then a comma:
                # what _name_end + _same accept, in one pass (the compare stops at the line's end)
                q = p + names[2 * j + 1]
                if not _same(buf, p, q, names[2 * j], names[2 * j + 1]) or buf[q] != 44:
                    return fail
            p = q + 1
        for j in range(2):  # timestamp, local_timestamp
            q = _time_field(buf, p, ts, j, i)
            if q < 0:
                return fail
            p = q + 1
        w = _word_field(buf, p, t_true, t_false)
        if w < 0:
            return fail
        snap[i] = w == 0
        p += t_true.size if w == 0 else t_false.size
        w = _word_field(buf, p, t_bid, t_ask)
        if w < 0:
            return fail
        bid[i] = w == 0
        for k in range(3):
            side[3 * i + k] = buf[p + k]
        p += 4
        q = _dec_field(buf, p, 44, dec, i, 0, pdata, poffs[i])
        if q < 0:
            return fail
        poffs[i + 1] = poffs[i] + q - p
        p = q + 1
        q = _dec_field(buf, p, 10, dec, i, 3, adata, aoffs[i])
        if q < 0:
            return fail
        aoffs[i + 1] = aoffs[i] + q - p
        p = q + 1
    return True, ts, snap, bid, side, dec, pdata[:poffs[n]], poffs, adata[:aoffs[n]], aoffs, names


def scan_book(block: bytes, start: int = 0, n: int | None = None):
    """Scan ``block[start:]`` (whole lines; ``n`` of them if the caller counted). None unless
    every line is canonical (module doc); else ``(ts, snap, bid, side strings, dec, price
    strings, amount strings, exchange, symbol)`` with ``ts`` the two timestamps (rows of a (2, n)
    array; ``dec`` is (6, n)) already in ns
    (:func:`forensics.timeutil.to_ns`)."""
    import pyarrow as pa

    if not block.endswith(b"\n") or len(block) <= start:
        return None
    buf = np.frombuffer(block, dtype=np.uint8)
    if n is None:
        n = block.count(b"\n", start)
    ok, ts, snap, bid, side, dec, pdata, poffs, adata, aoffs, names = _scan(buf, start, n, _TRUE, _FALSE, _BID, _ASK)
    if not ok or len(snap) == 0:
        return None
    prices = pa.LargeStringArray.from_buffers(len(snap), pa.py_buffer(poffs), pa.py_buffer(pdata))
    amounts = pa.LargeStringArray.from_buffers(len(snap), pa.py_buffer(aoffs), pa.py_buffer(adata))
    sides = pa.LargeStringArray.from_buffers(len(snap), pa.py_buffer(np.arange(0, 3 * len(snap) + 1, 3)),
                                             pa.py_buffer(side))
    ex = block[names[0]:names[0] + names[1]].decode()
    sym = block[names[2]:names[2] + names[3]].decode()
    return ts, snap, bid, sides, dec, prices, amounts, ex, sym
