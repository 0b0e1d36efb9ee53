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

from perflink._options_check import check_options
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
