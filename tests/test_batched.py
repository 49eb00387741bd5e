"""fg_analysis.nets.batched: runs trained in one vmapped pass equal the same runs trained one by one."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest
import torch

from fg_analysis.nets import batched
from fg_analysis.aggregate import coefficients
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.nets.data import load_dataset
from fg_analysis.experiments.rq3 import TrainingRun, run_unit
from fg_analysis.nets.approaches import PAPER_APPROACHES
from fg_analysis.nets.gradients import GradientSource
from fg_analysis.nets.models import build_model
from fg_analysis.nets.training import train

COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "cosine", "norm_ratio", "steps",
           "test_accuracy", "test_loss", "best_epoch"]


def _units(*, seeds=(0, 1), epochs=3, patience=10, lr=0.05, max_train=320, width=24, extra=()):
    units = [TrainingRun("fc", width, "digits", m, a, k, s, lr, "test", epochs=epochs, patience=patience,
                         mode="oracle", max_train=max_train) for (m, a, k) in PAPER_APPROACHES for s in seeds]
    return units + [dataclasses.replace(units[0], **change) for change in extra]


def _sequential(unit, device="cpu"):
    """run_unit's run, returning the trained model too (its best-validation state)."""
    data = load_dataset(unit.dataset, seed=unit.seed, device=device)
    net = build_model(unit.model, input_shape=data.input_shape, n_classes=data.n_classes, width=unit.width,
                      seed=unit.seed, device=device)
    source = GradientSource(unit.method, k=unit.k, aggregator=unit.aggregator, mode=unit.mode)
    result = train(net, data, source, lr=unit.lr, batch_size=unit.batch_size, epochs=unit.epochs,
                   patience=unit.patience, max_train=unit.max_train, progress=False,
                   generator=torch.Generator(device=device).manual_seed(unit.seed))
    return result, net


def _compare(units, device="cpu", atol=2e-5):
    done = batched.train_batched(units, device=device)
    assert set(done) == set(units)
    state = batched.train_batched.last_state
    for i, unit in enumerate(units):
        result, net = _sequential(unit, device)
        history, ours = result.history, done[unit]
        assert len(ours) == len(history), unit
        assert ours["stopped"].iloc[0] == result.stopped, unit
        assert ours["test_accuracy"].iloc[0] == pytest.approx(result.test_accuracy, abs=1e-9)
        assert ours["best_epoch"].iloc[0] == result.best_epoch
        for column in ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "cosine", "norm_ratio", "steps"]:
            a, b = torch.tensor(history[column].to_numpy(float)), torch.tensor(ours[column].to_numpy(float))
            assert torch.allclose(a, b, atol=atol, rtol=1e-4, equal_nan=True), (unit, column, a, b)
        for name, p in net.named_parameters():
            assert torch.allclose(state.best[name][i], p.detach(), atol=atol, rtol=1e-4), (unit, name)
    return done


def test_batched_equals_sequential_every_approach():
    """8 approaches × 2 seeds in one pass = 16 sequential runs: histories, test accuracy, final weights."""
    done = _compare(_units())
    frame = next(iter(done.values()))
    assert {"batched_runs", "device", "n_parameters", "activity_dimension", *COLUMNS} <= set(frame.columns)
    assert frame["batched_runs"].iloc[0] == 16


def test_batched_early_stopping_and_divergence_as_sequential():
    """Runs that stop early (patience 1) or diverge (a huge rate) leave the pass as the sequential runs stop."""
    units = _units(seeds=(0,), epochs=5, patience=1, lr=0.3, extra=({"lr": 400.0, "method": "fg", "k": 4,
                                                                       "aggregator": "projection"},))
    done = _compare(units)
    stops = {done[u]["stopped"].iloc[0] for u in units}
    assert "diverged" in stops and len(stops) >= 2


def test_run_batched_stores_each_run_and_resumes(tmp_path):
    cache = ResultsCache(tmp_path, published=None)
    units = _units(seeds=(0,), epochs=1, max_train=128)[:4]
    result = batched.run_batched(units, cache=cache)
    assert result["stored"] == units and result["unfinished"] == []
    for unit in units:
        frame, record = cache.load(unit)
        assert record["environment"]["device"] == "cpu" and frame["batched_runs"].iloc[0] == 4
        assert (frame["val_loss"] - run_unit(unit)["val_loss"]).abs().max() < 1e-5   # = the sequential run
    assert batched.run_batched(units, cache=cache)["stored"] == []          # all stored: nothing retrained
    other = _units(seeds=(5,), epochs=1, max_train=128)[:2]
    late = batched.run_batched(other, cache=cache, deadline=time.time() - 1)
    assert late == {"stored": [], "unfinished": other}


def test_only_batchable_units_are_grouped():
    unit = _units()[0]
    assert batched.batchable(unit)
    for change in ({"mode": "forward", "method": "fg"}, {"model": "vit"}, {"optimizer": "adam"}):
        assert not batched.batchable(dataclasses.replace(unit, **change))
    with pytest.raises(ValueError, match="not batchable"):
        batched.group_units([dataclasses.replace(unit, model="resnet18")])
    groups = batched.group_units(_units(seeds=(0,)) + _units(seeds=(0,), width=16))
    assert [len(g) for g in groups] == [8, 8]
    assert [len(g) for g in batched.group_units(_units(), max_group=5)] == [5, 5, 5, 1]


def test_throughput_measures_both():
    config = batched.BatchedThroughput(width=16, dataset="digits", seeds=(0, 1), k=4, steps=4, warmup=1)
    result = batched.throughput(config)
    assert result["runs"] == 2 and result["batched_s_per_step"] > 0 and result["sequential_s_per_step"] > 0
    assert math.isclose(result["speedup"], result["sequential_s_per_step"] / result["batched_s_per_step"])
    with pytest.raises(ValueError, match="training samples"):
        batched.throughput(dataclasses.replace(config, steps=10 ** 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batched_equals_sequential_cuda():
    _compare(_units(seeds=(0,), epochs=2, max_train=256), device="cuda", atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_aggregators_cuda_match_cpu():
    V = torch.randn(3, 16, 500, generator=torch.Generator().manual_seed(0))
    d = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    for name in ("sum", "mean", "projection"):
        cpu, gpu = coefficients(V, d, name), coefficients(V.cuda(), d.cuda(), name)
        assert gpu.device.type == "cuda" and torch.allclose(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
