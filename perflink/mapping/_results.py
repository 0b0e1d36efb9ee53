"""Result objects of :mod:`perflink.mapping` (computing lives elsewhere; these present).

Not API: import the classes from :mod:`perflink.mapping`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import altair as alt
import numpy as np
import pandas as pd

from perflink import charts, labels
from perflink.common import SEVERITIES, SEVERITY_RANK
from perflink.labels import t, value_label
from perflink.results import TaskResult

_PCT = ("deviation", "completeness", "pass_rate", "dq_index")
_TOP = 30
# columns whose codes have labels under mapping.value.<col>.<code>
_CODED = ("check", "cause", "strength", "model", "level")
# standard column names that mean something else here (``target`` is a metric id, not a value)
# headers this task words its own way even where a standard label exists: the two
# elasticities must be named apart here (the KPI page's elasticity is the quarterly one)
_OWN_HEADERS = ("target", "elasticity", "elasticity_quarter")


def _summary(findings: pd.DataFrame, lang: str) -> str:
    if findings.empty:
        return t("mapping.result.none", lang)
    counts = findings["severity"].value_counts()
    return t(
        "mapping.result.summary",
        lang,
        n=len(findings),
        **{s: int(counts.get(s, 0)) for s in SEVERITIES},
    )


@dataclass(frozen=True)
class MappingResult(TaskResult):
    """Base of the mapping results: titled sections, own column labels, percent columns.

    Columns only this task has take their header from ``mapping.col.<col>`` and their codes
    from ``mapping.value.<col>.<code>``; standard columns keep ``report.col.*``.
    ``_section`` is the label key of the section title, ``_summarise`` whether the section
    starts with the count of findings by severity.
    """

    _frame: ClassVar[str] = "findings"
    _empty: ClassVar[str | None] = "mapping.result.none"
    _units: ClassVar[Mapping[str, str]] = {c: "pct" for c in _PCT}
    _section: ClassVar[str] = "mapping.result.validation"
    _summarise: ClassVar[bool] = True
    _bars: ClassVar[tuple[str, str] | None] = None  # (column, title key) of chart()'s bars

    def chart(self) -> alt.Chart:
        """Findings per ``_bars`` column, coloured by severity."""
        return self._severity_bars(*self._bars) if self._bars else self._empty_chart()

    def view(self) -> pd.DataFrame:
        """The main table without the long source references."""
        return _shown(getattr(self, self._frame))

    def _labelled(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
        lang, table = self.language, labels._load()
        headers = {}
        for col in map(str, df.columns):
            own = f"mapping.col.{col}" in table
            if own and (f"report.col.{col}" not in table or col in _OWN_HEADERS):
                headers[col] = t(f"mapping.col.{col}", lang)
        out = df.copy()
        for col in out.columns:
            if col in _CODED:
                key = f"mapping.value.{col}."
                out[col] = out[col].map(
                    lambda v, key=key: t(key + str(v), lang) if key + str(v) in table else v
                )
        return out, headers

    def _section_html(self, body: str) -> str:
        """``body`` under the section title (and the findings summary, if ``_summarise``)."""
        head = ""
        if self._summarise:
            head = f"<p>{html.escape(_summary(self.findings, self.language))}</p>"
        title = html.escape(t(self._section, self.language))
        return f'<div class="pl-result"><h4>{title}</h4>{head}{body}</div>'

    def _repr_html_(self) -> str:
        return self._section_html(self._table(self.view()))

    def _severity_bars(self, by: str, title_key: str) -> alt.Chart:
        """Findings per ``by``, coloured by severity, titled ``title_key``."""
        lang, findings = self.language, self.findings
        if findings.empty:
            return self._empty_chart()
        counts = findings.groupby([by, "severity"]).size().rename("n").reset_index()
        counts["severity_label"] = [value_label("severity", s, lang) for s in counts["severity"]]
        return (
            alt.Chart(counts, title=t(title_key, lang))
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
class CatalogCheckResult(MappingResult):
    """Catalog integrity findings.

    Attributes
    ----------
    findings : DataFrame
        One row per problem in the validation-findings columns (``entity_id`` and ``period``
        empty: the catalog is not about one entity or month); ``check`` is ``catalog_*``.
    language : str
        Language of the messages.
    """

    findings: pd.DataFrame
    language: str

    _section = "mapping.result.catalog"
    _bars = ("check", "mapping.chart.catalog")

    def view(self) -> pd.DataFrame:
        return self.findings[["metric_id", "rule_id", "check", "severity", "message"]]


@dataclass(frozen=True)
class CompletenessResult(MappingResult):
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
    language : str
    """

    findings: pd.DataFrame
    summary: pd.DataFrame
    expected: pd.DataFrame
    cells: pd.DataFrame
    language: str

    _section = "mapping.result.completeness"
    _bars = ("source_system", "mapping.chart.missing")

    def _repr_html_(self) -> str:
        found = self._table(_shown(self.findings)) if len(self.findings) else ""
        return self._section_html(self._table(self.summary)) + found


