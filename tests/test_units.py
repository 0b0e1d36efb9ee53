"""The unit registry: every catalog unit is read into kind, currency and scale."""

from __future__ import annotations

import pytest

from perflink.units import (
    axis_label_expr,
    convert,
    format_plain,
    format_value,
    parse_unit,
    unit_label,
)


@pytest.mark.parametrize(
    ("code", "kind", "currency", "scale"),
    [
        ("万元", "money", "CNY", 1e4),
        ("千元", "money", "CNY", 1e3),
        ("元", "money", "CNY", 1.0),
        ("亿元", "money", "CNY", 1e8),
        ("kUSD", "money", "USD", 1e3),
        ("USD k", "money", "USD", 1e3),
        ("MUSD", "money", "USD", 1e6),
        ("EUR", "money", "EUR", 1.0),
        ("千美元", "money", "USD", 1e3),
        ("RMB", "money", "CNY", 1.0),
        ("ratio", "rate", None, 1.0),
        ("%", "rate", None, 1.0),
        ("元/件", "money_per", "CNY", 1.0),
        ("USD/order", "money_per", "USD", 1.0),
        ("万元/人", "money_per", "CNY", 1e4),
        ("persons", "quantity", None, 1.0),
        ("件", "quantity", None, 1.0),
    ],
)
def test_parse_unit(code, kind, currency, scale):
    unit = parse_unit(code)
    assert (unit.kind, unit.currency, unit.scale, unit.known) == (kind, currency, scale, True)


def test_unknown_unit_is_a_quantity_shown_as_written():
    unit = parse_unit("barrels of oil")
    assert unit.kind == "quantity" and not unit.known
    assert format_value(3.0, unit, "zh") == "3 barrels of oil"


def test_convert_between_scales_of_one_currency_only():
    assert convert(1.5, "万元", "元") == 15_000
    assert convert(2_500, "USD", "kUSD") == 2.5
    with pytest.raises(ValueError, match="not money of one currency"):
        convert(1.0, "kUSD", "万元")
    with pytest.raises(ValueError):
        convert(1.0, "ratio", "万元")


@pytest.mark.parametrize(
    ("code", "zh", "en"),
    [
        ("万元", "万元", "CNY 10k"),
        ("kUSD", "千美元", "USD k"),
        ("USD/unit", "美元/件", "USD/unit"),
        ("ratio", "%", "%"),
        ("persons", "人", "persons"),
    ],
)
def test_unit_label(code, zh, en):
    assert (unit_label(code, "zh"), unit_label(code, "en")) == (zh, en)


def test_axis_label_expr_names_the_currency_and_skips_non_money():
    assert "'USD '" in axis_label_expr("kUSD", "en")
    assert "亿" in axis_label_expr("kUSD", "zh")
    assert axis_label_expr("ratio", "en") is None


# --- the status vocabulary (perflink.common) ---


def test_actual_status_by_ratio_and_in_points():
    from perflink.common import actual_status
    from perflink.options import StatusOptions

    opts = StatusOptions(near_miss=0.97, near_miss_points=0.01)
    ratio = actual_status([100, 98, 90, 5, float("nan")], [100, 100, 100, -10, 1], points=False,
                          higher=True, options=opts)  # fmt: skip
    assert ratio.tolist() == ["met", "near_miss", "missed", "met", None]
    costs = actual_status([96, 102, 110], [100, 100, 100], points=False, higher=False, options=opts)
    assert costs.tolist() == ["met", "near_miss", "missed"]
    rates = actual_status([0.05, 0.042, 0.02], [0.05, 0.05, 0.05], points=True, higher=True,
                          options=opts)  # fmt: skip
    assert rates.tolist() == ["met", "near_miss", "missed"]


def test_outlook_status_follows_the_probability_beside_it():
    from perflink.common import outlook_status
    from perflink.options import StatusOptions

    opts = StatusOptions(on_track=0.7, off_track=0.3)
    # a projection 1.3% short with a 0% chance is off track, never "on track"
    got = outlook_status([0.0, 0.5, 0.9, float("nan"), float("nan")], [-0.013, 0.0, -0.01, 0.01, -0.2],
                         options=opts)  # fmt: skip
    assert got.tolist() == ["off_track", "at_risk", "on_track", "on_track", "off_track"]


def test_status_thresholds_are_checked():
    from pydantic import ValidationError

    from perflink.options import StatusOptions

    with pytest.raises(ValidationError, match="off_track"):
        StatusOptions(on_track=0.3, off_track=0.5)


def test_format_plain_rounds_across_100_to_the_hundreds_format():
    # 99.9999 would read "100.00" (two decimals below 100): it reads as the 100s do
    assert format_plain(99.99999) == "100.0"
    assert format_plain(-99.999) == "-100.0"
    assert format_plain(99.994) == "99.99"
