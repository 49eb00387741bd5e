"""Benchmark of forward gradients against backpropagation: step time, peak memory, throughput (RQ4).

``python -m fg_analysis.bench [--quick | --full] [--device auto]`` (also ``python -m fg_analysis bench ...``)
measures, in one run (Flügel et al., arXiv 2410.17764, RQ4 "What are the trade-offs of using multiple tangents?"):

1. **Training steps** (gradient + SGD update) on the paper's fully-connected nets 784→w→w→10 with batch 64,
   and on ResNet-18 / ViT: BP (autograd), and weight-perturbation FG(k) (one global tangent over all P
   parameters, k tangents) with the JVPs either *vmapped* (``torch.func.jvp`` under ``vmap``, one batched pass)
   or *looped* (one ``torch.autograd.forward_ad`` pass per tangent, as the reference implementation does),
   aggregated by projection or mean. Every FG step is split into tangent sampling, JVPs, aggregation and update.
   The step calls the package's own functions and nothing else: tangents from
   :class:`fg_analysis.tangents.Normal`, JVPs from :func:`fg_analysis.jvp.jvps` (vmapped) or
   :func:`fg_analysis.jvp.sequential_jvps` (looped) under ``torch.no_grad()``, the aggregator's weights
   ``c`` from :func:`fg_analysis.aggregate.coefficients` (``ĝ = Vᵀ c``) and the update ``θ ← θ − η Vᵀ c`` in
   one ``addmv``, so their input checks are part of what is timed. The JVPs skip PyTorch's products with
   absent tangents (:mod:`fg_analysis.zero_tangents`); :func:`benchmark_zero_tangents` times what that saves.
   All variants of one k are timed round-robin (interleaved), so load from other processes hits them alike;
   medians over repeats after warm-up; ``torch.cuda.synchronize`` around every phase on a GPU.
2. **Peak memory against depth**: FC nets of width 256 with 2 … 32 hidden layers and a large batch (activation
   dominated), one gradient computation each (BP: forward + backward; FG: the k JVPs), net of parameters, inputs,
   tangents and the parameter-sized gradient. On a GPU: ``torch.cuda.max_memory_allocated``. On the CPU every
   measurement runs in a fresh subprocess with glibc's ``MALLOC_MMAP_THRESHOLD_=65536`` (every block ≥ 64 KiB
   is its own mapping and goes back to the OS on free, so the resident set follows the live tensors): the
   peak is ``VmHWM`` after resetting it (``/proc/self/clear_refs``) minus the resident set just before. A probe
   that allocates a known number of bytes validates the method in every run.
3. **Throughput of the approximation-quality computation** (cosine of projection estimates at n = 1024,
   k = 16): all samples at once through the batched aggregator, against a per-sample Python loop.

Targets (measured and printed, never asserted) are in :data:`TARGETS` (CPU) and :data:`GPU_TARGETS`; a record is
judged by the targets of the device it was measured on (:func:`targets_for`).

The whole result is one tidy ``DataFrame`` cached by :class:`fg_analysis.cache.ResultsCache` under the config
(which names the machine) together with versions and device; :func:`summary` turns it into the JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fg_analysis import aggregate as aggregate_module
from fg_analysis import cost, gradients
from fg_analysis.estimator import ForwardGradient, module_objective
from fg_analysis.cache import PUBLISHED, ResultsCache
from fg_analysis.env import device_name, resolve_device, torch_threads
from fg_analysis.models import build_model
from fg_analysis.tangents import Normal

# ----------------------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class ModelSpec:
    """A network to time: ``build_model(name, input_shape=, width=, **options)`` with ``batch`` inputs."""

    label: str
    name: str
    input_shape: tuple[int, ...]
    width: int
    batch: int
    options: tuple[tuple[str, object], ...] = ()
    ks: tuple[int, ...] | None = None  # None: the config's ks

    def build(self, *, seed: int, device: torch.device) -> torch.nn.Module:
        return build_model(self.name, input_shape=self.input_shape, n_classes=10, width=self.width, seed=seed,
                           device=device, **dict(self.options))


def fc(width: int, batch: int = 64) -> ModelSpec:
    """The paper's 784 → w → w → 10 ReLU net on MNIST-shaped inputs."""
    return ModelSpec(f"fc-{width}", "fc", (1, 28, 28), width, batch)


PAPER_SOTA = (
    ModelSpec("resnet18", "resnet18", (3, 32, 32), 64, 128, (("small_input", False),), ks=(1, 4, 16)),
    ModelSpec("vit", "vit", (3, 32, 32), 256, 32, (("layers", 6), ("heads", 4), ("mlp", 512)), ks=(1, 4, 16)),
)
TINY_SOTA = (
    ModelSpec("resnet18-tiny", "resnet18", (3, 16, 16), 8, 8, (("small_input", False),), ks=(1, 4)),
    ModelSpec("vit-tiny", "vit", (3, 16, 16), 32, 8, (("layers", 2), ("heads", 2), ("mlp", 64)), ks=(1, 4)),
)


