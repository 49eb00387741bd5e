"""What the benchmark measures: the networks, the tangent counts, the repeats and the named presets.

A :class:`BenchConfig` is a frozen dataclass, so :class:`fg_analysis.runs.cache.ResultsCache` stores a benchmark under
a hash of it; ``machine`` names the CPU or GPU, so timings of two machines are never mixed up.

References:
    Flügel, Coquelin, Weiel, Debus, Streit, Götz. Beyond Backpropagation: Optimization with Multi-Tangent
    Forward Gradients. arXiv:2410.17764 (RQ4).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from fg_analysis.nets.models import build_model
from fg_analysis.runs.env import device_name, resolve_device, torch_threads

__all__ = ["PAPER_SOTA", "PRESETS", "TINY_SOTA", "BenchConfig", "ModelSpec", "fc"]

#: the preset names of :meth:`BenchConfig.from_preset` (``"full"`` is an alias of ``"paper"``)
PRESETS = ("quick", "live", "paper", "full")


@dataclass(frozen=True)
class ModelSpec:
    """A network to time: ``build_model(name, input_shape=, width=, **options)`` with ``batch`` inputs.

    ``ks``: the tangent counts of this network (``None``: the config's).
    """

    label: str
    name: str
    input_shape: tuple[int, ...]
    width: int
    batch: int
    options: tuple[tuple[str, object], ...] = ()
    ks: tuple[int, ...] | None = None

    def build(self, *, seed: int, device: torch.device) -> torch.nn.Module:
        """The network, initialized from ``seed`` on ``device``.

        Returns:
            A :class:`fg_analysis.nets.models.StagedNetwork`.
        """
        return build_model(self.name, input_shape=self.input_shape, n_classes=10, width=self.width, seed=seed,
                           device=device, **dict(self.options))


def fc(width: int, batch: int = 64) -> ModelSpec:
    """The paper's 784 → w → w → 10 ReLU net on MNIST-shaped inputs (batch 64 as in its RQ3 runs).

    Returns:
        The :class:`ModelSpec` labelled ``fc-<width>``.
    """
    return ModelSpec(f"fc-{width}", "fc", (1, 28, 28), width, batch)


PAPER_SOTA = (
    ModelSpec("resnet18", "resnet18", (3, 32, 32), 64, 128, (("small_input", False),), ks=(1, 4, 16)),
    ModelSpec("vit", "vit", (3, 32, 32), 256, 32, (("layers", 6), ("heads", 4), ("mlp", 512)), ks=(1, 4, 16)),
)
TINY_SOTA = (
    ModelSpec("resnet18-tiny", "resnet18", (3, 16, 16), 8, 8, (("small_input", False),), ks=(1, 4)),
    ModelSpec("vit-tiny", "vit", (3, 16, 16), 32, 8, (("layers", 2), ("heads", 2), ("mlp", 64)), ks=(1, 4)),
)


@dataclass(frozen=True)
class BenchConfig:
    """What :func:`fg_analysis.bench.run` measures. Build it with :meth:`preset`.

    Attributes:
        preset: the preset the config came from (``"quick"``, ``"live"``, ``"paper"``).
        device, machine: the device type and its name (CPU model and threads, or the GPU).
        models: the networks whose training steps are timed; ``reference_model`` is the one the targets name.
        ks: tangent counts of the weight-perturbation steps; ``fit_ks`` those the cost model is fitted on (the
            others are held out); ``activity_ks`` those of the activity-perturbation steps (FC nets only, the
            mode of the paper's RQ3 networks); ``oneoff_ks`` those of the public one-off path.
        repeats, warmup: rounds timed after ``warmup`` untimed rounds (all variants of one k interleaved).
        lr: the SGD rate of every timed step (small, so that a few steps on random data stay finite).
        max_tangent_elements: steps whose tangents would exceed this many numbers (k·P) are skipped.
        memory_*: the depths, width, batch and k of the peak-memory measurement and the size of its probe.
        approximation_*: n, k and samples of the approximation-throughput measurement.
        guided_models, guided_jvps: the networks (``(model, width)``) and numbers of JVPs at which the guided
            tangents' auxiliary heads are costed next to the JVPs (:mod:`fg_analysis.bench.guided`; CPU only).
        threads: torch's intra-op CPU threads during the run (0 keeps torch's default). The CPU presets use 1:
            on a shared machine a second thread mostly waits at barriers for a core another process holds,
            which turns medians into noise; one thread gives stable ratios.
        seed: the seed of weights, data and tangents.
    """

    preset: str = "quick"
    device: str = "cpu"
    machine: str = ""
    models: tuple[ModelSpec, ...] = (fc(256), fc(1024)) + TINY_SOTA
    ks: tuple[int, ...] = (1, 2, 4, 8, 16)
    fit_ks: tuple[int, ...] = (1, 2, 4, 8)
    activity_ks: tuple[int, ...] = (1, 2, 4, 16)
    oneoff_ks: tuple[int, ...] = (1, 4, 16)
    reference_model: str = "fc-1024"
    repeats: int = 5
    warmup: int = 1
    lr: float = 1e-4
    max_tangent_elements: int = 3 * 10 ** 8
    memory_depths: tuple[int, ...] = (2, 8, 32)
    memory_width: int = 256
    memory_batch: int = 1024
    memory_k: int = 4
    memory_probe_bytes: int = 64 * 2 ** 20
    approximation_n: int = 1024
    approximation_k: int = 16
    approximation_samples: int = 1000
    guided_models: tuple[tuple[str, int | None], ...] = (("fc", 256), ("cnn", None))
    guided_jvps: tuple[int, ...] = (4, 16)
    threads: int = 1
    seed: int = 0

    @classmethod
    def from_preset(cls, name: str = "quick", *, device: str | torch.device = "cpu", **overrides) -> BenchConfig:
        """A named preset on ``device`` (``"auto"``: CUDA when available), with field ``overrides``.

        ``quick``: FC-256 and FC-1024 (k ∈ {1, 2, 4, 8, 16}; activity perturbation at k ∈ {1, 2, 4, 16}), tiny
        ResNet/ViT, depths 2/8/32 at batch 1024. ``live``: the notebook's small run on FC-256. ``paper`` (alias
        ``full``): FC-256/1024/4096, k up to 64 (tangents capped at ``max_tangent_elements`` numbers),
        ResNet-18 (batch 128) and the paper's ViT (batch 32), depths 2 … 32 at batch 4096; on a CPU ResNet-18
        and the ViT stop at k = 4. How long each takes is in the stored records (``wall_time_s``).

        Returns:
            The :class:`BenchConfig`.

        Raises:
            ValueError: for an unknown preset or device.
        """
        resolved = resolve_device(device)
        threads = overrides.pop("threads", 1 if resolved.type == "cpu" else 0)
        with torch_threads(threads):
            base = dict(device=resolved.type, machine=device_name(resolved), threads=threads)
        if name == "quick":
            config = cls(preset="quick", repeats=7, **base)
        elif name == "live":
            config = cls(preset="live", models=(fc(256),), reference_model="fc-256", repeats=3,
                         memory_batch=512, approximation_samples=300, guided_models=(), **base)
        elif name in ("paper", "full"):
            gpu = resolved.type == "cuda"
            sota = PAPER_SOTA if gpu else tuple(replace(spec, ks=(1, 4), batch=min(spec.batch, 16) if
                                                        spec.name == "vit" else spec.batch) for spec in PAPER_SOTA)
            config = cls(preset="paper", models=(fc(256), fc(1024), fc(4096)) + sota,
                         ks=(1, 2, 4, 8, 16, 32, 64), fit_ks=(1, 2, 4, 8, 16),
                         repeats=5, warmup=1, memory_depths=(2, 4, 8, 16, 32), memory_batch=4096,
                         memory_k=16 if gpu else 4, approximation_samples=10000,
                         max_tangent_elements=2 * 10 ** 9 if gpu else 3 * 10 ** 8, **base)
        else:
            raise ValueError(f"unknown preset {name!r}; use 'quick', 'live' or 'paper' (alias 'full')")
        return replace(config, **overrides)
