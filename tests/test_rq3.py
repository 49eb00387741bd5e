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
    assert list(rows.columns) == list(SCORECARD_COLUMNS) and len(rows) == 2
    assert rows["claim"].str.contains("fc_w=16").all()
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


def _frame(accuracy: dict, epochs: dict | None = None) -> pd.DataFrame:
    """Runs with the given test accuracies per seed; ``epochs[approach]`` lists each seed's epochs run (default
    1, stopped early); a run that reaches the budget of 3 epochs stopped there ("epochs")."""
    rows = []
    for approach, values in accuracy.items():
        method = "bp" if approach == "BP" else "fg"
        aggregator, k = ("mean", "1") if approach in ("BP", "FG") else approach.split(" k=")
        for seed, value in enumerate(values):
            last = (epochs or {}).get(approach, [1] * len(values))[seed]
            for epoch in range(last + 1):
                rows.append({"model": "fc", "width": 256, "network": "fc_w=256", "dataset": "mnist", "method": method,
                             "aggregator": aggregator, "k": int(k), "approach": approach, "seed": seed,
                             "epoch": epoch, "val_accuracy": 0.1 if epoch == 0 else value, "test_accuracy": value,
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
