"""RQ1 experiment: configs, the batched sweep against a per-sample loop, theory agreement, cache reuse, the paired
test of the projection against the mean, claims."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fg_analysis import theory  # noqa: E402
from fg_analysis.aggregate import get_aggregator  # noqa: E402
from fg_analysis.runs.cache import ResultsCache  # noqa: E402
from fg_analysis.experiments import SCORECARD_COLUMNS, approximation  # noqa: E402
from fg_analysis.experiments.approximation import ApproximationCell, ApproximationConfig, PairedCosineCell  # noqa: E402
from fg_analysis.metrics import FAILS, HOLDS, INCONCLUSIVE, VERDICTS, add_ci, compare  # noqa: E402
from scipy import stats  # noqa: E402
from fg_analysis.publish import figures, pages  # noqa: E402
from fg_analysis.tangents import Rademacher  # noqa: E402


PAIRED_CLAIM = "The projection approximates g better than the mean (higher cosine) for k > 1"


@pytest.fixture
def cache(tmp_path):
    return ResultsCache(tmp_path, published=None)


def _gain(frame: pd.DataFrame, n: int | None = None, k: int | None = None) -> pd.Series:
    rows = frame[frame["metric"] == approximation.PAIRED_METRIC]
    if n is not None:
        rows = rows[(rows["n"] == n) & (rows["k"] == k) & (rows["law"] == "normal")]
    row, = (r for _, r in rows.iterrows())
    return row


def test_presets():
    paper, quick = ApproximationConfig.preset("paper"), ApproximationConfig.preset("quick")
    assert paper.dims == tuple(2 ** i for i in range(17)) and paper.tangent_counts == tuple(2 ** i for i in range(11))
    assert (paper.samples, paper.large_samples, paper.large_from) == (1000, 100, 2 ** 15)
    cells = {(c.n, c.k, c.law): c for c in quick.cells()}
    assert cells[(64, 16, "normal")].samples >= 1000  # the check needs >= 1000 samples there
    assert ("projection", False) in cells[(64, 16, "normal")].approaches
    assert all(a != "projection" for a, _ in cells[(4, 16, "normal")].approaches)  # k > n: no projection
    assert {c.theta for c in quick.cells() if c.law == "fixed-angle"} == set(quick.angles)
    with pytest.raises(ValueError, match="unknown preset"):
        ApproximationConfig.preset("huge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.samples = 3


def test_batched_metrics_equal_a_per_sample_loop():
    generator = torch.Generator().manual_seed(1)
    V = torch.randn(7, 3, 5, generator=generator, dtype=torch.float64)
    g = torch.ones(5, dtype=torch.float64)
    for aggregator in ("projection", "mean", "sum"):
        batched = approximation.sample_metrics(V, g, aggregator)
        for i in range(V.shape[0]):
            estimate = get_aggregator(aggregator)(V[i], V[i] @ g).numpy()
            gn = g.numpy()
            expected = {"cosine": estimate @ gn / (np.linalg.norm(estimate) * np.linalg.norm(gn)),
                        "norm_ratio": np.linalg.norm(estimate) / np.linalg.norm(gn),
                        "error": np.linalg.norm(gn - estimate), "dot": estimate @ gn}
            for metric, value in expected.items():
                assert float(batched[metric][i]) == pytest.approx(value, rel=1e-10), (aggregator, metric, i)


def test_cell_statistics_equal_the_loop_and_do_not_depend_on_chunking(monkeypatch):
    cell = ApproximationCell(n=6, k=3, samples=9, dtype="float64")
    frame = approximation.measure_cell(cell)
    # the same tangents, drawn in one piece, and evaluated one sample at a time
    generator = torch.Generator().manual_seed(approximation.cell_seed(cell))
    V = torch.randn(9, 3, 6, generator=generator, dtype=torch.float64)
    g = torch.ones(6, dtype=torch.float64)
    for aggregator, normalize in cell.approaches:
        W = V / V.norm(dim=-1, keepdim=True) if normalize else V
        cosines = [float(approximation.sample_metrics(W[i:i + 1], g, aggregator)["cosine"]) for i in range(9)]
        row = frame[(frame["aggregator"] == aggregator) & (frame["normalize"] == normalize)
                    & (frame["metric"] == "cosine")].iloc[0]
        assert row["mean"] == pytest.approx(np.mean(cosines), rel=1e-10)
        assert row["std"] == pytest.approx(np.std(cosines, ddof=1), rel=1e-8)
        assert row["count"] == 9
    assert set(frame["device"]) == {"cpu"}


@pytest.mark.parametrize("n, k", [(6, 3), (5, 5), (7, 1)])
def test_paired_gain_is_the_difference_of_independently_computed_cosines(n, k):
    """The gain row equals cos(P_U g, g) − cos(mean, g) per draw, P_U g by least squares, the mean by hand, on the
    cell's own tangents; the theorem cos(P_U g, g) ≥ cos(u, g) for u in span(V) makes its minimum ≥ 0."""
    cell = ApproximationCell(n=n, k=k, samples=40, dtype="float64")
    gain = _gain(approximation.measure_cell(cell))
    V = torch.randn(40, k, n, generator=torch.Generator().manual_seed(approximation.cell_seed(cell)),
                    dtype=torch.float64)
    g = torch.ones(n, dtype=torch.float64)
    differences = []
    for tangents in V:
        projection = tangents.T @ torch.linalg.lstsq(tangents.T, g.unsqueeze(1)).solution.squeeze(1)
        mean = tangents.T @ (tangents @ g) / k
        cosine = [float(u @ g / (u.norm() * g.norm())) for u in (projection, mean)]
        differences.append(cosine[0] - cosine[1])
    assert (gain["aggregator"], gain["normalize"], gain["count"]) == ("projection", False, 40)
    assert gain["mean"] == pytest.approx(np.mean(differences), rel=1e-9, abs=1e-14)
    assert gain["std"] == pytest.approx(np.std(differences, ddof=1), rel=1e-7, abs=1e-14)
    assert gain["min"] == pytest.approx(min(differences), rel=1e-9, abs=1e-14)
    assert gain["min"] >= -1e-12
    if k == 1:  # one tangent: P_U g and the mean are parallel, equal cosines on every draw
        assert abs(gain["mean"]) < 1e-14 and gain["std"] < 1e-14
    else:
        assert gain["min"] > 0


