"""Review parameters: one YAML file per review, validated once at the edge.

``${NAME}`` references in any string value are resolved from the environment in
memory only. Everything written out (manifest, logs, reports) uses
:meth:`ReviewParams.redacted`, which keeps the ``${NAME}`` form.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from perflink._io_sql import SqlSource
from perflink.errors import ParamsError
from perflink.options import (
    AnomalyOptions,
    ExecutorOptions,
    ForecastOptions,
    KpiOptions,
    MappingOptions,
    StatusOptions,
    SummaryOptions,
)

__all__ = [
    "ALL_TASKS",
    "InputPaths",
    "ReviewParams",
    "load_params",
    "parse_quarter",
    "report_name",
]

#: Task names in run order; ``summary`` always runs last.
ALL_TASKS: tuple[str, ...] = ("mapping", "kpi", "forecast", "anomaly", "summary")

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# A scope id becomes part of a folder name (reports/<quarter>-<scope>/): no separators.
_SCOPE = re.compile(r"^[^\s/\\:*?\"<>|.][^\s/\\:*?\"<>|]*$")


class _StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class InputPaths(_StrictModel):
    """Input tables: paths relative to the params file's folder, or database sources.

    A database source is a mapping ``{url: "${PERFLINK_DB_URL}", table: facts}`` or
    ``{url: ..., query: "select ..."}`` (:class:`perflink.io.SqlSource`); its URL must be a
    ``${NAME}`` reference when it holds a password.

    Attributes
    ----------
    entities : the organisation: group, subsidiaries, departments (required).
    facts : one value per entity, month and reported metric (required).
    targets : budgets and assessment targets (required).
    schemes : assessment schemes (考核方案): metrics and weights per centre type (required).
    adjustments : approved adjustments (不可抗力调整项); empty = none.
    bonus : base bonus per entity and year; empty = none.
    """

    entities: str | SqlSource
    facts: str | SqlSource
    targets: str | SqlSource
    schemes: str | SqlSource
    adjustments: str | SqlSource | None = None
    bonus: str | SqlSource | None = None


class ReviewParams(_StrictModel):
    """A validated review parameters file.

    Attributes mirror the YAML keys. ``${NAME}`` references are already resolved
    here; never write these values out, use :meth:`redacted` instead.

    ``scope`` (an entity id, default None = the whole group) restricts the review to
    that entity's subtree: :class:`perflink.review.Review` filters every input table,
    and the report goes to ``reports/<quarter>-<scope>/``. That the id exists is
    checked when the entities table is read (:func:`perflink.review.scope_inputs`).

    A review of ``quarter`` is computed from facts up to the quarter's last month (later
    facts are left out, and the report says so); periods more than ``inputs_window_years``
    (default 10) before or after the quarter are refused, naming file and row.

    Attributes
    ----------
    quarter : the review quarter, written as a quoted string like ``"2026Q3"``.
    language : report language: ``zh`` (Chinese) or ``en`` (English); ``--language``
        overrides it.
    scope : an entity id (a subsidiary, or the group): report on its subtree only, into
        ``reports/<quarter>-<scope>/``; empty = the whole group. ``--scope`` overrides it.
    scope_group_totals : in a scoped review, also show the group's own tier-1 totals
        (figures only, no other entity).
    inputs : the six input tables: a path relative to this file, or a database source
        ``{url, table}`` / ``{url, query}``.
    input_encoding : text encoding of CSV inputs: one codec for all (``latin-1``) or per
        input (``{entities: cp1252}``); unset = detected (UTF-8, GB18030; a doubtful guess
        is refused).
    catalog : the catalog folder (``metrics.yaml``, ``mappings.yaml``, ``rules.yaml``,
        ``policy.yaml``), relative to this file.
    history_start : a month (``YYYY-MM``), recorded in the run manifest; no task reads it
        yet (every task uses all the history within ``inputs_window_years``).
    inputs_window_years : periods further than this many years from the quarter are
        refused as typos (2206-08).
    tasks : the review tasks to run, in order (``summary`` always last); ``--tasks``
        overrides it.
    jobs : notebooks run at the same time (default: the CPU count); ``--jobs`` overrides it.
    executor : where per-series work runs: local processes (default) or a Dask cluster.
    thresholds : named numbers (name -> number), recorded in the run manifest; no task
        reads them (each task's thresholds are in its own block below).
    status : the thresholds of the one status vocabulary (met / narrowly missed / missed
        for actuals, on track / at risk / off track for outlooks) every page uses.
    mapping : options of the business-finance mapping task (notebook 01).
    kpi : options of the KPI decomposition and scoring task (notebook 02).
    forecast : options of the forecast task (notebook 03).
    anomaly : options of the anomaly task (notebook 04).
    summary : options of the leadership summary (notebook 05).
    """

    quarter: str
    language: Literal["zh", "en"] = "zh"
    scope: str | None = None
    scope_group_totals: bool = False
    inputs: InputPaths
    input_encoding: str | dict[str, str] | None = None
    catalog: str
    history_start: str | None = None
    inputs_window_years: int = Field(default=10, ge=1, le=100)
    tasks: list[str] = Field(default_factory=lambda: list(ALL_TASKS))
    jobs: int | None = Field(default=None, ge=1)
    executor: ExecutorOptions = Field(default_factory=ExecutorOptions)
    thresholds: dict[str, float] = Field(default_factory=dict)
    status: StatusOptions = Field(default_factory=StatusOptions)
    mapping: MappingOptions = Field(default_factory=MappingOptions)
    kpi: KpiOptions = Field(default_factory=KpiOptions)
    forecast: ForecastOptions = Field(default_factory=ForecastOptions)
    anomaly: AnomalyOptions = Field(default_factory=AnomalyOptions)
    summary: SummaryOptions = Field(default_factory=SummaryOptions)

    _source: Path | None = PrivateAttr(default=None)
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)
    _secrets: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("quarter")
    @classmethod
    def _check_quarter(cls, v: str) -> str:
        if not _QUARTER.match(v):
            raise ValueError("expected a quarter written as a quoted string like '2026Q3'")
        return v

    @field_validator("history_start")
    @classmethod
    def _check_month(cls, v: str | None) -> str | None:
        if v is not None and not _MONTH.match(v):
            raise ValueError("expected a month written as YYYY-MM, e.g. '2023-01'")
        return v

    @field_validator("scope")
    @classmethod
    def _check_scope(cls, v: str | None) -> str | None:
        if v is not None and not _SCOPE.match(v):
            raise ValueError(
                "expected one entity id (e.g. 'EAST') without spaces, slashes or a leading dot; "
                "it names the report folder reports/<quarter>-<scope>/"
            )
        return v

    @field_validator("input_encoding")
    @classmethod
    def _check_encoding(cls, v: str | dict[str, str] | None) -> str | dict[str, str] | None:
        from perflink._io_read import text_codec

        unknown = sorted(set(v) - set(InputPaths.model_fields)) if isinstance(v, dict) else []
        if unknown:
            raise ValueError(
                f"unknown input(s) {unknown}; use {', '.join(InputPaths.model_fields)}"
            )
        for codec in [v] if isinstance(v, str) else (v or {}).values():
            try:
                text_codec(codec)
            except ParamsError as exc:
                raise ValueError(str(exc).removeprefix("input_encoding: ").rstrip(".")) from None
        return v

    @field_validator("tasks")
    @classmethod
    def _check_tasks(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("expected at least one task name")
        if len(set(v)) != len(v):
            raise ValueError("expected each task name once")
        return v

    @property
    def source(self) -> Path | None:
        """Absolute path of the YAML file these params came from (None if built in code)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Folder relative paths are resolved against (the params file's folder)."""
        return self._source.parent if self._source is not None else Path.cwd()

    @property
    def period(self):
        """The review quarter as ``pd.Period(..., "Q")``."""
        return parse_quarter(self.quarter)

    @property
    def report_name(self) -> str:
        """Report folder name: ``"2026Q3"``, or ``"2026Q3-EAST"`` for a review scoped to EAST."""
        return report_name(self.quarter, self.scope)

    @property
    def catalog_dir(self) -> Path:
        """Absolute path of the catalog folder."""
        return _resolve(self.base_dir, self.catalog)

    @property
    def input_paths(self) -> dict[str, Path | SqlSource]:
        """Absolute paths of the given input tables (or their database source), by table name."""
        given = {name: getattr(self.inputs, name) for name in InputPaths.model_fields}
        return {
            name: value if isinstance(value, SqlSource) else _resolve(self.base_dir, value)
            for name, value in given.items()
            if value is not None
        }

    @property
    def secret_values(self) -> dict[str, str]:
        """Resolved ``${NAME}`` values keyed by variable name (for leak scans only)."""
        return dict(self._secrets)

    def redacted(self) -> dict[str, Any]:
        """The params as written, with ``${NAME}`` references kept unresolved.

        Returns
        -------
        dict
            JSON-serialisable; safe to write into manifests and logs.
        """
        return _deep_copy(self._raw)


def report_name(quarter: str, scope: str | None = None) -> str:
    """Report folder name of a review: the quarter, suffixed ``-<scope>`` for a scoped one.

    A scoped report never overwrites (nor is compared with) the group's report.
    """
    return f"{quarter}-{scope}" if scope else str(quarter)


def parse_quarter(text: Any):
    """Turn ``"2026Q3"`` into ``pd.Period("2026Q3", "Q")``.

    Raises
    ------
    ParamsError
        If *text* is not a string of the form ``YYYYQn``.
    """
    from perflink.common import parse_quarter as _parse  # one parser; pandas loaded lazily

    return _parse(text)


def load_params(path: str | Path, *, overrides: Mapping[str, Any] | None = None) -> ReviewParams:
    """Read, resolve and validate a review parameters file.

    Parameters
    ----------
    path : str or Path
        The YAML file (e.g. ``params/2026Q3.yaml``).
    overrides : Mapping, optional
        Values that replace those in the file; keys may be dotted
        (``{"inputs.facts": "other.csv", "jobs": 2}``).

    Returns
    -------
    ReviewParams
        With ``${NAME}`` references resolved in memory.

    Raises
    ------
    ParamsError
        One message listing every problem: key path, bad value (never a resolved
        secret) and what is expected; unknown keys with a suggestion; missing input
        files with their resolved path; unset environment variables.
    """
    source = Path(path).expanduser().resolve()
    if not source.is_file():
        raise ParamsError(
            f"params file {source} does not exist (a relative path is read from the current "
            f"folder {Path.cwd()}); pass --params <file.yaml>, or to papermill "
            "-p params_path <file.yaml> (or run it with --cwd notebooks)."
        )
    try:
        raw = yaml.load(source.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{source}: not valid YAML ({exc}); fix the file.") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of keys (quarter, inputs, ...).")
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)

    secrets: dict[str, str] = {}
    resolved = _resolve_env(raw, (), secrets, source)
    try:
        params = ReviewParams.model_validate(resolved)
    except ValidationError as exc:
        raise ParamsError(_format_errors(source, exc, raw)) from None
    params._source = source
    params._raw = raw
    params._secrets = secrets
    _check_paths(params)
    return params


# --- helpers ---------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates and times as strings (``2026-09-01`` stays text)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ParamsError(f"override {key!r}: {part!r} is not a mapping in the params file.")
    node[parts[-1]] = value


def _resolve_env(value: Any, loc: tuple, secrets: dict[str, str], source: Path) -> Any:
    if isinstance(value, dict):
        return {k: _resolve_env(v, (*loc, k), secrets, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, (*loc, i), secrets, source) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def _sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ParamsError(
                f"{source}: key {_dotted(loc)} refers to environment variable ${{{name}}}, "
                f"which is not set; export {name} before running the review."
            )
        secrets[name] = os.environ[name]
        return os.environ[name]

    return _ENV_REF.sub(_sub, value)


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _lookup(raw: Any, loc: tuple) -> Any:
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


# Models by key path, for "did you mean" hints on unknown keys (inputs and task blocks).
_MODELS: dict[tuple, type[BaseModel]] = {
    (): ReviewParams,
    **{
        (name,): field.annotation
        for name, field in ReviewParams.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    },
    **{("inputs", name): SqlSource for name in InputPaths.model_fields},
}


def _format_errors(source: Path, exc: ValidationError, raw: dict) -> str:
    errors = _input_union_errors(exc.errors(), raw)
    lines = [f"{source}: {len(errors)} problem(s) in the review parameters:"]
    for err in errors:
        loc = tuple(err["loc"])
        where = _dotted(loc)
        # Show the value as written (with ${NAME} kept), never a resolved value.
        shown = _lookup(raw, loc)
        if err["type"] == "extra_forbidden":
            model = _MODELS.get(loc[:-1])
            hint = ""
            if model is not None:
                close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
                hint = (
                    f" Did you mean {'.'.join(map(str, (*loc[:-1], close[0])))!r}?" if close else ""
                )
                allowed = ", ".join(model.model_fields)
                hint += f" Allowed keys here: {allowed}."
            lines.append(f"  - unknown key {where!r}.{hint}")
        elif err["type"] == "missing":
            lines.append(f"  - key {where!r} is required but missing.")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  - {where}: got {shown!r}; {msg}.")
    return "\n".join(lines)


def _input_union_errors(errors: list, raw: dict) -> list:
    """Errors of ``inputs.<name>`` (a path or a database source) as if there were one type.

    Drops pydantic's union branch from the location and keeps the branch that fits what was
    written: a mapping is a database source, anything else a path.
    """
    out = []
    for err in errors:
        loc = tuple(err["loc"])
        if len(loc) >= 3 and loc[0] == "inputs":
            is_map = isinstance(_lookup(raw, loc[:2]), dict)
            if (loc[2] == "str") == is_map:
                continue
            err = {**err, "loc": loc[:2] + loc[3:]}
        out.append(err)
    return out


def _check_paths(params: ReviewParams) -> None:
    problems = []
    raw_inputs = params._raw.get("inputs", {})
    for name, path in params.input_paths.items():
        if isinstance(path, SqlSource):
            secret = _check_db_url(name, raw_inputs.get(name))
            if secret:
                raise ParamsError(f"{params.source}: {secret}")
            continue  # the database is checked when the table is read
        written = str(raw_inputs.get(name, ""))
        if "://" in written:
            continue  # a database / remote source, checked when it is opened
        if not path.exists():
            where = f"inputs.{name}: {written!r}"
            if _ENV_REF.search(written):
                problems.append(f"  - {where} does not exist (after resolving ${{...}}).")
            else:
                problems.append(f"  - {where} -> {path} does not exist.")
    if not params.catalog_dir.is_dir():
        problems.append(
            f"  - catalog: {params._raw.get('catalog')!r} -> {params.catalog_dir} is not a folder."
        )
    if problems:
        head = f"{params.source}: input files not found (paths are relative to {params.base_dir}):"
        raise ParamsError("\n".join([head, *problems]))


def _check_db_url(name: str, written: Any) -> str:
    """A database URL written with a literal password would be copied into manifests."""
    from urllib.parse import urlsplit

    url = str(written.get("url", "")) if isinstance(written, dict) else ""
    if _ENV_REF.search(url):
        return ""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if not password:
        return ""
    return (
        f"inputs.{name}.url holds a password written in the params file; put the URL in an "
        "environment variable and write url: '${PERFLINK_DB_URL}' instead."
    )


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
