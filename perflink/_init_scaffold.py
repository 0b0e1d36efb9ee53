"""``perflink init DIR``: a new company's folder to start from (private to :mod:`perflink.cli`).

The folder holds a commented catalog skeleton (metrics, mappings, rules, policy) whose few
example entries load, a ``params.yaml`` naming those metrics in its option blocks, the six
input tables with their headers and one example row each, and a README with the next steps.
The files are the templates in ``perflink/data/scaffold/``, copied as they are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from perflink.errors import OutputError

__all__ = ["SCAFFOLD_FILES", "scaffold"]

#: The files :func:`scaffold` writes, relative to the new folder.
SCAFFOLD_FILES: tuple[str, ...] = (
    "README.md",
    "params.yaml",
    "catalog/metrics.yaml",
    "catalog/mappings.yaml",
    "catalog/rules.yaml",
    "catalog/policy.yaml",
    "entities.csv",
    "facts.csv",
    "targets.csv",
    "schemes.csv",
    "adjustments.csv",
    "bonus.csv",
)


def scaffold(folder: str | Path) -> Path:
    """Write a new company's review folder (see the module docstring).

    Parameters
    ----------
    folder : str or Path
        A folder that does not exist yet, or an empty one.

    Returns
    -------
    Path
        The folder, absolute.

    Raises
    ------
    OutputError
        ``folder`` is a file, is not empty (nothing is overwritten), or cannot be written.
    """
    out = Path(folder).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "a file" if not out.is_dir() else "not empty"
        raise OutputError(
            f"init: {out} is {what}; perflink init writes a new company's folder and never "
            "overwrites files. Name a new or empty folder."
        )
    templates = resources.files("perflink") / "data" / "scaffold"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written next to the target and renamed into place: an interrupted init leaves
        # no half-written folder.
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            for rel in SCAFFOLD_FILES:
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes((templates / rel).read_bytes())
            os.chmod(tmp, 0o777 & ~_umask())
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise OutputError(
            f"init: {out} cannot be written ({exc.strerror}); choose a folder you can write to."
        ) from None
    return out


def _umask() -> int:
    # mkdtemp makes a 0700 folder; the company folder gets the usual permissions instead.
    mask = os.umask(0)
    os.umask(mask)
    return mask
