"""Tests for perflink.mapping: each check on tiny hand-made frames, recall on the sample."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import perflink
import perflink.mapping as pm
from perflink.catalog import Catalog, Metric, MetricMapping, Rule, load_catalog
from perflink.errors import InputError, PerflinkError

CATALOG = load_catalog(Path(perflink.__file__).parent / "data" / "catalog")
Q = "2026Q3"
MONTHS = pd.period_range("2025-01", "2026-09", freq="M")


def _facts(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "value"])
    df["period"] = pd.PeriodIndex(df["period"], freq="M")
    df["source_system"] = df["metric_id"].map(lambda m: CATALOG.metrics[m].source_system)
    df["source_ref"] = df["entity_id"] + "-" + df["period"].astype(str) + "-" + df["metric_id"]
    return df


def _entities(parents: dict[str, str]) -> pd.DataFrame:
    subs = sorted(set(parents.values()))
    rows = [("G", "集团", "Group", None, "group", None)]
    rows += [(s, f"子公司{s}", f"Sub {s}", "G", "subsidiary", None) for s in subs]
    rows += [(u, f"单位{u}", f"Unit {u}", p, "department", "profit") for u, p in parents.items()]
    return pd.DataFrame(
        rows, columns=["entity_id", "name_zh", "name_en", "parent_id", "kind", "center_type"]
    )


def _sales(eid: str, *, rev_factor=None, months=MONTHS, seed=0) -> list[tuple]:
    """A sales unit whose revenue = shipped × price / 10000 (``rev_factor`` per month)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, p in enumerate(months):
        qty, price = 1000.0 + 50 * i, 2000.0
        rev = qty * price / 10000 * (rev_factor or {}).get(str(p), 1.0)
        rows += [
            (eid, str(p), "shipped_qty", qty),
            (eid, str(p), "avg_unit_price", price),
            (eid, str(p), "revenue", rev),
            (eid, str(p), "recognised_qty", qty - 1),
            (eid, str(p), "new_contract_amount", rev * rng.uniform(0.99, 1.01)),
        ]
    return rows


# ------------------------------------------------------------------ 1. catalog integrity
def test_check_catalog_on_bundled_catalog_lists_coverage_gaps_only():
    res = pm.check_catalog(CATALOG, lang="en")
    f = res.to_frame()
    assert set(f["severity"]) == {"low"}
    gaps = set(f.loc[f["check"] == "catalog_coverage", "metric_id"])
    assert {"cogs", "receivables", "cash_collected"} <= gaps
    assert "revenue" not in gaps and "opex" not in gaps  # M01-M03, M10 drive them


def test_check_catalog_finds_placeholders_units_and_unknown_metrics():
    rev = CATALOG.metrics["revenue"].model_copy(update={"owner": "TBD", "unit": "元"})
    ghost = MetricMapping(id="MX", driver="ghost", target="revenue", sign=1, lag=0, mechanism="x")
    cat = CATALOG.model_copy(
        update={
            "metrics": {**CATALOG.metrics, "revenue": rev},
            "mappings": [*CATALOG.mappings, ghost],
        }
    )
    f = pm.check_catalog(cat, lang="en").to_frame()
    assert ((f["check"] == "catalog_field") & (f["metric_id"] == "revenue")).any()
    scale = f[f["check"] == "catalog_unit"]
    assert "M01" in set(scale["rule_id"])  # 万元 contracts -> 元 revenue: ×10000 slip
    ghost_rows = f[f["rule_id"] == "MX"]
    assert list(ghost_rows["severity"]) == ["critical"] and "ghost" in ghost_rows["message"].iloc[0]


def _tiny(metrics: dict[str, str], mappings: list[tuple[str, str]]) -> Catalog:
    """A catalog of metrics id -> unit and mappings driver -> target."""
    base = dict(definition="d", caliber="c", owner="Finance", source_system="ERP")
    base |= dict(direction="higher", tier=2, category="financial")
    built = {i: Metric(id=i, name_en=i, unit=u, **base) for i, u in metrics.items()}
    links = [
        MetricMapping(id=f"M{k}", driver=d, target=t, sign=1, lag=0, mechanism="x")
        for k, (d, t) in enumerate(mappings)
    ]
    return Catalog(metrics=built, mappings=links, rules=[], policy=CATALOG.policy)


def test_check_catalog_reads_units_with_the_registry():
    units = {"sales": "kUSD", "aov": "USD/order", "rate": "ratio", "staff": "persons"}
    units |= {"cash": "USD", "cost": "千元", "fee": "万元", "distance": "furlongs"}
    mappings = [("cash", "sales"), ("rate", "sales"), ("staff", "sales"), ("cost", "fee")]
    f = pm.check_catalog(_tiny(units, mappings), lang="en").to_frame()
    unit = f[f["check"] == "catalog_unit"]
    unknown = unit[unit["severity"] == "info"]
    assert list(unknown["metric_id"]) == ["distance"] and "furlongs" in unknown["message"].iloc[0]
    scale = unit[unit["severity"] == "medium"].set_index("rule_id")
    assert sorted(scale.index) == ["M0", "M3"]  # USD vs kUSD, 千元 vs 万元; not rate or persons
    assert "by 0.001" in scale.loc["M0", "message"] and "by 0.1" in scale.loc["M3", "message"]


def test_check_catalog_rejects_non_catalog():
    with pytest.raises(PerflinkError, match="catalog must be a perflink Catalog"):
        pm.check_catalog({"metrics": {}})


