"""Reading a fits manifest for the model builders: ``ok`` rows of this face model only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from augmentface.errors import UsageError
from augmentface.face.model import FaceModel
from augmentface.stages.common import upstream
from augmentface.stages.schemas import FITS


def read_fitted(path: str | Path, model: FaceModel) -> pd.DataFrame:
    """The ``ok`` rows of a fits manifest fitted with ``model``.

    Raises
    ------
    MissingManifestError
        ``path`` does not exist (the message names the commands to run first).
    UsageError
        It was fitted with another face model, or has no ``ok`` row.
    """
    fits = upstream(Path(path), FITS, "augmentface fit3dmm IMAGES (datasets: augmentface import)")
    fitted_with = fits.meta.get("face_model_id")
    if fitted_with != model.model_id:
        raise UsageError(
            f"{path}: fitted with face model {fitted_with}, but this installation has "
            f"{model.model_id}; run fit3dmm again"
        )
    ok = fits.df[fits.df["status"] == "ok"].reset_index(drop=True)
    if ok.empty:
        raise UsageError(f"{path}: no fitted face with status ok")
    return ok
