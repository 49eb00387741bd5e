"""The composed estimator: every JVP mode gives the same estimate on the same tangents, per-tensor aggregation is
aggregation tensor by tensor, and the projection is exact at k = n. References are autograd gradients."""

import pytest
import torch
from torch import nn

from fg_analysis.aggregate import mean, projection, total
from fg_analysis.estimator import ForwardGradient, forward_gradient
from fg_analysis.jvp import MODES
from fg_analysis.tangents import Normal, Orthonormal
from utils import autograd_gradient

DT = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rosenbrock_like(x, shift):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (shift - x[:-1]) ** 2).sum() + torch.sin(x).sum()


@pytest.fixture
def net():
    torch.manual_seed(0)  # test-only initialization
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(DT)
    inputs, targets = torch.randn(5, 3, dtype=DT), torch.randint(0, 2, (5,))
    return model, inputs, targets


def net_gradient(model, inputs, targets):
    model.zero_grad()
    nn.functional.cross_entropy(model(inputs), targets).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("aggregator", ["projection", "mean", "sum"])
@pytest.mark.parametrize("mode", ["sequential", "oracle"])
def test_modes_agree_on_function(aggregator, mode):
    x = torch.linspace(-1, 1, 9, dtype=DT)
    options = dict(args=(0.5,), k=4, aggregator=aggregator)
    reference = forward_gradient(rosenbrock_like, x, mode="forward", generator=gen(3), **options)
    other = forward_gradient(rosenbrock_like, x, mode=mode, generator=gen(3), **options)
    torch.testing.assert_close(other, reference, rtol=0, atol=1e-10 * float(reference.norm()))
    # and both equal the aggregator applied to the same tangents with autograd's exact derivatives
    V = Normal().sample(4, 9, generator=gen(3), dtype=DT)
    g = autograd_gradient(rosenbrock_like, x, 0.5)
    expected = {"projection": projection, "mean": mean, "sum": total}[aggregator](V, V @ g)
    torch.testing.assert_close(reference, expected, rtol=0, atol=1e-10 * float(expected.norm()))


@pytest.mark.parametrize("mode", MODES)
def test_module_and_loss(net, mode):
    model, inputs, targets = net
    estimate = forward_gradient(model, loss_fn=nn.functional.cross_entropy, args=(inputs, targets), k=5,
                                mode=mode, generator=gen(4))
    assert isinstance(estimate, dict)
    assert {name: tuple(v.shape) for name, v in estimate.items()} == \
        {name: tuple(p.shape) for name, p in model.named_parameters()}
    true = net_gradient(model, inputs, targets)
    flat_true = torch.cat([true[name].reshape(-1) for name in estimate])
    V = Normal().sample(5, flat_true.numel(), generator=gen(4), dtype=DT)
    expected = projection(V, V @ flat_true)
    flat_estimate = torch.cat([v.reshape(-1) for v in estimate.values()])
    torch.testing.assert_close(flat_estimate, expected, rtol=0, atol=1e-10)


def test_module_with_explicit_params(net):
    model, inputs, targets = net
    params = {name: p.detach() for name, p in model.named_parameters()}
    explicit = forward_gradient(model, params, loss_fn=nn.functional.cross_entropy, args=(inputs, targets), k=3,
                                generator=gen(5))
    implicit = forward_gradient(model, loss_fn=nn.functional.cross_entropy, args=(inputs, targets), k=3,
                                generator=gen(5))
    for name in params:
        torch.testing.assert_close(explicit[name], implicit[name], rtol=0, atol=0)


def test_exact_at_full_rank_function():
    x = torch.linspace(-1, 1, 6, dtype=DT)
    estimate = forward_gradient(rosenbrock_like, x, args=(0.3,), k=6, generator=gen(6))
    torch.testing.assert_close(estimate, autograd_gradient(rosenbrock_like, x, 0.3), rtol=1e-10, atol=1e-10)


def test_exact_at_full_rank_module(net):
    model, inputs, targets = net
    P = sum(p.numel() for p in model.parameters())
    estimate = forward_gradient(model, loss_fn=nn.functional.cross_entropy, args=(inputs, targets), k=P,
                                generator=gen(7))
    for name, g in net_gradient(model, inputs, targets).items():
        torch.testing.assert_close(estimate[name], g, rtol=0, atol=1e-10)


def test_per_tensor_equals_tensorwise_aggregation(net):
    model, inputs, targets = net
    k = 2
    estimate = forward_gradient(model, loss_fn=nn.functional.cross_entropy, args=(inputs, targets), k=k,
                                per_tensor=True, generator=gen(8))
    true = net_gradient(model, inputs, targets)
    generator = gen(8)  # tangent sets are drawn tensor by tensor, in parameter order, from one generator
    for name, p in model.named_parameters():
        V = Normal().sample(k, p.numel(), generator=generator, dtype=DT)
        expected = projection(V, V @ true[name].reshape(-1)).reshape(p.shape)
        torch.testing.assert_close(estimate[name], expected, rtol=0, atol=1e-10)


