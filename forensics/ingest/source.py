"""Source files: content hash, transparent plain/gzip/zip/zstd reading in bounded line blocks,
and what a venue's standard file name tells (exchange, symbol, date, kind).

Reading never loads a whole file: :meth:`Source.blocks` yields blocks of complete lines
(~``block_bytes`` each), read ahead by a reader thread (bounded queue) so decompression, line
splitting and the content hash overlap the caller's parsing. gzip is decoded by the fastest
zlib-compatible library installed (``isal``, else ``zlib-ng``, else the standard ``zlib``);
if the fast decoder meets damage, the stream is decoded again by the standard library from the
start, so what is kept of a damaged file (and the message) never depends on the library. A truncated or corrupt compressed stream ends the blocks early and is
recorded in :attr:`Source.errors` (with the line where it broke) instead of raising, so every
row read before the damage is kept. A UTF-8 byte-order mark at the start of a file (or zip
member) is removed here, once, so no reader has to know about it.
"""
from __future__ import annotations

import hashlib
import io
import queue
import re
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

#: decompressed bytes per block: large enough that per-block work (a handful of Polars plans,
#: one Parquet part) is negligible, small enough to bound memory (see benchmarks/bench_ingest.py)
BLOCK_BYTES = 8 << 20
#: blocks read ahead by the reader thread (memory bound: (READ_AHEAD + 2) blocks in flight)
READ_AHEAD = 2
BOM = b"\xef\xbb\xbf"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _fast_zlib():
    """The fastest installed zlib-compatible module (``decompressobj(wbits=31)``): ``isal``
    (Intel ISA-L, ~5x stdlib), ``zlib-ng`` (~4x), else the standard library."""
    try:
        from isal import isal_zlib
        return "isal", isal_zlib
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng
        return "zlib-ng", zlib_ng
    except ImportError:
        return "zlib", zlib


GZIP_BACKEND, _ZLIB = _fast_zlib()
#: what a damaged or truncated stream raises, whichever library decodes it
READ_ERRORS = tuple({EOFError, OSError, zlib.error, zipfile.BadZipFile, _ZLIB.error})


def count_lines(block: bytes) -> int:
    """Newlines in ``block`` (numpy: ~2.5x ``bytes.count`` on 8 MB blocks, measured)."""
    import numpy as np  # (not at module level: the CLI's start-up imports this module)

    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))


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


@dataclass(frozen=True)
class NameRule:
    """A venue's file-name convention, declared by its format module (``NAMES``): ``pattern``
    matched against the base name, ``info`` turning the match into :class:`NameInfo`."""

    pattern: re.Pattern
    info: Callable[[re.Match], NameInfo]


def infer_from_name(name: str) -> NameInfo:
    """What a standard file name tells, by the ``NAMES`` rules of the registered formats (first
    match wins, in registry order): ``BTCUSDT-bookDepth-2025-10-10.zip`` -> symbol BTCUSDT, kind
    bookDepth, date; ``binance-futures_incremental_book_L2_2025-10-10_BTCUSDT.csv.gz`` ->
    exchange too; hftbacktest collector ``btcusdt_20251010.gz`` -> symbol BTCUSDT, date."""
    from forensics.ingest import name_rules  # the registry (it imports the format modules)

    base = Path(name).name
    for rule in name_rules():
        m = rule.pattern.match(base)
        if m:
            return rule.info(m)
    return NameInfo()


#: zip members that are documentation or checksums, never data (a venue zip may carry a
#: README or a .CHECKSUM next to the CSV)
_NOT_DATA = re.compile(r"(?i)(^(readme|license|licence|changelog)\b.*|.*\.(md|pdf|html?|xml|png|jpe?g|gif|"
                       r"checksum|sha256|sha1|md5|sig|asc|ini|cfg|yaml|yml|toml|exe|dll))$")


def _data_members(zf: zipfile.ZipFile) -> list[str]:
    """Zip members holding data: not folders, not macOS resource forks (``__MACOSX/``,
    ``._name``) or other hidden files, not documentation/checksum files (:data:`_NOT_DATA`)."""
    out = []
    for n in zf.namelist():
        base = n.rstrip("/").rsplit("/", 1)[-1]
        if n.endswith("/") or n.startswith("__MACOSX/") or base.startswith(".") or _NOT_DATA.match(base):
            continue
        out.append(n)
    return out


