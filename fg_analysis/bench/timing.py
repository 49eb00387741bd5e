"""The benchmark's clock: interleaved (round-robin) repeats, medians per phase, ratios paired by round.

Load from other processes drifts over seconds. Running every variant of one setting once per round, and taking
the median over rounds of one variant's time over another's *in the same round*, makes a ratio that such load
hits on both sides alike; the medians of the raw times are kept too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from statistics import median

import torch

__all__ = ["Step", "sync", "time_round_robin"]

#: a timed step: runs once and returns the seconds of each of its phases
Step = Callable[[], dict[str, float]]


def sync(device: torch.device) -> None:
    """Wait for the device's queued kernels (``torch.cuda.synchronize``; nothing on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_round_robin(steps: Mapping[object, Step], *, repeats: int, warmup: int,
                     paired: Mapping[str, object] | None = None) -> dict[object, dict[str, float]]:
    """Run every step ``warmup`` times, then ``repeats`` rounds in which each step runs once (interleaved).

    Args:
        steps: the variants, by key.
        repeats, warmup: timed and untimed rounds.
        paired: ``{name: key}``: for each, every step also gets ``name``, the median over rounds of its total
            over the total of step ``key`` in the same round (keys not in ``steps`` are left out).

    Returns:
        Per step: the median of every phase, ``"step"`` (the median of the per-round totals), ``"step_min"``
        (the fastest round) and the paired ratios.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    runs: dict[object, list[dict[str, float]]] = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            runs[key].append(step())
    totals = {key: [sum(r.values()) for r in records] for key, records in runs.items()}
    timings = {}
    for key, records in runs.items():
        phases = {phase: median(r[phase] for r in records) for phase in records[0]}
        timings[key] = {**phases, "step": median(totals[key]), "step_min": min(totals[key])}
        for name, reference in (paired or {}).items():
            if reference in totals:
                timings[key][name] = median(t / r for t, r in zip(totals[key], totals[reference]))
    return timings
