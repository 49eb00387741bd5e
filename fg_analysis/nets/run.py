"""One network training run: its type (:class:`TrainingRun`, the cached unit of the network experiments) and
:func:`run_unit`, which builds its data, model and gradient source and trains it
(:func:`fg_analysis.nets.training.train`).

The seed fixes the data split, the initial weights, the batch order and the tangents, so a unit is one
reproducible run wherever it is trained (one after another, on a pool of processes, or batched with others by
:mod:`fg_analysis.nets.batched`, which gives the same histories).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from fg_analysis.nets.approaches import network_label
from fg_analysis.nets.data import load_dataset
from fg_analysis.nets.gradients import GradientSource, activity_dimension
from fg_analysis.nets.models import build_model, count_parameters
from fg_analysis.nets.training import train
from fg_analysis.runs.env import resolve_device

__all__ = ["TrainingRun", "run_unit"]


@dataclass(frozen=True)
class TrainingRun:
    """One training run (one cached unit): a network on a data set with one gradient source, rate and seed.

    The seed fixes the data split, the initial weights, the batch order and the tangents.
    ``max_train`` keeps only that many training samples (smoke runs).
    """

    model: str
    width: int | None
    dataset: str
    method: str
    aggregator: str
    k: int
    seed: int
    lr: float
    lr_source: str
    epochs: int = 200
    patience: int = 10
    batch_size: int = 64
    mode: str = "forward"
    perturbation: str = "activity"
    optimizer: str = "sgd"
    max_train: int | None = None


def run_unit(unit: TrainingRun, *, device: str | torch.device = "cpu", progress: bool = False) -> pd.DataFrame:
    """Train one unit: its per-epoch history with the test accuracy of the best-validation state and the device."""
    resolved = resolve_device(device)
    data = load_dataset(unit.dataset, seed=unit.seed, device=resolved)
    net = build_model(unit.model, input_shape=data.input_shape, n_classes=data.n_classes, width=unit.width,
                      seed=unit.seed, device=resolved)
    source = GradientSource(unit.method, k=unit.k, aggregator=unit.aggregator, perturbation=unit.perturbation,
                            mode=unit.mode)
    generator = torch.Generator(device=resolved).manual_seed(unit.seed)
    result = train(net, data, source, lr=unit.lr, batch_size=unit.batch_size, epochs=unit.epochs,
                   patience=unit.patience, optimizer=unit.optimizer, max_train=unit.max_train, generator=generator,
                   progress=progress,
                   description=f"{network_label(unit.model, unit.width)} {source.label} s{unit.seed}")
    history = result.history
    history["test_accuracy"] = result.test_accuracy
    history["test_loss"] = result.test_loss
    history["best_epoch"] = result.best_epoch
    history["stopped"] = result.stopped
    history["n_parameters"] = count_parameters(net)
    history["activity_dimension"] = activity_dimension(net, data.input_shape)
    history["device"] = resolved.type
    return history
