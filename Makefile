# One-command entry points. `make run` and `make test` install whatever is missing first.
# Everything runs from the pinned environment in .venv (uv sync --frozen from uv.lock).

PYTHON  ?= python3.11
UV      := $(PYTHON) -m uv
PY      := .venv/bin/python
SCALE   ?= demo
DATA    ?= $(or $(DATA_DIR),data/$(SCALE))

.PHONY: help setup test-deps bench-deps run app serve live data test lint format kafka-jars kafka-up kafka-down clean

help:
	@echo "make run         generate demo data, build the views, train, export (embedded, CPU)"
	@echo "make test        install everything the tests need, then run lint + the whole test suite"
	@echo "make data        generate data (SCALE=tiny|demo|full, DATA=dir)"
	@echo "make kafka-up    start the local Kafka broker (127.0.0.1:9092); make kafka-down stops it"
	@echo "make app         start the Streamlit inspector"
	@echo "make serve       start the recommendation service (127.0.0.1:8000, API docs at /docs)"
	@echo "make live        broker + service + the test week replayed through Kafka (then make app)"

setup: .venv/.installed

.venv/.installed: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv==0.13.9
	$(UV) sync --frozen
	@touch $@

# Test-only system pieces: Kafka's jars (Maven Central) and Debian's Chromium.
test-deps: setup kafka-jars
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: sudo apt-get install chromium (browser test will skip)"; fi; }

kafka-jars: setup
	$(PY) -m recsys.ingest.broker fetch

data: setup
	@test -f $(DATA)/transactions_train.csv || $(PY) data/generate.py --scale $(SCALE) --out $(DATA)

# The flow finds its own user name (also as root) and defaults --max-workers to the
# machine's cores: recsys/train/runtime.py.
run: setup data
	DATA_DIR=$(DATA) $(PY) recsys/my_merlin_flow.py --no-pylint run
	@echo "next: make app   (the Streamlit inspector on this run)"

app: setup
	$(PY) -m streamlit run streamlit/pred_inspector.py

# The recommendation service over the newest exported run (make run makes one).
serve: setup
	$(PY) -m recsys.serve

# A live shop: the broker, the views without the run's test week, the service with the
# consumer in its process, and the test week replayed through Kafka (docs/serving.md).
live: kafka-jars data
	$(PY) -m recsys.ingest.broker up
	DATA_DIR=$(DATA) $(PY) -m recsys.serve.shop

test: test-deps
	$(PY) -m pytest --junitxml=test-artifacts/junit.xml

lint: setup
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff check --fix . && $(PY) -m ruff format .

kafka-up: kafka-jars
	$(PY) -m recsys.ingest.broker up

kafka-down: setup
	$(PY) -m recsys.ingest.broker down

clean:
	rm -rf .venv output test-artifacts kafka/target

# Benchmark-only system pieces: wrk, the HTTP load generator of bench/serve.py (Debian).
bench-deps: setup
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk missing: sudo apt-get install wrk"; exit 1; fi; }
