-- Every number in report.md, reproducible with `forensics sql`.

-- S1: confidence [BTCUSDT-20251010T210000.000Z-flow] = 1
SELECT confidence FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S2: removed_frac_bid [BTCUSDT-20251010T210000.000Z-flow] = 0.118635
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT greatest(0, (depth_before_bid - depth_after_bid) / depth_before_bid) FROM e;

-- S3: removed_frac_bid [BTCUSDT-20251010T210000.000Z-flow] = 0.118635
SELECT removed_frac_bid FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S4: removed_frac [BTCUSDT-20251010T210000.000Z-flow] = 0.118635
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT ((coalesce(depth_before_bid, 0)) - (coalesce(depth_after_bid, 0))) / (coalesce(depth_before_bid, 0)) FROM e;

-- S5: removed_frac [BTCUSDT-20251010T210000.000Z-flow] = 0.118635
SELECT removed_frac FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S6: depth_before_bid [BTCUSDT-20251010T210000.000Z-flow] = 9.643
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT d.qty FROM depth d, e WHERE d.exchange = e.exchange AND d.symbol = e.symbol AND d.grid_ns = 100000000
  AND d.side = 'bid' AND d.band_pct = e.band_pct
  AND d.ts_ns <= e.window_from ORDER BY d.ts DESC LIMIT 1;

-- S7: depth_before_bid [BTCUSDT-20251010T210000.000Z-flow] = 9.643
SELECT depth_before_bid FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S8: depth_after_bid [BTCUSDT-20251010T210000.000Z-flow] = 8.499
SELECT depth_after_bid FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S9: speed_ms [BTCUSDT-20251010T210000.000Z-flow] = 44803
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT (end_ts_ns - start_ts_ns) / 1e6 FROM e;

-- S10: speed_ms [BTCUSDT-20251010T210000.000Z-flow] = 44803
SELECT speed_ms FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S11: traded_share_net [BTCUSDT-20251010T210000.000Z-flow] = 1
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT t / (t + greatest(c - a, 0)) FROM q;

-- S12: traded_share_net [BTCUSDT-20251010T210000.000Z-flow] = 1
SELECT traded_share_net FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S13: traded_share [BTCUSDT-20251010T210000.000Z-flow] = 0.156185
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT t / (t + c) FROM q;

-- S14: traded_share [BTCUSDT-20251010T210000.000Z-flow] = 0.156185
SELECT traded_share FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S15: traded_qty [BTCUSDT-20251010T210000.000Z-flow] = 28
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT t FROM q;

-- S16: traded_qty [BTCUSDT-20251010T210000.000Z-flow] = 28
SELECT traded_qty FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S17: cancelled_qty [BTCUSDT-20251010T210000.000Z-flow] = 151.275
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT c FROM q;

-- S18: cancelled_qty [BTCUSDT-20251010T210000.000Z-flow] = 151.275
SELECT cancelled_qty FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S19: added_qty [BTCUSDT-20251010T210000.000Z-flow] = 178.131
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT a FROM q;

-- S20: added_qty [BTCUSDT-20251010T210000.000Z-flow] = 178.131
SELECT added_qty FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S21: implied_qty [BTCUSDT-20251010T210000.000Z-flow] = 0.852
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed'))
SELECT coalesce(sum(implied), 0) FROM w;

-- S22: implied_qty [BTCUSDT-20251010T210000.000Z-flow] = 0.852
SELECT implied_qty FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S23: levels_hit [BTCUSDT-20251010T210000.000Z-flow] = 243
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed'))
SELECT count(DISTINCT side || ' ' || price::VARCHAR) FILTER (WHERE delta < 0) FROM w;

-- S24: levels_hit [BTCUSDT-20251010T210000.000Z-flow] = 243
SELECT levels_hit FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S25: sync_share_500ms [BTCUSDT-20251010T210000.000Z-flow] = 0.0559755
SELECT sync_share_500ms FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S26: levels_emptied_500ms [BTCUSDT-20251010T210000.000Z-flow] = 25
SELECT levels_emptied_500ms FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S27: erosion_corr [BTCUSDT-20251010T210000.000Z-flow] = 0.983648
SELECT erosion_corr FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S28: trade_volume [BTCUSDT-20251010T210000.000Z-flow] = 29.461
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT coalesce(sum(t.size), 0) FROM trades t, e
WHERE t.exchange = e.exchange AND t.symbol = e.symbol AND t.aggressor IN ('sell')
  AND t.ts_ns > e.window_from AND t.ts_ns <= e.window_to;

