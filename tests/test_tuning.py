"""Hyperparameter search: range parsing, grid/random search, Dask local cluster, `neuralab tune`."""
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats
from sklearn.datasets import load_iris

import neuralab as nl
from neuralab import tuning


def test_parse_ranges():
    space = tuning.parse_params(["hidden_layer_sizes=64,128-64", "alpha=1e-4:1e-2:log",
                                 "dropout=0:0.4:lin:3", "batch_size=16:64:int", "solver=adam,sgd"])
    assert space["hidden_layer_sizes"] == {"values": [(64,), (128, 64)]}
    assert space["solver"] == {"values": ["adam", "sgd"]}
    grid = tuning.to_sklearn(space, "grid")
    np.testing.assert_allclose(grid["alpha"], [1e-4, 1e-3 / np.sqrt(10), 1e-3, 1e-2 / np.sqrt(10), 1e-2])
    np.testing.assert_allclose(grid["dropout"], [0.0, 0.2, 0.4])
    rand = tuning.to_sklearn(space, "random")
    assert isinstance(rand["alpha"].dist, type(stats.loguniform(1, 2).dist))
    draws = rand["batch_size"].rvs(200, random_state=0)
    assert draws.min() >= 16 and draws.max() <= 64
    for bad in ["alpha", "alpha=1:0", "alpha=0:1:log", "alpha=a:b", "alpha=1:2:cubic"]:
        with pytest.raises(ValueError, match="alpha"):
            tuning.parse_params([bad])


def test_toml_config(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('search = "random"\nn_iter = 3\n[params]\nhidden_layer_sizes = [[8], [8, 8]]\n'
                    'alpha = "1e-4:1e-2:log"\n')
    doc = tuning.load_toml(str(path))
    assert doc["search"] == "random" and doc["n_iter"] == 3
    assert doc["params"]["hidden_layer_sizes"]["values"] == [(8,), (8, 8)]
    assert doc["params"]["alpha"]["scale"] == "log"


def test_grid_search_with_n_jobs_ranks_candidates():
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    est = nl.MLPClassifier(max_iter=60, learning_rate_init=0.02, random_state=0)
    space = tuning.parse_params(["hidden_layer_sizes=2,16"])
    search = tuning.run_search(est, space, X, y, method="grid", cv=3, n_jobs=2)
    assert search.best_params_ == {"hidden_layer_sizes": (16,)}
    assert search.best_score_ > 0.85
    table = tuning.ranked_table(search).splitlines()
    assert len(table) == 3 and "(16,)" in table[1]
    with pytest.raises(ValueError, match="unknown parameter"):
        tuning.run_search(est, tuning.parse_params(["hiden=3"]), X, y)


def test_local_dask_cluster_runs_search_and_leaves_no_process():
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("distributed")
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    X, y = load_iris(return_X_y=True)
    est = nl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0)
    space = tuning.parse_params(["alpha=1e-4:1e-1:log"])
    search = tuning.run_search(est, space, X, y, method="random", n_iter=4, cv=2,
                               scheduler="local")
    assert len(search.cv_results_["params"]) == 4
    alphas = [p["alpha"] for p in search.cv_results_["params"]]
    assert all(1e-4 <= a <= 1e-1 for a in alphas)
    # multiprocessing's resource tracker (started with the first spawned worker process)
    # lives until the interpreter exits by design; it is not part of the cluster.
    def new_children():
        return [p for p in me.children(recursive=True) if p.pid not in before
                and "resource_tracker" not in " ".join(p.cmdline())]

    psutil.wait_procs(new_children(), timeout=30)
    left = [p for p in new_children() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"processes left behind: {[(p, p.cmdline()) for p in left]}"


def test_tune_command_prints_table_and_saves_best_model(tmp_path):
    from neuralab.cli import main

    out = tmp_path / "best.safetensors"
    result = CliRunner().invoke(main, ["tune", "-d", "iris", "--param", "hidden_layer_sizes=4,16",
                                       "--param", "learning_rate_init=0.01,0.03", "--max-iter", "40",
                                       "--cv", "2", "--quiet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 candidates" in result.output and "rank" in result.output
    assert out.exists()
    model = nl.load(out)
    X, y, _ = tuning.load_builtin("iris")
    assert model.score(X, y) > 0.8
    bad = CliRunner().invoke(main, ["tune", "-d", "nope", "--param", "alpha=1e-3"])
    assert bad.exit_code != 0 and "unknown dataset" in bad.output
