-- name: depth_within
-- description: Resting depth within N% of mid over time, bid and ask side by side (depth grid)
-- param: pct (float, default 1.0): band edge in percent of mid; one of the bands `forensics depth` computed
-- param: exchange (text, default null): exchange filter (null = every exchange)
-- param: symbol (text, default null): symbol filter (null = every symbol)
-- param: from (time, default null): first grid time, ISO-8601 (without offset: read in --tz)
-- param: to (time, default null): last grid time (inclusive)
-- tables: depth
-- example: forensics sql --query depth_within --param pct=0.5 --param from=2025-10-10T21:00 --param to=2025-10-10T21:30
-- qty is in base units (exact), notional in quote units; both null while the book was unknown
-- (gap, no snapshot yet). imbalance = (bid - ask) / (bid + ask) of qty.
SELECT
    exchange,
    symbol,
    ts,
    band_pct,
    max(qty) FILTER (WHERE side = 'bid')       AS bid_qty,
    max(qty) FILTER (WHERE side = 'ask')       AS ask_qty,
    max(notional) FILTER (WHERE side = 'bid')  AS bid_notional,
    max(notional) FILTER (WHERE side = 'ask')  AS ask_notional,
    max(levels) FILTER (WHERE side = 'bid')    AS bid_levels,
    max(levels) FILTER (WHERE side = 'ask')    AS ask_levels,
    round((max(qty) FILTER (WHERE side = 'bid') - max(qty) FILTER (WHERE side = 'ask'))
          / nullif(max(qty) FILTER (WHERE side = 'bid') + max(qty) FILTER (WHERE side = 'ask'), 0), 4)
                                               AS imbalance
FROM depth
WHERE abs(band_pct - $pct) < 1e-9
  AND ($exchange IS NULL OR exchange = $exchange)
  AND ($symbol IS NULL OR symbol = $symbol)
  AND ($from IS NULL OR ts >= $from)
  AND ($from IS NULL OR date >= CAST($from AS DATE))
  AND ($to IS NULL OR ts <= $to)
  AND ($to IS NULL OR date <= CAST($to AS DATE))
GROUP BY exchange, symbol, ts, band_pct
ORDER BY exchange, symbol, ts
