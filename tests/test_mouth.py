"""Tests of the procedural mouth interior (augmentface.render.mouth)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from augmentface.face import topology as topo
from augmentface.render.mouth import (
    JAW_LIP_PER_CHIN_DROP,
    REST_LOWER_TEETH_SHOW_WIDTH_FRACTION,
    REST_TEETH_SHOW_WIDTH_FRACTION,
    TEETH_LIT_SKIN_LUMA_RATIO,
    lower_teeth_show_px,
    mouth_opening_px,
    paint_mouth_cavity,
    teeth_rgb_from_skin,
    upper_teeth_show_px,
)

SKIN_RGB = np.array([214.0, 170.0, 145.0])
LIP_RGB = np.array([190.0, 110.0, 110.0])
UPPER_COUNT = 11


def _luma(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def _inner_lip_polygon_px(
    scale: float = 1.0, opening_px: float = 24.0, centre_px: tuple[float, float] = (80.0, 60.0)
) -> np.ndarray:
    """(20, 2) inner-lip loop of a level mouth 80 px wide (times ``scale``): 11 upper points
    from the left corner to the right, then 9 lower points back; the lower arc drops by
    ``opening_px`` (times ``scale``) at the middle."""
    s_upper = np.linspace(0.0, 1.0, UPPER_COUNT)
    s_lower = np.linspace(1.0, 0.0, UPPER_COUNT)[1:-1]
    upper = np.c_[s_upper - 0.5, -0.03 * np.sin(np.pi * s_upper)] * 80.0
    lower = np.c_[s_lower - 0.5, -0.03 * np.sin(np.pi * s_lower)] * 80.0
    lower[:, 1] += opening_px * np.sin(np.pi * s_lower) ** 0.8
    return np.concatenate([upper, lower]) * scale + centre_px


def _face_rgb(polygon_px: np.ndarray, shape: tuple[int, int], lip_px: float) -> np.ndarray:
    """(H, W, 3) uint8 skin with lips ``lip_px`` thick around the polygon, and mild noise."""
    face = np.empty((*shape, 3), dtype=np.float64)
    face[:] = SKIN_RGB
    lips = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(lips, [np.round(polygon_px).astype(np.int32)], 1)
    size = 2 * round(lip_px) + 1
    lips = cv2.dilate(lips, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    face[lips > 0] = LIP_RGB
    face += np.random.default_rng(0).normal(0.0, 3.0, face.shape)
    return np.clip(np.round(face), 0, 255).astype(np.uint8)


def _polygon_mask(polygon_px: np.ndarray, shape: tuple[int, int], grow_px: int = 0) -> np.ndarray:
    """(H, W) bool: pixel centres inside the polygon, grown by ``grow_px``."""
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(polygon_px * 16).astype(np.int32)], 1, shift=4)
    if grow_px:
        mask = cv2.dilate(mask, np.ones((2 * grow_px + 1, 2 * grow_px + 1), np.uint8))
    return mask > 0


def _paint(polygon_px: np.ndarray, shape=(120, 160), lip_px=10.0, **kwargs):
    face_rgb = _face_rgb(polygon_px, shape, lip_px)
    painted_rgb = paint_mouth_cavity(
        face_rgb, polygon_px, upper_count=UPPER_COUNT, lip_rgb=LIP_RGB, **kwargs
    )
    return face_rgb, painted_rgb


def test_mouth_opening_is_the_mean_gap_between_the_arcs() -> None:
    # Trapezoid: the gap ramps 0 -> 10 px over 20 px, stays 10 px for 40 px, ramps back.
    polygon_px = np.array([[40, 60], [60, 60], [100, 60], [120, 60], [100, 70], [60, 70.0]])
    assert mouth_opening_px(polygon_px, 4) == pytest.approx(7.5, abs=0.2)

    angle = np.deg2rad(30.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled_px = polygon_px @ rotation.T + (7.0, -3.0)
    assert mouth_opening_px(rolled_px, 4) == pytest.approx(mouth_opening_px(polygon_px, 4))
    assert mouth_opening_px(2.0 * polygon_px, 4) == pytest.approx(15.0, abs=0.4)


def test_overlapping_lips_count_as_closed() -> None:
    polygon_px = np.array([[40, 60], [80, 62], [120, 60], [80, 58.0]])
    assert mouth_opening_px(polygon_px, 3) == 0.0


def test_input_is_not_mutated() -> None:
    polygon_px = _inner_lip_polygon_px()
    face_rgb = _face_rgb(polygon_px, (120, 160), 10.0)
    before = face_rgb.copy()

    painted_rgb = paint_mouth_cavity(face_rgb, polygon_px, upper_count=UPPER_COUNT, lip_rgb=LIP_RGB)

    np.testing.assert_array_equal(face_rgb, before)
    assert painted_rgb is not face_rgb and painted_rgb.dtype == np.uint8
    assert painted_rgb.shape == face_rgb.shape


@pytest.mark.parametrize("feather_px", [0.0, 1.0, 2.0])
def test_paint_stays_inside_the_polygon_plus_feather(feather_px: float) -> None:
    polygon_px = _inner_lip_polygon_px()
    face_rgb, painted_rgb = _paint(polygon_px, feather_px=feather_px)

    changed = np.any(painted_rgb != face_rgb, axis=2)
    # +1 px: anti-aliased edge pixels whose centres lie just outside the polygon.
    allowed = _polygon_mask(polygon_px, changed.shape, grow_px=int(np.ceil(feather_px)) + 1)
    assert changed.any()
    assert not (changed & ~allowed).any()


def _opening_column_luma(polygon_px: np.ndarray, painted_rgb: np.ndarray, x: int) -> np.ndarray:
    """Luma down column ``x`` strictly between the polygon's upper and lower edges there."""
    inside = _polygon_mask(polygon_px, painted_rgb.shape[:2])[:, x]
    rows = np.flatnonzero(inside)
    return _luma(painted_rgb[rows[1:-1], x])


