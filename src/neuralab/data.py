"""Getting data into a training loop: checking, casting, splitting, scaling and batching.

The one idea worth knowing here: a shuffled epoch never copies the whole data set. Each
mini-batch is gathered by index into a buffer that is reused every step
(``np.take(X, idx, axis=0, out=buf)``), so an epoch over 60000 MNIST images moves only the
rows it uses, once.

Example:
    >>> from neuralab.data import Batches
    >>> X, y = np.zeros((10, 3), np.float32), np.arange(10)
    >>> [len(yb) for xb, yb, wb in Batches(X, y, batch_size=4, rng=np.random.default_rng(0))]
    [4, 4, 2]
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import backend
from .functions import is_sparse

__all__ = ["as_features", "n_rows", "as_targets", "check_finite", "train_val_split", "Batches",
           "BatchIterable", "StandardScaler"]


# ============================================================================ checking and casting
def _is_memmap(X: Any) -> bool:
    return isinstance(X, np.memmap)


def n_rows(X: Any) -> int:
    """The number of samples of X: ``len(X)``, or ``X.shape[0]`` for a SciPy sparse matrix
    (whose ``len`` is refused as ambiguous).

    Example: ``n_rows(scipy.sparse.csr_matrix((5, 3)))  # 5``
    """
    return X.shape[0] if is_sparse(X) else len(X)


def as_features(X: Any, dtype: Any = None, name: str = "X") -> Any:
    """X as a 2-D-or-more float array, cast once (float32 unless ``dtype``).

    A memory-mapped array is left on disk as it is: batches are cast as they are gathered.
    A SciPy sparse matrix or array (CSR, CSC, COO, ...) becomes CSR of that dtype, still
    sparse: batches are its rows, and a first ``Linear`` layer multiplies them sparse x dense.
    Example: ``as_features([[0, 1], [2, 3]]).dtype  # float32``
    """
    dtype = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
    if hasattr(X, "data") and type(X).__name__ == "Tensor":  # a neuralab Tensor
        X = X.data
    if is_sparse(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D sparse matrix, got shape {X.shape}")
        if X.dtype.kind not in "fiub":
            raise ValueError(f"{name} must be numeric, got a sparse matrix of dtype {X.dtype}")
        X = X.tocsr()  # NOTE: row slicing (the batches) is cheap in CSR only
        return X if X.dtype == dtype else X.astype(dtype)
    if _is_memmap(X):
        if X.ndim < 2:
            raise ValueError(f"{name} must have one row per sample (2-D or more), got shape {X.shape}")
        return X
    xp = backend.xp_of(X)
    try:
        arr = xp.asarray(X)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} could not be read as a numeric array ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype} "
                         "(encode text or categories as numbers first)")
    if arr.ndim == 1:
        raise ValueError(f"{name} must have one row per sample, got a 1-D array of shape {arr.shape}; "
                         "use X.reshape(-1, 1) for a single feature")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array of samples, got a scalar")
    if arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def check_finite(X: Any, name: str = "X") -> None:
    """Raise ValueError naming the first row with NaN or infinity.

    Example: ``check_finite(np.array([[1.0, np.nan]]))  # ValueError: X has NaN ... row 0``
    """
    if _is_memmap(X):
        return  # reading a whole file from disk just to check it would defeat the memmap
    if is_sparse(X):  # the stored values only: the zeros are finite
        X = X.tocsr()
        bad = ~np.isfinite(X.data)
        if bad.any():
            pos = np.flatnonzero(bad)
            row = int(np.searchsorted(X.indptr, pos[0], side="right") - 1)
            cols = np.unique(X.indices[pos])
            kind = "NaN" if np.isnan(X.data[pos[0]]) else "infinity"
            raise ValueError(f"{name} has {len(pos)} NaN or infinite value(s) in column(s) "
                             f"{cols[:5].tolist()}{' ...' if len(cols) > 5 else ''} (first: "
                             f"{kind} in row {row}); remove or impute missing values first")
        return
    xp = backend.xp_of(X)
    bad = ~xp.isfinite(X)
    if bool(bad.any()):
        per = backend.to_numpy(bad.reshape(len(X), -1))
        row = int(per.any(axis=1).argmax())
        cols = np.flatnonzero(per.any(axis=0))
        kind = "NaN" if bool(xp.isnan(X[row]).any()) else "infinity"
        raise ValueError(f"{name} has {int(per.sum())} NaN or infinite value(s) in column(s) "
                         f"{cols[:5].tolist()}{' ...' if len(cols) > 5 else ''} (first: {kind} "
                         f"in row {row}); remove or impute missing values first")


def as_targets(y: Any, n: int, task: str, name: str = "y", dtype: Any = None) -> np.ndarray:
    """Targets checked against ``n`` samples: int64 class labels or float32 values.

    ``task`` is "classification" (labels 0..C-1) or "regression" (values cast to ``dtype``,
    float32 unless told).
    Example: ``as_targets([0, 1, 1], 3, "classification").dtype  # int64``
    """
    if hasattr(y, "data") and type(y).__name__ == "Tensor":
        y = y.data
    xp = backend.xp_of(y)
    arr = xp.asarray(y)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have one entry per sample, got a scalar")
    if len(arr) != n:
        raise ValueError(f"X has {n} samples but {name} has {len(arr)}; they must match row for row")
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}; encode class names as "
                         "0..C-1 first (e.g. sklearn.preprocessing.LabelEncoder)")
    if task == "classification" and arr.ndim == 1:
        if arr.dtype.kind == "f":
            if not bool(xp.all(arr == xp.round(arr))):
                raise ValueError(f"{name} has non-integer values but the loss expects class labels; "
                                 "use loss='mse' for regression")
        arr = arr.astype(np.int64)
        if n and int(arr.min()) < 0:
            raise ValueError(f"{name} has a negative class label ({int(arr.min())}); "
                             "labels must be 0..C-1")
        return arr
    arr = arr.astype(np.dtype(dtype) if dtype is not None else backend.get_default_dtype())
    if not bool(xp.isfinite(arr).all()):
        raise ValueError(f"{name} has NaN or infinity")
    return arr


# ============================================================================ splitting
def train_val_split(*arrays: Any, validation_split: float = 0.1,
                    seed: int | np.random.Generator | None = 0) -> list[Any]:
    """Split arrays (same length) into shuffled train and validation parts, seeded.

    Returns ``[a_train, a_val, b_train, b_val, ...]`` like sklearn's ``train_test_split``;
    ``None`` entries stay ``None``. The split copies once, never per epoch.
    Example: ``X_tr, X_val, y_tr, y_val = train_val_split(X, y, validation_split=0.2, seed=0)``
    """
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1 (exclusive), got {validation_split}")
    n = n_rows(next(a for a in arrays if a is not None))
    n_val = int(round(n * validation_split))
    if n_val < 1 or n_val >= n:
        raise ValueError(f"validation_split={validation_split} of {n} samples leaves "
                         f"{n_val} for validation and {n - n_val} for training; both need at least one")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    perm = rng.permutation(n)
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    out: list[Any] = []
    for a in arrays:
        if a is None:
            out += [None, None]
        elif is_sparse(a):  # rows of a CSR matrix, still sparse
            out += [a[train_idx], a[val_idx]]
        else:
            xp = backend.xp_of(a)
            out += [xp.take(a, xp.asarray(train_idx), axis=0), xp.take(a, xp.asarray(val_idx), axis=0)]
    return out


# ============================================================================ batching
class Batches:
    """Mini-batches of (X, y, sample_weight) gathered by index into reused buffers.

    Args:
        X: features (N, ...), a NumPy/CuPy array, a memory-mapped array, or a SciPy CSR
            matrix (each batch is then its rows ``X[idx]``, a new small CSR matrix).
        y: targets (N, ...) or None.
        batch_size: rows per batch (the last batch may be smaller).
        shuffle: visit rows in a new random order each time it is iterated.
        rng: the ``numpy.random.Generator`` that draws the order.
        sample_weight: optional (N,) weights, batched alongside.
        dtype: dtype of the feature batches (float32 unless given).
        drop_last: skip the last batch when it is smaller than ``batch_size`` (as PyTorch's
            DataLoader; a batch-norm layer is unstable on a batch of one or two rows).

    The arrays yielded are views of buffers that the next batch overwrites: use each batch
    before asking for the next (a training step does), or copy it.

    Example:
        >>> for xb, yb, wb in Batches(X, y, batch_size=64, rng=np.random.default_rng(0)):
        ...     loss = train_step(xb, yb)
    """

    def __init__(self, X: Any, y: Any = None, batch_size: int = 32, shuffle: bool = True,
                 rng: np.random.Generator | None = None, sample_weight: Any = None,
                 dtype: Any = None, drop_last: bool = False) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.n = n_rows(X)
        self.batch_size = min(int(batch_size), max(self.n, 1))
        self.shuffle = shuffle
        self.drop_last = bool(drop_last)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.dtype = np.dtype(dtype) if dtype is not None else backend.get_default_dtype()
        self._xp = backend.xp_of(X) if not (_is_memmap(X) or is_sparse(X)) else np
        self._bufs: dict[str, Any] = {}

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def _buffer(self, key: str, like: Any, dtype: Any) -> Any:
        buf = self._bufs.get(key)
        if buf is None:
            buf = self._xp.empty((self.batch_size,) + tuple(like.shape[1:]), dtype=dtype)
            self._bufs[key] = buf
        return buf

    def _gather(self, key: str, a: Any, idx: Any, dtype: Any) -> Any:
        if is_sparse(a):  # its rows' number of values varies: no reusable buffer
            rows = a[idx]
            return rows if rows.dtype == dtype else rows.astype(dtype)
        buf = self._buffer(key, a, dtype)[: len(idx)]
        if _is_memmap(a) and getattr(a, "mode", None) == "r" and a.nbytes > _DROP_ABOVE:
            for s in range(0, len(idx), _ROWS_PER_READ):  # bounded resident memory, see NOTE
                part = idx[s:s + _ROWS_PER_READ]
                buf[s:s + len(part)] = a[part]
                _drop_mapped_pages(a)
            return buf
        if a.dtype == buf.dtype:
            self._xp.take(a, idx, axis=0, out=buf)
        else:  # e.g. uint8 pixels on disk: gather the raw rows, cast into the float buffer
            buf[...] = a[backend.to_numpy(idx)] if _is_memmap(a) else self._xp.take(a, idx, axis=0)
        return buf

    def __iter__(self) -> Iterator[tuple[Any, Any, Any]]:
        xp = self._xp
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        memmap = _is_memmap(self.X)
        if memmap:
            pass  # indices stay on the host for disk reads
        elif xp is not np:
            order = xp.asarray(order)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            if memmap and self.shuffle:
                idx = np.sort(idx)  # sorted reads are much faster from disk; order within a batch is irrelevant
            xb = self._gather("X", self.X, idx, self.dtype)
            yb = None if self.y is None else self._gather("y", self.y, idx, self.y.dtype)
            wb = None if self.sample_weight is None else self._gather(
                "w", self.sample_weight, idx, self.sample_weight.dtype)
            yield xb, yb, wb


# NOTE: pages read through a memory map count in the process's resident memory until they are
# unmapped, so one epoch over a 4 GB file would hold 4 GB (and one shuffled batch of 128 rows
# mapped far more than its rows: the kernel maps whole large folios). A large read-only memmap
# is read 16 rows at a time and those pages are dropped from this process's mapping at once
# (cheap: see benchmarks/README.md); they stay in the OS file cache, so nothing is read twice.
_DROP_ABOVE = 256 * 2**20  # memmaps smaller than this stay mapped (they fit comfortably)
_ROWS_PER_READ = 16


def _drop_mapped_pages(X: Any) -> None:
    """Unmap the pages of a read-only memmap that this process has touched (MADV_DONTNEED)."""
    import mmap  # noqa: PLC0415
    m = getattr(X, "_mmap", None)
    if m is None or getattr(X, "mode", None) != "r" or not hasattr(mmap, "MADV_DONTNEED"):
        return  # writable maps keep their pages: dropping a private page would lose writes
    try:
        m.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # pragma: no cover - closed map or unsupported platform
        pass


def batch_rows(xb: Any) -> int:
    """The rows of one batch: ``n_rows(xb)``, or its first part's for a tuple/list of arrays
    (e.g. a recommender's ``(users, items)``).

    Example: ``batch_rows((np.arange(4), np.arange(4)))  # 4``
    """
    return n_rows(xb[0]) if isinstance(xb, (tuple, list)) else n_rows(xb)


class BatchIterable:
    """Re-iterable batches from user data: a list of (X, y) pairs or a callable returning an
    iterator of them (called once per epoch), for data that does not fit in memory.

    With ``raw=True`` each batch is passed on as given (only its form is checked): for a
    training step of one's own, whose batches may be integer ids, tuples or ``y=None``.

    Example:
        >>> def batches():
        ...     for i in range(0, 1000, 100):
        ...         yield X[i:i + 100], y[i:i + 100]
        >>> nl.fit(model, batches, epochs=3)
        History(epochs=3, ...)
    """

    def __init__(self, source: Iterable | Callable[[], Iterable], task: str,
                 dtype: Any = None, raw: bool = False) -> None:
        if isinstance(source, Iterator):
            raise ValueError("fit needs data it can go through once per epoch, got a one-shot "
                             "iterator (a generator object); pass a list of (X, y) batches or a "
                             "function that returns a fresh generator")
        self.source, self.task = source, task
        self.dtype, self.raw = dtype, raw

    def __len__(self) -> int:
        return len(self.source)  # TypeError for callables: the caller checks hasattr(__len__)

    def __iter__(self) -> Iterator[tuple[Any, Any, Any]]:
        it = self.source() if callable(self.source) else self.source
        for i, item in enumerate(it):
            if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
                raise ValueError(f"batch {i} must be a pair (X, y) or a triple (X, y, sample_weight), "
                                 f"got {type(item).__name__}")
            if self.raw:
                yield item[0], item[1], item[2] if len(item) == 3 else None
                continue
            xb = as_features(item[0], self.dtype, name=f"X of batch {i}")
            yb = as_targets(item[1], n_rows(xb), self.task, name=f"y of batch {i}")
            wb = None if len(item) == 2 or item[2] is None else np.asarray(item[2], dtype=xb.dtype)
            yield xb, yb, wb


# ============================================================================ scaling
class StandardScaler:
    """Standardise features to zero mean and unit variance, per column (fit on train only).

    Constant columns are left unscaled (scale 1) instead of dividing by zero.
    Example:
        >>> sc = StandardScaler().fit(X_train)
        >>> X_train, X_test = sc.transform(X_train), sc.transform(X_test)
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, X: Any) -> "StandardScaler":
        """Learn each column's mean and standard deviation. Returns self."""
        X = as_features(X, np.float64)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 1e-12 * np.maximum(np.abs(self.mean_), 1.0), std, 1.0)
        return self

    def _check(self, X: Any) -> Any:
        if self.mean_ is None:
            raise RuntimeError("StandardScaler is not fitted yet: call fit(X_train) first")
        X = as_features(X)
        if X.shape[1:] != self.mean_.shape:
            raise ValueError(f"X has per-sample shape {X.shape[1:]} but the scaler was fitted "
                             f"on {self.mean_.shape}")
        return X

    def transform(self, X: Any) -> np.ndarray:
        """(X - mean) / scale, as float32. Example: ``sc.transform(X_test)``"""
        X = self._check(X)
        return ((X - self.mean_.astype(X.dtype)) / self.scale_.astype(X.dtype)).astype(X.dtype, copy=False)

    def fit_transform(self, X: Any) -> np.ndarray:
        """fit(X) then transform(X). Example: ``X_train = sc.fit_transform(X_train)``"""
        return self.fit(X).transform(X)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Undo transform. Example: ``sc.inverse_transform(sc.transform(X))  # ~X``"""
        X = self._check(X)
        return (X * self.scale_.astype(X.dtype) + self.mean_.astype(X.dtype)).astype(X.dtype, copy=False)


