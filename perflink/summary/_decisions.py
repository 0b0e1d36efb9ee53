"""The decision page: the quarter's result and the full-year outlook in one sentence each,
then the few decisions leadership must take, and :class:`DecisionsResult` that shows them
(not API; see summary).

Everything is read from what the summary already holds (the headline's tier-1 and
projection rows, the suggested actions, the ranked findings): nothing is recomputed, so a
figure here is the figure of the table it comes from, rounded the same way.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from perflink import charts, labels
from perflink._report_format import fmt_figure, fmt_number
from perflink.catalog import Catalog
from perflink.common import SEVERITY_RANK
from perflink.labels import t
from perflink.results import TableResult
from perflink.summary import _findings as _f
from perflink.summary._headline import _in_zh, _tidy
from perflink.summary._results import _TASKS, SummaryPart, fmt_probability
from perflink.units import parse_unit

#: How many decisions the decision page lists at most (the issue asks for three to five).
DECISIONS = 5

#: Columns of the decisions table (``DecisionsResult.table``).
DECISION_COLUMNS: tuple[str, ...] = (
    "rank", "action_id", "decision", "entity_id", "entity", "owner", "severity", "at_stake",
    "quarters_open", "evidence_link", "finding_id",
)  # fmt: skip


def _metric_name(catalog: Catalog, metric_id: str, lang: str) -> str:
    m = catalog.metrics.get(metric_id)
    return m.name(lang) if m is not None else str(metric_id)


def headline_metric(catalog: Catalog, metric_ids: pd.Series) -> str | None:
    """The metric the headline sentences are about: the catalog's profit metric (``role:
    profit``) when the table has it, else its sales metric, else the table's first metric."""
    have = [str(m) for m in pd.unique(metric_ids.dropna())]
    for role in ("profit", "sales"):
        m = catalog.role(role)
        if m is not None and m in have:
            return m
    return have[0] if have else None


def status_word(code: object, lang: str) -> str:
    """The status word of the report's one vocabulary (:data:`perflink.common.ACTUAL_STATUSES`,
    :data:`~perflink.common.OUTLOOK_STATUSES`), as it reads inside an English sentence
    ("narrowly missed", not "Narrowly missed")."""
    word = labels.value_label("status", code, lang)
    return word[:1].lower() + word[1:] if lang == "en" else word


def _done(row: pd.Series, lang: str) -> str:
    """Completion as the tier-1 table shows it: percent on a ratio basis, else the gap (in
    points for rates, in the metric's unit otherwise)."""
    unit = row.get("unit") or None
    actual, target, done = row["actual"], row["target"], row.get("completion")
    if row.get("basis", "ratio") == "ratio" and pd.notna(done):
        return labels.t("summary.decision.completion", lang, pct=fmt_number(done, "pct", lang))
    if unit and parse_unit(unit).is_rate:
        return labels.t("summary.gap_pts", lang, gap=(actual - target) * 100)
    gap = fmt_number(actual - target, unit, lang)
    gap = f"+{gap}" if pd.notna(actual - target) and actual - target > 0 else gap
    return labels.t("summary.gap_amount", lang, gap=gap)


def tier1_sentence(tier1: pd.DataFrame, catalog: Catalog, lang: str, *, group: str) -> str:
    """One sentence: the group's profit metric this quarter and year to date against target,
    with units, completion and the status word (met / narrowly missed / missed).

    ``tier1`` is :attr:`HeadlineResult.tier1`; without rows, a sentence saying the KPI
    results are missing.
    """
    if tier1 is None or tier1.empty:
        return labels.t("summary.missing.kpi", lang)
    metric = headline_metric(catalog, tier1["metric_id"])
    rows = tier1[tier1["metric_id"] == metric].set_index("scope")
    parts = {}
    for scope in ("quarter", "ytd"):
        if scope not in rows.index:
            continue
        r = rows.loc[scope]
        unit = r["unit"] or None
        parts[scope] = dict(
            actual=fmt_number(r["actual"], unit, lang),
            target=fmt_number(r["target"], unit, lang),
            done=_done(r, lang),
            status=status_word(r["status"], lang),
        )
    name = _in_zh(_metric_name(catalog, metric, lang), lang)
    if set(parts) == {"quarter", "ytd"}:
        q, y = parts["quarter"], parts["ytd"]
        text = labels.t(
            "summary.decision.tier1", lang, group=_in_zh(group, lang), metric=name, **q,
            ytd_actual=y["actual"], ytd_target=y["target"], ytd_done=y["done"],
            ytd_status=y["status"],
        )  # fmt: skip
        return _tidy(text)
    scope, p = next(iter(parts.items()))
    window = labels.t(f"summary.scope.{scope}", lang)
    return _tidy(
        labels.t(
            "summary.decision.tier1_one",
            lang,
            group=_in_zh(group, lang),
            metric=name,
            window=window,
            **p,
        )
    )


