"""The playground: a local web page where a learner watches the real engine train.

Start it with ``neuralab playground`` (or ``neuralab.playground.serve()``); the page, its
script and its styles ship inside the package and work offline.

Example:
    >>> from neuralab.playground import create_app   # a Starlette app, e.g. for tests
"""
from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    # imported on first use, so `neuralab --help` does not load the server and the engine
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module 'neuralab.playground' has no attribute {name!r}")
