"""Guided tangents: gradient *guesses* next to random tangents, combined by the one estimator's projection.

Fournier, Rivaud, Belilovsky, Eickenberg, Oyallon ("Can Forward Gradient Match Backpropagation?", ICML 2023,
arXiv 2306.06968) replace isotropic random tangents by guesses ``u`` that are likely to point the right way, in
particular the gradient of a *local loss* computed by a small auxiliary head attached to a block, and estimate
the target gradient ``g`` by its projection onto the guess, ``(g·u) u / |u|²``, from one JVP ``g·u``. Flügel et
al. (arXiv 2410.17764) combine k random tangents by orthogonal projection. Here both are tangents of one set
``V = [u_1 … u_m; v_1 … v_k]`` (m guesses, k random rows) given to :class:`~fg_analysis.estimator.ForwardGradient`
with the projection aggregator: the estimate is ``P_{span V} g``, which keeps the guesses' component of ``g``
exactly and adds the random tangents' unbiased exploration of the rest. One guess and no random tangent is
Fournier's formula; no guess is the paper's projection. The expected squared cosine is
:func:`fg_analysis.theory.guided_expected_cos2`.

* :class:`Guided` — a tangent law bound to this step's guesses (``(..., m, n)``; a batch of per-sample guesses
  gives per-sample tangent sets whose random rows are shared by the batch, as in activity perturbation).
* Guess providers, called with a :class:`Context` (the current batch) and returning ``(..., m, n)``:
  :class:`LocalLosses` (auxiliary heads' local-loss gradients at every stage output of a
  :class:`~fg_analysis.nets.models.StagedNetwork`), :class:`PreviousEstimate` (the last estimate of a flat parameter
  vector) and :class:`FromCallable` (any function).
* :class:`AuxiliaryHeads` — one small classifier per hidden stage (linear for vectors; pooled linear for feature
  maps; token-mean linear for sequences), trained by its local cross-entropy; :func:`forward_flops` counts the
  FLOPs of heads and networks.
* :func:`guided_forward_gradient` (a flat function) and :func:`guided_activity_perturbation` (a network, as
  :func:`fg_analysis.nets.gradients.activity_perturbation` with per-sample guesses); :class:`GuidedSource` is the
  latter as a gradient source for :func:`fg_analysis.nets.training.train`, stepping the heads alongside.

>>> import torch
>>> g, u = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 1.0])
>>> est = guided_forward_gradient(lambda x: (g * x).sum(), torch.zeros(3),
...                               provider=FromCallable(lambda context: u[None]), k=0)
>>> est.gradient                                  # (g·u) u / |u|²: Fournier et al.'s one-guess estimate
tensor([2., 0., 2.])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from fg_analysis.estimator import Estimate, ForwardGradient
from fg_analysis.jvp import check_mode
from fg_analysis.nets.approaches import guided_label
from fg_analysis.nets.gradients import (
    Gradient,
    GradientSource,
    _local_vjps,
    _order,
    _split,
    check_finite,
    per_sample_activity_gradients,
    staged_pass,
)
from fg_analysis.tangents import Normal, TangentLaw, tangent_law

__all__ = ["AuxiliaryHeads", "Context", "FromCallable", "Guided", "GuidedDetails", "GuidedSource", "LocalLosses",
           "PreviousEstimate", "forward_flops", "gaussian_length_rows", "guided_activity_perturbation",
           "guided_forward_gradient", "projection_without"]


# ----------------------------------------------------------------------------------------------------------
# the law


@dataclass(frozen=True, eq=False, kw_only=True)
class Guided(TangentLaw):
    """Tangents ``[U; R]``: the m guesses ``U`` (shape ``(*batch, m, n)``) then ``k - m`` rows of ``random``.

    ``sample(k, n)`` returns shape ``(*batch, k, n)`` with the guesses' batch shape: one random draw of
    ``(k - m, n)`` shared by every batch entry (``shared=True``, as activity perturbation shares its tangents
    across a batch) or one per entry (``shared=False``). ``k = m`` gives the guesses alone, ``m = 0`` (``U`` of
    shape ``(…, 0, n)`` or ``None``) the random law alone. ``rescale`` (default) gives every guess the length
    ``sqrt(n)`` of a typical Gaussian tangent: the span, hence the projection, is unchanged, and the Gram matrix
    ``V Vᵀ`` stays well-conditioned (local-loss gradients can be 10⁴ times shorter). ``normalize`` scales every row to
    norm 1 (the
    projection does not change). ``out=`` (shape ``(k, n)``, unbatched guesses) is filled in place, so
    :meth:`ForwardGradient.sample` works as with any law.

    >>> V = Guided(guesses=torch.eye(3)[:1], rescale=False).sample(2, 3, generator=torch.Generator().manual_seed(0))
    >>> V.shape, V[0].tolist()
    (torch.Size([2, 3]), [1.0, 0.0, 0.0])
    """

    guesses: torch.Tensor | None = None
    random: TangentLaw = field(default_factory=Normal)
    shared: bool = True
    rescale: bool = True

    def __post_init__(self):
        if not isinstance(self.normalize, bool):
            raise ValueError("Guided takes its guesses by keyword: Guided(guesses=U), U of shape (..., m, n)")
        if self.guesses is not None and not isinstance(self.guesses, torch.Tensor):
            raise ValueError(f"guesses must be a tensor of shape (..., m, n); got {type(self.guesses).__name__}")
        if not isinstance(self.random, TangentLaw):
            raise ValueError(f"random must be a TangentLaw (e.g. Normal()); got {self.random!r}")

    @property
    def count(self) -> int:
        """m, the number of guesses."""
        return 0 if self.guesses is None else int(self.guesses.shape[-2])

    def sample(self, k: int, n: int, *, batch_shape: tuple[int, ...] = (), generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
               out: torch.Tensor | None = None) -> torch.Tensor:
        """``(*batch, k, n)``: the guesses, then ``k - m`` random rows; see the class docstring."""
        m = self.count
        if self.guesses is not None:
            if self.guesses.ndim < 2 or self.guesses.shape[-1] != n:
                raise ValueError(f"guesses must have shape (..., m, n={n}); got {tuple(self.guesses.shape)}")
            if not torch.isfinite(self.guesses).all():
                raise ValueError("guesses contain NaN or inf")
        if isinstance(k, bool) or not isinstance(k, int) or k < max(m, 1):
            raise ValueError(f"k counts the guesses and the random tangents together and must be >= max(m, 1) = "
                             f"{max(m, 1)} (m = {m} guesses); got k={k!r}")
        batch = tuple(self.guesses.shape[:-2]) if self.guesses is not None else tuple(batch_shape)
        if batch_shape and tuple(batch_shape) != batch:
            raise ValueError(f"batch_shape {tuple(batch_shape)} differs from the guesses' batch shape {batch}")
        if out is not None:
            if tuple(out.shape) != (*batch, k, n):
                raise ValueError(f"out must have shape {(*batch, k, n)}; got {tuple(out.shape)}")
            dtype, device = out.dtype, out.device
        elif device is None:
            device = self.guesses.device if self.guesses is not None else (
                generator.device if generator is not None else None)
        rows = k - m
        if rows and (self.shared or not batch):
            drawn = self.random.sample(rows, n, generator=generator, dtype=dtype, device=device)
            drawn = drawn.expand(*batch, rows, n)
        elif rows:
            drawn = self.random.sample(rows, n, batch_shape=batch, generator=generator, dtype=dtype, device=device)
        else:
            drawn = None
        guesses = self.guesses.to(dtype=dtype, device=device) if m else None
        if m and self.rescale:  # length sqrt(n), as a Gaussian tangent's: same span, a well-conditioned Gram matrix
            norms = torch.linalg.vector_norm(guesses, dim=-1, keepdim=True)
            guesses = guesses * (n ** 0.5 / torch.where(norms > 0, norms, torch.ones_like(norms)))
        parts = ([guesses] if m else []) + ([drawn] if drawn is not None else [])
        V = torch.cat(parts, dim=-2) if len(parts) > 1 else parts[0].clone()
        if self.normalize:
            V = V / torch.linalg.vector_norm(V, dim=-1, keepdim=True)
        return out.copy_(V) if out is not None else V


# ----------------------------------------------------------------------------------------------------------
# guess providers


@dataclass(frozen=True)
class Context:
    """What a guess provider may look at: the current point ``params`` of a flat function (and its ``args``), or
    a network's batch ``x, y`` with its stage outputs ``activities`` (detached, batch first)."""

    params: torch.Tensor | None = None
    args: tuple = ()
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    activities: tuple[torch.Tensor, ...] = ()


