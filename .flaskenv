# Defaults for the `flask` command run in this clone, read by Flask through python-dotenv
# (installed with '.[dev]', as `python3 dev.py` does): `flask outbox stats` needs no --app, and
# uses the development configuration, hence the database and instance folder of
# `python3 dev.py` (instance/flasky.sqlite unless DATABASE_URL says otherwise).
# The environment wins over this file. gunicorn and celery never read it, nor does an image or
# an install without python-dotenv: production still defaults to production, which refuses to
# start without SECRET_KEY.
FLASK_APP=web
# The book's FLASK_CONFIG, when set, counts as set in the environment (web/config.py reads it).
FLASKY_CONFIG=${FLASK_CONFIG:-development}
