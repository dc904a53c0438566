-- name: regime
-- description: Regime before a moment (the article's stable/range/trend/crisis): short- vs long-horizon volatility of the recent window, each against its own history in the store
-- param: at (time, required): the moment (an event's start); only prices before it are used
-- param: exchange (text, default null): exchange filter (null = the only one)
-- param: symbol (text, default null): symbol filter (null = the only one)
-- param: recent (duration, default 60m): the window just before `at` whose regime is read
-- param: history (duration, default 30d): how far before the recent window its reference history reaches (the store may hold less)
-- param: short_ret (duration, default 1m): short-term (intraday) return horizon
-- param: long_ret (duration, default 10m): long-term return horizon (the longest an hour's window still holds several of; 1d for interday with weeks of data)
-- param: high_ratio (float, default 1.5): the short-term volatility is "high" when it is at least this multiple of its own history (60 one-minute returns give it within ~10%: 1.5x is far outside noise)
-- param: long_high_ratio (float, default 2.0): the same for the long-term volatility (an hour holds only ~6 independent 10-min returns, +-30%: 2x keeps a calm hour below it ~99% of the time)
-- param: min_history (duration, default 60m): least history before the recent window needed to call a regime
-- param: source (text, default trades): price series: 'trades' (last trade price per bucket) or 'mid' (book_top mid)
-- tables: trades, book_top
-- example: forensics sql --query regime --param at=2025-10-10T21:13:00
-- short_vol = sample std of short_ret log returns (bps); long_vol = root mean square of
-- long_ret log returns (bps, not demeaned: a persistent drift is long-horizon volatility),
-- long returns sampled every short_ret (overlapping). A return belongs to the window holding
-- its end. short_high/long_high compare recent to history by high_ratio/long_high_ratio; regime is null when
-- the history spans less than min_history or the recent window is less than 80% covered.
WITH px AS (
    SELECT ts_ns, seq AS ord, CAST(price AS DOUBLE) AS p
    FROM trades
    WHERE $source = 'trades'
      AND ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ts_ns < epoch_ns($at) AND ts_ns >= epoch_ns($at) - $recent - $history - $long_ret
      AND date >= CAST(make_timestamp_ns(epoch_ns($at) - $recent - $history - $long_ret) AS DATE)
      AND date <= CAST($at AS DATE)
    UNION ALL
    SELECT ts_ns, ts_ns AS ord, CAST(mid AS DOUBLE) AS p
    FROM book_top
    WHERE $source = 'mid' AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
      AND ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ts_ns < epoch_ns($at) AND ts_ns >= epoch_ns($at) - $recent - $history - $long_ret
      AND date >= CAST(make_timestamp_ns(epoch_ns($at) - $recent - $history - $long_ret) AS DATE)
      AND date <= CAST($at AS DATE)
),
bars AS (  -- last price of every complete short_ret bucket before $at
    SELECT ts_ns // $short_ret AS k, arg_max(p, ord) AS p
    FROM px
    GROUP BY 1
    HAVING (ts_ns // $short_ret + 1) * $short_ret <= epoch_ns($at)
),
rets AS (
    SELECT (b.k + 1) * $short_ret AS close_ns,
           ln(b.p / s.p) * 1e4 AS r_short,
           ln(b.p / l.p) * 1e4 AS r_long
    FROM bars b
    LEFT JOIN bars s ON s.k = b.k - 1
    LEFT JOIN bars l ON l.k = b.k - $long_ret // $short_ret
),
tagged AS (
    SELECT *,
           CASE WHEN close_ns > epoch_ns($at) - $recent THEN 'recent'
                WHEN close_ns > epoch_ns($at) - $recent - $history THEN 'history' END AS win
    FROM rets
),
agg AS (
    SELECT
        stddev_samp(r_short) FILTER (WHERE win = 'recent')            AS short_vol_recent_bps,
        stddev_samp(r_short) FILTER (WHERE win = 'history')           AS short_vol_history_bps,
        sqrt(avg(r_long * r_long) FILTER (WHERE win = 'recent'))      AS long_vol_recent_bps,
        sqrt(avg(r_long * r_long) FILTER (WHERE win = 'history'))     AS long_vol_history_bps,
        count(r_short) FILTER (WHERE win = 'recent')                  AS n_short_recent,
        count(r_short) FILTER (WHERE win = 'history')                 AS n_short_history,
        count(r_long) FILTER (WHERE win = 'recent')                   AS n_long_recent,
        count(r_long) FILTER (WHERE win = 'history')                  AS n_long_history,
        min(close_ns) FILTER (WHERE win = 'history') - $short_ret                        AS history_from_ns,
        max(close_ns) FILTER (WHERE win = 'history')                                    AS history_to_ns
    FROM tagged
),
judged AS (
    SELECT *,
           short_vol_recent_bps / nullif(short_vol_history_bps, 0) AS short_ratio,
           long_vol_recent_bps / nullif(long_vol_history_bps, 0)   AS long_ratio,
           coalesce(history_to_ns - history_from_ns, 0)            AS history_ns,
           n_short_recent * $short_ret                             AS recent_covered_ns,
           (coalesce(history_to_ns - history_from_ns, 0) >= $min_history
            AND n_short_recent * $short_ret >= 0.8 * $recent
            AND n_long_recent > 0 AND n_long_history > 0)          AS enough
    FROM agg
)
SELECT
    round(short_vol_recent_bps, 6)  AS short_vol_recent_bps,
    round(short_vol_history_bps, 6) AS short_vol_history_bps,
    round(short_ratio, 6)           AS short_ratio,
    round(long_vol_recent_bps, 6)   AS long_vol_recent_bps,
    round(long_vol_history_bps, 6)  AS long_vol_history_bps,
    round(long_ratio, 6)            AS long_ratio,
    n_short_recent, n_short_history, n_long_recent, n_long_history,
    history_ns, recent_covered_ns, $min_history AS min_history_ns, $recent AS recent_ns,
    $high_ratio AS high_ratio, $long_high_ratio AS long_high_ratio,
    CASE WHEN enough THEN short_ratio >= $high_ratio END AS short_high,
    CASE WHEN enough THEN long_ratio >= $long_high_ratio END AS long_high,
    CASE WHEN NOT enough THEN NULL
         WHEN short_ratio >= $high_ratio AND long_ratio >= $long_high_ratio THEN 'crisis'
         WHEN short_ratio >= $high_ratio THEN 'range'
         WHEN long_ratio >= $long_high_ratio THEN 'trend'
         ELSE 'stable' END AS regime
FROM judged
