"""The machine a result came from: device resolution and an environment record.

Every cached result stores :func:`environment` next to its config, so a number in the book can always be
traced to the versions, device and commit that produced it.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import subprocess
from collections.abc import Iterator
from importlib import metadata

import torch

from fg_analysis.runs.paths import PACKAGE

_PACKAGES = ("torch", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "scikit-learn", "papermill",
             "jupyter-book")


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` (or a ``torch.device``) into a ``torch.device``.

    ``"auto"`` picks CUDA when it is available and the CPU otherwise. Asking for CUDA on a machine without
    it is an error rather than a silent fallback, so a "GPU" result is never a CPU one.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except RuntimeError as error:
            raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for CUDA, but torch {torch.__version__} sees no GPU; "
                         "use device='auto' or 'cpu'")
    return resolved


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` and restore the previous count (``None`` or 0: no
    change). Small networks and small tensor ops run much faster on one CPU thread: on a busy 2-core machine two
    threads made a training step about 6 times slower (measured in this project's first build)."""
    if not threads:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def device_name(device: torch.device) -> str:
    """A human-readable name: ``'cpu (x86_64, 2 threads)'`` or the GPU's product name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"cpu ({platform.machine()}, {threads} thread{'' if threads == 1 else 's'})"


@functools.cache
def git_commit() -> str | None:
    """The commit of the checkout this process runs from, with ``+dirty`` when tracked files differ from it, or
    ``None`` outside a git checkout.

    Read once per process, at its first call (the experiment commands call it before any work), so a long run
    names the code it started with even when the checkout moves on while it runs."""
    here = PACKAGE
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here,
                             timeout=5, check=True)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", str(here)],
                                 capture_output=True, text=True, cwd=here, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return (commit + ("+dirty" if changed.stdout.strip() else "")) or None


def versions() -> dict[str, str]:
    """Installed versions of Python and the packages a result depends on."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def environment(device: str | torch.device = "cpu") -> dict:
    """The record stored with every result: versions, device (type and name) and git commit."""
    resolved = resolve_device(device)
    return {"versions": versions(), "device": resolved.type, "device_name": device_name(resolved),
            "commit": git_commit()}
