-- name: daily_summary
-- description: Per exchange, symbol and UTC day: book updates, snapshots, trades, quotes, gaps, first/last time
-- param: exchange (text, default null): exchange filter (null = every exchange)
-- param: symbol (text, default null): symbol filter (null = every symbol)
-- param: from (date, default null): first day (YYYY-MM-DD)
-- param: to (date, default null): last day (inclusive)
-- tables: book_updates trades
-- example: forensics sql --query daily_summary --param symbol=BTCUSDT
-- first_ts/last_ts span every raw table of the day; trade_qty in base units, trade_notional in
-- quote units (exact); gap_seconds sums the gaps that start that day.
WITH b AS (
    SELECT exchange, symbol, date, count(*) AS book_updates,
           count(*) FILTER (WHERE is_snapshot) AS snapshot_rows, min(ts) AS t0, max(ts) AS t1
    FROM book_updates
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ($from IS NULL OR date >= $from) AND ($to IS NULL OR date <= $to)
    GROUP BY ALL
), t AS (
    SELECT exchange, symbol, date, count(*) AS trades, sum(size) AS trade_qty,
           sum(price * size) AS trade_notional, min(ts) AS t0, max(ts) AS t1
    FROM trades
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ($from IS NULL OR date >= $from) AND ($to IS NULL OR date <= $to)
    GROUP BY ALL
), q AS (
    SELECT exchange, symbol, date, count(*) AS quotes, min(ts) AS t0, max(ts) AS t1
    FROM quotes
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ($from IS NULL OR date >= $from) AND ($to IS NULL OR date <= $to)
    GROUP BY ALL
), d AS (
    SELECT exchange, symbol, date, count(*) AS band_rows, min(ts) AS t0, max(ts) AS t1
    FROM depth_bands
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ($from IS NULL OR date >= $from) AND ($to IS NULL OR date <= $to)
    GROUP BY ALL
), g AS (
    SELECT exchange, symbol, date, count(*) AS gaps,
           round(sum(ts_to_ns - ts_from_ns) / 1e9, 6) AS gap_seconds
    FROM gaps
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ($from IS NULL OR date >= $from) AND ($to IS NULL OR date <= $to)
    GROUP BY ALL
), k AS (
    SELECT exchange, symbol, date FROM b
    UNION SELECT exchange, symbol, date FROM t
    UNION SELECT exchange, symbol, date FROM q
    UNION SELECT exchange, symbol, date FROM d
    UNION SELECT exchange, symbol, date FROM g
)
SELECT
    k.exchange,
    k.symbol,
    k.date,
    coalesce(b.book_updates, 0)   AS book_updates,
    coalesce(b.snapshot_rows, 0)  AS snapshot_rows,
    coalesce(t.trades, 0)         AS trades,
    t.trade_qty,
    t.trade_notional,
    coalesce(q.quotes, 0)         AS quotes,
    coalesce(d.band_rows, 0)      AS depth_band_rows,
    coalesce(g.gaps, 0)           AS gaps,
    coalesce(g.gap_seconds, 0)    AS gap_seconds,
    least(b.t0, t.t0, q.t0, d.t0) AS first_ts,
    greatest(b.t1, t.t1, q.t1, d.t1) AS last_ts,
    b.t0 AS book_first_ts,
    b.t1 AS book_last_ts,
    t.t0 AS trade_first_ts,
    t.t1 AS trade_last_ts
FROM k
LEFT JOIN b ON b.exchange = k.exchange AND b.symbol = k.symbol AND b.date = k.date
LEFT JOIN t ON t.exchange = k.exchange AND t.symbol = k.symbol AND t.date = k.date
LEFT JOIN q ON q.exchange = k.exchange AND q.symbol = k.symbol AND q.date = k.date
LEFT JOIN d ON d.exchange = k.exchange AND d.symbol = k.symbol AND d.date = k.date
LEFT JOIN g ON g.exchange = k.exchange AND g.symbol = k.symbol AND g.date = k.date
ORDER BY k.exchange, k.symbol, k.date
