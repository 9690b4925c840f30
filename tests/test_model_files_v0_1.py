"""Model files written by neuralab 0.1.0 keep loading and predict the numbers they did then.

The files in tests/data/v0_1 were saved by 0.1.0 (before the package was laid out in
folders); expected.json holds 0.1.0's predictions for the rows it lists.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import neuralab as nl

HERE = Path(__file__).resolve().parent / "data" / "v0_1"
EXPECTED = json.loads((HERE / "expected.json").read_text())
ROWS = np.asarray(EXPECTED["rows"], dtype=np.float32)


def test_mlp_classifier_and_regressor():
    clf = nl.load(HERE / "mlp_classifier.safetensors")
    np.testing.assert_allclose(clf.predict_proba(ROWS), EXPECTED["mlp_classifier"], rtol=1e-6, atol=1e-7)
    reg = nl.load(HERE / "mlp_regressor.safetensors")
    np.testing.assert_allclose(reg.predict(ROWS[:, :3]), EXPECTED["mlp_regressor"], rtol=1e-6, atol=1e-6)


def test_a_module():
    net = nl.load(HERE / "sequential.safetensors")
    with nl.no_grad():
        out = net(nl.tensor(ROWS)).data
    np.testing.assert_allclose(out, EXPECTED["sequential"], rtol=1e-6, atol=1e-7)


def test_a_class_at_its_old_module_path():
    # 0.1.0 recorded the class as neuralab.recommend.NCF; it now lives in neuralab.apps.recommend
    meta = nl.io.read_metadata(HERE / "ncf.safetensors")
    assert "neuralab.recommend" in json.dumps(meta)
    ncf = nl.load(HERE / "ncf.safetensors")
    assert type(ncf).__module__ == "neuralab.apps.recommend"
    with nl.no_grad():
        out = ncf(np.array([0, 1, 2]), np.array([3, 4, 5])).data
    np.testing.assert_allclose(out, EXPECTED["ncf"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["cli_table", "cli_iris"])
def test_cli_models(name):
    pd = pytest.importorskip("pandas")
    model = nl.load(HERE / f"{name}.safetensors")
    if name == "cli_table":
        frame = pd.DataFrame(ROWS, columns=["a", "b", "c", "d"])
        frame["kind"] = np.where(ROWS[:, 0] > 5.8, "big", "small")
    else:
        frame = pd.DataFrame(ROWS, columns=EXPECTED["cli_iris_columns"])
    assert [str(v) for v in model.predict(frame)] == [str(v) for v in EXPECTED[name]]


def test_old_module_paths_import_as_the_same_module():
    import neuralab.apps.text
    import neuralab.text
    assert neuralab.text is neuralab.apps.text
    from neuralab.recommend import NCF
    from neuralab.apps.recommend import NCF as NCF2
    assert NCF is NCF2
