"""``forecast_panel`` (re-exported by :mod:`perflink.forecast`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink import labels
from perflink.common import MATERIALITY, SEVERITY_RANK, outlook_status
from perflink.errors import ParamsError
from perflink.execution import Executor, expect, progress
from perflink.forecast import _deviation as _dev
from perflink.forecast import _joint
from perflink.forecast import _panel as _fp
from perflink.forecast._results import (
    ROLES,
    DeviationResult,
    ForecastResult,
    empty_deviation,
    empty_forecast,
)
from perflink.options import ExecutorOptions, ForecastOptions, StatusOptions


def _names(entities, catalog, lang):
    col = f"name_{lang}"
    names = dict(zip(entities["entity_id"], entities[col], strict=True)) if col in entities else {}
    return names, {m: catalog.metrics[m].name(lang) for m in catalog.metrics}


@progress("forecast", unit="step")  # a series forecast or a unit simulated once
@_fp.quiet
def forecast_panel(
    facts: pd.DataFrame,
    targets: pd.DataFrame,
    entities: pd.DataFrame,
    catalog,
    *,
    quarter: str | pd.Period,
    options: ForecastOptions | None = None,
    language: str | None = None,
    executor: Executor | ExecutorOptions | int | None = None,
    n_jobs: int | None = None,
    status: StatusOptions | None = None,
) -> ForecastResult:
    """Forecast the rest of the fiscal year for every entity and project it against budget.

    Parameters
    ----------
    facts : pandas.DataFrame
        Facts table (reads ``entity_id, period, metric_id, value``); unit level.
        Values after the review quarter are ignored.
    targets : pandas.DataFrame
        Targets table (reads ``entity_id, year, period, metric_id, target, kind``):
        monthly or annual ``budget`` rows and annual ``assessment`` rows.
    entities : pandas.DataFrame
        Entities table (reads ``entity_id, parent_id, kind, business_line,
        center_type, name_zh, name_en``); subsidiaries and the group are aggregated.
    catalog : perflink.catalog.Catalog
        Metric catalog: aggregation and units of the metrics, the profit formula (nested
        formulas of derived metrics are evaluated per path), driver mappings (a driver
        mapped with a lag of a month or more is a regressor and the leading indicator
        quoted beside its metric's misses), the roles that give the default options.
    quarter : str or pandas.Period
        Review quarter (``"2026Q3"``): the last actual month is its last month.
    options : ForecastOptions, optional
        The ``forecast:`` block of the params; unset metrics and profit metric come from
        the catalog (:meth:`perflink.options.ForecastOptions.for_catalog`).
    language : {"zh", "en"}, optional
        Language of names and messages (default: the current report language).
    executor : Executor, ExecutorOptions or int, optional
        Where the per-series forecasts run: ``review.executor`` (the params'
        ``executor:`` block), an int = local worker processes, default local processes
        (cores, at most 8); see :mod:`perflink.execution`. The figures do not depend on it.
    n_jobs : int, optional
        Local worker processes (the same as ``executor=n_jobs``; give one of the two).
    status : StatusOptions, optional
        The ``status:`` block of the params (``review.params.status``; default
        ``StatusOptions()``): the thresholds of the outlook status of every row
        (:func:`perflink.common.outlook_status`).

    Returns
    -------
    ForecastResult
        ``.to_frame()`` is the ``forecast`` table; ``.deviation`` the findings table
        ``forecast_deviation``. Values in each metric's catalog unit; money at stake in
        the catalog's money unit. A catalog with neither a profit nor a sales metric
        (``role:``) and no ``forecast.metrics`` gives an empty result whose page says
        there is nothing to project and why.

    Raises
    ------
    InputError
        Tables lacking columns, or no facts of the metrics up to the quarter.
    ParamsError
        Bad quarter, options out of range, metrics unusable for a full-year sum, or
        a bad executor (unreachable Dask scheduler).
    RunError
        The Dask cluster has no workers, lacks perflink, or lost a worker.
    """
    options = (options or ForecastOptions()).for_catalog(catalog)
    status = status if status is not None else StatusOptions()
    if not isinstance(status, StatusOptions):
        raise ParamsError(
            f"forecast: status must be the params' status: block (StatusOptions, e.g. "
            f"review.params.status), got {type(status).__name__}."
        )
    lang = labels._check_lang(language)
    _fp.check_options(options)
    st = _fp.setup(quarter, options)
    if not options.metrics:  # no role, no metrics: the page says so instead of failing
        return _nothing(catalog, quarter, st, options, lang)
    _fp.check_inputs(facts, entities, catalog, options)
    metrics = list(options.metrics)
    present = set(facts["metric_id"].unique())
    # drivers with a lag >= 1: regressors of the forecast and the leading indicators quoted
    drivers = _fp.driver_map(catalog, metrics, present) if options.use_drivers else {}
    cols = metrics + sorted({d for d, _ in drivers.values()})
    wide = _fp.unit_panel(facts, st.cutoff, cols)
    ex = _fp.executor_of(executor, n_jobs)
    expect(_fp.forecast_steps(wide, entities, options, st))  # the progress bar's total
    fc = _fp.forecast_arrays(wide, entities, catalog, options, st.horizon, ex)
    pm = options.profit_metric
    # the level correction and spread factors, measured on forecasts of the same length made
    # from recent months (windows ending at the cutoff: out of sample)
    n_units = fc["n_units"]
    origins = _fp.windows_for(fc["periods"], st.cutoff, n_units, options) if st.fy_steps else []
    # a large panel calibrates on the backtest's fixed sample of units (parents as the sums
    # of their sampled units): the factors are ratios of realised error to simulated
    # spread, which a stratified sample estimates at a fraction of the cost
    sample = _fp.sample_units(wide, entities, options.backtest_max_units)
    # with the models this forecast chose per unit (the windows measure their error)
    chosen = _fp.choices_of(fc)
    runs = _fp.past_runs(
        sample, entities, catalog, options, origins, ex, steps=st.fy_steps, choices=chosen
    )
    # and the group's, also on full years from the same month a year before (the backtest's)
    years = _fp.origins_for(fc["periods"], st.cutoff, n_units, options) if st.fy_steps else []
    year_runs = _fp.past_runs(sample, entities, catalog, options, years, ex, choices=chosen)
    factors = _fp.calibrate(runs, catalog, options, group_runs=year_runs)
    fc = _fp.correct_means(fc, factors, catalog, options)
    paths = _fp.draw_paths(fc, catalog, options, st.horizon, factors=factors, steps=st.fy_steps)
    actual = _fp.full_actuals(fc, catalog, pm)
    ids = fc["entity_ids"]
    periods = fc["periods"]
    table = _fp.monthly_table(fc, paths, st, options)
    # what follows reads each path's sum over the rest of the year only: the paths (entity x
    # path x month, 0.24 GB a metric at 10,000 units) go back one by one as they are summed
    sums = {m: np.sum(paths.pop(m)[:, :, : st.fy_steps], axis=2) for m in list(paths)}

    # full-year projection per entity and metric
    in_year = np.array([p.year == st.year for p in periods])
    members = _fp.membership(entities, list(wide.index.get_level_values("entity_id").unique()))
    budgets, basis = _dev.monthly_budgets(targets, ids, members, metrics, st.year)
    assess = _dev.assessment_targets(
        targets, ids, members, [*metrics, pm] if pm else metrics, st.year
    )
    flows = {m: (actual[m], sums.pop(m)) for m in [*metrics, pm] if m}
    if pm:
        budgets[pm] = _fp.profit_budget(catalog, pm, budgets, fc)
        basis[pm] = basis[metrics[0]]
    leads = _leads(wide, drivers, targets, ids, members, st, options, len(periods))
    none = np.full(len(ids), np.nan)
    rows = []
    for metric, (act, rest) in flows.items():
        spec = catalog.metrics[metric]
        higher = spec.direction == "higher"
        ytd = np.where(
            np.isfinite(act[:, in_year]).any(axis=1), np.nansum(act[:, in_year], axis=1), np.nan
        )
        fy = ytd[:, None] + rest
        q = (
            _fp.nanquantile(fy, [0.025, 0.1, 0.5, 0.9, 0.975], axis=1)
            if fy.size
            else np.zeros((5, 0))
        )
        q = _fp.floor_zero(q, fc, metric)
        proj = np.nanmean(fy, axis=1)
        bud = np.nansum(budgets[metric], axis=1)
        bud[~np.isfinite(budgets[metric]).all(axis=1)] = np.nan
        meet = (fy >= bud[:, None]) if higher else (fy <= bud[:, None])
        p_meet = np.where(np.isfinite(bud), meet.mean(axis=1), np.nan)
        # money at stake: the projected shortfall against budget in the catalog's money unit;
        # 0 when the projection is at or better than budget (a favourable deviation is no
        # risk), none for a metric that is not money
        short = np.maximum(bud - proj, 0.0) if higher else np.maximum(proj - bud, 0.0)
        to_money = catalog.in_money_unit(metric)
        at_stake = short * to_money if to_money is not None else none
        ass = assess.get(metric, none)
        meet_a = (fy >= ass[:, None]) if higher else (fy <= ass[:, None])
        dev = proj - bud
        lead = leads.get(metric, (none, none, none))
        frame = pd.DataFrame(
            {
                "entity_id": ids,
                "period": str(pd.Period(quarter, "Q")),
                "metric_id": metric,
                "year": st.year,
                "ytd_actual": ytd,
                "forecast_rest": proj - ytd,
                "projected": proj,
                "lo_80": q[1],
                "hi_80": q[3],
                "lo_95": q[0],
                "hi_95": q[4],
                "budget": bud,
                "budget_basis": basis.get(metric, np.full(len(ids), "")),
                "deviation": dev,
                "deviation_pct": dev / np.abs(bud),
                "p_meet_budget": p_meet,
                "assessment": ass,
                "deviation_assessment": proj - ass,
                "deviation_assessment_pct": (proj - ass) / np.abs(ass),
                "p_meet_assessment": np.where(np.isfinite(ass), meet_a.mean(axis=1), np.nan),
                "at_stake": at_stake,
                "lead_months": options.leading_months,
                "lead_recent": lead[0],
                "lead_vs_budget": lead[1],
                "lead_vs_last_year": lead[2],
                "kind": fc["kind"],
                "direction": spec.direction,
            }
        )
        rows.append(frame[np.isfinite(proj)])
    dev_df = pd.concat(rows, ignore_index=True)
    shown = list(flows)
    del flows  # the paths' full-year sums (entity x path): what follows needs none
    sign = np.where(dev_df["direction"] == "higher", -1.0, 1.0)
    adverse = (sign * dev_df["deviation_pct"]).fillna(-np.inf).to_numpy()
    p_miss = (1 - dev_df["p_meet_budget"]).fillna(0).to_numpy()
    # one status vocabulary (perflink.common.outlook_status): the probability shown decides
    with np.errstate(invalid="ignore"):
        favourable = np.where(np.isfinite(adverse), -adverse, np.nan)
    dev_df["status"] = outlook_status(
        dev_df["p_meet_budget"].to_numpy(dtype=float), favourable, options=status
    )
    dev_df["severity"] = _dev.classify(adverse, p_miss, dev_df["status"].to_numpy(), options)
    dev_df["severity"] = _material(dev_df, entities, catalog)
    names, metric_names = _names(entities, catalog, lang)
    units = {m: catalog.metrics[m].unit for m in [*shown, *(d for d, _ in drivers.values())]}
    lead_of = {m: drivers[m] for m in leads}
    dev_df["message"] = _dev.messages(dev_df, names, metric_names, lang, units=units, leads=lead_of)
    dev_df["_rank"] = dev_df["severity"].map(SEVERITY_RANK)
    dev_df = dev_df.sort_values(["_rank", "at_stake"], ascending=[True, False], kind="stable")
    dev_df = dev_df.drop(columns=["_rank", "direction"]).reset_index(drop=True)
    dev_df["status"] = dev_df["status"].fillna("")
    for c in (
        "entity_id",
        "metric_id",
        "period",
        "severity",
        "status",
        "message",
        "budget_basis",
        "kind",
    ):
        dev_df[c] = dev_df[c].astype("str")

    history = _history(actual, budgets, ids, periods, st)
    return ForecastResult(
        forecast=table,
        history=history,
        deviation=DeviationResult(
            dev_df, names, metric_names, lang, units=units, money_unit=catalog.money_unit
        ),
        quarter=str(pd.Period(quarter, "Q")),
        year=st.year,
        names=names,
        metric_names=metric_names,
        language=lang,
        options=options,
        units=units,
        roles=_roles(catalog),
        leads=lead_of,
        status=status,
        corrections=_joint.shifts_of(factors) if st.fy_steps else None,
        blends=_joint.blends_of(factors) if st.fy_steps else None,
        few_units=_joint.few_units_of(factors) if st.fy_steps else None,
    )


def _roles(catalog) -> dict[str, str | None]:
    return {role: catalog.role(role) for role in ROLES}


def _nothing(catalog, quarter, st, options, lang) -> ForecastResult:
    """The result of a catalog without profit or sales role and no forecast.metrics."""
    names = {}
    metric_names = {m: catalog.metrics[m].name(lang) for m in catalog.metrics}
    return ForecastResult(
        forecast=empty_forecast(),
        history=pd.DataFrame(
            {
                "entity_id": pd.Series(dtype="str"),
                "metric_id": pd.Series(dtype="str"),
                "period": pd.PeriodIndex([], freq="M"),
                "actual": pd.Series(dtype=float),
                "budget": pd.Series(dtype=float),
            }
        ),
        deviation=DeviationResult(
            empty_deviation(),
            names,
            metric_names,
            lang,
            money_unit=catalog.money_unit,
            empty_note="forecast.text.nothing_short",
        ),
        quarter=str(pd.Period(quarter, "Q")),
        year=st.year,
        names=names,
        metric_names=metric_names,
        language=lang,
        options=options,
        roles=_roles(catalog),
    )


def _leads(wide, drivers, targets, ids, members, st, options, n_periods) -> dict:
    """metric -> (recent, vs budget, vs last year) of its leading driver, per entity."""
    out, by_driver = {}, {}
    n_units = len(ids) - len(members)
    for metric, (drv, _lag) in drivers.items():
        if drv not in wide:
            continue
        if drv not in by_driver:
            unit_rows = wide[drv].to_numpy().reshape(n_units, -1)
            drv_actual = np.vstack([unit_rows, _fp._sum_rows(_agg(members, ids), unit_rows)])
            dbud, _ = _dev.monthly_budgets(targets, ids, members, [drv], st.year)
            lo = st.cutoff.month - options.leading_months
            bsum = (
                np.nansum(dbud[drv][:, lo : st.cutoff.month], axis=1)
                if lo >= 0
                else np.full(len(ids), np.nan)
            )
            bsum[bsum == 0] = np.nan
            by_driver[drv] = _dev.leading(drv_actual, bsum, n_periods - 1, options.leading_months)
        out[metric] = by_driver[drv]
    return out


def _agg(members, ids):
    n_units = len(ids) - len(members)
    agg = np.zeros((len(members), n_units))
    for j, idx in enumerate(members.values()):
        agg[j, idx] = 1.0
    return agg


def _history(actual, budgets, ids, periods, st) -> pd.DataFrame:
    """Actuals of the fiscal year and the year before, and the monthly budget of the fiscal
    year over all its months: the months after the review quarter carry the budget with no
    actual, so the charts show forecast against budget for the rest of the year."""
    keep = np.array([p.year >= st.year - 1 for p in periods])
    last = periods[-1] if len(periods) else st.cutoff
    rest = pd.period_range(last + 1, pd.Period(f"{st.year}-12", "M"), freq="M")
    per = periods[keep].append(rest)
    cur = np.array([p.year == st.year for p in per])
    months = np.array([p.month - 1 for p in per])
    frames = []
    for metric, act in actual.items():
        a = np.hstack([act[:, keep], np.full((act.shape[0], len(rest)), np.nan)])
        bud = np.full(a.shape, np.nan)
        if metric in budgets:
            bud[:, cur] = budgets[metric][:, months[cur]]
        frames.append(
            pd.DataFrame(
                {
                    "entity_id": np.repeat(np.array(ids, dtype=object), len(per)),
                    "metric_id": metric,
                    "period": pd.PeriodIndex(np.tile(per, len(ids))),
                    "actual": a.reshape(-1),
                    "budget": bud.reshape(-1),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return out[out["actual"].notna() | out["budget"].notna()].reset_index(drop=True)


def _material(dev: pd.DataFrame, entities: pd.DataFrame, catalog) -> np.ndarray:
    """Severities of ``dev`` with ``high`` kept only for a money shortfall material to the
    group (:data:`perflink.common.MATERIALITY` of the group's full-year budget of the
    profit metric), as the KPI decomposition rates a missed target; else ``medium``."""
    sev = dev["severity"].to_numpy(dtype=object).copy()
    roots = entities.loc[entities["parent_id"].isna(), "entity_id"]
    profit = catalog.role("profit")
    if roots.empty or profit is None or catalog.in_money_unit(profit) is None:
        return sev
    row = dev[(dev["entity_id"] == roots.iloc[0]) & (dev["metric_id"] == profit)]
    if row.empty or not np.isfinite(row["budget"].iloc[0]):
        return sev
    base = abs(float(row["budget"].iloc[0])) * catalog.in_money_unit(profit)
    stake = dev["at_stake"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        material = np.nan_to_num(stake, nan=0.0) >= MATERIALITY * base
    sev[(sev == "high") & ~material] = "medium"
    return sev
