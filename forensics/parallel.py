"""Partition-parallel runs of ``depth`` and ``detect`` on a Dask cluster.

The work is cut along the store's partitioning and each piece is one Dask task:

* ``depth``: one task per **(exchange, symbol, UTC day)**. The grid is UTC-aligned (multiples
  of ``every_ns`` from the epoch), so a day's grid times are the same whether the day is
  computed alone or inside a longer run. The book at midnight is carried across the day
  boundary by the replay itself: a task replays from the last snapshot at or before its
  day's first grid time (:func:`forensics.book.plan_book`), exactly as the serial run does
  when it starts there; each task upserts only its own day's rows. A day without a snapshot
  near its start would replay much of the day before again: such days join the previous
  day's task (:func:`merge_replays`), one replay as in the serial run.
* ``detect`` (attribution, depth grid, cliffs, flow, flicker, classification): one task per
  **(exchange, symbol)**. Detection estimates its matching tolerance and trailing baselines
  from the instrument's whole window, and events may straddle midnight, so an instrument is
  the smallest unit whose result does not depend on where it is cut; instruments are
  independent, so a store of many symbols still spreads over the workers.

Results equal the serial run row for row (tested on a multi-day, multi-symbol store, locally
and on an S3 store). Writers serialise on the store's writer lock (``fcntl`` locally, the lease
object on S3), so tasks on several machines can share one ``s3://`` store.

Clusters: ``workers=N`` starts a local cluster of N single-threaded worker processes on
127.0.0.1 without a dashboard; ``scheduler="tcp://host:8786"`` uses a running one (the
project package is shipped to its workers with ``Client.upload_file`` unless they already
import it: install it there with ``pip install forensics`` for speed). With neither, tasks run
serially in this process (no Dask import). A local cluster forks its workers from a fork
server that imported the task modules and loaded the compiled kernels once
(:mod:`forensics.workerinit`); every worker is warmed (:func:`warm_worker`) before the first
task, runs one task at a time with one Polars thread, and the largest partitions start first.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import polars as pl

from forensics.errors import ForensicsError
from forensics.store import Store
from forensics.timeutil import date_bounds

ProgressFn = Callable[[int, int, "Partition"], None]


@dataclass(frozen=True)
class Partition:
    """One unit of work: an instrument, and a UTC day (``None``: the instrument's whole window)."""

    exchange: str
    symbol: str
    date: str | None = None
    event_id: str | None = None  # report tasks: the stored event
    at: int | None = None        # ... and its start (UTC ns)
    date_to: str | None = None   # several consecutive days [date, date_to] in one task

    def __str__(self) -> str:
        return (f"{self.exchange}/{self.symbol}" + (f" {self.date}" if self.date else "")
                + (f"..{self.date_to}" if self.date_to else "")
                + (f" event {self.event_id}" if self.event_id else ""))

    def bounds(self, ts_from: int | None, ts_to: int | None) -> tuple[int | None, int | None]:
        """The task's window: the day(s) clipped to [ts_from, ts_to]."""
        if self.date is None:
            return ts_from, ts_to
        a, b = date_bounds(self.date)
        if self.date_to:
            b = date_bounds(self.date_to)[1]
        return (a if ts_from is None else max(a, ts_from)), (b if ts_to is None else min(b, ts_to))


@dataclass
class TaskResult:
    partition: Partition
    value: Any
    seconds: float


class PartitionError(ForensicsError):
    """A task failed; the message names its partition."""


def day_partitions(store: Store, exchange: str | None, symbol: str | None, ts_from: int | None,
                   ts_to: int | None, table: str = "book_updates") -> list[Partition]:
    """(exchange, symbol, day) partitions of ``table`` inside [ts_from, ts_to]."""
    from forensics.detect import instruments
    out, present = [], set(store.instruments_in(table))
    for ex, sy in instruments(store, exchange, symbol):
        if (ex, sy) not in present:
            continue
        days = sorted({Store.part_date(f) for f in store.files(table, ex, sy, ts_from, ts_to)})
        out.extend(Partition(ex, sy, d) for d in days)
    return out


def input_rows(store: Store, parts: list[Partition], table: str = "book_updates") -> list[float]:
    """Rows of ``table`` each partition reads (its day, or its whole instrument), from the
    parts' Parquet footers: the weight that orders the tasks. 0 where unknown."""
    out = []
    for p in parts:
        a, b = p.bounds(None, None)
        n = 0
        try:
            for f in store.files(table, p.exchange, p.symbol, a, b):
                n += store.location.parquet_metadata(store.rel_of(f)).num_rows
        except Exception:  # noqa: BLE001 - only an ordering hint
            n = 0
        out.append(float(n))
    return out


#: a day whose replay would start further back than this share of its own window (no snapshot
#: near its start: the book is rebuilt from an earlier day's snapshot) joins the previous day's
#: task instead: replaying that stretch twice costs more than the parallelism gains
MAX_REPLAY_SHARE = 0.25


def merge_replays(store: Store, parts: list[Partition], ts_from: int | None = None,
                  ts_to: int | None = None) -> list[Partition]:
    """Book-replay partitions with consecutive days of one instrument merged where a day alone
    would replay much of the day before (its last snapshot at or before its start lies more
    than :data:`MAX_REPLAY_SHARE` of its window back). A merged task computes the serial run
    restricted to its days (one replay from the same snapshot), so the result is unchanged;
    only the redundant replay is gone. A capture with a snapshot every day keeps one task per
    day."""
    from forensics.book import _data_span, _last_snapshot_at_or_before
    out: list[Partition] = []
    spans: dict = {}
    for p in parts:
        key = (p.exchange, p.symbol)
        if key not in spans:
            spans[key] = _data_span(store, "book_updates", *key)
        span = spans[key]
        prev = out[-1] if out and (out[-1].exchange, out[-1].symbol) == key else None
        if span is None or prev is None or p.date is None:
            out.append(p)
            continue
        a, b = p.bounds(span[0] if ts_from is None else ts_from, span[1] if ts_to is None else ts_to)
        snap = _last_snapshot_at_or_before(store, p.exchange, p.symbol, a) if a > span[0] else a
        back = a - (snap if snap is not None else a)
        if back > MAX_REPLAY_SHARE * max(b - a, 1):
            out[-1] = Partition(prev.exchange, prev.symbol, prev.date, date_to=p.date)
        else:
            out.append(p)
    return out


# ---- running tasks ------------------------------------------------------------------------

def _timed(fn: Callable, part: Partition, *args) -> TaskResult:
    t = time.perf_counter()
    try:
        value = fn(part, *args)
    except ForensicsError as exc:
        raise PartitionError(f"{part}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - named for the user, traceback kept as the cause
        raise PartitionError(f"{part}: {type(exc).__name__}: {exc}") from exc
    return TaskResult(part, value, time.perf_counter() - t)


def _package_zip() -> Path:
    """The ``forensics`` package as a zip for ``Client.upload_file``."""
    import forensics
    pkg = Path(forensics.__file__).resolve().parent
    out = Path(tempfile.mkdtemp(prefix="forensics-pkg-")) / "forensics.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for p in pkg.rglob("*.py"):
            z.write(p, p.relative_to(pkg.parent).as_posix())
    return out


#: the modules a task imports: loaded once per worker by :func:`warm_worker`
TASK_MODULES = ("forensics.book", "forensics.attribution", "forensics.detect", "forensics.band_events",
                "forensics.classify", "forensics.incidents")


def load_cached_kernels(modules=TASK_MODULES) -> int:
    """Load every compiled kernel of ``modules`` that numba's on-disk cache holds (each
    ``@njit(cache=True)`` signature compiled before), so that no task pays for it on its first
    call. Kernels not in the cache are left to compile on first use. Returns how many were
    loaded. Uses numba's cache index (internal API): any failure just skips the kernel."""
    import importlib
    import sys
    try:
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - numba is a dependency
        return 0
    n = 0
    for name in modules:
        mod = sys.modules.get(name) or importlib.import_module(name)
        for obj in list(vars(mod).values()):
            if not isinstance(obj, CPUDispatcher) or obj.__module__ != name or obj._cache is None:
                continue
            try:
                magic = obj.targetctx.codegen().magic_tuple()
                sigs = [key[0] for key in obj._cache._cache_file._load_index() if key[1] == magic]
                for sig in sigs:
                    if sig not in obj.overloads:
                        obj.compile(sig)
                        n += 1
            except Exception:  # noqa: BLE001 - a cache we cannot read: compiled on first use instead
                continue
    return n


def warm_worker(modules=TASK_MODULES) -> dict:
    """Import the task modules and load their cached kernels in this process (run once per
    worker with ``Client.run`` when a cluster starts). Returns the seconds spent on each."""
    import importlib
    t0 = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    t1 = time.perf_counter()
    n = load_cached_kernels(modules)
    return {"import_s": t1 - t0, "kernels_s": time.perf_counter() - t1, "kernels": n}


@dataclass
class Startup:
    """What starting a cluster cost (``client.forensics_startup``)."""

    cluster_s: float = 0.0                      # LocalCluster + Client, or connecting
    warm_s: float = 0.0                         # warm_worker on every worker (wall)
    workers: dict = None                        # worker address -> warm_worker() timings
    start_method: str | None = None             # local cluster: forkserver or spawn


@contextlib.contextmanager
def client_for(workers: int | None = None, scheduler: str | None = None, warm: bool = True,
               start_method: str | None = None):
    """A Dask client: a local cluster of ``workers`` processes, or the ``scheduler`` at an
    address; None when neither is asked for (serial). With ``warm`` every worker imports the
    task modules and loads the compiled kernels once, before any task (:func:`warm_worker`);
    the client's ``forensics_startup`` (:class:`Startup`) says what that cost. ``start_method``
    (local cluster): ``forkserver`` or ``spawn``, default :func:`default_start_method`."""
    if workers is not None and workers < 1:
        raise ForensicsError("--workers must be at least 1")
    if not workers and not scheduler:
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise ForensicsError("--workers/--scheduler need dask[distributed] (pip install 'dask[distributed]')") from exc
    t0 = time.perf_counter()
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ForensicsError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        try:
            def has_package():
                import forensics  # noqa: F401
                return True
            try:
                ok = all(client.run(has_package).values())
            except Exception:  # noqa: BLE001 - ImportError raised on a worker
                ok = False
            if not ok:
                client.upload_file(str(_package_zip()))
            _warm(client, t0, warm)
            yield client
        finally:
            client.close()
        return
    method = start_method or default_start_method()
    import dask
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        if method == "forkserver":
            _forkserver_preload()
        with _polars_threads(POLARS_WORKER_THREADS):
            cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR,
                                   worker_dashboard_address=None, env=_worker_env(),
                                   # no dashboard, and the scheduler's HTTP routes (health) on a
                                   # free loopback port, not 8787 (taken by any other cluster)
                                   scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
        client = Client(cluster)
        try:
            _warm(client, t0, warm)
            client.forensics_startup.start_method = method
            yield client
        finally:
            client.close()
            cluster.close()


def default_start_method() -> str:
    """How a local cluster starts its worker processes: ``forkserver`` where the platform has
    it (Linux, macOS), else ``spawn``. A fork server imports the task modules and loads the
    compiled kernels once (:mod:`forensics.workerinit`) and forks every worker from that
    state, instead of each worker starting a fresh interpreter and loading them itself. Polars'
    thread pool is not started in the fork server (nothing is computed there), so the forked
    workers start their own. ``FORENSICS_DASK_START=spawn`` chooses fresh interpreters."""
    import multiprocessing
    want = os.environ.get("FORENSICS_DASK_START")
    if want:
        if want not in ("spawn", "forkserver"):
            raise ForensicsError(f"FORENSICS_DASK_START must be spawn or forkserver, not {want!r}")
        return want
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _forkserver_preload() -> None:
    """Have the fork server (started once per process, on the first worker) import
    :mod:`forensics.workerinit`. No effect when it is already running."""
    from distributed.utils import get_mp_context
    ctx = get_mp_context()  # dask's own preload list is set here first ...
    ctx.set_forkserver_preload(["distributed", "forensics.workerinit"])  # ... then ours


#: environment variables a worker must see as this process sees them now (a fork server
#: started earlier kept the environment of that moment)
WORKER_ENV_PREFIXES = ("AWS_", "FORENSICS_", "NUMBA_", "POLARS_")


def _worker_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k.startswith(WORKER_ENV_PREFIXES)}
    env.setdefault("POLARS_MAX_THREADS", str(POLARS_WORKER_THREADS))
    return env


#: Polars threads in each local worker process: one task per core already uses every core, so a
#: worker's own thread pool would only oversubscribe them (set POLARS_MAX_THREADS to override)
POLARS_WORKER_THREADS = 1


@contextlib.contextmanager
def _polars_threads(n: int):
    """``POLARS_MAX_THREADS`` in this process's environment while the workers (or the fork
    server, which imports Polars and fixes its pool size for every worker forked from it) are
    started; this process's own Polars pool is sized already and keeps its size."""
    if "POLARS_MAX_THREADS" in os.environ:
        yield
        return
    os.environ["POLARS_MAX_THREADS"] = str(n)
    try:
        yield
    finally:
        os.environ.pop("POLARS_MAX_THREADS", None)


def _warm(client, t0: float, warm: bool) -> None:
    st = Startup(cluster_s=time.perf_counter() - t0, workers={})
    if warm:
        t = time.perf_counter()
        st.workers = client.run(warm_worker)
        st.warm_s = time.perf_counter() - t
    client.forensics_startup = st


def run_partitions(fn: Callable, parts: list[Partition], args: tuple = (), workers: int | None = None,
                   scheduler: str | None = None, progress: ProgressFn | None = None,
                   client=None, weights: list[float] | None = None) -> list[TaskResult]:
    """``fn(partition, *args)`` for every partition, serially or on a Dask cluster (a running
    ``client``, or one made from ``workers``/``scheduler`` for this call); results in the order
    of ``parts``. On a cluster, partitions of larger ``weights`` (e.g. input rows) start first.
    The first failure stops the run with its partition named."""
    results: dict[Partition, TaskResult] = {}
    with (contextlib.nullcontext(client) if client is not None else client_for(workers, scheduler)) as client:
        if client is None:
            for i, part in enumerate(parts):
                results[part] = _timed(fn, part, *args)
                if progress:
                    progress(i + 1, len(parts), part)
        else:
            from dask.distributed import as_completed
            # the biggest partitions first (longest-processing-time order: the last task to
            # finish is then a small one, so no worker idles long waiting for it)
            order = sorted(range(len(parts)), key=lambda i: -weights[i]) if weights else range(len(parts))
            futures = {client.submit(_timed, fn, parts[i], *args, key=f"forensics-{fn.__name__}-{i}", pure=False,
                                     priority=len(parts) - rank): parts[i]
                       for rank, i in enumerate(order)}
            done = 0
            for fut in as_completed(futures):
                part = futures[fut]
                try:
                    results[part] = fut.result()
                except PartitionError:
                    for f in futures:
                        f.cancel()
                    raise
                done += 1
                if progress:
                    progress(done, len(parts), part)
    return [results[p] for p in parts]


# ---- the tasks ------------------------------------------------------------------------------

def _depth_task(part: Partition, store: Store, ts_from, ts_to, every_ns, bands, source):
    from forensics.book import _data_span, compute_depth
    if ts_from is None or ts_to is None:  # the serial run's window is the data's span: clip to it
        table = "depth_bands" if source == "bands" or not store.files("book_updates", part.exchange, part.symbol) \
            else "book_updates"
        span = _data_span(store, table, part.exchange, part.symbol)
        ts_from = span[0] if ts_from is None else ts_from
        ts_to = span[1] if ts_to is None else ts_to
    a, b = part.bounds(ts_from, ts_to)
    res = compute_depth(store, part.exchange, part.symbol, a, b, every_ns=every_ns, bands=bands, source=source)
    return {"depth_rows": res.depth.height, "book_top_rows": res.book_top.height,
            "flags": res.flags.height if res.flags is not None else 0}


def _detect_task(part: Partition, store: Store, ts_from, ts_to, params, run_id=None):
    from forensics.runs import detect_instrument_run
    return detect_instrument_run(store, part.exchange, part.symbol, ts_from, ts_to, params, run_id)


def parallel_depth(store: Store | str | None = None, exchange: str | None = None, symbol: str | None = None,
                   ts_from: int | None = None, ts_to: int | None = None, every_ns: int = 1_000_000_000,
                   bands=None, source: str = "auto", workers: int | None = None, scheduler: str | None = None,
                   progress: ProgressFn | None = None, client=None) -> list[TaskResult]:
    """``depth`` for every (exchange, symbol, day) matching the filters, one task each (days
    whose replay would start in the day before merged into that day's task:
    :func:`merge_replays`)."""
    store = store if isinstance(store, Store) else Store(store)
    table = "depth_bands" if source == "bands" else "book_updates"
    parts = day_partitions(store, exchange, symbol, ts_from, ts_to, table)
    if source != "bands":
        parts = merge_replays(store, parts, ts_from, ts_to)
    if source == "auto":  # band-only instruments too (those with level data replay their book)
        have = {(p.exchange, p.symbol) for p in parts}
        parts += [p for p in day_partitions(store, exchange, symbol, ts_from, ts_to, "depth_bands")
                  if (p.exchange, p.symbol) not in have]
    weights = [w or v for w, v in zip(input_rows(store, parts, "book_updates"), input_rows(store, parts, "depth_bands"))] \
        if (workers or scheduler or client is not None) else None
    return run_partitions(_depth_task, parts, (store, ts_from, ts_to, every_ns, bands, source),
                          workers, scheduler, progress, client, weights)


def parallel_detect(store: Store | str | None = None, exchange: str | None = None, symbol: str | None = None,
                    ts_from: int | None = None, ts_to: int | None = None, params=None,
                    workers: int | None = None, scheduler: str | None = None,
                    progress: ProgressFn | None = None, client=None, run_id: str | None = None) -> pl.DataFrame:
    """``detect`` for every instrument matching the filters, one task each; the events (stamped
    with ``run_id``: :mod:`forensics.runs` records the run)."""
    from forensics.detect import DetectParams
    store = store if isinstance(store, Store) else Store(store)
    from forensics.detect import instruments
    parts = [Partition(ex, sy) for ex, sy in instruments(store, exchange, symbol)]
    weights = [w or v for w, v in zip(input_rows(store, parts, "book_updates"), input_rows(store, parts, "depth_bands"))] \
        if (workers or scheduler or client is not None) else None
    res = run_partitions(_detect_task, parts, (store, ts_from, ts_to, params or DetectParams(), run_id),
                         workers, scheduler, progress, client, weights)
    frames = [r.value for r in res if r.value is not None and r.value.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _report_task(part: Partition, store: Store, out_root: str, tz: str, window_ns: int | None, report_params=None):
    from forensics.report import DEFAULT_WINDOW_NS, build_report
    out = Path(out_root) / f"{part.exchange}-{part.symbol}-{part.event_id}"
    res = build_report(store, part.exchange, part.symbol, at=part.at, tz=tz,
                       window_ns=window_ns or DEFAULT_WINDOW_NS, out_dir=out, compute=False,
                       report_params=report_params)
    return {"event_id": part.event_id, "dir": str(res.out_dir), "headline": res.json["headline"]}


def parallel_reports(store: Store | str | None = None, exchange: str | None = None, symbol: str | None = None,
                     ts_from: int | None = None, ts_to: int | None = None, out_root: str | Path = "reports",
                     tz: str = "UTC", window_ns: int | None = None, workers: int | None = None,
                     scheduler: str | None = None, progress: ProgressFn | None = None,
                     client=None, report_params=None) -> list[TaskResult]:
    """One report per stored event matching the filters, in
    ``<out_root>/<exchange>-<symbol>-<event_id>/``, one task each. Report tasks read only what
    ``detect`` stored (no depth or detection inside a task)."""
    store = store if isinstance(store, Store) else Store(store)
    parts = []
    for ex, sy in store.instruments_in("events"):
        if (exchange and ex != exchange) or (symbol and sy != symbol):
            continue
        ev = store.scan("events", ex, sy, ts_from, ts_to, ts_column="start_ts").select("event_id", "start_ts").collect()
        parts += [Partition(ex, sy, event_id=str(r["event_id"]), at=int(r["start_ts"])) for r in ev.iter_rows(named=True)]
    if not parts:
        raise ForensicsError(f"no stored events match in {store.root}; run `forensics detect` first")
    return run_partitions(_report_task, parts, (store, str(out_root), tz, window_ns, report_params), workers,
                          scheduler, progress, client)


__all__ = ["Partition", "TaskResult", "PartitionError", "day_partitions", "run_partitions", "client_for",
           "parallel_depth", "parallel_detect", "parallel_reports"]
