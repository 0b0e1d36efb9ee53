"""The KPI page as a leader reads and prints it (issue 19).

Fast tests on tiny fixtures: the driver tree is drawn as a tree (edges, each node in its
parent's rows), the page's short tables keep the group and subsidiaries, codes are words,
English grammar. Slow browser tests on the sample reviewed end to end (zh 2026Q3, en 2026Q4):
the printed page stays within 10 A4 pages, a zh page shows no identifier, and a score reads
the same on the KPI page and the summary.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser_utils import drawn_page, find_identifiers, print_page_count, reader_text
from test_kpi_result import _decompose

import perflink
import perflink.kpi as kpi
from perflink import scoring
from perflink._report_format import fmt_number
from perflink.catalog import load_catalog
from perflink.errors import InputError
from perflink.kpi._result import tree_layout
from perflink.labels import t
from perflink.sample import generate

CATALOG = load_catalog(Path(perflink.__file__).parent / "data" / "catalog")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict:
    """The bundled sample decomposed and scored, in zh and en: lang -> (dec, scores)."""
    params = generate(tmp_path_factory.mktemp("kpi_page") / "s", seed=0)
    out = {}
    for lang in ("zh", "en"):
        review = perflink.open_review(params, language=lang)
        dec = kpi.run(review)
        out[lang] = (dec, scoring.run(review, decomposition=dec))
    return out


# --- the driver tree ---------------------------------------------------------------------


def _edges(rows: list[tuple[str | None, str, int]]) -> pd.DataFrame:
    """Tree edges ``(parent, driver, depth)`` of one tier-1 metric ``T``."""
    return pd.DataFrame(
        [
            {"metric_id": "T", "parent_id": p, "driver_id": d, "link": "formula", "lag": 0}
            | {"depth": k}
            for p, d, k in rows
        ]
    )


def test_tree_layout_puts_each_node_in_its_parents_rows():
    # T -> A, B; A -> a1; B -> b1, b2. Placed by order within a depth (the old layout), B's
    # children sat off B; as a tree each parent is the middle of its children.
    edges = _edges(
        [(None, "T", 0), ("T", "A", 1), ("T", "B", 1), ("A", "a1", 2), ("B", "b1", 2)]
        + [("B", "b2", 2)]
    )
    pos = tree_layout(edges).set_index("driver_id")["y"]
    assert pos["a1"] == pos["A"]
    assert pos["B"] == (pos["b1"] + pos["b2"]) / 2
    assert pos["T"] == (pos["A"] + pos["B"]) / 2
    # leaves each take their own row; no two nodes of one depth share it
    leaves = pos[["a1", "b1", "b2"]]
    assert leaves.is_unique
    assert sorted(leaves) == [0.0, 1.0, 2.0]


def test_tree_layout_places_a_node_whose_parent_is_missing_after_the_tree():
    edges = _edges([(None, "T", 0), ("T", "A", 1), ("X", "x1", 2)])
    pos = tree_layout(edges).set_index("driver_id")["y"]
    assert pos["x1"] > pos["A"]
    assert not pos.isna().any()


def test_tree_nodes_include_lagged_drivers_with_their_own_drivers(sample):
    dec, _ = sample["en"]
    tr = dec.tree
    lagged = tr[tr["lag"] > 0]
    assert len(lagged), "a driver one month earlier is a node of the tree"
    parents = set(tr["driver_id"])
    orphans = tr[tr["parent_id"].notna() & ~tr["parent_id"].isin(parents)]
    assert orphans.empty, orphans[["parent_id", "driver_id"]]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_tree_chart_draws_an_edge_to_every_node(lang):
    dec = _decompose(CATALOG, lang=lang)
    spec = dec.tree_chart("U").to_dict()
    layers = spec["layer"]
    rules = [ly for ly in layers if ly["mark"] in ("rule",) or ly["mark"].get("type") == "rule"]
    assert len(rules) == 1
    data = spec["datasets"]
    edges = next(v for k, v in data.items() if v and "x2" in v[0])
    nodes = next(v for k, v in data.items() if v and "name" in v[0])
    # every node but the root hangs on its parent by three segments (out, down, in)
    assert len(edges) == 3 * (len(nodes) - 1)
    # a node's name is shortened at most, its full name is in the tooltip; tiers are words
    assert all(n["label"].rstrip("…") in n["name"] for n in nodes)
    assert {n["tier_label"] for n in nodes} <= {t(f"kpi.chart.tier{k}", lang) for k in (1, 2, 3)}
    assert "depth" not in str(spec.get("encoding", ""))  # no "层级深度" axis of numbers


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_waterfall_names_its_steps_across_with_amounts_in_the_unit(lang):
    dec = _decompose(CATALOG, lang=lang)
    spec = dec.chart("U").to_dict()
    axis = spec["encoding"]["x"]["axis"]
    assert axis["labelAngle"] == 0 and "labelExpr" in axis  # across, over two lines
    rows = next(iter(spec["datasets"].values()))
    # the tooltip amount is formatted in the metric's own unit, as the tables write it
    texts = [r["value_text"] for r in rows]
    assert all(re.search(r"[万k]", s) or "CNY" in s for s in texts), texts
    assert not any("e+" in s for s in texts)


def test_lagged_driver_reads_one_month_not_one_months():
    dec = _decompose(CATALOG, lang="en")
    assert t("kpi.node.lagged_one", "en", name="x", lag=1) == "x (1 month earlier)"
    assert dec._metric_label("new_contract_amount", "revenue", 1).endswith("(1 month earlier)")
    assert dec._metric_label("new_contract_amount", "revenue", 2).endswith("(2 months earlier)")


# --- short tables of the reading layer ---------------------------------------------------


def test_headline_shows_the_group_and_subsidiaries_only():
    dec = _decompose(CATALOG, lang="en")
    html = dec._repr_html_()
    assert "Group" in html and "Sub" in html
    assert ">Sales<" not in html  # the unit is in the appendix table (detail)
    detail = dec.detail()
    assert "Sales" in set(detail.table["entity_name"])
    assert len(detail.table) > len(dec.tier1_view(scope="quarter", top_level=True))


def test_level_without_parents_counts_everything_as_top_level():
    import dataclasses

    dec = dataclasses.replace(_decompose(CATALOG), parents={})
    assert dec.level("U") == "group"
    assert dec.level("S") == "group"


def test_findings_view_top_is_short_and_in_words():
    dec = _decompose(CATALOG, lang="zh")
    full = dec.findings_view()
    top = dec.findings_view(top=1)
    assert len(top.table) <= 1
    assert "rule_id" not in top.table and "message" not in top.table
    if len(full.table) > 1:
        assert "1" in top.notes and str(len(full.table)) in top.notes
    assert not set(full.table.get("scope", [])) & {"quarter", "ytd"}


def test_gap_sign_leads_the_currency():
    usd = "USD"
    assert kpi.format_gap(-130.7, "kUSD", "en").startswith("-USD")
    assert kpi.format_gap(130.7, "kUSD", "en").startswith("+USD")
    assert usd + " -" not in kpi.format_gap(-130.7, "kUSD", "en")
    assert kpi.format_gap(-38.7, "万元", "zh") == "-38.7 万元"


# --- scoring tables in words -------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_scorecard_table_has_no_codes(sample, lang):
    _, sc = sample[lang]
    card = sc.scorecard_table()
    html = card._repr_html_()
    for code in ("linear", "threshold", ">step<", "SCH-", ">rule<", ">floor<", ">cap<"):
        assert code not in html, code
    assert t("scoring.col.rule", lang) in html
    assert set(card.table["scheme_id"]) <= set(sc.scheme_names.values()) | {"—"}


def test_scheme_names_in_words():
    schemes = pd.DataFrame(
        {
            "scheme_id": ["SCH-A", "SCH-A", "SCH-U1"],
            "center_type": ["profit", "profit", "cost"],
            "entity_id": [np.nan, np.nan, "U1"],
        }
    )
    names = scoring.scheme_names(schemes, {"U1": "一厂"}, "zh")
    assert names == {"SCH-A": "利润中心通用方案", "SCH-U1": "一厂专用方案"}
    en = scoring.scheme_names(schemes, {"U1": "Plant 1"}, "en")
    assert en["SCH-U1"] == "own scheme of Plant 1"


def test_scheme_names_bad_input_raises():
    with pytest.raises(InputError, match="scheme_id"):
        scoring.scheme_names(pd.DataFrame({"x": [1]}), {}, "zh")


def test_finding_and_rule_words():
    from perflink.scoring._result import finding_words, rule_words

    assert finding_words("tier1_missed", "zh") == "一级指标未达成"
    assert finding_words("scheme_financial_min", "en") == "Scheme breaks the policy"
    assert rule_words("linear", "zh") != "linear"
    assert rule_words(np.nan, "zh") == "—"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_chain_and_bonus_tables_on_the_page(sample, lang):
    _, sc = sample[lang]
    chain = sc.chain_table()
    assert chain.units["business_completion"] == "pct"  # 101.6%, not 1.02
    assert len(chain.table) < len(sc.chain())  # the group and subsidiaries, not every unit
    assert len(sc.chain_table(top_level=False).table) == len(sc.chain())
    pools = sc.bonus_table()
    assert "base_bonus" not in pools.table and "kind" not in pools.table
    full = sc.bonus_table(pools_only=False)
    assert len(full.table) >= len(pools.table)


# --- the printed page (sample reviewed end to end) ---------------------------------------


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("quarter", ["2026Q3", "2026Q4"])  # zh, en
def test_kpi_page_prints_within_ten_pages(browser, reviewed_quarters, quarter, tmp_path):
    with drawn_page(browser, reviewed_quarters.reports / quarter / "kpi.html") as page:
        pages = print_page_count(page, tmp_path / f"kpi_{quarter}.pdf")
    assert pages <= 10, f"the {quarter} KPI page prints to {pages} A4 pages (at most 10)"


@pytest.mark.slow
@pytest.mark.browser
def test_zh_kpi_page_shows_no_code(browser, reviewed_quarters):
    with drawn_page(browser, reviewed_quarters.reports / "2026Q3" / "kpi.html") as page:
        text = reader_text(page)
    assert find_identifiers(text) == []
    for word in ("PosixPath", "linear", "threshold", "SCH-", "overrun_pct", "Shapley"):
        if word == "Shapley":
            assert "本页术语" in text  # the term stays, explained in the page's glossary
            continue
        assert word not in text, word
    # user-entered reasons are shown as entered, under a header that says so
    assert "（填报原文）" in text


@pytest.mark.slow
@pytest.mark.browser
def test_en_kpi_page_grammar(browser, reviewed_quarters):
    with drawn_page(browser, reviewed_quarters.reports / "2026Q4" / "kpi.html") as page:
        text = reader_text(page)
    assert "(s)" not in text
    assert not re.search(r"\b1 months\b", text)
    assert not re.search(r"\ba [8]\d", text)  # "an 87%"
    assert not re.search(r"\bexpenses was\b", text, re.IGNORECASE)


@pytest.mark.slow
def test_score_reads_the_same_on_the_kpi_page_and_the_summary(reviewed_quarters):
    """A subsidiary's year-to-date score: the KPI page's chain table and the summary write the
    unrounded sum of the weighted scores alike (the summary once rounded to 95.3 first and
    printed 95.30 where the KPI page said 95.27)."""
    reports = reviewed_quarters.reports / "2026Q3"
    card = pd.read_parquet(reports / "tables" / "scorecard.parquet")
    ytd = card[card["scope"] == "ytd"].groupby("entity_id")["weighted_score"].sum()
    kpi_html = (reports / "kpi.html").read_text(encoding="utf-8")
    summary_html = (reports / "summary.html").read_text(encoding="utf-8")
    ents = pd.read_csv(reviewed_quarters.root / "q3" / "entities.csv")
    subs = ents.loc[ents["kind"] == "subsidiary", "entity_id"]
    for e in subs:
        text = fmt_number(float(ytd[e]), None, "zh")
        assert f">{text}<" in kpi_html, (e, text)
        assert text in summary_html, (e, text)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_scheme_breach_and_manager_messages_name_the_scheme_in_words(sample, lang):
    _, sc = sample[lang]
    breaches = sc.findings[sc.findings["rule_id"].str.startswith("scheme_")]
    assert len(breaches), "the sample plants a scheme that breaks the policy"
    for msg in breaches["message"]:
        assert "SCH-" not in msg and "_" not in msg, msg
    top = sc.findings_view(top=10).table
    assert "tier1_missed" not in set(top["rule_id"]) and "SCH-" not in top.to_string()


def test_value_axis_of_a_quantity_never_uses_the_exponent_form():
    import vl_convert as vlc

    dec = _decompose(CATALOG, lang="en")
    qty = next(m for m, u in dec.metric_units.items() if u and u not in ("万元", "%", "ratio"))
    axis = dec._value_axis(qty)
    data = pd.DataFrame({"x": ["a", "b"], "v": [0.0, 2_500_000.0]})
    import altair as alt

    def svg(y_axis) -> str:  # under the page theme's number format (",.4~g": 2.5e+6)
        chart = alt.Chart(data).mark_bar().encode(x="x:N", y=alt.Y("v:Q", axis=y_axis))
        return vlc.vegalite_to_svg(chart.configure(numberFormat=",.4~g").to_json())

    assert "e+" in svg(alt.Axis())  # what the axis said without its own format
    assert "e+" not in svg(axis) and "2,500,000" in svg(axis)


def test_short_tables_do_not_grow_with_the_group(sample, monkeypatch):
    import perflink.kpi._result as kpi_result
    import perflink.scoring._result as scoring_result

    dec, sc = sample["zh"]
    subs = [e for e in dict.fromkeys(dec.tier1["entity_id"]) if dec.level(e) == "subsidiary"]
    assert len(subs) > 2
    monkeypatch.setattr(kpi_result, "TOP_SUBSIDIARIES", 2)
    monkeypatch.setattr(scoring_result, "TOP_SUBSIDIARIES", 2)
    shown = dec.headline_entities()
    assert len(shown) == 3 and dec.level(shown[0]) == "group"
    # the two furthest below target on the lead metric, relative to the target's size
    t1 = dec.tier1
    lead = t1[(t1["base"] == "target") & (t1["scope"] == "quarter")]
    lead = lead[lead["metric_id"] == dec.lead_metric()].set_index("entity_id").loc[subs]
    worst = (lead["change"] / lead["target"].abs()).sort_values().index[:2]
    assert set(shown[1:]) == set(worst)
    html = dec._repr_html_()
    assert t("kpi.page.top_subs", "zh", shown=2, total=f"{len(subs):,}") in html
    chain = sc.chain_table()
    assert len(chain.table) == 3 and chain.notes
    pools = sc.bonus_table()
    assert len(pools.table) == 3 and pools.notes


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_audit_ratio_joins_english_names_in_words_not_a_slash(lang):
    # "Cost of sales/Net sales" read as a path on a zh page (the retail example's names)
    text = t("scoring.audit.carried", lang, cost="Cost of sales", base="Net sales", ratio="41%")
    assert "/" not in text
    assert find_identifiers(text) == []


def test_zh_messages_space_latin_names_from_chinese():
    from perflink.kpi._page import PageTable, spaced

    assert spaced("Net sales调整 +22.5 万美元", "zh") == "Net sales 调整 +22.5 万美元"
    assert spaced("经济增加值（EVA）完成 95%", "zh") == "经济增加值（EVA）完成 95%"
    assert spaced("Net sales调整", "en") == "Net sales调整"
    table = pd.DataFrame({"message": ["Cost of sales按比例调整"]})
    assert "Cost of sales 按比例调整" in PageTable(table, language="zh")._repr_html_()
