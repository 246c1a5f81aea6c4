"""Fit the face model to MediaPipe's dense landmarks: pose, identity, expression.

1. Pose: a weighted similarity (Umeyama 1991) between the mean shape and the landmarks on
   MediaPipe's own Procrustes basis — points on the skull that expressions hardly move.
2. Expression: AU intensities by bounded, ridge-regularised least squares (0–5) of the rig's
   fields (posed into the image) against the landmarks' deviation from the posed mean shape.
   Depth (z) is down-weighted: MediaPipe predicts it, it does not measure it.
3. Identity: whatever the pose and expression leave, mapped back to the model frame — the
   face's own shape, so the fitted mesh reproduces the landmarks.

The result is a small frozen :class:`FaceFit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from augmentface.errors import FitError
from augmentface.face.model import N_MESH_VERTICES, FaceModel
from augmentface.frames import (
    head_angles_deg,
    image_to_model,
    model_to_image,
    offsets_model_to_image,
)


@dataclass(frozen=True)
class FitConfig:
    """Settings of the model fit.

    z_weight : weight of the depth coordinate relative to x and y (0–1).
    ridge_mm2 : ridge penalty per unit of AU intensity, in mm² of landmark error; larger keeps
        weakly supported AUs at zero instead of explaining identity with expression.
    """

    z_weight: float = 0.3
    ridge_mm2: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.z_weight <= 1.0:
            raise ValueError(f"z_weight must be in [0, 1], got {self.z_weight}")
        if self.ridge_mm2 < 0:
            raise ValueError(f"ridge_mm2 must be >= 0, got {self.ridge_mm2}")


@dataclass(frozen=True)
class FaceFit:
    """One fitted face. Pose maps the model frame to the image (see :mod:`augmentface.frames`)."""

    rotation: np.ndarray  # (3, 3) model -> image
    scale_px_per_mm: float
    translation_px: np.ndarray  # (3,)
    identity_offsets_model_mm: np.ndarray  # (468, 3)
    expression_offsets_model_mm: np.ndarray  # (468, 3)
    au_intensities: np.ndarray  # (K,) on the 0–5 scale, in the rig's AU order

    @property
    def head_angles_deg(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees."""
        return head_angles_deg(self.rotation)

    def verts_px(self, model: FaceModel, expression_offsets_model_mm: np.ndarray | None = None):
        """(468, 3) mesh in image pixels, with the fitted or another expression."""
        expression = (
            self.expression_offsets_model_mm
            if expression_offsets_model_mm is None
            else expression_offsets_model_mm
        )
        verts = model.verts_model_mm(self.identity_offsets_model_mm, expression)
        return model_to_image(verts, self.rotation, self.scale_px_per_mm, self.translation_px)


def similarity_transform(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """Weighted least-squares similarity ``target ≈ s R source + t`` (Umeyama 1991).

    Returns (R (3, 3) proper rotation, s, t (3,)).
    """
    w = weights / weights.sum()
    mu_s, mu_t = w @ source, w @ target
    src, tgt = source - mu_s, target - mu_t
    cov = (tgt * w[:, None]).T @ src
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ np.diag(d) @ vt
    var_s = w @ (src**2).sum(axis=1)
    scale = float((sing * d).sum() / var_s)
    translation = mu_t - scale * rotation @ mu_s
    return rotation, scale, translation


def fit_face(
    landmarks_px: np.ndarray, model: FaceModel, config: FitConfig | None = None
) -> FaceFit:
    """Fit pose, expression (AU intensities) and identity to (478 or 468, 3) landmarks in px."""
    config = config or FitConfig()
    points = np.asarray(landmarks_px, dtype=np.float64)[:N_MESH_VERTICES]
    if points.shape != (N_MESH_VERTICES, 3) or not np.isfinite(points).all():
        raise FitError(f"landmarks must be finite with shape (478, 3), got {landmarks_px.shape}")
    mean = model.mean_verts_model_mm
    ids = model.mesh.procrustes_ids
    rotation, scale, translation = similarity_transform(
        mean[ids], points[ids], model.mesh.procrustes_weights
    )
    if not np.isfinite(scale) or scale <= 0:
        raise FitError(f"degenerate pose (scale {scale})")
    intensities = fit_au_intensities(points, model, rotation, scale, translation, config)
    expression = model.rig.offsets(intensities)
    identity = image_to_model(points, rotation, scale, translation) - mean - expression
    return FaceFit(rotation, scale, translation, identity, expression, intensities)


def fit_au_intensities(
    points_px: np.ndarray,
    model: FaceModel,
    rotation: np.ndarray,
    scale: float,
    translation: np.ndarray,
    config: FitConfig,
) -> np.ndarray:
    """(K,) AU intensities in [0, 5] explaining the landmarks' deviation from the posed mean."""
    fields = model.rig.fields_model_mm / 5.0  # per unit of intensity
    axis_w = np.array([1.0, 1.0, config.z_weight])
    # Work in mm (divide pixels by the scale) so that the ridge has one meaning at every size.
    residual = points_px - model_to_image(model.mean_verts_model_mm, rotation, scale, translation)
    residual_mm = (residual / scale) * axis_w
    basis = np.stack([offsets_model_to_image(f, rotation, 1.0) * axis_w for f in fields])
    a = basis.reshape(len(fields), -1).T
    k = a.shape[1]
    a_aug = np.vstack([a, np.sqrt(config.ridge_mm2) * np.eye(k)])
    b_aug = np.concatenate([residual_mm.ravel(), np.zeros(k)])
    solution = lsq_linear(a_aug, b_aug, bounds=(0.0, 5.0), method="bvls")
    return np.clip(solution.x, 0.0, 5.0)
