-- joined_transactions_t: deduplicated purchases with article and customer attributes.
--
-- LEFT JOINs: a purchase is kept when its article or its customer row is missing
-- (those columns are then NULL, including "FN"/"Active", whose 0.0 default only
-- applies to customers that exist). Both joined views have one row per key, so
-- the joins never repeat a purchase.
CREATE MATERIALIZED VIEW IF NOT EXISTS joined_transactions_t AS
SELECT
    d.t_dat,
    d.customer_id,
    d.article_id,
    d.units,
    d.price,
    d.sales_channel_id,
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
    c."FN",
    c."Active",
    c.club_member_status,
    c.fashion_news_frequency,
    c.age,
    c.postal_code
FROM dedup_transactions_t AS d
LEFT JOIN articles_metadata_t AS a ON a.article_id = d.article_id
LEFT JOIN customers_t AS c ON c.customer_id = d.customer_id;
