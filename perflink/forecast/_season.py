"""Seasonal indices pooled across similar series, for panel forecasting (not API).

Why: the per-series test of :mod:`perflink.forecast._models` (90% test on the ACF at
lag 12, the M3/M4 recipe) rarely passes on three years of monthly data, even when the
yearly pattern is strong. Business units of one business line and centre type share
their calendar (shops peak in Nov-Jan, plants dip in February, December bonuses raise
expenses), so the panel estimates one set of indices per group from all its members'
ratios to a centred 2x12 moving average, and tests it with a one-way ANOVA of those
ratios on the calendar month. A group of one series (a subsidiary or the group total)
is tested on its own ratios, which is still far more powerful than the ACF test with
36-48 months (the ANOVA uses all 12 positions, the ACF test one lag).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import fdtrc

#: Significance level of the ANOVA on month of year.
ALPHA: float = 0.01
_W = np.r_[0.5, np.ones(11), 0.5] / 12.0


def ratios_to_trend(values: np.ndarray) -> np.ndarray:
    """Ratio of each value to its trend: the centred 2x12 moving average, and in the first
    and last six months that average's first or last value carried along the row's average
    growth; NaN where undefined.

    Why the ends: without them 13-24 months give fewer than twelve calendar months of
    ratios, so a forecast made early in a short history (a calibration year) has no
    seasonal indices while the review's forecast has them, and the calibration would
    measure a different model. ``values`` has shape ``(n_series, n_months)``; months next
    to a gap and non-positive averages give NaN.
    """
    n, t = values.shape
    out = np.full((n, t), np.nan)
    if t < 13:
        return out
    ma = np.zeros((n, t - 12))
    for k, w in enumerate(_W):
        ma = ma + w * values[:, k : t - 12 + k]
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = np.where(ma > 0, ma, np.nan)
        # average growth per month of the moving average (none when it is one month long),
        # kept within about +-50% a year
        span = ma.shape[1] - 1
        growth = (ma[:, -1] / ma[:, 0]) ** (1.0 / span) if span else np.ones(n)
        growth = np.clip(np.where(np.isfinite(growth), growth, 1.0), 0.966, 1.034)
        steps = np.arange(1, 7)
        trend = np.hstack(
            [
                ma[:, :1] * growth[:, None] ** -steps[::-1],
                ma,
                ma[:, -1:] * growth[:, None] ** steps,
            ]
        )
        out = values / trend
    return out


def pooled_indices(
    values: np.ndarray,
    groups: np.ndarray,
    first_month: int,
    *,
    alpha: float = ALPHA,
) -> tuple[np.ndarray, np.ndarray]:
    """Calendar-month seasonal indices per group, tested by a one-way ANOVA.

    Parameters
    ----------
    values : ndarray, shape (n_series, n_months)
        Monthly values (any unit), NaN for missing; every row on the same calendar.
    groups : ndarray, shape (n_series,)
        Group label per row; rows of a group share their indices.
    first_month : int
        Calendar month (1-12) of column 0.
    alpha : float
        Significance level; a group whose month effect is not significant gets ones.

    Returns
    -------
    (indices, p_values)
        ``indices`` shape ``(n_series, 12)``: multiplicative index per calendar month
        (column 0 = January), mean 1, all ones when not seasonal; ``p_values`` shape
        ``(n_series,)``: the group's ANOVA p-value (NaN when it could not be tested).
    """
    n, t = values.shape
    ratio = ratios_to_trend(values)
    month = (first_month - 1 + np.arange(t)) % 12
    codes, uniq = pd.factorize(pd.Series(groups), sort=False)
    ok = np.isfinite(ratio)
    rows, cols = np.nonzero(ok)
    frame = pd.DataFrame({"g": codes[rows], "m": month[cols], "r": ratio[rows, cols]})
    idx_g = np.ones((len(uniq), 12))
    p_g = np.full(len(uniq), np.nan)
    if len(frame):
        # Every group's ANOVA at once on (group x month) arrays: a loop over groups cost
        # seconds once subsidiaries (one group each) number in the hundreds. Rows of the
        # arrays hold the same twelve cells in the same order, so the sums are bit-identical.
        cell = frame.groupby(["g", "m"])["r"].agg(["mean", "count", "var"])
        tot = frame.groupby("g")["r"].agg(["mean", "count"])
        g_of = cell.index.get_level_values("g").to_numpy()
        m_of = cell.index.get_level_values("m").to_numpy()
        mean = np.full((len(uniq), 12), np.nan)
        count = np.zeros((len(uniq), 12))
        var = np.zeros((len(uniq), 12))
        mean[g_of, m_of] = cell["mean"].to_numpy()
        count[g_of, m_of] = cell["count"].to_numpy()
        var[g_of, m_of] = cell["var"].fillna(0.0).to_numpy()
        k = np.bincount(g_of, minlength=len(uniq))
        grand = np.full(len(uniq), np.nan)
        n_tot = np.zeros(len(uniq))
        grand[tot.index.to_numpy()] = tot["mean"].to_numpy()
        n_tot[tot.index.to_numpy()] = tot["count"].to_numpy()
        tested = np.flatnonzero((k >= 12) & (n_tot - k >= 1))
        if len(tested):
            kt, nt = k[tested], n_tot[tested]
            ssb = (count[tested] * (mean[tested] - grand[tested, None]) ** 2).sum(axis=1)
            ssw = (var[tested] * (count[tested] - 1)).sum(axis=1)
            p = np.where(ssb > 0, 0.0, 1.0)
            pos = ssw > 0
            # the F distribution's survival function (scipy.stats.f.sf's own formula,
            # without importing scipy.stats: 0.5 s per kernel)
            p[pos] = fdtrc(
                kt[pos] - 1,
                nt[pos] - kt[pos],
                (ssb[pos] / (kt[pos] - 1)) / (ssw[pos] / (nt[pos] - kt[pos])),
            )
            p_g[tested] = p
            seasonal = tested[p < alpha]
            s = mean[seasonal]
            idx_g[seasonal] = s / s.mean(axis=1, keepdims=True)
    return idx_g[codes], p_g[codes]
