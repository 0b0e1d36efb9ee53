"""Units of measure and currencies (计量单位): one registry behind every formatted number.

A catalog metric states its ``unit`` as written in the company's own tables: ``万元``,
``kUSD``, ``ratio``, ``persons``, ``元/件``, ``USD/order``, ... :func:`parse_unit` reads that
text into a :class:`Unit` that knows its kind (money, rate, money per something, quantity),
its currency and scale, and its words in Chinese and English; :func:`format_value` formats a
value of that unit for a report page, :func:`unit_label` names it in a header, and
:func:`axis_label_expr` gives the Vega expression of a chart axis in the same words.

Money is always shown in the currency's own words, whatever scale the tables use:

======================  ===================  ======================
catalog unit, value     zh                   en
======================  ===================  ======================
``万元``, 523.4          ``523.4 万元``        ``CNY 5.2 m``
``万元``, 12345          ``1.23 亿元``         ``CNY 123.5 m``
``kUSD``, 2.69           ``2,690 美元``        ``USD 2.7 k``
``kUSD``, 208.2          ``20.8 万美元``       ``USD 208.2 k``
``ratio``, 0.952         ``95.2%``             ``95.2%``
``persons``, 1200        ``1,200 人``          ``1,200 persons``
======================  ===================  ======================

Rates (``ratio``, ``%``, ``pct``) hold fractions: 0.952 is 95.2%. A unit the registry does
not know is a quantity shown with its text as written (``12 visits``) and is reported by the
mapping task's catalog check so that the company can name it in a known way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = [
    "CURRENCIES",
    "reference_table",
    "VAT_RATES",
    "Unit",
    "axis_label_expr",
    "convert",
    "format_plain",
    "format_value",
    "parse_unit",
    "unit_label",
]

Kind = Literal["money", "rate", "money_per", "quantity"]

#: ISO code -> (zh word, symbol-free en code) of the currencies the registry knows.
CURRENCIES: dict[str, str] = {
    "CNY": "元",
    "USD": "美元",
    "EUR": "欧元",
    "GBP": "英镑",
    "JPY": "日元",
    "HKD": "港元",
    "CHF": "瑞士法郎",
    "SGD": "新加坡元",
    "AUD": "澳元",
    "CAD": "加元",
}
#: Standard value-added-tax rates of a currency's country (China: 13%, 9%, 6% since April
#: 2019), for a caliber that names VAT without stating its rate (the mapping task's caliber
#: causes). A currency of several VAT countries (EUR) has none: the caliber states the rate.
VAT_RATES: dict[str, tuple[float, ...]] = {"CNY": (0.13, 0.09, 0.06)}
_ZH_CURRENCY = {v: k for k, v in CURRENCIES.items()} | {"人民币": "CNY", "人民币元": "CNY"}
_ZH_SCALE = {"": 1.0, "千": 1e3, "万": 1e4, "十万": 1e5, "百万": 1e6, "千万": 1e7, "亿": 1e8}
_EN_SCALE = {
    "": 1.0,
    "k": 1e3,
    "K": 1e3,
    "thousand": 1e3,
    "000": 1e3,
    "10k": 1e4,
    "m": 1e6,
    "M": 1e6,
    "mn": 1e6,
    "MM": 1e6,
    "million": 1e6,
    "bn": 1e9,
    "B": 1e9,
    "billion": 1e9,
}
_ISO = "|".join(CURRENCIES) + "|RMB"
_ZH_MONEY = re.compile(
    r"^(?P<scale>千|万|十万|百万|千万|亿)?(?P<cur>人民币元|人民币|"
    + "|".join(map(re.escape, CURRENCIES.values()))
    + r")$"
)
_EN_PREFIX = re.compile(rf"^(?P<scale>k|K|m|M|mn|MM|bn|B)\s?(?P<cur>{_ISO})$")
_EN_SUFFIX = re.compile(
    rf"^(?P<cur>{_ISO})\s?(?P<scale>k|K|m|M|mn|MM|bn|B|10k|000|thousand|million|billion)?$"
)
_RATES = {"ratio", "%", "pct", "percent", "百分比", "比率"}
#: Known quantity units: every spelling -> (zh word, en word).
_QUANTITIES: dict[tuple[str, ...], tuple[str, str]] = {
    ("件", "pcs", "pc", "pieces", "piece", "units", "unit"): ("件", "units"),
    ("人", "persons", "person", "people", "heads", "FTE", "fte", "名"): ("人", "persons"),
    ("个", "count", "items", "item", "no."): ("个", ""),
    ("天", "days", "day", "日"): ("天", "days"),
    ("次", "times", "x", "×"): ("次", "times"),
    ("分", "points", "score", "pts"): ("分", "points"),
    ("单", "orders", "order", "笔"): ("单", "orders"),
    ("人次", "visits", "visit"): ("人次", "visits"),
    ("台", "sets", "set", "machines"): ("台", "sets"),
    ("吨", "t", "tonnes", "tons"): ("吨", "t"),
    ("小时", "hours", "hour", "h"): ("小时", "hours"),
    ("户", "customers", "customer", "accounts"): ("户", "customers"),
    ("家", "stores", "store", "shops"): ("家", "stores"),
    ("项", "projects", "project", "tasks"): ("项", "projects"),
    ("平方米", "m2", "sqm", "㎡"): ("平方米", "m²"),
}
_QUANTITY = {code: words for codes, words in _QUANTITIES.items() for code in codes}
#: Singular en words of the per-unit denominators ("USD/unit", "CNY 10k/person").
_PER_EN = {
    "units": "unit",
    "persons": "person",
    "orders": "order",
    "visits": "visit",
    "days": "day",
    "hours": "hour",
    "customers": "customer",
    "stores": "store",
    "projects": "project",
    "sets": "set",
    "times": "time",
    "points": "point",
}


@dataclass(frozen=True)
class Unit:
    """One unit of measure as a catalog writes it.

    Attributes
    ----------
    code : the text in the catalog (``万元``, ``kUSD``, ``ratio``, ``元/件``).
    kind : ``money`` (an amount), ``rate`` (a fraction shown as percent), ``money_per``
        (money per something: a price, a unit cost, profit per head) or ``quantity``.
    currency : ISO code of money and money-per units (``CNY``, ``USD``), else None.
    scale : currency units per 1 of the unit (万元: 10,000; kUSD: 1,000); 1 for others.
    known : False for a quantity the registry does not know (shown as written).
    zh, en : the quantity's words (or the denominator's, for money per something).
    """

    code: str
    kind: Kind
    currency: str | None = None
    scale: float = 1.0
    known: bool = True
    zh: str = ""
    en: str = ""

    @property
    def is_money(self) -> bool:
        """True for an amount of money (not a price or a rate)."""
        return self.kind == "money"

    @property
    def is_rate(self) -> bool:
        """True for a fraction shown as a percent."""
        return self.kind == "rate"


def _money(code: str) -> Unit | None:
    code = code.strip()
    if m := _ZH_MONEY.match(code):
        return Unit(code, "money", _ZH_CURRENCY[m["cur"]], _ZH_SCALE[m["scale"] or ""])
    for pattern in (_EN_PREFIX, _EN_SUFFIX):
        if m := pattern.match(code):
            cur = "CNY" if m["cur"] == "RMB" else m["cur"]
            return Unit(code, "money", cur, _EN_SCALE[m["scale"] or ""])
    return None


@lru_cache(maxsize=512)
def parse_unit(code: str) -> Unit:
    """The :class:`Unit` of a catalog ``unit`` text (never fails: unknown text is a quantity).

    >>> parse_unit("kUSD").scale, parse_unit("万元").currency, parse_unit("ratio").kind
    (1000.0, 'CNY', 'rate')
    """
    text = str(code).strip()
    if text in _RATES:
        return Unit(text, "rate")
    if (money := _money(text)) is not None:
        return money
    if "/" in text:
        num, _, den = text.partition("/")
        money = _money(num)
        if money is not None:
            per = _QUANTITY.get(den.strip())
            zh, en = per if per else (den.strip(), den.strip())
            return Unit(text, "money_per", money.currency, money.scale, per is not None, zh, en)
    if text in _QUANTITY:
        zh, en = _QUANTITY[text]
        return Unit(text, "quantity", zh=zh, en=en)
    return Unit(text, "quantity", known=False, zh=text, en=text)


def convert(value: float, source: str, target: str) -> float:
    """``value`` in money unit ``source`` expressed in money unit ``target`` (same currency).

    Raises
    ------
    ValueError
        If either unit is not money or their currencies differ.
    """
    a, b = parse_unit(source), parse_unit(target)
    if not (a.is_money and b.is_money) or a.currency != b.currency:
        raise ValueError(f"cannot convert {source!r} to {target!r}: not money of one currency")
    return value * a.scale / b.scale


def format_plain(x: float) -> str:
    """A number without a unit as a report shows it: ``1,234,567``, ``1,234.6``, ``3.14``,
    ``0.0123``, ``∞``; :func:`format_value` uses it for quantities."""
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    a = abs(x)
    if round(a, 2) >= 100:  # 99.999 reads 100.0 as the 100s do, never 100.00
        a = 100.0
    return format(x, ",.1f" if a >= 100 else ",.2f" if a >= 1 else ".3g")


def _significant(x: float) -> str:
    """About three significant digits: 2.97, 29.7, 297, 2,970."""
    a = abs(x)
    return format(x, ",.0f" if a >= 100 else ",.1f" if a >= 10 else ",.2f" if a >= 1 else ".3g")


def _money_zh(base: float, currency: str, wan_floor: bool) -> str:
    word = CURRENCIES[currency]
    a = abs(base)
    if a >= 1e8:
        return f"{base / 1e8:,.2f} 亿{word}"
    if a >= 1e7:
        return f"{base / 1e4:,.0f} 万{word}"
    if a >= 1e4:
        return f"{base / 1e4:,.1f} 万{word}"
    if wan_floor:  # tables in 万: small amounts stay in 万 (0.45 万元), as the tables read
        return f"{base / 1e4:.2f} 万{word}"
    return f"{base:,.0f} {word}"


def _money_en(base: float, currency: str) -> str:
    a = abs(base)
    if a >= 1e9:
        return f"{currency} {base / 1e9:,.2f} bn"
    if a >= 1e6:
        return f"{currency} {base / 1e6:,.1f} m"
    if a >= 1e3:
        return f"{currency} {base / 1e3:,.1f} k"
    return f"{currency} {base:,.0f}"


def format_value(x: float, unit: str | Unit, lang: str) -> str:
    """``x`` (a finite number in ``unit``) as a report shows it, in ``lang`` (zh or en)."""
    u = unit if isinstance(unit, Unit) else parse_unit(unit)
    if u.kind == "rate":
        return f"{x * 100:.1f}%"
    if u.kind == "money":
        base = x * u.scale
        return (
            _money_zh(base, u.currency, u.scale >= 1e4)
            if lang == "zh"
            else _money_en(base, u.currency)
        )
    if u.kind == "money_per" and u.scale > 1 and lang == "en":  # CNY 2.97 k/person
        base, per = x * u.scale, _PER_EN.get(u.en, u.en)
        for bound, suffix in ((1e9, " bn"), (1e6, " m"), (1e3, " k"), (0, "")):
            if abs(base) >= bound:
                return f"{u.currency} {_significant(base / (bound or 1))}{suffix}/{per}"
    label = unit_label(u, lang)
    return f"{format_plain(x)} {label}" if label else format_plain(x)


def _scale_en(scale: float) -> str:
    return {
        1.0: "",
        1e3: " k",
        1e4: " 10k",
        1e5: " 100k",
        1e6: " m",
        1e7: " 10m",
        1e8: " 100m",
        1e9: " bn",
    }.get(scale, f" ×{scale:g}")


def _scale_zh(scale: float) -> str:
    return {v: k for k, v in _ZH_SCALE.items()}.get(scale, f"×{scale:g}")


def unit_label(unit: str | Unit, lang: str) -> str:
    """The unit's words for a header or axis title: ``万元``/``CNY 10k``, ``千美元``/``USD k``,
    ``%``, ``元/件``/``CNY/unit``, ``人``/``persons``; empty for a plain count in en."""
    u = unit if isinstance(unit, Unit) else parse_unit(unit)
    if u.kind == "rate":
        return "%"
    if u.kind in ("money", "money_per"):
        if lang == "zh":
            money = f"{_scale_zh(u.scale)}{CURRENCIES[u.currency]}"
        else:
            money = f"{u.currency}{_scale_en(u.scale)}"
        if u.kind == "money":
            return money
        per = u.zh if lang == "zh" else _PER_EN.get(u.en, u.en)
        return f"{money}/{per}"
    return u.zh if lang == "zh" else u.en


def axis_label_expr(unit: str | Unit, lang: str) -> str | None:
    """Vega ``labelExpr`` for an axis of amounts in ``unit`` (``datum.value`` in that unit):
    zh ``8,000万`` / ``1.2亿`` (currency in the title), en ``CNY 1.5m``; None for other kinds."""
    u = unit if isinstance(unit, Unit) else parse_unit(unit)
    if not u.is_money:
        return None
    s = u.scale
    if lang == "zh":
        return (
            f"abs(datum.value * {s:g}) >= 1e8 ? format(datum.value * {s:g} / 1e8, ',.4~r') + '亿' "
            f": abs(datum.value * {s:g}) >= 1e4 ? format(datum.value * {s:g} / 1e4, ',.4~r') + '万' "
            f": format(datum.value * {s:g}, ',.4~r')"
        )
    c = u.currency
    return (
        f"abs(datum.value * {s:g}) >= 1e9 ? '{c} ' + format(datum.value * {s:g} / 1e9, ',.4~r') + 'bn' "
        f": abs(datum.value * {s:g}) >= 1e6 ? '{c} ' + format(datum.value * {s:g} / 1e6, ',.4~r') + 'm' "
        f": '{c} ' + format(datum.value * {s:g} / 1e3, ',.4~r') + 'k'"
    )


#: Kinds of unit with example spellings and one example value (docs/catalog-reference.md).
_REFERENCE = (
    ("money", ("元", "千元", "万元", "百万元", "亿元", "美元", "千美元", "CNY", "kCNY", "USD",
               "kUSD", "MUSD", "EUR", "kEUR", "GBP", "JPY", "HKD"), (("万元", 523.4), ("kUSD", 208.2))),
    ("rate (values are fractions: 0.95)", ("ratio", "%", "pct"), (("ratio", 0.95),)),
    ("money per something", ("元/件", "万元/人", "USD/order", "USD/unit"), (("元/件", 12.5),)),
    ("quantity", ("件", "units", "人", "persons", "天", "days", "次", "times", "分", "points", "单",
                  "orders", "人次", "visits", "个"), (("persons", 1200),)),
)  # fmt: skip


def reference_table() -> str:
    """The Markdown table of unit kinds, spellings and how a value shows in zh and en."""
    rows = ["| kind | write | shown as (zh / en) |", "|---|---|---|"]
    for kind, codes, examples in _REFERENCE:
        written = ", ".join(f"`{c}`" for c in codes)
        shown = "; ".join(
            f"`{format_value(v, u, 'zh')}` / `{format_value(v, u, 'en')}`" for u, v in examples
        )
        rows.append(f"| {kind} | {written} | {shown} |")
    return "\n".join(rows)
