"""fg_analysis.experiments.gpu_run: the prepared device run, tested on the CPU on its tiny preset (budget 100 s: five
stage
processes that each import torch and pandas take ~8 s apiece to start on a busy 2-core machine)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import time

import pytest

from fg_analysis.experiments import gpu_run
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.paths import REPOSITORY


BUDGET = 100


def _gpu_run(*args, timeout=150):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run([sys.executable, "-m", "fg_analysis", "gpu-run", *args], capture_output=True, text=True,
                          cwd=REPOSITORY, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu-run")
    start = time.perf_counter()
    done = _gpu_run("--budget", str(BUDGET), "--device", "cpu", "--archive", str(folder / "out" / "records.tgz"),
                    "--stage-dir", str(folder / "stage"))
    return folder, done, time.perf_counter() - start


def test_tiny_run_stages_and_budget(tiny_run):
    folder, done, seconds = tiny_run
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["device"] == "cpu" and report["tiny"] is True
    assert seconds < BUDGET + 15                                      # the budget holds (start-up and packing aside)
    stages = report["stages"]
    assert list(stages) == list(gpu_run.STAGES)
    assert stages["tests"]["status"] == "ok", stages["tests"]    # CUDA tests: collected, skipped on a CPU
    assert stages["bench"]["status"] == "timed out"               # the quick benchmark overruns its 5 s and is killed
    assert stages["bench"]["seconds"] < 5 + 10
    assert stages["rq1"]["status"] == "ok" and stages["rq1"]["grid_complete"]
    assert stages["throughput"]["status"] == "ok" and stages["throughput"]["measurements"]
    assert stages["throughput"]["measurements"][0]["speedup"] > 0
    assert stages["rq3"]["status"] == "ok" and stages["rq3"]["left"] == 0
    assert len(stages["rq3"]["stored"]) == len(gpu_run.rq3_units(True))


def test_archive_unpacks_into_a_published_folder(tiny_run, tmp_path):
    folder, done, _ = tiny_run
    with tarfile.open(folder / "out" / "records.tgz") as tar:
        names = tar.getnames()
        tar.extractall(tmp_path, filter="data")
    kinds = {name.split("/")[0] for name in names}
    assert kinds == {"ApproximationCell", "TrainingRun", "BatchedThroughput", "gpu-run"}
    assert all(len(name.split("/")) == (2 if name.startswith("gpu-run/") else 3) for name in names)
    published = ResultsCache(tmp_path / "empty", published=tmp_path)
    for unit in gpu_run.rq3_units(True):
        frame, record = published.load(unit, device="cpu")     # checksums verified; the record names its device
        assert record["environment"]["device"] == "cpu" and frame["device"].iloc[0] == "cpu"
    for cell in gpu_run.rq1_config(True).cells():
        assert published.load(cell, device="cpu") is not None
    report = json.loads(next((tmp_path / "gpu-run").glob("report-*.json")).read_text())
    assert report["stages"]["rq3"]["status"] == "ok"


def test_a_second_run_resumes(tiny_run):
    folder, _, _ = tiny_run
    done = _gpu_run("--budget", "30", "--device", "cpu", "--stage-dir", str(folder / "stage"), "--stages", "rq1",
                    "rq3", timeout=100)
    assert done.returncode == 0, done.stderr[-2000:]
    stages = json.loads(done.stdout.strip().splitlines()[-1])["stages"]
    assert stages["rq1"]["computed"] == 0 and stages["rq1"]["already_stored"] == stages["rq1"]["cells"]
    assert stages["rq3"]["stored"] == [] and stages["rq3"]["already_stored"] == stages["rq3"]["units"]
    assert stages["bench"]["status"] == "not selected"


def test_stage_budgets_fit_the_budget():
    for budget in (60, 300, 480, 590):
        nominal = gpu_run.stage_budgets(budget)
        assert set(nominal) == set(gpu_run.STAGES)
        assert sum(nominal.values()) <= budget and nominal["rq1"] <= 150 and nominal["rq3"] > 0
    assert gpu_run.stage_budgets(BUDGET, tiny=True)["rq3"] > 15


def test_paper_units_in_priority_order():
    units = gpu_run.rq3_units(False)
    keys = [(u.model, u.width) for u in units]
    order = [("fc", 256), ("fc", 1024), ("fc", 4096), ("resnet18", None), ("vit", None)]
    assert sorted(set(keys), key=keys.index) == order
    assert all(u.dataset == "mnist" for u in units) and keys.count(("fc", 256)) == 24
    assert {u.mode for u in units if u.model == "fc"} == {"oracle"} and {u.seed for u in units} == {0, 1, 2}
    cells = gpu_run.rq1_config(False).cells()
    assert max(c.n for c in cells) == 2 ** 16 and max(c.k for c in cells) == 2 ** 10


def test_bundle_gzips_mnist(tmp_path):
    source = tmp_path / "idx"
    source.mkdir()
    for i, name in enumerate(("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                              "t10k-labels-idx1-ubyte")):
        (source / name).write_bytes(bytes([i]) * 1000)
    result = gpu_run.bundle(tmp_path / "carry", wheels=False, mnist=source)
    packed = sorted((tmp_path / "carry" / "data" / "mnist").glob("*.gz"))
    assert len(packed) == 4 and result["bytes"] == sum(p.stat().st_size for p in packed)
    for path in packed:
        assert gzip.decompress(path.read_bytes()) == (source / path.name[:-3]).read_bytes()


def test_run_time_imports_stay_small():
    """What the run imports needs nothing beyond torch, numpy, pandas, scipy and tqdm (the GPU image's python3)."""
    code = ("import sys, fg_analysis, fg_analysis.experiments.gpu_run, fg_analysis.nets.batched, fg_analysis.experiments.rq3, "
            "fg_analysis.experiments.approximation, fg_analysis.nets.training;"
            "print(sorted(m for m in ('sklearn', 'seaborn', 'papermill', 'matplotlib', 'optuna', 'mnist1d', "
            "'nbformat', 'IPython', 'mpi4py', 'pytest') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPOSITORY)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bad_arguments_are_one_line(capsys):
    for argv, flag in ((["--budget", "-1"], "--budget"), (["--stage-budget", "nope=3"], "--stage-budget")):
        with pytest.raises(SystemExit) as exit_:
            gpu_run.main(argv)
        error = capsys.readouterr().err
        assert exit_.value.code == 2 and flag in error and len(error.strip().splitlines()) == 1
