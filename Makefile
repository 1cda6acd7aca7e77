# Clickstream: the two commands are `make run` and `make test`; each sets itself up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install run test lint bench bench-deps system-deps js-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests need (browser for the tracker/dashboard tests; GoAccess and
# AWStats for the log-import comparison, tests/importer/test_importlog_compare.py; nginx for
# the deployment proxy's `nginx -t`, tests/deploy/test_compose.py, and the pixel bench).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium (browser tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian postgresql (durable broker tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	@{ command -v goaccess >/dev/null 2>&1 && test -f /usr/lib/cgi-bin/awstats.pl; } || { \
	  echo "installing Debian goaccess awstats (log-import comparison)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq goaccess awstats >/dev/null; }
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || { \
	  echo "installing Debian nginx-light (deployment proxy check, pixel bench)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }

# What the benches need besides the tests' packages: wrk drives the pixel bench.
bench-deps: system-deps
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian wrk (pixel bench)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# The tracker's build tool (terser, pinned by js-snippet/package-lock.json).
JS_STAMP := js-snippet/node_modules/.installed
$(JS_STAMP): js-snippet/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: install Node.js 20 (Debian: apt-get install nodejs npm)"; exit 1; }
	cd js-snippet && npm ci --no-audit --no-fund --silent
	touch $(JS_STAMP)

js-deps: $(JS_STAMP)

run: install
	$(BIN)/clickstream serve --port $(PORT)

test: install system-deps js-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy clickstream collector sessionizer reports importer

bench: install bench-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) clickstream-data
