"""Skip the products that PyTorch's forward mode computes with absent tangents.

A forward-mode rule needs a tangent for every input of an op: for a matrix product it is
``d(a b) = ȧ b + a ḃ``. An input without a tangent gets an *efficient zero tensor* (``torch._efficientzerotensor``)
in its place, and PyTorch's fallback for matrix products and convolutions materializes that zero and multiplies
it. In a forward gradient that is one useless product per layer:

* weight perturbation: the data entering the first layer (``ẋ = 0``), e.g. the 784 × 1024 layer of the FC-1024,
  whose JVP takes 4.0–4.4 ms with the zero multiplied and 3.0–3.1 ms without (the primal alone: 1.2 ms; one
  CPU core, three interleaved runs);
* activity perturbation: every weight (``Ẇ = 0``), a third of the JVP's products.

:func:`install` registers kernels for ``mm``, ``bmm`` and ``convolution`` at the ``ZeroTensor`` dispatch key
that return the zero (or, for a convolution with a bias, the bias), broadcast to the product's shape without
computing or allocating anything. The values are unchanged, since a product with an exact zero is an exact
zero; only the work goes. The kernels are Python functions: on small layers their call costs about what the
skipped product would.

Nothing is registered on import. The registration is scoped: :func:`skipping` installs the kernels for the
duration of a ``with`` block and removes them afterwards (re-entrant), and the package's estimator
(:class:`fg_analysis.estimator.ForwardGradient`) wraps only its own forward-mode passes in it, so a user's own
``torch.func.jvp`` outside those calls gets PyTorch's behaviour. Installing and removing costs about 0.1 ms, small
beside a network's JVP; :func:`install` and :func:`uninstall` are the explicit opt-in for a whole process. The
benchmark times both ways (:mod:`fg_analysis.bench`).

>>> import torch
>>> from torch.func import jvp
>>> x, W = torch.ones(2, 3), torch.ones(4, 3)
>>> with skipping():   # x carries no tangent: one product, not two
...     jvp(lambda W: x @ W.T, (W,), (torch.ones(4, 3),))[1]
tensor([[3., 3., 3., 3.],
        [3., 3., 3., 3.]])
>>> installed()
False
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["install", "installed", "skipping", "uninstall"]

_library: torch.library.Library | None = None
_depth = 0  # nesting of skipping() blocks


def _zero(shape, like: torch.Tensor) -> torch.Tensor:
    """A zero of ``shape`` without memory: one zero broadcast (stride 0). Not an efficient zero tensor: adding
    one of those goes through a slow Python decomposition, which on small layers costs more than the skipped
    product (FC-256 weight JVP against PyTorch's own: 6–16% slower with zero tensors in five runs, 12–16% faster
    with a broadcast zero in two). The forward-mode rules only read it; an in-place write into it would raise,
    never alias silently."""
    return torch.zeros((), dtype=like.dtype, device=like.device).expand(tuple(shape))


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _zero((a.shape[0], b.shape[1]), a)


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _zero((a.shape[0], a.shape[1], b.shape[2]), a)


def _convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """A convolution with a zero input or weight: zero, plus the bias broadcast over the output if it has one.
    With only a zero bias (``d conv = conv(ẋ, W, ḃ) + conv(x, Ẇ)`` passes the absent ḃ), the convolution
    without it."""
    options = (stride, padding, dilation, transposed, output_padding, groups)
    if not (input._is_zerotensor() or weight._is_zerotensor()):
        return torch.ops.aten.convolution(input, weight, None, *options)
    meta = [torch.empty(t.shape, dtype=t.dtype, device="meta") for t in (input, weight)]
    shape = torch.ops.aten.convolution(*meta, None, *options).shape
    if bias is None or bias._is_zerotensor():
        return _zero(shape, input)
    return bias.reshape(1, -1, *([1] * (len(shape) - 2))).expand(shape)


_KERNELS = {"mm": _mm, "bmm": _bmm, "convolution": _convolution}


def install() -> None:
    """Register the zero-skipping kernels (idempotent). A PyTorch that refuses them leaves forward mode as it is,
    with a warning: they save time, they change no value."""
    global _library
    if _library is None:
        library = torch.library.Library("aten", "IMPL")
        try:
            with warnings.catch_warnings():  # replacing PyTorch's materializing kernels is the point
                warnings.filterwarnings("ignore", message="Warning only once for all operators")
                for name, kernel in _KERNELS.items():
                    library.impl(name, kernel, "ZeroTensor")
        except (RuntimeError, ValueError) as error:
            library._destroy()
            warnings.warn(f"fg_analysis.zero_tangents: torch {torch.__version__} refused the zero-tangent kernels "
                          f"({error}); forward mode multiplies zero tangents as PyTorch does", RuntimeWarning,
                          stacklevel=2)
            return
        _library = library


def uninstall() -> None:
    """Remove the kernels: PyTorch materializes zero tangents and multiplies them again."""
    global _library
    if _library is not None:
        # explicitly: a Library's registrations would otherwise end only with its last reference, and copies of
        # this module's globals (doctest makes them) keep one
        _library._destroy()
        _library = None


def installed() -> bool:
    """Whether the zero-skipping kernels are registered now."""
    return _library is not None


@contextmanager
def skipping(enabled: bool = True) -> Iterator[None]:
    """The zero-skipping kernels inside the block (``enabled=False``: no change), PyTorch's own after it.

    Re-entrant: nested blocks keep the kernels until the outermost one ends. An explicit :func:`install` made
    before the block is left in place."""
    global _depth
    if not enabled or (_depth == 0 and installed()):
        yield
        return
    if _depth == 0:
        install()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            uninstall()
