"""Accuracy measures and rolling-origin backtests (re-exported by :mod:`perflink.forecast`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink.errors import InputError, ParamsError
from perflink.forecast import _models as _fm
from perflink.forecast._series import forecast_series


def _as_1d(x, what: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"accuracy: {what} must be numeric, got {type(x).__name__}.") from exc
    if arr.ndim != 1:
        raise InputError(f"accuracy: {what} must be one-dimensional, got shape {arr.shape}.")
    return arr


def accuracy(actual, forecast, insample, season_length: int) -> dict[str, float]:
    """sMAPE and MASE of one forecast, as in the M3/M4 competitions.

    Parameters
    ----------
    actual, forecast : array-like, shape (h,)
        Realised values and point forecasts for the same periods (any unit).
    insample : array-like
        The history the forecast was made from (NaN ignored), for the MASE scale.
    season_length : int
        Lag of the seasonal-naive scale (12 monthly, 4 quarterly, 1 none); lag 1 is
        used when the history has fewer than ``season_length + 1`` values.

    Returns
    -------
    dict
        ``smape``: mean of ``200 |y - f| / (|y| + |f|)`` in percent (a point with
        ``y == f == 0`` counts 0); ``mase``: mean ``|y - f|`` divided by the in-sample
        seasonal-naive MAE (NaN when that MAE is 0 or the history has < 2 values).
    """
    a, f = _as_1d(actual, "actual"), _as_1d(forecast, "forecast")
    ins = _as_1d(insample, "insample")
    if len(a) != len(f) or len(a) == 0:
        raise InputError(
            f"accuracy: actual and forecast must have the same non-zero length, "
            f"got {len(a)} and {len(f)}."
        )
    if isinstance(season_length, bool) or not isinstance(season_length, int | np.integer):
        raise ParamsError(f"accuracy: season_length must be an integer, got {season_length!r}.")
    if season_length < 1:
        raise ParamsError(f"accuracy: season_length must be >= 1, got {season_length}.")
    err = np.abs(a - f)
    denom = np.abs(a) + np.abs(f)
    terms = np.divide(200.0 * err, denom, out=np.zeros_like(err), where=denom > 0)
    ins = ins[~np.isnan(ins)]
    lag = season_length if len(ins) > season_length else 1
    scale = float(np.mean(np.abs(ins[lag:] - ins[:-lag]))) if len(ins) > lag else np.nan
    mase = float(np.mean(err) / scale) if scale and np.isfinite(scale) else np.nan
    return {"smape": float(np.mean(terms)), "mase": mase}


def backtest_series(
    y: pd.Series,
    horizon: int,
    *,
    season_length: int | None = None,
    n_origins: int = 3,
) -> pd.DataFrame:
    """Rolling-origin backtest of :func:`perflink.forecast.forecast_series` on ``y``.

    Origins are the last ``n_origins`` positions that still leave ``horizon`` actuals
    after them, one period apart; the history before each origin is forecast.

    Parameters
    ----------
    y : pandas.Series
        As in :func:`perflink.forecast.forecast_series`.
    horizon : int
        Steps forecast from each origin, >= 1.
    season_length : int, optional
        As in :func:`perflink.forecast.forecast_series`.
    n_origins : int
        Number of origins wanted, >= 1; fewer are used when the series is short.

    Returns
    -------
    pandas.DataFrame
        One row per origin and step: ``origin`` (index label of the last training
        value), ``step`` (1..horizon), ``period`` (label forecast), ``actual``,
        ``forecast`` (the published method), ``snaive`` (seasonal naive),
        ``lo_80, hi_80, lo_95, hi_95``, ``method``.

    Raises
    ------
    InputError
        Fewer than ``horizon + 1`` values (no origin possible), or bad ``y`` as in
        :func:`perflink.forecast.forecast_series`.
    ParamsError
        ``horizon`` or ``n_origins`` < 1.
    """

    if isinstance(n_origins, bool) or not isinstance(n_origins, int | np.integer) or n_origins < 1:
        raise ParamsError(f"backtest_series: n_origins must be an integer >= 1, got {n_origins!r}.")
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ParamsError(f"backtest_series: horizon must be an integer >= 1, got {horizon!r}.")
    n = len(y)
    if n < horizon + 1:
        raise InputError(
            f"backtest_series: series {y.name!r} has {n} values; a backtest with horizon "
            f"{horizon} needs at least {horizon + 1}. Shorten the horizon."
        )
    first_cut = max(1, n - horizon - n_origins + 1)
    frames = []
    for cut in range(first_cut, n - horizon + 1):
        train = y.iloc[:cut]
        fc = forecast_series(train, horizon, season_length=season_length)
        m = fc.attrs["season_length"]
        hist = train.to_numpy(dtype=float, na_value=np.nan)
        hist = hist[~np.isnan(hist)]
        snaive = _fm.seasonal_naive(hist, horizon, m) if len(hist) else np.full(horizon, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "origin": [y.index[cut - 1]] * horizon,
                    "step": np.arange(1, horizon + 1),
                    "period": list(y.index[cut : cut + horizon]),
                    "actual": y.iloc[cut : cut + horizon].to_numpy(dtype=float, na_value=np.nan),
                    "forecast": fc["mean"].to_numpy(),
                    "snaive": snaive,
                    "lo_80": fc["lo_80"].to_numpy(),
                    "hi_80": fc["hi_80"].to_numpy(),
                    "lo_95": fc["lo_95"].to_numpy(),
                    "hi_95": fc["hi_95"].to_numpy(),
                    "method": fc.attrs["method"],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
