"""neuralab's tabular presets against gradient boosting and other MLPs on real tables.

For each table of ``$NEURALAB_DATA/tabular/suite.json`` and each seed: a stratified (for
classification) 80/20 split; every model is fitted on the 80% with its defaults and scored
on the 20% (accuracy, or R^2 for regression). Results are cached per (model, table, seed) in
a JSON file, so a long run can be stopped and resumed. Nothing here is tuned on the test parts.

Models: nl_fast, nl_default, nl_best (TabularClassifier/Regressor presets), nl_cli (the
``neuralab train`` command line as a user runs it, then ``neuralab predict`` on the saved
file), lightgbm, xgboost, catboost, hgb (sklearn HistGradientBoosting), sk_mlp (sklearn's
MLP with early stopping in an impute/scale/one-hot pipeline), realmlp (pytabkit's
RealMLP_TD). Peers: ``pip install -r benchmarks/requirements.txt``.

``NEURALAB_DATA`` may point at any folder holding ``tabular/suite.json`` (a list of
``{"name", "file", "target", "task"}``, task "classification" or "regression") beside the
CSVs: ``benchmarks/heldout_suite.py`` writes such a folder of 15 tables held out from every
choice of defaults.

Usage:
    NEURALAB_DATA=... python benchmarks/tabular.py --quick
    python benchmarks/tabular.py --only HMDA,OJ --models nl_default,catboost --seeds 3
    python benchmarks/tabular.py --report          # the table from the cache only
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# The benchmark's own BLAS settings: no machine-specific OpenBLAS overrides, both together.
os.environ.pop("OPENBLAS_CORETYPE", None)
os.environ.pop("OPENBLAS_L2_SIZE", None)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NEURALAB_DATA", ROOT / "data")) / "tabular"
ALL_MODELS = ["nl_fast", "nl_default", "nl_best", "nl_cli", "lightgbm", "xgboost", "catboost",
              "hgb", "sk_mlp", "realmlp"]
QUICK_TABLES = ["TitanicSurvival", "OJ", "HMDA", "concrete"]


def load_table(entry: dict):
    import pandas as pd
    df = pd.read_csv(DATA / entry["file"])
    df = df[df[entry["target"]].notna()].reset_index(drop=True)
    return df.drop(columns=[entry["target"]]), df[entry["target"]]


def split(entry: dict, X, y, seed: int):
    from sklearn.model_selection import train_test_split
    strat = y if entry["task"] == "classification" else None
    return train_test_split(X, y, test_size=0.2, random_state=seed, stratify=strat)


def score(task: str, y_true, y_pred) -> float:
    from sklearn.metrics import accuracy_score, r2_score
    if task == "classification":
        return float(accuracy_score(np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)))
    return float(r2_score(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)))


# ============================================================================ models
def _categorical_columns(X):
    import pandas as pd
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])]


def _as_category(X, cats=None):
    """Text columns as pandas categories (the native categorical input of the GBDTs)."""
    X = X.copy()
    cols = _categorical_columns(X) if cats is None else cats
    for c in cols:
        X[c] = X[c].astype(str).where(X[c].notna(), None).astype("category")
    return X, cols


def _label_encode(task, ytr):
    if task != "classification":
        return np.asarray(ytr, dtype=float), None
    classes, enc = np.unique(np.asarray(ytr).astype(str), return_inverse=True)
    return enc, classes


def run_model(model: str, entry: dict, Xtr, ytr, Xte, seed: int):
    """Fit ``model`` with its defaults on (Xtr, ytr) and return (test predictions, fit seconds)."""
    task = entry["task"]
    cls = task == "classification"
    if model.startswith("nl_") and model != "nl_cli":
        import neuralab as nl
        est = (nl.TabularClassifier if cls else nl.TabularRegressor)(preset=model[3:], random_state=seed)
        t = time.perf_counter()
        est.fit(Xtr, ytr)
        return est.predict(Xte), time.perf_counter() - t
    if model == "nl_cli":
        return _run_cli(entry, Xtr, ytr, Xte)
    if model == "realmlp":
        from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor
        est = (RealMLP_TD_Classifier if cls else RealMLP_TD_Regressor)(random_state=seed, n_threads=2)
        Xc, cats = _as_category(Xtr)
        Xe, _ = _as_category(Xte, cats)
        # pytabkit refuses missing numbers: the training medians fill them (neuralab needs no help)
        medians = Xc.drop(columns=cats).median()
        Xc, Xe = Xc.fillna(medians), Xe.fillna(medians)
        t = time.perf_counter()
        est.fit(Xc, np.asarray(ytr).astype(str) if cls else np.asarray(ytr, dtype=float))
        return est.predict(Xe), time.perf_counter() - t
    if model == "sk_mlp":
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler
        cats = _categorical_columns(Xtr)
        nums = [c for c in Xtr.columns if c not in cats]
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="<missing>"),
                                  OneHotEncoder(handle_unknown="ignore")), cats)])
        mlp = (MLPClassifier if cls else MLPRegressor)(early_stopping=True, random_state=seed)
        pipe = make_pipeline(pre, mlp)
        Xtr2 = Xtr.copy()
        Xte2 = Xte.copy()
        for c in cats:
            Xtr2[c] = Xtr2[c].astype(object).where(Xtr2[c].notna(), None).astype(str)
            Xte2[c] = Xte2[c].astype(object).where(Xte2[c].notna(), None).astype(str)
        t = time.perf_counter()
        if cls:
            pipe.fit(Xtr2, np.asarray(ytr).astype(str))
            pred = pipe.predict(Xte2)
        else:  # standardised target, as neuralab and RealMLP do: sklearn's MLP does not
            from sklearn.compose import TransformedTargetRegressor
            pipe = TransformedTargetRegressor(pipe, transformer=StandardScaler())
            pipe.fit(Xtr2, np.asarray(ytr, dtype=float))
            pred = pipe.predict(Xte2)
        return pred, time.perf_counter() - t
    # gradient boosting: native categorical handling, library defaults
    Xc, cats = _as_category(Xtr)
    Xe, _ = _as_category(Xte, cats)
    for c in cats:  # the test part's categories in the training part's order
        Xe[c] = Xe[c].cat.set_categories(Xc[c].cat.categories)
    yt, classes = _label_encode(task, ytr)
    t = time.perf_counter()
    if model == "lightgbm":
        import lightgbm as lgb
        est = (lgb.LGBMClassifier if cls else lgb.LGBMRegressor)(random_state=seed, verbose=-1, n_jobs=2)
        est.fit(Xc, yt)
    elif model == "xgboost":
        import xgboost as xgb
        est = (xgb.XGBClassifier if cls else xgb.XGBRegressor)(random_state=seed, enable_categorical=True,
                                                                tree_method="hist", n_jobs=2)
        est.fit(Xc, yt)
    elif model == "catboost":
        import catboost as cb
        Xc = Xc.copy()
        Xe = Xe.copy()
        for c in cats:  # CatBoost wants text categories, a missing value as its own one
            Xc[c] = Xc[c].astype(object).where(Xc[c].notna(), "<missing>").astype(str)
            Xe[c] = Xe[c].astype(object).where(Xe[c].notna(), "<missing>").astype(str)
        est = (cb.CatBoostClassifier if cls else cb.CatBoostRegressor)(random_seed=seed, verbose=0,
                                                                        thread_count=2, cat_features=cats,
                                                                        allow_writing_files=False)
        est.fit(Xc, yt)
    elif model == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        est = (HistGradientBoostingClassifier if cls else HistGradientBoostingRegressor)(
            random_state=seed, categorical_features="from_dtype")
        est.fit(Xc, yt)
    else:
        raise ValueError(f"unknown model {model!r}; expected some of {ALL_MODELS}")
    seconds = time.perf_counter() - t
    pred = np.asarray(est.predict(Xe)).reshape(-1)
    if classes is not None:
        pred = classes[pred.astype(int)]
    return pred, seconds


def _run_cli(entry: dict, Xtr, ytr, Xte):
    """``neuralab train`` / ``neuralab predict`` as a user runs them, on CSV files."""
    target = entry["target"]
    cmd = [sys.executable, "-c", "from neuralab.cli import main; main()"]
    with tempfile.TemporaryDirectory() as tmp:
        train_csv, test_csv = Path(tmp, "train.csv"), Path(tmp, "test.csv")
        model, out = Path(tmp, "model.safetensors"), Path(tmp, "pred.csv")
        Xtr.assign(**{target: ytr.to_numpy()}).to_csv(train_csv, index=False)
        Xte.to_csv(test_csv, index=False)
        t = time.perf_counter()
        subprocess.run(cmd + ["train", str(train_csv), "--target", target, "--out", str(model)],
                       check=True, capture_output=True)
        seconds = time.perf_counter() - t
        subprocess.run(cmd + ["predict", str(model), str(test_csv), "--out", str(out)],
                       check=True, capture_output=True)
        import pandas as pd
        return pd.read_csv(out)["prediction"].to_numpy(), seconds


# ============================================================================ running
def blas_report() -> str:
    try:
        from threadpoolctl import threadpool_info
        import numpy  # noqa: F401  (loads NumPy's BLAS)
        return "; ".join(f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
                         f"threads={i.get('num_threads')}" for i in threadpool_info()
                         if i.get("user_api") == "blas")
    except ImportError:
        return "threadpoolctl not installed"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"tables {QUICK_TABLES}, 1 seed")
    ap.add_argument("--only", help="comma-separated table names")
    ap.add_argument("--models", help=f"comma-separated, from {ALL_MODELS}")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (5)")
    ap.add_argument("--cache", default=str(ROOT / "benchmarks" / "results" / "tabular.json"))
    ap.add_argument("--report", action="store_true", help="only print the cached results")
    ap.add_argument("--max-rows", type=int, default=0, help="skip tables with more rows (0: none)")
    args = ap.parse_args(argv)

    suite = json.loads((DATA / "suite.json").read_text())
    names = args.only.split(",") if args.only else QUICK_TABLES if args.quick else [e["name"] for e in suite]
    tables = [e for e in suite if e["name"] in names and (not args.max_rows or e["rows"] <= args.max_rows)]
    models = args.models.split(",") if args.models else ALL_MODELS
    seeds = list(range(1 if args.quick else args.seeds))
    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    print(f"BLAS: {blas_report()}", flush=True)
    if not args.report:
        for entry in tables:
            X, y = load_table(entry)
            for seed in seeds:
                Xtr, Xte, ytr, yte = split(entry, X, y, seed)
                for model in models:
                    key = f"{model}|{entry['name']}|{seed}"
                    if key in cache:
                        continue
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            pred, seconds = run_model(model, entry, Xtr, ytr, Xte, seed)
                        cache[key] = {"score": score(entry["task"], yte, pred), "fit_s": seconds}
                    except Exception as e:  # a failing peer is recorded, not fatal
                        cache[key] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
                    print(key, cache[key], flush=True)
                    cache_path.parent.mkdir(parents=True, exist_ok=True)
                    cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True))
    report(cache, tables, models, seeds)


def report(cache: dict, tables: list, models: list, seeds: list) -> None:
    """Per-table means, mean rank, wins/ties/losses against each peer and fit times."""
    means, times = {}, {}
    for e in tables:
        for m in models:
            rows = [cache.get(f"{m}|{e['name']}|{s}", {}) for s in seeds]
            vals = [r["score"] for r in rows if "score" in r]
            if len(vals) == len(seeds):
                means[m, e["name"]] = float(np.mean(vals))
                times[m, e["name"]] = float(np.mean([r["fit_s"] for r in rows]))
    done = [e["name"] for e in tables if all((m, e["name"]) in means for m in models)]
    metric = {e["name"]: "acc" if e["task"] == "classification" else "R2" for e in tables}
    print(f"\n{len(done)} table(s) with every model over {len(seeds)} seed(s); mean score")
    print("| table | " + " | ".join(models) + " |")
    print("|---" * (len(models) + 1) + "|")
    for t in done:
        print(f"| {t} ({metric[t]}) | " + " | ".join(f"{means[m, t]:.4f}" for m in models) + " |")
    if not done:
        return
    ranks = {m: [] for m in models}
    for t in done:
        order = sorted(models, key=lambda m: -means[m, t])
        for m in models:  # average rank for ties
            tied = [i + 1 for i, o in enumerate(order) if abs(means[o, t] - means[m, t]) < 1e-12]
            ranks[m].append(float(np.mean(tied)))
    print("| mean rank | " + " | ".join(f"{np.mean(ranks[m]):.2f}" for m in models) + " |")
    print("| mean fit s | " + " | ".join(f"{np.mean([times[m, t] for t in done]):.1f}" for m in models) + " |")
    for ours in [m for m in models if m.startswith("nl_")]:
        print(f"\n{ours}: wins / ties (within 0.002) / losses, and the worst gap")
        for peer in [m for m in models if m != ours]:
            d = [means[ours, t] - means[peer, t] for t in done]
            w, ti, lo = sum(x > 0.002 for x in d), sum(abs(x) <= 0.002 for x in d), sum(x < -0.002 for x in d)
            print(f"  vs {peer:10s} {w:2d} / {ti:2d} / {lo:2d}   worst {min(d):+.4f}")


if __name__ == "__main__":
    main()
