"""The expression-detail layer (augmentface.render.details): built-in maps confined to their
regions with the right sign, the layer off when not asked for, learned maps recovered from a
dataset whose frames carry planted ones, and refused for another face model; the compiled
shading held against the NumPy computation it replaced, and its sampler against ``cv2.remap``.

The planted maps are smooth dips with a lighter shoulder, one place per AU, drawn here in UV
space; the frames are the layer's own output at the labelled intensities, so what the test asks
holds whatever the built-in maps and the rig look like.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from augmentface.cli import app
from augmentface.errors import UsageError
from augmentface.expression.source_residual import IDENTITY_MARGIN
from augmentface.face.model import N_MESH_VERTICES, identity_au_noise
from augmentface.render import details as details_module
from augmentface.render.blur import gaussian_blur
from augmentface.render.detail_maps import (
    BUILTIN_AUS,
    builtin_detail_maps,
    detail_region_triangles,
)
from augmentface.render.details import (
    MIN_WEIGHT,
    RELIEF_SIGMA_UV,
    DetailMaps,
    DetailsInput,
    apply_details,
    detail_weights,
    load_detail_maps,
    sample_points,
    save_detail_maps,
    uv_texels,
)
from augmentface.render.face_render import render_expression
from augmentface.render.rasterize import _barycentric_affines, triangle_id_buffer
from augmentface.stages.render import RenderConfig, run_render
from tests.dataset_trees import DISFA_AUS, build_disfa

runner = CliRunner()
LUMA = np.array([0.299, 0.587, 0.114])

#: Planted AU -> places of its dip: (vertex, dx, dy in UV units).
PLANTED = {
    1: ((9, 0.0, -0.1),),
    4: ((8, 0.0, -0.03),),
    6: ((263, 0.05, 0.015), (33, -0.05, 0.015)),
    12: ((426, 0.0, 0.0), (206, 0.0, 0.0)),
    17: ((200, 0.0, 0.0),),
}
PLANTED_SIZE = 64
N_NEUTRAL, N_EXPRESSIVE = 6, 24


@pytest.fixture(scope="module")
def face(astronaut, landmarker):
    """(478, 3) float64 MediaPipe landmarks of the astronaut, image px."""
    faces = landmarker.detect(astronaut)
    assert faces, "the astronaut's face must be found"
    return np.asarray(faces[0].landmarks_px, dtype=np.float64)


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ LUMA


def _mesh_pixels(model, mesh_px: np.ndarray, shape, triangles_wanted: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose visible mesh triangle is one of ``triangles_wanted`` (T,)."""
    ids = triangle_id_buffer(mesh_px[:, :2], mesh_px[:, 2], model.triangles, shape)
    return (ids >= 0) & triangles_wanted[np.maximum(ids, 0)]


def _grown(mask: np.ndarray, px: int) -> np.ndarray:
    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def test_builtin_maps_shade_only_their_regions_with_the_right_sign(model, astronaut, face):
    maps = builtin_detail_maps(model)
    assert set(maps.au_numbers) == set(BUILTIN_AUS)
    mesh = face[:N_MESH_VERTICES]
    roi = (0, 0, astronaut.shape[1], astronaut.shape[0])
    for k, au in enumerate(maps.au_numbers):
        weights = np.zeros(len(maps.au_numbers))
        assert apply_details(astronaut, mesh, roi, model, DetailsInput(maps, weights)) is astronaut
        weights[k] = 1.0
        folded = apply_details(astronaut, mesh, roi, model, DetailsInput(maps, weights))
        # Bilinear sampling of the map's coarser levels reaches a pixel or two past a region.
        region = _grown(
            _mesh_pixels(model, mesh, astronaut.shape[:2], detail_region_triangles(model, au)), 3
        )
        changed = (folded != astronaut).any(axis=2)
        assert changed.any(), f"AU{au}: nothing drawn"
        assert not (changed & ~region).any(), f"AU{au}: shading outside its region"
        darker = _luma(folded) - _luma(astronaut)
        assert darker.min() < -2 and -darker.min() > darker.max(), f"AU{au}: a fold darkens"
        # A negative weight flattens the fold the photo shows: here, the one just drawn.
        flattened = apply_details(folded, mesh, roi, model, DetailsInput(maps, -weights))
        lighter = _luma(flattened) - _luma(folded)
        assert lighter.max() > 1 and lighter.max() > -lighter.min(), f"AU{au}: flattening lifts"
        assert not ((flattened != folded).any(axis=2) & ~region).any()
        assert np.abs(_luma(flattened) - _luma(astronaut)).sum() < np.abs(darker).sum()


def _smile_change(model, face: np.ndarray) -> np.ndarray:
    """(468, 3) px: the rig's smile posed on the astronaut's fit."""
    from augmentface.face.fitting import fit_face

    fit = fit_face(face, model)
    return fit.expression_change_px(model.rig.offsets(model.rig.vector({6: 3, 12: 4})))


