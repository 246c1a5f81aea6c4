"""How real broad smiles are shaped, against the rig's smile at the happiness apex.

The shape is read off MediaPipe's landmarks, in inter-pupil distances (IPD, between the iris
centres): the mouth's width (corner to corner), how far the corners rise above the lips'
middle, and the gap between the inner lips' middles. Real: the shared photos whose first face
smiles broadly (mouthSmile >= 0.85 on both sides). Ours: the near-neutral ones
(mouthSmileLeft < 0.15) re-rendered at the happiness prototype's AUs and re-detected; the same
photos at rest are printed too. AU12's handles (expression/au_rig.py) were set from this
comparison.

Usage: python scripts/smile_geometry.py PHOTO_FOLDER
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from photos import first_faces

from augmentface.blend import blend_face
from augmentface.expression.emotion_prior import emotion_aus
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.fitting import fit_face
from augmentface.face.model import load_face_model
from augmentface.metrics.measure import nearest_face
from augmentface.render.face_render import render_expression

BROAD, NEUTRAL = 0.85, 0.15


def smile_shape(landmarks_px: np.ndarray) -> tuple[float, float, float]:
    """(width, corner lift, lip gap) of a mouth, in inter-pupil distances."""
    ipd = np.linalg.norm(landmarks_px[468, :2] - landmarks_px[473, :2])
    corners = landmarks_px[[61, 291], :2]
    middle = landmarks_px[[13, 14], :2].mean(axis=0)
    width = np.linalg.norm(corners[0] - corners[1]) / ipd
    lift = (middle[1] - corners[:, 1].mean()) / ipd  # image y points down
    gap = np.linalg.norm(landmarks_px[13, :2] - landmarks_px[14, :2]) / ipd
    return width, lift, gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    model = load_face_model()
    target = model.rig.offsets(model.rig.vector(emotion_aus("happiness")))
    shapes: dict[str, list] = {"real broad smiles": [], "near-neutral photos": [], "ours": []}
    with FaceLandmarker(DetectConfig()) as landmarker:
        for _, image, face in first_faces(args.folder, landmarker):
            scores = dict(zip(face.blendshape_names, face.blendshape_scores, strict=True))
            if min(scores["mouthSmileLeft"], scores["mouthSmileRight"]) >= BROAD:
                shapes["real broad smiles"].append(smile_shape(face.landmarks_px))
            elif scores["mouthSmileLeft"] < NEUTRAL:
                shapes["near-neutral photos"].append(smile_shape(face.landmarks_px))
                fit = fit_face(face.landmarks_px, model)
                delta = fit.expression_change_px(target)
                rendered = render_expression(image, face.landmarks_px, delta, model)
                output = blend_face(image, rendered.image_rgb, rendered.alpha, rendered.roi)
                again = nearest_face(landmarker.detect(output), face.landmarks_px)
                if again is not None:
                    shapes["ours"].append(smile_shape(again.landmarks_px))
    for name, values in shapes.items():
        width, lift, gap = np.median(np.array(values), axis=0)
        print(f"{name:22s} n={len(values):2d}  width {width:.2f}  corner lift {lift:.3f}  "
              f"lip gap {gap:.3f} (IPD)")  # fmt: skip


if __name__ == "__main__":
    main()
