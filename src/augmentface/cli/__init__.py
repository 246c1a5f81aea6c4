"""The ``augmentface`` command line: a thin layer over the library's stage functions.

Each command parses and validates its options, calls one library function, prints a one-table
summary and sets the exit code (1 when any row failed, unless ``--allow-failures``; 2 on a
usage error such as a missing upstream manifest).
"""

import importlib

from augmentface.cli._app import app

# Importing a command module registers its commands; --help lists them in this order.
for _module in (
    "dataset_commands",
    "stage_commands",
    "synth_commands",
    "affect_commands",
    "experiment_commands",
):
    importlib.import_module(f"augmentface.cli.{_module}")

__all__ = ["app"]