def _utf8_lines(block: bytes, first_line: int) -> tuple[bytes, list[tuple[int, str]]]:
    """``block`` with every line that is not valid UTF-8 blanked (line numbers stay right;
    readers skip blank lines) and an error per such line. ASCII blocks (the usual case) are
    returned as they are after one fast check."""
    if block.isascii():
        return block, []
    try:
        block.decode("utf-8")
        return block, []
    except UnicodeDecodeError:
        pass
    lines = block.split(b"\n")
    errors = []
    for i, raw in enumerate(lines):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append((first_line + i, f"invalid UTF-8 byte {raw[exc.start:exc.start + 1]!r} at column "
                                           f"{exc.start + 1}; line rejected"))
            lines[i] = b""
    return b"\n".join(lines), errors


def _is_trailer_error(exc: BaseException) -> bool:
    """A gzip member whose data decompressed but whose CRC/length trailer does not match."""
    return isinstance(exc, zlib.error) and ("incorrect data check" in str(exc) or "incorrect length check" in str(exc))


def _salvage(saved, comp: bytes) -> tuple[bytes, Exception]:
    """Decompress ``comp`` with ``saved`` (a copy of the decompressor from before the failing
    call) a little at a time, keeping the output produced before the error: a bad trailer
    (CRC) fails only once the data is all out, and that data must not be lost."""
    out, step, pos = [], 4096, 0
    while pos < len(comp):
        trial = saved.copy()
        try:
            out.append(trial.decompress(comp[pos:pos + step]))
            saved, pos = trial, pos + step
        except zlib.error as exc:
            if step == 1:
                return b"".join(out), exc
            step = 1  # redo the failing piece byte by byte
    return b"".join(out), zlib.error("corrupt compressed stream")


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
        if magic == ZSTD_MAGIC:  # zstd (e.g. the collector recordings *.jsonl.zst)
            return "zstd"
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
        return re.sub(r"\.(gz|zst)$", "", self.name)

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
                        fh = _CheckedMember(fh, member)
                        # progress of a member: its compressed size times the share decompressed
                        yield _NoBOM(_MemberProgress(fh, self, done, info.compress_size, info.file_size)
                                     if count else fh)
                    done += info.compress_size
        else:
            raw = open(self.path, "rb")
            counter = _Counting(raw, self) if count else raw
            try:
                if comp == "zstd":
                    yield _NoBOM(_ZstdStream(counter))
                    return
                yield _NoBOM(_GunzipStream(counter, self.path) if comp == "gzip" else counter)
            finally:
                raw.close()

    def head(self, n_bytes: int = 64 << 10) -> bytes:
        """The first bytes of the (decompressed) content, for sniffing."""
        try:
            for fh in self._raw_streams():
                return fh.read(n_bytes)
        except READ_ERRORS:
            return b""
        return b""

    def blocks(self, block_bytes: int | None = None, read_ahead: int = READ_AHEAD
               ) -> Iterator[tuple[int, bytes]]:
        """Yield ``(first_line_number, block)``: blocks of whole lines (1-based numbering,
        ~``block_bytes``, default :data:`BLOCK_BYTES`), produced by a reader thread
        ``read_ahead`` blocks ahead (0: in the caller's thread)."""
        it = self._blocks(block_bytes or BLOCK_BYTES)
        return prefetch(it, read_ahead) if read_ahead > 0 else it

    def _blocks(self, block_bytes: int) -> Iterator[tuple[int, bytes]]:
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
                    cut = buf.rfind(b"\n")
                    if cut < 0:
                        carry += buf
                        continue
                    # one copy at most (8 MB blocks: the copies showed in the reader's CPU)
                    if cut + 1 == len(buf):
                        block = carry + buf if carry else buf
                    else:
                        block = b"".join((carry, memoryview(buf)[: cut + 1]))
                    carry = buf[cut + 1:]
                    block, bad = _utf8_lines(block, line_no)
                    self.errors.extend(bad)
                    yield line_no, block
                    line_no += count_lines(block)
                if carry:
                    block, bad = _utf8_lines(carry + b"\n", line_no)
                    self.errors.extend(bad)
                    yield line_no, block
                    line_no += 1
                    carry = b""
            self.content_sha256 = content.hexdigest()
        except READ_ERRORS as exc:
            what = "truncated" if isinstance(exc, EOFError) else "corrupt"
            if _is_trailer_error(exc) or (isinstance(exc, zipfile.BadZipFile) and "CRC" in str(exc)):
                # every byte was decompressed, only the trailer is wrong: the last line is whole
                if carry:
                    block, bad = _utf8_lines(carry + b"\n", line_no)
                    self.errors.extend(bad)
                    yield line_no, block
                    line_no += 1
                self.errors.append((line_no, f"checksum of the compressed data does not match ({exc}); "
                                             f"all {line_no - 1} decompressed lines were kept, they may be damaged"))
            elif carry:
                # the stream broke inside this line: what was decoded of it is a cut record (a CSV
                # price cut from 123.45 to 123.4 would still parse), so it is dropped, not parsed
                self.errors.append((line_no, f"{what} compressed stream inside line {line_no} (its {len(carry):,} "
                                             f"decoded bytes dropped), rows from line {line_no} lost ({exc})"))
            else:
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
    or corruption, then raises ``EOFError``/``zlib.error`` on the following read.

    Decodes with the fast library (:data:`GZIP_BACKEND`); on damage it decodes the file again
    with the standard ``zlib`` from the start, skipping the bytes already returned, so the
    bytes kept and the error reported are exactly the standard library's."""

    def __init__(self, raw, path: Path | None = None, piece: int = 1 << 20, lib=None):
        self.raw, self.path, self.piece = raw, path, piece
        self.lib = lib or (_ZLIB if path is not None else zlib)
        self.d = self.lib.decompressobj(wbits=31)
        self.pending = b""
        self.failed: Exception | None = None
        self.done = False
        self.returned = 0  # bytes handed to the caller

    def _feed(self, comp: bytes) -> bytes:
        """Decode a piece (next gzip members included). The standard ``zlib`` salvages the
        bytes before damage (:func:`_gunzip_feed`); a fast library just fails, and
        :meth:`read` then hands over to the standard library (:meth:`_standard`)."""
        if self.lib is zlib:
            return _gunzip_feed(self, comp)
        try:
            data = self.d.decompress(comp)
            while self.d.eof and self.d.unused_data:  # next gzip member
                rest = self.d.unused_data
                self.d = self.lib.decompressobj(wbits=31)
                data += self.d.decompress(rest)
        except self.lib.error as exc:
            raise _Partial(b"", exc) from None
        return data

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
                data = self._feed(comp)
            except _Partial as part:  # the standard library: everything before the damage kept
                out.append(part.data)
                size += len(part.data)
                self.done, self.failed = True, part.error
                break
            out.append(data)
            size += len(data)
        buf = b"".join(out)
        if self.failed is not None and self.lib is not zlib:
            return self._standard(buf, n)
        if size > n:
            buf, self.pending = buf[:n], buf[n:]
        self.returned += len(buf)
        if not buf and self.failed is not None:
            exc, self.failed = self.failed, None
            raise exc
        return buf

    def _standard(self, buf: bytes, n: int) -> bytes:
        """Damage met by the fast library: continue as the standard library decodes the file
        (rare, so decoding it again from the start is affordable)."""
        std = _GunzipStream(_Skip(open(self.path, "rb")), None, self.piece, zlib)
        skip = self.returned
        while skip:
            got = std.read(min(skip, 8 << 20))
            if not got:  # the standard library kept less than was returned (never seen)
                break
            skip -= len(got)
        self.__dict__.update(std.__dict__)
        self.path = None
        return self.read(n)


