"""Compatibility module: this code lives in :mod:`forensics.sim.venues`; importing this name
gives that very module (every name, private ones included). ``python -m forensics.sim_venues
CAPTURE OUT`` still runs its converter."""
import sys

from forensics.sim import venues as _module

if __name__ == "__main__":  # python -m forensics.sim_venues CAPTURE OUT
    if len(sys.argv) != 3:
        sys.exit("usage: python -m forensics.sim_venues CAPTURE OUT")
    print(_module.to_okx(sys.argv[1], sys.argv[2]))
else:
    sys.modules[__name__] = _module
