"""Binance diff-depth captures (USD-M futures, COIN-M, spot): JSON lines -> book_updates,
trades, quotes, gaps.

A line is a raw websocket event, a combined-stream wrapper ``{"stream": ..., "data": {...}}``
or a collector capture line ``<local receive time> <json>`` (hftbacktest's collector writes
these gzipped, receive time in ns; older captures in us). ``depthUpdate``, ``trade``,
``aggTrade``, ``bookTicker`` and the REST depth snapshot (``{"lastUpdateId", "bids", "asks"}``,
futures also ``E``/``T``) are interleaved in one file; the snapshot may instead be given as a
separate file (format ``binance-snapshot``, paired by ``forensics ingest capture.gz snap.json``).

Traps (read these before trusting a number):

* **E vs T.** Futures events carry ``E`` (event time: when the message was pushed) and ``T``
  (transaction time: when the matching engine made the change). ``E`` is later than ``T`` by
  a variable few ms (more under load, batched per stream), so a trade's ``E`` and the ``E`` of
  the depth update it consumed do not line up, while both share ``T``. Like hftbacktest we
  store ``ts = T`` when present, else ``E`` (spot depth has only ``E``; mixing ``T`` and ``E``
  axes would misorder trades and depth). ``local_ts`` is the collector's receive time.
* **Sync rules** (Binance "how to manage a local order book"), per exchange+symbol:
  futures: drop events with ``u < lastUpdateId``; the first event must have
  ``U <= lastUpdateId <= u``; then every ``pu`` must equal the previous ``u``.
  spot: drop ``u <= lastUpdateId``; first event ``U <= lastUpdateId+1 <= u``; then
  ``U == previous u + 1``.
* **The snapshot arrives late.** A collector requests the REST snapshot when the stream starts
  (or breaks) and writes it when the response comes back, i.e. *after* the events that straddle
  its ``lastUpdateId``. A snapshot is therefore placed logically just before the first event
  (of its instrument, after the previous snapshot's place) with ``u >= lastUpdateId``
  (spot ``u > lastUpdateId``), looking back up to ``LOOKBACK_NS`` (120 s of receive time) —
  its ``seq`` sits right before that event; ``local_ts`` still says when it was received.
* **Snapshot time.** Futures: the snapshot's ``T`` (else ``E``), clamped to be no later than
  the event it lands before (true of real data) so ``(ts, seq)`` order applies the snapshot
  first. Spot snapshots carry no time: they get the ``ts`` of the first event applied on top
  of them (the straddling event, exchange clock), else the line's receive time, else the
  instrument's last event time. A spot snapshot file ingested alone cannot be placed in time:
  ingest it with its capture.
* **Gaps.** A broken chain (or a first event that does not straddle the snapshot) is recorded
  in ``gaps`` (reason ``chain_break`` / ``snapshot_sync``), never stitched: ``ts_from`` is the
  last event applied in sync, ``seq_from`` the first event that could not be applied, ``ts_to``
  / ``seq_to`` the next snapshot (null if none follows). Events after a break *are stored*: the
  store's contract is that book replay treats state as unknown from ``seq_from`` until the next
  snapshot block, and they are still evidence of activity. Only one gap is recorded per break
  (later breaks inside an unknown stretch add nothing).
* **Before the first snapshot.** Events before an instrument's first snapshot are dropped
  (counted as dropped) when a snapshot follows within the look-back window. If none does (no
  snapshot at all), they are stored under a gap with reason ``no_snapshot`` from the first event
  (``ts_to`` = the first snapshot if one comes later, else null).
* Bare REST snapshots carry no symbol: in a one-instrument capture (hftbacktest writes one
  file per symbol) it is that instrument; otherwise the instrument whose event straddles the
  snapshot's ``lastUpdateId``. A separate snapshot file given next to captures is used only by
  the capture it fits (an event straddles it); others ignore it.
* A later snapshot (reconnect / resync) starts a new sync and closes an open gap. A snapshot
  older than an intact chain it lands in is redundant and is dropped (no gap).
* Exchange: depth with ``pu`` -> ``binance-futures``; COIN-M symbols (``BTCUSD_PERP``,
  ``BTCUSD_251226``) -> ``binance-delivery``; no ``pu`` -> ``binance-spot``; trades/quotes take
  their instrument's market from its depth, else spot if the trade has ``M`` / the quote has
  no ``E``/``T``. ``--exchange``/``--symbol`` override (applied by the Writer). Symbols come from the event's ``s``
  (upper case), not the lower-case stream name.
* Trades: ``m`` (buyer is maker) true means the aggressor SOLD -> ``aggressor='sell'``.
  If a capture holds both ``trade`` and ``aggTrade`` for an instrument, aggTrades are dropped
  (they aggregate the same prints). Futures ``trade`` prints with ``X`` = ``INSURANCE_FUND``,
  ``ADL`` or ``NA`` did not trade against the book: dropped (``MARKET``, ``LIQUIDATION`` kept).
* ``bookTicker`` -> ``quotes`` (update id ``u``; spot bookTicker has no time: the receive
  time is its ``ts``). Partial-depth streams (``@depth5/10/20``) are top-N snapshots, not
  diffs: ignored when the combined-stream name shows them (a raw spot partial-depth message is
  indistinguishable from a REST snapshot: do not mix those in). Other messages (markPrice,
  subscription replies, REST errors) are ignored; lines that are not JSON are rejected with
  their line number; a truncated gzip keeps every row before the damage.

Parsing is per block: the usual ``depthUpdate`` lines (the bulk of a capture) are read by a
compiled scanner (:mod:`forensics.ingest.jsonscan`, one pass over the bytes): its levels come
out as rows already (each message's bids then asks) with the exact decimals parsed, carried with
their messages between rounds, so neither the explode nor the Writer's text parse runs for them
(a line with a level that is not a plain decimal is left to the general path); every other line (trades, tickers, snapshots, and any depth line the scanner
does not take: escapes, nulls, odd types, partial-depth streams) goes through Polars
``json_decode`` with explicit struct types, orjson wording the rejects. Both give the same rows
(tested line by line and on generated lines). The sync state machine works on numpy arrays of
the block's messages and loops only over snapshots and breaks.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import orjson
import polars as pl

from forensics.errors import ForensicsError
from forensics.ingest.normalise import LINE_SHIFT, Chunk, Format, ReadOptions, Reject, _constant
from forensics.ingest.seqchain import ChainState, SeqChain, first_break, straddles
from forensics.ingest.source import NameInfo, NameRule, Source, count_lines, prefetch
from forensics.timeutil import to_ns_expr

FUTURES, DELIVERY, SPOT = "binance-futures", "binance-delivery", "binance-spot"
LOOKBACK_NS = 120 * 1_000_000_000  # how far back a late snapshot may reach (receive time)
CARRY_MAX_LEVELS = 2_000_000       # bound on levels held back for that look-back
COINM = r"_(PERP|\d{6})$"

LEVELS = pl.List(pl.List(pl.Utf8))
I64, STR, BOOL = pl.Int64, pl.Utf8, pl.Boolean
DEPTH = {"e": STR, "E": I64, "T": I64, "s": STR, "U": I64, "u": I64, "pu": I64, "b": LEVELS, "a": LEVELS}
SNAP = {"lastUpdateId": I64, "E": I64, "T": I64, "symbol": STR, "bids": LEVELS, "asks": LEVELS}
AGG = {"e": STR, "E": I64, "T": I64, "s": STR, "a": I64, "p": STR, "q": STR, "m": BOOL, "M": BOOL}
TRADE = {"e": STR, "E": I64, "T": I64, "s": STR, "t": I64, "p": STR, "q": STR, "m": BOOL, "M": BOOL,
         "X": STR}
TICKER = {"e": STR, "E": I64, "T": I64, "s": STR, "u": I64, "b": STR, "B": STR, "a": STR, "A": STR}
OFF_BOOK_TRADES = ("INSURANCE_FUND", "ADL", "NA")

#: book message frame (depth events 'D' and snapshots 'S') handed to the sync engine
MSG_SCHEMA = {"pos": I64, "snap": BOOL, "ex": STR, "sym": STR, "ts": I64, "local_ts": I64,
              "U": I64, "u": I64, "pu": I64, "L": I64, "b": LEVELS, "a": LEVELS, "line": I64,
              "nlev": I64, "lv": I64}
#: a message read by the compiled scanner has its levels as rows of a level frame (``lv``: the
#: index of its first row there, ``nlev`` rows: bids then asks) with the exact decimals parsed
#: (:data:`LEVEL_SCHEMA`), and null ``b``/``a``; the other messages have ``b``/``a`` and null ``lv``
PARSED = [f"__{k}_{c}" for c in ("price", "size") for k in ("digits", "raw", "sig")]
LEVEL_SCHEMA = {"__bid": pl.Boolean, "price": STR, "size": STR, **{c: I64 for c in PARSED}}
#: plus the engine's arrival clock
ENGINE_SCHEMA = {**MSG_SCHEMA, "clock": I64}


# ---- block parsing ---------------------------------------------------------------------------

def _wrapped(fields: dict) -> pl.Struct:
    return pl.Struct({**fields, "stream": STR, "data": pl.Struct(fields)})


def _lines(block: bytes) -> pl.Series:
    """The block's lines as one Utf8 column (blank lines kept as null, numbering intact)."""
    n = block.count(b"\n")
    try:
        df = pl.read_csv(io.BytesIO(block), has_header=False, separator="\x01", quote_char=None,
                         new_columns=["raw"], schema_overrides={"raw": STR}, infer_schema=False,
                         encoding="utf8-lossy", raise_if_empty=False)
        if df.height == n and df.width == 1:
            return df["raw"]
    except Exception:  # pragma: no cover - odd bytes: fall back to a plain split
        pass
    return pl.Series("raw", block.decode("utf-8", "replace").split("\n")[:n], dtype=STR)


