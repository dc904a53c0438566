"""LOBSTER (lobsterdata.com) Nasdaq event-by-event books, with their exact cause labels.

A LOBSTER day is a pair of header-less CSVs, ``<TICKER>_<date>_<start>_<end>_message_<N>.csv``
and ``..._orderbook_<N>.csv``, shipped in one zip (with a ReadMe) or given as two files.

* message row i: time (seconds after midnight, New York, up to 9 decimals), event type
  (1 submit, 2 partial cancel, 3 delete, 4 visible execution, 5 hidden execution, 6 cross,
  7 halt), order id, size, price (USD x 10000), direction of the *resting* order (1 buy = bid,
  -1 sell = ask);
* orderbook row i: the N-level view *after* message i (ask price 1, ask size 1, bid price 1,
  bid size 1, ask price 2, ...); empty positions hold the dummy prices +-9999999999, size 0.

What is stored (exchange ``lobster``, symbol and date from the file name, times in UTC ns: the
session date's New York wall clock, so DST days are right for the trading hours):

* ``book_updates``: orderbook row 0 (the book after message 0) is taken as the snapshot
  (``is_snapshot``; message 0 itself is not undone, so its event has no label). Every later
  message gives the changes between row i-1 and row i, one row per (side, price) whose size
  changed (0 = left the view), decreases first, then increases, each by distance from the
  touch; ``update_id`` = the message's line number.
* ``trades``: types 4 and 5 (and 6, auction crosses, with no aggressor). The aggressor is the
  opposite of the resting order's direction; type 5 (hidden) executions carry ``hidden``
  = true: they never count as fills of visible depth (:mod:`forensics.attribution` ignores
  them). ``trade_id`` = message line number.
* ``gaps``: a trading halt (type 7, price -1) to its resume (type 7, price 1), reason
  ``halt``; at the resume the view is restated as a snapshot (the book is known again).
* ``labels_level_changes``: the truth for every book change: ``traded`` (type 4),
  ``cancelled`` (2, 3), ``added`` (1) for the change at the message's side and price (when the
  sign agrees), ``out_of_view`` for every other change (a level entering or leaving the
  N-level window because the book moved). Same ``ts``/``seq`` as the book_updates row.

Reading is block-wise (both files advance together), never a whole file at once.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from forensics.errors import ForensicsError
from forensics.ingest.normalise import LINE_SHIFT, Chunk, Format, ReadOptions, Reject
from forensics.ingest.seqchain import gap_row
from forensics.ingest.source import READ_ERRORS, NameInfo, NameRule, Source, _GunzipStream, _NoBOM

EXCHANGE = "lobster"
TZ = "America/New_York"
DUMMY = 9_999_999_999
BLOCK_LINES = 500_000
MSG_COLS = ["time", "type", "order_id", "size", "price", "direction"]
_NAME = re.compile(r"(?P<stem>(?P<symbol>[^_/]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+)_(?P<kind>message|orderbook)"
                   r"_(?P<level>\d+)\.csv$")


def parse_name(name: str) -> dict | None:
    m = _NAME.search(Path(name).name)
    return None if m is None else {"stem": m["stem"], "symbol": m["symbol"], "date": m["date"],
                                   "kind": m["kind"], "level": int(m["level"])}


def session_base_ns(date: str) -> int:
    """UTC ns of New York wall-clock midnight of ``date`` as the session sees it (the offset of
    local noon, so 09:30-16:00 are right on DST change days)."""
    d = dt.date.fromisoformat(date)
    noon = dt.datetime(d.year, d.month, d.day, 12, tzinfo=ZoneInfo(TZ))
    return (int(noon.timestamp()) - 12 * 3600) * 10**9


# ---- line blocks of both files in step ---------------------------------------------------------

class _Salvaged:
    """A member / file stream without its UTF-8 byte-order mark that ends (``error`` set) instead
    of raising where a compressed stream is truncated or corrupt: the lines before are kept."""

    def __init__(self, fh):
        self.fh, self.error = _NoBOM(fh), None

    def read(self, n: int = -1) -> bytes:
        if self.error is not None:
            return b""
        try:
            return self.fh.read(n)
        except READ_ERRORS as exc:
            self.error = exc
            return b""


def _line_blocks(fh, n_lines: int) -> Iterator[list[bytes]]:
    buf, lines = b"", []
    while True:
        piece = fh.read(8 << 20)
        if not piece:
            break
        buf += piece
        parts = buf.split(b"\n")
        buf = parts.pop()
        lines.extend(parts)
        while len(lines) >= n_lines:
            yield lines[:n_lines]
            lines = lines[n_lines:]
    if buf:
        lines.append(buf)
    while lines and not lines[-1].strip():
        lines.pop()
    if lines:
        yield lines


def _parse_messages(lines: list[bytes], first: int) -> tuple[pl.DataFrame, list[Reject]]:
    raw = pl.DataFrame({"t": [x.decode("utf-8", "replace").strip() for x in lines]})
    df = raw.with_columns(pl.int_range(first, first + raw.height, dtype=pl.Int64).alias("line"),
                          pl.col("t").str.split(",").alias("f"))
    df = df.with_columns(pl.col("f").list.len().alias("nf"))
    get = {c: pl.col("f").list.get(k, null_on_oob=True) for k, c in enumerate(MSG_COLS)}
    secs = get["time"].str.split(".")
    ip = secs.list.get(0, null_on_oob=True).cast(pl.Int64, strict=False)
    frac = secs.list.get(1, null_on_oob=True).fill_null("0")
    fr = frac.str.slice(0, 9).str.pad_end(9, "0").cast(pl.Int64, strict=False)
    df = df.with_columns(
        (ip * 10**9 + fr).alias("secs_ns"),
        get["type"].cast(pl.Int64, strict=False).alias("type"),
        get["order_id"].cast(pl.Int64, strict=False).alias("order_id"),
        get["size"].cast(pl.Int64, strict=False).alias("size"),
        get["price"].cast(pl.Int64, strict=False).alias("price"),
        get["direction"].cast(pl.Int64, strict=False).alias("direction"),
        (frac.str.len_bytes() > 9).alias("too_fine"))
    bad = ((pl.col("nf") != 6) | pl.any_horizontal([pl.col(c).is_null() for c in
                                                     ("secs_ns", "type", "order_id", "size", "price", "direction")])
           | ~pl.col("type").is_between(1, 7) | ~pl.col("direction").is_in([1, -1]))
    df = df.with_columns(bad.fill_null(True).alias("bad"))
    rejects = [Reject(line, "LOBSTER message row needs 6 numeric fields (time,type,order id,size,price,"
                            "direction) with type 1-7 and direction 1/-1", t)
               for line, t in df.filter(pl.col("bad")).select("line", "t").iter_rows()]
    return df.drop("f", "t", "nf"), rejects


def _parse_book(lines: list[bytes], first: int, width: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(values int64 [rows, width], ok mask, width)."""
    text = b"\n".join(lines) + b"\n"
    if width is None:
        width = lines[0].count(b",") + 1 if lines else 0
    if width == 0 or width % 4:
        raise ForensicsError(f"line {first}: a LOBSTER orderbook row has 4 x levels columns, got {width}")
    try:
        df = pl.read_csv(io.BytesIO(text), has_header=False, infer_schema=False,
                         schema_overrides={f"column_{k + 1}": pl.Utf8 for k in range(width)},
                         truncate_ragged_lines=True)
    except Exception:
        df = None
    if df is None or df.height != len(lines) or df.width != width:
        vals = np.zeros((len(lines), width), np.int64)
        ok = np.zeros(len(lines), np.bool_)
        for k, ln in enumerate(lines):
            f = ln.strip().split(b",")
            if len(f) == width:
                try:
                    vals[k] = [int(x) for x in f]
                    ok[k] = True
                except ValueError:
                    pass
        return vals, ok, width
    cast = df.select([pl.col(c).str.strip_chars().cast(pl.Int64, strict=False) for c in df.columns])
    ok = ~cast.select(pl.any_horizontal([pl.col(c).is_null() for c in cast.columns]))[:, 0].to_numpy()
    vals = cast.fill_null(0).to_numpy().astype(np.int64)
    return vals, ok, width


