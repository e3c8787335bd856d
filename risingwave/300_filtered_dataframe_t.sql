-- filtered_dataframe_t: the training input.
--
-- The purchases (rows of joined_transactions_t) strictly before the cutoff, of
-- customers who have at least min_purchases such rows. Both parameters are read
-- from the one-row table training_settings, so changing them needs no DDL:
--   a row dated exactly on the cutoff is NOT included (the cutoff is the first
--   day of the test period), and a customer with exactly min_purchases rows
--   before the cutoff IS included.
-- Each comparison with a parameter is a column compared with a scalar subquery
-- (RisingWave's dynamic filter); MAX() makes each subquery provably one row.
-- Eligibility is counted on the narrow dedup_transactions_t (joined_transactions_t
-- has exactly one row per dedup row), so the wide joined rows are read only once.
CREATE MATERIALIZED VIEW IF NOT EXISTS filtered_dataframe_t AS
WITH eligible AS (
    SELECT customer_id
    FROM dedup_transactions_t
    WHERE t_dat < (SELECT MAX(cutoff) FROM training_settings)
    GROUP BY customer_id
    HAVING COUNT(*) >= (SELECT MAX(min_purchases) FROM training_settings)
)
SELECT
    r.t_dat,
    r.customer_id,
    r.article_id,
    r.units,
    r.price,
    r.sales_channel_id,
    r.product_code,
    r.prod_name,
    r.product_type_no,
    r.product_type_name,
    r.product_group_name,
    r.graphical_appearance_no,
    r.colour_group_code,
    r.colour_group_name,
    r.perceived_colour_value_id,
    r.perceived_colour_master_id,
    r.department_no,
    r.index_code,
    r.index_group_no,
    r.section_no,
    r.garment_group_no,
    r.image_path,
    r."FN",
    r."Active",
    r.club_member_status,
    r.fashion_news_frequency,
    r.age,
    r.postal_code
FROM joined_transactions_t AS r
JOIN eligible AS e ON e.customer_id = r.customer_id
WHERE r.t_dat < (SELECT MAX(cutoff) FROM training_settings);
