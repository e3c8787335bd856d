"""The H&M data set: its schema, the synthetic generator and the statistics that check it."""
