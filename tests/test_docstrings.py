"""Every public name at the top of the package has a docstring with an example (the style rule)."""
import inspect

import neuralab as nl
from neuralab import nn, optim


def _public(module):
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj


def test_public_names_have_a_docstring_with_an_example():
    missing = []
    for module in (nl, nn, optim):
        for name, obj in _public(module):
            doc = inspect.getdoc(obj) or ""
            if "Example" not in doc and ">>>" not in doc:
                missing.append(name)
    assert missing == []


def test_estimator_docstrings_are_real_docstrings():
    # a class docstring built with "+" is not a docstring unless assigned to __doc__
    for cls in (nl.MLPClassifier, nl.MLPRegressor):
        assert cls.__doc__ and "hidden_layer_sizes" in cls.__doc__ and "Example" in cls.__doc__
