"""Blending artifacts: a visible seam at the edge of the pasted face, pixels changed outside it.

Images are the full photos, (H, W, 3) uint8 RGB. The blend mask comes as a renderer gives it
(:class:`augmentface.render.face_render.RenderedFace`): ``alpha`` (h, w) uint8, 0–255, covering
``roi = (x0, y0, x1, y1)`` (full-image pixels, half-open, so ``h = y1 - y0``, ``w = x1 - x0``);
or, with ``roi=None``, an (H, W) alpha over the whole image.

Seam
    The *band* is the boundary of the binarised mask ``alpha > 127`` (the mask Poisson blending
    clones, and the middle of alpha blending's feather): its morphological gradient with a 3 x 3
    square, i.e. the pixels inside with a neighbour outside and the pixels outside with a
    neighbour inside, a band two pixels wide. Everything outside ``roi`` counts as outside the
    mask; the image border is no boundary. The *seam score* is the mean over the band of the
    squared gradient magnitude of the luminance (Rec. 601 luma ``0.299 R + 0.587 G + 0.114 B``),
    by 3 x 3 Sobel scaled to grey levels per pixel, in (grey levels / px)². The *seam ratio*
    divides the output's score by the source photo's along the same band: 1.0 means the boundary
    is as smooth as the unedited photo there; the project accepts at most 1.2.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["gradient_energy", "outside_unchanged", "seam_band", "seam_ratio", "seam_score"]

Roi = tuple[int, int, int, int]

#: alpha above this is inside the binarised mask (as in :func:`augmentface.blend.poisson_blend`).
MASK_THRESHOLD = 127
#: A 3 x 3 Sobel kernel responds 8x the slope of a linear ramp; dividing by it gives grey / px.
_SOBEL_GAIN = 8.0
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _check_image(image_rgb: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"{what} must be an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}"
        )
    return image


def _check_mask(
    alpha: np.ndarray, roi: Roi | None, height: int, width: int
) -> tuple[np.ndarray, Roi]:
    """``alpha`` as an array and the roi it covers, both checked against an H x W image."""
    mask = np.asarray(alpha)
    if roi is None:
        roi = (0, 0, width, height)
    x0, y0, x1, y1 = (int(v) for v in roi)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"roi {roi} is empty or outside the {width}x{height} image")
    if mask.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"alpha has shape {mask.shape}, the roi {roi} needs {(y1 - y0, x1 - x0)}")
    return mask, (x0, y0, x1, y1)


def seam_band(
    alpha: np.ndarray, roi: Roi | None, image_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of the blend boundary band (see the module notes), in full-image coordinates.

    Parameters
    ----------
    alpha : np.ndarray
        (h, w) uint8 mask covering ``roi``, or (H, W) when ``roi`` is None.
    roi : tuple of int or None
        ``(x0, y0, x1, y1)`` in full-image pixels, half-open.
    image_shape : tuple of int
        ``(H, W, ...)`` of the image the mask belongs to.

    Returns
    -------
    tuple of np.ndarray
        ``(ys, xs)``, two (M,) int arrays of row and column indices; M is 0 when the mask has
        no boundary inside the image (empty, or covering the whole image).

    Raises
    ------
    ValueError
        When ``roi`` leaves the image or ``alpha`` does not match it.
    """
    height, width = image_shape[:2]
    mask, (x0, y0, x1, y1) = _check_mask(alpha, roi, height, width)
    # One pixel of outside around the roi (where the image has it), so a mask reaching the
    # roi's edge still gets its boundary; cv2's default morphology border never adds an edge,
    # which is right at the image border, where the blend has no outside.
    wx0, wy0 = max(0, x0 - 1), max(0, y0 - 1)
    wx1, wy1 = min(width, x1 + 1), min(height, y1 + 1)
    inside = np.zeros((wy1 - wy0, wx1 - wx0), np.uint8)
    inside[y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0] = mask > MASK_THRESHOLD
    band = cv2.morphologyEx(inside, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(band)
    return ys + wy0, xs + wx0


def gradient_energy(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> float:
    """Mean squared luma gradient (grey levels / px)² over the pixels ``(ys, xs)``.

    Rec. 601 luma, 3 x 3 Sobel divided by its gain; the seam score and the forehead's
    photometric strain (:mod:`augmentface.metrics.forehead`) both measure texture this way.
    """
    height, width = image.shape[:2]
    # Only the band's bounding box plus the Sobel's one-pixel reach is converted and filtered.
    gx0, gy0 = max(0, int(xs.min()) - 1), max(0, int(ys.min()) - 1)
    gx1, gy1 = min(width, int(xs.max()) + 2), min(height, int(ys.max()) + 2)
    luma = image[gy0:gy1, gx0:gx1].astype(np.float32) @ _LUMA
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)[ys - gy0, xs - gx0] / _SOBEL_GAIN
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)[ys - gy0, xs - gx0] / _SOBEL_GAIN
    return float(np.mean(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2))


