"""Sweeps on any executor: in-process (the default), a local process pool, or MPI ranks through mpi4py.futures.

Every experiment of the package is a list of independent units (frozen dataclass configs), each cached on its own
by :class:`fg_analysis.runs.cache.ResultsCache` under a key of schema, config and device type, written atomically. This
module runs such a list on any :class:`concurrent.futures.Executor`:

* ``inline`` (default): the units run one after another in this process, exactly as
  :meth:`ResultsCache.sweep <fg_analysis.runs.cache.ResultsCache.sweep>` always did (what ``make book`` uses);
* ``processes[:N]``: a local pool of N worker processes (default: the CPUs this process may use), started with
  ``spawn`` (no forked torch state);
* ``mpi``: :class:`mpi4py.futures.MPIPoolExecutor` over the ranks of an MPI job started as
  ``mpiexec -n N python -m mpi4py.futures -m fg_analysis ...`` (or ``srun ... python -m mpi4py.futures ...``):
  rank 0 runs the sweep, ranks 1..N-1 compute.

What is shared is the results folder (``results/cache`` or ``$FG_RESULTS``; a shared file system on a cluster):
each worker computes its unit and stores it there itself (atomically), so a sweep that is killed keeps every
finished unit, a rerun skips them, and several sweeps may use one folder. Units already stored are read in the
calling process and never sent to a worker.

With an executor, ``compute`` and the configs travel to the workers by pickle: ``compute`` must be a module-level
function or a :func:`functools.partial` of one (``partial(run_unit, device="cuda")``), never a lambda or a local
function (a one-line :class:`SweepError` says so before anything runs).

Each worker places itself before its first unit (:func:`place_worker`): on a CPU one torch thread
(``$FG_WORKER_THREADS`` overrides), on CUDA the GPU ``cuda:<rank % count>`` (``torch.cuda.set_device``, so a
``compute`` bound to ``device="cuda"`` lands there), ``rank`` being the node-local MPI rank when the launcher
gives one (MPICH, Open MPI, SLURM), else the MPI world rank, else the pool worker's index. Where every computed
unit ran is recorded next to its record, in ``placement.json`` (host, pid, rank, device, threads, executor).

Failures: a unit whose ``compute`` raises, or whose worker dies, is a failure of that unit only: the sweep goes on
with the others (a dead process pool fails the units still pending), then raises one :class:`SweepError` naming
the failed units, after every finished unit is stored. An unknown executor name, ``mpi`` without mpi4py or
outside ``mpiexec``, and a results folder that is not writable are one-line :class:`SweepError` messages before
anything is computed.

For command lines: :func:`add_executor_argument` adds ``--executor SPEC`` and :func:`executor_from` turns the
spec into an executor (a context manager; ``None`` for inline)::

    with executor_from(args.executor) as executor:
        frame = sweep(cache, units, partial(run_unit, device=device), device=device, executor=executor)

``python -m fg_analysis.runs.sweep probe --executor SPEC`` runs a tiny sweep of :class:`Probe` units (a seeded torch
computation) and prints where each unit ran: a check of an MPI or cluster set-up, and the tests' sweep.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import contextlib
import dataclasses
import json
import multiprocessing
import os
import pickle
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from fg_analysis.runs.cache import ResultsCache, atomic_write, with_config_columns
from fg_analysis.runs.env import resolve_device

__all__ = ["EXECUTOR_HELP", "InlineExecutor", "Probe", "SweepError", "add_executor_argument", "check_writable",
           "executor_from", "executor_kind", "parse_executor", "place_worker", "probe", "run_on_worker",
           "run_units", "worker_rank", "worker_count"]

EXECUTOR_HELP = ("where the units run: 'inline' (default: one after another in this process), 'processes[:N]' "
                 "(a local pool of N processes; default N: the usable CPUs) or 'mpi' (mpi4py.futures over the "
                 "ranks of `mpiexec -n N python -m mpi4py.futures -m fg_analysis ...`; rank 0 runs the sweep). "
                 "Finished units are stored in the results folder, so a rerun resumes.")

#: environment variables that name a process's rank on its node, in the order they are looked up
LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")


class SweepError(RuntimeError):
    """A sweep that cannot start or that ended with failed units; the message is one line."""


# ------------------------------------------------------------------------------------------------------------
# executors


class InlineExecutor(Executor):
    """An executor that runs each call at once in the calling thread (the in-process default, as an executor)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to the caller through the future
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(error)
        return future


