"""Scorecards, scoring rules at their bounds, scheme checks, bonus pools, notebook run."""

from __future__ import annotations

import json
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
from perflink._scoring_rules import parse_params, score
from perflink.catalog import load_catalog
from perflink.errors import InputError, PerflinkError
from perflink.sample import generate

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
    assert len(audit) and (audit["score"] >= audit["score_before"]).all()
    rows = card[(card["entity_id"] == event["entity_id"]) & (card["metric_id"] == "revenue")]
    np.testing.assert_allclose(rows["adjustment"], event["adjustment_amount"], rtol=1e-9)
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
    assert "<table" in sc._repr_html_()
    sc.chart().to_dict()
    sc.bonus_chart().to_dict()


@pytest.mark.slow
def test_notebook_runs(samples, tmp_path):
    papermill = pytest.importorskip("papermill")
    params, *_ = samples["s0"]
    tables = tmp_path / "tables"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "out.ipynb"),
        parameters=dict(params_path=str(params), language="en", tables_dir=str(tables)),
        kernel_name="python3",
        cwd=str(NOTEBOOK.parent),
    )
    for name in ("attribution", "scorecard", "bonus", "kpi_findings"):
        assert (tables / f"{name}.csv").is_file()
    assert (tmp_path / "scorecard.xlsx").is_file()