def test_a_paired_unit_draws_the_tangents_of_its_grid_cell():
    unit = PairedCosineCell(n=6, k=3, samples=9, seed=2, dtype="float64")
    grid = approximation.measure_cell(ApproximationCell(n=6, k=3, samples=9, seed=2, dtype="float64"))
    paired = approximation.measure_paired(unit)
    keys = ["aggregator", "normalize", "metric"]
    assert set(map(tuple, paired[keys].to_numpy())) == {(a, z, m) for a, z in approximation.PAIRED_APPROACHES
                                                        for m in approximation.METRICS} | {
        ("projection", False, approximation.PAIRED_METRIC)}
    shared = grid.merge(paired, on=keys, suffixes=("_grid", "_paired"))
    assert len(shared) == len(paired)
    for column in ("mean", "std", "count"):
        np.testing.assert_array_equal(shared[f"{column}_grid"], shared[f"{column}_paired"])
    config = ApproximationConfig(dims=(1, 4, 64), tangent_counts=(1, 2, 4, 128), samples=30, large_from=64,
                                 large_samples=10, seed=2, angles=())
    assert [(u.n, u.k, u.samples) for u in config.paired_cells()] == [(4, 2, 30), (4, 4, 30), (64, 2, 10),
                                                                      (64, 4, 10)]
    assert len(ApproximationConfig.preset("paper").paired_cells()) == 115  # 1 < k <= n on the paper's grid


