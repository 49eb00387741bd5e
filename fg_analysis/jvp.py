"""Directional derivatives ``d_i = ∇f(θ)·v_i`` for k tangents at once: the forward half of a forward gradient.

The package's one vocabulary for how the JVPs are computed, :data:`MODES` (Flügel et al., arXiv 2410.17764,
Sec. III; Baydin et al., arXiv 2202.08587), used by every module, command and page:

* ``"forward"`` (:func:`jvps`): real forward-mode AD, ``torch.func.jvp`` vmapped over the k tangents (one
  batched pass);
* ``"sequential"`` (:func:`sequential_jvps`): one ``torch.autograd.forward_ad`` pass per tangent, the reference
  implementation's approach, kept as the baseline that benchmarks compare against;
* ``"oracle"`` (:func:`oracle_jvps`): the exact ``V ∇f`` from a reverse-mode gradient, for cheap analysis at
  scale (the paper's "simulated" forward gradient: the same values, but no measurement of forward-mode cost).

:func:`per_tensor_jvps` takes a separate tangent set per parameter tensor (the reference code's per-layer
variant). Non-finite derivatives raise :class:`NonFiniteDerivatives`, a ``FloatingPointError`` that the
package's loops record as a divergence instead of ending a sweep.

Functions are ``f(params, *args) -> scalar`` (a floating-point value) with ``params`` a tensor or a dict of
tensors of one real floating-point dtype; tangents are flat, ``V`` of shape ``(k, P)`` (see
:mod:`fg_analysis.params`), in the parameters' dtype. Anything else (bool, integer or complex tensors, mixed
dtypes) is a one-line ``ValueError`` (:mod:`fg_analysis.checks`). :func:`module_loss` turns an ``nn.Module``
and a loss into such a function through ``torch.func.functional_call``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from torch.autograd import forward_ad
from torch.func import functional_call, grad_and_value, jvp, vmap

from fg_analysis.checks import all_finite, check_real, floating_dtype
from fg_analysis.params import Params, numel, ravel, unraveler

#: how directional derivatives are computed (see the module docstring)
MODES = ("forward", "sequential", "oracle")

ScalarFunction = Callable[..., torch.Tensor]


class NonFiniteDerivatives(FloatingPointError, ValueError):
    """The function overflowed or is NaN where it was differentiated: in an optimization loop, a divergence."""


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else a ``ValueError`` naming them."""
    if mode not in MODES:
        raise ValueError(f"unknown JVP mode {mode!r}; choose one of {MODES}")
    return mode


def check_scalar(value: torch.Tensor) -> torch.Tensor:
    """``value`` if it is one real number, else a ``ValueError`` that says how to fix ``f``."""
    _check_value(value)
    if value.numel() != 1:
        raise ValueError(f"f must return a scalar (one number); got a tensor of shape {tuple(value.shape)}: "
                         "reduce it, e.g. .sum() or .mean()")
    return value


def _check_value(value: torch.Tensor) -> torch.Tensor:
    """f must return a real floating-point tensor: say so plainly instead of failing deep inside torch.func, or,
    for an integer or bool value, silently giving zero derivatives (a rounded or thresholded loss is piecewise
    constant). (A tensor of values, e.g. one per sample, gives one derivative per value and tangent.)"""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"f must return a scalar tensor; got {type(value).__name__}")
    if value.is_complex():
        raise ValueError("f must return a real scalar; got a complex value (forward gradients need a real loss)")
    if not value.is_floating_point():
        raise ValueError(f"f must return a floating-point value; got dtype {value.dtype}, whose derivatives are "
                         "zero: compute the loss in floating point (no rounding, casting or comparison at the end)")
    return value


def _check_tangents(params: Params, V: torch.Tensor) -> None:
    """``V`` of shape (k, P), real floating point in the parameters' one dtype, on their device, and finite."""
    dtype = floating_dtype(params)
    check_real(V, "tangents")
    size = numel(params)
    if V.ndim != 2 or V.shape[1] != size:
        raise ValueError(f"tangents must have shape (k, P) = (k, {size}); got {tuple(V.shape)}")
    flat_device = next(iter(params.values())).device if isinstance(params, Mapping) else params.device
    if V.device != flat_device:
        raise ValueError(f"tangents are on {V.device} but the parameters are on {flat_device}")
    _check_dtypes(V.dtype, dtype, "the parameters")
    if not all_finite(V):
        raise ValueError("tangents contain NaN or inf")


def _check_dtypes(tangents: torch.dtype, other: torch.dtype, what: str) -> None:
    """Tangents must have the dtype of the parameters (or gradient) they perturb: torch.func would otherwise
    compute in whichever dtype it promotes to, and ``d`` would change dtype with k."""
    if tangents != other:
        raise ValueError(f"tangents have dtype {tangents} but {what} {other}: sample them in that dtype "
                         f"(e.g. law.sample(k, n, dtype={other}))")