# ------------------------------------------------------------------ 2. completeness
def test_check_completeness_missing_in_quarter_and_history_and_duplicates():
    rows = [
        r for r in _sales("A") if not (r[1] in ("2026-09", "2026-03") and r[2] == "avg_unit_price")
    ]
    facts = _facts(rows)
    res = pm.check_completeness(facts, _entities({"A": "S"}), CATALOG, quarter=Q, lang="en")
    f = res.to_frame().set_index("period")
    assert (
        f.loc["2026-09", "severity"] == "high" and f.loc["2026-09", "metric_id"] == "avg_unit_price"
    )
    assert f.loc["2026-03", "severity"] == "low"
    assert "CRM" in f.loc["2026-09", "message"]
    crm = res.summary.set_index("source_system").loc["CRM"]
    assert crm["expected_values"] == 6 and crm["missing"] == 1  # 2 metrics × 3 months
    raw = pd.concat([facts, facts.iloc[[0]]], ignore_index=True)
    dup = pm.check_completeness(raw, None, CATALOG, quarter=Q).to_frame()
    assert (dup["check"] == "duplicated").sum() == 1


def test_facts_without_source_ref_name_their_sources_from_the_lineage_reader():
    facts = _facts(
        _sales("A", rev_factor={"2026-08": 1.10})
        + [("B", str(p), m, 10.0) for p in MONTHS for m in ("headcount", "opex")]
    )
    facts = pd.concat([facts, facts.iloc[[5]].assign(value=99.0)], ignore_index=True)
    asked = []

    def lineage(entity_ids):
        asked.append(sorted(entity_ids))
        return facts[facts["entity_id"].isin(entity_ids)]

    bare = facts.drop(columns="source_ref")
    ents = _entities({"A": "S", "B": "S"})
    checks = (
        lambda f, **kw: pm.check_completeness(f, ents, CATALOG, quarter=Q, lang="en", **kw),
        lambda f, **kw: pm.check_rules(f, CATALOG, quarter=Q, entities=ents, lang="en", **kw),
    )
    for check in checks:
        want = check(facts).to_frame()
        got = check(bare, lineage=lineage).to_frame()
        pd.testing.assert_frame_equal(got, want)
        assert want["source_refs"].str.contains("A-20").any()  # there were refs to name
        blind = check(bare).to_frame()
        assert not blind["source_refs"].fillna("").str.contains("A-20").any()
    assert asked == [["A"], ["A"]]  # the flagged entity only, once per check


def test_check_completeness_bad_input():
    facts = _facts(_sales("A"))
    with pytest.raises(InputError, match="lacks column"):
        pm.check_completeness(facts.drop(columns="value"), None, CATALOG, quarter=Q)
    with pytest.raises(InputError, match="Period"):
        pm.check_completeness(
            facts.assign(period=facts["period"].astype(str)), None, CATALOG, quarter=Q
        )
    with pytest.raises(PerflinkError, match="expected_share"):
        pm.check_completeness(facts, None, CATALOG, quarter=Q, expected_share=0)


# ------------------------------------------------------------------ 3. reconciliation rules
def test_check_rules_breach_not_applicable_and_zero_denominator():
    facts = _facts(
        _sales("A", rev_factor={"2026-08": 1.10})
        + _sales("C", rev_factor={"2026-09": 0.0})
        + [("B", str(p), m, 10.0) for p in MONTHS for m in ("headcount", "opex")]
    )
    res = pm.check_rules(
        facts, CATALOG, quarter=Q, entities=_entities({"A": "S", "B": "S", "C": "S"}), lang="en"
    )
    f = res.to_frame()
    breach = f[(f["check"] == "rule") & (f["entity_id"] == "A")]
    assert list(breach["period"]) == ["2026-08"] and list(breach["rule_id"]) == ["R01"]
    np.testing.assert_allclose(breach["deviation"].iloc[0], 1 / 1.1 - 1)
    assert breach["severity"].iloc[0] == "high" and breach["metric_id"].iloc[0] == "revenue"
    assert "A-2026-08-revenue" in breach["source_refs"].iloc[0]
    # both sides in revenue's unit (万元): 1,950 shipped × 2,000 = 390 万元 vs 429 万元
    # the two sides named by what they are, the formula in metric names (not left/right, not code)
    msg = breach["message"].iloc[0]
    assert "shipped quantity × average selling price ÷ 10000: CNY 3.9 m; revenue: CNY 4.3 m" in msg
    assert "left" not in msg and "shipped_qty" not in msg and "R01" not in msg
    # the unit by its name, not its id (no identifiers on pages)
    assert (
        breach["message"].iloc[0].startswith("Unit A ") and "(A)" not in breach["message"].iloc[0]
    )
    # B reports none of the rules' metrics: not applicable, so no evaluation and no finding
    assert "B" not in set(res.evaluations["entity_id"]) and "B" not in set(f["entity_id"])
    # C: revenue 0 -> R01 cannot be evaluated (info, no deviation made up)
    zero = f[(f["entity_id"] == "C") & (f["rule_id"] == "R01")]
    assert list(zero["check"]) == ["rule_cannot_evaluate"] and list(zero["severity"]) == ["info"]
    assert np.isnan(zero["deviation"].iloc[0])


def test_check_rules_states_both_sides_in_the_rule_unit_of_any_company():
    # orders × average order value (USD/order) / 1000 ≈ net sales + returns (kUSD): the sides
    # are in the unit the right side's metrics share
    units = {"orders": "orders", "aov": "USD/order", "net": "kUSD", "ret": "kUSD"}
    rule = Rule(
        id="R1", name_en="Orders x AOV = gross sales", lhs="orders * aov / 1000",
        check="approx", rhs="net + ret", tolerance=0.03, severity="high", scope="month",
    )  # fmt: skip
    cat = _tiny(units, []).model_copy(update={"rules": [rule]})
    rows = [("U1", str(p), m, v) for p in MONTHS for m, v in
            (("orders", 1000.0), ("aov", 50.0), ("net", 45.0), ("ret", 2.0))]  # fmt: skip
    facts = pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "value"])
    facts["period"] = pd.PeriodIndex(facts["period"], freq="M")
    for lang, words in (("en", ": USD 50.0 k; net + ret: USD 47.0 k"), ("zh", "：5.0 万美元")):
        f = pm.check_rules(facts, cat, quarter=Q, lang=lang).to_frame()
        assert words in f.loc[f["period"] == "2026-09", "message"].iloc[0]