@dataclass(frozen=True)
class BenchConfig:
    """What :func:`run` measures. Build it with :meth:`preset` (``"quick"`` or ``"paper"``/``"full"``).

    ``machine`` names the device (CPU model and threads, or the GPU) so that timings of different machines are
    never mixed up in the cache; ``fit_ks`` are the k the cost model is fitted on (the others are held out).
    ``threads``: torch's intra-op CPU threads during the run (0 keeps torch's default). The CPU presets use 1:
    on a shared 2-core machine a second thread mostly waits at barriers for a core another process holds,
    which turns medians into noise; one thread gives stable ratios (absolute times are single-core times).
    """

    preset: str = "quick"
    device: str = "cpu"
    machine: str = ""
    models: tuple[ModelSpec, ...] = (fc(1024),) + TINY_SOTA
    ks: tuple[int, ...] = (1, 2, 4, 8, 16)
    fit_ks: tuple[int, ...] = (1, 2, 4, 8)
    reference_model: str = "fc-1024"
    repeats: int = 5
    warmup: int = 1
    lr: float = 1e-4
    max_tangent_elements: int = 3 * 10 ** 8
    memory_depths: tuple[int, ...] = (2, 8, 32)
    memory_width: int = 256
    memory_batch: int = 1024
    memory_k: int = 4
    memory_probe_bytes: int = 64 * 2 ** 20
    approximation_n: int = 1024
    approximation_k: int = 16
    approximation_samples: int = 1000
    threads: int = 1
    seed: int = 0

    @classmethod
    def _from_preset(cls, name: str = "quick", *, device: str | torch.device = "cpu", **overrides) -> BenchConfig:
        """``quick``: FC-1024, k ∈ {1, 2, 4, 8, 16}, tiny ResNet/ViT, depths 2/8/32 at batch 1024 (≈ 1 min on
        2 CPU cores). ``paper`` (alias ``full``): FC-256/1024/4096, k up to 64 (tangents capped at
        ``max_tangent_elements`` numbers), ResNet-18 (batch 128) and the paper's ViT (batch 32), depths 2 … 32
        at batch 4096."""
        resolved = resolve_device(device)
        threads = overrides.pop("threads", 1 if resolved.type == "cpu" else 0)
        with torch_threads(threads):
            base = dict(device=resolved.type, machine=device_name(resolved), threads=threads)
        if name == "quick":
            config = cls(preset="quick", repeats=7, **base)
        elif name == "live":  # the notebook's small live run (< 1 min on 2 busy CPU cores)
            config = cls(preset="live", models=(fc(256),), reference_model="fc-256", repeats=3,
                         memory_batch=512, approximation_samples=300, **base)
        elif name in ("paper", "full"):
            gpu = resolved.type == "cuda"
            # on the CPU, ResNet-18 / ViT k=16 steps and k=16 JVPs of a 32-layer net at batch 4096 take minutes:
            # the CPU record stops at k=4 there; a GPU runs the whole grid
            sota = PAPER_SOTA if gpu else tuple(replace(spec, ks=(1, 4), batch=min(spec.batch, 16) if
                                                        spec.name == "vit" else spec.batch) for spec in PAPER_SOTA)
            config = cls(preset="paper", models=(fc(256), fc(1024), fc(4096)) + sota,
                         ks=(1, 2, 4, 8, 16, 32, 64), fit_ks=(1, 2, 4, 8, 16),
                         repeats=5, warmup=1, memory_depths=(2, 4, 8, 16, 32), memory_batch=4096,
                         memory_k=16 if gpu else 4, approximation_samples=10000,
                         max_tangent_elements=2 * 10 ** 9 if gpu else 3 * 10 ** 8, **base)
        else:
            raise ValueError(f"unknown preset {name!r}; use 'quick', 'live' or 'paper' (alias 'full')")
        return replace(config, **overrides)


# The field ``preset`` records which preset a config came from; the constructor ``BenchConfig.preset(name)`` is
# attached after the dataclass is made, so that the field keeps its default "quick" (a method of the same name
# inside the class body would become the field's default).
BenchConfig.preset = BenchConfig._from_preset


#: Targets on the CPU: (summary key, comparison, bound, meaning). Printed with the result, never asserted.
TARGETS = (
    ("vmap_over_loop_k16", ">=", 1.2, "vmapped FG k=16 step at least 1.2x faster than the per-tangent loop"),
    ("projection_over_mean_max", "<=", 1.2, "projection step at most 1.2x a mean step for k <= 16"),
    ("fg1_over_bp", "<=", 2.0, "FG k=1 step at most 2x a BP step"),
    ("fg_memory_growth", "<=", 1.2, "FG peak memory (net) grows at most 1.2x from 2 to 32 hidden layers"),
    ("bp_memory_linearity_r2", ">=", 0.95, "BP peak memory grows linearly with depth (R^2 of a line)"),
)

#: Targets on a GPU. FG k=1 against BP has no bound there: it is reported (Baydin et al. report FG up to 2x faster).
GPU_TARGETS = (
    ("vmap_over_loop_k16", ">=", 3.0, "vmapped FG k=16 step at least 3x faster than the per-tangent loop"),
    ("projection_over_mean_max", "<=", 1.2, "projection step at most 1.2x a mean step for k <= 16"),
    ("fg_memory_growth", "<=", 1.2, "FG peak memory (net) grows at most 1.2x from 2 to 32 hidden layers"),
    ("bp_memory_linearity_r2", ">=", 0.95, "BP peak memory grows linearly with depth (R^2 of a line)"),
    ("batched_over_loop_approximation", ">=", 5.0,
     "batched approximation sweep at least 5x faster than a per-sample loop"),
)


def targets_for(device: str) -> tuple[tuple[str, str, float, str], ...]:
    """The targets a record measured on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:0"``, ...) is judged by."""
    return GPU_TARGETS if str(device).startswith("cuda") else TARGETS

# ----------------------------------------------------------------------------------------------------------
# the hot path: one training step, phase by phase


