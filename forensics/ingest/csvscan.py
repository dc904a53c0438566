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

from forensics.ingest.decscan import _I64_MAX  # noqa: E402


@nb.njit(cache=True, nogil=True)
def _dec(buf, a, b, out, i):
    """A plain decimal in buf[a:b] -> out[i] = digits, raw, sig; False if not plain."""
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
    if nd == 0 or nd > 19:
        return False
    if nd == 19:
        m = 0
        for k in range(a, b):
            if k == dot:
                continue
            if buf[k] != _I64_MAX[m]:
                if buf[k] > _I64_MAX[m]:
                    return False
                break
            m += 1
    v = 0
    for k in range(a, b):
        if k != dot:
            v = v * 10 + (buf[k] - 48)
    out[i, 0] = v
    if dot >= 0:
        out[i, 1] = b - dot - 1
        e = b
        while e > dot + 1 and buf[e - 1] == 48:
            e -= 1
        out[i, 2] = e - dot - 1
    else:
        out[i, 1] = 0
        out[i, 2] = 0
    return True


@nb.njit(cache=True, nogil=True)
def _uint(buf, a, b):
    """Digits in buf[a:b] (1..18) -> value, else -1."""
    n = b - a
    if n < 1 or n > 18:
        return -1
    v = 0
    for k in range(a, b):
        c = buf[k]
        if c < 48 or c > 57:
            return -1
        v = v * 10 + (c - 48)
    return v


@nb.njit(cache=True, nogil=True)
def _scan(buf, start):
    n = 0
    for k in range(start, buf.size):
        if buf[k] == 10:
            n += 1
    ts = np.empty((n, 2), np.int64)
    snap = np.empty(n, np.bool_)
    bid = np.empty(n, np.bool_)
    dec = np.empty((n, 6), np.int64)     # price digits, raw, sig, amount digits, raw, sig
    pdata = np.empty(buf.size, np.uint8)
    adata = np.empty(buf.size, np.uint8)
    poffs = np.zeros(n + 1, np.int64)
    aoffs = np.zeros(n + 1, np.int64)
    tmp = np.zeros((1, 3), np.int64)
    names = np.zeros(4, np.int64)        # exchange and symbol spans of the first line
    fs = np.zeros(9, np.int64)
    p = start
    pi = 0
    ai = 0
    for i in range(n):
        # field starts
        f = 0
        fs[0] = p
        q = p
        while buf[q] != 10:
            c = buf[q]
            if c == 44:
                f += 1
                if f > 7:
                    return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
                fs[f] = q + 1
            elif c == 34 or c == 13 or c < 32:
                return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
            q += 1
        if f != 7:
            return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
        fs[8] = q + 1
        # exchange and symbol: the same bytes as on the first line
        for j in range(2):
            a, b = fs[j], fs[j + 1] - 1
            if i == 0:
                names[2 * j] = a
                names[2 * j + 1] = b - a
                if b == a:
                    return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
            else:
                if b - a != names[2 * j + 1]:
                    return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
                o = names[2 * j]
                for k in range(b - a):
                    if buf[a + k] != buf[o + k]:
                        return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
        for j in range(2):
            v = _uint(buf, fs[2 + j], fs[3 + j] - 1)
            if v < 0:
                return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
            ts[i, j] = v
        a, b = fs[4], fs[5] - 1
        if b - a == 4 and buf[a] == 116 and buf[a + 1] == 114 and buf[a + 2] == 117 and buf[a + 3] == 101:
            snap[i] = True
        elif b - a == 5 and buf[a] == 102 and buf[a + 1] == 97 and buf[a + 2] == 108 and buf[a + 3] == 115 \
                and buf[a + 4] == 101:
            snap[i] = False
        else:
            return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
        a, b = fs[5], fs[6] - 1
        if b - a != 3:
            return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
        if buf[a] == 98 and buf[a + 1] == 105 and buf[a + 2] == 100:
            bid[i] = True
        elif buf[a] == 97 and buf[a + 1] == 115 and buf[a + 2] == 107:
            bid[i] = False
        else:
            return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
        for j in range(2):
            a, b = fs[6 + j], fs[7 + j] - 1
            if not _dec(buf, a, b, tmp, 0):
                return False, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names
            dec[i, 3 * j] = tmp[0, 0]
            dec[i, 3 * j + 1] = tmp[0, 1]
            dec[i, 3 * j + 2] = tmp[0, 2]
            if j == 0:
                for k in range(a, b):
                    pdata[pi] = buf[k]
                    pi += 1
                poffs[i + 1] = pi
            else:
                for k in range(a, b):
                    adata[ai] = buf[k]
                    ai += 1
                aoffs[i + 1] = ai
        p = q + 1
    return True, ts, snap, bid, dec, pdata[:pi], poffs, adata[:ai], aoffs, names


def scan_book(block: bytes, start: int = 0):
    """Scan ``block[start:]`` (whole lines). None unless every line is canonical (module doc);
    else ``(ts, snap, bid, dec, price strings, amount strings, exchange, symbol)``."""
    import pyarrow as pa

    if not block.endswith(b"\n") or len(block) <= start:
        return None
    buf = np.frombuffer(block, dtype=np.uint8)
    ok, ts, snap, bid, dec, pdata, poffs, adata, aoffs, names = _scan(buf, start)
    if not ok or len(snap) == 0:
        return None
    prices = pa.LargeStringArray.from_buffers(len(snap), pa.py_buffer(poffs), pa.py_buffer(pdata))
    amounts = pa.LargeStringArray.from_buffers(len(snap), pa.py_buffer(aoffs), pa.py_buffer(adata))
    ex = block[names[0]:names[0] + names[1]].decode()
    sym = block[names[2]:names[2] + names[3]].decode()
    return ts, snap, bid, dec, prices, amounts, ex, sym
