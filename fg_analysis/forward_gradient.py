"""One call from a function (or a module and a loss) to a multi-tangent forward gradient.

``forward_gradient`` composes the three steps of Flügel et al. (arXiv 2410.17764, Alg. 1):
sample tangents ``V`` (k × P) from a tangent law → directional derivatives ``d = V ∇f`` → aggregate
``(V, d) -> ĝ``, and returns ``ĝ`` in the parameters' shapes.

>>> import torch
>>> g = forward_gradient(lambda x: (x ** 2).sum(), torch.ones(3, dtype=torch.float64), k=3,
...                      generator=torch.Generator().manual_seed(0))
>>> torch.allclose(g, 2 * torch.ones(3, dtype=torch.float64))   # k = n: the projection is exact
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from fg_analysis import jvp as jvp_module
from fg_analysis.aggregate import Aggregator, get_aggregator, projection
from fg_analysis.params import Params, numel, ravel
from fg_analysis.tangents import TangentLaw, tangent_law

MODES = ("jvp", "sequential", "oracle")


def directional_derivatives(f: Callable[..., torch.Tensor], params: Params, V: torch.Tensor, *args,
                            mode: str = "jvp") -> torch.Tensor:
    """``V ∇f(params)`` of shape (k,) by ``mode``: ``"jvp"`` (vmapped torch.func), ``"sequential"``
    (one forward-AD pass per tangent) or ``"oracle"`` (autograd gradient, then ``V g``)."""
    if mode == "jvp":
        return jvp_module.jvps(f, params, V, *args)[1]
    if mode == "sequential":
        return jvp_module.sequential_jvps(f, params, V, *args)[1]
    if mode == "oracle":
        return jvp_module.oracle_jvps(jvp_module.gradient(f, params, *args)[1], V)
    raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")


def forward_gradient(f: Callable[..., torch.Tensor] | nn.Module, params: Params | None = None, *,
                     args: tuple = (), loss_fn: Callable | None = None, k: int = 1,
                     aggregator: str | Aggregator = "projection", tangents: str | TangentLaw = "normal",
                     mode: str = "jvp", per_tensor: bool = False, scale_correction: bool = False,
                     generator: torch.Generator | None = None) -> Params:
    """Estimate ``∇f(params)`` from ``k`` directional derivatives.

    Args:
        f: ``f(params, *args) -> scalar``, or an ``nn.Module`` together with ``loss_fn(outputs, targets)``
            (then ``args = (inputs, targets)`` and ``params`` defaults to the module's parameters).
        params: a tensor or a dict of tensors; the estimate has the same structure.
        k: number of tangents; aggregator: ``"sum"``, ``"mean"``, ``"projection"`` or a callable ``(V, d)``.
        tangents: a tangent law or its registered name (see :mod:`fg_analysis.tangents`).
        mode: how the JVPs are computed (see :func:`directional_derivatives`).
        per_tensor: one independent tangent set per parameter tensor, aggregated tensor by tensor (the
            reference code's per-layer projection), instead of one global tangent across all parameters.
        scale_correction: for the projection, rescale by ``E[χ_P]/E[χ_k]`` (off in the paper's runs).
        generator: the source of randomness for the tangents (the global RNG is never used).
    """
    if isinstance(f, nn.Module):
        if loss_fn is None:
            raise ValueError("a module needs loss_fn(outputs, targets); args are (inputs, targets)")
        if params is None:
            params = {name: p.detach() for name, p in f.named_parameters()}
        f = jvp_module.module_loss(f, loss_fn)
    elif params is None:
        raise ValueError("params are required for a plain function f(params, *args)")
    law = tangent_law(tangents)
    aggregate = get_aggregator(aggregator)
    if scale_correction:
        if aggregate is not projection:
            raise ValueError("scale_correction applies to the projection aggregator only")

        def aggregate(V, d):
            return projection(V, d, scale_correction=True)

    flat, unravel = ravel(params)
    sample = dict(generator=generator, dtype=flat.dtype, device=flat.device)
    if not per_tensor:
        V = law.sample(k, numel(params), **sample)
        return unravel(aggregate(V, directional_derivatives(f, params, V, *args, mode=mode)))
    if not isinstance(params, Mapping):
        raise ValueError("per_tensor=True needs a dict of named parameter tensors")
    if mode != "jvp":
        raise ValueError("per_tensor=True computes its JVPs with torch.func (mode='jvp')")
    tangent_sets = {name: law.sample(k, p.numel(), **sample).reshape(k, *p.shape) for name, p in params.items()}
    _, derivatives = jvp_module.per_tensor_jvps(f, params, tangent_sets, *args)
    return {name: aggregate(tangent_sets[name].reshape(k, -1), derivatives[name]).reshape(p.shape)
            for name, p in params.items()}
