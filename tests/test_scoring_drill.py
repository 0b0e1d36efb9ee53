"""Score drill-down from a subsidiary to its units (perflink.scoring._drill)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import vl_convert as vlc

from perflink.labels import column_label, t
from perflink.scoring import _drill

# group G; subsidiaries S1 (units U11, U12 and U121 one level below U12), S2 (U21), S3 (none)
PARENTS = {
    "G": None,
    "S1": "G",
    "S2": "G",
    "S3": "G",
    "U11": "S1",
    "U12": "S1",
    "U121": "U12",
    "U21": "S2",
}
NAMES = {
    "G": "集团",
    "S1": "甲公司",
    "S2": "乙公司",
    "S3": "丙公司",
    "U11": "甲一部",
    "U12": "甲二部",
    "U121": "甲二部一组",
    "U21": "乙一部",
}


def _chain(scores: dict) -> pd.DataFrame:
    ids = list(scores)
    return pd.DataFrame(
        {
            "entity_id": ids,
            "score": [scores[e] for e in ids],
            "business_completion": [0.95] * len(ids),
            "financial_completion": [np.nan] + [1.02] * (len(ids) - 1),
        }
    )


def _svg(chart) -> str:
    return vlc.vegalite_to_svg(chart.to_dict())


def _svg_texts(chart) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", _svg(chart))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_drill_opens_on_the_lowest_subsidiary_and_lists_only_its_units(lang):
    chain = _chain({"G": 99, "S1": 97, "S2": 80, "S3": 70, "U11": 90, "U12": 101, "U121": 88,
                    "U21": 79})  # fmt: skip
    chart = _drill.drill_chart(chain, names=NAMES, parents=PARENTS, lang=lang)
    spec = chart.to_dict()
    (param,) = spec["params"]  # altair lifts a concat's selection to the top
    # S3 scores lowest but has no units: nothing to drill into, so S2 opens the chart
    assert param["value"] == [{"sub_id": "S2"}]
    texts = _svg_texts(chart)
    assert t("scoring.drill.caption_all", lang, name="乙公司", n=1) in texts
    assert "乙一部" in texts
    assert not {"甲一部", "甲二部", "甲二部一组", "丙公司"} & set(texts)
    assert "null" not in " ".join(texts)


def test_drill_lists_at_most_its_limits_and_says_so():
    n_subs, per_sub = _drill.DRILL_SUBSIDIARIES + 3, _drill.DRILL_UNITS + 5
    parents, names, scores = {"G": None}, {"G": "集团"}, {"G": 90.0}
    for i in range(n_subs):
        parents[f"S{i}"] = "G"
        names[f"S{i}"] = f"子公司{i:02d}"
        scores[f"S{i}"] = 60.0 + i
        for j in range(per_sub):
            parents[f"S{i}U{j}"] = f"S{i}"
            names[f"S{i}U{j}"] = f"子公司{i:02d}单元{j:02d}"
            scores[f"S{i}U{j}"] = 100.0 - j
    chart = _drill.drill_chart(_chain(scores), names=names, parents=parents, lang="zh")
    texts = _svg_texts(chart)
    subs_drawn = {x for x in texts if re.fullmatch(r"子公司\d\d", x)}
    assert len(subs_drawn) == _drill.DRILL_SUBSIDIARIES
    assert "子公司00" in subs_drawn and f"子公司{n_subs - 1:02d}" not in subs_drawn
    units_drawn = [x for x in texts if x.startswith("子公司00单元")]
    # the lowest-scoring units of the subsidiary (highest j), no more than the limit
    assert sorted(units_drawn) == [f"子公司00单元{j:02d}" for j in range(5, per_sub)]
    assert t("scoring.drill.caption", "zh", name="子公司00", n=per_sub, shown=20) in texts
    by = t("report.chart.by_lowest", "zh", what=column_label("score", "zh"))
    ranked = t("report.chart.top_n", "zh", n=_drill.DRILL_SUBSIDIARIES, total=n_subs, by=by)
    assert ranked in texts


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_flat_group_says_there_is_no_drill(lang):
    parents = {"G": None, "A": "G", "B": "G"}
    chart = _drill.drill_chart(
        _chain({"G": 90, "A": 80, "B": 85}), names={"G": "集团"}, parents=parents, lang=lang
    )
    lines = t("scoring.drill.none", lang, root="集团").split("\n")
    assert len(lines) == 2 and re.findall(r"<tspan[^>]*>([^<]*)</tspan>", _svg(chart)) == lines
