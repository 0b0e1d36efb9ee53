"""Options naming metrics, mappings, business lines or entities, checked against the company.

Not API: :func:`perflink.check.check_options` re-exports it. A module of its own so that
opening a review (:mod:`perflink.review`) can run the same check without importing the
whole up-front check, which reads inputs through the review module.
"""

from __future__ import annotations

import difflib
from typing import Any

import pandas as pd

from perflink.errors import ParamsError

__all__ = ["check_options"]


def check_options(
    params: Any, catalog: Any | None, entities: pd.DataFrame | None
) -> tuple[list[str], list[str]]:
    """Options naming metrics, mappings, business lines or entities, against the company.

    Checks ``kpi.tenure``, ``kpi.environment_changes``, ``kpi.elasticities``,
    ``forecast.metrics``, ``forecast.profit_metric``, ``anomaly.exclude_metrics`` and
    ``summary.projection_metric`` of the tasks the params run. A check needing the catalog
    (or the entities) is left out when it is None.

    Parameters
    ----------
    params : perflink.params.ReviewParams
    catalog : perflink.catalog.Catalog or None
    entities : the entities table (``entity_id``, ``business_line``) or None

    Returns
    -------
    (list of str, list of str)
        Problems with values written in the params file (key, value, what to do), and
        warnings about values left at their default that this company lacks.
    """
    if not hasattr(params, "kpi") or not hasattr(params, "redacted"):
        raise ParamsError(f"params: expected a ReviewParams, got {type(params).__name__}.")
    written = params.redacted()
    tasks = set(params.tasks)
    found: list[tuple[str, str]] = []  # (top-level block, message)
    metrics = catalog.metrics if catalog is not None else None
    ids = set(entities["entity_id"]) if entities is not None else None
    lines = set(entities["business_line"].dropna()) if entities is not None else None

    def metric(key: str, value: str, *, kind: str = "") -> None:
        if metrics is None:
            return
        spec = metrics.get(value)
        if spec is None:
            found.append(
                (key, f"{key}: {value!r} is not a metric of the catalog{_near(value, metrics)}.")
            )
        elif kind == "reported" and spec.derived:
            found.append((key, f"{key}: {value!r} is a derived metric; name a reported one."))
        elif kind == "flow" and (spec.derived or spec.aggregation != "sum"):
            found.append(
                (key, f"{key}: {value!r} is not a reported flow metric (aggregation: sum); "
                 "only those can be projected to a full year.")
            )  # fmt: skip
        elif kind == "derived" and not spec.derived:
            found.append((key, f"{key}: {value!r} has no formula; name a derived metric."))

    if "kpi" in tasks:
        kpi = params.kpi
        for i, t in enumerate(kpi.tenure):
            key = f"kpi.tenure[{i}]"
            metric(f"{key}.metric_id", t.metric_id)
            if ids is not None and t.entity_id not in ids:
                found.append(
                    (f"{key}.entity_id", f"{key}.entity_id: {t.entity_id!r} is not an entity_id "
                     f"of the entities table{_near(t.entity_id, ids)}.")
                )  # fmt: skip
        for i, ch in enumerate(kpi.environment_changes):
            key = f"kpi.environment_changes[{i}]"
            metric(f"{key}.metric_id", ch.metric_id, kind="reported")
            if lines is not None and ch.business_line not in lines:
                found.append(
                    (f"{key}.business_line", f"{key}.business_line: {ch.business_line!r} is not "
                     f"a business_line of the entities table (known: {sorted(lines)}).")
                )  # fmt: skip
            try:
                pd.Period(ch.from_period, "M")
            except (ValueError, TypeError):
                found.append(
                    (f"{key}.from_period", f"{key}.from_period: {ch.from_period!r} is not a "
                     "month; write YYYY-MM.")
                )  # fmt: skip
        if catalog is not None:
            mapping_ids = {mp.id for mp in catalog.mappings}
            for mid in kpi.elasticities:
                if mid not in mapping_ids:
                    found.append(
                        ("kpi.elasticities", f"kpi.elasticities: {mid!r} is not a mapping id of "
                         f"the catalog{_near(mid, mapping_ids)}.")
                    )  # fmt: skip
    if "forecast" in tasks:
        fopts = params.forecast.for_catalog(catalog) if catalog is not None else params.forecast
        for i, m in enumerate(fopts.metrics):
            metric(f"forecast.metrics[{i}]", m, kind="flow")
        pm = fopts.profit_metric
        if pm:
            metric("forecast.profit_metric", pm, kind="derived")
            spec = catalog.metrics.get(pm) if catalog is not None else None
            if spec is not None and spec.derived:
                flows = catalog.flows_of(pm)
                missing = sorted(set(flows) - set(fopts.metrics)) if flows is not None else []
                if flows is None or missing:
                    found.append(
                        ("forecast.profit_metric", f"forecast.profit_metric: {pm!r} = "
                         f"{spec.formula} needs {missing or 'earlier months or non-flow metrics'}; "
                         "name a derived metric built in the same month from reported flows "
                         f"that forecast.metrics {list(fopts.metrics)} all include, or add "
                         "its flows to forecast.metrics.")
                    )  # fmt: skip
    if "anomaly" in tasks:
        for i, m in enumerate(params.anomaly.exclude_metrics):
            metric(f"anomaly.exclude_metrics[{i}]", m)
    if "summary" in tasks and params.summary.projection_metric:
        metric("summary.projection_metric", params.summary.projection_metric)

    problems, warnings = [], []
    for key, msg in found:
        if _is_written(written, key):
            problems.append(msg + " Fix the value in the params file.")
        else:
            block, name = key.split(".")[0], key.split(".")[1].split("[")[0]
            warnings.append(
                f"{msg} This value comes from the catalog or a default; set "
                f"{block}.{name} in the params file to your company's own."
            )
    return problems, warnings


def _is_written(written: dict, key: str) -> bool:
    """Whether the option block of ``key`` (``kpi.tenure[0].metric_id``) is in the file."""
    block, rest = key.split(".", 1)
    name = rest.split("[")[0].split(".")[0]
    node = written.get(block)
    return isinstance(node, dict) and name in node


def _near(value: str, known: Any) -> str:
    close = difflib.get_close_matches(str(value), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
