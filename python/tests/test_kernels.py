"""Results against numpy on every available backend, on contiguous arrays, views and device tensors."""
import numpy as np
import pytest

import tessera
from conftest import close
from kernels import ADD2D, AXPY, ISCALE, MATMUL, SOFTMAX


@pytest.fixture(scope="module")
def k():
    return {name: tessera.kernel(text) for name, text in
            (("axpy", AXPY), ("add", ADD2D), ("softmax", SOFTMAX), ("matmul", MATMUL), ("iscale", ISCALE))}


def np_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_parse_and_introspect(k):
    a = k["add"]
    assert a.name == "scaled_add"
    assert [p.name for p in a.params] == ["x", "b", "y", "s"]
    assert a.tunables == {"BM": (1, 64, 4)}
    assert "kernel scaled_add" in str(a)
    assert tessera.kernel(str(a)).source == a.source  # the printed form parses back


def test_axpy_scalar_and_config(k, backend, rng):
    x = rng.standard_normal(1000).astype(np.float32)
    y = rng.standard_normal(1000).astype(np.float32)
    want = 2.5 * x + y
    assert k["axpy"](x, y, 2.5, backend=backend, config={"B": 128}) is None
    close(y, want)


def test_positional_and_keyword(k, backend, rng):
    x = rng.standard_normal((7, 33)).astype(np.float32)
    b = rng.standard_normal(33).astype(np.float32)
    y1, y2 = np.zeros_like(x), np.zeros_like(x)
    k["add"](x, b, y1, 0.5, backend=backend)
    k["add"](s=0.5, y=y2, b=b, x=x, backend=backend, config="BM=2")
    close(y1, 0.5 * x + b)
    close(y2, y1, 0)


def test_softmax_and_matmul(k, backend, rng):
    x = rng.standard_normal((9, 50)).astype(np.float32)
    y = np.empty_like(x)
    k["softmax"](x, y, backend=backend)
    close(y, np_softmax(x))
    A = rng.standard_normal((20, 13)).astype(np.float32)
    B = rng.standard_normal((13, 17)).astype(np.float32)
    C = np.zeros((20, 17), np.float32)
    k["matmul"](A, B, C, backend=backend)
    close(C, A @ B, 1e-4)


def test_integer_scalar(k, backend):
    x = np.arange(-50, 50, dtype=np.int32)
    y = np.zeros_like(x)
    k["iscale"](x, y, -3, backend=backend)
    assert (y == -3 * x).all()


def test_f16(backend, rng):
    k = tessera.kernel("kernel half(x: f16[N], y: f16[N]) {\n  grid t in tile(N)\n  store(y[t], load(x[t]) * 0.5)\n}\n")
    x = rng.standard_normal(100).astype(np.float16)
    y = np.zeros_like(x)
    k(x, y, backend=backend)
    assert (y == x * np.float16(0.5)).all()  # halving is exact in f16


def test_views_and_non_contiguous(k, backend, rng):
    base = rng.standard_normal((40, 30)).astype(np.float32)
    xt = base.T                      # transposed view (F order)
    assert not xt.flags.c_contiguous
    y = np.zeros((30, 40), np.float32)
    k["softmax"](xt, y, backend=backend)
    close(y, np_softmax(xt))
    # stepped and reversed slices, both as input and as output
    xs = base[::3, ::-2]
    out = np.full((42, 30), 7.0, np.float32)
    ys = out[1::3, ::2][: xs.shape[0], : xs.shape[1]]
    b = np.arange(xs.shape[1], dtype=np.float32)
    k["add"](xs, b, ys, 2.0, backend=backend)
    want = np.full((42, 30), 7.0, np.float32)
    want[1::3, ::2][: xs.shape[0], : xs.shape[1]] = 2.0 * xs + b
    close(out, want)  # only the view's elements changed; the gaps between them did not
    # a broadcast (stride 0, read-only) input
    bb = np.broadcast_to(np.float32(3.0), (xs.shape[1],))
    ys2 = np.zeros(xs.shape, np.float32)
    k["add"](xs, bb, ys2, 1.0, backend=backend)
    close(ys2, xs + 3.0)


def test_in_place(k, backend, rng):
    x = rng.standard_normal((5, 64)).astype(np.float32)
    want = np_softmax(x)
    k["softmax"](x, x, backend=backend)  # the same array in and out: one device tensor
    close(x, want)


def test_device_tensors(k, backend, rng):
    x = rng.standard_normal((6, 21)).astype(np.float32)
    tx = tessera.tensor(x, backend=backend)
    ty = tessera.empty(x.shape, "f32", backend=backend)
    assert (tx.shape, tx.dtype, tx.backend) == (x.shape, np.float32, backend)
    k["softmax"](tx, ty)  # the backend comes from the tensors
    close(ty.numpy(), np_softmax(x))
    close(np.asarray(ty), np_softmax(x))
    # tensors and numpy arrays mixed in one call
    b = np.ones(21, np.float32)
    y = np.zeros_like(x)
    k["add"](tx, b, y, 1.0, backend=backend)
    close(y, x + 1)
    tz = tessera.zeros((3, 4), backend=backend)
    assert (tz.numpy() == 0).all()
    tz.write(np.ones((3, 4)))
    assert (tz.numpy() == 1).all()


def test_timing(k, backend):
    x = np.ones(64, np.float32)
    y = np.ones(64, np.float32)
    ms = k["axpy"](x, y, 1.0, backend=backend, timing=True)
    assert isinstance(ms, float) and ms >= 0


def test_kernel_from_path(tmp_path, backend):
    p = tmp_path / "neg.tile"
    p.write_text("kernel neg(x: f32[N], y: f32[N]) {\n  grid t in tile(N)\n  store(y[t], -load(x[t]))\n}\n")
    kn = tessera.kernel(path=p)
    x = np.arange(10, dtype=np.float32)
    y = np.zeros_like(x)
    kn(x, y, backend=backend)
    close(y, -x)


def test_devices_and_backends():
    names = tessera.backends()
    assert "ref" in names
    devs = tessera.devices()
    avail = {d["backend"] for d in devs if d["available"]}
    assert avail == set(names)
    for d in devs:
        if d["available"]:
            assert d["name"] and d["fingerprint"]
        else:
            assert d["why"]  # cuda/hip here: the reason they are not available
