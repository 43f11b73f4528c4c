"""The harness flasky runs in: the dev runner's, the tests' and the benchmarks' processes,
throwaway services and SMTP server (dev.py imports the standard-library-only modules)."""
