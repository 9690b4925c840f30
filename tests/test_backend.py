"""Devices: NumPy on the CPU, CuPy on a GPU through the same code; clear errors without one."""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import backend
from neuralab import functional as F


def test_cpu_uses_numpy():
    x = nl.tensor([1.0, 2.0], device="cpu")
    assert isinstance(x.data, np.ndarray) and x.device == "cpu"
    assert backend.get_array_module("cpu") is np
    assert backend.xp_of(x.data) is np


@pytest.mark.parametrize("spelling", ["cpu", "CPU", None])
def test_device_spellings_for_cpu(spelling):
    assert backend.normalize_device(spelling) == "cpu"


@pytest.mark.parametrize("spelling", ["cuda", "cuda:0", "gpu"])
def test_device_spellings_for_cuda(spelling):
    assert backend.normalize_device(spelling) == "cuda"


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="'tpu'.*'cpu' or 'cuda'"):
        nl.tensor([1.0], device="tpu")


@pytest.mark.skipif(backend.cuda_is_available(), reason="a GPU is present")
def test_cuda_without_cupy_gpu_raises_clear_runtime_error():
    with pytest.raises(RuntimeError, match="device='cuda'.*(CuPy|GPU)"):
        nl.tensor([1.0, 2.0], device="cuda")
    with pytest.raises(RuntimeError, match="device='cuda'"):
        nl.zeros(2, 3, device="cuda")
    with pytest.raises(RuntimeError, match="device='cuda'"):
        nl.tensor([1.0]).to("cuda")
    assert backend.cuda_is_available() is False


def test_default_dtype_can_be_changed_and_restored():
    try:
        backend.set_default_dtype("float64")
        assert nl.tensor([1.0]).dtype == np.float64
    finally:
        backend.set_default_dtype("float32")
    assert nl.tensor([1.0]).dtype == np.float32
    with pytest.raises(TypeError, match="float"):
        backend.set_default_dtype("int32")


# --------------------------------------------------------------------------- GPU (skipped here)
def _train_step(device):
    rng = np.random.default_rng(0)
    w = nl.tensor(rng.standard_normal((4, 3)), requires_grad=True, device=device)
    b = nl.tensor(np.zeros(4), requires_grad=True, device=device)
    x = nl.tensor(rng.standard_normal((5, 3)), device=device)
    y = nl.tensor(np.array([0, 3, 1, 1, 2]), device=device)
    h = F.relu(F.linear(x, w, b))
    loss = F.cross_entropy(h, y) + (h[np.array([0, 0, 2])] ** 2).mean()
    loss.backward()
    return loss.item(), w.grad, b.grad


@pytest.mark.gpu
def test_gpu_step_runs_on_cupy_and_matches_cpu():
    import cupy

    loss_gpu, gw, gb = _train_step("cuda")
    assert isinstance(gw, cupy.ndarray) and isinstance(gb, cupy.ndarray)
    loss_cpu, cw, cb = _train_step("cpu")
    assert abs(loss_gpu - loss_cpu) < 1e-5
    np.testing.assert_allclose(cupy.asnumpy(gw), cw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(cupy.asnumpy(gb), cb, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
def test_gpu_tensor_moves_between_devices():
    x = nl.tensor([1.0, 2.0], device="cuda")
    assert x.device == "cuda"
    back = x.to("cpu")
    assert back.device == "cpu" and back.numpy().tolist() == [1.0, 2.0]


@pytest.mark.gpu
def test_gradcheck_on_gpu():
    x = nl.tensor(np.random.default_rng(0).standard_normal((2, 3)), device="cuda", requires_grad=True)
    assert nl.gradcheck(lambda t: F.gelu(t).sum() + F.softmax(t, axis=1)[:, 0].sum(), x)
