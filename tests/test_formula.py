"""Tests for perflink.formula: grammar, refusals, scalar/array/panel evaluation, dependencies."""

from __future__ import annotations

import builtins
import math

import numpy as np
import pandas as pd
import pytest

from perflink.errors import FormulaError, InputError, PerflinkError
from perflink.formula import Formula, dependency_order, parse

VALUES = {
    "net_profit": 12.0,
    "equity": 48.0,
    "revenue": 200.0,
    "cogs": 120.0,
    "opex": 40.0,
    "invested_capital": 600.0,
    "contract_amount": 250.0,
    "a": 3.0,
    "b": -2.0,
    "x": 4.0,
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("net_profit / equity", 0.25),
        ("(revenue - cogs - opex) * 0.75", 30.0),
        ("net_profit - 0.08 / 12 * invested_capital", 8.0),
        ("abs(revenue / contract_amount - 1)", 0.2),
        ("min(a, b)", -2.0),
        ("max(a, b, x)", 4.0),
        ("-a + +b", -5.0),
        ("x ** 2", 16.0),
        ("x ** -0.5", 0.5),
        ("2 * (a + b) / x", 0.5),
        ("1e4 * a", 30000.0),
        ("revenue\n  - cogs", 80.0),  # YAML folded lines are joined
    ],
)
def test_parse_and_evaluate_scalar(expr: str, expected: float) -> None:
    f = parse(expr)
    assert isinstance(f, Formula)
    assert f.evaluate(VALUES) == pytest.approx(expected)
    assert not f.is_boolean


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("cogs <= revenue", 1.0),
        ("cogs > revenue", 0.0),
        ("b < a < x", 1.0),
        ("b < x < a", 0.0),
        ("a == 3 and not b >= 0", 1.0),
        ("a != 3 or x > 5", 0.0),
    ],
)
def test_comparisons_are_boolean(expr: str, expected: float) -> None:
    f = parse(expr)
    assert f.is_boolean
    assert f.evaluate(VALUES) == expected


def test_formula_metadata() -> None:
    f = parse("revenue / lag(revenue, 12) - sum(cogs, 3) / opex")
    assert f.names == {"revenue", "cogs", "opex"}
    assert f.inputs == ("revenue", "cogs", "opex")
    assert dict(f.lags) == {"revenue": 12, "cogs": 2, "opex": 0}
    assert f.uses_time
    assert parse("a + b") == parse(" a  +  b ")
    assert len({parse("a + b"), parse("a + b")}) == 1


def test_additive_terms_pull_out_constants() -> None:
    f = parse("(revenue - cogs) * 0.75 - 2 * opex + a / 4 - 3")
    terms = [(coef, t.text) for coef, t in f.additive_terms()]
    assert terms == [(0.75, "revenue"), (-0.75, "cogs"), (-2.0, "opex"), (0.25, "a"), (-1.0, "3")]
    total = sum(coef * t.evaluate(VALUES) for coef, t in f.additive_terms())
    assert total == pytest.approx(f.evaluate(VALUES))
    assert [t.text for _, t in parse("a * b").additive_terms()] == ["a * b"]


def test_division_by_zero_is_nan_and_nan_propagates() -> None:
    assert math.isnan(parse("a / b").evaluate({"a": 1.0, "b": 0.0}))
    assert math.isnan(parse("0 / b").evaluate({"b": 0.0}))
    assert math.isnan(parse("b ** -1").evaluate({"b": 0.0}))
    assert math.isnan(parse("max(a, b) + 1").evaluate({"a": math.nan, "b": 1.0}))
    # an unknown comparison stays unknown unless the other side decides it
    assert math.isnan(parse("a < b").evaluate({"a": math.nan, "b": 1.0}))
    assert parse("a < b and b < 0").evaluate({"a": math.nan, "b": 1.0}) == 0.0
    assert parse("a < b or b > 0").evaluate({"a": math.nan, "b": 1.0}) == 1.0


def test_evaluate_on_numpy_arrays_broadcasts() -> None:
    out = parse("a / b - 1").evaluate({"a": np.array([[1.0], [4.0]]), "b": np.array([0.0, 2.0])})
    np.testing.assert_array_equal(out, [[np.nan, -0.5], [np.nan, 1.0]])


def test_safe_without_eval_or_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec must not be used")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert parse("min(a, x) * 2").evaluate(VALUES) == 6.0