-- S29: trade_volume [BTCUSDT-20251010T210000.000Z-flow] = 29.461
SELECT trade_volume FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S30: other_side_fell [BTCUSDT-20251010T210000.000Z-flow] = False
SELECT other_side_fell FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S31: spread_before [BTCUSDT-20251010T210000.000Z-flow] = 0.5
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT b.spread FROM book_top b, e WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
  AND b.ts_ns <= e.window_from ORDER BY b.ts DESC LIMIT 1;

-- S32: spread_before [BTCUSDT-20251010T210000.000Z-flow] = 0.5
SELECT spread_before FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S33: spread_after [BTCUSDT-20251010T210000.000Z-flow] = 0.6
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT b.spread FROM book_top b, e WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
  AND b.ts_ns >= e.window_to ORDER BY b.ts LIMIT 1;

-- S34: spread_after [BTCUSDT-20251010T210000.000Z-flow] = 0.6
SELECT spread_after FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S35: mid_before [BTCUSDT-20251010T210000.000Z-flow] = 119999
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT b.mid FROM book_top b, e WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
  AND b.ts_ns <= e.window_from ORDER BY b.ts DESC LIMIT 1;

-- S36: mid_before [BTCUSDT-20251010T210000.000Z-flow] = 119999
SELECT mid_before FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S37: mid_after [BTCUSDT-20251010T210000.000Z-flow] = 119975
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT b.mid FROM book_top b, e WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
  AND b.ts_ns >= e.window_to ORDER BY b.ts LIMIT 1;

-- S38: mid_after [BTCUSDT-20251010T210000.000Z-flow] = 119975
SELECT mid_after FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S39: price_move_bps [BTCUSDT-20251010T210000.000Z-flow] = -2.02085
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT (mid_after - mid_before) / mid_before * 10000 FROM e;

-- S40: price_move_bps [BTCUSDT-20251010T210000.000Z-flow] = -2.02085
SELECT price_move_bps FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S41: price_move_after_bps [BTCUSDT-20251010T210000.000Z-flow] = 0.0208377
SELECT price_move_after_bps FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S42: impact_before [BTCUSDT-20251010T210000.000Z-flow] = 0.416444
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow'),
m_before AS (  -- last mid of each second, before the event
  SELECT b.ts_ns // 1000000000 AS sec, arg_max(b.mid, b.ts) AS mid FROM book_top b, e
  WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
    AND b.ts_ns BETWEEN e.window_from - 300000000000 AND e.window_from - 5000000000 GROUP BY sec),
i_before AS (SELECT (SELECT sum(abs(mid - prev) / prev) * 10000 FROM
            (SELECT mid, lag(mid) OVER (ORDER BY sec) AS prev FROM m_before))
          / (SELECT sum(t.size) FROM trades t, e WHERE t.exchange = e.exchange AND t.symbol = e.symbol
               AND t.ts_ns BETWEEN e.window_from - 300000000000 AND e.window_from - 5000000000) AS impact),
m_after AS (  -- last mid of each second, after the event
  SELECT b.ts_ns // 1000000000 AS sec, arg_max(b.mid, b.ts) AS mid FROM book_top b, e
  WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
    AND b.ts_ns BETWEEN e.window_to AND e.window_to + 120000000000 GROUP BY sec),
i_after AS (SELECT (SELECT sum(abs(mid - prev) / prev) * 10000 FROM
            (SELECT mid, lag(mid) OVER (ORDER BY sec) AS prev FROM m_after))
          / (SELECT sum(t.size) FROM trades t, e WHERE t.exchange = e.exchange AND t.symbol = e.symbol
               AND t.ts_ns BETWEEN e.window_to AND e.window_to + 120000000000) AS impact)
SELECT impact FROM i_before;

-- S43: impact_before [BTCUSDT-20251010T210000.000Z-flow] = 0.416444
SELECT impact_before FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S44: impact_after [BTCUSDT-20251010T210000.000Z-flow] = 0.464136
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow'),
m_before AS (  -- last mid of each second, before the event
  SELECT b.ts_ns // 1000000000 AS sec, arg_max(b.mid, b.ts) AS mid FROM book_top b, e
  WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
    AND b.ts_ns BETWEEN e.window_from - 300000000000 AND e.window_from - 5000000000 GROUP BY sec),
i_before AS (SELECT (SELECT sum(abs(mid - prev) / prev) * 10000 FROM
            (SELECT mid, lag(mid) OVER (ORDER BY sec) AS prev FROM m_before))
          / (SELECT sum(t.size) FROM trades t, e WHERE t.exchange = e.exchange AND t.symbol = e.symbol
               AND t.ts_ns BETWEEN e.window_from - 300000000000 AND e.window_from - 5000000000) AS impact),
