"""The CLI starts without the heavy libraries, and compiled kernels find a writable cache."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "matplotlib", "forensics.book", "forensics.attribution", "forensics.simulate",
         "forensics.heatmap", "forensics.report")

PROBE = """
import json, sys
from forensics.cli import cli
args = json.loads(sys.argv[1])
try:
    cli.main(args, standalone_mode=False, obj={})
except SystemExit:
    pass
print("\\nMODULES=" + json.dumps(sorted(sys.modules)))
"""


def _modules_after(args: list[str], cwd: Path) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], cwd=cwd, env=env,
                         capture_output=True, text=True, check=True)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("MODULES=")][-1]
    return set(json.loads(line[len("MODULES="):]))


def test_import_cli_loads_no_heavy_library():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", "import sys, json, forensics.cli; print(json.dumps(sorted(sys.modules)))"],
                         env=env, capture_output=True, text=True, check=True)
    mods = set(json.loads(out.stdout))
    assert "forensics.cli.ingest" in mods and "forensics.cli.sql" in mods  # the commands are registered
    for m in HEAVY + ("polars", "duckdb", "pyarrow", "rich", "numpy"):
        assert m not in mods, m


def test_help_loads_no_heavy_library(tmp_path):
    mods = _modules_after(["--help"], tmp_path)
    for m in HEAVY + ("polars", "duckdb", "pyarrow"):
        assert m not in mods, m


def test_sql_select_1_loads_no_kernels_or_plots(tmp_path):
    mods = _modules_after(["sql", "--store", str(tmp_path / "store"), "select 1"], tmp_path)
    assert "duckdb" in mods  # it did run the query
    for m in HEAVY:
        assert m not in mods, m


def test_sql_output_formats_match_the_library():
    from forensics import sql as fsql
    from forensics.cli.sql import OUTPUT_FORMATS
    assert tuple(OUTPUT_FORMATS) == tuple(fsql.FORMATS)


def test_lazy_package_attributes():
    import forensics
    from forensics.store import Store, connect
    assert forensics.Store is Store and forensics.connect is connect


def test_jit_cache_dir_default_and_read_only_install(tmp_path, monkeypatch):
    from forensics import jitcache
    pkg = tmp_path / "site-packages" / "forensics"
    pkg.mkdir(parents=True)
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert jitcache.cache_dir(pkg, env) is None  # writable install: numba's own cache next to the code
    assert jitcache.cache_dir(pkg, {**env, "NUMBA_CACHE_DIR": "/somewhere"}) is None  # the user's choice
    # read-only install (tests run as root, where os.access always says yes: simulate it)
    real = jitcache._writable
    monkeypatch.setattr(jitcache, "_writable", lambda p: False if str(p).startswith(str(pkg)) else real(p))
    d = jitcache.cache_dir(pkg, env)
    assert d == str(tmp_path / "xdg" / "forensics" / "numba") and Path(d).is_dir()


def test_kernels_compile_into_the_configured_cache(tmp_path):
    """A subprocess with the package dir reported read-only caches kernels in the user dir."""
    code = f"""
import os, sys
from forensics import jitcache
jitcache._writable = lambda p, _w=jitcache._writable: False if str(p).startswith(str(jitcache.PACKAGE_DIR)) else _w(p)
os.environ.pop("NUMBA_CACHE_DIR", None)
os.environ["XDG_CACHE_HOME"] = {str(tmp_path)!r}
jitcache.configure()
import numba
print(numba.config.CACHE_DIR)
"""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / "forensics" / "numba")
