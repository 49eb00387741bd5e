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
* ``sota-cpu`` (CPU, stored): ResNet-18 (simulated JVPs, as above) and the ViT (real forward mode) on digits only;
  BP, FG, mean k = 16 and projection k = 16 (:data:`SOTA_CPU_APPROACHES`; the ViT's mean k = 16 is left out, see
  below); seed 0 only; at most 5 epochs, patience 10; the paper's MNIST rate of the same network
  (``lr_source = "paper-mnist"``, via :func:`resolve_lr` as in ``paper``). Timed one epoch per run on one CPU
  thread: ResNet-18 ≈ 6 s for every approach, the ViT ≈ 8 s (BP), 16 s (FG) and 95 s (k = 16: 16 real-mode JVPs
  per sample). Ten epochs of all four approaches would take ≈ 40 minutes, so the preset runs 5 epochs and
  skips the ViT's mean k = 16: ≈ 12 minutes of CPU estimated, 16 measured (ResNet-18 4 min, ViT 12 min, run as
  two 1-thread processes side by side on a shared 2-core machine). Its runs are committed under
  ``results/published/TrainingRun``; :func:`stored` reads them without training anything, and the notebook
  shows them from there.

Every training run is one cached unit (:class:`TrainingRun`, :meth:`fg_analysis.cache.ResultsCache.sweep`).
:func:`run` returns one row per run and epoch with the columns ``model, network, width, dataset, method,
aggregator, k, approach, seed, epoch, train_loss, train_accuracy, val_loss, val_accuracy, cosine, norm_ratio,
train_time_s, wall_time_s, test_accuracy, best_epoch, stopped, lr, lr_source, mode, device``;
:func:`summary` reduces it to mean ± 95% CI test accuracy per (network, dataset, approach). :func:`stored` returns
the same frame for runs already in the cache (``None`` if one is missing) and trains nothing;
:func:`provenance` lists where and when each stored run was made.

Command line (prints the summary table; the LAST line is one JSON object)::

    python -m fg_analysis rq3 --preset quick [--device auto]
    python -m fg_analysis rq3 --preset mnist-fc --seeds 0 --publish      # FC-256 on MNIST, the paper's protocol
    python -m fg_analysis rq3 --preset paper --device auto --publish     # on a GPU: stored, committed

