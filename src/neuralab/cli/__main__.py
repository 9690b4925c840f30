"""``python -m neuralab.cli``: the same command line as the ``neuralab`` script.

Example (shell): ``python -m neuralab.cli train --dataset digits``
"""
import sys

from . import main

sys.exit(main())