def parse_executor(spec: str | None) -> tuple[str, int | None]:
    """``(kind, workers)`` of an executor spec: ``("inline", None)``, ``("processes", N or None)``, ``("mpi", None)``.

    >>> parse_executor("processes:4")
    ('processes', 4)
    """
    text = (spec or "inline").strip().lower()
    kind, _, count = text.partition(":")
    if kind in ("inline", "none", "serial") and not count:
        return "inline", None
    if kind in ("processes", "process", "pool"):
        if not count:
            return "processes", None
        if count.isdigit() and int(count) >= 1:
            return "processes", int(count)
        raise SweepError(f"bad executor {spec!r}: the process count must be a positive integer, e.g. processes:4")
    if kind == "mpi" and not count:
        return "mpi", None
    raise SweepError(f"unknown executor {spec!r}; use 'inline', 'processes[:N]' or 'mpi'")


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _init_pool_worker(counter) -> None:
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    os.environ["FG_WORKER_RANK"] = str(index)
    os.environ["FG_EXECUTOR"] = "processes"


def _mpi_executor() -> Executor:
    try:
        from mpi4py import MPI
        from mpi4py.futures import MPIPoolExecutor
        from mpi4py.futures import _core as mpi_futures_core
    except ImportError as error:
        raise SweepError(f"--executor mpi needs mpi4py and an MPI library ({error}); install them with "
                         "`pip install -r requirements.txt` (mpi4py, mpich)") from None
    rank, size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
    # `python -m mpi4py.futures` makes ranks 1..N-1 a shared pool of workers before our code runs on rank 0; it
    # has no public flag, so its module attribute is read (absent in another mpi4py: treated as not started so).
    launched = getattr(mpi_futures_core, "SharedPool", None) is not None
    how = "start it as `mpiexec -n N python -m mpi4py.futures -m fg_analysis ...` with N >= 2"
    if not launched:
        where = ("outside mpiexec (a single process)" if size == 1
                 else f"as rank {rank} of {size} without `-m mpi4py.futures` (every rank would run the sweep)")
        raise SweepError(f"--executor mpi needs the mpi4py.futures launcher; this process runs {where}: {how}")
    if size < 2:
        raise SweepError(f"--executor mpi needs at least 2 MPI ranks (rank 0 runs the sweep); got {size}: {how}")
    os.environ["FG_EXECUTOR"] = "mpi"
    return MPIPoolExecutor()


@contextlib.contextmanager
def executor_from(spec: str | None) -> Iterator[Executor | None]:
    """The executor of a spec (see :data:`EXECUTOR_HELP`), shut down on leaving; ``None`` for ``inline``.

    Raises :class:`SweepError` (one line) for an unknown spec, for ``mpi`` without mpi4py or outside
    ``mpiexec -n N python -m mpi4py.futures``. Leaving by an exception cancels the units not yet started.

    >>> with executor_from("inline") as executor:
    ...     print(executor)
    None
    """
    kind, workers = parse_executor(spec)
    if kind == "inline":
        yield None
        return
    if kind == "processes":

        context = multiprocessing.get_context("spawn")
        executor: Executor = futures.ProcessPoolExecutor(
            max_workers=workers or _usable_cpus(), mp_context=context, initializer=_init_pool_worker,
            initargs=(context.Value("i", 0),))
    else:
        executor = _mpi_executor()
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def add_executor_argument(parser: argparse.ArgumentParser, *, default: str = "inline") -> argparse.Action:
    """Add ``--executor SPEC`` (``inline``, ``processes[:N]``, ``mpi``) to ``parser``; read it with
    :func:`executor_from`."""
    return parser.add_argument("--executor", default=default, metavar="SPEC", help=EXECUTOR_HELP)


