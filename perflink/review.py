"""The handle every task notebook opens first: ``review = perflink.open_review(params_path)``.

A scoped review (``scope: EAST`` in the params, or ``perflink review --scope EAST``) filters
the inputs once, here, so every task computes on that entity's subtree only and no other
entity's id or name can reach the report: the scope entity becomes the root (``parent_id``
empty), facts/targets/adjustments/bonus keep the subtree's rows, and entity-specific scheme
overrides outside it are dropped (centre-type defaults stay).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from perflink.errors import ParamsError
from perflink.params import ReviewParams, load_params

__all__ = ["Review", "open_review", "scope_inputs", "subtree"]

#: Entity kinds a review can be scoped to (a department has no subtree to review).
SCOPE_KINDS = ("group", "subsidiary")


class Review:
    """Params, catalog and inputs of one review, loaded once per notebook.

    Attributes
    ----------
    params : ReviewParams
        Validated parameters (``${NAME}`` resolved in memory only). In a scoped review
        (``params.scope`` set) options naming entities outside the scope are dropped and
        ``inputs`` hold the scope entity's subtree only (see :func:`scope_inputs`).
    quarter : pandas.Period
        The review quarter, frequency ``Q``.
    language : str
        ``"zh"`` or ``"en"``: the language of every label in the report.
    tables_dir : Path or None
        Where :func:`perflink.report.save_table` writes (None outside a run).
    snapshot_dir : Path or None
        The validated inputs ``perflink review`` wrote for this run; None: the input files
        are read (and checked) on first use.
    """

    def __init__(
        self,
        params: ReviewParams,
        *,
        language: str,
        tables_dir: Path | None,
        snapshot_dir: Path | None = None,
    ) -> None:
        self.params = params
        self.snapshot_dir = snapshot_dir
        #: The ids of the scope's subtree (None: the whole group).
        self.scope_ids: tuple[str, ...] | None = None
        if params.scope is not None:  # the entities alone are enough to check the scope
            if snapshot_dir is not None:
                from perflink._review_inputs import read_snapshot_entities

                entities = read_snapshot_entities(snapshot_dir, params)
            else:
                from perflink.io import read_table

                entities = read_table(
                    params.input_paths["entities"], "entities", encoding=params.input_encoding
                )
            self.scope_ids = tuple(subtree(entities, params.scope))
            params = _scope_params(params, entities, list(self.scope_ids))
        self.params = params
        self.quarter = params.period
        self.language = language
        self.tables_dir = tables_dir

    @cached_property
    def catalog(self) -> Any:
        """The metric catalog (:class:`perflink.catalog.Catalog`), loaded on first use.

        Opened without a run's snapshot (JupyterLab, a script), the options naming metrics
        are checked against it here, as ``perflink review`` checks them before any notebook.

        Raises
        ------
        ParamsError
            If an option written in the params file names a metric the catalog lacks.
        """
        from perflink.catalog import load_catalog

        catalog = load_catalog(self.params.catalog_dir)
        if self.snapshot_dir is None:
            from perflink._options_check import check_options

            problems, _ = check_options(self.params, catalog, None)
            if problems:
                raise ParamsError(
                    f"{self.params.source}: the options do not fit the catalog "
                    f"{self.params.catalog_dir}:\n  " + "\n  ".join(problems)
                )
        return catalog

    @cached_property
    def inputs(self) -> Any:
        """The validated input tables (:class:`perflink.io.Inputs`), loaded on first use.

        A scoped review of a run reads the facts and targets of its subtree only from the
        run's snapshot: the whole group's, kept beside them, cost every kernel of a
        subsidiary's run the group's memory (the group's own totals, shown with
        ``scope_group_totals``, read :attr:`unscoped_inputs` when asked for).
        """
        if self.params.scope is None:
            return self.unscoped_inputs
        if self.snapshot_dir is not None and "_loaded" not in self.__dict__:
            return self._snapshot_rows(metrics=None)
        return scope_inputs(self.unscoped_inputs, self.params.scope)

    @property
    def unscoped_inputs(self) -> Any:
        """All input tables, before any scope filter. Task code reads :attr:`inputs`; only the
        group totals a scoped review may show (``scope_group_totals``) are computed from this.

        Facts after the review quarter are left out (see :attr:`input_notes`)."""
        return self._loaded[0]

    @property
    def input_notes(self) -> list[dict[str, Any]]:
        """Notes about the inputs: rows left out, extra columns, the loaders' warnings.

        Each a dict with ``kind`` and ``message`` (see :func:`perflink._review_inputs.load`).
        """
        return self._loaded[1]

    @cached_property
    def _loaded(self) -> tuple[Any, list[dict[str, Any]]]:
        from perflink import _review_inputs

        if self.snapshot_dir is not None:
            return _review_inputs.read_snapshot(self.snapshot_dir, self.params)
        return _review_inputs.load(self.params, self.catalog)

    def fact_lineage(self, entity_ids: Iterable[str]) -> pd.DataFrame:
        """The facts of ``entity_ids`` with every input column, ``source_ref`` included.

        A review of a run reads its facts from the run's snapshot without the columns that
        name each fact's source record (:data:`perflink._review_inputs.LINEAGE_COLUMNS`: one
        string per fact, 170 MB at 10,000 units in every kernel); this reads them for the
        entities a finding names. A review without a snapshot has them in :attr:`facts`.
        """
        ids = {str(e) for e in entity_ids}
        if self.snapshot_dir is None:
            facts = self.facts
            return facts[facts["entity_id"].isin(ids)]
        from perflink import _review_inputs

        return _review_inputs.read_lineage(self.snapshot_dir, sorted(ids))

    def inputs_of(self, metrics: Iterable[str]) -> Any:
        """The inputs (:attr:`inputs`) with the facts and targets of ``metrics`` only.

        For a task that reads a few metrics (the forecast's flows, their drivers and the
        profit): a review of a run that has not loaded its inputs reads just those rows from
        the run's snapshot, which at 10,000 units kept 0.36 GB of other metrics' facts and
        targets out of the kernel; otherwise the loaded tables' rows, filtered. Either way
        the same rows, in the same order, indexed 0..n-1; not kept by the review.
        """
        from perflink import _review_inputs

        ids = {str(m) for m in metrics}
        loaded = "inputs" in self.__dict__ or "_loaded" in self.__dict__
        if self.snapshot_dir is None or loaded:
            tables = {k: getattr(self.inputs, k) for k in _review_inputs.METRIC_TABLES}
            rows = {k: _rows(t, t["metric_id"].isin(ids)) for k, t in tables.items()}
            return replace(self.inputs, **rows)
        return self._snapshot_rows(metrics=ids)

    def _snapshot_rows(self, *, metrics: set[str] | None) -> Any:
        """The inputs from the run's snapshot, the facts and targets of ``metrics`` (None:
        all) and of the scope's subtree only, scoped as :attr:`inputs` is."""
        from perflink import _review_inputs
        from perflink.execution import release_memory

        inputs, _notes = _review_inputs.read_snapshot(
            self.snapshot_dir, self.params, metrics=metrics, entity_ids=self.scope_ids
        )
        release_memory()  # what decoding the rows left behind: 0.08 GB at 10,000 units
        if self.params.scope is not None:
            return scope_inputs(inputs, self.params.scope)
        return inputs

    def release_inputs(self) -> bool:
        """Give back the memory of the input tables, when they can be read again as they were.

        A review of a run (``snapshot_dir`` set by ``perflink review``) reads its inputs from
        the run's snapshot, which stays as it is until the run ends: after this call a use of
        :attr:`inputs` (or ``review.facts``, ``review.entities``, ...) reads the same tables
        from it again. A notebook calls it once its task has computed what it shows, before
        the long last steps (charts, tables, workbooks) that never read the inputs: at 2,000
        units a task kernel kept 140 MB of facts and targets through them (700 MB at 10,000),
        while the next notebook was computing beside it.

        A review without a snapshot (JupyterLab, a script) keeps its inputs: reading them
        again would check the input files again.

        Returns
        -------
        bool
            True when the tables were let go.
        """
        if self.snapshot_dir is None:
            return False
        for cached in ("inputs", "_loaded"):
            self.__dict__.pop(cached, None)
        from perflink.execution import release_memory

        release_memory()
        return True

    @cached_property
    def executor(self) -> Any:
        """Where per-series work runs (:class:`perflink.execution.Executor`), from the params'
        ``executor:`` block: local processes by default, or the Dask cluster it names
        (connected on first use; messages show the address as written in the params)."""
        from perflink.execution import get_executor

        written = self.params.redacted().get("executor")
        shown = written.get("address") if isinstance(written, dict) else None
        return get_executor(self.params.executor, shown=str(shown) if shown else None)

    @property
    def scope(self) -> str | None:
        """The entity id the review is scoped to, or None for the whole group."""
        return self.params.scope

    @property
    def root_id(self) -> str:
        """Id of the top entity of the review: the group, or the scope entity."""
        roots = self.entities.loc[self.entities["parent_id"].isna(), "entity_id"]
        if len(roots) != 1:
            raise ParamsError(
                f"entities: expected one top entity (empty parent_id), found {len(roots)}; "
                "fix parent_id in the entities table."
            )
        return str(roots.iloc[0])

    def __getattr__(self, name: str) -> Any:
        # Shortcuts review.facts, review.entities, ... for the tables in ``inputs``.
        if name.startswith("_") or name not in _TABLES:
            raise AttributeError(name)
        return getattr(self.inputs, name)

    def __repr__(self) -> str:
        scope = f", scope={self.scope!r}" if self.scope else ""
        return (
            f"Review(quarter={self.quarter!s}, language={self.language!r}{scope}, "
            f"params={self.params.source})"
        )


