"""Bad input to the public entry points: each raises the documented exception with a clear one-line message.

One table, :data:`BAD_INPUTS`: a row is ``pytest.param(entry_point, call(*args, **kwargs), exception, regex,
id=...)``; the test calls ``entry_point(*args, **kwargs)`` and requires ``exception`` with a message that
``re.search`` matches ``regex``. A new entry point joins by appending rows (see the sections below).

Arguments that must be files are :class:`Files` placeholders: the test writes their bytes under ``tmp_path`` and
passes the path instead, and ``{path}`` in the regex stands for that path (escaped).
"""

from __future__ import annotations

import gzip
import math
import pickle
import re
import struct
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from fg_analysis import aggregate, checks, jvp, metrics, tangents, theory
from fg_analysis.nets import data
from fg_analysis.runs.cache import ResultsCache
from fg_analysis.estimator import ForwardGradient, forward_gradient, module_objective
from fg_analysis.optimize import minimize
from fg_analysis.nets.training import make_optimizer, train


def _frozen_net() -> torch.nn.Module:
    net = torch.nn.Linear(2, 2)
    net.requires_grad_(False)
    return net


@dataclass(frozen=True)
class Files:
    """Files to write under ``tmp_path`` (relative path → bytes); the argument becomes ``tmp_path / pick``."""

    contents: dict[str, bytes]
    pick: str = ""


def call(*args, **kwargs) -> tuple[tuple, dict]:
    """The bad arguments of a row, as they would be written in the call."""
    return args, kwargs


def idx_bytes(array: np.ndarray, type_byte: int = 0x08) -> bytes:
    """An IDX file, written independently of the reader: magic 00 00 type ndim, big-endian uint32 sizes, data."""
    dtypes = {0x08: ">u1", 0x0C: ">i4"}
    header = struct.pack(">BBBB", 0, 0, type_byte, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=dtypes[type_byte]).tobytes()


def mnist_files(test_labels: np.ndarray) -> Files:
    """A complete MNIST folder (2 train, len(test_labels) test images) under ``mnist/`` with the given test labels."""
    n_test = len(test_labels)
    return Files({
        "mnist/train-images-idx3-ubyte": idx_bytes(np.zeros((2, 28, 28), np.uint8)),
        "mnist/train-labels-idx1-ubyte": idx_bytes(np.array([3, 4], np.uint8)),
        "mnist/t10k-images-idx3-ubyte": idx_bytes(np.zeros((n_test, 28, 28), np.uint8)),
        "mnist/t10k-labels-idx1-ubyte": idx_bytes(test_labels.astype(np.uint8)),
    })


def cifar_files(bad_batch: bytes) -> Files:
    """CIFAR-10 pickles under ``cifar10/`` whose ``data_batch_2`` holds ``bad_batch``."""
    good = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]})
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return Files({f"cifar10/{name}": bad_batch if name == "data_batch_2" else good for name in names})


IDX_2x3 = idx_bytes(np.zeros((2, 3), np.uint8))
V2 = torch.eye(4, dtype=torch.float64)[:2]  # two good tangents in R^4
D2 = torch.ones(2, dtype=torch.float64)
EMPTY_V, EMPTY_D = torch.zeros(0, 4), torch.zeros(0)
NAN = float("nan")
COUNT = "must be a positive integer"
FLOATING = "must be a real floating-point tensor; got dtype"
REAL = r"must be a real \(floating-point or integer\) tensor; got dtype"
NOT_FLOATING = (torch.bool, torch.int64, torch.complex128)  # what the engine refuses as tangents or derivatives


def _squares(x: torch.Tensor) -> torch.Tensor:
    """A function of the parameters for the engine's rows: ``|x|²``."""
    return (x ** 2).sum()


def _dtype(dtype: torch.dtype) -> str:
    """``dtype`` as a message writes it (``torch.bool``), escaped for a regex."""
    return re.escape(str(dtype))


