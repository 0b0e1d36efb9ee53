"""The four panel detectors: per series, linkage, multivariate, peer (not API).

Each returns candidate rows (one per flagged entity x metric x month of the review quarter)
with integer positions ``e``, ``t`` into the :class:`~perflink.anomaly._cube.Cube`, the
``metric_id``, ``kind``, ``value, expected, lower, upper, score`` and kind-specific context
columns that :mod:`perflink.anomaly._explain` turns into a message.
"""

from __future__ import annotations

import itertools
from dataclasses import fields

import numpy as np
import pandas as pd
from scipy.special import chdtrc, ndtri

from perflink.anomaly._cube import Cube, Scored, material, nanmedian, score_series
from perflink.anomaly._features import Feature, feature_cube
from perflink.catalog import Catalog
from perflink.execution import Executor
from perflink.formula import parse
from perflink.options import AnomalyOptions

_MAD = 1.4826
_BAND = 3.2  # |z| of the expected range drawn in timelines
_LINK_HISTORY = 24  # months before the quarter that set the usual driver ratio
#: Smallest number of series (entity x metric) per block of the per-series scoring run on
#: the executor: a block of 4,000 series of 48 months takes about 1.5 s on one core, well
#: above the cost of sending it to a worker (see benchmarks/anomaly_panel_bench.py).
SERIES_PER_BLOCK = 4000
#: Most series scored at once in this process: the detector's long tables of a block hold
#: a few hundred bytes per point, and the 315,000 series of a 10,000-unit group at once
#: took the anomaly kernel to 3.2 GB.
LOCAL_BLOCK_SERIES = 16_000
_COLUMNS = ["e", "t", "metric_id", "kind", "value", "expected", "lower", "upper", "score"]


def is_rate(catalog: Catalog, metric: str) -> bool:
    """Rates (fractions shown as percent) are compared in points, not in per cent of their value."""
    return metric in catalog.metrics and catalog.metrics[metric].unit_info.is_rate


def small_counts(cube: Cube, catalog: Catalog, min_level: float) -> np.ndarray:
    """(E, M) True where a count-like metric (not money, not a rate) has a median monthly
    level below ``min_level`` over the months before the quarter: too noisy for ratios and
    percentage changes (3 new customers -> 1 is -67%)."""
    counted = np.array(
        [
            m in catalog.metrics and catalog.metrics[m].unit_info.kind == "quantity"
            for m in cube.metrics
        ]
    )
    level = nanmedian(np.abs(cube.values[:, :, : cube.quarter[0]]), axis=-1)
    return counted[None, :] & ~(np.nan_to_num(level) >= min_level)


def _rows(e, t, metric, kind, value, expected, lower, upper, score, **extra) -> pd.DataFrame:
    data = dict(e=e, t=t, metric_id=metric, kind=kind, value=value, expected=expected, lower=lower)
    data.update(upper=upper, score=score, **extra)
    return pd.DataFrame(data)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in _COLUMNS})


def series_flags(
    cube: Cube, catalog: Catalog, opts: AnomalyOptions, executor: Executor | None = None
) -> tuple[pd.DataFrame, Scored]:
    """Spikes, level shifts and trend breaks of every (entity, metric) series in the quarter.

    Which points are flagged is set by ``opts.flag_rate`` alone (the detector's
    calibrated operating point); flags that move the value by an immaterial amount
    are dropped.

    The scoring runs on ``executor`` in blocks of whole entities when the cube is big
    enough to gain from it (:data:`SERIES_PER_BLOCK`); every series is scored on its own,
    so the blocks do not change the figures.
    """
    hist_ok = np.sum(np.isfinite(cube.values), axis=-1) >= opts.min_history
    y = np.where(hist_ok[..., None], cube.values, np.nan)
    sc = _score_blocks(y, cube.periods, executor, opts.flag_rate)
    q = cube.quarter
    rate = np.array([is_rate(catalog, m) for m in cube.metrics])[None, :, None]
    v, ex = cube.values[:, :, q], sc.expected[:, :, q]
    keep = sc.flag[:, :, q] & _material(v, ex, rate, opts)
    e, m, k = np.nonzero(keep)
    if e.size == 0:
        return _empty(), sc
    pick = (e, m, q[k])
    out = _rows(
        e,
        q[k],
        np.asarray(cube.metrics, dtype=object)[m],
        sc.kind[pick],
        cube.values[pick],
        sc.expected[pick],
        sc.lower[pick],
        sc.upper[pick],
        sc.score[pick],
    )
    return out, sc


