"""The one estimator, ForwardGradient: its compositions agree with each other and with independent references."""

import numpy as np
import pytest
import torch
from torch import nn

from fg_analysis import aggregate
from fg_analysis import estimator
from fg_analysis.estimator import (ForwardGradient, batch_norms_in_training, flat_vector, forward_gradient,
                                    module_objective)
from fg_analysis.tangents import Normal
from fg_analysis.jvp import MODES

DT = torch.float64


def quadratic(x):
    return 0.5 * (x * torch.arange(1.0, x.numel() + 1, dtype=x.dtype) * x).sum()


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("aggregator", ["sum", "mean", "projection"])
@pytest.mark.parametrize("mode", MODES)
def test_estimate_is_the_aggregate_of_its_tangents_and_true_jvps(aggregator, mode):
    x = torch.linspace(-1, 1, 7, dtype=DT)
    estimate = ForwardGradient(3, aggregator=aggregator, mode=mode, generator=generator())(quadratic, x)
    g = torch.arange(1.0, 8.0, dtype=DT) * x  # ∇f, by hand
    torch.testing.assert_close(estimate.derivatives, estimate.tangents @ g)
    torch.testing.assert_close(estimate.gradient, aggregate.AGGREGATORS[aggregator](estimate.tangents, estimate.tangents @ g))
    assert float(estimate.value) == pytest.approx(float(quadratic(x)))


@pytest.mark.parametrize("aggregator", ["sum", "mean", "projection"])
def test_step_on_a_flat_vector_equals_the_estimate_update(aggregator):
    """The one-pass update θ -= lr·Vᵀc equals θ - lr·ĝ with ĝ from the same tangents."""
    x0 = torch.linspace(-1, 1, 9, dtype=DT)
    expected = x0 - 0.1 * ForwardGradient(4, aggregator=aggregator, generator=generator(5)).estimate(quadratic, x0)
    x = x0.clone()
    hooks = []
    ForwardGradient(4, aggregator=aggregator, generator=generator(5)).step(quadratic, x, lr=0.1, on_phase=hooks.append)
    torch.testing.assert_close(x, expected)
    assert hooks == ["sample", "jvp", "aggregate", "update"]


def test_step_on_a_dict_and_a_custom_aggregator():
    params = {"a": torch.ones(2, dtype=DT), "b": torch.full((3,), 2.0, dtype=DT)}

    def f(p):
        return (p["a"] ** 2).sum() + (p["b"] ** 2).sum()

    def half_projection(V, d):
        return 0.5 * aggregate.projection(V, d)

    ForwardGradient(5, aggregator=half_projection, generator=generator()).step(f, params, lr=1.0)
    # k = n: the projection is exact, half a gradient step: x - 0.5·2x = 0
    assert all(float(p.abs().max()) < 1e-12 for p in params.values())


def test_numpy_integer_k_and_reused_buffer():
    fg = ForwardGradient(np.int64(2), generator=generator())
    first = fg.sample(5, dtype=DT).clone()
    second = fg.sample(5, dtype=DT)
    assert fg.k == 2 and isinstance(fg.k, int) and second.data_ptr() == fg.sample(5, dtype=DT).data_ptr()
    assert not torch.equal(first, second)  # a new draw into the same buffer


def test_frozen_parameters_get_no_estimate_and_no_tangent_dimensions():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    net[0].requires_grad_(False)
    x, y = torch.randn(5, 3, dtype=DT), torch.tensor([0, 1, 0, 1, 1])
    g = forward_gradient(net, args=(x, y), loss_fn=nn.functional.cross_entropy, k=10, generator=generator())
    assert sorted(g) == ["2.bias", "2.weight"]  # 10 = P of the trainable layer: the projection is exact
    loss = nn.functional.cross_entropy(net(x), y)
    truth = torch.autograd.grad(loss, [net[2].weight, net[2].bias])
    torch.testing.assert_close(g["2.weight"], truth[0])
    torch.testing.assert_close(g["2.bias"], truth[1])


def test_batchnorm_statistics_are_updated_once_per_call_in_sequential_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).double()
    x, y = torch.randn(6, 3, dtype=DT), torch.tensor([0, 1, 0, 1, 1, 0])
    reference = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).double()
    reference.load_state_dict(net.state_dict())
    reference(x)  # one forward pass in train mode
    forward_gradient(net, args=(x, y), loss_fn=nn.functional.cross_entropy, k=4, mode="sequential",
                     generator=generator())
    torch.testing.assert_close(net[1].running_mean, reference[1].running_mean)
    torch.testing.assert_close(net[1].running_var, reference[1].running_var)
    assert int(net[1].num_batches_tracked) == 1


def test_module_objective_flat_makes_the_module_parameters_views():
    net = nn.Linear(3, 2).double()
    f, flat = module_objective(net, nn.functional.cross_entropy, flat=True)
    x, y = torch.randn(4, 3, dtype=DT), torch.tensor([0, 1, 1, 0])
    assert float(f(flat, x, y)) == pytest.approx(float(nn.functional.cross_entropy(net(x), y)))
    flat.zero_()
    assert float(net.weight.detach().abs().sum()) == 0.0


