"""Joint paths of every flow, the derived profit and every parent sum; their calibration (not API).

Why joint: a derived profit is sales less costs; its spread depends on how the errors of
its flows move together (costs follow sales), and a subsidiary's sum on how its units move
together. One set of random numbers per entity shared by every metric makes the flows move
in lockstep, so profit = sales less costs cancels most of the spread (profit intervals held
the realised year for a third of the units); independent numbers per entity make parent
sums falsely certain. Here the dependence is taken from the data:

1. each unit's series is seasonally adjusted with its (pooled) indices and differenced; the
   month-to-month changes, standardised per unit and metric, are the innovation vectors;
2. every path draws, for each future month, one *historical month* and takes the innovations
   of that month for every unit and every metric at once (a joint bootstrap of residual
   vectors): the cross-metric and cross-unit correlation of the history carries over;
3. a unit's path = point forecast + its model's impulse weights over the drawn innovations,
   times the model's h-step scale and a Student-t mixing factor per path (heavy tails, shared
   by all series of the path);
4. the profit metric is evaluated per path with the unit's formula; a parent's flow and its
   profit (``aggregation: sum``) are the sums of its units' paths, a profit declared
   ``aggregation: formula`` is the formula on the parent's summed flows.

Calibration (conformal, out of sample; :func:`perflink.forecast._panel.calibrate`): the
same simulation runs from recent origins over windows as long as the rest of the year,
every month of them known at the cutoff. First :func:`learn_blends` sets how much of each
flow's forecast is its own and how much the sales forecast at last year's ratio to sales (a
cost that follows sales keeps its margin, and the profit built from both stops carrying two
forecasts made apart); then :func:`learn_shifts` sets a level correction per flow (the
units' summed error over their summed forecast); then, stage by stage (unit
flows, unit profit, parent flows, parent profit, each on top of the stages it is built
from), :func:`factors_from` sets per metric and level the factors that put 80% of the
windows' realised sums inside the 80% interval and 95% inside the 95% one, and
:func:`_scale` moves each edge by its own factor.

The month draws and mixing factors depend on the seed only; nothing depends on an entity's
id, so renaming every id gives the same figures.
"""

from __future__ import annotations

import warnings

import numpy as np

from perflink.forecast import _models as _fm

#: A unit series with fewer standardised changes than this draws independent normal
#: innovations instead (too short to estimate how it moves with the others).
MIN_MONTHS = 6
#: Innovations are changes over this many months: slower moves (a price round, a pay rise)
#: are what units share; month-to-month noise is mostly their own.
CHANGE_MONTHS = 1
#: Factors are kept within these bounds (a window of bad luck must not zero the spread).
FACTOR_RANGE = (1.0, 20.0)
#: A unit factor may narrow the simulated spread down to this share: it rests on hundreds
#: of unit rows, and a flow's forecast blended with the sales forecast (:func:`learn_blends`)
#: can be nearer than its model's own spread says, which the profit built from it inherits
#: (its unit factors sat at the old floor of 1 on every seed). Parents and the group keep
#: :data:`FACTOR_RANGE`: their factors rest on a handful of sums per window, and those sums
#: are what the level correction (:func:`learn_shifts`) was fitted to, so their errors over
#: the windows add up to about zero after it: their scores can show a sum's interval too
#: narrow, never how much narrower it could be (allowed down to 0.5, retail subsidiaries'
#: 95% intervals held 84-87% of realised years, seeds 41-100).
UNIT_FACTOR_MIN = 0.5
#: The factor makes this share of the calibration years fall inside the 80% interval.
COVER = 0.8
COVER_95 = 0.95
#: Fewer realised rows than this at a level: the level takes the unit factor of its metric.
MIN_ROWS = 3
#: Fewer rows than this (a group's one sum per window): the factors take the conformal rule
#: (:func:`conformal_quantile`) instead of the plain quantile, which lies below the largest
#: of a handful of scores. So does a metric that fewer units than this report, at unit
#: level (:func:`few_units`): its rows are those few units seen in two to six windows that
#: share most of their months, so the row count overstates what the quantile rests on (in
#: a retail group whose seven offices report admin expense, the plain quantile of 21 rows
#: gave 80% intervals that held 66% of realised years).
FEW_ROWS = 12
LEVELS = ("unit", "parent", "group")
#: A metric's level correction needs at least this many unit rows of past errors.
MIN_SHIFT_ROWS = 10
#: Level corrections stay within this share of the forecast rest of the year.
SHIFT_RANGE = 0.1
#: Weights a flow's own forecast may take in its blend with the sales forecast at last
#: year's ratio (:func:`learn_blends`).
BLEND_GRID = np.round(np.linspace(0.0, 1.0, 11), 1)
#: Units simulated at a time: the temporaries of a block of this many units (innovations,
#: shocks, the spread's rescaling, the profit formula) are a few MB each, where the whole
#: panel's were 0.5 GB each at 10,000 units.
_CHUNK_UNITS = 256


