"""Expression-response metrics (blendshapes read as AUs) and blending-artifact metrics."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from augmentface.blend import alpha_blend, blend_face
from augmentface.expression.au_rig import AU_ALIASES, AU_SPECS
from augmentface.face.fitting import fit_face
from augmentface.metrics.artifacts import outside_unchanged, seam_band, seam_ratio, seam_score
from augmentface.metrics.blendshapes_facs import (
    AU_BLENDSHAPES,
    au_response,
    au_scores,
    response_summary,
)
from augmentface.render.face_render import render_expression


@pytest.fixture(scope="module")
def astronaut_face(landmarker, astronaut):
    faces = landmarker.detect(astronaut)
    assert faces, "the astronaut's face must be found"
    return faces[0]


@pytest.fixture(scope="module")
def names(astronaut_face) -> tuple[str, ...]:
    return astronaut_face.blendshape_names


def _scores(names: tuple[str, ...], **values: float) -> np.ndarray:
    scores = np.zeros(len(names))
    for name, value in values.items():
        scores[names.index(name)] = value
    return scores


# --------------------------------------------------------------------------------------------
# The AU <-> blendshape table


def test_every_synthesized_au_has_a_mapping():
    synthesized = {spec.number for spec in AU_SPECS} | set(AU_ALIASES)
    assert set(AU_BLENDSHAPES) == synthesized
    assert AU_BLENDSHAPES[45] == AU_BLENDSHAPES[AU_ALIASES[45]]


def test_weights_are_normalised():
    for au, row in AU_BLENDSHAPES.items():
        assert math.isclose(sum(abs(w) for _, w in row), 1.0), au


def test_every_mapped_name_is_a_mediapipe_blendshape(names):
    assert len(names) == 52 and names[0] == "_neutral"
    mapped = {name for row in AU_BLENDSHAPES.values() for name, _ in row}
    assert mapped <= set(names), sorted(mapped - set(names))


def test_au_response_sign_and_magnitude(names):
    before = _scores(names, browDownLeft=0.5, browDownRight=0.5, jawOpen=0.1)
    after = _scores(
        names, mouthSmileLeft=0.6, mouthSmileRight=0.4, browDownLeft=0.1, browDownRight=0.3,
        jawOpen=0.5, mouthClose=0.4,
    )  # fmt: skip
    response = au_response(before, after, names)
    assert set(response) == set(AU_BLENDSHAPES)
    assert response[12] == pytest.approx(0.5)  # mean of the two sides
    assert response[4] == pytest.approx(-0.3)  # brows rose: AU4 went the other way
    assert response[26] == pytest.approx(0.4)
    # The jaw opened but the lips stayed together: the lips parted by (0.4 - 0.4) / 2.
    assert response[25] == pytest.approx(0.0)
    assert response[1] == 0.0 and response[43] == 0.0
    assert au_response(after, before, names)[12] == pytest.approx(-0.5)


def test_au_scores_are_weighted_means(names):
    scores = au_scores(_scores(names, mouthPucker=0.8, mouthPressLeft=0.4, jawOpen=0.6), names)
    assert scores[23] == pytest.approx(0.5 * 0.8 + 0.25 * 0.4)
    assert scores[24] == pytest.approx(0.2)
    assert scores[25] == pytest.approx(0.3) and scores[26] == pytest.approx(0.6)


def test_missing_or_mismatched_names_are_reported(names):
    renamed = tuple("smileL" if n == "mouthSmileLeft" else n for n in names)
    with pytest.raises(ValueError, match="mouthSmileLeft"):
        au_scores(np.zeros(52), renamed)
    with pytest.raises(ValueError, match=r"shape \(52,\)"):
        au_response(np.zeros(51), np.zeros(52), names)


def test_response_summary_perfect_anti_and_constant():
    requested = np.array([0.0, 1, 2, 3, 4, 5])
    r, sign, reason = response_summary(requested, 0.1 * requested)
    assert r == pytest.approx(1.0) and sign == 1.0 and reason == ""
    r, sign, reason = response_summary(requested, -0.1 * requested)
    assert r == pytest.approx(-1.0) and sign == -1.0 and reason == ""

    r, sign, reason = response_summary(np.full(6, 3.0), requested)
    assert math.isnan(r) and "requested is constant" in reason and sign == 1.0
    r, sign, reason = response_summary(requested, np.zeros(6))
    assert math.isnan(r) and "response is constant" in reason and sign == 0.0
    r, sign, reason = response_summary(np.zeros(6), requested)
    assert math.isnan(r) and math.isnan(sign) and "no intensity requested" in reason
    # A face not found again (NaN response) drops out instead of poisoning the statistics.
    response = 0.1 * requested
    response[2] = np.nan
    assert response_summary(requested, response).pearson_r == pytest.approx(1.0)
    r, _, reason = response_summary(requested[:1], response[:1])
    assert math.isnan(r) and "need 2" in reason
    with pytest.raises(ValueError, match=">= 0"):
        response_summary(-requested, requested)


# --------------------------------------------------------------------------------------------
# Seam and outside-the-mask checks on synthetic images


@pytest.fixture(scope="module")
def textured() -> np.ndarray:
    """(128, 128, 3) uint8: a gentle ramp with mild noise, like smooth skin or a wall."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(80, 140, 128)[None, :, None] + np.zeros((128, 1, 3))
    return np.clip(ramp + rng.normal(0, 2, (128, 128, 3)), 0, 255).astype(np.uint8)


