"""Tests for the panel layer of perflink.anomaly (detect_anomalies) on hand-made and sample data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from perflink import catalog as catalog_mod
from perflink.anomaly import TABLE_COLUMNS, AnomalyResult, detect_anomalies, features_of
from perflink.errors import InputError, ParamsError, PerflinkError
from perflink.options import AnomalyOptions
from perflink.review import open_review
from perflink.sample import generate

CATALOG_DIR = catalog_mod.__file__.rsplit("/", 1)[0] + "/data/catalog"
QUARTER = "2026Q3"
PERIODS = pd.period_range("2024-01", "2026-09", freq="M")


def _entities(n_sales: int = 8) -> pd.DataFrame:
    rows = [
        dict(
            entity_id="G00",
            name_zh="集团",
            name_en="Group",
            parent_id=None,
            kind="group",
            center_type=None,
            business_line="retail",
            manager="m",
        ),
        dict(
            entity_id="S01",
            name_zh="子公司",
            name_en="Sub",
            parent_id="G00",
            kind="subsidiary",
            center_type=None,
            business_line="retail",
            manager="m",
        ),
    ]
    for i in range(n_sales):
        rows.append(
            dict(
                entity_id=f"U{i:02d}",
                name_zh=f"单位{i}",
                name_en=f"Unit {i}",
                parent_id="S01",
                kind="department",
                center_type="profit",
                business_line="retail",
                manager="m",
            )
        )
    return pd.DataFrame(rows).astype({"parent_id": "str", "center_type": "str"})


def _facts(n_sales: int = 8, *, seed: int = 0, edit=None) -> pd.DataFrame:
    """Sales units: shipped_qty x avg_unit_price / 10000 = revenue (1% noise), opex ~ headcount."""
    rng = np.random.default_rng(seed)
    t = np.arange(len(PERIODS))
    season = 1 + 0.1 * np.sin(2 * np.pi * t / 12)
    out = {}
    for i in range(n_sales):
        qty = np.round(5000 * (1 + 0.1 * i) * season * np.exp(rng.normal(0, 0.03, len(t))))
        price = 1000 * (1 + 0.02 * i) * np.exp(rng.normal(0, 0.005, len(t)))
        rev = qty * price / 10000 * np.exp(rng.normal(0, 0.01, len(t)))
        head = np.full(len(t), 20.0 + i)
        opex = head * 1.2 * np.exp(rng.normal(0, 0.03, len(t)))
        out[f"U{i:02d}"] = dict(
            shipped_qty=qty, avg_unit_price=price, revenue=rev, headcount=head, opex=opex
        )
    if edit:
        edit(out)
    rows = []
    for eid, metrics in out.items():
        for metric, vals in metrics.items():
            rows.append(
                pd.DataFrame(
                    {
                        "entity_id": eid,
                        "period": PERIODS,
                        "metric_id": metric,
                        "value": vals,
                        "source_system": "X",
                        "source_ref": [f"{eid}-{p}-{metric}" for p in PERIODS],
                    }
                )
            )
    facts = pd.concat(rows, ignore_index=True)
    return facts.astype({"entity_id": "str", "metric_id": "str", "source_ref": "str"})


@pytest.fixture(scope="module")
def catalog():
    return catalog_mod.load_catalog(CATALOG_DIR)


def _run(facts, catalog, **kw):
    return detect_anomalies(facts, _entities(), catalog, quarter=QUARTER, language="en", **kw)


def test_clean_frame_has_no_findings_and_valid_columns(catalog):
    res = _run(_facts(), catalog)
    assert isinstance(res, AnomalyResult)
    assert list(res.to_frame().columns) == TABLE_COLUMNS
    assert res.stats["flags"] == len(res.table) <= 1
    assert res.stats["points"] == 8 * 5 * 3


def test_expense_spike_found_with_numbers_and_source_ref(catalog):
    def edit(d):
        d["U03"]["opex"][-2] *= 1.8  # 2026-08

    res = _run(_facts(edit=edit), catalog)
    row = res.table.iloc[0]
    assert (row["entity_id"], str(row["period"]), row["metric_id"]) == ("U03", "2026-08", "opex")
    assert row["severity"] in ("critical", "high")
    assert row["value"] > row["upper"] and row["at_stake"] == pytest.approx(
        row["value"] - row["expected"]
    )
    assert "U03-2026-08-opex" in row["source_refs"]
    assert row["message"] == row["explanation"] and "Operating expenses" in row["message"]
    assert "Headcount" in row["message"]  # what the linked driver says


def test_facts_read_without_their_lineage_name_their_sources_from_the_lineage_reader(catalog):
    def edit(d):
        d["U03"]["opex"][-2] *= 1.8  # 2026-08

    facts = _facts(edit=edit)
    asked = []

    def lineage(entity_ids):
        asked.append(sorted(entity_ids))
        return facts[facts["entity_id"].isin(entity_ids)]

    bare = facts.drop(columns="source_ref")
    got = _run(bare, catalog, lineage=lineage).table
    pd.testing.assert_frame_equal(got, _run(facts, catalog).table)
    assert "U03-2026-08-opex" in got["source_refs"].iloc[0]
    assert asked == [sorted(got["entity_id"].unique())]  # once, for the flagged entities only
    assert (_run(bare, catalog).table["source_refs"] == "").all()  # nothing to name them from


def test_revenue_off_shipments_times_price_is_a_linkage_anomaly(catalog):
    def edit(d):
        d["U05"]["revenue"][-3] *= 1.08  # 2026-07, shipments and price unchanged

    res = _run(_facts(edit=edit), catalog)
    hit = res.table[(res.table["entity_id"] == "U05") & (res.table["metric_id"] == "revenue")]
    assert len(hit) == 1 and str(hit["period"].iloc[0]) == "2026-07"
    kinds = {hit["kind"].iloc[0], *hit["also"].iloc[0].split(",")}
    assert "linkage" in kinds
    refs = hit["source_refs"].iloc[0]
    assert "U05-2026-07-shipped_qty" in refs and "U05-2026-07-avg_unit_price" in refs


def test_unit_unlike_its_peers_is_a_peer_anomaly(catalog):
    def edit(d):
        d["U02"]["headcount"][-3:] *= 1.5  # all peers flat, this unit +50% year on year

    res = _run(_facts(edit=edit), catalog)
    hit = res.table[(res.table["entity_id"] == "U02") & (res.table["metric_id"] == "headcount")]
    assert not hit.empty
    assert any("peer" in {k, *a.split(",")} for k, a in zip(hit["kind"], hit["also"], strict=True))


def test_a_unit_that_always_outgrows_its_peers_is_not_unusual_for_doing_so_again(catalog):
    """The peer check weighs a unit's year-on-year change against its peers' beyond its
    usual gap to them: 15% a year faster for three years is that unit's normal; a jump on
    top of it is flagged, and its message states the usual gap."""
    months = np.arange(len(PERIODS))

    def steady(d):
        d["U03"]["headcount"] = d["U03"]["headcount"] * 1.15 ** (months / 12)

    res = _run(_facts(edit=steady), catalog)
    peer = res.table[res.table["kind"].eq("peer") | res.table["also"].str.contains("peer")]
    assert not (peer["entity_id"] == "U03").any()

    def jump(d):
        steady(d)
        d["U03"]["headcount"][-1] *= 1.5

    res = _run(_facts(edit=jump), catalog, options=AnomalyOptions(detectors=("peer",)))
    hit = res.table[(res.table["entity_id"] == "U03") & (res.table["metric_id"] == "headcount")]
    assert list(hit["kind"]) == ["peer"]
    assert "usually runs +15.0 points from theirs" in hit["message"].iloc[0]


def test_odd_mix_of_ratios_is_multivariate(catalog):
    def edit(d):  # revenue per head and expense ratio both up: normally they move apart
        d["U04"]["revenue"][-1] *= 1.10
        d["U04"]["opex"][-1] *= 1.25

    res = _run(_facts(edit=edit), catalog, options=AnomalyOptions(detectors=("multivariate",)))
    hit = res.table[res.table["entity_id"] == "U04"]
    assert list(hit["kind"]) == ["multivariate"]
    assert hit["feature"].iloc[0] in ("opex_per_head", "revenue_per_head", "expense_ratio")


def test_known_event_is_marked_explained_not_dropped(catalog):
    def edit(d):
        d["U01"]["revenue"][-3] *= 0.65

    adj = pd.DataFrame(
        {
            "entity_id": ["U01"],
            "period": pd.PeriodIndex(["2026-07"], freq="M"),
            "metric_id": ["revenue"],
            "amount": [100.0],
            "reason": ["typhoon"],
            "approved_by": ["board"],
        }
    )
    res = _run(_facts(edit=edit), catalog, adjustments=adj)
    hit = res.table[(res.table["entity_id"] == "U01") & (res.table["metric_id"] == "revenue")]
    assert len(hit) == 1 and "typhoon" in hit["explained_by"].iloc[0]
    assert "typhoon" in hit["message"].iloc[0]
    assert res.stats["explained"] >= 1


def test_an_adjustment_no_check_flags_is_listed_once_with_its_figures(catalog):
    """Every approved adjustment the checks score is accounted for: a flagged figure says it
    is explained (one row, not two); one no check flagged gets an info row of kind
    ``adjustment``, explained by it, with the month's value against the series check's
    expected value and range, last in the ranking and not counted as a flag. Adjustments of
    months before the quarter or of a subsidiary are the KPI page's audit only."""

    def edit(d):
        d["U01"]["revenue"][-3] *= 0.65  # 2026-07: flagged

    adj = pd.DataFrame(
        {
            "entity_id": ["U01", "U02", "U03", "S01"],
            "period": pd.PeriodIndex(["2026-07", "2026-08", "2026-03", "2026-08"], freq="M"),
            "metric_id": ["revenue"] * 4,
            "amount": [100.0, 5.0, 5.0, 5.0],
            "reason": ["typhoon", "store refit", "old", "sub"],
            "approved_by": ["board"] * 4,
        }
    )
    facts = _facts(edit=edit)
    res = _run(facts, catalog, adjustments=adj)
    t = res.table
    rows = t[t["kind"] == "adjustment"]
    assert [
        (e, str(p), m) for e, p, m in rows[["entity_id", "period", "metric_id"]].to_numpy()
    ] == [("U02", "2026-08", "revenue")]
    r = rows.iloc[0]
    fact = facts[
        (facts["entity_id"] == "U02")
        & (facts["period"] == pd.Period("2026-08", "M"))
        & (facts["metric_id"] == "revenue")
    ]["value"].iloc[0]
    assert r["value"] == fact and np.isfinite([r["expected"], r["lower"], r["upper"]]).all()
    assert r["severity"] == "info" and "store refit" in r["explained_by"]
    assert "no check flagged this figure" in r["message"] and "store refit" in r["message"]
    assert r["source_refs"] == "U02-2026-08-revenue" and r["rank"] == len(t) == t["rank"].max()
    hit = t[(t["entity_id"] == "U01") & (t["metric_id"] == "revenue")]
    assert len(hit) == 1 and hit["kind"].iloc[0] != "adjustment"
    assert "typhoon" in hit["explained_by"].iloc[0]
    assert res.stats["flags"] == len(t) - 1 and res.stats["explained"] == 1
    assert res.stats["adjusted"] == 1
    assert res.counts.table["n_explained"].sum() == 2
    # without the adjustment the same figures give no such row and no note
    plain = _run(facts, catalog, adjustments=adj.iloc[:1])
    assert (plain.table["kind"] != "adjustment").all()
    assert plain.stats["adjusted"] == 0


