"""The retail example (a second company): deterministic, loads, reconciles, problems planted."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml

from perflink import formula, panel
from perflink._sample_retail_model import NAME_ZH_FROM_EN
from perflink.catalog import check_schemes, load_catalog
from perflink.errors import PerflinkError
from perflink.io import load_inputs
from perflink.params import load_params
from perflink.sample import generate

_TABLES = ("entities", "facts", "targets", "schemes", "adjustments", "bonus")


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("planted") / "r", example="retail", seed=5).parent


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "r"
    return generate(out, example="retail", seed=5, clean=True).parent


def _truth(folder: Path) -> dict[str, dict]:
    doc = yaml.safe_load((folder / "truth.yaml").read_text(encoding="utf-8"))
    return {p["kind"]: p for p in doc["problems"]}


def _wide(folder: Path):
    inputs = load_inputs({t: folder / f"{t}.csv" for t in _TABLES})
    catalog = load_catalog(folder / "catalog")
    return inputs, catalog, panel.build(inputs.facts, inputs.entities, catalog)


def _side(catalog, text: str, wide: pd.DataFrame) -> pd.Series:
    return formula.parse(text, known=catalog.metrics.keys()).evaluate_frame(wide)


def test_same_seed_gives_identical_bytes(tmp_path: Path, planted: Path):
    again = generate(tmp_path / "again", example="retail", seed=5).parent
    assert _digest(again) == _digest(planted)
    other = generate(tmp_path / "other", example="retail", seed=6).parent
    assert _digest(other)["facts.csv"] != _digest(planted)["facts.csv"]


def test_catalog_is_its_own(planted: Path):
    catalog = load_catalog(planted / "catalog")
    sample = load_catalog(Path(__file__).parents[1] / "perflink" / "data" / "catalog")
    assert set(catalog.metrics) & set(sample.metrics) == {"headcount"}
    money = [m for m in catalog.metrics.values() if m.unit == "kUSD"]
    assert {m.id for m in money} >= {"net_sales", "operating_income", "contribution"}
    assert {u.unit for u in catalog.metrics.values()}.isdisjoint({"万元", "元/件", "件", "人"})
    # the profit is built from other profits: a formula tree two levels deep
    assert catalog.formulas["operating_income"].names == {
        "contribution",
        "fulfilment_cost",
        "admin_expense",
    }
    assert "gross_margin" in catalog.formulas["contribution"].names
    assert {1, 2, 3} == {m.tier for m in catalog.metrics.values()}


def test_inputs_and_params_load(planted: Path):
    catalog = load_catalog(planted / "catalog")
    paths = {t: planted / f"{t}.csv" for t in _TABLES}
    inputs = load_inputs(paths, known_metrics=catalog.metrics.keys())
    entities = inputs.entities
    assert (entities["kind"] == "subsidiary").sum() == 4
    assert (entities["center_type"] == "profit").sum() == 12
    # HQ functions hang directly under the group: a shallower branch than the regions'
    hq = entities[entities["entity_id"].str.startswith("HQ-")]
    assert len(hq) == 3 and set(hq["parent_id"]) == {"GRP"}
    assert entities["name_en"].notna().all()
    if NAME_ZH_FROM_EN:  # the loader still requires name_zh; English is copied into it
        assert (entities["name_zh"] == entities["name_en"]).all()
    params = load_params(planted / "params.yaml")
    assert (params.quarter, params.language) == ("2026Q3", "en")
    assert params.catalog_dir == planted / "catalog"
    # the tenure targets are the example's own data (region managers), not the sample's
    assert {t.entity_id for t in params.kpi.tenure} == set(
        entities.loc[entities["kind"] == "subsidiary", "entity_id"]
    )
    # no forecast block: the profit metric comes from the catalog's role
    assert params.forecast.for_catalog(catalog).profit_metric == catalog.role("profit")
    assert catalog.role("profit") in catalog.formulas


def test_reconciliation_rules_hold_on_clean_data(clean: Path):
    _, catalog, wide = _wide(clean)
    assert len(catalog.rules) == 5
    for rule in catalog.rules:
        ratio = (_side(catalog, rule.lhs, wide) / _side(catalog, rule.rhs, wide)).dropna()
        assert len(ratio) > 100, rule.id
        if rule.check == "approx":
            assert (ratio - 1).abs().max() <= rule.tolerance, rule.id
        else:
            assert ratio.max() <= 1 + rule.tolerance, rule.id


def test_clean_example_has_no_planted_problems(clean: Path):
    assert _truth(clean) == {}
    inputs, catalog, _ = _wide(clean)
    assert check_schemes(inputs.schemes, catalog.policy).empty
    assert inputs.adjustments.empty
    units = inputs.entities.loc[inputs.entities["kind"] == "department", "entity_id"]
    assert inputs.facts.groupby("period")["entity_id"].nunique().eq(len(units)).all()


def test_planted_problems_are_in_the_data(planted: Path):
    truth = _truth(planted)
    assert set(truth) == {
        "caliber_sales_tax",
        "returns_spike",
        "budget_miss",
        "cost_overrun",
        "known_event",
        "missing_data",
        "expense_spike",
        "scheme_violation",
        "bonus_overrun",
    }
    inputs, catalog, wide = _wide(planted)
    entities = inputs.entities
    r01 = catalog.rule("R01")
    r01_ratio = _side(catalog, r01.lhs, wide) / _side(catalog, r01.rhs, wide)

    tax = truth["caliber_sales_tax"]
    centres = entities.loc[entities["parent_id"] == tax["entity_id"], "entity_id"]
    taxed = r01_ratio[r01_ratio.index.get_level_values(0).isin(centres)].dropna()
    assert taxed.median() == pytest.approx(1.07, abs=0.01)
    others = r01_ratio[~r01_ratio.index.get_level_values(0).isin([*centres, tax["entity_id"]])]
    assert (others.dropna() - 1).abs().max() < 0.03

    spike = truth["returns_spike"]
    row = wide.loc[(spike["entity_id"], pd.Period(spike["periods"][0], "M"))]
    assert row["returns_rate"] == pytest.approx(0.32, abs=0.01)
    usual = wide.loc[spike["entity_id"], "returns_rate"].iloc[:-3]
    assert usual.max() < 0.2

    overrun = truth["cost_overrun"]
    r03 = catalog.rule("R03")
    r03_ratio = (_side(catalog, r03.lhs, wide) / _side(catalog, r03.rhs, wide)).loc[
        overrun["entity_id"]
    ]
    for p in overrun["periods"]:
        assert r03_ratio[pd.Period(p, "M")] > 1.15

    miss = truth["budget_miss"]
    traffic = wide.loc[miss["entity_id"], "store_traffic"]
    assert traffic["2026-04":"2026-09"].sum() < 0.85 * traffic["2025-04":"2025-09"].sum() * 1.1
    budget = inputs.targets[
        (inputs.targets["kind"] == "budget")
        & (inputs.targets["metric_id"] == "net_sales")
        & (inputs.targets["year"] == 2026)
        & (inputs.targets["period"] <= pd.Period("2026-09", "M"))
    ]
    ytd = inputs.facts[
        (inputs.facts["metric_id"] == "net_sales") & (inputs.facts["period"].dt.year == 2026)
    ]
    ratio = ytd.groupby("entity_id")["value"].sum() / budget.groupby("entity_id")["target"].sum()
    assert ratio[miss["entity_id"]] < 0.9
    assert ratio.drop(miss["entity_id"]).between(0.9, 1.1).all()

    event = truth["known_event"]
    adj = inputs.adjustments
    assert list(adj["entity_id"]) == [event["entity_id"]]
    assert str(adj["period"].iloc[0]) == event["periods"][0]
    assert adj["amount"].iloc[0] == pytest.approx(event["adjustment_amount"])
    assert event["entity_id"].startswith("SE-")  # hurricanes hit the Southeast

    missing = truth["missing_data"]
    have = inputs.facts[
        (inputs.facts["entity_id"] == missing["entity_id"])
        & (inputs.facts["metric_id"] == "fulfilment_on_time")
    ]
    assert missing["periods"][0] not in set(have["period"].astype(str))

    hq = truth["expense_spike"]  # under the group itself, in no region
    assert entities.set_index("entity_id").at[hq["entity_id"], "parent_id"] == "GRP"
    admin = wide.loc[hq["entity_id"], "admin_expense"]
    p = pd.Period(hq["periods"][0], "M")
    assert admin[p] > 1.5 * admin.drop(p).tail(12).median()

    violations = check_schemes(inputs.schemes, catalog.policy)
    assert set(violations["entity_id"]) == {truth["scheme_violation"]["entity_id"]}

    region = truth["bonus_overrun"]["entity_id"]
    bonus = inputs.bonus
    members = entities.loc[entities["parent_id"] == region, "entity_id"]
    base = bonus.loc[bonus["entity_id"].isin(members), "base_bonus"].sum()
    assert bonus.loc[bonus["entity_id"] == region, "pool_budget"].iloc[0] < base


def test_operating_income_adds_up_at_the_group(clean: Path):
    _, _, wide = _wide(clean)
    g = wide.loc["GRP"]
    flows = (
        g["net_sales"]
        - g["cost_of_sales"]
        - g["store_opex"]
        - g["marketing_spend"]
        - g["fulfilment_cost"]
        - g["admin_expense"]
    )
    np.testing.assert_allclose(g["operating_income"], flows, rtol=1e-9)
    margin = (g["operating_income"] / g["net_sales"]).mean()
    assert 0.02 < margin < 0.12  # a plausible specialty retailer, not a loss-maker


def test_rejects_bad_arguments(tmp_path: Path):
    with pytest.raises(PerflinkError, match="--example 'bakery'"):
        generate(tmp_path / "x", example="bakery")
    with pytest.raises(PerflinkError, match="fixed shape"):
        generate(tmp_path / "x", example="retail", entities=60)
    with pytest.raises(PerflinkError, match="fixed shape"):
        generate(tmp_path / "x", example="retail", raw=True)
    with pytest.raises(PerflinkError, match="--months 5"):
        generate(tmp_path / "x", example="retail", months=5)
    with pytest.raises(PerflinkError, match="--end"):
        generate(tmp_path / "x", example="retail", end="2026Q3")
    assert not (tmp_path / "x").exists()


def test_command_line_writes_the_example(tmp_path: Path, planted: Path, capsys):
    from perflink.cli import main

    assert main(["sample-data", "--example", "retail", "--seed", "5", str(tmp_path / "r")]) == 0
    assert _digest(tmp_path / "r") == _digest(planted)
    assert main(["sample-data", "--example", "retail", "--raw", str(tmp_path / "x")]) == 2
    assert "fixed shape" in capsys.readouterr().err


# ---------------------------------------------------------------- the review, end to end
# Issue 14, "done when": the retail example reviews with nothing set beyond its generated
# params, every task page has content and amounts show in US dollars in both languages.

TASK_PAGES = ("mapping", "kpi", "forecast", "anomaly", "summary")
#: What a page of a kUSD company says about money, per report language; and what it never says.
USD_WORD = {"en": "USD", "zh": "美元"}
FOREIGN_UNITS = ("万元", "CNY")


@pytest.fixture(scope="module", params=["en", "zh"])
def retail_review(request, tmp_path_factory):
    """The retail example, generated and reviewed by ``perflink review`` as written (en: its
    params' language; zh: ``--language zh``)."""
    from perflink.runner import run_review

    root = tmp_path_factory.mktemp(f"retail_review_{request.param}")
    params = generate(root / "r", example="retail")
    result = run_review(params, out_dir=root / "reports", jobs=2, language=request.param)
    return request.param, params, result


def _svg_charts(page: str) -> list[str]:
    """Each chart of a page drawn as SVG: pages hold Vega-Lite specs the browser draws."""
    import json

    import vl_convert

    specs = re.findall(r'<script[^>]* id="pl-chart-spec-\d+"[^>]*>(.*?)</script>', page)
    return [_XML_PROLOG.sub("", vl_convert.vegalite_to_svg(json.loads(s))) for s in specs]


_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>\s*")


def _drawn(svg: str) -> bool:
    """An SVG chart draws something: a mark group (vega's ``role-mark``) with an element."""
    root = ElementTree.fromstring(svg)
    return any("role-mark" in (el.get("class") or "") and len(el) > 0 for el in root.iter())


def _chart_texts(svg: str) -> list[str]:
    return [t.strip() for t in ElementTree.fromstring(svg).itertext() if t.strip()]


def _empty_tables(page: str) -> list[str]:
    """Headers of every HTML table without a row (a heading promising what is not there)."""
    out = []
    for table in re.findall(r'<table class="pl-table[^"]*"[^>]*>.*?</table>', page, flags=re.S):
        body = re.search(r"<tbody>(.*?)</tbody>", table, flags=re.S)
        if body is None or "<tr" not in body.group(1):
            out.append(re.sub(r"<[^>]+>", " ", table)[:150])
    return out


def test_retail_params_set_no_option_block(tmp_path: Path):
    # the review must run on the catalog-derived defaults, not on workaround blocks
    params = yaml.safe_load(generate(tmp_path / "r", example="retail").read_text(encoding="utf-8"))
    assert not {"forecast", "summary", "anomaly"} & set(params), sorted(params)


@pytest.mark.slow
@pytest.mark.kernel
def test_retail_review_publishes_every_task(retail_review):
    lang, _, result = retail_review
    assert result.status == "ok"
    assert [t.status for t in result.tasks] == ["ok"] * len(TASK_PAGES)
    pages = {p.stem for p in result.report_dir.glob("*.html")}
    assert set(TASK_PAGES) <= pages, sorted(pages)
    assert f'lang="{"zh-CN" if lang == "zh" else "en"}"' in (
        result.report_dir / "index.html"
    ).read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.parametrize("task", TASK_PAGES)
def test_retail_task_page_has_content(retail_review, task):
    lang, _, result = retail_review
    page = (result.report_dir / f"{task}.html").read_text(encoding="utf-8")
    charts = _svg_charts(page)
    empty_label = {"en": "No data", "zh": "无数据"}[lang]
    problems = [
        f"chart {i + 1} draws nothing (texts: {_chart_texts(svg)[:4]})"
        for i, svg in enumerate(charts)
        if not _drawn(svg)
    ] + [
        f"chart {i + 1} says only {empty_label!r}, not why there is nothing to draw"
        for i, svg in enumerate(charts)
        if _chart_texts(svg) == [empty_label]
    ]
    problems += [f"table without a row: {head!r}" for head in _empty_tables(page)]
    assert charts, f"{task}.html ({lang}) shows no chart"
    assert "<table" in page, f"{task}.html ({lang}) shows no table"
    assert not problems, f"{task}.html ({lang}):\n" + "\n".join(problems)


@pytest.mark.slow
@pytest.mark.kernel
def test_retail_amounts_are_in_usd(retail_review):
    lang, _, result = retail_review
    folder = result.report_dir
    found, without_usd = [], []
    for task in TASK_PAGES:
        page = (folder / f"{task}.html").read_text(encoding="utf-8")
        for word in FOREIGN_UNITS:
            for m in re.finditer(re.escape(word), page):
                context = re.sub(r"<[^>]+>", " ", page[max(0, m.start() - 80) : m.end() + 40])
                found.append(f"{task}.html: {word!r} in {' '.join(context.split())!r}")
        if USD_WORD[lang] not in page:
            without_usd.append(task)
    for book in sorted(folder.glob("*.xlsx")):
        wb = openpyxl.load_workbook(book, read_only=True)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for cell in row:
                    text = f"{cell.value} {getattr(cell, 'number_format', '')}"
                    found += [
                        f"{book.name}!{ws.title}!{cell.coordinate}: {word!r} in {text[:80]!r}"
                        for word in FOREIGN_UNITS
                        if word in text
                    ]
    assert not found, f"{len(found)} amounts in another currency ({lang}):\n" + "\n".join(
        found[:40]
    )
    # every task page states an amount somewhere (money at stake, budgets, bonuses, slips)
    assert not without_usd, (
        f"no {USD_WORD[lang]!r} on the {', '.join(without_usd)} page(s) ({lang})"
    )
