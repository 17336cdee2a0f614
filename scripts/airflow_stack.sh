#!/usr/bin/env bash
# The local Airflow stack on 127.0.0.1: api-server, scheduler, dag-processor, triggerer and, with
# the CeleryExecutor (scripts/env.sh), WORKERS (default 2) Celery workers.
#   scripts/airflow_stack.sh init | up | down | status
# init   airflow db migrate + $AIRFLOW_HOME/passwords.json {"admin": "admin"} (idempotent)
# up     start the components that are not running yet, each in its own process group
#        (setsid), logs and pids in $AIRFLOW_HOME/stack/; wait (bounded) until
#        /api/v2/monitor/health reports every component healthy and every worker started by
#        this call logged "<name> ready."; on failure print the log tails, stop what this call
#        started and exit 1
# down   stop exactly the recorded process groups (TERM, bounded wait, then KILL), workers first
# status per-component state, the health answer and a Celery ping of the workers; exit 0 only
#        when all run and are healthy
# Workers: `airflow celery worker --celery-hostname workerN@<host>`, concurrency
# [celery] worker_concurrency; only worker1 serves task logs (they share this machine's log
# folder). Each reports its celery hostname as the task instances' hostname
# (scripts/pyhooks/video_stack_host.py). AIRFLOW_STACK_WORKER_PREFIX (default "worker") names them.
# Settings come from scripts/env.sh (values already in the environment win).
# AIRFLOW_STACK_TIMEOUT (default 180 s) bounds `up`; AIRFLOW_STACK_STOP_TIMEOUT (30 s) bounds `down`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=env.sh
. "$ROOT/scripts/env.sh"

STACK_DIR="$AIRFLOW_HOME/stack"
SERVICES=(api-server scheduler dag-processor triggerer)
WORKERS=${WORKERS:-2}
[[ "$WORKERS" =~ ^[0-9]+$ ]] || { echo "airflow_stack: WORKERS must be a number, not '$WORKERS'" >&2; exit 2; }
[[ "$AIRFLOW__CORE__EXECUTOR" == *CeleryExecutor* ]] || WORKERS=0
WORKER_PREFIX=${AIRFLOW_STACK_WORKER_PREFIX:-worker}
HOST=$(hostname)
WANTED_WORKERS=()
for ((i = 1; i <= WORKERS; i++)); do WANTED_WORKERS+=("$WORKER_PREFIX$i"); done
COMPONENTS=("${SERVICES[@]}" "${WANTED_WORKERS[@]}")
UP_TIMEOUT=${AIRFLOW_STACK_TIMEOUT:-180}
STOP_TIMEOUT=${AIRFLOW_STACK_STOP_TIMEOUT:-30}
API_URL="http://${AIRFLOW__API__HOST}:${AIRFLOW__API__PORT}"
HEALTH_URL="$API_URL/api/v2/monitor/health"
PY="$VIDEO_ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3

log() { echo "airflow_stack: $*" >&2; }

is_worker() { [[ " ${SERVICES[*]} " != *" $1 "* ]]; }

celery_name() { echo "$1@$HOST"; } # celery_name <worker>: its --celery-hostname

