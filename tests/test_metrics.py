"""fg_analysis.metrics against independent references: numpy, scipy and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from fg_analysis import metrics


def test_cosine_norm_ratio_relative_error_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    ta, tb = torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)
    assert metrics.cosine(ta, tb) == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), rel=1e-6)
    assert metrics.norm_ratio(ta, tb) == pytest.approx(np.linalg.norm(a) / np.linalg.norm(b), rel=1e-6)
    assert metrics.relative_error(ta, tb) == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(b), rel=1e-6)


def test_tensors_are_batched_over_leading_dimensions():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 4, 7)), rng.normal(size=7)
    out = metrics.cosine(torch.tensor(a), torch.tensor(b))
    assert out.shape == (3, 4) and out.dtype == torch.float64
    reference = (a @ b) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b)
    np.testing.assert_allclose(out.numpy(), reference, rtol=1e-12)
    np.testing.assert_allclose(metrics.norm_ratio(torch.tensor(a), torch.tensor(b)).numpy(),
                               np.linalg.norm(a, axis=-1) / np.linalg.norm(b), rtol=1e-12)


def test_dicts_are_one_flat_vector():
    rng = np.random.default_rng(2)
    parts = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=3)}
    truth = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=3)}
    flat_a = np.concatenate([parts["w"].ravel(), parts["b"]])
    flat_b = np.concatenate([truth["w"].ravel(), truth["b"]])
    as_tensors = lambda d: {k: torch.tensor(v, dtype=torch.float32) for k, v in d.items()}  # noqa: E731
    got = metrics.cosine(as_tensors(parts), as_tensors(truth))
    assert isinstance(got, float)
    assert got == pytest.approx(flat_a @ flat_b / np.linalg.norm(flat_a) / np.linalg.norm(flat_b), rel=1e-6)
    assert metrics.relative_error(as_tensors(parts), as_tensors(truth)) == pytest.approx(
        np.linalg.norm(flat_a - flat_b) / np.linalg.norm(flat_b), rel=1e-6)
    with pytest.raises(ValueError, match="same keys"):
        metrics.cosine({"w": torch.ones(2)}, {"v": torch.ones(2)})


def test_float64_accumulation_keeps_tiny_float32_values():
    tiny = torch.full((1000,), 1e-30, dtype=torch.float32)  # squares underflow in float32
    assert metrics.cosine(tiny, tiny) == pytest.approx(1.0)
    assert math.isnan(metrics.cosine(torch.zeros(3), torch.ones(3)))


@pytest.mark.parametrize("count", [2, 3, 5, 30, 5000])
def test_ci_is_the_t_interval(count):
    assert metrics.ci_halfwidth(2.0, count) == pytest.approx(stats.t.ppf(0.975, count - 1) * 2.0 / math.sqrt(count))


def test_three_seeds_use_t2_not_z():
    assert metrics.t_quantile(3) == pytest.approx(4.302653, abs=1e-6)
    assert metrics.t_quantile(10 ** 6) == pytest.approx(1.959966, abs=1e-5)
    assert math.isnan(metrics.ci_halfwidth(1.0, 1))


def test_mean_ci_matches_scipy_interval():
    values = np.array([0.91, 0.95, 0.94, 0.97])
    mean, half = metrics.mean_ci(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean()) and half == pytest.approx((high - low) / 2)
    assert metrics.mean_ci([0.5])[0] == 0.5 and math.isnan(metrics.mean_ci([0.5])[1])


def test_summarize_matches_numpy_per_group():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"group": np.repeat(["a", "b"], 50), "y": rng.normal(size=100)})
    table = metrics.summarize(frame, "y", by="group").set_index("group")
    values = frame.loc[frame["group"] == "b", "y"].to_numpy()
    assert table.loc["b", "mean"] == pytest.approx(values.mean())
    assert table.loc["b", "std"] == pytest.approx(values.std(ddof=1))
    assert table.loc["b", "ci_high"] - table.loc["b", "mean"] == pytest.approx(
        stats.t.ppf(0.975, 49) * values.std(ddof=1) / np.sqrt(50))


def test_add_ci_keeps_the_rows_and_adds_bounds():
    out = metrics.add_ci(pd.DataFrame({"mean": [1.0], "std": [1.0], "count": [4]}))
    half = stats.t.ppf(0.975, 3) / 2
    assert out[["ci_low", "ci_high"]].iloc[0].tolist() == pytest.approx([1 - half, 1 + half])


@pytest.mark.parametrize(("mean", "ci", "text"), [(0.4937, 0.0031, "0.494 ± 0.003"), (-2506.63, 0.0, "-2506.6 ± 0.0"),
                                                  (3.2e-5, 1e-5, "3.2e-05 ± 1.0e-05"), (0.5, float("nan"), "0.500"),
                                                  (float("nan"), 0.1, "n/a"), (16.0, None, "16.000")])
def test_format_ci(mean, ci, text):
    assert metrics.format_ci(mean, ci) == text


@pytest.mark.parametrize(("args", "kwargs", "expected"), [
    ((0.95, 0.01, 0.80, 0.02), {}, "holds"),
    ((0.80, 0.01, 0.95, 0.02), {}, "does not hold"),
    ((0.80, 0.01, 0.95, 0.02), {"direction": "less"}, "holds"),
    ((0.939, 0.001, 0.938, 0.014), {}, "inconclusive"),            # a tie within overlapping intervals
    ((0.0, 0.0, 1.3e-175, 0.0), {"direction": "less", "resolution": 1e-12}, "inconclusive"),  # underflow
    ((0.9, float("nan"), 0.5, 0.0), {}, "inconclusive"),          # one seed: no interval
    ((1.87, 0.0, 2.0, 0.0), {"direction": "less"}, "holds"),      # against an exact target
])
def test_compare(args, kwargs, expected):
    assert metrics.compare(*args, **kwargs) == expected


def test_verdict_and_learned():
    assert metrics.verdict(True) == "holds" and metrics.verdict(np.bool_(False)) == "does not hold"
    assert metrics.verdict("inconclusive") == "inconclusive"
    with pytest.raises(ValueError, match="unknown verdict"):
        metrics.verdict("maybe")
    assert not metrics.learned(0.10, 0.01, 0.1) and metrics.learned(0.5, float("nan"), 0.1)


def test_relative_error_resolves_rounding_level_differences():
    """Formed from |ĝ|² − 2ĝ·g + |g|², the error of an estimate equal to rounding would read ~1e-8 in float64."""
    import torch

    from fg_analysis.metrics import relative_error

    g = torch.linspace(1, 2, 1000, dtype=torch.float64)
    close = g * (1 + 1e-13)
    assert relative_error(close, g) == pytest.approx(1e-13, rel=1e-3)
    assert relative_error({"a": close[:10], "b": close[10:]}, {"a": g[:10], "b": g[10:]}) == pytest.approx(1e-13, rel=1e-3)
    batched = relative_error(torch.stack([close, g]), g)
    assert float(batched[0]) == pytest.approx(1e-13, rel=1e-3) and float(batched[1]) == 0.0