def _score_blocks(
    y: np.ndarray, periods: pd.PeriodIndex, executor: Executor | None, flag_rate: float
) -> Scored:
    """:func:`score_series` of ``y`` (E, M, T), in blocks of entities on ``executor``."""
    n_ent, n_met = y.shape[:2]
    workers = executor.workers if executor is not None else 1
    n_blocks = min(2 * workers, (n_ent * n_met) // SERIES_PER_BLOCK, n_ent)
    if workers < 2 or n_blocks < 2:
        per = max(1, LOCAL_BLOCK_SERIES // max(n_met, 1))  # entities at a time
        parts = [
            score_series(y[lo : lo + per], periods, season=12, flag_rate=flag_rate)
            for lo in range(0, max(n_ent, 1), per)  # one (empty) block when no entity
        ]
    else:
        bounds = np.linspace(0, n_ent, n_blocks + 1).astype(int)
        tasks = [(y[lo:hi], periods, 12, flag_rate) for lo, hi in itertools.pairwise(bounds)]
        parts = executor.map(_score_block, tasks, desc="anomaly series", items=n_ent * n_met)
    if len(parts) == 1:
        return parts[0]
    return Scored(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Scored)))


def _score_block(y: np.ndarray, periods: pd.PeriodIndex, season: int, flag_rate: float) -> Scored:
    return score_series(y, periods, season=season, flag_rate=flag_rate)


def linkage_models(
    cube: Cube, catalog: Catalog, min_level: float = 10.0
) -> dict[str, tuple[np.ndarray, str, str]]:
    """Target metric -> (driver-implied value (E, T), drivers, unit of the implied value).

    A target with a catalog ``decomposition`` (a sales amount = quantity x price / scale) is
    implied by it, in the target's unit; otherwise by its first mapped driver with a positive
    sign that is not a rate, shifted by the mapping's lag (a cost ~ headcount), for entities
    where that driver is not a small count (see :func:`small_counts`): the implied value is
    then the driver's own value, in the driver's unit, and the usual ratio turns it into the
    target's.
    """
    out: dict[str, tuple[np.ndarray, str, str]] = {}
    targets = sorted({mp.target for mp in catalog.mappings})
    for target in targets:
        if cube.m(target) is None or target not in catalog.metrics:
            continue
        deco = catalog.metrics[target].decomposition
        if deco:
            f = parse(deco, context=f"metric {target} decomposition", known=catalog.metrics)
            if any(cube.m(n) is None for n in f.inputs):
                continue
            with np.errstate(all="ignore"):
                implied = np.asarray(f.evaluate({n: cube.get(n) for n in f.inputs}), dtype=float)
            out[target] = (implied, deco, catalog.metrics[target].unit)
            continue
        for mp in catalog.mappings_to(target):
            if mp.sign > 0 and cube.m(mp.driver) is not None and not is_rate(catalog, mp.driver):
                d = cube.get(mp.driver).copy()
                d[small_counts(cube, catalog, min_level)[:, cube.m(mp.driver)]] = np.nan
                implied = np.full_like(d, np.nan)
                implied[:, mp.lag :] = d[:, : d.shape[1] - mp.lag] if mp.lag else d
                out[target] = (implied, mp.driver, catalog.metrics[mp.driver].unit)
                break
    return out


