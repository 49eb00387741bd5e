"""The approaches' names, one rule for every table, figure and page.

An approach is ``(method, aggregator, k)``: backpropagation (``"BP"``), the single-tangent forward gradient of
Baydin et al. (``"FG"``: k = 1 with the mean or the sum, which agree there), and the paper's multi-tangent
aggregations, ``"mean k=4"``, ``"projection k=16"`` (Flügel et al., arXiv 2410.17764).

>>> approach_label("fg", "projection", 16), approach_label("fg", "mean", 1), approach_label("bp")
('projection k=16', 'FG', 'BP')
>>> approach_order(["projection k=16", "mean k=4", "BP", "FG", "mean k=16"])
['BP', 'FG', 'mean k=4', 'mean k=16', 'projection k=16']
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PAPER_APPROACHES", "approach_label", "approach_order", "guided_label", "jvp_count", "network_label"]

#: the paper's approaches as (method, aggregator, k): BP, FG (k = 1), mean and projection for k ∈ {2, 4, 16}
PAPER_APPROACHES = (("bp", "mean", 1), ("fg", "mean", 1),
                    *(("fg", aggregator, k) for aggregator in ("mean", "projection") for k in (2, 4, 16)))


def approach_label(method: str, aggregator: str = "mean", k: int = 1) -> str:
    """``"BP"``, ``"FG"`` (k = 1 with mean or sum), or ``"<aggregator> k=<k>"``."""
    if method == "bp":
        return "BP"
    if int(k) == 1 and aggregator in ("mean", "sum"):
        return "FG"
    return f"{aggregator} k={int(k)}"


def _key(label: str) -> tuple:
    if label == "BP":
        return (0, "", 0)
    if label == "FG":
        return (1, "", 1)
    aggregator, _, k = label.partition(" k=")
    return (2, aggregator, int(k) if k.isdigit() else 0)


def approach_order(labels: Iterable[str]) -> list[str]:
    """The distinct labels in reading order: BP, FG, then each aggregator by increasing k."""
    return sorted(set(labels), key=_key)


def guided_label(approach: str, k: int, m: int = 3) -> str:
    """The guided-tangent approaches' labels (:mod:`fg_analysis.nets.guides`): ``"BP"``, ``"random k=16"``, ``"guess +
    13 random"`` (16 JVPs), ``"guess"``."""
    if approach == "bp":
        return "BP"
    if approach == "random":
        return f"random k={k}"
    if approach == "output":
        return f"output guess + {k} random"
    if approach == "guess" or k == 0:
        return "guess"
    return f"guess + {k} random"


def jvp_count(approach: str, k: int, m: int = 3) -> int:
    """JVPs per step: k (random), m + k (guided), m (guess), 1 + k (the output guess alone), 0 (BP)."""
    return {"bp": 0, "random": k, "guided": m + k, "guess": m, "output": 1 + k}[approach]


def network_label(model: str, width: int | None) -> str:
    """``"FC-256"`` for a fully-connected net of that width, else the network's name (``"CNN"``, ``"ResNet-18"``,
    ``"ViT"``)."""
    return f"FC-{width}" if model == "fc" else {"cnn": "CNN", "resnet18": "ResNet-18", "vit": "ViT"}.get(model, model)
