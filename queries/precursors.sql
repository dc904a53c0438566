-- name: precursors
-- description: Precursors in the minutes before a moment: spread, touch depth, quote flicker, cancel-to-trade, order-flow imbalance (OFI) and aggressive-flow imbalance per bucket, each with its z-score against the baseline before the watch window
-- param: at (time, required): the moment (an event's start); only data before it is used
-- param: exchange (text, default null): exchange filter (null = the only one)
-- param: symbol (text, default null): symbol filter (null = the only one)
-- param: bucket (duration, default 10s): series step (OFI per 10 s, as Cont, Kukanov & Stoikov)
-- param: lookback (duration, default 15m): the series starts this long before `at`
-- param: watch (duration, default 5m): the last part of the series that is watched; the buckets before it are the baseline
-- Buckets end at `at`: bucket k covers [at + k x bucket, at + (k+1) x bucket), k = -lookback/bucket .. -1.
-- param: flow_window (duration, default 60s): aggressive imbalance is summed over this trailing window (persistence)
-- param: grid (duration, default null): book_top grid to read (null = the finest one stored)
-- tables: book_top, level_changes, trades
-- example: forensics sql --query precursors --param at=2025-10-10T21:13:00
-- spread_bps = mean spread / mid x 10^4; touch_depth = mean best bid size + best ask size;
-- quote_flicker = level updates that cancelled size (level_changes, maker causes);
-- cancel_to_trade = cancelled / traded size (null when nothing traded: no trades, no ratio);
-- ofi = sum over consecutive book_top samples of e_n = 1{Pb_n>=Pb_n-1} qb_n - 1{Pb_n<=Pb_n-1} qb_n-1
--       - 1{Pa_n<=Pa_n-1} qa_n + 1{Pa_n>=Pa_n-1} qa_n-1 (Cont-Kukanov-Stoikov; base units);
-- aggr_imbalance = (buy - sell) / (buy + sell) aggressive volume over the trailing flow_window
-- (null without trades). x_z = (x - mean of x over the baseline) / its sample std there.
WITH g AS (
    SELECT coalesce($grid, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ts_ns >= epoch_ns($at) - $lookback AND ts_ns < epoch_ns($at)
      AND date >= CAST(make_timestamp_ns(epoch_ns($at) - $lookback) AS DATE) AND date <= CAST($at AS DATE)
),
buckets AS (
    SELECT range AS k FROM range(-($lookback // $bucket), 0)
),
top AS (
    SELECT t.ts_ns, CAST(t.best_bid AS DOUBLE) AS pb, CAST(t.best_ask AS DOUBLE) AS pa,
           CAST(t.best_bid_size AS DOUBLE) AS qb, CAST(t.best_ask_size AS DOUBLE) AS qa,
           CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4 AS spread_bps
    FROM book_top t, g
    WHERE ($exchange IS NULL OR t.exchange = $exchange) AND ($symbol IS NULL OR t.symbol = $symbol)
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns($at) - $lookback - g.grid_ns AND t.ts_ns < epoch_ns($at)
      AND t.date >= CAST(make_timestamp_ns(epoch_ns($at) - $lookback - 86400000000000) AS DATE)
      AND t.date <= CAST($at AS DATE)
      AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
      AND t.best_bid IS NOT NULL AND t.best_ask IS NOT NULL
),
ofi_e AS (  -- one OFI increment per pair of consecutive samples
    SELECT ts_ns, spread_bps, qb + qa AS touch,
           CASE WHEN pb >= lag(pb) OVER w THEN qb ELSE 0 END
         - CASE WHEN pb <= lag(pb) OVER w THEN lag(qb) OVER w ELSE 0 END
         - CASE WHEN pa <= lag(pa) OVER w THEN qa ELSE 0 END
         + CASE WHEN pa >= lag(pa) OVER w THEN lag(qa) OVER w ELSE 0 END AS e,
           lag(pb) OVER w IS NOT NULL AS has_prev
    FROM top
    WINDOW w AS (ORDER BY ts_ns)
),
top_b AS (
    SELECT CAST(floor((ts_ns - epoch_ns($at)) / $bucket) AS BIGINT) AS k, avg(spread_bps) AS spread_bps, avg(touch) AS touch_depth,
           sum(e) FILTER (WHERE has_prev) AS ofi, count(*) AS top_samples
    FROM ofi_e
    WHERE ts_ns >= epoch_ns($at) - $lookback
    GROUP BY 1
),
lc_b AS (
    SELECT CAST(floor((ts_ns - epoch_ns($at)) / $bucket) AS BIGINT) AS k, count(*) FILTER (WHERE cancelled > 0) AS cancel_updates,
           sum(CAST(cancelled AS DOUBLE)) AS cancelled, sum(CAST(traded AS DOUBLE)) AS traded
    FROM level_changes
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ts_ns >= epoch_ns($at) - $lookback AND ts_ns < epoch_ns($at)
      AND date >= CAST(make_timestamp_ns(epoch_ns($at) - $lookback) AS DATE) AND date <= CAST($at AS DATE)
      AND cause IN ('add', 'trade', 'cancel', 'mixed')
    GROUP BY 1
),
tr_b AS (
    SELECT CAST(floor((ts_ns - epoch_ns($at)) / $bucket) AS BIGINT) AS k,
           coalesce(sum(CAST(size AS DOUBLE)) FILTER (WHERE aggressor = 'buy'), 0)  AS buy_vol,
           coalesce(sum(CAST(size AS DOUBLE)) FILTER (WHERE aggressor = 'sell'), 0) AS sell_vol,
           count(*) AS trades
    FROM trades
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ts_ns >= epoch_ns($at) - $lookback - $flow_window AND ts_ns < epoch_ns($at)
      AND date >= CAST(make_timestamp_ns(epoch_ns($at) - $lookback - $flow_window) AS DATE)
      AND date <= CAST($at AS DATE)
    GROUP BY 1
),
have AS (
    SELECT (SELECT count(*) FROM lc_b) > 0 AS lc, (SELECT count(*) FROM tr_b) > 0 AS tr
),
flow AS (  -- trailing flow_window sums (buckets before the series start included)
    SELECT b.k, sum(t.buy_vol) AS buy_w, sum(t.sell_vol) AS sell_w
    FROM buckets b LEFT JOIN tr_b t ON t.k > b.k - $flow_window // $bucket AND t.k <= b.k
    GROUP BY 1
),
series AS (
    SELECT b.k,
           (b.k + 1) * $bucket <= -$watch                         AS baseline,
           tb.spread_bps, tb.touch_depth,
           CASE WHEN have.lc THEN coalesce(lc.cancel_updates, 0) END             AS quote_flicker,
           CASE WHEN have.lc THEN lc.cancelled / nullif(lc.traded, 0) END        AS cancel_to_trade,
           tb.ofi,
           CASE WHEN have.tr THEN (f.buy_w - f.sell_w) / nullif(f.buy_w + f.sell_w, 0) END AS aggr_imbalance,
           CASE WHEN have.tr THEN coalesce(tr.trades, 0) END                     AS trades,
           coalesce(tb.top_samples, 0)                                           AS top_samples
    FROM buckets b CROSS JOIN have
    LEFT JOIN top_b tb ON tb.k = b.k
    LEFT JOIN lc_b lc ON lc.k = b.k
    LEFT JOIN tr_b tr ON tr.k = b.k
    LEFT JOIN flow f ON f.k = b.k
),
base AS (
    SELECT avg(spread_bps) AS m1, stddev_samp(spread_bps) AS s1,
           avg(touch_depth) AS m2, stddev_samp(touch_depth) AS s2,
           avg(quote_flicker) AS m3, stddev_samp(quote_flicker) AS s3,
           avg(cancel_to_trade) AS m4, stddev_samp(cancel_to_trade) AS s4,
           avg(ofi) AS m5, stddev_samp(ofi) AS s5,
           avg(aggr_imbalance) AS m6, stddev_samp(aggr_imbalance) AS s6
    FROM series WHERE baseline
)
SELECT
    make_timestamp_ns(epoch_ns($at) + k * $bucket)       AS bucket,
    epoch_ns($at) + k * $bucket                          AS bucket_ns,
    baseline,
    round(spread_bps, 6)                                 AS spread_bps,
    round((spread_bps - m1) / nullif(s1, 0), 4)          AS spread_bps_z,
    round(touch_depth, 6)                                AS touch_depth,
    round((touch_depth - m2) / nullif(s2, 0), 4)         AS touch_depth_z,
    quote_flicker,
    round((quote_flicker - m3) / nullif(s3, 0), 4)       AS quote_flicker_z,
    round(cancel_to_trade, 6)                            AS cancel_to_trade,
    round((cancel_to_trade - m4) / nullif(s4, 0), 4)     AS cancel_to_trade_z,
    round(ofi, 6)                                        AS ofi,
    round((ofi - m5) / nullif(s5, 0), 4)                 AS ofi_z,
    round(aggr_imbalance, 6)                             AS aggr_imbalance,
    round((aggr_imbalance - m6) / nullif(s6, 0), 4)      AS aggr_imbalance_z,
    trades, top_samples
FROM series CROSS JOIN base
ORDER BY k
