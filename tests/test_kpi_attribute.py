"""Tests for perflink.kpi.attribute / attribute_frame: textbook cases, laws, bad input."""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import perflink.kpi._attribute as kpi_engine
from perflink.errors import FormulaError, InputError, ParamsError
from perflink.formula import parse
from perflink.kpi import AttributionWarning, attribute, attribute_frame

CASES = yaml.safe_load(
    (Path(__file__).parent / "results" / "attribution_textbook.yaml").read_text(encoding="utf-8")
)["cases"]


def _brute_force_shapley(formula: str, base: dict, actual: dict) -> dict[str, float]:
    """Average of step changes over all orders, in a plain loop (independent of perflink.kpi)."""
    f = parse(formula)
    names = list(f.inputs)
    phi = dict.fromkeys(names, 0.0)
    orders = list(itertools.permutations(names))
    for order in orders:
        current = dict(base)
        previous = f.evaluate(current)
        for name in order:
            current[name] = actual[name]
            value = f.evaluate(current)
            phi[name] += value - previous
            previous = value
    return {name: phi[name] / len(orders) for name in names}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_textbook_shapley(case: dict) -> None:
    got = attribute(case["formula"], case["base"], case["actual"])
    assert set(got) == set(case["shapley"])
    np.testing.assert_allclose(
        [got[k] for k in case["shapley"]], list(case["shapley"].values()), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(sum(got.values()), case["total_change"], rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_textbook_sequential(case: dict) -> None:
    for ref in case["sequential"]:
        got = attribute(
            case["formula"], case["base"], case["actual"], method="sequential", order=ref["order"]
        )
        np.testing.assert_allclose(
            [got[k] for k in ref["values"]], list(ref["values"].values()), rtol=1e-12, atol=1e-15
        )


def test_sequential_default_order_is_formula_order() -> None:
    got = attribute(
        "qty * price", {"qty": 1000, "price": 10}, {"qty": 1200, "price": 11}, method="sequential"
    )
    assert got == {"qty": 2000.0, "price": 1200.0}


def test_dupont_from_raw_statements_gives_cancelled_inputs_nothing() -> None:
    base = {"net_profit": 10.0, "revenue": 100.0, "assets": 125.0, "equity": 50.0}
    actual = {"net_profit": 12.0, "revenue": 110.0, "assets": 120.0, "equity": 51.0}
    got = attribute("net_profit / revenue * revenue / assets * assets / equity", base, actual)
    expected = _brute_force_shapley("net_profit / equity", base, actual)
    np.testing.assert_allclose([got["revenue"], got["assets"]], [0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(
        [got["net_profit"], got["equity"]], [expected["net_profit"], expected["equity"]]
    )


def test_matches_brute_force_on_nonlinear_formula() -> None:
    formula = "abs(a / b - 1) * min(c, d) + max(a, c) ** 2"
    base = {"a": 3.0, "b": 2.0, "c": 1.5, "d": 4.0}
    actual = {"a": 1.0, "b": 2.5, "c": 5.0, "d": 2.0}
    got = attribute(formula, base, actual)
    expected = _brute_force_shapley(formula, base, actual)
    np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), rtol=1e-12)


def test_unchanged_input_gets_exactly_zero() -> None:
    got = attribute("a * b / c", {"a": 0.1, "b": 3.3, "c": 7.7}, {"a": 0.3, "b": 3.3, "c": 1.1})
    assert got["b"] == 0.0
    frame = attribute_frame(
        "a * b / c",
        pd.DataFrame({"a": [0.1, 2.0], "b": [3.3, 0.7], "c": [7.7, 0.9]}),
        pd.DataFrame({"a": [0.3, 2.0], "b": [3.3, 0.1], "c": [1.1, 1.9]}),
    )
    assert frame.loc[0, "b"] == 0.0 and frame.loc[1, "a"] == 0.0


# --- property tests -----------------------------------------------------------------------

NAMES = ["a", "b", "c", "d", "e"]
_value = st.floats(min_value=0.5, max_value=50.0) | st.floats(min_value=-50.0, max_value=-0.5)


@st.composite
def _formulas(draw: st.DrawFn) -> str:
    """Random + - * / trees over 2-5 names; denominators are single names (|value| >= 0.5)."""
    names = NAMES[: draw(st.integers(min_value=2, max_value=5))]

    def tree(depth: int) -> str:
        if depth == 0 or draw(st.booleans()):
            return draw(st.sampled_from(names))
        op = draw(st.sampled_from(["+", "-", "*", "/"]))
        right = draw(st.sampled_from(names)) if op == "/" else tree(depth - 1)
        return f"({tree(depth - 1)} {op} {right})"

    return f"{tree(3)} + {names[0]} * {names[-1]}"  # every listed name may appear


@settings(max_examples=150, deadline=None)
@given(formula=_formulas(), data=st.data())
def test_contributions_sum_to_total_change(formula: str, data: st.DataObject) -> None:
    f = parse(formula)
    base = {n: data.draw(_value) for n in f.inputs}
    actual = {n: data.draw(_value) for n in f.inputs}
    got = attribute(f, base, actual)
    total = f.evaluate(actual) - f.evaluate(base)
    scale = sum(abs(v) for v in got.values()) + abs(f.evaluate(actual)) + abs(f.evaluate(base))
    assert abs(sum(got.values()) - total) <= 1e-9 * scale
    seq = attribute(f, base, actual, method="sequential")
    assert abs(sum(seq.values()) - total) <= 1e-9 * scale


@settings(max_examples=60, deadline=None)
@given(formula=_formulas(), data=st.data())
def test_exact_shapley_equals_brute_force(formula: str, data: st.DataObject) -> None:
    f = parse(formula)
    base = {n: data.draw(_value) for n in f.inputs}
    actual = {n: data.draw(_value) for n in f.inputs}
    got = attribute(f, base, actual)
    expected = _brute_force_shapley(formula, base, actual)
    scale = sum(abs(v) for v in expected.values()) + 1.0
    np.testing.assert_allclose(
        [got[k] for k in expected], list(expected.values()), atol=1e-9 * scale
    )


@given(st.lists(_value, min_size=6, max_size=6))
def test_sum_gives_each_input_its_own_change(v: list[float]) -> None:
    base, actual = dict(zip("abc", v[:3], strict=True)), dict(zip("abc", v[3:], strict=True))
    got = attribute("a + b - c", base, actual)
    np.testing.assert_allclose(
        [got["a"], got["b"], got["c"]],
        [actual["a"] - base["a"], actual["b"] - base["b"], -(actual["c"] - base["c"])],
        rtol=1e-12,
    )


@given(st.lists(_value | st.just(0.0), min_size=4, max_size=4))
def test_product_closed_form_including_zero_and_sign_changes(v: list[float]) -> None:
    a0, b0, a1, b1 = v
    got = attribute("a * b", {"a": a0, "b": b0}, {"a": a1, "b": b1})
    scale = abs(a0 * b0) + abs(a1 * b1) + abs(a0 * b1) + abs(a1 * b0) + 1e-300
    assert abs(got["a"] - (a1 - a0) * (b0 + b1) / 2) <= 1e-12 * scale
    assert abs(got["b"] - (b1 - b0) * (a0 + a1) / 2) <= 1e-12 * scale


@given(st.lists(_value, min_size=6, max_size=6))
def test_symmetric_inputs_swap_contributions(v: list[float]) -> None:
    formula = "a * b / c + a + b"
    base = {"a": v[0], "b": v[1], "c": v[2]}
    actual = {"a": v[3], "b": v[4], "c": v[5]}
    swap = {"a": "b", "b": "a", "c": "c"}
    got = attribute(formula, base, actual)
    swapped = attribute(
        formula, {swap[k]: x for k, x in base.items()}, {swap[k]: x for k, x in actual.items()}
    )
    scale = sum(abs(x) for x in got.values()) + 1.0
    np.testing.assert_allclose(
        [swapped["b"], swapped["a"], swapped["c"]],
        [got["a"], got["b"], got["c"]],
        atol=1e-12 * scale,
    )


# --- beyond the exact limit ---------------------------------------------------------------


def test_many_inputs_sampled_sum_exactly_and_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"x{i}" for i in range(14)]  # x5 stays put: 13 change
    rng = np.random.default_rng(7)
    base = {n: float(rng.uniform(0.9, 1.1)) for n in names}
    actual = {n: float(rng.uniform(0.9, 1.1)) for n in names}
    actual["x5"] = base["x5"]
    formula = " * ".join(names)
    with pytest.warns(AttributionWarning, match="13 changing inputs"):
        sampled = attribute(formula, base, actual, n_permutations=400)
    with pytest.warns(AttributionWarning):  # the fixed seed makes it reproducible
        assert attribute(formula, base, actual, n_permutations=400) == sampled
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(kpi_engine, "MAX_EXACT", 13)
        exact = attribute(formula, base, actual)
    total = math.prod(actual.values()) - math.prod(base.values())
    assert sum(sampled.values()) == pytest.approx(total, rel=1e-12)
    assert sampled["x5"] == 0.0
    # small changes around 1 make the product nearly additive: the estimate is close
    np.testing.assert_allclose(list(sampled.values()), list(exact.values()), atol=0.01 * abs(total))


def test_many_inputs_in_a_sum_stay_exact() -> None:
    products = [f"q{i} * p{i}" for i in range(10)]  # 20 inputs, 2 per additive term
    base = {f"{k}{i}": 1.0 + i for i in range(10) for k in "qp"}
    actual = {f"{k}{i}": 2.0 + i for i in range(10) for k in "qp"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = attribute(" + ".join(products), base, actual)
    for i in range(10):
        assert got[f"q{i}"] == pytest.approx(1.0 * (base[f"p{i}"] + actual[f"p{i}"]) / 2)


# --- frames -------------------------------------------------------------------------------


def test_attribute_frame_matches_scalar_rows() -> None:
    formula = "revenue / assets * (1 - cost_ratio)"
    index = pd.MultiIndex.from_tuples([("d01", "2026-07"), ("d02", "2026-07"), ("d03", "2026-07")])
    base = pd.DataFrame(
        {
            "revenue": [100.0, 80.0, 5.0],
            "assets": [50.0, 40.0, 10.0],
            "cost_ratio": [0.7, 0.9, 0.5],
        },
        index=index,
    )
    actual = pd.DataFrame(
        {
            "revenue": [120.0, 60.0, np.nan],
            "assets": [55.0, 40.0, 12.0],
            "cost_ratio": [0.72, 0.85, 0.5],
        },
        index=index,
    )
    out = attribute_frame(formula, base, actual)
    assert list(out.columns) == ["revenue", "assets", "cost_ratio"]
    assert out.index.equals(index)
    for i in range(2):
        row = attribute(formula, base.iloc[i].to_dict(), actual.iloc[i].to_dict())
        np.testing.assert_allclose(out.iloc[i].to_numpy(), list(row.values()), rtol=1e-12)
    assert out.iloc[2].isna().all()  # NaN input: the whole row is NaN
    seq = attribute_frame(
        formula, base, actual, method="sequential", order=["cost_ratio", "assets", "revenue"]
    )
    np.testing.assert_allclose(seq.iloc[:2].sum(axis=1), out.iloc[:2].sum(axis=1), rtol=1e-12)


def test_attribute_frame_undefined_mix_gives_nan_row() -> None:
    base = pd.DataFrame({"a": [1.0, 1.0], "b": [1.0, 2.0], "c": [0.0, 0.0]})
    actual = pd.DataFrame({"a": [2.0, 2.0], "b": [2.0, 3.0], "c": [1.0, 1.0]})
    out = attribute_frame("a / (b - c)", base, actual)  # row 0: b=1, c=1 makes b-c zero
    assert out.iloc[0].isna().all()
    assert np.isfinite(out.iloc[1]).all()


def test_attribute_frame_bad_input() -> None:
    base = pd.DataFrame({"a": [1.0], "b": [2.0]})
    with pytest.raises(InputError, match="same index"):
        attribute_frame("a * b", base, base.set_axis([5]))
    with pytest.raises(InputError, match="no column 'b'"):
        attribute_frame("a * b", base, base[["a"]])
    with pytest.raises(InputError, match="not numeric"):
        attribute_frame("a * b", base, base.assign(b=["x"]))


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"base": {"a": 1.0}}, InputError, "base has no value for metric 'b'"),
        ({"actual": {"a": 1.0, "b": math.inf}}, InputError, "actual value of metric 'b'"),
        ({"actual": {"a": 1.0, "b": "two"}}, InputError, "metric 'b'"),
        ({"method": "owen"}, ParamsError, "'owen'"),
        ({"method": "sequential", "order": ["a"]}, ParamsError, "exactly once"),
        ({"order": ["a", "b"]}, ParamsError, "sequential"),
        ({"n_permutations": 1}, ParamsError, "n_permutations"),
        ({"formula": "revenue / lag(revenue, 12)"}, FormulaError, "lag()"),
        ({"formula": "a <= b"}, FormulaError, "comparison"),
        ({"formula": "a.b"}, FormulaError, "attribute access"),
        ({"formula": "a / (b - 2)", "base": {"a": 1.0, "b": 2.0}}, InputError, "undefined"),
    ],
)
def test_attribute_bad_input(kwargs: dict, error: type, fragment: str) -> None:
    args = {"formula": "a * b", "base": {"a": 1.0, "b": 3.0}, "actual": {"a": 2.0, "b": 4.0}}
    args.update(kwargs)
    with pytest.raises(error) as info:
        attribute(args.pop("formula"), args.pop("base"), args.pop("actual"), **args)
    assert fragment in str(info.value)
