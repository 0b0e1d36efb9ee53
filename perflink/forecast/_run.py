"""``forecast_panel`` (re-exported by :mod:`perflink.forecast`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink import labels
from perflink.common import SEVERITY_RANK
from perflink.execution import Executor
from perflink.forecast import _deviation as _dev
from perflink.forecast import _panel as _fp
from perflink.forecast._results import DeviationResult, ForecastResult
from perflink.options import ExecutorOptions, ForecastOptions


def _names(entities, catalog, lang):
    col = f"name_{lang}"
    names = dict(zip(entities["entity_id"], entities[col], strict=True)) if col in entities else {}
    return names, {m: catalog.metrics[m].name(lang) for m in catalog.metrics}


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
        Metric catalog: aggregation of the metrics, the profit formula, driver mappings.
    quarter : str or pandas.Period
        Review quarter (``"2026Q3"``): the last actual month is its last month.
    options : ForecastOptions, optional
        The ``forecast:`` block of the params (defaults suit the sample).
    language : {"zh", "en"}, optional
        Language of names and messages (default: the current report language).
    executor : Executor, ExecutorOptions or int, optional
        Where the per-series forecasts run: ``review.executor`` (the params'
        ``executor:`` block), an int = local worker processes, default local processes
        (cores, at most 8); see :mod:`perflink.execution`. The figures do not depend on it.
    n_jobs : int, optional
        Local worker processes (the same as ``executor=n_jobs``; give one of the two).

    Returns
    -------
    ForecastResult
        ``.to_frame()`` is the ``forecast`` table; ``.deviation`` the findings table
        ``forecast_deviation``. Money in 万元.

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
    options = options or ForecastOptions()
    lang = labels._check_lang(language)
    _fp.check_options(options)
    st = _fp.setup(quarter, options)
    _fp.check_inputs(facts, entities, catalog, options)
    metrics = list(options.metrics)
    present = set(facts["metric_id"].unique())
    drivers = _fp.driver_map(catalog, metrics, present) if options.use_drivers else {}
    lead_drv = drivers.get("revenue", (None, 0))[0]
    cols = metrics + sorted({d for d, _ in drivers.values()})
    wide = _fp.unit_panel(facts, st.cutoff, cols)
    ex = _fp.executor_of(executor, n_jobs)
    fc = _fp.forecast_arrays(wide, entities, catalog, options, st.horizon, ex)
    paths = _fp.draw_paths(fc, options, st.horizon)
    ids = fc["entity_ids"]
    periods = fc["periods"]
    pm = options.profit_metric
    profit = None
    if pm:
        formula = catalog.formulas[pm]
        profit = formula.evaluate({m: paths[m] for m in formula.inputs})
        profit_actual = formula.evaluate({m: fc["actual"][m] for m in formula.inputs})
    table = _fp.monthly_table(fc, paths, profit, st, options)

    # full-year projection per entity and metric
    in_year = np.array([p.year == st.year for p in periods])
    members = _fp.membership(entities, list(wide.index.get_level_values("entity_id").unique()))
    budgets, basis = _dev.monthly_budgets(targets, ids, members, metrics, st.year)
    assess = _dev.assessment_targets(
        targets, ids, members, [*metrics, pm] if pm else metrics, st.year
    )
    flows = {m: (fc["actual"][m], paths[m]) for m in metrics}
    if pm:
        flows[pm] = (profit_actual, profit)
        budgets[pm] = formula.evaluate({m: budgets[m] for m in formula.inputs})
        basis[pm] = basis[metrics[0]]
    lead = None
    if lead_drv is not None and lead_drv in wide:
        drv_actual = np.vstack(
            [
                wide[lead_drv].to_numpy().reshape(len(ids) - len(members), -1),
                _fp._sum_rows(
                    _agg(members, ids),
                    wide[lead_drv].to_numpy().reshape(len(ids) - len(members), -1),
                ),
            ]
        )
        dbud, _ = _dev.monthly_budgets(targets, ids, members, [lead_drv], st.year)
        lo = st.cutoff.month - options.leading_months
        bsum = (
            np.nansum(dbud[lead_drv][:, lo : st.cutoff.month], axis=1)
            if lo >= 0
            else np.full(len(ids), np.nan)
        )
        bsum[bsum == 0] = np.nan
        lead = _dev.leading(drv_actual, bsum, len(periods) - 1, options.leading_months)
    rows = []
    for metric, (act, pth) in flows.items():
        spec = catalog.metrics[metric]
        higher = spec.direction == "higher"
        ytd = np.where(
            np.isfinite(act[:, in_year]).any(axis=1), np.nansum(act[:, in_year], axis=1), np.nan
        )
        fy = ytd[:, None] + np.sum(pth[:, :, : st.fy_steps], axis=2)
        q = (
            _fp.nanquantile(fy, [0.025, 0.1, 0.5, 0.9, 0.975], axis=1)
            if fy.size
            else np.zeros((5, 0))
        )
        proj = np.nanmean(fy, axis=1)
        bud = np.nansum(budgets[metric], axis=1)
        bud[~np.isfinite(budgets[metric]).all(axis=1)] = np.nan
        meet = (fy >= bud[:, None]) if higher else (fy <= bud[:, None])
        p_meet = np.where(np.isfinite(bud), meet.mean(axis=1), np.nan)
        short = np.maximum(bud[:, None] - fy, 0) if higher else np.maximum(fy - bud[:, None], 0)
        at_stake = np.where(np.isfinite(bud), np.nanmean(short, axis=1), np.nan)
        ass = assess.get(metric, np.full(len(ids), np.nan))
        meet_a = (fy >= ass[:, None]) if higher else (fy <= ass[:, None])
        dev = proj - bud
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
                "lead_recent": lead[0] if lead is not None and metric == "revenue" else np.nan,
                "lead_vs_budget": lead[1] if lead is not None and metric == "revenue" else np.nan,
                "lead_vs_last_year": lead[2]
                if lead is not None and metric == "revenue"
                else np.nan,
                "kind": fc["kind"],
                "direction": spec.direction,
            }
        )
        rows.append(frame[np.isfinite(proj)])
    dev_df = pd.concat(rows, ignore_index=True)
    sign = np.where(dev_df["direction"] == "higher", -1.0, 1.0)
    adverse = (sign * dev_df["deviation_pct"]).fillna(-np.inf).to_numpy()
    p_miss = (1 - dev_df["p_meet_budget"]).fillna(0).to_numpy()
    dev_df["severity"] = _dev.classify(adverse, p_miss, options)
    names, metric_names = _names(entities, catalog, lang)
    dev_df["message"] = _dev.messages(dev_df, names, metric_names, lang)
    dev_df["_rank"] = dev_df["severity"].map(SEVERITY_RANK)
    dev_df = dev_df.sort_values(["_rank", "at_stake"], ascending=[True, False], kind="stable")
    dev_df = dev_df.drop(columns=["_rank", "direction"]).reset_index(drop=True)
    for c in ("entity_id", "metric_id", "period", "severity", "message", "budget_basis", "kind"):
        dev_df[c] = dev_df[c].astype("str")

    history = _history(fc, profit_actual if pm else None, pm, budgets, ids, periods, st)
    return ForecastResult(
        forecast=table,
        history=history,
        deviation=DeviationResult(dev_df, names, metric_names, lang),
        quarter=str(pd.Period(quarter, "Q")),
        year=st.year,
        names=names,
        metric_names=metric_names,
        language=lang,
    )


def _agg(members, ids):
    n_units = len(ids) - len(members)
    agg = np.zeros((len(members), n_units))
    for j, idx in enumerate(members.values()):
        agg[j, idx] = 1.0
    return agg


def _history(fc, profit_actual, pm, budgets, ids, periods, st) -> pd.DataFrame:
    keep = np.array([p.year >= st.year - 1 for p in periods])
    per = periods[keep]
    frames = []
    series = dict(fc["actual"])
    if pm:
        series[pm] = profit_actual
    for metric, act in series.items():
        a = act[:, keep]
        bud = np.full(a.shape, np.nan)
        if metric in budgets:
            cur = np.array([p.year == st.year for p in per])
            months = np.array([p.month - 1 for p in per])
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
