"""RQ3: do multi-tangent forward gradients train real networks? SGD with BP, FG and k-tangent mean / projection.

The paper's network experiments (Flügel et al., arXiv 2410.17764, Sec. IV-D,
"Fully-connected networks" and "ResNet18 and ViT"): networks trained by plain SGD (constant rate, no momentum,
no weight decay; batch 64 for the FC nets, 128 for ResNet-18 / ViT; up to 200 epochs; early stopping after 10
epochs without a better validation loss, or when the epoch's validation loss is NaN or ≥ 10) with the gradient from BP,
from one
tangent (FG, k = 1, mean) or from the mean / orthogonal projection of k ∈ {2, 4, 16} tangents, seeds 0-2. The
forward gradients perturb *activities*: one tangent over all stage outputs, shared by the batch, per-sample JVPs,
local weight updates (:func:`fg_analysis.nets.gradients.activity_perturbation`).

Presets (:meth:`RQ3Config.preset`):

* ``quick`` (CPU, the notebook's default): the FC net 784 → 256 → 256 → 10 on real MNIST (the copy ``make env``
  vendors; 50k/10k/10k split), trained on its first 2000 training images (``max_train``) for 10 epochs (310 SGD
  steps), validated and tested on the full 10k sets; BP, FG, mean and projection with k ∈ {4, 16}; 3 seeds; real
  forward-mode JVPs; the paper's tuned MNIST rates. Measured: the 18 runs in 267 s (4-24 s each) on one thread
  of a 2-core machine shared with three other experiment processes; the cache makes a rebuild read them. Far
  from the paper's 200 epochs on 50k images, so its accuracies are far below the paper's (BP 0.88, the forward
  gradients 0.18-0.48).
* ``mnist-fc`` (CPU or GPU, stored): FC w = 256 on MNIST with the paper's protocol (all 50k training images, up
  to 200 epochs, patience 10, batch 64, the paper's rates, 3 seeds, all 8 approaches) and oracle JVPs (from the
  BP gradient: the paper's own default, "simulated"). Its runs are stored under ``results/published`` as they
  finish (``--seeds``/``--approaches`` run a part); :func:`stored` with ``partial=True`` reads those stored so
  far.
* ``paper`` (a GPU): FC widths 256 / 1024 / 4096 on digits, MNIST-1D (and MNIST when ``$FG_DATA_DIR`` has it);
  ResNet-18 and the ViT on digits (and MNIST / CIFAR-10 when present); 200 epochs, patience 10. Rates: the
  paper's tables on MNIST / CIFAR-10, ours on digits / MNIST-1D where searched, else the paper's MNIST rate of
  the same network (``lr_source`` says which). ResNet-18 (BatchNorm in train mode) uses oracle JVPs — the
  paper's default "simulated" ones — since a batch-shared forward-mode perturbation cannot separate per-sample
  JVPs through batch statistics (see :mod:`fg_analysis.nets.gradients`); the FC nets and the ViT use forward mode.

Every training run is one cached unit (:class:`TrainingRun`, :meth:`fg_analysis.runs.cache.ResultsCache.sweep`).
:func:`run` returns one row per run and epoch with the columns ``model, network, width, dataset, method,
aggregator, k, approach, seed, epoch, train_loss, train_accuracy, val_loss, val_accuracy, cosine, norm_ratio,
train_time_s, wall_time_s, test_accuracy, best_epoch, stopped, lr, lr_source, mode, device``;
:func:`summary` reduces it to mean ± 95% CI test accuracy per (network, dataset, approach). :func:`stored` returns
the same frame for runs already in the cache (``None`` if one is missing) and trains nothing;
:func:`provenance` lists where and when each stored run was made.

Width (the paper's FC widths 256 and 1024 on MNIST, each stored under its preset, :data:`WIDTH_PRESETS`):
:func:`stored_widths` reads each width's stored runs, :func:`joined` puts them in one frame and :func:`coverage`
says what is stored of each; :func:`width_summary` gives test accuracy and validation loss per width,
:func:`width_differences` the gaps to BP per width (paired by seed), :func:`width_trends` how they change from
one width to the other, and :func:`width_cosines` the measured cosines beside the activity-space closed form.

Verdicts are paired: every approach of a setup trains from the same data order and initial weights per seed, so
"A beats B" is tested on the per-seed differences ``A_s − B_s`` over the seeds both have
(:func:`fg_analysis.metrics.paired_difference`; :func:`comparisons`), not on two overlapping intervals. A run
the epoch budget ended (:func:`budget_limited`) is labelled so: more epochs might have raised its accuracy.

Command line (prints the summary table; the LAST line is one JSON object)::

    python -m fg_analysis rq3 --preset quick [--device auto]
    python -m fg_analysis rq3 --preset mnist-fc --seeds 0 --publish      # FC-256 on MNIST, the paper's protocol
    python -m fg_analysis rq3 --preset paper --device auto --publish     # on a GPU: stored, committed

The JSON line: ``{"preset": ..., "device": ..., "test_accuracy": {"<network> <dataset>": {"BP": 0.97, "FG": ...,
"mean k=2": ..., "projection k=16": ...}}}`` — the mean test accuracy over seeds per approach (approach labels
as in :func:`fg_analysis.nets.gradients.approach_label`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from fg_analysis import theory
from fg_analysis.experiments import SCORECARD_COLUMNS, claim, record_text
from fg_analysis.experiments.learning_rates import model_key, network_rate
from fg_analysis.experiments.reference import best_validation_loss
from fg_analysis.metrics import INCONCLUSIVE, compare, format_ci, paired_difference, summarize
from fg_analysis.metrics import learned as above
from fg_analysis.nets.approaches import PAPER_APPROACHES, approach_label, approach_order
from fg_analysis.nets.data import available_datasets
from fg_analysis.nets.gradients import activity_dimension
from fg_analysis.nets.models import build_model
from fg_analysis.nets.run import TrainingRun, run_unit
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.cli import experiment_parser, resolve_common
from fg_analysis.runs.env import resolve_device, torch_threads
from fg_analysis.runs.sweep import executor_from, sweep

__all__ = ["CHANCE", "CLAIMS", "COMPARISONS", "FG_APPROACHES", "PRESETS", "QUICK_APPROACHES", "REN_2023",
           "REN_2023_OURS", "REN_2023_SETUP", "WIDTH_PAIRS", "WIDTH_PRESETS", "RQ3Config", "TrainingRun", "anchors",
           "available_datasets", "budget_limited", "comparison", "comparisons", "coverage", "difference_text",
           "fc_activity_dimension", "final_runs", "gap_to_bp", "joined", "json_summary", "learned", "learning_curves",
           "main", "provenance", "resolve_lr", "run", "run_unit", "scorecard", "scorecard_rows", "seed_values",
           "stored", "stored_rows", "stored_setup", "stored_widths", "summary", "verdict", "width_cosines",
           "width_differences", "width_summary", "width_trends"]


#: the quick preset's approaches (k ∈ {1, 4, 16}: the k = 2 runs are left out to stay within ~1 min on a CPU)
QUICK_APPROACHES = (("bp", "mean", 1), ("fg", "mean", 1), ("fg", "mean", 4), ("fg", "mean", 16),
                    ("fg", "projection", 4), ("fg", "projection", 16))

#: the quick preset trains on the first this many MNIST training images (all 10k validation and test images are
#: still evaluated), for this many epochs: 310 SGD steps per run
QUICK_MAX_TRAIN, QUICK_EPOCHS = 2000, 10

#: the preset names of :meth:`RQ3Config.preset`
PRESETS = ("quick", "mnist-fc", "mnist-fc1024", "paper")

RUN_KEYS = ["model", "network", "width", "dataset", "method", "aggregator", "k", "approach", "seed"]
GROUP_KEYS = ["network", "dataset", "method", "aggregator", "k", "approach"]


def resolve_lr(model: str, width: int | None, dataset: str, method: str, aggregator: str, k: int
               ) -> tuple[float, str]:
    """``(lr, source)`` of a run: :func:`fg_analysis.experiments.learning_rates.network_rate`."""
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
        """``"quick"``: FC w = 256 on real MNIST, the first :data:`QUICK_MAX_TRAIN` training images only, 6
        approaches (k ∈ {1, 4, 16}), 3 seeds, :data:`QUICK_EPOCHS` epochs, the paper's rates (see the module
        docstring for its time).
        ``"mnist-fc"``: the paper's protocol for the FC-256 on MNIST: all 8 approaches, 3 seeds, ≤ 200 epochs,
        patience 10, oracle JVPs (the paper's default for its networks), the paper's rates; stored by
        ``python -m fg_analysis rq3 --preset mnist-fc --publish`` (hours per run on a CPU).
        ``"mnist-fc1024"``: the same protocol for the FC-1024 (the paper's second width).
        ``"paper"``: the paper's networks and settings on every available data set (see the module docstring).
        ``seed`` shifts the seeds."""
        seeds = tuple(range(seed, seed + 3))
        if name == "quick":
            return cls(datasets=("mnist",), approaches=QUICK_APPROACHES, seeds=seeds, epochs=QUICK_EPOCHS,
                       patience=10, max_train=QUICK_MAX_TRAIN)
        if name in ("mnist-fc", "mnist-fc1024"):
            width = 256 if name == "mnist-fc" else 1024
            return cls(networks=(("fc", width),), datasets=("mnist",), seeds=seeds, epochs=200, patience=10,
                       mode="oracle")
        if name == "paper":
            datasets = available_datasets()
            combinations = tuple((m, d) for m in ("fc", "resnet18", "vit") for d in datasets
                                 if (m == "fc" and d != "cifar10") or (m != "fc" and d != "mnist1d"))
            return cls(networks=(("fc", 256), ("fc", 1024), ("fc", 4096), ("resnet18", None), ("vit", None)),
                       datasets=datasets, seeds=seeds, epochs=200, patience=10, combinations=combinations)
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


def run(config: RQ3Config, *, device: str = "cpu", cache: ResultsCache | None = None, progress: bool = True,
        cpu_threads: int | None = 1, executor=None) -> pd.DataFrame:
    """Every unit of ``config`` through the cache (each run cached on its own); one row per run and epoch.

    On a CPU the runs use ``cpu_threads`` torch threads (restored afterwards; ``None`` keeps the current setting):
    one thread is much faster for these small networks (:func:`fg_analysis.runs.env.torch_threads`).
    """
    resolved = resolve_device(device)
    cache = cache or ResultsCache()
    with torch_threads(cpu_threads if resolved.type == "cpu" else None):
        # in-process, each run shows its epochs too (a unit can take an hour on a CPU)
        unit_progress = progress and executor is None
        frame = sweep(cache, config.runs(), partial(run_unit, device=str(resolved), progress=unit_progress),
                            device=str(resolved),
                            executor=executor,
                            description="RQ3 networks", progress=progress)
    return _labelled(frame)


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    frame["network"] = [model_key(m, None if pd.isna(w) else int(w)) for m, w in zip(frame["model"], frame["width"])]
    frame["approach"] = [approach_label(m, a, int(k)) for m, a, k in zip(frame["method"], frame["aggregator"],
                                                                          frame["k"])]
    return frame


def stored(config: RQ3Config, *, cache: ResultsCache | None = None, partial: bool = False) -> pd.DataFrame | None:
    """The runs of ``config`` as :func:`run` returns them, read from the cache only; ``None`` unless every unit
    is stored (a partial sweep would make a misleading table), or with ``partial=True`` unless at least one is
    (a sweep still being produced: the runs stored so far). Nothing is trained.

    Looks in the cache's writable root, then its published folder (default ``results/cache``, then
    ``results/published``). The frame carries each stored unit's record (config, environment — device, commit —
    and the date it was saved) in ``frame.attrs["records"]``, in the order of :meth:`RQ3Config.runs`, and
    ``frame.attrs["stored"]`` / ``["units"]``: how many of the config's units were found, of how many.
    """
    return (cache or ResultsCache()).stored(config.runs(), prepare=_labelled, complete=not partial)


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
    """One row per run: test accuracy (best-validation state), best epoch, epochs run, the epoch budget, how it
    stopped, whether the budget ended it (:func:`budget_limited`), wall time."""
    last = frame.sort_values("epoch").groupby(RUN_KEYS, dropna=False).tail(1)
    out = last[RUN_KEYS + ["test_accuracy", "best_epoch", "epoch", "epochs", "stopped", "wall_time_s",
                           "train_time_s", "lr", "lr_source", "mode", "device"]]
    out = out.rename(columns={"epoch": "epochs_run", "epochs": "budget"}).reset_index(drop=True)
    out["budget_limited"] = budget_limited(out)
    return out


def budget_limited(runs: pd.DataFrame) -> pd.Series:
    """Whether each run (a row of :func:`final_runs`) was ended by its epoch budget rather than by the stopping
    rule (:func:`fg_analysis.nets.training.epoch_stop`): ``stopped == "epochs"``. Such a run's best epoch lies within
    the last ``patience`` epochs of the budget (else patience would have stopped it): it was still improving,
    and more epochs might have raised its accuracy. (An early stop has its best epoch at least ``patience``
    epochs before the budget; a diverged run was not limited by the budget.)"""
    return runs["stopped"] == "epochs"


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± 95% CI (``t_{0.975, seeds-1} · std / sqrt(seeds)``) of the test accuracy per (network, dataset,
    approach), with the mean wall time per run, the mean best epoch, how many runs the epoch budget ended
    (``budget_limited``, of ``seeds``; :func:`budget_limited`), the learning rate and its source."""
    runs = final_runs(frame)
    table = summarize(runs, "test_accuracy", GROUP_KEYS).rename(columns={"count": "seeds"})
    extra = runs.groupby(GROUP_KEYS, dropna=False).agg(wall_time_s=("wall_time_s", "mean"),
                                                       best_epoch=("best_epoch", "mean"),
                                                       budget_limited=("budget_limited", "sum"),
                                                       budget=("budget", "first"), lr=("lr", "first"),
                                                       lr_source=("lr_source", "first"), mode=("mode", "first"),
                                                       device=("device", "first")).reset_index()
    table = table.merge(extra, on=GROUP_KEYS)
    table["test_accuracy"] = [format_ci(m, c) for m, c in zip(table["mean"], table["ci"])]
    order = {label: i for i, label in enumerate(approach_order(table["approach"]))}
    table["order"] = table["approach"].map(order)
    return table.sort_values(["network", "dataset", "order"]).drop(columns="order").reset_index(drop=True)


