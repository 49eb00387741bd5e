"""Batched RQ3 training: many runs of one fully-connected configuration in one vmapped pass.

The RQ3 grid trains the same small network many times: 8 approaches × 3 seeds per width. On a GPU one such run
(batch 64, FC-256) is bound by kernel launches and Python, not by arithmetic, so :func:`train_batched` trains
all runs of one configuration together: the models' parameters are stacked
(:func:`torch.func.stack_module_state`) and one :func:`torch.func.vmap` of a per-run step (built from
:func:`torch.func.functional_call` and :func:`torch.func.vjp` over the package's own :class:`~fg_analysis.nets.models.
FullyConnected` stages) computes every run's loss and gradient at once. Each run still is exactly the run
:func:`fg_analysis.nets.run.run_unit` makes, to float tolerance (``tests/test_batched.py`` checks
histories, test accuracies and final weights against :func:`fg_analysis.nets.training.train`):

* its own data split, initial weights, generator (``torch.Generator(device).manual_seed(seed)``), batch order
  (one ``randperm`` per epoch, as :func:`fg_analysis.nets.data.batches`) and tangents (the law's in-place draw into
  the run's ``(k, A)`` slice of the stacked tangent buffer, as :meth:`ForwardGradient.sample`), drawn in the
  sequential order, so the random streams are the same numbers;
* the paper's activity perturbation in oracle mode (:func:`fg_analysis.nets.gradients.activity_perturbation` with
  ``mode="oracle"``): one stage-wise backward sweep gives the per-sample activity gradients (and the BP
  gradient, which BP runs use and the cosine is measured against), ``d = V ∂L_b/∂a_b``, the aggregator's weights
  ``c`` (``d / k`` for the mean; ``(V Vᵀ)⁻¹ d`` for the projection from
  :func:`fg_analysis.aggregate.coefficients`, Cholesky in float64), ``ĝ_b = Vᵀ c_b``, and a second sweep of the
  same stage VJPs with cotangents ``ĝ_b / B`` gives the local weight gradients;
* plain SGD, the reference's per-epoch stopping rule (:func:`fg_analysis.nets.training.epoch_stop`; a non-finite
  training loss or derivative ends the run as diverged), the per-epoch log
  (train/validation loss and accuracy, cosine and norm ratio on the first batch) and the best-validation state
  whose test accuracy is reported, as :func:`fg_analysis.nets.training.train`.

Runs with different k share one pass: every run's tangents sit in a ``(k_max, A)`` buffer whose extra rows are
zero, and its weights ``c = d Wᵀ`` come from a ``(k_max, k_max)`` matrix ``W`` (``I/k``, or ``(V Vᵀ)⁻¹``, in its
leading block; zero elsewhere), so the padding adds nothing. Runs that stop (early stopping, divergence) leave
the pass at the next epoch, and :func:`run_batched` stores each one in the cache as soon as it stops, under the
same :class:`~fg_analysis.nets.run.TrainingRun` key a sequential run would have; its history has one
extra column, ``batched_runs`` (how many runs shared the pass), and its ``train_time_s`` is the shared pass's
time. Units that are not batchable (:func:`batchable`: other models, forward or sequential JVPs, weight
perturbation, other optimizers) are for :func:`~fg_analysis.nets.run.run_unit`.

:func:`throughput` times training steps of ``r`` runs batched against the same runs one after another (the GPU
target is ≥ 2× for 3 seeds of FC-256 on MNIST).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vjp, vmap

from fg_analysis.aggregate import coefficients
from fg_analysis.metrics import cosine, norm_ratio
from fg_analysis.nets.data import batches, load_dataset
from fg_analysis.nets.gradients import GradientSource, activity_dimension
from fg_analysis.nets.models import build_model, count_parameters
from fg_analysis.nets.run import TrainingRun
from fg_analysis.nets.training import epoch_stop
from fg_analysis.runs.env import resolve_device
from fg_analysis.tangents import tangent_law

__all__ = ["BatchedThroughput", "batchable", "group_units", "measure_throughput", "run_batched", "throughput",
           "train_batched"]

EVAL_BATCH = 1024


def batchable(unit) -> bool:
    """Whether :func:`train_batched` can train this :class:`~fg_analysis.nets.run.TrainingRun`: the FC
    net, activity perturbation with oracle JVPs (or BP), plain SGD, a built-in aggregator."""
    if unit.model != "fc" or unit.optimizer != "sgd":
        return False
    if unit.method == "bp":
        return True
    return unit.perturbation == "activity" and unit.mode == "oracle" and unit.aggregator in ("mean", "projection",
                                                                                              "sum")


def _shape_key(unit) -> tuple:
    return (unit.model, unit.width, unit.dataset, unit.epochs, unit.patience, unit.batch_size, unit.max_train)


def group_units(units: Sequence, *, max_group: int | None = None) -> list[list]:
    """Batchable units grouped by what their pass shares (network, data set, epochs, patience, batch size,
    ``max_train``), in the order of their first unit; at most ``max_group`` per group."""
    groups: dict[tuple, list] = {}
    for unit in units:
        if not batchable(unit):
            raise ValueError(f"not batchable (see fg_analysis.nets.batched.batchable): {unit}")
        groups.setdefault(_shape_key(unit), []).append(unit)
    out = []
    for members in groups.values():
        size = max_group or len(members)
        out += [members[i:i + size] for i in range(0, len(members), size)]
    return out


# ----------------------------------------------------------------------------------------------------------
# the per-run step, vmapped over runs


def _member_step(template, stage_names: list[list[str]], params: dict, x, y, V, W, is_bp, fg: bool = True):
    """One run's oracle activity-perturbation step: ``(loss, d, fg_grads, bp_grads)`` (see the module doc)."""
    stages = template.stages
    vjp_fns, shapes, h = [], [], x
    for s, stage in enumerate(stages):
        p_s = {name: params[f"stages.{s}.{name}"] for name in stage_names[s]}
        if s == 0:
            out, fn = vjp(lambda p, stage=stage: functional_call(stage, p, (h,)), p_s)
        else:
            out, fn = vjp(lambda p, h_in, stage=stage: functional_call(stage, p, (h_in,)), p_s, h)
        vjp_fns.append(fn)
        shapes.append(out.shape)
        h = out
    loss, loss_fn = vjp(lambda z: F.cross_entropy(z, y), h)
    cotangent = loss_fn(torch.ones_like(loss))[0]
    activity, bp_grads = [None] * len(stages), {}
    for s in range(len(stages) - 1, -1, -1):
        activity[s] = cotangent
        found = vjp_fns[s](cotangent)
        for name, g in found[0].items():
            bp_grads[f"stages.{s}.{name}"] = g
        if s > 0:
            cotangent = found[1]
    if not fg:  # a pass of BP runs only: no tangents, no second sweep
        return loss.detach(), torch.ones((), dtype=torch.bool, device=x.device), bp_grads, bp_grads
    batch = x.shape[0]
    per_sample = torch.cat([a.reshape(batch, -1) for a in activity], dim=1) * batch  # ∂L_b/∂a_b
    d = per_sample @ V.transpose(0, 1)                                               # (B, k_max)
    estimate = ((d @ W.transpose(0, 1)) @ V) / batch                                  # ĝ_b / B
    fg_grads, offset = {}, 0
    for s, shape in enumerate(shapes):
        size = math.prod(shape[1:])
        found = vjp_fns[s](estimate[:, offset:offset + size].reshape(shape))
        offset += size
        for name, g in found[0].items():
            fg_grads[f"stages.{s}.{name}"] = g
    grads = {name: torch.where(is_bp, bp_grads[name], fg_grads[name]) for name in bp_grads}
    finite = torch.isfinite(d).all() | is_bp
    return loss.detach(), finite, grads, bp_grads


