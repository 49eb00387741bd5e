"""RQ3: do multi-tangent forward gradients train real networks? SGD with BP, FG and k-tangent mean / projection.

The paper's network experiments (Flügel et al., arXiv 2410.17764, Sec. IV-D; ``reference/paper.md``,
"Fully-connected networks" and "ResNet18 and ViT"): networks trained by plain SGD (constant rate, no momentum,
no weight decay; batch 64 for the FC nets, 128 for ResNet-18 / ViT; up to 200 epochs; early stopping after 10
epochs without a better validation loss, or on a NaN loss or one ≥ 10) with the gradient from BP, from one
tangent (FG, k = 1, mean) or from the mean / orthogonal projection of k ∈ {2, 4, 16} tangents, seeds 0-2. The
forward gradients perturb *activities*: one tangent over all stage outputs, shared by the batch, per-sample JVPs,
local weight updates (:func:`fg_analysis.gradients.activity_perturbation`).

Presets (:meth:`RQ3Config.preset`):

* ``quick`` (CPU, the notebook's default): the FC net 64 → 256 → 256 → 10 on scikit-learn's digits; BP, FG, mean
  and projection with k ∈ {4, 16}; 3 seeds; at most 20 epochs; real forward-mode JVPs; our searched rates
  (``lrs/searched.csv``). About a minute on 2 CPU cores.
* ``paper`` (a GPU): FC widths 256 / 1024 / 4096 on digits, MNIST-1D (and MNIST when ``$FG_DATA_DIR`` has it);
  ResNet-18 and the ViT on digits (and MNIST / CIFAR-10 when present); 200 epochs, patience 10. Rates: the
  paper's tables on MNIST / CIFAR-10, ours on digits / MNIST-1D where searched, else the paper's MNIST rate of
  the same network (``lr_source`` says which). ResNet-18 (BatchNorm in train mode) uses simulated JVPs — the
  paper's default — since a batch-shared real-mode perturbation cannot separate per-sample JVPs through batch
  statistics (see :mod:`fg_analysis.gradients`); the FC nets and the ViT use real forward mode.

Every training run is one cached unit (:class:`TrainingRun`, :meth:`fg_analysis.cache.ResultsCache.sweep`).
:func:`run` returns one row per run and epoch with the columns ``model, network, width, dataset, method,
aggregator, k, approach, seed, epoch, train_loss, train_accuracy, val_loss, val_accuracy, cosine, norm_ratio,
train_time_s, wall_time_s, test_accuracy, best_epoch, stopped, lr, lr_source, mode, device``;
:func:`summary` reduces it to mean ± 95% CI test accuracy per (network, dataset, approach).

Command line (prints the summary table; the LAST line is one JSON object)::

    python -m fg_analysis.experiments.rq3 --preset quick [--device auto]
    python -m fg_analysis.experiments.rq3 --preset paper --device auto     # on a GPU

The JSON line: ``{"preset": ..., "device": ..., "test_accuracy": {"<network> <dataset>": {"BP": 0.97, "FG": ...,
"mean k=2": ..., "projection k=16": ...}}}`` — the mean test accuracy over seeds per approach (approach labels
as in :func:`fg_analysis.gradients.approach_label`).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fg_analysis import lrs
from fg_analysis.cache import ResultsCache
from fg_analysis.experiments import claim
from fg_analysis.gradients import GradientSource, activity_dimension, approach_label
from fg_analysis.lr_search import PAPER_DATASETS, learning_rate, model_key
from fg_analysis.plots import format_ci, summarize

__all__ = ["PAPER_APPROACHES", "QUICK_APPROACHES", "RQ3Config", "TrainingRun", "available_datasets", "final_runs",
           "gap_to_bp", "json_summary", "learning_curves", "main", "resolve_lr", "run", "run_unit", "scorecard",
           "scorecard_rows", "summary"]

#: (method, aggregator, k): BP, FG (k = 1), mean and projection for k ∈ {2, 4, 16}
PAPER_APPROACHES = (("bp", "mean", 1), ("fg", "mean", 1),
                    *(("fg", aggregator, k) for aggregator in ("mean", "projection") for k in (2, 4, 16)))

#: the quick preset's approaches (k ∈ {1, 4, 16}: the k = 2 runs are left out to stay within ~1 min on a CPU)
QUICK_APPROACHES = (("bp", "mean", 1), ("fg", "mean", 1), ("fg", "mean", 4), ("fg", "mean", 16),
                    ("fg", "projection", 4), ("fg", "projection", 16))

RUN_KEYS = ["model", "network", "width", "dataset", "method", "aggregator", "k", "approach", "seed"]
GROUP_KEYS = ["network", "dataset", "method", "aggregator", "k", "approach"]


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
    mode: str = "real"
    perturbation: str = "activity"
    optimizer: str = "sgd"
    max_train: int | None = None


def available_datasets() -> tuple[str, ...]:
    """The data sets that can be loaded here: digits and MNIST-1D always, MNIST / CIFAR-10 when their files are
    in ``$FG_DATA_DIR`` (see :mod:`fg_analysis.data`)."""
    from fg_analysis import data

    found = ["digits", "mnist1d"]
    root = os.environ.get("FG_DATA_DIR")
    if root:
        base = Path(root).expanduser()
        checks = {"mnist": (data._mnist_candidates(base), tuple(data.MNIST_FILES.values()), True),
                  "cifar10": (data._cifar_candidates(base), data.CIFAR10_TRAIN_FILES + (data.CIFAR10_TEST_FILE,),
                              False)}
        for name, (candidates, required, allow_gz) in checks.items():
            if any(all((folder / f).is_file() or (allow_gz and (folder / f"{f}.gz").is_file()) for f in required)
                   for folder in candidates):
                found.append(name)
    return tuple(found)


def resolve_lr(model: str, width: int | None, dataset: str, method: str, aggregator: str, k: int
               ) -> tuple[float, str]:
    """``(lr, source)``: the paper's rate (MNIST, CIFAR-10), our searched one (``"searched"``), or — for an
    offline data set without a searched rate — the paper's MNIST rate of the same network, for an FC net of the
    paper's nearest width (``"paper-mnist"``)."""
    if dataset in PAPER_DATASETS:
        return learning_rate(model=model, width=width, dataset=dataset, method=method, aggregator=aggregator,
                             k=k), "paper"
    try:
        return learning_rate(model=model, width=width, dataset=dataset, method=method, aggregator=aggregator,
                             k=k), "searched"
    except ValueError:
        if model == "fc":  # the paper's nearest width (in log scale)
            width = min((256, 1024, 4096), key=lambda w: abs(np.log(w / (width or 256))))
        table = "fc_nns" if model == "fc" else "sota_nns"
        return lrs.paper_lr(table, model=model_key(model, width), dataset="mnist", method=method,
                            aggregator=aggregator, k=k), "paper-mnist"


