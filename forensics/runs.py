"""Runs: the parameters each detection used, stored with its results so any event can be
reproduced exactly.

A run is one ``forensics detect`` (or a ``forensics report`` that computed events): a row in
the store's ``runs`` table (``runs/<run_id>.parquet``, one object per run, written whole:
a reader sees the row or nothing) and a ``run_id`` on every event it produced. The row holds
what a re-run needs: the parameters of every section it read (:mod:`forensics.params`, as
canonical JSON and as TOML), the window, the instruments (input partitions), the command line
and the package version::

    forensics sql "select e.event_id, r.run_id, r.params_toml from events e join runs r using (run_id)"
    forensics params --run <run_id> > p.toml     # the same parameters as a --params file
    forensics detect --params p.toml --from ... --to ...

The row is written when the run starts (so every event's ``run_id`` resolves as soon as the
event is visible) and written again, whole, when it ends (``finished_at``, ``events``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
import time
import uuid

import polars as pl

from forensics import params as fparams
from forensics.store import Store

RUNS_DIR = "runs"

#: columns of the ``runs`` table (times UTC ns; ``params`` canonical JSON of {section: {key: value}})
RUNS_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.Utf8, "command": pl.Utf8, "argv": pl.Utf8, "started_at": pl.Int64, "finished_at": pl.Int64,
    "version": pl.Utf8, "params": pl.Utf8, "params_toml": pl.Utf8, "ts_from": pl.Int64, "ts_to": pl.Int64,
    "partitions": pl.Utf8, "events": pl.Int64,
}


@dataclasses.dataclass
class Run:
    """One run's record (see the module docstring)."""

    run_id: str
    command: str
    started_at: int
    params: dict                       # {section: {key: value}}
    ts_from: int | None = None
    ts_to: int | None = None
    partitions: list[str] = dataclasses.field(default_factory=list)   # "exchange/symbol"
    argv: list[str] = dataclasses.field(default_factory=list)
    finished_at: int | None = None
    events: int | None = None

    def row(self) -> dict:
        from forensics import __version__
        return {"run_id": self.run_id, "command": self.command, "argv": json.dumps(self.argv),
                "started_at": self.started_at, "finished_at": self.finished_at, "version": __version__,
                "params": fparams.to_json(self.params),
                "params_toml": fparams.to_toml(self.params, f"run {self.run_id} ({self.command})"),
                "ts_from": self.ts_from, "ts_to": self.ts_to, "partitions": json.dumps(self.partitions),
                "events": self.events}


