"""The learning-rate search on Optuna: studies stored in SQLite, trials on any executor, choices promoted by hand.

The paper (Flügel et al., arXiv 2410.17764) tuned every constant SGD rate by a search over ``log10(lr)`` in
[-6, 0] with 100 evaluations per setting, run by the reference implementation with an evolutionary optimizer
(Propulate) over MPI ranks, with a surrogate model that stopped hopeless runs early; as the final rate it took,
among the evaluations within 5 % of the best loss, the rate closest to their mean. Here:

* one **study** per setting (:class:`SearchSetting`: network, data set, gradient approach, epochs, seed, ...),
  minimizing the best validation loss of a training run over ``log10_lr`` uniform in [-6, 0] (Optuna's
  ``FloatDistribution(-6, 0)``), with Optuna's TPE sampler (seeded; 10 random start-up trials) and a **budget**
  of finished trials (default 100, as in the paper);
* every **trial** is a training run of the package (:func:`run_trial`: :func:`fg_analysis.nets.training.train` on
  :func:`fg_analysis.nets.models.build_model` with data from :func:`fg_analysis.nets.data.load_dataset` and a
  :class:`fg_analysis.nets.gradients.GradientSource`; plain SGD, the paper's early stopping), handed to a worker of
  any executor by ask/tell (:mod:`fg_analysis.runs.sweep`: inline, a process pool, MPI ranks): as many trials run at
  once as the executor has workers;
* **pruning** in place of the reference's surrogate: Optuna's :class:`~optuna.pruners.MedianPruner` on the
  validation loss per epoch (5 start-up trials, 1 warm-up epoch). The worker checks it at every epoch against a
  snapshot of the study's finished trials taken when the trial was handed out, so workers never write to the
  study; only the process that runs the search does (one writer per SQLite file, safe on a shared file system);
* a **diverging** trial (NaN loss or a loss ≥ 10, where :func:`~fg_analysis.nets.training.train` aborts) is recorded
  as a *pruned* trial with ``stopped = "diverged"`` (so TPE learns that the region is bad), never an exception
  that ends the study; a trial whose code raises is a *failed* trial with its error (three failures in a row
  stop the search with that error); a trial interrupted by a kill is marked failed (``interrupted``) when the
  study is next opened, and its rate is tried again first;
* the **choice** (:func:`choose`): among the complete trials whose best validation loss is within 5 % of the
  best one, the rate whose ``log10`` is closest to the mean of their ``log10`` rates (the mean in log space,
  the space the search samples in);
* the study lives in ``results/studies/<setting name>.sqlite3`` (``--studies`` or ``$FG_STUDIES``), so a
  search resumes where it stopped (rerun the same command; a larger ``--trials`` extends it) and can be
  inspected (``optuna.load_study(study_name=name, storage="sqlite:///results/studies/<name>.sqlite3")``,
  ``python -m fg_analysis lr-search show``);
* chosen rates enter the shipped table ``fg_analysis/experiments/lrs/searched.csv`` only by an explicit
  ``python -m fg_analysis lr-search promote``, with their provenance (:data:`SEARCHED_COLUMNS`, described in
  ``lrs/SEARCHED.md``).

Commands::

    python -m fg_analysis lr-search run --dataset digits --trials 100 --epochs 20          # the 8 approaches
    python -m fg_analysis lr-search run --dataset digits --approach projection:16 --executor processes:4
    mpiexec -n 9 python -m mpi4py.futures -m fg_analysis lr-search run --dataset mnist1d --executor mpi
    python -m fg_analysis lr-search show
    python -m fg_analysis lr-search promote                 # every finished study in results/studies
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import contextlib
import dataclasses
import fcntl
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from fg_analysis.experiments import learning_rates
from fg_analysis.jvp import MODES
from fg_analysis.nets.approaches import PAPER_APPROACHES
from fg_analysis.nets.data import load_dataset
from fg_analysis.nets.gradients import GradientSource
from fg_analysis.nets.guides import gradient_source
from fg_analysis.nets.models import build_model
from fg_analysis.nets.training import evaluate, train
from fg_analysis.runs.env import git_commit, resolve_device, torch_threads
from fg_analysis.runs.paths import REPOSITORY
from fg_analysis.runs.sweep import (
    InlineExecutor,
    SweepError,
    add_executor_argument,
    executor_from,
    executor_kind,
    run_on_worker,
    worker_count,
)

__all__ = ["SEARCH_RANGE", "SEARCHED_COLUMNS", "SEARCHED_CSV", "STUDIES", "TOLERANCE",
           "SearchError", "SearchSetting", "SearchTrial", "choose", "main", "make_pruner", "open_study", "promote",
           "promoted_row", "run_trial", "search", "study_path", "summary"]

#: the paper's search range of log10(lr)
SEARCH_RANGE = (-6.0, 0.0)
#: trials within this fraction of the best loss take part in the final choice (the reference's 5 %)
TOLERANCE = 0.05
#: where studies are stored by default (``$FG_STUDIES`` overrides)
STUDIES = REPOSITORY / "results" / "studies"
#: the shipped table of our searched rates
SEARCHED_CSV = Path(__file__).resolve().parent / "lrs" / "searched.csv"
#: columns of ``lrs/searched.csv``: the lookup keys and the rate, then the provenance (see ``lrs/SEARCHED.md``)
SEARCHED_COLUMNS = ("model", "dataset", "gradient_approach", "k", "lr", "val_loss", "at_edge", "search", "range",
                    "choice", "budget", "complete", "pruned", "failed", "epochs", "patience", "batch_size",
                    "max_train", "seed", "mode", "pruner", "device", "study", "searched", "commit")
#: consecutive failed trials after which a search stops
MAX_CONSECUTIVE_FAILURES = 3
PARAM = "log10_lr"


class SearchError(RuntimeError):
    """A search that cannot run or stopped (one-line message)."""


@dataclass(frozen=True)
class SearchSetting:
    """One search: a network on a data set with one gradient approach, and how every trial trains.

    ``max_train`` keeps only that many training samples (smoke runs); ``mode`` is the JVP mode
    (:data:`fg_analysis.jvp.MODES`; ``"oracle"`` by default: the JVPs formed from the BP gradient, the same values
    as forward mode and faster on a CPU; the paper's "simulated" forward gradient).
    """

    model: str = "fc"
    width: int | None = 256
    dataset: str = "digits"
    method: str = "fg"
    aggregator: str = "mean"
    k: int = 1
    epochs: int = 20
    patience: int = 10
    batch_size: int = 64
    seed: int = 0
    mode: str = "oracle"
    max_train: int | None = None

    def __post_init__(self):
        learning_rates.approach(self.method, self.aggregator, self.k)  # bp, fg-mean or frog; raises otherwise
        if self.method == "bp" and (self.k != 1 or self.aggregator != "mean"):
            raise ValueError("a BP setting has k=1 and aggregator='mean'")

    @property
    def network(self) -> str:
        """The tables' model name (``"fc_w=256"``, ``"resnet18"``, ``"vit"``)."""
        return learning_rates.model_key(self.model, self.width)

    @property
    def approach(self) -> str:
        """The tables' ``gradient_approach``: ``"bp"``, ``"fg-mean"`` or ``"frog"``."""
        return learning_rates.approach(self.method, self.aggregator, self.k)

    @property
    def name(self) -> str:
        """The study's name (and file name): every field that changes what a trial computes.

        >>> SearchSetting(dataset="digits", aggregator="projection", k=16).name
        'fc_w=256-digits-frog-k16-e20-p10-b64-s0-oracle'
        """
        k = "" if self.method == "bp" else f"-k{self.k}"
        subset = "" if self.max_train is None else f"-n{self.max_train}"
        return (f"{self.network}-{self.dataset}-{self.approach}{k}-e{self.epochs}-p{self.patience}-"
                f"b{self.batch_size}-s{self.seed}-{self.mode}{subset}")


@dataclass(frozen=True)
class SearchTrial:
    """One trial as a worker gets it: the setting, the rate and the study's trial number."""

    setting: SearchSetting
    lr: float
    number: int


# ------------------------------------------------------------------------------------------------------------
# one trial (on a worker)


def make_pruner(name: str = "median"):
    """``"median"``: Optuna's MedianPruner (5 start-up trials, 1 warm-up epoch); ``"none"``: no pruning."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SearchError(f"unknown pruner {name!r}; use 'median' or 'none'")


class _EpochWatch:
    """A gradient source that passes every call to ``source`` and, at the first step of each epoch, reports the
    validation loss of the epoch just finished to a pruning trial (raising ``optuna.TrialPruned`` when the
    pruner says so). :func:`fg_analysis.nets.training.train` calls its source once per batch and evaluates nothing
    in between, so the model seen here at that step is the one ``train`` logged for the epoch."""

    def __init__(self, source, data, steps_per_epoch: int, trial):
        self.source, self.data, self.steps, self.trial = source, data, steps_per_epoch, trial
        self.label = source.label
        self.calls, self.values = 0, {}

    def __call__(self, model, x, y, *, generator=None):
        if self.calls and self.calls % self.steps == 0 and self.trial is not None:
            import optuna

            epoch = self.calls // self.steps
            loss, _ = evaluate(model, self.data.x_val, self.data.y_val)
            self.values[epoch] = loss
            if math.isfinite(loss):
                self.trial.report(loss, epoch)
                if self.trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {epoch}")
        self.calls += 1
        return self.source(model, x, y, generator=generator)


def _pruning_trial(pruner, finished):
    """A trial in an in-memory copy of the study's finished trials, for the pruner's decisions on a worker."""
    if pruner is None:
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", pruner=pruner, sampler=optuna.samplers.RandomSampler(0))
    study.add_trials(finished)
    return study.ask()


def run_trial(trial: SearchTrial, *, device: str = "cpu", pruner=None, finished: Sequence = ()) -> dict:
    """Train one trial and say how it went; runs on a worker (module-level, picklable arguments).

    ``pruner`` and ``finished`` (the study's finished ``FrozenTrial`` objects) prune the run after an epoch whose
    validation loss the pruner finds hopeless. Returns ``lr``, ``values`` (validation loss per epoch ≥ 1),
    ``best_val_loss``, ``best_val_accuracy``, ``best_epoch``, ``stopped`` (``"epochs"``, ``"early-stop"``,
    ``"diverged"`` or ``"pruned"``), ``epochs_run``, ``wall_time_s``.
    """
    import optuna

    setting, start = trial.setting, time.perf_counter()
    resolved = resolve_device(device)
    data = load_dataset(setting.dataset, seed=setting.seed, device=resolved)
    net = build_model(setting.model, input_shape=data.input_shape, n_classes=data.n_classes, width=setting.width,
                      seed=setting.seed, device=resolved)
    if setting.method in learning_rates.GUIDED_APPROACHES:
        source = gradient_source(setting.method, setting.k, net, data.input_shape, data.n_classes, mode=setting.mode,
                                 head_lr=learning_rates.head_rate(), seed=setting.seed)
    else:
        source = GradientSource(setting.method, k=setting.k, aggregator=setting.aggregator, mode=setting.mode)
    n_train = len(data.y_train) if setting.max_train is None else min(setting.max_train, len(data.y_train))
    watch = _EpochWatch(source, data, math.ceil(n_train / setting.batch_size), _pruning_trial(pruner, finished))
    generator = torch.Generator(device=resolved).manual_seed(setting.seed)
    try:
        result = train(net, data, watch, lr=trial.lr, batch_size=setting.batch_size, epochs=setting.epochs,
                       patience=setting.patience, measure_cosine=False, max_train=setting.max_train,
                       generator=generator, progress=False)
    except optuna.TrialPruned:
        values = dict(watch.values)
        finite = [v for v in values.values() if math.isfinite(v)]
        return {"lr": trial.lr, "values": values, "best_val_loss": min(finite) if finite else math.inf,
                "best_val_accuracy": math.nan, "best_epoch": min(values, key=values.get) if finite else 0,
                "stopped": "pruned", "epochs_run": max(values, default=0), "wall_time_s": time.perf_counter() - start}
    history = result.history[result.history["epoch"] > 0]
    values = {int(e): float(v) for e, v in zip(history["epoch"], history["val_loss"])}
    finite = history[np.isfinite(history["val_loss"])]
    return {"lr": trial.lr, "values": values,
            "best_val_loss": float(finite["val_loss"].min()) if len(finite) else math.inf,
            "best_val_accuracy": float(finite["val_accuracy"].max()) if len(finite) else math.nan,
            "best_epoch": int(result.best_epoch), "stopped": result.stopped, "epochs_run": int(len(history)),
            "wall_time_s": time.perf_counter() - start}


# ------------------------------------------------------------------------------------------------------------
# the study (in the process that runs the search)


def _studies(folder: str | os.PathLike | None) -> Path:
    return Path(folder or os.environ.get("FG_STUDIES") or STUDIES)


def study_path(setting: SearchSetting, folder: str | os.PathLike | None = None) -> Path:
    """The SQLite file of ``setting``'s study."""
    return _studies(folder) / f"{setting.name}.sqlite3"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:

    with open(path.with_suffix(".lock"), "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SearchError(f"the study {path.stem} is being searched by another process (lock {handle.name}); "
                              "wait for it, or search another setting") from None
        yield


def open_study(setting: SearchSetting, folder: str | os.PathLike | None = None, *, pruner: str = "median"):
    """Create or load ``setting``'s study (SQLite), checking that a loaded one was made for this setting."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = study_path(setting, folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(storage=f"sqlite:///{path}", study_name=setting.name, direction="minimize",
                                    load_if_exists=True, pruner=make_pruner(pruner))
    except OSError as error:
        raise SearchError(f"cannot write the study under {path.parent}: {error.strerror or error} "
                          "(pass --studies or set FG_STUDIES to a writable folder)") from None
    stored = study.user_attrs.get("setting")
    if stored is None:
        study.set_user_attr("setting", dataclasses.asdict(setting))
        study.set_user_attr("range", list(SEARCH_RANGE))
        study.set_user_attr("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    elif stored != dataclasses.asdict(setting):
        raise SearchError(f"{path} holds a study of another setting ({stored}); remove it or use another folder")
    return study


def _counted(study) -> list:
    """The trials that count towards the budget: complete, pruned, and failed (not interrupted)."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))]


def _recover(study) -> list[float]:
    """Mark trials left running by a killed search as failed (``interrupted``); their rates, to try again."""
    from optuna.trial import TrialState

    again = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
        study.tell(trial.number, state=TrialState.FAIL)
        if PARAM in trial.params:
            again.append(float(trial.params[PARAM]))
    return again


def _record(study, trial, outcome: dict, placement: dict) -> str:
    """Tell the study a trial's outcome; returns its state's name."""
    from optuna.trial import TrialState

    for epoch, value in sorted(outcome["values"].items()):
        if math.isfinite(value):
            trial.report(value, int(epoch))
    for key in ("lr", "stopped", "best_val_accuracy", "best_epoch", "epochs_run", "wall_time_s"):
        value = outcome[key]
        trial.set_user_attr(key, None if isinstance(value, float) and not math.isfinite(value) else value)
    trial.set_user_attr("placement", placement)
    value = outcome["best_val_loss"]
    if outcome["stopped"] in ("pruned", "diverged") or not math.isfinite(value):
        study.tell(trial, state=TrialState.PRUNED)
        return "pruned"
    study.tell(trial, value)
    return "complete"


def search(setting: SearchSetting, *, trials: int = 100, executor=None, device: str = "cpu",
           studies: str | os.PathLike | None = None, pruner: str = "median", enqueue: Sequence[float] = (),
           progress: bool = True):
    """Run ``setting``'s study until ``trials`` trials are finished (complete, pruned or failed); returns it.

    Resumes a stored study; trials run on ``executor`` (``None``: here, one after another), as many at once as it
    has workers. ``enqueue`` gives ``log10(lr)`` values to try first. Raises :class:`SearchError` (one line) when
    the study cannot be written, when another process searches it, when a worker dies, or after
    :data:`MAX_CONSECUTIVE_FAILURES` failed trials in a row — every finished trial is stored by then.
    """
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    resolved = resolve_device(device)
    path = study_path(setting, studies)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path):
        study = open_study(setting, studies, pruner=pruner)
        for log10_lr in [*_recover(study), *enqueue]:
            study.enqueue_trial({PARAM: float(log10_lr)})
        # a fresh seed per resumption: the random start-up draws of a resumed search are not the first ones again
        study.sampler = optuna.samplers.TPESampler(seed=setting.seed + len(study.trials), n_startup_trials=10)
        study.set_user_attr("budget", max(trials, study.user_attrs.get("budget", 0)))
        study.set_user_attr("pruner", pruner)
        pruning = make_pruner(pruner) if pruner != "none" else None
        distribution = {PARAM: FloatDistribution(*SEARCH_RANGE)}
        pool = executor if executor is not None else InlineExecutor()
        width = worker_count(executor)
        done = len(_counted(study))
        bar = tqdm(total=trials, initial=min(done, trials), desc=f"lr search {setting.name}", disable=not progress,
                   mininterval=2.0)
        in_flight: dict = {}
        failures = 0
        threads = torch_threads(1 if executor is None and resolved.type == "cpu" else None)
        try:
            with threads:
                while True:
                    while len(in_flight) < width and done + len(in_flight) < trials:
                        trial = study.ask(distribution)
                        unit = SearchTrial(setting, float(10.0 ** trial.params[PARAM]), trial.number)
                        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                        future = pool.submit(run_on_worker, run_trial, unit, device=str(resolved), pruner=pruning,
                                             finished=finished)
                        in_flight[future] = trial
                    if not in_flight:
                        break
                    ready, _ = futures.wait(in_flight, return_when=futures.FIRST_COMPLETED)
                    for future in ready:
                        trial = in_flight.pop(future)
                        try:
                            outcome, placement = future.result()
                        except futures.BrokenExecutor as error:
                            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
                            study.tell(trial, state=TrialState.FAIL)
                            raise SearchError(f"a worker died during trial {trial.number} of {setting.name} "
                                              f"({type(error).__name__}); the study keeps every finished "
                                              f"trial: rerun to resume ({path})") from None
                        except Exception as error:  # noqa: BLE001 - a failed trial, recorded
                            trial.set_user_attr("error", f"{type(error).__name__}: {' '.join(str(error).split())}")
                            study.tell(trial, state=TrialState.FAIL)
                            failures += 1
                            done += 1
                            bar.update()
                            if failures >= MAX_CONSECUTIVE_FAILURES:
                                raise SearchError(f"{failures} trials of {setting.name} failed in a row; last: "
                                                  f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
                                                  ) from None
                            continue
                        _record(study, trial, outcome, placement)
                        failures = 0
                        done += 1
                        bar.update()
        finally:
            bar.close()
            for future in in_flight:
                future.cancel()  # their trials stay RUNNING in the study: the next search marks them interrupted
    return study


# ------------------------------------------------------------------------------------------------------------
# the choice and the shipped table


def choose(study, tolerance: float = TOLERANCE) -> dict:
    """The reference's final choice on the complete trials of ``study``: among those whose loss is within
    ``tolerance`` (5 %) of the best, the one whose log10(lr) is closest to the mean of their log10(lr).

    Returns ``lr``, ``val_loss`` (that trial's), ``best_val_loss``, ``candidates`` (how many were within 5 %),
    ``trial`` (its number) and ``at_edge`` (the choice within 0.25 decades of an end of the range).
    """
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)]
    if not complete:
        raise SearchError(f"the study {study.study_name} has no complete trial to choose from")
    best = min(t.value for t in complete)
    candidates = [t for t in complete if t.value <= best + tolerance * abs(best)]
    centre = float(np.mean([t.params[PARAM] for t in candidates]))
    chosen = min(candidates, key=lambda t: (abs(t.params[PARAM] - centre), t.number))
    exponent = float(chosen.params[PARAM])
    return {"lr": float(10.0 ** exponent), "val_loss": float(chosen.value), "best_val_loss": float(best),
            "candidates": len(candidates), "trial": chosen.number,
            "at_edge": bool(min(exponent - SEARCH_RANGE[0], SEARCH_RANGE[1] - exponent) < 0.25)}