def executor_kind(executor: Executor | None) -> str:
    """``"inline"``, ``"processes"``, ``"mpi"``, ``"threads"`` or the executor's class name."""
    if executor is None or isinstance(executor, InlineExecutor):
        return "inline"
    if isinstance(executor, futures.ProcessPoolExecutor):
        return "processes"
    if isinstance(executor, futures.ThreadPoolExecutor):
        return "threads"
    if type(executor).__module__.startswith("mpi4py"):
        return "mpi"
    return type(executor).__name__


def worker_count(executor: Executor | None) -> int:
    """How many units ``executor`` runs at once (1 for inline; the pool size; the MPI workers)."""
    if executor is None or isinstance(executor, InlineExecutor):
        return 1
    for attribute in ("num_workers", "_max_workers"):
        value = getattr(executor, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1


# ------------------------------------------------------------------------------------------------------------
# worker placement


def worker_rank() -> tuple[int, str]:
    """``(rank, where it came from)``: the node-local rank of the MPI launcher (:data:`LOCAL_RANK_VARIABLES`),
    else the MPI world rank (when mpi4py runs this process), else the pool worker's index, else 0."""
    for name in LOCAL_RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value), name
    if "mpi4py.MPI" in sys.modules:
        from mpi4py import MPI

        if MPI.Is_initialized() and not MPI.Is_finalized():
            return MPI.COMM_WORLD.Get_rank(), "MPI.COMM_WORLD"
    value = os.environ.get("FG_WORKER_RANK", "")
    if value.isdigit():
        return int(value), "pool worker"
    return 0, "single process"


def place_worker(device: str = "cpu") -> dict:
    """Place this worker for units on ``device`` and say where it is (the dict stored as ``placement.json``).

    CPU: ``torch.set_num_threads(1)`` (or ``$FG_WORKER_THREADS``): small networks run fastest on one thread, and
    workers sharing a machine should not oversubscribe it. CUDA: ``cuda:<rank % count>`` becomes the current GPU,
    unless ``device`` names an index itself.
    """
    resolved = resolve_device(device)
    rank, source = worker_rank()
    if resolved.type == "cuda":
        index = resolved.index if resolved.index is not None else rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        placed = f"cuda:{index}"
    else:
        threads = int(os.environ.get("FG_WORKER_THREADS", "1") or 1)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        placed = resolved.type
    return {"host": socket.gethostname(), "pid": os.getpid(), "rank": rank, "rank_source": source,
            "device": placed, "torch_threads": torch.get_num_threads(),
            "executor": os.environ.get("FG_EXECUTOR") or ("mpi" if "mpi4py.MPI" in sys.modules else "inline"),
            "python": platform.python_version()}


def run_on_worker(fn: Callable, /, *args, device: str = "cpu", **kwargs):
    """``(fn(*args, device=placed, **kwargs), placement)`` after :func:`place_worker`: what an executor runs for
    one unit that is not a cached config (a search trial). ``fn`` gets the placed device (``"cpu"``,
    ``"cuda:1"``) as its ``device`` keyword."""
    placement = place_worker(device)
    return fn(*args, device=placement["device"], **kwargs), placement


# ------------------------------------------------------------------------------------------------------------
# the sweep


