"""How the report writes numbers and times: percentages, sizes, durations, local clock times,
and DuckDB/polars scalars as JSON-able values. Shared by every report module and the CLI."""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

from forensics.timeutil import NS_PER_MS, NS_PER_S


def py(v):
    """A DuckDB/polars scalar as a JSON-able Python value (Decimal -> float, NaN -> None)."""
    if isinstance(v, Decimal):
        v = float(v)
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return v


def pct(x, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    v = 100 * x
    s = f"{v:.1f}" if abs(v) < 10 and round(v, 1) != round(v) else f"{v:.0f}"
    return (("+" if v > 0 else "") if signed else "") + s + "%"


def qty(x, unit: str = "") -> str:
    if x is None:
        return "n/a"
    a = abs(x)
    if a == 0:
        return f"0 {unit}".strip()
    s = f"{x:,.0f}" if a >= 100 else f"{x:,.1f}" if a >= 10 else f"{x:,.2f}" if a >= 0.1 else f"{x:,.4f}"
    return f"{s} {unit}".strip()


def removed(x) -> str:
    """A removed share (1 - after/before): '87%'; a negative one means the depth grew: 'none (grew 4.1%)'."""
    if x is None:
        return "n/a"
    return pct(x) if x >= 0 else f"none (grew {pct(-x)})"


def num(x, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, int):
        return f"{x:,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def duration(ns) -> str:
    if ns is None:
        return "n/a"
    ns = abs(int(ns))
    if ns < NS_PER_S:
        return f"{ns / NS_PER_MS:.0f} ms"
    if ns < 10 * NS_PER_S:
        return f"{ns / NS_PER_S:.1f} s"
    if ns < 120 * NS_PER_S:
        return f"{ns / NS_PER_S:.0f} s"
    m, s = divmod(int(round(ns / NS_PER_S)), 60)
    return f"{m} min {s} s" if s else f"{m} min"


def clock(ns: int, tz: str, with_date: bool = False) -> str:
    from forensics.report.context import local_dt
    t = local_dt(ns, tz)
    s = t.strftime("%H:%M:%S") + (f".{(ns % NS_PER_S) // NS_PER_MS:03d}" if ns % NS_PER_S else "")
    return (t.strftime("%Y-%m-%d ") + s) if with_date else s
