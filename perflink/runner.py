"""Run a quarterly review: execute the task notebooks and publish ``reports/<quarter>/``.

A review scoped to one entity (``scope`` in the params or ``scope=``) is published to
``reports/<quarter>-<scope>/`` instead, so it never overwrites the group's report.

The report is built in a temporary folder inside ``out_dir`` and renamed into
place only when every notebook succeeded, so the last good report is never
half-overwritten. Failed executed notebooks go to ``reports/<quarter>/_failed/``.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from perflink import _review_inputs
from perflink import _runner_exec as _ex
from perflink import _runner_output as _out
from perflink.errors import PerflinkError, RunError
from perflink.execution import release_memory
from perflink.params import load_params
from perflink.review import _scope_params, subtree

__all__ = ["RunResult", "run_review"]

logger = logging.getLogger("perflink")


@dataclass(frozen=True)
class RunResult:
    """Outcome of :func:`run_review`.

    Attributes
    ----------
    quarter : str
        The review quarter, e.g. ``"2026Q3"``.
    status : str
        ``"ok"`` (report published) or ``"failed"``.
    report_dir : Path
        ``out_dir/<quarter>`` (``out_dir/<quarter>-<scope>`` for a scoped review): the
        published report (or the last good one).
    failed_dir : Path or None
        Where the failed executed notebooks were kept, if the run failed.
    tasks : tuple of TaskOutcome
        One per notebook, in run order (status, start/end times, error).
    manifest : dict
        The run manifest (also written to ``manifest.json``).
    wall_s : float
        Wall-clock seconds for the whole run.
    """

    quarter: str
    status: str
    report_dir: Path
    failed_dir: Path | None
    tasks: tuple[_ex.TaskOutcome, ...]
    manifest: dict
    wall_s: float

    def to_frame(self):
        """One row per notebook: task, notebook, status, started_at, finished_at, duration_s, error."""
        import pandas as pd

        cols = ["task", "notebook", "status", "started_at", "finished_at", "duration_s", "error"]
        return pd.DataFrame([{c: getattr(t, c) for c in cols} for t in self.tasks], columns=cols)

    def chart(self):
        """Timeline of the notebooks (altair bar from start to end, coloured by status)."""
        import altair as alt

        return (
            alt.Chart(self.to_frame().dropna(subset=["started_at"]))
            .mark_bar()
            .encode(
                x=alt.X("started_at:T", title="start"),
                x2="finished_at:T",
                y=alt.Y("task:N", sort=None, title=None),
                color="status:N",
                tooltip=["task", "notebook", "status", "duration_s"],
            )
        )

    def _repr_html_(self) -> str:
        head = f"<p><b>Review {self.quarter}</b>: {self.status} in {self.wall_s:.1f} s, {self.report_dir}</p>"
        return head + self.to_frame().to_html(index=False)


def run_review(
    params_path: Path | None = None,
    *,
    out_dir: Path = Path("reports"),
    tasks: Sequence[str] | None = None,
    jobs: int | None = None,
    language: str | None = None,
    scope: str | None = None,
    notebooks_dir: Path | None = None,
) -> RunResult:
    """Execute the review's task notebooks and publish the report.

    Parameters
    ----------
    params_path : Path, optional
        Review parameters YAML; default ``data/sample/params.yaml``.
    out_dir : Path
        Reports folder; the report goes to ``out_dir/<quarter>/`` (index.html,
        ``<task>.html``, notebooks/, tables/, manifest.json).
    tasks : sequence of str, optional
        Task names to run (default: the params' ``tasks``). ``summary`` runs last.
    jobs : int, optional
        Notebooks run at the same time (default: params' ``jobs``, else CPU count).
    language : {"zh", "en"}, optional
        Report language (default: the params' ``language``).
    scope : str, optional
        Entity id (a subsidiary, or the group) the report is restricted to (default:
        the params' ``scope``, else the whole group). Every task then sees only that
        entity's subtree, and the report goes to ``out_dir/<quarter>-<scope>/``.
    notebooks_dir : Path, optional
        Folder with ``NN_<task>.ipynb`` notebooks (default ``./notebooks``, else the
        one next to the perflink package).

    Returns
    -------
    RunResult
        ``status == "ok"``; the report is published.

    Raises
    ------
    ParamsError
        Bad params file, unknown task, missing input file, unknown scope entity
        (nothing was run).
    RunError
        A notebook failed (message names notebook, cell and exception; ``.result``
        holds the RunResult and ``.user_error`` is True when the notebook raised a
        perflink input error), or a secret value was found in the output.
    """
    t0 = time.perf_counter()
    started = datetime.now().astimezone()
    overrides: dict = {}
    if language is not None:
        overrides["language"] = language
    if jobs is not None:
        overrides["jobs"] = jobs
    if tasks is not None:
        overrides["tasks"] = list(tasks)
    if scope:
        overrides["scope"] = scope
    params = load_params(params_path or Path("data/sample/params.yaml"), overrides=overrides)
    quarter = params.quarter
    nb_dir = _notebooks_dir(notebooks_dir)
    available = _ex.find_notebooks(nb_dir)
    order = _ex.select_tasks(list(params.tasks), available, nb_dir)
    for task in order:
        _ex.check_parameters_cell(available[task])
    # Every input is read and checked here, once, before any kernel starts: a bad input
    # is one message within seconds, and the notebooks read the snapshot written below.
    inputs, notes = _read_inputs(params)
    if params.scope is not None:
        params = _scope_params(params, inputs.entities, subtree(inputs.entities, params.scope))

    out_dir = Path(out_dir).resolve()
    final = out_dir / params.report_name
    tmp = _out.build_dir(out_dir, params.report_name)
    try:
        snapshot = tmp / _SNAPSHOT
        _review_inputs.write_snapshot(inputs, notes, snapshot, quarter=params.quarter)
        # the kernels read the snapshot: hash what the manifest needs and let the tables go,
        # so this process does not hold a copy of every input while the notebooks run
        hashes = _out.input_hashes(params, inputs=inputs)
        del inputs
        release_memory()  # else pyarrow's pool and malloc keep the pages
        outcomes = _run_all(
            params, order, available, tmp, jobs=params.jobs or os.cpu_count() or 1,
            snapshot=snapshot,
        )  # fmt: skip
        shutil.rmtree(snapshot)  # never part of the report
        manifest = _manifest(params, outcomes, available, started, t0, hashes=hashes, notes=notes)
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            names = [o.notebook for o in failed]
            leak = ""
            try:
                _out.scan_secrets(tmp / "notebooks", params.secret_values)
            except RunError as exc:  # never keep a notebook that shows a secret
                names, leak = [], f"\nnotebooks not kept: {exc}"
            try:
                failed_dir = _out.archive_failure(tmp, final, names, manifest)
                kept = f"\nrun record kept in {failed_dir}"
            except OSError as exc:  # an unwritable report folder must not hide the failure
                failed_dir = None
                kept = f"\nrun record not kept: {final} cannot be written ({exc.strerror})"
            result = RunResult(quarter, "failed", final, failed_dir, outcomes, manifest, _wall(t0))
            lines = [o.error or "" for o in failed]
            msg = "\n".join(lines) + f"{kept}{leak}"
            err = RunError(msg)
            err.result = result  # type: ignore[attr-defined]
            err.user_error = all(o.user_error for o in failed)  # type: ignore[attr-defined]
            raise err
        _out.write_json(manifest, tmp / "manifest.json")  # each page was rendered by _run_all
        _out.render_index(manifest, tmp / "index.html", language=params.language)
        _out.scan_secrets(tmp, params.secret_values)
        _out.publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("review %s published to %s", params.report_name, final)
    return RunResult(quarter, "ok", final, None, outcomes, manifest, _wall(t0))


#: The snapshot's folder inside the build folder (removed before anything is published).
_SNAPSHOT = ".inputs"


def _read_inputs(params):
    """Catalog and inputs of the review, checked once by :func:`perflink.check.run_checks`.

    The same checks as ``perflink check``: every problem (catalog, each input table,
    cross-references, options naming metrics or entities, coverage, scope) in one error.
    A scope is applied by the caller to the entities read here; options naming entities
    outside it are then dropped, so the manifest's params name none of them.
    """
    from perflink.check import run_checks

    result = run_checks(params)
    result.raise_if_problems()
    for warning in result.warnings:
        logger.warning(warning)
    logger.info("inputs read and checked in %.1f s", result.seconds)
    return result.inputs, result.notes


def _wall(t0: float) -> float:
    return round(time.perf_counter() - t0, 3)


def _notebooks_dir(given: Path | None) -> Path:
    if given is not None:
        return Path(given).resolve()
    here = Path("notebooks").resolve()
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "notebooks"


def _run_all(params, order: list[str], available: dict, tmp: Path, *, jobs: int, snapshot: Path):
    """Run every task but the last in parallel, then ``summary`` if all went well."""
    kernel = _ex.pick_kernel(available[order[0]])
    first = [t for t in order if t != _ex.LAST_TASK]
    env = _ex.kernel_env(at_once=min(jobs, len(first)) or 1)
    base = {
        "params_path": str(params.source),
        "language": params.language,
        "scope": params.scope or "",
        "tables_dir": str(tmp / "tables"),
        "quarter": params.quarter,
        "snapshot_dir": str(snapshot),
    }

    # Pages render on a thread of their own, one at a time (nbconvert's exporters share
    # state), each as soon as its notebook ends: rendered in the notebook's slot, a page
    # held the next notebook back (2 s on the sample: the forecast started after the
    # mapping page, not the mapping notebook); rendered after the last notebook, the pages
    # added 8 s to a 2,000-unit review.
    renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perflink-render")
    pages: list = []

    def render(task: str, executed: Path) -> None:
        title = _title(task, available[task], params.language)
        _out.render_task(executed, tmp / f"{task}.html", language=params.language, title=title)
        release_memory()  # a page's notebook and HTML: 60-100 MB at 2,000 units

    def run(task: str) -> _ex.TaskOutcome:
        src = available[task]
        executed = tmp / "notebooks" / src.name
        o = _ex.execute(task, src, executed, parameters=base, kernel=kernel, env=env)
        if o.status == "ok":
            pages.append(renderer.submit(render, task, executed))
        return replace(o, error=_scrub(o.error, params.secret_values)) if o.error else o

    last = [t for t in order if t == _ex.LAST_TASK]
    progress = _Progress(len(order))
    outcomes: dict[str, _ex.TaskOutcome] = {}
    _ex.allow_kernels()
    try:
        _run_parallel(run, first, jobs, progress, outcomes)
        for task in last:
            if any(o.status != "ok" for o in outcomes.values()):
                outcomes[task] = _ex.TaskOutcome(task, available[task].name, "skipped")
                continue
            _run_parallel(run, [task], 1, progress, outcomes)
        for page in pages:
            page.result()  # a page that failed to render fails the run
    finally:
        progress.close()
        # never leave a page being written into a build folder about to be removed
        renderer.shutdown(wait=True, cancel_futures=True)
    return tuple(outcomes[t] for t in order)


#: Seconds an interrupted run waits for its notebooks to end after killing their kernels.
_STOP_TIMEOUT_S = 30.0


def _run_parallel(run, tasks: list[str], jobs: int, progress, outcomes: dict) -> None:
    """Run *tasks* in worker threads; on Ctrl-C or any error, kill their kernels first.

    The main thread only waits, so Ctrl-C always lands here. Kernels run in their own
    sessions and do not get the terminal's signal: they are killed (with any worker
    processes they started), and the run waits for the threads to see it before the build
    folder is removed, so nothing is written into a folder being deleted.
    """
    if not tasks:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(tasks))))
    futures = {pool.submit(run, t): t for t in tasks}
    try:
        for fut in as_completed(futures):
            outcomes[futures[fut]] = o = fut.result()
            progress.done(o)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _stop(set(futures))
        raise
    pool.shutdown()


def _stop(futures: set) -> None:
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    pending = {f for f in futures if not f.done()}
    while pending and time.monotonic() < deadline:
        _ex.stop_kernels()
        try:
            pending = wait(pending, timeout=0.5).not_done
        except KeyboardInterrupt:  # a second Ctrl-C: still clean up first
            continue
    _ex.stop_kernels()


def _scrub(text: str, secrets: dict[str, str]) -> str:
    for name, value in secrets.items():
        if len(value) >= 4:
            text = text.replace(value, f"${{{name}}}")
    return text


def _manifest(
    params, outcomes, available, started: datetime, t0: float, *, hashes=None, notes=()
) -> dict:
    """The run record: what ran, on which inputs (hashes), with which packages, how it went.

    ``hashes`` are :func:`perflink._runner_output.input_hashes`' (computed here when None).
    ``input_notes`` are the notes about the inputs (rows left out, extra columns, the
    loaders' warnings), each with its text in both report languages for the index page.
    """
    hashes, catalog = hashes or _out.input_hashes(params)
    return {
        "schema_version": 1,
        "quarter": params.quarter,
        "language": params.language,
        "scope": params.scope,
        "status": "ok" if all(o.status == "ok" for o in outcomes) else "failed",
        "created_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "duration_s": _wall(t0),
        "params_file": {"path": str(params.source), "sha256": _out.sha256(params.source)},
        "params": params.redacted(),
        "inputs": hashes,
        "input_notes": [_note_text(n) for n in notes],
        "catalog": catalog,
        "versions": _out.versions(),
        "tasks": [
            {
                "name": o.task,
                "notebook": f"notebooks/{o.notebook}",
                "html": f"{o.task}.html",
                "title_key": f"report.task.{o.task}",
                "title": _title(o.task, available[o.task], params.language),
                "status": o.status,
                "started_at": o.started_at.isoformat() if o.started_at else None,
                "finished_at": o.finished_at.isoformat() if o.finished_at else None,
                "duration_s": o.duration_s,
                "error": o.error,
            }
            for o in outcomes
        ],
    }


def _note_text(note: dict) -> dict:
    """The note with ``text``: zh and en sentences for the index page (labels when known)."""
    from perflink.labels import t

    fields = {
        k: ", ".join(map(str, v)) if isinstance(v, list) else v
        for k, v in note.items()
        if k not in ("kind", "message", "text")
    }
    text = {}
    for lang in ("zh", "en"):
        try:
            text[lang] = t(f"report.index.note.{note.get('kind')}", lang, **fields)
        except (PerflinkError, KeyError):  # a warning without a label: as it was logged
            text[lang] = str(note.get("message", ""))
    return {**note, "text": text}


def _title(task: str, notebook: Path, language: str) -> str:
    """Task title from the label table (``report.task.<task>``), else the notebook heading."""
    try:
        from perflink.labels import t

        return t(f"report.task.{task}", language)
    except PerflinkError:  # no label (yet) for this task: the notebook's own heading will do
        return _ex.notebook_title(notebook, task)


class _Progress:
    """A single live line on a terminal; plain log lines otherwise."""

    def __init__(self, total: int) -> None:
        self._bar = None
        if _ex.is_tty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="notebook", leave=True, dynamic_ncols=True)

    def done(self, o: _ex.TaskOutcome) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"{o.task} {o.status} {o.duration_s:.1f} s")
            self._bar.update(1)
        elif o.status == "ok":
            logger.info("task %s finished in %.1f s", o.task, o.duration_s)
        else:
            logger.error("task %s failed after %.1f s", o.task, o.duration_s)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
