"""Every face of one decoded image, detected and fitted: the per-image work of ``fit3dmm``."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from augmentface.errors import FitError, NoFaceError
from augmentface.face.detect import BLENDSHAPE_NAMES, FaceDetection
from augmentface.face.fitting import FaceFit, FitConfig, fit_face
from augmentface.face.model import FaceModel


class Detector(Protocol):
    """Anything with :meth:`.detect.FaceLandmarker.detect` (a recycling one too)."""

    def detect(self, image_rgb: np.ndarray) -> list[FaceDetection]: ...


def fit_image(
    image_rgb: np.ndarray,
    detector: Detector,
    model: FaceModel,
    config: FitConfig,
    where: str,
) -> list[tuple[FaceDetection, FaceFit]]:
    """Detect the faces of ``image_rgb`` (H, W, 3 uint8) and fit the face model to each.

    Returns
    -------
    list of (FaceDetection, FaceFit)
        In the detector's order (largest face first).

    Raises
    ------
    NoFaceError
        No face found; the message starts with ``where`` (the image's name).
    FitError
        The detector reports other blendshapes than the face model was built for, or a fit
        degenerates.
    """
    faces = detector.detect(image_rgb)
    if not faces:
        raise NoFaceError(f"{where}: no face found")
    if faces[0].blendshape_names != BLENDSHAPE_NAMES:
        raise FitError(f"{where}: the landmarker reports other blendshapes than expected")
    return [(face, fit_face(face.landmarks_px, model, config)) for face in faces]
