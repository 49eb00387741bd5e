"""Guided tangents (fg_analysis.nets.guides) against independent references: Fournier et al.'s one-guess formula,
torch.linalg.lstsq on the stacked tangents, autograd, and the closed forms of fg_analysis.theory by Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fg_analysis import theory
from fg_analysis.nets import guides
from fg_analysis.aggregate import projection
from fg_analysis.nets.gradients import activity_perturbation, backprop
from fg_analysis.metrics import ci_halfwidth, cosine
from fg_analysis.nets.models import build_model


def _linear(g):
    return lambda x: (g * x).sum()


def test_one_guess_is_fourniers_formula():
    generator = torch.Generator().manual_seed(0)
    g, u = torch.randn(20, generator=generator, dtype=torch.float64), torch.randn(20, generator=generator,
                                                                                 dtype=torch.float64)
    estimate = guides.guided_forward_gradient(_linear(g), torch.zeros(20, dtype=torch.float64),
                                              provider=guides.FromCallable(lambda c: u[None]), k=0)
    torch.testing.assert_close(estimate.gradient, (g @ u) * u / (u @ u))
    assert estimate.tangents.shape == (1, 20)


@pytest.mark.parametrize("k", [1, 5, 12])
def test_joint_projection_equals_lstsq_on_the_stacked_set(k):
    generator = torch.Generator().manual_seed(k)
    g = torch.randn(30, generator=generator, dtype=torch.float64)
    U = torch.randn(2, 30, generator=generator, dtype=torch.float64)
    estimate = guides.guided_forward_gradient(_linear(g), torch.zeros(30, dtype=torch.float64),
                                              provider=guides.FromCallable(lambda c: U), k=k, generator=generator)
    V = estimate.tangents
    assert V.shape == (2 + k, 30)
    assert torch.allclose(V[:2] / V[:2].norm(dim=-1, keepdim=True), U / U.norm(dim=-1, keepdim=True))
    reference = V.T @ torch.linalg.lstsq(V.T, g[:, None]).solution.squeeze(-1)  # closest point of span(V) to g
    torch.testing.assert_close(estimate.gradient, reference)


def test_a_guess_equal_to_the_gradient_gives_cosine_one():
    generator = torch.Generator().manual_seed(1)
    g = torch.randn(50, generator=generator, dtype=torch.float64)
    for k in (0, 3):
        estimate = guides.guided_forward_gradient(_linear(g), torch.zeros(50, dtype=torch.float64),
                                                  provider=guides.FromCallable(lambda c: g[None]), k=k,
                                                  generator=generator)
        assert cosine(estimate.gradient, g) == pytest.approx(1.0, abs=1e-12)
        torch.testing.assert_close(estimate.gradient, g)


def _network(dtype=torch.float64):
    net = build_model("fc", input_shape=(1, 8, 8), n_classes=10, width=16, seed=0).to(dtype)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(6, 1, 8, 8, generator=generator, dtype=dtype)
    y = torch.randint(0, 10, (6,), generator=generator)
    return net, x, y


def test_true_activity_gradient_as_guess_recovers_backprop():
    net, x, y = _network()
    _, seen = guides.guided_activity_perturbation(net, x, y, k=2, mode="oracle", details=True,
                                                  generator=torch.Generator().manual_seed(0))
    truth = seen.truth
    provider = guides.FromCallable(lambda context: truth[:, None, :])
    gradient, seen = guides.guided_activity_perturbation(net, x, y, provider=provider, k=0, mode="oracle",
                                                         details=True)
    assert cosine(seen.estimate, truth).min() == pytest.approx(1.0, abs=1e-12)
    reference = backprop(net, x, y).grads
    for name in reference:
        torch.testing.assert_close(gradient.grads[name], reference[name])


def test_a_zero_guess_is_left_out_of_the_span_and_scale_does_not_matter():
    """A guess that is zero for one sample (a head so confident that softmax − onehot underflows) leaves that
    sample's projection onto the other tangents, as lstsq on them gives; a tiny guess gives the unit guess's
    estimate (the projection depends only on the span)."""
    net, x, y = _network()
    _, seen = guides.guided_activity_perturbation(net, x, y, k=2, mode="oracle", details=True)
    truth = seen.truth
    rows = torch.randn(6, 2, truth.shape[1], generator=torch.Generator().manual_seed(4), dtype=truth.dtype)
    rows[3, 0] = 0.0  # sample 3 has a zero first guess
    for scale in (1.0, 1e-30):
        provider = guides.FromCallable(lambda context: scale * rows)
        _, seen = guides.guided_activity_perturbation(net, x, y, provider=provider, k=3, mode="oracle", details=True,
                                                      generator=torch.Generator().manual_seed(9))
        for b in range(6):
            V = seen.tangents[b]
            V = V[1:] if b == 3 else V  # the zero row adds nothing to the span
            assert torch.linalg.matrix_rank(V) == V.shape[0]
            reference = V.T @ torch.linalg.lstsq(V.T, truth[b, :, None]).solution.squeeze(-1)
            torch.testing.assert_close(seen.estimate[b], reference)
        if scale == 1.0:
            unit = seen.estimate
        else:
            torch.testing.assert_close(seen.estimate, unit)


def test_projection_without_nothing_absent_is_the_projection():
    generator = torch.Generator().manual_seed(7)
    V = torch.randn(4, 5, 30, generator=generator, dtype=torch.float64)
    d = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(guides.projection_without(V, d, torch.zeros(4, 2, dtype=torch.bool)),
                               projection(V, d))


def test_forward_mode_equals_oracle_with_per_sample_guesses():
    net, x, y = _network()
    heads = guides.AuxiliaryHeads.for_network(net, (1, 8, 8), 10).double()
    results = [guides.guided_activity_perturbation(net, x, y, provider=guides.LocalLosses(heads), k=4, mode=mode,
                                                   generator=torch.Generator().manual_seed(5))
               for mode in ("forward", "oracle")]
    for name in results[0].grads:
        torch.testing.assert_close(results[0].grads[name], results[1].grads[name], rtol=1e-10, atol=1e-12)


def test_no_guess_is_the_papers_projection():
    net, x, y = _network()
    V = torch.randn(5, 16 + 16 + 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ours = guides.guided_activity_perturbation(net, x, y, random=V, mode="oracle")
    theirs = activity_perturbation(net, x, y, tangents=V, aggregator="projection", mode="oracle")
    for name in theirs.grads:
        torch.testing.assert_close(ours.grads[name], theirs.grads[name])


def test_local_losses_are_block_sparse_local_gradients():
    net, x, y = _network()
    heads = guides.AuxiliaryHeads.for_network(net, (1, 8, 8), 10).double()
    provider = guides.LocalLosses(heads)
    with torch.no_grad():
        h, activities = x, []
        for stage in net.stages:
            h = stage(h)
            activities.append(h)
    U = provider(guides.Context(x=x, y=y, activities=tuple(activities)))
    assert U.shape == (6, 3, 42) and provider.count(3) == 3
    assert (U[:, 0, 16:] == 0).all() and (U[:, 1, :16] == 0).all() and (U[:, 2, :32] == 0).all()
    softmax = activities[-1].softmax(-1) - F.one_hot(y, 10)
    torch.testing.assert_close(U[:, 2, 32:], softmax)
    a = activities[0].clone().requires_grad_(True)
    loss = F.cross_entropy(heads.heads[0](a), y, reduction="sum")
    torch.testing.assert_close(U[:, 0, :16], torch.autograd.grad(loss, a)[0])
    mean_loss = F.cross_entropy(heads.heads[1](activities[1]), y)
    expected = torch.autograd.grad(mean_loss, heads.heads[1].weight)[0]
    torch.testing.assert_close(heads.heads[1].weight.grad, expected)
    only_output = guides.LocalLosses(heads, use_heads=False)
    assert only_output(guides.Context(x=x, y=y, activities=tuple(activities))).shape == (6, 1, 42)


def test_guided_law_shapes_sharing_and_errors():
    U = torch.randn(4, 2, 10)
    V = guides.Guided(guesses=U).sample(5, 10, generator=torch.Generator().manual_seed(0))
    assert V.shape == (4, 5, 10)
    assert torch.equal(V[0, 2:], V[3, 2:])                       # random rows shared by the batch
    V = guides.Guided(guesses=U, shared=False).sample(5, 10, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(V[0, 2:], V[3, 2:])
    out = torch.empty(3, 10)
    filled = guides.Guided(guesses=U[0]).sample(3, 10, out=out, generator=torch.Generator().manual_seed(0))
    assert filled.data_ptr() == out.data_ptr()
    with pytest.raises(ValueError, match="k counts the guesses"):
        guides.Guided(guesses=U).sample(1, 10)
    with pytest.raises(ValueError, match="by keyword"):
        guides.Guided(U)
    with pytest.raises(ValueError, match="n=7"):
        guides.Guided(guesses=U).sample(3, 7)


def test_previous_estimate_guides_the_next_step():
    g = torch.tensor([3.0, -1.0, 2.0, 0.5], dtype=torch.float64)
    provider = guides.PreviousEstimate()
    first = guides.guided_forward_gradient(_linear(g), torch.zeros(4, dtype=torch.float64), provider=provider, k=1,
                                           generator=torch.Generator().manual_seed(0))
    assert first.tangents.shape == (1, 4)                        # no guess yet: one random tangent
    second = guides.guided_forward_gradient(_linear(g), torch.zeros(4, dtype=torch.float64), provider=provider,
                                            k=1, generator=torch.Generator().manual_seed(1))
    assert second.tangents.shape == (2, 4)
    assert cosine(second.gradient, g) >= cosine(first.gradient, g) - 1e-12   # the span only grows


def _monte_carlo(n, theta, k, samples, seed=0):
    generator = torch.Generator().manual_seed(seed)
    g = torch.zeros(n, dtype=torch.float64)
    g[0] = 1.0
    u = torch.zeros(n, dtype=torch.float64)
    u[0], u[1] = math.cos(math.radians(theta)), math.sin(math.radians(theta))
    R = torch.randn(samples, k, n, generator=generator, dtype=torch.float64)
    V = torch.cat([u.expand(samples, 1, n), R], dim=1)
    estimate = projection(V, V @ g)
    cos = (estimate @ g) / estimate.norm(dim=-1)
    return estimate, cos


@pytest.mark.parametrize("n, theta, k", [(32, 60.0, 4), (64, 80.0, 16), (16, 30.0, 1)])
def test_closed_form_cos2_matches_monte_carlo(n, theta, k):
    _, cos = _monte_carlo(n, theta, k, 4000)
    cos2 = (cos ** 2).numpy()
    half = float(ci_halfwidth(cos2.std(ddof=1), len(cos2), level=0.999))
    expected = float(theory.guided_expected_cos2(k, n, abs(math.cos(math.radians(theta)))))
    assert abs(cos2.mean() - expected) < half
    assert expected == pytest.approx(math.cos(math.radians(theta)) ** 2
                                     + k / (n - 1) * math.sin(math.radians(theta)) ** 2)
    expected_cos = float(theory.guided_expected_cosine(k, n, abs(math.cos(math.radians(theta)))))
    assert abs(cos.mean().item() - expected_cos) < float(ci_halfwidth(cos.std().item(), len(cos), level=0.999))


def test_the_mean_estimate_is_biased_towards_the_guess():
    estimate, _ = _monte_carlo(24, 70.0, 4, 20000, seed=1)
    g = torch.zeros(24, dtype=torch.float64)
    g[0] = 1.0
    mean = estimate.mean(0)
    expected = float(theory.guided_mean_cosine(4, 24, math.cos(math.radians(70.0))))
    assert cosine(mean, g) == pytest.approx(expected, abs=0.01)
    assert expected < 0.9                                        # clearly biased
    assert float(theory.guided_mean_cosine(4, 24, 0.3, m=0)) == pytest.approx(1.0)   # random alone: no bias


def test_theory_special_cases_and_errors():
    assert float(theory.guided_expected_cos2(16, 64, 0.0, m=0)) == pytest.approx(16 / 64)
    assert float(theory.guided_expected_cos2(63, 64, 0.2)) == pytest.approx(1.0)
    assert float(theory.guided_expected_cosine(0, 64, 0.4)) == pytest.approx(0.4)
    assert float(theory.guided_expected_cosine(16, 64, 0.0, m=0)) == pytest.approx(
        float(theory.expected_cosine("projection", 16, 64)), rel=1e-8)
    params = theory.guided_cos2_parameters(4, 33, 1)
    assert tuple(float(p) for p in params) == (2.0, 14.0)
    with pytest.raises(ValueError, match="rho"):
        theory.guided_expected_cos2(1, 10, 1.5)
    with pytest.raises(ValueError, match="exceed"):
        theory.guided_expected_cos2(1, 3, 0.5, m=3)
    with pytest.raises(ValueError, match="k must be"):
        theory.guided_expected_cos2(-1, 10, 0.5)


def test_forward_flops_count_multiply_adds():
    assert guides.forward_flops(torch.nn.Linear(5, 3), torch.zeros(1, 5)) == {"": 30}
    conv = torch.nn.Conv2d(2, 4, 3, padding=1)
    assert guides.forward_flops(conv, torch.zeros(1, 2, 6, 6)) == {"": 2 * 4 * 36 * 2 * 9}


def test_heads_fit_every_stage_shape():
    net = build_model("fc", input_shape=(1, 8, 8), n_classes=10, width=16, seed=0)
    heads = guides.AuxiliaryHeads.for_network(net, (1, 8, 8), 10)
    assert len(heads) == 2
    conv_head = guides._head((8, 7, 7), 10)
    assert conv_head(torch.zeros(3, 8, 7, 7)).shape == (3, 10)
    token_head = guides._head((5, 12), 10)
    assert token_head(torch.zeros(3, 5, 12)).shape == (3, 10)
    with pytest.raises(ValueError, match="no auxiliary head"):
        guides._head((1, 2, 3, 4), 10)


def test_guided_source_steps_its_heads():
    net, x, y = _network(torch.float32)
    heads = guides.AuxiliaryHeads.for_network(net, (1, 8, 8), 10)
    before = heads.heads[0].weight.detach().clone()
    source = guides.GuidedSource(heads, k=2, head_lr=0.1)
    gradient = source(net, x, y, generator=torch.Generator().manual_seed(0))
    assert set(gradient.grads) == {name for name, _ in net.named_parameters()}
    assert not torch.equal(before, heads.heads[0].weight)
    assert source.label == "guess + 2 random" and source.seconds["heads"] > 0
    assert np.isfinite(source.local_losses[-1]).all()