def flat_parameters(model: torch.nn.Module) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(flat, params)``: the model's trainable parameters as one flat vector (the module's parameters become
    views into it, :func:`fg_analysis.estimator.module_objective`) and a dict of views into it."""
    _, flat = module_objective(model, F.cross_entropy, flat=True)
    return flat, {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


#: the JVP modes timed, by the names of the benchmark's rows: vmapped (``"forward"``) and one pass per tangent
JVP_METHODS = {"vmap": "forward", "loop": "sequential"}
FG_PHASES = ("sample", "jvp", "aggregate", "update")
BP_PHASES = ("gradient", "update")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_fg_step(model: torch.nn.Module, inputs, targets, *, k: int, method: str, aggregator: str,
                 lr: float, generator: torch.Generator) -> Callable[[], dict[str, float]]:
    """A closure running one FG training step and returning the seconds of each phase of :data:`FG_PHASES`.

    The step is the package's own, :meth:`fg_analysis.estimator.ForwardGradient.step` on the module's
    parameters as one flat vector: sample ``V`` into a reused (k, P) buffer; ``d = V ∇L`` by the JVP mode
    :data:`JVP_METHODS` ``[method]`` (no autograd graph, so no activations kept); the aggregator's weights ``c``
    (``d / k`` for the mean, ``(V Vᵀ)⁻¹ d`` for the projection); ``θ -= lr·Vᵀ c`` in one ``addmv`` that never
    forms ``ĝ``. The phases are timed through the step's ``on_phase`` hook.
    """
    if method not in JVP_METHODS:
        raise ValueError(f"unknown JVP method {method!r}; choose one of {sorted(JVP_METHODS)}")
    estimator = ForwardGradient(k, aggregator=aggregator, tangents="normal", mode=JVP_METHODS[method],
                                generator=generator)
    f, flat = module_objective(model, F.cross_entropy, flat=True)
    device = flat.device

    def step() -> dict[str, float]:
        times = [time.perf_counter()]

        def clock(phase: str) -> None:
            _sync(device)
            times.append(time.perf_counter())

        _sync(device)
        times[0] = time.perf_counter()
        estimator.step(f, flat, inputs, targets, lr=lr, on_phase=clock)
        return {phase: after - before for phase, before, after in zip(FG_PHASES, times, times[1:])}

    step.parameters = flat  # the flat parameter vector the step updates (for inspection and tests)
    return step


def make_bp_step(model: torch.nn.Module, inputs, targets, *, lr: float) -> Callable[[], dict[str, float]]:
    """A closure running one BP training step (forward + backward, then ``θ -= lr·∇L``), timed by phase."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    device = parameters[0].device

    def step() -> dict[str, float]:
        _sync(device)
        t0 = time.perf_counter()
        for p in parameters:
            p.grad = None
        F.cross_entropy(model(inputs), targets).backward()
        _sync(device)
        t1 = time.perf_counter()
        with torch.no_grad():
            torch._foreach_add_(parameters, [p.grad for p in parameters], alpha=-lr)
        _sync(device)
        t2 = time.perf_counter()
        return {"gradient": t1 - t0, "update": t2 - t1}

    return step