def test_small_moves_are_immaterial(catalog):
    def edit(d):
        d["U03"]["opex"][-2] *= 1.02

    res = _run(_facts(edit=edit), catalog, options=AnomalyOptions(min_change=0.05))
    assert res.table[res.table["metric_id"] == "opex"].empty


def test_chart_counts_and_peers_present_results(catalog):
    def edit(d):
        d["U03"]["opex"][-2] *= 1.8

    res = _run(_facts(edit=edit), catalog)
    assert res.chart().to_dict()["concat"]  # one panel per series, each in its own unit
    assert not res.timelines.empty and set(res.timelines["metric_id"]) >= {"opex"}
    assert res.counts.to_frame()["n"].sum() == len(res.table)
    assert res.peers.to_frame()["is_self"].sum() >= 1
    for obj in (res, res.counts, res.peers):
        assert "<table" in obj._repr_html_()
    res.counts.chart().to_dict()
    res.peers.chart().to_dict()


def test_bad_inputs_raise_perflink_errors(catalog):
    facts = _facts()
    with pytest.raises(InputError, match="value"):
        _run(facts.drop(columns="value"), catalog)
    with pytest.raises(InputError, match="Period"):
        _run(facts.assign(period=facts["period"].astype(str)), catalog)
    with pytest.raises(InputError, match="2030Q1"):
        detect_anomalies(facts, _entities(), catalog, quarter="2030Q1")
    with pytest.raises(ParamsError, match="quarter"):
        detect_anomalies(facts, _entities(), catalog, quarter="Q5")
    with pytest.raises(ParamsError, match="detectors"):
        _run(facts, catalog, options=AnomalyOptions(detectors=("magic",)))
    with pytest.raises(InputError, match="business_line"):
        detect_anomalies(facts, _entities().drop(columns="business_line"), catalog, quarter=QUARTER)
    with pytest.raises(PerflinkError):
        detect_anomalies(facts, _entities(), catalog, quarter=QUARTER, language="fr")


