"""The recommendation service: `python -m recsys.serve` (docs/serving.md).  Per request:
the customer's state fresh from the streaming views, the run's query tower called
directly on it, an exact inner-product search over the run's article index, then the
strategy the flow chose for that kind of customer. Modules:  - `run.py`: the exported
run the service answers with (tower, article index, strategy); - `views.py`: what the
views hold now, read per request through the project's engine; - `recommender.py`: one
customer's answer from both; - `app.py`: the HTTP endpoints (FastAPI); `__main__.py`:
the command line; - `live.py`: the Kafka consumer inside the service's process
(`--consume`); - `shop.py`: `make live`, the test week replayed through Kafka.
"""
