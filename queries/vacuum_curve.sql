-- name: vacuum_curve
-- description: The vacuum curve around a moment, per minute: price impact per unit volume, Kyle's lambda (rolling regression of mid change on signed volume), depth within a band, spread
-- param: at (time, required): the moment (an event's start); minute 0 starts here
-- param: exchange (text, default null): exchange filter (null = the only one)
-- param: symbol (text, default null): symbol filter (null = the only one)
-- param: before (duration, default 30m): the curve starts this long before `at`
-- param: after (duration, default 60m): and ends this long after it
-- param: step (duration, default 1m): curve step
-- param: roll (duration, default 3m): Kyle's lambda regresses the 1-second observations of this trailing window (a multiple of step)
-- param: band (float, default 1.0): depth band, percent of mid (a band stored in `depth`)
-- param: grid (duration, default null): book_top / depth grid to read (null = the finest one stored)
-- tables: book_top, trades, depth
-- example: forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00
-- Observations are 1-second: dmid_bps = change of the last mid of the second against the
-- previous second's (bps of the previous mid), signed_vol = buy - sell aggressive size in the
-- second (base units). impact_per_vol = sum |dmid_bps| / traded volume in the step (null
-- without trades); kyle_lambda = regr_slope(dmid_bps, signed_vol) over the seconds of the
-- trailing roll window (bps per base unit; null without trades or without variation in
-- signed volume); depth = mean of bid + ask depth within `band` over the step's grid times.
WITH g AS (
    SELECT coalesce($grid, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ts_ns >= epoch_ns($at) - $before AND ts_ns < epoch_ns($at) + $after
),
steps AS (
    SELECT range AS i, epoch_ns($at) + range * $step AS s0
    FROM range(-($before // $step), $after // $step)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ($exchange IS NULL OR t.exchange = $exchange) AND ($symbol IS NULL OR t.symbol = $symbol)
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns($at) - $before - $roll - 1000000000 AND t.ts_ns < epoch_ns($at) + $after
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ts_ns >= epoch_ns($at) - $before - $roll AND ts_ns < epoch_ns($at) + $after
    GROUP BY 1
),
have AS (SELECT count(*) > 0 AS tr FROM tr),
obs AS (  -- one row per second with a mid and a previous mid
    SELECT t.sec, (t.mid - lag(t.mid) OVER w) / lag(t.mid) OVER w * 1e4 AS dmid_bps,
           t.sec - lag(t.sec) OVER w = 1 AS consecutive, t.spread_bps,
           coalesce(x.signed_vol, 0) AS signed_vol, coalesce(x.vol, 0) AS vol, coalesce(x.trades, 0) AS trades
    FROM top t LEFT JOIN tr x ON x.sec = t.sec
    WINDOW w AS (ORDER BY t.sec)
),
dep AS (
    SELECT d.ts_ns, sum(CAST(d.qty AS DOUBLE)) AS depth
    FROM depth d, g
    WHERE ($exchange IS NULL OR d.exchange = $exchange) AND ($symbol IS NULL OR d.symbol = $symbol)
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = $band
      AND d.ts_ns >= epoch_ns($at) - $before AND d.ts_ns < epoch_ns($at) + $after
    GROUP BY 1
    HAVING count(*) = 2 AND count(d.qty) = 2
),
per_step AS (
    SELECT s.i, s.s0,
           sum(abs(o.dmid_bps)) FILTER (WHERE o.consecutive)  AS abs_move_bps,
           sum(o.vol)                                          AS volume,
           sum(o.trades)                                       AS trades,
           avg(o.spread_bps)                                   AS spread_bps,
           count(o.sec)                                        AS seconds
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + $step
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + $step - $roll AND o.sec * 1000000000 < s.s0 + $step
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + $step
    GROUP BY 1
)
SELECT
    p.i                                                            AS step,
    make_timestamp_ns(p.s0)                                        AS ts,
    p.s0                                                           AS ts_ns,
    round(p.abs_move_bps, 6)                                       AS abs_move_bps,
    CASE WHEN have.tr THEN CAST(p.volume AS DOUBLE) END           AS volume,
    CASE WHEN have.tr THEN p.trades END                            AS trades,
    CASE WHEN have.tr THEN round(p.abs_move_bps / nullif(CAST(p.volume AS DOUBLE), 0), 8) END AS impact_per_vol,
    CASE WHEN have.tr AND p.seconds > 0 THEN round(k.kyle_lambda, 8) END AS kyle_lambda,
    CASE WHEN have.tr AND p.seconds > 0 THEN round(k.kyle_r2, 6) END AS kyle_r2,
    k.kyle_n,
    round(d.depth, 6)                                              AS depth,
    round(p.spread_bps, 6)                                         AS spread_bps,
    p.seconds
FROM per_step p CROSS JOIN have
JOIN kyle k ON k.i = p.i
JOIN dep_step d ON d.i = p.i
ORDER BY p.i
