"""Tests of fg_analysis.experiments.rq4: the chapter's data read from stored benchmark records and MNIST runs,
the scorecard rows, the frontier, the time to an accuracy and the computed sentence on Baydin et al.'s claim; one
claim states one number from one record on the page, in the Baydin section and on the scorecard."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from fg_analysis.bench import BenchConfig
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.experiments import PROJECT_TARGET, SCORECARD_COLUMNS, SCORECARD_MODULES, rq3, rq4


def _frame(*, bp=0.0035, loop_per_k=0.006, fg_memory=(50.0, 52.0, 55.0), model="fc-1024"):
    """A benchmark frame in :mod:`fg_analysis.bench`'s layout with known ratios (no paired columns)."""
    rows = []

    def step(k, method, aggregator, seconds, phases=None):
        for phase, value in (("step", seconds), *(phases or {}).items()):
            rows.append(dict(section="step", model=model, n=1000, batch=64, k=k, method=method,
                             aggregator=aggregator, phase=phase, seconds=value))

    for k in (1, 2, 4, 8, 16):
        step(k, "bp", "-", bp)
        step(k, "vmap", "projection", 0.005 + 0.002 * k, {"sample": 0.0005 * k, "jvp": 0.001 * k})
        step(k, "vmap", "mean", 0.005 + 0.0019 * k)
        step(k, "loop", "projection", 0.005 + loop_per_k * k, {"passes": 0.004 * k})
        if k in (1, 16):
            step(k, "activity-forward", "projection", 2 * bp)
            step(k, "activity-oracle", "projection", 1.5 * bp)
    for depth, bp_bytes, fg in zip((2, 8, 32), (10.0, 40.0, 160.0), fg_memory):
        rows.append(dict(section="memory", mode="bp", depth=depth, net_bytes=bp_bytes))
        rows.append(dict(section="memory", mode="fg", depth=depth, net_bytes=fg))
    return pd.DataFrame(rows)


def _cache(tmp_path):
    (tmp_path / "published").mkdir(exist_ok=True)
    return ResultsCache(tmp_path / "cache", published=tmp_path / "published")


def _store(cache, frame, *, preset="quick", device="cpu", published=True):
    config = BenchConfig(preset=preset, device=device, machine=f"{device} box")
    target = ResultsCache(cache.published if published else cache.root, published=None)
    target.save(config, frame, device="cpu")  # the environment of this machine; the preset tells them apart


def _runs(cache, histories):
    """Store TrainingRun records of FC-256 on MNIST: ``{(method, aggregator, k, seed): [(wall s, val acc), ...]}``."""
    store = ResultsCache(cache.published, published=None)
    for (method, aggregator, k, seed), history in histories.items():
        unit = rq3.TrainingRun(model="fc", width=256, dataset="mnist", method=method, aggregator=aggregator, k=k,
                               seed=seed, lr=0.1, lr_source="test", mode="oracle")
        frame = pd.DataFrame({"epoch": range(len(history)), "wall_time_s": [t for t, _ in history],
                              "train_time_s": [t / 2 for t, _ in history],
                              "val_accuracy": [a for _, a in history], "test_accuracy": history[-1][1]})
        store.save(unit, frame)


HISTORIES = {("bp", "mean", 1, 0): [(1.0, 0.1), (10.0, 0.92), (20.0, 0.95)],
             ("bp", "mean", 1, 1): [(1.0, 0.1), (12.0, 0.91), (22.0, 0.96)],
             ("fg", "mean", 1, 0): [(1.0, 0.1), (5.0, 0.5), (9.0, 0.8), (13.0, 0.9), (17.0, 0.91)],
             ("fg", "mean", 1, 1): [(1.0, 0.1), (5.0, 0.6), (9.0, 0.85), (13.0, 0.89), (17.0, 0.93)],
             ("fg", "projection", 16, 0): [(1.0, 0.1), (30.0, 0.7)]}


def test_rows_state_each_claim_from_the_stored_numbers(tmp_path):
    cache = _cache(tmp_path)
    _store(cache, _frame())
    rows = rq4.scorecard_rows("quick", cache=cache)
    assert list(rows.columns) == list(SCORECARD_COLUMNS) and set(rows.question) == {"RQ4"}
    verdicts = {claim.split(" ")[0] + " " + claim.split(" ")[1]: value for claim, value in zip(rows.claim, rows.verdict)}
    assert len(rows) == 7  # no training runs stored: no time-to-accuracy row
    # loop 0.101 s vs vmap 0.037 s at k = 16 (≥ 1.5); projection/mean ≤ 1.2; FG(1)/BP = 0.0069/0.0035: slower
    assert verdicts["vmapped JVPs"] == "holds" and verdicts["the projection"] == "holds"
    assert verdicts["FG (k"] == "does not hold" and verdicts["an FG"] == "holds"  # slower than BP, within 2×
    assert "T_FG/T_BP = 1.97 (slower)" in set(rows.ours) and "T_FG/T_BP = 1.97" in set(rows.ours)
    assert verdicts["BP's peak"] == "holds" and verdicts["forward mode's"] == "holds"
    assert verdicts["step time"] == "holds"  # T(k) = 0.005 + 0.002 k exactly: held-out error 0
    assert rows.setup.str.startswith("cpu").all() and rows.record.str.startswith("BenchConfig").all()
    sources = dict(zip(rows.claim.str.split(" ").str[:2].str.join(" "), rows.source))
    assert {key for key, source in sources.items() if source == PROJECT_TARGET} == {
        "vmapped JVPs", "the projection", "an FG"}  # this project's benchmark targets, apart from any paper's
    assert sources["FG (k"] == "Baydin et al." and sources["BP's peak"] == sources["step time"] == "paper"
    assert rows.section.str.startswith("rq4_tradeoffs#").all()