def time_round_robin(steps: dict[object, Callable[[], dict[str, float]]], *, repeats: int,
                     warmup: int, reference: object = None) -> dict[object, dict[str, float]]:
    """Run every step ``warmup`` times, then ``repeats`` rounds in which each step runs once (interleaved).

    Returns per step the median of every phase and of the whole step (``"step"``, the median of per-run
    totals) and the fastest whole step (``"step_min"``). With a ``reference`` key, also ``"over_reference"``:
    the median over rounds of the step's total over the reference's total *in the same round*, a paired ratio
    that load from other processes, which drifts over seconds, hits on both sides alike.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    runs: dict[object, list[dict[str, float]]] = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            runs[key].append(step())
    timings = {}
    for key, records in runs.items():
        phases = {phase: median(r[phase] for r in records) for phase in records[0]}
        totals = [sum(r.values()) for r in records]
        timings[key] = {**phases, "step": median(totals), "step_min": min(totals)}
    if reference is not None:
        reference_totals = [sum(r.values()) for r in runs[reference]]
        for key, records in runs.items():
            timings[key]["over_reference"] = median(sum(r.values()) / t for r, t in zip(records, reference_totals))
    return timings


def _batch(spec: ModelSpec, *, seed: int, device: torch.device):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(spec.batch, *spec.input_shape, generator=generator).to(device)
    targets = torch.randint(0, 10, (spec.batch,), generator=generator).to(device)
    return inputs, targets


def benchmark_steps(config: BenchConfig, device: torch.device, *, progress: bool = True) -> pd.DataFrame:
    """Step times of every model: one row per (model, method, aggregator, k, phase) with the median
    seconds; ``phase="step"`` is the whole step (its fastest run in ``seconds_min``)."""
    rows = []
    units = [(spec, k) for spec in config.models for k in (spec.ks or config.ks)]
    for spec, k in tqdm(units, desc="steps", disable=not progress, mininterval=2.0):
        model = spec.build(seed=config.seed, device=device)
        n = sum(p.numel() for p in model.parameters())
        if k * n > config.max_tangent_elements:
            continue
        inputs, targets = _batch(spec, seed=config.seed, device=device)
        generator = torch.Generator(device=device).manual_seed(config.seed)
        steps: dict[tuple, Callable] = {("bp", "-"): make_bp_step(model, inputs, targets, lr=config.lr)}
        for method, aggregator in (("vmap", "projection"), ("vmap", "mean"), ("loop", "projection")):
            steps[(method, aggregator)] = make_fg_step(model, inputs, targets, k=k, method=method,
                                                       aggregator=aggregator, lr=config.lr, generator=generator)
        timings = time_round_robin(steps, repeats=config.repeats, warmup=config.warmup, reference=("bp", "-"))
        for (method, aggregator), phases in timings.items():
            for phase, seconds in phases.items():
                if phase in ("step_min", "over_reference"):
                    continue
                whole = phase == "step"
                rows.append(dict(section="step", model=spec.label, n=n, batch=spec.batch, k=k, method=method,
                                 aggregator=aggregator, phase=phase, seconds=seconds,
                                 seconds_min=phases["step_min"] if whole else np.nan,
                                 over_bp=phases["over_reference"] if whole else np.nan))
        del steps, model
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# peak memory against depth

_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not found in /proc/self/status")


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def measure_memory(spec: dict) -> dict:
    """Peak bytes above the state just before one gradient computation, in this process.

    ``spec``: ``mode`` (``"bp"``, ``"fg"`` or ``"probe"``), ``depth``, ``width``, ``batch``, ``k``, ``seed``,
    ``device``, ``probe_bytes``. Parameters, inputs and (FG) tangents exist before the measurement starts, so
    they are not counted; BP's parameter-sized ``.grad`` buffers are created inside it and are subtracted
    (``gradient_bytes``). ``probe`` allocates and fills ``probe_bytes`` and nothing else: the method's check.
    On CUDA it uses ``max_memory_allocated``; on the CPU the resident set (meaningful only in a fresh
    process started with :data:`_MALLOC_ENV`, see :func:`memory_in_subprocess`).
    """
    device = resolve_device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    mode, depth, width, batch, k = spec["mode"], spec["depth"], spec["width"], spec["batch"], spec["k"]
    model = build_model("fc", input_shape=(784,), n_classes=10, width=width, hidden_layers=depth,
                        seed=spec["seed"], device=device)
    n = sum(p.numel() for p in model.parameters())
    generator = torch.Generator(device=device).manual_seed(spec["seed"])
    inputs = torch.randn(batch, 784, generator=generator, device=device)
    targets = torch.randint(0, 10, (batch,), generator=generator, device=device)
    f, params = module_objective(model, F.cross_entropy)
    V = torch.randn(k, n, generator=generator, device=device) if mode == "fg" else None

    def compute(x, y):
        if mode == "bp":
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
        elif mode == "fg":
            with torch.no_grad():
                ForwardGradient(k).derivatives(f, params, V, x, y)
        elif mode == "probe":
            buffer = torch.empty(spec["probe_bytes"] // 4, device=device)
            buffer.fill_(1.0)
            del buffer
        else:
            raise ValueError(f"unknown memory mode {mode!r}")

    compute(inputs[:2], targets[:2])  # warm-up: kernels, thread pools, lazy initialization
    model.zero_grad(set_to_none=True)
    gradient_bytes = 4 * n if mode == "bp" else 0
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        compute(inputs, targets)
        torch.cuda.synchronize(device)
        peak, method = torch.cuda.max_memory_allocated(device) - before, "cuda max_memory_allocated"
    else:
        _reset_peak_rss()
        before = _status_kib("VmRSS")
        compute(inputs, targets)
        peak, method = 1024 * (_status_kib("VmHWM") - before), "peak RSS (VmHWM reset) in a fresh process"
    return dict(mode=mode, depth=depth, width=width, batch=batch, k=k if mode == "fg" else 0, n=n,
                peak_bytes=int(peak), gradient_bytes=gradient_bytes, net_bytes=int(peak - gradient_bytes),
                parameter_bytes=4 * n, tangent_bytes=4 * n * k if mode == "fg" else 0,
                memory_method=method)


def memory_in_subprocess(spec: dict, *, timeout: float = 600) -> dict:
    """:func:`measure_memory` in a fresh Python process with :data:`_MALLOC_ENV` (CPU measurements)."""
    code = ("import json, sys; from fg_analysis.bench import measure_memory; "
            "print(json.dumps(measure_memory(json.loads(sys.argv[1]))))")
    env = {**os.environ, **_MALLOC_ENV}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement {spec} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def benchmark_memory(config: BenchConfig, device: torch.device, *, progress: bool = True) -> pd.DataFrame:
    """Peak memory of BP and FG (vmapped JVPs, ``memory_k`` tangents) for every depth, plus the probe row."""
    base = dict(width=config.memory_width, batch=config.memory_batch, seed=config.seed, device=device.type,
                probe_bytes=config.memory_probe_bytes, threads=config.threads)
    specs = [dict(base, mode="probe", depth=config.memory_depths[0], k=0)]
    specs += [dict(base, mode=mode, depth=depth, k=config.memory_k)
              for depth in config.memory_depths for mode in ("bp", "fg")]
    measure = measure_memory if device.type == "cuda" else memory_in_subprocess
    rows = []
    for spec in tqdm(specs, desc="memory", disable=not progress, mininterval=2.0):
        row = measure(spec)
        row["expected_bytes"] = config.memory_probe_bytes if spec["mode"] == "probe" else np.nan
        rows.append(dict(section="memory", **row))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# approximation-quality throughput


def _cosine(estimate: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (estimate @ g) / (torch.linalg.vector_norm(estimate, dim=-1) * torch.linalg.vector_norm(g))


def approximation_cosines(samples: int, n: int, k: int, *, batched: bool, seed: int = 0,
                          device: torch.device | str = "cpu", tangents: torch.Tensor | None = None) -> torch.Tensor:
    """Cosines of ``samples`` projection estimates of ``g = 1`` (oracle JVPs ``d = V g``), as the paper's
    approximation experiment computes them: all at once as a (samples, k, n) batch through
    :func:`fg_analysis.aggregate.projection`, or one sample at a time in a Python loop. ``tangents`` (shape
    (samples, k, n)) skips the sampling, so only aggregation and cosines are compared."""
    generator = torch.Generator(device=device).manual_seed(seed)
    g = torch.ones(n, device=device)
    law = Normal()
    if batched:
        V = tangents if tangents is not None else law.sample(k, n, batch_shape=(samples,), generator=generator,
                                                             device=device)
        return _cosine(aggregate_module.projection(V, V @ g), g)
    cosines = []
    for i in range(samples):
        V = tangents[i] if tangents is not None else law.sample(k, n, generator=generator, device=device)
        cosines.append(_cosine(aggregate_module.projection(V, V @ g), g))
    return torch.stack(cosines)


def benchmark_approximation(config: BenchConfig, device: torch.device) -> pd.DataFrame:
    """Seconds of the batched and the looped approximation computation (median of 3 interleaved runs), with
    the tangents drawn inside (``stage="with sampling"``) and pre-drawn (``stage="aggregation"``: projection
    and cosine only; drawing k·n normals per sample costs the same either way and can dominate)."""
    kwargs = dict(n=config.approximation_n, k=config.approximation_k, seed=config.seed, device=device)
    samples = config.approximation_samples
    drawn = Normal().sample(config.approximation_k, config.approximation_n, batch_shape=(samples,),
                            generator=torch.Generator(device=device).manual_seed(config.seed), device=device)
    approximation_cosines(8, batched=True, **kwargs)
    approximation_cosines(8, batched=False, **kwargs)
    variants = {(stage, batched): dict(tangents=drawn if stage == "aggregation" else None)
                for stage in ("with sampling", "aggregation") for batched in (True, False)}
    timings: dict[tuple, list[float]] = {key: [] for key in variants}
    for _ in range(3):
        for (stage, batched), extra in variants.items():
            _sync(device)
            start = time.perf_counter()
            cosines = approximation_cosines(samples, batched=batched, **kwargs, **extra)
            _sync(device)
            timings[(stage, batched)].append(time.perf_counter() - start)
            mean_cosine = float(cosines.mean())
    rows = []
    for (stage, batched), seconds in timings.items():
        rows.append(dict(section="approximation", method="batched" if batched else "loop", stage=stage,
                         n=config.approximation_n, k=config.approximation_k, samples=samples,
                         seconds=median(seconds), samples_per_second=samples / median(seconds),
                         mean_cosine=mean_cosine))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------
# what skipping the products with zero tangents saves

#: (perturbation, k) timed with and without :mod:`fg_analysis.zero_tangents` on the reference model: weight
#: perturbation's JVP (a zero tangent for the data entering the first layer) and activity perturbation's whole
#: gradient (a zero tangent for every weight)
ZERO_TANGENT_CASES = (("weight", 1), ("activity", 16))


def benchmark_zero_tangents(config: BenchConfig, device: torch.device) -> pd.DataFrame:
    """Seconds of forward-mode work on the reference model with the zero-tangent kernels installed
    (``"skipped"``) and with PyTorch's materialized zeros (``"materialized"``), timed round-robin on the same
    inputs: rows ``section="zero_tangents"`` per :data:`ZERO_TANGENT_CASES`."""
    spec = next(spec for spec in config.models if spec.label == config.reference_model)
    model = spec.build(seed=config.seed, device=device)
    inputs, targets = _batch(spec, seed=config.seed, device=device)
    f, params = module_objective(model, F.cross_entropy)
    generator = torch.Generator(device=device).manual_seed(config.seed)

    def timed(perturbation: str, k: int, materialized: bool) -> Callable[[], dict[str, float]]:
        if perturbation == "weight":
            estimator = ForwardGradient(k, generator=generator, skip_zero_products=not materialized)
            V = Normal().sample(k, sum(p.numel() for p in params.values()), generator=generator, device=device)

            def work():
                estimator.derivatives(f, params, V, inputs, targets)
        else:
            def work():
                gradients.activity_perturbation(model, inputs, targets, k=k, mode="forward", generator=generator,
                                                skip_zero_products=not materialized)

        def step() -> dict[str, float]:
            with torch.no_grad() if perturbation == "weight" else nullcontext():
                _sync(device)
                start = time.perf_counter()
                work()
                _sync(device)
                return {"seconds": time.perf_counter() - start}
        return step

    steps = {(perturbation, k, materialized): timed(perturbation, k, materialized)
             for perturbation, k in ZERO_TANGENT_CASES for materialized in (False, True)}
    timings = time_round_robin(steps, repeats=config.repeats, warmup=config.warmup)
    return pd.DataFrame([dict(section="zero_tangents", model=spec.label, perturbation=perturbation, k=k,
                              method="materialized" if materialized else "skipped", seconds=phases["seconds"])
                         for (perturbation, k, materialized), phases in timings.items()])


# ----------------------------------------------------------------------------------------------------------
# run, summarize, print


def compute(config: BenchConfig, *, progress: bool = True) -> pd.DataFrame:
    """Run the whole benchmark of ``config`` on ``config.device`` (no caching): one tidy frame."""
    device = resolve_device(config.device)
    with torch_threads(config.threads):
        frames = [benchmark_steps(config, device, progress=progress),
                  benchmark_memory(config, device, progress=progress),
                  benchmark_approximation(config, device),
                  benchmark_zero_tangents(config, device)]
    return pd.concat(frames, ignore_index=True)


def run(config: BenchConfig, *, cache: ResultsCache | None = None, refresh: bool = True,
        progress: bool = True) -> pd.DataFrame:
    """Measure ``config`` (``refresh=False``: reuse a stored record of the same config and machine) and store the
    result with its environment; the record is in ``frame.attrs["record"]``."""
    cache = cache or ResultsCache()
    with torch_threads(config.threads):  # the stored environment names the threads the run used
        return cache.get(config, lambda c: compute(c, progress=progress), device=config.device, refresh=refresh)


def _step_seconds(steps: pd.DataFrame, model: str, method: str, aggregator: str, k: int | None,
                  phase: str = "step") -> float:
    selected = steps[(steps.model == model) & (steps.method == method) & (steps.aggregator == aggregator)
                     & (steps.phase == phase)]
    if k is not None:
        selected = selected[selected.k == k]
    return float(selected.seconds.median()) if len(selected) else math.nan


def step_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-step medians: one row per (model, n, k), columns BP and the FG variants (seconds)."""
    steps = frame[(frame.section == "step") & (frame.phase == "step")].copy()
    steps["variant"] = ["bp" if method == "bp" else f"{method}-{aggregator}"
                        for method, aggregator in zip(steps.method, steps.aggregator)]
    return steps.pivot_table(index=["model", "n", "k"], columns="variant", values="seconds").reset_index()


