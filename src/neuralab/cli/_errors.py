"""The command line's one error type and one guard: every command runs inside ``guard()``.

Exit codes: 0 success; 2 bad usage or bad input (one ``Error: ...`` line: a file, a column,
a flag, a missing optional extra); 130 interrupted (Ctrl-C or SIGTERM, one line); 1 an
unexpected error (one line; NEURALAB_DEBUG=1 shows the traceback).

Example:
    with guard():
        raise BadInput("--hidden must be positive widths, like 128,64")
"""
from __future__ import annotations

import os
import signal
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator

import click

# Which extra of pyproject.toml brings which importable module.
EXTRAS = {"onnx": "onnx", "onnxruntime": "onnx", "shap": "explain", "lime": "explain",
          "matplotlib": "plot", "starlette": "playground", "uvicorn": "playground",
          "httpx": "playground", "distributed": "distributed", "dask": "distributed",
          "cupy": "gpu", "mnist1d": "mnist1d", "mpi4py": "mpi"}


class BadInput(click.ClickException):
    """Bad input or usage: one clear line and exit code 2 (click's code for usage errors).

    Example: ``raise BadInput("column 'price' is not in the data")``
    """

    exit_code = 2


class Interrupted(Exception):
    """Ctrl-C or SIGTERM outside the training loop (which saves and exits on its own)."""


def one_line(e: BaseException) -> str:
    """An exception's message on one line (a missing file says which).

    Example: ``one_line(FileNotFoundError(2, "x", "a.csv"))  # 'no such file: a.csv'``
    """
    text = str(e).strip() or type(e).__name__
    if isinstance(e, FileNotFoundError) and e.filename:
        text = f"{e.filename}: no such file"
    elif isinstance(e, PermissionError) and e.filename:
        text = f"{e.filename}: permission denied"
    elif isinstance(e, IsADirectoryError) and e.filename:
        text = f"{e.filename}: is a folder"
    return " ".join(text.split())


def missing_extra(e: ImportError) -> BadInput:
    """The one line for an optional dependency that is not installed.

    Example: ``raise missing_extra(ImportError(name="onnx"))``
    """
    name = (getattr(e, "name", None) or str(e).split("'")[1 if "'" in str(e) else 0]).split(".")[0]
    extra = EXTRAS.get(name)
    if extra is None:
        return BadInput(f"a module this needs is not installed: {name} ({one_line(e)})")
    return BadInput(f"this needs {name}, which is not installed: pip install \"neuralab[{extra}]\"")


def require(*modules: str) -> None:
    """Import ``modules`` or stop with the one line that names their extra (exit 2).

    Example: ``require("onnx", "onnxruntime")``
    """
    import importlib  # noqa: PLC0415

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            if getattr(e, "name", None) is None:
                e.name = name
            raise missing_extra(e) from None


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (kill, timeout, systemd, containers) is handled as Ctrl-C


@contextmanager
def guard() -> Iterator[None]:
    """A command's guard: input errors exit 2, Ctrl-C/SIGTERM 130, anything unforeseen 1.

    Example: ``with guard(): run_the_command()``
    """
    from ..io import ModelFileError  # noqa: PLC0415 - light: no heavy import behind it

    previous = None
    if _main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    except click.ClickException:
        raise
    except BrokenPipeError:  # `neuralab ... | head`: the reader has what it wanted
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        sys.exit(141)  # the shell's code for SIGPIPE
    except ImportError as e:
        if os.environ.get("NEURALAB_DEBUG"):
            raise
        raise missing_extra(e) from None
    except (ValueError, TypeError, ModelFileError, OSError, UnicodeDecodeError) as e:
        if os.environ.get("NEURALAB_DEBUG"):
            raise
        raise BadInput(one_line(e)) from None
    except (KeyboardInterrupt, Interrupted):
        click.echo("interrupted", err=True)
        sys.exit(130)  # the shell's code for Ctrl-C
    except Exception as e:  # noqa: BLE001 - the last line of defence of a command-line tool
        if os.environ.get("NEURALAB_DEBUG"):
            raise
        raise click.ClickException(f"unexpected {type(e).__name__}: {one_line(e)} "
                                   "(set NEURALAB_DEBUG=1 to see the traceback)") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading  # noqa: PLC0415

    return threading.current_thread() is threading.main_thread()


@contextmanager
def echo_warnings() -> Iterator[None]:
    """Show each distinct warning once as a 'warning:' line on stderr, with a count of repeats.

    Example: ``with echo_warnings(): model.predict(frame)``
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: dict[str, int] = {}
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, FutureWarning)):
            continue
        msg = " ".join(str(w.message).split())
        seen[msg] = seen.get(msg, 0) + 1
    for msg, count in seen.items():
        click.echo(f"warning: {msg}" + (f" ({count} times)" if count > 1 else ""), err=True)
