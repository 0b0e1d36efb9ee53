"""Result objects of :mod:`perflink.summary` (not API; import them from perflink.summary)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

import altair as alt
import numpy as np
import pandas as pd

from perflink import charts
from perflink._report_format import appendix_html, fmt_figure, fmt_number, fmt_period
from perflink.errors import InputError
from perflink.kpi import TOP_SUBSIDIARIES
from perflink.labels import t, value_label
from perflink.results import QuarterResult, TableResult, TaskResult
from perflink.summary._headline import STATUS_RANK
from perflink.units import parse_unit, unit_label

if TYPE_CHECKING:
    from perflink.catalog import Catalog, Metric
    from perflink.summary._collect import SummaryInputs
    from perflink.summary._decisions import DecisionsResult

_PCT_COLS = (
    "completion", "business_completion", "financial_completion", "fy_deviation_pct",
    "deviation_pct", "p_meet_budget", "fc_error_pct", "fc_mape", "fc_bias", "coverage_80", "share_100",
    "dq_index", "pass_rate", "completeness",
)  # fmt: skip


#: Widest subsidiary name on the chain chart's axis (Latin-letter widths; a Chinese character
#: counts 2): longer names are shortened with the full name in the tooltip.
_NAME_WIDTH = 30


@dataclass(frozen=True)
class SummaryNote(TaskResult):
    """A sentence of the page that belongs to a result (the chain's colour key), shown with
    :func:`perflink.report.show` (a result without a table).

    Attributes
    ----------
    html : the sentence as HTML (escaped).
    language : ``"zh"`` or ``"en"``.
    """

    html: str
    language: str

    def _repr_html_(self) -> str:
        return self.html


# Large groups: the chain chart shows as many subsidiaries as the KPI page's chain, worst
# status first, then most red and amber steps (the table below it lists them all), so a large
# group's summary still prints to 3 A4 pages.
_TOP_ROWS = TOP_SUBSIDIARIES
_WORST_FIRST = {code: -rank for code, rank in STATUS_RANK.items()}  # red, amber, green


def _word_scale() -> alt.Scale:
    """Colours of the status words (met ... off track), grey for a missing status."""
    words = charts.STATUS_WORD_COLORS
    return alt.Scale(domain=[*words, "none"], range=[*words.values(), "#9e9e9e"])


def _signed(value: float, unit: str | None, lang: str) -> str:
    """A difference with its sign (``+85.3 万元``, ``-1.2 万元``)."""
    text = fmt_number(value, unit, lang)
    return f"+{text}" if pd.notna(value) and value > 0 else text


def _tier1_view(tier1: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Tier-1 rows as readers see them: each value in its metric's unit; the completion
    (actual / target) where the metric is scored by ratio and a ratio means something
    (:func:`perflink.kpi.completion` gives one), else the gap to target: in percentage
    points for rates and growth, in the metric's unit otherwise (a target at or below zero,
    or a ratio far out of range such as a target near zero)."""
    view = tier1.drop(columns=["metric_id", "unit", "basis"], errors="ignore")
    view = view.astype({"actual": object, "target": object, "completion": object})
    view["scope"] = [t(f"summary.scope.{v}", lang) for v in view["scope"]]
    basis = tier1["basis"] if "basis" in tier1 else pd.Series("ratio", index=tier1.index)
    for i, unit in enumerate(tier1["unit"]):
        actual, target = tier1["actual"].iloc[i], tier1["target"].iloc[i]
        for col, value in (("actual", actual), ("target", target)):
            view.iat[i, view.columns.get_loc(col)] = fmt_number(value, unit or None, lang)
        where = view.columns.get_loc("completion")
        done = tier1["completion"].iloc[i]
        if basis.iloc[i] == "ratio" and pd.notna(done):
            view.iat[i, where] = fmt_number(done, "pct", lang)
        elif unit and parse_unit(unit).is_rate:
            view.iat[i, where] = t("summary.gap_pts", lang, gap=(actual - target) * 100)
        else:  # no meaningful ratio (target at or below zero, or far out of range)
            gap = _signed(actual - target, unit or None, lang)
            view.iat[i, where] = t("summary.gap_amount", lang, gap=gap)
    return view


def fmt_probability(p: object, lang: str) -> str:
    """A probability as the forecast's table and messages show it (percent, one decimal)."""
    return fmt_number(p, "pct", lang)


def _projection_view(projection: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Projected full year as readers see it: every amount in its metric's own unit; the
    deviation and the probability rounded as the forecast's messages round them (percent,
    one decimal), so a table never says 0.4% where its message says 0%."""
    view = projection.drop(columns=["metric_id", "ytd_actual", "unit"], errors="ignore")
    units = projection["unit"] if "unit" in projection else pd.Series("", index=projection.index)
    for col in ("projected", "lo_80", "hi_80", "budget"):
        if col in view:
            view[col] = [
                fmt_number(v, u or None, lang) for v, u in zip(view[col], units, strict=True)
            ]
    if "deviation_pct" in view:
        view["deviation_pct"] = [fmt_figure(v, "+.1%") for v in view["deviation_pct"]]
    if "p_meet_budget" in view:
        view["p_meet_budget"] = [fmt_probability(v, lang) for v in view["p_meet_budget"]]
    return view


#: Width of a bin of the score histogram (points).
_SCORE_BIN = 5.0


@dataclass(frozen=True)
class SummaryPart(TaskResult):
    """Base of the summary's results: rates shown as percent, "no data" when empty."""

    _empty: ClassVar[str | None] = "summary.chart.empty"
    _units: ClassVar[Mapping[str, str]] = dict.fromkeys(_PCT_COLS, "pct")


@dataclass(frozen=True)
class HeadlineResult(SummaryPart):
    """The group's headline: tier-1 results, projected full year, score distribution.

    Attributes
    ----------
    tier1 : ``metric_id, metric, unit, scope`` (quarter / ytd), ``actual, target`` (metric
        unit), ``basis`` (``ratio`` or ``points``, the catalog's scoring basis),
        ``completion`` (actual / target; NaN for points and for targets at or below zero),
        ``status`` (met / near_miss / missed, :func:`perflink.common.actual_status`).
    projection : ``metric_id, metric, unit, ytd_actual, projected, lo_80, hi_80, budget``
        (full year, in the metric's catalog ``unit``), ``deviation_pct``, ``p_meet_budget``,
        ``status`` (on_track / at_risk / off_track from the probability beside it,
        :func:`perflink.common.outlook_status`).
    scores : units' YTD total scores: ``entity_id, parent_id, score`` (points, 100 = target).
    distribution : one row ``n_units, score_min, score_p25, score_median, score_p75,
        score_max, share_100``.
    language : ``"zh"`` or ``"en"``.
    """

    tier1: pd.DataFrame = field(repr=False)
    projection: pd.DataFrame = field(repr=False)
    scores: pd.DataFrame = field(repr=False)
    distribution: pd.DataFrame = field(repr=False)
    language: str

    _frame = "tier1"

    def chart(self) -> alt.Chart:
        """Histogram of the units' YTD scores (bins of 5 points).

        The bins are counted here, so the chart carries one row per bin whatever the number of
        units (altair refuses more than 5,000 rows: a 10,000-unit group failed on this chart).
        """
        scores = self.scores["score"].dropna().to_numpy(dtype=float)
        if not len(scores):
            return self._empty_chart()
        start = np.floor(scores / _SCORE_BIN) * _SCORE_BIN
        bins = pd.Series(start).value_counts().sort_index()
        data = pd.DataFrame(
            {"bin_start": bins.index, "bin_end": bins.index + _SCORE_BIN, "units": bins.values}
        )
        return (
            alt.Chart(data, title=t("summary.chart.scores", self.language))
            .mark_bar()
            .encode(
                x=alt.X("bin_start:Q", bin="binned", title=t("report.col.score", self.language)),
                x2="bin_end:Q",
                y=alt.Y("units:Q", title=t("summary.chart.units", self.language)),
            )
            .properties(width=420, height=180)
        )

    def _repr_html_(self) -> str:
        tier1 = _tier1_view(self.tier1, self.language)
        proj = _projection_view(self.projection, self.language)
        parts = [
            ("summary.h.tier1", tier1, "summary.missing.kpi"),
            ("summary.h.projection", proj, "summary.missing.forecast"),
            ("summary.h.distribution", self.distribution, "summary.missing.kpi"),
        ]
        return "".join(
            self._heading(head) + (self._table(df) if len(df) else self._note(missing))
            for head, df, missing in parts
        )


@dataclass(frozen=True)
class ChainResult(SummaryPart, TableResult):
    """Per subsidiary: business -> financial completion -> score -> projected deviation.

    Attributes
    ----------
    table : ``entity_id, entity, business_completion, financial_completion`` (YTD,
        weighted by scheme weights), ``score`` (YTD points), ``projection_metric``,
        ``fy_deviation_pct`` (projected full year vs budget), ``p_meet_budget``,
        ``status_business, status_financial, status_score`` (met / near_miss / missed),
        ``status_projection`` (on_track / at_risk / off_track) and ``status`` (the worst
        step's, by colour).
    language : ``"zh"`` or ``"en"``.
    metric : name of the projection metric in ``language`` (``""``: none).
    why : label key of the sentence saying why the chain has no projection step (no
        projection metric in the catalog, or the forecast did not project it), else None.
    near_miss, on_track, off_track : the thresholds of the ``status:`` params block the
        chain's statuses come from (said in the note above the chart).
    """

    metric: str = ""
    why: str | None = None
    near_miss: float = 0.97
    on_track: float = 0.7
    off_track: float = 0.3

    def chart(self) -> alt.Chart:
        """One row per subsidiary, four coloured cells with the figures (the chain).

        In a group with more than ``_TOP_ROWS`` subsidiaries, the ``_TOP_ROWS`` in the worst
        state (overall status, then most red and amber steps); the subtitle says so.
        """
        lang = self.language
        if self.table.empty:
            return self._empty_chart()
        steps = [
            ("business", "business_completion", "status_business", "pct"),
            ("financial", "financial_completion", "status_financial", "pct"),
            ("score", "score", "status_score", None),
            ("projection", "fy_deviation_pct", "status_projection", "pct"),
        ]
        if self.why is not None:  # no projection: the chain ends at the score (said above it)
            steps = steps[:-1]
        table, title = self.table, t("summary.chart.chain", lang)
        if len(table) > _TOP_ROWS:  # a large group: the subsidiaries in the worst state
            steps_st = [st for _, _, st, _ in steps]
            colour = table[steps_st].apply(lambda c: c.map(STATUS_RANK))
            rank = pd.DataFrame(
                {
                    "worst": table["status"].map(_WORST_FIRST).fillna(1),
                    "reds": -(colour == 2).sum(axis=1),
                    "ambers": -(colour == 1).sum(axis=1),
                }
            )
            order = rank.sort_values(["worst", "reds", "ambers"], kind="stable").index
            table = table.loc[order].head(_TOP_ROWS)
            title = charts.ranked_title(
                title,
                shown=len(table),
                total=len(self.table),
                by=t("report.col.status", lang),
                lang=lang,
            )
        # names shortened to fit the axis (two alike keep their distinguishing end), the
        # full name in the tooltip; the label box is as wide as the longest short name
        short = dict(
            zip(table["entity"], charts.short_label(table["entity"], _NAME_WIDTH), strict=True)
        )
        rows = []
        for i, (step, col, st, unit) in enumerate(steps):
            for r in table.itertuples():
                v = getattr(r, col)
                text = fmt_number(v, unit, lang)  # as the table below the note shows it
                if step == "projection":  # the probability the status comes from, beside it
                    text = f"{text} ({fmt_probability(getattr(r, 'p_meet_budget', None), lang)})"
                rows.append(
                    dict(
                        entity=r.entity, label=short.get(r.entity, r.entity),
                        step=f"{i + 1}. {t(f'summary.chain.{step}', lang)}",
                        status=value_label("status", getattr(r, st) or "", lang),
                        code=getattr(r, st) or "none", text=text,
                    )
                )  # fmt: skip
        data = pd.DataFrame(rows)
        scale = _word_scale()
        base = alt.Chart(data, title=title).encode(
            x=alt.X("step:N", title=None, sort=None, axis=alt.Axis(orient="top", labelAngle=0)),
            y=alt.Y("label:N", title=None, sort=None, axis=alt.Axis(labelLimit=0)),
        )
        tip = [
            alt.Tooltip("entity:N", title=t("report.col.entity", lang)),
            alt.Tooltip("step:N", title=t("summary.chart.step", lang)),
            alt.Tooltip("text:N", title=t("summary.chart.value", lang)),
            alt.Tooltip("status:N", title=t("report.col.status", lang)),
        ]
        rect = base.mark_rect(stroke="white").encode(
            color=alt.Color("code:N", scale=scale, legend=None), tooltip=tip
        )
        text = base.mark_text(color="white", fontWeight="bold").encode(text="text:N", tooltip=tip)
        return (rect + text).properties(width=480, height=28 * len(table))

    def view(self) -> pd.DataFrame:
        cols = ["entity", "business_completion", "financial_completion", "score"]
        proj = [] if self.why is not None else ["fy_deviation_pct", "p_meet_budget"]
        return self.table[[c for c in (*cols, *proj, "status") if c in self.table]]

    def note(self) -> SummaryNote:
        """What the chain's colours mean and which metric ends it (or why none does): the
        sentence above the chart."""
        th = dict(
            near_miss=f"{self.near_miss:.0%}", on_track=f"{self.on_track:.0%}",
            off_track=f"{self.off_track:.0%}",
        )  # fmt: skip
        if self.why is None:
            head = self._note("summary.text.chain", metric=self.metric, **th)
        else:
            head = self._note("summary.text.chain_score", **th)
            head += self._note(self.why, metric=self.metric)
        return SummaryNote(head, self.language)

    def _repr_html_(self) -> str:
        """The chain as a table: each subsidiary's figures and its worst status in words
        (the figures of the coloured chart, for reading them exactly)."""
        if self.table.empty:
            return self._note("summary.chart.empty")
        return self._table(self.view())


@dataclass(frozen=True)
class RankedFindingsResult(SummaryPart):
    """All findings of the quarter, one item per problem, ranked (``summary_findings``).

    Also importable as ``perflink.summary.FindingsResult`` (its former name).

    Attributes
    ----------
    table : ranked findings (and last quarter's resolved ones, ``loop_status = resolved``):
        ``rank`` (the ranking rule of :func:`perflink.summary.rank_findings`: severity,
        money at stake, quarters open, entity order, metric order), ``finding_id``
        (:func:`perflink.summary.problem_id`), ``source_task, finding_kind`` (of the leading
        evidence), ``entity_id, entity, period`` (latest month or quarter with evidence),
        ``metric_id, rule_id, subject`` (the metric, else rule, scheme or mapping the item is
        about), ``severity`` (the worst of its evidence), ``at_stake`` (money at risk in
        ``money_unit``, never a favourable deviation, NaN where not priced; a missed target
        its year-to-date gap), ``n_periods, periods, message`` (the leading evidence's
        sentence, report language), ``evidence_link`` (relative link to its task page),
        ``evidence`` (``task:kind`` of every piece of evidence), ``tasks``,
        ``other_messages`` (the other pieces' sentences, `` | ``-separated),
        ``loop_status`` (new / persisting / resolved), ``first_seen`` (quarter),
        ``quarters_open``.
    top : the ranked top list (at most ``top_n``, ``per_kind`` per task and kind, no info).
    language : ``"zh"`` or ``"en"``.
    money_unit : the catalog unit money at stake is stated in (``万元``, ``kUSD``; None when
        the catalog has no money metric).
    start : the number of the first item shown (:meth:`after` numbers on).
    brief : show each item's leading sentence only (:meth:`head`, the reading layer).
    """

    table: pd.DataFrame = field(repr=False)
    top: pd.DataFrame = field(repr=False)
    language: str
    money_unit: str | None = None
    start: int = 1
    brief: bool = False

    _table_name = "summary_findings"
    _findings = "table"

    def head(self, n: int = 5) -> RankedFindingsResult:
        """The first ``n`` items of the top list (the page's reading layer), each with its
        leading sentence only (the other tasks' sentences stay in the full list)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(f"findings.head: n must be a whole number >= 0, got {n!r}.")
        return replace(self, top=self.top.head(n), brief=True)

    def intro(self, n: int = 5) -> SummaryNote:
        """The sentence before the list: how many findings there are, how many :meth:`head`
        (``n``) and :meth:`after` show, and that the workbook has them all; nothing when there
        is no finding (the list says so)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(f"findings.intro: n must be a whole number >= 0, got {n!r}.")
        total = int((self.table["loop_status"] != "resolved").sum()) if len(self.table) else 0
        shown = min(n, len(self.top))
        more = len(self.top) - shown
        if total == 0:
            return SummaryNote(html="", language=self.language)
        if total == 1 and not more:
            key = "summary.text.findings_one"
        elif more:
            key = "summary.text.findings_more"
        elif shown < total:
            key = "summary.text.findings_first"
        else:
            key = "summary.text.findings_all"
        return SummaryNote(
            html=f"<p>{html.escape(t(key, self.language, total=total, shown=shown, more=more))}</p>",
            language=self.language,
        )

    def after(self, n: int = 5) -> RankedFindingsResult:
        """The items of the top list after the first ``n``, numbered on from ``n + 1`` (the
        page's appendix)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(f"findings.after: n must be a whole number >= 0, got {n!r}.")
        return replace(self, top=self.top.iloc[n:], start=self.start + n)

    @property
    def money_words(self) -> str:
        """The money unit in words of the page's language (``万元``, ``USD k``; ``—`` none)."""
        return unit_label(self.money_unit, self.language) if self.money_unit else "—"

    def chart(self) -> alt.Chart:
        """Money at stake of the top findings, coloured by severity."""
        lang = self.language
        d = self.top.dropna(subset=["at_stake"])
        if d.empty or self.money_unit is None:
            return charts.message(t("summary.chart.no_money", lang))
        d = charts.for_chart(d.assign(label=d["rank"].astype(str) + ". " + d["entity"].astype(str)))
        return (
            alt.Chart(d, title=t("summary.chart.findings", lang))
            .mark_bar()
            .encode(
                y=alt.Y("label:N", sort=None, title=None),
                x=alt.X(
                    "at_stake:Q",
                    axis=charts.fmt_axis_money(
                        self.money_unit,
                        lang,
                        title=t(
                            "summary.findings.axis", lang, unit=unit_label(self.money_unit, lang)
                        ),
                    ),
                ),
                color=alt.Color("severity:N", scale=charts.severity_scale(), legend=None),
                tooltip=["entity:N", "severity:N", "at_stake:Q"],
            )
            .properties(width=420, height=22 * len(d))
        )

    def _repr_html_(self) -> str:
        lang = self.language
        if self.top.empty:  # after() of a list that head() showed whole: nothing left out
            return self._note(
                "summary.findings.none" if self.start == 1 else "summary.findings.all_above"
            )
        items = []
        for r in self.top.itertuples():
            sev = html.escape(value_label("severity", r.severity, lang))
            loop = html.escape(t(f"summary.loop.{r.loop_status}", lang, n=int(r.quarters_open)))
            money = "" if pd.isna(r.at_stake) else " · " + html.escape(
                t("summary.findings.at_stake", lang, money=fmt_number(r.at_stake, self.money_unit, lang))
            )  # fmt: skip
            others = "" if self.brief else str(getattr(r, "other_messages", "") or "")
            also = "".join(
                f"<br><small>{html.escape(t('summary.findings.also', lang, message=m))}</small>"
                for m in others.split(" | ")
                if m
            )
            items.append(
                f'<li><span class="pl-sev pl-sev-{html.escape(r.severity)}">[{sev}]</span> '
                f"{html.escape(str(r.message))}{also} <small>({loop}{money} · "
                f"{html.escape(t('summary.findings.evidence', lang))}: {self._links(r)})</small></li>"
            )
        start = f' start="{int(self.start)}"' if self.start != 1 else ""
        return f'<ol class="pl-findings"{start}>' + "".join(items) + "</ol>"

    def _links(self, r: object) -> str:
        """One link per task that reported the item, to its evidence on that task's page."""
        from perflink.summary._findings import TASK_ORDER, link

        evidence = getattr(r, "evidence", "")
        pieces = evidence.split(", ") if isinstance(evidence, str) else []
        seen: dict[str, str] = {}
        for piece in pieces:
            task, _, kind = piece.partition(":")
            if task in TASK_ORDER and task not in seen:
                seen[task] = link(task, kind, self.language)
        if not seen:
            seen = {str(r.source_task): str(r.evidence_link)}
        return " · ".join(
            f'<a href="{html.escape(href)}">{html.escape(t(f"report.task.{task}", self.language))}</a>'
            for task, href in seen.items()
        )


@dataclass(frozen=True)
class ActionsResult(SummaryPart, TableResult):
    """Suggested actions derived from the rules in ``summary.actions`` — suggestions only.

    Attributes
    ----------
    table : ``action_id, entity_id, entity, period, metric_id, rule_id, severity, message``
        (the suggestion with the numbers it rests on), ``finding_id`` (the finding answered).
    language : ``"zh"`` or ``"en"``.
    skipped : one sentence per rule of ``summary.actions`` that could not run (the catalog
        lacks a metric role it needs), shown once above the suggestions.
    """

    skipped: tuple[str, ...] = ()

    _table_name = "summary_actions"

    def chart(self) -> alt.Chart:
        """Number of suggestions per rule."""
        if self.table.empty:
            return self._empty_chart()
        d = self.table.assign(
            rule=[t(f"summary.action_name.{a}", self.language) for a in self.table["action_id"]]
        )
        return (
            alt.Chart(d).mark_bar().encode(
                y=alt.Y("rule:N", title=None), x=alt.X("count():Q", title=None)
            )
        )  # fmt: skip

    def _repr_html_(self) -> str:
        head = self._note("summary.actions.disclaimer")
        head += "".join(f'<p class="pl-note">{html.escape(n)}</p>' for n in self.skipped)
        if self.table.empty:
            return head + self._note("summary.actions.none")
        items = "".join(f"<li>{html.escape(str(m))}</li>" for m in self.table["message"])
        return head + f'<ul class="pl-actions">{items}</ul>'


@dataclass(frozen=True)
class LoopResult(SummaryPart):
    """Review loop: this quarter's findings against last quarter's report.

    Attributes
    ----------
    previous : folder of last quarter's tables, or None (no comparison possible).
    counts : ``loop_status, source_task, n``: findings new / persisting / resolved per task.
    changes : the findings with ``loop_status`` (merged findings columns).
    forecast_errors : last quarter's forecast of this quarter vs actual per entity and
        metric: ``entity_id, metric_id, period, forecast, actual, fc_error, fc_error_pct,
        fc_months, fc_months_in_80``.
    accuracy : per metric and entity kind: ``n, fc_mape, fc_bias, coverage_80``.
    language : ``"zh"`` or ``"en"``.
    metric_names, entity_names : id -> name in ``language`` (the page shows names, not ids).
    units : metric id -> catalog unit (forecasts and actuals are shown with it).
    """

    previous: str | None
    counts: pd.DataFrame = field(repr=False)
    changes: pd.DataFrame = field(repr=False)
    forecast_errors: pd.DataFrame = field(repr=False)
    accuracy: pd.DataFrame = field(repr=False)
    language: str
    metric_names: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    entity_names: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    units: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    _frame = "forecast_errors"
    _table_name = "summary_forecast_review"

    def chart(self) -> alt.Chart:
        """Findings new / persisting / resolved, per task."""
        if self.counts.empty:
            return self._empty_chart()
        d = self.counts.assign(
            status=[t(f"summary.loop.{s}", self.language, n="") for s in self.counts["loop_status"]]
        )
        return (
            alt.Chart(d, title=t("summary.chart.loop", self.language))
            .mark_bar()
            .encode(
                y=alt.Y("status:N", title=None, sort=None),
                x=alt.X("n:Q", title=None),
                color=alt.Color("source_task:N", title=None),
            )
            .properties(width=420, height=120)
        )

    def _accuracy_view(self) -> pd.DataFrame:
        """Accuracy per metric and entity kind, in words (metric names, kinds)."""
        a, lang = self.accuracy, self.language
        view = a.drop(columns=["metric_id", "kind"]).copy()
        view.insert(0, "metric", [self.metric_names.get(m, m) for m in a["metric_id"]])
        view.insert(1, "entity_kind", [t(f"summary.kind.{k}", lang) for k in a["kind"]])
        return view

    def _errors_view(self, errors: pd.DataFrame) -> pd.DataFrame:
        """Forecast errors with names and each amount in its metric's unit."""
        lang = self.language
        units = [self.units.get(m) or None for m in errors["metric_id"]]
        view = errors.drop(columns=["entity_id", "metric_id"]).copy()
        view.insert(0, "entity", [self.entity_names.get(e, e) for e in errors["entity_id"]])
        view.insert(1, "metric", [self.metric_names.get(m, m) for m in errors["metric_id"]])
        for col in ("forecast", "actual", "fc_error"):
            if col in view:
                view[col] = [fmt_number(v, u, lang) for v, u in zip(view[col], units, strict=True)]
        if "period" in view:
            view["period"] = [fmt_period(x, lang) for x in view["period"]]
        return view

    def _repr_html_(self) -> str:
        lang = self.language
        if self.previous is None:
            return self._note("summary.loop.no_previous")
        head = self._note(
            "summary.loop.previous", quarter=_report_quarter(self.previous, self.language)
        )
        parts = []
        for status in ("new", "persisting", "resolved"):
            sel = self.changes[self.changes["loop_status"] == status]
            parts.append(self._heading(f"summary.h.loop_{status}", n=len(sel)))
            if len(sel):
                cols = ["entity", "source_task", "severity", "first_seen", "quarters_open"]
                view = sel[[*cols, "message"]].assign(
                    source_task=[_task_words(x, lang) for x in sel["source_task"]]
                )
                parts.append(self._table(view, max_rows=10))
        parts.append(self._heading("summary.h.forecast_review"))
        if self.accuracy.empty:
            parts.append(self._note("summary.loop.no_forecast"))
        else:
            parts.append(self._table(self._accuracy_view()))
            worst = self.forecast_errors.reindex(
                self.forecast_errors["fc_error_pct"].abs().sort_values(ascending=False).index
            ).head(10)
            parts.append(self._note("summary.loop.worst_errors"))
            parts.append(self._table(self._errors_view(worst)))
        # the sentence is what a leader reads; the tables are an appendix (a pointer in print)
        rows = len(self.changes) + len(self.forecast_errors)
        return head + appendix_html("".join(parts), lang=self.language, rows=rows)


@dataclass(frozen=True)
class QualityResult(SummaryPart, TableResult):
    """Data-quality index per source system, from the validation task (``data_quality``).

    Attributes
    ----------
    table : ``source_system, owner, expected_values, present, missing, failing,
        completeness, pass_rate, dq_index`` (fractions) and ``status``; empty if the
        mapping task did not run.
    language : ``"zh"`` or ``"en"``.
    """

    def chart(self) -> alt.Chart:
        """Index per source system, coloured by status."""
        lang = self.language
        if self.table.empty:
            return self._empty_chart()
        return (
            alt.Chart(charts.for_chart(self.table), title=t("summary.h.quality", lang))
            .mark_bar()
            .encode(
                y=alt.Y("source_system:N", sort="x", title=None),
                x=alt.X("dq_index:Q", axis=alt.Axis(format="%"), title=None),
                color=alt.Color("status:N", scale=_word_scale(), legend=None),
            )
            .properties(width=420, height=20 * len(self.table))
        )

    def _repr_html_(self) -> str:
        from perflink.summary._workbook import header

        lang = self.language
        if self.table.empty:
            return self._note("summary.missing.mapping")
        cols = ["source_system", "owner", "expected_values", "missing", "failing"]
        cols += ["completeness", "pass_rate", "dq_index", "status"]
        d = self.table.reindex(columns=cols)
        for c in ("completeness", "pass_rate", "dq_index"):
            d[c] = [fmt_number(v, "pct", lang) for v in d[c]]
        d["status"] = [value_label("status", v, lang) for v in d["status"]]
        return self._table(d, headers={c: header(c, lang) for c in cols})


@dataclass(frozen=True)
class GroupTotalsResult(SummaryPart, TableResult):
    """The group's tier-1 totals shown in a scoped report (see :func:`perflink.summary.group_totals`).

    Attributes
    ----------
    table : ``metric_id, metric, unit, scope`` (quarter / ytd), ``value`` (metric unit); empty
        when the review is not scoped or the params do not allow group totals.
    language : ``"zh"`` or ``"en"``.
    """

    def chart(self) -> alt.Chart:
        """Nothing to draw beyond the table: a note chart."""
        return charts.message(t("summary.group_totals.title", self.language))

    def _repr_html_(self) -> str:
        if self.table.empty:
            return ""
        lang = self.language
        view = self.table.assign(
            scope=[t(f"summary.scope.{v}", lang) for v in self.table["scope"]],
            value=[
                fmt_number(v, u or None, lang)
                for v, u in zip(self.table["value"], self.table["unit"], strict=True)
            ],
        ).drop(columns=["metric_id", "unit"])
        return self._heading("summary.group_totals.title") + self._table(view)


FindingsResult = RankedFindingsResult  # its name before issue 13 (mapping has its own)


_TASKS = ("mapping", "kpi", "forecast", "anomaly")


def _task_words(task: object, lang: str) -> str:
    """A task's page title (the code where it is not a task of the review)."""
    return t(f"report.task.{task}", lang) if task in (*_TASKS, "summary") else str(task)


def _report_quarter(folder: str, lang: str) -> str:
    """The quarter of a previous report's tables folder (``reports/2026Q2/tables``) in words
    (``2026年第2季度``), never the path; the folder name where it is not a quarter."""
    from pathlib import PurePath

    for part in reversed(PurePath(str(folder)).parts):
        try:
            return fmt_period(pd.Period(part, "Q"), lang)
        except (ValueError, TypeError):
            continue
    return PurePath(str(folder)).name


#: An acronym in a metric's name (two or more capitals): the glossary explains the metric.
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b")

#: Words (lower case) that put a shared glossary term on the summary page.
_GLOSSARY_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "points_gap": {"zh": ("个百分点",), "en": (" pts",)},
    "caliber": {"zh": ("口径",), "en": ("caliber", "definition basis")},
    "elasticity": {"zh": ("弹性",), "en": ("elasticity",)},
    "r2": {"zh": ("r²",), "en": ("r²",)},
    "p_value": {"zh": ("p=", "p 值", "p<", "p <"), "en": ("p=", "p-value", "p <", "p<")},
    "robust_z": {"zh": ("稳健 z", "z 值"), "en": ("robust z", "z-score")},
    "mahalanobis": {"zh": ("马氏距离",), "en": ("mahalanobis",)},
    "lag": {"zh": ("滞后",), "en": ("lag ",)},
}


