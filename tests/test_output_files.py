"""Output paths destroy nothing: atomic_write honours the umask, keeps a replaced file's mode,
refuses read-only files, leaves no temporary files, cleans those of killed writers; and
check_output refuses inputs, foreign files, missing folders and read-only targets."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import neuralab as nl
from neuralab.io import files as nio_files
from neuralab.io.files import OutputError, atomic_write, check_output


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_0666_less_the_umask(tmp_path, umask):
    # In a child process: the umask is process-wide, and tests run in parallel threads.
    code = ("import os, sys; os.umask(int(sys.argv[2], 8)); "
            "from neuralab.io.files import atomic_write; atomic_write(sys.argv[1], b'x')")
    target = tmp_path / "new.bin"
    subprocess.run([sys.executable, "-c", code, str(target), oct(umask)[2:]], check=True)
    assert _mode(target) == 0o666 & ~umask


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o640


def test_a_read_only_file_is_not_replaced(tmp_path):
    target = tmp_path / "keep.safetensors"
    target.write_bytes(b"precious")
    os.chmod(target, 0o444)
    with pytest.raises(PermissionError, match=r"keep.safetensors is read-only; not replacing it") as info:
        atomic_write(target, b"new")
    assert "\n" not in str(info.value)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.safetensors"]


def test_a_symlink_is_written_through(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    atomic_write(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_no_temporary_file_is_left_when_the_write_is_interrupted(tmp_path, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(nio_files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "m.bin", b"data")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_files_of_killed_writers_are_removed(tmp_path):
    # a writer killed mid-write: its pid is gone
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = tmp_path / f".m.bin.{proc.pid}.ab12cd34.tmp"
    dead.write_bytes(b"half")
    # one from an old mkstemp-style name, two hours old
    old = tmp_path / ".m.bin.k2j4_x9q.tmp"
    old.write_bytes(b"half")
    two_hours_ago = time.time() - 2 * 3600
    os.utime(old, (two_hours_ago, two_hours_ago))
    # a live writer's (this process), a recent anonymous one, and another target's: kept
    live = tmp_path / f".m.bin.{os.getpid()}.00ff00ff.tmp"
    recent = tmp_path / ".m.bin.abcdefgh.tmp"
    other = tmp_path / f".other.bin.{proc.pid}.ab12cd34.tmp"
    for p in (live, recent, other):
        p.write_bytes(b"x")
    atomic_write(tmp_path / "m.bin", b"data")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["m.bin", live.name, recent.name, other.name])


def test_a_saved_model_honours_the_umask_like_any_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives under this process's umask
    nl.save(nl.nn.Linear(2, 2, rng=0), tmp_path / "m.safetensors")
    assert _mode(tmp_path / "m.safetensors") == _mode(plain)


# ------------------------------------------------------------------ check_output
@pytest.fixture()
def model(tmp_path):
    path = tmp_path / "model.safetensors"
    nl.save(nl.nn.Sequential(nl.nn.Linear(2, 2, rng=0)), path)
    return path


def test_check_output_allows_a_new_file_and_a_neuralab_model(tmp_path, model):
    assert check_output(tmp_path / "new.safetensors") == tmp_path / "new.safetensors"
    assert check_output(model) == model


def test_check_output_refuses_an_input_even_through_links(tmp_path, model):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    hard = tmp_path / "hard.csv"
    os.link(data, hard)
    soft = tmp_path / "soft.csv"
    soft.symlink_to(data)
    for out in (data, hard, soft, tmp_path / "." / "data.csv"):
        with pytest.raises(OutputError, match=r"is also an input \(.*data.csv\)"):
            check_output(out, inputs=[data], force=True)
    with pytest.raises(OutputError, match="is also an input"):
        check_output(model, inputs=[data, model])
    assert data.read_text() == "a,b\n1,2\n"


def test_check_output_refuses_a_foreign_file_without_force(tmp_path):
    notes = tmp_path / "notes.safetensors"
    notes.write_text("my thesis")
    with pytest.raises(OutputError, match=r"notes.safetensors exists and is not a neuralab model "
                                          r"file; not replacing it \(pass --force to replace it\)"):
        check_output(notes)
    assert check_output(notes, force=True) == notes
    bare = tmp_path / "bare.safetensors"  # a safetensors file, but not neuralab's
    from safetensors.numpy import save_file
    save_file({"w": np.zeros(2, np.float32)}, str(bare))
    with pytest.raises(OutputError, match="not a neuralab model file"):
        check_output(bare)


def test_check_output_knows_checkpoints_and_onnx_files(tmp_path):
    from neuralab.callbacks.stock import save_state_dict
    ckpt = tmp_path / "weights.safetensors"
    save_state_dict(nl.nn.Linear(2, 2, rng=0), ckpt)
    assert check_output(ckpt) == ckpt
    pytest.importorskip("onnx")
    onnx_file = tmp_path / "m.onnx"
    nl.io.export_onnx(nl.nn.Sequential(nl.nn.Linear(2, 2, rng=0)), onnx_file)
    assert check_output(onnx_file, kind="onnx") == onnx_file
    with pytest.raises(OutputError, match="not an ONNX file written by neuralab"):
        check_output(ckpt, kind="onnx")


def test_check_output_refuses_missing_folder_folder_and_read_only(tmp_path, model):
    with pytest.raises(OutputError, match=r"folder .*nowhere does not exist"):
        check_output(tmp_path / "nowhere" / "m.safetensors")
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path)
    os.chmod(model, 0o444)
    with pytest.raises(OutputError, match="model.safetensors is read-only; not replacing it"):
        check_output(model, force=True)


def test_check_output_for_other_kinds_needs_force_over_any_file(tmp_path):
    out = tmp_path / "predictions.csv"
    assert check_output(out, kind="predictions") == out
    out.write_text("old results")
    with pytest.raises(OutputError, match=r"pass --force"):
        check_output(out, kind="predictions")
    assert check_output(out, kind="predictions", force=True) == out
