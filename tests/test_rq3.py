"""RQ3 experiment: presets, learning-rate resolution, a tiny cached sweep, summary, JSON line of the CLI."""

import json

import pandas as pd
import pytest

from fg_analysis import learning_rates
from fg_analysis.cache import ResultsCache
from fg_analysis.experiments import rq3

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
    monkeypatch.setattr("fg_analysis.cli.PUBLISHED", tmp_path)
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
    assert rows["claim"].str.contains("fc_w=16").all() and rows["claim"].str.endswith("(stored paper-protocol runs)").all()
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


def _frame(accuracy: dict) -> pd.DataFrame:
    rows = []
    for approach, values in accuracy.items():
        method = "bp" if approach == "BP" else "fg"
        aggregator, k = ("mean", 1) if approach in ("BP", "FG") else (approach.split(" k=")[0], int(approach[-2:]))
        for seed, value in enumerate(values):
            for epoch in (0, 1):
                rows.append({"model": "fc", "width": 256, "network": "fc_w=256", "dataset": "mnist", "method": method,
                             "aggregator": aggregator, "k": k, "approach": approach, "seed": seed, "epoch": epoch,
                             "val_accuracy": 0.1 if epoch == 0 else value, "test_accuracy": value, "best_epoch": 1,
                             "stopped": "", "wall_time_s": 1.0, "train_time_s": 1.0, "lr": 0.1, "lr_source": "paper",
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
