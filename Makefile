# Everything starts from a fresh clone with only python3 (3.10+), pip and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready
PLUGINS := .meltano/.ready
DEMO_PLUGINS := .meltano/.ready-demo

.PHONY: install plugins docs deep test test-pythons lint mutation demo simulator catalog about bench bench-throughput bench-memory bench-requests bench-quota bench-lookback bench-fleet bench-push bench-receiver bench-shards bench-fleet-shards bench-shared-quota bench-scheduling soak-fleet clean

install: $(READY)

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,push,chart,dagster]'
	touch $(READY)

# Meltano's own plugin environments (tap, targets, dbt-duckdb)
plugins: $(PLUGINS)

$(PLUGINS): $(READY) meltano.yml
	MELTANO_SEND_ANONYMOUS_USAGE_STATS=false $(BIN)/meltano install
	touch $(PLUGINS)

# Only what the demo runs (the production loaders install with `make plugins`).
$(DEMO_PLUGINS): $(READY) meltano.yml
	MELTANO_SEND_ANONYMOUS_USAGE_STATS=false $(BIN)/meltano install tap-cronofy target-duckdb dbt-duckdb
	touch $(DEMO_PLUGINS)

# Two pytest workers: most tests wait on subprocesses and HTTP, so this halves the wall time.
test: $(READY) $(PLUGINS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest -q -n 2

# The properties and the state machine, searched far harder than in make test (minutes).
deep: $(READY)
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -q tests/unit/test_window_properties.py \
		tests/unit/test_scheduling_plan.py tests/unit/test_undeclared.py tests/state/test_stateful_sync.py

# The unit tests on every Python 3.10 to 3.13 the machine offers, one venv each (.venvs/).
test-pythons: $(READY)
	$(BIN)/python .ci/test_pythons.py

# Mutation testing of the deciding modules against tests/unit ([tool.mutmut] in pyproject.toml).
mutation: $(READY)
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/python .ci/mutation_scores.py

lint: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: $(READY) $(DEMO_PLUGINS)
	$(BIN)/python demo/run_demo.py

simulator: $(READY)
	$(BIN)/python -m simulator --port 8765 --write-config .simulator-config.json \
		--write-accounts .simulator-accounts.json

# The manual (docs/) at http://127.0.0.1:8000, rebuilt on every edit.
docs: $(READY)
	$(BIN)/mkdocs serve --strict

catalog: $(READY)
	$(BIN)/tap-cronofy --discover > catalog.json

about: $(READY)
	$(BIN)/tap-cronofy --about --format=markdown

bench: bench-throughput bench-memory bench-requests bench-quota

bench-throughput: $(READY)
	$(BIN)/python benchmarks/throughput.py

bench-memory: $(READY)
	$(BIN)/python benchmarks/memory.py

bench-requests: $(READY)
	$(BIN)/python benchmarks/requests_per_sync.py

bench-lookback: $(READY)
	$(BIN)/python benchmarks/lookback.py

# Change-driven against polling: requests per account per hour, 10,000 accounts, 24 hours.
bench-push: $(READY)
	$(BIN)/python benchmarks/push.py

# Signed notifications from concurrent clients into the receiver, then with a kill -9 mid-burst.
bench-receiver: $(READY)
	$(BIN)/python benchmarks/receiver.py

# One process against N shards sharing the quota, on a quota-bound fleet, then unbound.
bench-shards: $(READY)
	$(BIN)/python benchmarks/shards.py

# A fleet of 100,000 accounts (BENCH_ACCOUNTS) as 8 shards under Dagster + Meltano, end to end.
bench-fleet-shards: $(READY)
	$(BIN)/python benchmarks/fleet_shards.py

# A fleet before (BENCH_BASELINE) and after: requests per account per day, CPU/RSS per account.
bench-fleet: $(READY)
	$(BIN)/python benchmarks/fleet.py

# The production topology over simulated days (tests/fleet/test_fleet_soak.py), deep: 30 rounds.
soak-fleet: $(READY)
	SOAK_ROUNDS=30 $(BIN)/pytest -q tests/fleet/test_fleet_soak.py

# The tap beside the customer's product on one quota (429s without Retry-After).
bench-shared-quota: $(READY)
	$(BIN)/python benchmarks/shared_quota.py

bench-scheduling: $(READY)
	$(BIN)/python benchmarks/scheduling.py

bench-quota: $(READY)
	$(BIN)/python benchmarks/quota.py

clean:
	rm -rf $(VENV) .venvs .meltano output .demo .bench
