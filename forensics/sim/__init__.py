"""Market simulator with ground truth: synthetic Binance USD-M futures data + labels.

A small, deterministic agent-based limit-order book. Several market makers quote layered
bids and asks around their own Avellaneda-Stoikov reservation price
``r = s - q * gamma * sigma^2 * H`` (``s`` fair value, ``q`` inventory in lots hedged away
with a half-life, ``H`` a fixed horizon), widen their half-spread with realised volatility
(``max(delta0, 0.75 sigma sqrt(tau))``), stop quoting a side at their inventory limit, and
re-quote on a timer and whenever fair value moves (each order is kept while within a
tolerance of its target, else cancelled and replaced: most resting orders end cancelled,
not filled). After one of its orders fills, a maker cools down for ``refill_ms``: it places
nothing and only cancels quotes priced through its reservation price, so a persistent
taker eats the ladder level by level. Noise takers send market orders of random size on
both sides; fair value is an exogenous random walk plus the permanent impact of trades (a
small per-lot impact plus a share of how far each market order walked the book, so a thin
book moves further per unit volume). Market orders match with price-time priority and walk
the levels (one fill per resting order, one aggTrade per price level). Scripted incidents
(see :func:`parse_incident`) change the makers' behaviour or add flow:
``withdrawal`` (every maker pulls both sides to one small, wide quote within ~300 ms, a
decaying sell cascade hits the thin book 0.8 s later, makers return in steps with wide
spreads over ~90 s), ``consumption`` (a taker sends ~0.6 BTC market orders every 0.6-1.5 s),
``one_sided_pull`` (the same pull on one side, held, then a gradual return), ``flicker``
(30x-size orders 2-3.5 ladder depths from fair value, each resting 0.3-1.5 s) and ``calm``
(nothing: a labelled negative window).

Units (internal): time in ms on the engine axis (``0`` = start of a warm-up that is not
published), prices in integer **ticks** (absolute: ``price = ticks * tick``), sizes in
integer **lots** (``qty = lots * lot``), timestamps in the outputs in UTC **ns** unless a
field is named after Binance's ms fields. Everything random comes from numpy generators
seeded by ``seed`` (independent ``SeedSequence`` streams for fair value, takers, the engine,
the publication, and one per incident); the same config gives byte-identical files. Fair
value is drawn every 10 ms; the engine steps every 1 ms. A run is at most ``MAX_MINUTES``
(6 h): peak memory is ~0.4 GB per simulated hour, a 30-minute run takes about a second.

Outputs of :func:`simulate` in ``out_dir`` (``<date>`` = UTC date of the start):

``<SYMBOL>-depth-capture-<date>.jsonl.gz``
    hftbacktest-collector style: gzipped lines ``<local receive time ns> <json>`` in
    local-receive order. Combined-stream depth events
    ``{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E","T","s","U","u","pu","b","a"}}``
    every 100 ms batch that changed the book (net change per level in the batch, absolute
    new quantity as fixed-decimal strings, ``"0.000"`` deletes the level), aggTrade events
    ``{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E","a","s","p","q","f","l","T","m"}}``
    (``m`` true = buyer is maker = the aggressor sold) and one REST snapshot line
    ``{"lastUpdateId","E","T","bids","asks"}``. The snapshot is fetched after the stream
    started: ``stale_events`` (or a few more) depth events with ``u < lastUpdateId`` come
    before it (to be dropped), the next one straddles ``U <= lastUpdateId <= u``; that
    straddling event lists every level *touched* in its batch (Binance semantics, needed to
    be exact from a mid-batch snapshot). ``U`` is the previous event's ``u + 1`` and ``pu``
    the previous event's ``u``; update ids count the engine's individual book operations.
    Exchange times are ms: a depth event's E is its batch end + 0-2 ms and T the time of the
    batch's last book operation; an aggTrade's T is the match time and E = T + 0-1 ms. The
    local time is E + a per-stream latency (a few ms, rarely tens of ms, monotone per
    stream), so depth and trade lines interleave out of exchange-time order.
    Publication is full depth: every level change is published and the snapshot holds the
    whole book (the makers' ladders keep it far below Binance's 1000-level snapshot limit;
    this is asserted), so the replayed book equals the engine's book exactly.
``<SYMBOL>-aggTrades-<date>.csv``
    Binance public daily aggTrades CSV, header
    ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker``
    (ms, ``true``/``false``), the same aggregated trades as the capture's aggTrade events
    (one per taker order and price level; ``f..l`` are the individual maker fills).
``truth_level_decreases.parquet``
    One row per *published* level decrease (depth events after the straddling one, i.e.
    ``U > lastUpdateId``; a row is a level whose published quantity fell in that event):
    ``ts`` (Int64, UTC ns, the event's E), ``update_id`` (the event's u), ``batch`` (Int32,
    100 ms batch index from the start), ``side`` ('bid'/'ask'), ``price_ticks`` (Int64),
    ``price`` (decimal string as published), ``prev_lots``, ``new_lots`` (published quantity
    before/after, lots), ``decrease_lots`` = prev - new (> 0), ``traded_lots`` +
    ``cancelled_lots`` = ``decrease_lots`` (the truth, below), ``gross_added_lots``,
    ``gross_traded_lots``, ``gross_cancelled_lots`` (all engine operations at that level in
    the batch: prev + added - traded - cancelled = new), ``incident_id`` (Int32, null
    outside incidents) and ``incident_type``: the incident whose
    ``[start_ts_ns, window_end_ts_ns]`` contains ``ts``.

    **Truth.** Within one batch adds and cancels at a level can net out, so the published
    decrease D = prev - new is split as ``traded_lots = min(gross_traded, D)`` and
    ``cancelled_lots = D - traded_lots``: the decrease is explained first by fills at that
    price in that batch (which appear in the trade stream at that price), the rest by
    cancellations net of additions (``cancelled_lots <= gross_cancelled`` always). An
    attribution algorithm is scored per row (or summed per side/window) on ``traded_lots``
    vs ``cancelled_lots``. Levels that traded but did not fall net are not rows.
``labels.json``
    ``schema_version``, ``generator``, ``exchange`` ('binance-futures'), ``symbol``,
    ``date``, ``seed``, ``tick``, ``lot`` (decimal strings), ``price_decimals``,
    ``qty_decimals``, ``batch_ms``, ``start_ts_ns``, ``end_ts_ns``, ``snapshot``
    (``last_update_id``, ``ts_ns``, ``stale_events``), ``files``, ``counts``, ``config``
    (every :class:`SimConfig` field) and ``incidents``: a list of ``{id, type, spec,
    expected_label, sides ('bid'/'ask'/'both'), aggressor ('sell'/'buy'/null), start_ts_ns,
    end_ts_ns, window_end_ts_ns, phases: {name: [start_ns, end_ns]}, ...}``. ``start..end``
    is the scripted removal (withdrawal/one-sided pull: first to last maker pull; consumption:
    first to last child order; flicker/calm: the episode), ``window_end_ts_ns`` the end of
    everything the incident affects (recovery included). Flicker incidents also list
    ``orders`` (side, price, price_ticks, lots, place_ts_ns, cancel_ts_ns); consumption
    incidents list the taker's child ``orders`` (ts_ns, lots) and ``total_lots``.
``README.md``
    This description (:func:`describe_outputs`).

API: :func:`build_config` / :class:`SimConfig`, :func:`parse_incident`,
:func:`simulate` (engine + publication), :func:`run_engine` (in memory),
:func:`engine_books` (the engine's own book at every batch end), :func:`write_sample_data`.
Modules along the data flow: :mod:`~forensics.sim.config` (units, makers, incidents, the spec
parser), :mod:`~forensics.sim.scenario` (every random schedule, drawn backgrounds),
:mod:`~forensics.sim.engine` (the compiled book), :mod:`~forensics.sim.publish` (Binance
formats + truth), :mod:`~forensics.sim.book_depth` (the bookDepth CSV),
:mod:`~forensics.sim.evaluate` (``forensics eval``); ``forensics.simulate`` and
``forensics.evaluate`` re-export the names they always had.

Optional output: a Binance ``bookDepth`` CSV computed from the true book (band-only data for
the same market; :data:`BOOK_DEPTH_DOC`, ``SimConfig.book_depth_every_s``).
"""

