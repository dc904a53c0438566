-- name: maker_reposting
-- description: Maker stress per bucket and side: size cancelled, the part re-posted further from mid (widening) and the part removed for good (withdrawal)
-- param: at (time, required): the moment (an event's start)
-- param: exchange (text, default null): exchange filter (null = the only one)
-- param: symbol (text, default null): symbol filter (null = the only one)
-- param: before (duration, default 15m): the series starts this long before `at`
-- param: after (duration, default 10m): and ends this long after it
-- param: bucket (duration, default 10s): series step
-- tables: level_changes, book_top
-- example: forensics sql --query maker_reposting --param at=2025-10-10T21:13:00
-- distance_bps = |price - mid| / mid x 10^4 with mid the bucket's mean book_top mid. In each
-- bucket and side: cancelled = size cancelled, cancel_dist_bps = its size-weighted mean
-- distance, added_far = size added further from mid than that, reposted = min(cancelled,
-- added_far) (size moved away from the touch: widening), withdrawn = cancelled - reposted
-- (size that left the book), widen_share = reposted / cancelled.
WITH mids AS (
    SELECT ts_ns // $bucket AS k, avg(CAST(mid AS DOUBLE)) AS mid
    FROM book_top
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ts_ns >= epoch_ns($at) - $before AND ts_ns < epoch_ns($at) + $after
      AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
    GROUP BY 1
),
lc AS (
    SELECT l.ts_ns // $bucket AS k, l.side, CAST(l.cancelled AS DOUBLE) AS cancelled, CAST(l.added AS DOUBLE) AS added,
           abs(CAST(l.price AS DOUBLE) - m.mid) / m.mid * 1e4 AS dist_bps
    FROM level_changes l JOIN mids m ON m.k = l.ts_ns // $bucket
    WHERE ($exchange IS NULL OR l.exchange = $exchange) AND ($symbol IS NULL OR l.symbol = $symbol)
      AND l.ts_ns >= epoch_ns($at) - $before AND l.ts_ns < epoch_ns($at) + $after
      AND l.cause IN ('add', 'trade', 'cancel', 'mixed')
),
c AS (
    SELECT k, side, sum(cancelled) AS cancelled,
           sum(cancelled * dist_bps) / nullif(sum(cancelled), 0) AS cancel_dist_bps
    FROM lc GROUP BY 1, 2
),
a AS (
    SELECT c.k, c.side, coalesce(sum(lc.added) FILTER (WHERE lc.dist_bps > c.cancel_dist_bps), 0) AS added_far,
           coalesce(sum(lc.added), 0) AS added
    FROM c LEFT JOIN lc ON lc.k = c.k AND lc.side = c.side
    GROUP BY 1, 2
)
SELECT make_timestamp_ns(c.k * $bucket) AS bucket, c.k * $bucket AS bucket_ns, c.side,
       round(c.cancelled, 9) AS cancelled, round(c.cancel_dist_bps, 6) AS cancel_dist_bps,
       round(a.added, 9) AS added, round(a.added_far, 9) AS added_far,
       round(least(c.cancelled, a.added_far), 9) AS reposted,
       round(c.cancelled - least(c.cancelled, a.added_far), 9) AS withdrawn,
       round(least(c.cancelled, a.added_far) / nullif(c.cancelled, 0), 6) AS widen_share
FROM c JOIN a ON a.k = c.k AND a.side = c.side
ORDER BY c.k, c.side
