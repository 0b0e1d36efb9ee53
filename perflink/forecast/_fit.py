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
"""

from __future__ import annotations

import numpy as np

from perflink.forecast import _models as _fm
from perflink.forecast._season import rotate

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
    obs, first, trailing = clean(values)
    steps = h + trailing
    n = len(obs)
    if n >= 4 and np.mean(obs == 0) >= _ZERO_SHARE:
        last = obs[-M:]
        sd = np.full(steps, float(np.std(last, ddof=1)) if len(last) > 1 else 0.0)
        psi = np.r_[1.0, np.zeros(steps - 1)]
        mean = np.full(steps, float(np.mean(last)))
        return mean[trailing:], sd[trailing:], psi[:h], True, "intermittent_mean"
    season = None
    if season_cal is not None:
        season = rotate(season_cal, (first_month - 1 + first) % M + 1)
    core = _fm.forecast_core(obs, steps, M, season=season)
    method = core.method + ("+pooled" if season is not None and core.seasonal else "")
    # psi of the steps after the trailing gap, renormalised below by the caller's draws
    return core.mean[trailing:], core.sd[trailing:], core.psi[:h], core.nonneg, method


def _driver_fit(y: np.ndarray, x: np.ndarray, lag: int) -> np.ndarray | None:
    """OLS coefficients (a, b1, b2) of y_t on x_{t-lag}, x_{t-lag-1}; None if too short."""
    t = len(y)
    if t <= lag + 1:
        return None
    x1 = np.r_[np.full(lag, np.nan), x[: t - lag]]
    x2 = np.r_[np.full(lag + 1, np.nan), x[: t - lag - 1]]
    ok = np.isfinite(y) & np.isfinite(x1) & np.isfinite(x2)
    if ok.sum() < 8:
        return None
    design = np.c_[np.ones(ok.sum()), x1[ok], x2[ok]]
    coef, *_ = np.linalg.lstsq(design, y[ok], rcond=None)
    return coef


def _driver_mean(
    y: np.ndarray, x: np.ndarray, lag: int, h: int, first_month: int, season_x
) -> np.ndarray | None:
    coef = _driver_fit(y, x, lag)
    if coef is None or not np.isfinite(x[-1]):
        return None
    x_fc, *_ = univariate(x, h, first_month, season_x)
    ext = np.r_[x, x_fc]
    t = len(y)
    steps = np.arange(t, t + h)
    return coef[0] + coef[1] * ext[steps - lag] + coef[2] * ext[steps - lag - 1]


def forecast_block(
    values: np.ndarray,
    h: int,
    first_month: int,
    seasons: np.ndarray | None,
    drivers: np.ndarray | None = None,
    lag: int = 0,
    driver_seasons: np.ndarray | None = None,
) -> list[dict]:
    """Forecast every row of ``values`` (shape (k, T), one calendar) ``h`` steps ahead.

    Returns one dict per row: ``mean``, ``sd``, ``psi`` (arrays of length h), ``nonneg``,
    ``method``.
    """
    out = []
    for i in range(values.shape[0]):
        y = values[i]
        s = None if seasons is None else seasons[i]
        mean, sd, psi, nonneg, method = univariate(y, h, first_month, s)
        if drivers is not None and lag >= 1 and np.isfinite(y[-1]):
            sx = None if driver_seasons is None else driver_seasons[i]
            choice = _select(y, drivers[i], lag, first_month, s, sx, h)
            if choice is not None:
                name, dmean = choice
                if name == "driver":
                    mean, method = dmean, f"driver(lag {lag})"
                elif name == "combo":
                    mean, method = (mean + dmean) / 2, f"mean(univariate,driver(lag {lag}))"
                if nonneg:
                    mean = np.maximum(mean, 0.0)
        out.append({"mean": mean, "sd": sd, "psi": psi, "nonneg": nonneg, "method": method})
    return out


def _select(y, x, lag, first_month, s, sx, h):
    """Rolling-origin choice between univariate, driver and their mean (MAE)."""
    dmean = _driver_mean(y, x, lag, h, first_month, sx)
    if dmean is None:
        return None
    bh = min(h, 3)
    errs = {"univariate": [], "driver": [], "combo": []}
    t = len(y)
    for k in range(_SELECT_ORIGINS):
        cut = t - bh - k
        if cut < 24:
            break
        actual = y[cut : cut + bh]
        u, *_ = univariate(y[:cut], bh, first_month, s)
        d = _driver_mean(y[:cut], x[:cut], lag, bh, first_month, sx)
        if d is None:
            return None
        errs["univariate"].append(np.abs(u - actual))
        errs["driver"].append(np.abs(d - actual))
        errs["combo"].append(np.abs((u + d) / 2 - actual))
    if not errs["driver"]:
        return None
    score = {k: float(np.nanmean(np.concatenate(v))) for k, v in errs.items()}
    best = min(score, key=score.get)
    return (best, dmean) if best != "univariate" else None
