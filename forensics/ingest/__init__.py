"""Ingest: exchange dumps -> the store. One module per venue/format; this module holds the
registry (content sniffing) and :func:`ingest`, the function behind ``forensics ingest``.

A format module exposes ``FORMATS``: a list of :class:`Format` with a ``sniff`` that looks at
the first decompressed bytes and the file name, and a ``read`` generator of
:class:`~forensics.ingest.normalise.Chunk`; and optionally ``NAMES``: its file-name conventions
(:class:`~forensics.ingest.source.NameRule`), read by :func:`infer_from_name`. Frames must fit
the reader contract (:mod:`forensics.ingest.contract`), gaps come from
:mod:`forensics.ingest.seqchain`. Readers parse; validation, exact units, ``seq``,
partitioning and atomic commit are done once by :class:`~forensics.ingest.normalise.Writer`.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from forensics.errors import ForensicsError
from forensics.ingest.normalise import Chunk, Format, IngestResult, ReadOptions, Reject, Writer
from forensics.ingest.source import NameInfo, NameRule, Source, infer_from_name, sha256_file  # noqa: F401
from forensics.store import Store, name_problem, os_reason


def file_error(src: Source, exc: BaseException) -> ForensicsError:
    """One file's failure as a one-line :class:`ForensicsError` naming the file. An OS error
    writing the store (read-only, full) is marked ``fatal``: the other files cannot land either."""
    if isinstance(exc, ForensicsError):
        return exc
    if isinstance(exc, OSError):
        import errno
        err = ForensicsError(f"{src.path}: {os_reason(exc)}")
        err.fatal = exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT)
        return err
    return ForensicsError(f"{src.path}: unexpected {type(exc).__name__} while reading: "
                          + " ".join(str(exc).split())[:300])

#: modules that register formats, in sniffing priority order
FORMAT_MODULES = ("forensics.ingest.lobster", "forensics.ingest.tardis", "forensics.ingest.binance_capture",
                  "forensics.ingest.binance_files")
#: websocket-capture venues (issue 14), sniffed before the Binance capture reader
VENUE_MODULES = ("forensics.ingest.bybit", "forensics.ingest.okx", "forensics.ingest.coinbase",
                 "forensics.ingest.hyperliquid", "forensics.ingest.kraken")


def _modules() -> list:
    """The registered format modules, in sniffing priority order."""
    out = []
    for mod in FORMAT_MODULES[:1] + VENUE_MODULES + FORMAT_MODULES[1:]:
        try:
            out.append(importlib.import_module(mod))
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                continue
            raise
    return out


def formats() -> dict[str, Format]:
    """All registered formats by name (import order = sniffing priority)."""
    out: dict[str, Format] = {}
    for m in _modules():
        for f in m.FORMATS:
            out[f.name] = f
    return out


_NAME_RULES: list[NameRule] | None = None


def name_rules() -> list[NameRule]:
    """The file-name conventions the format modules declare (``NAMES``), in registry order."""
    global _NAME_RULES
    if _NAME_RULES is None:
        _NAME_RULES = [r for m in _modules() for r in getattr(m, "NAMES", ())]
    return _NAME_RULES


def sniff(source: Source) -> Format:
    """The format of a source, judged by content (and file name where content is ambiguous)."""
    head = source.head()
    info = source.name_info()
    if not head.strip():
        raise ForensicsError(f"{source.path}: empty or unreadable file")
    for f in formats().values():
        if f.sniff(head, info):
            return f
    first = head.split(b"\n", 1)[0][:120].decode("utf-8", "replace")
    raise ForensicsError(
        f"{source.path}: unknown format (first line: {first!r}); give --format, one of: "
        + ", ".join(formats()))


ProgressFn = Callable[[Source, int], None]


class IngestError(ForensicsError):
    """One or more files could not be ingested. Every file was still tried: ``results`` has
    one :class:`IngestResult` per file in order (failed ones with ``error`` set), ``errors``
    the exceptions of the failed ones."""

    def __init__(self, message: str, results: list[IngestResult], errors: list[ForensicsError]):
        super().__init__(message)
        self.results, self.errors = results, errors


def ingest(paths: list[str | Path], store: Store | str | None = None, format: str | None = None,
           exchange: str | None = None, symbol: str | None = None, force: bool = False,
           strict: bool = False, progress: ProgressFn | None = None) -> list[IngestResult]:
    """Ingest files into the store; returns one :class:`IngestResult` per file.

    Idempotent: a file whose content hash is in the manifest is skipped (``skipped=True``)
    unless ``force``, which first removes that file's earlier rows. Bad rows are rejected with
    file and line and written to ``<store>/rejects/``; valid rows are kept. ``strict`` turns
    any rejected row into an error and writes nothing for that file. A file that cannot be
    read (unknown format, empty, no usable rows, ``strict`` failure) does not stop the others:
    every file is tried, then :class:`IngestError` (a :class:`ForensicsError` with the first
    failure's message, or a count and the list) is raised if any failed.
    """
    store = store if isinstance(store, Store) else Store(store)
    for what, value in (("--exchange", exchange), ("--symbol", symbol)):
        if value is not None and name_problem(value) is not None:
            raise ForensicsError(f"{what} {value[:40]!r}: invalid name: {name_problem(value)}")
    fmts = formats()
    if format is not None and format not in fmts:
        raise ForensicsError(f"unknown --format {format!r}; one of: {', '.join(fmts)}")
    sources = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise ForensicsError(f"{p}: no such file")
        if p.is_dir():
            sources.extend(Source(q) for q in sorted(p.rglob("*")) if q.is_file() and not q.name.startswith("."))
        else:
            sources.append(Source(p))
    outcome: dict[int, IngestResult] = {}
    errors: list[ForensicsError] = []
    typed = []
    for i, s in enumerate(sources):
        try:
            typed.append((i, s, fmts[format] if format else sniff(s)))
        except Exception as exc:  # noqa: BLE001 - one file's failure never stops the others
            exc = file_error(s, exc)
            outcome[i] = IngestResult(str(s.path), "", format or "?", error=str(exc))
            errors.append(exc)
    # companions (e.g. REST snapshots) go to the files of the format that consumes them
    main = [(i, s, f) for i, s, f in typed
            if not (f.companion_of and any(g.name == f.companion_of for _, _, g in typed))]
    with store.lock():
        try:
            store.recover()
        except OSError as exc:
            raise ForensicsError(f"cannot write to the store {store.root}: {os_reason(exc)}") from None
        contents = store.content_index()
        for i, src, fmt in main:
            comps = [s for _, s, f in typed if f.companion_of == fmt.name]
            try:
                outcome[i] = _ingest_one(store, src, fmt, ReadOptions(exchange, symbol, src.name_info(), comps),
                                         force, strict, progress, contents)
            except Exception as exc:  # noqa: BLE001 - one file's failure never stops the others
                exc = file_error(src, exc)
                outcome[i] = IngestResult(str(src.path), src.sha256, fmt.name, error=str(exc))
                errors.append(exc)
                if getattr(exc, "fatal", False):  # the store itself cannot be written: stop
                    break
    for i, src, fmt in main:  # not tried after a fatal store error
        if i not in outcome:
            outcome[i] = IngestResult(str(src.path), "", fmt.name, error=f"{src.path}: not ingested ({errors[-1]})")
    results = [outcome[i] for i in sorted(outcome)]
    if errors:
        msg = str(errors[0]) if len(errors) == 1 else (
            f"{len(errors)} of {len(results)} files failed: " + "; ".join(str(e) for e in errors))
        raise IngestError(msg, results, errors) from errors[0]
    return results


def _strict_refuse(src: Source, reject: Reject | None) -> None:
    """--strict: raise for the first problem in file order. The source's own errors (undecodable
    lines, a broken stream) are found by its reader thread ahead of the chunks, so one of them
    counts here only when it lies before ``reject``: every such one is already recorded when the
    chunk holding ``reject`` arrives, whatever the threads' timing (those after it may not be)."""
    errors = [Reject(*e) for e in src.errors]
    cands = [r for r in errors if reject is None or r.line < reject.line] + ([reject] if reject else [])
    first = min(cands, key=lambda r: r.line)
    raise ForensicsError(f"{src.path}:{first.line}: {first.reason} (--strict: nothing written)")


