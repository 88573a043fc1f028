# The two set-up commands of the README: `make demo` and `make test`. Both work on a fresh machine.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Tests use PostgreSQL when it answers on 127.0.0.1 (as on CI), else the embedded SQLite.
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),$(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo postgres://postgres@127.0.0.1:5432/abonent))
PYTEST_WORKERS ?= 2
# `make lock`: the tool that writes the locks, pinned like everything else it resolves.
UV_VERSION ?= 0.13.9
# `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest release the ranges allow,
# `LOCK_FLAGS="--upgrade-package django"` one package; without it pins already in the locks are kept.
LOCK_FLAGS ?=
LOCK = $(BIN)/uv pip compile pyproject.toml --group build --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" --quiet $(LOCK_FLAGS)

.PHONY: install lock demo test test-sqlite test-properties lint check-migrations system-deps messages openapi bench clean \
	guide-screenshots

# Everything from the hashed lock (the runtime's pins plus the test tools), then the project itself without
# dependencies and with the locked setuptools: nothing is fetched that the lock does not name and hash.
# `pip check` fails when pyproject.toml asks for a package or range the lock lacks: run `make lock`.
$(BIN)/.installed: requirements-test.lock requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements-test.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check || { echo "the lock does not match pyproject.toml: run make lock"; exit 1; }
	touch $@

install: $(BIN)/.installed

# requirements.lock: what production installs (docs/operations.md); requirements-test.lock: the same pins plus
# the test extra, for development and CI. Both for every platform and Python >= 3.11 (docs/development.md).
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q uv==$(UV_VERSION)
	$(LOCK) -o requirements.lock
	$(LOCK) --extra test -c requirements.lock -o requirements-test.lock

demo: install
	$(BIN)/abonent demo

system-deps:
	scripts/install-system-deps

test: install system-deps
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

# The ledger's rules on the embedded engine too: billing's refusals are triggers of their own on SQLite;
# payments, whose parsing of dates and ids met SQLite's own limits (year 1, 2^63, its variable count); dunning and
# notifications, whose sweep and outbox write with SQL of their own per engine; the import, whose bulk writes and
# opening balances take a path of their own on SQLite; the reports, whose summary facts roll up per engine.
test-sqlite: install
	DATABASE_URL= $(BIN)/pytest -n $(PYTEST_WORKERS) -m "not browser and not slow" tests/core tests/staff tests/subscribers \
		tests/billing tests/payments tests/dunning tests/notifications tests/imports tests/reports

# The properties (fees: tests/billing/test_fee_properties.py; the reports' facts: tests/reports/test_fact_properties.py)
# with 1,000 examples instead of CI's 25 and 20; PROPERTY_EXAMPLES=N.
PROPERTY_EXAMPLES ?= 1000
test-properties: install
	DATABASE_URL=$(TEST_DATABASE_URL) ABONENT_PROPERTY_EXAMPLES=$(PROPERTY_EXAMPLES) $(BIN)/pytest \
		tests/billing/test_fee_properties.py tests/reports/test_fact_properties.py --hypothesis-show-statistics

lint: install
	$(BIN)/ruff check .

check-migrations: install
	DATABASE_URL= $(BIN)/abonent makemigrations --check --dry-run

messages: install
	cd abonent && ../$(BIN)/abonent makemessages -l ru --no-obsolete --no-location && ../$(BIN)/abonent compilemessages -l ru

# The operator's guide's pictures (docs/guide/): the browser tests of the main tasks in Russian and English.
guide-screenshots: install system-deps
	$(BIN)/python scripts/guide-screenshots

openapi: install
	$(BIN)/abonent export_openapi_schema --api abonent.api.urls.api --indent 2 --sorted --output docs/api/openapi.json

bench: install
	$(BIN)/python bench/subscriber_search.py

clean:
	rm -rf $(VENV) var
