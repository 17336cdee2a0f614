"""Loading a plugin module from ``plugins/`` by its file, as Airflow's plugin manager does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def load_plugin(name: str):
    """``plugins/<name>.py`` as a fresh module (its settings read now, e.g. the data root)."""
    spec = importlib.util.spec_from_file_location(name, PLUGINS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