def test_rule_unit_of_the_bundled_rules_and_bad_input():
    assert [pm.rule_unit(r, CATALOG) for r in ("R01", "R02", "R03")] == ["万元", "件", "万元"]
    assert pm.rule_unit(CATALOG.rule("R05"), CATALOG) == "万元"
    mixed = Rule(
        id="RX", name_en="x", lhs="shipped_qty * avg_unit_price", check="approx", rhs="revenue + headcount",
        tolerance=0.1, severity="low",
    )  # fmt: skip
    assert pm.rule_unit(mixed, CATALOG) is None  # 万元 + 人: no unit can be told
    with pytest.raises(PerflinkError, match="R99"):
        pm.rule_unit("R99", CATALOG)
    with pytest.raises(PerflinkError, match="catalog must be"):
        pm.rule_unit("R01", {"rules": []})


def test_check_rules_history_breaches_are_one_level_lower():
    facts = _facts(_sales("A", rev_factor={"2026-02": 1.2}))
    f = pm.check_rules(facts, CATALOG, quarter=Q, history=9).to_frame()
    assert list(f.loc[f["check"] == "rule", "severity"]) == ["medium"]  # R01 is high
    assert pm.check_rules(facts, CATALOG, quarter=Q, history=0).to_frame().empty


def test_check_rules_drift_inside_tolerance_is_low():
    rng = np.random.default_rng(3)
    noise = {str(p): 1 + rng.normal(0, 0.004) for p in MONTHS}
    facts = _facts(_sales("A", rev_factor={**noise, "2026-08": 1.04}))
    f = pm.check_rules(facts, CATALOG, quarter=Q, lang="en").to_frame()
    assert list(f["check"]) == ["rule_drift"] and list(f["period"]) == ["2026-08"]
    assert list(f["severity"]) == ["low"] and "times its usual swing" in f["message"].iloc[0]


def test_check_rules_bad_input():
    facts = _facts(_sales("A"))
    with pytest.raises(PerflinkError, match="2026-13"):
        pm.check_rules(facts, CATALOG, quarter="2026-13")
    with pytest.raises(InputError, match="no data rows"):
        pm.check_rules(facts.iloc[:0], CATALOG, quarter=Q)


# ------------------------------------------------------------------ 4. caliber
def _caliber_facts() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    vat = {"U1": 1.13, "U2": 1.13, "U3": 1.0, "U4": 1.0}
    for k, (u, f) in enumerate(vat.items()):
        for r in _sales(u, seed=k):
            rows.append((*r[:3], r[3] * f) if r[2] == "new_contract_amount" else r)
    # U5 books revenue a month before it ships (revenue[t] = shipments × price [t + 1])
    rng = np.random.default_rng(5)
    qty = 1000 * np.exp(rng.normal(0, 0.15, len(MONTHS) + 1))
    for i, p in enumerate(MONTHS):
        rows += [
            ("U5", str(p), "shipped_qty", qty[i]),
            ("U5", str(p), "avg_unit_price", 2000.0),
            ("U5", str(p), "revenue", qty[i + 1] * 0.2),
        ]
    ents = _entities({"U1": "P1", "U2": "P1", "U3": "P2", "U4": "P2", "U5": "P3"})
    return _facts(rows), ents


def test_check_calibers_names_vat_at_parent_and_timing_shift():
    facts, ents = _caliber_facts()
    res = pm.check_calibers(facts, CATALOG, quarter=Q, entities=ents, lang="en")
    f = res.to_frame()
    cal = f[f["check"] == "caliber"]
    assert list(cal["entity_id"]) == ["P1"]  # U1/U2 are covered by their parent's finding
    assert cal["metric_id"].iloc[0] == "new_contract_amount" and cal["rule_id"].iloc[0] == "R03"
    np.testing.assert_allclose(cal["value"].iloc[0], 1.13, rtol=0.01)
    assert "13% VAT" in cal["message"].iloc[0] and cal["severity"].iloc[0] == "high"
    r = res.ratios.set_index(["entity_id", "rule_id"])
    assert not r.loc[("P2", "R03"), "systematic"]
    tim = f[f["check"] == "timing"]
    assert list(tim["entity_id"]) == ["U5"] and tim["value"].iloc[0] == 1.0
    assert tim["metric_id"].iloc[0] == "revenue" and "early" in tim["message"].iloc[0]


