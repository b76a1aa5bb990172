"""Shared fixtures: the available backends (every test that runs kernels runs on each)."""
import os

import numpy as np
import pytest

import tessera

BACKENDS = tessera.backends()
if os.environ.get("TESSERA_TEST_BACKENDS"):
    BACKENDS = [b for b in BACKENDS if b in os.environ["TESSERA_TEST_BACKENDS"].split(",")]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def close(got, want, tol=2e-5):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    err = np.abs(got - want).max() if got.size else 0.0
    assert err <= tol * (1 + np.abs(want).max()), "max error %g" % err