The JSON line: ``{"preset": ..., "device": ..., "test_accuracy": {"<network> <dataset>": {"BP": 0.97, "FG": ...,
"mean k=2": ..., "projection k=16": ...}}}`` — the mean test accuracy over seeds per approach (approach labels
as in :func:`fg_analysis.gradients.approach_label`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch

from fg_analysis.cache import ResultsCache
from fg_analysis.data import available_datasets
from fg_analysis.experiments import claim
from fg_analysis.gradients import GradientSource, activity_dimension
from fg_analysis.labels import approach_label, approach_order
from fg_analysis.learning_rates import model_key, network_rate
from fg_analysis.metrics import format_ci, summarize

__all__ = ["PAPER_APPROACHES", "PRESETS", "QUICK_APPROACHES", "SOTA_CPU_APPROACHES", "RQ3Config", "TrainingRun",
           "available_datasets", "final_runs", "gap_to_bp", "json_summary", "learning_curves", "main", "provenance",
           "resolve_lr", "run", "run_unit", "scorecard", "scorecard_rows", "stored", "stored_rows", "summary"]

#: (method, aggregator, k): BP, FG (k = 1), mean and projection for k ∈ {2, 4, 16}
PAPER_APPROACHES = (("bp", "mean", 1), ("fg", "mean", 1),
                    *(("fg", aggregator, k) for aggregator in ("mean", "projection") for k in (2, 4, 16)))

#: the quick preset's approaches (k ∈ {1, 4, 16}: the k = 2 runs are left out to stay within ~1 min on a CPU)
QUICK_APPROACHES = (("bp", "mean", 1), ("fg", "mean", 1), ("fg", "mean", 4), ("fg", "mean", 16),
                    ("fg", "projection", 4), ("fg", "projection", 16))

#: the ``sota-cpu`` preset's approaches: BP, FG (k = 1), mean and projection with k = 16
SOTA_CPU_APPROACHES = (("bp", "mean", 1), ("fg", "mean", 1), ("fg", "mean", 16), ("fg", "projection", 16))

#: the preset names of :meth:`RQ3Config.preset`
PRESETS = ("quick", "mnist-fc", "paper", "sota-cpu")

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
    mode: str = "forward"
    perturbation: str = "activity"
    optimizer: str = "sgd"
    max_train: int | None = None


def resolve_lr(model: str, width: int | None, dataset: str, method: str, aggregator: str, k: int
               ) -> tuple[float, str]:
    """``(lr, source)`` of a run: :func:`fg_analysis.learning_rates.network_rate`."""
    return network_rate(model, width, dataset, method=method, aggregator=aggregator, k=k)


@dataclass(frozen=True)
class RQ3Config:
    """The RQ3 sweep: ``networks × datasets × approaches × seeds`` (pairs a network cannot take are skipped).

    ``networks`` are ``(model, width)`` pairs; ``combinations``, when given, restricts to those
    ``(model, dataset)`` pairs; ``exclude`` leaves out the ``(model, method, aggregator, k)`` units it names.
    ``mode`` is the JVP mode of the FC nets and the ViT (ResNet-18 always simulated).
    """

    networks: tuple[tuple[str, int | None], ...] = (("fc", 256),)
    datasets: tuple[str, ...] = ("digits",)
    approaches: tuple[tuple[str, str, int], ...] = PAPER_APPROACHES
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 200
    patience: int = 10
    mode: str = "forward"
    max_train: int | None = None
    combinations: tuple[tuple[str, str], ...] = ()
    exclude: tuple[tuple[str, str, str, int], ...] = ()

    @classmethod
    def preset(cls, name: str, *, seed: int = 0) -> "RQ3Config":
        """``"quick"``: FC w = 256 on digits, 6 approaches (k ∈ {1, 4, 16}), 3 seeds, ≤ 20 epochs (about a minute
        on 2 cores).
        ``"paper"``: the paper's networks and settings on every available data set (see the module docstring).
        ``"sota-cpu"``: ResNet-18 (simulated JVPs) and the ViT (real forward mode) on digits, BP, FG, mean k = 16
        (ResNet-18 only) and projection k = 16, one seed, ≤ 5 epochs, the paper's MNIST rates (``"paper-mnist"``):
        12-16 minutes on one CPU thread (see the module docstring).
        ``seed`` shifts the seeds (``"sota-cpu"`` runs the first only)."""
        seeds = tuple(range(seed, seed + 3))
        if name == "quick":
            return cls(approaches=QUICK_APPROACHES, seeds=seeds, epochs=20, patience=10)
        if name == "mnist-fc":
            return cls(networks=(("fc", 256),), datasets=("mnist",), seeds=seeds, epochs=200, patience=10,
                       mode="oracle")
        if name == "paper":
            datasets = available_datasets()
            combinations = tuple((m, d) for m in ("fc", "resnet18", "vit") for d in datasets
                                 if (m == "fc" and d != "cifar10") or (m != "fc" and d != "mnist1d"))
            return cls(networks=(("fc", 256), ("fc", 1024), ("fc", 4096), ("resnet18", None), ("vit", None)),
                       datasets=datasets, seeds=seeds, epochs=200, patience=10, combinations=combinations)
        if name == "sota-cpu":
            return cls(networks=(("resnet18", None), ("vit", None)), datasets=("digits",),
                       approaches=SOTA_CPU_APPROACHES, seeds=(seed,), epochs=5, patience=10,
                       exclude=(("vit", "fg", "mean", 16),))
        raise ValueError(f"unknown preset {name!r}; choose one of {PRESETS}")

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
                    if (model, method, aggregator, k) in self.exclude:
                        continue
                    lr, source = resolve_lr(model, width, dataset, method, aggregator, k)
                    for seed in self.seeds:
                        units.append(TrainingRun(
                            model=model, width=width, dataset=dataset, method=method, aggregator=aggregator, k=k,
                            seed=seed, lr=lr, lr_source=source, epochs=self.epochs, patience=self.patience,
                            batch_size=64 if model == "fc" else 128,
                            mode="oracle" if model == "resnet18" else self.mode, max_train=self.max_train))
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
        cpu_threads: int | None = 1, executor=None) -> pd.DataFrame:
    """Every unit of ``config`` through the cache (each run cached on its own); one row per run and epoch.

    On a CPU the runs use ``cpu_threads`` torch threads (restored afterwards; ``None`` keeps the current setting):
    one thread is much faster for these small networks (:func:`fg_analysis.env.torch_threads`).
    """
    from fg_analysis.env import resolve_device
    from fg_analysis.env import torch_threads

    resolved = resolve_device(device)
    cache = cache or ResultsCache()
    with torch_threads(cpu_threads if resolved.type == "cpu" else None):
        frame = cache.sweep(config.runs(), partial(run_unit, device=str(resolved)), device=str(resolved),
                            executor=executor,
                            description="RQ3 networks", progress=progress)
    return _labelled(frame)


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    frame["network"] = [model_key(m, None if pd.isna(w) else int(w)) for m, w in zip(frame["model"], frame["width"])]
    frame["approach"] = [approach_label(m, a, int(k)) for m, a, k in zip(frame["method"], frame["aggregator"],
                                                                          frame["k"])]
    return frame


def stored(config: RQ3Config, *, cache: ResultsCache | None = None) -> pd.DataFrame | None:
    """The runs of ``config`` as :func:`run` returns them, read from the cache only; ``None`` unless every unit
    is stored (a partial sweep would make a misleading table). Nothing is trained.

    Looks in the cache's writable root, then its published folder (default ``results/cache``, then
    ``results/published``). The frame carries each unit's record (config, environment — device, commit — and
    the date it was saved) in ``frame.attrs["records"]``, in the order of :meth:`RQ3Config.runs`.
    """
    cache = cache or ResultsCache()
    frames, records = [], []
    for unit in config.runs():
        found = cache.load(unit)
        if found is None:
            return None
        frame, record = found
        for field, value in dataclasses.asdict(unit).items():
            if field not in frame.columns:
                frame[field] = value
        frames.append(frame)
        records.append(record)
    if not frames:
        return None
    frame = _labelled(pd.concat(frames, ignore_index=True))
    frame.attrs["records"] = records
    return frame


