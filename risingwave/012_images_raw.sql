-- images_raw: where each article's product photo is, from `images_topic`.
--
-- image_path is relative to DATA_DIR (Kaggle layout images/0XX/0XXXXXXXXX.jpg).
-- Keyed by article_id: one image per article, the latest message wins.
CREATE TABLE IF NOT EXISTS images_raw (
    article_id VARCHAR,
    image_path VARCHAR,
    PRIMARY KEY (article_id)
) WITH (
    connector = 'kafka',
    topic = 'images_topic',
    properties.bootstrap.server = '${KAFKA_BOOTSTRAP_SERVERS}',
    -- @kafka_security
    scan.startup.mode = 'earliest'
) FORMAT PLAIN ENCODE JSON;
