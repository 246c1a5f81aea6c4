"""How well could any fit recover AUs from MediaPipe's landmarks of our renders? An upper bound.

The round trip (tests/test_round_trip.py) re-fits a synthesized image from its landmarks alone,
so a person's own shape adds to the AU estimate. This script removes that handicap: for each
near-neutral photo it also renders a neutral target on the same face, and fits the AUs to the
*difference* between the two renders' landmarks (model frame, bounded least squares on the rig's
fields as the landmarker follows them, the fitter's own weights). What is left is only how far
MediaPipe's landmarks follow each AU of the rig: if this oracle misses MAE <= 1.0 for an AU, no
single-image fit on these landmarks can meet it.

Usage: python scripts/round_trip_oracle.py ../shared/faces/deepface
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import lsq_linear

from augmentface.blend import blend_face
from augmentface.datasets.schema import DISFA_AUS
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.fitting import FITTED_AUS, FitConfig, fit_face, observed_gains
from augmentface.face.model import load_face_model
from augmentface.frames import image_to_model
from augmentface.imageio import read_image
from augmentface.render.face_render import render_expression


def neutral_faces(folder: Path, landmarker):
    """(image, face) of the near-neutral photos (mouthSmile < 0.15), at most 800 px, as the
    round-trip test picks them."""
    for path in sorted(folder.glob("*.jpg")):
        image = read_image(path)
        scale = 800 / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = landmarker.detect(image)
        if faces and dict(zip(faces[0].blendshape_names, faces[0].blendshape_scores,
                              strict=True))["mouthSmileLeft"] < 0.15:  # fmt: skip
            yield image, faces[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    model = load_face_model()
    config = FitConfig()
    columns = [model.rig.au_numbers.index(au) for au in FITTED_AUS]
    gains = observed_gains(model, config)[columns]
    axis_w = np.array([1.0, 1.0, config.z_weight])
    fields = model.rig.fields_model_mm[columns] * (gains / 5.0)[:, None, None] * axis_w
    design = fields.reshape(len(columns), -1).T
    errors: dict[int, list[float]] = {au: [] for au in DISFA_AUS}
    with FaceLandmarker(DetectConfig()) as landmarker:
        for image, face in neutral_faces(args.folder, landmarker):
            fit = fit_face(face.landmarks_px, model)
            pose = (fit.rotation, fit.scale_px_per_mm, fit.translation_px)

            def model_frame(aus, image=image, face=face, fit=fit, pose=pose):
                delta = fit.expression_change_px(model.rig.offsets(model.rig.vector(aus)))
                rendered = render_expression(image, face.landmarks_px, delta, model)
                out = blend_face(image, rendered.image_rgb, rendered.alpha, rendered.roi)
                again = landmarker.detect(out)[0]
                return image_to_model(again.landmarks_px[:468].astype(float), *pose)

            neutral = model_frame({})
            for au in DISFA_AUS:
                for intensity in (2.0, 4.0):
                    moved = (model_frame({au: intensity}) - neutral) * axis_w
                    estimate = lsq_linear(design, moved.ravel(), bounds=(0.0, 5.0)).x
                    errors[au].append(abs(estimate[FITTED_AUS.index(au)] - intensity))
    mae = {f"AU{au}": round(float(np.mean(v)), 2) for au, v in errors.items()}
    print(f"oracle MAE per AU: {mae}; overall {np.mean(list(mae.values())):.2f}")


if __name__ == "__main__":
    main()
