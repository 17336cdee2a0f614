"""README's CLI section names every subcommand and every option that ``video-analytics --help`` lists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from include.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _cli_section() -> str:
    text = README.read_text()
    start = text.index("### The CLI (no Airflow needed)")
    return text[start:text.index("\n## ", start)]


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_and_option_of_the_help_is_in_the_readme():
    section = _cli_section()
    commands = _commands()
    top_help = build_parser().format_help()
    assert set(commands) == set(re.findall(r"^    ([a-z-]+)", top_help, re.M))
    common = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", top_help)) - {"--help"}  # --debug: in the prose
    missing = [o for o in sorted(common) if o not in section]
    for name, parser in commands.items():
        lines = [ln for ln in section.splitlines() if ln.startswith(f"video-analytics {name} ")]
        if not lines:
            missing.append(name)
            continue
        options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", parser.format_help())) - {"--help"} - common
        # a command's options are on its lines or the comment lines under them
        block = "\n".join(section[section.index(ln):].split("\nvideo-analytics ")[0] for ln in lines)
        missing += [f"{name} {o}" for o in sorted(options) if o not in block]
    assert missing == []
