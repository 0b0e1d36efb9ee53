"""The metric catalog: 指标词典, 业务-财务映射, 勾稽规则 and the assessment policy.

A catalog is a folder of YAML files:

``metrics.yaml``
    One entry per metric (id, names, definition, caliber, unit, owner, source system, tier, ...).
``mappings.yaml``
    Business driver -> finance metric it drives, with expected sign and lag in months.
``rules.yaml``
    Reconciliation rules ``lhs <check> rhs`` with a relative tolerance.
``policy.yaml``
    Constraints on assessment schemes per centre type and the bonus coefficient table.
``raw.yaml`` (optional)
    Metrics computed from raw source-system extracts (see :mod:`perflink.raw`).

:func:`load_catalog` reads and validates the folder into a frozen :class:`Catalog`; every
problem is reported with the file and the metric, mapping or rule id.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from perflink import formula as _formula
from perflink._raw_catalog import RawCatalog, load_raw
from perflink.errors import CatalogError, FormulaError
from perflink.units import Unit, parse_unit

__all__ = [
    "ROLES",
    "Catalog",
    "Metric",
    "MetricMapping",
    "Policy",
    "Rule",
    "check_schemes",
    "load_catalog",
    "metric_ids",
]

Category = Literal["financial", "business", "management"]
CenterType = Literal["profit", "cost", "functional"]
Severity = Literal["critical", "high", "medium", "low", "info"]
_ID = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
_BASE_AGGREGATIONS = ("sum", "mean", "last", "formula")
Role = Literal["profit", "sales", "cash_collection", "headcount"]
#: What each metric role switches on (docs/catalog-reference.md); every role is optional and
#: a section whose role no metric plays says so on its page.
ROLES: dict[str, str] = {
    "profit": "the headline profit: the forecast simulates the reported flows of its formula "
    "and projects it to the year end; the KPI waterfall and the summary's chain end on it",
    "sales": "the top line: the collections check compares it with cash collection, and "
    "per-head ratios of the anomaly detector divide it by the headcount",
    "cash_collection": "cash collected from customers: with sales, the summary suggests tying "
    "incentives to collections when sales meet target and collections do not",
    "headcount": "people employed (a stock): per-head ratios of the anomaly detector",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Metric(_Model):
    """One entry of the metric dictionary (指标词典).

    Attributes
    ----------
    id : the metric id: lower-case snake_case, at most 64 characters (``net_sales``); the
        ``metric_id`` of facts, targets, schemes and adjustments. ``abs``, ``min``, ``max``,
        ``lag`` and ``sum`` are formula functions and cannot be ids.
    name_zh : the name on Chinese pages (中文名称); optional when ``name_en`` is given.
    name_en : the name on English pages; optional when ``name_zh`` is given.
    definition : what the metric measures, in one sentence (shown in the catalog table).
    caliber : the accounting caliber (口径): what is included and excluded, when it is
        recognised; the mapping task tests calibers between systems.
    unit : the unit of every value of the metric in the tables, read by the unit registry
        (:mod:`perflink.units`): money as ``元``, ``千元``, ``万元``, ``亿元``, ``USD``,
        ``kUSD``, ``MUSD``, ``kEUR``, ...; ``ratio`` (or ``%``) for fractions (0.95 = 95%);
        money per something as ``元/件``, ``USD/order``; quantities as ``persons``/``人``,
        ``units``/``件``, ``days``/``天``, ``orders``, ``visits``, ... All money metrics of a
        catalog share one currency; every number on the pages is shown in its unit's words.
    owner : the department answerable for the figure.
    source_system : the system the facts come from (``ERP``, ``CRM``, ``MES``, ``HR``);
        ``derived`` for a metric computed by its formula.
    frequency : how often the source reports it: ``monthly`` or ``quarterly``.
    direction : ``higher`` when more is better (sales, profit), ``lower`` when less is
        (costs, days of receivables): sets the sign of completion and of deviations.
    tier : 1 = assessment core (headline results of the three-tier decomposition), 2 =
        financial drivers, 3 = business drivers.
    category : ``financial``, ``business`` or ``management``: the scheme category the
        metric counts in (weights per category are bounded by the policy).
    aggregation : how months and entities add up: ``sum`` (flows), ``mean``, ``last``
        (stocks, e.g. inventory at month end), ``formula`` (recompute the formula on the
        totals, for ratios) or ``wmean:<metric>`` (mean weighted by another metric).
    formula : for a derived metric, its formula over other metric ids (grammar below);
        empty for a reported metric. A derived metric is never in facts.
    decomposition : optional identity used to attribute this metric to business drivers
        (e.g. ``order_count * average_order_value / 1000``); same grammar as formulas.
    scoring_basis : how an actual compares with its target: ``ratio`` (completion = actual /
        target, for positive amounts) or ``points`` (actual - target, for rates, growth and
        any figure whose target can be zero or negative); empty = ``points`` for rates
        (unit ``ratio`` or ``%``), ``ratio`` otherwise. A ``ratio`` target at or below zero
        is compared in points of the target's size.
    role : optional: what the review needs to know the metric plays (``profit``, ``sales``,
        ``cash_collection``, ``headcount``; at most one metric per role, see
        :data:`ROLES`). A role no metric plays switches its section off with a sentence.

    ``name_zh`` and ``name_en`` are each optional as long as one is given; pages in the
    other language fall back to it.
    """

    id: _ID
    name_zh: str = ""
    name_en: str = ""
    definition: str = Field(min_length=1)
    caliber: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    source_system: str = Field(min_length=1)
    frequency: Literal["monthly", "quarterly"] = "monthly"
    direction: Literal["higher", "lower"]
    tier: Literal[1, 2, 3]
    category: Category
    aggregation: str = "sum"
    formula: str | None = None
    decomposition: str | None = None
    role: Role | None = None
    scoring_basis: Literal["ratio", "points"] | None = None

    @property
    def in_points(self) -> bool:
        """Whether actual and target compare in points (``actual - target``) rather than by
        ratio: ``scoring_basis`` when given, else rates (unit ``ratio``, ``%``) are in
        points and every other unit by ratio."""
        if self.scoring_basis is not None:
            return self.scoring_basis == "points"
        return self.unit_info.is_rate

    @model_validator(mode="after")
    def _one_name(self) -> Metric:
        if not (self.name_zh or self.name_en):
            raise ValueError("give the metric a name: name_zh, name_en or both")
        return self

    @property
    def unit_info(self) -> Unit:
        """The metric's unit read by the unit registry (:func:`perflink.units.parse_unit`)."""
        return parse_unit(self.unit)

    @field_validator("aggregation")
    @classmethod
    def _check_aggregation(cls, value: str) -> str:
        if value in _BASE_AGGREGATIONS or value.startswith("wmean:"):
            return value
        raise ValueError(
            f"aggregation {value!r} is not one of sum, mean, last, formula, wmean:<metric>"
        )

    @property
    def derived(self) -> bool:
        """True when the metric is computed from a formula rather than reported."""
        return self.formula is not None

    @property
    def weight_metric(self) -> str | None:
        """For ``wmean:<metric>`` aggregation, the metric used as weight."""
        return self.aggregation.split(":", 1)[1] if self.aggregation.startswith("wmean:") else None

    def name(self, lang: str = "zh") -> str:
        """The metric's display name in ``lang`` (``zh`` or ``en``), else the other one."""
        first, other = (
            (self.name_zh, self.name_en) if lang == "zh" else (self.name_en, self.name_zh)
        )
        return first or other


