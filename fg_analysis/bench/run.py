"""Run the whole benchmark of a config and store it with its environment (:class:`fg_analysis.runs.cache.ResultsCache`).

The result is one tidy frame: rows of sections ``step`` and ``floor`` (:mod:`fg_analysis.bench.steps`),
``memory`` (:mod:`fg_analysis.bench.memory`), ``approximation`` (:mod:`fg_analysis.bench.approximation`),
``zero_tangents`` (:mod:`fg_analysis.bench.zeros`), ``guided`` (:mod:`fg_analysis.bench.guided`) and ``summary``
(the headline ratios and the targets' verdicts, :func:`fg_analysis.bench.report.summary_rows`).
"""

from __future__ import annotations

import pandas as pd

from fg_analysis.bench.approximation import benchmark_approximation
from fg_analysis.bench.config import BenchConfig
from fg_analysis.bench.guided import benchmark_guided
from fg_analysis.bench.memory import benchmark_memory
from fg_analysis.bench.report import summary, summary_rows
from fg_analysis.bench.steps import benchmark_steps
from fg_analysis.bench.zeros import benchmark_zero_tangents
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.env import resolve_device, torch_threads

__all__ = ["compute", "run"]


def compute(config: BenchConfig, *, progress: bool = True) -> pd.DataFrame:
    """Measure everything of ``config`` on ``config.device`` (no caching).

    Returns:
        The tidy frame, its ``summary`` rows computed from the measurements.
    """
    device = resolve_device(config.device)
    with torch_threads(config.threads):
        frame = pd.concat([benchmark_steps(config, device, progress=progress),
                           benchmark_memory(config, device, progress=progress),
                           benchmark_approximation(config, device),
                           benchmark_zero_tangents(config, device),
                           benchmark_guided(config, device)], ignore_index=True)
    result = summary(frame, reference_model=config.reference_model, fit_ks=config.fit_ks, device=device.type)
    return pd.concat([frame, summary_rows(result)], ignore_index=True)


def run(config: BenchConfig, *, cache: ResultsCache | None = None, refresh: bool = True,
        progress: bool = True) -> pd.DataFrame:
    """Measure ``config`` and store the result with its environment (``refresh=False``: reuse a stored record of
    the same config and machine).

    Returns:
        The frame, its record (config, environment, wall time, date) in ``frame.attrs["record"]``.
    """
    cache = cache or ResultsCache()
    with torch_threads(config.threads):  # the stored environment names the threads the run used
        return cache.get(config, lambda c: compute(c, progress=progress), device=config.device, refresh=refresh)
