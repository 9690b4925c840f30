"""Built-in data sets: scikit-learn's small tables, 2-D toy problems, MNIST and MNIST-1D.

Every loader returns the same record, a ``Dataset``:

==================  ===========================================================================
``X_train``         float32 array, (n_train, n_features) (MNIST unflattened: (n, 1, 28, 28))
``y_train``         int64 class indices (classification) or float32 targets (regression)
``X_test``          float32 array, or None when the data set was not split (``test_size=None``)
``y_test``          like ``y_train``, or None
``feature_names``   list of str, one per column
``target_names``    list of str, one per class (None for regression)
``task``            "classification" or "regression"
``name``            the name ``load(name)`` accepts
``description``     one line: what it is and where it comes from
==================  ===========================================================================

Splits: scikit-learn's tables put ``test_size`` (default 0.25) of the rows in the test set,
stratified by class; the toy generators (``make_*``) keep every row in ``X_train`` unless
given a ``test_size`` (``load(name)`` gives them 0.25, so every set loaded by name has a test
set); ``test_size=None`` never splits. MNIST and MNIST-1D come with their own split. Randomness (noise, shuffling,
the split) comes only from ``random_state`` (an int or a ``numpy.random.Generator``; the
default 0 makes every call give the same data). Features are not scaled: that is the
training pipeline's job (MNIST's pixels are the exception, divided by 255 by default).

Nothing here downloads: scikit-learn's sets ship with scikit-learn, MNIST-1D is generated
by the ``mnist1d`` package's ``make_dataset`` and MNIST is read from a file you provide.

Example:
    >>> from neuralab import datasets
    >>> d = datasets.load_digits()
    >>> d.X_train.shape, d.X_test.shape, d.n_classes
    ((1347, 64), (450, 64), 10)
    >>> datasets.load("moons", n_samples=200, noise=0.1).task
    'classification'
"""
from __future__ import annotations

import gzip
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["Dataset", "list_datasets", "load", "describe", "task", "is_pixels", "canonical_name",
           "column_names", "as_frames", "load_digits", "load_iris",
           "load_breast_cancer", "load_wine", "load_diabetes", "make_xor", "make_spirals",
           "make_circles", "make_moons", "make_blobs", "load_mnist", "load_mnist1d",
           "ImplicitFeedback", "make_implicit_feedback"]


@dataclass(frozen=True, repr=False)
class Dataset:
    """A data set with its train/test split and what its columns and classes mean.

    Example:
        >>> d = datasets.load_iris()
        >>> X, y = d.X_train, d.y_train
        >>> d.feature_names[0], d.target_names, d.task
        ('sepal length (cm)', ['setosa', 'versicolor', 'virginica'], 'classification')
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    feature_names: list[str]
    target_names: list[str] | None
    task: str
    name: str
    description: str

    @property
    def n_features(self) -> int:
        """Number of input features (columns; 784 for flattened MNIST).

        Example: ``nl.datasets.load_digits().n_features  # 64``
        """
        return int(np.prod(self.X_train.shape[1:]))

    @property
    def n_classes(self) -> int | None:
        """Number of classes (None for regression).

        Example: ``nl.datasets.load_digits().n_classes  # 10``
        """
        return None if self.target_names is None else len(self.target_names)

    @property
    def n_samples(self) -> int:
        """Rows in the train and test sets together.

        Example: ``nl.datasets.load_digits().n_samples  # 1797``
        """
        return len(self.X_train) + (0 if self.X_test is None else len(self.X_test))

    def __repr__(self) -> str:
        test = "no test split" if self.X_test is None else f"X_test {self.X_test.shape}"
        classes = "" if self.n_classes is None else f", {self.n_classes} classes"
        return (f"Dataset({self.name!r}, {self.task}{classes}: X_train {self.X_train.shape}, "
                f"{test})")


# ============================================================================ shared helpers
def _rng(random_state: int | np.random.Generator | None) -> np.random.Generator:
    return np.random.default_rng(random_state)


def _split_indices(y: np.ndarray, test_size: float, rng: np.random.Generator,
                   stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train and test row indices; each class keeps its share in both when stratified.

    The test set has ``ceil(test_size * n)`` rows (as scikit-learn's ``train_test_split``);
    stratified, each class gets its proportional share, remainders going to the classes with
    the largest fractional parts.
    """
    n = len(y)
    n_test = int(np.ceil(test_size * n))
    if stratify:
        classes, counts = np.unique(y, return_counts=True)
        exact = counts * n_test / n
        take = np.floor(exact).astype(int)
        extra = np.argsort(-(exact - take), kind="stable")[:n_test - take.sum()]
        take[extra] += 1
        test_idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k]
                                   for c, k in zip(classes, take)])
    else:
        test_idx = rng.permutation(n)[:n_test]
    is_test = np.zeros(n, bool)
    is_test[test_idx] = True
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    return rng.permutation(train_idx), rng.permutation(test_idx)


