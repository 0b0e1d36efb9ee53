"""Reading input files into all-string tables (private to :mod:`perflink.io`).

Everything here opens files read-only and returns every cell as a stripped ``str`` so that
validation can quote the raw value and its row number. Nothing is converted yet.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from perflink.errors import InputError

log = logging.getLogger("perflink.io")

_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass
class RawTable:
    """An input table with every cell as a stripped string, plus where each row came from.

    ``frame`` has a RangeIndex; ``sources[i]`` is the label of the file (and sheet) of row ``i``
    and ``rows[i]`` its row number there (spreadsheet style: header = 1, so the first data row
    is 2; for Parquet the 1-based record number).
    """

    frame: pd.DataFrame
    sources: np.ndarray
    rows: np.ndarray
    label: str
    encoding: str | None = None
    row_word: str = "row"
    notes: list[str] = field(default_factory=list)

    def where(self, i: int) -> str:
        """Human-readable location of data row ``i`` (``'facts.csv row 17'``)."""
        return f"{self.sources[i]} {self.row_word} {int(self.rows[i])}"


def read_raw(path: Path, kind: str) -> RawTable:
    """Read ``path`` (CSV/TXT, XLSX, Parquet file or directory of Parquet files) as strings."""
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"{kind}: input file '{path}' does not exist. Check the path in the review parameters."
        )
    if path.is_dir():
        return _read_parquet_dir(path)
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        return _read_csv(path)
    if suffix in _XLSX_SUFFIXES:
        return _read_xlsx(path, kind)
    if suffix in _PARQUET_SUFFIXES:
        return _read_parquet_file(path)
    raise InputError(
        f"{path.name}: unsupported file type '{path.suffix}' for the {kind} table. "
        "Use .csv/.txt (UTF-8 or GBK), .xlsx, .parquet or a directory of .parquet files "
        "(old .xls files: open in Excel and save as .xlsx)."
    )


# --------------------------------------------------------------------------- encodings


def decode_bytes(raw: bytes, label: str) -> tuple[str, str]:
    """Decode file bytes; return ``(text, encoding)``.

    Order: strict UTF-8 (a leading BOM is dropped, reported as ``utf-8-sig``), strict GB18030
    (a superset of GBK/GB2312, what Chinese Excel writes), then charset-normalizer's best guess
    only when it is confident (a byte-order mark, or no mess and a coherent language).
    """
    try:
        text = raw.decode("utf-8-sig")
        return text, ("utf-8-sig" if raw.startswith(_UTF8_BOM) else "utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        return raw.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is not None and (best.bom or (best.chaos <= 0.05 and best.coherence >= 0.5)):
        return str(best), str(best.encoding)
    offset = utf8_error.start
    line = raw[:offset].count(b"\n") + 1
    bad = raw[offset : offset + 4].hex(" ")
    guess = f" (charset-normalizer's best guess '{best.encoding}' is not reliable)" if best else ""
    raise InputError(
        f"{label}: cannot tell the text encoding. It is not UTF-8 (first bad byte at offset "
        f"{offset}, line {line}: {bad}) and not GBK/GB18030{guess}. "
        "Save the file again as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8)."
    )


# --------------------------------------------------------------------------- CSV


def _sniff_delimiter(first_line: str, suffix: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] == 0:
        return "\t" if suffix in {".txt", ".tsv"} else ","
    return best


def _read_csv(path: Path) -> RawTable:
    with path.open("rb") as fh:  # read-only, bytes: decoding is ours
        raw = fh.read()
    text, encoding = decode_bytes(raw, path.name)
    if text.startswith("\ufeff"):  # a BOM inside a UTF-16 or double-BOM file
        text = text[1:]
    log.info("perflink.io: %s decoded as %s", path.name, encoding)
    first_line = text.split("\n", 1)[0]
    delimiter = _sniff_delimiter(first_line, path.suffix.lower())
    fast = _read_csv_fast(text, delimiter, path.name)
    if fast is not None:
        fast.encoding = encoding
        return fast
    # csv.reader counts records, not physical lines, the same way a spreadsheet shows rows.
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not records:
        raise InputError(f"{path.name}: the file is empty; it needs a header row and data rows.")
    header = [h.strip() for h in records[0]]
    body = records[1:]
    rows = np.arange(2, len(body) + 2)
    table = _frame_from_records(header, body, rows, path.name)
    table.encoding = encoding
    return table


def _read_csv_fast(text: str, delimiter: str, label: str) -> RawTable | None:
    """pandas' C parser, every cell as a string; ``None`` when the file needs the slow path.

    Same records as :mod:`csv` (a quoted newline stays inside its record, blank lines keep
    their row number). Files with ragged rows or a repeated header go record by record, where
    the error names every offending row.
    """
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            dtype="str",
            na_filter=False,
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if frame.empty:
        return None
    header = [str(h).strip() for h in frame.iloc[0]]
    if len(header) != len(set(header)):
        return None
    body = frame.iloc[1:].reset_index(drop=True)
    body.columns = header
    return _stripped_table(body, np.arange(2, len(body) + 2), label)


def _frame_from_records(
    header: list[str], body: list[list[str]], rows: np.ndarray, label: str
) -> RawTable:
    width = len(header)
    if len(header) != len(set(header)):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise InputError(f"{label}: the header repeats column(s) {dup}. Keep one of each.")
    bad_width = []
    # Fast path: rows of the header's width go straight in; only ragged rows are fixed up.
    for i, rec in enumerate(body):
        if len(rec) != width:
            if len(rec) > width and any(c.strip() for c in rec[width:]):
                bad_width.append(
                    f"{label} row {int(rows[i])}: {len(rec)} values but the header has "
                    f"{width} columns"
                )
            body[i] = (list(rec) + [""] * width)[:width]
    if bad_width:
        shown = "\n".join(bad_width[:20])
        raise InputError(
            f"{label}: {len(bad_width)} row(s) have more values than header columns "
            f"(an unquoted comma inside a value, e.g. 1,234 without quotes?):\n{shown}"
        )
    frame = (
        pd.DataFrame(body, columns=header, dtype=object)
        if body
        else pd.DataFrame(columns=header, dtype=object)
    )
    return _stripped_table(frame, rows, label)


def _stripped_table(frame: pd.DataFrame, rows: np.ndarray, label: str) -> RawTable:
    """Cells stripped; blank lines and empty spreadsheet rows dropped (their numbers kept)."""
    for col in frame.columns:
        frame[col] = frame[col].str.strip()
    keep = ~(frame == "").all(axis=1).to_numpy()
    frame = frame[keep].reset_index(drop=True)
    return RawTable(
        frame=frame,
        sources=np.full(len(frame), label, dtype=object),
        rows=rows[keep],
        label=label,
    )


# --------------------------------------------------------------------------- cells


def cell_to_str(value: object) -> str:
    """Render one typed cell (Excel/Parquet) as the text a user would have typed."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(float(value))
    if isinstance(value, pd.Period):
        return str(value)
    if isinstance(value, dt.datetime | pd.Timestamp):
        if pd.isna(value):
            return ""
        if (value.hour, value.minute, value.second) == (0, 0, 0):
            return value.strftime("%Y-%m-%d")
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is pd.NaT or value is pd.NA:
        return ""
    return str(value).strip()


