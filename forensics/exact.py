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


def parse(s: pl.Series) -> dict[str, pl.Series]:
    """Decimal strings -> ``digits`` (int64 of the digits without the point), ``raw``
    (fractional digits as written), ``sig`` (significant fractional digits, trailing zeros
    ignored), ``ok`` (a plain non-negative decimal) and the cleaned string ``s``.

    Fast path: one ``replace`` + integer cast. Only rows that fail it (blanks, scientific
    notation, signs, garbage, > 18 digits) go through :func:`clean` and the regexes."""
    s = s.cast(pl.Utf8)
    digits = s.str.replace(".", "", literal=True, n=1).cast(pl.Int64, strict=False)
    ok = (digits.is_not_null() & ~s.str.starts_with("-") & ~s.str.starts_with("+")).fill_null(False)
    if not ok.all():  # rare rows: blanks, 1e-05, signs, garbage, > 18 digits
        idx = (~ok).arg_true()
        sub = clean(s.gather(idx))
        # trailing fractional zeros carry no value: drop them so long strings still fit int64
        sub = pl.DataFrame({"s": sub}).select(pl.when(pl.col("s").str.contains(".", literal=True))
                                              .then(pl.col("s").str.strip_chars_end("0"))
                                              .otherwise(pl.col("s")))["s"]
        s = s.scatter(idx, sub)
        digits = digits.scatter(idx, sub.str.replace(".", "", literal=True, n=1).cast(pl.Int64, strict=False))
        ok = ok.scatter(idx, sub.str.contains(PLAIN).fill_null(False))
    e = pl.col("s")
    dot = e.str.find(".", literal=True).cast(pl.Int64)
    n = e.str.len_bytes().cast(pl.Int64)
    df = pl.DataFrame({"s": s}).select(
        e, pl.when(dot.is_null()).then(0).otherwise(n - dot - 1).alias("raw"),
        pl.when(dot.is_null()).then(0).otherwise(
            e.str.strip_chars_end("0").str.len_bytes().cast(pl.Int64) - dot - 1).alias("sig"))
    df = df.with_columns(digits.alias("digits"), ok.alias("ok"))
    return {c: df[c] for c in df.columns}


def int_part(digits: pl.Expr, raw: pl.Expr) -> pl.Expr:
    """Integer part of a parsed value (``digits`` / 10**``raw``)."""
    return digits // pl.lit(10, pl.Int64).pow(raw.clip(0, MAX_DIGITS))


def units(digits: pl.Series, raw: pl.Series, decimals: int) -> pl.Series:
    """``digits``/``raw`` from :func:`parse` -> int64 units of 10**-decimals. Exact for rows
    whose significant decimals are <= ``decimals`` and whose value fits (callers check): only
    trailing zeros are dropped when ``raw > decimals``."""
    df = pl.DataFrame({"d": digits, "raw": raw})
    k = pl.lit(decimals, pl.Int64) - pl.col("raw")
    return df.select(pl.when(k >= 0).then(pl.col("d") * pl.lit(10, pl.Int64).pow(k.clip(0)))
                     .otherwise(pl.col("d") // pl.lit(10, pl.Int64).pow((-k).clip(0))).alias("v"))["v"]


def decimals_needed(s: pl.Series) -> int:
    """Max significant fractional digits among valid plain decimal strings (0 if none)."""
    p = parse(s)
    sig = p["sig"].filter(p["ok"])
    return int(sig.max() or 0) if sig.len() else 0


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
    """Plain decimal strings -> int64 count of 10**-decimals; null where that is not exact
    (invalid text, more significant decimals than ``decimals``, beyond int64). Never rounds."""
    p = parse(s)
    df = pl.DataFrame({k: p[k] for k in ("digits", "raw", "sig", "ok")})
    fits = (pl.col("ok") & (pl.col("sig") <= decimals)
            & (int_part(pl.col("digits"), pl.col("raw")) < 10 ** (MAX_DIGITS - decimals))).fill_null(False)
    v = units(p["digits"], p["raw"], decimals)
    return df.with_columns(v.alias("v")).select(pl.when(fits).then(pl.col("v")).alias("v"))["v"].cast(pl.Int64)


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
