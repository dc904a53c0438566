"""Binance public daily files (data.binance.vision) and the tick-level historical depth CSV.

Formats (zip or plain, with or without the header row; content decides, the file name helps):

* ``binance-bookdepth``: futures ``bookDepth`` ``timestamp,percentage,depth,notional`` ->
  ``depth_bands``. ``timestamp`` is UTC text ``YYYY-MM-DD HH:MM:SS`` as Binance publishes it
  (epoch s/ms/us also accepted); ``percentage`` -5..-1 are bids, 1..5 asks (fractional bands
  such as -0.2 appear too): ``side`` from the sign, ``band_pct = |percentage|``; ``depth`` (base
  quantity) and ``notional`` are cumulative within that % of the price. Futures-only:
  ``binance-futures`` (``binance-delivery`` for COIN-M symbols).
* ``binance-aggtrades``: ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,
  transact_time,is_buyer_maker`` -> ``trades`` (trade_id = agg_trade_id).
* ``binance-trades``: ``id,price,qty,quote_qty,time,is_buyer_maker`` (COIN-M: ``base_qty``)
  -> ``trades``.
  Spot files have no header and an extra ``is_best_match`` column, and from 2025-01-01 their
  timestamps are microseconds (units are inferred per value); that layout means
  ``binance-spot``; a COIN-M symbol (``BTCUSD_PERP``, ``BTCUSD_251226``) means
  ``binance-delivery``; otherwise ``binance-futures``. ``is_buyer_maker`` true means the
  aggressor sold (``aggressor='sell'``). COIN-M quantities are contracts.
* ``binance-histdepth``: tick-level depth ``symbol,timestamp,first_update_id,last_update_id,
  side,update_type,price,qty,pu`` (``side`` b/a, ``update_type`` snap/set) -> ``book_updates``.
  ``snap`` rows are snapshot levels (a snap block after set rows is a resync); the ``pu``
  chain between consecutive updates is checked where ``pu != -1`` and a break is recorded as a
  gap (reason ``chain_break``, until the next snap block; rows are kept, replay treats the book
  as unknown there). The first update after a snap block must chain to it (``pu ==
  lastUpdateId`` or ``first_update_id <= lastUpdateId+1 <= last_update_id``), else
  ``snapshot_sync``. A file starting with updates and no snapshot gets a ``no_snapshot`` gap.
  Binance ships the snapshot as ``..._T_DEPTH_<date>_depth_snap.csv`` next to
  ``..._depth_update.csv``: given together (``forensics ingest snap.csv update.csv``) the snap
  file (format ``binance-histdepth-snap``) is read first, as part of the update file.

Exchange and symbol come from the file name (``BTCUSDT-aggTrades-2025-10-10.zip``) or the data
(histdepth's ``symbol`` column); ``--exchange``/``--symbol`` override (applied by the Writer).
Without a symbol the ingest stops and asks for ``--symbol``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import polars as pl

from forensics.errors import ForensicsError
from forensics.ingest.csvblock import int_or_reject, read_block
from forensics.ingest.normalise import LINE_SHIFT, Chunk, Format, ReadOptions, Reject
from forensics.ingest.seqchain import PRESYNC, SYNCED, SeqChain, first_break, straddles
from forensics.ingest.source import NameInfo, NameRule, Source, prefetch
from forensics.timeutil import to_ns_expr

FUTURES, DELIVERY, SPOT = "binance-futures", "binance-delivery", "binance-spot"
COINM = re.compile(r"_(PERP|\d{6})$")

BOOKDEPTH_COLS = ["timestamp", "percentage", "depth", "notional"]
AGG_COLS = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
            "is_buyer_maker"]
TRADE_COLS = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"]
HIST_COLS = ["symbol", "timestamp", "first_update_id", "last_update_id", "side", "update_type", "price",
             "qty", "pu"]

_INT = r"\d+"
_DEC = r"(\d+(\.\d*)?|\.\d+)"
_NUM = r"-?(\d+(\.\d*)?|\.\d+)"
_BOOL = r"(?i:true|false)"
_TIME = r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?|\d{9,19})"


def _row(*fields: str) -> re.Pattern:
    return re.compile("^" + ",".join(fields) + r"\s*$")


LAYOUTS = {  # (kind, spot?) -> data row pattern
    ("bookdepth", False): _row(_TIME, _NUM, _DEC, _DEC),
    ("aggtrades", False): _row(_INT, _DEC, _DEC, _INT, _INT, _INT, _BOOL),
    ("aggtrades", True): _row(_INT, _DEC, _DEC, _INT, _INT, _INT, _BOOL, _BOOL),
    ("trades", False): _row(_INT, _DEC, _DEC, _DEC, _INT, _BOOL),
    ("trades", True): _row(_INT, _DEC, _DEC, _DEC, _INT, _BOOL, _BOOL),
    ("histdepth", False): _row(r"[A-Za-z0-9_]+", _INT, _INT, _INT, r"[A-Za-z]+", r"[A-Za-z]+", _DEC, _DEC, r"-?\d+"),
}
HEADERS = {
    "bookdepth": ("timestamp,percentage,depth,notional",),
    "aggtrades": ("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",),
    "trades": ("id,price,qty,quote_qty,time,is_buyer_maker", "id,price,qty,base_qty,time,is_buyer_maker"),
    "histdepth": ("symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu",),
}


@dataclass
class Layout:
    kind: str
    header: bool
    spot: bool
    columns: list[str]
    extras: list[str] = field(default_factory=list)  # columns added by other tools (ignored)


def classify(head: bytes) -> Layout | None:
    """Which Binance daily CSV this is, from its first lines (None if none of them)."""
    lines = [ln.strip() for ln in head.removeprefix(b"\xef\xbb\xbf").split(b"\n")[:6] if ln.strip()]
    if not lines:
        return None
    first = lines[0].decode("utf-8", "replace").lstrip("\ufeff")
    low = first.lower().replace(" ", "")
    for kind, headers in HEADERS.items():
        for h in headers:
            if low == h or low == h + ",is_best_match":
                spot = low.endswith("is_best_match")
                return Layout(kind, True, spot, _columns(kind, spot))
    # a known header plus columns other tools appended (e.g. bookDepth + weighted_avg_price)
    for kind, headers in HEADERS.items():
        for h in headers:
            for base in (h + ",is_best_match", h):
                if low.startswith(base + ","):
                    spot = base.endswith("is_best_match")
                    extras = _extra_names(low[len(base) + 1:].split(","), len(_columns(kind, spot)))
                    return Layout(kind, True, spot, _columns(kind, spot) + extras, extras)
    # no header: judge by the field types of the first complete data lines
    data = [ln.decode("utf-8", "replace") for ln in lines[: max(1, len(lines) - 1)]]
    for (kind, spot), pat in LAYOUTS.items():
        if all(pat.match(x) for x in data):
            return Layout(kind, False, spot, _columns(kind, spot))
    for (kind, spot), pat in LAYOUTS.items():  # known leading fields, extra trailing ones
        n = len(_columns(kind, spot))
        cut = [x.split(",") for x in data]
        if len({len(c) for c in cut}) == 1 and len(cut[0]) > n and all(pat.match(",".join(c[:n])) for c in cut):
            extras = _extra_names([""] * (len(cut[0]) - n), n)
            return Layout(kind, False, spot, _columns(kind, spot) + extras, extras)
    return None


def _extra_names(names: list[str], start: int) -> list[str]:
    """Names for appended columns (unique, never clashing with the known ones)."""
    out = []
    for i, nm in enumerate(names):
        nm = re.sub(r"[^a-z0-9_]", "_", nm.strip().lower()) or f"column_{start + i + 1}"
        while nm in out or nm in ("line",):
            nm += "_"
        out.append(f"extra:{nm}")
    return out


def _notes(opts: ReadOptions, lay: Layout) -> list[str]:
    """What the summary line should say about a file read with a deviation from Binance's own."""
    out = []
    if lay.extras:
        out.append(f"{len(lay.extras)} extra column(s) ignored: "
                   + ", ".join(e.split(":", 1)[1] for e in lay.extras))
    info = opts.name_info
    if info is not None and info.symbol and info.kind and not info.date:
        out.append("file name has no date (renamed?): dates taken from the data")
    return out


