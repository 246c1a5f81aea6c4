"""How large the rig's AUs are against real expressions: the fit's signed estimates on photos.

The rig's amplitudes at intensity E (5) are estimates (``expression/au_rig.py``). A fit reads a
real face through the same fields, as the landmarker sees them, so a real expression's signed
estimate says how many of the rig's intensity units it takes to look like it: a FACS "E"
expression that reads far above 5 means the rig's E is too small. Only AU12 has enough strong
examples among the shared photos (broad smiles, MediaPipe mouthSmile >= 0.85); its amplitude was
set from this script's AU12 line. The other lines are printed for reference: the photos hold no
comparably strong brow, lid or lip movements, so their upper percentiles say little about E.

Photos are scaled to at most 800 px, as in the other calibration scripts (``photos.py``).

Usage: python scripts/au_amplitudes.py PHOTO_FOLDER
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from photos import signed_estimates

from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.fitting import FITTED_AUS
from augmentface.face.model import load_face_model

BROAD_SMILE = 0.85


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    model = load_face_model()
    estimates, smiles = [], []
    with FaceLandmarker(DetectConfig()) as landmarker:
        for _, face, signed in signed_estimates(args.folder, landmarker, model):
            scores = dict(zip(face.blendshape_names, face.blendshape_scores, strict=True))
            smiles.append(min(scores["mouthSmileLeft"], scores["mouthSmileRight"]))
            estimates.append(signed)
    estimates, smiles = np.array(estimates), np.array(smiles)
    broad = estimates[smiles >= BROAD_SMILE, FITTED_AUS.index(12)]
    print(f"{len(estimates)} faces; signed estimates, 90th percentile and maximum per AU:")
    for k, au in enumerate(FITTED_AUS):
        print(f"  AU{au}: {np.percentile(estimates[:, k], 90):5.2f} {estimates[:, k].max():5.2f}")
    print(
        f"AU12 on the {len(broad)} broad smiles (mouthSmile >= {BROAD_SMILE}): "
        f"min {broad.min():.2f}, median {np.median(broad):.2f}, max {broad.max():.2f}"
    )


if __name__ == "__main__":
    main()
