"""The learning-rate search on Optuna (fg_analysis.experiments.lr_search): a short search from the CLI resumed
from its stored study, interrupted trials retried, diverging trials recorded, pruning that stops a run early, the
reference's final choice, and promotion into the table with provenance."""

import json
import math
import os
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from fg_analysis.experiments import learning_rates, lr_search
from fg_analysis.experiments.lr_search import (PARAM, SEARCHED_COLUMNS, SearchSetting, SearchTrial, choose,
                                               make_pruner, open_study, promote, run_trial, search, study_path)

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TINY = dict(dataset="digits", epochs=2, max_train=256)


def cli(*args):
    result = subprocess.run([sys.executable, "-m", "fg_analysis", "lr-search", *args], capture_output=True,
                            text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def trials_of(path):
    study = optuna.load_study(study_name=path.stem, storage=f"sqlite:///{path}")
    return study, [(t.number, t.state, t.params.get(PARAM), t.value) for t in study.trials]


def test_cli_search_resumes_from_its_stored_study_and_promotes(tmp_path):
    start = time.perf_counter()
    common = ["--dataset", "digits", "--approach", "projection:4", "--epochs", "2", "--max-train", "256",
              "--studies", str(tmp_path), "--no-progress"]
    first = cli("run", "--trials", "3", *common)
    report = json.loads(first.stdout.strip().splitlines()[-1])["studies"]
    (name, info), = report.items()
    path = study_path(SearchSetting(aggregator="projection", k=4, **TINY), tmp_path)
    assert info["path"] == str(path) and path.is_file() and info["finished"] == 3
    _, before = trials_of(path)
    second = cli("run", "--trials", "5", *common)  # the same study, extended: only two more trials run
    assert json.loads(second.stdout.strip().splitlines()[-1])["studies"][name]["finished"] == 5
    study, after = trials_of(path)
    assert after[:3] == before and len(after) == 5
    assert all(math.log10(t.user_attrs["lr"]) == pytest.approx(t.params[PARAM]) for t in study.trials)
    assert {t.user_attrs["placement"]["torch_threads"] for t in study.trials} == {1}
    shown = cli("show", "--studies", str(tmp_path))
    assert name in shown.stdout
    table = tmp_path / "searched.csv"
    pd.DataFrame([{"model": "fc_w=256", "dataset": "mnist1d", "gradient_approach": "bp", "k": math.nan,
                   "lr": 0.5}]).to_csv(table, index=False)
    cli("promote", "--studies", str(tmp_path), "--table", str(table))
    rows = learning_rates.read_table(table)
    assert list(rows.columns) == list(SEARCHED_COLUMNS) and len(rows) == 2  # the other row is kept
    row = rows[rows["dataset"] == "digits"].iloc[0]
    assert (row["gradient_approach"], row["k"], row["budget"], row["epochs"], row["max_train"], row["study"]) == \
        ("frog", 4.0, 5, 2, 256, name)
    assert row["lr"] == pytest.approx(choose(study)["lr"]) and isinstance(row["commit"], str)
    print(f"CLI search 3 + 2 trials, show, promote: {time.perf_counter() - start:.1f} s")


def test_interrupted_trials_are_retried_and_a_divergence_is_a_pruned_trial(tmp_path):
    setting = SearchSetting(method="fg", aggregator="mean", k=1, **TINY)
    study = open_study(setting, tmp_path)
    left = study.ask({PARAM: FloatDistribution(-6.0, 0.0)})  # a trial left RUNNING by a killed search
    search(setting, trials=2, studies=tmp_path, enqueue=[0.0], progress=False)  # lr = 1: FG k=1 diverges
    study, trials = trials_of(study_path(setting, tmp_path))
    assert trials[0][1] == TrialState.FAIL and study.trials[0].user_attrs["interrupted"]
    assert trials[1][2] == pytest.approx(left.params[PARAM])  # the interrupted rate is tried again first
    diverged = [t for t in study.trials if t.params[PARAM] == 0.0]
    assert len(diverged) == 1 and diverged[0].state == TrialState.PRUNED
    assert diverged[0].user_attrs["stopped"] == "diverged"
    assert lr_search.summary(study)["finished"] == 2  # the interrupted trial does not count


def test_the_pruner_stops_a_hopeless_run_early():
    setting = SearchSetting(method="bp", aggregator="mean", k=1, dataset="digits", epochs=6, max_train=256)
    good = [optuna.trial.create_trial(params={PARAM: -1.0}, distributions={PARAM: FloatDistribution(-6, 0)},
                                      value=0.01, intermediate_values={e: 0.01 for e in range(1, 7)})
            for _ in range(5)]
    outcome = run_trial(SearchTrial(setting, 1e-6, 5), pruner=make_pruner("median"), finished=good)
    assert outcome["stopped"] == "pruned" and outcome["epochs_run"] < 6
    free = run_trial(SearchTrial(setting, 1e-6, 5))
    assert free["stopped"] == "epochs" and free["epochs_run"] == 6
    assert free["values"][1] == pytest.approx(outcome["values"][1])  # the watch sees what train logged


def test_guided_approaches_are_searchable_settings():
    parsed = lr_search.build_parser().parse_args(["run", "--approach", "guided:13", "--approach", "output:15",
                                                   "--approach", "guess", "--model", "cnn"])
    assert parsed.approach == [("guided", "projection", 13), ("output", "projection", 15), ("guess", "projection", 0)]
    names = [SearchSetting(model="cnn", width=None, dataset="mnist", method=m, aggregator=a, k=k).name
             for m, a, k in parsed.approach]
    assert names == ["cnn-mnist-guided-k13-e20-p10-b64-s0-oracle", "cnn-mnist-guided-output-k15-e20-p10-b64-s0-oracle",
                     "cnn-mnist-guess-k0-e20-p10-b64-s0-oracle"]
    with pytest.raises(ValueError, match="projection"):
        SearchSetting(method="guided", aggregator="mean", k=2)


def test_choose_takes_the_log_mean_of_the_trials_within_five_percent():
    study = optuna.create_study()
    distribution = {PARAM: FloatDistribution(-6, 0)}
    for exponent, loss in ((-1.0, 1.00), (-2.0, 1.04), (-3.0, 1.03), (-2.4, 1.02), (-5.0, 2.0)):
        study.add_trial(optuna.trial.create_trial(params={PARAM: exponent}, distributions=distribution, value=loss))
    study.add_trial(optuna.trial.create_trial(params={PARAM: -0.5}, distributions=distribution,
                                              state=TrialState.PRUNED))
    chosen = choose(study)
    # within 5 % of 1.00: -1, -2, -3, -2.4 (mean -2.1): the closest is -2.0
    assert chosen["candidates"] == 4 and chosen["lr"] == pytest.approx(1e-2) and chosen["best_val_loss"] == 1.0


def test_bad_input_is_one_line(tmp_path):
    for args, expected in ((["run", "--trials", "0"], "--trials"),
                           (["promote", "--studies", str(tmp_path)], "no stored studies"),
                           (["run", "--executor", "mpi", "--trials", "1", "--studies", str(tmp_path)],
                            "mpi4py.futures launcher")):
        result = subprocess.run([sys.executable, "-m", "fg_analysis", "lr-search", *args], capture_output=True,
                                text=True, env=ENV, timeout=120)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert expected in result.stderr
    with pytest.raises(ValueError):
        SearchSetting(method="fg", aggregator="sum", k=2)
    partial = SearchSetting(**TINY)
    search(partial, trials=1, studies=tmp_path, progress=False)
    open_study(partial, tmp_path).set_user_attr("budget", 3)
    with pytest.raises(lr_search.SearchError, match="1 of its 3 trials"):
        promote(studies=tmp_path, table=tmp_path / "t.csv")


def test_a_commit_hash_of_digits_only_reads_back_as_text(tmp_path):
    """A short hash such as 2934274 must not become the number 2934274.0 when the table is read back."""
    table = tmp_path / "searched.csv"
    pd.DataFrame([{"model": "fc_w=256", "lr": 0.5, "commit": "2934274", "study": "0123"}]).to_csv(table, index=False)
    rows = learning_rates.read_table(table)
    assert (rows["commit"].iloc[0], rows["study"].iloc[0]) == ("2934274", "0123")
