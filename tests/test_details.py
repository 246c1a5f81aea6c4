"""The expression-detail layer (augmentface.render.details): built-in maps confined to their
regions with the right sign, the layer off when not asked for, learned maps recovered from a
dataset whose frames carry planted ones, and refused for another face model.

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
from augmentface.render.detail_maps import (
    BUILTIN_AUS,
    builtin_detail_maps,
    detail_region_triangles,
)
from augmentface.render.details import (
    DetailMaps,
    DetailsInput,
    apply_details,
    detail_weights,
    load_detail_maps,
    save_detail_maps,
    uv_texels,
)
from augmentface.render.face_render import render_expression
from augmentface.render.rasterize import triangle_id_buffer
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