from __future__ import annotations

from forensics.sim.config import (
    AID0, ASK, BATCH_MS, BID, BINANCE_BOOK_DEPTH_BANDS, BOOK_DEPTH_FIELDS, CRISIS_VOL, DEFAULT_DURATION_S,
    DEFAULT_START, EXO_MS, EXPECTED_LABEL, INCIDENT_KINDS, INCIDENT_OPTIONS, K_ADD, K_CANCEL, K_TRADE,
    MAX_MINUTES, NS_PER_MS, PRECURSOR_PRESENCE, PRECURSOR_SPREAD, RANGE_REVERT_S, RANGE_VOL, REGIMES,
    SNAPSHOT_LIMIT, TID0, TREND_DRIFT_SIGMAS, UID0, Incident, MakerSpec, SimConfig, build_config,
    default_makers, parse_duration_s, parse_incident, parse_incidents, parse_time_ns, validate)
from forensics.sim.scenario import (
    INSTRUMENTS, SAMPLE_START, VOL_REGIMES, Schedules, compile_scenario, deep_makers, draw_background,
    draw_incident, sample_config)
from forensics.sim.engine import (
    EngineOutput, engine_books, run_engine)
from forensics.sim.book_depth import (
    BOOK_DEPTH_DOC, book_depth_frame, book_depth_times_s)
from forensics.sim.publish import (
    SimResult, describe_outputs, output_names, simulate, write_sample_data)

__all__ = [
    "AID0", "ASK", "BATCH_MS", "BID", "BINANCE_BOOK_DEPTH_BANDS", "BOOK_DEPTH_FIELDS", "CRISIS_VOL",
    "DEFAULT_DURATION_S", "DEFAULT_START", "EXO_MS", "EXPECTED_LABEL", "INCIDENT_KINDS", "INCIDENT_OPTIONS",
    "K_ADD", "K_CANCEL", "K_TRADE", "MAX_MINUTES", "NS_PER_MS", "PRECURSOR_PRESENCE", "PRECURSOR_SPREAD",
    "RANGE_REVERT_S", "RANGE_VOL", "REGIMES", "SNAPSHOT_LIMIT", "TID0", "TREND_DRIFT_SIGMAS", "UID0",
    "Incident", "MakerSpec", "SimConfig", "build_config", "default_makers", "parse_duration_s",
    "parse_incident", "parse_incidents", "parse_time_ns", "validate", "INSTRUMENTS", "SAMPLE_START",
    "VOL_REGIMES", "Schedules", "compile_scenario", "deep_makers", "draw_background", "draw_incident",
    "sample_config", "EngineOutput", "engine_books", "run_engine", "BOOK_DEPTH_DOC", "book_depth_frame",
    "book_depth_times_s", "SimResult", "describe_outputs", "output_names", "simulate",
    "write_sample_data"]
