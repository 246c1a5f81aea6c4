"""Measure MediaPipe's neutral face: the mean offset of near-neutral faces from the canonical mesh.

MediaPipe's landmarker does not place a relaxed face's landmarks on its own canonical mesh: on
real neutral faces the eyes sit higher and open wider, the lips are thinner and the mouth wider
(median offset ~2.5 mm). Fitting AUs against the raw canonical mesh therefore reads every neutral
face as AU5 + AU17 + AU23 + AU24. This script measures the offset on a folder of photos and
writes ``src/augmentface/face/data/neutral_offsets_model_mm.npy`` (468 × 3, mm, model frame,
left-right symmetric), which :mod:`augmentface.face.model` adds to the canonical mesh.

A face counts as near-neutral when MediaPipe's own blendshapes say so: mouthSmile, jawOpen,
eyeBlink, browDown, browInnerUp below 0.15 / 0.1 / 0.5 / 0.5 / 0.5. Use --every 2 to
calibrate on every second such face and keep the rest for evaluation.

Usage: python scripts/calibrate_neutral.py PHOTO_FOLDER [--every N] [--out PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from augmentface.atomic import atomic_path
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.face.fitting import rigidity_weights, similarity_transform
from augmentface.face.model import load_face_model
from augmentface.frames import image_to_model
from augmentface.imageio import list_images, read_image
from augmentface.stages.synth import NEUTRAL_BLENDSHAPE_LIMITS as LIMITS

OUT = Path(__file__).resolve().parents[1] / "src/augmentface/face/data/neutral_offsets_model_mm.npy"


def is_neutral(names, scores) -> bool:
    values = dict(zip(names, scores, strict=True))
    return all(values[k] < limit for k, limit in LIMITS.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--every", type=int, default=1, help="use every N-th neutral face")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    model = load_face_model()
    canonical = model.canonical_closed_verts_model_mm
    weights = rigidity_weights(model)
    offsets, used = [], []
    with FaceLandmarker(DetectConfig()) as landmarker:
        for path in list_images([args.folder]):
            faces = landmarker.detect(read_image(path))
            if not faces or not is_neutral(faces[0].blendshape_names, faces[0].blendshape_scores):
                continue
            used.append(path.name)
            points = faces[0].landmarks_px[:468].astype(np.float64)
            rotation, scale, translation = similarity_transform(canonical, points, weights)
            offsets.append(image_to_model(points, rotation, scale, translation) - canonical)
    offsets = offsets[:: args.every]
    used = used[:: args.every]
    mean = np.mean(offsets, axis=0)
    mirror = model.topology.mirror
    symmetric = 0.5 * (mean + mean[mirror] * np.array([-1.0, 1.0, 1.0]))
    with atomic_path(args.out) as tmp, open(tmp, "wb") as handle:
        np.save(handle, symmetric.astype(np.float32))
    print(f"{len(used)} neutral faces: {', '.join(used)}")
    print(f"median offset {np.median(np.linalg.norm(symmetric, axis=1)):.2f} mm -> {args.out}")


if __name__ == "__main__":
    main()
