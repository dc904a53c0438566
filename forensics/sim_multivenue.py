"""Compatibility module: this code lives in :mod:`forensics.sim.multivenue`; importing this name
gives that very module (every name, private ones included)."""
import sys

from forensics.sim import multivenue as _module

sys.modules[__name__] = _module
