"""Catalog integrity checks for :func:`perflink.mapping.check_catalog`. Not API."""

from __future__ import annotations

import contextlib
import re

import pandas as pd

from perflink import formula as _formula
from perflink.catalog import Catalog
from perflink.errors import FormulaError
from perflink.labels import t
from perflink.units import Unit

_PLACEHOLDER = re.compile(r"^\s*(|-+|—+|\?+|todo|tbd|n/?a|none|null|待定|待补充|无)\s*$", re.I)
_FIELDS = ("definition", "caliber", "unit", "owner", "source_system")


def _scale_mismatch(driver: Unit, target: Unit) -> float | None:
    """Factor between two units of one kind and currency that differ only in scale (元 vs
    万元, USD vs kUSD; money per the same thing), else None (different things, or the same
    unit)."""
    if driver.kind != target.kind or driver.kind not in ("money", "money_per"):
        return None
    if driver.currency != target.currency or (driver.zh, driver.en) != (target.zh, target.en):
        return None
    return driver.scale / target.scale if driver.scale != target.scale else None


def run(catalog: Catalog, lang: str) -> list[dict]:
    rows: list[dict] = []

    def add(metric_id: str, rule_id: str, check: str, severity: str, key: str, **fmt) -> None:
        rows.append(
            dict(
                entity_id="",
                period="",
                metric_id=metric_id,
                rule_id=rule_id,
                check=check,
                severity=severity,
                message=t(f"mapping.msg.{key}", lang, **fmt),
            )
        )

    metrics = catalog.metrics

    def name(mid: str) -> str:  # a metric by its name in messages; an undefined one by its id
        return metrics[mid].name(lang) if mid in metrics else mid

    for m in metrics.values():
        for field in _FIELDS:
            if m.derived and field == "source_system":
                continue
            if _PLACEHOLDER.match(str(getattr(m, field) or "")):
                field_words = t(f"mapping.value.field.{field}", lang)
                add(m.id, "", "catalog_field", "medium", "field_missing", metric=name(m.id),
                    field=field_words)  # fmt: skip
        if not m.unit_info.known and not _PLACEHOLDER.match(m.unit):
            add(m.id, "", "catalog_unit", "info", "unit_unknown", metric=name(m.id), unit=m.unit)

    # formulas parse, names exist, no cycles
    formulas = {m.id: m.formula for m in metrics.values() if m.formula}
    for mid, text in formulas.items():
        try:
            _formula.parse(text, context=f"metric {mid}", known=metrics.keys())
        except FormulaError as exc:
            add(mid, "", "catalog_formula", "critical", "formula_error", error=str(exc))
    try:
        _formula.dependency_order(formulas, known=metrics.keys())
    except FormulaError as exc:
        add("", "", "catalog_formula", "critical", "formula_error", error=str(exc))
    for rule in catalog.rules:
        for side in ("lhs", "rhs"):
            try:
                _formula.parse(getattr(rule, side), context=f"rule {rule.id} {side}", known=metrics)
            except FormulaError as exc:
                add("", rule.id, "catalog_rule", "critical", "formula_error", error=str(exc))

    # mappings point at existing metrics with compatible units
    for mp in catalog.mappings:
        ids = {"mapping": mp.id, "driver": name(mp.driver), "target": name(mp.target)}
        bad = [mid for mid in (mp.driver, mp.target) if mid not in metrics]
        for mid in bad:
            add(mid, mp.id, "catalog_mapping", "critical", "mapping_unknown", **ids, metric=mid)
        if bad:
            continue
        du, tu = metrics[mp.driver].unit, metrics[mp.target].unit
        ratio = _scale_mismatch(metrics[mp.driver].unit_info, metrics[mp.target].unit_info)
        if ratio is not None:
            factor = f"{ratio:g}"
            add(
                mp.target,
                mp.id,
                "catalog_unit",
                "medium",
                "unit_scale",
                **ids,
                du=du,
                tu=tu,
                factor=factor,
            )
        if metrics[mp.driver].tier < metrics[mp.target].tier:
            add(mp.target, mp.id, "catalog_mapping", "low", "mapping_tier", **ids)

    # tier coverage: tier 1 -> tier 2 -> tier-3 drivers
    covered = _tier2_coverage(catalog)
    for mid, inputs in covered.items():
        # a derived metric's gap is its inputs' gap, which is listed itself
        if inputs is not None and not (metrics[mid].derived and inputs):
            add(
                mid,
                "",
                "catalog_coverage",
                "low",
                "tier2_gap" if inputs else "tier2_gap_own",
                metric=name(mid),
                inputs=t("formula.sep", lang).join(map(name, inputs)),
            )
    for mid in catalog.tier(1):
        reach = _reach(catalog, mid)
        if not any(metrics[r].tier == 2 for r in reach if r in metrics):
            add(mid, "", "catalog_coverage", "medium", "tier1_gap", metric=name(mid))
    return rows


def _inputs(catalog: Catalog, metric_id: str) -> list[str]:
    m = catalog.metrics[metric_id]
    out: list[str] = []
    for expr in (m.formula, m.decomposition):
        if expr:
            with contextlib.suppress(FormulaError):  # reported by the formula check
                out += [n for n in _formula.parse(expr).inputs if n in catalog.metrics]
    return [n for n in dict.fromkeys(out) if n != metric_id]


def _reach(catalog: Catalog, metric_id: str) -> set[str]:
    seen: set[str] = set()
    todo = [metric_id]
    while todo:
        cur = todo.pop()
        for n in _inputs(catalog, cur):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def _tier2_coverage(catalog: Catalog) -> dict[str, list[str] | None]:
    """Tier-2 metric -> None when it has tier-3 drivers, else the uncovered inputs."""
    metrics = catalog.metrics
    direct = {
        mid
        for mid in catalog.tier(2)
        if any(
            metrics.get(mp.driver) and metrics[mp.driver].tier == 3
            for mp in catalog.mappings_to(mid)
        )
        or any(metrics[n].tier == 3 for n in _inputs(catalog, mid))
    }
    out: dict[str, list[str] | None] = {}

    def covered(mid: str, depth: int = 0) -> bool:
        if mid in direct:
            return True
        ins = [n for n in _inputs(catalog, mid) if metrics[n].tier <= 2]
        return bool(ins) and depth < 20 and all(covered(n, depth + 1) for n in ins)

    for mid in catalog.tier(2):
        if covered(mid):
            out[mid] = None
        else:
            ins = [n for n in _inputs(catalog, mid) if metrics[n].tier <= 2 and not covered(n)]
            out[mid] = ins
    return out


def frame(rows: list[dict]) -> pd.DataFrame:
    from perflink.mapping._common import findings_frame

    return findings_frame(rows)
