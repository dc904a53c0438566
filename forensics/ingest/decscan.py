"""Exact decimal strings parsed in one compiled pass (the Writer's fast validation).

:func:`parse_plain` reads a string column's Arrow buffers once and gives, per row, what
:func:`forensics.ingest.normalise._validate_fast` derives with several Polars string passes:
``digits`` (the digits without the point, int64), ``raw`` (fractional digits as written),
``sig`` (fractional digits without trailing zeros) and ``plain``: the row is a plain
non-negative decimal (digits and at most one point, at least one digit, digits fit int64).
Rows that are not plain (nulls, signs, blanks, ``1e-05``, garbage, too many digits) are the
ones the Polars expressions make null or flag; the Writer then takes its checked path, so
only ``plain`` rows need the exact values (tested against the Polars expressions).
"""
from __future__ import annotations

import numpy as np
import polars as pl

from forensics import jitcache

jitcache.configure()  # before numba loads: a writable kernel cache even in a read-only install
import numba as nb  # noqa: E402

_I64_MAX = np.frombuffer(b"9223372036854775807", dtype=np.uint8).copy()


@nb.njit(cache=True, nogil=True, inline="always")  # the stop/bad bytes become constants in each caller
def find_byte(buf, q, stop, bad):
    """Index of the first ``stop`` byte from ``buf[q]``; -1 if a ``bad`` byte or a control byte
    (< 32) comes first. The one inner loop of the compiled scanners' quoted JSON strings
    (:mod:`forensics.ingest.jsonscan`) and CSV names (:mod:`forensics.ingest.csvscan`). No end
    bound, as the CSV loop never had one: the scanners hand it whole lines, so the line's
    newline (a control byte) always stops it."""
    while True:
        c = buf[q]
        if c == stop:
            return q
        if c == bad or c < 32:
            return -1
        q += 1


@nb.njit(cache=True, nogil=True)
def fits_int64(buf, a, b, dot, nd):
    """The ``nd`` digits of ``buf[a:b]`` (the point at ``dot`` skipped, -1 = none) are an int64:
    at most 19 digits, not above 9223372036854775807. Callers test ``nd >= 19`` first, so the
    common short value never pays for the call."""
    if nd < 19:
        return True
    if nd > 19:
        return False
    m = 0
    for k in range(a, b):
        if k == dot:
            continue
        if buf[k] != _I64_MAX[m]:
            return buf[k] < _I64_MAX[m]
        m += 1
    return True


@nb.njit(cache=True, nogil=True)
def _parse(offs, data, valid, has_valid, base):
    n = offs.size - 1
    digits = np.zeros(n, np.int64)
    raw = np.zeros(n, np.int64)
    sig = np.zeros(n, np.int64)
    plain = np.zeros(n, np.bool_)
    for i in range(n):
        if has_valid:
            j = base + i
            if (valid[j >> 3] >> (j & 7)) & 1 == 0:
                continue
        a, b = offs[i], offs[i + 1]
        dot = -1
        nd = 0
        first = -1
        ok = b > a
        for k in range(a, b):
            c = data[k]
            if 48 <= c <= 57:
                if first < 0:
                    first = k
                nd += 1
            elif c == 46 and dot < 0:
                dot = k
            else:
                ok = False
                break
        if not ok or nd == 0:
            continue
        if nd >= 19 and not fits_int64(data, a, b, dot, nd):
            continue
        v = 0
        for k in range(a, b):
            if k != dot:
                v = v * 10 + (data[k] - 48)
        digits[i] = v
        if dot >= 0:
            raw[i] = b - dot - 1
            e = b
            while e > dot + 1 and data[e - 1] == 48:
                e -= 1
            sig[i] = e - dot - 1
        plain[i] = True
    return digits, raw, sig, plain


def parse_plain(s: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(digits, raw, sig, plain)`` numpy arrays for a string series (see module doc)."""
    import pyarrow as pa

    arr = s.cast(pl.Utf8).rechunk().to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    vbuf, obuf, dbuf = arr.buffers()
    offs = np.frombuffer(obuf, dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(dbuf, dtype=np.uint8) if dbuf is not None else np.zeros(0, np.uint8)
    has_valid = vbuf is not None and arr.null_count > 0
    valid = np.frombuffer(vbuf, dtype=np.uint8) if has_valid else np.zeros(1, np.uint8)
    return _parse(offs, data, valid, has_valid, arr.offset)
