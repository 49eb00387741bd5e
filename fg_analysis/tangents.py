"""Tangent laws: the random directions ``v_1..v_k`` along which forward gradients are taken.

Every law is a frozen dataclass with one method, :meth:`TangentLaw.sample`, returning a tensor of shape
``(*batch_shape, k, n)`` whose rows are the tangents. Randomness is explicit: ``generator=``, ``dtype=`` and
``device=`` are keyword-only and the global RNG is never touched. ``normalize=True`` gives the unit-normalized
variant of any law (each row scaled to norm 1), as in the paper's approximation experiments (Flügel et al.,
arXiv 2410.17764, Sec. IV-A).

>>> import torch
>>> V = Normal().sample(4, 10, generator=torch.Generator().manual_seed(0))
>>> V.shape
torch.Size([4, 10])
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from fg_analysis.checks import check_count, check_floating_dtype, check_real


@dataclass(frozen=True)
class TangentLaw:
    """Base class. Subclasses implement :meth:`_draw`; :meth:`sample` validates and normalizes."""

    normalize: bool = False

    def sample(self, k: int, n: int, *, batch_shape: tuple[int, ...] = (), generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
               out: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``k`` tangents in ``R^n`` for each of ``batch_shape`` independent samples.

        Returns a tensor of shape ``(*batch_shape, k, n)``; row ``i`` is ``v_i``. With ``out=`` (a tensor of that
        shape, whose dtype and device then apply) the tangents are written into it: a training loop that reuses
        one buffer saves allocating (and page-faulting) k·n fresh floats every step. The numbers are the same.

        Raises:
            ValueError: ``k`` or ``n`` not a positive integer (Python or NumPy; bool and floats are refused),
                ``batch_shape`` not a tuple of non-negative integers, a dtype that is not a real floating-point
                ``torch.dtype`` (bool, integer, complex; float16 and bfloat16 work) or an ``out`` that is not a
                real floating-point tensor, ``out`` of the wrong shape, or a generator on another device.
        """
        k = check_count(k, "k", "number of tangents")
        n = check_count(n, "n", "dimension")
        batch_shape = _check_batch_shape(batch_shape)
        if out is None:
            check_floating_dtype(dtype)
        else:
            check_real(out, "out")
            if tuple(out.shape) != (*batch_shape, k, n):
                raise ValueError(f"out must have shape {(*batch_shape, k, n)}; got {tuple(out.shape)}")
            dtype, device = out.dtype, out.device
        if generator is not None and device is not None and torch.device(device).type != generator.device.type:
            raise ValueError(f"generator lives on {generator.device} but device={device!r}: create the "
                             "generator on the same device as the tangents")
        if device is None and generator is not None:
            device = generator.device
        if out is None:
            V = self._draw(k, n, tuple(batch_shape), generator, dtype, device)
        else:
            V = self._draw_into(out, generator)
        if self.normalize:
            V = V.div_(torch.linalg.vector_norm(V, dim=-1, keepdim=True))
        return V

    def _draw_into(self, out: torch.Tensor, generator) -> torch.Tensor:
        """Fill ``out`` with a draw; laws with an in-place sampler override this."""
        *batch_shape, k, n = out.shape
        return out.copy_(self._draw(k, n, tuple(batch_shape), generator, out.dtype, out.device))

    def _draw(self, k, n, batch_shape, generator, dtype, device) -> torch.Tensor:
        raise NotImplementedError


def _check_batch_shape(batch_shape) -> tuple[int, ...]:
    """``batch_shape`` as a tuple of non-negative ints, or a ValueError saying what is wrong."""
    entries = tuple(batch_shape) if isinstance(batch_shape, (tuple, list, torch.Size)) else None
    if entries is None or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in entries):
        raise ValueError(f"batch_shape must be a tuple of non-negative integers such as (8,) or (); "
                         f"got batch_shape={batch_shape!r}")
    return tuple(int(s) for s in entries)


