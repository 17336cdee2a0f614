"""Unit tests: the pure core and the adapters on local files; no services."""