@dataclass(frozen=True)
class SummaryResult(SummaryPart, QuarterResult):
    """The leadership summary of one quarter.

    Attributes
    ----------
    quarter, language : the review quarter (``"2026Q3"``) and report language.
    headline : :class:`HeadlineResult` (group tier-1, projected full year, score spread).
    chain : :class:`ChainResult` (one line per subsidiary).
    findings : :class:`RankedFindingsResult` (ranked; ``summary_findings``).
    actions : :class:`ActionsResult` (suggestions from the params rules).
    quality : :class:`QualityResult` (data-quality index per source system).
    loop : :class:`LoopResult` (new / persisting / resolved; forecast vs actual).
    missing : tasks whose tables were not available.
    inputs : the :class:`SummaryInputs` used.
    money_unit : the catalog unit of money at stake (the workbook's money columns).
    units : metric id -> catalog unit (the workbook's unit column).
    decisions : :class:`~perflink.summary.DecisionsResult` (the decision page), None when
        built by hand.
    """

    headline: HeadlineResult
    chain: ChainResult
    findings: RankedFindingsResult
    actions: ActionsResult
    quality: QualityResult
    loop: LoopResult = field(repr=False)
    missing: tuple[str, ...] = ()
    inputs: SummaryInputs | None = field(default=None, repr=False, compare=False)
    money_unit: str | None = None
    units: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    decisions: DecisionsResult | None = None

    def to_frame(self) -> pd.DataFrame:
        """The ``summary_findings`` table."""
        return self.findings.to_frame()

    def tables(self) -> dict[str, pd.DataFrame]:
        """``summary_findings``, ``summary_actions`` and ``summary_forecast_review``."""
        return {**self.findings.tables(), **self.actions.tables(), **self.loop.tables()}

    def findings_table(self) -> pd.DataFrame | None:
        """The ranked findings (``summary_findings``)."""
        return self.findings.findings_table()

    def chart(self) -> alt.TopLevelMixin:
        """The per-subsidiary chain chart."""
        return self.chain.chart()

    def glossary_terms(self, *, shown: int = 5) -> tuple[str, ...]:
        """Glossary terms (``glossary.<term>`` labels) for the statistical words the page's
        reading layer uses: the decision page, the headline tables and the first ``shown``
        ranked findings (whose sentences come from the task pages)."""
        lang = self.language
        texts = []
        if self.decisions is not None:
            texts += [self.decisions.tier1_sentence, self.decisions.outlook_sentence]
            texts += [str(x) for x in self.decisions.table.head(self.decisions.shown)["decision"]]
        top = self.findings.top.head(shown)
        for col in ("message", "other_messages"):
            if col in top:
                texts += [str(x) for x in top[col].dropna()]
        texts += [str(x) for x in self.headline.tier1.get("metric", [])]
        blob = " ".join(texts).lower()
        terms = ["money_at_stake", "completion", "probability_of_budget", "interval"]
        terms += [
            term for term, words in _GLOSSARY_WORDS.items() if any(w in blob for w in words[lang])
        ]
        return tuple(dict.fromkeys(terms))

    def glossary_metrics(self, catalog: Catalog) -> tuple[Metric, ...]:
        """The headline's metrics a reader may not know by name -- those named with an
        acronym (``经济增加值（EVA）``, ``GMROI``) -- for the glossary's lines from the
        company's metric dictionary."""
        ids = pd.unique(self.headline.tier1.get("metric_id", pd.Series(dtype=object)))
        found = [catalog.metrics[m] for m in ids if m in catalog.metrics]
        return tuple(m for m in found if _ACRONYM.search(m.name(self.language)))

    def _repr_html_(self) -> str:
        """The decision page: a note on missing tasks (if any), then the decisions part."""
        sep = "、" if self.language == "zh" else ", "
        tasks = sep.join(t(f"report.task.{x}", self.language) for x in self.missing)
        head = self._note("summary.status.missing", tasks=tasks) if self.missing else ""
        return head + (self.decisions._repr_html_() if self.decisions is not None else "")
