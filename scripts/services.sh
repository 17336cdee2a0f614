#!/usr/bin/env bash
# Install (Debian packages) and start Redis, MariaDB and PostgreSQL (Airflow's metadata DB
# and Celery result backend) on 127.0.0.1, only when they are not already answering. Data
# lives under var/ (git-ignored; VIDEO_SERVICES_DIR elsewhere). Stops only what it started,
# by recorded pid. Redis keeps its data across a restart or a kill -9: append-only file,
# fsync every second (REDIS_PERSISTENCE; a restart replays it).
#   scripts/services.sh install | start | start-redis | stop | status
# With SERVICES_STARTED_FILE set, `start` appends the names it started to that file and
# `stop` stops only the names listed there (used by `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VAR="${VIDEO_SERVICES_DIR:-$ROOT/var/services}"
REDIS_PORT=${VIDEO_REDIS_PORT:-6379}
MYSQL_PORT=${VIDEO_MYSQL_PORT:-3306}
MYSQL_USER=${VIDEO_MYSQL_USER:-video}
MYSQL_PASSWORD=${VIDEO_MYSQL_PASSWORD:-video}
MYSQL_DB=${VIDEO_MYSQL_DB:-video}
PG_PORT=${VIDEO_PG_PORT:-5432}
PG_USER=${VIDEO_PG_USER:-airflow}
PG_PASSWORD=${VIDEO_PG_PASSWORD:-airflow}
PG_DB=${VIDEO_PG_DB:-airflow}
PG_DATA="$VAR/postgres"
REDIS_PERSISTENCE=(--appendonly yes --appendfsync everysec --save "")  # docker-compose.yml: the same
PG_SOCK="$VAR/postgres-run"   # unix socket dir (0700, postgres): superuser access for setup only
mkdir -p "$VAR"

redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
mysql_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -u "$MYSQL_USER" -p"$MYSQL_PASSWORD" ping >/dev/null 2>&1; }
mysql_root_up() { mysqladmin --socket="$VAR/mysql.sock" -u root ping >/dev/null 2>&1; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
pg_up() { PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 psql -qAtX -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" \
  -c 'select 1' >/dev/null 2>&1; }
pg_answering() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" >/dev/null 2>&1; }
pg_super_up() { "$(pg_bin)/pg_isready" -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres >/dev/null 2>&1; }

wait_for() { # wait_for <seconds> <check-fn> <name>
  local limit=$1 fn=$2 name=$3 i=0
  while ! $fn; do
    i=$((i + 1)); if [ "$i" -gt $((limit * 5)) ]; then echo "services: $name did not answer within ${limit}s" >&2; return 1; fi
    sleep 0.2
  done
}

install() {
  local need=()
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v mariadbd >/dev/null || command -v mysqld >/dev/null || need+=(mariadb-server)
  dpkg -s default-libmysqlclient-dev >/dev/null 2>&1 || need+=(default-libmysqlclient-dev)
  command -v pkg-config >/dev/null || need+=(pkg-config)
  command -v gcc >/dev/null || need+=(gcc)  # the online-time C accelerator (optional, but the tests expect it)
  dpkg -s python3-dev >/dev/null 2>&1 || need+=(python3-dev)
  command -v docker-compose >/dev/null || need+=(docker-compose)
  command -v chromium >/dev/null || need+=(chromium)
  { [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ]; } || need+=(postgresql)
  command -v psql >/dev/null || need+=(postgresql-client)
  if [ ${#need[@]} -gt 0 ]; then
    echo "services: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

start_redis() {
  if redis_up; then echo "services: redis already answering on $REDIS_PORT"; return; fi
  mkdir -p "$VAR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$VAR/redis" --daemonize yes \
    --pidfile "$VAR/redis.pid" --logfile "$VAR/redis.log" "${REDIS_PERSISTENCE[@]}" >/dev/null
  wait_for 20 redis_up redis
  record redis
  echo "services: started redis on 127.0.0.1:$REDIS_PORT (pid $(cat "$VAR/redis.pid"))"
}

start_mysql() {
  if mysql_up; then echo "services: mariadb already answering on $MYSQL_PORT"; return; fi
  local daemon; daemon=$(command -v mariadbd || command -v mysqld)
  if [ ! -d "$VAR/mysql/mysql" ]; then
    mkdir -p "$VAR/mysql"
    mariadb-install-db --no-defaults --datadir="$VAR/mysql" --user=root \
      --auth-root-authentication-method=socket >"$VAR/mysql-init.log" 2>&1
  fi
  "$daemon" --no-defaults --datadir="$VAR/mysql" --user=root --bind-address=127.0.0.1 \
    --port="$MYSQL_PORT" --socket="$VAR/mysql.sock" --pid-file="$VAR/mysql.pid" \
    --log-error="$VAR/mysql.log" --skip-name-resolve >/dev/null 2>&1 &
  wait_for 60 mysql_root_up mariadb
  mysql --socket="$VAR/mysql.sock" -u root <<SQL
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DB\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL ON \`$MYSQL_DB\`.* TO '$MYSQL_USER'@'127.0.0.1';
GRANT ALL ON \`$MYSQL_DB\`.* TO '$MYSQL_USER'@'localhost';
GRANT ALL ON \`test\\_%\`.* TO '$MYSQL_USER'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
  wait_for 20 mysql_up mariadb-user
  record mariadb
  echo "services: started mariadb on 127.0.0.1:$MYSQL_PORT (pid $(cat "$VAR/mysql.pid"))"
}

as_pg() { # run as the postgres OS user (initdb/postgres refuse to run as root)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_setup() { # the role (may create test databases) and the database, as the superuser over the socket
  as_pg psql -qAtX -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -v user="$PG_USER" -v pw="$PG_PASSWORD" -v db="$PG_DB" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'pw')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
}

start_postgres() {
  if pg_up; then echo "services: postgres already answering on $PG_PORT"; return; fi
  if pg_answering; then
    # answering but without our role/database: set them up if it is our own server
    if pg_super_up; then pg_setup && wait_for 20 pg_up postgres-user && return; fi
    echo "services: a PostgreSQL on 127.0.0.1:$PG_PORT answers but not as $PG_USER/$PG_DB; create them there or set VIDEO_PG_PORT" >&2
    return 1
  fi
  local bin; bin=$(pg_bin)
  mkdir -p "$PG_DATA" "$PG_SOCK"
  touch "$VAR/postgres.log"
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$PG_DATA" "$PG_SOCK" "$VAR/postgres.log"
    # the postgres user must be able to reach its data folder: a checkout under a private folder
    # (mktemp -d gives 0700) gets search permission (o+x, not read) on the folders above it
    local dir=$PG_DATA
    while [ "$dir" != / ]; do
      dir=$(dirname "$dir")
      runuser -u postgres -- test -x "$dir" 2>/dev/null || chmod o+x "$dir"
    done
  fi
  chmod 0700 "$PG_DATA" "$PG_SOCK"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$VAR/postgres-init.log" 2>&1 ||
      { tail -n 20 "$VAR/postgres-init.log" >&2; return 1; }
  fi
  rm -f "$VAR/postgres.pid"
  # -l/-w: pg_ctl daemonises the server (its own session) and waits until it accepts connections
  as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$VAR/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCK -c max_connections=200" >/dev/null ||
    { tail -n 20 "$VAR/postgres.log" >&2; return 1; }
  head -n 1 "$PG_DATA/postmaster.pid" >"$VAR/postgres.pid"
  wait_for 60 pg_super_up postgres
  pg_setup
  wait_for 20 pg_up postgres-user
  record postgres
  echo "services: started postgres on 127.0.0.1:$PG_PORT (pid $(cat "$VAR/postgres.pid"))"
}

stop_postgres() { # SIGINT = fast shutdown (SIGTERM would wait for every client to disconnect)
  local f="$VAR/postgres.pid" pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid"
    for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -QUIT "$pid"
    echo "services: stopped postgres (pid $pid)"
  fi
  rm -f "$f"
}

record() { [ -z "${SERVICES_STARTED_FILE:-}" ] || echo "$1" >>"$SERVICES_STARTED_FILE"; }
wanted() { [ -z "${SERVICES_STARTED_FILE:-}" ] || grep -qx "$1" "$SERVICES_STARTED_FILE" 2>/dev/null; }

stop_pidfile() { # stop_pidfile <file> <name>
  local f=$1 name=$2 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "services: stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

case "${1:-start}" in
  install) install ;;
  start) install; start_redis; start_mysql; start_postgres ;;
  start-redis) start_redis ;;
  stop)
    if wanted redis; then stop_pidfile "$VAR/redis.pid" redis; fi
    if wanted mariadb; then stop_pidfile "$VAR/mysql.pid" mariadb; fi
    if wanted postgres; then stop_postgres; fi
    [ -z "${SERVICES_STARTED_FILE:-}" ] || rm -f "$SERVICES_STARTED_FILE" ;;
  status)
    redis_up && echo "redis: up" || echo "redis: down"
    mysql_up && echo "mariadb: up" || echo "mariadb: down"
    pg_up && echo "postgres: up" || echo "postgres: down" ;;
  *) echo "usage: $0 install|start|start-redis|stop|status" >&2; exit 2 ;;
esac
