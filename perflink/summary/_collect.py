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
    origin : table name -> ``"table"`` (read from ``tables_dir``), ``"computed"`` (task
        function called) or ``"missing"``.
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


def collect(review: Any, *, tables_dir: str | Path | None = None) -> SummaryInputs:
    """Gather the other tasks' tables for the summary.

    Parameters
    ----------
    review : perflink.review.Review
        The open review (params, catalog, inputs).
    tables_dir : str or Path, optional
        Folder of the run's tables; default ``review.tables_dir``. When there is none
        (JupyterLab), the task functions that exist are called instead (slower: the whole
        review is computed); when there is one, a missing table means the task did not run
        and stays missing.

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
            if df is not None:
                tables[name], origin[name] = df, "computed"
    opts = _options(review)
    scope = getattr(review.params, "scope", None)
    prev_dir = _loop.previous_tables(folder, review.quarter, opts.previous_report, scope)
    previous = {n: _read(prev_dir, n) for n in ("summary_findings", "forecast")}
    return SummaryInputs(tables, origin, folder, previous, prev_dir)


def _compute(review: Any) -> dict[str, pd.DataFrame | None]:
    """Call the task functions that exist (JupyterLab without a run's tables folder)."""
    out: dict[str, pd.DataFrame | None] = {}
    try:
        from perflink import mapping

        v = mapping.validate(review)
        out |= dict(validation_findings=v.to_frame(), driver_strength=v.drivers.to_frame())
        out["data_quality"] = v.quality.to_frame()
    except (ImportError, AttributeError):
        pass
    try:
        from perflink import kpi, scoring

        dec = kpi.decompose_review(review)
        sc = scoring.score_review(review, dec)
        out |= dict(attribution=dec.to_frame(), scorecard=sc.to_frame(), bonus=sc.bonus)
        out["kpi_findings"] = sc.findings
    except (ImportError, AttributeError):
        pass
    try:
        from perflink import forecast

        fc = forecast.forecast_panel(
            review.facts, review.targets, review.entities, review.catalog,
            quarter=review.quarter, options=review.params.forecast,
        )  # fmt: skip
        out |= dict(forecast=fc.to_frame(), forecast_deviation=fc.deviation.to_frame())
    except (ImportError, AttributeError):
        pass
    try:
        from perflink import anomaly

        an = anomaly.detect_anomalies(
            review.facts, review.entities, review.catalog, quarter=review.quarter,
            adjustments=review.adjustments, options=review.params.anomaly,
            language=review.language,
        )  # fmt: skip
        out["anomalies"] = an.to_frame()
    except (ImportError, AttributeError):
        pass
    return out


def _options(review: Any) -> SummaryOptions:
    opts = getattr(review.params, "summary", None) or SummaryOptions()
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
    if opts.amber > opts.green:
        raise ParamsError(
            f"summary.amber ({opts.amber}) is above summary.green ({opts.green}); "
            "amber must be the lower threshold."
        )
    return opts
