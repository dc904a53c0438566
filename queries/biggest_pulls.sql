-- name: biggest_pulls
-- description: Largest cancellations (level pulls) by notional, with distance from mid (level_changes + book_top)
-- param: limit (int, default 20): how many
-- param: side (text, default null): bid or ask (null = both)
-- param: exchange (text, default null): exchange filter (null = every exchange)
-- param: symbol (text, default null): symbol filter (null = every symbol)
-- param: from (time, default null): first update time, ISO-8601 (without offset: read in --tz)
-- param: to (time, default null): last update time (inclusive)
-- tables: level_changes
-- example: forensics sql --query biggest_pulls --param limit=50 --param from=2025-10-10T21:00
-- cancelled_notional = cancelled size x level price; mid is the last book_top sample at or
-- before the pull (null when depth was not computed), distance_bps = |price - mid| / mid x 10^4.
WITH pulls AS (
    SELECT exchange, symbol, ts, seq, side, price, prev_size, size, cancelled,
           cancelled * price AS cancelled_notional, cause
    FROM level_changes
    WHERE cancelled > 0
      AND ($side IS NULL OR side = $side)
      AND ($exchange IS NULL OR exchange = $exchange)
      AND ($symbol IS NULL OR symbol = $symbol)
      AND ($from IS NULL OR ts >= $from)
      AND ($from IS NULL OR date >= CAST($from AS DATE))
      AND ($to IS NULL OR ts <= $to)
      AND ($to IS NULL OR date <= CAST($to AS DATE))
    ORDER BY cancelled_notional DESC, ts, seq
    LIMIT $limit
),
top AS (
    SELECT exchange, symbol, ts, mid
    FROM book_top
    WHERE mid IS NOT NULL
      AND ($exchange IS NULL OR exchange = $exchange)
      AND ($symbol IS NULL OR symbol = $symbol)
      AND ($to IS NULL OR date <= CAST($to AS DATE))
)
SELECT p.exchange, p.symbol, p.ts, p.seq, p.side, p.price, p.prev_size, p.size, p.cancelled,
       p.cancelled_notional, p.cause, t.mid,
       round(abs(p.price - t.mid) / t.mid * 1e4, 2) AS distance_bps
FROM pulls p
ASOF LEFT JOIN top t
  ON p.exchange = t.exchange AND p.symbol = t.symbol AND p.ts >= t.ts
ORDER BY p.cancelled_notional DESC, p.ts, p.seq