@dataclass(frozen=True)
class RQ3Config:
    """The RQ3 sweep: ``networks × datasets × approaches × seeds`` (pairs a network cannot take are skipped).

    ``networks`` are ``(model, width)`` pairs; ``combinations``, when given, restricts to those
    ``(model, dataset)`` pairs. ``mode`` is the JVP mode of the FC nets and the ViT (ResNet-18 always simulated).
    """

    networks: tuple[tuple[str, int | None], ...] = (("fc", 256),)
    datasets: tuple[str, ...] = ("digits",)
    approaches: tuple[tuple[str, str, int], ...] = PAPER_APPROACHES
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 200
    patience: int = 10
    mode: str = "real"
    max_train: int | None = None
    combinations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def preset(cls, name: str, *, seed: int = 0) -> "RQ3Config":
        """``"quick"``: FC w = 256 on digits, 6 approaches (k ∈ {1, 4, 16}), 3 seeds, ≤ 20 epochs (about a minute
        on 2 cores).
        ``"paper"``: the paper's networks and settings on every available data set (see the module docstring).
        ``seed`` shifts the seeds."""
        seeds = tuple(range(seed, seed + 3))
        if name == "quick":
            return cls(approaches=QUICK_APPROACHES, seeds=seeds, epochs=20, patience=10)
        if name == "paper":
            datasets = available_datasets()
            combinations = tuple((m, d) for m in ("fc", "resnet18", "vit") for d in datasets
                                 if (m == "fc" and d != "cifar10") or (m != "fc" and d != "mnist1d"))
            return cls(networks=(("fc", 256), ("fc", 1024), ("fc", 4096), ("resnet18", None), ("vit", None)),
                       datasets=datasets, seeds=seeds, epochs=200, patience=10, combinations=combinations)
        raise ValueError(f"unknown preset {name!r}; choose 'quick' or 'paper'")

    def runs(self) -> list[TrainingRun]:
        """Every unit, ordered network → data set → approach → seed."""
        units = []
        for model, width in self.networks:
            for dataset in self.datasets:
                if self.combinations and (model, dataset) not in self.combinations:
                    continue
                if model != "fc" and dataset == "mnist1d":
                    continue  # 1-D inputs: FC only
                for method, aggregator, k in self.approaches:
                    lr, source = resolve_lr(model, width, dataset, method, aggregator, k)
                    for seed in self.seeds:
                        units.append(TrainingRun(
                            model=model, width=width, dataset=dataset, method=method, aggregator=aggregator, k=k,
                            seed=seed, lr=lr, lr_source=source, epochs=self.epochs, patience=self.patience,
                            batch_size=64 if model == "fc" else 128,
                            mode="simulated" if model == "resnet18" else self.mode, max_train=self.max_train))
        return units


