"""Tests for perflink.forecast on synthetic series whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perflink.errors import InputError, ParamsError, PerflinkError
from perflink.forecast import accuracy, backtest_series, forecast_paths, forecast_series


def _monthly(values, start="2022-01") -> pd.Series:
    return pd.Series(
        np.asarray(values, dtype=float),
        index=pd.period_range(start, periods=len(values), freq="M"),
        name="sales",
    )


def _noisy_seasonal(n=48, seed=1) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return _monthly(200 + 0.5 * t + 30 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 5, n))


def test_pure_seasonal_repeats_the_season():
    season = 100 + 20 * np.sin(2 * np.pi * np.arange(12) / 12) + np.arange(12)
    # five seasons: the 90% ACF test (M3 recipe) does not flag a sine-like pattern in 3
    y = _monthly(np.tile(season, 5))
    fc = forecast_series(y, 12)
    np.testing.assert_allclose(fc["mean"].to_numpy(), season, rtol=1e-6)
    assert fc.attrs["seasonal"] is True
    assert "seasonal" in fc.attrs["method"]
    assert fc.index[0] == pd.Period("2027-01", "M")


def test_linear_trend_is_extrapolated():
    y = _monthly(100 + 5 * np.arange(24))
    fc = forecast_series(y, 6)
    truth = 100 + 5 * np.arange(24, 30)
    assert np.all(np.diff(fc["mean"]) > 0)
    assert fc["mean"].iloc[0] > y.iloc[-1]
    np.testing.assert_allclose(fc["mean"].to_numpy(), truth, rtol=0.05)


def test_constant_series_is_flat_with_zero_width_intervals():
    fc = forecast_series(_monthly([7.0] * 30), 5)
    assert fc.attrs["method"] == "constant"
    np.testing.assert_array_equal(fc.to_numpy(), np.full((5, 5), 7.0))


def test_series_with_zeros_gives_finite_nonnegative_forecast():
    values = np.tile([0.0, 0.0, 5.0, 10.0, 0.0, 3.0], 6)
    fc = forecast_series(_monthly(values), 12)
    assert np.isfinite(fc.to_numpy()).all()
    assert (fc.to_numpy() >= 0).all()


def test_short_series_uses_non_seasonal_method():
    fc = forecast_series(_monthly([10, 12, 11, 13, 12, 14, 13, 15]), 4)
    assert fc.attrs["season_length"] == 12
    assert fc.attrs["seasonal"] is False
    assert "seasonal" not in fc.attrs["method"]
    assert np.isfinite(fc.to_numpy()).all()


def test_one_observation_is_naive_with_documented_interval():
    fc = forecast_series(_monthly([50.0]), 3)
    assert fc.attrs["method"] == "naive_single_obs"
    assert fc.attrs["n_obs"] == 1
    np.testing.assert_allclose(fc["mean"], 50.0)
    np.testing.assert_allclose(fc.attrs["scale"], 5.0 * np.sqrt([1, 2, 3]))
    assert np.isfinite(fc.to_numpy()).all()
    assert (fc["hi_95"] > fc["hi_80"]).all()


def test_all_nan_returns_nan_and_says_so():
    fc = forecast_series(_monthly([np.nan] * 5), 2)
    assert fc.attrs["method"] == "no_data"
    assert fc["mean"].isna().all()


def test_nan_in_the_middle_and_at_the_end():
    y = _noisy_seasonal(36)
    y.iloc[10] = np.nan
    y.iloc[-1] = np.nan
    fc = forecast_series(y, 4)
    assert np.isfinite(fc.to_numpy()).all()
    assert fc.attrs["n_obs"] == 35  # interpolated inner point counts; trailing NaN does not
    assert fc.index[0] == y.index[-1] + 1


def test_missing_periods_are_treated_as_nan():
    y = _noisy_seasonal(36).drop(pd.Period("2023-03", "M"))
    fc = forecast_series(y, 3)
    assert fc.attrs["n_obs"] == 36
    assert np.isfinite(fc.to_numpy()).all()


def test_quarterly_period_index_is_inferred():
    t = np.arange(20)
    y = pd.Series(
        100 + 2 * t + 10 * np.tile([1, -1, 2, -2], 5),
        index=pd.period_range("2020Q1", periods=20, freq="Q"),
    )
    fc = forecast_series(y, 8)
    assert fc.attrs["season_length"] == 4
    assert fc.index[0] == pd.Period("2025Q1", "Q") and len(fc) == 8


def test_integer_index_with_season_length_continues_positions():
    y = pd.Series(_noisy_seasonal(36).to_numpy())
    fc = forecast_series(y, 5, season_length=12)
    assert isinstance(fc.index, pd.RangeIndex)
    assert list(fc.index) == [36, 37, 38, 39, 40]


def test_datetime_index_continues_by_its_frequency():
    y = _noisy_seasonal(30)
    y.index = pd.date_range("2020-01-01", periods=30, freq="MS")
    fc = forecast_series(y, 2)
    assert fc.attrs["season_length"] == 12
    assert list(fc.index) == [pd.Timestamp("2022-07-01"), pd.Timestamp("2022-08-01")]


def test_interval_ordering_and_custom_levels():
    fc = forecast_series(_noisy_seasonal(), 18, levels=(50, 80, 95))
    assert list(fc.columns) == ["mean", "lo_50", "hi_50", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert (fc["lo_95"] <= fc["lo_80"]).all() and (fc["lo_80"] <= fc["lo_50"]).all()
    assert (fc["lo_50"] <= fc["mean"]).all() and (fc["mean"] <= fc["hi_50"]).all()
    assert (fc["hi_50"] <= fc["hi_80"]).all() and (fc["hi_80"] <= fc["hi_95"]).all()
    assert (fc["hi_95"] - fc["lo_95"]).iloc[-1] > (fc["hi_95"] - fc["lo_95"]).iloc[0]


def test_same_input_same_output():
    y = _noisy_seasonal()
    pd.testing.assert_frame_equal(forecast_series(y, 6), forecast_series(y, 6))
    np.testing.assert_array_equal(forecast_paths(y, 6, seed=3), forecast_paths(y, 6, seed=3))


@pytest.mark.parametrize(
    ("y", "kwargs", "error"),
    [
        (_monthly([1, 2, 3]), {"horizon": 0}, ParamsError),
        (_monthly([1, 2, 3]), {"horizon": 2.5}, ParamsError),
        (_monthly([1, 2, 3]), {"horizon": 2, "levels": (80, 100)}, ParamsError),
        (_monthly([1, 2, 3]), {"horizon": 2, "levels": (0,)}, ParamsError),
        (_monthly([1, 2, 3]), {"horizon": 2, "season_length": 0}, ParamsError),
        (
            pd.Series(["a", "b"], index=pd.period_range("2024-01", periods=2, freq="M")),
            {},
            InputError,
        ),
        (
            pd.Series([1.0, 2.0], index=[pd.Period("2024-02", "M"), pd.Period("2024-01", "M")]),
            {},
            InputError,
        ),
        (pd.Series([1.0, 2.0], index=[pd.Period("2024-01", "M")] * 2), {}, InputError),
        (_monthly([1.0, np.inf, 3.0]), {}, InputError),
        (pd.Series([1.0, 2.0, 3.0]), {}, ParamsError),
        (pd.Series([1.0, 2.0, 3.0], index=pd.date_range("2024-01-01", periods=3)), {}, ParamsError),
        ([1.0, 2.0, 3.0], {}, InputError),
    ],
)
def test_bad_input_raises(y, kwargs, error):
    kwargs = {"horizon": 3, **kwargs}
    with pytest.raises(error) as info:
        forecast_series(y, kwargs.pop("horizon"), **kwargs)
    assert isinstance(info.value, PerflinkError)
    assert "forecast" in str(info.value)


def test_paths_match_the_intervals():
    y = _noisy_seasonal()
    fc = forecast_series(y, 12)
    paths = forecast_paths(y, 12, n_paths=40_000, seed=0)
    assert paths.shape == (40_000, 12)
    q = np.quantile(paths, [0.025, 0.1, 0.5, 0.9, 0.975], axis=0)
    width = (fc["hi_95"] - fc["lo_95"]).to_numpy()
    for row, col in zip(q, ["lo_95", "lo_80", "mean", "hi_80", "hi_95"], strict=True):
        np.testing.assert_allclose(row, fc[col].to_numpy(), atol=0.03 * width.max())


def test_paths_are_clipped_for_nonnegative_series_and_reject_bad_n_paths():
    paths = forecast_paths(_monthly([0.0, 1.0, 0.0, 2.0, 0.0]), 4, n_paths=500)
    assert (paths >= 0).all()
    with pytest.raises(ParamsError, match="n_paths"):
        forecast_paths(_noisy_seasonal(), 4, n_paths=0)


def test_backtest_series_rows_and_columns():
    y = _noisy_seasonal(40)
    bt = backtest_series(y, 6, n_origins=3)
    assert len(bt) == 18
    assert list(bt["origin"].unique()) == list(y.index[31:34])
    np.testing.assert_array_equal(bt["actual"].to_numpy()[-6:], y.to_numpy()[-6:])
    expected = ["origin", "step", "period", "actual", "forecast", "snaive"]
    assert list(bt.columns[:6]) == expected
    assert (bt["lo_95"] <= bt["hi_95"]).all()
    # seasonal naive from origin 2024-04-30 repeats the 12 months before it
    first = bt[bt["origin"] == y.index[33]]
    np.testing.assert_allclose(first["snaive"], y.to_numpy()[22:28])


def test_backtest_series_rejects_too_short_and_bad_origins():
    with pytest.raises(InputError, match="needs at least 7"):
        backtest_series(_monthly(np.arange(6.0)), 6)
    with pytest.raises(ParamsError, match="n_origins"):
        backtest_series(_noisy_seasonal(), 6, n_origins=0)


def test_accuracy_matches_hand_computation():
    # sMAPE: 200*10/210 = 9.5238..., 200*20/380 = 10.5263...; mean = 10.02506
    # MASE: mean |e| = 15; in-sample lag-2 naive MAE: |30-10|,|40-20|,|50-30| = 20 -> 0.75
    got = accuracy([100, 200], [110, 180], [10, 20, 30, 40, 50], 2)
    np.testing.assert_allclose(got["smape"], (200 * 10 / 210 + 200 * 20 / 380) / 2)
    np.testing.assert_allclose(got["mase"], 0.75)
    # history shorter than m + 1 falls back to lag 1: |20-10| = 10 -> 1.5
    np.testing.assert_allclose(accuracy([100, 200], [110, 180], [10, 20], 12)["mase"], 1.5)


def test_accuracy_rejects_bad_input():
    with pytest.raises(InputError, match="same non-zero length"):
        accuracy([1, 2], [1], [1, 2, 3], 1)
    with pytest.raises(ParamsError, match="season_length"):
        accuracy([1, 2], [1, 2], [1, 2, 3], 0)


def test_arima_recovers_ma_coefficient_like_statsmodels():
    # ARIMA(0,1,1) with theta = -0.5: the CSS grid fit must agree with the exact-MLE
    # fit of statsmodels (independent implementation) and pick an MA order.
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    from perflink.forecast import _models as fm

    rng = np.random.default_rng(3)
    e = rng.normal(size=301)
    y = 100 + np.cumsum(e[1:] - 0.5 * e[:-1])
    fit = fm.fit_arima(y)
    ref = SARIMAX(y, order=(0, 1, 1), trend="n").fit(disp=False).params[0]
    assert fit["order"] in ("011", "011+drift")
    np.testing.assert_allclose(fit["theta"], ref, atol=0.03)
    fc = fm.arima_forecast(fit, 5)
    assert fc.shape == (5,) and np.all(np.isfinite(fc))


def test_arima_drift_is_extrapolated_and_short_input_is_random_walk():
    from perflink.forecast import _models as fm

    rng = np.random.default_rng(4)
    y = 10 + 2.0 * np.arange(60) + rng.normal(scale=0.1, size=60)
    fit = fm.fit_arima(y)
    assert fit["order"] == "011+drift"
    np.testing.assert_allclose(np.diff(fm.arima_forecast(fit, 6))[1:], 2.0, atol=0.05)
    short = fm.fit_arima(np.array([1.0, 3.0, 2.0, 5.0]))
    assert short["order"] == "010"
    np.testing.assert_array_equal(fm.arima_forecast(short, 3), [5.0, 5.0, 5.0])


def test_seasonality_test_threshold_per_season_length():
    from perflink.forecast import _models as fm

    rng = np.random.default_rng(5)
    noise = rng.normal(size=24)
    # white noise: quarterly (z = 0) adjusts with two full years, monthly 90% test does not
    assert fm.seasonality_test(noise[:8], 4)
    assert not fm.seasonality_test(noise[:7], 4)
    assert fm.seasonality_test(noise, 12, z=0.0)
    assert not fm.seasonality_test(np.ones(24), 12, z=0.0)


def test_published_forecast_is_median_of_theta_damped_arima():
    from perflink.forecast import _models as fm

    y = pd.Series(
        100 + np.arange(48) + 10 * np.sin(np.arange(48)),
        index=pd.period_range("2020-01", periods=48, freq="M"),
    )
    fc = forecast_series(y, 6)
    core = fm.forecast_core(y.to_numpy(), 6, 12)
    expected = np.median([core.components[k] for k in ("theta", "damped", "arima")], axis=0)
    np.testing.assert_allclose(fc["mean"].to_numpy(), expected)
    assert fc.attrs["method"].startswith("median(theta,damped,arima)")