# ============================================================================ tables
PARQUET_SUFFIXES = {".parquet", ".pq"}
MAX_COLUMNS = 20_000  # more is a damaged or mis-delimited file, and pandas' name checks crawl


def check_target(frame: Any, target: str, source: str) -> None:
    """Refuse, in one line, a target column the table does not have or names twice.

    Example: ``check_target(read_table("houses.csv"), "price", "houses.csv")``
    """
    if target in frame.attrs.get("duplicated_columns", []):
        raise ValueError(f"{source}: the header names the target column {target!r} more than "
                         f"once; rename the copies")
    if target not in frame.columns:
        from .preprocessing import _short_list  # noqa: PLC0415

        raise ValueError(f"target column {target!r} is not in the data; columns are "
                         f"{_short_list([str(c) for c in frame.columns])}")


def read_table(source: str, sep: str | None = None, decimal: str | None = None,
               part: str = "all", max_columns: int = MAX_COLUMNS) -> Any:
    """A DataFrame from a CSV/TSV/Parquet path or a built-in data set's name ("iris", ...).

    Args:
        source: a file path, or a name of ``datasets.list_datasets()`` (its features and a
            'target' column).
        sep: column delimiter of a text file (default: sniffed among , ; tab |; tabs for .tsv).
        decimal: the decimal mark, "." or ","; default "," when the delimiter is ";" and the
            numbers are written like 3,14 (the European CSV convention), else ".".
        part: for a built-in data set, "all" rows, only its "train" part or its "test" part.
        max_columns: refuse a file with more columns than this (a clear error, not a stall).

    In a text file, empty cells, pandas' markers (NA, N/A, NULL, nan, ...) and "?" are missing.

    Raises ValueError naming the file and the problem. Example: ``read_table("data.csv")``
    """
    import pandas as pd  # noqa: PLC0415 - lazy: pandas is not needed by `import neuralab`

    from . import datasets  # noqa: PLC0415

    path = Path(source)
    if not path.exists():
        try:
            name = datasets.canonical_name(source)
        except ValueError:
            raise ValueError(f"no such file or built-in dataset: {source!r} (built-ins: "
                             f"{', '.join(datasets.list_datasets())})") from None
        train, test = datasets.as_frames(name)
        if part == "train":
            return train
        if part == "test":
            return test
        return pd.concat([train, test], ignore_index=True)
    if path.is_dir():
        raise ValueError(f"{source} is a folder; expected a CSV, TSV or Parquet file")
    duplicated: list[str] = []
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        else:
            opts = _text_options(path, sep, decimal, max_columns, name=str(source))
            duplicated, decimal = opts.pop("duplicated"), opts["decimal"]
            frame = pd.read_csv(path, **opts)
    except UnicodeDecodeError:
        raise ValueError(f"{source}: not UTF-8 text (is it a CSV file?)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
        raise ValueError(f"{source}: cannot read it as a table ({' '.join(str(e).split())})") from None
    except ValueError as e:
        if str(e).startswith(str(source)):
            raise
        raise ValueError(f"{source}: cannot read it as a table ({' '.join(str(e).split())})") from None
    if frame.shape[1] > max_columns:
        raise ValueError(f"{source}: {frame.shape[1]:,} columns, more than the {max_columns:,} "
                         f"neuralab reads")
    if frame.shape[1] == 0 or len(frame) == 0:
        raise ValueError(f"{source}: the table has no rows or no columns")
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs["duplicated_columns"] = duplicated
    frame.attrs["decimal"] = decimal or "."
    return frame


def _text_options(path: Path, sep: str | None, decimal: str | None,
                  max_columns: int = MAX_COLUMNS, name: str | None = None) -> dict:
    """pandas.read_csv's options for a text table (delimiter sniffed from the file's start),
    plus "duplicated": the header's names given more than once."""
    import csv  # noqa: PLC0415

    is_tsv = path.suffix.lower() in (".tsv", ".tab")
    sample = _sample(path)
    if sep is None:
        sep = "\t" if is_tsv else sniff_delimiter(path, sample)
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = f.readline()  # the whole header, however long (the sample may cut it)
    header = next(csv.reader([first], delimiter=sep), [])
    if len(header) > max_columns:
        raise ValueError(f"{name or path}: the header has {len(header):,} columns, more than "
                         f"the {max_columns:,} neuralab reads (wrong --sep?)")
    names = [h.strip() for h in header]
    if decimal is None:
        decimal = "," if sep == ";" and _decimal_commas(sample) else "."
    # TSV has no quoting (a field cannot hold a tab or newline); reading '"' as a quote
    # would merge lines of free text such as SMS messages.
    quoting = csv.QUOTE_NONE if is_tsv and sep == "\t" else csv.QUOTE_MINIMAL
    # "?" marks a missing value in many public tables (the UCI repository's among them): read
    # as missing, with pandas' own markers (NA, N/A, NULL, nan, an empty cell, ...), so that a
    # column of numbers with a few "?" stays numbers
    return {"sep": sep, "encoding": "utf-8-sig", "skipinitialspace": True, "quoting": quoting,
            "decimal": decimal, "na_values": ["?"],
            "duplicated": sorted({n for n in names if names.count(n) > 1})}


# ============================================================================ one rank's part
def _rank_size(comm: Any) -> tuple[int, int]:
    return (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())


def _csv_byte_range(path: Path, rank: int, size: int) -> tuple[bytes, bytes]:
    """(header line, this rank's whole lines) of a text table split into byte ranges.

    The body after the header is cut into ``size`` equal byte ranges. A line belongs to the
    range in which it starts: a rank seeks to its start, skips the rest of a line begun
    before it, and reads whole lines until one starts at or past its end.
    """
    with open(path, "rb") as f:
        header = f.readline()
        body = f.tell()
        total = path.stat().st_size - body
        start, end = body + rank * total // size, body + (rank + 1) * total // size
        if start > body:
            f.seek(start - 1)
            if f.read(1) != b"\n":
                f.readline()  # the end of a line that began in the previous range
        else:
            f.seek(start)
        lines = []
        while f.tell() < end:
            line = f.readline()
            if not line:
                break
            lines.append(line)
    return header, b"".join(lines)


def _table_files(folder: Path) -> list[Path]:
    suffixes = PARQUET_SUFFIXES | {".csv", ".tsv", ".tab", ".txt"}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes
                  and not p.name.startswith("."))


