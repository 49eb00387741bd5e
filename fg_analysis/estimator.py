"""The multi-tangent forward gradient: one composition of sample → JVPs → aggregate that every caller uses.

Flügel et al. (arXiv 2410.17764, Sec. III, Alg. 1): draw k tangents ``V`` (k × n) from a tangent law, take the
directional derivatives ``d = V ∇f(θ)`` by forward-mode AD, and combine them, ``ĝ = aggregate(V, d)``. Every
built-in aggregator's estimate lies in the span of the tangents, ``ĝ = Vᵀ c`` with weights
``c = d`` (sum), ``d / k`` (mean) or ``(V Vᵀ)⁻¹ d`` (orthogonal projection onto ``span(V)``,
:func:`fg_analysis.aggregate.coefficients`), so a descent step ``θ ← θ − η Vᵀ c`` needs one pass over ``V`` and
never forms ``ĝ``.

:class:`ForwardGradient` holds what repeated steps share: the law, k, the aggregator, the JVP mode
(:data:`fg_analysis.jvp.MODES`), the generator and a reused tangent buffer. Its methods are the phases
(:meth:`~ForwardGradient.sample`, :meth:`~ForwardGradient.derivatives`, :meth:`~ForwardGradient.weights`,
:meth:`~ForwardGradient.combine`), composed by :meth:`~ForwardGradient.__call__` (an :class:`Estimate`),
:meth:`~ForwardGradient.estimate` (``ĝ`` shaped like the parameters) and :meth:`~ForwardGradient.step` (the
in-place update, the fast path). :func:`forward_gradient` is the one-off call. The optimizer of the closed-form
problems, the network gradient sources, the benchmark and the RQ1 sweep all go through this class.

Forward mode skips the products with absent (zero) tangents inside the estimator's own passes only
(:func:`fg_analysis.zero_tangents.skipping`); PyTorch is left as it was when a call returns.

>>> import torch
>>> fg = ForwardGradient(k=3, aggregator="projection", generator=torch.Generator().manual_seed(0))
>>> x = torch.ones(3, dtype=torch.float64)
>>> torch.allclose(fg.estimate(lambda x: (x ** 2).sum(), x), 2 * x)   # k = n: the projection is exact
True
>>> value = fg.step(lambda x: (x ** 2).sum(), x, lr=0.5)               # x ← x − 0.5·ĝ = 0 (in place)
>>> float(value), x.abs().max().item() < 1e-12
(3.0, True)

References:
    Flügel, Coquelin, Weiel, Debus, Streit, Götz. Beyond Backpropagation: Optimization with Multi-Tangent
    Forward Gradients. arXiv:2410.17764. Baydin, Pearlmutter, Syme, Wood, Torr. Gradients without
    Backpropagation. arXiv:2202.08587.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import torch
from torch import nn

from fg_analysis import jvp as jvp_module
from fg_analysis import zero_tangents
from fg_analysis.aggregate import AGGREGATORS, Aggregator, coefficients, get_aggregator, projection
from fg_analysis.checks import check_count, check_floating_dtype, floating_dtype
from fg_analysis.params import Params, numel, unraveler
from fg_analysis.tangents import TangentLaw, tangent_law

__all__ = ["Estimate", "ForwardGradient", "batch_norms_in_training", "forward_gradient", "module_objective"]

#: called after each phase of :meth:`ForwardGradient.step` with the phase's name (the benchmark's clock)
PhaseHook = Callable[[str], None]

PHASES = ("sample", "jvp", "aggregate", "update")


class Estimate(NamedTuple):
    """One forward gradient: ``value = f(θ)``, tangents ``V`` (k × n), derivatives ``d = V∇f`` and the flat
    estimate ``gradient = aggregate(V, d)`` (``Vᵀ c`` for the built-in aggregators)."""

    value: torch.Tensor
    tangents: torch.Tensor
    derivatives: torch.Tensor
    gradient: torch.Tensor


class ForwardGradient:
    """A k-tangent forward-gradient estimator; see the module docstring.

    Args:
        k: the number of tangents.
        aggregator: ``"sum"``, ``"mean"``, ``"projection"`` or a callable ``(V, d) -> ĝ`` (batched over leading
            dimensions).
        tangents: a tangent law or its registered name (:mod:`fg_analysis.tangents`).
        mode: how the JVPs are computed, one of :data:`fg_analysis.jvp.MODES`: ``"forward"`` (vmapped
            ``torch.func``), ``"sequential"`` (one forward-AD pass per tangent) or ``"oracle"`` (``V g`` from a
            reverse-mode gradient).
        generator: the source of randomness for the tangents (the global RNG is never used).
        scale_correction: for the projection, rescale by ``E[χ_n]/E[χ_k]`` (off in the paper's runs).
        skip_zero_products: skip forward mode's products with absent tangents during the estimator's own passes
            (:mod:`fg_analysis.zero_tangents`); the values are the same either way.
    """

    def __init__(self, k: int = 1, *, aggregator: str | Aggregator = "projection",
                 tangents: str | TangentLaw = "normal", mode: str = "forward",
                 generator: torch.Generator | None = None, scale_correction: bool = False,
                 skip_zero_products: bool = True):
        self.k = check_count(k, "k", "number of tangents")
        self.aggregate = get_aggregator(aggregator)
        self.aggregator_name = next((name for name, fn in AGGREGATORS.items() if fn is self.aggregate), None)
        if scale_correction and self.aggregate is not projection:
            raise ValueError("scale_correction applies to the projection aggregator only")
        self.scale_correction = scale_correction
        self.law = tangent_law(tangents)
        self.mode = jvp_module.check_mode(mode)
        self.generator = generator
        self.skip_zero_products = skip_zero_products
        self._buffer: torch.Tensor | None = None

    def __repr__(self) -> str:
        aggregator = self.aggregator_name or getattr(self.aggregate, "__name__", "custom")
        return f"ForwardGradient(k={self.k}, aggregator={aggregator!r}, tangents={self.law}, mode={self.mode!r})"

    # -- the phases ------------------------------------------------------------------------------------------

    def sample(self, n: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
               ) -> torch.Tensor:
        """``V`` (k × n) from the law, written into one reused buffer (a new draw each call: the returned tensor
        is overwritten by the next call). ``dtype`` must be real floating point."""
        check_floating_dtype(dtype)
        device = torch.device(device) if device is not None else (
            self.generator.device if self.generator is not None else torch.device("cpu"))
        buffer = self._buffer
        if buffer is None or buffer.shape != (self.k, n) or buffer.dtype != dtype or buffer.device != device:
            buffer = self._buffer = torch.empty(self.k, n, dtype=dtype, device=device)
        return self.law.sample(self.k, n, generator=self.generator, out=buffer)

    def derivatives(self, f: Callable[..., torch.Tensor], params: Params, V: torch.Tensor, *args,
                    outputs: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(params), V ∇f(params))`` by the estimator's mode; :class:`~fg_analysis.jvp.NonFiniteDerivatives`
        when they are not finite.

        ``f`` returns a scalar; with ``outputs=True`` it may return a tensor of values (e.g. one per sample or
        per independent run) and ``d`` gets their shape after the tangent axis, ``(k, *values.shape)``
        (forward and sequential modes)."""
        if self.mode == "oracle":
            if outputs:
                raise ValueError("mode='oracle' differentiates a scalar f; per-output derivatives need "
                                 "mode='forward' or 'sequential'")
            value, grad = jvp_module.gradient(f, params, *args)
            return value.detach(), jvp_module._check_derivatives(jvp_module.oracle_jvps(grad.detach(), V))
        compute = jvp_module.jvps if self.mode == "forward" else jvp_module.sequential_jvps
        with zero_tangents.skipping(self.skip_zero_products):
            value, d = compute(f if outputs else (lambda p, *a: jvp_module.check_scalar(f(p, *a))), params, V,
                               *args)
        return value.detach(), d

    def weights(self, V: torch.Tensor, d: torch.Tensor) -> torch.Tensor | None:
        """The weights ``c`` with ``ĝ = Vᵀ c`` (batched), or ``None`` for a custom aggregator or the scale-corrected
        projection, which :meth:`combine` applies as they are."""
        if self.aggregator_name is None or self.scale_correction:
            return None
        return coefficients(V, d, self.aggregator_name)

    def combine(self, V: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``ĝ = aggregate(V, d)``, batched over leading dimensions of ``V`` (..., k, n) and ``d`` (..., k)."""
        if self.scale_correction:
            return projection(V, d, scale_correction=True)
        return self.aggregate(V, d)

    # -- compositions ----------------------------------------------------------------------------------------

    def __call__(self, f: Callable[..., torch.Tensor], params: Params, *args) -> Estimate:
        """Sample, differentiate, aggregate: the :class:`Estimate` at ``params`` (flat ``gradient``)."""
        flat = _first(params)
        V = self.sample(numel(params), dtype=flat.dtype, device=flat.device)
        value, d = self.derivatives(f, params, V, *args)
        return Estimate(value, V, d, self.combine(V, d))

    def estimate(self, f: Callable[..., torch.Tensor], params: Params, *args) -> Params:
        """``ĝ`` in the structure of ``params`` (a tensor or a dict of tensors)."""
        return unraveler(params)(self(f, params, *args).gradient)

    def step(self, f: Callable[..., torch.Tensor] | nn.Module, *args, lr: float, loss_fn: Callable | None = None,
             on_phase: PhaseHook | None = None) -> torch.Tensor:
        """One descent step in place, ``θ ← θ − lr · ĝ``; returns ``f(θ)`` before the step.

        ``step(f, params, *args, lr=)`` for a function ``f(params, *args)``; ``step(model, inputs, targets,
        loss_fn=, lr=)`` for a module, whose trainable parameters become views of one flat vector on the first
        step (:func:`module_objective` with ``flat=True``; later steps find them so and copy nothing).
        For a flat tensor ``params`` (so for every module) and a built-in aggregator this is one pass over ``V``,
        ``θ.addmv_(Vᵀ, c, alpha=−lr)``, without forming ``ĝ`` (the fast path). A dict of tensors is updated
        tensor by tensor from ``ĝ``. ``on_phase(name)`` is called after each of :data:`PHASES`.
        """
        if isinstance(f, nn.Module):
            if loss_fn is None:
                raise ValueError("a module needs loss_fn(outputs, targets); the arguments are (inputs, targets)")
            f, params = module_objective(f, loss_fn, flat=True)
        elif not args:
            raise ValueError("params are required for a plain function f(params, *args)")
        else:
            params, *args = args
        hook = on_phase or (lambda name: None)
        flat = _first(params)
        with torch.no_grad():
            V = self.sample(numel(params), dtype=flat.dtype, device=flat.device)
            hook("sample")
            value, d = self.derivatives(f, params, V, *args)
            hook("jvp")
            c = self.weights(V, d) if isinstance(params, torch.Tensor) and params.ndim == 1 else None
            estimate = self.combine(V, d) if c is None else None
            hook("aggregate")
            if c is not None:
                params.addmv_(V.T, c, alpha=-lr)
            elif isinstance(params, torch.Tensor):
                params.sub_(estimate.view_as(params), alpha=lr)
            else:
                for name, piece in unraveler(params)(estimate).items():
                    params[name].sub_(piece, alpha=lr)
            hook("update")
        return value


def _first(params: Params) -> torch.Tensor:
    """The (first) parameter tensor, whose dtype and device the tangents take, once :func:`floating_dtype` has
    checked that all parameters share one real floating-point dtype (a dtype test per tensor, nothing more)."""
    floating_dtype(params)
    return params if isinstance(params, torch.Tensor) else next(iter(params.values()))


def flat_vector(parameters: list[torch.Tensor]) -> torch.Tensor | None:
    """The flat vector whose consecutive pieces the ``parameters`` are (contiguous views, in order, of one
    storage, as :func:`module_objective` leaves them), as a tensor sharing their memory; ``None`` otherwise."""
    first = parameters[0].detach()
    offset, storage = first.storage_offset(), first.untyped_storage().data_ptr()
    for p in parameters:
        if (not p.is_contiguous() or p.dtype != first.dtype or p.untyped_storage().data_ptr() != storage
                or p.storage_offset() != offset):
            return None
        offset += p.numel()
    return first.as_strided((offset - first.storage_offset(),), (1,))


def batch_norms_in_training(model: nn.Module) -> bool:
    """Whether the module has BatchNorm in train mode that tracks running statistics: what forward mode under
    vmapped tangents cannot update (:func:`forward_gradient` refuses it there)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
               for m in model.modules())


def module_objective(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                     flat: bool = False) -> tuple[Callable[..., torch.Tensor], Params]:
    """``(f, params)`` for a module's *trainable* parameters: ``f(params, inputs, targets)`` is the loss.

    ``flat=False``: ``params`` is a dict of detached parameter tensors (frozen ``requires_grad=False`` parameters
    are constants of ``f`` and get no tangent dimensions). ``flat=True``: ``params`` is one flat vector, and the
    module's trainable parameters become views into it, so an in-place update of the vector (the fast path of
    :meth:`ForwardGradient.step`) updates the module.
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the module has no trainable parameters (requires_grad=True) to estimate a gradient for")
    floating_dtype(dict(named), "parameters")  # one flat vector holds them all: one real floating-point dtype
    frozen = {name: p.detach() for name, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def loss(params: Mapping[str, torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return loss_fn(torch.func.functional_call(model, ({**frozen, **params}, buffers), (inputs,)), targets)

    if not flat:
        return loss, {name: p.detach() for name, p in named}
    vector = flat_vector([p for _, p in named])
    if vector is None:
        vector = torch.cat([p.detach().reshape(-1) for _, p in named])
        for (_, p), piece in zip(named, vector.split([p.numel() for _, p in named])):
            p.data = piece.view_as(p)
    unravel = unraveler({name: p.detach() for name, p in named})
    return (lambda theta, inputs, targets: loss(unravel(theta), inputs, targets)), vector


def forward_gradient(f: Callable[..., torch.Tensor] | nn.Module, params: Params | None = None, *,
                     args: tuple = (), loss_fn: Callable | None = None, k: int = 1,
                     aggregator: str | Aggregator = "projection", tangents: str | TangentLaw = "normal",
                     mode: str = "forward", per_tensor: bool = False, scale_correction: bool = False,
                     generator: torch.Generator | None = None) -> Params:
    """Estimate ``∇f(params)`` from ``k`` directional derivatives (one call of :class:`ForwardGradient`).

    Args:
        f: ``f(params, *args) -> scalar``, or an ``nn.Module`` together with ``loss_fn(outputs, targets)``
            (then ``args = (inputs, targets)`` and ``params`` defaults to the module's trainable parameters).
        params: a tensor or a dict of tensors of one real floating-point dtype (bool, integer, complex or mixed
            dtypes are a ``ValueError``); the estimate has the same structure.
        k, aggregator, tangents, mode, scale_correction, generator: as for :class:`ForwardGradient`.
        per_tensor: one independent tangent set per parameter tensor, aggregated tensor by tensor (the
            reference code's per-layer projection), instead of one global tangent across all parameters.

    Returns:
        ``ĝ`` shaped like ``params``.

    A module with BatchNorm in train mode: ``mode="forward"`` refuses it (vmapped tangents cannot update the
    running statistics; use ``model.eval()``, ``mode="sequential"`` or ``mode="oracle"``), and the other modes
    update the running statistics once per call, as one forward pass would.

    >>> import torch
    >>> g = forward_gradient(lambda x: (x ** 2).sum(), torch.ones(3, dtype=torch.float64), k=3,
    ...                      generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(g, 2 * torch.ones(3, dtype=torch.float64))   # k = n: the projection is exact
    True
    """
    estimator = ForwardGradient(k, aggregator=aggregator, tangents=tangents, mode=mode, generator=generator,
                                scale_correction=scale_correction)
    key = (estimator.k, estimator.aggregate, estimator.law, estimator.mode, scale_correction)
    if _reusable and _reusable[0][0] == key and _reusable[0][1].generator is generator:
        estimator = _reusable.pop()[1]
    if isinstance(f, nn.Module):
        if loss_fn is None:
            raise ValueError("a module needs loss_fn(outputs, targets); args are (inputs, targets)")
        model = f
        if mode == "forward" and batch_norms_in_training(model):
            raise ValueError("mode='forward' cannot run a module with BatchNorm in train mode (vmapped tangents "
                             "cannot update its running statistics): call model.eval(), or use "
                             "mode='sequential' or mode='oracle'")
        trainable = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
        if params is None and not per_tensor and trainable and flat_vector(list(trainable.values())) is not None:
            f, vector = module_objective(model, loss_fn, flat=True)  # one flat vector already: the step's path
            compute = lambda: unraveler(trainable)(estimator(f, vector, *args).gradient)
        else:
            f, own = module_objective(model, loss_fn)
            params = own if params is None else params
            compute = lambda: _estimate(estimator, f, params, args, per_tensor)
        if batch_norms_in_training(model):
            return _reusing(key, estimator, lambda: _once_for_statistics(model, compute))
        return _reusing(key, estimator, compute)
    if params is None:
        raise ValueError("params are required for a plain function f(params, *args)")
    return _reusing(key, estimator, lambda: _estimate(estimator, f, params, args, per_tensor))


#: ``[(options, estimator)]``: the estimator of the last :func:`forward_gradient` call, whose tangent buffer the
#: next call with the same options (and the same generator) reuses; taken out while a call runs, so that a
#: nested call never writes into the tangents of the call around it
_reusable: list[tuple[tuple, ForwardGradient]] = []


def _reusing(key: tuple, estimator: ForwardGradient, compute: Callable[[], Params]) -> Params:
    try:
        return compute()
    finally:
        _reusable[:] = [(key, estimator)]


def _estimate(estimator: ForwardGradient, f, params: Params, args: tuple, per_tensor: bool) -> Params:
    if not per_tensor:
        return estimator.estimate(f, params, *args)
    if not isinstance(params, Mapping):
        raise ValueError("per_tensor=True needs a dict of named parameter tensors")
    if estimator.mode != "forward":
        raise ValueError("per_tensor=True computes its JVPs with torch.func (mode='forward')")
    flat = _first(params)
    tangent_sets = {name: estimator.law.sample(estimator.k, p.numel(), generator=estimator.generator,
                                               dtype=flat.dtype, device=flat.device).reshape(estimator.k, *p.shape)
                    for name, p in params.items()}
    with zero_tangents.skipping(estimator.skip_zero_products):
        _, derivatives = jvp_module.per_tensor_jvps(f, params, tangent_sets, *args)
    for d in derivatives.values():
        jvp_module._check_derivatives(d)
    return {name: estimator.combine(tangent_sets[name].reshape(estimator.k, -1), derivatives[name]).reshape(p.shape)
            for name, p in params.items()}


def _once_for_statistics(model: nn.Module, compute: Callable[[], Params]) -> Params:
    """Run ``compute`` (which may evaluate the module several times) and keep the running statistics of its
    first evaluation only, as one forward pass would leave them."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    first: dict[int, dict[str, torch.Tensor]] = {}

    def capture(index: int, module: nn.Module) -> None:
        if index not in first:
            first[index] = {name: b.detach().clone() for name, b in module.named_buffers()}

    hooks = [m.register_forward_hook(lambda m, i, o, index=index: capture(index, m)) for index, m in enumerate(norms)]
    try:
        result = compute()
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        for index, m in enumerate(norms):
            for name, b in m.named_buffers():
                if index in first:
                    b.copy_(first[index][name])
    return result
