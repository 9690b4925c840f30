"""``neuralab playground``: start the local web page (the server is imported only when run)."""
from __future__ import annotations

import click

from ._errors import BadInput, guard, require

EXAMPLE = """Examples:

\b
  neuralab playground                  # a free port, opens your browser
  neuralab playground --port 8050 --no-browser
"""


@click.command("playground", epilog=EXAMPLE)
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but 127.0.0.1 exposes the playground to your network.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
def playground_command(port: int, host: str, no_browser: bool) -> None:
    """Watch a network learn in your browser, trained live by neuralab's engine."""
    with guard():
        require("starlette", "uvicorn")  # the `playground` extra
        from ..playground.server import serve
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo(f"warning: listening on {host}: anyone who can reach this address can "
                       f"use the playground", err=True)
        try:
            serve(host=host, port=port, open_browser=not no_browser)
        except OSError as exc:
            raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
