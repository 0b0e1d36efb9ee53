"""Metamorphic test (issue 14): renaming every metric id, entity id and business line of the
sample, with the same data, gives the same figures in every result table.

The sample is generated once (its default 42 units), then copied with every id renamed
(:mod:`rename_utils`: catalog formulas, decompositions, ``wmean:<m>`` aggregations, mappings,
rules, raw extracts; the six input tables; the params' ``kpi:`` scenario). Every task then
runs in-process on both copies, the way notebooks 01-05 call it, and each result table of the
renamed run, with the ids mapped back, must equal the original's: same columns, same rows
(sorted), numbers within 1e-9 relative, text equal. Both runs take about 40 s together.

The new names are opaque (``qm07``, ``QE012``, ``qbl2``) and keep the old names' sort order,
so equal figures cannot swap places because of a new order; a difference means the package
recognised a name, derived something from an id's shape (``S01`` from ``S01D01``) or broke a
tie with a hash of ids. ``finding_id`` (a hash of the ids by design) is compared as a
one-to-one correspondence, not by value.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import rename_utils as ru

from perflink.sample import generate

#: Every table notebooks 01-05 save (``perflink review`` writes the same names).
TABLES = (
    "validation_findings",
    "driver_strength",
    "data_quality",
    "attribution",
    "scorecard",
    "bonus",
    "tenure",
    "manager_assessment",
    "adjustment_audit",
    "kpi_findings",
    "forecast",
    "forecast_deviation",
    "forecast_backtest",
    "forecast_backtest_calibration",
    "anomalies",
    "anomaly_counts",
    "summary_findings",
    "summary_actions",
    "summary_forecast_review",
)

RTOL = 1e-9


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("metamorphic")
    params = generate(root / "original", seed=0)
    renaming = ru.plan(params.parent)
    renamed_params = ru.rename_folder(params.parent, root / "renamed", renaming)
    original, original_errors = ru.run_tasks(params, root / "tables_original")
    renamed, renamed_errors = ru.run_tasks(renamed_params, root / "tables_renamed")
    return SimpleNamespace(
        root=root,
        renaming=renaming,
        renamed_params=renamed_params,
        original=original,
        renamed=renamed,
        original_errors=original_errors,
        renamed_errors=renamed_errors,
    )


@pytest.mark.slow
def test_the_renamed_copy_names_nothing_of_the_sample(runs):
    # The test is only as good as its renaming: no old id may survive as an identifier in
    # the renamed catalog and params (prose fields aside), nor anywhere in the input tables.
    ren = runs.renaming
    folder = runs.renamed_params.parent
    # prose and vocabulary fields ('role: headcount' names a role) may use the words
    prose = re.compile(rf"\s*(- )?({'|'.join(sorted(ru.VOCABULARY_KEYS | {'reason'}))}):")
    left = []
    for path in sorted([*folder.glob("*.yaml"), *(folder / "catalog").glob("*.yaml")]):
        if path.name == "truth.yaml":  # the generator's answer key, read by no task
            continue
        lines = path.read_text("utf-8").splitlines()
        for name in sorted({*ren.metrics, *ren.entities, *ren.lines}):
            token = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")
            left += [
                f"{path.relative_to(folder)}:{i}: {name!r} in {row.strip()!r}"
                for i, row in enumerate(lines, start=1)
                if token.search(row.split("#")[0]) and not prose.match(row)
            ]
    entity = ren.entity_pattern()
    for path in sorted(folder.glob("*.csv")):
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        for col in df.columns:
            old = ren.metrics if col == "metric_id" else ren.lines if col == "business_line" else {}
            bad = sorted(set(df[col]) & set(old)) + sorted(
                {m[1] for v in df[col] for m in entity.finditer(v)}
            )
            if bad:
                left.append(f"{path.name}.{col}: {bad[:5]}")
    assert not left, "old ids survive in the renamed copy:\n" + "\n".join(left)


@pytest.mark.slow
def test_every_task_runs_on_both_copies(runs):
    failed = [
        f"{task} on the {which} sample: {error}"
        for which, errors in (("original", runs.original_errors), ("renamed", runs.renamed_errors))
        for task, error in errors.items()
    ]
    assert not failed, "tasks failed:\n" + "\n".join(failed)


@pytest.mark.slow
@pytest.mark.parametrize("table", TABLES)
def test_same_figures_after_renaming(runs, table):
    missing = [
        w for w, got in (("original", runs.original), ("renamed", runs.renamed)) if table not in got
    ]
    failed = sorted({*runs.original_errors, *runs.renamed_errors})
    assert not missing, (
        f"table {table!r} was not written by the {' and '.join(missing)} run; tasks that "
        f"failed: {', '.join(failed) or 'none'} (see test_every_task_runs_on_both_copies)"
    )
    difference = ru.table_difference(
        table, runs.original[table], runs.renamed[table], runs.renaming, rtol=RTOL
    )
    assert difference is None, difference


def test_the_tables_are_those_the_notebooks_save():
    # run_tasks repeats the notebooks' calls: a table a notebook starts saving must be
    # compared too (and one it stops saving must go from TABLES).
    import json

    saved = set()
    for path in sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text("utf-8"))["cells"]:
            source = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
            saved |= set(re.findall(r'save_table\((?:[^()]|\([^()]*\))*?,\s*"(\w+)"', source))
    assert saved == set(TABLES), (sorted(saved - set(TABLES)), sorted(set(TABLES) - saved))


@pytest.mark.slow
def test_no_other_tables_appear(runs):
    # A table saved by a notebook but not listed here would escape the comparison.
    for got in (runs.original, runs.renamed):
        assert set(got) <= set(TABLES), sorted(set(got) - set(TABLES))


# ---------------------------------------------------------------- the comparison itself


def test_comparison_finds_a_changed_figure_and_maps_ids_back():
    ren = ru.Renaming(
        metrics={"net_profit": "qm01", "revenue": "qm02"},
        entities={"S01": "QE001", "S01D01": "QE002"},
        lines={"retail": "qbl1"},
    )
    original = pd.DataFrame(
        {
            "entity_id": ["S01", "S01D01"],
            "metric_id": ["revenue", "net_profit"],
            "message": ["S01 revenue", "S01D01: net_profit low"],
            "value": [1.0, 2.0],
        }
    )
    renamed = pd.DataFrame(
        {
            "entity_id": ["QE002", "QE001"],  # other row order: sorted before comparing
            "metric_id": ["qm01", "qm02"],
            "message": ["QE002: qm01 low", "QE001 qm02"],
            "value": [2.0, 1.0 + 1e-12],
        }
    )
    assert ru.table_difference("t", original, renamed, ren, rtol=RTOL) is None
    renamed.loc[0, "value"] = 2.001
    difference = ru.table_difference("t", original, renamed, ren, rtol=RTOL)
    assert difference is not None
    assert "t.value: 1 of 2 rows differ" in difference
    assert "original 2.0 vs renamed 2.001" in difference
    assert "entity_id='S01D01'" in difference


def test_comparison_reports_a_missing_row_and_regrouped_hashes():
    ren = ru.Renaming(metrics={}, entities={"S01": "QE001", "S02": "QE002"}, lines={})
    original = pd.DataFrame({"finding_id": ["F-a", "F-b"], "entity_id": ["S01", "S02"]})
    renamed = pd.DataFrame({"finding_id": ["F-x", "F-x"], "entity_id": ["QE001", "QE002"]})
    difference = ru.table_difference("s", original, renamed, ren, rtol=RTOL)
    assert "s.finding_id: the renamed run groups rows differently" in difference
    shorter = renamed.iloc[:1]
    difference = ru.table_difference("s", original, shorter, ren, rtol=RTOL)
    assert "2 rows in the original, 1 in the renamed run" in difference
    assert "entity_id='S02'" in difference


def test_renaming_rewrites_formulas_but_not_vocabulary():
    doc = {
        "metrics": [
            {
                "id": "net_profit",
                "role": "headcount",
                "formula": "(revenue - cogs) - max(revenue - cogs, 0) * 0.25",
                "aggregation": "wmean:headcount",
                "name_en": "Net profit from revenue",
            }
        ]
    }
    metrics = {"net_profit": "qm03", "revenue": "qm04", "cogs": "qm01", "headcount": "qm02"}
    out = ru._rename_catalog_node(doc, metrics)["metrics"][0]
    assert out["id"] == "qm03"
    assert out["formula"] == "(qm04 - qm01) - max(qm04 - qm01, 0) * 0.25"
    assert out["aggregation"] == "wmean:qm02"
    assert out["role"] == "headcount"  # a role, not the metric
    assert out["name_en"] == "Net profit from revenue"


def test_plan_keeps_the_sort_order(tmp_path: Path):
    params = generate(tmp_path / "s", seed=0, entities=28)
    ren = ru.plan(params.parent)
    for mapping in (ren.metrics, ren.entities, ren.lines):
        old = sorted(mapping)
        assert [mapping[o] for o in old] == sorted(mapping.values())
        assert len(set(mapping.values())) == len(mapping)
