# The one list of commands. CI (.ci/run), the README and the GitHub workflow call these targets.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: install lock demo dev db-up db-down db-studio db-seed migrate test test-unit test-integration \
        lint typecheck importlint audit all emulator serve worker \
        bench-emulator bench-queue bench-ratelimit bench-ingest bench-webhooks clean \
        chaos test-load soak

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Re-pin after editing pyproject.toml: names, versions and hashes only (no download addresses).
lock:
	$(BIN)/pip install -q pip-tools
	$(BIN)/pip-compile -q --generate-hashes --no-emit-index-url --no-emit-find-links --allow-unsafe \
	  --strip-extras --extra dev -o requirements.lock pyproject.toml

demo: install
	$(BIN)/neanelu demo $(ARGS)

dev: install
	$(BIN)/neanelu db up
	$(BIN)/neanelu serve --reload

db-up: install
	$(BIN)/neanelu db up

db-down: install
	$(BIN)/neanelu db down

db-studio: install
	$(BIN)/neanelu db shell

db-seed: install
	$(BIN)/neanelu db seed

migrate: install
	$(BIN)/neanelu db migrate

emulator: install
	$(BIN)/neanelu emulator $(ARGS)

serve: install
	$(BIN)/neanelu serve $(ARGS)

worker: install
	$(BIN)/neanelu worker $(ARGS)

test: install
	$(BIN)/pytest -q -p no:cacheprovider $(ARGS)

test-unit: install
	$(BIN)/pytest -q tests/unit $(ARGS)

test-integration: install
	$(BIN)/pytest -q tests/integration tests/e2e $(ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

importlint: install
	$(BIN)/lint-imports

audit: install
	$(BIN)/pip-audit --strict --disable-pip -r requirements.lock

all: lint typecheck importlint test

bench-emulator: install
	$(BIN)/python bench/bench_emulator.py $(ARGS)

bench-queue: install
	$(BIN)/python bench/bench_queue.py $(ARGS)

bench-ratelimit: install
	$(BIN)/python bench/bench_ratelimit.py $(ARGS)

bench-ingest: install
	$(BIN)/python bench/bench_ingest.py $(ARGS)

bench-webhooks: install
	$(BIN)/python bench/bench_webhooks.py $(ARGS)

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

# Drills on real processes and servers (never part of `make test`): DRILL=name for one, ARGS for
# durations and the seed (see bench/drills/chaos.py --help).
DRILL ?=
chaos: install
	PYTHONPATH=bench $(BIN)/python -m drills.chaos $(if $(DRILL),--drill $(DRILL)) $(ARGS)

# The load profile (short: under 10 minutes; ARGS="--profile full" for 100,000 products).
test-load: install
	PYTHONPATH=bench $(BIN)/python -m drills.load $(ARGS)

MINUTES ?= 30
soak: install
	PYTHONPATH=bench $(BIN)/python -m drills.soak --minutes $(MINUTES) $(ARGS)
