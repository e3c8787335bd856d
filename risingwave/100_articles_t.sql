-- articles_t: the article catalogue, typed and cleaned.
--
-- Cleaning rules:
--   * text columns: empty strings become NULL (values are otherwise kept as
--     delivered: the loader already validated them, and trimming every string of
--     every row would be the most expensive step of the whole pipeline);
--   * article_id (10 digits) and product_code (7 digits) are zero-padded strings,
--     so an id that lost its leading zero on the way (e.g. a producer that sent a
--     number) is restored: '108775015' -> '0108775015';
--   * rows without an article_id are left out (nothing can reference them).
-- Integer codes are kept as delivered (NULL when missing).
CREATE MATERIALIZED VIEW IF NOT EXISTS articles_t AS
SELECT
    LPAD(article_id, 10, '0') AS article_id,
    LPAD(NULLIF(product_code, ''), 7, '0') AS product_code,
    NULLIF(prod_name, '') AS prod_name,
    product_type_no,
    NULLIF(product_type_name, '') AS product_type_name,
    NULLIF(product_group_name, '') AS product_group_name,
    graphical_appearance_no,
    NULLIF(graphical_appearance_name, '') AS graphical_appearance_name,
    colour_group_code,
    NULLIF(colour_group_name, '') AS colour_group_name,
    perceived_colour_value_id,
    NULLIF(perceived_colour_value_name, '') AS perceived_colour_value_name,
    perceived_colour_master_id,
    NULLIF(perceived_colour_master_name, '') AS perceived_colour_master_name,
    department_no,
    NULLIF(department_name, '') AS department_name,
    NULLIF(index_code, '') AS index_code,
    NULLIF(index_name, '') AS index_name,
    index_group_no,
    NULLIF(index_group_name, '') AS index_group_name,
    section_no,
    NULLIF(section_name, '') AS section_name,
    garment_group_no,
    NULLIF(garment_group_name, '') AS garment_group_name,
    NULLIF(detail_desc, '') AS detail_desc
FROM articles_raw
WHERE article_id <> '';
