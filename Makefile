.PHONY: dev test lint bench faults lock compose-check

# Run everything locally (venv, Redis, migrations, SMTP catcher, web, worker, beat).
dev:
	python3 dev.py

# Run the test suite in .venv (created/updated first); pass args with ARGS="-k foo".
test:
	python3 dev.py test $(ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

# Benchmarks against the book's baselines (docs/benchmarks.md); pass options with ARGS="--quick".
bench:
	python3 dev.py bench $(ARGS)

# The fault suite on the real processes, then its figures into docs/reliability.md.
faults:
	rm -f test-output/faults/*.json
	python3 dev.py test -m faults $(ARGS)
	.venv/bin/python -m tests.integration.faults.report

# The pinned versions that CI, dev.py and the Dockerfile install, compiled from pyproject.toml:
# requirements.lock (the app) and requirements-dev.lock (the app, the dev and bench extras, at
# the same versions). Pins that still fit pyproject.toml are kept: ARGS=--upgrade for the newest
# of everything, ARGS="-P celery" for one package.
LOCK = CUSTOM_COMPILE_COMMAND="make lock" .venv/bin/pip-compile --quiet --strip-extras \
	--no-allow-unsafe --no-emit-index-url --no-emit-find-links $(ARGS)
lock:
	$(LOCK) --output-file requirements.lock pyproject.toml
	$(LOCK) --extra dev --extra bench --constraint requirements.lock \
		--output-file requirements-dev.lock pyproject.toml

# docker compose up for real, with local stand-ins for base images Docker Hub cannot give:
# builds, starts and checks the stack, then removes it (docs/compose-check.md). ARGS="--keep".
compose-check:
	.venv/bin/python -m devtools.compose_check $(ARGS)
