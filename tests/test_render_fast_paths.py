"""The render's fast paths give what the plain computations they replace give.

Each test holds one shortcut of render + blend (benchmarks/bench_render_profile.py times them)
against a direct computation written here: the warp's cached triangulation, the batched
mouth/eye openings, the float32 (and, for wide feathers, coarse-grid) mask blur, the one-call
alpha blend, the detail layer's skipping of triangles its maps cannot reach, and the eye
layer's work confined to the eye's box.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from augmentface.blend import alpha_blend
from augmentface.face import topology as topo
from augmentface.face.model import N_MESH_VERTICES
from augmentface.render import details as details_module
from augmentface.render import eyes as eyes_module
from augmentface.render import warp as warp_module
from augmentface.render.blur import gaussian_blur
from augmentface.render.detail_maps import builtin_detail_maps
from augmentface.render.details import DetailsInput, apply_details
from augmentface.render.eyes import sclera_rgb
from augmentface.render.kernels import piecewise_affine_maps
from augmentface.render.mouth import mouth_opening_px, mouth_openings_px
from augmentface.render.rasterize import triangle_id_buffer
from augmentface.render.skin import cheek_skin_rgb
from augmentface.render.warp import (
    _band_triangles,
    _mask,
    _static_interiors,
    _triangulation,
    anchor_ring_px,
    warp_face,
)


@pytest.fixture(scope="module")
def face(astronaut, landmarker) -> np.ndarray:
    """(468, 3) float64 mesh of the astronaut, image px."""
    faces = landmarker.detect(astronaut)
    assert faces
    return np.asarray(faces[0].landmarks_px, dtype=np.float64)[:N_MESH_VERTICES]


def test_cached_triangulation_is_the_static_interiors_one(model, face) -> None:
    loops = (topo.LEFT_EYE, topo.RIGHT_EYE, topo.LIPS_INNER)
    oval = np.asarray(topo.FACE_OVAL)
    n = len(face)
    ring = anchor_ring_px(face[oval, :2])
    src_all = np.vstack([face[:, :2], ring])
    depth = np.concatenate([face[:, 2], np.full(len(ring), 1e3)])
    triangles = np.vstack([model.triangles, _band_triangles(n, oval)])
    _, dst_ref, depth_ref, triangles_ref = _static_interiors(
        src_all, src_all, depth, triangles, model.topology, face, loops
    )

    cached, copied = _triangulation(model, n, loops)

    np.testing.assert_array_equal(cached, triangles_ref)
    np.testing.assert_array_equal(face[copied, :2], dst_ref[len(src_all) :])
    np.testing.assert_array_equal(face[copied, 2], depth_ref[len(src_all) :])
    assert _triangulation(model, n, loops)[0] is cached  # made once
    assert not cached.flags.writeable
    assert len(_triangulation(model, n, loops[:2])[1]) < len(copied)


def _opening_reference(polygon_px: np.ndarray, upper_count: int) -> float:
    """mouth_opening_px as first written: one loop, np.interp per arc."""
    first, second = polygon_px[0], polygon_px[upper_count - 1]
    width = float(np.linalg.norm(second - first))
    axis = (second - first) / max(width, 1e-9)
    normal = np.array([-axis[1], axis[0]])
    if normal[1] < 0 or (normal[1] == 0 and normal[0] < 0):
        normal = -normal

    def uv(points):
        offset = points - first
        return offset @ axis, offset @ normal

    upper_u, upper_v = uv(polygon_px[:upper_count])
    lower = np.concatenate([second[None], polygon_px[upper_count:], first[None]])
    lower_u, lower_v = uv(lower)
    up, low = np.argsort(upper_u, kind="stable"), np.argsort(lower_u, kind="stable")
    u = (np.arange(64) + 0.5) * (width / 64)
    gap = np.interp(u, lower_u[low], lower_v[low]) - np.interp(u, upper_u[up], upper_v[up])
    return float(np.maximum(gap, 0.0).mean())


@pytest.mark.parametrize(
    ("loop", "upper_count"),
    [(topo.LIPS_INNER, topo.LIPS_INNER_UPPER_COUNT), (topo.LEFT_EYE, topo.EYE_UPPER_COUNT)],
)
def test_batched_openings_match_one_loop_at_a_time(face, loop, upper_count) -> None:
    rng = np.random.default_rng(3)
    base = face[list(loop), :2]
    turn = np.array([[0.0, 1.0], [-1.0, 0.0]])
    polygons = np.stack(
        [
            base,
            base + rng.normal(0, 2.0, base.shape),
            base + rng.normal(0, 8.0, base.shape),  # crossing lips: some gaps are 0
            (base - base.mean(0)) @ turn + base.mean(0),  # a head rolled by 90°
            base[::-1],
            np.repeat(base[:1], len(base), axis=0),  # a collapsed loop
        ]
    )

    batched = mouth_openings_px(polygons, upper_count)

    for polygon, opening in zip(polygons, batched, strict=True):
        expected = _opening_reference(polygon, upper_count)
        assert opening == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert mouth_opening_px(polygon, upper_count) == pytest.approx(expected, abs=1e-12)


def test_alpha_blend_keeps_unmasked_pixels_and_rounds_the_mix() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (80, 90, 3), np.uint8)
    crop = rng.integers(0, 256, (40, 50, 3), np.uint8)
    alpha = rng.integers(0, 256, (40, 50), np.uint8)
    alpha[:10] = 0
    alpha[-5:] = 255
    roi = (20, 30, 70, 70)

    out = alpha_blend(image, crop, alpha, roi)

    region = image[30:70, 20:70].astype(np.float64)
    a = alpha[..., None] / 255.0
    expected = region * (1 - a) + crop * a
    # Rounded once, in float32: within half a level, ties may go either way.
    assert np.abs(out[30:70, 20:70] - expected).max() <= 0.51
    np.testing.assert_array_equal(out[30:70, 20:70][alpha == 0], image[30:70, 20:70][alpha == 0])
    np.testing.assert_array_equal(out[30:70, 20:70][alpha == 255], crop[alpha == 255])
    outside = np.ones(image.shape[:2], bool)
    outside[30:70, 20:70] = False
    np.testing.assert_array_equal(out[outside], image[outside])
    assert out is not image


def _mask_reference(ring_px: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """The feathered mask as first written: 8-bit erode by 3x3 ones, then GaussianBlur."""
    x0, y0, x1, y1 = roi
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((ring_px - (x0, y0)) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    feather = max(1, round(float(np.ptp(ring_px[:, 0])) * 0.3 / 1.3 * 0.25))
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=feather)
    return cv2.GaussianBlur(mask, (0, 0), feather / 2.0)


@pytest.mark.parametrize(("scale", "tolerance"), [(1.0, 1), (3.0, 8), (8.0, 8)])
def test_mask_matches_the_8_bit_blur(face, scale, tolerance) -> None:
    ring = anchor_ring_px(face[np.asarray(topo.FACE_OVAL), :2] * scale)
    x0, y0 = np.floor(ring.min(axis=0)).astype(int)
    x1, y1 = np.ceil(ring.max(axis=0)).astype(int) + 1
    roi = (int(x0), int(y0), int(x1), int(y1))

    mask = _mask(ring, roi)
    expected = _mask_reference(ring, roi)

    assert mask.dtype == np.uint8 and mask.shape == expected.shape
    diff = np.abs(mask.astype(int) - expected)
    assert diff.max() <= tolerance
    assert diff.mean() < 0.25


def test_detail_layer_skips_only_pixels_its_maps_leave_alone(
    model, astronaut, face, monkeypatch
) -> None:
    maps = builtin_detail_maps(model)
    src, dst = face, face.copy()
    dst[:, 1] += 2.0 * np.sin(dst[:, 0] / 15.0)  # a non-affine move: the Jacobians vary
    warp = warp_face(astronaut, src, dst, model)
    rng = np.random.default_rng(5)
    cases = [np.eye(len(maps.au_numbers))[k] * sign for k in range(3) for sign in (1, -1)]
    cases.append(rng.uniform(-1, 1, len(maps.au_numbers)))

    def render(weights):
        return apply_details(
            warp.image_rgb,
            dst,
            warp.roi,
            model,
            DetailsInput(maps, weights),
            warp.triangle_ids,
            warp.barycentric_maps,
        )

    reached = []
    reaches_maps = details_module._reaches_maps
    with monkeypatch.context() as patch:
        patch.setattr(
            details_module,
            "_reaches_maps",
            lambda *args: reached.append(reaches_maps(*args)) or reached[-1],
        )
        fast = [render(w) for w in cases]
    with monkeypatch.context() as patch:
        patch.setattr(
            details_module,
            "_reaches_maps",
            lambda maps, level, chosen, box, to_texel: np.ones(len(to_texel), bool),
        )
        everywhere = [render(w) for w in cases]

    for weights, got, expected in zip(cases, fast, everywhere, strict=True):
        assert (expected != warp.image_rgb).any(), weights
        np.testing.assert_array_equal(got, expected)
    # One map reaches a part of the face only: the shortcut left most triangles out.
    assert all(r.mean() < 0.6 for r in reached[:-1])


@pytest.mark.parametrize(("sigma", "step"), [(6.0, 2), (12.0, 4), (30.0, 10)])
def test_coarse_gaussian_blur_matches_opencv(astronaut, sigma, step) -> None:
    log_luma = np.log1p(cv2.cvtColor(astronaut.astype(np.float32), cv2.COLOR_RGB2GRAY))

    coarse = gaussian_blur(log_luma, sigma, step=step)
    expected = cv2.GaussianBlur(log_luma, (0, 0), sigma)

    assert coarse.shape == expected.shape and coarse.dtype == np.float32
    inner = (slice(int(4 * sigma), -int(4 * sigma)),) * 2  # borders are resampled differently
    error = np.abs(coarse - expected)[inner]
    span = float(np.ptp(log_luma))
    assert error.max() < 0.02 * span
    assert error.mean() < 0.002 * span
    np.testing.assert_allclose(gaussian_blur(log_luma, sigma), expected, atol=1e-4)


def _revealed_eyeball_reference(crop, image_rgb, src_poly, dst_poly, iris, roi, skin_rgb):
    """The eye layer's painting as first written: every mask, blur and blend over the whole
    crop."""
    shape = crop.shape[:2]

    def fill(polygon):
        mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1, shift=4)
        return mask.astype(bool)

    rim = max(1, round(0.2 * mouth_opening_px(src_poly, topo.EYE_UPPER_COUNT)))
    old = cv2.erode(fill(src_poly).astype(np.uint8), np.ones((2 * rim + 1, 1), np.uint8))
    old = old.astype(bool)
    new = fill(dst_poly) & ~old
    if not new.any():
        return crop
    centre = iris[0]
    radius = float(np.mean(np.linalg.norm(iris[1:] - centre, axis=1)))
    ys, xs = np.nonzero(new)
    in_iris = np.hypot(xs - centre[0], ys - centre[1]) <= radius
    source = image_rgb[roi[1] : roi[3], roi[0] : roi[2]]
    grid_y, grid_x = np.mgrid[: shape[0], : shape[1]]
    disc = np.hypot(grid_x - centre[0], grid_y - centre[1]) <= radius * 1.1
    sclera = sclera_rgb(source[old & ~disc], skin_rgb)
    out = crop.copy()
    height = max(np.ptp(dst_poly[:, 1]), 1.0)
    depth = np.clip((ys - dst_poly[:, 1].min()) / height, 0.0, 1.0)[:, None]
    out[ys, xs] = np.clip(sclera * (0.8 + 0.2 * depth), 0, 255).astype(np.uint8)
    mirror_x = np.clip(np.round(xs[in_iris]).astype(int), 0, shape[1] - 1)
    mirror_y = np.clip(np.round(2 * centre[1] - ys[in_iris]).astype(int), 0, shape[0] - 1)
    out[ys[in_iris], xs[in_iris]] = source[mirror_y, mirror_x]
    soft = cv2.GaussianBlur(new.astype(np.float32), (0, 0), 1.0)[..., None]
    return np.round(soft * out + (1 - soft) * crop).astype(np.uint8)


def test_eye_layer_in_the_eyes_box_is_the_whole_crop_computation(
    model, astronaut, landmarker
) -> None:
    landmarks = np.asarray(landmarker.detect(astronaut)[0].landmarks_px, dtype=np.float64)
    face = landmarks[:N_MESH_VERTICES]
    skin = cheek_skin_rgb(astronaut, landmarks)
    irises = {id(topo.LEFT_EYE): range(473, 478), id(topo.RIGHT_EYE): range(468, 473)}
    rng = np.random.default_rng(11)
    painted = 0
    for case in range(24):
        dst = face.copy()
        for loop in (topo.LEFT_EYE, topo.RIGHT_EYE):
            lids = list(loop[1 : topo.EYE_UPPER_COUNT - 1])
            dst[lids, 1] -= rng.uniform(-1.0, 6.0) + rng.normal(0, 0.7, len(lids))
            dst[list(loop), 0] += rng.normal(0, 0.5, len(loop))
        warp = warp_face(astronaut, face, dst, model, static_loops=(topo.LEFT_EYE, topo.RIGHT_EYE))
        roi = warp.roi
        crop = warp.image_rgb
        if case % 3 == 2:  # a roi cut through the eyes, as at an image's edge
            (x0, y0, _, y1), eye = roi, face[list(topo.LEFT_EYE), :2]
            roi = (x0, int(eye[:, 1].mean()) - 2, int(eye[:, 0].mean()), y1)
            crop = crop[roi[1] - y0 : roi[3] - y0, roi[0] - x0 : roi[2] - x0]
        offset = np.asarray(roi[:2], dtype=np.float64)
        for loop in (topo.LEFT_EYE, topo.RIGHT_EYE):
            args = (
                crop,
                astronaut,
                face[list(loop), :2] - offset,
                dst[list(loop), :2] - offset,
                landmarks[list(irises[id(loop)]), :2] - offset,
                roi,
                skin,
            )
            expected = _revealed_eyeball_reference(*args)
            got = crop.copy()
            eyes_module._paint_revealed_eyeball(got, *args[1:])
            np.testing.assert_array_equal(got, expected)
            painted += expected is not crop
    assert painted >= 24  # most cases reveal eyeball


def test_face_mask_is_made_once_per_face_and_handed_out_as_copies(face, monkeypatch) -> None:
    oval = np.asarray(topo.FACE_OVAL)
    rings = [anchor_ring_px(face[oval, :2]), anchor_ring_px(face[oval, :2] + (0.25, 0.0))]
    rois = [(100, 80, 260, 250), (100, 80, 260, 251)]
    made = []
    monkeypatch.setattr(warp_module, "_mask", lambda *args: made.append(args) or _mask(*args))
    monkeypatch.setattr(warp_module, "_last_mask", None)
    for ring in rings:
        for roi in rois:
            first = warp_module._face_mask(ring, roi)
            np.testing.assert_array_equal(first, _mask(ring, roi))
            first[:] = 7  # the caller's own copy
            again = warp_module._face_mask(ring.copy(), roi)
            np.testing.assert_array_equal(again, _mask(ring, roi))
            assert again.flags.writeable
    assert len(made) == len(rings) * len(rois)


def _opencv_id_buffer(verts_px, depth_px, triangles, shape, beneath):
    """triangle_id_buffer as first written: a Python loop of fillConvexPoly (LINE_8, 1/16 px
    vertices), far to near."""
    ids = np.full(shape, -1, dtype=np.int32)
    order = np.argsort(-depth_px[triangles].mean(axis=1), kind="stable")
    for t in np.concatenate([order[beneath[order]], order[~beneath[order]]]):
        corners = np.round(verts_px[triangles[t]] * 16).astype(np.int32)
        cv2.fillConvexPoly(ids, corners, int(t), cv2.LINE_8, 4)
    return ids


def _rule_id_buffer(verts_px, depth_px, triangles, shape, beneath):
    """fill_triangle_ids's coverage rule in NumPy: the whole buffer, every triangle."""
    ids = np.full(shape, -1, dtype=np.int32)
    ys, xs = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    order = np.argsort(-depth_px[triangles].mean(axis=1), kind="stable")
    for t in np.concatenate([order[beneath[order]], order[~beneath[order]]]):
        a, b, c = verts_px[triangles[t], :2].astype(np.float64)
        if (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]) < 0:
            b, c = c, b
        lo = np.floor(np.min([a, b, c], axis=0) + 0.5)
        hi = np.floor(np.max([a, b, c], axis=0) + 0.5)
        inside = (xs >= lo[0]) & (xs <= hi[0]) & (ys >= lo[1]) & (ys <= hi[1])
        for p, q in ((a, b), (b, c), (c, a)):
            edge = (q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0])
            inside &= edge >= -0.5 * max(abs(q[0] - p[0]), abs(q[1] - p[1]))
        ids[inside] = t
    return ids


