"""Exact prices and sizes: decimal strings -> integer units at a per-instrument scale.

Every price is stored as an int64 count of ``10**-price_decimals`` and every size as an int64
count of ``10**-size_decimals`` (the instrument's *tick* and *lot* units in the store). The
decimals are inferred from the venue's own decimal strings (significant fractional digits,
trailing zeros ignored), so ``"120000.10"`` and ``"120000.1"`` are the same integer and no
two floats from different parsings are ever compared. Sums of sizes are exact integer sums.

Numbers in scientific notation (Tardis writes ``1e-05`` for tiny amounts) are accepted and
converted exactly through :class:`decimal.Decimal` (only those rare rows leave the vectorised
path). Anything else is rejected with the reason.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

import polars as pl

PLAIN = r"^\d+(\.\d*)?$|^\.\d+$"
SCI = r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$"
MAX_DECIMALS = 12
MAX_DIGITS = 18  # int64 holds 18 full decimal digits


def _normalise_sci(s: pl.Series) -> pl.Series:
    """Rewrite scientific-notation strings as plain decimals (exactly); leave others."""
    mask = s.str.contains(SCI).fill_null(False)
    if not mask.any():
        return s
    def plain(x: str) -> str:
        try:
            return format(Decimal(x), "f")
        except InvalidOperation:
            return x
    fixed = s.filter(mask).map_elements(plain, return_dtype=pl.Utf8)
    out = s.to_frame("s").with_row_index("i")
    idx = out.filter(mask)["i"]
    return out["s"].scatter(idx, fixed)


def clean(s: pl.Series) -> pl.Series:
    """Strip blanks, normalise scientific notation; null stays null."""
    s = s.cast(pl.Utf8).str.strip_chars()
    return _normalise_sci(s)


def fraction_digits(s: pl.Series) -> pl.Series:
    """Significant fractional digits of each plain decimal string (trailing zeros ignored)."""
    frac = s.str.split_exact(".", 1).struct.field("field_1").fill_null("")
    return frac.str.strip_chars_end("0").str.len_chars()


def decimals_needed(s: pl.Series) -> int:
    """Max significant fractional digits among valid plain decimal strings (0 if none)."""
    valid = s.filter(s.str.contains(PLAIN).fill_null(False))
    if valid.len() == 0:
        return 0
    return int(fraction_digits(valid).max() or 0)


def invalid_reason(s: pl.Series, what: str, decimals: int, allow_zero: bool) -> pl.Series:
    """Per row: null if ``s`` converts exactly at ``decimals``, else a reason string."""
    df = pl.DataFrame({"s": s})
    ok_syntax = pl.col("s").str.contains(PLAIN).fill_null(False)
    int_digits = pl.col("s").str.split_exact(".", 1).struct.field("field_0").str.strip_chars_start("0").str.len_chars()
    frac = pl.col("s").str.split_exact(".", 1).struct.field("field_1").fill_null("").str.strip_chars_end("0")
    is_zero = pl.col("s").str.replace_all(r"[0.]", "").str.len_chars() == 0
    reason = (
        pl.when(pl.col("s").is_null()).then(pl.lit(f"missing {what}"))
        .when(pl.col("s").str.starts_with("-")).then(pl.lit(f"negative {what} ") + pl.col("s"))
        .when(~ok_syntax).then(pl.lit(f"non-numeric {what} ") + pl.col("s").str.slice(0, 40))
        .when(frac.str.len_chars() > decimals).then(pl.lit(f"{what} has more than {decimals} decimals: ") + pl.col("s"))
        .when(int_digits + decimals > MAX_DIGITS).then(pl.lit(f"{what} too large: ") + pl.col("s"))
        .when(is_zero & (not allow_zero)).then(pl.lit(f"zero {what}"))
        .otherwise(None)
    )
    return df.select(reason.alias("r"))["r"]


def to_units(s: pl.Series, decimals: int) -> pl.Series:
    """Plain decimal strings -> int64 count of 10**-decimals. Invalid rows give null.

    Callers validate first with :func:`invalid_reason`; this never rounds: a string with more
    significant decimals than ``decimals`` yields null.
    """
    df = pl.DataFrame({"s": s})
    parts = pl.col("s").str.split_exact(".", 1)
    ip = parts.struct.field("field_0")
    ip = pl.when(ip == "").then(pl.lit("0")).otherwise(ip)
    fp = parts.struct.field("field_1").fill_null("").str.strip_chars_end("0")
    int_digits = parts.struct.field("field_0").str.strip_chars_start("0").str.len_chars()
    ok = (pl.col("s").str.contains(PLAIN).fill_null(False) & (fp.str.len_chars() <= decimals)
          & (int_digits + decimals <= MAX_DIGITS))
    if decimals:
        frac_val = fp.str.pad_end(decimals, "0").cast(pl.Int64, strict=False)
    else:
        frac_val = pl.lit(0, pl.Int64)
    val = ip.cast(pl.Int64, strict=False) * (10 ** decimals) + frac_val
    return df.select(pl.when(ok).then(val).otherwise(None).alias("v"))["v"].cast(pl.Int64)


def room(max_units: int) -> int:
    """How many more decimals a column whose largest ``|value|`` is ``max_units`` can take (each
    one a factor 10) with every value still below ``10**MAX_DIGITS`` (int64, DECIMAL(18))."""
    n = len(str(abs(int(max_units)))) if max_units else 0
    return max(0, MAX_DIGITS - n)


def units_to_str(value: int, decimals: int) -> str:
    """int units -> canonical decimal string (for messages and reports)."""
    if decimals == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    v = abs(int(value))
    return f"{sign}{v // 10**decimals}.{v % 10**decimals:0{decimals}d}"


def units_to_decimal(value: int, decimals: int) -> Decimal:
    """int units -> exact Decimal."""
    return Decimal(int(value)).scaleb(-decimals)
