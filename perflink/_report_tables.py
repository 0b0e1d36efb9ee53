"""Writing result tables to ``tables/<name>.csv`` and ``.parquet`` (see ``report.save_table``).

Not API: import :func:`perflink.report.save_table`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from perflink._report_format import ReportError

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
"""Allowed values of a findings table's ``severity`` column, most severe first."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_findings(df: pd.DataFrame, name: str) -> None:
    """Raise :class:`ReportError` unless ``df`` follows the findings contract."""
    cols = set(map(str, df.columns))
    missing = [c for c in ("entity_id", "period", "severity", "message") if c not in cols]
    if not cols & {"metric_id", "rule_id"}:
        missing.append("metric_id or rule_id")
    if missing:
        raise ReportError(
            f"findings table {name!r} lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, df.columns))}); every findings table needs entity_id, "
            "period, metric_id or rule_id, severity, message."
        )
    bad = ~df["severity"].isin(SEVERITIES)
    if bad.any():
        rows = [int(i) for i in bad.to_numpy().nonzero()[0][:5]]
        values = sorted({repr(v) for v in df.loc[bad, "severity"]})[:5]
        raise ReportError(
            f"findings table {name!r}: severity {', '.join(values)} at row(s) "
            f"{', '.join(str(r + 1) for r in rows)} (1-based) is not one of "
            f"{', '.join(SEVERITIES)}."
        )


def _portable(df: pd.DataFrame) -> pd.DataFrame:
    """Copy with a named index made a column and Periods turned into strings ("2026-09")."""
    if any(name is not None for name in df.index.names):
        df = df.reset_index()
    else:
        df = df.reset_index(drop=True)
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.PeriodDtype):
            out[col] = s.astype("string")
        elif s.dtype == object and s.map(lambda v: isinstance(v, pd.Period)).any():
            out[col] = s.map(lambda v: str(v) if isinstance(v, pd.Period) else v)
    out.columns = [str(c) for c in out.columns]
    return out


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary name next to ``path``, then rename it to ``path``.

    A reader never sees half a file, and a failed write leaves the old file (if any) as it was.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_table(df: pd.DataFrame, name: str, tables_dir: Path, *, findings: bool) -> None:
    """Validate and write ``tables_dir/<name>.csv`` (UTF-8 with BOM) and ``.parquet``."""
    if not isinstance(df, pd.DataFrame):
        raise ReportError(
            f"save_table({name!r}): expected a pandas DataFrame, got {type(df).__name__}."
        )
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith((".csv", ".parquet")):
        raise ReportError(
            f"save_table: table name {name!r} is not a plain file stem; use letters, digits, "
            "'_', '-' or '.' without a folder or extension (e.g. 'kpi_scores')."
        )
    if findings:
        check_findings(df, name)
    out = _portable(df)
    tables_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(
        tables_dir / f"{name}.csv",
        lambda p: out.to_csv(p, index=False, encoding="utf-8-sig", lineterminator="\n"),
    )
    atomic_write(
        tables_dir / f"{name}.parquet",
        lambda p: out.to_parquet(p, index=False, engine="pyarrow"),
    )
