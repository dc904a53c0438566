"""Sequence chains of diff-depth feeds: one home for the sync rules every venue reader shares.

A venue that sends a snapshot followed by diffs numbers its messages (Binance ``U``/``u``/``pu``,
Bybit ``u``, OKX ``seqId``/``prevSeqId``). The rules are the same everywhere:

* **snapshot straddle**: the first diff applied on top of a snapshot (``lastUpdateId = L``) must
  cover it (:func:`straddles`); if it does not, updates between the snapshot and that diff are
  missing: a gap (reason ``snapshot_sync``) opens at once.
* **chain break**: a diff that does not follow its predecessor (the venue's link rule, e.g.
  ``pu == previous u``) opens a gap (reason ``chain_break``, or the reader's own reason such as
  ``seq`` / ``checksum``) from the last message applied in sync (``ts_from``) at the first row
  that could not be applied (``arrival_from``). Rows after a break are still stored; replay
  treats the book as unknown until the next snapshot. One gap per break: a second break inside
  an open gap adds nothing.
* **restart**: the next snapshot (a reconnect, a resync, Bybit's ``u == 1``) closes the open gap
  (``ts_to``/``arrival_to``) and starts a new chain; a restart is never a gap itself.
* **no snapshot**: diffs before any snapshot open a ``no_snapshot`` gap (closed by the first
  snapshot if one comes).

:class:`SeqChain` keeps, per instrument key ``(exchange, symbol)``, the status
(``presync`` | ``synced`` | ``unknown`` | ``nosnap``), the last id and time applied and the open
gap, and hands out finished gap rows. Message-at-a-time readers (Bybit, OKX) call
:meth:`SeqChain.no_snapshot` / :meth:`SeqChain.chain_break` / :meth:`SeqChain.restart`;
vectorised readers (Binance) compute the link condition of a whole block with numpy and call
:func:`first_break` to find where a chain breaks, looping only over snapshots and breaks.
:func:`gap_row` is the only constructor of a ``gaps`` row a reader hands to the Writer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics.vocab import GapReason

PRESYNC, SYNCED, UNKNOWN, NOSNAP = "presync", "synced", "unknown", "nosnap"

#: keys of a reader's gap row (the Writer turns arrivals into ``seq_from``/``seq_to``)
GAP_KEYS = ("exchange", "symbol", "ts_from", "ts_to", "arrival_from", "arrival_to", "reason", "detail")


def gap_row(exchange: str, symbol: str, reason: str, ts_from: int | None, arrival_from: int | None,
            detail: str, ts_to: int | None = None, arrival_to: int | None = None) -> dict:
    """A ``gaps`` row as readers hand it over: the book is unknown from ``ts_from`` (the last
    message applied in sync) / ``arrival_from`` (the first row that could not be applied) to
    ``ts_to`` / ``arrival_to`` (the snapshot that restored it; None while open / never)."""
    return {"exchange": exchange, "symbol": symbol, "ts_from": ts_from, "ts_to": ts_to,
            "arrival_from": arrival_from, "arrival_to": arrival_to,
            "reason": GapReason(reason).value,  # one vocabulary: an unknown reason is a reader bug
            "detail": detail}


def straddles(first_id, last_id, snap_id, rule: str = "futures"):
    """Whether the first diff ``[first_id, last_id]`` after a snapshot with last update id
    ``snap_id`` covers it (scalars or numpy arrays). ``rule``: ``'futures'`` (Binance USD-M /
    COIN-M: ``U <= L <= u``), ``'spot'`` (Binance spot: ``U <= L+1 <= u``), ``'either'`` (the
    tick-level history files, which follow either rule: ``U <= L+1 and u >= L``)."""
    if rule == "futures":
        return (first_id <= snap_id) & (last_id >= snap_id)
    if rule == "spot":
        return (first_id <= snap_id + 1) & (last_id >= snap_id + 1)
    if rule == "either":
        return (first_id <= snap_id + 1) & (last_id >= snap_id)
    raise ValueError(f"unknown straddle rule {rule!r}")


def first_break(ok: np.ndarray) -> int | None:
    """Index of the first message whose link to its predecessor fails (None: chain intact)."""
    bad = np.flatnonzero(~np.asarray(ok, dtype=bool))
    return int(bad[0]) if bad.size else None


@dataclass
class ChainState:
    status: str = PRESYNC         # presync | synced | unknown | nosnap
    last_id: int | None = None    # id (u / seqId) of the last message handed over
    last_ts: int | None = None    # ts of the last message / snapshot handed over

    @property
    def started(self) -> bool:
        return self.status != PRESYNC

    @property
    def synced(self) -> bool:
        return self.status == SYNCED


class SeqChain:
    """Chain status and gap bookkeeping per instrument key (see the module docstring).

    ``open``: key -> the open gap (one per key); ``done``: closed gaps not yet drained."""

    def __init__(self):
        self.state: dict[tuple[str, str], ChainState] = {}
        self.open: dict[tuple[str, str], dict] = {}
        self.done: list[dict] = []

    def st(self, key: tuple[str, str]) -> ChainState:
        s = self.state.get(key)
        if s is None:
            s = self.state[key] = ChainState()
        return s

    # ---- gaps ------------------------------------------------------------------------------
    def start(self, key: tuple[str, str], reason: str, ts_from: int | None, arrival_from: int, detail: str,
              status: str | None = None) -> None:
        """Open a gap for ``key`` (nothing if one is open: one gap per break); ``status`` (if
        given) becomes the key's status."""
        if status is not None:
            self.st(key).status = status
        if key in self.open:
            return
        self.open[key] = gap_row(key[0], key[1], reason, ts_from, arrival_from, detail)

    def close(self, key: tuple[str, str], ts_to: int, arrival_to: int) -> None:
        """Close the key's open gap (if any) at the snapshot at ``ts_to`` / ``arrival_to``."""
        g = self.open.pop(key, None)
        if g is not None:
            if g["ts_from"] is None:
                g["ts_from"] = ts_to
            g.update(ts_to=ts_to, arrival_to=arrival_to)
            self.done.append(g)

    def is_open(self, key) -> bool:
        return key in self.open

    def drain(self, eof: bool = False) -> list[dict]:
        """Gap rows finished since the last call; at ``eof`` also the open ones (still open at
        the end of the file: ``ts_to`` null), except those that never had a time."""
        out, self.done = self.done, []
        if eof:
            out += [g for g in self.open.values() if g["ts_from"] is not None]
            self.open = {}
        return out

    # ---- the chain rules, one message at a time ---------------------------------------------
    def restart(self, key: tuple[str, str], ts: int, arrival: int) -> None:
        """A snapshot replaced the book: the open gap (if any) ends here, the key is in sync."""
        self.close(key, ts, arrival)
        self.st(key).status = SYNCED

    def no_snapshot(self, key: tuple[str, str], ts: int | None, arrival: int, detail: str) -> bool:
        """A diff arrived: if it is the key's first message and no snapshot came before it,
        open a ``no_snapshot`` gap (the book is unknown) and return True."""
        s = self.st(key)
        if s.status != PRESYNC:
            return False
        s.status = NOSNAP
        self.start(key, "no_snapshot", ts, arrival, detail)
        return True

    def chain_break(self, key: tuple[str, str], arrival: int, detail: str, reason: str = "chain_break",
                    ts_from: int | None = None) -> bool:
        """The message at ``arrival`` does not follow the chain: if the key was in sync, open a
        gap from the last message applied in sync (``ts_from``, default the key's last time)
        and return True; a break while already out of sync adds nothing."""
        s = self.st(key)
        if s.status != SYNCED:
            return False
        s.status = UNKNOWN
        self.start(key, reason, s.last_ts if ts_from is None else ts_from, arrival, detail)
        return True

    def advance(self, key: tuple[str, str], last_id: int | None, ts: int | None) -> None:
        """The message with id ``last_id`` at ``ts`` was handed over (in sync or not)."""
        s = self.st(key)
        s.last_id, s.last_ts = last_id, ts
