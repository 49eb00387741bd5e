"""One prepared, resumable device run that stores the paper-scale records the book shows.

``python -m fg_analysis gpu-run --budget SECONDS --archive PATH`` runs, each stage in its own subprocess under
its own time budget (killed with its process group at the budget; every stage also checks its deadline between
units, so it normally ends by itself), each stage storing its records the moment a unit finishes:

1. ``tests``: the CUDA tests, ``pytest -k cuda`` over :data:`CUDA_TEST_FILES` (zero-tangent kernels, JVPs,
   tangents, aggregators and the batched trainer on the GPU);
2. ``bench``: ``python -m fg_analysis bench --full --device cuda`` (judged by the benchmark's GPU targets), unless
   a GPU record of the full benchmark is already stored;
3. ``rq1``: the RQ1 paper grid (``ApproximationConfig.preset("paper")``: n to 2^16, k to 2^10), the cells not
   yet stored for this device type, cell by cell;
4. ``throughput``: batched against sequential training steps (:mod:`fg_analysis.nets.batched`; FC-256 on MNIST,
   3 seeds), the GPU target being ≥ 2×;
5. ``rq3``: the missing paper-protocol RQ3 units in the fixed priority order of :func:`rq3_units` — MNIST FC-256,
   FC-1024, FC-4096 (all 8 approaches, seeds 0-2, oracle JVPs as the ``mnist-fc`` preset) trained batched, one
   vmapped pass per width (:func:`fg_analysis.nets.batched.run_batched`), then ResNet-18 and the ViT on MNIST (as the
   ``paper`` preset has them) one by one (:func:`fg_analysis.experiments.rq3.run_unit`) — as many as the rest of
   the budget allows.

Records go to a staging cache (``--stage-dir``, default ``results/cache/gpu-run``, ignored by git) that is read
together with ``results/published``: whatever is stored there already is skipped, so a later run continues where
the last one stopped once its archive was unpacked and committed. The new records (and a report,
``gpu-run/report-<time>.json``) are packed into one ``.tgz`` (``--archive``) laid out as ``results/published``:
``tar -xzf records.tgz -C results/published``. The report (also printed as the last line, JSON) gives every
stage's status (``ok``, ``failed``, ``timed out``, ``skipped``), its time, the benchmark's targets, the batched
speed-up and the RQ3 units stored and left.

On a machine without CUDA the same stages run on a tiny preset (``--tiny``, the default there; what the tests
run): a few RQ1 cells, the FC net on digits for two epochs, the quick benchmark (which a short budget kills).

``python -m fg_analysis gpu-run bundle`` prepares the folder that travels with the command (``.gpu-carry/``,
listed in ``.git/info/exclude``): MNIST's four IDX files gzipped (``data/mnist/*.gz``, about 11 MB) and, unless
``--no-wheels``, wheels for Python 3.12 of what the run imports beyond torch, numpy, pandas and scipy
(:data:`WHEELS`; the H200 image has them too, so they are the fallback). ``docs/gpu.md`` gives the exact device
command and what to do with the archive.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import warnings
from functools import partial
from pathlib import Path

import torch

from fg_analysis.experiments.approximation import ApproximationConfig, measure_cell
from fg_analysis.experiments.rq3 import RQ3Config, TrainingRun, run_unit
from fg_analysis.nets.batched import BatchedThroughput, batchable, measure_throughput, run_batched
from fg_analysis.nets.data import MNIST_FILES, MNIST_VENDOR_DIR, _first_complete, _mnist_search
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.cli import OneLineParser
from fg_analysis.runs.env import resolve_device
from fg_analysis.runs.paths import PUBLISHED, REPOSITORY

__all__ = ["CUDA_TEST_FILES", "STAGES", "WHEELS", "bundle", "main", "rq1_config", "rq3_units", "run",
           "stage_budgets"]

DEFAULT_STAGE_DIR = REPOSITORY / "results" / "cache" / "gpu-run"
DEFAULT_CARRY = REPOSITORY / ".gpu-carry"

STAGES = ("tests", "bench", "rq1", "throughput", "rq3")

#: test files holding CUDA tests (selected by ``-k cuda``; they skip without CUDA)
CUDA_TEST_FILES = ("tests/test_zero_tangents.py", "tests/test_jvp.py", "tests/test_tangents.py",
                   "tests/test_batched.py")

#: the tiny preset's test files (a quicker collection on a busy CPU, where every CUDA test skips anyway)
TINY_TEST_FILES = ("tests/test_tangents.py", "tests/test_batched.py")

#: what the run imports beyond the GPU image's torch, numpy, pandas, scipy (and matplotlib): tqdm (progress
#: bars in the cache and training loops) and pytest for stage 1 (with its dependencies). scikit-learn is only
#: for the digits data set, which a GPU run does not use (MNIST travels).
WHEELS = ("tqdm==4.67.1", "pytest==8.3.4", "pluggy==1.5.0", "iniconfig==2.0.0", "packaging==24.2")

#: the share of the budget each stage may use at most (the rest flows on); rq3 takes whatever is left
SHARES = {"tests": 0.08, "bench": 0.30, "rq1": 0.25, "throughput": 0.06}
#: seconds kept back at the end for packing the archive
RESERVE_S = 8.0
#: grace after a stage's deadline before its process group is killed
GRACE_S = 5.0


# ----------------------------------------------------------------------------------------------------------
# what each stage runs


def rq1_config(tiny: bool):
    """The RQ1 grid: the paper's (n = 2^0..2^16, k = 2^0..2^10), or a few small cells (tiny)."""
    if tiny:
        return ApproximationConfig(dims=(4, 16, 64), tangent_counts=(1, 2, 4), samples=200, angles=())
    return ApproximationConfig.preset("paper")


