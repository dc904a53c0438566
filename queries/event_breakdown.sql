-- name: event_breakdown
-- description: One event's window per side: size added, traded, cancelled, implied and the prints that hit it
-- param: event_id (text): the event (see the cliffs query)
-- tables: events level_changes
-- example: forensics sql --query event_breakdown --param event_id=binance-futures-BTCUSDT-20251010T211300
-- The window is [start_ts, end_ts] of the event. prints/print_qty are trades whose aggressor
-- hit that side (sell -> bid, buy -> ask). cancelled_share = cancelled / (traded + cancelled).
WITH e AS (
    SELECT exchange, symbol, event_id, start_ts, end_ts, label
    FROM events
    WHERE event_id = $event_id
), lc AS (
    SELECT l.side, count(*) AS updates, sum(l.added) AS added, sum(l.traded) AS traded,
           sum(l.cancelled) AS cancelled, sum(l.implied) AS implied
    FROM level_changes l
    JOIN e ON l.exchange = e.exchange AND l.symbol = e.symbol
          AND l.ts BETWEEN e.start_ts AND e.end_ts
          AND l.date BETWEEN CAST(e.start_ts AS DATE) AND CAST(e.end_ts AS DATE)
    GROUP BY l.side
), tr AS (
    SELECT CASE t.aggressor WHEN 'sell' THEN 'bid' WHEN 'buy' THEN 'ask' END AS side,
           count(*) AS prints, sum(t.size) AS print_qty
    FROM trades t
    JOIN e ON t.exchange = e.exchange AND t.symbol = e.symbol
          AND t.ts BETWEEN e.start_ts AND e.end_ts
          AND t.date BETWEEN CAST(e.start_ts AS DATE) AND CAST(e.end_ts AS DATE)
    GROUP BY 1
)
SELECT
    e.event_id,
    e.exchange,
    e.symbol,
    e.label,
    e.start_ts,
    e.end_ts,
    s.side,
    coalesce(lc.updates, 0) AS updates,
    lc.added,
    lc.traded,
    lc.cancelled,
    lc.implied,
    round(lc.cancelled / nullif(lc.traded + lc.cancelled, 0), 4) AS cancelled_share,
    coalesce(tr.prints, 0) AS prints,
    tr.print_qty
FROM e
CROSS JOIN (VALUES ('bid', 1), ('ask', 2)) s(side, o)
LEFT JOIN lc ON lc.side = s.side
LEFT JOIN tr ON tr.side = s.side
ORDER BY e.event_id, s.o
