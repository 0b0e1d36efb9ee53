"""Executives' tenure targets (任期制契约化): annual targets and progress (not API).

Rule (see :class:`perflink.options.KpiTenureTarget`): a multi-year target of one entity's
manager is broken into annual targets, either

* ``annual_targets`` given year by year,
* ``total_target`` split evenly over the tenure years (additive metrics),
* ``annual_growth`` a year from the actual of the year before the tenure (``base + |base| x
  ((1 + g)^k - 1)`` in year k, so a loss must shrink to count as growth), or
* ``annual_change`` (absolute, e.g. +0.005 = half a point of a return ratio a year) from that
  actual.

A metric is *pro rata* when its window value grows with the number of months: catalog
aggregation ``sum`` (a profit), or a formula whose numerator is such a flow over a
balance (a return ratio: a profit over a capital balance, not annualised). For those the
current, unfinished year's target is the annual target x elapsed months / 12; rates
(margins, yields) keep the annual target. Progress against the tenure: ``tenure_completion`` = sum of actuals / sum of targets
of the years to date; ``tenure_progress`` = sum of actuals / whole-tenure sum (pro-rata
metrics only). Completions follow the scoring basis of :mod:`perflink.kpi` (shown only for
ratio-basis metrics with a positive target, within 0-200%; rates compare in points and a
target at or below zero by its gap: ``tenure_gap`` = cumulative actual - cumulative target);
``status`` is the met / narrowly missed / missed of the tenure to date
(:func:`perflink.common.actual_status` with the review's ``status:`` block). Progress against the annual plan: the year's actual over the plan (the
target panel of the decomposition: budgets scaled to the annual assessment target) over the
same months.
"""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd

from perflink._report_format import fmt_number
from perflink.catalog import Catalog
from perflink.errors import ParamsError
from perflink.kpi import compare, format_gap

COLUMNS = [
    "entity_id",
    "period",
    "metric_id",
    "rule_id",
    "manager",
    "start_year",
    "end_year",
    "year",
    "months",
    "annual_target",
    "actual",
    "completion",
    "plan",
    "plan_completion",
    "cumulative_target",
    "cumulative_actual",
    "tenure_completion",
    "tenure_progress",
    "tenure_gap",
    "status",
    "severity",
    "message",
]


def flow_degree(metric: str, catalog: Catalog, _depth: int = 0) -> int:
    """1 when a metric's window value scales with the months in the window, else 0 (or less)."""
    m = catalog.metrics[metric]
    if m.aggregation == "sum":
        return 1
    if m.aggregation != "formula" or not m.formula or _depth > 10:
        return 0

    def deg(node: ast.AST) -> int:
        if isinstance(node, ast.Name):
            return flow_degree(node.id, catalog, _depth + 1) if node.id in catalog.metrics else 0
        if isinstance(node, ast.BinOp):
            a, b = deg(node.left), deg(node.right)
            if isinstance(node.op, ast.Mult):
                return a + b
            if isinstance(node.op, ast.Div):
                return a - b
            return max(a, b)
        if isinstance(node, ast.UnaryOp):
            return deg(node.operand)
        if isinstance(node, ast.Call) and node.args:  # lag(x, k), abs(x): the degree of x
            return deg(node.args[0])
        return 0

    return deg(ast.parse(m.formula, mode="eval").body)


def annual_targets(item, base: float, n_years: int) -> list[float]:
    """The tenure item's annual targets (see the module docstring)."""
    if item.annual_targets is not None:
        return [float(x) for x in item.annual_targets]
    if item.total_target is not None:
        return [item.total_target / n_years] * n_years
    if item.annual_change is not None:
        return [base + item.annual_change * (k + 1) for k in range(n_years)]
    g = item.annual_growth or 0.0
    return [base + abs(base) * ((1 + g) ** (k + 1) - 1) for k in range(n_years)]