def seam_score(image_rgb: np.ndarray, alpha: np.ndarray, roi: Roi | None = None) -> float:
    """Gradient energy of ``image_rgb`` along the boundary band of the mask.

    Parameters
    ----------
    image_rgb : np.ndarray
        (H, W, 3) uint8 RGB, the full image.
    alpha : np.ndarray
        (h, w) uint8 0–255 mask covering ``roi``; (H, W) when ``roi`` is None.
    roi : tuple of int, optional
        ``(x0, y0, x1, y1)`` full-image pixels, half-open, as ``RenderedFace.roi``.

    Returns
    -------
    float
        Mean squared Sobel gradient magnitude of the luma over the band, (grey levels / px)².

    Raises
    ------
    ValueError
        On bad shapes or dtypes, or when the mask has no boundary inside the image.
    """
    image = _check_image(image_rgb, "image_rgb")
    ys, xs = seam_band(alpha, roi, image.shape)
    if ys.size == 0:
        raise ValueError("the mask has no boundary inside the image")
    return gradient_energy(image, ys, xs)


def seam_ratio(
    output_rgb: np.ndarray, source_rgb: np.ndarray, alpha: np.ndarray, roi: Roi | None = None
) -> float:
    """Seam score of the blended output over that of the source photo, along the same band.

    Parameters
    ----------
    output_rgb, source_rgb : np.ndarray
        (H, W, 3) uint8 RGB: the blended image and the photo it was made from.
    alpha : np.ndarray
        (h, w) uint8 0–255 mask covering ``roi`` (or (H, W) when ``roi`` is None).
    roi : tuple of int, optional
        ``(x0, y0, x1, y1)`` full-image pixels, half-open.

    Returns
    -------
    float
        Unitless; 1.0 when the boundary is as smooth as the photo's own (exactly 1.0 when the
        output equals the source), above 1 for a visible seam. A source with no gradient at all
        along the band gives 1.0 if the output has none either, else ``inf``.

    Raises
    ------
    ValueError
        On bad or mismatched shapes or dtypes, or when the mask has no boundary in the image.
    """
    output = _check_image(output_rgb, "output_rgb")
    source = _check_image(source_rgb, "source_rgb")
    if output.shape != source.shape:
        raise ValueError(f"output {output.shape} and source {source.shape} differ in shape")
    ys, xs = seam_band(alpha, roi, output.shape)
    if ys.size == 0:
        raise ValueError("the mask has no boundary inside the image")
    seam, reference = gradient_energy(output, ys, xs), gradient_energy(source, ys, xs)
    if reference == 0:
        return 1.0 if seam == 0 else float("inf")
    return seam / reference


def outside_unchanged(
    output_rgb: np.ndarray,
    source_rgb: np.ndarray,
    alpha: np.ndarray,
    roi: Roi | None = None,
    tol: int = 0,
) -> tuple[bool, int]:
    """Whether every pixel outside the mask is the source's, up to ``tol`` grey levels.

    Outside means ``alpha == 0`` inside ``roi``, and everything outside ``roi``.

    Parameters
    ----------
    output_rgb, source_rgb : np.ndarray
        (H, W, 3) uint8 RGB: the blended image and the photo it was made from.
    alpha : np.ndarray
        (h, w) uint8 0–255 mask covering ``roi`` (or (H, W) when ``roi`` is None).
    roi : tuple of int, optional
        ``(x0, y0, x1, y1)`` full-image pixels, half-open.
    tol : int
        Largest allowed absolute difference of any channel, in grey levels.

    Returns
    -------
    tuple of (bool, int)
        ``(unchanged, max_abs_diff)``: the largest absolute channel difference outside the mask
        (grey levels, 0–255) and whether it is at most ``tol``.

    Raises
    ------
    ValueError
        On bad or mismatched shapes or dtypes.
    """
    output = _check_image(output_rgb, "output_rgb")
    source = _check_image(source_rgb, "source_rgb")
    if output.shape != source.shape:
        raise ValueError(f"output {output.shape} and source {source.shape} differ in shape")
    height, width = output.shape[:2]
    mask, (x0, y0, x1, y1) = _check_mask(alpha, roi, height, width)
    # cv2.absdiff gives |a - b| on uint8 without widening copies; a whole-array max is far
    # faster than a per-pixel max over channels first.
    diff = cv2.absdiff(output, source)
    diff[y0:y1, x0:x1][mask > 0] = 0
    largest = int(diff.max())
    return largest <= tol, largest
