"""Sweeps on executors (fg_analysis.runs.sweep): MPI ranks give the in-process results, a killed process-pool sweep
resumes with only the missing units, and bad input is a one-line error or a recorded failure of one unit."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.sweep import (InlineExecutor, Probe, SweepError, add_executor_argument, executor_from,
                               parse_executor, probe, worker_count)
from fg_analysis.runs.sweep import sweep

BIN = Path(sys.executable).parent
MPIEXEC = shutil.which("mpiexec", path=str(BIN)) or shutil.which("mpiexec")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "fg_analysis.runs.sweep", *args], capture_output=True, text=True,
                          env=ENV, timeout=120, **kwargs)


def stored(root: Path) -> dict[str, str]:
    """key -> record.json text of every complete probe entry under ``root``."""
    return {path.parent.name: path.read_text() for path in (root / "Probe").glob("*/record.json")}


def test_parse_and_argument():
    assert parse_executor(None) == ("inline", None)
    assert parse_executor("processes") == ("processes", None)
    assert parse_executor("processes:3") == ("processes", 3)
    assert parse_executor("mpi") == ("mpi", None)
    for bad in ("threads", "processes:0", "processes:x", "mpi:4"):
        with pytest.raises(SweepError) as error:
            parse_executor(bad)
        assert "\n" not in str(error.value)
    import argparse

    parser = argparse.ArgumentParser()
    add_executor_argument(parser)
    assert parser.parse_args([]).executor == "inline"
    assert parser.parse_args(["--executor", "processes:2"]).executor == "processes:2"
    with executor_from("inline") as executor:
        assert executor is None
    assert worker_count(None) == 1


def test_inline_default_and_executor_agree(tmp_path):
    units = [Probe(i) for i in range(5)]
    plain = sweep(ResultsCache(tmp_path / "a", published=None), units, probe, progress=False)
    assert plain.attrs == {"read": 0, "computed": 5}
    on_threads = sweep(ResultsCache(tmp_path / "b", published=None), units + units[:1], probe, progress=False,
                                                                   executor=ThreadPoolExecutor(2))
    pd.testing.assert_frame_equal(plain, on_threads.iloc[:5])
    assert on_threads.attrs["computed"] == 5  # the duplicate unit is computed once
    again = sweep(ResultsCache(tmp_path / "b", published=None), units, probe, progress=False,
                                                               executor=InlineExecutor())
    assert again.attrs == {"read": 5, "computed": 0}
    pd.testing.assert_frame_equal(plain, again)


def test_a_failing_unit_is_recorded_and_the_others_stored(tmp_path):
    cache = ResultsCache(tmp_path, published=None)
    units = [Probe(i, fail=i == 2) for i in range(5)]
    with pytest.raises(SweepError) as error:
        sweep(cache, units, probe, progress=False, executor=InlineExecutor())
    message = str(error.value)
    assert "\n" not in message and "1 of 5 units failed" in message and "told to fail" in message
    assert len(stored(tmp_path)) == 4


def test_unwritable_results_and_unpicklable_compute(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SweepError, match="cannot write results under") as error:
        sweep(ResultsCache(blocker / "cache", published=None), [Probe(0)], probe, progress=False,
                                                              executor=InlineExecutor())
    assert "\n" not in str(error.value)
    with executor_from("processes:1") as executor:  # the pool starts no process before a submit
        with pytest.raises(SweepError, match="picklable"):
            sweep(ResultsCache(tmp_path / "ok", published=None), [Probe(0)], lambda unit: probe(unit),
                                                                progress=False, executor=executor)
    assert not (tmp_path / "ok" / "Probe").exists()


def test_mpi_outside_mpiexec_and_unknown_executor_are_one_line_errors(tmp_path):
    for spec, expected in (("mpi", "mpi4py.futures launcher"), ("gpu-cluster", "unknown executor")):
        result = cli("probe", "--units", "1", "--results", str(tmp_path), "--executor", spec)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], result.stderr


def test_a_dying_worker_fails_only_its_unit(tmp_path):
    cache = ResultsCache(tmp_path, published=None)
    units = [Probe(i) for i in range(4)] + [Probe(4, sleep_s=0.5, crash=True)]
    with executor_from("processes:1") as executor:
        sweep(cache, units[:4], probe, progress=False, executor=executor)  # finished before the crash
        with pytest.raises(SweepError, match="a worker process died") as error:
            sweep(cache, units, probe, progress=False, executor=executor)
    assert "\n" not in str(error.value)
    assert len(stored(tmp_path)) == 4
    assert sweep(cache, units[:4], probe, progress=False).attrs == {"read": 4, "computed": 0}


@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install -r requirements.txt installs mpich)")
def test_mpi_sweep_on_two_ranks_equals_the_in_process_sweep(tmp_path):
    units = [Probe(i, size=48) for i in range(6)]
    start = time.perf_counter()
    result = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "mpi4py.futures", "-m", "fg_analysis.runs.sweep",
                             "probe", "--units", "6", "--results", str(tmp_path / "mpi"), "--executor", "mpi"],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["computed"] == 6 and summary["ranks"] == [1], summary
    print(f"mpiexec -n 2 probe sweep: {time.perf_counter() - start:.1f} s")
    # the same units (Probe's default size is 32; the CLI's units are the defaults) read back from the MPI run
    units = [Probe(i) for i in range(6)]
    from_mpi = sweep(ResultsCache(tmp_path / "mpi", published=None), units, probe, progress=False)
    assert from_mpi.attrs == {"read": 6, "computed": 0}
    in_process = sweep(ResultsCache(tmp_path / "inline", published=None), units, probe, progress=False)
    pd.testing.assert_frame_equal(from_mpi, in_process)
    placements = [json.loads(p.read_text()) for p in (tmp_path / "mpi" / "Probe").glob("*/placement.json")]
    assert len(placements) == 6
    assert {(p["rank"], p["executor"], p["device"], p["torch_threads"]) for p in placements} == {(1, "mpi", "cpu", 1)}


def test_a_killed_process_pool_sweep_resumes(tmp_path):
    root = tmp_path / "cache"
    command = [sys.executable, "-m", "fg_analysis.runs.sweep", "probe", "--units", "10", "--sleep", "1.5",
               "--results", str(root), "--executor", "processes:2"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while len(stored(root)) < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the sweep and its workers, mid-unit
        process.wait()
    before = stored(root)
    assert 3 <= len(before) < 10, len(before)
    units = [Probe(i, sleep_s=1.5) for i in range(10)]
    cache = ResultsCache(root, published=None)
    with executor_from("processes:2") as executor:
        resumed = sweep(cache, units, probe, progress=False, executor=executor)
    assert resumed.attrs == {"read": len(before), "computed": 10 - len(before)}
    after = stored(root)
    assert all(after[key] == text for key, text in before.items())  # finished units read back, not recomputed
    fresh = sweep(ResultsCache(tmp_path / "fresh", published=None), [Probe(i) for i in range(10)], probe,
                                                                   progress=False)
    columns = ["trace", "frobenius", "max", "index"]
    pd.testing.assert_frame_equal(resumed[columns], fresh[columns])
    print(f"killed after {len(before)} of 10 units, resumed: {time.perf_counter() - start:.1f} s")