def test_measured_cosine_agrees_with_theory():
    """Quick-preset sized cells: every mean within 4 standard errors of the closed form."""
    cells = [ApproximationCell(n=64, k=16, samples=1000), ApproximationCell(n=16, k=4, samples=1000)]
    for cell in cells:
        frame = approximation.measure_cell(cell).assign(n=cell.n, k=cell.k, law="normal", theta=None)
        checked = approximation.with_theory(frame)
        assert len(checked) == 6  # projection, mean, sum × cosine, norm ratio
        assert checked["z"].abs().max() < 4, checked[["aggregator", "metric", "mean", "theory", "z"]]
    projection = approximation.cell_value(approximation.measure_cell(cells[0]).assign(
        n=64, k=16, law="normal", theta=None), aggregator="projection", n=64, k=16)
    assert abs(projection["mean"] - 0.494) < 0.02
    assert float(theory.expected_cosine("projection", 16, 64)) == pytest.approx(0.494, abs=5e-4)


def test_run_uses_the_cache_and_scorecard_rows_are_well_formed(cache, monkeypatch):
    config = ApproximationConfig(dims=(16, 64), tangent_counts=(1, 4, 16, 64), samples=200, angle_samples=100,
                                 angles=(15.0, 90.0))
    frame = approximation.run(config, cache=cache, progress=False)
    assert {"n", "k", "aggregator", "normalize", "metric", "mean", "ci", "device"} <= set(frame.columns)
    assert len(list(cache.root.rglob("result.csv"))) == len(config.cells())

    def fail(*args, **kwargs):
        raise AssertionError("a second run must read the cache, not compute")

    monkeypatch.setattr(approximation, "measure_cell", fail)
    again = approximation.run(config, cache=cache, progress=False)
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), again.reset_index(drop=True))

    card = approximation.scorecard(frame, config)
    assert tuple(card.columns) == SCORECARD_COLUMNS and len(card) >= 8
    assert card["verdict"].isin(VERDICTS).all() and (card["question"] == "RQ1").all()
    assert (card["verdict"] != FAILS).all(), card[["claim", "ours", "verdict"]]
    assert card["section"].str.startswith("rq1_approximation#rq1-").all() and (card["record"] == "").all()
    verdicts = dict(zip(card["claim"], card["verdict"]))
    assert verdicts["The projection is exact (cos = 1) when k = n"] == HOLDS
    assert verdicts["E[cos(P_U g, g)] at n=64, k=16"] == HOLDS  # 0.494 within the interval of 200 samples
    table = approximation.reference_table(frame)
    assert set(zip(table["aggregator"], table["n"], table["k"])) == {("projection", 64, 16), ("mean", 64, 16),
                                                                     ("projection", 16, 16), ("mean", 16, 16)}


def test_stored_reads_what_run_stored_and_says_how_much(cache, monkeypatch):
    config = ApproximationConfig(dims=(4, 16), tangent_counts=(1, 4), samples=100, angles=())
    assert approximation.stored(config, cache=cache) is None
    part = dataclasses.replace(config, dims=(4,))
    approximation.run(part, cache=cache, progress=False)
    monkeypatch.setattr(approximation, "measure_cell", lambda *a, **k: pytest.fail("stored() computed a cell"))
    found = approximation.stored(config, cache=cache)
    assert (found.attrs["stored"], found.attrs["units"]) == (len(part.cells()), len(config.cells()))
    assert set(found["n"]) == {4} and len(found.attrs["records"]) == len(part.cells())
    assert "2 of the paper's 4 cells so far" in approximation.stored_setup(found)
    pd.testing.assert_frame_equal(found.reset_index(drop=True),
                                  approximation.run(part, cache=cache, progress=False).reset_index(drop=True))