@dataclass
class _Run:
    unit: object
    index: int
    seed_index: int
    kind: str
    k: int
    lr: float
    generator: torch.Generator
    rows: list
    best_loss: float = math.inf
    best_epoch: int = 0
    stopped: str | None = None
    steps: int = 0
    step_time: float = 0.0


class _Pass:
    """The stacked state of one group of runs and the vmapped functions over it."""

    def __init__(self, units: Sequence, device: torch.device):

        self.units, self.device = list(units), device
        first = self.units[0]
        if any(_shape_key(u) != _shape_key(first) for u in self.units):
            raise ValueError("a batched pass needs units of one network, data set and training setting")
        seeds = sorted({u.seed for u in self.units})
        datasets = [load_dataset(first.dataset, seed=s, device=device) for s in seeds]
        cut = (lambda t: t[:first.max_train]) if first.max_train is not None else (lambda t: t)
        self.x_train = torch.stack([cut(d.x_train) for d in datasets])
        self.y_train = torch.stack([cut(d.y_train) for d in datasets])
        self.splits = {"train": (self.x_train, self.y_train),
                       "val": (torch.stack([d.x_val for d in datasets]), torch.stack([d.y_val for d in datasets])),
                       "test": (torch.stack([d.x_test for d in datasets]), torch.stack([d.y_test for d in datasets]))}
        data = datasets[0]
        self.input_shape = data.input_shape
        models = [build_model(u.model, input_shape=data.input_shape, n_classes=data.n_classes, width=u.width,
                              seed=u.seed, device=device) for u in self.units]
        params, _ = stack_module_state(models)
        self.params = {name: p.detach().clone() for name, p in params.items()}
        self.best = {name: p.clone() for name, p in self.params.items()}
        self.template = models[0]

        self.activity_dimension = activity_dimension(self.template, data.input_shape)
        self.n_parameters = count_parameters(self.template)
        self.stage_names = [[name for name, _ in stage.named_parameters()] for stage in self.template.stages]
        law = tangent_law("normal")
        self.law = law
        self.runs = []
        for i, u in enumerate(self.units):
            kind = "bp" if u.method == "bp" else u.aggregator
            self.runs.append(_Run(u, i, seeds.index(u.seed), kind, 1 if kind == "bp" else u.k, u.lr,
                                  torch.Generator(device=device).manual_seed(u.seed), []))
        template = self.template
        names = self.stage_names
        self._step = vmap(lambda p, x, y, V, W, b: _member_step(template, names, p, x, y, V, W, b))
        self._bp_step = vmap(lambda p, x, y, V, W, b: _member_step(template, names, p, x, y, V, W, b, fg=False))
        self._logits = vmap(lambda p, x: functional_call(template, p, (x,)))

    # -- evaluation ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, params: dict, runs: list[_Run], split: str) -> list[tuple[float, float]]:
        """``(mean cross-entropy, accuracy)`` of each run on its own copy of ``split`` (as training.evaluate)."""
        x_all, y_all = self.splits[split]
        seed_index = torch.tensor([r.seed_index for r in runs], device=self.device)
        x_all, y_all = x_all[seed_index], y_all[seed_index]
        n = y_all.shape[1]
        total = torch.zeros(len(runs), dtype=torch.float64, device=self.device)
        correct = torch.zeros(len(runs), dtype=torch.int64, device=self.device)
        for start in range(0, n, EVAL_BATCH):
            xb, yb = x_all[:, start:start + EVAL_BATCH], y_all[:, start:start + EVAL_BATCH]
            logits = self._logits(params, xb)
            total += F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="none").view(yb.shape).sum(1).double()
            correct += (logits.argmax(-1) == yb).sum(1)
        return [(float(t) / n, int(c) / n) for t, c in zip(total.cpu(), correct.cpu())]

    # -- one epoch -------------------------------------------------------------------------------------------

    def epoch(self, runs: list[_Run], params: dict) -> list[tuple[float, float]]:
        """Train ``runs`` (whose stacked parameters are ``params``, updated in place) for one epoch; returns each
        run's (cosine, norm ratio) on its first batch. Runs that diverge get ``stopped = "diverged"``."""
        device, count = self.device, len(runs)
        first = runs[0].unit
        n, batch = self.x_train.shape[1], first.batch_size
        k_max = max(r.k for r in runs)
        A = self.activity_dimension
        V = torch.zeros(count, k_max, A, device=device)
        W = torch.zeros(count, k_max, k_max, device=device)
        for j, r in enumerate(runs):
            if r.kind in ("mean", "sum"):
                W[j, :r.k, :r.k] = torch.eye(r.k, device=device) / (r.k if r.kind == "mean" else 1)
        is_bp = torch.tensor([r.kind == "bp" for r in runs], device=device)
        lrs = torch.tensor([r.lr for r in runs], device=device)
        seed_index = torch.tensor([r.seed_index for r in runs], device=device)[:, None]
        perms = torch.stack([torch.randperm(n, generator=r.generator, device=r.generator.device).to(device)
                             for r in runs])
        alive = [True] * count
        projections: dict[int, list[int]] = {}
        for j, r in enumerate(runs):
            if r.kind == "projection":
                projections.setdefault(r.k, []).append(j)
        measured = [(math.nan, math.nan)] * count
        any_fg = any(r.kind != "bp" for r in runs)
        for i, start in enumerate(range(0, n, batch)):
            if not any(alive):
                break
            tick = time.perf_counter()
            idx = perms[:, start:start + batch]
            xb, yb = self.x_train[seed_index, idx], self.y_train[seed_index, idx]
            for j, r in enumerate(runs):
                if alive[j] and r.kind != "bp":
                    self.law.sample(r.k, A, generator=r.generator, out=V[j, :r.k])
            for k, members in projections.items():
                members = [j for j in members if alive[j]]
                if members:
                    Vk = V[members, :k]
                    eye = torch.eye(k, dtype=V.dtype, device=device).expand(len(members), k, k)
                    W[members, :k, :k] = coefficients(Vk.unsqueeze(1).expand(len(members), k, k, A), eye,
                                                      "projection")
            loss, finite, grads, bp = (self._step if any_fg else self._bp_step)(params, xb, yb, V, W, is_bp)
            losses, finite = loss.tolist(), finite.tolist()
            ok = [alive[j] and math.isfinite(losses[j]) and finite[j]
                  for j in range(count)]
            mask = torch.tensor(ok, device=device)
            with torch.no_grad():
                for name, p in params.items():
                    shape = (count,) + (1,) * (p.ndim - 1)
                    p.copy_(torch.where(mask.view(shape), p - lrs.view(shape) * grads[name], p))
            if i == 0:
                for j in range(count):
                    if ok[j]:
                        estimate = {name: g[j] for name, g in grads.items()}
                        truth = {name: g[j] for name, g in bp.items()}
                        measured[j] = (cosine(estimate, truth), norm_ratio(estimate, truth))
            elapsed = time.perf_counter() - tick
            for j, r in enumerate(runs):
                if alive[j]:
                    r.step_time += elapsed
                    if ok[j]:
                        r.steps += 1
                    else:
                        r.stopped = "diverged"
                        alive[j] = False
        return measured


