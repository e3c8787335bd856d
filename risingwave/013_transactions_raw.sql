-- transactions_raw: every purchase event from `transactions_topic`, as delivered.
--
-- No primary key: Kafka delivers at least once, so a redelivered event appears
-- here twice with the same event_id (`<t_dat>:<hash of the row>:<k>`, k counting
-- the identical rows of that day before it: recsys/events.py). Redeliveries are
-- removed downstream, in dedup_transactions_t, where the rule is written down.
-- t_dat arrives as an ISO 'YYYY-MM-DD' string and is stored as a DATE.
-- APPEND ONLY: events are only ever added (a table without a primary key, fed by a
-- plain Kafka topic), so RisingWave keeps less state downstream: transactions_t, its
-- filter, is append-only too, and the MAX() per event_id in dedup_transactions_t keeps
-- one value per group instead of every input row. The keyed tables are upserts and
-- training_settings is updated in place: none of those is append-only.
CREATE TABLE IF NOT EXISTS transactions_raw (
    event_id VARCHAR,
    t_dat DATE,
    customer_id VARCHAR,
    article_id VARCHAR,
    price DOUBLE PRECISION,
    sales_channel_id BIGINT
) APPEND ONLY WITH (
    connector = 'kafka',
    topic = 'transactions_topic',
    properties.bootstrap.server = '${KAFKA_BOOTSTRAP_SERVERS}',
    -- @kafka_security
    scan.startup.mode = 'earliest'
) FORMAT PLAIN ENCODE JSON;
