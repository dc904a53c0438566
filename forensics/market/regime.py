"""The regime before an event: the article's four (stable / range / trend / crisis).

The article reads a maker's risk by two volatilities: short-term (intraday: the noise a
quote faces) and long-term (interday: the move an inventory faces). ``queries/regime.sql``
measures both on the window just before the event (default: 1-min returns over the last
hour, and 10-min returns sampled every minute) and the same two on the store's history
before that window; each is "high" when it is at least ``high_ratio`` (1.5, short) or
``long_high_ratio`` (2.0, long: fewer independent returns, a noisier estimate) times its own
history:

=============  ==============  ==========
short (1 min)  long (10 min)   regime
=============  ==============  ==========
low            low             stable
high           low             range
low            high            trend
high           high            crisis
=============  ==============  ==========

With less history than ``min_history`` before the recent window (or a recent window less
than 80% covered) there is no regime: :func:`regime` says what is missing ("insufficient
history: needs 60 min before the recent hour, store has 22 min") instead of guessing. With
no trades it reads the book_top mid instead (``source='mid'``).
"""
from __future__ import annotations

from forensics.market import QueryRun, default_of, dur_param, iso_param, run_named
from forensics.timeutil import NS_PER_S

QUERY = "regime"
REGIMES = ("stable", "range", "trend", "crisis")


def _minutes(ns) -> str:
    ns = int(ns or 0)
    if ns >= 86400 * NS_PER_S and ns % (86400 * NS_PER_S) == 0:
        return f"{ns // (86400 * NS_PER_S)} d"
    return f"{ns / (60 * NS_PER_S):.0f} min"


def _has_trades(con, exchange: str, symbol: str, at_ns: int, span_ns: int) -> bool:
    row = con.execute(
        "SELECT count(*) FROM trades WHERE exchange = ? AND symbol = ? AND ts_ns < ? AND ts_ns >= ?",
        [exchange, symbol, at_ns, at_ns - span_ns]).fetchall()[0]
    return bool(row and row[0])


def regime(con, exchange: str, symbol: str, at_ns: int, *, recent_ns: int | None = None,
           long_ret_ns: int | None = None, min_history_ns: int | None = None,
           source: str | None = None) -> dict:
    """The regime before ``at_ns`` (UTC ns) with the values and thresholds used.

    Returns ``{"regime": 'stable'|'range'|'trend'|'crisis'|None, "reason": None or why not,
    "values": {...}, "thresholds": {...}, "source": 'trades'|'mid', "query": QueryRun}``."""
    params = {"at": iso_param(at_ns), "exchange": exchange, "symbol": symbol}
    if recent_ns:
        params["recent"] = dur_param(recent_ns)
    if long_ret_ns:
        params["long_ret"] = dur_param(long_ret_ns)
    if min_history_ns:
        params["min_history"] = dur_param(min_history_ns)
    recent = recent_ns or default_of(QUERY, "recent")
    if source is None:
        source = "trades" if _has_trades(con, exchange, symbol, at_ns, recent) else "mid"
    params["source"] = source
    run: QueryRun = run_named(con, QUERY, params)
    row = run.frame.row(0, named=True) if run.frame.height else {}
    values = {k: row.get(k) for k in ("short_vol_recent_bps", "short_vol_history_bps", "short_ratio",
                                      "long_vol_recent_bps", "long_vol_history_bps", "long_ratio",
                                      "n_short_recent", "n_short_history", "n_long_recent", "n_long_history",
                                      "history_ns", "recent_covered_ns")}
    thresholds = {"high_ratio": float(row["high_ratio"]) if row.get("high_ratio") is not None else None,
                  "long_high_ratio": float(row["long_high_ratio"]) if row.get("long_high_ratio") is not None else None, "min_history_ns": row.get("min_history_ns"),
                  "recent_ns": row.get("recent_ns"),
                  "short_ret": params.get("short_ret", _default("short_ret")),
                  "long_ret": params.get("long_ret", _default("long_ret"))}
    reason = None
    label = row.get("regime")
    if label is None:
        need_h, have_h = row.get("min_history_ns") or 0, row.get("history_ns") or 0
        rec, cov = row.get("recent_ns") or 0, row.get("recent_covered_ns") or 0
        if not (row.get("n_short_recent") or 0) and not have_h:
            reason = f"no {'trades' if source == 'trades' else 'top of book'} before the event: no prices to read a regime from"
        elif have_h < need_h:
            reason = (f"insufficient history: needs {_minutes(rec + need_h)} of prices before the event "
                      f"(the recent {_minutes(rec)} + {_minutes(need_h)} of reference history), "
                      f"store has {_minutes(min(cov, rec) + have_h)}")
        elif cov < 0.8 * rec:
            reason = (f"insufficient history: needs {_minutes(0.8 * rec)} of the recent {_minutes(rec)} "
                      f"covered, store has {_minutes(cov)}")
        else:
            reason = "insufficient history: no long-horizon return fits in the history or the recent window"
    return {"regime": label, "reason": reason, "short_high": row.get("short_high"), "long_high": row.get("long_high"),
            "values": values, "thresholds": thresholds, "source": source, "query": run}


def _default(name: str) -> str:
    from forensics.market import _query
    return _query(QUERY).params[name].default_text
