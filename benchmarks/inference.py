"""Inference speed and start-up cost: neuralab against PyTorch, scikit-learn and plain NumPy.

Measures (medians, competitors interleaved in one process):
  * one row through the mnist net 784-(256,256)-10 under ``no_grad`` (target <= 25 us);
  * one row through ``MLPClassifier.predict_proba`` vs sklearn's (target <= half of sklearn);
  * throughput on 10,000 rows vs PyTorch (target: no worse);
  * ``import neuralab`` time and peak RSS (<= 150 ms, <= 40 MB) and ``neuralab --help``
    (<= 400 ms), each in a fresh process; wall time and CPU time are both shown, because on
    a loaded machine wall time mostly measures waiting for a core.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/inference.py [--quick]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _bench import CONFIGS, _nl_model, blas_info, load_data, load_text  # noqa: E402


def per_call(fn, calls: int, rounds: int, clock=time.perf_counter) -> list[float]:
    """Seconds per call of ``fn`` by ``clock``, one value per round of ``calls`` calls."""
    out = []
    for _ in range(rounds):
        t = clock()
        for _ in range(calls):
            fn()
        out.append((clock() - t) / calls)
    return out


def interleaved(fns: dict, calls: int, rounds: int, clock=time.perf_counter) -> dict[str, float]:
    """Median seconds per call of each function, the functions taking turns round by round.

    ``clock=time.thread_time`` counts only this thread's CPU time: on a loaded machine the
    wall clock also counts the time spent waiting for a core.
    """
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k] += per_call(fn, calls, 1, clock)
    return {k: statistics.median(v) for k, v in times.items()}


def startup(code: str | None, argv: list[str] | None, repeats: int) -> tuple[float, float, float]:
    """Median wall ms, CPU ms and peak RSS MB of a fresh process doing ``code`` (or ``argv``)."""
    walls, cpus, rss = [], [], []
    # VmHWM, not ru_maxrss: the latter survives exec and reports the parent's size at fork
    probe = ("import sys, time; t = time.perf_counter(); c = time.process_time(); {0}; "
             "w = (time.perf_counter() - t) * 1e3; u = (time.process_time() - c) * 1e3; "
             "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
             "print('STAT', w, u, int(hwm.split()[1]) / 1024)")
    for _ in range(repeats):
        if code is not None:
            out = subprocess.run([sys.executable, "-c", probe.format(code)], capture_output=True,
                                 text=True).stdout
            _, w, c, r = next(line for line in out.splitlines() if line.startswith("STAT")).split()
            walls.append(float(w))
            cpus.append(float(c))
            rss.append(float(r))
        else:
            import resource
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(argv, capture_output=True)
            walls.append((time.perf_counter() - t) * 1e3)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e3)
            rss.append(after.ru_maxrss / 1024)
    return statistics.median(walls), statistics.median(cpus), max(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds = 5 if args.quick else 9
    print("BLAS:", blas_info())
    print("before:", load_text(), "(a shared machine: timings are noisy)")
    # ---- start-up
    reps = 3 if args.quick else 5  # first, while this process is still small
    w, c, r = startup("import numpy", None, reps)
    print(f"import numpy:    wall {w:.0f} ms  CPU {c:.0f} ms  peak RSS {r:.0f} MB")
    w, c, r = startup("import neuralab", None, reps)
    print(f"import neuralab: wall {w:.0f} ms  CPU {c:.0f} ms  peak RSS {r:.0f} MB "
          "(target <= 150 ms, <= 40 MB)")
    exe = shutil.which("neuralab")
    if exe:
        w, c, r = startup(None, [exe, "--help"], reps)
        print(f"neuralab --help (console script): wall {w:.0f} ms  CPU {c:.0f} ms (target <= 400 ms)")
    help_code = ("from neuralab.cli import main; sys.argv = ['neuralab', '--help']\n"
                 "try:\n    main()\nexcept SystemExit:\n    pass")
    w, c, r = startup(f"exec({help_code!r})", None, reps)
    print(f"neuralab --help (in-process): wall {w:.0f} ms  CPU {c:.0f} ms  peak RSS {r:.0f} MB")
    from threadpoolctl import threadpool_limits

    import torch

    import neuralab as nl
    torch.set_num_threads(1)
    cfg = CONFIGS["mnist"]
    X, y = load_data(cfg)
    X_test = X[:10000]

    model = _nl_model(cfg, 0).eval()
    tmodel = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                 torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()
    with torch.no_grad():  # same weights, so the outputs can be compared
        for tl, p in zip([m for m in tmodel if isinstance(m, torch.nn.Linear)],
                         [m for m in model.modules() if isinstance(m, nl.nn.Linear)]):
            tl.weight.copy_(torch.from_numpy(p.weight.data))
            tl.bias.copy_(torch.from_numpy(p.bias.data))
    Ws = [(m.weight.data, m.bias.data) for m in model.modules() if isinstance(m, nl.nn.Linear)]

    def numpy_by_hand(x):
        for i, (W, b) in enumerate(Ws):
            x = x @ W.T + b
            if i < len(Ws) - 1:
                x = np.maximum(x, 0)
        return x

    row = X[:1]
    trow = torch.from_numpy(row)
    tX = torch.from_numpy(X_test)

    def nl_row():
        with nl.no_grad():
            return model(row)

    def torch_row():
        with torch.no_grad():
            return tmodel(trow)

    assert np.allclose(nl_row().data, torch_row().numpy(), atol=1e-5)
    with threadpool_limits(1, user_api="blas"):
        one = interleaved({"neuralab": nl_row, "torch": torch_row,
                           "numpy": lambda: numpy_by_hand(row)}, calls=2000, rounds=rounds)
        cpu = interleaved({"neuralab": nl_row, "torch": torch_row,
                           "numpy": lambda: numpy_by_hand(row)}, calls=2000, rounds=rounds,
                          clock=time.thread_time)
    print(f"\nsingle row, mnist net, no_grad (1 thread): neuralab {one['neuralab'] * 1e6:.1f} us  "
          f"PyTorch {one['torch'] * 1e6:.1f} us  NumPy by hand {one['numpy'] * 1e6:.1f} us  "
          f"(wall; target neuralab <= 25 us)")
    print(f"  the same, CPU time of this thread: neuralab {cpu['neuralab'] * 1e6:.1f} us  "
          f"PyTorch {cpu['torch'] * 1e6:.1f} us  NumPy by hand {cpu['numpy'] * 1e6:.1f} us")

    # ---- estimators: predict_proba on one row
    from sklearn.neural_network import MLPClassifier as SkMLP
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = nl.MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=1, random_state=0,
                                dtype="float32").fit(X[:2000], y[:2000])
        theirs = SkMLP(hidden_layer_sizes=(256, 256), max_iter=1, random_state=0).fit(X[:2000], y[:2000])
    with threadpool_limits(1, user_api="blas"):
        est = interleaved({"neuralab": lambda: ours.predict_proba(row),
                           "sklearn": lambda: theirs.predict_proba(row)}, calls=300, rounds=rounds)
    print(f"single row predict_proba: nl.MLPClassifier {est['neuralab'] * 1e6:.0f} us  "
          f"sklearn {est['sklearn'] * 1e6:.0f} us  ratio {est['neuralab'] / est['sklearn']:.2f} "
          f"(target <= 0.5)")

    # ---- throughput on 10,000 rows, default threads for both
    torch.set_num_threads(2)

    def nl_batch():
        with nl.no_grad():
            return model(X_test)

    def torch_batch():
        with torch.no_grad():
            return tmodel(tX)

    many = interleaved({"neuralab": nl_batch, "torch": torch_batch}, calls=3, rounds=rounds)
    many1 = None
    with threadpool_limits(1, user_api="blas"):
        torch.set_num_threads(1)
        many1 = interleaved({"neuralab": nl_batch, "torch": torch_batch}, calls=3, rounds=rounds)
    print(f"10,000 rows (2 threads): neuralab {10000 / many['neuralab']:,.0f} rows/s  PyTorch "
          f"{10000 / many['torch']:,.0f} rows/s  ratio time {many['neuralab'] / many['torch']:.2f}")
    print(f"10,000 rows (1 thread):  neuralab {10000 / many1['neuralab']:,.0f} rows/s  PyTorch "
          f"{10000 / many1['torch']:,.0f} rows/s  ratio time {many1['neuralab'] / many1['torch']:.2f}")

    print("after:", load_text())


if __name__ == "__main__":
    main()