def _decode(js: pl.Series, dtype: pl.Struct) -> tuple[pl.Series, list[int]]:
    """json_decode with a fixed struct type; lines that fail are found by bisection and
    returned as indices (their rows are null)."""
    try:
        return js.str.json_decode(dtype), []
    except Exception:
        if js.len() == 1:
            return pl.Series([None], dtype=dtype), [0]
    mid = js.len() // 2
    a, ba = _decode(js.slice(0, mid), dtype)
    b, bb = _decode(js.slice(mid), dtype)
    return pl.concat([a, b]), ba + [mid + i for i in bb]


def _why(text: str, what: str) -> str:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return f"malformed JSON ({exc})"
    return f"unexpected field types in {what} message"


def _field(name: str) -> pl.Expr:
    """A field of a raw event or of a combined-stream wrapper's ``data``."""
    return pl.coalesce(pl.col("j").struct.field("data").struct.field(name), pl.col("j").struct.field(name))


def _stream_symbol() -> pl.Expr:
    return pl.col("j").struct.field("stream").str.split("@").list.first().str.to_uppercase()


def _venue(sym: pl.Expr, futures: pl.Expr) -> pl.Expr:
    return (pl.when(sym.str.contains(COINM).fill_null(False)).then(pl.lit(DELIVERY))
            .when(futures).then(pl.lit(FUTURES)).otherwise(pl.lit(SPOT)))


def _ts(*cols: str) -> pl.Expr:
    return to_ns_expr(pl.coalesce([pl.col(c) for c in cols]))


@dataclass
class _Parsed:
    book: pl.DataFrame          # MSG_SCHEMA rows (D and S)
    agg: pl.DataFrame
    trade: pl.DataFrame
    ticker: pl.DataFrame
    rejects: list[Reject] = field(default_factory=list)
    t_fallback: int = 0         # messages whose T was present but unreadable: E used instead
    levels: pl.DataFrame | None = None  # LEVEL_SCHEMA rows of the scanner's messages (their lv)