def phase_table(frame: pd.DataFrame, method: str = "vmap", aggregator: str = "projection") -> pd.DataFrame:
    """The FG step split into sampling, JVPs, aggregation and update (median seconds), per (model, k)."""
    steps = frame[(frame.section == "step") & (frame.method == method) & (frame.aggregator == aggregator)
                  & frame.phase.isin(FG_PHASES)]
    table = steps.pivot_table(index=["model", "k"], columns="phase", values="seconds")
    return table[[p for p in FG_PHASES if p in table.columns]].reset_index()


def cost_models(frame: pd.DataFrame, config_fit_ks: Sequence[int], model: str) -> dict:
    """Fit :class:`fg_analysis.cost.StepTimeModel` to the vmapped steps of ``model`` on ``config_fit_ks`` and
    check it on the other k: coefficients, held-out errors, break-even k and the k of most descent per second."""
    steps = frame[(frame.section == "step") & (frame.phase == "step") & (frame.model == model)]
    if steps.empty:
        return {}
    n = int(steps.n.iloc[0])
    bp = float(steps[steps.method == "bp"].seconds.median())
    result = {"model": model, "n": n, "bp_seconds": bp}
    for aggregator, quadratic in (("projection", True), ("mean", False)):
        fg = steps[(steps.method == "vmap") & (steps.aggregator == aggregator)].sort_values("k")
        fit_ks = [k for k in config_fit_ks if k in set(fg.k)]
        try:
            check = cost.held_out_errors(fg.k, fg.seconds, fit_ks, n=n, quadratic=quadratic)
        except ValueError as error:
            result[aggregator] = {"error": str(error)}
            continue
        fitted = cost.fit_step_time(fg.k[fg.k.isin(fit_ks)], fg.seconds[fg.k.isin(fit_ks)], n=n, quadratic=quadratic)
        held = check[check.held_out]
        result[aggregator] = {
            "fixed_s": fitted.fixed, "per_tangent_s": fitted.per_tangent, "quadratic_s": fitted.quadratic,
            "fit_ks": fit_ks, "held_out_ks": [int(k) for k in held.k],
            "held_out_max_abs_error": float(held.relative_error.abs().max()) if len(held) else math.nan,
            "break_even_k": cost.break_even_k(fitted, bp),
            "optimal_k": cost.optimal_k(fitted, n, aggregator, k_max=min(n, 4096)),
        }
    return result


