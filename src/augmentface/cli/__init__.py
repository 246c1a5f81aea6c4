"""The ``augmentface`` command line: a thin layer over the library's stage functions.

Each command parses and validates its options, calls one library function, prints a one-table
summary and sets the exit code (1 when any row failed, unless ``--allow-failures``; 2 on a
usage error such as a missing upstream manifest).
"""

from augmentface.cli import (  # noqa: F401  (importing registers the commands)
    dataset_commands,
    stage_commands,
    synth_commands,
)
from augmentface.cli._app import app

__all__ = ["app"]
