"""ScorecardResult, its charts and the HR/finance Excel workbook (not API)."""

from __future__ import annotations

from dataclasses import dataclass, field

import altair as alt
import numpy as np
import pandas as pd

from perflink import charts
from perflink._report_format import TABLE_MAX_ROWS, fmt_number
from perflink.catalog import Policy
from perflink.kpi import TOP_SUBSIDIARIES, PageTable, format_gap, free_text_header, named_view
from perflink.labels import column_label, t, value_label
from perflink.results import QuarterResult, note_html
from perflink.scoring import _drill
from perflink.units import parse_unit, unit_label

#: Money columns of the bonus table (amounts in the catalog's money unit).
BONUS_MONEY = ("base_bonus", "bonus", "pool_budget", "payout", "overrun")

# Large groups: above this many units the score chain shows them as a distribution, and
# charts name only this many subsidiaries / bonus pools (the tables list them all).
_DENSITY_UNITS = 150
_TOP_POOLS = 15


@dataclass(frozen=True)
class ScorecardResult(QuarterResult):
    """Scores, adjustments, bonuses and tenure progress of one review.

    Attributes
    ----------
    quarter, language : review quarter and report language.
    scorecard : one row per entity x scope x scheme metric: ``scheme_id, category, weight,
        rule, floor, cap, actual_before, actual, adjustment, target, target_original,
        completion_before, completion, score_before, score, weighted_score``.
    totals : per entity x scope: ``score, score_before`` and completion by category
        (business -> financial -> score: the chain leadership reads).
    audit : one line per adjustment: what, why, who approved, score before and after.
    bonus : unit bonuses and pool payouts vs budget, in the catalog's money unit
        (:attr:`money_unit`).
    tenure : executives' tenure targets and progress.
    scheme_checks : :func:`perflink.catalog.check_schemes` output.
    findings : kpi_findings (scheme violations, bonus overruns, missed tier-1 targets).
    names, parents : entity id -> display name / parent id.
    money_unit : the catalog's money unit (``万元``, ``kUSD``, ...; None without money
        metrics): the unit of the bonus amounts.
    target_changes : the declared environment changes behind adjusted targets
        (:attr:`perflink.kpi.DecompositionResult.target_changes`); empty when none.
    tenure_declared : number of tenure targets in the params (``kpi.tenure``).
    metric_names : metric id -> catalog name in the report language.
    scheme_names : scheme id -> the scheme in words (``利润中心通用方案``, ``Own scheme of
        <unit>``): a page never shows the scheme codes of the schemes table.
    """

    scorecard: pd.DataFrame = field(repr=False)
    totals: pd.DataFrame = field(repr=False)
    audit: pd.DataFrame = field(repr=False)
    bonus: pd.DataFrame = field(repr=False)
    tenure: pd.DataFrame = field(repr=False)
    scheme_checks: pd.DataFrame = field(repr=False)
    findings: pd.DataFrame = field(repr=False)
    names: dict = field(repr=False, compare=False)
    parents: dict = field(repr=False, compare=False)
    money_unit: str | None = field(default=None, compare=False)
    target_changes: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    tenure_declared: int = field(default=0, compare=False)
    metric_names: dict = field(default_factory=dict, repr=False, compare=False)
    scheme_names: dict = field(default_factory=dict, repr=False, compare=False)

    _frame = "scorecard"
    _title = "scoring.result.title"
    _findings = "findings"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``scorecard``, ``bonus``, ``tenure``, ``adjustment_audit`` and ``kpi_findings``."""
        return {
            "scorecard": self.to_frame(),
            "bonus": self.bonus.copy(),
            "tenure": self.tenure.copy(),
            "adjustment_audit": self.audit.copy(),
            "kpi_findings": self.findings.copy(),
        }

    def view(self) -> pd.DataFrame:
        """The score chain (:meth:`chain`) with unit names instead of ids."""
        return self.named(self.chain())

    def named(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` (e.g. :meth:`scorecard_view`, :attr:`audit`, :attr:`findings`) with
        entity and metric names instead of ids, for a page
        (:func:`perflink.kpi.named_view`)."""
        return named_view(table, names=self.names, metric_names=self.metric_names)

    def scorecard_view(self) -> pd.DataFrame:
        """The scorecard as the page shows it (basis in words, without the attainment columns
        the rules score; completion where a ratio means something, the gap always):
        ``target_original`` (and ``target_reason``
        on the rows whose target a declared environment change moved) stand beside the
        target only when changes were declared; without, the column is left out."""
        # the attainment scored is the rules' input; the page shows completion (or the gap)
        card = self.scorecard.drop(columns=["attainment_before", "attainment"], errors="ignore")
        if "basis" in card:  # the basis in words (完成率 / 百分点差额), as the page explains it
            card["basis"] = [
                t(f"report.value.basis.{b}", self.language) if isinstance(b, str) else b
                for b in card["basis"]
            ]
        if self.target_changes.empty:
            return card.drop(columns=["target_original"])
        a = card["target"].astype(float)
        b = card["target_original"].astype(float)
        changed = ~np.isclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True)
        reasons = [r for r in self.target_changes["reason"] if isinstance(r, str) and r]
        sep = t("kpi.changes.sep", self.language)
        why = sep.join(dict.fromkeys(reasons)) or t("kpi.changes.no_reason", self.language)
        out = card.copy()
        pos = out.columns.get_loc("target_original") + 1
        out.insert(pos, "target_reason", np.where(changed, why, ""))
        return out

    def bonus_view(self) -> pd.DataFrame:
        """The bonus table with its money columns headed in the catalog's money unit
        (``奖金（万元）``, ``Bonus (USD k)``: :func:`perflink.units.unit_label`)."""
        return self._with_unit_headers(self.bonus)

    def _with_unit_headers(self, bonus: pd.DataFrame) -> pd.DataFrame:
        if self.money_unit is None:
            return bonus
        words = unit_label(self.money_unit, self.language)
        heads = {
            c: t(
                "scoring.header.with_unit",
                self.language,
                label=column_label(c, self.language),
                unit=words,
            )
            for c in BONUS_MONEY
        }
        return bonus.rename(columns=heads)

    def _worded(self, table: pd.DataFrame) -> pd.DataFrame:
        """Names for ids, words for codes: scheme, window, scoring rule, finding rule."""
        out = self.named(table)
        lang = self.language
        if "scheme_id" in out:
            out["scheme_id"] = out["scheme_id"].map(
                lambda v: self.scheme_names.get(v, v) if isinstance(v, str) else "—"
            )
        if "scope" in out:
            out["scope"] = out["scope"].map(
                lambda v: t(f"kpi.scope.{v}", lang) if v in ("quarter", "ytd") else v
            )
        if "rule" in out:
            out["rule"] = out["rule"].map(lambda v: rule_words(v, lang))
        if "rule_id" in out:
            out["rule_id"] = out["rule_id"].map(lambda v: finding_words(v, lang))
        return out

    def _headers(self, *cols: str) -> dict[str, str]:
        """Headers of the scoring page's own columns (``scoring.col.<col>``)."""
        return {c: t(f"scoring.col.{c}", self.language) for c in cols}

    def _as_entered(self, *cols: str) -> dict[str, str]:
        """Headers of user-entered text columns, marked as shown as entered."""
        return {c: free_text_header(column_label(c, self.language), self.language) for c in cols}

    def chain_table(self, *, top_level: bool = True) -> PageTable:
        """The score chain (:meth:`chain`) as the page shows it: the group and its
        subsidiaries (``top_level``), or every entity (the appendix table)."""
        chain = self.chain()
        notes = ""
        if top_level:
            chain, notes = self._top_subsidiaries(chain, "score", ascending=True)
        return PageTable(
            self._worded(chain).reset_index(drop=True),
            language=self.language,
            notes=notes,
            units=dict.fromkeys(_COMPLETIONS, "pct"),
            interactive=None if top_level else True,
        )

    def scorecard_table(self) -> PageTable:
        """Every scorecard row in words (:meth:`scorecard_view`): the appendix table."""
        view = self._worded(self.scorecard_view())
        headers = {**self._headers("rule", "floor", "cap"), **self._as_entered("target_reason")}
        return PageTable(
            view,
            language=self.language,
            units={"completion_before": "pct", "floor": "pct", "cap": "pct"},
            headers=headers,
            interactive=True,
        )

    def audit_table(self) -> PageTable:
        """The adjustment audit in words; the reason and approver as the user entered them."""
        view = self._worded(self.audit)
        return PageTable(
            view,
            language=self.language,
            units={"carried_ratio": "pct"},
            headers=self._as_entered("reason", "approved_by"),
            interactive=True,
        )

    def bonus_table(self, *, pools_only: bool = True) -> PageTable:
        """Bonus pools against budget (``pools_only``: budget, payout, overrun) or every
        unit's bonus too (the appendix table); amounts in the catalog's money unit, each
        cell with its unit as the other tables of the page."""
        bonus, notes = self.bonus, ""
        if pools_only:
            bonus = bonus[bonus["kind"] == "pool"]
            bonus = bonus[["entity_id", "pool_budget", "payout", "overrun", "overrun_pct"]]
            bonus, notes = self._top_subsidiaries(bonus, "overrun", ascending=False)
        view = self.named(bonus.drop(columns=["year"], errors="ignore"))
        if "overrun" in view:  # signed before the currency, as the page's gaps: -CNY 784.0 k
            view["overrun"] = [
                format_gap(v, self.money_unit, self.language) if pd.notna(v) else np.nan
                for v in view["overrun"]
            ]
        if "kind" in view:
            view["kind"] = view["kind"].map(lambda k: t(f"scoring.kind.{k}", self.language))
        units = {"overrun_pct": "pct"}
        if self.money_unit is not None:
            units.update(dict.fromkeys(BONUS_MONEY, self.money_unit))
        return PageTable(
            view.reset_index(drop=True),
            language=self.language,
            notes=notes,
            units=units,
            headers=self._headers("kind"),
            interactive=None if pools_only else True,
        )

    def findings_view(self, *, top: int | None = None) -> PageTable:
        """The scoring findings in words. With ``top``: the scheme violations and bonus
        overruns (the missed tier-1 targets have their own table), at most ``top``; without,
        every finding (the appendix table)."""
        f = self.findings
        if top is not None:
            f = f[f["rule_id"] != "tier1_missed"].head(top)
        cols = ["entity_id", "rule_id", "severity", "message"]
        if top is None:
            cols = ["entity_id", "metric_id", "scope", "rule_id", "severity", "message"]
        view = self._worded(f[cols].reset_index(drop=True))
        return PageTable(
            view,
            language=self.language,
            max_rows=top or TABLE_MAX_ROWS,
            interactive=None if top else True,
        )

    def _top_subsidiaries(
        self, table: pd.DataFrame, by: str, *, ascending: bool
    ) -> tuple[pd.DataFrame, str]:
        """The group's and subsidiaries' rows of ``table``: at most
        :data:`perflink.kpi.TOP_SUBSIDIARIES` subsidiaries, the first by ``by``, and a note
        saying so when there are more (the page does not grow with the group)."""
        level = table["entity_id"].map(self._level)
        groups, subs = table[level == "group"], table[level == "subsidiary"]
        if len(subs) <= TOP_SUBSIDIARIES:
            return table[level != "unit"], ""
        top = subs.sort_values(by, ascending=ascending, na_position="last", kind="stable")
        lang = self.language
        note = note_html(
            "scoring.page.top_subs",
            lang,
            by=t(f"scoring.page.by_{by}", lang),
            shown=TOP_SUBSIDIARIES,
            total=f"{len(subs):,}",
        )
        return pd.concat([groups, top.head(TOP_SUBSIDIARIES)]), note

    def _repr_html_(self) -> str:
        return self._heading() + self.chain_table()._repr_html_()

    def chain(self) -> pd.DataFrame:
        """Business completion -> financial completion -> score, per entity (YTD)."""
        t_ = self.totals[self.totals["scope"] == "ytd"]
        cols = ["entity_id", "scheme_id", "business_completion", "financial_completion"]
        return t_[[*cols, "management_completion", "score", "score_before"]]

    def _level(self, entity_id: str) -> str:
        """``group`` (no parent), ``subsidiary`` (parent is the group) or ``unit``."""
        parent = self.parents.get(entity_id)
        if parent is None or pd.isna(parent):
            return "group"
        grand = self.parents.get(parent)
        return "subsidiary" if grand is None or pd.isna(grand) else "unit"

    def chart(self) -> alt.Chart:
        """Score chain: business vs financial completion, coloured by YTD score.

        One dot per entity; in a group with more than ``_DENSITY_UNITS`` units, the units
        become a distribution (shaded cells) under dots for the group and the
        ``_TOP_POOLS`` lowest-scoring subsidiaries, drawn within the units' 1st-99th
        percentiles (a dot beyond sits on the edge; its tooltip gives the true values).
        """
        lang = self.language
        xy = ["business_completion", "financial_completion"]
        data = self.chain().assign(name=lambda d: d["entity_id"].map(self.names))
        level = data["entity_id"].map(self._level)
        title = t("scoring.chart.chain", lang)
        titles = [column_label(c, lang) for c in xy]
        units = level == "unit"
        if units.sum() <= _DENSITY_UNITS:
            return self._chain_dots(data, data[xy], titles).properties(
                title=title, width=480, height=320
            )
        subs = data[level == "subsidiary"].sort_values("score", na_position="last")
        dots = pd.concat([data[level == "group"], subs.head(_TOP_POOLS)])
        lo, hi = data.loc[units, xy].quantile(0.01), data.loc[units, xy].quantile(0.99)
        title = charts.ranked_title(
            title,
            shown=min(len(subs), _TOP_POOLS),
            total=len(subs),
            by=t("report.chart.by_lowest", lang, what=column_label("score", lang)),
            lang=lang,
        )
        cloud = charts.density(data[units], *xy, x_title=titles[0], y_title=titles[1], lang=lang)
        top = self._chain_dots(dots, dots[xy].clip(lo, hi, axis=1), titles, stroke=True)
        return (
            alt.layer(cloud, top)
            .resolve_scale(color="independent")
            .properties(title=title, width=480, height=320)
        )

    def drill_chart(self) -> alt.Chart:
        """Subsidiaries' scores, lowest first; click one to list its units below.

        The page opens (and prints) on the lowest-scoring subsidiary; at most
        ``_drill.DRILL_SUBSIDIARIES`` subsidiaries and ``_drill.DRILL_UNITS`` units of the one
        selected are drawn, and the chart says so. Without a subsidiary that has units, the
        chart says in a sentence that there is nothing to drill into.
        """
        return _drill.drill_chart(
            self.chain(), names=self.names, parents=self.parents, lang=self.language
        )

    def _chain_dots(
        self, data: pd.DataFrame, xy: pd.DataFrame, titles: list[str], *, stroke: bool = False
    ) -> alt.Chart:
        """Dots at ``xy`` (the completions, maybe clipped), coloured by score."""
        mark = {"size": 90, **({"stroke": "#222", "strokeWidth": 0.8} if stroke else {})}
        plot = data.assign(x=xy.iloc[:, 0].to_numpy(), y=xy.iloc[:, 1].to_numpy())
        plot["score_text"] = [fmt_number(v, None, self.language) for v in plot["score"]]
        return (
            alt.Chart(charts.for_chart(plot))
            .mark_circle(**mark)
            .encode(
                x=alt.X(
                    "x:Q", axis=alt.Axis(format="%"), scale=alt.Scale(zero=False), title=titles[0]
                ),
                y=alt.Y(
                    "y:Q", axis=alt.Axis(format="%"), scale=alt.Scale(zero=False), title=titles[1]
                ),
                color=alt.Color(
                    "score:Q",
                    scale=alt.Scale(scheme="redyellowgreen", domain=[60, 110]),
                    title=column_label("score", self.language),
                ),
                tooltip=[
                    alt.Tooltip("name:N", title=column_label("entity_name", self.language)),
                    # the score as the table beside writes it (fmt_number: 98.28, 105.9)
                    alt.Tooltip("score_text:N", title=column_label("score", self.language)),
                    alt.Tooltip("business_completion:Q", format=".1%", title=titles[0]),
                    alt.Tooltip("financial_completion:Q", format=".1%", title=titles[1]),
                ],
            )
        )

    def bonus_chart(self) -> alt.Chart:
        """Bonus payout vs pool budget per pool (subsidiaries and group).

        With more than ``_TOP_POOLS`` subsidiary pools, the group's pool is drawn in its own
        panel (its scale would flatten the rest) above the ``_TOP_POOLS`` subsidiaries with
        the largest overrun (payout minus budget); the subtitle says so.
        """
        lang = self.language
        pools = self.bonus[self.bonus["kind"] == "pool"]
        title = t("scoring.chart.bonus", lang)
        level = pools["entity_id"].map(self._level)
        subs = pools[level != "group"]
        if len(subs) <= _TOP_POOLS:
            return self._pool_bars(pools, alt.Undefined).properties(title=title, width=480)
        subs = subs.sort_values("overrun", ascending=False, na_position="last", kind="stable")
        subs = subs.head(_TOP_POOLS)
        title = charts.ranked_title(
            title,
            shown=len(subs),
            total=int((level != "group").sum()),
            by=column_label("overrun", lang),
            lang=lang,
        )
        ranked = [self.names.get(e, e) for e in subs["entity_id"]]
        panels = [self._pool_bars(pools[level == "group"], alt.Undefined)]
        panels.append(self._pool_bars(subs, ranked))
        return alt.vconcat(*[c.properties(width=480) for c in panels]).properties(title=title)

    def _pool_bars(self, pools: pd.DataFrame, y_sort) -> alt.Chart:
        """Payout and budget bars per pool, names sorted by ``y_sort``."""
        long = pools.melt(
            id_vars=["entity_id"], value_vars=["payout", "pool_budget"], var_name="what"
        )
        long["name"] = long["entity_id"].map(lambda e: self.names.get(e, e))
        long["label"] = (
            charts.short_label(long["name"], 24 if self.language == "zh" else 32)
            if len(long)
            else long["name"]
        )
        if y_sort is not alt.Undefined:  # the ranked names, as the axis shows them
            short = dict(zip(long["name"], long["label"], strict=True))
            y_sort = [short.get(n, n) for n in y_sort]
        long["what"] = [column_label(w, self.language) for w in long["what"]]
        long["value_text"] = [fmt_number(v, self.money_unit, self.language) for v in long["value"]]
        return (
            alt.Chart(charts.for_chart(long))
            .mark_bar()
            .encode(
                y=alt.Y("label:N", title=None, sort=y_sort),
                x=alt.X("value:Q", axis=self._money_axis(), title=None),
                yOffset="what:N",
                color=alt.Color("what:N", title=None),
                tooltip=[
                    alt.Tooltip("name:N", title=column_label("entity_name", self.language)),
                    alt.Tooltip("what:N", title=None),
                    alt.Tooltip("value_text:N", title=t("kpi.chart.amount", self.language)),
                ],
            )
        )

    def _money_axis(self) -> alt.Axis:
        """Axis of bonus amounts in the catalog's money unit (plain without one): zh labels
        say 万/亿 of the currency its title names, en labels carry it (USD 250k)."""
        if self.money_unit is None:
            return alt.Axis()
        title = ""
        if self.language == "zh":
            title = unit_label(str(parse_unit(self.money_unit).currency), self.language)
        return charts.fmt_axis_money(self.money_unit, self.language, title=title)