def test_theory_agreement_counts_cells_inside_the_closed_forms_interval(cache):
    config = ApproximationConfig(dims=(8, 32), tangent_counts=(1, 2, 8), samples=300, angles=())
    frame = approximation.run(config, cache=cache, progress=False)
    table = approximation.theory_agreement(frame).set_index(["aggregator", "metric"])
    checked = approximation.with_theory(frame)
    for (aggregator, metric), row in table.iterrows():
        cells = checked[(checked["aggregator"] == aggregator) & (checked["metric"] == metric)]
        random = cells[cells["std"] > 1e-6]
        # an independent count: |mean − theory| against the t quantile times the standard error
        limit = stats.t.ppf(0.975, random["count"] - 1) * random["std"] / np.sqrt(random["count"])
        assert row["cells"] == len(cells) and row["exact"] == len(cells) - len(random)
        assert row["within_95"] == pytest.approx(float(((random["mean"] - random["theory"]).abs() <= limit).mean()))
    assert table.loc[("projection", "cosine"), "exact"] == 1  # k = n = 8: the projection is exact
    sentence = approximation.agreement_sentence(frame)
    assert "n = 8..32, k = 1..8" in sentence and "cells are exact in theory" in sentence


def test_figures_draw(cache):
    import matplotlib.pyplot as plt

    config = ApproximationConfig(dims=(4, 16), tangent_counts=(1, 4), samples=50, angle_dim=8,
                                 angle_tangent_counts=(2, 8), angles=(30.0, 90.0), angle_samples=20)
    frame = approximation.run(config, cache=cache, progress=False)
    for fig in (figures._rq1_versus(frame, "cosine"), figures._rq1_versus(frame, "norm_ratio", x="n"),
                figures._rq1_normalization(frame, n_values=(4, 16)), figures._rq1_fixed_angle(frame)):
        fig.canvas.draw()
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert legends  # outside every panel: a legend never covers a curve
        for legend in legends:
            assert not any(legend.get_window_extent().overlaps(ax.get_window_extent()) for ax in fig.axes)
        plt.close(fig)


def test_summary_markdown_states_the_reference_cell():
    cell = ApproximationCell(n=64, k=16, samples=300)
    frame = add_ci(approximation.measure_cell(cell).assign(n=64, k=16, law="normal", theta=None))
    text = pages.rq1_summary(frame)
    assert text.startswith("At $n = 64$, $k = 16$ the projection reaches a mean cosine of **0.")
    assert "| claim | paper | ours | verdict |" in text
    card = approximation.scorecard(frame)
    counts = card["verdict"].value_counts()
    assert (f"In this run {counts.get(HOLDS, 0)} of {len(card)} RQ1 claims hold, {counts.get(FAILS, 0)} do not "
            f"hold, {counts.get(INCONCLUSIVE, 0)} are inconclusive:") in text


def test_claims_are_inconclusive_inside_the_interval_and_fail_outside():
    """A verdict is made from the t interval: the paper's 0.494 inside it holds, a value far outside fails,
    the projection against the mean without paired gains is inconclusive."""
    rows = []
    for aggregator, n, k, mean, std in (("projection", 64, 16, 0.50, 0.1), ("mean", 64, 16, 0.499, 0.1),
                                        ("projection", 16, 16, 1.0, 0.0), ("mean", 16, 16, 0.6, 0.1)):
        rows.append({"aggregator": aggregator, "normalize": False, "metric": "cosine", "mean": mean, "std": std,
                     "count": 100, "n": n, "k": k, "law": "normal", "theta": None})
    frame = add_ci(pd.DataFrame(rows))
    card = approximation.scorecard(frame).set_index("claim")["verdict"]
    half = stats.t.ppf(0.975, 99) * 0.1 / 10
    assert abs(0.50 - 0.494) < half and card["E[cos(P_U g, g)] at n=64, k=16"] == HOLDS
    assert card["The mean stays far from g even at k = n (n=16)"] == FAILS        # 0.6 ± 0.02 against 0.713
    assert card[PAIRED_CLAIM] == INCONCLUSIVE
    ours = approximation.scorecard(frame).set_index("claim").loc[PAIRED_CLAIM, "ours"]
    assert "paired cells stored: 0 of 2" in ours