def test_details_off_is_byte_identical_and_off_the_mesh_nothing_changes(model, astronaut, face):
    maps = builtin_detail_maps(model)
    delta = _smile_change(model, face)
    plain = render_expression(astronaut, face, delta, model)
    off = render_expression(astronaut, face, delta, model, details=None)
    assert np.array_equal(plain.image_rgb, off.image_rgb)
    assert np.array_equal(plain.alpha, off.alpha)
    zero = DetailsInput(maps, np.zeros(len(maps.au_numbers)))
    zero_shaded = render_expression(astronaut, face, delta, model, details=zero)
    assert np.array_equal(zero_shaded.image_rgb, plain.image_rgb)
    every = DetailsInput(maps, np.ones(len(maps.au_numbers)))
    shaded = render_expression(astronaut, face, delta, model, details=every)
    assert shaded.roi == plain.roi
    changed = (shaded.image_rgb != plain.image_rgb).any(axis=2)
    assert changed.any()
    x0, y0 = plain.roi[:2]
    local = plain.target_verts_px - (x0, y0, 0)
    skin = _mesh_pixels(model, local, changed.shape, model.topology.skin_triangles)
    assert not (changed & ~_grown(skin, 1)).any(), "shading off the target mesh's skin"


def test_weights_are_the_change_from_what_the_photo_shows(model):
    maps = builtin_detail_maps(model)
    aus = model.rig.au_numbers
    noise = identity_au_noise(aus)
    fitted = np.zeros(len(aus))
    fitted[aus.index(12)] = 4.0  # the photo smiles
    target = model.rig.vector({4: 5.0})  # a frown without the smile
    weights = detail_weights(maps, aus, target, fitted, noise)
    weights = dict(zip(maps.au_numbers, weights, strict=True))
    assert weights[4] == pytest.approx(1.0)
    smile_shown = max(4.0 - IDENTITY_MARGIN * noise[aus.index(12)], 0.0)
    assert weights[12] == pytest.approx(-smile_shown / 5)  # the smile's fold goes with it
    assert weights[1] == 0.0


def _planted_maps(model) -> DetailMaps:
    """Per AU a smooth dip (-0.3 at its centre, SD 0.03 UV) with a lighter shoulder beside it,
    on the skin only."""
    size = PLANTED_SIZE
    rows, cols, _, _ = uv_texels(model, size)
    skin = np.zeros((size, size), bool)
    skin[rows, cols] = True
    cols_uv, rows_uv = np.meshgrid((np.arange(size) + 0.5) / size, (np.arange(size) + 0.5) / size)
    maps = np.zeros((len(PLANTED), size, size))
    for k, places in enumerate(PLANTED.values()):
        for vertex, du, dv in places:
            u, v = model.mesh.uv[vertex] + (du, dv)
            maps[k] -= 0.3 * np.exp(-((cols_uv - u) ** 2 + (rows_uv - v) ** 2) / (2 * 0.03**2))
            shoulder = (cols_uv - u - 0.03) ** 2 + (rows_uv - v) ** 2
            maps[k] += 0.12 * np.exp(-shoulder / (2 * 0.02**2))
    maps = np.where(skin, maps, 0.0).astype(np.float32)
    return DetailMaps(tuple(PLANTED), maps, model.model_id, "planted")


def _subjects(astronaut: np.ndarray) -> dict[str, np.ndarray]:
    """Three 256 px faces: the astronaut, mirrored, and framed wider."""
    crops = {
        "SN001": astronaut[0:320, 110:430],
        "SN002": astronaut[0:320, 110:430][:, ::-1],
        "SN003": astronaut[10:350, 95:435],
    }
    return {
        s: np.ascontiguousarray(cv2.resize(c, (256, 256), interpolation=cv2.INTER_AREA))
        for s, c in crops.items()
    }


def _labels(rng: np.random.Generator) -> np.ndarray:
    """(frames, 12) DISFA intensities: neutral frames first, then the planted AUs and AU2 (not
    planted) each present in 60 % of the frames at 1–5."""
    labels = np.zeros((N_NEUTRAL + N_EXPRESSIVE, len(DISFA_AUS)))
    for au in (*PLANTED, 2):
        present = rng.random(N_EXPRESSIVE) < 0.6
        labels[N_NEUTRAL:, DISFA_AUS.index(au)] = rng.integers(1, 6, N_EXPRESSIVE) * present
    return labels


