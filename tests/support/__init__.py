"""Test helpers: oracles, a mongomock shim and play builders (no fixtures: those are in conftest.py)."""
