"""Frames, units and the conversions between them — written down once.

Model frame (suffix ``_model_mm``)
    The canonical face mesh's frame, in millimetres: origin near the centre of the head, x toward
    the subject's left (the viewer's right in a frontal photo), y up, z out of the face toward
    the camera. Right-handed. Identity and expression offsets live here.

Image frame (suffix ``_px``)
    Pixels of the full source photo: x right, y down, origin at the top-left pixel's centre;
    z (depth) in the same pixel units, increasing away from the camera (MediaPipe's convention:
    smaller z is closer). Also right-handed.

Pose
    A similarity transform under scaled orthographic projection: ``p_px = scale_px_per_mm *
    R @ v_model_mm + t_px`` with ``R`` a proper rotation (det +1). Because the two frames flip y
    and z, a frontal face has ``R ≈ diag(1, -1, -1)``. Head angles (``yaw_deg``, ``pitch_deg``,
    ``roll_deg``) are reported relative to that frontal pose.
"""

from __future__ import annotations

import numpy as np

CM_TO_MM = 10.0

#: Rotation taking the model frame to the image frame for a frontal, upright face.
FRONTAL_MODEL_TO_IMAGE = np.diag([1.0, -1.0, -1.0])


def model_to_image(
    verts_model_mm: np.ndarray,
    rotation: np.ndarray,
    scale_px_per_mm: float,
    translation_px: np.ndarray,
) -> np.ndarray:
    """Map (N, 3) model-frame points in mm to (N, 3) image-frame points in px."""
    return scale_px_per_mm * verts_model_mm @ rotation.T + translation_px


def offsets_model_to_image(
    offsets_model_mm: np.ndarray, rotation: np.ndarray, scale_px_per_mm: float
) -> np.ndarray:
    """Map (N, 3) displacement vectors in mm (model frame) to px (image frame): no translation."""
    return scale_px_per_mm * offsets_model_mm @ rotation.T


def image_to_model(
    points_px: np.ndarray, rotation: np.ndarray, scale_px_per_mm: float, translation_px: np.ndarray
) -> np.ndarray:
    """Inverse of :func:`model_to_image`."""
    return (points_px - translation_px) @ rotation / scale_px_per_mm


def head_angles_deg(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a model-to-image rotation, relative to frontal.

    Yaw turns about the model's y axis (positive: the face turns toward the viewer's right),
    pitch about x (positive: chin up), roll about z (positive: counter-clockwise on screen).
    """
    relative = FRONTAL_MODEL_TO_IMAGE.T @ rotation  # model-frame rotation of the head
    # relative = Rz(roll) @ Ry(yaw) @ Rx(pitch)
    yaw = np.degrees(np.arcsin(np.clip(-relative[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(relative[2, 1], relative[2, 2]))
    roll = np.degrees(np.arctan2(relative[1, 0], relative[0, 0]))
    return float(yaw), float(pitch), float(roll)