_TABLES = frozenset({"entities", "facts", "targets", "schemes", "adjustments", "bonus"})


def open_review(
    params_path: str | Path,
    *,
    language: str | None = None,
    scope: str | None = None,
    tables_dir: str | Path | None = None,
    quarter: str | None = None,
    snapshot_dir: str | Path | None = None,
) -> Review:
    """Open a review: load and validate params and configure report output.

    Parameters
    ----------
    params_path : str or Path
        The review's YAML parameters file.
    language : {"zh", "en"}, optional
        Overrides the ``language`` in the params file (the runner passes it).
    scope : str, optional
        Entity id (a subsidiary, or the group) that overrides ``scope`` in the params
        file: the review then holds only that entity's subtree (see
        :func:`scope_inputs`). None or ``""`` keeps the params' scope.
    tables_dir : str or Path, optional
        Folder where tables saved by the notebook are written.
    quarter : str, optional
        Review quarter, e.g. ``"2026Q2"``, that overrides ``quarter`` in the params file.
        None or ``""`` keeps the params' quarter.
    snapshot_dir : str or Path, optional
        Validated inputs written by ``perflink review`` for this run (read in well under
        a second). None or ``""``: the input files are read and checked on first use.

    Returns
    -------
    Review
        ``catalog`` and ``inputs`` (and shortcuts ``facts``, ``entities``,
        ``targets``, ``schemes``, ``adjustments``, ``bonus``) load lazily. Facts after the
        review quarter are left out (``review.input_notes`` says how many).

    Raises
    ------
    ParamsError
        If the params file is invalid, *language* is not ``zh``/``en``, *quarter* is not
        a quarter, or the scope is not a subsidiary or group id of the entities table
        (close matches are named). When the inputs load: the facts hold no month of the
        quarter (the message names the months they hold).
    InputError
        When the inputs load: an input breaks the data contract.
    """
    if language is not None and language not in ("zh", "en"):
        raise ParamsError(f"language: got {language!r}; expected 'zh' or 'en'.")
    overrides: dict[str, Any] = {}
    if language is not None:
        overrides["language"] = language
    if scope:
        overrides["scope"] = scope
    if quarter:
        overrides["quarter"] = quarter
    params = load_params(_params_file(params_path), overrides=overrides or None)
    tdir = Path(tables_dir).resolve() if tables_dir is not None else None
    if tdir is not None:
        tdir.mkdir(parents=True, exist_ok=True)
    _configure_report(language=params.language, tables_dir=tdir)
    snap = Path(snapshot_dir) if snapshot_dir else None
    return Review(params, language=params.language, tables_dir=tdir, snapshot_dir=snap)