# ------------------------------------------------------------------ sample-based recall
RECALLED = ("expense_spike", "yield_drop", "known_event", "recognition_gap")
TOP = 10


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("anomaly_samples")
    out = {}
    for name, kw in (
        ("s0", dict(seed=0)),
        ("s1", dict(seed=1)),
        ("s2", dict(seed=2)),
        ("clean", dict(seed=0, clean=True)),
    ):
        params = generate(root / name, **kw)
        review = open_review(params, language="en")
        res = detect_anomalies(
            review.facts,
            review.entities,
            review.catalog,
            quarter=review.quarter,
            adjustments=review.adjustments,
            options=review.params.anomaly,
            language="en",
        )
        truth = yaml.safe_load((root / name / "truth.yaml").read_text(encoding="utf-8"))
        out[name] = (res, truth, params)
    return out


@pytest.mark.parametrize("name", ["s0", "s1", "s2"])
def test_planted_anomalies_are_in_the_top_ten(samples, name):
    res, truth, _ = samples[name]
    top = res.top(TOP)
    for p in truth["problems"]:
        if p["kind"] not in RECALLED:
            continue
        hit = top[
            (top["entity_id"] == p["entity_id"])
            & top["metric_id"].isin(p["metric_ids"])
            & top["period"].astype(str).isin(p["periods"])
        ]
        if p["kind"] == "known_event":
            # explained findings rank after the unexplained ones of their severity: kept and
            # marked, wherever that puts them
            hit = res.table[
                (res.table["entity_id"] == p["entity_id"])
                & res.table["period"].astype(str).isin(p["periods"])
            ]
            assert not hit.empty and hit["explained_by"].str.contains("typhoon").all()
            continue
        assert not hit.empty, f"{name}: {p['kind']} at {p['entity_id']} not in the top {TOP}"
        if p["kind"] == "recognition_gap":
            kinds = set(hit["kind"]) | {k for a in hit["also"] for k in a.split(",") if k}
            assert "linkage" in kinds


def test_clean_sample_has_few_false_alarms(samples):
    res, truth, _ = samples["clean"]
    assert truth["problems"] == []
    assert res.stats["per_100"] <= 0.5  # flags per 100 entity-metric-months of the quarter
    assert res.stats["high"] <= 1
    assert not (res.table["severity"] == "critical").any()


@pytest.mark.parametrize("name", ["s0", "clean"])
def test_findings_say_how_rare_in_words_with_the_flag_rate(samples, name):
    res, _, params = samples[name]
    assert res.stats["flag_rate"] == 1.0
    for msg in res.table["message"]:
        assert "at this unit" in msg and "Flag rate chosen: about 1 per 100" in msg
        assert " z " not in msg and "robust z" not in msg


def test_rarity_in_chinese_and_the_years_follow_the_score(catalog):
    def edit(d):
        d["U03"]["opex"][-2] *= 1.8
        d["U06"]["opex"][-2] *= 1.3

    res = detect_anomalies(_facts(edit=edit), _entities(), catalog, quarter=QUARTER, language="zh")
    msg = res.table["message"]
    assert msg.str.contains("年才出现一次").all()
    assert msg.str.contains("每百个数据点约 1 处").all()
    opex = res.table[res.table["metric_id"] == "opex"]
    big, small = (opex[opex["entity_id"] == e] for e in ("U03", "U06"))
    assert len(big) == 1 and len(small) == 1 and big["kind"].iloc[0] == small["kind"].iloc[0]

    def years(text: str) -> float:
        import re

        m = re.search(r"约 ([\d,.]+) 年才出现一次", text)
        return float(m.group(1).replace(",", "")) if m else 1000.0

    assert years(big["message"].iloc[0]) > years(small["message"].iloc[0])


