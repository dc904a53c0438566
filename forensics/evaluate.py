"""Compatibility module: this code lives in :mod:`forensics.sim.evaluate`; importing this name
gives that very module (every name, private ones included)."""
import sys

from forensics.sim import evaluate as _module

sys.modules[__name__] = _module
