"""Source files: content hash, transparent plain/gzip/zip reading in bounded line blocks,
and what a venue's standard file name tells (exchange, symbol, date, kind).

Reading never loads a whole file: :meth:`Source.blocks` yields blocks of complete lines
(~``block_bytes`` each). A truncated or corrupt compressed stream ends the blocks early and is
recorded in :attr:`Source.errors` (with the line where it broke) instead of raising, so every
row read before the damage is kept. A UTF-8 byte-order mark at the start of a file (or zip
member) is removed here, once, so no reader has to know about it.
"""
from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

BLOCK_BYTES = 8 << 20
BOM = b"\xef\xbb\xbf"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for buf in iter(lambda: fh.read(1 << 22), b""):
            h.update(buf)
    return h.hexdigest()


@dataclass
class NameInfo:
    """Facts read off a standard file name (any may be None)."""

    exchange: str | None = None
    symbol: str | None = None
    date: str | None = None
    kind: str | None = None  # bookDepth, aggTrades, trades, incremental_book_L2, depth, ...
    container: str | None = None  # 'zip' / 'gzip' when the data sits in one (None: plain file)


_TARDIS = re.compile(
    r"^(?P<exchange>[a-z0-9-]+)_(?P<kind>incremental_book_L2|trades|quotes|book_snapshot_\d+|derivative_ticker)"
    r"_(?P<date>\d{4}-\d{2}-\d{2})_(?P<symbol>[^.]+)")
_BINANCE_DAILY = re.compile(
    r"^(?P<symbol>[A-Z0-9_]+)-(?P<kind>bookDepth|aggTrades|trades|bookTicker|depth|depthUpdate|"
    r"depth-capture|depth-snapshot|snapshot)-(?P<date>\d{4}-\d{2}(?:-\d{2})?)")
_COLLECTOR = re.compile(r"^(?P<symbol>[a-z0-9_]+)_(?P<date>\d{8})", re.I)
# Binance tick-level historical depth download: BTCUSDT_T_DEPTH_2022-11-01_depth_snap.csv / _depth_update.csv
# LOBSTER: AAPL_2012-06-21_34200000_57600000_message_5.csv / ..._orderbook_5.csv (and the sample zips)
_LOBSTER = re.compile(r"^(?:(?P<symbol>[A-Za-z0-9.^-]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_(?P<kind>message|orderbook)"
                      r"_\d+\.csv|LOBSTER_SampleFile_(?P<zsym>[A-Za-z0-9.^-]+)_(?P<zdate>\d{4}-\d{2}-\d{2})_\d+\.zip)")
_BINANCE_TDEPTH = re.compile(
    r"^(?P<symbol>[A-Z0-9_]+?)_T_DEPTH_(?P<date>\d{4}-\d{2}-\d{2})_(?P<kind>depth_snap|depth_update)")


def infer_from_name(name: str) -> NameInfo:
    """``BTCUSDT-bookDepth-2025-10-10.zip`` -> symbol BTCUSDT, kind bookDepth, date;
    ``binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz`` -> exchange too;
    hftbacktest collector ``btcusdt_20251010.gz`` -> symbol BTCUSDT, date."""
    base = Path(name).name
    m = _LOBSTER.match(base)
    if m:
        return NameInfo("lobster", m["symbol"] or m["zsym"], m["date"] or m["zdate"], f"lobster-{m['kind'] or 'zip'}")
    m = _TARDIS.match(base)
    if m:
        return NameInfo(m["exchange"], m["symbol"], m["date"], m["kind"])
    m = _BINANCE_TDEPTH.match(base)
    if m:
        return NameInfo(None, m["symbol"], m["date"], m["kind"])
    m = _BINANCE_DAILY.match(base)
    if m:
        return NameInfo(None, m["symbol"], m["date"], m["kind"])
    m = _COLLECTOR.match(base)
    if m:
        d = m["date"]
        return NameInfo(None, m["symbol"].upper(), f"{d[:4]}-{d[4:6]}-{d[6:]}", None)
    return NameInfo()


def _data_members(zf: zipfile.ZipFile) -> list[str]:
    """Zip members holding data: not folders, not macOS resource forks (``__MACOSX/``,
    ``._name``) or other hidden files."""
    out = []
    for n in zf.namelist():
        base = n.rstrip("/").rsplit("/", 1)[-1]
        if n.endswith("/") or n.startswith("__MACOSX/") or base.startswith("."):
            continue
        out.append(n)
    return out


