"""Reading blocks of CSV lines with Polars, keeping line numbers and rejecting bad lines.

The fast path hands the whole block to Polars' CSV reader. If that fails (a ragged or
garbled line) or the block has blank lines, the block is split into lines, lines with the
wrong field count are rejected with their line number and text, and the rest are parsed.
"""
from __future__ import annotations

import io

import polars as pl

from forensics.ingest.normalise import Reject


def read_block(block: bytes, first_line: int, columns: list[str], skip_header: bool
               ) -> tuple[pl.DataFrame, list[Reject]]:
    """Parse a block of CSV lines as strings. Returns the frame (with a 1-based ``line``
    column) and rejects. ``skip_header`` drops the block's first line (the file header)."""
    first = first_line
    if skip_header:  # the header is the first non-blank line
        while True:
            nl = block.find(b"\n")
            line, block = (block[:nl], block[nl + 1:]) if nl >= 0 else (block, b"")
            first += 1
            if line.strip() or not block:
                break
    if not block.strip():
        return _empty(columns), []
    if b"\n\n" not in block and not block.startswith(b"\n"):
        try:
            df = pl.read_csv(io.BytesIO(block), has_header=False, new_columns=columns,
                             schema_overrides={c: pl.Utf8 for c in columns}, infer_schema=False,
                             raise_if_empty=False)
            # every line must have exactly the expected fields (Polars pads short lines with nulls)
            if df.width == len(columns) and block.count(b",") == df.height * (len(columns) - 1):
                return df.with_columns(pl.int_range(first, first + df.height, dtype=pl.Int64).alias("line")), []
        except Exception:
            pass
    return _robust(block, first, columns)


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
    """Cast a string column to Int64; rows that fail are rejected (not nulled silently)."""
    parsed = df[col].str.strip_chars().cast(pl.Int64, strict=False)
    bad = parsed.is_null() & df[col].is_not_null() & (df[col].str.strip_chars() != "")
    rejects = [Reject(int(line), f"non-integer {what} {val!r}") for line, val in
               df.filter(bad).select("line", col).iter_rows()]
    return df.with_columns(parsed.alias(col)).filter(~bad), rejects