def test_the_paired_claim_holds_where_the_unpaired_intervals_tie_and_leaves_k_1_out(cache):
    """n = 1024, k = 2: the two cosines' intervals overlap, the paired gain's lies above 0. The k = 1 cells (n = 1,
    both exact; n = 1024, parallel estimates) are left out of the tally and said to be."""
    config = ApproximationConfig(dims=(1, 1024), tangent_counts=(1, 2), samples=200, angles=())
    frame = approximation.run(config, cache=cache, progress=False)
    proj, mean = (approximation.cell_value(frame, aggregator=a, n=1024, k=2) for a in ("projection", "mean"))
    assert compare(proj["mean"], proj["ci"], mean["mean"], mean["ci"]) == INCONCLUSIVE  # the unpaired test
    exact = _gain(frame, 1, 1)
    assert (exact["mean"], exact["std"], exact["min"]) == (0.0, 0.0, 0.0)
    gains, cells, parallel = approximation.paired_cells(frame)
    assert list(gains.index) == [(1024, 2)] and (cells, parallel) == (1, 2)
    gain = _gain(frame, 1024, 2)
    assert gain["mean"] - stats.t.ppf(0.975, 199) * gain["std"] / np.sqrt(200) > 0
    row = approximation.scorecard(frame, config).set_index("claim").loc[PAIRED_CLAIM]
    assert row["verdict"] == HOLDS and row["section"] == "rq1_approximation#rq1-paired"
    assert "1 for, 0 ties, 0 against" in row["ours"] and "2 cells with k = 1 left out" in row["ours"]
    # n = 1: both cosines are exactly 1 at k = 1 and 2, no evidence that k helps; left out, not a tie
    grows = approximation.scorecard(frame, config).set_index("claim").loc[
        "More tangents improve the approximation: the cosine grows with k (every n, every aggregator)"]
    assert grows["verdict"] == HOLDS and "both cosines exactly 1 left out" in grows["ours"]
    text = approximation.paired_markdown(frame)
    assert "Over the 1 cells with 1 < k ≤ n" in text and "overlap in 1 of these cells, e.g. n = 1024, k = 2" in text


def test_stored_claims_rest_on_the_stored_paired_units(cache):
    """A grid stored without gain rows: the stored claim is inconclusive with none of its paired units stored,
    rests on the stored ones after `rq1 --part paired` ran for some, and run() fills in the rest itself."""
    config = ApproximationConfig(dims=(4, 16), tangent_counts=(1, 2, 4), samples=100, angles=())
    for cell in config.cells():  # as the stored paper grid: results from before the paired gain was measured
        frame = approximation.measure_cell(cell)
        cache.save(cell, frame[frame["metric"] != approximation.PAIRED_METRIC])

    def claim_row():
        rows = approximation.stored_rows(config, cache=cache)
        return rows.set_index("claim").loc[PAIRED_CLAIM + " (stored paper-protocol runs)"]

    row = claim_row()
    assert row["verdict"] == INCONCLUSIVE and "paired cells stored: 0 of 4" in row["ours"]
    assert "paired units (projection against mean): 0 of 4" in row["setup"]
    part = dataclasses.replace(config, dims=(16,))
    approximation.run_paired(part, cache=cache, progress=False)
    row = claim_row()
    assert row["verdict"] == HOLDS and "paired cells stored: 2 of 4" in row["ours"]
    assert "PairedCosineCell" in row["record"] and "2 for, 0 ties, 0 against" in row["ours"]
    found = approximation.stored(config, cache=cache)
    assert (found.attrs["paired"], found.attrs["paired_units"]) == (2, 4)
    frame = approximation.run(config, cache=cache, progress=False)  # computes only the two missing paired units
    assert len(list((cache.root / "PairedCosineCell").iterdir())) == 4
    for unit in config.paired_cells():
        fresh = _gain(approximation.measure_cell(ApproximationCell(n=unit.n, k=unit.k, samples=100)))
        assert _gain(frame, unit.n, unit.k)["mean"] == pytest.approx(fresh["mean"], rel=1e-12)