def book_messages(p: _Parsed) -> pl.DataFrame:
    """``p.book`` with every message's levels as ``b``/``a`` lists (the scanner's level rows put
    back into lists, ``lv`` dropped): the form both paths can be compared in."""
    book = p.book
    if p.levels is None or book.height == 0 or book["lv"].null_count() == book.height:
        return book.drop("lv")
    fast = book.filter(pl.col("lv").is_not_null())
    n = fast["nlev"].to_numpy()
    msg = np.repeat(np.arange(fast.height), n)
    idx = np.repeat(fast["lv"].to_numpy(), n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    lv = p.levels[idx].with_columns(pl.Series("__m", msg), pl.concat_list("price", "size").alias("__pq"))
    lists = {}
    for side, bid in (("b", True), ("a", False)):
        g = lv.filter(pl.col("__bid") == bid).group_by("__m", maintain_order=True).agg(pl.col("__pq"))
        col = [[] for _ in range(fast.height)]
        for m, pq in g.iter_rows():
            col[m] = pq
        lists[side] = pl.Series(side, col, dtype=LEVELS)
    fast = fast.with_columns(lists["b"], lists["a"])
    return pl.concat([book.filter(pl.col("lv").is_null()), fast]).sort("pos", maintain_order=True).drop("lv")


def _t_fallbacks(g: pl.DataFrame) -> int:
    """Messages with a ``T`` field that did not decode (out of int64 range, not an integer)
    while ``E`` did: their time falls back to E, which is counted, not silent."""
    if g.height == 0 or "T" not in g.columns:
        return 0
    return int(g.select((pl.col("T").is_null() & pl.col("E").is_not_null()
                         & pl.col("js").str.contains(r'"T"\s*:\s*[^n\s]')).sum()).item() or 0)


def _group(df: pl.DataFrame, mask: pl.Series, dtype: pl.Struct, what: str,
           rejects: list[Reject]) -> pl.DataFrame:
    """Decode the lines of one message kind; malformed lines become rejects."""
    g = df.filter(mask)
    if g.height == 0:
        return g.with_columns(pl.lit(None, dtype).alias("j"))
    j, bad = _decode(g["js"], dtype)
    g = g.with_columns(j.alias("j"))
    if bad:
        lines, texts = g["line"].to_list(), g["js"].to_list()
        for i in bad:
            rejects.append(Reject(lines[i], _why(texts[i], what), texts[i][:200]))
        keep = np.ones(g.height, dtype=bool)
        keep[bad] = False
        g = g.filter(pl.Series(keep))
    return g


def _partial_depth(g: pl.DataFrame) -> pl.DataFrame:
    """Drop partial-depth stream messages (top-N snapshots named ``...@depth5`` etc.)."""
    st = pl.col("j").struct.field("stream")
    return g.filter(~st.str.contains(r"@depth\d").fill_null(False))


def _require(g: pl.DataFrame, cond: pl.Expr, reason: str, rejects: list[Reject]) -> pl.DataFrame:
    bad = g.select(cond.fill_null(False).alias("b"))["b"]
    if bad.any():
        for line, text in g.filter(bad).select("line", "js").iter_rows():
            rejects.append(Reject(line, reason, text[:200]))
        g = g.filter(~bad)
    return g


#: read depthUpdate lines with the compiled scanner (:mod:`forensics.ingest.jsonscan`); off:
#: every line takes the general path (the reference the scanner is tested against)
FAST_DEPTH = True


def _depth_rows(d: pl.DataFrame) -> pl.DataFrame:
    """Decoded depth events (line, local_ts, sym, E, T, U, u, pu, b, a) -> MSG_SCHEMA rows."""
    d = d.with_columns(pl.col("b").fill_null([]), pl.col("a").fill_null([]))
    return d.select(
        pl.col("line").alias("pos"), pl.lit(False).alias("snap"),
        _venue(pl.col("sym"), pl.col("pu").is_not_null()).alias("ex"), "sym",
        _ts("T", "E").alias("ts"), "local_ts", "U", "u", "pu", pl.lit(None, I64).alias("L"), "b", "a",
        "line", (pl.col("b").list.len() + pl.col("a").list.len()).cast(I64).alias("nlev"),
        pl.lit(None, I64).alias("lv"))


def _strings(offs: np.ndarray, data: np.ndarray) -> pl.Series:
    """Arrow (int64 offsets, bytes) -> a Utf8 series (the bytes are valid UTF-8: JSON text
    without escapes or control bytes, cut at quotes)."""
    import pyarrow as pa

    return pl.Series(pa.LargeStringArray.from_buffers(len(offs) - 1, pa.py_buffer(offs), pa.py_buffer(data)))


def _symbols(block: bytes, sym: np.ndarray) -> pl.Series:
    """The events' symbols from their ``(start, length)`` spans in ``block``: one string per
    event, cut out by numpy (no Python per line); a block of one symbol (the usual case) is
    checked in one comparison and repeated."""
    n = sym.shape[0]
    if n == 0:
        return pl.Series("sym", [], dtype=STR)
    buf = np.frombuffer(block, dtype=np.uint8)
    a, k = sym[:, 0], sym[:, 1]
    k0 = int(k[0])
    if (k == k0).all():
        cut = buf[a[:, None] + np.arange(k0)]
        if (cut == cut[0]).all():
            return pl.repeat(block[int(a[0]):int(a[0]) + k0].decode(), n, dtype=STR, eager=True).alias("sym")
        offs = np.arange(0, (n + 1) * k0, k0, dtype=np.int64)
        return _strings(offs, cut.reshape(-1)).alias("sym")
    offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(k, out=offs[1:])
    idx = np.repeat(a - offs[:-1], k) + np.arange(int(offs[-1]))
    return _strings(offs, buf[idx]).alias("sym")


def _fast_depth(block: bytes, fields, first_line: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The scanner's depth events as MSG_SCHEMA rows (typed as :func:`_depth_rows` gives the
    general path's) and their level rows (:data:`LEVEL_SCHEMA`, exact decimals parsed)."""
    line, ints, flags, sym, poffs, pdata, soffs, sdata, dec, bid, first = fields
    d = pl.DataFrame({"line": line + first_line, "__loc": ints[:, 0], "__E": ints[:, 1], "__T": ints[:, 2],
                      "U": ints[:, 3], "u": ints[:, 4], "__pu": ints[:, 5], "__hl": flags[:, 0],
                      "__hE": flags[:, 1], "__hT": flags[:, 2], "__hpu": flags[:, 3],
                      "sym": _symbols(block, sym), "lv": first[:-1], "nlev": np.diff(first)})
    E = pl.when("__hE").then(pl.col("__E"))
    T = pl.when("__hT").then(pl.col("__T"))
    pu = pl.when("__hpu").then(pl.col("__pu"))
    msgs = d.select(
        pl.col("line").alias("pos"), pl.lit(False).alias("snap"), _venue(pl.col("sym"), pu.is_not_null()).alias("ex"),
        "sym", to_ns_expr(pl.coalesce(T, E)).alias("ts"),
        to_ns_expr(pl.when("__hl").then(pl.col("__loc"))).alias("local_ts"), "U", "u", pu.alias("pu"),
        pl.lit(None, I64).alias("L"), pl.lit(None, LEVELS).alias("b"), pl.lit(None, LEVELS).alias("a"),
        "line", "nlev", "lv")
    levels = pl.DataFrame({"__bid": bid, "price": _strings(poffs, pdata), "size": _strings(soffs, sdata),
                           **{c: dec[k] for k, c in enumerate(PARSED)}})
    return msgs, levels.cast(LEVEL_SCHEMA)


def scan_block(block: bytes):
    """The compiled scanner's pass over a block (:func:`forensics.ingest.jsonscan.scan_depth`:
    ``(fields, rest)``), or None when it does not apply. Separate from :func:`parse_block` so
    a pipeline can run it in a thread of its own, a block ahead (:func:`_scanned_blocks`)."""
    if FAST_DEPTH and block.endswith(b"\n") and b"depthUpdate" in block:
        from forensics.ingest.jsonscan import scan_depth

        return scan_depth(block)
    return None


def parse_block(block: bytes, first_line: int, hint_symbol: str | None, scanned=False) -> _Parsed:
    """One block's messages; ``scanned``: :func:`scan_block`'s result for it if already run
    (False: run it here)."""
    fast = levels = None
    if scanned is False:
        scanned = scan_block(block)
    if scanned is not None:
        fields, rest = scanned
        if fields is not None:
            fast, levels = _fast_depth(block, fields, first_line)
            block = rest  # the lines read by the scanner are blank for the general path
    raw = _lines(block)
    df = pl.DataFrame({"raw": raw}).with_columns(
        pl.int_range(first_line, first_line + raw.len(), dtype=I64).alias("line"))
    df = df.filter(pl.col("raw").is_not_null() & (pl.col("raw").str.strip_chars() != ""))
    brace = pl.col("raw").str.find("{", literal=True)
    df = df.with_columns(brace.alias("brace"))
    prefix = pl.col("raw").str.slice(0, pl.col("brace")).str.strip_chars(" \t\ufeff")
    df = df.with_columns(
        pl.when(pl.col("brace") > 0).then(prefix.cast(I64, strict=False)).alias("local"),
        pl.when(pl.col("brace") > 0).then(prefix).alias("prefix"),
        pl.col("raw").str.slice(pl.col("brace")).alias("js"))
    rejects: list[Reject] = []
    df = _require(df.with_columns(pl.col("js").fill_null(pl.col("raw"))), pl.col("brace").is_null(),
                  "not a JSON line", rejects)
    df = _require(df, pl.col("prefix").is_not_null() & pl.col("local").is_null(),
                  "malformed line (expected '<receive time> <json>' or '<json>')", rejects)
    df = df.with_columns(to_ns_expr(pl.col("local")).alias("local_ts")).select("line", "js", "local_ts")

    is_depth = df["js"].str.contains("depthUpdate", literal=True)
    rest = df.filter(~is_depth)
    js = pl.col("js")
    kinds = rest.select(
        js.str.contains('"lastUpdateId"', literal=True).alias("S"),
        js.str.contains('"aggTrade"', literal=True).alias("G"),
        js.str.contains(r'"e"\s*:\s*"trade"').alias("R"),
        (js.str.contains("bookTicker", literal=True)
         | (js.str.contains(r'"A"\s*:') & js.str.contains(r'"B"\s*:') & js.str.contains(r'"u"\s*:'))).alias("Q"))
    s_m = kinds["S"]
    g_m = kinds["G"] & ~s_m
    r_m = kinds["R"] & ~s_m & ~g_m
    q_m = kinds["Q"] & ~s_m & ~g_m & ~r_m
    other = ~(s_m | g_m | r_m | q_m)
    if other.any():  # unknown message types are ignored, but lines that are not JSON are rejected
        _group(rest, other, pl.Struct({"e": STR}), "JSON", rejects)

    hint = pl.lit(hint_symbol, STR)
    # ---- depth updates
    d = _partial_depth(_group(df, is_depth, _wrapped(DEPTH), "depthUpdate", rejects))
    d = d.with_columns(
        pl.coalesce(_field("s"), _stream_symbol(), hint).alias("sym"),
        *[_field(c).alias(c) for c in ("E", "T", "U", "u", "pu", "b", "a")])
    d = _require(d, pl.col("U").is_null() | pl.col("u").is_null(), "depthUpdate without U/u", rejects)
    d = _require(d, pl.col("E").is_null() & pl.col("T").is_null(), "depthUpdate without E/T time", rejects)
    d = _require(d, pl.col("sym").is_null(), "depthUpdate without symbol (pass --symbol)", rejects)
    book_d = _depth_rows(d)
    # ---- REST snapshots (raw or wrapped)
    s = _partial_depth(_group(rest, s_m, _wrapped(SNAP), "depth snapshot", rejects))
    s = s.with_columns(pl.coalesce(_field("symbol"), _stream_symbol()).alias("sym"),
                       *[_field(c).alias(c) for c in ("lastUpdateId", "E", "T", "bids", "asks")])
    s = _require(s, pl.col("lastUpdateId").is_null(), "depth snapshot without lastUpdateId", rejects)
    book_s = _snapshot_rows(s)
    # depth events are in line order already: only interleaved snapshots need a sort
    parts = [x.cast(MSG_SCHEMA) for x in (fast, book_d, book_s) if x is not None and x.height]
    if not parts:
        book = book_d.cast(MSG_SCHEMA)
    elif len(parts) == 1:
        book = parts[0]
    else:  # lines of the scanner, the general path and snapshots: back into line order
        book = pl.concat(parts).sort("pos", maintain_order=True)
    # ---- trades, quotes
    g = _group(rest, g_m, _wrapped(AGG), "aggTrade", rejects)
    g = g.with_columns(pl.coalesce(_field("s"), _stream_symbol(), hint).alias("sym"),
                       *[_field(c).alias(c) for c in ("E", "T", "a", "p", "q", "m", "M")])
    r = _group(rest, r_m, _wrapped(TRADE), "trade", rejects)
    r = r.with_columns(pl.coalesce(_field("s"), _stream_symbol(), hint).alias("sym"),
                       *[_field(c).alias(c) for c in ("E", "T", "t", "p", "q", "m", "M", "X")])
    q = _group(rest, q_m, _wrapped(TICKER), "bookTicker", rejects)
    q = q.with_columns(pl.coalesce(_field("s"), _stream_symbol(), hint).alias("sym"),
                       *[_field(c).alias(c) for c in ("E", "T", "u", "b", "B", "a", "A")])
    return _Parsed(book, g, r, q, rejects, sum(_t_fallbacks(x) for x in (d, g, r, q)), levels)


def _snapshot_rows(s: pl.DataFrame) -> pl.DataFrame:
    """REST snapshot rows (lastUpdateId/bids/asks/E/T/sym/line/local_ts) -> MSG_SCHEMA."""
    fut = pl.col("T").is_not_null() | pl.col("E").is_not_null()
    return s.select(
        pl.col("line").fill_null(0).alias("pos"), pl.lit(True).alias("snap"),
        pl.when(pl.col("sym").is_not_null()).then(_venue(pl.col("sym"), fut))
        .when(fut).then(pl.lit(FUTURES)).otherwise(pl.lit(SPOT)).alias("ex"),
        "sym", pl.when(fut).then(_ts("T", "E")).alias("ts"), "local_ts",
        pl.lit(None, I64).alias("U"), pl.lit(None, I64).alias("u"), pl.lit(None, I64).alias("pu"),
        pl.col("lastUpdateId").alias("L"), pl.col("bids").fill_null([]).alias("b"),
        pl.col("asks").fill_null([]).alias("a"), "line",
        (pl.col("bids").list.len().fill_null(0) + pl.col("asks").list.len().fill_null(0)).cast(I64).alias("nlev"),
        pl.lit(None, I64).alias("lv"))


# ---- the sync engine -------------------------------------------------------------------------

class _Engine:
    """Carries unfinished book messages and per-instrument sync state across blocks."""

    def __init__(self, opts: ReadOptions, hint_symbol: str | None):
        self.opts = opts
        self.hint = hint_symbol
        self.chain = SeqChain()  # per instrument: sync status, last u / ts, the open gap
        self.carry = pl.DataFrame(schema=ENGINE_SCHEMA)
        self.levels = pl.DataFrame(schema=LEVEL_SCHEMA)  # level rows of the round's scanned messages
        self.clock_max: int | None = None
        self.line0_offset = 0           # arrival slots used on line 0 (companion snapshots)
        self.markets: dict[str, set[str]] = {}  # symbol -> exchanges seen in depth
        self.trade_syms: set[str] = set()       # 'trade' stream seen: aggTrades are duplicates
        self._dropped = 0

    def st(self, key) -> ChainState:
        return self.chain.st(key)

    # -- one round
    def round(self, new: pl.DataFrame, eof: bool, levels: pl.DataFrame | None = None
              ) -> tuple[pl.DataFrame, list[dict], int, list[Reject]]:
        """Hand over what can be decided now: the carried messages plus ``new`` (in arrival
        order), each instrument's snapshots placed before the events they land on, the chain
        checked, the rest (within the look-back window) carried to the next round. Steps:
        :meth:`_frame` (message rows), :meth:`_placements` (where each snapshot lands),
        :meth:`_cut` (how far this round goes), :meth:`_hand_over` per instrument,
        :meth:`_book_rows` (one row per level). ``levels``: the level rows of ``new``'s
        scanned messages (their ``lv`` indexes it); carried with them."""
        rejects: list[Reject] = []
        F = self._frame(new, eof, rejects, levels)
        if F is None:
            return _empty_book(), self.chain.drain(eof), 0, rejects
        r = _Round(F, eof, rejects)
        self._U, self._pu = r.U, r.pu
        placements, keyrows = self._placements(r)
        cut = self._cut(r, placements, keyrows)
        bare_clocks: dict[bool, list[int]] = {}
        for si in np.flatnonzero(r.bare):
            bare_clocks.setdefault(F["ex"][int(si)] != SPOT, []).append(int(r.clock[si]))
        for key, plist in placements.items():
            self._hand_over(r, key, plist, keyrows[key], cut, bare_clocks)
        if eof:  # snapshots without a key at the end of the file
            for si in np.flatnonzero(~r.done & r.snap):
                r.done[si] = True
                r.rejects.append(Reject(F["line"][int(si)], "depth snapshot cannot be matched to a symbol; "
                                                            "pass --symbol"))
        out = self._book_rows(F, r.keep, r.snap, r.snap_ts, r.snap_arrival)
        self.carry, self.levels = _take_levels(F.filter(pl.Series(~r.done)), self.levels)
        return out, self.chain.drain(eof), r.dropped, r.rejects

    def _frame(self, new: pl.DataFrame, eof: bool, rejects: list[Reject], levels: pl.DataFrame | None
               ) -> pl.DataFrame | None:
        """The round's messages: the carried ones then ``new`` (clocked), bare snapshots given
        their instrument; None if there are none. ``new``'s level rows join the carried ones'."""
        new = self._clock(new.select(list(MSG_SCHEMA)).cast(MSG_SCHEMA))
        if levels is not None and levels.height:
            if self.levels.height:
                new = new.with_columns(pl.col("lv") + self.levels.height)
                self.levels = pl.concat([self.levels, levels])
            else:
                self.levels = levels
        F = pl.concat([self.carry, new]) if self.carry.height else new
        if F.height == 0:
            return None
        for ex, sym in F.filter(~pl.col("snap")).select("ex", "sym").unique().iter_rows():
            self.markets.setdefault(sym, set()).add(ex)
        return self._resolve_snapshot_keys(F, eof, rejects)

    def _placements(self, r: "_Round") -> tuple[dict, dict]:
        """Per instrument: its depth-event rows, and for each of its snapshots (in logical
        order) the index among those events of the first one it lands before (None: none yet
        within the look-back window)."""
        placements, keyrows = {}, {}
        groups = r.F.with_row_index("fi").group_by(["ex", "sym"], maintain_order=True).agg(pl.col("fi"))
        for ex, sym, fi in groups.iter_rows():
            if sym is None:
                continue
            fi = np.asarray(fi, dtype=np.int64)
            drows = fi[~r.snap[fi]]
            srows = fi[r.snap[fi]]
            srows = srows[np.lexsort((r.L[srows], r.pos[srows]))]
            placements[(ex, sym)] = _place(r, drows, srows, fut=ex != SPOT)
            keyrows[(ex, sym)] = drows
        return placements, keyrows

    def _cut(self, r: "_Round", placements: dict, keyrows: dict) -> int:
        """The position this round stops at: rows within the look-back window (or beyond the
        carry bound) stay for the next block, and so does every snapshot landing after it."""
        if r.eof:
            return np.iinfo(np.int64).max
        pos, clock = r.pos, r.clock
        start = int(np.searchsorted(clock, clock[-1] - LOOKBACK_NS, side="left"))
        tail_lev = np.cumsum(r.nlev[::-1])[::-1]
        over = np.flatnonzero(tail_lev > CARRY_MAX_LEVELS)
        if over.size:
            start = max(start, int(over[-1]) + 1)
        cut = int(pos[start]) if start < r.n else np.iinfo(np.int64).max
        for key, plist in placements.items():
            drows = keyrows[key]
            for si, j in plist:
                if j is not None and pos[si] >= cut:
                    cut = min(cut, int(pos[drows[j]]))
        for si in np.flatnonzero(r.bare):
            back = int(np.searchsorted(clock, clock[si] - LOOKBACK_NS, side="left"))
            cut = min(cut, int(pos[back]))
        return cut

    def _hand_over(self, r: "_Round", key, plist, drows, cut: int, bare_clocks: dict) -> None:
        """One instrument's events before ``cut`` and the snapshots landing among them, in
        logical order: each snapshot restarts the chain (or breaks it), each run of events is
        a :meth:`_segment`."""
        st = self.st(key)
        fut = key[0] != SPOT
        m = int(np.searchsorted(r.pos[drows], cut, side="left"))  # D rows handed over now
        chosen = _chosen_snapshots(r, plist, m)
        # events before the first snapshot are dropped if one follows within the look-back
        # window of the first of them (decidable now, whatever the block boundaries)
        # (a separate snapshot file counts only where it fits this capture)
        snap_clocks = [int(r.clock[si]) for si, j in plist
                       if not r.companion[si] or (j is not None and r.U[drows[j]] <= (r.L[si] if fut else r.L[si] + 1))]
        snap_clocks += bare_clocks.get(fut, [])
        d = drows[:m]
        chain = _chain_ok(r, d, st.last_id, fut)
        i = 0
        fresh = False
        for j, si in chosen:
            self._segment(key, st, d, i, j, chain, fresh, snap_clocks, r.clock, r.keep, r.pos, r.u, r.ts, r.nlev)
            r.dropped += self._dropped
            fresh = False
            placed = self._place_snapshot(r, key, st, d, j, si, m, chain)
            if placed == "rejected":
                continue
            fresh = placed == "synced"
            i = j
        self._segment(key, st, d, i, m, chain, fresh, snap_clocks, r.clock, r.keep, r.pos, r.u, r.ts, r.nlev)
        r.dropped += self._dropped
        r.done[d] = True

    def _place_snapshot(self, r: "_Round", key, st: ChainState, d, j: int, si: int, m: int, chain) -> str:
        """Put snapshot ``si`` before event ``d[j]`` (``j >= m``: after the last event handed
        over): its time and arrival slot, the chain restarted. Returns ``'synced'`` if the
        event straddles it (the chain continues from it), ``'broken'`` if updates are missing
        after it (a gap is opened), ``'unused'`` (redundant or another file's) or
        ``'rejected'`` (no time to give it)."""
        fut = key[0] != SPOT
        U, u, L, ts = r.U, r.u, r.L, r.ts
        thr = L[si] if fut else L[si] + 1
        ok = True if j >= m else bool(straddles(U[d[j]], u[d[j]], L[si], rule="futures" if fut else "spot"))
        if r.companion[si] and (j >= m or not ok):
            r.done[si] = True   # a separate snapshot file that is not this capture's
            return "unused"
        if not ok and st.synced and chain[j]:
            r.done[si] = True   # older than the intact chain it lands in: redundant
            r.dropped += int(r.nlev[si])
            return "unused"
        if not r.ts_ok[si] and not self._snapshot_time(r, st, d, j, si, m):
            return "rejected"
        if j < m:
            arr = (int(r.pos[d[j]]) << LINE_SHIFT) - int(r.nlev[si])
        elif r.pos[si] > 0:
            arr = int(r.pos[si]) << LINE_SHIFT
        else:
            arr = self.line0_offset
            self.line0_offset += int(r.nlev[si])
        if j < m and r.snap_ts[si] > ts[d[j]]:
            r.snap_ts[si] = ts[d[j]]  # never after the event it lands before: (ts, seq) order holds
        r.snap_arrival[si] = arr
        r.done[si] = r.keep[si] = True
        t_s = int(r.snap_ts[si])
        self.chain.restart(key, t_s, arr)  # closes an open gap
        if not ok:  # the first event does not straddle the snapshot
            self.chain.chain_break(key, int(r.pos[d[j]]) << LINE_SHIFT,
                                   f"first event after snapshot has U={int(U[d[j]])} > "
                                   f"lastUpdateId{'' if fut else '+1'}={int(thr)}: updates missing",
                                   reason="snapshot_sync", ts_from=t_s)
        st.last_ts = t_s
        return "synced" if ok else "broken"

    def _snapshot_time(self, r: "_Round", st: ChainState, d, j: int, si: int, m: int) -> bool:
        """A snapshot without its own time takes the event it lands before, its receive time
        or the instrument's last time; False (rejected) when there is none."""
        if j < m:
            r.snap_ts[si] = r.ts[d[j]]
        elif r.local[int(si)] is not None:
            r.snap_ts[si] = int(r.local[int(si)])
        elif st.last_ts is not None:
            r.snap_ts[si] = st.last_ts
        else:
            r.done[si] = True
            line = r.F["line"][int(si)]
            r.rejects.append(Reject(int(line) if line is not None else None,
                                    "spot depth snapshot has no time and no event follows it; "
                                    "ingest it together with its capture"))
            return False
        return True

    def _clock(self, new: pl.DataFrame) -> pl.DataFrame:
        """Each message's clock: the running max of receive time (else exchange time) over the
        file in arrival order; fixed when the message is read, so it does not depend on blocks."""
        seed = self.clock_max
        c = new.select(pl.coalesce("local_ts", "ts").forward_fill().alias("c"))["c"]
        if seed is not None:
            c = c.fill_null(seed)
        c = c.backward_fill().fill_null(0).cum_max()
        if seed is not None:
            c = c.clip(lower_bound=seed)
        if c.len():
            self.clock_max = int(c[-1])
        return new.with_columns(c.alias("clock"))

    def _segment(self, key, st: ChainState, d, a: int, b: int, chain, fresh: bool, snap_clocks: list[int],
                 clock, keep, pos, u, ts, nlev) -> None:
        """Hand over events d[a:b] under the key's current status: mark them kept (or count
        them dropped in ``self._dropped``) and open a gap where the chain breaks. A gap is
        handed over when the next snapshot closes it, or at the end of the file."""
        self._dropped = 0
        if b <= a:
            return
        rows = d[a:b]
        if st.status == "presync":
            first = int(clock[rows[0]])
            if any(c <= first + LOOKBACK_NS for c in snap_clocks):
                self._dropped = int(nlev[rows].sum())
                st.last_id, st.last_ts = int(u[rows[-1]]), int(ts[rows[-1]])
                return
            self.chain.no_snapshot(key, int(ts[rows[0]]), int(pos[rows[0]]) << LINE_SHIFT,
                                   "depth events before any snapshot: book unknown")
        keep[rows] = True
        if st.synced:
            c = chain[a:b].copy()
            if fresh:
                c[0] = True
            f = first_break(c)
            if f is not None:
                f += a
                before = int(ts[d[f - 1]]) if f > 0 else st.last_ts
                fut = key[0] != SPOT
                prev = int(u[d[f - 1]]) if f > 0 else st.last_id
                got = f"pu={int(self._pu[d[f]])}" if fut else f"U={int(self._U[d[f]])}"
                want = f"previous u={prev}" if fut else f"previous u+1={prev + 1 if prev is not None else None}"
                self.chain.chain_break(key, int(pos[d[f]]) << LINE_SHIFT,
                                       f"{got} != {want} (u={int(u[d[f]])}): updates missing", ts_from=before)
        st.last_id, st.last_ts = int(u[rows[-1]]), int(ts[rows[-1]])

    def _resolve_snapshot_keys(self, F: pl.DataFrame, eof: bool, rejects) -> pl.DataFrame:
        """Bare REST snapshots carry no symbol: give each the instrument whose events straddle
        its lastUpdateId (or the only candidate, or the nearest following event's)."""
        bare = F.select((pl.col("snap") & pl.col("sym").is_null()).alias("b"))["b"]
        if not bare.any():
            return F
        d = F.filter(~pl.col("snap"))
        syms = F["sym"].to_list()
        exs = F["ex"].to_list()
        for si in bare.arg_true().to_list():
            fut = exs[si] != SPOT
            cand = d.filter((pl.col("ex") != SPOT) == fut)
            keys = cand.select("ex", "sym").unique(maintain_order=True).rows()
            Lv = int(F["L"][si])
            thr = Lv if fut else Lv + 1
            choice = None
            if len(keys) == 1:
                choice = keys[0]
            elif len(keys) > 1:
                if self.hint and any(k[1] == self.hint for k in keys):
                    choice = next(k for k in keys if k[1] == self.hint)
                else:
                    hit = cand.filter((pl.col("U") <= thr) & (pl.col("u") >= thr))
                    if hit.height:
                        choice = (hit["ex"][0], hit["sym"][0])
                    else:
                        after = cand.filter(pl.col("pos") > F["pos"][si])
                        pick = after if after.height else cand
                        choice = (pick["ex"][0], pick["sym"][0])
            elif eof:
                sym = self.hint
                same = [s for s, e in self.markets.items() if any((x != SPOT) == fut for x in e)]
                if sym is None and len(same) == 1:
                    sym = same[0]
                if sym is not None:
                    ex = DELIVERY if re.search(COINM, sym) else exs[si]
                    choice = (ex, sym)
            if choice is not None:
                exs[si], syms[si] = choice
        return F.with_columns(pl.Series("ex", exs, dtype=STR), pl.Series("sym", syms, dtype=STR))

    def _book_rows(self, F: pl.DataFrame, keep, snap, snap_ts, snap_arrival) -> pl.DataFrame:
        sel = F.with_columns(pl.Series("__keep", keep), pl.Series("__sts", snap_ts),
                             pl.Series("__sarr", snap_arrival)).filter(pl.col("__keep"))
        if sel.height == 0:
            return _empty_book()
        scanned = sel["lv"].is_not_null()
        fs = sel.filter(scanned) if scanned.any() else None
        if fs is not None and fs.height == sel.height:
            return _level_rows(fs, self.levels)  # the usual round: scanned depth events only
        ds = sel.filter(~pl.col("snap") & ~scanned)
        ss = sel.filter(pl.col("snap"))
        parts = []
        if fs is not None:
            parts.append(_level_rows(fs, self.levels))
        if ds.height:
            parts.append(_explode(ds, (pl.col("pos") * (1 << LINE_SHIFT)), pl.col("ts"), False))
        if ss.height:
            parts.append(_explode(ss, pl.col("__sarr"), pl.col("__sts"), True))
        if fs is not None:  # parsed decimals for the scanned rows only: the rest filled in _finish
            parts = [x if "__digits_price" in x.columns else x.with_columns(pl.lit(None, I64).alias(c) for c in PARSED)
                     for x in parts]
        out = pl.concat(parts) if len(parts) > 1 else parts[0]
        return out.sort("arrival") if len(parts) > 1 else out



class _Round:
    """The numpy view of one round's messages (``F``) and what the round decides per row:
    ``done`` (handled: not carried), ``keep`` (handed over), a snapshot's time and arrival."""

    def __init__(self, F: pl.DataFrame, eof: bool, rejects: list[Reject]):
        self.F, self.eof, self.rejects, self.dropped = F, eof, rejects, 0
        self.n = n = F.height
        self.pos = F["pos"].to_numpy()
        self.snap = F["snap"].to_numpy()
        self.U = F["U"].fill_null(-1).to_numpy()
        self.u = F["u"].fill_null(-1).to_numpy()
        self.pu = F["pu"].fill_null(-1).to_numpy()
        self.has_pu = F["pu"].is_not_null().to_numpy()
        self.L = F["L"].fill_null(-1).to_numpy()
        self.ts = F["ts"].fill_null(-1).to_numpy()
        self.ts_ok = F["ts"].is_not_null().to_numpy()
        self.nlev = F["nlev"].to_numpy()
        self.companion = self.snap & F["line"].is_null().to_numpy()
        self.bare = self.snap & F["sym"].is_null().to_numpy()  # no instrument even after resolving
        self.local = F["local_ts"]
        self.clock = F["clock"].to_numpy()
        self.done = np.zeros(n, dtype=bool)
        self.keep = np.zeros(n, dtype=bool)
        self.snap_ts = self.ts.copy()
        self.snap_arrival = np.full(n, -1, dtype=np.int64)


def _place(r: _Round, drows: np.ndarray, srows: np.ndarray, fut: bool) -> list:
    """``(snapshot row, index into drows of the first event with u >= its threshold)`` per
    snapshot; the search looks back at most LOOKBACK_NS (receive clock) from the snapshot line
    and never before the previous snapshot's event (None once one has no event yet)."""
    out, lb = [], 0
    dclock = r.clock[drows]
    u = r.u
    for si in srows:
        thr = r.L[si] if fut else r.L[si] + 1
        if r.companion[si]:  # a separate file: anywhere in the capture, constrains nothing
            hit = np.flatnonzero(u[drows] >= thr)
            out.append((si, int(hit[0]) if hit.size else None))
            continue
        if lb is None:
            out.append((si, None))
            continue
        lb = max(lb, int(np.searchsorted(dclock, r.clock[si] - LOOKBACK_NS, side="left")))
        hit = np.flatnonzero(u[drows[lb:]] >= thr)
        if hit.size:
            lb = lb + int(hit[0])
            out.append((si, lb))
        else:
            lb = None
            out.append((si, None))
    return out


def _chosen_snapshots(r: _Round, plist: list, m: int) -> list:
    """The snapshots handed over now (landing before event ``m``, or all at the end of the
    file), in logical order; of several landing on the same event the freshest (the others
    are dropped, their levels counted)."""
    emit = []
    for si, j in plist:
        if j is not None and j < m:
            emit.append((j, si))
        elif j is None and r.eof:
            emit.append((m, si))
    emit.sort(key=lambda x: (x[0], r.L[x[1]]))
    chosen = []
    for k, (j, si) in enumerate(emit):
        if k + 1 < len(emit) and emit[k + 1][0] == j and j < m:
            r.done[si] = True
            r.dropped += int(r.nlev[si])  # superseded by a fresher snapshot at the same place
            continue
        chosen.append((j, si))
    return chosen


def _chain_ok(r: _Round, d: np.ndarray, last_id: int | None, fut: bool) -> np.ndarray:
    """Per event of ``d``: it continues the one before (futures ``pu`` = previous ``u``; spot
    ``U`` = previous ``u`` + 1), the first one checked against ``last_id``."""
    m = d.size
    prev_u = np.empty(m, dtype=np.int64)
    if m:
        prev_u[0] = last_id if last_id is not None else -(2**62)
        prev_u[1:] = r.u[d[:-1]]
    chain = (r.pu[d] == prev_u) if fut else (r.U[d] == prev_u + 1)
    if fut and m:
        chain &= r.has_pu[d]
    return chain

BOOK_OUT = {"exchange": STR, "symbol": STR, "ts": I64, "local_ts": I64, "update_id": I64,
            "first_update_id": I64, "prev_update_id": I64, "is_snapshot": BOOL, "side": STR,
            "price": STR, "size": STR, "arrival": I64, "line": I64, "__bad": BOOL}


BOOK_OUT_HEAD = ["exchange", "symbol", "ts", "local_ts", "update_id", "first_update_id", "prev_update_id"]


def _empty_book() -> pl.DataFrame:
    return pl.DataFrame(schema=BOOK_OUT)


def _level_index(lv: np.ndarray, n: np.ndarray) -> tuple[np.ndarray | slice, np.ndarray]:
    """For messages whose level rows are ``lv[i]`` .. ``lv[i] + n[i]``: the rows of all of them
    in order (a slice when they are contiguous) and each row's index within its message."""
    total = int(n.sum())
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    if lv.size and np.array_equal(lv[1:], lv[:-1] + n[:-1]):
        return slice(int(lv[0]), int(lv[0]) + total), within
    return np.repeat(lv, n) + within, within


def _rows_of(levels: pl.DataFrame, idx) -> pl.DataFrame:
    return levels.slice(idx.start, idx.stop - idx.start) if isinstance(idx, slice) else levels[idx]


def _level_rows(fs: pl.DataFrame, levels: pl.DataFrame) -> pl.DataFrame:
    """:func:`_explode` for scanned depth events (``fs``): their level rows taken from
    ``levels`` (no list explode, the exact decimals carried along)."""
    n = fs["nlev"].to_numpy()
    idx, within = _level_index(fs["lv"].to_numpy(), n)
    total = int(n.sum())
    cols = {}
    for c, name in (("ex", "exchange"), ("sym", "symbol"), ("ts", "ts"), ("local_ts", "local_ts"),
                    ("u", "update_id"), ("U", "first_update_id"), ("pu", "prev_update_id")):
        s = fs[c]
        if s.null_count() == 0 and s.dtype == I64:  # (a plain repeat: cheaper than a gather)
            cols[name] = pl.Series(name, np.repeat(s.to_numpy(), n))
        elif c in ("ex", "sym") and _constant(s):  # one instrument (the usual case)
            cols[name] = pl.repeat(s[0], total, dtype=STR, eager=True).alias(name)
        else:
            cols[name] = s.gather(np.repeat(np.arange(fs.height, dtype=np.int64), n)).alias(name)
    head = pl.DataFrame(cols)
    lv = _rows_of(levels, idx)
    arrival = np.repeat(fs["pos"].to_numpy() << LINE_SHIFT, n) + within
    line = np.repeat(fs["line"].to_numpy(), n)
    return pl.concat([head, lv], how="horizontal").select(
        *BOOK_OUT_HEAD, pl.lit(False).alias("is_snapshot"),
        pl.when(pl.col("__bid")).then(pl.lit("bid")).otherwise(pl.lit("ask")).alias("side"),
        "price", "size", pl.Series("arrival", arrival), pl.Series("line", line),
        pl.lit(False).alias("__bad"), *PARSED)


def _take_levels(carry: pl.DataFrame, levels: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The carried messages with ``lv`` renumbered into the level rows kept for them."""
    scanned = carry["lv"].is_not_null()
    if not scanned.any():
        return carry, levels.clear()
    lv = carry["lv"].fill_null(0).to_numpy()
    n = np.where(scanned.to_numpy(), carry["nlev"].to_numpy(), 0)
    idx, _ = _level_index(lv[n > 0], n[n > 0])
    new_lv = np.cumsum(n) - n
    return (carry.with_columns(pl.when(scanned).then(pl.Series(new_lv)).alias("lv")),
            _rows_of(levels, idx))


def _explode(df: pl.DataFrame, base: pl.Expr, ts: pl.Expr, is_snap: bool) -> pl.DataFrame:
    """One row per [price, qty] level: bids then asks of each message, in arrival order."""
    x = df.select(
        pl.col("ex").alias("exchange"), pl.col("sym").alias("symbol"), ts.alias("ts"), "local_ts",
        pl.col("L" if is_snap else "u").alias("update_id"),
        (pl.lit(None, I64) if is_snap else pl.col("U")).alias("first_update_id"),
        (pl.lit(None, I64) if is_snap else pl.col("pu")).alias("prev_update_id"),
        "line", base.alias("__base"), pl.col("b").list.len().cast(I64).alias("__nb"),
        pl.concat_list("b", "a").alias("__lv"))
    n = x["__lv"].list.len().cast(I64)
    x = x.with_columns((n.cum_sum() - n).alias("__start")).explode("__lv")
    idx = pl.int_range(pl.len(), dtype=I64) - pl.col("__start")
    return x.select(
        "exchange", "symbol", "ts", "local_ts", "update_id", "first_update_id", "prev_update_id",
        pl.lit(is_snap).alias("is_snapshot"),
        pl.when(idx < pl.col("__nb")).then(pl.lit("bid")).otherwise(pl.lit("ask")).alias("side"),
        pl.col("__lv").list.get(0, null_on_oob=True).alias("price"),
        pl.col("__lv").list.get(1, null_on_oob=True).alias("size"),
        (pl.col("__base") + idx).alias("arrival"), "line",
        (pl.col("__lv").list.len() != 2).alias("__bad"))


# ---- trades and quotes -----------------------------------------------------------------------

def _market_for_trades(eng: _Engine, sym: pl.Expr, spot_hint: pl.Expr) -> pl.Expr:
    known = {s: next(iter(exs)) for s, exs in eng.markets.items() if len(exs) == 1}
    by_msg = _venue(sym, ~spot_hint)
    if not known:
        return by_msg
    return sym.replace_strict(known, default=None, return_dtype=STR).fill_null(by_msg)


def _trades(eng: _Engine, p: _Parsed) -> tuple[pl.DataFrame | None, int]:
    dropped = 0
    frames = []
    r = p.trade
    if r.height:
        off = r["X"].is_in(OFF_BOOK_TRADES).fill_null(False)
        dropped += int(off.sum())
        r = r.filter(~off)
        eng.trade_syms.update(r["sym"].drop_nulls().unique().to_list())
        frames.append(r.select("line", "local_ts", "sym", "E", "T", "p", "q", "m", "M",
                               pl.col("t").cast(STR).alias("trade_id")))
    g = p.agg
    if g.height:
        dup = g["sym"].is_in(list(eng.trade_syms)).fill_null(False)
        dropped += int(dup.sum())
        g = g.filter(~dup)
        frames.append(g.select("line", "local_ts", "sym", "E", "T", "p", "q", "m", "M",
                               pl.col("a").cast(STR).alias("trade_id")))
    if not frames:
        return None, dropped
    t = pl.concat(frames).sort("line")
    t = t.with_columns(
        _market_for_trades(eng, pl.col("sym"), pl.col("M").is_not_null()).alias("exchange"),
        pl.col("sym").alias("symbol"), _ts("T", "E").alias("ts"),
        pl.when(pl.col("m")).then(pl.lit("sell")).when(~pl.col("m")).then(pl.lit("buy")).alias("aggressor"),
        pl.col("p").alias("price"), pl.col("q").alias("size"),
        (pl.col("line") * (1 << LINE_SHIFT)).alias("arrival"))
    return t.select("exchange", "symbol", "ts", "local_ts", "trade_id", "price", "size",
                    "aggressor", "arrival", "line"), dropped


def _quotes(eng: _Engine, p: _Parsed) -> pl.DataFrame | None:
    q = p.ticker
    if q.height == 0:
        return None
    has_time = pl.col("T").is_not_null() | pl.col("E").is_not_null()
    q = q.with_columns(
        _market_for_trades(eng, pl.col("sym"), ~has_time).alias("exchange"), pl.col("sym").alias("symbol"),
        pl.coalesce(_ts("T", "E"), pl.col("local_ts")).alias("ts"), pl.col("u").alias("update_id"),
        pl.col("b").alias("best_bid"), pl.col("B").alias("best_bid_size"),
        pl.col("a").alias("best_ask"), pl.col("A").alias("best_ask_size"),
        (pl.col("line") * (1 << LINE_SHIFT)).alias("arrival"))
    return q.select("exchange", "symbol", "ts", "local_ts", "update_id", "best_bid",
                    "best_bid_size", "best_ask", "best_ask_size", "arrival", "line")


# ---- readers ---------------------------------------------------------------------------------

def _hint_symbol(opts: ReadOptions) -> str | None:
    return opts.symbol or (opts.name_info.symbol.upper() if opts.name_info and opts.name_info.symbol else None)


def _read_text(src: Source, limit: int = 32 << 20) -> str | None:
    """The whole (small) file as text; None if it is larger than ``limit`` (not a snapshot)."""
    out, size = [], 0
    for _, block in src.blocks(min(limit, 8 << 20)):
        out.append(block)
        size += len(block)
        if size > limit:
            return None
    return b"".join(out).decode("utf-8", "replace")


_PREFIX = re.compile(r"^\s*(\d+)\s+(?=\{)")


def _snapshot_doc(text: str) -> tuple[pl.DataFrame | None, int | None]:
    """A whole file holding one REST snapshot (pretty-printed or one line, optionally with a
    receive-time prefix) -> decoded one-row frame, or None if it is not one."""
    m = _PREFIX.match(text)
    local = int(m.group(1)) if m else None
    body = text[m.end():] if m else text
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    if "data" in doc and isinstance(doc["data"], dict):
        doc = doc["data"]
    if "lastUpdateId" not in doc:
        return None, None
    j = pl.Series([body]).str.json_decode(_wrapped(SNAP))
    df = pl.DataFrame({"j": j}).select(
        *[_field(c).alias(c) for c in ("lastUpdateId", "E", "T", "bids", "asks")],
        pl.coalesce(_field("symbol"), _stream_symbol()).alias("sym"))
    return df, local


def _companion_rows(opts: ReadOptions) -> pl.DataFrame:
    frames = []
    for comp in opts.companions:
        text = _read_text(comp)
        doc, local = _snapshot_doc(text) if text is not None else (None, None)
        if doc is None:
            raise ForensicsError(f"{comp.path}: not a Binance REST depth snapshot (expected one JSON "
                                 "object with lastUpdateId, bids, asks)")
        ni = comp.name_info()
        info_sym = ni.symbol.upper() if ni.symbol else None
        doc = doc.with_columns(pl.coalesce(pl.col("sym"), pl.lit(info_sym, STR)).alias("sym"),
                               pl.lit(None, I64).alias("line"),
                               to_ns_expr(pl.lit(local, I64)).alias("local_ts"))
        frames.append(_snapshot_rows(doc).cast(MSG_SCHEMA).with_columns(pl.lit(0, I64).alias("pos")))
    return pl.concat(frames) if frames else pl.DataFrame(schema=MSG_SCHEMA)


def read_capture(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    """Chunks are produced in a worker thread, so parsing the next block overlaps the
    Writer's validation and Parquet writing of this one."""
    yield from prefetch(_capture_chunks(src, opts), depth=1, name="forensics-parse")


def _document_blocks(src: Source, limit: int = 256 << 20) -> list[tuple[int, bytes]] | None:
    """A file holding one pretty-printed JSON document (a message, or an array of messages, as
    saved by ``jq .`` or an API client) -> one block of JSON lines, one message per line (line
    numbers are then message numbers). None when the file is JSON lines (the normal case)."""
    head = src.head(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    if not head.startswith((b"{", b"[")) or _sniff_capture(src.head(), NameInfo()):
        return None
    text = _read_text(src, limit)
    if text is None:
        return None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    msgs = doc if isinstance(doc, list) else [doc]
    return [(1, b"".join(orjson.dumps(m) + b"\n" for m in msgs))]


def _capture_chunks(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    hint = _hint_symbol(opts)
    eng = _Engine(opts, hint)
    pending = _companion_rows(opts)
    blocks = _document_blocks(src) or src.blocks()
    for first_line, block, scanned in _scanned_blocks(blocks):
        p = parse_block(block, first_line, hint, scanned)
        chunk = Chunk(rejects=p.rejects, lines=count_lines(block), t_fallback=p.t_fallback)
        book = pl.concat([pending, p.book]) if pending.height else p.book
        pending = pending.clear()
        rows, gaps, dropped, rej = eng.round(book, eof=False, levels=p.levels)
        _finish(chunk, eng, rows, gaps, dropped, rej)
        trades, tdrop = _trades(eng, p)
        chunk.dropped += tdrop
        if trades is not None:
            chunk.tables["trades"] = trades
        quotes = _quotes(eng, p)
        if quotes is not None:
            chunk.tables["quotes"] = quotes
        yield chunk
    chunk = Chunk()
    rows, gaps, dropped, rej = eng.round(pending if pending.height else pl.DataFrame(schema=MSG_SCHEMA), eof=True)
    _finish(chunk, eng, rows, gaps, dropped, rej)
    yield chunk


def _scanned_blocks(blocks) -> Iterator[tuple[int, bytes, object]]:
    """``(first_line, block, scan_block(block))``, the scan run by a thread of its own one block
    ahead (numba releases the GIL): the scanner, the heaviest single step of a capture, then
    overlaps the rest of the parse, the sync engine and the Writer instead of adding to them."""
    def scan():
        for first_line, block in blocks:
            yield first_line, block, scan_block(block)
    return prefetch(scan(), depth=1, name="forensics-scan")


def _finish(chunk: Chunk, eng: _Engine, rows: pl.DataFrame, gaps, dropped, rej) -> None:
    chunk.gaps += gaps
    chunk.dropped += dropped
    chunk.rejects += rej
    if rows.height:
        bad = rows["__bad"]
        if bad.any():
            for line in rows.filter(bad)["line"].to_list():
                chunk.rejects.append(Reject(line, "depth level is not a [price, qty] pair"))
            rows = rows.filter(~bad)
        chunk.tables["book_updates"] = _parsed_decimals(rows.drop("__bad"))


def _parsed_decimals(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows of scanned messages carry their exact decimals (the Writer then parses no text);
    rows of the general path mixed in get them from the same compiled parse the Writer uses,
    and if any of those is not a plain decimal the columns are dropped for the whole frame (the
    Writer then parses and words the reject)."""
    if "__digits_price" not in rows.columns:
        return rows
    miss = rows["__digits_price"].is_null()
    if not miss.any():
        return rows
    from forensics.ingest.decscan import parse_plain

    at = miss.arg_true().to_numpy()
    sub = rows[at]
    cols = {}
    for c in ("price", "size"):
        digits, raw, sig, plain = parse_plain(sub[c])
        if not plain.all():
            return rows.drop(PARSED)
        for k, v in (("digits", digits), ("raw", raw), ("sig", sig)):
            full = rows[f"__{k}_{c}"].fill_null(0).to_numpy().copy()
            full[at] = v
            cols[f"__{k}_{c}"] = pl.Series(f"__{k}_{c}", full)
    return rows.with_columns(**cols)


def read_snapshot(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    """A REST snapshot file on its own (futures: E/T give its time). A file that turns out to
    hold JSON lines is read as a capture."""
    text = _read_text(src)
    doc, local = _snapshot_doc(text) if text is not None else (None, None)
    if doc is None:
        yield from read_capture(src, opts)
        return
    row = doc.row(0, named=True)
    if row["T"] is None and row["E"] is None:
        raise ForensicsError(
            f"{src.path}: a spot REST depth snapshot has no timestamp, so it cannot be placed in time "
            f"alone; ingest it together with its capture, e.g. `forensics ingest capture.gz {src.name}`")
    sym = opts.symbol or row["sym"] or _hint_symbol(opts)
    if not sym:
        raise ForensicsError(f"{src.path}: cannot tell the symbol of this snapshot; pass --symbol")
    doc = doc.with_columns(pl.lit(sym.upper() if not opts.symbol else sym, STR).alias("sym"),
                           pl.lit(1, I64).alias("line"), to_ns_expr(pl.lit(local, I64)).alias("local_ts"))
    eng = _Engine(opts, sym)
    rows, gaps, dropped, rej = eng.round(_snapshot_rows(doc).cast(MSG_SCHEMA), eof=True)
    chunk = Chunk(lines=text.count("\n") + 1)
    _finish(chunk, eng, rows, gaps, dropped, rej)
    yield chunk


# ---- sniffing --------------------------------------------------------------------------------

_LINE = re.compile(rb"^\s*(\d+\s+)?\{")
_MARKERS = (b'"depthUpdate"', b'"aggTrade"', b'"bookTicker"', b'@bookTicker', b'"stream"')
_TRADE = re.compile(rb'"e"\s*:\s*"(trade|depthUpdate|aggTrade|bookTicker)"')


def _sniff_capture(head: bytes, info: NameInfo) -> bool:
    lines = head.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    complete = lines[:-1] if len(lines) > 1 else []
    seen = 0
    for ln in complete[:50]:
        if not ln.strip():
            continue
        if not _LINE.match(ln):
            return False
        seen += 1
        if _TRADE.search(ln) or any(mk in ln for mk in _MARKERS):
            return True
        if b'"lastUpdateId"' in ln and (re.match(rb"^\s*\d+\s+\{", ln) or len(complete) > 1):
            return True
    return False


_DOC_MARKERS = re.compile(rb'"e"\s*:\s*"(trade|depthUpdate|aggTrade|bookTicker)"')


def _sniff_document(head: bytes, info: NameInfo) -> bool:
    """A pretty-printed JSON document (object or array) holding Binance stream messages."""
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return body.startswith((b"{", b"[")) and bool(_DOC_MARKERS.search(body[:65536]))


def _sniff_snapshot(head: bytes, info: NameInfo) -> bool:
    body = re.sub(rb"^\s*\d+\s+(?=\{)", b"", head.removeprefix(b"\xef\xbb\xbf").lstrip())
    # (a capture with a snapshot line inside is a capture: sniffing is unambiguous)
    return (body.startswith(b"{") and b'"lastUpdateId"' in body[:4096]
            and not (_sniff_capture(head, info) or _sniff_document(head, info)))


def _collector_name(m: re.Match) -> NameInfo:
    d = m["date"]
    return NameInfo(None, m["symbol"].upper(), f"{d[:4]}-{d[4:6]}-{d[6:]}", None)


#: file names: captures named like the daily files (BTCUSDT-depth-capture-2025-10-10.jsonl.gz,
#: BTCUSDT-depth-snapshot.json) and the hftbacktest collector's btcusdt_20251010.gz
NAMES = [
    NameRule(re.compile(r"^(?P<symbol>[A-Z0-9_]+)-(?P<kind>depth|depthUpdate|depth-capture|depth-snapshot|snapshot)"
                        r"(?:-(?P<date>\d{4}-\d{2}(?:-\d{2})?)|(?=\.[A-Za-z]|$))"),
             lambda m: NameInfo(None, m["symbol"], m["date"], m["kind"])),
    NameRule(re.compile(r"^(?P<symbol>[a-z0-9_]+)_(?P<date>\d{8})", re.I), _collector_name),
]

FORMATS = [
    Format("binance-capture", "Binance depth/trade/bookTicker capture: JSON lines, raw, combined-stream or "
           "'<receive ns> <json>' collector lines (hftbacktest), REST snapshots interleaved",
           lambda head, info: _sniff_capture(head, info) or _sniff_document(head, info), read_capture),
    Format("binance-snapshot", "Binance REST depth snapshot JSON (lastUpdateId, bids, asks); given next to a "
           "capture it seeds that capture's book", _sniff_snapshot, read_snapshot,
           companion_of="binance-capture"),
]
