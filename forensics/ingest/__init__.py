"""Ingest: exchange dumps -> the store. One module per venue/format; this module holds the
registry (content sniffing) and :func:`ingest`, the function behind ``forensics ingest``.

A format module exposes ``FORMATS``: a list of :class:`Format` with a ``sniff`` that looks at
the first decompressed bytes and the file name, and a ``read`` generator of
:class:`~forensics.ingest.normalise.Chunk`. Readers parse; validation, exact units, ``seq``,
partitioning and atomic commit are done once by :class:`~forensics.ingest.normalise.Writer`.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from forensics.errors import ForensicsError
from forensics.ingest.normalise import Chunk, Format, IngestResult, ReadOptions, Reject, Writer
from forensics.ingest.source import NameInfo, Source, infer_from_name, sha256_file
from forensics.store import Store

#: modules that register formats, in sniffing priority order
FORMAT_MODULES = ("forensics.ingest.tardis", "forensics.ingest.binance_capture",
                  "forensics.ingest.binance_files")


def formats() -> dict[str, Format]:
    """All registered formats by name (import order = sniffing priority)."""
    out: dict[str, Format] = {}
    for mod in FORMAT_MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                continue
            raise
        for f in m.FORMATS:
            out[f.name] = f
    return out


def sniff(source: Source) -> Format:
    """The format of a source, judged by content (and file name where content is ambiguous)."""
    head = source.head()
    info = infer_from_name(source.inner_name())
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


def ingest(paths: list[str | Path], store: Store | str | None = None, format: str | None = None,
           exchange: str | None = None, symbol: str | None = None, force: bool = False,
           strict: bool = False, progress: ProgressFn | None = None) -> list[IngestResult]:
    """Ingest files into the store; returns one :class:`IngestResult` per file.

    Idempotent: a file whose content hash is in the manifest is skipped (``skipped=True``)
    unless ``force``, which first removes that file's earlier rows. Bad rows are rejected with
    file and line and written to ``<store>/rejects/``; valid rows are kept. ``strict`` turns
    any rejected row into an error and writes nothing for that file. Raises
    :class:`ForensicsError` if a file yields no usable rows.
    """
    store = store if isinstance(store, Store) else Store(store)
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
    typed = [(s, fmts[format] if format else sniff(s)) for s in sources]
    # companions (e.g. REST snapshots) go to the files of the format that consumes them
    main = [(s, f) for s, f in typed if not (f.companion_of and any(g.name == f.companion_of for _, g in typed))]
    results = []
    with store.lock():
        store.recover()
        for src, fmt in main:
            comps = [s for s, f in typed if f.companion_of == fmt.name]
            results.append(_ingest_one(store, src, fmt, ReadOptions(exchange, symbol, infer_from_name(
                src.inner_name()), comps), force, strict, progress))
    return results


def _ingest_one(store: Store, src: Source, fmt: Format, opts: ReadOptions, force: bool, strict: bool,
                progress: ProgressFn | None) -> IngestResult:
    sha = sha256_file(src.path)
    for c in opts.companions:
        sha = _combine(sha, sha256_file(c.path))
    src.sha256 = sha
    if store.manifest_row(sha) is not None:
        if not force:
            return IngestResult(str(src.path), sha, fmt.name, skipped=True)
        store.remove_source(sha)
    writer = Writer(store, src.path, sha, fmt.name)
    try:
        for chunk in fmt.read(src, opts):
            if strict and (chunk.rejects or src.errors):
                first = (chunk.rejects or [Reject(*src.errors[0])])[0]
                raise ForensicsError(f"{src.path}:{first.line}: {first.reason} (--strict: nothing written)")
            writer.add(chunk)
            if strict and writer.rejects:
                r = writer.rejects[0]
                raise ForensicsError(f"{src.path}:{r.line}: {r.reason} (--strict: nothing written)")
            if progress:
                progress(src, src.bytes_read)
        if strict and src.errors:
            line, msg = src.errors[0]
            raise ForensicsError(f"{src.path}:{line}: {msg} (--strict: nothing written)")
        if not writer.staged and not writer.gap_rows:
            reasons = "; ".join(f"line {r.line}: {r.reason}" for r in (writer.rejects + [Reject(*e) for e in src.errors])[:3])
            raise ForensicsError(f"{src.path}: no usable rows ({fmt.name})" + (f": {reasons}" if reasons else ""))
        return writer.commit(src.errors)
    except BaseException:
        writer.abort()
        raise


def _combine(a: str, b: str) -> str:
    import hashlib
    return hashlib.sha256((a + b).encode()).hexdigest()


__all__ = ["ingest", "sniff", "formats", "Format", "ReadOptions", "Chunk", "Reject", "IngestResult"]