def test_a_point_two_checks_flag_at_medium_is_raised_to_high(catalog):
    def edit(d):
        d["U03"]["opex"][-2] *= 1.12  # its history, its driver and its ratios each see it

    row = _run(_facts(edit=edit), catalog).table.iloc[0]
    assert (row["entity_id"], str(row["period"]), row["metric_id"]) == ("U03", "2026-08", "opex")
    assert abs(row["score"]) < 6.0  # medium on its own score
    assert row["severity"] == "high" and row["also"]
    assert "checks flagged this point on their own" in row["message"]

    from perflink.anomaly._explain import corroborated

    rows = pd.DataFrame(
        {
            "entity_id": ["U01"] * 6 + ["U02", "U02"],
            "period": ["2026-08"] * 2 + ["2026-09"] * 2 + ["2026-07"] * 2 + ["2026-08", "2026-09"],
            "metric_id": "opex",
            "kind": ["spike", "multivariate", "spike", "level_shift", "peer", "linkage"]
            + ["spike", "linkage"],
            "severity": ["medium", "medium", "medium", "medium", "medium", "low"]
            + ["medium", "medium"],
        }
    )
    # two checks: raised; one check's two kinds, a low second flag, another month: not
    want = ["high", "high", "medium", "medium", "medium", "low", "medium", "medium"]
    assert list(corroborated(rows)) == want


def test_a_count_driver_s_linkage_scale_is_at_least_its_counting_noise(catalog):
    """A driver whose months swing as much as counting noise (new customers, about 17 a
    month) gives its linkage scale a floor of sqrt(1 / usual): a steady two years must not
    make 26 customers "once in 62 years". A headcount moving a person at a time is no such
    count: its history's scale stands. A month below the usual count widens either."""
    from perflink.anomaly._detect import _count_noise

    rng = np.random.default_rng(4)
    customers = rng.poisson(17, 30).astype(float)
    staff = 40.0 + np.cumsum(rng.integers(-1, 2, 30) * (rng.random(30) < 0.2))
    implied = np.vstack([customers, staff])
    out = _count_noise(np.array([0.05, 0.05]), implied, slice(0, 24), catalog, "new_customers")
    usual = np.median(customers[:24])
    at_or_above = customers >= usual
    np.testing.assert_allclose(out[0, at_or_above], np.sqrt(1 / usual))
    above = staff >= np.median(staff[:24])
    np.testing.assert_allclose(out[1, above], 0.05)
    # a metric that is no quantity keeps the history's scale everywhere
    same = _count_noise(np.array([0.05, 0.05]), implied, slice(0, 24), catalog, "revenue")
    np.testing.assert_array_equal(same, 0.05)


def test_small_count_month_is_not_a_critical_finding(catalog):
    rng = np.random.default_rng(2)

    def edit(d):
        counts = rng.poisson(3.0, len(PERIODS)).astype(float)
        counts[-2] = 9.0  # a month with 9 new customers where 3 are usual
        d["U01"]["new_customers"] = counts

    res = _run(_facts(edit=edit), catalog)
    hit = res.table[res.table["metric_id"] == "new_customers"]
    assert not hit["severity"].isin(["critical", "high"]).any()
    assert hit.empty or (hit["kind"] != "spike").all()

    def huge(d):
        counts = rng.poisson(3.0, len(PERIODS)).astype(float)
        counts[-2] = 150.0  # far beyond Poisson noise (z about 17): found, never critical
        d["U01"]["new_customers"] = counts

    res = _run(_facts(edit=huge), catalog)
    hit = res.table[res.table["metric_id"] == "new_customers"]
    assert len(hit) == 1 and hit["kind"].iloc[0] == "spike"
    assert hit["severity"].iloc[0] != "critical"


def test_flag_rate_option_moves_the_operating_point(catalog):
    def edit(d):
        d["U03"]["opex"][-2] *= 1.8

    facts = _facts(edit=edit)
    strict = _run(facts, catalog, options=AnomalyOptions(flag_rate=0.1))
    loose = _run(facts, catalog, options=AnomalyOptions(flag_rate=5.0))
    assert strict.stats["flags"] <= loose.stats["flags"]
    assert "0.1 per 100" in strict.table["message"].iloc[0]
    with pytest.raises(ValueError, match="flag_rate"):
        AnomalyOptions(flag_rate=0)


def test_empty_result_still_presents(catalog):
    opts = AnomalyOptions(flag_rate=1e-4, min_score=1e6, peer_z=1e6, multivariate_alpha=1e-300)
    res = _run(_facts(), catalog, options=opts)
    assert res.table.empty and res.stats["flags"] == 0
    for chart in (res.chart(), res.peers.chart(), res.counts.chart()):
        chart.to_dict()  # a note instead of marks
    assert "No anomalies found" in res._repr_html_()  # a note, not an empty table
    assert "<table" not in res._repr_html_()


# ------------------------------------------------------------------ features from the catalog
RETAIL_DIR = CATALOG_DIR.rsplit("/", 1)[0] + "/examples/retail/catalog"