recorded_workers() { # every worker with a pid file (whatever WORKERS was at `up`)
  local f
  for f in "$STACK_DIR"/*.pid; do
    [ -e "$f" ] || continue
    f=$(basename "$f" .pid)
    is_worker "$f" && echo "$f"
  done
  return 0
}

pid_of() { # pid_of <component>: the recorded pid when that process is alive and is ours
  local f="$STACK_DIR/$1.pid" pid pattern
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against pid reuse: the process must still be an airflow <component>
  # (airflow rewrites some process titles, e.g. "airflow api_server -- host:...", and Celery
  # its workers' titles, e.g. "[celeryd: worker1@host:MainProcess] ...")
  if is_worker "$1"; then pattern="(celeryd: $(celery_name "$1"):|--celery-hostname $(celery_name "$1") )"
  else pattern="airflow.* ${1//-/[-_]}"; fi
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq -- "$pattern" || return 1
  echo "$pid"
}

group_alive() { # group_alive <pgid>: a live (non-zombie) process is still in that group
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

health_json() { # the health endpoint's body, or nothing
  "$PY" - "$HEALTH_URL" <<'EOF' 2>/dev/null || true
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.read().decode())
except Exception:
    pass
EOF
}

all_healthy() { # all_healthy <json>: metadatabase, scheduler, dag_processor and triggerer healthy
  "$PY" -c '
import json, sys
try:
    h = json.loads(sys.argv[1])
except Exception:
    sys.exit(1)
need = ("metadatabase", "scheduler", "dag_processor", "triggerer")
sys.exit(0 if all((h.get(k) or {}).get("status") == "healthy" for k in need) else 1)
' "$1"
}

port_in_use() {
  "$PY" -c '
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
' "$AIRFLOW__API__HOST" "$AIRFLOW__API__PORT"
}

tails() {
  local c
  for c in "${SERVICES[@]}" $( (printf '%s\n' "${WANTED_WORKERS[@]}"; recorded_workers) | sort -u); do
    if [ -f "$STACK_DIR/$c.log" ]; then
      echo "----- $STACK_DIR/$c.log (last 40 lines) -----" >&2
      tail -n 40 "$STACK_DIR/$c.log" >&2 || true
    fi
  done
}

stop_component() { # stop_component <component>: TERM the recorded group, bounded wait, then KILL
  local c=$1 f="$STACK_DIR/$1.pid" pid pgid i
  if ! pid=$(pid_of "$c"); then
    [ -f "$f" ] && log "$c: not running (removing stale $f)"
    rm -f "$f"
    return 0
  fi
  pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
  if [ "$pgid" != "$pid" ]; then
    # not a group leader (should not happen with setsid): signal the pid alone
    log "$c: pid $pid is not a process-group leader; stopping the pid only"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  else
    # TERM the leader first: it shuts its own children down cleanly (signalling the whole
    # group at once leaves the scheduler waiting on its killed executor workers).
    log "$c: stopping pid $pid (process group $pgid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do group_alive "$pgid" || break; sleep 0.2; done
    if group_alive "$pgid" && kill -0 "$pid" 2>/dev/null; then
      # the LocalExecutor waits for its workers after the first TERM; a second one ends that wait
      log "$c: still running after 10s: second SIGTERM to pid $pid"
      kill -TERM "$pid" 2>/dev/null || true
    fi
    for ((i = 0; i < STOP_TIMEOUT * 5; i++)); do group_alive "$pgid" || break; sleep 0.2; done
    if group_alive "$pgid"; then
      log "$c: group $pgid still alive after ${STOP_TIMEOUT}s: SIGTERM to the group, then SIGKILL"
      kill -TERM -- "-$pgid" 2>/dev/null || true
      for ((i = 0; i < 25; i++)); do group_alive "$pgid" || break; sleep 0.2; done
      kill -KILL -- "-$pgid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do group_alive "$pgid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$f"
}

cmd_init() {
  mkdir -p "$AIRFLOW_HOME" "$STACK_DIR"
  log "airflow db migrate ($(sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' <<<"$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"))"
  airflow db migrate >"$STACK_DIR/init.log" 2>&1 || { tail -n 40 "$STACK_DIR/init.log" >&2; log "db migrate failed"; exit 1; }
  local pw="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  mkdir -p "$(dirname "$pw")"
  printf '{"admin": "admin"}\n' >"$pw.tmp" && mv "$pw.tmp" "$pw"
  # the publish pool: its name and size are defined once, in include/settings.py
  local pool
  pool=$("$PY" -c 'from include.settings import PUBLISH_POOL as p, PUBLISH_POOL_SLOTS as n; print(p, n)')
  # shellcheck disable=SC2086
  airflow pools set $pool "serialises MongoDB publishing across runs" >>"$STACK_DIR/init.log" 2>&1 ||
    { tail -n 20 "$STACK_DIR/init.log" >&2; log "creating the pool failed"; exit 1; }
  log "init done (pool ${pool% *}, passwords file $pw)"
}

start_worker() { # start_worker <worker>: in the background; the caller records $!
  local name serve=()
  name=$(celery_name "$1")
  # the first worker serves the task logs of all (one log folder on this machine)
  [ "$1" = "${WANTED_WORKERS[0]}" ] || serve=(--skip-serve-logs)
  VIDEO_WORKER_HOSTNAME="$name" \
    AIRFLOW__CORE__HOSTNAME_CALLABLE=video_stack_host.worker_hostname \
    PYTHONPATH="$ROOT/scripts/pyhooks${PYTHONPATH:+:$PYTHONPATH}" \
    setsid airflow celery worker --celery-hostname "$name" \
    --concurrency "${AIRFLOW__CELERY__WORKER_CONCURRENCY:-2}" "${serve[@]}" \
    >>"$STACK_DIR/$1.log" 2>&1 </dev/null &
}

worker_ready() { # worker_ready <worker>: its log shows "<name> ready." since this call started it
  tail -c "+$((${offset[$1]:-0} + 1))" "$STACK_DIR/$1.log" 2>/dev/null | grep -Fq "$(celery_name "$1") ready."
}

celery_ping() { # celery_ping <worker>...: every one answers a Celery ping through the broker
  local w out dest
  dest=$(for w in "$@"; do celery_name "$w"; done | paste -sd,)
  out=$(timeout 60 celery --app airflow.providers.celery.executors.celery_executor.app inspect ping \
        --timeout 5 -d "$dest" 2>&1) || return 1
  for w in "$@"; do grep -Fq "$(celery_name "$w"): OK" <<<"$out" || return 1; done
}

cmd_up() {
  mkdir -p "$STACK_DIR"
  local c pid started=() missing=0
  declare -gA offset=()
  for c in "${COMPONENTS[@]}"; do pid_of "$c" >/dev/null || missing=1; done
  if [ "$missing" = 1 ] && ! pid_of api-server >/dev/null && port_in_use; then
    log "port $AIRFLOW__API__PORT on $AIRFLOW__API__HOST is already used by a process this script did not start; refusing to start"
    exit 1
  fi
  if [ ! -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ]; then
    log "no passwords file: running init first"
    cmd_init
  fi
  for c in "${COMPONENTS[@]}"; do
    if pid=$(pid_of "$c"); then
      log "$c already running (pid $pid)"
      continue
    fi
    rm -f "$STACK_DIR/$c.pid"
    touch "$STACK_DIR/$c.log"
    offset[$c]=$(stat -c %s "$STACK_DIR/$c.log")
    # setsid: a background job of this (non-interactive) script is not a group leader, so
    # setsid execs in place and the recorded pid is the new process group's id.
    if is_worker "$c"; then start_worker "$c"; else setsid airflow "$c" >>"$STACK_DIR/$c.log" 2>&1 </dev/null & fi
    echo $! >"$STACK_DIR/$c.pid"
    started+=("$c")
    log "started $c (pid $!, log $STACK_DIR/$c.log)"
  done

  local deadline=$((SECONDS + UP_TIMEOUT)) body=""
  while :; do
    for c in "${COMPONENTS[@]}"; do
      if ! pid_of "$c" >/dev/null; then
        log "$c exited during startup"
        tails
        for c in "${started[@]}"; do stop_component "$c"; done
        exit 1
      fi
    done
    body=$(health_json)
    local waiting=()
    for c in "${started[@]}"; do is_worker "$c" && ! worker_ready "$c" && waiting+=("$c"); done
    if [ -n "$body" ] && all_healthy "$body" && [ ${#waiting[@]} -eq 0 ]; then
      log "stack healthy at $API_URL ($body); workers: ${WANTED_WORKERS[*]:-none} ($(for w in "${WANTED_WORKERS[@]}"; do celery_name "$w"; done | paste -sd' '))"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "stack not healthy after ${UP_TIMEOUT}s; last health answer: ${body:-<none>}; workers not ready: ${waiting[*]:-none}"
      tails
      for c in "${started[@]}"; do stop_component "$c"; done
      exit 1
    fi
    sleep 2
  done
}

cmd_down() {
  local c
  # workers first: a worker stopping (warm shutdown) still reports its tasks' states
  for c in $(recorded_workers) "${SERVICES[@]}"; do stop_component "$c"; done
  log "down"
}

cmd_status() {
  local c pid rc=0 body
  for c in "${COMPONENTS[@]}"; do
    if pid=$(pid_of "$c"); then echo "$c: running (pid $pid)"; else echo "$c: stopped"; rc=1; fi
  done
  body=$(health_json)
  echo "health ($HEALTH_URL): ${body:-<no answer>}"
  if [ -z "$body" ] || ! all_healthy "$body"; then rc=1; fi
  if [ ${#WANTED_WORKERS[@]} -gt 0 ]; then
    if celery_ping "${WANTED_WORKERS[@]}"; then echo "celery ping: ${WANTED_WORKERS[*]} OK"
    else echo "celery ping: not every worker answered (${WANTED_WORKERS[*]})"; rc=1; fi
  fi
  return "$rc"
}

case "${1:-}" in
  init) cmd_init ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 init|up|down|status" >&2; exit 2 ;;
esac
