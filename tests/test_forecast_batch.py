"""The batched model fits of perflink.forecast give every series what it gets alone, bit for bit.

The panel fits blocks of series in one filter pass (issue #17); the published tables must not
change, so batched and per-series figures are compared with ``assert_array_equal``, never
with a tolerance.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from perflink.forecast import _arima
from perflink.forecast import _fit as ff
from perflink.forecast import _models as fm

#: Row shapes of the blocks: the cases forecast_core and univariate treat apart.
KINDS = (
    "walk",
    "seasonal",
    "negative",
    "constant",
    "intermittent",
    "late_start",
    "inner_gaps",
    "trailing_gap",
    "short",
    "empty",
)


def _row(rng: np.random.Generator, kind: str, t: int) -> np.ndarray:
    time = np.arange(t)
    level = rng.choice([0.5, 40.0, 900.0])
    y = level + np.cumsum(rng.normal(size=t)) * level / 20 + rng.normal() * time
    if kind == "seasonal":
        y = (level + rng.normal(size=t)) * (1 + 0.3 * np.sin(2 * np.pi * time / 12))
    elif kind == "negative":
        y = y - 2 * level
    elif kind == "constant":
        y = np.full(t, level)
    elif kind == "intermittent":
        y = np.where(rng.random(t) < 0.5, 0.0, np.abs(y))
    elif kind == "late_start":
        y[: rng.integers(0, t)] = np.nan
    elif kind == "inner_gaps":
        y[rng.integers(0, t, size=3)] = np.nan
    elif kind == "trailing_gap":
        y[-rng.integers(1, 4) :] = np.nan
    elif kind == "short":
        y[: t - rng.integers(1, 4)] = np.nan
    elif kind == "empty":
        y[:] = np.nan
    return y


@st.composite
def blocks(draw, lengths=(5, 13, 26, 30, 40)):
    """(values (k, t), driver values (k, t), seeded generator) of mixed rows."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=9))
    t = draw(st.sampled_from(lengths))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = np.array([_row(rng, kind, t) for kind in kinds])
    # a driver that leads the series by one month, noisy, with a few gaps
    drivers = np.r_["1", values[:, 1:], values[:, -1:]] * 1.2 + rng.normal(size=values.shape)
    drivers[rng.random(values.shape) < 0.03] = np.nan
    return values, drivers, rng


def _assert_rows_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[key], value, err_msg=key, strict=True)
        else:
            assert got[key] == value and type(got[key]) is type(value), key


def _finite_block(values: np.ndarray) -> np.ndarray:
    """Rows of one length without NaN (gaps filled by zeros) for the model fits."""
    return np.nan_to_num(values)


# ------------------------------------------------------------------ textbook references
def _trend_reference(y: np.ndarray, damped: bool) -> dict:
    """The three-channel filter of fit_trend written out for one series (the pre-batch code)."""
    alpha, beta, phi = fm._GRID[damped]
    level = np.zeros((3, alpha.shape[0]))
    level[1] = 1.0
    trend = np.zeros((3, alpha.shape[0]))
    trend[2] = 1.0
    obs = np.zeros((3, 1))
    acc = np.zeros((6, alpha.shape[0]))
    for value in y:
        obs[0, 0] = value
        pt = phi * trend
        e = obs - level - pt
        e0, e1, e2 = e
        acc += (e0 * e0, e0 * e1, e0 * e2, e1 * e1, e1 * e2, e2 * e2)
        level = level + pt + alpha * e
        trend = pt + beta * e
    s00, s01, s02, s11, s12, s22 = acc
    ridge = 1e-9 * (s11 + s22) + 1e-300
    det = (s11 + ridge) * (s22 + ridge) - s12 * s12
    l0 = -(s01 * (s22 + ridge) - s02 * s12) / det
    b0 = -(s02 * (s11 + ridge) - s01 * s12) / det
    sse = s00 + 2 * l0 * s01 + 2 * b0 * s02 + l0 * l0 * s11 + 2 * l0 * b0 * s12 + b0 * b0 * s22
    sse = np.where(np.isfinite(sse), np.maximum(sse, 0.0), np.inf)
    i = int(np.argmin(sse))
    return {
        "alpha": float(alpha[i]),
        "beta": float(beta[i]),
        "phi": float(phi[i]),
        "level": float(level[0, i] + l0[i] * level[1, i] + b0[i] * level[2, i]),
        "trend": float(trend[0, i] + l0[i] * trend[1, i] + b0[i] * trend[2, i]),
        "sd": float(np.sqrt(sse[i] / max(len(y) - 4, 1))),
    }


