"""Synthesized expressions read as those expressions to an independent model (MediaPipe's
blendshapes), on the near-neutral real photos of the shared set."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from augmentface.blend import blend_face
from augmentface.face.fitting import fit_face
from augmentface.imageio import read_image
from augmentface.render.face_render import render_expression

TARGETS = {
    "AU12=4": ({12: 4}, ("mouthSmileLeft", "mouthSmileRight"), 0.3),
    "AU25+26=4": ({25: 4, 26: 4}, ("jawOpen",), 0.05),
    "AU1+2=4": ({1: 4, 2: 4}, ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"), 0.02),
    "AU4=4": ({4: 4}, ("browDownLeft", "browDownRight"), 0.02),
    "AU43=5": ({43: 5}, ("eyeBlinkLeft", "eyeBlinkRight"), 0.1),
}


def _neutral_faces(shared_faces, landmarker):
    for path in sorted(shared_faces.glob("*.jpg")):
        image = read_image(path)
        scale = 800 / max(image.shape[:2])
        if scale < 1:  # keeps the test fast; faces stay well above MediaPipe's input size
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = landmarker.detect(image)
        if not faces:
            continue
        scores = dict(zip(faces[0].blendshape_names, faces[0].blendshape_scores, strict=True))
        if scores["mouthSmileLeft"] < 0.15:
            yield image, faces[0], scores


def synthesize_and_detect(image, face, fit, aus, model, landmarker):
    """Replace the face's expression with ``aus``, blend, and detect the face again."""
    delta = fit.expression_change_px(model.rig.offsets(model.rig.vector(aus)))
    rendered = render_expression(image, face.landmarks_px, delta, model)
    out = blend_face(image, rendered.image_rgb, rendered.alpha, rendered.roi)
    again = landmarker.detect(out)
    assert again, "the face must still be found after synthesis"
    return again


@pytest.mark.parametrize("name", list(TARGETS))
def test_expression_response(name, shared_faces, landmarker, model):
    aus, keys, minimum = TARGETS[name]
    gains = []
    for image, face, before in _neutral_faces(shared_faces, landmarker):
        fit = fit_face(face.landmarks_px, model)
        again = synthesize_and_detect(image, face, fit, aus, model, landmarker)
        after = dict(zip(again[0].blendshape_names, again[0].blendshape_scores, strict=True))
        gains.append(np.mean([after[k] - before[k] for k in keys]))
    assert len(gains) >= 10, "expected at least 10 near-neutral photos"
    print(f"{name}: mean blendshape gain {np.mean(gains):.3f} over {len(gains)} photos")
    assert np.mean(gains) >= minimum
