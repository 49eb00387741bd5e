"""Plain gradient descent on the closed-form problems with a backprop or forward-gradient direction.

``x ← x − lr · ĝ`` with no momentum, as in the paper's closed-form experiments (Flügel et al.,
arXiv 2410.17764, Sec. IV-B): ``ĝ`` is the true gradient (``method="bp"``) or a k-tangent forward gradient
(``method="fg"``) with a chosen aggregator and tangent law. A run stops after ``patience`` consecutive steps
without a new best value, on a non-finite value, or at the problem's step limit. The seed seeds only the
tangents. Several seeds run together as one batch (:func:`descend`), each with its own generator.

>>> trace = minimize("sphere", 8, method="bp", lr=0.5, max_steps=5)
>>> list(trace.columns)[:4], float(trace["f"].iloc[-1])
(['seed', 'step', 'f', 'best_f'], 0.0)
"""

from __future__ import annotations

import pandas as pd
import torch

from fg_analysis.aggregate import get_aggregator
from fg_analysis.checks import check_count
from fg_analysis.jvp import jvps
from fg_analysis.lrs import paper_lr
from fg_analysis.problems import Problem, get_problem
from fg_analysis.tangents import FixedAngle, tangent_law

METHODS = ("bp", "fg")


def paper_learning_rate(problem: str | Problem, n: int, *, method: str, k: int = 1, aggregator: str = "mean",
                        tangents="normal") -> float:
    """The paper's tuned rate for this setting (``lrs/math.csv``); for fixed-angle tangents the rates of
    ``lrs/math__custom_tangents.csv`` (the projection there with its normal-sampler row, as the paper did)."""
    name = get_problem(problem).name
    law = tangent_law(tangents)
    if method == "fg" and aggregator == "mean" and isinstance(law, FixedAngle):
        sampler = f"FG(k={k},agg=mean,normalize=False,sampler=specific_angle_{law.theta:g})"
        return paper_lr("math__custom_tangents", function=name, n=n, method=method, aggregator=aggregator, k=k,
                        optimizer=sampler)
    if method == "fg" and aggregator == "projection" and isinstance(law, FixedAngle):
        sampler = f"FG(k={k},agg=orthogonal_projection,normalize=False,sampler=normal)"
        return paper_lr("math__custom_tangents", function=name, n=n, method=method, aggregator=aggregator, k=k,
                        optimizer=sampler)
    return paper_lr("math", function=name, n=n, method=method, aggregator=aggregator, k=k)


def descend(problem: str | Problem, n: int, *, method: str, k: int = 1, aggregator: str = "mean",
            tangents="normal", lr: float | None = None, seeds=(0,), max_steps: int | None = None,
            patience: int = 50, mode: str = "jvp", record_every: int = 1, dtype: torch.dtype = torch.float64,
            device: str | torch.device = "cpu") -> pd.DataFrame:
    """Gradient descent for every seed in ``seeds`` at once; one row per (seed, recorded step).

    Columns: ``seed, step, f, best_f, cosine, norm_ratio`` (``cosine`` and ``norm_ratio = |ĝ|/|g|`` compare the
    direction used at that step with the true gradient), ``stopped`` (why the run ended, on its last row:
    ``"patience"``, ``"non-finite"`` or ``"max_steps"``). ``mode="jvp"`` computes directional derivatives with
    real forward-mode AD (``torch.func``); ``mode="oracle"`` forms the same numbers as ``V ∇f``.
    Rows are kept every ``record_every`` steps plus each run's last step.
    """
    problem = get_problem(problem)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if mode not in ("jvp", "oracle"):
        raise ValueError(f"unknown mode {mode!r}; choose 'jvp' or 'oracle'")
    check_count(k, "k", "number of tangents")
    if patience < 1 or record_every < 1:
        raise ValueError(f"patience and record_every must be >= 1; got {patience}, {record_every}")
    law, aggregate = tangent_law(tangents), get_aggregator(aggregator)
    if lr is None:
        lr = paper_learning_rate(problem, n, method=method, k=k, aggregator=aggregator, tangents=law)
    if not lr > 0:
        raise ValueError(f"learning rate must be positive; got lr={lr!r}")
    max_steps = problem.max_steps if max_steps is None else max_steps
    seeds = list(seeds)
    generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
    x = problem.start(n, dtype=dtype, device=device).expand(len(seeds), n).clone()
    best = torch.full((len(seeds),), float("inf"), dtype=dtype, device=device)
    stall = torch.zeros(len(seeds), dtype=torch.long, device=device)
    active = torch.ones(len(seeds), dtype=torch.bool, device=device)
    rows, finished = [], {}
    for step in range(max_steps + 1):
        x_leaf = x.detach().requires_grad_(True)
        value = problem.f(x_leaf)
        (grad,) = torch.autograd.grad(value.sum(), x_leaf)
        value = value.detach()
        if method == "bp":
            direction = grad
        else:
            V = torch.stack([law.sample(k, n, generator=gen, dtype=dtype, device=device) for gen in generators])
            if mode == "jvp":  # f is separable over seeds, so one JVP of the batch gives every seed's derivative
                tangent_batch = V.transpose(0, 1).reshape(k, -1)
                d = jvps(lambda flat: problem.f(flat.view(len(seeds), n)), x.reshape(-1), tangent_batch)[1].T
            else:
                d = torch.einsum("skn,sn->sk", V, grad)
            direction = aggregate(V, d)
        improved = value < best
        best = torch.where(improved & active, value, best)
        stall = torch.where(improved, 0, stall + 1)
        cosine = torch.nn.functional.cosine_similarity(direction, grad, dim=-1, eps=1e-300)
        norm_ratio = torch.linalg.vector_norm(direction, dim=-1) / torch.linalg.vector_norm(grad, dim=-1)
        # one transfer per quantity and step; the per-seed bookkeeping below is plain Python
        values, bests, cosines, ratios = (t.tolist() for t in (value, best, cosine, norm_ratio))
        reasons = {"non-finite": (~torch.isfinite(value)).tolist(), "patience": (stall >= patience).tolist(),
                   "max_steps": [step == max_steps] * len(seeds)}
        for index in range(len(seeds)):
            if index in finished:
                continue
            reason = next((name for name, flags in reasons.items() if flags[index]), None)
            if reason is not None:
                finished[index] = reason
            if reason is not None or step % record_every == 0:
                rows.append((seeds[index], step, values[index], bests[index], cosines[index], ratios[index],
                             reason or ""))
        if len(finished) == len(seeds):
            break
        active = torch.tensor([i not in finished for i in range(len(seeds))], device=device)
        x = torch.where(active.unsqueeze(-1), x - lr * direction, x)
    return pd.DataFrame(rows, columns=["seed", "step", "f", "best_f", "cosine", "norm_ratio", "stopped"])


def minimize(problem: str | Problem, n: int, *, method: str, k: int = 1, aggregator: str = "mean",
             tangents="normal", lr: float | None = None, seed: int = 0, max_steps: int | None = None,
             patience: int = 50, mode: str = "jvp") -> pd.DataFrame:
    """Minimize one problem in ``R^n`` from the paper's start point; one row per step (see :func:`descend`).

    ``lr=None`` takes the paper's tuned rate for the setting (:func:`paper_learning_rate`).
    """
    return descend(problem, n, method=method, k=k, aggregator=aggregator, tangents=tangents, lr=lr, seeds=(seed,),
                   max_steps=max_steps, patience=patience, mode=mode)
