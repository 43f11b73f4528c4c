.PHONY: dev test lint

# Run everything locally (venv, Redis, migrations, SMTP catcher, web, worker, beat).
dev:
	python3 dev.py

# Run the test suite in .venv (created/updated first); pass args with ARGS="-k foo".
test:
	python3 dev.py test $(ARGS)

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
