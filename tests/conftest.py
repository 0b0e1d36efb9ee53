"""Shared fixtures: a tiny review folder (params + placeholder inputs) and the fixture notebooks."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import pytest
import yaml
from browser_utils import browser  # noqa: F401 — one Chromium for the whole session

# Playwright's sync API cannot start while another sync Playwright is running in the same
# thread, so the browser fixture must exist once (here), not once per test module.

FIXTURE_NOTEBOOKS = Path(__file__).parent / "fixtures" / "notebooks"


@pytest.fixture
def fixture_notebooks() -> Path:
    """Folder of tiny task notebooks (01_alpha, 02_beta, 05_summary, 03_boom, 04_die, ...)."""
    return FIXTURE_NOTEBOOKS


#: A valid review of 2026Q3 in a few rows: a group, one subsidiary, one metric, facts
#: for 2026-07..09 (the runner checks every input before any notebook starts).
TINY_INPUTS = {
    "entities": (
        "entity_id,name_zh,name_en,parent_id,kind,center_type,business_line,manager\n"
        "G00,集团,Group,,group,,,甲\n"
        "S01,一公司,First Co.,G00,subsidiary,,retail,乙\n"
    ),
    "facts": (
        "entity_id,period,metric_id,value,source_system,source_ref\n"
        "S01,2026-07,revenue,10,ERP,R1\n"
        "S01,2026-08,revenue,11,ERP,R2\n"
        "S01,2026-09,revenue,12,ERP,R3\n"
    ),
    "targets": "entity_id,year,period,metric_id,target,kind\nS01,2026,,revenue,130,budget\n",
    "schemes": (
        "scheme_id,center_type,entity_id,metric_id,weight,category,rule,floor,cap,rule_params\n"
        "SCH-P,profit,,revenue,1.0,financial,linear,0.6,1.2,{}\n"
    ),
}
TINY_CATALOG = {
    "metrics": (
        "metrics:\n"
        "  - {id: revenue, name_zh: 收入, name_en: Revenue, definition: d, caliber: c,\n"
        "     unit: 万元, owner: o, source_system: ERP, direction: higher, tier: 1,\n"
        "     category: financial, aggregation: sum}\n"
    ),
    "mappings": "mappings: []\n",
    "rules": "rules: []\n",
    "policy": "policy:\n  constraints: {}\n  bonus_coefficient:\n    - {min_score: 0, coefficient: 1.0}\n",
}


def make_review_dir(folder: Path, *, secret_dir: str | None = None, **changes) -> Path:
    """Write params.yaml, four small valid input files (:data:`TINY_INPUTS`) and a catalog
    folder; return the params path.

    ``changes`` replace top-level keys of the params (``None`` removes a key). With
    ``secret_dir``, facts.csv lives in ``folder/<secret_dir>/`` and the params refer to it
    as ``${PERFLINK_TEST_SECRET}/facts.csv`` (set the variable to ``secret_dir``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TINY_INPUTS.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    (folder / "catalog").mkdir(exist_ok=True)
    for name, text in TINY_CATALOG.items():
        (folder / "catalog" / f"{name}.yaml").write_text(text, encoding="utf-8")
    params = {
        "quarter": "2026Q3",
        "language": "en",
        "inputs": {n: f"{n}.csv" for n in ("entities", "facts", "targets", "schemes")},
        "catalog": "catalog",
        "tasks": ["alpha", "beta", "summary"],
        "jobs": 2,
    }
    if secret_dir is not None:
        (folder / secret_dir).mkdir(exist_ok=True)
        os.replace(folder / "facts.csv", folder / secret_dir / "facts.csv")
        params["inputs"]["facts"] = "${PERFLINK_TEST_SECRET}/facts.csv"
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def review_dir(tmp_path: Path) -> Path:
    """Params file of a tiny review in a temporary folder."""
    return make_review_dir(tmp_path / "review")


@pytest.fixture
def secret_token(monkeypatch: pytest.MonkeyPatch) -> str:
    """A random value exported as $PERFLINK_TEST_SECRET for this test."""
    token = "plsecret-" + secrets.token_hex(12)
    monkeypatch.setenv("PERFLINK_TEST_SECRET", token)
    return token


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under *root* (hidden ones included) whose bytes contain *needle*."""
    data = needle.encode("utf-8")
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


@pytest.fixture(scope="session")
def reviewed_quarters(tmp_path_factory):
    """The sample reviewed end to end, twice, into one reports folder (shared: it is slow).

    * 2026Q3 in Chinese, with the facts folder named by a secret ``${PERFLINK_E2E_DIR}``;
    * 2026Q4 in English, on the same history extended by three months, so its summary
      compares with the 2026Q3 report (new / persisting / resolved findings).
    """
    from types import SimpleNamespace

    from perflink.runner import run_review
    from perflink.sample import generate

    root = tmp_path_factory.mktemp("reviews")
    q3_params = generate(root / "q3", seed=0)
    token = "e2e-" + secrets.token_hex(10)
    hidden = q3_params.parent / token
    hidden.mkdir()
    os.replace(q3_params.parent / "facts.csv", hidden / "facts.csv")
    params = yaml.safe_load(q3_params.read_text(encoding="utf-8"))
    params["inputs"]["facts"] = "${PERFLINK_E2E_DIR}/facts.csv"
    q3_params.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    q4_params = generate(root / "q4", seed=0, months=48, end="2026-12")
    reports = root / "reports"
    mp = pytest.MonkeyPatch()
    mp.setenv("PERFLINK_E2E_DIR", token)
    try:
        q3 = run_review(q3_params, out_dir=reports, jobs=2)
    finally:
        mp.undo()
    q4 = run_review(q4_params, out_dir=reports, jobs=2, language="en")
    return SimpleNamespace(
        root=root,
        reports=reports,
        secret=token,
        q3=q3,
        q4=q4,
        truth3=yaml.safe_load((root / "q3" / "truth.yaml").read_text(encoding="utf-8")),
        truth4=yaml.safe_load((root / "q4" / "truth.yaml").read_text(encoding="utf-8")),
    )


@pytest.fixture
def task_bars(monkeypatch) -> list:
    """The progress bars opened, counting but never drawn (tqdm's delay is never reached)."""
    from perflink import execution

    monkeypatch.setenv(execution.PROGRESS_ENV, "1")
    monkeypatch.setattr(execution, "PROGRESS_DELAY", 3600.0)
    opened = []

    class Recording(execution.Progress):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(execution, "Progress", Recording)
    return opened


# A log record as perflink's CLI handler writes it ("2026-11-30 13:15:12 perflink.io INFO ..."),
# possibly appended to a bar frame on the same line.
_LOG_RECORD = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d perflink[\w.]* (?:DEBUG|INFO|WARNING|ERROR) [^\r\n]*\n?"
)


@pytest.fixture
def stderr_bars(capsys):
    """Read what progress bars wrote to stderr: the captured stderr without log records (a
    test before may have left perflink's stderr log handler on, as the CLI sets it)."""

    def read() -> str:
        return _LOG_RECORD.sub("", capsys.readouterr().err)

    return read
