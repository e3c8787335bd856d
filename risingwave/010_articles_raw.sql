-- articles_raw: the article catalogue as it arrives on `articles_topic`.
--
-- One JSON object per article (ARCHITECTURE.md, "Row contract"). A TABLE, not a
-- SOURCE, so that the primary key is enforced: a later message for the same
-- article_id overwrites the earlier one (re-running the producer is harmless).
-- Connection properties are placeholders filled from settings when applied; the
-- `-- @kafka_security` line becomes the SASL properties when KAFKA_API_KEY is set.
CREATE TABLE IF NOT EXISTS articles_raw (
    article_id VARCHAR,
    product_code VARCHAR,
    prod_name VARCHAR,
    product_type_no BIGINT,
    product_type_name VARCHAR,
    product_group_name VARCHAR,
    graphical_appearance_no BIGINT,
    graphical_appearance_name VARCHAR,
    colour_group_code BIGINT,
    colour_group_name VARCHAR,
    perceived_colour_value_id BIGINT,
    perceived_colour_value_name VARCHAR,
    perceived_colour_master_id BIGINT,
    perceived_colour_master_name VARCHAR,
    department_no BIGINT,
    department_name VARCHAR,
    index_code VARCHAR,
    index_name VARCHAR,
    index_group_no BIGINT,
    index_group_name VARCHAR,
    section_no BIGINT,
    section_name VARCHAR,
    garment_group_no BIGINT,
    garment_group_name VARCHAR,
    detail_desc VARCHAR,
    PRIMARY KEY (article_id)
) WITH (
    connector = 'kafka',
    topic = 'articles_topic',
    properties.bootstrap.server = '${KAFKA_BOOTSTRAP_SERVERS}',
    -- @kafka_security
    scan.startup.mode = 'earliest'
) FORMAT PLAIN ENCODE JSON;