def _columns(kind: str, spot: bool) -> list[str]:
    base = {"bookdepth": BOOKDEPTH_COLS, "aggtrades": AGG_COLS, "trades": TRADE_COLS, "histdepth": HIST_COLS}[kind]
    return base + (["is_best_match"] if spot else [])


def _sniff(kind: str, companion: bool | None = None):
    def sniff(head: bytes, info: NameInfo) -> bool:
        lay = classify(head)
        if lay is None or lay.kind != kind:
            return False
        if companion is None:
            return True
        return (info.kind == "depth_snap") == companion
    return sniff


# ---- shared helpers ---------------------------------------------------------------------------

def _symbol(src: Source, opts: ReadOptions) -> str:
    """The instrument the file is about: its name's symbol (``--symbol`` stands in where the
    name has none; the Writer applies ``--symbol`` to every row either way)."""
    sym = opts.symbol or (opts.name_info.symbol if opts.name_info else None)
    if not sym:
        raise ForensicsError(f"{src.path}: cannot tell the symbol from the file name or content; pass --symbol "
                             "(Binance names files like BTCUSDT-aggTrades-2025-10-10.zip)")
    return sym if opts.symbol else sym.upper()


def _exchange(symbol: str, spot: bool = False) -> str:
    if spot:
        return SPOT
    return DELIVERY if COINM.search(symbol) else FUTURES


