-- name: spread
-- description: Spread and top of book per time bucket: last quote, spread min/avg/max, crossed samples (book_top)
-- param: bucket (duration, default 1m): bucket width (100ms, 1s, 1m, 1h ...)
-- param: exchange (text, default null): exchange filter (null = every exchange)
-- param: symbol (text, default null): symbol filter (null = every symbol)
-- param: from (time, default null): first grid time, ISO-8601 (without offset: read in --tz)
-- param: to (time, default null): last grid time (inclusive)
-- tables: book_top
-- example: forensics sql --query spread --param bucket=1s --param from=2025-10-10T21:10 --param to=2025-10-10T21:20
-- best_bid/best_ask/mid/sizes are the bucket's last known values (samples where the book was
-- unknown are skipped and counted in `unknown`); spread_bps_avg = mean of spread / mid x 10^4.
SELECT
    exchange,
    symbol,
    make_timestamp_ns(ts_ns // $bucket * $bucket)            AS bucket,
    count(*)                                                 AS samples,
    arg_max(best_bid, ts)                                    AS best_bid,
    arg_max(best_ask, ts)                                    AS best_ask,
    arg_max(mid, ts)                                         AS mid,
    arg_max(best_bid_size, ts)                               AS best_bid_size,
    arg_max(best_ask_size, ts)                               AS best_ask_size,
    min(spread)                                              AS spread_min,
    round(avg(spread), 8)                                    AS spread_avg,
    max(spread)                                              AS spread_max,
    round(avg(spread / nullif(mid, 0)) * 1e4, 3)             AS spread_bps_avg,
    count(*) FILTER (WHERE crossed)                          AS crossed,
    count(*) FILTER (WHERE locked)                           AS locked,
    count(*) FILTER (WHERE best_bid IS NULL OR best_ask IS NULL) AS unknown
FROM book_top
WHERE ($exchange IS NULL OR exchange = $exchange)
  AND ($symbol IS NULL OR symbol = $symbol)
  AND ($from IS NULL OR ts >= $from)
  AND ($from IS NULL OR date >= CAST($from AS DATE))
  AND ($to IS NULL OR ts <= $to)
  AND ($to IS NULL OR date <= CAST($to AS DATE))
GROUP BY ALL
ORDER BY exchange, symbol, bucket
