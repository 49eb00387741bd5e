"""Gradient sources for training networks: backpropagation and multi-tangent forward gradients.

Every source maps ``(model, x, y)`` for a :class:`~fg_analysis.nets.models.StagedNetwork`, a batch and the mean
cross-entropy loss ``L = (1/B) Σ_b L_b`` to a :class:`Gradient`: the batch loss and one estimate per parameter
tensor (a dict ``name → tensor`` shaped like the parameter), ready to be written into ``p.grad``.

* :func:`backprop` — the true gradient ``∇_θ L`` (reverse mode).
* :func:`weight_perturbation` — one *global* tangent over all P parameters (flattened, :mod:`fg_analysis.params`):
  ``d = V ∇_θ L`` (k JVPs), ``ĝ = aggregate(V, d)`` projected (or averaged) across the whole network, then
  unflattened (Flügel et al., arXiv 2410.17764, Sec. III; Baydin et al., arXiv 2202.08587).
* :func:`activity_perturbation` — the paper's network runs ("Fully-connected networks", "ResNet18 and ViT"): k
  tangents ``v_i`` over all stage outputs concatenated (dimension ``A = Σ_i |a_i|``, ``2w + 10`` for the FC),
  shared by the batch; per-sample JVPs ``d_{b,i} = ∂L_b/∂a_b · v_i``; per-sample aggregation
  ``ĝ_b = aggregate(V, d_b) ≈ ∂L_b/∂a_b``; and weight gradients through *local* per-stage VJPs: the gradient of
  stage ``s``'s parameters is the VJP of stage ``s`` at its own (detached) input with cotangent ``ĝ_{b,s} / B``
  (the slice of ``ĝ_b`` that belongs to stage ``s``'s output, divided by B for the mean reduction), summed over
  the batch. With ``ĝ_b = ∂L_b/∂a_b`` exactly (k ≥ A, projection) this is the chain rule, i.e. BP.

Both go through the package's one estimator, :class:`fg_analysis.estimator.ForwardGradient` (tangents, JVPs,
aggregation). ``mode`` says how the JVPs are obtained, in the package's vocabulary (:data:`fg_analysis.jvp.MODES`):

* ``"forward"``: forward-mode AD — ``torch.func.jvp`` vmapped over the k tangents (for weights, of the batch
  loss; for activities a zero perturbation variable ``u`` is added at every stage output through
  ``model(x, perturbations)`` and the per-sample losses are differentiated along ``u = v_i``). No backward pass
  reaches the JVPs; the activity variant then runs only stage-local VJPs. Weight perturbation also takes
  ``"sequential"`` (one forward-AD pass per tangent).
* ``"oracle"``: the same numbers formed from the BP gradient (``d = V g``, the paper's default "simulated"
  forward gradient): exact in value, much faster on a CPU, but no measurement of forward-mode cost.

Non-finite derivatives raise :class:`fg_analysis.jvp.NonFiniteDerivatives` (a ``FloatingPointError``), which
:func:`fg_analysis.nets.training.train` records as a divergence.

On the same tangents both modes give the same estimate up to rounding (tested to 1e-10 in float64).

BatchNorm in train mode. Batch statistics couple the samples, so ``∂L_b/∂(shared u)`` (what a shared-perturbation
forward pass yields per sample) is no longer ``B · ∂L/∂a_b`` (what the local VJPs need). The simulated mode
uses ``B · ∂L/∂a_b`` from the BP pass (the reference implementation's ``activity.grad``), which keeps the
estimate exact at k ≥ A; the forward activity mode refuses train-mode BatchNorm with a clear error (use
``mode="oracle"`` — as the paper's ResNet-18 runs do — or eval mode). Weight perturbation has no such issue:
its JVPs are of the batch loss itself, and the models' BatchNorm works under ``jvp``/``vmap`` over tangents.

>>> import torch
>>> from fg_analysis.nets.models import build_model
>>> net = build_model("fc", input_shape=(1, 8, 8), n_classes=10, width=16, seed=0)
>>> x, y = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3])
>>> est = activity_perturbation(net, x, y, k=8, aggregator="projection", generator=torch.Generator().manual_seed(1))
>>> sorted(est.grads) == sorted(name for name, _ in net.named_parameters())
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from fg_analysis.aggregate import Aggregator
from fg_analysis.estimator import ForwardGradient, module_objective
from fg_analysis.jvp import MODES, _check_derivatives, check_mode
from fg_analysis.nets.approaches import approach_label
from fg_analysis.params import numel, unraveler
from fg_analysis.tangents import TangentLaw, tangent_law

__all__ = ["MODES", "PERTURBATIONS", "Gradient", "GradientSource", "StagedPass", "activity_dimension",
           "activity_perturbation", "backprop", "per_sample_activity_gradients", "staged_pass", "weight_perturbation"]

PERTURBATIONS = ("activity", "weight")


class Gradient(NamedTuple):
    """A gradient source's output: the batch loss (a detached scalar) and ``{name: estimate}`` per parameter."""

    loss: torch.Tensor
    grads: dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------------------
