# Vesper Console: `make run` brings up the whole thing locally, `make test` runs the suite, `make install` only
# makes .venv/ for the Procfile (README, Running it in production).
# run and test install what they need on a fresh Debian machine (as root: apt-get for Mosquitto, Chromium, PostgreSQL).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# STAMP: what running it takes (the dependencies, and honcho for the Procfile); TEST_STAMP: the test tools too
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-installed-stamp

.PHONY: install run test lint bench bench-quick system-deps test-system-deps browser-deps postgres-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[procfile]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[procfile,test]'
	touch $(TEST_STAMP)

install: $(STAMP)

system-deps:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || { \
		echo "installing mosquitto from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients; }

# What only the tests use: openssl makes their certificates (tests/tls.py), faketime steps a clock.
test-system-deps: system-deps
	@command -v openssl >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl; }
	@ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || { \
		echo "installing faketime from Debian's packages (tests/test_clock_steps_e2e.py steps the ingest's clock)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime; }

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

# These suites again on PostgreSQL (tests/pg.py starts a server): the store's, the in-process ingest's, the
# API's and the real processes' (tests/faults too). Still SQLite only: the tests that work on the SQLite file
# itself (issue 13 goes on), and the browser tests: a page holds nothing an engine decides, and what it shows is
# checked on PostgreSQL through the API or the real processes by the tests named here:
#   test_console_browser, test_list_browser: test_list_fleet, test_device_query, test_web_e2e (the stream, its
#     reconnect, the health check), test_api;
#   test_lifecycle_browser: test_lifecycle_api (ack, "/" in a subsystem, silences, flapping, unconfirmed),
#     test_lifecycle_e2e;
#   test_mobile_browser: those, test_registry_api (the edit), test_notifications_api;
#   test_timeline_browser: test_timeline, test_silence_events;
#   test_bulk_browser: test_bulk_api, test_bulk_e2e, test_registry_api (CSV);
#   test_trust_browser: test_trust_e2e (a stopped ingest);
#   test_roles_browser, test_audit_browser: test_roles, test_roles_e2e, test_audit_api.
POSTGRES_TESTS := tests/test_store.py tests/test_history_follow.py tests/test_history_store.py tests/test_history_api.py tests/test_history_scope.py tests/test_beside.py tests/test_device_query.py tests/test_device_paging.py tests/test_device_search.py \
	tests/test_registry_api.py tests/test_ingest_inprocess.py tests/test_alert_lifecycle.py \
	tests/test_notify_inprocess.py tests/test_notify_lifecycle.py tests/test_lifecycle_api.py \
	tests/test_device_timeout.py tests/test_ingest_e2e.py tests/test_web_e2e.py tests/test_notify_e2e.py \
	tests/test_registry_e2e.py tests/test_lifecycle_e2e.py tests/test_sse.py \
	tests/faults tests/test_api.py tests/test_security.py tests/test_notifications_api.py \
	tests/test_metrics.py tests/test_liveness.py tests/test_security_e2e.py tests/test_clock_steps_e2e.py \
	tests/test_trust_e2e.py tests/test_pipeline.py tests/test_store_stall_e2e.py \
	tests/test_forget_unregistered.py tests/test_big_outage.py tests/test_flooding.py tests/test_flooding_e2e.py \
	tests/test_big_import_e2e.py tests/test_notify_slow_receiver_e2e.py tests/test_info_qos_e2e.py \
	tests/test_list_fleet.py tests/test_timeline.py tests/test_silence_events.py \
	tests/test_bulk_api.py tests/test_bulk_e2e.py tests/test_history_e2e.py \
	tests/test_escalation_inprocess.py tests/test_escalation_e2e.py \
	tests/test_scope.py tests/test_scope_e2e.py \
	tests/test_roles.py tests/test_roles_e2e.py \
	tests/test_audit_store.py tests/test_audit_api.py tests/test_audit_e2e.py

test: test-system-deps browser-deps postgres-deps $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest
	VESPER_TEST_DATABASE=postgresql $(PY) -m pytest -q -m "not sqlite_only" $(POSTGRES_TESTS)

lint: $(TEST_STAMP)
	$(PY) -m ruff check .

bench: system-deps $(TEST_STAMP)
	$(PY) -m bench

bench-quick: system-deps $(TEST_STAMP)
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) var