def check_tenure(tenure, catalog: Catalog, present: set) -> None:
    """Raise :class:`ParamsError` for tenure entries naming a metric the catalog lacks or an
    entity the data lacks: a written target never vanishes from the table without a word."""
    problems = []
    for i, it in enumerate(tenure):
        where = f"params kpi.tenure[{i}]"
        if it.metric_id not in catalog.metrics:
            problems.append(
                f"{where}: metric_id {it.metric_id!r} is not a catalog metric; name one of the "
                "catalog's metrics (metrics.yaml) or remove the entry"
            )
        if it.entity_id not in present:
            problems.append(
                f"{where}: entity_id {it.entity_id!r} has no data in this review (not in the "
                "entities table, or outside its scope); correct the id or remove the entry"
            )
    if problems:
        raise ParamsError("tenure targets cannot be assessed:\n  - " + "\n  - ".join(problems))


def tenure_table(options, decomposition, entities, catalog, q, lang, status=None) -> pd.DataFrame:
    """One row per tenure target x year to date: annual target, actual, plan, progress.

    Raises :class:`ParamsError` (:func:`check_tenure`) for an entry naming a metric or an
    entity this review has no data for.
    """
    panels = decomposition.panels
    present = set(panels.actual.index.get_level_values("entity_id").unique())
    check_tenure(options.tenure, catalog, present)
    items = list(options.tenure)
    if not items:
        return pd.DataFrame(columns=COLUMNS)
    ents = sorted({it.entity_id for it in items})
    # only the tenure entities: their year windows are cheap at any panel size
    actual = _rows(panels.actual, ents)
    plan = _rows(panels.target["ytd"], ents)
    last = q.asfreq("M", "end")
    first = min(it.start_year for it in items) - 1
    wins: dict[tuple[str, int], pd.DataFrame] = {}

    def win(which: str, y: int) -> pd.DataFrame:
        if (which, y) not in wins:
            end = min(pd.Period(f"{y}-12", "M"), last)
            frame = actual if which == "actual" else plan
            wins[which, y] = panels.window(frame, catalog, pd.Period(f"{y}-01", "M"), end)
        return wins[which, y]

    cells: dict[tuple[str, int, str], dict] = {}

    def at(which: str, y: int, entity: str, metric: str) -> float:
        """``win(which, y).at[entity, metric]`` by a dict per column: a large group has
        thousands of tenure rows, and ``.at`` costs a pandas lookup each."""
        key = (which, y, metric)
        if key not in cells:
            frame = win(which, y)
            cells[key] = dict(zip(frame.index, frame[metric].to_numpy(), strict=True))
        return float(cells[key][entity])

    data_start = panels.actual.index.get_level_values("period").min()
    managers = dict(zip(entities["entity_id"], entities["manager"], strict=True))
    names = decomposition.names
    rows = []
    for item in items:
        pro_rata = flow_degree(item.metric_id, catalog) >= 1
        years = list(range(item.start_year, item.end_year + 1))
        prev = item.start_year - 1
        base = np.nan
        if prev >= first and pd.Period(f"{prev}-01", "M") >= data_start:
            base = at("actual", prev, item.entity_id, item.metric_id)
        annual = annual_targets(item, base, len(years))
        total = float(np.sum(annual))
        cum_t = cum_a = 0.0
        for y, target in zip(years, annual, strict=True):
            if y > q.year or pd.Period(f"{y}-01", "M") < data_start:
                continue
            months = last.month if y == q.year else 12
            t_y = target * months / 12 if pro_rata else target
            a_y = at("actual", y, item.entity_id, item.metric_id)
            p_y = at("plan", y, item.entity_id, item.metric_id)
            cum_t += t_y
            cum_a += a_y
            rows.append(
                dict(
                    entity_id=item.entity_id,
                    period=str(q),
                    metric_id=item.metric_id,
                    rule_id="tenure",
                    manager=item.manager or managers.get(item.entity_id),
                    start_year=item.start_year,
                    end_year=item.end_year,
                    year=y,
                    months=months,
                    annual_target=t_y,
                    actual=a_y,
                    plan=p_y,
                    cumulative_target=cum_t,
                    cumulative_actual=cum_a,
                    total=total,
                    pro_rata=pro_rata,
                )
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=COLUMNS)
    ids = out["metric_id"]

    def cmp(actual: str, target: str) -> pd.DataFrame:
        return compare(out[actual], out[target], ids, catalog, status=status)

    out["completion"] = cmp("actual", "annual_target")["completion"]
    out["plan_completion"] = cmp("actual", "plan")["completion"]
    tenure = cmp("cumulative_actual", "cumulative_target")
    out["tenure_completion"] = tenure["completion"]
    out["tenure_gap"] = tenure["gap"]
    out["status"] = tenure["status"]
    progress = cmp("cumulative_actual", "total")["completion"]
    out["tenure_progress"] = progress.where(out["pro_rata"].astype(bool))
    out["severity"] = np.select(
        [out["status"].eq("missed") & (out["year"] == q.year), out["status"].eq("near_miss")],
        ["medium", "low"],
        default="info",
    )
    out = out.reindex(columns=COLUMNS)
    out["message"] = [_message(r, names, catalog, lang) for r in out.itertuples()]
    return out


