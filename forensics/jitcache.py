"""Where numba keeps its on-disk cache of compiled kernels (``@njit(cache=True)``).

numba caches next to the source (``forensics/__pycache__``). In a read-only install (system
site-packages, a container image, a shared venv) that fails, so before numba is imported
:func:`configure` points ``NUMBA_CACHE_DIR`` at a per-user cache directory instead
(``$XDG_CACHE_HOME/forensics/numba``, else ``~/.cache/forensics/numba``, else a per-user
folder under the temp dir). A ``NUMBA_CACHE_DIR`` the user set is always respected.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _writable(path: Path) -> bool:
    """``path`` (or, if it does not exist yet, its parent) accepts new files."""
    probe = path if path.exists() else path.parent
    return os.access(probe, os.W_OK | os.X_OK)


def cache_dir(package_dir: Path = PACKAGE_DIR, env: dict | None = None) -> str | None:
    """The cache directory to use, or None when numba's default (next to the sources) works
    or the user chose one."""
    env = os.environ if env is None else env
    if env.get("NUMBA_CACHE_DIR"):
        return None
    if _writable(package_dir) and _writable(package_dir / "__pycache__"):
        return None
    bases = [Path(env["XDG_CACHE_HOME"])] if env.get("XDG_CACHE_HOME") else []
    uid = getattr(os, "getuid", lambda: "user")()
    bases += [Path.home() / ".cache", Path(tempfile.gettempdir()) / f"forensics-{uid}"]
    for base in bases:
        d = base / "forensics" / "numba"
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if _writable(d):
            return str(d)
    return None


def configure() -> None:
    """Set the cache location for the kernels compiled after this call (call before numba
    is imported: ``forensics.book``, ``attribution`` and ``simulate`` do)."""
    d = cache_dir()
    if d is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = d
    numba = sys.modules.get("numba")
    if numba is not None:  # imported already: its config was read; set it there too
        numba.config.CACHE_DIR = d
