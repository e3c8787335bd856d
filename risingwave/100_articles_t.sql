-- articles_t: the article catalogue, typed and cleaned.
--
-- Cleaning rules:
--   * text columns: surrounding blanks trimmed, empty strings become NULL;
--   * article_id (10 digits) and product_code (7 digits) are zero-padded strings,
--     so an id that lost its leading zero on the way (e.g. a producer that sent a
--     number) is restored: '108775015' -> '0108775015';
--   * rows without an article_id are left out (nothing can reference them).
-- Integer codes are kept as delivered (NULL when missing).
CREATE MATERIALIZED VIEW IF NOT EXISTS articles_t AS
SELECT
    LPAD(TRIM(article_id), 10, '0') AS article_id,
    LPAD(NULLIF(TRIM(product_code), ''), 7, '0') AS product_code,
    NULLIF(TRIM(prod_name), '') AS prod_name,
    product_type_no,
    NULLIF(TRIM(product_type_name), '') AS product_type_name,
    NULLIF(TRIM(product_group_name), '') AS product_group_name,
    graphical_appearance_no,
    NULLIF(TRIM(graphical_appearance_name), '') AS graphical_appearance_name,
    colour_group_code,
    NULLIF(TRIM(colour_group_name), '') AS colour_group_name,
    perceived_colour_value_id,
    NULLIF(TRIM(perceived_colour_value_name), '') AS perceived_colour_value_name,
    perceived_colour_master_id,
    NULLIF(TRIM(perceived_colour_master_name), '') AS perceived_colour_master_name,
    department_no,
    NULLIF(TRIM(department_name), '') AS department_name,
    NULLIF(TRIM(index_code), '') AS index_code,
    NULLIF(TRIM(index_name), '') AS index_name,
    index_group_no,
    NULLIF(TRIM(index_group_name), '') AS index_group_name,
    section_no,
    NULLIF(TRIM(section_name), '') AS section_name,
    garment_group_no,
    NULLIF(TRIM(garment_group_name), '') AS garment_group_name,
    NULLIF(TRIM(detail_desc), '') AS detail_desc
FROM articles_raw
WHERE NULLIF(TRIM(article_id), '') IS NOT NULL;
