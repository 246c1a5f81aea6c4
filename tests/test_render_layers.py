"""The render's layers (augmentface.render.warp, .eyes, .mouth) one by one, and
``render_expression`` as their composition.

The expression changes are drawn by hand on the astronaut's detected mesh (a jaw drop, a lid
raised or lowered, lips drawn together), not taken from the AU rig, so that what each test
asks of a layer holds whatever the rig's calibration.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from augmentface.face import topology as topo
from augmentface.face.model import N_MESH_VERTICES
from augmentface.render.eyes import _percentile, paint_eyes, sclera_rgb
from augmentface.render.face_render import render_expression
from augmentface.render.mouth import keeps_teeth_still, mouth_opening_px, paint_mouth
from augmentface.render.skin import median_rgb
from augmentface.render.warp import warp_face

EYES = (topo.LEFT_EYE, topo.RIGHT_EYE)
INNER = list(topo.LIPS_INNER)
UPPER = topo.LIPS_INNER_UPPER_COUNT


@pytest.fixture(scope="module")
def face(astronaut, landmarker):
    """(478, 3) float64 MediaPipe landmarks of the astronaut, image px."""
    faces = landmarker.detect(astronaut)
    assert faces, "the astronaut's face must be found"
    return np.asarray(faces[0].landmarks_px, dtype=np.float64)


def _mesh(face: np.ndarray) -> np.ndarray:
    """(468, 3) the mesh vertices of the landmarks (the irises dropped)."""
    return face[:N_MESH_VERTICES]


def _jaw_drop(face: np.ndarray) -> np.ndarray:
    """(468, 3) px change: lower lip and everything below it move down by a quarter of the
    mouth's width, opening the lips."""
    src = _mesh(face)
    lower_outer = list(topo.LIPS_OUTER[topo.LIPS_OUTER_UPPER_COUNT :])
    moved = np.zeros(len(src), bool)
    moved[INNER[UPPER:] + lower_outer] = True
    moved |= src[:, 1] > src[lower_outer, 1].max()
    width = np.linalg.norm(src[INNER[0], :2] - src[INNER[UPPER - 1], :2])
    delta = np.zeros_like(src)
    delta[moved, 1] = 0.25 * width
    return delta


def _lips_together(face: np.ndarray) -> np.ndarray:
    """(468, 3) px change: the inner lip contour shrinks to half its size about its centre,
    so the new opening lies within the old one."""
    src = _mesh(face)
    inner = src[INNER, :2]
    delta = np.zeros_like(src)
    delta[INNER, :2] = -0.5 * (inner - inner.mean(axis=0))
    return delta


def _lids(face: np.ndarray, raise_fraction: float) -> np.ndarray:
    """(468, 3) px change: each upper lid (corners kept) rises by ``raise_fraction`` of the
    eye's opening (negative: it lowers)."""
    src = _mesh(face)
    delta = np.zeros_like(src)
    for loop in EYES:
        opening = mouth_opening_px(src[list(loop), :2], topo.EYE_UPPER_COUNT)
        delta[list(loop[1 : topo.EYE_UPPER_COUNT - 1]), 1] = -raise_fraction * opening
    return delta


def _grown(polygon_px: np.ndarray, shape: tuple[int, int], grow_px: int) -> np.ndarray:
    """(h, w) bool: pixel centres inside the polygon, grown by ``grow_px``."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon_px * 16).astype(np.int32)], 1, shift=4)
    return cv2.dilate(mask, np.ones((2 * grow_px + 1, 2 * grow_px + 1), np.uint8)) > 0


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels where two (h, w, 3) crops differ."""
    return (a != b).any(axis=-1)


@pytest.mark.parametrize("static", [(), EYES, (*EYES, topo.LIPS_INNER)])
def test_warp_layer_zero_change_is_the_photo(astronaut, face, model, static):
    """A zero change reproduces the photo exactly (PSNR = inf), static interiors or not."""
    src = _mesh(face)
    warp = warp_face(astronaut, src, src.copy(), model, static_loops=static)
    x0, y0, x1, y1 = warp.roi
    np.testing.assert_array_equal(warp.image_rgb, astronaut[y0:y1, x0:x1])
    assert warp.alpha.shape == warp.image_rgb.shape[:2]
    assert warp.alpha.max() == 255 and warp.alpha[0, 0] == 0


@pytest.mark.parametrize("raise_fraction", [0.0, -0.5])
def test_eyes_layer_is_a_no_op_when_no_eye_widens(astronaut, face, model, raise_fraction):
    """A still or closing eye reveals nothing: the crop comes back unchanged."""
    dst = _mesh(face) + _lids(face, raise_fraction)
    warp = warp_face(astronaut, _mesh(face), dst, model, static_loops=EYES)
    out = paint_eyes(warp.image_rgb, astronaut, face, dst, warp.roi)
    np.testing.assert_array_equal(out, warp.image_rgb)


def test_eyes_layer_needs_the_irises(astronaut, face, model):
    """Without MediaPipe's iris landmarks there is no iris to continue: nothing is painted."""
    dst = _mesh(face) + _lids(face, 0.5)
    warp = warp_face(astronaut, _mesh(face), dst, model, static_loops=EYES)
    out = paint_eyes(warp.image_rgb, astronaut, _mesh(face), dst, warp.roi)
    np.testing.assert_array_equal(out, warp.image_rgb)


