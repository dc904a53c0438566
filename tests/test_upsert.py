"""Optimistic upserts into derived tables (forensics.upsert): encode outside the writer lock,
commit only if the parts read are unchanged, otherwise merge again under the lock."""
import polars as pl

from forensics.store import Store
from forensics.upsert import upsert

DAY = 86_400 * 10**9
T0 = 20_000 * DAY  # 2024-10-04 00:00 UTC


def _frame(ts, v):
    return pl.DataFrame({"ts": ts, "v": v}, schema={"ts": pl.Int64, "v": pl.Int64})


def _replace(new, lo, hi):
    def merge(frames):
        if not frames:
            return new
        old = pl.concat(frames).filter((pl.col("ts") < lo) | (pl.col("ts") > hi))
        return pl.concat([old, new]).sort("ts")
    return merge


def _read(store):
    return pl.concat([store.read_part(f) for f in store.files("book_top", "x", "S")]).sort("ts")


def test_window_replaced_rest_kept_one_part_per_date(tmp_path):
    store = Store(tmp_path)
    first = _frame([T0 + 1, T0 + 5, T0 + 9, T0 + DAY + 1], [1, 2, 3, 4])
    upsert(store, "book_top", "x", "S", T0, T0 + DAY + 1, _replace(first, T0, T0 + DAY + 1))
    assert len(store.files("book_top", "x", "S")) == 2
    upsert(store, "book_top", "x", "S", T0 + 4, T0 + 6, _replace(_frame([T0 + 5, T0 + 6], [20, 30]), T0 + 4, T0 + 6))
    got = _read(store)
    assert got["ts"].to_list() == [T0 + 1, T0 + 5, T0 + 6, T0 + 9, T0 + DAY + 1]
    assert got["v"].to_list() == [1, 20, 30, 3, 4]
    assert len(store.files("book_top", "x", "S")) == 2


def test_concurrent_writer_between_read_and_commit_is_not_lost(tmp_path):
    store = Store(tmp_path)
    upsert(store, "book_top", "x", "S", T0, T0 + 100, _replace(_frame([T0 + 1, T0 + 50], [1, 2]), T0, T0 + 100))
    calls = []
    inner = _replace(_frame([T0 + 10], [10]), T0 + 5, T0 + 20)

    def merge(frames):
        calls.append(sum(f.height for f in frames))
        if len(calls) == 1:  # another process commits while this one merges and encodes
            other = Store(tmp_path)
            upsert(other, "book_top", "x", "S", T0 + 60, T0 + 70,
                   _replace(_frame([T0 + 65], [65]), T0 + 60, T0 + 70))
        return inner(frames)

    upsert(store, "book_top", "x", "S", T0 + 5, T0 + 20, merge)
    assert calls == [2, 3]  # merged again with the concurrent writer's row
    got = _read(store)
    assert got["ts"].to_list() == [T0 + 1, T0 + 10, T0 + 50, T0 + 65]


def test_parts_left_without_rows_are_removed(tmp_path):
    store = Store(tmp_path)
    rows = _frame([T0 + 1, T0 + DAY + 1, T0 + 2 * DAY + 1], [1, 2, 3])
    upsert(store, "book_top", "x", "S", None, None, _replace(rows, T0, T0 + 3 * DAY))
    assert len(store.files("book_top", "x", "S")) == 3
    # the window covers the second day whole and the third day's first instant; nothing new:
    # the second day's part goes, the third keeps its row, the first is not touched
    upsert(store, "book_top", "x", "S", T0 + DAY, T0 + 2 * DAY, _replace(_frame([], []), T0 + DAY, T0 + 2 * DAY))
    assert _read(store)["v"].to_list() == [1, 3] and len(store.files("book_top", "x", "S")) == 2
    assert upsert(store, "book_top", "x", "S", None, None, lambda frames: None) == []
    assert store.files("book_top", "x", "S") == []
