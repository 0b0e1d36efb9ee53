"""Forecast one series (the engine below the panel code; see :mod:`perflink.forecast`)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from perflink.errors import InputError, ParamsError
from perflink.forecast import _models as _fm

__all__ = ["forecast_paths", "forecast_series"]


def _season_from_offset(freq) -> int | None:
    off = pd.tseries.offsets
    if isinstance(
        freq, off.MonthEnd | off.MonthBegin | off.BusinessMonthEnd | off.BusinessMonthBegin
    ):
        return 12 if freq.n == 1 else None
    if isinstance(freq, off.QuarterEnd | off.QuarterBegin | off.BQuarterEnd | off.BQuarterBegin):
        return 4 if freq.n == 1 else None
    if isinstance(freq, off.YearEnd | off.YearBegin | off.BYearEnd | off.BYearBegin):
        return 1
    return None


def _datetime_freq(idx: pd.DatetimeIndex):
    if idx.freq is not None:
        return idx.freq
    if len(idx) < 3:
        return None
    try:
        return pd.DatetimeIndex(idx, freq="infer").freq
    except ValueError:
        return None


def _check_options(horizon, season_length, levels) -> tuple[float, ...]:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ParamsError(f"forecast: horizon must be an integer >= 1, got {horizon!r}.")
    if season_length is not None and (
        isinstance(season_length, bool)
        or not isinstance(season_length, int | np.integer)
        or season_length < 1
    ):
        raise ParamsError(
            f"forecast: season_length must be an integer >= 1 (1 = no seasonality), "
            f"got {season_length!r}."
        )
    if isinstance(levels, str) or not isinstance(levels, Iterable):
        raise ParamsError(f"forecast: levels must be a list of percentages, got {levels!r}.")
    out = []
    for lv in levels:
        if isinstance(lv, bool) or not isinstance(lv, int | float | np.number) or not 0 < lv < 100:
            raise ParamsError(
                f"forecast: each interval level must be a percentage strictly between 0 and "
                f"100 (e.g. 80, 95), got {lv!r}."
            )
        out.append(float(lv))
    return tuple(out)


def _prepare(y, horizon: int, season_length: int | None):
    """Validate ``y``; return (values with NaN, future index, season length)."""
    if not isinstance(y, pd.Series):
        raise InputError(f"forecast: y must be a pandas Series, got {type(y).__name__}.")
    name = f"series {y.name!r}" if y.name is not None else "series"
    if pd.api.types.is_bool_dtype(y.dtype) or not pd.api.types.is_numeric_dtype(y.dtype):
        raise InputError(
            f"forecast: {name} has non-numeric dtype {y.dtype}; convert it with "
            f"pd.to_numeric(y, errors='coerce') first."
        )
    idx = y.index
    if idx.has_duplicates:
        dup = idx[idx.duplicated()][0]
        raise InputError(f"forecast: {name} has a duplicate index label {dup!r}; aggregate first.")
    if not idx.is_monotonic_increasing:
        raise InputError(f"forecast: {name} index is not sorted; use y.sort_index() first.")
    values = y.to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(values).any():
        pos = int(np.flatnonzero(np.isinf(values))[0])
        raise InputError(
            f"forecast: {name} has an infinite value at {idx[pos]!r}; replace it with NaN."
        )

    if isinstance(idx, pd.PeriodIndex):
        m = season_length or _season_from_offset(idx.freq)
        if m is None:
            raise ParamsError(
                f"forecast: cannot infer the season length of {name} from frequency "
                f"{idx.freqstr!r}; pass season_length= (1 = none)."
            )
        if len(idx):
            full = pd.period_range(idx[0], idx[-1], freq=idx.freq)
            if len(full) != len(idx):  # missing periods become NaN, filled below
                values = y.reindex(full).to_numpy(dtype=float, na_value=np.nan)
            future = pd.period_range(idx[-1] + 1, periods=horizon, freq=idx.freq)
        else:  # nothing to continue from: positions, documented under Returns
            future = pd.RangeIndex(0, horizon)
        return values, future, m

    if isinstance(idx, pd.DatetimeIndex):
        freq = _datetime_freq(idx)
        m = season_length or (_season_from_offset(freq) if freq is not None else None)
        if m is None:
            raise ParamsError(
                f"forecast: cannot infer a frequency/season length for {name} "
                f"(DatetimeIndex freq={freq!r}); pass season_length= (1 = none)."
            )
        if freq is not None and len(idx):
            future = pd.date_range(idx[-1] + freq, periods=horizon, freq=freq)
        else:
            future = pd.RangeIndex(len(idx), len(idx) + horizon)
        return values, future, m

    if season_length is None:
        raise ParamsError(
            f"forecast: {name} has a {type(idx).__name__} without a frequency; pass "
            f"season_length= (12 monthly, 4 quarterly, 1 none) or use a PeriodIndex."
        )
    return values, pd.RangeIndex(len(idx), len(idx) + horizon), season_length


def _clean(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Drop leading NaN, interpolate inner NaN; return (observed, trailing NaN count)."""
    ok = np.flatnonzero(~np.isnan(values))
    if len(ok) == 0:
        return np.array([], dtype=float), 0
    trailing = len(values) - 1 - int(ok[-1])
    v = values[ok[0] : ok[-1] + 1]
    nan = np.isnan(v)
    if nan.any():
        x = np.arange(len(v))
        v = v.copy()
        v[nan] = np.interp(x[nan], x[~nan], v[~nan])
    return v, trailing


