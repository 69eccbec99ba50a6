# Two commands do everything on a fresh machine:
#   make run    — the bot (Telegram if TELEGRAM_BOT_TOKEN is set, otherwise the console), on SQLite
#   make test   — lint, types, import rules and the whole test suite (SQLite and a throwaway PostgreSQL)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# uv only resolves (make lock); installing is plain pip, hashes required
UV_SPEC := uv>=0.5,<1

.PHONY: run web test lint format bench diagrams migrate clean lock

# Every dependency (runtime and dev) comes from the lock file, each checked against its hash;
# then the project itself, without dependencies.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; \
		echo "$(LOCK) does not match pyproject.toml: run 'make lock' and commit it."; exit 1; }
	touch $(STAMP)

# Regenerate the lock file from pyproject.toml (runtime + the `dev` extra), for Python 3.11 on
# Linux x86_64 whatever the machine running it; keeps versions already locked unless
# UPGRADE=1 (then the newest allowed). Needs network access to the package index.
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet '$(UV_SPEC)'
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade,) -o $(LOCK)
	@echo "$(LOCK) regenerated: commit it with pyproject.toml."

run: $(STAMP)
	$(PY) -m bot migrate
	$(PY) -m bot run

web: $(STAMP)
	$(PY) -m bot migrate
	$(PY) -m bot web

test: $(STAMP)
	$(PY) -m ruff check bot tests benchmarks
	$(PY) -m ruff format --check bot tests benchmarks
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check bot tests benchmarks

format: $(STAMP)
	$(PY) -m ruff format bot tests benchmarks
	$(PY) -m ruff check --fix bot tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks.qa_bench
	$(PY) -m benchmarks.form_bench
	$(PY) -m benchmarks.submit_bench
	$(PY) -m benchmarks.export_bench
	$(PY) -m benchmarks.territory_bench
	$(PY) -m benchmarks.overlap_bench
	$(PY) -m benchmarks.web_bench
	$(PY) -m benchmarks.telegram_bench --rounds 3
	$(PY) -m benchmarks.load_bench --users 200 --db both

diagrams: $(STAMP)
	$(PY) -m bot diagram

migrate: $(STAMP)
	$(PY) -m bot migrate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache data
