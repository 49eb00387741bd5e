"""Throughput of the approximation-quality computation (RQ1's cosines): one batch against a per-sample loop.

Cosines of projection estimates of ``g = 1`` at n = ``approximation_n``, k = ``approximation_k`` with oracle
JVPs ``d = V g``: all samples at once as a (samples, k, n) batch through :func:`fg_analysis.aggregate.projection`,
against one sample at a time in a Python loop; with the tangents drawn inside (``"with sampling"``) and pre-drawn
(``"aggregation"``, the projection and cosine only).

References:
    Flügel et al. arXiv:2410.17764 (RQ1 approximation quality, RQ4 cost).
"""

from __future__ import annotations

import time
from statistics import median

import pandas as pd
import torch

from fg_analysis.aggregate import projection
from fg_analysis.bench.config import BenchConfig
from fg_analysis.bench.timing import sync
from fg_analysis.metrics import cosine
from fg_analysis.tangents import Normal

__all__ = ["approximation_cosines", "benchmark_approximation"]


def approximation_cosines(samples: int, n: int, k: int, *, batched: bool, seed: int = 0,
                          device: torch.device | str = "cpu", tangents: torch.Tensor | None = None) -> torch.Tensor:
    """Cosines of ``samples`` projection estimates of ``g = 1`` (oracle JVPs ``d = V g``).

    Args:
        samples, n, k: how many estimates, their dimension and tangent count.
        batched: all at once as a (samples, k, n) batch, or one sample at a time in a Python loop.
        seed, device: of the tangents.
        tangents: pre-drawn tangents of shape (samples, k, n) (then nothing is sampled).

    Returns:
        The (samples,) cosines.
    """
    generator = torch.Generator(device=device).manual_seed(seed)
    g = torch.ones(n, device=device)
    law = Normal()
    if batched:
        V = tangents if tangents is not None else law.sample(k, n, batch_shape=(samples,), generator=generator,
                                                             device=device)
        return cosine(projection(V, V @ g), g)
    cosines = []
    for i in range(samples):
        V = tangents[i] if tangents is not None else law.sample(k, n, generator=generator, device=device)
        cosines.append(cosine(projection(V, V @ g).unsqueeze(0), g))  # a (1,) tensor: no host sync per sample
    return torch.cat(cosines)


def benchmark_approximation(config: BenchConfig, device: torch.device) -> pd.DataFrame:
    """Seconds of the batched and the looped computation, median of 3 interleaved runs per stage.

    Returns:
        Rows of section ``"approximation"``: ``method`` (``batched``/``loop``), ``stage``, ``seconds``,
        ``samples_per_second`` and the ``mean_cosine`` (the same for both).
    """
    kwargs = dict(n=config.approximation_n, k=config.approximation_k, seed=config.seed, device=device)
    samples = config.approximation_samples
    drawn = Normal().sample(config.approximation_k, config.approximation_n, batch_shape=(samples,),
                            generator=torch.Generator(device=device).manual_seed(config.seed), device=device)
    approximation_cosines(8, batched=True, **kwargs)
    approximation_cosines(8, batched=False, **kwargs)
    variants = {(stage, batched): dict(tangents=drawn if stage == "aggregation" else None)
                for stage in ("with sampling", "aggregation") for batched in (True, False)}
    timings: dict[tuple, list[float]] = {key: [] for key in variants}
    mean_cosine = float("nan")
    for _ in range(3):
        for (stage, batched), extra in variants.items():
            sync(device)
            start = time.perf_counter()
            cosines = approximation_cosines(samples, batched=batched, **kwargs, **extra)
            sync(device)
            timings[(stage, batched)].append(time.perf_counter() - start)
            mean_cosine = float(cosines.mean())
    return pd.DataFrame([dict(section="approximation", method="batched" if batched else "loop", stage=stage,
                              n=config.approximation_n, k=config.approximation_k, samples=samples,
                              seconds=median(seconds), samples_per_second=samples / median(seconds),
                              mean_cosine=mean_cosine)
                         for (stage, batched), seconds in timings.items()])
