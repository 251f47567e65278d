"""The package's shape: dependencies run one way (shared basics <- stages <- session, training, report <- CLI), no
stage imports a sibling stage, every command and option is documented in the README, and the linter and the type
checker find nothing."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_agent.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
AGENT = ROOT / "agent"
STAGES = ("capture", "vision", "tracking", "store", "live")
BASICS = ("types", "errors", "labels", "paths", "runtime", "checksum", "clock", "resource", "naming")


def imported(path: Path) -> set[str]:
    """The fer_agent modules ``path`` imports (at any depth of its code)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fer_agent"):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("fer_agent"))
    return names


def parts(module: str) -> list[str]:
    return module.split(".")[1:]


def test_no_stage_imports_a_sibling_stage() -> None:
    crossings = []
    for stage in STAGES:
        for path in sorted((AGENT / stage).rglob("*.py")):
            for module in imported(path):
                first = parts(module)[:1]
                if first and first[0] in STAGES and first[0] != stage:
                    crossings.append(f"{path.relative_to(ROOT)} imports {module}")
    assert crossings == []


def test_dependencies_run_one_way() -> None:
    upward = []
    for path in sorted(AGENT.rglob("*.py")):
        relative = path.relative_to(AGENT)
        top = relative.parts[0].removesuffix(".py")
        for module in imported(path):
            first = (parts(module) or [""])[0]
            if top in BASICS and first and first not in BASICS:
                upward.append(f"{relative} (a shared basic) imports {module}")
            if top not in ("cli", "__main__") and first in ("cli", "training", "reports"):
                upward.append(f"{relative} (the runtime) imports {module}")
            if top in STAGES and first == "session":
                upward.append(f"{relative} (a stage) imports {module}")
    for folder in ("training", "reports"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            upward += [f"{path.relative_to(ROOT)} imports {module}" for module in imported(path)
                       if (parts(module) or [""])[0] in ("cli", "session")]
    assert upward == []


def test_every_command_and_option_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = []
    for name, command in main.commands.items():
        if f"fer-agent {name}" not in readme:
            missing.append(f"fer-agent {name}")
        for parameter in command.params:
            options = [option for option in getattr(parameter, "opts", []) if option.startswith("-")]
            if options and not any(re.search(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])", readme)
                                   for option in options):
                missing.append(f"fer-agent {name} {'/'.join(options)}")
    assert missing == []


def test_ruff_finds_nothing() -> None:
    """The rules in pyproject.toml (pycodestyle, pyflakes, import order, pyupgrade) over every folder of code."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "agent", "training", "reports", "tests",
                             "benchmarks"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def staged_package(target: Path) -> Path:
    """The fer_agent package as the wheel lays it out (pyproject's package-dir: agent/ is fer_agent, training/ is
    fer_agent.training, ...), copied under ``target``, for a type checker that cannot follow the editable install's
    import hook. Copies keep their times, so the checker's cache stays valid between runs."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        folders = tomllib.load(file)["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(target / "fer_agent", ignore_errors=True)
    for package, folder in sorted(folders.items(), key=lambda item: item[0].count(".")):
        shutil.copytree(ROOT / folder, target.joinpath(*package.split(".")), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.mark.e2e
def test_mypy_finds_nothing() -> None:
    """mypy, with the settings in pyproject.toml, over the whole package (about 20 s without its cache)."""
    staged = staged_package(ROOT / "build" / "typecheck")
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                             "--cache-dir", str(staged / ".mypy_cache"), "-p", "fer_agent"],
                            cwd=staged, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
