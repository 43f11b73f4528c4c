"""flasky's benchmarks: `python3 bench/run.py` (or `make bench`); figures in docs/benchmarks.md."""
