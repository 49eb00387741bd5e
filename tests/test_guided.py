"""The guided-tangents chapter's experiments (fg_analysis.experiments.guided) on tiny configs in a temporary cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fg_analysis.runs.cache import ResultsCache
from fg_analysis.publish import pages
from fg_analysis.experiments import guided
from fg_analysis.experiments.lr_search import SearchTrial, run_trial
from fg_analysis.experiments.learning_rates import GUIDED_APPROACHES, paper_lr, searched_table
from fg_analysis.nets.models import build_model
from fg_analysis.nets.approaches import guided_label
from fg_analysis.experiments.learning_rates import head_rate
from fg_analysis.nets.approaches import jvp_count, network_label
from fg_analysis.bench.guided import cost_table


@pytest.fixture
def cache(tmp_path):
    return ResultsCache(tmp_path, published=None)


def test_theory_cells_match_the_closed_forms(cache):
    config = guided.TheoryConfig(dims=(32,), angles=(45.0, 90.0), tangent_counts=(0, 2, 8), samples=3000)
    frame = guided.run_theory(config, cache=cache)
    assert len(frame) == 2 * 3 * 2
    assert frame["z"].abs().max() < 4.5                              # Monte Carlo within its error
    deterministic = frame[(frame["approach"] == "guess + k random") & (frame["k"] == 0)]
    np.testing.assert_allclose(deterministic["cos2_mean"], deterministic["theory_cos2"], atol=1e-12)
    assert (frame["cos_mean"] - frame["theory_cos"]).abs().max() < 0.01
    assert "Over" in guided.theory_sentence(frame)


def test_network_cosines_follow_the_closed_form_at_each_samples_guess(cache):
    config = guided.CosineConfig(networks=(("fc", 32),), checkpoints=(0, 1), tangent_counts=(0, 4), repeats=2,
                                 max_train=256)
    frame = guided.run_cosines(config, cache=cache)
    rows = frame[frame["approach"] != "stage"]
    assert set(rows["approach"]) == {"random", "guided", "output"}
    # two draws of batch-shared tangents: a loose check here (test_guides.py has the Monte-Carlo test)
    assert (rows["cos2_mean"] - rows["theory_cos2"]).abs().max() < 0.08
    alone = rows[(rows["approach"] == "guided") & (rows["k"] == 0)]
    np.testing.assert_allclose(alone["cos2_mean"], alone["rho2_mean"], rtol=1e-6)   # no random tangent: cos = ρ
    stages = guided.stage_table(frame)
    assert (stages.loc[stages["stage"] == "output", "guess_cosine"] > 1 - 1e-6).all()   # exact output guess
    numbers = guided.network_numbers(frame, network="FC-32", checkpoint=1, jvps=4)
    assert "FC-32 after 1" in guided.network_sentence(numbers)


def test_training_units_and_tables(cache):
    config = guided.TrainingConfig(networks=(("fc", 16),), approaches=(("bp", 0), ("random", 4), ("guided", 1),
                                                                       ("guess", 0)), epochs=1, max_train=128)
    frame = guided.run_training(config, cache=cache)
    table = guided.final_table(frame)
    assert list(table["label"]) == ["BP", "random k=4", "guess + 1 random", "guess"]
    assert list(table["jvps"]) == [0, 4, 4, 3]
    assert (table.loc[table["label"].str.startswith("guess"), "heads_time_s"] > 0).all()
    assert set(table["lr_source"]) == {"paper", "paper-nearest"}
    assert "Test accuracy" in guided.training_sentence(frame, "FC-16")
    with pytest.raises(ValueError, match="FC-256"):
        guided.training_sentence(frame, "FC-256")
    assert guided.stored(config, cache=cache) is not None
    assert guided.stored(guided.TrainingConfig(epochs=2, max_train=64), cache=cache) is None


def synthetic_training(accuracies: dict) -> pd.DataFrame:
    """A training frame as train_unit makes it: two epochs per (label, seed) with the given test accuracies."""
    rows = []
    for (label, jvps), per_seed in accuracies.items():
        for seed, accuracy in enumerate(per_seed):
            for epoch in (0, 1):
                rows.append({"network": "FC-8", "label": label, "jvps": jvps, "seed": seed, "epoch": epoch,
                             "lr": 0.1, "lr_source": "test", "val_loss": 1.0 - 0.1 * epoch, "val_accuracy": 0.5,
                             "test_accuracy": accuracy, "train_time_s": 1.0 + epoch, "heads_time_s": 0.25,
                             "max_train": 100})
    return pd.DataFrame(rows)


def test_guided_against_random_pairs_by_seed_with_a_t_interval():
    frame = synthetic_training({("random k=4", 4): [0.80, 0.70, 0.90], ("guess + 1 random", 4): [0.85, 0.74, 0.96],
                                ("BP", 0): [0.99, 0.98, 0.97]})
    row, = guided.guided_against_random(frame).itertuples()
    differences = np.array([0.05, 0.04, 0.06])
    half = stats.t.ppf(0.975, 2) * differences.std(ddof=1) / np.sqrt(3)
    assert (row.jvps, row.guided, row.random, row.seeds) == (4, "guess + 1 random", "random k=4", 3)
    assert row.difference == pytest.approx(0.05) and row.ci == pytest.approx(half)
    assert row.verdict == "holds"  # 0.05 ± 0.025: paired, the seeds' spread (0.7–0.9) cancels
    table = guided.final_table(frame)
    random = table[table["label"] == "random k=4"].iloc[0]
    assert random.test_accuracy_ci == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3))
    assert "0.800 ± 0.248" in guided.training_table(frame)["test acc. (95% CI)"].tolist()
    one_seed = guided.guided_against_random(frame[frame["seed"] == 0])
    assert one_seed["verdict"].tolist() == ["inconclusive"]
    unmatched = frame[~((frame["label"] == "random k=4") & (frame["seed"] == 2))]  # seed 2 has no random run
    row, = guided.guided_against_random(unmatched).itertuples()
    assert row.seeds == 2 and row.difference == pytest.approx(0.045)  # the pairs of seeds 0 and 1 only


def test_scorecard_rows_test_fourniers_claim_on_the_stored_runs(cache):
    assert guided.scorecard_rows(cache=cache).empty  # nothing stored: no rows, nothing trained
    config = guided.TrainingConfig.preset("mnist")
    better = {"random": 0.0, "guided": 0.02}
    for unit in config.runs():  # a synthetic stored run per unit: guided 0.02 above random, paired by seed
        accuracy = 0.9 + 0.01 * unit.seed + better.get(unit.approach, 0.0)
        frame = pd.DataFrame({"epoch": [0, 1], "val_loss": [2.0, 1.0], "val_accuracy": [0.5, 0.8],
                              "train_time_s": [0.0, 1.0], "test_accuracy": accuracy, "heads_time_s": 0.1,
                              "jvps": jvp_count(unit.approach, unit.k), "max_train": unit.max_train,
                              "label": guided_label(unit.approach, unit.k), "seed": unit.seed,
                              "lr": unit.lr, "lr_source": unit.lr_source,
                              "network": network_label(unit.model, unit.width)})
        cache.save(unit, frame, wall_time=1.0)
    rows = guided.scorecard_rows(cache=cache)
    assert len(rows) == 4 and set(rows["verdict"]) == {"holds"}  # 2 networks × (4, 16 JVPs)
    assert set(rows["source"]) == {"Fournier et al."} and rows["record"].str.startswith("GuidedRun ×42").all()
    assert rows["claim"].str.contains("FC-256, 16 JVPs: guess \\+ 13 random against random k=16").any()
    from fg_analysis.experiments import distinct_claims

    tables = dict(pages.scorecard_tables(distinct_claims(pd.concat([rows.assign(question="Guided"),
                                                                    rows.assign(question="RQ3", source="paper")]))[0]))
    assert list(tables) == ["RQ3: claims of the paper", "Beyond the paper, guided tangents: claims of Fournier et al."]


def test_search_sentence_reads_the_searched_table():
    config = guided.TrainingConfig(networks=(("fc", 7),), approaches=(("bp", 0),))
    assert guided.search_sentence(config).startswith("None of the 1 rates is searched")
    shipped = guided.TrainingConfig.preset("mnist")
    rows = searched_table()
    stored_here = rows[(rows["dataset"] == "mnist") & (rows["epochs"] == 5) & (rows["max_train"] == 10000)]
    expected = f"{len(stored_here)} of the {len(shipped.search_settings())} rates come from this package's search"
    assert guided.search_sentence(shipped).startswith(expected)


def test_rates_are_searched_else_the_nearest_paper_approach():
    # a network without a search here: the paper's FC-256 rates, a guided approach that of the nearest JVP count
    assert guided.rate("fc", 16, "guided", 13) == (guided.rate("fc", 16, "random", 16)[0], "paper-nearest")
    assert guided.rate("fc", 16, "guess", 0)[0] == guided.rate("fc", 16, "random", 4)[0]
    assert guided.rate("fc", 16, "random", 16) == (paper_lr("fc_nns", model="fc_w=256", dataset="mnist", method="fg",
                                                            aggregator="projection", k=16), "paper")
    assert jvp_count("guided", 13) == 16 and jvp_count("output", 15) == 16
    # every row of lrs/searched.csv for a guided approach is what rate() returns for it
    table = searched_table()
    for row in table[table["gradient_approach"].isin(GUIDED_APPROACHES.values())].itertuples():
        approach = {v: k for k, v in GUIDED_APPROACHES.items()}[row.gradient_approach]
        model, width = ("fc", int(row.model.split("=")[1])) if row.model.startswith("fc") else (row.model, None)
        assert guided.rate(model, width, approach, int(row.k), dataset=row.dataset) == (row.lr, "searched")


def test_a_search_trial_trains_what_a_training_run_trains():
    """The learning-rate search of a guided approach (lr_search.run_trial) and the chapter's training unit
    (train_unit) train the same network the same way: equal validation losses per epoch."""
    unit = guided.GuidedRun("fc", 16, "digits", "guided", 2, 0, 0.05, "test", head_rate(), 2, 10, 64,
                            "oracle", 256)
    history = guided.train_unit(unit)
    config = guided.TrainingConfig(networks=(("fc", 16),), dataset="digits", approaches=(("guided", 2),), epochs=2,
                                   max_train=256)
    setting, = config.search_settings()
    assert (setting.method, setting.aggregator, setting.k, setting.approach) == ("guided", "projection", 2, "guided")
    outcome = run_trial(SearchTrial(setting, 0.05, 0))
    losses = history.loc[history["epoch"] > 0, "val_loss"].to_numpy()
    assert outcome["stopped"] == "epochs" and np.allclose([outcome["values"][e] for e in (1, 2)], losses)


def test_cost_table_counts_the_heads_next_to_the_jvps():
    cost = cost_table(width=32, steps=1, tangent_counts=(4,))
    heads = cost[cost["head_flops"] > 0]
    assert len(heads) == 1 and 0 < float(heads["head_share_of_forward_flops"].iloc[0]) < 0.5
    assert (cost["step_ms"] > 0).all()
    assert "the FC-32 forward pass costs" in guided.cost_sentence(cost, "FC-32")


def test_small_cnn_has_three_stages():
    net = build_model("cnn", input_shape=(1, 28, 28), n_classes=10, seed=0)
    assert [tuple(s) for s in net.activity_shapes((1, 28, 28))] == [(8, 14, 14), (16, 7, 7), (10,)]


def test_a_search_that_cannot_run_is_one_line(tmp_path, monkeypatch, capsys):
    """Another process holds the first study's lock: exit status 2, one line naming it, nothing run."""
    import fcntl

    from fg_analysis.experiments.lr_search import study_path

    monkeypatch.setenv("FG_STUDIES", str(tmp_path))
    first = guided.TrainingConfig.preset("quick").search_settings()[0]
    path = study_path(first)
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        status = guided.main(["--preset", "quick", "--part", "search", "--trials", "1", "--no-progress"])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(error) == 1 and "being searched by another process" in error[0]
    assert not path.exists()


def test_chapter_refuses_a_gpu():
    with pytest.raises(ValueError):
        guided.chapter(device="cuda")
