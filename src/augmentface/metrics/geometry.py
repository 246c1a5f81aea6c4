"""Landmark geometry: dlib's 68-point predictor, MediaPipe → iBUG-68, normalised mean error.

Used to check that a rendered expression keeps the face where it was (dlib's landmarks of the
augmented image against MediaPipe's of the source, or against dlib's own of the source) and to
check that our MediaPipe → iBUG-68 vertex choice matches the 300-W convention dlib was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from augmentface.face.topology import IBUG68
from augmentface.metrics.dlib_models import DlibModels, face_shape

__all__ = [
    "IBUG68_REGIONS",
    "dlib_landmarks68",
    "interocular_distance_68",
    "mediapipe_to_ibug68",
    "normalised_mean_error",
]

#: The 68 iBUG-300W points by region (both eyes and both brows together).
IBUG68_REGIONS: dict[str, slice] = {
    "jaw": slice(0, 17),
    "brows": slice(17, 27),
    "nose": slice(27, 36),
    "eyes": slice(36, 48),
    "lips": slice(48, 68),
}

# Outer eye corners in iBUG-68 order: the subject's right (viewer's left) and left eye.
_OUTER_EYE_CORNERS = (36, 45)


def dlib_landmarks68(
    image_rgb: np.ndarray, box_px: Sequence[float], models: DlibModels | None = None
) -> np.ndarray:
    """Predict the 68 iBUG-300W landmarks of one face with dlib's shape predictor.

    Parameters
    ----------
    image_rgb : np.ndarray
        (H, W, 3) uint8 RGB.
    box_px : sequence of float
        The face's ``(x0, y0, x1, y1)`` in pixels, e.g. ``FaceDetection.bbox_px`` (adapted to
        dlib's box convention by :func:`augmentface.metrics.dlib_models.dlib_rectangle`).
    models : DlibModels, optional
        Located weights; :func:`augmentface.metrics.dlib_models.locate_dlib_models` by default.

    Returns
    -------
    np.ndarray
        (68, 2) float64 ``x, y`` in pixels of the full image, iBUG-68 order.
    """
    _, shape = face_shape(image_rgb, box_px, 68, models)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def mediapipe_to_ibug68(landmarks_px: np.ndarray) -> np.ndarray:
    """Pick the 68 iBUG-300W points out of MediaPipe's landmarks.

    Parameters
    ----------
    landmarks_px : np.ndarray
        (478, k) or (468, k), ``k >= 2``: MediaPipe landmarks whose first two columns are
        ``x, y`` in pixels (e.g. ``FaceDetection.landmarks_px``).

    Returns
    -------
    np.ndarray
        (68, 2) float64 ``x, y`` in pixels, iBUG-68 order (vertices :data:`topology.IBUG68`).

    Raises
    ------
    ValueError
        For any other shape.
    """
    points = np.asarray(landmarks_px)
    if points.ndim != 2 or points.shape[0] not in (468, 478) or points.shape[1] < 2:
        raise ValueError(f"expected (468 or 478, >=2) landmarks, got shape {points.shape}")
    return points[list(IBUG68), :2].astype(np.float64)


def interocular_distance_68(points68: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45) of an iBUG-68 shape.

    This is the 300-W challenge's normaliser (outer corners, not pupils), so NMEs computed with it
    compare with published 300-W figures.

    Parameters
    ----------
    points68 : np.ndarray
        (68, k), ``k >= 2``: ``x, y`` in pixels first.

    Returns
    -------
    float
        Distance in pixels.
    """
    points = np.asarray(points68, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] != 68 or points.shape[1] < 2:
        raise ValueError(f"expected (68, >=2) points, got shape {points.shape}")
    right, left = _OUTER_EYE_CORNERS
    return float(np.linalg.norm(points[left, :2] - points[right, :2]))


def normalised_mean_error(
    pred_px: np.ndarray, target_px: np.ndarray, interocular_px: float
) -> float:
    """Mean point-to-point distance divided by the inter-ocular distance.

    Parameters
    ----------
    pred_px, target_px : np.ndarray
        (N, 2) corresponding points in pixels, N >= 1.
    interocular_px : float
        Normaliser in pixels, > 0 (usually :func:`interocular_distance_68` of the target).

    Returns
    -------
    float
        NME as a fraction (0.05 means a mean error of 5 % of the inter-ocular distance).

    Raises
    ------
    ValueError
        When the shapes differ or are not (N, 2), or the normaliser is not a positive number.
    """
    pred = np.asarray(pred_px, dtype=np.float64)
    target = np.asarray(target_px, dtype=np.float64)
    if pred.shape != target.shape or pred.ndim != 2 or pred.shape[1] != 2 or len(pred) == 0:
        raise ValueError(
            f"pred and target must both be (N, 2) with N >= 1, got {pred.shape} and {target.shape}"
        )
    if not np.isfinite(interocular_px) or interocular_px <= 0:
        raise ValueError(f"interocular_px must be a positive number, got {interocular_px!r}")
    return float(np.linalg.norm(pred - target, axis=1).mean() / interocular_px)