def _catalog_variant(tmp_path, *, rename=None, units=None):
    """The sample catalog with metric ids renamed and/or units replaced (every YAML file)."""
    import re
    import shutil

    folder = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, folder)
    for path in folder.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for old, new in (rename or {}).items():
            text = re.sub(rf"(?<!role: )\b{old}\b", new, text)  # role names stay
        for old, new in (units or {}).items():
            text = re.sub(rf"(?m)^(\s+unit:) {re.escape(old)}$", rf"\1 {new}", text)
        path.write_text(text, encoding="utf-8")
    return catalog_mod.load_catalog(folder)


def test_features_of_the_sample_catalog(catalog):
    feats = features_of(catalog)
    # ratio metrics a / b of same-month metrics, by their catalog id
    assert (feats["cost_ratio"].numerator, feats["cost_ratio"].denominator) == ("cogs", "revenue")
    assert feats["cost_ratio"].factor == 1.0 and feats["cost_ratio"].unit == "ratio"
    # a derived numerator is recomputed from its reported flows
    assert feats["roe"].inputs == ("revenue", "cogs", "opex", "equity")
    # per head: the sales role and the money flows headcount drives; not twice what
    # profit_per_head already divides by headcount
    assert feats["revenue_per_head"].denominator == "headcount"
    assert feats["opex_per_head"].metric is None and feats["opex_per_head"].unit == "万元/人"
    assert "net_profit_per_head" not in feats
    # reported averages: rates, prices, scores
    assert {"yield_rate", "avg_unit_price", "internal_satisfaction"} <= set(feats)
    # not features: growth (another month), flows, stocks, counts
    assert not {
        "revenue_growth",
        "net_profit_growth",
        "revenue",
        "headcount",
        "new_customers",
    } & set(feats)
    assert feats["revenue_per_head"].label(catalog, "en") == "Revenue per head"
    assert feats["opex_per_head"].label(catalog, "zh") == "人均期间费用"
    assert feats["cost_ratio"].label(catalog, "en") == "Cost ratio"


def test_features_of_the_retail_catalog():
    retail = catalog_mod.load_catalog(RETAIL_DIR)
    feats = features_of(retail)
    per_unit = feats["fulfilment_cost_per_unit"]  # fulfilment_cost * 1000 / units_shipped
    assert (per_unit.numerator, per_unit.denominator, per_unit.factor) == (
        "fulfilment_cost",
        "units_shipped",
        1000.0,
    )
    assert feats["gross_margin_rate"].inputs == ("net_sales", "cost_of_sales")
    assert {"net_sales_per_head", "store_opex_per_head", "admin_expense_per_head"} <= set(feats)
    assert {"conversion_rate", "average_order_value", "service_score"} <= set(feats)
    # a ratio over a sum and a growth rate are not one flow over another
    assert "returns_rate" not in feats and "sales_growth" not in feats
    assert not {"cost_ratio", "revenue_per_head", "yield_rate"} & set(feats)


def test_renamed_catalog_gives_renamed_features_and_the_same_findings(catalog, tmp_path):
    rename = {
        "revenue": "turnover",
        "cogs": "cost_of_goods",
        "opex": "overheads",
        "headcount": "staff",
        "cost_ratio": "cogs_share",
        "avg_unit_price": "mean_price",
        "shipped_qty": "units_out",
    }
    renamed = _catalog_variant(tmp_path, rename=rename)
    old, new = features_of(catalog), features_of(renamed)
    names = {rename.get(n, n) for n in old}
    names = {n.replace("revenue_per_head", "turnover_per_head") for n in names}
    names = {n.replace("opex_per_head", "overheads_per_head") for n in names}
    assert set(new) == names
    assert (new["cogs_share"].numerator, new["cogs_share"].denominator) == (
        "cost_of_goods",
        "turnover",
    )

    def edit(d):  # an odd mix of ratios at one unit
        d["U04"]["revenue"][-1] *= 1.10
        d["U04"]["opex"][-1] *= 1.25

    facts = _facts(edit=edit)
    opts = AnomalyOptions(detectors=("multivariate",))
    a = _run(facts, catalog, options=opts).table
    b = _run(
        facts.assign(metric_id=facts["metric_id"].replace(rename)), renamed, options=opts
    ).table
    assert len(a) == len(b) >= 1
    assert list(b["metric_id"]) == [rename.get(m, m) for m in a["metric_id"]]
    assert list(b["feature"]) == [
        {"opex_per_head": "overheads_per_head", "revenue_per_head": "turnover_per_head"}.get(
            f, rename.get(f, f)
        )
        for f in a["feature"]
    ]
    np.testing.assert_allclose(b["score"], a["score"])
    np.testing.assert_allclose(b["at_stake"], a["at_stake"])


def test_features_option_chooses_features_and_unknown_names_are_a_params_error(catalog):
    res = _run(
        _facts(),
        catalog,
        options=AnomalyOptions(
            detectors=("multivariate",), features=("expense_ratio", "yield_rate")
        ),
    )
    # yield_rate has no facts in this fixture: one feature left, nothing to compare
    assert "could not run" in res.notes[0] and "Expense ratio" in res.notes[0]
    res = _run(
        _facts(), catalog, options=AnomalyOptions(features=("expense_ratio", "opex_per_head"))
    )
    assert "compared 2 ratios" in res.notes[0] and "Operating expenses per head" in res.notes[0]
    with pytest.raises(ParamsError, match="dso") as err:
        _run(_facts(), catalog, options=AnomalyOptions(features=("dso", "cost_ratio")))
    assert "cost_ratio" in str(err.value) and "revenue_per_head" in str(err.value)


def test_every_feature_the_catalog_gives_is_named_on_the_page(catalog):
    res = _run(_facts(), catalog)
    note = res.notes[0]
    for name in ("Expense ratio", "Revenue per head", "Operating expenses per head"):
        assert name in note
    assert "Average selling price" in note  # a reported price
    assert "Cost ratio" not in note and "Yield" not in note  # no unit reports their inputs
    assert note in res._repr_html_()


