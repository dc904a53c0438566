"""Helpers shared by the detection tests: the classifier on an event dict, and the labels one
drawn development seed's incidents get under given parameters."""
from __future__ import annotations

from forensics.classify import Thresholds
from forensics.classify import classify as classify_metrics
from forensics.detect.metrics import event_metrics
from forensics.detect.params import DetectParams


def classify(m: dict, th: Thresholds | None = None):
    """The classifier on an event dict as detect builds it."""
    return classify_metrics(event_metrics(m), th or Thresholds())


def incident_labels(tmp_path, seed: int, params: DetectParams, kinds=("one_sided_pull",)) -> dict:
    """Simulate (once per ``tmp_path``), ingest and detect drawn seed ``seed`` with ``params``:
    {incident type: (the label of the event matched to it or None when missed, the incident's
    drawn shape)} for ``kinds`` (each must occur once in the run)."""
    from forensics.evaluate import run_eval
    _, runs = run_eval(1, seed, drawn=True, seeds=[seed], workdir=str(tmp_path), keep=True, params=params)
    out = {}
    for kind in kinds:
        m = [x for x in runs[0].matches if x["incident"] and x["incident"]["type"] == kind]
        assert len(m) == 1, (seed, kind, len(m))
        out[kind] = (m[0]["event"]["label"] if m[0]["event"] else None, m[0]["incident"]["shape"])
    return out
