"""Scorecards, scoring rules at their bounds, scheme checks, bonus pools, notebook run."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import perflink
import perflink.kpi as kpi
import perflink.scoring as scoring
from perflink.catalog import load_catalog
from perflink.errors import InputError, ParamsError, PerflinkError
from perflink.labels import column_label
from perflink.options import KpiOptions
from perflink.sample import generate
from perflink.scoring._result import _sheet
from perflink.scoring._rules import parse_params, score

CATALOG = load_catalog(Path(perflink.__file__).parent / "data" / "catalog")
SEEDS = (0, 1, 2)
NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "02_kpi_decomposition.ipynb"


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("scoring_samples")
    out = {}
    for name, seed, clean in [*((f"s{s}", s, False) for s in SEEDS), ("clean", 0, True)]:
        params = generate(root / name, seed=seed, clean=clean)
        review = perflink.open_review(params, language="en")
        dec = kpi.decompose_review(review)
        sc = scoring.score_review(review, dec)
        truth = yaml.safe_load((root / name / "truth.yaml").read_text(encoding="utf-8"))
        out[name] = (params, review, sc, truth["problems"])
        out[f"{name}_managers"] = scoring.assess_managers_review(review, sc)
        out[f"{name}_dec"] = dec
    return out


@settings(max_examples=200, deadline=None)
@given(
    c=st.floats(-5, 5, allow_nan=False),
    floor=st.floats(0, 1),
    cap=st.floats(0.5, 2),
    rule=st.sampled_from(["linear", "step", "threshold"]),
)
def test_scores_stay_within_bounds(c, floor, cap, rule):
    params = {
        "linear": {},
        "step": {"steps": [[0.8, 60], [0.9, 80], [1.0, 100], [1.1, 130]]},
        "threshold": {"threshold": 0.98, "pass": 150, "fail": 60},
    }[rule]
    s = score(c, rule, floor, cap, params)
    assert 0.0 <= s <= cap * 100 + 1e-9


def test_rules_at_their_bounds():
    assert score(0.59, "linear", 0.6, 1.2, {}) == 0.0
    assert score(0.6, "linear", 0.6, 1.2, {}) == pytest.approx(60.0)
    assert score(1.5, "linear", 0.6, 1.2, {}) == pytest.approx(120.0)
    steps = {"steps": [[0.8, 60], [0.9, 80], [1.0, 100], [1.1, 110]]}
    assert score(0.79, "step", 0, 1.2, steps) == 0.0
    assert score(0.9, "step", 0, 1.2, steps) == 80.0
    assert score(2.0, "step", 0, 1.2, steps) == 110.0
    th = {"threshold": 0.98, "pass": 100, "fail": 60}
    assert score(0.98, "threshold", 0, 1.0, th) == 100.0
    assert score(0.97, "threshold", 0, 1.0, th) == 60.0
    assert np.isnan(score(float("nan"), "linear", 0.6, 1.2, {}))


def test_bad_rule_params_raise():
    with pytest.raises(InputError, match="steps"):
        parse_params(json.dumps({"x": 1}), rule="step", where="schemes.csv row 3")
    with pytest.raises(InputError, match="JSON"):
        parse_params("{bad", rule="linear", where="schemes.csv row 3")
    with pytest.raises(InputError, match="unknown"):
        parse_params("{}", rule="bogus", where="schemes.csv row 3")


def test_coefficient_steps():
    got = scoring.coefficient(
        np.array([10, 60, 79.9, 95, 120, np.nan]), CATALOG.policy.bonus_coefficient
    )
    np.testing.assert_allclose(got, [0, 0.6, 0.6, 1.0, 1.2, np.nan])


def test_scorecard_without_panels_raises(samples):
    _, review, sc, _ = samples["s0"]
    dec = kpi.DecompositionResult(
        quarter="2026Q3",
        language="en",
        attribution=pd.DataFrame(),
        tier1=pd.DataFrame(),
        tree=pd.DataFrame(),
        findings=pd.DataFrame(),
        elasticities=pd.DataFrame(),
        names={},
    )
    with pytest.raises(PerflinkError, match="panels"):
        scoring.scorecard(dec, review.schemes, review.entities, review.catalog)


def test_release_panels_lets_them_go_and_a_later_scoring_says_what_to_do(samples):
    import gc
    import weakref

    _, review, _, _ = samples["s0"]
    dec = kpi.decompose_review(review)
    scoring.score_review(review, dec)  # what the notebook scores before letting them go
    panels = weakref.ref(dec.panels)
    shown = dec.to_frame().copy(), dec.tier1.copy(), dec.findings.copy()
    assert dec.release_panels() is True and dec.panels is None
    gc.collect()
    assert panels() is None  # nothing else held them (the scores keep their own tables)
    pd.testing.assert_frame_equal(dec.to_frame(), shown[0])  # what the page shows is kept
    pd.testing.assert_frame_equal(dec.tier1, shown[1])
    pd.testing.assert_frame_equal(dec.findings, shown[2])
    assert dec.release_panels() is False
    with pytest.raises(PerflinkError, match=r"release_panels.*perflink\.kpi\.run"):
        scoring.scorecard(dec, review.schemes, review.entities, review.catalog)
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"]]
    [at] = [i for i, c in enumerate(cells) if "perflink.kpi.run(review)" in c]
    # the KPI notebook lets the panels and the inputs go as soon as its figures are made,
    # and its page reads the results only (a table read after it would load the inputs again)
    assert "decomposition.release_panels()" in cells[at] and "review.release_inputs()" in cells[at]
    later = "".join(cells[at + 1 :])
    assert not re.findall(r"review\.(?!catalog\b)\w+", later), re.findall(r"review\.\w+", later)


def test_release_attribution_keeps_the_charted_entities_and_says_where_the_rest_is(samples):
    _, review, _, _ = samples["s0"]
    dec = kpi.decompose_review(review)
    root, other = review.root_id, dec.top_level()[1]
    whole = dec.to_frame()
    charts = [dec.waterfall_frame(root), dec.waterfall_frame(root, scope="ytd")]
    assert dec.release_attribution(keep=[root]) is True
    assert set(dec.attribution["entity_id"]) == {root} and len(dec.attribution) < len(whole)
    pd.testing.assert_frame_equal(dec.waterfall_frame(root), charts[0])  # the page's charts
    pd.testing.assert_frame_equal(dec.waterfall_frame(root, scope="ytd"), charts[1])
    pd.testing.assert_frame_equal(dec.tier1, kpi.decompose_review(review).tier1)
    with pytest.raises(PerflinkError, match=r"attribution\.parquet.*perflink\.kpi\.run"):
        dec.to_frame()
    with pytest.raises(PerflinkError, match=f"waterfall of {other}"):
        dec.chart(other)
    assert dec.release_attribution(keep=[root]) is False
    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"]]
    [at] = [i for i, c in enumerate(cells) if "perflink.kpi.run(review)" in c]
    saved = cells[at].index('save_table(decomposition.to_frame(), "attribution")')
    assert saved < cells[at].index("decomposition.release_attribution(keep=[root])")
    assert "decomposition.to_frame()" not in "".join(cells[at + 1 :])


@pytest.mark.parametrize("seed", SEEDS)
def test_scheme_violation_and_bonus_overrun_flagged(samples, seed):
    _, _, sc, problems = samples[f"s{seed}"]
    f = sc.findings
    scheme = next(p for p in problems if p["kind"] == "scheme_violation")
    bonus = next(p for p in problems if p["kind"] == "bonus_overrun")
    hit = f[(f["entity_id"] == scheme["entity_id"]) & f["rule_id"].str.startswith("scheme_")]
    assert "scheme_financial_min" in set(hit["rule_id"])
    over = f[f["rule_id"] == "bonus_overrun"]
    assert list(over["entity_id"]) == [bonus["entity_id"]]
    assert (over["value"] > over["expected"]).all()


def test_clean_sample_has_no_scheme_or_bonus_findings(samples):
    _, _, sc, problems = samples["clean"]
    assert problems == []
    assert not sc.findings["rule_id"].isin(["bonus_overrun"]).any()
    assert not sc.findings["rule_id"].str.startswith("scheme_").any()


def test_scorecard_uses_override_and_adjustment_audit(samples):
    _, review, sc, problems = samples["s0"]
    scheme = next(p for p in problems if p["kind"] == "scheme_violation")
    card = sc.scorecard
    assert set(card.loc[card["entity_id"] == scheme["entity_id"], "scheme_id"]) == {
        scheme["scheme_id"]
    }
    event = next(p for p in problems if p["kind"] == "known_event")
    audit = sc.audit[sc.audit["entity_id"] == event["entity_id"]]
    assert len(audit) and (audit["weighted_after"] >= audit["weighted_before"]).all()
    scored = audit.dropna(subset=["score"])
    assert len(scored) and (scored["score"] >= scored["score_before"]).all()
    # through the formula: profit moves by the margin after tax, not by the whole amount
    profit = audit[audit["moved_id"] == review.catalog.role("profit")]
    assert len(profit) and (profit["change"] < 0.5 * event["adjustment_amount"]).all()
    rows = card[(card["entity_id"] == event["entity_id"]) & (card["metric_id"] == "revenue")]
    np.testing.assert_allclose(rows["adjustment"], event["adjustment_amount"], rtol=1e-9)
    # the message names the unit (not its id) and states the amount in the metric's unit
    unit = review.catalog.metrics[audit["metric_id"].iloc[0]].unit_info
    assert unit.is_money and (audit["message"].str.contains(unit.currency)).all()
    assert not audit["message"].str.startswith(event["entity_id"]).any()
    assert audit["message"].str.startswith(sc.names[event["entity_id"]]).all()
    assert (
        (card["score"] >= 0) & (card["score"] <= card["cap"] * 100 + 1e-9) | card["score"].isna()
    ).all()


def test_tenure_and_xlsx(samples, tmp_path):
    _, _, sc, _ = samples["s0"]
    assert set(sc.tenure["entity_id"]) == {f"S0{i}" for i in range(1, 7)}
    path = scoring.write_scorecard_xlsx(sc, tmp_path / "scorecard.xlsx")
    import openpyxl

    wb = openpyxl.load_workbook(path)
    assert {"S01", "G00"} <= set(wb.sheetnames)
    rows = list(wb["S01"].values)
    card = sc.scorecard[[_sheet(e, sc.parents) == "S01" for e in sc.scorecard["entity_id"]]]
    assert len(rows) == len(card) + 1
    assert rows[0][0] == column_label("entity_id", sc.language)
    assert rows[1][0] == card["entity_id"].iloc[0]
    assert rows[1][1] == sc.names[rows[1][0]]  # formats and words: test_workbooks.py
    assert wb["S01"].freeze_panes == "C2"
    assert "<table" in sc._repr_html_()
    sc.chart().to_dict()
    sc.bonus_chart().to_dict()


# --- middle-manager assessment -------------------------------------------------------------


def _tiny_scores(lang: str = "en") -> tuple[scoring.ScorecardResult, pd.DataFrame]:
    """Three departments and a subsidiary; weights and scores chosen to check by hand."""
    rows = [
        # D1 profit centre, compliant: financial 0.6, business 0.3, management 0.1
        ("D1", "SCH-P", "net_profit", "financial", 0.4, 90.0),
        ("D1", "SCH-P", "revenue", "financial", 0.2, 120.0),
        ("D1", "SCH-P", "new_customers", "business", 0.3, 80.0),
        ("D1", "SCH-P", "mgmt_task_completion", "management", 0.1, 100.0),
        # D2 cost centre breaking the policy: business 0.4 (< 50%), financial 0.5 (> 40%)
        ("D2", "SCH-D2", "production_cost", "financial", 0.5, 50.0),
        ("D2", "SCH-D2", "yield_rate", "business", 0.4, 60.0),
        ("D2", "SCH-D2", "mgmt_task_completion", "management", 0.1, 70.0),
        # D3 functional, one management metric without a score (missing data)
        ("D3", "SCH-F", "opex", "financial", 0.3, 100.0),
        ("D3", "SCH-F", "mgmt_task_completion", "management", 0.4, 50.0),
        ("D3", "SCH-F", "internal_satisfaction", "management", 0.3, np.nan),
        ("S1", "SCH-P", "net_profit", "financial", 1.0, 10.0),
    ]
    card = pd.DataFrame(
        rows, columns=["entity_id", "scheme_id", "metric_id", "category", "weight", "score"]
    )
    card = pd.concat([card.assign(scope="ytd"), card.assign(scope="quarter", score=100.0)])
    card.insert(1, "period", "2026Q3")
    entities = pd.DataFrame(
        {
            "entity_id": ["S1", "D1", "D2", "D3"],
            "parent_id": [None, "S1", "S1", "S1"],
            "kind": ["subsidiary", "department", "department", "department"],
            "center_type": [None, "profit", "cost", "functional"],
            "manager": ["Boss", "Ann", "Bob", "Cy"],
            "name_en": ["Sub", "Sales", "Plant", "HR"],
        }
    )
    empty = pd.DataFrame()
    tenure = pd.DataFrame(columns=["entity_id", "year"])
    sc = scoring.ScorecardResult(
        quarter="2026Q3",
        language=lang,
        scorecard=card.reset_index(drop=True),
        totals=empty,
        audit=empty,
        bonus=empty,
        tenure=tenure,
        scheme_checks=empty,
        findings=empty,
        names=dict(zip(entities["entity_id"], entities["name_en"], strict=True)),
        parents={},
    )
    return sc, entities


def test_manager_assessment_by_hand():
    sc, entities = _tiny_scores()
    res = scoring.assess_managers(sc, entities, CATALOG)
    m = res.to_frame().set_index("entity_id")
    assert sorted(m.index) == ["D1", "D2", "D3"]  # departments only, one row per manager
    # D1: financial (0.4*90 + 0.2*120) / 0.6 = 100; score 0.6*100 + 0.3*80 + 0.1*100 = 94
    np.testing.assert_allclose(m.loc["D1", ["financial_score", "business_score"]], [100, 80])
    np.testing.assert_allclose(m.loc["D1", "manager_score"], 94.0)
    assert m.loc["D1", "policy_ok"] and m.loc["D1", "severity"] == "info"
    # D2: 0.5*50 + 0.4*60 + 0.1*70 = 56 -> breach (high) whatever the score
    np.testing.assert_allclose(m.loc["D2", "manager_score"], 56.0)
    assert not m.loc["D2", "policy_ok"] and m.loc["D2", "severity"] == "high"
    assert set(m.loc["D2", "policy_breach"].split("; ")) == {"business_min", "financial_max"}
    assert "business process weight 40%, policy requires ≥ 50%" in m.loc["D2", "message"]
    # D3: the unscored metric leaves its weight inside management: 0.3*100 + 0.7*50 = 65
    np.testing.assert_allclose(m.loc["D3", ["management_weight", "management_score"]], [0.7, 50])
    np.testing.assert_allclose(m.loc["D3", "manager_score"], 65.0)
    assert m.loc["D3", "severity"] == "low" and m.loc["D3", "policy_ok"]
    assert "manager Cy" in m.loc["D3", "message"] and "manager score 65;" in m.loc["D3", "message"]
    assert list(res.to_frame()["entity_id"]) == ["D2", "D3", "D1"]  # lowest score first
    res.chart().to_dict()
    assert "Sales" in res._repr_html_()


def test_manager_assessment_options_and_language():
    sc, entities = _tiny_scores(lang="zh")
    opts = KpiOptions(manager_scope="quarter", manager_warn_score=101.0)
    m = scoring.assess_managers(sc, entities, CATALOG, options=opts).to_frame()
    assert (m["scope"] == "quarter").all()
    np.testing.assert_allclose(m["manager_score"], 100.0)
    assert m.set_index("entity_id").loc["D1", "severity"] == "low"
    assert "业务流程" in m["message"].iloc[0] and "综合 100.0 分" in m["message"].iloc[0]


def test_manager_assessment_bad_input_raises():
    sc, entities = _tiny_scores()
    with pytest.raises(PerflinkError, match="manager"):
        scoring.assess_managers(sc, entities.drop(columns=["manager"]), CATALOG)
    sc2 = scoring.ScorecardResult(**{**sc.__dict__, "scorecard": sc.scorecard.iloc[0:0]})
    with pytest.raises(PerflinkError, match="scope 'ytd'"):
        scoring.assess_managers(sc2, entities, CATALOG)


@pytest.mark.parametrize("name", ["s0", "s1", "s2", "clean"])
def test_manager_assessment_on_sample(samples, name):
    params, review, sc, problems = samples[name]
    m = samples[f"{name}_managers"].to_frame()
    deps = review.entities[review.entities["kind"] == "department"]
    assert sorted(m["entity_id"]) == sorted(deps["entity_id"])
    assert m["entity_id"].is_unique and m["message"].str.len().gt(40).all()
    breaches = set(m.loc[~m["policy_ok"], "entity_id"])
    violation = [p for p in problems if p["kind"] == "scheme_violation"]
    assert breaches == {p["entity_id"] for p in violation}  # clean: none
    for p in violation:
        row = m[m["entity_id"] == p["entity_id"]].iloc[0]
        assert "financial_min" in row["policy_breach"] and row["severity"] == "high"
    # with every metric scored, the manager score is the unit's YTD total score
    tot = sc.totals[sc.totals["scope"] == "ytd"].set_index("entity_id")["score"]
    card = sc.scorecard[sc.scorecard["scope"] == "ytd"]
    full = card.groupby("entity_id")["score"].count() == card.groupby("entity_id").size()
    ok = m[m["entity_id"].map(full).fillna(False).astype(bool)]
    np.testing.assert_allclose(ok["manager_score"], ok["entity_id"].map(tot), rtol=1e-9)
    weights = m[["business_weight", "financial_weight", "management_weight"]].sum(axis=1)
    np.testing.assert_allclose(weights, 1.0)


# --- executives: tenure targets ---------------------------------------------------------------


def test_tenure_targets_by_hand():
    from perflink.options import KpiTenureTarget
    from perflink.scoring._exec import annual_targets, flow_degree

    item = KpiTenureTarget(
        entity_id="S1", metric_id="eva", start_year=2024, end_year=2026, annual_growth=0.1
    )
    # a loss of 100 must shrink: -90, -79, -66.9 (base + |base| x ((1.1)^k - 1))
    np.testing.assert_allclose(annual_targets(item, -100.0, 3), [-90.0, -79.0, -66.9])
    np.testing.assert_allclose(annual_targets(item, 100.0, 3), [110.0, 121.0, 133.1])
    roe = item.model_copy(update={"metric_id": "roe", "annual_growth": None, "annual_change": 0.01})
    np.testing.assert_allclose(annual_targets(roe, 0.1, 3), [0.11, 0.12, 0.13])
    assert [flow_degree(m, CATALOG) for m in ("eva", "net_profit", "roe")] == [1, 1, 1]
    assert [flow_degree(m, CATALOG) for m in ("cost_ratio", "yield_rate")] == [0, 0]
    with pytest.raises(ValueError, match="one per year"):
        KpiTenureTarget(
            entity_id="S1", metric_id="eva", start_year=2024, end_year=2026, annual_targets=(1,)
        )


def test_tenure_covers_eva_roe_and_plan(samples):
    _, review, sc, _ = samples["s0"]
    ten = sc.tenure
    assert set(ten["metric_id"]) == {"net_profit", "eva", "roe"}
    assert set(ten["year"]) == {2024, 2025, 2026}
    cur = ten[ten["year"] == 2026]
    assert (cur["months"] == 9).all() and ten["plan"].notna().all()
    # the unfinished year's target of a pro-rata metric is 9/12 of the annual target
    from perflink.scoring._exec import annual_targets

    item = next(t for t in review.params.kpi.tenure if t.metric_id == "eva")
    prev = ten[(ten["entity_id"] == item.entity_id) & (ten["metric_id"] == "eva")]
    panels = samples["s0_dec"].panels
    base = panels.window(panels.actual, review.catalog, "2023-01", "2023-12").at[
        item.entity_id, "eva"
    ]
    expect = annual_targets(item, base, 3)
    np.testing.assert_allclose(prev["annual_target"], [expect[0], expect[1], expect[2] * 0.75])
    execs = samples["s0_managers"].executives
    assert set(execs["year"]) == {2026} and execs["message"].str.contains("EVA").any()


def test_tier1_view_shows_names_not_codes(samples):
    dec = samples["s0_dec"]
    view = dec.tier1_view()
    assert "net_profit" not in set(view["metric_name"])
    assert "Net profit" in set(view["metric_name"])
    assert set(view["scope"]) == {"quarter", "year to date"}
    assert "G00" not in set(view["entity_name"])
    assert "net_profit" not in dec._repr_html_()


# --- issue 14: company data, money in the catalog's unit, adjusted targets ----------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_tenure_targets_say_so_in_one_sentence(lang):
    from html import escape

    from perflink.labels import t

    sc, entities = _tiny_scores(lang)
    assert sc.tenure_declared == 0
    res = scoring.assess_managers(sc, entities, CATALOG)
    html = res._repr_html_()
    sentence = t("scoring.managers.no_tenure", lang)
    assert escape(sentence) in html
    # it says where to add them in words: no params key or file name on a page (issue 19)
    assert "kpi.tenure" not in sentence and "params-reference" not in sentence
    after = html.split(escape(t("scoring.managers.executives", lang)))[1]
    assert "<table" not in after  # no empty table under the heading
    declared = dataclasses.replace(sc, tenure_declared=3)
    html = scoring.assess_managers(declared, entities, CATALOG)._repr_html_()
    assert escape(sentence) not in html
    assert escape(t("scoring.managers.tenure_not_this_year", lang, n=3, year=2026)) in html


def test_tenure_entry_the_data_lacks_raises(samples):
    from perflink.options import KpiTenureTarget

    _, review, _, _ = samples["s0"]
    dec = samples["s0_dec"]
    good = review.params.kpi.tenure[0]
    for bad, match in (
        (good.model_copy(update={"entity_id": "NOPE"}), r"kpi.tenure\[1\]: entity_id 'NOPE'"),
        (good.model_copy(update={"metric_id": "nope"}), r"kpi.tenure\[1\]: metric_id 'nope'"),
    ):
        opts = KpiOptions(tenure=(good, bad))
        with pytest.raises(ParamsError, match=match):
            scoring.scorecard(dec, review.schemes, review.entities, review.catalog, options=opts)
    assert isinstance(good, KpiTenureTarget)


def test_scorecard_view_shows_original_target_and_reason_only_with_changes(samples):
    _, review, sc, _ = samples["s0"]
    changes = review.params.kpi.environment_changes
    assert changes and len(sc.target_changes) == len(changes)
    view = sc.scorecard_view()
    cols = list(view.columns)
    assert cols.index("target_original") == cols.index("target") + 1
    assert cols.index("target_reason") == cols.index("target_original") + 1
    moved = ~np.isclose(view["target"], view["target_original"], equal_nan=True)
    assert moved.any()
    assert (view.loc[moved, "target_reason"] == changes[0].reason).all()
    assert (view.loc[~moved, "target_reason"] == "").all()
    plain = dataclasses.replace(sc, target_changes=pd.DataFrame())
    assert "target_original" not in plain.scorecard_view()
    assert "target_reason" not in plain.scorecard_view()
    assert "target_original" in sc.to_frame()  # the saved table keeps both versions


def _usd_scores(lang: str) -> scoring.ScorecardResult:
    sc, _ = _tiny_scores(lang)
    bonus = pd.DataFrame(
        {
            "entity_id": ["D1", "S1"],
            "year": [2026, 2026],
            "kind": ["unit", "pool"],
            "base_bonus": [2.69, np.nan],
            "score": [100.0, np.nan],
            "coefficient": [1.0, np.nan],
            "bonus": [2.69, np.nan],
            "pool_budget": [np.nan, 2.0],
            "payout": [np.nan, 2.69],
            "overrun": [np.nan, 0.69],
            "overrun_pct": [np.nan, 0.345],
        }
    )
    return dataclasses.replace(sc, bonus=bonus, money_unit="kUSD")


@pytest.mark.parametrize(
    ("lang", "word", "header"), [("zh", "美元", "奖金（千美元）"), ("en", "USD", "Bonus (USD k)")]
)
def test_bonus_money_in_the_catalog_currency(lang, word, header):
    from types import SimpleNamespace

    from perflink.scoring._tenure import findings_table

    sc = _usd_scores(lang)
    view = sc.bonus_view()
    assert header in view.columns
    assert not any("万元" in c or "CNY" in c for c in view.columns)
    spec = json.dumps(sc.bonus_chart().to_dict(), ensure_ascii=False)
    assert "CNY" not in spec and "万元" not in spec and word in spec
    dec = SimpleNamespace(names={"S1": "Sub"}, findings=pd.DataFrame(columns=["completion"]))
    checks = pd.DataFrame(columns=["entity_id", "rule_id", "severity", "message", "scheme_id"])
    found = findings_table(
        checks,
        sc.bonus,
        dec,
        pd.DataFrame({"entity_id": ["S1"], "parent_id": [None]}),
        pd.Period("2026Q3", "Q"),
        lang,
        "kUSD",
    )
    msg = found.loc[found["rule_id"] == "bonus_overrun", "message"].iloc[0]
    assert word in msg and "万元" not in msg and "CNY" not in msg
    assert ("2,690 美元" if lang == "zh" else "USD 2.7 k") in msg


def test_bonus_headers_without_a_money_unit_stay_plain():
    sc = dataclasses.replace(_usd_scores("en"), money_unit=None)
    assert list(sc.bonus_view().columns) == list(sc.bonus.columns)
    sc.bonus_chart().to_dict()


def test_policy_text_comes_from_the_catalog_policy():
    sc, entities = _tiny_scores("en")
    res = scoring.assess_managers(sc, entities, CATALOG)
    text = res.policy_text()
    bound = CATALOG.policy.constraints["profit"]["financial"].min
    assert f"financial ≥ {bound:.0%}" in text
    constraints = {"profit": {"financial": {"min": 0.65}}}
    strict = type(CATALOG.policy).model_validate(
        {**CATALOG.policy.model_dump(), "constraints": constraints}
    )
    other = dataclasses.replace(res, policy=strict).policy_text()
    assert other == "Profit centre: financial ≥ 65%"
    assert dataclasses.replace(res, policy=None).policy_text() == ""


def test_page_tables_show_names_not_ids(samples):
    _, review, sc, _ = samples["s0"]
    ids = set(review.entities["entity_id"])
    for table in (sc.scorecard_view(), sc.audit, sc.bonus_view(), sc.findings, sc.chain()):
        view = sc.named(table)
        assert "entity_id" not in view and "metric_id" not in view
        assert not set(view["entity_name"]) & ids
    assert not set(sc.view()["entity_name"]) & ids
    assert "G00" not in sc._repr_html_()


def test_tenure_and_scorecard_use_the_kpi_basis_for_the_same_figure(samples):
    """issue 15 item 4: the tenure table, the scorecard and the KPI page compare a figure on
    one basis: rates in points, a planned loss by its gap, no completion outside 0-200%."""
    _, review, sc, _ = samples["s0"]
    catalog = review.catalog
    ten, card = sc.tenure, sc.scorecard
    lo, hi = perflink.kpi.COMPLETION_RANGE
    for table, cols in (
        (ten, ["completion", "plan_completion", "tenure_completion"]),
        (card, ["completion", "completion_before"]),
        (samples["s0_dec"].tier1, ["completion"]),
    ):
        for col in cols:
            c = table[col].dropna()
            assert ((c >= lo) & (c <= hi)).all(), col
    points = ten["metric_id"].map(lambda m: catalog.metrics[m].in_points)
    assert ten.loc[points, "tenure_completion"].isna().all()  # a return ratio: in points
    assert ten.loc[ten["cumulative_target"] <= 0, "tenure_completion"].isna().all()
    again = perflink.kpi.compare(
        ten["cumulative_actual"], ten["cumulative_target"], ten["metric_id"], catalog,
        status=review.params.status,
    )  # fmt: skip
    assert list(ten["status"]) == list(again["status"])
    assert set(card["status"].dropna()) <= {"met", "near_miss", "missed"}
    rows = card.dropna(subset=["score"])
    assert ((rows["score"] >= 0) & (rows["score"] <= 100 * rows["cap"] + 1e-9)).all()
