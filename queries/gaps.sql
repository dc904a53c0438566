-- name: gaps
-- description: Gaps report: every broken sequence / resync with its duration, reason and source
-- param: exchange (text, default null): exchange filter (null = every exchange)
-- param: symbol (text, default null): symbol filter (null = every symbol)
-- param: from (time, default null): gaps ending at or after this time (ISO-8601)
-- param: to (time, default null): gaps starting at or before this time
-- param: min_seconds (float, default 0): only gaps at least this long
-- tables: gaps
-- example: forensics sql --query gaps --param min_seconds=1
-- During a gap the book is unknown: depth and book_top are null there and detection skips it.
SELECT
    exchange,
    symbol,
    date,
    ts_from,
    ts_to,
    round((ts_to_ns - ts_from_ns) / 1e9, 6) AS seconds,
    seq_from,
    seq_to,
    reason,
    source,
    detail
FROM gaps
WHERE ($exchange IS NULL OR exchange = $exchange)
  AND ($symbol IS NULL OR symbol = $symbol)
  AND ($from IS NULL OR ts_to >= $from)
  AND ($to IS NULL OR ts_from <= $to)
  AND ($to IS NULL OR date <= CAST($to AS DATE))
  AND coalesce((ts_to_ns - ts_from_ns) / 1e9, 0) >= $min_seconds
ORDER BY exchange, symbol, ts_from, seq_from
