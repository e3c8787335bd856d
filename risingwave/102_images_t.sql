-- images_t: one product photo location per article.
--
-- article_id is zero-padded like in articles_t so that the two join; rows with
-- no article_id or an empty image_path are left out (an article without a photo
-- simply has no row here).
CREATE MATERIALIZED VIEW IF NOT EXISTS images_t AS
SELECT
    LPAD(article_id, 10, '0') AS article_id,
    image_path AS image_path
FROM images_raw
WHERE article_id <> ''
    AND image_path <> '';