def train_batched(units: Sequence, *, device: str | torch.device = "cpu",
                  on_finished: Callable[[object, pd.DataFrame], None] | None = None, deadline: float | None = None,
                  progress: bool = False) -> dict:
    """Train ``units`` (batchable, one shape key) in one vmapped pass; see the module docstring.

    Returns ``{unit: history}`` for the runs that finished, each history as
    :func:`fg_analysis.nets.run.run_unit` returns it plus ``batched_runs``; ``on_finished(unit, history)``
    is called as soon as a run stops. ``deadline`` (a :func:`time.time` value) is checked between epochs: runs
    not finished by then are left out (nothing partial is returned). The final (best-validation) stacked
    parameters stay in ``train_batched.last_state`` (tests).
    """
    resolved = resolve_device(device)
    state = _Pass(units, resolved)
    start = time.perf_counter()
    finished: dict = {}

    def log(runs: list[_Run], params: dict, epoch: int, measured) -> None:
        train = state.evaluate(params, runs, "train")
        val = state.evaluate(params, runs, "val")
        for r, (tl, ta), (vl, va), (cos, ratio) in zip(runs, train, val, measured):
            r.rows.append({"epoch": epoch, "train_loss": tl, "train_accuracy": ta, "val_loss": vl,
                           "val_accuracy": va, "cosine": cos, "norm_ratio": ratio, "steps": r.steps,
                           "train_time_s": r.step_time, "wall_time_s": time.perf_counter() - start})

    def finish(r: _Run) -> None:
        best = {name: p[r.index:r.index + 1] for name, p in state.best.items()}
        (test_loss, test_accuracy), = state.evaluate(best, [r], "test")
        history = pd.DataFrame(r.rows)
        history["test_accuracy"] = test_accuracy
        history["test_loss"] = test_loss
        history["best_epoch"] = r.best_epoch
        history["stopped"] = r.stopped
        history["n_parameters"] = state.n_parameters
        history["activity_dimension"] = state.activity_dimension
        history["device"] = resolved.type
        history["batched_runs"] = len(state.runs)
        finished[r.unit] = history
        if on_finished is not None:
            on_finished(r.unit, history)

    runs = state.runs
    log(runs, state.params, 0, [(math.nan, math.nan)] * len(runs))
    for r in runs:
        r.best_loss = r.rows[0]["val_loss"]
    epochs = max(u.epochs for u in state.units)
    for epoch in range(1, epochs + 1):
        active = [r for r in runs if r.stopped is None]
        if not active or (deadline is not None and time.time() >= deadline):
            break
        index = torch.tensor([r.index for r in active], device=resolved)
        params = {name: p[index] for name, p in state.params.items()}
        measured = state.epoch(active, params)
        for name, p in state.params.items():
            p[index] = params[name]
        log(active, params, epoch, measured)
        improved = []
        for r in active:
            row = r.rows[-1]
            reason, better = epoch_stop(math.nan if r.stopped == "diverged" else row["val_loss"], r.best_loss,
                                        epoch, r.best_epoch, patience=r.unit.patience)
            if better:
                r.best_loss, r.best_epoch = row["val_loss"], epoch
                improved.append(r.index)
            r.stopped = reason
            if r.stopped is None and epoch >= r.unit.epochs:
                r.stopped = "epochs"
        if improved:
            chosen = torch.tensor(improved, device=resolved)
            for name, p in state.best.items():
                p[chosen] = state.params[name][chosen]
        for r in active:
            if r.stopped is not None:
                finish(r)
        if progress:
            print(f"batched epoch {epoch}: {sum(r.stopped is None for r in runs)} of {len(runs)} runs training",
                  flush=True)
    train_batched.last_state = state
    return finished


