"""The package declares what it imports: every third-party module imported by dags/, include/ and
plugins/ comes from a distribution pinned in requirements.txt (pyproject.toml's dependencies), and
what only the benchmarks use stays out of it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# the packages, and the plugins folder's own modules (Airflow puts that folder on sys.path)
FIRST_PARTY = {"include", "video_analytics", "dags", "tests", "bench", *(p.stem for p in (ROOT / "plugins").glob("*.py"))}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, _, version = line.partition("==")
        assert version, f"{path.name}: {line!r} is not an exact pin"
        pins[re.sub(r"\[.*\]", "", name).lower().replace("_", "-")] = version
    return pins


def _imported_modules() -> dict[str, str]:
    found = {}
    for folder in ("dags", "include", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared():
    declared = set(_pins(ROOT / "requirements.txt"))
    dists = packages_distributions()
    missing = []
    for module, where in sorted(_imported_modules().items()):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        assert names, f"{module} (imported by {where}) is not installed"
        if not names & declared:
            missing.append(f"{module} ({where}; from {sorted(names)})")
    assert not missing, "imported but not declared in requirements.txt: " + ", ".join(missing)


def test_pyproject_reads_the_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert set(project["project"]["dynamic"]) == {"dependencies", "optional-dependencies"}
    assert dynamic["dependencies"]["file"] == ["requirements.txt"]
    assert dynamic["optional-dependencies"]["bench"]["file"] == ["requirements-bench.txt"]


def test_bench_only_packages_stay_out_of_the_runtime_and_test_sets():
    bench = set(_pins(ROOT / "requirements-bench.txt"))
    assert {"duckdb", "polars"} <= bench
    runtime_and_dev = set(_pins(ROOT / "requirements.txt")) | set(_pins(ROOT / "requirements-dev.txt"))
    assert not bench & runtime_and_dev


def test_installed_versions_match_the_pins():
    from importlib.metadata import PackageNotFoundError, version

    wrong = []
    for name, pinned in {**_pins(ROOT / "requirements.txt"), **_pins(ROOT / "requirements-dev.txt")}.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            wrong.append(f"{name}: not installed")
            continue
        if have != pinned:
            wrong.append(f"{name}: {have} installed, {pinned} pinned")
    assert not wrong, "; ".join(wrong)


def test_every_package_is_shipped():
    """A non-editable install (the Dockerfile's) ships exactly the listed packages: none may be missed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(project["packages"])
    found = set()
    for name, folder in project["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join((name, *rel.parts)))
    assert found == listed
