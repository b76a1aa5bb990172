"""DLPack round trips with numpy (and PyTorch when it is installed)."""
import numpy as np
import pytest

import tessera
from conftest import close
from kernels import SOFTMAX

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install torch to run the DLPack tests with it)")


def test_export_to_numpy(backend):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = tessera.tensor(x, backend=backend)
    assert t.__dlpack_device__() == (1, 0)  # kDLCPU: the export is a host copy
    y = np.from_dlpack(t)
    assert y.shape == (3, 4) and y.dtype == np.float32
    close(y, x, 0)


def test_export_refuses_zero_copy_request(backend):
    t = tessera.tensor(np.ones(4, np.float32), backend=backend)
    with pytest.raises(BufferError):
        t.__dlpack__(copy=False)


def test_import_from_numpy(backend):
    x = np.linspace(-1, 1, 10, dtype=np.float32)
    t = tessera.from_dlpack(x, backend=backend)
    assert isinstance(t, tessera.Tensor) and t.backend == backend
    close(t.numpy(), x, 0)
    assert tessera.from_dlpack(t, backend=backend) is t  # already there: no copy
    back = tessera.from_dlpack(np.from_dlpack(t), backend=backend)
    close(back.numpy(), x, 0)


def test_import_wrong_object():
    with pytest.raises(tessera.BadArgsError):
        tessera.from_dlpack([1, 2, 3])


class DLPackOnly:
    """A producer that only speaks DLPack (no numpy array interface), like a foreign framework."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, **kw):
        return self.a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def test_kernel_writes_into_dlpack_memory(backend):
    # A DLPack producer's CPU memory is used in place: the output lands in it without a copy.
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    y = np.zeros_like(x)
    tessera.kernel(SOFTMAX)(DLPackOnly(x), DLPackOnly(y), backend=backend)
    e = np.exp(x - x.max(1, keepdims=True))
    close(y, e / e.sum(1, keepdims=True))


@needs_torch
def test_torch_round_trip(backend):
    x = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    t = tessera.from_dlpack(x, backend=backend)
    close(t.numpy(), x.numpy(), 0)
    y = torch.from_dlpack(t)
    assert torch.equal(y, x)


@needs_torch
def test_torch_tensors_as_kernel_arguments(backend):
    x = torch.randn(5, 16)
    y = torch.zeros(5, 16)
    tessera.kernel(SOFTMAX)(x, y, backend=backend)  # written in place, no copy of y on the host
    assert torch.allclose(y, torch.softmax(x, dim=1), atol=1e-5)