def learning_curves(frame: pd.DataFrame, value: str = "val_accuracy") -> pd.DataFrame:
    """Mean ± CI of ``value`` per (network, dataset, approach, epoch) over the runs that reached that epoch
    (``count``): a run that stopped adds nothing after its last epoch (no value carried forward). ``runs`` is
    the approach's number of runs (where ``count < runs`` some have stopped) and ``budget_limited`` how many of
    them the epoch budget ended (:func:`budget_limited`)."""
    curves = summarize(frame, value, GROUP_KEYS + ["epoch"])
    runs = final_runs(frame).groupby(GROUP_KEYS, dropna=False).agg(
        runs=("seed", "size"), budget_limited=("budget_limited", "sum")).reset_index()
    return curves.merge(runs, on=GROUP_KEYS)


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
# external anchors

#: figures from elsewhere, cited, not rerun here: the MNIST test error (%) of Ren, Kornblith, Liao and Hinton,
#: "Scaling Forward Gradient With Local Losses" (ICLR 2023, arXiv 2210.03310), Table 3, for the network and data
#: of :data:`REN_2023_SETUP`; "FG, weight-perturbed" is Baydin et al.'s forward gradient
REN_2023 = {"BP": 2.66, "FA": 2.82, "DFA": 3.31, "FG, weight-perturbed": 9.25, "FG, activity-perturbed": 3.24}
REN_2023_SETUP = "a LocalMixer S/1/1 (one block, 256 channels, 272K parameters) on MNIST without augmentation"
#: our approach that corresponds to a row of :data:`REN_2023` (the others have no counterpart here)
REN_2023_OURS = {"BP": "BP", "FG, activity-perturbed": "FG"}


