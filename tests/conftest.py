"""Shared test setup: a private matplotlib config dir, and skipping GPU tests without a GPU."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Data the tests read (MNIST, SMS spam, the tabular suite) is found through NEURALAB_DATA, as
# users' scripts find theirs; the checkout's sibling folder shared/data holds it in CI.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "NEURALAB_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["NEURALAB_DATA"] = str(_SHARED)

# matplotlib writes a font cache under MPLCONFIGDIR; keep it out of the user's home
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="neuralab-mpl-"))


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU with CuPy (skipped otherwise)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config, items):
    from neuralab.backend import cuda_is_available

    if cuda_is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU with CuPy on this machine")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