def new_run(command: str, sections: dict[str, dict], ts_from: int | None = None, ts_to: int | None = None,
            argv: list[str] | None = None) -> Run:
    """A run starting now; its id sorts by start time (``20261201T153412.123Z-1a2b3c``)."""
    now = time.time_ns()
    stamp = dt.datetime.fromtimestamp(now / 1e9, dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")[:-3]
    return Run(run_id=f"{stamp}Z-{uuid.uuid4().hex[:6]}", command=command, started_at=now, params=sections,
               ts_from=ts_from, ts_to=ts_to, argv=list(sys.argv[1:] if argv is None else argv))


def record(store: Store, run: Run) -> None:
    """Write (or rewrite) the run's row, atomically (one object, replaced whole)."""
    df = pl.DataFrame([run.row()], schema=RUNS_SCHEMA)
    store.location.write_parquet(df, f"{RUNS_DIR}/{run.run_id}.parquet")


def run_rels(store: Store) -> list[str]:
    return [f"{RUNS_DIR}/{n}" for n in store.location.listdir(RUNS_DIR) if n.endswith(".parquet")
            and not n.startswith(".")]


def runs(store: Store) -> pl.DataFrame:
    """Every run row, oldest first."""
    rels = run_rels(store)
    if not rels:
        return pl.DataFrame(schema=RUNS_SCHEMA)
    df = pl.concat([store.location.read_parquet(r) for r in rels], how="diagonal_relaxed")
    return df.sort("started_at")


def get_run(store: Store, run_id: str) -> dict:
    """One run's row; a clear error naming the known runs when there is none."""
    from forensics.errors import ForensicsError
    try:
        return store.location.read_parquet(f"{RUNS_DIR}/{run_id}.parquet").row(0, named=True)
    except (FileNotFoundError, OSError):
        known = runs(store)["run_id"].to_list()
        raise ForensicsError(f"no run {run_id!r} in {store.root}"
                             + (f"; latest: {', '.join(known[-3:])}" if known else "; no runs recorded yet")) from None


def run_sections(row: dict) -> dict[str, dict]:
    """The typed parameter sections of a stored run row."""
    return fparams.from_json(row["params"])


def runs_of(store: Store, run_ids) -> list[dict]:
    """The rows of ``run_ids`` that exist (params decoded), in the order given."""
    out = []
    for rid in dict.fromkeys(r for r in run_ids if r):
        try:
            row = store.location.read_parquet(f"{RUNS_DIR}/{rid}.parquet").row(0, named=True)
        except (FileNotFoundError, OSError):
            continue
        out.append({"run_id": rid, "command": row["command"], "started_at": row["started_at"],
                    "version": row["version"], "ts_from": row["ts_from"], "ts_to": row["ts_to"],
                    "partitions": json.loads(row["partitions"] or "[]"), "params": json.loads(row["params"])})
    return out


# ---- detection that records its run ---------------------------------------------------------------

def stamp(events: pl.DataFrame, run_id: str | None) -> pl.DataFrame:
    """The events with ``run_id`` set (a no-op without a run)."""
    if run_id is None:
        return events
    return events.with_columns(pl.lit(run_id, pl.Utf8).alias("run_id"))


def detect_instrument_run(store: Store, ex: str, sy: str, ts_from: int | None, ts_to: int | None,
                          params, run_id: str | None, write: bool = True) -> pl.DataFrame:
    """:func:`forensics.detect.detect` of one instrument whose events carry ``run_id``, stored
    (upserted over the window, as detect does) under one consistent read of the instrument."""
    from forensics.detect import detect, write_events
    with store.reading():
        ev = stamp(detect(store, ex, sy, ts_from, ts_to, params, write=False), run_id)
        if write:
            write_events(store, ex, sy, ev.drop([c for c in ("exchange", "symbol") if c in ev.columns]),
                         ts_from, ts_to)
    return ev


def detect_recorded(store: Store, exchange: str | None = None, symbol: str | None = None,
                    ts_from: int | None = None, ts_to: int | None = None, params=None, *,
                    command: str = "detect", workers: int | None = None, scheduler: str | None = None,
                    progress=None, sections: dict | None = None, argv: list[str] | None = None
                    ) -> tuple[pl.DataFrame, Run]:
    """Detect (serially, or partition-parallel with ``workers``/``scheduler``) and record the
    run: its row first, every event stamped with its ``run_id``, the row completed at the end.
    ``sections`` are the parameter sections to record (default: those of ``params``)."""
    from forensics.detect import DetectParams, instruments
    params = params or DetectParams()
    pairs = instruments(store, exchange, symbol)
    run = new_run(command, sections or fparams.flatten(params, "detect"), ts_from, ts_to, argv)
    run.partitions = [f"{ex}/{sy}" for ex, sy in pairs]
    record(store, run)
    if workers is not None or scheduler:
        from forensics.parallel import parallel_detect
        ev = parallel_detect(store, exchange, symbol, ts_from, ts_to, params, workers=workers, scheduler=scheduler,
                             progress=progress, run_id=run.run_id)
    else:
        frames = [detect_instrument_run(store, ex, sy, ts_from, ts_to, params, run.run_id) for ex, sy in pairs]
        ev = pl.concat(frames, how="vertical") if frames else pl.DataFrame()
    run.finished_at, run.events = time.time_ns(), ev.height
    record(store, run)
    return ev, run


def rerun(store: Store, run_id: str, write: bool = False) -> pl.DataFrame:
    """Detect again with a stored run's parameters, window and instruments (``write=False``:
    nothing stored); the events equal the run's, row for row."""
    row = get_run(store, run_id)
    p = fparams.build(run_sections(row), "detect")
    frames = []
    for part in json.loads(row["partitions"] or "[]"):
        ex, sy = part.split("/", 1)
        frames.append(detect_instrument_run(store, ex, sy, row["ts_from"], row["ts_to"], p, run_id, write=write))
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame()


__all__ = ["Run", "RUNS_SCHEMA", "new_run", "record", "runs", "get_run", "run_sections", "runs_of",
           "detect_recorded", "rerun", "stamp"]


# ---- the SQL view -------------------------------------------------------------------------------

_TIME_COLS = ("started_at", "finished_at", "ts_from", "ts_to")
_DUCK = {pl.Utf8: "VARCHAR", pl.Int64: "BIGINT"}


def create_runs_view(con, store: Store, registered: bool) -> None:
    """View ``runs`` on a DuckDB connection (called by :func:`forensics.store.connect`): times as
    UTC ``TIMESTAMP_NS`` with the raw ns in ``<col>_ns``. ``registered``: read the rows here and
    register them as an Arrow table (remote stores, locked sessions), else a read_parquet glob."""
    times = ", ".join(f"make_timestamp_ns({c}) AS {c}" for c in _TIME_COLS)
    raw = ", ".join(f"{c} AS {c}_ns" for c in _TIME_COLS)
    rels = run_rels(store)
    if not rels:
        cols = ", ".join(f"NULL::{'TIMESTAMP_NS' if c in _TIME_COLS else _DUCK[t]} AS {c}" for c, t in RUNS_SCHEMA.items())
        cols += ", " + ", ".join(f"NULL::BIGINT AS {c}_ns" for c in _TIME_COLS)
        con.execute(f"CREATE OR REPLACE VIEW runs AS SELECT {cols} WHERE false")
        return
    if registered or store.remote:
        con.register("__store_runs", runs(store).to_arrow())
        src = "__store_runs"
    else:
        import glob
        from pathlib import Path
        pattern = (glob.escape(str(Path(store.uri(RUNS_DIR)).resolve())) + "/*.parquet").replace("'", "''")
        src = f"read_parquet('{pattern}', union_by_name=true)"
    con.execute(f"CREATE OR REPLACE VIEW runs AS SELECT * REPLACE ({times}), {raw} FROM {src}")