def anchors(frame: pd.DataFrame, network: str = "fc_w=256", dataset: str = "mnist") -> pd.DataFrame:
    """Our test errors beside Ren et al.'s (:data:`REN_2023`): one row per method of theirs (ours where an
    approach corresponds, :data:`REN_2023_OURS`), then one per approach of ours without a counterpart. Columns
    ``method, ren, ours, ours_ci, seeds``: test error in % (``100 · (1 − test accuracy)``, ours the mean ± 95% t
    interval over the seeds of ``network`` on ``dataset``)."""
    table = summary(frame[(frame["network"] == network) & (frame["dataset"] == dataset)]).set_index("approach")
    pairs = [(method, error, REN_2023_OURS.get(method)) for method, error in REN_2023.items()]
    pairs += [(label, np.nan, label) for label in table.index if label not in REN_2023_OURS.values()]
    rows = []
    for method, error, label in pairs:
        found = label in table.index
        rows.append({"method": method, "ren": error,
                     "ours": 100 * (1 - table.loc[label, "mean"]) if found else np.nan,
                     "ours_ci": 100 * table.loc[label, "ci"] if found else np.nan,
                     "seeds": int(table.loc[label, "seeds"]) if found else 0})
    return pd.DataFrame(rows, columns=["method", "ren", "ours", "ours_ci", "seeds"])


