"""``raw.yaml``: metrics defined as aggregations over raw source-system extracts.

The finance team writes this file, so every SQL fragment in it (``value``, ``where``) is
treated like the formula language: it must be one plain scalar expression over the source's
declared columns. DuckDB's own parser reads it (``json_serialize_sql``) and the parse tree is
checked node by node: no subquery, no aggregate or window, no table function, only
whitelisted scalar functions and operators, only the source's columns. Anything else is a
:class:`~perflink.errors.CatalogError` naming the file, the metric and the fragment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path, PurePosixPath

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from perflink.errors import CatalogError

__all__ = ["RawCatalog", "RawJoin", "RawMetric", "RawSource", "check_expression", "load_raw"]

_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_PLACEHOLDER = "__perflink_src"
# Node classes of DuckDB's parse tree that a plain scalar expression may contain.
_CLASSES = {
    "COLUMN_REF",
    "CONSTANT",
    "FUNCTION",
    "COMPARISON",
    "CONJUNCTION",
    "OPERATOR",
    "BETWEEN",
    "CASE",
    "CAST",
    "TYPE",
}
# Scalar functions and operators allowed in value/where fragments (no I/O, no aggregates).
# fmt: off
_FUNCTIONS = frozenset({
    "+", "-", "*", "/", "//", "%", "**", "^", "||", "~~", "!~~", "~~*", "!~~*",
    "abs", "round", "floor", "ceil", "ceiling", "sign", "sqrt", "ln", "log10",
    "nullif", "least", "greatest", "if", "ifnull",
    "upper", "lower", "trim", "ltrim", "rtrim", "substr", "substring", "length", "left",
    "right", "concat", "replace", "starts_with", "ends_with", "contains", "prefix", "suffix",
    "date_trunc", "year", "month", "day", "quarter", "strftime",
})
# fmt: on


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class RawSource(_Model):
    """One raw extract: Parquet files (a glob relative to the data folder) and their columns."""

    path: str = Field(min_length=1)
    system: str = Field(min_length=1)
    columns: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> RawSource:
        pure = PurePosixPath(self.path)
        if pure.is_absolute() or ".." in pure.parts or "'" in self.path or "\\" in self.path:
            raise ValueError(
                f"path {self.path!r} must be a relative glob inside the data folder "
                "(no '..', no absolute path, no quote or backslash)"
            )
        if not self.path.endswith(".parquet"):
            raise ValueError(f"path {self.path!r} must name Parquet files (*.parquet)")
        bad = [c for c in self.columns if not re.match(_NAME, c)]
        if bad:
            raise ValueError(f"column names {bad} must be plain identifiers")
        return self


class RawJoin(_Model):
    """Look the entity up in another source through a shared key (e.g. ``customer_id``)."""

    source: str = Field(pattern=_NAME)
    key: str = Field(pattern=_NAME)


class RawMetric(_Model):
    """A metric computed as ``SUM(value)`` per entity and month over one raw source."""

    metric_id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    source: str = Field(pattern=_NAME)
    value: str = Field(min_length=1)
    date: str = Field(pattern=_NAME)
    entity: str = Field(default="entity_id", pattern=_NAME)
    where: str | None = None
    join: RawJoin | None = None
    #: round the monthly sum to this many decimals (as the source system reports it)
    decimals: int | None = Field(default=None, ge=0, le=8)


class RawCatalog(_Model):
    """The parsed ``raw.yaml``: sources by name and the metrics computed from them."""

    sources: dict[str, RawSource]
    metrics: list[RawMetric]

    def metric(self, metric_id: str) -> RawMetric:
        """The raw definition of ``metric_id``; unknown ids raise :class:`CatalogError`."""
        for m in self.metrics:
            if m.metric_id == metric_id:
                return m
        known = ", ".join(m.metric_id for m in self.metrics)
        raise CatalogError(f"raw.yaml defines no metric {metric_id!r}; it defines: {known}")


def load_raw(path: Path, *, metrics: Iterable[str], derived: Iterable[str] = ()) -> RawCatalog:
    """Read and check ``raw.yaml``.

    Parameters
    ----------
    path : the ``raw.yaml`` file.
    metrics : ids of the catalog's metrics; every raw metric must be one of them.
    derived : ids of derived (formula) metrics, which cannot come from raw lines.

    Raises
    ------
    CatalogError
        Naming the file and metric for: a missing field, an unknown source, metric or column,
        a duplicate metric, a fragment that is not one plain expression over the source's
        columns.
    """
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path} is not valid UTF-8 YAML: {exc}") from None
    if not isinstance(doc, dict) or "sources" not in doc or "metrics" not in doc:
        raise CatalogError(f"{path} must have top-level 'sources:' and 'metrics:' keys")
    try:
        raw = RawCatalog.model_validate(doc)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = list(err["loc"])
            if len(loc) > 1 and loc[0] == "metrics" and isinstance(loc[1], int):
                items = doc.get("metrics") or []
                item = items[loc[1]] if loc[1] < len(items) else {}
                ident = item.get("metric_id") if isinstance(item, dict) else None
                loc[1] = f"metric {ident or '#' + str(loc[1] + 1)}"
            field = ".".join(str(p) for p in loc) or "(file)"
            lines.append(f"{path}: {field}: {err['msg']}")
        raise CatalogError("\n".join(lines)) from None
    known, derived = set(metrics), set(derived)
    seen: set[str] = set()
    problems = []
    for m in raw.metrics:
        where = f"{path}: metric {m.metric_id}"
        if m.metric_id in seen:
            problems.append(f"{where}: defined twice; each metric has one raw definition")
        seen.add(m.metric_id)
        if m.metric_id not in known:
            problems.append(f"{where}: not in metrics.yaml; add it to the dictionary first")
        elif m.metric_id in derived:
            problems.append(
                f"{where}: is a derived (formula) metric and cannot come from raw lines"
            )
        src = raw.sources.get(m.source)
        if src is None:
            problems.append(
                f"{where}: unknown source {m.source!r}; sources are {sorted(raw.sources)}"
            )
            continue
        cols = set(src.columns)
        for field in ("date",) if m.join else ("date", "entity"):
            name = getattr(m, field)
            if name not in cols:
                problems.append(
                    f"{where}: {field} column {name!r} is not a column of source {m.source} "
                    f"({', '.join(src.columns)})"
                )
        if m.join:
            other = raw.sources.get(m.join.source)
            if other is None:
                problems.append(f"{where}: join source {m.join.source!r} is not defined")
            else:
                for name, srcname, scols in (
                    (m.join.key, m.source, cols),
                    (m.join.key, m.join.source, set(other.columns)),
                    (m.entity, m.join.source, set(other.columns)),
                ):
                    if name not in scols:
                        problems.append(
                            f"{where}: join column {name!r} is not a column of source {srcname}"
                        )
        for field in ("value", "where"):
            text = getattr(m, field)
            if text is not None:
                err = check_expression(text, cols)
                if err:
                    problems.append(f"{where}: {field} {text!r}: {err}")
    if problems:
        raise CatalogError("\n".join(problems))
    return raw


def check_expression(text: str, columns: Iterable[str]) -> str | None:
    """Return why ``text`` is not a plain scalar SQL expression over ``columns`` (None if ok)."""
    if ";" in text or "--" in text or "/*" in text:
        return "must be one expression: ';' and SQL comments are not allowed"
    tree = _parse(f"SELECT ({text}) FROM {_PLACEHOLDER}")
    if tree.get("error"):
        return f"does not parse as SQL: {tree.get('error_message')}"
    stmts = tree.get("statements", [])
    node = stmts[0].get("node", {}) if len(stmts) == 1 else {}
    plain = (
        node.get("type") == "SELECT_NODE"
        and len(node.get("select_list", [])) == 1
        and not node.get("modifiers")
        and not node.get("cte_map", {}).get("map")
        and node.get("where_clause") is None
        and not node.get("group_expressions")
        and node.get("having") is None
        and node.get("qualify") is None
        and (node.get("from_table") or {}).get("type") == "BASE_TABLE"
        and node["from_table"].get("table_name") == _PLACEHOLDER
    )
    if not plain:
        return "must be a single expression, not a query or a statement"
    return _check_node(node["select_list"][0], set(columns))


@cache
def _parse(sql: str) -> dict:
    import duckdb  # imported here: catalogs without raw.yaml do not need it

    con = duckdb.connect()
    try:
        return json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    finally:
        con.close()


def _check_node(node: object, columns: set[str]) -> str | None:
    if isinstance(node, list):
        for item in node:
            if err := _check_node(item, columns):
                return err
        return None
    if not isinstance(node, dict):
        return None
    kind = node.get("class")
    if kind is not None:
        if kind == "SUBQUERY":
            return "subqueries are not allowed"
        if kind not in _CLASSES:
            return f"{kind.lower()} expressions are not allowed"
        if kind == "COLUMN_REF":
            names = node.get("column_names", [])
            if len(names) != 1 or names[0] not in columns:
                shown = ".".join(names)
                return f"unknown column {shown!r}; the source has {', '.join(sorted(columns))}"
        if kind == "FUNCTION":
            name = node.get("function_name", "")
            if name.lower() not in _FUNCTIONS or node.get("schema") or node.get("catalog"):
                return (
                    f"function {name!r} is not allowed (allowed: {', '.join(sorted(_FUNCTIONS))})"
                )
            if node.get("filter") is not None or node.get("distinct"):
                return f"function {name!r}: FILTER/DISTINCT are not allowed"
    for value in node.values():
        if err := _check_node(value, columns):
            return err
    return None