def outlook_sentence(
    projection: pd.DataFrame, catalog: Catalog, lang: str, *, group: str, year: int
) -> str:
    """One sentence: the group's projected full year of its profit metric against budget --
    the projection, the gap in money (unit), the deviation and the probability of meeting
    budget, and the outlook status word (on track / at risk / off track).

    ``projection`` is :attr:`HeadlineResult.projection` (the group's rows); without rows, a
    sentence saying the forecast is missing.
    """
    if projection is None or projection.empty:
        return labels.t("summary.missing.forecast", lang)
    metric = headline_metric(catalog, projection["metric_id"])
    r = projection[projection["metric_id"] == metric].iloc[0]
    unit = r["unit"] or None
    gap = float(r["projected"]) - float(r["budget"])
    key = "above" if gap >= 0 else "below"
    text = labels.t(
        f"summary.decision.outlook_{key}", lang, group=_in_zh(group, lang), year=year,
        metric=_in_zh(_metric_name(catalog, metric, lang), lang),
        projected=fmt_number(r["projected"], unit, lang),
        budget=fmt_number(r["budget"], unit, lang),
        gap=fmt_number(abs(gap), unit, lang), dev=fmt_figure(r["deviation_pct"], "+.1%"),
        p=fmt_probability(r["p_meet_budget"], lang),
        status=status_word(r["status"], lang),
    )  # fmt: skip
    return _tidy(text)


def owners(entities: pd.DataFrame, lang: str) -> dict[str, str]:
    """Entity id -> who answers for it: its manager as entered in the entities table, with
    the entity's name (``王伟（东方集团）``); the entity's name where no manager is given."""
    names = dict(zip(entities["entity_id"], entities[f"name_{lang}"], strict=True))
    managers = (
        dict(zip(entities["entity_id"], entities["manager"], strict=True))
        if "manager" in entities
        else {}
    )
    out = {}
    for e, name in names.items():
        m = managers.get(e)
        m = "" if m is None or (isinstance(m, float) and np.isnan(m)) else str(m).strip()
        out[e] = labels.t("summary.decision.owner", lang, manager=m, entity=name) if m else name
    return out


def _subsidiary(entities: pd.DataFrame) -> dict[str, str]:
    """Entity id -> the id of its subsidiary (itself for a subsidiary; the group for the
    group): who sets a department's scheme."""
    parent = dict(zip(entities["entity_id"], entities["parent_id"], strict=True))
    kind = dict(zip(entities["entity_id"], entities["kind"], strict=True))
    out = {}
    for e in parent:
        cur = e
        while kind.get(cur) not in ("subsidiary", "group") and isinstance(parent.get(cur), str):
            cur = parent[cur]
        out[e] = cur
    return out


def _lookup(findings: pd.DataFrame) -> dict[str, dict]:
    if findings is None or findings.empty or "finding_id" not in findings:
        return {}
    return {str(r["finding_id"]): r for r in findings.to_dict("records")}


def _default_link(action: str, lang: str) -> str:
    task, kind = {
        "budget": ("forecast", "projected_miss"),
        "collections": ("kpi", "tier1_missed"),
        "data_quality": ("mapping", "missing"),
        "caliber": ("mapping", "caliber"),
        "weak_driver": ("mapping", "driver"),
        "scheme": ("kpi", "scheme"),
        "bonus": ("kpi", "bonus_overrun"),
    }.get(action, ("", ""))
    return _f.link(task, kind, lang) if task else ""


