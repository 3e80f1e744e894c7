# Workflow Station. `make dev` and `make test` set up .venv on first use (and again when the
# dependency files change); nothing else needs installing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-unit lint docs bench bench-compare profile soak example lock clean screenshot

# requirements-dev.lock: the runtime lock plus the dev stack's binaries and the test and lint
# tools. The image (Dockerfile) installs requirements.lock alone.
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m cli dev

example: $(STAMP)
	$(BIN)/python -m cli example

# The suite mostly waits (on servers, timers and subprocesses), so it runs in TEST_WORKERS
# processes whatever the core count; each has its own Temporal servers, Redis and targets.
# `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 4

test: $(STAMP)
	$(BIN)/python -m pytest -q --numprocesses $(TEST_WORKERS) --dist worksteal

# The pure tests alone (seconds): models, templating, graph, settings, docs, layout.
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The reference pages (docs/reference/) and JSON Schemas (schemas/), written from the models;
# tests/unit/test_reference_docs.py fails when they are stale.
docs: $(STAMP)
	$(BIN)/python docs/generate.py

# The run page of the example pipeline, in a headless Chromium, to docs/run-page.png (the
# README shows it); needs Debian's chromium and chromium-driver.
screenshot: $(STAMP)
	$(BIN)/python docs/screenshot.py

# Every contender side by side (engine modes, bare SDK worker, asyncio); results in
# bench/results/latest.json. `bench-compare` adds Prefect from its own venv, never the project's.
PREFECT_VENV := .bench-venv-prefect

bench: $(STAMP)
	$(BIN)/python bench/dag.py

$(PREFECT_VENV)/.installed:
	@test -x $(PREFECT_VENV)/bin/python || $(PYTHON) -m venv $(PREFECT_VENV)
	$(PREFECT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check prefect==3.9.1 httpx
	@touch $@

bench-compare: $(STAMP) $(PREFECT_VENV)/.installed
	$(BIN)/python bench/dag.py --prefect $(PREFECT_VENV)/bin/python

# py-spy on the worker and the gateway under the fan-out and throughput loads (bench/profile.md).
profile: $(STAMP)
	$(BIN)/python bench/cpu_profile.py

# The worker SIGKILLed 20 times under a batch of runs (a few minutes).
soak: $(STAMP)
	$(BIN)/python bench/soak_worker_kills.py

# Re-pin after changing pyproject.toml: resolves into scratch venvs and records name==version
# only: requirements.lock from the runtime dependencies, requirements-dev.lock from all of them.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	  print('\n'.join(p['dependencies']))" > .lockenv/runtime.txt
	.lockenv/bin/python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	  print('\n'.join(sum(p['optional-dependencies'].values(), [])))" > .lockenv/extras.txt
	.lockenv/bin/pip install --quiet --disable-pip-version-check -r .lockenv/runtime.txt
	.lockenv/bin/pip freeze --exclude pip > requirements.lock
	.lockenv/bin/pip install --quiet --disable-pip-version-check -c requirements.lock \
	  -r .lockenv/extras.txt
	.lockenv/bin/pip freeze --exclude pip > requirements-dev.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) $(PREFECT_VENV) .data .pytest_cache .mypy_cache .ruff_cache