def _check_real(value, name: str) -> float:
    """``value`` as a finite float (Python or NumPy real, not bool), or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {name}={value!r}")
    return float(value)


def _normal(shape, generator, dtype, device) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


def _haar_orthonormal(k, n, batch_shape, generator, dtype, device) -> torch.Tensor:
    """Rows of a Haar-distributed random matrix with orthonormal rows (QR of a Gaussian, sign-fixed); below
    float32 (float16, bfloat16, which QR does not take) drawn in float32 and rounded to ``dtype``."""
    if k > n:
        raise ValueError(f"at most n orthonormal tangents exist in R^n; got k={k} for n={n}")
    work = dtype if torch.finfo(dtype).bits >= 32 else torch.float32
    G = _normal((*batch_shape, n, k), generator, work, device)
    Q, R = torch.linalg.qr(G)
    signs = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return (Q * signs.unsqueeze(-2)).transpose(-1, -2).to(dtype)


@dataclass(frozen=True)
class Normal(TangentLaw):
    """``v_i ~ N(0, I_n)`` i.i.d. The law under which the single-tangent forward gradient is unbiased.

    Drawn by torch's ``normal_`` (vectorized Box–Muller on 24-bit uniforms, one 32-bit generator draw per
    entry), which runs near the generator's speed: a transform of bulk ``random_`` words needs 24 bits per entry
    as well, so it could save at most a quarter of the generator's work, less than its own passes cost."""

    def _draw(self, k, n, batch_shape, generator, dtype, device):
        return _normal((*batch_shape, k, n), generator, dtype, device)

    def _draw_into(self, out, generator):
        if not out.is_contiguous():  # normal_ would fill it in another order than a fresh draw
            return super()._draw_into(out, generator)
        return out.normal_(generator=generator)