def provenance(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per stored run of a :func:`stored` frame: network, approach, device, CPU/GPU name, commit, date
    saved and the run's wall time (from the records in ``frame.attrs["records"]``)."""
    rows = []
    for record in frame.attrs.get("records", []):
        config, environment = record["config"], record.get("environment", {})
        rows.append({"network": model_key(config["model"], config["width"]),
                     "approach": approach_label(config["method"], config["aggregator"], int(config["k"])),
                     "seed": config["seed"], "mode": config["mode"], "device": environment.get("device"),
                     "device_name": environment.get("device_name"), "commit": environment.get("commit"),
                     "saved": record.get("saved"), "wall_time_s": record.get("wall_time_s")})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------------------
# reductions


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
    order = {label: i for i, label in enumerate(approach_order(table["approach"]))}
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
    """Run (or read from the cache) the preset's sweep, as the RQ3 notebook does, and return its claims; then,
    read-only, the claims on the stored ``sota-cpu`` runs (:func:`stored_rows`; none if they are not stored)."""
    config = RQ3Config.preset(preset, seed=seed)
    rows = scorecard(run(config, device=device, cache=cache, progress=False), config)
    if preset == "sota-cpu":
        return rows
    return pd.concat([rows, stored_rows(RQ3Config.preset("sota-cpu"), cache=cache)], ignore_index=True)


def stored_rows(config: RQ3Config, *, cache: ResultsCache | None = None) -> pd.DataFrame:
    """"Projection with k = 16 beats FG (k = 1)" per network of ``config``'s stored runs (:func:`stored`), with
    where and when they ran in the setup column; no rows (and nothing trained) when a run is missing."""
    from fg_analysis.experiments import SCORECARD_COLUMNS

    frame = stored(config, cache=cache)
    if frame is None:
        return pd.DataFrame(columns=list(SCORECARD_COLUMNS))
    table, origin = summary(frame), provenance(frame)
    rows = []
    for (network, dataset), group in table.groupby(["network", "dataset"], sort=False):
        acc = dict(zip(group["approach"], group["mean"]))
        if "FG" not in acc or "projection k=16" not in acc:
            continue
        runs = origin[origin["network"] == network]
        seeds = frame.loc[frame["network"] == network, "seed"].nunique()
        devices, names = "/".join(sorted(set(runs["device"]))), ", ".join(sorted(set(runs["device_name"])))
        setup = (f"stored {devices} runs ({names}; commit {', '.join(sorted(set(runs['commit'].astype(str))))}; saved "
                 f"{min(runs['saved'])[:10]}): {seeds} seed{'s' if seeds > 1 else ''}, ≤ {config.epochs} epochs, "
                 f"{'/'.join(sorted(set(runs['mode'])))} JVPs, {dataset} 8×8, the paper's MNIST rates "
                 "(paper: MNIST/CIFAR-10, 3 seeds, ≤ 200 epochs)")
        rows.append(claim("RQ3", f"projection with k = 16 beats FG (k = 1) on {network} on {dataset} "
                                 f"(CPU, {seeds} seed{'s' if seeds > 1 else ''})",
                          "yes (every network and data set)",
                          f"{acc['projection k=16']:.3f} vs {acc['FG']:.3f}",
                          acc["projection k=16"] > acc["FG"], setup))
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))


# ------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``python -m fg_analysis rq3 --preset mnist-fc --seeds 0 --publish``: train (or read) the preset's runs and
    print the summary table; the LAST line is one JSON object (:func:`json_summary`)."""
    from fg_analysis.cli import experiment_parser, resolve_common
    from fg_analysis.sweep import executor_from

    parser = experiment_parser("rq3", "RQ3: train networks with BP and multi-tangent forward gradients",
                               presets=PRESETS)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="run only these seeds of the preset (e.g. --seeds 0); default: all of them")
    parser.add_argument("--approaches", nargs="+", default=None, metavar="LABEL",
                        help="run only these approaches of the preset, by label (e.g. BP FG 'projection k=16')")
    args = parser.parse_args(argv)
    device, cache = resolve_common(parser, args)
    config = RQ3Config.preset(args.preset, seed=args.seed)
    if args.seeds is not None:
        config = dataclasses.replace(config, seeds=tuple(args.seeds))
    if args.approaches is not None:
        known = {approach_label(*approach): approach for approach in config.approaches}
        unknown = sorted(set(args.approaches) - set(known))
        if unknown:
            parser.error(f"--approaches: unknown {unknown}; the preset has {list(known)}")
        config = dataclasses.replace(config, approaches=tuple(known[label] for label in args.approaches))
    with executor_from(args.executor) as executor:
        frame = run(config, device=str(device), cache=cache, progress=not args.no_progress, executor=executor,
                    cpu_threads=args.threads)
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
