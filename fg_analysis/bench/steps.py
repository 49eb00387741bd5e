"""The timed training steps (gradient + SGD update), phase by phase, and the step-time benchmark.

Every variant is a closure returning the seconds of its phases (:data:`fg_analysis.bench.timing.Step`):

* ``bp`` — backpropagation: forward + backward, then ``θ -= lr·∇L`` (:func:`make_bp_step`).
* ``vmap`` — the package's fast path, :meth:`fg_analysis.estimator.ForwardGradient.step` on the module's
  parameters as one flat vector (weight perturbation, vmapped forward mode, normal tangents;
  :func:`make_fg_step`); ``vmap-rademacher`` the same with Rademacher tangents.
* ``oneoff`` — the public one-off path, :func:`fg_analysis.estimator.forward_gradient` on the module and a plain
  SGD update of its parameters (:func:`make_oneoff_step`); ``oneoff-rademacher`` with Rademacher tangents; not on
  networks with BatchNorm in train mode, which that call refuses in forward mode.
* ``loop`` — the reference implementation's per-tangent loop: for each tangent fresh normals, one
  ``torch.autograd.forward_ad`` pass, then aggregate and SGD (:func:`make_reference_loop_step`), the baseline.
* ``activity-forward`` / ``activity-oracle`` — what RQ3 trains: :class:`fg_analysis.nets.gradients.GradientSource`
  with ``perturbation="activity"`` (forward-mode or oracle JVPs) and the SGD update (:func:`make_activity_step`).
* the *floor* (section ``"floor"``): the three primitives a weight-perturbation step cannot avoid, timed bare —
  ``torch.randn`` into the (k, P) buffer, one vmapped ``torch.func.jvp`` and the ``addmv`` update
  (:func:`make_floor_step`). A step's time over the floor's is its overhead.

:func:`benchmark_steps` times all variants of one (network, k) round-robin (:func:`fg_analysis.bench.timing.
time_round_robin`), with ratios paired by round against BP (``over_bp``) and against the fast path
(``over_step``).

References:
    Flügel et al. arXiv:2410.17764 (RQ4; reference implementation's per-tangent loop). Baydin et al. Gradients
    without Backpropagation. arXiv:2202.08587.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.autograd import forward_ad
from torch.func import functional_call, jvp, vmap
from tqdm import tqdm

from fg_analysis import zero_tangents
from fg_analysis.aggregate import projection
from fg_analysis.bench.config import BenchConfig, ModelSpec
from fg_analysis.bench.timing import Step, sync, time_round_robin
from fg_analysis.estimator import PHASES as FG_PHASES
from fg_analysis.estimator import ForwardGradient, batch_norms_in_training, forward_gradient, module_objective
from fg_analysis.nets.gradients import GradientSource

__all__ = ["ACTIVITY_METHODS", "BP_PHASES", "FG_PHASES", "FLOOR_PHASES", "JVP_METHODS", "benchmark_steps",
           "flat_parameters", "make_activity_step", "random_batch", "make_bp_step", "make_fg_step", "make_floor_step",
           "make_oneoff_step", "make_reference_loop_step"]

#: the estimator's JVP mode of the fast-path rows (``vmap``)
JVP_METHODS = {"vmap": "forward"}
#: the activity-perturbation rows and their JVP modes (:data:`fg_analysis.nets.gradients.MODES`)
ACTIVITY_METHODS = {"activity-forward": "forward", "activity-oracle": "oracle"}
BP_PHASES = ("gradient", "update")
FLOOR_PHASES = ("sample", "jvp", "update")


def flat_parameters(model: torch.nn.Module) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The module's trainable parameters as one flat vector, and a dict of views into it.

    Returns:
        ``(flat, params)``; the module's parameters become views of ``flat``
        (:func:`fg_analysis.estimator.module_objective`).
    """
    _, flat = module_objective(model, F.cross_entropy, flat=True)
    return flat, {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def _clocked(device: torch.device, phases: tuple[str, ...], run) -> Step:
    """A step that calls ``run(clock)``; ``clock()`` marks the end of the next phase."""

    def step() -> dict[str, float]:
        times = []

        def clock(*_):
            sync(device)
            times.append(time.perf_counter())

        clock()
        run(clock)
        return {phase: after - before for phase, before, after in zip(phases, times, times[1:])}

    return step


def make_fg_step(model: torch.nn.Module, inputs, targets, *, k: int, aggregator: str, lr: float,
                 generator: torch.Generator, method: str = "vmap", tangents: str = "normal") -> Step:
    """One step of the fast path, :meth:`ForwardGradient.step` on the flat parameter vector, by phase.

    Sample ``V`` from the law ``tangents`` into the estimator's reused (k, P) buffer; ``d = V ∇L`` (vmapped
    forward mode, no autograd graph); the aggregator's weights ``c``; ``θ -= lr·Vᵀc`` in one ``addmv``. The
    phases (:data:`FG_PHASES`) are timed through the step's ``on_phase`` hook.

    Returns:
        The step; ``step.parameters`` is the flat vector it updates.

    Raises:
        ValueError: for a method other than ``"vmap"`` or an unknown aggregator.
    """
    if method not in JVP_METHODS:
        raise ValueError(f"unknown JVP method {method!r}; choose one of {sorted(JVP_METHODS)} (the per-tangent "
                         "loop is make_reference_loop_step)")
    estimator = ForwardGradient(k, aggregator=aggregator, tangents=tangents, mode=JVP_METHODS[method],
                                generator=generator)
    f, flat = module_objective(model, F.cross_entropy, flat=True)
    step = _clocked(flat.device, FG_PHASES,
                    lambda clock: estimator.step(f, flat, inputs, targets, lr=lr, on_phase=clock))
    step.parameters = flat
    return step


def _parameters(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _sgd(parameters: list[torch.Tensor], grads: list[torch.Tensor], lr: float) -> None:
    with torch.no_grad():
        torch._foreach_add_(parameters, grads, alpha=-lr)


def make_bp_step(model: torch.nn.Module, inputs, targets, *, lr: float) -> Step:
    """One BP step: forward + backward (``gradient``), then ``θ -= lr·∇L`` (``update``).

    Returns:
        The step.
    """
    parameters = _parameters(model)

    def run(clock):
        for p in parameters:
            p.grad = None
        F.cross_entropy(model(inputs), targets).backward()
        clock()
        _sgd(parameters, [p.grad for p in parameters], lr)
        clock()

    return _clocked(parameters[0].device, BP_PHASES, run)


def make_oneoff_step(model: torch.nn.Module, inputs, targets, *, k: int, aggregator: str, lr: float,
                     generator: torch.Generator, tangents: str = "normal") -> Step:
    """One step of the public one-off path: ``forward_gradient(model, args=(x, y), loss_fn=, k=, tangents=)`` (a
    dict shaped like the parameters; ``gradient``), then a plain SGD update of the module's parameters
    (``update``). Repeated calls reuse one tangent buffer, and a module whose parameters are one flat vector
    (as :func:`make_fg_step` leaves the shared model) takes the flat path of the step.

    Returns:
        The step.
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]

    def run(clock):
        with torch.no_grad():
            estimate = forward_gradient(model, args=(inputs, targets), loss_fn=F.cross_entropy, k=k,
                                        aggregator=aggregator, tangents=tangents, generator=generator)
        clock()
        _sgd([p for _, p in named], [estimate[name] for name, _ in named], lr)
        clock()

    return _clocked(named[0][1].device, BP_PHASES, run)


def make_reference_loop_step(model: torch.nn.Module, inputs, targets, *, k: int, aggregator: str, lr: float,
                             generator: torch.Generator) -> Step:
    """One step as the reference implementation takes it, the baseline of the fast path.

    For each of the k tangents: fresh normal tangents for every parameter tensor, one
    ``torch.autograd.forward_ad`` pass of the loss (``passes``); then the estimate, ``Σ d_i v_i / k`` (mean,
    accumulated) or ``Vᵀ (V Vᵀ)⁻¹ d`` over the stacked tangents (projection, :func:`fg_analysis.aggregate.
    projection`; ``aggregate``); then SGD (``update``). PyTorch runs its own kernels (no zero-tangent skipping).

    Returns:
        The step.

    Raises:
        ValueError: for an aggregator other than ``"mean"`` or ``"projection"``.
    """
    if aggregator not in ("mean", "projection"):
        raise ValueError(f"the reference loop aggregates by 'mean' or 'projection'; got {aggregator!r}")
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    buffers = dict(model.named_buffers())
    parameters = [p for _, p in named]

    def run(clock):
        with torch.no_grad():
            tangents, derivatives = [], []
            for _ in range(k):
                v = [torch.randn(p.shape, generator=generator, dtype=p.dtype, device=p.device) for p in parameters]
                with forward_ad.dual_level():
                    dual = {name: forward_ad.make_dual(p, t) for (name, p), t in zip(named, v)}
                    loss = F.cross_entropy(functional_call(model, (dual, buffers), (inputs,)), targets)
                    derivatives.append(forward_ad.unpack_dual(loss).tangent)
                tangents.append(v)
            clock()
            d = torch.stack(derivatives)
            if aggregator == "mean":
                estimate = [sum(d[i] * tangents[i][j] for i in range(k)) / k for j in range(len(parameters))]
            else:
                V = torch.stack([torch.cat([t.reshape(-1) for t in v]) for v in tangents])
                flat = projection(V, d)
                estimate = [piece.view_as(p) for piece, p in zip(flat.split([p.numel() for p in parameters]),
                                                                  parameters)]
            clock()
        _sgd(parameters, estimate, lr)
        clock()

    return _clocked(parameters[0].device, ("passes", "aggregate", "update"), run)


def make_activity_step(model: torch.nn.Module, inputs, targets, *, k: int, aggregator: str, lr: float,
                       generator: torch.Generator, mode: str = "forward") -> Step:
    """One step of what RQ3 trains: ``GradientSource("fg", k=, aggregator=, perturbation="activity", mode=)``
    (:func:`fg_analysis.nets.gradients.activity_perturbation`; ``gradient``), then SGD (``update``).

    Returns:
        The step.
    """
    source = GradientSource("fg", k=k, aggregator=aggregator, perturbation="activity", mode=mode)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]

    def run(clock):
        grads = source(model, inputs, targets, generator=generator).grads
        clock()
        _sgd([p for _, p in named], [grads[name] for name, _ in named], lr)
        clock()

    return _clocked(named[0][1].device, BP_PHASES, run)


def make_floor_step(model: torch.nn.Module, inputs, targets, *, k: int, lr: float,
                    generator: torch.Generator) -> Step:
    """The primitives of a weight-perturbation step, bare: ``torch.randn`` of k·P normals into a reused buffer
    (``sample``), one vmapped ``torch.func.jvp`` of the loss under :func:`fg_analysis.zero_tangents.skipping`
    (``jvp``; a plain ``jvp`` for k = 1) and ``θ -= lr·Vᵀd/k`` in one ``addmv`` (``update``): no input checks,
    no aggregation. The sampling phase alone is the *sampling floor*.

    Returns:
        The step.
    """
    f, flat = module_objective(model, F.cross_entropy, flat=True)
    V = torch.empty(k, flat.numel(), dtype=flat.dtype, device=flat.device)

    def along(v):
        return jvp(lambda p: f(p, inputs, targets), (flat,), (v,))[1]

    def run(clock):
        with torch.no_grad():
            torch.randn(V.shape, generator=generator, out=V)
            clock()
            with zero_tangents.skipping(True):
                d = along(V[0]).reshape(1) if k == 1 else vmap(along)(V)
            clock()
            flat.addmv_(V.T, d, alpha=-lr / k)
            clock()

    return _clocked(flat.device, FLOOR_PHASES, run)


def random_batch(spec: ModelSpec, *, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``: a batch of standard-normal inputs and uniform labels for ``spec``, from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(spec.batch, *spec.input_shape, generator=generator).to(device)
    targets = torch.randint(0, 10, (spec.batch,), generator=generator).to(device)
    return inputs, targets


def _variants(config: BenchConfig, spec: ModelSpec, model, inputs, targets, k: int, device) -> dict[tuple, Step]:
    generator = torch.Generator(device=device).manual_seed(config.seed)
    common = dict(lr=config.lr, generator=generator)
    steps: dict[tuple, Step] = {("bp", "-"): make_bp_step(model, inputs, targets, lr=config.lr)}
    for aggregator in ("projection", "mean"):
        steps[("vmap", aggregator)] = make_fg_step(model, inputs, targets, k=k, aggregator=aggregator, **common)
    steps[("vmap-rademacher", "projection")] = make_fg_step(model, inputs, targets, k=k, aggregator="projection",
                                                            tangents="rademacher", **common)
    steps[("loop", "projection")] = make_reference_loop_step(model, inputs, targets, k=k, aggregator="projection",
                                                             **common)
    if k in config.oneoff_ks and not batch_norms_in_training(model):
        for method, law in (("oneoff", "normal"), ("oneoff-rademacher", "rademacher")):
            steps[(method, "projection")] = make_oneoff_step(model, inputs, targets, k=k, aggregator="projection",
                                                             tangents=law, **common)
    if spec.name == "fc" and k in config.activity_ks:
        for method, mode in ACTIVITY_METHODS.items():
            steps[(method, "projection")] = make_activity_step(model, inputs, targets, k=k, aggregator="projection",
                                                               mode=mode, **common)
    steps[("floor", "mean")] = make_floor_step(model, inputs, targets, k=k, **common)
    return steps


def _perturbation(method: str) -> str:
    return "-" if method == "bp" else "activity" if method.startswith("activity") else "weight"


def benchmark_steps(config: BenchConfig, device: torch.device, *, progress: bool = True) -> pd.DataFrame:
    """Step times of every network and k: all variants of one (network, k) interleaved.

    Returns:
        One row per (model, method, aggregator, k, phase) with the median ``seconds``; ``phase="step"`` is the
        whole step, with its fastest round (``seconds_min``) and its paired ratios to BP (``over_bp``) and to the
        fast path's projection step (``over_step``). Section ``"step"``, and ``"floor"`` for the bare primitives.
    """
    rows = []
    units = [(spec, k) for spec in config.models for k in (spec.ks or config.ks)]
    for spec, k in tqdm(units, desc="steps", disable=not progress, mininterval=2.0):
        model = spec.build(seed=config.seed, device=device)
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if k * n > config.max_tangent_elements:
            continue
        inputs, targets = random_batch(spec, seed=config.seed, device=device)
        steps = _variants(config, spec, model, inputs, targets, k, device)
        timings = time_round_robin(steps, repeats=config.repeats, warmup=config.warmup,
                                   paired={"over_bp": ("bp", "-"), "over_step": ("vmap", "projection")})
        for (method, aggregator), phases in timings.items():
            for phase, seconds in phases.items():
                if phase in ("step_min", "over_bp", "over_step"):
                    continue
                whole = phase == "step"
                rows.append(dict(section="floor" if method == "floor" else "step", model=spec.label, n=n,
                                 batch=spec.batch, k=k, method=method, aggregator=aggregator,
                                 perturbation=_perturbation(method), phase=phase, seconds=seconds,
                                 seconds_min=phases["step_min"] if whole else np.nan,
                                 over_bp=phases["over_bp"] if whole else np.nan,
                                 over_step=phases["over_step"] if whole else np.nan))
        del steps, model
    return pd.DataFrame(rows)
