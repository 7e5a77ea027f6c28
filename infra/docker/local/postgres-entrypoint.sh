#!/bin/sh
# What the official postgres image's entrypoint does for this stack, with Debian's PostgreSQL 15: on an empty data
# folder, initdb with POSTGRES_USER/POSTGRES_PASSWORD (scram), create POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql;
# then run the server as the postgres user, listening on the container's network.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
data=/var/lib/postgresql/data
run() { setpriv --reuid postgres --regid postgres --init-groups "$@"; }
chown postgres:postgres "$data" /var/run/postgresql
if [ ! -s "$data/PG_VERSION" ]; then
    pwfile=$(mktemp) && printf '%s\n' "${POSTGRES_PASSWORD:?}" >"$pwfile" && chown postgres "$pwfile"
    run "$bin/initdb" -D "$data" -U "${POSTGRES_USER:?}" --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=trust >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$data/pg_hba.conf"
    run "$bin/pg_ctl" -D "$data" -o "-c listen_addresses=''" -w start >/dev/null
    run "$bin/psql" -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
        -c "CREATE DATABASE \"${POSTGRES_DB:-$POSTGRES_USER}\""
    for f in /docker-entrypoint-initdb.d/*.sql; do
        if [ -e "$f" ]; then
            run "$bin/psql" -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "${POSTGRES_DB:-$POSTGRES_USER}" -f "$f"
        fi
    done
    run "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
fi
exec setpriv --reuid postgres --regid postgres --init-groups "$bin/postgres" -D "$data" -c listen_addresses='*'