def check_writable(root: str | os.PathLike) -> Path:
    """Create ``root`` if needed and write a file in it; one-line :class:`SweepError` if that fails."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-check-"):
            pass
    except OSError as error:
        raise SweepError(f"cannot write results under {root}: {error.strerror or error} "
                         "(set FG_RESULTS to a writable folder)") from None
    return root


def _compute_unit(root: str, published: str | None, config, compute: Callable, device: str, refresh: bool):
    """In a worker: compute one unit (or read it, if another sweep stored it meanwhile) and store it."""
    placement = place_worker(device)
    cache = ResultsCache(root, published=published)
    found = None if refresh else cache.load(config, device=device)
    if found is not None:
        return found[0], found[1], placement, False
    frame = cache.get(config, compute, device=placement["device"], refresh=True)
    folder = cache.folder(config, device)
    atomic_write(folder, "placement.json", lambda path: Path(path).write_text(json.dumps(placement, indent=1)))
    return frame, frame.attrs["record"], placement, True


def _check_picklable(executor: Executor, compute: Callable, config) -> None:
    if isinstance(executor, (InlineExecutor, futures.ThreadPoolExecutor)):
        return
    for what, value in (("compute", compute), ("the config", config)):
        try:
            pickle.dumps(value)
        except Exception as error:  # noqa: BLE001 - any pickling failure means the same thing here
            raise SweepError(f"{what} must be picklable to run on {executor_kind(executor)} workers: a "
                             "module-level function or functools.partial of one, never a lambda or local "
                             f"function ({type(error).__name__}: {error})") from None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "no message"
    return f"{type(error).__name__}: {text[:300]}"


def sweep(cache: ResultsCache, configs: Iterable, compute: Callable[[object], pd.DataFrame], *,
          device: str | object = "cpu", description: str = "sweep", refresh: bool = False, progress: bool = True,
          executor=None) -> pd.DataFrame:
    """Run (or read) every config through ``cache``, each cached on its own, and concatenate the results in config
    order.

    Each frame gets the config's fields as columns (unless it already has them). Units finished before an
    interruption are read back on the next call, so nothing computed is lost.

    ``executor=None`` runs the units here, one after another. Any :class:`concurrent.futures.Executor`
    (:func:`executor_from`: a process pool, MPI ranks) runs the missing ones on its workers,
    which store them in this cache's folder themselves; ``compute`` and the configs must then be picklable (a
    module-level function or a ``functools.partial`` of one). A failed unit does not stop the others;
    :class:`fg_analysis.runs.sweep.SweepError` names it at the end. See :mod:`fg_analysis.runs.sweep`. The returned
    frame's ``attrs`` say how many units were ``"read"`` and ``"computed"``.
    """
    configs = list(configs)
    if executor is None:
        frames, computed = [], 0
        for config in tqdm(configs, desc=description, disable=not progress, mininterval=2.0):
            stored = None if refresh else cache.load(config, device=device)
            frame = cache.get(config, compute, device=device, refresh=refresh) if stored is None else stored[0]
            if stored is None:
                computed += 1
            else:
                frame.attrs["record"] = stored[1]
            frames.append(frame)
    else:

        frames = run_units(cache, configs, compute, executor=executor, device=str(device),
                           description=description, refresh=refresh, progress=progress)
        computed = sum(bool(frame.attrs.get("computed")) for frame in frames)
    for config, frame in zip(configs, frames):
        with_config_columns(frame, config)
    result = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    result.attrs = {"read": len(configs) - computed, "computed": computed}
    return result


def run_units(cache, configs: Sequence, compute: Callable, *, executor: Executor, device: str = "cpu",
              description: str = "sweep", refresh: bool = False, progress: bool = True) -> list[pd.DataFrame]:
    """The frames of ``configs`` in their order, stored ones read here, the others computed on ``executor``.

    Each returned frame carries its record in ``frame.attrs["record"]``; one computed now also its
    ``attrs["placement"]`` and ``attrs["computed"] = True`` (False on the copies for repeated configs).
    :meth:`ResultsCache.sweep <fg_analysis.runs.cache.ResultsCache.sweep>` is the usual entry point.
    """
    device = str(device)
    frames: list[pd.DataFrame | None] = [None] * len(configs)
    bar = tqdm(total=len(configs), desc=description, disable=not progress, mininterval=2.0)
    pending: dict[str, list[int]] = {}
    try:
        for index, config in enumerate(configs):
            found = None if refresh else cache.load(config, device=device)
            if found is None:
                pending.setdefault(cache.folder(config, device).name, []).append(index)
                continue
            frames[index] = found[0]
            frames[index].attrs["record"] = found[1]
            bar.update()
        if not pending:
            return frames  # type: ignore[return-value]
        check_writable(cache.root)
        _check_picklable(executor, compute, configs[next(iter(pending.values()))[0]])
        published = str(cache.published) if cache.published else None
        submitted: dict[Future, list[int]] = {}
        for indices in pending.values():
            future = executor.submit(_compute_unit, str(cache.root), published, configs[indices[0]], compute,
                                     device, refresh)
            submitted[future] = indices
        failures: list[tuple[object, BaseException]] = []
        try:
            for future in futures.as_completed(submitted):
                indices = submitted[future]
                try:
                    frame, record, placement, _ = future.result()
                except Exception as error:  # noqa: BLE001 - one unit's failure; the others go on
                    failures.append((configs[indices[0]], error))
                    bar.update(len(indices))
                    continue
                for index in indices:
                    copy = frame if index == indices[0] else frame.copy()
                    copy.attrs.update(record=record, placement=placement, computed=index == indices[0])
                    frames[index] = copy
                bar.update(len(indices))
        except BaseException:
            for future in submitted:
                future.cancel()
            raise
    finally:
        bar.close()
    if failures:
        done = sum(frame is not None for frame in frames)
        config, error = failures[0]
        died = isinstance(error, futures.BrokenExecutor)
        raise SweepError(f"{len(failures)} of {len(configs)} units failed"
                         f"{' (a worker process died)' if died else ''}; first: {config}: {_one_line(error)}. "
                         f"{done} units are stored under {cache.root}: rerun to compute the rest")
    return frames  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------------------
# a probe sweep (set-up checks and the tests)


@dataclasses.dataclass(frozen=True)
class Probe:
    """A tiny unit: a seeded torch computation (and an optional sleep, to make a sweep last); ``fail`` raises,
    ``crash`` ends the worker process at once (as a killed or crashed worker would)."""

    index: int
    size: int = 32
    sleep_s: float = 0.0
    fail: bool = False
    crash: bool = False


def probe(unit: Probe) -> pd.DataFrame:
    """The unit's numbers (independent of the worker that computes them); raises if ``unit.fail``."""
    if unit.fail:
        raise RuntimeError(f"probe {unit.index} was told to fail")
    if unit.crash:
        os._exit(3)
    generator = torch.Generator().manual_seed(unit.index)
    a = torch.randn(unit.size, unit.size, generator=generator, dtype=torch.float64)
    product = a @ a.T
    time.sleep(unit.sleep_s)
    return pd.DataFrame({"trace": [float(product.trace())], "frobenius": [float(product.norm())],
                         "max": [float(product.max())]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fg_analysis.runs.sweep",
                                     description="Check a sweep set-up: run a tiny sweep of probe units.")
    commands = parser.add_subparsers(dest="command", required=True)
    probe_parser = commands.add_parser("probe", help="run N probe units and print where each ran")
    probe_parser.add_argument("--units", type=int, default=8)
    probe_parser.add_argument("--sleep", type=float, default=0.0, help="seconds each unit sleeps")
    probe_parser.add_argument("--fail", type=int, action="append", default=[], help="a unit index that fails")
    probe_parser.add_argument("--results", default=None, help="results folder (default $FG_RESULTS or results/cache)")
    probe_parser.add_argument("--device", default="cpu")
    add_executor_argument(probe_parser)
    args = parser.parse_args(argv)
    units = [Probe(i, sleep_s=args.sleep, fail=i in args.fail) for i in range(args.units)]
    cache = ResultsCache(args.results, published=None)
    try:
        with executor_from(args.executor) as executor:
            start = time.perf_counter()
            frame = sweep(cache, units, probe, device=args.device, description="probe", progress=False,
                                executor=executor)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    placements = [json.loads(path.read_text()) for path in sorted((cache.root / "Probe").glob("*/placement.json"))]
    print(frame.to_string(index=False))
    print(json.dumps({"executor": args.executor, "units": len(units), "computed": frame.attrs.get("computed"),
                      "read": frame.attrs.get("read"), "wall_s": round(time.perf_counter() - start, 3),
                      "ranks": sorted({p["rank"] for p in placements}),
                      "hosts": sorted({p["host"] for p in placements})}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
