"""Per-epoch training time: neuralab against the GEMM floor, PyTorch, JAX and scikit-learn.

Four MLPs (ReLU, softmax cross-entropy, float32) (the configurations of the README's benchmark table), each with SGD-momentum and
with Adam. All competitors run in this one process, interleaved epoch by epoch, so each sees
the same machine load; the table shows medians after one warm-up epoch. Peak memory of each
competitor is measured in a child process of its own (one epoch; includes its imports).

Run (unset the OpenBLAS overrides together, for benchmarks only):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_speed.py [--quick]
Options: --configs digits,mnist  --optimizers sgd,adam  --repeats 7  --no-memory
         --device cuda (neuralab on CuPy next to PyTorch on CUDA, when a GPU is at hand)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _bench import (CONFIGS, Floor, Jax, NLEstimator, NLFit, Sklearn, Torch, blas_info,  # noqa: E402
                    child_peak_rss, fmt_ms, interleave, load_data, load_text, median, peak_rss_mb)

COMPETITORS = {
    "floor1": lambda c, o, X, y: Floor(c, o, X, y, threads=1),
    "floor2": lambda c, o, X, y: Floor(c, o, X, y, threads=2),
    "fit": lambda c, o, X, y: NLFit(c, o, X, y),
    "est": lambda c, o, X, y: NLEstimator(c, o, X, y),
    "torch2": lambda c, o, X, y: Torch(c, o, X, y, threads=2),
    "torch1": lambda c, o, X, y: Torch(c, o, X, y, threads=1),
    "torchf2": lambda c, o, X, y: Torch(c, o, X, y, threads=2, fused=True),
    "torchf1": lambda c, o, X, y: Torch(c, o, X, y, threads=1, fused=True),
    "jax": lambda c, o, X, y: Jax(c, o, X, y),
    "sklearn": lambda c, o, X, y: Sklearn(c, o, X, y),
}
HEAD = ["floor1", "floor2", "fit", "est", "torch2", "torch1", "torchf2", "torchf1", "jax", "sklearn"]
NAMES = {"floor": "floor", "floor1": "floor 1t", "floor2": "floor 2t", "fit": "nl.fit", "est": "nl.MLPC", "torch2": "torch 2t",
         "torch1": "torch 1t", "torchf2": "torch fused 2t", "torchf1": "torch fused 1t",
         "jax": "JAX jit", "sklearn": "sklearn"}


def child(config: str, opt: str, who: str, epochs: int = 2) -> None:
    """Train one competitor alone for a couple of epochs and print its peak RSS."""
    cfg = CONFIGS[config]
    X, y = load_data(cfg)
    c = COMPETITORS[who](cfg, opt, X, y)
    for _ in range(epochs):
        c.epoch()
    print(f"PEAK_RSS_MB {peak_rss_mb():.1f}")


def _have(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def run_cuda(args) -> None:
    """neuralab on CuPy next to PyTorch on CUDA (per-epoch medians)."""
    import neuralab as nl
    try:
        import cupy  # noqa: F401
        ok = cupy.is_available()
    except ImportError:
        ok = False
    if not ok:
        print("--device cuda: no CuPy/CUDA GPU here; nothing to measure (the CPU path never "
              "imports CuPy).")
        return
    print("GPU:", cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        X, y = load_data(cfg)
        for opt in args.optimizers.split(","):
            fit = NLFit(cfg, opt, X, y)
            fit.model.to("cuda")
            fit.opt = __import__("_bench")._nl_opt(fit.model, opt)
            orig = fit.epoch

            def epoch(f=fit, o=orig):
                f.nl.fit(f.model, f.X, f.y, optimizer=f.opt, epochs=1, batch_size=f.cfg.batch,
                         verbose=0, seed=f.rng, callbacks=[f.timer], device="cuda")
                cupy.cuda.Device().synchronize()
                return f._t1 - f._t0
            fit.epoch = epoch
            comps = {"fit": fit, "torch": Torch(cfg, opt, X, y, device="cuda")}
            t = interleave(comps, args.repeats)
            print(f"{name:7s} {opt:5s} nl.fit(cupy) {fmt_ms(median(t['fit']))} ms   "
                  f"torch cuda {fmt_ms(median(t['torch']))} ms   "
                  f"ratio {median(t['fit']) / median(t['torch']):.2f}")
    del nl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="digits and mnist, 3 repeats, no memory")
    ap.add_argument("--configs", default="digits,mnist,wide,deep")
    ap.add_argument("--optimizers", default="sgd,adam")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--only", default=",".join(HEAD), help="competitors to run")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--child", nargs=3, metavar=("CONFIG", "OPT", "WHO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    if args.quick:
        args.configs, args.repeats, args.no_memory = "digits,mnist", 3, True
    print("neuralab training speed, per-epoch medians in ms "
          f"({args.repeats} repeats after 1 warm-up, competitors interleaved)")
    print("BLAS:", blas_info())
    print("load before:", load_text())
    if args.device == "cuda":
        return run_cuda(args)
    who = [w for w in args.only.split(",") if w in COMPETITORS]
    if "jax" in who and not _have("jax"):
        print("JAX not installed (pip install -r benchmarks/requirements.txt); skipping it")
        who.remove("jax")

    rows = []
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        X, y = load_data(cfg)
        for opt in args.optimizers.split(","):
            comps = {w: COMPETITORS[w](cfg, opt, X, y) for w in who}
            times = interleave(comps, args.repeats)
            med = {w: median(times[w]) for w in who}
            floors = [med[w] for w in ("floor1", "floor2") if w in med]
            if floors:
                med["floor"] = min(floors)
            rows.append((name, opt, med))
            line = "  ".join(f"{NAMES[w]} {fmt_ms(med[w])}" for w in who)
            print(f"  {name:7s} {opt:5s} {line}", flush=True)
            del comps
    print("load after:", load_text())

    mem = {}
    if not args.no_memory:
        script = str(Path(__file__).resolve())
        for name in args.configs.split(","):
            for w in who:
                if w.startswith("floor"):
                    continue
                mem[(name, w)] = child_peak_rss([script, "--child", name, "adam", w])

    print()
    cols = [w for w in HEAD if w in who and not w.startswith("floor")]
    cols = (["floor"] if any(w.startswith("floor") for w in who) else []) + cols
    print("| config | opt | " + " | ".join(NAMES[w] for w in cols)
          + " | fit/torch2 | fit/torch best | fit/torch fused best | fit/JAX | fit/sklearn | fit/floor | est/fit |")
    print("|" + "---|" * (len(cols) + 9))
    for name, opt, med in rows:
        def ratio(a, b):
            return f"{med[a] / med[b]:.2f}" if a in med and b in med else "-"
        torches = [med[w] for w in ("torch1", "torch2") if w in med]
        best = f"{med['fit'] / min(torches):.2f}" if torches and "fit" in med else "-"
        fused = [med[w] for w in ("torchf1", "torchf2") if w in med]
        best_fused = f"{med['fit'] / min(fused):.2f}" if fused and "fit" in med else "-"
        print(f"| {name} | {opt} | " + " | ".join(fmt_ms(med[w]) for w in cols)
              + f" | {ratio('fit', 'torch2')} | {best} | {best_fused} | {ratio('fit', 'jax')} | {ratio('fit', 'sklearn')}"
              f" | {ratio('fit', 'floor')} | {ratio('est', 'fit')} |")
    if mem:
        print()
        print("Peak RSS (MB) of a process training 2 epochs with Adam (imports included):")
        print("| config | " + " | ".join(NAMES[w] for w in cols if w != "floor") + " |")
        print("|---|" + "---|" * (len(cols) - 1))
        for name in args.configs.split(","):
            print(f"| {name} | " + " | ".join(f"{mem[(name, w)]:.0f}" for w in cols if w != "floor") + " |")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