def _budget_text(
    rows: pd.DataFrame, deviation: pd.DataFrame, names: Mapping[str, str], catalog: Catalog,
    lang: str,
) -> str:  # fmt: skip
    """The one budget decision: its lead item's projection against budget, then the other
    entities and metrics projected off budget (at most three, largest money first)."""
    dev = deviation.set_index(["entity_id", "metric_id"])
    pieces = []
    for r in rows.itertuples():
        key = (r.entity_id, r.metric_id)
        if key not in dev.index:
            continue
        d = dev.loc[key]
        d = d.iloc[0] if isinstance(d, pd.DataFrame) else d
        unit = catalog.metrics[r.metric_id].unit if r.metric_id in catalog.metrics else None
        gap = float(d["projected"]) - float(d["budget"])
        pieces.append(
            dict(
                name=_in_zh(names.get(str(r.entity_id), str(r.entity_id)), lang),
                metric=_in_zh(_metric_name(catalog, r.metric_id, lang), lang),
                gap=fmt_number(abs(gap), unit, lang),
                dev=fmt_figure(d["deviation_pct"], "+.1%"),
                side="above" if gap >= 0 else "below",
            )
        )
    if not pieces:
        return labels.t("summary.action_name.budget", lang)
    lead, rest = pieces[0], pieces[1:4]
    sep = "、" if lang == "zh" else ", "
    others = sep.join(
        labels.t(
            "summary.decision.budget_item", lang, **{k: v for k, v in p.items() if k != "side"}
        )
        for p in rest
    )
    more = labels.t("summary.decision.budget_more", lang, items=others) if rest else ""
    side = lead.pop("side")
    return _tidy(labels.t(f"summary.decision.budget_{side}", lang, **lead) + more)


