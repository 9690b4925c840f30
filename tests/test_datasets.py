"""nl.datasets: one record shape, dtypes, seeding, MNIST from npz and IDX files, clear errors."""
from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import numpy as np
import pytest

from neuralab import datasets

MNIST = Path(os.environ.get("NEURALAB_DATA", "data")) / "mnist.npz"

TABLES = {  # name -> (rows, features, classes or None)
    "digits": (1797, 64, 10),
    "iris": (150, 4, 3),
    "breast_cancer": (569, 30, 2),
    "wine": (178, 13, 3),
    "diabetes": (442, 10, None),
}


def check_record(d: datasets.Dataset) -> None:
    """What every Dataset promises, whatever it holds."""
    assert d.X_train.dtype == np.float32 and d.X_train.flags.c_contiguous
    assert len(d.X_train) == len(d.y_train)
    if d.X_test is not None:
        assert d.X_test.dtype == np.float32 and len(d.X_test) == len(d.y_test)
        assert d.X_test.shape[1:] == d.X_train.shape[1:]
    assert d.task in ("classification", "regression")
    if d.task == "classification":
        assert d.y_train.dtype == np.int64
        assert d.y_train.min() >= 0 and d.y_train.max() < len(d.target_names)
    else:
        assert d.y_train.dtype == np.float32 and d.target_names is None
    assert len(d.feature_names) == d.n_features or d.X_train.ndim > 2
    assert d.name in datasets.list_datasets() and d.description


@pytest.mark.parametrize("name", list(TABLES))
def test_sklearn_tables(name):
    rows, features, classes = TABLES[name]
    d = getattr(datasets, f"load_{name}")()
    check_record(d)
    assert d.n_samples == rows and d.n_features == features and d.n_classes == classes
    assert len(d.X_test) == int(np.ceil(rows * 0.25))  # as sklearn's train_test_split
    whole = getattr(datasets, f"load_{name}")(test_size=None)
    assert whole.X_test is None and whole.y_test is None and len(whole.X_train) == rows
    # the split is a permutation of the original rows: nothing lost, nothing duplicated
    both = np.concatenate([d.X_train, d.X_test])
    assert np.array_equal(np.unique(both, axis=0), np.unique(whole.X_train, axis=0))


def test_classification_split_is_stratified():
    d = datasets.load_iris(test_size=0.2, random_state=3)
    assert np.bincount(d.y_test).tolist() == [10, 10, 10]
    assert np.bincount(d.y_train).tolist() == [40, 40, 40]
    odd = datasets.load_breast_cancer(test_size=0.3)  # 212 malignant, 357 benign
    assert len(odd.X_test) == 171 and np.bincount(odd.y_test).tolist() == [64, 107]


def test_tables_match_sklearn_values():
    from sklearn.datasets import load_wine

    d = datasets.load_wine(test_size=None)
    ref = load_wine()
    np.testing.assert_array_equal(d.X_train, ref.data.astype(np.float32))
    np.testing.assert_array_equal(d.y_train, ref.target)
    assert d.feature_names == list(ref.feature_names)
    assert d.target_names == list(ref.target_names)


MAKERS = ["make_xor", "make_spirals", "make_circles", "make_moons", "make_blobs"]


