"""Measure how much of a person's own shape the rig mistakes for each AU ("identity noise").

On a neutral face every AU's true intensity is 0, yet the fit's signed estimate is not: a
person's nose, lip or chin shape projects onto the AU fields. Its spread over neutral faces,
per AU, is how far an estimate must go before it can be told from identity. fit3dmm removes
only what exceeds it (``FitConfig.removal_threshold``), so that replacing the expression of a
neutral face leaves its nose and chin alone.

Neutral faces are chosen by MediaPipe's blendshapes as in ``calibrate_neutral.py``; photos are
scaled to at most 800 px. Writes the standard deviation of the signed estimate per fitted AU to
``src/augmentface/face/data/identity_au_noise.json``. The removal threshold is applied when
fitting, so the measurement uses the signed estimate, which it does not change.

Usage: python scripts/calibrate_identity_noise.py PHOTO_FOLDER
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from calibrate_neutral import is_neutral
from photos import signed_estimates

from augmentface.atomic import atomic_write_text
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.fitting import FITTED_AUS
from augmentface.face.model import IDENTITY_AU_NOISE_FILE, load_face_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    model = load_face_model()
    estimates, used = [], []
    with FaceLandmarker(DetectConfig()) as landmarker:
        for path, face, signed in signed_estimates(args.folder, landmarker, model):
            if not is_neutral(face.blendshape_names, face.blendshape_scores):
                continue
            used.append(path.name)
            estimates.append(signed)
    spread = np.std(estimates, axis=0)
    result = {f"AU{au}": round(float(s), 3) for au, s in zip(FITTED_AUS, spread, strict=True)}
    atomic_write_text(IDENTITY_AU_NOISE_FILE, json.dumps(result, indent=1) + "\n")
    print(f"{len(used)} neutral faces: {', '.join(used)}\n{result}")


if __name__ == "__main__":
    main()
