"""Per-op overhead of the autodiff engine on small arrays, next to PyTorch eager (CPU).

Run it with the BLAS kernel settings unset for this command only:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ops.py

Prints, per case, the median time of neuralab, of the raw NumPy work the op does (so the
engine's own overhead is the difference), and of PyTorch eager with 2 threads, plus ratios.
Cases: 32x32 add, matmul, relu, sum (forward only, inputs requiring grad so the graph is
recorded), and one forward+backward step of a 64-128-128-10 MLP on a batch of 32 with
softmax cross-entropy (no optimizer update, so only the engine is timed).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

import neuralab as nl
from neuralab import functional as F

REPEATS = 15  # medians over this many timing runs


def bench(fns: list, number: int) -> list:
    """Median microseconds per call of each function, over REPEATS rounds of ``number`` calls.

    The functions take turns within each round, so background load on the shared machine
    hits all of them alike and the ratios stay meaningful.
    """
    for fn in fns:
        fn()  # warm-up
    runs: list = [[] for _ in fns]
    for _ in range(REPEATS):
        for fn, times in zip(fns, runs):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - t0) / number * 1e6)
    return [statistics.median(times) for times in runs]


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    rows = [f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
            f"threads={i.get('num_threads')}" for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(rows) or "no BLAS found"


def op_cases(rng: np.random.Generator):
    a_np = rng.standard_normal((32, 32)).astype(np.float32)
    b_np = rng.standard_normal((32, 32)).astype(np.float32)
    a = nl.tensor(a_np, requires_grad=True)
    b = nl.tensor(b_np, requires_grad=True)
    return {
        "add 32x32": (lambda: a + b, lambda: a_np + b_np),
        "matmul 32x32": (lambda: a @ b, lambda: a_np @ b_np),
        "relu 32x32": (lambda: F.relu(a), lambda: np.maximum(a_np, 0)),
        "sum 32x32": (lambda: a.sum(), lambda: a_np.sum()),
    }, (a_np, b_np)


def mlp_step_neuralab(rng: np.random.Generator, x_np, y_np):
    sizes = [(128, 64), (128, 128), (10, 128)]
    params = []
    for out_f, in_f in sizes:
        w = rng.uniform(-1, 1, (out_f, in_f)).astype(np.float32) / np.sqrt(in_f)
        params += [nl.tensor(w, requires_grad=True), nl.tensor(np.zeros(out_f), requires_grad=True)]
    x, y = nl.tensor(x_np), nl.tensor(y_np)
    w1, b1, w2, b2, w3, b3 = params

    def step():
        for p in params:
            p.grad = None
        h = F.relu(F.linear(x, w1, b1))
        h = F.relu(F.linear(h, w2, b2))
        loss = F.cross_entropy(F.linear(h, w3, b3), y)
        loss.backward()
        return loss
    return step, params


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"BLAS: {blas_info()}")
    print("Timings are medians; the machine is shared with other work, so expect noise.\n")
    cases, (a_np, b_np) = op_cases(rng)
    x_np = rng.standard_normal((32, 64)).astype(np.float32)
    y_np = rng.integers(0, 10, 32)
    step, params = mlp_step_neuralab(rng, x_np, y_np)

    try:
        import torch
    except ImportError:
        torch = None
    torch_cases = {}
    if torch is not None:
        torch.set_num_threads(2)
        ta = torch.tensor(a_np, requires_grad=True)
        tb = torch.tensor(b_np, requires_grad=True)
        torch_cases = {
            "add 32x32": lambda: ta + tb,
            "matmul 32x32": lambda: ta @ tb,
            "relu 32x32": lambda: torch.relu(ta),
            "sum 32x32": lambda: ta.sum(),
        }
        tparams = [torch.tensor(p.numpy().copy(), requires_grad=True) for p in params]
        tx, ty = torch.tensor(x_np), torch.tensor(y_np)
        tw1, tb1, tw2, tb2, tw3, tb3 = tparams
        tf = torch.nn.functional

        def torch_step():
            for p in tparams:
                p.grad = None
            h = torch.relu(tf.linear(tx, tw1, tb1))
            h = torch.relu(tf.linear(h, tw2, tb2))
            loss = tf.cross_entropy(tf.linear(h, tw3, tb3), ty)
            loss.backward()
            return loss
        torch_cases["MLP step 64-128-128-10, batch 32"] = torch_step
        # same numbers in, same loss out: the comparison is of equal work
        assert abs(float(step().item()) - float(torch_step().item())) < 1e-4

    header = f"{'case':34s} {'neuralab us':>11s} {'numpy us':>9s} {'overhead us':>11s} " \
             f"{'torch us':>9s} {'nl/torch':>8s}"
    print(header)
    print("-" * len(header))
    nan = float("nan")
    for name, (nl_fn, np_fn) in cases.items():
        fns = [nl_fn, np_fn] + ([torch_cases[name]] if name in torch_cases else [])
        t_nl, t_np, t_torch = (bench(fns, 2000) + [nan])[:3]
        print(f"{name:34s} {t_nl:11.2f} {t_np:9.2f} {t_nl - t_np:11.2f} {t_torch:9.2f} "
              f"{t_nl / t_torch:8.2f}")
    # forward + backward through a chain of 100 multiplications, per op: what the engine adds
    # to both passes (the NumPy line does the same arithmetic: y*c forward, g*c backward)
    chain_x = nl.tensor(a_np, requires_grad=True)

    def chain_nl():
        y = chain_x
        for _ in range(100):
            y = y * 1.0001
        y.backward(np.ones_like(a_np))

    def chain_np():
        y, g = a_np, np.ones_like(a_np)
        for _ in range(100):
            y = y * np.float32(1.0001)
        for _ in range(100):
            g = g * np.float32(1.0001)
    fns = [chain_nl, chain_np]
    if torch is not None:
        t_chain = torch.tensor(a_np, requires_grad=True)

        def chain_torch():
            y = t_chain
            for _ in range(100):
                y = y * 1.0001
            y.backward(torch.ones_like(t_chain))
        fns.append(chain_torch)
    t_nl, t_np, t_torch = [t / 100 for t in bench(fns, 20)] + ([] if torch else [nan])
    print(f"{'fwd+bwd per op, chain of 100 mul':34s} {t_nl:11.2f} {t_np:9.2f} {t_nl - t_np:11.2f} "
          f"{t_torch:9.2f} {t_nl / t_torch:8.2f}")

    name = "MLP step 64-128-128-10, batch 32"
    fns = [step] + ([torch_cases[name]] if name in torch_cases else [])
    t_nl, t_torch = (bench(fns, 200) + [nan])[:2]
    print(f"{name:34s} {t_nl:11.2f} {'':>9s} {'':>11s} {t_torch:9.2f} {t_nl / t_torch:8.2f}")
    print("\noverhead = neuralab time - the same NumPy work done directly (Function.apply, "
          "Tensor creation, graph recording).")


if __name__ == "__main__":
    main()
