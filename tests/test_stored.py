"""fg_analysis.experiments.stored: the README's stored-runs table counts a preset's own units and their times."""

from __future__ import annotations

import dataclasses

import pytest

from fg_analysis.runs.cache import ResultsCache
from fg_analysis.experiments import approximation, stored
from fg_analysis.experiments.approximation import ApproximationConfig


def test_stored_runs_count_a_presets_units_and_sum_their_times(tmp_path, monkeypatch):
    cache = ResultsCache(tmp_path, published=None)
    config = ApproximationConfig(dims=(4, 8), tangent_counts=(1, 2), samples=20, angles=())
    other = dataclasses.replace(config, samples=30)  # stored in the same folder, not part of the preset
    approximation.run(dataclasses.replace(config, dims=(4,)), cache=cache, progress=False)
    approximation.run(other, cache=cache, progress=False)
    monkeypatch.setattr(stored, "STORED", (stored.StoredPreset("tiny", "make it", config.cells),))
    row, = stored.stored_runs(cache).itertuples(index=False)
    records = cache.read(config.cells())[1]
    assert (row.stored, row.units) == (2, 4)
    assert row.hours == pytest.approx(sum(r["wall_time_s"] for r in records) / 3600)
    assert "| tiny | `make it` | 2 of 4 |" in stored.stored_runs_markdown(cache)


def test_every_stored_preset_lists_its_units():
    rows = stored.stored_runs(ResultsCache(published=None))
    assert list(rows["units"][:4]) == [205, 115, 267, 24]  # RQ1 cells, RQ1 paired cells (1 < k ≤ n), RQ2, RQ3 FC-256