def summary(study) -> dict:
    """Counts of the study's trials by state, its budget and setting."""
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {"study": study.study_name, "budget": study.user_attrs.get("budget"),
            "finished": len(_counted(study)), "complete": states.count(TrialState.COMPLETE),
            "pruned": states.count(TrialState.PRUNED),
            "failed": sum(t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")
                          for t in study.get_trials(deepcopy=False)),
            "interrupted": sum(bool(t.user_attrs.get("interrupted")) for t in study.get_trials(deepcopy=False)),
            "running": states.count(TrialState.RUNNING)}


def promoted_row(study) -> dict:
    """The row of ``lrs/searched.csv`` for a study: the choice and its provenance."""
    setting = SearchSetting(**study.user_attrs["setting"])
    chosen, counts = choose(study), summary(study)
    devices = sorted({t.user_attrs.get("placement", {}).get("device", "?") for t in study.get_trials(deepcopy=False)
                      if "placement" in t.user_attrs})
    ends = [t.datetime_complete for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    return {"model": setting.network, "dataset": setting.dataset, "gradient_approach": setting.approach,
            "k": math.nan if setting.method == "bp" else float(setting.k), "lr": chosen["lr"],
            "val_loss": chosen["val_loss"], "at_edge": chosen["at_edge"], "search": "optuna-tpe",
            "range": f"10^[{SEARCH_RANGE[0]:g},{SEARCH_RANGE[1]:g}]",
            "choice": f"within 5% of best ({chosen['candidates']} trials): closest to their log10 mean",
            "budget": counts["finished"], "complete": counts["complete"], "pruned": counts["pruned"],
            "failed": counts["failed"], "epochs": setting.epochs, "patience": setting.patience,
            "batch_size": setting.batch_size, "max_train": setting.max_train, "seed": setting.seed,
            "mode": setting.mode, "pruner": study.user_attrs.get("pruner", "median"), "device": "/".join(devices),
            "study": study.study_name, "searched": (max(ends).strftime("%Y-%m-%d") if ends
                                                   else time.strftime("%Y-%m-%d")),
            "commit": git_commit()}


def _study_files(folder: Path, names: Sequence[str]) -> list[Path]:
    if names:
        files = [folder / (name if name.endswith(".sqlite3") else f"{name}.sqlite3") for name in names]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise SearchError(f"no stored study {', '.join(missing)}")
        return files
    files = sorted(folder.glob("*.sqlite3"))
    if not files:
        raise SearchError(f"no stored studies under {folder}; run `python -m fg_analysis lr-search run ...` first")
    return files


def _load(path: Path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=path.stem, storage=f"sqlite:///{path}")


def promote(names: Sequence[str] = (), *, studies: str | os.PathLike | None = None,
            table: str | os.PathLike = SEARCHED_CSV, partial: bool = False) -> pd.DataFrame:
    """Write the choices of stored studies (all under ``studies``, or those ``names``) into ``table``, replacing
    rows of the same (model, dataset, gradient_approach, k); returns the promoted rows.

    A study with fewer finished trials than its budget is refused unless ``partial``.
    """
    rows = []
    for path in _study_files(_studies(studies), names):
        study = _load(path)
        counts = summary(study)
        if counts["finished"] < (counts["budget"] or 0) and not partial:
            raise SearchError(f"{path.stem} has {counts['finished']} of its {counts['budget']} trials; finish it "
                              "(rerun its search) or pass --partial")
        rows.append(promoted_row(study))
    new = pd.DataFrame(rows, columns=list(SEARCHED_COLUMNS))
    table = Path(table)
    old = learning_rates.read_table(table) if table.is_file() else pd.DataFrame(columns=list(SEARCHED_COLUMNS))
    keys = ["model", "dataset", "gradient_approach", "k"]

    def key_of(frame):
        return [(m, d, a, "" if pd.isna(k) else float(k)) for m, d, a, k in frame[keys].itertuples(index=False)]

    replaced = set(key_of(new))
    old = old[[key not in replaced for key in key_of(old)]] if len(old) else old
    merged = pd.concat([frame for frame in (old.reindex(columns=list(SEARCHED_COLUMNS)), new) if len(frame)],
                       ignore_index=True)
    merged = merged.sort_values(["model", "dataset", "gradient_approach", "k"], na_position="first")
    merged.to_csv(table, index=False)
    return new


# ------------------------------------------------------------------------------------------------------------
# command line


APPROACH_HELP = ("bp, fg, mean:K or projection:K; the guided tangents of fg_analysis.nets.guides: guided:K (the heads' "
                 "guesses + K random), output:K (the output guess + K random) or guess (the guesses alone)")


def _approach(text: str) -> tuple[str, str, int]:
    """``bp``, ``fg`` (k = 1 mean), ``mean:K``, ``projection:K``, ``guided:K``, ``output:K``, ``guess`` →
    (method, aggregator, k)."""
    name, _, k = text.partition(":")
    if name == "bp" and not k:
        return "bp", "mean", 1
    if name == "fg" and not k:
        return "fg", "mean", 1
    if name == "guess" and not k:
        return "guess", "projection", 0
    if name in ("mean", "projection") and k.isdigit() and int(k) >= 1:
        return "fg", name, int(k)
    if name in ("guided", "output") and k.isdigit():
        return name, "projection", int(k)
    raise argparse.ArgumentTypeError(f"bad approach {text!r}; use {APPROACH_HELP}")


def _run_command(args) -> int:
    approaches = args.approach or list(PAPER_APPROACHES)
    batch = args.batch_size or (64 if args.model in ("fc", "cnn") else 128)
    width = {"fc": args.width or 256, "cnn": args.width}.get(args.model)
    settings = [SearchSetting(model=args.model, width=width,
                              dataset=args.dataset, method=m, aggregator=a, k=k, epochs=args.epochs,
                              patience=args.patience, batch_size=batch, seed=args.seed, mode=args.mode,
                              max_train=args.max_train) for m, a, k in approaches]
    report = {}
    with executor_from(args.executor) as executor:
        for setting in settings:
            study = search(setting, trials=args.trials, executor=executor, device=args.device,
                           studies=args.studies, pruner=args.pruner, progress=not args.no_progress)
            counts = summary(study)
            try:
                chosen = choose(study)
            except SearchError:
                chosen = {"lr": None, "val_loss": None}
            print(f"{setting.name}: {counts['finished']} trials ({counts['complete']} complete, {counts['pruned']} "
                  f"pruned, {counts['failed']} failed); choice lr={chosen['lr']} (val loss {chosen['val_loss']}) "
                  f"[{executor_kind(executor)}]")
            report[setting.name] = {**counts, "lr": chosen["lr"], "val_loss": chosen["val_loss"],
                                    "path": str(study_path(setting, args.studies))}
    print(json.dumps({"studies": report}))
    return 0


def _show_command(args) -> int:
    rows = []
    for path in _study_files(_studies(args.studies), args.names):
        study = _load(path)
        try:
            chosen = choose(study)
        except (SearchError, KeyError):
            chosen = {"lr": math.nan, "val_loss": math.nan, "candidates": 0}
        rows.append({**summary(study), "lr": chosen["lr"], "val_loss": chosen["val_loss"],
                     "within_5pct": chosen["candidates"]})
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60):
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


