-- customers_t: customer attributes, typed and cleaned.
--
-- Cleaning rules and defaults:
--   * "FN" and "Active": Kaggle leaves the flag empty when it is not set, so a
--     missing value means 0.0 (not subscribed / not active);
--   * fashion_news_frequency: missing, empty, 'None' or 'NONE' all mean 'NONE';
--     other values ('Regularly', 'Monthly') are kept as spelled;
--   * club_member_status, postal_code: empty strings become NULL (unknown);
--   * age: kept as delivered, NULL when unknown (no invented age);
--   * rows without a customer_id are left out.
CREATE MATERIALIZED VIEW IF NOT EXISTS customers_t AS
SELECT
    customer_id AS customer_id,
    COALESCE("FN", 0.0) AS "FN",
    COALESCE("Active", 0.0) AS "Active",
    NULLIF(club_member_status, '') AS club_member_status,
    CASE
        WHEN fashion_news_frequency IS NULL OR UPPER(fashion_news_frequency) IN ('', 'NONE')
            THEN 'NONE'
        ELSE fashion_news_frequency
    END AS fashion_news_frequency,
    age,
    NULLIF(postal_code, '') AS postal_code
FROM customers_raw
WHERE customer_id <> '';