def _long(vals: np.ndarray, rows: np.ndarray) -> pl.DataFrame:
    """Orderbook rows -> (row, side, price, size) of the non-empty levels."""
    N = vals.shape[1] // 4
    parts = []
    for side, pc, sc in (("ask", 0, 1), ("bid", 2, 3)):
        p = vals[:, pc::4].reshape(-1)
        s = vals[:, sc::4].reshape(-1)
        r = np.repeat(rows, N)
        keep = (np.abs(p) < DUMMY) & (s > 0)
        parts.append(pl.DataFrame({"row": r[keep], "side": side, "price": p[keep], "size": s[keep]}))
    return pl.concat(parts)


def _price_str(c: str) -> pl.Expr:
    return ((pl.col(c) // 10000).cast(pl.Utf8) + "." + (pl.col(c) % 10000).cast(pl.Utf8).str.zfill(4))


class _Reader:
    def __init__(self, src_name: str, symbol: str, date: str, opts: ReadOptions):
        self.name = src_name
        self.exchange = EXCHANGE  # (--exchange/--symbol: applied by the Writer)
        self.symbol = symbol or opts.symbol
        self.base = session_base_ns(date)
        self.prev_vals: np.ndarray | None = None   # last good orderbook row
        self.prev_line: int | None = None
        self.width: int | None = None
        self.halt: tuple[int, int] | None = None     # (ts, line) of an open halt
        self.last_ts: int | None = None

    def block(self, mlines: list[bytes], blines: list[bytes], first: int) -> Chunk:
        if len(mlines) != len(blines):
            raise ForensicsError(f"{self.name}: message and orderbook files differ in length near line "
                                 f"{first + min(len(mlines), len(blines))} (LOBSTER rows pair one to one)")
        msg, rejects = _parse_messages(mlines, first)
        vals, ok, self.width = _parse_book(blines, first, self.width)
        for k in np.flatnonzero(~ok):
            rejects.append(Reject(first + int(k), "LOBSTER orderbook row is not all integers / wrong column count",
                                  blines[k].decode("utf-8", "replace")[:200]))
        good = ok & ~msg["bad"].to_numpy()
        msg = msg.with_columns((pl.col("secs_ns") + self.base).alias("ts"))
        chunk = Chunk(rejects=rejects, lines=len(mlines))
        lines = np.arange(first, first + len(mlines), dtype=np.int64)
        gl = lines[good]
        gvals = vals[good]
        if gl.size == 0:
            return chunk
        mg = msg.filter(pl.Series(good))
        tr = self._trades(mg)
        if tr is not None:
            chunk.tables["trades"] = tr
        # ---- book changes between consecutive good rows ----------------------------------------
        rows = np.arange(gl.size, dtype=np.int64)
        cur = _long(gvals, rows)
        snap_rows = ([0] if self.prev_vals is None else []) + self._halts(mg, chunk)  # row 0: the snapshot
        ch = self._changes(cur, rows, snap_rows)
        self._book_and_labels(chunk, ch, mg, rows, gl)
        self.prev_vals = gvals[-1].copy()
        self.prev_line = int(gl[-1])
        self.last_ts = int(mg["ts"][-1])
        return chunk

    def _trades(self, mg: pl.DataFrame) -> pl.DataFrame | None:
        """Executions (types 4, 5 hidden, 6 cross): one trade row each."""
        tr = mg.filter(pl.col("type").is_in([4, 5, 6]))
        if not tr.height:
            return None
        return tr.select(
            pl.lit(self.exchange).alias("exchange"), pl.lit(self.symbol).alias("symbol"),
            (pl.col("line") * (1 << LINE_SHIFT)).alias("arrival"), "line", "ts",
            pl.lit(None, pl.Int64).alias("local_ts"), pl.col("line").cast(pl.Utf8).alias("trade_id"),
            _price_str("price").alias("price"), pl.col("size").cast(pl.Utf8).alias("size"),
            pl.when(pl.col("type") == 6).then(None).when(pl.col("direction") == 1).then(pl.lit("sell"))
            .otherwise(pl.lit("buy")).alias("aggressor"),
            (pl.col("type") == 5).alias("hidden"))

    def _halts(self, mg: pl.DataFrame, chunk: Chunk) -> list[int]:
        """Trading halts (type 7): a halt-resume pair is a gap; the rows where trading resumes
        (a resume restates the view as a snapshot) are returned."""
        halts = mg.with_row_index("row").filter(pl.col("type") == 7).select("row", "line", "ts", "price")
        gaps, resumed = [], []
        for row, line, ts, price in halts.iter_rows():
            if price == -1 and self.halt is None:
                self.halt = (ts, line)
            elif price == 1 and self.halt is not None:
                gaps.append((self.halt, (ts, line)))
                self.halt = None
                resumed.append(int(row))
        for (t0, l0), (t1, l1) in gaps:
            chunk.gaps.append(gap_row(self.exchange, self.symbol, "halt", t0, l0 << LINE_SHIFT,
                                      f"trading halt (LOBSTER type 7) lines {l0}-{l1}", t1, l1 << LINE_SHIFT))
        return resumed

    def _changes(self, cur: pl.DataFrame, rows: np.ndarray, snap_rows: list[int]) -> pl.DataFrame:
        """Level changes between consecutive good rows (and the previous block's last row),
        plus the whole view at snapshot rows; in row order, then snapshot, increases, side,
        distance from the touch."""
        if self.prev_vals is not None:
            prev = pl.concat([_long(self.prev_vals[None, :], np.array([-1], np.int64)),
                              cur.filter(pl.col("row") < rows[-1])]).with_columns(pl.col("row") + 1)
        else:
            prev = cur.filter(pl.col("row") < rows[-1]).with_columns(pl.col("row") + 1)
        ch = (cur.join(prev, on=["row", "side", "price"], how="full", coalesce=True, suffix="_old")
              .with_columns(pl.col("size").fill_null(0), pl.col("size_old").fill_null(0))
              .filter(pl.col("size") != pl.col("size_old")))
        if snap_rows and snap_rows[0] == 0 and self.prev_vals is None:
            ch = ch.filter(pl.col("row") > 0)
        ch = ch.with_columns(
            (pl.col("size") > pl.col("size_old")).alias("up"),
            pl.when(pl.col("side") == "bid").then(-pl.col("price")).otherwise(pl.col("price")).alias("dist"),
            pl.lit(False).alias("is_snapshot"))
        if snap_rows:
            snap = cur.filter(pl.col("row").is_in(snap_rows)).with_columns(
                pl.col("size").alias("size"), pl.lit(0, pl.Int64).alias("size_old"), pl.lit(False).alias("up"),
                pl.when(pl.col("side") == "bid").then(-pl.col("price")).otherwise(pl.col("price")).alias("dist"),
                pl.lit(True).alias("is_snapshot"))
            ch = pl.concat([ch.select(snap.columns), snap])
        return ch.sort(["row", "is_snapshot", "up", "side", "dist"])

    def _book_and_labels(self, chunk: Chunk, ch: pl.DataFrame, mg: pl.DataFrame, rows: np.ndarray,
                         gl: np.ndarray) -> None:
        """The changes as book_updates rows, and each non-snapshot change's ground truth
        (traded / cancelled / added at the message's price and side, else out_of_view)."""
        meta = pl.DataFrame({"row": rows, "line": gl})
        mrow = mg.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64)).select(
            "row", "ts", "type", pl.col("price").alias("m_price"), pl.col("size").alias("m_size"),
            pl.when(pl.col("direction") == 1).then(pl.lit("bid")).otherwise(pl.lit("ask")).alias("m_side"))
        ch = ch.join(meta, on="row", how="left").join(mrow, on="row", how="left")
        ch = ch.with_columns((pl.int_range(pl.len()).over("row") + 1).alias("k"))
        out = ch.select(
            pl.lit(self.exchange).alias("exchange"), pl.lit(self.symbol).alias("symbol"),
            (pl.col("line") * (1 << LINE_SHIFT) + pl.col("k")).alias("arrival"), "line", "ts",
            pl.lit(None, pl.Int64).alias("local_ts"), pl.col("line").alias("update_id"), "is_snapshot", "side",
            _price_str("price").alias("price"), pl.col("size").cast(pl.Utf8).alias("size"),
            (pl.col("size") - pl.col("size_old")).alias("delta"), "type", "m_price", "m_side", "m_size",
            pl.col("price").alias("p_int"))
        if out.height:
            chunk.tables["book_updates"] = out.select(
                "exchange", "symbol", "arrival", "line", "ts", "local_ts", "update_id", "is_snapshot", "side",
                "price", "size")
            at_msg = (pl.col("p_int") == pl.col("m_price")) & (pl.col("side") == pl.col("m_side"))
            truth = (pl.when(at_msg & (pl.col("type") == 4) & (pl.col("delta") < 0)).then(pl.lit("traded"))
                     .when(at_msg & pl.col("type").is_in([2, 3]) & (pl.col("delta") < 0)).then(pl.lit("cancelled"))
                     .when(at_msg & (pl.col("type") == 1) & (pl.col("delta") > 0)).then(pl.lit("added"))
                     .otherwise(pl.lit("out_of_view")))
            lab = out.filter(~pl.col("is_snapshot")).with_columns(truth.alias("truth"))
            chunk.tables["labels_level_changes"] = lab.select(
                "exchange", "symbol", "arrival", "line", "ts", "side", "price", "delta", "truth")

    def finish(self) -> Chunk:
        chunk = Chunk()
        if self.halt is not None and self.last_ts is not None:
            t0, l0 = self.halt
            chunk.gaps.append(gap_row(self.exchange, self.symbol, "halt", t0, l0 << LINE_SHIFT,
                                      "trading halt (LOBSTER type 7) not resumed in the file", self.last_ts))
        return chunk