class FromCallable:
    """Guesses from any function ``fn(context) -> (..., m, n)`` (e.g. a true gradient, for tests; a stale one)."""

    def __init__(self, fn: Callable[[Context], torch.Tensor]):
        self.fn = fn

    def __call__(self, context: Context) -> torch.Tensor:
        return self.fn(context)

    def observe(self, estimate: torch.Tensor) -> None:
        """Nothing to remember."""


class PreviousEstimate:
    """The previous step's estimate as the one guess (a flat parameter vector; none before the first step).

    :func:`guided_forward_gradient` calls :meth:`observe` with each estimate. Over a descent the previous
    gradient is a good guess where the gradient turns slowly (a momentum of directions, not of steps).
    """

    def __init__(self):
        self.last: torch.Tensor | None = None

    def __call__(self, context: Context) -> torch.Tensor:
        if self.last is None or not bool(self.last.ne(0).any()):
            n = context.params.numel()
            return torch.empty(0, n, dtype=context.params.dtype, device=context.params.device)
        return self.last.reshape(1, -1)

    def observe(self, estimate: torch.Tensor) -> None:
        self.last = estimate.detach().reshape(-1).clone()


def _head(shape: Sequence[int], n_classes: int, *, pool: int = 2) -> nn.Module:
    """A small classifier for a stage output of shape ``shape`` (no batch): linear for vectors, 2×2 average
    pooling + linear for feature maps (C, H, W), token mean + linear for sequences (N, D)."""
    if len(shape) == 1:
        return nn.Linear(shape[0], n_classes)
    if len(shape) == 3:
        return nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(1), nn.Linear(shape[0] * pool * pool, n_classes))
    if len(shape) == 2:
        return nn.Sequential(_TokenMean(), nn.Linear(shape[1], n_classes))
    raise ValueError(f"no auxiliary head for stage outputs of shape {tuple(shape)}: need (F,), (C, H, W) or (N, D)")


