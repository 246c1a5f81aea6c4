"""Measure how far MediaPipe's landmarks follow each AU of the rig ("response gains").

MediaPipe's landmarker regresses toward typical face shapes: when a photo's brows are raised by
10 px, its brow landmarks rise by less. fit3dmm estimates AU intensities from those landmarks,
so it models each AU's field as the landmarker sees it: ``gain × field``. This script measures
the gains: it adds each fitted AU at intensities 2 and 4 to every face of a photo folder
(photos scaled to at most 800 px), re-detects the landmarks, and regresses the re-detected
displacement on the intended one (x and y, on the vertices the AU moves most). The median over
faces and intensities per AU is written to ``src/augmentface/face/data/landmark_gains.json``.

The committed gains were measured on the shared photos that are NOT near-neutral
(``--skip-neutral``: MediaPipe's mouthSmile >= 0.15), so that the round-trip evaluation on the
near-neutral ones stays out of sample.

Usage: python scripts/calibrate_response.py PHOTO_FOLDER [--skip-neutral]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from photos import first_faces

from augmentface.atomic import atomic_write_text
from augmentface.blend import blend_face
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.fitting import FITTED_AUS, FitConfig, fit_face
from augmentface.face.model import LANDMARK_GAINS_FILE, load_face_model
from augmentface.frames import offsets_model_to_image
from augmentface.render.face_render import render_expression


def gain(intended_px: np.ndarray, got_px: np.ndarray) -> float:
    """Least-squares gain of the re-detected displacement on the intended one (x, y)."""
    strength = np.linalg.norm(intended_px, axis=1)
    moved = strength > 0.3 * strength.max()
    return float((got_px[moved] * intended_px[moved]).sum() / (intended_px[moved] ** 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--skip-neutral", action="store_true",
                        help="use only faces with mouthSmile >= 0.15")
    args = parser.parse_args()
    model = load_face_model()
    gains: dict[int, list[float]] = {au: [] for au in FITTED_AUS}
    used = 0
    with FaceLandmarker(DetectConfig()) as landmarker:
        for _, image, face in first_faces(args.folder, landmarker):
            scores = dict(zip(face.blendshape_names, face.blendshape_scores, strict=True))
            if args.skip_neutral and scores["mouthSmileLeft"] < 0.15:
                continue
            used += 1
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
                    if again:
                        got = again[0].landmarks_px[:468, :2] - face.landmarks_px[:468, :2]
                        gains[au].append(gain(delta[:, :2], got))
    result = {f"AU{au}": round(float(np.median(v)), 3) for au, v in gains.items()}
    atomic_write_text(LANDMARK_GAINS_FILE, json.dumps(result, indent=1) + "\n")
    print(f"{used} faces: {result}")


if __name__ == "__main__":
    main()
