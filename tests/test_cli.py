"""Tests for perflink.cli (main): exit codes, messages, sample-data wiring."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import make_review_dir

from perflink import cli
from perflink.cli import main


def _review_args(params: Path, out: Path, nbs: Path, tasks: str) -> list[str]:
    return [
        "review",
        "--params",
        str(params),
        "--out",
        str(out),
        "--tasks",
        tasks,
        "--notebooks",
        str(nbs),
    ]


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["review", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "130"):
        assert f"  {code}" in text
    assert "--params" in text and "--jobs" in text


@pytest.mark.kernel
def test_review_success_exit_0(tmp_path: Path, fixture_notebooks: Path, capsys) -> None:
    params = make_review_dir(tmp_path / "review")
    code = main(_review_args(params, tmp_path / "reports", fixture_notebooks, "alpha"))
    assert code == 0
    assert (tmp_path / "reports" / "2026Q3" / "index.html").is_file()
    assert "index.html" in capsys.readouterr().out


@pytest.mark.kernel
def test_review_failing_notebook_exit_1(tmp_path: Path, fixture_notebooks: Path, capsys) -> None:
    params = make_review_dir(tmp_path / "review")
    code = main(_review_args(params, tmp_path / "reports", fixture_notebooks, "boom"))
    assert code == 1
    err = capsys.readouterr().err
    assert "notebook 03_boom.ipynb failed in cell 3" in err
    assert "ValueError: boom" in err
    assert "Traceback" not in err
    assert (tmp_path / "reports" / "2026Q3" / "_failed").is_dir()


@pytest.mark.kernel
def test_review_input_error_in_notebook_exit_2(
    tmp_path: Path, fixture_notebooks: Path, capsys
) -> None:
    params = make_review_dir(tmp_path / "review")
    code = main(_review_args(params, tmp_path / "reports", fixture_notebooks, "badinput"))
    assert code == 2
    assert "InputError: facts.csv row 7" in capsys.readouterr().err


def test_review_bad_params_exit_2(tmp_path: Path, fixture_notebooks: Path, capsys) -> None:
    params = make_review_dir(tmp_path / "review", quarter="2026Q9")
    code = main(_review_args(params, tmp_path / "reports", fixture_notebooks, "alpha"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("perflink: ") and "quarter: got '2026Q9'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_review_interrupted_exit_130(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("perflink.runner.run_review", interrupted)
    params = make_review_dir(tmp_path / "review")
    assert main(["review", "--params", str(params)]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_review_without_params_generates_sample(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    generated: list[tuple] = []

    def generate(out_dir, **kwargs):
        generated.append((Path(out_dir), kwargs))
        return make_review_dir(Path(out_dir))

    seen: dict = {}

    def fake_run(params_path, **kwargs):
        seen.update(params=params_path, **kwargs)
        return types.SimpleNamespace(quarter="2026Q3", report_dir=Path("reports/2026Q3"))

    monkeypatch.chdir(tmp_path)
    fake = types.SimpleNamespace(generate=generate, EXAMPLES={"sample": "the bundled group"})
    monkeypatch.setitem(sys.modules, "perflink.sample", fake)
    monkeypatch.setattr("perflink.runner.run_review", fake_run)
    assert main(["review", "--jobs", "3", "--language", "zh"]) == 0
    assert generated == [(cli.SAMPLE_DIR, {})]
    assert seen["params"] == cli.SAMPLE_DIR / "params.yaml"
    assert (seen["jobs"], seen["language"], seen["tasks"]) == (3, "zh", None)
    # second time the sample exists and is not regenerated
    assert main(["review"]) == 0
    assert len(generated) == 1


def test_sample_data_calls_generate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    calls: list = []

    def generate(out_dir, *, entities=42, months=45, seed=0, clean=False, end="2026-09", raw=False):
        calls.append((out_dir, entities, months, seed, clean, end, raw))
        return Path(out_dir) / "params.yaml"

    fake = types.SimpleNamespace(generate=generate, EXAMPLES={"sample": "the bundled group"})
    monkeypatch.setitem(sys.modules, "perflink.sample", fake)
    argv = [
        "sample-data",
        str(tmp_path / "s"),
        "--entities",
        "12",
        "--months",
        "15",
        "--seed",
        "7",
        "--clean",
        "--end",
        "2026-12",
    ]
    assert main(argv) == 0
    assert calls == [(tmp_path / "s", 12, 15, 7, True, "2026-12", False)]
    assert "params.yaml" in capsys.readouterr().out
    assert main(["sample-data", str(tmp_path / "s"), "--raw"]) == 0
    assert calls[-1][-1] is True


def test_sample_data_bad_value_exit_2(tmp_path: Path, capsys) -> None:
    pytest.importorskip("perflink.sample")
    assert main(["sample-data", str(tmp_path / "s"), "--entities", "1"]) == 2
    err = capsys.readouterr().err
    assert "--entities 1" in err and "Traceback" not in err


def test_python_dash_m_perflink(tmp_path: Path) -> None:
    params = make_review_dir(tmp_path / "review", language="de")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "perflink",
            "review",
            "--params",
            str(params),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert proc.returncode == 2
    assert "language: got 'de'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.kernel
def test_review_scope_publishes_its_own_folder(
    tmp_path: Path, fixture_notebooks: Path, capsys
) -> None:
    params = make_review_dir(tmp_path / "review")
    (tmp_path / "review" / "entities.csv").write_text(SCOPE_ENTITIES, encoding="utf-8")
    args = _review_args(params, tmp_path / "reports", fixture_notebooks, "alpha")
    assert main([*args, "--scope", "S02"]) == 0
    assert (tmp_path / "reports" / "2026Q3-S02" / "index.html").is_file()
    assert not (tmp_path / "reports" / "2026Q3").exists()
    assert "report 2026Q3-S02 written to" in capsys.readouterr().out


def test_review_unknown_scope_exit_2(tmp_path: Path, fixture_notebooks: Path, capsys) -> None:
    params = make_review_dir(tmp_path / "review")
    (tmp_path / "review" / "entities.csv").write_text(SCOPE_ENTITIES, encoding="utf-8")
    args = _review_args(params, tmp_path / "reports", fixture_notebooks, "alpha")
    assert main([*args, "--scope", "S2"]) == 2
    err = capsys.readouterr().err
    assert "scope: 'S2' is not an entity_id" in err and "Did you mean 'S02'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "reports").exists()  # checked before any notebook ran


SCOPE_ENTITIES = """\
entity_id,name_zh,name_en,parent_id,kind,center_type,business_line,manager
G00,集团,Group,,group,,,甲
S01,一公司,First Co.,G00,subsidiary,,retail,乙
S02,二公司,Second Co.,G00,subsidiary,,retail,丙
S02D01,二公司门店,Second Store,S02,department,profit,retail,丁
"""


def test_help_lists_check_and_init(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "check" in text and "init" in text
    with pytest.raises(SystemExit) as info:
        main(["check"])  # --params is required
    assert info.value.code == 2