def _layout(src: Source) -> Layout:
    lay = classify(src.head(1 << 16))
    if lay is None:
        raise ForensicsError(f"{src.path}: not a Binance daily CSV this reader knows")
    return lay


def _blocks(src: Source, lay: Layout) -> Iterator[tuple[pl.DataFrame, list[Reject], int]]:
    for first_line, block in src.blocks():
        df, rejects = read_block(block, first_line, lay.columns, skip_header=first_line == 1 and lay.header)
        yield df, rejects, block.count(b"\n")


def _bool(col: str) -> pl.Expr:
    v = pl.col(col).str.strip_chars().str.to_lowercase()
    return pl.when(v == "true").then(True).when(v == "false").then(False).otherwise(None)


def _reject_bool(df: pl.DataFrame, col: str) -> tuple[pl.DataFrame, list[Reject]]:
    b = df.select(_bool(col).alias("b"))["b"]
    bad = b.is_null()
    rejects = [Reject(line, f"{col} must be true/false, got {v!r}")
               for line, v in df.filter(bad).select("line", col).iter_rows()]
    return df.with_columns(b.alias(col)).filter(~bad), rejects


# ---- bookDepth --------------------------------------------------------------------------------

def read_bookdepth(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    lay = _layout(src)
    sym = _symbol(src, opts)
    ex = _exchange(sym)
    text_ts = pl.col("timestamp").str.strip_chars()
    notes = _notes(opts, lay)
    for df, rejects, n in _blocks(src, lay):
        chunk = Chunk(rejects=rejects, lines=n, notes=notes)
        notes = []
        if df.height:
            pct = pl.col("percentage").str.strip_chars().cast(pl.Float64, strict=False)
            ts = (pl.when(text_ts.str.contains(r"^\d+$"))
                  .then(to_ns_expr(text_ts.cast(pl.Int64, strict=False)))
                  .otherwise(text_ts.str.replace("T", " ", literal=True)
                             .str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False).dt.epoch("ns")))
            chunk.tables["depth_bands"] = df.select(
                pl.lit(ex).alias("exchange"), pl.lit(sym).alias("symbol"), ts.alias("ts"),
                pl.when(pct < 0).then(pl.lit("bid")).when(pct > 0).then(pl.lit("ask")).alias("side"),
                pct.abs().alias("band_pct"),
                pl.col("depth").str.strip_chars().cast(pl.Float64, strict=False).alias("qty"),
                pl.col("notional").str.strip_chars().cast(pl.Float64, strict=False).alias("notional"),
                (pl.col("line") * (1 << LINE_SHIFT)).alias("arrival"), "line")
        yield chunk


# ---- trades / aggTrades -------------------------------------------------------------------------

