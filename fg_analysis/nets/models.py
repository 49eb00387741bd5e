"""Staged networks: a fully-connected net, ResNet-18 and a Vision Transformer (RQ3), and a small CNN.

Every model is a :class:`StagedNetwork`: a sequence of *stages* whose outputs are the activities that
activity-perturbation forward gradients perturb (paper, "Fully-connected networks" and "ResNet18 and ViT"):

* ``FullyConnected`` (784 → w → w → 10, ReLU): stages ``[Linear+ReLU] * hidden_layers + [Linear]``; the
  activity dimension of the paper's net is ``2w + 10``.
* ``ResNet18``: stages stem, layer1 … layer4, head: the paper's perturbation points.
* ``VisionTransformer`` (6 layers, 4 heads, hidden 256, MLP 512, patch 4 in the paper): stages embedding,
  each encoder block, head.
* ``SmallCNN`` (two strided 3×3 convolutions and a linear classifier; not in the paper): the convolutional net of
  the guided-tangents chapter, small enough to train on a CPU.

With perturbations ``u_1 … u_L`` the forward pass is ``h_0 = x``, ``h_i = stage_i(h_{i-1}) + u_i``, and the
logits are ``h_L``; a tangent over ``(u_1 … u_L)`` at ``u = 0`` gives the activity JVPs.

All models work under ``torch.func.functional_call``, ``torch.func.jvp`` and ``torch.func.vmap`` over tangents,
also in train mode with BatchNorm: the BatchNorm layers here keep running statistics but no
``num_batches_tracked`` counter (that integer ``+= 1`` is what breaks ``jvp``; with ``momentum=0.1`` it is never
read). Running statistics are then updated once per call from the primal batch, also under ``jvp`` /
``vmap``-over-tangents. What cannot work is ``vmap`` over the *batch* dimension of a BatchNorm model in train
mode (batch statistics couple the samples): get per-sample JVPs from a ``reduction="none"`` loss instead, or
call ``torch.func.replace_all_batch_norm_modules_`` / use eval mode.

Build models with :func:`build_model`, which constructs them under ``torch.random.fork_rng`` with
``torch.manual_seed(seed)``: the same seed gives the same weights, and the caller's global RNG is untouched.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MODELS",
    "FullyConnected",
    "ResNet18",
    "SmallCNN",
    "StagedNetwork",
    "VisionTransformer",
    "build_model",
    "count_parameters",
    "default_patch_size",
]

MODELS = ("fc", "resnet18", "vit", "cnn")


class StagedNetwork(nn.Module):
    """A network ``x ↦ stage_L(… stage_1(x))`` whose stage outputs can be perturbed additively.

    ``forward(x, perturbations=None)``: ``h = x``; for each stage ``i``: ``h = stage_i(h)``, then, if
    ``perturbations`` is given, ``h = h + perturbations[i]``; returns ``h`` (the logits). ``perturbations`` is a
    sequence with one entry per stage, each of shape ``h.shape[1:]`` (shared by the batch) or ``h.shape``
    (per sample), or ``None`` to leave that stage unperturbed. ``x`` always has a leading batch dimension.

    ``stage_names`` names the stages (e.g. ``("stem", "layer1", …, "head")``); ``activity_shapes(input_shape)``
    gives each stage's output shape without the batch dimension.
    """

    stages: nn.ModuleList
    stage_names: tuple[str, ...]

    def __init__(self, stages: Sequence[nn.Module], stage_names: Sequence[str] | None = None):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        names = tuple(stage_names) if stage_names is not None else tuple(f"stage{i}" for i in range(len(stages)))
        if len(names) != len(self.stages):
            raise ValueError(f"{len(names)} stage names for {len(self.stages)} stages")
        self.stage_names = names

    def forward(self, x: torch.Tensor, perturbations: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        if perturbations is not None and len(perturbations) != len(self.stages):
            raise ValueError(f"need one perturbation per stage ({len(self.stages)}: {', '.join(self.stage_names)}); "
                             f"got {len(perturbations)}")
        h = x
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if perturbations is not None and perturbations[i] is not None:
                u = perturbations[i]
                if tuple(u.shape) not in (tuple(h.shape[1:]), tuple(h.shape)):
                    raise ValueError(f"perturbation of stage {i} ({self.stage_names[i]}) has shape {tuple(u.shape)}; "
                                     f"expected {tuple(h.shape[1:])} or {tuple(h.shape)}")
                h = h + u
        return h

    @torch.no_grad()
    def activity_shapes(self, input_shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Output shape of every stage (without the batch dimension) for inputs of shape ``input_shape``.

        Runs one sample through the network in eval mode (so BatchNorm statistics are not touched) and restores
        every module's train/eval flag afterwards.
        """
        reference = next(iter(self.parameters()), None)
        dtype = reference.dtype if reference is not None else torch.get_default_dtype()
        device = reference.device if reference is not None else torch.device("cpu")
        modes = [(module, module.training) for module in self.modules()]
        shapes = []
        try:
            self.eval()
            h = torch.zeros((1, *input_shape), dtype=dtype, device=device)
            for stage in self.stages:
                h = stage(h)
                shapes.append(tuple(h.shape[1:]))
        finally:
            for module, mode in modes:
                module.training = mode
        return shapes


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars, ``Σ p.numel()`` over ``model.parameters()``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------------------------------------
# fully-connected


