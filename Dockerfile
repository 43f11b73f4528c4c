# One image for web, worker, beat and Flower; docker-compose.yml gives each its command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# The dependencies alone, at the versions CI tested (requirements.lock, compiled from
# pyproject.toml by `make lock`): this layer is rebuilt when they change, not on every change
# to the code.
COPY requirements.lock ./
RUN pip install -r requirements.lock

# Then the code, built into a wheel and installed without dependencies like any package: the
# templates, static files, migrations and Celery settings are inside it. /app keeps bin/web
# (what compose runs) and the instance folder, no source that could shadow the package.
COPY . /tmp/flasky
RUN pip install --no-deps /tmp/flasky && rm -rf /tmp/flasky
COPY bin/ bin/

# A user without privileges, and the one folder it may write (the instance folder). The code
# stays owned by root, so a compromised process cannot change it.
RUN useradd --system --user-group --uid 10001 --home-dir /app --shell /usr/sbin/nologin flasky \
    && mkdir -p /app/instance \
    && chown flasky:flasky /app/instance
ENV FLASKY_INSTANCE_PATH=/app/instance
USER flasky

EXPOSE 8000
CMD ["./bin/web"]
