"""tune() with its progress line and the shared database; Safetensors load/save against the reference package."""
import os
import subprocess

import numpy as np
import pytest

import tessera
from conftest import close
from kernels import ADD2D


def test_tune_quick(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))  # a private database (the library reads it per call)
    backend = "opencl" if "opencl" in tessera.backends() else "ref"
    k = tessera.kernel(ADD2D)
    r = tessera.tune(k, {"M": 64, "N": 32}, backend=backend, effort="quick", max_evals=3, budget_s=30, force=True)
    err = capsys.readouterr().err
    assert "tune scaled_add on %s" % backend in err and "candidates" in err
    assert r["best_ms"] > 0 and r["tried"] >= 1 and r["shape"] == "M=64,N=32"
    assert r["stored"]
    again = tessera.tune(k, {"M": 64, "N": 32}, backend=backend, progress=False)
    assert again["from_db"] and again["best_config"] == r["best_config"]
    cli = os.environ.get("TESSERA_TEST_CLI")
    if cli:  # the CLI reads the same database
        out = subprocess.run([cli, "tune", "--list", "--backend", backend], capture_output=True, text=True,
                             timeout=60).stdout
        assert "scaled_add" in out
    assert list((tmp_path / "tuning").glob("*.json"))
    x = np.ones((64, 32), np.float32)
    y = np.zeros_like(x)
    k(x, np.ones(32, np.float32), y, 1.0, backend=backend)  # config None: the tuned entry
    close(y, x + 1)


def test_tune_errors():
    k = tessera.kernel(ADD2D)
    with pytest.raises(tessera.InvalidArgumentError):
        tessera.tune(k, {"M": 4, "N": 4}, backend="ref", effort="huge")
    with pytest.raises(tessera.TesseraError):
        tessera.tune(k, {"M": 4}, backend="ref", progress=False)  # N missing


def test_safetensors_round_trip(tmp_path, backend):
    st = pytest.importorskip("safetensors.numpy", reason="the reference safetensors package is not installed")
    rng = np.random.default_rng(3)
    arrays = {"w": rng.standard_normal((3, 5)).astype(np.float32), "ids": np.arange(7, dtype=np.int32),
              "mask": np.array([True, False, True])}
    p = tmp_path / "a.safetensors"
    st.save_file(arrays, str(p))
    got = tessera.safetensors.load(str(p), backend=backend)
    assert set(got) == set(arrays)
    for name, a in arrays.items():
        assert isinstance(got[name], tessera.Tensor) and got[name].backend == backend
        assert (got[name].numpy() == a).all()
    q = tmp_path / "b.safetensors"
    tessera.safetensors.save(str(q), {"w": got["w"], "h": np.arange(4, dtype=np.float32)}, metadata={"format": "np"})
    back = st.load_file(str(q))
    assert (back["w"] == arrays["w"]).all() and (back["h"] == np.arange(4)).all()