def test_per_tensor_exact_with_enough_tangents():
    """Each tensor projected onto the span of its own k >= size tangents recovers its own gradient."""
    params = {"a": torch.tensor([0.3, -0.2], dtype=DT), "b": torch.tensor([[1.0, 2.0]], dtype=DT)}

    def f(p):
        return (p["a"] ** 2).sum() * p["b"].sum() + torch.exp(p["a"] @ p["b"][0])

    estimate = forward_gradient(f, params, k=2, per_tensor=True, generator=gen(9))
    leaves = {name: v.clone().requires_grad_(True) for name, v in params.items()}
    grads = torch.autograd.grad(f(leaves), list(leaves.values()))
    for (name, _), g in zip(params.items(), grads):
        torch.testing.assert_close(estimate[name], g, rtol=0, atol=1e-10)


def test_per_tensor_estimate_lies_in_each_tensors_own_span():
    params = {"w": torch.randn(4, 3, dtype=DT, generator=gen(1)), "b": torch.randn(5, dtype=DT, generator=gen(2))}

    def f(p):
        return ((p["w"].sum(0) ** 3).sum() + p["b"].sin().sum()) * p["w"].mean()

    estimate = forward_gradient(f, params, k=2, per_tensor=True, generator=gen(10), aggregator="mean")
    generator = gen(10)
    for name, p in params.items():
        V = Normal().sample(2, p.numel(), generator=generator, dtype=DT)
        coefficients = torch.linalg.lstsq(V.T, estimate[name].reshape(-1, 1)).solution
        torch.testing.assert_close((V.T @ coefficients).reshape(p.shape), estimate[name], rtol=0, atol=1e-12)


def test_tangent_law_and_custom_aggregator():
    x = torch.linspace(0.1, 1, 5, dtype=DT)
    seen = {}

    def record(V, d):
        seen["V"], seen["d"] = V, d
        return torch.zeros(V.shape[-1], dtype=V.dtype)

    forward_gradient(rosenbrock_like, x, args=(1.0,), k=3, tangents=Orthonormal(), aggregator=record,
                     generator=gen(11))
    torch.testing.assert_close(seen["V"] @ seen["V"].T, torch.eye(3, dtype=DT), rtol=0, atol=1e-12)
    torch.testing.assert_close(seen["d"], seen["V"] @ autograd_gradient(rosenbrock_like, x, 1.0), rtol=0, atol=1e-10)
    by_name = forward_gradient(rosenbrock_like, x, args=(1.0,), k=3, tangents="orthonormal", generator=gen(11))
    by_object = forward_gradient(rosenbrock_like, x, args=(1.0,), k=3, tangents=Orthonormal(), generator=gen(11))
    torch.testing.assert_close(by_name, by_object, rtol=0, atol=0)


def test_scale_correction_option():
    x = torch.linspace(-1, 1, 8, dtype=DT)
    plain = forward_gradient(rosenbrock_like, x, args=(1.0,), k=2, generator=gen(12))
    corrected = forward_gradient(rosenbrock_like, x, args=(1.0,), k=2, scale_correction=True, generator=gen(12))
    V = Normal().sample(2, 8, generator=gen(12), dtype=DT)
    d = V @ autograd_gradient(rosenbrock_like, x, 1.0)
    torch.testing.assert_close(corrected, projection(V, d, scale_correction=True), rtol=1e-10, atol=1e-10)
    assert float(corrected.norm()) > float(plain.norm())


def test_float32_params_give_float32_estimate():
    x = torch.linspace(-1, 1, 8)
    estimate = forward_gradient(rosenbrock_like, x, args=(1.0,), k=3, generator=gen(13))
    assert estimate.dtype == torch.float32 and estimate.shape == x.shape


def test_global_rng_untouched():
    state = torch.random.get_rng_state()
    forward_gradient(rosenbrock_like, torch.ones(4, dtype=DT), args=(1.0,), k=2, generator=gen(14))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_errors(net):
    model, inputs, targets = net
    x = torch.ones(4, dtype=DT)
    with pytest.raises(ValueError, match="loss_fn"):
        forward_gradient(model, args=(inputs, targets), k=2)
    with pytest.raises(ValueError, match="params are required"):
        forward_gradient(rosenbrock_like, args=(1.0,), k=2)
    with pytest.raises(ValueError, match="unknown JVP mode"):
        forward_gradient(rosenbrock_like, x, args=(1.0,), k=2, mode="reverse")
    with pytest.raises(ValueError, match="unknown JVP mode"):
        ForwardGradient(2, mode="fast")
    with pytest.raises(ValueError, match="unknown aggregator"):
        forward_gradient(rosenbrock_like, x, args=(1.0,), k=2, aggregator="median")
    with pytest.raises(ValueError, match="unknown tangent law"):
        forward_gradient(rosenbrock_like, x, args=(1.0,), k=2, tangents="uniform")
    with pytest.raises(ValueError, match="k"):
        forward_gradient(rosenbrock_like, x, args=(1.0,), k=0)
    with pytest.raises(ValueError, match="k=5 for n=4"):
        forward_gradient(rosenbrock_like, x, args=(1.0,), k=5, tangents="orthonormal")
    with pytest.raises(ValueError, match="projection aggregator only"):
        forward_gradient(rosenbrock_like, x, args=(1.0,), k=2, aggregator="mean", scale_correction=True)
    with pytest.raises(ValueError, match="dict of named"):
        forward_gradient(rosenbrock_like, x, args=(1.0,), k=2, per_tensor=True)
    with pytest.raises(ValueError, match="mode='forward'"):
        forward_gradient(model, loss_fn=nn.functional.cross_entropy, args=(inputs, targets), k=2,
                         per_tensor=True, mode="oracle")
