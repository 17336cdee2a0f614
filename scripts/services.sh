#!/usr/bin/env bash
# Install (Debian packages) and start Redis and MariaDB on 127.0.0.1, only when they are
# not already answering. Data lives under var/ (git-ignored). Stops only what it started,
# by recorded pid.
#   scripts/services.sh install | start | stop | status
# With SERVICES_STARTED_FILE set, `start` appends the names it started to that file and
# `stop` stops only the names listed there (used by `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VAR="$ROOT/var/services"
REDIS_PORT=${VIDEO_REDIS_PORT:-6379}
MYSQL_PORT=${VIDEO_MYSQL_PORT:-3306}
MYSQL_USER=${VIDEO_MYSQL_USER:-video}
MYSQL_PASSWORD=${VIDEO_MYSQL_PASSWORD:-video}
MYSQL_DB=${VIDEO_MYSQL_DB:-video}
mkdir -p "$VAR"

redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
mysql_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -u "$MYSQL_USER" -p"$MYSQL_PASSWORD" ping >/dev/null 2>&1; }
mysql_root_up() { mysqladmin --socket="$VAR/mysql.sock" -u root ping >/dev/null 2>&1; }

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
  command -v docker-compose >/dev/null || need+=(docker-compose)
  command -v chromium >/dev/null || need+=(chromium)
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
    --pidfile "$VAR/redis.pid" --logfile "$VAR/redis.log" --save "" --appendonly no >/dev/null
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
  start) install; start_redis; start_mysql ;;
  stop)
    if wanted redis; then stop_pidfile "$VAR/redis.pid" redis; fi
    if wanted mariadb; then stop_pidfile "$VAR/mysql.pid" mariadb; fi
    [ -z "${SERVICES_STARTED_FILE:-}" ] || rm -f "$SERVICES_STARTED_FILE" ;;
  status) redis_up && echo "redis: up" || echo "redis: down"; mysql_up && echo "mariadb: up" || echo "mariadb: down" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
