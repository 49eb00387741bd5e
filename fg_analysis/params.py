"""Flat views of parameters: one vector in ``R^P`` for a tensor or a dict of named tensors.

A *global* tangent lives in ``R^P`` (all of a network's parameters at once); :func:`ravel` returns the flat
vector and the inverse map back to the original shapes, so a projection can act across the whole network.

>>> import torch
>>> flat, unravel = ravel({"w": torch.ones(2, 2), "b": torch.zeros(2)})
>>> flat.shape, unravel(flat)["w"].shape
(torch.Size([6]), torch.Size([2, 2]))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

Params = torch.Tensor | Mapping[str, torch.Tensor]


def unraveler(params: Params) -> Callable[[torch.Tensor], Params]:
    """The map from flat vectors ``(..., P)`` back to the structure of ``params``, from shapes alone (no copy).

    Leading batch dimensions are kept, so a ``(k, P)`` tangent matrix maps to tensors of shape ``(k, *shape)``.
    """
    if isinstance(params, torch.Tensor):
        shape = params.shape
        return lambda v: v.reshape((*v.shape[:-1], *shape))
    if not isinstance(params, Mapping) or not params:
        raise ValueError(f"params must be a tensor or a non-empty dict of tensors; got {type(params).__name__}")
    names = list(params)
    shapes = [params[name].shape for name in names]
    sizes = [params[name].numel() for name in names]

    def unravel(vector: torch.Tensor) -> dict[str, torch.Tensor]:
        if vector.shape[-1] != sum(sizes):
            raise ValueError(f"expected vectors with {sum(sizes)} entries; got shape {tuple(vector.shape)}")
        pieces = vector.split(sizes, dim=-1)
        return {name: piece.reshape((*vector.shape[:-1], *shape))
                for name, piece, shape in zip(names, pieces, shapes)}

    return unravel


def ravel(params: Params) -> tuple[torch.Tensor, Callable[[torch.Tensor], Params]]:
    """Return ``(flat, unravel)``: ``flat`` concatenates all entries (a copy for a dict); ``unravel`` is
    :func:`unraveler` of ``params``."""
    unravel = unraveler(params)
    if isinstance(params, torch.Tensor):
        return params.reshape(-1), unravel
    return torch.cat([p.reshape(-1) for p in params.values()]), unravel


def numel(params: Params) -> int:
    """Total number of scalar parameters ``P``."""
    if isinstance(params, torch.Tensor):
        return params.numel()
    return sum(p.numel() for p in params.values())
