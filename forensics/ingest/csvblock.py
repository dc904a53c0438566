"""Reading blocks of CSV lines with Polars, keeping line numbers and rejecting bad lines.

The fast path hands the whole block to Polars' CSV reader. If that fails (a ragged or
garbled line) or the block has blank lines, the block is split into lines, lines with the
wrong field count are rejected with their line number and text, and the rest are parsed.
"""
from __future__ import annotations

import io

import polars as pl

from forensics.ingest.normalise import Reject


def read_block(block: bytes, first_line: int, columns: list[str], skip_header: bool,
               types: dict[str, pl.DataType] | None = None) -> tuple[pl.DataFrame, list[Reject]]:
    """Parse a block of CSV lines as strings. Returns the frame (with a 1-based ``line``
    column) and rejects. ``skip_header`` drops the block's first line (the file header).
    ``types`` (e.g. ``{"timestamp": pl.Int64}``) are tried for the whole block first; if any
    value does not parse as its type, the block is read as strings (the caller then rejects
    the bad values with their line), so a typed column may come back as ``Utf8``."""
    first = first_line
    if skip_header:  # the header is the first non-blank line
        while True:
            nl = block.find(b"\n")
            line, block = (block[:nl], block[nl + 1:]) if nl >= 0 else (block, b"")
            first += 1
            if line.strip() or not block:
                break
    if not block or block.isspace():
        return _empty(columns), []
    if not block.startswith(b"\n"):
        for schema in ([{c: types.get(c, pl.Utf8) for c in columns}] if types else []) + [{c: pl.Utf8 for c in columns}]:
            try:
                df = pl.read_csv(block, has_header=False, new_columns=columns, schema=schema,
                                 raise_if_empty=False)
            except Exception:
                continue
            if df.width == len(columns) and _whole_lines(df, block, len(columns)):
                return df.with_columns(pl.int_range(first, first + df.height, dtype=pl.Int64).alias("line")), []
            break
    return _robust(block, first, columns)


def _whole_lines(df: pl.DataFrame, block: bytes, n_columns: int) -> bool:
    """Every line had exactly ``n_columns`` fields and none was blank. Polars raises on a line
    with more fields and gives a shorter or blank one nulls, so without quotes and nulls the
    lines are whole; otherwise look for blank lines and count the separators."""
    if b'"' not in block and not any(df.null_count().row(0)):
        return True
    return b"\n\n" not in block and block.count(b",") == df.height * (n_columns - 1)


def _empty(columns):
    return pl.DataFrame(schema={**{c: pl.Utf8 for c in columns}, "line": pl.Int64})


def _robust(block: bytes, first: int, columns: list[str]) -> tuple[pl.DataFrame, list[Reject]]:
    good, nums, rejects = [], [], []
    for i, raw in enumerate(block.split(b"\n")):
        line = first + i
        if not raw.strip():
            continue
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if raw.count(b",") != len(columns) - 1 or b'"' in raw:
            rejects.append(Reject(line, f"expected {len(columns)} comma-separated fields", text[:200]))
            continue
        good.append(raw)
        nums.append(line)
    if not good:
        return _empty(columns), rejects
    df = pl.read_csv(io.BytesIO(b"\n".join(good) + b"\n"), has_header=False, new_columns=columns,
                     schema_overrides={c: pl.Utf8 for c in columns}, infer_schema=False)
    return df.with_columns(pl.Series("line", nums, dtype=pl.Int64)), rejects


def is_header(line: bytes, expected_first: str) -> bool:
    return line.strip().lower().startswith(expected_first.lower().encode())


def int_or_reject(df: pl.DataFrame, col: str, what: str) -> tuple[pl.DataFrame, list[Reject]]:
    """Cast a string column to Int64; rows that fail are rejected (not nulled silently).
    A column already read as integers (:func:`read_block` ``types``) is kept as it is."""
    if df[col].dtype == pl.Int64:
        return df, []
    parsed = df[col].str.strip_chars().cast(pl.Int64, strict=False)
    bad = parsed.is_null() & df[col].is_not_null() & (df[col].str.strip_chars() != "")
    rejects = [Reject(int(line), f"non-integer {what} {val!r}") for line, val in
               df.filter(bad).select("line", col).iter_rows()]
    return df.with_columns(parsed.alias(col)).filter(~bad), rejects
