"""Readers of public data sets used by tests and benchmarks (no downloads: files are passed in)."""
