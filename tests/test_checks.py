"""The engine's shared input checks against the plain rule they state: which dtypes are numbers for the engine
(real floating point; integers too where asked), and that a check reads metadata only."""

import pytest
import torch

from fg_analysis.checks import check_floating_dtype, check_real, floating_dtype

FLOATING = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INTEGER = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
NEITHER = [torch.bool, torch.complex64, torch.complex128]


@pytest.mark.parametrize("dtype", FLOATING + INTEGER + NEITHER, ids=str)
def test_check_real_accepts_exactly_the_real_dtypes_asked_for(dtype):
    tensor = torch.zeros(2, dtype=dtype)
    for integers, accepted in ((False, FLOATING), (True, FLOATING + INTEGER)):
        if dtype in accepted:
            assert check_real(tensor, "x", integers=integers) is tensor
        else:
            with pytest.raises(ValueError, match=rf"^x must be a real .*tensor; got dtype {dtype}: ") as info:
                check_real(tensor, "x", integers=integers)
            assert "\n" not in str(info.value)
            assert ("complex values are not supported" in str(info.value)) == dtype.is_complex


@pytest.mark.parametrize("dtype", FLOATING + INTEGER + NEITHER, ids=str)
def test_check_floating_dtype_accepts_exactly_the_floating_dtypes(dtype):
    if dtype in FLOATING:
        assert check_floating_dtype(dtype) is dtype
    else:
        with pytest.raises(ValueError, match=rf"got dtype={dtype}$"):
            check_floating_dtype(dtype)


def test_checks_read_no_entries():
    """Meta tensors hold no data: the checks pass on a trillion entries, so they cost nothing per step."""
    huge = torch.empty(10 ** 12, device="meta")
    assert check_real(huge, "V") is huge
    assert floating_dtype({"w": huge, "b": torch.empty(3, device="meta")}) == torch.float32


def test_floating_dtype_of_parameters():
    assert floating_dtype(torch.ones(2, dtype=torch.float64)) == torch.float64
    assert floating_dtype({"w": torch.ones(2, 2, dtype=torch.float16), "b": torch.ones(2, dtype=torch.float16)}) \
        == torch.float16
    with pytest.raises(ValueError, match=r"^params\['b'\] must be a real floating-point tensor; got dtype torch\.int"):
        floating_dtype({"w": torch.ones(2), "b": torch.ones(2, dtype=torch.int32)})
    with pytest.raises(ValueError, match=r"^params must share one dtype; got torch\.float32 for 'w' and "
                                         r"torch\.float64 for 'v'"):
        floating_dtype({"w": torch.ones(2), "b": torch.ones(2), "v": torch.ones(2, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"^params must be a tensor or a non-empty dict of tensors; got list$"):
        floating_dtype([torch.ones(2)])
