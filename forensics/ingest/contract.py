"""The reader contract: what every reader's frames must look like, checked by the Writer.

A reader's frame for a table holds exactly the table's stored columns
(:data:`forensics.schema.TABLES`) minus ``seq`` (the Writer's), plus the bookkeeping columns
:data:`FRAME_COLS`. A missing column, an extra one (a misspelling: ``sise`` for ``size``) or a
dtype that cannot be cast exactly is a reader bug: :class:`ReaderContractError` names the
reader (format), the table and the file, and nothing of the file is written. Columns a venue
may genuinely not have are declared here, per table (:data:`OPTIONAL`): a reader may leave
those out and they are stored as null, never silently anything else.

Exact columns (prices, sizes: :data:`forensics.ingest.normalise.EXACT_INPUT`) arrive as the
venue's decimal strings (integers are accepted: their text is exact); a float there is an error
(a binary float is not the venue's decimal).

Gap rows are checked the same way against :data:`forensics.ingest.seqchain.GAP_KEYS` (build them
with :func:`~forensics.ingest.seqchain.gap_row`).
"""
from __future__ import annotations

import polars as pl

from forensics.errors import ForensicsError
from forensics.ingest.seqchain import GAP_KEYS
from forensics.schema import TABLES

#: columns every reader frame carries besides the table's: the instrument (partition names)
#: and the arrival position / source line the Writer turns into ``seq`` and reject messages
FRAME_COLS = {"exchange": pl.Utf8, "symbol": pl.Utf8, "arrival": pl.Int64, "line": pl.Int64}
#: stored columns the Writer computes itself (a reader never hands them over)
WRITER_COLS = ("seq",)
#: tables a reader may produce
READER_TABLES = ("book_updates", "trades", "quotes", "depth_bands", "labels_level_changes")
#: per table, the stored columns a reader may leave out (stored as null), each with its reason
OPTIONAL: dict[str, dict[str, str]] = {
    "book_updates": {
        "update_id": "venues without a sequence number (Tardis CSV)",
        "first_update_id": "only diff feeds with ranges (Binance U) have it",
        "prev_update_id": "only chained feeds (Binance pu, Bybit/OKX previous id) have it",
    },
    "trades": {"hidden": "only LOBSTER reports hidden-order executions"},
    "quotes": {},
    "depth_bands": {},
    "labels_level_changes": {},
}
#: gap-row keys a reader may leave out (an open gap has no end)
GAP_OPTIONAL = ("ts_to", "arrival_to")


class ReaderContractError(ForensicsError):
    """A reader handed the Writer a frame that does not fit the table schema (a reader bug)."""


def _exact_cols(table: str) -> set[str]:
    from forensics.ingest.normalise import EXACT_INPUT  # (normalise imports this module)
    return set(EXACT_INPUT.get(table, {}))


def check_frame(fmt: str, table: str, df: pl.DataFrame, where: str = "") -> pl.DataFrame:
    """``df`` as the Writer takes it: the declared optional columns added as typed nulls, every
    column cast exactly to its stored dtype (exact columns to text), in schema order followed by
    :data:`FRAME_COLS`. Raises :class:`ReaderContractError` naming the reader (``fmt``), the
    table and ``where`` (the file) for a missing, extra or inexactly castable column."""
    head = f"{where}: " if where else ""
    if table not in READER_TABLES:
        raise ReaderContractError(f"{head}reader {fmt!r} produced table {table!r}, which readers cannot "
                                  f"write (one of: {', '.join(READER_TABLES)})")
    want = {c: t for c, t in TABLES[table].items() if c not in WRITER_COLS}
    exact = _exact_cols(table)
    optional = OPTIONAL.get(table, {})
    have = set(df.columns)
    parsed = parsed_cols(exact)
    missing = [c for c in list(want) + list(FRAME_COLS) if c not in have and c not in optional]
    extra = [c for c in df.columns if c not in want and c not in FRAME_COLS and c not in parsed]
    if missing or extra:
        what = "; ".join(x for x in (
            f"missing column(s) {', '.join(missing)}" if missing else "",
            f"unknown column(s) {', '.join(extra)}" if extra else "") if x)
        raise ReaderContractError(
            f"{head}reader {fmt!r} does not fit table {table!r}: {what} (the table takes "
            f"{', '.join(want)} + {', '.join(FRAME_COLS)}; optional: {', '.join(optional) or 'none'})")
    out = []
    for c, t in list(want.items()) + list(FRAME_COLS.items()):
        target = pl.Utf8 if c in exact else t
        if c not in have:
            out.append(pl.lit(None, target).alias(c))
            continue
        out.append(_exact_cast(fmt, table, c, df[c], target, head).alias(c) if df.schema[c] != target
                   else pl.col(c))
    # a scanner's pre-parsed decimals travel with their column (all three, or none)
    for c in exact:
        names = [f"__{k}_{c}" for k in PARSED_PARTS]
        got = [n for n in names if n in have]
        if got and len(got) != len(names):
            raise ReaderContractError(f"{head}reader {fmt!r}: pre-parsed column {c!r} needs all of "
                                      f"{', '.join(names)}, got {', '.join(got)}")
        out += [pl.col(n) for n in got]
    return df.select(out)


