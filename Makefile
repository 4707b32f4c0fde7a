# The README's two commands: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# apt-get needs root; use sudo when we are not.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Chromium prints the monthly report's PDF (tests, demo and production); the report's font.
REPORT_PACKAGES := chromium fonts-dejavu-core
# Debian packages the tests talk to (real parts, not mocks). PostgreSQL: the tests use
# the server on 127.0.0.1:5432 when one answers, else start their own from its binaries.
TEST_PACKAGES := mosquitto prometheus prometheus-alertmanager openssl postgresql iproute2 \
	$(REPORT_PACKAGES) poppler-utils

.PHONY: demo test lint check install system-packages clean

$(BIN)/sla-monitor: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/sla-monitor

## demo: install, then run the embedded broker + simulator + daemon (Ctrl-C stops it)
demo: install
	$(BIN)/sla-monitor demo $(DEMO_ARGS)

system-packages:
	@missing=""; \
	for pkg in $(TEST_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

## test: install Mosquitto and the Python dependencies, then run every test
test: system-packages install
	$(BIN)/pytest

## lint: ruff and mypy, as CI runs them
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## check: lint, then test (what CI runs)
check: lint test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache data
