"""Checkpoint files of learned AU models: written atomically, read with ``weights_only=True``.

A checkpoint is a ``torch.save`` dict of tensors and JSON-able values only (no pickled
classes), so ``torch.load(path, weights_only=True)`` reads it and a file from elsewhere cannot
run code. Its ``format`` key marks it as ours, ``format_version`` its layout, and
``face_model_id`` the face model its bases live on.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from augmentface.atomic import atomic_write_with
from augmentface.errors import UsageError
from augmentface.expression.space import check_face_model

CHECKPOINT_FORMAT = "augmentface-learned-au"
CHECKPOINT_FORMAT_VERSION = 1
REQUIRED_KEYS = frozenset(
    {
        "format",
        "format_version",
        "face_model_id",
        "config",
        "aus",
        "basis",
        "identity_basis",
        "coefficient_mean",
        "coefficient_std",
        "generator",
        "history",
        "summary",
    }
)


class CheckpointError(UsageError):
    """A file that is not a readable learned-AU checkpoint of this augmentface."""


def write_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Save ``state`` with ``torch.save`` to a temporary file, then move it over ``path``."""
    path = Path(path)
    atomic_write_with(path, lambda tmp: torch.save(state, tmp))
    return path


def read_checkpoint(path: str | Path, face_model_id: str) -> dict[str, Any]:
    """Load and check a checkpoint written by :func:`write_checkpoint`.

    Raises
    ------
    CheckpointError
        The file is missing, not a torch file, not ours, or from a newer format.
    augmentface.expression.space.FaceModelMismatchError
        The checkpoint was built on another face model than ``face_model_id``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with warnings.catch_warnings():
            # A foreign pickle makes torch warn about its protocol before failing; the error
            # below says what matters.
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails on foreign files in many ways (KeyError, …)
        raise CheckpointError(
            f"{path}: not a learned AU checkpoint (torch cannot read it: {type(exc).__name__})"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: a torch file, but not an augmentface learned AU model")
    missing = sorted(REQUIRED_KEYS - set(state))
    if missing:
        raise CheckpointError(f"{path}: incomplete learned AU checkpoint, missing {missing}")
    if int(state["format_version"]) > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state['format_version']} is newer than this "
            f"augmentface reads ({CHECKPOINT_FORMAT_VERSION}); upgrade augmentface"
        )
    check_face_model(str(state["face_model_id"]), face_model_id, path)
    return state
