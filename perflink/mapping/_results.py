"""Result objects of :mod:`perflink.mapping` (computing lives elsewhere; these present).

Not API: import the classes from :mod:`perflink.mapping`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from perflink import charts
from perflink._report_format import TABLE_MAX_ROWS
from perflink.labels import t, value_label
from perflink.mapping._common import SEVERITY_ORDER, section_html, table_html

_PCT = ("deviation", "completeness", "pass_rate", "dq_index")
_TOP = 30


def _summary(findings: pd.DataFrame, lang: str) -> str:
    if findings.empty:
        return t("mapping.result.none", lang)
    counts = findings["severity"].value_counts()
    return t(
        "mapping.result.summary",
        lang,
        n=len(findings),
        **{s: int(counts.get(s, 0)) for s in SEVERITY_ORDER},
    )


def _html(title_key: str, findings: pd.DataFrame | None, table: pd.DataFrame, lang: str) -> str:
    head = "" if findings is None else f"<p>{html.escape(_summary(findings, lang))}</p>"
    table = table_html(table, lang=lang, pct=_PCT, max_rows=TABLE_MAX_ROWS)
    return section_html(t(title_key, lang), head + table)


def _severity_bars(findings: pd.DataFrame, by: str, title: str, lang: str) -> alt.Chart:
    if findings.empty:
        return charts.message(t("mapping.result.none", lang))
    counts = findings.groupby([by, "severity"]).size().rename("n").reset_index()
    counts["severity_label"] = [value_label("severity", s, lang) for s in counts["severity"]]
    return (
        alt.Chart(counts, title=title)
        .mark_bar()
        .encode(
            x=alt.X("n:Q", title=t("mapping.chart.count", lang)),
            y=alt.Y(f"{by}:N", title=None, sort="-x"),
            color=alt.Color(
                "severity_label:N",
                scale=charts.severity_scale(labelled=True, lang=lang),
                title=t("report.col.severity", lang),
            ),
            tooltip=[by, "severity_label", "n"],
        )
    )


@dataclass(frozen=True)
class CatalogCheckResult:
    """Catalog integrity findings.

    Attributes
    ----------
    findings : DataFrame
        One row per problem in the validation-findings columns (``entity_id`` and ``period``
        empty: the catalog is not about one entity or month); ``check`` is ``catalog_*``.
    lang : str
        Language of the messages.
    """

    findings: pd.DataFrame
    lang: str = "zh"

    def to_frame(self) -> pd.DataFrame:
        """The findings table."""
        return self.findings.copy()

    def chart(self) -> alt.Chart:
        """Bar chart: findings per check, coloured by severity."""
        return _severity_bars(
            self.findings, "check", t("mapping.chart.catalog", self.lang), self.lang
        )

    def _repr_html_(self) -> str:
        cols = ["metric_id", "rule_id", "check", "severity", "message"]
        return _html("mapping.result.catalog", self.findings, self.findings[cols], self.lang)


@dataclass(frozen=True)
class CompletenessResult:
    """Missing (and, for raw facts, duplicated) values.

    Attributes
    ----------
    findings : DataFrame
        Validation-findings columns plus ``source_system`` and ``owner``; ``check`` is
        ``missing`` or ``duplicated``; ``period`` ``"YYYY-MM"``.
    summary : DataFrame
        Review quarter per ``source_system, owner``: ``expected_values, present, missing,
        completeness`` (fraction).
    expected : DataFrame
        The expected set: ``entity_id, metric_id, first_period, history_months, share, basis``.
    cells : DataFrame
        Every expected value of the review quarter: ``entity_id, metric_id, period, present,
        source_system, owner``.
    lang : str
    """

    findings: pd.DataFrame
    summary: pd.DataFrame
    expected: pd.DataFrame
    cells: pd.DataFrame
    lang: str = "zh"

    def to_frame(self) -> pd.DataFrame:
        """The findings table."""
        return self.findings.copy()

    def chart(self) -> alt.Chart:
        """Bar chart: missing values per source system, coloured by severity."""
        return _severity_bars(
            self.findings, "source_system", t("mapping.chart.missing", self.lang), self.lang
        )

    def _repr_html_(self) -> str:
        return _html("mapping.result.completeness", self.findings, self.summary, self.lang) + (
            table_html(
                self.findings.drop(columns=["source_refs"]), lang=self.lang, max_rows=TABLE_MAX_ROWS
            )
            if len(self.findings)
            else ""
        )


@dataclass(frozen=True)
class RuleCheckResult:
    """Reconciliation rules evaluated per entity and month.

    Attributes
    ----------
    findings : DataFrame
        Breaches (``check="rule"``) and evaluations that could not be made
        (``check="rule_cannot_evaluate"``, severity ``info``); ``value`` = left side,
        ``expected`` = right side, ``deviation`` = left / right - 1 (NaN for a zero right
        side), ``source_refs`` = ``;``-joined refs of the rows read in that month.
    evaluations : DataFrame
        Every applicable (entity, month, rule): ``entity_id, period (Period[M]), rule_id,
        lhs, rhs, deviation, status (pass|breach|cannot_evaluate), in_quarter``. Entities
        that do not report a rule's metrics have no rows for it (not applicable).
    lang : str
    """

    findings: pd.DataFrame
    evaluations: pd.DataFrame
    lang: str = "zh"

    def to_frame(self) -> pd.DataFrame:
        """The findings table."""
        return self.findings.copy()

    def chart(self, *, top: int = _TOP) -> alt.Chart:
        """Heat map entity × month of breaches (the ``top`` entities with most breaches)."""
        br = self.findings[self.findings["check"] == "rule"]
        if br.empty:
            return charts.message(t("mapping.result.none", self.lang))
        # quarter-scope breaches ("2026Q3") sit in the quarter's last month of the grid
        month = [
            p if "Q" not in p else str(pd.Period(p, "Q").asfreq("M", "end")) for p in br["period"]
        ]
        br = br.assign(rank=br["severity"].map(SEVERITY_ORDER), period=month)
        cell = (
            br.groupby(["entity_id", "period"])
            .agg(n=("rule_id", "size"), rank=("rank", "min"), rules=("rule_id", _join))
            .reset_index()
        )
        keep = cell.groupby("entity_id")["n"].sum().nlargest(top).index
        cell = cell[cell["entity_id"].isin(keep)]
        worst = {v: k for k, v in SEVERITY_ORDER.items()}
        cell["worst"] = [value_label("severity", worst[r], self.lang) for r in cell["rank"]]
        return (
            alt.Chart(cell, title=t("mapping.chart.heatmap", self.lang, n=len(keep)))
            .mark_rect()
            .encode(
                x=alt.X("period:O", title=t("report.col.period", self.lang)),
                y=alt.Y("entity_id:N", title=t("report.col.entity_id", self.lang)),
                color=alt.Color(
                    "worst:N",
                    scale=charts.severity_scale(labelled=True, lang=self.lang),
                    title=t("mapping.chart.worst", self.lang),
                ),
                tooltip=["entity_id", "period", "n", "rules", "worst"],
            )
        )

    def _repr_html_(self) -> str:
        table = self.findings.drop(columns=["source_refs"])
        return _html("mapping.result.rules", self.findings, table, self.lang)


def _join(s: pd.Series) -> str:
    return ", ".join(sorted(set(map(str, s))))


@dataclass(frozen=True)
class CaliberResult:
    """Caliber (口径) consistency: systematic ratios and timing shifts.

    Attributes
    ----------
    findings : DataFrame
        ``check="caliber"`` (``value`` = ratio of the rule's two sides over the window,
        ``expected`` = 1) and ``check="timing"`` (``value`` = months the checked metric runs
        early, negative = late).
    ratios : DataFrame
        Per approx rule and entity (``level="entity"``) or parent pooled over its units
        (``level="parent"``): ``ratio, ci_low, ci_high`` (95%, jackknife over months),
        ``n_months, systematic, cause`` (known-factor code or empty).
    timing : DataFrame
        Per monthly approx rule and entity: best lag in each half of the window, the
        correlations and ``timing_shift``.
    lang : str
    """

    findings: pd.DataFrame
    ratios: pd.DataFrame
    timing: pd.DataFrame
    lang: str = "zh"

    def to_frame(self) -> pd.DataFrame:
        """The findings table."""
        return self.findings.copy()

    def chart(self, *, top: int = 20) -> alt.Chart:
        """Ratio with 95% interval for the ``top`` ratios farthest from 1."""
        if self.ratios.empty:
            return charts.message(t("mapping.result.none", self.lang))
        r = self.ratios.assign(dist=np.abs(np.log(self.ratios["ratio"])))
        r = r.nlargest(top, "dist").assign(
            item=lambda d: d["entity_id"] + " · " + d["rule_id"],
            verdict=lambda d: [
                t(f"mapping.value.systematic.{bool(s)}", self.lang) for s in d["systematic"]
            ],
        )
        lo = float(min(r["ci_low"].min(), r["ratio"].min(), 1.0)) / 1.02
        hi = float(max(r["ci_high"].max(), r["ratio"].max(), 1.0)) * 1.02
        scale = alt.Scale(type="log", domain=[lo, hi], nice=False, clamp=True)
        base = alt.Chart(r, title=t("mapping.chart.caliber", self.lang, n=len(r)))
        y = alt.Y("item:N", sort=alt.EncodingSortField("dist", order="descending"), title=None)
        return alt.layer(
            base.mark_rule().encode(
                x=alt.X("ci_low:Q", scale=scale, title=t("mapping.col.ratio", self.lang)),
                x2="ci_high:Q",
                y=y,
            ),
            base.mark_point(filled=True, size=60).encode(
                x=alt.X("ratio:Q", scale=scale),
                y=y,
                color=alt.Color("verdict:N", title=None),
                tooltip=["entity_id", "rule_id", "ratio", "ci_low", "ci_high", "cause"],
            ),
            alt.Chart(pd.DataFrame({"one": [1.0]})).mark_rule(strokeDash=[4, 4]).encode(x="one:Q"),
        )

    def _repr_html_(self) -> str:
        cols = [
            "level",
            "entity_id",
            "rule_id",
            "metric_id",
            "ratio",
            "ci_low",
            "ci_high",
            "n_months",
            "cause",
        ]
        sys_ = self.ratios[self.ratios["systematic"]][cols] if len(self.ratios) else self.ratios
        return _html("mapping.result.caliber", self.findings, sys_, self.lang) + table_html(
            self.findings.drop(columns=["source_refs"]),
            lang=self.lang,
            pct=_PCT,
            max_rows=TABLE_MAX_ROWS,
        )
