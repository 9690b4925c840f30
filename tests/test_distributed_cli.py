"""``neuralab train --distributed`` under ``mpiexec -n P`` on small generated CSV and Parquet files.

Each multi-rank case runs ``mpiexec -n P python tests/_mpi_cli.py READY train ...`` (loopback
on this machine) and is skipped where mpiexec or mpi4py is missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from neuralab import cli
from neuralab.data import read_table, read_table_part

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
SCRIPT = HERE / "_mpi_cli.py"
N_ROWS = 300

needs_mpi = pytest.mark.skipif(
    shutil.which("mpiexec") is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpiexec and mpi4py (pip install 'neuralab[mpi]')")
TRAIN = ["--target", "y", "--distributed", "--epochs", "3", "--hidden", "8", "--quiet"]


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    env.pop("NEURALAB_DEBUG", None)
    return env


def _table(bad_row: int | None = None) -> pd.DataFrame:
    g = np.random.default_rng(7)
    x = g.normal(size=N_ROWS)
    x[g.random(N_ROWS) < 0.05] = np.nan  # medians and imputation take part
    frame = pd.DataFrame({"x": x, "z": g.normal(size=N_ROWS) * 100 + 5,
                          "city": g.choice(["oslo", "bergen", "bodø"], N_ROWS),
                          "id": [f"u{i}" for i in range(N_ROWS)],  # ID-like: left out
                          "y": np.where(np.nan_to_num(x) > 0, "yes", "no")})
    if bad_row is not None:
        frame["z"] = frame["z"].astype(object)
        frame.loc[bad_row, "z"] = "n/a?"
    return frame


def _mpi_train(n: int, data: Path, out: Path, cwd: Path, *extra: str, timeout: float = 60):
    cmd = ["mpiexec", "-n", str(n), sys.executable, str(SCRIPT), str(cwd), "train", str(data),
           *TRAIN, "--out", str(out), *extra]
    return subprocess.run(cmd, env=_env(), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def _prep(path: Path) -> dict:
    from neuralab.io import load
    return load(str(path)).preprocessor.to_dict()


# ============================================================================ reading the parts
class _Rank:
    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size

    def Get_rank(self) -> int:  # noqa: N802
        return self.rank

    def Get_size(self) -> int:  # noqa: N802
        return self.size


def test_each_rank_reads_its_part_and_the_parts_make_the_table(tmp_path):
    frame = _table()
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", row_group_size=40)  # 8 row groups
    (tmp_path / "dir").mkdir()
    for i in range(5):
        frame.iloc[i * 60:(i + 1) * 60].to_csv(tmp_path / "dir" / f"part{i}.csv", index=False)
    whole = read_table(str(tmp_path / "d.csv"))
    for source, sizes in (("d.csv", None), ("d.parquet", {3: [80, 120, 100]}),
                          ("dir", {3: [60, 120, 120]})):
        for p in (1, 2, 3, 7 if source == "d.csv" else 4):
            parts = [read_table_part(str(tmp_path / source), _Rank(r, p)) for r in range(p)]
            joined = pd.concat(parts, ignore_index=True)
            pd.testing.assert_frame_equal(joined, whole, check_dtype=source == "d.csv")
            if sizes and p in sizes:
                assert [len(part) for part in parts] == sizes[p]
            if source == "d.csv":  # byte ranges: near-equal row counts
                assert max(map(len, parts)) - min(map(len, parts)) <= 3
    with pytest.raises(ValueError, match="8 row group\\(s\\) for 9 ranks"):
        read_table_part(str(tmp_path / "d.parquet"), _Rank(0, 9))
    with pytest.raises(ValueError, match="5 table file\\(s\\) for 6 ranks"):
        read_table_part(str(tmp_path / "dir"), _Rank(0, 6))


def test_a_csv_line_cut_by_a_range_boundary_belongs_to_one_rank(tmp_path):
    # every possible cut: ranks of a 2-rank split of each prefix of the file's lines
    text = "a,b\n" + "".join(f"{i},{'x' * (i % 7)}\n" for i in range(40))
    (tmp_path / "t.csv").write_text(text)
    for p in range(1, 12):
        rows = [read_table_part(str(tmp_path / "t.csv"), _Rank(r, p))["a"].tolist()
                for r in range(p)]
        assert [v for part in rows for v in part] == list(range(40))


# ============================================================================ one process
def test_distributed_without_mpi4py_says_so_and_trains(tmp_path, monkeypatch):
    _table().to_csv(tmp_path / "d.csv", index=False)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    out = tmp_path / "m.safetensors"
    result = CliRunner().invoke(cli.main, ["train", str(tmp_path / "d.csv"), *TRAIN,
                                           "--out", str(out)])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "--distributed" in line]
    assert notes == ["note: --distributed: mpi4py is not installed (pip install "
                     "\"neuralab[mpi]\"); training in this one process"]
    assert out.exists()


def test_resume_with_another_rank_count_says_so_in_one_line(capsys):
    from neuralab.cli.train import _rank_snapshot
    state = {"epoch": 3, "rng": "r0", "layer_rngs": {}, "ranks": [
        {"rng": "r0", "layer_rngs": {}}, {"rng": "r1", "layer_rngs": {}}]}
    assert _rank_snapshot((state, {}), _Rank(1, 2))[0]["rng"] == "r1"  # its own generators
    assert capsys.readouterr().err == ""
    _rank_snapshot((state, {}), _Rank(0, 3))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "interrupted on 2 rank(s), this one has 3" in err[0]


# ============================================================================ with mpiexec
@needs_mpi
def test_the_preprocessing_is_the_same_on_1_2_and_3_ranks_and_the_model_predicts(tmp_path):
    frame = _table()
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", row_group_size=50)
    preps = {}
    # one process (no mpiexec): the note, and training as usual
    one = subprocess.run([sys.executable, "-m", "neuralab.cli", "train", str(tmp_path / "d.csv"),
                          *TRAIN, "--out", str(tmp_path / "m1.safetensors")], env=_env(),
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert one.returncode == 0, one.stderr
    assert [line for line in one.stderr.splitlines() if "--distributed" in line] == [
        "note: --distributed: this is the only process (start several with mpiexec -n N or "
        "srun); training in this one process"]
    preps["csv1"] = _prep(tmp_path / "m1.safetensors")
    for n, source in ((2, "d.csv"), (3, "d.csv"), (2, "d.parquet")):
        run_dir = tmp_path / f"run_{n}_{source}"
        run_dir.mkdir()
        result = _mpi_train(n, tmp_path / source, run_dir / "m.safetensors", run_dir)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout.count("saved the model to") == 1  # rank 0 alone reports
        assert f"training on {n} ranks" in result.stderr
        assert sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("ready_")) \
            == ["m.safetensors"]  # one model file, no temporary left
        preps[f"{source}{n}"] = _prep(run_dir / "m.safetensors")
    assert preps["d.csv2"] == preps["csv1"] == preps["d.csv3"] == preps["d.parquet2"]
    spec = preps["csv1"]["spec"]
    assert [d["name"] for d in spec["dropped"]] == ["id"]
    # the whole table's training rows' statistics (the validation rows are by row number)
    from neuralab.cli._ranks import validation_rows
    train = frame[~validation_rows(np.arange(N_ROWS), 0.2, 0)]
    x = train["x"].dropna().to_numpy()
    cols = {c["name"]: c for c in spec["columns"]}
    assert cols["x"]["median"] == np.median(x)
    np.testing.assert_allclose(cols["z"]["mean"], train["z"].mean(), rtol=1e-14)
    np.testing.assert_allclose(cols["z"]["std"], train["z"].std(ddof=0), rtol=1e-12)
    assert cols["city"]["categories"] == ["bergen", "bodø", "oslo"]

    preds = subprocess.run([sys.executable, "-m", "neuralab.cli", "predict",
                            str(tmp_path / "run_2_d.csv" / "m.safetensors"),
                            str(tmp_path / "d.csv")], env=_env(), capture_output=True,
                           text=True, timeout=60)
    assert preds.returncode == 0, preds.stderr
    labels = preds.stdout.split()
    assert labels[0] == "prediction" and len(labels) == N_ROWS + 1
    accuracy = np.mean(np.array(labels[1:]) == frame["y"].to_numpy())
    assert accuracy > 0.6  # 3 epochs of an easy rule, better than the majority's ~0.5


@needs_mpi
def test_a_bad_part_on_one_rank_ends_every_rank_with_one_line_naming_it(tmp_path):
    _table(bad_row=N_ROWS - 20).to_csv(tmp_path / "bad.csv", index=False)  # rank 1's part
    result = _mpi_train(2, tmp_path / "bad.csv", tmp_path / "m.safetensors", tmp_path)
    ready = max(float(p.read_text()) for p in tmp_path.glob("ready_*"))
    assert time.time() - ready < 10  # a hang fails here (or at the subprocess timeout)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors == [f"Error: rank 1 of 2: column 'z' holds numbers except row {N_ROWS - 20} "
                      "('n/a?'); fix it, leave the cell empty to impute it, or --drop z"], \
        result.stderr
    assert not (tmp_path / "m.safetensors").exists()


@needs_mpi
def test_whole_numbers_with_codes_are_categories_on_every_rank_as_in_one_process(tmp_path):
    frame = _table()
    family = np.arange(N_ROWS) // 3 + 1
    frame["family"] = [f"{v}A" if i in (N_ROWS - 30, N_ROWS - 29) else str(v)
                       for i, v in enumerate(family)]  # '91A' only in rank 1's part
    frame.to_csv(tmp_path / "codes.csv", index=False)
    one = subprocess.run([sys.executable, "-m", "neuralab.cli", "train", str(tmp_path / "codes.csv"),
                          *TRAIN, "--out", str(tmp_path / "m1.safetensors")], env=_env(),
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert one.returncode == 0, one.stderr
    run_dir = tmp_path / "run2"
    run_dir.mkdir()
    two = _mpi_train(2, tmp_path / "codes.csv", run_dir / "m.safetensors", run_dir)
    assert two.returncode == 0, two.stderr
    for result in (one, two):
        notes = [line for line in result.stderr.splitlines() if "codes such as" in line]
        assert notes == ["note: column 'family' holds whole numbers and codes such as '91A': "
                         "read as categories (if they are numbers with typos, fix those cells)"]
    cols = [{c["name"]: c for c in _prep(path)["spec"]["columns"]}["family"]
            for path in (tmp_path / "m1.safetensors", run_dir / "m.safetensors")]
    assert cols[0] == cols[1] and cols[0]["kind"] == "categorical"
