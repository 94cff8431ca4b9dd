#!/usr/bin/env bash
# The nightly backup (deploy/auction-backup.timer): a consistent dump of the
# database, and the media when it is on this machine's disk. Keeps 14 days.
#   /srv/auction/deploy/backup.sh /var/backups/auction
# Media on object storage is kept by the bucket's versioning and its copy
# (deploy/README.md, Backups), not here.
set -euo pipefail
target="${1:-/var/backups/auction}"
stamp=$(date +%Y-%m-%dT%H%M)
mkdir -p "$target"
set -a; . "${AUCTION_ENV_FILE:-/etc/auction/env}"; set +a

# DATABASE_URL=mysql://user:password@host:port/name, read without echoing the password.
IFS=$'\x1f' read -r user password host port name < <(python3 - <<'PY'
import os
from urllib.parse import unquote, urlsplit
url = urlsplit(os.environ["DATABASE_URL"])
print("\x1f".join([unquote(url.username or "root"), unquote(url.password or ""), url.hostname or "127.0.0.1",
                 str(url.port or 3306), url.path.lstrip("/")]))
PY
)
credentials=$(mktemp)
trap 'rm -f "$credentials"' EXIT
printf '[client]\nuser=%s\npassword=%s\nhost=%s\nport=%s\n' "$user" "$password" "$host" "$port" > "$credentials"

dump=mysqldump client=mysql
command -v mysqldump >/dev/null 2>&1 || dump=mariadb-dump
command -v mysql >/dev/null 2>&1 || client=mariadb
# The binary log position as a comment at the top, for a point-in-time restore
# (MySQL 8.4 calls the option --source-data, MariaDB --master-data); it needs
# RELOAD and REPLICATION CLIENT (deploy/README.md grants them).
position=()
if [ "$("$client" --defaults-extra-file="$credentials" -N -B -e 'SELECT @@log_bin')" = 1 ]; then
  options=$("$dump" --help)
  position=(--master-data=2)
  [[ $options == *--source-data* ]] && position=(--source-data=2)
fi
# One transaction's snapshot (InnoDB): the site keeps running.
"$dump" --defaults-extra-file="$credentials" --single-transaction --quick --routines --triggers --events \
  "${position[@]}" --no-tablespaces "$name" | gzip > "$target/auction-$stamp.sql.gz.part"
mv "$target/auction-$stamp.sql.gz.part" "$target/auction-$stamp.sql.gz"

media="${AUCTION_VAR_DIR:-/srv/auction/var}/media"
if [ "${AUCTION_MEDIA_STORAGE:-}" != s3 ] && [ -d "$media" ]; then
  tar -C "$(dirname "$media")" -czf "$target/media-$stamp.tar.gz.part" media
  mv "$target/media-$stamp.tar.gz.part" "$target/media-$stamp.tar.gz"
fi
find "$target" -name 'auction-*.sql.gz' -mtime +14 -delete
find "$target" -name 'media-*.tar.gz' -mtime +14 -delete
echo "backup written: $target/auction-$stamp.sql.gz"