# ------------------------------------------------------------------ money in the catalog's unit
def test_money_at_stake_in_a_kusd_catalog(tmp_path):
    kusd = _catalog_variant(
        tmp_path, units={"万元": "kUSD", "万元/人": "kUSD/persons", "元/件": "USD/unit"}
    )
    assert kusd.money_unit == "kUSD"

    def edit(d):
        d["U03"]["opex"][-2] *= 1.8

    res = _run(_facts(edit=edit), kusd)
    row = res.table.iloc[0]
    assert row["metric_id"] == "opex"
    assert row["at_stake"] == pytest.approx(row["value"] - row["expected"])
    assert "USD" in row["message"] and "CNY" not in row["message"]
    assert res.stats["money_high"] == "USD 200.0 k" and res.stats["money_low"] == "USD 2.0 k"
    assert "USD" in res.view()["at_stake"].iloc[0]
    zh = detect_anomalies(_facts(edit=edit), _entities(), kusd, quarter=QUARTER, language="zh")
    assert "美元" in zh.table["message"].iloc[0] and "万元" not in zh.table["message"].iloc[0]
    assert zh.stats["money_high"] == "20.0 万美元"


def test_money_at_stake_converts_other_scales_to_the_money_unit(tmp_path):
    # the profit metric (money unit) in kUSD, operating expenses booked in USD
    mixed = _catalog_variant(
        tmp_path, units={"万元": "kUSD", "万元/人": "kUSD/persons", "元/件": "USD/unit"}
    )
    mixed_opex = mixed.model_copy(
        update={
            "metrics": {
                **mixed.metrics,
                "opex": mixed.metrics["opex"].model_copy(update={"unit": "USD"}),
            }
        }
    )
    assert mixed_opex.money_unit == "kUSD" and mixed_opex.in_money_unit("opex") == 0.001

    def edit(d):
        d["U03"]["opex"][-2] *= 1.8

    row = _run(_facts(edit=edit), mixed_opex).table.iloc[0]
    assert row["metric_id"] == "opex"
    assert row["at_stake"] == pytest.approx((row["value"] - row["expected"]) / 1000)


def _staff_facts(*, edit=None) -> pd.DataFrame:
    """:func:`_facts` with headcount moving month to month and operating expenses following
    it with an elasticity of 0.5 (opex = 1.2 x base x (headcount / base) ** 0.5, 1% noise)."""
    rng = np.random.default_rng(7)

    def staff(d):
        for i, (_, m) in enumerate(sorted(d.items())):
            base = 20.0 + i
            head = np.round(base * np.exp(rng.normal(0, 0.1, len(PERIODS))))
            m["headcount"] = head
            m["opex"] = 1.2 * base * (head / base) ** 0.5 * np.exp(rng.normal(0, 0.01, len(head)))
        if edit:
            edit(d)

    return _facts(edit=staff)


def _driver_row(facts, catalog, metric="headcount"):
    res = _run(facts, catalog, options=AnomalyOptions(detectors=("series",)))
    return res, res.table[res.table["metric_id"] == metric].iloc[0]


def test_a_non_money_driver_is_priced_at_its_mapped_effect_signed(catalog):
    def edit(d):
        d["U05"]["headcount"][-2] *= 2.0  # staff double for a month; opex does not follow

    facts = _staff_facts(edit=edit)
    res, hit = _driver_row(facts, catalog)
    el = res.elasticities.set_index("driver").loc["headcount"]
    assert el["target"] == "opex" and el["elasticity"] == pytest.approx(0.5, abs=0.06)
    rel = hit["value"] / hit["expected"] - 1
    opex = facts[(facts["entity_id"] == "U05") & (facts["metric_id"] == "opex")]["value"]
    # elasticity x relative deviation x the finance figure (opex's expected value that month:
    # the unit's usual level, within the 5% its staff move it), signed: more staff, more cost
    figure = hit["effect"] / (el["elasticity"] * rel)
    assert figure == pytest.approx(opex.median(), rel=0.1)
    assert hit["effect"] > 0.9 * el["elasticity"] * rel * opex.min()
    assert hit["effect"] > 0 and not hit["favourable"]
    assert hit["at_stake"] == pytest.approx(hit["effect"])
    assert f"elasticity {el['elasticity']:.2f}" in hit["message"]
    assert "Operating expenses" in hit["message"]


def test_a_favourable_move_is_never_ranked_as_risk(catalog):
    def edit(d):
        d["U05"]["headcount"][-2] *= 0.25  # fewer staff: lower cost, the good side of both

    res, hit = _driver_row(_staff_facts(edit=edit), catalog)
    assert hit["effect"] < 0 and hit["favourable"]
    assert hit["at_stake"] == 0.0
    assert hit["severity"] == "low"

    # a cost far below expected is reported, never above an adverse finding
    def cut(d):
        d["U03"]["opex"][-2] *= 0.3
        d["U06"]["opex"][-2] *= 1.3

    # (the series detector alone: a linkage finding, opex off its staff, is at stake either way)
    res = _run(_facts(edit=cut), catalog, options=AnomalyOptions(detectors=("series",)))
    low = res.table[res.table["entity_id"] == "U03"].iloc[0]
    high = res.table[res.table["entity_id"] == "U06"].iloc[0]
    assert low["favourable"] and low["at_stake"] == 0.0 and low["severity"] == "low"
    assert not high["favourable"] and high["rank"] < low["rank"]