# ------------------------------------------------------------------------------------------------------------
# width: the stored paper-protocol runs of FC-256 and FC-1024


#: the stored paper-protocol presets, one per FC width on MNIST (the paper's third width, 4096, waits for a GPU)
WIDTH_PRESETS = {256: "mnist-fc", 1024: "mnist-fc1024"}
#: the forward-gradient approaches of the paper's protocol, in reading order
FG_APPROACHES = tuple(approach_label(*approach) for approach in PAPER_APPROACHES if approach[0] == "fg")
#: the width question's paired differences ``a − b`` of the test accuracy: every forward gradient's gap to BP,
#: then what 16 tangents gain over one, per aggregator
WIDTH_PAIRS = (*(("BP", label) for label in FG_APPROACHES), ("mean k=16", "FG"), ("projection k=16", "FG"))
#: the input shape of MNIST (one channel, 28 × 28)
MNIST_SHAPE = (1, 28, 28)


def stored_widths(*, cache: ResultsCache | None = None) -> dict[int, pd.DataFrame | None]:
    """``{width: the stored runs of its preset}`` for every width of :data:`WIDTH_PRESETS`, each as :func:`stored`
    with ``partial=True`` reads it (``None`` for a width with no run stored). Nothing is trained."""
    return {width: stored(RQ3Config.preset(name), cache=cache, partial=True) for width, name in WIDTH_PRESETS.items()}