def _ses_reference(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    alpha = fm._ALPHAS
    l0, g = np.zeros(alpha.shape), np.ones(alpha.shape)
    s00, s01, s11 = np.zeros(alpha.shape), np.zeros(alpha.shape), np.zeros(alpha.shape)
    for value in y:
        e = value - l0
        s00 += e * e
        s01 += e * g
        s11 += g * g
        l0 = l0 + alpha * e
        g = g - alpha * g
    init = s01 / s11
    return np.maximum(s00 - init * s01, 0.0), l0 + init * g


# ------------------------------------------------------------------ properties
@seed(17)
@settings(max_examples=40, deadline=None)
@given(blocks(lengths=(4, 7, 13, 30)), st.sampled_from([1, 3, 32, 100_000]))
def test_batched_fits_equal_per_series_fits(block, rows_per_pass):
    values = _finite_block(block[0])
    # passes of 1 or 3 rows split the block: a pass boundary must not change a figure
    with (
        mock.patch.object(fm, "_ROWS", rows_per_pass),
        mock.patch.object(fm, "_SES_ROWS", rows_per_pass),
        mock.patch.object(_arima, "_CELLS", rows_per_pass),  # 4 series per pass
    ):
        ses = fm.fit_ses_many(values)
        trends = {d: fm.fit_trend_many(values, damped=d) for d in (True, False)}
        sse, level = fm._ses_filter(values, fm._ALPHAS)
        arima = _arima.fit_arima_many(values)
    for r, y in enumerate(values):
        one = fm.fit_ses(y)
        np.testing.assert_array_equal([a[r] for a in ses], one)
        ref_sse, ref_level = _ses_reference(y)
        np.testing.assert_array_equal(sse[r], ref_sse)
        np.testing.assert_array_equal(level[r], ref_level)
        for damped, fits in trends.items():
            alone = fm.fit_trend(y, damped=damped)
            assert alone == _trend_reference(y, damped)
            assert {key: float(v[r]) for key, v in fits.items()} == alone
        alone = fm.fit_arima(y)
        assert {key: v[r] for key, v in arima.items()} == alone
        np.testing.assert_array_equal(
            _arima.arima_forecast_many(arima, 5)[r], _arima.arima_forecast(alone, 5)
        )


@seed(18)
@settings(max_examples=40, deadline=None)
@given(
    blocks(lengths=(1, 2, 3, 5, 13, 26, 30)),
    st.integers(1, 15),
    st.sampled_from([1, 4, 12]),
    st.booleans(),
    st.sampled_from([fm.COMBINATION, ("theta", "damped"), ("ses", "holt", "theta", "arima")]),
)
def test_forecast_core_many_equals_forecast_core(block, h, m, pooled, combination):
    values, _, rng = block
    values = _finite_block(values)
    seasons = 1 + 0.2 * rng.normal(size=(len(values), m)) if pooled else None
    if pooled:
        seasons[0] = 1.0  # a pooled group that was not seasonal
    many = fm.forecast_core_many(values, h, m, combination=combination, seasons=seasons)
    for r, y in enumerate(values):
        season = None if seasons is None else seasons[r]
        alone = fm.forecast_core(y, h, m, combination=combination, season=season)
        got = many[r]
        for field in ("mean", "sd", "psi"):
            np.testing.assert_array_equal(getattr(got, field), getattr(alone, field), strict=True)
        assert (got.method, got.seasonal, got.nonneg) == (
            alone.method,
            alone.seasonal,
            alone.nonneg,
        )
        assert got.components.keys() == alone.components.keys()
        for key, comp in alone.components.items():
            np.testing.assert_array_equal(got.components[key], comp)


@seed(19)
@settings(max_examples=30, deadline=None)
@given(
    blocks(lengths=(13, 30, 40)),
    st.integers(1, 14),
    st.integers(1, 12),
    st.booleans(),
    st.integers(0, 2),
)
def test_forecast_block_gives_each_row_what_it_gets_alone(block, h, first_month, pooled, lag):
    values, drivers, rng = block
    k = len(values)
    seasons = 1 + 0.2 * rng.normal(size=(k, 12)) if pooled else None
    dseasons = 1 + 0.2 * rng.normal(size=(k, 12)) if pooled else None
    args = (drivers, lag, dseasons) if lag else ()
    got = ff.forecast_block(values, h, first_month, seasons, *args)
    assert len(got) == k
    for i in range(k):
        one = (drivers[i : i + 1], lag, None if dseasons is None else dseasons[i : i + 1])
        alone = ff.forecast_block(
            values[i : i + 1],
            h,
            first_month,
            None if seasons is None else seasons[i : i + 1],
            *(one if lag else ()),
        )[0]
        _assert_rows_equal(got[i], alone)
        assert got[i]["mean"].shape == (h,)


@seed(20)
@settings(max_examples=40, deadline=None)
@given(blocks(lengths=(2, 3, 13, 30, 40)))
def test_theta_slope_is_polyfit_and_driver_fits_are_plain_least_squares(block):
    values, drivers, _ = block
    for y in _finite_block(values):
        want = np.polyfit(np.arange(len(y), dtype=float), y, 1)[0]
        assert fm._slope(y) == want
    lag = 2
    fits = ff._driver_fits(values, drivers, lag, list(range(len(values))))
    for i, (y, x) in enumerate(zip(values, drivers, strict=True)):
        t = len(y)
        if t <= lag + 1:
            assert fits[i] is None
            continue
        x1 = np.r_[np.full(lag, np.nan), x[: t - lag]]
        x2 = np.r_[np.full(lag + 1, np.nan), x[: t - lag - 1]]
        ok = np.isfinite(y) & np.isfinite(x1) & np.isfinite(x2)
        if ok.sum() < 8:
            assert fits[i] is None
            continue
        design = np.c_[np.ones(ok.sum()), x1[ok], x2[ok]]
        np.testing.assert_array_equal(fits[i], np.linalg.lstsq(design, y[ok], rcond=None)[0])


# ------------------------------------------------------------------ cases that must occur
def _following(seed: int, t: int):
    """(rng, values, drivers): four series of ``t`` months that are twice their driver of a
    month before, plus noise."""
    rng = np.random.default_rng(seed)
    drivers = 100 + np.cumsum(rng.normal(scale=8, size=(4, t)), axis=1)
    values = np.empty((4, t))
    values[:, 1:] = 2.0 * drivers[:, :-1] + rng.normal(scale=0.5, size=(4, t - 1))
    values[:, 0] = values[:, 1]
    return rng, values, drivers


def test_driver_choice_is_batched_like_the_rows_alone():
    # Series that follow their driver with a lag of one month: the rolling-origin choice
    # must pick the driver (or the mean) for them, and keep univariate for pure noise.
    rng, values, drivers = _following(5, 40)
    values[3] = 300 + rng.normal(scale=20, size=40)  # unrelated to its driver
    values[2, :5] = np.nan
    got = ff.forecast_block(values, 6, 3, None, drivers, 1, None)
    methods = [row["method"] for row in got]
    assert methods[0] in ("driver(lag 1)", "mean(univariate,driver(lag 1))")
    assert methods[1] in ("driver(lag 1)", "mean(univariate,driver(lag 1))")
    for i in range(4):
        alone = ff.forecast_block(values[i : i + 1], 6, 3, None, drivers[i : i + 1], 1, None)
        _assert_rows_equal(got[i], alone[0])


def test_driver_missing_at_a_later_origin_keeps_the_univariate_model():
    # 40 months, h = 6: the rolling origins cut at 37, 36 and 35, and with a lag of 3 the
    # driver's actuals cover each origin's three steps, so a series that is three times its
    # driver three months back takes the driver model. A driver value missing just before
    # the second cut leaves no driver model there, so that row keeps its univariate forecast.
    rng = np.random.default_rng(8)
    t = 40
    driver = 100 + np.cumsum(rng.normal(scale=8, size=t))
    drivers = np.vstack([driver, driver])
    y = np.r_[np.full(3, 300.0), 3.0 * driver[:-3]] + rng.normal(scale=0.1, size=t)
    values = np.vstack([y, y])
    drivers[0, 35] = np.nan
    got = ff.forecast_block(values, 6, 1, None, drivers, 3, None)
    assert got[0]["method"] == ff.univariate(y, 6, 1, None)[4]
    assert got[1]["method"] == "driver(lag 3)"


def test_a_model_imposed_on_a_short_history_is_the_one_used():
    """20 months are too few for the rolling-origin choice (it needs 24), so a series that
    follows its driver keeps the univariate model when left to choose; a calibration
    window given the review's choice forecasts with the driver (or the mean of both),
    fitted on its own months. A row imposed the univariate model, or whose driver model
    cannot be fitted, keeps its univariate forecast."""
    _rng, values, drivers = _following(9, 20)
    drivers[3, :14] = np.nan  # 6 usable months: no driver model (it needs 8)
    chosen = ff.forecast_block(values, 6, 3, None, drivers, 1, None)
    assert [row["choice"] for row in chosen] == ["univariate"] * 4
    given = np.array(["driver", "combo", "univariate", "driver"], dtype=object)
    got = ff.forecast_block(values, 6, 3, None, drivers, 1, None, given)
    assert [row["choice"] for row in got] == ["driver", "combo", "univariate", "univariate"]
    assert got[0]["method"] == "driver(lag 1)"
    assert got[1]["method"] == "mean(univariate,driver(lag 1))"
    dmean = ff._driver_means(values, drivers, 1, 6, 3, None, [0, 1])
    np.testing.assert_array_equal(got[0]["mean"], np.maximum(dmean[0], 0.0))
    np.testing.assert_array_equal(
        got[1]["mean"], np.maximum((chosen[1]["mean"] + dmean[1]) / 2, 0.0)
    )
    for i in (2, 3):
        _assert_rows_equal(got[i] | {"choice": "-"}, chosen[i] | {"choice": "-"})


def test_univariate_many_groups_rows_by_observed_span():
    # rows of different first-observed column, trailing gap and length in one block; the
    # special cases keep their methods
    rng = np.random.default_rng(6)
    values = 50 + np.cumsum(rng.normal(size=(6, 30)), axis=1)
    values[1, :7] = np.nan
    values[2, -2:] = np.nan
    values[3] = 4.0
    values[4, :] = np.nan
    values[5, 1::2] = 0.0
    got = ff.univariate_many(values, 4, 1, np.ones((6, 12)) * 1.1)
    methods = [row[4] for row in got]
    assert methods[3] == "constant" and methods[4] == "no_data"
    assert methods[5] == "intermittent_mean"
    assert methods[0].endswith("+pooled") and methods[1].endswith("+pooled")
    for i, row in enumerate(got):
        alone = ff.univariate(values[i], 4, 1, np.ones(12) * 1.1)
        for a, b in zip(row[:3], alone[:3], strict=True):
            np.testing.assert_array_equal(a, b, strict=True)
        assert row[3:] == alone[3:]


@pytest.mark.parametrize("k", [0, 1])
def test_empty_and_single_row_blocks(k):
    values = np.full((k, 30), 5.0)
    assert len(ff.forecast_block(values, 3, 1, None)) == k
    assert len(fm.forecast_core_many(np.zeros((k, 0)), 3, 12)) == k
