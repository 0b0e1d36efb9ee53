"""Monthly actual and target panels for the KPI tree and the scorecards.

Not API: used by :mod:`perflink.kpi` and :mod:`perflink.scoring`.

Target rule (docs of :func:`perflink.kpi.decompose`):

* flows with monthly budgets (``kind: budget``, period set) take the budget month by month, so
  a quarter's target is the sum of its three monthly budgets;
* rates (aggregation ``mean`` / ``wmean``) take the annual assessment target (period NaT) in
  every month of its year;
* every other reported metric (balances, prices without a budget) is held at its actual value,
  so it contributes nothing to a variance against target;
* derived metrics are recomputed by their catalog formula from these inputs, month by month
  (a profit target from the budgets of the flows its formula adds up), after the roll-up to
  subsidiaries and group.

Approved adjustments change the metric they name and, through the catalog's formulas, every
metric derived from it (:func:`variable_costs`, :func:`carried_costs`): an adjustment of a
flow that a derived metric adds up (sales in ``sales - cost - expenses``) carries the flows
subtracted beside it that no catalog mapping ties to a driver of their own (the cost of
sales, not the expenses a headcount drives) at the unit's own ratio to it over the 12 months
before the adjustment month, so a recovered sale adds its margin, not its whole amount, to
profit (and the profit's tax follows from its formula).

Declared environment changes multiply the budgets of one metric for one business line from a
month on (:class:`perflink.options.KpiEnvironmentChange`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from perflink import panel
from perflink.catalog import Catalog
from perflink.errors import ParamsError


def build_panel(unit_wide: pd.DataFrame, entities: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Every level of a unit-level panel by the catalog's roll-up rules (:func:`perflink.panel.assemble`)."""
    return panel.assemble(unit_wide, entities, catalog)


def unit_wide(facts: pd.DataFrame, catalog: Catalog, adjustments: pd.DataFrame | None = None):
    """Unit-level complete monthly grid of reported metrics, adjustments added if given."""
    if adjustments is not None and len(adjustments):
        adj = adjustments[["entity_id", "period", "metric_id", "amount"]].rename(
            columns={"amount": "value"}
        )
        facts = pd.concat([facts[["entity_id", "period", "metric_id", "value"]], adj])
        facts = facts.groupby(["entity_id", "period", "metric_id"], as_index=False)["value"].sum(
            min_count=1
        )
    return panel.to_wide(facts, metrics=catalog.reported)


def moved_wide(
    unit: pd.DataFrame, facts: pd.DataFrame, moves: pd.DataFrame, catalog: Catalog
) -> pd.DataFrame:
    """:func:`unit_wide` of ``facts`` with ``moves`` added, from ``unit`` (their pivot).

    The same figures as pivoting again a million fact rows concatenated with the few moves
    and summed per key (``0 + value + amount``, the order that sum adds them in), from a
    copy of the grid with a handful of cells changed. Where the shortcut could differ (a
    move outside the grid, two moves of one key, facts repeating a key) it is not taken.
    """
    keys = pd.MultiIndex.from_arrays(
        [moves["entity_id"], pd.PeriodIndex(moves["period"], freq="M")]
    )
    rows = unit.index.get_indexer(keys)
    known = facts["metric_id"].isin(unit.columns) & facts["value"].notna()
    if (
        (rows < 0).any()  # the pivot would grow a unit or a month
        or moves.duplicated(["entity_id", "period", "metric_id"]).any()
        or int(known.sum()) != int(unit.notna().to_numpy().sum())  # a key repeated in facts
    ):
        return unit_wide(facts, catalog, moves)
    use = (moves["metric_id"].isin(unit.columns) & moves["amount"].notna()).to_numpy()
    rows, cols = rows[use], unit.columns.get_indexer(moves["metric_id"][use])
    values = unit.to_numpy(dtype=float, copy=True) + 0.0  # the sum starts at 0: -0.0 -> 0.0
    at = values[rows, cols]
    amount = moves["amount"].to_numpy(dtype=float)[use]
    values[rows, cols] = np.where(np.isnan(at), 0.0, at) + amount
    return pd.DataFrame(values, index=unit.index, columns=unit.columns)


