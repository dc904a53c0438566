-- name: quote_life
-- description: Quote life before / during / after a moment: how long added size rested before it was cancelled or traded (FIFO per price level, from level_changes), size-weighted quantiles
-- param: at (time, required): the moment (an event's start)
-- param: exchange (text, default null): exchange filter (null = the only one)
-- param: symbol (text, default null): symbol filter (null = the only one)
-- param: before (duration, default 10m): the 'before' phase: removals in [at - before, at)
-- param: during (duration, default 2m): the 'during' phase: removals in [at, at + during)
-- param: after (duration, default 10m): the 'after' phase: removals in [at + during, at + during + after)
-- param: warm (duration, default 10m): adds are read from this long before the 'before' phase (older size is censored: no add time)
-- tables: level_changes
-- example: forensics sql --query quote_life --param at=2025-10-10T21:13:00
-- L2 data has no order ids, so each price level is a FIFO queue of size units: units enter
-- with the increases (added) and leave with the decreases (traded + cancelled) in arrival
-- order; a unit's life is its removal time minus its add time. Size resting when the read
-- starts has no add time and is left out (counted in censored_size). A decrease that is part
-- traded, part cancelled splits each unit it removes in that proportion. outcome 'all' is
-- both. Quantiles p10/p50/p90 are size-weighted, in ms. Gap/truncation rows are not maker
-- actions and are skipped.
WITH lc AS (
    SELECT side, CAST(price AS DOUBLE) AS price, ts_ns, seq, CAST(prev_size AS DOUBLE) AS prev_size,
           CAST(added AS DOUBLE) AS added, CAST(traded + cancelled AS DOUBLE) AS removed,
           CAST(traded AS DOUBLE) / nullif(CAST(traded + cancelled AS DOUBLE), 0) AS tshare
    FROM level_changes
    WHERE ($exchange IS NULL OR exchange = $exchange) AND ($symbol IS NULL OR symbol = $symbol)
      AND ts_ns >= epoch_ns($at) - $before - $warm AND ts_ns < epoch_ns($at) + $during + $after
      AND date >= CAST(make_timestamp_ns(epoch_ns($at) - $before - $warm) AS DATE)
      AND date <= CAST(make_timestamp_ns(epoch_ns($at) + $during + $after) AS DATE)
      AND cause IN ('add', 'trade', 'cancel', 'mixed')
),
cum AS (  -- cumulative units in and out of each level's queue; the first row's prev_size is censored
    SELECT *,
           first_value(prev_size) OVER w0 + sum(added) OVER w AS a_end,
           sum(removed) OVER w AS r_end
    FROM lc
    WINDOW w0 AS (PARTITION BY side, price ORDER BY ts_ns, seq),
           w AS (PARTITION BY side, price ORDER BY ts_ns, seq ROWS UNBOUNDED PRECEDING)
),
bp AS (  -- breakpoints on the unit axis: add starts (time known or censored) and removal starts
    SELECT side, price, a_end - added AS u, ts_ns AS add_ns, NULL::BIGINT AS rem_ns, NULL::DOUBLE AS r_end,
           NULL::DOUBLE AS tshare, 0 AS kind FROM cum WHERE added > 0
    UNION ALL
    SELECT side, price, 0, -1, NULL, NULL, NULL, 0
    FROM (SELECT DISTINCT side, price, first_value(prev_size) OVER (PARTITION BY side, price ORDER BY ts_ns, seq) AS p0
          FROM lc) WHERE p0 > 0
    UNION ALL
    SELECT side, price, r_end - removed, NULL, ts_ns, r_end, tshare, 1 FROM cum WHERE removed > 0
),
seg AS (  -- each piece between breakpoints belongs to one add and one removal
    SELECT side, price, u, kind,
           lead(u) OVER w AS u_next,
           last_value(add_ns IGNORE NULLS) OVER w AS add_ns,
           last_value(rem_ns IGNORE NULLS) OVER w AS rem_ns,
           last_value(r_end IGNORE NULLS) OVER w AS r_end,
           last_value(tshare IGNORE NULLS) OVER w AS tshare
    FROM bp
    WINDOW w AS (PARTITION BY side, price ORDER BY u, kind ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
pieces AS (
    SELECT rem_ns, add_ns, least(coalesce(u_next, r_end), r_end) - u AS units, tshare,
           CASE WHEN rem_ns < epoch_ns($at) - $before THEN NULL
                WHEN rem_ns < epoch_ns($at) THEN 'before'
                WHEN rem_ns < epoch_ns($at) + $during THEN 'during'
                ELSE 'after' END AS phase
    FROM seg
    WHERE rem_ns IS NOT NULL AND r_end IS NOT NULL AND u < r_end
),
lives AS (
    SELECT phase, o.outcome, (rem_ns - add_ns) / 1e6 AS life_ms,
           units * CASE o.outcome WHEN 'traded' THEN coalesce(tshare, 0)
                                  WHEN 'cancelled' THEN 1 - coalesce(tshare, 0) ELSE 1 END AS w
    FROM pieces CROSS JOIN (VALUES ('traded'), ('cancelled'), ('all')) o(outcome)
    WHERE phase IS NOT NULL AND add_ns >= 0 AND units > 0
),
ranked AS (
    SELECT *, sum(w) OVER (PARTITION BY phase, outcome ORDER BY life_ms ROWS UNBOUNDED PRECEDING)
              / sum(w) OVER (PARTITION BY phase, outcome) AS cw
    FROM lives WHERE w > 0
),
censored AS (
    SELECT phase, sum(units) AS censored_size FROM pieces WHERE phase IS NOT NULL AND add_ns < 0 GROUP BY 1
)
SELECT r.phase, r.outcome,
       round(sum(r.w), 9)                              AS size,
       count(*)                                        AS pieces,
       round(min(r.life_ms) FILTER (WHERE r.cw >= 0.1), 3) AS p10_ms,
       round(min(r.life_ms) FILTER (WHERE r.cw >= 0.5), 3) AS p50_ms,
       round(min(r.life_ms) FILTER (WHERE r.cw >= 0.9), 3) AS p90_ms,
       round(sum(r.w * r.life_ms) / sum(r.w), 3)       AS mean_ms,
       round(any_value(c.censored_size), 9)            AS censored_size
FROM ranked r LEFT JOIN censored c ON c.phase = r.phase
GROUP BY 1, 2
ORDER BY CASE r.phase WHEN 'before' THEN 0 WHEN 'during' THEN 1 ELSE 2 END, r.outcome
