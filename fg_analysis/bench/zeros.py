"""What skipping forward mode's products with absent (zero) tangents saves (:mod:`fg_analysis.zero_tangents`).

On the reference network, timed round-robin on the same inputs, with the zero-tangent kernels (``"skipped"``)
and with PyTorch's materialized zeros (``"materialized"``): weight perturbation's JVPs (a zero tangent for the
data entering the first layer) and activity perturbation's whole gradient (a zero tangent for every weight).
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import pandas as pd
import torch
import torch.nn.functional as F

from fg_analysis.bench.config import BenchConfig
from fg_analysis.bench.steps import random_batch
from fg_analysis.bench.timing import Step, sync, time_round_robin
from fg_analysis.estimator import ForwardGradient, module_objective
from fg_analysis.nets import gradients
from fg_analysis.tangents import Normal

__all__ = ["ZERO_TANGENT_CASES", "benchmark_zero_tangents"]

#: (perturbation, k) timed with and without the zero-tangent kernels
ZERO_TANGENT_CASES = (("weight", 1), ("activity", 16))


def benchmark_zero_tangents(config: BenchConfig, device: torch.device) -> pd.DataFrame:
    """Seconds of forward-mode work on the reference network with the zero products skipped or materialized.

    Returns:
        Rows of section ``"zero_tangents"`` per :data:`ZERO_TANGENT_CASES` and ``method``
        (``skipped``/``materialized``).
    """
    spec = next(spec for spec in config.models if spec.label == config.reference_model)
    model = spec.build(seed=config.seed, device=device)
    inputs, targets = random_batch(spec, seed=config.seed, device=device)
    f, params = module_objective(model, F.cross_entropy)
    generator = torch.Generator(device=device).manual_seed(config.seed)

    def timed(perturbation: str, k: int, materialized: bool) -> Step:
        if perturbation == "weight":
            estimator = ForwardGradient(k, generator=generator, skip_zero_products=not materialized)
            V = Normal().sample(k, sum(p.numel() for p in params.values()), generator=generator, device=device)

            def work():
                estimator.derivatives(f, params, V, inputs, targets)
        else:
            def work():
                gradients.activity_perturbation(model, inputs, targets, k=k, mode="forward", generator=generator,
                                                skip_zero_products=not materialized)

        def step() -> dict[str, float]:
            with torch.no_grad() if perturbation == "weight" else nullcontext():
                sync(device)
                start = time.perf_counter()
                work()
                sync(device)
                return {"seconds": time.perf_counter() - start}
        return step

    steps = {(perturbation, k, materialized): timed(perturbation, k, materialized)
             for perturbation, k in ZERO_TANGENT_CASES for materialized in (False, True)}
    timings = time_round_robin(steps, repeats=config.repeats, warmup=config.warmup)
    return pd.DataFrame([dict(section="zero_tangents", model=spec.label, perturbation=perturbation, k=k,
                              method="materialized" if materialized else "skipped", seconds=phases["seconds"])
                         for (perturbation, k, materialized), phases in timings.items()])
