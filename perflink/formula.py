"""A small, safe expression language for derived metrics and reconciliation rules.

Formulas in the metric catalog (``profit / equity_capital``, ``sales / lag(sales, 12) - 1``,
``booked_units <= shipped_units``) are parsed with :mod:`ast` and checked by a whitelist walker,
then turned into a tree of numpy closures. Nothing is ever passed to ``eval``, ``exec`` or
``compile``: an expression that is not in the grammar below is refused with a
:class:`~perflink.errors.FormulaError` naming the offending text and its column.

Grammar
-------
- numbers (``12``, ``0.08``, ``1e4``); metric ids (``[a-z_][a-z0-9_]*``);
- ``+ - * /`` and ``**`` with a number literal exponent between -12 and 12; unary ``-`` / ``+``;
- comparisons ``< <= > >= == !=`` (chains allowed), and ``and`` / ``or`` / ``not`` between them;
- ``abs(x)``, ``min(x, y, ...)``, ``max(x, y, ...)``;
- ``lag(metric, k)``: the metric k months earlier (0 <= k <= 120);
- ``sum(metric, k)``: rolling sum over the last k months including the current one (1 <= k <= 120).

Semantics: all arithmetic is float64; division by zero gives NaN (never inf, never an exception);
NaN propagates, and ``min``/``max`` propagate it too. Comparisons with a NaN operand are
*unknown*, combined with ``and``/``or``/``not`` by three-valued (Kleene) logic.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from perflink._formula_ast import (
    FUNCTIONS,
    MAX_LENGTH,
    Checker,
    Env,
    Fn,
    FrameEnv,
    MappingEnv,
    compile_node,
    literal,
    raise_at,
)
from perflink._formula_words import Writer, en_inline
from perflink.errors import FormulaError, PerflinkError
from perflink.labels import _check_lang

if TYPE_CHECKING:
    from perflink.catalog import Catalog, Metric

__all__ = ["FUNCTIONS", "Formula", "dependency_order", "in_words", "parse"]


@dataclass(frozen=True)
class Formula:
    """A parsed, validated formula. Create it with :func:`parse`.

    Attributes
    ----------
    text : str
        The formula as written, with runs of whitespace (line breaks) joined to one space;
        equality and hashing use it.
    names : frozenset of str
        Metric ids the formula reads.
    inputs : tuple of str
        The same ids in order of first appearance (used as the default factor order).
    lags : Mapping[str, int]
        For every referenced metric, how many months back it is read (0 = current month only;
        ``lag(x, 12)`` gives 12, ``sum(x, 3)`` gives 2).
    is_boolean : bool
        True when the result is a comparison (a rule) rather than a number.
    uses_time : bool
        True when ``lag`` or ``sum`` appears, so the formula needs a monthly panel.
    """

    text: str
    names: frozenset[str] = field(compare=False)
    inputs: tuple[str, ...] = field(compare=False)
    lags: Mapping[str, int] = field(compare=False)
    is_boolean: bool = field(compare=False)
    uses_time: bool = field(compare=False)
    _tree: ast.expr = field(repr=False, compare=False)
    _fn: Fn = field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, Any]) -> float | np.ndarray:
        """Evaluate on scalars or numpy arrays.

        Parameters
        ----------
        values : Mapping[str, float or numpy.ndarray]
            One value (or broadcast-compatible array) per metric id in :attr:`names`.

        Returns
        -------
        float or numpy.ndarray
            float64; a float when every value is a scalar. Boolean formulas give 1.0 (true),
            0.0 (false) or NaN (unknown because an operand is NaN).
        """
        out = self._run(MappingEnv(self.text, values))
        return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=float)

    def evaluate_frame(self, wide: pd.DataFrame) -> pd.Series:
        """Evaluate row by row on a monthly panel.

        Parameters
        ----------
        wide : pandas.DataFrame
            Index: a unique, sorted MultiIndex with levels ``entity_id`` and ``period``; one
            float column per metric id in :attr:`names`. ``lag``/``sum`` shift by *rows* within
            each entity, so the caller must reindex to a complete monthly grid first (missing
            months as NaN rows).

        Returns
        -------
        pandas.Series
            Same index as ``wide``; float64, or nullable ``boolean`` (NA = unknown) for rules.
        """
        out = np.broadcast_to(
            self._run(FrameEnv(self.text, wide, uses_time=self.uses_time)), (len(wide),)
        )
        if self.is_boolean:
            return pd.Series(
                pd.array(np.where(np.isnan(out), None, out == 1.0), dtype="boolean"),
                index=wide.index,
            )
        return pd.Series(np.array(out, dtype=float), index=wide.index)

    def additive_terms(self) -> tuple[tuple[float, Formula], ...]:
        """Split at top-level ``+``/``-`` (pulling out constant factors and divisors).

        Returns
        -------
        tuple of (float, Formula)
            ``(coef, term)`` pairs with ``self == sum(coef * term)``; terms without metric ids
            (constants) are included. A formula that is not a sum gives one pair ``(1.0, term)``
            with ``term`` equivalent to ``self`` (its text re-printed by :func:`ast.unparse`).
        """
        pairs: list[tuple[float, ast.expr]] = []
        _split(self._tree, 1.0, pairs)
        return tuple((coef, parse(ast.unparse(node))) for coef, node in pairs)

    def _run(self, env: Env) -> Any:
        with np.errstate(all="ignore"):
            return self._fn(env)

    def __str__(self) -> str:
        return self.text


def parse(
    expr: str, *, context: str | None = None, known: Collection[str] | None = None
) -> Formula:
    """Parse and validate a formula.

    Parameters
    ----------
    expr : str
        The formula text, e.g. ``"profit / equity_capital"``.
    context : str, optional
        Where the formula comes from, e.g. ``"metric margin"``; starts every error message.
    known : collection of str, optional
        Metric ids the formula may use; other names are refused with close-match suggestions.

    Returns
    -------
    Formula

    Raises
    ------
    FormulaError
        Syntax error, construct outside the grammar or unknown metric id. The message names
        the offending text and its column (1-based); ``err.position`` holds the 0-based offset.
    """
    where = context or "formula"
    if not isinstance(expr, str):
        raise FormulaError(
            f"{where}: a formula must be a string, got {type(expr).__name__} {expr!r}"
        )
    if len(expr) > MAX_LENGTH:
        raise FormulaError(
            f"{where}: formula is {len(expr)} characters long; the limit is {MAX_LENGTH}"
        )
    # one line, so that positions and the caret in messages are simple (YAML may fold lines)
    text = " ".join(expr.split())
    if not text:
        raise FormulaError(
            f"{where}: the formula is empty; write an expression such as 'profit / equity_capital'"
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise_at(where, text, max((exc.offset or 1) - 1, 0), f"syntax error ({exc.msg})", None)
    except (RecursionError, MemoryError, ValueError) as exc:
        raise FormulaError(
            f"{where}: formula {text!r} cannot be parsed ({exc}); simplify it"
        ) from None
    checker = Checker(text, where)
    kind = checker.visit(tree.body)
    if known is not None:
        checker.check_known(known)
    return Formula(
        text=text,
        names=frozenset(checker.order),
        inputs=tuple(checker.order),
        lags=MappingProxyType(dict(checker.lags)),
        is_boolean=kind == "bool",
        uses_time=checker.uses_time,
        _tree=tree.body,
        _fn=compile_node(tree.body),
    )


def dependency_order(formulas: Mapping[str, str], *, known: Collection[str]) -> list[str]:
    """Order derived metrics so each comes after the metrics its formula reads.

    Parameters
    ----------
    formulas : Mapping[str, str]
        Derived metric id -> formula text.
    known : collection of str
        Metric ids available without a formula (base metrics). A formula may read these and
        the other derived metrics.

    Returns
    -------
    list of str
        The derived metric ids (keys of ``formulas``) in an order safe to compute.

    Raises
    ------
    FormulaError
        A formula is invalid or names an unknown metric, or the formulas form a cycle (the
        message shows the path, e.g. ``margin -> profit -> margin``). A metric reading its own
        earlier months (``lag(stock, 1)`` inside ``stock``) counts as a cycle too.
    """
    allowed = set(known) | set(formulas)
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for metric_id, text in formulas.items():
        parsed = parse(text, context=f"metric {metric_id}", known=allowed)
        sorter.add(metric_id, *[n for n in parsed.inputs if n in formulas])
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        path = " -> ".join(reversed(exc.args[1]))
        raise FormulaError(
            f"derived metrics form a cycle: {path}; break it in the catalog"
        ) from None
    return [m for m in order if m in formulas]


def in_words(
    expr: str | Formula | Metric,
    catalog: Catalog | Mapping[str, str],
    *,
    lang: str | None = None,
) -> str:
    """A formula written for readers: metric names and math signs instead of ids and code.

    ``units_sold * unit_price / 1000`` reads ``销量 × 单价 ÷ 1000``; ``sum(bookings, 12)``
    reads ``近 12 个月订单额合计`` (zh) or ``sum of bookings over 12 months`` (en). Every construct of the grammar has a reading:
    ``+ − × ÷``; a power as a superscript (``x²``); ``< ≤ > ≥ = ≠``; ``and``/``or``/``not``
    as 且/或/并非 (and/or/not); ``abs(x)`` as ``|x|``; ``min``/``max`` as the smaller / larger
    (smallest / largest) of the arguments; ``lag(x, k)`` as x k months earlier (``k = 0``: x);
    ``sum(x, k)`` as the sum of x over k months (``k = 1``: x). Parentheses stay only where
    the order of operations needs them; numbers are written out (``0.00001``, never
    ``1e-05``). English names are put in lower case inside the text unless they start with
    an acronym (``Gross margin`` -> ``gross margin``, ``R&D milestones`` unchanged).

    Parameters
    ----------
    expr : str, Formula or catalog Metric
        A formula (a bare metric id is a formula too and gives the metric's name), or a
        catalog metric: its formula when it is derived, else its name.
    catalog : Catalog or Mapping[str, str]
        Where metric names come from: a catalog (``metric.name(lang)``) or a mapping of
        metric id -> name in ``lang``. An id it does not know is written as it is.
    lang : str, optional
        ``"zh"`` or ``"en"`` (default: the current report language).

    Returns
    -------
    str
        One line of text, e.g. ``"(销售额 − 成本) × (1 − 0.25)"``.

    Raises
    ------
    FormulaError
        If ``expr`` is not a valid formula (see :func:`parse`).
    ParamsError
        If ``lang`` is not a supported language.
    PerflinkError
        If ``catalog`` is neither a catalog nor a mapping of names.
    """
    lang = _check_lang(lang)
    if not isinstance(expr, str | Formula) and hasattr(expr, "formula"):
        expr = expr.formula or expr.id  # a catalog Metric
    parsed = expr if isinstance(expr, Formula) else parse(expr, context="in_words")
    metrics = getattr(catalog, "metrics", None)
    if metrics is not None:
        names = {mid: m.name(lang) for mid, m in metrics.items()}
    elif isinstance(catalog, Mapping):
        names = {str(k): str(v) for k, v in catalog.items()}
    else:
        raise PerflinkError(
            f"in_words: catalog must be a perflink Catalog or a mapping of metric id -> name, "
            f"got {type(catalog).__name__}"
        )
    if lang == "en":
        names = {k: en_inline(v) for k, v in names.items()}
    return Writer(lambda mid: names.get(mid, mid), lang).write(parsed._tree)


def _split(node: ast.expr, coef: float, out: list[tuple[float, ast.expr]]) -> None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        _split(node.left, coef, out)
        _split(node.right, -coef if isinstance(node.op, ast.Sub) else coef, out)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        _split(node.operand, -coef if isinstance(node.op, ast.USub) else coef, out)
    elif (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mult)
        and literal(node.left) is not None
    ):
        _split(node.right, coef * literal(node.left), out)  # type: ignore[operator]
    elif (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mult | ast.Div)
        and literal(node.right)
    ):
        c = literal(node.right)
        _split(node.left, coef * c if isinstance(node.op, ast.Mult) else coef / c, out)  # type: ignore[operator]
    else:
        out.append((coef, node))
