"""Shared pieces of the speed and memory benchmarks: configurations, data, competitors, timing.

Each competitor is an object whose ``epoch()`` trains one epoch and returns its seconds, so a
benchmark can interleave competitors in one process (every one sees the same machine load)
and take medians. Heavy imports (torch, jax, sklearn) happen inside the competitor that needs
them, so a child process measuring one competitor's memory loads only that library.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("NEURALAB_DATA", "data")) / "mnist.npz"


@dataclass
class Config:
    name: str
    n_in: int
    hidden: tuple
    n_out: int
    samples: int
    batch: int


CONFIGS = {
    "digits": Config("digits", 64, (128,), 10, 1797, 64),
    "mnist": Config("mnist", 784, (256, 256), 10, 20000, 128),
    "wide": Config("wide", 784, (1024, 1024), 10, 10000, 256),
    "deep": Config("deep", 32, (64,) * 20, 2, 10000, 128),
}
LR = {"sgd": 0.01, "adam": 1e-3}


def load_data(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """float32 features and int64 labels for a configuration (real data where we have it)."""
    if cfg.name == "digits":
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        return (X / 16.0).astype(np.float32), y.astype(np.int64)
    if cfg.n_in == 784:
        with np.load(MNIST) as d:
            X = d["x_train"][:cfg.samples].reshape(cfg.samples, -1).astype(np.float32) / 255.0
            return X, d["y_train"][:cfg.samples].astype(np.int64)
    rng = np.random.default_rng(0)  # deep: a synthetic rule a 20-layer net can learn
    X = rng.standard_normal((cfg.samples, cfg.n_in)).astype(np.float32)
    w = rng.standard_normal(cfg.n_in)
    return X, (X @ w > 0).astype(np.int64)


def units(cfg: Config) -> list[int]:
    return [cfg.n_in, *cfg.hidden, cfg.n_out]


# ============================================================================ competitors
class Floor:
    """The GEMMs one epoch of training needs, nothing else: forward x @ W.T and the weight
    gradient g.T @ x for every layer, the input gradient g @ W for all but the first.
    Run with ``threads`` BLAS threads (the table's floor is the faster of 1 and 2)."""

    label = "GEMM floor"

    def __init__(self, cfg: Config, opt: str, X, y, seed: int = 0, threads: int = 2) -> None:
        self.threads = threads
        rng = np.random.default_rng(seed)
        u = units(cfg)
        self.W = [rng.standard_normal((o, i)).astype(np.float32) * 0.05 for i, o in zip(u[:-1], u[1:])]
        self.n, self.bs = len(X), cfg.batch
        self.X = X

    def epoch(self) -> float:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(self.threads, user_api="blas"):
            return self._epoch()

    def _epoch(self) -> float:
        t = time.perf_counter()
        for s in range(0, self.n, self.bs):
            a = self.X[s:s + self.bs]
            acts = [a]
            for W in self.W:
                acts.append(acts[-1] @ W.T)
            g = acts[-1]
            for i in range(len(self.W) - 1, -1, -1):
                _ = g.T @ acts[i]
                if i:
                    g = g @ self.W[i]
        return time.perf_counter() - t


def _nl_model(cfg: Config, seed: int):
    from neuralab import nn
    u = units(cfg)
    layers = []
    for i, (a, b) in enumerate(zip(u[:-1], u[1:])):
        layers.append(nn.Linear(a, b, rng=seed + i))
        if i < len(u) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _nl_opt(model, opt: str):
    from neuralab import optim
    if opt == "sgd":
        return optim.SGD(model.parameters(), lr=LR["sgd"], momentum=0.9)
    return optim.Adam(model.parameters(), lr=LR["adam"])


class NLFit:
    """neuralab through ``nl.fit``: one ``fit(epochs=1)`` per call, timed from the epoch's
    begin to its end by a callback (so fit's one-off data checks are not counted)."""

    label = "nl.fit"

    def __init__(self, cfg: Config, opt: str, X, y, seed: int = 0,
                 load_kernels: bool = True) -> None:
        import neuralab as nl
        from neuralab import kernels
        if load_kernels:
            # steady state: numba's kernels loaded, as after a process's first large job (a
            # fresh process's first small fits run on NumPy instead: same bits, kernels.py)
            kernels.numba_module()
        self.nl, self.cfg, self.X, self.y = nl, cfg, X, y
        self.model = _nl_model(cfg, seed)
        self.opt = _nl_opt(self.model, opt)
        self.rng = np.random.default_rng(seed)
        outer = self

        class Timer(nl.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer._t1 = time.perf_counter()

        self.timer = Timer()

    def epoch(self) -> float:
        self.nl.fit(self.model, self.X, self.y, optimizer=self.opt, epochs=1,
                    batch_size=self.cfg.batch, verbose=0, seed=self.rng, callbacks=[self.timer])
        return self._t1 - self._t0


class NLEstimator:
    """neuralab through ``nl.MLPClassifier.partial_fit`` (one epoch per call), timed by its
    callback hooks from ``on_train_begin`` to ``on_epoch_end``."""

    label = "nl.MLPClassifier"

    def __init__(self, cfg: Config, opt: str, X, y, seed: int = 0) -> None:
        import neuralab as nl
        outer = self

        class Timer:
            def on_train_begin(self, logs=None):
                outer._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                outer._t1 = time.perf_counter()

        self.clf = nl.MLPClassifier(hidden_layer_sizes=cfg.hidden, solver=opt, alpha=0.0,
                                    batch_size=cfg.batch, learning_rate_init=LR[opt],
                                    momentum=0.9, nesterovs_momentum=False, random_state=seed,
                                    dtype="float32", callbacks=[Timer()])
        self.X, self.y, self.classes = X, y, np.unique(y)

    def epoch(self) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.partial_fit(self.X, self.y, classes=self.classes)
        return self._t1 - self._t0


class Sklearn:
    """scikit-learn's MLPClassifier on float32 data, same solver, one ``partial_fit`` epoch
    per call (includes its input validation, a few ms on mnist). BLAS is held to ``threads``
    (default 1): on this loaded 2-core machine 2 threads made an mnist epoch take 63 s
    instead of ~2 s, which would measure the machine, not sklearn."""

    label = "sklearn"

    def __init__(self, cfg: Config, opt: str, X, y, seed: int = 0) -> None:
        from sklearn.neural_network import MLPClassifier
        self.threads = int(os.environ.get("BENCH_SKLEARN_THREADS", "1"))
        self.clf = MLPClassifier(hidden_layer_sizes=cfg.hidden, solver=opt, alpha=0.0,
                                 batch_size=cfg.batch, learning_rate_init=LR[opt], momentum=0.9,
                                 nesterovs_momentum=False, random_state=seed)
        self.X, self.y, self.classes = X, y, np.unique(y)

    def epoch(self) -> float:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(self.threads, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            self.clf.partial_fit(self.X, self.y, classes=self.classes)
            return time.perf_counter() - t


class Torch:
    """PyTorch eager CPU, the ordinary loop (gather a batch by index, forward, backward, step).

    ``fused=True`` uses PyTorch's fused optimizer kernels (``torch.optim.SGD/Adam(fused=True)``,
    one multi-tensor kernel per step, 2-4x faster than the default per-tensor loop at one
    thread); ``fused=False`` is PyTorch's default ("foreach" where available).
    """

    def __init__(self, cfg: Config, opt: str, X, y, seed: int = 0, threads: int = 2,
                 device: str = "cpu", fused: bool = False) -> None:
        import torch
        self.torch, self.threads, self.bs, self.device = torch, threads, cfg.batch, device
        self.label = (f"torch {threads}t" if device == "cpu" else "torch cuda") + (" fused" if fused else "")
        torch.manual_seed(seed)
        u = units(cfg)
        layers = []
        for i, (a, b) in enumerate(zip(u[:-1], u[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(u) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers).to(device)
        params = self.model.parameters()
        extra = {"fused": True} if fused else {}
        self.opt = (torch.optim.SGD(params, lr=LR["sgd"], momentum=0.9, **extra) if opt == "sgd"
                    else torch.optim.Adam(params, lr=LR["adam"], **extra))
        self.X = torch.from_numpy(X).to(device)
        self.y = torch.from_numpy(y).to(device)
        self.gen = torch.Generator(device="cpu").manual_seed(seed)

    def epoch(self) -> float:
        torch = self.torch
        if self.device == "cpu":
            torch.set_num_threads(self.threads)
        F = torch.nn.functional
        t = time.perf_counter()
        perm = torch.randperm(len(self.X), generator=self.gen).to(self.device)
        total = 0.0
        for s in range(0, len(self.X), self.bs):
            idx = perm[s:s + self.bs]
            xb, yb = self.X[idx], self.y[idx]
            self.opt.zero_grad()
            loss = F.cross_entropy(self.model(xb), yb)
            loss.backward()
            self.opt.step()
            total += loss.item()
        return time.perf_counter() - t


class Jax:
    """JAX on CPU with the whole training step (gather, forward, backward, update) under
    ``jax.jit``; SGD-momentum and Adam written out as PyTorch defines them."""

    label = "JAX jit"

    def __init__(self, cfg: Config, opt: str, X, y, seed: int = 0) -> None:
        import jax
        import jax.numpy as jnp
        self.jax, self.jnp, self.bs = jax, jnp, cfg.batch
        rng = np.random.default_rng(seed)
        params = []
        for a, b in zip(units(cfg)[:-1], units(cfg)[1:]):
            bound = 1 / np.sqrt(a)
            params.append((jnp.asarray(rng.uniform(-bound, bound, (b, a)).astype(np.float32)),
                           jnp.asarray(rng.uniform(-bound, bound, b).astype(np.float32))))
        self.params = params
        def zeros():  # separate buffers: donated arrays must not be shared
            return jax.tree_util.tree_map(jnp.zeros_like, params)
        self.state = (zeros(), zeros(), jnp.zeros((), jnp.float32)) if opt == "adam" else zeros()
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)
        self.rng = np.random.default_rng(seed)
        lr = LR[opt]

        def loss_fn(p, xb, yb):
            h = xb
            for W, b in p[:-1]:
                h = jax.nn.relu(h @ W.T + b)
            W, b = p[-1]
            logp = jax.nn.log_softmax(h @ W.T + b)
            return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

        def step(p, s, X, Y, idx):
            xb, yb = jnp.take(X, idx, axis=0), jnp.take(Y, idx, axis=0)
            loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
            tm = jax.tree_util.tree_map
            if opt == "sgd":  # torch: buf = 0.9 buf + g; w -= lr buf
                s = tm(lambda b_, g_: 0.9 * b_ + g_, s, g)
                p = tm(lambda w, b_: w - lr * b_, p, s)
            else:
                m, v, t = s
                t = t + 1
                m = tm(lambda m_, g_: 0.9 * m_ + 0.1 * g_, m, g)
                v = tm(lambda v_, g_: 0.999 * v_ + 0.001 * g_ * g_, v, g)
                c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
                p = tm(lambda w, m_, v_: w - lr / c1 * m_ / (jnp.sqrt(v_ / c2) + 1e-8), p, m, v)
                s = (m, v, t)
            return p, s, loss

        self.step = jax.jit(step, donate_argnums=(0, 1))

    def epoch(self) -> float:
        t = time.perf_counter()
        perm = self.rng.permutation(len(self.X)).astype(np.int32)
        loss = None
        for s in range(0, len(perm), self.bs):
            self.params, self.state, loss = self.step(self.params, self.state, self.X, self.y,
                                                      perm[s:s + self.bs])
        loss.block_until_ready()
        return time.perf_counter() - t


# ============================================================================ measuring
def blas_info() -> str:
    """Which BLAS library, kernel (architecture) and thread count NumPy uses."""
    from threadpoolctl import threadpool_info
    parts = [f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
             f"threads={i.get('num_threads')}" for i in threadpool_info() if i.get("user_api") == "blas"]
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    return "; ".join(parts) + (f"  (env overrides still set: {env})" if env else "")


def load_text() -> str:
    return "load average %.1f %.1f %.1f on %d cores" % (*os.getloadavg(), os.cpu_count())


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    VmHWM (Linux), not ru_maxrss: ru_maxrss survives exec, so a child started by a parent of
    1.2 GB (torch and JAX loaded) reported 1229 MB whatever it did itself.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:  # not Linux
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def interleave(competitors: dict, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run one epoch of each competitor in turn, ``warmup + repeats`` rounds; keep the timed ones."""
    times = {k: [] for k in competitors}
    for r in range(warmup + repeats):
        for k, c in competitors.items():
            dt = c.epoch()
            if r >= warmup:
                times[k].append(dt)
    return times


def fmt_ms(s: float) -> str:
    if s != s:
        return "-"
    return f"{s * 1e3:.1f}" if s < 1 else f"{s * 1e3:.0f}"


def child_peak_rss(argv: list[str]) -> float:
    """Run ``python <argv>`` and return the child's peak RSS in MB (from its own report)."""
    import subprocess
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("PEAK_RSS_MB "):
            return float(line.split()[1])
    sys.stderr.write(out.stderr[-2000:])
    return float("nan")
