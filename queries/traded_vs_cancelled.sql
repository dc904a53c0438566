-- name: traded_vs_cancelled
-- description: Per time bucket and side: size added, traded, cancelled and implied (level_changes)
-- param: bucket (duration, default 1m): bucket width (100ms, 1s, 1m, 1h ...)
-- param: side (text, default null): bid or ask (null = both, one row each)
-- param: exchange (text, default null): exchange filter (null = every exchange)
-- param: symbol (text, default null): symbol filter (null = every symbol)
-- param: from (time, default null): first update time, ISO-8601 (without offset: read in --tz)
-- param: to (time, default null): last update time (inclusive)
-- tables: level_changes
-- example: forensics sql --query traded_vs_cancelled --param from=2025-10-10T21:00 --param to=2025-10-10T21:30
-- Sizes in base units (exact); *_notional = size x level price (quote units);
-- cancelled_share = cancelled / (traded + cancelled), null when nothing was removed.
SELECT
    exchange,
    symbol,
    make_timestamp_ns(ts_ns // $bucket * $bucket)  AS bucket,
    side,
    count(*)                                       AS updates,
    sum(added)                                     AS added,
    sum(traded)                                    AS traded,
    sum(cancelled)                                 AS cancelled,
    sum(implied)                                   AS implied,
    sum(traded * price)                            AS traded_notional,
    sum(cancelled * price)                         AS cancelled_notional,
    round(sum(cancelled) / nullif(sum(traded) + sum(cancelled), 0), 4) AS cancelled_share
FROM level_changes
WHERE ($side IS NULL OR side = $side)
  AND ($exchange IS NULL OR exchange = $exchange)
  AND ($symbol IS NULL OR symbol = $symbol)
  AND ($from IS NULL OR ts >= $from)
  AND ($from IS NULL OR date >= CAST($from AS DATE))
  AND ($to IS NULL OR ts <= $to)
  AND ($to IS NULL OR date <= CAST($to AS DATE))
GROUP BY ALL
ORDER BY exchange, symbol, bucket, side
