"""Training loop for the network experiments (RQ3): SGD on any gradient source, early stopping, per-epoch logs.

As in the paper ("Fully-connected networks", "ResNet18 and ViT"; Flügel et al., arXiv 2410.17764): plain SGD
``θ ← θ − lr · ĝ`` with a constant learning rate, no momentum and no weight decay (``optimizer="momentum"`` and
``"adam"`` are optional extras); minibatches of ``batch_size``; up to ``epochs`` epochs. The stopping rule is the
reference implementation's
(``nn_training/train.py``), checked once per epoch on the epoch's validation loss (:func:`epoch_stop`): the run
diverged when that loss is NaN or ``≥ max_loss`` (10), and stops early after ``patience`` epochs without a new
minimum (min_delta 0). A single training batch with a large loss does not stop a run; a non-finite training loss
or non-finite directional derivatives end the epoch and the run as diverged (the reference's NaN parameters
would give a NaN validation loss at that epoch's end). A diverged run returns with ``stopped="diverged"``, never
an exception that ends a sweep. The state with the best validation loss is kept, and the test accuracy is
measured on it.

Logged per epoch (epoch 0 is the initial network): train / validation loss and accuracy (evaluated at the end
of the epoch, eval mode, no gradient), the cosine ``cos(ĝ, ∇L)`` and the norm ratio ``|ĝ|/|∇L|`` between the
estimate and the true gradient on the first batch of the epoch (the BP gradient is computed only for that
batch, its BatchNorm statistics update undone), the time spent in training steps and the total wall time.

>>> import torch
>>> from fg_analysis.nets.data import load_dataset
>>> from fg_analysis.nets.gradients import GradientSource
>>> from fg_analysis.nets.models import build_model
>>> data = load_dataset("digits")
>>> net = build_model("fc", input_shape=data.input_shape, n_classes=10, width=32)
>>> result = train(net, data, GradientSource("bp"), lr=0.1, epochs=2, progress=False,
...                generator=torch.Generator().manual_seed(0))
>>> list(result.history.epoch)
[0, 1, 2]
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from fg_analysis.metrics import cosine, norm_ratio
from fg_analysis.nets.data import Dataset, batches
from fg_analysis.nets.gradients import Gradient, GradientSource, backprop

__all__ = ["MAX_LOSS", "OPTIMIZERS", "TrainResult", "epoch_stop", "evaluate", "make_optimizer", "train"]

OPTIMIZERS = ("sgd", "momentum", "adam")
#: a validation loss at or above this (or NaN) is a divergence (the reference's ``break_at_loss``)
MAX_LOSS = 10.0


def epoch_stop(val_loss: float, best_loss: float, epoch: int, best_epoch: int, *, patience: int,
               max_loss: float = MAX_LOSS) -> tuple[str | None, bool]:
    """The reference's per-epoch stopping rule: ``(reason, improved)`` after an epoch with validation loss
    ``val_loss``, the best so far being ``best_loss`` at ``best_epoch``.

    ``reason`` is ``"diverged"`` (NaN or ``≥ max_loss``), ``"early-stop"`` (no new minimum for ``patience``
    epochs: ``epoch − best_epoch ≥ patience``) or ``None`` (go on); ``improved`` says whether ``val_loss`` is a
    new minimum (strictly below, min_delta 0).

    >>> epoch_stop(12.0, 2.3, 5, 0, patience=10), epoch_stop(2.0, 2.3, 5, 0, patience=10)
    (('diverged', False), (None, True))
    >>> epoch_stop(2.4, 2.3, 10, 0, patience=10)
    ('early-stop', False)
    """
    if not math.isfinite(val_loss) or val_loss >= max_loss:
        return "diverged", False
    if val_loss < best_loss:
        return None, True
    return ("early-stop" if epoch - best_epoch >= patience else None), False


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What :func:`train` returns: the per-epoch ``history``, the test accuracy of the best-validation state,
    the epoch of that state, why training stopped (``"epochs"``, ``"early-stop"``, ``"diverged"``), the number
    of steps taken and the wall time in seconds."""

    history: pd.DataFrame
    test_accuracy: float
    test_loss: float
    best_epoch: int
    stopped: str
    wall_time_s: float
    steps: int = 0


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy)`` of ``model`` on ``(x, y)`` in eval mode (the flags are restored)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        total, correct = 0.0, 0
        for xb, yb in batches(x, y, batch_size, shuffle=False):
            logits = model(xb)
            total += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(-1) == yb).sum())
    finally:
        for module, mode in modes:
            module.training = mode
    return total / len(y), correct / len(y)


