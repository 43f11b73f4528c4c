#!/bin/sh
# What docker-compose.yml relies on of the official redis image's start: `redis-server ARGS`
# runs as the redis user in /data (the volume, made its own), and accepts connections from the
# other containers without a password (the official image builds Redis with protected mode off;
# Debian's is on, so it is turned off here unless the command says otherwise).
set -eu

case "${1:-}" in
    -*) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = redis-server ]; then
    case " $* " in
        *" --protected-mode "*) ;;
        *) set -- "$@" --protected-mode no ;;
    esac
    if [ "$(id -u)" = 0 ]; then
        find . \! -user redis -exec chown redis:redis '{}' +
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
