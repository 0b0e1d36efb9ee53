"""Tree-level KPI decomposition (not API: import from :mod:`perflink.kpi`).

See :func:`decompose`; links and attribution are in :mod:`perflink.kpi._tree`, target
resolution in :mod:`perflink.kpi._panels`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink import labels, panel
from perflink.catalog import Catalog
from perflink.common import parse_quarter, window_months
from perflink.errors import InputError, ParamsError
from perflink.execution import advance, expect, progress
from perflink.kpi import _panels as _pn
from perflink.kpi import _tree as _tree
from perflink.kpi._basis import compare
from perflink.kpi._result import (
    CHANGE_COLUMNS,
    TREE_KEY,
    DecompositionResult,
    KpiPanels,
    Windowed,
    tree_layout,
)
from perflink.kpi._trace import missed_findings
from perflink.options import KpiOptions, StatusOptions

SCOPES = ("quarter", "ytd")
BASES = ("target", "prior_year")


def estimate_elasticities(
    facts: pd.DataFrame, catalog: Catalog, *, overrides: dict[str, float] | None = None
) -> pd.DataFrame:
    """Elasticity of every catalog mapping, estimated from unit-level facts.

    Parameters
    ----------
    facts : the facts table (reads ``entity_id, period, metric_id, value``).
    catalog : the metric catalog (its ``mappings``).
    overrides : mapping id -> elasticity to use instead (e.g. from the mapping-validation task).

    Returns
    -------
    DataFrame with ``mapping_id, driver_id, target_id, lag, elasticity, r2, n_obs, source``
    (``estimated`` or ``params``). The estimate is the pooled least-squares slope (through the
    origin) of year-over-year log changes of 3-month windows, target on lagged driver.

    Raises
    ------
    ParamsError
        An override names an unknown mapping or is not a finite number.
    """
    _check_overrides(overrides, catalog)
    return _with_overrides(
        _tree.estimate_elasticities(_pn.unit_wide(facts, catalog), catalog), overrides
    )


def _check_overrides(overrides: dict[str, float] | None, catalog: Catalog) -> None:
    known = {mp.id for mp in catalog.mappings}
    for key, value in (overrides or {}).items():
        if key not in known or not np.isfinite(value):
            raise ParamsError(
                f"params kpi.elasticities: {key}={value!r}; keys must be mapping ids of the "
                f"catalog ({sorted(known)}) and values finite numbers"
            )


def _elasticities_upto(
    unit: pd.DataFrame, facts: pd.DataFrame, catalog: Catalog, q: pd.Period, overrides
) -> pd.DataFrame:
    """:func:`estimate_elasticities` of the facts up to the quarter's end, from the unit panel.

    The panel's months up to the quarter's end are the pivot of those facts, but for units
    whose facts all come later (all-missing rows, which no estimate reads); without facts up
    to then the facts themselves give the error.
    """
    end = q.asfreq("M", "end")
    per = unit.index.get_level_values("period")
    if not (per <= end).any():
        upto = facts[pd.PeriodIndex(facts["period"], freq="M") <= end]
        return estimate_elasticities(upto, catalog, overrides=overrides)
    _check_overrides(overrides, catalog)
    return _with_overrides(_tree.estimate_elasticities(unit[per <= end], catalog), overrides)


def _with_overrides(out: pd.DataFrame, overrides: dict[str, float] | None) -> pd.DataFrame:
    for key, value in (overrides or {}).items():
        hit = out["mapping_id"] == key
        out.loc[hit, "elasticity"] = float(value)
        out.loc[hit, "source"] = "params"
    return out


@progress("KPI decomposition", unit="step")
def decompose(
    facts: pd.DataFrame,
    targets: pd.DataFrame,
    entities: pd.DataFrame,
    catalog: Catalog,
    *,
    quarter: str | pd.Period,
    adjustments: pd.DataFrame | None = None,
    options: KpiOptions | None = None,
    elasticities: pd.DataFrame | None = None,
    lang: str | None = None,
    status: StatusOptions | None = None,
) -> DecompositionResult:
    """Attribute each tier-1 metric's variance down the three-tier tree, for every entity.

    Parameters
    ----------
    facts, targets, entities : input tables (see docs/data-contract.md). Reads facts
        ``entity_id, period, metric_id, value``; targets ``entity_id, year, period, metric_id,
        target, kind``; entities ``entity_id, parent_id, business_line, name_zh, name_en``.
    catalog : the metric catalog: tier-1 metrics, formulas, decompositions, mappings.
    quarter : review quarter (``"2026Q3"``); windows are the quarter and January..quarter end.
    adjustments : approved adjustments; they are not used here (the tree explains reported
        figures) but are kept in the panels the scorecard reuses.
    options : the ``kpi:`` params block (elasticities, environment changes).
    elasticities : table from :func:`estimate_elasticities`; default: estimated here.
    lang : language of messages (``zh`` / ``en``); default the report language the review was
        opened with (:func:`perflink.open_review` sets it). The result carries it.
    status : the ``status:`` params block (met / narrowly missed / missed thresholds; the
        points basis is scaled to it); default :class:`perflink.options.StatusOptions`.

    Returns
    -------
    DecompositionResult
        ``attribution`` (one row per entity x window x base x tier-1 metric x tree edge),
        ``tier1`` (with ``basis, gap, completion, attainment, status``: see
        :mod:`perflink.kpi._basis`), ``tree``, ``findings`` (tier-1 targets whose status is
        ``missed``, with traced cause),
        ``elasticities``. Contributions are in the tier-1 metric's unit and, for every
        (parent, link), sum to the parent's contribution.

    Raises
    ------
    InputError
        Facts are empty or name entities missing from the entities table.
    ParamsError
        A bad quarter or an environment change that cannot be applied.
    """
    options = (options or KpiOptions()).for_catalog(catalog)
    status = status or StatusOptions()
    q = parse_quarter(quarter)
    lang = labels._check_lang(lang)  # ParamsError naming a language that is not supported
    if facts.empty:
        raise InputError("facts table is empty: nothing to decompose; check the facts input file")
    _pn.check_changes(options.environment_changes, catalog, entities)
    # the progress bar's steps: elasticities, panels, each tree, then the tables
    expect(3 + len(SCOPES) * len(BASES) * len(catalog.tier(1)))
    # the unit panel once: the elasticities and every panel start from it (each pivot of
    # a million fact rows, or filtering them by month, cost as much as a panel)
    unit = _pn.unit_wide(facts, catalog)
    if elasticities is None:  # facts up to the quarter's end, as the mapping page's figure
        elasticities = _elasticities_upto(unit, facts, catalog, q, dict(options.elasticities))
    advance()
    spans = {scope: window_months(q, scope) for scope in SCOPES}
    panels = _build_panels(
        unit, facts, targets, entities, catalog, adjustments=adjustments, options=options,
        spans=spans,
    )  # fmt: skip
    del unit  # built from, never read again: 0.15 GB at 10,000 units through the trees
    advance()
    units_of = _units_of(facts, entities)
    ok = elasticities.dropna(subset=["elasticity"])
    links = _tree.build_links(catalog, dict(zip(ok["mapping_id"], ok["elasticity"], strict=True)))
    frames, tier1 = [], []
    for scope in SCOPES:
        start, end = window_months(q, scope)
        for base in BASES:
            target = panels.target[scope]
            w = _tree.Windows(
                panels.actual, target, catalog, start, end, base, panels.window, units_of
            )
            cache: dict = {}
            for root in catalog.tier(1):
                rows = _tree.attribute_tree(root, links, w, catalog, cache)
                part = pd.concat(rows, ignore_index=True)
                part.insert(1, "period", str(q))
                part.insert(2, "scope", scope)
                part.insert(3, "base", base)
                # rows without a contribution dropped per tree: filtering the whole table
                # copied it (0.7 GB at 10,000 units) beside the parts and their concatenation
                frames.append(part[part["contribution"].notna().to_numpy()])
                del part, rows
                advance()
    attribution = pd.concat(frames, ignore_index=True)
    del frames
    attribution["unit"] = attribution["metric_id"].map(
        {m: catalog.metrics[m].unit for m in pd.unique(attribution["metric_id"])}
    )
    tier1 = _tier1(attribution, catalog, status)
    tier1["target_original"] = _original_targets(tier1, panels, catalog, q)
    tier1 = _adjusted(tier1, panels, catalog, q, status)
    tree = _tree_nodes(attribution, catalog, status)
    findings = missed_findings(tier1, attribution, catalog, entities, status, lang)
    advance()
    return DecompositionResult(
        quarter=str(q),
        language=lang,
        attribution=attribution,
        tier1=tier1,
        tree=tree,
        findings=findings,
        elasticities=elasticities,
        names=_names(entities, lang),
        parents={
            e: (p if isinstance(p, str) else None)
            for e, p in zip(entities["entity_id"], entities["parent_id"], strict=True)
        },
        panels=panels,
        metric_names={m: catalog.metrics[m].name(lang) for m in catalog.metrics},
        metric_units={m: catalog.metrics[m].unit for m in catalog.metrics},
        default_metric=_profit_tier1(catalog),
        target_changes=pd.DataFrame(
            [
                {**ch.model_dump(), "entity_ids": _of_line(entities, ch.business_line)}
                for ch in options.environment_changes
            ],
            columns=CHANGE_COLUMNS,
        ),
        summed_metrics=tuple(
            m
            for m in catalog.tier(1)
            if catalog.metrics[m].derived and catalog.metrics[m].aggregation != "formula"
        ),
        recomputed_metrics=tuple(
            m
            for m in catalog.tier(1)
            if catalog.metrics[m].derived and catalog.metrics[m].aggregation == "formula"
        ),
    )


def _units_of(facts: pd.DataFrame, entities: pd.DataFrame) -> dict[str, list[str]]:
    """Parent id -> the units (entities with facts) that roll up into it."""
    chains = panel.ancestors(entities)
    out: dict[str, list[str]] = {}
    for unit in pd.unique(facts["entity_id"]):
        for parent in chains.get(unit, []):
            out.setdefault(parent, []).append(unit)
    return out


def _profit_tier1(catalog: Catalog) -> str | None:
    """The catalog's profit metric when it is a tier-1 metric (the charts' default)."""
    profit = catalog.role("profit")
    return profit if profit is not None and profit in catalog.tier(1) else None


def _adjusted(tier1: pd.DataFrame, panels: KpiPanels, catalog: Catalog, q, status) -> pd.DataFrame:
    """``actual_adjusted`` and ``status_adjusted`` of each tier-1 row: the actual after the
    approved adjustments (through the formulas, :func:`build_panels`) and its status against
    the same base. Without adjustments they equal ``actual`` and ``status``."""
    out = tier1.copy()
    if panels.adjusted is panels.actual:
        out["actual_adjusted"] = out["actual"]
        out["status_adjusted"] = out["status"]
        return out
    adjusted = np.full(len(out), np.nan)
    for scope in SCOPES:
        start, end = window_months(q, scope)
        stacked = panels.window(panels.adjusted, catalog, start, end).stack(future_stack=True)
        rows = (out["scope"] == scope).to_numpy()
        keys = pd.MultiIndex.from_arrays([out.loc[rows, "entity_id"], out.loc[rows, "metric_id"]])
        adjusted[rows] = stacked.reindex(keys).to_numpy(dtype=float)
    # prior-year rows compare with last year's reported figures; only the actual moves
    out["actual_adjusted"] = adjusted
    cmp = compare(out["actual_adjusted"], out["target"], out["metric_id"], catalog, status=status)
    out["status_adjusted"] = cmp["status"]
    return out


def _original_targets(tier1: pd.DataFrame, panels: KpiPanels, catalog: Catalog, q) -> np.ndarray:
    """``target`` of each tier-1 row before the environment changes (against-target rows;
    prior-year rows keep their base). Without changes the panels are shared: a copy."""
    out = tier1["target"].to_numpy(dtype=float, copy=True)
    for scope in SCOPES:
        if panels.target_original[scope] is panels.target[scope]:
            continue
        start, end = window_months(q, scope)
        win = panels.window(panels.target_original[scope], catalog, start, end)
        rows = (tier1["scope"] == scope) & (tier1["base"] == "target")
        sub = tier1[rows]
        stacked = win.stack(future_stack=True)
        keys = pd.MultiIndex.from_arrays([sub["entity_id"], sub["metric_id"]])
        out[rows.to_numpy()] = stacked.reindex(keys).to_numpy(dtype=float)
    return out


def build_panels(
    facts: pd.DataFrame,
    targets: pd.DataFrame,
    entities: pd.DataFrame,
    catalog: Catalog,
    *,
    adjustments: pd.DataFrame | None = None,
    options: KpiOptions | None = None,
) -> KpiPanels:
    """Monthly actual, adjusted-actual and target panels for every entity (all levels).

    The adjusted panel adds each approved adjustment to the metric it names and the costs it
    carries along at the unit's own ratio (``carried``, see :mod:`perflink.kpi._panels`);
    derived metrics follow through their formulas.

    Targets per window scope: ``quarter`` takes the monthly budgets, ``ytd`` the budgets
    scaled to the annual assessment target where it exists (the YTD share of the annual
    target). ``target`` applies the declared environment changes, ``target_original`` not.
    """
    unit = _pn.unit_wide(facts, catalog)
    return _build_panels(
        unit, facts, targets, entities, catalog, adjustments=adjustments, options=options
    )


def _build_panels(
    unit: pd.DataFrame,
    facts: pd.DataFrame,
    targets: pd.DataFrame,
    entities: pd.DataFrame,
    catalog: Catalog,
    *,
    adjustments: pd.DataFrame | None,
    options: KpiOptions | None,
    spans: dict[str, tuple[pd.Period, pd.Period]] | None = None,
) -> KpiPanels:
    """:func:`build_panels` from the unit panel of ``facts`` (:func:`_panels.unit_wide`).

    ``spans`` (scope -> its window's first and last month): keep the adjusted panel and the
    targets before environment changes as their windows only (:class:`Windowed`: every
    window of them the decomposition and the scorecard read), each let go as soon as it is
    built. At 10,000 units they were three monthly copies of 190 MB held beside the other
    three through the whole KPI task, for a few changed rows.
    """
    options = options or KpiOptions()
    actual = _pn.build_panel(unit, entities, catalog)
    adjusted = actual
    carried = _pn.carried_costs(unit, adjustments, catalog)
    if adjustments is not None and len(adjustments):
        moves = _pn.adjusted_moves(adjustments, carried)
        adjusted = _pn.build_panel(_pn.moved_wide(unit, facts, moves, catalog), entities, catalog)
        if spans is not None:
            adjusted = Windowed.of(adjusted, "adjusted", catalog, spans.values())
    target, original = {}, {}
    pivots: dict = {}  # the four target grids pivot the same targets once
    for scope, stretch in (("quarter", False), ("ytd", True)):
        for store, changes in ((target, options.environment_changes), (original, ())):
            if store is original and not options.environment_changes:
                original[scope] = target[scope]
                continue
            tw = _pn.target_unit_wide(
                unit, targets, entities, catalog, changes=changes, stretch=stretch, cache=pivots
            )
            store[scope] = _pn.build_panel(tw, entities, catalog)
            del tw  # the next grid is built beside the panels, not beside this one too
            if store is original and spans is not None:
                name = f"target_original[{scope}]"
                original[scope] = Windowed.of(original[scope], name, catalog, [spans[scope]])
    return KpiPanels(
        actual=actual,
        adjusted=adjusted,
        target=target,
        target_original=original,
        carried=carried,
    )


def _tier1(attribution: pd.DataFrame, catalog: Catalog, status: StatusOptions) -> pd.DataFrame:
    tot = attribution[attribution["method"] == "total"]
    out = tot[["entity_id", "period", "scope", "base", "metric_id"]].copy()
    out["actual"] = tot["driver_actual"].to_numpy()
    out["target"] = tot["driver_base"].to_numpy()
    out["change"] = tot["contribution"].to_numpy()
    out = out.reset_index(drop=True)
    cmp = compare(out["actual"], out["target"], out["metric_id"], catalog, status=status)
    return pd.concat([out, cmp], axis=1)


def _tree_nodes(attribution: pd.DataFrame, catalog: Catalog, status: StatusOptions) -> pd.DataFrame:
    """Driver-tree nodes of each entity (base target), with completion and layout."""
    # lagged drivers are nodes too (新签合同额 a month earlier explains revenue, and its own
    # drivers hang below it); the remainder and unexplained rows are not metrics
    rows = (attribution["base"] == "target") & attribution["driver_id"].isin(list(catalog.metrics))
    cols = ["entity_id", "scope", "metric_id", "parent_id", "driver_id", "tier", "link", "lag"]
    cols += ["contribution", "driver_actual", "driver_base"]
    # the columns a node shows, not every column of the rows (a node per row of half the
    # table, copied three times on the way: 0.2 GB of it at 10,000 units)
    part = attribution.loc[rows.to_numpy(), [*cols, "depth"]]
    layout = tree_layout(part[[*TREE_KEY, "depth"]])
    nodes = part.drop(columns="depth").merge(layout, on=TREE_KEY, how="inner")
    del part
    cmp = compare(
        nodes["driver_actual"], nodes["driver_base"], nodes["driver_id"], catalog, status=status
    )
    nodes = pd.concat([nodes, cmp[["basis", "gap", "completion", "status"]]], axis=1)
    cols += ["basis", "gap", "completion", "status", "x", "y"]
    return nodes[cols].reset_index(drop=True)


def _of_line(entities: pd.DataFrame, line: str) -> tuple[str, ...]:
    """Ids of the entities of business line ``line`` (none without the column)."""
    if "business_line" not in entities:
        return ()
    return tuple(entities.loc[entities["business_line"] == line, "entity_id"].astype(str))


def _names(entities: pd.DataFrame, lang: str) -> dict[str, str]:
    col = "name_zh" if lang == "zh" else "name_en"
    return dict(
        zip(entities["entity_id"], entities[col].fillna(entities["entity_id"]), strict=True)
    )