def run_unit(unit: TrainingRun, *, device: str | torch.device = "cpu", progress: bool = False) -> pd.DataFrame:
    """Train one unit: its per-epoch history with the test accuracy of the best-validation state and the device."""
    from fg_analysis.data import load_dataset
    from fg_analysis.env import resolve_device
    from fg_analysis.models import build_model
    from fg_analysis.training import train

    resolved = resolve_device(device)
    data = load_dataset(unit.dataset, seed=unit.seed, device=resolved)
    net = build_model(unit.model, input_shape=data.input_shape, n_classes=data.n_classes, width=unit.width,
                      seed=unit.seed, device=resolved)
    source = GradientSource(unit.method, k=unit.k, aggregator=unit.aggregator, perturbation=unit.perturbation,
                            mode=unit.mode)
    generator = torch.Generator(device=resolved).manual_seed(unit.seed)
    result = train(net, data, source, lr=unit.lr, batch_size=unit.batch_size, epochs=unit.epochs,
                   patience=unit.patience, optimizer=unit.optimizer, max_train=unit.max_train, generator=generator,
                   progress=progress, description=f"{model_key(unit.model, unit.width)} {source.label} s{unit.seed}")
    history = result.history
    history["test_accuracy"] = result.test_accuracy
    history["test_loss"] = result.test_loss
    history["best_epoch"] = result.best_epoch
    history["stopped"] = result.stopped
    history["n_parameters"] = sum(p.numel() for p in net.parameters())
    history["activity_dimension"] = activity_dimension(net, data.input_shape)
    history["device"] = resolved.type
    return history


def run(config: RQ3Config, *, device: str = "cpu", cache: ResultsCache | None = None, progress: bool = True,
        cpu_threads: int | None = 1) -> pd.DataFrame:
    """Every unit of ``config`` through the cache (each run cached on its own); one row per run and epoch.

    On a CPU the runs use ``cpu_threads`` torch threads (restored afterwards; ``None`` keeps the current setting):
    one thread is much faster for these small networks (:func:`fg_analysis.training.cpu_threads`).
    """
    from fg_analysis.env import resolve_device
    from fg_analysis.training import cpu_threads as threads_scope

    resolved = resolve_device(device)
    cache = cache or ResultsCache()
    with threads_scope(cpu_threads if resolved.type == "cpu" else None):
        frame = cache.sweep(config.runs(), lambda unit: run_unit(unit, device=resolved), device=str(resolved),
                            description="RQ3 networks", progress=progress)
    frame["network"] = [model_key(m, None if pd.isna(w) else int(w)) for m, w in zip(frame["model"], frame["width"])]
    frame["approach"] = [approach_label(m, a, int(k)) for m, a, k in zip(frame["method"], frame["aggregator"],
                                                                          frame["k"])]
    return frame


