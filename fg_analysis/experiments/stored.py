"""The stored runs by what made them: per preset that is stored in ``results/published``, how many of its units
are there, their measured time and when they were saved (``python -m fg_analysis records --presets``, the
README's "Stored runs" table).

Each entry of :data:`STORED` names a preset's units (a function returning the frozen configs the sweep caches
one by one; ``None`` for the benchmark, whose one record per preset is keyed by the machine) and the command that
produces them; :func:`stored_runs` reads the records of those units only, so units of other presets stored in the
same folder are not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pandas as pd

from fg_analysis.experiments.approximation import ApproximationConfig
from fg_analysis.experiments.guided import CosineConfig, TrainingConfig
from fg_analysis.experiments.optimization import OptimizationConfig
from fg_analysis.experiments.rq3 import RQ3Config
from fg_analysis.runs.cache import ResultsCache

__all__ = ["STORED", "StoredPreset", "duration", "stored_runs", "stored_runs_markdown"]


class StoredPreset(NamedTuple):
    """A stored preset: a description, the command that makes (or resumes) it, and its units."""

    description: str
    command: str
    units: Callable[[], list] | None


def _rq1():

    return ApproximationConfig.preset("paper").cells()


def _rq1_paired():

    return ApproximationConfig.preset("paper").paired_cells()


def _rq2():

    return OptimizationConfig.preset("paper").runs()


def _rq3():

    return RQ3Config.preset("mnist-fc").runs()


def _rq3_1024():

    return RQ3Config.preset("mnist-fc1024").runs()


def _guided_training():

    return TrainingConfig.preset("mnist").runs()


def _guided_cosines():

    return CosineConfig.preset("mnist").units()


#: the presets stored in ``results/published``
STORED = (
    StoredPreset("RQ1 paper grid (n = 2^0..2^16, k = 2^0..2^10, 1000 / 100 samples)",
                 "python -m fg_analysis rq1 --preset paper --publish", _rq1),
    StoredPreset("RQ1 paired cells (projection against mean on the same tangents, 1 < k ≤ n)",
                 "python -m fg_analysis rq1 --preset paper --part paired --publish", _rq1_paired),
    StoredPreset("RQ2 paper grid (n = 1..1024, 8 approaches, 5 seeds, float32, the reference's stopping rule, "
                 "oracle JVPs, fixed angles)",
                 "python -m fg_analysis rq2 --preset paper --publish", _rq2),
    StoredPreset("RQ3 FC-256 on MNIST, the paper's protocol (8 approaches, seeds 0-2, oracle JVPs)",
                 "python -m fg_analysis rq3 --preset mnist-fc --publish", _rq3),
    StoredPreset("RQ3 FC-1024 on MNIST, the paper's protocol (8 approaches, seeds 0-2, oracle JVPs)",
                 "python -m fg_analysis rq3 --preset mnist-fc1024 --publish", _rq3_1024),
    StoredPreset("guided tangents: training runs (FC-256 and CNN, 7 approaches, 3 seeds)",
                 "python -m fg_analysis.experiments.guided --preset mnist --publish --part training",
                 _guided_training),
    StoredPreset("guided tangents: network cosines",
                 "python -m fg_analysis.experiments.guided --preset mnist --publish --part cosines", _guided_cosines),
    StoredPreset("RQ4 benchmark (quick and full presets)",
                 "python -m fg_analysis bench --quick --publish (and --full)", None),
)


def _records(entry: StoredPreset, cache: ResultsCache) -> tuple[list[dict], int]:
    """The stored records of ``entry`` and how many units it has in all."""
    if entry.units is None:
        found = [record for _, record in cache.records("BenchConfig") if record["config"].get("preset") != "live"]
        return found, len(found)
    units = entry.units()
    return cache.read(units)[1], len(units)


def stored_runs(cache: ResultsCache | None = None) -> pd.DataFrame:
    """One row per entry of :data:`STORED`: units stored and in all, the summed and the longest measured wall
    time of the stored ones, their devices and the dates they were saved."""
    cache = cache or ResultsCache()
    rows = []
    for entry in STORED:
        records, total = _records(entry, cache)
        times = [float(r.get("wall_time_s") or 0.0) for r in records]
        devices = sorted({r.get("environment", {}).get("device_name") or r.get("environment", {}).get("device", "?")
                          for r in records})
        dates = sorted({str(r.get("saved", ""))[:10] for r in records})
        rows.append({"stored runs": entry.description, "command": entry.command, "stored": len(records),
                     "units": total, "hours": sum(times) / 3600, "longest_min": max(times, default=0.0) / 60,
                     "devices": ", ".join(devices), "saved": (dates[0] if len(dates) == 1 else
                                                             f"{dates[0]}..{dates[-1]}" if dates else "")})
    return pd.DataFrame(rows)


def duration(seconds: float) -> str:
    """``"45 s"``, ``"14 min"`` or ``"2.4 h"``.

    >>> duration(45.2), duration(840), duration(8640)
    ('45 s', '14 min', '2.4 h')
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def stored_runs_markdown(cache: ResultsCache | None = None) -> str:
    """:func:`stored_runs` as the README's Markdown table."""
    lines = ["| stored runs | command | units | measured time (sum of units) | longest unit | saved |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in stored_runs(cache).itertuples(index=False):
        units = f"{row.stored} of {row.units}" if row.stored < row.units else f"all {row.units}"
        lines.append(f"| {row[0]} | `{row.command}` | {units} | {duration(row.hours * 3600)} | "
                     f"{duration(row.longest_min * 60)} | {row.saved} |")
    return "\n".join(lines)
