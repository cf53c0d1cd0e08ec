# Vesper Console: `make run` brings up the whole thing locally, `make test` runs the suite.
# Both install what they need on a fresh Debian machine (as root: apt-get for Mosquitto, Chromium, PostgreSQL).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench bench-quick system-deps browser-deps postgres-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

system-deps:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || { \
		echo "installing mosquitto from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients; }
	@command -v openssl >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl; }

browser-deps:
	@test -x /usr/bin/chromium || { \
		echo "installing chromium from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The tests start their own server on a free port (tests/pg.py); the cluster Debian's package may start on 5432
# is never used. Debian keeps the binaries off PATH, in /usr/lib/postgresql/N/bin.
postgres-deps:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing postgresql from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

run: system-deps $(STAMP)
	$(PY) -m vesper_sim.devrun

test: system-deps browser-deps postgres-deps $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

bench: system-deps $(STAMP)
	$(PY) -m bench

bench-quick: system-deps $(STAMP)
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) var