def _params_file(path: str | Path) -> Path:
    """``path``, or the same relative path read from ``notebooks/`` when it is missing here.

    A notebook's default ``params_path`` is relative to the notebooks folder, where
    JupyterLab and ``perflink review`` run it; papermill run from the project root
    (``papermill notebooks/01_....ipynb out.ipynb``) runs it from there instead.
    """
    given = Path(path).expanduser()
    if given.is_absolute() or given.is_file():
        return given
    from_notebooks = Path.cwd() / "notebooks" / given
    return from_notebooks if from_notebooks.is_file() else given


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


def scope_inputs(inputs: Any, entity_id: str) -> Any:
    """Restrict review inputs to one entity's subtree, re-rooted at that entity.

    Parameters
    ----------
    inputs : perflink.io.Inputs
        The validated inputs of the whole group.
    entity_id : str
        A subsidiary (or the group) id of ``inputs.entities``.

    Returns
    -------
    perflink.io.Inputs
        ``entities``: the entity and its descendants, the entity's ``parent_id`` emptied
        (it is the top); ``facts``, ``targets``, ``adjustments``, ``bonus``: rows of those
        entities; ``schemes``: centre-type defaults (``entity_id`` empty) and overrides for
        those entities. Columns, dtypes and ``attrs`` are kept; the index is 0..n-1.

    Raises
    ------
    ParamsError
        If *entity_id* is not in the entities table (close matches are named) or is a
        department.
    """
    keep = subtree(inputs.entities, entity_id)
    ent = _rows(inputs.entities, inputs.entities["entity_id"].isin(keep))
    ent.loc[ent["entity_id"] == entity_id, "parent_id"] = None
    tables = {"entities": ent}
    for kind in ("facts", "targets", "adjustments", "bonus"):
        df = getattr(inputs, kind)
        tables[kind] = _rows(df, df["entity_id"].isin(keep))
    sch = inputs.schemes
    tables["schemes"] = _rows(sch, sch["entity_id"].isna() | sch["entity_id"].isin(keep))
    return replace(inputs, **tables)