def test_a_driver_without_an_elasticity_is_not_priced_and_the_page_says_so(catalog):
    def edit(d):
        d["U05"]["headcount"][-2] *= 2.0

    res, hit = _driver_row(_facts(edit=edit), catalog)  # headcount never varied before
    assert np.isnan(res.elasticities.set_index("driver").loc["headcount", "elasticity"])
    assert np.isnan(hit["at_stake"]) and np.isnan(hit["effect"])
    note = next(n for n in res.notes if n.startswith("Money at stake"))
    assert "No elasticity could be estimated" in note and "Headcount → Operating expenses" in note
    page = res._repr_html_()
    assert "At stake (adverse moves only)" in page and "At stake (CNY 10k" not in page


def test_a_driver_fitted_in_levels_is_priced_over_the_mean_its_elasticity_holds_at(catalog):
    """A driver that can be zero or negative (a savings rate) is fitted in levels, its
    elasticity scaled at the means: its deviation is read over that mean, not over a month's
    expected value near zero (0.5% expected, -0.4% actual was a -184% deviation, priced at
    four times its slope). A driver fitted in logs keeps actual / expected - 1."""
    from perflink.anomaly._cube import Cube, Scored
    from perflink.anomaly._stake import Elasticity, _driver_effect, _fit

    rng = np.random.default_rng(2)
    ents = np.repeat(np.arange(4), 30)
    x = rng.normal(0.02, 0.01, 120)  # a rate around 2%, some months below zero
    y = 1000 * (1 - 0.5 * x) * np.exp(rng.normal(0, 0.001, 120))
    level = _fit(y, [x], ents)
    assert level.level == pytest.approx(x.mean()) and level.b < 0
    logged = _fit(y, [np.abs(x) + 0.01], ents)
    assert np.isnan(logged.level)

    mp = next(m for m in catalog.mappings if catalog.metrics[m.driver].unit == "ratio")
    periods = pd.period_range("2026-07", periods=1, freq="M")
    values = np.array([[[-0.004], [7000.0]]])  # the driver this month, the target
    expected = np.array([[[0.005], [7222.0]]])
    cube = Cube(np.array(["U"]), [mp.driver, mp.target], periods, values, np.array([0]))
    zeros = np.zeros_like(values)
    sc = Scored(expected, zeros, zeros, zeros, zeros.astype(bool), zeros.astype(object),
                np.zeros((1, 2), dtype=object))  # fmt: skip
    money = catalog.in_money_unit(mp.target)
    effect, figure = _driver_effect(cube, sc, catalog, mp, Elasticity(-0.02, 0.02), 0, 0)
    assert figure == pytest.approx(7222.0 * money)
    assert effect == pytest.approx(-0.02 * (-0.009 / 0.02) * 7222.0 * money)
    effect, _ = _driver_effect(cube, sc, catalog, mp, Elasticity(-0.02), 0, 0)
    assert effect == pytest.approx(-0.02 * (-0.004 / 0.005 - 1) * 7222.0 * money)


@pytest.mark.parametrize("seed", range(4))
def test_clean_fixture_groups_have_no_high_or_critical_finding(catalog, seed):
    res = _run(_facts(seed=seed), catalog)
    assert not res.table["severity"].isin(["critical", "high"]).any()


# ------------------------------------------------------------------ peers and linkage on the page
def test_peer_detector_silent_below_min_peers_says_so(catalog):
    def edit(d):
        d["U02"]["headcount"][-3:] *= 1.5

    res = _run(_facts(edit=edit), catalog, options=AnomalyOptions(min_peers=10))
    assert not (res.table["kind"] == "peer").any()
    note = res.peers.note
    assert note.startswith("No peer group has 10 units")
    assert "largest group of one centre type and business line has 8" in note
    assert "at least 10 units of one centre type and business line" in note
    assert res.peers.table.empty and note in res.peers._repr_html_()
    assert note in str(res.peers.chart().to_dict())
    zh = detect_anomalies(
        _facts(),
        _entities(),
        catalog,
        quarter=QUARTER,
        options=AnomalyOptions(min_peers=10),
        language="zh",
    )
    assert "没有任何同业组达到 10 家单位" in zh.peers.note
    # with a group of 8 >= 6 units the detector compares and says nothing
    assert _run(_facts(edit=edit), catalog).peers.note == ""
    off = _run(_facts(), catalog, options=AnomalyOptions(detectors=("series",)))
    assert "switched off" in off.peers.note


def test_linkage_message_prints_the_driver_in_the_drivers_unit(catalog):
    def edit(d):
        d["U03"]["opex"][-2] *= 1.8  # headcount unchanged: opex off what headcount implies

    res = _run(_facts(edit=edit), catalog, options=AnomalyOptions(detectors=("linkage",)))
    row = res.table[res.table["metric_id"] == "opex"].iloc[0]
    assert row["kind"] == "linkage"
    # U03 has 23 persons; the implied value is theirs, not 23 (CNY 10k)
    assert "headcount gives 23 persons" in row["message"]
    assert "headcount gives CNY" not in row["message"]
    zh = detect_anomalies(
        _facts(edit=edit),
        _entities(),
        catalog,
        quarter=QUARTER,
        options=AnomalyOptions(detectors=("linkage",)),
        language="zh",
    )
    assert "按 在岗人数 推算为 23 人" in zh.table["message"].iloc[0]


def test_top_series_of_a_small_peer_group_are_not_drawn_and_the_page_says_why(catalog):
    def edit(d):
        d["U07"]["opex"][-2] *= 1.8  # a unit of a group of two

    ents = _entities()
    ents.loc[ents["entity_id"].isin(["U06", "U07"]), "business_line"] = "other"
    res = detect_anomalies(_facts(edit=edit), ents, catalog, quarter=QUARTER, language="en")
    assert "U07" in set(res.top(6)["entity_id"])
    assert "U07" not in set(res.peers.table["entity_id"])
    assert "of fewer than 6 units and are not compared" in res.peers.note
    assert res.peers.note in res.peers._repr_html_()