def read_table_part(source: str, comm: Any = None, sep: str | None = None,
                    decimal: str | None = None) -> Any:
    """This rank's part of a table, so that no rank reads (or holds) the whole file.

    * Parquet: rank r of p reads the row groups ``r*G//p .. (r+1)*G//p - 1`` of the G in the
      file's metadata (write the file with at least p row groups);
    * CSV/TSV: the body is cut into p byte ranges; each rank reads the whole lines that
      start in its range (the header is read by every rank), so quoted fields must not
      hold line breaks;
    * a folder of CSV/TSV/Parquet files: rank r reads the files ``r*F//p .. (r+1)*F//p - 1``
      of the F in name order.

    The parts follow each other in rank order. Only ``comm``'s rank and size are used (no
    message is sent, so an error on one rank cannot leave the others waiting here); with
    ``comm=None``, or one rank, the part is the whole table. Raises ValueError naming the
    file and the problem.

    Example: ``part = read_table_part("big.parquet", MPI.COMM_WORLD)  # under mpiexec -n 4``
    """
    import pandas as pd  # noqa: PLC0415

    rank, size = _rank_size(comm)
    path = Path(source)
    if not path.exists():
        raise ValueError(f"{source}: no such file or folder")
    duplicated: list[str] = []
    decimal_used = decimal or "."
    try:
        if path.is_dir():
            files = _table_files(path)
            if len(files) < size:
                raise ValueError(f"{source}: {len(files)} table file(s) for {size} ranks; a "
                                 "folder is split by file, so it needs at least one per rank")
            mine = files[rank * len(files) // size:(rank + 1) * len(files) // size]
            parts = [read_table(str(f), sep=sep, decimal=decimal) for f in mine]
            duplicated = sorted({c for p in parts for c in p.attrs.get("duplicated_columns", [])})
            decimal_used = parts[0].attrs.get("decimal", ".")
            frame = pd.concat(parts, ignore_index=True)
        elif path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq  # noqa: PLC0415 - pandas' Parquet engine

            pf = pq.ParquetFile(path)
            groups = pf.metadata.num_row_groups
            if groups < size:
                raise ValueError(f"{source}: {groups} row group(s) for {size} ranks; each rank "
                                 "reads whole row groups, so write the file with at least one "
                                 "per rank (pyarrow: row_group_size=...)")
            mine = list(range(rank * groups // size, (rank + 1) * groups // size))
            frame = pf.read_row_groups(mine).to_pandas()
        else:
            opts = _text_options(path, sep, decimal, name=str(source))
            duplicated, decimal_used = opts.pop("duplicated"), opts["decimal"]
            header, lines = _csv_byte_range(path, rank, size)
            import io  # noqa: PLC0415

            frame = pd.read_csv(io.BytesIO(header + lines), **opts)
    except UnicodeDecodeError:
        raise ValueError(f"{source}: not UTF-8 text (is it a CSV file?)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as e:
        raise ValueError(f"{source}: cannot read it as a table ({' '.join(str(e).split())})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs["duplicated_columns"] = duplicated
    frame.attrs["decimal"] = decimal_used
    return frame


def _sample(path: Path) -> str:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return f.read(64 * 1024)


def _decimal_commas(sample: str) -> bool:
    """True when the numbers of a ';'-separated sample are written with a decimal comma."""
    import re  # noqa: PLC0415

    body = sample.split("\n", 1)[1] if "\n" in sample else ""
    commas = len(re.findall(r"(?:^|;)\s*-?\d+,\d+\s*(?=;|$)", body, flags=re.M))
    points = len(re.findall(r"(?:^|;)\s*-?\d+\.\d+\s*(?=;|$)", body, flags=re.M))
    return commas > points


def sniff_delimiter(path: str | Path, sample: str | None = None) -> str:
    """The most plausible delimiter of a text table among , ; tab and |.

    Example: ``sniff_delimiter("data.csv")  # ','``
    """
    import csv  # noqa: PLC0415

    sample = _sample(Path(path)) if sample is None else sample
    header = sample.splitlines()[0] if sample else ""
    try:
        found = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        # "1,5;2,5": the sniffer may take the decimal comma for the delimiter
        if found == "," and header.count(";") > header.count(","):
            return ";"
        return found
    except csv.Error:
        # The sniffer gives up on e.g. one-column files; count separators in the header.
        counts = {d: header.count(d) for d in ",;\t|"}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","
