"""Result objects of :mod:`perflink.mapping` (computing lives elsewhere; these present).

Not API: import the classes from :mod:`perflink.mapping`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import altair as alt
import numpy as np
import pandas as pd

from perflink import charts, labels
from perflink.common import SEVERITIES, SEVERITY_RANK
from perflink.errors import PerflinkError
from perflink.labels import t, value_label
from perflink.mapping._common import findings_frame
from perflink.results import TaskResult

_PCT = ("deviation", "completeness", "pass_rate", "dq_index")
_TOP = 30
#: what a page shows of a finding: the message names unit, metric, rule and figures in words
SHOWN = ("period", "check", "severity", "message")
#: colours of the breach heat map: a severity's colour, "none" light grey; low is pale yellow,
#: never green (green reads as "good")
HEAT_COLORS = {
    **{s: charts.SEVERITY_COLORS[s] for s in ("critical", "high", "medium")},
    "low": "#f6dc7a",
    "none": "#eeeeee",
}
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
        """The main table as a page shows it (period, check, severity, message)."""
        return _shown(getattr(self, self._frame))

    def top(self, n: int = 10) -> MappingFindingsResult:
        """The ``n`` most severe findings (info left out), to show on a page's reading layer.

        Raises
        ------
        PerflinkError
            If ``n`` is not a positive integer.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise PerflinkError(f"top: n must be a positive integer, got {n!r}")
        f = self.findings_table()
        if f is None:
            f = getattr(self, "findings", None)
        if not isinstance(f, pd.DataFrame):
            f = findings_frame([])
        kept = f[f["severity"] != "info"]
        return MappingFindingsResult(kept.head(n).reset_index(drop=True), self.language, len(kept))

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
    overview : DataFrame
        One row per rule of the catalog: ``rule_id, rule`` (its name), ``test`` (the rule
        in words: both sides with metric names, the check sign and the tolerance),
        ``checks`` (unit-months evaluated), ``breaches_quarter, breaches_before`` and
        ``units_breached`` (units with a breach in the quarter).
    names : Mapping[str, str]
        Entity id -> name in ``language`` (the heat map's rows).
    rule_names : Mapping[str, str]
        Rule id -> rule name in ``language``.
    """

    findings: pd.DataFrame
    evaluations: pd.DataFrame
    language: str
    overview: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    names: Mapping[str, str] = field(default_factory=dict, repr=False)
    rule_names: Mapping[str, str] = field(default_factory=dict, repr=False)

    _section = "mapping.result.rules"

    def months(self) -> list[str]:
        """Every month of the checked window, ``"YYYY-MM"``, oldest first (months without a
        breach included, so a chart never skips one)."""
        periods = [p for p in self.evaluations.get("period", []) if isinstance(p, pd.Period)]
        br = self.findings[self.findings["check"] == "rule"]
        periods += [_month_of(p) for p in br["period"]]
        if not periods:
            return []
        return [str(p) for p in pd.period_range(min(periods), max(periods), freq="M")]

    def chart(self, *, top: int = _TOP) -> alt.Chart:
        """Heat map unit × month of breaches: the ``top`` units with most breaches, every month
        of the window (a month without a breach is a light-grey "no breach" cell)."""
        lang, names = self.language, self.names
        br = self.findings[self.findings["check"] == "rule"]
        if br.empty:
            return self._empty_chart()
        br = br.assign(
            rank=br["severity"].map(SEVERITY_RANK),
            period=[str(_month_of(p)) for p in br["period"]],  # a quarter at its last month
            rule=[self.rule_names.get(r, r) for r in br["rule_id"]],
        )
        cell = (
            br.groupby(["entity_id", "period"])
            .agg(n=("rule_id", "size"), rank=("rank", "min"), rules=("rule", _join))
            .reset_index()
        )
        keep = list(cell.groupby("entity_id")["n"].sum().nlargest(top).index)
        months = self.months()
        grid = pd.MultiIndex.from_product([keep, months], names=["entity_id", "period"])
        cell = cell.set_index(["entity_id", "period"]).reindex(grid).reset_index()
        cell["n"] = cell["n"].fillna(0).astype(int)
        cell["rules"] = cell["rules"].fillna("")
        cell["worst"] = [
            value_label("severity", SEVERITIES[int(r)], lang)
            if pd.notna(r)
            else t("mapping.chart.none", lang)
            for r in cell["rank"]
        ]
        cell["unit"] = [names.get(e, e) for e in cell["entity_id"]]
        cell["unit_short"] = charts.short_label(cell["unit"], 40)
        order = list(dict.fromkeys(cell.sort_values("entity_id", kind="stable")["unit_short"]))
        labels_ = [value_label("severity", s, lang) for s in HEAT_COLORS if s != "none"]
        scale = alt.Scale(
            domain=[*labels_, t("mapping.chart.none", lang)], range=list(HEAT_COLORS.values())
        )
        return (
            alt.Chart(
                cell.drop(columns=["rank", "entity_id"]),
                title=t("mapping.chart.heatmap", lang, n=len(keep)),
            )
            .mark_rect(stroke="white", strokeWidth=1)
            .encode(
                x=alt.X(
                    "period:O",
                    sort=months,
                    title=t("mapping.chart.month", lang),
                    axis=alt.Axis(labelAngle=-90),
                ),
                y=alt.Y(
                    "unit_short:N",
                    sort=order,
                    title=None,  # the chart's title says "unit × month"; a title would crowd names
                    axis=alt.Axis(labelLimit=0),
                ),
                color=alt.Color(
                    "worst:N",
                    scale=scale,
                    title=t("mapping.chart.worst", lang),
                    legend=alt.Legend(labelLimit=0, titleLimit=0),
                ),
                tooltip=[
                    alt.Tooltip("unit:N", title=t("mapping.chart.unit", lang)),
                    alt.Tooltip("period:O", title=t("mapping.chart.month", lang)),
                    alt.Tooltip("n:Q", title=t("mapping.chart.breaches", lang)),
                    alt.Tooltip("worst:N", title=t("mapping.chart.worst", lang)),
                    alt.Tooltip("rules:N", title=t("mapping.chart.rules", lang)),
                ],
            )
        )

    def _repr_html_(self) -> str:
        if self.overview.empty:
            return super()._repr_html_()
        view = self.overview.drop(columns=["rule_id"])
        return self._section_html(self._table(view))

    def details(self) -> MappingFindingsResult:
        """Every finding of the rules (the appendix table)."""
        return MappingFindingsResult(self.findings, self.language, len(self.findings))


def _month_of(period: str | pd.Period) -> pd.Period:
    """A finding's month: a quarter-scope finding (``"2026Q3"``) sits in the quarter's last."""
    if isinstance(period, pd.Period):
        return period.asfreq("M", "end")
    p = str(period)
    return pd.Period(p, "Q").asfreq("M", "end") if "Q" in p else pd.Period(p, "M")


def _unit_rule(d: pd.DataFrame) -> pd.Series:
    """``unit · rule`` by name (ids when the names are not there)."""
    unit = d["entity"] if "entity" in d else d["entity_id"]
    rule = d["rule"] if "rule" in d else d["rule_id"]
    return unit.astype(str) + " · " + rule.astype(str)


def _join(s: pd.Series) -> str:
    return ", ".join(sorted(set(map(str, s))))


def _shown(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings as a page shows them: period, check, severity and the message, which names
    the unit, metric and rule in words (ids, figures without units and source references
    stay in the saved table)."""
    return findings[[c for c in SHOWN if c in findings.columns]]


@dataclass(frozen=True)
class MappingFindingsResult(MappingResult):
    """A findings table to show on its own (e.g. the most severe ones).

    Also importable as ``perflink.mapping.FindingsResult`` (its former name).

    Attributes
    ----------
    findings : DataFrame
        Validation-findings columns.
    language : str
    total : int
        How many findings the list was taken from (0: unknown); the note under a top-N list.
    """

    findings: pd.DataFrame
    language: str
    total: int = 0

    _findings = "findings"
    _bars = ("check", "mapping.h.findings")

    def _repr_html_(self) -> str:
        if self.findings.empty:
            return self._note("mapping.text.section_none")
        more = self.total - len(self.findings)
        note = self._note("mapping.text.more", more=more) if more > 0 else ""
        return self._table(self.view()) + note


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

    def chart(self, *, top: int = 12) -> alt.Chart:
        """Ratio with 95% interval for the ``top`` ratios farthest from 1."""
        if self.ratios.empty:
            return self._empty_chart()
        r = self.ratios.assign(dist=np.abs(np.log(self.ratios["ratio"])))
        lang = self.language
        r = r.nlargest(top, "dist").assign(
            item=lambda d: _unit_rule(d),
            verdict=lambda d: [
                t(f"mapping.value.systematic.{bool(s)}", lang) for s in d["systematic"]
            ],
            interval=lambda d: [
                f"{lo:.3f}–{hi:.3f}" for lo, hi in zip(d["ci_low"], d["ci_high"], strict=True)
            ],
        )
        # two lines per row (unit, then rule: split at " · " by the axis), each shortened
        r["item_short"] = [
            " · ".join(charts.short_label([unit, rule], 48))
            for unit, rule in (x.split(" · ", 1) for x in r["item"])
        ]
        lo = float(min(r["ci_low"].min(), r["ratio"].min(), 1.0)) / 1.02
        hi = float(max(r["ci_high"].max(), r["ratio"].max(), 1.0)) * 1.02
        scale = alt.Scale(type="log", domain=[lo, hi], nice=False, clamp=True)
        base = alt.Chart(
            r, title=t("mapping.chart.caliber", self.language, n=len(r)), height=30 * len(r)
        )
        y = alt.Y(
            "item_short:N",
            sort=alt.EncodingSortField("dist", order="descending"),
            title=None,
            axis=alt.Axis(labelLimit=0, labelExpr="split(datum.label, ' · ')", labelOffset=-7),
        )
        col = lambda c: t(f"mapping.col.{c}", lang)  # noqa: E731
        return alt.layer(
            base.mark_rule().encode(
                x=alt.X("ci_low:Q", scale=scale, title=t("mapping.col.ratio", self.language)),
                x2="ci_high:Q",
                y=y,
            ),
            base.mark_point(filled=True, size=60).encode(
                x=alt.X("ratio:Q", scale=scale),
                y=y,
                color=alt.Color(
                    "verdict:N",
                    title=None,
                    # away from 1 in the warning colour, within range grey
                    scale=alt.Scale(
                        domain=[t(f"mapping.value.systematic.{k}", lang) for k in (True, False)],
                        range=[charts.SEVERITY_COLORS["medium"], "#9e9e9e"],
                    ),
                    legend=alt.Legend(labelLimit=0, orient="bottom"),
                ),
                tooltip=[
                    alt.Tooltip("item:N", title=col("item")),
                    alt.Tooltip("ratio:Q", title=col("ratio"), format=".3f"),
                    alt.Tooltip("interval:N", title=col("interval")),
                    alt.Tooltip("cause_text:N", title=col("cause")),
                ],
            ),
            alt.Chart(pd.DataFrame({"one": [1.0]})).mark_rule(strokeDash=[4, 4]).encode(x="one:Q"),
        )

    def systematic(self) -> pd.DataFrame:
        """The ratios away from 1 as a page shows them: level, unit, rule (names), ratio, its
        95% interval, months and the likely cause in words."""
        cols = ["level", "unit", "rule", "ratio", "interval", "n_months", "cause"]
        if self.ratios.empty:
            return pd.DataFrame(columns=cols)
        s = self.ratios[self.ratios["systematic"]]
        return pd.DataFrame(
            {
                "level": s["level"],
                "unit": s.get("entity", s["entity_id"]),
                "rule": s.get("rule", s["rule_id"]),
                "ratio": s["ratio"],
                "interval": [
                    f"{lo:.3f}–{hi:.3f}" for lo, hi in zip(s["ci_low"], s["ci_high"], strict=True)
                ],
                "n_months": s["n_months"],
                "cause": s.get("cause_text", s["cause"]),
            }
        )

    def _repr_html_(self) -> str:
        body = self._table(self.systematic())
        return self._section_html(body) + self._table(_shown(self.findings))
