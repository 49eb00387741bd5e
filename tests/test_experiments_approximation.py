"""RQ1 experiment: configs, the batched sweep against a per-sample loop, theory agreement, cache reuse, claims."""

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
from fg_analysis.cache import ResultsCache  # noqa: E402
from fg_analysis.experiments import SCORECARD_COLUMNS, approximation  # noqa: E402
from fg_analysis.experiments.approximation import ApproximationCell, ApproximationConfig  # noqa: E402
from fg_analysis.metrics import FAILS, HOLDS, INCONCLUSIVE, VERDICTS, add_ci  # noqa: E402
from scipy import stats  # noqa: E402


@pytest.fixture
def cache(tmp_path):
    return ResultsCache(tmp_path, published=None)


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
    for fig in (approximation.plot_versus(frame, "cosine"), approximation.plot_versus(frame, "norm_ratio", x="n"),
                approximation.plot_normalization(frame, n_values=(4, 16)), approximation.plot_fixed_angle(frame)):
        assert fig.axes
        plt.close(fig)


def test_summary_markdown_states_the_reference_cell():
    cell = ApproximationCell(n=64, k=16, samples=300)
    frame = add_ci(approximation.measure_cell(cell).assign(n=64, k=16, law="normal", theta=None))
    text = approximation.summary_markdown(frame)
    assert text.startswith("At $n = 64$, $k = 16$ the projection reaches a mean cosine of **0.")
    assert "| claim | paper | ours | verdict |" in text
    card = approximation.scorecard(frame)
    counts = card["verdict"].value_counts()
    assert (f"In this run {counts.get(HOLDS, 0)} of {len(card)} RQ1 claims hold, {counts.get(FAILS, 0)} do not "
            f"hold, {counts.get(INCONCLUSIVE, 0)} are inconclusive:") in text


def test_claims_are_inconclusive_inside_the_interval_and_fail_outside():
    """A verdict is made from the t interval: the paper's 0.494 inside it holds, a value far outside fails,
    a tie between the projection and the mean is inconclusive."""
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
    assert card["The projection approximates g better than the mean (higher cosine) for k > 1"] == INCONCLUSIVE


def test_theory_band_uses_the_t_quantile():
    mean, half = approximation.theory_columns("projection", "cosine", 16, 64, 10)
    assert half == pytest.approx(stats.t.ppf(0.975, 9) * theory.cosine_std("projection", 16, 64) / np.sqrt(10))
