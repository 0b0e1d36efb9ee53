"""Monthly panels: facts pivoted wide, derived metrics, roll-up to subsidiaries and group,
and aggregation over windows (quarter, year-to-date, full year) by each metric's rule.

Every review task starts here, so that a figure means the same thing on every page:

>>> wide = panel.build(review.facts, review.entities, review.catalog)   # monthly, all levels
>>> q3 = panel.window(wide, review.catalog, "2026-07", "2026-09")        # one row per entity

Roll-ups follow the catalog (issue 15 item 7): a derived metric whose ``aggregation`` adds up
(``sum``, ``last``, ``mean``, ``wmean``: a profit after a tax on positive profit only, an EVA)
is computed per unit from its formula and rolled up like a reported metric, so the group's
figure is the sum of its subsidiaries' and of its units'; a derived metric with
``aggregation: formula`` (ratios, growth) is recomputed at every parent from its totals.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from perflink.catalog import Catalog
from perflink.errors import PerflinkError

__all__ = [
    "ancestors",
    "assemble",
    "build",
    "derive",
    "recomputed",
    "rollup",
    "subsidiary_of",
    "to_wide",
    "window",
]


def to_wide(facts: pd.DataFrame, *, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """Pivot long facts to a complete monthly grid.

    Parameters
    ----------
    facts : the facts table (reads ``entity_id, period, metric_id, value``).
    metrics : columns to include (default: every metric present); absent ones become NaN.

    Returns
    -------
    DataFrame indexed by (``entity_id``, ``period``) — every entity over every month from the
    first to the last period in ``facts`` — with one float column per metric id.
    """
    if facts.empty:
        raise PerflinkError("facts table is empty: nothing to analyse; check the facts input file")
    # A scatter into a (entity, month, metric) array: what pivot_table(aggfunc="first") gives
    # (the first non-missing value of a key; metrics with no value at all left out unless
    # asked for), without its group-by over a million rows.
    ent_codes, ents = pd.factorize(facts["entity_id"], sort=True)
    per = pd.PeriodIndex(facts["period"], freq="M")
    first = per.min()
    periods = pd.period_range(first, per.max(), freq="M")
    per_codes = per.asi8 - first.ordinal
    values = facts["value"].to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(values)
    met_codes, found = pd.factorize(facts["metric_id"], sort=True)
    columns = list(found[np.unique(met_codes[ok])]) if metrics is None else list(metrics)
    col_of = pd.Index(columns).get_indexer(found)[met_codes]  # -1: metric not asked for
    ok &= col_of >= 0
    n_t, n_m = len(periods), len(columns)
    flat = (ent_codes[ok] * n_t + per_codes[ok]) * n_m + col_of[ok]
    keys, at = np.unique(flat, return_index=True)  # first occurrence of every key
    cube = np.full(len(ents) * n_t * n_m, np.nan)
    cube[keys] = values[ok][at]
    grid = pd.MultiIndex.from_product([list(ents), periods], names=["entity_id", "period"])
    return pd.DataFrame(cube.reshape(len(ents) * n_t, n_m), index=grid, columns=columns)


def derive(
    wide: pd.DataFrame, catalog: Catalog, *, only: Iterable[str] | None = None
) -> pd.DataFrame:
    """Add every derived metric of the catalog, computed month by month from its formula.

    Parameters
    ----------
    wide : monthly panel (``entity_id`` x ``period``) of reported metrics; not modified.
    catalog : the metric catalog (formulas, in dependency order).
    only : derived metric ids to (re)compute; the others are kept as they are in ``wide``
        (default: every derived metric). :func:`assemble` recomputes only the
        formula-aggregated ones at the parents, so the rolled-up sums stay sums.

    Returns
    -------
    DataFrame
        A copy of ``wide`` with a column per derived metric (and NaN columns for reported
        metrics it lacked).
    """
    return _derive_into(wide.copy(), catalog, only=only)


def _derive_into(out: pd.DataFrame, catalog: Catalog, *, only=None) -> pd.DataFrame:
    """:func:`derive` in ``out`` itself: for a panel nothing else holds (:func:`assemble`'s
    roll-up, a copy of 150 MB at 10,000 units spared)."""
    keep = None if only is None else set(only)
    for metric in catalog.reported:
        if metric not in out:
            out[metric] = np.nan
    for metric in catalog.derived_order:
        if keep is None or metric in keep or metric not in out:
            out[metric] = catalog.formulas[metric].evaluate_frame(out)
    return out


def recomputed(catalog: Catalog) -> list[str]:
    """Derived metrics recomputed from their formula at every level (``aggregation:
    formula``: ratios, growth rates), in dependency order; every other derived metric is
    computed per unit and rolled up by its aggregation rule (see :func:`assemble`)."""
    return [m for m in catalog.derived_order if catalog.metrics[m].aggregation == "formula"]


def ancestors(entities: pd.DataFrame) -> dict[str, list[str]]:
    """Map each entity id to its chain of parents, nearest first (group last)."""
    parent = dict(zip(entities["entity_id"], entities["parent_id"], strict=True))
    out: dict[str, list[str]] = {}
    for eid in parent:
        chain, cur = [], parent[eid]
        while isinstance(cur, str) and cur and cur in parent and len(chain) < 50:
            chain.append(cur)
            cur = parent[cur]
        out[eid] = chain
    return out


def subsidiary_of(parents: Mapping[str, str | None]) -> dict[str, str]:
    """Map each entity id to its subsidiary: the ancestor (or itself) whose parent is the root.

    Depth decides, not the ``kind`` column, so a report scoped to one subsidiary (whose root
    is that subsidiary) has its departments as the subsidiaries. The root, and entities in
    a loop of parents, map to nothing. Any depth of units below a subsidiary is allowed.

    Parameters
    ----------
    parents : entity id -> parent id (None or NaN for the root).
    """
    out = {}
    for e in parents:
        path, cur = [], e
        while True:
            p = parents.get(cur)
            if p is None or pd.isna(p) or cur in path:
                break
            path.append(cur)
            cur = p
        if path and cur not in path[:-1]:  # the path ends at the child of the root
            out[e] = path[-1]
    return out


def rollup(wide: pd.DataFrame, entities: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Add rows for every parent entity (subsidiaries, group) aggregated from its units.

    Every metric of ``wide`` whose catalog aggregation is not ``formula`` rolls up by its
    rule across entities: ``sum`` and ``last`` (balances) add up, ``mean`` averages over the
    units that report it, ``wmean:<w>`` is the ``w``-weighted mean. That includes derived
    metrics computed per unit (:func:`assemble` derives them first), so a sum-aggregated
    profit is the sum of its units' profits. Formula-aggregated derived metrics are not
    rolled up (NaN at the parents): :func:`assemble` recomputes them from the rolled-up
    totals. Each unit row counts once per ancestor, grouped by (ancestor, period)
    (:func:`_rollup_rows`).
    """
    units = wide.index.get_level_values("entity_id")
    chains = ancestors(entities)
    unknown = sorted(set(units.unique()) - set(chains))
    if unknown:
        raise PerflinkError(
            f"facts name entities missing from the entities table: {unknown[:5]}; add them to "
            "entities.csv or remove their facts"
        )
    unit_ids = list(units.unique())
    parents = sorted({p for u in unit_ids for p in chains[u]})
    if not parents:
        return wide
    base_cols = [
        m
        for m in wide.columns
        if m in catalog.metrics and catalog.metrics[m].aggregation != "formula"
    ]
    rules = {m: catalog.metrics[m].aggregation for m in base_cols}
    take, key, periods = _rollup_rows(units, wide.index.get_level_values("period"), chains, parents)
    # Column by column in batches: the rows of every (unit, ancestor) pair for every metric
    # at once (merged, then copied into the grouped frame) were 0.9 GB of temporaries at
    # 10,000 units for 0.2 GB of result; a batch's are 0.1 GB. Each
    # parent-month adds its units' values in the order the rows of ``wide`` give them, by
    # the same cython reductions, so the figures do not depend on the batches.
    out: dict[str, pd.Series] = {}
    names = list(rules)
    for first in range(0, len(names), _ROLLUP_BATCH):
        batch = names[first : first + _ROLLUP_BATCH]
        summed, meaned = {}, {}
        for metric in batch:
            rule = rules[metric]
            values = wide[metric].to_numpy(dtype=float)[take]
            if rule in ("sum", "last"):
                summed[metric] = values
            elif rule == "mean":
                meaned[metric] = values
            elif rule.startswith("wmean:"):
                w = wide[rule.split(":", 1)[1]].to_numpy(dtype=float)[take]
                w = np.where(np.isnan(values), np.nan, w)
                summed[f"{metric}\0num"] = values * w
                summed[f"{metric}\0den"] = w
        sums = pd.DataFrame(summed).groupby(key).sum(min_count=1) if summed else None
        means = pd.DataFrame(meaned).groupby(key).mean() if meaned else None
        del summed, meaned
        for metric in batch:
            rule = rules[metric]
            if rule in ("sum", "last"):
                out[metric] = sums[metric]
            elif rule == "mean":
                out[metric] = means[metric]
            elif rule.startswith("wmean:"):
                out[metric] = sums[f"{metric}\0num"] / sums[f"{metric}\0den"]
    groups = np.unique(key)
    n_t = len(periods)
    index = pd.MultiIndex.from_arrays(
        [pd.Index(parents, dtype=units.dtype).take(groups // n_t), periods.take(groups % n_t)],
        names=wide.index.names,
    )
    frame = pd.DataFrame({m: col.to_numpy() for m, col in out.items()}, index=index)
    return pd.concat([wide, frame]).sort_index()


#: Metrics :func:`rollup` groups at a time (a batch's rows are ~8 MB a metric at 10,000 units).
_ROLLUP_BATCH = 8


def _rollup_rows(units: pd.Index, periods: pd.Index, chains: dict, parents: list[str]):
    """Rows of the (unit row, ancestor) pairs :func:`rollup` adds up, without building them.

    Returns ``take`` (the position in the panel of each pair's unit row: each row in order,
    once per ancestor, nearest first), ``key`` (its group: the ancestor's position in
    ``parents`` x the number of months + the month's) and the sorted months.
    """
    unit_ids = pd.Index(units.unique())
    unit_of_row = unit_ids.get_indexer(units)
    pos = {p: k for k, p in enumerate(parents)}
    depth = max(len(chains[u]) for u in unit_ids)
    table = np.full((len(unit_ids), depth), -1, dtype=np.int64)
    for k, u in enumerate(unit_ids):
        table[k, : len(chains[u])] = [pos[p] for p in chains[u]]
    ups = (table >= 0).sum(axis=1)[unit_of_row]
    take = np.repeat(np.arange(len(units)), ups)
    step = np.arange(len(take)) - np.repeat(np.cumsum(ups) - ups, ups)
    month_of_row, months = pd.factorize(periods, sort=True)
    key = table[unit_of_row[take], step] * len(months) + month_of_row[take]
    return take, key, months


def assemble(unit_wide: pd.DataFrame, entities: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Every level of a unit-level panel, each metric aggregated as the catalog declares.

    Derive every derived metric per unit (a unit-month that reports some input of an
    additive derived metric counts its missing additive inputs as zero, as the roll-up's sum
    does: a cost centre's profit is minus its costs), roll reported and additive derived
    metrics up to every parent (:func:`rollup`), then recompute the formula-aggregated ones
    (:func:`recomputed`) at every row from the totals. A parent's sum-aggregated derived
    metric is then the sum of its units' (a tax on positive profit only is charged unit by
    unit, as the catalog's formula says), not the formula applied to consolidated inputs.

    Parameters
    ----------
    unit_wide : complete monthly grid of reported metrics, one row per unit x month
        (:func:`to_wide`); not modified.
    entities : the entities table (``entity_id, parent_id``).
    catalog : the metric catalog (aggregation rules and formulas).

    Returns
    -------
    DataFrame indexed by (``entity_id``, ``period``): units and every ancestor, one column
    per catalog metric.

    Raises
    ------
    PerflinkError
        ``unit_wide`` names entities the entities table lacks (:func:`rollup`).
    """
    units = _derive_units(unit_wide, catalog)
    # both frames are this call's own: the roll-up is derived in place
    return _derive_into(rollup(units, entities, catalog), catalog, only=recomputed(catalog))


def _derive_units(unit_wide: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Derived metrics per unit: additive ones count a missing additive input as zero.

    The roll-up sums what units report, so a unit that books costs but no sales (a cost
    centre) lowers its parent's profit by its costs. Computed per unit, its profit must do
    the same: where a unit-month reports any input of an additive derived metric, its missing
    additive inputs (``sum``/``last``) are zero, as in the parent's sum; a unit-month with no
    input at all stays missing. Formula-aggregated metrics (ratios) keep NaN for a missing
    input (a ratio of nothing is not zero).
    """
    out = unit_wide.copy()
    for metric in catalog.reported:
        if metric not in out:
            out[metric] = np.nan
    additive = {m for m, info in catalog.metrics.items() if info.aggregation in ("sum", "last")}
    for metric in catalog.derived_order:
        formula = catalog.formulas[metric]
        if catalog.metrics[metric].aggregation == "formula" or formula.uses_time:
            out[metric] = formula.evaluate_frame(out)
            continue
        names = [n for n in formula.inputs if n in out]
        inputs = out[names]
        present = inputs.notna().any(axis=1)
        filled = inputs.fillna({n: 0.0 for n in names if n in additive})
        out[metric] = formula.evaluate_frame(filled).where(present)
    return out


def build(facts: pd.DataFrame, entities: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Monthly panel for every entity and every catalog metric: pivot, then
    :func:`assemble` (derive per unit, roll up, recompute formula-aggregated metrics)."""
    return assemble(to_wide(facts, metrics=catalog.reported), entities, catalog)


def window(
    wide: pd.DataFrame, catalog: Catalog, start: str | pd.Period, end: str | pd.Period
) -> pd.DataFrame:
    """Aggregate a monthly panel over the months ``start..end`` (inclusive) per entity.

    Each metric follows its catalog aggregation: ``sum``, ``mean``, ``last`` (value of the last
    month), ``wmean:<w>``; derived metrics with ``aggregation: formula`` are recomputed from the
    window totals of their inputs, where ``lag(x, k)`` reads ``x`` over the same window shifted
    back ``k`` months (so a quarter's ``sales / lag(sales, 12) - 1`` is growth over the same
    quarter last year). ``sum(x, k)`` has no window meaning and gives NaN there.

    Returns
    -------
    DataFrame indexed by ``entity_id``, one column per metric of ``wide``.
    """
    start, end = pd.Period(start, "M"), pd.Period(end, "M")
    if end < start:
        raise PerflinkError(f"window: end {end} is before start {start}")
    cache: dict[int, pd.DataFrame] = {}

    def base(shift: int) -> pd.DataFrame:
        if shift not in cache:
            cache[shift] = _aggregate_base(wide, catalog, start - shift, end - shift)
        return cache[shift]

    out = base(0).copy()
    for metric in catalog.derived_order:
        if metric not in wide:
            continue
        if catalog.metrics[metric].aggregation != "formula":
            continue
        formula = catalog.formulas[metric]
        lags = sorted({0, *formula.lags.values()})
        if len(lags) == 1:
            out[metric] = _evaluate_rows(formula, out)
            continue
        top = max(lags)
        layers = {
            top - k: (out if k == 0 else _with_derived(base(k), catalog, out.columns)) for k in lags
        }
        values = formula.evaluate_frame(_stack(layers, out.index, depth=top + 1))
        out[metric] = values.to_numpy(dtype=float).reshape(len(out.index), top + 1)[:, top]
    return out


def _aggregate_base(wide: pd.DataFrame, catalog: Catalog, start, end) -> pd.DataFrame:
    periods = wide.index.get_level_values("period")
    part = wide[(periods >= start) & (periods <= end)]
    # One factorization of the entity ids and numpy reductions per metric: a pandas groupby
    # per metric re-derives the groups every time, which dominated on thousands of units.
    codes, uniques = pd.factorize(part.index.get_level_values("entity_id"), sort=True)
    k = len(uniques)
    out = {}
    # an entity without values (or weights) of a metric in the window gets NaN: 0 / 0 here
    quiet = functools.partial(np.errstate, invalid="ignore", divide="ignore")
    for metric in wide.columns:
        rule = catalog.metrics[metric].aggregation if metric in catalog.metrics else "sum"
        col = part[metric].to_numpy(dtype=float)
        if rule == "sum":
            out[metric] = _group_sum(codes, col, k)
        elif rule == "mean":
            with quiet():
                out[metric] = _group_sum(codes, col, k) / _group_count(codes, col, k)
        elif rule == "last":
            out[metric] = _group_last(codes, col, k)
        elif rule.startswith("wmean:"):
            w = part[rule.split(":", 1)[1]].to_numpy(dtype=float)
            w = np.where(np.isnan(col), np.nan, w)
            with quiet():
                out[metric] = _group_sum(codes, col * w, k) / _group_sum(codes, w, k)
        else:  # derived with formula aggregation: filled in by window()
            out[metric] = np.full(k, np.nan)
    return pd.DataFrame(out, index=pd.Index(uniques, name="entity_id"))


def _group_count(codes: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Non-missing values per group; NaN where a group has none."""
    n = np.bincount(codes, weights=~np.isnan(values), minlength=k)
    return np.where(n > 0, n, np.nan)


def _group_sum(codes: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Sum per group; NaN where a group has no value (pandas' ``sum(min_count=1)``)."""
    ok = ~np.isnan(values)
    total = np.bincount(codes, weights=np.where(ok, values, 0.0), minlength=k)
    return np.where(np.bincount(codes, weights=ok, minlength=k) > 0, total, np.nan)


def _group_last(codes: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Last non-missing value per group in row order (rows are in period order)."""
    pos = np.full(k, -1)
    ok = np.flatnonzero(~np.isnan(values))
    np.maximum.at(pos, codes[ok], ok)
    return np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan)


def _with_derived(frame: pd.DataFrame, catalog: Catalog, columns) -> pd.DataFrame:
    """Window totals of a shifted window, with formula-aggregated metrics recomputed."""
    out = frame.copy()
    for metric in catalog.derived_order:
        if metric in out and catalog.metrics[metric].aggregation == "formula":
            f = catalog.formulas[metric]
            if not f.uses_time:
                out[metric] = _evaluate_rows(f, out)
    return out.reindex(columns=columns)


def _evaluate_rows(formula, frame: pd.DataFrame) -> np.ndarray | pd.Series:
    """A formula evaluated row by row on one window row per entity.

    Same arithmetic as ``evaluate_frame`` on a one-month panel, on the columns' arrays: building
    a MultiIndexed panel per derived metric and window cost more than the formula itself.
    """
    if formula.uses_time or formula.is_boolean:  # shifts need the panel; rules give booleans
        return formula.evaluate_frame(_stack({0: frame}, frame.index)).to_numpy()
    cols = {n: frame[n].to_numpy(dtype=float) if n in frame else None for n in formula.names}
    missing = [n for n, v in cols.items() if v is None]
    if missing:  # let evaluate_frame raise its FormulaError naming the column
        return formula.evaluate_frame(_stack({0: frame}, frame.index)).to_numpy()
    return np.broadcast_to(formula.evaluate(cols), (len(frame),)).astype(float)


def _stack(layers: dict[int, pd.DataFrame], index: pd.Index, depth: int = 1) -> pd.DataFrame:
    """A pseudo-monthly panel with ``depth`` rows per entity, filled at the given positions."""
    cols = next(iter(layers.values())).columns
    values = np.full((len(index), depth, len(cols)), np.nan)
    for pos, layer in layers.items():
        values[:, pos, :] = layer.reindex(index=index, columns=cols).to_numpy(dtype=float)
    full = pd.MultiIndex.from_product([index, range(depth)], names=["entity_id", "period"])
    return pd.DataFrame(values.reshape(len(index) * depth, len(cols)), index=full, columns=cols)


def yoy_window_change(values: np.ndarray, lag: int) -> np.ndarray:
    """Year-over-year log change of each row's 3-month totals, shifted by ``lag`` months.

    ``values`` is (entities, months) of one flow; at month t the result is log of the total
    over t-lag-2..t-lag minus the log of the same window a year earlier (NaN where a window
    is incomplete or not positive). The KPI decomposition's statistical links and the
    mapping page's quarterly elasticity both regress the target's change on the driver's.
    """
    arr = np.where(values > 0, values, np.nan)
    c = np.nancumsum(np.nan_to_num(arr), axis=1)
    cnt = np.cumsum(np.isfinite(arr), axis=1)
    s3 = np.full(arr.shape, np.nan)
    s3[:, 2:] = c[:, 2:] - np.c_[np.zeros((arr.shape[0], 1)), c[:, :-3]]
    n3 = np.zeros(arr.shape)
    n3[:, 2:] = cnt[:, 2:] - np.c_[np.zeros((arr.shape[0], 1)), cnt[:, :-3]]
    s3 = np.where(n3 == 3, s3, np.nan)
    out = np.full(arr.shape, np.nan)
    if lag + 12 < arr.shape[1]:
        lg = np.log(s3)
        out[:, lag + 12 :] = lg[:, 12 : arr.shape[1] - lag] - lg[:, : arr.shape[1] - lag - 12]
    return out