def _random_signs(out: torch.Tensor, generator) -> torch.Tensor:
    """Fill ``out`` with i.i.d. signs ``±1``, one random bit per entry, and return it.

    ``random_()`` on int64 words gives 63 uniform bits per word (the draw modulo ``2^63``: bit 63 is 0), one
    generator call per word. ``±1`` in a floating dtype of ``b`` bits differ in the sign bit alone, so a word
    viewed as ``L = 64/b`` lanes becomes ``L`` entries at once, ``(w << s) & signs | ones`` with ``signs`` the
    lanes' sign bits (the pattern of ``-0.0``) and ``ones`` that of ``1.0``: each shift ``s = 1 … b-1`` moves a
    different bit ``b·l + b-1-s`` of lane ``l`` into its sign, never bit 63. So ``L·(b-1)`` entries per word
    (62 for float32, 63 for float64, 60 for float16/bfloat16), each a distinct uniform bit: exactly i.i.d.
    Rademacher. The words are drawn in one call and expanded in blocks that stay in cache.
    """
    total = out.numel()
    bits = torch.finfo(out.dtype).bits
    lanes = 64 // bits
    per_word = lanes * (bits - 1)
    words = torch.empty(-(-total // per_word), dtype=torch.int64, device=out.device).random_(generator=generator)
    direct = out.is_contiguous() and out.storage_offset() % lanes == 0
    target = out.view(-1) if direct else torch.empty(total, dtype=out.dtype, device=out.device)
    full = total // per_word
    lane_pattern = lambda value: torch.full((lanes,), value, dtype=out.dtype).view(torch.int64).item()
    signs, ones = lane_pattern(-0.0), lane_pattern(1.0)
    shifts = torch.arange(1, bits, dtype=torch.int64, device=out.device)

    def expand(w: torch.Tensor, block: torch.Tensor) -> None:
        torch.bitwise_left_shift(w.unsqueeze(-1), shifts, out=block)
        block.bitwise_and_(signs).bitwise_or_(ones)

    packed = target[:full * per_word].view(torch.int64).view(full, bits - 1)
    step = max(1, _SIGN_BLOCK_BYTES // (8 * (bits - 1))) if out.device.type == "cpu" else max(full, 1)
    for start in range(0, full, step):
        expand(words[start:min(start + step, full)], packed[start:start + step])
    if full * per_word < total:
        tail = torch.empty(1, bits - 1, dtype=torch.int64, device=out.device)
        expand(words[full:], tail)
        target[full * per_word:] = tail.view(out.dtype).view(-1)[:total - full * per_word]
    return out if direct else out.copy_(target.view(out.shape))


#: bytes of output expanded per block on a CPU (so that the three passes over a block run in a 1-2 MiB L2 cache)
_SIGN_BLOCK_BYTES = 2 ** 20


@dataclass(frozen=True)
class Rademacher(TangentLaw):
    """Entries i.i.d. uniform on ``{-1, +1}``: ``E[v vᵀ] = I``, so forward gradients stay unbiased.

    Drawn from packed random bits, one bit per entry (:func:`_random_signs`): near memory speed."""

    def _draw(self, k, n, batch_shape, generator, dtype, device):
        return self._draw_into(torch.empty((*batch_shape, k, n), dtype=dtype, device=device), generator)

    def _draw_into(self, out, generator):
        return _random_signs(out, generator)


@dataclass(frozen=True)
class Orthonormal(TangentLaw):
    """``k <= n`` orthonormal tangents, uniformly (Haar) distributed on the Stiefel manifold."""

    def _draw(self, k, n, batch_shape, generator, dtype, device):
        return _haar_orthonormal(k, n, batch_shape, generator, dtype, device)


@dataclass(frozen=True)
class StandardBasis(TangentLaw):
    """``k <= n`` distinct coordinate axes ``e_j``, chosen uniformly without replacement (coordinate descent)."""

    def _draw(self, k, n, batch_shape, generator, dtype, device):
        if k > n:
            raise ValueError(f"at most n distinct basis vectors exist in R^n; got k={k} for n={n}")
        scores = torch.rand((*batch_shape, n), generator=generator, device=device)
        axes = scores.argsort(dim=-1)[..., :k]
        return torch.nn.functional.one_hot(axes, n).to(dtype)


@dataclass(frozen=True)
class FixedAngle(TangentLaw):
    """Unit tangents at angle ``theta`` (degrees) to the first one: the paper's custom-tangent experiment.

    ``v_1`` is a uniform random unit vector; every other ``v_i = cos(θ) v_1 + sin(θ) w_i`` with ``w_i`` a
    random unit vector orthogonal to ``v_1``. The ``v_i`` (i > 1) are not orthogonal to each other. θ = 90°
    gives tangents orthogonal to ``v_1``; small θ makes the set nearly collinear (ill-conditioned).
    All rows have norm 1 already.
    """

    theta: float = 45.0

    def __post_init__(self):
        if not 0.0 < _check_real(self.theta, "theta") <= 90.0:
            raise ValueError(f"theta must lie in (0, 90] degrees; got theta={self.theta!r}")

    def _draw(self, k, n, batch_shape, generator, dtype, device):
        if n < 2 and k > 1:
            raise ValueError(f"fixed-angle tangents need n >= 2 for k > 1; got n={n}")
        U = _normal((*batch_shape, k, n), generator, dtype, device)
        U = U / torch.linalg.vector_norm(U, dim=-1, keepdim=True)
        first = U[..., :1, :]
        others = U[..., 1:, :]
        others = others - (others * first).sum(-1, keepdim=True) * first
        others = others / torch.linalg.vector_norm(others, dim=-1, keepdim=True)
        angle = math.radians(self.theta)
        return torch.cat([first, math.cos(angle) * first + math.sin(angle) * others], dim=-2)


@dataclass(frozen=True)
class OrthogonalScaled(TangentLaw):
    """Orthogonal tangents with lengths uniform in ``[1, max_length]``: Haar directions, random norms.

    Sum and mean depend on the lengths, the projection does not (it is invariant to any rescaling of the
    tangents), which is what this law is for.
    """

    max_length: float = 10.0

    def __post_init__(self):
        if not _check_real(self.max_length, "max_length") >= 1.0:
            raise ValueError(f"max_length must be >= 1; got {self.max_length!r}")

    def _draw(self, k, n, batch_shape, generator, dtype, device):
        V = _haar_orthonormal(k, n, batch_shape, generator, dtype, device)
        lengths = 1 + (self.max_length - 1) * torch.rand((*batch_shape, k, 1), generator=generator,
                                                         dtype=dtype, device=device)
        return V * lengths


TANGENT_LAWS: dict[str, type[TangentLaw]] = {
    "normal": Normal,
    "rademacher": Rademacher,
    "orthonormal": Orthonormal,
    "basis": StandardBasis,
    "fixed-angle": FixedAngle,
    "orthogonal-scaled": OrthogonalScaled,
}


def tangent_law(law: str | TangentLaw, **options) -> TangentLaw:
    """Return a :class:`TangentLaw` from a law object or a registered name plus its options.

    >>> tangent_law("fixed-angle", theta=30.0)
    FixedAngle(normalize=False, theta=30.0)
    """
    if isinstance(law, TangentLaw):
        if options:
            raise ValueError(f"options {sorted(options)} given together with a law object {law!r}")
        return law
    try:
        cls = TANGENT_LAWS[law]
    except (KeyError, TypeError):
        raise ValueError(f"unknown tangent law {law!r}; choose one of {sorted(TANGENT_LAWS)} "
                         "or pass a TangentLaw object") from None
    try:
        return cls(**options)
    except TypeError as error:
        raise ValueError(f"bad options for tangent law {law!r}: {error}") from None
