"""The facts table as a dense (entity x metric x month) array, and per-series scoring (not API).

Everything the panel detectors do is vectorised over this cube, so the same code handles the
sample group and 2,000 units x 48 months.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perflink.anomaly._rates import settings_for_rate
from perflink.anomaly._series import detect_frame
from perflink.common import require_columns
from perflink.errors import InputError

_REQUIRED = ("entity_id", "period", "metric_id", "value")


@dataclass
class Cube:
    """Dense monthly values: ``values[e, m, t]`` (NaN = not reported)."""

    entities: np.ndarray  # (E,) entity ids
    metrics: list[str]  # (M,) metric ids
    periods: pd.PeriodIndex  # (T,) complete monthly range
    values: np.ndarray  # (E, M, T)
    quarter: np.ndarray  # indices of the review quarter's months in ``periods``

    def m(self, metric: str) -> int | None:
        """Index of ``metric`` or None when no unit reports it."""
        return self.metrics.index(metric) if metric in self.metrics else None

    def get(self, metric: str) -> np.ndarray:
        """(E, T) values of ``metric`` (all NaN when it is not reported)."""
        i = self.m(metric)
        if i is None:
            return np.full((len(self.entities), len(self.periods)), np.nan)
        return self.values[:, i, :]


def build_cube(facts: pd.DataFrame, quarter: pd.Period, *, exclude: tuple[str, ...]) -> Cube:
    """Pivot the facts table into a :class:`Cube` covering its months; checks the columns."""
    require_columns(facts, _REQUIRED, table="facts")
    if facts.empty:
        raise InputError("facts table is empty: nothing to score; check the facts input file.")
    if not isinstance(facts["period"].dtype, pd.PeriodDtype):
        raise InputError(
            f"facts column 'period' must be monthly pandas Periods, got dtype "
            f"{facts['period'].dtype}; load the table with perflink.load_inputs."
        )
    if not pd.api.types.is_numeric_dtype(facts["value"]):
        raise InputError(
            f"facts column 'value' must be numeric, got dtype {facts['value'].dtype}; "
            "convert with pd.to_numeric(..., errors='coerce')."
        )
    f = facts[~facts["metric_id"].isin(exclude)]
    ordinal = f["period"].array.asi8
    first, last = int(ordinal.min()), int(ordinal.max())
    periods = pd.PeriodIndex.from_ordinals(np.arange(first, last + 1), freq="M")
    e_codes, entities = pd.factorize(f["entity_id"], sort=True)
    m_codes, metrics = pd.factorize(f["metric_id"], sort=True)
    values = np.full((len(entities), len(metrics), len(periods)), np.nan)
    values[e_codes, m_codes, ordinal - first] = f["value"].to_numpy(dtype=float, na_value=np.nan)
    q_months = pd.period_range(quarter.asfreq("M", "s"), quarter.asfreq("M", "e"), freq="M")
    q_idx = np.flatnonzero(periods.isin(q_months))
    if q_idx.size == 0:
        raise InputError(
            f"the facts table covers {periods[0]}..{periods[-1]}, which holds no month of the "
            f"review quarter {quarter}; check `quarter:` in the params file or the facts file."
        )
    return Cube(np.asarray(entities, dtype=object), list(metrics), periods, values, q_idx)


@dataclass
class Scored:
    """Per-series detector output shaped like ``values`` of the scored array."""

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    flag: np.ndarray
    kind: np.ndarray  # object: spike / level_shift / trend_break / None
    method: np.ndarray  # object, one per series (shape of ``values`` without its last axis)


def score_series(
    y: np.ndarray, periods: pd.PeriodIndex, *, season: int | None, flag_rate: float
) -> Scored:
    """Run :func:`perflink.anomaly.detect_frame` on the rows of ``y`` (..., T).

    Rows that are all NaN are skipped. A level-shift flag's score is the shift test's z,
    which can be small at the first point of the new level; the residual z of the point
    (from the band) is used when it is larger (not for counts or quarterly rows, whose
    band is not symmetric in the data's unit or whose score is per quarter).
    """

    shape = y.shape
    flat = y.reshape(-1, shape[-1])
    rows = np.flatnonzero(np.isfinite(flat).any(axis=1))
    out = Scored(
        *(np.full(flat.shape, np.nan) for _ in range(4)),
        np.zeros(flat.shape, dtype=bool),
        np.full(flat.shape, None, dtype=object),
        np.full(flat.shape[0], "insufficient_history", dtype=object),
    )
    if rows.size:
        sub = np.where(np.isfinite(flat[rows]), flat[rows], np.nan)
        wide = pd.DataFrame(sub.T, index=periods, columns=np.arange(rows.size))
        res = detect_frame(wide, season_length=season, flag_rate=flag_rate)
        n = len(periods)
        out.method[rows] = res["method"].to_numpy(dtype=object)[::n]
        for name in ("expected", "lower", "upper", "score"):
            getattr(out, name)[rows] = res[name].to_numpy(dtype=float).reshape(rows.size, n)
        out.flag[rows] = res["is_anomaly"].to_numpy(dtype=bool).reshape(rows.size, n)
        out.kind[rows] = res["kind"].to_numpy(dtype=object).reshape(rows.size, n)
    band_z = settings_for_rate(flag_rate, season or 12).spike_z
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = (out.upper - out.lower) / (2 * band_z)
        resid_z = np.where(sd > 0, (flat - out.expected) / sd, np.nan)
    plain = np.isin(out.method, ["robust_seasonal", "short_series_mad"])[:, None]
    bigger = plain & (np.abs(np.nan_to_num(resid_z)) > np.abs(np.nan_to_num(out.score)))
    out.score = np.where(out.flag & bigger, resid_z, out.score)
    for name in ("expected", "lower", "upper", "score", "flag", "kind"):
        setattr(out, name, getattr(out, name).reshape(shape))
    out.method = out.method.reshape(shape[:-1])
    return out


def material(
    value: np.ndarray, expected: np.ndarray, is_rate: np.ndarray, *, rel: float, points: float
) -> np.ndarray:
    """True where ``value`` differs from ``expected`` by a material amount."""
    dev = np.abs(value - expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_dev = dev / np.abs(expected)
    return np.where(is_rate, dev >= points, np.nan_to_num(rel_dev, nan=np.inf) >= rel)


def nanmedian(a: np.ndarray, axis: int, *, keepdims: bool = False) -> np.ndarray:
    """np.nanmedian without the warning for all-NaN slices (they give NaN, as intended)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis, keepdims=keepdims)
