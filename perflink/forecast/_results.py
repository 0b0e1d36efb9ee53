"""Result objects of the panel forecast: tables, fan charts, rankings (not API).

Charts only present what the result holds (no computing); labels come from
``perflink/data/labels/forecast.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from perflink import charts, labels
from perflink.common import severities_from
from perflink.results import TableResult, TaskResult

FORECAST_COLUMNS = [
    "entity_id",
    "metric_id",
    "period",
    "mean",
    "lo_80",
    "hi_80",
    "lo_95",
    "hi_95",
    "method",
]
DEVIATION_COLUMNS = [
    "entity_id",
    "period",
    "metric_id",
    "year",
    "ytd_actual",
    "projected",
    "lo_80",
    "hi_80",
    "budget",
    "deviation",
    "deviation_pct",
    "p_meet_budget",
    "assessment",
    "deviation_assessment",
    "deviation_assessment_pct",
    "p_meet_assessment",
    "at_stake",
    "severity",
    "message",
]


# Fan charts of the group and its subsidiaries: a 3 x 3 grid at most (each panel ~40 marks).
_FAN_PANELS = 9


def _name_col(df: pd.DataFrame, names: dict) -> pd.Series:
    return df["entity_id"].map(lambda e: names.get(e, e))


@dataclass(frozen=True)
class DeviationResult(TaskResult):
    """Full-year projection vs budget and assessment target, with early-warning flags.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per entity and metric, ranked (flags first, by ``at_stake``):
        ``entity_id``, ``period`` (review quarter, ``"2026Q3"``), ``metric_id``, ``year``,
        ``ytd_actual``, ``forecast_rest`` (mean), ``projected`` (mean full year),
        ``lo_80, hi_80, lo_95, hi_95`` (full-year interval from the paths), ``budget``,
        ``budget_basis``, ``deviation`` (= projected - budget), ``deviation_pct``,
        ``p_meet_budget`` (probability the year ends at or better than budget: at or
        above for revenue/profit, at or below for costs), ``assessment``,
        ``deviation_assessment``, ``deviation_assessment_pct``, ``p_meet_assessment``,
        ``at_stake`` (expected shortfall against budget, 万元), ``lead_months``,
        ``lead_recent``, ``lead_vs_budget``, ``lead_vs_last_year`` (leading driver of
        revenue over the last months; NaN for other metrics), ``kind`` (entity kind),
        ``severity``, ``message``. Money in 万元 (the metric's unit).
    names : dict
        entity_id -> display name in the report language.
    metric_names : dict
        metric_id -> display name in the report language.
    language : str
        ``"zh"`` or ``"en"``.
    """

    table: pd.DataFrame
    names: dict
    metric_names: dict
    language: str

    _empty = "forecast.text.no_flags"
    _units = {"projected": "money", "budget": "money"} | dict.fromkeys(
        ("deviation_pct", "p_meet_budget"), "pct"
    )
    _table_name = "forecast_deviation"
    _findings = "table"

    def flagged(self) -> pd.DataFrame:
        """Rows with severity ``high`` or ``medium`` (projected misses), ranked."""
        return self.table[self.table["severity"].isin(severities_from("medium"))].copy()

    def top(self, n: int = 5, *, kind: str = "department") -> list[str]:
        """Entity ids of the first ``n`` flagged entities of ``kind`` (for drill-down charts)."""
        f = self.flagged()
        ids = f.loc[f["kind"] == kind, "entity_id"].drop_duplicates()
        return list(ids.head(n))

    def view(self) -> pd.DataFrame:
        """The flagged rows as people read them: names, projection, budget, severity."""
        return self._display()

    def _display(self) -> pd.DataFrame:
        cols = ["entity", "metric", "projected", "budget", "deviation_pct", "p_meet_budget"]
        df = self.flagged()
        df["entity"] = _name_col(df, self.names)
        df["metric"] = df["metric_id"].map(lambda m: self.metric_names.get(m, m))
        return df[[*cols, "severity", "message"]]

    def chart(self) -> alt.Chart:
        """Ranked bars of money at stake for the flagged rows (top 20)."""
        lang = self.language
        df = self._display().head(20)
        df["at_stake"] = self.flagged()["at_stake"].head(20).to_numpy()
        df["severity_label"] = df["severity"].map(lambda s: labels.value_label("severity", s, lang))
        df["label"] = df["entity"] + " · " + df["metric"]
        return (
            alt.Chart(charts.for_chart(df[["label", "at_stake", "severity_label"]]))
            .mark_bar()
            .encode(
                x=alt.X(
                    "at_stake:Q",
                    axis=charts.fmt_axis_money(lang, title=labels.t("forecast.col.at_stake", lang)),
                ),
                y=alt.Y("label:N", sort="-x", title=None),
                color=alt.Color(
                    "severity_label:N",
                    scale=charts.severity_scale(labelled=True, lang=lang),
                    title=labels.t("report.col.severity", lang),
                ),
                tooltip=["label:N", "at_stake:Q"],
            )
            .properties(title=labels.t("forecast.chart.at_stake", lang))
        )


@dataclass(frozen=True)
class ForecastResult(TaskResult):
    """Monthly forecasts for every unit, subsidiary and the group, with the deviation.

    Attributes
    ----------
    forecast : pandas.DataFrame
        The ``forecast`` table: ``entity_id, metric_id, period, mean, lo_80, hi_80,
        lo_95, hi_95, method`` for each month after the review quarter (metric units).
    history : pandas.DataFrame
        ``entity_id, metric_id, period, actual, budget`` for the charts (the fiscal year
        and the year before; budget NaN where none).
    deviation : DeviationResult
        Full-year projection vs budget and target, flags and messages.
    quarter : str
        The review quarter, e.g. ``"2026Q3"``.
    year : int
        Fiscal year projected.
    names, metric_names : dict
        Display names in the report language.
    language : str
        ``"zh"`` or ``"en"``.
    """

    forecast: pd.DataFrame
    history: pd.DataFrame
    deviation: DeviationResult
    quarter: str
    year: int
    names: dict
    metric_names: dict
    language: str

    _frame = "forecast"

    def to_frame(self) -> pd.DataFrame:
        """The ``forecast`` table (see ``forecast``)."""
        return self.forecast[FORECAST_COLUMNS].copy()

    def tables(self) -> dict[str, pd.DataFrame]:
        """``forecast`` and ``forecast_deviation``."""
        return {"forecast": self.to_frame(), **self.deviation.tables()}

    def findings_table(self) -> pd.DataFrame | None:
        """The deviation findings (``forecast_deviation``)."""
        return self.deviation.findings_table()

    def _fan_entities(self, metric: str) -> tuple[list[str], tuple[int, int] | None]:
        """The group and its subsidiaries, at most ``_FAN_PANELS`` panels.

        With more subsidiaries than fit, those with the most money at stake on ``metric``
        are kept (the rest are in the deviation table and ``tables/``), and the second item
        is (subsidiaries shown, subsidiaries there are); else it is ``None``.
        """
        table = self.deviation.table
        rows = table[table["metric_id"] == metric]
        if rows.empty:
            rows = table.drop_duplicates("entity_id")
        groups = list(rows.loc[rows["kind"] == "group", "entity_id"].drop_duplicates())
        subs = (
            rows[rows["kind"] == "subsidiary"]
            .sort_values("at_stake", ascending=False, na_position="last", kind="stable")[
                "entity_id"
            ]
            .drop_duplicates()
        )
        if len(groups) + len(subs) <= _FAN_PANELS:
            keep = set(groups) | set(subs)
            return [e for e in table["entity_id"].drop_duplicates() if e in keep], None
        shown = list(subs.head(max(_FAN_PANELS - len(groups), 1)))
        return [*groups, *shown], (len(shown), len(subs))

    def chart(self, entities: list[str] | None = None, *, metric: str | None = None) -> alt.Chart:
        """Fan charts: actual, forecast with 80%/95% bands, and budget, one panel per entity.

        ``entities`` defaults to the group and its subsidiaries; in a group with more than
        eight subsidiaries, the group and the eight with the most money at stake on
        ``metric`` (the subtitle says so). ``metric`` defaults to the first one forecast.
        """
        lang = self.language
        metric = metric or str(self.forecast["metric_id"].iloc[0])
        ranked = None
        if entities is None:
            entities, ranked = self._fan_entities(metric)
        hist = self.history[
            self.history["entity_id"].isin(entities) & (self.history["metric_id"] == metric)
        ].copy()
        fc = self.forecast[
            self.forecast["entity_id"].isin(entities) & (self.forecast["metric_id"] == metric)
        ].copy()
        for df in (hist, fc):
            df["entity"] = _name_col(df, self.names)
            df["month"] = df["period"].dt.to_timestamp()
        base_x = alt.X("month:T", title=None)
        y_axis = charts.fmt_axis_money(lang, title=self.metric_names.get(metric, metric))
        band95 = (
            alt.Chart()
            .mark_area(opacity=0.18, color="#0b5cad")
            .encode(x=base_x, y=alt.Y("lo_95:Q", axis=y_axis), y2="hi_95:Q")
        )
        band80 = (
            alt.Chart()
            .mark_area(opacity=0.3, color="#0b5cad")
            .encode(x=base_x, y="lo_80:Q", y2="hi_80:Q")
        )
        mean = (
            alt.Chart().mark_line(strokeDash=[4, 2], color="#0b5cad").encode(x=base_x, y="mean:Q")
        )
        actual = alt.Chart().mark_line(color="#222").encode(x=base_x, y=alt.Y("actual:Q"))
        budget = (
            alt.Chart().mark_line(color="#c62828", strokeDash=[2, 2]).encode(x=base_x, y="budget:Q")
        )
        data = pd.concat(
            [
                charts.for_chart(hist[["entity", "month", "actual", "budget"]]),
                charts.for_chart(
                    fc[["entity", "month", "mean", "lo_80", "hi_80", "lo_95", "hi_95"]]
                ),
            ],
            ignore_index=True,
        )
        layer = alt.layer(band95, band80, mean, actual, budget, data=data).properties(
            width=240, height=150
        )
        title = labels.t("forecast.chart.fan", lang, metric=self.metric_names.get(metric, metric))
        facet = alt.Facet("entity:N", title=None)
        if ranked is not None:  # keep the ranking (group first) instead of alphabetical panels
            facet = alt.Facet("entity:N", title=None, sort=[self.names.get(e, e) for e in entities])
            title = charts.ranked_title(
                title,
                shown=ranked[0],
                total=ranked[1],
                by=labels.t("forecast.col.at_stake", lang),
                lang=lang,
            )
        return (
            layer.facet(facet=facet, columns=3)
            .resolve_scale(y="independent")
            .properties(title=title)
        )

    def _repr_html_(self) -> str:
        return self.deviation._repr_html_()


@dataclass(frozen=True)
class BacktestResult(TableResult):
    """Rolling-origin backtest of the panel method, per metric.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per metric: ``metric_id``, ``n_series``, ``n_origins``, ``horizon``,
        ``smape``, ``mase`` (chosen method, means over series and origins),
        ``smape_snaive``, ``mase_snaive`` (seasonal naive), ``coverage_80``,
        ``coverage_95`` (share of actuals inside the intervals), ``fy_origin`` (month
        the full-year check forecasts from, a year before the cutoff),
        ``fy_abs_error_pct`` (mean absolute % error of the projected full year),
        ``fy_coverage_80`` (share of full-year actuals inside the 80% path interval).
    language : str
        ``"zh"`` or ``"en"``.
    """

    _units = dict.fromkeys(
        ("coverage_80", "coverage_95", "fy_coverage_80", "fy_abs_error_pct"), "pct"
    )
    _table_name = "forecast_backtest"

    def chart(self) -> alt.Chart:
        """MASE of the method and of seasonal naive per metric."""
        lang = self.language
        rows = []
        for r in self.table.itertuples(index=False):
            rows.append(
                {
                    "metric": r.metric_id,
                    "who": labels.t("forecast.method.panel", lang),
                    "mase": r.mase,
                }
            )
            rows.append(
                {
                    "metric": r.metric_id,
                    "who": labels.t("forecast.method.snaive", lang),
                    "mase": r.mase_snaive,
                }
            )
        return (
            alt.Chart(pd.DataFrame(rows))
            .mark_bar()
            .encode(
                x=alt.X("mase:Q", title="MASE"),
                y=alt.Y("who:N", title=None),
                row=alt.Row("metric:N", title=None),
                color=alt.Color("who:N", title=None),
            )
            .properties(title=labels.t("forecast.chart.backtest", lang), height=50)
        )
