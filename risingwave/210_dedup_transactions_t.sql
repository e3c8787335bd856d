-- dedup_transactions_t: one row per (day, customer, article) purchase.
--
-- The rule, in two steps:
--   1. Redeliveries: Kafka delivers at least once, so one event can arrive more
--      than once. Events are identified by event_id (`<file name>:<line>`); of
--      all deliveries of one event_id exactly one is kept (ROW_NUMBER() = 1;
--      deliveries of one event carry the same content, the ORDER BY only makes
--      the choice deterministic).
--   2. Same-day repeats: distinct events for the same customer, article and day
--      (several units of one article bought together) are folded into one row:
--        units            = number of distinct events folded (>= 1),
--        price            = the highest price among them,
--        sales_channel_id = the highest channel among them (2 = online wins).
-- A repurchase on a later day is a separate row. Row count never grows: each
-- output row stands for one or more distinct events.
CREATE MATERIALIZED VIEW IF NOT EXISTS dedup_transactions_t AS
SELECT
    t_dat,
    customer_id,
    article_id,
    COUNT(*) AS units,
    MAX(price) AS price,
    MAX(sales_channel_id) AS sales_channel_id
FROM (
    SELECT event_id, t_dat, customer_id, article_id, price, sales_channel_id
    FROM (
        SELECT
            event_id,
            t_dat,
            customer_id,
            article_id,
            price,
            sales_channel_id,
            ROW_NUMBER() OVER (
                PARTITION BY event_id
                ORDER BY t_dat ASC NULLS LAST, price ASC NULLS LAST,
                    sales_channel_id ASC NULLS LAST
            ) AS delivery_rank
        FROM transactions_t
    ) AS deliveries
    WHERE delivery_rank = 1
) AS events
GROUP BY t_dat, customer_id, article_id;