def test_claims_that_fail_are_reported_as_failing(tmp_path):
    cache = _cache(tmp_path)
    _store(cache, _frame(bp=0.014, loop_per_k=0.0025, fg_memory=(50.0, 70.0, 90.0)))
    rows = rq4.scorecard_rows("quick", cache=cache).set_index("claim")
    assert rows.loc["vmapped JVPs make an FG step (k = 16) faster than the per-tangent loop", "verdict"] == "does not hold"
    assert rows.loc["forward mode's peak memory stays flat in depth", "verdict"] == "does not hold"
    assert rows.loc["FG (k = 1) is faster per step than BP", "verdict"] == "holds"  # 0.5× BP


def test_the_record_of_the_asked_preset_is_chosen_and_damaged_ones_skipped(tmp_path):
    cache = _cache(tmp_path)
    _store(cache, _frame(), preset="quick")
    _store(cache, _frame(bp=0.001), preset="paper", published=False)
    assert rq4.stored_benchmark("quick", cache=cache).attrs["record"]["config"]["preset"] == "quick"
    assert rq4.stored_benchmark("full", cache=cache).attrs["record"]["config"]["preset"] == "paper"
    damaged = next((tmp_path / "cache" / "BenchConfig").glob("*/result.csv"))
    damaged.write_text(damaged.read_text()[:200])
    with pytest.warns(RuntimeWarning, match="damaged"):
        assert rq4.stored_benchmark("paper", cache=cache).attrs["record"]["config"]["preset"] == "quick"


def test_every_claim_reads_the_full_record_whatever_the_preset(tmp_path):
    cache = _cache(tmp_path)
    _store(cache, _frame(), preset="quick")
    _store(cache, _frame(bp=0.014), preset="paper")
    full = rq4.claims_benchmark(cache=cache)
    assert full.attrs["record"]["config"]["preset"] == "paper"
    for preset in ("quick", "paper"):
        rows = rq4.scorecard_rows(preset, cache=cache).set_index("claim")
        assert set(rows.record) == {f"BenchConfig {full.attrs['record']['key']} (commit "
                                    f"{str(full.attrs['record']['environment']['commit'])[:7]}; saved "
                                    f"{full.attrs['record']['saved'][:10]})"}
        assert rows.loc["FG (k = 1) is faster per step than BP", "ours"] == "T_FG/T_BP = 0.49 (faster)"  # 0.0069/0.014
    assert rq4.record_name(full).startswith(f"the full benchmark BenchConfig {full.attrs['record']['key']}")


def test_page_baydin_section_and_scorecard_state_one_number_from_the_committed_record():
    from fg_analysis.publish import pages

    frame = rq4.claims_benchmark()
    if frame is None:
        pytest.skip("no benchmark record in results/published")
    record = frame.attrs["record"]
    model, fit_ks = record["config"]["reference_model"], tuple(record["config"]["fit_ks"])
    steps = frame[(frame.section == "step") & (frame.phase == "step") & (frame.model == model) & (frame.k == 1)]
    fg1 = steps[(steps.method == "vmap") & (steps.aggregator == "mean")].over_bp.iloc[0]  # the stored paired ratio
    rows = rq4.scorecard_rows("quick").set_index("claim")
    assert rows.loc["FG (k = 1) is faster per step than BP", "ours"].startswith(f"T_FG/T_BP = {fg1:.2f} (")
    assert rows.loc["FG (k = 1) is faster per step than BP", "record"].startswith(f"BenchConfig {record['key']}")
    sentence = rq4.baydin_sentence(frame, None)
    assert f"takes {fg1:.2f}× as long as BP with weight perturbation" in sentence and record["key"] in sentence
    numbers = pages.rq4_numbers(frame, model=model, fit_ks=fit_ks)
    summary = pages.rq4_summary(numbers, name=model, device="cpu")
    assert f"a single-tangent FG step {fg1:.2f}× as long" in summary
    worst = rows.loc["the projection costs about as much as the mean for k ≤ 16", "ours"]
    assert worst == f"at most {numbers['projection_over_mean_max_small']:.2f}× the mean's step"
    loop = rows.loc["vmapped JVPs make an FG step (k = 16) faster than the per-tangent loop", "ours"]
    assert loop.startswith(f"{numbers['vmap_over_loop_k16']:.2f}× faster")


