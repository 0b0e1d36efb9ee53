"""Result objects of :mod:`perflink.mapping`, part 2: drivers, quality, status, the bundle.

Not API: import the classes from :mod:`perflink.mapping`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, replace

import altair as alt
import pandas as pd

from perflink import charts
from perflink.common import SEVERITY_RANK
from perflink.labels import t, value_label
from perflink.mapping._common import FINDING_COLUMNS, findings_frame, lag_text, p_text
from perflink.mapping._results import (
    HEAT_COLORS,
    CaliberResult,
    CatalogCheckResult,
    CompletenessResult,
    MappingFindingsResult,
    MappingResult,
    RuleCheckResult,
    _summary,
)
from perflink.results import TableResult


@dataclass(frozen=True)
class _TableResult(MappingResult, TableResult):
    """A mapping result whose main table is ``table`` (no findings summary on top)."""

    _frame = "table"
    _summarise = False

    def view(self) -> pd.DataFrame:
        return self.table

    def _status_bars(
        self, title_key: str, x: alt.X, y: alt.Y, tooltip: list, *, col: str = "status"
    ) -> alt.Chart:
        """Bars of ``x`` per ``y``, coloured by ``col`` (``status``: the report's status words,
        :data:`perflink.charts.STATUS_WORD_COLORS`; ``severity``: the severity colours),
        titled ``title_key``."""
        lang = self.language
        if self.table.empty:
            return self._empty_chart()
        colors = (
            {s: charts.STATUS_WORD_COLORS[s] for s in ("met", "near_miss", "missed")}
            if col == "status"
            else {**HEAT_COLORS}
        )
        d = self.table.assign(status_label=[value_label(col, s, lang) for s in self.table[col]])
        scale = alt.Scale(
            domain=[value_label(col, c, lang) for c in colors], range=list(colors.values())
        )
        color = alt.Color(
            "status_label:N",
            scale=scale,
            title=t(f"report.col.{col}", lang),
            legend=alt.Legend(labelLimit=0, titleLimit=0),
        )
        return (
            alt.Chart(d, title=t(title_key, lang))
            .mark_bar()
            .encode(x=x, y=y, color=color, tooltip=tooltip)
        )


#: verdict colours: blue holds, greys cannot tell, orange and red do not hold
_VERDICT_COLORS = {
    "confirmed": "#0b5cad",
    "unstable": "#8e44ad",
    "inconclusive": "#9e9e9e",
    "insufficient_data": "#cfcfcf",
    "weak": "#e07b00",
    "wrong_sign": "#c62828",
}


def _fixed(x: float) -> str:
    """An elasticity or R² as the page and the chart write it: two decimals, math minus."""
    if pd.isna(x):
        return "—"
    text = f"{x:.2f}"
    return "0.00" if text == "-0.00" else text.replace("-", "−")


def _interval(lo: float, hi: float, lang: str) -> str:
    """A 95% interval as text, ``"0.62 至 0.81"`` / ``"0.62 to 0.81"`` (``—`` when missing)."""
    if pd.isna(lo) or pd.isna(hi):
        return "—"
    return t("mapping.text.interval", lang, lo=_fixed(lo), hi=_fixed(hi))


@dataclass(frozen=True)
class DriverStrengthResult(_TableResult):
    """Strength of every business → finance mapping (table ``driver_strength``).

    Attributes
    ----------
    table : DataFrame
        One row per mapping: ``mapping_id, mapping, driver, target, sign, lag, model
        (simple|partial), transform (log-log, level-log, ...), elasticity (monthly, within
        unit: what tests the mapping), ci_low, ci_high (95%), p_value, within_r2, n_obs,
        n_entities, elasticity_prev, elasticity_last (previous / last 12 months),
        elasticity_quarter (year over year on 3-month windows, no controls: the figure the
        KPI decomposition uses, :func:`perflink.kpi.estimate_elasticities`), stability_z,
        strength (confirmed|weak|wrong_sign|
        unstable|insufficient_data), severity, message``. Estimates are NaN for
        ``insufficient_data``.
    language : str
    """

    _section = "mapping.result.drivers"
    _table_name = "driver_strength"

    def chart(self) -> alt.Chart:
        """Elasticity with its 95% interval per mapping, coloured by verdict (axis ±3)."""
        d = self.table.dropna(subset=["elasticity"])
        if d.empty:
            return self._empty_chart()
        lang = self.language
        d = d.assign(
            verdict=[t(f"mapping.value.strength.{s}", lang) for s in d["strength"]],
            expected=d["sign"].astype(float),
            interval=[
                _interval(lo, hi, lang) for lo, hi in zip(d["ci_low"], d["ci_high"], strict=True)
            ],
            p_text=[p_text(p, lang) for p in d["p_value"]],
        )
        base = alt.Chart(d, title=t("mapping.chart.drivers", lang))
        scale = alt.Scale(domain=[-3, 3], clamp=True)
        y = alt.Y(
            "mapping:N",
            title=None,  # the names say it ("driver → target"); a title would crowd them
            sort=None,
            axis=alt.Axis(labelLimit=0),
        )
        verdicts = [t(f"mapping.value.strength.{s}", lang) for s in _VERDICT_COLORS]
        color = alt.Color(
            "verdict:N",
            title=t("mapping.col.strength", lang),
            scale=alt.Scale(domain=verdicts, range=list(_VERDICT_COLORS.values())),
            legend=alt.Legend(labelLimit=0, titleLimit=0, values=list(dict.fromkeys(d["verdict"]))),
        )
        col = lambda c: t(f"mapping.col.{c}", lang)  # noqa: E731
        return alt.layer(
            base.mark_rule(strokeWidth=2).encode(
                x=alt.X("ci_low:Q", scale=scale, title=col("elasticity")),
                x2="ci_high:Q",
                y=y,
                color=color,
            ),
            base.mark_point(filled=True, size=70).encode(
                x=alt.X("elasticity:Q", scale=scale),
                y=y,
                color=color,
                tooltip=[
                    alt.Tooltip("mapping:N", title=col("mapping")),
                    alt.Tooltip("elasticity:Q", title=col("elasticity"), format=".2f"),
                    alt.Tooltip("interval:N", title=col("interval")),
                    alt.Tooltip("p_text:N", title=col("p_text")),
                    alt.Tooltip("n_obs:Q", title=col("n_obs")),
                    alt.Tooltip("verdict:N", title=col("strength")),
                ],
            ),
            alt.Chart(pd.DataFrame({"zero": [0.0]}))
            .mark_rule(strokeDash=[4, 4])
            .encode(x="zero:Q"),
        )

    def view(self) -> pd.DataFrame:
        """One row per mapping in words: the mapping, its lag, the monthly elasticity with its
        95% interval, the quarterly elasticity, the p value as ``p < 0.001``, the within R²,
        the observations and the verdict (ids and the two halves stay in the saved table)."""
        lang, d = self.language, self.table
        return pd.DataFrame(
            {
                "mapping": d["mapping"],
                "lag_text": [lag_text(int(x), lang) for x in d["lag"]],
                "elasticity": [_fixed(x) for x in d["elasticity"]],
                "interval": [
                    _interval(lo, hi, lang)
                    for lo, hi in zip(d["ci_low"], d["ci_high"], strict=True)
                ],
                "elasticity_quarter": [_fixed(x) for x in d["elasticity_quarter"]],
                "p_text": [p_text(float(p), lang) for p in d["p_value"]],
                "within_r2": [_fixed(x) for x in d["within_r2"]],
                "n_obs": d["n_obs"],
                "strength": d["strength"],
            }
        )


@dataclass(frozen=True)
class DataQualityResult(_TableResult):
    """Data-quality index per source system (table ``data_quality``).

    Attributes
    ----------
    table : DataFrame
        One row per ``source_system`` for the review quarter: ``owner`` (joined by `` / ``),
        ``expected_values, present, missing, failing`` (present values read by a breached
        rule), ``completeness = present / expected_values``, ``pass_rate = (present -
        failing) / present``, ``dq_index = (present - failing) / expected_values``,
        ``status`` (``met`` at or above ``dq_green``, ``near_miss`` at or above ``dq_amber``,
        else ``missed``: the report's status words).
    language : str
    """

    _section = "mapping.result.quality"
    _table_name = "data_quality"

    def chart(self) -> alt.Chart:
        """Bar per source system, coloured by status."""
        return self._status_bars(
            "mapping.chart.quality",
            alt.X(
                "dq_index:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title=None
            ),
            alt.Y(
                "source_system:N",
                sort="x",
                title=t("report.col.source_system", self.language),
                axis=alt.Axis(labelLimit=0),
            ),
            [
                alt.Tooltip("source_system:N", title=t("report.col.source_system", self.language)),
                alt.Tooltip(
                    "dq_index:Q", title=t("mapping.col.dq_index", self.language), format=".1%"
                ),
                alt.Tooltip(
                    "completeness:Q",
                    title=t("mapping.col.completeness", self.language),
                    format=".1%",
                ),
                alt.Tooltip(
                    "pass_rate:Q", title=t("mapping.col.pass_rate", self.language), format=".1%"
                ),
            ],
        )


@dataclass(frozen=True)
class StatusResult(_TableResult):
    """Per subsidiary, the worst severity of its units' findings in the review quarter.

    Attributes
    ----------
    table : DataFrame
        ``entity_id`` (subsidiary), ``name``, ``units``, ``findings`` (excluding info),
        counts ``critical, high, medium, low``, ``severity`` (the worst of them; ``none``
        without findings) and ``worst`` (message of its top finding).
    language : str
    group : str
        The group entity (no parent), where group-wide findings such as driver strength sit.
    limit : int or None
        How many subsidiaries its HTML lists: those with findings, worst first (None: all of
        them in table order, see :meth:`full`); a note counts the others, so the page does
        not grow with the number of subsidiaries.
    """

    group: str = ""
    limit: int | None = 10

    _section = "mapping.result.status"

    def view(self) -> pd.DataFrame:
        """Per subsidiary by name: units, findings, the worst severity and the top finding
        (with ``limit``: the subsidiaries with findings, worst first, at most ``limit``)."""
        d = self.table
        if self.limit is not None and len(d) and {"findings", "severity"} <= set(d.columns):
            rank = d["severity"].map(SEVERITY_RANK).fillna(len(SEVERITY_RANK))
            d = d.assign(_r=rank)[d["findings"] > 0]
            d = d.sort_values(["_r", "findings"], ascending=[True, False], kind="stable")
            d = d.head(self.limit)
        return d[[c for c in ("name", "units", "findings", "severity", "worst") if c in d]]

    def full(self) -> StatusResult:
        """The same result listing every subsidiary (the appendix table)."""
        return replace(self, limit=None)

    def _repr_html_(self) -> str:
        shown = self.view()
        if self.limit is None or self.table.empty or "findings" not in self.table:
            return super()._repr_html_()
        with_findings = int((self.table["findings"] > 0).sum())
        notes = []
        if with_findings > len(shown):
            notes.append(self._note("mapping.text.more", more=with_findings - len(shown)))
        if len(self.table) > with_findings:
            notes.append(self._note("mapping.text.status_clean", n=len(self.table) - with_findings))
        body = self._table(shown) if len(shown) else ""
        return self._section_html(body + "".join(notes))

    def chart(self) -> alt.Chart:
        """Findings per subsidiary, coloured by the worst severity among them."""
        return self._status_bars(
            "mapping.result.status",
            alt.X("findings:Q", title=t("mapping.col.findings", self.language)),
            alt.Y("name:N", title=None, axis=alt.Axis(labelLimit=0)),
            [
                alt.Tooltip("name:N", title=t("mapping.col.name", self.language)),
                alt.Tooltip("findings:Q", title=t("mapping.col.findings", self.language)),
                alt.Tooltip("status_label:N", title=t("report.col.severity", self.language)),
            ],
            col="severity",
        )


@dataclass(frozen=True)
class ValidationResult(MappingResult):
    """Everything notebook 01 shows for the quarter.

    Attributes
    ----------
    quarter : str
        The review quarter, ``"2026Q3"``.
    catalog, completeness, rules, calibers, drivers, quality, status
        The part results (:class:`CatalogCheckResult`, :class:`CompletenessResult`,
        :class:`RuleCheckResult`, :class:`CaliberResult`, :class:`DriverStrengthResult`,
        :class:`DataQualityResult`, :class:`StatusResult`).
    language : str
    """

    quarter: str
    catalog: CatalogCheckResult
    completeness: CompletenessResult
    rules: RuleCheckResult
    calibers: CaliberResult
    drivers: DriverStrengthResult
    quality: DataQualityResult
    status: StatusResult
    language: str

    _table_name = "validation_findings"
    _findings = "to_frame"

    def to_frame(self) -> pd.DataFrame:
        """Table ``validation_findings``: every finding of every part, most severe first."""
        return _all_findings(self)

    def tables(self) -> dict[str, pd.DataFrame]:
        """``validation_findings``, ``driver_strength`` and ``data_quality``."""
        return {**super().tables(), **self.drivers.tables(), **self.quality.tables()}

    def findings(self) -> MappingFindingsResult:
        """All findings as a result to show."""
        return MappingFindingsResult(self.to_frame(), self.language)

    def chart(self) -> alt.Chart:
        """The breach heat map (entity × month)."""
        return self.rules.chart()

    def _repr_html_(self) -> str:
        body = f"<p>{html.escape(_summary(self.to_frame(), self.language))}</p>"
        title = html.escape(t("mapping.result.validation", self.language))
        section = f'<div class="pl-result"><h4>{title}</h4>{body}</div>'
        return section + self.status._repr_html_()


def _all_findings(r: ValidationResult) -> pd.DataFrame:
    drv = r.drivers.table
    bad = drv[drv["strength"] != "confirmed"]
    drv_rows = pd.DataFrame(
        {
            "entity_id": r.status.group,
            "period": r.quarter,
            "metric_id": bad["target"],
            "rule_id": bad["mapping_id"],
            "check": "driver",
            "severity": bad["severity"],
            "value": bad["elasticity"],
            "expected": bad["sign"].astype(float),
            "message": bad["message"],
        }
    )
    parts = [
        r.catalog.findings,
        r.completeness.findings,
        r.rules.findings,
        r.calibers.findings,
        drv_rows,
    ]
    frames = [p.reindex(columns=FINDING_COLUMNS) for p in parts if len(p)]
    if not frames:
        return findings_frame([])
    return findings_frame(pd.concat(frames, ignore_index=True))


FindingsResult = MappingFindingsResult  # its name before issue 13 (summary has its own)
