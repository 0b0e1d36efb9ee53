"""Result objects of the panel forecast: tables, fan charts, rankings (not API).

Charts only present what the result holds (no computing); labels come from
``perflink/data/labels/forecast.yaml``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import altair as alt
import pandas as pd

from perflink import charts, labels
from perflink._report_format import fmt_number
from perflink.common import MATERIALITY, severities_from
from perflink.errors import ParamsError
from perflink.forecast._deviation import lead_lags
from perflink.forecast._joint import FEW_ROWS, MIN_SHIFT_ROWS
from perflink.options import ForecastOptions, StatusOptions
from perflink.results import TableResult, TaskResult
from perflink.units import parse_unit, unit_label

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


# Every column of the forecast_deviation table, in order (the empty result has them too).
DEVIATION_TABLE_COLUMNS = [
    "entity_id",
    "period",
    "metric_id",
    "year",
    "ytd_actual",
    "forecast_rest",
    "projected",
    "lo_80",
    "hi_80",
    "lo_95",
    "hi_95",
    "budget",
    "budget_basis",
    "deviation",
    "deviation_pct",
    "p_meet_budget",
    "assessment",
    "deviation_assessment",
    "deviation_assessment_pct",
    "p_meet_assessment",
    "at_stake",
    "lead_months",
    "lead_recent",
    "lead_vs_budget",
    "lead_vs_last_year",
    "kind",
    "status",
    "severity",
    "message",
]
_TEXT_COLUMNS = (
    "entity_id", "period", "metric_id", "budget_basis", "kind", "status", "severity", "message"
)  # fmt: skip
ROLES = ("sales", "profit")
"""Metric roles the forecast page draws fan charts of (:meth:`ForecastResult.chart`)."""


def empty_forecast() -> pd.DataFrame:
    """The ``forecast`` table with no rows (a catalog with nothing to project)."""
    df = pd.DataFrame({c: pd.Series(dtype=float) for c in FORECAST_COLUMNS})
    for c in ("entity_id", "metric_id", "method"):
        df[c] = df[c].astype("str")
    df["period"] = pd.PeriodIndex([], freq="M")
    return df


def empty_deviation() -> pd.DataFrame:
    """The ``forecast_deviation`` table with no rows (a catalog with nothing to project)."""
    df = pd.DataFrame({c: pd.Series(dtype=float) for c in DEVIATION_TABLE_COLUMNS})
    df["year"] = df["year"].astype("int64")
    df["lead_months"] = df["lead_months"].astype("int64")
    for c in _TEXT_COLUMNS:
        df[c] = df[c].astype("str")
    return df


@dataclass(frozen=True)
class ForecastTextResult(TaskResult):
    """A paragraph of the forecast page in the report language (shows itself in HTML).

    Attributes
    ----------
    text : str
        The sentence(s), already localised; escaped when shown.
    language : str
        ``"zh"`` or ``"en"``.
    """

    text: str
    language: str

    def to_frame(self) -> pd.DataFrame:
        """The paragraph as a one-cell table (column ``text``)."""
        return pd.DataFrame({"text": [self.text]})

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.text)}</p>"


def _join(names: Sequence[str], lang: str) -> str:
    return ("、" if lang == "zh" else ", ").join(names)


def _money_title(title: str, unit: str, lang: str) -> str:
    """Axis title naming the currency in zh (the axis labels say 万/亿 of the currency)."""
    if lang != "zh":
        return title  # en axis labels carry the currency (USD 250k)
    currency = unit_label(str(parse_unit(unit).currency), lang)
    return f"{title}（{currency}）" if title else currency


def _value_axis(title: str, unit: str | None, lang: str) -> alt.Axis:
    """Axis of a metric's values: money in its currency's words, other units in the title."""
    if unit and parse_unit(unit).is_money:
        return charts.fmt_axis_money(unit, lang, title=_money_title(title, unit, lang))
    label = unit_label(unit, lang) if unit else ""
    if title and label:
        return alt.Axis(title=f"{title} ({label})")
    return alt.Axis(title=title or label)


# Fan chart series, in legend order: key of the label forecast.legend.<key>, colour. The
# bands are opaque (the 80% band drawn over the 95% one) so the legend shows their colours.
_FAN_SERIES = (
    ("actual", "#222222"),
    ("forecast", "#0b5cad"),
    ("budget", "#c62828"),
    ("band80", "#9dbde3"),
    ("band95", "#d3e2f3"),
)


def _fans(
    hist: pd.DataFrame,
    fc: pd.DataFrame,
    y_axis: alt.Axis,
    title,
    sort: list[str] | None,
    lang: str,
) -> alt.FacetChart:
    """Fan chart panels, one per ``entity`` label: actual and budget (``hist``, the budget
    over the whole fiscal year), forecast mean and 80%/95% bands (``fc``); panels in ``sort``
    order (else alphabetical). One legend names the five layers; every panel draws its own
    month axis, so a last row with fewer panels leaves no axis under an empty cell."""
    words = {key: labels.t(f"forecast.legend.{key}", lang) for key, _ in _FAN_SERIES}
    parts = []
    for df, col, key in (
        (hist, "actual", "actual"),
        (hist, "budget", "budget"),
        (fc, "mean", "forecast"),
    ):
        parts.append(
            df[["entity", "period", col]].rename(columns={col: "value"}).assign(series=words[key])
        )
    for level in ("95", "80"):
        band = fc[["entity", "period", f"lo_{level}", f"hi_{level}"]]
        band = band.rename(columns={f"lo_{level}": "lo", f"hi_{level}": "hi"})
        parts.append(band.assign(series=words[f"band{level}"]))
    data = pd.concat(parts, ignore_index=True)
    data = data[data["value"].notna() | data["lo"].notna()]
    data["month"] = data.pop("period").dt.to_timestamp()
    data = charts.for_chart(data)
    scale = alt.Scale(domain=[words[k] for k, _ in _FAN_SERIES], range=[c for _, c in _FAN_SERIES])
    colour = alt.Color(
        "series:N", scale=scale, legend=alt.Legend(title=None, orient="top", symbolType="square")
    )
    x = alt.X("month:T", title=None)
    tooltip = [
        alt.Tooltip("month:T", title=labels.t("forecast.legend.month", lang)),
        alt.Tooltip("series:N", title=None),
        alt.Tooltip("value:Q", title=y_axis.title or None, format=",.4~r"),
    ]

    def band(key: str) -> alt.Chart:
        return (
            alt.Chart()
            .mark_area()
            .encode(x=x, y=alt.Y("lo:Q", axis=y_axis), y2="hi:Q", color=colour)
            .transform_filter(alt.datum.series == words[key])
        )

    lines = (
        alt.Chart()
        .mark_line(point=alt.OverlayMarkDef(size=14, opacity=0))
        .encode(
            x=x,
            y=alt.Y("value:Q", axis=y_axis),
            color=colour,
            strokeDash=alt.StrokeDash(
                "series:N",
                scale=alt.Scale(
                    domain=[words["actual"], words["forecast"], words["budget"]],
                    range=[[1, 0], [5, 3], [2, 2]],
                ),
                legend=None,
            ),
            tooltip=tooltip,
        )
        .transform_filter("isValid(datum.value)")
    )
    layer = alt.layer(band("band95"), band("band80"), lines, data=data).properties(
        width=240, height=150
    )
    # "unit · metric" headers of the drill-down on two lines: a long pair never runs into
    # the next panel's header
    header = alt.Header(labelExpr="split(datum.label, ' · ')")
    facet = alt.Facet("entity:N", title=None, header=header)
    if sort is not None:
        facet = alt.Facet("entity:N", title=None, sort=sort, header=header)
    return (
        layer.facet(facet=facet, columns=3)
        .resolve_scale(y="independent")
        .resolve_axis(x="independent")
        .properties(title=title)
    )


# Fan charts of the group and its subsidiaries: a 3 x 3 grid at most (each panel ~40 marks).
_FAN_PANELS = 9
# The money-at-stake chart: bars shown, and the widest "unit · metric" label on its axis (in
# Latin-letter widths, a Chinese character counts 2).
_AT_STAKE_BARS = 15
_LABEL_WIDTH = 48


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
        above for metrics whose direction is ``higher``, at or below for the others),
        ``assessment``, ``deviation_assessment``, ``deviation_assessment_pct``,
        ``p_meet_assessment``, ``at_stake`` (projected shortfall against budget in the
        catalog's money unit, 0 when the projection meets budget; NaN for a metric that is
        not money), ``lead_months``,
        ``lead_recent`` (the metric's leading driver over the last ``lead_months`` months,
        in the driver's unit), ``lead_vs_budget``, ``lead_vs_last_year`` (NaN for a metric
        without a leading driver), ``kind`` (entity kind), ``status`` (outlook status from
        the probability of meeting budget, :func:`perflink.common.outlook_status`:
        ``on_track``, ``at_risk``, ``off_track``; empty without budget), ``severity``
        (never against the status: a flag is off track), ``message``.
        Amounts in the metric's catalog unit.
    names : dict
        entity_id -> display name in the report language.
    metric_names : dict
        metric_id -> display name in the report language.
    language : str
        ``"zh"`` or ``"en"``.
    units : Mapping[str, str]
        metric_id -> catalog unit of the metrics in the table and of their leading drivers.
    money_unit : str or None
        The catalog's money unit (:attr:`perflink.catalog.Catalog.money_unit`), the unit
        of ``at_stake``.
    empty_note : str
        Label key of the sentence shown when no row is flagged.
    limit : int or None
        None: the page shows every flagged row with its message. A number: the reading
        layer (:meth:`highlights`), the first ``limit`` flagged rows without the message,
        and a line saying how many there are.
    """

    table: pd.DataFrame
    names: dict
    metric_names: dict
    language: str
    units: Mapping[str, str] = field(default_factory=dict)
    money_unit: str | None = None
    empty_note: str = "forecast.text.no_flags"
    limit: int | None = None

    _units = dict.fromkeys(("deviation_pct", "p_meet_budget"), "pct")
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

    def highlights(self, n: int = 10) -> DeviationResult:
        """What a leader reads: the first ``n`` flagged rows, without the long message.

        The full list (:meth:`view`, with messages) is the page's appendix and the
        ``forecast_deviation`` table.

        Raises
        ------
        ParamsError
            If ``n`` is not a whole number of at least 1.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ParamsError(f"forecast highlights: n must be a whole number >= 1, got {n!r}.")
        return replace(self, limit=n)

    def _shown(self) -> pd.DataFrame:
        f = self.flagged()
        return f if self.limit is None else f.head(self.limit)

    def view(self) -> pd.DataFrame:
        """The flagged rows as people read them: names, projection, budget, severity (and
        the message, except in :meth:`highlights`)."""
        df = self._display(self._shown())
        if self.limit is None:
            # the appendix: the message (which says what the figures mean) beside the names,
            # so a 1024 px screen shows it without scrolling past the figures, and a row is
            # as tall as its message needs, not taller
            return df[["entity", "metric", "message", *df.columns[2:-1]]]
        # every flagged row is off track (the page says so) and the money-at-stake chart
        # below colours each by severity: the reading layer drops them with the message and
        # names each row "unit · metric" in one column (as the chart), so the table fits a
        # 1024 px screen and A4
        df.insert(0, "entity_metric", df["entity"] + " · " + df["metric"])
        return df.drop(columns=["entity", "metric", "message", "status", "severity"])

    def _display(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        cols = ["entity", "metric", "projected", "budget", "deviation_pct", "p_meet_budget"]
        if self.money_unit:
            cols.append("at_stake")
        df = self.flagged() if df is None else df.copy()
        df["entity"] = _name_col(df, self.names)
        df["metric"] = df["metric_id"].map(lambda m: self.metric_names.get(m, m))
        # the outlook status word (perflink.common.outlook_status) beside the probability
        df["status"] = df["status"].map(lambda s: labels.value_label("status", s, self.language))
        return df[[*cols, "status", "severity", "message"]]

    def _empty_chart(self) -> alt.Chart:
        return charts.message(labels.t(self.empty_note, self.language))

    def _repr_html_(self) -> str:
        df = self.view()
        if df.empty:
            return self._note(self.empty_note)
        # rows of several metrics: each amount in its own metric's unit, sorted by value
        ids = self._shown()["metric_id"].to_numpy()
        shown = df.copy()
        order = {}
        for col in ("projected", "budget"):
            values = df[col].to_numpy()
            shown[col] = [
                fmt_number(v, self.units.get(m), self.language)
                for v, m in zip(values, ids, strict=True)
            ]
            order[col] = values
        headers, units = {}, {}
        if "at_stake" in shown:
            # each value carries its currency in the page's words ("CNY 12.6 m", "1,260 万元";
            # 0 where the projection meets budget), so the header names none: a header in the
            # catalog's scale ("CNY 10k") would contradict the values beneath it
            headers["at_stake"] = labels.t("forecast.col.at_stake", self.language)
            units["at_stake"] = self.money_unit
        table = self._table(shown, order=order, headers=headers, units=units)
        total = len(self.flagged())
        if self.limit is not None and total > len(shown):
            return table + self._note("forecast.text.top_rows", n=len(shown), total=total)
        return table

    def chart(self, *, n: int = _AT_STAKE_BARS) -> alt.Chart:
        """Ranked bars of money at stake for the first ``n`` flagged rows, in the money unit.

        Long "unit · metric" names are shortened on the axis
        (:func:`perflink.charts.short_label`); the tooltip gives the full name.
        """
        lang = self.language
        df = self._display()
        df["at_stake"] = self.flagged()["at_stake"].to_numpy()
        df = df[df["at_stake"].notna()].head(n)
        if df.empty or self.money_unit is None:
            key = self.empty_note if self.flagged().empty else "forecast.text.no_money"
            return charts.message(labels.t(key, lang))
        df["severity_label"] = df["severity"].map(lambda s: labels.value_label("severity", s, lang))
        df["label"] = df["entity"] + " · " + df["metric"]
        df["short"] = charts.short_label(df["label"], _LABEL_WIDTH)
        title = _money_title(labels.t("forecast.col.at_stake", lang), self.money_unit, lang)
        return (
            alt.Chart(charts.for_chart(df[["label", "short", "at_stake", "severity_label"]]))
            .mark_bar()
            .encode(
                x=alt.X(
                    "at_stake:Q", axis=charts.fmt_axis_money(self.money_unit, lang, title=title)
                ),
                # already shortened: no second cut by the theme's label limit
                y=alt.Y("short:N", sort="-x", title=None, axis=alt.Axis(labelLimit=0)),
                color=alt.Color(
                    "severity_label:N",
                    scale=charts.severity_scale(labelled=True, lang=lang),
                    title=labels.t("report.col.severity", lang),
                ),
                tooltip=[
                    alt.Tooltip("label:N", title=labels.t("forecast.legend.row", lang)),
                    alt.Tooltip("at_stake:Q", title=title, format=",.1f"),
                ],
            )
            .properties(title=labels.t("forecast.chart.at_stake", lang), height=alt.Step(18))
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
        ``entity_id, metric_id, period, actual, budget`` for the charts: the year before
        and the whole fiscal year, its months after the review quarter with the budget and
        no actual (budget NaN where none).
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
    options : ForecastOptions or None
        The options the forecast ran with, catalog defaults filled in
        (:meth:`perflink.options.ForecastOptions.for_catalog`): its metrics, profit metric
        and flag rule. Empty ``metrics`` = nothing to project (the page says why).
    units : Mapping[str, str]
        metric_id -> catalog unit of the metrics forecast and of their leading drivers.
    roles : Mapping[str, str or None]
        ``sales`` and ``profit`` -> the catalog's metric of that role (None: no metric has it).
    leads : Mapping[str, tuple[str, int]]
        metric_id -> (leading driver, lag in months) for the metrics whose misses quote one.
    status : StatusOptions
        The thresholds of the outlook statuses (the params' ``status:`` block), stated on
        the page.
    """

    forecast: pd.DataFrame
    history: pd.DataFrame
    deviation: DeviationResult
    quarter: str
    year: int
    names: dict
    metric_names: dict
    language: str
    options: ForecastOptions | None = None
    units: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[str, str | None] = field(default_factory=dict)
    leads: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    status: StatusOptions = field(default_factory=StatusOptions)
    #: Level correction per flow (share of the forecast rest of the year), learnt on the
    #: recent calibration windows; empty when the history was too short for them, None
    #: when there was nothing left of the year to calibrate.
    corrections: Mapping[str, float] | None = None
    #: Weight of each flow's own forecast in its blend with the sales forecast at last
    #: year's ratio to sales (the rest), learnt on the same windows; empty when no flow
    #: could be checked or the catalog has no sales metric among the flows.
    blends: Mapping[str, float] | None = None
    #: Units reporting each metric whose unit intervals rest on fewer than ``FEW_ROWS`` of
    #: them, and so take the cautious rank of the checks' misses (the page says which).
    few_units: Mapping[str, int] | None = None

    _frame = "forecast"

    @property
    def nothing(self) -> bool:
        """True when the catalog and params gave no metric to project (the page says why)."""
        return self.options is not None and not self.options.metrics

    def metrics(self) -> list[str]:
        """The metrics projected: the forecast flows, then the profit metric if any."""
        if self.options is None:
            return list(dict.fromkeys(self.forecast["metric_id"]))
        pm = self.options.profit_metric
        return [*self.options.metrics, *([pm] if pm else [])]

    def role_metric(self, role: str) -> str | None:
        """The projected metric of ``role`` (``sales`` or ``profit``), or None.

        Raises
        ------
        ParamsError
            If ``role`` is not one of :data:`ROLES`.
        """
        if role not in ROLES:
            raise ParamsError(f"forecast chart: role {role!r} is not one of {', '.join(ROLES)}.")
        metric = self.roles.get(role)
        return metric if metric in self.metrics() else None

    def _name(self, metric: str) -> str:
        return self.metric_names.get(metric, metric)

    def intro(self) -> ForecastTextResult:
        """The page's opening paragraph: what is forecast and how, or why nothing is."""
        lang = self.language
        if self.nothing:
            return ForecastTextResult(labels.t("forecast.text.nothing", lang), lang)
        pm = self.options.profit_metric if self.options is not None else ""
        flows = _join([self._name(m) for m in self.metrics() if m != pm], lang)
        if pm:
            text = labels.t("forecast.intro", lang, flows=flows, profit=self._name(pm))
            return ForecastTextResult(labels.spaced(text, lang), lang)
        text = labels.t("forecast.intro_flows", lang, flows=flows)
        return ForecastTextResult(labels.spaced(text, lang), lang)

    def method(self) -> ForecastTextResult:
        """How parents, profit and intervals are simulated, the level corrections applied (or
        that the history was too short for them) and how the flows follow sales."""
        lang = self.language
        parts = [labels.t("forecast.text.aggregate", lang)]
        if self.few_units:
            names = _join([self._name(m) for m in self.few_units], lang)
            parts.append(labels.t("forecast.text.few_units", lang, metrics=names, rows=FEW_ROWS))
        if self.corrections:
            each = [f"{self._name(m)} {v:+.1%}" for m, v in self.corrections.items()]
            parts.append(labels.t("forecast.text.level", lang, corrections=_join(each, lang)))
        elif self.corrections is not None and not self.nothing:
            parts.append(labels.t("forecast.text.no_level", lang, rows=MIN_SHIFT_ROWS))
        sales = self.roles.get("sales")
        if self.blends and sales:
            each = [f"{self._name(m)} {w:.0%}" for m, w in self.blends.items()]
            parts.append(
                labels.t(
                    "forecast.text.blend",
                    lang,
                    flows=_join([self._name(m) for m in self.blends], lang),
                    sales=self._name(sales),
                    weights=_join(each, lang),
                )
            )
        text = ("" if lang == "zh" else " ").join(parts)
        return ForecastTextResult(labels.spaced(text, lang), lang)

    def warning(self) -> ForecastTextResult:
        """The flag rule and which leading indicators the warnings quote (or that none are)."""
        lang = self.language
        if self.nothing:
            return ForecastTextResult(labels.t("forecast.text.nothing_short", lang), lang)
        o = self.options or ForecastOptions()
        parts = [
            labels.t(
                "forecast.text.warning",
                lang,
                miss=f"{o.miss_pct:.0%}",
                prob=f"{o.min_probability:.0%}",
                severe=f"{o.severe_miss_pct:.0%}",
                material=f"{MATERIALITY:.0%}",
            ),
            labels.t(
                "forecast.text.status",
                lang,
                on=f"{self.status.on_track:.0%}",
                off=f"{self.status.off_track:.0%}",
            ),
        ]
        if not o.use_drivers:
            parts.append(labels.t("forecast.text.drivers_off", lang))
        elif self.leads:
            for metric, (driver, lag) in self.leads.items():
                name, drv = self._name(metric), self._name(driver)
                lags = lead_lags(lag)
                parts.append(
                    labels.t("forecast.text.lead", lang, metric=name, driver=drv, lags=lags)
                )
        else:
            flows = [self._name(m) for m in (o.metrics or self.metrics())]
            parts.append(labels.t("forecast.text.no_lead", lang, metrics=_join(flows, lang)))
        text = ("" if lang == "zh" else " ").join(parts)
        return ForecastTextResult(labels.spaced(text, lang), lang)

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

    def chart(
        self,
        entities: list[str] | None = None,
        *,
        metric: str | None = None,
        role: str | None = None,
    ) -> alt.TopLevelMixin:
        """Fan charts: actual, forecast with 80%/95% bands, and budget, one panel per entity.

        ``entities`` defaults to the group and its subsidiaries; in a group with more than
        eight subsidiaries, the group and the eight with the most money at stake on
        ``metric`` (the subtitle says so). ``metric`` defaults to the metric of ``role``
        (``sales`` or ``profit``, see :meth:`role_metric`), else the first one forecast.
        Where there is nothing to draw (no metric plays ``role``, it is not forecast, no
        entity is given, nothing is projected) the chart is a sentence saying why. The
        value axis is in the metric's unit.

        Raises
        ------
        ParamsError
            If ``role`` is not one of :data:`ROLES`.
        """
        lang = self.language
        if role is not None and metric is None:
            metric = self.role_metric(role)
            if metric is None:
                return self._role_missing(role)
        if self.nothing or self.forecast.empty:
            return charts.message(labels.t("forecast.text.nothing_short", lang))
        metric = metric or str(self.forecast["metric_id"].iloc[0])
        if entities is not None and len(entities) == 0:
            return charts.message(labels.t("forecast.text.no_flags", lang))
        ranked = None
        if entities is None:
            entities, ranked = self._fan_entities(metric)
        hist = self.history[
            self.history["entity_id"].isin(entities) & (self.history["metric_id"] == metric)
        ].copy()
        fc = self.forecast[
            self.forecast["entity_id"].isin(entities) & (self.forecast["metric_id"] == metric)
        ].copy()
        if hist.empty and fc.empty:
            return charts.message(
                labels.t("forecast.text.no_data", lang, metric=self._name(metric))
            )
        for df in (hist, fc):
            df["entity"] = _name_col(df, self.names)
        y_axis = _value_axis(self._name(metric), self.units.get(metric), lang)
        title = labels.t("forecast.chart.fan", lang, metric=self.metric_names.get(metric, metric))
        sort = None
        if ranked is not None:  # keep the ranking (group first) instead of alphabetical panels
            sort = [self.names.get(e, e) for e in entities]
            title = charts.ranked_title(
                title,
                shown=ranked[0],
                total=ranked[1],
                by=labels.t("forecast.col.at_stake", lang),
                lang=lang,
            )
        return _fans(hist, fc, y_axis, title, sort, lang)

    def drilldown(self) -> alt.TopLevelMixin:
        """Fan charts of the first ``options.top_n`` flagged units, each of the metric it is
        flagged on with the most money at stake; a sentence when none is flagged."""
        lang = self.language
        if self.nothing:
            return charts.message(labels.t("forecast.text.nothing_short", lang))
        top_n = (self.options or ForecastOptions()).top_n
        f = self.deviation.flagged()
        f = f[f["kind"] == "department"].drop_duplicates("entity_id").head(top_n)
        if f.empty:
            return charts.message(labels.t("forecast.text.no_flags", lang))
        pairs = f[["entity_id", "metric_id"]].assign(
            entity=lambda d: [
                f"{self.names.get(e, e)} · {self._name(m)}"
                for e, m in zip(d["entity_id"], d["metric_id"], strict=True)
            ]
        )
        keys = ["entity_id", "metric_id"]
        hist = self.history.merge(pairs, on=keys)
        fc = self.forecast.merge(pairs, on=keys)
        units = {self.units.get(m) for m in pairs["metric_id"]}
        unit = units.pop() if len(units) == 1 else None
        y_axis = _value_axis("", unit, lang) if unit else alt.Axis(title=None)
        title = labels.t("forecast.chart.drilldown", lang)
        return _fans(hist, fc, y_axis, title, list(pairs["entity"]), lang)

    def _role_missing(self, role: str) -> alt.Chart:
        lang = self.language
        if self.nothing:
            return charts.message(labels.t("forecast.text.nothing_short", lang))
        metric = self.roles.get(role)
        if metric is None:
            word = labels.t(f"forecast.role.{role}", lang)
            return charts.message(labels.t("forecast.text.no_role", lang, role=word, code=role))
        return charts.message(
            labels.t("forecast.text.not_forecast", lang, metric=self._name(metric))
        )

    def _repr_html_(self) -> str:
        return self.deviation._repr_html_()


