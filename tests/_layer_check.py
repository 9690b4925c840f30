"""Shared helpers for the conv/recurrent/attention tests: compare with PyTorch in float64."""
from __future__ import annotations

import numpy as np

import neuralab as nl

RTOL, ATOL = 1e-5, 1e-9


def t64(a):
    """A float64 neuralab tensor that takes a gradient."""
    return nl.tensor(np.asarray(a, dtype=np.float64), dtype="float64", requires_grad=True)


def torch64(a):
    import torch
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    ours = ours.data if hasattr(ours, "data") and not isinstance(ours, np.ndarray) else ours
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def copy_to_torch(module, torch_module):
    """Load our state dict into the torch module; the keys must be identical."""
    import torch
    ours = module.state_dict()
    assert list(ours) == list(torch_module.state_dict()), (list(ours), list(torch_module.state_dict()))
    torch_module.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.items()})


def compare_params(module, torch_module):
    """Every parameter's gradient matches PyTorch's (same names, same order)."""
    theirs = dict(torch_module.named_parameters())
    names = [n for n, _ in module.named_parameters()]
    assert names == list(theirs), (names, list(theirs))
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        close(p.grad, theirs[name].grad, f"grad of {name}")
