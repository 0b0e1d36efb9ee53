"""Panel forecasting: every unit, subsidiary and the group, rest of the fiscal year (not API).

Public entry points are re-exported by :mod:`perflink.forecast`. Steps:

1. monthly unit series up to the end of the review quarter (``panel.to_wide``);
2. seasonal indices pooled per (business line, centre type, metric);
3. per-series forecasts in blocks of whole series, run by the review's executor
   (:mod:`perflink.execution`: local processes or a Dask cluster; the blocks do not change
   the figures) with :func:`perflink.forecast._fit.forecast_block`;
4. subsidiaries and group: point forecast = sum of their units' forecasts (coherent);
5. joint paths (:mod:`perflink.forecast._joint`): every future month of a path takes the
   innovations of one historical month for every unit and metric at once, so costs move
   with sales and units with each other as they did; the profit metric per path by the
   unit's catalog formula (:func:`derive`); a parent's paths are the sums of its units'
   (a profit declared ``aggregation: formula`` is recomputed from the parent's flows);
6. calibration (:func:`calibrate`): forecasts of the same length made from recent months
   (:func:`calibration_windows`, every month known at the cutoff) against what followed
   set a level correction per flow and, per metric and level, the factors of the paths'
   spread at the 80% and 95% edges (out of sample).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perflink import panel
from perflink.common import parse_quarter, require_columns
from perflink.errors import InputError, ParamsError
from perflink.execution import Executor, LocalExecutor, advance, get_executor
from perflink.forecast import _joint
from perflink.forecast._fit import forecast_block
from perflink.forecast._season import pooled_indices

M = 12
LEVELS = (80, 95)
#: Calibration windows per year, and full-year check origins: the latest one and this many
#: months before it (one window is a small sample: its months share one history). Panels of
#: more units than ``backtest_max_units`` use the latest only (their levels have rows
#: enough, and each origin is one more panel forecast): see :func:`origins_for`.
CALIBRATION_NEIGHBOURS = 2


def _neighbours(n_units: int, options) -> int:
    small = not options.backtest_max_units or n_units <= options.backtest_max_units
    return CALIBRATION_NEIGHBOURS if small else 0


def origins_for(periods, cutoff, n_units: int, options) -> list[pd.Period]:
    """Full-year check origins of a panel of ``n_units`` units (:func:`calibration_origins`)."""
    return calibration_origins(periods, cutoff, neighbours=_neighbours(n_units, options))


def windows_for(periods, cutoff, n_units: int, options) -> list[pd.Period]:
    """Calibration origins of a forecast made at ``cutoff`` (:func:`calibration_windows`)."""
    return calibration_windows(periods, cutoff, neighbours=_neighbours(n_units, options))


@dataclass(frozen=True)
class Chosen:
    """What a forecast chose per unit and metric, for its calibration windows to impose
    (:func:`choices_of`, ``choices`` of :func:`forecast_arrays`): ``model`` ``metric ->
    unit id -> model`` (:func:`perflink.forecast._fit.forecast_block`'s names) and
    ``seasonal`` ``metric -> unit id -> bool``, whether the unit's series was seasonally
    adjusted (its group's pooled indices passed their test, :func:`pooled_indices`)."""

    model: dict[str, dict[str, str]]
    seasonal: dict[str, dict[str, bool]]


@dataclass(frozen=True)
class Setup:
    """Calendar of one panel forecast."""

    cutoff: pd.Period  # last actual month (end of the review quarter)
    year: int  # fiscal year projected
    fy_steps: int  # forecast months inside the fiscal year
    horizon: int  # forecast months in total (>= 1)


def quiet(func):
    """Run ``func`` without numpy's empty-slice RuntimeWarnings (entities lacking a metric)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            return func(*args, **kwargs)

    return wrapper


def check_options(options) -> None:
    """Range checks of :class:`perflink.options.ForecastOptions` (ParamsError names the field)."""
    rules = {
        "n_paths": (100, 100_000),
        "next_quarters": (0, 4),
        "leading_months": (1, 12),
        "backtest_origins": (1, 24),
        "backtest_horizon": (1, 12),
        "backtest_max_units": (0, 1_000_000),
        "top_n": (1, 50),
        "miss_pct": (0.0, 1.0),
        "severe_miss_pct": (0.0, 1.0),
        "min_probability": (0.0, 1.0),
    }
    for name, (lo, hi) in rules.items():
        value = getattr(options, name)
        if not lo <= value <= hi:
            raise ParamsError(
                f"forecast.{name}: {value!r} is out of range; use a value from {lo} to {hi} "
                "in the forecast: block of the params file."
            )
    if not options.metrics and options.profit_metric:
        raise ParamsError(
            f"forecast.metrics: empty while forecast.profit_metric is "
            f"{options.profit_metric!r}; list the reported flow metrics (aggregation: sum) "
            "its formula is built from, or leave both unset to take them from the catalog "
            "(role: profit)."
        )


def setup(quarter, options) -> Setup:
    """Cutoff month, fiscal year and horizon for the review ``quarter``."""
    q = parse_quarter(quarter)  # ParamsError naming the bad value
    cutoff = q.asfreq("M", "end")
    fy_steps = M - cutoff.month
    return Setup(cutoff, cutoff.year, fy_steps, max(fy_steps, 3 * options.next_quarters, 1))


def check_inputs(facts, entities, catalog, options) -> None:
    """InputError / ParamsError for tables or metrics the panel cannot use."""
    for name, df, cols in (
        ("facts", facts, ("entity_id", "period", "metric_id", "value")),
        ("entities", entities, ("entity_id", "parent_id")),
    ):
        require_columns(df, cols, table=f"forecast: {name}")
    for metric in options.metrics:
        spec = catalog.metrics.get(metric)
        if spec is None:
            raise ParamsError(f"forecast.metrics: {metric!r} is not in the catalog.")
        if spec.aggregation != "sum" or spec.derived:
            raise ParamsError(
                f"forecast.metrics: {metric!r} has aggregation {spec.aggregation!r}; only "
                "reported flow metrics (aggregation: sum) can be projected to a full year."
            )
    pm = options.profit_metric
    if pm:
        spec = catalog.metrics.get(pm)
        if spec is None or not spec.derived:
            raise ParamsError(f"forecast.profit_metric: {pm!r} is not a derived catalog metric.")
        flows = catalog.flows_of(pm)
        if flows is None:
            raise ParamsError(
                f"forecast.profit_metric: {pm!r} = {spec.formula} reads earlier months (lag) or "
                "metrics that are not flows (aggregation other than sum), directly or through "
                "the derived metrics it uses; name a derived metric built in the same month "
                "from reported flows."
            )
        missing = [m for m in flows if m not in options.metrics]
        if missing:
            raise ParamsError(
                f"forecast.profit_metric: {pm!r} = {spec.formula} is built from the flows "
                f"{flows}; forecast.metrics {list(options.metrics)} lacks {missing}. Add them "
                "to forecast.metrics, or leave forecast.metrics unset to take them from the "
                "catalog."
            )


def derive(catalog, metric: str, values) -> np.ndarray:
    """``metric`` from the flows in ``values`` by its catalog formula, nested formulas too.

    The derived metrics ``metric`` is built from are evaluated first, in the catalog's
    dependency order (:attr:`perflink.catalog.Catalog.derived_order`), on the same arrays:
    per path for simulated paths, per month for actuals and budgets.

    Parameters
    ----------
    catalog : perflink.catalog.Catalog
        The catalog; ``metric`` must pass :func:`check_inputs` (same-month flows only).
    metric : str
        A derived metric id.
    values : Mapping[str, numpy.ndarray]
        One array per reported flow ``metric`` is built from (any shape, all the same).
    """
    needed, stack = set(), [metric]
    while stack:
        mid = stack.pop()
        if mid in needed or mid not in catalog.formulas:
            continue
        needed.add(mid)
        stack.extend(catalog.formulas[mid].inputs)
    env = dict(values)
    for mid in catalog.derived_order:
        if mid in needed:
            f = catalog.formulas[mid]
            env[mid] = f.evaluate({m: env[m] for m in f.inputs})
    return env[metric]


def executor_of(executor, n_jobs) -> Executor:
    """The executor of ``forecast_panel(..., executor=, n_jobs=)`` (``n_jobs=k``: k local)."""
    if n_jobs is None:
        return get_executor(executor)
    if executor is not None:
        raise ParamsError(
            "forecast: pass executor= or n_jobs=, not both (n_jobs=k means k local worker "
            "processes; executor=review.executor follows the params)."
        )
    return LocalExecutor(n_jobs)


def unit_panel(facts, cutoff, metrics) -> pd.DataFrame:
    """Wide monthly panel of the units up to ``cutoff`` (columns: metrics)."""
    part = facts[(facts["period"] <= cutoff) & facts["metric_id"].isin(metrics)]
    if part.empty:
        raise InputError(
            f"forecast: the facts table has no values of {sorted(metrics)} up to {cutoff}; "
            "check the review quarter and the facts input."
        )
    return panel.to_wide(part, metrics=metrics)


def membership(entities: pd.DataFrame, units: list[str]) -> dict[str, list[int]]:
    """Parent entity -> positions of its units in ``units``."""
    chains = panel.ancestors(entities)
    out: dict[str, list[int]] = {}
    for i, u in enumerate(units):
        for parent in chains.get(u, []):
            out.setdefault(parent, []).append(i)
    return dict(sorted(out.items()))


def _groups(entities: pd.DataFrame, units: list[str]) -> np.ndarray:
    """Pooling group per unit: ``business line|centre type`` (a column the entities lack
    counts as empty). Plain dict lookups: a Series lookup per unit cost about 50 ms per
    panel forecast at 2,000 units."""
    ent = entities.set_index("entity_id")
    line = ent["business_line"].to_dict() if "business_line" in ent else {}
    ctype = ent["center_type"].to_dict() if "center_type" in ent else {}
    return np.array([f"{line.get(u, '')}|{ctype.get(u, '')}" for u in units], dtype=object)


def forecast_arrays(
    wide: pd.DataFrame,
    entities: pd.DataFrame,
    catalog,
    options,
    horizon: int,
    executor: Executor,
    *,
    choices: Chosen | None = None,
) -> dict:
    """Forecast every unit series and every aggregate of ``wide`` ``horizon`` months ahead.

    The unit series run in blocks on ``executor`` (:meth:`~perflink.execution.Executor.blocks_for`).
    ``choices`` (:func:`choices_of` another forecast) imposes each unit's model instead of
    choosing it (:func:`perflink.forecast._fit.forecast_block`), and whether its series is
    seasonally adjusted instead of testing its group's indices on these months, which
    are estimated from them all the same (:func:`_seasons`): a calibration window's
    forecast uses the review's models.

    Returns a dict with ``entity_ids`` (units then parents), ``kind`` per entity,
    ``actual[metric]`` (E, T) monthly actuals, ``mean/sd[metric]`` (E, h),
    ``psi[metric]`` (E, h), ``nonneg[metric]`` (E,), ``method[metric]`` (E,), ``periods``,
    ``choice[metric]`` (units,): the model each unit's forecast used; ``seasonal[metric]``
    (units,): whether its series was seasonally adjusted.
    """
    units = list(wide.index.get_level_values("entity_id").unique())
    periods = wide.index.get_level_values("period").unique()
    first_month = periods[0].month
    t = len(periods)
    metrics = list(options.metrics)
    groups = _groups(entities, units)
    members = membership(entities, units)
    parents = list(members)
    agg = np.zeros((len(parents), len(units)))
    for j, p in enumerate(parents):
        agg[j, members[p]] = 1.0
    present = {c for c in wide.columns if wide[c].notna().any()}
    drivers = driver_map(catalog, metrics, present) if options.use_drivers else {}
    chunk = max(8, -(-len(units) // executor.blocks_for(len(units))))
    out = {"entity_ids": units + parents, "periods": periods, "actual": {}, "mean": {}}
    keys = ("sd", "psi", "nonneg", "method", "innov", "innov_ok", "absent", "choice", "seasonal")
    for key in keys:
        out[key] = {}
    values_of = {m: wide[m].to_numpy().reshape(len(units), t) for m in wide.columns}
    for metric in metrics:
        y = values_of[metric]
        force = None
        if choices is not None and metric in choices.seasonal:
            force = np.array([choices.seasonal[metric].get(u, False) for u in units])
        seasons = _seasons(y, groups, first_month, force) if options.pool_seasonality else None
        drv, lag = drivers.get(metric, (None, 0))
        x = values_of[drv] if drv else None
        sx = _seasons(x, groups, first_month) if drv and options.pool_seasonality else None
        given = None
        if choices is not None and metric in choices.model:
            given = np.array(
                [choices.model[metric].get(u, "univariate") for u in units], dtype=object
            )
        tasks = [
            (
                y[i : i + chunk],
                horizon,
                first_month,
                None if seasons is None else seasons[i : i + chunk],
                None if x is None else x[i : i + chunk],
                lag,
                None if sx is None else sx[i : i + chunk],
                None if given is None else given[i : i + chunk],
            )
            for i in range(0, len(units), chunk)
        ]
        blocks = executor.map(forecast_block, tasks, desc=f"forecast {metric}", items=len(units))
        res = [r for block in blocks for r in block]
        # parents: bottom-up mean; their spread comes from the sums of their units' joint
        # paths (perflink.forecast._joint), which keep how the units move together
        ya = _sum_rows(agg, y)
        has = ~np.isnan(y).all(axis=1)
        mean_u = np.array([r["mean"] for r in res])
        mean_a = _sum_rows(agg[:, has], np.nan_to_num(mean_u[has]))
        mean_a[~np.isfinite(ya).any(axis=1)] = np.nan
        n_a = len(parents)
        out["actual"][metric] = np.vstack([y, ya])
        out["mean"][metric] = np.vstack([mean_u, mean_a])
        out["sd"][metric] = np.vstack([[r["sd"] for r in res], np.full((n_a, horizon), np.nan)])
        out["psi"][metric] = np.vstack([[r["psi"] for r in res], np.ones((n_a, horizon))])
        with np.errstate(invalid="ignore"):
            nonneg_a = ~(ya < 0).any(axis=1)
        out["nonneg"][metric] = np.r_[np.array([r["nonneg"] for r in res], dtype=bool), nonneg_a]
        out["method"][metric] = np.array(
            [r["method"] for r in res] + ["bottom_up"] * n_a, dtype=object
        )
        out["choice"][metric] = np.array([r["choice"] for r in res], dtype=object)
        out["seasonal"][metric] = (
            np.zeros(len(units), dtype=bool)
            if seasons is None
            else (np.abs(seasons - 1.0) > 0).any(axis=1)
        )
        out["innov"][metric], out["innov_ok"][metric] = _joint.innovations(y, seasons, first_month)
        out["absent"][metric] = ~has
    out["agg"], out["n_units"] = agg, len(units)
    kind = entities.set_index("entity_id")["kind"] if "kind" in entities else pd.Series(dtype=str)
    out["kind"] = np.array([kind.get(e, "department") for e in out["entity_ids"]], dtype=object)
    return out


def choices_of(fc: dict) -> Chosen:
    """Each unit's model and seasonal adjustment in a :func:`forecast_arrays` result: what a
    calibration window of that forecast imposes (``choices`` of :func:`forecast_arrays`)."""
    units = fc["entity_ids"][: fc["n_units"]]

    def per_unit(arrays: dict) -> dict:
        return {m: dict(zip(units, a.tolist(), strict=True)) for m, a in arrays.items()}

    return Chosen(model=per_unit(fc["choice"]), seasonal=per_unit(fc["seasonal"]))


def _sum_rows(agg: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Aggregate rows (sum, NaN when no member has a value)."""
    filled = np.nan_to_num(y)
    total = agg @ filled
    count = agg @ np.isfinite(y).astype(float)
    return np.where(count > 0, total, np.nan)


def _seasons(
    y: np.ndarray, groups: np.ndarray, first_month: int, force: np.ndarray | None = None
) -> np.ndarray:
    """Seasonal indices per row of ``y`` (:func:`pooled_indices`). ``force`` (per row): the
    decision a calibration window imposes instead of its group's test: True takes the
    group's indices estimated from these months (all ones if it has too few to estimate
    them), False none.

    Why impose it: a window has fewer months than the review (a few at the recent windows,
    a year more at the others), so the test it would run decides otherwise for some
    groups. A retail office's December bump, which the review's 33 months found, was not
    significant in its 28- to 30-month windows, whose forecasts, and month-to-month
    changes, then carried it as noise that every office shares: the group's 80% intervals
    of admin expense and marketing spend held 74% and 69% of realised years (seeds
    41-100), and 81% and 79% once the windows took the review's decision."""
    if force is None:
        idx, _p = pooled_indices(y, groups, first_month)
        return idx
    idx, _p = pooled_indices(y, groups, first_month, alpha=np.inf)
    return np.where(np.asarray(force, dtype=bool)[:, None], idx, 1.0)


def driver_map(catalog, metrics, present) -> dict[str, tuple[str, int]]:
    """metric -> (driver, lag): the first of :func:`_leading` whose driver is ``present``."""
    out = {}
    for metric in metrics:
        for mp in _leading(catalog, metric):
            if mp.driver in present:
                out[metric] = (mp.driver, int(mp.lag))
                break
    return out


def _leading(catalog, metric: str) -> list:
    """The catalog's mappings to ``metric`` that may lead it: a lag >= 1, same direction."""
    return [mp for mp in catalog.mappings_to(metric) if mp.lag >= 1 and mp.sign > 0]


def metrics_read(catalog, options) -> set[str]:
    """Metric ids whose facts and targets a panel forecast with ``options`` (resolved for
    ``catalog``) reads: the flows, the profit metric and every driver that may lead a flow
    (:func:`driver_map` takes the first present). A review reads only their rows
    (:meth:`perflink.review.Review.inputs_of`)."""
    out = set(options.metrics) | ({options.profit_metric} if options.profit_metric else set())
    for metric in options.metrics:
        out |= {mp.driver for mp in _leading(catalog, metric)}
    return out


def draw_paths(
    fc: dict,
    catalog,
    options,
    horizon: int,
    *,
    factors: dict | None = None,
    learner=None,
    steps: int | None = None,
) -> dict[str, np.ndarray]:
    """Joint paths ``(E, n_paths, horizon)`` of every flow and the profit metric, units then
    parents (:func:`perflink.forecast._joint.simulate`); the factors spread the sums over
    the first ``steps`` months (default: all).

    The months drawn and the mixing factors come from the seed only, never from an entity's
    id: a company that renames its ids gets the same figures.
    """
    paths = _joint.simulate(
        fc, catalog, options, horizon, derive=derive, factors=factors, learner=learner,
        steps=steps,
    )  # fmt: skip
    advance(fc["n_units"])
    return paths


def full_actuals(fc: dict, catalog, profit_metric: str | None) -> dict[str, np.ndarray]:
    """Monthly actuals of every flow and the profit metric, units then parents, rolled up as
    the catalog declares (a sum-aggregated profit is the sum of the units' profits)."""
    n_u = fc["n_units"]
    units = {m: a[:n_u] for m, a in fc["actual"].items()}
    return _joint.expand(catalog, profit_metric, units, fc["agg"], fc["absent"], derive)


def profit_budget(catalog, pm: str, budgets: dict, fc: dict) -> np.ndarray:
    """Monthly budget ``(E, 12)`` of the profit metric, rolled up as its actuals are.

    Units: the catalog formula on their flow budgets (flows a unit never reports count 0).
    Parents: the sum of their units' profit budgets when every unit with a profit budget has
    all twelve months (``aggregation: formula``: the formula on the parent's flow budgets).
    """
    n_u = fc["n_units"]
    unit = {m: b[:n_u] for m, b in budgets.items() if m in fc["absent"]}
    unit_p = _joint.profit_of(catalog, pm, unit, fc["absent"], derive)
    if catalog.metrics[pm].aggregation == "formula":
        parent = derive(catalog, pm, {m: b[n_u:] for m, b in budgets.items()})
    else:
        agg = fc["agg"]
        has = np.isfinite(unit_p).any(axis=1)
        full = np.isfinite(unit_p).all(axis=1)
        parent = _joint.sum_rows(agg, unit_p)
        parent[(agg @ (has & ~full).astype(float)) > 0] = np.nan
    return np.vstack([unit_p, parent])


#: Calibration stages in the order paths are built: each stage's factor is measured on paths
#: whose earlier stages are already calibrated.
def _stages(metrics, pm):
    flows = [(m, "unit") for m in metrics]
    parents = ("parent", "group")
    second = [(m, lv) for m in metrics for lv in parents] + ([(pm, "unit")] if pm else [])
    return [flows, second, [(pm, lv) for lv in parents] if pm else []]


def sample_units(wide: pd.DataFrame, entities: pd.DataFrame, max_units: int) -> pd.DataFrame:
    """Rows of at most ``max_units`` units, stratified by business line and centre type.

    Accuracy on thousands of units is estimated from a sample, which costs a fixed time
    instead of many more panel forecasts. Each stratum keeps its share of the units (at least
    one), spread evenly over its units in panel order; the choice depends on positions only,
    never on the characters of an id, so a company that renames its ids backtests the same
    units.
    """
    units = list(wide.index.get_level_values("entity_id").unique())
    if not max_units or len(units) <= max_units:
        return wide
    strata = _groups(entities, units)
    keep: list[str] = []
    for key in sorted(set(strata)):
        members = [u for u, g in zip(units, strata, strict=True) if g == key]
        k = max(1, round(len(members) * max_units / len(units)))
        picks = ((np.arange(k) + 0.5) * len(members) / k).astype(int)
        keep += [members[i] for i in picks]
    chosen = wide.index.get_level_values("entity_id").isin(keep)
    return wide[chosen]


def calibration_origins(
    periods: pd.PeriodIndex, cutoff: pd.Period, *, neighbours: int = CALIBRATION_NEIGHBOURS
) -> list[pd.Period]:
    """The same month a year before ``cutoff`` and the ``neighbours`` months before it, in
    that year, that leave at least 13 months of history from January of their year on (the
    backtest's full-year origins, and the group's further calibration runs)."""
    out = []
    for back in range(neighbours + 1):
        origin = cutoff - 12 - back
        jan = pd.Period(f"{origin.year}-01", "M")
        if (
            origin.year == cutoff.year - 1
            and origin.month < M
            and origin in periods
            and periods[0] <= jan
            and (origin - periods[0]).n >= 12
        ):
            out.append(origin)
    return out


def calibration_windows(
    periods: pd.PeriodIndex, cutoff: pd.Period, *, neighbours: int = CALIBRATION_NEIGHBOURS
) -> list[pd.Period]:
    """Origins of the calibration windows of a forecast made at ``cutoff``: windows of as
    many months as the fiscal year has left after ``cutoff``, ending at ``cutoff`` and the
    ``neighbours`` months before it, and the same a year earlier; an origin needs at least
    13 months of history.

    Why recent windows rather than last year's full year: a forecast made from the most
    recent history is the closest to the review's own (its seasonal indices and trends
    are estimated from almost the same months), and every month of the windows is known
    at the cutoff, so the calibration stays out of sample.
    """
    steps = M - cutoff.month
    if not steps:
        return []
    out = []
    for years in (0, 1):
        for back in range(neighbours + 1):
            origin = cutoff - 12 * years - back - steps
            if origin in periods and (origin - periods[0]).n >= 12:
                out.append(origin)
    return out


def past_runs(
    wide, entities, catalog, options, origins, ex, *, steps: int | None = None, choices=None
):
    """(forecast arrays, Learner, origin) per origin: the projection of that year's rest and
    what was realised; with ``steps``, of the ``steps`` months after the origin (a
    calibration window, :func:`calibration_windows`) and their realised sum. ``choices``
    (:func:`choices_of` the forecast being calibrated): the models its units use and
    whether their series are seasonally adjusted."""
    per = wide.index.get_level_values("period")
    periods = per.unique()
    metrics = list(options.metrics)
    n_u = wide.index.get_level_values("entity_id").nunique()
    full = {m: wide[m].to_numpy().reshape(n_u, len(periods)) for m in metrics}
    pm = options.profit_metric
    runs = []
    for origin in origins:
        horizon = M - origin.month if steps is None else steps
        fc = forecast_arrays(
            wide[per <= origin], entities, catalog, options, horizon, ex, choices=choices
        )
        real_all = _joint.expand(catalog, pm, full, fc["agg"], fc["absent"], derive)
        if steps is None:
            learner = _year_learner(fc, catalog, pm, real_all, periods, origin, horizon)
        else:
            learner = _window_learner(real_all, periods, origin, steps)
        runs.append((fc, learner, origin))
    return runs


def _year_learner(fc, catalog, pm, real_all, periods, origin, steps) -> _joint.Learner:
    """The realised full year of ``origin``'s year, its year to date at the origin and the
    seasonal naive projection (year to date plus the same months of the year before)."""
    act = full_actuals(fc, catalog, pm)
    year = np.array([p.year == origin.year for p in periods])
    seen = np.array([p.year == origin.year for p in fc["periods"]])
    # seasonal naive baseline: the same months of the year before
    before = np.array([p.year == origin.year - 1 and p.month > origin.month for p in periods])
    realised, ytd, naive = {}, {}, {}
    for m, v in real_all.items():
        months = v[:, year]
        realised[m] = np.where(np.isfinite(months).all(axis=1), months.sum(axis=1), np.nan)
        part = act[m][:, seen]
        ytd[m] = np.where(np.isfinite(part).any(axis=1), np.nansum(part, axis=1), np.nan)
        last = v[:, before]
        rest = np.where(np.isfinite(last).all(axis=1), last.sum(axis=1), np.nan)
        naive[m] = ytd[m] + (rest if before.sum() == steps else np.nan)
    learner = _joint.Learner(ytd, realised, steps)
    learner.naive = naive
    return learner


def _window_learner(real_all, periods, origin, steps) -> _joint.Learner:
    """The realised sum of the ``steps`` months after ``origin`` (no year to date)."""
    window = np.array([origin < p <= origin + steps for p in periods])
    realised, zero = {}, {}
    for m, v in real_all.items():
        months = v[:, window]
        ok = np.isfinite(months).all(axis=1) & (window.sum() == steps)
        realised[m] = np.where(ok, months.sum(axis=1), np.nan)
        zero[m] = np.zeros(len(v))
    return _joint.Learner(zero, realised, steps)


#: Bytes of unit paths :func:`calibrate` may keep between its passes (each pass would draw
#: them again): the sample's six windows of three months hold 18 MB; a 400-unit calibration
#: sample's hold 173 MB, more than a kernel of a large review should add, and are drawn again.
CALIBRATION_CACHE_BYTES = 64 * 2**20


def sales_metric(catalog, options) -> str | None:
    """The catalog's sales metric (``role: sales``) when it is among the forecast flows: the
    other flows may follow it at last year's ratio (:func:`perflink.forecast._joint.learn_blends`)."""
    sales = catalog.role("sales")
    return sales if sales in options.metrics else None


def correct_means(fc: dict, factors: dict, catalog, options) -> dict:
    """``fc`` with the corrections :func:`calibrate` learnt: each flow blended with the sales
    forecast at last year's ratio, then its level corrected."""
    blended = _joint.blend_means(fc, factors, sales_metric(catalog, options))
    return _joint.shift_means(blended, factors)


def group_passes(options) -> int:
    """Passes of joint paths :func:`calibrate` makes per run of its ``group_runs`` (its
    stages with a group factor to learn)."""
    stages = _stages(list(options.metrics), options.profit_metric)
    return sum(1 for stage in stages if any(lv == "group" for _m, lv in stage))


def calibrate(runs, catalog, options, *, group_runs=()) -> dict:
    """Blend weights (``(metric, "blend")``, :func:`perflink.forecast._joint.learn_blends`),
    level corrections (``(metric, "shift")``, :func:`perflink.forecast._joint.learn_shifts`)
    and spread factors per (metric, level) from past runs (:func:`past_runs`), stage by
    stage; apply the first two with :func:`correct_means`. ``(metric, "few_units")``: the
    units behind a flow's unit factor when they are few (:func:`perflink.forecast._joint.few_units`).

    ``group_runs``: full-year runs from the same month a year before and its neighbours
    (:func:`origins_for`) whose scores count for the group's factors only. The group is
    one sum per run: its windows ending at the cutoff are a handful that share most of their
    months and none of the months ahead (at a mid-year cutoff its 80% interval held 64% of
    realised years over 20 generated groups); the same months of the year before add
    checks of the very task (the backtest's full-year origins). Units and subsidiaries have
    rows enough in the windows, and those runs, made from a year less history, err more
    than the review's own forecast: counted at every level they widened intervals that
    already held more than 85%.
    """
    # first how each flow follows sales, then the level of the flows (a shortfall every
    # unit shares), then the spread around it
    metrics, sales = list(options.metrics), sales_metric(catalog, options)
    factors: dict = _joint.learn_blends(runs, metrics, sales)
    runs = [(_joint.blend_means(fc, factors, sales), lr, o) for fc, lr, o in runs]
    factors.update(_joint.learn_shifts(runs, metrics))
    # (forecast, learner, whether the run counts for the group only)
    runs = [(_joint.shift_means(fc, factors), lr, False) for fc, lr, _o in runs] + [
        (correct_means(fc, factors, catalog, options), lr, True) for fc, lr, _o in group_runs
    ]
    # each pass draws the same unit paths: kept between passes when they fit the budget
    size = sum(fc["n_units"] * learner.steps for fc, learner, _group in runs)
    keep = size * options.n_paths * len(options.metrics) * 8 <= CALIBRATION_CACHE_BYTES
    caches = [{} if keep else None for _run in runs]
    for k, stage in enumerate(_stages(list(options.metrics), options.profit_metric), start=1):
        if not stage:
            continue
        learners = []
        for (fc, learner, group_only), cache in zip(runs, caches, strict=True):
            keys = [key for key in stage if key[1] == "group"] if group_only else stage
            if not keys:
                continue
            fresh = _joint.Learner(learner.ytd, learner.realised, learner.steps, only=keys)
            _joint.simulate(
                fc, catalog, options, learner.steps, derive=derive, factors=factors,
                learner=fresh, stages=k, cache=cache,
            )  # fmt: skip
            advance(fc["n_units"])
            learners.append(fresh)
        pooled = _joint.Learner({}, {}, 0)
        for lr in learners:
            pooled.merge(lr)
        learned = _joint.factors_from(pooled)
        factors.update({k: v for k, v in learned.items() if k in stage})
        thin = _joint.few_units(pooled)
        factors.update({(m, "few_units"): n for m, n in thin.items() if (m, "unit") in stage})
    return factors


# --- progress: the task step's bar (perflink.execution.progress) -----------------------
# A forecast step counts one unit of work per unit series forecast (each metric's map
# advances the bar by its units) and one per unit simulated in a pass of joint paths (a
# calibration stage of a past run, the final paths): a pass over a unit costs about what
# forecasting one of its series does (1.5 vs 2-4 ms), so the bar moves evenly through the
# calibration instead of waiting at 100% (a third of the sample forecast's time).


def units_upto(wide: pd.DataFrame, last: pd.Period, *, before: bool = False) -> int:
    """Units of ``wide`` with a row up to ``last`` (``before``: before it), as a forecast
    of ``wide`` cut there sees them."""
    per = wide.index.get_level_values("period")
    keep = per < last if before else per <= last
    return int(wide.index.get_level_values("entity_id")[keep].nunique())


def simulation_passes(options) -> int:
    """Passes of joint paths :func:`calibrate` makes per past run (its non-empty stages)."""
    return sum(1 for stage in _stages(list(options.metrics), options.profit_metric) if stage)


def forecast_steps(wide: pd.DataFrame, entities: pd.DataFrame, options, setup_: Setup) -> int:
    """Units of work of ``forecast_panel`` on ``wide`` (its bar's total, see
    :func:`perflink.execution.advance`).

    Every unit series forecast at the review, and as of each calibration origin on the
    calibration sample; every unit simulated per calibration pass and in the final paths.
    """
    periods = wide.index.get_level_values("period").unique()
    n_units = wide.index.get_level_values("entity_id").nunique()
    fy = bool(setup_.fy_steps)
    origins = windows_for(periods, setup_.cutoff, n_units, options) if fy else []
    years = origins_for(periods, setup_.cutoff, n_units, options) if fy else []
    sample = sample_units(wide, entities, options.backtest_max_units)
    past = sum(units_upto(sample, o) for o in origins)
    before = sum(units_upto(sample, o) for o in years)
    metrics = len(options.metrics)
    simulated = simulation_passes(options) * past + group_passes(options) * before
    return metrics * (n_units + past + before) + simulated + n_units


#: Entities per block of :func:`nanquantile`.
_QUANTILE_BLOCK = 256


def nanquantile(x: np.ndarray, q: list[float], axis: int) -> np.ndarray:
    """``np.nanquantile(x, q, axis=axis)``, faster: slices without NaN go through ``np.quantile``.

    ``np.nanquantile`` calls a Python function per slice (tens of thousands of entity-month
    path sets); on a slice without NaN it computes exactly ``np.quantile``, which takes all
    such slices in one call. Same values, bit for bit. Over a block of the first axis at a
    time (each slice's quantiles are its own): the copies the quantiles make are a block's,
    not the whole panel's (three of 0.5 GB per metric at 10,000 units).
    """
    if axis not in (0, -x.ndim) and x.shape[0] > _QUANTILE_BLOCK:
        parts = [
            nanquantile(x[i : i + _QUANTILE_BLOCK], q, axis)
            for i in range(0, x.shape[0], _QUANTILE_BLOCK)
        ]
        return np.concatenate(parts, axis=1)
    moved = np.moveaxis(x, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    out = np.empty((len(q), flat.shape[0]))
    full = ~np.isnan(flat).any(axis=1)
    if full.any():
        out[:, full] = np.quantile(flat[full], q, axis=1)
    if not full.all():
        out[:, ~full] = np.nanquantile(flat[~full], q, axis=1)
    return out.reshape(len(q), *moved.shape[:-1])


def floor_zero(q: np.ndarray, fc: dict, metric: str) -> np.ndarray:
    """Quantiles ``q`` (``(k, entities)`` or ``(k, entities, months)``) of ``metric``'s
    paths floored at zero on the rows of a flow that cannot be negative.

    A parent's paths are not clipped (:func:`perflink.forecast._joint.simulate`: its mean
    stays the sum of its units'). A month's quantile of clipped paths is its quantile
    floored at zero, so a month's edges are the same either way; a full year's lower edges
    can sit lower where a path dips below zero in a month, which takes a spread factor of
    several times the parent's level.
    """
    nonneg = fc["nonneg"].get(metric)
    if nonneg is None:
        return q
    rows = nonneg.reshape((1, -1) + (1,) * (q.ndim - 2))
    return np.where(rows, np.maximum(q, 0.0), q)


def monthly_table(fc: dict, paths: dict, setup_: Setup, options):
    """The ``forecast`` table: entity_id, metric_id, period, mean, lo/hi 80/95, method.

    Intervals are the quantiles of the joint paths (calibrated, parents as sums of units);
    the mean of a flow is its point forecast, of the profit metric the mean of its paths.
    """
    future = pd.period_range(setup_.cutoff + 1, periods=setup_.horizon, freq="M")
    ids = np.array(fc["entity_ids"], dtype=object)
    e_n, h = len(ids), setup_.horizon
    frames = []
    for metric, pth in paths.items():
        q = floor_zero(nanquantile(pth, [0.025, 0.1, 0.9, 0.975], axis=1), fc, metric)
        if metric in fc["mean"]:
            mean, method = fc["mean"][metric], np.repeat(fc["method"][metric], h)
        else:
            mean, method = _nanmean_blocks(pth), np.repeat("derived_paths", e_n * h)
        cols = {"mean": mean, "lo_80": q[1], "hi_80": q[2], "lo_95": q[0], "hi_95": q[3]}
        frames.append(_long(ids, metric, future, cols, method))
    out = pd.concat(frames, ignore_index=True)
    return out[np.isfinite(out["mean"].to_numpy(dtype=float))].reset_index(drop=True)


def _nanmean_blocks(paths: np.ndarray) -> np.ndarray:
    """``np.nanmean(paths, axis=1)`` of ``(entities, paths, months)``, a block of
    entities at a time: each entity-month's mean sums the same paths in the same order
    (same values, bit for bit), but ``nanmean`` copies its input, which for the whole panel
    was 0.27 GB at 10,000 units beside the paths themselves."""
    if paths.shape[0] <= _QUANTILE_BLOCK:
        return np.nanmean(paths, axis=1)
    return np.concatenate(
        [
            np.nanmean(paths[i : i + _QUANTILE_BLOCK], axis=1)
            for i in range(0, paths.shape[0], _QUANTILE_BLOCK)
        ]
    )


def _long(ids, metric, future, cols: dict, method) -> pd.DataFrame:
    e_n, h = len(ids), len(future)
    data = {
        "entity_id": pd.array(np.repeat(ids, h), dtype="str"),
        "metric_id": pd.array(np.full(e_n * h, metric, dtype=object), dtype="str"),
        "period": pd.PeriodIndex(np.tile(future, e_n)),
    }
    data.update({k: np.asarray(v, dtype=float).reshape(-1) for k, v in cols.items()})
    data["method"] = pd.array(np.asarray(method, dtype=object).reshape(-1), dtype="str")
    return pd.DataFrame(data)