def _cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_learned_maps_recover_planted_ones(tmp_path, model, astronaut, landmarker, monkeypatch):
    planted = _planted_maps(model)
    rng = np.random.default_rng(0)
    root = tmp_path / "DISFA"
    for subject, photo in _subjects(astronaut).items():
        landmarks = np.asarray(landmarker.detect(photo)[0].landmarks_px, dtype=np.float64)
        labels = _labels(rng)
        frames = []
        for i, frame_labels in enumerate(labels):
            shift = 3 * (i % 5) - 6  # the head moves a little from frame to frame
            weights = [frame_labels[DISFA_AUS.index(au)] / 5 for au in planted.au_numbers]
            mesh = landmarks[:N_MESH_VERTICES] + np.array([shift, 0, 0])
            details = DetailsInput(planted, np.array(weights))
            frame = np.roll(photo, shift, axis=1)
            frames.append(apply_details(frame, mesh, (0, 0, 256, 256), model, details))
        build_disfa(root, frames, subject=subject, intensities=labels)
    monkeypatch.chdir(tmp_path)
    _cli("import", "disfa", root, "-q")
    _cli("fit3dmm", "-q")
    _cli("synth-au", "train-details", "--out", "details.npz", "--size", PLANTED_SIZE, "-q")

    learned = load_detail_maps(tmp_path / "details.npz", model)
    assert learned.face_model_id == model.model_id
    assert set(PLANTED) | {2} <= set(learned.au_numbers)
    rows, cols, _, _ = uv_texels(model, PLANTED_SIZE)  # the face's skin
    for k, au in enumerate(planted.au_numbers):
        found = learned.log_ratio_uv[learned.au_numbers.index(au)][rows, cols]
        truth = planted.log_ratio_uv[k][rows, cols]
        cosine = found @ truth / np.linalg.norm(found) / np.linalg.norm(truth)
        print(f"AU{au}: cosine {cosine:.3f}")
        assert cosine >= 0.9, f"AU{au}: cosine {cosine:.3f}"
    unplanted = learned.log_ratio_uv[learned.au_numbers.index(2)][rows, cols]
    assert np.linalg.norm(unplanted) < 0.3 * np.linalg.norm(planted.log_ratio_uv[0][rows, cols])

    # Rendering with them, and the render stage's choice of maps.
    _cli("synth-au", "--au", "12=3", "--any-source", "-q")  # every frame, not only neutral
    with_learned = RenderConfig(details=tmp_path / "details.npz", quiet=True)
    assert run_render(with_learned).done == 3 * (N_NEUTRAL + N_EXPRESSIVE)
    assert run_render(with_learned).skipped == 3 * (N_NEUTRAL + N_EXPRESSIVE)
    assert run_render(RenderConfig(details=None, quiet=True)).done > 0  # another choice: afresh

    # Maps made for another face model are refused.
    other = tmp_path / "other.npz"
    save_detail_maps(
        DetailMaps(learned.au_numbers, learned.log_ratio_uv, "another-model", learned.source),
        other,
    )
    with pytest.raises(UsageError, match="face model"):
        load_detail_maps(other, model)
    refused = runner.invoke(app, ["render", "--details", str(other), "-q"])
    assert refused.exit_code == 2 and "face model" in refused.output


def _apply_details_reference(crop, mesh, roi, model, details):
    """apply_details as NumPy computed it before its compiled loops: every skin triangle's
    pixels gathered, their texel positions, ``cv2.remap`` of the weighted map sums, the
    relief clip of the negative weights at the lifted pixels, ``exp`` and rounding."""
    maps = details.maps
    weights = np.asarray(details.weights, dtype=np.float32)
    weights = np.where(np.abs(weights) >= MIN_WEIGHT, weights, np.float32(0))
    local_px = mesh[:, :2] - roi[:2]
    triangles = model.triangles
    ids = triangle_id_buffer(local_px, mesh[:, 2], triangles, crop.shape[:2])
    px_per_uv = details_module._px_per_uv(local_px, model)
    level = min(max(round(np.log2(maps.size / px_per_uv)), 0), len(maps.pyramid) - 1)
    layer = maps.pyramid[level]
    corners = model.mesh.uv[triangles] * layer.shape[1] - 0.5  # (T, 3, 2) texels
    bary_maps = _barycentric_affines(local_px, triangles)
    to_texel = sum(corners[:, k, :, None] * bary_maps[:, k, None, :] for k in range(3))
    skin = np.r_[model.topology.skin_triangles, False]
    flat = np.flatnonzero(skin.take(np.minimum(ids, len(triangles))))
    tri = ids.ravel().take(flat)
    rows, cols = np.divmod(flat, ids.shape[1])
    coeffs = to_texel.reshape(-1, 6).take(tri, axis=0)
    points = np.empty((len(tri), 2), np.float32)
    for d in (0, 1):
        points[:, d] = coeffs[:, 3 * d] * cols + coeffs[:, 3 * d + 1] * rows + coeffs[:, 3 * d + 2]

    def weighted_sum(chosen):
        out = weights[chosen[0]] * layer[chosen[0]]
        for k in chosen[1:]:
            out += weights[k] * layer[k]
        return out

    deepen, flatten = np.flatnonzero(weights > 0), np.flatnonzero(weights < 0)
    log_ratio = np.zeros(len(points), np.float32)
    if deepen.size:
        log_ratio += sample_points(weighted_sum(deepen), points)
    if flatten.size:
        lift = sample_points(weighted_sum(flatten), points)
        lifted = np.flatnonzero(lift)
        if lifted.size:
            relief = _relief_reference(
                crop, rows[lifted], cols[lifted], RELIEF_SIGMA_UV * px_per_uv
            )
            log_ratio[lifted] += np.clip(
                lift[lifted], np.minimum(relief, 0), np.maximum(-relief, 0)
            )
    shaded = log_ratio != 0
    flat = flat[shaded]
    out = crop.copy()
    gain = np.exp(log_ratio[shaded])[:, None]
    pixels = crop.reshape(-1, 3).take(flat, axis=0)
    out.reshape(-1, 3)[flat] = np.clip(np.rint(pixels * gain), 0, 255).astype(np.uint8)
    return out


