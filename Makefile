# Each target works on a fresh machine by itself: it creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: run the suite against the embedded reference SUT and write a report
demo: $(STAMP)
	$(BIN)/mimi-conformance run

## test: lint, then the project's own tests
test: $(STAMP) lint
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

## bench: the benchmarks (figures, not pass/fail)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_codec.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
