-- name: cancel_to_trade
-- description: Cancel-to-trade ratio per instrument and side (by size and by number of updates)
-- param: exchange (text, default null): exchange filter (null = every exchange)
-- param: symbol (text, default null): symbol filter (null = every symbol)
-- param: from (time, default null): first update time, ISO-8601 (without offset: read in --tz)
-- param: to (time, default null): last update time (inclusive)
-- tables: level_changes
-- example: forensics sql --query cancel_to_trade --param from=2025-10-10T21:00 --param to=2025-10-10T22:00
-- side 'both' is the instrument total. cancel_to_trade_qty = cancelled size / traded size;
-- cancel_to_trade_count = updates that cancelled / updates that traded (null when nothing traded).
SELECT
    exchange,
    symbol,
    CASE WHEN grouping(side) = 1 THEN 'both' ELSE side END              AS side,
    sum(cancelled)                                                      AS cancelled_qty,
    sum(traded)                                                         AS traded_qty,
    round(sum(cancelled) / nullif(sum(traded), 0), 4)                   AS cancel_to_trade_qty,
    count(*) FILTER (WHERE cancelled > 0)                               AS cancel_updates,
    count(*) FILTER (WHERE traded > 0)                                  AS trade_updates,
    round(count(*) FILTER (WHERE cancelled > 0)
          / nullif(count(*) FILTER (WHERE traded > 0), 0), 4)           AS cancel_to_trade_count,
    sum(added)                                                          AS added_qty,
    count(*)                                                            AS updates
FROM level_changes
WHERE ($exchange IS NULL OR exchange = $exchange)
  AND ($symbol IS NULL OR symbol = $symbol)
  AND ($from IS NULL OR ts >= $from)
  AND ($from IS NULL OR date >= CAST($from AS DATE))
  AND ($to IS NULL OR ts <= $to)
  AND ($to IS NULL OR date <= CAST($to AS DATE))
GROUP BY GROUPING SETS ((exchange, symbol, side), (exchange, symbol))
ORDER BY exchange, symbol, grouping(side), side