def _over_bp(steps: pd.DataFrame, model: str, aggregator: str, k: int) -> float:
    """T_FG(k) / T_BP of the vmapped step: the median of per-round ratios (``over_bp``, paired with the BP step
    of the same round), or for records without them the ratio of the two medians of that k's rounds."""
    rows = steps[(steps.model == model) & (steps.method == "vmap") & (steps.aggregator == aggregator)
                 & (steps.k == k) & (steps.phase == "step")]
    if "over_bp" in rows and len(rows) and math.isfinite(rows.over_bp.iloc[0]):
        return float(rows.over_bp.iloc[0])
    return _step_seconds(steps, model, "vmap", aggregator, k) / _step_seconds(steps, model, "bp", "-", k)


def summary(frame: pd.DataFrame, *, reference_model: str = "fc-1024", fit_ks: Sequence[int] = (1, 2, 4, 8)) -> dict:
    """The headline numbers of a benchmark frame (what the JSON line prints). Ratios are ``slower / faster``
    as named: ``vmap_over_loop_k16 = T_loop / T_vmap`` (> 1: vmap is faster), ``fg1_over_bp = T_FG(1) / T_BP``."""
    steps = frame[frame.section == "step"]
    ref = reference_model
    vmap16 = _step_seconds(steps, ref, "vmap", "projection", 16)
    ks = sorted(int(k) for k in steps[(steps.model == ref) & (steps.method == "vmap")].k.unique() if k <= 16)
    projection_over_mean = {k: _step_seconds(steps, ref, "vmap", "projection", k)
                            / _step_seconds(steps, ref, "vmap", "mean", k) for k in ks}
    memory = frame[frame.section == "memory"]
    growth, r2 = {}, math.nan
    for mode in ("bp", "fg"):
        rows = memory[memory["mode"] == mode].sort_values("depth")
        if len(rows) >= 2:
            growth[mode] = float(rows.net_bytes.iloc[-1] / rows.net_bytes.iloc[0])
            if mode == "bp":
                line = cost.fit_linear(rows.depth, rows.net_bytes)
                residual = rows.net_bytes - line(rows.depth)
                r2 = float(1 - (residual ** 2).sum() / ((rows.net_bytes - rows.net_bytes.mean()) ** 2).sum())
    probe = memory[memory["mode"] == "probe"]
    approximation = frame[frame.section == "approximation"]
    if "stage" not in approximation:
        approximation = approximation.assign(stage="with sampling")

    def _approximation_ratio(stage: str) -> float:
        rows = approximation[approximation["stage"] == stage].set_index("method")
        if not {"loop", "batched"} <= set(rows.index):
            return math.nan
        return float(rows.loc["loop", "seconds"] / rows.loc["batched", "seconds"])

    result = {
        "vmap_over_loop_k16": _step_seconds(steps, ref, "loop", "projection", 16) / vmap16,
        "vmap_over_loop_jvp_only_k16": (_step_seconds(steps, ref, "loop", "projection", 16, "jvp")
                                        / _step_seconds(steps, ref, "vmap", "projection", 16, "jvp")),
        "projection_over_mean_k16": projection_over_mean.get(16, math.nan),
        "projection_over_mean_max": max(projection_over_mean.values()) if projection_over_mean else math.nan,
        # FG k=1 is the single-tangent forward gradient (∇f·v) v: the mean of one tangent, the paper's baseline
        "fg1_over_bp": _over_bp(steps, ref, "mean", 1),
        "fg16_over_bp": _over_bp(steps, ref, "projection", 16),
        "fg_memory_growth": growth.get("fg", math.nan),
        "bp_memory_growth": growth.get("bp", math.nan),
        "bp_memory_linearity_r2": r2,
        "memory_probe_error": (float(probe.net_bytes.iloc[0] / probe.expected_bytes.iloc[0] - 1)
                               if len(probe) else math.nan),
        "batched_over_loop_approximation": _approximation_ratio("aggregation"),
        "batched_over_loop_approximation_with_sampling": _approximation_ratio("with sampling"),
    }
    zeros = frame[frame.section == "zero_tangents"]
    for perturbation, k in ZERO_TANGENT_CASES if len(zeros) else ():  # records made before the kernels have none
        rows = zeros[(zeros.perturbation == perturbation) & (zeros.k == k)].set_index("method").seconds
        result[f"zero_tangent_speedup_{perturbation}_k{k}"] = float(rows["materialized"] / rows["skipped"])
    models = cost_models(frame, fit_ks, ref)
    if "projection" in models and "break_even_k" in models["projection"]:
        result["break_even_k_projection"] = models["projection"]["break_even_k"]
        result["optimal_k_projection"] = models["projection"]["optimal_k"]
        result["cost_model_held_out_error"] = models["projection"]["held_out_max_abs_error"]
    record = frame.attrs.get("record", {})
    environment = record.get("environment", {})
    result["device"] = environment.get("device", "unknown")
    result["device_name"] = environment.get("device_name", "unknown")
    result["torch"] = environment.get("versions", {}).get("torch", torch.__version__)
    result["targets_met"] = {key: _compare(result.get(key, math.nan), op, bound)
                             for key, op, bound, _ in targets_for(result["device"])}
    return {key: (round(value, 4) if isinstance(value, float) and math.isfinite(value) else value)
            for key, value in result.items()}