# helpers


def _loss(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction=reduction)


def _trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _stage_parameters(model: nn.Module) -> list[dict[str, torch.Tensor]]:
    """Trainable parameters of every stage, named as in ``model.named_parameters()``; all must be in a stage."""
    groups = [{name: p for name, p in stage.named_parameters(prefix=f"stages.{i}") if p.requires_grad}
              for i, stage in enumerate(model.stages)]
    outside = set(_trainable(model)) - {name for group in groups for name in group}
    if outside:
        raise ValueError(f"activity perturbation needs every parameter inside a stage; not in any stage: "
                         f"{sorted(outside)}")
    return groups


def _has_train_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())


def check_finite(d: torch.Tensor) -> torch.Tensor:
    """``d`` if finite, else :class:`~fg_analysis.jvp.NonFiniteDerivatives` (the loss diverged)."""
    return _check_derivatives(d)


def _check_tangents(V: torch.Tensor, n: int, what: str) -> None:
    if V.ndim != 2 or V.shape[1] != n:
        raise ValueError(f"{what} tangents must have shape (k, {n}); got {tuple(V.shape)}")


def activity_dimension(model: nn.Module, input_shape: Sequence[int]) -> int:
    """``A = Σ_s |a_s|``: the dimension of the activity tangent (stage outputs, no batch; ``2w + 10`` for the FC)."""
    return sum(int(torch.Size(shape).numel()) for shape in model.activity_shapes(input_shape))


def _stagewise_forward(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One forward pass with every stage's input detached: ``(inputs, outputs)`` with local autograd graphs.

    ``inputs[s]`` is stage s's input (a leaf requiring grad for s > 0), ``outputs[s] = stage_s(inputs[s])``.
    Stage-local graphs let a backward sweep go stage by stage (BP) or stop at a stage (local VJPs), with BatchNorm
    statistics updated exactly once, as in one ordinary forward pass.
    """
    inputs, outputs, h = [], [], x
    for s, stage in enumerate(model.stages):
        h_in = h if s == 0 else h.detach().requires_grad_(True)
        h = stage(h_in)
        inputs.append(h_in)
        outputs.append(h)
    return inputs, outputs


class StagedPass(NamedTuple):
    """One stage-by-stage forward pass (:func:`staged_pass`): the trainable parameters of every stage, the stages'
    inputs and outputs with local graphs, the outputs' shapes (no batch), their total size ``A`` and the logits."""

    groups: list[dict[str, torch.Tensor]]
    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]
    shapes: list[tuple[int, ...]]
    dimension: int
    logits: torch.Tensor


def staged_pass(model: nn.Module, x: torch.Tensor) -> StagedPass:
    """The forward pass that activity perturbation starts from (see :func:`_stagewise_forward`)."""
    groups = _stage_parameters(model)
    inputs, outputs = _stagewise_forward(model, x)
    shapes = [tuple(output.shape[1:]) for output in outputs]
    return StagedPass(groups, inputs, outputs, shapes, sum(int(torch.Size(shape).numel()) for shape in shapes),
                      outputs[-1])


def per_sample_activity_gradients(staged: StagedPass, loss: torch.Tensor) -> torch.Tensor:
    """``∂L_b/∂a_b`` for every sample b (B × A) from one backward sweep of the mean loss ``L`` (times B: sample b's
    loss depends on its own activities only); the oracle of activity perturbation."""
    batch = staged.logits.shape[0]
    top = torch.autograd.grad(loss, staged.logits, retain_graph=True)[0]
    activity, _ = _stagewise_backward(staged.inputs, staged.outputs, top, staged.groups, retain_graph=True)
    return torch.cat([a.reshape(batch, -1) for a in activity], dim=1) * batch


