"""Reading the market around an event (issue 18): the rest of the article's reading.

Four metric families, each a named query in ``queries/`` (the computation, declarative SQL
over the store's views) plus a module here that runs it and adds what SQL cannot say cleanly
(the verdicts, first-crossing times, half-lives, the "insufficient history" wording):

* :mod:`forensics.market.regime` -- ``queries/regime.sql``: the article's four regimes
  (stable / range / trend / crisis) from short- vs long-horizon volatility, each against its
  own history in the store;
* :mod:`forensics.market.precursors` -- ``queries/precursors.sql``: spread, touch depth,
  quote flicker, cancel-to-trade, OFI and aggressive-flow imbalance per 10 s with z-scores,
  and which of them went beyond 3 sigma before the event, and when first;
* :mod:`forensics.market.vacuum` -- ``queries/vacuum_curve.sql``: impact per unit volume and
  Kyle's lambda per minute from 30 min before to 60 min after, the vacuum's length, depth
  back to 50% / 90% of baseline, spread and depth recovery half-lives;
* :mod:`forensics.market.maker_stress` -- ``queries/quote_life.sql`` and
  ``queries/maker_reposting.sql``: quote life before / during / after, the share of cancelled
  size re-posted further from mid (widening) vs removed (withdrawal), and the article's
  "widen first, then pull" sequence checked against the data.

Every figure these functions return comes with the exact SQL that produced it
(:class:`QueryRun`: the named query with its parameters substituted as literals, runnable
as-is with ``forensics sql``), which the report keeps next to the number.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl

from forensics.timeutil import NS_PER_MS, NS_PER_S

__all__ = ["QueryRun", "run_named", "default_of", "iso_param", "dur_param", "analyse"]


@dataclass
class QueryRun:
    """One named query as run: its name, text parameters, the literal SQL and the result."""

    name: str
    params: dict[str, str]
    sql: str
    frame: pl.DataFrame = field(repr=False)

    @property
    def command(self) -> str:
        """The ``forensics sql`` command line that reruns it."""
        args = " ".join(f"--param {k}={v}" for k, v in self.params.items())
        return f"forensics sql --query {self.name} {args}".strip()


def iso_param(ns: int) -> str:
    """A UTC ns time as a ``time`` parameter (microseconds: what the parameter binds)."""
    t = dt.datetime.fromtimestamp(ns // NS_PER_S, tz=dt.timezone.utc)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{(ns % NS_PER_S) // 1000:06d}Z"


def dur_param(ns: int) -> str:
    """A duration in ns as a ``duration`` parameter (exact)."""
    ns = int(ns)
    for unit, k in (("m", 60 * NS_PER_S), ("s", NS_PER_S), ("ms", NS_PER_MS), ("us", 1000)):
        if ns % k == 0:
            return f"{ns // k}{unit}"
    return f"{ns}ns"


def _literal(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return f"TIMESTAMP '{v:%Y-%m-%d %H:%M:%S.%f}'"
    if isinstance(v, dt.date):
        return f"DATE '{v.isoformat()}'"
    if isinstance(v, (int, Decimal)):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def _query(name: str):
    from forensics.sql import load_query
    return load_query(name)


def default_of(query: str, param: str):
    """A named query's default for one parameter, typed (the threshold's one home)."""
    q = _query(query)
    p = q.params[param]
    return p.parse(p.default_text)


def render(name: str, params: dict[str, str]) -> str:
    """The named query with every ``$param`` replaced by its literal value."""
    q = _query(name)
    bound = q.bind({k: str(v) for k, v in params.items()})
    body = q.sql
    # keep the header comment (what the query is), substitute parameters in the statement
    return re.sub(r"\$([A-Za-z_]\w*)\b", lambda m: _literal(bound[m.group(1)]), body).strip()


def run_named(con, name: str, params: dict[str, str]) -> QueryRun:
    """Run ``queries/<name>.sql`` with text parameters on a store connection."""
    import duckdb

    from forensics.sql import _arrow_compatible
    sql = render(name, params)
    try:  # no progress bars from a report run in a terminal (a locked session has it off already)
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass
    frame = pl.from_arrow(_arrow_compatible(con.sql(sql).to_arrow_reader(65_536).read_all()))
    return QueryRun(name, {k: str(v) for k, v in params.items()}, sql, frame)


def analyse(store, exchange: str, symbol: str, start_ns: int, end_ns: int | None = None, con=None) -> dict:
    """All four readings around one event (start, optional end, UTC ns) as one dict."""
    from forensics.market import maker_stress, precursors, regime, vacuum
    from forensics.store import Store
    own = con is None
    if own:
        store = store if isinstance(store, Store) else Store(store)
        con = store.connect()
    try:
        reg = regime.regime(con, exchange, symbol, start_ns)
        pre = precursors.precursors(con, exchange, symbol, start_ns)
        vac = vacuum.vacuum_curve(con, exchange, symbol, start_ns, end_ns)
        mk = maker_stress.maker_stress(con, exchange, symbol, start_ns, end_ns, precursor=pre)
    finally:
        if own:
            con.close()
    return {"regime": reg, "precursors": pre, "vacuum": vac, "maker_stress": mk}
