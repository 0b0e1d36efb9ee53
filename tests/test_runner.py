"""Tests for perflink.runner (run_review) and its internals (_runner_exec, _runner_output)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import pytest
from conftest import files_containing, make_review_dir

from perflink import _runner_exec as ex
from perflink import _runner_output as out
from perflink.errors import ParamsError, RunError
from perflink.runner import RunResult, run_review


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- a successful run, shared by several tests (starts 3 kernels once) -----------------


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory):
    """Run alpha + beta (in parallel, each sleeps 1 s) then summary, with a secret in params."""
    import secrets

    token = "plsecret-" + secrets.token_hex(12)
    records: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = _Keep()
    loggers = [logging.getLogger("perflink"), logging.getLogger("papermill")]
    root = tmp_path_factory.mktemp("good")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PERFLINK_TEST_SECRET", token)
        params = make_review_dir(root / "review", secret_dir=token)
        for lg in loggers:
            lg.addHandler(handler)
            mp.setattr(lg, "level", logging.DEBUG)
        try:
            result = run_review(params, out_dir=root / "reports", notebooks_dir=ex_dir())
        finally:
            for lg in loggers:
                lg.removeHandler(handler)
    return result, root, token, records


def ex_dir() -> Path:
    from conftest import FIXTURE_NOTEBOOKS

    return FIXTURE_NOTEBOOKS


@pytest.mark.kernel
def test_run_review_publishes(good_run) -> None:
    result, root, _, _ = good_run
    assert isinstance(result, RunResult)
    assert result.status == "ok"
    report = root / "reports" / "2026Q3"
    assert result.report_dir == report
    for name in ("index.html", "alpha.html", "beta.html", "summary.html", "manifest.json"):
        assert (report / name).is_file(), name
    assert sorted(p.name for p in (report / "notebooks").iterdir()) == [
        "01_alpha.ipynb",
        "02_beta.ipynb",
        "05_summary.ipynb",
    ]
    assert (report / "tables" / "alpha.csv").read_text() == "quarter,tasks\n2026Q3,3\n"
    # the temporary build folder is gone
    assert [p.name for p in (root / "reports").iterdir()] == ["2026Q3"]
    frame = result.to_frame()
    assert list(frame["task"]) == ["alpha", "beta", "summary"]
    assert set(frame["status"]) == {"ok"}
    assert "2026Q3" in result._repr_html_()
    assert result.chart().to_dict()["mark"]["type"] == "bar"


@pytest.mark.kernel
def test_manifest_contents(good_run) -> None:
    result, root, _, _ = good_run
    manifest = json.loads((root / "reports" / "2026Q3" / "manifest.json").read_text())
    assert manifest == result.manifest
    assert manifest["quarter"] == "2026Q3"
    assert manifest["status"] == "ok"
    facts = next(i for i in manifest["inputs"] if i["name"] == "facts")
    assert facts["path"] == "${PERFLINK_TEST_SECRET}/facts.csv"
    assert manifest["params"]["inputs"]["facts"] == "${PERFLINK_TEST_SECRET}/facts.csv"
    targets = next(i for i in manifest["inputs"] if i["name"] == "targets")
    assert targets["sha256"] == out.sha256(root / "review" / "targets.csv")
    assert [c["path"] for c in manifest["catalog"]] == ["metrics.yaml"]
    for pkg in (
        "python",
        "pandas",
        "numpy",
        "statsmodels",
        "scikit-learn",
        "altair",
        "papermill",
        "perflink",
    ):
        assert manifest["versions"][pkg]
    for task in manifest["tasks"]:
        assert task["status"] == "ok"
        assert task["duration_s"] > 0
        assert datetime.fromisoformat(task["started_at"]) < datetime.fromisoformat(
            task["finished_at"]
        )


@pytest.mark.kernel
def test_parallel_then_summary_last(good_run) -> None:
    result, *_ = good_run
    spans = {t.task: (t.started_at, t.finished_at) for t in result.tasks}
    (a0, a1), (b0, b1), (s0, _) = spans["alpha"], spans["beta"], spans["summary"]
    assert a0 < b1 and b0 < a1, "alpha and beta should run at the same time (jobs=2)"
    assert s0 >= max(a1, b1)


@pytest.mark.kernel
def test_secret_never_written_or_logged(good_run) -> None:
    _, root, token, records = good_run
    assert files_containing(root / "reports", token) == []
    assert files_containing(root / "review", token) == []
    assert records, "the run should have logged its progress"
    assert not [r for r in records if token in r]


@pytest.mark.kernel
def test_failing_cell(tmp_path: Path, fixture_notebooks: Path) -> None:
    params = make_review_dir(tmp_path / "review", tasks=["boom"])
    reports = tmp_path / "reports"
    with pytest.raises(RunError) as info:
        run_review(params, out_dir=reports, notebooks_dir=fixture_notebooks)
    message = str(info.value)
    assert "notebook 03_boom.ipynb failed in cell 3" in message
    assert "raise ValueError" in message
    assert "ValueError: boom: metric revenue has no target" in message
    assert "Traceback" not in message
    result = info.value.result
    assert result.status == "failed"
    assert info.value.user_error is False
    failed = list((reports / "2026Q3" / "_failed").iterdir())
    assert len(failed) == 1 and failed[0] == result.failed_dir
    assert (failed[0] / "03_boom.ipynb").is_file()
    assert json.loads((failed[0] / "manifest.json").read_text())["status"] == "failed"
    # no report, no temporary folder
    assert [p.name for p in reports.iterdir()] == ["2026Q3"]
    assert [p.name for p in (reports / "2026Q3").iterdir()] == ["_failed"]


@pytest.mark.kernel
def test_kernel_dies(tmp_path: Path, fixture_notebooks: Path) -> None:
    params = make_review_dir(tmp_path / "review", tasks=["die", "summary"])
    with pytest.raises(RunError) as info:
        run_review(params, out_dir=tmp_path / "reports", notebooks_dir=fixture_notebooks)
    message = str(info.value)
    assert "notebook 04_die.ipynb failed in cell 2 ('import os')" in message
    assert "DeadKernelError" in message
    statuses = {t.task: t.status for t in info.value.result.tasks}
    assert statuses == {"die": "failed", "summary": "skipped"}


@pytest.mark.kernel
def test_atomic_publish_and_deterministic_tables(tmp_path: Path, fixture_notebooks: Path) -> None:
    params = make_review_dir(tmp_path / "review", tasks=["alpha"])
    reports = tmp_path / "reports"
    run_review(params, out_dir=reports, notebooks_dir=fixture_notebooks)
    first = _snapshot(reports / "2026Q3")
    run_review(params, out_dir=reports, notebooks_dir=fixture_notebooks)
    second = _snapshot(reports / "2026Q3")
    tables = [k for k in first if k.startswith("tables/")]
    assert tables == ["tables/alpha.csv"]
    assert all(first[k] == second[k] for k in tables)
    assert first["manifest.json"] != second["manifest.json"]  # it is the second run's report

    make_review_dir(tmp_path / "review", tasks=["boom"])
    with pytest.raises(RunError):
        run_review(params, out_dir=reports, notebooks_dir=fixture_notebooks)
    after = _snapshot(reports / "2026Q3")
    kept = {k: v for k, v in after.items() if not k.startswith("_failed/")}
    assert kept == second
    assert any(k.startswith("_failed/") and k.endswith("03_boom.ipynb") for k in after)


@pytest.mark.kernel
def test_leaked_secret_blocks_publish(
    tmp_path: Path, fixture_notebooks: Path, secret_token: str
) -> None:
    params = make_review_dir(tmp_path / "review", tasks=["leak"], secret_dir=secret_token)
    reports = tmp_path / "reports"
    with pytest.raises(RunError, match=r"value of \$\{PERFLINK_TEST_SECRET\} appeared in") as info:
        run_review(params, out_dir=reports, notebooks_dir=fixture_notebooks)
    assert secret_token not in str(info.value)
    assert not (reports / "2026Q3").exists()
    assert files_containing(tmp_path, secret_token) == []


# --- checks that need no kernel ---------------------------------------------------------


def test_run_review_unknown_task(review_dir: Path, tmp_path: Path, fixture_notebooks: Path) -> None:
    reports = tmp_path / "reports"
    with pytest.raises(ParamsError, match=r"tasks: 'nope' has no notebook.*available tasks: alpha"):
        run_review(review_dir, out_dir=reports, tasks=["nope"], notebooks_dir=fixture_notebooks)
    assert not reports.exists()


def test_run_review_missing_parameters_cell(
    review_dir: Path, tmp_path: Path, fixture_notebooks: Path
) -> None:
    with pytest.raises(RunError, match=r"06_noparams\.ipynb has no cell tagged 'parameters'"):
        run_review(
            review_dir, out_dir=tmp_path / "r", tasks=["noparams"], notebooks_dir=fixture_notebooks
        )
    assert not (tmp_path / "r").exists()


def test_find_notebooks_and_order(tmp_path: Path, fixture_notebooks: Path) -> None:
    found = ex.find_notebooks(fixture_notebooks)
    assert found["alpha"].name == "01_alpha.ipynb"
    assert found["summary"].name == "05_summary.ipynb"
    assert ex.select_tasks(["summary", "beta", "alpha"], found, fixture_notebooks) == [
        "beta",
        "alpha",
        "summary",
    ]
    (tmp_path / "01_mapping_validation.ipynb").write_text("{}")
    assert list(ex.find_notebooks(tmp_path)) == ["mapping"]
    with pytest.raises(RunError, match="does not exist"):
        ex.find_notebooks(tmp_path / "none")


def test_check_parameters_cell_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "01_x.ipynb"
    bad.write_text("not json")
    with pytest.raises(RunError, match=r"01_x\.ipynb cannot be read"):
        ex.check_parameters_cell(bad)


def test_kernel_env_adds_this_checkout() -> None:
    env = ex.kernel_env()
    root = str(Path(ex.__file__).resolve().parents[1])
    if "site-packages" not in root:
        assert env["PYTHONPATH"].split(":")[0] == root


def test_publish_replaces_and_keeps_failed_history(tmp_path: Path) -> None:
    final = tmp_path / "2026Q3"
    (final / "_failed" / "t1").mkdir(parents=True)
    (final / "_failed" / "t1" / "x.ipynb").write_text("old failure")
    (final / "index.html").write_text("old")
    tmp = tmp_path / ".tmp-new"
    tmp.mkdir()
    (tmp / "index.html").write_text("new")
    out.publish(tmp, final)
    assert (final / "index.html").read_text() == "new"
    assert (final / "_failed" / "t1" / "x.ipynb").read_text() == "old failure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026Q3"]


def test_scan_secrets(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("nothing here")
    out.scan_secrets(tmp_path, {"TOKEN": "s3cr3t-value", "SHORT": "ab"})
    (tmp_path / "b.json").write_text(json.dumps({"x": 'say "s3cr3t\\value"'}))
    with pytest.raises(RunError, match=r"\$\{TOKEN\} appeared in b\.json") as info:
        out.scan_secrets(tmp_path, {"TOKEN": "s3cr3t\\value"})
    assert "s3cr3t" not in str(info.value)


@pytest.mark.kernel
def test_scoped_run_goes_to_its_own_folder(tmp_path: Path, fixture_notebooks: Path) -> None:
    params = make_review_dir(tmp_path / "review")
    (tmp_path / "review" / "entities.csv").write_text(
        "entity_id,name_zh,name_en,parent_id,kind,center_type,business_line,manager\n"
        "G00,集团,Group,,group,,,甲\n"
        "S01,一公司,First Co.,G00,subsidiary,,retail,乙\n",
        encoding="utf-8",
    )
    reports = tmp_path / "reports"
    result = run_review(
        params, out_dir=reports, tasks=["alpha"], scope="S01", notebooks_dir=fixture_notebooks
    )
    assert result.report_dir == reports / "2026Q3-S01"
    assert result.manifest["scope"] == "S01"
    assert result.manifest["params"]["scope"] == "S01"
    assert sorted(p.name for p in reports.iterdir()) == ["2026Q3-S01"]
    with pytest.raises(ParamsError, match=r"scope: 'S09' is not an entity_id"):
        run_review(params, out_dir=reports, scope="S09", notebooks_dir=fixture_notebooks)
