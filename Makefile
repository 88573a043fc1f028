# The two set-up commands of the README: `make demo` and `make test`. Both work on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Tests use PostgreSQL when it answers on 127.0.0.1 (as on CI), else the embedded SQLite.
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),$(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo postgres://postgres@127.0.0.1:5432/abonent))
PYTEST_WORKERS ?= 2

.PHONY: install demo test test-sqlite lint check-migrations system-deps messages openapi bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/abonent demo

system-deps:
	scripts/install-system-deps

test: install system-deps
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-sqlite: install
	DATABASE_URL= $(BIN)/pytest -n $(PYTEST_WORKERS) -m "not browser and not slow" tests/core tests/staff tests/subscribers

lint: install
	$(BIN)/ruff check .

check-migrations: install
	DATABASE_URL= $(BIN)/abonent makemigrations --check --dry-run

messages: install
	cd abonent && ../$(BIN)/abonent makemessages -l ru --no-obsolete --no-location && ../$(BIN)/abonent compilemessages -l ru

openapi: install
	$(BIN)/abonent export_openapi_schema --api abonent.api.urls.api --indent 2 --sorted --output docs/api/openapi.json

bench: install
	$(BIN)/python bench/subscriber_search.py

clean:
	rm -rf $(VENV) var