#: a reader that already parsed an exact column (a compiled scanner) may hand over
#: ``__digits_<col>``, ``__raw_<col>``, ``__sig_<col>`` (as :func:`forensics.exact.parse`'s fast
#: path gives them); the Writer then converts from those instead of parsing the text again
PARSED_PARTS = ("digits", "raw", "sig")


def parsed_cols(exact) -> set[str]:
    return {f"__{k}_{c}" for c in exact for k in PARSED_PARTS}


def _exact_cast(fmt: str, table: str, col: str, s: pl.Series, target: pl.DataType, head: str) -> pl.Series:
    """``s`` cast to ``target`` if every value survives the round trip, else a contract error."""
    src = s.dtype
    bad = None
    if src == pl.Null:
        return s.cast(target)
    if target == pl.Utf8 and (src.is_float() or not (src.is_integer() or src == pl.Utf8)):
        bad = f"{src} (exact columns take the venue's decimal text)"
    else:
        try:
            cast = s.cast(target, strict=True)
            back = cast.cast(src, strict=False)
            if not bool((back.eq_missing(s)).all()):
                bad = f"{src} (values change when cast to {target})"
        except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
            bad = f"{src} (not castable to {target})"
        else:
            if bad is None:
                return cast
    raise ReaderContractError(f"{head}reader {fmt!r}: table {table!r} column {col!r} is {bad}")


def check_gap(fmt: str, gap: dict, where: str = "") -> dict:
    """A reader's gap row with the declared optional keys filled (None); a missing or unknown
    key is a :class:`ReaderContractError` naming the reader."""
    keys = set(gap)
    missing = [k for k in GAP_KEYS if k not in keys and k not in GAP_OPTIONAL]
    extra = [k for k in gap if k not in GAP_KEYS]
    if missing or extra:
        head = f"{where}: " if where else ""
        raise ReaderContractError(
            f"{head}reader {fmt!r} handed over a gap row that does not fit table 'gaps': "
            + "; ".join(x for x in (f"missing key(s) {', '.join(missing)}" if missing else "",
                                    f"unknown key(s) {', '.join(extra)}" if extra else "") if x)
            + " (build it with forensics.ingest.seqchain.gap_row)")
    if len(keys) == len(GAP_KEYS):
        return gap
    return {k: gap.get(k) for k in GAP_KEYS}


def apply_overrides(df: pl.DataFrame, exchange: str | None, symbol: str | None) -> pl.DataFrame:
    """``--exchange`` / ``--symbol``: the user's names replace what the file says (applied once,
    by the Writer, to every frame and gap row of every reader)."""
    cols = [pl.lit(v, pl.Utf8).alias(c) for c, v in (("exchange", exchange), ("symbol", symbol)) if v]
    return df.with_columns(cols) if cols else df


def select_stored(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """The stored columns of ``table`` from a frame that has them all (the Writer's helper
    columns dropped), cast to the stored dtypes. Unlike :func:`forensics.schema.conform` a
    missing column is an error, never a silent null."""
    missing = [c for c in TABLES[table] if c not in df.columns]
    if missing:
        raise ReaderContractError(f"table {table!r}: missing column(s) {', '.join(missing)} at write time")
    return df.select([pl.col(c).cast(t) for c, t in TABLES[table].items()])
