"""Runner internals: manifest, HTML rendering, secret scan, atomic publish, failure archive."""

from __future__ import annotations

import hashlib
import html
import importlib
import json
import os
import platform
import shutil
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from perflink.errors import OutputError, RunError

_PACKAGES = ("pandas", "numpy", "statsmodels", "scikit-learn", "altair", "papermill")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """Python and package versions for the manifest."""
    from perflink._version import __version__

    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["perflink"] = __version__
    return out


def input_hashes(
    params: Any, *, inputs: Any = None
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """SHA-256 of every input file and every file under the catalog folder.

    Input entries keep the path as written in the params file (``${NAME}`` unresolved). A
    database input's content (header and cells as text, see
    :func:`perflink._io_sql.content_sha256`) was hashed when the run read it: pass those
    *inputs* (:class:`perflink.io.Inputs`) so it is not read again; without them it is read
    here. Its entry holds ``rows``, never the URL.
    """
    from perflink._io_sql import SqlSource, content_sha256, read_sql_raw

    written = params.redacted().get("inputs", {})
    entries: list[dict[str, Any]] = []
    for name, path in params.input_paths.items():
        entry: dict[str, Any] = {"name": name, "path": written.get(name)}
        table = getattr(inputs, name, None) if inputs is not None else None
        if isinstance(path, SqlSource) and table is not None and "sha256" in table.attrs:
            # rows as read: facts after the quarter may have been left out since
            entry.update(sha256=table.attrs["sha256"], rows=int(table.attrs["rows_read"]))
        elif isinstance(path, SqlSource):
            raw = read_sql_raw(path, name)
            entry.update(sha256=content_sha256(raw), rows=len(raw.frame))
        elif path.is_file():
            entry.update(sha256=sha256(path), bytes=path.stat().st_size)
        entries.append(entry)
    catalog = [
        {"path": p.relative_to(params.catalog_dir).as_posix(), "sha256": sha256(p)}
        for p in sorted(params.catalog_dir.rglob("*"))
        if p.is_file()
    ]
    return entries, catalog


def write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", "utf-8")


def render_task(executed: Path, out_html: Path, *, language: str, title: str) -> None:
    """Render an executed notebook with perflink.report, or plain nbconvert until it exists."""
    report = _report()
    if report is not None and hasattr(report, "render_task_html"):
        report.render_task_html(executed, out_html, language=language, title=title)
        return
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_filename(str(executed))
    out_html.write_text(body, encoding="utf-8")


def render_index(run: dict, out_html: Path, *, language: str) -> None:
    """Render index.html with perflink.report, or a plain list until it exists."""
    report = _report()
    if report is not None and hasattr(report, "render_index"):
        report.render_index(run, out_html, language=language)
        return
    rows = "".join(
        f'<li><a href="{html.escape(nb["html"])}">{html.escape(nb["title"])}</a></li>'
        for nb in run["tasks"]
        if nb["status"] == "ok"
    )
    out_html.write_text(
        f'<!doctype html><html lang="{language}"><meta charset="utf-8">'
        f"<title>{html.escape(run['quarter'])}</title><h1>{html.escape(run['quarter'])}</h1>"
        f"<ul>{rows}</ul></html>\n",
        encoding="utf-8",
    )


def _report():
    try:
        report = importlib.import_module("perflink.report")
    except ModuleNotFoundError as exc:
        if exc.name != "perflink.report":
            raise
        return None
    return report


def scan_secrets(root: Path, secrets: dict[str, str]) -> None:
    """Raise RunError if any resolved ``${NAME}`` value appears in a file under *root*.

    The message names the variable and file, never the value. Values shorter than
    4 characters are not scanned (they would match by chance).
    """
    needles: list[tuple[str, bytes]] = []
    for name, value in secrets.items():
        if len(value) < 4:
            continue
        forms = {value, json.dumps(value)[1:-1], html.escape(value)}
        needles += [(name, form.encode("utf-8")) for form in forms]
    if not needles:
        return
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for name, needle in needles:
            if needle in data:
                raise RunError(
                    f"the value of ${{{name}}} appeared in {path.relative_to(root).as_posix()}; "
                    "the report was not published. Remove whatever prints or saves it "
                    "(params values must never be displayed)."
                )


def stamp() -> str:
    """A file-name-safe local timestamp, e.g. ``20261122-100102-123456``."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def build_dir(out_dir: Path, name: str) -> Path:
    """Create the run's temporary build folder ``out_dir/.tmp-<name>-<pid>-<stamp>/``.

    Raises
    ------
    OutputError
        *out_dir* cannot be created or written (read-only, immutable, not a folder,
        permission denied); nothing is left behind.
    """
    tmp = out_dir / f".tmp-{name}-{os.getpid()}-{stamp()}"
    try:
        (tmp / "notebooks").mkdir(parents=True)
        (tmp / "tables").mkdir()
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(
            f"the reports folder {out_dir} cannot be written ({_reason(exc)}). Make it a "
            "writable folder for this user (check its permissions, 'lsattr -d' for the "
            "immutable flag, free space), or pass --out <another folder>. Nothing was run."
        ) from None
    return tmp


def publish(tmp: Path, final: Path) -> None:
    """Atomically put *tmp* in place of *final*, keeping *final*'s ``_failed`` history.

    The previous report stays intact until the final rename; if anything fails (or the
    run is interrupted) on the way, it is put back as it was.

    Raises
    ------
    OutputError
        The last report cannot be moved aside or replaced (read-only or immutable folder,
        permission denied); it is unchanged and *tmp* is left for the caller to remove.
    """
    try:
        _publish(tmp, final)
    except OSError as exc:
        raise OutputError(
            f"the last report {final} cannot be replaced ({_reason(exc)}); it is unchanged "
            f"and the new report was not published. Make {final.parent} and {final.name} "
            "writable for this user (check permissions, 'lsattr -d' for the immutable "
            "flag, a program holding files open), or pass --out <another folder>."
        ) from None


def _publish(tmp: Path, final: Path) -> None:
    if not final.exists():
        os.replace(tmp, final)
        return
    backup = final.with_name(f".old-{final.name}-{os.getpid()}-{stamp()}")
    os.replace(final, backup)
    try:
        if (backup / "_failed").is_dir():
            os.replace(backup / "_failed", tmp / "_failed")
        os.replace(tmp, final)
    except BaseException:
        if (tmp / "_failed").is_dir() and not (backup / "_failed").exists():
            os.replace(tmp / "_failed", backup / "_failed")
        os.replace(backup, final)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def archive_failure(tmp: Path, final: Path, failed: list[str], manifest: dict) -> Path:
    """Move failed executed notebooks to ``final/_failed/<timestamp>/``; return that folder."""
    dest = final / "_failed" / stamp()
    dest.mkdir(parents=True)
    for name in failed:
        src = tmp / "notebooks" / name
        if src.is_file():
            shutil.copy2(src, dest / name)
    write_json(manifest, dest / "manifest.json")
    return dest