def subtree(entities: pd.DataFrame, entity_id: str) -> list[str]:
    """Ids of *entity_id* and all its descendants (in table order), after checking the scope.

    Raises
    ------
    ParamsError
        Unknown id (with close matches) or a department id.
    """
    ids = entities["entity_id"].astype(str).tolist()
    source = entities.attrs.get("source", "the entities table")
    if entity_id not in ids:
        subs = entities.loc[entities["kind"].isin(SCOPE_KINDS), "entity_id"].astype(str).tolist()
        close = difflib.get_close_matches(entity_id, subs, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ParamsError(
            f"scope: {entity_id!r} is not an entity_id in {source}.{hint} "
            f"Use a subsidiary or group id, e.g. {', '.join(subs[:6])}."
        )
    kind = entities.loc[entities["entity_id"] == entity_id, "kind"].iloc[0]
    if kind not in SCOPE_KINDS:
        parent = entities.loc[entities["entity_id"] == entity_id, "parent_id"].iloc[0]
        raise ParamsError(
            f"scope: {entity_id!r} is a {kind}; a review is scoped to a subsidiary or the "
            f"group (e.g. its parent {parent!r})."
        )
    children: dict[str, list[str]] = {}
    for e, p in zip(ids, entities["parent_id"], strict=True):
        if isinstance(p, str):
            children.setdefault(p, []).append(e)
    found, stack = {entity_id}, [entity_id]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return [e for e in ids if e in found]


def _rows(df: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    out = df.loc[mask.to_numpy(dtype=bool)].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


def _scope_params(params: ReviewParams, entities: pd.DataFrame, keep: list[str]) -> ReviewParams:
    """Params of a scoped review: options naming entities outside *keep* are dropped.

    Tenure targets of other entities go, from the model and from the written form used in
    the manifest. Environment changes of business lines the subtree does not have go from
    the model only (they would not apply; a business line names no entity).
    """
    inside = set(keep)
    lines = set(entities.loc[entities["entity_id"].isin(inside), "business_line"].dropna())
    kpi = params.kpi.model_copy(
        update={
            "tenure": tuple(t for t in params.kpi.tenure if t.entity_id in inside),
            "environment_changes": tuple(
                c for c in params.kpi.environment_changes if c.business_line in lines
            ),
        }
    )
    scoped = params.model_copy(update={"kpi": kpi})
    raw = scoped.redacted()
    tenure = raw.get("kpi", {}).get("tenure") if isinstance(raw.get("kpi"), dict) else None
    if isinstance(tenure, list):
        raw["kpi"]["tenure"] = [
            t for t in tenure if not isinstance(t, dict) or t.get("entity_id") in inside
        ]
    scoped._raw = raw
    return scoped