def test_the_rq1_command_runs_the_paired_part(tmp_path, monkeypatch, capsys):
    tiny = ApproximationConfig(dims=(4,), tangent_counts=(1, 2, 4), samples=20, angles=())
    monkeypatch.setenv("FG_RESULTS", str(tmp_path))
    monkeypatch.setattr(ApproximationConfig, "preset", classmethod(lambda cls, name, seed=0: tiny))
    assert approximation.main(["--part", "paired", "--no-progress"]) == 0
    assert "RQ1 paired quick: 2 units" in capsys.readouterr().out
    assert sorted(folder.name for folder in tmp_path.iterdir()) == ["PairedCosineCell"]
    assert len(list((tmp_path / "PairedCosineCell").iterdir())) == 2
    with pytest.raises(SystemExit):
        approximation.main(["--part", "all"])


def test_theory_band_uses_the_t_quantile():
    mean, half = approximation.theory_columns("projection", "cosine", 16, 64, 10)
    assert half == pytest.approx(stats.t.ppf(0.975, 9) * theory.cosine_std("projection", 16, 64) / np.sqrt(10))


# ---------------------------------------------------------------- Rademacher against normal tangents


def _laws(cell: approximation.LawCell) -> pd.DataFrame:
    return add_ci(approximation.measure_laws(cell))


def _law_row(frame, gradient, aggregator, metric="cosine") -> pd.Series:
    row, = (r for _, r in frame[(frame["gradient"] == gradient) & (frame["aggregator"] == aggregator)
                                & (frame["metric"] == metric)].iterrows())
    return row


def test_normal_law_cells_draw_the_grid_tangents():
    """A normal LawCell against all-ones is the grid's ApproximationCell of the same (seed, n, k): the same tangents
    through the same code, so the same numbers."""
    for n, k in ((6, 3), (64, 16)):
        grid = approximation.measure_cell(ApproximationCell(n=n, k=k, samples=50, seed=3))
        laws = approximation.measure_laws(approximation.LawCell(n=n, k=k, samples=50, law="normal", seed=3))
        for aggregator in ("mean", "projection"):
            for metric in approximation.METRICS:
                expected = grid[(grid["aggregator"] == aggregator) & ~grid["normalize"] & (grid["metric"] == metric)]
                row = _law_row(laws, "ones", aggregator, metric)
                assert (row["mean"], row["std"], row["count"]) == tuple(expected[["mean", "std", "count"]].iloc[0])


def test_rademacher_cells_equal_a_per_sample_loop():
    """Rademacher tangents go through the same code as normal ones: the cell's statistics equal a plain NumPy loop
    over the same draws (the package's Rademacher law with the cell's seed), for every true gradient."""
    cell = approximation.LawCell(n=16, k=3, samples=40, law="rademacher", seed=1, dtype="float64")
    frame = approximation.measure_laws(cell)
    V = Rademacher().sample(3, 16, batch_shape=(40,), dtype=torch.float64, generator=torch.Generator().manual_seed(
        approximation._seed(1, 16, 3, "rademacher", None))).numpy()
    for name in approximation.GRADIENTS:
        g = approximation.true_gradient(name, 16, seed=1, dtype=torch.float64).numpy()
        for aggregator in ("mean", "projection"):
            cosines = []
            for tangents in V:
                d = tangents @ g
                estimate = (tangents.T @ np.linalg.solve(tangents @ tangents.T, d) if aggregator == "projection"
                            else tangents.T @ d / 3)
                norm = np.linalg.norm(estimate)
                cosines.append(estimate @ g / (norm * np.linalg.norm(g)) if norm > 0 else 0.0)
            row = _law_row(frame, name, aggregator)
            assert row["mean"] == pytest.approx(np.mean(cosines), rel=1e-10, abs=1e-14), (name, aggregator)
            assert row["std"] == pytest.approx(np.std(cosines, ddof=1), rel=1e-8, abs=1e-14), (name, aggregator)
    assert set(frame["device"]) == {"cpu"} and set(frame["count"]) == {40}


