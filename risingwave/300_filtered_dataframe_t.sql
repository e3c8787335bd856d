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
--
-- Written for engines that compute views on read (DuckDB) as much as for
-- RisingWave; same rows as filtering joined_transactions_t (a test checks it):
--   * purchases names dedup_transactions_t once, so DuckDB deduplicates once
--     (a CTE used twice is computed once) for both the eligibility count and
--     the rows returned;
--   * eligibility is counted on the narrow purchases, and each eligible customer
--     is joined to its customers_t row there (about 1 M customers), so the 28 M
--     purchase rows meet one join per side, as in joined_transactions_t (LEFT
--     JOINs: a missing article or customer row gives NULL columns);
--   * "before the cutoff" is applied to the returned rows as t_dat <= last_t_dat,
--     the customer's latest purchase day before the cutoff: for that customer's
--     rows it is the same test, and it keeps the scalar subquery off the wide rows
--     (DuckDB runs it as a nested-loop join, which took 88 of 188 s on the full data).
CREATE MATERIALIZED VIEW IF NOT EXISTS filtered_dataframe_t AS
WITH purchases AS (
    SELECT t_dat, customer_id, article_id, units, price, sales_channel_id
    FROM dedup_transactions_t
),
eligible AS (
    SELECT customer_id, MAX(t_dat) AS last_t_dat
    FROM purchases
    WHERE t_dat < (SELECT MAX(cutoff) FROM training_settings)
    GROUP BY customer_id
    HAVING COUNT(*) >= (SELECT MAX(min_purchases) FROM training_settings)
),
eligible_customers AS (
    SELECT
        e.customer_id,
        e.last_t_dat,
        c."FN",
        c."Active",
        c.club_member_status,
        c.fashion_news_frequency,
        c.age,
        c.postal_code
    FROM eligible AS e
    LEFT JOIN customers_t AS c ON c.customer_id = e.customer_id
)
SELECT
    p.t_dat,
    p.customer_id,
    p.article_id,
    p.units,
    p.price,
    p.sales_channel_id,
    a.product_code,
    a.prod_name,
    a.product_type_no,
    a.product_type_name,
    a.product_group_name,
    a.graphical_appearance_no,
    a.colour_group_code,
    a.colour_group_name,
    a.perceived_colour_value_id,
    a.perceived_colour_master_id,
    a.department_no,
    a.index_code,
    a.index_group_no,
    a.section_no,
    a.garment_group_no,
    a.image_path,
    e."FN",
    e."Active",
    e.club_member_status,
    e.fashion_news_frequency,
    e.age,
    e.postal_code
FROM purchases AS p
LEFT JOIN articles_metadata_t AS a ON a.article_id = p.article_id
JOIN eligible_customers AS e ON e.customer_id = p.customer_id AND p.t_dat <= e.last_t_dat;
