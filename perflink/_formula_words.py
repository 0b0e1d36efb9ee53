"""Private machinery of :func:`perflink.formula.in_words`: a validated formula tree written
for readers, with metric names and math signs (``发货数量 × 平均销售单价 ÷ 10000``).

Every construct of the grammar (:mod:`perflink.formula`) has a reading: ``+ − × ÷``, powers
as superscripts, ``≤ ≥ ≠``, ``且/或/并非`` (and/or/not), ``|x|`` for ``abs``, and words for
``min``, ``max``, ``lag`` and ``sum`` from the ``formula.*`` labels. Parentheses are kept
only where the order of operations needs them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

import numpy as np

from perflink._formula_ast import literal
from perflink.labels import t

_ARITH = {ast.Add: "+", ast.Sub: "−", ast.Mult: "×", ast.Div: "÷"}
_CMP = {ast.Lt: "<", ast.LtE: "≤", ast.Gt: ">", ast.GtE: "≥", ast.Eq: "=", ast.NotEq: "≠"}
_SUPER = str.maketrans("0123456789-.", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻·")
# a space between two Chinese characters (or full-width punctuation) is dropped in zh phrases
_CJK_GAP = re.compile(
    r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]) (?=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])"
)
# binding strength: a child binding less tightly than its parent is put in parentheses
_OR, _AND, _NOT, _CMP_LEVEL, _SUM, _PRODUCT, _UNARY, _POWER, _ATOM = range(1, 10)


def number(value: float) -> str:
    """A number literal as written for readers: ``10000``, ``0.08``, ``0.00001`` (never
    ``1e-05``), with the math minus sign."""
    text = np.format_float_positional(float(value), trim="-")
    return text.replace("-", "−")


def en_inline(name: str) -> str:
    """An English metric name inside a phrase: its first letter in lower case unless the first
    word is an acronym or a code (``Gross margin`` -> ``gross margin``, ``R&D milestones`` unchanged)."""
    first = name.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].islower():
        return name[0].lower() + name[1:]
    return name


class Writer:
    """Writes a validated tree in ``lang`` with ``name(metric_id)`` for metric names."""

    def __init__(self, name: Callable[[str], str], lang: str) -> None:
        self.name, self.lang = name, lang

    def write(self, node: ast.expr) -> str:
        return self._text(node)[0]

    def _phrase(self, key: str, **parts: object) -> str:
        """The label ``key`` filled with ``parts``; in zh without spaces between Chinese
        characters (the labels put one around every field, for Latin names and numbers)."""
        text = t(key, self.lang, **parts)
        return _CJK_GAP.sub("", text) if self.lang == "zh" else text

    def _wrap(self, node: ast.expr, level: int, *, strict: bool = False) -> str:
        """The child's text, in parentheses when it binds less tightly than ``level`` (or
        as tightly, with ``strict``: the right side of ``−`` and ``÷``)."""
        text, own = self._text(node)
        return f"({text})" if own < level or (strict and own == level) else text

    def _text(self, node: ast.expr) -> tuple[str, int]:
        """(text, binding level) of ``node``."""
        if isinstance(node, ast.Constant):
            return number(node.value), _ATOM
        if isinstance(node, ast.Name):
            return self.name(node.id), _ATOM
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return self._phrase("formula.not", x=self._wrap(node.operand, _ATOM)), _NOT
            if isinstance(node.op, ast.UAdd):
                return self._text(node.operand)
            if isinstance(node.operand, ast.Constant):
                return number(-node.operand.value), _ATOM
            return "−" + self._wrap(node.operand, _UNARY), _UNARY
        if isinstance(node, ast.Compare):
            parts = [self._wrap(node.left, _SUM)]
            for op, right in zip(node.ops, node.comparators, strict=True):
                parts += [_CMP[type(op)], self._wrap(right, _SUM)]
            return " ".join(parts), _CMP_LEVEL
        if isinstance(node, ast.BoolOp):
            level = _AND if isinstance(node.op, ast.And) else _OR
            word = t("formula.and" if level == _AND else "formula.or", self.lang)
            return f" {word} ".join(self._wrap(v, level, strict=True) for v in node.values), level
        if isinstance(node, ast.Call):
            return self._call(node), _ATOM
        raise AssertionError(f"unvalidated node {ast.dump(node)}")  # pragma: no cover

    def _binop(self, node: ast.BinOp) -> tuple[str, int]:
        if isinstance(node.op, ast.Pow):
            exp = literal(node.right)
            base = self._wrap(node.left, _ATOM)
            if exp is not None and exp == int(exp):
                return base + number(exp).replace("−", "-").translate(_SUPER), _POWER
            return self._phrase("formula.power", x=base, k=number(exp or 0.0)), _POWER
        level = _SUM if isinstance(node.op, ast.Add | ast.Sub) else _PRODUCT
        left = self._wrap(node.left, level)
        right = self._wrap(node.right, level, strict=isinstance(node.op, ast.Sub | ast.Div))
        if right.startswith("−"):  # a − (−3), never a − −3
            right = f"({right})"
        return f"{left} {_ARITH[type(node.op)]} {right}", level

    def _call(self, node: ast.Call) -> str:
        fn, args, lang = node.func.id, node.args, self.lang  # type: ignore[attr-defined]
        if fn == "abs":
            return f"|{self.write(args[0])}|"
        if fn in ("lag", "sum"):
            metric, k = args[0].id, int(literal(args[1]))  # type: ignore[attr-defined,arg-type]
            name = self.name(metric)
            if k == 0 or (fn == "sum" and k == 1):  # the metric itself
                return name
            key = f"formula.{fn}" if k > 1 else f"formula.{fn}_one"
            return self._phrase(key, name=name, k=k)
        items = [self._wrap(a, _ATOM) for a in args]
        if len(items) == 2:
            return self._phrase(f"formula.{fn}2", a=items[0], b=items[1])
        sep = t("formula.sep", lang)
        joined = t("formula.list", lang, items=sep.join(items[:-1]), last=items[-1])
        return self._phrase(f"formula.{fn}", items=joined)
