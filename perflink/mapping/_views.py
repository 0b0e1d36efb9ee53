"""Result objects of :mod:`perflink.mapping`, part 2: drivers, quality, status, the bundle.

Not API: import the classes from :mod:`perflink.mapping`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import altair as alt
import pandas as pd

from perflink import charts
from perflink._report_format import TABLE_MAX_ROWS
from perflink.labels import t, value_label
from perflink.mapping._common import FINDING_COLUMNS, findings_frame, section_html, table_html
from perflink.mapping._results import (
    _PCT,
    CaliberResult,
    CatalogCheckResult,
    CompletenessResult,
    RuleCheckResult,
    _html,
    _severity_bars,
    _summary,
)


@dataclass(frozen=True)
class DriverStrengthResult:
    """Strength of every business → finance mapping (table ``driver_strength``).

    Attributes
    ----------
    table : DataFrame
        One row per mapping: ``mapping_id, mapping, driver, target, sign, lag, model
        (simple|partial), transform (log-log, level-log, ...), elasticity, ci_low, ci_high
        (95%), p_value, within_r2, n_obs, n_entities, elasticity_prev, elasticity_last
        (previous / last 12 months), stability_z, strength (confirmed|weak|wrong_sign|
        unstable|insufficient_data), severity, message``. Estimates are NaN for
        ``insufficient_data``.
    lang : str
    """

    table: pd.DataFrame
    lang: str = "zh"

    def to_frame(self) -> pd.DataFrame:
        """The driver-strength table."""
        return self.table.copy()

    def chart(self) -> alt.Chart:
        """Elasticity with its 95% interval per mapping, coloured by verdict (axis ±3)."""
        d = self.table.dropna(subset=["elasticity"])
        if d.empty:
            return charts.message(t("mapping.result.none", self.lang))
        d = d.assign(
            verdict=[t(f"mapping.value.strength.{s}", self.lang) for s in d["strength"]],
            expected=d["sign"].astype(float),
        )
        base = alt.Chart(d, title=t("mapping.chart.drivers", self.lang))
        scale = alt.Scale(domain=[-3, 3], clamp=True)
        y = alt.Y("mapping:N", title=t("mapping.chart.mapping", self.lang), sort=None)
        return alt.layer(
            base.mark_rule(strokeWidth=2).encode(
                x=alt.X("ci_low:Q", scale=scale, title=t("mapping.col.elasticity", self.lang)),
                x2="ci_high:Q",
                y=y,
                color=alt.Color("verdict:N", title=t("mapping.col.strength", self.lang)),
            ),
            base.mark_point(filled=True, size=70).encode(
                x=alt.X("elasticity:Q", scale=scale),
                y=y,
                color="verdict:N",
                tooltip=["mapping_id", "elasticity", "ci_low", "ci_high", "p_value", "n_obs"],
            ),
            alt.Chart(pd.DataFrame({"zero": [0.0]}))
            .mark_rule(strokeDash=[4, 4])
            .encode(x="zero:Q"),
        )

    def _repr_html_(self) -> str:
        cols = [
            "mapping_id", "mapping", "lag", "elasticity", "ci_low", "ci_high", "p_value",
            "within_r2", "n_obs", "n_entities", "elasticity_prev", "elasticity_last", "strength",
        ]  # fmt: skip
        return _html("mapping.result.drivers", None, self.table[cols], self.lang)


@dataclass(frozen=True)
class DataQualityResult:
    """Data-quality index per source system (table ``data_quality``).

    Attributes
    ----------
    table : DataFrame
        One row per ``source_system`` for the review quarter: ``owner`` (``/``-joined),
        ``expected_values, present, missing, failing`` (present values read by a breached
        rule), ``completeness = present / expected_values``, ``pass_rate = (present -
        failing) / present``, ``dq_index = (present - failing) / expected_values``,
        ``status`` (green / amber / red by the thresholds).
    lang : str
    """

    table: pd.DataFrame
    lang: str = "zh"

    def to_frame(self) -> pd.DataFrame:
        """The data-quality table."""
        return self.table.copy()

    def chart(self) -> alt.Chart:
        """Bar per source system, coloured by status."""
        if self.table.empty:
            return charts.message(t("mapping.result.none", self.lang))
        d = self.table.assign(
            status_label=[value_label("status", s, self.lang) for s in self.table["status"]]
        )
        return (
            alt.Chart(d, title=t("mapping.chart.quality", self.lang))
            .mark_bar()
            .encode(
                x=alt.X(
                    "dq_index:Q",
                    scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(format="%"),
                    title=None,
                ),
                y=alt.Y(
                    "source_system:N", sort="x", title=t("report.col.source_system", self.lang)
                ),
                color=alt.Color(
                    "status_label:N",
                    scale=charts.status_scale(labelled=True, lang=self.lang),
                    title=t("report.col.status", self.lang),
                ),
                tooltip=["source_system", "dq_index", "completeness", "pass_rate"],
            )
        )

    def _repr_html_(self) -> str:
        return _html("mapping.result.quality", None, self.table, self.lang)


@dataclass(frozen=True)
class StatusResult:
    """Green / amber / red per subsidiary for the review quarter.

    Attributes
    ----------
    table : DataFrame
        ``entity_id`` (subsidiary), ``name``, ``units``, ``findings`` (excluding info),
        counts ``critical, high, medium, low``, ``status`` (red: a critical or high finding;
        amber: a medium one; green otherwise) and ``worst`` (message of its top finding).
    lang : str
    group : str
        The group entity (no parent), where group-wide findings such as driver strength sit.
    """

    table: pd.DataFrame
    lang: str = "zh"
    group: str = ""

    def to_frame(self) -> pd.DataFrame:
        """The status table."""
        return self.table.copy()

    def chart(self) -> alt.Chart:
        """Findings per subsidiary, coloured by status."""
        if self.table.empty:
            return charts.message(t("mapping.result.none", self.lang))
        d = self.table.assign(
            status_label=[value_label("status", s, self.lang) for s in self.table["status"]]
        )
        return (
            alt.Chart(d, title=t("mapping.result.status", self.lang))
            .mark_bar()
            .encode(
                x=alt.X("findings:Q", title=t("mapping.col.findings", self.lang)),
                y=alt.Y("entity_id:N", title=None),
                color=alt.Color(
                    "status_label:N",
                    scale=charts.status_scale(labelled=True, lang=self.lang),
                    title=t("report.col.status", self.lang),
                ),
                tooltip=["entity_id", "name", "findings", "status_label"],
            )
        )

    def _repr_html_(self) -> str:
        return _html("mapping.result.status", None, self.table, self.lang)


@dataclass(frozen=True)
class FindingsResult:
    """A findings table to show on its own (e.g. the most severe ones).

    Attributes
    ----------
    findings : DataFrame
        Validation-findings columns.
    lang : str
    """

    findings: pd.DataFrame
    lang: str = "zh"

    def to_frame(self) -> pd.DataFrame:
        """The findings table."""
        return self.findings.copy()

    def chart(self) -> alt.Chart:
        """Findings per check, coloured by severity."""
        return _severity_bars(self.findings, "check", t("mapping.h.findings", self.lang), self.lang)

    def _repr_html_(self) -> str:
        table = self.findings.drop(columns=["source_refs"], errors="ignore")
        return table_html(table, lang=self.lang, pct=_PCT, max_rows=TABLE_MAX_ROWS)


@dataclass(frozen=True)
class ValidationResult:
    """Everything notebook 01 shows for the quarter.

    Attributes
    ----------
    quarter : str
        The review quarter, ``"2026Q3"``.
    catalog, completeness, rules, calibers, drivers, quality, status
        The part results (:class:`CatalogCheckResult`, :class:`CompletenessResult`,
        :class:`RuleCheckResult`, :class:`CaliberResult`, :class:`DriverStrengthResult`,
        :class:`DataQualityResult`, :class:`StatusResult`).
    lang : str
    """

    quarter: str
    catalog: CatalogCheckResult
    completeness: CompletenessResult
    rules: RuleCheckResult
    calibers: CaliberResult
    drivers: DriverStrengthResult
    quality: DataQualityResult
    status: StatusResult
    lang: str = "zh"

    def to_frame(self) -> pd.DataFrame:
        """Table ``validation_findings``: every finding of every part, most severe first."""
        return _all_findings(self)

    def top(self, n: int = 15) -> FindingsResult:
        """The ``n`` most severe findings (info left out)."""
        f = self.to_frame()
        return FindingsResult(f[f["severity"] != "info"].head(n).reset_index(drop=True), self.lang)

    def findings(self) -> FindingsResult:
        """All findings as a result to show."""
        return FindingsResult(self.to_frame(), self.lang)

    def chart(self) -> alt.Chart:
        """The breach heat map (entity × month)."""
        return self.rules.chart()

    def _repr_html_(self) -> str:
        body = f"<p>{html.escape(_summary(self.to_frame(), self.lang))}</p>"
        return (
            section_html(t("mapping.result.validation", self.lang), body)
            + self.status._repr_html_()
        )


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
