"""The report's parameters: the one home of every window and wording threshold of
``forensics report`` (section ``[report]`` of a ``--params`` file, see :mod:`forensics.params`).
Standard library only (the CLI reads it for ``--help``)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportParams:
    """Report windows and thresholds, each with its reason."""

    window_s: float = 1800.0          # --at reports 30 minutes: the run-up, the incident and its aftermath
    margin_before_s: float = 360.0    # trades/top read 6 min before the window: the detector's impact window reaches 300 s back
    margin_after_s: float = 180.0     # ... and 3 min after it (its after-impact window is 120 s)
    detect_pad_s: float = 600.0       # events computed 10 min beyond the window: a cliff's baseline, recovery and impact windows
    low_confidence: float = 0.6       # below this the caveats call an event's label a hypothesis (the classifier's 0.5 is a coin toss)
    nothing_removed: float = 0.005    # a removed share at or below 0.5% is "nothing removed" (no traded share of it is quoted)
    max_event_figures: int = 6        # events that get their own heatmap/attribution/vacuum PNGs (a page stays readable)


def report_params(ctx) -> ReportParams:
    """The report parameters of a context (the defaults for a context built without them)."""
    return getattr(ctx, "report", None) or ReportParams()
