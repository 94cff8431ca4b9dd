#!/usr/bin/env bash
# Installs the Debian packages a target needs, when they are missing.
#   scripts/system-packages.sh mysql     headers mysqlclient builds against
#   scripts/system-packages.sh chromium  the browser the browser tests drive
#   scripts/system-packages.sh nginx     the front tests/test_nginx.py runs deploy/nginx.conf in
#   scripts/system-packages.sh gettext   msgfmt, which compilemessages runs
# Not root: prints the apt-get line to run instead, and fails.
set -euo pipefail

need=()
case "${1:-}" in
  mysql)
    pkg-config --exists mysqlclient 2>/dev/null || need+=(default-libmysqlclient-dev pkg-config build-essential)
    ;;
  chromium)
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    ;;
  nginx)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    ;;
  gettext)
    command -v msgfmt >/dev/null 2>&1 || need+=(gettext)
    ;;
  *)
    echo "usage: $0 mysql|chromium|nginx|gettext" >&2
    exit 2
    ;;
esac

[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "Missing Debian packages: run  sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
