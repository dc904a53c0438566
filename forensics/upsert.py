"""Upserts into derived tables with the work done outside the store's writer lock.

A derived table (``depth``, ``book_top``, ``events``, ...) is recomputed for a time window and
written back: the rows of the touched date partitions outside the window are kept, those
inside replaced, and each touched date becomes one part. Done naively that is a
read-modify-write held under the writer lock from the first read to the last byte written,
so partition-parallel tasks (:mod:`forensics.parallel`) queue on the lock while one of them
compresses Parquet.

:func:`upsert` is optimistic instead: it reads the current parts, merges and encodes the new
parts with no lock held, then takes the lock only to check that the parts it read are still
the parts there (same names, same versions: :meth:`Location.version`, a file's inode/size/mtime
or an object's ETag, taken before its bytes were read) and publish. If another
writer changed them in between, the merge is redone under the lock, so a concurrent write
is never lost: the manifest-free equivalent of a compare-and-swap commit.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import polars as pl

from forensics.store import Store

Merge = Callable[[list[pl.DataFrame]], pl.DataFrame | None]
"""Merge the parts read (possibly none) with the new rows; None = nothing to write."""


def _read(store: Store, table: str, ex: str, sy: str, lo: int | None, hi: int | None
          ) -> tuple[dict[str, str], list[pl.DataFrame]]:
    """The touched parts: {name: its version} and their frames. The version is taken before the
    bytes are read, so a rewrite in between shows as a changed version at the check."""
    seen, frames = {}, []
    for rel in store.part_rels(table, ex, sy, lo, hi):
        seen[rel] = store.location.version(rel)
        frames.append(pl.read_parquet(io.BytesIO(store.location.read_bytes(rel))))
    return seen, frames


def _unchanged(store: Store, table: str, ex: str, sy: str, lo: int | None, hi: int | None,
               seen: dict[str, str]) -> bool:
    rels = store.part_rels(table, ex, sy, lo, hi)
    if set(rels) != set(seen):
        return False
    return all(store.location.version(r) == seen[r] for r in rels)


def upsert(store: Store, table: str, ex: str, sy: str, lo: int | None, hi: int | None, merge: Merge,
           ts_column: str = "ts", name: str | None = None) -> list[Path]:
    """Replace ``table``'s rows of one instrument in the dates ``[lo, hi]`` touches (None: all
    dates) with ``merge(old_parts)``, written as one part ``<name>.parquet`` per date. Every part
    read is replaced: by the new part of its date, or removed when ``merge`` left no row in its
    date (all its rows were inside the window). Parquet encoding runs outside the writer lock;
    the lock is held for a check of the parts read and the publication."""
    name = name or table
    seen, frames = _read(store, table, ex, sy, lo, hi)
    df = merge(frames)
    staged = store.stage_partitioned(table, df, ex, sy, name, ts_column) if df is not None else []
    with store.lock():
        if not _unchanged(store, table, ex, sy, lo, hi, seen):  # a concurrent writer: merge again
            seen, frames = _read(store, table, ex, sy, lo, hi)
            df = merge(frames)
            staged = store.stage_partitioned(table, df, ex, sy, name, ts_column) if df is not None else []
        paths = store.publish_staged(staged, replace_dates=True)
        written_dirs = {rel.rsplit("/", 1)[0] for rel, _ in staged}
        for rel in seen:
            if rel.rsplit("/", 1)[0] not in written_dirs:
                store.location.delete(rel)
        return paths