class _Skip(io.RawIOBase):
    """A plain file read for :meth:`_GunzipStream._standard` (closes itself at its end)."""

    def __init__(self, fh):
        self.fh = fh

    def read(self, n=-1):
        data = self.fh.read(n)
        if not data:
            self.fh.close()
        return data


class _Partial(Exception):
    """Decompression failed after producing ``data`` (kept) with ``error``."""

    def __init__(self, data: bytes, error: Exception):
        super().__init__(str(error))
        self.data, self.error = data, error


def _gunzip_feed(stream: "_GunzipStream", comp: bytes) -> bytes:
    """Feed compressed bytes through the stream's decompressor (next gzip members included);
    on damage raise :class:`_Partial` with everything decoded before it."""
    parts = []
    while True:
        saved = stream.d.copy()
        try:
            parts.append(stream.d.decompress(comp))
        except zlib.error:
            tail, exc = _salvage(saved, comp)
            parts.append(tail)
            raise _Partial(b"".join(parts), exc) from None
        if stream.d.eof and stream.d.unused_data:  # next gzip member
            comp = stream.d.unused_data
            stream.d = zlib.decompressobj(wbits=31)
            continue
        return b"".join(parts)



class _CheckedMember:
    """A zip member whose CRC is checked after its data has been handed out: zipfile raises
    on a bad CRC in the same read that returns the member's last bytes (up to a whole block
    of valid lines); here they are returned first and the error comes on the next read."""

    def __init__(self, fh, name: str):
        self.fh, self.name = fh, name
        self.expected = getattr(fh, "_expected_crc", None)
        if self.expected is not None:
            fh._expected_crc = None  # checked below instead
        self.crc = 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        if self.expected is None:
            return data
        if data:
            self.crc = zlib.crc32(data, self.crc)
            return data
        if self.crc != self.expected:
            self.expected = None
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {self.name!r}")
        return data


