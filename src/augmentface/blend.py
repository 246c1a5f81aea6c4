"""Put a rendered face crop back into its photo: feathered alpha (default) or Poisson.

Both leave every pixel outside the mask exactly as it was in the photo.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

BlendMethod = Literal["alpha", "poisson"]
BLEND_METHODS: tuple[str, ...] = ("alpha", "poisson")


def alpha_blend(
    image_rgb: np.ndarray, crop_rgb: np.ndarray, alpha: np.ndarray, roi: tuple[int, int, int, int]
) -> np.ndarray:
    """Composite ``crop_rgb`` over ``image_rgb[roi]`` with a 0–255 ``alpha``; returns a copy.

    ``region · (1 − a) + crop · a`` with ``a = alpha / 255``, rounded, in one OpenCV call
    (float32, ~4x faster than the NumPy expression); where ``alpha`` is 0 the photo's pixel is
    kept exactly.
    """
    x0, y0, x1, y1 = roi
    out = image_rgb.copy()
    region = out[y0:y1, x0:x1]
    if region.size == 0:
        return out
    a = alpha.astype(np.float32) / 255.0
    # blendLinear divides by the weights' sum plus 1e-5: a 0 weight still gives the photo's
    # value back after rounding (x · (1 − 1e-5) is within 0.003 of x for x <= 255).
    region[...] = cv2.blendLinear(region, crop_rgb, 1.0 - a, a)
    return out


def poisson_blend(
    image_rgb: np.ndarray, crop_rgb: np.ndarray, alpha: np.ndarray, roi: tuple[int, int, int, int]
) -> np.ndarray:
    """Poisson (gradient-domain) blend with ``cv2.seamlessClone`` in NORMAL_CLONE mode.

    seamlessClone's pitfalls are handled here: it needs a 0/255 uint8 mask and mutates it (we pass
    a fresh binary copy), it misbehaves when the mask touches the image border (we reflect-pad
    the region by a margin first and crop back), and it needs 3-channel input (our images always
    are). Pixels outside the mask are restored from the photo afterwards, since the solver may
    touch them by a grey level.
    """
    x0, y0, x1, y1 = roi
    pad = 8
    dst = cv2.copyMakeBorder(image_rgb[y0:y1, x0:x1], pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    src = cv2.copyMakeBorder(crop_rgb, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    binary = np.zeros(dst.shape[:2], np.uint8)
    binary[pad:-pad, pad:-pad] = np.where(alpha > 127, 255, 0).astype(np.uint8)
    binary[: pad + 1, :] = binary[-pad - 1 :, :] = 0
    binary[:, : pad + 1] = binary[:, -pad - 1 :] = 0
    if not binary.any():
        return image_rgb.copy()
    ys, xs = np.nonzero(binary)
    centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    cloned = cv2.seamlessClone(src, dst, binary.copy(), centre, cv2.NORMAL_CLONE)
    out = image_rgb.copy()
    inside = binary[pad:-pad, pad:-pad] > 0
    out[y0:y1, x0:x1][inside] = cloned[pad:-pad, pad:-pad][inside]
    return out


def blend_face(
    image_rgb: np.ndarray,
    crop_rgb: np.ndarray,
    alpha: np.ndarray,
    roi: tuple[int, int, int, int],
    method: BlendMethod = "alpha",
) -> np.ndarray:
    """Blend by ``method`` ("alpha" or "poisson"); an unknown method lists the allowed ones."""
    if method == "alpha":
        return alpha_blend(image_rgb, crop_rgb, alpha, roi)
    if method == "poisson":
        return poisson_blend(image_rgb, crop_rgb, alpha, roi)
    raise ValueError(f"unknown blend method {method!r}; allowed: {', '.join(BLEND_METHODS)}")