def _ingest_one(store: Store, src: Source, fmt: Format, opts: ReadOptions, force: bool, strict: bool,
                progress: ProgressFn | None, contents: dict[str, dict]) -> IngestResult:
    # identity: the file's own bytes (a companion snapshot given with it is recorded, not hashed
    # in: the same capture with or without its snapshot is one source, replaced by --force)
    sha = sha256_file(src.path)
    src.sha256 = sha
    companions = ",".join(c.name for c in opts.companions) or None
    row = store.manifest_row(sha)
    if row is not None:
        if not force:
            return IngestResult(str(src.path), sha, fmt.name, skipped=True, same_as=row.get("name"),
                                companions_before=row.get("companions"), companions=companions)
        store.remove_source(sha)
    writer = Writer(store, src.path, sha, fmt.name, companions, exchange=opts.exchange, symbol=opts.symbol)
    try:
        for chunk in fmt.read(src, opts):
            if strict and chunk.rejects:
                _strict_refuse(src, chunk.rejects[0])
            writer.add(chunk)
            if strict and writer.rejects:
                _strict_refuse(src, writer.rejects[0])
            if progress:
                progress(src, src.bytes_read)
        if strict and src.errors:
            _strict_refuse(src, None)
        # the same data under another name or container (.gz vs plain vs .zip): the hash of the
        # decompressed content, known once the file has been read through
        same = contents.get(src.content_sha256) if src.content_sha256 else None
        if same is not None and same["sha256"] != sha:
            if not force:
                writer.abort()
                return IngestResult(str(src.path), sha, fmt.name, skipped=True, same_as=same["name"],
                                    same_content=True, companions_before=same.get("companions"),
                                    companions=companions)
            store.remove_source(same["sha256"])
        if not writer.staged and not writer.gap_rows:
            reasons = "; ".join(f"line {r.line}: {r.reason}" for r in (writer.rejects + [Reject(*e) for e in src.errors])[:3])
            raise ForensicsError(f"{src.path}: no usable rows ({fmt.name})" + (f": {reasons}" if reasons else ""))
        result = writer.commit(src.errors, src.content_sha256)
        if src.content_sha256:
            contents[src.content_sha256] = {"sha256": sha, "name": src.name, "companions": companions}
        return result
    except BaseException:
        writer.rollback()  # nothing of a failed file stays, not even parts its commit had moved
        raise


__all__ = ["ingest", "IngestError", "sniff", "formats", "Format", "ReadOptions", "Chunk", "Reject", "IngestResult"]