def _rows(frame: pd.DataFrame, ents: list[str]) -> pd.DataFrame:
    return frame[frame.index.get_level_values("entity_id").isin(ents)]


def _message(r, names: dict, catalog: Catalog, lang: str) -> str:
    m = catalog.metrics[r.metric_id]
    unit = m.unit
    name = names.get(r.entity_id, r.entity_id)
    zh = lang == "zh"

    if m.unit_info.is_rate:  # rates compare in points, not in percent of a rate
        pt = "个百分点" if zh else " pt"
        plan_gap = (r.actual - r.plan) * 100
        ten_gap = (r.cumulative_actual - r.cumulative_target) * 100
        plan = "—" if not np.isfinite(plan_gap) else f"{plan_gap:+.1f}{pt}"
        pct = "—" if not np.isfinite(ten_gap) else f"{ten_gap:+.1f}{pt}"
        plan_txt = f"较年度计划 {plan}" if zh else f"{plan} vs the annual plan"
        ten_txt = f"任期至今较目标 {pct}" if zh else f"tenure to date {pct} vs target"
    else:  # a completion only where it is shown in the table; else the gap in the unit
        if np.isfinite(r.plan_completion):
            plan = fmt_number(r.plan_completion, "pct", lang)
            plan_txt = f"年度计划完成 {plan}" if zh else f"annual plan at {plan}"
        else:
            plan = format_gap(r.actual - r.plan, unit, lang)
            plan_txt = f"较年度计划 {plan}" if zh else f"{plan} vs the annual plan"
        if np.isfinite(r.tenure_completion):
            pct = fmt_number(r.tenure_completion, "pct", lang)
            ten_txt = f"任期至今完成 {pct}" if zh else f"tenure to date at {pct}"
        else:
            pct = format_gap(r.tenure_gap, unit, lang)
            ten_txt = f"任期至今较目标 {pct}" if zh else f"tenure to date {pct} vs target"
    prog = "" if not np.isfinite(r.tenure_progress) else fmt_number(r.tenure_progress, "pct", lang)
    if zh:
        msg = (
            f"{name}（{r.manager}）任期 {r.start_year}–{r.end_year} {m.name('zh')}："
            f"{r.year} 年（{r.months} 个月）实际 {fmt_number(r.actual, unit, lang)}，任期分解目标 "
            f"{fmt_number(r.annual_target, unit, lang)}，{plan_txt}；{ten_txt}"
        )
        return msg + (f"，占任期总目标 {prog}" if prog else "")
    msg = (
        f"{name} ({r.manager}), tenure {r.start_year}-{r.end_year}, {m.name('en')}: "
        f"{r.year} ({r.months} months) actual {fmt_number(r.actual, unit, lang)} vs tenure target "
        f"{fmt_number(r.annual_target, unit, lang)}, {plan_txt}; {ten_txt}"
    )
    return msg + (f", {prog} of the whole-tenure target" if prog else "")