def decisions(
    actions: pd.DataFrame,
    findings: pd.DataFrame,
    deviation: pd.DataFrame | None,
    quality: pd.DataFrame | None,
    entities: pd.DataFrame,
    catalog: Catalog,
    lang: str,
    *,
    root: str,
    entity_order: Mapping[str, int],
    subject_order: Mapping[str, int],
) -> pd.DataFrame:
    """The decisions leadership must take: the suggested actions, each with the money at
    stake, an owner and a link to its evidence, ranked by the ranked list's rule.

    An action that answers a finding of the ranked list takes that finding's severity,
    money at stake (catalog money unit), quarters open and evidence link. The budget
    actions (projected full-year misses of the group and its subsidiaries) are one decision
    -- adjusting the full-year budget or plan -- led by the group's own projection when it is
    among them (a subsidiary's gap is part of the group's), else by the largest; it takes
    the worst severity of its items and the lead's money at stake (the group's gap holds
    its subsidiaries'; without the group, the largest item's). The rule
    (:func:`perflink.summary._findings.rank`): severity, then money at stake (unpriced
    last), then quarters open, then the entity's and the subject's order.

    Owner: the entity's manager as entered in the entities table with the entity's name
    (a department's scheme: its subsidiary's); a mapping: the catalog owner of its
    finance metric; a source system: its owner in the data-quality table; the entity's
    name where none is given.

    Returns
    -------
    DataFrame
        :data:`DECISION_COLUMNS`, ranked (``rank`` 1 first), every decision (the page shows
        the first :data:`DECISIONS`).
    """
    cols = list(DECISION_COLUMNS)
    if actions is None or actions.empty:
        return pd.DataFrame(columns=cols)
    names = dict(zip(entities["entity_id"], entities[f"name_{lang}"], strict=True))
    who = owners(entities, lang)
    sub = _subsidiary(entities)
    found = _lookup(findings)
    dq_owner = (
        dict(zip(quality["source_system"], quality["owner"], strict=True))
        if quality is not None and not quality.empty and "owner" in quality
        else {}
    )
    rows = []
    for r in actions.to_dict("records"):
        action, entity = r["action_id"], r.get("entity_id")
        entity = entity if isinstance(entity, str) else None
        fid = r.get("finding_id")
        metric = r.get("metric_id") if isinstance(r.get("metric_id"), str) else None
        if not isinstance(fid, str) and entity is not None and metric is not None:
            fid = _f.problem_id(entity, metric)  # a forecast or KPI item on the same metric
        hit = found.get(fid) if isinstance(fid, str) else None
        if action == "scheme" and entity is not None:
            owner = who.get(sub.get(entity, entity), names.get(entity, ""))
        elif action == "weak_driver" and metric in catalog.metrics:
            owner = catalog.metrics[metric].owner
        elif action == "data_quality":
            owner = str(dq_owner.get(r.get("source_system"), "") or "")
        else:
            owner = who.get(entity, "") if entity is not None else ""
        rows.append(
            dict(
                action_id=action,
                decision=r.get("decision") or r.get("message") or "",
                entity_id=entity,
                entity=names.get(entity, "") if entity is not None else "",
                owner=owner,
                severity=hit["severity"] if hit is not None else r.get("severity", "info"),
                at_stake=hit["at_stake"] if hit is not None else np.nan,
                quarters_open=hit.get("quarters_open", 1) if hit is not None else 1,
                evidence_link=(hit or {}).get("evidence_link") or _default_link(action, lang),
                finding_id=fid if hit is not None else None,
                subject=(hit or {}).get("subject") or metric or r.get("rule_id") or "",
                metric_id=metric,
            )
        )
    d = pd.DataFrame(rows)
    d["at_stake"] = pd.to_numeric(d["at_stake"], errors="coerce")
    budget = d[d["action_id"] == "budget"]
    if len(budget) > 1 or (len(budget) == 1 and deviation is not None):
        d = pd.concat(
            [
                d[d["action_id"] != "budget"],
                _one_budget(budget, deviation, root, names, catalog, lang),
            ],
            ignore_index=True,
        )
    d = d.assign(source_task="summary", finding_kind=d["action_id"])
    ranked = _f.rank(d, entity_order=entity_order, subject_order=subject_order)
    return ranked.reindex(columns=cols)


def _one_budget(
    budget: pd.DataFrame, deviation: pd.DataFrame | None, root: str,
    names: Mapping[str, str], catalog: Catalog, lang: str,
) -> pd.DataFrame:  # fmt: skip
    """The budget actions as one decision led by the group's own item (else the largest)."""
    if budget.empty:
        return budget
    order = budget.assign(
        _root=(budget["entity_id"] != root).astype(int),
        _money=-budget["at_stake"].fillna(-np.inf),
        _sev=budget["severity"].map(SEVERITY_RANK).fillna(99),
    ).sort_values(["_root", "_sev", "_money"], kind="stable")
    lead = order.iloc[0].copy()
    if deviation is not None and not deviation.empty:
        # the lead first, then the others by money at stake
        rest = order.iloc[1:].sort_values("at_stake", ascending=False, na_position="last")
        lead["decision"] = _budget_text(
            pd.concat([order.iloc[[0]], rest]), deviation, names, catalog, lang
        )
    lead["severity"] = min(budget["severity"], key=lambda s: SEVERITY_RANK.get(s, 99))
    # the group's own gap already holds its subsidiaries' (and a revenue gap is not lost
    # profit): the group's item prices the decision; without it, the largest item does
    lead["at_stake"] = lead["at_stake"] if lead["entity_id"] == root else budget["at_stake"].max()
    lead["quarters_open"] = budget["quarters_open"].max()
    return pd.DataFrame([lead.drop(labels=["_root", "_money", "_sev"])])


#: The decision table's cells wrap by words within their column on screen and in print
#: (report tables do not wrap by default; this one has fixed column widths).
_WRAP = ' style="white-space:normal;overflow-wrap:break-word"'


