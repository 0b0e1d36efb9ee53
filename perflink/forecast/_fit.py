"""Per-series forecasting jobs of the panel layer (not API).

Pure functions on numpy blocks, so :mod:`perflink.forecast._panel` can run them in
joblib workers. One job forecasts a block of series of one metric:

- the univariate model of :mod:`perflink.forecast._models`, with seasonal indices
  pooled per business line (see :mod:`perflink.forecast._season`);
- intermittent series (30% or more zeros) get the mean of the last 12 values, with
  independent steps of the last 12 values' sd (method ``intermittent_mean``);
- where the catalog maps a leading driver with a lag ``L >= 1`` (orders signed lead the
  sales booked from them), a driver regression ``y_t = a + b1 x_{t-L} + b2 x_{t-L-1}``
  whose future driver values are the actuals already known (orders signed before the
  cutoff cover the first months) and the driver's own univariate forecast after that.
  The published mean is chosen among univariate, driver and their average by a
  rolling-origin backtest on the series' own last origins (mean absolute error);
  intervals keep the univariate model's calibrated scale (conservative when the
  driver model wins: its early steps are known better).

The fits run batched across the block's rows (rows with the same observed span share
one filter pass, and each rolling origin is one call for all rows), with every row's
figures identical bit for bit to a fit of that row alone; so the panel's figures do
not depend on how its series are split into blocks or workers.
"""

from __future__ import annotations

import numpy as np

from perflink.forecast import _models as _fm

M = 12
_ZERO_SHARE = 0.3
_SELECT_ORIGINS = 3