def _compare(value: float, op: str, bound: float) -> bool:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value >= bound if op == ">=" else value <= bound


def format_report(frame: pd.DataFrame, result: dict) -> str:
    """The readable tables: step times, FG breakdown, memory, approximation throughput, cost model, targets."""
    lines = []
    record = frame.attrs.get("record", {})
    environment = record.get("environment", {})
    lines.append(f"device: {environment.get('device_name', '?')}  versions: "
                 + ", ".join(f"{k} {v}" for k, v in environment.get("versions", {}).items()
                             if k in ("python", "torch", "numpy")))
    lines.append(f"commit: {environment.get('commit')}  saved: {record.get('saved')}  "
                 f"wall time: {record.get('wall_time_s', float('nan')) or float('nan'):.1f} s")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format",
                           lambda x: f"{x:.4g}"):
        table = step_table(frame)
        ms = table.copy()
        for column in ms.columns:
            if column not in ("model", "n", "k"):
                ms[column] = ms[column] * 1000
        lines += ["", "Training step, median milliseconds (gradient + SGD update):", ms.to_string(index=False)]
        phases = phase_table(frame)
        for column in FG_PHASES:
            if column in phases:
                phases[column] = phases[column] * 1000
        lines += ["", "FG step (vmap, projection) by phase, median milliseconds:", phases.to_string(index=False)]
        memory = frame[frame.section == "memory"].copy()
        if len(memory):
            for column in ("peak_bytes", "net_bytes", "parameter_bytes", "tangent_bytes", "expected_bytes"):
                memory[column] = memory[column] / 2 ** 20
            lines += ["", f"Peak memory of one gradient computation, MiB ({memory.memory_method.iloc[0]}; "
                          "net = above parameters, inputs, tangents and the gradient):",
                      memory[["mode", "depth", "width", "batch", "k", "peak_bytes", "net_bytes", "parameter_bytes",
                              "tangent_bytes", "expected_bytes"]].rename(
                          columns=lambda c: c.replace("_bytes", "_MiB")).to_string(index=False)]
        approximation = frame[frame.section == "approximation"]
        if len(approximation):
            lines += ["", "Approximation-quality throughput (projection cosines):",
                      approximation[[c for c in ("method", "stage", "n", "k", "samples", "seconds",
                                                 "samples_per_second", "mean_cosine")
                                     if c in approximation]].to_string(index=False)]
        zeros = frame[frame.section == "zero_tangents"]
        if len(zeros):
            table = zeros.pivot_table(index=["perturbation", "k"], columns="method", values="seconds") * 1000
            lines += ["", "Forward mode with PyTorch's zero tangents materialized or skipped "
                          "(fg_analysis.zero_tangents), median milliseconds:", table.reset_index().to_string(index=False)]
    gpu = targets_for(result["device"]) is GPU_TARGETS
    model = record.get("config", {}).get("reference_model", "the reference model")
    lines += ["", f"Targets for {'a GPU' if gpu else 'the CPU'}, set for the FC-1024 (measured on {model}, "
                  "not asserted):"]
    for key, op, bound, meaning in targets_for(result["device"]):
        met = result["targets_met"].get(key)
        lines.append(f"  [{'met' if met else 'MISSED'}] {key} = {result.get(key)} {op} {bound}: {meaning}")
    return "\n".join(lines)


def published_records(root: Path = PUBLISHED) -> list[pd.DataFrame]:
    """Every stored benchmark under ``root`` (default ``results/published``), newest first, each frame with its
    record in ``attrs["record"]`` (config, environment: versions, device, machine, commit)."""
    frames = []
    for folder in sorted((Path(root) / BenchConfig.__name__).glob("*/")):
        if (folder / "result.csv").is_file() and (folder / "record.json").is_file():
            frame = pd.read_csv(folder / "result.csv")
            frame.attrs["record"] = json.loads((folder / "record.json").read_text())
            frames.append(frame)
    return sorted(frames, key=lambda f: f.attrs["record"].get("saved", ""), reverse=True)


def rq3_runs(roots: Sequence[Path] | None = None) -> pd.DataFrame | None:
    """The stored RQ3 runs (:mod:`fg_analysis.experiments.rq3`: frames with ``test_accuracy`` and ``wall_time_s``)
    from the results cache and ``results/published``, one row per run (its last epoch) with its config's fields
    and an ``approach`` label (BP, FG, ``<aggregator> k=<k>``); ``None`` when that module or its results are
    missing. Nothing is trained here: RQ3 runs take minutes to hours."""
    try:
        import importlib

        rq3 = importlib.import_module("fg_analysis.experiments.rq3")
    except ImportError:
        return None
    classes = {name for name, value in vars(rq3).items() if isinstance(value, type)}
    roots = roots or [ResultsCache().root, PUBLISHED]
    frames = []
    for root in roots:
        for name in classes:
            for folder in sorted((Path(root) / name).glob("*/")):
                if (folder / "result.csv").is_file() and (folder / "record.json").is_file():
                    frame = pd.read_csv(folder / "result.csv")
                    if not {"test_accuracy", "wall_time_s"} <= set(frame.columns) or frame.empty:
                        continue
                    final = frame.sort_values("epoch").tail(1) if "epoch" in frame else frame
                    config = json.loads((folder / "record.json").read_text()).get("config", {})
                    fields = {key: value for key, value in config.items()
                              if key not in final.columns and not isinstance(value, (list, dict))}
                    frames.append(final.assign(**fields, source=str(folder)))
    if not frames:
        return None
    runs = pd.concat(frames, ignore_index=True)
    if {"method", "aggregator", "k"} <= set(runs.columns):
        runs["approach"] = [("BP" if m == "bp" else "FG" if int(k) == 1 else f"{a} k={int(k)}")
                            for m, a, k in zip(runs["method"], runs["aggregator"], runs["k"])]
    return runs


