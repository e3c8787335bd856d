-- training_settings: the parameters of filtered_dataframe_t, kept as data.
--
-- One row (id = 1). The trainer writes it (recsys.engine: set_training_settings)
-- and the view reads it, so N and the cutoff change without recreating any view:
--   min_purchases  a customer is kept when they have at least this many purchases
--                  (rows of joined_transactions_t) strictly before the cutoff;
--   cutoff         first day NOT used for training (the test week starts here).
CREATE TABLE IF NOT EXISTS training_settings (
    id INT,
    min_purchases INT,
    cutoff DATE,
    PRIMARY KEY (id)
);
