"""Reading input tables from SQL databases (private to :mod:`perflink.io`).

An input given as ``{url: "${PERFLINK_DB_URL}", table: facts}`` (or ``query: "select ..."``)
is read with SQLAlchemy and pandas, then every cell is rendered to the text a user would have
typed, exactly as for Parquet, so the same checks and messages apply; ``record N`` is the N-th
row of the result as the database returned it.

The URL carries credentials: it never appears in a message, a ``repr``, ``str`` or log line.
Messages name the input, the table (or the start of the query) and the host without the
password or URL query parameters.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from perflink._io_read import RawTable, _stringify
from perflink.errors import InputError

__all__ = ["SqlSource", "as_source", "content_sha256", "read_sql_raw"]

log = logging.getLogger("perflink.io")

_QUERY_SHOWN = 60


class SqlSource(BaseModel):
    """An input table read from a SQL database through SQLAlchemy.

    Attributes
    ----------
    url
        SQLAlchemy URL, e.g. ``postgresql+psycopg://user:pw@host:5432/db`` or
        ``sqlite:///file.db``. In params files write it as a ``${NAME}`` reference so the
        credentials stay in the environment. Never shown in ``repr``/``str`` or messages.
    table
        Table name, optionally ``schema.table``. Exactly one of ``table`` and ``query``.
    query
        A ``SELECT`` statement whose result is the table.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    url: str = Field(repr=False, min_length=1)
    table: str | None = Field(default=None, min_length=1)
    query: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_of(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' (a table name) or 'query' (a SELECT)")
        return self

    def __str__(self) -> str:
        if self.table is not None:
            return f"database table {self.table!r}"
        text = re.sub(r"\s+", " ", self.query or "").strip()
        short = text if len(text) <= _QUERY_SHOWN else text[: _QUERY_SHOWN - 3] + "..."
        return f"database query {short!r}"


def read_sql_raw(source: SqlSource, kind: str) -> RawTable:
    """Read ``source`` as an all-string :class:`RawTable` (rows numbered ``record 1..N``).

    Raises
    ------
    InputError
        Bad URL, missing driver, cannot connect, unknown table or failing query; the
        message names ``kind``, the table or query and the host (no password).
    """
    import pandas as pd
    import sqlalchemy as sa

    label = f"{kind} ({source})"
    engine = _engine(source, kind, label)
    try:
        with engine.connect() as conn:
            if source.table is not None:
                schema, _, name = source.table.rpartition(".")
                tbl = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
                stmt: Any = sa.select(tbl)
            else:
                stmt = sa.text(source.query or "")
            frame = pd.read_sql(stmt, conn, coerce_float=False)
    except sa.exc.NoSuchTableError:
        raise InputError(
            f"{label}: there is no table {source.table!r} at {_where(source.url)}. "
            "Check the table name (write schema.table for another schema) and the database "
            "in the URL."
        ) from None
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        # pandas wraps failing statements in its DatabaseError; the driver's text is below.
        exc = exc.__cause__ if isinstance(exc.__cause__, sa.exc.SQLAlchemyError) else exc
        raise InputError(
            f"{label}: cannot read from {_where(source.url)} "
            f"({type(exc).__name__}: {_reason(exc, source.url)}). "
            "Check that the server is running and reachable, the user, password and database "
            "in the URL's environment variable, and the table name or query."
        ) from None
    finally:
        engine.dispose()
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = _stringify(frame)
    log.info("perflink.io: %s read %d rows", label, len(frame))
    return RawTable(
        frame=frame,
        sources=np.full(len(frame), label, dtype=object),
        rows=np.arange(1, len(frame) + 1),
        label=label,
        row_word="record",
    )


def content_sha256(raw: RawTable) -> str:
    """SHA-256 of a table's content (header and cells as read), for the run manifest."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, raw.frame.columns)).encode("utf-8") + b"\x1e")
    for row in raw.frame.itertuples(index=False, name=None):
        digest.update("\x1f".join(row).encode("utf-8") + b"\x1e")
    return digest.hexdigest()


def as_source(kind: str, value: object) -> Path | SqlSource:
    """An input value as a file path or a :class:`SqlSource` (from a mapping)."""
    if isinstance(value, SqlSource):
        return value
    if isinstance(value, Mapping):
        try:
            return SqlSource.model_validate(dict(value))
        except ValueError as exc:  # pydantic's ValidationError; never echo the URL
            errors = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'source'}: {e['msg']}"
                for e in exc.errors(include_input=False)  # type: ignore[attr-defined]
            )
            raise InputError(
                f"input {kind!r}: not a valid database source ({errors}). "
                "Write {url: ..., table: name} or {url: ..., query: 'select ...'}."
            ) from None
    return Path(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- helpers


def _engine(source: SqlSource, kind: str, label: str) -> Any:
    import sqlalchemy as sa

    try:
        url = sa.make_url(source.url)
    except sa.exc.ArgumentError:
        raise InputError(
            f"{label}: the database URL of input {kind!r} is not a SQLAlchemy URL. Write it "
            "like postgresql+psycopg://user:password@host:5432/dbname in the environment "
            "variable the params refer to."
        ) from None
    try:
        return sa.create_engine(url)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise InputError(
            f"{label}: no database driver for {url.drivername!r} ({type(exc).__name__}). "
            "Install it (PostgreSQL: pip install 'psycopg[binary]') or fix the scheme of the URL."
        ) from None
    except sa.exc.ArgumentError as exc:
        raise InputError(
            f"{label}: bad database URL for {_where(source.url)} "
            f"({_reason(exc, source.url)}); fix it in the environment variable."
        ) from None


def _where(url: str) -> str:
    """The URL with the password and query parameters left out (safe to show)."""
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return "(unparsable URL)"
    return parsed.set(query={}).render_as_string(hide_password=True)


def _reason(exc: BaseException, url: str) -> str:
    """First line of the driver's message, with any part of the URL's secrets masked."""
    import sqlalchemy as sa

    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    secrets = [url]
    try:
        parsed = sa.make_url(url)
        secrets += [parsed.password or ""]
        for value in parsed.query.values():
            secrets += [value] if isinstance(value, str) else list(value)
    except sa.exc.ArgumentError:
        pass
    for secret in sorted({str(s) for s in secrets if s and len(str(s)) >= 3}, key=len)[::-1]:
        text = text.replace(secret, "***")
    return text
