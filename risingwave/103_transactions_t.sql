-- transactions_t: every delivered purchase event, typed and cleaned.
--
-- Still one row per delivery: a redelivered event appears twice here (same
-- event_id); dedup_transactions_t removes it. article_id is zero-padded like in
-- articles_t; events missing any of event_id, t_dat, customer_id or article_id
-- are left out (the producer sends such rows to the dead-letter topic instead).
CREATE MATERIALIZED VIEW IF NOT EXISTS transactions_t AS
SELECT
    event_id AS event_id,
    t_dat,
    customer_id AS customer_id,
    LPAD(article_id, 10, '0') AS article_id,
    price,
    sales_channel_id
FROM transactions_raw
WHERE event_id <> ''
    AND t_dat IS NOT NULL
    AND customer_id <> ''
    AND article_id <> '';
