"""Airflow's plugin loader: it registers our UI plugin and nothing else from plugins/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from airflow import plugins_manager
plugins, errors = plugins_manager._get_plugins()
heavy = ("video_analytics", "include", "pandas", "numpy", "pyarrow", "redis", "pymongo")
print(json.dumps({
    "plugins": sorted(p.name for p in plugins),
    "errors": {k: str(v) for k, v in errors.items()},
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in heavy),
    "top_level": sorted(m for m in ("plays", "online_time", "segments", "conventions", "checks")
                        if m in sys.modules),
}))
"""


def _load_plugins(plugins_folder: Path) -> dict:
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_plugin_loading_skips_the_core_and_heavy_libraries():
    got = _load_plugins(ROOT / "plugins")
    assert got["errors"] == {}
    assert {"video_verify_reports", "video_dashboard"} <= set(got["plugins"])
    assert got["top_level"] == [], "core modules were loaded as bare plugin modules"
    assert got["modules"] == [], f"plugin loading imported {got['modules']}"


def test_the_ignore_file_is_what_keeps_the_core_out(tmp_path):
    """Without plugins/.airflowignore the loader would execute the core's modules (the test can fail)."""
    (tmp_path / "video_analytics").symlink_to(ROOT / "plugins" / "video_analytics")
    got = _load_plugins(tmp_path)
    assert got["top_level"] or any(m.split(".")[0] in ("numpy", "pandas") for m in got["modules"])
