"""Reading input files into all-string tables (private to :mod:`perflink.io`).

Everything here opens files read-only and returns every cell as a stripped ``str`` so that
validation can quote the raw value and its row number. Nothing is converted yet.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from perflink.errors import InputError, ParamsError

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


def read_raw(path: Path, kind: str, *, encoding: str | None = None) -> RawTable:
    """Read ``path`` (CSV/TXT, XLSX, Parquet file or directory of Parquet files) as strings.

    ``encoding`` (a codec name, from ``input_encoding`` in the params) is used for text files
    instead of detecting one; XLSX and Parquet carry their own and ignore it.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            f"{kind}: input file '{path}' does not exist. Check the path in the review parameters."
        )
    if path.is_dir():
        return _read_parquet_dir(path)
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        return _read_csv(path, kind, encoding)
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


EncodingSpec = str | Mapping[str, str] | None
"""What ``input_encoding`` in the params holds: one codec for every text input, a mapping
``input name -> codec``, or None (detect)."""

# Rare ideographs (outside GB2312, the 6,763 common simplified characters) and private-use
# characters touching an ASCII letter: what Latin-1 / Windows-1252 text becomes when read as
# GB18030. An accented letter (bytes 0xC0-0xFF) is a GB18030 lead byte and swallows the
# ASCII letter after it as its trail byte (0x40-0x7E), giving 'Jérôme' -> 'J閞鬽e'; every
# such pair lies outside GB2312, whose bytes are all 0xA1-0xFE. Real Chinese text puts
# common characters next to Latin letters ('ERP-华东', 'A级'), so it is not flagged.
_NEXT_TO_LETTER = re.compile(r"(?<=[A-Za-z])[^\x00-\x7f]|[^\x00-\x7f](?=[A-Za-z])")


def text_codec(name: object) -> str:
    """Python's name of the text encoding ``name`` (``'latin-1'`` -> ``'iso8859-1'``).

    Raises
    ------
    ParamsError
        ``name`` is not a text encoding Python knows (``rot13`` and ``base64`` are not text).
    """
    try:
        info = codecs.lookup(str(name)) if isinstance(name, str) and name.strip() else None
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise ParamsError(
            f"input_encoding: {name!r} is not a text encoding Python knows; write one like "
            "'utf-8', 'gb18030', 'latin-1', 'cp1252' or 'utf-16'."
        )
    return info.name


def encoding_for(spec: EncodingSpec, kind: str) -> str | None:
    """The codec stated for input ``kind`` by ``spec`` (see :data:`EncodingSpec`), or None."""
    if spec is None:
        return None
    if isinstance(spec, str):
        return text_codec(spec)
    value = spec.get(kind)
    return None if value is None else text_codec(value)


def _is_mojibake_char(ch: str) -> bool:
    code = ord(ch)
    if 0xE000 <= code <= 0xF8FF or code >= 0xF0000:  # private use: user-defined GB18030 bytes
        return True
    if not (0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3FFFF):
        return False
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return True
    return False


def mojibake_line(text: str) -> int | None:
    """Line number (1-based) of the first likely mojibake in ``text``, or None.

    Likely mojibake: a rare CJK ideograph (not in GB2312) or a private-use character right
    next to an ASCII letter, as Latin-1 / Windows-1252 names read as GB18030 give
    ('J閞鬽e M黮ler'). Chinese names and mixed text such as 'ERP-华东' are not flagged.
    """
    for m in _NEXT_TO_LETTER.finditer(text):
        if _is_mojibake_char(m.group()):
            return text.count("\n", 0, m.start()) + 1
    return None


def _line(data: bytes | str, number: int) -> bytes | str:
    sep = b"\n" if isinstance(data, bytes) else "\n"
    parts = data.split(sep, number)
    return parts[number - 1].rstrip(b"\r" if isinstance(data, bytes) else "\r")