@pytest.mark.parametrize("maker", MAKERS)
def test_synthetic_shapes_dtypes_and_seeding(maker):
    make = getattr(datasets, maker)
    d = make(n_samples=120, random_state=5)
    check_record(d)
    assert d.X_train.shape == (120, 2) and d.X_test is None
    counts = np.bincount(d.y_train)
    assert counts.max() - counts.min() <= 1, "classes should be balanced"
    again = make(n_samples=120, random_state=5)
    np.testing.assert_array_equal(d.X_train, again.X_train)
    np.testing.assert_array_equal(d.y_train, again.y_train)
    other = make(n_samples=120, random_state=6)
    assert not np.array_equal(d.X_train, other.X_train)
    gen = make(n_samples=120, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(gen.X_train, d.X_train)  # a Generator seeded alike agrees
    split = make(n_samples=120, test_size=0.25, random_state=5)
    assert split.X_train.shape == (90, 2) and split.X_test.shape == (30, 2)


def test_synthetic_does_not_touch_global_random_state():
    before = np.random.get_state()[1].copy()
    datasets.make_moons(50, random_state=None)
    datasets.make_blobs(50)
    assert np.array_equal(np.random.get_state()[1], before)


def test_xor_truth_table_and_geometry():
    d = datasets.make_xor(4, noise=0, shuffle=False)
    assert d.X_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert d.y_train.tolist() == [0, 1, 1, 0]
    noisy = datasets.make_xor(400, noise=0.1)
    corner = np.round(noisy.X_train).astype(int)  # small noise keeps each point by its corner
    assert np.array_equal(corner[:, 0] ^ corner[:, 1], noisy.y_train)


def test_circles_moons_spirals_geometry():
    c = datasets.make_circles(200, noise=0.0, factor=0.3)
    radius = np.hypot(*c.X_train.T)
    np.testing.assert_allclose(radius, np.where(c.y_train == 0, 1.0, 0.3), rtol=1e-6)
    m = datasets.make_moons(200, noise=0.0)
    outer = m.X_train[m.y_train == 0]
    np.testing.assert_allclose(np.hypot(*outer.T), 1.0, rtol=1e-6)
    assert (outer[:, 1] >= -1e-7).all()
    s = datasets.make_spirals(300, n_classes=3, noise=0.0)
    assert s.n_classes == 3 and np.hypot(*s.X_train.T).max() <= 1.0 + 1e-6
    b = datasets.make_blobs(300, centers=[[0, 0], [10, 10]], cluster_std=0.5)
    means = [b.X_train[b.y_train == k].mean(0) for k in (0, 1)]
    np.testing.assert_allclose(means, [[0, 0], [10, 10]], atol=0.2)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_samples"):
        datasets.make_moons(0)
    with pytest.raises(ValueError, match="test_size"):
        datasets.load_iris(test_size=1.5)
    with pytest.raises(ValueError, match="factor"):
        datasets.make_circles(factor=1.2)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*digits"):
        datasets.load("imagenet")


def test_load_by_name():
    names = datasets.list_datasets()
    assert {"digits", "iris", "breast_cancer", "wine", "diabetes", "xor", "spirals",
            "circles", "moons", "blobs", "mnist", "mnist1d"} <= set(names)
    d = datasets.load("Breast-Cancer", random_state=1)
    assert d.name == "breast_cancer" and d.X_test is not None
    moons = datasets.load("moons", n_samples=100)
    assert moons.X_test.shape == (25, 2)  # by name, toy problems get a test split
    assert datasets.load("gaussian", n_samples=30).name == "blobs"
    assert all(datasets.describe(n) for n in names)


# ============================================================================ MNIST
def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def fake_mnist(rng):
    return {"x_train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
            "y_train": rng.integers(0, 10, 30, dtype=np.uint8),
            "x_test": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
            "y_test": rng.integers(0, 10, 12, dtype=np.uint8)}


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_idx_files(tmp_path, gz):
    arrays = fake_mnist(np.random.default_rng(0))
    for part, (name, _) in datasets._IDX_FILES.items():
        write_idx(tmp_path / name, arrays[part], gz)
    d = datasets.load_mnist(tmp_path)
    check_record(d)
    assert d.X_train.shape == (30, 784) and d.X_test.shape == (12, 784)
    np.testing.assert_allclose(d.X_train, arrays["x_train"].reshape(30, -1) / 255, rtol=1e-6)
    np.testing.assert_array_equal(d.y_test, arrays["y_test"])
    raw = datasets.load_mnist(tmp_path, flatten=False, normalize=False)
    assert raw.X_train.shape == (30, 1, 28, 28) and raw.X_train.dtype == np.float32
    np.testing.assert_array_equal(raw.X_train[:, 0], arrays["x_train"])


def test_mnist_from_npz_via_env_and_subfolder(tmp_path, monkeypatch):
    arrays = fake_mnist(np.random.default_rng(1))
    (tmp_path / "mnist").mkdir()
    np.savez(tmp_path / "mnist" / "mnist.npz", **arrays)
    monkeypatch.setenv("NEURALAB_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    d = datasets.load_mnist()
    np.testing.assert_array_equal(d.y_train, arrays["y_train"])
    assert d.X_test.shape == (12, 784)
    monkeypatch.setenv("NEURALAB_DATA", str(tmp_path / "mnist" / "mnist.npz"))
    assert datasets.load_mnist().X_train.shape == (30, 784)


def test_mnist_absent_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURALAB_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        datasets.load_mnist()
    text = str(err.value)
    for place in ["nowhere", "data", ".neuralab/data", "NEURALAB_DATA", "mnist.npz", "never downloads"]:
        assert place in text, f"the error should mention {place!r}:\n{text}"
    assert "\n" not in text and "shared" not in text  # one short line, no folder of ours
    with pytest.raises(FileNotFoundError, match="given"):
        datasets.load_mnist(tmp_path / "given")


def test_mnist_bad_files_get_clear_errors(tmp_path):
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(KeyError, match="lacks the arrays \\['y_train', 'x_test', 'y_test'\\]"):
        datasets.load_mnist(tmp_path / "partial.npz")
    bad = tmp_path / "train-labels-idx1-ubyte"
    bad.write_bytes(bytes([0, 0, 8, 1]) + np.array([10], ">u4").tobytes() + bytes(3))
    with pytest.raises(ValueError, match="truncated or corrupt.*shape \\(10,\\)"):
        datasets.read_idx(bad)
    bad.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(bad)


@pytest.mark.skipif(not MNIST.exists(), reason="the real MNIST file is not in $NEURALAB_DATA")
def test_real_mnist_npz():
    d = datasets.load_mnist(MNIST)
    check_record(d)
    assert d.X_train.shape == (60000, 784) and d.X_test.shape == (10000, 784)
    assert 0.0 == d.X_train.min() and d.X_train.max() == 1.0
    assert np.bincount(d.y_train).tolist()[:3] == [5923, 6742, 5958]  # MNIST's class counts
    assert d.y_train[:5].tolist() == [5, 0, 4, 1, 9]


# ============================================================================ MNIST-1D
def test_mnist1d_matches_the_package_and_restores_global_state(monkeypatch, tmp_path):
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))  # mnist1d imports matplotlib
    pytest.importorskip("mnist1d")
    from mnist1d.data import get_dataset_args, make_dataset

    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    d = datasets.load_mnist1d(n_train=400, n_test=100, random_state=7)
    assert np.array_equal(np.random.get_state()[1], np_before) and random.getstate() == py_before
    check_record(d)
    assert d.X_train.shape == (400, 40) and d.X_test.shape == (100, 40)
    args = get_dataset_args()
    args.num_samples, args.seed = 500, 7
    ref = make_dataset(args)  # the package's own 80/20 split of the same 500 signals
    np.testing.assert_allclose(d.X_train, ref["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(d.y_test, ref["y_test"])
    again = datasets.load_mnist1d(n_train=400, n_test=100, random_state=7)
    np.testing.assert_array_equal(again.X_test, d.X_test)
    odd = datasets.load_mnist1d(n_train=33, n_test=4, random_state=7)
    assert odd.X_train.shape == (33, 40) and odd.X_test.shape == (4, 40)