#: Columns of :func:`carried_costs` (one row per adjustment x cost carried along).
CARRIED_COLUMNS = [
    "entity_id",
    "period",
    "metric_id",
    "amount",
    "cost_id",
    "ratio",
    "carried",
    "ratio_from",
    "ratio_to",
]


def variable_costs(metric: str, catalog: Catalog) -> list[str]:
    """Reported flows that move with ``metric`` when an adjustment changes it.

    A flow ``y`` is carried when a derived formula adds ``metric`` and subtracts ``y`` as
    terms of one sum (``metric - y - ...``), ``y`` adds up over months (aggregation
    ``sum``) and no catalog mapping names a driver of ``y`` (a cost the catalog ties to
    another driver, such as expenses driven by headcount, does not move with sales).
    """
    out: list[str] = []
    for derived in catalog.derived_order:
        formula = catalog.formulas[derived]
        if formula.uses_time or formula.is_boolean:
            continue
        terms = formula.additive_terms()
        if not any(c > 0 and term.inputs == (metric,) for c, term in terms):
            continue
        for c, term in terms:
            if c >= 0 or len(term.inputs) != 1:
                continue
            y = term.inputs[0]
            info = catalog.metrics.get(y)
            if (
                info is not None
                and not info.derived
                and info.aggregation == "sum"
                and not catalog.mappings_to(y)
                and y != metric
                and y not in out
            ):
                out.append(y)
    return out


def carried_costs(
    unit_wide: pd.DataFrame, adjustments: pd.DataFrame | None, catalog: Catalog
) -> pd.DataFrame:
    """The costs each adjustment carries along (:func:`variable_costs`), at the unit's ratio.

    ``ratio`` = the unit's reported ``cost_id`` / ``metric_id`` over the 12 months before the
    adjustment month (``ratio_from`` .. ``ratio_to``), before any adjustment: the event month
    itself is left out, its figures being what the adjustment corrects. ``carried`` =
    ``amount x ratio``; NaN (nothing carried) when the unit has no such history.
    """
    rows = []
    if adjustments is None or adjustments.empty:
        return pd.DataFrame(columns=CARRIED_COLUMNS)
    ents = unit_wide.index.get_level_values("entity_id")
    pers = unit_wide.index.get_level_values("period")
    for adj in adjustments.itertuples():
        costs = variable_costs(adj.metric_id, catalog)
        if not costs:
            continue
        month = pd.Period(adj.period, "M")
        start, end = month - 12, month - 1
        part = unit_wide[(ents == adj.entity_id) & (pers >= start) & (pers <= end)]
        base = part[adj.metric_id].sum(min_count=1) if adj.metric_id in part else np.nan
        for cost in costs:
            total = part[cost].sum(min_count=1) if cost in part else np.nan
            ratio = total / base if np.isfinite(base) and base > 0 else np.nan
            rows.append(
                dict(
                    entity_id=adj.entity_id,
                    period=adj.period,
                    metric_id=adj.metric_id,
                    amount=float(adj.amount),
                    cost_id=cost,
                    ratio=float(ratio),
                    carried=float(adj.amount) * float(ratio),
                    ratio_from=str(start),
                    ratio_to=str(end),
                )
            )
    return pd.DataFrame(rows, columns=CARRIED_COLUMNS)


def adjusted_moves(adjustments: pd.DataFrame, carried: pd.DataFrame) -> pd.DataFrame:
    """Adjustments plus the costs they carry, as ``entity_id, period, metric_id, amount``."""
    cols = ["entity_id", "period", "metric_id", "amount"]
    more = carried[carried["carried"].notna()]
    more = more[["entity_id", "period", "cost_id", "carried"]].set_axis(cols, axis=1)
    return pd.concat([adjustments[cols], more], ignore_index=True) if len(more) else adjustments


def check_changes(changes: Iterable, catalog: Catalog, entities: pd.DataFrame) -> None:
    """Raise :class:`ParamsError` for an environment change that cannot be applied."""
    lines = set(entities["business_line"].dropna().astype(str))
    for i, ch in enumerate(changes):
        where = f"params kpi.environment_changes[{i}]"
        if ch.metric_id not in catalog.metrics or catalog.metrics[ch.metric_id].derived:
            raise ParamsError(
                f"{where}: metric_id {ch.metric_id!r} is not a reported catalog metric; "
                "name a reported metric with monthly budgets (kind: budget in the targets table)"
            )
        if ch.business_line not in lines:
            raise ParamsError(
                f"{where}: business_line {ch.business_line!r} is not in the entities table "
                f"(known: {sorted(lines)})"
            )
        try:
            pd.Period(ch.from_period, "M")
        except (ValueError, TypeError):
            raise ParamsError(
                f"{where}: from_period {ch.from_period!r} is not a month; use YYYY-MM"
            ) from None
        if not np.isfinite(ch.factor) or ch.factor <= 0:
            raise ParamsError(f"{where}: factor {ch.factor!r} must be a positive number")


