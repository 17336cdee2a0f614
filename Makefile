# Video analytics on Airflow 3. Every target installs and starts what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
ENV := . $(ROOT)/scripts/env.sh &&
DEMO_DATE ?= 2014-01-07
DEMO_PLAYS ?= 5000
DEMO_USERS ?= 2000
PYTEST_ARGS ?=
# The demo stack's DAG ends at the demo day (VIDEO_SCHEDULE_END_DATE, docs/SETTINGS.md): `make up` after
# `make demo` schedules no run of a real date. `make up SCHEDULE_END=` leaves the schedule open.
SCHEDULE_END ?= $(DEMO_DATE)
DEMO_ENV := VIDEO_SCHEDULE_END_DATE=$(SCHEDULE_END)

.PHONY: help venv system services services-stop airflow-init demo up down test unit lint bench clean

help:
	@echo "make demo   - install everything, generate sample data for $(DEMO_DATE), run the DAG end to end"
	@echo "make test   - the whole test suite (starts Redis/MariaDB/PostgreSQL if missing, stops what it started)"
	@echo "make up     - long-running local Airflow (Celery, WORKERS=2) on http://127.0.0.1:8080 (admin/admin), scheduled up to $(SCHEDULE_END) only; make down stops it"
	@echo "make unit   - the fast inner loop: core, adapter and DAG tests, no services (under a minute)"
	@echo "make bench  - benchmarks (see bench/README.md)"

system:
	$(ROOT)/scripts/services.sh install

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml setup.py plugins/video_analytics/_fastlog.c plugins/video_analytics/_fastplay.c | system
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q -e $(ROOT)
	$(PY) -m pip check
	touch $@

# moto's standalone S3 server for the object-store tests, in its own venv (its server packages stay out of
# the project's venv): scripts/moto.sh.
$(ROOT)/.venv-moto/bin/moto_server: requirements-moto.txt | system
	$(ROOT)/scripts/moto.sh install
	touch $@

# The benchmarks' alternatives (duckdb, polars): the package's `bench` extra, not in `make test`.
$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(PY) -m pip install -q -e '$(ROOT)[bench]'
	touch $@

venv: $(VENV)/.installed

services: system
	$(ROOT)/scripts/services.sh start

services-stop:
	$(ROOT)/scripts/services.sh stop

airflow-init: venv
	$(ENV) $(ROOT)/scripts/airflow_stack.sh init

demo: venv services airflow-init
	$(ENV) mkdir -p "$$AIRFLOW_VAR_LOG_DIR" "$$AIRFLOW_VAR_DATA_ROOT" && \
	  video-analytics sample-data --date $(DEMO_DATE) --log-dir "$$AIRFLOW_VAR_LOG_DIR" \
	    --plays $(DEMO_PLAYS) --users $(DEMO_USERS) && \
	  $(DEMO_ENV) VIDEO_DEADLINE=off airflow dags test daily_analytics $(DEMO_DATE) > $(ROOT)/var/demo-dags-test.log 2>&1 || \
	    { tail -n 60 $(ROOT)/var/demo-dags-test.log; echo "dags test failed: full log in var/demo-dags-test.log"; exit 1; }
	$(ENV) video-analytics summary $(DEMO_DATE)

up: venv services airflow-init
	$(ENV) $(DEMO_ENV) $(ROOT)/scripts/airflow_stack.sh up

down:
	$(ENV) $(ROOT)/scripts/airflow_stack.sh down

lint: venv
	$(VENV)/bin/ruff check dags plugins include tests bench

# Starts Redis/MariaDB/PostgreSQL only if they are not answering, and stops only those it started.
test: venv $(ROOT)/.venv-moto/bin/moto_server
	@export SERVICES_STARTED_FILE=$(ROOT)/var/services-started-by-test; rm -f "$$SERVICES_STARTED_FILE"; \
	$(ROOT)/scripts/services.sh start; \
	rc=0; \
	( $(MAKE) --no-print-directory airflow-init && \
	  $(PY) -m pip check && \
	  $(VENV)/bin/ruff check dags plugins include tests bench && \
	  $(PY) -m pytest $(PYTEST_ARGS) ) || rc=$$?; \
	$(ROOT)/scripts/services.sh stop; \
	exit $$rc

# The fast inner loop: no services, no Airflow home.
unit: venv
	$(VENV)/bin/ruff check dags plugins include tests bench
	$(ENV) $(PY) -m pytest -q tests/unit tests/dags $(PYTEST_ARGS)

bench: venv $(VENV)/.bench-installed services airflow-init
	$(ENV) $(PY) bench/bench_online_time.py
	$(ENV) $(PY) bench/bench_dag_online_time.py
	$(ENV) $(PY) bench/bench_plays.py

clean: down
	rm -rf $(ROOT)/var/data $(ROOT)/.airflow
