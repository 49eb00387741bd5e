"""fg_analysis.publish.pages: the sentences and tables of the pages say what their frames hold (recomputed here)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fg_analysis import metrics
from fg_analysis.publish import pages


def rq3_frame(accuracy: dict[str, list[float]], epochs: int = 3) -> pd.DataFrame:
    """A minimal RQ3 frame: per approach and seed, epochs 0..epochs with a final test accuracy."""
    rows = []
    for approach, values in accuracy.items():
        method = "bp" if approach == "BP" else "fg"
        aggregator, k = ("mean", 1) if approach in ("BP", "FG") else (approach.split(" k=")[0], int(approach.split("=")[1]))
        for seed, value in enumerate(values):
            for epoch in range(epochs + 1):
                rows.append({"network": "fc_w=256", "dataset": "digits", "approach": approach, "method": method,
                             "aggregator": aggregator, "k": k, "seed": seed, "epoch": epoch,
                             "val_accuracy": 0.1 if epoch == 0 else value, "test_accuracy": value,
                             "cosine": np.nan if epoch == 0 else 0.05 * k ** 0.5, "activity_dimension": 522,
                             "lr": 1.0 if aggregator == "projection" else 0.01})
    return pd.DataFrame(rows)


def rq3_table(frame: pd.DataFrame) -> pd.DataFrame:
    final = frame[frame["epoch"] == frame["epoch"].max()]
    table = metrics.summarize(final, "test_accuracy", ["network", "dataset", "approach", "aggregator", "k"])
    return table.rename(columns={"count": "seeds"}).merge(
        final.groupby("approach", as_index=False)["lr"].first(), on="approach")


ACCURACY = {"BP": [0.97, 0.96, 0.975], "FG": [0.58, 0.55, 0.67], "mean k=16": [0.94, 0.93, 0.945],
            "projection k=16": [0.941, 0.935, 0.944]}


def test_rq3_summary_numbers_are_the_frames_with_t_intervals():
    frame = rq3_frame(ACCURACY)
    table = rq3_table(frame)
    text = pages.rq3_summary(frame, table)
    for approach in ("BP", "FG", "projection k=16"):
        values = np.array(ACCURACY[approach])
        half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
        assert f"{values.mean():.3f} ± {half:.3f}" in text, (approach, text)
    assert "Projection k=16 beats FG" in text
    assert "projection k=16 and mean k=16 cannot be told apart" in text.lower()  # overlapping intervals: a tie


def test_a_run_that_did_not_learn_makes_comparisons_inconclusive():
    accuracy = {**ACCURACY, "FG": [0.09, 0.10, 0.11]}  # at chance
    frame = rq3_frame(accuracy)
    table = rq3_table(frame)
    learned = pages.rq3_learned(frame, table).set_index("approach")["learned"]
    assert not learned["FG"] and learned["BP"]
    assert pages.rq3_verdict(frame, pages.rq3_learned(frame, table), "projection k=16", "FG", "fc_w=256",
                             "digits") == metrics.INCONCLUSIVE
    assert "FG did not learn" in pages.rq3_summary(frame, table)


def test_rq3_lr_sentence_is_the_ratio_of_the_rates():
    frame = rq3_frame(ACCURACY)
    assert "100× at k = 16" in pages.rq3_lr_sentence(rq3_table(frame))


def bench_frame() -> pd.DataFrame:
    rows = []
    times = {("bp", "-"): 1.0e-3}
    for k in (1, 2, 4, 8, 16, 32):
        for aggregator, extra in (("mean", 0.0), ("projection", 0.02 * k)):
            rows.append({"section": "step", "phase": "step", "model": "fc-256", "n": 1000, "method": "vmap",
                         "aggregator": aggregator, "k": k, "seconds": 1e-3 * (1 + 0.5 * k) * (1 + extra)})
        rows.append({"section": "step", "phase": "step", "model": "fc-256", "n": 1000, "method": "bp",
                     "aggregator": "-", "k": k, "seconds": times[("bp", "-")]})
    for depth, bp, fg in ((2, 10, 56), (8, 40, 57), (32, 160, 60)):
        for mode, peak in (("bp", bp), ("fg", fg)):
            rows.append({"section": "memory", "mode": mode, "depth": depth, "peak_bytes": peak * 2 ** 20,
                         "width": 256, "batch": 64, "k": 4})
    return pd.DataFrame(rows)


def test_rq4_sentences_state_every_k_and_the_memory_ratio():
    frame = bench_frame()
    numbers = pages.rq4_numbers(frame, model="fc-256", fit_ks=(1, 2, 4, 8))
    text = pages.rq4_summary(numbers, name="test run", device="cpu")
    ratios = {k: (1 + 0.02 * k) for k in (1, 2, 4, 8, 16, 32)}
    assert numbers["projection_over_mean_max_k"] == 32
    assert f"at most {ratios[32]:.2f}×, at k = 32" in text        # the largest k measured, not only k <= 16
    assert "FG's peak memory is 5.6× BP's" in text                 # 56 / 10 at 2 layers
    assert f"a single-tangent FG step {1.5:.2f}× as long" in text
    numbers_in_text = {float(x) for x in re.findall(r"(\d+\.\d+)×", text)}
    assert numbers_in_text <= {round(v, 2) for v in numbers_in_text}  # formatted, no raw floats


def test_tables_have_no_nan_and_format_numbers():
    text = pages.table(pd.DataFrame({"k": [1, 16], "ratio": [0.123456, np.nan], "big": [16.0, 123456.0]}))
    assert "nan" not in text.lower() and "—" in text and "16.000000" not in text and "0.123" in text


def test_scorecard_tables_link_sections_and_separate_sources():
    from fg_analysis.experiments import PROJECT_TARGET, claim, distinct_claims

    card = pd.DataFrame([claim("RQ4", "FG is faster than BP", "2×", "1.9×", "does not hold", source="Baydin et al.",
                               section="rq4_tradeoffs#rq4-time"),
                         claim("RQ4", "step ratio ≤ 2", "2", "2.2", "does not hold", source=PROJECT_TARGET),
                         claim("RQ1", "more tangents help", "yes", "0.49", "holds"),
                         claim("RQ4", "projection costs as much as the mean", "≈", "1.2×", "inconclusive")])
    claims, smoke = distinct_claims(card)
    tables = list(pages.scorecard_tables(claims))
    assert [heading for heading, _ in tables] == ["RQ1: claims of the paper", "RQ4: claims of the paper",
                                                  "RQ4: claims of Baydin et al.", "This project's own targets"]
    assert 'href="rq4_tradeoffs.html#rq4-time"' in tables[2][1] and "does not hold" in tables[2][1]
    assert tables[1][1].splitlines()[0].split("|")[1:3] == [" claim ", " verdict "]  # the verdict stays in view
    paper = claims[claims["source"] == "paper"]
    assert pages.scorecard_count(paper) == "1 of 2 claims hold, 0 do not hold, 1 are inconclusive"
    assert smoke.empty


@pytest.mark.parametrize(("value", "text"), [(16.0, "16"), (float("nan"), "—"), (0.5, "0.5"), (1.3e-175, "1.30e-175")])
def test_cell(value, text):
    assert pages.cell(value) == text


# ------------------------------------------------------------------------------------------------ reference


def _comparison(positions: list[str], status: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"position": positions, "status": status})


def test_reference_sentence_counts_the_table_and_states_the_caveat():
    from fg_analysis.experiments import reference

    comparison = _comparison(["within our seeds", "within our seeds", "below our seeds", "above our seeds", "—", "—"],
                             ["both", "both", "both", "both", "reference only", "ours only"])
    text = pages.reference_sentence(comparison, "rq2")
    assert text.startswith("In 4 cells with both, the reference's one-seed best f lies within the range of our seeds "
                           "in 2, below it (the reference ends lower) in 1 and above it in 1. 1 of the reference's "
                           "cells have no run of ours; 1 of ours have no reference value.")
    assert text.endswith(reference.caveat("rq2"))
    none = pages.reference_sentence(_comparison(["—"] * 3, ["reference only"] * 3), "rq3")
    assert none.startswith("None of the reference's 3 cells has a run of ours yet.")


def test_rq2_reference_table_shows_ours_and_the_reference_per_cell():
    from fg_analysis.experiments import reference
    from fg_analysis.problems import get_problem

    minimum = get_problem("styblinski-tang").minimum(4)
    finals = pd.DataFrame([{"problem": "styblinski-tang", "n": 4, "method": "fg", "aggregator": "mean", "k": 1,
                            "approach": "FG", "tangents": "normal", "theta": np.nan, "seed": seed,
                            "best_f": minimum + gap, "lr": 0.1} for seed, gap in enumerate((1.0, 2.0, 3.0))])
    comparison = reference.rq2_table(finals)
    row = comparison[comparison["status"] == "both"].iloc[0]
    text = pages.rq2_reference_table(comparison, "styblinski-tang")
    # the reference reached the minimum (its float32 f is 1e-5 below f*: shown as 0), ours are 1..3 above it
    assert abs(row["reference_gap"]) < 1e-3 and row["position"] == "below our seeds"
    assert "| 4 | 2 / 0 † |" in text and row["ours_gap"] == pytest.approx(2.0)
    assert pages.rq2_reference_table(comparison, "sphere") == ""


def test_stored_sentences_count_the_stored_units():
    from fg_analysis.experiments import optimization, rq3

    counts = pd.DataFrame([{"runs": "sphere", "stored": 3, "of": 81}, {"runs": "rosenbrock", "stored": 0, "of": 81}])
    stored = pd.DataFrame({"seed": [0, 1, 2, 3, 4]})
    assert pages.rq2_stored_sentence(stored, counts).startswith("**3 of 162** runs")
    assert "sphere 3 of 81, rosenbrock 0 of 81" in pages.rq2_stored_sentence(stored, counts)
    assert pages.rq2_stored_sentence(None, counts).startswith("None of the 162 runs")
    config = rq3.RQ3Config.preset("mnist-fc")
    frame = pd.DataFrame({"approach": ["BP", "BP", "FG"], "seed": [0, 1, 0]})
    frame.attrs = {"stored": 3, "units": 24}
    text = pages.rq3_stored_sentence(frame, config)
    assert text.startswith("**3 of 24** runs") and "BP (seeds 0, 1); FG (seed 0)" in text
    assert "simulated" in text and pages.rq3_stored_sentence(None, config).startswith("None of the 24 runs")
    assert optimization.OptimizationConfig.preset("paper").runs()  # the counts' denominators come from the preset


def test_intro_projection_sentence_is_the_example_vectors():
    from fg_analysis import metrics
    from fg_analysis.publish.figures import intro_projection_vectors

    g, V, p, m = intro_projection_vectors()
    assert np.allclose(p, V.T @ np.linalg.solve(V @ V.T, V @ g)) and np.allclose(m, V.T @ (V @ g) / 2)
    text = pages.intro_projection_sentence()
    assert f"{metrics.cosine(p, g):.3f}" in text and f"{metrics.norm_ratio(m, g):.3f}" in text


def test_rq2_last_sentence_counts_runs_whose_last_f_is_above_their_best():
    finals = pd.DataFrame({"tangents": "normal", "problem": ["sphere", "rosenbrock", "rosenbrock"], "n": [4, 4, 8],
                           "approach": ["BP", "FG", "FG"], "best_f": [0.0, 1e-3, 2.0], "last_f": [0.0, 0.5, np.nan],
                           "minimum": 0.0})
    text = pages.rq2_last_sentence(finals)
    assert text.startswith("The last f equals the best f (to 1e-6 of the scale of f*) in 1 of 2 runs")
    assert "at most 0.5 above its best (rosenbrock, n = 4, FG)" in text and text.endswith("1 runs diverged "
                                                                                             "(last f not finite).")


def test_rq4_fast_path_table_reads_the_records_verdicts():
    frame = pd.DataFrame({"section": ["summary", "summary", "steps"], "key": ["fast_path:fg1_over_bp",
                                                                             "fast_path:sampling_share_normal_k16",
                                                                             None],
                          "value": [1.85, 0.44, np.nan], "op": ["<=", "<=", None], "bound": [2.0, 0.25, np.nan],
                          "met": [True, False, None]})
    lines = pages.rq4_fast_path_table(frame).splitlines()
    assert lines[2] == "| FG k=1 step at most 2x a BP step | met | 1.85 | <= 2 |"
    assert lines[3] == "| sampling at most 25% of the k=16 step (normal) | missed | 0.44 | <= 0.25 |"
    assert "predates" in pages.rq4_fast_path_table(frame[frame["section"] == "steps"])