def _make(X: Any, y: Any, *, task: str, name: str, description: str,
          feature_names: Sequence[str] | None = None, target_names: Sequence[str] | None = None,
          test_size: float | None = 0.25, rng: np.random.Generator | None = None) -> Dataset:
    """Cast to the documented dtypes, split if asked, and wrap in a Dataset."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64 if task == "classification" else np.float32)
    if feature_names is None:
        feature_names = [f"x{i}" for i in range(X.shape[1])]
    if task == "classification" and target_names is None:
        target_names = [str(c) for c in range(int(y.max()) + 1)]
    X_test = y_test = None
    if test_size is not None:
        if not 0 < test_size < 1:
            raise ValueError(f"{name}: test_size must be a fraction in (0, 1) or None, "
                             f"got {test_size}")
        tr, te = _split_indices(y, test_size, rng if rng is not None else _rng(0),
                                stratify=task == "classification")
        X, X_test, y, y_test = X[tr], X[te], y[tr], y[te]
    return Dataset(X, y, X_test, y_test, list(map(str, feature_names)),
                   None if target_names is None else list(map(str, target_names)),
                   task, name, description)


def _check_n(n_samples: int, name: str, minimum: int = 1) -> int:
    if int(n_samples) != n_samples or n_samples < minimum:
        raise ValueError(f"{name}: n_samples must be an integer >= {minimum}, got {n_samples!r}")
    return int(n_samples)


# ============================================================================ scikit-learn's tables
def _sklearn(loader_name: str, name: str, task: str, description: str,
             test_size: float | None, random_state: Any) -> Dataset:
    from sklearn import datasets as skd  # noqa: PLC0415 - lazy: sklearn takes ~0.8 s to import

    bunch = getattr(skd, loader_name)()
    target_names = None
    if task == "classification":
        target_names = [str(t) for t in bunch.target_names]
    return _make(bunch.data, bunch.target, task=task, name=name, description=description,
                 feature_names=list(bunch.feature_names), target_names=target_names,
                 test_size=test_size, rng=_rng(random_state))


def load_digits(test_size: float | None = 0.25, random_state: Any = 0) -> Dataset:
    """8x8 images of handwritten digits: 1797 rows, 64 pixel columns (0..16), 10 classes.

    Example: ``d = datasets.load_digits(); d.X_train.shape  # (1347, 64)``
    """
    return _sklearn("load_digits", "digits", "classification", _DESCRIPTIONS["digits"],
                    test_size, random_state)


def load_iris(test_size: float | None = 0.25, random_state: Any = 0) -> Dataset:
    """Fisher's iris flowers: 150 rows, 4 measurements, 3 species.

    Example: ``d = datasets.load_iris(test_size=None); d.X_train.shape  # (150, 4)``
    """
    return _sklearn("load_iris", "iris", "classification", _DESCRIPTIONS["iris"],
                    test_size, random_state)


def load_breast_cancer(test_size: float | None = 0.25, random_state: Any = 0) -> Dataset:
    """Wisconsin breast-cancer biopsies: 569 rows, 30 features, malignant or benign.

    Example: ``d = datasets.load_breast_cancer(); d.target_names  # ['malignant', 'benign']``
    """
    return _sklearn("load_breast_cancer", "breast_cancer", "classification",
                    _DESCRIPTIONS["breast_cancer"], test_size, random_state)


def load_wine(test_size: float | None = 0.25, random_state: Any = 0) -> Dataset:
    """Wines from three cultivars: 178 rows, 13 chemical measurements, 3 classes.

    Example: ``d = datasets.load_wine(); d.n_classes  # 3``
    """
    return _sklearn("load_wine", "wine", "classification", _DESCRIPTIONS["wine"],
                    test_size, random_state)


def load_diabetes(test_size: float | None = 0.25, random_state: Any = 0) -> Dataset:
    """Diabetes progression after one year (regression): 442 rows, 10 features.

    The features come already centred and scaled by scikit-learn; the target is a
    disease-progression score (25..346).

    Example: ``d = datasets.load_diabetes(); d.task  # 'regression'``
    """
    return _sklearn("load_diabetes", "diabetes", "regression", _DESCRIPTIONS["diabetes"],
                    test_size, random_state)


# ============================================================================ 2-D toy problems
def make_xor(n_samples: int = 200, noise: float = 0.1, shuffle: bool = True,
             test_size: float | None = None, random_state: Any = 0) -> Dataset:
    """XOR: points around the four corners of the unit square, class = x0 XOR x1.

    The classic problem no linear model (and no network without a hidden layer) can solve.
    Corners are used in turn, so classes are balanced; ``noise`` is the standard deviation of
    Gaussian jitter. ``make_xor(4, noise=0, shuffle=False)`` is the truth table.

    Example:
        >>> d = datasets.make_xor(4, noise=0, shuffle=False)
        >>> d.X_train.tolist(), d.y_train.tolist()
        ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
    """
    n = _check_n(n_samples, "make_xor")
    rng = _rng(random_state)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)
    which = np.arange(n) % 4
    if shuffle:
        which = rng.permutation(which)
    X = corners[which] + noise * rng.standard_normal((n, 2))
    y = np.array([0, 1, 1, 0])[which]
    return _make(X, y, task="classification", name="xor", description=_DESCRIPTIONS["xor"],
                 test_size=test_size, rng=rng)


def make_spirals(n_samples: int = 300, n_classes: int = 2, turns: float = 1.0,
                 noise: float = 0.05, test_size: float | None = None,
                 random_state: Any = 0) -> Dataset:
    """Interleaved spiral arms, one per class: a classic hard case for small networks.

    Arm ``k`` is ``r * (cos t, sin t)`` with radius ``r`` from 0 to 1 and angle
    ``t = 2*pi*(turns*r + k/n_classes)``, plus Gaussian noise of std ``noise``.

    Example: ``d = datasets.make_spirals(300, n_classes=3); d.n_classes  # 3``
    """
    n = _check_n(n_samples, "make_spirals", minimum=n_classes)
    if int(n_classes) != n_classes or n_classes < 2:
        raise ValueError(f"make_spirals: n_classes must be an integer >= 2, got {n_classes!r}")
    rng = _rng(random_state)
    y = np.arange(n) % n_classes
    r = np.empty(n)
    for k in range(n_classes):  # radii evenly spread along each arm
        rows = y == k
        r[rows] = np.linspace(0.0, 1.0, rows.sum())
    t = 2 * np.pi * (turns * r + y / n_classes)
    X = np.column_stack([r * np.cos(t), r * np.sin(t)]) + noise * rng.standard_normal((n, 2))
    order = rng.permutation(n)
    return _make(X[order], y[order], task="classification", name="spirals",
                 description=_DESCRIPTIONS["spirals"], test_size=test_size, rng=rng)


def make_circles(n_samples: int = 200, noise: float = 0.05, factor: float = 0.5,
                 test_size: float | None = None, random_state: Any = 0) -> Dataset:
    """A small circle (class 1, radius ``factor``) inside a large one (class 0, radius 1).

    Same geometry as scikit-learn's ``make_circles``; ``noise`` is the std of Gaussian jitter.

    Example: ``d = datasets.make_circles(100, factor=0.3)``
    """
    n = _check_n(n_samples, "make_circles", minimum=2)
    if not 0 <= factor < 1:
        raise ValueError(f"make_circles: factor must be in [0, 1), got {factor}")
    rng = _rng(random_state)
    n_out = n // 2
    t = np.concatenate([np.linspace(0, 2 * np.pi, n_out, endpoint=False),
                        np.linspace(0, 2 * np.pi, n - n_out, endpoint=False)])
    radius = np.where(np.arange(n) < n_out, 1.0, factor)
    y = (np.arange(n) >= n_out).astype(np.int64)
    X = np.column_stack([radius * np.cos(t), radius * np.sin(t)])
    X += noise * rng.standard_normal((n, 2))
    order = rng.permutation(n)
    return _make(X[order], y[order], task="classification", name="circles",
                 description=_DESCRIPTIONS["circles"], test_size=test_size, rng=rng)


def make_moons(n_samples: int = 200, noise: float = 0.1, test_size: float | None = None,
               random_state: Any = 0) -> Dataset:
    """Two interleaving half circles (scikit-learn's ``make_moons`` geometry).

    Example: ``d = datasets.make_moons(200, noise=0.2)``
    """
    n = _check_n(n_samples, "make_moons", minimum=2)
    rng = _rng(random_state)
    n_out = n // 2
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n - n_out)
    X = np.concatenate([np.column_stack([np.cos(t_out), np.sin(t_out)]),
                        np.column_stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)])])
    y = (np.arange(n) >= n_out).astype(np.int64)
    X += noise * rng.standard_normal((n, 2))
    order = rng.permutation(n)
    return _make(X[order], y[order], task="classification", name="moons",
                 description=_DESCRIPTIONS["moons"], test_size=test_size, rng=rng)


def make_blobs(n_samples: int = 300, n_features: int = 2, centers: int | Any = 3,
               cluster_std: float = 1.0, center_box: tuple[float, float] = (-10.0, 10.0),
               test_size: float | None = None, random_state: Any = 0) -> Dataset:
    """Isotropic Gaussian clusters, one class per centre (balanced).

    Args:
        centers: how many centres (drawn uniformly in ``center_box``), or their coordinates
            as an array (n_centers, n_features).
        cluster_std: standard deviation of each cluster.

    Example: ``d = datasets.make_blobs(300, centers=[[0, 0], [3, 3]], cluster_std=0.5)``
    """
    n = _check_n(n_samples, "make_blobs")
    rng = _rng(random_state)
    if np.ndim(centers) == 0:
        if int(centers) != centers or centers < 1:
            raise ValueError(f"make_blobs: centers must be a positive integer or an array, "
                             f"got {centers!r}")
        centers = rng.uniform(center_box[0], center_box[1], size=(int(centers), n_features))
    else:
        centers = np.asarray(centers, dtype=np.float64)
        if centers.ndim != 2:
            raise ValueError(f"make_blobs: centers must have shape (n_centers, n_features), "
                             f"got {centers.shape}")
        n_features = centers.shape[1]
    y = np.arange(n) % len(centers)
    X = centers[y] + cluster_std * rng.standard_normal((n, n_features))
    order = rng.permutation(n)
    return _make(X[order], y[order], task="classification", name="blobs",
                 description=_DESCRIPTIONS["blobs"], test_size=test_size, rng=rng)




# ============================================================================ MNIST
_IDX_FILES = {  # part -> accepted file names (the original ones and a common variant)
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (MNIST's format, optionally gzipped) into a NumPy array.

    Example: ``labels = datasets.read_idx("train-labels-idx1-ubyte.gz")``
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    # header: two zero bytes, a type code, the number of dimensions, then each size (big-endian)
    types = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in types:
        raise ValueError(f"{path} is not an IDX file (its first bytes are {raw[:4]!r}; "
                         "expected 00 00, a type code and a dimension count)")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(types[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path} is truncated or corrupt: the header says shape {shape} "
                         f"({expected} bytes in all) but the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)


def _find_idx(folder: Path) -> dict[str, Path] | None:
    found = {}
    for part, names in _IDX_FILES.items():
        for name in names:
            for candidate in (folder / name, folder / (name + ".gz")):
                if candidate.is_file():
                    found[part] = candidate
                    break
            if part in found:
                break
    return found if len(found) == 4 else None


def data_dirs() -> list[Path]:
    """The folders searched for data files, in order: ``$NEURALAB_DATA``, ``./data``, ``~/.neuralab/data``.

    Example: ``[str(p) for p in data_dirs()]``
    """
    places = []
    env = os.environ.get("NEURALAB_DATA")
    if env:
        places.append(Path(env).expanduser())
    return places + [Path("data"), Path.home() / ".neuralab" / "data"]


def find_data_file(name: str) -> Path | None:
    """The first ``name`` found in ``data_dirs()``, or None.

    Example: ``find_data_file("sms_spam.tsv")``
    """
    for place in data_dirs():
        if (place / name).is_file():
            return place / name
    return None


def _mnist_candidates(path: str | os.PathLike | None) -> list[Path]:
    if path is not None:
        return [Path(path).expanduser()]
    return data_dirs()


def _read_mnist_arrays(path: str | os.PathLike | None) -> tuple[dict[str, np.ndarray], Path]:
    looked = []
    for place in _mnist_candidates(path):
        if place.is_file():
            if place.suffix != ".npz":
                raise ValueError(f"load_mnist: {place} is a file but not an .npz; give a .npz "
                                 "with x_train, y_train, x_test, y_test or a folder of IDX files")
            looked.append(str(place))
            with np.load(place) as f:
                missing = [k for k in _IDX_FILES if k not in f.files]
                if missing:
                    raise KeyError(f"load_mnist: {place} lacks the arrays {missing} "
                                   f"(it has {f.files}; expected x_train, y_train, x_test, y_test)")
                return {k: f[k] for k in _IDX_FILES}, place
        for folder in (place, place / "mnist", place / "MNIST"):
            looked.append(f"{folder}/mnist.npz")
            if (folder / "mnist.npz").is_file():
                return _read_mnist_arrays(folder / "mnist.npz")
            looked.append(f"{folder}/ (the four IDX files, e.g. train-images-idx3-ubyte[.gz])")
            files = _find_idx(folder) if folder.is_dir() else None
            if files:
                return {k: read_idx(p) for k, p in files.items()}, folder
    where = str(path) if path is not None else ", ".join(str(d) for d in data_dirs())
    raise FileNotFoundError(
        f"MNIST not found in {where}: put mnist.npz (x_train, y_train, x_test, y_test) or the four "
        f"IDX files there, set NEURALAB_DATA to their folder, or pass load_mnist(path); neuralab "
        f"never downloads data")


def load_mnist(path: str | os.PathLike | None = None, flatten: bool = True,
               normalize: bool = True) -> Dataset:
    """MNIST handwritten digits (60,000 train / 10,000 test, 28x28) from a local file.

    Looks in ``path`` if given; otherwise in ``$NEURALAB_DATA`` (a file or a folder), then
    ``./data`` and ``~/.neuralab/data``. A folder may hold ``mnist.npz``
    (keys ``x_train y_train x_test y_test``) or the four original IDX files, gzipped or not
    (also inside a ``mnist/`` sub-folder). Never downloads; raises ``FileNotFoundError``
    naming every place it looked.

    Args:
        path: an .npz file or a folder.
        flatten: rows of 784 pixels; otherwise images shaped (n, 1, 28, 28) (channels first,
            ready for ``nn.Conv2d``).
        normalize: divide pixels by 255 into [0, 1]; otherwise keep 0..255 (as float32).

    Example:
        >>> d = datasets.load_mnist("data/mnist.npz")  # doctest: +SKIP
        >>> d.X_train.shape, d.X_train.dtype, d.y_train[:5]  # doctest: +SKIP
        ((60000, 784), dtype('float32'), array([5, 0, 4, 1, 9]))
    """
    arrays, source = _read_mnist_arrays(path)
    out = {}
    for part in ("x_train", "x_test"):
        x = arrays[part]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"load_mnist: {part} in {source} has shape {x.shape}, "
                             "expected (n, 28, 28)")
        x = x.astype(np.float32)  # cast once here, never per batch
        if normalize:
            x *= np.float32(1 / 255)
        out[part] = x.reshape(len(x), 784) if flatten else x.reshape(len(x), 1, 28, 28)
    for part, images in (("y_train", "x_train"), ("y_test", "x_test")):
        if arrays[part].shape != (len(arrays[images]),):
            raise ValueError(f"load_mnist: {part} in {source} has shape {arrays[part].shape} "
                             f"for {len(arrays[images])} images")
    features = ([f"pixel_{r}_{c}" for r in range(28) for c in range(28)] if flatten
                else ["pixels"])
    return Dataset(out["x_train"], arrays["y_train"].astype(np.int64), out["x_test"],
                   arrays["y_test"].astype(np.int64), features, [str(d) for d in range(10)],
                   "classification", "mnist", _DESCRIPTIONS["mnist"] + f" (read from {source})")


# ============================================================================ MNIST-1D
def load_mnist1d(n_train: int = 4000, n_test: int = 1000, random_state: int = 42) -> Dataset:
    """MNIST-1D (Greydanus, 2020): 1-D signals of length 40 made from ten digit templates.

    Generated offline by the ``mnist1d`` package's ``make_dataset`` (never its downloader).
    The defaults (4000 train, 1000 test, seed 42) are the package's default settings, the
    ones of the paper, where an MLP reaches about 68% test accuracy and a CNN about 94%. ``mnist1d`` seeds
    NumPy's and Python's global generators; this function restores both afterwards.

    Example:
        >>> d = datasets.load_mnist1d(n_train=400, n_test=100)
        >>> d.X_train.shape, d.X_test.shape
        ((400, 40), (100, 40))
    """
    for arg, value in (("n_train", n_train), ("n_test", n_test)):
        if int(value) != value or value < 1:
            raise ValueError(f"load_mnist1d: {arg} must be a positive integer, got {value!r}")
    try:
        from mnist1d.data import get_dataset_args, make_dataset  # noqa: PLC0415 - optional
    except ImportError as exc:
        raise ImportError("load_mnist1d needs the mnist1d package: pip install "
                          f"'neuralab[mnist1d]' (import failed: {exc})") from None
    total = n_train + n_test
    args = get_dataset_args()
    args.num_samples = -(-total // 10) * 10  # whole samples per class, trimmed below
    args.train_split = 1.0  # we split ourselves, so any n_train/n_test works
    args.seed = int(random_state)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x, y = d["x"], d["y"]
    return Dataset(np.ascontiguousarray(x[:n_train], np.float32), y[:n_train].astype(np.int64),
                   np.ascontiguousarray(x[n_train:total], np.float32),
                   y[n_train:total].astype(np.int64), [f"t{i}" for i in range(x.shape[1])],
                   [str(c) for c in range(10)], "classification", "mnist1d",
                   _DESCRIPTIONS["mnist1d"])


# ============================================================================ by name
_DESCRIPTIONS = {
    "digits": "8x8 handwritten digits: 1797 images, 64 pixels (0-16), 10 classes (scikit-learn)",
    "iris": "iris flowers: 150 rows, 4 measurements, 3 species (scikit-learn)",
    "breast_cancer": "breast-cancer biopsies: 569 rows, 30 features, malignant/benign "
                     "(scikit-learn)",
    "wine": "wines: 178 rows, 13 chemical measurements, 3 cultivars (scikit-learn)",
    "diabetes": "diabetes progression (regression): 442 rows, 10 features (scikit-learn)",
    "xor": "XOR: noisy points at the unit square's corners, class x0 XOR x1 (synthetic)",
    "spirals": "interleaved spiral arms, one per class (synthetic)",
    "circles": "a small circle inside a large one, 2 classes (synthetic)",
    "moons": "two interleaving half circles, 2 classes (synthetic)",
    "blobs": "Gaussian clusters, one class per centre (synthetic)",
    "mnist": "MNIST handwritten digits: 60000 train / 10000 test, 28x28, 10 classes",
    "mnist1d": "MNIST-1D: 4000 train / 1000 test signals of length 40, 10 classes (generated)",
}

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits, "iris": load_iris, "breast_cancer": load_breast_cancer,
    "wine": load_wine, "diabetes": load_diabetes, "xor": make_xor, "spirals": make_spirals,
    "circles": make_circles, "moons": make_moons, "blobs": make_blobs, "mnist": load_mnist,
    "mnist1d": load_mnist1d,
}
_ALIASES = {"gaussian": "blobs", "mnist_1d": "mnist1d", "cancer": "breast_cancer"}
_SPLIT_BY_NAME = {"xor", "spirals", "circles", "moons", "blobs"}
_REGRESSION = {"diabetes"}
_PIXELS = {"digits", "mnist"}  # columns are pixel intensities of one scale, not measurements


def list_datasets() -> list[str]:
    """The names ``load`` accepts.

    Example: ``datasets.list_datasets()[:3]  # ['digits', 'iris', 'breast_cancer']``
    """
    return list(_LOADERS)


def _key(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(_LOADERS)}")
    return key


def describe(name: str) -> str:
    """A one-line description of a data set, without loading it.

    Example: ``datasets.describe("iris")``
    """
    return _DESCRIPTIONS[_key(name)]


def task(name: str) -> str:
    """"classification" or "regression", without loading the data set.

    Example: ``datasets.task("diabetes")  # 'regression'``
    """
    return "regression" if _key(name) in _REGRESSION else "classification"


def is_pixels(name: str) -> bool:
    """True when the columns are pixel intensities sharing one scale (digits, MNIST).

    Such columns are scaled together (by the range of all pixels), not one by one: a pixel that
    is always blank in training would otherwise be blown up on the first test image that inks it.
    Example: ``datasets.is_pixels("digits")  # True``
    """
    return _key(name) in _PIXELS


def canonical_name(name: str) -> str:
    """The name ``list_datasets`` uses for ``name`` (aliases, ``-`` and case resolved).

    Example: ``datasets.canonical_name("Breast-Cancer")  # 'breast_cancer'``
    """
    return _key(name)


def column_names(data: Dataset) -> list[str]:
    """Column names for a Dataset's features: its own when they fit, else x0, x1, ...

    Example: ``datasets.column_names(datasets.load("moons"))  # ['x0', 'x1']``
    """
    n = data.n_features
    names = [str(c) for c in data.feature_names or []]
    return names if len(names) == n and len(set(names)) == n else [f"x{i}" for i in range(n)]


def as_frames(name: str) -> tuple[Any, Any]:
    """(train, test) DataFrames of a built-in data set: one column per feature and a 'target'
    column of class names (or values), the table ``neuralab train --dataset NAME`` learns from.

    Example: ``train, test = datasets.as_frames("iris"); train.columns[-1]  # 'target'``
    """
    import pandas as pd  # noqa: PLC0415 - lazy: pandas is not needed by `import neuralab`

    data = load(name)
    columns = column_names(data)

    def frame(X: np.ndarray, y: np.ndarray) -> Any:
        out = pd.DataFrame(np.asarray(X).reshape(len(X), -1), columns=columns)
        names = data.target_names
        if data.task == "classification" and names and y.ndim == 1:
            y = np.asarray(names, dtype=object)[y.astype(np.int64)]
        out["target"] = y if y.ndim == 1 else list(y)
        return out

    return frame(data.X_train, data.y_train), frame(data.X_test, data.y_test)


def load(name: str, **kwargs: Any) -> Dataset:
    """Load a data set by name (``-`` and ``_`` alike, case-insensitive), passing ``kwargs`` on.

    Loaded by name, the synthetic problems also get a 25% test split (``test_size=0.25``)
    unless told otherwise, so every built-in set has a test set, as ``neuralab train`` needs.

    Example: ``d = datasets.load("breast-cancer", random_state=1)``
    """
    key = _key(name)
    if key in _SPLIT_BY_NAME:
        kwargs.setdefault("test_size", 0.25)
    return _LOADERS[key](**kwargs)


@dataclass
class ImplicitFeedback:
    """Interactions (``users[j]`` touched ``items[j]``) and the hidden truth that generated them.

    Example: ``data = datasets.make_implicit_feedback(random_state=0); len(data.users)``
    """

    users: np.ndarray
    items: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    item_popularity: np.ndarray


def make_implicit_feedback(n_users: int = 500, n_items: int = 300, n_factors: int = 8,
                           interactions_per_user: tuple[int, int] = (10, 40),
                           popularity: float = 1.0, temperature: float = 0.5,
                           random_state: Any = None) -> ImplicitFeedback:
    """Implicit feedback with a known latent structure (the data of ``neuralab.apps.recommend``).

    Generator: user factors ``P`` (n_users, k) and item factors ``Q`` (n_items, k) are drawn
    N(0, 1); an item's popularity ``b_i = popularity * log(1 / rank_i)`` for a random rank
    (a Zipf-like long tail). User u's affinity for item i is ``s_ui = P_u . Q_i / sqrt(k) + b_i``;
    u touches ``n_u ~ U(interactions_per_user)`` distinct items drawn without replacement with
    probabilities proportional to ``exp(s_ui / temperature)`` (the Gumbel top-k trick). Lower
    ``temperature`` makes tastes sharper; ``popularity=0`` removes the popularity signal.

    Returns an ``ImplicitFeedback`` with ``users``/``items`` (int arrays, one row per
    interaction) and the factors that made them.
    Example: ``data = datasets.make_implicit_feedback(n_users=100, n_items=50, random_state=0)``
    """
    lo, hi = interactions_per_user
    if not 1 <= lo <= hi <= n_items:
        raise ValueError(f"interactions_per_user must satisfy 1 <= low <= high <= n_items "
                         f"({n_items}), got {interactions_per_user}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    rng = np.random.default_rng(random_state)
    P = rng.standard_normal((n_users, n_factors))
    Q = rng.standard_normal((n_items, n_factors))
    bias = popularity * np.log(1.0 / (1 + rng.permutation(n_items)))
    logits = (P @ Q.T / np.sqrt(n_factors) + bias) / temperature
    gumbel = logits - np.log(-np.log(rng.random(logits.shape)))
    counts = rng.integers(lo, hi + 1, size=n_users)
    users, items = [], []
    for u in range(n_users):
        top = np.argpartition(-gumbel[u], counts[u] - 1)[: counts[u]]
        users.append(np.full(counts[u], u))
        items.append(top)
    return ImplicitFeedback(np.concatenate(users), np.concatenate(items), P, Q, bias)
