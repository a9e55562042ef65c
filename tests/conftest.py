import numpy as np
import pytest

try:
    import torch
except ImportError:  # torch is an optional extra
    torch = None

BACKENDS = ["numpy"] + (["torch"] if torch is not None else [])


def to_backend(array, backend, dtype=None):
    """A copy of numpy ``array`` in ``backend`` ("numpy" or "torch")."""
    array = np.asarray(array, dtype=dtype)
    if backend == "torch":
        return torch.from_numpy(array.copy())
    return array.copy()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
