-- articles_metadata_t: every article with its image location.
--
-- LEFT JOIN: an article without an image keeps its row, with image_path NULL.
-- images_t has at most one row per article (keyed table), so no row is repeated.
CREATE MATERIALIZED VIEW IF NOT EXISTS articles_metadata_t AS
SELECT
    a.article_id,
    a.product_code,
    a.prod_name,
    a.product_type_no,
    a.product_type_name,
    a.product_group_name,
    a.graphical_appearance_no,
    a.graphical_appearance_name,
    a.colour_group_code,
    a.colour_group_name,
    a.perceived_colour_value_id,
    a.perceived_colour_value_name,
    a.perceived_colour_master_id,
    a.perceived_colour_master_name,
    a.department_no,
    a.department_name,
    a.index_code,
    a.index_name,
    a.index_group_no,
    a.index_group_name,
    a.section_no,
    a.section_name,
    a.garment_group_no,
    a.garment_group_name,
    a.detail_desc,
    i.image_path
FROM articles_t AS a
LEFT JOIN images_t AS i ON i.article_id = a.article_id;