def joined(frames: dict[int, pd.DataFrame | None]) -> pd.DataFrame | None:
    """The frames of :func:`stored_widths` in one (``None`` when no width has a run), with every record in
    ``attrs["records"]``."""
    found = [frame for frame in frames.values() if frame is not None]
    if not found:
        return None
    frame = pd.concat(found, ignore_index=True)
    frame.attrs = {"records": [record for part in found for record in part.attrs.get("records", [])]}
    return frame


def coverage(frames: dict[int, pd.DataFrame | None]) -> pd.DataFrame:
    """What is stored of each width of ``frames`` (:func:`stored_widths`): ``width, network, stored`` (runs),
    ``units`` (of its preset, :data:`WIDTH_PRESETS`) and ``seeds``, ``{approach: [seeds stored]}`` in reading
    order."""
    rows = []
    for width, frame in frames.items():
        runs = final_runs(frame) if frame is not None else pd.DataFrame(columns=["approach", "seed"])
        seeds = {label: sorted(int(s) for s in runs.loc[runs["approach"] == label, "seed"])
                 for label in approach_order(runs["approach"])}
        rows.append({"width": width, "network": model_key("fc", width), "stored": len(runs),
                     "units": len(RQ3Config.preset(WIDTH_PRESETS[width]).runs()), "seeds": seeds})
    return pd.DataFrame(rows, columns=["width", "network", "stored", "units", "seeds"])


