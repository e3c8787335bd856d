"""CSV files in, Kafka out: reading and validating rows, the local broker, the producer."""
