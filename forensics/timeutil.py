"""Time conventions: everything stored is UTC nanoseconds since the epoch (int64).

Venues publish seconds, milliseconds, microseconds (Tardis, Binance spot since 2025-01-01)
or nanoseconds (some Tardis exports, collectors' receive times). ``to_ns`` infers the unit
of each value from its magnitude, which is unambiguous for dates between 1973 and 2286.
"""
from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import polars as pl

from forensics.errors import ForensicsError

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000

# magnitude thresholds: < 1e11 seconds, < 1e14 ms, < 1e17 us, else ns
_S_MAX, _MS_MAX, _US_MAX = 10**11, 10**14, 10**17


def to_ns_expr(e: pl.Expr) -> pl.Expr:
    """Epoch integer in s/ms/us/ns (inferred per value) -> int64 UTC ns."""
    e = e.cast(pl.Int64)
    return (
        pl.when(e < _S_MAX).then(e * NS_PER_S)
        .when(e < _MS_MAX).then(e * NS_PER_MS)
        .when(e < _US_MAX).then(e * 1000)
        .otherwise(e)
    )


def to_ns(value: int) -> int:
    """Scalar version of :func:`to_ns_expr`."""
    value = int(value)
    if value < _S_MAX:
        return value * NS_PER_S
    if value < _MS_MAX:
        return value * NS_PER_MS
    if value < _US_MAX:
        return value * 1000
    return value


def tzinfo(tz: str | None) -> dt.tzinfo:
    """'UTC', 'Asia/Shanghai', '+08:00', 'UTC+8' -> tzinfo."""
    if tz is None or tz.upper() in ("UTC", "Z"):
        return dt.timezone.utc
    m = re.fullmatch(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", tz.strip(), re.I)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        delta = dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        return dt.timezone(sign * delta)
    try:
        return ZoneInfo(tz)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError
        raise ForensicsError(f"unknown timezone {tz!r} (use e.g. UTC, Asia/Shanghai, +08:00)") from exc


def parse_time(text: str, tz: str | None = None) -> int:
    """ISO-8601 (with or without offset) or epoch number -> UTC ns.

    A time without offset is read in ``tz`` (default UTC): ``parse_time("2025-10-11 05:13",
    "Asia/Shanghai")`` is 2025-10-10 21:13 UTC.
    """
    s = str(text).strip()
    if re.fullmatch(r"\d{9,19}", s):
        return to_ns(int(s))
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ForensicsError(f"cannot read time {text!r}: use ISO-8601, e.g. 2025-10-10T21:13:00Z") from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=tzinfo(tz))
    return int(t.timestamp()) * NS_PER_S + t.microsecond * 1000


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|min|h|d)")
_UNIT_NS = {"ns": 1, "us": 1000, "ms": NS_PER_MS, "s": NS_PER_S, "m": 60 * NS_PER_S,
            "min": 60 * NS_PER_S, "h": 3600 * NS_PER_S, "d": 86400 * NS_PER_S}


def parse_duration(text: str) -> int:
    """'100ms', '1s', '30m', '1h30m', '2.5s' -> ns."""
    s = str(text).strip().lower()
    pos, total = 0, 0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += round(float(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    if pos != len(s) or not s:
        raise ForensicsError(f"cannot read duration {text!r}: use e.g. 100ms, 1s, 30m, 1h")
    return total


def format_ns(ns: int | None, tz: str | None = None, ms: bool = True) -> str:
    """UTC ns -> 'YYYY-MM-DD HH:MM:SS.mmm+08:00' in ``tz``."""
    if ns is None:
        return "-"
    t = dt.datetime.fromtimestamp(ns // NS_PER_S, tz=dt.timezone.utc).replace(
        microsecond=(ns % NS_PER_S) // 1000).astimezone(tzinfo(tz))
    return t.isoformat(sep=" ", timespec="milliseconds" if ms else "seconds")


def iso_utc(ns: int | None) -> str | None:
    """UTC ns -> ISO-8601 'YYYY-MM-DDTHH:MM:SS.mmmZ' (for JSON)."""
    if ns is None:
        return None
    t = dt.datetime.fromtimestamp(ns // NS_PER_S, tz=dt.timezone.utc).replace(
        microsecond=(ns % NS_PER_S) // 1000)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def date_of(ns: int) -> str:
    """UTC calendar date of a ns timestamp, 'YYYY-MM-DD' (the store's partition key)."""
    return dt.datetime.fromtimestamp(ns // NS_PER_S, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def date_expr(col: str) -> pl.Expr:
    """Polars expression: UTC date 'YYYY-MM-DD' of an int64 ns column (:func:`date_of`)."""
    return pl.from_epoch(pl.col(col), time_unit="ns").dt.strftime("%Y-%m-%d")


def now_iso() -> str:
    """The current UTC time, ISO-8601 to the second (manifest and instrument stamps)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def date_bounds(day: str) -> tuple[int, int]:
    """First and last ns of a UTC day ``YYYY-MM-DD`` (inclusive), for partition pruning."""
    d = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    start = int(d.timestamp()) * 1_000_000_000
    return start, start + 86_400_000_000_000 - 1