@dataclass(frozen=True)
class RuleCheckResult(MappingResult):
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
    language : str
    """

    findings: pd.DataFrame
    evaluations: pd.DataFrame
    language: str

    _section = "mapping.result.rules"

    def chart(self, *, top: int = _TOP) -> alt.Chart:
        """Heat map entity × month of breaches (the ``top`` entities with most breaches)."""
        br = self.findings[self.findings["check"] == "rule"]
        if br.empty:
            return self._empty_chart()
        # quarter-scope breaches ("2026Q3") sit in the quarter's last month of the grid
        month = [
            p if "Q" not in p else str(pd.Period(p, "Q").asfreq("M", "end")) for p in br["period"]
        ]
        br = br.assign(rank=br["severity"].map(SEVERITY_RANK), period=month)
        cell = (
            br.groupby(["entity_id", "period"])
            .agg(n=("rule_id", "size"), rank=("rank", "min"), rules=("rule_id", _join))
            .reset_index()
        )
        keep = cell.groupby("entity_id")["n"].sum().nlargest(top).index
        cell = cell[cell["entity_id"].isin(keep)]
        cell["worst"] = [
            value_label("severity", SEVERITIES[r], self.language) for r in cell["rank"]
        ]
        return (
            alt.Chart(cell, title=t("mapping.chart.heatmap", self.language, n=len(keep)))
            .mark_rect()
            .encode(
                x=alt.X("period:O", title=t("report.col.period", self.language)),
                y=alt.Y("entity_id:N", title=t("report.col.entity_id", self.language)),
                color=alt.Color(
                    "worst:N",
                    scale=charts.severity_scale(labelled=True, lang=self.language),
                    title=t("mapping.chart.worst", self.language),
                ),
                tooltip=["entity_id", "period", "n", "rules", "worst"],
            )
        )


def _join(s: pd.Series) -> str:
    return ", ".join(sorted(set(map(str, s))))


def _shown(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings as a page shows them: without the long source references."""
    return findings.drop(columns=["source_refs"], errors="ignore")


@dataclass(frozen=True)
class CaliberResult(MappingResult):
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
        ``n_months, systematic, cause`` (known-factor code or empty: ``vat13``,
        ``scale10000_rhs``, ...) and ``cause_text`` (the likely cause in ``language``).
    timing : DataFrame
        Per monthly approx rule and entity: best lag in each half of the window, the
        correlations and ``timing_shift``.
    language : str

    factors : str
        The known factors the ratios were compared with, in ``language`` (for the page's
        text: the taxes the catalog's metrics name, the unit slips of its money unit).
    """

    findings: pd.DataFrame
    ratios: pd.DataFrame
    timing: pd.DataFrame
    language: str
    factors: str = ""

    _section = "mapping.result.caliber"

    def chart(self, *, top: int = 20) -> alt.Chart:
        """Ratio with 95% interval for the ``top`` ratios farthest from 1."""
        if self.ratios.empty:
            return self._empty_chart()
        r = self.ratios.assign(dist=np.abs(np.log(self.ratios["ratio"])))
        r = r.nlargest(top, "dist").assign(
            item=lambda d: d["entity_id"] + " · " + d["rule_id"],
            verdict=lambda d: [
                t(f"mapping.value.systematic.{bool(s)}", self.language) for s in d["systematic"]
            ],
        )
        lo = float(min(r["ci_low"].min(), r["ratio"].min(), 1.0)) / 1.02
        hi = float(max(r["ci_high"].max(), r["ratio"].max(), 1.0)) * 1.02
        scale = alt.Scale(type="log", domain=[lo, hi], nice=False, clamp=True)
        base = alt.Chart(r, title=t("mapping.chart.caliber", self.language, n=len(r)))
        y = alt.Y("item:N", sort=alt.EncodingSortField("dist", order="descending"), title=None)
        return alt.layer(
            base.mark_rule().encode(
                x=alt.X("ci_low:Q", scale=scale, title=t("mapping.col.ratio", self.language)),
                x2="ci_high:Q",
                y=y,
            ),
            base.mark_point(filled=True, size=60).encode(
                x=alt.X("ratio:Q", scale=scale),
                y=y,
                color=alt.Color("verdict:N", title=None),
                tooltip=["entity_id", "rule_id", "ratio", "ci_low", "ci_high", "cause_text"],
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
        if len(self.ratios):
            sys_ = self.ratios[self.ratios["systematic"]]
            sys_ = sys_.assign(cause=sys_.get("cause_text", sys_["cause"]))[cols]
        else:
            sys_ = self.ratios
        return self._section_html(self._table(sys_)) + self._table(_shown(self.findings))