def rq3_units(tiny: bool) -> list:
    """The RQ3 units in priority order: MNIST FC-256, FC-1024, FC-4096 (the ``mnist-fc`` preset's protocol:
    8 approaches, seeds 0-2, oracle JVPs, ≤ 200 epochs, patience 10), then ResNet-18 and the ViT on MNIST (the
    ``paper`` preset's units). Tiny: the FC net (width 32) on 256 digits for 2 epochs, all 8 approaches, seeds
    0-1 (batched), and one forward-mode unit (sequential)."""
    if tiny:
        config = RQ3Config(networks=(("fc", 32),), datasets=("digits",), seeds=(0, 1), epochs=2, mode="oracle",
                           max_train=256)
        sequential = TrainingRun("fc", 16, "digits", "fg", "mean", 1, 0, 0.05, "tiny", epochs=1, max_train=128)
        return config.runs() + [sequential]
    fc = RQ3Config.preset("mnist-fc")
    units = dataclasses.replace(fc, networks=(("fc", 256), ("fc", 1024), ("fc", 4096))).runs()
    paper = RQ3Config.preset("paper")
    for model in ("resnet18", "vit"):
        units += [u for u in dataclasses.replace(paper, networks=((model, None),), datasets=("mnist",),
                                                 combinations=()).runs()]
    return units


def throughput_configs(tiny: bool) -> list:

    if tiny:
        return [BatchedThroughput(width=16, dataset="digits", seeds=(0, 1), k=4, steps=4, warmup=1)]
    return [BatchedThroughput(), BatchedThroughput(aggregator="mean", k=1), BatchedThroughput(method="bp",
                                                                                              aggregator="mean", k=1)]


