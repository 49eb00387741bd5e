"""The cost of guided tangents (:mod:`fg_analysis.nets.guides`): the auxiliary heads' FLOPs and time next to the JVPs.

For each network of ``config.guided_models`` and each number of JVPs of ``config.guided_jvps``, a forward-mode
activity-perturbation step with random tangents and one with the heads' guesses plus random tangents (the same
number of JVPs), measured by :func:`cost_table` (FLOPs from the layers' shapes,
milliseconds the median of ``config.repeats`` steps after one warm-up step, on the CPU).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from fg_analysis.bench.config import BenchConfig
from fg_analysis.nets import guides
from fg_analysis.nets.approaches import guided_label, network_label
from fg_analysis.nets.models import build_model
from fg_analysis.runs.env import torch_threads

__all__ = ["benchmark_guided", "cost_table"]


def benchmark_guided(config: BenchConfig, device: torch.device) -> pd.DataFrame:
    """Rows of section ``"guided"`` (model, approach, jvps, FLOPs per sample of the forward pass, the JVPs'
    tangent passes and the heads, step and heads milliseconds); none on a GPU (the heads run on the CPU here)."""
    if device.type != "cpu" or not config.guided_models:
        return pd.DataFrame(columns=["section"])
    parts = []
    for model, width in config.guided_models:
        frame = cost_table(model=model, width=width, steps=config.repeats, tangent_counts=config.guided_jvps,
                           seed=config.seed)
        parts.append(frame.assign(section="guided", model=network_label(model, width)))
    return pd.concat(parts, ignore_index=True)


def cost_table(*, model: str = "fc", width: int | None = 256, batch_size: int = 64, steps: int = 10,
               tangent_counts=(4, 16), seed: int = 0) -> pd.DataFrame:
    """FLOPs per sample and measured milliseconds per step (forward-mode JVPs, one CPU thread, median of
    ``steps``) of random k and guesses + (k − m) random at equal JVPs, with the heads' part of both.

    FLOPs: ``forward`` of the network (Linear/Conv2d, 2 per multiply-add); one JVP's tangent pass costs about
    the forward FLOPs of the stages after the first (the input has no tangent), ``jvp_flops`` = JVPs × that;
    the heads cost their forward FLOPs three times (forward, backward to the stage output and to the weights).
    """
    shape = (1, 28, 28)
    net = build_model(model, input_shape=shape, n_classes=10, width=width, seed=seed)
    heads = guides.AuxiliaryHeads.for_network(net, shape, 10, seed=seed)
    sample = torch.zeros(1, *shape)
    per_stage, h = [], sample
    for stage in net.stages:
        per_stage.append(sum(guides.forward_flops(stage, h).values()))
        with torch.no_grad():
            h = stage(h)
    activities = [torch.zeros(1, *s) for s in net.activity_shapes(shape)[:-1]]
    head_flops = sum(sum(guides.forward_flops(head, a).values()) for head, a in zip(heads, activities))
    forward, tangent_pass = sum(per_stage), sum(per_stage[1:])
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, *shape, generator=generator)
    y = torch.randint(0, 10, (batch_size,), generator=generator)
    provider = guides.LocalLosses(heads)
    m = provider.count(len(net.stages))
    rows = []
    with torch_threads(1):
        for jvps in tangent_counts:
            for approach in ("random", "guided"):
                k = jvps - m if approach == "guided" else jvps
                times, head_times = [], []
                for step in range(steps + 1):
                    before = provider.seconds
                    tick = time.perf_counter()
                    guides.guided_activity_perturbation(net, x, y, provider=provider if approach == "guided" else None,
                                                        k=k, mode="forward", generator=generator)
                    if step:  # the first call warms up
                        times.append(time.perf_counter() - tick)
                        head_times.append(provider.seconds - before)
                rows.append({"approach": guided_label(approach, k), "jvps": jvps, "forward_flops": forward,
                             "jvp_flops": jvps * tangent_pass, "head_flops": 3 * head_flops if approach == "guided"
                             else 0, "step_ms": 1000 * float(np.median(times)),
                             "heads_ms": 1000 * float(np.median(head_times))})
    frame = pd.DataFrame(rows)
    frame["head_share_of_jvp_flops"] = frame["head_flops"] / frame["jvp_flops"]
    frame["head_share_of_forward_flops"] = frame["head_flops"] / frame["forward_flops"]
    return frame
