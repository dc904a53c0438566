"""Helpers shared by the venue reader tests (tests/test_ingest_<venue>.py): a plain reference
replay of what the store holds, gap/reject lookups, the shared real data folder."""
from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest

from forensics.attribution import attribute
from forensics.ingest import ingest
from forensics.store import Store

import os

_REPO = Path(__file__).resolve().parents[1]
# CI: ../shared next to the repo; a git worktree one level deeper (wt/iNN) finds ../../shared
SHARED = Path(os.environ["FORENSICS_SHARED"]) if os.environ.get("FORENSICS_SHARED") else next(
    (p for p in (_REPO.parent / "shared", _REPO.parent.parent / "shared") if p.is_dir()), _REPO.parent / "shared")
VENUES = SHARED / "data" / "venues"


def real(name: str) -> Path:
    p = VENUES / name
    if not p.exists():
        pytest.skip(f"{p} not present (shared real data folder absent)")
    return p


def rows(store_dir, sql: str):
    return Store(store_dir).connect().execute(sql).fetchall()


def stored_book(store_dir, ex: str, sy: str) -> dict[str, dict[Decimal, Decimal]]:
    """The book the stored rows describe, replayed plainly in (ts, seq) order: a snapshot block
    (consecutive snapshot rows, one ts) replaces the book; size 0 removes a level."""
    data = rows(store_dir, f"SELECT ts, seq, is_snapshot, side, price, size FROM book_updates "
                           f"WHERE exchange='{ex}' AND symbol='{sy}' ORDER BY ts, seq")
    book = {"bid": {}, "ask": {}}
    prev = None
    for ts, _, snap, side, price, size in data:
        if snap and not (prev is not None and prev[1] and prev[0] == ts):
            book = {"bid": {}, "ask": {}}
        if Decimal(size) == 0:
            book[side].pop(Decimal(price), None)
        else:
            book[side][Decimal(price)] = Decimal(size)
        prev = (ts, snap)
    return book


def as_decimal(book: dict[str, dict[str, str]]) -> dict[str, dict[Decimal, Decimal]]:
    return {s: {Decimal(p): Decimal(q) for p, q in lv.items() if Decimal(q) != 0} for s, lv in book.items()}


def gaps(store_dir, ex: str, sy: str) -> list[tuple]:
    """(reason, ts_from, ts_to, seq_from, seq_to, detail) in stored units (ns), by seq_from."""
    st = Store(store_dir)
    if not st.files("gaps", ex, sy):
        return []
    g = st.scan("gaps", ex, sy, ts_column="ts_from").collect().sort("seq_from", nulls_last=False)
    return g.select("reason", "ts_from", "ts_to", "seq_from", "seq_to", "detail").rows()


def raw(store_dir, table: str, ex: str, sy: str):
    """A stored table of one instrument in stored units (ns, integer ticks/lots), by seq."""
    return Store(store_dir).scan(table, ex, sy).collect().sort("seq")


def causes(store_dir, ex: str, sy: str):
    """level_changes (attribution, depth limit auto-detected) with the stored rows' sizes."""
    return attribute(Store(store_dir), ex, sy, write=False)


def ingest_one(path, store_dir, **kw):
    (r,) = ingest([path], store=Store(store_dir), **kw)
    return r


def random_book_session(seed: int, n: int, depth: int | None = None, tick: str = "0.1", mid: int = 600000,
                        with_truncated: bool = False):
    """A random L2 session in venue terms: a snapshot then ``n`` update messages of absolute
    sizes (``"0"`` removes), as lists of (side, price, size) strings; with ``depth`` the model
    truncates to ``depth`` levels per side after every message (the venue's N-level view).
    Returns (snapshot levels, [update levels], final reference book {side: {price: size}}) and,
    ``with_truncated``, the (message index, side, price) of levels pushed out of the view."""
    rnd = random.Random(seed)
    dec = len(tick.split(".")[1]) if "." in tick else 0

    def px(k):
        return f"{Decimal(k) * Decimal(tick):.{dec}f}"

    def sz():
        return f"{rnd.randint(1, 5000) / 1000:.3f}"

    book = {"bid": {}, "ask": {}}
    snap = []
    for i in range(1, (depth or 30) + 1):
        for side, k in (("bid", mid - i), ("ask", mid + i)):
            p, q = px(k), sz()
            book[side][p] = q
            snap.append((side, p, q))
    msgs = []
    pushed_out = []  # (message index, side, price) of levels the N-level view pushed out
    for _ in range(n):
        lv = []
        for _ in range(rnd.randint(1, 4)):
            side = rnd.choice(("bid", "ask"))
            off = rnd.randint(0, (depth or 30) + 5)
            k = mid - 1 - off if side == "bid" else mid + 1 + off
            p = px(k)
            if p in book[side] and rnd.random() < 0.35:
                q = "0"
            else:
                q = sz()
            if any(x[0] == side and x[1] == p for x in lv):
                continue
            lv.append((side, p, q))
            if q == "0":
                book[side].pop(p, None)
            else:
                book[side][p] = q
        if depth:
            for side in ("bid", "ask"):
                # the venue refills its N-level view from deeper levels (they enter the window)
                while len(book[side]) < depth:
                    worst = min(book[side], key=Decimal) if side == "bid" else max(book[side], key=Decimal)
                    step = rnd.randint(1, 3)
                    k = int(Decimal(worst) / Decimal(tick)) + (-step if side == "bid" else step)
                    p, q = px(k), sz()
                    lv.append((side, p, q))
                    book[side][p] = q
                keep = sorted(book[side], key=Decimal, reverse=side == "bid")[:depth]
                for p in set(book[side]) - set(keep):
                    pushed_out.append((len(msgs), side, p))
                book[side] = {p: book[side][p] for p in keep}
        msgs.append(lv)
    if with_truncated:
        return snap, msgs, book, pushed_out
    return snap, msgs, book
