"""Score drill-down: click a subsidiary, see its units (not API; ``ScorecardResult``).

One Vega-Lite chart in two panels: the subsidiaries' year-to-date scores, lowest first, and
below them the units of the subsidiary selected. The selection lives in the chart (a point
selection on the subsidiary), so the page needs no script of its own and works offline
with the vega-embed bundle every page carries; it opens (and prints) on the lowest-scoring
subsidiary, and the subtitle says so.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from perflink import charts
from perflink._report_format import fmt_number
from perflink.labels import column_label, t
from perflink.panel import subsidiary_of

__all__ = ["DRILL_SUBSIDIARIES", "DRILL_UNITS", "drill_chart"]

#: Subsidiaries drawn in the upper panel (lowest scores first; the subtitle counts the rest).
DRILL_SUBSIDIARIES = 25
#: Units drawn for the selected subsidiary (lowest scores first; its caption counts them all).
DRILL_UNITS = 20
#: The score colour scale of the score chain chart, so one score has one colour on the page.
SCORE_DOMAIN = (60, 110)
_SELECTION = "pl_subsidiary"
_ROW_PX = 20
_COMPLETIONS = ("business_completion", "financial_completion")


def drill_chart(chain: pd.DataFrame, *, names: dict, parents: dict, lang: str) -> alt.Chart:
    """The two-panel drill-down chart of ``chain`` (:meth:`ScorecardResult.chain`).

    Parameters
    ----------
    chain
        One row per entity: ``entity_id``, ``score``, ``business_completion``,
        ``financial_completion`` (year to date).
    names, parents
        Entity id -> display name / parent id.
    lang
        Report language.

    Returns
    -------
    altair.Chart
        The drill-down; a chart that says in a sentence why there is none when the group
        has no subsidiary with units below it (a flat group, or a report of one unit).
    """
    sub_of = subsidiary_of(parents)
    scored = chain.dropna(subset=["score"])
    scored = scored[scored["entity_id"].isin(sub_of)]
    is_sub = scored["entity_id"].map(lambda e: sub_of[e] == e)
    subs, units = scored[is_sub], scored[~is_sub]
    units = units.assign(sub_id=units["entity_id"].map(sub_of))
    subs = subs[subs["entity_id"].isin(set(units["sub_id"]))]
    if subs.empty:
        roots = [e for e, p in parents.items() if p is None or pd.isna(p)]
        root = names.get(roots[0], roots[0]) if len(roots) == 1 else ""
        return charts.message(t("scoring.drill.none", lang, root=root))
    subs = subs.sort_values(["score", "entity_id"], kind="stable")
    shown = subs.head(DRILL_SUBSIDIARIES)
    units = units[units["sub_id"].isin(set(shown["entity_id"]))]
    n_units = units.groupby("sub_id").size()

    score_label = column_label("score", lang)
    top = _rows(shown.assign(sub_id=shown["entity_id"]), names, lang)
    top["caption"] = [
        _caption(names.get(s, s), int(n_units.get(s, 0)), lang) for s in top["sub_id"]
    ]
    low = _rows(units, names, lang)
    pick = alt.selection_point(
        name=_SELECTION,
        fields=["sub_id"],
        value=[{"sub_id": str(shown["entity_id"].iloc[0])}],
        on="click",
        toggle=False,
        clear=False,
        empty=False,
    )
    color = alt.Color(
        "score:Q",
        scale=alt.Scale(scheme="redyellowgreen", domain=list(SCORE_DOMAIN)),
        title=score_label,
    )
    tooltip = [
        alt.Tooltip("name:N", title=column_label("entity_name", lang)),
        alt.Tooltip("score_text:N", title=score_label),
        *(alt.Tooltip(f"{c}_text:N", title=column_label(c, lang)) for c in _COMPLETIONS),
    ]
    x = alt.X("score:Q", title=score_label, scale=alt.Scale(zero=True))
    upper = (
        alt.Chart(charts.for_chart(top), height=alt.Step(_ROW_PX))
        .mark_bar(cursor="pointer")
        .encode(
            y=alt.Y("label:N", sort=list(top["label"]), title=None),
            x=x,
            color=color,
            stroke=alt.condition(pick, alt.value("#222"), alt.value(None)),
            strokeWidth=alt.condition(pick, alt.value(2), alt.value(0)),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.55)),
            tooltip=tooltip,
        )
        .add_params(pick)
        .properties(
            width=420,
            title=charts.ranked_title(
                t("scoring.drill.subsidiaries", lang),
                shown=len(shown),
                total=len(subs),
                by=t("report.chart.by_lowest", lang, what=score_label),
                lang=lang,
            ),
        )
    )
    caption = (
        alt.Chart(charts.for_chart(top[["sub_id", "caption"]]))
        .mark_text(align="left", fontSize=13, fontWeight="bold", x=0, y=8)
        .encode(text="caption:N")
        .transform_filter(pick)
        .properties(width=420, height=16)
    )
    lower = (
        alt.Chart(charts.for_chart(low), height=alt.Step(_ROW_PX))
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort=alt.EncodingSortField("score", order="ascending"), title=None),
            x=x,
            color=color,
            tooltip=tooltip,
        )
        .transform_filter(pick)
        .transform_window(rank="row_number()", sort=[alt.SortField("score", order="ascending")])
        .transform_filter(alt.datum.rank <= DRILL_UNITS)
        .properties(width=420)
    )
    return alt.vconcat(upper, caption, lower, spacing=8).properties(
        title=alt.TitleParams(
            t("scoring.drill.title", lang), subtitle=t("scoring.drill.how", lang, n=DRILL_UNITS)
        )
    )


def _caption(name: str, n: int, lang: str) -> str:
    """ "<subsidiary>: all 12 units" or "<subsidiary>: 20 lowest-scoring of 57 units"."""
    if n <= DRILL_UNITS:
        return t("scoring.drill.caption_all", lang, name=name, n=n)
    return t("scoring.drill.caption", lang, name=name, n=f"{n:,}", shown=DRILL_UNITS)


def _rows(frame: pd.DataFrame, names: dict, lang: str) -> pd.DataFrame:
    """The chart's columns: subsidiary, short and full name, score and its page text."""
    out = frame[["entity_id", "sub_id", "score", *_COMPLETIONS]]
    out = out.assign(name=out["entity_id"].map(lambda e: names.get(e, e)))
    # long enough for a department named after its subsidiary ("South China Manufacturing
    # Sales Dept 1"): cut at 32 letters, departments of one subsidiary read alike
    out["label"] = charts.short_label(out["name"], 28 if lang == "zh" else 40)
    # the score as the tables write it (fmt_number: 98.28, 105.9)
    out["score_text"] = [fmt_number(v, None, lang) for v in out["score"]]
    for c in _COMPLETIONS:  # "—" where a unit has no metric of the category, as in the tables
        out[f"{c}_text"] = [fmt_number(v, "pct", lang) for v in out[c]]
    return out.drop(columns=["entity_id", *_COMPLETIONS])
