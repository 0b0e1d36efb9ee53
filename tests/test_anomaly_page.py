"""Tests of what the anomaly page shows (issue 19): reading layer, charts, words, units."""

from __future__ import annotations

import json

import pytest
from test_anomaly_panel import CATALOG_DIR, QUARTER, _entities, _facts

from perflink import catalog as catalog_mod
from perflink import labels
from perflink.anomaly import TABLE_COLUMNS, detect_anomalies
from perflink.anomaly._explain import _lag_text
from perflink.errors import ParamsError
from perflink.options import AnomalyOptions


@pytest.fixture(scope="module")
def catalog():
    return catalog_mod.load_catalog(CATALOG_DIR)


def _edit(d):
    d["U03"]["opex"][-2] *= 1.8  # 2026-08: a spike
    d["U05"]["revenue"][-3] *= 1.08  # 2026-07: revenue off shipments x price
    d["U02"]["headcount"][-3:] *= 1.5  # unlike its peers


@pytest.fixture(scope="module", params=["zh", "en"])
def result(request, catalog):
    return detect_anomalies(
        _facts(edit=_edit), _entities(), catalog, quarter=QUARTER, language=request.param
    )


def test_highlights_keep_the_top_rows_without_explanations_and_notes(result):
    assert len(result.table) >= 2
    top = result.highlights(1)
    view = top.view()
    assert len(view) == 1
    assert "explanation" not in view.columns and "range" not in view.columns
    row = result.table.iloc[0]
    assert view["label"].iloc[0] == f"{row['entity']} · {row['metric']}"  # one series column
    assert "explanation" in result.view().columns
    page = top._repr_html_()
    note = labels.t("anomaly.text.top_rows", result.language, n=1, total=len(result.table))
    assert note in page
    for n in result.notes:  # the method notes (elasticities...) are the appendix's
        assert n not in page
    for bad in (0, -3, 1.5, False):
        with pytest.raises(ParamsError, match="whole number"):
            result.highlights(bad)


def test_timelines_are_panels_in_their_metrics_units(result):
    spec = result.chart().to_dict()
    drawn = {k: v for k, v in spec.items() if k != "config"}  # the theme configures facets
    assert "concat" in spec and "facet" not in json.dumps(drawn)
    titles = [" · ".join(p["title"]["text"]) for p in spec["concat"]]
    assert len(titles) == len(set(titles)) == result.timelines["label"].nunique()
    assert set(titles) == set(result.timelines["label"])
    money = [
        layer["encoding"]["y"]["axis"]
        for p in spec["concat"]
        for layer in p["layer"][:1]
        if "labelExpr" in layer["encoding"]["y"]["axis"]
    ]
    assert money  # revenue and opex: money axes in the currency's words, as the table


def test_a_rate_timeline_is_drawn_in_percent(catalog):
    def edit(d):
        d["U03"]["opex"][-2] *= 1.8

    res = detect_anomalies(_facts(edit=edit), _entities(), catalog, quarter=QUARTER, language="en")
    res = res.__class__(**{**vars(res), "units": {**res.units, "opex": "ratio"}})
    spec = res.chart().to_dict()
    axes = [p["layer"][0]["encoding"]["y"]["axis"] for p in spec["concat"]]
    assert any(a.get("format") == ".1~%" for a in axes)


def test_peer_chart_shortens_names_with_the_full_name_in_the_tooltip(result):
    spec = result.peers.chart().to_dict()
    enc = spec.get("encoding") or spec["layer"][-1]["encoding"]
    assert enc["y"]["field"] == "short"
    assert "label" in [t["field"] for t in enc["tooltip"]]
    assert "peer_id" not in json.dumps(enc["tooltip"])  # ids are no words for a reader


def test_no_statistics_jargon_in_the_page_words():
    for lang in ("zh", "en"):
        text = " ".join(
            labels.t(k, lang)
            for k in ("anomaly.intro", "report.value.kind.multivariate", "report.value.kind.peer")
        )
        text += labels.t(
            "anomaly.text.summary", lang, quarter="", points=1, flags=1, per_100=1, high=1,
            explained=0, z_medium=4, z_high=6, z_critical=10, money_high="", money_low="",
            flag_rate=1,
        )  # fmt: skip
        text += labels.t(
            "anomaly.msg.multivariate", lang, entity="", period="", n=3, d="9.1",
            feature="", fvalue="", fusual="", metric="", value="", expected="", change="",
        )  # fmt: skip
        for word in ("马氏", "Mahalanobis", "z 分值", "z score", "9.1", "Multivariate"):
            assert word not in text, (lang, word)


