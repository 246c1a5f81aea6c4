"""Sheets of the emotion prototypes and of the expression-detail maps: without and with details.

One sheet per basic emotion (``synth-emotion``'s prototypes at full strength) and one per
built-in detail map (its AU at intensity 4): for each person, source | render without the detail
layer | render with it, the same face crop in each, as the render stage makes them (the
stage's detail weights: target less what the photo already shows).

The committed sheets (``docs/realism/emotion-*.jpg``, ``docs/realism/detail-AU*.jpg``) show
only scikit-image's public-domain astronaut. With ``--faces FOLDER`` the sheets also hold up to
``--people`` near-neutral photos of that folder (MediaPipe mouthSmileLeft < 0.15) and are
written to ``--out`` instead: the shared photos may not be copied into the repository, not
even as crops.

Usage: python scripts/expression_sheets.py [--faces ../shared/faces/deepface --out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from photos import first_faces, render_aus
from skimage import data

from augmentface.atomic import atomic_write_bytes
from augmentface.expression.emotion_prior import emotion_aus
from augmentface.face.detect import DetectConfig, FaceDetection, FaceLandmarker
from augmentface.face.model import FaceModel, load_face_model
from augmentface.render.detail_maps import BUILTIN_AUS

EMOTIONS = ("happiness", "surprise", "sadness", "anger", "fear", "disgust")
DETAIL_INTENSITY = 4.0
NEUTRAL_SMILE = 0.15
PANEL_PX = 300


def face_crop(image: np.ndarray, face: FaceDetection) -> np.ndarray:
    """A square crop around the face's landmarks, ``PANEL_PX`` on a side."""
    points = face.landmarks_px[:, :2]
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    half = 0.62 * np.ptp(points, axis=0).max()
    pad = int(half) + 2
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    x0, y0 = (centre - half).astype(int) + pad
    crop = padded[y0 : y0 + int(2 * half), x0 : x0 + int(2 * half)]
    return cv2.resize(crop, (PANEL_PX, PANEL_PX), interpolation=cv2.INTER_AREA)


def strip(text: str, width: int) -> np.ndarray:
    out = np.full((26, width, 3), 255, np.uint8)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return out


def sheet(title: str, people, aus: dict[int, float], model: FaceModel) -> np.ndarray:
    """source | without details | with details, one row per person, under a title."""
    rows = []
    for image, face in people:
        panels = [face_crop(image, face)]
        panels += [face_crop(render_aus(image, face, aus, model, d), face) for d in (False, True)]
        rows.append(np.hstack(panels))
    width = rows[0].shape[1]
    header = [strip(title, width), strip("source | without details | with details", width)]
    return np.vstack(header + rows)


def write_jpeg(path: Path, image_rgb: np.ndarray) -> None:
    ok, data_ = cv2.imencode(".jpg", image_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise OSError(f"{path}: JPEG encoding failed")
    atomic_write_bytes(path, data_.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, help="a folder of photos (several people)")
    parser.add_argument("--people", type=int, default=5, help="photos from --faces, at most")
    parser.add_argument("--out", type=Path, default=Path("docs/realism"))
    args = parser.parse_args()
    model = load_face_model()
    with FaceLandmarker(DetectConfig()) as landmarker:
        astronaut = data.astronaut()
        people = [(astronaut, landmarker.detect(astronaut)[0])]
        if args.faces is not None:
            for _, image, face in first_faces(args.faces, landmarker):
                scores = dict(zip(face.blendshape_names, face.blendshape_scores, strict=True))
                if scores["mouthSmileLeft"] < NEUTRAL_SMILE and len(people) <= args.people:
                    people.append((image, face))
    for emotion in EMOTIONS:
        aus = emotion_aus(emotion)
        title = f"{emotion}: " + " ".join(f"AU{au}={v:g}" for au, v in sorted(aus.items()))
        write_jpeg(args.out / f"emotion-{emotion}.jpg", sheet(title, people, aus, model))
    for au in BUILTIN_AUS:
        aus = {au: DETAIL_INTENSITY}
        write_jpeg(args.out / f"detail-AU{au}.jpg", sheet(f"AU{au}=4", people, aus, model))
    print(f"{len(EMOTIONS) + len(BUILTIN_AUS)} sheets of {len(people)} people in {args.out}")


if __name__ == "__main__":
    main()
