"""The playground: a local web page where a learner watches the real engine train.

Start it with ``neuralab playground`` (or ``neuralab.playground.serve()``); the page, its
script and its styles ship inside the package and work offline.

Example:
    >>> from neuralab.playground import create_app   # a Starlette app, e.g. for tests
"""
from .server import create_app, serve

__all__ = ["create_app", "serve"]
