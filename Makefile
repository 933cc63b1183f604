# Standardiste: `make run` (receptionist on a local Asterisk) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export STANDARDISTE_CACHE ?= /var/cache/standardiste

.PHONY: run test check lint typecheck asterisk deps venv models bench-engines clean

run: deps venv asterisk
	$(BIN)/standardiste dev --run-dir .run

test: deps venv asterisk
	$(BIN)/pytest $(PYTEST_ARGS)

check: lint typecheck test

lint: venv
	$(BIN)/ruff check agent tests scripts

typecheck: venv
	$(BIN)/mypy

asterisk:
	bash scripts/install-asterisk.sh

deps:
	bash scripts/install-system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install-llama.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,standins]'
	bash scripts/install-llama.sh $(BIN)/pip
	touch $@

# Production French models (needs internet on the box). PIN=1 accepts files whose sha256 is not
# pinned in models/manifest.yaml yet, printing their digests.
models: venv
	$(BIN)/standardiste models install --dir models $(if $(PIN),--pin)

bench-engines: venv
	$(BIN)/python scripts/bench_engines.py --models models

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache *.egg-info