# --------------------------------------------------------------------------- XLSX


def _read_xlsx(path: Path, kind: str) -> RawTable:
    import openpyxl

    with path.open("rb") as fh:
        data = io.BytesIO(fh.read())
    try:
        wb = openpyxl.load_workbook(data, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for bad files
        raise InputError(
            f"{path.name}: cannot open as an Excel workbook ({type(exc).__name__}: {exc}). "
            "Re-save it from Excel as .xlsx."
        ) from exc
    try:
        by_name = {ws.title.strip().lower(): ws for ws in wb.worksheets}
        ws = by_name.get(kind, wb.worksheets[0])
        values = [list(r) for r in ws.iter_rows(values_only=True)]
        sheet = ws.title
    finally:
        wb.close()
    label = f"{path.name} [sheet {sheet}]"
    log.info("perflink.io: %s read from sheet %r", path.name, sheet)
    # Skip leading empty rows so the header is the first non-empty row; keep Excel numbering.
    start = 0
    while start < len(values) and not any(cell_to_str(c) for c in values[start]):
        start += 1
    if start == len(values):
        raise InputError(f"{label}: the sheet is empty; it needs a header row and data rows.")
    header = [cell_to_str(c) for c in values[start]]
    while header and header[-1] == "":
        header.pop()
    body = [[cell_to_str(c) for c in r] for r in values[start + 1 :]]
    rows = np.arange(start + 2, start + 2 + len(body))
    return _frame_from_records(header, body, rows, label)


# --------------------------------------------------------------------------- Parquet


def _stringify(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed Parquet columns -> the strings a user would have typed (empty = missing)."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_float_dtype(s.dtype) and not isinstance(s.dtype, pd.ArrowDtype):
            arr = s.to_numpy(dtype=float, na_value=np.nan)
            text = arr.astype(str).astype(object)
            text[np.isnan(arr)] = ""
            out[str(col)] = text
        else:  # render each distinct value once: ids, months and sources repeat a lot
            codes, uniques = pd.factorize(s.astype(object), use_na_sentinel=False)
            rendered = np.asarray([cell_to_str(u) for u in uniques], dtype=object)
            out[str(col)] = rendered[codes]
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)), dtype=object)


def _read_parquet_file(path: Path) -> RawTable:
    import pyarrow.parquet as pq

    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for corrupt files
        raise InputError(f"{path.name}: cannot read as Parquet ({exc}).") from exc
    frame = _stringify(frame)
    return RawTable(
        frame=frame,
        sources=np.full(len(frame), path.name, dtype=object),
        rows=np.arange(1, len(frame) + 1),
        label=path.name,
        row_word="record",
    )


def _read_parquet_dir(path: Path) -> RawTable:
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(path, format="parquet")
        fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
    except Exception as exc:
        raise InputError(f"{path.name}/: cannot read as a Parquet dataset ({exc}).") from exc
    if not fragments:
        raise InputError(f"{path.name}/: the directory holds no .parquet files.")
    frames, sources, rows = [], [], []
    for frag in fragments:
        part = _stringify(frag.to_table(schema=dataset.schema).to_pandas())
        name = f"{path.name}/{Path(frag.path).relative_to(path).as_posix()}"
        frames.append(part)
        sources.append(np.full(len(part), name, dtype=object))
        rows.append(np.arange(1, len(part) + 1))
    frame = pd.concat(frames, ignore_index=True)
    return RawTable(
        frame=frame,
        sources=np.concatenate(sources),
        rows=np.concatenate(rows),
        label=f"{path.name}/",
        row_word="record",
    )
