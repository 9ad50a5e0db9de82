#!/bin/sh
# Creates the cluster on first start (an empty data volume), then runs PostgreSQL in the
# foreground, so that `docker stop` reaches it as SIGTERM (a clean, fast shutdown).
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
user=${POSTGRES_USER:-fleet}
database=${POSTGRES_DB:-fleet}
# The socket goes to /tmp: the root file system is read-only in the compose stack.
socket=/tmp

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres: POSTGRES_PASSWORD is required to create the cluster" >&2
        exit 2
    fi
    password_file=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" >"$password_file"
    "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$password_file" -E UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$password_file"
    # Other containers connect over the compose network, with the password.
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    "$bin/pg_ctl" -D "$PGDATA" -w -s -o "-c listen_addresses='' -k $socket" start
    "$bin/createdb" -h "$socket" -U "$user" "$database"
    "$bin/pg_ctl" -D "$PGDATA" -w -s -m fast stop
    echo "postgres: created database $database (user $user)"
fi

exec "$bin/postgres" -D "$PGDATA" -k "$socket" -c listen_addresses='*' \
    -c max_connections="${POSTGRES_MAX_CONNECTIONS:-200}"