def linkage_flags(
    cube: Cube, catalog: Catalog, opts: AnomalyOptions
) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Finance metrics off the value their mapped drivers imply.

    The log of actual / implied should be steady for an entity: its usual level is the
    median over the (up to) 24 months before the quarter and its scale 1.4826 x MAD (at
    least 0.5%); the score is the robust z of a quarter month. Returns the candidate rows
    and, per target, the driver-based (expected, lower, upper) arrays (E, T) for timelines.
    """
    frames, bands = [], {}
    q = cube.quarter
    hist = slice(max(0, q[0] - _LINK_HISTORY), q[0])
    for target, (implied, drivers, unit) in linkage_models(cube, catalog, opts.min_level).items():
        y = cube.get(target)
        with np.errstate(all="ignore"):
            logr = np.where((y > 0) & (implied > 0), np.log(y / implied), np.nan)
        h = logr[:, hist]
        enough = np.sum(np.isfinite(h), axis=1) >= opts.min_history
        with np.errstate(all="ignore"):
            centre = nanmedian(np.where(enough[:, None], h, np.nan), axis=1)
            scale = np.maximum(_MAD * nanmedian(np.abs(h - centre[:, None]), axis=1), 0.005)
            scale = _count_noise(scale, implied, hist, catalog, drivers)
            z = (logr - centre[:, None]) / scale
        band = _BAND * scale
        exp_ = implied * np.exp(centre[:, None])
        lo, hi = exp_ * np.exp(-band), exp_ * np.exp(band)
        bands[target] = (exp_, lo, hi)
        keep = (np.abs(np.nan_to_num(z[:, q])) >= max(opts.min_score, _BAND)) & material(
            y[:, q], exp_[:, q], np.zeros(y[:, q].shape, bool), rel=opts.min_change, points=0
        )
        e, k = np.nonzero(keep)
        if e.size:
            t = q[k]
            frames.append(
                _rows(
                    e,
                    t,
                    target,
                    "linkage",
                    y[e, t],
                    exp_[e, t],
                    lo[e, t],
                    hi[e, t],
                    z[e, t],
                    implied=implied[e, t],
                    implied_unit=unit,
                    drivers=drivers,
                    ratio=np.exp(logr[e, t]),
                    ratio_usual=np.exp(centre[e]),
                )
            )
    return (pd.concat(frames, ignore_index=True) if frames else _empty()), bands


def _count_noise(
    scale: np.ndarray, implied: np.ndarray, hist: slice, catalog: Catalog, driver: str
) -> np.ndarray:
    """(E, T) scale of the log ratio, widened in months when a count driver is below its
    usual level.

    The log of a count ``n`` carries Poisson noise of variance about ``1 / n``; the history's
    scale holds it at the usual count, so a month with fewer (3 new customers where 12 are
    usual) adds ``1 / n - 1 / n_usual``: a small count implies little about the amount it
    drives. Where the count swings month to month as much as counting noise does (new
    customers, not a headcount that moves a person at a time), the scale is also at least
    ``sqrt(1 / n_usual)``: two years of months can make the history's estimate smaller (a
    unit with about 17 new customers a month, whose 24 months happened to be steady,
    flagged 26 as "once in 62 years"). Other drivers (and decompositions) keep their
    history's scale.
    """
    out = np.broadcast_to(scale[:, None], implied.shape)
    info = catalog.metrics.get(driver)
    if info is None or info.unit_info.kind != "quantity":
        return out
    with np.errstate(all="ignore"):
        h = np.where(implied[:, hist] > 0, implied[:, hist], np.nan)
        usual = nanmedian(h, axis=1)
        extra = np.maximum(1.0 / implied - 1.0 / usual[:, None], 0.0)
        # Poisson changes have variance 2 n: a count whose robust swing reaches half that
        # sd is counting noise, and its history's scale may not fall below it
        swing = _MAD * nanmedian(np.abs(np.diff(h, axis=1)), axis=1)
        counting = swing >= 0.5 * np.sqrt(2.0 * usual)
        floor = np.where(counting & (usual > 0), np.sqrt(1.0 / usual), 0.0)
        out = np.maximum(out, np.nan_to_num(floor)[:, None])
    return np.sqrt(out**2 + np.where(np.isfinite(extra) & (implied > 0), extra, 0.0))


def multivariate_flags(
    cube: Cube, catalog: Catalog, sc: Scored, opts: AnomalyOptions, features: dict[str, Feature]
) -> tuple[pd.DataFrame, list[Feature], int]:
    """Entity-months of the quarter whose mix of features is unusual for the entity.

    ``features`` are the catalog's (:func:`perflink.anomaly.features_of`, as chosen by
    ``opts.features``). Each feature is a robust z against the entity's own 24 months before
    the quarter (median, 1.4826 x MAD, at least 0.5% of the median); entities with the same set
    of features share one correlation of those z (winsorised at +-4), and the squared
    Mahalanobis distance of a quarter month is compared with chi-square(p). The finding is
    filed under the reported input of the feature that contributes most which is furthest
    from its own expected value (e.g. the denominator when a cost ratio moved because sales
    did). ``feature_denominator`` holds the ratio's denominator in that month (NaN for a
    reported average), to price the change.

    Returns the candidate rows, the features the facts could fill and the number of entities
    with at least two of them scored (``opts.min_history`` months of history each).
    """
    feats, values, dens = feature_cube(cube, catalog, features)
    q = cube.quarter
    if not feats:
        return _empty(), [], 0
    hist = values[:, :, max(0, q[0] - _LINK_HISTORY) : q[0]]
    with np.errstate(all="ignore"):
        med = nanmedian(hist, axis=-1)
        mad = nanmedian(np.abs(hist - med[..., None]), axis=-1)
    scale = np.maximum(_MAD * mad, 0.005 * np.abs(med))
    with np.errstate(all="ignore"):
        z = (values - med[..., None]) / scale[..., None]
    avail = (np.sum(np.isfinite(hist), axis=-1) >= opts.min_history) & (scale > 0)
    n_units = int((avail.sum(axis=1) >= 2).sum())
    with np.errstate(all="ignore"):
        rel_dev = np.abs(cube.values / sc.expected - 1)
    frames = []
    patterns, group = np.unique(avail, axis=0, return_inverse=True)
    for g, pattern in enumerate(patterns):
        k = np.flatnonzero(pattern)
        ents = np.flatnonzero(group.ravel() == g)
        if k.size < 2 or ents.size == 0:
            continue
        zh = (
            z[np.ix_(ents, k)][:, :, max(0, q[0] - _LINK_HISTORY) : q[0]]
            .transpose(0, 2, 1)
            .reshape(-1, k.size)
        )
        zh = zh[np.isfinite(zh).all(axis=1)]
        if len(zh) < 5 * k.size:
            continue
        cov = np.cov(np.clip(zh, -4, 4), rowvar=False) + 1e-6 * np.eye(k.size)
        prec = np.linalg.inv(cov)
        zq = z[np.ix_(ents, k)][:, :, q].transpose(0, 2, 1)  # (n, Q, p)
        pz = zq @ prec
        contrib = zq * pz
        d2 = contrib.sum(axis=-1)
        # scipy.stats' chi2.sf and norm.isf by their own formulas (scipy.special), without
        # importing scipy.stats (0.5 s per kernel); chi2.sf is 1 below its support
        pval = np.where(d2 < 0, 1.0, chdtrc(k.size, d2))
        flag = np.isfinite(d2) & (pval < opts.multivariate_alpha)
        ei, qi = np.nonzero(flag)
        if ei.size == 0:
            continue
        top = np.argmax(contrib[ei, qi], axis=1)
        kk = k[top]
        e, t = ents[ei], q[qi]
        zscore = np.where(pval[ei, qi] > 0, 0.0 - ndtri(pval[ei, qi] / 2), np.sqrt(d2[ei, qi]))
        filed = [
            _file_under(cube, rel_dev, feats[f], a, b) for f, a, b in zip(kk, e, t, strict=True)
        ]
        mi = np.array([cube.m(x) for x in filed])
        frames.append(
            _rows(
                e,
                t,
                filed,
                "multivariate",
                cube.values[e, mi, t],
                sc.expected[e, mi, t],
                sc.lower[e, mi, t],
                sc.upper[e, mi, t],
                zscore,
                feature=np.asarray([feats[f].name for f in kk], dtype=object),
                feature_value=values[e, kk, t],
                feature_usual=med[e, kk],
                feature_z=z[e, kk, t],
                feature_denominator=dens[e, kk, t],
                distance=np.sqrt(d2[ei, qi]),
                n_features=k.size,
            )
        )
    return (pd.concat(frames, ignore_index=True) if frames else _empty()), feats, n_units


def _file_under(cube: Cube, rel_dev: np.ndarray, feature: Feature, e: int, t: int) -> str:
    """The reported input of ``feature`` furthest from its expected value (the first on ties)."""
    inputs = [m for m in feature.inputs if cube.m(m) is not None]
    dev = [np.nan_to_num(rel_dev[e, cube.m(m), t]) for m in inputs]
    return inputs[int(np.argmax(dev))]


def peer_flags(
    cube: Cube, catalog: Catalog, groups: np.ndarray, opts: AnomalyOptions
) -> tuple[pd.DataFrame, np.ndarray]:
    """Units whose year-on-year change in a quarter month is unlike their peers'.

    Peers = units of the same centre type and business line (``groups`` holds one code per
    entity, -1 = no group). Change = value / value 12 months earlier - 1 (rates: the
    difference in points); robust z of its gap to the peers' median beyond the unit's usual
    gap (the median gap over the 24 months before the quarter: a unit that has grown 12
    points a year faster than its peers for two years is not unusual for doing so again),
    scaled by the larger of the peers' spread (1.4826 x MAD, at least 2% or 0.5 points) and
    the unit's own usual spread of year-on-year changes over those months (noisy series,
    such as small counts, need a larger move). Returns candidates and the (E, M, Q) changes
    for the peer charts.
    """
    q = cube.quarter
    v = cube.values
    prev_all = np.full_like(v, np.nan)
    prev_all[:, :, 12:] = v[:, :, :-12]
    rate = np.array([is_rate(catalog, m) for m in cube.metrics])[None, :, None]
    with np.errstate(all="ignore"):
        g_all = np.where(
            rate, v - prev_all, np.where((v > 0) & (prev_all > 0), v / prev_all - 1, np.nan)
        )
        window = slice(max(12, q[0] - _LINK_HISTORY), q[0])
        own_h = g_all[:, :, window]
        own_med = nanmedian(own_h, axis=-1, keepdims=True)
        own = _MAD * nanmedian(np.abs(own_h - own_med), axis=-1)
    known = np.sum(np.isfinite(own_h), axis=-1) >= opts.min_history // 2
    own = np.where(known, own, np.inf)
    g_all[small_counts(cube, catalog, opts.min_level)] = np.nan
    hist = g_all[:, :, window]  # the same months, small counts left out
    cur, prev, g = v[:, :, q], prev_all[:, :, q], g_all[:, :, q]
    frames = []
    for code in np.unique(groups[groups >= 0]):
        ents = np.flatnonzero(groups == code)
        if ents.size < opts.min_peers:
            continue
        gg = g[ents]
        n = np.sum(np.isfinite(gg), axis=0)
        with np.errstate(all="ignore"):
            med = nanmedian(gg, axis=0)
            mad = nanmedian(np.abs(gg - med), axis=0)
            # the unit's usual gap to its peers' median (0 without the history to tell)
            gap_h = hist[ents] - nanmedian(hist[ents], axis=0)[None]
            usual = np.where(known[ents], np.nan_to_num(nanmedian(gap_h, axis=-1)), 0.0)
        floor = np.where(rate[0], 0.005, 0.02)
        s = np.maximum(np.maximum(_MAD * mad, floor)[None], own[ents][..., None])
        centre = med[None] + usual[..., None]  # (e, M, Q): what the unit's change would be
        z = (gg - centre) / s
        with np.errstate(all="ignore"):
            expected = np.where(rate, prev[ents] + centre, prev[ents] * (1 + centre))
        keep = (
            (np.abs(np.nan_to_num(z)) >= opts.peer_z)
            & (n >= opts.min_peers)
            & _material(cur[ents], expected, rate, opts)
        )
        ei, m, k = np.nonzero(keep)
        if ei.size == 0:
            continue
        base = prev[ents][ei, m, k]
        at = centre[ei, m, k]
        lo_g, hi_g = at - opts.peer_z * s[ei, m, k], at + opts.peer_z * s[ei, m, k]
        r = rate[0, m, 0]
        frames.append(
            _rows(
                ents[ei],
                q[k],
                np.asarray(cube.metrics, dtype=object)[m],
                "peer",
                cur[ents][ei, m, k],
                expected[ei, m, k],
                np.where(r, base + lo_g, base * (1 + lo_g)),
                np.where(r, base + hi_g, base * (1 + hi_g)),
                z[ei, m, k],
                change=gg[ei, m, k],
                peer_median=med[m, k],
                peer_gap=usual[ei, m],
                peer_n=n[m, k],
                group=code,
            )
        )
    return (pd.concat(frames, ignore_index=True) if frames else _empty()), g


def _material(value: np.ndarray, expected: np.ndarray, rate: np.ndarray, opts) -> np.ndarray:
    """:func:`material` with the options' thresholds; ``rate`` broadcasts to ``value``."""
    is_rate = np.broadcast_to(rate, value.shape)
    return material(value, expected, is_rate, rel=opts.min_change, points=opts.min_change_points)
