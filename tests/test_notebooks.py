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


#: Review attributes a page may read after its inputs went back (none of them is an input).
AFTER_RELEASE = {"catalog", "quarter", "params", "language", "root_id", "scope"}


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if not p.name.startswith("05")], ids=lambda p: p.name
)
def test_a_task_notebook_gives_its_inputs_back_once_its_figures_are_made(path: Path):
    """The four task notebooks run two at a time beside each other: each lets its inputs go
    in the cell that computes its figures (in a run; a no-op in JupyterLab), and its page
    reads the result only (an input read later would load them all again). The summary
    runs alone, last."""
    code = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    [at] = [i for i, s in enumerate(code) if re.search(r"perflink\.\w+\.run\(review", s)]
    assert "review.release_inputs()" in code[at], f"{path.name}: no release_inputs in its run cell"
    later = {m for s in code[at + 1 :] for m in re.findall(r"\breview\.(\w+)", s)}
    assert later <= AFTER_RELEASE, f"{path.name}: the page reads {sorted(later - AFTER_RELEASE)}"
