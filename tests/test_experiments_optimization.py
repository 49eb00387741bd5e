"""RQ2 experiment: configs, agreement with optimize.minimize, cache reuse, reductions and claims."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fg_analysis import optimize  # noqa: E402
from fg_analysis.runs.cache import ResultsCache  # noqa: E402
from fg_analysis.experiments import SCORECARD_COLUMNS, optimization  # noqa: E402
from fg_analysis.experiments.optimization import OptimizationConfig, OptimizationRun  # noqa: E402
from fg_analysis.metrics import HOLDS, INCONCLUSIVE, VERDICTS  # noqa: E402
from fg_analysis.publish import figures  # noqa: E402
from fg_analysis.experiments.learning_rates import closed_form_rate  # noqa: E402
from fg_analysis.tangents import FixedAngle  # noqa: E402


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
                                  lr=trace["lr"].iloc[0], max_steps=60, mode="forward", stopping="no-decrease",
                                  dtype=torch.float32)
    np.testing.assert_array_equal(trace["f"].to_numpy(), reference["f"].to_numpy())
    assert trace["lr"].iloc[0] == closed_form_rate("styblinski-tang", 8, method="fg", k=4,
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
    assert card["verdict"].isin(VERDICTS).all() and card["section"].str.startswith("rq2_optimization#").all()


def test_stored_reads_the_paper_runs_stored_so_far_and_never_runs(cache, tmp_path, monkeypatch):
    config = OptimizationConfig(problems=("sphere",), dims=(2, 4), seeds=(0, 1), approaches=(("bp", "mean", 1),
                                ("fg", "projection", 2)), max_steps=(("sphere", 20),), mode="oracle", angles=())
    assert optimization.stored(config, cache=cache) is None
    optimization.run(dataclasses.replace(config, dims=(4,)), cache=cache, progress=False)   # half of the units
    monkeypatch.setattr(optimization, "descend", lambda *a, **k: pytest.fail("stored() must not run anything"))
    found = optimization.stored(config, cache=cache)
    assert found.attrs["stored"] == 2 and found.attrs["units"] == 4 and len(found.attrs["records"]) == 2
    assert set(found["n"]) == {4} and set(found["approach"]) == {"BP", "projection k=2"}
    counts = optimization.stored_counts(found, config)
    assert counts.to_dict("records") == [{"runs": "sphere", "stored": 2, "of": 4}]
    rows = optimization.stored_rows(config, cache=cache)
    assert rows["claim"].str.endswith("(stored paper-protocol runs)").all()
    assert rows["record"].str.startswith("OptimizationRun ×2 (commit").all()
    assert optimization.stored_rows(config, cache=ResultsCache(tmp_path / "none", published=None)).empty


def _finals(values: dict) -> pd.DataFrame:
    """Traces of two rows per (approach, seed) on Styblinski–Tang n=64 and sphere n=4: the start (step 0, f(x₀))
    and a last step at the given best f, for the scorecard's verdicts."""
    rows = []
    for (problem, n, approach), seeds in values.items():
        method = "bp" if approach == "BP" else "fg"
        aggregator, k = ("mean", 1) if approach in ("BP", "FG") else (approach.split(" k=")[0], int(approach.split("=")[1]))
        start = float(optimize.get_problem(problem).f(optimize.get_problem(problem).start(n)))
        for seed, value in enumerate(seeds):
            for step, f in ((0, start), (10, value)):
                rows.append({"problem": problem, "n": n, "method": method, "aggregator": aggregator, "k": k,
                             "approach": approach, "theta": np.nan, "seed": seed, "step": step, "f": f,
                             "best_f": min(start, f), "stopped": "", "lr": 0.1, "norm_ratio": 1.0, "cosine": 1.0})
    return pd.DataFrame(rows).assign(tangents="normal")


