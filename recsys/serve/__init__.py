"""The recommendation service: `python -m recsys.serve` (docs/serving.md). Per request:
the customer's state from the online state in memory, the run's query tower in numpy on
it, an exact inner-product search over the run's candidates, then the strategy the flow
chose for that kind of customer. Modules: - `run.py`: the exported run the service
answers with; - `tower.py`: the query tower in numpy and its inputs' codes; -
`state.py`: the online state (per customer the profile's codes and every purchase),
built from the engine and kept current by the stream; - `subscription.py`: the same
state from RisingWave's subscriptions; - `views.py`: the shared reads (popular list,
candidates); - `recommender.py`: one customer's answer; - `app.py`: the HTTP endpoints
(FastAPI); `__main__.py`: the command line; - `live.py`: the Kafka consumer inside the
service's process (`--consume`); - `shop.py`: `make live`, the test week replayed
through Kafka.
"""