def test_driver_lags_are_english_plurals():
    assert _lag_text(0, "en") == "same month"
    assert _lag_text(1, "en") == "lag 1 month"
    assert _lag_text(2, "en") == "lag 2 months"
    assert _lag_text(1, "zh") == "滞后 1 个月"


def test_en_messages_say_same_month_not_lag_0_months(result):
    if result.language != "en":
        pytest.skip("English grammar")
    text = " ".join(result.table["message"])
    assert "same month" in text  # the opex spike quotes headcount, a same-month driver
    assert "0 months" not in text and "1 months" not in text


def test_per_head_ratios_are_in_the_page_language(catalog):
    """A per-head feature's unit (万元/人) reads in English on an English page."""

    def edit(d):  # revenue per head and expense ratio both up: normally they move apart
        d["U04"]["revenue"][-1] *= 1.10
        d["U04"]["opex"][-1] *= 1.25

    res = detect_anomalies(
        _facts(edit=edit), _entities(), catalog, quarter=QUARTER, language="en",
        options=AnomalyOptions(detectors=("multivariate",)),
    )  # fmt: skip
    text = " ".join(res.table["message"])
    assert res.table["kind"].eq("multivariate").any()
    assert "万" not in text and "人" not in text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_saved_column_has_a_header_in_words(lang):
    for col in [*TABLE_COLUMNS, "peer_id", "is_self", "label", "change"]:
        if col in ("entity_id", "metric_id", "parent_id"):
            continue  # ids, labelled by the core
        assert labels.column_label(col, lang) != col, col


def test_adjustment_reasons_are_quoted_as_entered(catalog):
    import pandas as pd

    def edit(d):
        d["U01"]["revenue"][-3] *= 0.65

    adj = pd.DataFrame(
        {
            "entity_id": ["U01"],
            "period": pd.PeriodIndex(["2026-07"], freq="M"),
            "metric_id": ["revenue"],
            "amount": [100.0],
            "reason": ["台风停业"],
            "approved_by": ["board"],
        }
    )
    for lang, marker in (("en", "as entered"), ("zh", "填报原文")):
        res = detect_anomalies(
            _facts(edit=edit), _entities(), catalog, quarter=QUARTER, language=lang,
            adjustments=adj,
        )  # fmt: skip
        text = " ".join(res.table["explained_by"])
        assert marker in text and "台风停业" in text, lang


def test_peer_chart_of_a_large_group_sends_one_row_per_series_not_per_peer():
    # 3 flagged series x 2,000 peers: a raw boxplot would send 6,003 rows and fail
    # altair's 5,000-row limit (seen at 10,000 units)
    import numpy as np
    import pandas as pd

    from perflink.anomaly._results import PeerComparison

    rng = np.random.default_rng(0)
    rows = []
    for k in range(3):
        label = f"Unit {k} · Revenue · 2026-09"
        rows.append(
            {
                "label": label,
                "entity_id": f"U{k}",
                "peer_id": f"U{k}",
                "change": 0.5,
                "is_self": True,
            }
        )
        rows += [
            {"label": label, "entity_id": f"U{k}", "peer_id": f"P{j}", "change": c, "is_self": False}
            for j, c in enumerate(rng.normal(0.0, 0.1, 2000))
        ]  # fmt: skip
    table = pd.DataFrame(rows)
    spec = PeerComparison(table=table, language="en").chart().to_dict()
    sizes = [len(v) for v in spec["datasets"].values()]
    assert max(sizes) == 3, sizes
    stats = next(v for v in spec["datasets"].values() if "q1" in v[0])
    peers = table[~table["is_self"] & (table["label"] == table["label"][0])]["change"]
    first = next(r for r in stats if r["short"].startswith("Unit 0"))
    assert first["mid"] == pytest.approx(peers.median())
    assert first["lo"] == pytest.approx(peers.min()) and first["hi"] == pytest.approx(peers.max())
    assert "Peers' median" in json.dumps(spec)
