"""The documentation site builds with ``mkdocs build --strict`` (no broken link, no bad page)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mkdocs", "material", "mkdocstrings_handlers.python")),
    reason="the docs build needs mkdocs, mkdocs-material and mkdocstrings[python] "
           "(pip install -e '.[docs]')")


def test_the_site_builds_strictly_with_the_api_reference(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    nn_page = (tmp_path / "site" / "api" / "nn" / "index.html").read_text(encoding="utf-8")
    assert 'id="neuralab.nn.layers.Linear"' in nn_page
    assert '<span class="gp">&gt;&gt;&gt; </span>' in nn_page   # the examples render as code
    estimators = (tmp_path / "site" / "api" / "estimators" / "index.html").read_text(encoding="utf-8")
    assert "hidden_layer_sizes" in estimators   # the docstring assigned to __doc__ is shown
    for guide in ("cli", "engine", "labs", "apps", "playground", "benchmarks", "reliability"):
        assert (tmp_path / "site" / guide / "index.html").is_file(), guide
