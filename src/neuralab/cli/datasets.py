"""``neuralab datasets``: the built-in data sets (``neuralab.datasets``, the one catalogue).

Example (shell): ``neuralab datasets``
"""
from __future__ import annotations

import click

from ._errors import guard


@click.command("datasets", epilog="Example:\n\n\b\n  neuralab datasets")
def datasets_command() -> None:
    """List the built-in data sets that `neuralab train --dataset NAME` accepts."""
    with guard():
        from .. import datasets

        for name in datasets.list_datasets():
            click.echo(f"{name:<14} {datasets.task(name):<15} {datasets.describe(name)}")
