"""Tests for perflink.params (load_params, parse_quarter) and perflink.review (open_review)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_review_dir

from perflink.errors import ParamsError
from perflink.options import ExecutorOptions, KpiOptions
from perflink.params import ALL_TASKS, load_params, parse_quarter
from perflink.review import open_review

# --- load_params ------------------------------------------------------------------------


def test_load_params_works(review_dir: Path) -> None:
    params = load_params(review_dir)
    assert params.quarter == "2026Q3"
    assert params.period == pd.Period("2026Q3", "Q")
    assert params.language == "en"
    assert params.jobs == 2
    assert params.input_paths["facts"] == review_dir.parent / "facts.csv"
    assert "adjustments" not in params.input_paths
    assert params.catalog_dir == review_dir.parent / "catalog"
    assert params.source == review_dir


def test_defaults(tmp_path: Path) -> None:
    path = make_review_dir(tmp_path, tasks=None, jobs=None)
    params = load_params(path)
    assert params.tasks == list(ALL_TASKS)
    assert params.jobs is None
    assert params.thresholds == {}
    assert isinstance(params.kpi, KpiOptions)


def test_dates_stay_strings(tmp_path: Path) -> None:
    path = make_review_dir(tmp_path)
    path.write_text(path.read_text() + "history_start: 2023-01\n")
    assert load_params(path).history_start == "2023-01"
    # YAML 1.1 would turn an unquoted date into a datetime.date; perflink keeps the text
    path.write_text(path.read_text().replace("quarter: 2026Q3", "quarter: 2026-09-01"))
    with pytest.raises(ParamsError, match="quarter: got '2026-09-01'"):
        load_params(path)


def test_overrides_dotted(review_dir: Path) -> None:
    params = load_params(review_dir, overrides={"language": "zh", "thresholds.floor": 0.5})
    assert params.language == "zh"
    assert params.thresholds == {"floor": 0.5}


def test_env_resolved_in_memory_only(tmp_path: Path, secret_token: str) -> None:
    path = make_review_dir(tmp_path, secret_dir=secret_token)
    params = load_params(path)
    assert params.input_paths["facts"] == tmp_path / secret_token / "facts.csv"
    assert params.inputs.facts == f"{secret_token}/facts.csv"
    assert params.redacted()["inputs"]["facts"] == "${PERFLINK_TEST_SECRET}/facts.csv"
    assert secret_token not in repr(params.redacted())
    assert params.secret_values == {"PERFLINK_TEST_SECRET": secret_token}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"quartr": "2026Q3"}, ["unknown key 'quartr'", "Did you mean 'quarter'"]),
        ({"inputs": {"entities": "entities.csv", "facts": "facts.csv", "targets": "targets.csv",
                     "schemes": "schemes.csv", "factz": "x.csv"}},
         ["unknown key 'inputs.factz'", "'inputs.facts'"]),
        ({"jobs": "2"}, ["jobs: got '2'", "integer"]),
        ({"quarter": "2026Q5"}, ["quarter: got '2026Q5'", "'2026Q3'"]),
        ({"quarter": 2026}, ["quarter: got 2026", "string"]),
        ({"language": "fr"}, ["language: got 'fr'", "'zh' or 'en'"]),
        ({"history_start": "2023/01"}, ["history_start: got '2023/01'", "YYYY-MM"]),
        ({"catalog": None}, ["key 'catalog' is required"]),
        ({"kpi": {"nonsense": 1}}, ["unknown key 'kpi.nonsense'"]),
        ({"scope": "S02/../x"}, ["scope: got 'S02/../x'", "without spaces, slashes"]),
        ({"scope": ".hidden"}, ["scope: got '.hidden'", "leading dot"]),
        ({"scope": 2}, ["scope: got 2", "string"]),
        ({"executor": {"kind": "dask"}}, ["executor: got {'kind': 'dask'}",
                                          "executor.address is required with kind: dask"]),
        ({"executor": {"kind": "local", "workers": 2}},
         ["unknown key 'executor.workers'", "Allowed keys here: kind, n_jobs, address, timeout"]),
        ({"executor": {"kind": "ray"}}, ["executor.kind: got 'ray'", "'local' or 'dask'"]),
        ({"executor": {"n_jobs": 0}}, ["executor.n_jobs: got 0", "greater than or equal to 1"]),
        ({"executor": {"kind": "dask", "address": "10.0.0.5 8786"}},
         ["executor.address must be a Dask scheduler address", "tcp://10.0.0.5:8786"]),
    ],
)  # fmt: skip
def test_bad_params_one_clear_message(tmp_path: Path, changes: dict, expected: list[str]) -> None:
    path = make_review_dir(tmp_path, **changes)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message
    assert "Traceback" not in message


def test_executor_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_params(make_review_dir(tmp_path / "a")).executor == ExecutorOptions()
    assert ExecutorOptions().kind == "local"
    monkeypatch.setenv("PERFLINK_TEST_DASK", "tcp://10.0.0.5:8786")
    written = {"kind": "dask", "address": "${PERFLINK_TEST_DASK}"}
    params = load_params(make_review_dir(tmp_path / "b", executor=written))
    assert params.executor.kind == "dask"
    assert params.executor.address == "tcp://10.0.0.5:8786"  # resolved in memory
    assert params.redacted()["executor"] == written  # the written form goes out


def test_missing_input_file_named_with_resolved_path(tmp_path: Path) -> None:
    path = make_review_dir(tmp_path)
    (tmp_path / "facts.csv").unlink()
    with pytest.raises(
        ParamsError, match=r"inputs\.facts: 'facts\.csv' -> .*facts\.csv does not exist"
    ):
        load_params(path)


def test_missing_input_file_behind_env_var_hides_value(tmp_path: Path, secret_token: str) -> None:
    path = make_review_dir(tmp_path, secret_dir=secret_token)
    (tmp_path / secret_token / "facts.csv").unlink()
    with pytest.raises(
        ParamsError, match=r"inputs\.facts: '\$\{PERFLINK_TEST_SECRET\}/facts\.csv'"
    ) as info:
        load_params(path)
    assert secret_token not in str(info.value)


def test_missing_catalog_folder(tmp_path: Path) -> None:
    path = make_review_dir(tmp_path, catalog="nowhere")
    with pytest.raises(ParamsError, match="catalog: 'nowhere'"):
        load_params(path)


def test_missing_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFLINK_TEST_UNSET", raising=False)
    path = make_review_dir(tmp_path)
    path.write_text(path.read_text().replace("facts.csv", "${PERFLINK_TEST_UNSET}/facts.csv"))
    with pytest.raises(ParamsError, match=r"inputs\.facts .*\$\{PERFLINK_TEST_UNSET\}.*not set"):
        load_params(path)


def test_bad_value_from_env_is_not_printed(tmp_path: Path, secret_token: str) -> None:
    path = make_review_dir(tmp_path, jobs="${PERFLINK_TEST_SECRET}")
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert "${PERFLINK_TEST_SECRET}" in str(info.value)
    assert secret_token not in str(info.value)


def test_params_file_missing_or_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("quarter: [2026Q3\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


# --- parse_quarter ----------------------------------------------------------------------


def test_parse_quarter_works() -> None:
    assert parse_quarter("2026Q3") == pd.Period("2026-07", "M").asfreq("Q")


@pytest.mark.parametrize("bad", ["2026-Q3", "2026Q0", "Q3", 20263, None])
def test_parse_quarter_bad(bad: object) -> None:
    with pytest.raises(ParamsError, match="quarter"):
        parse_quarter(bad)


# --- open_review (perflink/review.py) ---------------------------------------------------


def test_open_review_works(review_dir: Path, tmp_path: Path) -> None:
    tables = tmp_path / "out" / "tables"
    review = open_review(review_dir, language="zh", tables_dir=tables)
    assert review.quarter == pd.Period("2026Q3", "Q")
    assert review.language == "zh"
    assert review.params.language == "zh"
    assert review.tables_dir == tables.resolve()
    assert tables.is_dir()


def test_open_review_bad_language(review_dir: Path) -> None:
    with pytest.raises(ParamsError, match="language: got 'fr'"):
        open_review(review_dir, language="fr")


def test_open_review_bad_params(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="quarter"):
        open_review(make_review_dir(tmp_path, quarter="2026-09"))


def test_open_review_loads_catalog_and_inputs_lazily(
    review_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    fake_catalog = types.ModuleType("perflink.catalog")
    catalog = types.SimpleNamespace(metrics={"revenue": None})
    fake_catalog.load_catalog = lambda path: calls.append(path) or catalog
    monkeypatch.setitem(sys.modules, "perflink.catalog", fake_catalog)
    monkeypatch.setattr(
        "perflink._review_inputs.load",
        lambda params, cat: (
            calls.append((params.input_paths, set(cat.metrics)))
            or (types.SimpleNamespace(facts="FACTS"), [])
        ),
    )
    review = open_review(review_dir)
    assert calls == []
    assert review.catalog is catalog
    assert review.catalog is catalog
    assert review.facts == "FACTS"
    assert review.facts == "FACTS"  # read once
    assert calls[0] == review_dir.parent / "catalog"
    assert calls[1][0]["facts"] == review_dir.parent / "facts.csv"
    assert calls[1][1] == {"revenue"}
    assert len(calls) == 2
    with pytest.raises(AttributeError):
        review.not_a_table  # noqa: B018


def test_import_perflink_is_light() -> None:
    import subprocess

    code = "import sys, perflink; print('pandas' in sys.modules, perflink.open_review.__module__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    ).stdout.split()
    assert out == ["False", "perflink.review"]


def test_scope_names_the_report_folder(review_dir: Path) -> None:
    from perflink.params import report_name

    assert load_params(review_dir).scope is None
    assert load_params(review_dir).report_name == "2026Q3"
    scoped = load_params(review_dir, overrides={"scope": "S02"})
    assert scoped.scope == "S02" and scoped.report_name == "2026Q3-S02"
    assert scoped.redacted()["scope"] == "S02"
    assert report_name("2026Q3", None) == "2026Q3"
