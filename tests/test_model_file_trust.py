"""Model files that trust nothing: a re-signed file (checksum recomputed, as anyone can) may
name only allow-listed classes, cannot import modules, cannot make the loader allocate more
than it holds, and its strings are printed escaped."""
from __future__ import annotations

import inspect
import json
import struct
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest

import neuralab as nl
from neuralab import nn
from neuralab.io import ALLOWED_CLASSES, ModelFileError, model_file, printable

from test_fuzz_files import _header, _with_header, resign


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    d = tmp_path_factory.mktemp("trust")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nl.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    nl.save(clf, d / "clf.safetensors")
    nl.save(nn.Sequential(nn.Linear(2, 2, rng=0)), d / "net.safetensors")
    return {"dir": d, "X": X, **{k: (d / f"{k}.safetensors").read_bytes() for k in ("clf", "net")}}


def _load(files, data, name="m.safetensors", **kw):
    path = files["dir"] / name
    path.write_bytes(data)
    return nl.load(path, **kw)


def _swap_estimator(module, cls):
    def edit(rec):
        rec["estimator"]["module"], rec["estimator"]["class"] = module, cls
        return rec
    return edit


@pytest.mark.parametrize("module, cls", [
    ("sklearn.linear_model", "LogisticRegression"),  # a real sklearn estimator
    ("sklearn.conftest", "LabelBinarizer"),  # an allowed name from a module never to import
    ("os", "system"),
    ("neuralab.estimators.mlp", "LabelBinarizer"),  # allowed name, wrong module
])
def test_a_resigned_file_names_only_allow_listed_classes(files, module, cls):
    with pytest.raises(ModelFileError, match="does not rebuild from a file"):
        _load(files, resign(files["clf"], _swap_estimator(module, cls)))


def test_loading_imports_nothing_the_file_names(files, tmp_path):
    # In a fresh interpreter: naming sklearn.conftest (which pulls in pytest) imports nothing.
    data = resign(files["clf"], _swap_estimator("sklearn.conftest", "LabelBinarizer"))
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    code = ("import sys, neuralab as nl\ntry: nl.load(sys.argv[1])\nexcept nl.io.ModelFileError: pass\n"
            "print('sklearn.conftest' in sys.modules, 'pytest' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("name", ["__class__", "__dict__", "predict", "predict_proba", "fit",
                                  "hidden_layer_sizes", "bad name", "x\x1b[2J"])
def test_a_resigned_file_cannot_set_methods_dunders_or_parameters(files, name):
    def edit(rec):
        rec["estimator"]["attributes"][name] = 1
        return rec
    with pytest.raises(ModelFileError, match="attribute") as info:
        _load(files, resign(files["clf"], edit))
    assert "\x1b" not in str(info.value)


def test_unknown_estimator_parameter_is_refused(files):
    def edit(rec):
        rec["estimator"]["params"]["evil"] = 1
        return rec
    with pytest.raises(ModelFileError, match="no parameter"):
        _load(files, resign(files["clf"], edit))


def _huge_linear(rec):
    rec["architecture"]["children"][0][1]["config"].update(in_features=25000, out_features=26000)
    return rec


