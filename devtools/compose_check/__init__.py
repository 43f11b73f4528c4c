"""`docker compose up` for real, on a machine where Docker Hub may be unreachable.

`python -m devtools.compose_check` (or `make compose-check`): base images the compose file and
the Dockerfile name are used when present or pullable, else built as local stand-ins from a
debootstrap'd Debian (standins.py, images/); then the stack is built and started with the
project's own docker-compose.yml, every healthcheck awaited, the name form posted and its email
found in Mailpit's API, Flower's login and a Redis restart checked, and everything torn down.
docs/compose-check.md says what it verifies and how.
"""