ROI = (24, 20, 104, 100)  # x0, y0, x1, y1: an 80 x 80 crop


def _square_alpha(feather_sigma: float) -> np.ndarray:
    alpha = np.zeros((80, 80), np.uint8)
    alpha[16:64, 16:64] = 255
    return cv2.GaussianBlur(alpha, (0, 0), feather_sigma) if feather_sigma else alpha


def test_seam_band_is_the_two_pixel_mask_boundary():
    alpha = np.zeros((6, 6), np.uint8)
    alpha[1:5, 1:5] = 200
    ys, xs = seam_band(alpha, (2, 2, 8, 8), (10, 10, 3))
    band = np.zeros((10, 10), bool)
    band[ys, xs] = True
    expected = np.zeros((10, 10), bool)
    expected[2:8, 2:8] = True  # one pixel outside the mask ...
    expected[4:6, 4:6] = False  # ... and one inside
    np.testing.assert_array_equal(band, expected)
    # A mask filling its roi has its boundary just outside the roi, but none at the image border.
    ys, xs = seam_band(np.full((4, 10), 255, np.uint8), (0, 0, 10, 4), (10, 10, 3))
    assert set(ys.tolist()) == {3, 4}
    with pytest.raises(ValueError, match="no boundary"):
        seam_score(np.zeros((10, 10, 3), np.uint8), np.full((10, 10), 255, np.uint8))
    with pytest.raises(ValueError, match="needs"):
        seam_band(alpha, (2, 2, 9, 8), (10, 10, 3))


def test_seam_ratio_separates_hard_paste_from_feathered(textured):
    x0, y0, x1, y1 = ROI
    brighter = np.clip(textured[y0:y1, x0:x1].astype(int) + 40, 0, 255).astype(np.uint8)
    hard_alpha, soft_alpha = _square_alpha(0), _square_alpha(8)
    hard = alpha_blend(textured, brighter, hard_alpha, ROI)
    soft = alpha_blend(textured, brighter, soft_alpha, ROI)
    hard_ratio = seam_ratio(hard, textured, hard_alpha, ROI)
    soft_ratio = seam_ratio(soft, textured, soft_alpha, ROI)
    print(f"synthetic seam ratio: hard {hard_ratio:.1f}, feathered {soft_ratio:.2f}")
    assert seam_ratio(textured, textured, hard_alpha, ROI) == 1.0
    assert hard_ratio > 50
    assert hard_ratio > 20 * soft_ratio
    # Full-image alpha without a roi is the same measurement.
    full = np.zeros(textured.shape[:2], np.uint8)
    full[y0:y1, x0:x1] = hard_alpha
    assert seam_ratio(hard, textured, full) == hard_ratio
    assert seam_score(hard, hard_alpha, ROI) == pytest.approx(
        hard_ratio * seam_score(textured, hard_alpha, ROI)
    )


