"""One home for settings: include/settings.py reads them all, docs/SETTINGS.md lists them all, and the
test-only hooks live in tests/support."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "include" / "settings.py"
STACK_HOOKS = ROOT / "tests" / "support" / "stack_hooks"
# wired at merge: include/plays/lease.py (owned by another change) still reads VIDEO_LEASE_TTL_SECONDS itself
PENDING: set[str] = set()


def _table_names() -> set[str]:
    text = (ROOT / "docs" / "SETTINGS.md").read_text()
    return {m for row in text.splitlines() if row.startswith("|") for m in re.findall(r"`([^`]+)`", row.split("|")[1])}


def _settings_read() -> set[str]:
    """Every name include/settings.py reads: environment variables, Variables and connection ids."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"(VIDEO|AIRFLOW_VAR)_[A-Z_]+", node.value):
                names.add(node.value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "variable" and node.args:
            names.add(node.args[0].value)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "").endswith("_CONN_ID"):
            names.add(node.value.value)
    return names


def test_every_setting_read_in_settings_is_in_the_table():
    read = _settings_read()
    assert {"VIDEO_DEADLINE_HOURS", "VIDEO_READ_TIMEOUT_SECONDS", "data_root", "video_redis"} <= read
    missing = sorted(read - _table_names())
    assert not missing, f"docs/SETTINGS.md has no row for {missing}"


def test_no_other_module_reads_the_environment_for_a_setting():
    readers = []
    for path in [*ROOT.glob("dags/*.py"), *ROOT.glob("include/**/*.py")]:
        rel = str(path.relative_to(ROOT))
        if rel == "include/settings.py" or rel in PENDING:
            continue
        if re.search(r"os\.environ\.get\(|os\.environ\[|os\.getenv\(", path.read_text()):
            readers.append(rel)
    assert readers == []


def test_production_modules_hold_no_test_hooks():
    hooked = [str(p.relative_to(ROOT)) for p in [*ROOT.glob("dags/*.py"), *ROOT.glob("include/**/*.py")]
              if "VIDEO_TEST_" in p.read_text() or "_test_delay" in p.read_text()]
    assert hooked == []


def test_the_stack_tests_shard_delay_is_installed_by_airflow_from_tests_support(tmp_path):
    """What the stack test relies on: with tests/support/stack_hooks on PYTHONPATH and the delay file
    named, ``import airflow`` wraps include.tasks.compute_shard; without the folder, nothing does."""
    delay = tmp_path / "delay"
    delay.write_text("0")
    code = ("import airflow\nfrom include import tasks\n"
            "print(getattr(tasks.compute_shard, 'video_test_shard_delay', None))")
    base = {**os.environ, "VIDEO_TEST_SHARD_DELAY_FILE": str(delay)}
    hooked = {**base, "PYTHONPATH": os.pathsep.join([str(STACK_HOOKS), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", code], env=hooked, capture_output=True, text=True, timeout=120)
    assert run.stdout.strip().splitlines()[-1] == str(delay), run.stderr[-2000:]
    run = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True, timeout=120)
    assert run.stdout.strip().splitlines()[-1] == "None", run.stderr[-2000:]
