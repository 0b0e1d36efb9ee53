"""Errors perflink raises. Every message says what to fix and where."""

from __future__ import annotations


class PerflinkError(Exception):
    """Base class: a problem the user can fix (bad input, bad parameter, bad catalog)."""


class InputError(PerflinkError):
    """An input table (file or database) breaks the data contract.

    The message names the file, row number (1-based, as a spreadsheet shows it,
    header = row 1), column and offending value.
    """


class CatalogError(PerflinkError):
    """The metric catalog (metrics, mappings, rules, schemes) is inconsistent."""


class FormulaError(CatalogError):
    """A formula does not parse, names an unknown metric, or is not allowed."""


class ParamsError(PerflinkError):
    """A review parameters file is invalid: names the key or path to fix."""


class RunError(PerflinkError):
    """A review run failed: names the notebook, the cell and the exception."""


class ReportError(PerflinkError):
    """A table, notebook or run manifest handed to the report layer is unusable.

    Also importable from :mod:`perflink.report` (and ``perflink._report_format``).
    """


class LabelError(PerflinkError):
    """A label key is missing, incomplete or used with the wrong format fields.

    Also importable from :mod:`perflink.labels`.
    """


class OutputError(PerflinkError):
    """The reports folder, or the last report in it, cannot be written or replaced.

    The message names the folder and what to do; the last good report is left as it was.
    """
