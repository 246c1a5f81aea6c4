"""The geometric AU instrument (metrics/au_geometry.py): on the rig's own fields, and on real
photos through re-detected landmarks (run with ``-s`` for the figures)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from augmentface.blend import blend_face
from augmentface.face import topology as topo
from augmentface.face.fitting import fit_face
from augmentface.metrics.au_geometry import (
    AU_CHANNELS,
    GEOMETRY_AUS,
    KINDS,
    au_channels,
    au_geometric_response,
    head_frame,
)
from augmentface.metrics.blendshapes_facs import response_summary
from augmentface.metrics.geometry import dlib_landmarks68
from augmentface.render.face_render import render_expression
from augmentface.stages.evaluate import au_correlations
from augmentface.stages.schemas import AU_NAMES, GEOMETRY_AU_NAMES
from tests.test_expression_response import _neutral_faces

DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
TARGET_AUS = (*DISFA_AUS, 43)
INTENSITIES = (2.0, 4.0)
PX_PER_MM = 4.0

#: Per landmark set, AU pairs whose muscles move one structure in opposite directions (module
#: notes): each reads negative on the other's channel. iBUG-68 has no chin-boss point, so AU17
#: reads off the lower lip, which AU25 and AU16 lower.
ANTAGONISTS = {
    "mediapipe": {frozenset(p) for p in ((1, 4), (5, 43), (12, 15))},
    "ibug68": {frozenset(p) for p in ((1, 4), (5, 43), (12, 15), (17, 25), (16, 17))},
}
#: Per landmark set, (applied AU, channel's AU) pairs where the applied AU moves the channel's
#: structure the same way: AU15 pulls the corners down and out like AU20; without a cheek
#: point, iBUG-68 reads AU6 off the lower lid, which AU7 raises too.
SHARED = {"mediapipe": {(15, 20)}, "ibug68": {(15, 20), (7, 6)}}
#: (landmark set, AU) whose channel the re-detected landmarks hardly follow on the shared photos
#: (module notes): dlib's lids, which follow the rig's lid movements too little to be sure of,
#: and MediaPipe's cheek and chin boss.
UNSEEN = {("ibug68", 5), ("ibug68", 6), ("mediapipe", 6), ("mediapipe", 17)}


# ----------------------------------------------------------------------------------------------
# Synthetic: the rig's fields on the mean mesh, projected orthographically


def _project_px(verts_model_mm: np.ndarray) -> np.ndarray:
    """(N, 3) pixels of a frontal face, orthographic: model y up becomes image y down."""
    flipped = verts_model_mm * np.array([1.0, -1.0, -1.0])
    return flipped * PX_PER_MM + 320.0


@pytest.fixture(scope="module")
def synthetic(model):
    """MediaPipe-like (478, 3) landmarks of the neutral mean face and, per AU of the rig and
    intensity, of the face that the AU's field moves.

    The iris points stay at the neutral eye openings' centres: the render holds the eyeballs
    still under moving lids.
    """
    mean = model.mean_verts_model_mm
    mesh_px = _project_px(mean)
    centres = [mesh_px[list(loop)].mean(axis=0) for loop in (topo.RIGHT_EYE, topo.LEFT_EYE)]
    iris_px = np.repeat(np.array(centres), 5, axis=0)  # 468-472 right eye, 473-477 left
    moved = {
        (au, i): np.vstack([_project_px(mean + i / 5 * field), iris_px])
        for au, field in zip(model.rig.au_numbers, model.rig.fields_model_mm, strict=True)
        for i in INTENSITIES
    }
    return np.vstack([mesh_px, iris_px]), moved


def _as(kind: str, landmarks_px: np.ndarray) -> np.ndarray:
    return landmarks_px[list(topo.IBUG68)] if kind == "ibug68" else landmarks_px


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("au", GEOMETRY_AUS)
def test_own_channel_grows_with_intensity(synthetic, kind, au):
    neutral, moved = synthetic
    low, high = (
        au_geometric_response(_as(kind, neutral), _as(kind, moved[au, i]), kind)[au]
        for i in INTENSITIES
    )
    assert 0 < low < high, (low, high)
    assert high == pytest.approx(2 * low, rel=0.05)  # the fields are linear in intensity


@pytest.fixture(scope="module")
def specificity(synthetic, model) -> dict[str, pd.DataFrame]:
    """Per landmark set, the specificity matrix at intensity 4: rows the applied AU (every AU of
    the rig), columns the AU whose channel responds (:data:`GEOMETRY_AUS`), in % IOD."""
    neutral, moved = synthetic
    matrices = {}
    for kind in KINDS:
        rows = {
            au: au_geometric_response(_as(kind, neutral), _as(kind, moved[au, 4.0]), kind)
            for au in model.rig.au_numbers
        }
        matrices[kind] = 100 * pd.DataFrame(rows).T
        print(f"\n{kind}: response (x100 IOD) of each channel (columns) to each AU at 4 (rows)")
        print(matrices[kind].round(1).to_string())
    return matrices


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("au", TARGET_AUS)
def test_channel_is_specific(specificity, kind, au):
    """On the rig's fields, a DISFA AU's (or AU43's) channel responds to its own AU at least
    twice as much as to any other of those AUs, and more than to any other AU of the rig; an
    antagonist reads negative, a shared AU (module notes) is left out."""
    column = specificity[kind][au]
    own = column[au]
    assert own > 0
    for other, value in column.drop(au).items():
        if (other, au) in SHARED[kind]:
            continue
        if frozenset((au, other)) in ANTAGONISTS[kind]:
            assert value < 0, (other, value)
        elif other in TARGET_AUS:
            assert abs(value) <= own / 2, (other, value, own)
        else:
            assert abs(value) < own, (other, value, own)


@pytest.mark.parametrize("kind", KINDS)
def test_channels_invariant_under_similarity(synthetic, kind):
    landmarks = _as(kind, synthetic[1][12, 4.0])
    angle = np.radians(23.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved_px = landmarks.copy()
    moved_px[:, :2] = 0.37 * landmarks[:, :2] @ rotation.T + np.array([-41.0, 977.0])
    before, after = au_channels(landmarks, kind), au_channels(moved_px, kind)
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert after[name] == pytest.approx(value, abs=1e-12), name


def test_head_frame_is_eye_centred_and_unit(synthetic):
    frame = head_frame(synthetic[0], "mediapipe")
    eyes = frame[[33, 133, 362, 263]]
    assert eyes[:, 1] == pytest.approx(np.zeros(4), abs=0.02)  # corners near the eye line
    assert np.linalg.norm(frame[263] - frame[33]) == pytest.approx(1.0)
    assert frame[[33, 133], 0].mean() == pytest.approx(-frame[[362, 263], 0].mean())
    assert frame[10, 1] > 0 > frame[152, 1]  # forehead up, chin down


def test_no_change_reads_zero(synthetic):
    response = au_geometric_response(synthetic[0], synthetic[0], "mediapipe")
    assert set(response) == set(GEOMETRY_AUS) == set(AU_CHANNELS)
    assert all(v == 0 for v in response.values())


def test_validation(synthetic):
    neutral = synthetic[0]
    with pytest.raises(ValueError, match="allowed: ibug68, mediapipe"):
        au_channels(neutral, "dlib")
    with pytest.raises(ValueError, match=r"\(478, >=2\)"):
        au_channels(neutral[:468], "mediapipe")
    with pytest.raises(ValueError, match=r"\(68, >=2\)"):
        au_geometric_response(neutral, neutral, "ibug68")
    with pytest.raises(ValueError, match="non-finite"):
        bad = neutral.copy()
        bad[0, 0] = np.nan
        au_channels(bad, "mediapipe")
    with pytest.raises(ValueError, match="coincide"):
        au_channels(np.zeros((68, 2)), "ibug68")


def test_au_correlations_per_instrument():
    """evaluate's correlation table reads the instrument's own columns and AUs."""
    key = {"image_path": "a.png", "face_index": 0, "sample": 0}
    requested = [0.0, 2.0, 4.0, 0.0]
    labels = pd.DataFrame(
        {**key, "target_id": f"t{k}", **dict.fromkeys(AU_NAMES, 0.0), "AU4": intensity}
        for k, intensity in enumerate(requested)
    )
    evaluation = pd.DataFrame(
        {
            **key,
            "target_id": f"t{k}",
            "status": "ok",
            "geometry_baseline": "source",
            **{
                f"{prefix}_{n}": 0.01 * k
                for prefix in ("geometry", "geometry_mp")
                for n in GEOMETRY_AU_NAMES
            },
            "geometry_AU4": 0.01 * intensity,
            "geometry_mp_AU4": -0.01 * intensity,
        }
        for k, intensity in enumerate(requested)
    )
    dlib = au_correlations(evaluation, labels, "geometry").set_index("au")
    mediapipe = au_correlations(evaluation, labels, "geometry-mp").set_index("au")
    assert list(dlib.index) == list(GEOMETRY_AU_NAMES)
    assert dlib.loc["AU4", "pearson_r"] == pytest.approx(1.0)
    assert mediapipe.loc["AU4", "pearson_r"] == pytest.approx(-1.0)
    assert mediapipe.loc["AU4", "sign"] == -1
    assert np.isnan(dlib.loc["AU1", "sign"])  # never requested
    with pytest.raises(ValueError, match="allowed: blendshapes, geometry, geometry-mp"):
        au_correlations(evaluation, labels, "landmarks")


def test_au_correlations_leave_out_the_neutral_render_against_the_photo():
    """A face measured against its neutral render drops the row measured against the photo
    (the neutral render itself) from the geometric instruments; a face without one keeps its
    rows, and the blendshapes keep every row."""
    outputs = [  # image, target, requested AU12, baseline, response
        ("a.png", "neutral", 0.0, "source", 0.5),
        ("a.png", "AU12=2", 2.0, "neutral render", 0.02),
        ("a.png", "AU12=4", 4.0, "neutral render", 0.04),
        ("b.png", "neutral", 0.0, "source", 0.0),
        ("b.png", "AU12=4", 4.0, "source", 0.04),
    ]
    key = {"face_index": 0, "sample": 0}
    labels = pd.DataFrame(
        {**key, "image_path": image, "target_id": target, **dict.fromkeys(AU_NAMES, 0.0)}
        | {"AU12": requested}
        for image, target, requested, _, _ in outputs
    )
    evaluation = pd.DataFrame(
        {**key, "image_path": image, "target_id": target, "status": "ok"}
        | {"geometry_baseline": baseline}
        | {f"geometry_mp_{n}": response for n in GEOMETRY_AU_NAMES}
        | {f"response_{n}": response for n in AU_NAMES}
        for image, target, _, baseline, response in outputs
    )
    geometry = au_correlations(evaluation, labels, "geometry-mp").set_index("au")
    blendshapes = au_correlations(evaluation, labels, "blendshapes").set_index("au")
    assert geometry.loc["AU12", "pearson_r"] == pytest.approx(1.0)
    assert blendshapes.loc["AU12", "pearson_r"] < 0.5


# ----------------------------------------------------------------------------------------------
# Real photos: single-AU targets synthesized, blended and detected again


def _synthesize(image, face, fit, aus, model):
    delta = fit.expression_change_px(model.rig.offsets(model.rig.vector(aus)))
    rendered = render_expression(image, face.landmarks_px, delta, model)
    return blend_face(image, rendered.image_rgb, rendered.alpha, rendered.roi)


@pytest.fixture(scope="module")
def real_responses(shared_faces, landmarker, model) -> pd.DataFrame:
    """One row per landmark set and output: the photo, the requested AU and intensity, and
    every AU's geometric response (inter-ocular units). dlib reads the source and the output in
    the source's face box, as ``evaluate`` does."""
    start = time.perf_counter()
    rows = []
    for photo, (image, face, _) in enumerate(_neutral_faces(shared_faces, landmarker)):
        fit = fit_face(face.landmarks_px, model)
        source68 = dlib_landmarks68(image, face.bbox_px)
        for au in TARGET_AUS:
            for intensity in INTENSITIES:
                output = _synthesize(image, face, fit, {au: intensity}, model)
                again = landmarker.detect(output)
                assert again, "the face must still be found after synthesis"
                responses = {
                    "ibug68": au_geometric_response(
                        source68, dlib_landmarks68(output, face.bbox_px), "ibug68"
                    ),
                    "mediapipe": au_geometric_response(
                        face.landmarks_px, again[0].landmarks_px, "mediapipe"
                    ),
                }
                for kind, response in responses.items():
                    rows.append(
                        {"kind": kind, "photo": photo, "target": au, "intensity": intensity}
                        | response
                    )
    table = pd.DataFrame(rows)
    print(f"\n{len(table) // len(KINDS)} outputs in {time.perf_counter() - start:.0f} s")
    return table


def _correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Per AU and landmark set: Pearson r of requested intensity with the response over every
    output (the AU requested at 0 in the other targets' outputs), and its sign."""
    rows = []
    for au in TARGET_AUS:
        row = {"au": f"AU{au}"}
        for kind, group in table.groupby("kind"):
            requested = np.where(group["target"] == au, group["intensity"], 0.0)
            summary = response_summary(requested, group[au].to_numpy(dtype=float))
            row |= {f"r {kind}": summary.pearson_r, f"sign {kind}": summary.sign}
        rows.append(row)
    return pd.DataFrame(rows).set_index("au")


def _target_means(group: pd.DataFrame) -> pd.DataFrame:
    """Mean response of every AU (columns) per target (rows), x100 inter-ocular distance."""
    means = 100 * group.groupby(["target", "intensity"])[list(TARGET_AUS)].mean()
    means.index = [f"AU{au}={i:g}" for au, i in means.index]
    return means.rename(columns=lambda au: f"AU{au}")


def _related(kind: str, au: int) -> set[int]:
    """The AU and the targets that move its channel by anatomy on this landmark set."""
    return {au} | {
        other
        for other in TARGET_AUS
        if frozenset((au, other)) in ANTAGONISTS[kind] or (other, au) in SHARED[kind]
    }


def _lead_over_unrelated(table: pd.DataFrame, au: int) -> pd.Series:
    """Per landmark set, the mean over photos of: the AU's response to its own target at 4,
    minus the photo's median response over the targets of unrelated AUs.

    Each source loses its own fitted expression in every output (replace semantics), which
    offsets every response of a photo alike; comparing within a photo takes that out.
    """
    leads = {}
    for kind, group in table.groupby("kind"):
        unrelated = group[~group["target"].isin(_related(kind, au))]
        own = group[(group["target"] == au) & (group["intensity"] == 4.0)]
        lead = own.groupby("photo")[au].mean() - unrelated.groupby("photo")[au].median()
        leads[kind] = lead.mean()
    return pd.Series(leads)


def test_real_photos_move_each_channel_for_its_own_au(real_responses):
    """Asserted: within a photo, each AU's target at 4 moves its channel more than unrelated
    targets do, on both landmark sets, except where the re-detected landmarks do not follow the
    render (:data:`UNSEEN`). The r figures are printed, not asserted: the rig is being
    recalibrated."""
    assert real_responses.groupby("kind").size().min() >= 10 * len(TARGET_AUS) * 2
    print("\nrequested intensity vs geometric response, over all outputs:")
    print(_correlations(real_responses).round(2).to_string())
    for kind, group in real_responses.groupby("kind"):
        print(f"\n{kind}: mean response per target (x100 inter-ocular distance)")
        print(_target_means(group).round(2).to_string())
    leads = pd.DataFrame({f"AU{au}": _lead_over_unrelated(real_responses, au) for au in TARGET_AUS})
    print("\nown target at 4 over unrelated targets, within a photo (x100 IOD):")
    print((100 * leads).round(2).to_string())
    for au in TARGET_AUS:
        for kind in KINDS:
            if (kind, au) not in UNSEEN:
                assert leads.loc[kind, f"AU{au}"] > 0, (kind, au)