class _TokenMean(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mean(dim=1)


class AuxiliaryHeads(nn.Module):
    """One auxiliary classifier per hidden stage of a staged network (every stage but the last, the logits).

    Head ``s`` maps stage ``s``'s output ``a_s`` to logits and defines the local loss
    ``ℓ_s = CE(head_s(a_s), y)``; its gradient ``∂ℓ_s/∂a_s`` is the guess for ``∂L/∂a_s`` (Fournier et al.).
    Build with :meth:`for_network`, which seeds the weights like :func:`fg_analysis.nets.models.build_model`.
    """

    def __init__(self, heads: Sequence[nn.Module]):
        super().__init__()
        self.heads = nn.ModuleList(heads)

    @classmethod
    def for_network(cls, model: nn.Module, input_shape: Sequence[int], n_classes: int, *, seed: int = 0,
                    pool: int = 2) -> "AuxiliaryHeads":
        shapes = model.activity_shapes(input_shape)[:-1]
        reference = next(model.parameters())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 7919)
            heads = cls([_head(shape, n_classes, pool=pool) for shape in shapes])
        return heads.to(dtype=reference.dtype, device=reference.device)

    def __len__(self) -> int:
        return len(self.heads)

    def __iter__(self):
        return iter(self.heads)


class LocalLosses:
    """Guesses from local losses: ``u_{b,s} = ∂ℓ_{s,b}/∂a_{b,s}`` per sample b and hidden stage s, one backward
    pass through the heads only; block-sparse rows of the activity tangent (row s is zero outside stage s).

    ``use_heads=False`` keeps only the output guess (to tell what the heads add to it).
    With ``exact_output=True`` the output stage gets the guess ``∂L_b/∂logits_b = softmax − onehot``, which is
    local too (the global loss is the last block's local loss) and exact. Each call leaves the heads' gradients
    of their mean local losses in ``p.grad`` (for the caller's optimizer) and the mean local losses in
    ``self.losses``; ``self.seconds`` accumulates the time spent.
    """

    def __init__(self, heads: AuxiliaryHeads, *, exact_output: bool = True, use_heads: bool = True):
        if not (exact_output or use_heads):
            raise ValueError("LocalLosses needs the heads (use_heads=True), the output guess (exact_output=True) "
                             "or both")
        self.heads, self.exact_output, self.use_heads = heads, exact_output, use_heads
        self.losses: list[float] = []
        self.seconds = 0.0

    def count(self, stages: int) -> int:
        """m, the number of guesses for a network of ``stages`` stages."""
        return len(self.heads) * int(self.use_heads) + int(self.exact_output)

    def __call__(self, context: Context) -> torch.Tensor:
        tick = time.perf_counter()
        activities, y = context.activities, context.y
        if len(activities) != len(self.heads) + 1:
            raise ValueError(f"{len(self.heads)} heads need a network with {len(self.heads) + 1} stages; got "
                             f"{len(activities)} stage outputs")
        batch = y.shape[0]
        with torch.enable_grad():
            leaves = [a.detach().requires_grad_(True) for a in activities]
            hidden = leaves[:-1] if self.use_heads else []
            losses = [F.cross_entropy(head(a), y, reduction="sum") for head, a in zip(self.heads, hidden)]
            parameters = [p for p in self.heads.parameters() if p.requires_grad] if self.use_heads else []
            wrt = hidden + ([leaves[-1]] if self.exact_output else [])
            total = sum(losses) + (F.cross_entropy(leaves[-1], y, reduction="sum") if self.exact_output else 0)
            found = torch.autograd.grad(total, wrt + parameters)
        for p, g in zip(parameters, found[len(wrt):]):
            p.grad = g / batch  # the mean local losses' gradients
        self.losses = [float(loss.detach()) / batch for loss in losses]
        sizes = [a[0].numel() for a in activities]
        offsets = [sum(sizes[:s]) for s in range(len(sizes))]
        stages = (list(range(len(hidden))) if hidden else []) + ([len(activities) - 1] if self.exact_output else [])
        U = activities[0].new_zeros(batch, len(wrt), sum(sizes))
        for row, (stage, guess) in enumerate(zip(stages, found[:len(wrt)])):
            U[:, row, offsets[stage]:offsets[stage] + sizes[stage]] = guess.reshape(batch, -1)
        self.seconds += time.perf_counter() - tick
        return U

    def observe(self, estimate: torch.Tensor) -> None:
        """Nothing to remember."""