m_after AS (  -- last mid of each second, after the event
  SELECT b.ts_ns // 1000000000 AS sec, arg_max(b.mid, b.ts) AS mid FROM book_top b, e
  WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
    AND b.ts_ns BETWEEN e.window_to AND e.window_to + 120000000000 GROUP BY sec),
i_after AS (SELECT (SELECT sum(abs(mid - prev) / prev) * 10000 FROM
            (SELECT mid, lag(mid) OVER (ORDER BY sec) AS prev FROM m_after))
          / (SELECT sum(t.size) FROM trades t, e WHERE t.exchange = e.exchange AND t.symbol = e.symbol
               AND t.ts_ns BETWEEN e.window_to AND e.window_to + 120000000000) AS impact)
SELECT impact FROM i_after;

-- S45: impact_after [BTCUSDT-20251010T210000.000Z-flow] = 0.464136
SELECT impact_after FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S46: vacuum_ratio [BTCUSDT-20251010T210000.000Z-flow] = 1.11452
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
SELECT impact_after / impact_before FROM e;

-- S47: vacuum_ratio [BTCUSDT-20251010T210000.000Z-flow] = 1.11452
SELECT vacuum_ratio FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S48: band_pct [BTCUSDT-20251010T210000.000Z-flow] = 0.1
SELECT band_pct FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S49: bid_floor [BTCUSDT-20251010T210000.000Z-flow] = 119879
SELECT bid_floor FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S50: ask_cap [BTCUSDT-20251010T210000.000Z-flow] = 120119
SELECT ask_cap FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S51: window_from [BTCUSDT-20251010T210000.000Z-flow] = 1760129999900000000
SELECT window_from FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S52: window_to [BTCUSDT-20251010T210000.000Z-flow] = 1760130044903000000
SELECT window_to FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S53: gap_share [BTCUSDT-20251010T210000.000Z-flow] = 0
SELECT gap_share FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S54: trigger [BTCUSDT-20251010T210000.000Z-flow] = flow
SELECT trigger FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow';

-- S55: grid_depth_before_ask [BTCUSDT-20251010T210000.000Z-flow] = 9.186
SELECT qty FROM depth
  WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND band_pct = 0.1 AND grid_ns = 100000000
    AND ts <= TIMESTAMP_NS '2025-10-10 21:00:00.000000000' AND qty IS NOT NULL ORDER BY ts DESC LIMIT 1;

-- S56: grid_depth_after_ask [BTCUSDT-20251010T210000.000Z-flow] = 9.567
SELECT qty FROM depth
  WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND band_pct = 0.1 AND grid_ns = 100000000
    AND ts >= TIMESTAMP_NS '2025-10-10 21:00:44.803000000' AND qty IS NOT NULL ORDER BY ts LIMIT 1;

-- S57: grid_removed_ask [BTCUSDT-20251010T210000.000Z-flow] = -0.0414762
SELECT 1 - a.qty / nullif(b.qty, 0) FROM
 (SELECT qty FROM depth
  WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND band_pct = 0.1 AND grid_ns = 100000000
    AND ts >= TIMESTAMP_NS '2025-10-10 21:00:44.803000000' AND qty IS NOT NULL ORDER BY ts LIMIT 1) a,
 (SELECT qty FROM depth
  WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND band_pct = 0.1 AND grid_ns = 100000000
    AND ts <= TIMESTAMP_NS '2025-10-10 21:00:00.000000000' AND qty IS NOT NULL ORDER BY ts DESC LIMIT 1) b;