def innovations(y: np.ndarray, season: np.ndarray | None, first_month: int):
    """Standardised month-to-month changes of the seasonally adjusted rows of ``y``.

    Returns ``(z, ok)``: ``z`` shape ``(U, T - 1)`` with mean square 1 per row (0 where a
    change is unknown), ``ok`` whether a row has at least :data:`MIN_MONTHS` changes.
    """
    u, t = y.shape
    if t < 2:
        return np.zeros((u, 0)), np.zeros(u, dtype=bool)
    cal = (first_month - 1 + np.arange(t)) % 12
    s = (np.ones((u, 12)) if season is None else np.asarray(season, dtype=float))[:, cal]
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = np.nanmin(np.where(np.isfinite(y), y, np.inf), axis=1) > 0
        level = np.nanmean(np.abs(y), axis=1, keepdims=True)
        adj = np.where(positive[:, None], y / s, y - (s - 1.0) * level)
        d = adj[:, CHANGE_MONTHS:] - adj[:, :-CHANGE_MONTHS]
        d = d - np.nanmean(d, axis=1, keepdims=True)
    finite = np.isfinite(d)
    d = np.where(finite, d, 0.0)
    ms = np.mean(d**2, axis=1, keepdims=True)
    z = np.divide(d, np.sqrt(ms), out=np.zeros_like(d), where=ms > 0)
    return z, (finite.sum(axis=1) >= MIN_MONTHS) & (ms[:, 0] > 0)


