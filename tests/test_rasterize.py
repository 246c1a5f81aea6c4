"""Tests of the backward-mapping mesh warp (augmentface.render.rasterize)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial import Delaunay

from augmentface.render.kernels import corner_affines
from augmentface.render.rasterize import (
    MeshWarp,
    _barycentric_affines,
    barycentric_at,
    folded_triangles,
    signed_areas_px2,
    triangle_id_buffer,
    warp_mesh,
)


def _textured_image_rgb(
    shape: tuple[int, int], seed: int = 0, blur_px: float = 1.5, gain: float = 3.0
) -> np.ndarray:
    """(H, W, 3) uint8 blurred noise, contrast-stretched by ``gain`` around mid-grey: every pixel
    differs from its neighbours yet bilinear sampling is well behaved."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, size=(*shape, 3)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), blur_px)
    return np.clip((blurred - 127.5) * gain + 127.5, 0, 255).astype(np.uint8)


def _disc_mesh(
    centre_px: tuple[float, float], radius_px: float, count: int = 300, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Delaunay mesh of random points in a disc plus its rim: (N, 2) verts_px, (T, 3) triangles."""
    rng = np.random.default_rng(seed)
    radius = radius_px * np.sqrt(rng.uniform(0, 0.9, count))
    angle = rng.uniform(0, 2 * np.pi, count)
    rim_angle = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    unit = np.concatenate(
        [
            np.c_[radius * np.cos(angle), radius * np.sin(angle)] / radius_px,
            np.c_[np.cos(rim_angle), np.sin(rim_angle)],
        ]
    )
    verts_px = unit * radius_px + centre_px
    return verts_px, Delaunay(verts_px).simplices.astype(np.int32)


def test_identity_warp_is_exact() -> None:
    image_rgb = _textured_image_rgb((200, 240))
    verts_px, triangles = _disc_mesh((120.3, 95.7), 70.0)
    depth_px = np.zeros(len(verts_px))

    warp = warp_mesh(image_rgb, verts_px, verts_px, depth_px, triangles)

    assert isinstance(warp, MeshWarp)
    x0, y0, x1, y1 = warp.roi
    assert (x0, y0, x1, y1) == (50, 25, 192, 167)  # half-open box of 50.3..190.3, 25.7..165.7
    assert warp.covered.mean() > 0.7
    np.testing.assert_array_equal(warp.image_rgb, image_rgb[y0:y1, x0:x1])


def test_identity_warp_is_exact_in_an_explicit_roi_at_the_image_edge() -> None:
    image_rgb = _textured_image_rgb((120, 160), seed=3)
    verts_px, triangles = _disc_mesh((10.0, 100.0), 60.0)  # hangs over the left and bottom edges
    depth_px = np.zeros(len(verts_px))

    warp = warp_mesh(image_rgb, verts_px, verts_px, depth_px, triangles, roi=(0, 50, 70, 120))

    assert warp.image_rgb.shape == (70, 70, 3)
    np.testing.assert_array_equal(warp.image_rgb, image_rgb[50:120, 0:70])


def test_integer_translation_moves_the_content_exactly() -> None:
    image_rgb = _textured_image_rgb((256, 256), seed=4)
    src_px, triangles = _disc_mesh((128.0, 128.0), 80.0)
    dx, dy = 7, -5
    dst_px = src_px + np.array([dx, dy])

    warp = warp_mesh(image_rgb, src_px, dst_px, np.zeros(len(src_px)), triangles)

    x0, y0, _, _ = warp.roi
    rows, cols = np.mgrid[0 : warp.covered.shape[0], 0 : warp.covered.shape[1]]
    # Away from the mesh rim, where edge pixels extrapolate by a fraction of a pixel.
    inner = np.hypot(cols + x0 - (128 + dx), rows + y0 - (128 + dy)) < 70
    moved_rgb = image_rgb[rows[inner] + y0 - dy, cols[inner] + x0 - dx]
    np.testing.assert_array_equal(warp.image_rgb[inner], moved_rgb)


def test_affine_triangle_matches_cv2_warp_affine() -> None:
    # Photo-like gradients (a few grey levels per px): warpAffine and remap round the sampling
    # position to the same 1/32 px grid but by different fixed-point paths.
    image_rgb = _textured_image_rgb((160, 160), seed=5, blur_px=3.0, gain=4.0)
    src_px = np.array([[30.0, 40.0], [120.0, 30.0], [70.0, 130.0]])
    forward = np.array([[1.1, 0.15, -6.0], [-0.1, 0.9, 12.0]])  # src -> dst, px
    dst_px = src_px @ forward[:, :2].T + forward[:, 2]
    triangles = np.array([[0, 1, 2]])

    warp = warp_mesh(image_rgb, src_px, dst_px, np.zeros(3), triangles, roi=(0, 0, 160, 160))

    expected_rgb = cv2.warpAffine(
        image_rgb, forward, (160, 160), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    inside = cv2.erode(warp.covered.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert inside.sum() > 3000
    diff = np.abs(warp.image_rgb.astype(int) - expected_rgb.astype(int))[inside]
    assert diff.max() <= 1


@pytest.mark.parametrize("near_index", [0, 1])
def test_nearer_triangle_wins_where_triangles_overlap(near_index: int) -> None:
    verts_px = np.array(
        [[5.0, 5.0], [45.0, 5.0], [5.0, 45.0], [15.0, 15.0], [55.0, 15.0], [15.0, 55.0]]
    )
    triangles = np.array([[0, 1, 2], [3, 4, 5]])
    depth_px = np.where(np.arange(6) // 3 == near_index, 1.0, 9.0)

    ids = triangle_id_buffer(verts_px, depth_px, triangles, (60, 60))

    assert ids.dtype == np.int32
    assert ids[20, 20] == near_index  # inside both triangles
    assert ids[8, 8] == 0 and ids[50, 17] == 1  # inside only one
    assert ids[58, 58] == -1


def test_triangles_beneath_show_only_where_no_other_does() -> None:
    verts_px, triangles = _disc_mesh((32.0, 32.0), 25.0, count=40)
    depth_px = np.random.default_rng(2).normal(0, 5, len(verts_px))
    beneath = np.zeros(len(triangles), dtype=bool)
    beneath[::2] = True
    shape = (64, 64)

    ids = triangle_id_buffer(verts_px, depth_px, triangles, shape, beneath=beneath)

    rest = triangle_id_buffer(verts_px, depth_px, triangles[~beneath], shape)
    covered = rest >= 0
    # Where the other triangles cover a pixel they win, in their own depth order.
    np.testing.assert_array_equal(ids[covered], np.flatnonzero(~beneath)[rest[covered]])
    # Elsewhere only triangles beneath show, and they fill the holes of every other one.
    assert beneath[ids[~covered & (ids >= 0)]].all()
    assert ((ids >= 0) == (triangle_id_buffer(verts_px, depth_px, triangles, shape) >= 0)).all()


def test_barycentric_weights_sum_to_one_and_reproduce_pixel_centres() -> None:
    verts_px, triangles = _disc_mesh((50.0, 40.0), 35.0, count=80)
    ids = triangle_id_buffer(verts_px, np.zeros(len(verts_px)), triangles, (80, 100))

    rows, cols, tri, bary = barycentric_at(ids, verts_px, triangles)

    assert rows.size == (ids >= 0).sum()
    np.testing.assert_array_equal(tri, ids[rows, cols])
    np.testing.assert_allclose(bary.sum(axis=1), 1.0, atol=1e-12)
    positions_px = np.einsum("mk,mkd->md", bary, verts_px[triangles[tri]])
    np.testing.assert_allclose(positions_px, np.c_[cols, rows], atol=1e-9)
    # Rasterised pixels lie in their triangle or less than a pixel outside it (the rasteriser
    # includes every pixel its edges touch): weight × height is the distance to an edge.
    corners_px = verts_px[triangles]
    ab_px, ac_px = corners_px[:, 1] - corners_px[:, 0], corners_px[:, 2] - corners_px[:, 0]
    double_area_px2 = np.abs(ab_px[:, 0] * ac_px[:, 1] - ab_px[:, 1] * ac_px[:, 0])
    opposite_px = np.linalg.norm(corners_px[:, [2, 0, 1]] - corners_px[:, [1, 2, 0]], axis=2)
    edge_distance_px = bary * (double_area_px2[:, None] / opposite_px)[tri]
    assert edge_distance_px.min() > -1.0


def _quad_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Two triangles sharing the edge 1-2 of a 40 px square at (10, 10)."""
    verts_px = np.array([[10.0, 10.0], [50.0, 10.0], [10.0, 50.0], [50.0, 50.0]])
    return verts_px, np.array([[0, 1, 2], [1, 3, 2]])


def test_folds_are_detected() -> None:
    src_px, triangles = _quad_mesh()
    dst_px = src_px.copy()
    dst_px[3] = (20.0, 20.0)  # across the shared edge 1-2: triangle 1 flips
    collapsed_px = src_px.copy()
    collapsed_px[3] = (30.0, 30.0)  # onto the shared edge: triangle 1 has zero area

    assert folded_triangles(src_px, dst_px, triangles).tolist() == [False, True]
    assert folded_triangles(src_px, collapsed_px, triangles).tolist() == [False, True]
    assert not folded_triangles(src_px, src_px + 3.0, triangles).any()


def test_folded_triangles_go_beneath_so_the_surface_in_front_shows() -> None:
    image_rgb = _textured_image_rgb((64, 64), seed=6)
    src_px, triangles = _quad_mesh()
    dst_px = src_px.copy()
    dst_px[3] = (20.0, 20.0)
    # The flipped triangle is nearer: in its depth order it would cover triangle 0.
    depth_px = np.array([5.0, 5.0, 5.0, 0.0])

    warp = warp_mesh(image_rgb, src_px, dst_px, depth_px, triangles)

    assert 1 not in warp.triangle_ids
    assert warp.triangle_ids[25 - warp.roi[1], 25 - warp.roi[0]] == 0


def test_roi_is_the_mesh_box_in_a_large_photo() -> None:
    image_rgb = np.zeros((3000, 4000, 3), dtype=np.uint8)
    src_px, triangles = _disc_mesh((2500.0, 1200.0), 150.0)

    warp = warp_mesh(
        image_rgb, src_px, src_px + np.array([10.0, 0.0]), np.zeros(len(src_px)), triangles
    )

    assert warp.roi == (2350, 1050, 2661, 1351)
    assert warp.image_rgb.shape == (301, 311, 3)
    assert warp.covered.shape == warp.triangle_ids.shape == (301, 311)


def test_mesh_outside_the_image_is_an_error() -> None:
    verts_px, triangles = _disc_mesh((-100.0, -100.0), 20.0, count=20)
    with pytest.raises(ValueError, match="empty render roi"):
        warp_mesh(
            np.zeros((50, 50, 3), np.uint8), verts_px, verts_px, np.zeros(len(verts_px)), triangles
        )


def _numpy_barycentric_affines(verts_px: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """The barycentric maps as NumPy expressions over all triangles at once (the compiled
    loop's twin)."""
    (ax, bx, cx), (ay, by, cy) = (verts_px[:, d].take(triangles.T) for d in (0, 1))
    abx, aby, acx, acy = bx - ax, by - ay, cx - ax, cy - ay
    det = abx * acy - aby * acx
    inv_det = np.divide(1.0, det, out=np.zeros_like(det), where=det != 0.0)
    maps = np.empty((len(triangles), 3, 3))
    maps[:, 1, 0], maps[:, 1, 1] = acy * inv_det, -acx * inv_det
    maps[:, 2, 0], maps[:, 2, 1] = -aby * inv_det, abx * inv_det
    maps[:, 1:, 2] = -(maps[:, 1:, 0] * ax[:, None] + maps[:, 1:, 1] * ay[:, None])
    maps[:, 0] = -maps[:, 1] - maps[:, 2]
    maps[:, 0, 2] += 1.0
    return maps


def test_compiled_triangle_tables_are_numpys_to_the_bit() -> None:
    verts_px, triangles = _disc_mesh((80.0, 70.0), 60.0)
    rng = np.random.default_rng(4)
    moved_px = verts_px + rng.normal(0, 3.0, verts_px.shape)
    triangles = np.vstack([triangles, [[0, 0, 1]]])  # a degenerate one: all weight on corner 0

    maps = _barycentric_affines(moved_px, triangles)
    np.testing.assert_array_equal(maps, _numpy_barycentric_affines(moved_px, triangles))
    np.testing.assert_array_equal(maps[-1], [[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    (ax, bx, cx), (ay, by, cy) = (moved_px[:, d].take(triangles.T) for d in (0, 1))
    areas = 0.5 * ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
    np.testing.assert_array_equal(signed_areas_px2(moved_px, triangles), areas)
    # The corner affines: the barycentric maps composed with the corners' values.
    corners = verts_px[triangles]  # (T, 3, 2)
    expected = sum(corners[:, k, :, None] * maps[:, k, None, :] for k in range(3))
    np.testing.assert_array_equal(corner_affines(corners, maps), expected)