@pytest.mark.parametrize("scale", [0.25, 1.0, 4.0])
def test_dark_cavity_under_a_bright_upper_teeth_band(scale: float) -> None:
    polygon_px = _inner_lip_polygon_px(scale, centre_px=(80.0 * scale, 40.0 * scale))
    shape = (int(100 * scale), int(160 * scale))
    _, painted_rgb = _paint(polygon_px, shape=shape, lip_px=10.0 * scale)

    column = _opening_column_luma(polygon_px, painted_rgb, round(80 * scale))
    top, bottom = column[: len(column) // 4], column[len(column) // 2 :]
    lips_luma = _luma(LIP_RGB)
    # The cavity (lower half) is dark: well below the lips, about 10-20 % of full scale.
    assert np.median(bottom) < 0.4 * lips_luma
    assert 0.05 * 255 < np.median(bottom) < 0.22 * 255
    # The teeth band hangs from the upper lip: bright, and brightest in the upper third.
    assert top.max() > np.median(bottom) + 80
    assert np.argmax(column) < len(column) / 3


def test_teeth_band_is_about_a_third_of_the_opening() -> None:
    polygon_px = _inner_lip_polygon_px(2.0, opening_px=24.0, centre_px=(160.0, 80.0))
    _, painted_rgb = _paint(polygon_px, shape=(240, 320), lip_px=20.0)

    column = _opening_column_luma(polygon_px, painted_rgb, 160)
    teeth_rows = column > 0.5 * (column.max() + np.median(column[len(column) // 2 :]))
    band = np.flatnonzero(teeth_rows)
    assert band[0] <= 1  # starts at the upper lip
    assert 0.25 < band.size / column.size < 0.45


def test_given_teeth_colour_is_used() -> None:
    polygon_px = _inner_lip_polygon_px(2.0, centre_px=(160.0, 80.0))
    teeth_rgb = np.array([180.0, 200.0, 230.0])  # bluish, unlike any default
    _, painted_rgb = _paint(polygon_px, shape=(240, 320), lip_px=20.0, teeth_rgb=teeth_rgb)

    rows = np.flatnonzero(_polygon_mask(polygon_px, painted_rgb.shape[:2])[:, 160])
    column_rgb = painted_rgb[rows, 160].astype(np.float64)
    brightest_rgb = column_rgb[np.argmax(_luma(column_rgb))]
    assert brightest_rgb[2] > brightest_rgb[0]
    np.testing.assert_allclose(brightest_rgb, teeth_rgb, atol=0.2 * 255)


def test_tiny_opening_paints_only_a_dark_line() -> None:
    tiny_px = _inner_lip_polygon_px(opening_px=1.5)
    open_px = _inner_lip_polygon_px(opening_px=24.0)
    face_rgb, painted_rgb = _paint(tiny_px)
    _, open_rgb = _paint(open_px)

    assert mouth_opening_px(tiny_px, UPPER_COUNT) < 2.0
    changed = np.any(painted_rgb != face_rgb, axis=2)
    changed_open = np.any(open_rgb != face_rgb, axis=2)
    assert 0 < changed.sum() < 0.25 * changed_open.sum()
    # Nothing brightens (no teeth): the line only darkens the lips.
    assert (_luma(painted_rgb[changed]) <= _luma(face_rgb[changed]) + 1).all()
    assert _luma(painted_rgb[changed]).min() < 0.5 * _luma(LIP_RGB)


def test_large_opening_adds_a_tongue_near_the_bottom() -> None:
    polygon_px = _inner_lip_polygon_px(2.0, opening_px=40.0, centre_px=(160.0, 60.0))
    _, painted_rgb = _paint(polygon_px, shape=(240, 320), lip_px=20.0)

    column_rgb = painted_rgb[:, 160].astype(np.float64)
    rows = np.flatnonzero(_polygon_mask(polygon_px, painted_rgb.shape[:2])[:, 160])
    middle_rgb = column_rgb[rows[len(rows) // 2]]
    near_bottom_rgb = column_rgb[rows[-len(rows) // 6]]
    # The tongue is lighter and redder than the cavity behind it.
    assert _luma(near_bottom_rgb) > _luma(middle_rgb) + 10
    assert near_bottom_rgb[0] - near_bottom_rgb[1] > middle_rgb[0] - middle_rgb[1]


def test_mouth_at_the_image_edge_is_clipped() -> None:
    polygon_px = _inner_lip_polygon_px(centre_px=(20.0, 110.0))  # hangs off left and bottom
    face_rgb, painted_rgb = _paint(polygon_px)
    assert np.any(painted_rgb != face_rgb)


def test_bad_upper_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="upper_count"):
        mouth_opening_px(_inner_lip_polygon_px(), 20)


@pytest.mark.parametrize("teeth_show_px", [6.0, 12.0])
def test_teeth_band_shows_what_the_upper_lip_bares(teeth_show_px: float) -> None:
    """Given how far the lip bares the teeth, the band is that tall in the middle (teeth are
    fixed to the skull), and never fills the whole opening."""
    polygon_px = _inner_lip_polygon_px(2.0, opening_px=24.0, centre_px=(160.0, 80.0))
    _, painted_rgb = _paint(polygon_px, shape=(240, 320), lip_px=20.0, teeth_show_px=teeth_show_px)
    column = _opening_column_luma(polygon_px, painted_rgb, 160)
    teeth_rows = np.flatnonzero(column > 0.5 * (column.max() + column.min()))
    assert teeth_rows[0] <= 1
    assert teeth_rows.size == pytest.approx(teeth_show_px, abs=2.5)
    _, bared_rgb = _paint(polygon_px, shape=(240, 320), lip_px=20.0, teeth_show_px=200.0)
    bared = _opening_column_luma(polygon_px, bared_rgb, 160)
    assert np.median(bared[-3:]) < 0.6 * bared.max()  # dark below the teeth, even fully bared


def _mesh_with_mouth(raise_px: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A (468, 2) mesh whose inner lips are the test loop, and a copy whose upper inner lip's
    middle is raised by ``raise_px`` (image y up)."""
    src = np.zeros((468, 2))
    src[list(topo.LIPS_INNER)] = _inner_lip_polygon_px(2.0, centre_px=(160.0, 80.0))
    dst = src.copy()
    dst[list(topo.LIPS_INNER[1 : topo.LIPS_INNER_UPPER_COUNT - 1]), 1] -= raise_px
    return src, dst


def test_teeth_show_more_as_the_upper_lip_rises() -> None:
    src, still = _mesh_with_mouth()
    width_px = 160.0
    rest = upper_teeth_show_px(src, still)
    assert rest == pytest.approx(REST_TEETH_SHOW_WIDTH_FRACTION * width_px, rel=0.01)
    _, raised = _mesh_with_mouth(5.0)
    assert upper_teeth_show_px(src, raised) == pytest.approx(rest + 5.0, abs=0.01)
    _, lowered = _mesh_with_mouth(-50.0)
    assert upper_teeth_show_px(src, lowered) == 0.0


def _jaw_and_lip_moved(lip_drop_px: float, chin_drop_px: float) -> tuple[np.ndarray, np.ndarray]:
    """A (468, 2) mesh with the test mouth, and a copy whose lower inner lip drops by
    ``lip_drop_px`` and chin by ``chin_drop_px`` (image y down)."""
    src, dst = _mesh_with_mouth()
    dst[list(topo.LIPS_INNER[topo.LIPS_INNER_UPPER_COUNT :]), 1] += lip_drop_px
    dst[152, 1] += chin_drop_px
    return src, dst


def test_lower_teeth_show_as_the_lip_drops_away_from_the_jaw() -> None:
    """The lower teeth go with the jaw: a lip that drops with it bares nothing more, a lip
    that drops away from it (AU25) bares them, a lip pushed up (AU17) covers them."""
    rest = lower_teeth_show_px(*_mesh_with_mouth())
    assert rest == pytest.approx(REST_LOWER_TEETH_SHOW_WIDTH_FRACTION * 160.0, rel=0.01)
    assert lower_teeth_show_px(*_jaw_and_lip_moved(6.0, 0.0)) == pytest.approx(rest + 6.0)
    jaw_only = _jaw_and_lip_moved(JAW_LIP_PER_CHIN_DROP * 20.0, 20.0)
    assert lower_teeth_show_px(*jaw_only) == pytest.approx(rest)
    assert lower_teeth_show_px(*_jaw_and_lip_moved(-10.0, 0.0)) == 0.0


def test_jaw_ratio_is_the_rigs(model) -> None:
    """The lower lip's drop per chin drop in :data:`JAW_LIP_PER_CHIN_DROP` is the rig's AU26."""
    jaw = model.rig.fields_model_mm[model.rig.au_numbers.index(26)]
    assert jaw[14, 1] / jaw[152, 1] == pytest.approx(JAW_LIP_PER_CHIN_DROP, abs=0.01)


def test_closed_jaw_smile_fills_its_opening_with_teeth() -> None:
    """With the jaw closed, the upper teeth reach down to the lower teeth, which stand up from
    the lower lip: no dark band across the middle; the corners stay dark (buccal corridors).
    A jaw that drops leaves the dark between the two rows."""
    polygon_px = _inner_lip_polygon_px(2.0, opening_px=24.0, centre_px=(160.0, 80.0))
    kwargs = {"shape": (240, 320), "lip_px": 20.0}
    _, smile_rgb = _paint(polygon_px, teeth_show_px=36.0, lower_teeth_show_px=14.0, **kwargs)
    # Across a central incisor (the midline is the notch between the two).
    middle = _opening_column_luma(polygon_px, smile_rgb, 172)
    teeth_luma = middle.max()
    assert middle.min() > 0.6 * teeth_luma
    corner = _opening_column_luma(polygon_px, smile_rgb, 160 - 76)
    assert corner.max() < 0.5 * teeth_luma
    _, dropped_rgb = _paint(polygon_px, teeth_show_px=16.0, lower_teeth_show_px=6.0, **kwargs)
    assert _opening_column_luma(polygon_px, dropped_rgb, 172).min() < 0.4 * teeth_luma


def test_teeth_colour_follows_the_photos_skin() -> None:
    """Lit teeth are a near-neutral white, brighter than the cheeks by the calibrated ratio."""
    verts = np.zeros((468, 2))
    verts[:] = (5.0, 5.0)
    for skin in ([214.0, 170.0, 145.0], [90.0, 60.0, 50.0]):
        image = np.empty((10, 10, 3), np.uint8)
        image[:] = skin
        teeth = teeth_rgb_from_skin(image, verts)
        assert _luma(teeth) == pytest.approx(TEETH_LIT_SKIN_LUMA_RATIO * _luma(skin), rel=0.02)
        assert np.ptp(teeth) / _luma(teeth) < 0.5 * np.ptp(skin) / _luma(skin)