def sum_rows(agg: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Parent sums ``agg @ x`` over the first axis of ``x`` (any shape); NaN where no member
    has a value."""
    flat = np.ascontiguousarray(x.reshape(x.shape[0], -1))
    ok = np.isfinite(flat)
    # without a NaN the values themselves (a zero-filled copy of every path of every unit
    # is the forecast kernel's largest temporary); members counted in float32, exact for
    # any count below 2**24
    total = agg @ (flat if ok.all() else np.where(ok, flat, 0.0))
    count = agg.astype(np.float32) @ ok.astype(np.float32)
    out = np.where(count > 0, total, np.nan)
    return out.reshape((agg.shape[0], *x.shape[1:]))


def _filled(values: dict, absent: dict) -> dict:
    """Flows a unit never reports count 0 in its profit (a cost centre has no sales): its
    profit is then its costs, not NaN, and a parent's sum of profits carries every unit's
    costs."""
    out = {}
    for m, v in values.items():
        miss = absent.get(m)
        if miss is None or not miss.any():
            out[m] = v
            continue
        shape = (len(miss),) + (1,) * (v.ndim - 1)
        out[m] = np.where(miss.reshape(shape) & ~np.isfinite(v), 0.0, v)
    return out


def _reporting(values: dict, absent: dict) -> np.ndarray:
    """Units reporting at least one of the flows (the others have no profit)."""
    return ~np.logical_and.reduce([absent[m] for m in values])


def profit_of(catalog, pm: str, unit_values: dict, absent: dict, derive) -> np.ndarray:
    """Unit profit (any trailing shape) by the catalog formula, absent flows as 0."""
    out = derive(catalog, pm, _filled(unit_values, absent))
    keep = _reporting(unit_values, absent)
    out[~keep] = np.nan
    return out


def expand(catalog, pm, unit_values: dict, agg, absent: dict, derive) -> dict:
    """Every flow and the profit metric for units then parents, as the catalog rolls them up.

    Flows add up. The profit metric: per unit by its formula; at a parent the sum of its
    units' profits, unless the catalog declares it ``aggregation: formula`` (then the formula
    on the parent's summed flows).
    """
    out = {m: np.concatenate([v, sum_rows(agg, v)]) for m, v in unit_values.items()}
    if pm:
        unit_p = profit_of(catalog, pm, unit_values, absent, derive)
        if catalog.metrics[pm].aggregation == "formula":
            parent_p = derive(catalog, pm, {m: v[len(unit_p) :] for m, v in out.items()})
        else:
            parent_p = sum_rows(agg, unit_p)
        out[pm] = np.concatenate([unit_p, parent_p])
    return out


def learn_shifts(runs, metrics) -> dict[tuple[str, str], float]:
    """Level correction per flow: the units' summed error over their summed forecast of the
    rest of the year in the past ``runs`` (``(fc, Learner, origin)``, see
    :func:`perflink.forecast._panel.past_runs`).

    Why: the point forecast is a median of level, trend and last-year models; on a growing
    series it falls short of what follows by about the same share in every unit, and a
    shortfall every unit shares does not cancel in a subsidiary's or the group's sum, so
    the sums' intervals miss the realised year however wide the units' are. Summed errors
    over summed forecasts (not the median unit's share) is the shortfall of the sums
    themselves: large units weigh as they do in them. Measured on windows known at the
    cutoff only (out of sample), per metric, within :data:`SHIFT_RANGE`; a metric with
    fewer than :data:`MIN_SHIFT_ROWS` unit rows gets none.

    Returns ``{(metric, "shift"): s}``: the rest of the year is raised by ``s x |forecast|``.
    """
    out = {}
    for metric in metrics:
        errs = []
        for fc, learner, _origin in runs:
            n_u = fc["n_units"]
            rest = np.sum(fc["mean"][metric][:n_u, : learner.steps], axis=1)
            real = learner.realised[metric][:n_u] - learner.ytd[metric][:n_u]
            ok = np.isfinite(rest) & np.isfinite(real) & (np.abs(rest) > 0)
            errs.append(np.c_[real[ok] - rest[ok], np.abs(rest[ok])])
        e = np.concatenate(errs) if errs else np.zeros((0, 2))
        if len(e) >= MIN_SHIFT_ROWS:
            agg = e[:, 0].sum() / e[:, 1].sum()
            out[(metric, "shift")] = float(np.clip(agg, -SHIFT_RANGE, SHIFT_RANGE))
    return out


def shifts_of(factors: dict) -> dict[str, float]:
    """The level correction per flow among ``factors`` (:func:`learn_shifts`' entries)."""
    return {m: s for (m, lv), s in factors.items() if lv == "shift"}


def shift_means(fc: dict, factors: dict) -> dict:
    """``fc`` with every flow's forecast raised by its level correction (:func:`learn_shifts`,
    the ``(metric, "shift")`` entries of ``factors``): units by ``s x |mean|``, parents by
    the sum of their units' corrections. A new dict; ``fc`` is not changed."""
    shifts = {m: s for m, s in shifts_of(factors).items() if m in fc["mean"]}
    if not shifts:
        return fc
    n_u = fc["n_units"]
    mean = dict(fc["mean"])
    for metric, s in shifts.items():
        mean[metric] = _moved_units(fc, metric, s * np.abs(mean[metric][:n_u]))
    return {**fc, "mean": mean}


def _moved_units(fc: dict, metric: str, unit_add: np.ndarray) -> np.ndarray:
    """``metric``'s forecast means with ``unit_add`` added to the units' rows and the sum of
    their additions to each parent's; a metric that cannot be negative stays at 0 or above."""
    new = fc["mean"][metric] + np.vstack([unit_add, fc["agg"] @ np.nan_to_num(unit_add)])
    return np.where(fc["nonneg"][metric][:, None], np.maximum(new, 0.0), new)


def ratio_means(fc: dict, sales: str) -> dict[str, np.ndarray]:
    """Per flow of ``fc`` other than ``sales``: each unit's forecast of ``sales`` times the
    flow's ratio to sales in the same month a year before, ``(units, horizon)``.

    NaN where that month is not in the history, or its sales were not positive. A cost that
    follows sales keeps last year's margin month by month, where its own forecast (a median
    of level, trend and last-year models, chosen apart from the sales forecast) does not:
    profit, a small difference of large flows, was projected worse than by last year's same
    months (sample backtest: 3.8% full-year error against 1.8%).
    """
    n_u = fc["n_units"]
    s_mean = fc["mean"][sales][:n_u]
    h = s_mean.shape[1]
    t = fc["actual"][sales].shape[1]
    # month j (0-based) of the forecast is month t + j of the panel; a year before, t + j - 12
    idx = np.arange(h) + t - 12
    known = (idx >= 0) & (idx < t)

    def year_before(metric: str) -> np.ndarray:
        out = np.full((n_u, h), np.nan)
        out[:, known] = fc["actual"][metric][:n_u, idx[known]]
        return out

    last_sales = year_before(sales)
    out = {}
    for metric in fc["mean"]:
        if metric != sales:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(last_sales > 0, year_before(metric) / last_sales, np.nan)
            out[metric] = s_mean * ratio
    return out


def learn_blends(runs, metrics, sales: str | None) -> dict[tuple[str, str], float]:
    """Weight of each flow's own forecast in its blend with :func:`ratio_means` (the rest
    goes to the sales forecast at last year's ratio): of :data:`BLEND_GRID`, the one whose
    blend was nearest, summed over units, to what followed in the past ``runs`` (windows
    known at the cutoff only); ties go to the larger weight. The sales metric and a flow
    with fewer than :data:`MIN_SHIFT_ROWS` unit rows keep their own forecast (no entry).

    Returns ``{(metric, "blend"): w}``: the unit forecast becomes ``w x own + (1 - w) x
    ratio`` month by month (the own forecast where the ratio is not known).
    """
    out: dict[tuple[str, str], float] = {}
    if sales is None or sales not in metrics:
        return out
    grid = BLEND_GRID[:, None]
    errs = {m: np.zeros(len(BLEND_GRID)) for m in metrics if m != sales}
    rows = dict.fromkeys(errs, 0)
    for fc, learner, _origin in runs:
        n_u, steps = fc["n_units"], learner.steps
        alt = ratio_means(fc, sales)
        for metric in errs:
            own = fc["mean"][metric][:n_u, :steps]
            other = np.where(np.isfinite(alt[metric][:, :steps]), alt[metric][:, :steps], own)
            real = learner.realised[metric][:n_u] - learner.ytd[metric][:n_u]
            ok = np.isfinite(real) & np.isfinite(own).all(axis=1)
            mix = grid * own[ok].sum(axis=1) + (1 - grid) * other[ok].sum(axis=1)
            errs[metric] += np.abs(real[ok] - mix).sum(axis=1)
            rows[metric] += int(ok.sum())
    for metric, err in errs.items():
        if rows[metric] >= MIN_SHIFT_ROWS:
            best = np.flatnonzero(err <= err.min())[-1]
            out[(metric, "blend")] = float(BLEND_GRID[best])
    return out


def blends_of(factors: dict) -> dict[str, float]:
    """The weight of its own forecast per flow among ``factors`` (:func:`learn_blends`)."""
    return {m: w for (m, lv), w in factors.items() if lv == "blend"}


def blend_means(fc: dict, factors: dict, sales: str | None) -> dict:
    """``fc`` with every unit's flow forecast blended by its weight (:func:`learn_blends`,
    the ``(metric, "blend")`` entries of ``factors``) with :func:`ratio_means`; parents move
    by the sum of their units' changes. A new dict; ``fc`` is not changed."""
    weights = {m: w for m, w in blends_of(factors).items() if m in fc["mean"] and w < 1.0}
    if not weights or sales is None:
        return fc
    n_u = fc["n_units"]
    alt = ratio_means(fc, sales)
    mean = dict(fc["mean"])
    for metric, w in weights.items():
        own = fc["mean"][metric][:n_u]
        unit_add = (1.0 - w) * (np.where(np.isfinite(alt[metric]), alt[metric], own) - own)
        mean[metric] = _moved_units(fc, metric, np.where(np.isfinite(unit_add), unit_add, 0.0))
    return {**fc, "mean": mean}


class Learner:
    """What :func:`simulate` needs to record the scores of each stage: year-to-date actual and
    realised full year per metric (units then parents), the months of the year left at the
    origin; ``scores[(metric, level)]`` collects, per realised year, its distance from the
    median in half-widths of the 80% and of the 95% interval; ``entities[(metric, level)]``
    the rows of one run (the units, or parents, behind the scores): a learner records one
    run, :meth:`merge` pools runs and keeps the most rows of one."""

    def __init__(self, ytd: dict, realised: dict, steps: int, *, only=None):
        self.ytd, self.realised, self.steps = ytd, realised, steps
        self.scores: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self.naive: dict = {}
        self.entities: dict[tuple[str, str], int] = {}
        # the (metric, level) keys to record, None for all: a calibration pass learns the
        # factors of its own stage only (the earlier stages' scores would be thrown away)
        self.only = None if only is None else frozenset(only)

    def record(self, metric: str, level: str, rows, paths: np.ndarray) -> None:
        if self.only is not None and (metric, level) not in self.only:
            return
        fy = self.ytd[metric][rows, None] + np.sum(paths[:, :, : self.steps], axis=2)
        real = self.realised[metric][rows]
        ok = np.isfinite(real) & np.isfinite(fy).all(axis=1)
        fy, real = fy[ok], real[ok]
        if not len(fy):
            return
        q = np.quantile(fy, [0.025, 0.1, 0.5, 0.9, 0.975], axis=1)
        err = np.abs(real - q[2])
        new = []
        for lo, hi in ((q[1], q[3]), (q[0], q[4])):
            half = (hi - lo) / 2
            new.append(np.divide(err, half, out=np.full_like(err, np.inf), where=half > 0))
        key = (metric, level)
        old = self.scores.get(key, (np.array([]), np.array([])))
        self.scores[key] = (np.r_[old[0], new[0]], np.r_[old[1], new[1]])
        # one run records its units a block at a time (:func:`simulate`): the blocks add up
        self.entities[key] = self.entities.get(key, 0) + len(fy)

    def merge(self, other: Learner) -> None:
        for key, (s80, s95) in other.scores.items():
            old = self.scores.get(key, (np.array([]), np.array([])))
            self.scores[key] = (np.r_[old[0], s80], np.r_[old[1], s95])
            # other runs see the same units again: the most of one run, not their sum
            self.entities[key] = max(self.entities.get(key, 0), other.entities.get(key, 0))


def _scale(paths: np.ndarray, f, steps: int) -> np.ndarray:
    """Paths whose sums over the first ``steps`` months are spread by the factors
    ``f = (f80, f95)``: a path as far from the mean as the 80% interval's edge moves ``f80``
    times as far, one at the 95% edge ``f95`` times, in between and beyond along straight
    lines (:func:`factors_from`); each path's months move by its own ratio, so a month's
    shape stays. One factor per level would have to cover both levels, widening the 80%
    interval to fit the realised years' heavier tails."""
    if f is None or tuple(f) == (1.0, 1.0):
        return paths
    f80, f95 = f
    # one (E, P, H) temporary, moved in place: at 2,000 units a path array is ~0.5 GB
    finite = np.isfinite(paths)
    rows = finite.all(axis=(1, 2))
    full = bool(rows.all())
    if not full and not finite[~rows].any():
        # finite rows and wholly NaN ones (entities without the metric): the finite rows
        # alone take the plain reductions, which give what the NaN-skipping ones would at a
        # seventh of their time; only a row with some NaN paths needs those
        out = np.full_like(paths, np.nan)
        if rows.any():
            out[rows] = _scale(paths[rows], f, steps)
        return out
    del finite
    mean_of = (lambda x: x.mean(axis=1, keepdims=True)) if full else _nanmean_paths
    mean = mean_of(paths)
    dev = paths - mean
    a = np.abs(np.sum(dev[:, :, : max(steps, 1)], axis=2))  # (E, P)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an entity without the metric
        q = (np.quantile if full else np.nanquantile)(a, [0.8, 0.95], axis=1, keepdims=True)
    w80, w95 = q[0], q[1]
    # the 95% edge never moves inside the 80% edge (the map stays increasing)
    t80, t95 = f80 * w80, np.maximum(f95 * w95, f80 * w80)
    span = np.where(w95 > w80, w95 - w80, 1.0)
    mapped = np.where(
        a <= w80,
        f80 * a,
        np.where(a <= w95, t80 + (t95 - t80) * (a - w80) / span, t95 + f95 * (a - w95)),
    )
    ratio = np.divide(mapped, a, out=np.full_like(a, f80), where=a > 0)
    ratio = np.where(np.isfinite(ratio), ratio, f80)
    dev *= ratio[:, :, None]
    # the spread changes, the mean does not (a profit's mean stays its flows' formula)
    dev += mean - mean_of(dev)
    return dev


def _nanmean_paths(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an entity without the metric
        return np.nanmean(x, axis=1, keepdims=True)


def simulate(
    fc: dict,
    catalog,
    options,
    horizon: int,
    *,
    derive,
    factors: dict | None = None,
    learner: Learner | None = None,
    stages: int = 3,
    steps: int | None = None,
    cache: dict | None = None,
) -> dict[str, np.ndarray]:
    """Paths ``(E, n_paths, horizon)`` of every flow and the profit metric, units then parents.

    ``fc`` is :func:`perflink.forecast._panel.forecast_arrays`' result (unit rows first,
    ``innov``/``innov_ok`` per metric, ``agg`` the parent x unit membership matrix).
    ``factors`` maps ``(metric, "unit" | "parent")`` to the calibration factor (missing: 1);
    with a ``learner`` the scores of each stage are recorded before its factor is applied.
    ``stages`` < 3 stops early (calibration): 1 after the unit flows, 2 before the parents'
    profit. A ``cache`` dict keeps the unit flows' paths before their factors between calls
    on the same ``fc`` and horizon (the calibration's passes): they depend on neither the
    factors nor the stage, so a later pass reads them instead of drawing them again.
    """
    factors = factors or {}
    steps = learner.steps if learner is not None else (horizon if steps is None else steps)
    n_p = options.n_paths
    n_u = fc["n_units"]
    agg = fc["agg"]
    metrics = list(fc["mean"])
    rng = np.random.default_rng([options.seed, 15])
    n_months = min((fc["innov"][m].shape[1] for m in metrics), default=0)
    months = rng.integers(0, max(n_months, 1), size=(n_p, horizon))
    mix = np.sqrt(rng.chisquare(_fm.T_DF, size=(n_p, 1)) / _fm.T_DF)
    # parents: the top of the hierarchy (kind "group") is calibrated apart from the others:
    # the more units a sum holds, the more its error is what they share
    top = np.asarray(fc["kind"][n_u:]) == "group"
    par_levels = {"parent": np.flatnonzero(~top), "group": np.flatnonzero(top)}

    def parents(metric, par):
        for level, sel in par_levels.items():
            if len(sel):
                if learner is not None:
                    learner.record(metric, level, n_u + sel, par[sel])
                par[sel] = _scale(par[sel], level_factor(factors, metric, level), steps)
        return par

    n_all = len(fc["entity_ids"])
    chunks = [slice(a, min(a + _CHUNK_UNITS, n_u)) for a in range(0, n_u, _CHUNK_UNITS)]
    out: dict[str, np.ndarray] = {}
    for j, metric in enumerate(metrics):
        paths = out[metric] = np.empty((n_all, n_p, horizon))
        if cache is None:
            # drawn into the rows they end in and spread there: no second copy of every
            # unit's paths beside them (240 MB a flow at 10,000 units)
            raw = _unit_paths(fc, metric, j, options.seed, months, mix, chunks, n_months,
                              out=paths[:n_u])  # fmt: skip
        else:
            raw = cache.get(metric)
            if raw is None:
                raw = cache[metric] = _unit_paths(
                    fc, metric, j, options.seed, months, mix, chunks, n_months
                )
        for rows in chunks:
            # a block of units at a time: the temporaries below are (block, paths, horizon),
            # not (units, paths, horizon); each unit's figures are the same either way
            if learner is not None:
                learner.record(metric, "unit", rows, raw[rows])
            block = paths[rows]  # a view: the cached paths are never changed
            block[...] = _scale(raw[rows], factors.get((metric, "unit")), steps)
            np.maximum(block, 0.0, out=block, where=fc["nonneg"][metric][rows, None, None])
        del raw
    if stages < 2:
        return {m: v[:n_u] for m, v in out.items()}
    for metric in metrics:
        # sums of the units' clipped paths, spread by the parent's factor and not clipped
        # again: clipping would move the mean, and a parent's projection is the sum of its
        # units' (the edges shown are floored at zero: perflink.forecast._panel.floor_zero)
        out[metric][n_u:] = parents(metric, sum_rows(agg, out[metric][:n_u]))
    pm = options.profit_metric
    if pm:
        absent = fc["absent"]
        profit = np.empty((n_all, n_p, horizon))  # filled in place: no copy of the units' rows
        unit_p = profit[:n_u]
        for rows in chunks:
            block = {m: v[rows] for m, v in out.items()}
            p = profit_of(catalog, pm, block, {m: a[rows] for m, a in absent.items()}, derive)
            if learner is not None:
                learner.record(pm, "unit", rows, p)
            unit_p[rows] = _scale(p, factors.get((pm, "unit")), steps)
        if stages < 3:
            return out
        if catalog.metrics[pm].aggregation == "formula":
            par = derive(catalog, pm, {m: out[m][n_u:] for m in metrics})
        else:
            par = sum_rows(agg, unit_p)
        profit[n_u:] = parents(pm, par)
        out[pm] = profit
    return out


def _unit_paths(fc, metric, j, seed, months, mix, chunks, n_months, out=None) -> np.ndarray:
    """Unit paths ``(units, n_paths, horizon)`` of flow ``metric`` (the ``j``-th) before any
    factor: point forecast plus the drawn months' innovations, correlated over the horizon
    by the model's psi weights and scaled by the mixing factors and the sd; into ``out``
    when given.

    A block of units (``chunks``) at a time: the drawn innovations are a block's, not the
    panel's (0.24 GB a flow at 10,000 units). Each unit's figures are the panel's, bit for
    bit: its product over the horizon sums the same terms in the same order whatever the
    block, and the normal draws of the units too short for innovations come from one
    stream in unit order however it is cut (tests/test_forecast_panel.py pins both)."""
    n_u = fc["n_units"]
    n_p, horizon = months.shape
    k = np.arange(horizon)
    lag = k[:, None] - k[None, :]
    z, ok = fc["innov"][metric], fc["innov_ok"][metric]
    if not n_months:
        ok = np.zeros(n_u, dtype=bool)
    normal = np.random.default_rng([seed, 16, j])  # drawn in unit order, block by block
    psi = fc["psi"][metric][:n_u]
    # lower-triangular L[e, k, j] = psi[e, k - j], rows normalised to unit variance
    low = np.where(lag >= 0, psi[:, np.clip(lag, 0, None)], 0.0)
    norm = np.sqrt(np.sum(low**2, axis=2, keepdims=True))
    low = np.divide(low, norm, out=np.zeros_like(low), where=norm > 0)
    shock = np.empty((n_u, n_p, horizon)) if out is None else out
    for rows in chunks:
        good = ok[rows]
        eps = np.empty((len(good), n_p, horizon))
        if good.any():
            eps[good] = z[rows][good][:, months]
        if not good.all():
            eps[~good] = normal.standard_normal((int((~good).sum()), n_p, horizon))
        block = shock[rows]
        np.einsum("eph,ekh->epk", eps, low[rows], out=block)
        block /= mix
        mean, sd = fc["mean"][metric][rows], fc["sd"][metric][rows]
        block[...] = mean[:, None, :] + block * sd[:, None, :]
    return shock


def level_factor(factors: dict, metric: str, level: str):
    """The factor of ``metric`` at ``level``; a level without one takes the next lower's
    (group -> other parents -> units).

    The group's factor is at least the other parents' (edge by edge): both apply on top of
    the units' factors, and a group is one sum per window, so its own factor rests on a
    handful of overlapping windows, while the other parents' rest on several sums per
    window; the more units a sum holds, the more of its error is what they share, which
    the simulation does not widen by itself.
    """
    chain = {"unit": ("unit",), "parent": ("parent", "unit"), "group": ("group", "parent", "unit")}
    for lv in chain[level]:
        if (metric, lv) in factors:
            own = factors[(metric, lv)]
            if lv == "group" and (metric, "parent") in factors:
                return tuple(np.maximum(own, factors[(metric, "parent")]).tolist())
            return own
    return None


def factors_from(learner: Learner) -> dict:
    """Factors ``(f80, f95)`` per (metric, level): what puts :data:`COVER` of the recorded
    windows inside the 80% interval and :data:`COVER_95` inside the 95% interval, each
    within :data:`FACTOR_RANGE` (units from :data:`UNIT_FACTOR_MIN`; see :func:`_scale`);
    levels with fewer than :data:`MIN_ROWS` windows are left out (they take the next lower
    level's, see :func:`level_factor`). Fewer than :data:`FEW_ROWS` scores, the group's at
    any count and the unit scores of a metric that few units report (:func:`few_units`)
    take :func:`conformal_quantile`.

    Where those scores are too few for a 95% rank (:func:`conformal_reaches`: under 19),
    the 95% edge widens at least as much as the 80% edge: the largest of ``n`` scores
    covers a new window with probability ``n / (n + 1)`` only, so a group's "95%"
    interval, calibrated on 6 to 9 windows, was an 86-90% one (retail groups held 82-94%
    of realised years, seeds 41-100). The paths' own tail beyond their 80% edge (the
    Student-t mixing) then stands for the rare misses a handful of windows cannot show."""
    out = {}
    thin = few_units(learner)
    for key, (s80, s95) in learner.scores.items():
        if len(s80) >= MIN_ROWS:
            # the group's sums always: its runs share most of their months (a dozen of them
            # are a few independent checks); a few units' rows likewise
            few = len(s80) < FEW_ROWS or key[1] == "group" or (key[1] == "unit" and key[0] in thin)
            quantile = conformal_quantile if few else np.quantile
            low = UNIT_FACTOR_MIN if key[1] == "unit" else FACTOR_RANGE[0]
            f80 = float(np.clip(quantile(s80, COVER), low, FACTOR_RANGE[1]))
            f95 = float(np.clip(quantile(s95, COVER_95), low, FACTOR_RANGE[1]))
            if few and not conformal_reaches(len(s95), COVER_95):
                f95 = max(f95, f80)
            out[key] = (f80, f95)
    return out


def few_units(learner: Learner) -> dict[str, int]:
    """Metric -> units, for the metrics whose unit scores (at least :data:`MIN_ROWS` of them)
    come from fewer than :data:`FEW_ROWS` units: their unit factors take
    :func:`conformal_quantile` (:func:`factors_from`), and the page says so. A learner whose
    scores were set without their units counts each row as one."""
    out = {}
    for (metric, level), (s80, _s95) in learner.scores.items():
        n = learner.entities.get((metric, level), len(s80))
        if level == "unit" and len(s80) >= MIN_ROWS and n < FEW_ROWS:
            out[metric] = n
    return out


def few_units_of(factors: dict) -> dict[str, int]:
    """The metrics among ``factors`` whose unit factors rest on few units (:func:`few_units`,
    the ``(metric, "few_units")`` entries :func:`perflink.forecast._panel.calibrate` adds)."""
    return {m: n for (m, lv), n in factors.items() if lv == "few_units"}


def conformal_reaches(n: int, cover: float) -> bool:
    """True when ``n`` scores have a conformal rank for ``cover`` (:func:`conformal_quantile`)
    short of past the largest: ``ceil((n + 1) cover) <= n`` (4 scores for 80%, 19 for 95%)."""
    return int(np.ceil((n + 1) * cover)) <= n


def conformal_quantile(scores: np.ndarray, cover: float) -> float:
    """The score at rank ``(n + 1) cover`` of ``n`` scores, interpolated between the two
    ranks around it (numpy's ``weibull`` quantile); the largest when that rank is past ``n``
    (which covers with probability ``n / (n + 1)`` only: see :func:`factors_from`).

    When the windows are exchangeable, the ``k``-th smallest of ``n`` scores holds a new
    window with probability ``k / (n + 1)``: rank ``(n + 1) cover`` holds ``cover`` of them,
    where the plain empirical quantile holds less on few windows (the 80% quantile of 6
    scores is the 5th smallest, which holds 5/7 = 71%), which is what a group's or a small
    subsidiary's handful of windows gives. Split-conformal's own rule rounds the rank up, to
    hold *at least* ``cover``: with 6 scores the largest, which holds 6/7 = 86%, outside the
    75-85% an 80% interval should hold (five of the seven group 80% intervals of the retail
    example, calibrated on 6 windows at 2025Q1, held 90-95% of realised years over seeds
    41-100). Interpolated, the rank holds about what the interval claims: with 6 scores,
    82% of new windows for 80% (tests/test_forecast_panel.py draws them)."""
    s = np.asarray(scores, dtype=float)
    return float(np.quantile(s, cover, method="weibull"))
