#!/bin/sh
# Restores PostgreSQL from a backup set the backup job made (infra/builders/backup.py): the roles
# first (with their password hashes), then every database of the set. POSIX sh: it runs in the
# postgres image too (`kubectl exec -i postgres-0 -- sh -s -- DIR < scripts/postgres-restore.sh`).
# See docs/runbooks.md, "Restore PostgreSQL from a backup".
set -eu

usage() {
  cat >&2 <<'TEXT'
usage: postgres-restore.sh [--from REMOTE] DIR
  DIR            a backup set (a folder with roles.sql and <database>.dump files), or a folder of
                 sets named by their time (the newest one is restored)
  --from REMOTE  first fetch the newest set from the backup target into DIR with rclone, e.g.
                 --from ':s3:venta-backups/postgres' (RCLONE_S3_ENDPOINT, RCLONE_S3_PROVIDER,
                 RCLONE_S3_ACCESS_KEY_ID, RCLONE_S3_SECRET_ACCESS_KEY set as the job sets them)
Connects as a superuser through libpq's environment: PGHOST, PGPORT, PGUSER, PGPASSWORD.
A database that exists is restored in place (its objects from the dump dropped and created again,
in one transaction); one that does not is created as it was, with its owner and privileges.
TEXT
  exit 2
}

remote=""
if [ "${1:-}" = "--from" ]; then
  [ $# -eq 3 ] || usage
  remote=$2
  shift 2
fi
[ $# -eq 1 ] || usage
dir=$1

if [ -n "$remote" ]; then
  newest=$(rclone --config "" lsf --dirs-only "$remote" | grep -E '^2[0-9]{7}T[0-9]{6}Z/$' | sort | tail -n 1)
  if [ -z "$newest" ]; then
    echo "postgres-restore: no backup set at $remote" >&2
    exit 1
  fi
  mkdir -p "$dir"
  rclone --config "" --s3-no-check-bucket copy "$remote/$newest" "$dir/${newest%/}"
fi

if [ -f "$dir/roles.sql" ]; then
  set_dir=$dir
else
  set_dir=$(find "$dir" -mindepth 1 -maxdepth 1 -type d -name '2*' | sort | tail -n 1)
  if [ -z "$set_dir" ] || [ ! -f "$set_dir/roles.sql" ]; then
    echo "postgres-restore: no backup set in $dir" >&2
    exit 1
  fi
fi
echo "postgres-restore: restoring $set_dir"

sql() { psql --dbname=postgres --no-psqlrc -v ON_ERROR_STOP=1 -q -At "$@"; }
roles=$(mktemp)
trap 'rm -f "$roles"' EXIT

# pg_dumpall writes `CREATE ROLE x;` then `ALTER ROLE x WITH ... PASSWORD ...` for every role. A role
# that exists here keeps its CREATE out (it would fail) and takes the backup's attributes and
# password; the role this script connects as is left as it is.
me=$(sql -c 'SELECT current_user')
existing=$(sql -c 'SELECT rolname FROM pg_roles')
awk -v me="$me" -v existing="$existing" '
  BEGIN { n = split(existing, found, "\n"); for (i = 1; i <= n; i++) have[found[i]] = 1 }
  /^(CREATE|ALTER) ROLE / {
    name = $3; sub(/;$/, "", name); gsub(/"/, "", name)
    if (name == me) next
    if ($1 == "CREATE" && (name in have)) next
  }
  { print }' "$set_dir/roles.sql" >"$roles"
sql -f "$roles"
echo "postgres-restore: roles restored"

found=0
for dump in "$set_dir"/*.dump; do
  [ -f "$dump" ] || continue
  found=$((found + 1))
  db=$(basename "$dump" .dump)
  exists=$(echo "SELECT count(*) FROM pg_database WHERE datname = :'db'" | sql -v db="$db")
  if [ "$exists" = 1 ]; then
    pg_restore --dbname="$db" --clean --if-exists --exit-on-error --single-transaction "$dump"
  else
    pg_restore --dbname=postgres --create --exit-on-error "$dump"
  fi
  echo "postgres-restore: $db restored"
done
if [ "$found" -eq 0 ]; then
  echo "postgres-restore: $set_dir holds no database dump" >&2
  exit 1
fi
