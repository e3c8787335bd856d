-- customer_recent_articles_t: each customer's last 12 distinct articles bought.
--
-- One row per (customer, article) for at most 12 articles per customer: the ones
-- bought most recently (last_t_dat = the latest day the article was bought;
-- units = units of it bought over all time). Ties on the same day are broken by
-- article_id, so the choice is deterministic. This is RisingWave's top-N-by-group
-- pattern. Its rank column could be selected (RisingWave allows it) but is left out
-- on purpose: a new purchase would then rewrite the rank of every row after it, while
-- without it only the article that enters and the one that drops out change. Read it
-- newest first with
--   ORDER BY last_t_dat DESC, article_id ASC.
CREATE MATERIALIZED VIEW IF NOT EXISTS customer_recent_articles_t AS
SELECT customer_id, article_id, last_t_dat, units
FROM (
    SELECT
        customer_id,
        article_id,
        last_t_dat,
        units,
        ROW_NUMBER() OVER (
            PARTITION BY customer_id
            ORDER BY last_t_dat DESC NULLS LAST, article_id ASC NULLS LAST
        ) AS recency_rank
    FROM (
        SELECT customer_id, article_id, MAX(t_dat) AS last_t_dat,
            CAST(SUM(units) AS BIGINT) AS units
        FROM dedup_transactions_t
        GROUP BY customer_id, article_id
    ) AS bought
) AS ranked
WHERE recency_rank <= 12;
