"""``backtest_panel``: rolling-origin accuracy of the panel method (not API; re-exported)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink import labels
from perflink.common import require_columns
from perflink.execution import Executor, expect, progress
from perflink.forecast import _deviation as _dev
from perflink.forecast import _models as _fm
from perflink.forecast import _panel as _fp
from perflink.forecast._results import BacktestResult
from perflink.options import ExecutorOptions, ForecastOptions

__all__ = ["backtest_panel"]


@progress("forecast backtest", unit="step")  # a series forecast or a unit simulated once
@_fp.quiet
def backtest_panel(
    facts: pd.DataFrame,
    entities: pd.DataFrame,
    catalog,
    *,
    quarter: str | pd.Period,
    options: ForecastOptions | None = None,
    language: str | None = None,
    executor: Executor | ExecutorOptions | int | None = None,
    n_jobs: int | None = None,
    targets: pd.DataFrame | None = None,
) -> BacktestResult:
    """Rolling-origin backtest of the panel method: every metric, the profit metric too, at
    unit, subsidiary and group level.

    Full year (what the review shows): from the review's month one year earlier and the two
    months before it, the method projects that year's full year (its level correction and
    spread factors measured only on months known at that origin, as the review does) and
    the projection is
    compared with the realised year: coverage of the 80% and 95% intervals per metric and
    level, the weighted absolute error against a seasonal naive projection (year to date
    plus the same months of the year before), and, with ``targets``, the calibration of the
    probability of meeting budget (rows binned by the probability shown: how many met).
    Monthly (unit series of the flows): from each of the last ``options.backtest_origins``
    months that leave ``options.backtest_horizon`` actuals, sMAPE, MASE and interval coverage
    against seasonal naive. Groups with more than ``options.backtest_max_units`` units use a
    fixed sample of that many units, stratified by business line and centre type and spread
    evenly over each stratum (``units_used`` / ``units_total``; parents are then the sums of
    the sampled units).

    Parameters
    ----------
    facts, entities, catalog, quarter, options, language, executor, n_jobs
        As in :func:`perflink.forecast.forecast_panel`.
    targets : pandas.DataFrame, optional
        Targets table as in :func:`perflink.forecast.forecast_panel`; without it the
        calibration of the probability of meeting budget is not computed.

    Returns
    -------
    BacktestResult
        ``.to_frame()`` is the ``forecast_backtest`` table (one row per metric and level);
        ``.calibration`` the probability calibration.

    Raises
    ------
    InputError
        Tables lacking columns, or no facts of the metrics.
    ParamsError
        Bad quarter, options out of range, or a bad executor.
    RunError
        The Dask cluster has no workers, lacks perflink, or lost a worker.

    Notes
    -----
    Unset ``metrics`` come from the catalog as in the forecast; with none (no profit or
    sales role, no ``forecast.metrics``) the table is empty and its page says so.

    A backtest still running after :data:`perflink.execution.PROGRESS_DELAY` seconds shows
    one progress bar ("forecast backtest") for all of its forecasts and simulations.
    """
    options = (options or ForecastOptions()).for_catalog(catalog)
    lang = labels._check_lang(language)
    _fp.check_options(options)
    st = _fp.setup(quarter, options)
    metric_names = {m: catalog.metrics[m].name(lang) for m in catalog.metrics}
    if not options.metrics:  # nothing to project: an empty table, the page says why
        return BacktestResult(_empty_table(), lang, metric_names=metric_names)
    _fp.check_inputs(facts, entities, catalog, options)
    if targets is not None:
        require_columns(
            targets, ("entity_id", "year", "period", "metric_id", "target", "kind"),
            table="forecast backtest: targets",
        )  # fmt: skip
    metrics = list(options.metrics)
    drivers = (
        _fp.driver_map(catalog, metrics, set(facts["metric_id"].unique()))
        if options.use_drivers
        else {}
    )
    cols = metrics + sorted({d for d, _ in drivers.values()})
    wide = _fp.unit_panel(facts, st.cutoff, cols)
    units_total = wide.index.get_level_values("entity_id").nunique()
    wide = _fp.sample_units(wide, entities, options.backtest_max_units)
    units_used = wide.index.get_level_values("entity_id").nunique()
    ex = _fp.executor_of(executor, n_jobs)
    periods = wide.index.get_level_values("period").unique()
    horizon = options.backtest_horizon
    t_all = len(periods)
    cuts = [t_all - horizon - j for j in range(options.backtest_origins)]
    cuts = [c for c in cuts if c >= 13]
    expect(_steps(wide, options, st, [periods[c] for c in cuts]))
    z = {lv: _fm.interval_z(lv) for lv in (80, 95)}
    acc = {m: {k: [] for k in ("smape", "mase", "smape_sn", "mase_sn", "in80", "in95")}
           for m in metrics}  # fmt: skip
    n_series = dict.fromkeys(metrics, 0)
    for cut in cuts:
        # every metric from one forecast per cut: a metric's series are forecast alone
        sub = wide[wide.index.get_level_values("period") < periods[cut]]
        fc = _fp.forecast_arrays(sub, entities, catalog, options, horizon, ex)
        n_u = len(sub.index.get_level_values("entity_id").unique())
        for metric in metrics:
            hist = fc["actual"][metric][:n_u]
            actual = wide[metric].to_numpy().reshape(n_u, t_all)[:, cut : cut + horizon]
            mean, sd = fc["mean"][metric][:n_u], fc["sd"][metric][:n_u]
            ok = np.isfinite(actual).all(axis=1) & np.isfinite(mean).all(axis=1)
            ok &= np.isfinite(hist[:, -13:]).all(axis=1)
            snaive = hist[:, -12:][:, np.arange(horizon) % 12]
            scale = np.nanmean(np.abs(hist[:, 12:] - hist[:, :-12]), axis=1)
            ok &= scale > 0
            n_series[metric] = max(n_series[metric], int(ok.sum()))
            a, f, s = actual[ok], mean[ok], snaive[ok]
            got = acc[metric]
            got["smape"].append(_smape(a, f))
            got["smape_sn"].append(_smape(a, s))
            got["mase"].append(np.mean(np.abs(a - f), axis=1) / scale[ok])
            got["mase_sn"].append(np.mean(np.abs(a - s), axis=1) / scale[ok])
            for lv in (80, 95):
                lo, hi = f - z[lv] * sd[ok], f + z[lv] * sd[ok]
                got[f"in{lv}"].append(((a >= lo) & (a <= hi)).ravel())
        del fc
    monthly = {}
    for metric in metrics:
        cat = {k: np.concatenate(v) if v else np.array([np.nan]) for k, v in acc[metric].items()}
        monthly[metric] = {
            "n_series": n_series[metric],
            "n_origins": len(cuts),
            "horizon": horizon,
            "smape": float(np.nanmean(cat["smape"])),
            "mase": float(np.nanmean(cat["mase"])),
            "smape_snaive": float(np.nanmean(cat["smape_sn"])),
            "mase_snaive": float(np.nanmean(cat["mase_sn"])),
            "coverage_80": float(np.nanmean(cat["in80"])),
            "coverage_95": float(np.nanmean(cat["in95"])),
        }
    full, calibration = _full_year(wide, entities, catalog, options, st, ex, targets)
    rows = []
    for r in full:
        m = monthly.get(r["metric_id"]) if r["level"] == "unit" else None
        rows.append(
            {
                "metric_id": r["metric_id"],
                "level": r["level"],
                "units_used": units_used,
                "units_total": units_total,
                **{k: r[k] for k in _FY_COLUMNS},
                **{k: (m or {}).get(k, np.nan) for k in _MONTH_COLUMNS},
            }
        )
    table = pd.DataFrame(rows, columns=list(_COLUMNS)) if rows else _empty_table()
    for c in ("metric_id", "level", "fy_origins"):
        table[c] = table[c].astype("str")
    return BacktestResult(table, lang, metric_names=metric_names, calibration=calibration)


_FY_COLUMNS = ("n_rows", "fy_origins", "fy_coverage_80", "fy_coverage_95", "fy_wape",
               "fy_wape_snaive")  # fmt: skip
_MONTH_COLUMNS = ("n_series", "n_origins", "horizon", "smape", "mase", "smape_snaive",
                  "mase_snaive", "coverage_80", "coverage_95")  # fmt: skip
#: Levels of the full-year backtest, from the entities' ``kind`` (other kinds are units).
LEVEL_OF_KIND = {"group": "group", "subsidiary": "subsidiary"}
LEVEL_ORDER = ("unit", "subsidiary", "group")
#: Bins of the probability of meeting budget in the calibration table.
P_BINS = (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0)


def _steps(wide, options, st, cut_months) -> int:
    """Units of work of the backtest: its progress bar's total (see :func:`perflink.execution.advance`).

    Monthly part: every unit series forecast from each cut (``cut_months``: the first month
    after it). Full year: every unit series forecast once per distinct origin and set of
    models (the check's origins choose their own; the calibration runs of each take its),
    every unit simulated per calibration pass of each check origin and in its final paths.
    """
    metrics = len(options.metrics)
    monthly = sum(_fp.units_upto(wide, m, before=True) for m in cut_months)
    origins, calibration, years = _origins(wide, options, st)
    # the cache keys of _full_year: (origin, steps, whose models)
    distinct = {(o, None, None) for o in origins}.union(
        *({(c, _fp.M - o.month, o) for c in cals} for o, cals in calibration.items()),
        *({(y, None, o) for y in ys} for o, ys in years.items()),
    )
    forecasts = sum(_fp.units_upto(wide, o) for o, _steps, _of in distinct)
    passes, group = _fp.simulation_passes(options), _fp.group_passes(options)
    simulated = sum(
        passes * sum(_fp.units_upto(wide, c) for c in calibration[o])
        + group * sum(_fp.units_upto(wide, y) for y in years[o])
        + _fp.units_upto(wide, o)
        for o in origins
    )
    return metrics * monthly + metrics * forecasts + simulated


def _origins(wide, options, st) -> tuple[list, dict, dict]:
    """The full-year check's origins (the review month one year earlier and its neighbours),
    the calibration windows of each and the full-year origins a year before each (its group
    factors' further runs, as the review's)."""
    periods = wide.index.get_level_values("period").unique()
    n_u = wide.index.get_level_values("entity_id").nunique()
    origins = _fp.origins_for(periods, st.cutoff, n_u, options)
    windows = {o: _fp.windows_for(periods, o, n_u, options) for o in origins}
    return origins, windows, {o: _fp.origins_for(periods, o, n_u, options) for o in origins}


def _full_year(wide, entities, catalog, options, st, ex, targets):
    """Rows per metric x level and the calibration table of the full-year backtest."""
    origins, calibration, years = _origins(wide, options, st)
    # each origin's projection is made once per set of models: the check's own forecasts
    # choose theirs, and the calibration runs of each take that origin's (as the review's
    # windows take the review's); an origin of the check's is also a group run of later ones
    cache: dict = {}

    def runs_of(months, steps=None, of=None):
        chosen = None if of is None else models[of]
        todo = [o for o in months if (o, steps, of) not in cache]
        for run in _fp.past_runs(
            wide, entities, catalog, options, todo, ex, steps=steps, choices=chosen
        ):
            cache[(run[2], steps, of)] = run
        return [cache[(o, steps, of)] for o in months]

    runs = runs_of(origins)
    models = {origin: _fp.choices_of(fc) for fc, _learner, origin in runs}
    pm = options.profit_metric
    units = list(wide.index.get_level_values("entity_id").unique())
    members = _fp.membership(entities, units)
    records, cal = [], []
    for fc, learner, origin in runs:
        # out of sample: the factors the review would have had at that origin
        cal_runs = runs_of(calibration[origin], _fp.M - origin.month, origin)
        group_runs = runs_of(years[origin], None, origin)
        factors = _fp.calibrate(cal_runs, catalog, options, group_runs=group_runs)
        fc = _fp.correct_means(fc, factors, catalog, options)
        paths = _fp.draw_paths(fc, catalog, options, learner.steps, factors=factors)
        level = np.array([LEVEL_OF_KIND.get(k, "unit") for k in fc["kind"]], dtype=object)
        budgets = {}
        if targets is not None:
            budgets, _basis = _dev.monthly_budgets(
                targets, fc["entity_ids"], members, list(options.metrics), origin.year
            )
            if pm:
                budgets[pm] = _fp.profit_budget(catalog, pm, budgets, fc)
        for metric, p in paths.items():
            fy = learner.ytd[metric][:, None] + np.sum(p[:, :, : learner.steps], axis=2)
            real = learner.realised[metric]
            ok = np.isfinite(real) & np.isfinite(fy).all(axis=1)
            q = _fp.nanquantile(fy, [0.025, 0.1, 0.9, 0.975], axis=1)
            records.append(
                pd.DataFrame(
                    {
                        "metric_id": metric,
                        "level": level,
                        "origin": str(origin),
                        "real": real,
                        "proj": np.nanmean(fy, axis=1),
                        "naive": learner.naive[metric],
                        "in80": (real >= q[1]) & (real <= q[2]),
                        "in95": (real >= q[0]) & (real <= q[3]),
                    }
                )[ok]
            )
            if metric in budgets:
                bud = np.nansum(budgets[metric], axis=1)
                bud[~np.isfinite(budgets[metric]).all(axis=1)] = np.nan
                higher = catalog.metrics[metric].direction == "higher"
                meet = (fy >= bud[:, None]) if higher else (fy <= bud[:, None])
                met = (real >= bud) if higher else (real <= bud)
                good = ok & np.isfinite(bud)
                cal.append(pd.DataFrame({"p": meet.mean(axis=1)[good], "met": met[good]}))
    return _summarise(records, origins), _calibration(cal)


def _summarise(records, origins) -> list[dict]:
    if not records:
        return []
    df = pd.concat(records, ignore_index=True)
    out = []
    for (metric, level), g in df.groupby(["metric_id", "level"], sort=False):
        real = g["real"].to_numpy()
        denom = np.sum(np.abs(real))
        naive = g["naive"].to_numpy()
        has_naive = np.isfinite(naive)
        out.append(
            {
                "metric_id": metric,
                "level": level,
                "n_rows": len(g),
                "fy_origins": ", ".join(str(o) for o in origins),
                "fy_coverage_80": float(g["in80"].mean()),
                "fy_coverage_95": float(g["in95"].mean()),
                "fy_wape": float(np.sum(np.abs(g["proj"] - real)) / denom) if denom else np.nan,
                "fy_wape_snaive": (
                    float(
                        np.sum(np.abs(naive[has_naive] - real[has_naive]))
                        / np.sum(np.abs(real[has_naive]))
                    )
                    if has_naive.any() and np.sum(np.abs(real[has_naive]))
                    else np.nan
                ),
            }
        )
    order = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    metrics = list(dict.fromkeys(r["metric_id"] for r in out))
    return sorted(out, key=lambda r: (metrics.index(r["metric_id"]), order[r["level"]]))


def _calibration(parts) -> pd.DataFrame:
    """Rows binned by the probability of meeting budget shown: how many, the mean
    probability shown, and the share that met budget."""
    cols = {"p_from": float, "p_to": float, "n_rows": int, "p_shown": float, "share_met": float}
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})
    df = pd.concat(parts, ignore_index=True)
    edges = np.array(P_BINS)
    idx = np.clip(np.searchsorted(edges, df["p"].to_numpy(), side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        g = df[idx == b]
        rows.append(
            {
                "p_from": edges[b],
                "p_to": edges[b + 1],
                "n_rows": len(g),
                "p_shown": float(g["p"].mean()) if len(g) else np.nan,
                "share_met": float(g["met"].mean()) if len(g) else np.nan,
            }
        )
    return pd.DataFrame(rows).astype(cols)


_COLUMNS = ("metric_id", "level", "units_used", "units_total", *_FY_COLUMNS, *_MONTH_COLUMNS)


def _empty_table() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=float) for c in _COLUMNS})
    for c in ("metric_id", "level", "fy_origins"):
        df[c] = df[c].astype("str")
    return df


def _smape(a: np.ndarray, f: np.ndarray) -> np.ndarray:
    denom = np.abs(a) + np.abs(f)
    terms = np.divide(200.0 * np.abs(a - f), denom, out=np.zeros_like(a), where=denom > 0)
    return np.mean(terms, axis=1)
