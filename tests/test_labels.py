"""Tests for perflink.labels: the zh/en label table."""

from __future__ import annotations

import pytest

from perflink import labels
from perflink.errors import ParamsError, PerflinkError
from perflink.labels import LabelError, column_label, label_table, t, value_label


@pytest.fixture(autouse=True)
def _reset_language():
    before = labels.get_language()
    yield
    labels.set_language(before)


def test_every_label_has_zh_and_en():
    table = label_table()
    assert len(table) > 50
    assert table["key"].is_unique
    for lang in labels.LANGUAGES:
        empty = table.loc[table[lang].str.strip() == "", "key"].tolist()
        assert empty == [], f"labels without {lang} text: {empty}"


def test_t_returns_language_and_formats():
    assert t("report.index.title", "zh") == "季度经营业绩评审"
    assert t("report.index.title", "en") == "Quarterly performance review"
    assert t("report.page.quarter", "en", quarter="2026 Q3") == "Review period: 2026 Q3"


def test_t_uses_current_language():
    labels.set_language("en")
    assert t("report.index.status") == "Status"
    labels.set_language("zh")
    assert t("report.index.status") == "状态"


def test_t_missing_key_names_key_and_file():
    with pytest.raises(LabelError, match=r"kpi\.nope.*perflink/data/labels/kpi\.yaml"):
        t("kpi.nope")


def test_t_missing_format_value_names_field():
    with pytest.raises(LabelError, match="quarter"):
        t("report.page.quarter", "zh")


def test_bad_language_raises_params_error():
    with pytest.raises(ParamsError, match="'fr'"):
        t("report.index.title", "fr")
    with pytest.raises(ParamsError):
        labels.set_language("zh-CN")
    assert issubclass(LabelError, PerflinkError)


def test_column_and_value_labels():
    assert column_label("entity_id", "zh") == "单位编号"
    assert column_label("entity_id", "en") == "Entity"
    assert column_label("period", "zh") == "期间"
    assert column_label("some_custom_col", "zh") == "some_custom_col"
    assert [value_label("severity", s, "zh") for s in ("critical", "high", "medium", "low", "info")] == [
        "严重", "高", "中", "低", "提示"
    ]  # fmt: skip
    assert value_label("severity", "unknown", "en") == "unknown"


def test_column_label_bad_language():
    with pytest.raises(ParamsError):
        column_label("entity_id", "de")
    with pytest.raises(ParamsError):
        value_label("severity", "high", "de")


def test_label_files_reject_incomplete_and_duplicate_entries(tmp_path):
    (tmp_path / "a.yaml").write_text("a.x: {zh: 甲}\n", encoding="utf-8")
    with pytest.raises(LabelError, match=r"a\.yaml, key 'a\.x'.*en"):
        labels._load(tmp_path)
    (tmp_path / "a.yaml").write_text("a.x: {zh: 甲, en: A}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("a.x: {zh: 乙, en: B}\n", encoding="utf-8")
    with pytest.raises(LabelError, match=r"a\.yaml and b\.yaml"):
        labels._load(tmp_path)