def _relief_reference(crop, rows, cols, sigma_px):
    """The relief at the (M,) pixels, filtered over their box and the blur's reach."""
    sigma_px = max(sigma_px, 0.5)
    reach = int(np.ceil(4 * sigma_px))
    y0, x0 = max(rows.min() - reach, 0), max(cols.min() - reach, 0)
    y1, x1 = rows.max() + reach + 1, cols.max() + reach + 1
    luma = cv2.cvtColor(crop[y0:y1, x0:x1].astype(np.float32), cv2.COLOR_RGB2GRAY)
    log_luma = np.log1p(luma)
    if sigma_px < details_module._COARSE_RELIEF_SIGMA_PX:
        local_mean = cv2.GaussianBlur(log_luma, (0, 0), sigma_px)
    else:
        local_mean = gaussian_blur(log_luma, sigma_px, step=int(sigma_px // 3))
    return (log_luma - local_mean)[rows - y0, cols - x0]


@pytest.mark.parametrize("scale", [0.5, 1.0, 4.0])
def test_compiled_shading_is_the_numpy_computation(model, astronaut, face, scale):
    """The compiled loops give the NumPy code's output but for a rare pixel one level off
    (the two float32 ``exp``s differ in the last bit), on faces of ~60, ~120 and ~470 px (the
    coarse relief blur), with positive, negative and mixed weights."""
    mesh = face[:N_MESH_VERTICES] * scale
    x0, y0 = np.floor(mesh[:, :2].min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(mesh[:, :2].max(axis=0)).astype(int) + 5
    image = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    roi = (int(x0), int(y0), int(x1), int(y1))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    maps = builtin_detail_maps(model)
    n = len(maps.au_numbers)
    rng = np.random.default_rng(4)
    cases = [np.ones(n), -np.ones(n), *rng.uniform(-1, 1, (4, n))]
    cases += [np.eye(n)[k] * sign for k in (0, 3, 6) for sign in (1, -1)]
    differing = shaded = 0
    for weights in cases:
        details = DetailsInput(maps, weights)
        got = apply_details(crop, mesh, roi, model, details)
        expected = _apply_details_reference(crop, mesh, roi, model, details)
        diff = np.abs(got.astype(int) - expected).max(axis=2)
        assert diff.max() <= 1, weights
        differing += int((diff > 0).sum())
        shaded += int((expected != crop).any(axis=2).sum())
    assert shaded > 0
    assert differing <= max(2, 0.002 * shaded), (differing, shaded)


def test_compiled_sampler_is_cv2_remap_to_the_bit():
    from augmentface.render.detail_kernels import MAP_PAD, _sample

    rng = np.random.default_rng(2)
    size = 40
    deepen, flatten = rng.normal(0, 0.3, (2, size, size)).astype(np.float32)
    sums = np.zeros((2, size + 2 * MAP_PAD, size + 2 * MAP_PAD), np.float32)
    sums[:, MAP_PAD:-MAP_PAD, MAP_PAD:-MAP_PAD] = deepen, flatten
    # Anywhere on and around the map, and on the 1/64 steps where rounding to 1/32 ties.
    points = np.concatenate(
        [
            rng.uniform(-4, size + 4, (3000, 2)),
            rng.integers(-4 * 64, (size + 4) * 64, (3000, 2)) / 64,
        ]
    ).astype(np.float32)
    got = np.array([_sample(sums, u, v) for u, v in points], np.float32)
    np.testing.assert_array_equal(got[:, 0], sample_points(deepen, points))
    np.testing.assert_array_equal(got[:, 1], sample_points(flatten, points))
