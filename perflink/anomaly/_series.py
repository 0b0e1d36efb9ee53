"""Anomaly detection on single series (the engine below the panel code; see :mod:`perflink.anomaly`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink.anomaly._core import KIND_NAMES, Settings, detect_block, nanmedian_last
from perflink.errors import InputError, ParamsError

__all__ = ["COLUMNS", "detect_frame", "detect_series"]

#: Columns of a per-series result, in order.
COLUMNS = ("expected", "lower", "upper", "score", "is_anomaly", "kind")

_MIN_POINTS = 6
_EXTRA_POINTS = 3
_SETTINGS = Settings()


def detect_series(y: pd.Series, *, season_length: int | None = None) -> pd.DataFrame:
    """Flag unusual points of one series: spikes, level shifts and trend breaks.

    Parameters
    ----------
    y : pandas.Series
        Numeric values (any unit), ordered in time, NaN for missing periods.
        A monthly ``PeriodIndex`` implies a season of 12, a quarterly one 4;
        a monthly or quarterly ``DatetimeIndex`` with a frequency works too.
    season_length : int, optional
        Points per seasonal cycle (1 = no seasonality). Required when the index
        does not say the frequency.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``y``, columns:

        - ``expected`` (float, unit of ``y``): the model's value (trend + season);
          given at missing points too;
        - ``lower``, ``upper`` (float): the band outside which a point is a spike;
        - ``score`` (float): signed robust z, the residual over 1.4826 * MAD of
          the residuals, or at a level-shift flag the shift test's z;
          NaN at missing points;
        - ``is_anomaly`` (bool): flagged; never at a missing point;
        - ``kind`` (object): ``"spike"``, ``"level_shift"``, ``"trend_break"`` or None.
          A level-shift or trend-break flag sits at the first point of the new
          level and may lie inside ``[lower, upper]``.

        ``attrs["method"]`` names the method (see module docstring) and
        ``attrs["season_length"]`` the season used.

    Raises
    ------
    InputError
        ``y`` is not a numeric Series, or its index has duplicates.
    ParamsError
        ``season_length`` is missing for an index without a frequency, or not a
        positive integer.
    """
    if not isinstance(y, pd.Series):
        raise InputError(
            f"detect_series expects a pandas Series, got {type(y).__name__}; "
            "pass one column, e.g. df['value']."
        )
    name = y.name if y.name is not None else "series"
    values = _numeric_values(y, name)
    _check_index(y.index, name)
    season = _season_for(y.index, season_length, name)
    out, method = _detect_matrix(values[None, :], season)
    frame = _to_frame(out, 0, y.index)
    frame.attrs["method"] = str(method[0])
    frame.attrs["season_length"] = season
    return frame


def detect_frame(wide: pd.DataFrame, *, season_length: int | None = None) -> pd.DataFrame:
    """Score many series of equal length at once (one column per series).

    Same model and results as calling :func:`detect_series` on each column, in
    one vectorised pass: about 0.2 ms per 48-month series against about 1.2 ms
    for a :func:`detect_series` call (``benchmarks/anomaly_bench.py``).

    Parameters
    ----------
    wide : pandas.DataFrame
        Rows = periods (index as for :func:`detect_series`), columns = series
        (e.g. ``(entity_id, metric_id)``); numeric, NaN for missing.
    season_length : int, optional
        As for :func:`detect_series`.

    Returns
    -------
    pandas.DataFrame
        Long table, one row per (series, period): columns ``series`` (the column
        label of ``wide``), ``period`` (the index value), ``value``, then
        ``expected, lower, upper, score, is_anomaly, kind`` as in
        :func:`detect_series`, and ``method``.

    Raises
    ------
    InputError
        Non-numeric column, duplicate index or duplicate column labels.
    ParamsError
        As for :func:`detect_series`.
    """
    if not isinstance(wide, pd.DataFrame):
        raise InputError(
            f"detect_frame expects a wide pandas DataFrame, got {type(wide).__name__}."
        )
    if wide.columns.has_duplicates:
        dup = wide.columns[wide.columns.duplicated()][0]
        raise InputError(f"detect_frame: column {dup!r} appears twice; one column per series.")
    _check_index(wide.index, "wide")
    season = _season_for(wide.index, season_length, "wide")
    for col, dtype in zip(wide.columns, wide.dtypes, strict=True):
        if not _is_numeric(dtype):
            _numeric_values(wide[col], col)  # raises with the column name
    mat = wide.to_numpy(dtype=float, na_value=np.nan).reshape(len(wide), wide.shape[1])
    if np.isinf(mat).any():
        row, col = np.argwhere(np.isinf(mat))[0]
        raise InputError(
            f"detect_frame: infinite value in column {wide.columns[col]!r} at "
            f"{wide.index[row]!r}; replace it by NaN."
        )
    out, method = _detect_matrix(mat.T, season)
    n_s, n = out["expected"].shape
    kinds = np.array([KIND_NAMES[k] for k in range(4)], dtype=object)
    result = pd.DataFrame(
        {
            "series": np.repeat(np.asarray(wide.columns, dtype=object), n),
            "period": wide.index.take(np.tile(np.arange(n), n_s)),
            "value": mat.T.reshape(-1),
            **{c: out[c].reshape(-1) for c in ("expected", "lower", "upper", "score")},
            "is_anomaly": out["is_anomaly"].reshape(-1).astype(bool),
            "kind": kinds[out["kind"].reshape(-1)],
            "method": np.repeat(method, n),
        }
    )
    result.attrs["season_length"] = season
    return result


def _is_numeric(dtype: object) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _numeric_values(y: pd.Series, name: object) -> np.ndarray:
    if not _is_numeric(y.dtype):
        bad = next((v for v in y if not isinstance(v, (int, float, np.number))), y.dtype)
        raise InputError(
            f"series {name!r}: values must be numeric, got dtype {y.dtype} "
            f"(e.g. {bad!r}); convert with pd.to_numeric(..., errors='coerce') first."
        )
    vals = y.to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(vals).any():
        pos = y.index[np.isinf(vals)][0]
        raise InputError(f"series {name!r}: infinite value at {pos!r}; replace it by NaN.")
    return vals


def _check_index(index: pd.Index, name: object) -> None:
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        raise InputError(
            f"series {name!r}: index value {dup!r} appears more than once; "
            "aggregate to one value per period first."
        )


def _season_for(index: pd.Index, season_length: int | None, name: object) -> int:
    if season_length is not None:
        if isinstance(season_length, bool) or not isinstance(season_length, (int, np.integer)):
            raise ParamsError(
                f"season_length must be a positive integer, got {season_length!r} for {name!r}."
            )
        if season_length < 1:
            raise ParamsError(
                f"season_length must be >= 1 (1 = no seasonality), got {season_length} for {name!r}."
            )
        return int(season_length)
    freq = None
    if isinstance(index, pd.PeriodIndex):
        freq = index.freqstr
    elif isinstance(index, pd.DatetimeIndex):
        freq = index.freqstr or (pd.infer_freq(index) if len(index) >= 3 else None)
    base = (freq or "").upper().split("-")[0]
    if base in {"M", "MS", "ME", "BM", "BMS", "BME"}:
        return 12
    if base in {"Q", "QS", "QE", "BQ", "BQS", "BQE"}:
        return 4
    raise ParamsError(
        f"series {name!r}: cannot infer the season length from a {type(index).__name__} "
        f"(frequency {freq!r}); use a monthly or quarterly PeriodIndex or pass "
        "season_length=12 (monthly), 4 (quarterly) or 1 (no seasonality)."
    )


def _detect_matrix(y: np.ndarray, season: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run the right method on each row; rows are grouped by method."""
    n_s, n = y.shape
    n_obs = np.sum(~np.isnan(y), axis=1)
    seasonal_ok = (season > 1) & (n_obs >= 2 * season + _EXTRA_POINTS)
    method = np.where(
        n_obs < _MIN_POINTS,
        "insufficient_history",
        np.where(seasonal_ok, "robust_seasonal", "short_series_mad"),
    )
    if season == 1:
        method = np.where(method == "robust_seasonal", "short_series_mad", method)
    out = {
        "expected": np.full((n_s, n), np.nan),
        "lower": np.full((n_s, n), np.nan),
        "upper": np.full((n_s, n), np.nan),
        "score": np.full((n_s, n), np.nan),
        "is_anomaly": np.zeros((n_s, n), dtype=bool),
        "kind": np.zeros((n_s, n), dtype=int),
    }
    for name, s in (("robust_seasonal", season), ("short_series_mad", 1)):
        rows = np.flatnonzero(method == name)
        if rows.size:
            res = detect_block(y[rows], s, _SETTINGS)
            for key in out:
                out[key][rows] = res[key]
    rows = np.flatnonzero(method == "insufficient_history")
    if rows.size:
        with np.errstate(all="ignore"):
            med = nanmedian_last(y[rows]) if n else np.zeros(rows.size)
        out["expected"][rows] = med[:, None]
    return out, method


def _to_frame(out: dict[str, np.ndarray], row: int, index: pd.Index) -> pd.DataFrame:
    kinds = np.array([KIND_NAMES[k] for k in range(4)], dtype=object)
    return pd.DataFrame(
        {
            "expected": out["expected"][row],
            "lower": out["lower"][row],
            "upper": out["upper"][row],
            "score": out["score"][row],
            "is_anomaly": out["is_anomaly"][row].astype(bool),
            "kind": kinds[out["kind"][row]],
        },
        index=index,
    )
