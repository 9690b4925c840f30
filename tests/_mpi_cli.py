"""``mpiexec -n P python _mpi_cli.py READY_DIR train ...``: the ``neuralab`` command line, after
writing READY_DIR/ready_<rank> (the time once imports are done: tests measure from there).
"""
from __future__ import annotations

import os
import sys
import time

from mpi4py import MPI

from neuralab.cli import main
from neuralab.cli import train  # noqa: F401 - imported before the clock starts

if __name__ == "__main__":
    with open(os.path.join(sys.argv[1], f"ready_{MPI.COMM_WORLD.Get_rank()}"), "w") as f:
        f.write(repr(time.time()))
    sys.argv = ["neuralab"] + sys.argv[2:]
    sys.exit(main())
