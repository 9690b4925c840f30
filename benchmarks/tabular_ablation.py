"""Each RealMLP-TD ingredient's gain, measured on validation folds of the TRAINING parts only.

For a table and a seed, the benchmark's 80% training part (benchmarks/tabular.py, same split)
is split again 75/25; every variant (the default with one ingredient switched off or changed)
is fitted on the 75% and scored on the 25%. The test parts are never read, so these numbers
can choose defaults. Results are cached per (variant, table, seed) like the benchmark's.

Usage:
    NEURALAB_DATA=... python benchmarks/tabular_ablation.py --only OJ,HMDA,concrete --seeds 1
    python benchmarks/tabular_ablation.py --variants sk_mlp,catboost   # peers, same folds
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from tabular import DATA, ROOT, load_table, run_model, score, split

# peers on the same validation folds (benchmarks/tabular.py's models, at their defaults)
PEERS = ("sk_mlp", "catboost", "lightgbm", "xgboost", "hgb")

# Every variant changes one thing of ONE network (the recipe's ingredients are measured on
# it), except "auto": the default preset as it is (its ensemble or bags by table size).
ONE_NETWORK = {"n_ensemble": 1, "n_bags": 1}
VARIANTS = {
    "default": {},
    "auto": {"n_ensemble": "auto", "n_bags": "auto"},
    "no_periodic": {"periodic": False},
    "no_front_scale": {"front_scale": False},
    "no_smooth_clip": {"smooth_clip": False},
    "no_robust_scale": {"robust_scale": False},
    "no_parametric_act": {"parametric_act": False},
    "no_ntk": {"ntk": False},
    "constant_lr": {"lr_schedule": "constant"},
    "no_dropout": {"dropout": 0.0},
    "no_weight_decay": {"weight_decay": 0.0},
    "no_label_smoothing": {"label_smoothing": 0.0},
    "relu": {"activation": "relu"},
    "epochs_64": {"n_epochs": 64},
    "ensemble_2": {"n_ensemble": 2},
    "ensemble_4": {"n_ensemble": 4},
    "bags_3": {"n_bags": 3},
    "bags_5": {"n_bags": 5},
    "bags_8": {"n_bags": 8},
    "val_log_loss": {"val_metric": "log_loss"},
    "ple_0": {"ple_bins": 0},
    "ple_16": {"ple_bins": 16},
    "ple_4": {"ple_bins": 4},
    "ple_auto": {"ple_bins": "auto"},
    # the presets as they are (bags, the bins' trial)
    "preset_default": {"n_bags": "auto"},
    "preset_best": {"n_ensemble": 4, "n_bags": 3},
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="OJ,HMDA,concrete")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, from {sorted(VARIANTS)} and the peers {list(PEERS)}")
    ap.add_argument("--cache", default=str(ROOT / "benchmarks" / "results" / "tabular_ablation.json"))
    ap.add_argument("--as-category", default="",
                    help="comma-separated columns given as categories (cached as VARIANT@cat:COLS)")
    ap.add_argument("--rows", type=int, default=0,
                    help="first draw this many rows of each larger table (seed 0; cached as "
                         "VARIANT@rows:N): mid-sized tables from large ones")
    args = ap.parse_args(argv)
    as_category = [c for c in args.as_category.split(",") if c]
    import neuralab as nl
    from sklearn.model_selection import train_test_split

    suite = {e["name"]: e for e in json.loads((DATA / "suite.json").read_text())}
    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS and v not in PEERS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; known: {sorted(VARIANTS)} and {list(PEERS)}")
    tag = (f"@cat:{args.as_category}" if as_category else "") + (
        f"@rows:{args.rows}" if args.rows else "")
    tables = args.only.split(",")
    for name in tables:
        entry = suite[name]
        cls = entry["task"] == "classification"
        X, y = load_table(entry)
        if args.rows and len(X) > args.rows:
            keep = np.random.default_rng(0).choice(len(X), args.rows, replace=False)
            X, y = X.iloc[keep].reset_index(drop=True), y.iloc[keep].reset_index(drop=True)
        for col in as_category:  # an integer id, say, that a user would declare a category
            if col in X.columns:
                X[col] = X[col].astype("category")
        for seed in range(args.seeds):
            Xtr, _, ytr, _ = split(entry, X, y, seed)  # the test part is dropped here
            Xa, Xv, ya, yv = train_test_split(Xtr, ytr, test_size=0.25, random_state=seed,
                                              stratify=ytr if cls else None)
            for v in variants:
                key = f"{v}{tag}|{name}|{seed}"
                if key in cache:
                    continue
                if v in PEERS:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        pred, fit_s = run_model(v, entry, Xa, ya, Xv, seed)
                    cache[key] = {"score": score(entry["task"], yv, pred), "fit_s": fit_s}
                else:
                    cls_ = nl.TabularClassifier if cls else nl.TabularRegressor
                    est = cls_(random_state=seed, **{**ONE_NETWORK, **VARIANTS[v]})
                    t = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        est.fit(Xa, ya)
                    cache[key] = {"score": score(entry["task"], yv, est.predict(Xv)),
                                  "fit_s": time.perf_counter() - t}
                print(key, cache[key], flush=True)
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True))
    print("\n| variant | " + " | ".join(tables) + " | mean gain of the ingredient |")
    print("|---" * (len(tables) + 2) + "|")
    seeds = range(args.seeds)
    # the gain is measured against "default" (one network); without its runs it is left blank
    has_base = all(f"default{tag}|{t}|{s}" in cache for t in tables for s in seeds)
    for v in variants:
        vals = [np.mean([cache[f"{v}{tag}|{t}|{s}"]["score"] for s in seeds]) for t in tables]
        gain = ""
        if has_base:
            base = [np.mean([cache[f"default{tag}|{t}|{s}"]["score"] for s in seeds])
                    for t in tables]
            gain = f"{np.mean(np.subtract(base, vals)):+.4f}"
        print(f"| {v} | " + " | ".join(f"{x:.4f}" for x in vals) + f" | {gain} |")


if __name__ == "__main__":
    main()