def test_a_practice_most_units_share_is_one_finding_at_their_parent():
    """Units flagged with the same known cause, at least two and more than half of their
    parent's units, where the parent's pooled ratio was not flagged: one high finding at the
    parent naming them, in place of theirs. Fewer, or no majority, or a parent flagged on its
    pooled figures: the units keep their own."""
    from perflink.mapping._caliber import _shared_practice, rule_factors

    rule = next(r for r in CATALOG.rules if r.id == "R03")
    factors = rule_factors(rule, CATALOG, ["new_contract_amount", "revenue"])
    vat = next(k for k, f in factors.items() if abs(f.value - 1.13) < 1e-9)
    par = {"A1": "A", "A2": "A", "A3": "A", "B1": "B", "B2": "B", "C1": "C", "C2": "C",
           "D1": "D", "D2": "D", "D3": "D", "D4": "D"}  # fmt: skip
    hit = {"A1", "A2", "B1", "C1", "C2", "D1", "D2"}

    def ratio(e):
        return dict(level="entity", entity_id=e, rule_id="R03", metric_id="new_contract_amount",
                    ratio=1.14 if e in hit else 1.0,
                    systematic=e in hit, cause=vat if e in hit else "")  # fmt: skip

    def finding(e, check="caliber"):
        return dict(entity_id=e, period="2026Q3", metric_id="new_contract_amount", rule_id="R03",
                    check=check, severity="high", message=e)  # fmt: skip

    rows = [finding(e) for e in sorted(hit)] + [finding("A3", "rule")]
    names = {e: f"Unit {e}" for e in par} | {"A": "Alpha Co."}
    _shared_practice(
        rows, [ratio(e) for e in par], rule, par, {"C"}, factors, names, CATALOG,
        months=12, period="2026Q3", lang="en",
    )  # fmt: skip
    got = {(r["entity_id"], r["check"]) for r in rows}
    # A: 2 of 3 units; B: 1 of 2; C: flagged on its pooled figures; D: 2 of 4, no majority
    assert got == {("A", "caliber"), ("A3", "rule"), ("B1", "caliber"), ("C1", "caliber"),
                   ("C2", "caliber"), ("D1", "caliber"), ("D2", "caliber")}  # fmt: skip
    a = next(r for r in rows if r["entity_id"] == "A")
    assert a["severity"] == "high" and a["value"] == pytest.approx(1.14)
    assert (
        "2 of the 3 of its units this rule checks (Unit A1, Unit A2)" in a["message"]
        and "13% VAT" in a["message"]
    )


def test_check_calibers_unit_slip_factor():
    rows = [(*r[:3], r[3] * 10000) if r[2] == "revenue" else r for r in _sales("U1")]
    res = pm.check_calibers(_facts(rows), CATALOG, quarter=Q)
    assert set(res.ratios.loc[res.ratios["systematic"], "cause"]) == {"scale10000_rhs"}


def _recaliber(text: dict[str, str]) -> Catalog:
    """The bundled catalog with every metric's caliber and definition replaced by ``text``
    (``caliber``, ``definition``): what its metrics say about taxes decides the tax causes."""
    metrics = {k: m.model_copy(update=text) for k, m in CATALOG.metrics.items()}
    return Catalog(
        metrics=metrics, mappings=CATALOG.mappings, rules=CATALOG.rules, policy=CATALOG.policy
    )


