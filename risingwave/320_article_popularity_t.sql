-- article_popularity_t: units sold per article over the last 7 days of data.
--
-- "Last 7 days" is measured on the data, not on the wall clock: the 7 dates
-- ending at the newest t_dat seen (max - 6 days .. max; transactions_t and
-- dedup_transactions_t hold the same dates, the former is cheaper to scan). The H&M data is from
-- 2018-2020, so a NOW()-based temporal filter would keep nothing; this is a
-- dynamic filter against the newest date instead, and the window moves forward
-- as newer purchases arrive. Articles with no sale in the window have no row.
CREATE MATERIALIZED VIEW IF NOT EXISTS article_popularity_t AS
SELECT article_id, CAST(SUM(units) AS BIGINT) AS units
FROM dedup_transactions_t
WHERE t_dat >= (
    SELECT CAST(MAX(t_dat) - INTERVAL '6 days' AS DATE) FROM transactions_t
)
GROUP BY article_id;
