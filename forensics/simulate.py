"""Compatibility module: the market simulator lives in :mod:`forensics.sim` (``config``,
``scenario``, ``engine``, ``publish``, ``book_depth``). Every public name is re-exported here;
other names (``simulate._dec_expr``) resolve to the module that defines them."""
from __future__ import annotations

import importlib

from forensics.sim import *  # noqa: F401,F403
from forensics.sim import __all__  # noqa: F401

_MODULES = ("config", "scenario", "engine", "publish", "book_depth")


def __getattr__(name: str):
    for mod in _MODULES:
        m = importlib.import_module(f"forensics.sim.{mod}")
        if hasattr(m, name):
            return getattr(m, name)
    raise AttributeError(f"module 'forensics.simulate' has no attribute {name!r}")