-- S58: traded_bid [BTCUSDT-20251010T210000.000Z-flow] = 28
SELECT coalesce(sum(traded), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'bid' AND cause IN ('add', 'trade', 'cancel', 'mixed') AND delta < 0
  AND price >= (SELECT bid_floor FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
  AND ts_ns > 1760129999900000000 AND ts_ns <= 1760130044903000000;

-- S59: cancelled_bid [BTCUSDT-20251010T210000.000Z-flow] = 151.275
SELECT coalesce(sum(cancelled), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'bid' AND cause IN ('add', 'trade', 'cancel', 'mixed') AND delta < 0
  AND price >= (SELECT bid_floor FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
  AND ts_ns > 1760129999900000000 AND ts_ns <= 1760130044903000000;

-- S60: added_bid [BTCUSDT-20251010T210000.000Z-flow] = 178.131
SELECT coalesce(sum(added), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'bid' AND cause IN ('add', 'trade', 'cancel', 'mixed')
  AND price >= (SELECT bid_floor FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
  AND ts_ns > 1760129999900000000 AND ts_ns <= 1760130044903000000;

-- S61: traded_ask [BTCUSDT-20251010T210000.000Z-flow] = 1.569
SELECT coalesce(sum(traded), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND cause IN ('add', 'trade', 'cancel', 'mixed') AND delta < 0
  AND price <= (SELECT ask_cap FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
  AND ts_ns > 1760129999900000000 AND ts_ns <= 1760130044903000000;

-- S62: cancelled_ask [BTCUSDT-20251010T210000.000Z-flow] = 174.732
SELECT coalesce(sum(cancelled), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND cause IN ('add', 'trade', 'cancel', 'mixed') AND delta < 0
  AND price <= (SELECT ask_cap FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
  AND ts_ns > 1760129999900000000 AND ts_ns <= 1760130044903000000;

-- S63: added_ask [BTCUSDT-20251010T210000.000Z-flow] = 176.667
SELECT coalesce(sum(added), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND cause IN ('add', 'trade', 'cancel', 'mixed')
  AND price <= (SELECT ask_cap FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T210000.000Z-flow')
  AND ts_ns > 1760129999900000000 AND ts_ns <= 1760130044903000000;

-- S64: sell_volume [BTCUSDT-20251010T210000.000Z-flow] = 29.461
SELECT coalesce(sum(size), 0) FROM trades
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND aggressor = 'sell'
  AND ts_ns > 1760129999900000000 AND ts_ns <= 1760130044903000000;

-- S65: buy_volume [BTCUSDT-20251010T210000.000Z-flow] = 1.881
SELECT coalesce(sum(size), 0) FROM trades
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND aggressor = 'buy'
  AND ts_ns > 1760129999900000000 AND ts_ns <= 1760130044903000000;

-- S66: spread_bps_before [BTCUSDT-20251010T210000.000Z-flow] = 0.0192147
SELECT avg(spread / mid * 10000) FROM book_top
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND grid_ns = 100000000
  AND coalesce(valid, true) AND NOT coalesce(crossed, false)
  AND ts BETWEEN TIMESTAMP_NS '2025-10-10 20:54:59.900000000' AND TIMESTAMP_NS '2025-10-10 20:59:54.900000000';

-- S67: spread_bps_after [BTCUSDT-20251010T210000.000Z-flow] = 0.0201015
SELECT avg(spread / mid * 10000) FROM book_top
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND grid_ns = 100000000
  AND coalesce(valid, true) AND NOT coalesce(crossed, false)
  AND ts BETWEEN TIMESTAMP_NS '2025-10-10 21:00:44.903000000' AND TIMESTAMP_NS '2025-10-10 21:02:44.903000000';

-- S68: confidence [BTCUSDT-20251010T211300.190Z-cliff] = 0.907
SELECT confidence FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S69: removed_frac_bid [BTCUSDT-20251010T211300.190Z-cliff] = 1
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT greatest(0, (depth_before_bid - depth_after_bid) / depth_before_bid) FROM e;

-- S70: removed_frac_bid [BTCUSDT-20251010T211300.190Z-cliff] = 1
SELECT removed_frac_bid FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S71: removed_frac_ask [BTCUSDT-20251010T211300.190Z-cliff] = 0.995593
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT greatest(0, (depth_before_ask - depth_after_ask) / depth_before_ask) FROM e;

-- S72: removed_frac_ask [BTCUSDT-20251010T211300.190Z-cliff] = 0.995593
SELECT removed_frac_ask FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S73: removed_frac [BTCUSDT-20251010T211300.190Z-cliff] = 0.997842
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT ((coalesce(depth_before_bid, 0) + coalesce(depth_before_ask, 0)) - (coalesce(depth_after_bid, 0) + coalesce(depth_after_ask, 0))) / (coalesce(depth_before_bid, 0) + coalesce(depth_before_ask, 0)) FROM e;

-- S74: removed_frac [BTCUSDT-20251010T211300.190Z-cliff] = 0.997842
SELECT removed_frac FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S75: depth_before_bid [BTCUSDT-20251010T211300.190Z-cliff] = 10.166
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT max(d.qty) FROM depth d, e WHERE d.exchange = e.exchange AND d.symbol = e.symbol AND d.grid_ns = 100000000
  AND d.side = 'bid' AND d.band_pct = e.band_pct
  AND d.ts_ns BETWEEN e.window_from AND e.window_to;

-- S76: depth_before_bid [BTCUSDT-20251010T211300.190Z-cliff] = 10.166
SELECT depth_before_bid FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S77: depth_after_bid [BTCUSDT-20251010T211300.190Z-cliff] = 0
SELECT depth_after_bid FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S78: depth_before_ask [BTCUSDT-20251010T211300.190Z-cliff] = 9.758
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT max(d.qty) FROM depth d, e WHERE d.exchange = e.exchange AND d.symbol = e.symbol AND d.grid_ns = 100000000
  AND d.side = 'ask' AND d.band_pct = e.band_pct
  AND d.ts_ns BETWEEN e.window_from AND e.window_to;

-- S79: depth_before_ask [BTCUSDT-20251010T211300.190Z-cliff] = 9.758
SELECT depth_before_ask FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S80: depth_after_ask [BTCUSDT-20251010T211300.190Z-cliff] = 0.043
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT min(d.qty) FROM depth d, e WHERE d.exchange = e.exchange AND d.symbol = e.symbol AND d.grid_ns = 100000000
  AND d.side = 'ask' AND d.band_pct = e.band_pct
  AND d.ts_ns BETWEEN e.window_from AND e.window_to;

-- S81: depth_after_ask [BTCUSDT-20251010T211300.190Z-cliff] = 0.043
SELECT depth_after_ask FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S82: speed_ms [BTCUSDT-20251010T211300.190Z-cliff] = 81
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT (end_ts_ns - start_ts_ns) / 1e6 FROM e;

-- S83: speed_ms [BTCUSDT-20251010T211300.190Z-cliff] = 81
SELECT speed_ms FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S84: side_lag_ms [BTCUSDT-20251010T211300.190Z-cliff] = 0
SELECT side_lag_ms FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S85: traded_share_net [BTCUSDT-20251010T211300.190Z-cliff] = 0.0467144
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid', 'ask')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT t / (t + greatest(c - a, 0)) FROM q;

-- S86: traded_share_net [BTCUSDT-20251010T211300.190Z-cliff] = 0.0467144
SELECT traded_share_net FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S87: traded_share [BTCUSDT-20251010T211300.190Z-cliff] = 0.0434192
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid', 'ask')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT t / (t + c) FROM q;

-- S88: traded_share [BTCUSDT-20251010T211300.190Z-cliff] = 0.0434192
SELECT traded_share FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S89: traded_qty [BTCUSDT-20251010T211300.190Z-cliff] = 0.927
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid', 'ask')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT t FROM q;

-- S90: traded_qty [BTCUSDT-20251010T211300.190Z-cliff] = 0.927
SELECT traded_qty FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S91: cancelled_qty [BTCUSDT-20251010T211300.190Z-cliff] = 20.423
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid', 'ask')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT c FROM q;

-- S92: cancelled_qty [BTCUSDT-20251010T211300.190Z-cliff] = 20.423
SELECT cancelled_qty FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S93: added_qty [BTCUSDT-20251010T211300.190Z-cliff] = 1.506
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid', 'ask')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed')),
q AS (SELECT coalesce(sum(traded) FILTER (WHERE delta < 0), 0) AS t, coalesce(sum(cancelled) FILTER (WHERE delta < 0), 0) AS c,
             coalesce(sum(added), 0) AS a FROM w)
SELECT a FROM q;

-- S94: added_qty [BTCUSDT-20251010T211300.190Z-cliff] = 1.506
SELECT added_qty FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S95: implied_qty [BTCUSDT-20251010T211300.190Z-cliff] = 0.024
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid', 'ask')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed'))
SELECT coalesce(sum(implied), 0) FROM w;

-- S96: implied_qty [BTCUSDT-20251010T211300.190Z-cliff] = 0.024
SELECT implied_qty FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S97: levels_hit [BTCUSDT-20251010T211300.190Z-cliff] = 90
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff'),
w AS (  -- the event's level changes: its window, side(s) and band; maker actions only
  SELECT lc.* FROM level_changes lc, e
  WHERE lc.exchange = e.exchange AND lc.symbol = e.symbol AND lc.side IN ('bid', 'ask')
    AND lc.ts_ns > e.window_from AND lc.ts_ns <= e.window_to
    AND (e.bid_floor IS NULL OR (lc.side = 'bid' AND lc.price >= e.bid_floor)
                             OR (lc.side = 'ask' AND lc.price <= e.ask_cap))
    AND lc.cause IN ('add', 'trade', 'cancel', 'mixed'))
SELECT count(DISTINCT side || ' ' || price::VARCHAR) FILTER (WHERE delta < 0) FROM w;

-- S98: levels_hit [BTCUSDT-20251010T211300.190Z-cliff] = 90
SELECT levels_hit FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S99: sync_share_500ms [BTCUSDT-20251010T211300.190Z-cliff] = 0.944403
SELECT sync_share_500ms FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S100: levels_emptied_500ms [BTCUSDT-20251010T211300.190Z-cliff] = 53
SELECT levels_emptied_500ms FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S101: erosion_corr [BTCUSDT-20251010T211300.190Z-cliff] = 0.563651
SELECT erosion_corr FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S102: trade_volume [BTCUSDT-20251010T211300.190Z-cliff] = 1.219
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT coalesce(sum(t.size), 0) FROM trades t, e
WHERE t.exchange = e.exchange AND t.symbol = e.symbol AND t.aggressor IN ('sell', 'buy')
  AND t.ts_ns > e.window_from AND t.ts_ns <= e.window_to;

-- S103: trade_volume [BTCUSDT-20251010T211300.190Z-cliff] = 1.219
SELECT trade_volume FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S104: other_side_fell [BTCUSDT-20251010T211300.190Z-cliff] = True
SELECT other_side_fell FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S105: spread_before [BTCUSDT-20251010T211300.190Z-cliff] = 0.1
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT b.spread FROM book_top b, e WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
  AND b.ts_ns <= e.window_from ORDER BY b.ts DESC LIMIT 1;

-- S106: spread_before [BTCUSDT-20251010T211300.190Z-cliff] = 0.1
SELECT spread_before FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S107: spread_after [BTCUSDT-20251010T211300.190Z-cliff] = 17.6
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT b.spread FROM book_top b, e WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
  AND b.ts_ns >= e.window_to ORDER BY b.ts LIMIT 1;

-- S108: spread_after [BTCUSDT-20251010T211300.190Z-cliff] = 17.6
SELECT spread_after FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S109: mid_before [BTCUSDT-20251010T211300.190Z-cliff] = 119962
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT b.mid FROM book_top b, e WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
  AND b.ts_ns <= e.window_from ORDER BY b.ts DESC LIMIT 1;

-- S110: mid_before [BTCUSDT-20251010T211300.190Z-cliff] = 119962
SELECT mid_before FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S111: mid_after [BTCUSDT-20251010T211300.190Z-cliff] = 119963
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT b.mid FROM book_top b, e WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
  AND b.ts_ns >= e.window_to ORDER BY b.ts LIMIT 1;

-- S112: mid_after [BTCUSDT-20251010T211300.190Z-cliff] = 119963
SELECT mid_after FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S113: price_move_bps [BTCUSDT-20251010T211300.190Z-cliff] = 0.14588
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT (mid_after - mid_before) / mid_before * 10000 FROM e;

-- S114: price_move_bps [BTCUSDT-20251010T211300.190Z-cliff] = 0.14588
SELECT price_move_bps FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S115: price_move_after_bps [BTCUSDT-20251010T211300.190Z-cliff] = -26.4039
SELECT price_move_after_bps FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S116: impact_before [BTCUSDT-20251010T211300.190Z-cliff] = 0.418397
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff'),
m_before AS (  -- last mid of each second, before the event
  SELECT b.ts_ns // 1000000000 AS sec, arg_max(b.mid, b.ts) AS mid FROM book_top b, e
  WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
    AND b.ts_ns BETWEEN e.window_from - 300000000000 AND e.window_from - 5000000000 GROUP BY sec),
i_before AS (SELECT (SELECT sum(abs(mid - prev) / prev) * 10000 FROM
            (SELECT mid, lag(mid) OVER (ORDER BY sec) AS prev FROM m_before))
          / (SELECT sum(t.size) FROM trades t, e WHERE t.exchange = e.exchange AND t.symbol = e.symbol
               AND t.ts_ns BETWEEN e.window_from - 300000000000 AND e.window_from - 5000000000) AS impact),
m_after AS (  -- last mid of each second, after the event
  SELECT b.ts_ns // 1000000000 AS sec, arg_max(b.mid, b.ts) AS mid FROM book_top b, e
  WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
    AND b.ts_ns BETWEEN e.window_to AND e.window_to + 120000000000 GROUP BY sec),
i_after AS (SELECT (SELECT sum(abs(mid - prev) / prev) * 10000 FROM
            (SELECT mid, lag(mid) OVER (ORDER BY sec) AS prev FROM m_after))
          / (SELECT sum(t.size) FROM trades t, e WHERE t.exchange = e.exchange AND t.symbol = e.symbol
               AND t.ts_ns BETWEEN e.window_to AND e.window_to + 120000000000) AS impact)
SELECT impact FROM i_before;

-- S117: impact_before [BTCUSDT-20251010T211300.190Z-cliff] = 0.418397
SELECT impact_before FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S118: impact_after [BTCUSDT-20251010T211300.190Z-cliff] = 2.18252
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff'),
m_before AS (  -- last mid of each second, before the event
  SELECT b.ts_ns // 1000000000 AS sec, arg_max(b.mid, b.ts) AS mid FROM book_top b, e
  WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
    AND b.ts_ns BETWEEN e.window_from - 300000000000 AND e.window_from - 5000000000 GROUP BY sec),
i_before AS (SELECT (SELECT sum(abs(mid - prev) / prev) * 10000 FROM
            (SELECT mid, lag(mid) OVER (ORDER BY sec) AS prev FROM m_before))
          / (SELECT sum(t.size) FROM trades t, e WHERE t.exchange = e.exchange AND t.symbol = e.symbol
               AND t.ts_ns BETWEEN e.window_from - 300000000000 AND e.window_from - 5000000000) AS impact),
m_after AS (  -- last mid of each second, after the event
  SELECT b.ts_ns // 1000000000 AS sec, arg_max(b.mid, b.ts) AS mid FROM book_top b, e
  WHERE b.exchange = e.exchange AND b.symbol = e.symbol AND b.grid_ns = 100000000 AND b.mid IS NOT NULL
    AND b.ts_ns BETWEEN e.window_to AND e.window_to + 120000000000 GROUP BY sec),
i_after AS (SELECT (SELECT sum(abs(mid - prev) / prev) * 10000 FROM
            (SELECT mid, lag(mid) OVER (ORDER BY sec) AS prev FROM m_after))
          / (SELECT sum(t.size) FROM trades t, e WHERE t.exchange = e.exchange AND t.symbol = e.symbol
               AND t.ts_ns BETWEEN e.window_to AND e.window_to + 120000000000) AS impact)
SELECT impact FROM i_after;

-- S119: impact_after [BTCUSDT-20251010T211300.190Z-cliff] = 2.18252
SELECT impact_after FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S120: vacuum_ratio [BTCUSDT-20251010T211300.190Z-cliff] = 5.21639
WITH e AS (SELECT * FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
SELECT impact_after / impact_before FROM e;

-- S121: vacuum_ratio [BTCUSDT-20251010T211300.190Z-cliff] = 5.21639
SELECT vacuum_ratio FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S122: recovery_ms [BTCUSDT-20251010T211300.190Z-cliff] = 54429
SELECT recovery_ms FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S123: band_pct [BTCUSDT-20251010T211300.190Z-cliff] = 0.1
SELECT band_pct FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S124: bid_floor [BTCUSDT-20251010T211300.190Z-cliff] = 119842
SELECT bid_floor FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S125: ask_cap [BTCUSDT-20251010T211300.190Z-cliff] = 120082
SELECT ask_cap FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S126: window_from [BTCUSDT-20251010T211300.190Z-cliff] = 1760130780100000000
SELECT window_from FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S127: window_to [BTCUSDT-20251010T211300.190Z-cliff] = 1760130785200000000
SELECT window_to FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S128: gap_share [BTCUSDT-20251010T211300.190Z-cliff] = 0
SELECT gap_share FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S129: trigger [BTCUSDT-20251010T211300.190Z-cliff] = cliff
SELECT trigger FROM events
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff';

-- S130: traded_bid [BTCUSDT-20251010T211300.190Z-cliff] = 0.485
SELECT coalesce(sum(traded), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'bid' AND cause IN ('add', 'trade', 'cancel', 'mixed') AND delta < 0
  AND price >= (SELECT bid_floor FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
  AND ts_ns > 1760130780100000000 AND ts_ns <= 1760130785200000000;

-- S131: cancelled_bid [BTCUSDT-20251010T211300.190Z-cliff] = 10.297
SELECT coalesce(sum(cancelled), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'bid' AND cause IN ('add', 'trade', 'cancel', 'mixed') AND delta < 0
  AND price >= (SELECT bid_floor FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
  AND ts_ns > 1760130780100000000 AND ts_ns <= 1760130785200000000;

-- S132: added_bid [BTCUSDT-20251010T211300.190Z-cliff] = 0.653
SELECT coalesce(sum(added), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'bid' AND cause IN ('add', 'trade', 'cancel', 'mixed')
  AND price >= (SELECT bid_floor FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
  AND ts_ns > 1760130780100000000 AND ts_ns <= 1760130785200000000;

-- S133: traded_ask [BTCUSDT-20251010T211300.190Z-cliff] = 0.442
SELECT coalesce(sum(traded), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND cause IN ('add', 'trade', 'cancel', 'mixed') AND delta < 0
  AND price <= (SELECT ask_cap FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
  AND ts_ns > 1760130780100000000 AND ts_ns <= 1760130785200000000;

-- S134: cancelled_ask [BTCUSDT-20251010T211300.190Z-cliff] = 10.126
SELECT coalesce(sum(cancelled), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND cause IN ('add', 'trade', 'cancel', 'mixed') AND delta < 0
  AND price <= (SELECT ask_cap FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
  AND ts_ns > 1760130780100000000 AND ts_ns <= 1760130785200000000;

-- S135: added_ask [BTCUSDT-20251010T211300.190Z-cliff] = 0.853
SELECT coalesce(sum(added), 0) FROM level_changes
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND side = 'ask' AND cause IN ('add', 'trade', 'cancel', 'mixed')
  AND price <= (SELECT ask_cap FROM events WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND event_id = 'BTCUSDT-20251010T211300.190Z-cliff')
  AND ts_ns > 1760130780100000000 AND ts_ns <= 1760130785200000000;

-- S136: sell_volume [BTCUSDT-20251010T211300.190Z-cliff] = 0.759
SELECT coalesce(sum(size), 0) FROM trades
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND aggressor = 'sell'
  AND ts_ns > 1760130780100000000 AND ts_ns <= 1760130785200000000;

-- S137: buy_volume [BTCUSDT-20251010T211300.190Z-cliff] = 0.46
SELECT coalesce(sum(size), 0) FROM trades
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND aggressor = 'buy'
  AND ts_ns > 1760130780100000000 AND ts_ns <= 1760130785200000000;

-- S138: spread_bps_before [BTCUSDT-20251010T211300.190Z-cliff] = 0.0201181
SELECT avg(spread / mid * 10000) FROM book_top
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND grid_ns = 100000000
  AND coalesce(valid, true) AND NOT coalesce(crossed, false)
  AND ts BETWEEN TIMESTAMP_NS '2025-10-10 21:08:00.100000000' AND TIMESTAMP_NS '2025-10-10 21:12:55.100000000';

-- S139: spread_bps_after [BTCUSDT-20251010T211300.190Z-cliff] = 0.562031
SELECT avg(spread / mid * 10000) FROM book_top
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND grid_ns = 100000000
  AND coalesce(valid, true) AND NOT coalesce(crossed, false)
  AND ts BETWEEN TIMESTAMP_NS '2025-10-10 21:13:05.200000000' AND TIMESTAMP_NS '2025-10-10 21:15:05.200000000';

-- S140: window_mid_max = 120000
SELECT max(mid) FROM book_top
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND grid_ns = 100000000 AND coalesce(valid, true)
  AND ts BETWEEN TIMESTAMP_NS '2025-10-10 20:58:00.000000000' AND TIMESTAMP_NS '2025-10-10 21:28:00.000000000';

-- S141: window_mid_min = 119616
SELECT min(mid) FROM book_top
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND grid_ns = 100000000 AND coalesce(valid, true)
  AND ts BETWEEN TIMESTAMP_NS '2025-10-10 20:58:00.000000000' AND TIMESTAMP_NS '2025-10-10 21:28:00.000000000';

-- S142: window_spread_bps = 0.0549042
SELECT avg(spread / mid * 10000) FROM book_top
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND grid_ns = 100000000 AND coalesce(valid, true)
  AND ts BETWEEN TIMESTAMP_NS '2025-10-10 20:58:00.000000000' AND TIMESTAMP_NS '2025-10-10 21:28:00.000000000' AND NOT coalesce(crossed, false);

-- S143: window_sell_volume = 121.383
SELECT coalesce(sum(size), 0) FROM trades
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND aggressor = 'sell'
  AND ts BETWEEN TIMESTAMP_NS '2025-10-10 20:58:00.000000000' AND TIMESTAMP_NS '2025-10-10 21:28:00.000000000';

-- S144: window_buy_volume = 102.136
SELECT coalesce(sum(size), 0) FROM trades
WHERE exchange = 'binance-futures' AND symbol = 'BTCUSDT' AND aggressor = 'buy'
  AND ts BETWEEN TIMESTAMP_NS '2025-10-10 20:58:00.000000000' AND TIMESTAMP_NS '2025-10-10 21:28:00.000000000';
