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

-- S68: confidence [BTCUSDT-20251010T211300.190Z-cliff] = 0.818
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

-- S145: regime [BTCUSDT-20251010T211300.190Z-cliff] = None
SELECT regime
FROM (
-- forensics sql --query regime --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param source=trades
WITH px AS (
    SELECT ts_ns, seq AS ord, CAST(price AS DOUBLE) AS p
    FROM trades
    WHERE 'trades' = 'trades'
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    UNION ALL
    SELECT ts_ns, ts_ns AS ord, CAST(mid AS DOUBLE) AS p
    FROM book_top
    WHERE 'trades' = 'mid' AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
bars AS (  -- last price of every complete short_ret bucket before TIMESTAMP '2025-10-10 21:13:00.190000'
    SELECT ts_ns // 60000000000 AS k, arg_max(p, ord) AS p
    FROM px
    GROUP BY 1
    HAVING (ts_ns // 60000000000 + 1) * 60000000000 <= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
),
rets AS (
    SELECT (b.k + 1) * 60000000000 AS close_ns,
           ln(b.p / s.p) * 1e4 AS r_short,
           ln(b.p / l.p) * 1e4 AS r_long
    FROM bars b
    LEFT JOIN bars s ON s.k = b.k - 1
    LEFT JOIN bars l ON l.k = b.k - 600000000000 // 60000000000
),
tagged AS (
    SELECT *,
           CASE WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 THEN 'recent'
                WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 THEN 'history' END AS win
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
        min(close_ns) FILTER (WHERE win = 'history') - 60000000000                        AS history_from_ns,
        max(close_ns) FILTER (WHERE win = 'history')                                    AS history_to_ns
    FROM tagged
),
judged AS (
    SELECT *,
           short_vol_recent_bps / nullif(short_vol_history_bps, 0) AS short_ratio,
           long_vol_recent_bps / nullif(long_vol_history_bps, 0)   AS long_ratio,
           coalesce(history_to_ns - history_from_ns, 0)            AS history_ns,
           n_short_recent * 60000000000                             AS recent_covered_ns,
           (coalesce(history_to_ns - history_from_ns, 0) >= 3600000000000
            AND n_short_recent * 60000000000 >= 0.8 * 3600000000000
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
    history_ns, recent_covered_ns, 3600000000000 AS min_history_ns, 3600000000000 AS recent_ns,
    1.5 AS high_ratio, 2.0 AS long_high_ratio,
    CASE WHEN enough THEN short_ratio >= 1.5 END AS short_high,
    CASE WHEN enough THEN long_ratio >= 2.0 END AS long_high,
    CASE WHEN NOT enough THEN NULL
         WHEN short_ratio >= 1.5 AND long_ratio >= 2.0 THEN 'crisis'
         WHEN short_ratio >= 1.5 THEN 'range'
         WHEN long_ratio >= 2.0 THEN 'trend'
         ELSE 'stable' END AS regime
FROM judged
) q;

-- S146: regime_short_vol [BTCUSDT-20251010T211300.190Z-cliff] = 0.521186
SELECT short_vol_recent_bps
FROM (
-- forensics sql --query regime --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param source=trades
WITH px AS (
    SELECT ts_ns, seq AS ord, CAST(price AS DOUBLE) AS p
    FROM trades
    WHERE 'trades' = 'trades'
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    UNION ALL
    SELECT ts_ns, ts_ns AS ord, CAST(mid AS DOUBLE) AS p
    FROM book_top
    WHERE 'trades' = 'mid' AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
bars AS (  -- last price of every complete short_ret bucket before TIMESTAMP '2025-10-10 21:13:00.190000'
    SELECT ts_ns // 60000000000 AS k, arg_max(p, ord) AS p
    FROM px
    GROUP BY 1
    HAVING (ts_ns // 60000000000 + 1) * 60000000000 <= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
),
rets AS (
    SELECT (b.k + 1) * 60000000000 AS close_ns,
           ln(b.p / s.p) * 1e4 AS r_short,
           ln(b.p / l.p) * 1e4 AS r_long
    FROM bars b
    LEFT JOIN bars s ON s.k = b.k - 1
    LEFT JOIN bars l ON l.k = b.k - 600000000000 // 60000000000
),
tagged AS (
    SELECT *,
           CASE WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 THEN 'recent'
                WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 THEN 'history' END AS win
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
        min(close_ns) FILTER (WHERE win = 'history') - 60000000000                        AS history_from_ns,
        max(close_ns) FILTER (WHERE win = 'history')                                    AS history_to_ns
    FROM tagged
),
judged AS (
    SELECT *,
           short_vol_recent_bps / nullif(short_vol_history_bps, 0) AS short_ratio,
           long_vol_recent_bps / nullif(long_vol_history_bps, 0)   AS long_ratio,
           coalesce(history_to_ns - history_from_ns, 0)            AS history_ns,
           n_short_recent * 60000000000                             AS recent_covered_ns,
           (coalesce(history_to_ns - history_from_ns, 0) >= 3600000000000
            AND n_short_recent * 60000000000 >= 0.8 * 3600000000000
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
    history_ns, recent_covered_ns, 3600000000000 AS min_history_ns, 3600000000000 AS recent_ns,
    1.5 AS high_ratio, 2.0 AS long_high_ratio,
    CASE WHEN enough THEN short_ratio >= 1.5 END AS short_high,
    CASE WHEN enough THEN long_ratio >= 2.0 END AS long_high,
    CASE WHEN NOT enough THEN NULL
         WHEN short_ratio >= 1.5 AND long_ratio >= 2.0 THEN 'crisis'
         WHEN short_ratio >= 1.5 THEN 'range'
         WHEN long_ratio >= 2.0 THEN 'trend'
         ELSE 'stable' END AS regime
FROM judged
) q;

-- S147: regime_short_vol_hist [BTCUSDT-20251010T211300.190Z-cliff] = None
SELECT short_vol_history_bps
FROM (
-- forensics sql --query regime --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param source=trades
WITH px AS (
    SELECT ts_ns, seq AS ord, CAST(price AS DOUBLE) AS p
    FROM trades
    WHERE 'trades' = 'trades'
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    UNION ALL
    SELECT ts_ns, ts_ns AS ord, CAST(mid AS DOUBLE) AS p
    FROM book_top
    WHERE 'trades' = 'mid' AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
bars AS (  -- last price of every complete short_ret bucket before TIMESTAMP '2025-10-10 21:13:00.190000'
    SELECT ts_ns // 60000000000 AS k, arg_max(p, ord) AS p
    FROM px
    GROUP BY 1
    HAVING (ts_ns // 60000000000 + 1) * 60000000000 <= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
),
rets AS (
    SELECT (b.k + 1) * 60000000000 AS close_ns,
           ln(b.p / s.p) * 1e4 AS r_short,
           ln(b.p / l.p) * 1e4 AS r_long
    FROM bars b
    LEFT JOIN bars s ON s.k = b.k - 1
    LEFT JOIN bars l ON l.k = b.k - 600000000000 // 60000000000
),
tagged AS (
    SELECT *,
           CASE WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 THEN 'recent'
                WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 THEN 'history' END AS win
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
        min(close_ns) FILTER (WHERE win = 'history') - 60000000000                        AS history_from_ns,
        max(close_ns) FILTER (WHERE win = 'history')                                    AS history_to_ns
    FROM tagged
),
judged AS (
    SELECT *,
           short_vol_recent_bps / nullif(short_vol_history_bps, 0) AS short_ratio,
           long_vol_recent_bps / nullif(long_vol_history_bps, 0)   AS long_ratio,
           coalesce(history_to_ns - history_from_ns, 0)            AS history_ns,
           n_short_recent * 60000000000                             AS recent_covered_ns,
           (coalesce(history_to_ns - history_from_ns, 0) >= 3600000000000
            AND n_short_recent * 60000000000 >= 0.8 * 3600000000000
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
    history_ns, recent_covered_ns, 3600000000000 AS min_history_ns, 3600000000000 AS recent_ns,
    1.5 AS high_ratio, 2.0 AS long_high_ratio,
    CASE WHEN enough THEN short_ratio >= 1.5 END AS short_high,
    CASE WHEN enough THEN long_ratio >= 2.0 END AS long_high,
    CASE WHEN NOT enough THEN NULL
         WHEN short_ratio >= 1.5 AND long_ratio >= 2.0 THEN 'crisis'
         WHEN short_ratio >= 1.5 THEN 'range'
         WHEN long_ratio >= 2.0 THEN 'trend'
         ELSE 'stable' END AS regime
FROM judged
) q;

-- S148: regime_short_ratio [BTCUSDT-20251010T211300.190Z-cliff] = None
SELECT short_ratio
FROM (
-- forensics sql --query regime --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param source=trades
WITH px AS (
    SELECT ts_ns, seq AS ord, CAST(price AS DOUBLE) AS p
    FROM trades
    WHERE 'trades' = 'trades'
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    UNION ALL
    SELECT ts_ns, ts_ns AS ord, CAST(mid AS DOUBLE) AS p
    FROM book_top
    WHERE 'trades' = 'mid' AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
bars AS (  -- last price of every complete short_ret bucket before TIMESTAMP '2025-10-10 21:13:00.190000'
    SELECT ts_ns // 60000000000 AS k, arg_max(p, ord) AS p
    FROM px
    GROUP BY 1
    HAVING (ts_ns // 60000000000 + 1) * 60000000000 <= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
),
rets AS (
    SELECT (b.k + 1) * 60000000000 AS close_ns,
           ln(b.p / s.p) * 1e4 AS r_short,
           ln(b.p / l.p) * 1e4 AS r_long
    FROM bars b
    LEFT JOIN bars s ON s.k = b.k - 1
    LEFT JOIN bars l ON l.k = b.k - 600000000000 // 60000000000
),
tagged AS (
    SELECT *,
           CASE WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 THEN 'recent'
                WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 THEN 'history' END AS win
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
        min(close_ns) FILTER (WHERE win = 'history') - 60000000000                        AS history_from_ns,
        max(close_ns) FILTER (WHERE win = 'history')                                    AS history_to_ns
    FROM tagged
),
judged AS (
    SELECT *,
           short_vol_recent_bps / nullif(short_vol_history_bps, 0) AS short_ratio,
           long_vol_recent_bps / nullif(long_vol_history_bps, 0)   AS long_ratio,
           coalesce(history_to_ns - history_from_ns, 0)            AS history_ns,
           n_short_recent * 60000000000                             AS recent_covered_ns,
           (coalesce(history_to_ns - history_from_ns, 0) >= 3600000000000
            AND n_short_recent * 60000000000 >= 0.8 * 3600000000000
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
    history_ns, recent_covered_ns, 3600000000000 AS min_history_ns, 3600000000000 AS recent_ns,
    1.5 AS high_ratio, 2.0 AS long_high_ratio,
    CASE WHEN enough THEN short_ratio >= 1.5 END AS short_high,
    CASE WHEN enough THEN long_ratio >= 2.0 END AS long_high,
    CASE WHEN NOT enough THEN NULL
         WHEN short_ratio >= 1.5 AND long_ratio >= 2.0 THEN 'crisis'
         WHEN short_ratio >= 1.5 THEN 'range'
         WHEN long_ratio >= 2.0 THEN 'trend'
         ELSE 'stable' END AS regime
FROM judged
) q;

-- S149: regime_long_vol [BTCUSDT-20251010T211300.190Z-cliff] = 2.61004
SELECT long_vol_recent_bps
FROM (
-- forensics sql --query regime --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param source=trades
WITH px AS (
    SELECT ts_ns, seq AS ord, CAST(price AS DOUBLE) AS p
    FROM trades
    WHERE 'trades' = 'trades'
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    UNION ALL
    SELECT ts_ns, ts_ns AS ord, CAST(mid AS DOUBLE) AS p
    FROM book_top
    WHERE 'trades' = 'mid' AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
bars AS (  -- last price of every complete short_ret bucket before TIMESTAMP '2025-10-10 21:13:00.190000'
    SELECT ts_ns // 60000000000 AS k, arg_max(p, ord) AS p
    FROM px
    GROUP BY 1
    HAVING (ts_ns // 60000000000 + 1) * 60000000000 <= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
),
rets AS (
    SELECT (b.k + 1) * 60000000000 AS close_ns,
           ln(b.p / s.p) * 1e4 AS r_short,
           ln(b.p / l.p) * 1e4 AS r_long
    FROM bars b
    LEFT JOIN bars s ON s.k = b.k - 1
    LEFT JOIN bars l ON l.k = b.k - 600000000000 // 60000000000
),
tagged AS (
    SELECT *,
           CASE WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 THEN 'recent'
                WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 THEN 'history' END AS win
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
        min(close_ns) FILTER (WHERE win = 'history') - 60000000000                        AS history_from_ns,
        max(close_ns) FILTER (WHERE win = 'history')                                    AS history_to_ns
    FROM tagged
),
judged AS (
    SELECT *,
           short_vol_recent_bps / nullif(short_vol_history_bps, 0) AS short_ratio,
           long_vol_recent_bps / nullif(long_vol_history_bps, 0)   AS long_ratio,
           coalesce(history_to_ns - history_from_ns, 0)            AS history_ns,
           n_short_recent * 60000000000                             AS recent_covered_ns,
           (coalesce(history_to_ns - history_from_ns, 0) >= 3600000000000
            AND n_short_recent * 60000000000 >= 0.8 * 3600000000000
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
    history_ns, recent_covered_ns, 3600000000000 AS min_history_ns, 3600000000000 AS recent_ns,
    1.5 AS high_ratio, 2.0 AS long_high_ratio,
    CASE WHEN enough THEN short_ratio >= 1.5 END AS short_high,
    CASE WHEN enough THEN long_ratio >= 2.0 END AS long_high,
    CASE WHEN NOT enough THEN NULL
         WHEN short_ratio >= 1.5 AND long_ratio >= 2.0 THEN 'crisis'
         WHEN short_ratio >= 1.5 THEN 'range'
         WHEN long_ratio >= 2.0 THEN 'trend'
         ELSE 'stable' END AS regime
FROM judged
) q;

-- S150: regime_long_vol_hist [BTCUSDT-20251010T211300.190Z-cliff] = None
SELECT long_vol_history_bps
FROM (
-- forensics sql --query regime --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param source=trades
WITH px AS (
    SELECT ts_ns, seq AS ord, CAST(price AS DOUBLE) AS p
    FROM trades
    WHERE 'trades' = 'trades'
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    UNION ALL
    SELECT ts_ns, ts_ns AS ord, CAST(mid AS DOUBLE) AS p
    FROM book_top
    WHERE 'trades' = 'mid' AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
bars AS (  -- last price of every complete short_ret bucket before TIMESTAMP '2025-10-10 21:13:00.190000'
    SELECT ts_ns // 60000000000 AS k, arg_max(p, ord) AS p
    FROM px
    GROUP BY 1
    HAVING (ts_ns // 60000000000 + 1) * 60000000000 <= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
),
rets AS (
    SELECT (b.k + 1) * 60000000000 AS close_ns,
           ln(b.p / s.p) * 1e4 AS r_short,
           ln(b.p / l.p) * 1e4 AS r_long
    FROM bars b
    LEFT JOIN bars s ON s.k = b.k - 1
    LEFT JOIN bars l ON l.k = b.k - 600000000000 // 60000000000
),
tagged AS (
    SELECT *,
           CASE WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 THEN 'recent'
                WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 THEN 'history' END AS win
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
        min(close_ns) FILTER (WHERE win = 'history') - 60000000000                        AS history_from_ns,
        max(close_ns) FILTER (WHERE win = 'history')                                    AS history_to_ns
    FROM tagged
),
judged AS (
    SELECT *,
           short_vol_recent_bps / nullif(short_vol_history_bps, 0) AS short_ratio,
           long_vol_recent_bps / nullif(long_vol_history_bps, 0)   AS long_ratio,
           coalesce(history_to_ns - history_from_ns, 0)            AS history_ns,
           n_short_recent * 60000000000                             AS recent_covered_ns,
           (coalesce(history_to_ns - history_from_ns, 0) >= 3600000000000
            AND n_short_recent * 60000000000 >= 0.8 * 3600000000000
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
    history_ns, recent_covered_ns, 3600000000000 AS min_history_ns, 3600000000000 AS recent_ns,
    1.5 AS high_ratio, 2.0 AS long_high_ratio,
    CASE WHEN enough THEN short_ratio >= 1.5 END AS short_high,
    CASE WHEN enough THEN long_ratio >= 2.0 END AS long_high,
    CASE WHEN NOT enough THEN NULL
         WHEN short_ratio >= 1.5 AND long_ratio >= 2.0 THEN 'crisis'
         WHEN short_ratio >= 1.5 THEN 'range'
         WHEN long_ratio >= 2.0 THEN 'trend'
         ELSE 'stable' END AS regime
FROM judged
) q;

-- S151: regime_long_ratio [BTCUSDT-20251010T211300.190Z-cliff] = None
SELECT long_ratio
FROM (
-- forensics sql --query regime --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param source=trades
WITH px AS (
    SELECT ts_ns, seq AS ord, CAST(price AS DOUBLE) AS p
    FROM trades
    WHERE 'trades' = 'trades'
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    UNION ALL
    SELECT ts_ns, ts_ns AS ord, CAST(mid AS DOUBLE) AS p
    FROM book_top
    WHERE 'trades' = 'mid' AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
bars AS (  -- last price of every complete short_ret bucket before TIMESTAMP '2025-10-10 21:13:00.190000'
    SELECT ts_ns // 60000000000 AS k, arg_max(p, ord) AS p
    FROM px
    GROUP BY 1
    HAVING (ts_ns // 60000000000 + 1) * 60000000000 <= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
),
rets AS (
    SELECT (b.k + 1) * 60000000000 AS close_ns,
           ln(b.p / s.p) * 1e4 AS r_short,
           ln(b.p / l.p) * 1e4 AS r_long
    FROM bars b
    LEFT JOIN bars s ON s.k = b.k - 1
    LEFT JOIN bars l ON l.k = b.k - 600000000000 // 60000000000
),
tagged AS (
    SELECT *,
           CASE WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 THEN 'recent'
                WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 THEN 'history' END AS win
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
        min(close_ns) FILTER (WHERE win = 'history') - 60000000000                        AS history_from_ns,
        max(close_ns) FILTER (WHERE win = 'history')                                    AS history_to_ns
    FROM tagged
),
judged AS (
    SELECT *,
           short_vol_recent_bps / nullif(short_vol_history_bps, 0) AS short_ratio,
           long_vol_recent_bps / nullif(long_vol_history_bps, 0)   AS long_ratio,
           coalesce(history_to_ns - history_from_ns, 0)            AS history_ns,
           n_short_recent * 60000000000                             AS recent_covered_ns,
           (coalesce(history_to_ns - history_from_ns, 0) >= 3600000000000
            AND n_short_recent * 60000000000 >= 0.8 * 3600000000000
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
    history_ns, recent_covered_ns, 3600000000000 AS min_history_ns, 3600000000000 AS recent_ns,
    1.5 AS high_ratio, 2.0 AS long_high_ratio,
    CASE WHEN enough THEN short_ratio >= 1.5 END AS short_high,
    CASE WHEN enough THEN long_ratio >= 2.0 END AS long_high,
    CASE WHEN NOT enough THEN NULL
         WHEN short_ratio >= 1.5 AND long_ratio >= 2.0 THEN 'crisis'
         WHEN short_ratio >= 1.5 THEN 'range'
         WHEN long_ratio >= 2.0 THEN 'trend'
         ELSE 'stable' END AS regime
FROM judged
) q;

-- S152: regime_history [BTCUSDT-20251010T211300.190Z-cliff] = 0
SELECT history_ns
FROM (
-- forensics sql --query regime --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param source=trades
WITH px AS (
    SELECT ts_ns, seq AS ord, CAST(price AS DOUBLE) AS p
    FROM trades
    WHERE 'trades' = 'trades'
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    UNION ALL
    SELECT ts_ns, ts_ns AS ord, CAST(mid AS DOUBLE) AS p
    FROM book_top
    WHERE 'trades' = 'mid' AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
      AND ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 - 600000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
bars AS (  -- last price of every complete short_ret bucket before TIMESTAMP '2025-10-10 21:13:00.190000'
    SELECT ts_ns // 60000000000 AS k, arg_max(p, ord) AS p
    FROM px
    GROUP BY 1
    HAVING (ts_ns // 60000000000 + 1) * 60000000000 <= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
),
rets AS (
    SELECT (b.k + 1) * 60000000000 AS close_ns,
           ln(b.p / s.p) * 1e4 AS r_short,
           ln(b.p / l.p) * 1e4 AS r_long
    FROM bars b
    LEFT JOIN bars s ON s.k = b.k - 1
    LEFT JOIN bars l ON l.k = b.k - 600000000000 // 60000000000
),
tagged AS (
    SELECT *,
           CASE WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 THEN 'recent'
                WHEN close_ns > epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 3600000000000 - 2592000000000000 THEN 'history' END AS win
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
        min(close_ns) FILTER (WHERE win = 'history') - 60000000000                        AS history_from_ns,
        max(close_ns) FILTER (WHERE win = 'history')                                    AS history_to_ns
    FROM tagged
),
judged AS (
    SELECT *,
           short_vol_recent_bps / nullif(short_vol_history_bps, 0) AS short_ratio,
           long_vol_recent_bps / nullif(long_vol_history_bps, 0)   AS long_ratio,
           coalesce(history_to_ns - history_from_ns, 0)            AS history_ns,
           n_short_recent * 60000000000                             AS recent_covered_ns,
           (coalesce(history_to_ns - history_from_ns, 0) >= 3600000000000
            AND n_short_recent * 60000000000 >= 0.8 * 3600000000000
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
    history_ns, recent_covered_ns, 3600000000000 AS min_history_ns, 3600000000000 AS recent_ns,
    1.5 AS high_ratio, 2.0 AS long_high_ratio,
    CASE WHEN enough THEN short_ratio >= 1.5 END AS short_high,
    CASE WHEN enough THEN long_ratio >= 2.0 END AS long_high,
    CASE WHEN NOT enough THEN NULL
         WHEN short_ratio >= 1.5 AND long_ratio >= 2.0 THEN 'crisis'
         WHEN short_ratio >= 1.5 THEN 'range'
         WHEN long_ratio >= 2.0 THEN 'trend'
         ELSE 'stable' END AS regime
FROM judged
) q;

-- S153: precursor_lead [BTCUSDT-20251010T211300.190Z-cliff] = None
WITH q AS (
-- forensics sql --query precursors --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000) AS DATE) AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
buckets AS (
    SELECT range AS k FROM range(-(900000000000 // 10000000000), 0)
),
top AS (
    SELECT t.ts_ns, CAST(t.best_bid AS DOUBLE) AS pb, CAST(t.best_ask AS DOUBLE) AS pa,
           CAST(t.best_bid_size AS DOUBLE) AS qb, CAST(t.best_ask_size AS DOUBLE) AS qa,
           CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4 AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 - g.grid_ns AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
      AND t.date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 - 86400000000000) AS DATE)
      AND t.date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
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
    SELECT CAST(floor((ts_ns - epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')) / 10000000000) AS BIGINT) AS k, avg(spread_bps) AS spread_bps, avg(touch) AS touch_depth,
           sum(e) FILTER (WHERE has_prev) AS ofi, count(*) AS top_samples
    FROM ofi_e
    WHERE ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000
    GROUP BY 1
),
lc_b AS (
    SELECT CAST(floor((ts_ns - epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')) / 10000000000) AS BIGINT) AS k, count(*) FILTER (WHERE cancelled > 0) AS cancel_updates,
           sum(CAST(cancelled AS DOUBLE)) AS cancelled, sum(CAST(traded AS DOUBLE)) AS traded
    FROM level_changes
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000) AS DATE) AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
      AND cause IN ('add', 'trade', 'cancel', 'mixed')
    GROUP BY 1
),
tr_b AS (
    SELECT CAST(floor((ts_ns - epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')) / 10000000000) AS BIGINT) AS k,
           coalesce(sum(CAST(size AS DOUBLE)) FILTER (WHERE aggressor = 'buy'), 0)  AS buy_vol,
           coalesce(sum(CAST(size AS DOUBLE)) FILTER (WHERE aggressor = 'sell'), 0) AS sell_vol,
           count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 - 60000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 - 60000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    GROUP BY 1
),
have AS (
    SELECT (SELECT count(*) FROM lc_b) > 0 AS lc, (SELECT count(*) FROM tr_b) > 0 AS tr
),
flow AS (  -- trailing flow_window sums (buckets before the series start included)
    SELECT b.k, sum(t.buy_vol) AS buy_w, sum(t.sell_vol) AS sell_w
    FROM buckets b LEFT JOIN tr_b t ON t.k > b.k - 60000000000 // 10000000000 AND t.k <= b.k
    GROUP BY 1
),
series AS (
    SELECT b.k,
           (b.k + 1) * 10000000000 <= -300000000000                         AS baseline,
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
    make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + k * 10000000000)       AS bucket,
    epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + k * 10000000000                          AS bucket_ns,
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
)
SELECT 1760130780190000000 - min(bucket_ns) AS lead_ns FROM (
  SELECT bucket_ns, baseline, spread_bps_z >= 3 AND lead(spread_bps_z, 1) OVER (ORDER BY bucket_ns) >= 3 AS hit FROM q
  UNION ALL
  SELECT bucket_ns, baseline, -touch_depth_z >= 3 AND lead(-touch_depth_z, 1) OVER (ORDER BY bucket_ns) >= 3 AS hit FROM q
  UNION ALL
  SELECT bucket_ns, baseline, quote_flicker_z >= 3 AND lead(quote_flicker_z, 1) OVER (ORDER BY bucket_ns) >= 3 AS hit FROM q
  UNION ALL
  SELECT bucket_ns, baseline, cancel_to_trade_z >= 3 AND lead(cancel_to_trade_z, 1) OVER (ORDER BY bucket_ns) >= 3 AS hit FROM q
  UNION ALL
  SELECT bucket_ns, baseline, abs(ofi_z) >= 3 AND lead(abs(ofi_z), 1) OVER (ORDER BY bucket_ns) >= 3 AS hit FROM q
  UNION ALL
  SELECT bucket_ns, baseline, abs(aggr_imbalance_z) >= 3 AND lead(abs(aggr_imbalance_z), 1) OVER (ORDER BY bucket_ns) >= 3 AND lead(abs(aggr_imbalance_z), 2) OVER (ORDER BY bucket_ns) >= 3 AND lead(abs(aggr_imbalance_z), 3) OVER (ORDER BY bucket_ns) >= 3 AND lead(abs(aggr_imbalance_z), 4) OVER (ORDER BY bucket_ns) >= 3 AND lead(abs(aggr_imbalance_z), 5) OVER (ORDER BY bucket_ns) >= 3 AS hit FROM q
) f
WHERE NOT baseline AND hit;

-- S154: vacuum_impact_base [BTCUSDT-20251010T211300.190Z-cliff] = 0.454071
SELECT median(impact_per_vol)
FROM (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
) q
WHERE ts_ns < 1760130480190000000;

-- S155: vacuum_lambda_base [BTCUSDT-20251010T211300.190Z-cliff] = 0.0239339
SELECT median(kyle_lambda)
FROM (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
) q
WHERE ts_ns < 1760130480190000000;

-- S156: vacuum_depth_base [BTCUSDT-20251010T211300.190Z-cliff] = 19.6092
SELECT median(depth)
FROM (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
) q
WHERE ts_ns < 1760130480190000000;

-- S157: vacuum_spread_base [BTCUSDT-20251010T211300.190Z-cliff] = 0.019012
SELECT median(spread_bps)
FROM (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
) q
WHERE ts_ns < 1760130480190000000;

-- S158: vacuum_impact_peak [BTCUSDT-20251010T211300.190Z-cliff] = 3.40688
SELECT max(impact_per_vol)
FROM (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
) q
WHERE ts_ns >= 1760130780190000000;

-- S159: vacuum_lasted [BTCUSDT-20251010T211300.190Z-cliff] = 60000000000
WITH c AS (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
),
b AS (SELECT median(impact_per_vol) AS base FROM c WHERE ts_ns < 1760130480190000000),
hi AS (SELECT min(ts_ns) AS t0 FROM c, b WHERE ts_ns >= 1760130780190000000 AND impact_per_vol >= 2.0 * base),
lo AS (SELECT min(c.ts_ns) AS t1 FROM c, b, hi WHERE c.ts_ns > hi.t0 AND impact_per_vol < 2.0 * base)
SELECT CASE WHEN hi.t0 IS NULL THEN 0 ELSE lo.t1 - hi.t0 END AS lasted_ns FROM hi, lo;

-- S160: vacuum_depth_50 [BTCUSDT-20251010T211300.190Z-cliff] = 60000000000
WITH c AS (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
),
b AS (SELECT median(depth) AS base FROM c WHERE ts_ns < 1760130480190000000),
a AS (SELECT * FROM c WHERE ts_ns >= 1760130780190000000 AND depth IS NOT NULL),
tr AS (SELECT ts_ns AS t FROM a ORDER BY depth, ts_ns LIMIT 1)
SELECT min(a.ts_ns) - 1760130780190000000 AS ns FROM a, b, tr WHERE a.ts_ns >= tr.t AND a.depth >= 0.5 * b.base;

-- S161: vacuum_depth_90 [BTCUSDT-20251010T211300.190Z-cliff] = 60000000000
WITH c AS (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
),
b AS (SELECT median(depth) AS base FROM c WHERE ts_ns < 1760130480190000000),
a AS (SELECT * FROM c WHERE ts_ns >= 1760130780190000000 AND depth IS NOT NULL),
tr AS (SELECT ts_ns AS t FROM a ORDER BY depth, ts_ns LIMIT 1)
SELECT min(a.ts_ns) - 1760130780190000000 AS ns FROM a, b, tr WHERE a.ts_ns >= tr.t AND a.depth >= 0.9 * b.base;

-- S162: vacuum_spread_half_life [BTCUSDT-20251010T211300.190Z-cliff] = 60000000000
WITH c AS (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
),
b AS (SELECT median(spread_bps) AS base FROM c WHERE ts_ns < 1760130480190000000),
d AS (SELECT ts_ns, (spread_bps - base) * 1 AS dev FROM c, b WHERE ts_ns >= 1760130780190000000 AND spread_bps IS NOT NULL),
pk AS (SELECT ts_ns AS t, dev AS peak FROM d ORDER BY dev DESC, ts_ns LIMIT 1)
SELECT CASE WHEN pk.peak > 0 THEN min(d.ts_ns) FILTER (WHERE d.ts_ns >= pk.t AND d.dev <= pk.peak / 2) - pk.t END
FROM d, pk GROUP BY pk.t, pk.peak;

-- S163: vacuum_depth_half_life [BTCUSDT-20251010T211300.190Z-cliff] = 60000000000
WITH c AS (
-- forensics sql --query vacuum_curve --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param band=1.0
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
),
steps AS (
    SELECT range AS i, epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + range * 60000000000 AS s0
    FROM range(-(1800000000000 // 60000000000), 3600000000000 // 60000000000)
),
top AS (
    SELECT t.ts_ns // 1000000000 AS sec, arg_max(CAST(t.mid AS DOUBLE), t.ts_ns) AS mid,
           avg(CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4) AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 - 1000000000 AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
      AND t.mid IS NOT NULL AND coalesce(t.valid, true) AND NOT coalesce(t.crossed, false)
    GROUP BY 1
),
tr AS (
    SELECT ts_ns // 1000000000 AS sec,
           sum(CASE WHEN aggressor = 'buy' THEN CAST(size AS DOUBLE) ELSE -CAST(size AS DOUBLE) END) AS signed_vol,
           sum(size) AS vol, count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 - 180000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    WHERE ('binance-futures' IS NULL OR d.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR d.symbol = 'BTCUSDT')
      AND d.grid_ns IS NOT DISTINCT FROM g.grid_ns AND d.band_pct = 1.0
      AND d.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 1800000000000 AND d.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 3600000000000
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
    FROM steps s LEFT JOIN obs o ON o.sec * 1000000000 >= s.s0 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1, 2
),
kyle AS (
    SELECT s.i, regr_slope(o.dmid_bps, o.signed_vol) AS kyle_lambda, count(o.dmid_bps) AS kyle_n,
           regr_r2(o.dmid_bps, o.signed_vol) AS kyle_r2
    FROM steps s LEFT JOIN obs o
      ON o.consecutive AND o.sec * 1000000000 >= s.s0 + 60000000000 - 180000000000 AND o.sec * 1000000000 < s.s0 + 60000000000
    GROUP BY 1
),
dep_step AS (
    SELECT s.i, avg(d.depth) AS depth
    FROM steps s LEFT JOIN dep d ON d.ts_ns >= s.s0 AND d.ts_ns < s.s0 + 60000000000
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
),
b AS (SELECT median(depth) AS base FROM c WHERE ts_ns < 1760130480190000000),
d AS (SELECT ts_ns, (depth - base) * -1 AS dev FROM c, b WHERE ts_ns >= 1760130780190000000 AND depth IS NOT NULL),
pk AS (SELECT ts_ns AS t, dev AS peak FROM d ORDER BY dev DESC, ts_ns LIMIT 1)
SELECT CASE WHEN pk.peak > 0 THEN min(d.ts_ns) FILTER (WHERE d.ts_ns >= pk.t AND d.dev <= pk.peak / 2) - pk.t END
FROM d, pk GROUP BY pk.t, pk.peak;

-- S164: quote_life_p50_before [BTCUSDT-20251010T211300.190Z-cliff] = 1300
SELECT p50_ms
FROM (
-- forensics sql --query quote_life --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param during=1m --param before=10m --param after=10m
WITH lc AS (
    SELECT side, CAST(price AS DOUBLE) AS price, ts_ns, seq, CAST(prev_size AS DOUBLE) AS prev_size,
           CAST(added AS DOUBLE) AS added, CAST(traded + cancelled AS DOUBLE) AS removed,
           CAST(traded AS DOUBLE) / nullif(CAST(traded + cancelled AS DOUBLE), 0) AS tshare
    FROM level_changes
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 - 600000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 60000000000 + 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 - 600000000000) AS DATE)
      AND date <= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 60000000000 + 600000000000) AS DATE)
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
           CASE WHEN rem_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 THEN NULL
                WHEN rem_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') THEN 'before'
                WHEN rem_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 60000000000 THEN 'during'
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
) q
WHERE phase = 'before' AND outcome = 'all';

-- S165: widen_share_before [BTCUSDT-20251010T211300.190Z-cliff] = 0.406183
SELECT sum(reposted) / nullif(sum(cancelled), 0)
FROM (
-- forensics sql --query maker_reposting --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param before=10m --param after=11m
WITH mids AS (
    SELECT ts_ns // 10000000000 AS k, avg(CAST(mid AS DOUBLE)) AS mid
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 660000000000
      AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
    GROUP BY 1
),
lc AS (
    SELECT l.ts_ns // 10000000000 AS k, l.side, CAST(l.cancelled AS DOUBLE) AS cancelled, CAST(l.added AS DOUBLE) AS added,
           abs(CAST(l.price AS DOUBLE) - m.mid) / m.mid * 1e4 AS dist_bps
    FROM level_changes l JOIN mids m ON m.k = l.ts_ns // 10000000000
    WHERE ('binance-futures' IS NULL OR l.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR l.symbol = 'BTCUSDT')
      AND l.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 AND l.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 660000000000
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
SELECT make_timestamp_ns(c.k * 10000000000) AS bucket, c.k * 10000000000 AS bucket_ns, c.side,
       round(c.cancelled, 9) AS cancelled, round(c.cancel_dist_bps, 6) AS cancel_dist_bps,
       round(a.added, 9) AS added, round(a.added_far, 9) AS added_far,
       round(least(c.cancelled, a.added_far), 9) AS reposted,
       round(c.cancelled - least(c.cancelled, a.added_far), 9) AS withdrawn,
       round(least(c.cancelled, a.added_far) / nullif(c.cancelled, 0), 6) AS widen_share
FROM c JOIN a ON a.k = c.k AND a.side = c.side
ORDER BY c.k, c.side
) q
WHERE bucket_ns < 1760130780190000000;

-- S166: quote_life_p50_during [BTCUSDT-20251010T211300.190Z-cliff] = 736
SELECT p50_ms
FROM (
-- forensics sql --query quote_life --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param during=1m --param before=10m --param after=10m
WITH lc AS (
    SELECT side, CAST(price AS DOUBLE) AS price, ts_ns, seq, CAST(prev_size AS DOUBLE) AS prev_size,
           CAST(added AS DOUBLE) AS added, CAST(traded + cancelled AS DOUBLE) AS removed,
           CAST(traded AS DOUBLE) / nullif(CAST(traded + cancelled AS DOUBLE), 0) AS tshare
    FROM level_changes
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 - 600000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 60000000000 + 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 - 600000000000) AS DATE)
      AND date <= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 60000000000 + 600000000000) AS DATE)
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
           CASE WHEN rem_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 THEN NULL
                WHEN rem_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') THEN 'before'
                WHEN rem_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 60000000000 THEN 'during'
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
) q
WHERE phase = 'during' AND outcome = 'all';

-- S167: widen_share_during [BTCUSDT-20251010T211300.190Z-cliff] = 0.473081
SELECT sum(reposted) / nullif(sum(cancelled), 0)
FROM (
-- forensics sql --query maker_reposting --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param before=10m --param after=11m
WITH mids AS (
    SELECT ts_ns // 10000000000 AS k, avg(CAST(mid AS DOUBLE)) AS mid
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 660000000000
      AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
    GROUP BY 1
),
lc AS (
    SELECT l.ts_ns // 10000000000 AS k, l.side, CAST(l.cancelled AS DOUBLE) AS cancelled, CAST(l.added AS DOUBLE) AS added,
           abs(CAST(l.price AS DOUBLE) - m.mid) / m.mid * 1e4 AS dist_bps
    FROM level_changes l JOIN mids m ON m.k = l.ts_ns // 10000000000
    WHERE ('binance-futures' IS NULL OR l.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR l.symbol = 'BTCUSDT')
      AND l.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 AND l.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 660000000000
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
SELECT make_timestamp_ns(c.k * 10000000000) AS bucket, c.k * 10000000000 AS bucket_ns, c.side,
       round(c.cancelled, 9) AS cancelled, round(c.cancel_dist_bps, 6) AS cancel_dist_bps,
       round(a.added, 9) AS added, round(a.added_far, 9) AS added_far,
       round(least(c.cancelled, a.added_far), 9) AS reposted,
       round(c.cancelled - least(c.cancelled, a.added_far), 9) AS withdrawn,
       round(least(c.cancelled, a.added_far) / nullif(c.cancelled, 0), 6) AS widen_share
FROM c JOIN a ON a.k = c.k AND a.side = c.side
ORDER BY c.k, c.side
) q
WHERE bucket_ns >= 1760130780190000000 AND bucket_ns < 1760130840190000000;

-- S168: quote_life_p50_after [BTCUSDT-20251010T211300.190Z-cliff] = 1391
SELECT p50_ms
FROM (
-- forensics sql --query quote_life --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param during=1m --param before=10m --param after=10m
WITH lc AS (
    SELECT side, CAST(price AS DOUBLE) AS price, ts_ns, seq, CAST(prev_size AS DOUBLE) AS prev_size,
           CAST(added AS DOUBLE) AS added, CAST(traded + cancelled AS DOUBLE) AS removed,
           CAST(traded AS DOUBLE) / nullif(CAST(traded + cancelled AS DOUBLE), 0) AS tshare
    FROM level_changes
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 - 600000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 60000000000 + 600000000000
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 - 600000000000) AS DATE)
      AND date <= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 60000000000 + 600000000000) AS DATE)
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
           CASE WHEN rem_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 THEN NULL
                WHEN rem_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') THEN 'before'
                WHEN rem_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 60000000000 THEN 'during'
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
) q
WHERE phase = 'after' AND outcome = 'all';

-- S169: widen_share_after [BTCUSDT-20251010T211300.190Z-cliff] = 0.410547
SELECT sum(reposted) / nullif(sum(cancelled), 0)
FROM (
-- forensics sql --query maker_reposting --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT --param before=10m --param after=11m
WITH mids AS (
    SELECT ts_ns // 10000000000 AS k, avg(CAST(mid AS DOUBLE)) AS mid
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 660000000000
      AND mid IS NOT NULL AND coalesce(valid, true) AND NOT coalesce(crossed, false)
    GROUP BY 1
),
lc AS (
    SELECT l.ts_ns // 10000000000 AS k, l.side, CAST(l.cancelled AS DOUBLE) AS cancelled, CAST(l.added AS DOUBLE) AS added,
           abs(CAST(l.price AS DOUBLE) - m.mid) / m.mid * 1e4 AS dist_bps
    FROM level_changes l JOIN mids m ON m.k = l.ts_ns // 10000000000
    WHERE ('binance-futures' IS NULL OR l.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR l.symbol = 'BTCUSDT')
      AND l.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 600000000000 AND l.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + 660000000000
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
SELECT make_timestamp_ns(c.k * 10000000000) AS bucket, c.k * 10000000000 AS bucket_ns, c.side,
       round(c.cancelled, 9) AS cancelled, round(c.cancel_dist_bps, 6) AS cancel_dist_bps,
       round(a.added, 9) AS added, round(a.added_far, 9) AS added_far,
       round(least(c.cancelled, a.added_far), 9) AS reposted,
       round(c.cancelled - least(c.cancelled, a.added_far), 9) AS withdrawn,
       round(least(c.cancelled, a.added_far) / nullif(c.cancelled, 0), 6) AS widen_share
FROM c JOIN a ON a.k = c.k AND a.side = c.side
ORDER BY c.k, c.side
) q
WHERE bucket_ns >= 1760130840190000000;

-- S170: widen_then_pull [BTCUSDT-20251010T211300.190Z-cliff] = False
SELECT coalesce((WITH q AS (
-- forensics sql --query precursors --param at=2025-10-10T21:13:00.190000Z --param exchange=binance-futures --param symbol=BTCUSDT
WITH g AS (
    SELECT coalesce(NULL, min(grid_ns)) AS grid_ns
    FROM book_top
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000) AS DATE) AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
),
buckets AS (
    SELECT range AS k FROM range(-(900000000000 // 10000000000), 0)
),
top AS (
    SELECT t.ts_ns, CAST(t.best_bid AS DOUBLE) AS pb, CAST(t.best_ask AS DOUBLE) AS pa,
           CAST(t.best_bid_size AS DOUBLE) AS qb, CAST(t.best_ask_size AS DOUBLE) AS qa,
           CAST(t.spread AS DOUBLE) / nullif(CAST(t.mid AS DOUBLE), 0) * 1e4 AS spread_bps
    FROM book_top t, g
    WHERE ('binance-futures' IS NULL OR t.exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR t.symbol = 'BTCUSDT')
      AND t.grid_ns IS NOT DISTINCT FROM g.grid_ns
      AND t.ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 - g.grid_ns AND t.ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
      AND t.date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 - 86400000000000) AS DATE)
      AND t.date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
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
    SELECT CAST(floor((ts_ns - epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')) / 10000000000) AS BIGINT) AS k, avg(spread_bps) AS spread_bps, avg(touch) AS touch_depth,
           sum(e) FILTER (WHERE has_prev) AS ofi, count(*) AS top_samples
    FROM ofi_e
    WHERE ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000
    GROUP BY 1
),
lc_b AS (
    SELECT CAST(floor((ts_ns - epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')) / 10000000000) AS BIGINT) AS k, count(*) FILTER (WHERE cancelled > 0) AS cancel_updates,
           sum(CAST(cancelled AS DOUBLE)) AS cancelled, sum(CAST(traded AS DOUBLE)) AS traded
    FROM level_changes
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000) AS DATE) AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
      AND cause IN ('add', 'trade', 'cancel', 'mixed')
    GROUP BY 1
),
tr_b AS (
    SELECT CAST(floor((ts_ns - epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')) / 10000000000) AS BIGINT) AS k,
           coalesce(sum(CAST(size AS DOUBLE)) FILTER (WHERE aggressor = 'buy'), 0)  AS buy_vol,
           coalesce(sum(CAST(size AS DOUBLE)) FILTER (WHERE aggressor = 'sell'), 0) AS sell_vol,
           count(*) AS trades
    FROM trades
    WHERE ('binance-futures' IS NULL OR exchange = 'binance-futures') AND ('BTCUSDT' IS NULL OR symbol = 'BTCUSDT')
      AND ts_ns >= epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 - 60000000000 AND ts_ns < epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000')
      AND date >= CAST(make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') - 900000000000 - 60000000000) AS DATE)
      AND date <= CAST(TIMESTAMP '2025-10-10 21:13:00.190000' AS DATE)
    GROUP BY 1
),
have AS (
    SELECT (SELECT count(*) FROM lc_b) > 0 AS lc, (SELECT count(*) FROM tr_b) > 0 AS tr
),
flow AS (  -- trailing flow_window sums (buckets before the series start included)
    SELECT b.k, sum(t.buy_vol) AS buy_w, sum(t.sell_vol) AS sell_w
    FROM buckets b LEFT JOIN tr_b t ON t.k > b.k - 60000000000 // 10000000000 AND t.k <= b.k
    GROUP BY 1
),
series AS (
    SELECT b.k,
           (b.k + 1) * 10000000000 <= -300000000000                         AS baseline,
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
    make_timestamp_ns(epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + k * 10000000000)       AS bucket,
    epoch_ns(TIMESTAMP '2025-10-10 21:13:00.190000') + k * 10000000000                          AS bucket_ns,
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
)
SELECT min(bucket_ns) FROM (
  SELECT bucket_ns, baseline, spread_bps_z >= 3 AND lead(spread_bps_z, 1) OVER (ORDER BY bucket_ns) >= 3 AS hit FROM q) f
WHERE NOT baseline AND hit) < 1760130780190000000, false) AS widen_first;