def width_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (width, approach) stored: the test accuracy and the validation cross-entropy of the tested state (the
    best epoch's, :func:`fg_analysis.experiments.reference.best_validation_loss`), each mean ± 95% t half-width
    over the seeds: ``width, network, dataset, approach, seeds, accuracy, accuracy_ci, val_loss, val_loss_ci``."""
    keys = ["width", "network", "dataset", "approach"]
    runs = final_runs(frame).merge(best_validation_loss(frame).drop(columns="lr"),
                                   on=["network", "dataset", "approach", "seed"])
    accuracy = summarize(runs, "test_accuracy", keys).rename(columns={"mean": "accuracy", "ci": "accuracy_ci",
                                                                      "count": "seeds"})
    loss = summarize(runs, "val_loss", keys).rename(columns={"mean": "val_loss", "ci": "val_loss_ci"})
    table = accuracy[keys + ["seeds", "accuracy", "accuracy_ci"]].merge(loss[keys + ["val_loss", "val_loss_ci"]],
                                                                       on=keys)
    order = {label: i for i, label in enumerate(approach_order(table["approach"]))}
    return table.assign(_order=table["approach"].map(order)).sort_values(["width", "_order"]).drop(
        columns="_order").reset_index(drop=True)


def width_differences(frame: pd.DataFrame, pairs=WIDTH_PAIRS, *, widths=tuple(WIDTH_PRESETS),
                      dataset: str = "mnist") -> pd.DataFrame:
    """Per width of ``widths`` and pair ``(a, b)`` of ``pairs``: the test accuracy's ``a_s − b_s`` paired by seed
    (:func:`fg_analysis.metrics.paired_difference`; for ``a = BP`` the approach's gap to BP): ``width, network,
    a, b, difference, ci, seeds``; 0 seeds (no difference) where a side has no run at that width."""
    rows = []
    for width in widths:
        network = model_key("fc", width)
        for a, b in pairs:
            difference, ci, seeds = paired_difference(seed_values(frame, network, dataset, a),
                                                      seed_values(frame, network, dataset, b))
            rows.append({"width": width, "network": network, "a": a, "b": b, "difference": difference, "ci": ci,
                         "seeds": seeds})
    return pd.DataFrame(rows, columns=["width", "network", "a", "b", "difference", "ci", "seeds"])


def width_trends(frame: pd.DataFrame, pairs=WIDTH_PAIRS, *, widths=tuple(WIDTH_PRESETS),
                 dataset: str = "mnist") -> pd.DataFrame:
    """How each paired difference ``a − b`` of ``pairs`` changes from the narrowest of ``widths`` to the widest:
    per seed ``s``, ``(a_s − b_s)`` at the wide width minus the same at the narrow one, their mean ``change``, its
    95% t half-width ``ci`` over the ``seeds`` that have all four runs (:func:`fg_analysis.metrics.
    paired_difference`), and the ``verdict`` of "it grows with width" (``compare(change, ci, 0, 0)``: holds when
    the interval lies above 0, does not hold when below; inconclusive when it contains 0 or fewer than two seeds
    pair up). A seed fixes the data split at both widths; the widths' initial weights differ, which the per-seed
    spread carries (the seeds are independent, so the t interval holds either way). For ``a = BP`` the change is
    that of the approach's gap to BP; for ``(k = 16, FG)``, of what 16 tangents gain over one."""
    narrow, wide = min(widths), max(widths)
    rows = []
    for a, b in pairs:
        per_width = {width: (seed_values(frame, model_key("fc", width), dataset, a)
                             - seed_values(frame, model_key("fc", width), dataset, b)) for width in (narrow, wide)}
        change, ci, seeds = paired_difference(per_width[wide], per_width[narrow])
        rows.append({"a": a, "b": b, "narrow": narrow, "wide": wide, "change": change, "ci": ci, "seeds": seeds,
                     "verdict": compare(change, ci, 0.0, 0.0)})
    return pd.DataFrame(rows, columns=["a", "b", "narrow", "wide", "change", "ci", "seeds", "verdict"])


def fc_activity_dimension(width: int) -> int:
    """The activity dimension ``A`` of the paper's FC net 784 → w → w → 10 on MNIST, counted from the model's
    stage outputs (:func:`fg_analysis.nets.gradients.activity_dimension`): ``2w + 10``."""
    return activity_dimension(build_model("fc", input_shape=MNIST_SHAPE, n_classes=10, width=width), MNIST_SHAPE)


def width_cosines(frame: pd.DataFrame | None, *, widths=tuple(WIDTH_PRESETS)) -> pd.DataFrame:
    """Per width of ``widths`` and forward-gradient approach of the paper's protocol (:data:`FG_APPROACHES`):
    the measured cosine of the estimate to the BP gradient (column ``cosine``, in weight space, on the first batch
    of every epoch ≥ 1), averaged per run, then mean ± 95% t half-width over the ``seeds`` stored (NaN, 0 seeds:
    none yet), beside ``theory``, the closed form ``E[cos]`` of the same aggregator and k for Gaussian tangents in
    the activity space the tangents live in (:func:`fg_analysis.theory.expected_cosine`, dimension ``A``
    :func:`fg_analysis.nets.gradients.activity_dimension`, ``2w + 10``; the paper's Sec. III). Columns ``width,
    network, approach, aggregator, k, A, cosine, ci, seeds, theory``."""
    fg = frame[(frame["method"] == "fg") & (frame["epoch"] > 0)] if frame is not None else None
    per_run = (fg.groupby(["width", "approach", "seed"])["cosine"].mean().reset_index() if fg is not None
               else pd.DataFrame(columns=["width", "approach", "seed", "cosine"]))
    measured = summarize(per_run, "cosine", ["width", "approach"]).set_index(["width", "approach"])
    rows = []
    for width in widths:
        dimension = fc_activity_dimension(width)
        for method, aggregator, k in PAPER_APPROACHES:
            if method != "fg":
                continue
            label = approach_label(method, aggregator, k)
            found = (width, label) in measured.index
            rows.append({"width": width, "network": model_key("fc", width), "approach": label,
                         "aggregator": aggregator, "k": k, "A": dimension,
                         "cosine": measured.loc[(width, label), "mean"] if found else np.nan,
                         "ci": measured.loc[(width, label), "ci"] if found else np.nan,
                         "seeds": int(measured.loc[(width, label), "count"]) if found else 0,
                         "theory": float(theory.expected_cosine(aggregator, k, dimension))})
    return pd.DataFrame(rows, columns=["width", "network", "approach", "aggregator", "k", "A", "cosine", "ci",
                                       "seeds", "theory"])


# ------------------------------------------------------------------------------------------------------------
# scorecard


#: chance accuracy of the 10-class data sets
CHANCE = 0.1

#: the page anchors of the RQ3 page (``notebooks/rq3_networks.ipynb``) the scorecard rows link to
SECTIONS = {"accuracy": "rq3_networks#rq3-accuracy", "paper": "rq3_networks#rq3-paper"}

#: the page's "a beats b" comparisons, each paired by seed (:func:`comparison`), in reading order
COMPARISONS = (("BP", "FG"), ("projection k=16", "FG"), ("mean k=16", "FG"),
               *((f"projection k={k}", f"mean k={k}") for k in (2, 4, 16)), ("BP", "projection k=16"))
#: the scorecard's paired claims: (a, b) → (the claim "a beats b" in words, what the paper says)
CLAIMS = {("projection k=16", "FG"): ("projection with k = 16 beats FG (k = 1)", "yes (every network and data set)"),
          ("projection k=16", "mean k=16"): ("projection beats mean at k = 16", "yes"),
          ("BP", "projection k=16"): ("a gap to BP remains at k = 16", "yes, it shrinks with k")}


def learned(frame: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (network, dataset, approach): did the runs learn? Mean test accuracy above chance and above the
    untrained network's validation accuracy (epoch 0), beyond the 95% CI (:func:`fg_analysis.metrics.learned`)."""
    table = summary(frame) if table is None else table
    start = frame[frame["epoch"] == 0].groupby(["network", "dataset", "approach"])["val_accuracy"].mean()
    rows = []
    for row in table.itertuples():
        untrained = float(start.get((row.network, row.dataset, row.approach), CHANCE))
        rows.append({"network": row.network, "dataset": row.dataset, "approach": row.approach,
                     "untrained": untrained, "learned": above(row.mean, row.ci, max(CHANCE, untrained))})
    return pd.DataFrame(rows, columns=["network", "dataset", "approach", "untrained", "learned"])


def seed_values(frame: pd.DataFrame, network: str, dataset: str, approach: str,
                value: str = "test_accuracy") -> pd.Series:
    """One approach's ``value`` per seed (its run's last row) on one setup: the pairs of :func:`comparison`."""
    rows = frame[(frame["network"] == network) & (frame["dataset"] == dataset) & (frame["approach"] == approach)]
    return rows.sort_values("epoch").groupby("seed")[value].last()


def comparison(frame: pd.DataFrame, learned_table: pd.DataFrame, a: str, b: str, network: str, dataset: str
               ) -> dict:
    """"Approach ``a`` reaches a higher test accuracy than ``b``" on one setup, paired by seed: the mean
    ``difference`` of ``a_s − b_s`` over the ``seeds`` both have, its 95% t half-width ``ci``
    (:func:`fg_analysis.metrics.paired_difference`), and the ``verdict`` (``compare(difference, ci, 0, 0)``:
    holds when the interval lies above 0). Inconclusive when fewer than two seeds pair up, or when either did
    not learn (:func:`learned`; then nothing is compared: no difference, 0 seeds)."""
    ok = learned_table[(learned_table["network"] == network)
                       & (learned_table["dataset"] == dataset)].set_index("approach")["learned"]
    row = {"network": network, "dataset": dataset, "a": a, "b": b}
    if not (ok.get(a, False) and ok.get(b, False)):
        return {**row, "difference": np.nan, "ci": np.nan, "seeds": 0, "verdict": INCONCLUSIVE}
    difference, ci, seeds = paired_difference(seed_values(frame, network, dataset, a),
                                              seed_values(frame, network, dataset, b))
    return {**row, "difference": difference, "ci": ci, "seeds": seeds, "verdict": compare(difference, ci, 0.0, 0.0)}


def verdict(frame: pd.DataFrame, learned_table: pd.DataFrame, a: str, b: str, network: str, dataset: str) -> str:
    """The verdict of :func:`comparison` alone."""
    return comparison(frame, learned_table, a, b, network, dataset)["verdict"]


def comparisons(frame: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every pair of :data:`COMPARISONS` that a setup has, paired by seed (:func:`comparison`): one row each
    with ``network, dataset, a, b, difference, ci, seeds, verdict``."""
    table = summary(frame) if table is None else table
    ok = learned(frame, table)
    rows = [comparison(frame, ok, a, b, network, dataset)
            for (network, dataset), group in table.groupby(["network", "dataset"], sort=False)
            for a, b in COMPARISONS if {a, b} <= set(group["approach"])]
    return pd.DataFrame(rows, columns=["network", "dataset", "a", "b", "difference", "ci", "seeds", "verdict"])


def difference_text(row) -> str:
    """A paired difference as text: ``"0.0340 ± 0.0120 (3 seeds)"`` (no ± with one seed; "—" with none)."""
    if not row["seeds"]:
        return "—"
    return f"{format_ci(row['difference'], row['ci'], 4)} ({row['seeds']} seed{'s' if row['seeds'] != 1 else ''})"


def scorecard(frame: pd.DataFrame, config: RQ3Config | None = None, *, record: str = "", setup: str | None = None,
              section: str = "accuracy", suffix: str = "") -> pd.DataFrame:
    """The RQ3 claims checked on ``frame`` (the paper's MNIST FC / ResNet / ViT results, in our setting):
    "BP ≥ 90%" (on the FC nets) from the t interval over seeds of its test accuracy; "a beats b" paired by seed
    (:func:`comparison`: the per-seed differences' mean and t interval, shown as "ours"), for the pairs whose
    approaches have runs. A comparison with a run that did not learn (:func:`learned`) is inconclusive, as is a
    claim on a single seed (no interval; its "ours" says so)."""
    table = summary(frame)
    ok = learned(frame, table)
    paired = comparisons(frame, table).set_index(["network", "dataset", "a", "b"])
    rows = []
    setup = _setup_note(frame, config) if setup is None else setup
    add = lambda text, paper, ours, found: rows.append(claim(  # noqa: E731
        "RQ3", text + suffix, paper, ours, found, setup, section=SECTIONS[section], record=record))
    for (network, dataset), group in table.groupby(["network", "dataset"], sort=False):
        name = f"{network} on {dataset}"
        bp = group[group["approach"] == "BP"]
        fits = ok[(ok["network"] == network) & (ok["dataset"] == dataset)].set_index("approach")["learned"]
        if len(bp) and network.startswith("fc_"):
            mean, ci = float(bp["mean"].iloc[0]), float(bp["ci"].iloc[0])
            add(f"BP trains {name} to a high test accuracy (≥ 90%)", "high (BP is the paper's reference)",
                format_ci(mean, ci) + _one_seed(int(bp["seeds"].iloc[0])),
                compare(mean, ci, 0.9, 0.0) if fits.get("BP", False) else INCONCLUSIVE)
        for (a, b), (text, paper) in CLAIMS.items():
            if (network, dataset, a, b) in paired.index:
                row = paired.loc[(network, dataset, a, b)]
                add(f"{text} on {name}", paper, f"paired Δ {difference_text(row)}" + _one_seed(int(row["seeds"])),
                    row["verdict"])
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))


def _one_seed(seeds: int) -> str:
    """What a claim's "ours" adds when it rests on one seed: no interval, so no verdict."""
    return "; one seed stored: no interval, inconclusive until more are" if seeds == 1 else ""


def _setup_note(frame: pd.DataFrame, config: RQ3Config | None) -> str:
    seeds = frame["seed"].nunique()
    epochs = int(frame["epoch"].max())
    modes = "/".join(sorted(frame["mode"].unique())) if "mode" in frame else "?"
    datasets = "/".join(sorted(frame["dataset"].unique()))
    limit = config.max_train if config is not None else None
    train = f" (first {limit} training images)" if limit else ""
    return (f"{datasets}{train}, {seeds} seeds, ≤ {epochs} epochs, {modes} JVPs "
            "(paper: MNIST/CIFAR-10, all training images, ≤ 200 epochs, simulated JVPs)")


def scorecard_rows(preset: str = "quick", *, device: str = "cpu", cache: ResultsCache | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """Run (or read from the cache) the preset's sweep, as the RQ3 notebook does, and return its claims; then,
    read-only, the claims on the stored paper-protocol runs of every width (:data:`WIDTH_PRESETS`,
    :func:`stored_rows`; none for a width with none stored)."""
    config = RQ3Config.preset(preset, seed=seed)
    rows = scorecard(run(config, device=device, cache=cache, progress=False), config)
    if preset != "quick":
        return rows
    return pd.concat([rows, *(stored_rows(RQ3Config.preset(name), cache=cache) for name in WIDTH_PRESETS.values())],
                     ignore_index=True)


def stored_setup(frame: pd.DataFrame, config: RQ3Config) -> str:
    """How the stored runs of :func:`stored` (``partial=True``) differ from the paper, with how many are stored."""
    seeds = sorted(frame["seed"].unique().tolist())
    devices = "/".join(sorted({r.get("environment", {}).get("device", "?") for r in frame.attrs.get("records", [])}))
    return (f"stored {devices} runs of the paper's protocol, {frame.attrs.get('stored', '?')} of "
            f"{frame.attrs.get('units', '?')} so far (seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, seeds))} of {', '.join(map(str, config.seeds))}): all training images, ≤ "
            f"{config.epochs} epochs, patience {config.patience}, the paper's rates; JVPs from the BP gradient "
            "(oracle: the paper's own default, \"simulated\")")


def stored_rows(config: RQ3Config, *, cache: ResultsCache | None = None) -> pd.DataFrame:
    """The RQ3 claims on ``config``'s stored runs (:func:`stored` with ``partial=True``: whatever seeds and
    approaches are stored), with the records they rest on; no rows (and nothing trained) when none is stored.
    A claim appears only where its approaches have runs; with one seed stored it has no interval and is
    inconclusive."""
    frame = stored(config, cache=cache, partial=True)
    if frame is None:
        return pd.DataFrame(columns=list(SCORECARD_COLUMNS))
    return scorecard(frame, config, record=record_text(frame.attrs["records"]), setup=stored_setup(frame, config),
                     section="paper", suffix=" (stored paper-protocol runs)")


# ------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``python -m fg_analysis rq3 --preset mnist-fc --seeds 0 --publish``: train (or read) the preset's runs and
    print the summary table; the LAST line is one JSON object (:func:`json_summary`)."""
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
