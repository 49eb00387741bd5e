"""Tests of fg_analysis.nets.models: stage shapes, perturbation semantics, forward-mode JVPs against autograd."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, jvp, vmap

from fg_analysis.nets.models import (
    FullyConnected,
    ResNet18,
    VisionTransformer,
    build_model,
    count_parameters,
    default_patch_size,
)

DIGITS = (1, 8, 8)

# Tiny float64 configurations of every model (same code paths as the full-size ones).
TINY = {
    "fc": dict(name="fc", input_shape=DIGITS, width=12),
    "fc-deep": dict(name="fc", input_shape=DIGITS, width=6, hidden_layers=32),
    "resnet18": dict(name="resnet18", input_shape=DIGITS, width=4),
    "resnet18-imagenet-stem": dict(name="resnet18", input_shape=DIGITS, width=4, small_input=False),
    "vit": dict(name="vit", input_shape=DIGITS, width=16, layers=2, heads=2),
    "cnn": dict(name="cnn", input_shape=DIGITS, width=2),
}


def tiny(key: str, seed: int = 0) -> torch.nn.Module:
    return build_model(n_classes=10, seed=seed, dtype=torch.float64, **TINY[key])


def batch(n: int = 6, shape=DIGITS, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (n,), generator=g)
    return x, y


def random_like(tensors: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(t.shape, generator=g, dtype=t.dtype) for k, t in tensors.items()}


def observed_stage_shapes(model, x) -> list[tuple[int, ...]]:
    """Independent reference for activity_shapes: forward hooks on every stage."""
    shapes = []
    hooks = [s.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for s in model.stages]
    with torch.no_grad():
        model.eval()
        model(x)
    for h in hooks:
        h.remove()
    return shapes


# ----------------------------------------------------------------------------------------------------------
# shapes and parameter counts


@pytest.mark.parametrize("key", list(TINY))
def test_activity_shapes_match_forward(key):
    model = tiny(key)
    x, _ = batch()
    model.train()
    stats = {k: v.clone() for k, v in model.named_buffers()}
    shapes = model.activity_shapes(DIGITS)
    assert model.training and all(m.training for m in model.modules())  # modes restored
    assert all(torch.equal(v, stats[k]) for k, v in model.named_buffers())  # running stats untouched
    assert shapes == observed_stage_shapes(model, x)
    assert shapes[-1] == (10,) and len(shapes) == len(model.stages) == len(model.stage_names)


def test_fc_stages_are_hidden_activities_and_logits():
    net = FullyConnected(784, 256, 10)
    assert net.activity_shapes((1, 28, 28)) == [(256,), (256,), (10,)]
    assert sum(s[0] for s in net.activity_shapes((784,))) == 2 * 256 + 10
    assert count_parameters(net) == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    deep = FullyConnected(64, 8, 10, hidden_layers=32)
    assert len(deep.stages) == 33
    x = torch.randn(3, 1, 8, 8)
    out_hidden = deep.stages[0](x)
    assert (out_hidden >= 0).all()  # post-ReLU activities


def test_resnet18_parameter_counts_and_stages():
    # torchvision's resnet18() (ImageNet stem, 1000 classes) has 11,689,512 parameters
    assert count_parameters(ResNet18(3, 1000, small_input=False)) == 11_689_512
    cifar = ResNet18(3, 10)
    assert count_parameters(cifar) == 11_173_962
    assert cifar.stage_names == ("stem", "layer1", "layer2", "layer3", "layer4", "head")
    assert cifar.activity_shapes((3, 32, 32)) == [(64, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8),
                                                  (512, 4, 4), (10,)]
    mnist = ResNet18(1, 10, small_input=False)
    assert mnist.activity_shapes((1, 28, 28))[:2] == [(64, 7, 7), (64, 7, 7)]
    assert not any("num_batches_tracked" in k for k in cifar.state_dict())


def test_vit_parameter_count_formula_and_stages():
    h, m, p, c, n, layers, classes = 256, 512, 4, 1, 49, 6, 10
    net = VisionTransformer(28, c, classes, patch_size=p)
    embed = c * p * p * h + h + h + (n + 1) * h
    block = 2 * (2 * h) + (3 * h * h + 3 * h) + (h * h + h) + (h * m + m) + (m * h + h)
    head = 2 * h + h * classes + classes
    assert count_parameters(net) == embed + layers * block + head
    assert net.stage_names == ("embedding",) + tuple(f"block{i}" for i in range(1, 7)) + ("head",)
    assert net.activity_shapes((1, 28, 28)) == [(50, 256)] * 7 + [(10,)]


def test_default_patch_sizes():
    assert (default_patch_size(8), default_patch_size(28), default_patch_size(32)) == (2, 4, 4)
    vit = build_model("vit", input_shape=(3, 32, 32), n_classes=10, width=16, layers=1, heads=2)
    assert vit.patch_size == 4 and vit.activity_shapes((3, 32, 32))[0] == (65, 16)


def test_clear_errors():
    with pytest.raises(ValueError, match="fc, resnet18, vit"):
        build_model("mlp", input_shape=DIGITS, n_classes=10)
    for name in ("resnet18", "vit"):
        with pytest.raises(ValueError, match="image inputs"):
            build_model(name, input_shape=(1, 40), n_classes=10)
    with pytest.raises(ValueError, match="must divide"):
        VisionTransformer(28, 1, 10, patch_size=3)
    with pytest.raises(ValueError, match="ResNet18 needs images"):
        tiny("resnet18")(torch.zeros(2, 1, 40, dtype=torch.float64))
    with pytest.raises(ValueError, match="one perturbation per stage"):
        tiny("fc")(torch.zeros(2, *DIGITS, dtype=torch.float64), [None])
    with pytest.raises(ValueError, match="expected"):
        tiny("fc")(torch.zeros(2, *DIGITS, dtype=torch.float64), [None, None, torch.zeros(11, dtype=torch.float64)])


# ----------------------------------------------------------------------------------------------------------
# perturbation semantics


@pytest.mark.parametrize("key", ["fc", "resnet18", "vit"])
def test_perturbations(key):
    model = tiny(key).eval()  # eval: outputs do not depend on the batch's statistics
    x, _ = batch()
    shapes = model.activity_shapes(DIGITS)
    base = model(x)
    zeros = [torch.zeros(s, dtype=torch.float64) for s in shapes]
    assert torch.equal(model(x, zeros), base)
    assert torch.equal(model(x, [None] * len(shapes)), base)
    shift = torch.randn(10, dtype=torch.float64)
    assert torch.equal(model(x, [None] * (len(shapes) - 1) + [shift]), base + shift)
    per_sample = torch.randn(len(x), 10, dtype=torch.float64)
    assert torch.equal(model(x, [None] * (len(shapes) - 1) + [per_sample]), base + per_sample)
    # a perturbation of the first stage: reference by running the stages by hand
    u = torch.randn(shapes[0], dtype=torch.float64)
    h = model.stages[0](x) + u
    for stage in model.stages[1:]:
        h = stage(h)
    torch.testing.assert_close(model(x, [u] + [None] * (len(shapes) - 1)), h, rtol=0, atol=0)
    assert not torch.allclose(h, base)


# ----------------------------------------------------------------------------------------------------------
# forward mode against autograd (float64, train mode: BatchNorm uses batch statistics)


def _loss_fn(model, x, y):
    def loss(params):
        return F.cross_entropy(functional_call(model, params, (x,)), y)
    return loss


def _grad_dot(model, x, y, tangent):
    """Reference: autograd gradient of the loss · tangent, on an independent copy of the model."""
    ref = copy.deepcopy(model)
    loss = F.cross_entropy(ref(x), y)
    names = [n for n, _ in ref.named_parameters()]
    grads = torch.autograd.grad(loss, [p for _, p in ref.named_parameters()])
    return sum((g * tangent[n]).sum() for n, g in zip(names, grads))


@pytest.mark.parametrize("key", list(TINY))
def test_parameter_jvp_equals_gradient_dot_tangent(key):
    model = tiny(key).train()
    x, y = batch()
    params = {k: v.detach() for k, v in model.named_parameters()}
    tangent = random_like(params, seed=1)
    reference = _grad_dot(model, x, y, tangent)
    value, derivative = jvp(_loss_fn(model, x, y), (params,), (tangent,))
    torch.testing.assert_close(value, F.cross_entropy(copy.deepcopy(model)(x), y))
    torch.testing.assert_close(derivative, reference, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("key", ["resnet18", "vit"])
def test_vmapped_jvp_over_tangents(key):
    model = tiny(key).train()
    x, y = batch()
    params = {k: v.detach() for k, v in model.named_parameters()}
    tangents = [random_like(params, seed=s) for s in range(3)]
    stacked = {k: torch.stack([t[k] for t in tangents]) for k in params}
    loss = _loss_fn(model, x, y)
    d = vmap(lambda t: jvp(loss, (params,), (t,))[1])(stacked)
    expected = torch.stack([_grad_dot(model, x, y, t) for t in tangents])
    torch.testing.assert_close(d, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("key", ["fc", "resnet18", "vit"])
def test_activity_jvp_equals_gradient_dot_tangent(key):
    """JVP w.r.t. stage perturbations at 0 (module called directly, buffers captured) = ∂L/∂u · v."""
    model = tiny(key).train()
    x, y = batch()
    shapes = model.activity_shapes(DIGITS)
    g = torch.Generator().manual_seed(7)
    tangent = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    zeros = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    ref_model = copy.deepcopy(model)
    grads = torch.autograd.grad(F.cross_entropy(ref_model(x, zeros), y), zeros)
    reference = sum((gi * ti).sum() for gi, ti in zip(grads, tangent))
    _, derivative = jvp(lambda u: F.cross_entropy(model(x, list(u)), y),
                        (tuple(torch.zeros(s, dtype=torch.float64) for s in shapes),), (tuple(tangent),))
    torch.testing.assert_close(derivative, reference, rtol=1e-9, atol=1e-10)


def test_batchnorm_running_stats_update_under_jvp_like_plain_forward():
    model = tiny("resnet18").train()
    plain = copy.deepcopy(model)
    x, y = batch()
    params = {k: v.detach() for k, v in model.named_parameters()}
    jvp(_loss_fn(model, x, y), (params,), (random_like(params, seed=2),))
    with torch.no_grad():
        plain(x)
    after_jvp, after_plain = dict(model.named_buffers()), dict(plain.named_buffers())
    assert set(after_jvp) == set(after_plain) and any("running_mean" in k for k in after_jvp)
    for k in after_jvp:
        torch.testing.assert_close(after_jvp[k], after_plain[k], rtol=1e-12, atol=1e-14)
    assert not torch.equal(after_jvp["stages.0.body.1.running_mean"], torch.zeros(4, dtype=torch.float64))


# ----------------------------------------------------------------------------------------------------------
# construction


@pytest.mark.parametrize("key", ["fc", "resnet18", "vit"])
def test_build_model_seed_is_reproducible_and_leaves_global_rng(key):
    before = torch.get_rng_state()
    a, b, c = tiny(key, seed=3), tiny(key, seed=3), tiny(key, seed=4)
    assert torch.equal(torch.get_rng_state(), before)
    pa, pb, pc = (list(m.parameters()) for m in (a, b, c))
    assert all(torch.equal(p, q) for p, q in zip(pa, pb))
    assert not all(torch.equal(p, q) for p, q in zip(pa, pc))
    single = build_model(n_classes=10, seed=3, **TINY[key])  # float32: same init, cast
    assert single.stages[0].parameters().__next__().dtype == torch.float32
    assert all(torch.equal(p.double(), q) for p, q in zip(single.parameters(), pa))
