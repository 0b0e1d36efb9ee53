"""Writing result tables to ``tables/<name>.csv`` and ``.parquet`` (see ``report.save_table``).

Not API: import :func:`perflink.report.save_table`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from perflink.common import SEVERITIES, check_findings
from perflink.errors import ReportError
from perflink.execution import release_memory

log = logging.getLogger(__name__)

__all__ = [
    "CSV_MAX_ROWS",
    "SEVERITIES",
    "atomic_write",
    "check_findings",
    "csv_safe",
    "csv_safe_frame",
    "write_table",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# OWASP "CSV injection": a spreadsheet reads a cell starting with one of these as a formula
# (=, +, -, @) or skips a leading tab / carriage return and reads what follows.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Text that is a plain decimal number ("-12.5", "+3e2") is read as that number, never as a
# formula, so it is left as it is (a negative amount rendered as text stays a number).
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_safe(value: object) -> object:
    """``value`` as a CSV cell that no spreadsheet runs as a formula (OWASP CSV injection).

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
    apostrophe (``'=HYPERLINK(...)``), which Excel and LibreOffice show as text. A carriage
    return inside text becomes a line feed: the CSV writer quotes a cell holding a line feed
    but not one holding a lone CR, which a spreadsheet would take as the end of the row (and
    read what follows as a new cell, formula included). Numbers, missing values and text that
    is a plain decimal number (``-12.5``) are returned as they are. Used for every CSV cell
    perflink writes; Parquet keeps the raw text (typed data, not opened as formulas) and
    workbooks write text as string cells (:func:`perflink._report_xlsx.write_sheet`).
    """
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


def csv_safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with :func:`csv_safe` applied to every text cell and column name.

    Only columns that can hold text (object, string or categorical dtype) are looked at, so
    numeric columns keep their dtype; an object column mixing numbers and text escapes only
    its text cells. Returns ``df`` itself when nothing needs escaping.
    """
    out = df
    for i in range(df.shape[1]):
        s = df.iloc[:, i]
        if isinstance(s.dtype, pd.StringDtype):  # vectorised look first: most columns pass
            starts = s.str.startswith(_FORMULA_START, na=False)
            if not (starts.any() or s.str.contains("\r", regex=False, na=False).any()):
                continue
        elif not (s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype)):
            continue
        values = s.astype(object).to_numpy()
        safe = [csv_safe(v) for v in values]
        if any(a is not b for a, b in zip(safe, values, strict=True)):
            out = df.copy() if out is df else out
            out.isetitem(i, pd.Series(safe, index=s.index, dtype=object))
    names = [csv_safe(c) for c in df.columns]
    return out if names == list(df.columns) else out.set_axis(names, axis=1)


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
    The writer's buffers go back to the system after it (:func:`perflink.execution.release_memory`):
    the Parquet and CSV buffers of a 2,000-unit attribution table stayed in the KPI kernel
    as 90 MB for the rest of its run.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        release_memory()


#: A table with more rows than this is written as Parquet only: a CSV of hundreds of
#: thousands of rows is more than a spreadsheet reader uses (and was 48 MB of a 110 MB report
#: at 2,000 units, benchmarks/scale_bench.py); pandas, DuckDB or Excel's Power Query open the
#: Parquet file.
CSV_MAX_ROWS = 200_000


def write_table(df: pd.DataFrame, name: str, tables_dir: Path, *, findings: bool) -> None:
    """Validate and write ``tables_dir/<name>.parquet`` and, up to :data:`CSV_MAX_ROWS` rows,
    ``tables_dir/<name>.csv`` (UTF-8 with BOM).

    CSV text cells go through :func:`csv_safe` (no formula when opened in a spreadsheet);
    the Parquet file keeps the text as it is.
    """
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
    # Finance opens the CSV in Excel: text cells are neutralised there; the Parquet copy is
    # typed data that the summary reads back, so it keeps the raw text.
    csv_path = tables_dir / f"{name}.csv"
    if len(out) <= CSV_MAX_ROWS:
        csv_out = csv_safe_frame(out)
        atomic_write(
            csv_path,
            lambda p: csv_out.to_csv(p, index=False, encoding="utf-8-sig", lineterminator="\n"),
        )
    else:
        csv_path.unlink(missing_ok=True)  # an older, smaller run's CSV would be stale
        log.info(
            "%s: %s rows, written as Parquet only (CSV up to %s rows)",
            name, f"{len(out):,}", f"{CSV_MAX_ROWS:,}",
        )  # fmt: skip
    atomic_write(
        tables_dir / f"{name}.parquet",
        lambda p: out.to_parquet(p, index=False, engine="pyarrow"),
    )
