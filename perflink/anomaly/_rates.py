"""Calibrated tails of the series detector: flag rate <-> thresholds, score -> rarity (not API).

``SPIKE_TAIL`` and ``SHIFT_TAIL`` say how often each statistic of
:mod:`perflink.anomaly._core` reaches a threshold on real series: flags per 100
points of the 714 uninjected M3 monthly development series (they have genuine
outliers and breaks of their own, so the tails are far heavier than a normal's).
Half the series set the tables; the other half reproduce them within 15% up to
|z| = 8 (``benchmarks/anomaly_bench.py --tails`` prints them).  Quarterly series
(season 4) have their own tables, from the 378 M3 quarterly development series
(their level-shift test, with a pre window of one year = 4 points, fires about
4 times as often at the same z); other seasons use the monthly tables.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from perflink.anomaly._core import Settings

# Flags per 100 points on the uninjected M3 monthly development series at each
# threshold: |z_spike| above z (spike test), and flags of the level-shift test
# run at shift_z = z.  Measured by benchmarks/anomaly_bench.py --tails.
SPIKE_TAIL = np.array(
    [
        [2.5, 0.927],
        [3.0, 0.506],
        [3.5, 0.306],
        [4.0, 0.200],
        [5.0, 0.109],
        [6.0, 0.073],
        [8.0, 0.047],
        [10.0, 0.035],
        [15.0, 0.011],
        [20.0, 0.0056],
    ]
)
SHIFT_TAIL = np.array(
    [
        [4.0, 1.165],
        [4.5, 0.878],
        [5.0, 0.672],
        [6.0, 0.454],
        [7.0, 0.275],
        [8.0, 0.161],
        [10.0, 0.072],
        [12.0, 0.037],
        [15.0, 0.013],
        [20.0, 0.0042],
    ]
)
# The same for the 378 uninjected M3 quarterly development series (15,466 points; past
# |z| = 10 the spike table rests on two or three points).
SPIKE_TAIL_Q = np.array(
    [
        [2.5, 0.969],
        [3.0, 0.639],
        [3.5, 0.510],
        [4.0, 0.349],
        [5.0, 0.213],
        [6.0, 0.149],
        [8.0, 0.084],
        [10.0, 0.032],
        [15.0, 0.0129],
    ]
)
SHIFT_TAIL_Q = np.array(
    [
        [4.0, 3.84],
        [4.5, 3.08],
        [5.0, 2.46],
        [6.0, 1.52],
        [7.0, 0.924],
        [8.0, 0.633],
        [10.0, 0.342],
        [12.0, 0.200],
        [15.0, 0.084],
        [20.0, 0.039],
        [25.0, 0.019],
    ]
)
_TABLES = {12: (SPIKE_TAIL, SHIFT_TAIL), 4: (SPIKE_TAIL_Q, SHIFT_TAIL_Q)}
#: Share of a wanted flag rate given to the spike test (the rest goes to level shifts).
SPIKE_SHARE = 0.4
#: Flags per 100 points the default thresholds aim at.
DEFAULT_FLAG_RATE = 1.0


def _tail(table: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Flags per 100 points at |z|: log-linear between the table's points and beyond them."""
    lz, lr = np.log(table[:, 0]), np.log(table[:, 1])
    x = np.log(np.maximum(np.abs(np.asarray(z, dtype=float)), 1e-9))
    inner = np.interp(x, lz, lr)
    lo = lr[0] + (x - lz[0]) * (lr[1] - lr[0]) / (lz[1] - lz[0])
    hi = lr[-1] + (x - lz[-1]) * (lr[-1] - lr[-2]) / (lz[-1] - lz[-2])
    out = np.where(x < lz[0], lo, np.where(x > lz[-1], hi, inner))
    return np.minimum(np.exp(out), 100.0)


def _inverse_tail(table: np.ndarray, rate: float) -> float:
    """The |z| at which ``table`` gives ``rate`` flags per 100 points (log-linear)."""
    lz, lr = np.log(table[:, 0]), np.log(table[:, 1])
    x = math.log(rate)
    if x > lr[0]:
        k = 0
    elif x < lr[-1]:
        k = len(lr) - 2
    else:
        return float(np.exp(np.interp(x, lr[::-1], lz[::-1])))
    slope = (lz[k + 1] - lz[k]) / (lr[k + 1] - lr[k])
    return float(np.exp(lz[k] + (x - lr[k]) * slope))


def tail_rate(score: np.ndarray, kind: np.ndarray, season: np.ndarray | int = 12) -> np.ndarray:
    """How often a score at least this large comes on a series with no anomaly.

    Parameters
    ----------
    score : numpy.ndarray
        Scores (signed; |score| is used) of the series detector: the spike z, or
        for ``kind`` level_shift / trend_break the shift test's z.
    kind : numpy.ndarray
        Kind names per score (object); None or anything else uses the spike table.
    season : int or numpy.ndarray, default 12
        Season length of each score's series: 4 uses the quarterly tables, anything
        else the monthly ones.

    Returns
    -------
    numpy.ndarray
        Expected flags per 100 points at that threshold (``SPIKE_TAIL`` /
        ``SHIFT_TAIL`` or their quarterly twins, extrapolated log-linearly past their
        ends); NaN for NaN scores.
    """
    score = np.asarray(score, dtype=float)
    shift = np.isin(np.asarray(kind, dtype=object), ["level_shift", "trend_break"])
    quarterly = np.asarray(season) == 4
    monthly = np.where(shift, _tail(SHIFT_TAIL, score), _tail(SPIKE_TAIL, score))
    qtr = np.where(shift, _tail(SHIFT_TAIL_Q, score), _tail(SPIKE_TAIL_Q, score))
    return np.where(np.isnan(score), np.nan, np.where(quarterly, qtr, monthly))


@lru_cache(maxsize=64)  # one or two rates per run; Settings is frozen, so sharing is safe
def settings_for_rate(flag_rate: float = DEFAULT_FLAG_RATE, season: int = 12) -> Settings:
    """Detector settings that flag about ``flag_rate`` points per 100 of ordinary series.

    ``SPIKE_SHARE`` of the rate goes to the spike test, the rest to the level-shift
    test; each threshold is read off its tail table for ``season`` (4: quarterly,
    anything else: monthly).
    """
    if not (isinstance(flag_rate, (int, float)) and 0 < flag_rate <= 20):
        raise ValueError(f"flag_rate must be in (0, 20] flags per 100 points, got {flag_rate!r}")
    spike, shift = _TABLES.get(season, _TABLES[12])
    return Settings(
        spike_z=round(_inverse_tail(spike, SPIKE_SHARE * flag_rate), 3),
        shift_z=round(_inverse_tail(shift, (1 - SPIKE_SHARE) * flag_rate), 3),
    )