def _id(dtype: torch.dtype) -> str:
    """``dtype`` in a row id: ``bool``, ``int64``, ``complex128``."""
    return str(dtype).removeprefix("torch.")

BAD_INPUTS = [
    # ---------------------------------------------------------------- tangents
    pytest.param(tangents.Normal().sample, call(0, 4), ValueError, rf"number of tangents k {COUNT}; got k=0$",
                 id="tangents-k0"),
    pytest.param(tangents.Normal().sample, call(2.5, 4), ValueError, r"got k=2\.5$", id="tangents-k-float"),
    pytest.param(tangents.Normal().sample, call(NAN, 4), ValueError, r"got k=nan$", id="tangents-k-nan"),
    pytest.param(tangents.Rademacher().sample, call(True, 4), ValueError, r"got k=True$", id="tangents-k-bool"),
    pytest.param(tangents.Orthonormal().sample, call(2, np.float64(4.5)), ValueError, rf"dimension n {COUNT}",
                 id="tangents-n-float"),
    pytest.param(tangents.Normal().sample, call(2, 4, batch_shape=(2.5,)), ValueError,
                 r"batch_shape must be a tuple of non-negative integers", id="tangents-batch-shape"),
    *[pytest.param(tangents.Normal().sample, call(2, 4, dtype=dtype), ValueError,
                   rf"^dtype must be a real floating-point torch\.dtype such as torch\.float32; "
                   rf"got dtype={_dtype(dtype)}$", id=f"tangents-dtype-{_id(dtype)}") for dtype in NOT_FLOATING],
    pytest.param(tangents.Normal().sample, call(2, 4, dtype="float32"), ValueError, r"got dtype='float32'$",
                 id="tangents-dtype-string"),
    pytest.param(tangents.Orthonormal().sample, call(2, 4, out=torch.empty(2, 4, dtype=torch.bool)), ValueError,
                 rf"^out {FLOATING} torch\.bool: pass float32 or float64", id="tangents-out-bool"),
    pytest.param(tangents.Normal().sample, call(2, 4, out=np.empty((2, 4))), ValueError,
                 r"^out must be a torch\.Tensor; got ndarray$", id="tangents-out-array"),
    pytest.param(tangents.Orthonormal().sample, call(5, 4), ValueError, r"at most n orthonormal .*k=5 for n=4",
                 id="tangents-orthonormal-k>n"),
    pytest.param(tangents.StandardBasis().sample, call(5, 4), ValueError, r"k=5 for n=4", id="tangents-basis-k>n"),
    pytest.param(tangents.FixedAngle, call(theta=0.0), ValueError, r"theta must lie in \(0, 90\]",
                 id="tangents-theta-0"),
    pytest.param(tangents.FixedAngle, call(theta=True), ValueError, r"theta must be a finite number",
                 id="tangents-theta-bool"),
    pytest.param(tangents.OrthogonalScaled, call(max_length=math.inf), ValueError, r"max_length must be a finite",
                 id="tangents-max-length-inf"),
    pytest.param(tangents.tangent_law, call("gaussian"), ValueError, r"unknown tangent law 'gaussian'",
                 id="tangents-unknown-law"),
    pytest.param(tangents.tangent_law, call("normal", theta=3.0), ValueError, r"bad options for tangent law",
                 id="tangents-bad-option"),
    # ---------------------------------------------------------------- aggregate
    *[pytest.param(function, call(EMPTY_V, EMPTY_D), ValueError, r"hold no tangent \(k = 0\)",
                   id=f"aggregate-{name}-k0") for name, function in aggregate.AGGREGATORS.items()],
    *[pytest.param(function, call(V2, torch.tensor([1.0, NAN], dtype=torch.float64)), ValueError,
                   r"directional derivatives d contain NaN or inf", id=f"aggregate-{name}-nan-d")
      for name, function in aggregate.AGGREGATORS.items()],
    *[pytest.param(function, call(V2 * math.inf, D2), ValueError, r"tangents V contain NaN or inf",
                   id=f"aggregate-{name}-inf-V") for name, function in aggregate.AGGREGATORS.items()],
    *[pytest.param(function, call(V2, torch.ones(3)), ValueError, r"d must have shape V\.shape\[:-1\] = \(2,\)",
                   id=f"aggregate-{name}-shape") for name, function in aggregate.AGGREGATORS.items()],
    *[pytest.param(function, call(V2.to("meta"), D2), ValueError, r"V is on meta but d is on cpu",
                   id=f"aggregate-{name}-device") for name, function in aggregate.AGGREGATORS.items()],
    *[pytest.param(function, call([[1.0, 0.0]], torch.ones(1)), ValueError, r"V must be a torch\.Tensor; got list",
                   id=f"aggregate-{name}-list") for name, function in aggregate.AGGREGATORS.items()],
    *[pytest.param(function, call(V2.to(dtype), D2), ValueError, rf"^tangents V {FLOATING} {_dtype(dtype)}: \S",
                   id=f"aggregate-{name}-V-{_id(dtype)}")
      for name, function in aggregate.AGGREGATORS.items() for dtype in NOT_FLOATING],
    *[pytest.param(function, call(V2, D2.to(dtype)), ValueError,
                   rf"^directional derivatives d {FLOATING} {_dtype(dtype)}: \S",
                   id=f"aggregate-{name}-d-{_id(dtype)}")
      for name, function in aggregate.AGGREGATORS.items() for dtype in NOT_FLOATING],
    *[pytest.param(aggregate.coefficients, call(V2.to(dtype), D2, name), ValueError,
                   rf"^tangents V {FLOATING} {_dtype(dtype)}: \S",
                   id=f"aggregate-coefficients-{name}-V-{_id(dtype)}")
      for name in aggregate.AGGREGATORS for dtype in NOT_FLOATING],
    pytest.param(aggregate.coefficients, call(V2, D2.long(), "sum"), ValueError,
                 rf"^directional derivatives d {FLOATING} torch\.int64: pass float32 or float64",
                 id="aggregate-coefficients-sum-d-int64"),
    pytest.param(aggregate.projection, call(torch.eye(2)[[0, 0]], torch.ones(2)), ValueError,
                 r"linearly independent tangents; got rank 1 < k=2", id="aggregate-projection-dependent"),
    pytest.param(aggregate.projection, call(torch.ones(3, 2), torch.ones(3)), ValueError, r"k=3 for n=2",
                 id="aggregate-projection-k>n"),
    pytest.param(aggregate.coefficients, call(EMPTY_V, EMPTY_D, "projection"), ValueError,
                 r"hold no tangent \(k = 0\)", id="aggregate-coefficients-k0"),
    pytest.param(aggregate.coefficients, call(V2, D2, "median"), ValueError,
                 r"coefficients exist for the built-in aggregators", id="aggregate-coefficients-name"),
    pytest.param(aggregate.get_aggregator, call("average"), ValueError, r"unknown aggregator 'average'",
                 id="aggregate-unknown"),
    # ---------------------------------------------------------------- theory
    pytest.param(theory.expected_cosine, call("projection", NAN, 4), ValueError, rf"^k {COUNT}; got k=nan$",
                 id="theory-cosine-k-nan"),
    pytest.param(theory.expected_cosine, call("mean", 2.5, 4), ValueError, r"got k=2\.5$",
                 id="theory-cosine-k-float"),
    pytest.param(theory.expected_cosine, call("mean", True, 4), ValueError, r"got k=True$",
                 id="theory-cosine-k-bool"),
    pytest.param(theory.expected_cosine, call("mean", [2, True], 4), ValueError,
                 r"^k must be an array of positive integers; got k\[1\]=True$", id="theory-cosine-k-list-bool"),
    pytest.param(theory.guided_expected_cosine, call(2, 65, True), ValueError,
                 r"^rho = cos\(P_U g, g\) must be a number in \[0, 1\]; got rho=True$", id="theory-guided-rho-bool"),
    pytest.param(theory.guided_expected_cos2, call(2, 65, 0.5, m=False), ValueError,
                 r"^m must be a non-negative integer; got m=False$", id="theory-guided-m-bool"),
    pytest.param(theory.expected_cosine, call("mean", 2, np.array([4, 0])), ValueError, r"got n\[1\]=0$",
                 id="theory-cosine-n-array"),
    pytest.param(theory.expected_cosine, call("median", 2, 4), ValueError, r"unknown aggregator 'median'",
                 id="theory-cosine-aggregator"),
    pytest.param(theory.cos2_parameters, call("sum", 2, 0), ValueError, r"got n=0$", id="theory-cos2-parameters"),
    pytest.param(theory.cos2_distribution, call("mean", 2, NAN), ValueError, r"got n=nan$",
                 id="theory-cos2-distribution"),
    pytest.param(theory.cosine_quantile, call("mean", 0, 4, 0.5), ValueError, r"got k=0$",
                 id="theory-quantile-k"),
    pytest.param(theory.cosine_quantile, call("mean", 2, 4, 1.5), ValueError, r"quantile level q must lie in",
                 id="theory-quantile-q"),
    pytest.param(theory.cosine_std, call("projection", 2, -3), ValueError, r"got n=-3$", id="theory-std"),
    pytest.param(theory.expected_squared_norm_ratio, call("sum", 1.5, 4), ValueError, r"got k=1\.5$",
                 id="theory-squared-norm"),
    pytest.param(theory.expected_norm_ratio, call("mean", 2, math.inf), ValueError, r"got n=inf$",
                 id="theory-norm"),
    pytest.param(theory.expected_projection_error, call("2", 4), ValueError, r"got k='2'$", id="theory-error"),
    pytest.param(theory.projection_error_bound, call(2, 8, 1.0), ValueError, r"delta must lie in \(0, 1\)",
                 id="theory-bound-delta"),
    pytest.param(theory.projection_error_bound, call(2, 8.5), ValueError, r"got n=8\.5$", id="theory-bound-n"),
    pytest.param(theory.min_tangents_for_cosine, call(0.0, 8), ValueError, r"target cosine must lie in",
                 id="theory-min-k-target"),
    pytest.param(theory.min_tangents_for_cosine, call(0.5, 8.5), ValueError, rf"^n {COUNT}; got n=8\.5$",
                 id="theory-min-k-n"),
    pytest.param(theory.min_tangents_for_cosine, call(0.5, True), ValueError, rf"^n {COUNT}; got n=True$",
                 id="theory-min-k-n-bool"),
    pytest.param(theory.expected_chi, call(0), ValueError, rf"^m {COUNT}", id="theory-chi"),
    # ---------------------------------------------------------------- checks
    pytest.param(checks.check_count, call(np.float64(2.0), "k", "number of tangents"), ValueError,
                 rf"number of tangents k {COUNT}; got k=", id="checks-count-float"),
    pytest.param(checks.check_count, call(np.bool_(True), "k", "number of tangents"), ValueError, COUNT,
                 id="checks-count-numpy-bool"),
    *[pytest.param(checks.check_real, call(torch.zeros(2, dtype=dtype), "x"), ValueError, rf"^x {FLOATING} ",
                   id=f"checks-real-{_id(dtype)}") for dtype in NOT_FLOATING],
    pytest.param(checks.check_real, call(torch.zeros(2, dtype=torch.bool), "x", integers=True), ValueError,
                 rf"^x {REAL} torch\.bool: pass float32 or float64", id="checks-real-integers-bool"),
    pytest.param(checks.check_real, call(np.zeros(2), "x"), ValueError, r"^x must be a torch\.Tensor; got ndarray$",
                 id="checks-real-array"),
    pytest.param(checks.check_floating_dtype, call(torch.int32), ValueError, r"got dtype=torch\.int32$",
                 id="checks-dtype-int"),
    pytest.param(checks.floating_dtype, call({}), ValueError, r"^params must be a tensor or a non-empty dict",
                 id="checks-params-empty"),
    pytest.param(checks.floating_dtype, call({"w": torch.ones(2), "b": torch.ones(2, dtype=torch.float16)}),
                 ValueError, r"^params must share one dtype; got torch\.float32 for 'w' and torch\.float16 for 'b'",
                 id="checks-params-mixed"),
    # ---------------------------------------------------------------- data
    pytest.param(data.load_dataset, call("imagenet"), ValueError, r"unknown data set 'imagenet'; choose one of",
                 id="data-unknown-name"),
    pytest.param(data.load_dataset, call("digits", normalization="z"), ValueError, r"normalization must be",
                 id="data-normalization"),
    pytest.param(data.load_dataset, call("digits", val_fraction=1.5), ValueError,
                 r"val_fraction must be a number in \[0, 1\); got val_fraction=1\.5$", id="data-fraction>1"),
    pytest.param(data.load_dataset, call("digits", val_fraction=-0.1), ValueError, r"got val_fraction=-0\.1$",
                 id="data-fraction-negative"),
    pytest.param(data.load_dataset, call("digits", val_fraction="0.2"), ValueError, r"got val_fraction='0\.2'$",
                 id="data-fraction-string"),
    pytest.param(data.load_dataset, call("digits", val_fraction=NAN), ValueError, r"got val_fraction=nan$",
                 id="data-fraction-nan"),
    pytest.param(data.load_dataset, call("digits", val_fraction=0.9), ValueError,
                 r"val_fraction=0\.9 and digits' test fraction 0\.2 add up to 1\.1 >= 1", id="data-fractions-sum"),
    pytest.param(data.read_idx, call(Files({"x": b"\x00\x00"}, "x")), ValueError,
                 r"^{path}: 2 bytes, too short for an IDX header", id="data-idx-empty"),
    pytest.param(data.read_idx, call(Files({"x": IDX_2x3[:7]}, "x")), ValueError,
                 r"^{path}: the IDX header announces 2 dimensions .* only 7 bytes; the file is truncated",
                 id="data-idx-header"),
    pytest.param(data.read_idx, call(Files({"x": IDX_2x3[:-1]}, "x")), ValueError,
                 r"^{path}: header says shape \(2, 3\) \(6 bytes\) but 5 bytes follow", id="data-idx-body"),
    pytest.param(data.read_idx, call(Files({"x": b"\x12\x34\x08\x01\x00\x00\x00\x00"}, "x")), ValueError,
                 r"^{path} is not an IDX file \(bad magic number 12340801\)", id="data-idx-magic"),
    pytest.param(data.read_idx, call(Files({"x.gz": gzip.compress(IDX_2x3)[:-9]}, "x.gz")), ValueError,
                 r"^{path}: the gzip data is truncated or corrupt", id="data-idx-gz"),
    pytest.param(data.read_mnist, call(Files(mnist_files(np.array([1, 12])).contents)), ValueError,
                 r"^{path}/mnist/t10k-labels-idx1-ubyte: label 12 at index 1 is outside the classes 0\.\.9",
                 id="data-mnist-labels"),
    pytest.param(data.read_mnist, call(Files({"mnist/t10k-labels-idx1-ubyte": b""})), FileNotFoundError,
                 r"MNIST files not found\. Searched: {path}/mnist", id="data-mnist-missing"),
    pytest.param(data.read_cifar10, call(Files(cifar_files(b"\x80\x04\x95truncated").contents)), ValueError,
                 r"^{path}/cifar10/data_batch_2 could not be unpickled .*truncated or corrupt", id="data-cifar-pickle"),
    pytest.param(data.read_cifar10, call(Files(cifar_files(pickle.dumps(
                 {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, -1]})).contents)), ValueError,
                 r"^{path}/cifar10/data_batch_2: label -1 at index 1 is outside the classes 0\.\.9",
                 id="data-cifar-labels"),
    pytest.param(lambda *a, **k: next(data.batches(*a, **k)), call(torch.zeros(3, 1), torch.zeros(3), 0,
                 shuffle=False), ValueError, rf"batch size batch_size {COUNT}; got batch_size=0$", id="data-batches"),
    pytest.param(data.split_indices, call(10, (6, 5), generator=torch.Generator()), ValueError,
                 r"must be non-negative and sum to n=10", id="data-split-sizes"),
    # ---------------------------------------------------------------- estimator, optimize, training, cache
    pytest.param(forward_gradient, call(lambda x: x ** 2, torch.ones(3), k=2), ValueError,
                 r"f must return a scalar \(one number\); got a tensor of shape \(3,\)", id="estimator-vector-f"),
    pytest.param(forward_gradient, call(lambda x: (x ** 2).sum() * 1j, torch.ones(3), k=2), ValueError,
                 r"f must return a real scalar; got a complex value", id="estimator-complex-f"),
    pytest.param(forward_gradient, call(lambda x: 3.0, torch.ones(3), k=2), TypeError,
                 r"f must return a scalar tensor; got float", id="estimator-float-f"),
    pytest.param(forward_gradient, call(lambda x: (x ** 2).sum(), torch.ones(3), k=0), ValueError,
                 rf"number of tangents k {COUNT}; got k=0$", id="estimator-k0"),
    pytest.param(forward_gradient, call(lambda x: (x ** 2).sum(), torch.ones(3), k=2.0), ValueError,
                 rf"number of tangents k {COUNT}; got k=2\.0$", id="estimator-float-k"),
    pytest.param(forward_gradient, call(lambda x: (x ** 2).sum(), torch.ones(3), k=2, mode="reverse"), ValueError,
                 r"unknown JVP mode 'reverse'; choose one of \('forward', 'sequential', 'oracle'\)", id="estimator-mode"),
    pytest.param(forward_gradient, call(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)),
                                        args=(torch.ones(4, 2), torch.zeros(4, dtype=torch.long)),
                                        loss_fn=torch.nn.functional.cross_entropy, k=2), ValueError,
                 r"BatchNorm in train mode .* call model\.eval\(\), or use mode='sequential' or mode='oracle'",
                 id="estimator-batchnorm-train"),
    pytest.param(forward_gradient, call(_frozen_net(), args=(torch.ones(4, 2), torch.zeros(4, dtype=torch.long)),
                                        loss_fn=torch.nn.functional.cross_entropy, k=2), ValueError,
                 r"no trainable parameters", id="estimator-all-frozen"),
    pytest.param(lambda f, x: forward_gradient(f, x, k=1, mode="forward"), call(lambda x: x.sum() / 0 * 0,
                 torch.ones(3)), FloatingPointError, r"directional derivatives contain NaN or inf", id="estimator-nan"),
    *[pytest.param(forward_gradient, call(lambda x: (x.double() ** 2).sum(), torch.ones(3, dtype=dtype), k=2,
                                          mode=mode), ValueError, rf"^params {FLOATING} {_dtype(dtype)}: \S",
                   id=f"estimator-params-{_id(dtype)}-{mode}") for dtype in NOT_FLOATING for mode in jvp.MODES],
    pytest.param(ForwardGradient(2, generator=torch.Generator()).step, call(_squares, torch.ones(3, dtype=torch.bool),
                 lr=0.1), ValueError, rf"^params {FLOATING} torch\.bool: ", id="estimator-step-bool"),
    pytest.param(forward_gradient, call(lambda p: (p["a"] ** 2).sum() + (p["b"] ** 2).sum(),
                                        {"a": torch.ones(2), "b": torch.ones(2, dtype=torch.float64)}, k=2,
                                        mode="oracle"), ValueError,
                 r"^params must share one dtype; got torch\.float32 for 'a' and torch\.float64 for 'b': convert",
                 id="estimator-params-mixed"),
    pytest.param(forward_gradient, call(_squares, {"w": torch.ones(2), "i": torch.ones(2, dtype=torch.int64)}, k=2,
                                        per_tensor=True), ValueError, rf"^params\['i'\] {FLOATING} torch\.int64: ",
                 id="estimator-params-dict-int"),
    pytest.param(ForwardGradient(2).sample, call(4, dtype=torch.int32), ValueError,
                 r"^dtype must be a real floating-point torch\.dtype .*got dtype=torch\.int32$",
                 id="estimator-sample-int-dtype"),
    *[pytest.param(forward_gradient, call(value, torch.ones(3), k=2, mode=mode), ValueError,
                   rf"^f must return a floating-point value; got dtype torch\.{kind}, whose derivatives are zero",
                   id=f"estimator-{kind}-f-{mode}")
      for kind, value in (("int64", lambda x: (x ** 2).sum().round().long()), ("bool", lambda x: (x ** 2).sum() > 1))
      for mode in jvp.MODES],
    pytest.param(module_objective, call(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2).double()),
                                        torch.nn.functional.mse_loss, flat=True), ValueError,
                 r"^parameters must share one dtype; got torch\.float32 for '0\.weight' and torch\.float64 for "
                 r"'1\.weight'", id="estimator-module-mixed"),
    pytest.param(module_objective, call(torch.nn.Linear(2, 2, dtype=torch.complex64), torch.nn.functional.mse_loss),
                 ValueError, rf"^parameters\['weight'\] {FLOATING} torch\.complex64: complex values are not supported",
                 id="estimator-module-complex"),
    # ---------------------------------------------------------------- jvp
    *[pytest.param(function, call(_squares, torch.ones(3), torch.eye(3, dtype=dtype)), ValueError,
                   rf"^tangents {FLOATING} {_dtype(dtype)}: \S", id=f"jvp-{function.__name__}-{_id(dtype)}")
      for function in (jvp.jvps, jvp.sequential_jvps) for dtype in NOT_FLOATING],
    *[pytest.param(function, call(_squares, torch.ones(3), torch.eye(3, dtype=torch.float64)), ValueError,
                   r"^tangents have dtype torch\.float64 but the parameters torch\.float32: sample them in that dtype",
                   id=f"jvp-{function.__name__}-mixed") for function in (jvp.jvps, jvp.sequential_jvps)],
    pytest.param(jvp.jvps, call(_squares, torch.ones(3, dtype=torch.int64), torch.eye(3)), ValueError,
                 rf"^params {FLOATING} torch\.int64: ", id="jvp-jvps-int-params"),
    pytest.param(jvp.gradient, call(_squares, torch.ones(3, dtype=torch.bool)), ValueError,
                 rf"^params {FLOATING} torch\.bool: ", id="jvp-gradient-bool-params"),
    pytest.param(jvp.oracle_jvps, call(torch.ones(3, dtype=torch.int64), torch.eye(3)), ValueError,
                 rf"^the gradient {FLOATING} torch\.int64: ", id="jvp-oracle-int-gradient"),
    pytest.param(jvp.oracle_jvps, call(torch.ones(3), torch.eye(3, dtype=torch.bool)), ValueError,
                 rf"^tangents {FLOATING} torch\.bool: ", id="jvp-oracle-bool-tangents"),
    pytest.param(jvp.oracle_jvps, call(torch.ones(3), torch.eye(3, dtype=torch.float64)), ValueError,
                 r"^tangents have dtype torch\.float64 but the gradient torch\.float32", id="jvp-oracle-mixed"),
    pytest.param(jvp.per_tensor_jvps, call(lambda p: _squares(p["a"]), {"a": torch.ones(2)},
                                           {"a": torch.eye(2, dtype=torch.float64)}), ValueError,
                 r"^tangents have dtype torch\.float64 but params\['a'\] torch\.float32", id="jvp-per-tensor-mixed"),
    pytest.param(jvp.per_tensor_jvps, call(lambda p: _squares(p["a"]), {"a": torch.ones(2)},
                                           {"a": torch.eye(2, dtype=torch.bool)}), ValueError,
                 rf"^tangents\['a'\] {FLOATING} torch\.bool: ", id="jvp-per-tensor-bool"),
    # ---------------------------------------------------------------- metrics
    *[pytest.param(function, call(torch.tensor([True, False]), torch.ones(2)), ValueError,
                   rf"^{first} {REAL} torch\.bool: pass float32 or float64", id=f"metrics-{function.__name__}-bool")
      for function, first in ((metrics.cosine, "the first argument"), (metrics.norm_ratio, "the first argument"),
                              (metrics.relative_error, "the estimate"))],
    pytest.param(metrics.cosine, call(torch.ones(2), torch.tensor([1j, 0])), ValueError,
                 rf"^the second argument {REAL} torch\.complex64: complex values are not supported",
                 id="metrics-cosine-complex"),
    pytest.param(metrics.cosine, call({"w": torch.ones(2)}, {"w": np.array([True, False])}), ValueError,
                 rf"^entry 'w' of the second argument {REAL} torch\.bool: ", id="metrics-cosine-dict-bool"),
    pytest.param(metrics.relative_error, call({"w": torch.ones(2)}, {"w": torch.tensor([True, False])}), ValueError,
                 rf"^entry 'w' of the second argument {REAL} torch\.bool: ", id="metrics-relative-error-dict-bool"),
    pytest.param(minimize, call("sphere", 4, method="fg", lr=float("nan")), ValueError,
                 r"learning rate must be a positive number; got lr=nan", id="optimize-lr-nan"),
    pytest.param(minimize, call("sphere", 4, method="fg", lr=0.1, patience=0), ValueError,
                 r"patience \(steps without improvement\) patience", id="optimize-patience"),
    pytest.param(minimize, call("sphere", 4.5, method="bp", lr=0.1), ValueError, rf"dimension n {COUNT}; got n=4\.5$",
                 id="optimize-n"),
    pytest.param(lambda **k: train(**k), call(model=torch.nn.Linear(64, 10), data=None, source=None, lr=0.1,
                                            epochs=-1, generator=torch.Generator()), ValueError,
                 r"epochs must be an integer >= 0; got epochs=-1", id="train-epochs"),
    pytest.param(make_optimizer, call("sgd", [torch.zeros(1, requires_grad=True)], lr=float("inf")), ValueError,
                 r"the learning rate must be a positive number; got lr=inf", id="train-lr"),
    pytest.param(ResultsCache(published=None).get, call({"n": 1}, lambda c: None), TypeError,
                 r"configs must be dataclass instances; got dict", id="cache-config"),
]


def _write(files: Files, tmp_path):
    """Write a :class:`Files` placeholder under ``tmp_path``; the path that replaces it."""
    for relative, payload in files.contents.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(payload)
    return tmp_path / files.pick


@pytest.mark.parametrize("entry_point, arguments, exception, message", BAD_INPUTS)
def test_bad_input_is_refused_with_a_clear_message(entry_point, arguments, exception, message, tmp_path):
    args, kwargs = arguments
    args = [_write(value, tmp_path) if isinstance(value, Files) else value for value in args]
    for value in args:
        if isinstance(value, type(tmp_path)):
            message = message.replace("{path}", re.escape(str(value)))
    with pytest.raises(exception) as info:
        entry_point(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text, f"the message should be one line: {text!r}"
    assert re.search(message, text), f"{text!r} does not match {message!r}"
