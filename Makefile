# Bilten's everyday commands.
#
#   make run        serve the platform and a demo tenant (http://localhost:5000, http://demo.localhost:5000)
#   make test       run the test suite
#   make lint       ruff
#   make typecheck  mypy
#   make bench      the tenancy benchmark (BENCH_ARGS=--quick for a short run)
#   make bench-flash  the flash-sale benchmark: 30,000 buyers, 3,000 tickets (BENCH_ARGS=--quick)
#   make bench-checkin  ticket-code verifications per second against an HMAC baseline (BENCH_ARGS=--quick)
#   make bench-webhooks  Stripe webhooks handled per second against a no-op endpoint (BENCH_ARGS=--quick)
#   make lock       pin new dependencies after changing pyproject.toml (LOCK_ARGS=--upgrade: newest of all)
#   make messages   re-extract and compile the translation catalogs after changing strings
#   make clean      remove the virtual environment and caches (the data under instance/ stays)
#
# Without DATABASE_URL / REDIS_URL, `run` and `test` start embedded PostgreSQL and Redis under
# instance/; set both to use your own servers.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

RUNTIME_LOCK := requirements/lock.txt
DEV_LOCK     := requirements/dev.txt
# A stamp per lock file: reinstall only when the lock (or the project's own metadata) changed.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP     := $(VENV)/.installed-dev
# The third-party-style plugin the tests install like any other distribution.
TEST_PLUGIN := tests/plugins/bilten_hello

.PHONY: run test lint typecheck bench bench-flash bench-checkin bench-webhooks lock messages clean

run: $(RUNTIME_STAMP)
	$(BIN)/bilten run

test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

bench: $(RUNTIME_STAMP)
	$(BIN)/python -m bench.tenancy $(BENCH_ARGS)

bench-flash: $(RUNTIME_STAMP)
	$(BIN)/python -m bench.flash_sale $(BENCH_ARGS)

bench-checkin: $(DEV_STAMP)
	$(BIN)/python -m bench.checkin $(BENCH_ARGS)
	$(BIN)/python -m bench.checkin_server $(BENCH_ARGS)

bench-webhooks: $(DEV_STAMP)
	$(BIN)/python -m bench.webhooks $(BENCH_ARGS)

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Bilten needs Python 3.11: install it, or name it with PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): $(RUNTIME_LOCK) pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes -r $(RUNTIME_LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

$(DEV_STAMP): $(DEV_LOCK) pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes -r $(DEV_LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	if [ -d $(TEST_PLUGIN) ]; then $(PIP) install --no-deps --no-build-isolation -e $(TEST_PLUGIN); fi
	touch $@

# Pins every dependency with its hashes, from plain PyPI (ignoring any local pip configuration),
# so that a fresh machine installs exactly what was tested. The dev lock is constrained by the
# runtime lock, so both pin the same versions. pip-tools is a maintainer's tool, not a dependency.
LOCK_FLAGS := --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--index-url https://pypi.org/simple --extra embedded $(LOCK_ARGS)
PIP_COMPILE := env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile $(LOCK_FLAGS)
lock: $(DEV_STAMP)
	$(PIP) install --quiet pip-tools
	$(PIP_COMPILE) -o $(RUNTIME_LOCK) pyproject.toml
	$(PIP_COMPILE) --extra dev -c $(RUNTIME_LOCK) -o $(DEV_LOCK) pyproject.toml

messages: $(DEV_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -o bilten_core/translations/messages.pot bilten_core plugins tenants
	$(BIN)/pybabel update -i bilten_core/translations/messages.pot -d bilten_core/translations
	$(BIN)/pybabel compile -d bilten_core/translations

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
