"""Gradient sources: real forward mode equals simulated, exactness at full rank, BatchNorm handling."""

import pytest
import torch

from fg_analysis.nets import gradients as G
from fg_analysis.nets.gradients import GradientSource, activity_perturbation
from fg_analysis.metrics import cosine
from fg_analysis.nets.models import build_model

SHAPE = (1, 8, 8)
TINY = {
    "fc": dict(width=8),
    "vit": dict(width=8, layers=1, heads=2),
    "resnet18": dict(width=2, blocks=(1, 1, 1, 1)),
}


def _setup(name, seed=0, batch=4):
    net = build_model(name, input_shape=SHAPE, n_classes=10, seed=seed, dtype=torch.float64, **TINY[name])
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(batch, *SHAPE, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (batch,), generator=g)
    return net, x, y


def _relative(a, b):
    num = sum(float((a[n] - b[n]).pow(2).sum()) for n in b) ** 0.5
    den = sum(float(b[n].pow(2).sum()) for n in b) ** 0.5
    return num / den


def _bp(net, x, y):
    """Independent reference: plain autograd on the mean cross-entropy (BatchNorm buffers restored after)."""
    saved = {n: b.clone() for n, b in net.named_buffers()}
    loss = torch.nn.functional.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, list(net.parameters()))
    with torch.no_grad():
        for n, b in net.named_buffers():
            b.copy_(saved[n])
    return dict(zip((n for n, _ in net.named_parameters()), grads))


@pytest.mark.parametrize("name", ["fc", "vit", "resnet18"])
@pytest.mark.parametrize("aggregator", ["mean", "projection"])
@pytest.mark.parametrize("perturbation", ["activity", "weight"])
def test_real_equals_simulated_float64(name, aggregator, perturbation):
    net, x, y = _setup(name)
    if name == "resnet18" and perturbation == "activity":
        net.eval()  # real activity mode needs per-sample independence (see test_real_activity_refuses_train_bn)
    estimator = G.activity_perturbation if perturbation == "activity" else G.weight_perturbation
    n = G.activity_dimension(net, SHAPE) if perturbation == "activity" else sum(p.numel() for p in net.parameters())
    V = torch.randn(3, n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    real = estimator(net, x, y, aggregator=aggregator, mode="forward", tangents=V)
    simulated = estimator(net, x, y, aggregator=aggregator, mode="oracle", tangents=V)
    assert _relative(real.grads, simulated.grads) < 1e-10
    assert torch.allclose(real.loss, simulated.loss, rtol=1e-12)
    assert list(real.grads) == [n for n, _ in net.named_parameters()]


@pytest.mark.parametrize("name", ["fc", "vit", "resnet18"])
def test_activity_projection_with_full_rank_tangents_is_backprop(name):
    net, x, y = _setup(name)  # resnet18 in train mode: BatchNorm couples the samples, the simulated mode is exact
    A = G.activity_dimension(net, SHAPE)
    V = torch.randn(A, A, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mode = "oracle" if name == "resnet18" else "forward"
    estimate = G.activity_perturbation(net, x, y, aggregator="projection", mode=mode, tangents=V)
    assert _relative(estimate.grads, _bp(net, x, y)) < 1e-7


def test_activity_dimension_of_fc_is_2w_plus_10():
    net = build_model("fc", input_shape=SHAPE, n_classes=10, width=8)
    assert G.activity_dimension(net, SHAPE) == 2 * 8 + 10


def test_weight_projection_with_k_equal_P_is_backprop():
    net = build_model("fc", input_shape=(1, 4, 4), n_classes=10, width=4, seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(5, 1, 4, 4, generator=g, dtype=torch.float64), torch.randint(0, 10, (5,), generator=g)
    P = sum(p.numel() for p in net.parameters())
    estimate = G.weight_perturbation(net, x, y, k=P, aggregator="projection", mode="forward", generator=g)
    assert _relative(estimate.grads, _bp(net, x, y)) < 1e-8


def test_backprop_matches_autograd_and_cosine_is_one():
    net, x, y = _setup("vit")
    truth = G.backprop(net, x, y)
    assert _relative(truth.grads, _bp(net, x, y)) < 1e-12
    assert cosine(truth.grads, truth.grads) == pytest.approx(1.0)


def test_mean_of_many_tangents_points_at_the_gradient():
    # E[v vᵀ] = I: the mean of many single-tangent estimates approaches the true gradient (unbiasedness).
    net, x, y = _setup("fc")
    estimate = G.activity_perturbation(net, x, y, k=4000, aggregator="mean", mode="oracle",
                                       generator=torch.Generator().manual_seed(4))
    assert cosine(estimate.grads, _bp(net, x, y)) > 0.95


def test_real_activity_refuses_train_batch_norm():
    net, x, y = _setup("resnet18")
    with pytest.raises(ValueError, match="BatchNorm"):
        G.activity_perturbation(net, x, y, k=2, mode="forward", generator=torch.Generator().manual_seed(0))


def test_gradient_source_labels_and_validation():
    assert G.GradientSource("bp").label == "BP"
    assert G.GradientSource("fg", k=1).label == "FG"
    assert G.GradientSource("fg", k=4, aggregator="mean").label == "mean k=4"
    with pytest.raises(ValueError, match="mode"):
        G.GradientSource("fg", mode="fast")
    net, x, y = _setup("fc")
    out = G.GradientSource("fg", k=2, aggregator="projection")(net, x, y, generator=torch.Generator().manual_seed(0))
    assert set(out.grads) == {n for n, _ in net.named_parameters()}


def test_sources_leave_the_global_rng_alone():
    net, x, y = _setup("fc")
    state = torch.random.get_rng_state()
    G.activity_perturbation(net, x, y, k=3, generator=torch.Generator().manual_seed(0))
    G.weight_perturbation(net, x, y, k=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.random.get_rng_state())


def test_a_source_configures_its_estimator_once_and_gives_the_same_numbers():
    """Configure once: every step with one generator reuses one estimator (and its tangent buffer); the
    gradients equal a fresh activity perturbation's with an identically seeded generator."""
    net = build_model("fc", input_shape=(1, 8, 8), n_classes=10, width=16, seed=0)
    x, y = torch.randn(5, 1, 8, 8), torch.randint(0, 10, (5,))
    source = GradientSource("fg", k=3, aggregator="projection", mode="oracle")
    mine, fresh = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    for _ in range(2):
        got = source(net, x, y, generator=mine)
        want = activity_perturbation(net, x, y, k=3, aggregator="projection", mode="oracle", generator=fresh)
        assert all(torch.equal(got.grads[name], want.grads[name]) for name in want.grads)
    estimator = source.estimator(mine)
    assert source.estimator(mine) is estimator and source.estimator(torch.Generator()) is not estimator
