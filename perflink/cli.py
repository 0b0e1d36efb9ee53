"""Command line: ``perflink review``, ``check``, ``init`` and ``sample-data`` (thin wrappers)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from perflink.errors import PerflinkError, RunError

__all__ = ["main"]

SAMPLE_DIR = Path("data/sample")

_EPILOG = """\
exit codes:
  0    success: the report was published
  1    a notebook failed (the message names notebook, cell and exception;
       the executed notebook is kept under <out>/<quarter>/_failed/)
  2    bad parameters or inputs, a quarter the data does not cover, or a reports
       folder that cannot be written: fix what the message names (inputs are
       checked before any notebook starts)
  130  interrupted (Ctrl-C); the previous report is untouched, no kernel or
       temporary folder is left
"""


def _parser() -> argparse.ArgumentParser:
    from perflink.sample import EXAMPLES as sample_examples

    parser = argparse.ArgumentParser(
        prog="perflink",
        description="Quarterly review workbench: business data, financial results, performance.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rev = sub.add_parser(
        "review",
        help="run the review notebooks and publish reports/<quarter>/",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rev.add_argument(
        "--params",
        type=Path,
        help=f"review parameters YAML (default: generate the sample into {SAMPLE_DIR} and use it)",
    )
    rev.add_argument(
        "--out", type=Path, default=Path("reports"), help="reports folder (default: reports/)"
    )
    rev.add_argument("--tasks", help="comma-separated task names, e.g. mapping,kpi (default: all)")
    rev.add_argument("--jobs", type=int, help="notebooks run at the same time (default: CPU count)")
    rev.add_argument(
        "--language", choices=("zh", "en"), help="report language (default: from params)"
    )
    rev.add_argument(
        "--scope",
        metavar="ENTITY_ID",
        help="report on one subsidiary's subtree only, into reports/<quarter>-<ENTITY_ID>/ "
        "(default: from params, else the whole group)",
    )
    rev.add_argument("--notebooks", type=Path, help=argparse.SUPPRESS)

    chk = sub.add_parser(
        "check",
        help="check params, catalog and inputs against each other; list every problem",
        description="Check a review's params, catalog and inputs against each other and "
        "list every problem at once (file, row, column, key, value, what to do). Exit 0 "
        "with one OK line, or 2 with the list. perflink review runs the same check first.",
    )
    chk.add_argument("--params", type=Path, required=True, help="review parameters YAML")

    ini = sub.add_parser(
        "init",
        help="start a new company's folder: catalog skeleton, params, input tables, README",
    )
    ini.add_argument("dir", type=Path, metavar="DIR", help="new or empty folder to write")

    smp = sub.add_parser("sample-data", help="generate the bundled sample group into DIR")
    smp.add_argument("dir", type=Path, metavar="DIR")
    smp.add_argument(
        "--entities", type=int, default=42, help="number of units (departments; default: 42)"
    )
    smp.add_argument("--months", type=int, default=45, help="months of history (default: 45)")
    smp.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    smp.add_argument(
        "--end", default="2026-09", help="last month YYYY-MM (default: 2026-09, the 2026Q3 review)"
    )
    smp.add_argument("--clean", action="store_true", help="write clean data (no injected defects)")
    smp.add_argument("--raw", action="store_true", help="also write raw source-system extracts")
    smp.add_argument(
        "--example",
        choices=tuple(sample_examples),
        default=next(iter(sample_examples)),
        help="which company: "
        + "; ".join(f"{name} ({what})" for name, what in sample_examples.items()),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0, 1, 2 or 130)."""
    args = _parser().parse_args(argv)
    _setup_logging()
    _interruptible()
    try:
        if args.command == "sample-data":
            return _sample_data(args)
        if args.command == "check":
            return _check(args)
        if args.command == "init":
            return _init(args)
        return _review(args)
    except KeyboardInterrupt:
        print("perflink: interrupted", file=sys.stderr)
        return 130
    except RunError as exc:
        print(f"perflink: {exc}", file=sys.stderr)
        return 2 if getattr(exc, "user_error", False) else 1
    except PerflinkError as exc:
        print(f"perflink: {exc}", file=sys.stderr)
        return 2


def _review(args: argparse.Namespace) -> int:
    from perflink.runner import run_review

    params = args.params
    if params is None:
        params = SAMPLE_DIR / "params.yaml"
        if not params.is_file():
            _generate(SAMPLE_DIR)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    result = run_review(
        params,
        out_dir=args.out,
        tasks=tasks,
        jobs=args.jobs,
        language=args.language,
        scope=args.scope,
        notebooks_dir=args.notebooks,
    )
    name = result.report_dir.name
    print(f"perflink: report {name} written to {result.report_dir / 'index.html'}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from perflink.check import check_review

    logging.getLogger("perflink").setLevel(logging.WARNING)  # the result is the output
    result = check_review(args.params)
    if not result.ok:
        print(f"perflink check: {result.message()}", file=sys.stderr)
        return 2
    # One OK line on stdout (for scripts); warnings about defaults go to stderr.
    ok, *warnings = result.message().splitlines()
    print(f"perflink check: {ok}")
    for line in warnings:
        print(f"perflink check: {line}", file=sys.stderr)
    return 0


def _init(args: argparse.Namespace) -> int:
    from perflink._init_scaffold import scaffold

    out = scaffold(args.dir)
    print(f"perflink: new company folder written to {out}; next steps in {out / 'README.md'}")
    return 0


def _sample_data(args: argparse.Namespace) -> int:
    kwargs = {
        "entities": args.entities,
        "months": args.months,
        "seed": args.seed,
        "clean": args.clean,
        "end": args.end,
    }
    if args.raw:
        kwargs["raw"] = True
    if args.example != "sample":  # the default: the bundled group
        kwargs["example"] = args.example
    out = _generate(args.dir, **kwargs)
    print(f"perflink: sample data written to {out}")
    return 0


def _generate(out_dir: Path, **kwargs) -> Path:
    sample = importlib.import_module("perflink.sample")
    logging.getLogger("perflink").info("generating sample data into %s", out_dir)
    return sample.generate(out_dir, **kwargs)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (main() may be called more than once)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _interruptible() -> None:
    """Let SIGINT (Ctrl-C, ``kill -INT``) stop a run even when the parent started it with
    SIGINT ignored (a shell's background job, some test runners): an ignored signal is
    inherited, and Python then installs no KeyboardInterrupt handler, so the run would go on
    with its kernels and leave its temporary folder."""
    import signal
    import threading

    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _setup_logging() -> None:
    log = logging.getLogger("perflink")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        handler = _StderrHandler()
        fmt = "%(asctime)s %(name)s %(levelname)s %(message)s"
        handler.setFormatter(logging.Formatter(fmt, "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    # papermill logs the kernel's death etc.; our single message says it better.
    logging.getLogger("papermill").setLevel(logging.CRITICAL)
