"""Tests for perflink.anomaly (detect_series, detect_frame) on synthetic series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perflink.anomaly import COLUMNS, _core, detect_frame, detect_series
from perflink.anomaly._core import nanmedian_last
from perflink.errors import InputError, ParamsError, PerflinkError


def _monthly(values: np.ndarray, start: str = "2022-01") -> pd.Series:
    return pd.Series(values, index=pd.period_range(start, periods=len(values), freq="M"))


def _seasonal(n: int = 60, seed: int = 0, noise: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, noise, n)


def _flags(res: pd.DataFrame) -> list[int]:
    return list(np.flatnonzero(res["is_anomaly"].to_numpy()))


def test_result_shape_columns_dtypes_and_alignment():
    y = _monthly(_seasonal())
    res = detect_series(y)
    assert list(res.columns) == list(COLUMNS)
    assert res.index.equals(y.index)
    assert res["is_anomaly"].dtype == bool
    for col in ("expected", "lower", "upper", "score"):
        assert res[col].dtype == np.float64
    assert res.attrs["method"] == "robust_seasonal"
    assert res.attrs["season_length"] == 12
    assert (res["lower"] <= res["expected"]).all() and (res["expected"] <= res["upper"]).all()
    # on a clean seasonal series the model tracks the data closely
    assert np.abs(res["expected"] - y).median() < 1.5


def test_planted_spike_is_the_only_flag():
    v = _seasonal()
    v[30] += 10
    res = detect_series(_monthly(v))
    assert _flags(res) == [30]
    assert res["kind"].iloc[30] == "spike"
    assert res["score"].iloc[30] > 3
    assert v[30] > res["upper"].iloc[30]


def test_negative_spike_has_negative_score():
    v = _seasonal(seed=11)
    v[45] -= 10
    res = detect_series(_monthly(v))
    assert _flags(res) == [45]
    assert res["score"].iloc[45] < -3


def test_level_shift_flagged_within_first_three_points():
    v = _seasonal(72, seed=1)
    v[36:] += 8
    res = detect_series(_monthly(v))
    flags = _flags(res)
    assert flags, "level shift not flagged"
    assert all(36 <= f <= 38 for f in flags), flags
    assert set(res["kind"].iloc[flags]) <= {"level_shift", "spike"}


def test_trend_break_flagged_near_the_break():
    v = _seasonal(72, seed=2)
    t = np.arange(72)
    v = v + np.where(t >= 40, 2.0 * (t - 40), 0.0)
    res = detect_series(_monthly(v))
    flags = _flags(res)
    assert flags and 40 <= min(flags) <= 44, flags
    assert res["kind"].iloc[min(flags)] == "trend_break"


def test_constant_series_flags_only_the_departure():
    # 5.5, not 5: a constant of whole numbers would be a count (see the count tests)
    res = detect_series(_monthly(np.full(40, 5.5)))
    assert not res["is_anomaly"].any()
    assert (res["score"] == 0).all()
    v = np.full(40, 5.5)
    v[20] = 9.5
    res = detect_series(_monthly(v))
    assert _flags(res) == [20]
    assert res["expected"].iloc[20] == 5.5


def test_short_series_uses_fallback_and_still_finds_a_spike():
    rng = np.random.default_rng(4)
    v = 50 + rng.normal(0, 1, 15)
    v[9] += 12
    res = detect_series(_monthly(v))
    assert res.attrs["method"] == "short_series_mad"
    assert _flags(res) == [9]


def test_very_short_series_gets_no_flags():
    res = detect_series(_monthly(np.array([1.0, 2.0, 100.0, 2.0, 1.0])))
    assert res.attrs["method"] == "insufficient_history"
    assert not res["is_anomaly"].any()
    assert (res["expected"] == 2.0).all()


def test_nans_are_not_flagged_but_get_an_expected_value():
    v = _seasonal(seed=5)
    v[[10, 11, 40]] = np.nan
    v[25] += 10
    res = detect_series(_monthly(v))
    assert _flags(res) == [25]
    assert res["expected"].iloc[[10, 11, 40]].notna().all()
    assert res["score"].iloc[[10, 11, 40]].isna().all()


def test_quarterly_index_and_explicit_season_length():
    rng = np.random.default_rng(6)
    t = np.arange(32)
    v = 20 + 0.2 * t + 3 * np.tile([1, -1, 2, -2], 8) + rng.normal(0, 0.3, 32)
    v[20] += 4
    yq = pd.Series(v, index=pd.period_range("2018Q1", periods=32, freq="Q"))
    res = detect_series(yq)
    assert res.attrs["season_length"] == 4
    assert _flags(res) == [20]
    same = detect_series(pd.Series(v), season_length=4)
    np.testing.assert_array_equal(same["is_anomaly"].to_numpy(), res["is_anomaly"].to_numpy())


def test_deterministic():
    v = _seasonal(seed=7)
    v[33] += 9
    a = detect_series(_monthly(v))
    b = detect_series(_monthly(v.copy()))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("y", "kwargs", "error"),
    [
        (_monthly(np.array(["a"] * 30, dtype=object)), {}, InputError),
        (
            pd.Series(np.arange(30.0), index=[0] * 2 + list(range(2, 30))),
            {"season_length": 12},
            InputError,
        ),
        (pd.Series(np.arange(30.0)), {}, ParamsError),
        (pd.Series(np.arange(30.0)), {"season_length": 0}, ParamsError),
        (pd.Series(np.arange(30.0)), {"season_length": 2.5}, ParamsError),
        (_monthly(np.r_[np.arange(29.0), np.inf]), {}, InputError),
        (np.arange(30.0), {"season_length": 12}, InputError),
    ],
)
def test_bad_inputs_raise_perflink_error(y, kwargs, error):
    with pytest.raises(error) as info:
        detect_series(y, **kwargs)
    assert isinstance(info.value, PerflinkError)


def test_detect_frame_matches_detect_series():
    idx = pd.period_range("2022-01", periods=48, freq="M")
    cols = {}
    for i in range(5):
        v = _seasonal(48, seed=10 + i)
        v[20 + i] += 10 * (-1) ** i
        cols[(f"E{i}", "revenue")] = v
    cols[("E9", "short")] = np.r_[np.full(40, np.nan), np.arange(8.0)]
    wide = pd.DataFrame(cols, index=idx)
    long = detect_frame(wide)
    assert len(long) == 48 * wide.shape[1]
    assert long["is_anomaly"].dtype == bool
    for col in wide.columns:
        one = detect_series(wide[col])
        part = long[long["series"] == col]
        np.testing.assert_allclose(part["expected"], one["expected"])
        np.testing.assert_array_equal(part["is_anomaly"], one["is_anomaly"])
        assert (part["method"] == one.attrs["method"]).all()


def test_detect_frame_bad_input_raises():
    idx = pd.period_range("2022-01", periods=30, freq="M")
    with pytest.raises(InputError):
        detect_frame(pd.DataFrame({"a": ["x"] * 30}, index=idx))
    with pytest.raises(InputError):
        detect_frame(pd.DataFrame([[1.0, 2.0]] * 30, index=idx, columns=["a", "a"]))
    with pytest.raises(ParamsError):
        detect_frame(pd.DataFrame({"a": np.arange(30.0)}))


def test_nanmedian_helper_agrees_with_numpy():
    rng = np.random.default_rng(8)
    a = rng.normal(size=(50, 7))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[0] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(a, axis=1)
    np.testing.assert_allclose(nanmedian_last(a), expected, equal_nan=True)


@pytest.mark.parametrize(("n", "season"), [(20, 1), (48, 12)])
def test_pure_noise_is_rarely_flagged(n, season):
    # guards the false-alarm rate: white noise has no anomalies, and the
    # thresholds aim at about 1 flag per 100 points even on real series
    rng = np.random.default_rng(12)
    wide = pd.DataFrame(rng.normal(size=(n, 300)))
    long = detect_frame(wide, season_length=season)
    assert long["is_anomaly"].mean() < 0.01


# ------------------------------------------------------------------ flag rate, counts, quarterly


def test_flag_rate_sets_the_operating_point():
    from perflink.anomaly._rates import settings_for_rate, tail_rate

    loose, strict = settings_for_rate(3.0), settings_for_rate(0.25)
    assert loose.spike_z < settings_for_rate(1.0).spike_z < strict.spike_z
    assert loose.shift_z < strict.shift_z
    # the tail tables give back the rate each threshold was read off
    kinds = np.array(["spike", "level_shift"], dtype=object)
    back = tail_rate(np.array([strict.spike_z, strict.shift_z]), kinds)
    np.testing.assert_allclose(back, [0.4 * 0.25, 0.6 * 0.25], rtol=1e-3)
    # quarterly series break more often at the same z: their own, stricter tables
    assert settings_for_rate(1.0, 4).shift_z > settings_for_rate(1.0, 12).shift_z
    assert tail_rate(np.array([6.0]), kinds[1:], 4)[0] > tail_rate(np.array([6.0]), kinds[1:])[0]
    # a lower rate flags a subset of the points a higher rate flags
    rng = np.random.default_rng(8)
    v = _seasonal(96, seed=8) + rng.standard_t(3, 96)
    few = detect_series(_monthly(v), flag_rate=0.25)["is_anomaly"]
    many = detect_series(_monthly(v), flag_rate=3.0)["is_anomaly"]
    assert few.sum() <= many.sum() and not (few & ~many).any()


def test_bad_flag_rate_is_a_params_error():
    y = _monthly(_seasonal())
    for bad in (0, -1, 25, "1", True):
        with pytest.raises(ParamsError, match="flag_rate"):
            detect_series(y, flag_rate=bad)
    with pytest.raises(ParamsError, match="flag_rate"):
        detect_frame(y.to_frame(), flag_rate=0)


def test_small_counts_use_a_poisson_floor():
    rng = np.random.default_rng(3)
    v = rng.poisson(2.0, 45).astype(float)
    v[42] = 6.0  # a month with 6 new customers where 2 are usual: Poisson noise, not news
    res = detect_series(_monthly(v))
    assert res.attrs["method"] == "count_short_series_mad"
    assert not res["is_anomaly"].iloc[42]
    assert (res["lower"] >= 0).all()
    v[42] = 25.0  # far outside what Poisson noise does
    res = detect_series(_monthly(v))
    assert res["is_anomaly"].iloc[42] and res["kind"].iloc[42] == "spike"
    # the same shape in a large, non-integer unit is scored on the plain (seasonal) scale
    big = detect_series(_monthly(v * 1000.5))
    assert big.attrs["method"] == "robust_seasonal"


def test_quarterly_values_repeated_monthly_are_scored_per_quarter():
    rng = np.random.default_rng(5)
    q = 85 + rng.normal(0, 2.0, 15)
    res = detect_series(_monthly(np.repeat(q, 3), start="2023-01"))
    assert res.attrs["method"] == "quarterly_steps"
    assert not res["is_anomaly"].any()  # a new survey value each quarter is not a level shift
    q[10] += 25
    res = detect_series(_monthly(np.repeat(q, 3), start="2023-01"))
    assert _flags(res) == [30]  # the first month of the quarter that moved
    # quarters that start mid-series (index from February) are aligned by the calendar
    res = detect_series(_monthly(np.repeat(q, 3)[1:], start="2023-02"))
    assert res.attrs["method"] == "quarterly_steps" and _flags(res) == [29]


def test_values_held_over_quarters_that_start_off_the_calendar_are_scored_per_quarter():
    """A score held over quarters that start in December (or any month but a calendar
    quarter's) is one value per quarter too: a new value is no spike of many times the
    (nil) month-to-month swing, and a jump far from the usual quarter values is flagged at
    the first month of its quarter."""
    rng = np.random.default_rng(8)
    q = 85 + rng.normal(0, 4.0, 16)
    for into in (0, 1, 2):  # January is the 1st, 2nd, 3rd month of a block: Jan, Dec, Nov
        v = np.repeat(q, 3)[into : into + 45]
        res = detect_series(_monthly(v, start="2023-01"))
        assert res.attrs["method"] == "quarterly_steps", into
        assert not res["is_anomaly"].any(), into
    q[12] += 30
    v = np.repeat(q, 3)[1:46]  # from January: Jan, Feb end the first block
    res = detect_series(_monthly(v, start="2023-01"))
    assert res.attrs["method"] == "quarterly_steps" and _flags(res) == [12 * 3 - 1]
    # without the quarter reading, the same series flags every change of quarter
    assert (
        detect_series(_monthly(v + np.arange(45) * 1e-6, start="2023-01"))["is_anomaly"].sum() > 1
    )


def test_short_series_and_rates_in_detect_frame_match_detect_series():
    rng = np.random.default_rng(6)
    wide = pd.DataFrame(
        {
            "short": np.r_[[np.nan] * 30, 50 + rng.normal(0, 1, 15)],
            "count": rng.poisson(3.0, 45).astype(float),
            "plain": _seasonal(45, seed=6),
        },
        index=pd.period_range("2023-01", periods=45, freq="M"),
    )
    wide.iloc[40, 0] += 15
    long = detect_frame(wide, flag_rate=0.5)
    for col in wide:
        one = detect_series(wide[col], flag_rate=0.5)
        part = long[long["series"] == col]
        assert part["method"].iloc[0] == one.attrs["method"]
        np.testing.assert_array_equal(part["is_anomaly"].to_numpy(), one["is_anomaly"].to_numpy())
    assert long[long["series"] == "short"]["is_anomaly"].to_numpy()[40]


def test_rows_scored_in_blocks_get_the_figures_they_get_together(monkeypatch) -> None:
    # detect_block scores many rows a block at a time (memory); every figure of a row is
    # its own, spikes and level shifts (the second pass) included.
    rng = np.random.default_rng(7)
    t = np.arange(48)
    y = 100 + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2, (9, 48))
    y[1, 30] += 40  # a spike
    y[4, 24:] += 30  # a level shift
    y[6, :5] = np.nan  # a late start
    for season in (12, 1):
        whole = _core.detect_block(y, season)
        with monkeypatch.context() as mp:
            mp.setattr(_core, "BLOCK_ROWS", 2)
            blocks = _core.detect_block(y, season)
        assert whole.keys() == blocks.keys()
        for key in whole:
            np.testing.assert_array_equal(whole[key], blocks[key])
    assert whole["is_anomaly"][1, 30] and whole["is_anomaly"][4].any()


def test_no_task_imports_scipy_stats_and_its_formulas_agree() -> None:
    # The tasks use scipy.special's functions where they used scipy.stats' distributions
    # (importing scipy.stats cost every kernel 0.5 s); the figures are the same bit for bit.
    import subprocess
    import sys

    from scipy import special, stats

    from perflink.forecast import _models

    code = (
        "import sys, perflink.mapping, perflink.kpi, perflink.scoring, perflink.forecast, "
        "perflink.anomaly, perflink.summary, perflink.report; print('scipy.stats' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    for level in (50, 80, 95, 99):
        assert _models.interval_z(level) == stats.t.ppf(0.5 + level / 200, _models.T_DF)
    rng = np.random.default_rng(3)
    d2 = np.r_[rng.chisquare(4, 2000) * 3, 0.0, -1e-12, np.nan, np.inf]
    for k in (1, 2, 4, 7):
        want = stats.chi2.sf(d2, k)
        got = np.where(d2 < 0, 1.0, special.chdtrc(k, d2))
        np.testing.assert_array_equal(got, want)
    p = np.r_[rng.uniform(0, 1, 2000), 1e-300, 0.5, 1.0]
    got = 0.0 - special.ndtri(p)
    np.testing.assert_array_equal(got, stats.norm.isf(p))
    assert not np.signbit(got[p == 0.5]).any()
    f, d1, dd = rng.uniform(0, 40, 2000), rng.integers(1, 12, 2000), rng.integers(2, 400, 2000)
    np.testing.assert_array_equal(special.fdtrc(d1, dd, f), stats.f.sf(f, d1, dd))
