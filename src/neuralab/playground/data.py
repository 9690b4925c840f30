"""The playground's 2-D datasets and input features (as in TensorFlow Playground).

Points live in [-6, 6]^2. Classification labels are 0/1; regression targets lie in [-1, 1].

Example:
    >>> X, y = make_dataset("spiral", n=200, noise=0.1, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((200, 2), [0.0, 1.0])
"""
from __future__ import annotations

import numpy as np

CLASSIFICATION = ("circle", "xor", "gauss", "spiral", "moons")
REGRESSION = ("plane", "multigauss")
DATASETS = CLASSIFICATION + REGRESSION

FEATURES = {
    "x1": lambda a, b: a,
    "x2": lambda a, b: b,
    "x1^2": lambda a, b: a * a,
    "x2^2": lambda a, b: b * b,
    "x1*x2": lambda a, b: a * b,
    "sin(x1)": lambda a, b: np.sin(a),
    "sin(x2)": lambda a, b: np.sin(b),
}
RANGE = 6.0


def is_regression(name: str) -> bool:
    """True for the regression datasets ("plane", "multigauss").

    Example: ``is_regression("plane")  # True``
    """
    return name in REGRESSION


def make_dataset(name: str, n: int = 500, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate one of the playground's datasets: X (n, 2) float32 and y (n,) float32.

    ``noise`` is in [0, 0.5], the fraction of the plane's scale used as noise.
    Example: ``X, y = make_dataset("xor", n=300, noise=0.05, seed=1)``
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    rng = np.random.default_rng(seed)
    half = n // 2
    if name == "circle":
        r = np.r_[rng.uniform(0, 2.5, half), rng.uniform(3.5, 5.0, n - half)]
        a = rng.uniform(0, 2 * np.pi, n)
        X = np.stack([r * np.sin(a), r * np.cos(a)], axis=1)
        X += rng.normal(0, noise * RANGE, X.shape)
        y = np.r_[np.ones(half), np.zeros(n - half)]  # the inner disc is class 1
    elif name == "xor":
        X = rng.uniform(-5, 5, (n, 2))
        X += np.sign(X) * 0.3  # keep a small gap around the axes
        y = (X[:, 0] * X[:, 1] >= 0).astype(float)
        X += rng.normal(0, noise * RANGE, X.shape)
    elif name == "gauss":
        centers = np.array([[2.0, 2.0], [-2.0, -2.0]])
        lab = np.r_[np.ones(half), np.zeros(n - half)]
        X = centers[(1 - lab).astype(int)] + rng.normal(0, 1.0 + noise * 6, (n, 2))
        y = lab
    elif name == "spiral":
        t = np.r_[np.linspace(0, 1, half), np.linspace(0, 1, n - half)]
        lab = np.r_[np.ones(half), np.zeros(n - half)]
        r = t * 5
        ang = 1.75 * t * 2 * np.pi + np.where(lab == 1, 0.0, np.pi)
        X = np.stack([r * np.sin(ang), r * np.cos(ang)], axis=1)
        X += rng.normal(0, noise * 3, X.shape)
        y = lab
    elif name == "moons":
        a = rng.uniform(0, np.pi, n)
        lab = np.r_[np.ones(half), np.zeros(n - half)]
        X = np.where(lab[:, None] == 1,
                     np.stack([np.cos(a), np.sin(a)], 1) * 3 + [-1.5, -0.75],
                     np.stack([1 - np.cos(a), 0.5 - np.sin(a)], 1) * 3 + [-1.5, -0.75])
        X += rng.normal(0, noise * RANGE, X.shape)
        y = lab
    elif name == "plane":
        X = rng.uniform(-RANGE, RANGE, (n, 2))
        y = np.clip((X[:, 0] + X[:, 1]) / (2 * RANGE) * 1.0, -1, 1)
        y = y + rng.normal(0, noise, n)
    else:  # multigauss
        X = rng.uniform(-RANGE, RANGE, (n, 2))
        centers = np.array([[-4, 2.5], [0, 2.5], [4, 2.5], [-4, -2.5], [0, -2.5], [4, -2.5]])
        signs = np.array([-1, 1, -1, 1, -1, 1.0])
        d2 = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
        y = (signs[None] * np.exp(-d2 / 2.0)).sum(1)
        y = np.clip(y, -1, 1) + rng.normal(0, noise, n)
    perm = rng.permutation(n)
    return X[perm].astype(np.float32), y[perm].astype(np.float32)


def featurize(X: np.ndarray, features: list[str]) -> np.ndarray:
    """Map raw (x1, x2) points to the chosen input features, e.g. ["x1", "x2", "x1*x2"].

    Example: ``featurize(np.array([[1., 2.]]), ["x1*x2"])  # [[2.]]``
    """
    unknown = [f for f in features if f not in FEATURES]
    if unknown or not features:
        raise ValueError(f"features must be a non-empty subset of {list(FEATURES)}, got {features}")
    a, b = X[:, 0], X[:, 1]
    return np.stack([FEATURES[f](a, b) for f in features], axis=1).astype(np.float32)


def grid(size: int) -> np.ndarray:
    """size*size points covering [-6, 6]^2, row by row from the top (y = +6) down.

    Example: ``grid(50).shape  # (2500, 2)``
    """
    xs = np.linspace(-RANGE, RANGE, size)
    ys = np.linspace(RANGE, -RANGE, size)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def parse_csv(text: str, max_rows: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Parse an uploaded CSV strictly: columns x1, x2, label (a header line is optional).

    Raises ValueError naming the row and what was wrong.
    Example: ``parse_csv("x1,x2,label\\n0.5,1,1\\n-2,3,0\\n")``
    """
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ValueError("the CSV is empty")
    start = 0
    try:
        [float(c) for c in rows[0]]
    except ValueError:
        start = 1  # a header line
    data = rows[start:]
    if not data:
        raise ValueError("the CSV has a header but no data rows")
    if len(data) > max_rows:
        raise ValueError(f"the CSV has {len(data)} rows; at most {max_rows} are allowed")
    values = np.empty((len(data), 3), dtype=np.float64)
    for i, r in enumerate(data, start=start + 1):
        if len(r) != 3:
            raise ValueError(f"row {i}: expected 3 columns (x1, x2, label), got {len(r)}")
        try:
            values[i - start - 1] = [float(c) for c in r]
        except ValueError:
            raise ValueError(f"row {i}: values must be numbers, got {r}") from None
    if not np.all(np.isfinite(values)):
        bad = int(np.argwhere(~np.isfinite(values))[0][0]) + start + 1
        raise ValueError(f"row {bad}: NaN or infinity is not allowed")
    X = values[:, :2]
    scale = np.abs(X).max()
    if scale > RANGE:  # rescale into the playground's plane, keeping the aspect ratio
        X = X / scale * (RANGE - 0.5)
    return X.astype(np.float32), values[:, 2].astype(np.float32)
