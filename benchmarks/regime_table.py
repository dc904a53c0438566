"""The README's per-regime accuracy table, from ``eval_classifier.py --json`` output.

Prints one markdown row per regime (instrument/volatility): runs, precision / recall for each
core label and false events per calm hour; with ``--before`` (an earlier JSON of the same pass)
a cell that changed also shows the earlier figure in brackets. Cells below the issue-11 targets
(precision or recall < 0.95, more than 0.5 false events per calm hour) are marked with ``*``,
and the count of such cells is printed last, so the table in the README is this script's output.

Usage: python benchmarks/regime_table.py AFTER.json [--before BEFORE.json] [--pass eval]
"""
from __future__ import annotations

import argparse
import json

from forensics.evaluate import CORE

#: the issue-11 targets a cell is judged against (the "done when" of the issue)
MIN_SCORE = 0.95
MAX_FALSE_PER_HOUR = 0.5


def _pr(cell: dict) -> str:
    def f(x):
        return "-" if x is None else f"{x:.3f}"
    return f"{f(cell['precision'])} / {f(cell['recall'])}"


def _short(cell: dict) -> bool:
    return any(cell[k] is not None and cell[k] < MIN_SCORE for k in ("precision", "recall"))


def rows(after: dict, before: dict | None = None) -> tuple[list[str], int]:
    """Markdown rows of the table and the number of cells below target."""
    out, below = [], 0
    for regime, g in after["per_regime"].items():
        b = (before or {}).get("per_regime", {}).get(regime)
        cells = []
        for label in CORE:
            c = g["per_label"][label]
            s = _pr(c)
            if b is not None and _pr(b["per_label"][label]) != s:
                s += f" ({_pr(b['per_label'][label])})"
            if _short(c):
                below += 1
                s += " *"
            cells.append(s)
        ph = g["false_per_hour"]["per_hour"]
        s = "-" if ph is None else f"{ph:.2f}"
        if b is not None and b["false_per_hour"]["per_hour"] != ph and b["false_per_hour"]["per_hour"] is not None:
            s += f" ({b['false_per_hour']['per_hour']:.2f})"
        if ph is not None and ph > MAX_FALSE_PER_HOUR:
            below += 1
            s += " *"
        out.append(f"| {regime} | {g['runs']} | " + " | ".join(cells) + f" | {s} |")
    return out, below


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("after", help="eval_classifier.py --json output")
    ap.add_argument("--before", default=None, help="an earlier output of the same pass, for the brackets")
    ap.add_argument("--pass", dest="pass_", default="eval", help="which pass of the JSON [eval]")
    args = ap.parse_args()
    with open(args.after) as fh:
        after = json.load(fh)[args.pass_]
    before = None
    if args.before:
        with open(args.before) as fh:
            before = json.load(fh)[args.pass_]
    print("| regime (instrument/volatility) | runs | " + " | ".join(l.replace("_", " ") for l in CORE)
          + " | false events / calm h |")
    print("|---|---|" + "---|" * (len(CORE) + 1))
    body, below = rows(after, before)
    print("\n".join(body))
    print(f"\ncells below target (precision or recall < {MIN_SCORE}, > {MAX_FALSE_PER_HOUR} false/calm h): "
          f"{below} of {len(body) * (len(CORE) + 1)}")


if __name__ == "__main__":
    main()
