# The project's local settings: sourced by the Makefile, the scripts and tests/conftest.py.
# Everything already set in the environment wins, so production values can be passed in.
VIDEO_ROOT=${VIDEO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export VIDEO_ROOT
export AIRFLOW_HOME=${AIRFLOW_HOME:-$VIDEO_ROOT/.airflow}
export AIRFLOW__CORE__DAGS_FOLDER=${AIRFLOW__CORE__DAGS_FOLDER:-$VIDEO_ROOT/dags}
export AIRFLOW__CORE__PLUGINS_FOLDER=${AIRFLOW__CORE__PLUGINS_FOLDER:-$VIDEO_ROOT/plugins}
export AIRFLOW__CORE__LOAD_EXAMPLES=${AIRFLOW__CORE__LOAD_EXAMPLES:-False}
export AIRFLOW__CORE__EXECUTOR=${AIRFLOW__CORE__EXECUTOR:-CeleryExecutor}
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}
# Metadata DB: PostgreSQL from scripts/services.sh (VIDEO_PG_PORT, default 5432).
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-postgresql+psycopg2://airflow:airflow@127.0.0.1:${VIDEO_PG_PORT:-5432}/airflow}
# Celery: broker on the project's Redis, db 15 (the data uses db 0, the tests 9-14); results in
# the metadata DB. 2 task slots per worker, so `make up`'s two workers both get work.
export AIRFLOW__CELERY__BROKER_URL=${AIRFLOW__CELERY__BROKER_URL:-redis://127.0.0.1:${VIDEO_REDIS_PORT:-6379}/${VIDEO_CELERY_REDIS_DB:-15}}
export AIRFLOW__CELERY__RESULT_BACKEND=${AIRFLOW__CELERY__RESULT_BACKEND:-db+${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}}
export AIRFLOW__CELERY__WORKER_CONCURRENCY=${AIRFLOW__CELERY__WORKER_CONCURRENCY:-2}
# [core] parallelism: every worker slot of the stack, WORKERS (scripts/airflow_stack.sh, default 2) x
# [celery] worker_concurrency, so `make up WORKERS=4` gets 8 (4 with another executor). An operator's own
# value wins; the value this file set (VIDEO_DEFAULT_PARALLELISM) is recomputed when it is sourced again.
if [ -z "${AIRFLOW__CORE__PARALLELISM:-}" ] || [ "$AIRFLOW__CORE__PARALLELISM" = "${VIDEO_DEFAULT_PARALLELISM:-}" ]; then
  if [[ "$AIRFLOW__CORE__EXECUTOR" == *CeleryExecutor* && "${WORKERS:-2}" =~ ^[1-9][0-9]{0,2}$ && "$AIRFLOW__CELERY__WORKER_CONCURRENCY" =~ ^[1-9][0-9]{0,2}$ ]]; then
    VIDEO_DEFAULT_PARALLELISM=$(( ${WORKERS:-2} * AIRFLOW__CELERY__WORKER_CONCURRENCY ))
  else
    VIDEO_DEFAULT_PARALLELISM=4
  fi
  export VIDEO_DEFAULT_PARALLELISM AIRFLOW__CORE__PARALLELISM=$VIDEO_DEFAULT_PARALLELISM
fi
# a task not acknowledged within this time is redelivered (Airflow's default, set to quiet its warning)
export AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT=${AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT:-86400}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/passwords.json}
export AIRFLOW__API__HOST=${AIRFLOW__API__HOST:-127.0.0.1}
export AIRFLOW__API__PORT=${AIRFLOW__API__PORT:-8080}
export AIRFLOW__API__BASE_URL=${AIRFLOW__API__BASE_URL:-http://127.0.0.1:8080}
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:8080/execution/}
export AIRFLOW__LOGGING__BASE_LOG_FOLDER=${AIRFLOW__LOGGING__BASE_LOG_FOLDER:-$AIRFLOW_HOME/logs}
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-5}
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=${AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK:-True}
# Data services (local defaults; point these at production to go live).
export AIRFLOW_CONN_VIDEO_REDIS=${AIRFLOW_CONN_VIDEO_REDIS:-redis://127.0.0.1:6379/0}
export AIRFLOW_CONN_VIDEO_MYSQL=${AIRFLOW_CONN_VIDEO_MYSQL:-mysql://video:video@127.0.0.1:3306/video}
# AIRFLOW_CONN_VIDEO_MONGO is left unset: no MongoDB server runs on these machines.
# Lineage (apache-airflow-providers-openlineage): one JSON OpenLineage event per line, file transport;
# in production point AIRFLOW__OPENLINEAGE__TRANSPORT at Marquez or any HTTP/Kafka backend instead.
export AIRFLOW__OPENLINEAGE__NAMESPACE=${AIRFLOW__OPENLINEAGE__NAMESPACE:-video_analytics}
# Emit task events from a bounded thread of the task process, not a forked copy of it (the
# provider's default): the same events, without a fork + wait per event (~0.1 s a task), and a
# slow lineage backend can no longer strand a task in `running` (provider >= 2.20.0; the task
# still waits at most [openlineage] execution_timeout for each event).
export AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD=${AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD:-True}
# Arrow allocates from the C heap from the start, so freed memory goes back to the OS (its default, mimalloc,
# keeps freed pages; the kernels' shared context keeps the pool it first saw, so switching at run time is not
# enough): the 5M-play ingest's process tree peaks ~100 MiB lower (bench/README, issue 10).
export ARROW_DEFAULT_MEMORY_POOL=${ARROW_DEFAULT_MEMORY_POOL:-system}
if [ -z "${AIRFLOW__OPENLINEAGE__TRANSPORT:-}" ]; then
  mkdir -p "$VIDEO_ROOT/var/openlineage" 2>/dev/null || true
  export AIRFLOW__OPENLINEAGE__TRANSPORT="{\"type\": \"file\", \"log_file_path\": \"$VIDEO_ROOT/var/openlineage/events.jsonl\", \"append\": true}"
fi
export AIRFLOW_VAR_LOG_DIR=${AIRFLOW_VAR_LOG_DIR:-$VIDEO_ROOT/var/data/logs}
export AIRFLOW_VAR_DATA_ROOT=${AIRFLOW_VAR_DATA_ROOT:-$VIDEO_ROOT/var/data/root}
export PATH="$VIDEO_ROOT/.venv/bin:$PATH"
