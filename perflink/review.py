"""The handle every task notebook opens first: ``review = perflink.open_review(params_path)``."""

from __future__ import annotations

import importlib
from functools import cached_property
from pathlib import Path
from typing import Any

from perflink.errors import ParamsError
from perflink.params import ReviewParams, load_params

__all__ = ["Review", "open_review"]


class Review:
    """Params, catalog and inputs of one review, loaded once per notebook.

    Attributes
    ----------
    params : ReviewParams
        Validated parameters (``${NAME}`` resolved in memory only).
    quarter : pandas.Period
        The review quarter, frequency ``Q``.
    language : str
        ``"zh"`` or ``"en"``: the language of every label in the report.
    tables_dir : Path or None
        Where :func:`perflink.report.save_table` writes (None outside a run).
    """

    def __init__(self, params: ReviewParams, *, language: str, tables_dir: Path | None) -> None:
        self.params = params
        self.quarter = params.period
        self.language = language
        self.tables_dir = tables_dir

    @cached_property
    def catalog(self) -> Any:
        """The metric catalog (:class:`perflink.catalog.Catalog`), loaded on first use."""
        from perflink.catalog import load_catalog

        return load_catalog(self.params.catalog_dir)

    @cached_property
    def inputs(self) -> Any:
        """The validated input tables (:class:`perflink.io.Inputs`), loaded on first use."""
        from perflink.io import load_inputs

        return load_inputs(self.params.input_paths, known_metrics=self.catalog.metrics.keys())

    def __getattr__(self, name: str) -> Any:
        # Shortcuts review.facts, review.entities, ... for the tables in ``inputs``.
        if name.startswith("_") or name not in _TABLES:
            raise AttributeError(name)
        return getattr(self.inputs, name)

    def __repr__(self) -> str:
        return f"Review(quarter={self.quarter!s}, language={self.language!r}, params={self.params.source})"


_TABLES = frozenset({"entities", "facts", "targets", "schemes", "adjustments", "bonus"})


def open_review(
    params_path: str | Path,
    *,
    language: str | None = None,
    tables_dir: str | Path | None = None,
) -> Review:
    """Open a review: load and validate params and configure report output.

    Parameters
    ----------
    params_path : str or Path
        The review's YAML parameters file.
    language : {"zh", "en"}, optional
        Overrides the ``language`` in the params file (the runner passes it).
    tables_dir : str or Path, optional
        Folder where tables saved by the notebook are written.

    Returns
    -------
    Review
        ``catalog`` and ``inputs`` (and shortcuts ``facts``, ``entities``,
        ``targets``, ``schemes``, ``adjustments``, ``bonus``) load lazily.

    Raises
    ------
    ParamsError
        If the params file is invalid or *language* is not ``zh``/``en``.
    """
    if language is not None and language not in ("zh", "en"):
        raise ParamsError(f"language: got {language!r}; expected 'zh' or 'en'.")
    overrides = {"language": language} if language is not None else None
    params = load_params(params_path, overrides=overrides)
    tdir = Path(tables_dir).resolve() if tables_dir is not None else None
    if tdir is not None:
        tdir.mkdir(parents=True, exist_ok=True)
    _configure_report(language=params.language, tables_dir=tdir)
    return Review(params, language=params.language, tables_dir=tdir)


def _configure_report(*, language: str, tables_dir: Path | None) -> None:
    try:
        report = importlib.import_module("perflink.report")
    except ModuleNotFoundError as exc:  # perflink.report not built yet: nothing to configure
        if exc.name != "perflink.report":
            raise
        return
    configure = getattr(report, "configure", None)
    if configure is not None:
        configure(language=language, tables_dir=tables_dir)