class MetricMapping(_Model):
    """A business driver and the finance metric it is expected to move (业务-财务映射).

    Attributes
    ----------
    id : the mapping id (letters, digits, ``_``), e.g. ``M01``; ``kpi.elasticities`` keys.
    driver : the business metric id that moves the target (e.g. ``order_count``).
    target : the finance metric id it moves (e.g. ``net_sales``).
    sign : ``1`` when the target rises with the driver, ``-1`` when it falls.
    lag : months between a move of the driver and the move of the target (0-24).
    mechanism : why the driver moves the target, in one sentence (shown on the page).
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    driver: _ID
    target: _ID
    sign: Literal[-1, 1]
    lag: int = Field(ge=0, le=24)
    mechanism: str = Field(min_length=1)


class Rule(_Model):
    """A reconciliation rule (勾稽关系): ``lhs <check> rhs`` within a relative tolerance.

    Attributes
    ----------
    id : the rule id (letters, digits, ``_``), e.g. ``R01``.
    name_zh : the rule's name on Chinese pages (optional when ``name_en`` is given).
    name_en : the rule's name on English pages (optional when ``name_zh`` is given).
    lhs : left-hand side: a formula over metric ids.
    check : ``approx`` (``|lhs / rhs - 1| <= tolerance``), ``le`` (``lhs <= rhs * (1 +
        tolerance)``) or ``ge`` (``lhs >= rhs * (1 - tolerance)``).
    rhs : right-hand side: a formula over metric ids.
    tolerance : relative tolerance, a fraction from 0 to 1 (0.02 = 2%).
    severity : severity of a breach: ``critical``, ``high``, ``medium``, ``low`` or
        ``info``.
    scope : when the rule is evaluated: ``month`` (every month of every entity) or
        ``quarter`` (at quarter-end months only, on the rule's own expressions, e.g.
        ``sum(x, 3)`` for a quarter's flows booked at different times within it).
    description : what a breach means, in one sentence.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    name_zh: str = ""
    name_en: str = ""
    lhs: str
    check: Literal["approx", "le", "ge"]
    rhs: str
    tolerance: float = Field(ge=0, le=1)
    severity: Severity
    scope: Literal["month", "quarter"] = "month"
    description: str = ""

    @model_validator(mode="after")
    def _one_name(self) -> Rule:
        if not (self.name_zh or self.name_en):
            raise ValueError("give the rule a name: name_zh, name_en or both")
        return self

    def name(self, lang: str = "zh") -> str:
        """The rule's display name in ``lang``, else the other one."""
        first, other = (
            (self.name_zh, self.name_en) if lang == "zh" else (self.name_en, self.name_zh)
        )
        return first or other


class _Bound(_Model):
    """Bounds of the summed weight of one scheme category (fractions, 0.5 = 50%).

    Attributes
    ----------
    min : the least total weight of the category's metrics in a scheme (empty = none).
    max : the most total weight (empty = none).
    """

    min: float | None = Field(default=None, ge=0, le=1)
    max: float | None = Field(default=None, ge=0, le=1)


class _BonusStep(_Model):
    """One step of the bonus coefficient table.

    Attributes
    ----------
    min_score : the assessment score from which this step applies.
    coefficient : the bonus coefficient (bonus = ``base_bonus`` x coefficient), 0 or more.
    """

    min_score: float
    coefficient: float = Field(ge=0)


class Policy(_Model):
    """Assessment policy: weight constraints per centre type and the bonus coefficient table.

    Attributes
    ----------
    weight_tolerance : a scheme's weights must sum to 1 within this (0 to 0.05).
    constraints : per centre type (``profit``, ``cost``, ``functional``) and category
        (``financial``, ``business``, ``management``), the ``min`` / ``max`` summed weight
        of that category's metrics in a scheme; breaches are findings of the scoring task.
    bonus_coefficient : the steps ``{min_score, coefficient}``, in increasing ``min_score``;
        a score earns the coefficient of the highest step it reaches.
    """

    weight_tolerance: float = Field(default=0.001, ge=0, le=0.05)
    constraints: dict[CenterType, dict[Category, _Bound]]
    bonus_coefficient: list[_BonusStep]

    @field_validator("bonus_coefficient")
    @classmethod
    def _sorted_steps(cls, steps: list[_BonusStep]) -> list[_BonusStep]:
        scores = [s.min_score for s in steps]
        if not steps or scores != sorted(scores) or len(set(scores)) != len(scores):
            raise ValueError("bonus_coefficient steps must be non-empty with increasing min_score")
        return steps


def check_schemes(schemes: pd.DataFrame, policy: Policy, *, lang: str = "zh") -> pd.DataFrame:
    """Check assessment schemes against the policy: weights sum to 100% and per-category bounds.

    Parameters
    ----------
    schemes : the schemes table (reads ``scheme_id, center_type, entity_id, category, weight``).
    policy : the catalog's :class:`Policy`.
    lang : language of the ``message`` column (``zh`` or ``en``).

    Returns
    -------
    DataFrame with one row per violation: ``scheme_id, center_type, entity_id, rule_id``
    (``weights_sum`` or ``<category>_min`` / ``<category>_max``), ``value`` (the scheme's
    weight share), ``expected`` (the bound), ``severity`` and ``message``. Empty when every
    scheme complies; a broken scheme is a finding, never an exception.
    """
    rows = []
    tol = policy.weight_tolerance
    for scheme_id, part in schemes.groupby("scheme_id", sort=True):
        center = str(part["center_type"].iloc[0])
        entity = part["entity_id"].iloc[0]
        entity = entity if isinstance(entity, str) and entity else None
        total = float(part["weight"].sum())
        where = dict(scheme_id=scheme_id, center_type=center, entity_id=entity)
        if abs(total - 1.0) > tol:
            msg = (
                f"考核方案 {scheme_id} 权重合计 {total:.0%}，应为 100%"
                if lang == "zh"
                else f"scheme {scheme_id}: weights sum to {total:.0%}, must be 100%"
            )
            rows.append(
                dict(
                    where,
                    rule_id="weights_sum",
                    value=total,
                    expected=1.0,
                    severity="high",
                    message=msg,
                )
            )
        shares = part.groupby("category")["weight"].sum()
        for category, bound in policy.constraints.get(center, {}).items():
            share = float(shares.get(category, 0.0))
            for side, limit in (("min", bound.min), ("max", bound.max)):
                if limit is None:
                    continue
                broken = share < limit - tol if side == "min" else share > limit + tol
                if broken:
                    op = "≥" if side == "min" else "≤"
                    msg = (
                        f"考核方案 {scheme_id}（{_CENTER_ZH.get(center, center)}）"
                        f"{_CATEGORY_ZH.get(category, category)}类权重 {share:.0%}，"
                        f"政策要求 {op} {limit:.0%}"
                        if lang == "zh"
                        else f"scheme {scheme_id} ({center} centre): {category} weight "
                        f"{share:.0%}, policy requires {op} {limit:.0%}"
                    )
                    rows.append(
                        dict(
                            where,
                            rule_id=f"{category}_{side}",
                            value=share,
                            expected=limit,
                            severity="high",
                            message=msg,
                        )
                    )
    cols = [
        "scheme_id",
        "center_type",
        "entity_id",
        "rule_id",
        "value",
        "expected",
        "severity",
        "message",
    ]
    return pd.DataFrame(rows, columns=cols)


_CENTER_ZH = {"profit": "利润中心", "cost": "成本中心", "functional": "职能部门"}
_CATEGORY_ZH = {"financial": "财务", "business": "业务", "management": "管理"}


class Catalog(_Model):
    """The validated metric catalog. Build it with :func:`load_catalog`.

    Attributes
    ----------
    metrics : dict of metric id -> :class:`Metric`
    mappings : list of :class:`MetricMapping`
    rules : list of :class:`Rule`
    policy : :class:`Policy`
    raw : metrics defined over raw extracts (``raw.yaml``), or None when the catalog has none
    source : folder the catalog was read from (for messages and the manifest)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    metrics: dict[str, Metric]
    mappings: list[MetricMapping]
    rules: list[Rule]
    policy: Policy
    raw: RawCatalog | None = None
    source: Path | None = None

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Catalog:
        """A copy with ``update`` applied; what is computed from the fields (formulas, their
        order, the money unit) is computed again for the copy, not carried over."""
        copy = super().model_copy(update=update, deep=deep)
        for name in [k for k, v in type(self).__dict__.items() if isinstance(v, cached_property)]:
            copy.__dict__.pop(name, None)
        return copy

    def metric(self, metric_id: str) -> Metric:
        """Look a metric up by id; unknown ids raise :class:`CatalogError` with suggestions."""
        try:
            return self.metrics[metric_id]
        except KeyError:
            raise CatalogError(_unknown("metric", metric_id, self.metrics)) from None

    @property
    def reported(self) -> list[str]:
        """Ids of metrics reported by source systems (no formula), in catalog order."""
        return [m.id for m in self.metrics.values() if not m.derived]

    @cached_property
    def derived_order(self) -> list[str]:
        """Ids of derived metrics, each after the metrics its formula uses."""
        formulas = {m.id: m.formula for m in self.metrics.values() if m.formula}
        order = _formula.dependency_order(formulas, known=self.metrics.keys())
        return [m for m in order if m in formulas]

    @cached_property
    def formulas(self) -> dict[str, _formula.Formula]:
        """Parsed formula of every derived metric, by metric id."""
        return {
            m.id: _formula.parse(m.formula, context=f"metric {m.id}", known=self.metrics.keys())
            for m in self.metrics.values()
            if m.formula
        }

    def role(self, role: str) -> str | None:
        """Id of the metric playing ``role`` (see :data:`ROLES`), or None when none does."""
        if role not in ROLES:
            raise CatalogError(f"unknown metric role {role!r}; roles are {', '.join(ROLES)}")
        return next((m.id for m in self.metrics.values() if m.role == role), None)

    @cached_property
    def money_unit(self) -> str | None:
        """The unit amounts of money at stake are stated in: the headline profit's unit, else
        the commonest money unit of the catalog; None when no metric is money."""
        profit = self.role("profit")
        if profit is not None and self.metrics[profit].unit_info.is_money:
            return self.metrics[profit].unit
        units = [m.unit for m in self.metrics.values() if m.unit_info.is_money]
        return max(units, key=units.count) if units else None

    def in_money_unit(self, metric_id: str) -> float | None:
        """Factor taking values of a money metric to :attr:`money_unit` (1.0 for the same
        unit); None when the metric is not money."""
        unit = self.metric(metric_id).unit_info
        if not unit.is_money or self.money_unit is None:
            return None
        return unit.scale / parse_unit(self.money_unit).scale

    def flows_of(self, metric_id: str) -> list[str] | None:
        """The reported flows a derived metric is built from through its formula and the
        formulas of the derived metrics it uses, in catalog order; None when one of them is
        read at another month (a lag) or is not a flow (aggregation other than ``sum``)."""
        seen: set[str] = set()
        stack = [metric_id]
        while stack:
            mid = stack.pop()
            if mid in seen:
                continue
            seen.add(mid)
            spec = self.metrics[mid]
            if spec.aggregation != "sum":
                return None
            if spec.derived:
                f = self.formulas[mid]
                if f.uses_time:
                    return None
                stack.extend(f.inputs)
        return [m for m in self.reported if m in seen]

    def tier(self, tier: int) -> list[str]:
        """Ids of the metrics of one tier (1, 2 or 3), in catalog order."""
        return [m.id for m in self.metrics.values() if m.tier == tier]

    def mappings_to(self, target: str) -> list[MetricMapping]:
        """Mappings whose finance target is ``target``."""
        return [mp for mp in self.mappings if mp.target == target]

    def rule(self, rule_id: str) -> Rule:
        """Look a rule up by id."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise CatalogError(_unknown("rule", rule_id, [r.id for r in self.rules]))


_FILES = ("metrics", "mappings", "rules", "policy")


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalog folder.

    Parameters
    ----------
    path : folder holding ``metrics.yaml``, ``mappings.yaml``, ``rules.yaml`` and ``policy.yaml``,
        and optionally ``raw.yaml``.

    Returns
    -------
    Catalog

    Raises
    ------
    CatalogError
        Naming the file and the metric, mapping or rule id of every problem found: a missing
        field, an unknown metric in a mapping, rule or formula, a formula that does not parse,
        a cycle between formulas, a duplicate id.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CatalogError(
            f"catalog folder {folder} does not exist; point 'catalog' at the folder "
            f"holding {', '.join(f + '.yaml' for f in _FILES)}"
        )
    # Each file is read and checked even when another one is bad, so that one run lists
    # the problems of every file (perflink check); cross-references need all of them.
    problems: list[str] = []
    built: dict[str, Any] = {}
    models = {"metrics": Metric, "mappings": MetricMapping, "rules": Rule}
    for name in _FILES:
        path = folder / f"{name}.yaml"
        try:
            raw = _read_yaml(path, name)
            if name == "policy":
                try:
                    built[name] = Policy.model_validate(raw)
                except ValidationError as exc:
                    raise CatalogError(_pydantic_message(path, "policy", exc)) from None
            else:
                items = _build_items(models[name], raw, path)
                kind = name.removesuffix("s")
                built[name] = _unique(items, path, kind)
        except CatalogError as exc:
            problems.append(str(exc))
    if problems:
        raise CatalogError("\n".join(problems))
    metric_map, policy = built["metrics"], built["policy"]
    mappings, rules = list(built["mappings"].values()), list(built["rules"].values())
    _check_references(folder, metric_map, mappings, rules)
    raw_catalog = None
    if (folder / "raw.yaml").is_file():
        raw_catalog = load_raw(
            folder / "raw.yaml",
            metrics=metric_map,
            derived=[m.id for m in metric_map.values() if m.derived],
        )
    catalog = Catalog(
        metrics=metric_map,
        mappings=mappings,
        rules=rules,
        policy=policy,
        raw=raw_catalog,
        source=folder,
    )
    # Parse every formula and order them now, so a bad catalog fails at load time.
    try:
        catalog.formulas  # noqa: B018
        catalog.derived_order  # noqa: B018
    except FormulaError as exc:
        raise CatalogError(f"{folder / 'metrics.yaml'}: {exc}") from None
    return catalog


def metric_ids(path: str | Path) -> list[str] | None:
    """The metric ids of a catalog folder's ``metrics.yaml``, or None when it does not load.

    For checks that need only the ids (the inputs' ``metric_id`` values) while another
    catalog file is broken; :func:`load_catalog` reports that file's problems.
    """
    file = Path(path) / "metrics.yaml"
    try:
        return list(
            _unique(_build_items(Metric, _read_yaml(file, "metrics"), file), file, "metric")
        )
    except CatalogError:
        return None


def _read_yaml(path: Path, key: str) -> object:
    if not path.is_file():
        raise CatalogError(f"catalog file {path} is missing; every catalog needs {key}.yaml")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path} is not valid UTF-8 YAML: {exc}") from None
    if not isinstance(doc, dict) or key not in doc:
        raise CatalogError(f"{path} must have a top-level '{key}:' key")
    return doc[key]


