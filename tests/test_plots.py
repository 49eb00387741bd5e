"""fg_analysis.plots: the 95% CI of a mean, summaries, formatting, and the figure helpers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fg_analysis import plots  # noqa: E402


def test_ci_halfwidth_is_the_normal_interval_of_a_mean():
    assert plots.ci_halfwidth(2.0, 16) == pytest.approx(1.96 * 2.0 / 4.0)
    assert np.isnan(plots.ci_halfwidth(1.0, 1))  # undefined for a single value


def test_summarize_matches_numpy_per_group():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"group": np.repeat(["a", "b"], 50), "y": rng.normal(size=100)})
    table = plots.summarize(frame, "y", by="group").set_index("group")
    values = frame.loc[frame["group"] == "b", "y"].to_numpy()
    assert table.loc["b", "mean"] == pytest.approx(values.mean())
    assert table.loc["b", "std"] == pytest.approx(values.std(ddof=1))
    assert table.loc["b", "ci_high"] - table.loc["b", "mean"] == pytest.approx(1.96 * values.std(ddof=1) / np.sqrt(50))


def test_add_ci_keeps_the_rows_and_adds_bounds():
    out = plots.add_ci(pd.DataFrame({"mean": [1.0], "std": [1.0], "count": [4]}))
    assert out[["ci_low", "ci_high"]].iloc[0].tolist() == pytest.approx([1 - 0.98, 1 + 0.98])


@pytest.mark.parametrize(("mean", "ci", "text"), [(0.4937, 0.0031, "0.494 ± 0.003"), (-2506.63, 0.0, "-2506.6 ± 0.0"),
                                                  (3.2e-5, 1e-5, "3.2e-05 ± 1.0e-05"), (0.5, float("nan"), "0.500")])
def test_format_ci(mean, ci, text):
    assert plots.format_ci(mean, ci) == text


def test_markdown_table_escapes_pipes():
    text = plots.markdown_table(pd.DataFrame({"claim": ["|g| grows"], "holds": [True]}))
    assert text.splitlines()[2] == "| \\|g\\| grows | True |"


def test_figure_helpers_draw():
    plots.theme()
    fig, ax = plt.subplots()
    plots.errorbars(ax, [1, 2, 4], [0.1, 0.2, 0.3], [0.01, np.nan, 0.02], label="m")
    plots.band(ax, [1, 2, 4], [0.0, 0.1, 0.2], [0.2, 0.3, 0.4])
    plots.log2_axis(ax)
    assert ax.get_xscale() == "log" and len(ax.collections) >= 1
    assert set(plots.color_map([4, 16, 64])) == {4, 16, 64}
    plt.close(fig)
