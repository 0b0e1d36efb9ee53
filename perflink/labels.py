"""Human-facing words in Chinese and English: the label table.

Labels live in ``perflink/data/labels/<module>.yaml``, one file per module so contributors do
not edit the same file. Each key maps to ``{zh: ..., en: ...}``; both languages are required.
Keys are dotted and start with the file's stem by convention (``report.index.title`` lives in
``report.yaml``), which is how an error message knows which file to point at.

The current report language is set once per notebook by :func:`perflink.report.configure`
(which calls :func:`set_language`); :func:`t` uses it when ``lang`` is not given.
"""

from __future__ import annotations

import functools
import re
import string
from pathlib import Path

import pandas as pd
import yaml

from perflink.errors import LabelError, ParamsError

__all__ = [
    "LANGUAGES",
    "LabelError",
    "column_label",
    "get_language",
    "label_table",
    "set_language",
    "spaced",
    "t",
    "value_label",
]

LANGUAGES: tuple[str, ...] = ("zh", "en")
"""Supported report languages (ISO 639-1)."""

LABELS_DIR = Path(__file__).parent / "data" / "labels"

_current = {"lang": "zh"}


def set_language(lang: str) -> None:
    """Set the default language used by :func:`t` (``"zh"`` or ``"en"``).

    Raises
    ------
    ParamsError
        If ``lang`` is not one of :data:`LANGUAGES`.
    """
    _current["lang"] = _check_lang(lang)


def get_language() -> str:
    """Return the current default language (``"zh"`` until :func:`set_language` is called)."""
    return _current["lang"]


def _check_lang(lang: str | None) -> str:
    if lang is None:
        return _current["lang"]
    if lang not in LANGUAGES:
        raise ParamsError(
            f"language: {lang!r} is not supported; use one of {', '.join(LANGUAGES)} "
            "(set `language:` in the review parameters file)."
        )
    return lang


#: libyaml's safe loader when PyYAML was built with it (every kernel reads the label files:
#: about 0.13 s less each), else the pure-Python one; the same labels either way.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _load(labels_dir: Path = LABELS_DIR) -> dict[str, tuple[dict[str, str], str]]:
    """Read every ``*.yaml`` label file: key -> ({lang: text}, file name)."""
    table: dict[str, tuple[dict[str, str], str]] = {}
    for path in sorted(labels_dir.glob("*.yaml")):
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
        except yaml.YAMLError as exc:
            raise LabelError(f"{path}: not valid YAML ({exc}). Fix the file syntax.") from None
        if not isinstance(data, dict):
            raise LabelError(f"{path}: expected a mapping of key -> {{zh: ..., en: ...}}.")
        for key, entry in data.items():
            where = f"{path.name}, key {key!r}"
            if not isinstance(entry, dict):
                raise LabelError(f"{where}: expected {{zh: ..., en: ...}}, got {entry!r}.")
            missing = [lang for lang in LANGUAGES if not isinstance(entry.get(lang), str)]
            if missing:
                raise LabelError(f"{where}: missing text for language(s) {', '.join(missing)}.")
            if key in table:
                raise LabelError(
                    f"label key {key!r} is defined in both {table[key][1]} and {path.name}; "
                    "keep it in one file (the one named after the module that uses it)."
                )
            table[str(key)] = ({lang: entry[lang] for lang in LANGUAGES}, path.name)
    return table


def _suggest_file(key: str) -> str:
    stem = key.split(".", 1)[0]
    return f"perflink/data/labels/{stem}.yaml"


def t(key: str, lang: str | None = None, **fmt: object) -> str:
    """Return the label ``key`` in ``lang`` (default: the current language).

    Parameters
    ----------
    key
        Dotted label key, e.g. ``"report.index.title"``.
    lang
        ``"zh"`` or ``"en"``; ``None`` uses :func:`get_language`.
    **fmt
        Values for ``{name}`` fields in the label text (``str.format`` syntax).

    Raises
    ------
    LabelError
        If the key is not in any label file, or a format field is not supplied.
    ParamsError
        If ``lang`` is not supported.
    """
    lang = _check_lang(lang)
    table = _load()
    if key not in table:
        raise LabelError(
            f"label key {key!r} not found; add it to {_suggest_file(key)} as "
            f"`{key}: {{zh: ..., en: ...}}`."
        )
    texts, file = table[key]
    text = texts[lang]
    if not fmt and not _fields(text):
        return text
    try:
        return text.format(**fmt)
    except (KeyError, IndexError) as exc:
        raise LabelError(
            f"label {key!r} ({file}, {lang}) needs format value {exc}; "
            f"got {sorted(fmt)}. Pass it as t({key!r}, {exc.args[0]}=...)."
        ) from None


@functools.cache
def _fields(text: str) -> tuple[str, ...]:
    return tuple(f for _, f, _, _ in string.Formatter().parse(text) if f is not None)


def column_label(col: str, lang: str | None = None) -> str:
    """Localised header for a standard column name; unknown columns are returned unchanged.

    Looks up ``report.col.<col>`` (e.g. ``entity_id`` -> 单位编号 / Entity).
    """
    lang = _check_lang(lang)
    entry = _load().get(f"report.col.{col}")
    return entry[0][lang] if entry else str(col)


def value_label(col: str, value: object, lang: str | None = None) -> str:
    """Localised text for a coded value of a standard column, or ``str(value)`` if unknown.

    Looks up ``report.value.<col>.<value>``, e.g. ``value_label("severity", "high")`` -> 高.
    """
    lang = _check_lang(lang)
    entry = _load().get(f"report.value.{col}.{value}")
    return entry[0][lang] if entry else str(value)


def label_table() -> pd.DataFrame:
    """All labels as a table with columns ``key``, ``file``, ``zh``, ``en`` (for translators)."""
    rows = [{"key": k, "file": f, **texts} for k, (texts, f) in sorted(_load().items())]
    return pd.DataFrame(rows, columns=["key", "file", *LANGUAGES])


# a Latin word next to a Chinese character (an English catalog's "Net sales调整")
_CJK_LATIN = re.compile(r"(?<=[\u4e00-\u9fff])(?=[A-Za-z])|(?<=[A-Za-z])(?=[\u4e00-\u9fff])")


def spaced(text: object, lang: str) -> object:
    """A zh sentence with a space between Chinese and a Latin name (``Net sales 调整``), as
    Chinese typesetting separates them; other text and languages unchanged."""
    if lang != "zh" or not isinstance(text, str):
        return text
    return _CJK_LATIN.sub(" ", text)
