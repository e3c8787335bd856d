"""Produce the H&M CSV files to Kafka: `python kafka/producer.py --help`.

A thin entry point; the producer itself is `recsys.ingest.producer` (see docs/kafka.md).
"""

import sys

from recsys.ingest.producer import main

if __name__ == "__main__":
    sys.exit(main())
