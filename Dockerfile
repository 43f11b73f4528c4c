# One image for web, worker, beat and Flower; docker-compose.yml gives each its command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# The dependencies alone, read from pyproject.toml: this layer is rebuilt when they change,
# not on every change to the code.
COPY pyproject.toml ./
RUN python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the code, installed without dependencies. Editable, because the app reads templates/
# and migrations/ next to its package: the code must stay here, in /app, not in site-packages.
COPY . .
RUN pip install --no-deps --editable .

# A user without privileges, and the one folder it may write (the instance folder). The code
# stays owned by root, so a compromised process cannot change it.
RUN useradd --system --user-group --uid 10001 --home-dir /app --shell /usr/sbin/nologin flasky \
    && mkdir -p /app/instance \
    && chown flasky:flasky /app/instance
ENV FLASKY_INSTANCE_PATH=/app/instance
USER flasky

EXPOSE 8000
CMD ["./bin/web"]