def clean(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(observed with inner NaN interpolated, index of the first observed, trailing NaN)."""
    ok = np.flatnonzero(~np.isnan(values))
    if len(ok) == 0:
        return np.array([], dtype=float), 0, 0
    first, last = int(ok[0]), int(ok[-1])
    v = values[first : last + 1].copy()
    nan = np.isnan(v)
    if nan.any():
        x = np.arange(len(v))
        v[nan] = np.interp(x[nan], x[~nan], v[~nan])
    return v, first, len(values) - 1 - last


def univariate(
    values: np.ndarray, h: int, first_month: int, season_cal: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, str]:
    """Forecast ``h`` steps after the last column; returns (mean, sd, psi, nonneg, method)."""
    seasons = None if season_cal is None else np.asarray(season_cal)[None, :]
    return univariate_many(np.asarray(values)[None, :], h, first_month, seasons)[0]


def univariate_many(
    values: np.ndarray, h: int, first_month: int, seasons: np.ndarray | None
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, bool, str]]:
    """:func:`univariate` of every row of ``values``, the model fits batched across rows.

    Parameters
    ----------
    values : ndarray, shape (k, T)
        Monthly values (any unit, NaN for missing), every row on one calendar whose first
        column is calendar month ``first_month`` (1-12).
    h : int
        Months ahead of the last column.
    first_month : int
        Calendar month of column 0.
    seasons : ndarray, shape (k, 12), optional
        Pooled seasonal indices per row (January first), or None.

    Returns
    -------
    list of tuple
        Per row (mean, sd, psi, nonneg, method) as :func:`univariate` gives it alone: rows
        with the same first observed column, trailing gap and length share one batched fit
        (:func:`perflink.forecast._models.forecast_core_many`); intermittent rows are
        handled one by one.
    """
    k = values.shape[0]
    out: list = [None] * k
    has_nan = np.isnan(values).any(axis=1)
    groups: dict[tuple[int, int, int], list[int]] = {}
    observed: list = [None] * k
    for i in range(k):
        obs, first, trailing = clean(values[i]) if has_nan[i] else (values[i], 0, 0)
        n = len(obs)
        if n >= 4 and np.mean(obs == 0) >= _ZERO_SHARE:
            out[i] = _intermittent(obs, h, trailing)
        else:
            observed[i] = obs
            groups.setdefault((first, trailing, n), []).append(i)
    for (first, trailing, n), rows in groups.items():
        season = None
        if seasons is not None:
            # each calendar index (January first) rotated to the first observed month
            start = (first_month - 1 + first) % M
            season = np.roll(np.asarray(seasons)[rows], -start, axis=1)
        obs = np.array([observed[i] for i in rows]).reshape(len(rows), n)
        cores = _fm.forecast_core_many(obs, h + trailing, M, seasons=season)
        for i, core in zip(rows, cores, strict=True):
            method = core.method + ("+pooled" if season is not None and core.seasonal else "")
            # psi of the steps after the trailing gap, renormalised below by the caller's draws
            out[i] = (core.mean[trailing:], core.sd[trailing:], core.psi[:h], core.nonneg, method)
    return out


def _intermittent(obs: np.ndarray, h: int, trailing: int):
    steps = h + trailing
    last = obs[-M:]
    sd = np.full(steps, float(np.std(last, ddof=1)) if len(last) > 1 else 0.0)
    psi = np.r_[1.0, np.zeros(steps - 1)]
    mean = np.full(steps, float(np.mean(last)))
    return mean[trailing:], sd[trailing:], psi[:h], True, "intermittent_mean"


def _driver_fits(y: np.ndarray, x: np.ndarray, lag: int, rows) -> dict[int, np.ndarray | None]:
    """OLS coefficients (a, b1, b2) of y_t on x_{t-lag}, x_{t-lag-1} for ``rows`` of ``y``
    and ``x`` (shape (k, t)), keyed by row; None where a row has fewer than 8 usable months.

    The lagged regressors and their masks are built for all rows at once; each row keeps
    its own least squares (LAPACK on that row's values alone).
    """
    t = y.shape[1]
    if t <= lag + 1:
        return dict.fromkeys(rows)
    x1 = np.full((len(rows), t), np.nan)
    x1[:, lag:] = x[rows, : t - lag]
    x2 = np.full((len(rows), t), np.nan)
    x2[:, lag + 1 :] = x[rows, : t - lag - 1]
    yr = y[rows]
    ok = np.isfinite(yr) & np.isfinite(x1) & np.isfinite(x2)
    count = ok.sum(axis=1)
    out: dict[int, np.ndarray | None] = {}
    for j, i in enumerate(rows):
        if count[j] < 8:
            out[i] = None
            continue
        design = np.empty((count[j], 3))
        design[:, 0] = 1.0
        design[:, 1] = x1[j, ok[j]]
        design[:, 2] = x2[j, ok[j]]
        out[i] = np.linalg.lstsq(design, yr[j, ok[j]], rcond=None)[0]
    return out


def _driver_means(
    y: np.ndarray, x: np.ndarray, lag: int, h: int, first_month: int, season_x, rows
) -> dict[int, np.ndarray]:
    """Driver-model means (length h) of ``rows``, keyed by row; rows without one are left out.

    ``y``, ``x`` have shape (k, t); the driver's own forecasts of all rows run in one
    batched :func:`univariate_many` call.
    """
    rows = [i for i in rows if np.isfinite(x[i, -1])]
    coefs = {i: c for i, c in _driver_fits(y, x, lag, rows).items() if c is not None}
    idx = list(coefs)
    sx = None if season_x is None else season_x[idx]
    x_fc = univariate_many(x[idx], h, first_month, sx) if idx else []
    t = y.shape[1]
    steps = np.arange(t, t + h)
    out = {}
    for i, (fc, *_) in zip(idx, x_fc, strict=True):
        coef, ext = coefs[i], np.r_[x[i], fc]
        out[i] = coef[0] + coef[1] * ext[steps - lag] + coef[2] * ext[steps - lag - 1]
    return out


def forecast_block(
    values: np.ndarray,
    h: int,
    first_month: int,
    seasons: np.ndarray | None,
    drivers: np.ndarray | None = None,
    lag: int = 0,
    driver_seasons: np.ndarray | None = None,
    choice: np.ndarray | None = None,
) -> list[dict]:
    """Forecast every row of ``values`` (shape (k, T), one calendar) ``h`` steps ahead.

    Returns one dict per row: ``mean``, ``sd``, ``psi`` (arrays of length h), ``nonneg``,
    ``method`` and ``choice``: the model used, ``univariate``, ``driver`` or ``combo`` (their
    mean). The univariate fits, the driver forecasts and each origin of the rolling-origin
    choice run batched across rows; every row gets the figures it would get alone.

    ``choice`` (one of those names per row, or None to choose) imposes a model instead
    of the rolling-origin choice: a calibration window forecasts with the model the
    review's own forecast chose, fitted on the window's months. Chosen on its own, a
    window of under two years chose the univariate model (the choice needs 24 months),
    while the review, with more history, used the driver: the windows measured the error
    of a model the review did not use (the sample's revenue, which follows its contracts,
    held 87% of realised years inside its 80% intervals). A row whose driver model cannot
    be fitted keeps its univariate forecast.
    """
    out = []
    for mean, sd, psi, nonneg, method in univariate_many(values, h, first_month, seasons):
        out.append({"mean": mean, "sd": sd, "psi": psi, "nonneg": nonneg, "method": method,
                    "choice": "univariate"})  # fmt: skip
    if drivers is None or lag < 1:
        return out
    rows = [i for i in range(values.shape[0]) if np.isfinite(values[i, -1])]
    if choice is None:
        chosen = _select(values, drivers, lag, first_month, seasons, driver_seasons, h, rows)
    else:
        rows = [i for i in rows if choice[i] != "univariate"]
        dmean = _driver_means(values, drivers, lag, h, first_month, driver_seasons, rows)
        chosen = {i: (choice[i], d) for i, d in dmean.items()}
    for i, (name, dmean) in chosen.items():
        row = out[i]
        if name == "driver":
            row["mean"], row["method"] = dmean, f"driver(lag {lag})"
        elif name == "combo":
            row["mean"] = (row["mean"] + dmean) / 2
            row["method"] = f"mean(univariate,driver(lag {lag}))"
        row["choice"] = name
        if row["nonneg"]:
            row["mean"] = np.maximum(row["mean"], 0.0)
    return out


def _select(y, x, lag, first_month, s, sx, h, rows) -> dict[int, tuple[str, np.ndarray]]:
    """Rolling-origin choice between univariate, driver and their mean (MAE), per row.

    Returns ``row -> (name, driver mean)`` for the rows where the driver model or the
    mean wins; every origin's forecasts of all rows run in one batched call each.
    """
    dmean = _driver_means(y, x, lag, h, first_month, sx, rows)
    live = list(dmean)
    bh = min(h, 3)
    errs: dict[int, dict[str, list]] = {
        i: {"univariate": [], "driver": [], "combo": []} for i in live
    }
    t = y.shape[1]
    for k in range(_SELECT_ORIGINS):
        cut = t - bh - k
        if cut < 24 or not live:
            break
        u = univariate_many(y[live, :cut], bh, first_month, None if s is None else s[live])
        d = _driver_means(y[:, :cut], x[:, :cut], lag, bh, first_month, sx, live)
        for i, (ui, *_) in zip(live, u, strict=True):
            if i not in d:
                continue
            actual = y[i, cut : cut + bh]
            errs[i]["univariate"].append(np.abs(ui - actual))
            errs[i]["driver"].append(np.abs(d[i] - actual))
            errs[i]["combo"].append(np.abs((ui + d[i]) / 2 - actual))
        # a row whose driver model cannot be fitted at an origin keeps its univariate model
        live = [i for i in live if i in d]
    chosen = {}
    for i in live:
        if not errs[i]["driver"]:
            continue
        score = {key: float(np.nanmean(np.concatenate(v))) for key, v in errs[i].items()}
        best = min(score, key=score.get)
        if best != "univariate":
            chosen[i] = (best, dmean[i])
    return chosen