def stage_budgets(budget: float, *, tiny: bool = False) -> dict[str, float]:
    """Nominal seconds per stage for a total ``budget`` (rq3 gets the rest, and unused time flows on). The tiny
    preset's stages get fixed minima (a process start, imports and pytest's collection take seconds on a busy
    CPU); its benchmark gets 5 s, which the quick benchmark overruns: the tiny run tests that kill."""
    if tiny:
        nominal = {"tests": 30.0, "bench": 5.0, "rq1": 15.0, "throughput": 15.0}
    else:
        nominal = {name: share * budget for name, share in SHARES.items()}
        nominal["tests"] = min(nominal["tests"], 90.0)
        nominal["rq1"] = min(nominal["rq1"], 150.0)
        nominal["throughput"] = min(nominal["throughput"], 45.0)
    nominal["rq3"] = max(0.0, budget - RESERVE_S - sum(nominal.values()))
    return nominal


# ----------------------------------------------------------------------------------------------------------
# stages, each run as `python -m fg_analysis.experiments.gpu_run stage NAME ...` in its own process group


def _cache(stage_dir: Path):

    return ResultsCache(stage_dir, published=PUBLISHED)


def _stage_rq1(args) -> dict:


    cache, device = _cache(args.stage_dir), args.device
    cells = rq1_config(args.tiny).cells()
    stored = sum(cache.load(cell, device=device) is not None for cell in cells)
    computed, start = 0, time.perf_counter()
    for cell in cells:
        if cache.load(cell, device=device) is not None:
            continue
        if time.time() >= args.deadline:
            break
        cache.get(cell, partial(measure_cell, device=device), device=device)
        computed += 1
    left = sum(cache.load(cell, device=device) is None for cell in cells)
    return {"cells": len(cells), "already_stored": stored, "computed": computed, "left": left,
            "grid_complete": left == 0, "compute_s": round(time.perf_counter() - start, 1),
            "within_2_minutes": (time.perf_counter() - start) <= 120 if stored == 0 and left == 0 else None}


def _stage_throughput(args) -> dict:

    cache, rows = _cache(args.stage_dir), []
    for config in throughput_configs(args.tiny):
        if time.time() >= args.deadline:
            break
        frame = cache.get(config, lambda c: measure_throughput(c, device=args.device), device=args.device)
        row = frame.iloc[0].to_dict()
        rows.append({"approach": f"{config.method} {config.aggregator} k={config.k}", "width": config.width,
                     "dataset": config.dataset, **{key: row[key] for key in ("runs", "batched_s_per_step",
                                                                             "sequential_s_per_step", "speedup")}})
    return {"measurements": rows, "target": "batched >= 2x sequential (3 seeds, FC-256 MNIST)",
            "target_met": bool(rows) and rows[0]["speedup"] >= 2.0}


def _stage_rq3(args) -> dict:

    cache, device = _cache(args.stage_dir), args.device
    units = rq3_units(args.tiny)
    before = [u for u in units if cache.load(u, device=device) is None]
    stored, pending = [], list(before)
    # batched FC passes (one per network and data set) in priority order, then the rest one by one
    while pending and time.time() < args.deadline:
        unit = pending[0]
        if batchable(unit):
            shape = (unit.model, unit.width, unit.dataset)
            group = [u for u in pending if batchable(u) and (u.model, u.width, u.dataset) == shape]
            stored += run_batched(group, cache=cache, device=device, deadline=args.deadline, progress=True)["stored"]
            pending = [u for u in pending if u not in group]
            continue
        started = time.perf_counter()
        frame = run_unit(unit, device=device)
        cache.save(unit, frame, device=device, wall_time=time.perf_counter() - started)
        stored.append(unit)
        pending.pop(0)
    left = [u for u in units if cache.load(u, device=device) is None]
    describe = lambda u: f"{u.model}-{u.width} {u.dataset} {u.method} {u.aggregator} k={u.k} seed {u.seed}"
    return {"units": len(units), "already_stored": len(units) - len(before), "stored": [describe(u) for u in stored],
            "left": len(left), "next": [describe(u) for u in left[:5]]}


STAGE_FUNCTIONS = {"rq1": _stage_rq1, "throughput": _stage_throughput, "rq3": _stage_rq3}


