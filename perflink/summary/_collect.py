"""Gathering the task tables for the summary (not API; see perflink.summary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from perflink._report_tables import SEVERITIES
from perflink.errors import InputError, ParamsError
from perflink.options import SummaryOptions
from perflink.summary import _loop as _loop

TABLES: dict[str, str] = {
    "validation_findings": "mapping",
    "driver_strength": "mapping",
    "data_quality": "mapping",
    "attribution": "kpi",
    "scorecard": "kpi",
    "bonus": "kpi",
    "kpi_findings": "kpi",
    "forecast": "forecast",
    "forecast_deviation": "forecast",
    "anomalies": "anomaly",
}
"""Tables the summary reads, and the task that writes each."""

ACTIONS: tuple[str, ...] = (
    "collections", "budget", "caliber", "weak_driver", "scheme", "bonus", "data_quality",
    "escalate",
)  # fmt: skip
"""Suggested-action rules (``summary.actions``)."""


@dataclass(frozen=True)
class SummaryInputs:
    """The task tables the summary works from.

    Attributes
    ----------
    tables : table name -> DataFrame, or None when missing (see :data:`TABLES`).
    origin : table name -> ``"table"`` (read from ``tables_dir``), ``"computed"`` (the
        task's ``run`` called) or ``"missing"``.
    tables_dir : where the tables were read from (None in JupyterLab).
    previous : last quarter's ``summary_findings`` and ``forecast`` (or None each).
    previous_dir : last quarter's tables folder, or None if there is none.
    """

    tables: dict[str, pd.DataFrame | None] = field(repr=False)
    origin: dict[str, str]
    tables_dir: Path | None = None
    previous: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)
    previous_dir: Path | None = None

    def get(self, name: str) -> pd.DataFrame | None:
        """The table ``name`` or None."""
        return self.tables.get(name)

    @property
    def missing_tasks(self) -> list[str]:
        """Tasks none of whose tables are available, in run order."""
        have = {TABLES[n] for n, o in self.origin.items() if o != "missing"}
        return [t for t in dict.fromkeys(TABLES.values()) if t not in have]


def _read(folder: Path | None, name: str) -> pd.DataFrame | None:
    if folder is None:
        return None
    path = folder / f"{name}.parquet"
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(
            f"table {path} cannot be read ({type(exc).__name__}: {exc}); re-run the task that "
            "writes it or delete the file."
        ) from None


def collect(
    review: Any,
    *,
    tables_dir: str | Path | None = None,
    options: SummaryOptions | None = None,
) -> SummaryInputs:
    """Gather the other tasks' tables for the summary.

    Parameters
    ----------
    review : perflink.review.Review
        The open review (params, catalog, inputs).
    tables_dir : str or Path, optional
        Folder of the run's tables; default ``review.tables_dir``. When there is none
        (JupyterLab), every task is run through its entry point (``perflink.<task>.run``;
        slower: the whole review is computed, and an error in a task stops the summary);
        when there is one, a missing table means the task did not run and stays missing.
    options : SummaryOptions, optional
        Overrides the review's ``summary:`` params block (``previous_report`` is read).

    Returns
    -------
    SummaryInputs
        Also holds last quarter's ``summary_findings`` / ``forecast`` if found (see
        ``summary.previous_report``).

    Raises
    ------
    InputError
        If ``tables_dir`` is not a folder, a table is unreadable, or
        ``summary.previous_report`` does not exist.
    """
    opts = _options(review, options)  # checked before a long compute, not after
    folder = Path(tables_dir) if tables_dir is not None else getattr(review, "tables_dir", None)
    if folder is not None and not Path(folder).is_dir():
        raise InputError(
            f"summary tables_dir {folder} is not a folder; pass the run's tables folder or None."
        )
    folder = Path(folder) if folder is not None else None
    tables = {name: _read(folder, name) for name in TABLES}
    origin = {n: ("table" if d is not None else "missing") for n, d in tables.items()}
    if folder is None:
        for name, df in _compute(review).items():
            tables[name], origin[name] = df, "computed"
    scope = getattr(review.params, "scope", None)
    prev_dir = _loop.previous_tables(folder, review.quarter, opts.previous_report, scope)
    previous = {n: _read(prev_dir, n) for n in ("summary_findings", "forecast")}
    return SummaryInputs(tables, origin, folder, previous, prev_dir)


def _compute(review: Any) -> dict[str, pd.DataFrame]:
    """Run every task through its entry point (JupyterLab without a run's tables folder).

    Nothing is caught here: an error inside a task is a bug or a bad input to report, not
    a task to leave out of the summary.
    """
    from perflink import anomaly, forecast, kpi, mapping, scoring

    v = mapping.run(review)
    dec = kpi.run(review)
    sc = scoring.run(review, decomposition=dec)
    fc = forecast.run(review)
    an = anomaly.run(review)
    return {
        "validation_findings": v.to_frame(),
        "driver_strength": v.drivers.to_frame(),
        "data_quality": v.quality.to_frame(),
        "attribution": dec.to_frame(),
        "scorecard": sc.to_frame(),
        "bonus": sc.bonus,
        "kpi_findings": sc.findings,
        "forecast": fc.to_frame(),
        "forecast_deviation": fc.deviation.to_frame(),
        "anomalies": an.to_frame(),
    }


def _options(review: Any, options: SummaryOptions | None = None) -> SummaryOptions:
    """``options``, else the review's ``summary:`` block, checked, with the defaults the
    review's catalog gives (:meth:`SummaryOptions.for_catalog`: the projection metric)."""
    opts = options or getattr(review.params, "summary", None) or SummaryOptions()
    catalog = getattr(review, "catalog", None)
    if catalog is not None:
        opts = for_catalog(opts, catalog)
    unknown = [a for a in opts.actions if a not in ACTIONS]
    if unknown:
        raise ParamsError(
            f"summary.actions: unknown rule(s) {', '.join(map(repr, unknown))}; "
            f"use some of {', '.join(ACTIONS)}."
        )
    if opts.min_severity not in SEVERITIES:
        raise ParamsError(
            f"summary.min_severity: {opts.min_severity!r} is not one of {', '.join(SEVERITIES)}."
        )
    return opts


def for_catalog(opts: SummaryOptions, catalog: Any) -> SummaryOptions:
    """``opts`` with the catalog-derived defaults filled in, its metric option checked.

    ``projection_metric`` unset becomes the catalog's profit metric, else its sales metric,
    else ``""`` (none: the chain ends at the score and says why).

    Raises
    ------
    ParamsError
        If ``summary.projection_metric`` names a metric the catalog does not have.
    """
    opts = opts.for_catalog(catalog)
    pm = opts.projection_metric
    if pm and pm not in catalog.metrics:
        raise ParamsError(
            f"summary.projection_metric: {pm!r} is not a metric of the catalog; name one of "
            "its metrics, or leave it out to use the metric with role profit (else sales)."
        )
    return opts
