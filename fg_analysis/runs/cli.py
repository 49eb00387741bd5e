"""The experiments' command lines: one parser shape, one-line errors, the shared options.

Every experiment command (``python -m fg_analysis rq1|rq2|rq3|bench ...``) is built from :func:`experiment_parser`
and reads its options through :func:`resolve_common`, so a bad device, thread count or flag is one line on
standard error naming the flag, exit status 2, and no traceback:

>>> parser = experiment_parser("rq1", "RQ1", presets=("quick", "paper"))
>>> args = parser.parse_args(["--preset", "paper", "--threads", "1"])
>>> args.preset, args.threads, args.publish
('paper', 1, False)
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import NoReturn

import torch

from fg_analysis.runs import sweep
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.env import git_commit, resolve_device
from fg_analysis.runs.paths import PUBLISHED
from fg_analysis.runs.sweep import executor_from

__all__ = ["OneLineParser", "experiment_parser", "positive_count", "resolve_common", "run_main", "run_sweep"]


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``prog: error: ...``) without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_count(text: str) -> int:
    """An argparse type: a positive integer, or a one-line error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def experiment_parser(name: str, description: str, *, presets: tuple[str, ...]) -> OneLineParser:
    """The parser of one experiment command with the shared options: ``--preset``, ``--device``, ``--seed``,
    ``--threads``, ``--publish``, ``--no-progress`` and ``--executor``."""
    parser = OneLineParser(prog=f"python -m fg_analysis {name}", description=description)
    parser.add_argument("--preset", default=presets[0], choices=presets, help=f"default {presets[0]}")
    parser.add_argument("--device", default="cpu", help="'cpu' (default), 'cuda', 'cuda:N' or 'auto'")
    parser.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--threads", type=positive_count, default=1,
                        help="torch threads on a CPU (default 1: these small kernels run fastest on one thread)")
    parser.add_argument("--publish", action="store_true",
                        help="store results in results/published (committed, read by the book), not results/cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    sweep.add_executor_argument(parser)
    return parser


def resolve_common(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """``(device, cache)`` from the parsed shared options; a bad device is a one-line parser error."""
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        parser.error(f"--device: {error}")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    git_commit()  # the records name the code this run starts with
    cache = ResultsCache(PUBLISHED, published=None) if args.publish else ResultsCache()
    return device, cache


def run_sweep(run, config, *, args: argparse.Namespace, device, cache, label: str, units: int):
    """``run(config, ...)`` on the executor of ``--executor``, then one line: how many units, rows and seconds,
    on which device and into which folder. Returns the frame."""
    start = time.perf_counter()
    with executor_from(args.executor) as executor:
        frame = run(config, device=str(device), cache=cache, progress=not args.no_progress, executor=executor)
    print(f"{label} {args.preset}: {units} units, {len(frame)} rows, {time.perf_counter() - start:.0f} s on {device} "
          f"-> {cache.root}")
    return frame


def run_main(main, argv: list[str] | None = None) -> int:
    """Run an experiment's ``main(argv)``; an ``OSError`` (e.g. an unwritable results folder) or a
    ``ValueError`` from bad settings is one line on standard error and exit status 2."""
    try:
        return int(main(argv) or 0)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
