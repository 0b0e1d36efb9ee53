"""Vectorised per-series anomaly detection (internals of :mod:`perflink.anomaly`).

Everything here works on a 2-D float array ``Y`` of shape ``(n_series, n_points)``
that shares one season length, so the panel detector can score thousands of
equal-length series with a handful of numpy calls.  NaN marks a missing point.

The model, per series (``g`` = season length; without seasonality a third of
the series, 2 to 12 points, used only for slopes and the noise scale):

1. local slope = median of the lag-g pair slopes ``(y[i] - y[i-g]) / g`` whose pair
   spans the point;
2. seasonal index = median, per position in the cycle, of ``y`` minus a
   slope-corrected running median over exactly one cycle (so every window holds
   each season once), centred to sum zero;
3. trend = slope-corrected running median of the deseasonalised series over a
   short window (+-max(2, g // 4)), so a single spike cannot move it and a step
   stays a step; ``expected`` = trend + season;
4. noise sd = the larger of (1.4826 * MAD of the residuals) / 0.63 and
   1.4826 * MAD of the lag-g differences / sqrt(2), and point by point at least
   the residual MAD over +-12 points / 0.63 (volatile stretches of a
   heteroscedastic series get a wider band);  spike score = residual / noise sd;
5. level-shift test at every point ``t``: median of the deseasonalised points
   ``t .. t+5`` minus median of ``t-g .. t-1``, both corrected by the slope of the
   pairs wholly before ``t``, over its standard error (median of k normals:
   sd ~ sigma * sqrt(pi / (2k))), with sigma the series-wide noise sd of step 4
   (no local widening: window medians already absorb short volatile stretches,
   and the step's own residuals would widen the scale around it).  A trend break shows up as a departure from the
   extrapolated old trend.  The first point of each run above the threshold is
   moved to the first point of the new level (first two consecutive points past
   the midpoint between the levels); it is a trend break when the departure in
   the second half of the post window exceeds 1.5 x that of the first half
   where the test fires, and 1.2 x from the first point of the new level;
6. a second pass drops the lag-g pairs that straddle a shift candidate of the
   first pass (|z| > 3), so a shift bends neither the slope nor the noise scale.

Thresholds come from the wanted flag rate
(:func:`perflink.anomaly._rates.settings_for_rate`, tail tables measured on the
uninjected M3 monthly development series): 40% of the rate goes to the spike
test and 60% to the level-shift test, the split that gives both kinds about the
same recall on the development series.

Measured with ``benchmarks/anomaly_bench.py`` (714 series, one injected spike
or level shift each, K noise sd): at 1.00 flag per 100 uninjected points recall
0.67 at K = 4 (spikes 0.66, shifts 0.67), 0.38 at K = 3, 0.90 at K = 6; 0.79 at
K = 4 costs about 2.8 flags per 100.  Why it stops there: the uninjected series
have genuine outliers and breaks, so the tails are heavy (|z| > 4 comes 0.20
times per 100 points, 30 times a normal's), the threshold must sit near 3.2 noise
sd to keep the rate, and the residual of a K = 4 spike carries about one noise sd
of its own.  Alternatives that measured no better at equal flag rate (chosen on
one half of the development series, checked on the other): scoring spikes by
the lag-difference noise sd alone or by the residual scale alone (no floor at
the lag-difference scale), no local widening, a wider or narrower local window
(6, 24), a per-series tail scale (90% or 75% quantile of |residual| instead of
the MAD), winsorised means instead of medians in the level-shift windows (+0.01),
leave-one-out seasonal indexes and trends (-0.09), a local seasonal index (median
over +-1 to 3 cycles: +-0.01), a second pass that leaves out the points past
|z| 2.5 to 4 when fitting (+0.01 at most), at most 1-3 flags per series
(split-conformal style: a flag must also rank among the series' own largest;
equal at best), same-month adjustment of residuals, wider level-shift post
windows (8 points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Kind codes in the `kind` array; anomaly.py turns them into strings.
KIND_NONE, KIND_SPIKE, KIND_SHIFT, KIND_TREND = 0, 1, 2, 3
KIND_NAMES = {
    KIND_NONE: None,
    KIND_SPIKE: "spike",
    KIND_SHIFT: "level_shift",
    KIND_TREND: "trend_break",
}

_MAD_TO_SD = 1.4826
_MEAN_ABS_TO_SD = math.sqrt(math.pi / 2)


@dataclass(frozen=True)
class Settings:
    """Detector settings; z thresholds are in units of the noise sd of step 4."""

    spike_z: float = 3.3
    shift_z: float = 5.25
    # typical (residual MAD / noise sd) on the M3 development series: the short
    # running median absorbs part of the noise, so the residual MAD understates it
    resid_ratio: float = 0.63
    shift_post: int = 6  # most points after t in the level-shift test
    shift_radius: int = 6  # one shift per this many points either side
    local_scale: int = 12  # half-window of the local residual scale
    mask_z: float = 3.0  # first-pass shift threshold for dropping straddling differences
    growth: float = (
        1.5  # late / early departure where a shift fires above which it is a trend break
    )
    growth_start: float = 1.2  # ... and from its first point of the new level


def nanmedian_last(a: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN (NaN where a row is all NaN).

    Sorting sends NaN to the end, so the median of the ``c`` finite values sits
    at positions ``(c - 1) // 2`` and ``c // 2``; much faster than np.nanmedian on
    many short rows.
    """
    s = np.sort(a, axis=-1)
    c = np.sum(~np.isnan(a), axis=-1)
    flat = s.reshape(-1, s.shape[-1])
    rows = np.arange(flat.shape[0])
    cf = c.reshape(-1)
    lo = np.maximum((cf - 1) // 2, 0)
    hi = np.maximum(cf // 2, 0)
    out = (0.5 * (flat[rows, lo] + flat[rows, hi])).reshape(c.shape)
    return np.where(c > 0, out, np.nan)


def _windows(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Stack ``a[..., t + k]`` for k in ``lo..hi`` into a new last axis (NaN outside)."""
    n = a.shape[-1]
    pad_l, pad_r = max(-lo, 0), max(hi, 0)
    padded = np.full(a.shape[:-1] + (n + pad_l + pad_r,), np.nan)
    padded[..., pad_l : pad_l + n] = a
    idx = np.arange(n)[:, None] + (np.arange(lo, hi + 1) + pad_l)[None, :]
    return padded[..., idx]


def _pair_slopes(y: np.ndarray, g: int) -> np.ndarray:
    """``s[..., i] = (y[i] - y[i-g]) / g`` for i >= g, NaN before."""
    s = np.full_like(y, np.nan)
    s[..., g:] = (y[..., g:] - y[..., :-g]) / g
    return s


def _slope_lag(season: int, n: int) -> int:
    """Lag of the pair slopes: the season, else a third of the series (2..12).

    Without seasonality, first differences would give a slope too noisy to
    extrapolate (each pair slope has sd sqrt(2) * sigma / lag).
    """
    return season if season > 1 else int(min(12, max(2, n // 3)))


def _fill_rows(a: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Replace NaN by the row's fallback value (then 0)."""
    fb = np.where(np.isnan(fallback), 0.0, fallback)
    return np.where(np.isnan(a), fb[:, None], a)


def _robust_scale(r: np.ndarray) -> np.ndarray:
    """1.4826 * MAD per row; 1.2533 * mean |dev| when MAD is 0 (near-constant rows)."""
    med = nanmedian_last(r)
    dev = np.abs(r - med[:, None])
    mad = _MAD_TO_SD * nanmedian_last(dev)
    mean_abs = _MEAN_ABS_TO_SD * np.nanmean(np.where(np.isnan(dev), np.nan, dev), axis=-1)
    scale = np.where(mad > 0, mad, mean_abs)
    return np.where(np.isnan(scale), 0.0, scale)


def _diff_scale(dd: np.ndarray) -> np.ndarray:
    """Noise sd from lag differences (NaN = none): 1.4826 * MAD / sqrt(2), per row."""
    med = nanmedian_last(dd)
    out = _MAD_TO_SD * nanmedian_last(np.abs(dd - med[:, None])) / math.sqrt(2)
    return np.where(np.isnan(out), 0.0, out)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 / 0 -> 0 and x / 0 -> +-1e6 (a departure from a constant)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = num / den
    z = np.where(den > 0, z, np.where(num == 0, 0.0, np.sign(num) * 1e6))
    return np.where(np.isnan(num), np.nan, z)


#: Rows scored at a time by :func:`detect_block`: its windowed medians hold arrays of
#: (rows, points, 25), a few at once, and all 60,000 series of a 2,000-unit group at once
#: took the anomaly kernel to 1.3 GB. Every step works along a row, so a row's figures do
#: not depend on the rows scored with it.
BLOCK_ROWS = 2048


def detect_block(
    y: np.ndarray, season: int, settings: Settings = Settings(), *, floor: float = 0.0
) -> dict[str, np.ndarray]:
    """Score every point of every row of ``y`` (shape ``(n_series, n)``).

    ``season`` = 1 means no seasonal component (the short-series method).
    Returns arrays of shape ``(n_series, n)``: expected, lower, upper, score,
    is_anomaly (bool), kind (int codes, see ``KIND_NAMES``), plus the raw
    statistics z_spike and z_shift.

    Two passes: the second drops the season-lag differences that straddle a
    level shift found by the first, so a shift does not bend the slope (nor
    inflate the noise scale) used around it, which would otherwise echo as a
    spurious opposite shift one season later.

    ``floor`` is the smallest noise sd (in the unit of ``y``): 1 for counts on the
    Anscombe scale, where Poisson noise has sd 1 whatever the data show.
    """
    y = np.asarray(y, dtype=float)
    if y.shape[0] > BLOCK_ROWS:
        parts = [
            detect_block(y[i : i + BLOCK_ROWS], season, settings, floor=floor)
            for i in range(0, y.shape[0], BLOCK_ROWS)
        ]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    first = _pass(y, season, settings, None, floor)
    cand = _first_local_max(np.abs(first["z_shift"]), settings.mask_z, radius=settings.shift_radius)
    shifts = cand & ~np.isnan(y)
    if not shifts.any():
        return first
    g = _slope_lag(season, y.shape[1])
    # pair i (y[i-g], y[i]) straddles a shift at t when i - g < t <= i
    straddle = _windows(shifts.astype(float), -(g - 1), 0).sum(axis=-1) > 0
    rows = np.flatnonzero(shifts.any(axis=1))
    second = _pass(y[rows], season, settings, straddle[rows], floor)
    for key, val in second.items():
        first[key][rows] = val
    return first


def _pass(
    y: np.ndarray,
    season: int,
    settings: Settings,
    drop_pairs: np.ndarray | None,
    floor: float = 0.0,
) -> dict[str, np.ndarray]:
    """One pass of the model; ``drop_pairs`` marks season-lag differences to ignore."""
    n_s, n = y.shape
    obs = ~np.isnan(y)
    g = _slope_lag(season, n)
    slope_len = g + 1
    half_season = season // 2 if season > 1 else 0
    h_trend = max(2, season // 4)

    # 1. local slope: the median of the pair slopes whose pair spans t
    s = _pair_slopes(y, g)
    if drop_pairs is not None:
        s = np.where(drop_pairs, np.nan, s)
    global_slope = nanmedian_last(s)
    start = np.clip(np.arange(n) + (g - slope_len + 1) // 2, g, max(g, n - slope_len))
    idx = np.minimum(start[:, None] + np.arange(slope_len)[None, :], n - 1)
    b_c = _fill_rows(nanmedian_last(s[:, idx]), global_slope)

    def local_median(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
        k = np.arange(lo, hi + 1, dtype=float)
        return nanmedian_last(_windows(x, lo, hi) - b_c[..., None] * k)

    # 2. seasonal index by position in the cycle
    if season > 1:
        # exactly one cycle per window, so every window sees every season once
        # and the median carries no position-dependent seasonal bias
        r0 = y - local_median(y, -half_season, season - half_season - 1)
        n_cyc = -(-n // season)
        pad = np.full((n_s, n_cyc * season), np.nan)
        pad[:, :n] = r0
        by_pos = pad.reshape(n_s, n_cyc, season).transpose(0, 2, 1)
        seas = nanmedian_last(by_pos)
        seas = np.where(np.isnan(seas), 0.0, seas)
        centre = seas.mean(axis=1, keepdims=True)
        seasonal = np.tile(seas - centre, (1, n_cyc))[:, :n]
    else:
        seasonal = np.zeros_like(y)
    d = y - seasonal

    # 3. trend: short slope-corrected running median of the deseasonalised series
    trend = local_median(d, -h_trend, h_trend)
    trend = _fill_rows(trend, nanmedian_last(d))
    expected = trend + seasonal

    # 4. spike test.  Noise sd = the larger of two robust estimates (residual MAD
    # rescaled to noise units; MAD of the season-lag differences / sqrt 2), and
    # locally the residual MAD over +-local_scale points, so volatile stretches of
    # a heteroscedastic series do not flood the flags.
    resid = y - expected
    diff_sd = _diff_scale(s * g)
    sigma = np.maximum(_robust_scale(resid) / settings.resid_ratio, diff_sd)
    level = nanmedian_last(np.abs(y))
    sigma = np.where(sigma > 1e-12 * np.where(np.isnan(level), 0, level), sigma, 0.0)
    sigma = np.maximum(sigma, floor)
    hl = settings.local_scale
    local = _MAD_TO_SD * nanmedian_last(np.abs(_windows(resid, -hl, hl))) / settings.resid_ratio
    pscale = np.maximum(np.where(np.isnan(local), 0.0, local), sigma[:, None])
    z_spike = _safe_div(resid, pscale)
    spike = obs & (np.abs(z_spike) > settings.spike_z)

    # 5. level shift / trend break test, in units of the series-wide noise sd:
    # window medians already average out short volatile stretches, and the local
    # widening (inflated by the step's own residuals) cost more power than it
    # saved false alarms on the M3 benchmark.  A degenerate (zero) series-wide
    # scale falls back to the spike scale.
    shift_scale = np.where(sigma[:, None] > 0, sigma[:, None], pscale)
    z_shift, ratio, b_pre, mid = _shift_stat(
        d, s, global_slope, shift_scale, season, g, settings.shift_post
    )
    az = np.abs(np.nan_to_num(z_shift))
    # the first point of each run above the threshold: a trend break's statistic
    # keeps growing for a while, so its peak would come late
    prev = np.concatenate([np.zeros((n_s, 1)), az[:, :-1]], axis=1)
    peaks = (az > settings.shift_z) & (prev <= settings.shift_z)
    # trend break: the departure grows where the test fires and still grows
    # (less strictly) from the first point of the new level on; a step's
    # departure grows only while the post window straddles it
    start, trend_break = _refine_start(
        d,
        peaks,
        np.sign(z_shift),
        b_pre,
        mid,
        settings.shift_radius,
        settings.shift_post,
        peaks & (ratio > settings.growth),
    )
    shift = obs & start
    # score of a flag: the strongest statistic from its point on (within the radius)
    ahead = np.nan_to_num(_windows(np.nan_to_num(z_shift), 0, settings.shift_radius))
    z_ahead = np.take_along_axis(ahead, np.argmax(np.abs(ahead), axis=-1)[..., None], axis=-1)[
        ..., 0
    ]
    z_shift = np.where(shift, z_ahead, z_shift)
    kind = np.where(spike, KIND_SPIKE, KIND_NONE)
    trend_break &= ratio > settings.growth_start
    kind = np.where(shift, np.where(trend_break, KIND_TREND, KIND_SHIFT), kind)

    score = np.where(shift, z_shift, z_spike)
    band = settings.spike_z * pscale
    return {
        "expected": expected,
        "lower": expected - band,
        "upper": expected + band,
        "score": np.where(obs, score, np.nan),
        "is_anomaly": spike | shift,
        "kind": kind,
        "z_spike": z_spike,
        "z_shift": z_shift,
    }


def _shift_stat(
    d: np.ndarray,
    s: np.ndarray,
    global_slope: np.ndarray,
    sigma: np.ndarray,
    season: int,
    lag: int,
    post: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Robust two-window statistic for a new level starting at each point.

    Returns ``(z, growth, b_pre, mid)``: z = standardised change of median level
    (NaN where fewer than 3 points on either side), b_pre = the slope used, mid =
    halfway between the old and new levels (slope-corrected frame), growth = |late half| / |early half| of
    the post-window departure (> ``Settings.growth``: the departure keeps growing,
    a trend break).
    """
    p = season if season > 1 else 4
    q = post if season > 1 else min(post, 6)
    # slope from pairs wholly before t (pair i covers i-g..i, so i <= t-1)
    pre_pairs = _windows(s, -(lag + 1), -1)
    cnt = np.sum(~np.isnan(pre_pairs), axis=-1)
    b_pre = np.where(cnt >= 3, nanmedian_last(pre_pairs), global_slope[:, None])
    b_pre = np.where(np.isnan(b_pre), 0.0, b_pre)

    k_pre = np.arange(-p, 0, dtype=float)
    k_post = np.arange(0, q, dtype=float)
    e_pre = _windows(d, -p, -1) - b_pre[..., None] * k_pre
    e_post = _windows(d, 0, q - 1) - b_pre[..., None] * k_post
    c_pre = np.sum(~np.isnan(e_pre), axis=-1)
    c_post = np.sum(~np.isnan(e_post), axis=-1)
    m_pre = nanmedian_last(e_pre)
    diff = nanmedian_last(e_post) - m_pre
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sigma * np.sqrt(np.pi / 2 * (1 / c_pre + 1 / c_post))
    ok = (c_pre >= 3) & (c_post >= 3)
    z = np.where(ok, _safe_div(diff, se), np.nan)

    half = q // 2
    early = nanmedian_last(e_post[..., :half]) - m_pre
    late = nanmedian_last(e_post[..., half:]) - m_pre
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(
            (c_post >= 4) & (np.sign(early) == np.sign(late)) & (early != 0),
            np.abs(late) / np.abs(early),
            0.0,
        )
    return z, growth, b_pre, m_pre + diff / 2


def _refine_start(
    d: np.ndarray,
    peaks: np.ndarray,
    sign: np.ndarray,
    b_pre: np.ndarray,
    mid: np.ndarray,
    radius: int,
    post: int,
    tag: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Move each detected shift to the first point of the new level.

    Returns the moved flags and ``tag`` (bool, same shape as ``peaks``) carried
    from each detection to its moved flag.

    Window medians change over a plateau of candidates around a step, so the
    statistic crosses its threshold a few points off the step.  The start is
    the first point, from ``radius - 1`` before the detection to ``post`` after, that
    with the next point lies beyond the midpoint between the old and new levels
    (in the slope-corrected frame of the detection); without one it stays.
    """
    out = np.zeros_like(peaks)
    out_tag = np.zeros_like(peaks)
    rows, cols = np.nonzero(peaks)
    if rows.size == 0:
        return out, out_tag
    n = d.shape[1]
    offs = np.arange(-(radius - 1), post + 2)
    pos = cols[:, None] + offs[None, :]
    inside = (pos >= 0) & (pos < n)
    vals = d[rows[:, None], np.clip(pos, 0, n - 1)]
    e = vals - b_pre[rows, cols][:, None] * offs[None, :]
    beyond = inside & (sign[rows, cols][:, None] * (e - mid[rows, cols][:, None]) > 0)
    run2 = beyond[:, :-1] & beyond[:, 1:]
    has = run2.any(axis=1)
    first = np.argmax(run2, axis=1)
    start = np.where(has, pos[np.arange(rows.size), first], cols)
    out[rows, start] = True
    # two detections may land on one start: the tag of any of them wins
    np.logical_or.at(out_tag, (rows, start), tag[rows, cols])
    return out, out_tag


def _first_local_max(a: np.ndarray, threshold: float, *, radius: int) -> np.ndarray:
    """Points above threshold that beat the ``radius`` points before and tie-or-beat those after."""
    a = np.where(np.isnan(a), 0.0, a)
    before = np.max(np.nan_to_num(_windows(a, -radius, -1), nan=-1.0), axis=-1)
    after = np.max(np.nan_to_num(_windows(a, 1, radius), nan=-1.0), axis=-1)
    return (a > threshold) & (a > before) & (a >= after)