INJECTIONS = [
    ("__import__('os').system('ls')", "call"),
    ("().__class__.__bases__[0]", "subscript"),
    ("().__class__", "attribute"),
    ("lambda: 1", "lambda"),
    ("open('x')", "call"),
    ("[x for x in y]", "comprehension"),
    ("revenue.real", "attribute"),
    ('"a"*10', "str constant"),
    ("b'a'", "bytes constant"),
    ("9**9**9", "exponent"),
    ("x ** 13", "exponent"),
    ("x ** a", "exponent"),
    ("revenue if x else y", "conditional"),
    ("(y := 1)", "assignment"),
    ("f'{a}'", "f-string"),
    ("None + a", "NoneType constant"),
    ("True * a", "bool constant"),
    ("1j * a", "complex constant"),
    ("(a, b)", "tuple"),
    ("{'a': 1}", "dict"),
    ("min(a, *b)", "starred"),
    ("min(a, b=1)", "keyword"),
    ("~a", "operator"),
    ("a // b", "operator"),
    ("a % b", "operator"),
    ("a in b", "comparison"),
    ("a is b", "comparison"),
    ("exp(a)", "call"),
    ("abs", "function name"),
    ("Revenue + 1", "not a metric id"),
    ("__class__", "not a metric id"),
    ("收入 + 1", "not a metric id"),
    ("lag(a, -1)", "lag()"),
    ("lag(a, 1.5)", "lag()"),
    ("lag(a + b, 1)", "lag()"),
    ("lag(a, k)", "lag()"),
    ("sum(a, 0)", "sum()"),
    ("sum(a, 121)", "sum()"),
    ("abs(a, b)", "abs()"),
    ("min(a)", "min()"),
    ("a + (b < x)", "expected a number"),
    ("a and b", "expected a comparison"),
    ("1e999 * a", "out of range"),
    ("a +", "syntax error"),
    ("(a", "syntax error"),
    ("", "empty"),
]


@pytest.mark.parametrize(("expr", "fragment"), INJECTIONS)
def test_refused_with_formula_error(expr: str, fragment: str) -> None:
    with pytest.raises(FormulaError) as info:
        parse(expr, context="metric roe")
    message = str(info.value)
    assert message.startswith("metric roe:")
    assert fragment in message
    if expr:
        assert "column" in message


def test_refusal_names_token_and_position() -> None:
    with pytest.raises(FormulaError) as info:
        parse("revenue + cogs.real * 2", context="metric gp")
    assert "'cogs.real'" in str(info.value)
    assert "column 11" in str(info.value)
    assert info.value.position == 10  # type: ignore[attr-defined]


def test_deep_nesting_and_length_are_refused() -> None:
    with pytest.raises(FormulaError):
        parse("(" * 300 + "a" + ")" * 300)
    with pytest.raises(FormulaError, match="limit"):
        parse("a + " * 600 + "a")
    with pytest.raises(FormulaError, match="must be a string"):
        parse(3.0)  # type: ignore[arg-type]


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(FormulaError) as info:
        parse("revnue / equty", context="metric roe", known=["revenue", "equity", "net_profit"])
    message = str(info.value)
    assert "'revnue' at column 1 (did you mean 'revenue'?)" in message
    assert "'equty' at column 10 (did you mean 'equity'?)" in message
    assert parse("revenue / equity", known={"revenue", "equity"}).names == {"revenue", "equity"}


def test_scalar_mode_errors() -> None:
    with pytest.raises(FormulaError, match="'equity'"):
        parse("net_profit / equity").evaluate({"net_profit": 1.0})
    with pytest.raises(FormulaError, match="not numeric"):
        parse("a + 1").evaluate({"a": "ten"})
    with pytest.raises(FormulaError, match="evaluate_frame"):
        parse("revenue / lag(revenue, 12)").evaluate({"revenue": 1.0})


def _panel() -> pd.DataFrame:
    index = pd.MultiIndex.from_product(
        [["d01", "d02"], pd.period_range("2026-01", periods=4, freq="M")],
        names=["entity_id", "period"],
    )
    return pd.DataFrame(
        {
            "revenue": [10.0, 20.0, 30.0, 40.0, 1.0, 2.0, np.nan, 4.0],
            "cost": [5.0, 0.0, 10.0, 50.0, 1.0, 1.0, 1.0, 1.0],
        },
        index=index,
    )