def _short(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _bad_bytes(raw: bytes, exc: UnicodeDecodeError) -> str:
    offset = exc.start
    line = raw[:offset].count(b"\n") + 1
    return f"first bad byte at offset {offset}, line {line}: {raw[offset : offset + 4].hex(' ')}"


def decode_bytes(
    raw: bytes, label: str, *, encoding: str | None = None, kind: str | None = None
) -> tuple[str, str]:
    """Decode file bytes; return ``(text, encoding)``.

    With ``encoding`` (``input_encoding`` in the params) the bytes are decoded strictly with
    it and nothing is guessed. Otherwise: strict UTF-8 (a leading BOM is dropped, reported as
    ``utf-8-sig``), strict GB18030 (a superset of GBK/GB2312, what Chinese Excel writes),
    then charset-normalizer's best guess only when it is confident (a byte-order mark, or no
    mess and a coherent language). UTF-8 and a byte-order mark are certain and logged at
    INFO; GB18030 and charset-normalizer's guess are choices among encodings that all
    decode the bytes, so they are checked for mojibake (:func:`mojibake_line`) and
    charset-normalizer's guess is logged as a warning on ``perflink.io`` with the
    alternatives.

    Raises
    ------
    InputError
        The bytes do not decode with ``encoding``; no encoding decodes them reliably; or the
        guessed decoding looks like mojibake (the message names the file, the line, how it
        reads, and the ``input_encoding`` setting that fixes it).
    """
    key = f"input_encoding: {{{kind}: <encoding>}}" if kind else "input_encoding: <encoding>"
    if encoding is not None:
        codec = text_codec(encoding)
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{label}: does not decode as {encoding!r}, the encoding stated in the review "
                f"parameters ({_bad_bytes(raw, exc)}). Correct input_encoding, or remove it "
                "to let perflink detect UTF-8 and GB18030."
            ) from None
        log.info("perflink.io: %s decoded as %s (input_encoding in the parameters)", label, codec)
        return text, codec
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    else:
        chosen = "utf-8-sig" if raw.startswith(_UTF8_BOM) else "utf-8"
        log.info("perflink.io: %s decoded as %s (valid UTF-8)", label, chosen)
        return text, chosen
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        pass
    else:
        _refuse_mojibake(raw, text, "gb18030", label, key)
        log.info(
            "perflink.io: %s decoded as gb18030: not UTF-8 (%s), valid GB18030 and no sign of "
            "Latin text read as Chinese",
            label, _bad_bytes(raw, utf8_error),
        )  # fmt: skip
        return text, "gb18030"
    from charset_normalizer import from_bytes

    matches = from_bytes(raw)
    best = matches.best()
    if best is not None and (best.bom or (best.chaos <= 0.05 and best.coherence >= 0.5)):
        text, chosen = str(best), str(best.encoding)
        if best.bom:
            log.info("perflink.io: %s decoded as %s (byte-order mark)", label, chosen)
            return text, chosen
        _refuse_mojibake(raw, text, chosen, label, key)
        others = [
            str(m.encoding) for m in matches
            if m is not best and m.chaos <= best.chaos and m.coherence >= best.coherence
        ]  # fmt: skip
        also = f"; {', '.join(others)} read it as well" if others else ""
        log.warning(
            "perflink.io: %s is neither UTF-8 nor GB18030; read as %s, charset-normalizer's "
            "best guess (no mess, language coherence %.2f%s)%s. If names look wrong, state the "
            "encoding in the review parameters (%s) or save the file as 'CSV UTF-8'.",
            label, chosen, best.coherence, also, _first_difference(raw, text, chosen, others),
            key.replace("<encoding>", others[0] if others else chosen),
            # for the report's index page (label report.index.note.encoding_guess)
            extra={"perflink_note": {
                "kind": "encoding_guess", "input": kind, "file": label, "encoding": chosen,
                "alternatives": others or ["-"],
            }},
        )  # fmt: skip
        return text, chosen
    guess = f" (charset-normalizer's best guess '{best.encoding}' is not reliable)" if best else ""
    raise InputError(
        f"{label}: cannot tell the text encoding. It is not UTF-8 ({_bad_bytes(raw, utf8_error)})"
        f" and not GBK/GB18030{guess}. Save the file again as 'CSV UTF-8' (Excel: File > Save "
        f"As > CSV UTF-8), or state its encoding in the review parameters ({key})."
    )


def _first_difference(raw: bytes, text: str, chosen: str, others: list[str]) -> str:
    """``"; line 4 reads 'Lefčvre' as cp1250 but 'Lefèvre' as cp1252"`` for the first line
    an equally good candidate reads differently, or ``""``."""
    lines = text.split("\n")
    for other in others:
        alt = raw.decode(other, errors="replace").lstrip("\ufeff").split("\n")
        for i, (a, b) in enumerate(zip(lines, alt, strict=False)):
            if a.rstrip("\r") != b.rstrip("\r"):
                a, b = _short(a.rstrip("\r")), _short(b.rstrip("\r"))
                return f"; line {i + 1} reads {a!r} as {chosen} but {b!r} as {other}"
    return ""


def _refuse_mojibake(raw: bytes, text: str, codec: str, label: str, key: str) -> None:
    """Raise :class:`InputError` if ``text`` (``raw`` read as ``codec``) looks garbled."""
    number = mojibake_line(text)
    if number is None:
        return
    shown = _short(str(_line(text, number)))
    alt = _short(bytes(_line(raw, number)).decode("cp1252", errors="replace"))
    raise InputError(
        f"{label}: the encoding is a guess and it looks wrong. The file is not UTF-8; read as "
        f"{codec.upper()} (Chinese), line {number} is {shown!r}: rare Chinese characters "
        f"between Latin letters, typical of Latin-1 / Windows-1252 text read as Chinese (as "
        f"Windows-1252 it reads {alt!r}). State the file's encoding in the review parameters "
        f"({key.replace('<encoding>', 'cp1252')}, or latin-1, ...), or save the file as "
        f"'CSV UTF-8'. If the Chinese text is right, write "
        f"{key.replace('<encoding>', codec)}."
    )


# --------------------------------------------------------------------------- CSV


def _sniff_delimiter(first_line: str, suffix: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] == 0:
        return "\t" if suffix in {".txt", ".tsv"} else ","
    return best


def _read_csv(path: Path, kind: str, stated: str | None = None) -> RawTable:
    with path.open("rb") as fh:  # read-only, bytes: decoding is ours
        raw = fh.read()
    text, encoding = decode_bytes(raw, path.name, encoding=stated, kind=kind)
    if text.startswith("\ufeff"):  # a BOM inside a UTF-16 or double-BOM file, or a stated codec
        text = text[1:]
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
