"""House rules for report notebooks: narrative and calls only, ready for papermill."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REQUIRED_PARAMETERS = {"params_path", "language", "scope", "tables_dir", "quarter"}
FORBIDDEN = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.Lambda,
    ast.ListComp,
    ast.DictComp,
    ast.SetComp,
    ast.GeneratorExp,
)


def test_there_are_task_notebooks():
    assert NOTEBOOKS, "notebooks/NN_task.ipynb files are the review tasks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_house_rules(path: Path):
    assert re.fullmatch(r"\d\d_[a-z_]+\.ipynb", path.name)
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec["name"] == "perflink"
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("#")
    params = cells[1]
    assert "parameters" in params.metadata.get("tags", []), "cell 2 must be the parameters cell"
    declared = {
        node.target.id
        for node in ast.parse(params.source).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    assert declared >= REQUIRED_PARAMETERS, "parameters must be typed: name: type = default"
    for line in params.source.splitlines():
        assert "#" in line, f"parameter line without a comment: {line!r}"
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        assert not cell.get("outputs"), f"cell {i}: commit notebooks with outputs stripped"
        assert cell.get("execution_count") is None, f"cell {i}: stale execution count"
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, FORBIDDEN), (
                f"{path.name} cell {i}: {type(node).__name__} in a notebook; "
                "put logic in perflink/ where it can be tested"
            )


HAND_WIRED = {"facts", "targets", "entities", "schemes", "adjustments", "bonus", "executor"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_calls_its_task_entry_point(path: Path):
    """Tasks run through ``perflink.<task>.run(review)``, not with input tables wired by hand."""
    nb = nbformat.read(path, as_version=4)
    runs, wired = set(), []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                f = node.func
                if f.attr == "run" and isinstance(f.value, ast.Attribute):
                    runs.add(ast.unparse(f.value))
            if (
                isinstance(node, ast.Attribute)
                and node.attr in HAND_WIRED
                and isinstance(node.value, ast.Name)
                and node.value.id == "review"
            ):
                wired.append(f"review.{node.attr}")
    assert any(r.startswith("perflink.") for r in runs), f"{path.name}: no perflink.<task>.run"
    assert not wired, f"{path.name}: pass the review to perflink.<task>.run, not {wired}"
