"""The outbox: emails recorded in the caller's transaction and published after its commit.

- `api`: `send_email()`, the one way to queue an email, and the publish after commit;
- `checks` and `addresses`: every argument checked before anything is written;
- `render`: both bodies from `templates/mail/<name>.txt|.html`;
- `priority`: the three priorities and their Celery queues;
- `queries`: what the admin pages and the `flask outbox` commands read and change;
- `cli`: the `flask outbox` commands; `preview`: the development-only template preview.
"""