def _meshes(model, face, rng):
    local = face[:, :2] - face[:, :2].min(axis=0) + 3
    shape = tuple(int(v) + 6 for v in local.max(axis=0)[::-1])
    # A crumpled mesh of many overlapping triangles, ids into the thousands, and a sliver.
    many = np.concatenate([rng.integers(0, 400, (5000, 3)), [[0, 1, 1]]])
    return shape, [
        (local, face[:, 2], model.triangles),
        (rng.uniform(0, 90, (400, 2)), rng.normal(0, 10, 400), many),
    ]


def test_id_buffer_follows_its_coverage_rule(model, face) -> None:
    rng = np.random.default_rng(8)
    shape, meshes = _meshes(model, face, rng)
    for verts, depth, triangles in meshes:
        beneath = rng.random(len(triangles)) < 0.1
        got = triangle_id_buffer(verts, depth, triangles, shape, beneath=beneath)
        expected = _rule_id_buffer(verts, depth, triangles, shape, beneath)
        np.testing.assert_array_equal(got, expected)
        assert got.max() > 0.5 * len(triangles)


def test_id_buffer_covers_what_opencv_fills(model, face) -> None:
    """The compiled rasteriser replaced fillConvexPoly: the same pixels covered, all but a
    few at the mesh's rim, and the same triangle at each but along shared edges."""
    rng = np.random.default_rng(3)
    shape, meshes = _meshes(model, face, rng)
    verts, depth, triangles = meshes[0]
    beneath = np.zeros(len(triangles), bool)
    got = triangle_id_buffer(verts, depth, triangles, shape, beneath=beneath)
    opencv = _opencv_id_buffer(verts, depth, triangles, shape, beneath)
    covered = opencv >= 0
    assert ((got >= 0) != covered).sum() <= 0.002 * covered.sum()
    assert (got == opencv)[covered].mean() > 0.9


