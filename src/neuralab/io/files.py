"""Writing files safely: every file neuralab writes goes through ``atomic_write``.

``atomic_write`` writes a temporary file next to the target and renames it into place, so a
reader never sees half a file and a failed write leaves the old one. The temporary file is
created with the permissions a plain ``open(path, "w")`` would give (0o666 less the umask),
or the replaced file's own mode; a read-only file is never replaced. ``check_output`` is what
a command line calls before writing: it refuses to write over an input, over a file neuralab
did not write (unless forced), into a missing folder, or over a read-only file.

Temporary files are named ``.NAME.PID.RANDOM.tmp``. One left behind by a writer that was
killed (``kill -9``, power loss) is removed by the next write of the same target once its
writer process is gone, or once it is more than an hour old (``STALE_SECONDS``).

Example:
    >>> atomic_write("notes.txt", b"hello")
"""
from __future__ import annotations

import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["atomic_write", "check_output", "OutputError", "STALE_SECONDS"]

STALE_SECONDS = 3600


class OutputError(ValueError):
    """An output path neuralab refuses to write (an input, a foreign file, a missing folder,
    a read-only file); the message is one line naming the path and the way out.

    Example:
        >>> _ = open("data.csv", "w").write("a,b")
        >>> try: check_output("data.csv", inputs=["data.csv"])
        ... except OutputError as e: print(e)
        data.csv is also an input (data.csv); writing it would destroy the input: ...
    """


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists but belongs to someone else
        return True
    return True


def _clean_stale_temps(path: Path) -> None:
    """Remove the temporary files of earlier writes of ``path`` that can no longer finish."""
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:(\d+)\.)?[A-Za-z0-9_-]+\.tmp")
    now = time.time()
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS
            pid = match.group(1)
            if old or (pid is not None and not _writer_alive(int(pid))):
                os.unlink(entry.path)
        except OSError:
            pass  # another process cleaned it first, or we may not: not our business


def _check_replaceable(path: Path) -> int | None:
    """The mode to give the new file: the existing file's, or None for a new file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{path} is a folder, not a file; not writing there")
    # Mode bits as well as access(): root may write anything, but a file someone made
    # read-only (chmod a-w) is meant to stay.
    if not st.st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):
        raise PermissionError(f"{path} is read-only; not replacing it (make it writable or "
                              f"write to another file)")
    return stat.S_IMODE(st.st_mode)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    A reader never sees half a file, and an interrupted write leaves the old file in place.
    The new file gets the replaced file's mode, or 0o666 less the umask for a new file; a
    read-only file is refused with ``PermissionError``. A symbolic link is written through
    (its target is replaced, the link stays).

    Args:
        path: the file to write (its folder is created if missing).
        data: the complete contents.

    Example: ``atomic_write("model.onnx", proto.SerializeToString())``
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _check_replaceable(path)
    _clean_stale_temps(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        # O_EXCL: never follow or reuse someone else's file; 0o666 lets the umask apply.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except PermissionError:
        raise PermissionError(f"cannot write in folder {path.parent}: permission denied") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.chmod(tmp, mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; not every platform lets us open a folder
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _written_by_neuralab(path: Path, kind: str) -> bool:
    """Whether an existing file looks like one neuralab writes of this kind (a quick look at
    its first bytes; a damaged neuralab file still counts)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if kind == "onnx":
                return b"\x12\x08neuralab" in head  # ModelProto.producer_name = "neuralab"
            if kind != "model" or len(head) < 9 or head[8:9] != b"{":
                return False
            # safetensors: an 8-byte header length, then a JSON header whose metadata has
            # format "neuralab" (models) or "neuralab-state-dict" (ModelCheckpoint's files)
            n = int.from_bytes(head[:8], "little")
            if n > 16 * 2**20:
                return False
            f.seek(8)
            header = json.loads(f.read(n))
    except (OSError, ValueError, RecursionError):
        return False
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return isinstance(meta, dict) and str(meta.get("format", "")).startswith("neuralab")


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (),
                 force: bool = False, kind: str = "model") -> Path:
    """Check that writing ``path`` destroys nothing; raises ``OutputError`` (one line) if not.

    Refused: one of ``inputs`` (the same file, through symbolic or hard links too); a folder;
    a missing folder; a read-only file; an existing file neuralab did not write (for
    ``kind`` "model" or "onnx"; any existing file for other kinds) unless ``force``.

    Args:
        path: the output file the user named.
        inputs: the files the command reads (data, models).
        force: replace an existing file that neuralab did not write (``--force``).
        kind: what is written: "model" (a .safetensors model), "onnx", or anything else
            (e.g. "predictions"; then every existing file needs ``force``).

    Returns the path, for ``atomic_write``.
    Example: ``out = check_output(args.out, inputs=[args.data], force=args.force)``
    """
    path = Path(path)
    for source in inputs:
        try:
            same = os.path.samefile(path, source)
        except OSError:  # one of them does not exist: not the same file
            same = False
        if same:
            raise OutputError(f"{path} is also an input ({source}); writing it would destroy "
                              f"the input: choose another output file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: folder {parent} is not writable")
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name")
    if path.exists():
        try:
            _check_replaceable(path)
        except (PermissionError, IsADirectoryError) as e:
            raise OutputError(str(e)) from None
        if not force and not _written_by_neuralab(path, kind):
            what = {"model": "a neuralab model file", "onnx": "an ONNX file written by neuralab"}
            raise OutputError(f"{path} exists and is not {what.get(kind, 'a file to replace')}; "
                              f"not replacing it (pass --force to replace it)")
    return path
