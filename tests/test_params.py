"""Flat views of parameters: ravel and unraveler are exact inverses and unraveler copies nothing."""

import pytest
import torch

from fg_analysis.params import numel, ravel, unraveler


def params():
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(3, 4, generator=g), "b": torch.randn(3, generator=g), "s": torch.randn((), generator=g)}


def test_ravel_concatenates_in_order_and_unravel_inverts():
    p = params()
    flat, unravel = ravel(p)
    assert flat.shape == (numel(p),) == (16,)
    torch.testing.assert_close(flat, torch.cat([p["w"].reshape(-1), p["b"], p["s"].reshape(1)]))
    back = unravel(flat)
    assert list(back) == ["w", "b", "s"]
    for name in p:
        assert torch.equal(back[name], p[name])


def test_unraveler_keeps_batch_dimensions_and_views_the_input():
    p = params()
    V = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 16)
    pieces = unraveler(p)(V)
    assert pieces["w"].shape == (2, 3, 4) and pieces["b"].shape == (2, 3) and pieces["s"].shape == (2,)
    assert pieces["w"].untyped_storage().data_ptr() == V.untyped_storage().data_ptr()  # a view, no copy
    torch.testing.assert_close(torch.cat([pieces["w"].reshape(2, -1), pieces["b"], pieces["s"][:, None]], 1), V)


def test_a_plain_tensor_round_trips_and_bad_input_is_an_error():
    x = torch.randn(2, 3)
    flat, unravel = ravel(x)
    assert torch.equal(unravel(flat), x)
    with pytest.raises(ValueError, match="non-empty dict"):
        unraveler({})
    with pytest.raises(ValueError, match="16 entries"):
        unraveler(params())(torch.zeros(15))
