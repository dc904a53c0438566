"""The depth step's parameters: the one home of the defaults of ``forensics depth`` (section
``[depth]`` of a ``--params`` file, see :mod:`forensics.params`): the grid step, the bands and
the data source. Standard library only (the CLI reads it for ``--help``)."""
from __future__ import annotations

from dataclasses import dataclass

SOURCES = ("auto", "book", "bands")


@dataclass(frozen=True)
class DepthParams:
    """Depth grid defaults, each with its reason."""

    every: str = "1s"                                      # grid step: 1 s resolves a cliff (detection's window is 5 s) at 86,400 rows a day per band
    bands: tuple[str, ...] = ("0.1", "0.5", "1", "2", "5")  # % of mid: the touch (0.1%), the near book an aggressive order reaches (0.5-2%), the deep book (5%); one home for depth, detect and reports
    source: str = "auto"                                   # book (replay level updates) when the instrument has them, else the pre-aggregated bands (band data: native bands and cadence)

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)} (got {self.source!r})")

    @property
    def every_ns(self) -> int:
        """The grid step in ns (:func:`forensics.timeutil.parse_duration`)."""
        from forensics.timeutil import parse_duration
        return parse_duration(self.every)
