# Rastro: `make run` starts everything on this machine, `make test` runs every test.
# Needs only Python 3.11+ with pip: uv is installed on first use, then `uv sync --frozen` does the rest.

SHELL := /bin/bash
PYTHON ?= python3
# uv on PATH, else where `pip install --user` puts it, else the copy pip installed as a module.
UV = $(shell command -v uv 2>/dev/null || { test -x "$(HOME)/.local/bin/uv" && echo "$(HOME)/.local/bin/uv"; } || echo "$(PYTHON) -m uv")
UV_RUN = $(UV) run --frozen

.DEFAULT_GOAL := help
.PHONY: help uv sync run test chaos bench lint schemas clean

help:
	@echo "make run      start the whole stack on 127.0.0.1:8000 (Ctrl-C stops it)"
	@echo "make test     run every test: unit, integration, e2e"
	@echo "make chaos    the chaos suite at full size, ~25k events per scenario: every service SIGKILLed"
	@echo "             mid-stream, Postgres and broker restarts, flapping receivers, frozen consumers"
	@echo "make bench    run the benchmarks, results in bench/results/"
	@echo "make lint     ruff"
	@echo "make schemas  regenerate schemas/ from the event models"
	@echo "make clean    remove caches and the dev stack's state (.rastro/)"

uv:
	@if ! $(UV) --version >/dev/null 2>&1; then \
		echo "uv not found: installing it with pip"; \
		$(PYTHON) -m pip install --user --quiet uv 2>/dev/null \
		|| $(PYTHON) -m pip install --quiet uv 2>/dev/null \
		|| $(PYTHON) -m pip install --user --quiet --break-system-packages uv; \
	fi

sync: uv
	$(UV) sync --frozen --all-groups

run: sync
	$(UV_RUN) rastro dev up

test: sync
	$(UV_RUN) pytest

# The chaos tests also run in `make test`, small; here each service in turn, at the issue's size.
chaos: sync
	RASTRO_CHAOS_SHIPMENTS=4000 RASTRO_CHAOS_RATE=1500 \
	RASTRO_CHAOS_VICTIMS=ingest,normalization,eta,notification,dlq-replay \
	RASTRO_CHAOS_SLOW=normalization,eta,notification \
	$(UV_RUN) pytest tests/chaos --timeout 1800

bench: sync
	$(UV_RUN) python bench/run.py
	$(UV_RUN) python bench/dispatcher_bench.py
	$(UV_RUN) python bench/telemetry_bench.py
	$(UV_RUN) python bench/fleet_bench.py

lint: sync
	$(UV_RUN) ruff check .

schemas: sync
	$(UV_RUN) python -m rastro_events.schema_export
	$(UV_RUN) python -m rastro_kit.openapi_export

clean:
	@if [ -f .rastro/pg/postmaster.pid ] && kill -0 "$$(head -n1 .rastro/pg/postmaster.pid)" 2>/dev/null; then \
		echo "the dev stack's Postgres is running: stop 'make run' first"; exit 1; \
	fi
	rm -rf .rastro .pytest_cache .mypy_cache .ruff_cache dist
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +
