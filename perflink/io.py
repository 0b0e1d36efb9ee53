"""Load and validate the six review inputs (entities, facts, targets, schemes, adjustments, bonus).

The data contract (columns, types, units, accepted formats and encodings, what is rejected) is
documented in ``docs/data-contract.md``. Files are only ever opened for reading.

After loading, text columns use pandas' default string dtype (``str``; empty cell = NaN),
``period`` is ``period[M]`` (NaT for annual targets), ``year`` is ``int64`` and every amount
(``value``, ``target``, ``amount``, ``weight``, ``floor``, ``cap``, ``base_bonus``,
``pool_budget``) is ``float64``. Each frame carries ``attrs["source"]``, ``attrs["encoding"]``
(CSV only, else ``None``) and ``attrs["extra_columns"]``; a table read from a database also
``attrs["sha256"]`` and ``attrs["rows_read"]`` (its content hash and size, for the run
manifest, so it is not read twice).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from perflink import _io_check as chk
from perflink._io_parse import (
    SPECS,
    Col,
    Problems,
    number_hint,
    parse_number,
    parse_period,
    parse_year,
    periods_from_ordinals,
    suggest,
)
from perflink._io_read import EncodingSpec, RawTable, encoding_for, read_raw
from perflink._io_sql import SqlSource, as_source, content_sha256, read_sql_raw
from perflink.errors import InputError, ParamsError
from perflink.execution import current_progress, progress

__all__ = [
    "KINDS",
    "Inputs",
    "SqlSource",
    "empty_table",
    "load_inputs",
    "read_table",
    "read_tables",
]

log = logging.getLogger("perflink.io")

#: The input tables, in loading order.
KINDS: tuple[str, ...] = ("entities", "facts", "targets", "schemes", "adjustments", "bonus")
_REQUIRED_KINDS = ("entities", "facts", "targets")
_DTYPES = {"str": "str", "number": "float64", "period": "period[M]", "year": "int64"}
# (kind, column) -> (min, max, message); checked with pandera on the converted table.
_RANGES: dict[tuple[str, str], tuple[float, float | None, str]] = {
    ("schemes", "weight"): (0.0, 1.0, "weight must be a fraction in [0, 1] (0.25 = 25%)."),
    ("bonus", "base_bonus"): (0.0, None, "bonus amounts cannot be negative."),
    ("bonus", "pool_budget"): (0.0, None, "bonus amounts cannot be negative."),
}


def empty_table(kind: str) -> pd.DataFrame:
    """An empty table of ``kind`` with the contract's columns and dtypes."""
    _check_kind(kind)
    return pd.DataFrame(
        {c.name: pd.Series([], dtype=_DTYPES[c.type]) for c in SPECS[kind]},
        index=pd.RangeIndex(0),
    )


def read_table(
    path: str | Path | SqlSource,
    kind: str,
    *,
    known_entities: Collection[str] | None = None,
    known_metrics: Collection[str] | None = None,
    period_range: tuple[pd.Period, pd.Period] | None = None,
    encoding: EncodingSpec = None,
) -> pd.DataFrame:
    """Read one input table and check it against the data contract.

    Parameters
    ----------
    path
        ``.csv``/``.txt`` (UTF-8, UTF-8 with BOM or GBK/GB18030; comma, tab or semicolon
        separated), ``.xlsx`` (the sheet named like ``kind``, else the first sheet),
        ``.parquet``, or a directory of Parquet files; or a :class:`SqlSource` (a table
        or query in a SQL database, read with SQLAlchemy; see "Database sources" in
        ``docs/data-contract.md``).
    kind
        One of :data:`KINDS`.
    known_entities
        If given, every ``entity_id`` (and not ``parent_id``) must be in it.
    known_metrics
        If given, every ``metric_id`` must be in it (typically the catalog's metric ids).
    period_range
        ``(first, last)`` months, inclusive. Facts/adjustments periods and targets/bonus years
        outside it are rejected.
    encoding
        The text encoding of a CSV/TXT file (``"latin-1"``), or a mapping ``kind -> codec``
        (``input_encoding`` in the params); None detects it (UTF-8, GB18030, else a
        confident guess; a guess that looks like mojibake is refused).

    Returns
    -------
    pandas.DataFrame
        The contract columns of ``kind`` (see ``docs/data-contract.md``) in contract order,
        then any extra columns of the file (kept as text, with a warning).

    Raises
    ------
    InputError
        The file is missing, unreadable or breaks the contract. One error lists up to 20
        problems, each naming file, row, column and the bad value.
    """
    _check_kind(kind)
    rng = _month_range(period_range)
    if isinstance(path, SqlSource):
        raw = read_sql_raw(path, kind)
    else:
        raw = read_raw(Path(path), kind, encoding=encoding_for(encoding, kind))
    # A database table is read once per run: hash it now, for the run manifest.
    digest = content_sha256(raw) if isinstance(path, SqlSource) else None
    extra = _check_header(raw, kind)
    problems = Problems(raw, kind)
    df, bad = _convert(raw, kind, extra, problems)
    _check_ranges(df, kind, problems)
    chk.check_duplicates(df, kind, bad, problems)
    if kind != "entities":
        chk.check_known(
            df, "entity_id", known_entities, "in the entities table",
            "Add it to entities or fix the id.", bad, problems,
        )  # fmt: skip
        chk.check_known(
            df, "metric_id", known_metrics, "a metric in the catalog",
            "Add the metric to the catalog or fix the id.", bad, problems,
        )  # fmt: skip
    if kind in {"facts", "adjustments", "targets", "bonus"}:
        chk.check_period_range(df, rng, bad, problems)
    if kind == "entities":
        chk.check_entities(df, bad, problems)
    elif kind == "targets":
        chk.check_targets(df, bad, problems)
    elif kind == "schemes":
        chk.check_schemes(df, bad, problems)
    try:
        problems.raise_if_any()
    except InputError as exc:
        # What was read despite the problems: read_tables still checks the other tables'
        # entity ids against the ids of a flawed entities table.
        exc.partial = df  # type: ignore[attr-defined]
        raise
    if kind == "entities":
        df = _fill_names(df)
    df.attrs.update(source=str(path), encoding=raw.encoding, extra_columns=extra)
    if digest is not None:
        df.attrs.update(sha256=digest, rows_read=len(df))
    log.info("perflink.io: loaded %s from %s (%d rows)", kind, raw.label, len(df))
    return df


@dataclass(frozen=True, eq=False)  # DataFrames have no truth value: compare tables, not Inputs
class Inputs:
    """The validated review inputs.

    Attributes
    ----------
    entities, facts, targets, schemes, adjustments, bonus
        Tables as described in ``docs/data-contract.md``; an input that was not given is an
        empty table with the contract's columns.
    paths
        ``kind -> Path`` of the files that were read (or the :class:`SqlSource`, whose
        ``str`` names the table without the URL).
    """

    entities: pd.DataFrame
    facts: pd.DataFrame
    targets: pd.DataFrame
    schemes: pd.DataFrame
    adjustments: pd.DataFrame
    bonus: pd.DataFrame
    paths: Mapping[str, Path | SqlSource] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per input: ``kind``, ``rows``, ``path``, ``encoding``."""
        return pd.DataFrame(
            {
                "kind": list(KINDS),
                "rows": [len(getattr(self, k)) for k in KINDS],
                "path": [str(self.paths.get(k, "")) for k in KINDS],
                "encoding": [getattr(self, k).attrs.get("encoding") for k in KINDS],
            }
        )

    def _repr_html_(self) -> str:
        return f"<b>{html.escape('perflink Inputs')}</b>" + self.to_frame().to_html(index=False)


def load_inputs(
    paths: Mapping[str, str | Path | SqlSource | Mapping[str, str]],
    *,
    known_metrics: Collection[str] | None = None,
    period_range: tuple[pd.Period, pd.Period] | None = None,
    encoding: EncodingSpec = None,
) -> Inputs:
    """Load all inputs; entities first, then check every other table's ``entity_id`` against it.

    Parameters
    ----------
    paths
        ``kind -> path``. ``entities``, ``facts`` and ``targets`` are required; ``schemes``,
        ``adjustments`` and ``bonus`` may be left out (empty tables). A value may also be a
        :class:`SqlSource` or a mapping ``{"url": ..., "table": ...}`` /
        ``{"url": ..., "query": ...}`` (a database table or query).
    known_metrics, period_range, encoding
        As in :func:`read_table`.

    Raises
    ------
    InputError
        A required input is missing, a key is not a known kind, or any table breaks the
        contract (problems of all files are reported together).
    """
    unknown = sorted(set(paths) - set(KINDS))
    if unknown:
        raise InputError(
            f"unknown input name(s) {unknown}{suggest(unknown[0], KINDS)}; use {', '.join(KINDS)}."
        )
    missing = [k for k in _REQUIRED_KINDS if k not in paths]
    if missing:
        raise InputError(f"inputs {missing} are required; add their file paths.")
    resolved = {k: as_source(k, paths[k]) for k in KINDS if k in paths}
    tables, errors, _ = read_tables(
        resolved, known_metrics=known_metrics, period_range=period_range, encoding=encoding
    )
    if errors:
        raise InputError("\n\n".join(errors.values()))
    return Inputs(**tables, paths=resolved)


@progress("reading inputs", len(KINDS), unit="table")
def read_tables(
    resolved: Mapping[str, Path | SqlSource],
    *,
    known_metrics: Collection[str] | None = None,
    period_range: tuple[pd.Period, pd.Period] | None = None,
    encoding: EncodingSpec = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[str]]:
    """Read every given table, collecting problems instead of stopping at the first table.

    Entities are read first; their ids are then the known ``entity_id`` values of the other
    tables, even when the entities table has problems (the ids it does hold). When it
    cannot be read at all (missing file, missing columns), the other tables are still read
    and checked without that cross-check, and a line says so.

    Parameters
    ----------
    resolved
        ``kind -> path or SqlSource`` (see :func:`load_inputs`); a kind left out is an empty
        table.
    known_metrics, period_range, encoding
        As in :func:`read_table`.

    Returns
    -------
    (dict, dict, list)
        The tables that loaded (``kind -> DataFrame``; a kind not given is an empty table),
        the problems of those that did not (``kind -> message``, in :data:`KINDS` order) and
        the checks that were skipped because a table they need did not load.

    Large inputs take seconds: a progress bar ("reading inputs", one step per table)
    shows after :data:`perflink.execution.PROGRESS_DELAY` seconds.
    """
    tables: dict[str, pd.DataFrame] = {}
    errors: dict[str, str] = {}
    skipped: list[str] = []
    known: set[str] | None = None
    for kind in _ticking(KINDS):
        if kind not in resolved:
            tables[kind] = empty_table(kind)
            continue
        try:
            tables[kind] = read_table(
                resolved[kind], kind,
                known_entities=known, known_metrics=known_metrics, period_range=period_range,
                encoding=encoding,
            )  # fmt: skip
        except (InputError, ParamsError) as exc:
            errors[kind] = str(exc)
            partial = getattr(exc, "partial", None)
            if kind == "entities" and partial is not None:
                known = set(partial["entity_id"].dropna())
            continue
        if kind == "entities":
            known = set(tables[kind]["entity_id"])
    if "entities" in errors and known is None:
        others = [k for k in KINDS[1:] if k in resolved]
        skipped.append(
            f"entity ids in {', '.join(others)} were not checked against the entities table, "
            "which did not load; fix it and check again."
        )
    return tables, errors, skipped


# --------------------------------------------------------------------------- helpers


def _ticking(kinds: tuple[str, ...]):
    """``kinds``; the progress bar of :func:`read_tables` advances as each is done and
    names the one being read."""
    bar = current_progress()
    # a note shows from the next redraw on: name the next table before the update that
    # counts the last one
    bar.set_note(kinds[0] if kinds else "")
    for kind, following in zip(kinds, (*kinds[1:], ""), strict=True):
        yield kind
        bar.set_note(following)
        bar.update()


def _fill_names(entities: pd.DataFrame) -> pd.DataFrame:
    """Each entity's missing name is its name in the other language.

    The one place the fallback is made: every page, chart and table then picks
    ``name_<lang>`` and always finds a name (an English-only company shows English names in
    a Chinese report, and the other way round).
    """
    zh, en = entities["name_zh"], entities["name_en"]
    if not (zh.isna().any() or en.isna().any()):
        return entities  # the very same table (and its bytes downstream)
    out = entities.copy()
    out["name_zh"] = zh.fillna(en)
    out["name_en"] = en.fillna(zh)
    out.attrs = dict(entities.attrs)
    return out


def _check_kind(kind: str) -> None:
    if kind not in SPECS:
        raise InputError(
            f"unknown table kind {kind!r}{suggest(str(kind), KINDS)}; use one of {', '.join(KINDS)}."
        )


def _month_range(period_range: object) -> tuple[pd.Period, pd.Period] | None:
    if period_range is None:
        return None
    try:
        start, end = (
            pd.Period(p).asfreq("M", how=h) for p, h in zip(period_range, "se", strict=True)
        )  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise ParamsError(
            f"period_range {period_range!r} must be two periods, e.g. "
            f"(pd.Period('2026-01', 'M'), pd.Period('2026-09', 'M')) ({exc})."
        ) from exc
    if start > end:
        raise ParamsError(f"period_range starts at {start}, after its end {end}; swap them.")
    return start, end


def _check_header(raw: RawTable, kind: str) -> list[str]:
    """Raise on missing required columns (with hints); return the extra columns."""
    found = [str(c) for c in raw.frame.columns]
    wanted = [c.name for c in SPECS[kind]]
    missing = [c.name for c in SPECS[kind] if c.column_required and c.name not in found]
    if missing:
        hints = []
        norm = {f.strip().lower().replace(" ", "_").replace("-", "_"): f for f in found}
        for m in missing:
            if m in norm:
                hints.append(f"'{norm[m]}' should be written exactly '{m}'.")
        if found and found[0].startswith(("ï»¿", "锘", "\ufeff")):
            hints.append(
                f"The first header '{found[0]}' starts with a broken byte-order mark: "
                "save the file again as 'CSV UTF-8'."
            )
        if any("\u4e00" <= ch <= "\u9fff" for f in found for ch in f):
            hints.append(
                "Headers must be the English column names (e.g. 'entity_id', not '单位编码'); "
                "Chinese names go in the data rows."
            )
        if len(found) == 1 and any(d in found[0] for d in "|，"):
            hints.append("Only one column was found: the separator must be a comma, tab or ';'.")
        raise InputError(
            f"{raw.label}: the {kind} table is missing required column(s) {missing}. "
            f"Columns found: {found}. Required: {[c.name for c in SPECS[kind] if c.column_required]}."
            + ("".join(" " + h for h in hints))
        )
    extra = [f for f in found if f not in wanted]
    if extra:
        log.warning(
            "perflink.io: %s has columns not in the contract, kept as text: %s",
            raw.label,
            extra,
            extra={
                "perflink_note": {
                    "kind": "extra_columns", "input": kind, "file": raw.label, "columns": extra,
                }
            },
        )  # fmt: skip
    return extra


def _raw_schema(specs: tuple[Col, ...]) -> pa.DataFrameSchema:
    columns = {}
    for c in specs:
        checks = []
        if c.value_required:
            checks.append(pa.Check(lambda s: s != "", name="nonempty"))
        if c.allowed:
            checks.append(pa.Check(lambda s, a=c.allowed: (s == "") | s.isin(a), name="allowed"))
        columns[c.name] = pa.Column(checks=checks, required=True)
    return pa.DataFrameSchema(columns)


def _pandera_failures(schema: pa.DataFrameSchema, df: pd.DataFrame) -> pd.DataFrame:
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        return fc[fc["index"].notna()]
    return pd.DataFrame(columns=["column", "check", "index"])


def _convert(
    raw: RawTable, kind: str, extra: list[str], problems: Problems
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Strings -> contract dtypes. Returns the table and a same-shaped mask of bad cells."""
    specs = SPECS[kind]
    frame = raw.frame
    for c in specs:
        if c.name not in frame:
            frame[c.name] = ""
    bad = pd.DataFrame(False, index=frame.index, columns=[c.name for c in specs])
    for (col, check), grp in _pandera_failures(_raw_schema(specs), frame).groupby(
        ["column", "check"]
    ):
        pos = sorted(int(i) for i in grp["index"])
        bad.loc[pos, col] = True
        if check == "nonempty":
            problems.add_rows(pos, col, "is empty; every row needs a value here.")
        else:
            allowed = next(c.allowed for c in specs if c.name == col) or ()
            for i in pos:
                value = frame[col].iat[i]
                problems.add_rows(
                    [i],
                    col,
                    f"{{value}} is not allowed{suggest(value.lower(), allowed)}; use one of {', '.join(allowed)}.",
                )
    out: dict[str, pd.Series] = {}
    for c in specs:
        s = frame[c.name]
        if c.type == "number":
            values, wrong = parse_number(s)
            for i in np.flatnonzero(wrong):
                problems.add_rows(
                    [int(i)], c.name,
                    "{value} is not a number." + number_hint(s.iat[i]) + " Fix the value or remove the row.",
                )  # fmt: skip
            out[c.name] = pd.Series(values, dtype="float64")
        elif c.type == "period":
            ordinals, wrong = parse_period(s)
            problems.add_rows(
                np.flatnonzero(wrong), c.name,
                "{value} is not a month; write it as 2026-09 (also accepted: 2026/09, 202609, 2026-09-01).",
            )  # fmt: skip
            out[c.name] = periods_from_ordinals(ordinals)
        elif c.type == "year":
            values, wrong = parse_year(s)
            wrong &= (s != "").to_numpy()  # empty already reported as 'is empty'
            problems.add_rows(
                np.flatnonzero(wrong), c.name, "{value} is not a year; write 4 digits, e.g. 2026."
            )
            out[c.name] = pd.Series(values, dtype="int64")
        else:
            wrong = np.zeros(len(s), dtype=bool)
            out[c.name] = pd.Series(s.where(s != "", None), dtype="str")
        bad[c.name] |= wrong
    for name in extra:
        out[name] = pd.Series(frame[name].where(frame[name] != "", None), dtype="str")
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame))), bad


def _check_ranges(df: pd.DataFrame, kind: str, problems: Problems) -> None:
    checks = {col: rng for (k, col), rng in _RANGES.items() if k == kind}
    if not checks:
        return
    schema = pa.DataFrameSchema(
        {
            col: pa.Column(
                "float64",
                pa.Check.in_range(lo, hi) if hi is not None else pa.Check.ge(lo),
                nullable=True,
            )
            for col, (lo, hi, _) in checks.items()
        }
    )
    for col, grp in _pandera_failures(schema, df).groupby("column"):
        for i in sorted(int(i) for i in grp["index"]):
            problems.add(
                f"{problems.table.where(i)}, column '{col}': {df[col].iat[i]:g} is out of range; "
                + checks[col][2],
                i,
            )
