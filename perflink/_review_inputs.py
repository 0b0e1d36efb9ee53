"""The inputs of one review, read and checked once (private to :mod:`perflink.review`).

``perflink review`` calls :func:`load` before any notebook starts, so a bad input stops the
run within seconds with one message, and writes what it read to a *snapshot* (Parquet files
of the six validated tables in the run's temporary folder). Each notebook's
``open_review(..., snapshot_dir=...)`` then reads the snapshot (well under a second) instead
of reading and validating the raw files again. In JupyterLab, without a snapshot,
:class:`perflink.review.Review` calls :func:`load` itself, so both give the same tables.

What :func:`load` adds to :func:`perflink.io.load_inputs`, for one review quarter:

- periods more than ``inputs_window_years`` (params) before or after the quarter are
  refused, naming file, row and value (a typo like 2206-08 for 2026-08);
- the quarter must be covered by the facts (else :class:`ParamsError` naming the quarter
  and the months the data holds);
- facts after the quarter are left out of the review (a review of 2026Q3 is computed from
  data up to 2026-09), and a note says how many rows and which months;
- warnings of the loaders (logger ``perflink.io``: extra columns, encoding guesses) are
  collected as notes, for the run's manifest and index page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from perflink.errors import InputError, ParamsError, PerflinkError

__all__ = [
    "LINEAGE_COLUMNS",
    "SNAPSHOT_FILE",
    "Collected",
    "collect",
    "load",
    "read_lineage",
    "read_snapshot",
    "read_snapshot_entities",
    "write_snapshot",
]

log = logging.getLogger("perflink.io")

#: The description of a snapshot folder (quarter, notes); the tables are ``<kind>.parquet``.
SNAPSHOT_FILE = "snapshot.json"
_SNAPSHOT_VERSION = 1
#: Columns of the facts that name the source record of each figure. A run's kernels read the
#: facts without them (:func:`read_snapshot`): only findings show them, for a few entities
#: (:func:`read_lineage`), and at 10,000 units they were 170 MB of strings, one per fact, in
#: every kernel beside the figures. (``source_system`` stays: the mapping task counts
#: completeness per system.)
LINEAGE_COLUMNS = ("source_ref",)
#: Tables with a row per metric: what :func:`read_snapshot` reads of some metrics only.
METRIC_TABLES = ("facts", "targets")
#: Rows a filtered read of the snapshot decodes at a time (:func:`_filtered`).
_ROW_BATCH = 2**17


@dataclass(frozen=True, eq=False)
class Collected:
    """What :func:`collect` found: ``inputs`` is None when any table did not load.

    ``problems`` are ``(where, message, error class)``: ``where`` is the input table, or
    ``coverage`` for the review quarter's coverage by the facts. ``entities`` is the
    entities table when it loaded (for the checks of options and scope), else None.
    """

    inputs: Any
    entities: pd.DataFrame | None
    notes: list[dict[str, Any]]
    problems: list[tuple[str, str, type[PerflinkError]]]
    skipped: list[str]


def collect(
    params: Any, catalog: Any | None, *, known_metrics: Collection[str] | None = None
) -> Collected:
    """Read and check every input table of the review, collecting problems table by table.

    The checks of :func:`load`, each run as far as the tables it needs loaded: a table
    that does not load is one problem and the others are still read; the metric ids are
    checked only when ``catalog`` is given (it did load), the coverage of the quarter only
    when the facts loaded.

    Parameters
    ----------
    params : perflink.params.ReviewParams
    catalog : perflink.catalog.Catalog or None
    known_metrics : the metric ids to check against when ``catalog`` is None (those of a
        ``metrics.yaml`` that loaded while another catalog file did not).

    Returns
    -------
    Collected
    """
    from perflink._io_sql import as_source
    from perflink.io import KINDS, Inputs, read_tables

    quarter = params.period
    years = params.inputs_window_years
    window = (
        quarter.asfreq("M", how="s") - 12 * years,
        quarter.asfreq("M", how="e") + 12 * years,
    )
    resolved = {k: as_source(k, v) for k, v in params.input_paths.items() if k in KINDS}
    known = catalog.metrics.keys() if catalog is not None else known_metrics
    with _collect_warnings() as notes:
        tables, errors, skipped = read_tables(
            resolved, known_metrics=known, period_range=window, encoding=params.input_encoding
        )
    problems: list[tuple[str, str, type[PerflinkError]]] = [
        (kind, msg, InputError) for kind, msg in errors.items()
    ]
    if "facts" in errors:
        skipped.append(f"the coverage of {params.quarter} by the facts, which did not load.")
    else:
        try:
            _check_coverage(tables["facts"], params.quarter, quarter)
        except PerflinkError as exc:
            problems.append(("coverage", str(exc), type(exc)))
    entities = tables.get("entities") if "entities" not in errors else None
    inputs = None
    if not problems:
        inputs, left_out = _cut_after(Inputs(**tables, paths=resolved), quarter)
        if left_out is not None:
            log.warning(left_out["message"])
            notes.append(left_out)
    return Collected(inputs, entities, notes, problems, skipped)


def load(params: Any, catalog: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Read and validate the review's inputs for ``params.quarter``.

    Parameters
    ----------
    params : perflink.params.ReviewParams
        Validated params (``quarter``, ``input_paths``, ``inputs_window_years``).
    catalog : perflink.catalog.Catalog
        Its metric ids are the known ``metric_id`` values.

    Returns
    -------
    (perflink.io.Inputs, list of dict)
        The inputs, facts after the quarter left out; and the notes about them, each a
        dict with ``kind`` (``left_out``, ``extra_columns`` or ``warning``), ``message``
        (English, as logged) and, for the first two, the figures (``input``, ``rows``,
        ``months`` / ``file``, ``columns``).

    Raises
    ------
    InputError
        An input breaks the data contract, a period is outside the plausible window, or
        the facts table has no rows (the message names file, row, column and value; the
        problems of every table are listed together).
    ParamsError
        The facts hold no month of the review quarter.
    """
    found = collect(params, catalog)
    if found.problems:
        if len(found.problems) == 1:
            _, msg, err = found.problems[0]
            raise err(msg)
        raise InputError("\n\n".join(msg for _, msg, _ in found.problems))
    return found.inputs, found.notes


