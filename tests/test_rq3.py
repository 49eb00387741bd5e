"""RQ3 experiment: presets, learning-rate resolution, a tiny cached sweep, summary, JSON line of the CLI."""

import json

import numpy as np
import pandas as pd
import pytest

from fg_analysis.experiments import learning_rates
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.experiments import rq3
from fg_analysis.nets.approaches import PAPER_APPROACHES

TINY = rq3.RQ3Config(networks=(("fc", 16),), approaches=(("bp", "mean", 1), ("fg", "mean", 1),
                                                         ("fg", "projection", 16)),
                     seeds=(0, 1), epochs=2, max_train=256)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    cache = ResultsCache(tmp_path_factory.mktemp("cache"), published=None)
    return rq3.run(TINY, cache=cache, progress=False), cache


def test_presets():
    quick = rq3.RQ3Config.preset("quick")
    assert len(quick.runs()) == 6 * 3 and {u.mode for u in quick.runs()} == {"forward"}
    assert {u.dataset for u in quick.runs()} == {"mnist"} and {u.lr_source for u in quick.runs()} == {"paper"}
    assert {u.max_train for u in quick.runs()} == {rq3.QUICK_MAX_TRAIN} and {u.epochs for u in quick.runs()} == {10}
    mnist = rq3.RQ3Config.preset("mnist-fc").runs()
    assert len(mnist) == 8 * 3 and {u.max_train for u in mnist} == {None} and {u.mode for u in mnist} == {"oracle"}
    paper = rq3.RQ3Config.preset("paper")
    units = paper.runs()
    assert {u.model for u in units} == {"fc", "resnet18", "vit"} and {u.epochs for u in units} == {200}
    assert {u.mode for u in units if u.model == "resnet18"} == {"oracle"}
    assert not [u for u in units if u.model != "fc" and u.dataset == "mnist1d"]
    with pytest.raises(ValueError, match="preset"):
        rq3.RQ3Config.preset("huge")


def test_learning_rates():
    assert rq3.resolve_lr("fc", 256, "mnist", "bp", "mean", 1) == (learning_rates.paper_lr(
        "fc_nns", model="fc_w=256", dataset="mnist", method="bp"), "paper")
    lr, source = rq3.resolve_lr("fc", 256, "digits", "fg", "projection", 16)
    assert source == "searched" and lr == learning_rates.searched_rate(model="fc_w=256", dataset="digits", method="fg",
                                                                aggregator="projection", k=16)
    assert rq3.resolve_lr("vit", None, "digits", "fg", "mean", 4)[1] == "paper-mnist"


def test_sweep_columns_summary_and_cache(frame):
    data, cache = frame
    for column in ["method", "aggregator", "k", "seed", "model", "dataset", "epoch", "train_loss", "val_loss",
                   "train_accuracy", "val_accuracy", "test_accuracy", "cosine", "wall_time_s", "approach"]:
        assert column in data.columns
    table = rq3.summary(data)
    assert table["approach"].tolist() == ["BP", "FG", "projection k=16"]
    assert (table["seeds"] == 2).all() and table["mean"].between(0, 1).all()
    again = rq3.run(TINY, cache=cache, progress=False)
    assert again["test_accuracy"].equals(data["test_accuracy"])  # read back from the cache
    gap = rq3.gap_to_bp(data)
    assert set(gap["approach"]) == {"FG", "projection k=16"}
    curves = rq3.learning_curves(data)
    assert len(curves) == 3 * 3


