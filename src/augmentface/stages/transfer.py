"""``augmentface transfer``: one face's expression on other faces, its label carried over.

The donor is a row of a fits manifest or a photo (fitted on the spot). Its expression
deformation becomes the target of every face in the work directory's fits, identity kept:
against its subject's neutral frames when the manifest has them (a video, as for the learned
models), else its fitted expression (what a replacement removes from it). The label is what is
known about the donor: its dataset labels (AUs, valence/arousal, emotion) when it has any, else
the rig's reading of the transferred deformation (bounded least squares, as for class models).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augmentface.datasets.frames import frame_name, read_frame
from augmentface.errors import UsageError
from augmentface.expression.class_models import au_estimate
from augmentface.expression.space import expression_deformations_model_mm
from augmentface.expression.targets import ExpressionTarget
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.fit_image import fit_image
from augmentface.face.fitting import FitConfig
from augmentface.face.landmarker_model import locate_landmarker
from augmentface.face.model import FaceModel, load_face_model
from augmentface.imageio import DEFAULT_MAX_PIXELS
from augmentface.manifest import read_meta
from augmentface.stages.fitted import read_fitted
from augmentface.stages.lineage import face_model_of
from augmentface.stages.schemas import LABEL_AU_COLUMNS


@dataclass(frozen=True)
class Donor:
    """The expression to transfer and what is known about it."""

    name: str
    expression_offsets_model_mm: np.ndarray  # (468, 3) mm
    aus: dict[int, float]  # the AU label: dataset labels when present, else fitted
    valence: float = math.nan
    arousal: float = math.nan
    emotion: str | None = None


def _donor_from_row(name: str, row: pd.Series, offsets: np.ndarray, model: FaceModel) -> Donor:
    labelled = {
        int(c[len("label_AU") :]): float(row[c]) for c in LABEL_AU_COLUMNS if pd.notna(row.get(c))
    }
    read = dict(zip(model.rig.au_numbers, map(float, au_estimate(model.rig, offsets)),
                    strict=True))  # fmt: skip
    aus = labelled if labelled else read
    return Donor(
        name=name,
        expression_offsets_model_mm=np.asarray(offsets, dtype=np.float64),
        aus={au: v for au, v in aus.items() if v > 0},
        valence=float(row.get("label_valence", math.nan)),
        arousal=float(row.get("label_arousal", math.nan)),
        emotion=row.get("label_emotion") if pd.notna(row.get("label_emotion")) else None,
    )


def donor_from_fits(path: Path, row: int, model: FaceModel) -> Donor:
    """Row ``row`` (0-based, among the ``ok`` rows) of a fits manifest."""
    fits = read_fitted(path, model)
    if not 0 <= row < len(fits):
        raise UsageError(f"{path}: row {row} out of range (it has {len(fits)} fitted faces)")
    picked = fits.iloc[row]
    subject = fits[fits["subject_id"] == picked["subject_id"]]
    deformations = expression_deformations_model_mm(subject, model)
    offsets = deformations.offsets_model_mm[list(deformations.index).index(picked.name)]
    name = f"{frame_name(picked['image_path'])}-f{picked['face_index']}"
    return _donor_from_row(name, picked, offsets, model)


def donor_from_image(path: Path, model: FaceModel, landmarker: Path | None = None) -> Donor:
    """The largest face of a photo, detected and fitted now."""
    located = locate_landmarker(landmarker)
    with FaceLandmarker(DetectConfig(model_path=located.path)) as detector:
        image = read_frame(str(Path(path).resolve()), max_pixels=DEFAULT_MAX_PIXELS)
        _, fit = fit_image(image, detector, model, FitConfig(), str(path))[0]
    # A photo has no dataset labels: the donor's label is its fitted reading.
    return _donor_from_row(Path(path).stem, pd.Series(), fit.expression_offsets_model_mm, model)


def load_donor(source: Path, row: int = 0, landmarker: Path | None = None) -> Donor:
    """A donor from a fits manifest (Parquet written by fit3dmm) or from a photo."""
    if not Path(source).exists():
        raise UsageError(f"{source}: no such fits manifest or image")
    try:
        read_meta(source)
    except UsageError:  # not a manifest: a photo
        return donor_from_image(source, load_face_model(landmarker), landmarker)
    return donor_from_fits(source, row, face_model_of(source))


def transfer_target(donor: Donor) -> ExpressionTarget:
    """The target that carries the donor's expression and label."""
    return ExpressionTarget(
        target_id=f"transfer-{donor.name}",
        kind="transfer",
        aus=donor.aus,
        valence=donor.valence,
        arousal=donor.arousal,
        label_valence=donor.valence,
        label_arousal=donor.arousal,
        emotion=donor.emotion,
    )


@dataclass(frozen=True)
class TransferSource:
    """Expression source that gives every face the donor's expression."""

    donor: Donor
    rig_au_numbers: tuple[int, ...]
    name: str = "transfer"

    def realize(
        self, target: ExpressionTarget, sample: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        aus = np.array([self.donor.aus.get(au, 0.0) for au in self.rig_au_numbers])
        return aus, self.donor.expression_offsets_model_mm