def test_a_1kb_file_cannot_allocate_gigabytes(files):
    data = resign(files["net"], _huge_linear)
    assert len(data) < 1100
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"needs 650,000,000 values, more than the 6"):
            _load(files, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20  # it was 7.5 GB of RSS before the sizes were checked


@pytest.mark.parametrize("dtype", ["V100000000", "O", "U99999999", "S4"])
def test_a_resigned_file_cannot_choose_a_huge_or_object_dtype(files, dtype):
    def edit(rec):
        rec["architecture"]["children"][0][1]["config"]["dtype"] = {"__dtype__": dtype}
        return rec
    with pytest.raises(ModelFileError, match="unsupported dtype"):
        _load(files, resign(files["net"], edit))


def test_a_resigned_shape_that_fits_the_budget_is_still_checked(files):
    def edit(rec):
        rec["architecture"]["children"][0][1]["config"].update(in_features=3, out_features=2)
        return rec
    with pytest.raises(ModelFileError, match="do not fit"):
        _load(files, resign(files["net"], edit))


# Layers built with small configurations: the size formula never exceeds what the layer
# stores (else real files would be refused) and covers most of what it allocates.
LAYERS = [
    nn.Linear(3, 4), nn.Linear(5, 2, bias=False), nn.Conv1d(2, 4, 3), nn.Conv2d(4, 6, (3, 2), groups=2),
    nn.BatchNorm1d(5), nn.BatchNorm2d(3, affine=False), nn.LayerNorm((3, 4)), nn.Embedding(7, 3),
    nn.MultiheadAttention(8, 2), nn.RNN(3, 4, num_layers=2, bidirectional=True), nn.GRU(3, 5),
    nn.LSTM(3, 4, num_layers=3), nn.TransformerEncoderLayer(8, 2, dim_feedforward=16),
    nn.MLP(3, (4, 5), 2, norm="batch", residual=True), nn.Residual(nn.Linear(3, 5), 3, 5),
    nn.RobustScale(4), nn.ScaleLayer(5), nn.PeriodicEmbedding(3, frequencies=4, out_dim=2),
    nn.NTKLinear(6, 3), nn.EnsembleLinear(6, 3, k=2), nn.CategoricalEmbedding([3, 5], dim=2),
    nn.ParametricActivation("selu", 4),
]


def _apps():
    from neuralab.apps.recommend import NCF
    from neuralab.apps.text import FastText
    from neuralab.apps.translate import DateTranslator
    return [NCF(5, 6, factors=3, mlp_layers=(8, 4)), NCF(5, 6, towers="gmf"), FastText(10, 3, 2),
            DateTranslator(embed_dim=4, hidden=5)]


@pytest.mark.parametrize("layer", LAYERS + _apps(), ids=lambda m: type(m).__name__)
def test_layer_size_formulas_bound_what_the_layer_holds(layer):
    # A layer passed in the configuration (Residual's block) is built, and counted, on its own.
    stored = sum(a.size for k, a in layer.state_dict().items() if not k.startswith("block."))
    config = layer.config()
    if type(layer).__name__ == "DateTranslator":
        config = {**config, "source_chars": layer.source_chars}
    need = model_file.layer_values(type(layer).__name__, config)
    assert need <= stored
    assert need >= stored // 2 if stored > 20 else need >= 0


def test_every_layer_that_allocates_has_a_size_formula():
    from neuralab.nn.module import Module
    for name, target in ALLOWED_CLASSES.items():
        cls = getattr(__import__(target.split(":")[0], fromlist=["_"]), target.split(":")[1])
        assert isinstance(cls, type), name
        if issubclass(cls, Module) and name not in model_file._LAYER_VALUES:
            sig = inspect.signature(cls.__init__).parameters
            sizes = [p for p in sig if p.endswith(("features", "channels", "size", "dim", "embeddings"))
                     and p not in ("kernel_size",)]
            assert not sizes, f"{name} takes sizes {sizes} but has no formula in _LAYER_VALUES"


def test_every_public_layer_of_nn_is_allow_listed():
    from neuralab.nn.module import Module
    public = {n for n, c in vars(nn).items() if isinstance(c, type) and issubclass(c, Module)
              and c is not Module and not n.startswith("_")}
    assert public - set(ALLOWED_CLASSES) == set()


def test_header_over_16_mb_is_refused_before_reading_it(files):
    data = struct.pack("<Q", 17 * 2**20) + b"{" + b" " * 64
    with pytest.raises(ModelFileError, match="at most 16,777,216 bytes"):
        _load(files, data)


def test_metadata_nested_too_deep_is_refused(files):
    def edit(rec):
        rec["user"] = "__DEEP150__"
        return rec
    with pytest.raises(ModelFileError, match="nested more than 100 levels"):
        _load(files, resign(files["net"], edit))


def test_checksum_v2_covers_kind_and_versions(files):
    header, body = _header(files["net"])
    assert header["__metadata__"]["digest_version"] == "2"
    for field, value in (("kind", "estimator"), ("neuralab_version", "9.9"), ("format_version", "1 ")):
        h = json.loads(json.dumps(header))
        h["__metadata__"][field] = value
        with pytest.raises(ModelFileError):
            _load(files, _with_header(h, body))


def test_a_version_1_checksum_still_loads(files):
    from safetensors.numpy import load as st_load
    header, body = _header(files["clf"])
    meta = header["__metadata__"]
    del meta["digest_version"]
    meta["sha256"] = model_file._digest(meta["neuralab"], st_load(files["clf"]))  # the v1 digest
    model = _load(files, _with_header(header, body))
    same = _load(files, files["clf"], "same.safetensors")
    np.testing.assert_array_equal(model.predict_proba(files["X"]), same.predict_proba(files["X"]))


def test_the_shipped_0_1_model_file_still_loads():
    from pathlib import Path
    path = Path(nl.__file__).parent / "apps" / "translate_dates.safetensors"
    assert nl.io.read_metadata(path)["architecture"]["module"] == "neuralab.translate"  # 0.1 path
    assert type(nl.load(path)).__name__ == "DateTranslator"


def test_printable_escapes_control_characters_and_keeps_text():
    assert printable("MLP\x1b[2J\x07") == "MLP\\x1b[2J\\x07"
    assert printable("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert printable("caf\u00e9 \u65e5\u672c") == "caf\u00e9 \u65e5\u672c"
    assert printable("x\u202egnp.exe") == "x\\u202egnp.exe"  # a right-to-left override
    assert printable("y" * 300).endswith("...") and len(printable("y" * 300)) == 203
    assert printable(5) == "5"


def test_error_messages_quote_the_file_escaped(files):
    def edit(rec):
        rec["architecture"]["class"] = "Evil\x1b]0;owned\x07\n"
        return rec
    with pytest.raises(ModelFileError) as info:
        _load(files, resign(files["net"], edit))
    message = str(info.value)
    assert "\x1b" not in message and "\n" not in message and "Evil\\x1b]0;owned" in message