def _trade_reader(id_col: str, size_col: str, time_col: str):
    def read(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
        lay = _layout(src)
        sym = _symbol(src, opts)
        ex = _exchange(sym, spot=lay.spot)
        notes = _notes(opts, lay)
        for df, rejects, n in _blocks(src, lay):
            chunk = Chunk(rejects=rejects, lines=n, notes=notes)
            notes = []
            if df.height:
                df, r1 = int_or_reject(df, time_col, "timestamp")
                df, r2 = _reject_bool(df, "is_buyer_maker")
                chunk.rejects += r1 + r2
                chunk.tables["trades"] = df.select(
                    pl.lit(ex).alias("exchange"), pl.lit(sym).alias("symbol"),
                    to_ns_expr(pl.col(time_col)).alias("ts"), pl.lit(None, pl.Int64).alias("local_ts"),
                    pl.col(id_col).str.strip_chars().alias("trade_id"), "price", pl.col(size_col).alias("size"),
                    pl.when(pl.col("is_buyer_maker")).then(pl.lit("sell")).otherwise(pl.lit("buy")).alias("aggressor"),
                    (pl.col("line") * (1 << LINE_SHIFT)).alias("arrival"), "line")
            yield chunk
    return read


read_aggtrades = _trade_reader("agg_trade_id", "quantity", "transact_time")
read_trades = _trade_reader("id", "qty", "time")


# ---- tick-level historical depth -----------------------------------------------------------------

@dataclass
class _HistState:
    last_snap: bool = False      # previous message was a snap block (the chain is in SeqChain)
    last_L: int | None = None    # lastUpdateId of the latest snap block


class _Hist:
    """pu-chain checking across blocks (and across a companion snap file and its update file)."""

    def __init__(self, opts: ReadOptions, src: Source):
        self.opts, self.src = opts, src
        self.chain = SeqChain()
        self.state: dict[tuple[str, str], _HistState] = {}

    def chunk(self, df: pl.DataFrame, rejects: list[Reject], n: int, offset: int) -> Chunk:
        chunk = Chunk(rejects=rejects, lines=n)
        if df.height == 0:
            return chunk
        for col, what in (("timestamp", "timestamp"), ("first_update_id", "first_update_id"),
                          ("last_update_id", "last_update_id"), ("pu", "pu")):
            df, r = int_or_reject(df, col, what)
            chunk.rejects += r
        typ = pl.col("update_type").str.strip_chars().str.to_lowercase()
        bad = df.select(~typ.is_in(["snap", "set"]).fill_null(True))
        bad = bad.to_series()
        for line, v in df.filter(bad).select("line", "update_type").iter_rows():
            chunk.rejects.append(Reject(line, f"update_type must be snap or set, got {v!r}"))
        df = df.filter(~bad)
        if df.height == 0:
            return chunk
        sym_src = pl.col("symbol").str.strip_chars()
        df = df.with_columns(
            (typ == "snap").alias("is_snapshot"),
            sym_src.alias("__sym"),
            to_ns_expr(pl.col("timestamp")).alias("ts"),
            ((pl.col("line") + offset) * (1 << LINE_SHIFT)).alias("arrival"))
        if df["__sym"].is_null().any():  # (--symbol stands in; the Writer applies it to every row)
            hint = self.opts.symbol or (self.opts.name_info.symbol if self.opts.name_info else None)
            df = df.with_columns(pl.col("__sym").fill_null(pl.lit(hint)))
        for (sym,), part in df.group_by(["__sym"], maintain_order=True):
            ex = _exchange(sym or "")
            self._check(part, (ex, sym))
            side = pl.col("side").str.strip_chars().str.to_lowercase()
            chunk.tables.setdefault("book_updates", [])
            chunk.tables["book_updates"].append(part.select(
                pl.lit(ex).alias("exchange"), pl.lit(sym, pl.Utf8).alias("symbol"), "ts",
                pl.lit(None, pl.Int64).alias("local_ts"), pl.col("last_update_id").alias("update_id"),
                pl.col("first_update_id"),
                pl.when(pl.col("pu") == -1).then(None).otherwise(pl.col("pu")).alias("prev_update_id"),
                "is_snapshot",
                pl.when(side == "b").then(pl.lit("bid")).when(side == "a").then(pl.lit("ask"))
                .otherwise(pl.col("side")).alias("side"),
                "price", pl.col("qty").alias("size"), "arrival", "line"))
        chunk.tables = {k: pl.concat(v) if isinstance(v, list) else v for k, v in chunk.tables.items()}
        chunk.gaps += self.chain.drain()
        return chunk

    def _check(self, part: pl.DataFrame, key) -> None:
        """Message-level chain check (vectorised); loops only over snap blocks and breaks.
        Gaps go to :attr:`chain` (closed ones are drained per chunk)."""
        cs = self.chain.st(key)
        hs = self.state.setdefault(key, _HistState())
        snap = part["is_snapshot"].to_numpy()
        u = part["last_update_id"].fill_null(-1).to_numpy()
        # a message = a run of rows with the same (last_update_id, snap/set)
        prev_u = np.concatenate([[cs.last_id if cs.last_id is not None else -(2**62)], u[:-1]])
        prev_s = np.concatenate([[hs.last_snap], snap[:-1]])
        start = (u != prev_u) | (snap != prev_s)
        if cs.last_id is None:
            start[0] = True
        idx = np.flatnonzero(start)
        if idx.size == 0:
            return
        ms, mu = snap[idx], u[idx]
        mU = part["first_update_id"].fill_null(-1).to_numpy()[idx]
        mpu = part["pu"].fill_null(-1).to_numpy()[idx]
        mts = part["ts"].fill_null(0).to_numpy()[idx]
        marr = part["arrival"].to_numpy()[idx]
        k = idx.size
        before_u = np.concatenate([[cs.last_id if cs.last_id is not None else -(2**62)], mu[:-1]])
        before_snap = np.concatenate([[hs.last_snap], ms[:-1]])
        # lastUpdateId of the snap block in force before each message
        snap_pos = np.where(ms, np.arange(k), -1)
        last_snap_idx = np.maximum.accumulate(np.concatenate([[-1], snap_pos[:-1]]))
        L_before = np.where(last_snap_idx >= 0, mu[np.maximum(last_snap_idx, 0)],
                            hs.last_L if hs.last_L is not None else -(2**62))
        # the first update after a snap chains to it (pu == lastUpdateId) or straddles it
        after_snap_ok = (mpu == L_before) | straddles(mU, mu, L_before, rule="either")
        chain_ok = (mpu == before_u) | (mpu == -1)
        ok = np.where(before_snap, after_snap_ok, chain_ok)
        snaps = np.flatnonzero(ms)
        bounds = list(snaps) + [k]
        i = 0
        for b in bounds:
            if b > i:  # set messages i..b-1
                self._segment(cs, key, i, b, ok, before_snap, mts, marr, mU, mpu, before_u, L_before)
            if b < k:  # snap block b: a restart (closes an open gap)
                self.chain.restart(key, int(mts[b]), int(marr[b]))
                hs.last_L = int(mu[b])
                cs.last_ts = int(mts[b])
                i = b + 1
        cs.last_id, hs.last_snap = int(u[-1]), bool(snap[-1])

    def _segment(self, cs, key, a, b, ok, before_snap, mts, marr, mU, mpu, before_u, L_before) -> None:
        if cs.status == PRESYNC:
            self.chain.no_snapshot(key, int(mts[a]), int(marr[a]), "depth updates before any snap block: book unknown")
        elif cs.status == SYNCED:
            f = first_break(ok[a:b])
            if f is not None:
                f += a
                if before_snap[f]:
                    self.chain.chain_break(key, int(marr[f]), f"first update after snap (lastUpdateId="
                                           f"{int(L_before[f])}) has first_update_id={int(mU[f])}, pu={int(mpu[f])}: "
                                           "updates missing", reason="snapshot_sync")
                else:
                    prev_ts = int(mts[f - 1]) if f > a else cs.last_ts
                    self.chain.chain_break(key, int(marr[f]), f"pu={int(mpu[f])} != previous last_update_id="
                                           f"{int(before_u[f])}", ts_from=prev_ts)
        cs.last_ts = int(mts[b - 1])

    def close(self) -> list[dict]:
        return self.chain.drain(eof=True)


def _matching_companions(opts: ReadOptions) -> list[Source]:
    """Snap files that belong with this update file (same symbol/date when names tell)."""
    mine = opts.name_info or NameInfo()
    out = []
    for c in opts.companions:
        ni = c.name_info()
        if mine.symbol and ni.symbol and ni.symbol.upper() != mine.symbol.upper():
            continue
        if mine.date and ni.date and ni.date != mine.date:
            continue
        out.append(c)
    return out


def read_histdepth(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    h = _Hist(opts, src)
    offset = 0
    for comp in _matching_companions(opts):
        lay = _layout(comp)
        last = 0
        for df, rejects, n in _blocks(comp, lay):
            ch = h.chunk(df, rejects, 0, offset)
            for r in ch.rejects:  # name the companion file: line numbers are its own
                r.reason = f"{comp.name}:{r.line}: {r.reason}"
                r.line = None
            if "book_updates" in ch.tables:  # companion lines are reported without line numbers
                ch.tables["book_updates"] = ch.tables["book_updates"].with_columns(pl.lit(None, pl.Int64).alias("line"))
            last += n
            yield ch
        offset += last + 1
    lay = _layout(src)
    for df, rejects, n in _blocks(src, lay):
        yield h.chunk(df, rejects, n, offset)
    yield Chunk(gaps=h.close())


def read_histdepth_snap(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
    yield from read_histdepth(src, opts)


def _ahead(reader):
    """The reader run a chunk ahead in a thread (parsing overlaps the Writer's work)."""
    def read(src: Source, opts: ReadOptions) -> Iterator[Chunk]:
        return prefetch(reader(src, opts), depth=1, name="forensics-parse")
    read.__doc__ = reader.__doc__
    return read


#: file names: the tick-level historical depth download (BTCUSDT_T_DEPTH_2022-11-01_depth_snap.csv /
#: _depth_update.csv) and data.binance.vision daily files (BTCUSDT-aggTrades-2025-10-10.zip; a daily
#: file renamed without its date, BTCUSDT-aggTrades.csv, still names symbol and kind)
NAMES = [
    NameRule(re.compile(r"^(?P<symbol>[A-Z0-9_]+?)_T_DEPTH_(?P<date>\d{4}-\d{2}-\d{2})_(?P<kind>depth_snap|depth_update)"),
             lambda m: NameInfo(None, m["symbol"], m["date"], m["kind"])),
    NameRule(re.compile(r"^(?P<symbol>[A-Z0-9_]+)-(?P<kind>bookDepth|aggTrades|trades|bookTicker)"
                        r"(?:-(?P<date>\d{4}-\d{2}(?:-\d{2})?)|(?=\.[A-Za-z]|$))"),
             lambda m: NameInfo(None, m["symbol"], m["date"], m["kind"])),
]

FORMATS = [
    Format("binance-bookdepth", "Binance futures bookDepth daily CSV (timestamp,percentage,depth,notional) "
           "-> depth_bands", _sniff("bookdepth"), _ahead(read_bookdepth)),
    Format("binance-aggtrades", "Binance aggTrades daily CSV (futures with header; spot without, plus "
           "is_best_match) -> trades", _sniff("aggtrades"), _ahead(read_aggtrades)),
    Format("binance-trades", "Binance trades daily CSV (id,price,qty,quote_qty,time,is_buyer_maker[,"
           "is_best_match]) -> trades", _sniff("trades"), _ahead(read_trades)),
    Format("binance-histdepth", "Binance tick-level historical depth CSV (symbol,timestamp,first_update_id,"
           "last_update_id,side,update_type,price,qty,pu) -> book_updates", _sniff("histdepth", False),
           _ahead(read_histdepth)),
    Format("binance-histdepth-snap", "Binance tick-level depth snapshot CSV (..._depth_snap.csv); given with "
           "its _depth_update.csv it is read first, as part of that file", _sniff("histdepth", True),
           read_histdepth_snap, companion_of="binance-histdepth"),
]