def test_no_record_gives_an_empty_frame_with_the_scorecard_columns(tmp_path):
    rows = rq4.scorecard_rows("quick", cache=_cache(tmp_path))
    assert rows.empty and list(rows.columns) == list(SCORECARD_COLUMNS)


def test_partial_training_runs_are_read_from_the_records(tmp_path):
    cache = _cache(tmp_path)
    assert rq4.training_runs(cache) is None
    _runs(cache, HISTORIES)
    runs = rq4.training_runs(cache)
    assert sorted(runs.approach.unique()) == ["BP", "FG", "projection k=16"]
    assert len(runs.attrs["records"]) == 5 and set(runs["mode"]) == {"oracle"}


def test_time_to_accuracy_is_the_first_epoch_at_the_target_averaged_over_seeds(tmp_path):
    cache = _cache(tmp_path)
    _runs(cache, HISTORIES)
    table = rq4.time_to_accuracy(rq4.training_runs(cache), 0.9).set_index("approach")
    assert list(table.index) == ["BP", "FG", "projection k=16"]
    assert table.loc["BP", "seconds"] == pytest.approx(11.0) and table.loc["BP", "reached"] == 2
    # seed 0 reaches 0.9 at 13 s; seed 1 only at 17 s (0.89 at 13 s)
    assert table.loc["FG", "seconds"] == pytest.approx(15.0) and table.loc["FG", "over_bp"] == pytest.approx(15 / 11)
    assert table.loc["projection k=16", "reached"] == 0 and pd.isna(table.loc["projection k=16", "seconds"])
    assert table.loc["projection k=16", "best_val_accuracy"] == 0.7
    assert rq4.time_to_accuracy(rq4.training_runs(cache), 0.9, clock="train_time_s").set_index(
        "approach").loc["BP", "seconds"] == pytest.approx(5.5)


def test_frontier_keeps_the_points_no_faster_point_beats(tmp_path):
    cache = _cache(tmp_path)
    _runs(cache, HISTORIES)
    points = rq4.frontier(rq4.training_runs(cache))
    best = points[points.on_frontier]
    assert list(best.wall_time_s) == sorted(best.wall_time_s)
    assert best.val_accuracy.is_monotonic_increasing  # along the frontier, more time buys more accuracy
    for index, point in points[~points.on_frontier].iterrows():  # every other point is dominated (or a tie)
        others = points.drop(index)
        assert ((others.wall_time_s <= point.wall_time_s) & (others.val_accuracy >= point.val_accuracy)).any()
    assert ("BP", 2) in set(zip(best.approach, best.epoch))


def test_baydin_sentence_is_computed_from_the_measured_ratios(tmp_path):
    cache = _cache(tmp_path)
    _runs(cache, HISTORIES)
    frame = _frame()
    text = rq4.baydin_sentence(frame, rq4.training_runs(cache), target=0.9)
    assert "up to twice as fast" in text
    assert "1.97× as long as BP with weight perturbation" in text  # 0.0069 / 0.0035
    assert "2.00× as long as BP with activity perturbation" in text
    assert "the claim does not hold here" in text
    assert "FG reached 90% validation accuracy after 15 s" in text and "1.4× BP's wall time" in text
    assert "oracle JVPs" in text
    fast = rq4.baydin_sentence(_frame(bp=0.010), None)  # 0.0069 / 0.010
    assert "the claim holds here" in fast and "within the claimed 2×" in fast
    assert rq4.baydin_sentence(None, None) == ""


def test_scorecard_gets_the_time_to_accuracy_row_when_runs_are_stored(tmp_path):
    cache = _cache(tmp_path)
    _store(cache, _frame())
    _runs(cache, HISTORIES)
    rows = rq4.scorecard_rows("quick", cache=cache).set_index("claim")
    row = rows.loc["FG reaches 90% validation accuracy on MNIST in less wall time than BP"]
    assert row.verdict == "does not hold" and row.source == "Baydin et al." and "1.4×" in row.ours
    assert row.record.startswith("TrainingRun ×5")


def test_activity_table_puts_rq3s_mode_beside_weight_perturbation():
    table = rq4.activity_table(_frame()).set_index("k")
    assert list(table.index) == [1, 16]
    assert table.loc[1, "activity forward / BP"] == pytest.approx(2.0)
    assert table.loc[16, "weight / BP"] == pytest.approx(0.037 / 0.0035)


def test_the_committed_record_is_read_without_running_a_benchmark():
    assert "rq4" in SCORECARD_MODULES
    start = time.perf_counter()
    rows = rq4.scorecard_rows("quick")
    if rows.empty:
        pytest.skip("no benchmark record in results/published")
    assert time.perf_counter() - start < 10  # reads CSVs only
    assert len(rows) >= 5 and rows.setup.str.contains("benchmark|MNIST").all()