def test_evaluate_frame_lag_and_rolling_sum_stay_within_entity() -> None:
    wide = _panel()
    growth = parse("revenue / lag(revenue, 1) - 1").evaluate_frame(wide)
    np.testing.assert_allclose(growth, [np.nan, 1.0, 0.5, 1 / 3, np.nan, 1.0, np.nan, np.nan])
    rolling = parse("sum(revenue, 2)").evaluate_frame(wide)
    np.testing.assert_allclose(rolling, [np.nan, 30.0, 50.0, 70.0, np.nan, 3.0, np.nan, np.nan])
    same = parse("lag(revenue, 0)").evaluate_frame(wide)
    np.testing.assert_allclose(same, wide["revenue"])
    assert growth.index.equals(wide.index)


def test_evaluate_frame_division_and_rules() -> None:
    wide = _panel()
    margin = parse("revenue / cost").evaluate_frame(wide)
    assert margin.dtype == "float64"
    np.testing.assert_allclose(margin, [2.0, np.nan, 3.0, 0.8, 1.0, 2.0, np.nan, 4.0])
    rule = parse("cost <= revenue").evaluate_frame(wide)
    assert str(rule.dtype) == "boolean"
    assert rule.tolist() == [True, True, True, False, True, True, pd.NA, True]
    np.testing.assert_allclose(parse("2").evaluate_frame(wide), np.full(8, 2.0))


def test_evaluate_frame_bad_input() -> None:
    wide = _panel()
    with pytest.raises(FormulaError, match="'profit'"):
        parse("profit / cost").evaluate_frame(wide)
    with pytest.raises(InputError, match="sorted"):
        parse("lag(revenue, 1)").evaluate_frame(wide.iloc[::-1])
    with pytest.raises(InputError, match="entity_id"):
        parse("lag(revenue, 1)").evaluate_frame(wide.reset_index(drop=True))


def test_dependency_order() -> None:
    formulas = {
        "roe": "net_profit / equity",
        "net_profit": "gross_profit - opex",
        "gross_profit": "revenue - cogs",
        "growth": "revenue / lag(revenue, 12) - 1",
    }
    order = dependency_order(formulas, known=["revenue", "cogs", "opex", "equity"])
    assert sorted(order) == sorted(formulas)
    assert order.index("gross_profit") < order.index("net_profit") < order.index("roe")


def test_dependency_cycle_names_the_path() -> None:
    with pytest.raises(
        FormulaError, match=r"cycle: (roe -> net_profit -> roe|net_profit -> roe -> net_profit)"
    ):
        dependency_order(
            {"roe": "net_profit / equity", "net_profit": "roe * equity"}, known=["equity"]
        )
    with pytest.raises(FormulaError, match="stock -> stock"):
        dependency_order({"stock": "lag(stock, 1) + inflow"}, known=["inflow"])


def test_dependency_unknown_metric_names_the_metric() -> None:
    with pytest.raises(PerflinkError, match=r"metric roe: .*'equty'.*did you mean 'equity'"):
        dependency_order({"roe": "net_profit / equty"}, known=["net_profit", "equity"])


# -- in_words: formulas written for readers (issue 19) ---------------------------------------

NAMES = {
    "zh": {"qty": "发货数量", "price": "平均销售单价", "contracts": "新签合同额", "rev": "营业收入",
           "cost": "营业成本", "opex": "期间费用", "ar": "应收账款余额"},
    "en": {"qty": "Shipped quantity", "price": "Average selling price", "contracts":
           "New contract amount", "rev": "Revenue", "cost": "Cost of goods sold",
           "opex": "Operating expenses", "ar": "Accounts receivable", "rd": "R&D milestones"},
}  # fmt: skip