@dataclass(frozen=True)
class BacktestResult(TableResult):
    """Backtest of the panel method: full year per metric and level, monthly accuracy.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per metric (the profit metric too) and level (``unit``, ``subsidiary``,
        ``group``): ``metric_id``, ``level``, ``units_used``, ``units_total`` (a large group
        backtests a sample of units; its parents are then the sums of the sampled units),
        ``n_rows`` (full years compared: entities x origins), ``fy_origins`` (the months the
        full years were projected from, a year before the review's), ``fy_coverage_80``,
        ``fy_coverage_95`` (share of realised full years inside the 80% / 95% interval),
        ``fy_wape`` (sum of absolute full-year errors over the sum of absolute realised
        years), ``fy_wape_snaive`` (the same for seasonal naive: year to date plus the same
        months of the year before); for the flows at unit level the monthly rolling-origin
        accuracy: ``n_series``, ``n_origins``, ``horizon``, ``smape``, ``mase``,
        ``smape_snaive``, ``mase_snaive``, ``coverage_80``, ``coverage_95`` (NaN elsewhere).
        No rows when there is nothing to project.
    language : str
        ``"zh"`` or ``"en"``.
    metric_names : Mapping[str, str]
        metric_id -> display name in the report language (the page shows names).
    calibration : pandas.DataFrame
        Calibration of the probability of meeting budget over the same full-year backtest
        (every metric and level): one row per bin of the probability shown (``p_from``,
        ``p_to``), ``n_rows``, ``p_shown`` (mean probability shown), ``share_met`` (share of
        those rows whose realised year met budget). Empty without targets.
    """

    metric_names: Mapping[str, str] = field(default_factory=dict)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    _empty = "forecast.text.nothing_short"
    _units = dict.fromkeys(
        (
            "coverage_80", "coverage_95", "fy_coverage_80", "fy_coverage_95", "fy_wape",
            "fy_wape_snaive", "p_shown", "share_met",
        ),
        "pct",
    )  # fmt: skip
    _table_name = "forecast_backtest"

    def _name(self, metric: str) -> str:
        return self.metric_names.get(metric, metric)

    def tables(self) -> dict[str, pd.DataFrame]:
        """``forecast_backtest`` and ``forecast_backtest_calibration``."""
        return {
            "forecast_backtest": self.to_frame(),
            "forecast_backtest_calibration": self.calibration.copy(),
        }

    def view(self) -> pd.DataFrame:
        """The table as people read it: metric names and level words instead of ids."""
        df = self.table.copy()
        if "metric_id" in df:
            df.insert(0, "metric", df.pop("metric_id").map(self._name))
        if "level" in df:
            df["level"] = df["level"].map(lambda v: labels.t(f"forecast.level.{v}", self.language))
        return df

    def calibration_view(self) -> pd.DataFrame:
        """The calibration table as people read it: the bin as a range of percentages."""
        df = self.calibration.copy()
        if df.empty:
            return df
        df.insert(
            0,
            "p_range",
            [f"{a:.0%}–{b:.0%}" for a, b in zip(df.pop("p_from"), df.pop("p_to"), strict=True)],
        )
        return df

    def _repr_html_(self) -> str:
        df = self.view()
        if df.empty:
            return self._note(self._empty)
        out = self._note("forecast.text.backtest_method") + self._table(df)
        cal = self.calibration_view()
        if not cal.empty:
            out += self._heading("forecast.heading.calibration")
            out += self._note("forecast.text.calibration")
            out += self._table(cal)
        return out

    def chart(self) -> alt.Chart:
        """Monthly error of the method and of seasonal naive per metric (MASE), as grouped
        bars: one row per metric name on the axis (no facet headers to overlap the ticks),
        the two methods side by side within it, a reference line at 1."""
        lang = self.language
        if self.table.empty:
            return self._empty_chart()
        ours, naive = (labels.t(f"forecast.method.{k}", lang) for k in ("panel", "snaive"))
        rows = []
        for r in self.table.itertuples(index=False):
            if r.level != "unit" or pd.isna(r.mase):
                continue
            name = self._name(r.metric_id)
            rows.append({"metric": name, "who": ours, "mase": r.mase})
            rows.append({"metric": name, "who": naive, "mase": r.mase_snaive})
        if not rows:
            return self._empty_chart()
        df = pd.DataFrame(rows)
        df["short"] = charts.short_label(df["metric"], 28)
        title = labels.t("forecast.chart.mase_axis", lang)
        bars = (
            alt.Chart(df)
            .mark_bar()
            .encode(
                x=alt.X("mase:Q", title=title),
                y=alt.Y("short:N", title=None, sort=None),
                yOffset=alt.YOffset("who:N", sort=[ours, naive]),
                color=alt.Color(
                    "who:N",
                    title=None,
                    scale=alt.Scale(domain=[ours, naive], range=["#0b5cad", "#9aa5b1"]),
                    legend=alt.Legend(orient="top"),
                ),
                tooltip=[
                    alt.Tooltip("metric:N", title=labels.column_label("metric", lang)),
                    alt.Tooltip("who:N", title=labels.column_label("method", lang)),
                    alt.Tooltip("mase:Q", title=title, format=".2f"),
                ],
            )
        )
        one = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(color="#555", strokeDash=[3, 3])
        return alt.layer(bars, one.encode(x="x:Q")).properties(
            title=labels.t("forecast.chart.backtest", lang), height=alt.Step(16)
        )