def test_cli_prints_one_json_line_last(frame, monkeypatch, capsys):
    _, cache = frame
    monkeypatch.setattr(rq3.RQ3Config, "preset", classmethod(lambda cls, name, seed=0: TINY))
    monkeypatch.setattr(rq3, "ResultsCache", lambda: cache)
    assert rq3.main(["--preset", "quick", "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    payload = json.loads(last)
    assert payload["device"] == "cpu" and set(payload["test_accuracy"]["fc_w=16 digits"]) == {
        "BP", "FG", "projection k=16"}


def test_cli_publish_stores_the_runs_in_the_published_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(rq3.RQ3Config, "preset", classmethod(lambda cls, name, seed=0: TINY))
    monkeypatch.setattr("fg_analysis.runs.cli.PUBLISHED", tmp_path)
    assert rq3.main(["--preset", "quick", "--no-progress", "--publish"]) == 0
    assert len(list((tmp_path / "TrainingRun").glob("*/record.json"))) == len(TINY.runs())


def test_scorecard_rows_have_the_shared_columns(frame):
    from fg_analysis.experiments import SCORECARD_COLUMNS

    rows = rq3.scorecard(frame[0])
    assert list(rows.columns) == list(SCORECARD_COLUMNS) and len(rows) >= 1


def test_stored_reads_the_cache_and_never_trains(frame, tmp_path, monkeypatch):
    import shutil

    data, cache = frame
    monkeypatch.setattr(rq3, "run_unit", lambda *args, **kwargs: pytest.fail("stored() must not train"))
    assert rq3.stored(TINY, cache=ResultsCache(tmp_path / "empty", published=None)) is None
    found = rq3.stored(TINY, cache=cache)
    assert found is not None and len(found) == len(data)
    assert found["test_accuracy"].tolist() == data["test_accuracy"].tolist()
    assert rq3.summary(found)["test_accuracy"].tolist() == rq3.summary(data)["test_accuracy"].tolist()
    origin = rq3.provenance(found)
    assert len(origin) == len(TINY.runs()) and set(origin["device"]) == {"cpu"} and origin["saved"].notna().all()
    # read from the published folder too; one missing unit gives None, not a partial table
    shutil.copytree(cache.root, tmp_path / "published")
    published = ResultsCache(tmp_path / "writable", published=tmp_path / "published")
    assert rq3.stored(TINY, cache=published) is not None
    shutil.rmtree(next((tmp_path / "published" / "TrainingRun").iterdir()))
    assert rq3.stored(TINY, cache=published) is None


def test_stored_rows(frame, tmp_path):
    from fg_analysis.experiments import SCORECARD_COLUMNS

    rows = rq3.stored_rows(TINY, cache=frame[1])
    assert list(rows.columns) == list(SCORECARD_COLUMNS) and len(rows) == 3  # BP ≥ 90%, two paired claims
    assert rows["claim"].str.contains("fc_w=16").all() and rows["claim"].str.startswith("BP trains").sum() == 1
    assert rows["claim"].str.endswith("(stored paper-protocol runs)").all()
    assert rows["record"].str.startswith(f"TrainingRun ×{len(TINY.runs())} (commit").all()
    assert rows["section"].eq("rq3_networks#rq3-paper").all() and "6 of 6 so far" in rows["setup"].iloc[0]
    empty = rq3.stored_rows(TINY, cache=ResultsCache(tmp_path, published=None))
    assert list(empty.columns) == list(SCORECARD_COLUMNS) and empty.empty


def test_stored_partial_reads_the_runs_stored_so_far(frame, tmp_path):
    import dataclasses

    data, cache = frame
    more = dataclasses.replace(TINY, seeds=(0, 1, 2))           # seed 2 was never run
    assert rq3.stored(more, cache=cache) is None
    found = rq3.stored(more, cache=cache, partial=True)
    assert found.attrs["stored"] == len(TINY.runs()) and found.attrs["units"] == len(more.runs())
    assert sorted(found["seed"].unique()) == [0, 1]
    assert rq3.stored(more, cache=ResultsCache(tmp_path, published=None), partial=True) is None


def _frame(accuracy: dict, epochs: dict | None = None, width: int = 256) -> pd.DataFrame:
    """Runs of the FC net of ``width`` with the given test accuracies per seed (a list, seeds 0, 1, ..., or a dict
    ``{seed: accuracy}``); ``epochs[approach]`` lists each seed's epochs run (default 1, stopped early); a run that
    reaches the budget of 3 epochs stopped there ("epochs"). The validation loss is ``1 − accuracy`` at the last
    (best) epoch and 0.1 more per epoch before it; the cosine ``0.01 k · epoch + 0.001 seed`` from epoch 1."""
    rows = []
    for approach, values in accuracy.items():
        method = "bp" if approach == "BP" else "fg"
        aggregator, k = ("mean", "1") if approach in ("BP", "FG") else approach.split(" k=")
        for index, (seed, value) in enumerate(values.items() if isinstance(values, dict) else enumerate(values)):
            last = (epochs or {}).get(approach, [1] * len(values))[index]
            for epoch in range(last + 1):
                rows.append({"model": "fc", "width": width, "network": f"fc_w={width}", "dataset": "mnist",
                             "method": method, "aggregator": aggregator, "k": int(k), "approach": approach,
                             "seed": seed, "epoch": epoch, "val_accuracy": 0.1 if epoch == 0 else value,
                             "val_loss": 1 - value + 0.1 * (last - epoch), "test_accuracy": value,
                             "cosine": np.nan if epoch == 0 else 0.01 * int(k) * epoch + 0.001 * seed,
                             "activity_dimension": 2 * width + 10,
                             "best_epoch": last, "epochs": 3, "stopped": "epochs" if last == 3 else "early-stop",
                             "wall_time_s": 1.0, "train_time_s": 1.0, "lr": 0.1, "lr_source": "paper",
                             "mode": "oracle", "device": "cpu"})
    return pd.DataFrame(rows)


def test_scorecard_verdicts_from_t_intervals_and_learning():
    from fg_analysis.metrics import FAILS, HOLDS, INCONCLUSIVE

    card = rq3.scorecard(_frame({"BP": [0.97, 0.972, 0.974], "FG": [0.58, 0.55, 0.67], "mean k=16": [0.94, 0.93, 0.945],
                                 "projection k=16": [0.941, 0.935, 0.944]})).set_index("claim")["verdict"]
    assert card["BP trains fc_w=256 on mnist to a high test accuracy (≥ 90%)"] == HOLDS
    assert card["projection with k = 16 beats FG (k = 1) on fc_w=256 on mnist"] == HOLDS
    assert card["projection beats mean at k = 16 on fc_w=256 on mnist"] == INCONCLUSIVE   # overlapping intervals
    assert card["a gap to BP remains at k = 16 on fc_w=256 on mnist"] == HOLDS
    chance = rq3.scorecard(_frame({"BP": [0.97, 0.96, 0.975], "FG": [0.09, 0.1, 0.11],
                                   "projection k=16": [0.08, 0.1, 0.09]})).set_index("claim")["verdict"]
    assert chance["projection with k = 16 beats FG (k = 1) on fc_w=256 on mnist"] == INCONCLUSIVE  # did not learn
    one_seed = rq3.scorecard(_frame({"BP": [0.85], "FG": [0.5]})).set_index("claim")["verdict"]
    assert one_seed["BP trains fc_w=256 on mnist to a high test accuracy (≥ 90%)"] == INCONCLUSIVE  # no interval
    low = rq3.scorecard(_frame({"BP": [0.80, 0.81, 0.79]})).set_index("claim")["verdict"]
    assert low["BP trains fc_w=256 on mnist to a high test accuracy (≥ 90%)"] == FAILS


def test_verdicts_are_paired_by_seed():
    """Seeds differ a lot (shared data order and initial weights), but projection beats mean on every seed by
    about 0.01: the unpaired intervals overlap, the paired one lies above 0."""
    from scipy import stats

    from fg_analysis.metrics import HOLDS, INCONCLUSIVE, compare

    mean16, projection16 = [0.90, 0.95, 0.85], [0.910, 0.962, 0.861]
    frame = _frame({"BP": [0.97, 0.972, 0.974], "FG": [0.58, 0.55, 0.67], "mean k=16": mean16,
                    "projection k=16": projection16})
    table = rq3.summary(frame).set_index("approach")
    unpaired = compare(table.loc["projection k=16", "mean"], table.loc["projection k=16", "ci"],
                       table.loc["mean k=16", "mean"], table.loc["mean k=16", "ci"])
    assert unpaired == INCONCLUSIVE  # what overlapping intervals would have said
    row = rq3.comparisons(frame).set_index(["a", "b"]).loc[("projection k=16", "mean k=16")]
    differences = np.subtract(projection16, mean16)
    assert row["difference"] == pytest.approx(differences.mean()) and row["seeds"] == 3
    assert row["ci"] == pytest.approx(stats.t.ppf(0.975, 2) * differences.std(ddof=1) / np.sqrt(3))
    assert row["verdict"] == HOLDS
    card = rq3.scorecard(frame).set_index("claim")
    assert card.loc["projection beats mean at k = 16 on fc_w=256 on mnist", "verdict"] == HOLDS
    assert card.loc["projection beats mean at k = 16 on fc_w=256 on mnist", "ours"].endswith("(3 seeds)")
    # a seed missing on one side drops that pair only; a single pair has no interval
    partial = frame[~((frame["approach"] == "FG") & (frame["seed"] == 2))]
    fg = rq3.comparisons(partial).set_index(["a", "b"]).loc[("BP", "FG")]
    assert fg["seeds"] == 2 and fg["difference"] == pytest.approx(np.mean([0.97 - 0.58, 0.972 - 0.55]))
    single = partial[(partial["approach"] != "FG") | (partial["seed"] == 0)]
    assert rq3.comparisons(single).set_index(["a", "b"]).loc[("BP", "FG"), "verdict"] == INCONCLUSIVE


def test_budget_limited_runs_are_labelled_and_never_carried_forward():
    from fg_analysis.publish import figures, pages

    frame = _frame({"BP": [0.97, 0.96], "mean k=4": [0.80, 0.70]}, epochs={"BP": [2, 1], "mean k=4": [3, 1]})
    runs = rq3.final_runs(frame).set_index(["approach", "seed"])
    assert runs["budget_limited"].to_dict() == {("BP", 0): False, ("BP", 1): False, ("mean k=4", 0): True,
                                                ("mean k=4", 1): False}
    table = rq3.summary(frame)
    assert table.set_index("approach")["budget_limited"].to_dict() == {"BP": 0, "mean k=4": 1}
    assert "| mean k=4 | 0.750 ± 0.635 | 2 | 2 | 1 of 2 |" in pages.rq3_accuracy_table(table)
    assert "mean k=4 (1 of 2)" in pages.rq3_budget_sentence(table) and "3-epoch budget" in pages.rq3_budget_sentence(
        table)
    curves = rq3.learning_curves(frame).set_index(["approach", "epoch"])
    assert curves.loc[("mean k=4", 3), "count"] == 1 and curves.loc[("mean k=4", 3), "mean"] == pytest.approx(0.80)
    assert ("BP", 3) not in curves.index  # no BP run reached epoch 3: nothing carried forward
    figure = figures.rq3_learning_curves(curves.reset_index(), network="fc_w=256", dataset="mnist")
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert "mean k=4 (1 of 2 budget-limited)" in legend and "BP" in legend
    import matplotlib.pyplot as plt

    plt.close(figure)


def test_rq3_figures_give_every_approach_its_own_look():
    from fg_analysis.publish.figures import _rq3_style
    from fg_analysis.nets.approaches import approach_label

    looks = [tuple(map(str, _rq3_style(approach_label(*a)).values())) for a in PAPER_APPROACHES]
    assert len(set(looks)) == len(looks)
    assert _rq3_style("mean k=4")["marker"] != _rq3_style("mean k=16")["marker"]
    assert _rq3_style("mean k=4")["color"] != _rq3_style("mean k=16")["color"]


def test_anchors_set_our_test_errors_beside_ren_et_al():
    frame = _frame({"BP": [0.97, 0.98, 0.975], "FG": [0.90, 0.92, 0.94], "mean k=4": [0.95, 0.96, 0.955]})
    table = rq3.anchors(frame).set_index("method")
    assert list(table.index) == [*rq3.REN_2023, "mean k=4"]
    assert table.loc["BP", "ren"] == rq3.REN_2023["BP"] and table.loc["BP", "ours"] == pytest.approx(2.5)
    assert table.loc["FG, activity-perturbed", "ours"] == pytest.approx(8.0) and table.loc["FA", "seeds"] == 0
    assert np.isnan(table.loc["mean k=4", "ren"]) and table.loc["mean k=4", "ours"] == pytest.approx(4.5)


# ------------------------------------------------------------------------------------------------------------
# width: FC-256 beside FC-1024


def _t_interval(values) -> tuple[float, float]:
    """Mean and 95% t half-width, by hand (scipy's t quantile)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    return values.mean(), stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))


NARROW = {"BP": [0.97, 0.975, 0.98], "FG": [0.90, 0.93, 0.92], "projection k=16": [0.965, 0.97, 0.972]}
#: FC-1024: every run of FG and projection k=16, but BP of seeds 0 and 1 only (seed 2 still missing)
WIDE = {"BP": {0: 0.98, 1: 0.982}, "FG": [0.85, 0.90, 0.86], "projection k=16": [0.97, 0.975, 0.96]}


def _widths(wide: dict = WIDE) -> dict:
    return {256: _frame(NARROW, width=256), 1024: _frame(wide, width=1024)}


def test_stored_widths_read_each_preset_and_join_none_when_nothing_is_stored(tmp_path):
    empty = ResultsCache(tmp_path, published=None)
    frames = rq3.stored_widths(cache=empty)
    assert frames == {256: None, 1024: None} and rq3.joined(frames) is None
    table = rq3.coverage(frames)
    assert table["width"].tolist() == [256, 1024] and table["stored"].tolist() == [0, 0]
    assert table["units"].tolist() == [len(rq3.RQ3Config.preset(name).runs()) for name in rq3.WIDTH_PRESETS.values()]
    assert table["network"].tolist() == ["fc_w=256", "fc_w=1024"] and table["seeds"].tolist() == [{}, {}]


def test_joined_and_coverage_of_two_widths_with_missing_units():
    frames = _widths()
    frames[1024].attrs = {"records": [{"key": "b"}]}
    frames[256].attrs = {"records": [{"key": "a"}]}
    both = rq3.joined(frames)
    assert len(both) == len(frames[256]) + len(frames[1024]) and both.attrs["records"] == [{"key": "a"}, {"key": "b"}]
    table = rq3.coverage(frames).set_index("width")
    assert table.loc[256, "stored"] == 9 and table.loc[1024, "stored"] == 8 and table.loc[1024, "units"] == 24
    assert table.loc[1024, "seeds"] == {"BP": [0, 1], "FG": [0, 1, 2], "projection k=16": [0, 1, 2]}


def test_width_summary_gives_accuracy_and_validation_loss_per_width():
    table = rq3.width_summary(rq3.joined(_widths())).set_index(["width", "approach"])
    for width, accuracy in ((256, NARROW), (1024, WIDE)):
        for approach, values in accuracy.items():
            values = list(values.values()) if isinstance(values, dict) else values
            mean, ci = _t_interval(values)
            row = table.loc[(width, approach)]
            assert row["seeds"] == len(values) and row["accuracy"] == pytest.approx(mean)
            assert row["accuracy_ci"] == pytest.approx(ci)
            # the validation loss of the tested (best-epoch) state: 1 − accuracy by construction
            assert row["val_loss"] == pytest.approx(1 - mean) and row["val_loss_ci"] == pytest.approx(ci)
    assert table.loc[(1024, "BP"), "network"] == "fc_w=1024"


def test_width_differences_and_trends_are_paired_by_seed():
    from fg_analysis.metrics import FAILS, HOLDS, INCONCLUSIVE

    both = rq3.joined(_widths())
    differences = rq3.width_differences(both).set_index(["a", "b", "width"])
    assert differences.loc[("BP", "FG", 256), "difference"] == pytest.approx(np.mean(np.subtract(NARROW["BP"],
                                                                                                NARROW["FG"])))
    wide = differences.loc[("BP", "FG", 1024)]
    assert wide["seeds"] == 2 and wide["difference"] == pytest.approx(np.mean([0.98 - 0.85, 0.982 - 0.90]))
    assert differences.loc[("BP", "mean k=2", 1024), "seeds"] == 0  # no mean k=2 run at all
    assert np.isnan(differences.loc[("BP", "mean k=2", 1024), "difference"])
    trends = rq3.width_trends(both).set_index(["a", "b"])
    # the gap of FG, per seed at both widths (seed 2 has no FC-1024 BP run): (BP − FG)_1024 − (BP − FG)_256
    change = [(0.98 - 0.85) - (0.97 - 0.90), (0.982 - 0.90) - (0.975 - 0.93)]
    mean, ci = _t_interval(change)
    row = trends.loc[("BP", "FG")]
    assert row["seeds"] == 2 and row["change"] == pytest.approx(mean) and row["ci"] == pytest.approx(ci)
    assert row["verdict"] == (HOLDS if mean - ci > 0 else INCONCLUSIVE)
    assert trends.loc[("BP", "mean k=2"), "seeds"] == 0 and trends.loc[("BP", "mean k=2"), "verdict"] == INCONCLUSIVE
    # what 16 tangents gain over one: every seed at both widths; it grows by 0.07-0.1 on each seed
    gain = np.subtract(np.subtract(WIDE["projection k=16"], WIDE["FG"]),
                       np.subtract(NARROW["projection k=16"], NARROW["FG"]))
    row = trends.loc[("projection k=16", "FG")]
    assert row["seeds"] == 3 and row["change"] == pytest.approx(gain.mean()) and row["verdict"] == HOLDS
    shrinking = rq3.width_trends(rq3.joined({256: _frame(NARROW, width=256),
                                             1024: _frame({"BP": [0.98, 0.985, 0.99], "FG": [0.95, 0.97, 0.965]},
                                                          width=1024)})).set_index(["a", "b"])
    assert shrinking.loc[("BP", "FG"), "verdict"] == FAILS  # the gap shrinks on every seed
    single = rq3.width_trends(rq3.joined(_widths({"BP": {0: 0.98}, "FG": {0: 0.85}}))).set_index(["a", "b"])
    assert single.loc[("BP", "FG"), "seeds"] == 1 and single.loc[("BP", "FG"), "verdict"] == INCONCLUSIVE


def test_width_cosines_beside_the_activity_space_closed_form():
    from scipy.special import gammaln

    def chi_mean(n: int) -> float:  # E[χ_n] = √2 Γ((n+1)/2) / Γ(n/2)
        return float(np.sqrt(2) * np.exp(gammaln((n + 1) / 2) - gammaln(n / 2)))

    table = rq3.width_cosines(rq3.joined(_widths())).set_index(["width", "approach"])
    assert sorted(table.index.get_level_values("approach").unique()) == sorted(rq3.FG_APPROACHES)
    for width in (256, 1024):
        assert (table.loc[width, "A"] == 2 * width + 10).all()  # two hidden layers of w and 10 logits
        # projection: E[cos] = E[χ_k] / E[χ_A]; one tangent (FG): E[χ_1] / E[χ_A]
        assert table.loc[(width, "projection k=16"), "theory"] == pytest.approx(chi_mean(16) / chi_mean(2 * width + 10),
                                                                                rel=1e-6)
        assert table.loc[(width, "FG"), "theory"] == pytest.approx(chi_mean(1) / chi_mean(2 * width + 10), rel=1e-6)
    # measured: one epoch ≥ 1 per run (cosine 0.01 k + 0.001 seed), then the t interval over seeds
    mean, ci = _t_interval([0.16 + 0.001 * seed for seed in range(3)])
    row = table.loc[(1024, "projection k=16")]
    assert row["seeds"] == 3 and row["cosine"] == pytest.approx(mean) and row["ci"] == pytest.approx(ci)
    assert table.loc[(1024, "mean k=4"), "seeds"] == 0 and np.isnan(table.loc[(1024, "mean k=4"), "cosine"])
    assert rq3.width_cosines(None)["seeds"].eq(0).all()


def test_width_page_says_what_is_stored_and_what_waits():
    from fg_analysis.publish import figures, pages

    frames = {256: _frame(NARROW, width=256), 1024: _frame({"BP": [0.98]}, width=1024)}
    both, coverage = rq3.joined(frames), rq3.coverage(frames)
    trends = rq3.width_trends(both)
    text = pages.rq3_width_sentence(trends, coverage)
    assert text.startswith("FC-256: 9 of 24 runs stored (BP seeds 0, 1, 2;")
    assert "FC-1024: 1 of 24 runs stored (BP seed 0)" in text
    assert f"waits for the other {48 - 10} runs" in text
    table = pages.rq3_width_table(rq3.width_summary(both), coverage)
    (bp, bp_ci), (fg, fg_ci) = _t_interval(NARROW["BP"]), _t_interval(NARROW["FG"])
    assert f"| BP | {bp:.3f} ± {bp_ci:.3f} (3) | 0.980 (1) |" in table
    assert f"| FG | {fg:.3f} ± {fg_ci:.3f} (3) | waits for runs |" in table
    gaps = pages.rq3_width_gap_table(rq3.width_differences(both), trends)
    mean, ci = _t_interval(np.subtract(NARROW["BP"], NARROW["FG"]))
    assert (f"| gap to BP of FG | {mean:.4f} ± {ci:.4f} (3 seeds) | waits for runs | waits for runs | waits for runs |"
            in gaps)
    # with both widths stored the sentence answers, with the change's interval
    ready = rq3.width_trends(rq3.joined(_widths()))
    answer = pages.rq3_width_sentence(ready, rq3.coverage(_widths()))
    row = ready.set_index(["a", "b"]).loc[("projection k=16", "FG")]
    assert "Does the gap to BP grow with width?" in answer and "Does k help more at the larger width?" in answer
    gain = f"The gain of projection k=16 over FG: grows (change {row['change']:.4f} ± {row['ci']:.4f} (3 seeds))"
    assert gain in answer
    assert "Still waiting for runs: the gap to BP of mean k=2" in answer
    cosines = rq3.width_cosines(both)
    assert "FC-1024 waits for runs" in pages.rq3_width_cosine_sentence(cosines)
    mean, ci = _t_interval([0.01 + 0.001 * seed for seed in range(3)])
    assert f"| FG | {mean:.3f} ± {ci:.3f} (3) | 0.035 | waits for runs | 0.018 |" in pages.rq3_width_cosine_table(
        cosines)
    import matplotlib.pyplot as plt

    figure = figures.rq3_width_gap(rq3.width_differences(rq3.joined(_widths())))
    assert [text.get_text() for text in figure.axes[0].get_legend().get_texts()] == ["FG", "projection k=16"]
    plt.close(figure)
    figure = figures.rq3_width_cosine(cosines)
    assert len(figure.axes[0].get_legend().get_texts()) == 2 + 1  # measured FG and projection k=16, the closed form
    plt.close(figure)


def test_scorecard_claims_of_a_width_with_one_seed_are_inconclusive_and_say_so():
    from fg_analysis.metrics import HOLDS, INCONCLUSIVE

    card = rq3.scorecard(pd.concat([_frame(NARROW, width=256), _frame({"BP": [0.98], "FG": [0.85]}, width=1024)],
                                   ignore_index=True)).set_index("claim")
    wide = card.loc["BP trains fc_w=1024 on mnist to a high test accuracy (≥ 90%)"]
    assert wide["verdict"] == INCONCLUSIVE and "one seed stored: no interval" in wide["ours"]
    assert card.loc["BP trains fc_w=256 on mnist to a high test accuracy (≥ 90%)", "verdict"] == HOLDS
    # no FC-1024 claim for approaches without runs there (projection k=16); the FC-256 one stands
    assert not any("fc_w=1024" in claim and "projection" in claim for claim in card.index)
    assert "projection with k = 16 beats FG (k = 1) on fc_w=256 on mnist" in card.index