def _stagewise_backward(inputs, outputs, top: torch.Tensor, groups, *, retain_graph: bool = False
                        ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Backpropagation stage by stage from ``top = ∂L/∂a_L``: ``(∂L/∂a_s for every s, {name: ∂L/∂θ})``."""
    activity = [None] * len(outputs)
    activity[-1] = top
    grads = {}
    for s in range(len(outputs) - 1, -1, -1):
        wrt = list(groups[s].values()) + ([inputs[s]] if s > 0 else [])
        found = torch.autograd.grad(outputs[s], wrt, grad_outputs=activity[s], retain_graph=retain_graph,
                                    allow_unused=True)
        for (name, p), g in zip(groups[s].items(), found):
            grads[name] = torch.zeros_like(p) if g is None else g
        if s > 0:
            activity[s - 1] = found[-1]
    return activity, grads


def _local_vjps(outputs, cotangents, groups) -> dict[str, torch.Tensor]:
    """Stage s's parameter gradient = VJP of stage s at its own input with cotangent ``cotangents[s]``."""
    grads = {}
    for s, (output, cotangent, group) in enumerate(zip(outputs, cotangents, groups)):
        if not group:
            continue
        found = torch.autograd.grad(output, list(group.values()), grad_outputs=cotangent, allow_unused=True)
        for (name, p), g in zip(group.items(), found):
            grads[name] = torch.zeros_like(p) if g is None else g
    return grads


def _order(model: nn.Module, grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: grads[name] for name in _trainable(model)}


# ----------------------------------------------------------------------------------------------------------
# sources


def backprop(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Gradient:
    """The true gradient ``∇_θ L`` of the mean cross-entropy by reverse-mode AD (one forward, one backward)."""
    params = _trainable(model)
    loss = _loss(model(x), y)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return Gradient(loss.detach(), {name: torch.zeros_like(p) if g is None else g
                                    for (name, p), g in zip(params.items(), grads)})


def weight_perturbation(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, k: int = 1,
                        aggregator: str | Aggregator = "mean", mode: str = "forward",
                        tangents: torch.Tensor | TangentLaw | str = "normal",
                        generator: torch.Generator | None = None,
                        estimator: ForwardGradient | None = None) -> Gradient:
    """Weight-perturbed forward gradient: one global tangent set ``V`` (k × P) over all parameters.

    ``d = V ∇_θ L`` by the estimator's ``mode`` (``"forward"``: ``torch.func.jvp`` vmapped over the rows of
    ``V``; ``"sequential"``; ``"oracle"``: ``V g`` from the BP gradient), then ``ĝ = aggregate(V, d)`` across
    the whole network (the faithful global projection, paper Sec. III).

    ``tangents`` is a (k, P) tensor (``k`` is then ignored) or a tangent law sampled with ``generator``.
    ``estimator``, when given, replaces ``k``, ``aggregator``, ``mode``, ``tangents`` and ``generator``: a training
    loop configures one (:class:`GradientSource` does) and each step reuses it and its tangent buffer.
    """
    f, params = module_objective(model, _loss)
    given = isinstance(tangents, torch.Tensor)
    if estimator is None:
        estimator = ForwardGradient(tangents.shape[0] if given and tangents.ndim == 2 else k, aggregator=aggregator,
                                    tangents="normal" if given else tangents, mode=check_mode(mode),
                                    generator=generator)
    if not given:
        estimate = estimator(f, params, x, y)
        return Gradient(estimate.value, dict(unraveler(params)(estimate.gradient)))
    _check_tangents(tangents, numel(params), "weight")
    loss, d = estimator.derivatives(f, params, tangents, x, y)
    return Gradient(loss, dict(unraveler(params)(estimator.combine(tangents, d))))


def _per_sample_aggregate(estimator: ForwardGradient, V: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``ĝ_b = aggregate(V, d_b)`` for every sample b; ``V`` (k, A) is shared, ``d`` has shape (B, k).

    The built-in aggregators are linear in ``d`` for a fixed ``V`` (``Vᵀ d / k``, ``Vᵀ G⁻¹ d``), so
    ``ĝ_b = Mᵀ d_b`` with ``M = [aggregate(V, e_1) … aggregate(V, e_k)]`` (k × A): one k-batched aggregation
    (k Gram matrices instead of B) and one (B × k)(k × A) product, used when k < B. Otherwise (and for other
    callables) the aggregator runs on every sample.
    """
    k = V.shape[0]
    if estimator.aggregator_name is not None and k < d.shape[0]:
        identity = torch.eye(k, dtype=V.dtype, device=V.device)
        M = estimator.combine(V.expand(k, *V.shape), identity)
        return d @ M
    return estimator.combine(V.expand(d.shape[0], *V.shape), d)


def _split(flat: torch.Tensor, shapes: Sequence[tuple[int, ...]]) -> list[torch.Tensor]:
    """``(B, A)`` → one ``(B, *shape_s)`` block per stage."""
    sizes = [int(torch.Size(shape).numel()) for shape in shapes]
    return [piece.reshape(flat.shape[0], *shape) for piece, shape in zip(flat.split(sizes, dim=-1), shapes)]


def _forward_activity_jvps(estimator: ForwardGradient, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           V: torch.Tensor, shapes: Sequence[tuple[int, ...]]) -> torch.Tensor:
    """Per-sample JVPs ``d_{b,i} = ∂L_b/∂u · v_i`` by forward mode, vmapped over the k tangents: shape (B, k).

    ``u`` is one perturbation per stage output, shared by the batch, added at ``u = 0`` through
    ``model(x, perturbations)``; parameters and buffers are constants (``functional_call``).
    """
    constants = ({name: p.detach() for name, p in model.named_parameters()}, dict(model.named_buffers()))
    sizes = [int(torch.Size(shape).numel()) for shape in shapes]

    def per_sample_losses(u: torch.Tensor) -> torch.Tensor:
        perturbations = [piece.reshape(shape) for piece, shape in zip(u.split(sizes), shapes)]
        logits = functional_call(model, constants, (x,), {"perturbations": perturbations})
        return _loss(logits, y, reduction="none")

    zero = torch.zeros(V.shape[1], dtype=V.dtype, device=V.device)
    _, d = estimator.derivatives(lambda u: per_sample_losses(u), zero, V, outputs=True)
    return d.transpose(0, 1)


def activity_perturbation(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, k: int = 1,
                          aggregator: str | Aggregator = "mean", mode: str = "forward",
                          tangents: torch.Tensor | TangentLaw | str = "normal",
                          generator: torch.Generator | None = None, skip_zero_products: bool = True,
                          estimator: ForwardGradient | None = None) -> Gradient:
    """Activity-perturbed forward gradient with local weight updates, as the paper's network runs.

    1. Tangents ``V`` (k × A) over all stage outputs concatenated, shared by the batch.
    2. Per-sample JVPs ``d_b = V ∂L_b/∂a_b`` (B × k): forward mode (``"forward"``) or from the BP activity
       gradient, ``∂L_b/∂a_b = B · ∂L/∂a_b`` (``"oracle"``).
    3. Per-sample aggregation ``ĝ_b = aggregate(V, d_b)``, an estimate of ``∂L_b/∂a_b``.
    4. Stage s's weight gradient = VJP of stage s at its own input with cotangent ``ĝ_{b,s}/B`` (mean reduction),
       i.e. ``Σ_b (∂a_{b,s}/∂θ_s)ᵀ ĝ_{b,s} / B``. Exact (= BP) when ``ĝ_b = ∂L_b/∂a_b``, e.g. k ≥ A with the
       projection.

    ``tangents`` is a (k, A) tensor (``k`` is then ignored) or a tangent law sampled with ``generator``;
    ``skip_zero_products`` as for :class:`~fg_analysis.estimator.ForwardGradient`. ``estimator``, when given,
    replaces ``k``, ``aggregator``, ``mode``, ``tangents``, ``generator`` and ``skip_zero_products`` (configured
    once by a training loop, reused by every step with its tangent buffer).
    Raises ``ValueError`` for ``mode="forward"`` on a model with BatchNorm in train mode (see the module
    docstring) and for ``mode="sequential"`` (per-sample JVPs are vmapped).
    """
    mode = estimator.mode if estimator is not None else mode
    if check_mode(mode) == "sequential":
        raise ValueError("activity perturbation computes per-sample JVPs with mode='forward' or 'oracle'; "
                         "mode='sequential' is for weight perturbation")
    if mode == "forward" and _has_train_batch_norm(model):
        raise ValueError("forward-mode activity perturbation cannot give per-sample JVPs through BatchNorm in train "
                         "mode (batch statistics couple the samples of a shared perturbation): use mode='oracle' "
                         "(the paper's default for its networks), weight perturbation, or model.eval()")
    given = isinstance(tangents, torch.Tensor)
    if estimator is None:
        estimator = ForwardGradient(tangents.shape[0] if given and tangents.ndim == 2 else k, aggregator=aggregator,
                                    tangents="normal" if given else tangents, mode=mode, generator=generator,
                                    skip_zero_products=skip_zero_products)
    staged = staged_pass(model, x)
    groups, outputs, shapes, dimension, logits = (staged.groups, staged.outputs, staged.shapes, staged.dimension,
                                                  staged.logits)
    batch = x.shape[0]
    V = tangents if given else estimator.sample(dimension, dtype=logits.dtype, device=logits.device)
    _check_tangents(V, dimension, "activity")
    loss = _loss(logits, y)
    if mode == "forward":
        d = _forward_activity_jvps(estimator, model, x, y, V, shapes)
    else:
        d = check_finite(per_sample_activity_gradients(staged, loss) @ V.transpose(0, 1))
    estimate = _per_sample_aggregate(estimator, V, d) / batch
    grads = _local_vjps(outputs, _split(estimate, shapes), groups)
    return Gradient(loss.detach(), _order(model, grads))


# ----------------------------------------------------------------------------------------------------------
# a source as a value


@dataclass(frozen=True)
class GradientSource:
    """One way to get a gradient, as a value: ``source(model, x, y, generator=g) -> Gradient``.

    ``method="bp"`` (the other fields are ignored) or ``"fg"`` with ``k`` tangents, an ``aggregator``
    (``"mean"`` or ``"projection"``; ``"sum"`` too), a ``perturbation`` (``"activity"`` — the paper's networks —
    or ``"weight"``), a JVP ``mode`` (:data:`fg_analysis.jvp.MODES`) and a tangent ``law``.

    >>> GradientSource("fg", k=16, aggregator="projection").label
    'projection k=16'
    """

    method: str = "fg"
    k: int = 1
    aggregator: str = "mean"
    perturbation: str = "activity"
    mode: str = "forward"
    law: str = "normal"
    #: the estimator of the generator last used (configured once, reused by every step with its tangent buffer)
    _configured: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.method not in ("bp", "fg"):
            raise ValueError(f"unknown method {self.method!r}; choose 'bp' or 'fg'")
        if self.perturbation not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {self.perturbation!r}; choose one of {PERTURBATIONS}")
        check_mode(self.mode)
        if self.method == "fg":
            self.estimator(None)  # a clear error for a bad setting, before any step

    def estimator(self, generator: torch.Generator | None) -> ForwardGradient:
        """The one :class:`~fg_analysis.estimator.ForwardGradient` of this source and ``generator``: made at the
        first step with that generator, then reused (no validation or tangent allocation per step)."""
        found = self._configured.get("estimator")
        if found is None or found.generator is not generator:
            found = ForwardGradient(self.k, aggregator=self.aggregator, tangents=tangent_law(self.law),
                                    mode=self.mode, generator=generator)
            self._configured["estimator"] = found
        return found

    @property
    def label(self) -> str:
        """The book's approach labels: ``"BP"``, ``"FG"`` (the single-tangent baseline, k = 1 mean),
        ``"mean k=4"``, ``"projection k=16"``."""
        return approach_label(self.method, self.aggregator, self.k)

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 generator: torch.Generator | None = None) -> Gradient:
        if self.method == "bp":
            return backprop(model, x, y)
        perturb: Callable[..., Gradient] = (activity_perturbation if self.perturbation == "activity"
                                            else weight_perturbation)
        return perturb(model, x, y, estimator=self.estimator(generator))

