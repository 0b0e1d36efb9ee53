"""Check a review's params, catalog and inputs against each other, listing every problem.

``perflink check --params P.yaml`` and ``perflink review`` (before any notebook starts) run
the same :func:`run_checks`. Each independent check runs and its problems are collected:
the params, the catalog, each input table, the cross-references (metric ids in facts,
targets, schemes and adjustments against the catalog; entity ids in facts, targets, bonus,
adjustments and schemes against the entities; options naming metrics, mappings, business
lines or entities against the catalog and the entities), the review quarter's coverage by
the facts and the scope. A check whose table did not load is skipped, and the result says so.

Options are checked as written in the params file and, where a default comes from the
catalog (the forecast's flows and profit metric), as resolved from it; a value the params file
did not write that the company does not have is a *warning*, not a problem.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from perflink.errors import CatalogError, InputError, ParamsError, PerflinkError

__all__ = ["CheckResult", "Problem", "check_options", "check_review", "run_checks"]


@dataclass(frozen=True)
class Problem:
    """One problem found by a check.

    Attributes
    ----------
    where : what was checked: ``params``, ``catalog``, ``options``, an input table
        (``entities``, ``facts``, ...), ``coverage`` or ``scope``.
    message : what is wrong and what to do, naming file, row, column, key and value (one
        problem may list several lines, e.g. every bad row of one table).
    error : the :class:`~perflink.errors.PerflinkError` subclass a single problem raises.
    """

    where: str
    message: str
    error: type[PerflinkError] = InputError


@dataclass(frozen=True, eq=False)
class CheckResult:
    """What :func:`run_checks` found.

    Attributes
    ----------
    problems : every problem, in checking order (empty = all checks passed).
    skipped : checks that could not run because what they need did not load.
    warnings : values left at their default that this catalog or these entities lack.
    params : the loaded params (None when the params file itself is bad).
    catalog : the loaded catalog (None when it did not load).
    inputs : the loaded inputs (:class:`perflink.io.Inputs`, facts after the quarter left
        out), None when any input table did not load.
    notes : notes about the inputs for the manifest (see :func:`perflink._review_inputs.load`).
    seconds : time the checks took.
    """

    problems: tuple[Problem, ...]
    skipped: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    params: Any = None
    catalog: Any = None
    inputs: Any = None
    notes: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no check found a problem."""
        return not self.problems

    def message(self) -> str:
        """Every problem, skipped check and warning as text (what ``perflink check`` prints)."""
        where = self.params.source if self.params is not None else "the review"
        if self.ok:
            head = f"OK: {where}, its catalog and inputs pass every check ({self.seconds:.1f} s)."
            return "\n".join([head, *(f"warning: {w}" for w in self.warnings)])
        parts = sorted({p.where for p in self.problems}, key=_ORDER.index)
        lines = [
            f"{len(self.problems)} problem(s) found in {', '.join(parts)} "
            f"({where}; {self.seconds:.1f} s). Fix them all, then check again:"
        ]
        for i, p in enumerate(self.problems, start=1):
            lines.append(f"\n[{i}] {p.where}: {p.message}")
        if self.skipped:
            lines.append("\nnot checked:")
            lines += [f"  - {s}" for s in self.skipped]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def raise_if_problems(self) -> None:
        """Raise the problems as one error (nothing when there are none).

        One problem raises its own class with its own message; several raise the class
        they share, else :class:`~perflink.errors.PerflinkError`, with :meth:`message`.
        """
        if self.ok:
            return
        if len(self.problems) == 1:
            raise self.problems[0].error(self.problems[0].message)
        kinds = {p.error for p in self.problems}
        raise (kinds.pop() if len(kinds) == 1 else PerflinkError)(self.message())

    def to_frame(self) -> pd.DataFrame:
        """One row per problem: ``where``, ``message``."""
        return pd.DataFrame(
            {
                "where": [p.where for p in self.problems],
                "message": [p.message for p in self.problems],
            }
        )

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.message())}</pre>"


_ORDER = ["params", "catalog", "entities", "facts", "targets", "schemes", "adjustments", "bonus"]
_ORDER += ["coverage", "options", "scope"]


def check_review(
    params_path: str | Path, *, overrides: Mapping[str, Any] | None = None
) -> CheckResult:
    """Check a review params file, its catalog and its inputs, collecting every problem.

    Parameters
    ----------
    params_path : str or Path
        The review parameters YAML.
    overrides : Mapping, optional
        Values replacing those of the file (as in :func:`perflink.params.load_params`).

    Returns
    -------
    CheckResult
        ``.ok`` when nothing is wrong; ``.message()`` lists every problem. When the params
        file itself is bad, its problems are the result and nothing else is checked.

    Raises
    ------
    ParamsError
        Never for a bad file (that is a problem in the result); only if ``params_path`` is
        not a path.
    """
    from perflink.params import load_params

    if not isinstance(params_path, str | Path):
        raise ParamsError(f"params_path: expected a path to a YAML file, got {params_path!r}.")
    t0 = time.perf_counter()
    try:
        params = load_params(params_path, overrides=overrides)
    except ParamsError as exc:
        return CheckResult(
            (Problem("params", str(exc), ParamsError),),
            skipped=("the catalog and inputs, which the params name",),
            seconds=time.perf_counter() - t0,
        )
    return run_checks(params, t0=t0)


def run_checks(params: Any, *, t0: float | None = None) -> CheckResult:
    """Check the catalog, the inputs and the options of loaded ``params``; collect problems.

    Parameters
    ----------
    params : perflink.params.ReviewParams
        Validated params.
    t0 : float, optional
        ``time.perf_counter()`` when checking began (default: now).

    Returns
    -------
    CheckResult
        With the loaded catalog and inputs, for the caller to use when ``.ok``.
    """
    from perflink import _review_inputs
    from perflink.catalog import load_catalog, metric_ids

    t0 = time.perf_counter() if t0 is None else t0
    problems: list[Problem] = []
    skipped: list[str] = []
    warnings: list[str] = []
    catalog = None
    ids = None
    try:
        catalog = load_catalog(params.catalog_dir)
    except CatalogError as exc:
        problems.append(Problem("catalog", str(exc), CatalogError))
        # A bad mapping or rule need not hide the inputs' unknown metric ids.
        ids = metric_ids(params.catalog_dir)
        what = "options naming metrics were" if ids is not None else (
            "metric ids in facts, targets, schemes and adjustments, and options naming "
            "metrics, were"
        )  # fmt: skip
        skipped.append(f"{what} not checked against the catalog, which did not load.")
    found = _review_inputs.collect(params, catalog, known_metrics=ids)
    problems += [Problem(where, msg, err) for where, msg, err in found.problems]
    skipped += found.skipped
    entities = found.entities
    if catalog is not None or entities is not None:
        bad, warned = check_options(params, catalog, entities)
        problems += [Problem("options", m, ParamsError) for m in bad]
        warnings += warned
    if params.scope is not None and entities is not None:
        from perflink.review import subtree

        try:
            subtree(entities, params.scope)
        except ParamsError as exc:
            problems.append(Problem("scope", str(exc), ParamsError))
    return CheckResult(
        tuple(problems),
        skipped=tuple(skipped),
        warnings=tuple(warnings),
        params=params,
        catalog=catalog,
        inputs=found.inputs if not problems else None,
        notes=found.notes,
        seconds=time.perf_counter() - t0,
    )


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
    import difflib

    close = difflib.get_close_matches(str(value), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
