"""Checks on an output path, made before any work: nothing a user has is lost.

Example: ``check_output("model.safetensors", inputs=["data.csv"], force=False, kind="model")``
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ._errors import BadInput


def _is_neuralab_model(path: Path) -> bool:
    from ..io import read_metadata  # noqa: PLC0415

    try:
        read_metadata(path)
    except Exception:  # noqa: BLE001 - anything unreadable as a model file is "not a model"
        return False
    return True


def check_output(out: str, inputs: Sequence[str] = (), force: bool = False,
                 kind: str = "model") -> None:
    """Raise BadInput (one line) when ``out`` cannot or must not be written.

    Refused: a missing or read-only folder, a folder in place of the file, one of the
    ``inputs``, a read-only file, and (unless ``force``) an existing file that is not a
    neuralab model (``kind="model"``) or any existing file (other kinds).
    Example: ``check_output("preds.csv", inputs=["new.csv"], kind="predictions")``
    """
    path = Path(out)
    for src in inputs:
        try:
            same = Path(src).exists() and path.exists() and path.samefile(src)
        except OSError:
            same = False
        if same or os.path.abspath(src) == os.path.abspath(out):
            raise BadInput(f"--out {out} is an input file; write the {kind} somewhere else")
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise BadInput(f"--out {out} is a folder; give a file name")
    if not folder.is_dir():
        raise BadInput(f"--out {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"--out {out}: the folder {folder} is not writable")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise BadInput(f"--out {out} exists and is read-only")
        if force:
            return
        if kind == "model":
            if not _is_neuralab_model(path):
                raise BadInput(f"--out {out} exists and is not a neuralab model; "
                               f"add --force to replace it")
        else:
            raise BadInput(f"--out {out} exists; add --force to replace it")