def _stage_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m fg_analysis gpu-run stage")
    parser.add_argument("name", choices=sorted(STAGE_FUNCTIONS))
    parser.add_argument("--deadline", type=float, required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--stage-dir", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)

    if args.device == "cpu":
        torch.set_num_threads(1)
    result = STAGE_FUNCTIONS[args.name](args)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(result, default=str))
    return 0


# ----------------------------------------------------------------------------------------------------------
# the driver


def _run_process(command: list[str], *, timeout: float, env: dict, log: Path) -> tuple[str, int | None, float]:
    """Run ``command`` in its own process group, its output teed into ``log`` and ours; kill the group (TERM,
    then KILL) at ``timeout``. Returns ``(status, returncode, seconds)``."""
    start = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                   cwd=REPOSITORY, start_new_session=True)

        def pump():
            for line in iter(process.stdout.readline, b""):
                sink.write(line)
                sink.flush()
                sys.stdout.write("  | " + line.decode(errors="replace"))
                sys.stdout.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=max(1.0, timeout))
            status = "ok" if code == 0 else "failed"
        except subprocess.TimeoutExpired:
            status, code = "timed out", None
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=3)
                    break
                except subprocess.TimeoutExpired:
                    continue
        reader.join(timeout=5)
    return status, code, time.perf_counter() - start


def _bench_stored(stage_dir: Path, device_type: str, preset: str) -> bool:

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, record in _cache(stage_dir).records("BenchConfig"):
            if record["environment"].get("device") == device_type and record["config"].get("preset") == preset:
                return True
    return False


def _last_json(log: Path) -> dict | None:
    for line in reversed(log.read_text(errors="replace").splitlines() if log.is_file() else []):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def _new_entries(stage_dir: Path) -> list[Path]:
    """The complete entries (``<Class>/<key>/`` with record.json and result.csv) in the staging cache."""
    return sorted(folder for folder in stage_dir.glob("*/*/")
                  if (folder / "record.json").is_file() and (folder / "result.csv").is_file()
                  and not folder.parent.name.startswith("_"))


def pack(stage_dir: Path, archive: Path, report: dict) -> int:
    """Pack the staging cache's entries and ``report`` into ``archive`` (layout of results/published)."""
    entries = _new_entries(stage_dir)
    archive.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    report_path = stage_dir / "_reports" / f"report-{stamp}.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=1, default=str))
    with tarfile.open(archive, "w:gz") as tar:
        for folder in entries:
            for name in ("record.json", "result.csv"):
                tar.add(folder / name, arcname=f"{folder.parent.name}/{folder.name}/{name}")
        tar.add(report_path, arcname=f"gpu-run/report-{stamp}.json")
    return len(entries)