def _pair(src: Source, opts: ReadOptions):
    """(message opener, orderbook opener, message name) for a zip or a message CSV + companion."""
    if src.compression == "zip":
        zf = zipfile.ZipFile(src.path)
        names = [n for n in zf.namelist() if not n.startswith("__MACOSX/") and not n.endswith("/")]
        msgs = [n for n in names if (parse_name(n) or {}).get("kind") == "message"]
        if len(msgs) != 1:
            raise ForensicsError(f"{src.path}: a LOBSTER zip holds one *_message_<N>.csv and its *_orderbook_<N>.csv; "
                                 f"found {len(msgs)} message files ({', '.join(names[:5])})")
        info = parse_name(msgs[0])
        books = [n for n in names if (parse_name(n) or {}).get("kind") == "orderbook"
                 and parse_name(n)["stem"] == info["stem"] and parse_name(n)["level"] == info["level"]]
        if not books:
            raise ForensicsError(f"{src.path}: no orderbook file matching {msgs[0]} in the zip")
        return (lambda: zf.open(msgs[0])), (lambda: zf.open(books[0])), msgs[0], zf
    info = parse_name(src.inner_name())
    if info is None or info["kind"] != "message":
        raise ForensicsError(f"{src.path}: a LOBSTER orderbook file needs its message file (give both CSVs "
                             "together, or the zip as LOBSTER ships it)")
    for comp in opts.companions:
        ci = parse_name(comp.inner_name())
        if ci and ci["kind"] == "orderbook" and ci["stem"] == info["stem"] and ci["level"] == info["level"]:
            return (lambda: _open_plain(src)), (lambda: _open_plain(comp)), src.inner_name(), None
    raise ForensicsError(f"{src.path}: LOBSTER message file without its orderbook file "
                         f"({info['stem']}_orderbook_{info['level']}.csv): give both together")