def write_snapshot(inputs: Any, notes: list[dict[str, Any]], folder: Path, *, quarter: str) -> None:
    """Write the validated tables as ``<kind>.parquet`` and :data:`SNAPSHOT_FILE` to *folder*.

    Paths and database URLs are not written: the kernel takes them from its own params.
    """
    from perflink.io import KINDS

    folder.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        getattr(inputs, kind).to_parquet(folder / f"{kind}.parquet", index=False)
    meta = {"version": _SNAPSHOT_VERSION, "quarter": quarter, "notes": notes}
    (folder / SNAPSHOT_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), "utf-8")


def read_snapshot(
    folder: Path,
    params: Any,
    *,
    metrics: Collection[str] | None = None,
    entity_ids: Collection[str] | None = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """The inputs and notes :func:`write_snapshot` wrote, for a review of ``params.quarter``.

    ``metrics``, ``entity_ids``: read the facts and targets of these metric ids and of these
    entities only (the rows a task of a few metrics, or a review of one subsidiary, reads;
    in the snapshot's order, index 0..n-1), not every row.

    Raises
    ------
    ParamsError
        *folder* is not a snapshot, or one made for another quarter.
    """
    from perflink.io import KINDS, Inputs

    folder = Path(folder)
    rows = {"metric_id": metrics, "entity_id": entity_ids}
    meta, tables = _open(folder, params, lambda: {k: _read(folder, k, rows) for k in KINDS})
    paths = {k: v for k, v in params.input_paths.items() if k in KINDS}
    return Inputs(**tables, paths=paths), list(meta.get("notes") or [])


def read_snapshot_entities(folder: Path, params: Any) -> pd.DataFrame:
    """The entities table of the snapshot in *folder* (:func:`read_snapshot`'s checks):
    what a scoped review checks its scope against before it reads any other row."""
    folder = Path(folder)
    return _open(folder, params, lambda: _read(folder, "entities", {}))[1]


def _open(folder: Path, params: Any, read: Callable[[], Any]) -> tuple[dict[str, Any], Any]:
    """The snapshot's description and what ``read`` reads of it, once the folder is known
    to be a snapshot of ``params.quarter``."""
    try:
        meta = json.loads((folder / SNAPSHOT_FILE).read_text("utf-8"))
        tables = read()
    except (OSError, ValueError) as exc:
        raise ParamsError(
            f"snapshot_dir: {folder} is not a snapshot of validated inputs ({exc}); leave "
            "snapshot_dir empty to read the input files (perflink review sets it)."
        ) from None
    if meta.get("version") != _SNAPSHOT_VERSION or meta.get("quarter") != params.quarter:
        raise ParamsError(
            f"snapshot_dir: {folder} holds the inputs of a review of {meta.get('quarter')}, "
            f"not {params.quarter}; leave snapshot_dir empty to read the input files."
        )
    return meta, tables


def read_lineage(folder: Path, entity_ids: Collection[str]) -> pd.DataFrame:
    """The facts of ``entity_ids`` in the snapshot in *folder*, every column, the
    :data:`LINEAGE_COLUMNS` :func:`read_snapshot` leaves out included, in the snapshot's
    order."""
    return _filtered(Path(folder) / "facts.parquet", None, {"entity_id": entity_ids})


def _read(folder: Path, kind: str, rows: dict[str, Collection[str] | None]) -> pd.DataFrame:
    """The snapshot's table ``kind`` (:func:`read_snapshot`); a table of
    :data:`METRIC_TABLES` only its rows whose ``column`` is among ``rows[column]`` (None:
    any)."""
    path, columns = folder / f"{kind}.parquet", _columns(folder, kind)
    wanted = {c: v for c, v in rows.items() if v is not None} if kind in METRIC_TABLES else {}
    if not wanted:
        return pd.read_parquet(path, columns=columns)
    return _filtered(path, columns, wanted)


def _filtered(
    path: Path, columns: list[str] | None, rows: dict[str, Collection[str]]
) -> pd.DataFrame:
    """The rows of the Parquet file ``path`` whose ``column`` is among ``rows[column]`` for
    every column of ``rows``, in the file's order, index 0..n-1, with the frame's ``attrs``
    (as ``read_parquet`` gives them).

    Batch by batch: the other rows go as each batch is decoded. A filtered ``read_parquet``
    decoded every row group at once: 0.5 GB at 10,000 units for the lineage of a few hundred
    entities, and 0.16 GB more than this (twice the time) for the forecast's metrics.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    full = source.schema_arrow
    fields = full if columns is None else [full.field(c) for c in columns]
    schema = pa.schema(fields, metadata=full.metadata)
    # each value set typed as its column (null when no row has a value: none match), so
    # that an empty set is a filter too
    sets = {}
    for column, values in rows.items():
        kind_of = full.field(column).type
        ids = [] if pa.types.is_null(kind_of) else sorted({str(v) for v in values})
        sets[column] = pa.array(ids, type=kind_of)
    parts = []
    for batch in source.iter_batches(batch_size=_ROW_BATCH, columns=columns):
        keep = None
        for column, values in sets.items():
            test = pc.is_in(batch.column(column), value_set=values)
            keep = test if keep is None else pc.and_(keep, test)
        parts.append(batch.filter(keep))
    out = pa.Table.from_batches(parts, schema=schema).to_pandas()
    attrs = (full.metadata or {}).get(b"PANDAS_ATTRS")
    if attrs:
        out.attrs = json.loads(attrs)
    return out.reset_index(drop=True)


def _columns(folder: Path, kind: str) -> list[str] | None:
    """Columns :func:`read_snapshot` reads of the table ``kind``: all but the facts' lineage."""
    if kind != "facts":
        return None
    import pyarrow.parquet as pq

    return [c for c in pq.read_schema(folder / "facts.parquet").names if c not in LINEAGE_COLUMNS]


# --------------------------------------------------------------------------- helpers


class _Notes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.notes: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        note = dict(getattr(record, "perflink_note", None) or {"kind": "warning"})
        note["message"] = record.getMessage()
        self.notes.append(note)


@contextmanager
def _collect_warnings() -> Iterator[list[dict[str, Any]]]:
    """Warnings logged on ``perflink.io`` while the block runs (they are still logged)."""
    handler = _Notes()
    log.addHandler(handler)
    try:
        yield handler.notes
    finally:
        log.removeHandler(handler)


def _months_text(months: list[str]) -> str:
    if len(months) <= 6:
        return ", ".join(months)
    return f"{months[0]} to {months[-1]} ({len(months)} months)"


def _label(facts: pd.DataFrame) -> str:
    """The facts input as the loaders name it: a file by its name (its folder may be a
    ``${NAME}`` secret), a database table or query as written."""
    source = str(facts.attrs.get("source", "facts"))
    return Path(source).name if Path(source).is_absolute() else source


def _check_coverage(facts: pd.DataFrame, written: str, quarter: pd.Period) -> None:
    source = _label(facts)
    if facts.empty:
        raise InputError(
            f"{source}: the facts table has no data rows; nothing can be reviewed. Add the "
            "facts (one row per entity, month and metric) or point inputs.facts at the "
            "right file."
        )
    periods = facts["period"]
    first, last = quarter.asfreq("M", how="s"), quarter.asfreq("M", how="e")
    if ((periods >= first) & (periods <= last)).any():
        return
    held = periods.dropna().unique()
    lo, hi = min(held), max(held)
    hint = f"{hi.asfreq('Q')}" if hi < first else f"{lo.asfreq('Q')}"
    raise ParamsError(
        f"quarter: the review quarter {written} is not covered by the data: {source} holds "
        f"months {lo} to {hi}, none of {first} to {last}. Review a quarter the data covers "
        f"(e.g. quarter: '{hint}') or add the facts of {written}."
    )


def _cut_after(inputs: Any, quarter: pd.Period) -> tuple[Any, dict[str, Any] | None]:
    """Leave out facts after the quarter's last month (the review is as of its end)."""
    facts = inputs.facts
    end = quarter.asfreq("M", how="e")
    after = (facts["period"] > end).to_numpy(dtype=bool)
    if not after.any():
        return inputs, None  # keep the very same table (and its bytes downstream)
    months = sorted(str(p) for p in facts.loc[after, "period"].unique())
    kept = facts.loc[~after].reset_index(drop=True)
    kept.attrs = dict(facts.attrs)
    file = _label(facts)
    rows = int(after.sum())
    note = {
        "kind": "left_out",
        "input": "facts",
        "file": file,
        "quarter": str(quarter),
        "rows": rows,
        "months": months,
        "message": (
            f"{file}: {rows} row(s) after the review quarter {quarter} "
            f"(months {_months_text(months)}) were left out of this review."
        ),
    }
    return replace(inputs, facts=kept), note