def run_batched(units: Sequence, *, cache, device: str | torch.device = "cpu", deadline: float | None = None,
                progress: bool = False, max_group: int | None = None) -> dict:
    """Train the units missing from ``cache`` in batched passes (:func:`group_units`), storing each run under
    its :class:`TrainingRun` key the moment it stops; returns ``{"stored": [...], "unfinished": [...]}``."""
    missing = [u for u in units if cache.load(u, device=device) is None]
    stored, unfinished = [], []
    for group in group_units(missing, max_group=max_group) if missing else []:
        if deadline is not None and time.time() >= deadline:
            unfinished += group
            continue
        started = time.perf_counter()

        def save(unit, history, started=started):
            cache.save(unit, history, device=device, wall_time=time.perf_counter() - started)
            stored.append(unit)

        done = train_batched(group, device=device, on_finished=save, deadline=deadline, progress=progress)
        unfinished += [u for u in group if u not in done]
    return {"stored": stored, "unfinished": unfinished}


# ----------------------------------------------------------------------------------------------------------
# throughput: batched against sequential steps


@dataclass(frozen=True)
class BatchedThroughput:
    """A throughput measurement (a cached unit): ``steps`` training steps of ``len(seeds)`` runs of one approach,
    batched in one pass against one run after another (:func:`fg_analysis.nets.training.train`'s step: the gradient
    source and the SGD update)."""

    width: int = 256
    dataset: str = "mnist"
    seeds: tuple[int, ...] = (0, 1, 2)
    method: str = "fg"
    aggregator: str = "projection"
    k: int = 16
    steps: int = 50
    warmup: int = 5
    lr: float = 1e-4
    max_train: int | None = None


