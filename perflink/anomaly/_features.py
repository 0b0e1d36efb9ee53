"""Features of the multivariate detector, read off the catalog: :func:`features_of` (not API
beyond it; re-exported by :mod:`perflink.anomaly`).

A feature is one number per entity and month that should be steady for a unit: a ratio of two
of its flows or stocks, an amount per head, or an average it reports (a rate, a price, a
score). Three kinds come from the catalog, in this order:

1. **Ratio metrics**: every derived metric aggregated by ``formula`` (recomputed on totals)
   whose formula is a same-month ratio ``a / b`` of two catalog metrics, optionally times or
   divided by constants (``direct_cost / turnover``,
   ``freight * 1000 / units``). ``a`` and ``b`` may themselves be derived,
   as long as their formulas, down to the reported metrics, read no other month (no ``lag``
   or ``sum``): the detector recomputes them per entity and month from the facts (a gross
   margin, a net profit). Ratios over a sum (``x / (y + z)``) or over another month are left
   out: they are not one flow over another.
2. **Per-head ratios**, when a reported metric has the ``headcount`` role: the ``sales``
   role's metric and every money flow the catalog maps headcount to (the costs people drive)
   per head (a derived flow recomputed as above), unless a ratio metric already divides it
   by headcount.
3. **Reported averages**: reported monthly metrics aggregated by ``mean`` or ``wmean:<m>``
   whose unit is a rate, a price (money per something) or a score (points).

A feature is named by its catalog metric id; a per-head ratio, which has none, by
``<flow>_per_head``. Pages name it by the catalog's name (:meth:`Feature.label`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np

from perflink.anomaly._cube import Cube
from perflink.catalog import Catalog
from perflink.errors import ParamsError
from perflink.labels import t

__all__ = ["Feature", "features_of"]


@dataclass(frozen=True)
class Feature:
    """One feature of the multivariate detector: ``factor * numerator / denominator``.

    Attributes
    ----------
    name : the feature's name: the catalog metric id, or ``<flow>_per_head``.
    numerator : metric id of the numerator (the metric itself for a reported average).
    denominator : metric id of the denominator, or None for a reported average.
    factor : constant the ratio is multiplied by (``1000`` in ``x * 1000 / y``).
    unit : catalog unit of the feature's values (for formatting).
    metric : the catalog metric the feature is, or None for a per-head ratio.
    inputs : the reported metrics the feature is computed from (numerator's first); a
        finding is filed under the one that moved most, and cites their source references.
    """

    name: str
    numerator: str
    denominator: str | None
    factor: float
    unit: str
    metric: str | None
    inputs: tuple[str, ...]

    def label(self, catalog: Catalog, lang: str) -> str:
        """The feature's name on a page in ``lang``: the catalog's name of its metric, or
        "<flow> per head"."""
        if self.metric is not None:
            return catalog.metrics[self.metric].name(lang)
        name = catalog.metrics[self.numerator].name(lang)
        if lang == "zh" and name[:1].isascii():  # 人均 Net sales: a space before Latin text
            name = f" {name}"
        return t("anomaly.feature.per_head", lang, metric=name)


def features_of(catalog: Catalog) -> dict[str, Feature]:
    """The features of the multivariate detector the catalog gives, by name.

    Parameters
    ----------
    catalog : perflink.catalog.Catalog
        Metrics (formulas, units, aggregations, frequency, roles) and mappings.

    Returns
    -------
    dict of str -> Feature
        Ratio metrics first, then per-head ratios, then reported averages (see the module
        docstring), in catalog order; empty when the catalog gives none. Whether the facts
        hold a feature's inputs is decided per run (units without them skip the feature).

    Raises
    ------
    ParamsError
        ``catalog`` is not a :class:`~perflink.catalog.Catalog` (load one with
        :func:`perflink.catalog.load_catalog`).

    Examples
    --------
    A catalog with ``margin_rate`` (formula ``margin / turnover``, aggregation ``formula``),
    ``turnover`` in the ``sales`` role, ``staff`` in the ``headcount`` role and a reported
    ``fill_rate`` (unit ``ratio``, aggregation ``mean``) gives ``margin_rate``,
    ``turnover_per_head`` and ``fill_rate``.
    """
    if not isinstance(catalog, Catalog):
        raise ParamsError(
            f"features_of expects a Catalog (perflink.catalog.load_catalog or review.catalog), "
            f"got {type(catalog).__name__}."
        )
    out: dict[str, Feature] = {}
    leaves: dict[str, tuple[str, ...] | None] = {}
    for spec in catalog.metrics.values():
        # a ratio metric is recomputed on totals (aggregation: formula); a derived flow such
        # as an amount over an exchange rate adds up (sum) and is no steady ratio
        if not spec.derived or spec.aggregation != "formula":
            continue
        ratio = _ratio(catalog.formulas[spec.id].text)
        if ratio is None:
            continue
        num, den, factor = ratio
        a, b = _leaves(catalog, num, leaves), _leaves(catalog, den, leaves)
        if a is None or b is None:
            continue
        inputs = tuple(dict.fromkeys(a + b))
        out[spec.id] = Feature(spec.id, num, den, factor, spec.unit, spec.id, inputs)
    head = catalog.role("headcount")
    if head is not None and not catalog.metrics[head].derived:
        flows = [catalog.role("sales")] + [
            mp.target for mp in catalog.mappings if mp.driver == head
        ]
        done = {(f.numerator, f.denominator) for f in out.values()}
        for flow in dict.fromkeys(f for f in flows if f is not None):
            spec = catalog.metrics[flow]
            inputs = _leaves(catalog, flow, leaves)
            if spec.aggregation != "sum" or not spec.unit_info.is_money or inputs is None:
                continue
            if (flow, head) in done:
                continue
            name = f"{flow}_per_head"
            if name in catalog.metrics:  # a metric of that id means something else
                name = f"{flow}_per_{head}"
            unit = f"{spec.unit}/{catalog.metrics[head].unit}"
            out[name] = Feature(name, flow, head, 1.0, unit, None, (*inputs, head))
    for spec in catalog.metrics.values():
        if spec.derived or spec.frequency != "monthly" or spec.id in out:
            continue
        if spec.aggregation != "mean" and spec.weight_metric is None:
            continue
        unit = spec.unit_info
        if (
            unit.is_rate
            or unit.kind == "money_per"
            or (unit.kind == "quantity" and unit.en == "points")
        ):
            out[spec.id] = Feature(spec.id, spec.id, None, 1.0, spec.unit, spec.id, (spec.id,))
    return out


def _ratio(text: str) -> tuple[str, str, float] | None:
    """``(a, b, c)`` when the formula is ``c * a / b`` for metric ids a, b and constants c."""
    product = _product(ast.parse(text, mode="eval").body)
    if product is None:
        return None
    coef, nums, dens = product
    if len(nums) != 1 or len(dens) != 1 or coef == 0 or nums[0] == dens[0]:
        return None
    return nums[0], dens[0], coef


def _product(node: ast.expr) -> tuple[float, list[str], list[str]] | None:
    """A product of constants and metric ids as (coefficient, numerator ids, denominator ids);
    None for anything else (sums, functions, powers)."""
    if isinstance(node, ast.Constant):
        ok = isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        return (float(node.value), [], []) if ok else None
    if isinstance(node, ast.Name):
        return 1.0, [node.id], []
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _product(node.operand)
        if inner is None:
            return None
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return sign * inner[0], inner[1], inner[2]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
        left, right = _product(node.left), _product(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Mult):
            return left[0] * right[0], left[1] + right[1], left[2] + right[2]
        if right[0] == 0:
            return None
        return left[0] / right[0], left[1] + right[2], left[2] + right[1]
    return None


def _leaves(catalog: Catalog, metric: str, memo: dict) -> tuple[str, ...] | None:
    """The reported metrics ``metric`` is computed from in its own month, or None when a
    formula on the way reads another month (``lag``, ``sum``)."""
    if metric in memo:
        return memo[metric]
    memo[metric] = None  # a cycle cannot happen (the catalog checks), but stay finite
    spec = catalog.metrics[metric]
    if not spec.derived:
        memo[metric] = (metric,)
        return memo[metric]
    f = catalog.formulas[metric]
    if f.uses_time:
        return None
    parts = [_leaves(catalog, m, memo) for m in f.inputs]
    if any(p is None for p in parts):
        return None
    memo[metric] = tuple(dict.fromkeys(m for p in parts for m in p))
    return memo[metric]


def metric_values(cube: Cube, catalog: Catalog, metric: str, memo: dict) -> np.ndarray | None:
    """(E, T) values of ``metric``: reported ones from the cube, derived ones recomputed per
    entity and month from their formula; None when the facts lack an input."""
    if metric in memo:
        return memo[metric]
    spec = catalog.metrics[metric]
    if not spec.derived:
        memo[metric] = cube.get(metric) if cube.m(metric) is not None else None
        return memo[metric]
    f = catalog.formulas[metric]
    args = {m: metric_values(cube, catalog, m, memo) for m in f.inputs}
    if f.uses_time or any(v is None for v in args.values()):
        memo[metric] = None
        return None
    with np.errstate(all="ignore"):
        memo[metric] = np.asarray(f.evaluate(args), dtype=float)
    return memo[metric]


def feature_cube(
    cube: Cube, catalog: Catalog, features: dict[str, Feature]
) -> tuple[list[Feature], np.ndarray, np.ndarray]:
    """Values of the features whose inputs the facts hold.

    Returns the features kept, their values (E, K, T) and their denominators (E, K, T; NaN
    for reported averages), used to price a ratio's change. A ratio is NaN where its
    denominator is not positive.
    """
    keep, values, dens = [], [], []
    memo: dict = {}
    shape = (len(cube.entities), len(cube.periods))
    for feat in features.values():
        num = metric_values(cube, catalog, feat.numerator, memo)
        den = (
            np.ones(shape)
            if feat.denominator is None
            else metric_values(cube, catalog, feat.denominator, memo)
        )
        if num is None or den is None or not np.isfinite(num).any():
            continue
        with np.errstate(all="ignore"):
            x = np.where(den > 0, num * feat.factor / den, np.nan)
        keep.append(feat)
        values.append(x)
        dens.append(np.full(shape, np.nan) if feat.denominator is None else den)
    if not keep:
        empty = np.empty((shape[0], 0, shape[1]))
        return [], empty, empty
    return keep, np.stack(values, axis=1), np.stack(dens, axis=1)
