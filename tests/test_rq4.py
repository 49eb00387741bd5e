"""Tests of fg_analysis.experiments.rq4: the RQ4 scorecard rows read from stored benchmark records."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from fg_analysis.cache import ResultsCache
from fg_analysis.experiments import SCORECARD_COLUMNS, SCORECARD_MODULES, rq4


def _frame(*, bp=0.0035, loop_per_k=0.006, fg_memory=(50.0, 52.0, 55.0)):
    """A benchmark frame in :mod:`fg_analysis.bench`'s layout with known ratios."""
    rows = []

    def step(k, method, aggregator, seconds, jvp=None):
        for phase, value in (("step", seconds), ("jvp", jvp)):
            if value is not None:
                rows.append(dict(section="step", model="fc-1024", n=1000, batch=64, k=k, method=method,
                                 aggregator=aggregator, phase=phase, seconds=value))

    for k in (1, 2, 4, 8, 16):
        step(k, "bp", "-", bp)
        step(k, "vmap", "projection", 0.005 + 0.002 * k, 0.001 * k)
        step(k, "vmap", "mean", 0.005 + 0.0019 * k)
        step(k, "loop", "projection", 0.005 + loop_per_k * k, 0.004 * k)
    for depth, bp, fg in zip((2, 8, 32), (10.0, 40.0, 160.0), fg_memory):
        rows.append(dict(section="memory", mode="bp", depth=depth, net_bytes=bp))
        rows.append(dict(section="memory", mode="fg", depth=depth, net_bytes=fg))
    return pd.DataFrame(rows)


def _store(root, name, frame, *, preset="quick", device="cpu", saved="2026-01-01T00:00:00+0000"):
    folder = root / "BenchConfig" / name
    folder.mkdir(parents=True)
    frame.to_csv(folder / "result.csv", index=False)
    record = {"config": {"class": "BenchConfig", "preset": preset, "device": device, "machine": f"{device} box",
                         "reference_model": "fc-1024", "fit_ks": [1, 2, 4, 8]},
              "environment": {"device": device, "device_name": f"{device} box", "commit": "abc1234",
                              "versions": {"torch": "2.x"}}, "saved": saved}
    (folder / "record.json").write_text(json.dumps(record))


def _cache(tmp_path):
    (tmp_path / "published").mkdir()
    return ResultsCache(tmp_path / "cache", published=tmp_path / "published")


def test_rows_state_each_claim_from_the_stored_numbers(tmp_path):
    cache = _cache(tmp_path)
    _store(tmp_path / "published", "a", _frame())
    rows = rq4.scorecard_rows("quick", cache=cache)
    assert list(rows.columns) == list(SCORECARD_COLUMNS) and set(rows.question) == {"RQ4"}
    holds = dict(zip(rows.claim, rows.holds))
    by_start = {claim.split(" ")[0] + " " + claim.split(" ")[1]: value for claim, value in holds.items()}
    assert len(rows) == 6
    # loop 0.101 s vs vmap 0.037 s at k = 16; projection/mean ≤ 1.2; FG(1)/BP = 0.0069/0.0035 (the single-tangent mean step): slower than BP
    assert by_start["vmapped JVPs"] and by_start["the projection"]
    assert not by_start["FG (k"]
    assert "T_FG/T_BP = 1.97 (slower; target ≤ 2: met)" in set(rows.ours)
    assert by_start["BP's peak"] and by_start["forward mode's"]
    assert by_start["step time"]  # T(k) = 0.005 + 0.002 k exactly: held-out error 0
    assert rows.setup.str.startswith("cpu box: stored quick benchmark").all()


def test_claims_that_fail_are_reported_as_failing(tmp_path):
    cache = _cache(tmp_path)
    _store(tmp_path / "published", "a", _frame(bp=0.014, loop_per_k=0.002, fg_memory=(50.0, 70.0, 90.0)))
    rows = rq4.scorecard_rows("quick", cache=cache).set_index("claim")
    assert not rows.loc["vmapped JVPs make an FG step (k = 16) faster than the per-tangent loop", "holds"]
    assert not rows.loc["forward mode's peak memory stays flat in depth", "holds"]
    assert rows.loc["FG (k = 1) is faster per step than BP (Baydin et al.)", "holds"]  # 0.5× BP


def test_the_record_of_the_asked_preset_and_device_is_chosen(tmp_path):
    cache = _cache(tmp_path)
    _store(tmp_path / "published", "quick-cpu", _frame(), preset="quick")
    _store(tmp_path / "published", "paper-cpu", _frame(), preset="paper", saved="2026-01-02T00:00:00+0000")
    _store(tmp_path / "cache", "paper-gpu", _frame(), preset="paper", device="cuda", saved="2026-01-01T00:00:00+0000")
    assert rq4.scorecard_rows("quick", cache=cache).setup.str.contains("stored quick").all()
    assert rq4.scorecard_rows("full", device="cpu", cache=cache).setup.str.startswith("cpu box: stored paper").all()
    assert rq4.scorecard_rows("paper", device="cuda", cache=cache).setup.str.startswith("cuda box").all()


def test_no_record_gives_an_empty_frame_with_the_scorecard_columns(tmp_path):
    rows = rq4.scorecard_rows("quick", cache=_cache(tmp_path))
    assert rows.empty and list(rows.columns) == list(SCORECARD_COLUMNS)


def test_the_committed_record_is_read_without_running_a_benchmark():
    assert "rq4" in SCORECARD_MODULES
    start = time.perf_counter()
    rows = rq4.scorecard_rows("quick")
    if rows.empty:
        pytest.skip("no benchmark record in results/published")
    assert time.perf_counter() - start < 5  # reads CSVs only
    assert len(rows) >= 5 and rows.setup.str.contains("benchmark").all()
