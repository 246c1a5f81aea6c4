"""How bright lit teeth are against the cheeks in real photos: the mouth layer's teeth colour.

For every photo whose first face smiles with parted lips (MediaPipe mouthSmile >= 0.5 on both
sides and jawOpen >= 0.03), the teeth are the brightest 40 % of the inner-lip opening (eroded by
a pixel) and the skin the cheek vertices beside the nose (``render.skin.CHEEK_VERTICES``). The
median ratio of their luminances is ``render.mouth.TEETH_SKIN_LUMA_RATIO``; the teeth's median
chroma (RGB / luma) is ``_TEETH_CHROMA``.

Usage: python scripts/teeth_colour.py PHOTO_FOLDER
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from photos import first_faces

from augmentface.face import topology as topo
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.render.skin import cheek_skin_rgb, luma

SMILE, JAW_OPEN = 0.5, 0.03


def teeth_rgb(image: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray | None:
    """Median colour of the brightest 40 % of the opening between the inner lips."""
    mask = np.zeros(image.shape[:2], np.uint8)
    polygon = np.round(landmarks_px[list(topo.LIPS_INNER), :2]).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 1)
    pixels = image[cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)].astype(np.float64)
    if len(pixels) < 30:
        return None
    brightness = luma(pixels)
    return np.median(pixels[brightness >= np.percentile(brightness, 60)], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    ratios, chromas = [], []
    with FaceLandmarker(DetectConfig()) as landmarker:
        for path, image, face in first_faces(args.folder, landmarker):
            scores = dict(zip(face.blendshape_names, face.blendshape_scores, strict=True))
            smile = min(scores["mouthSmileLeft"], scores["mouthSmileRight"])
            if smile < SMILE or scores["jawOpen"] < JAW_OPEN:
                continue
            teeth = teeth_rgb(image, face.landmarks_px)
            if teeth is None:
                continue
            skin = cheek_skin_rgb(image, face.landmarks_px)
            ratios.append(luma(teeth) / luma(skin))
            chromas.append(teeth / luma(teeth))
            print(f"{path.name}: teeth {np.round(teeth)}, skin {np.round(skin)}, "
                  f"ratio {ratios[-1]:.2f}")  # fmt: skip
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    print(f"{len(ratios)} photos: teeth/skin luminance median {median:.2f} "
          f"(interquartile {q1:.2f}-{q3:.2f}); teeth chroma median "
          f"{np.round(np.median(chromas, axis=0), 2)}")  # fmt: skip


if __name__ == "__main__":
    main()