def run(*, budget: float, archive: Path | None, device: str = "auto", tiny: bool | None = None,
        stage_dir: Path = DEFAULT_STAGE_DIR, stages: tuple[str, ...] = STAGES,
        stage_budget: dict[str, float] | None = None) -> dict:
    """Run the stages under ``budget`` seconds in all; see the module docstring. Returns the report."""
    resolved = resolve_device(device)
    tiny = resolved.type != "cuda" if tiny is None else tiny
    device_type = resolved.type
    stage_dir = Path(stage_dir).resolve()
    stage_dir.mkdir(parents=True, exist_ok=True)
    end = time.time() + budget
    nominal = {**stage_budgets(budget, tiny=tiny), **(stage_budget or {})}
    env = {**os.environ, "FG_RESULTS": str(stage_dir), "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    if device_type == "cpu":
        env.setdefault("OMP_NUM_THREADS", "1")
    report: dict = {"device": device_type, "device_name": (torch.cuda.get_device_name(resolved)
                                                           if device_type == "cuda" else "cpu"),
                    "tiny": tiny, "budget_s": budget, "torch": torch.__version__, "stages": {}}
    python = sys.executable
    later = {"tests": ("bench", "rq1", "throughput"), "bench": ("rq1", "throughput"), "rq1": ("throughput",),
             "throughput": (), "rq3": ()}
    for name in STAGES:
        if name not in stages:
            report["stages"][name] = {"status": "not selected"}
            continue
        remaining = end - time.time() - RESERVE_S
        # keep a little for the later stages so that one slow stage cannot starve them all
        keep = sum(min(nominal[other], 0.5 * nominal[other]) for other in later[name] if other in stages)
        allowed = min(nominal[name], remaining - keep) if name != "rq3" else remaining
        print(f"== gpu-run stage {name}: up to {allowed:.0f} s", flush=True)
        if allowed < 3:
            report["stages"][name] = {"status": "skipped", "why": "no time left"}
            continue
        log = stage_dir / "_logs" / f"{name}.log"
        entry: dict = {}
        if name == "tests":
            files = [f for f in (TINY_TEST_FILES if tiny else CUDA_TEST_FILES) if (REPOSITORY / f).is_file()]
            command = [python, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", "-k", "cuda", *files]
            # no third-party plugins (nbval, xdist, benchmark ...): faster start, and the repository's addopts
            # (nbval's flags) are overridden above
            status, code, seconds = _run_process(command, timeout=allowed,
                                                 env={**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, log=log)
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
            entry = {"summary": tail[0] if tail else ""}
        elif name == "bench":
            preset = "quick" if tiny else "paper"
            if not tiny and _bench_stored(stage_dir, device_type, preset):
                report["stages"][name] = {"status": "skipped", "why": "a GPU record of the full benchmark is stored"}
                continue
            command = [python, "-m", "fg_analysis", "bench", "--quick" if tiny else "--full", "--device",
                       device_type, "--no-progress"]
            status, code, seconds = _run_process(command, timeout=allowed, env=env, log=log)
            summary = _last_json(log) if status == "ok" else None
            if summary is not None:
                entry = {"targets_met": summary.get("targets_met"),
                         **{key: summary.get(key) for key in ("vmap_over_loop_k16", "projection_over_mean_max",
                                                              "fg1_over_bp", "batched_over_loop_approximation")}}
        else:
            deadline = time.time() + allowed
            result_path = stage_dir / "_reports" / f"{name}.json"
            result_path.unlink(missing_ok=True)
            command = [python, "-m", "fg_analysis.experiments.gpu_run", "stage", name, "--deadline", f"{deadline:.3f}",
                       "--device", device_type, "--stage-dir", str(stage_dir), "--report", str(result_path)]
            command += ["--tiny"] if tiny else []
            status, code, seconds = _run_process(command, timeout=allowed + GRACE_S, env=env, log=log)
            if result_path.is_file():
                entry = json.loads(result_path.read_text())
        if name == "tests" and code == 5:
            status = "ok"  # no test selected
        report["stages"][name] = {"status": status, "returncode": code, "seconds": round(seconds, 1), **entry}
        print(f"== gpu-run stage {name}: {status} in {seconds:.0f} s", flush=True)
    report["records"] = len(_new_entries(stage_dir))
    if archive is not None:
        report["archive"] = str(archive)
        pack(stage_dir, Path(archive), report)
    return report


# ----------------------------------------------------------------------------------------------------------
# the carry folder


def bundle(out: Path = DEFAULT_CARRY, *, wheels: bool = True, mnist: Path | None = None) -> dict:
    """Prepare the carry folder: ``data/mnist/*.gz`` (the four IDX files gzipped) and, with ``wheels``,
    ``wheels/*.whl`` for Python 3.12 (:data:`WHEELS`, downloaded by pip); adds the folder to
    ``.git/info/exclude``. Returns what it wrote and its size."""
    out = Path(out).resolve()
    source = Path(mnist) if mnist else _first_complete(_mnist_search(None), tuple(MNIST_FILES.values()), True)
    if source is None:
        raise ValueError(f"no MNIST found (run `make env`, which vendors it into {MNIST_VENDOR_DIR})")
    target = out / "data" / "mnist"
    target.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES.values():
        plain, packed = source / name, source / f"{name}.gz"
        destination = target / f"{name}.gz"
        if destination.is_file() and destination.stat().st_size > 0:
            continue
        if packed.is_file():
            shutil.copyfile(packed, destination)
        else:
            destination.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=9, mtime=0))
    if wheels:
        (out / "wheels").mkdir(exist_ok=True)
        platforms = [arg for tag in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
                     for arg in ("--platform", tag)]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", *platforms, "-d",
                        str(out / "wheels"), *WHEELS], check=True)
    exclude = REPOSITORY / ".git" / "info" / "exclude"
    try:
        relative = out.relative_to(REPOSITORY)
        line = f"/{relative.as_posix()}/"
        present = exclude.read_text().splitlines() if exclude.is_file() else []
        if exclude.parent.is_dir() and line not in present:
            with open(exclude, "a") as handle:
                handle.write(f"\n{line}\n")
    except (ValueError, OSError):
        pass
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"folder": str(out), "files": sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file()),
            "bytes": size}


