"""When ``fit`` imports numba: a small job never waits for it, a large one (or small ones
adding up) does, and the weights are the same bits either way."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

# Trains a 64-64-10 net for one epoch (a small job: 4,810 values x 29 steps) in a fresh
# process, then prints whether numba got imported and a digest of the weights.
SCRIPT = r"""
import json, sys, hashlib
import numpy as np, neuralab as nl
from neuralab import kernels, nn
if len(sys.argv) > 1:
    kernels.WORTH_LOADING = float(sys.argv[1])
if len(sys.argv) > 2:
    import neuralab.kernels.numba_impl  # numba already imported before the fit
rng = np.random.default_rng(0)
X = rng.standard_normal((900, 64)).astype(np.float32)
y = (X[:, 0] > 0).astype(np.int64)
out = []
for job in range(2):
    m = nn.Sequential(nn.Linear(64, 64, rng=np.random.default_rng(1)), nn.ReLU(),
                      nn.Linear(64, 10, rng=np.random.default_rng(2)))
    nl.fit(m, X, y, epochs=1, batch_size=32, seed=0, verbose=0)
    digest = hashlib.sha256(b"".join(p.data.tobytes() for p in m.parameters())).hexdigest()
    out.append(["numba" in sys.modules, digest])
print(json.dumps(out))
"""


def _run(*args: str) -> list:
    env = {k: v for k, v in os.environ.items() if k != "NEURALAB_KERNELS"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_small_fit_does_not_import_numba():
    (first, d1), (second, d2) = _run()
    assert not first and not second
    assert d1 == d2


def test_jobs_that_add_up_import_numba_with_the_same_bits():
    small = _run()
    # 4,810 values x 29 steps = 139,490 per job: the second job passes a threshold of 2e5
    (first, d1), (second, d2) = _run("2e5")
    assert not first and second
    assert d1 == d2 == small[0][1]  # numba's kernels gave the NumPy reference's weights


def test_numba_already_imported_is_used():
    (first, d1), (_, d2) = _run("3e8", "preload")
    assert first
    assert d1 == d2 == _run()[0][1]


# Batches of unknown number (a generator): the job's work is counted epoch by epoch.
STREAM = r"""
import sys
import numpy as np, neuralab as nl
from neuralab import kernels, nn
kernels.WORTH_LOADING = float(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.standard_normal((320, 64)).astype(np.float32)
y = (X[:, 0] > 0).astype(np.int64)
seen = []

class Watch(nl.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        seen.append("numba" in sys.modules)

def batches():
    for s in range(0, 320, 32):
        yield X[s:s + 32], y[s:s + 32]

m = nn.Sequential(nn.Linear(64, 64, rng=np.random.default_rng(1)), nn.ReLU(),
                  nn.Linear(64, 10, rng=np.random.default_rng(2)))
nl.fit(m, batches, epochs=3, verbose=0, seed=0, callbacks=[Watch()])
print(seen)
"""


def test_batches_of_unknown_number_load_numba_once_their_epochs_add_up():
    env = {k: v for k, v in os.environ.items() if k != "NEURALAB_KERNELS"}
    # 4,810 values x 10 batches = 48,100 an epoch: a threshold of 60,000 lifts after epoch 2
    out = subprocess.run([sys.executable, "-c", STREAM, "6e4"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    # epoch 1: 48,100 counted, no numba; epoch 2 brings the count past 6e4, and numba is
    # imported right after its last batch (the thread policy sets numba's thread count)
    assert out.stdout.strip().splitlines()[-1] == "[False, True, True]"
