#!/usr/bin/env bash
# Restart (or reload) this machine's auction processes one at a time, each web
# and live instance answering again before the next goes down: nginx sends
# around the one that is restarting, so no request is refused.
#   deploy/rolling-restart.sh           restart: new code AND a changed /etc/auction/env
#   deploy/rolling-restart.sh reload    gunicorn HUP: new code, same environment (faster)
set -euo pipefail
action="${1:-restart}"
case "$action" in restart|reload) ;; *) echo "usage: $0 [restart|reload]" >&2; exit 2 ;; esac
address=$(sed -n 's/^AUCTION_BIND_ADDRESS=//p' /etc/auction/env | tail -n 1)
address=${address:-127.0.0.1}

units() {
  systemctl list-units --plain --no-legend --state=active "$1" | awk '{print $1}'
}

wait_for() {  # url
  for _ in $(seq 1 60); do
    if curl -sf -o /dev/null --max-time 5 "$1"; then return 0; fi
    sleep 1
  done
  echo "$1 did not answer within 60 s: stopping here" >&2
  exit 1
}

for unit in $(units 'auction-web@*'); do
  port=${unit#auction-web@}; port=${port%.service}
  echo "$action $unit"
  systemctl "$action" "$unit"
  # After a HUP the old workers finish while the new ones load; give them the time to.
  [ "$action" = reload ] && sleep 5
  wait_for "http://$address:$port/api/v1/specials"
done
# uvicorn has no reload: a restart closes its sockets, and their phones
# reconnect through nginx to the other live instances (a fresh snapshot each).
for unit in $(units 'auction-live@*'); do
  port=${unit#auction-live@}; port=${port%.service}
  echo "restart $unit"
  systemctl restart "$unit"
  wait_for "http://$address:$port/ws/health"
done
# A cluster finishes the tasks in hand before it stops; the others go on meanwhile.
for unit in $(units 'auction-jobs@*'); do
  echo "restart $unit"
  systemctl restart "$unit"
done
