"""Plain gradient descent on the closed-form problems with a backprop or forward-gradient direction.

``x ← x − lr · ĝ`` with no momentum, as in the paper's closed-form experiments (Flügel et al.,
arXiv 2410.17764, Sec. IV-B): ``ĝ`` is the true gradient (``method="bp"``) or a k-tangent forward gradient
(``method="fg"``) with a chosen aggregator and tangent law. A run stops by its stopping rule (below) after
``patience`` stalled steps, on a non-finite value or gradient (a divergence, recorded as ``"non-finite"`` with the
step it happened at; the other seeds go on), or at the problem's step limit. The seed seeds only the tangents.

Stopping rules (:data:`STOPPING_RULES`):

* ``"no-decrease"`` (the default, the reference implementation's ``function_optimization/gradient_descent.py``):
  a step stalls when ``f_t ≥ f_{t−1}``; any decrease against the previous step resets the count. A noisy
  forward-gradient run that keeps making small decreases goes on.
* ``"no-new-best"``: a step stalls when ``f_t`` is not below the best value so far; it stops noisy runs early
  (on Rosenbrock thousands of steps before the reference rule would).
Several seeds run together as one batch (:func:`descend`), each with its own generator and its own
:class:`~fg_analysis.estimator.ForwardGradient`.

>>> trace = minimize("sphere", 8, method="bp", lr=0.5, max_steps=5)
>>> list(trace.columns)[:4], float(trace["f"].iloc[-1])
(['seed', 'step', 'f', 'best_f'], 0.0)
"""

from __future__ import annotations

import pandas as pd
import torch

from fg_analysis.checks import check_count
from fg_analysis.estimator import ForwardGradient
from fg_analysis.metrics import cosine, norm_ratio
from fg_analysis.problems import Problem, get_problem

METHODS = ("bp", "fg")
#: the stopping rules of :func:`descend` (module docstring); the first is the reference implementation's
STOPPING_RULES = ("no-decrease", "no-new-best")


def descend(problem: str | Problem, n: int, *, method: str, k: int = 1, aggregator: str = "mean",
            tangents="normal", lr: float, seeds=(0,), max_steps: int | None = None,
            patience: int = 50, stopping: str = "no-decrease", mode: str = "forward", record_every: int = 1,
            dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> pd.DataFrame:
    """Gradient descent for every seed in ``seeds`` at once; one row per (seed, recorded step).

    Columns: ``seed, step, f, best_f, cosine, norm_ratio`` (``cosine`` and ``norm_ratio = |ĝ|/|g|`` compare the
    direction used at that step with the true gradient), ``stopped`` (why the run ended, on its last row:
    ``"patience"``, ``"non-finite"`` or ``"max_steps"``). ``stopping`` is one of :data:`STOPPING_RULES`. ``mode`` is one
    of :data:`fg_analysis.jvp.MODES`:
    ``"forward"`` computes the directional derivatives by real forward-mode AD (``torch.func``), ``"oracle"``
    forms the same numbers as ``V ∇f``.
    Rows are kept every ``record_every`` steps plus each run's last step.
    """
    problem = get_problem(problem)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    check_count(n, "n", "dimension")
    check_count(patience, "patience", "patience (steps without improvement)")
    if stopping not in STOPPING_RULES:
        raise ValueError(f"unknown stopping rule {stopping!r}; choose one of {STOPPING_RULES}")
    check_count(record_every, "record_every", "recording interval")
    seeds = list(seeds)
    if not seeds or not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in seeds):
        raise ValueError(f"seeds must be a non-empty sequence of integers; got {seeds!r}")
    estimators = [ForwardGradient(k, aggregator=aggregator, tangents=tangents, mode=mode, skip_zero_products=False,
                                  generator=torch.Generator(device=device).manual_seed(seed)) for seed in seeds]
    if not (isinstance(lr, (int, float)) and lr > 0 and lr < float("inf")):
        raise ValueError(f"learning rate must be a positive number; got lr={lr!r}")
    max_steps = problem.max_steps if max_steps is None else check_count(max_steps, "max_steps", "step limit")
    x = problem.start(n, dtype=dtype, device=device).expand(len(seeds), n).clone()
    best = torch.full((len(seeds),), float("inf"), dtype=dtype, device=device)
    previous = best.clone()
    stall = torch.zeros(len(seeds), dtype=torch.long, device=device)
    active = torch.ones(len(seeds), dtype=torch.bool, device=device)
    rows, finished = [], {}
    for step in range(max_steps + 1):
        x_leaf = x.detach().requires_grad_(True)
        value = problem.f(x_leaf)
        (grad,) = torch.autograd.grad(value.sum(), x_leaf)
        value = value.detach()
        finite = torch.isfinite(value) & torch.isfinite(grad).all(dim=-1)
        if method == "bp":
            direction = grad
        else:
            direction = _fg_directions(problem, estimators, torch.where(finite.unsqueeze(-1), x, 0.0), grad, mode)
        improved = value < best
        best = torch.where(improved & active, value, best)
        progress = improved if stopping == "no-new-best" else ~(value >= previous)  # NaN: never a stall
        stall = torch.where(progress, 0, stall + 1)
        previous = value
        # one transfer per quantity and step; the per-seed bookkeeping below is plain Python
        values, bests, cosines, ratios = (t.tolist() for t in (value, best, cosine(direction, grad),
                                                                 norm_ratio(direction, grad)))
        reasons = {"non-finite": (~finite).tolist(), "patience": (stall >= patience).tolist(),
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


def _fg_directions(problem: Problem, estimators: list[ForwardGradient], x: torch.Tensor, grad: torch.Tensor,
                   mode: str) -> torch.Tensor:
    """Every seed's forward gradient at its row of ``x`` (S × n), each from its own estimator's tangents.

    The problems are separable over seeds (``f`` of the batch is the sum of the seeds' values), so one JVP pass
    of the batch along the stacked tangents gives every seed's derivatives (``mode="forward"``); the oracle
    mode forms them from ``grad`` as ``V g``."""
    seeds, n = x.shape
    V = torch.stack([fg.sample(n, dtype=x.dtype, device=x.device) for fg in estimators])
    if mode == "oracle":
        d = torch.einsum("skn,sn->sk", V, torch.where(torch.isfinite(grad), grad, 0.0))
    else:
        tangent_batch = V.transpose(0, 1).reshape(V.shape[1], -1)
        d = estimators[0].derivatives(lambda flat: problem.f(flat.view(seeds, n)), x.reshape(-1), tangent_batch,
                                      outputs=True)[1].mT
    return estimators[0].combine(V, d)


def minimize(problem: str | Problem, n: int, *, method: str, k: int = 1, aggregator: str = "mean",
             tangents="normal", lr: float, seed: int = 0, max_steps: int | None = None,
             patience: int = 50, stopping: str = "no-decrease", mode: str = "forward",
             dtype: torch.dtype = torch.float64) -> pd.DataFrame:
    """Minimize one problem in ``R^n`` from the paper's start point; one row per step (see :func:`descend`).

    ``lr`` is the step size; the paper's tuned rate of a setting is
    :func:`fg_analysis.experiments.learning_rates.closed_form_rate`.
    """
    return descend(problem, n, method=method, k=k, aggregator=aggregator, tangents=tangents, lr=lr, seeds=(seed,),
                   max_steps=max_steps, patience=patience, stopping=stopping, mode=mode, dtype=dtype)