def _contract_factor_facts(factor: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for k, u in enumerate(("U1", "U2")):
        for r in _sales(u, seed=k):
            rows.append((*r[:3], r[3] * factor) if r[2] == "new_contract_amount" else r)
    return _facts(rows), _entities({"U1": "P1", "U2": "P1"})


def test_check_calibers_gives_no_vat_cause_to_a_catalog_without_vat():
    facts, ents = _caliber_facts()
    no_vat = _recaliber({"caliber": "recognised at delivery", "definition": "an amount"})
    res = pm.check_calibers(facts, no_vat, quarter=Q, entities=ents, lang="en")
    cal = res.to_frame().query("check == 'caliber'")
    assert list(cal["entity_id"]) == ["P1"] and list(cal["severity"]) == ["medium"]
    assert "VAT" not in cal["message"].iloc[0] and "no known factor" in cal["message"].iloc[0]
    assert not res.ratios["cause"].str.startswith("vat").any()
    assert "VAT" not in res.factors and "CNY vs CNY 10k" in res.factors
    # the bundled catalog says its amounts exclude VAT (不含增值税): 1.13 is a VAT cause
    vat = pm.check_calibers(facts, CATALOG, quarter=Q, entities=ents, lang="en")
    assert "13% VAT" in vat.to_frame().query("check == 'caliber'")["message"].iloc[0]
    assert "VAT factors 1.13/1.09/1.06" in vat.factors


def test_check_calibers_takes_the_tax_rate_a_caliber_states():
    facts, ents = _contract_factor_facts(1.2)
    stated = _recaliber({"caliber": "excluding 20% VAT", "definition": "an amount"})
    res = pm.check_calibers(facts, stated, quarter=Q, entities=ents, lang="zh")
    cal = res.to_frame().query("check == 'caliber'")
    assert list(cal["severity"]) == ["high"] and "含 20% 增值税" in cal["message"].iloc[0]
    assert set(res.ratios.loc[res.ratios["systematic"], "cause"]) == {"vat20"}
    # a stated rate replaces the currency's standard rates: 1.13 is no longer a known factor
    facts13, _ = _contract_factor_facts(1.13)
    res13 = pm.check_calibers(facts13, stated, quarter=Q, entities=ents, lang="en")
    assert not res13.ratios["cause"].str.startswith("vat").any()


def test_check_calibers_names_the_slipped_units_from_the_registry():
    rows = [(*r[:3], r[3] * 10000) if r[2] == "revenue" else r for r in _sales("U1")]
    for lang, words in (("en", "reported in CNY instead of CNY 10k"), ("zh", "按元而非万元填报")):
        res = pm.check_calibers(_facts(rows), CATALOG, quarter=Q, lang=lang)
        assert words in res.to_frame()["message"].iloc[0]
        assert words in " ".join(res.ratios["cause_text"])


def test_check_calibers_bad_input():
    facts, ents = _caliber_facts()
    with pytest.raises(PerflinkError, match="months must be"):
        pm.check_calibers(facts, CATALOG, quarter=Q, months=3)


# ------------------------------------------------------------------ 5. driver strength
def _driver_facts(sign: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for e in range(8):
        hc = 20 + e * 5 + np.cumsum(rng.integers(-3, 4, len(MONTHS)))
        opex = 0.5 * hc.astype(float) ** (0.8 * sign) * np.exp(rng.normal(0, 0.02, len(MONTHS)))
        ms = rng.poisson(3, len(MONTHS)).astype(float)
        cap = rng.normal(90, 20, len(MONTHS))
        for i, p in enumerate(MONTHS):
            rows += [
                (f"E{e}", str(p), "headcount", float(hc[i])),
                (f"E{e}", str(p), "opex", float(opex[i])),
                (f"E{e}", str(p), "rd_milestones", ms[i]),
                (f"E{e}", str(p), "rd_capitalised", cap[i]),
            ]
    rows += [("E0", str(p), "new_contract_amount", 100.0 + i) for i, p in enumerate(MONTHS[-5:])]
    rows += [("E0", str(p), "revenue", 90.0 + i) for i, p in enumerate(MONTHS[-5:])]
    return _facts(rows)


def _within_ols(facts: pd.DataFrame, months: int = 24) -> float:
    """Independent reference: log-log within estimator by numpy least squares."""
    w = facts[facts["metric_id"].isin(["headcount", "opex"])]
    w = w.pivot_table(index=["entity_id", "period"], columns="metric_id", values="value")
    w = np.log(w[w.index.get_level_values("period") > pd.Period("2026-09", "M") - months])
    d = w - w.groupby(level="entity_id").transform("mean")
    beta, *_ = np.linalg.lstsq(d[["headcount"]].to_numpy(), d["opex"].to_numpy(), rcond=None)
    return float(beta[0])


def test_driver_strength_confirmed_weak_and_insufficient():
    facts = _driver_facts()
    res = pm.driver_strength(facts, CATALOG, quarter=Q, lang="en")
    t = res.to_frame().set_index("mapping_id")
    assert t.loc["M10", "strength"] == "confirmed" and t.loc["M10", "transform"] == "log-log"
    np.testing.assert_allclose(t.loc["M10", "elasticity"], _within_ols(facts), rtol=1e-9)
    assert t.loc["M10", "n_obs"] == 8 * len(MONTHS) and t.loc["M10", "n_entities"] == 8
    assert t.loc["M10", "ci_low"] < 0.8 < t.loc["M10", "ci_high"]
    assert t.loc["M09", "strength"] == "weak" and t.loc["M09", "severity"] == "medium"
    # one entity, five months: insufficient data, and no number is made up
    assert t.loc["M01", "strength"] == "insufficient_data"
    assert t.loc["M01", "n_obs"] == 4 and np.isnan(t.loc["M01", "elasticity"])
    assert "too little data to estimate" in t.loc["M01", "message"]


def test_driver_strength_estimates_a_derived_target_from_its_formula():
    # opex per head is in no fact: computed per unit-month from opex / headcount, its
    # elasticity to headcount is opex's minus one (opex = 0.5 headcount^0.8)
    per_head = Metric(
        id="opex_per_head", name_en="Opex per head", definition="d", caliber="c",
        unit="万元/人", owner="Finance", source_system="derived", direction="lower", tier=3,
        category="financial", aggregation="formula", formula="opex / headcount",
    )  # fmt: skip
    link = MetricMapping(
        id="MX", driver="headcount", target="opex_per_head", sign=-1, lag=0, mechanism="x"
    )
    cat = Catalog(
        metrics={**CATALOG.metrics, "opex_per_head": per_head},
        mappings=[*CATALOG.mappings, link], rules=CATALOG.rules, policy=CATALOG.policy,
    )  # fmt: skip
    facts = _driver_facts()
    row = pm.driver_strength(facts, cat, quarter=Q, lang="en").to_frame().set_index("mapping_id")
    assert row.loc["MX", "strength"] == "confirmed"
    np.testing.assert_allclose(row.loc["MX", "elasticity"], _within_ols(facts) - 1, rtol=1e-9)


def test_months_after_the_quarter_change_no_check():
    # the checks read the facts up to the quarter's end; a later month appended (which the
    # checks must leave out) gives the same tables as facts that end with the quarter
    facts = pd.concat([_driver_facts(), _facts(_sales("S1"))], ignore_index=True)
    later = facts[facts["period"] == facts["period"].max()].assign(
        period=pd.Period("2026-10", "M"), value=lambda d: d["value"] * 5
    )
    with_later = pd.concat([facts, later], ignore_index=True)
    for check in (
        lambda f: pm.driver_strength(f, CATALOG, quarter=Q, lang="en"),
        lambda f: pm.check_rules(f, CATALOG, quarter=Q, lang="en"),
        lambda f: pm.check_calibers(f, CATALOG, quarter=Q, lang="en"),
    ):
        pd.testing.assert_frame_equal(check(with_later).to_frame(), check(facts).to_frame())
    assert (with_later["period"] > pd.Period("2026-09", "M")).any()


def test_driver_strength_wrong_sign():
    t = pm.driver_strength(_driver_facts(sign=-1.0), CATALOG, quarter=Q).to_frame()
    row = t.set_index("mapping_id").loc["M10"]
    assert row["strength"] == "wrong_sign" and row["severity"] == "high" and row["elasticity"] < 0


def _plant_facts(yield_power: float) -> pd.DataFrame:
    """Plants whose yield rises with their volume (a fuller line runs cleaner): production
    cost = volume x unit cost x yield ** ``yield_power``, the volume moving 10% a month and
    the yield 0.4%."""
    rng = np.random.default_rng(5)
    rows = []
    for e in range(8):
        z = rng.normal(0, 1, len(MONTHS) + 1)
        qty = 40_000 * np.exp(0.1 * z)
        yld = 0.95 * np.exp(0.004 * (0.8 * z + 0.6 * rng.normal(0, 1, len(z))))
        cost = qty * 0.5 * yld**yield_power * np.exp(rng.normal(0, 0.005, len(z)))
        save = rng.normal(0.02, 0.005, len(z))
        for i, p in enumerate(MONTHS):
            rows += [
                (f"P{e}", str(p), "production_qty", qty[i + 1]),
                (f"P{e}", str(p), "production_plan_qty", qty[i]),
                (f"P{e}", str(p), "yield_rate", yld[i + 1]),
                (f"P{e}", str(p), "procurement_savings_rate", save[i + 1]),
                (f"P{e}", str(p), "production_cost", cost[i + 1]),
            ]
    return _facts(rows)


def _m05(yield_power: float) -> pd.Series:
    t = pm.driver_strength(_plant_facts(yield_power), CATALOG, quarter=Q, lang="en")
    return t.to_frame().set_index("mapping_id").loc["M05"]


def test_a_wrong_sign_must_hold_with_the_targets_other_drivers():
    # a yield that does not move cost: alone against production cost it takes on the
    # volume's move (far above zero, "significant"); with the volume held fixed it shows
    # no effect, which is what the finding says (not a wrong sign, not high)
    row = _m05(0.0)
    assert row["strength"] == "inconclusive" and row["model"] == "partial"
    assert row["severity"] == "low" and row["p_value"] > 0.05
    assert "wrong sign" not in row["message"]
    # the catalog's sign found on the fuller model, and a yield that really raises cost
    # still called wrong on it
    assert _m05(-1.0)[["strength", "model"]].tolist() == ["confirmed", "partial"]
    row = _m05(3.0)
    assert row["strength"] == "wrong_sign" and row["model"] == "partial"
    assert row["severity"] == "high" and row["elasticity"] > 0


def test_driver_strength_names_the_kpi_quarterly_elasticity_beside_its_own():
    # the figure the KPI decomposition prices deviations with, by the same definition
    from perflink import kpi

    facts = _driver_facts()
    res = pm.driver_strength(facts, CATALOG, quarter=Q, lang="en")
    t = res.to_frame().set_index("mapping_id")
    k = kpi.estimate_elasticities(facts, CATALOG).set_index("mapping_id")["elasticity"]
    np.testing.assert_allclose(
        t["elasticity_quarter"].astype(float), k.reindex(t.index), rtol=1e-12, equal_nan=True
    )
    assert 0.6 < t.loc["M10", "elasticity_quarter"] < 1.0  # opex = 0.5 headcount^0.8
    page = res._repr_html_()
    assert "Monthly elasticity" in page and "used by the KPI decomposition" in page


def test_an_effect_spread_over_two_months_is_smaller_monthly_than_quarterly():
    # opex follows half this month's and half last month's headcount: the monthly elasticity
    # at lag 0 sees half the effect, the quarterly one nearly all of it (the page says why)
    rng = np.random.default_rng(3)
    rows = []
    for e in range(8):
        hc = 30.0 * np.exp(rng.normal(0, 0.1, len(MONTHS) + 1))
        opex = 0.5 * hc[1:] + 0.5 * hc[:-1]
        for i, p in enumerate(MONTHS):
            rows += [(f"E{e}", str(p), "headcount", hc[i + 1]), (f"E{e}", str(p), "opex", opex[i])]
    row = pm.driver_strength(_facts(rows), CATALOG, quarter=Q).to_frame()
    row = row.set_index("mapping_id").loc["M10"]
    assert row["elasticity"] < 0.7 < row["elasticity_quarter"]


def test_driver_strength_significant_but_slight_is_weak():
    """Capitalised R&D as noise plus a sliver of milestones: significant (p about 0.04),
    yet milestones explain 8% of its moves: below a 10% floor it is weak, and the message
    says both the p-value and how little it explains."""
    facts = _driver_facts()
    ms = facts["metric_id"] == "rd_milestones"
    cap = facts["metric_id"] == "rd_capitalised"
    extra = 5.0 * facts.loc[ms, "value"].to_numpy()
    facts.loc[cap, "value"] = facts.loc[cap, "value"].to_numpy() + extra

    def m09(**kw):
        res = pm.driver_strength(facts, CATALOG, quarter=Q, lang="en", **kw)
        return res.to_frame().set_index("mapping_id").loc["M09"]

    row = m09(min_r2=0.1)
    assert row["p_value"] < 0.05 and row["within_r2"] < 0.1
    assert row["strength"] == "weak" and row["severity"] == "medium"
    assert "significant but explains only 8%" in row["message"] and "10%" in row["message"]
    assert m09(min_r2=0.0)["strength"] == "confirmed"


def test_driver_strength_bad_input():
    with pytest.raises(PerflinkError, match="min_obs"):
        pm.driver_strength(_driver_facts(), CATALOG, quarter=Q, min_obs=2)
    with pytest.raises(PerflinkError, match="min_r2"):
        pm.driver_strength(_driver_facts(), CATALOG, quarter=Q, min_r2=1.5)


# ------------------------------------------------------------------ data quality
def test_data_quality_index_counts_missing_and_failing_values():
    rows = [
        r
        for r in _sales("A", rev_factor={"2026-08": 1.10})
        if not (r[1] == "2026-09" and r[2] == "avg_unit_price")
    ]
    facts = _facts(rows)
    comp = pm.check_completeness(facts, None, CATALOG, quarter=Q)
    rules = pm.check_rules(facts, CATALOG, quarter=Q, expected=comp.expected)
    t = pm.data_quality(comp, rules, CATALOG).to_frame().set_index("source_system")
    # CRM: 6 expected (price, contracts × 3 months), 1 missing, 1 read by the R01 breach
    np.testing.assert_allclose(t.loc["CRM", "dq_index"], 4 / 6)
    assert t.loc["CRM", "status"] == "missed" and t.loc["WMS", "failing"] == 1


def test_data_quality_bad_input():
    with pytest.raises(PerflinkError, match="check_completeness"):
        pm.data_quality(pd.DataFrame(), pd.DataFrame(), CATALOG)


# ------------------------------------------------------------------ results present
def test_results_show_themselves():
    facts, ents = _caliber_facts()
    for res in (
        pm.check_catalog(CATALOG, lang="en"),
        pm.check_completeness(facts, ents, CATALOG, quarter=Q, lang="en"),
        pm.check_rules(facts, CATALOG, quarter=Q, lang="en"),
        pm.check_calibers(facts, CATALOG, quarter=Q, entities=ents, lang="en"),
        pm.driver_strength(_driver_facts(), CATALOG, quarter=Q, lang="en"),
    ):
        assert isinstance(res.to_frame(), pd.DataFrame)
        assert res.chart().to_dict()["$schema"].startswith("https://vega.github.io")
        assert "<table" in res._repr_html_()
    html = pm.check_rules(facts, CATALOG, quarter=Q, lang="zh")._repr_html_()
    assert "检查内容" in html and "本季度违规" in html  # mapping-only headers are localised
    # the rule overview writes each rule in metric names and math signs, never as code
    assert "发货数量 × 平均销售单价 ÷ 10000 ≈ 营业收入（容差 ±5%）" in html
    assert "shipped_qty" not in html and "R01" not in html


# ------------------------------------------------------------------ the sample group
@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict:
    from perflink import sample

    out = {}
    for name, kw in {
        "s0": {"seed": 0},
        "s1": {"seed": 1},
        "s2": {"seed": 2},
        "clean": {"clean": True},
    }.items():
        folder = tmp_path_factory.mktemp(name)
        params = sample.generate(folder / "data", **kw)
        review = perflink.open_review(params, language="en")
        truth = yaml.safe_load((folder / "data" / "truth.yaml").read_text(encoding="utf-8"))
        out[name] = (pm.validate(review), truth, params)
    return out


@pytest.mark.parametrize("name", ["s0", "s1", "s2"])
def test_sample_planted_mapping_problems_are_found(samples, name):
    result, truth, _ = samples[name]
    f = result.to_frame()
    problems = [p for p in truth["problems"] if p["task"] == "mapping"]
    assert {p["kind"] for p in problems} == {
        "caliber_vat", "recognition_gap", "early_recognition", "weak_driver", "missing_data"
    }  # fmt: skip
    for p in problems:
        at = f[(f["entity_id"] == p["entity_id"]) & f["metric_id"].isin(p["metric_ids"])]
        if p["kind"] == "caliber_vat":
            hit = at[(at["check"] == "caliber") & (at["rule_id"] == p["rule_id"])]
            assert len(hit) == 1 and "13% VAT" in hit["message"].iloc[0], p
        elif p["kind"] == "recognition_gap":
            hit = at[(at["check"] == "rule") & (at["rule_id"] == "R01")]
            assert set(p["periods"]) <= set(hit["period"]), p
        elif p["kind"] == "early_recognition":
            hit = at[at["check"] == "timing"]
            assert list(hit["value"]) == [1.0], p
        elif p["kind"] == "weak_driver":
            hit = at[(at["check"] == "driver") & (at["rule_id"] == p["mapping_id"])]
            assert list(hit["severity"]) == ["medium"], p
        elif p["kind"] == "missing_data":
            hit = at[(at["check"] == "missing") & at["period"].isin(p["periods"])]
            assert list(hit["severity"]) == ["high"], p
    assert not (f["severity"] == "critical").any()


def test_clean_sample_raises_no_critical_and_few_high(samples):
    result, truth, _ = samples["clean"]
    f = result.to_frame()
    assert truth["problems"] == []
    assert (f["severity"] == "critical").sum() == 0
    assert (f["severity"] == "high").sum() <= 2  # 0 with the default seed
    assert set(result.status.to_frame()["severity"]) <= {"none", "low"}
    assert set(result.quality.to_frame()["status"]) == {"met"}


def test_validate_rejects_non_review():
    with pytest.raises(PerflinkError, match="open_review"):
        pm.validate(object())


# ------------------------------------------------------------------ the page reads in words (issue 19)
def _chart_rows(chart) -> list[dict]:
    spec = chart.to_dict()
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


def test_heatmap_shows_every_month_of_the_window_and_low_is_not_green():
    # breaches in 2025-11 (before the quarter: low) and 2026-08 only; the months between
    # have none and must still show, as "no breach" cells
    facts = _facts(_sales("A", rev_factor={"2026-08": 1.1, "2025-11": 1.1}))
    ents = _entities({"A": "S1"})
    res = pm.check_rules(facts, CATALOG, quarter=Q, entities=ents, history=9, lang="zh")
    assert res.months() == [str(p) for p in pd.period_range("2025-10", "2026-09", freq="M")]
    chart = res.chart()
    rows = _chart_rows(chart)
    assert sorted({r["period"] for r in rows}) == res.months()  # 2026-05 and every month
    by_month = {r["period"]: r for r in rows}
    assert by_month["2026-05"]["n"] == 0 and by_month["2026-05"]["worst"] == "无违规"
    assert by_month["2026-08"]["worst"] == "高" and by_month["2025-11"]["worst"] == "中"
    assert {r["unit"] for r in rows} == {"单位A"}  # names, not ids
    color = chart.to_dict()["encoding"]["color"]
    colours = dict(zip(color["scale"]["domain"], color["scale"]["range"], strict=True))
    green = {"#2e7d32", "#7cb342", "#4caf50", "#388e3c", "#43a047", "#66bb6a"}
    assert colours["低"] not in green and colours["低"] != colours["无违规"]
    assert color["legend"]["labelLimit"] == 0  # legend words are never cut ("关系弱")
    tips = chart.to_dict()["encoding"]["tooltip"]
    assert all("title" in tip for tip in tips)  # no field names such as entity_id in tooltips


def test_driver_table_and_messages_are_words_not_code():
    res = pm.driver_strength(_driver_facts(), CATALOG, quarter=Q, lang="en")
    view = res.view()
    assert not {"mapping_id", "p_value", "ci_low", "ci_high"} & set(view.columns)
    html = res._repr_html_()
    shown = re.sub(r"<[^>]+>", " ", html)  # the visible text (not the tags' attributes)
    for code in ("mapping_id", "n_obs", "within_r2", "p_value", "M01", "e-"):
        assert code not in shown, code
    assert "p &lt; 0.001" in shown and "Monthly elasticity" in shown and "Obs" in shown
    lag1 = res.table[res.table["lag"] == 1]
    assert len(lag1) and all("(lag 1 month)" in m for m in lag1["message"])
    assert "lag 1 months" not in " ".join(res.table["message"])
    assert all(not m.startswith("mapping") for m in res.table["message"])  # no id first
    tips = res.chart().to_dict()["layer"][1]["encoding"]["tooltip"]
    assert [tip["title"] for tip in tips][:2] == ["Mapping", "Monthly elasticity"]
    from perflink.mapping._common import lag_text, p_text

    assert p_text(7.43e-19, "en") == "p < 0.001" and p_text(0.0042, "zh") == "p = 0.004"
    assert [lag_text(n, "en") for n in (0, 1, 2)] == ["same month", "lag 1 month", "lag 2 months"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_sample_findings_read_in_words(samples, lang):
    from browser_utils import find_identifiers

    _, _, params = samples["s0"]
    result = pm.run(perflink.open_review(params, language=lang))
    texts = list(result.to_frame()["message"])
    texts += list(result.rules.overview["test"]) + list(result.calibers.ratios["cause_text"])
    joined = "\n".join(texts)
    for code in ("mappings.yaml", "metrics.yaml", "sum(", "lag(", "_qty", " * ", "R01", "M09"):
        assert code not in joined, code
    if lang == "zh":
        assert find_identifiers(joined) == []
        assert "左侧" not in joined and "右侧" not in joined
        assert "近 12 个月新签合同额合计" in joined and "发货数量 × 平均销售单价 ÷ 10000" in joined
        assert "请数据负责人补充驱动因素映射" in joined
    else:
        for bad in (
            "caliber",
            "left side",
            "right side",
            "(s)",
            "lag 1 months",
            "left ",
            " right ",
        ):
            assert bad not in joined, bad
        assert "sum of new contract amount over 12 months" in joined
    # headers of the tables a page shows are words
    pages = [result._repr_html_(), result.quality._repr_html_(), result.top(10)._repr_html_(),
             result.rules._repr_html_(), result.calibers._repr_html_(),
             result.drivers._repr_html_()]  # fmt: skip
    heads = re.findall(r"<th\b[^>]*>(.*?)</th>", "".join(pages))
    assert heads and not [h for h in heads if "_" in h or re.fullmatch(r"[a-z][a-z0-9]*", h)]


def test_top_lists_the_most_severe_findings_of_a_part():
    facts, ents = _caliber_facts()
    rules = pm.check_rules(facts, CATALOG, quarter=Q, entities=ents, lang="en")
    top = rules.top(2)
    assert len(top.findings) <= 2 and top.total == int((rules.findings["severity"] != "info").sum())
    assert list(top.view().columns) == ["period", "check", "severity", "message"]
    if top.total > 2:
        assert f"{top.total - 2} more in the appendix" in top._repr_html_()
    with pytest.raises(PerflinkError, match="positive integer"):
        rules.top(0)


def test_status_lists_subsidiaries_with_findings_worst_first_not_every_one():
    from perflink.mapping import StatusResult

    n = 40  # the page must not grow with the number of subsidiaries
    table = pd.DataFrame(
        {
            "entity_id": [f"S{i}" for i in range(n)],
            "name": [f"Sub {i}" for i in range(n)],
            "units": 3,
            "findings": [0] * (n - 3) + [1, 4, 2],
            **{s: 0 for s in ("critical", "high", "medium", "low")},
            "severity": ["none"] * (n - 3) + ["low", "medium", "high"],
            "worst": [""] * (n - 3) + ["a", "b", "c"],
        }
    )
    res = StatusResult(table, "en", "G")
    assert list(res.view()["name"]) == [f"Sub {n - 1}", f"Sub {n - 2}", f"Sub {n - 3}"]
    html = res._repr_html_()
    assert "Sub 0<" not in html and f"The other {n - 3} subsidiaries" in html
    assert len(res.full().view()) == n
    assert list(StatusResult(table, "en", "G", limit=2).view()["severity"]) == ["high", "medium"]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("quarter", ["q3", "q4"], ids=["zh", "en"])
def test_sample_mapping_page_prints_short_and_in_words(
    reviewed_quarters, browser, quarter, tmp_path
):
    """The printed mapping page of the sample review: at most 10 A4 pages (it printed 27
    before the reading layer), and on the Chinese page no identifier in the visible text."""
    from browser_utils import find_identifiers, offline_page, print_page_count

    path = getattr(reviewed_quarters, quarter).report_dir / "mapping.html"
    with offline_page(browser, path, viewport=(1366, 900)) as opened:
        page = opened.page
        page.wait_for_timeout(500)
        text = page.inner_text("body")
        pages = print_page_count(page, tmp_path / "mapping.pdf")
    assert pages <= 10, f"mapping page prints to {pages} A4 pages"
    if quarter == "q3":
        assert find_identifiers(text) == []
        assert "左侧" not in text and "右侧" not in text
    else:
        assert "caliber" not in text.lower() and "lag 1 months" not in text


def test_run_counts_each_check_on_one_progress_bar(samples, task_bars):
    _, _, params = samples["s0"]
    review = perflink.open_review(params, language="en")
    task_bars.clear()
    pm.run(review)  # reads the inputs first: a step inside the checks', drawing no bar
    assert [(b.desc, b.unit, b.n, b.total) for b in task_bars if b.shown] == [
        ("mapping checks", "check", 6, 6)
    ]
