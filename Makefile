# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test lint types imports pytest clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/broker migrate
	$(BIN)/broker demo

test: lint types imports pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

pytest: install
	$(BIN)/pytest --cov --cov-report= $(PYTEST_ARGS)
	@# The floor (pyproject: fail_under) is enforced here too: pytest-cov's own check has been
	@# seen to leave the exit status at 0 in a full run.
	$(BIN)/coverage report

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .coverage
