"""The project's vocabulary: every categorical value a table column or a report may hold.

Each is a :class:`enum.StrEnum`, so a member *is* its string (``Cause.TRADE == "trade"``,
``f"{Side.BID}" == "bid"``): the stored tables keep plain strings (the contract in
``design.md``), and code compares against members instead of retyping literals. A label carries
everything the reports say about it (title, short name, meaning, rank) in one place.

Codes: the compiled passes work on small integers; ``Side.code`` / ``Cause.code`` are those
integers and ``Side.names()`` / ``Cause.names()`` the string per code, in code order.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class _Coded(StrEnum):
    """A StrEnum whose members are numbered in declaration order (the compiled passes' codes)."""

    @property
    def code(self) -> int:
        return list(type(self)).index(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The string of each code, in code order."""
        return tuple(m.value for m in cls)


class Side(_Coded):
    """A resting order's side (``book_updates.side``, ``level_changes.side``, ``depth.side``)."""
    BID = "bid"
    ASK = "ask"


class Aggressor(StrEnum):
    """A print's taker side (``trades.aggressor``): a ``sell`` aggressor hits the bid."""
    BUY = "buy"
    SELL = "sell"

    @property
    def side_hit(self) -> Side:
        return Side.BID if self is Aggressor.SELL else Side.ASK


class Cause(_Coded):
    """Why a level changed (``level_changes.cause``); code order = the attribution kernel's."""
    ADD = "add"                # size went up
    TRADE = "trade"            # the decrease is fully matched by prints
    CANCEL = "cancel"          # no print matches the decrease
    MIXED = "mixed"            # part traded, part cancelled
    GAP = "gap"                # the prior size is unknown (a sequence gap before the row)
    TRUNCATION = "truncation"  # the level left a depth-limited view; nothing was cancelled

    @classmethod
    def maker_actions(cls) -> tuple[Cause, ...]:
        """Causes that are makers or takers acting (gap / truncation rows are data artefacts)."""
        return (cls.ADD, cls.TRADE, cls.CANCEL, cls.MIXED)


class Truth(StrEnum):
    """The true cause of a book change where the source knows it (``labels_level_changes``)."""
    TRADED = "traded"
    CANCELLED = "cancelled"
    ADDED = "added"
    OUT_OF_VIEW = "out_of_view"


class DataKind(StrEnum):
    """What depth was computed from (``depth.data_kind``, ``events.data_kind``, reports)."""
    BOOK = "book"    # replayed L2 levels (book_updates)
    BANDS = "bands"  # pre-aggregated depth bands (depth_bands, e.g. Binance bookDepth)


class GapReason(StrEnum):
    """Why a stretch of the book is unknown (``gaps.reason``)."""
    CHAIN_BREAK = "chain_break"      # the venue's update-id chain broke (lost messages)
    SEQUENCE = "sequence"            # the venue's message sequence number skipped or went back
    SNAPSHOT_SYNC = "snapshot_sync"  # no diff straddles the snapshot: the book cannot be joined to it
    NO_SNAPSHOT = "no_snapshot"      # incremental updates before any snapshot
    RESYNC = "resync"                # a snapshot after incremental updates (reconnect)
    CHECKSUM = "checksum"            # the venue's book checksum disagreed with the rebuilt book
    HALT = "halt"                    # trading halted (LOBSTER type 7)


class Sides(StrEnum):
    """Which sides an event hit (``events.sides``)."""
    BID = "bid"
    ASK = "ask"
    BOTH = "both"


@dataclass(frozen=True)
class LabelInfo:
    title: str    # the report's phase-1 heading
    short: str    # a few words (tables, headlines)
    meaning: str  # what the label says happened ({side} / {aggr} filled in by the narrative)
    closing: str  # the closing sentence of the report's phase 1 (level data)
    rank: int     # which event a headline is about when several compete (lower first)
    causal: bool  # says why depth went (traded vs cancelled): needs trades to be supported
    pull: bool    # makers pulled quotes (a finding may say "pulled" only for these)
    grouped: bool  # groups into cross-venue incidents (a vacuum, not quote noise or artefacts)


class Label(StrEnum):
    """An event's label (``events.label``; design.md)."""
    SYNCHRONIZED_WITHDRAWAL = "synchronized_withdrawal"
    ONE_SIDED_PULL = "one_sided_pull"
    CONSUMPTION = "consumption"
    FLICKER = "flicker"
    MIXED = "mixed"
    DEPTH_COLLAPSE = "depth_collapse"
    DATA_ANOMALY = "data_anomaly"

    @property
    def info(self) -> LabelInfo:
        return LABEL_INFO[self]

    @classmethod
    def causal(cls) -> tuple[Label, ...]:
        return tuple(m for m in cls if LABEL_INFO[m].causal)

    @classmethod
    def pulls(cls) -> tuple[Label, ...]:
        return tuple(m for m in cls if LABEL_INFO[m].pull)

    @classmethod
    def grouped(cls) -> tuple[Label, ...]:
        return tuple(m for m in cls if LABEL_INFO[m].grouped)


LABEL_INFO: dict[Label, LabelInfo] = {
    Label.SYNCHRONIZED_WITHDRAWAL: LabelInfo(
        "Phase 1: the withdrawal", "synchronized withdrawal",
        "synchronized cancellation (liquidity withdrawal), not consumption",
        "Depth eaten by trades erodes step by step from the touch outwards, in proportion to "
        "traded volume; a vertical, simultaneous disappearance on both sides with little trading "
        "is makers cancelling their quotes at once: a pre-emptive, synchronized withdrawal of "
        "liquidity.",
        rank=0, causal=True, pull=True, grouped=True),
    Label.ONE_SIDED_PULL: LabelInfo(
        "Phase 1: the pull", "one-sided pull",
        "a one-sided pull of {side} quotes (cancellation), not consumption",
        "Quotes on one side were cancelled with little trading while the other side held: makers "
        "stepped away from the side about to be hit.",
        rank=1, causal=True, pull=True, grouped=True),
    Label.CONSUMPTION: LabelInfo(
        "Phase 1: the consumption", "consumption",
        "consumption by {aggr} orders eating the book level by level, not a withdrawal",
        "The depth went in proportion to the volume that traded against it, level after level "
        "from the touch outwards: it was eaten by aggressive orders, not withdrawn.",
        rank=2, causal=True, pull=False, grouped=True),
    Label.DEPTH_COLLAPSE: LabelInfo(
        "Phase 1: the collapse (cause unknown)", "depth collapse (cause unknown)",
        "a depth collapse whose cause (trades or cancellations) the data present cannot tell",
        "Without trades the removal cannot be split into traded and cancelled size: the data "
        "present shows that the depth went, not why.",
        rank=2, causal=False, pull=False, grouped=True),
    Label.MIXED: LabelInfo(
        "Phase 1: the removal", "mixed", "a mix of trading and cancellation",
        "Both trading and cancellation contributed to the removal.",
        rank=3, causal=True, pull=False, grouped=True),
    Label.DATA_ANOMALY: LabelInfo(
        "Phase 1: the fall in a flagged band", "data anomaly (flagged band)",
        "a fall inside a band the data-quality checks flagged: possibly a recording artefact, "
        "not read as makers pulling quotes",
        "The band the fall was measured in is flagged by the data-quality checks over this span, "
        "so the fall may be an artefact of the recording rather than quotes leaving the book.",
        rank=4, causal=False, pull=False, grouped=False),
    Label.FLICKER: LabelInfo(
        "Phase 1: the flicker", "flicker",
        "flickering quotes that were never there to be traded, not a withdrawal",
        "The size was posted and removed again within seconds: flickering quotes, which inflate "
        "apparent depth without being available to trade.",
        rank=4, causal=False, pull=False, grouped=False),
}


def _info(label) -> LabelInfo | None:
    try:
        return LABEL_INFO[Label(label)]
    except ValueError:
        return None


def label_short(label, default: str | None = None) -> str:
    """The label's short name; ``default`` (else the label itself) for an unknown label."""
    info = _info(label) if label is not None else None
    return info.short if info else (default if default is not None else (label or ""))


def label_meaning(label) -> str:
    """What the label says happened (``{side}``/``{aggr}`` placeholders); the label spelled out
    for an unknown one."""
    info = _info(label) if label is not None else None
    return info.meaning if info else str(label or "").replace("_", " ")


def label_closing(label) -> str | None:
    info = _info(label) if label is not None else None
    return info.closing if info else None


def label_rank(label) -> int:
    """Headline rank (lower = more telling); unknown labels rank with ``mixed``."""
    info = _info(label) if label is not None else None
    return info.rank if info else LABEL_INFO[Label.MIXED].rank


def label_title(label) -> str:
    info = _info(label) if label is not None else None
    return info.title if info else LABEL_INFO[Label.MIXED].title