def test_scorecard_verdicts_ties_and_numerical_resolution():
    minimum = optimize.get_problem("styblinski-tang").minimum(64)
    traces = _finals({("styblinski-tang", 64, "projection k=16"): [minimum] * 3,
                      ("styblinski-tang", 64, "FG"): [minimum + 150, minimum + 160, minimum + 170],
                      ("styblinski-tang", 64, "mean k=16"): [minimum + 1, minimum + 30, minimum],
                      ("styblinski-tang", 64, "projection k=2"): [minimum + 100, minimum + 110, minimum + 120],
                      ("sphere", 4, "mean k=2"): [0.0, 0.0, 0.0], ("sphere", 4, "projection k=2"): [1.3e-175] * 3})
    card = optimization.scorecard(traces).set_index("claim")["verdict"]
    assert card["Styblinski–Tang n=64: projection k=16 reaches the global minimum"] == HOLDS
    assert card["Styblinski–Tang n=64: the single-tangent FG stops far above the minimum, the projection does "
                "not"] == HOLDS
    # sphere: 0 against 1.3e-175 is the same value (at the floor: left out, no evidence); Styblinski–Tang k=16:
    # paired differences 0 − (1, 30, 0) = −10.3 ± 40.9, a tie, so the claim over all cells is inconclusive
    name = "With the same k, the projection ends at least as close to f* as the mean (best f − f*)"
    assert card[name] == INCONCLUSIVE
    ours = optimization.scorecard(traces).set_index("claim").loc[name, "ours"]
    assert "sphere: 0 for, 0 ties, 0 against; 1 at the floor (left out)" in ours
    assert card["More tangents help: the projection with k=16 ends at least as close to f* as with k=2"] == HOLDS


def test_paired_cells_pair_by_seed_and_leave_out_stuck_runs():
    """Overlapping unpaired intervals, but every seed's difference has one sign: the paired test holds; a run
    that never left its start is no evidence."""
    minimum = optimize.get_problem("styblinski-tang").minimum(64)
    finals = optimization.final_values(_finals({
        ("styblinski-tang", 64, "projection k=4"): [minimum + 10, minimum + 50, minimum + 90],
        ("styblinski-tang", 64, "mean k=4"): [minimum + 11, minimum + 52, minimum + 91.5],
        ("styblinski-tang", 64, "projection k=16"): [minimum + 10, 0.0, minimum + 10],
        ("styblinski-tang", 64, "mean k=16"): [minimum + 20, minimum + 30, minimum + 40]}))
    cells = optimization.paired_cells(finals, "best_gap", {"aggregator": "projection"}, {"aggregator": "mean"},
                                      by=["k"]).set_index("k")
    assert cells.loc[4, "verdict"] == HOLDS and cells.loc[4, "mean"] == pytest.approx(-1.5)
    assert pd.isna(cells.loc[16, "verdict"]) and cells.loc[16, "note"] == "stuck"
    assert not finals.loc[finals["best_f"] == 0.0, "left_start"].any()


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
    for fig in (figures.rq2_convergence(traces, problem="sphere", n=4), figures.rq2_final(finals, problem="sphere"),
                figures.rq2_fixed_angle(finals, k=64)):
        assert fig.axes
        plt.close(fig)


def test_setup_markdown_says_what_differs():
    quick = optimization.setup_markdown(OptimizationConfig.preset("quick"))
    assert "oracle JVPs" in quick and "rosenbrock: at most 1000 steps (paper: 25000)" in quick
    assert "3 seeds (paper: 5)" in quick
    paper = optimization.setup_markdown(OptimizationConfig.preset("paper"))
    assert "oracle JVPs" in paper and "follows the paper's grid" in paper
    assert "r = 0.99" in optimization.lr_ratio_markdown(optimization.lr_ratio_table())


def test_angle_rate_markdown_names_the_rates_and_what_they_reach():
    """The projection's fixed-angle rate is the custom-tangent table's normal-sampler row, not the main table's."""
    minimum = optimize.get_problem("styblinski-tang").minimum(64)
    rows = []
    for aggregator, theta, best in (("projection", 45.0, minimum), ("projection", 90.0, minimum),
                                    ("mean", 90.0, minimum + 3.0)):
        lr = closed_form_rate("styblinski-tang", 64, method="fg", k=16, aggregator=aggregator,
                              tangents=FixedAngle(theta=theta))
        rows.append({"tangents": "fixed-angle", "problem": "styblinski-tang", "n": 64, "k": 16,
                     "aggregator": aggregator, "theta": theta, "lr": lr, "best_gap": best - minimum,
                     "minimum": minimum})
    text = optimization.angle_rate_markdown(pd.DataFrame(rows))
    main = closed_form_rate("styblinski-tang", 64, method="fg", k=16, aggregator="projection")
    assert f"lr = {rows[0]['lr']:.4g} (the main table's normal-tangent rate is {main:.4g})" in text
    assert "ends at the minimum to float32's resolution" in text and "the mean at 90° at best f − f* between 3" in text
