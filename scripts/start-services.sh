#!/usr/bin/env bash
# Starts this machine's MariaDB and Redis on loopback when they are not running,
# and waits until both answer.
set -euo pipefail

if ! mysqladmin --host=127.0.0.1 --user=root ping >/dev/null 2>&1; then
  echo "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
for _ in $(seq 1 60); do
  if mysqladmin --host=127.0.0.1 --user=root ping >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "MariaDB or Redis did not come up on 127.0.0.1" >&2
exit 1
