-- customers_raw: customer attributes as they arrive on `customers_topic`.
--
-- Keyed by customer_id: a later message for the same customer overwrites the
-- earlier one. "FN" and "Active" are quoted so that they keep the Kaggle spelling
-- (unquoted identifiers are folded to lower case).
CREATE TABLE IF NOT EXISTS customers_raw (
    customer_id VARCHAR,
    "FN" DOUBLE PRECISION,
    "Active" DOUBLE PRECISION,
    club_member_status VARCHAR,
    fashion_news_frequency VARCHAR,
    age BIGINT,
    postal_code VARCHAR,
    PRIMARY KEY (customer_id)
) WITH (
    connector = 'kafka',
    topic = 'customers_topic',
    properties.bootstrap.server = '${KAFKA_BOOTSTRAP_SERVERS}',
    -- @kafka_security
    scan.startup.mode = 'earliest'
) FORMAT PLAIN ENCODE JSON;