# ------------------------------------------------------------------------------------------------------------
# reductions


def _order(labels) -> list[str]:
    def key(label: str):
        if label == "BP":
            return (0, "", 0)
        if label == "FG":
            return (1, "", 1)
        aggregator, k = label.split(" k=")
        return (2, aggregator, int(k))

    return sorted(set(labels), key=key)


def final_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run: test accuracy (best-validation state), best epoch, epochs run, how it stopped, wall time."""
    last = frame.sort_values("epoch").groupby(RUN_KEYS, dropna=False).tail(1)
    out = last[RUN_KEYS + ["test_accuracy", "best_epoch", "epoch", "stopped", "wall_time_s", "train_time_s", "lr",
                           "lr_source", "mode", "device"]].rename(columns={"epoch": "epochs_run"})
    return out.reset_index(drop=True)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± 95% CI (``1.96 · std / sqrt(seeds)``) of the test accuracy per (network, dataset, approach), with
    the mean wall time per run, the mean best epoch, the learning rate and its source."""
    runs = final_runs(frame)
    table = summarize(runs, "test_accuracy", GROUP_KEYS).rename(columns={"count": "seeds"})
    extra = runs.groupby(GROUP_KEYS, dropna=False).agg(wall_time_s=("wall_time_s", "mean"),
                                                       best_epoch=("best_epoch", "mean"), lr=("lr", "first"),
                                                       lr_source=("lr_source", "first"), mode=("mode", "first"),
                                                       device=("device", "first")).reset_index()
    table = table.merge(extra, on=GROUP_KEYS)
    table["test_accuracy"] = [format_ci(m, c) for m, c in zip(table["mean"], table["ci"])]
    order = {label: i for i, label in enumerate(_order(table["approach"]))}
    table["order"] = table["approach"].map(order)
    return table.sort_values(["network", "dataset", "order"]).drop(columns="order").reset_index(drop=True)


def learning_curves(frame: pd.DataFrame, value: str = "val_accuracy") -> pd.DataFrame:
    """Mean ± CI of ``value`` over seeds per (network, dataset, approach, epoch); runs that stopped early keep
    their last value (carried forward), so every epoch averages all seeds."""
    pieces = []
    for keys, group in frame.groupby(RUN_KEYS, dropna=False):
        series = group.set_index("epoch")[value].sort_index()
        full = series.reindex(range(int(frame["epoch"].max()) + 1)).ffill()
        piece = pd.DataFrame({"epoch": full.index, value: full.values})
        for name, key in zip(RUN_KEYS, keys):
            piece[name] = key
        pieces.append(piece)
    return summarize(pd.concat(pieces, ignore_index=True), value, GROUP_KEYS + ["epoch"])


