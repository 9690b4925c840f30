"""The ``neuralab`` command line: one click group; each command lives in its own module.

Exit codes: 0 success, 2 bad usage or bad input (one ``Error: ...`` line), 130 interrupted
(Ctrl-C or SIGTERM), 1 an unexpected error (one line; NEURALAB_DEBUG=1 shows the traceback).
Heavy imports happen inside the commands, so ``neuralab --help`` stays fast.

Example (shell):
    neuralab train --dataset digits
    neuralab datasets
"""
from __future__ import annotations

import sys
from typing import Any

import click

from .apps import recommend_group, translate_dates_command
from .datasets import datasets_command
from .explain import explain_command
from .files import evaluate_command, export_command, info_command, predict_command
from .lab import lab_command
from .playground import playground_command
from .train import train_command
from .tune import tune_command


class _Group(click.Group):
    """click's group, but Ctrl-C anywhere (start-up included) is one line and exit 130."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - click's entry point
        try:
            return super().main(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    def invoke(self, ctx: click.Context) -> Any:  # noqa: D102
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # click would print "Aborted!" and exit 1
            click.echo("interrupted", err=True)
            sys.exit(130)


def _version() -> str:
    from .. import __version__  # noqa: PLC0415

    return __version__


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100},
             epilog="Example:\n\n\b\n  neuralab train --dataset digits\n  neuralab datasets")
@click.version_option(_version(), prog_name="neuralab")
def main() -> None:
    """neuralab: neural networks from first principles on NumPy."""


for _command in (datasets_command, train_command, predict_command, evaluate_command,
                 info_command, export_command, explain_command, tune_command, recommend_group,
                 translate_dates_command, lab_command, playground_command):
    main.add_command(_command)
