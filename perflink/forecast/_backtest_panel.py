"""``backtest_panel``: rolling-origin accuracy of the panel method (not API; re-exported)."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from perflink import labels
from perflink.execution import Executor
from perflink.forecast import _models as _fm
from perflink.forecast import _panel as _fp
from perflink.forecast._results import BacktestResult
from perflink.options import ExecutorOptions, ForecastOptions

__all__ = ["backtest_panel"]


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
) -> BacktestResult:
    """Rolling-origin backtest of the panel method on every unit series, per metric.

    From each of the last ``options.backtest_origins`` months that leave
    ``options.backtest_horizon`` actuals before the end of the review quarter, the
    history up to that month (seasonal indices re-estimated from it) is forecast and
    compared with the actuals and with seasonal naive. Groups with more than
    ``options.backtest_max_units`` units use a fixed stratified sample of that many units
    (columns ``units_used`` and ``units_total`` say so). The full-year check forecasts
    from the same month one year earlier and projects that year, as the review does.

    Parameters
    ----------
    facts, entities, catalog, quarter, options, language, executor, n_jobs
        As in :func:`perflink.forecast.forecast_panel` (targets are not needed).

    Returns
    -------
    BacktestResult
        ``.to_frame()`` is the ``forecast_backtest`` table (one row per metric).

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
    """
    options = (options or ForecastOptions()).for_catalog(catalog)
    lang = labels._check_lang(language)
    _fp.check_options(options)
    st = _fp.setup(quarter, options)
    metric_names = {m: catalog.metrics[m].name(lang) for m in catalog.metrics}
    if not options.metrics:  # nothing to project: an empty table, the page says why
        return BacktestResult(_empty_table(), lang, metric_names=metric_names)
    _fp.check_inputs(facts, entities, catalog, options)
    metrics = list(options.metrics)
    drivers = (
        _fp.driver_map(catalog, metrics, set(facts["metric_id"].unique()))
        if options.use_drivers
        else {}
    )
    cols = metrics + sorted({d for d, _ in drivers.values()})
    wide = _fp.unit_panel(facts, st.cutoff, cols)
    units_total = wide.index.get_level_values("entity_id").nunique()
    wide = _sample_units(wide, entities, options.backtest_max_units)
    units_used = wide.index.get_level_values("entity_id").nunique()
    ex = _fp.executor_of(executor, n_jobs)
    periods = wide.index.get_level_values("period").unique()
    horizon = options.backtest_horizon
    t_all = len(periods)
    cuts = [t_all - horizon - j for j in range(options.backtest_origins)]
    cuts = [c for c in cuts if c >= 13]
    z = {lv: _fm.interval_z(lv) for lv in (80, 95)}
    rows = []
    for metric in metrics:
        acc = {k: [] for k in ("smape", "mase", "smape_sn", "mase_sn", "in80", "in95")}
        n_series = 0
        for cut in cuts:
            sub = wide[wide.index.get_level_values("period") < periods[cut]]
            fc = _fp.forecast_arrays(sub, entities, catalog, _one(options, metric), horizon, ex)
            n_u = len(sub.index.get_level_values("entity_id").unique())
            hist = fc["actual"][metric][:n_u]
            actual = wide[metric].to_numpy().reshape(n_u, t_all)[:, cut : cut + horizon]
            mean, sd = fc["mean"][metric][:n_u], fc["sd"][metric][:n_u]
            ok = np.isfinite(actual).all(axis=1) & np.isfinite(mean).all(axis=1)
            ok &= np.isfinite(hist[:, -13:]).all(axis=1)
            snaive = hist[:, -12:][:, np.arange(horizon) % 12]
            scale = np.nanmean(np.abs(hist[:, 12:] - hist[:, :-12]), axis=1)
            ok &= scale > 0
            n_series = max(n_series, int(ok.sum()))
            a, f, s = actual[ok], mean[ok], snaive[ok]
            acc["smape"].append(_smape(a, f))
            acc["smape_sn"].append(_smape(a, s))
            acc["mase"].append(np.mean(np.abs(a - f), axis=1) / scale[ok])
            acc["mase_sn"].append(np.mean(np.abs(a - s), axis=1) / scale[ok])
            for lv in (80, 95):
                lo, hi = f - z[lv] * sd[ok], f + z[lv] * sd[ok]
                acc[f"in{lv}"].append(((a >= lo) & (a <= hi)).ravel())
        fy_err, fy_cov, fy_origin = _full_year(wide, entities, catalog, options, metric, st, ex)
        cat = {k: np.concatenate(v) if v else np.array([np.nan]) for k, v in acc.items()}
        rows.append(
            {
                "metric_id": metric,
                "n_series": n_series,
                "units_used": units_used,
                "units_total": units_total,
                "n_origins": len(cuts),
                "horizon": horizon,
                "smape": float(np.nanmean(cat["smape"])),
                "mase": float(np.nanmean(cat["mase"])),
                "smape_snaive": float(np.nanmean(cat["smape_sn"])),
                "mase_snaive": float(np.nanmean(cat["mase_sn"])),
                "coverage_80": float(np.nanmean(cat["in80"])),
                "coverage_95": float(np.nanmean(cat["in95"])),
                "fy_origin": fy_origin,
                "fy_abs_error_pct": fy_err,
                "fy_coverage_80": fy_cov,
            }
        )
    table = pd.DataFrame(rows)
    table["metric_id"] = table["metric_id"].astype("str")
    return BacktestResult(table, lang, metric_names=metric_names)


_COLUMNS = (
    "metric_id", "n_series", "units_used", "units_total", "n_origins", "horizon", "smape",
    "mase", "smape_snaive", "mase_snaive", "coverage_80", "coverage_95", "fy_origin",
    "fy_abs_error_pct", "fy_coverage_80",
)  # fmt: skip


def _empty_table() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=float) for c in _COLUMNS})
    for c in ("metric_id", "fy_origin"):
        df[c] = df[c].astype("str")
    return df


def _sample_units(wide: pd.DataFrame, entities: pd.DataFrame, max_units: int) -> pd.DataFrame:
    """Rows of at most ``max_units`` units, stratified by business line and centre type.

    Accuracy on thousands of units is estimated from a sample, which costs a fixed time
    instead of six more panel forecasts. Each stratum keeps its share of the units (at least
    one); within it the units are picked by a hash of their id, so the same units are used
    in every run and every quarter while they exist.
    """
    units = list(wide.index.get_level_values("entity_id").unique())
    if not max_units or len(units) <= max_units:
        return wide
    strata = _fp._groups(entities, units)
    keep: list[str] = []
    for key in sorted(set(strata)):
        members = sorted(
            (u for u, g in zip(units, strata, strict=True) if g == key),
            key=lambda u: zlib.crc32(u.encode("utf-8")),
        )
        keep += members[: max(1, round(len(members) * max_units / len(units)))]
    chosen = wide.index.get_level_values("entity_id").isin(keep)
    return wide[chosen]


def _one(options: ForecastOptions, metric: str) -> ForecastOptions:
    return options.model_copy(update={"metrics": (metric,)})


def _smape(a: np.ndarray, f: np.ndarray) -> np.ndarray:
    denom = np.abs(a) + np.abs(f)
    terms = np.divide(200.0 * np.abs(a - f), denom, out=np.zeros_like(a), where=denom > 0)
    return np.mean(terms, axis=1)


def _full_year(wide, entities, catalog, options, metric, st, ex):
    """Project last year's full year from last year's cutoff month; (error, coverage, origin)."""
    periods = wide.index.get_level_values("period").unique()
    origin = st.cutoff - 12
    if (
        st.fy_steps == 0
        or origin not in periods
        or periods[0] > pd.Period(f"{origin.year}-01", "M")
    ):
        return np.nan, np.nan, str(origin)
    per = wide.index.get_level_values("period")
    sub = wide[per <= origin]
    opts = _one(options, metric)
    fc = _fp.forecast_arrays(sub, entities, catalog, opts, st.fy_steps, ex)
    n_u = len(sub.index.get_level_values("entity_id").unique())
    for key in ("mean", "sd", "psi", "nonneg"):
        fc[key] = {metric: fc[key][metric][:n_u]}
    fc["entity_ids"] = fc["entity_ids"][:n_u]
    paths = _fp.draw_paths(fc, opts, st.fy_steps)[metric]
    values = wide[metric].to_numpy().reshape(n_u, len(periods))
    year = np.array([p.year == origin.year for p in periods])
    ytd = np.nansum(values[:, year & (periods <= origin)], axis=1)
    actual = np.nansum(values[:, year], axis=1)
    full = np.isfinite(values[:, year]).all(axis=1) & (actual != 0)
    fy = ytd[:, None] + paths.sum(axis=2)
    lo, hi = np.quantile(fy, [0.1, 0.9], axis=1)
    err = np.abs(fy.mean(axis=1) / actual - 1)
    inside = (actual >= lo) & (actual <= hi)
    if not full.any():
        return np.nan, np.nan, str(origin)
    return float(np.mean(err[full])), float(np.mean(inside[full])), str(origin)
