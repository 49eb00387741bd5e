"""RQ1: how well do multi-tangent forward gradients approximate the true gradient?

The paper's approximation experiment (Flügel et al., arXiv 2410.17764, Sec. IV-A,
"Approximation quality"): the true gradient is all-ones, ``g = 1 ∈ R^n`` (``|g| = sqrt(n)``); the directional
derivatives are exact, ``d = V g`` (the "oracle" JVP); for each dimension ``n`` and number of tangents ``k`` a
batch of independent tangent sets ``V`` (shape ``(samples, k, n)``) is drawn from the normal law and aggregated
by the projection (``k <= n``), the mean and the sum, the latter two with raw and with unit-normalized tangents.
Per sample it measures

* ``cosine``     ``cos(ĝ, g) = ĝ·g / (|ĝ| |g|)``
* ``norm_ratio`` ``|ĝ| / |g|``
* ``error``      ``|g − ĝ|``
* ``dot``        ``ĝ·g``

and stores their mean, sample std and count per (n, k, aggregator, normalize), from which the book draws
``mean ± t_{0.975, count-1} std / sqrt(count)``
(:func:`fg_analysis.metrics.add_ci`). A cell with both the projection and the raw mean also stores their paired
difference on each draw, ``cosine_gain = cos(P_U g, g) − cos(mean, g)`` (:data:`PAIRED_METRIC`, with its minimum
over the draws): the mean lies in ``U = span(V)`` and ``P_U g`` is the vector of ``U`` closest in angle to ``g``,
so the gain is ``≥ 0`` on every draw (up to rounding), and "the projection beats the mean" is a paired test of its mean
against 0,
not a comparison of two intervals (:func:`scorecard`). :class:`PairedCosineCell` measures only that pair, on the
tangents of the grid cell it pairs with, for grids stored before the gain was recorded. The fixed-angle ("custom
tangents") experiment repeats this at ``n = 64`` with :class:`~fg_analysis.tangents.FixedAngle` tangents for the
mean and the projection.

The law comparison (:class:`LawComparisonConfig`, beyond the paper) asks what Rademacher tangents, the fast law
(:class:`~fg_analysis.tangents.Rademacher`), cost in cosine: they are not rotation invariant, so it measures the
mean and the projection with normal and with Rademacher tangents against three true gradients (:data:`GRADIENTS`:
the paper's all-ones, a generic direction and a coordinate axis), through the same code as the grid, and sets them
against the Gaussian closed form (:func:`law_table`).

Samples are batched through the aggregators (no Python loop over samples) in chunks of at most
:data:`MAX_CHUNK_FLOATS` tangent entries, so memory stays bounded at ``n = 2^16, k = 2^10``. Each (n, k) cell is
one unit of :meth:`fg_analysis.runs.cache.ResultsCache.sweep`: all approaches of a cell share one tangent draw
(raw and normalized are the same directions), from a generator seeded by the config's seed mixed with the
cell (:func:`cell_seed`), so cells are independent of each other.

>>> config = ApproximationConfig(dims=(8,), tangent_counts=(2,), samples=50, angles=())
>>> frame = run(config, cache=ResultsCache(__import__("tempfile").mkdtemp()), progress=False)
>>> sorted(frame["aggregator"].unique())
['mean', 'projection', 'sum']
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd
import torch

from fg_analysis import metrics, theory
from fg_analysis.estimator import ForwardGradient
from fg_analysis.experiments import SCORECARD_COLUMNS, agrees, claim, combine, record_text, tally
from fg_analysis.jvp import oracle_jvps
from fg_analysis.metrics import FAILS, HOLDS, INCONCLUSIVE, add_ci, compare, format_ci, t_quantile
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.runs.cli import experiment_parser, resolve_common, run_sweep
from fg_analysis.runs.env import resolve_device
from fg_analysis.runs.sweep import sweep
from fg_analysis.tangents import FixedAngle, Normal, Rademacher

METRICS = ("cosine", "norm_ratio", "error", "dot")

#: the per-draw paired difference ``cos(P_U g, g) − cos(mean, g)`` (raw tangents): a row of its own (aggregator
#: ``"projection"``) with ``mean, std, count`` and ``min`` (its smallest value over the draws)
PAIRED_METRIC = "cosine_gain"

#: (aggregator, normalize) pairs of the paper's normal-tangent experiment; the projection does not depend on the
#: tangents' lengths (only on their span), so only its raw variant is run
APPROACHES = (("projection", False), ("mean", False), ("mean", True), ("sum", False), ("sum", True))

#: the two approaches the paired test compares (:data:`PAIRED_METRIC`, :class:`PairedCosineCell`)
PAIRED_APPROACHES = (("projection", False), ("mean", False))

#: at most this many tangent entries (samples · k · n) are held at once; the projection works in float64 on a copy
MAX_CHUNK_FLOATS = 2 ** 24

#: the paper's reference values of E[cos] (its Sec. III): (aggregator, n, k) -> value
PAPER_REFERENCE = {("projection", 64, 16): 0.494, ("mean", 64, 16): 0.444, ("projection", 1024, 16): 0.123,
                   ("mean", 1024, 16): 0.122, ("mean", 1024, 1): 0.025, ("projection", 16, 16): 1.0,
                   ("mean", 16, 16): 0.713}

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class ApproximationCell:
    """One unit of the sweep: ``samples`` tangent sets of ``k`` tangents in ``R^n``, every approach on them.

    ``law`` is ``"normal"`` or ``"fixed-angle"`` (then ``theta`` in degrees). Approaches the cell cannot run
    (the projection with ``k > n``) are skipped.
    """

    n: int
    k: int
    samples: int
    seed: int = 0
    approaches: tuple[tuple[str, bool], ...] = APPROACHES
    law: str = "normal"
    theta: float | None = None
    dtype: str = "float32"


@dataclass(frozen=True)
class PairedCosineCell:
    """One unit of the paired test on the normal grid: the projection against the raw mean at one (n, k).

    It measures :meth:`cell`, the :class:`ApproximationCell` of the same ``n, k, samples, seed, dtype`` with only
    :data:`PAIRED_APPROACHES`; tangents depend only on (seed, n, k, law) and the chunking on (k, n)
    (:func:`cell_seed`, :func:`chunk_size`), so it draws the very tangents of that grid cell: its projection and
    mean rows equal the grid cell's, and its :data:`PAIRED_METRIC` row is the paired difference on those draws.
    """

    n: int
    k: int
    samples: int
    seed: int = 0
    dtype: str = "float32"

    def cell(self) -> ApproximationCell:
        """The grid cell whose tangents this unit shares, restricted to the projection and the raw mean."""
        return ApproximationCell(n=self.n, k=self.k, samples=self.samples, seed=self.seed,
                                 approaches=PAIRED_APPROACHES, dtype=self.dtype)


@dataclass(frozen=True)
class ApproximationConfig:
    """The RQ1 sweep: the normal-tangent grid ``dims × tangent_counts`` plus the fixed-angle grid.

    ``samples`` tangent sets per cell, ``large_samples`` for ``n >= large_from`` (the paper: 1000, and 100 for
    n = 2^15, 2^16). The fixed-angle grid is ``angle_dim × angle_tangent_counts × angles`` for
    ``angle_aggregators`` (empty ``angles`` turns it off).
    """

    dims: tuple[int, ...]
    tangent_counts: tuple[int, ...]
    samples: int = 1000
    large_samples: int = 100
    large_from: int = 2 ** 15
    seed: int = 0
    approaches: tuple[tuple[str, bool], ...] = APPROACHES
    angle_dim: int = 64
    angle_tangent_counts: tuple[int, ...] = (4, 16, 64)
    angles: tuple[float, ...] = (15.0, 30.0, 45.0, 60.0, 75.0, 90.0)
    angle_aggregators: tuple[str, ...] = ("mean", "projection")
    angle_samples: int = 1000
    dtype: str = "float32"

    @classmethod
    def preset(cls, name: str, *, seed: int = 0) -> "ApproximationConfig":
        """``"paper"``: n = 2^0..2^16, k = 2^0..2^10, as in the paper. ``"quick"``: n ∈ {4, 16, 64, 256, 1024},
        k = 2^0..2^6 with 1000 samples (200 for n = 1024), all six angles; about 15 s on 2 idle CPU cores."""
        if name == "paper":
            return cls(dims=tuple(2 ** i for i in range(17)), tangent_counts=tuple(2 ** i for i in range(11)),
                       seed=seed)
        if name == "quick":
            return cls(dims=(4, 16, 64, 256, 1024), tangent_counts=tuple(2 ** i for i in range(7)), samples=1000,
                       large_samples=200, large_from=1024, seed=seed)
        raise ValueError(f"unknown preset {name!r}; choose 'quick' or 'paper'")

    def samples_at(self, n: int) -> int:
        """Tangent sets per cell of dimension ``n``."""
        return self.samples if n < self.large_from else self.large_samples

    def cells(self) -> list[ApproximationCell]:
        """Every unit of the sweep (normal grid first, then fixed angles)."""
        units = [ApproximationCell(n=n, k=k, samples=self.samples_at(n), seed=self.seed,
                                   approaches=_runnable(self.approaches, k, n), dtype=self.dtype)
                 for n in self.dims for k in self.tangent_counts]
        angle_approaches = tuple((aggregator, False) for aggregator in self.angle_aggregators)
        units += [ApproximationCell(n=self.angle_dim, k=k, samples=self.angle_samples, seed=self.seed,
                                    approaches=_runnable(angle_approaches, k, self.angle_dim), law="fixed-angle",
                                    theta=float(theta), dtype=self.dtype)
                  for k in self.angle_tangent_counts for theta in self.angles]
        return [unit for unit in units if unit.approaches]

    def paired_cells(self) -> list[PairedCosineCell]:
        """The units of the paired test on the normal grid, :class:`PairedCosineCell`: every (n, k) with
        1 < k ≤ n (at k = 1 the projection and the mean are parallel, so their cosines are equal on every draw:
        no evidence either way), with the samples of the grid cell they pair with."""
        return [PairedCosineCell(n=n, k=k, samples=self.samples_at(n), seed=self.seed, dtype=self.dtype)
                for n in self.dims for k in self.tangent_counts if 1 < k <= n]


#: the true gradients of the law comparison (:func:`true_gradient`): the paper's all-ones, a generic direction and
#: a coordinate axis
GRADIENTS = ("ones", "generic", "axis")

#: the law comparison's laws (:mod:`fg_analysis.tangents`)
LAWS = {"normal": Normal(), "rademacher": Rademacher()}

#: the projection is measured in a law-comparison cell only where the chance that any of its Rademacher draws is
#: linearly dependent (which :func:`fg_analysis.aggregate.projection` refuses) is at most this, by the bound of
#: :func:`fg_analysis.theory.rademacher_dependence_bound`
DEPENDENT_DRAWS = 1e-6


@dataclass(frozen=True)
class LawCell:
    """One unit of the law comparison: ``samples`` sets of ``k`` tangents in ``R^n`` from ``law`` (a key of
    :data:`LAWS`), each aggregator (raw tangents) against each of ``gradients`` (:func:`true_gradient`) on the
    same draws. Normal tangents are the grid's: the :class:`ApproximationCell` of the same ``n, k, samples, seed,
    dtype`` draws the same ones (:func:`measure_laws`)."""

    n: int
    k: int
    samples: int
    law: str
    seed: int = 0
    aggregators: tuple[str, ...] = ("mean", "projection")
    gradients: tuple[str, ...] = GRADIENTS
    dtype: str = "float32"


@dataclass(frozen=True)
class LawComparisonConfig:
    """The law comparison: every law of ``laws`` at every (n, k) of ``dims × tangent_counts``, ``samples`` tangent
    sets per cell (``large_samples`` for ``n >= large_from``, as the quick grid, so that its normal cells draw the
    grid's tangents). The mean everywhere; the projection where ``k <= n`` and ``samples · (2^k − 2)/2^n <=``
    :data:`DEPENDENT_DRAWS` (no Rademacher draw dependent, but for a chance of at most that), for both laws.
    About 3 s on one core."""

    dims: tuple[int, ...] = (16, 64, 256, 1024)
    tangent_counts: tuple[int, ...] = (1, 2, 4, 16, 64)
    laws: tuple[str, ...] = tuple(LAWS)
    samples: int = 1000
    large_samples: int = 200
    large_from: int = 1024
    seed: int = 0
    dtype: str = "float32"

    def cells(self) -> list[LawCell]:
        """Every unit, law by law within each (n, k)."""
        cells = []
        for n in self.dims:
            samples = self.samples if n < self.large_from else self.large_samples
            for k in self.tangent_counts:
                dependent = samples * float(theory.rademacher_dependence_bound(k, n)) if k <= n else np.inf
                aggregators = ("mean", "projection") if dependent <= DEPENDENT_DRAWS else ("mean",)
                cells += [LawCell(n=n, k=k, samples=samples, law=law, seed=self.seed, aggregators=aggregators,
                                  dtype=self.dtype) for law in self.laws]
        return cells


def _runnable(approaches, k: int, n: int) -> tuple[tuple[str, bool], ...]:
    return tuple((a, bool(z)) for a, z in approaches if not (a == "projection" and k > n))


def sample_metrics(V: torch.Tensor, g: torch.Tensor, aggregator: str) -> dict[str, torch.Tensor]:
    """Per-sample metrics of the forward gradient ``ĝ = aggregator(V, V g)`` for a batch of tangent sets.

    ``V`` has shape ``(samples, k, n)``, ``g`` shape ``(n,)``; the JVPs are the exact ``d = V g`` (the estimator's
    oracle mode), aggregated by :class:`~fg_analysis.estimator.ForwardGradient`. Returns float64 tensors of shape
    ``(samples,)``: ``cosine = ĝ·g/(|ĝ||g|)``, ``norm_ratio = |ĝ|/|g|`` (:mod:`fg_analysis.metrics`),
    ``error = |g − ĝ|`` and ``dot = ĝ·g``. An estimate ``ĝ = 0`` (every JVP 0: with Rademacher tangents and
    ``g`` all-ones a draw with ``v·g = 0`` has probability about ``sqrt(2/(π n))`` per tangent; never with normal
    ones) points nowhere, and a step along it moves nowhere: its cosine counts as 0.
    """
    estimator = ForwardGradient(V.shape[-2], aggregator=aggregator, mode="oracle")
    estimate = estimator.combine(V, oracle_jvps(g.to(V.dtype), V)).to(torch.float64)
    g64 = g.to(torch.float64)
    cosine = torch.where(estimate.any(dim=-1), metrics.cosine(estimate, g64), 0.0)
    return {"cosine": cosine, "norm_ratio": metrics.norm_ratio(estimate, g64),
            "error": torch.linalg.vector_norm(estimate - g64, dim=-1), "dot": estimate @ g64}


def chunk_size(k: int, n: int, max_floats: int = MAX_CHUNK_FLOATS) -> int:
    """How many tangent sets of shape ``(k, n)`` one chunk holds (at least 1)."""
    return max(1, max_floats // (k * n))


def cell_seed(cell: ApproximationCell) -> int:
    """The generator seed of a cell: ``cell.seed`` mixed with (n, k, law, theta) by SHA-256, so that different
    cells draw independent tangents (with one shared seed, cells of equal n would reuse the same numbers)."""
    return _seed(cell.seed, cell.n, cell.k, cell.law, cell.theta)


def _seed(*parts) -> int:
    """A 63-bit generator seed from SHA-256 of the parts joined by ``|``."""
    text = "|".join(map(str, parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & (2 ** 63 - 1)


def measure_cell(cell: ApproximationCell, *, device: str | torch.device = "cpu") -> pd.DataFrame:
    """Run one cell: one row per (aggregator, normalize, metric) with ``mean``, ``std`` (ddof 1), ``count``; with
    both :data:`PAIRED_APPROACHES`, one more row (the projection's, metric :data:`PAIRED_METRIC`) of the per-draw
    ``cos(P_U g, g) − cos(mean, g)`` with its ``min`` as well.

    Tangents come from one generator seeded with :func:`cell_seed` on ``device``, drawn chunk by chunk (chunk size
    depends only on k and n, so a cell's numbers depend only on the cell and the device's RNG).
    """
    device = resolve_device(device)
    if cell.law not in ("normal", "fixed-angle"):
        raise ValueError(f"unknown law {cell.law!r}; the approximation experiment uses 'normal' or 'fixed-angle'")
    law = FixedAngle(theta=cell.theta) if cell.law == "fixed-angle" else Normal()
    ones = {"ones": torch.ones(cell.n, dtype=_DTYPES[cell.dtype], device=device)}
    collected = _draw_and_measure(law, cell.n, cell.k, cell.samples, cell_seed(cell), cell.approaches, ones,
                                  dtype=_DTYPES[cell.dtype], device=device)
    rows = [_row(aggregator, normalize, metric, values)
            for (_, aggregator, normalize), by_metric in collected.items() for metric, values in by_metric.items()]
    if all(("ones", *approach) in collected for approach in PAIRED_APPROACHES):
        projection, mean = (collected[("ones", *approach)]["cosine"] for approach in PAIRED_APPROACHES)
        gain = projection - mean
        rows.append({**_row("projection", False, PAIRED_METRIC, gain), "min": float(gain.min())})
    frame = pd.DataFrame(rows)
    frame["device"] = device.type
    return frame


def _draw_and_measure(law, n: int, k: int, samples: int, seed: int, approaches, gradients: dict, *, dtype,
                      device) -> dict[tuple[str, str, bool], dict[str, np.ndarray]]:
    """The per-draw :data:`METRICS` of every approach against every true gradient of ``gradients`` (name ->
    tensor), all on the same ``samples`` tangent sets of ``law``, drawn chunk by chunk (:func:`chunk_size`) from
    one generator seeded with ``seed`` on ``device``; keyed by (gradient, aggregator, normalize)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    collected = {(name, *approach): {metric: [] for metric in METRICS} for name in gradients
                 for approach in approaches}
    step = chunk_size(k, n)
    for start in range(0, samples, step):
        count = min(step, samples - start)
        V = law.sample(k, n, batch_shape=(count,), generator=generator, dtype=dtype, device=device)
        normalized = None
        for aggregator, normalize in approaches:
            if normalize and normalized is None:
                normalized = V / torch.linalg.vector_norm(V, dim=-1, keepdim=True)
            for name, g in gradients.items():
                values = sample_metrics(normalized if normalize else V, g, aggregator)
                for metric in METRICS:
                    collected[(name, aggregator, normalize)][metric].append(values[metric].cpu())
    return {key: {metric: torch.cat(parts).numpy() for metric, parts in by_metric.items()}
            for key, by_metric in collected.items()}


def true_gradient(name: str, n: int, *, seed: int = 0, dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """A true gradient of the law comparison (:data:`GRADIENTS`): ``"ones"`` (the paper's ``g = 1``), ``"axis"``
    (``e_1``) or ``"generic"``, one standard normal vector per (seed, n), drawn in float64 on the CPU from its
    own generator (the same on every device, for every k and law)."""
    if name == "ones":
        return torch.ones(n, dtype=dtype, device=device)
    if name == "axis":
        return torch.eye(1, n, dtype=dtype, device=device)[0]
    if name == "generic":
        generator = torch.Generator().manual_seed(_seed(seed, n, "generic"))
        return torch.randn(n, generator=generator, dtype=torch.float64).to(dtype=dtype, device=device)
    raise ValueError(f"unknown true gradient {name!r}; choose one of {GRADIENTS}")


def measure_laws(cell: LawCell, *, device: str | torch.device = "cpu") -> pd.DataFrame:
    """Run one unit of the law comparison: one row per (gradient, aggregator, metric) with ``mean``, ``std``,
    ``count``, by the code of :func:`measure_cell` (the same draws, chunks and metrics; only the law and the
    true gradients differ). Normal tangents are seeded as the grid's cell of the same (seed, n, k)."""
    device = resolve_device(device)
    if cell.law not in LAWS:
        raise ValueError(f"unknown law {cell.law!r}; the law comparison uses {tuple(LAWS)}")
    dtype = _DTYPES[cell.dtype]
    gradients = {name: true_gradient(name, cell.n, seed=cell.seed, dtype=dtype, device=device)
                 for name in cell.gradients}
    approaches = _runnable(((aggregator, False) for aggregator in cell.aggregators), cell.k, cell.n)
    collected = _draw_and_measure(LAWS[cell.law], cell.n, cell.k, cell.samples,
                                  _seed(cell.seed, cell.n, cell.k, cell.law, None), approaches, gradients,
                                  dtype=dtype, device=device)
    frame = pd.DataFrame([{"gradient": name, **_row(aggregator, normalize, metric, values)}
                          for (name, aggregator, normalize), by_metric in collected.items()
                          for metric, values in by_metric.items()])
    frame["device"] = device.type
    return frame


def _row(aggregator: str, normalize: bool, metric: str, values: np.ndarray) -> dict:
    return {"aggregator": aggregator, "normalize": normalize, "metric": metric, "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0, "count": len(values)}


def measure_paired(cell: PairedCosineCell, *, device: str | torch.device = "cpu") -> pd.DataFrame:
    """Run one paired unit: :func:`measure_cell` of :meth:`PairedCosineCell.cell` (the projection's and the
    mean's rows, and the :data:`PAIRED_METRIC` row of their per-draw difference)."""
    return measure_cell(cell.cell(), device=device)


def run(config: ApproximationConfig, *, device: str = "cpu", cache: ResultsCache | None = None,
        progress: bool = True, executor=None) -> pd.DataFrame:
    """Every cell of ``config`` through the cache (each cell cached on its own, on ``executor`` when given, see
    :mod:`fg_analysis.runs.sweep`), and the :class:`PairedCosineCell` units of the cells whose stored result has no
    :data:`PAIRED_METRIC` row (stored before it was measured), for their gain rows; one row per (n, k, law,
    theta, aggregator, normalize, metric) with ``mean, std, count, ci, ci_low, ci_high, device``."""
    cache = cache or ResultsCache()
    frame = _finished(sweep(cache, config.cells(), partial(measure_cell, device=str(device)), device=device,
                                  description="RQ1 approximation", progress=progress, executor=executor))
    gains = frame[(frame["metric"] == PAIRED_METRIC) & (frame["law"] == "normal")]
    have = set(gains[["n", "k"]].itertuples(index=False, name=None))
    missing = [unit for unit in config.paired_cells() if (unit.n, unit.k) not in have]
    if not missing:
        return frame
    return _with_gains(frame, _sweep_paired(missing, device=device, cache=cache, progress=progress,
                                            executor=executor))


def run_paired(config: ApproximationConfig, *, device: str = "cpu", cache: ResultsCache | None = None,
               progress: bool = True, executor=None) -> pd.DataFrame:
    """Every unit of ``config.paired_cells()`` through the cache, as :func:`run` (``python -m fg_analysis rq1
    --part paired``): rows like :func:`run`'s for the projection, the mean and :data:`PAIRED_METRIC`."""
    return _sweep_paired(config.paired_cells(), device=device, cache=cache or ResultsCache(), progress=progress,
                         executor=executor)


def run_laws(config: LawComparisonConfig, *, device: str = "cpu", cache: ResultsCache | None = None,
             progress: bool = True, executor=None) -> pd.DataFrame:
    """Every unit of the law comparison through the cache, as :func:`run` (``python -m fg_analysis rq1 --part
    laws``): one row per (n, k, law, gradient, aggregator, metric) with ``mean, std, count`` and the 95% ``ci``."""
    frame = sweep(cache or ResultsCache(), config.cells(), partial(measure_laws, device=str(device)), device=device,
                  description="RQ1 laws", progress=progress, executor=executor)
    return add_ci(frame.assign(normalize=False))


def law_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The cosines of :func:`run_laws` against the Gaussian closed form: per (gradient, aggregator, law, n, k) the
    measured ``mean, ci, count``, ``gaussian`` (:func:`fg_analysis.theory.expected_cosine`), ``ratio`` and
    ``ratio_ci`` (the measurement over it), ``exact`` (the Rademacher closed form where one exists: k = 1 against
    all-ones and an axis, :func:`fg_analysis.theory.rademacher_single_cosine`; else NaN) and ``verdict``, whether
    the measured interval lies above the closed form (:func:`fg_analysis.metrics.compare`: ``"holds"``), below
    it (``"does not hold"``) or around it (``"inconclusive"``)."""
    rows = frame[frame["metric"] == "cosine"].copy()
    rows["gaussian"] = [float(theory.expected_cosine(a, k, n))
                        for a, k, n in zip(rows["aggregator"], rows["k"], rows["n"], strict=True)]
    rows["ratio"], rows["ratio_ci"] = rows["mean"] / rows["gaussian"], rows["ci"] / rows["gaussian"]
    rows["exact"] = [float(theory.rademacher_single_cosine(n, g)) if law == "rademacher" and k == 1
                     and g in theory.RADEMACHER_GRADIENTS else np.nan
                     for law, g, k, n in zip(rows["law"], rows["gradient"], rows["k"], rows["n"], strict=True)]
    rows["verdict"] = [compare(m, c, t, 0.0)
                       for m, c, t in zip(rows["mean"], rows["ci"], rows["gaussian"], strict=True)]
    columns = ["gradient", "aggregator", "law", "n", "k", "mean", "ci", "count", "gaussian", "ratio", "ratio_ci",
               "exact", "verdict"]
    return rows[columns].sort_values(["gradient", "aggregator", "law", "n", "k"], ignore_index=True)


def _sweep_paired(units: list[PairedCosineCell], *, device, cache: ResultsCache, progress: bool,
                  executor) -> pd.DataFrame:
    frame = sweep(cache, units, partial(measure_paired, device=str(device)), device=device,
                        description="RQ1 paired", progress=progress, executor=executor)
    return _paired_finished(frame)


def _with_gains(frame: pd.DataFrame, paired: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the :data:`PAIRED_METRIC` rows of ``paired`` for the cells that have none of their own."""
    gains = paired[paired["metric"] == PAIRED_METRIC]
    return pd.concat([frame, gains], ignore_index=True).drop_duplicates(
        ["n", "k", "law", "theta", "aggregator", "normalize", "metric"], ignore_index=True)


def _finished(frame: pd.DataFrame) -> pd.DataFrame:
    frame["normalize"] = frame["normalize"].astype(bool)
    frame = frame.drop(columns=[c for c in ("approaches",) if c in frame.columns])
    return add_ci(frame)


def _paired_finished(frame: pd.DataFrame) -> pd.DataFrame:
    return _finished(frame.assign(law="normal", theta=np.nan))


def stored(config: ApproximationConfig | None = None, *, cache: ResultsCache | None = None) -> pd.DataFrame | None:
    """The cells of ``config`` (default: the ``paper`` preset) that are stored, as :func:`run` returns them, with
    the :data:`PAIRED_METRIC` rows of the stored units of ``config.paired_cells()`` (:func:`run_paired`) for the
    cells that lack their own; read from the cache only (writable root, then ``results/published``); ``None``
    when no cell is stored. Nothing is computed.

    ``frame.attrs`` has ``"stored"`` and ``"units"`` (cells found, of how many), ``"paired"`` and
    ``"paired_units"`` (paired units found, of how many) and ``"records"`` (the record of each stored cell and
    paired unit: config, environment with device and commit, date saved).
    """
    config = config or ApproximationConfig.preset("paper")
    cache = cache or ResultsCache()
    frame = cache.stored(config.cells(), prepare=_finished)
    if frame is None:
        return None
    attrs = {**frame.attrs, "paired": 0, "paired_units": len(config.paired_cells())}
    paired = cache.stored(config.paired_cells(), prepare=_paired_finished)
    if paired is not None:
        frame = _with_gains(frame, paired)
        attrs.update(paired=paired.attrs["stored"], records=attrs["records"] + paired.attrs["records"])
    frame.attrs = attrs
    return frame


# ------------------------------------------------------------------------------------------------------------
# Theory next to the measurements


def theory_columns(aggregator: str, metric: str, k, n, samples) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form mean of ``metric`` for raw Gaussian tangents, and the half-width of the 95% band of a MEAN
    over ``samples`` estimates, ``t_{0.975, samples-1} · std / sqrt(samples)`` (``cosine`` and ``norm_ratio``
    only): the same t quantile as the measured intervals it is drawn against (:func:`fg_analysis.metrics.mean_ci`;
    at the sweep's 100-1000 samples it is 1.98-1.96, the normal value, and the mean of so many samples is close
    to normal by the central limit theorem).

    The std of the cosine is :func:`fg_analysis.theory.cosine_std`; that of the norm ratio is
    ``sqrt(E[r²] − E[r]²)`` from :func:`~fg_analysis.theory.expected_squared_norm_ratio` and
    :func:`~fg_analysis.theory.expected_norm_ratio`.
    """
    if metric == "cosine":
        mean, std = theory.expected_cosine(aggregator, k, n), theory.cosine_std(aggregator, k, n)
    elif metric == "norm_ratio":
        mean = theory.expected_norm_ratio(aggregator, k, n)
        std = np.sqrt(np.maximum(theory.expected_squared_norm_ratio(aggregator, k, n) - mean ** 2, 0.0))
    else:
        raise ValueError(f"theory covers the metrics 'cosine' and 'norm_ratio'; got {metric!r}")
    samples = np.asarray(samples, dtype=float)
    return mean, t_quantile(samples) * std / np.sqrt(samples)


def with_theory(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of raw normal tangents for ``cosine`` and ``norm_ratio`` with ``theory`` (closed-form mean) and
    ``theory_ci`` (95% band of the mean over ``count`` samples), and ``z = (mean − theory) / (std/sqrt(count))``."""
    rows = frame[(frame["law"] == "normal") & ~frame["normalize"]
                 & frame["metric"].isin(["cosine", "norm_ratio"])].copy()
    parts = []
    for (aggregator, metric), group in rows.groupby(["aggregator", "metric"]):
        group = group.copy()
        group["theory"], group["theory_ci"] = theory_columns(aggregator, metric, group["k"], group["n"],
                                                             group["count"])
        parts.append(group)
    out = pd.concat(parts).sort_index() if parts else rows.assign(theory=[], theory_ci=[])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["z"] = (out["mean"] - out["theory"]) / (out["std"] / np.sqrt(out["count"]))
    return out


def theory_agreement(frame: pd.DataFrame) -> pd.DataFrame:
    """The closed forms against every cell of ``frame`` (raw normal tangents; cosine and norm ratio): per
    aggregator and metric the cells, those the theory makes exact (zero spread: k = n for the projection, n = 1),
    the share of the others whose measured mean lies within the 95% interval of the closed form
    (``|z| ≤ t_{0.975, count-1}``, :func:`with_theory`; about 95% if the closed forms are right) and the
    largest ``|z|``, with the n and k where it occurs."""
    rows = []
    for (aggregator, metric), group in with_theory(frame).groupby(["aggregator", "metric"]):
        random = group[group["std"] > 1e-6]
        inside = random["z"].abs() <= t_quantile(random["count"].to_numpy(dtype=float))
        worst = random.loc[random["z"].abs().idxmax()] if len(random) else None
        rows.append({"aggregator": aggregator, "metric": metric, "cells": len(group),
                     "exact": len(group) - len(random), "within_95": float(inside.mean()) if len(random) else np.nan,
                     "max_abs_z": float(abs(worst["z"])) if worst is not None else np.nan,
                     "at_n": int(worst["n"]) if worst is not None else None,
                     "at_k": int(worst["k"]) if worst is not None else None})
    return pd.DataFrame(rows)


def agreement_sentence(frame: pd.DataFrame) -> str:
    """How the closed forms fare on ``frame``'s cells, in one sentence computed from :func:`theory_agreement`."""
    table = theory_agreement(frame)
    random = table[table["cells"] > table["exact"]]
    cells = int((random["cells"] - random["exact"]).sum())
    share = float(((random["cells"] - random["exact"]) * random["within_95"]).sum() / cells) if cells else np.nan
    worst = random.loc[random["max_abs_z"].idxmax()] if len(random) else None
    ns, ks = sorted(frame["n"].unique()), sorted(frame["k"].unique())
    text = (f"Over the {cells} random cells (n = {ns[0]}..{ns[-1]}, k = {ks[0]}..{ks[-1]}; cosine and norm ratio of "
            f"{', '.join(sorted(random['aggregator'].unique()))}) the measured mean lies within the 95% interval "
            f"of the closed form in {100 * share:.1f}% of them (about 95% is expected by chance alone)")
    if worst is not None:
        text += (f"; the largest deviation is |z| = {worst['max_abs_z']:.2f} ({worst['aggregator']} "
                 f"{worst['metric'].replace('_', ' ')} at n = {worst['at_n']}, k = {worst['at_k']})")
    exact = int(table["exact"].sum())
    return text + (f". {exact} cells are exact in theory (no spread) and measured so." if exact else ".")


def reference_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The paper's reference values of ``E[cos]`` next to the closed form and our measurement (mean ± 95% CI),
    for the reference points present in ``frame``; the last column is the central 95% interval of a SINGLE
    estimate's cosine (:func:`fg_analysis.theory.cosine_quantile`), for scale."""
    cosine = with_theory(frame)
    cosine = cosine[cosine["metric"] == "cosine"]
    rows = []
    for (aggregator, n, k), paper in PAPER_REFERENCE.items():
        found = cosine[(cosine["aggregator"] == aggregator) & (cosine["n"] == n) & (cosine["k"] == k)]
        if found.empty:
            continue
        row = found.iloc[0]
        low, high = (float(theory.cosine_quantile(aggregator, k, n, q)) for q in (0.025, 0.975))
        rows.append({"aggregator": aggregator, "n": n, "k": k, "paper": paper, "theory": round(float(row.theory), 3),
                     "measured": format_ci(row["mean"], row["ci"]), "samples": int(row["count"]),
                     "|measured − paper|": round(abs(float(row["mean"]) - paper), 3),
                     "single-sample 95% interval": f"[{low:.3f}, {high:.3f}]"})
    return pd.DataFrame(rows)


def cell_value(frame: pd.DataFrame, *, aggregator: str, n: int, k: int, metric: str = "cosine",
               normalize: bool = False, law: str = "normal", theta: float | None = None) -> pd.Series:
    """The one row of ``frame`` for a cell (raises ``KeyError`` naming the cell if it is missing)."""
    mask = ((frame["aggregator"] == aggregator) & (frame["n"] == n) & (frame["k"] == k)
            & (frame["metric"] == metric) & (frame["normalize"] == normalize) & (frame["law"] == law))
    if theta is not None:
        mask &= frame["theta"] == theta
    found = frame[mask]
    if found.empty:
        raise KeyError(f"no result for {aggregator} n={n} k={k} {metric} normalize={normalize} law={law} "
                       f"theta={theta}; is the cell in the config?")
    return found.iloc[0]


# ------------------------------------------------------------------------------------------------------------
# Claims


#: the page anchors of the RQ1 page (``notebooks/rq1_approximation.ipynb``) the scorecard rows link to
SECTIONS = {"cosine": "rq1_approximation#rq1-cosine", "paired": "rq1_approximation#rq1-paired",
            "norm": "rq1_approximation#rq1-norm",
            "reference": "rq1_approximation#rq1-reference", "angle": "rq1_approximation#rq1-angle"}

#: float32 resolution of a cosine or norm ratio near 1 (the sweep's dtype): an exact 1 reads as 1 ± 1e-6
RESOLUTION = 1e-5

#: the paper's numbers are given to three decimals
PAPER_RESOLUTION = 0.0005

#: float32's machine epsilon: the sweep's float32 estimates round a cosine ``c`` to about ``ROUNDING · c`` (at
#: k = 1, where the two estimates are parallel, their per-draw cosines differ by about that), so a paired gain
#: below ``ROUNDING · cos(P_U g, g)`` is rounding, not evidence
ROUNDING = float(torch.finfo(torch.float32).eps)


def paired_cells(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """The paired test's cells in ``frame``: ``(gains, cells, parallel)``. ``gains`` has one row per cell with
    1 < k ≤ n (raw normal tangents) whose :data:`PAIRED_METRIC` row is in ``frame``, indexed by (n, k), with
    ``mean, std, count, ci, min`` of the gain, the unpaired cosines ``projection, projection_ci, mean_cos,
    mean_ci``, and ``verdict``: :func:`fg_analysis.metrics.compare` of the gain's t interval against 0 (resolution
    ``ROUNDING · cos(P_U g, g)``). ``cells``: how many cells of ``frame`` have both cosines and 1 < k (paired or
    not); ``parallel``: how many have both with k = 1, where ``P_U g`` and the mean are parallel (equal cosines
    on every draw; n = 1 among them, where both are exact), left out as no evidence either way."""
    normal = frame[(frame["law"] == "normal") & ~frame["normalize"] & (frame["metric"] == "cosine")]
    both = normal.pivot_table(index=["n", "k"], columns="aggregator", values=["mean", "ci"])
    if not {("mean", "projection"), ("mean", "mean")} <= set(both.columns):
        return pd.DataFrame(), 0, 0
    both = pd.DataFrame({"projection": both[("mean", "projection")], "projection_ci": both[("ci", "projection")],
                         "mean_cos": both[("mean", "mean")], "mean_ci": both[("ci", "mean")]}).dropna()
    k = both.index.get_level_values("k")
    gains = frame[(frame["metric"] == PAIRED_METRIC) & (frame["law"] == "normal") & ~frame["normalize"]]
    gains = gains.set_index(["n", "k"]).reindex(columns=["mean", "std", "count", "ci", "min"])
    gains = gains.join(both[k > 1], how="inner")
    gains["verdict"] = [compare(row["mean"], row["ci"], 0.0, 0.0, resolution=ROUNDING * row["projection"])
                        for _, row in gains.iterrows()]
    return gains, int((k > 1).sum()), int((k == 1).sum())


def scorecard(frame: pd.DataFrame, config: ApproximationConfig | None = None) -> pd.DataFrame:
    """The paper's RQ1 claims checked on ``frame`` (from :func:`run`): columns
    :data:`fg_analysis.experiments.SCORECARD_COLUMNS`. Claims whose cells are missing are left out.

    Verdicts come from the t-based 95% intervals of the means over samples: "grows", "beats" by
    :func:`fg_analysis.metrics.compare` per cell, combined over cells by :func:`fg_analysis.experiments.combine`
    (a tie in any cell makes the claim inconclusive); "equals the paper's number" by
    :func:`fg_analysis.experiments.agrees` (the paper's three decimals as its resolution). "The projection beats
    the mean" compares the two on the same tangents: the interval of their paired gain against 0 per cell
    (:func:`paired_cells`), resting only on the cells whose gain is stored.
    """
    rows = []
    setup = _setup_note(frame, config)
    def add(*args, section, **kwargs):
        rows.append(claim("RQ1", *args, setup, section=SECTIONS[section], **kwargs))

    normal = frame[(frame["law"] == "normal") & ~frame["normalize"] & (frame["metric"] == "cosine")]

    # 1. more tangents improve the approximation: the cosine grows with k, for every n and aggregator
    # a doubling where both cosines are exactly 1 (n = 1: every direction is g's) is no evidence: left out
    steps, exact = [], 0
    for _, group in normal.groupby(["aggregator", "n"]):
        group = group.sort_values("k")
        mean, ci = group["mean"].to_numpy(), group["ci"].to_numpy()
        for i in range(len(group) - 1):
            if max(abs(1 - mean[i]), abs(1 - mean[i + 1]), ci[i], ci[i + 1]) <= RESOLUTION:
                exact += 1
            else:
                steps.append(compare(mean[i + 1], ci[i + 1], mean[i], ci[i], resolution=RESOLUTION))
    examples = []
    for aggregator in ("projection", "mean"):
        group = normal[(normal["aggregator"] == aggregator) & (normal["n"] == 64)].sort_values("k")
        if len(group) > 1:
            examples.append(f"{aggregator} n=64: " + " → ".join(f"{v:.2f}" for v in group["mean"].iloc[[0, -1]])
                            + f" for k = {group['k'].iloc[0]} → {group['k'].iloc[-1]}")
    if steps:
        add("More tangents improve the approximation: the cosine grows with k (every n, every aggregator)",
            "qualitative", "; ".join(examples) + f"; doubling k: {tally(steps)}"
            + (f"; {exact} doublings with both cosines exactly 1 left out (no evidence)" if exact else ""),
            combine(steps), section="cosine")

    # 2. projection beats mean in cosine (k > 1): the paired gain cos(P_U g, g) − cos(mean, g) > 0 in every cell
    gains, cells, parallel = paired_cells(frame)
    if cells:
        text = []
        try:
            proj, mean = (cell_value(frame, aggregator=a, n=64, k=16) for a in ("projection", "mean"))
            text.append(f"n=64, k=16: {format_ci(proj['mean'], proj['ci'])} vs {format_ci(mean['mean'], mean['ci'])}"
                        + (f", paired gain {format_ci(gains.loc[(64, 16), 'mean'], gains.loc[(64, 16), 'ci'])}"
                           if (64, 16) in gains.index else ""))
        except KeyError:
            pass
        if len(gains):
            text.append(f"paired gain in cells with 1 < k ≤ n: {tally(gains['verdict'])}; smallest gain over "
                        f"{int(gains['count'].sum())} draws {gains['min'].min():.1e}")
        if len(gains) < cells:
            text.append(f"paired cells stored: {len(gains)} of {cells}")
        if parallel:
            text.append(f"{parallel} cells with k = 1 left out (projection and mean parallel: equal cosines)")
        add("The projection approximates g better than the mean (higher cosine) for k > 1",
            "0.494 vs 0.444 at n=64, k=16", "; ".join(text), combine(gains["verdict"]), section="paired")

    # 3.-4. the paper's reference values
    for aggregator, n, k, text in (("projection", 64, 16, "E[cos(P_U g, g)] at n=64, k=16"),
                                   ("mean", 16, 16, "The mean stays far from g even at k = n (n=16)")):
        try:
            cell = cell_value(frame, aggregator=aggregator, n=n, k=k)
        except KeyError:
            continue
        paper = PAPER_REFERENCE[(aggregator, n, k)]
        add(text, f"{paper:.3f}", f"{format_ci(cell['mean'], cell['ci'])} ({int(cell['count'])} samples)",
            agrees(cell["mean"], cell["ci"], paper, resolution=PAPER_RESOLUTION), section="reference")

    # 5. projection exact for k = n
    exact = normal[(normal["aggregator"] == "projection") & (normal["k"] == normal["n"])]
    if not exact.empty:
        low = float(exact["mean"].min())
        add("The projection is exact (cos = 1) when k = n", "1",
            f"min cos over n ∈ {sorted(exact['n'].unique().tolist())}: {low:.6f}",
            agrees(low, 0.0, 1.0, resolution=RESOLUTION), section="cosine")

    # 6. mean's norm overshoots by ~sqrt(n/k); projection never overshoots
    try:
        ratio = cell_value(frame, aggregator="mean", n=64, k=16, metric="norm_ratio")
        expected = float(theory.expected_norm_ratio("mean", 16, 64))
        add("The mean's norm overshoots |g| by about sqrt(n/k) (n=64, k=16: sqrt(4) = 2)",
            f"E|mean|/|g| = {expected:.3f} (closed form)", format_ci(ratio["mean"], ratio["ci"]),
            agrees(ratio["mean"], ratio["ci"], expected), section="norm")
    except KeyError:
        pass
    proj_norm = frame[(frame["aggregator"] == "projection") & (frame["metric"] == "norm_ratio")
                      & (frame["law"] == "normal")]
    if not proj_norm.empty:
        joined = proj_norm.merge(normal[normal["aggregator"] == "projection"], on=["n", "k"], suffixes=("", "_cos"))
        gap = float((joined["mean"] - joined["mean_cos"]).abs().max())
        top = float(proj_norm["mean"].max())
        verdict = combine([agrees(gap, 0.0, 0.0, resolution=RESOLUTION),
                           HOLDS if top <= 1 + RESOLUTION else FAILS])
        add("The projection never overshoots: |P_U g|/|g| = cos(P_U g, g) ≤ 1", "identity",
            f"max |norm ratio − cos| = {gap:.1e}; max norm ratio {top:.3f}", verdict, section="norm")

    # 7. unbiasedness of the mean (E[ĝ·g] = |g|²) and the projection's error, at n=64, k=16
    try:
        dot = cell_value(frame, aggregator="mean", n=64, k=16, metric="dot")
        ratio, half = dot["mean"] / 64, dot["ci"] / 64
        add("The mean of Gaussian forward gradients is unbiased: E[ĝ·g]/|g|² = 1 (n=64, k=16)", "1",
            format_ci(ratio, half), agrees(ratio, half, 1.0), source="Baydin et al.", section="norm")
        error = cell_value(frame, aggregator="projection", n=64, k=16, metric="error")
        # |g − P_U g|/|g| = sin of the angle; sin² ~ Beta((n−k)/2, k/2), the cos² law of an (n−k)-dim span
        expected = float(theory.expected_cosine("projection", 64 - 16, 64))
        squared = float(theory.expected_projection_error(16, 64))
        add("The projection's relative error |g − P_U g|/|g| follows its closed form (n=64, k=16; "
            "E|g − P_U g|²/|g|² = (n − k)/n)", f"{expected:.3f} (closed form; squared {squared:.3f})",
            format_ci(error["mean"] / 8, error["ci"] / 8), agrees(error["mean"] / 8, error["ci"] / 8, expected),
            section="norm")
    except KeyError:
        pass

    # 8. fixed angles: the projection depends only on the span; the mean degrades at small angles
    angle = frame[(frame["law"] == "fixed-angle") & (frame["metric"] == "cosine")]
    if not angle.empty:
        full = angle[(angle["aggregator"] == "projection") & (angle["k"] == angle["n"])]
        if not full.empty:
            add("Fixed-angle tangents: the projection with k = n = 64 is exact at every angle", "1",
                f"min cos over θ: {full['mean'].min():.6f}",
                agrees(float(full["mean"].min()), 0.0, 1.0, resolution=RESOLUTION), section="angle")
        part = angle[(angle["aggregator"] == "projection") & (angle["k"] == 16)]
        if not part.empty:
            n = int(part["n"].iloc[0])
            expected = float(theory.expected_cosine("projection", 16, n))
            cells = [agrees(m, c, expected) for m, c in zip(part["mean"], part["ci"], strict=True)]
            add("Fixed-angle tangents: the projection's cosine does not depend on θ (only the span matters)",
                f"{expected:.3f} at every θ (normal-tangent value)",
                f"{part['mean'].min():.3f}..{part['mean'].max():.3f} over θ; within the interval at "
                f"{cells.count(HOLDS)}/{len(cells)} angles", combine(cells), section="angle")
        mean16 = angle[(angle["aggregator"] == "mean") & (angle["k"] == 16)].sort_values("theta")
        if len(mean16) > 1:
            mean, ci = mean16["mean"].to_numpy(), mean16["ci"].to_numpy()
            cells = [compare(mean[i + 1], ci[i + 1], mean[i], ci[i]) for i in range(len(mean16) - 1)]
            add("Fixed-angle tangents: the mean degrades as the angle shrinks (k=16)", "qualitative",
                "cos " + ", ".join(f"{v:.2f}" for v in mean16["mean"]) + " at θ = "
                + ", ".join(f"{t:g}°" for t in mean16["theta"]) + f"; larger θ: {tally(cells)}", combine(cells),
                section="angle")
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))


def paired_markdown(frame: pd.DataFrame) -> str:
    """The paired test on ``frame`` in two sentences computed from :func:`paired_cells`: how the cells with
    1 < k ≤ n split, the smallest per-draw gain (if negative, next to the float32 rounding of that cell's cosine,
    :data:`ROUNDING`), and in how many of them the two means' own intervals overlap (the unpaired comparison's
    ties), with the largest such n as an example."""
    gains, cells, _ = paired_cells(frame)
    if gains.empty:
        return (f"No paired gain is stored yet for the {cells} cells with 1 < k ≤ n (`python -m fg_analysis rq1 "
                "--preset paper --part paired --publish` measures them).")
    (n, k), low = gains["min"].idxmin(), gains["min"].min()
    text = (f"Over the {len(gains)} cells with 1 < k ≤ n the paired gain's 95% interval against 0 gives "
            f"{tally(gains['verdict'])}; the smallest gain over all {int(gains['count'].sum())} draws is "
            f"{low:.1e} (n = {n}, k = {k}")
    text += (f", where float32 rounds a cosine of {gains.loc[(n, k), 'projection']:.3f} by about "
             f"{ROUNDING * gains.loc[(n, k), 'projection']:.1e})." if low < 0 else ").")
    unpaired = [compare(r["projection"], r["projection_ci"], r["mean_cos"], r["mean_ci"], resolution=RESOLUTION)
                for _, r in gains.iterrows()]
    ties = gains[[verdict == INCONCLUSIVE for verdict in unpaired]]
    text += f" The two means' own intervals overlap in {len(ties)} of these cells"
    if ties.empty:
        return text + "."
    (n, k), cell = max(ties.iterrows(), key=lambda item: (item[0][0], -item[0][1]))
    return text + (f", e.g. n = {n}, k = {k}: {format_ci(cell['projection'], cell['projection_ci'], 4)} against "
                   f"{format_ci(cell['mean_cos'], cell['mean_ci'], 4)}, where the paired gain is "
                   f"{format_ci(cell['mean'], cell['ci'])}.")


def _setup_note(frame: pd.DataFrame, config: ApproximationConfig | None) -> str:
    ns = sorted(frame.loc[frame["law"] == "normal", "n"].unique().tolist())
    ks = sorted(frame.loc[frame["law"] == "normal", "k"].unique().tolist())
    counts = sorted(frame["count"].unique().tolist())
    paper = ApproximationConfig.preset("paper")
    if config is not None and replace(config, seed=0) == paper:
        return "as in the paper"
    return (f"n ∈ {{{', '.join(map(str, ns))}}}, k ∈ {{{ks[0]}..{ks[-1]}}}, {'/'.join(map(str, counts))} samples "
            "(paper: n = 2^0..2^16, k = 2^0..2^10, 1000/100 samples)")


def scorecard_rows(preset: str = "quick", *, device: str = "cpu", cache: ResultsCache | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """Run (or read from the cache) the preset's sweep, as the RQ1 notebook does, and return its claims."""
    config = ApproximationConfig.preset(preset, seed=seed)
    rows = scorecard(run(config, device=device, cache=cache, progress=False), config)
    if preset == "paper":
        return rows
    return pd.concat([rows, stored_rows(cache=cache)], ignore_index=True)


def stored_rows(config: ApproximationConfig | None = None, *, cache: ResultsCache | None = None) -> pd.DataFrame:
    """The RQ1 claims on the stored ``paper`` grid (:func:`stored`, read-only), with the records they rest on;
    no rows (and nothing computed) when none is stored. Claims on cells not stored yet are left out."""
    frame = stored(config, cache=cache)
    if frame is None:
        return pd.DataFrame(columns=list(SCORECARD_COLUMNS))
    rows = scorecard(frame, ApproximationConfig.preset("paper"))
    rows["setup"] = stored_setup(frame)
    rows["record"] = record_text(frame.attrs["records"])
    rows["claim"] = rows["claim"] + " (stored paper-protocol runs)"
    return rows


def stored_setup(frame: pd.DataFrame) -> str:
    """How the stored grid of :func:`stored` relates to the paper's, with how many cells are stored."""
    found, total = frame.attrs.get("stored", "?"), frame.attrs.get("units", "?")
    grid = "the paper's grid" if found == total else f"{found} of the paper's {total} cells so far"
    paired = f"; paired units (projection against mean): {frame.attrs['paired']} of {frame.attrs['paired_units']}" \
        if "paired_units" in frame.attrs else ""
    return (f"stored paper-protocol runs: {grid} (n = 2^0..2^16, k = 2^0..2^10, 1000 samples, 100 for n ≥ 2^15; "
            f"t intervals){paired}")


__all__ = ["APPROACHES", "GRADIENTS", "LAWS", "METRICS", "PAIRED_METRIC", "ApproximationCell", "ApproximationConfig",
           "LawCell", "LawComparisonConfig", "PairedCosineCell", "cell_value", "law_table", "measure_cell",
           "measure_laws", "measure_paired", "paired_cells", "paired_markdown", "reference_table", "run", "run_laws",
           "run_paired", "cell_seed", "sample_metrics", "scorecard", "scorecard_rows", "theory_columns",
           "true_gradient", "with_theory"]


# ------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``python -m fg_analysis rq1 --preset paper --publish``: run (or read) the sweep and print one line per
    preset with its number of cells and wall time; ``--part paired`` runs the preset's paired units instead
    (:func:`run_paired`), ``--part laws`` the law comparison (:class:`LawComparisonConfig`, the same for every
    preset)."""
    parser = experiment_parser("rq1", "RQ1: approximation quality of multi-tangent forward gradients",
                               presets=("quick", "paper"))
    parser.add_argument("--part", default="grid", choices=("grid", "paired", "laws"),
                        help="'grid' (default): every cell, every approach; 'paired': the projection against the "
                             "mean on each grid cell's tangents (PairedCosineCell, 1 < k <= n); 'laws': Rademacher "
                             "against normal tangents (LawComparisonConfig)")
    args = parser.parse_args(argv)
    device, cache = resolve_common(parser, args)
    config = ApproximationConfig.preset(args.preset, seed=args.seed)
    if args.part == "paired":
        run_sweep(run_paired, config, args=args, device=device, cache=cache, label="RQ1 paired",
                  units=len(config.paired_cells()))
    elif args.part == "laws":
        laws = LawComparisonConfig(seed=args.seed)
        run_sweep(run_laws, laws, args=args, device=device, cache=cache, label="RQ1 laws", units=len(laws.cells()))
    else:
        run_sweep(run, config, args=args, device=device, cache=cache, label="RQ1", units=len(config.cells()))
    return 0
