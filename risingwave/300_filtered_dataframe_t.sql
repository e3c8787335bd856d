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
CREATE MATERIALIZED VIEW IF NOT EXISTS filtered_dataframe_t AS
SELECT
    j.t_dat,
    j.customer_id,
    j.article_id,
    j.units,
    j.price,
    j.sales_channel_id,
    j.product_code,
    j.prod_name,
    j.product_type_no,
    j.product_type_name,
    j.product_group_name,
    j.graphical_appearance_no,
    j.colour_group_code,
    j.colour_group_name,
    j.perceived_colour_value_id,
    j.perceived_colour_master_id,
    j.department_no,
    j.index_code,
    j.index_group_no,
    j.section_no,
    j.garment_group_no,
    j.image_path,
    j."FN",
    j."Active",
    j.club_member_status,
    j.fashion_news_frequency,
    j.age,
    j.postal_code
FROM joined_transactions_t AS j
JOIN (
    SELECT customer_id
    FROM joined_transactions_t
    WHERE t_dat < (SELECT MAX(cutoff) FROM training_settings)
    GROUP BY customer_id
    HAVING COUNT(*) >= (SELECT MAX(min_purchases) FROM training_settings)
) AS eligible ON eligible.customer_id = j.customer_id
WHERE j.t_dat < (SELECT MAX(cutoff) FROM training_settings);
