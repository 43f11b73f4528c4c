#!/bin/bash
# The official postgres image's start, for what docker-compose.yml uses of it:
#   - POSTGRES_PASSWORD is required (unless POSTGRES_HOST_AUTH_METHOD=trust); POSTGRES_USER
#     (default postgres) is the superuser, POSTGRES_DB (default: the user's name) is created;
#   - the cluster is created in $PGDATA (the volume) on the first start only;
#   - the server listens on every address, port 5432, with password authentication over TCP;
#   - the server runs as the postgres user, and receives the container's stop signal.
# One difference, on purpose: while the database is being created, the temporary server's
# socket is in a private folder, so pg_isready (the healthcheck) answers only once the real
# server is up and others can connect.
set -Eeuo pipefail

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 700 "$PGDATA"
    chown -R postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    install -d -o postgres -g postgres -m 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

create_cluster() {
    local user="${POSTGRES_USER:-postgres}"
    local database="${POSTGRES_DB:-$user}"
    local method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
        echo "error: POSTGRES_PASSWORD is not set: the database would accept no login" >&2
        exit 1
    fi

    local password_file
    password_file="$(mktemp)"
    printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$password_file"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options, as upstream's
    initdb --pgdata="$PGDATA" --username="$user" --pwfile="$password_file" \
        --encoding=UTF8 --auth-local=trust --auth-host="$method" ${POSTGRES_INITDB_ARGS:-}
    rm -f "$password_file"
    printf '\nhost all all all %s\n' "$method" >> "$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"

    if [ "$database" != postgres ]; then
        local socket
        socket="$(mktemp -d)"
        pg_ctl --pgdata="$PGDATA" --wait --silent \
            -o "-c listen_addresses='' -c unix_socket_directories=$socket" start
        psql --no-psqlrc -v ON_ERROR_STOP=1 --host="$socket" --username="$user" \
            --dbname=postgres --set database="$database" <<< 'CREATE DATABASE :"database";'
        pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
        rmdir "$socket"
    fi
    echo "created the cluster in $PGDATA: superuser $user, database $database"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    create_cluster
fi
echo "stand-in for postgres:16: $(postgres --version), Debian bookworm's (it ships no 16)"
exec "$@"
