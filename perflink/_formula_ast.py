"""Private machinery of :mod:`perflink.formula`: the whitelist checker and the compiler.

:class:`Checker` validates an ast tree; :func:`compile_node` turns validated nodes into closures.
Every closure maps an environment (scalars/arrays, or a monthly panel) to float64 values;
booleans are carried as 1.0 / 0.0 / NaN (unknown).
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from perflink.errors import FormulaError, InputError

FUNCTIONS = frozenset({"abs", "min", "max", "lag", "sum"})
"""Names callable in a formula; they cannot be used as metric ids."""

_NAME_RE = re.compile(r"[a-z_][a-z0-9_]*\Z")
MAX_LENGTH = 2000  # characters; catalog formulas are one line
_MAX_NODES = 400  # keeps the recursive walkers far from Python's recursion limit
_MAX_EXPONENT = 12
_MAX_WINDOW = 120  # months reachable by lag()/sum()
_GRAMMAR = (
    "allowed: numbers, metric ids, + - * / ** (number exponent), comparisons, and/or/not, "
    "abs(), min(), max(), lag(metric, k), sum(metric, k)"
)
_REFUSED = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Lambda: "lambda",
    ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment expression",
    ast.JoinedStr: "f-string",
    ast.FormattedValue: "f-string",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "comprehension",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.Starred: "starred argument",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice",
}


BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
}
CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}

Fn = Callable[["Env"], Any]


def _offset(text: str, node: ast.AST) -> int:
    """Character offset of a node in the one-line text (ast's col_offset counts UTF-8 bytes)."""
    return len(text.encode()[: node.col_offset].decode(errors="ignore"))  # type: ignore[attr-defined]


def raise_at(where: str, text: str, pos: int, what: str, token: str | None, hint: str = "") -> None:
    shown = f" {token!r}" if token is not None else ""
    caret = " " * pos + "^"
    err = FormulaError(
        f"{where}: {what}{shown} at column {pos + 1} of formula {text!r}{hint}\n    {text}\n    {caret}"
    )
    err.position = pos  # type: ignore[attr-defined]
    raise err


class Checker:
    """Whitelist walker: returns 'num' or 'bool' per node and records the names read."""

    def __init__(self, text: str, where: str) -> None:
        self.text, self.where = text, where
        self.order: list[str] = []
        self.positions: dict[str, int] = {}
        self.lags: dict[str, int] = {}
        self.uses_time = False
        self.count = 0

    def fail(self, node: ast.AST, what: str, hint: str = f"; {_GRAMMAR}") -> None:
        pos = _offset(self.text, node)
        token = ast.get_source_segment(self.text, node) or ""
        raise_at(self.where, self.text, pos, what, token[:60], hint)

    def visit(self, node: ast.AST, want: str | None = None) -> str:
        self.count += 1
        if self.count > _MAX_NODES:
            self.fail(node, f"formula has more than {_MAX_NODES} parts, stopped at", "; split it")
        method = getattr(self, f"_visit_{type(node).__name__}", None)
        if method is None:
            self.fail(node, f"{_REFUSED.get(type(node), type(node).__name__)} is not allowed:")
        kind = method(node)
        if want is not None and kind != want:
            expected = "a number" if want == "num" else "a comparison"
            self.fail(node, f"expected {expected} here, got", "")
        return kind

    def _visit_Constant(self, node: ast.Constant) -> str:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(node, f"{type(value).__name__} constant is not allowed:")
        try:
            ok = np.isfinite(float(value))
        except OverflowError:
            ok = False
        if not ok:
            self.fail(node, "number out of range:", "")
        return "num"

    def _visit_Name(self, node: ast.Name) -> str:
        name = node.id
        if name in FUNCTIONS:
            self.fail(node, "function name used as a metric id:", f"; call it, e.g. {name}(...)")
        if not _NAME_RE.match(name) or name.startswith("__"):
            self.fail(node, "not a metric id (lower-case a-z, 0-9, _):", "")
        self._use(name, 0, node)
        return "num"

    def _use(self, name: str, back: int, node: ast.AST) -> None:
        if name not in self.lags:
            self.order.append(name)
            self.positions[name] = _offset(self.text, node)
        self.lags[name] = max(self.lags.get(name, 0), back)

    def _visit_BinOp(self, node: ast.BinOp) -> str:
        if isinstance(node.op, ast.Pow):
            self.visit(node.left, "num")
            exp = literal(node.right)
            if exp is None or abs(exp) > _MAX_EXPONENT:
                self.fail(
                    node.right,
                    f"exponent must be a number literal within ±{_MAX_EXPONENT}, got",
                    "",
                )
            self.count += 2
            return "num"
        if type(node.op) not in BINOPS and not isinstance(node.op, ast.Div):
            self.fail(node, f"operator {type(node.op).__name__} is not allowed in")
        self.visit(node.left, "num")
        self.visit(node.right, "num")
        return "num"

    def _visit_UnaryOp(self, node: ast.UnaryOp) -> str:
        if isinstance(node.op, ast.Not):
            return self.visit(node.operand, "bool")
        if isinstance(node.op, ast.USub | ast.UAdd):
            return self.visit(node.operand, "num")
        self.fail(node, "operator ~ is not allowed in")
        return "num"

    def _visit_Compare(self, node: ast.Compare) -> str:
        for op in node.ops:
            if type(op) not in CMPOPS:
                self.fail(node, f"comparison {type(op).__name__} is not allowed in")
        for operand in (node.left, *node.comparators):
            self.visit(operand, "num")
        return "bool"

    def _visit_BoolOp(self, node: ast.BoolOp) -> str:
        for operand in node.values:
            self.visit(operand, "bool")
        return "bool"

    def _visit_Call(self, node: ast.Call) -> str:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
            self.fail(node, "call is not allowed:")
        name = func.id  # type: ignore[union-attr]
        if node.keywords:
            self.fail(node, f"{name}() takes no keyword arguments:", "")
        args = node.args
        if name == "abs" and len(args) != 1:
            self.fail(node, "abs() takes exactly one argument:", "")
        if name in ("min", "max") and len(args) < 2:
            self.fail(node, f"{name}() takes two or more arguments:", "")
        if name in ("lag", "sum"):
            k = literal(args[1]) if len(args) == 2 else None
            lowest = 0 if name == "lag" else 1
            if len(args) != 2 or not isinstance(args[0], ast.Name):
                self.fail(
                    node,
                    f"{name}() takes a metric id and a month count, e.g. {name}(sales, 3):",
                    "",
                )
            if k is None or k != int(k) or not lowest <= k <= _MAX_WINDOW:
                self.fail(
                    node,
                    f"{name}() month count must be a whole number {lowest}..{_MAX_WINDOW}:",
                    "",
                )
            self.visit(args[0], "num")
            self._use(args[0].id, int(k) - (name == "sum"), args[0])  # type: ignore[arg-type,attr-defined]
            self.uses_time = True
            self.count += 1
            return "num"
        for arg in args:
            self.visit(arg, "num")
        return "num"

    def check_known(self, known: Collection[str]) -> None:
        known = set(known)
        bad = [n for n in self.order if n not in known]
        if not bad:
            return
        parts = []
        for name in bad:
            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            parts.append(f"{name!r} at column {self.positions[name] + 1}{hint}")
        err = FormulaError(
            f"{self.where}: formula {self.text!r} uses unknown metric id(s): {'; '.join(parts)}; "
            "add them to the catalog or fix the spelling"
        )
        err.position = self.positions[bad[0]]  # type: ignore[attr-defined]
        raise err


def literal(node: ast.AST) -> float | None:
    """The value of a number literal or of arithmetic on literals only (``1 - 0.25``,
    ``-0.08 / 12``), else None."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign *= -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        left, right = literal(node.left), literal(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Div):
            return sign * left / right if right != 0 else None
        ops = {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}
        return sign * ops[type(node.op)]
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return sign * float(value)
    return None


class Env:
    def value(self, name: str) -> Any:
        raise NotImplementedError

    def lag(self, name: str, k: int) -> Any:
        raise NotImplementedError

    def rolling_sum(self, name: str, k: int) -> Any:
        raise NotImplementedError


class MappingEnv(Env):
    def __init__(self, text: str, values: Mapping[str, Any]) -> None:
        self.text, self.values = text, values

    def value(self, name: str) -> Any:
        if name not in self.values:
            raise FormulaError(f"formula {self.text!r} needs a value for {name!r}; none was given")
        try:
            return np.asarray(self.values[name], dtype=float)
        except (TypeError, ValueError):
            raise FormulaError(
                f"formula {self.text!r}: value for {name!r} is not numeric: {self.values[name]!r}"
            ) from None

    def lag(self, name: str, k: int) -> Any:
        raise FormulaError(
            f"formula {self.text!r} uses lag()/sum(), which need a monthly panel; "
            "use Formula.evaluate_frame"
        )

    rolling_sum = lag


class FrameEnv(Env):
    def __init__(self, text: str, wide: pd.DataFrame, *, uses_time: bool) -> None:
        self.text, self.wide = text, wide
        if uses_time:
            index = wide.index
            if not isinstance(index, pd.MultiIndex) or "entity_id" not in index.names:
                raise InputError(
                    f"formula {text!r}: lag()/sum() need a MultiIndex (entity_id, period); "
                    f"got index levels {list(index.names)}"
                )
            if not (index.is_unique and index.is_monotonic_increasing):
                raise InputError(
                    f"formula {text!r}: the (entity_id, period) index must be unique and sorted; "
                    "call .sort_index() and drop duplicates"
                )

    def _series(self, name: str) -> pd.Series:
        if name not in self.wide.columns:
            raise FormulaError(
                f"formula {self.text!r} needs column {name!r}; the frame has {list(self.wide.columns)}"
            )
        try:
            return self.wide[name].astype("float64")
        except (TypeError, ValueError):
            raise FormulaError(f"formula {self.text!r}: column {name!r} is not numeric") from None

    def value(self, name: str) -> Any:
        return self._series(name).to_numpy()

    def lag(self, name: str, k: int) -> Any:
        return self._series(name).groupby(level="entity_id", sort=False).shift(k).to_numpy()

    def rolling_sum(self, name: str, k: int) -> Any:
        s = self._series(name)
        rolled = s.groupby(level="entity_id", sort=False).rolling(k, min_periods=k).sum()
        return rolled.droplevel(0).reindex(s.index).to_numpy()


def _div(a: Any, b: Any) -> Any:
    out = np.true_divide(a, b)
    zero = np.equal(b, 0)
    return np.where(zero, np.nan, out) if np.any(zero) else out


def _kleene_and(a: Any, b: Any) -> Any:
    return np.where((a == 0) | (b == 0), 0.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 1.0))


def _kleene_or(a: Any, b: Any) -> Any:
    return np.where((a == 1) | (b == 1), 1.0, np.where(np.isnan(a) | np.isnan(b), np.nan, 0.0))


def _compare(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    return np.where(np.isnan(a) | np.isnan(b), np.nan, op(a, b).astype(float))


def compile_node(node: ast.expr) -> Fn:
    """Turn a validated node into a closure env -> float64 array (booleans as 1/0/NaN)."""
    if isinstance(node, ast.Constant):
        value = np.float64(node.value)
        return lambda env: value
    if isinstance(node, ast.Name):
        name = node.id
        return lambda env: env.value(name)
    if isinstance(node, ast.UnaryOp):
        inner = compile_node(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env: np.negative(inner(env))
        if isinstance(node.op, ast.Not):
            return lambda env: 1.0 - inner(env)
        return inner
    if isinstance(node, ast.BinOp):
        left = compile_node(node.left)
        if isinstance(node.op, ast.Pow):
            exp = literal(node.right)
            # 0 ** negative is a division by zero: NaN, as for '/'
            return lambda env: (lambda b: np.where((b == 0) & (exp < 0), np.nan, np.power(b, exp)))(
                np.asarray(left(env), dtype=float)
            )
        right = compile_node(node.right)
        op = _div if isinstance(node.op, ast.Div) else BINOPS[type(node.op)]
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.Compare):
        operands = [compile_node(x) for x in (node.left, *node.comparators)]
        ops = [CMPOPS[type(o)] for o in node.ops]

        def chain(env: Env) -> Any:
            vals = [f(env) for f in operands]
            out = _compare(ops[0], vals[0], vals[1])
            for i in range(1, len(ops)):
                out = _kleene_and(out, _compare(ops[i], vals[i], vals[i + 1]))
            return out

        return chain
    if isinstance(node, ast.BoolOp):
        combine = _kleene_and if isinstance(node.op, ast.And) else _kleene_or
        return _fold([compile_node(x) for x in node.values], combine)
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[attr-defined]
        if name in ("lag", "sum"):
            metric, k = node.args[0].id, int(literal(node.args[1]))  # type: ignore[attr-defined,arg-type]
            if name == "lag":
                return lambda env: env.lag(metric, k)
            return lambda env: env.rolling_sum(metric, k)
        args = [compile_node(a) for a in node.args]
        if name == "abs":
            return lambda env: np.abs(args[0](env))
        return _fold(args, np.minimum if name == "min" else np.maximum)
    raise AssertionError(f"unvalidated node {ast.dump(node)}")  # pragma: no cover


def _fold(parts: list[Callable[[Env], Any]], combine: Callable[[Any, Any], Any]) -> Callable:
    """The compiled ``a op b op c ...``: ``combine`` the parts' values left to right."""

    def fold(env: Env) -> Any:
        out = parts[0](env)
        for part in parts[1:]:
            out = combine(out, part(env))
        return out

    return fold
