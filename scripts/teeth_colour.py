"""How bright lit teeth are against the cheeks, and how much of a smile's opening is dark: real
photos against our renders. The mouth layer's teeth colour and buccal corridors come from it.

Real: every photo whose first face smiles with parted lips (MediaPipe mouthSmile >= 0.5 on both
sides and jawOpen >= 0.03). Ours: the near-neutral photos (mouthSmileLeft < 0.15) rendered at
the happiness prototype (details on, as ``render`` makes them) and re-detected. In each, the
opening is the inner-lip polygon eroded by a pixel and the skin the cheek vertices beside the
nose (``render.skin.CHEEK_VERTICES``):

- the teeth are the opening's brightest 40 %; the median ratio of their luminance to the
  cheeks' over the real photos is ``render.mouth.TEETH_SKIN_LUMA_RATIO``, their median chroma
  (RGB / luma) ``_TEETH_CHROMA``; the lit teeth of our renders
  (``TEETH_LIT_SKIN_LUMA_RATIO``) are set so that the same statistic of ours reads the same;
- the dark share is the share of the opening below 0.45 of the cheeks' luminance: the mouth's
  corners (the buccal corridors) and the lines between the teeth and the lips
  (``render.mouth._UPPER_TEETH_LATERAL`` was set on it).

Usage: python scripts/teeth_colour.py PHOTO_FOLDER
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from photos import first_faces, render_aus

from augmentface.expression.emotion_prior import emotion_aus
from augmentface.face import topology as topo
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.model import load_face_model
from augmentface.metrics.measure import nearest_face
from augmentface.render.skin import cheek_skin_rgb, luma

SMILE, JAW_OPEN, NEUTRAL = 0.5, 0.03, 0.15
DARK = 0.45


def opening_pixels(image: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray | None:
    """(P, 3) RGB of the opening between the inner lips, eroded by a pixel (None under 30)."""
    mask = np.zeros(image.shape[:2], np.uint8)
    polygon = np.round(landmarks_px[list(topo.LIPS_INNER), :2]).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 1)
    pixels = image[cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)].astype(np.float64)
    return pixels if len(pixels) >= 30 else None


def teeth_rgb(pixels: np.ndarray) -> np.ndarray:
    """Median colour of the brightest 40 % of the opening."""
    brightness = luma(pixels)
    return np.median(pixels[brightness >= np.percentile(brightness, 60)], axis=0)


def summary(name: str, values: list[float]) -> str:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return f"{name} median {median:.2f} (interquartile {q1:.2f}-{q3:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    model = load_face_model()
    happiness = emotion_aus("happiness")
    groups: dict[str, list[tuple[float, float]]] = {"real smiles": [], "ours": []}
    chromas = []
    with FaceLandmarker(DetectConfig()) as landmarker:
        for _, image, face in first_faces(args.folder, landmarker):
            scores = dict(zip(face.blendshape_names, face.blendshape_scores, strict=True))
            smile = min(scores["mouthSmileLeft"], scores["mouthSmileRight"])
            if smile >= SMILE and scores["jawOpen"] >= JAW_OPEN:
                group, shown, landmarks_px = "real smiles", image, face.landmarks_px
            elif scores["mouthSmileLeft"] < NEUTRAL:
                shown = render_aus(image, face, happiness, model, details=True)
                again = nearest_face(landmarker.detect(shown), face.landmarks_px)
                if again is None:
                    continue
                group, landmarks_px = "ours", again.landmarks_px
            else:
                continue
            pixels = opening_pixels(shown, landmarks_px)
            if pixels is None:
                continue
            skin = luma(cheek_skin_rgb(shown, landmarks_px))
            teeth = teeth_rgb(pixels)
            groups[group].append((luma(teeth) / skin, float((luma(pixels) < DARK * skin).mean())))
            if group == "real smiles":
                chromas.append(teeth / luma(teeth))
    for name, values in groups.items():
        ratios, dark = zip(*values, strict=True)
        print(f"{name:12s} n={len(values):2d}  {summary('teeth/skin luminance', ratios)}  "
              f"{summary('dark share', dark)}")  # fmt: skip
    print(f"real teeth chroma median {np.round(np.median(chromas, axis=0), 2)}")


if __name__ == "__main__":
    main()
