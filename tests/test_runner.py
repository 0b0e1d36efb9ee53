"""Tests for perflink.runner (run_review) and its internals (_runner_exec, _runner_output)."""

from __future__ import annotations

import json
import logging
import os
import time
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
    assert [c["path"] for c in manifest["catalog"]] == [
        "mappings.yaml",
        "metrics.yaml",
        "policy.yaml",
        "rules.yaml",
    ]
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
    assert env["PERFLINK_PROGRESS"] == "0"  # no bar frames kept in executed notebooks
    root = str(Path(ex.__file__).resolve().parents[1])
    if "site-packages" not in root:
        assert env["PYTHONPATH"].split(":")[0] == root


def test_kernel_env_shares_the_cores_among_the_kernels_at_once(monkeypatch) -> None:
    monkeypatch.delenv("PERFLINK_LOCAL_WORKERS", raising=False)
    monkeypatch.setattr(ex.os, "cpu_count", lambda: 8)
    assert ex.kernel_env(at_once=2)["PERFLINK_LOCAL_WORKERS"] == "4"
    assert ex.kernel_env(at_once=3)["PERFLINK_LOCAL_WORKERS"] == "2"
    assert ex.kernel_env(at_once=16)["PERFLINK_LOCAL_WORKERS"] == "1"
    assert ex.kernel_env()["PERFLINK_LOCAL_WORKERS"] == "8"
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
        assert ex.kernel_env(at_once=2)[name] == "4"  # numpy's threads share the cores too
    monkeypatch.setenv("PERFLINK_LOCAL_WORKERS", "3")  # the user's own setting stays
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "6")
    env = ex.kernel_env(at_once=2)
    assert (env["PERFLINK_LOCAL_WORKERS"], env["OPENBLAS_NUM_THREADS"]) == ("3", "6")


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


# --- inputs read once, before any notebook; interrupted and unwritable runs -------------


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import perflink.io

    reads: list[str] = []
    real = perflink.io.read_table

    def counting(path, kind, **kwargs):
        reads.append(kind)
        return real(path, kind, **kwargs)

    monkeypatch.setattr(perflink.io, "read_table", counting)
    return reads