WORDS = [
    # (formula, zh, en); every function of FUNCTIONS and every operator appears at least once
    ("qty * price / 10000", "发货数量 × 平均销售单价 ÷ 10000",
     "shipped quantity × average selling price ÷ 10000"),
    ("sum(contracts, 12)", "近 12 个月新签合同额合计", "sum of new contract amount over 12 months"),
    ("sum(rev, 1)", "营业收入", "revenue"),
    ("lag(ar, 1)", "上月应收账款余额", "accounts receivable 1 month earlier"),
    ("rev / lag(rev, 12) - 1", "营业收入 ÷ 12 个月前的营业收入 − 1",
     "revenue ÷ revenue 12 months earlier − 1"),
    ("lag(rev, 0)", "营业收入", "revenue"),
    ("abs(rev - cost)", "|营业收入 − 营业成本|", "|revenue − cost of goods sold|"),
    ("min(rev, cost)", "营业收入与营业成本中的较小值", "the smaller of revenue and cost of goods sold"),
    ("max(rev - cost, 0, opex)", "(营业收入 − 营业成本)、0、期间费用中的最大值",
     "the largest of (revenue − cost of goods sold), 0 and operating expenses"),
    ("max(rev, cost)", "营业收入与营业成本中的较大值", "the larger of revenue and cost of goods sold"),
    ("min(rev, cost, opex)", "营业收入、营业成本、期间费用中的最小值",
     "the smallest of revenue, cost of goods sold and operating expenses"),
    ("(rev - cost - opex) * (1 - 0.25)", "(营业收入 − 营业成本 − 期间费用) × (1 − 0.25)",
     "(revenue − cost of goods sold − operating expenses) × (1 − 0.25)"),
    ("rev - (cost - opex)", "营业收入 − (营业成本 − 期间费用)",
     "revenue − (cost of goods sold − operating expenses)"),
    ("rev / (cost * 2)", "营业收入 ÷ (营业成本 × 2)", "revenue ÷ (cost of goods sold × 2)"),
    ("(1 + rev) ** 12", "(1 + 营业收入)¹²", "(1 + revenue)¹²"),
    ("rev ** -1", "营业收入⁻¹", "revenue⁻¹"),
    ("rev ** 0.5", "营业收入的 0.5 次方", "revenue to the power 0.5"),
    ("-(rev + cost)", "−(营业收入 + 营业成本)", "−(revenue + cost of goods sold)"),
    ("rev - -3", "营业收入 − (−3)", "revenue − (−3)"),
    ("rev * 1e-5", "营业收入 × 0.00001", "revenue × 0.00001"),
    ("rev <= cost * 1.13 + lag(ar, 1)", "营业收入 ≤ 营业成本 × 1.13 + 上月应收账款余额",
     "revenue ≤ cost of goods sold × 1.13 + accounts receivable 1 month earlier"),
    ("rev >= 0 and not (cost < 1)", "营业收入 ≥ 0 且 并非 (营业成本 < 1)",
     "revenue ≥ 0 and not (cost of goods sold < 1)"),
    ("(rev > 1 or cost == 1) and opex != 1", "(营业收入 > 1 或 营业成本 = 1) 且 期间费用 ≠ 1",
     "(revenue > 1 or cost of goods sold = 1) and operating expenses ≠ 1"),
    ("rev < cost <= opex", "营业收入 < 营业成本 ≤ 期间费用",
     "revenue < cost of goods sold ≤ operating expenses"),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "zh", "en"), WORDS)
def test_in_words_writes_names_and_math_signs(expr, zh, en):
    from perflink.formula import in_words

    assert in_words(expr, NAMES["zh"], lang="zh") == zh
    assert in_words(expr, NAMES["en"], lang="en") == en


def test_in_words_covers_every_function_and_keeps_no_code():
    from perflink.formula import FUNCTIONS

    called = {fn for expr, _, _ in WORDS for fn in FUNCTIONS if f"{fn}(" in expr}
    assert called == set(FUNCTIONS)
    for _, zh, en in WORDS:
        for text in (zh, en):
            assert not any(f"{fn}(" in text for fn in FUNCTIONS)
            assert not set("*/_") & set(text) and "**" not in text and "<=" not in text


def test_in_words_reads_the_catalog_and_a_metric():
    from importlib import resources

    from perflink.catalog import load_catalog
    from perflink.formula import in_words

    cat = load_catalog(str(resources.files("perflink") / "data" / "catalog"))
    derived = next(m for m in cat.metrics.values() if m.formula)
    reported = next(m for m in cat.metrics.values() if not m.formula)
    text = in_words(derived, cat, lang="zh")
    assert text == in_words(derived.formula, cat, lang="zh")
    assert all(cat.metrics[n].name("zh") in text for n in parse(derived.formula).names)
    assert in_words(reported, cat, lang="zh") == reported.name("zh")
    assert in_words(parse("a + b"), {"a": "A"}, lang="en") == "A + b"  # unknown id as written
    assert in_words("rd / 2", NAMES["en"], lang="en") == "R&D milestones ÷ 2"  # acronym kept


def test_in_words_bad_input():
    from perflink.errors import ParamsError
    from perflink.formula import in_words

    with pytest.raises(FormulaError, match="in_words"):
        in_words("rev +", NAMES["zh"], lang="zh")
    with pytest.raises(ParamsError, match="language"):
        in_words("rev", NAMES["zh"], lang="fr")
    with pytest.raises(PerflinkError, match="mapping of metric id"):
        in_words("rev", ["rev"], lang="zh")  # type: ignore[arg-type]
