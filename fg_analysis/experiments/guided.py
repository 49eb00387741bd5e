"""Beyond the paper: guided tangents (Fournier et al. 2023) combined with k random ones by orthogonal projection.

Fournier et al. ("Can Forward Gradient Match Backpropagation?", ICML 2023, arXiv 2306.06968) project the global
gradient onto *guesses*, e.g. local-loss gradients from auxiliary heads; Flügel et al. (arXiv 2410.17764) project
it onto k random tangents. Here the tangent set is both (:mod:`fg_analysis.nets.guides`), and this module measures
what that buys at an equal number of JVPs. Three experiments, each a frozen config with ``quick`` and ``paper``
presets, run through the results cache:

* :class:`TheoryConfig` — a gradient ``g`` in ``R^n`` and one guess at angle θ, plus k Gaussian tangents: the
  measured ``E[cos²]``, ``E[cos]`` and the direction of the mean estimate ``cos(E[ĝ], g)`` against the closed
  forms :func:`fg_analysis.theory.guided_expected_cos2`, :func:`~fg_analysis.theory.guided_expected_cosine` and
  :func:`~fg_analysis.theory.guided_mean_cosine` (Monte Carlo with t intervals), next to k + 1 random tangents.
* :class:`CosineConfig` — networks (FC-256, a small CNN) on MNIST, trained by BP while their auxiliary heads
  learn their local losses; at checkpoints, on a validation batch, the per-sample activity gradient and the
  weight gradient estimated by random k, the guesses alone and guesses + k random (oracle JVPs, exact values),
  with the closed form evaluated at each sample's measured guess cosine ρ_b, the guesses' cosine per stage, and
  the expected estimate's direction in weight space (its bias, exact: ``E[ĝ_b] = P_U g_b + c (g_b − P_U g_b)``).
* :class:`TrainingConfig` — SGD on MNIST with BP, random k ∈ {4, 16}, guesses + (k − 3) random and the guesses
  alone: accuracy and validation loss against epochs and training time; plus
  :func:`fg_analysis.bench.guided.cost_table`, FLOPs and
  measured time of the heads next to the JVPs (forward mode).

Learning rates (:func:`rate`): every approach of the training runs, BP and random k included, at the rate of one
learning-rate search of this package under one protocol (``lrs/searched.csv``, ``lr_source = "searched"``;
:func:`search_settings` are the searches, run by ``python -m fg_analysis lr-search``); where no search is stored,
the paper's tuned FC-256 MNIST rates (``"paper"``), a guided approach with J JVPs that of the paper's projection
with the nearest k (``"paper-nearest"``). The heads learn with the paper's BP rate (:func:`head_rate`).

Stored runs: ``python -m fg_analysis.experiments.guided --preset mnist --publish`` trains the full-MNIST runs
into ``results/published/GuidedRun``; :func:`stored` reads them without training.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from fg_analysis import theory
from fg_analysis.aggregate import projection
from fg_analysis.bench.guided import cost_table
from fg_analysis.experiments import SCORECARD_COLUMNS, claim, record_text
from fg_analysis.experiments.learning_rates import head_rate, model_key, network_rate, searched_rate, searched_row
from fg_analysis.experiments.lr_search import SearchError, SearchSetting, choose, search
from fg_analysis.metrics import add_ci, ci_halfwidth, compare, cosine, format_ci, paired_difference
from fg_analysis.nets import guides
from fg_analysis.nets.approaches import guided_label, jvp_count, network_label
from fg_analysis.nets.data import batches, load_dataset
from fg_analysis.nets.gradients import _local_vjps, _order, _split, _stage_parameters, _stagewise_forward, backprop
from fg_analysis.nets.guides import gradient_source
from fg_analysis.nets.models import build_model
from fg_analysis.nets.training import train
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.cli import experiment_parser, positive_count, resolve_common, run_main
from fg_analysis.runs.env import resolve_device, torch_threads
from fg_analysis.runs.sweep import executor_from, sweep

__all__ = ["APPROACHES", "CosineConfig", "GuidedRun", "TheoryConfig", "TrainingConfig",
           "measure_cosines", "measure_theory", "run_cosines", "run_theory", "run_training", "stored", "train_unit",
           "with_theory"]

#: the training approaches: (name, random tangents k); the guided ones add the network's m = 3 guesses
APPROACHES = (("bp", 0), ("random", 4), ("guided", 1), ("random", 16), ("guided", 13), ("output", 15), ("guess", 0))

#: the quick preset's approaches
QUICK_APPROACHES = (("bp", 0), ("random", 16), ("guided", 13), ("guess", 0))

HEADS_PER_STAGE = "local-loss guesses of the hidden stages, exact local gradient at the logits"


# ------------------------------------------------------------------------------------------------------------
# 1. theory: one guess at angle θ plus k Gaussian tangents


@dataclass(frozen=True)
class TheoryCell:
    """``samples`` draws of k Gaussian tangents next to one guess at angle ``theta`` (degrees) in ``R^n``."""

    n: int
    theta: float
    tangent_counts: tuple[int, ...]
    samples: int
    seed: int = 0


@dataclass(frozen=True)
class TheoryConfig:
    """The Monte-Carlo check of the closed forms: ``dims × angles``, each with every k of ``tangent_counts``."""

    dims: tuple[int, ...] = (64,)
    angles: tuple[float, ...] = (0.0, 30.0, 60.0, 80.0, 90.0)
    tangent_counts: tuple[int, ...] = (0, 1, 2, 4, 8, 16, 32, 63)
    samples: int = 1000
    seed: int = 0

    @classmethod
    def preset(cls, name: str, *, seed: int = 0) -> "TheoryConfig":
        """``quick``: n = 64, five angles, 1000 draws per cell (a few seconds); ``paper``: n ∈ {64, 512}, 10000."""
        if name == "quick":
            return cls(seed=seed)
        if name == "paper":
            return cls(dims=(64, 512), tangent_counts=(0, 1, 2, 4, 8, 16, 32, 63, 128, 256), samples=10000,
                       seed=seed)
        raise ValueError(f"unknown preset {name!r}; choose 'quick' or 'paper'")

    def cells(self) -> list[TheoryCell]:
        return [TheoryCell(n, float(theta), tuple(k for k in self.tangent_counts if k < n), self.samples, self.seed)
                for n in self.dims for theta in self.angles]


def measure_theory(cell: TheoryCell) -> pd.DataFrame:
    """One row per (k, approach): ``"guess + k random"`` (m + k = 1 + k JVPs) and ``"random"`` (1 + k random
    tangents: the same JVPs), with the mean and std of ``cos²`` and ``cos`` over the draws, their count and
    ``mean_cosine = cos(mean ĝ, g)``. Float64, exact JVPs ``d = V g``."""
    generator = torch.Generator().manual_seed(cell.seed * 1000003 + cell.n * 101 + int(cell.theta * 10))
    n = cell.n
    g = torch.zeros(n, dtype=torch.float64)
    g[0] = 1.0
    angle = math.radians(cell.theta)
    u = torch.zeros(n, dtype=torch.float64)
    u[0], u[1] = math.cos(angle), math.sin(angle)
    rows = []
    for k in cell.tangent_counts:
        for approach in ("guess + k random", "random"):
            if approach == "random":
                V = torch.randn(cell.samples, k + 1, n, generator=generator, dtype=torch.float64)
            else:
                R = torch.randn(cell.samples, k, n, generator=generator, dtype=torch.float64)
                V = torch.cat([u.expand(cell.samples, 1, n), R], dim=1)
            estimate = projection(V, V @ g)
            cos2 = (estimate @ g) ** 2 / (estimate * estimate).sum(-1)  # |g| = 1
            cos = cos2.sqrt() * torch.sign(estimate @ g)
            mean_estimate = estimate.mean(0)
            rows.append({"k": k, "jvps": k + 1, "approach": approach, "cos2_mean": float(cos2.mean()),
                         "cos2_std": float(cos2.std()), "cos_mean": float(cos.mean()), "cos_std": float(cos.std()),
                         "count": cell.samples, "mean_cosine": cosine(mean_estimate, g),
                         "mean_cosine_se": _mean_cosine_se(estimate, g)})
    return pd.DataFrame(rows)


def _mean_cosine_se(estimate: torch.Tensor, g: torch.Tensor) -> float:
    """Standard error of ``cos(mean ĝ, g)`` by the delta method over the draws (the spread of the mean's
    component orthogonal to g, relative to its component along g)."""
    along = estimate @ g
    across = estimate - along[:, None] * g
    count = estimate.shape[0]
    spread = torch.linalg.vector_norm(across.std(0)) / math.sqrt(count)
    return float(spread / along.mean().abs().clamp_min(1e-12))


def run_theory(config: TheoryConfig, *, cache: ResultsCache | None = None, progress: bool = False) -> pd.DataFrame:
    """Every cell of ``config`` through the cache; see :func:`with_theory` for the closed forms."""
    cache = cache or ResultsCache()
    frame = sweep(cache, config.cells(), measure_theory, description="guided theory", progress=progress)
    return with_theory(frame)


def with_theory(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds the closed forms (``theory_cos2``, ``theory_cos``, ``theory_mean_cosine``), 95% t intervals of the
    measured means (``cos2_ci``, ``cos_ci``) and ``z = (measured − closed form) / standard error`` of cos²."""
    out = frame.copy()
    guided = out["approach"] == "guess + k random"
    rho = np.abs(np.cos(np.radians(out["theta"].to_numpy(float))))
    k, n = out["k"].to_numpy(int), out["n"].to_numpy(int)
    m = np.where(guided, 1, 0)
    k_random = np.where(guided, k, k + 1)
    rho_used = np.where(guided, rho, 0.0)
    out["theory_cos2"] = theory.guided_expected_cos2(k_random, n, rho_used, m)
    out["theory_cos"] = theory.guided_expected_cosine(k_random, n, rho_used, m)
    out["theory_mean_cosine"] = theory.guided_mean_cosine(k_random, n, rho_used, m)
    out["cos2_ci"] = ci_halfwidth(out["cos2_std"], out["count"])
    out["cos_ci"] = ci_halfwidth(out["cos_std"], out["count"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["z"] = np.where(out["cos2_std"] > 1e-9, (out["cos2_mean"] - out["theory_cos2"])
                            / (out["cos2_std"] / np.sqrt(out["count"])), 0.0)
    return out


# ------------------------------------------------------------------------------------------------------------
# 2. cosines on networks at checkpoints of a BP run


@dataclass(frozen=True)
class CosineUnit:
    """One network: trained by BP (heads by their local losses) on ``max_train`` MNIST samples, measured after
    each epoch in ``checkpoints`` on ``batches`` validation batches of ``batch_size``, ``repeats`` draws of the
    random tangents per k."""

    model: str
    width: int | None
    dataset: str
    checkpoints: tuple[int, ...]
    tangent_counts: tuple[int, ...]
    repeats: int
    batch_size: int
    batches: int
    max_train: int | None
    lr: float
    head_lr: float
    seed: int = 0


@dataclass(frozen=True)
class CosineConfig:
    """Networks × one data set for the cosine measurement (see :class:`CosineUnit`)."""

    networks: tuple[tuple[str, int | None], ...] = (("fc", 256), ("cnn", None))
    dataset: str = "mnist"
    checkpoints: tuple[int, ...] = (0, 2)
    tangent_counts: tuple[int, ...] = (0, 1, 4, 16, 64, 256)
    repeats: int = 3
    batch_size: int = 64
    batches: int = 1
    max_train: int | None = 5000
    seed: int = 0

    @classmethod
    def preset(cls, name: str, *, seed: int = 0) -> "CosineConfig":
        """``quick``: FC-256, BP on 2000 MNIST samples, checkpoints after 0 and 2 epochs, one validation batch,
        2 draws per k; ``mnist`` (FC-256 and the CNN) (stored): all 50000 samples, checkpoints after 0, 1 and 5
        epochs, 2 batches, 6 draws per k ≤ 128; ``paper``: as ``mnist`` with 16 draws and a checkpoint at 20
        epochs."""
        if name == "quick":
            return cls(networks=(("fc", 256),), max_train=2000, tangent_counts=(0, 1, 4, 16, 64), repeats=2,
                       seed=seed)
        full = dict(max_train=None, batches=2, checkpoints=(0, 1, 5), tangent_counts=(0, 1, 2, 4, 8, 16, 32, 64, 128))
        if name == "mnist":
            return cls(repeats=6, seed=seed, **full)
        if name == "paper":
            return cls(repeats=16, seed=seed, **{**full, "checkpoints": (0, 1, 5, 20)})
        raise ValueError(f"unknown preset {name!r}; choose 'quick' or 'paper'")

    def units(self) -> list[CosineUnit]:
        lr = head_rate()
        return [CosineUnit(model, width, self.dataset, self.checkpoints, self.tangent_counts, self.repeats,
                           self.batch_size, self.batches, self.max_train, lr, lr, self.seed)
                for model, width in self.networks]


def _sgd_epoch(model, heads, data_x, data_y, *, lr, head_lr, batch_size, generator):
    """One epoch of BP on the network and local-loss SGD on the heads (on detached stage outputs)."""
    network = torch.optim.SGD(model.parameters(), lr=lr)
    local = torch.optim.SGD(heads.parameters(), lr=head_lr)
    provider = guides.LocalLosses(heads)
    for xb, yb in batches(data_x, data_y, batch_size, generator=generator):
        gradient = backprop(model, xb, yb)
        for name, p in model.named_parameters():
            p.grad = gradient.grads[name]
        with torch.no_grad():
            activities, h = [], xb
            for stage in model.stages:
                h = stage(h)
                activities.append(h)
        provider(guides.Context(x=xb, y=yb, activities=tuple(activities)))
        network.step()
        local.step()


def measure_cosines(unit: CosineUnit) -> pd.DataFrame:
    """Rows per (checkpoint, approach, k): mean cos² and cos of the per-sample activity estimate, the weight
    cosine (global, all parameters) and its closed-form companions; plus per-stage guess cosines
    (``approach = "stage"``) and the direction of the expected weight estimate (``weight_mean_cosine``)."""
    data = load_dataset(unit.dataset, seed=unit.seed)
    x_train, y_train = data.x_train, data.y_train
    if unit.max_train is not None:
        x_train, y_train = x_train[:unit.max_train], y_train[:unit.max_train]
    model = build_model(unit.model, input_shape=data.input_shape, n_classes=data.n_classes, width=unit.width,
                        seed=unit.seed)
    heads = guides.AuxiliaryHeads.for_network(model, data.input_shape, data.n_classes, seed=unit.seed)
    provider = guides.LocalLosses(heads)
    providers = {"random": None, "guided": provider, "output": guides.LocalLosses(heads, use_heads=False)}
    generator = torch.Generator().manual_seed(unit.seed)
    shapes = model.activity_shapes(data.input_shape)
    sizes = [int(np.prod(s)) for s in shapes]
    dimension = sum(sizes)
    rows, epoch = [], 0
    for checkpoint in unit.checkpoints:
        while epoch < checkpoint:
            _sgd_epoch(model, heads, x_train, y_train, lr=unit.lr, head_lr=unit.head_lr,
                       batch_size=unit.batch_size, generator=generator)
            epoch += 1
        for batch_index in range(unit.batches):
            start = batch_index * unit.batch_size
            xb, yb = data.x_val[start:start + unit.batch_size], data.y_val[start:start + unit.batch_size]
            truth_w = backprop(model, xb, yb).grads
            _, base = guides.guided_activity_perturbation(model, xb, yb, provider=provider, k=1, mode="oracle",
                                                          generator=generator, details=True)
            truth, m = base.truth.double(), base.guesses
            U = base.tangents[:, :m].double()
            guessed = {"guided": projection(U, torch.einsum("bka,ba->bk", U, truth)),  # P_U g_b
                       "output": projection(U[:, -1:], torch.einsum("bka,ba->bk", U[:, -1:], truth))}
            rho = {name: cosine(value, truth).clamp(0, 1) for name, value in guessed.items()}  # per sample
            offsets = np.cumsum([0] + sizes)
            for s, name in enumerate(model.stage_names):
                part = slice(offsets[s], offsets[s + 1])
                stage_cos = cosine(U[:, s, part], truth[:, part])
                rows.append({"checkpoint": checkpoint, "batch": batch_index, "approach": "stage", "stage": name,
                             "k": 0, "jvps": 0, "cos_mean": float(stage_cos.mean()),
                             "cos_std": float(stage_cos.std()), "count": len(stage_cos),
                             "share": float(((truth[:, part] ** 2).sum(-1) / (truth ** 2).sum(-1)).mean())})
            for k in unit.tangent_counts:
                for approach in ("random", "guided", "output"):
                    if approach == "random" and k == 0:
                        continue
                    if k + m > dimension:
                        continue
                    cos2, cos, weight = [], [], []
                    for _ in range(unit.repeats if k else 1):
                        gradient, seen = guides.guided_activity_perturbation(
                            model, xb, yb, provider=providers[approach], k=k, mode="oracle", generator=generator,
                            details=True)
                        c = cosine(seen.estimate.double(), truth)
                        cos2.append(c ** 2)
                        cos.append(c)
                        weight.append(cosine(gradient.grads, truth_w))
                    cos2, cos = torch.cat(cos2), torch.cat(cos)
                    m_used = {"random": 0, "guided": m, "output": 1}[approach]
                    rho_used = rho[approach].numpy() if m_used else np.zeros(len(truth))
                    c_shrink = min(k, dimension - m_used) / (dimension - m_used)
                    expected = guessed[approach] + c_shrink * (truth - guessed[approach]) if m_used else truth
                    expected_w = _weights_from_activity(model, xb, expected, shapes)
                    rows.append({
                        "checkpoint": checkpoint, "batch": batch_index, "approach": approach, "stage": "",
                        "k": k, "jvps": k + m_used, "cos2_mean": float(cos2.mean()),
                        "cos2_std": float(cos2.std()) if len(cos2) > 1 else 0.0, "cos_mean": float(cos.mean()),
                        "cos_std": float(cos.std()) if len(cos) > 1 else 0.0, "count": len(cos2),
                        "theory_cos2": float(np.mean(theory.guided_expected_cos2(k, dimension, rho_used, m_used))),
                        "rho2_mean": float(np.mean(rho_used ** 2)),
                        "weight_cos_mean": float(np.mean(weight)),
                        "weight_cos_std": float(np.std(weight, ddof=1)) if len(weight) > 1 else 0.0,
                        "weight_count": len(weight),
                        "weight_mean_cosine": cosine(expected_w, truth_w)})
    frame = pd.DataFrame(rows)
    frame["dimension"] = dimension
    frame["guesses"] = m
    frame["network"] = network_label(unit.model, unit.width)
    return frame


def _weights_from_activity(model, x, activity_gradients: torch.Tensor, shapes) -> dict[str, torch.Tensor]:
    """The weight gradient that local VJPs make of per-sample activity gradients ``(B, A)`` (mean loss)."""
    _, outputs = _stagewise_forward(model, x)
    grads = _local_vjps(outputs, _split(activity_gradients.to(outputs[0].dtype) / x.shape[0], shapes),
                        _stage_parameters(model))
    return _order(model, grads)


def run_cosines(config: CosineConfig, *, cache: ResultsCache | None = None, progress: bool = False,
                executor=None) -> pd.DataFrame:
    """Every network of ``config`` through the cache (one unit each), with t intervals of the means."""
    cache = cache or ResultsCache()
    frame = sweep(cache, config.units(), measure_cosines, description="guided cosines", progress=progress,
                        executor=executor)
    frame["cos2_ci"] = ci_halfwidth(frame["cos2_std"], frame["count"])
    frame["cos_ci"] = ci_halfwidth(frame["cos_std"], frame["count"])
    if "weight_cos_std" in frame:
        frame["weight_cos_ci"] = ci_halfwidth(frame["weight_cos_std"].fillna(0), frame["weight_count"].fillna(1))
    return frame


# ------------------------------------------------------------------------------------------------------------
# 3. training


@dataclass(frozen=True)
class GuidedRun:
    """One training run: a network on a data set with one approach of :data:`APPROACHES`, rate and seed."""

    model: str
    width: int | None
    dataset: str
    approach: str
    k: int
    seed: int
    lr: float
    lr_source: str
    head_lr: float
    epochs: int
    patience: int = 10
    batch_size: int = 64
    mode: str = "oracle"
    max_train: int | None = None


def search_method(approach: str, k: int) -> tuple[str, str, int]:
    """``(method, aggregator, k)`` of an approach in the learning-rate tables and searches
    (:mod:`fg_analysis.experiments.lr_search`): BP, random k as the paper's projection (``frog``), the guided
    approaches under their own names (:data:`fg_analysis.experiments.learning_rates.GUIDED_APPROACHES`)."""
    if approach == "bp":
        return "bp", "mean", 1
    if approach == "random":
        return "fg", "projection", k
    return approach, "projection", k


def rate(model: str, width: int | None, approach: str, k: int, m: int = 3, *,
         dataset: str = "mnist") -> tuple[float, str]:
    """``(lr, source)`` of a training run: the rate searched here for the network and approach (``"searched"``,
    ``lrs/searched.csv``; ``python -m fg_analysis lr-search run --approach guided:13 ...``), else the paper's FC-256
    MNIST rates (the nearest of the paper's tables): BP and random k (the projection with k) as ``"paper"``, a
    guided approach that of the projection with the nearest number of JVPs (``"paper-nearest"``)."""
    method, aggregator, k_table = search_method(approach, k)
    try:
        return searched_rate(model=model_key(model, width), dataset=dataset, method=method, aggregator=aggregator,
                             k=k_table), "searched"
    except ValueError:
        pass
    if approach in ("bp", "random"):
        return network_rate("fc", 256, "mnist", method=method, aggregator=aggregator, k=k_table)[0], "paper"
    jvps = jvp_count(approach, k, m)  # guided, output and guess
    nearest = min((2, 4, 16), key=lambda j: (abs(j - jvps), -j))
    return network_rate("fc", 256, "mnist", method="fg", aggregator="projection", k=nearest)[0], "paper-nearest"


@dataclass(frozen=True)
class TrainingConfig:
    """Networks × approaches × seeds of SGD training with guided and random tangents (one :class:`GuidedRun`
    each)."""

    networks: tuple[tuple[str, int | None], ...] = (("fc", 256),)
    dataset: str = "mnist"
    approaches: tuple[tuple[str, int], ...] = APPROACHES
    seeds: tuple[int, ...] = (0,)
    epochs: int = 3
    patience: int = 10
    max_train: int | None = 2000
    mode: str = "oracle"

    @classmethod
    def preset(cls, name: str, *, seed: int = 0) -> "TrainingConfig":
        """``quick``: FC-256, 1000 MNIST training samples, 2 epochs, one seed, BP, random k = 16, guesses + 13
        random and the guesses alone (:data:`QUICK_APPROACHES`); ``mnist`` (stored, every approach): FC-256 and
        the small CNN, the first 10000 of the 50000 training samples (validation and test sets whole), 5 epochs,
        three seeds (the rates of its searches: ``--part search``); ``paper``: both networks on all 50000, 50
        epochs, three seeds."""
        networks = (("fc", 256), ("cnn", None))
        if name == "quick":
            return cls(seeds=(seed,), epochs=2, max_train=1000, approaches=QUICK_APPROACHES)
        if name == "mnist":
            return cls(networks=networks, seeds=(seed, seed + 1, seed + 2), epochs=5, max_train=10000)
        if name == "paper":
            return cls(networks=networks, seeds=(seed, seed + 1, seed + 2), epochs=50, max_train=None)
        raise ValueError(f"unknown preset {name!r}; choose 'quick', 'mnist' or 'paper'")

    def search_settings(self) -> list:
        """The learning-rate searches behind :func:`rate` (:class:`fg_analysis.experiments.lr_search.SearchSetting`):
        every network and approach of this config, each trial trained as the runs are (the same data, epochs,
        patience, batch size and JVP mode) with the first seed."""
        return [SearchSetting(model=model, width=width, dataset=self.dataset, method=method, aggregator=aggregator,
                              k=k, epochs=self.epochs, patience=self.patience, batch_size=64, seed=self.seeds[0],
                              mode=self.mode, max_train=self.max_train)
                for model, width in self.networks
                for method, aggregator, k in (search_method(a, j) for a, j in self.approaches)]

    def runs(self) -> list[GuidedRun]:
        units = []
        head_lr = head_rate()
        for model, width in self.networks:
            for approach, k in self.approaches:
                lr, source = rate(model, width, approach, k, dataset=self.dataset)
                for seed in self.seeds:
                    units.append(GuidedRun(model, width, self.dataset, approach, k, seed, lr, source, head_lr,
                                           self.epochs, self.patience, 64, self.mode, self.max_train))
        return units


def train_unit(unit: GuidedRun, *, progress: bool = False) -> pd.DataFrame:
    """Train one unit (:func:`fg_analysis.nets.training.train`; the guided sources step their heads alongside): its
    per-epoch history with the test accuracy, the heads' share of the step time and the JVPs per step."""
    data = load_dataset(unit.dataset, seed=unit.seed)
    model = build_model(unit.model, input_shape=data.input_shape, n_classes=data.n_classes, width=unit.width,
                        seed=unit.seed)
    source = gradient_source(unit.approach, unit.k, model, data.input_shape, data.n_classes, mode=unit.mode,
                             head_lr=unit.head_lr, seed=unit.seed)
    generator = torch.Generator().manual_seed(unit.seed)
    result = train(model, data, source, lr=unit.lr, batch_size=unit.batch_size, epochs=unit.epochs,
                   patience=unit.patience, max_train=unit.max_train, generator=generator, progress=progress,
                   description=f"{network_label(unit.model, unit.width)} {guided_label(unit.approach, unit.k)}")
    history = result.history
    history["test_accuracy"] = result.test_accuracy
    history["test_loss"] = result.test_loss
    history["stopped"] = result.stopped
    seconds = getattr(source, "seconds", {"heads": 0.0})
    history["heads_time_s"] = seconds["heads"]
    history["jvps"] = jvp_count(unit.approach, unit.k)
    history["label"] = guided_label(unit.approach, unit.k)
    return history


def run_training(config: TrainingConfig, *, cache: ResultsCache | None = None, progress: bool = False,
                 executor=None) -> pd.DataFrame:
    """Every run of ``config`` through the cache (one thread each on a CPU); one row per run and epoch, with the
    run's config fields and its ``network`` label."""
    cache = cache or ResultsCache()
    with torch_threads(1):
        frame = sweep(cache, config.runs(), partial(train_unit), description="guided training", progress=progress,
                            executor=executor)
    return _with_network(frame)


def _with_network(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a ``network`` column (``"FC-256"``, ``"CNN"``) from its config columns model and width."""
    frame["network"] = [network_label(m, None if pd.isna(w) else int(w)) for m, w in zip(frame["model"],
                                                                                       frame["width"])]
    return frame


def stored(config: TrainingConfig, *, cache: ResultsCache | None = None) -> pd.DataFrame | None:
    """The runs of ``config`` read from the cache only (writable root, then ``results/published``); ``None``
    unless every run is stored. Nothing is trained. Records in ``frame.attrs["records"]``."""
    return (cache or ResultsCache()).stored(config.runs(), prepare=_with_network, complete=True)


def learning_curves(frame: pd.DataFrame, metric: str = "val_accuracy") -> pd.DataFrame:
    """Mean ± 95% t interval of ``metric`` over seeds per (network, label, epoch), with the mean training time."""
    grouped = frame.groupby(["network", "label", "jvps", "epoch"], as_index=False).agg(
        mean=(metric, "mean"), std=(metric, "std"), count=(metric, "count"), train_time_s=("train_time_s", "mean"))
    return add_ci(grouped)


def final_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per network and approach: JVPs, rate (and its source), best validation loss and accuracy, test
    accuracy (best-validation state) with its 95% t interval over the seeds, training seconds, and the heads'
    share of them (means over seeds)."""
    keys = ["network", "label", "seed"]
    last = frame.sort_values("epoch").groupby(keys).tail(1)
    best = frame.groupby(keys, as_index=False).agg(best_val_loss=("val_loss", "min"),
                                                   best_val_accuracy=("val_accuracy", "max"))
    merged = last.merge(best, on=keys)
    table = merged.groupby(["network", "label", "jvps", "lr", "lr_source"], as_index=False).agg(
        test_accuracy=("test_accuracy", "mean"), test_accuracy_std=("test_accuracy", "std"),
        best_val_loss=("best_val_loss", "mean"), best_val_accuracy=("best_val_accuracy", "mean"),
        train_time_s=("train_time_s", "mean"), heads_time_s=("heads_time_s", "mean"), seeds=("seed", "nunique"))
    table["test_accuracy_ci"] = ci_halfwidth(table["test_accuracy_std"], table["seeds"])
    table["heads_share"] = table["heads_time_s"] / table["train_time_s"]
    order = {label: i for i, label in enumerate(_label_order(table["label"]))}
    networks = {name: i for i, name in enumerate(dict.fromkeys(["FC-256", "CNN", *table["network"]]))}
    return table.sort_values(["network", "label"], key=lambda s: s.map(networks if s.name == "network" else order)
                             ).reset_index(drop=True)


def training_table(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`final_table` as the chapter shows it: the test accuracy with its 95% t interval as text, the
    columns renamed for readers."""
    table = final_table(frame)
    table["test_accuracy"] = [format_ci(m, c) for m, c in zip(table["test_accuracy"], table["test_accuracy_ci"])]
    columns = {"network": "network", "label": "approach", "jvps": "JVPs", "lr": "lr", "lr_source": "rate from",
               "test_accuracy": "test acc. (95% CI)", "best_val_loss": "best val. loss", "train_time_s": "train s",
               "heads_share": "heads' share"}
    return table[list(columns)].rename(columns=columns)


def search_sentence(config: TrainingConfig) -> str:
    """Where the rates of ``config``'s runs come from, computed from ``lrs/searched.csv``: how many of its
    settings have a searched rate, with how many trials each, when and at which commit."""
    rows = []
    for setting in config.search_settings():
        try:
            row = searched_row(model=setting.network, dataset=setting.dataset, method=setting.method,
                               aggregator=setting.aggregator, k=setting.k)
        except ValueError:
            continue
        if row["epochs"] == setting.epochs and row["max_train"] == setting.max_train:  # searched as these runs train
            rows.append(row)
    total = len(config.search_settings())
    if not rows:
        return (f"None of the {total} rates is searched yet (`python -m fg_analysis.experiments.guided --preset "
                f"mnist --part search`, then `python -m fg_analysis lr-search promote`): the runs use the paper's.")
    found = pd.DataFrame(rows)
    budgets = sorted({int(b) for b in found["budget"]})
    at_edge = int(found["at_edge"].astype(bool).sum())
    return (f"{len(found)} of the {total} rates come from this package's search under the runs' protocol "
            f"(Optuna TPE over $\\log_{{10}}$ lr in [−6, 0], {'/'.join(map(str, budgets))} trials per setting "
            f"against the paper's 100, the reference's choice among the trials within 5% of the best validation "
            f"loss; searched {found['searched'].min()} at commit{'s' if found['commit'].nunique() > 1 else ''} "
            f"{', '.join(sorted(found['commit'].unique()))}); {at_edge} of them lie at an edge of the range.")


def guided_against_random(frame: pd.DataFrame) -> pd.DataFrame:
    """Per network and number of JVPs with both a random and a guided approach (the heads' guesses + random, or
    the output guess + random): the test accuracy difference guided − random, paired by seed (the same initial
    weights and batch order), its mean with the 95% t interval over the seeds both have
    (:func:`fg_analysis.metrics.paired_difference`), and the verdict of "guided beats random"
    (:func:`fg_analysis.metrics.compare`: inconclusive when the interval contains 0 or there is one seed)."""
    last = frame.sort_values("epoch").groupby(["network", "label", "seed"]).tail(1)
    rows = []
    for (network, jvps), same in last.groupby(["network", "jvps"], sort=False):
        random = same[same["label"].str.startswith("random")]
        if random.empty:
            continue
        guesses = same["label"].str.startswith("guess +") | same["label"].str.startswith("output guess +")
        for label, guided in same[guesses].groupby("label", sort=False):
            mean, ci, seeds = paired_difference(guided.set_index("seed")["test_accuracy"],
                                                random.set_index("seed")["test_accuracy"])
            rows.append({"network": network, "jvps": int(jvps), "guided": label,
                         "random": random["label"].iloc[0], "difference": mean, "ci": ci,
                         "seeds": seeds, "verdict": compare(mean, ci, 0.0, 0.0)})
    return pd.DataFrame(rows, columns=["network", "jvps", "guided", "random", "difference", "ci", "seeds", "verdict"])


def _label_order(labels) -> list[str]:
    names = [guided_label(a, k) for a, k in APPROACHES]
    return [n for n in names if n in set(labels)] + sorted(set(labels) - set(names))


# ------------------------------------------------------------------------------------------------------------
# cost: FLOPs and time of the heads next to the JVPs


# ------------------------------------------------------------------------------------------------------------
# the chapter: one call, its figures and its sentences


class Chapter(NamedTuple):
    """Everything the chapter shows: live runs of the preset and the stored runs (``None`` when absent)."""

    theory: pd.DataFrame
    cosines: pd.DataFrame
    training: pd.DataFrame
    cost: pd.DataFrame
    stored_cosines: pd.DataFrame | None
    stored_training: pd.DataFrame | None
    seconds: float


def chapter(preset: str = "quick", *, seed: int = 0, device: str = "cpu", cache: ResultsCache | None = None
            ) -> Chapter:
    """Run (or read from the cache) the preset's theory check, network cosines, training runs and cost table,
    and read the stored ``mnist`` runs from ``results/published`` (never trained here)."""
    if resolve_device(device).type != "cpu":
        raise ValueError(f"the guided-tangents chapter runs on the CPU; got device={device!r}")
    cache = cache or ResultsCache()
    start = time.perf_counter()
    theory_frame = run_theory(TheoryConfig.preset(preset, seed=seed), cache=cache)
    cosines = run_cosines(CosineConfig.preset(preset, seed=seed), cache=cache)
    training = run_training(TrainingConfig.preset(preset, seed=seed), cache=cache)
    cost = pd.concat([cost_table(model=model, width=width, seed=seed).assign(network=network_label(model, width))
                      for model, width in (("fc", 256), ("cnn", None))], ignore_index=True)
    stored_cos = _stored_cosines(CosineConfig.preset("mnist", seed=seed), cache)
    stored_training = stored(TrainingConfig.preset("mnist", seed=seed), cache=cache)
    return Chapter(theory_frame, cosines, training, cost, stored_cos, stored_training, time.perf_counter() - start)


def _stored_cosines(config: CosineConfig, cache: ResultsCache) -> pd.DataFrame | None:
    return cache.stored(config.units(), prepare=_with_cosine_intervals, complete=True)


def _with_cosine_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    frame["cos2_ci"] = ci_halfwidth(frame["cos2_std"], frame["count"])
    frame["cos_ci"] = ci_halfwidth(frame["cos_std"], frame["count"])
    frame["weight_cos_ci"] = ci_halfwidth(frame["weight_cos_std"].fillna(0), frame["weight_count"].fillna(1))
    return frame




def stage_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per network, checkpoint and stage: the mean cosine of the guess to the stage's true per-sample gradient
    and the stage's share of ``|∂L_b/∂a_b|²``."""
    rows = frame[frame["approach"] == "stage"]
    return rows.groupby(["network", "checkpoint", "stage"], as_index=False, sort=False).agg(
        guess_cosine=("cos_mean", "mean"), share=("share", "mean"))


def network_numbers(frame: pd.DataFrame, *, network: str, checkpoint: int, jvps: int = 16) -> dict:
    """The numbers the chapter's network sentences use, at ``jvps`` JVPs (the nearest measured)."""
    rows = frame[(frame["network"] == network) & (frame["checkpoint"] == checkpoint) & (frame["approach"] != "stage")]
    rows = rows.groupby(["approach", "k", "jvps"], as_index=False).mean(numeric_only=True)

    def at(approach, target):
        part = rows[rows["approach"] == approach]
        return part.iloc[(part["jvps"] - target).abs().argsort().iloc[0]]

    random, guided, output = at("random", jvps), at("guided", jvps), at("output", jvps)
    alone = rows[(rows["approach"] == "guided") & (rows["k"] == 0)].iloc[0]
    stages = stage_table(frame)
    stages = stages[(stages["network"] == network) & (stages["checkpoint"] == checkpoint)]
    return {"network": network, "checkpoint": checkpoint, "jvps": int(guided["jvps"]),
            "random_jvps": int(random["jvps"]), "random_cos2": random["cos2_mean"], "guided_cos2": guided["cos2_mean"],
            "output_cos2": output["cos2_mean"], "alone_cos2": alone["cos2_mean"], "alone_jvps": int(alone["jvps"]),
            "random_weight": random["weight_cos_mean"], "guided_weight": guided["weight_cos_mean"],
            "output_weight": output["weight_cos_mean"], "alone_weight": alone["weight_cos_mean"],
            "alone_bias": alone["weight_mean_cosine"], "guided_bias": guided["weight_mean_cosine"],
            "theory_gap": float((rows["cos2_mean"] - rows["theory_cos2"]).abs().max()),
            "hidden_guess": stages[stages["stage"] != "output"]["guess_cosine"].tolist(),
            "hidden_names": stages[stages["stage"] != "output"]["stage"].tolist(),
            "output_share": float(stages[stages["stage"] == "output"]["share"].iloc[0])}


def theory_sentence(frame: pd.DataFrame) -> str:
    """How well the closed forms match the Monte Carlo, computed from :func:`with_theory`'s frame."""
    random_cells = frame["cos2_std"] > 1e-9
    inside = (frame.loc[random_cells, "z"].abs() <= 1.96).mean()
    worst = frame.loc[random_cells, "z"].abs().max()
    guided = frame[frame["approach"] == "guess + k random"]
    gap = (guided["cos_mean"] - guided["theory_cos"]).abs().max()
    bias_gap = (guided["mean_cosine"] - guided["theory_mean_cosine"]).abs().max()
    samples = int(frame["count"].iloc[0])
    return (f"Over {int(random_cells.sum())} random cells ({samples} draws each) the measured $E[\\cos^2]$ lies "
            f"within its 95% interval of the closed form in {100 * inside:.0f}% of them (largest |z| = {worst:.2f}); "
            f"the measured $E[\\cos]$ is within {gap:.4f} of the quadrature, and the direction of the mean estimate "
            f"within {bias_gap:.3f} of $\\cos(E\\hat g, g)$. Cells with no random tangent (k = 0) or "
            f"k = n − 1 are deterministic and equal to the closed form exactly.")


def network_sentence(numbers: dict) -> str:
    """What the projection adds to the guesses on one network, from :func:`network_numbers`."""
    n = numbers
    hidden = ", ".join(f"{name} {value:.2f}" for name, value in zip(n["hidden_names"], n["hidden_guess"]))
    return (f"**{n['network']} after {n['checkpoint']} epoch(s).** The heads' guesses have a mean cosine of {hidden} "
            f"to the true per-sample gradients of their stages, while the output stage (exact guess) holds "
            f"{100 * n['output_share']:.0f}% of $|\\partial L_b/\\partial a_b|^2$. With {n['random_jvps']} random "
            f"tangents the per-sample $E[\\cos^2]$ is {n['random_cos2']:.3f}; adding the guesses ({n['jvps']} JVPs) "
            f"makes it {n['guided_cos2']:.3f} (the output guess alone: {n['output_cos2']:.3f}); the "
            f"guesses alone ({n['alone_jvps']} JVPs) reach {n['alone_cos2']:.3f}, so the {n['jvps'] - n['alone_jvps']}"
            f" random tangents add {n['guided_cos2'] - n['alone_cos2']:.3f}. In weight space the cosine to the BP "
            f"gradient is {n['guided_weight']:.3f} (guesses alone {n['alone_weight']:.3f}, random "
            f"{n['random_weight']:.3f}). The guesses alone are biased: their estimate is deterministic and its "
            f"weight-space cosine {n['alone_bias']:.3f} does not improve with averaging over steps; adding the random "
            f"tangents moves the expected estimate's cosine only to {n['guided_bias']:.3f}. The measured activity "
            f"$E[\\cos^2]$ is within {n['theory_gap']:.4f} of the closed form at every JVP count.")


def training_sentence(frame: pd.DataFrame, network: str = "FC-256") -> str:
    """The final accuracies of one network's runs, computed from :func:`final_table` and
    :func:`guided_against_random`."""
    if network not in set(frame["network"]):
        raise ValueError(f"no training runs of {network!r}; the frame has {sorted(set(frame['network']))}")
    frame = frame[frame["network"] == network]
    table = final_table(frame)
    best_fg = table[table["label"] != "BP"].sort_values("test_accuracy", ascending=False).iloc[0]
    bp = table[table["label"] == "BP"]
    seeds = int(table["seeds"].min())
    parts = [f"{row.label} {format_ci(row.test_accuracy, row.test_accuracy_ci)}" for row in table.itertuples()]
    epochs = int(frame["epoch"].max())
    samples = frame["max_train"].iloc[0]
    data = "all 50000" if pd.isna(samples) else f"{int(samples)}"
    text = (f"**{network}.** Test accuracy after at most {epochs} epochs on {data} MNIST training samples "
            f"(best-validation state; mean {'± 95% t interval ' if seeds > 1 else ''}over {seeds} "
            f"seed{'s' if seeds > 1 else ''}): " + ", ".join(parts) + f". The best forward-gradient approach is "
            f"**{best_fg.label}** ({int(best_fg.jvps)} JVPs)")
    if not bp.empty:
        gap = float(bp["test_accuracy"].iloc[0]) - best_fg.test_accuracy
        text += f", {abs(gap):.3f} {'below' if gap > 0 else 'above'} BP"
    pairs = [f"at {row.jvps} JVPs {row.guided} against {row.random}: {format_ci(row.difference, row.ci)} "
             f"({row.verdict})" for row in guided_against_random(frame).itertuples()]
    share = table.loc[table["label"].str.startswith("guess"), "heads_share"]
    return (text + (". Paired by seed, the guesses change the test accuracy " + "; ".join(pairs) if pairs else "")
            + f". The heads take {100 * share.min():.0f}–{100 * share.max():.0f}% of the guided approaches' "
            "training time.")


def cost_sentence(cost: pd.DataFrame, network: str) -> str:
    """The heads' FLOPs and time next to the JVPs' on one network, from :func:`cost_table` (rows of several
    networks told apart by a ``network`` column)."""
    if "network" in cost:
        cost = cost[cost["network"] == network]
    guided = cost[cost["head_flops"] > 0]
    forward = int(cost["forward_flops"].iloc[0])
    return (f"Per sample the {network} forward pass costs {forward / 1e3:.0f} kFLOPs; the heads, forward and "
            f"backward, {int(guided['head_flops'].iloc[0]) / 1e3:.0f} kFLOPs "
            f"({100 * guided['head_share_of_forward_flops'].iloc[0]:.1f}% of a forward pass), which is "
            + " and ".join(f"{100 * r.head_share_of_jvp_flops:.1f}% of the {r.jvps} JVPs' tangent FLOPs"
                           for r in guided.itertuples())
            + ". Measured on this machine (forward mode, one thread, median of a few steps): "
            + "; ".join(f"{r.approach} {r.step_ms:.1f} ms per step" + (f" ({r.heads_ms:.1f} ms in the heads)"
                                                                     if r.heads_ms else "")
                        for r in cost.itertuples()) + ".")


# ------------------------------------------------------------------------------------------------------------
# the scorecard


def scorecard_rows(preset: str = "quick", *, device: str = "cpu", cache: ResultsCache | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """The chapter's tested claim on the stored ``mnist`` training runs (read-only; nothing is trained): Fournier
    et al.'s "local-loss guesses drastically improve on random noise", as guesses + random against random
    tangents at equal JVPs, per network and JVP count (:func:`guided_against_random`, paired by seed). No rows
    when the runs are not stored. ``preset`` and ``device`` are accepted for the scorecard's uniform call."""
    frame = stored(TrainingConfig.preset("mnist", seed=seed), cache=cache)
    if frame is None:
        return pd.DataFrame(columns=list(SCORECARD_COLUMNS))

    samples = frame["max_train"].iloc[0]
    setup = (f"stored runs: {int(samples) if pd.notna(samples) else 50000} MNIST training samples, "
             f"{int(frame['epoch'].max())} epochs, seeds {', '.join(map(str, sorted(frame['seed'].unique())))}, "
             "searched rates; test accuracy, paired by seed")
    record = record_text(frame.attrs["records"])
    rows = [claim("Guided", f"Local-loss guesses improve on random tangents at equal JVPs ({row.network}, "
                            f"{row.jvps} JVPs: {row.guided} against {row.random})", "qualitative",
                  f"test accuracy {format_ci(row.difference, row.ci)} ({row.seeds} seeds)", row.verdict, setup,
                  source="Fournier et al.", section="guided_tangents#guided-training", record=record)
            for row in guided_against_random(frame).itertuples() if row.guided.startswith("guess +")]
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))


# ------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``python -m fg_analysis.experiments.guided --preset mnist --publish [--part training|cosines]``: run (or
    read) a preset's training runs and network cosines and print the final table."""
    parser = experiment_parser("guided", "Guided tangents: network cosines and training runs",
                               presets=("quick", "mnist", "paper"))
    parser.add_argument("--part", choices=("training", "cosines", "both", "search"), default="both",
                        help="'search': the learning-rate searches of the preset's training runs (Optuna studies "
                             "in results/studies; then `python -m fg_analysis lr-search promote`)")
    parser.add_argument("--trials", type=positive_count, default=20,
                        help="with --part search: finished trials per search (default 20)")
    args = parser.parse_args(argv)
    _, cache = resolve_common(parser, args)
    start = time.perf_counter()
    with executor_from(args.executor) as executor:
        if args.part == "search":

            for setting in TrainingConfig.preset(args.preset, seed=args.seed).search_settings():
                try:
                    study = search(setting, trials=args.trials, executor=executor, progress=not args.no_progress)
                    print(f"{setting.name}: lr={choose(study)['lr']:.4g}")
                except SearchError as error:  # another process searches it, a worker died, no complete trial
                    print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
                    return 2
        if args.part in ("cosines", "both"):
            cosines = run_cosines(CosineConfig.preset(args.preset, seed=args.seed), cache=cache,
                                  progress=not args.no_progress, executor=executor)
            print(f"cosines: {len(cosines)} rows")
        if args.part in ("training", "both"):
            frame = run_training(TrainingConfig.preset(args.preset, seed=args.seed), cache=cache,
                                 progress=not args.no_progress, executor=executor)
            print(final_table(frame).to_string(index=False))
    print(f"guided {args.preset} ({args.part}): {time.perf_counter() - start:.0f} s -> {cache.root}")
    return 0


if __name__ == "__main__":

    raise SystemExit(run_main(main))
