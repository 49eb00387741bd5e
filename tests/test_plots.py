"""fg_analysis.publish.plots: the figure helpers and the Markdown table (the CIs are tested in test_metrics.py)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fg_analysis.publish import plots  # noqa: E402


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