# ----------------------------------------------------------------------------------------------------------
# estimates


def guided_forward_gradient(f: Callable[..., torch.Tensor], params: torch.Tensor, *args, provider,
                            k: int = 1, random: str | TangentLaw = "normal", mode: str = "forward",
                            generator: torch.Generator | None = None) -> Estimate:
    """The projection of ``∇f(params)`` onto ``span{guesses, k random tangents}`` for a flat ``params``.

    ``provider(Context(params=params, args=args))`` gives the m guesses ``(m, n)``; the one estimator
    (:class:`~fg_analysis.estimator.ForwardGradient` with ``m + k`` tangents, law :class:`Guided`, the
    projection) takes ``m + k`` JVPs and returns an :class:`~fg_analysis.estimator.Estimate`; the provider then
    observes the estimate. ``k = 0`` with one guess is ``(∇f·u) u / |u|²``.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k (random tangents next to the guesses) must be an integer >= 0; got k={k!r}")
    guesses = provider(Context(params=params, args=args))
    law = Guided(guesses=guesses, random=tangent_law(random))
    if law.count + k == 0:
        raise ValueError("no tangent at all: the provider gave no guess and k = 0; ask for k >= 1 random tangents")
    estimator = ForwardGradient(law.count + k, aggregator="projection", tangents=law, mode=mode, generator=generator)
    estimate = estimator(f, params, *args)
    getattr(provider, "observe", lambda e: None)(estimate.gradient)
    return estimate


class GuidedDetails(NamedTuple):
    """What :func:`guided_activity_perturbation` saw besides the gradient: the tangents ``V`` (B, m + k, A),
    the per-sample derivatives ``d`` (B, m + k), the per-sample activity estimates (B, A), the number of guesses
    m and, in oracle mode, the true per-sample activity gradients ``∂L_b/∂a_b`` (B, A)."""

    tangents: torch.Tensor
    derivatives: torch.Tensor
    estimate: torch.Tensor
    guesses: int
    truth: torch.Tensor | None


def _forward_jvps(estimator: ForwardGradient, model: nn.Module, x, y, V: torch.Tensor, shapes) -> torch.Tensor:
    """Per-sample JVPs ``d_{b,i} = ∂L_b/∂a_b · v_{b,i}`` by forward mode with per-sample tangents (vmapped over
    the ``m + k`` tangents): the perturbation of every stage output has the batch's shape."""
    constants = ({name: p.detach() for name, p in model.named_parameters()}, dict(model.named_buffers()))
    batch, count, dimension = V.shape
    sizes = [int(torch.Size(shape).numel()) for shape in shapes]

    def per_sample_losses(u: torch.Tensor) -> torch.Tensor:
        pieces = u.reshape(batch, dimension).split(sizes, dim=1)
        perturbations = [piece.reshape(batch, *shape) for piece, shape in zip(pieces, shapes)]
        logits = functional_call(model, constants, (x,), {"perturbations": perturbations})
        return F.cross_entropy(logits, y, reduction="none")

    flat = V.transpose(0, 1).reshape(count, batch * dimension)
    zero = torch.zeros(batch * dimension, dtype=V.dtype, device=V.device)
    _, d = estimator.derivatives(per_sample_losses, zero, flat, outputs=True)
    return d.transpose(0, 1)