@dataclass(frozen=True)
class DecisionsResult(SummaryPart, TableResult):
    """The decision page: the quarter's result and the full-year outlook in one sentence
    each, then the decisions leadership must take.

    Attributes
    ----------
    tier1_sentence : the group's profit metric this quarter and year to date against
        target, with units and the status word (report language).
    outlook_sentence : the group's projected full year of it against budget: projection,
        gap in money with its unit, probability of meeting budget, outlook status word.
    table : every decision, ranked by the ranked list's rule: ``rank, action_id, decision``
        (the text), ``entity_id, entity, owner`` (as entered in the inputs), ``severity,
        at_stake`` (``money_unit``; NaN: not priced), ``quarters_open, evidence_link``
        (an anchor on the task page), ``finding_id``.
    language : ``"zh"`` or ``"en"``.
    money_unit : the catalog's money unit (``万元``, ``kUSD``), None without money metrics.
    shown : how many decisions the page lists (the rest are in the suggested actions).
    """

    tier1_sentence: str = ""
    outlook_sentence: str = ""
    money_unit: str | None = None
    shown: int = 5

    _table_name = "summary_decisions"

    def chart(self) -> alt.Chart:
        """Money at stake of the listed decisions."""
        d = self.table.head(self.shown).dropna(subset=["at_stake"])
        if d.empty or self.money_unit is None:
            return charts.message(t("summary.chart.no_money", self.language))
        d = charts.for_chart(d.assign(label=d["rank"].astype(str) + ". " + d["entity"].astype(str)))
        return (
            alt.Chart(d)
            .mark_bar()
            .encode(
                y=alt.Y("label:N", sort=None, title=None),
                x=alt.X("at_stake:Q", axis=charts.fmt_axis_money(self.money_unit, self.language)),
                tooltip=["decision:N", "at_stake:Q"],
            )
            .properties(width=420, height=22 * len(d))
        )

    def _repr_html_(self) -> str:
        lang = self.language
        parts = [
            f'<p class="pl-lead"><strong>{html.escape(self.tier1_sentence)}</strong></p>',
            f'<p class="pl-lead"><strong>{html.escape(self.outlook_sentence)}</strong></p>',
            self._heading("summary.h.decision_list"),
        ]
        if self.table.empty:
            return "".join(parts) + self._note("summary.decision.none")
        head = "".join(
            f"<th{_WRAP}>{html.escape(t(f'summary.decision.col.{c}', lang))}</th>"
            for c in ("rank", "decision", "at_stake", "owner", "evidence")
        )
        body = []
        for r in self.table.head(self.shown).itertuples():
            money = (
                t("summary.decision.unpriced", lang)
                if pd.isna(r.at_stake) or self.money_unit is None
                else fmt_number(r.at_stake, self.money_unit, lang)
            )
            link = str(r.evidence_link or "")
            task = link.split(".html")[0]
            words = t(f"report.task.{task}", lang) if task in _TASKS else ""
            a = f'<a href="{html.escape(link)}">{html.escape(words)}</a>' if words else ""
            body.append(
                f"<tr><td{_WRAP}>{int(r.rank)}</td><td{_WRAP}>{html.escape(str(r.decision))}</td>"
                f'<td class="pl-num"{_WRAP}>{html.escape(money)}</td>'
                f"<td{_WRAP}>{html.escape(str(r.owner or ''))}</td><td{_WRAP}>{a}</td></tr>"
            )
        cols = "".join(
            f'<col style="width:{w}">' for w in ("3.2em", "auto", "7em", "10em", "10.5em")
        )
        parts.append(
            f'<table class="pl-table pl-decisions" style="width:100%;table-layout:fixed">'
            f"<colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )
        rest = len(self.table) - min(self.shown, len(self.table))
        note = t("summary.decision.rule", lang)
        sep = "" if lang == "zh" else " "  # Chinese sentences follow each other unspaced
        if self.table["owner"].head(self.shown).astype(str).str.len().gt(0).any():
            note += sep + t("summary.decision.owners", lang)
        if rest:
            more = "summary.decision.more_one" if rest == 1 else "summary.decision.more"
            note += sep + t(more, lang, n=rest)
        parts.append(f'<p class="pl-note">{html.escape(note)}</p>')
        return "".join(parts)
