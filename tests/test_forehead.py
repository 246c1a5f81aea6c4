"""The forehead strain measure, and the plain-warp baseline of the renderer it is compared on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from augmentface.face import topology as topo
from augmentface.face.fitting import fit_face
from augmentface.metrics.forehead import (
    forehead_gradient_ratio,
    forehead_mesh,
    forehead_strain,
    warp_strain,
)
from augmentface.render.face_render import render_expression
from augmentface.render.rasterize import warp_mesh


@pytest.fixture(scope="module")
def canonical(model):
    """The canonical mesh as a 200 px frontal face: (468, 2) px, y down."""
    verts = model.topology.verts_model_mm
    return np.stack([256 + verts[:, 0], 256 - verts[:, 1]], axis=1)


def _lifted(canonical: np.ndarray, lift_px: np.ndarray) -> np.ndarray:
    """The canonical face with each vertex moved up the image by ``lift_px`` (468,) px."""
    return canonical - np.stack([np.zeros_like(lift_px), lift_px], axis=1)


def test_identity_and_rigid_motion_are_neutral(model, canonical):
    verts, tris = model.topology.verts_model_mm, model.triangles
    assert forehead_strain(canonical, canonical, verts, tris) == pytest.approx((1, 1, 1, 0))
    angle = np.deg2rad(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = canonical @ rotation.T + (5.0, -3.0)
    assert warp_strain(canonical, moved, tris) == pytest.approx((1, 1, 1, 0))


def test_a_tearing_warp_scores_worse_than_a_smooth_one(model, canonical):
    verts, tris = model.topology.verts_model_mm, model.triangles
    height = verts[:, 1]
    brow = height[list(topo.LEFT_BROW_UPPER + topo.RIGHT_BROW_UPPER)].min()
    top = height[list(topo.FACE_OVAL)].max()
    # Smooth: 6 px at the brows fading to 0 at the top of the outline; the eyes stay put.
    smooth = 6.0 * np.clip((top - height) / (top - brow), 0.0, 1.0) * (height > brow - 20)
    # Tearing: the brows and everything just above them jump 40 px, through the skin above.
    tear = np.where((height >= brow - 20) & (height < brow + 10), 40.0, 0.0)
    gentle = forehead_strain(canonical, _lifted(canonical, smooth), verts, tris)
    torn = forehead_strain(canonical, _lifted(canonical, tear), verts, tris)
    assert gentle.folds == 0 and 0.7 < gentle.min_area_ratio <= gentle.max_area_ratio < 1.3
    assert torn.folds > 0 and torn.min_area_ratio < 0
    assert torn.max_anisotropy > gentle.max_anisotropy


def test_forehead_mesh_reaches_the_anchor_ring(model, canonical):
    src_all, dst_all, forehead = forehead_mesh(
        canonical, canonical, model.topology.verts_model_mm, model.triangles
    )
    assert src_all.shape == dst_all.shape == (468 + len(topo.FACE_OVAL), 2)
    assert (forehead >= 468).any(axis=1).sum() >= 2  # the hairline band
    assert canonical[forehead[forehead < 468], 1].max() < canonical[152, 1]  # none at the chin


def test_gradient_ratio_is_one_for_an_unchanged_forehead_and_falls_when_smeared(model, canonical):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    verts, tris = model.topology.verts_model_mm, model.triangles
    assert forehead_gradient_ratio(image, image, canonical, canonical, verts, tris) == 1.0
    smeared = cv2.GaussianBlur(image, (0, 0), 2.0)
    assert forehead_gradient_ratio(smeared, image, canonical, canonical, verts, tris) < 0.5


def test_plain_warp_baseline_differs_from_the_default_only_by_its_interiors(
    astronaut, landmarker, model
):
    face = landmarker.detect(astronaut)[0]
    fit = fit_face(face.landmarks_px, model)
    delta = fit.expression_change_px(model.rig.offsets(model.rig.vector({43: 5})))
    default = render_expression(astronaut, face.landmarks_px, delta, model)
    plain = render_expression(astronaut, face.landmarks_px, delta, model, interiors=False)
    assert plain.roi == default.roi and np.array_equal(plain.alpha, default.alpha)
    assert not plain.mouth_painted
    dst = face.landmarks_px[:468] + delta
    warp = warp_mesh(
        astronaut,
        face.landmarks_px[:468, :2],
        dst[:, :2],
        dst[:, 2],
        model.triangles,
        roi=default.roi,
    )
    eyes = np.zeros(default.alpha.shape, np.uint8)
    for loop in (topo.LEFT_EYE, topo.RIGHT_EYE):
        source_eye = face.landmarks_px[list(loop), :2] - default.roi[:2]
        cv2.fillPoly(eyes, [np.round(source_eye).astype(np.int32)], 1)
    eyes = cv2.dilate(eyes, np.ones((5, 5), np.uint8)).astype(bool)
    assert np.array_equal(plain.image_rgb[eyes], warp.image_rgb[eyes])
    assert not np.array_equal(default.image_rgb[eyes], plain.image_rgb[eyes])
