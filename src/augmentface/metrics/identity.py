"""Identity preservation: dlib's face-recognition ResNet (128-d descriptors, Euclidean distance).

dlib's model maps faces of the same person to descriptors closer than 0.6 and of different people
farther apart (99.38 % on LFW, per dlib's documentation). An augmented image should stay on the
same side of that threshold as its source photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from augmentface.metrics.dlib_models import DlibModels, face_shape, recognition_model

__all__ = ["EMBEDDING_DIM", "SAME_PERSON_THRESHOLD", "face_embedding", "identity_distance"]

#: Length of dlib's face descriptor.
EMBEDDING_DIM = 128
#: Distance below which dlib's model calls two faces the same person (dlib's documented value).
SAME_PERSON_THRESHOLD = 0.6


def face_embedding(
    image_rgb: np.ndarray,
    box_px: Sequence[float],
    *,
    num_jitters: int = 0,
    n_points: Literal[5, 68] = 5,
    models: DlibModels | None = None,
) -> np.ndarray:
    """Return dlib's 128-d identity descriptor of one face.

    The face is aligned from a dlib shape predicted inside ``box_px`` (dlib's box convention is
    derived from ours, see :func:`augmentface.metrics.dlib_models.dlib_rectangle`), then cropped
    with dlib's default padding of 0.25 and fed to the ResNet.

    Parameters
    ----------
    image_rgb : np.ndarray
        (H, W, 3) uint8 RGB.
    box_px : sequence of float
        The face's ``(x0, y0, x1, y1)`` in pixels, e.g. ``FaceDetection.bbox_px``.
    num_jitters : int, optional
        0 (default, fastest and deterministic): one pass. ``n > 0``: average over ``n`` randomly
        jittered crops (dlib's option; about ``n`` times slower, slightly more accurate).
    n_points : {5, 68}, optional
        Shape predictor used for the alignment. 5 (default) is what dlib pairs with this model.
        68 aligns on its own eye corners and nose, which moves the descriptor (by 0.16 on the
        astronaut): compare only descriptors made with the same ``n_points``.
    models : DlibModels, optional
        Located weights; :func:`augmentface.metrics.dlib_models.locate_dlib_models` by default.

    Returns
    -------
    np.ndarray
        (128,) float64 descriptor, norm close to 1 (dimensionless).

    Raises
    ------
    TypeError, ValueError
        For an image that is not (H, W, 3) uint8, a malformed box or one centred outside the
        image, or a negative ``num_jitters``.
    """
    if isinstance(num_jitters, bool) or not isinstance(num_jitters, int) or num_jitters < 0:
        raise ValueError(f"num_jitters must be a non-negative int, got {num_jitters!r}")
    image, shape = face_shape(image_rgb, box_px, n_points, models)
    descriptor = recognition_model(models).compute_face_descriptor(image, shape, num_jitters)
    return np.asarray(descriptor, dtype=np.float64)


def identity_distance(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Euclidean distance between two descriptors from :func:`face_embedding`.

    Parameters
    ----------
    emb_a, emb_b : np.ndarray
        (128,) descriptors.

    Returns
    -------
    float
        Distance (dimensionless); below :data:`SAME_PERSON_THRESHOLD` means the same person.

    Raises
    ------
    ValueError
        When either input is not a finite (128,) vector.
    """
    a = np.asarray(emb_a, dtype=np.float64)
    b = np.asarray(emb_b, dtype=np.float64)
    for name, vector in (("emb_a", a), ("emb_b", b)):
        if vector.shape != (EMBEDDING_DIM,) or not np.isfinite(vector).all():
            raise ValueError(
                f"{name} must be a finite ({EMBEDDING_DIM},) vector, got shape {vector.shape}"
            )
    return float(np.linalg.norm(a - b))
