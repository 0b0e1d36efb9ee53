"""The house's layout holds: no import circle, tasks apart, contracts kept (see pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("mapping", "kpi", "scoring", "forecast", "anomaly", "summary")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("perflink", exclude_type_checking_imports=True)


def test_no_import_circle(graph: grimp.ImportGraph) -> None:
    circles = sorted(
        (a, b)
        for a in graph.modules
        for b in graph.find_modules_directly_imported_by(a)
        if graph.chain_exists(importer=b, imported=a)
    )
    assert not circles, f"import circles (module pairs that reach each other): {circles}"


@pytest.mark.parametrize("task", TASKS)
def test_task_modules_do_not_import_their_own_facade(graph: grimp.ImportGraph, task: str) -> None:
    # A private module importing its package's __init__ is how the old circles started.
    package = f"perflink.{task}"
    bad = sorted(
        m
        for m in graph.find_children(package)
        if package in graph.find_modules_directly_imported_by(m)
    )
    assert not bad, f"{bad} import {package} itself; import the private module instead"


def test_task_packages_exist_with_public_api() -> None:
    import importlib

    for task in TASKS:
        module = importlib.import_module(f"perflink.{task}")
        assert Path(module.__file__).name == "__init__.py", task
        assert module.__all__, f"perflink.{task} declares no public API"


def test_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