def _build_items(model: type[_Model], items: object, path: Path) -> list:
    if not isinstance(items, list):
        raise CatalogError(f"{path}: expected a list of entries under the top-level key")
    built, problems = [], []
    for i, item in enumerate(items, start=1):
        ident = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
        try:
            built.append(model.model_validate(item))
        except ValidationError as exc:
            problems.append(_pydantic_message(path, f"entry {ident}", exc))
    if problems:
        raise CatalogError("\n".join(problems))
    return built


def _pydantic_message(path: Path, what: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(entry)"
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{path}: {what}, field '{field}': {err['msg']}{shown}. {_fix(err)}")
    return "\n".join(lines)


def _fix(err: dict) -> str:
    """What to do about one pydantic error (fields: docs/catalog-reference.md)."""
    if err["type"] == "extra_forbidden":
        return "Remove the field or fix its spelling (docs/catalog-reference.md lists the fields)."
    if err["type"] == "missing":
        return "Add the field."
    return "Fix the value."


def _unique(items: list, path: Path, kind: str) -> dict:
    seen: dict = {}
    for item in items:
        if item.id in seen:
            raise CatalogError(
                f"{path}: {kind} id '{item.id}' is defined twice; ids must be unique"
            )
        seen[item.id] = item
    return seen


def _check_references(
    folder: Path, metrics: dict[str, Metric], mappings: list[MetricMapping], rules: list[Rule]
) -> None:
    problems = []
    for role in ROLES:
        playing = [m.id for m in metrics.values() if m.role == role]
        if len(playing) > 1:
            problems.append(
                f"{folder / 'metrics.yaml'}: metrics {', '.join(playing)} all have role "
                f"'{role}'; at most one metric plays each role"
            )
    currencies: dict[str, list[str]] = {}
    for m in metrics.values():
        if m.unit_info.currency:
            currencies.setdefault(m.unit_info.currency, []).append(m.id)
    if len(currencies) > 1:
        listed = "; ".join(f"{c}: {', '.join(ids[:3])}" for c, ids in currencies.items())
        problems.append(
            f"{folder / 'metrics.yaml'}: money metrics use more than one currency ({listed}); "
            "a review reports in one currency: convert the tables and state one currency"
        )
    for m in metrics.values():
        weight = m.weight_metric
        if weight is not None and weight not in metrics:
            problems.append(
                f"{folder / 'metrics.yaml'}: metric {m.id}: aggregation weight "
                f"{_unknown('metric', weight, metrics)}"
            )
        if m.aggregation == "formula" and not m.formula:
            problems.append(
                f"{folder / 'metrics.yaml'}: metric {m.id}: aggregation 'formula' needs a formula"
            )
        for expr, field in ((m.formula, "formula"), (m.decomposition, "decomposition")):
            if expr:
                try:
                    _formula.parse(expr, context=f"metric {m.id} {field}", known=metrics.keys())
                except FormulaError as exc:
                    problems.append(f"{folder / 'metrics.yaml'}: {exc}")
    for mp in mappings:
        for field in ("driver", "target"):
            mid = getattr(mp, field)
            if mid not in metrics:
                problems.append(
                    f"{folder / 'mappings.yaml'}: mapping {mp.id}, {field}: "
                    f"{_unknown('metric', mid, metrics)}"
                )
    for rule in rules:
        for field in ("lhs", "rhs"):
            try:
                _formula.parse(
                    getattr(rule, field), context=f"rule {rule.id} {field}", known=metrics.keys()
                )
            except FormulaError as exc:
                problems.append(f"{folder / 'rules.yaml'}: {exc}")
    if problems:
        raise CatalogError("\n".join(problems))


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} '{name}'{hint}"