def test_rademacher_single_tangent_cosine_against_its_closed_forms():
    """k = 1: against all-ones the measured mean cosine holds de Moivre's closed form within its t interval (even
    and odd n; zero estimates count as 0); against an axis every draw is exactly 1/sqrt(n); a generic g lies
    within Szarek's and Jensen's bounds."""
    for n in (16, 17):
        frame = _laws(approximation.LawCell(n=n, k=1, samples=4000, law="rademacher", seed=2))
        for aggregator in ("mean", "projection"):
            ones = _law_row(frame, "ones", aggregator)
            assert abs(ones["mean"] - float(theory.rademacher_single_cosine(n, "ones"))) <= ones["ci"]
            axis = _law_row(frame, "axis", aggregator)
            assert axis["mean"] == pytest.approx(1 / np.sqrt(n), rel=1e-6) and axis["std"] < 1e-6
            generic = _law_row(frame, "generic", aggregator)
            assert generic["ci_high"] >= 1 / np.sqrt(2 * n) and generic["ci_low"] <= 1 / np.sqrt(n)


def test_the_law_comparison_config_and_its_projection_cells():
    """The quick-sized grid; the projection only where samples·(2^k − 2)/2^n ≤ 1e-6, for both laws."""
    config = approximation.LawComparisonConfig()
    cells = config.cells()
    assert {(c.n, c.k) for c in cells} == {(n, k) for n in (16, 64, 256, 1024) for k in (1, 2, 4, 16, 64)}
    assert {c.law for c in cells} == {"normal", "rademacher"}
    for cell in cells:
        chance = cell.samples * (2 ** cell.k - 2) / 2 ** cell.n if cell.k <= cell.n else np.inf  # exact ints
        assert ("projection" in cell.aggregators) == (chance <= 1e-6), cell
        assert cell.samples == (200 if cell.n >= 1024 else 1000)
    assert {(c.n, c.k) for c in cells if "projection" in c.aggregators and c.n <= 64} == {
        (16, 1), (64, 1), (64, 2), (64, 4), (64, 16)}


def test_true_gradients():
    generic = approximation.true_gradient("generic", 32, seed=4, dtype=torch.float64)
    assert torch.equal(generic, approximation.true_gradient("generic", 32, seed=4, dtype=torch.float64))
    assert not torch.equal(generic, approximation.true_gradient("generic", 32, seed=5, dtype=torch.float64))
    assert approximation.true_gradient("axis", 4).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert approximation.true_gradient("ones", 3).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown true gradient"):
        approximation.true_gradient("random", 3)
    with pytest.raises(ValueError, match="unknown law"):
        approximation.measure_laws(approximation.LawCell(n=4, k=1, samples=2, law="basis"))


def test_a_zero_estimate_has_cosine_zero():
    """v·g = 0 on every tangent (here g = all-ones): ĝ = 0, counted as cosine 0, norm ratio 0."""
    V = torch.tensor([[[1.0, -1.0, 1.0, -1.0]], [[1.0, 1.0, 1.0, -1.0]]])
    values = approximation.sample_metrics(V, torch.ones(4), "mean")
    assert values["cosine"].tolist() == [0.0, 0.5] and values["norm_ratio"][0] == 0


@pytest.fixture(scope="module")
def law_frame(tmp_path_factory):
    config = approximation.LawComparisonConfig(dims=(16, 64), tangent_counts=(1, 4, 16), samples=300)
    cache = ResultsCache(tmp_path_factory.mktemp("laws"), published=None)
    return approximation.run_laws(config, cache=cache, progress=False), config, cache