def guided_activity_perturbation(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, provider=None,
                                 k: int = 1, random: str | TangentLaw | torch.Tensor = "normal",
                                 mode: str = "forward", generator: torch.Generator | None = None,
                                 details: bool = False) -> Gradient | tuple[Gradient, GuidedDetails]:
    """Activity-perturbed forward gradient with guesses, local weight updates as in the paper's networks.

    1. One forward pass stage by stage (:func:`fg_analysis.nets.gradients.activity_perturbation`'s), the guesses
       ``U_b`` (B, m, A) from ``provider`` (e.g. :class:`LocalLosses`) on the detached stage outputs.
    2. Tangents ``V_b = [U_b; R]`` with ``k`` random rows ``R`` (a law, shared by the batch, or a (k, A) tensor).
    3. Per-sample JVPs ``d_b = V_b ∂L_b/∂a_b``: forward mode (``"forward"``) or from the BP activity gradient
       (``"oracle"``, the same values).
    4. ``ĝ_b = P_{span V_b} ∂L_b/∂a_b`` (the estimator's projection, batched), then stage s's weight gradient =
       VJP of stage s at its own input with cotangent ``ĝ_{b,s} / B``.

    The projection depends only on the span, so every guess is first rescaled to the length of a Gaussian
    tangent, ``sqrt(A)`` (:func:`gaussian_length_rows`: the Gram matrix stays well conditioned however small the
    guess), and a guess that is zero for a sample (a head, or the output, so confident that ``softmax − onehot``
    underflows) adds nothing to that sample's span and is left out of it (:func:`projection_without`).

    ``provider=None`` and a (k, A) tensor ``random`` is :func:`~fg_analysis.nets.gradients.activity_perturbation`'s
    projection on those tangents. BatchNorm in train mode needs ``mode="oracle"``.
    """
    if check_mode(mode) == "sequential":
        raise ValueError("guided activity perturbation computes per-sample JVPs with mode='forward' or 'oracle'")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k (random tangents next to the guesses) must be an integer >= 0; got k={k!r}")
    staged = staged_pass(model, x)
    groups, outputs, shapes, dimension, logits = (staged.groups, staged.outputs, staged.shapes, staged.dimension,
                                                  staged.logits)
    batch = x.shape[0]
    context = Context(x=x, y=y, activities=tuple(output.detach() for output in outputs))
    guesses = provider(context) if provider is not None else logits.new_zeros(batch, 0, dimension)
    guesses, absent = gaussian_length_rows(guesses)
    if isinstance(random, torch.Tensor):
        if random.ndim != 2 or random.shape[1] != dimension:
            raise ValueError(f"random tangents must have shape (k, {dimension}); got {tuple(random.shape)}")
        k = random.shape[0]
        V = torch.cat([guesses, random.to(guesses.dtype).expand(batch, k, dimension)], dim=1)
        law = Guided(guesses=guesses)
    else:
        law = Guided(guesses=guesses, random=tangent_law(random))
        if law.count + k == 0:
            raise ValueError("no tangent at all: no guesses and k = 0")
        V = law.sample(law.count + k, dimension, generator=generator, dtype=logits.dtype)
    estimator = ForwardGradient(V.shape[1], aggregator="projection", tangents=law, mode=mode, generator=generator)
    loss = F.cross_entropy(logits, y)
    truth = None
    if mode == "forward":
        d = _forward_jvps(estimator, model, x, y, V, shapes)
    else:
        truth = per_sample_activity_gradients(staged, loss)  # ∂L_b/∂a_b
        d = check_finite(torch.einsum("bka,ba->bk", V, truth))
    estimate = estimator.combine(V, d) if not bool(absent.any()) else projection_without(V, d, absent)
    grads = _local_vjps(outputs, _split(estimate / batch, shapes), groups)
    gradient = Gradient(loss.detach(), _order(model, grads))
    if details:
        return gradient, GuidedDetails(V, d, estimate.detach(), law.count, truth)
    return gradient