def gap_to_bp(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (network, dataset, aggregator, k): mean test accuracy of BP minus that of the approach (FG at k = 1)."""
    runs = final_runs(frame)
    means = runs.groupby(GROUP_KEYS, dropna=False)["test_accuracy"].mean().reset_index()
    bp = means[means["method"] == "bp"].set_index(["network", "dataset"])["test_accuracy"]
    fg = means[means["method"] == "fg"].copy()
    fg["bp_accuracy"] = [bp.get((n, d), np.nan) for n, d in zip(fg["network"], fg["dataset"])]
    fg["gap"] = fg["bp_accuracy"] - fg["test_accuracy"]
    return fg.reset_index(drop=True)


def json_summary(frame: pd.DataFrame, *, preset: str, device: str) -> dict:
    """``{"preset", "device", "test_accuracy": {"<network> <dataset>": {approach: mean test accuracy}}}``."""
    table = summary(frame)
    accuracy: dict[str, dict[str, float]] = {}
    for row in table.itertuples():
        accuracy.setdefault(f"{row.network} {row.dataset}", {})[row.approach] = round(float(row.mean), 4)
    return {"preset": preset, "device": device, "test_accuracy": accuracy}


# ------------------------------------------------------------------------------------------------------------
# scorecard


def scorecard(frame: pd.DataFrame, config: RQ3Config | None = None) -> pd.DataFrame:
    """The RQ3 claims checked on ``frame`` (the paper's MNIST FC / ResNet / ViT results, in our setting)."""
    table = summary(frame)
    rows = []
    setup = _setup_note(frame, config)
    for (network, dataset), group in table.groupby(["network", "dataset"], sort=False):
        acc = dict(zip(group["approach"], group["mean"]))
        ci = dict(zip(group["approach"], group["ci"]))
        name = f"{network} on {dataset}"
        if "BP" in acc and network == "fc_w=256":
            rows.append(claim("RQ3", f"BP trains {name} to a high test accuracy (≥ 90%)",
                              "≈ 98% on MNIST", format_ci(acc["BP"], ci["BP"]), acc["BP"] >= 0.9, setup))
        if "FG" in acc and "projection k=16" in acc:
            rows.append(claim("RQ3", f"projection with k = 16 beats FG (k = 1) on {name}",
                              "yes (every network and data set)",
                              f"{format_ci(acc['projection k=16'], ci['projection k=16'])} vs "
                              f"{format_ci(acc['FG'], ci['FG'])}", acc["projection k=16"] > acc["FG"], setup))
        if "mean k=16" in acc and "projection k=16" in acc:
            rows.append(claim("RQ3", f"projection ≥ mean at k = 16 on {name}", "yes",
                              f"{acc['projection k=16']:.3f} vs {acc['mean k=16']:.3f}",
                              acc["projection k=16"] >= acc["mean k=16"] - 0.01, setup))
        if "BP" in acc and "projection k=16" in acc:
            rows.append(claim("RQ3", f"a gap to BP remains at k = 16 on {name}", "yes, it shrinks with k",
                              f"{acc['BP'] - acc['projection k=16']:+.3f}",
                              acc["BP"] - acc["projection k=16"] > 0, setup))
    return pd.DataFrame(rows)


def _setup_note(frame: pd.DataFrame, config: RQ3Config | None) -> str:
    seeds = frame["seed"].nunique()
    epochs = int(frame["epoch"].max())
    modes = "/".join(sorted(frame["mode"].unique())) if "mode" in frame else "?"
    return (f"{seeds} seeds, ≤ {epochs} epochs, {modes} JVPs, our searched rates on offline data "
            "(paper: MNIST/CIFAR-10, ≤ 200 epochs, simulated JVPs)")


def scorecard_rows(preset: str = "quick", *, device: str = "cpu", cache: ResultsCache | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """Run (or read from the cache) the preset's sweep, as the RQ3 notebook does, and return its claims."""
    config = RQ3Config.preset(preset, seed=seed)
    return scorecard(run(config, device=device, cache=cache, progress=False), config)


# ------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fg_analysis.experiments.rq3",
                                     description="RQ3: train networks with BP and multi-tangent forward gradients")
    parser.add_argument("--preset", default="quick", choices=("quick", "paper"))
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    from fg_analysis.env import resolve_device

    device = resolve_device(args.device)
    frame = run(RQ3Config.preset(args.preset, seed=args.seed), device=str(device), progress=not args.no_progress)
    table = summary(frame)
    columns = ["network", "dataset", "approach", "test_accuracy", "seeds", "best_epoch", "wall_time_s", "lr",
               "lr_source", "mode", "device"]
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_columns", 20):
        print(table[columns].to_string(index=False))
    print(f"device used: {device}")
    print(json.dumps(json_summary(frame, preset=args.preset, device=str(device))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
