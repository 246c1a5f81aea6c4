"""The photo's own skin, as the reference for the colours the interior layers paint.

Teeth and the whites of the eyes lie in the same light as the skin around them, so the layers
derive their colours from the cheeks beside the nose (clear of lips, lids and beard lines):
the colour carries the photo's exposure and white balance.
"""

from __future__ import annotations

import numpy as np

#: Cheek vertices beside the nose, both sides (MediaPipe's 468-point mesh).
CHEEK_VERTICES = (50, 280, 101, 330, 205, 425)
# ITU-R BT.601 luma weights: perceived brightness of an RGB colour.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def luma(rgb: np.ndarray) -> np.ndarray:
    """Luminance (0–255) of (..., 3) RGB."""
    return np.asarray(rgb, dtype=np.float64) @ LUMA_WEIGHTS


def cheek_skin_rgb(image_rgb: np.ndarray, verts_px: np.ndarray) -> np.ndarray:
    """(3,) float median colour of the photo at the cheek vertices of one face.

    Parameters
    ----------
    image_rgb : (H, W, 3) uint8 photo.
    verts_px : (468 or 478, >=2) the face's mesh in the image, px.
    """
    h, w = image_rgb.shape[:2]
    points = np.round(np.asarray(verts_px, dtype=np.float64)[list(CHEEK_VERTICES), :2])
    xs = np.clip(points[:, 0].astype(int), 0, w - 1)
    ys = np.clip(points[:, 1].astype(int), 0, h - 1)
    return median_rgb(image_rgb[ys, xs])


def median_rgb(pixels_rgb: np.ndarray) -> np.ndarray:
    """(3,) float64 ``np.median(pixels_rgb, axis=0)`` of (M, 3) pixels, M >= 1, to the bit.

    One partition of the middle one or two rows: np.median's checks and general axis handling
    cost ~40 µs a call at the few hundred pixels a layer takes its colours from, and the
    layers call it on every render.
    """
    pixels = np.asarray(pixels_rgb, dtype=np.float64)
    half = len(pixels) // 2
    if len(pixels) % 2:
        return np.partition(pixels, half, axis=0)[half]
    middle = np.partition(pixels, (half - 1, half), axis=0)[half - 1 : half + 1]
    return (middle[0] + middle[1]) / 2
