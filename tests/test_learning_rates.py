"""The paper's learning-rate tables (``fg_analysis/experiments/lrs``), read back against the CSV files read
independently with pandas."""

import re
from pathlib import Path

import pandas as pd
import pytest

import fg_analysis
from fg_analysis.experiments import learning_rates as lrs
from fg_analysis.experiments.learning_rates import closed_form_rate as paper_learning_rate
from fg_analysis.tangents import FixedAngle

LRS = Path(fg_analysis.__file__).parent / "experiments" / "lrs"



def test_paper_rates_math_table():
    """Every row of lrs/math.csv is returned for its setting (CSV read here, independently)."""
    table = pd.read_csv(LRS / "math.csv")
    assert len(table) > 100
    for row in table.itertuples():
        if row.gradient_approach == "bp":
            found = paper_learning_rate(row.function, int(row.n), method="bp")
        else:
            aggregator = {"fg-mean": "mean", "frog": "projection"}[row.gradient_approach]
            found = paper_learning_rate(row.function, int(row.n), method="fg", k=int(row.k), aggregator=aggregator)
        assert found == row.lr, row


def test_paper_rates_fixed_angle_mean():
    table = pd.read_csv(LRS / "math__custom_tangents.csv")
    rows = table[table["gradient_approach"] == "fg-mean"]
    assert len(rows) == 12
    for row in rows.itertuples():
        theta = float(re.search(r"specific_angle_(\d+)", row.optimizer).group(1))
        found = paper_learning_rate(row.function, int(row.n), method="fg", k=int(row.k), aggregator="mean",
                                    tangents=FixedAngle(theta=theta))
        assert found == row.lr, row


def test_paper_rates_fixed_angle_projection():
    table = pd.read_csv(LRS / "math__custom_tangents.csv")
    rows = table[table["gradient_approach"] == "frog"]
    assert sorted(rows["k"]) == [16, 64]
    for row in rows.itertuples():
        for theta in (15.0, 90.0):
            found = paper_learning_rate(row.function, int(row.n), method="fg", k=int(row.k),
                                        aggregator="projection", tangents=FixedAngle(theta=theta))
            assert found == row.lr, (row, theta)


def test_paper_lr_docstring_value_and_lookup():
    table = pd.read_csv(LRS / "fc_nns.csv")
    row = table[table["gradient_approach"] == "frog"].iloc[0]
    keys = {column: row[column] for column in table.columns if column not in ("gradient_approach", "k", "lr",
                                                                                "optimizer")}
    assert lrs.paper_lr("fc_nns", method="fg", aggregator="projection", k=int(row["k"]), **keys) == row["lr"]
    assert lrs.paper_lr("math", function="styblinski-tang", n=64, method="fg", aggregator="projection",
                        k=16) == pytest.approx(0.004202621051012)


def test_missing_settings_raise():
    with pytest.raises(ValueError, match="no unique learning rate"):
        paper_learning_rate("sphere", 3, method="bp")  # n = 3 is not in the grid
    with pytest.raises(ValueError, match="no unique learning rate"):
        paper_learning_rate("sphere", 64, method="fg", k=1, aggregator="projection")  # not run by the paper
    with pytest.raises(ValueError, match="no unique learning rate"):
        paper_learning_rate("sphere", 64, method="fg", k=3, aggregator="mean")
    with pytest.raises(ValueError, match="mean and projection only"):
        paper_learning_rate("sphere", 64, method="fg", k=2, aggregator="sum")
    with pytest.raises(ValueError, match="unknown learning-rate table"):
        lrs.table("imagenet")
    with pytest.raises(ValueError, match="no column"):
        lrs.paper_lr("math", method="bp", model="fc")