def _no_kernel(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []

    def execute(task, *args, **kwargs):
        started.append(task)
        raise AssertionError("a notebook was started")

    monkeypatch.setattr(ex, "execute", execute)
    return started


def _left(reports: Path) -> list[str]:
    return sorted(p.name for p in reports.iterdir()) if reports.exists() else []


def _fake_notebooks(monkeypatch: pytest.MonkeyPatch, events: list) -> None:
    """Notebooks that "run" in 0.2 s without a kernel (the executed copy is the source)."""

    def execute(task, src, executed, **kwargs):
        start = datetime.now().astimezone()
        events.append(("run", task))
        executed.parent.mkdir(parents=True, exist_ok=True)
        executed.write_bytes(src.read_bytes())
        time.sleep(0.2)
        events.append(("ran", task))
        end = datetime.now().astimezone()
        return ex.TaskOutcome(task, src.name, "ok", start, end, (end - start).total_seconds())

    monkeypatch.setattr(ex, "execute", execute)


def test_a_page_renders_while_the_next_notebook_runs(
    tmp_path: Path, fixture_notebooks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One notebook at a time: beta starts while alpha's page still renders, and the report
    # is published only when every page is written.
    events: list = []
    _fake_notebooks(monkeypatch, events)

    def render(executed, out_html, **kwargs):
        events.append(("render", out_html.stem))
        time.sleep(0.5)
        out_html.write_text("<html></html>", encoding="utf-8")
        events.append(("rendered", out_html.stem))

    monkeypatch.setattr(out, "render_task", render)
    params = make_review_dir(tmp_path / "review", tasks=["alpha", "beta"], jobs=1)
    result = run_review(params, out_dir=tmp_path / "reports", notebooks_dir=fixture_notebooks)
    assert events.index(("run", "beta")) < events.index(("rendered", "alpha"))
    assert sorted(p.name for p in result.report_dir.glob("*.html")) == [
        "alpha.html", "beta.html", "index.html"
    ]  # fmt: skip


def test_a_page_that_fails_to_render_fails_the_run(
    tmp_path: Path, fixture_notebooks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_notebooks(monkeypatch, [])

    def render(executed, out_html, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(out, "render_task", render)
    params = make_review_dir(tmp_path / "review", tasks=["alpha"])
    reports = tmp_path / "reports"
    with pytest.raises(OSError, match="No space left"):
        run_review(params, out_dir=reports, notebooks_dir=fixture_notebooks)
    assert _left(reports) == []  # nothing published, no build folder left


@pytest.mark.kernel
def test_each_input_read_once_and_kernels_read_the_snapshot(
    tmp_path: Path, fixture_notebooks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = make_review_dir(tmp_path / "review", tasks=["probe", "alpha"])
    facts = tmp_path / "review" / "facts.csv"
    facts.write_text(  # one row after 2026Q3 and an unknown column
        facts.read_text().replace("source_ref\n", "source_ref,note\n").replace("R3\n", "R3,x\n")
        + "S01,2026-10,revenue,13,ERP,R4,\n",
        encoding="utf-8",
    )
    reads = _count_reads(monkeypatch)
    reports = tmp_path / "reports"
    result = run_review(params, out_dir=reports, notebooks_dir=fixture_notebooks)
    assert sorted(reads) == ["entities", "facts", "schemes", "targets"]  # once each
    # the probe kernel replaced read_table by None: it read the snapshot, no raw file
    probe = (reports / "2026Q3" / "tables" / "probe.csv").read_text()
    assert probe == (
        'quarter,facts_rows,months,snapshot,notes\n2026Q3,3,"2026-07,2026-08,2026-09",True,2\n'
    )
    notes = {n["kind"]: n for n in result.manifest["input_notes"]}
    assert notes["left_out"]["rows"] == 1 and notes["left_out"]["months"] == ["2026-10"]
    assert notes["extra_columns"]["columns"] == ["note"]
    index = (reports / "2026Q3" / "index.html").read_text()
    assert "Notes on the inputs" in index
    assert "facts.csv: 1 row(s) after the review quarter 2026Q3 (2026-10)" in index
    assert "facts.csv has columns that are not in the data contract, kept as text: note" in index
    # the snapshot is never published, and nothing temporary is left
    assert not list((reports / "2026Q3").rglob("*.parquet"))
    assert _left(reports) == ["2026Q3"]


def test_bad_input_fails_before_any_notebook(
    tmp_path: Path, fixture_notebooks: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from perflink.cli import main

    params = make_review_dir(tmp_path / "review")
    facts = tmp_path / "review" / "facts.csv"
    facts.write_text(facts.read_text().replace("11,ERP", "eleven,ERP"), encoding="utf-8")
    started = _no_kernel(monkeypatch)
    reports = tmp_path / "reports"
    code = main(["review", "--params", str(params), "--out", str(reports),
                 "--notebooks", str(fixture_notebooks)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and started == []
    assert "facts.csv row 3, column 'value': 'eleven' is not a number" in err
    assert err.count("is not a number") == 1 and "Traceback" not in err
    assert _left(reports) == []


def test_quarter_not_covered_is_exit_2_before_any_notebook(
    tmp_path: Path, fixture_notebooks: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from perflink.cli import main

    params = make_review_dir(tmp_path / "review", quarter="2031Q1")
    started = _no_kernel(monkeypatch)
    code = main(["review", "--params", str(params), "--out", str(tmp_path / "reports"),
                 "--notebooks", str(fixture_notebooks)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and started == []
    assert "2031Q1 is not covered by the data" in err and "months 2026-07 to 2026-09" in err


@pytest.mark.kernel
def test_quarter_parameter_is_honoured_by_papermill(tmp_path: Path, fixture_notebooks: Path):
    import papermill as pm

    params = make_review_dir(tmp_path / "review")
    facts = tmp_path / "review" / "facts.csv"
    facts.write_text(facts.read_text() + "S01,2026-05,revenue,9,ERP,R0\n", encoding="utf-8")
    tables = tmp_path / "tables"
    tables.mkdir()
    pm.execute_notebook(
        str(fixture_notebooks / "09_probe.ipynb"),
        str(tmp_path / "out.ipynb"),
        parameters={"params_path": str(params), "tables_dir": str(tables), "quarter": "2026Q2"},
        kernel_name=ex.pick_kernel(fixture_notebooks / "09_probe.ipynb"),
        progress_bar=False,
    )
    assert (tables / "probe.csv").read_text().splitlines()[1] == '2026Q2,1,"2026-05",False,1'


def test_user_errors_are_every_perflink_error_but_run_errors() -> None:
    import perflink.errors as errors

    names = ex.user_error_names()
    for name in ("PerflinkError", "InputError", "CatalogError", "FormulaError", "ParamsError"):
        assert name in names
    for name in ("ReportError", "LabelError", "OutputError"):
        if hasattr(errors, name):
            assert name in names
    assert "RunError" not in names and "ValueError" not in names

    class LaterError(errors.InputError):  # a class added later counts without a list to edit
        pass

    assert "LaterError" in ex.user_error_names()


def test_unwritable_reports_folder_is_exit_2(
    tmp_path: Path, fixture_notebooks: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from perflink.cli import main

    params = make_review_dir(tmp_path / "review", tasks=["alpha"])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    started = _no_kernel(monkeypatch)
    reports = blocker / "reports"  # fails for root too: a path under a file
    code = main(["review", "--params", str(params), "--out", str(reports),
                 "--notebooks", str(fixture_notebooks)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and started == []
    assert f"the reports folder {reports} cannot be written" in err and "--out" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "review"]


def _chattr(path: Path, flag: str) -> bool:
    import shutil
    import subprocess

    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@pytest.mark.kernel
def test_unreplaceable_last_report_is_exit_2_and_kept(
    tmp_path: Path, fixture_notebooks: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from perflink.cli import main

    params = make_review_dir(tmp_path / "review", tasks=["alpha"])
    reports = tmp_path / "reports"
    args = ["review", "--params", str(params), "--out", str(reports),
            "--notebooks", str(fixture_notebooks)]  # fmt: skip
    assert main(args) == 0
    last = _snapshot(reports / "2026Q3")
    real = os.replace

    def refuse(src, dst, *a, **k):  # what an immutable or read-only report gives root too
        if Path(src) == reports / "2026Q3":
            raise PermissionError(1, "Operation not permitted")
        return real(src, dst, *a, **k)

    with monkeypatch.context() as mp:
        mp.setattr(out.os, "replace", refuse)
        assert main(args) == 2
    err = capsys.readouterr().err
    assert f"the last report {reports / '2026Q3'} cannot be replaced" in err
    assert "Operation not permitted" in err and "Traceback" not in err
    assert _snapshot(reports / "2026Q3") == last and _left(reports) == ["2026Q3"]

    # the same with the real immutable flag, where the file system has one
    if not _chattr(reports / "2026Q3", "+i"):
        pytest.skip("chattr +i is not available here")
    try:
        assert main(args) == 2
        assert "cannot be replaced" in capsys.readouterr().err
        assert _left(reports) == ["2026Q3"]
        assert _chattr(reports, "+i")
        assert main(args) == 2
        assert f"the reports folder {reports} cannot be written" in capsys.readouterr().err
    finally:
        _chattr(reports, "-i")
        _chattr(reports / "2026Q3", "-i")
    assert _snapshot(reports / "2026Q3") == last and _left(reports) == ["2026Q3"]


@pytest.mark.kernel
def test_sigint_mid_run_cleans_up_and_exits_130(tmp_path: Path, fixture_notebooks: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    params = make_review_dir(tmp_path / "review", tasks=["slow", "alpha"])
    reports = tmp_path / "reports"
    (reports / "2026Q3").mkdir(parents=True)
    (reports / "2026Q3" / "index.html").write_text("the last good report")
    cmd = [sys.executable, "-m", "perflink", "review", "--params", str(params),
           "--out", str(reports), "--notebooks", str(fixture_notebooks)]  # fmt: skip
    # started with SIGINT ignored, as a shell's background job is: the CLI still stops on it
    ignore = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    proc = subprocess.Popen(
        cmd, env=ex.kernel_env(), stderr=subprocess.PIPE, text=True, preexec_fn=ignore
    )
    try:
        started = None
        for _ in range(1200):  # the slow notebook's first cell writes its kernel's pid
            found = list(reports.glob(".tmp-*/tables/started.txt"))
            if found and found[0].read_text():
                started = int(found[0].read_text())
                break
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.1)
        assert started, "the slow notebook did not start"
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"the interrupted review did not end within 120 s; its stderr:\n{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert _left(reports) == ["2026Q3"]  # no .tmp-* folder
    assert [p.name for p in (reports / "2026Q3").iterdir()] == ["index.html"]
    assert (reports / "2026Q3" / "index.html").read_text() == "the last good report"
    status = Path(f"/proc/{started}/status")
    if status.exists():  # a zombie waiting for its reaper is dead too
        assert "zombie" in status.read_text() or "(dead)" in status.read_text()