def make_optimizer(name: str, params, *, lr: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    """``"sgd"`` (the paper: no momentum, no weight decay), ``"momentum"`` (SGD with ``momentum``) or ``"adam"``."""
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"the learning rate must be a positive number; got lr={lr!r}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=0.0)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=0.0)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}")


def _reference_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Gradient:
    """The BP gradient for the cosine measurement, leaving BatchNorm running statistics as they were."""
    saved = {name: b.clone() for name, b in model.named_buffers()}
    try:
        return backprop(model, x, y)
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(saved[name])


def train(model: nn.Module, data: Dataset, source: GradientSource, *, lr: float, batch_size: int = 64,
          epochs: int = 200, patience: int = 10, max_loss: float = MAX_LOSS, optimizer: str = "sgd",
          measure_cosine: bool = True, max_train: int | None = None, generator: torch.Generator,
          progress: bool = True, description: str | None = None) -> TrainResult:
    """Train ``model`` in place on ``data`` with gradients from ``source``; see the module docstring.

    Args:
        lr, batch_size, epochs, patience, max_loss: the paper's SGD and early-stopping settings.
        optimizer: ``"sgd"`` (default, the paper's), ``"momentum"`` or ``"adam"``.
        measure_cosine: compare the estimate with the BP gradient on the first batch of every epoch.
        max_train: use only the first ``max_train`` training samples (smoke runs).
        generator: shuffles the batches and draws the tangents (the global RNG is never used).

    The model ends in its best-validation state (restored at the end).
    """
    for name, value, low in (("patience", patience, 1), ("epochs", epochs, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {name}={value!r}")
    if not (isinstance(max_loss, (int, float)) and max_loss > 0):
        raise ValueError(f"max_loss must be a positive number; got {max_loss!r}")
    x_train, y_train = data.x_train, data.y_train
    if max_train is not None:
        x_train, y_train = x_train[:max_train], y_train[:max_train]
    params = [p for p in model.parameters() if p.requires_grad]
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, params, lr=lr)
    model.train()
    start = time.perf_counter()
    step_time = 0.0

    def log(epoch: int, cos: float, ratio: float, steps: int) -> dict:
        train_loss, train_acc = evaluate(model, x_train, y_train)
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
        return {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc, "val_loss": val_loss,
                "val_accuracy": val_acc, "cosine": cos, "norm_ratio": ratio, "steps": steps,
                "train_time_s": step_time, "wall_time_s": time.perf_counter() - start}

    rows = [log(0, float("nan"), float("nan"), 0)]
    best_loss, best_epoch = rows[0]["val_loss"], 0
    best_state = copy.deepcopy(model.state_dict())
    stopped, steps = "epochs", 0
    bar = tqdm(range(1, epochs + 1), desc=description or source.label, disable=not progress, leave=False,
               mininterval=1.0)
    for epoch in bar:
        cos = ratio = float("nan")
        diverged = False
        for i, (xb, yb) in enumerate(batches(x_train, y_train, batch_size, generator=generator)):
            truth = _reference_gradient(model, xb, yb) if (measure_cosine and i == 0) else None
            tick = time.perf_counter()
            try:
                estimate = source(model, xb, yb, generator=generator)
            except FloatingPointError:  # non-finite directional derivatives: the loss diverged
                estimate = None
            loss = float("nan") if estimate is None else float(estimate.loss)
            if not math.isfinite(loss):
                diverged = True
                step_time += time.perf_counter() - tick
                break
            for name, p in zip(names, params):
                p.grad = estimate.grads[name]
            opt.step()
            opt.zero_grad(set_to_none=True)
            step_time += time.perf_counter() - tick
            steps += 1
            if truth is not None:
                cos, ratio = cosine(estimate.grads, truth.grads), norm_ratio(estimate.grads, truth.grads)
        row = log(epoch, cos, ratio, steps)
        rows.append(row)
        reason, improved = epoch_stop(math.nan if diverged else row["val_loss"], best_loss, epoch, best_epoch,
                                      patience=patience, max_loss=max_loss)
        if improved:
            best_loss, best_epoch = row["val_loss"], epoch
            best_state = copy.deepcopy(model.state_dict())
        if reason is not None:
            stopped = reason
            break
        bar.set_postfix(val_loss=f"{row['val_loss']:.3f}", val_acc=f"{row['val_accuracy']:.3f}", refresh=False)
    bar.close()
    model.load_state_dict(best_state)
    test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
    history = pd.DataFrame(rows)
    return TrainResult(history, test_acc, test_loss, best_epoch, stopped, time.perf_counter() - start, steps)
