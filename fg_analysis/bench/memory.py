"""Peak memory of one gradient computation against depth: BP stores activations, forward mode does not.

FC nets of width ``memory_width`` with ``memory_depths`` hidden layers and a large batch (activation dominated),
one gradient computation each (BP: forward + backward; ``fg``: the k vmapped JVPs of the fast path, the parameters
as one flat vector; ``fg-dict``: the same JVPs with the parameters as a dict of tensors, as
:func:`fg_analysis.estimator.forward_gradient` takes a module's), net of parameters, inputs, tangents and the
parameter-sized gradient. On a GPU: ``torch.cuda.max_memory_allocated``. On a CPU every
measurement runs in a fresh subprocess with glibc's ``MALLOC_MMAP_THRESHOLD_=65536`` (every block ≥ 64 KiB is its
own mapping and goes back to the OS on free, so the resident set follows the live tensors): the peak is ``VmHWM``
after resetting it (``/proc/self/clear_refs``) minus the resident set just before. A probe that allocates a known
number of bytes validates the method in every run.

References:
    Flügel et al. arXiv:2410.17764 (RQ4, memory). Baydin et al. arXiv:2202.08587.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fg_analysis.bench.config import BenchConfig
from fg_analysis.estimator import ForwardGradient, module_objective
from fg_analysis.nets.models import build_model
from fg_analysis.runs.env import resolve_device
from fg_analysis.runs.paths import REPOSITORY

__all__ = ["MALLOC_ENV", "benchmark_memory", "measure_memory", "memory_in_subprocess"]

#: glibc settings under which the resident set follows the live tensors (see the module docstring)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}

_REPOSITORY = REPOSITORY


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

    Args:
        spec: ``mode`` (``"bp"``, ``"fg"``, ``"fg-dict"`` or ``"probe"``), ``depth``, ``width``, ``batch``, ``k``,
        ``seed``,
            ``device``, ``probe_bytes`` and optionally ``threads``. Parameters, inputs and (FG) tangents exist
            before the measurement starts, so they are not counted; BP's parameter-sized ``.grad`` buffers are
            created inside it and are subtracted (``gradient_bytes``). ``probe`` allocates and fills
            ``probe_bytes`` and nothing else: the method's check.

    Returns:
        ``mode, depth, width, batch, k, n, peak_bytes, gradient_bytes, net_bytes, parameter_bytes,
        tangent_bytes, memory_method``. On CUDA from ``max_memory_allocated``; on the CPU from the resident set
        (meaningful only in a fresh process started with :data:`MALLOC_ENV`, see :func:`memory_in_subprocess`).

    Raises:
        ValueError: for an unknown mode.
    """
    device = resolve_device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    mode, depth, width, batch, k = spec["mode"], spec["depth"], spec["width"], spec["batch"], spec["k"]
    if mode not in ("bp", "fg", "fg-dict", "probe"):
        raise ValueError(f"unknown memory mode {mode!r}; choose 'bp', 'fg', 'fg-dict' or 'probe'")
    model = build_model("fc", input_shape=(784,), n_classes=10, width=width, hidden_layers=depth,
                        seed=spec["seed"], device=device)
    n = sum(p.numel() for p in model.parameters())
    generator = torch.Generator(device=device).manual_seed(spec["seed"])
    inputs = torch.randn(batch, 784, generator=generator, device=device)
    targets = torch.randint(0, 10, (batch,), generator=generator, device=device)
    f, params = module_objective(model, F.cross_entropy, flat=mode == "fg")
    fg = mode.startswith("fg")
    V = torch.randn(k, n, generator=generator, device=device) if fg else None

    def compute(x, y):
        if mode == "bp":
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
        elif fg:
            with torch.no_grad():
                ForwardGradient(k).derivatives(f, params, V, x, y)
        else:
            buffer = torch.empty(spec["probe_bytes"] // 4, device=device)
            buffer.fill_(1.0)
            del buffer

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
    return dict(mode=mode, depth=depth, width=width, batch=batch, k=k if fg else 0, n=n,
                peak_bytes=int(peak), gradient_bytes=gradient_bytes, net_bytes=int(peak - gradient_bytes),
                parameter_bytes=4 * n, tangent_bytes=4 * n * k if fg else 0,
                memory_method=method)


def memory_in_subprocess(spec: dict, *, timeout: float = 600) -> dict:
    """:func:`measure_memory` in a fresh Python process with :data:`MALLOC_ENV` (the CPU measurements).

    Returns:
        What :func:`measure_memory` returns.

    Raises:
        RuntimeError: when the subprocess fails (with the end of its standard error).
    """
    code = ("import json, sys; from fg_analysis.bench.memory import measure_memory; "
            "print(json.dumps(measure_memory(json.loads(sys.argv[1]))))")
    env = {**os.environ, **MALLOC_ENV}
    done = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=_REPOSITORY)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement {spec} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def benchmark_memory(config: BenchConfig, device: torch.device, *, progress: bool = True) -> pd.DataFrame:
    """Peak memory of BP, FG and FG on dict parameters (vmapped JVPs, ``memory_k`` tangents) at every depth, and
    the probe.

    Returns:
        Rows of section ``"memory"``: one per (mode, depth), the probe first with its ``expected_bytes``.
    """
    base = dict(width=config.memory_width, batch=config.memory_batch, seed=config.seed, device=device.type,
                probe_bytes=config.memory_probe_bytes, threads=config.threads)
    specs = [dict(base, mode="probe", depth=config.memory_depths[0], k=0)]
    specs += [dict(base, mode=mode, depth=depth, k=config.memory_k)
              for depth in config.memory_depths for mode in ("bp", "fg", "fg-dict")]
    measure = measure_memory if device.type == "cuda" else memory_in_subprocess
    rows = []
    for spec in tqdm(specs, desc="memory", disable=not progress, mininterval=2.0):
        row = measure(spec)
        row["expected_bytes"] = config.memory_probe_bytes if spec["mode"] == "probe" else np.nan
        rows.append(dict(section="memory", **row))
    return pd.DataFrame(rows)
