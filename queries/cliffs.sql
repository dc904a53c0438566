-- name: cliffs
-- description: Detected liquidity cliffs (events) with label, confidence and metrics, in time order
-- param: label (text, default null): only this label (synchronized_withdrawal, one_sided_pull, consumption, flicker, mixed)
-- param: min_confidence (float, default 0): only events at least this confident
-- param: exchange (text, default null): exchange filter (null = every exchange)
-- param: symbol (text, default null): symbol filter (null = every symbol)
-- param: from (time, default null): events ending at or after this time (ISO-8601)
-- param: to (time, default null): events starting at or before this time
-- param: evidence (bool, default false): include the evidence text
-- tables: events
-- example: forensics sql --query cliffs --param label=synchronized_withdrawal --format json
-- The metric columns after data_kind are whatever `forensics detect` recorded.
SELECT
    exchange,
    symbol,
    event_id,
    start_ts,
    end_ts,
    round((end_ts_ns - start_ts_ns) / 1e6, 3) AS duration_ms,
    sides,
    label,
    confidence,
    data_kind,
    * EXCLUDE (exchange, symbol, date, event_id, start_ts, end_ts, start_ts_ns, end_ts_ns,
               sides, label, confidence, data_kind, evidence),
    CASE WHEN $evidence THEN evidence END AS evidence
FROM events
WHERE ($label IS NULL OR label = $label)
  AND coalesce(confidence, 0) >= $min_confidence
  AND ($exchange IS NULL OR exchange = $exchange)
  AND ($symbol IS NULL OR symbol = $symbol)
  AND ($from IS NULL OR end_ts >= $from)
  AND ($to IS NULL OR start_ts <= $to)
  AND ($to IS NULL OR date <= CAST($to AS DATE))
ORDER BY start_ts, exchange, symbol, event_id
