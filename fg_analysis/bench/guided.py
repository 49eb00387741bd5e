"""The cost of guided tangents (:mod:`fg_analysis.guides`): the auxiliary heads' FLOPs and time next to the JVPs.

For each network of ``config.guided_models`` and each number of JVPs of ``config.guided_jvps``, a forward-mode
activity-perturbation step with random tangents and one with the heads' guesses plus random tangents (the same
number of JVPs), measured by :func:`fg_analysis.experiments.guided.cost_table` (FLOPs from the layers' shapes,
milliseconds the median of ``config.repeats`` steps after one warm-up step, on the CPU).
"""

from __future__ import annotations

import pandas as pd
import torch

from fg_analysis.bench.config import BenchConfig

__all__ = ["benchmark_guided"]


def benchmark_guided(config: BenchConfig, device: torch.device) -> pd.DataFrame:
    """Rows of section ``"guided"`` (model, approach, jvps, FLOPs per sample of the forward pass, the JVPs'
    tangent passes and the heads, step and heads milliseconds); none on a GPU (the heads run on the CPU here)."""
    from fg_analysis.experiments.guided import cost_table, network_label

    if device.type != "cpu" or not config.guided_models:
        return pd.DataFrame(columns=["section"])
    parts = []
    for model, width in config.guided_models:
        frame = cost_table(model=model, width=width, steps=config.repeats, tangent_counts=config.guided_jvps,
                           seed=config.seed)
        parts.append(frame.assign(section="guided", model=network_label(model, width)))
    return pd.concat(parts, ignore_index=True)