# ----------------------------------------------------------------------------------------------------------
# figures (matplotlib axes in, nothing global)


def plot_time_against_k(frame: pd.DataFrame, ax, *, model: str, fit_ks: Sequence[int]) -> None:
    """Measured whole-step medians against k (points) and the fitted :class:`fg_analysis.cost.StepTimeModel`
    (lines, fitted on ``fit_ks``), with BP as a horizontal line."""
    steps = frame[(frame.section == "step") & (frame.phase == "step") & (frame.model == model)]
    n = int(steps.n.iloc[0])
    grid = np.geomspace(1, steps.k.max(), 100)
    for (method, aggregator), group in steps[steps.method != "bp"].groupby(["method", "aggregator"]):
        group = group.sort_values("k")
        points = ax.plot(group.k, 1000 * group.seconds, "o", label=f"FG {method} {aggregator}")
        fit = [k for k in fit_ks if k in set(group.k)]
        if len(fit) >= 3:
            fitted = cost.fit_step_time(group.k[group.k.isin(fit)], group.seconds[group.k.isin(fit)], n=n,
                                        quadratic=aggregator == "projection")
            ax.plot(grid, 1000 * fitted(grid), "-", color=points[0].get_color(), alpha=0.6)
    ax.axhline(1000 * steps[steps.method == "bp"].seconds.median(), color="black", ls="--", label="BP")
    ax.set(xscale="log", yscale="log", xlabel="tangents k", ylabel="ms per training step",
           title=f"{model} (n = {n:,}); lines: T(k) fitted on k in {tuple(fit_ks)}")
    ax.legend(fontsize=8)


def plot_breakdown(frame: pd.DataFrame, ax, *, model: str) -> None:
    """Stacked bars: the vmapped-projection FG step split into sampling, JVPs, aggregation and update."""
    table = phase_table(frame).query("model == @model").set_index("k")[list(FG_PHASES)] * 1000
    table.plot.bar(stacked=True, ax=ax)
    ax.set(xlabel="tangents k", ylabel="ms", title=f"{model}: where an FG step's time goes")


def plot_memory(frame: pd.DataFrame, ax) -> None:
    """Net peak memory of one gradient computation against depth, BP and FG, with least-squares lines."""
    memory = frame[(frame.section == "memory") & frame["mode"].isin(["bp", "fg"])]
    for mode, group in memory.groupby("mode"):
        group = group.sort_values("depth")
        label = "BP" if mode == "bp" else f"FG (k = {int(group.k.iloc[0])}, vmapped JVPs)"
        points = ax.plot(group.depth, group.net_bytes / 2 ** 20, "o", label=label)
        line = cost.fit_linear(group.depth, group.net_bytes)
        ax.plot(group.depth, line(group.depth) / 2 ** 20, "-", color=points[0].get_color(), alpha=0.6)
    batch, width = int(memory.batch.iloc[0]), int(memory.width.iloc[0])
    ax.set(xlabel="hidden layers", ylabel="MiB above params, inputs, tangents, gradient",
           title=f"peak memory, width {width}, batch {batch}")
    ax.legend(fontsize=8)


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring. The last printed line is the JSON of :func:`summary`."""
    parser = argparse.ArgumentParser(prog="python -m fg_analysis bench", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the quick preset (default; ~3 min on 2 busy CPU cores)")
    size.add_argument("--full", action="store_true", help="the paper-sized preset (FC-256/1024/4096, k to 64, "
                      "ResNet-18, ViT, depths 2..32 at batch 4096)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads during the run (default: 1 on the CPU, see BenchConfig; 0: torch's default)")
    parser.add_argument("--cached", action="store_true", help="reuse a stored result of this config and machine")
    parser.add_argument("--publish", action="store_true",
                        help="store the result in results/published (committed, shown by the book)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    overrides = {} if args.threads is None else {"threads": args.threads}
    config = BenchConfig.preset("paper" if args.full else "quick", device=args.device, **overrides)
    cache = ResultsCache(PUBLISHED, published=None) if args.publish else ResultsCache()
    frame = run(config, cache=cache, refresh=not args.cached, progress=not args.no_progress)
    result = summary(frame, reference_model=config.reference_model, fit_ks=config.fit_ks)
    print(f"benchmark preset={config.preset} on {config.machine}")
    print(format_report(frame, result))
    models = cost_models(frame, config.fit_ks, config.reference_model)
    if models:
        print("\nCost model T(k) = fixed + per_tangent*k + quadratic*n*k^2 (fitted on k in "
              f"{config.fit_ks}, {config.reference_model}, n = {models['n']}, T_BP = {1000 * models['bp_seconds']:.2f} ms):")
        for aggregator in ("projection", "mean"):
            m = models.get(aggregator, {})
            if "fixed_s" in m:
                print(f"  {aggregator}: fixed {1000 * m['fixed_s']:.2f} ms, per tangent {1000 * m['per_tangent_s']:.2f} ms,"
                      f" quadratic {m['quadratic_s']:.3g} s; held-out k {m['held_out_ks']}: max |error| "
                      f"{100 * m['held_out_max_abs_error']:.1f}%; break-even k vs BP {m['break_even_k']:.2f}; "
                      f"k of most descent per second {m['optimal_k']}")
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
