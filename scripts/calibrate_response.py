"""Measure how far MediaPipe's landmarks follow each AU of the rig ("response gains").

MediaPipe's landmarker regresses toward typical face shapes: when a photo's brows are raised by
10 px, its brow landmarks rise by about 7. fit3dmm estimates AU intensities from those
landmarks, so it models each AU's field as the landmarker sees it: ``gain × field``. This script
measures the gains by synthesizing each fitted AU at intensities 2 and 4 on the public-domain
astronaut photo (scikit-image; at three scales and mirrored: six views), re-detecting the
landmarks, and regressing the re-detected displacement on the intended one (x and y, on the
vertices the AU moves most). It writes the median per AU to
``src/augmentface/face/data/landmark_gains.json``. The shared evaluation photos are not used.

Usage: python scripts/calibrate_response.py
"""

from __future__ import annotations

import json

import cv2
import numpy as np
from skimage import data

from augmentface.atomic import atomic_write_text
from augmentface.blend import blend_face
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.fitting import FITTED_AUS, FitConfig, fit_face
from augmentface.face.model import LANDMARK_GAINS_FILE, load_face_model
from augmentface.frames import offsets_model_to_image
from augmentface.render.face_render import render_expression


def views() -> list[np.ndarray]:
    base = data.astronaut()
    out = []
    for size in (384, 512, 768):
        image = cv2.resize(base, (size, size), interpolation=cv2.INTER_AREA)
        out += [image, np.ascontiguousarray(image[:, ::-1])]
    return out


def gain(intended_px: np.ndarray, got_px: np.ndarray) -> float:
    """Least-squares gain of the re-detected displacement on the intended one (x, y)."""
    strength = np.linalg.norm(intended_px, axis=1)
    moved = strength > 0.3 * strength.max()
    return float((got_px[moved] * intended_px[moved]).sum() / (intended_px[moved] ** 2).sum())


def main() -> None:
    model = load_face_model()
    gains: dict[int, list[float]] = {au: [] for au in FITTED_AUS}
    with FaceLandmarker(DetectConfig()) as landmarker:
        for image in views():
            face = landmarker.detect(image)[0]
            fit = fit_face(face.landmarks_px, model, FitConfig(gains=False))
            for au in FITTED_AUS:
                for intensity in (2.0, 4.0):
                    # added on top of the photo's own expression, so that only this AU moves
                    delta = offsets_model_to_image(
                        model.rig.offsets(model.rig.vector({au: intensity})), fit.rotation,
                        fit.scale_px_per_mm)
                    rendered = render_expression(image, face.landmarks_px, delta, model)
                    out = blend_face(image, rendered.image_rgb, rendered.alpha, rendered.roi)
                    again = landmarker.detect(out)
                    if not again:
                        continue
                    got = again[0].landmarks_px[:468, :2] - face.landmarks_px[:468, :2]
                    gains[au].append(gain(delta[:, :2], got))
    result = {f"AU{au}": round(float(np.median(v)), 3) for au, v in gains.items()}
    atomic_write_text(LANDMARK_GAINS_FILE, json.dumps(result, indent=1) + "\n")
    print(result)


if __name__ == "__main__":
    main()