def test_run_laws_uses_the_cache_and_the_table_sets_the_measurement_against_the_closed_form(law_frame, monkeypatch):
    frame, config, cache = law_frame
    monkeypatch.setattr(approximation, "measure_laws", lambda *a, **k: pytest.fail("a second run must read the cache"))
    pd.testing.assert_frame_equal(frame, approximation.run_laws(config, cache=cache, progress=False))
    table = approximation.law_table(frame)
    assert len(table) == len(frame[frame["metric"] == "cosine"])
    for _, row in table.iterrows():
        gaussian = float(theory.expected_cosine(row["aggregator"], row["k"], row["n"]))
        assert row["gaussian"] == gaussian and row["ratio"] == pytest.approx(row["mean"] / gaussian)
        half = stats.t.ppf(0.975, row["count"] - 1) * frame.loc[
            (frame["metric"] == "cosine") & (frame["gradient"] == row["gradient"]) & (frame["law"] == row["law"])
            & (frame["aggregator"] == row["aggregator"]) & (frame["n"] == row["n"]) & (frame["k"] == row["k"]),
            "std"].iloc[0] / np.sqrt(row["count"])
        expected = INCONCLUSIVE if abs(row["mean"] - gaussian) <= half else (HOLDS if row["mean"] > gaussian
                                                                              else FAILS)
        assert row["verdict"] == expected
        exact = row["law"] == "rademacher" and row["k"] == 1 and row["gradient"] != "generic"
        assert np.isnan(row["exact"]) != exact


def test_the_laws_sentence_states_the_frames_numbers(law_frame):
    """The counts per true gradient and the normal control are recounted from the frame; a Rademacher cell moved
    below the closed form turns the conclusion into what it costs there."""
    frame, _, _ = law_frame
    table = approximation.law_table(frame)
    text = pages.rq1_laws_sentence(frame)
    for gradient, name in (("ones", "the paper's $g$ = all-ones"), ("generic", "a generic $g$")):
        rows = table[(table["law"] == "rademacher") & (table["gradient"] == gradient)]
        split = "/".join(str(int((rows["verdict"] == v).sum())) for v in (HOLDS, INCONCLUSIVE, FAILS))
        assert f"{split} of {len(rows)} cells against {name}" in text
    normal = table[table["law"] == "normal"]
    assert f"in {int((normal['verdict'] == INCONCLUSIVE).sum())} of {len(normal)} cells" in text
    ratio = 0.25 / float(theory.expected_cosine("mean", 1, 16))
    assert f"{ratio:.2f}–" in text or f"–{ratio:.2f}" in text  # the axis at k = 1, n = 16: exactly 1/4
    assert text.endswith("so it ran here only for $k \\le 1$ at $n$ = 16.")  # n = 64: up to k = 16, every k here
    assert "costs no measurable cosine" in text
    low = frame.copy()
    mask = ((low["law"] == "rademacher") & (low["gradient"] == "ones") & (low["aggregator"] == "mean")
            & (low["metric"] == "cosine") & (low["n"] == 64) & (low["k"] == 16))
    low.loc[mask, "mean"] = 0.9 * float(theory.expected_cosine("mean", 16, 64))
    text = pages.rq1_laws_sentence(low)
    assert "costs cosine in 1 of" in text and "at most 10.0% (mean, the paper's $g$ = all-ones, $n$ = 64, $k$ = 16)" \
        in text


def test_the_laws_figure_draws(law_frame):
    import matplotlib.pyplot as plt

    fig = figures.rq1_laws(law_frame[0])
    fig.canvas.draw()
    assert len(fig.axes) == 6 and fig.get_size_inches()[0] <= figures.PAGE_WIDTH_IN
    legend, = fig.legends
    assert not any(legend.get_window_extent().overlaps(ax.get_window_extent()) for ax in fig.axes)
    plt.close(fig)


def test_the_rq1_command_runs_the_law_comparison(tmp_path, monkeypatch, capsys):
    tiny = approximation.LawComparisonConfig(dims=(16,), tangent_counts=(1, 2), samples=20)
    monkeypatch.setenv("FG_RESULTS", str(tmp_path))
    monkeypatch.setattr(approximation, "LawComparisonConfig", lambda seed=0: dataclasses.replace(tiny, seed=seed))
    assert approximation.main(["--part", "laws", "--no-progress", "--seed", "3"]) == 0
    assert "RQ1 laws quick: 4 units" in capsys.readouterr().out
    assert sorted(folder.name for folder in tmp_path.iterdir()) == ["LawCell"]
    assert len(list((tmp_path / "LawCell").iterdir())) == 4