def test_seam_ratio_of_flat_source():
    flat = np.full((32, 32, 3), 100, np.uint8)
    alpha = np.zeros((32, 32), np.uint8)
    alpha[8:24, 8:24] = 255
    assert seam_ratio(flat, flat, alpha) == 1.0
    stepped = flat.copy()
    stepped[8:24, 8:24] = 140
    assert seam_ratio(stepped, flat, alpha) == math.inf


def test_outside_unchanged_finds_one_changed_pixel(textured):
    alpha = _square_alpha(4)
    x0, y0 = ROI[:2]
    inside = textured.copy()
    inside[y0 + 40, x0 + 40] ^= 0xFF  # inside the mask: allowed
    assert outside_unchanged(inside, textured, alpha, ROI) == (True, 0)
    assert alpha[0, 0] == 0
    for y, x in [(5, 5), (y0, x0)]:  # outside the roi; inside it where alpha == 0
        changed = textured.copy()
        changed[y, x, 1] = textured[y, x, 1] + (3 if textured[y, x, 1] < 250 else -3)
        assert outside_unchanged(changed, textured, alpha, ROI) == (False, 3)
        assert outside_unchanged(changed, textured, alpha, ROI, tol=3) == (True, 3)


# --------------------------------------------------------------------------------------------
# A real render: the astronaut made to smile


def test_astronaut_smile_seams_and_response(model, landmarker, astronaut, astronaut_face, names):
    """Both blends leave the boundary as smooth as the photo, and MediaPipe reads the smile.

    The astronaut already smiles broadly (her AU12 score is about 0.9), and rendering replaces
    her expression, so a target smile weaker than hers reads as *less* smile than the photo.
    The response is therefore measured against a neutral render of the same face.
    """
    fit = fit_face(astronaut_face.landmarks_px, model)

    def render(aus: dict[int, float]):
        delta = fit.expression_change_px(model.rig.offsets(model.rig.vector(aus)))
        return render_expression(astronaut, astronaut_face.landmarks_px, delta, model)

    smile, neutral = render({6: 3, 12: 4}), render({})
    for method in ("alpha", "poisson"):
        out = blend_face(astronaut, smile.image_rgb, smile.alpha, smile.roi, method)
        ratio = seam_ratio(out, astronaut, smile.alpha, smile.roi)
        assert outside_unchanged(out, astronaut, smile.alpha, smile.roi) == (True, 0)
        base = blend_face(astronaut, neutral.image_rgb, neutral.alpha, neutral.roi, method)
        after, before = landmarker.detect(out), landmarker.detect(base)
        assert after and before, "the face must still be found after synthesis"
        vs_neutral = au_response(before[0].blendshape_scores, after[0].blendshape_scores, names)
        vs_photo = au_response(astronaut_face.blendshape_scores, after[0].blendshape_scores, names)
        print(
            f"{method}: seam ratio {ratio:.4f}; AU12 response vs neutral render "
            f"{vs_neutral[12]:+.3f}, vs photo {vs_photo[12]:+.3f}; AU6 vs neutral "
            f"{vs_neutral[6]:+.3f}"
        )
        # Measured on skimage's astronaut: alpha 0.998, poisson 1.000 (target <= 1.2).
        assert ratio <= 1.05
        # Measured: +0.55 for both blends (0.69 against 0.14).
        assert vs_neutral[12] > 0.3
