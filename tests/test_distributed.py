"""Data-parallel training over MPI (``fit(comm=...)``) and the rank-count-free reductions.

The multi-rank cases run ``mpiexec -n P python tests/_mpi_script.py MODE DIR`` on this
machine (loopback) and compare what each rank wrote; they are skipped where mpiexec or
mpi4py is missing (``pip install neuralab[mpi]`` brings both).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import neuralab as nl
from neuralab import distributed as d

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
SCRIPT = HERE / "_mpi_script.py"

needs_mpi = pytest.mark.skipif(
    shutil.which("mpiexec") is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpiexec and mpi4py (pip install 'neuralab[mpi]')")


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    env.pop("NEURALAB_DEBUG", None)
    return env


def _mpiexec(n: int, mode: str, out: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["mpiexec", "-n", str(n), sys.executable, str(SCRIPT), mode, str(out)],
                          env=_env(), capture_output=True, text=True, timeout=timeout)


def _load_script():
    spec = importlib.util.spec_from_file_location("_mpi_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ============================================================================ without MPI
def test_import_neuralab_does_not_load_mpi4py():
    code = "import neuralab, neuralab.distributed, sys; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_shard_rows_cover_every_row_once():
    class Comm:
        def __init__(self, rank, size):
            self.rank, self.size = rank, size

        def Get_rank(self):
            return self.rank

        def Get_size(self):
            return self.size

    for n in (0, 1, 7, 1000):
        for p in (1, 2, 3, 8):
            parts = [d.shard_rows(n, Comm(r, p)) for r in range(p)]
            assert [i for part in parts for i in part] == list(range(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert d.shard_rows(5) == range(0, 5)


def test_exact_sum_is_the_correctly_rounded_sum_in_any_order():
    import math
    g = np.random.default_rng(0)
    v = np.concatenate([g.normal(size=5000) * 10.0 ** g.integers(-20, 20, 5000), [1e300, -1e300]])
    assert d.exact_sum(v) == math.fsum(v)
    assert d.exact_sum(g.permutation(v)) == math.fsum(v)
    assert d.exact_sum([1e16, 1.0, -1e16]) == 1.0
    cols = d.exact_sum(np.stack([v, -v, v * 3], axis=1), axis=0)
    assert cols.tolist() == [math.fsum(v), math.fsum(-v), math.fsum(v * 3)]
    with pytest.raises(ValueError, match="finite"):
        d.exact_sum([1.0, np.nan])


def test_mean_std_and_quantiles_match_numpy():
    g = np.random.default_rng(1)
    X = g.normal(size=(999, 3)) * [1.0, 1e6, 1e-6] + [0.0, 3e7, 1.0]
    mean, std = d.mean_and_std(X)
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(std, X.std(axis=0), rtol=1e-12)
    for values in (X[:, 0], X[:, 1], -np.abs(X[:, 0]), g.integers(0, 5, 100).astype(float), [2.5]):
        q = [0.0, 0.1, 0.25, 0.5, 0.9, 1.0]
        assert d.quantiles(values, q).tolist() == np.quantile(values, q).tolist()
        assert d.quantiles(values, 0.5)[0] == np.median(values)
    assert d.quantiles([1.0, np.nan, 3.0], 0.5)[0] == 2.0
    assert d.merge_counts({"b": 2, "a": 1}) == {"a": 1, "b": 2}


def test_data_parallel_needs_a_communicator():
    with pytest.raises(TypeError, match="MPI communicator"):
        d.DataParallel(object())


# ============================================================================ with MPI
@needs_mpi
def test_two_ranks_equal_one_process_with_the_global_batch(tmp_path):
    result = _mpiexec(2, "same", tmp_path)
    assert result.returncode == 0, result.stderr
    w0, w1 = (np.load(tmp_path / f"weights2_{r}.npz") for r in (0, 1))
    for k in w0:  # the replicas: the same bits
        assert np.array_equal(w0[k], w1[k]), k
    run0 = json.loads((tmp_path / "run2_0.json").read_text())
    assert run0["stats"]["steps"] == 3 * 8 and run0["stats"]["bytes_per_step"] == (20 * 32 + 32 + 32 * 3 + 3 + 1) * 4

    # one process, batch 128, the same samples in the same order
    script = _load_script()
    X, y = script.data()
    model = script.model_with_start_weights()
    hist = nl.fit(model, X, y, epochs=3, batch_size=128, shuffle=False, seed=1, optimizer="adam",
                  lr=0.01, metrics=["accuracy"], verbose=0)
    # NOTE: not bit-identical: one process sums 128 rows' gradients in one matmul, two ranks
    # sum 64 each and the Allreduce adds the two partial sums, another float32 rounding
    # order; 24 Adam steps amplify the ~1e-7 relative differences to ~1e-6 at most.
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(w0[k], v, rtol=0, atol=2e-5 * max(1.0, float(np.abs(v).max())),
                                   err_msg=k)
    np.testing.assert_allclose(run0["history"]["loss"], hist.history["loss"], rtol=1e-5)
    assert run0["history"]["accuracy"] == pytest.approx(hist.history["accuracy"], abs=2 / 1024)


@needs_mpi
def test_unequal_shards_take_the_smallest_shards_steps(tmp_path):
    result = _mpiexec(2, "uneven", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "shards differ in size" in result.stderr and "rank 1: 300 samples, 5 steps" in result.stderr
    runs = [json.loads((tmp_path / f"run2_{r}.json").read_text()) for r in (0, 1)]
    assert runs[0]["steps_per_rank"] == [8, 5]
    assert runs[0]["stats"]["steps"] == runs[1]["stats"]["steps"] == 3 * 5
    assert runs[0]["history"] == runs[1]["history"]  # reduced: the same numbers on each rank
    assert "val_loss" in runs[0]["history"]
    w0, w1 = (np.load(tmp_path / f"weights2_{r}.npz") for r in (0, 1))
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)


@needs_mpi
@pytest.mark.parametrize("mode, expected", [
    ("fault_step", "rank 1 of 2: RuntimeError: a step failed on purpose"),
    ("fault_shard", "rank 1 of 2: ValueError: linear: input has 19 features"),
])
def test_an_error_on_one_rank_ends_every_rank_and_names_it(tmp_path, mode, expected):
    result = _mpiexec(2, mode, tmp_path, timeout=60)  # a hang fails here
    # within 30 s of the ranks being ready to train, far below the 60 s that reads as a hang
    # (start-up under load is not the fault's)
    ready = max(float(p.read_text()) for p in tmp_path.glob("ready_*"))
    assert time.time() - ready < 30
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("weights*"))


@needs_mpi
def test_replicas_that_drift_apart_stop_every_rank_with_a_clear_error(tmp_path):
    result = _mpiexec(2, "diverge", tmp_path, timeout=60)
    assert result.returncode == 3, result.stderr
    for r in (0, 1):
        # nudged after step 2; the checksums are compared every 2 steps
        assert f"rank {r}: DistributedError: the model replicas differ after 4 steps: the " \
               f"weights of rank(s) [1] are not rank 0's" in result.stderr


@needs_mpi
def test_ctrl_c_on_rank_0_stops_every_rank_after_the_same_step(tmp_path):
    proc = subprocess.Popen(["mpiexec", "-n", "2", sys.executable, str(SCRIPT), "sigint",
                             str(tmp_path)], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        marker = tmp_path / "epoch1_0"
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), proc.communicate(timeout=5)
        time.sleep(0.1)
        os.kill(int(marker.read_text()), signal.SIGINT)  # rank 0 alone, not mpiexec
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    runs = [json.loads((tmp_path / f"run2_{r}.json").read_text()) for r in (0, 1)]
    assert runs[0]["interrupted"] and not runs[1]["interrupted"]
    steps = runs[0]["stats"]["steps"]
    assert steps == runs[1]["stats"]["steps"] and 8 < steps < 200 * 8
    w0, w1 = (np.load(tmp_path / f"weights2_{r}.npz") for r in (0, 1))
    assert all(np.array_equal(w0[k], w1[k]) for k in w0)


@needs_mpi
def test_preprocessing_statistics_are_the_same_bits_on_1_2_and_3_ranks(tmp_path):
    results = {}
    for n in (1, 2, 3):
        out = _mpiexec(n, "prep", tmp_path)
        assert out.returncode == 0, out.stderr
        ranks = [json.loads((tmp_path / f"prep{n}_{r}.json").read_text()) for r in range(n)]
        assert [r["rows"] for r in ranks] == [[i * 1001 // n, (i + 1) * 1001 // n] for i in range(n)]
        for r in ranks:  # every rank holds the same answer
            assert {k: v for k, v in r.items() if k != "rows"} == \
                   {k: v for k, v in ranks[0].items() if k != "rows"}
        results[n] = {k: v for k, v in ranks[0].items() if k != "rows"}
    assert results[1] == results[2] == results[3]
    # and they are the whole data's numbers
    g = np.random.default_rng(3)
    X = np.concatenate([g.normal(size=(1001, 3)) * [1.0, 1e6, 1e-6] + [0.0, 3e7, 1.0],
                        g.integers(0, 9, size=(1001, 1))], axis=1)
    cats = np.array(["oslo", "bergen", "tromsø", "bodø"])[g.integers(0, 4, 1001)]
    one = results[1]
    np.testing.assert_allclose([float.fromhex(v) for v in one["mean"]], X.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose([float.fromhex(v) for v in one["std"]], X.std(axis=0), rtol=1e-12)
    assert [float.fromhex(v) for v in one["q"]] == np.quantile(X[:, 0], [0, 0.1, 0.5, 0.75, 1]).tolist()
    assert float.fromhex(one["median3"]) == np.median(X[:, 3])
    uniq, counts = np.unique(cats, return_counts=True)
    assert one["counts"] == dict(zip(uniq.tolist(), counts.tolist()))
