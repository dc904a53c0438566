-- name: cross_venue_lag
-- description: Cross-venue incidents: per venue, its lag to the first venue with the clock uncertainty, order, depth removed
-- param: asset (text, default null): underlying asset, e.g. BTC (null = every asset)
-- param: incident_id (text, default null): one incident (null = every incident)
-- param: relation (text, default null): first, simultaneous, later or none (null = all)
-- param: from (time, default null): rows whose start (the venue event's start_ts) is at or after this time, ISO-8601
-- param: to (time, default null): ... at or before this time (inclusive)
-- tables: incidents
-- example: forensics sql --query cross_venue_lag --param asset=BTC
-- example: forensics sql --query cross_venue_lag --param relation=later --format csv
-- Answers "where did it start and how fast did it spread": one row per incident x venue in onset
-- order. onset is on the recorder's common clock; lag_ms = onset - the first venue's onset, and a
-- lag no larger than lag_uncertainty_ms is 'simultaneous' (the order cannot be told). 'none' rows
-- are venues of the asset with data covering the incident and no event. removed_* are in base
-- units / quote notional within band_pct of mid (contracts converted); removed_share = the
-- venue's part of all depth removed in the incident (quote).
SELECT
    incident_id,
    asset,
    exchange,
    symbol,
    relation,
    "first",
    label,
    onset_ts                                   AS onset,
    round(lag_ms, 1)                           AS lag_ms,
    round(lag_uncertainty_ms, 1)               AS lag_uncertainty_ms,
    round(batch_ms, 1)                         AS batch_ms,
    round(clock_ms, 1)                         AS clock_ms,
    round(skew_ms, 1)                          AS skew_ms,
    round(onset_ms, 1)                         AS onset_spread_ms,
    data_kind,
    band_pct,
    round(removed_bid_base, 6)                 AS removed_bid_base,
    round(removed_ask_base, 6)                 AS removed_ask_base,
    round(removed_base, 6)                     AS removed_base,
    round(removed_quote, 2)                    AS removed_quote,
    round(removed_share, 4)                    AS removed_share,
    round(traded_share, 4)                     AS traded_share,
    event_id
FROM incidents
WHERE ($asset IS NULL OR asset = upper($asset))
  AND ($incident_id IS NULL OR incident_id = $incident_id)
  AND ($relation IS NULL OR relation = $relation)
  AND ($from IS NULL OR start_ts >= $from)
  AND ($to IS NULL OR start_ts <= $to)
ORDER BY start_ts, incident_id, onset_ts NULLS LAST, exchange, symbol