def test_batch_norms_in_training_is_what_forward_mode_refuses():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    assert batch_norms_in_training(net)
    net.eval()
    assert not batch_norms_in_training(net)
    untracked = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2, track_running_stats=False))
    assert not batch_norms_in_training(untracked)  # batch statistics only: nothing to update, forward mode works
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 0, 1])
    g = forward_gradient(untracked, args=(x, y), loss_fn=nn.functional.cross_entropy, k=2, generator=generator())
    assert all(torch.isfinite(v).all() for v in g.values())


def test_module_objective_refuses_mixed_dtypes_and_leaves_the_module_alone():
    """One flat vector holds every trainable parameter: a float32 and a float64 layer once became float64 views
    of it, silently changing the module's dtypes."""
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2).double())
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    with pytest.raises(ValueError, match=r"^parameters must share one dtype; got torch\.float32 for '0\.weight'"):
        module_objective(net, nn.functional.mse_loss, flat=True)
    for name, p in net.named_parameters():
        assert p.dtype == before[name].dtype and torch.equal(p.detach(), before[name])


@pytest.mark.parametrize("params", [torch.ones(3, dtype=torch.int64),
                                    {"w": torch.ones(3), "mask": torch.ones(3, dtype=torch.bool)}],
                         ids=["int-tensor", "dict-with-bool"])
def test_non_floating_params_are_refused_before_any_tangent_is_drawn(params):
    """The parameters' dtype is checked first (a dict's first float entry once let the tangents be drawn and
    the failure came from deep inside torch.func): the generator is left where it was."""
    rng = generator(5)
    state = rng.get_state()
    with pytest.raises(ValueError, match=r"must be a real floating-point tensor; got dtype torch\.(int64|bool)"):
        ForwardGradient(2, generator=rng).step(quadratic, params, lr=0.1)  # f is never reached
    assert torch.equal(rng.get_state(), state)


def small_net(seed=0):
    torch.manual_seed(seed)  # test-only initialization
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()


def test_step_on_a_module_is_the_flat_step_and_flattens_once():
    """``step(model, x, y, loss_fn=)`` takes the same step as ``step(f, θ, x, y)`` on ``module_objective``'s flat
    vector (an autograd-checked path); afterwards the parameters are views of one vector, which later steps reuse."""
    x, y = torch.randn(6, 3, dtype=DT, generator=generator(1)), torch.tensor([0, 1, 1, 0, 1, 0])
    by_module, by_vector = small_net(), small_net()
    f, theta = module_objective(by_vector, nn.functional.cross_entropy, flat=True)
    for _ in range(2):
        ForwardGradient(3, generator=generator(2)).step(by_module, x, y, loss_fn=nn.functional.cross_entropy, lr=0.1)
        ForwardGradient(3, generator=generator(2)).step(f, theta, x, y, lr=0.1)
    for a, b in zip(by_module.parameters(), by_vector.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-14)
    vector = flat_vector(list(by_module.parameters()))
    assert vector is not None and vector.numel() == sum(p.numel() for p in by_module.parameters())
    assert module_objective(by_module, nn.functional.cross_entropy, flat=True)[1].data_ptr() == vector.data_ptr()
    with pytest.raises(ValueError, match="loss_fn"):
        ForwardGradient(1).step(by_module, x, y, lr=0.1)


def test_flat_vector_is_none_unless_the_parameters_are_consecutive_views():
    net = small_net()
    assert flat_vector(list(net.parameters())) is None
    module_objective(net, nn.functional.cross_entropy, flat=True)
    parameters = list(net.parameters())
    assert flat_vector(parameters) is not None
    assert flat_vector(parameters[::-1]) is None  # out of order: not consecutive pieces


@pytest.mark.parametrize("flat", [False, True], ids=["dict", "flat"])
def test_forward_gradient_on_a_module_either_way_is_the_projection_of_its_tangents(flat):
    """The public call on a module with separate parameters (the dict path) and on one whose parameters are a flat
    vector (the step's path): both the projection of ``Normal`` tangents of the same seed onto autograd's gradient."""
    net, x, y = small_net(), torch.randn(6, 3, dtype=DT, generator=generator(1)), torch.tensor([0, 1, 1, 0, 1, 0])
    if flat:
        module_objective(net, nn.functional.cross_entropy, flat=True)
    net.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    g = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    got = forward_gradient(net, args=(x, y), loss_fn=nn.functional.cross_entropy, k=4, generator=generator(3))
    V = Normal().sample(4, g.numel(), generator=generator(3), dtype=DT)
    torch.testing.assert_close(torch.cat([v.reshape(-1) for v in got.values()]), aggregate.projection(V, V @ g),
                               rtol=0, atol=1e-12)
    assert [tuple(v.shape) for v in got.values()] == [tuple(p.shape) for p in net.parameters()]


def test_forward_gradient_reuses_one_tangent_buffer_for_the_same_options():
    rng = generator(4)
    x = torch.linspace(-1, 1, 7, dtype=DT)
    first = forward_gradient(quadratic, x, k=3, generator=rng)
    (_, kept), = estimator._reusable
    buffer = kept._buffer.data_ptr()
    second = forward_gradient(quadratic, x, k=3, generator=rng)
    assert estimator._reusable[0][1] is kept and kept._buffer.data_ptr() == buffer
    assert not torch.equal(first, second)  # a new draw into the same memory
    forward_gradient(quadratic, x, k=3, generator=generator(4))  # another generator: another estimator
    assert estimator._reusable[0][1] is not kept
