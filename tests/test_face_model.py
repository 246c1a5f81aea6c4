"""The canonical mesh reader, the topology, the AU rig and the model fit."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest

from augmentface.errors import UsageError
from augmentface.expression.au_rig import AU_SPECS, spec_for
from augmentface.face import topology as topo
from augmentface.face.canonical_mesh import GEOMETRY_ENTRY, parse_geometry_metadata
from augmentface.face.fitting import fit_face, similarity_transform
from augmentface.face.landmarker_model import locate_landmarker
from augmentface.face.protobuf_wire import iter_fields, read_varint, repeated_floats
from augmentface.frames import head_angles_deg, image_to_model, model_to_image

DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def test_varint_and_packed_floats():
    assert read_varint(bytes([0xAC, 0x02]), 0) == (300, 2)
    packed = bytes([0x1A, 8]) + np.array([1.5, -2.0], "<f4").tobytes()  # field 3, LEN
    (field,) = list(iter_fields(packed))
    assert repeated_floats([field]) == [1.5, -2.0]


def test_canonical_mesh_counts_from_the_bundle():
    task = locate_landmarker().path
    mesh = parse_geometry_metadata(zipfile.ZipFile(task).read(GEOMETRY_ENTRY))
    assert mesh.verts_model_mm.shape == (468, 3)
    assert mesh.uv.shape == (468, 2) and (0 <= mesh.uv).all() and (mesh.uv <= 1).all()
    assert mesh.triangles.shape == (898, 3) and mesh.triangles.max() == 467
    # A face is ~15 cm wide: the reader converted centimetres to millimetres.
    assert 140 < np.ptp(mesh.verts_model_mm[:, 0]) < 170


def test_topology_matches_mediapipe_connections(model):
    from mediapipe.tasks.python.vision import FaceLandmarksConnections as C

    def loop_set(conns):
        return {c.start for c in conns} | {c.end for c in conns}

    assert set(topo.LIPS_INNER) | set(topo.LIPS_OUTER) == loop_set(C.FACE_LANDMARKS_LIPS)
    assert set(topo.LEFT_EYE) == loop_set(C.FACE_LANDMARKS_LEFT_EYE)
    assert set(topo.RIGHT_EYE) == loop_set(C.FACE_LANDMARKS_RIGHT_EYE)
    assert set(topo.FACE_OVAL) == loop_set(C.FACE_LANDMARKS_FACE_OVAL)
    assert len(set(topo.IBUG68)) == 68
    # subject's left eye at +x in the model frame
    v = model.mean_verts_model_mm
    assert v[list(topo.LEFT_EYE), 0].mean() > 0 > v[list(topo.RIGHT_EYE), 0].mean()


def test_rig_covers_disfa_and_is_linear_symmetric_local(model):
    rig = model.rig
    assert set(DISFA_AUS) <= set(rig.au_numbers)
    v = model.mean_verts_model_mm
    mirror = model.topology.mirror
    for k, au in enumerate(rig.au_numbers):
        field = rig.fields_model_mm[k]
        assert np.abs(field).max() > 1.0, f"AU{au} moves nothing"
        np.testing.assert_allclose(field[mirror] * [-1, 1, 1], field, atol=1e-6)
        vec = rig.vector({au: 2.0})
        np.testing.assert_allclose(rig.offsets(vec) * 2, rig.offsets(rig.vector({au: 4.0})))
        # the face outline stays put, except the jaw for AU26
        if au != 26:
            assert np.abs(field[list(topo.FACE_OVAL)]).max() < 1e-9
    brow = rig.offsets(rig.vector({1: 5, 2: 5}))
    assert brow[list(topo.LEFT_BROW_UPPER), 1].min() > 2  # brows go up (+y)
    assert np.abs(brow[list(topo.LIPS_OUTER)]).max() < 1e-6  # and the mouth stays
    smile = rig.offsets(rig.vector({12: 5}))
    assert smile[291, 1] > 5 and smile[291, 0] > 5 and smile[61, 0] < -5  # corners up and out
    jaw = rig.offsets(rig.vector({25: 4, 26: 4}))
    assert jaw[14, 1] < -8 and jaw[152, 1] < -8 and abs(jaw[13, 1]) < 2  # lower lip/chin drop
    assert v[13, 1] - v[14, 1] + jaw[13, 1] - jaw[14, 1] > 8  # the mouth opens


def test_inner_brow_raiser_overrides_the_lowerer_in_1_plus_4(model):
    """FACS 1+4 (sadness): inner brows raised and drawn together, the lateral brow lowered."""
    rig = model.rig
    inner, lateral = 336, 300  # the subject's left inner brow end and brow tail
    both = rig.offsets(rig.vector({1: 4, 4: 4}))
    raiser, lowerer = rig.offsets(rig.vector({1: 4})), rig.offsets(rig.vector({4: 4}))
    assert both[inner, 1] == pytest.approx(raiser[inner, 1])  # AU1 wins the height
    assert both[inner, 0] == pytest.approx(lowerer[inner, 0])  # AU4 still pulls medially
    assert both[inner, 0] < -3
    assert both[lateral, 1] < 0.8 * (raiser + lowerer)[lateral, 1] < 0  # the tail still drops
    # The correction grows with the weaker AU, and a single AU is its own field.
    weak = rig.offsets(rig.vector({1: 1, 4: 4})) - rig.linear_offsets(rig.vector({1: 1, 4: 4}))
    np.testing.assert_allclose(weak * 4, both - rig.linear_offsets(rig.vector({1: 4, 4: 4})))
    for aus in ({1: 4}, {4: 4}, {1: 4, 2: 4}):
        np.testing.assert_array_equal(
            rig.offsets(rig.vector(aus)), rig.linear_offsets(rig.vector(aus))
        )


def test_smile_with_parted_lips_bares_the_upper_teeth(model):
    """FACS 12+25: a crescent opening, widest in the middle, the corners where 12 puts them."""
    rig, v = model.rig, model.mean_verts_model_mm
    both = rig.offsets(rig.vector({12: 5, 25: 3}))
    linear = rig.linear_offsets(rig.vector({12: 5, 25: 3}))
    smile = rig.offsets(rig.vector({12: 5}))

    def gap(offsets, upper=13, lower=14):
        return (v[upper, 1] + offsets[upper, 1]) - (v[lower, 1] + offsets[lower, 1])

    assert gap(both) > gap(linear) + 2  # the middle opens over the teeth
    assert both[14, 1] < 0 < smile[14, 1]  # the lower lip's middle hangs, not lifted
    assert both[13, 1] > linear[13, 1] + 1  # the upper lip rises further
    np.testing.assert_allclose(both[[61, 291]], linear[[61, 291]], atol=1e-9)


def test_jaw_drop_lowers_the_chin_and_rounds_the_mouth(model):
    """AU26 turns the mandible and glides it forward: the lower lip drops rather than swinging
    back, and the relaxed corners follow part way and draw in."""
    field = model.rig.fields_model_mm[model.rig.au_numbers.index(26)]
    assert field[14, 1] < -15 and abs(field[14, 2]) < 0.3 * abs(field[14, 1])
    assert field[152, 1] < -15  # the chin drops as far
    assert -0.5 * field[14, 1] > -field[291, 1] > 0  # corners follow part way
    assert field[291, 0] < -3 and field[61, 0] > 3  # and draw in
    assert np.abs(field[list(topo.LIPS_OUTER[1:10]), 1]).max() < 0.5  # the upper lip stays


def test_jaw_drop_opens_an_oval_not_a_box(model):
    """The lower lip hangs from the corners: its drop falls from the centre to the corners, so
    the opening fills about an ellipse's share of its bounding box (pi/4 = 0.785); a lip that
    followed the jaw evenly up to its corners opened a box with vertical sides (0.88)."""
    rig = model.rig
    for aus in ({26: 5.0}, {26: 3.0}, {25: 5.0, 26: 5.0}):
        verts = model.neutral_verts_model_mm + rig.offsets(rig.vector(aus))
        opening = verts[list(topo.LIPS_INNER), :2].astype(np.float32)
        width, height = opening.max(axis=0) - opening.min(axis=0)
        assert 0.74 < cv2.contourArea(opening) / (width * height) < 0.82, aus
    drop = -rig.fields_model_mm[rig.au_numbers.index(26)][:, 1]
    lower = topo.LIPS_INNER[topo.LIPS_INNER_UPPER_COUNT :]  # corner 308 side to corner 78 side
    half = lower[: len(lower) // 2 + 1]  # from near a corner to the middle
    assert np.all(np.diff(drop[list(half)]) > 0), drop[list(half)]  # deeper toward the middle


def test_unknown_au_lists_allowed():
    with pytest.raises(UsageError, match="allowed: AU1, AU2"):
        spec_for(3)
    assert spec_for(45).number == 43
    assert all(spec.muscles and spec.notes for spec in AU_SPECS)


def test_similarity_round_trip_and_frames():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(40, 3)) * 30
    angle = np.radians(20)
    rot = np.diag([1.0, -1.0, -1.0]) @ np.array(
        [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    )
    img = model_to_image(pts, rot, 2.5, np.array([100.0, 50.0, 0.0]))
    r, s, t = similarity_transform(pts, img, np.ones(len(pts)))
    np.testing.assert_allclose(r, rot, atol=1e-9)
    assert s == pytest.approx(2.5)
    np.testing.assert_allclose(image_to_model(img, r, s, t), pts, atol=1e-9)
    yaw, pitch, roll = head_angles_deg(rot)
    assert yaw == pytest.approx(20) and abs(pitch) < 1e-9 and abs(roll) < 1e-9


def _reprojection_error_iod(fit, model, landmarks_px):
    verts = fit.verts_px(model)
    err = np.linalg.norm(verts[:, :2] - landmarks_px[:468, :2], axis=1)
    iod = np.linalg.norm(landmarks_px[topo.LEFT_IRIS_CENTER, :2]
                         - landmarks_px[topo.RIGHT_IRIS_CENTER, :2])
    return float(np.median(err) / iod)


def test_fit_on_astronaut(model, landmarker, astronaut):
    face = landmarker.detect(astronaut)[0]
    fit = fit_face(face.landmarks_px, model)
    assert _reprojection_error_iod(fit, model, face.landmarks_px) < 0.015
    au = dict(zip(model.rig.au_numbers, fit.au_intensities, strict=True))
    assert au[12] > 2.0  # she smiles
    assert abs(fit.head_angles_deg[0]) < 15


def test_fit_reprojects_on_every_shared_photo(model, landmarker, shared_faces):
    from augmentface.imageio import read_image

    errors = []
    for path in sorted(shared_faces.glob("*.jpg")):
        faces = landmarker.detect(read_image(path))
        assert faces, f"{path.name}: no face"
        fit = fit_face(faces[0].landmarks_px, model)
        errors.append(_reprojection_error_iod(fit, model, faces[0].landmarks_px))
    assert np.median(errors) < 0.015


@pytest.mark.parametrize("suffix", [".obj", ".ply"])
def test_export_mesh_round_trip(model, tmp_path, suffix):
    import trimesh

    verts = model.verts_model_mm(np.zeros((468, 3)), model.rig.offsets(model.rig.vector({12: 4})))
    path = model.export_mesh(tmp_path / f"smile{suffix}", verts)
    loaded = trimesh.load(path, process=False)
    np.testing.assert_allclose(loaded.vertices, verts, atol=1e-4)
    assert len(loaded.faces) == 898
    with pytest.raises(ValueError, match=r"\.obj and \.ply"):
        model.export_mesh(tmp_path / "x.stl", verts)