@dataclass
class Source:
    """One input file. ``members`` are the zip members read (in order) for a zip file."""

    path: Path
    sha256: str = ""
    size: int = 0
    errors: list[tuple[int | None, str]] = field(default_factory=list)
    bytes_read: int = 0  # compressed bytes consumed so far (for progress)
    #: SHA-256 of the decompressed content (BOM excluded), set by a complete :meth:`blocks` pass
    content_sha256: str | None = None

    def __post_init__(self):
        self.path = Path(self.path)
        self.size = self.path.stat().st_size

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def compression(self) -> str:
        with open(self.path, "rb") as fh:
            magic = fh.read(4)
        if magic[:2] == b"\x1f\x8b":
            return "gzip"
        if magic in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip (the second: an empty one)
            return "zip"
        return "none"

    def inner_name(self) -> str:
        """The name of the data inside (zip member or name without .gz)."""
        if self.compression == "zip":
            try:
                with zipfile.ZipFile(self.path) as zf:
                    names = _data_members(zf)
            except (OSError, zipfile.BadZipFile):
                return self.name
            return names[0] if names else self.name
        return re.sub(r"\.gz$", "", self.name)

    def name_info(self) -> NameInfo:
        """What the file names tell: the data's own name (zip member, name without .gz) first,
        the outer file name for whatever that one leaves open (``BTCUSDT-trades-2025-10-10.zip``
        holding ``data.csv``)."""
        inner = infer_from_name(self.inner_name())
        outer = infer_from_name(self.name)
        comp = self.compression
        return NameInfo(*(a if a is not None else b for a, b in
                          zip((inner.exchange, inner.symbol, inner.date, inner.kind),
                              (outer.exchange, outer.symbol, outer.date, outer.kind))),
                        container=None if comp == "none" else comp)

    def _raw_streams(self, count: bool = False) -> Iterator[io.BufferedIOBase]:
        """The decompressed data stream(s); with ``count`` the bytes of the file they consume
        are kept in :attr:`bytes_read` (progress of a :meth:`blocks` pass)."""
        comp = self.compression
        if comp == "zip":
            with zipfile.ZipFile(self.path) as zf:
                done = 0
                for member in _data_members(zf):
                    info = zf.getinfo(member)
                    with zf.open(member) as fh:
                        # progress of a member: its compressed size times the share decompressed
                        yield _NoBOM(_MemberProgress(fh, self, done, info.compress_size, info.file_size)
                                     if count else fh)
                    done += info.compress_size
        else:
            raw = open(self.path, "rb")
            counter = _Counting(raw, self) if count else raw
            try:
                yield _NoBOM(_GunzipStream(counter) if comp == "gzip" else counter)
            finally:
                raw.close()

    def head(self, n_bytes: int = 64 << 10) -> bytes:
        """The first bytes of the (decompressed) content, for sniffing."""
        try:
            for fh in self._raw_streams():
                return fh.read(n_bytes)
        except (EOFError, OSError, zlib.error, zipfile.BadZipFile):
            return b""
        return b""

    def blocks(self, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
        """Yield ``(first_line_number, block)``: blocks of whole lines (1-based numbering)."""
        line_no = 1
        carry = b""
        self.bytes_read = 0
        content = hashlib.sha256()
        try:
            for fh in self._raw_streams(count=True):
                while True:
                    buf = fh.read(block_bytes)
                    if not buf:
                        break
                    content.update(buf)
                    buf = carry + buf
                    cut = buf.rfind(b"\n")
                    if cut < 0:
                        carry = buf
                        continue
                    block, carry = buf[: cut + 1], buf[cut + 1:]
                    yield line_no, block
                    line_no += block.count(b"\n")
                if carry:
                    yield line_no, carry + b"\n"
                    line_no += 1
                    carry = b""
            self.content_sha256 = content.hexdigest()
        except (EOFError, OSError, zlib.error, zipfile.BadZipFile) as exc:
            what = "truncated" if isinstance(exc, EOFError) else "corrupt"
            # the partial last line (if any) is kept: the reader rejects it if malformed
            if carry:
                yield line_no, carry + b"\n"
            self.errors.append((line_no, f"{what} compressed stream, rows after line {line_no - 1} lost ({exc})"))


class _NoBOM:
    """A byte stream without its leading UTF-8 byte-order mark (if any)."""

    def __init__(self, raw):
        self.raw = raw
        self.first = True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if not self.first:
            return data
        self.first = False
        while data and len(data) < len(BOM) and BOM.startswith(data):  # a BOM split over reads
            more = self.raw.read(len(BOM) - len(data))
            if not more:
                break
            data += more
        if data.startswith(BOM):
            data = data[len(BOM):]
            if not data:  # the first read was just the mark: the caller must not see an EOF
                return self.read(n)
        return data


class _GunzipStream:
    """Streaming gunzip (multi-member) that keeps every byte decoded before a truncation
    or corruption, then raises ``EOFError``/``zlib.error`` on the following read."""

    def __init__(self, raw, piece: int = 1 << 20):
        self.raw, self.piece = raw, piece
        self.d = zlib.decompressobj(wbits=31)
        self.pending = b""
        self.failed: Exception | None = None
        self.done = False

    def read(self, n: int) -> bytes:
        out = [self.pending]
        size = len(self.pending)
        self.pending = b""
        while size < n and not self.done:
            comp = self.raw.read(self.piece)
            if not comp:
                self.done = True
                if not self.d.eof:
                    self.failed = EOFError("compressed file ended before the end-of-stream marker")
                break
            try:
                data = self.d.decompress(comp)
                while self.d.eof and self.d.unused_data:  # next gzip member
                    rest = self.d.unused_data
                    self.d = zlib.decompressobj(wbits=31)
                    data += self.d.decompress(rest)
            except zlib.error as exc:
                self.done, self.failed = True, exc
                break
            out.append(data)
            size += len(data)
        buf = b"".join(out)
        if size > n:
            buf, self.pending = buf[:n], buf[n:]
        if not buf and self.failed is not None:
            exc, self.failed = self.failed, None
            raise exc
        return buf


class _MemberProgress:
    """Progress through a zip member, as bytes of the zip file (estimated from the share of
    the member decompressed so far)."""

    def __init__(self, fh, source: Source, start: int, compressed: int, size: int):
        self.fh, self.source, self.start = fh, source, start
        self.compressed, self.size, self.read_bytes = compressed, max(size, 1), 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.read_bytes += len(data)
        self.source.bytes_read = self.start + min(self.compressed, self.compressed * self.read_bytes // self.size)
        return data


class _Counting(io.RawIOBase):
    """Counts bytes read from the underlying file (progress over compressed size)."""

    def __init__(self, raw, source: Source):
        self.raw, self.source = raw, source

    def readable(self):
        return True

    def readinto(self, b):
        n = self.raw.readinto(b)
        self.source.bytes_read += n or 0
        return n

    def read(self, n=-1):
        data = self.raw.read(n)
        self.source.bytes_read += len(data)
        return data
