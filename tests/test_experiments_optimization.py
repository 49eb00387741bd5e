"""RQ2 experiment: configs, agreement with optimize.minimize, cache reuse, reductions and claims."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fg_analysis import optimize  # noqa: E402
from fg_analysis.cache import ResultsCache  # noqa: E402
from fg_analysis.experiments import SCORECARD_COLUMNS, optimization  # noqa: E402
from fg_analysis.experiments.optimization import OptimizationConfig, OptimizationRun  # noqa: E402


@pytest.fixture
def cache(tmp_path):
    return ResultsCache(tmp_path, published=None)


def test_presets():
    paper, quick = OptimizationConfig.preset("paper"), OptimizationConfig.preset("quick")
    assert paper.dims == tuple(2 ** i for i in range(11)) and paper.seeds == (0, 1, 2, 3, 4)
    assert len(paper.approaches) == 8 and paper.mode == "oracle" and paper.max_steps == ()
    assert paper.steps("rosenbrock") == 25000 and quick.steps("rosenbrock") < 25000
    units = quick.runs()
    assert any(u.problem == "styblinski-tang" and u.n == 64 and u.aggregator == "projection" and u.k == 16
               and u.theta is None for u in units)
    assert not any(u.aggregator == "projection" and u.k > u.n for u in units)
    angle_units = [u for u in units if u.theta is not None]
    assert angle_units and all(u.lr is not None for u in angle_units)
    with pytest.raises(ValueError, match="unknown preset"):
        OptimizationConfig.preset("huge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.mode = "jvp"


def test_a_unit_reproduces_minimize():
    unit = OptimizationRun(problem="styblinski-tang", n=8, method="fg", aggregator="projection", k=4, seeds=(3,),
                           max_steps=60, mode="forward")
    trace = optimization.run_unit(unit)
    reference = optimize.minimize("styblinski-tang", 8, method="fg", aggregator="projection", k=4, seed=3,
                                  max_steps=60, mode="forward")
    np.testing.assert_allclose(trace["f"].to_numpy(), reference["f"].to_numpy(), rtol=1e-12)
    assert trace["lr"].iloc[0] == __import__('fg_analysis.learning_rates').learning_rates.closed_form_rate("styblinski-tang", 8, method="fg", k=4,
                                                               aggregator="projection")
    assert (trace["gap"] == trace["f"] - optimize.get_problem("styblinski-tang").minimum(8)).all()


def test_run_caches_each_unit_and_reductions(cache, monkeypatch):
    config = OptimizationConfig(problems=("sphere", "styblinski-tang"), dims=(4,), seeds=(0, 1),
                                approaches=(("bp", "mean", 1), ("fg", "mean", 1), ("fg", "mean", 2),
                                            ("fg", "projection", 2)),
                                max_steps=(("sphere", 40), ("styblinski-tang", 40)), mode="oracle", angles=())
    traces = optimization.run(config, cache=cache, progress=False)
    assert len(list(cache.root.rglob("result.csv"))) == len(config.runs()) == 8

    def fail(*args, **kwargs):
        raise AssertionError("a second run must read the cache, not compute")

    monkeypatch.setattr(optimization, "descend", fail)
    again = optimization.run(config, cache=cache, progress=False)
    pd.testing.assert_frame_equal(traces, again)

    finals = optimization.final_values(traces)
    assert len(finals) == 8 * 2  # one row per unit and seed
    assert (finals["best_f"] <= finals["last_f"] + 1e-12).all()
    assert set(finals["approach"]) == {"BP", "FG", "mean k=2", "projection k=2"}
    table = optimization.value_table(finals, "best_f")
    assert list(table.columns[:2]) == ["BP", "FG"] and table.shape[0] == 2

    card = optimization.scorecard(traces, config)
    assert tuple(card.columns) == SCORECARD_COLUMNS and (card["question"] == "RQ2").all()
    assert card["holds"].map(type).eq(bool).all()


def test_lr_ratio_table_tracks_the_norm_ratio():
    table = optimization.lr_ratio_table()
    assert len(table) == 45
    corr = np.corrcoef(np.log(table["lr ratio (proj/mean)"]), np.log(table["E|mean|/E|proj| (theory)"]))[0, 1]
    assert corr > 0.95


def test_figures_draw(cache):
    import matplotlib.pyplot as plt

    config = OptimizationConfig(problems=("sphere",), dims=(2, 4), seeds=(0, 1),
                                approaches=(("bp", "mean", 1), ("fg", "projection", 2)),
                                max_steps=(("sphere", 20), ("styblinski-tang", 5)), mode="oracle",
                                angle_tangent_counts=(64,), angles=(90.0,), angle_aggregators=("projection",))
    traces = optimization.run(config, cache=cache, progress=False)
    finals = optimization.final_values(traces)
    for fig in (optimization.plot_convergence(traces, n=4, problems=("sphere",)),
                optimization.plot_final(finals, problems=("sphere",)), optimization.plot_fixed_angle(finals)):
        assert fig.axes
        plt.close(fig)


def test_setup_markdown_says_what_differs():
    quick = optimization.setup_markdown(OptimizationConfig.preset("quick"))
    assert "oracle JVPs" in quick and "rosenbrock: at most 1000 steps (paper: 25000)" in quick
    assert "3 seeds (paper: 5)" in quick
    paper = optimization.setup_markdown(OptimizationConfig.preset("paper"))
    assert "oracle JVPs" in paper and "follows the paper's grid" in paper
    assert "r = 0.99" in optimization.lr_ratio_markdown(optimization.lr_ratio_table())
