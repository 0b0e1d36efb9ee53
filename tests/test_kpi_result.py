"""KPI result presentation: names and units from the catalog, adjusted targets with originals.

Runs on two companies: the retail example (English names only, kUSD, its own metric ids)
and the bundled sample's catalog with a metric id renamed (names must follow the catalog,
never a package label keyed by the sample's ids).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import perflink
import perflink.kpi as kpi
from perflink.catalog import load_catalog
from perflink.errors import ParamsError
from perflink.labels import t
from perflink.options import KpiEnvironmentChange, KpiOptions
from perflink.sample import generate

SAMPLE_CATALOG = Path(perflink.__file__).parent / "data" / "catalog"


@pytest.fixture(scope="module")
def retail(tmp_path_factory) -> dict:
    """The retail example decomposed in en and zh."""
    params = generate(tmp_path_factory.mktemp("kpi_retail") / "r", example="retail")
    out = {}
    for lang in ("en", "zh"):
        review = perflink.open_review(params, language=lang)
        out[lang] = (review, kpi.run(review))
    return out


def _texts(chart) -> str:
    """Every string of a chart spec (titles, labels, data values), for searching."""
    return json.dumps(chart.to_dict(), ensure_ascii=False)


# --- names and default metric ------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_retail_charts_default_to_the_profit_metric_and_name_it(retail, lang):
    review, dec = retail[lang]
    profit = review.catalog.role("profit")
    assert profit is not None and dec.lead_metric() == profit
    frame = dec.waterfall_frame(review.root_id)
    assert len(frame) > 3  # target, drivers, actual: drawn, not empty
    names = {review.catalog.metrics[m].name(lang) for m in review.catalog.metrics}
    steps = set(frame["label"]) - {t("kpi.chart.target", lang), t("kpi.chart.actual", lang)}
    # every step is a catalog metric's name (or a gap/unexplained row naming one)
    assert all(any(n in s for n in names) for s in steps), steps
    ids = set(review.catalog.metrics)
    assert not steps & ids
    spec = _texts(dec.chart(review.root_id))
    assert review.catalog.metrics[profit].name(lang) in spec
    tree = dec.tree_chart(review.root_id)
    values = tree.to_dict()["datasets"]
    nodes = {r["name"] for rows in values.values() for r in rows if "name" in r}
    assert len(nodes) > 3 and not nodes & ids


def test_retail_english_names_serve_zh_pages(retail):
    review, dec = retail["zh"]
    view = dec.tier1_view()
    profit = review.catalog.role("profit")
    assert review.catalog.metrics[profit].name("en") in set(view["metric_name"])
    assert not set(view["metric_name"]) & set(review.catalog.metrics)


def _renamed_catalog(tmp: Path, old: str, new: str, name_en: str) -> Path:
    """The sample catalog with metric ``old`` renamed to ``new`` (and its English name)."""
    dest = tmp / "catalog"
    shutil.copytree(SAMPLE_CATALOG, dest)
    for f in dest.glob("*.yaml"):
        text = re.sub(rf"\b{old}\b", new, f.read_text(encoding="utf-8"))
        f.write_text(text, encoding="utf-8")
    metrics = dest / "metrics.yaml"
    text = metrics.read_text(encoding="utf-8")
    text = re.sub(
        rf"(id: {new}\b.*?name_en: )[\"']?([^\"'\n,}}]+)[\"']?",
        rf"\g<1>{name_en}",
        text,
        count=1,
        flags=re.S,
    )
    metrics.write_text(text, encoding="utf-8")
    return dest


def _tiny(rename: dict[str, str] | None = None):
    """One sales unit under one subsidiary, 2025-01..2026-09, with monthly budgets."""
    rename = rename or {}
    ents = pd.DataFrame(
        {
            "entity_id": ["G", "S", "U"],
            "name_zh": ["集团", "子公司", "销售部"],
            "name_en": ["Group", "Sub", "Sales"],
            "parent_id": [np.nan, "G", "S"],
            "kind": ["group", "subsidiary", "department"],
            "center_type": [np.nan, np.nan, "profit"],
            "business_line": [np.nan, "retail", "retail"],
            "manager": ["a", "b", "c"],
        }
    )
    rows, budgets = [], []
    for i, p in enumerate(pd.period_range("2025-01", "2026-09", freq="M")):
        qty = 1000.0 + 10 * i
        vals = {
            "shipped_qty": qty,
            "avg_unit_price": 200.0,
            "revenue": qty * 200 / 10000 * 1.01,
            "cogs": qty * 200 / 10000 * 0.7,
            "opex": 3.0,
            "new_contract_amount": 20.0 + i,
            "new_customers": 5.0,
            "headcount": 10.0,
            "equity": 100.0,
            "invested_capital": 150.0,
        }
        rows += [("U", p, rename.get(m, m), v) for m, v in vals.items()]
        for m in ("revenue", "cogs", "opex", "shipped_qty", "new_contract_amount"):
            budgets.append(("U", p.year, p, rename.get(m, m), vals[m] * 1.1, "budget"))
    facts = pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "value"])
    targets = pd.DataFrame(
        budgets, columns=["entity_id", "year", "period", "metric_id", "target", "kind"]
    )
    return facts, targets, ents


def _decompose(catalog, *, changes=(), rename=None, lang="en"):
    facts, targets, ents = _tiny(rename)
    return kpi.decompose(
        facts,
        targets,
        ents,
        catalog,
        quarter="2026Q3",
        options=KpiOptions(environment_changes=changes),
        lang=lang,
    )


def test_renamed_metric_id_is_named_by_the_catalog(tmp_path):
    catalog = load_catalog(_renamed_catalog(tmp_path, "revenue", "turnover", "Turnover"))
    assert catalog.metrics["turnover"].name("en") == "Turnover"
    dec = _decompose(catalog, rename={"revenue": "turnover"})
    frame = dec.waterfall_frame("U")
    labels = " | ".join(frame["label"])
    assert "Turnover identity gap" in labels and "turnover" not in labels
    assert "Revenue" not in labels  # not a package label keyed by the sample's id
    assert dec.lead_metric() == catalog.role("profit")
    rows = [r for d in dec.tree_chart("U").to_dict()["datasets"].values() for r in d]
    assert "Turnover" in {r.get("name") for r in rows}  # the node names, what the chart shows


def test_lead_metric_prefers_the_profit_role_then_the_first_tier1():
    catalog = load_catalog(SAMPLE_CATALOG)
    dec = _decompose(catalog)
    tier1 = list(dict.fromkeys(dec.tier1["metric_id"]))
    assert dec.default_metric == catalog.role("profit") == dec.lead_metric()
    other = tier1[-1]
    assert dataclasses.replace(dec, default_metric=other).lead_metric() == other
    # a profit metric that is not tier 1 (or none) falls back to the first tier-1 metric
    assert dataclasses.replace(dec, default_metric="nope").lead_metric() == tier1[0]
    assert dataclasses.replace(dec, default_metric=None).lead_metric() == tier1[0]


def test_charts_reject_a_metric_that_is_not_tier1():
    dec = _decompose(load_catalog(SAMPLE_CATALOG))
    with pytest.raises(ParamsError, match="not a tier-1 metric"):
        dec.chart("U", metric_id="no_such_metric")
    with pytest.raises(ParamsError, match="not a tier-1 metric"):
        dec.tree_chart("U", metric_id="no_such_metric")
    with pytest.raises(ParamsError, match="not a tier-1 metric"):
        dec.waterfall_frame("U", metric_id="no_such_metric")


# --- money in the metric's own unit -------------------------------------------------------


def test_retail_money_is_usd_in_both_languages(retail):
    for lang, word, foreign in (("zh", "美元", "万元"), ("en", "USD", "CNY")):
        review, dec = retail[lang]
        view = dec.tier1_view()
        money = [
            v
            for v, m in zip(view["actual"], dec.tier1.loc[view.index, "metric_id"], strict=True)
            if review.catalog.metrics[m].unit_info.is_money
        ]
        assert money and all(word in v for v in money), money[:3]
        html = dec._repr_html_()
        assert word in html and foreign not in html
        spec = _texts(dec.chart(review.root_id))
        assert foreign not in spec
        if lang == "en":
            assert "'USD '" in spec  # the axis labels carry the currency
        else:
            assert "美元" in spec  # the zh axis title names it (labels say 万/亿 of it)


# --- environment changes (契约化动态调整) ------------------------------------------------------


def _change() -> KpiEnvironmentChange:
    return KpiEnvironmentChange(
        business_line="retail",
        metric_id="revenue",
        from_period="2026-07",
        factor=0.9,
        reason="demand shock",
    )


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_adjusted_target_shows_its_original_and_reason(lang):
    catalog = load_catalog(SAMPLE_CATALOG)
    plain = _decompose(catalog, lang=lang)
    dec = _decompose(catalog, changes=(_change(),), lang=lang)
    key = ["entity_id", "scope", "base", "metric_id"]
    profit = dec.lead_metric()  # derived: its target is recomputed from the lower budgets
    t1 = dec.tier1.set_index(key)
    row = t1.loc[("U", "quarter", "target", profit)]
    assert row["target"] < row["target_original"]
    # the original is the target without the change
    orig = plain.tier1.set_index(key).loc[("U", "quarter", "target", profit), "target"]
    assert row["target_original"] == pytest.approx(orig)
    assert t1.loc[("U", "quarter", "target", profit), "target"] != pytest.approx(orig)
    view = dec.tier1_view()
    assert {"target_original", "target_reason"} <= set(view.columns)
    cols = list(view.columns)
    assert cols.index("target_original") == cols.index("target") + 1  # beside the target
    changed = view[view["target_reason"] != ""]
    assert len(changed) and (changed["target_reason"] == "demand shock").all()
    assert (changed["target_original"] != "").all()
    html = dec._repr_html_()
    assert "demand shock" in html and dec.changes_note() in html
    # where the change applies, in words: the subsidiary and how many units, not only the
    # business line's code (which is shown marked as entered)
    where = t("kpi.changes.where", lang, subsidiaries=dec.names["S"], n=1)
    assert where in dec.changes_note()
    assert "retail" in dec.changes_note()
    spec = _texts(dec.chart("U"))
    subtitle = t("kpi.chart.adjusted", lang, original="X", reason="Y").split("X")[0]
    assert subtitle in spec and "demand shock" in spec


def test_no_environment_change_says_nothing():
    dec = _decompose(load_catalog(SAMPLE_CATALOG))
    assert dec.target_changes.empty and dec.changes_note() == ""
    view = dec.tier1_view()
    assert "target_original" not in view and "target_reason" not in view
    for lang in ("en", "zh"):
        note = t("kpi.changes.note", lang, changes="").split("：")[0].split(":")[0]
        assert note not in dec._repr_html_()
    spec = _texts(dec.chart("U"))
    assert '"subtitle"' not in spec
    np.testing.assert_array_equal(dec.tier1["target"], dec.tier1["target_original"])


def test_manifest_records_the_environment_changes(tmp_path, monkeypatch):
    """The run record lists the changes applied, as written (``${NAME}`` kept unresolved)."""
    import time
    from datetime import datetime

    import yaml

    from perflink import runner
    from perflink.params import load_params

    folder = tmp_path / "s"
    generate(folder, entities=28, months=24)
    raw = yaml.safe_load((folder / "params.yaml").read_text(encoding="utf-8"))
    written = raw["kpi"]["environment_changes"]
    assert written, "the sample's params carry its demand shock"
    raw["kpi"]["environment_changes"].append(
        {
            "business_line": written[0]["business_line"],
            "metric_id": written[0]["metric_id"],
            "from_period": "2026-08",
            "factor": 0.98,
            "reason": "${PERFLINK_KPI_TEST_REASON}",
        }
    )
    (folder / "params.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("PERFLINK_KPI_TEST_REASON", "board-confidential-reason")
    params = load_params(folder / "params.yaml")
    assert params.kpi.environment_changes[1].reason == "board-confidential-reason"
    manifest = runner._manifest(params, [], {}, datetime.now().astimezone(), time.perf_counter())
    recorded = manifest["params"]["kpi"]["environment_changes"]
    assert [c["factor"] for c in recorded] == [written[0]["factor"], 0.98]
    assert recorded[0]["reason"] == written[0]["reason"]
    assert recorded[1]["reason"] == "${PERFLINK_KPI_TEST_REASON}"
    assert "board-confidential-reason" not in json.dumps(manifest, ensure_ascii=False)


# --- names instead of identifiers on the page ----------------------------------------------


def test_named_view_replaces_ids_with_names():
    df = pd.DataFrame(
        {
            "entity_id": ["U", "X"],
            "metric_id": ["m1", "m2"],
            "driver_id": ["m2", np.nan],
            "value": [1.0, 2.0],
        }
    )
    out = kpi.named_view(df, names={"U": "Sales"}, metric_names={"m1": "Margin", "m2": "Sales"})
    assert list(out.columns) == ["entity_name", "metric_name", "driver_id", "value"]
    assert list(out["entity_name"]) == ["Sales", "X"]  # an unknown id stays as it is
    assert list(out["metric_name"]) == ["Margin", "Sales"]
    assert out["driver_id"].iloc[0] == "Sales" and pd.isna(out["driver_id"].iloc[1])
    assert list(df.columns)[0] == "entity_id"  # the input is not modified


def test_named_view_bad_input_raises():
    with pytest.raises(ParamsError, match="DataFrame"):
        kpi.named_view([1, 2], names={}, metric_names={})


def test_retail_findings_page_shows_names(retail):
    review, dec = retail["en"]
    view = dec.named(dec.findings)
    assert len(view) and "entity_id" not in view and "metric_id" not in view
    shown = set(view["entity_name"]) | set(view["metric_name"])
    assert not shown & (set(review.catalog.metrics) | set(review.entities["entity_id"]))
    el = dec.named(dec.elasticities)
    assert not set(el["driver_id"]) & set(review.catalog.metrics)


@pytest.mark.slow
def test_renaming_every_metric_id_gives_the_same_kpi_and_scoring_tables(tmp_path):
    """Metamorphic: the sample with every metric id renamed (catalog, params, inputs; same
    data) gives the same attribution, scorecard, bonus, tenure and findings tables."""
    import perflink.scoring as scoring

    tables = {}
    for variant in ("plain", "renamed"):
        folder = tmp_path / variant
        params = generate(folder, months=24)
        ren: dict[str, str] = {}
        if variant == "renamed":
            catalog = load_catalog(folder / "catalog")
            ren = {m: f"k_{i:02d}" for i, m in enumerate(sorted(catalog.metrics))}
            ids = sorted(ren, key=len, reverse=True)
            rx = re.compile(r"\b(" + "|".join(map(re.escape, ids)) + r")\b")
            files = [*(folder / "catalog").glob("*.yaml"), folder / "params.yaml"]
            files += [folder / f"{n}.csv" for n in ("facts", "targets", "schemes", "adjustments")]
            for f in files:
                lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
                out = [  # a role is a keyword, not a metric id
                    ln if re.match(r"\s*role:", ln) else rx.sub(lambda m, r=ren: r[m.group(1)], ln)
                    for ln in lines
                ]
                f.write_text("".join(out), encoding="utf-8")
        review = perflink.open_review(params, language="zh")
        dec = kpi.run(review)
        sc = scoring.run(review, decomposition=dec)
        back = {v: k for k, v in ren.items()}
        cols = ["metric_id", "driver_id", "parent_id", "cause_id", "sub_cause_id", "moved_id"]
        tables[variant] = {
            name: df.replace({c: back for c in cols if c in df})
            for name, df in {"attribution": dec.to_frame(), **sc.tables()}.items()
        }
    for name, df in tables["plain"].items():
        pd.testing.assert_frame_equal(tables["renamed"][name], df, obj=name)


def test_decompose_counts_its_steps_on_one_progress_bar(task_bars):
    catalog = load_catalog(SAMPLE_CATALOG)
    _decompose(catalog)
    (bar,) = task_bars
    assert (bar.desc, bar.unit) == ("KPI decomposition", "step")
    # elasticities, panels, one tree per window x base x tier-1 metric, the tables
    assert bar.n == bar.total == 3 + 2 * 2 * len(catalog.tier(1))