class FullyConnected(StagedNetwork):
    """Multi-layer perceptron ``in_features → width (→ width …) → n_classes`` with ReLU (paper: 784→w→w→10).

    The input is flattened (``x.flatten(1)``). Stages: ``hidden_layers`` × [Linear + ReLU], then the output
    Linear; the activities are the post-ReLU hidden vectors and the logits, so the activity dimension is
    ``hidden_layers · width + n_classes`` (``2w + 10`` for the paper's net). Weights use PyTorch's default
    Linear initialization.

    >>> net = FullyConnected(784, 256, 10)
    >>> net.activity_shapes((1, 28, 28))
    [(256,), (256,), (10,)]
    """

    def __init__(self, in_features: int, width: int, n_classes: int, *, hidden_layers: int = 2):
        if hidden_layers < 0:
            raise ValueError(f"hidden_layers must be >= 0; got {hidden_layers}")
        stages: list[nn.Module] = []
        fan_in = in_features
        for _ in range(hidden_layers):
            stages.append(nn.Sequential(nn.Flatten(1), nn.Linear(fan_in, width), nn.ReLU()))
            fan_in = width
        stages.append(nn.Sequential(nn.Flatten(1), nn.Linear(fan_in, n_classes)))
        names = [f"hidden{i + 1}" for i in range(hidden_layers)] + ["output"]
        super().__init__(stages, names)
        self.in_features, self.width, self.n_classes, self.hidden_layers = in_features, width, n_classes, hidden_layers


# ----------------------------------------------------------------------------------------------------------
# a small CNN


class SmallCNN(StagedNetwork):
    """``conv3×3/2(c1)+ReLU → conv3×3/2(c2)+ReLU → Linear``: three stages (``conv1``, ``conv2``, ``output``).

    On MNIST (28×28) with ``channels=(8, 16)`` the activities are 8×14×14, 16×7×7 and 10 (A = 2362).

    >>> SmallCNN((1, 28, 28), 10).activity_shapes((1, 28, 28))
    [(8, 14, 14), (16, 7, 7), (10,)]
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), n_classes: int = 10, *,
                 channels: tuple[int, int] = (8, 16)):
        c0, h, w = input_shape
        c1, c2 = channels
        side = lambda s: (s - 1) // 2 + 1  # noqa: E731  (3×3 kernel, stride 2, padding 1)
        h2, w2 = side(side(h)), side(side(w))
        stages = [nn.Sequential(nn.Conv2d(c0, c1, 3, stride=2, padding=1), nn.ReLU()),
                  nn.Sequential(nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU()),
                  nn.Sequential(nn.Flatten(1), nn.Linear(c2 * h2 * w2, n_classes))]
        super().__init__(stages, ("conv1", "conv2", "output"))


# ----------------------------------------------------------------------------------------------------------
# ResNet-18


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm2d with running statistics but without the ``num_batches_tracked`` counter (see module doc)."""
    bn = nn.BatchNorm2d(channels)
    bn.num_batches_tracked = None  # its in-place += 1 on a captured tensor breaks torch.func.jvp; unused
    return bn


