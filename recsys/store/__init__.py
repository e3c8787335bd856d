"""The streaming views: the SQL objects applied to RisingWave or embedded DuckDB, and the
embedded engine's Kafka consumer.
"""