def _open_plain(src: Source):
    if src.compression == "gzip":  # the salvaging gunzip: every byte before damage is kept
        return _Gunzipped(src.path)
    return open(src.path, "rb")


class _Gunzipped:
    """A gzip file read through :class:`~forensics.ingest.source._GunzipStream` (a context manager)."""

    def __init__(self, path: Path):
        self.raw = open(path, "rb")
        self.stream = _GunzipStream(self.raw, path)

    def read(self, n: int = -1) -> bytes:
        return self.stream.read(n if n > 0 else 1 << 30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.raw.close()


def read(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    open_msg, open_book, msg_name, zf = _pair(src, opts)
    info = parse_name(msg_name)
    reader = _Reader(str(src.path), info["symbol"], info["date"], opts)
    try:
        with open_msg() as mraw, open_book() as braw:
            mf, bf = _Salvaged(mraw), _Salvaged(braw)
            first = 1
            for mlines, blines in zip(_line_blocks(mf, BLOCK_LINES), _line_blocks(bf, BLOCK_LINES)):
                if len(mlines) != len(blines) and (mf.error or bf.error):  # rows after the damage are lost
                    k = min(len(mlines), len(blines))
                    mlines, blines = mlines[:k], blines[:k]
                yield reader.block(mlines, blines, first)
                first += len(mlines)
            damaged = mf.error or bf.error
            if damaged is not None:
                what = "truncated" if isinstance(damaged, EOFError) else "corrupt"
                src.errors.append((first, f"{what} compressed stream, rows after line {first - 1} lost ({damaged})"))
            elif mf.read(1).strip() or bf.read(1).strip():
                raise ForensicsError(f"{src.path}: message and orderbook files differ in length after line "
                                     f"{first - 1} (LOBSTER rows pair one to one)")
        yield reader.finish()
    finally:
        if zf is not None:
            zf.close()


def _orderbook_alone(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    if src.compression == "zip":
        return read(src, opts)
    raise ForensicsError(f"{src.path}: a LOBSTER orderbook file needs its message file (give both CSVs "
                         "together, or the zip as LOBSTER ships it)")


def _looks_numeric(head: bytes, fields: int | None) -> bool:
    line = head.split(b"\n", 1)[0].strip()
    parts = line.split(b",")
    if fields is not None and len(parts) != fields:
        return False
    return bool(parts) and all(re.fullmatch(rb"-?\d+(\.\d+)?", p.strip()) for p in parts)


def _sniff_main(head: bytes, info: NameInfo) -> bool:
    if info.kind == "lobster-message":
        return _looks_numeric(head, 6)
    # a zip as LOBSTER ships it (its first member may be either CSV or the ReadMe)
    return info.container == "zip" and info.kind in ("lobster-orderbook", "lobster-zip")


def _sniff_book(head: bytes, info: NameInfo) -> bool:
    return info.kind == "lobster-orderbook" and info.container != "zip" and _looks_numeric(head, None)


#: LOBSTER file names: AAPL_2012-06-21_34200000_57600000_message_5.csv / ..._orderbook_5.csv and
#: the sample zips LOBSTER_SampleFile_AAPL_2012-06-21_1.zip
NAMES = [NameRule(
    re.compile(r"^(?:(?P<symbol>[A-Za-z0-9.^-]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_(?P<kind>message|orderbook)"
               r"_\d+\.csv|LOBSTER_SampleFile_(?P<zsym>[A-Za-z0-9.^-]+)_(?P<zdate>\d{4}-\d{2}-\d{2})_\d+\.zip)"),
    lambda m: NameInfo("lobster", m["symbol"] or m["zsym"], m["date"] or m["zdate"], f"lobster-{m['kind'] or 'zip'}"))]

FORMATS = [
    Format("lobster", "LOBSTER message + orderbook CSV pair (Nasdaq; zip as shipped, or the message CSV with its "
           "orderbook CSV)", _sniff_main, read),
    Format("lobster-orderbook", "LOBSTER orderbook CSV (companion of its message CSV)", _sniff_book,
           _orderbook_alone, companion_of="lobster"),
]
