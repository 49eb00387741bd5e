"""Command line: ``python -m fg_analysis <command> ...``.

Commands:

* ``book`` — execute every notebook and build the book (:mod:`fg_analysis.publish.book`);
* ``records`` — list the stored results of ``results/published`` with their wall times, devices and commits;
* ``refresh-checks`` — store the outputs of ``# NBVAL_CHECK_OUTPUT`` cells in notebooks/
(:mod:`fg_analysis.publish.book`);
* ``rq1``, ``rq2``, ``rq3``, ``bench``, ``lr-search`` — handed over with their arguments to ``main(argv)`` of the
  modules in :data:`DELEGATED` (see their own ``--help``); their errors are one line (:mod:`fg_analysis.runs.cli`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fg_analysis.experiments.stored import stored_runs_markdown
from fg_analysis.publish import book
from fg_analysis.runs.cache import ResultsCache, stored_summary
from fg_analysis.runs.cli import run_main
from fg_analysis.runs.paths import PUBLISHED

# Commands implemented elsewhere: name -> (module with main(argv) -> int | None, one-line help).
DELEGATED = {
    "rq1": ("fg_analysis.experiments.approximation", "run the RQ1 approximation sweep (experiments.approximation)"),
    "rq2": ("fg_analysis.experiments.optimization", "run the RQ2 closed-form optimization (experiments.optimization)"),
    "rq3": ("fg_analysis.experiments.rq3", "run the RQ3 network experiments (fg_analysis.experiments.rq3)"),
    "bench": ("fg_analysis.bench.cli", "measure the time and memory of forward gradients (fg_analysis.bench)"),
    "gpu-run": ("fg_analysis.experiments.gpu_run", "the prepared device run: CUDA tests, benchmark, RQ1 grid, RQ3 "
                "units, one archive (fg_analysis.experiments.gpu_run)"),
    "lr-search": ("fg_analysis.experiments.lr_search",
                  "search learning rates on Optuna; promote them into lrs/searched.csv "
                  "(fg_analysis.experiments.lr_search)"),
}


def _delegate(name: str, argv: list[str]) -> int:

    return run_main(importlib.import_module(DELEGATED[name][0]).main, argv)


def _records_command(args: argparse.Namespace) -> int:

    if args.presets:

        print(stored_runs_markdown(ResultsCache(args.root or PUBLISHED, published=None)))
        return 0
    print(stored_summary(args.root or PUBLISHED).to_markdown(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(prog="python -m fg_analysis",
                                     description="Multi-tangent forward gradients: experiments and the book.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    book_parser = commands.add_parser(
        "book", help="execute notebooks/ into book/ and build _build/html strictly",
        description="Execute every notebook of book/_toc.yml with papermill, write book/status.md and run "
                    "`jupyter-book build book/ --all -W --keep-going`. Stops at the first failing notebook.")
    book.add_book_arguments(book_parser)
    book_parser.set_defaults(func=book.book_command)

    refresh_parser = commands.add_parser(
        "refresh-checks", help="execute notebooks and keep only the outputs of # NBVAL_CHECK_OUTPUT cells",
        description="Execute source notebooks on their defaults and write back only the outputs of cells "
                    "marked # NBVAL_CHECK_OUTPUT (nbval compares those); all other outputs are stripped.")
    book.add_refresh_arguments(refresh_parser)
    refresh_parser.set_defaults(func=book.refresh_command)

    records_parser = commands.add_parser(
        "records", help="list the stored results (results/published): units, wall time, devices, commits, dates",
        description="One line per kind of stored result and device: units, summed wall time, the longest unit, "
                    "the commits and dates they were saved on.")
    records_parser.add_argument("--root", default=None, help="a results folder (default results/published)")
    records_parser.add_argument("--presets", action="store_true",
                                help="one line per stored preset (the README's Stored runs table): units stored "
                                     "of all, measured time, command (fg_analysis.experiments.stored)")
    records_parser.set_defaults(func=_records_command)

    for name, (_, help_text) in DELEGATED.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
