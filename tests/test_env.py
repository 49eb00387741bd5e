"""The environment of a run (fg_analysis.runs.env): device resolution, thread counts and the record's fields."""

from __future__ import annotations

import re

import pytest
import torch

from fg_analysis.runs import env


def test_devices_resolve_and_cuda_without_a_gpu_is_an_error_not_a_fallback():
    assert env.resolve_device("cpu") == torch.device("cpu") == env.resolve_device(torch.device("cpu"))
    assert env.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        env.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no GPU"):
            env.resolve_device("cuda:1")


def test_torch_threads_restores_the_previous_count_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), env.torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
        raise RuntimeError("inside the block")
    assert torch.get_num_threads() == before
    with env.torch_threads(None):  # None: no change
        assert torch.get_num_threads() == before


def test_the_record_names_versions_device_and_commit():
    record = env.environment("cpu")
    assert {"python", "torch", "numpy", "pandas"} <= set(record["versions"])
    assert record["device"] == "cpu" and re.fullmatch(r"cpu \(.+, \d+ threads?\)", record["device_name"])
    commit = record["commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{7,}(\+dirty)?", commit)
