.PHONY: dev test lint bench faults

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