def target_unit_wide(
    actual: pd.DataFrame,
    targets: pd.DataFrame,
    entities: pd.DataFrame,
    catalog: Catalog,
    *,
    changes: Iterable = (),
    stretch: bool = False,
    cache: dict | None = None,
) -> pd.DataFrame:
    """Unit-level monthly target grid aligned with ``actual`` (see the module docstring).

    ``stretch=True`` scales each flow's monthly budgets by (annual assessment target /
    annual budget) of its year where both exist: the YTD share of the annual target.
    ``cache``: a dict shared by the calls of one set of panels (the quarter's and the year's
    targets, with and without the environment changes), which pivot the same targets.
    """
    cache = {} if cache is None else cache
    if cache.get("of") != (id(actual), id(targets)):  # pivots of other tables: start again
        cache.clear()
        cache["of"] = (id(actual), id(targets))
    out = actual.copy()
    if "t" not in cache:
        cache["t"] = targets[targets["metric_id"].isin(out.columns)]
    t = cache["t"]
    if ("budget", False) not in cache:
        budget = t[(t["kind"] == "budget") & t["period"].notna()]
        cache["budget", False] = (
            budget.pivot_table(
                index=["entity_id", "period"], columns="metric_id", values="target", aggfunc="sum"
            )
            if len(budget)
            else None
        )
    if stretch and ("budget", True) not in cache:
        plain = cache["budget", False]
        cache["budget", True] = None if plain is None else _stretch(plain, t)
    b = cache["budget", stretch]
    if b is not None:
        changes = tuple(changes)
        if changes:  # scaled in place below: the shared pivot stays as it is
            b = b.copy()
        line = entities.set_index("entity_id")["business_line"]
        for ch in changes:
            if ch.metric_id not in b.columns:
                continue
            ents = b.index.get_level_values("entity_id")
            pers = b.index.get_level_values("period")
            hit = (ents.map(line) == ch.business_line) & (pers >= pd.Period(ch.from_period, "M"))
            b.loc[np.asarray(hit, dtype=bool), ch.metric_id] *= ch.factor
        b = b.reindex(index=out.index, columns=out.columns)
        out = b.where(b.notna(), out)
    if "rates" not in cache:
        rates = [
            m
            for m in out.columns
            if catalog.metrics[m].aggregation == "mean" or catalog.metrics[m].weight_metric
        ]
        ann = t[(t["kind"] == "assessment") & t["period"].isna() & t["metric_id"].isin(rates)]
        vals = None
        if len(ann):
            a = ann.pivot_table(
                index=["entity_id", "year"], columns="metric_id", values="target", aggfunc="last"
            )
            idx = pd.MultiIndex.from_arrays(
                [
                    out.index.get_level_values("entity_id"),
                    out.index.get_level_values("period").year,
                ]
            )
            vals = a.reindex(index=idx, columns=a.columns).set_axis(out.index)
        cache["rates"] = vals
    vals = cache["rates"]
    if vals is not None:
        for m in vals.columns:
            out[m] = vals[m].where(vals[m].notna(), out[m])
    return out


def _stretch(b: pd.DataFrame, t: pd.DataFrame) -> pd.DataFrame:
    ann = t[(t["kind"] == "assessment") & t["period"].isna()]
    if ann.empty:
        return b
    a = ann.pivot_table(index=["entity_id", "year"], columns="metric_id", values="target")
    years = b.index.get_level_values("period").year
    ents = b.index.get_level_values("entity_id")
    total = b.groupby([ents, years]).sum(min_count=1)
    factor = (a.reindex(index=total.index, columns=total.columns) / total).fillna(1.0)
    idx = pd.MultiIndex.from_arrays([ents, years])
    return b * factor.reindex(idx).fillna(1.0).to_numpy()