_COMPLETIONS = ("business_completion", "financial_completion", "management_completion")


def rule_words(rule: object, lang: str) -> str:
    """A scoring rule in words (``linear`` -> 线性计分); an unknown rule as it is."""
    if isinstance(rule, str) and rule in ("linear", "step", "threshold"):
        return t(f"scoring.rule.{rule}", lang)
    return rule if isinstance(rule, str) else "—"


def finding_words(rule_id: object, lang: str) -> str:
    """A finding's rule in words (``tier1_missed`` -> 一级指标未达成)."""
    if not isinstance(rule_id, str):
        return "—"
    if rule_id.startswith("scheme_"):
        return t("scoring.finding.scheme", lang)
    if rule_id in ("tier1_missed", "bonus_overrun", "manager_assessment"):
        return t(f"scoring.finding.{rule_id}", lang)
    return rule_id


def _sheet(entity: str, parents: dict) -> str:
    """Sheet of an entity: its subsidiary (the child of the group on its chain)."""
    chain = [entity]
    while isinstance(parents.get(chain[-1]), str) and len(chain) < 20:
        chain.append(parents[chain[-1]])
    return chain[-2] if len(chain) >= 2 else chain[-1]


@dataclass(frozen=True)
class ManagerAssessmentResult(QuarterResult):
    """Middle-manager assessment (department managers) and executives' tenure view.

    Attributes
    ----------
    quarter, language : review quarter and report language.
    scope : window of the scores (``ytd`` or ``quarter``).
    managers : one row per department manager: ``entity_id, period, scope, rule_id,
        manager, center_type, scheme_id``, ``<dim>_weight`` and ``<dim>_score`` for the
        dimensions business (business process), financial (financial result) and management
        (management efficiency), ``manager_score`` (0 .. 100 x cap), ``policy_ok``,
        ``policy_breach`` (``<category>_min/max`` of the broken bounds), ``severity``,
        ``message``. Sorted by score, lowest first.
    executives : subsidiary managers' tenure targets of the review year (rows of
        :attr:`ScorecardResult.tenure`).
    names : entity id -> display name.
    metric_names, metric_units : metric id -> display name / catalog unit.
    top_n : managers drawn in :meth:`chart` (the lowest scores).
    tenure_declared : number of tenure targets in the params (``kpi.tenure``); with none the
        executives' section says so in one sentence instead of an empty table.
    policy : the catalog's assessment policy (the weight bounds :meth:`policy_text` states).
    """

    scope: str
    managers: pd.DataFrame = field(repr=False)
    executives: pd.DataFrame = field(repr=False)
    names: dict = field(repr=False, compare=False)
    metric_names: dict = field(repr=False, compare=False)
    metric_units: dict = field(repr=False, compare=False)
    top_n: int = 20
    tenure_declared: int = 0
    policy: Policy | None = field(default=None, repr=False, compare=False)

    _frame = "managers"
    _table_name = "manager_assessment"
    _units = {f"{d}_weight": "pct" for d in ("business", "financial", "management")}

    def view(self) -> pd.DataFrame:
        """Managers as people read them: unit names, scores, weights and the message."""
        m = self.managers
        out = pd.DataFrame({"entity_name": m["entity_id"].map(self.names)})
        keep = ["manager", "center_type", *[f"{d}_{k}" for k in ("weight", "score") for d in DIMS]]
        out = out.join(m[[*keep, "manager_score", "severity", "message"]])
        return out

    def executives_view(self) -> pd.DataFrame:
        """Tenure rows with entity and metric names instead of ids."""
        e, lang = self.executives, self.language
        out = pd.DataFrame(
            {
                "entity_name": e["entity_id"].map(self.names),
                "manager": e["manager"],
                "metric_name": e["metric_id"].map(self.metric_names),
            }
        )
        out["year"] = e["year"]
        for col in ("annual_target", "actual"):  # each in its metric's own catalog unit
            out[col] = [
                fmt_number(v, self.metric_units.get(m), lang)
                for v, m in zip(e[col], e["metric_id"], strict=True)
            ]
        cols = ["completion", "plan_completion", "tenure_completion", "tenure_progress"]
        out = out.join(e[cols])
        if "tenure_gap" in e:  # where no completion is shown, the gap in the metric's unit
            out["tenure_gap"] = [
                format_gap(v, self.metric_units.get(m), lang)
                for v, m in zip(e["tenure_gap"], e["metric_id"], strict=True)
            ]
        return out.join(e[["status", "message"]])

    def policy_text(self) -> str:
        """The policy's weight bounds per centre type in words, from the catalog's policy
        (``利润中心：财务类 ≥ 50%、经营类 30%–40%``); empty without a policy."""
        if self.policy is None:
            return ""
        lang = self.language
        centres = []
        for centre, bounds in self.policy.constraints.items():
            parts = [_bound_text(cat, b, lang) for cat, b in bounds.items()]
            parts = [p for p in parts if p]
            if parts:
                name = value_label("center_type", centre, lang)
                joined = t("scoring.policy.part_sep", lang).join(parts)
                centres.append(t("scoring.policy.centre", lang, centre=name, bounds=joined))
        if not centres:
            return t("scoring.policy.none", lang)
        return t("scoring.policy.centre_sep", lang).join(centres)

    def chart(self) -> alt.Chart:
        """Lowest-scoring managers: weighted points of each dimension, stacked to the score."""
        lang = self.language
        low = self.managers.dropna(subset=["manager_score"]).head(self.top_n)
        rows = []
        for r in low.itertuples():
            who = t(
                "scoring.chart.who",
                lang,
                unit=self.names.get(r.entity_id, r.entity_id),
                manager=r.manager,
            )
            for d in DIMS:
                w, s = getattr(r, f"{d}_weight"), getattr(r, f"{d}_score")
                rows.append(
                    dict(
                        who=who,
                        dimension=t(f"scoring.dimension.{d}", lang),
                        points=w * s if pd.notna(s) else 0.0,
                        score=s,
                        weight=w,
                        total=r.manager_score,
                    )
                )
        data = pd.DataFrame(
            rows, columns=["who", "dimension", "points", "score", "weight", "total"]
        )
        # a long name is shortened on the axis (kept apart from the others); the tooltip has it
        data["label"] = (
            charts.short_label(data["who"], 32 if lang == "zh" else 48)
            if len(data)
            else data["who"]
        )
        # scores written as the manager table writes them (fmt_number)
        data["score_text"] = [fmt_number(v, None, lang) for v in data["score"]]
        data["total_text"] = [fmt_number(v, None, lang) for v in data["total"]]
        data = charts.for_chart(data)
        return (
            alt.Chart(data, title=t("scoring.chart.managers", lang, n=len(low)))
            .mark_bar()
            .encode(
                y=alt.Y("label:N", sort=alt.SortField("total", order="ascending"), title=None),
                x=alt.X("points:Q", stack="zero", title=column_label("manager_score", lang)),
                color=alt.Color("dimension:N", title=None),
                tooltip=[
                    alt.Tooltip("who:N", title=t("scoring.chart.who_title", lang)),
                    alt.Tooltip("dimension:N", title=t("scoring.chart.dimension", lang)),
                    alt.Tooltip("score_text:N", title=column_label("score", lang)),
                    alt.Tooltip("weight:Q", format=".0%", title=column_label("weight", lang)),
                    alt.Tooltip("total_text:N", title=column_label("manager_score", lang)),
                ],
            )
            .properties(width=480)
        )

    def _repr_html_(self) -> str:
        scope = t(f"kpi.scope.{self.scope}", self.language)
        html = self._heading("scoring.managers.title")[: -len("</h4>")] + f" ({scope})</h4>"
        html += self._table(self.view())
        html += self._heading("scoring.managers.executives")
        if len(self.executives):
            pct = ("plan_completion", "tenure_completion", "tenure_progress")
            return html + self._table(self.executives_view(), units=dict.fromkeys(pct, "pct"))
        if self.tenure_declared == 0:
            return html + self._note("scoring.managers.no_tenure")
        year = pd.Period(self.quarter, "Q").year
        return html + self._note(
            "scoring.managers.tenure_not_this_year", n=self.tenure_declared, year=year
        )


DIMS = ("business", "financial", "management")


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _bound_text(category: str, bound, lang: str) -> str:
    """One category's bound in words: ``财务类 ≥ 50%``, ``business 30%–40%``."""
    name = value_label("category", category, lang)
    name = name if lang == "zh" else name.lower()
    if bound.min is not None and bound.max is not None:
        return t(
            "scoring.policy.range", lang, category=name, min=_pct(bound.min), max=_pct(bound.max)
        )
    if bound.min is not None:
        return t("scoring.policy.min", lang, category=name, min=_pct(bound.min))
    if bound.max is not None:
        return t("scoring.policy.max", lang, category=name, max=_pct(bound.max))
    return ""
