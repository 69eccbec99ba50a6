# Two commands do everything on a fresh machine:
#   make run    — the bot (Telegram if TELEGRAM_BOT_TOKEN is set, otherwise the console), on SQLite
#   make test   — lint and the whole test suite (SQLite and a throwaway PostgreSQL)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run web test lint format bench diagrams migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m bot migrate
	$(PY) -m bot run

web: $(STAMP)
	$(PY) -m bot migrate
	$(PY) -m bot web

test: $(STAMP)
	$(PY) -m ruff check bot tests benchmarks
	$(PY) -m ruff format --check bot tests benchmarks
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check bot tests benchmarks

format: $(STAMP)
	$(PY) -m ruff format bot tests benchmarks
	$(PY) -m ruff check --fix bot tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks.qa_bench
	$(PY) -m benchmarks.form_bench
	$(PY) -m benchmarks.export_bench
	$(PY) -m benchmarks.web_bench
	$(PY) -m benchmarks.telegram_bench --rounds 3
	$(PY) -m benchmarks.load_bench --users 200 --db both

diagrams: $(STAMP)
	$(PY) -m bot diagram

migrate: $(STAMP)
	$(PY) -m bot migrate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache data