def _check_derivatives(d: torch.Tensor) -> torch.Tensor:
    """The k derivatives are finite, or :class:`NonFiniteDerivatives` (f overflowed or returned NaN)."""
    if not all_finite(d):
        raise NonFiniteDerivatives("directional derivatives contain NaN or inf: f overflowed or is NaN at params")
    return d


def jvps(f: ScalarFunction, params: Params, V: torch.Tensor, *args) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(params), V ∇f(params))`` by forward-mode AD, vmapped over the rows of ``V``.

    The primal does not depend on the tangent, so vmap evaluates it once and pushes all k tangents through
    one batched pass: cost about ``1 + k·c`` forward passes with ``c`` the JVP overhead, and no stored
    activations for a backward pass. A single tangent needs no batching: k = 1 is one plain ``jvp``
    (vmap over a batch of one costs more; the benchmark's records say how much).

    >>> import torch
    >>> value, d = jvps(lambda x: (x ** 2).sum(), torch.tensor([1., 2.]), torch.eye(2))
    >>> d
    tensor([2., 4.])
    """
    _check_tangents(params, V)
    unravel = unraveler(params)

    def along(v: torch.Tensor):
        return jvp(lambda p: _check_value(f(p, *args)), (params,), (unravel(v),))

    if V.shape[0] == 1:
        value, derivative = along(V[0])
        return value, _check_derivatives(derivative.unsqueeze(0))
    values, derivatives = vmap(along)(V)
    return values[0], _check_derivatives(derivatives)


def sequential_jvps(f: ScalarFunction, params: Params, V: torch.Tensor,
                    *args) -> tuple[torch.Tensor, torch.Tensor]:
    """The same as :func:`jvps`, one ``torch.autograd.forward_ad`` pass per tangent (k full passes)."""
    _check_tangents(params, V)
    unravel = unraveler(params)
    derivatives = []
    for v in V:
        tangent = unravel(v)
        with forward_ad.dual_level():
            if isinstance(params, torch.Tensor):
                dual = forward_ad.make_dual(params, tangent)
            else:
                dual = {name: forward_ad.make_dual(p, tangent[name]) for name, p in params.items()}
            primal, derivative = forward_ad.unpack_dual(_check_value(f(dual, *args)))
            derivatives.append(derivative)
            value = primal.detach()
    return value, _check_derivatives(torch.stack(derivatives))


def per_tensor_jvps(f: ScalarFunction, params: Mapping[str, torch.Tensor], tangents: Mapping[str, torch.Tensor],
                    *args) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One set of k tangents per parameter tensor: ``d[name] = V_name ∇_name f``, each of shape (k,).

    ``tangents[name]`` has shape ``(k, *params[name].shape)``; every tensor's JVPs perturb that tensor alone
    (its own vmapped pass), so the cost is (number of tensors) × k directional derivatives.
    """
    if set(tangents) != set(params):
        raise ValueError(f"need one tangent set per parameter tensor: missing {sorted(set(params) - set(tangents))}, "
                         f"unknown {sorted(set(tangents) - set(params))}")
    floating_dtype(params)
    derivatives, value = {}, None
    for name, p in params.items():
        if tangents[name].shape[1:] != p.shape:
            raise ValueError(f"tangents for {name!r} must have shape (k, *{tuple(p.shape)}); "
                             f"got {tuple(tangents[name].shape)}")
        _check_dtypes(check_real(tangents[name], f"tangents[{name!r}]").dtype, p.dtype, f"params[{name!r}]")

        def along(v, name=name):
            return jvp(lambda q: f({**params, name: q}, *args), (params[name],), (v,))

        values, derivatives[name] = vmap(along)(tangents[name])
        value = values[0]
    return value, derivatives


def gradient(f: ScalarFunction, params: Params, *args) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f(params), ∇f(params))`` by reverse-mode AD, the gradient flattened to shape (P,)."""
    floating_dtype(params)
    grads, value = grad_and_value(lambda p, *a: check_scalar(f(p, *a)))(params, *args)
    return value, ravel(grads)[0]


def oracle_jvps(grad: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """The exact directional derivatives ``V g`` from a known (flat) gradient ``g``: no forward mode at all."""
    check_real(V, "tangents")
    check_real(grad, "the gradient")
    if grad.ndim != 1 or V.shape[-1] != grad.shape[0]:
        raise ValueError(f"tangents (..., k, P) and a flat gradient (P,) must agree in P; got "
                         f"{tuple(V.shape)} and {tuple(grad.shape)}")
    _check_dtypes(V.dtype, grad.dtype, "the gradient")
    return V @ grad


def module_loss(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> ScalarFunction:
    """``f(params, inputs, targets) = loss_fn(model_{params}(inputs), targets)`` via ``functional_call``.

    Buffers (e.g. BatchNorm statistics) are taken from the model as they are; pass ``params`` as
    ``dict(model.named_parameters())`` (detached or not) to differentiate with respect to all parameters.
    """
    buffers = dict(model.named_buffers())

    def loss(params: Mapping[str, torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(model, ({**params}, buffers), (inputs,)), targets)

    return loss
