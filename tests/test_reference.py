"""fg_analysis.experiments.reference: the reference implementation's search outcomes, read in full and aligned with
ours."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from fg_analysis.experiments import reference
from fg_analysis.nets.approaches import approach_label
from fg_analysis.problems import get_problem

#: gradient_approach and k of a table row -> our approach label, written out independently of the module
LABELS = {("bp", ""): "BP", ("fg-mean", "1.0"): "FG", ("fg-mean", "1"): "FG"}


def _raw(name: str) -> list[dict]:
    with resources.files("fg_analysis.experiments").joinpath(f"reference_results/{name}.csv").open() as handle:
        return list(csv.DictReader(handle))


def _label(row: dict) -> str:
    if (row["gradient_approach"], row["k"]) in LABELS:
        return LABELS[row["gradient_approach"], row["k"]]
    aggregator = {"fg-mean": "mean", "frog": "projection"}[row["gradient_approach"]]
    return f"{aggregator} k={int(float(row['k']))}"


@pytest.mark.parametrize("name", reference.TABLES)
def test_every_row_is_read_with_its_loss(name):
    raw = _raw(name)
    frame = reference.table(name)
    assert len(frame) == len(raw) > 0 and frame["loss"].notna().all()
    np.testing.assert_allclose(frame["loss"], [float(row["loss"]) for row in raw])
    assert (resources.files("fg_analysis.experiments") / "reference_results" / "SOURCE.md").is_file()


def test_closed_form_keys_every_row_and_the_labels_agree():
    rows = reference.closed_form()
    math, custom = _raw("math"), _raw("math__custom_tangents")
    spans = [row for row in custom if "sampler=normal" in row["optimizer"]]
    angles = {row["optimizer"].rsplit("_", 1)[1].rstrip(")") for row in custom if "specific_angle" in row["optimizer"]}
    assert len(rows) == len(math) + (len(custom) - len(spans)) + len(spans) * len(angles)
    normal = rows[rows["tangents"] == "normal"].reset_index(drop=True)
    assert normal["approach"].tolist() == [_label(row) for row in math]
    assert normal["reference_f"].tolist() == pytest.approx([float(row["loss"]) for row in math])
    assert all(approach_label(m, a, k) == label for m, a, k, label in
               zip(rows["method"], rows["aggregator"], rows["k"], rows["approach"], strict=True))
    assert not rows.duplicated(["problem", "n", "tangents", "theta", "approach"]).any()
    st = rows[(rows["problem"] == "styblinski-tang") & (rows["n"] == 64) & (rows["approach"] == "projection k=16")
              & (rows["tangents"] == "normal")]
    assert st["reference_gap"].item() == pytest.approx(st["reference_f"].item() - get_problem("styblinski-tang").minimum(64))


def test_networks_keys_and_labels():
    rows = reference.networks()
    raw = _raw("fc_nns") + _raw("sota_nns")
    assert rows["approach"].tolist() == [_label(row) for row in raw]
    assert rows["network"].tolist() == [row["model"] for row in raw]
    assert set(rows["network"]) == {"fc_w=256", "fc_w=1024", "fc_w=4096", "resnet18", "vit"}


def _finals(cells: dict) -> pd.DataFrame:
    rows = []
    for (problem, n, method, aggregator, k), values in cells.items():
        for seed, value in enumerate(values):
            rows.append({"problem": problem, "n": n, "method": method, "aggregator": aggregator, "k": k,
                         "approach": approach_label(method, aggregator, k), "tangents": "normal", "theta": np.nan,
                         "seed": seed, "best_f": value, "lr": 0.5})
    return pd.DataFrame(rows)


def test_rq2_table_sets_our_cells_beside_the_references():
    st = reference.closed_form().query("problem == 'styblinski-tang' and n == 64 and tangents == 'normal'")
    ref = dict(zip(st["approach"], st["reference_f"]))
    minimum = get_problem("styblinski-tang").minimum(64)
    finals = _finals({("styblinski-tang", 64, "fg", "projection", 16): [minimum, minimum, minimum],
                      ("styblinski-tang", 64, "fg", "mean", 1): [ref["FG"] - 50, ref["FG"] - 10, ref["FG"] - 20],
                      ("sphere", 4, "bp", "mean", 1): [1.3e-175, 0.0, 0.0]})
    table = reference.rq2_table(finals)
    assert len(table) == len(reference.closed_form())  # every reference cell, each once; ours all matched
    both = table[table["status"] == "both"].set_index(["problem", "approach"])
    assert len(both) == 3
    row = both.loc[("styblinski-tang", "FG")]
    assert row["ours"] == pytest.approx(ref["FG"] - 80 / 3) and row["seeds"] == 3
    assert row["ours_low"] == pytest.approx(ref["FG"] - 50) and row["position"] == "above our seeds"
    assert both.loc[("styblinski-tang", "projection k=16"), "position"] == "within our seeds"  # −2506.635 both
    assert both.loc[("sphere", "BP"), "position"] == "within our seeds"  # 0 against 1.3e-175: the same value
    assert not both["same_rate"].any()  # our made-up rate 0.5 is not the reference's


def test_rq3_table_takes_the_loss_at_the_best_epoch_and_lists_the_missing_cells():
    frame = pd.DataFrame([{"network": "fc_w=256", "dataset": "mnist", "approach": "BP", "seed": seed, "epoch": epoch,
                           "best_epoch": 1, "val_loss": loss, "lr": reference.networks()["reference_lr"].iloc[0]}
                          for seed, losses in enumerate(([2.3, 0.07, 0.09], [2.3, 0.08, 0.075])) for epoch, loss
                          in enumerate(losses)])
    table = reference.rq3_table(frame)
    assert len(table) == (reference.networks()["dataset"] == "mnist").sum()
    bp = table[(table["network"] == "fc_w=256") & (table["approach"] == "BP")].iloc[0]
    assert bp["ours"] == pytest.approx(0.075) and bp["seeds"] == 2 and bp["same_rate"]
    assert (bp["ours_low"], bp["ours_high"]) == (pytest.approx(0.07), pytest.approx(0.08))
    assert bp["position"] == "within our seeds"  # reference 0.0783
    assert (table["status"] == "reference only").sum() == len(table) - 1
    assert len(reference.rq3_table(None)) == len(table)


def test_caveat_says_one_seed_and_the_tuned_rate():
    for kind in ("rq2", "rq3"):
        text = reference.caveat(kind)
        assert "one run (seed 0)" in text and "rate" in text
    assert "0.1" in reference.caveat("rq3") and "50k/10k" in reference.caveat("rq3")
    with pytest.raises(ValueError, match="kind"):
        reference.caveat("rq4")