class _ZstdStream:
    """Streaming zstd (multi-frame) via the ``zstandard`` package; like :class:`_GunzipStream`
    every byte decoded before a truncation or corruption is kept, then ``EOFError`` /
    ``zlib.error`` (the error types :meth:`Source.blocks` records) are raised."""

    def __init__(self, raw, piece: int = 1 << 20):
        import zstandard  # imported here: only zstd inputs need it

        self.raw, self.piece, self._z = raw, piece, zstandard
        self.d = zstandard.ZstdDecompressor().decompressobj()
        self.pending = b""
        self.done = False
        self.failed: Exception | None = None
        self.in_frame = False

    def read(self, n: int) -> bytes:
        out, size = [self.pending], len(self.pending)
        self.pending = b""
        while size < n and not self.done:
            comp = self.raw.read(self.piece)
            if not comp:
                self.done = True
                if self.in_frame:
                    self.failed = EOFError("compressed file ended before the end of the zstd frame")
                break
            try:
                data = self._feed(comp)
            except self._z.ZstdError as exc:
                self.done, self.failed = True, zlib.error(f"zstd: {exc}")
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

    def _feed(self, comp: bytes) -> bytes:
        parts = []
        while comp:
            self.in_frame = True
            parts.append(self.d.decompress(comp))
            if self.d.eof:  # frame finished: the rest (if any) is the next frame
                comp = self.d.unused_data
                self.d = self._z.ZstdDecompressor().decompressobj()
                self.in_frame = False
            else:
                comp = b""
        return b"".join(parts)


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


def _put(q: "queue.Queue", item, halt: threading.Event) -> bool:
    """Put ``item`` on a bounded queue, giving up when ``halt`` is set (the consumer left);
    True when it was put."""
    while not halt.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def prefetch(it: Iterator, depth: int = READ_AHEAD, name: str = "forensics-reader") -> Iterator:
    """Run an iterator in a reader thread, at most ``depth`` items ahead (a bounded queue).
    Decompression, hashing and Polars release the GIL, so the producer and the consumer use
    both cores. An exception in the producer is raised in the consumer after the items before
    it; a consumer that stops early stops (and closes) the producer."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = object()
    err: list[BaseException] = []
    halt = threading.Event()

    def work():
        try:
            for item in it:
                if not _put(q, item, halt):
                    break
        except BaseException as exc:  # handed to the consumer
            err.append(exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
            _put(q, stop, halt)

    t = threading.Thread(target=work, name=name, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is stop:
                break
            yield item
    finally:
        halt.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)
    if err:
        raise err[0]