def test_eyes_layer_paints_only_the_widened_eyes(astronaut, face, model):
    """Raised lids get sclera and iris, and nothing outside the eyes' new openings changes."""
    dst = _mesh(face) + _lids(face, 0.5)
    warp = warp_face(astronaut, _mesh(face), dst, model, static_loops=EYES)
    out = paint_eyes(warp.image_rgb, astronaut, face, dst, warp.roi)
    changed = _changed(out, warp.image_rgb)
    offset = np.array(warp.roi[:2], dtype=np.float64)
    # The revealed band is blended in with a 1 px Gaussian, whose kernel reaches 4 px out.
    allowed = np.zeros(changed.shape, bool)
    for loop in EYES:
        allowed |= _grown(dst[list(loop), :2] - offset, changed.shape, 4)
    assert changed.any()
    assert not (changed & ~allowed).any()


def test_mouth_layer_paints_only_inside_the_grown_inner_lips(astronaut, face, model):
    """A jaw drop gets a mouth interior, painted within the target's inner-lip contour."""
    src = _mesh(face)
    dst = src + _jaw_drop(face)
    warp = warp_face(astronaut, src, dst, model, static_loops=EYES)
    out, painted = paint_mouth(warp.image_rgb, astronaut, src, dst, warp.roi)
    assert painted
    changed = _changed(out, warp.image_rgb)
    polygon = dst[INNER, :2] - warp.roi[:2]
    # paint_mouth_cavity's default 1 px feather plus anti-aliasing: 3 px at most.
    assert changed.any()
    assert not (changed & ~_grown(polygon, changed.shape, 3)).any()


@pytest.mark.parametrize("change", [_lips_together, lambda face: -0.1 * _jaw_drop(face)])
def test_mouth_layer_is_a_no_op_for_a_closing_mouth(astronaut, face, model, change):
    """Lips drawn together, or a jaw that rises a little: nothing new to paint."""
    src = _mesh(face)
    dst = src + change(face)
    assert mouth_opening_px(dst[INNER, :2], UPPER) < mouth_opening_px(src[INNER, :2], UPPER)
    warp = warp_face(astronaut, src, dst, model, static_loops=EYES)
    out, painted = paint_mouth(warp.image_rgb, astronaut, src, dst, warp.roi)
    assert not painted
    np.testing.assert_array_equal(out, warp.image_rgb)


def test_teeth_stay_still_only_while_the_lips_close_over_them(face):
    src = _mesh(face)
    assert keeps_teeth_still(src, src + _lips_together(face))
    assert not keeps_teeth_still(src, src + _jaw_drop(face))
    assert not keeps_teeth_still(src, src.copy())  # nothing closes


@pytest.mark.parametrize(
    "change",
    [
        lambda face: np.zeros((N_MESH_VERTICES, 3)),
        _jaw_drop,
        _lips_together,
        lambda face: _lids(face, 0.5),
        lambda face: _lids(face, 0.5) + _jaw_drop(face),
    ],
)
def test_render_is_the_composition_of_the_layers(astronaut, face, model, change):
    """warp, then eyes, then mouth; ``interiors=False`` is the warp alone, nothing still."""
    src = _mesh(face)
    delta = change(face)
    dst = src + delta
    static = EYES + ((topo.LIPS_INNER,) if keeps_teeth_still(src, dst) else ())
    warp = warp_face(astronaut, src, dst, model, static_loops=static)
    crop = paint_eyes(warp.image_rgb, astronaut, face, dst, warp.roi)
    crop, painted = paint_mouth(crop, astronaut, src, dst, warp.roi)
    rendered = render_expression(astronaut, face, delta, model)
    np.testing.assert_array_equal(rendered.image_rgb, crop)
    np.testing.assert_array_equal(rendered.alpha, warp.alpha)
    assert rendered.roi == warp.roi
    np.testing.assert_array_equal(rendered.target_verts_px, dst)
    assert rendered.mouth_painted == painted

    plain = warp_face(astronaut, src, dst, model)
    naive = render_expression(astronaut, face, delta, model, interiors=False)
    np.testing.assert_array_equal(naive.image_rgb, plain.image_rgb)
    np.testing.assert_array_equal(naive.alpha, plain.alpha)
    assert naive.roi == plain.roi and not naive.mouth_painted


def test_sclera_is_white_even_where_little_of_it_shows():
    """A shadowed eye shows so little sclera that its brightest part is lid skin: the white is
    kept near-neutral, at least 0.8 of the cheeks' luminance; a clearly seen white is kept."""
    luma = np.array([0.299, 0.587, 0.114])
    skin = np.array([214.0, 170.0, 145.0])
    shadow = np.tile([110.0, 60.0, 45.0], (50, 1))
    white = sclera_rgb(shadow, skin)
    assert white @ luma == pytest.approx(0.8 * skin @ luma, rel=0.02)
    assert np.ptp(white) / (white @ luma) < 0.2  # skin here: 0.45
    iris, lit_white = np.tile([40.0, 30.0, 25.0], (50, 1)), np.tile([235.0, 230.0, 226.0], (60, 1))
    seen = np.vstack([iris, lit_white])
    np.testing.assert_allclose(sclera_rgb(seen, skin), [235.0, 230.0, 226.0], atol=3)


@pytest.mark.parametrize("count", [1, 2, 5, 6, 7, 200, 201])
def test_colour_statistics_are_numpys_to_the_bit(count: int) -> None:
    # The layers' median and percentile by partition give np.median's and np.percentile's
    # values exactly, ties and even counts included.
    rng = np.random.default_rng(count)
    for pixels in (rng.integers(0, 256, (count, 3), np.uint8), rng.normal(120, 40, (count, 3))):
        np.testing.assert_array_equal(median_rgb(pixels), np.median(pixels.astype(float), 0))
        brightness = pixels.astype(float) @ [0.299, 0.587, 0.114]
        for share in (0.0, 0.25, 0.6, 0.99, 1.0):
            assert _percentile(brightness, share) == np.percentile(brightness, 100 * share)
