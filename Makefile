# Workflow Station. `make dev` and `make test` set up .venv on first use (and again when the
# dependency files change); nothing else needs installing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench bench-compare profile soak example lock clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m cli dev

example: $(STAMP)
	$(BIN)/python -m cli example

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

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

# Re-pin after changing pyproject.toml: resolves into a scratch venv, records name==version only.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	  print('\n'.join(p['dependencies'] + sum(p['optional-dependencies'].values(), [])))" > .lockenv/in.txt
	.lockenv/bin/pip install --quiet --disable-pip-version-check -r .lockenv/in.txt
	.lockenv/bin/pip freeze > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) $(PREFECT_VENV) .data .pytest_cache .mypy_cache .ruff_cache
