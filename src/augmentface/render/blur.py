"""Gaussian blurs of the render layers, cheap at any face size.

A wide Gaussian (the mask's feather, the detail layer's local mean) on a large face costs
OpenCV a kernel of 6–8 sigma taps per pixel and pass: ~100 ms for the feather of a 1000 px face.
:func:`gaussian_blur` runs such a blur on a grid ``step`` times coarser (area average down,
the Gaussian, bilinear up), with the sigma reduced by what the resampling itself spreads
(variance step² / 4), which keeps it within a few hundredths of the full-resolution blur's
range for sigma >= 2 step.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np


def gaussian_blur(
    image: np.ndarray, sigma: float, *, step: int = 1, sigmas: float = 4.0
) -> np.ndarray:
    """(h, w) float32: ``image`` (uint8 or float32) blurred by a Gaussian of ``sigma`` px.

    The kernel spans ``sigmas`` sigma each side, as cv2.GaussianBlur's own choice for the
    type (3 for 8-bit images, 4 for float ones), with reflected borders. ``step`` > 1 blurs
    on the coarser grid; it must leave sigma >= step / 2.
    """
    h, w = image.shape
    if step > 1:
        low_h, low_w = -(-h // step), -(-w // step)
        padded = cv2.copyMakeBorder(
            image, 0, low_h * step - h, 0, low_w * step - w, cv2.BORDER_REPLICATE
        )
        image = cv2.resize(padded, (low_w, low_h), interpolation=cv2.INTER_AREA)
        sigma = math.sqrt(sigma**2 - step**2 / 4) / step
    kernel = _gaussian_kernel(sigma, sigmas)
    blurred = cv2.sepFilter2D(image, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    if step > 1:
        size = (blurred.shape[1] * step, blurred.shape[0] * step)
        blurred = cv2.resize(blurred, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
    return blurred


@functools.lru_cache(maxsize=64)
def _gaussian_kernel(sigma: float, sigmas: float) -> np.ndarray:
    """The 1-D Gaussian cv2.GaussianBlur(..., (0, 0), sigma) uses (``sigmas`` each side)."""
    return cv2.getGaussianKernel(round(sigma * 2 * sigmas + 1) | 1, sigma, cv2.CV_32F)