class BasicBlock(nn.Module):
    """ResNet basic block: ``relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))`` (He et al. 2016).

    The shortcut is a 1×1 strided conv + BN when the stride or the channel count changes, else identity.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _batch_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = _batch_norm(channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                          _batch_norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class _Head(nn.Module):
    """Global average pooling, flatten, linear classifier."""

    def __init__(self, features: int, n_classes: int):
        super().__init__()
        self.fc = nn.Linear(features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(-2, -1)))


class _Require4D(nn.Module):
    """Wraps the stem: a clear error for inputs that are not (B, C, H, W) images."""

    def __init__(self, body: nn.Module, in_channels: int):
        super().__init__()
        self.body, self.in_channels = body, in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet18 needs images of shape (B, {self.in_channels}, H, W); got {tuple(x.shape)} "
                             "(1-D inputs such as MNIST-1D are not supported: use the 'fc' model)")
        return self.body(x)


class ResNet18(StagedNetwork):
    """ResNet-18: BasicBlocks (2, 2, 2, 2) with widths 64-128-256-512 and BatchNorm (He et al. 2016).

    Stages (the paper's perturbation points): ``stem``, ``layer1`` … ``layer4``, ``head`` (global average
    pooling + flatten + linear). ``small_input=False`` gives the ImageNet stem (7×7 stride-2 conv, BN, ReLU,
    3×3 stride-2 max-pool), which is what the paper uses (with a 1-channel stem for MNIST);
    ``small_input=True`` a 3×3 stride-1 conv, BN, ReLU stem without max-pool (the usual CIFAR variant).
    ``widths`` / ``blocks`` may be reduced for tests. Initialization as torchvision: Kaiming-normal
    (fan-out, ReLU) convolutions, BN weight 1 and bias 0, default Linear.

    >>> net = ResNet18(3, 10)
    >>> [s[0] for s in net.activity_shapes((3, 32, 32))]
    [64, 64, 128, 256, 512, 10]
    """

    def __init__(self, in_channels: int, n_classes: int, *, small_input: bool = True,
                 widths: Sequence[int] = (64, 128, 256, 512), blocks: Sequence[int] = (2, 2, 2, 2)):
        if len(widths) != 4 or len(blocks) != 4:
            raise ValueError(f"ResNet18 has 4 layers: need 4 widths and 4 block counts; got {widths}, {blocks}")
        w0 = widths[0]
        if small_input:
            stem_body = nn.Sequential(nn.Conv2d(in_channels, w0, 3, stride=1, padding=1, bias=False),
                                      _batch_norm(w0), nn.ReLU())
        else:
            stem_body = nn.Sequential(nn.Conv2d(in_channels, w0, 7, stride=2, padding=3, bias=False),
                                      _batch_norm(w0), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
        stages: list[nn.Module] = [_Require4D(stem_body, in_channels)]
        channels = w0
        for i, (width, count) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            layer = []
            for j in range(count):
                layer.append(BasicBlock(channels, width, stride if j == 0 else 1))
                channels = width
            stages.append(nn.Sequential(*layer))
        stages.append(_Head(channels, n_classes))
        super().__init__(stages, ("stem", "layer1", "layer2", "layer3", "layer4", "head"))
        self.in_channels, self.n_classes, self.small_input = in_channels, n_classes, small_input
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------------------------------------
# Vision Transformer


def default_patch_size(image_size: int) -> int:
    """The patch size used for a square image side: 4 when the side is ≥ 16 and divisible by 4 (MNIST 28 → 4 as
    in the paper, CIFAR 32 → 4), else 2 when even (digits 8 → 2), else 1."""
    if image_size >= 16 and image_size % 4 == 0:
        return 4
    return 2 if image_size % 2 == 0 else 1


class PatchEmbedding(nn.Module):
    """Split into ``p×p`` patches, embed linearly (a stride-``p`` conv), prepend a class token, add learned
    positional embeddings: output ``(B, 1 + HW/p², hidden)`` (Dosovitskiy et al. 2021)."""

    def __init__(self, image_size: tuple[int, int], patch_size: int, in_channels: int, hidden: int):
        super().__init__()
        height, width = image_size
        self.in_channels, self.image_size = in_channels, (height, width)
        self.proj = nn.Conv2d(in_channels, hidden, patch_size, stride=patch_size)
        n_patches = (height // patch_size) * (width // patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden))
        self.pos_embedding = nn.Parameter(torch.zeros(1, n_patches + 1, hidden))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embedding, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, *self.image_size):
            raise ValueError(f"VisionTransformer needs images of shape (B, {self.in_channels}, "
                             f"{self.image_size[0]}, {self.image_size[1]}); got {tuple(x.shape)}")
        tokens = self.proj(x).flatten(2).transpose(1, 2)  # (B, N, hidden)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        return torch.cat([cls, tokens], dim=1) + self.pos_embedding


class SelfAttention(nn.Module):
    """Multi-head self-attention ``softmax(Q Kᵀ / sqrt(d_head)) V`` with plain matmuls (forward-AD friendly)."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, tokens, hidden = h.shape
        qkv = self.qkv(h).reshape(batch, tokens, 3, self.heads, hidden // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, N, d_head)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hidden // self.heads)
        attended = scores.softmax(dim=-1) @ v
        return self.out(attended.transpose(1, 2).reshape(batch, tokens, hidden))


class EncoderBlock(nn.Module):
    """Pre-LN transformer block: ``h + MHSA(LN(h))``, then ``h + MLP(LN(h))`` with a GELU MLP."""

    def __init__(self, hidden: int, heads: int, mlp: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attention = SelfAttention(hidden, heads)
        self.norm2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, mlp), nn.GELU(), nn.Linear(mlp, hidden))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attention(self.norm1(h))
        return h + self.mlp(self.norm2(h))