# ----------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``python -m fg_analysis gpu-run [--budget S] [--archive PATH]``, ``gpu-run bundle``; the last line printed
    is one JSON object (the report, or what bundle wrote)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "stage":
        return _stage_main(argv[1:])

    if argv and argv[0] == "bundle":
        parser = OneLineParser(prog="python -m fg_analysis gpu-run bundle",
                               description="prepare the carry folder: MNIST gzipped and wheels for Python 3.12")
        parser.add_argument("--out", type=Path, default=DEFAULT_CARRY, help="default .gpu-carry/")
        parser.add_argument("--no-wheels", action="store_true", help="MNIST only (the H200 image has the packages)")
        parser.add_argument("--mnist", type=Path, default=None, help="folder with the IDX files (default: found)")
        args = parser.parse_args(argv[1:])
        print(json.dumps(bundle(args.out, wheels=not args.no_wheels, mnist=args.mnist)))
        return 0
    parser = OneLineParser(prog="python -m fg_analysis gpu-run",
                           description="the prepared device run: CUDA tests, full benchmark, RQ1 paper grid, batched "
                                       "throughput, RQ3 units; records packed into one archive")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all stages (default 480)")
    parser.add_argument("--archive", type=Path, default=None, help="write the new records to this .tgz")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available; default), cuda or cpu")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", dest="tiny", action="store_true", default=None,
                      help="the tiny preset (default without CUDA)")
    size.add_argument("--paper", dest="tiny", action="store_false", help="the paper-scale stages (default on CUDA)")
    parser.add_argument("--stage-dir", type=Path, default=DEFAULT_STAGE_DIR,
                        help="staging cache for the new records (default results/cache/gpu-run)")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="default: all")
    parser.add_argument("--stage-budget", action="append", default=[], metavar="STAGE=SECONDS",
                        help="override one stage's nominal budget (repeatable), e.g. bench=200")
    args = parser.parse_args(argv)
    if not args.budget > 0:
        parser.error(f"--budget must be positive; got {args.budget}")
    overrides = {}
    for item in args.stage_budget:
        name, _, seconds = item.partition("=")
        try:
            overrides[name] = float(seconds)
        except ValueError:
            parser.error(f"--stage-budget: expected STAGE=SECONDS; got {item!r}")
        if name not in STAGES or overrides[name] < 0:
            parser.error(f"--stage-budget: unknown stage or negative seconds in {item!r}; stages: {STAGES}")
    report = run(budget=args.budget, archive=args.archive, device=args.device, tiny=args.tiny,
                 stage_dir=args.stage_dir, stages=tuple(args.stages), stage_budget=overrides)
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