def test_compiled_remap_maps_are_numpys_to_the_bit() -> None:
    rng = np.random.default_rng(5)
    to_src = rng.normal(0, 500, (2, 3, 301)).astype(np.float32)
    ids = rng.integers(-1, 300, (47, 61)).astype(np.int32)
    got = piecewise_affine_maps(ids, to_src)
    entry = np.where(ids >= 0, ids, 300)
    cols = np.arange(61, dtype=np.float32)[None, :]
    rows = np.arange(47, dtype=np.float32)[:, None]
    for d in (0, 1):
        coeff = to_src[d]
        expected = coeff[0].take(entry) * cols + coeff[1].take(entry) * rows
        expected += coeff[2].take(entry)
        assert got[d].dtype == np.float32
        np.testing.assert_array_equal(got[d], expected)


def test_wide_triangles_with_level_edges_follow_the_coverage_rule() -> None:
    # A grid of 20-40 px squares (level and upright edges, corners on whole and half pixels)
    # and fans of wide slivers: the row-span fill of wide triangles against the rule.
    xs = np.array([1.0, 21.5, 45.0, 80.5])
    ys = np.array([2.0, 30.5, 55.0])
    grid = np.array([(x, y) for y in ys for x in xs])
    cells = [
        (r * 4 + c, r * 4 + c + 1, (r + 1) * 4 + c, (r + 1) * 4 + c + 1)
        for r in range(2)
        for c in range(3)
    ]
    triangles = [t for a, b, c, d in cells for t in ((a, b, c), (b, d, c))]
    fan = np.array([[5.0, 60.0], [85.0, 61.0], [85.0, 75.5], [4.5, 75.5], [45.0, 60.0]])
    verts = np.vstack([grid, fan])
    n = len(grid)
    triangles += [(n, n + 1, n + 2), (n, n + 2, n + 3), (n, n + 4, n + 1), (n + 3, n + 2, n + 4)]
    triangles = np.array(triangles)
    depth = np.zeros(len(verts))
    beneath = np.zeros(len(triangles), bool)
    shape = (80, 90)
    got = triangle_id_buffer(verts, depth, triangles, shape)
    np.testing.assert_array_equal(got, _rule_id_buffer(verts, depth, triangles, shape, beneath))
    assert (got >= 0).sum() > 0.7 * shape[0] * shape[1]