def throughput(config: BatchedThroughput, *, device: str | torch.device = "cpu") -> dict:
    """Seconds per step (all runs) batched and sequential, and the speed-up (sequential / batched)."""
    resolved = resolve_device(device)
    units = [TrainingRun("fc", config.width, config.dataset, config.method, config.aggregator, config.k, seed,
                         config.lr, "throughput", epochs=1, mode="oracle", max_train=config.max_train)
             for seed in config.seeds]
    state = _Pass(units, resolved)
    batch = units[0].batch_size
    total = config.steps + config.warmup
    if state.x_train.shape[1] < total * batch:
        raise ValueError(f"{config.dataset} has {state.x_train.shape[1]} training samples; {total} steps of "
                         f"batch {batch} need {total * batch}")

    def sync():
        if resolved.type == "cuda":
            torch.cuda.synchronize(resolved)

    # batched: a warm-up "epoch" of `warmup` batches, then a timed one of `steps` batches
    runs, x, y = state.runs, state.x_train, state.y_train
    params = {name: p.clone() for name, p in state.params.items()}
    state.x_train, state.y_train = x[:, :config.warmup * batch], y[:, :config.warmup * batch]
    state.epoch(runs, params)
    state.x_train, state.y_train = x[:, :config.steps * batch], y[:, :config.steps * batch]
    sync()
    tick = time.perf_counter()
    state.epoch(runs, params)
    sync()
    batched = (time.perf_counter() - tick) / config.steps
    state.x_train, state.y_train = x, y

    # sequential: the package's gradient source and SGD on each run's own model

    seconds = 0.0
    for unit in units:
        data = load_dataset(unit.dataset, seed=unit.seed, device=resolved)
        net = build_model("fc", input_shape=data.input_shape, n_classes=data.n_classes, width=unit.width,
                          seed=unit.seed, device=resolved)
        source = GradientSource(unit.method, k=unit.k, aggregator=unit.aggregator, mode="oracle")
        generator = torch.Generator(device=resolved).manual_seed(unit.seed)
        opt = torch.optim.SGD([p for p in net.parameters()], lr=unit.lr)
        names = [name for name, _ in net.named_parameters()]
        for i, (xb, yb) in enumerate(batches(data.x_train, data.y_train, 64, generator=generator)):
            if i == config.warmup:
                sync()
                tick = time.perf_counter()
            if i == total:
                break
            estimate = source(net, xb, yb, generator=generator)
            float(estimate.loss)
            for name, p in zip(names, net.parameters()):
                p.grad = estimate.grads[name]
            opt.step()
            opt.zero_grad(set_to_none=True)
        sync()
        seconds += time.perf_counter() - tick
    sequential = seconds / config.steps
    return {"runs": len(units), "batched_s_per_step": batched, "sequential_s_per_step": sequential,
            "speedup": sequential / batched, "device": resolved.type}


def measure_throughput(config: BatchedThroughput, *, device: str | torch.device = "cpu") -> pd.DataFrame:
    """:func:`throughput` as a one-row frame (what the cache stores)."""
    return pd.DataFrame([throughput(config, device=device)])
