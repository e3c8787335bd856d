-- dedup_transactions_t: one row per (day, customer, article) purchase.
--
-- The rule, in two steps done by one aggregation:
--   1. Redeliveries: Kafka delivers at least once, so one event can arrive more
--      than once. Events are identified by event_id (`<file name>:<line>`), and
--      every delivery of one event carries the same content, so counting
--      DISTINCT event_id counts each event exactly once however often it came.
--   2. Same-day repeats: distinct events for the same customer, article and day
--      (several units of one article bought together) are folded into one row:
--        units            = number of distinct events folded (>= 1),
--        price            = the highest price among them,
--        sales_channel_id = the highest channel among them (2 = online wins).
-- A repurchase on a later day is a separate row. Row count never grows: each
-- output row stands for one or more distinct events.
--
-- Written as one GROUP BY with COUNT(DISTINCT) rather than ROW_NUMBER() per
-- event_id followed by a GROUP BY: same rows, but a single hash aggregation, which
-- an engine can spill to disk (31.8 M events fit in 6 GB of DuckDB memory).
CREATE MATERIALIZED VIEW IF NOT EXISTS dedup_transactions_t AS
SELECT
    t_dat,
    customer_id,
    article_id,
    COUNT(DISTINCT event_id) AS units,
    MAX(price) AS price,
    MAX(sales_channel_id) AS sales_channel_id
FROM transactions_t
GROUP BY t_dat, customer_id, article_id;
