"""neuralab: neural networks from first principles on NumPy.

The engine (Tensor, ops, gradcheck) is imported eagerly and is light; everything built on
scikit-learn, pandas, matplotlib, onnx or shap is imported on first use.

Example:
    >>> import neuralab as nl
    >>> x = nl.tensor([1.0, -2.0], requires_grad=True)
    >>> nl.functional.relu(x).sum().backward(); x.grad
    array([1., 0.], dtype=float32)
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

from . import backend, functional, functions
from .gradcheck import gradcheck
from .tensor import Tensor, enable_grad, is_grad_enabled, no_grad, ones, tensor, zeros

__version__ = "0.1.0"

F = functional
concatenate = functional.concatenate
stack = functional.stack

# name -> "module:attribute" (or "module" for a submodule), imported on first access
_LAZY = {
    "nn": "neuralab.nn",
    "optim": "neuralab.optim",
    "callbacks": "neuralab.callbacks",
    "datasets": "neuralab.datasets",
    "data": "neuralab.data",
    "training": "neuralab.training",
    "distributed": "neuralab.distributed",
    "explain": "neuralab.explain",
    "labs": "neuralab.labs",
    "io": "neuralab.io",
    "estimators": "neuralab.estimators",
    "apps": "neuralab.apps",
    "recommend": "neuralab.apps.recommend",
    "text": "neuralab.apps.text",
    "translate": "neuralab.apps.translate",
    "plots": "neuralab.plots",
    "fit": "neuralab.training:fit",
    "evaluate": "neuralab.training:evaluate",
    "predict": "neuralab.training:predict",
    "History": "neuralab.callbacks:History",
    "save": "neuralab.io:save",
    "load": "neuralab.io:load",
    "export_onnx": "neuralab.io.onnx:export_onnx",
    "Perceptron": "neuralab.estimators:Perceptron",
    "MLPClassifier": "neuralab.estimators:MLPClassifier",
    "MLPRegressor": "neuralab.estimators:MLPRegressor",
    "CNNClassifier": "neuralab.estimators:CNNClassifier",
    "TabularClassifier": "neuralab.estimators:TabularClassifier",
    "TabularRegressor": "neuralab.estimators:TabularRegressor",
}


# Modules of neuralab 0.1 that now live elsewhere: ``import neuralab.text`` (and a 0.1 model
# file that names ``neuralab.recommend``) gets the module at its new place.
MOVED_MODULES = {
    "neuralab.text": "neuralab.apps.text",
    "neuralab.recommend": "neuralab.apps.recommend",
    "neuralab.translate": "neuralab.apps.translate",
}


class _MovedModuleFinder:
    """Imports a module of ``MOVED_MODULES`` under its old name as the very same module object.

    A meta path finder and loader by its methods (``importlib.abc``'s bases are not needed,
    and importing that module costs ~10 ms: it loads ``importlib.resources``).
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec: Any) -> Any:
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module: Any) -> None:
        pass  # already executed under its new name


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'neuralab' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["Tensor", "tensor", "zeros", "ones", "no_grad", "enable_grad", "is_grad_enabled",
           "gradcheck", "functional", "F", "backend", "concatenate", "stack", *_LAZY]
