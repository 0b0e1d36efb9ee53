"""Tests for perflink.docs: the generated references are up to date and describe every field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from perflink import docs
from perflink.catalog import Metric, MetricMapping, Policy, Rule, _BonusStep, _Bound
from perflink.errors import PerflinkError
from perflink.params import InputPaths, ReviewParams

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _models() -> list[type[BaseModel]]:
    """Every model a params or catalog file is made of."""
    out: list[type[BaseModel]] = [ReviewParams, InputPaths, Metric, MetricMapping, Rule, Policy]
    out += [_Bound, _BonusStep]
    for info in ReviewParams.model_fields.values():
        block = info.annotation
        if isinstance(block, type) and issubclass(block, BaseModel):
            out.append(block)
            out += [
                m
                for f in block.model_fields.values()
                if (m := docs._entry_model(f.annotation)) is not None
            ]
    return out


def test_committed_references_are_up_to_date() -> None:
    stale = docs.write_docs(DOCS, check=True)
    assert stale == [], f"{stale} are stale: run `make docs` and commit them"


def test_every_field_of_every_model_has_a_description() -> None:
    missing = [
        f"{model.__name__}.{f.name}"
        for model in _models()
        for f in docs.field_docs(model)
        if not f.description
    ]
    assert missing == []


def test_every_option_block_and_key_is_in_the_params_reference() -> None:
    text = (DOCS / "params-reference.md").read_text(encoding="utf-8")
    for block in ("executor", "mapping", "kpi", "forecast", "anomaly", "summary", "inputs"):
        assert f"## `{block}:`" in text
    for model in _models():
        if model in (Metric, MetricMapping, Rule, Policy, _Bound, _BonusStep):
            continue
        for name in model.model_fields:
            assert f"| `{name}` |" in text, f"{model.__name__}.{name}"


def test_catalog_reference_has_every_field_and_the_grammar() -> None:
    text = (DOCS / "catalog-reference.md").read_text(encoding="utf-8")
    for model in (Metric, MetricMapping, Rule, Policy, _Bound, _BonusStep):
        for name in model.model_fields:
            assert f"| `{name}` |" in text, f"{model.__name__}.{name}"
    for fn in ("lag(metric, k)", "sum(metric, k)", "abs(x)"):
        assert fn in text
    # the YAML examples of the reference are valid catalog entries
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    metrics = yaml.safe_load(blocks[0])["metrics"]
    assert [Metric.model_validate(m).id for m in metrics] == ["sales", "gross_margin"]
    Policy.model_validate(yaml.safe_load(blocks[1])["policy"])


def test_field_docs_reads_attributes_sections_and_refuses_non_models() -> None:
    class Demo(BaseModel):
        """Demo.

        Attributes
        ----------
        a, b : shared text
            continued.
        c
            numpy style.
        """

        a: int = 1
        b: tuple[str, ...] = ("x",)
        c: float | None = None

    rows = {r.name: r for r in docs.field_docs(Demo)}
    assert rows["a"].description == rows["b"].description == "shared text continued."
    assert rows["c"].description == "numpy style."
    assert rows["b"].type == "list of str" and rows["b"].default == '`["x"]`'
    assert rows["c"].default == "empty" and rows["c"].type == "float (optional)"
    with pytest.raises(PerflinkError, match="pydantic model class"):
        docs.field_docs(dict)  # type: ignore[arg-type]


def test_write_docs_and_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert docs.main(["--check", str(tmp_path)]) == 1  # nothing written yet: stale
    assert "make docs" in capsys.readouterr().err
    assert docs.main([str(tmp_path)]) == 0
    assert docs.main(["--check", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(docs.FILES)
    with pytest.raises(PerflinkError, match="not a folder"):
        docs.write_docs(tmp_path / "missing")


def test_readme_links_the_three_docs_and_the_guide_walks_init_check_review() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("catalog-reference.md", "params-reference.md", "bring-your-own-data.md"):
        assert f"(docs/{name})" in readme
    guide = (DOCS / "bring-your-own-data.md").read_text(encoding="utf-8")
    for step in ("perflink init", "perflink check", "perflink review", "--example retail"):
        assert step in guide
