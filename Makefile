# Workflow Station. `make dev` and `make test` set up .venv on first use (and again when the
# dependency files change); nothing else needs installing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint bench soak example lock clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

dev: $(STAMP)
	$(BIN)/python cli.py dev

example: $(STAMP)
	$(BIN)/python cli.py example

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/dag.py

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
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