def gaussian_length_rows(guesses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, absent)``: each guess row of ``guesses`` (B, m, A) rescaled to length ``sqrt(A)`` (that of a
    standard Gaussian tangent, ``E|v|² = A``), and the mask (B, m) of the rows that are zero and stay so."""
    norms = torch.linalg.vector_norm(guesses, dim=-1, keepdim=True)
    absent = norms.squeeze(-1) == 0
    scale = torch.where(norms > 0, guesses.shape[-1] ** 0.5 / norms.clamp_min(torch.finfo(guesses.dtype).tiny), 0.0)
    return guesses * scale, absent


def projection_without(V: torch.Tensor, d: torch.Tensor, absent: torch.Tensor) -> torch.Tensor:
    """``P_{span} g`` of each sample from ``d = V g``, the span of its rows of ``V`` (B, K, A) that are not
    ``absent`` (B, m), the first m rows being the guesses; an absent row is zero, so its ``d`` is 0.

    The Gram system ``(V Vᵀ) c = d`` in float64 with each absent row's equation replaced by ``c_i = 0``: the rows
    present solve their own system, ``ĝ = Vᵀ c`` is their projection. Equal to
    :func:`fg_analysis.aggregate.projection` when no row is absent.
    """
    mask = torch.zeros(V.shape[:2], dtype=torch.bool, device=V.device)
    mask[:, :absent.shape[1]] = absent
    V64 = V.to(torch.float64)
    gram = V64 @ V64.transpose(-1, -2) + torch.diag_embed(mask.to(torch.float64))
    c = torch.linalg.solve(gram, torch.where(mask, 0.0, d.to(torch.float64)))
    return (c.unsqueeze(-2) @ V64).squeeze(-2).to(V.dtype)


# ----------------------------------------------------------------------------------------------------------
# a gradient source for training


class GuidedSource:
    """Guided activity perturbation as a gradient source for :func:`fg_analysis.nets.training.train`.

    ``source(model, x, y, generator=g)`` returns the network's :class:`~fg_analysis.nets.gradients.Gradient` from
    :func:`guided_activity_perturbation` with :class:`LocalLosses` of ``heads`` and ``k`` random tangents, and
    takes one SGD step of the heads on their local losses (``head_lr``): the heads learn alongside. ``guide=False``
    drops the guesses (the paper's projection with k tangents through the same code); ``use_heads=False`` keeps
    only the exact output guess. ``seconds`` splits the
    time spent into ``"heads"`` (local forward and backward) and ``"rest"`` (JVPs, projection, local VJPs).
    """

    def __init__(self, heads: AuxiliaryHeads | None, *, k: int, head_lr: float = 0.0, mode: str = "oracle",
                 guide: bool = True, use_heads: bool = True, label: str | None = None):
        self.heads, self.k, self.mode, self.guide = heads, k, mode, guide
        self.provider = LocalLosses(heads, use_heads=use_heads) if guide else None
        head_lr = head_lr if use_heads else 0.0
        if guide and heads is None:
            raise ValueError("guide=True needs auxiliary heads")
        self.optimizer = (torch.optim.SGD(heads.parameters(), lr=head_lr)
                          if heads is not None and head_lr > 0 else None)
        self.label = label or (f"guess + {k} random" if guide and k else "guess" if guide else f"projection k={k}")
        self.seconds = {"heads": 0.0, "rest": 0.0}
        self.local_losses: list[list[float]] = []

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 generator: torch.Generator | None = None) -> Gradient:
        tick = time.perf_counter()
        before = self.provider.seconds if self.provider is not None else 0.0
        gradient = guided_activity_perturbation(model, x, y, provider=self.provider, k=self.k, mode=self.mode,
                                                generator=generator)
        heads_time = (self.provider.seconds - before) if self.provider is not None else 0.0
        if self.optimizer is not None:
            head_tick = time.perf_counter()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            heads_time += time.perf_counter() - head_tick
            self.local_losses.append(list(self.provider.losses))
        self.seconds["heads"] += heads_time
        self.seconds["rest"] += time.perf_counter() - tick - heads_time
        return gradient


# ----------------------------------------------------------------------------------------------------------
# cost


def forward_flops(module: nn.Module, inputs: torch.Tensor) -> dict[str, int]:
    """Forward FLOPs per sample of every ``Linear`` and ``Conv2d`` inside ``module`` on ``inputs`` (2 per
    multiply-add; elementwise operations, pooling and the loss are not counted), keyed by the module path.

    >>> forward_flops(nn.Linear(4, 3), torch.zeros(2, 4))
    {'': 24}
    """
    counts: dict[str, int] = {}
    hooks = []

    def hook(name):
        def count(layer, args, output):
            per_sample = output[0].numel()
            if isinstance(layer, nn.Linear):
                counts[name] = counts.get(name, 0) + 2 * per_sample * layer.in_features
            else:
                fan_in = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
                counts[name] = counts.get(name, 0) + 2 * per_sample * fan_in
        return count

    for name, layer in module.named_modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            hooks.append(layer.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            module(inputs)
    finally:
        for handle in hooks:
            handle.remove()
    return counts


def gradient_source(approach: str, k: int, model, input_shape, n_classes: int, *, mode: str = "oracle",
                    head_lr: float, seed: int = 0):
    """The gradient source of an approach for ``model`` (a callable ``source(model, x, y, generator=)`` as
    :func:`fg_analysis.nets.training.train` takes it): BP, random k (activity perturbation, projection), or a
    :class:`GuidedSource` with auxiliary heads seeded by ``seed`` (learning at ``head_lr``); what the guided
    chapter's training runs and the learning-rate search both train with."""
    if approach == "bp":
        return GradientSource("bp")
    if approach == "random":
        return GradientSource("fg", k=k, aggregator="projection", mode=mode)
    if approach not in ("guided", "output", "guess"):
        raise ValueError(f"unknown approach {approach!r}; choose bp, random, guided, output or guess")
    heads = AuxiliaryHeads.for_network(model, input_shape, n_classes, seed=seed)
    return GuidedSource(heads, k=k, head_lr=head_lr, mode=mode,
                               use_heads=approach != "output", label=guided_label(approach, k))
