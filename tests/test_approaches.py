"""The approaches' names (fg_analysis.nets.approaches): one spelling on every table, figure and page."""

from __future__ import annotations

import random

import pytest

from fg_analysis.nets.approaches import (PAPER_APPROACHES, approach_label, approach_order, guided_label, jvp_count,
                                         network_label)


def test_the_paper_approaches_and_their_labels():
    labels = [approach_label(*approach) for approach in PAPER_APPROACHES]
    assert labels == ["BP", "FG", "mean k=2", "mean k=4", "mean k=16", "projection k=2", "projection k=4",
                      "projection k=16"]
    assert approach_label("fg", "sum", 1) == "FG"  # k = 1: mean and sum are the same estimate
    assert approach_label("bp", "projection", 16) == "BP"  # BP ignores the forward-gradient settings


def test_reading_order_is_bp_fg_then_each_aggregator_by_k_whatever_the_input_order():
    labels = [approach_label(*approach) for approach in PAPER_APPROACHES]
    shuffled = labels * 2
    random.Random(0).shuffle(shuffled)
    assert approach_order(shuffled) == labels  # k=16 after k=4: numeric, not alphabetic


@pytest.mark.parametrize(("approach", "k", "label", "jvps"), [
    ("bp", 0, "BP", 0), ("random", 16, "random k=16", 16), ("guided", 13, "guess + 13 random", 16),
    ("guess", 0, "guess", 3), ("output", 15, "output guess + 15 random", 16)])
def test_guided_labels_and_their_jvps(approach, k, label, jvps):
    """Equal JVPs are the chapter's fair comparison: 3 guesses (two heads and the output) + 13 random = 16."""
    assert guided_label(approach, k) == label and jvp_count(approach, k) == jvps


def test_network_labels():
    assert [network_label("fc", 256), network_label("cnn", None), network_label("resnet18", None),
            network_label("vit", None)] == ["FC-256", "CNN", "ResNet-18", "ViT"]