# ------------------------------------------------------------------ a second company
@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    params = generate(tmp_path_factory.mktemp("anomaly_retail"), example="retail")
    truth = yaml.safe_load((params.parent / "truth.yaml").read_text(encoding="utf-8"))
    out = {}
    for lang in ("en", "zh"):
        review = open_review(params, language=lang)
        out[lang] = detect_anomalies(
            review.facts,
            review.entities,
            review.catalog,
            quarter=review.quarter,
            adjustments=review.adjustments,
            options=review.params.anomaly,
            language=lang,
        )
    return out, truth


def test_retail_planted_problems_are_found_with_usd_at_stake(retail):
    (results, truth) = retail
    res, zh = results["en"], results["zh"]
    top = res.top(TOP)
    for p in truth["problems"]:
        if p["task"] != "anomaly":
            continue
        hit = top[
            (top["entity_id"] == p["entity_id"])
            & top["metric_id"].isin(p["metric_ids"])
            & top["period"].astype(str).isin(p["periods"])
        ]
        assert not hit.empty, f"{p['kind']} at {p['entity_id']} not in the top {TOP}"
    # the multivariate detector ran on the retail catalog's own ratios and found something
    assert "Gross margin rate" in res.notes[0] and "Net sales per head" in res.notes[0]
    kinds = set(res.table["kind"]) | {k for a in res.table["also"] for k in a.split(",") if k}
    assert "multivariate" in kinds
    # money at stake in kUSD, shown in USD words in both languages
    money = res.table["metric_id"].map(lambda m: m in ("returns_amount", "admin_expense"))
    assert res.table.loc[money, "at_stake"].notna().all()
    assert res.view()["at_stake"].str.startswith("USD").any()
    assert not res.table["message"].str.contains("CNY|万元|kUSD").any()
    assert zh.table.loc[money, "message"].str.contains("美元").all()
    assert not zh.table["message"].str.contains("万元|CNY").any()


def test_zh_messages_keep_english_names_apart_from_chinese_text(retail):
    (results, _) = retail
    msg = results["zh"].table["message"]
    assert msg.str.contains(r"Central Apparel 2026年8月 Returns 为").any()
    assert not msg.str.contains(r"[A-Za-z]20\d\d年|月[A-Za-z]|  ").any()
    assert not msg.str.contains(r" [，。；：）]|（ ").any()


def test_linkage_without_any_driver_relation_says_so(catalog):
    bare = catalog.model_copy(
        update={
            "mappings": [],
            "metrics": {
                m: spec.model_copy(update={"decomposition": None})
                for m, spec in catalog.metrics.items()
            },
        }
    )
    res = _run(_facts(), bare, options=AnomalyOptions(detectors=("series", "linkage")))
    assert any("linkage detector could not run" in n for n in res.notes)
    assert not any("linkage detector" in n for n in _run(_facts(), catalog).notes)


def _derived(mid: str, formula: str, *, aggregation: str = "formula", unit: str = "ratio") -> str:
    return f"""
  - id: {mid}
    name_en: {mid}
    definition: d
    caliber: c
    unit: {unit}
    owner: o
    source_system: derived
    direction: higher
    tier: 2
    category: financial
    aggregation: {aggregation}
    formula: {formula}
"""


def test_features_of_reads_ratio_formulas_and_leaves_out_the_rest(tmp_path):
    extra = {
        "scaled": _derived("scaled", "opex / revenue * 100"),  # constants either side
        "nested": _derived("nested", "opex / (headcount / 12)"),
        "over_sum": _derived("over_sum", "opex / (revenue + cogs)"),
        "product": _derived("product", "opex * cogs / revenue"),
        "lagged": _derived("lagged", "opex / lag(revenue, 1)"),
        "same": _derived("same", "opex / opex"),
        "flow": _derived("flow", "revenue / headcount", aggregation="sum", unit="万元"),
    }
    folder = tmp_path / "cat"
    import shutil

    shutil.copytree(CATALOG_DIR, folder)
    with open(folder / "metrics.yaml", "a", encoding="utf-8") as fh:
        fh.write("".join(extra.values()))
    feats = features_of(catalog_mod.load_catalog(folder))
    assert (feats["scaled"].numerator, feats["scaled"].denominator) == ("opex", "revenue")
    assert feats["scaled"].factor == 100.0
    assert (feats["nested"].denominator, feats["nested"].factor) == ("headcount", 12.0)
    for name in ("over_sum", "product", "lagged", "same", "flow"):
        assert name not in feats, name


def test_features_of_needs_a_catalog():
    with pytest.raises(ParamsError, match="expects a Catalog"):
        features_of(CATALOG_DIR)


def test_linkage_message_writes_the_driver_formula_in_words(catalog):
    # revenue off shipments x price: the message names the formula with metric names and math
    # signs (issue 19: no "*" or "/" of code in a leader's sentence)
    def edit(d):
        d["U05"]["revenue"][-3] *= 1.08

    for lang, sign in (("zh", "×"), ("en", "×")):
        res = detect_anomalies(
            _facts(edit=edit),
            _entities(),
            catalog,
            quarter=QUARTER,
            options=AnomalyOptions(detectors=("linkage",)),
            language=lang,
        )
        msg = res.table[res.table["metric_id"] == "revenue"]["message"].iloc[0]
        assert sign in msg and " * " not in msg and "_" not in msg, msg