def _promote_command(args) -> int:
    rows = promote(args.names, studies=args.studies, table=args.table, partial=args.partial)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(rows[["model", "dataset", "gradient_approach", "k", "lr", "val_loss", "budget", "epochs", "seed",
                    "searched", "commit"]].to_string(index=False))
    print(f"wrote {len(rows)} rows into {args.table}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fg_analysis lr-search",
                                     description="Learning-rate search on Optuna (studies in results/studies).")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run (or resume) the search of one or more settings")
    run.add_argument("--model", default="fc", choices=("fc", "resnet18", "vit", "cnn"))
    run.add_argument("--width", type=int, default=None, help="FC width (default 256), CNN base channels (default 8)")
    run.add_argument("--dataset", default="digits")
    run.add_argument("--approach", action="append", type=_approach, default=[],
                     help=f"{APPROACH_HELP} (repeatable; default: BP, FG, mean and projection with k in {{2, 4, 16}})")
    run.add_argument("--trials", type=int, default=100, help="budget: finished trials per setting (default 100)")
    run.add_argument("--epochs", type=int, default=20)
    run.add_argument("--patience", type=int, default=10)
    run.add_argument("--batch-size", type=int, default=None, help="default 64 (FC), 128 (ResNet-18, ViT)")
    run.add_argument("--seed", type=int, default=0)

    run.add_argument("--mode", default="oracle", choices=MODES, help="JVP mode (default oracle: from the BP "
                                                                      "gradient, the paper's simulated FG)")
    run.add_argument("--max-train", type=int, default=None, help="train on the first N samples only (smoke runs)")
    run.add_argument("--pruner", default="median", choices=("median", "none"))
    run.add_argument("--device", default="cpu", help="'cpu', 'cuda' or 'auto'")
    run.add_argument("--no-progress", action="store_true")
    add_executor_argument(run)
    show = commands.add_parser("show", help="list stored studies: trials by state and the current choice")
    show.add_argument("names", nargs="*", help="study names (default: all)")
    promote_parser = commands.add_parser("promote", help="write the choices of stored studies into lrs/searched.csv")
    promote_parser.add_argument("names", nargs="*", help="study names (default: all under --studies)")
    promote_parser.add_argument("--table", default=str(SEARCHED_CSV))
    promote_parser.add_argument("--partial", action="store_true", help="also promote studies short of their budget")
    for sub in (run, show, promote_parser):
        sub.add_argument("--studies", default=None, help="folder of the studies (default $FG_STUDIES or "
                                                         "results/studies)")
    run.set_defaults(func=_run_command)
    show.set_defaults(func=_show_command)
    promote_parser.set_defaults(func=_promote_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "trials", 1) < 1:
        print("error: --trials must be at least 1", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (SearchError, SweepError, ValueError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
