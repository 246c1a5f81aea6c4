"""The photo folders the calibration scripts read: each photo scaled, with its first face
(and that face's signed AU estimates, for the scripts that measure the fit).

Photos are scaled to at most 800 px on their longer side, which keeps the scripts fast while
the faces stay well above the landmarker's input size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from augmentface.blend import blend_face
from augmentface.face.detect import FaceDetection, FaceLandmarker
from augmentface.face.fitting import FITTED_AUS, fit_face
from augmentface.face.model import FaceModel, identity_au_noise
from augmentface.imageio import list_images, read_image
from augmentface.render.detail_maps import builtin_detail_maps
from augmentface.render.details import DetailsInput, detail_weights
from augmentface.render.face_render import render_expression

MAX_SIDE = 800


def scaled(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The image shrunk (area interpolation) so that its longer side is at most ``max_side``."""
    factor = max_side / max(image.shape[:2])
    if factor >= 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def first_faces(
    folder: Path, landmarker: FaceLandmarker
) -> Iterator[tuple[Path, np.ndarray, FaceDetection]]:
    """(path, scaled image, first face) of every photo in ``folder`` with a face, by name."""
    for path in list_images([folder]):
        image = scaled(read_image(path))
        faces = landmarker.detect(image)
        if faces:
            yield path, image, faces[0]


def signed_estimates(
    folder: Path, landmarker: FaceLandmarker, model: FaceModel
) -> Iterator[tuple[Path, FaceDetection, np.ndarray]]:
    """(path, first face, its signed AU estimates in ``FITTED_AUS`` order) of every photo."""
    columns = [model.rig.au_numbers.index(au) for au in FITTED_AUS]
    for path, _, face in first_faces(folder, landmarker):
        yield path, face, fit_face(face.landmarks_px, model).au_signed[columns]


def render_aus(
    image: np.ndarray, face: FaceDetection, aus: dict[int, float], model: FaceModel, details: bool
) -> np.ndarray:
    """The photo with the face's expression replaced by ``aus``, blended back, as the render
    and blend stages make it (``details``: with the built-in detail maps)."""
    fit = fit_face(face.landmarks_px, model)
    target = model.rig.vector(aus)
    layer = None
    if details:
        maps = builtin_detail_maps(model)
        noise = identity_au_noise(model.rig.au_numbers)
        weights = detail_weights(maps, model.rig.au_numbers, target, fit.au_signed, noise)
        layer = DetailsInput(maps, weights)
    delta = fit.expression_change_px(model.rig.offsets(target))
    rendered = render_expression(image, face.landmarks_px, delta, model, details=layer)
    return blend_face(image, rendered.image_rgb, rendered.alpha, rendered.roi)