def _core(y, horizon, season_length, levels):
    levels = _check_options(horizon, season_length, levels)
    values, future, m = _prepare(y, horizon, season_length)
    obs, trailing = _clean(values)
    core = _fm.forecast_core(obs, horizon + trailing, m)
    return core, trailing, future, m, levels, len(obs)


def forecast_series(
    y: pd.Series,
    horizon: int,
    *,
    season_length: int | None = None,
    levels: Iterable[float] = (80, 95),
) -> pd.DataFrame:
    """Forecast the next ``horizon`` periods of one series with prediction intervals.

    Parameters
    ----------
    y : pandas.Series
        Numeric values (any unit) in time order. Index: a monthly / quarterly / yearly
        ``PeriodIndex`` (season length 12 / 4 / 1 inferred; missing periods are treated
        as NaN), a ``DatetimeIndex`` with a set or inferable frequency (monthly,
        quarterly, yearly inferred; otherwise give ``season_length``), or any other
        sorted index with ``season_length`` given.
    horizon : int
        Number of future periods, >= 1.
    season_length : int, optional
        Periods per season (1 = no seasonality). Overrides the inferred one.
    levels : iterable of float
        Central interval levels in percent, each strictly between 0 and 100.

    Returns
    -------
    pandas.DataFrame
        Indexed by the next ``horizon`` periods (``PeriodIndex``; ``DatetimeIndex``
        continued by its frequency; otherwise a ``RangeIndex`` continuing after the
        last position; ``RangeIndex(0, horizon)`` for an empty ``y``), columns ``mean`` then ``lo_{L}``, ``hi_{L}`` per level (same
        unit as ``y``). ``attrs``: ``method``, ``n_obs`` (observed values used),
        ``season_length``, ``seasonal`` (test passed), ``scale`` (per-step scale of the
        Student-t error, list; sd = scale * sqrt(df / (df - 2))) and ``df``.

    Raises
    ------
    ParamsError
        ``horizon < 1``, a level outside (0, 100), a bad ``season_length``, or no
        inferable season length.
    InputError
        ``y`` not a numeric Series, unsorted or duplicate index, infinite values.
    """
    core, trailing, future, m, levels, n_obs = _core(y, horizon, season_length, levels)
    mean, sd = core.mean[trailing:], core.sd[trailing:]
    out = {"mean": mean}
    for lv in levels:
        z = _fm.interval_z(lv)
        lo, hi = mean - z * sd, mean + z * sd
        if core.nonneg:
            lo, hi = np.maximum(lo, 0.0), np.maximum(hi, 0.0)
        key = f"{lv:g}"
        out[f"lo_{key}"], out[f"hi_{key}"] = lo, hi
    df = pd.DataFrame(out, index=future)
    df.attrs.update(
        method=core.method,
        n_obs=n_obs,
        season_length=m,
        seasonal=core.seasonal,
        scale=[float(s) for s in sd],
        df=_fm.T_DF,
    )
    return df


def forecast_paths(
    y: pd.Series,
    horizon: int,
    *,
    n_paths: int = 1000,
    season_length: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Sample future paths consistent with :func:`forecast_series` intervals.

    Paths are multivariate Student t: ``mean + scale_h * (L z)_h / sqrt(w / df)`` with
    ``z`` standard normal, ``L`` the damped-trend state-space error correlation
    (rows normalised) and one ``w ~ chi2(df)`` per path, so each step's marginal is
    exactly the t distribution behind the intervals of :func:`forecast_series` (same
    quantiles; clipped at 0 when the series is non-negative), and sums over steps
    (e.g. a full-year total) carry the error correlation of the model.

    Parameters
    ----------
    y, horizon, season_length
        As in :func:`forecast_series`.
    n_paths : int
        Number of paths, >= 1.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same paths.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_paths, horizon)``, in the unit of ``y``; all NaN when ``y`` has no
        observations.
    """
    if isinstance(n_paths, bool) or not isinstance(n_paths, int | np.integer) or n_paths < 1:
        raise ParamsError(f"forecast_paths: n_paths must be an integer >= 1, got {n_paths!r}.")
    core, trailing, _future, _m, _lv, _n = _core(y, horizon, season_length, (80,))
    h = horizon + trailing
    psi = core.psi
    # Error at step k = sum_{j<=k} psi[k-j] * eps_j; rows normalised to unit variance,
    # then scaled by the published scale so the marginals match the intervals exactly.
    lower = np.zeros((h, h))
    for k in range(h):
        lower[k, : k + 1] = psi[: k + 1][::-1]
    lower /= np.sqrt(np.sum(lower**2, axis=1, keepdims=True))
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n_paths, h))
    mix = np.sqrt(rng.chisquare(_fm.T_DF, size=(n_paths, 1)) / _fm.T_DF)
    paths = core.mean + (eps @ lower.T) / mix * core.sd
    if core.nonneg:
        paths = np.maximum(paths, 0.0)
    return paths[:, trailing:]
