"""Tests for perflink.check: every problem of params, catalog and inputs in one run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import make_review_dir

from perflink.check import CheckResult, Problem, check_options, check_review, run_checks
from perflink.cli import main
from perflink.errors import CatalogError, InputError, ParamsError, PerflinkError
from perflink.params import load_params


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _five_problems(folder: Path) -> Path:
    """The tiny review with one problem in each of five files."""
    params = make_review_dir(folder)
    _edit(folder / "catalog" / "policy.yaml", "min_score: 0", "min_score: zero")
    _edit(folder / "entities.csv", "S01,一公司,First Co.,", "S01,,,")
    _edit(folder / "facts.csv", "S01,2026-08,revenue,11", "S01,2026-13,revenue,11")
    _edit(folder / "targets.csv", ",budget", ",budgte")
    _edit(folder / "schemes.csv", ",1.0,financial", ",1.5,financial")
    return params


FIVE = (
    "policy.yaml: policy, field 'bonus_coefficient.0.min_score'",
    "entities.csv row 3, columns 'name_zh' and 'name_en': both are empty",
    "facts.csv row 3, column 'period': '2026-13' is not a month",
    "targets.csv row 2, column 'kind': 'budgte' is not allowed (did you mean 'budget'?)",
    "schemes.csv row 2, column 'weight': 1.5 is out of range",
)


def test_five_problems_in_five_files_are_listed_in_one_run(tmp_path: Path) -> None:
    result = check_review(_five_problems(tmp_path))
    assert not result.ok
    text = result.message()
    for line in FIVE:
        assert line in text
    assert [p.where for p in result.problems] == [
        "catalog", "entities", "facts", "targets", "schemes",
    ]  # fmt: skip
    assert "5 problem(s) found in catalog, entities, facts, targets, schemes" in text
    # what could not be checked is said, not silently passed
    assert "not checked against the catalog, which did not load" in text
    # the flawed entities table still gives its ids to the other tables' checks
    assert "not checked against the entities table" not in text
    assert result.inputs is None and result.catalog is None
    assert len(result.to_frame()) == 5


def test_check_ok_on_a_valid_review(tmp_path: Path) -> None:
    result = check_review(make_review_dir(tmp_path))
    assert result.ok, result.message()
    assert result.message().startswith("OK: ")
    assert result.catalog is not None and len(result.inputs.facts) == 3
    assert "<pre>OK" in result._repr_html_()
    result.raise_if_problems()  # nothing to raise


def test_cross_references_and_written_options_against_the_catalog(tmp_path: Path) -> None:
    params = make_review_dir(
        tmp_path,
        tasks=["kpi", "forecast", "summary"],
        kpi={"tenure": [{"entity_id": "S09", "metric_id": "revenue", "start_year": 2024,
                         "end_year": 2026, "annual_growth": 0.05}]},
        forecast={"metrics": ["revenu"], "profit_metric": ""},
    )  # fmt: skip
    _edit(tmp_path / "facts.csv", "S01,2026-07,revenue", "S01,2026-07,revenu")
    result = check_review(params)
    text = result.message()
    assert "facts.csv row 2, column 'metric_id': 'revenu' is not a metric in the catalog" in text
    assert "kpi.tenure[0].entity_id: 'S09' is not an entity_id" in text
    assert "forecast.metrics[0]: 'revenu' is not a metric of the catalog (did you mean" in text
    assert len(result.problems) == 3
    # defaults come from the catalog's roles, never from another company's metric ids
    assert not any("projection_metric" in w for w in result.warnings)


def test_uncovered_quarter_and_unknown_scope_are_collected(tmp_path: Path) -> None:
    params = make_review_dir(tmp_path, quarter="2027Q1", scope="S99")
    result = check_review(params)
    assert [p.where for p in result.problems] == ["coverage", "scope"]
    assert "not covered by the data" in result.message()
    with pytest.raises(PerflinkError):
        result.raise_if_problems()


def test_bad_params_file_is_the_problem_and_nothing_else_runs(tmp_path: Path) -> None:
    params = make_review_dir(tmp_path, quarter="2026-3")
    result = check_review(params)
    assert [p.where for p in result.problems] == ["params"]
    assert "quarter" in result.problems[0].message
    assert result.skipped
    with pytest.raises(ParamsError):
        result.raise_if_problems()
    with pytest.raises(ParamsError, match="params_path"):
        check_review(42)  # type: ignore[arg-type]


def test_raise_if_problems_keeps_the_class_of_one_problem() -> None:
    with pytest.raises(CatalogError, match="^bad$"):
        CheckResult((Problem("catalog", "bad", CatalogError),)).raise_if_problems()
    two = CheckResult((Problem("facts", "a"), Problem("targets", "b")))
    with pytest.raises(InputError, match="2 problem"):
        two.raise_if_problems()


def test_run_checks_and_check_options_reject_what_is_not_params(tmp_path: Path) -> None:
    params = load_params(make_review_dir(tmp_path))
    assert run_checks(params).ok
    problems, warnings = check_options(params, None, None)
    assert problems == [] and warnings == []
    with pytest.raises(ParamsError, match="ReviewParams"):
        check_options({"kpi": {}}, None, None)


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = make_review_dir(tmp_path / "good")
    assert main(["check", "--params", str(good)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("perflink check: OK") and out.count("\n") == 1
    assert main(["check", "--params", str(_five_problems(tmp_path / "bad"))]) == 2
    err = capsys.readouterr().err
    for line in FIVE:
        assert line in err
    assert "Traceback" not in err


def test_review_runs_the_same_check_before_any_notebook(
    tmp_path: Path, fixture_notebooks: Path
) -> None:
    from perflink.runner import run_review

    params = _five_problems(tmp_path / "review")
    with pytest.raises(PerflinkError) as info:
        run_review(params, out_dir=tmp_path / "reports", notebooks_dir=fixture_notebooks,
                   tasks=["alpha"])  # fmt: skip
    for line in FIVE:
        assert line in str(info.value)
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
    written = yaml.safe_load(params.read_text(encoding="utf-8"))
    assert written["quarter"] == "2026Q3"  # the inputs and params are only read


def test_a_bad_mapping_does_not_hide_unknown_metric_ids_in_the_facts(tmp_path: Path) -> None:
    params = make_review_dir(tmp_path)
    (tmp_path / "catalog" / "mappings.yaml").write_text(
        "mappings:\n  - {id: M1, driver: revenue, target: revenue, sign: 2, lag: 0, "
        "mechanism: m}\n",
        encoding="utf-8",
    )
    _edit(tmp_path / "facts.csv", "S01,2026-07,revenue", "S01,2026-07,revenu")
    result = check_review(params)
    assert [p.where for p in result.problems] == ["catalog", "facts"]
    assert "field 'sign'" in result.message() and "Fix the value." in result.message()
    assert "'revenu' is not a metric in the catalog" in result.message()
    assert "options naming metrics were not checked" in result.message()
