"""A griffe extension for the API pages: docstrings as Python sees them, doctests as code.

- An ``Example:`` section is read as ``Examples:``. The docstrings follow the Google style but
  title their doctests ``Example:`` (singular), which griffe takes for an admonition of plain
  Markdown; as ``Examples:`` the ``>>>`` lines render as Python console code with their outputs.
- A class whose docstring is built at import time (``__doc__ = "..." + SHARED``, as the
  estimators share their parameter text) gets the docstring Python computes.
"""
from __future__ import annotations

import importlib
import inspect
import re

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExamplesSection(griffe.Extension):
    """Runtime docstrings for classes that assign ``__doc__``; ``Example:`` read as ``Examples:``."""

    def on_class_members(self, *, cls: griffe.Class, **kwargs) -> None:
        if cls.docstring is None and "__doc__" in cls.members:
            module = importlib.import_module(cls.module.path)
            doc = inspect.getdoc(getattr(module, cls.name, None))
            if doc:
                cls.docstring = griffe.Docstring(doc, parent=cls)

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and "Example:" in obj.docstring.value:
            obj.docstring.value = _TITLE.sub(r"\1Examples:", obj.docstring.value)