class _ClassTokenHead(nn.Module):
    """Final LayerNorm, take the class token, linear classifier."""

    def __init__(self, hidden: int, n_classes: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(h[:, 0]))


class VisionTransformer(StagedNetwork):
    """Vision Transformer (Dosovitskiy et al. 2021) with pre-LN blocks and a class-token head.

    Paper configuration: 6 layers, 4 heads, hidden 256, MLP 512, patch 4. Stages: ``embedding`` (patches + class
    token + positions, output ``(1 + HW/p², hidden)``), ``block1`` … ``blockL`` and ``head`` (LayerNorm on the
    class token + Linear). ``image_size`` is an int (square) or ``(H, W)``; ``patch_size`` must divide it.

    >>> net = VisionTransformer(28, 1, 10, patch_size=4)
    >>> net.activity_shapes((1, 28, 28))[0], len(net.stages)
    ((50, 256), 8)
    """

    def __init__(self, image_size: int | tuple[int, int], in_channels: int, n_classes: int, *, patch_size: int,
                 hidden: int = 256, layers: int = 6, heads: int = 4, mlp: int = 512):
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or any(s % patch_size for s in size):
            raise ValueError(f"patch_size={patch_size} must divide the image size {size}; "
                             f"try default_patch_size({size[0]}) = {default_patch_size(size[0])}")
        stages: list[nn.Module] = [PatchEmbedding(size, patch_size, in_channels, hidden)]
        stages += [EncoderBlock(hidden, heads, mlp) for _ in range(layers)]
        stages.append(_ClassTokenHead(hidden, n_classes))
        names = ["embedding"] + [f"block{i + 1}" for i in range(layers)] + ["head"]
        super().__init__(stages, names)
        self.image_size, self.patch_size, self.n_classes = size, patch_size, n_classes


# ----------------------------------------------------------------------------------------------------------
# factory


def build_model(name: str, *, input_shape: Sequence[int], n_classes: int, width: int | None = None, seed: int = 0,
                dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu", **kwargs) -> StagedNetwork:
    """Build ``"fc"``, ``"resnet18"``, ``"vit"`` or ``"cnn"`` for inputs of shape ``input_shape`` (no batch
    dimension).

    ``width`` means: fc → hidden width (default 256); resnet18 → base width ``w`` of layers ``(w, 2w, 4w, 8w)``
    (default 64); vit → hidden size (default 256; ``mlp`` then defaults to ``2·width``); cnn → channels
    ``(w, 2w)`` of its two convolutions (default 8). Other keyword arguments
    go to the class (fc: ``hidden_layers``; resnet18: ``small_input``, ``blocks``; vit: ``patch_size`` (default
    :func:`default_patch_size`), ``layers``, ``heads``, ``mlp``).

    Parameters are initialized on the CPU in float32 under ``torch.random.fork_rng()`` with
    ``torch.manual_seed(seed)`` and then moved to ``dtype`` / ``device``: equal seeds give equal weights for every
    dtype, and the caller's global RNG state is unchanged.

    >>> a = build_model("fc", input_shape=(1, 8, 8), n_classes=10, width=32, seed=1)
    >>> b = build_model("fc", input_shape=(1, 8, 8), n_classes=10, width=32, seed=1)
    >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    True
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    input_shape = tuple(int(s) for s in input_shape)
    if name != "fc" and len(input_shape) != 3:
        raise ValueError(f"{name} needs image inputs (C, H, W); got input_shape={input_shape} "
                         "(1-D inputs such as MNIST-1D (1, 40) work with 'fc')")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "fc":
            model: StagedNetwork = FullyConnected(math.prod(input_shape), 256 if width is None else width, n_classes,
                                                  **kwargs)
        elif name == "resnet18":
            if width is not None:
                kwargs.setdefault("widths", (width, 2 * width, 4 * width, 8 * width))
            model = ResNet18(input_shape[0], n_classes, **kwargs)
        elif name == "cnn":
            base = 8 if width is None else width
            model = SmallCNN(input_shape, n_classes, channels=(base, 2 * base), **kwargs)
        else:
            channels, height, side = input_shape
            hidden = 256 if width is None else width
            kwargs.setdefault("patch_size", default_patch_size(min(height, side)))
            kwargs.setdefault("mlp", 2 * hidden)
            model = VisionTransformer((height, side), channels, n_classes, hidden=hidden, **kwargs)
    return model.to(dtype=dtype, device=device)
