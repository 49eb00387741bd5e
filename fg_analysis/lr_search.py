"""Learning rates for the network runs: the paper's tables where they apply, our own small search elsewhere.

:func:`learning_rate` answers "which constant SGD rate does this setting train with?":

* MNIST and CIFAR-10 with the paper's models → the paper's tuned rates (:func:`fg_analysis.lrs.paper_lr`,
  tables ``fc_nns`` and ``sota_nns``; Flügel et al., arXiv 2410.17764).
* The offline data sets (``digits``, ``mnist1d``) → OUR searched rates, stored as data in
  ``fg_analysis/lrs/searched.csv`` (see ``lrs/SEARCHED.md``), produced by :func:`search`: train every rate of
  a log grid for a few epochs (plain SGD, seed 0, early stopping as in the paper) and keep the rate with the
  lowest validation loss (the paper searched ``log10(lr) ∈ [-6, 0]`` by an evolutionary algorithm; a grid with
  half-decade steps is the cheap offline stand-in).

The grids follow the theory of the norms (``reference/paper.md``): the mean overshoots ``|∇L|`` by about
``sqrt(A/k)``, so its rates are orders of magnitude smaller than BP's and the projection's (never above).

Regenerate the table (and print it) with::

    python -m fg_analysis.lr_search --dataset digits --width 256 --epochs 20
    python -m fg_analysis.lr_search --dataset mnist1d --width 256 --epochs 20

"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fg_analysis import learning_rates as lrs
from fg_analysis.learning_rates import PAPER_DATASETS, model_key, searched_table
from fg_analysis.cache import ResultsCache

__all__ = ["GRIDS", "SEARCHED_COLUMNS", "SearchTrial", "choose", "log_grid", "search", "write_searched"]

#: log10 ranges (low, high) of the search grid per gradient approach, in half-decade steps
GRIDS = {"bp": (-2.5, 0.5), "fg-mean": (-5.0, -1.0), "frog": (-2.5, 0.5)}

#: columns of ``lrs/searched.csv``
SEARCHED_COLUMNS = ("model", "dataset", "gradient_approach", "k", "lr", "val_loss", "at_grid_edge", "epochs",
                    "grid", "seed", "mode", "searched")

SEARCHED_CSV = Path(__file__).resolve().parent / "lrs" / "searched.csv"


def log_grid(method: str, aggregator: str = "mean", k: int = 1, *, step: float = 0.5) -> tuple[float, ...]:
    """The rates tried for an approach: ``10 ** arange(low, high + step, step)`` with (low, high) from
    :data:`GRIDS`.

    >>> log_grid("bp")[:3]
    (0.0031622776601683794, 0.01, 0.03162277660168379)
    """
    low, high = GRIDS[lrs.approach(method, aggregator, k)]
    exponents = np.arange(low, high + step / 2, step)
    return tuple(float(10.0 ** e) for e in exponents)


# ----------------------------------------------------------------------------------------------------------
# the search


@dataclass(frozen=True)
class SearchTrial:
    """One trial of the search: a short training run of one setting at one rate (cached on its own)."""

    model: str
    width: int | None
    dataset: str
    method: str
    aggregator: str
    k: int
    lr: float
    epochs: int = 20
    patience: int = 10
    batch_size: int = 64
    seed: int = 0
    mode: str = "oracle"


def run_trial(trial: SearchTrial, *, device: str = "cpu") -> pd.DataFrame:
    """Train one trial; one row with the best validation loss (inf when it diverged at once) and how it ended."""
    from fg_analysis.data import load_dataset
    from fg_analysis.env import resolve_device
    from fg_analysis.gradients import GradientSource
    from fg_analysis.models import build_model
    from fg_analysis.training import train

    resolved = resolve_device(device)
    data = load_dataset(trial.dataset, seed=trial.seed, device=resolved)
    net = build_model(trial.model, input_shape=data.input_shape, n_classes=data.n_classes, width=trial.width,
                      seed=trial.seed, device=resolved)
    source = GradientSource(trial.method, k=trial.k, aggregator=trial.aggregator, mode=trial.mode)
    generator = torch.Generator(device=resolved).manual_seed(trial.seed)
    result = train(net, data, source, lr=trial.lr, batch_size=trial.batch_size, epochs=trial.epochs,
                   patience=trial.patience, measure_cosine=False, generator=generator, progress=False)
    history = result.history
    trained = history[history.epoch > 0]
    best = float(trained["val_loss"].min()) if len(trained) else math.inf
    return pd.DataFrame([{"best_val_loss": best if math.isfinite(best) else math.inf,
                          "best_val_accuracy": float(trained["val_accuracy"].max()) if len(trained) else 0.0,
                          "stopped": result.stopped, "best_epoch": result.best_epoch,
                          "wall_time_s": result.wall_time_s}])


def search(*, model: str = "fc", width: int | None = 256, dataset: str = "digits",
           approaches=(("bp", "mean", 1), ("fg", "mean", 1), ("fg", "mean", 2), ("fg", "mean", 4),
                       ("fg", "mean", 16), ("fg", "projection", 2), ("fg", "projection", 4),
                       ("fg", "projection", 16)),
           epochs: int = 20, seed: int = 0, mode: str = "oracle", device: str = "cpu",
           cache: ResultsCache | None = None, progress: bool = True) -> pd.DataFrame:
    """Train every rate of :func:`log_grid` for every approach; one row per trial (see :func:`run_trial`).

    ``mode="simulated"`` by default: its JVPs are those of real forward mode (same tangents, same values), only
    faster on a CPU.
    """
    trials = [SearchTrial(model, width, dataset, method, aggregator, k, lr, epochs=epochs, seed=seed, mode=mode)
              for method, aggregator, k in approaches for lr in log_grid(method, aggregator, k)]
    from fg_analysis.env import torch_threads

    cache = cache or ResultsCache()
    with torch_threads(1 if str(device) == "cpu" else None):
        return cache.sweep(trials, lambda trial: run_trial(trial, device=device), device=device,
                           description=f"lr search {model_key(model, width)} {dataset}", progress=progress)


def choose(trials: pd.DataFrame) -> pd.DataFrame:
    """Per approach, the rate with the lowest best validation loss, in the layout of ``lrs/searched.csv``.

    Runs that diverged (a training loss NaN or ≥ 10: aborted as in the paper) are not eligible unless all did.
    ``at_grid_edge`` flags a choice at the end of its grid (the optimum may lie outside it).
    """
    rows = []
    keys = ["model", "width", "dataset", "method", "aggregator", "k"]
    for (model, width, dataset, method, aggregator, k), group in trials.groupby(keys, dropna=False, sort=False):
        group = group.sort_values("lr")
        eligible = group[group["stopped"] != "diverged"]
        eligible = eligible if len(eligible) else group
        best = eligible.loc[eligible["best_val_loss"].idxmin()]
        rows.append({"model": model_key(model, None if pd.isna(width) else int(width)), "dataset": dataset,
                     "gradient_approach": lrs.approach(method, aggregator, int(k)),
                     "k": float("nan") if method == "bp" else float(k), "lr": float(best["lr"]),
                     "val_loss": float(best["best_val_loss"]),
                     "at_grid_edge": bool(best["lr"] in (group["lr"].min(), group["lr"].max())),
                     "epochs": int(best["epochs"]),
                     "grid": f"10^[{math.log10(group['lr'].min()):g}:{math.log10(group['lr'].max()):g}:0.5]",
                     "seed": int(best["seed"]), "mode": best["mode"], "searched": time.strftime("%Y-%m-%d")})
    return pd.DataFrame(rows, columns=list(SEARCHED_COLUMNS))


def write_searched(chosen: pd.DataFrame, path: str | Path = SEARCHED_CSV) -> pd.DataFrame:
    """Merge ``chosen`` into ``lrs/searched.csv`` (replacing rows of the same setting) and return the table."""
    path = Path(path)
    old = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=list(SEARCHED_COLUMNS))
    keys = ["model", "dataset", "gradient_approach", "k"]
    if len(old):
        new_keys = set(map(tuple, chosen[keys].astype(str).values))
        old = old[[tuple(row) not in new_keys for row in old[keys].astype(str).values]]
    table = pd.concat([df for df in (old, chosen) if len(df)], ignore_index=True)
    table = table.sort_values(["model", "dataset", "gradient_approach", "k"], na_position="first")
    table.to_csv(path, index=False)
    lrs._read.cache_clear()
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fg_analysis.lr_search", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="fc", choices=("fc", "resnet18", "vit"))
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dry-run", action="store_true", help="print the choice, do not write lrs/searched.csv")
    args = parser.parse_args(argv)
    trials = search(model=args.model, width=args.width, dataset=args.dataset, epochs=args.epochs, seed=args.seed,
                    device=args.device)
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(trials[["method", "aggregator", "k", "lr", "best_val_loss", "best_val_accuracy", "stopped"]])
        chosen = choose(trials)
        print(chosen)
    if not args.dry_run:
        write_searched(chosen)
        print(f"wrote {SEARCHED_CSV}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
