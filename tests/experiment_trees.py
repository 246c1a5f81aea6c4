"""A fitted, augmented DISFA-like workdir whose frames carry PLANTED AU labels, for the
``augmentface experiment`` tests and benchmark.

Each subject is one shared photo of a distinct person (one per identity group of deepface's
``face-recognition-pivot.csv``). Its face is fitted once; every frame is then the project's own
render of the rig at the frame's labelled intensities (replace semantics, blended back), so the
label is what the face shows. Frames are stored as small face crops with their landmarks (the
source landmarks plus the rendered displacement, in the crop's pixels), written straight into
``fits.parquet`` (what ``import`` + ``fit3dmm`` would give) and, for the augmented frames, into
``output/labels.parquet`` (what ``synth-au`` + ``render`` + ``blend`` would give).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from augmentface.blend import blend_face
from augmentface.face.fitting import fit_face
from augmentface.imageio import read_image, write_image_atomic
from augmentface.manifest import write_manifest
from augmentface.render.face_render import render_expression
from augmentface.stages.schemas import AU_NAMES, FITS, LABELS

#: One photo per person (distinct identity groups of the deepface pivot table).
PEOPLE: tuple[str, ...] = ("img1.jpg", "img3.jpg", "img18.jpg", "img20.jpg", "img34.jpg",
                           "img38.jpg")  # fmt: skip
#: One photo per person of every identity group (13 people), for larger trees (benchmark).
ALL_PEOPLE: tuple[str, ...] = (*PEOPLE, "img22.jpg", "img13.jpg", "img29.jpg", "img47.jpg",
                               "img16.jpg", "img26.jpg", "img24.jpg")  # fmt: skip
#: The AUs planted independently on every frame (DISFA AUs the rig has).
PLANTED_AUS: tuple[int, ...] = (1, 4, 6, 12, 25, 26)


def _face_crop(
    image: np.ndarray, landmarks: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """A square crop (``size`` px) 1.8x the landmarks' extent, and the landmarks in it."""
    xy = landmarks[:, :2]
    centre = (xy.min(axis=0) + xy.max(axis=0)) / 2
    side = 1.8 * float((xy.max(axis=0) - xy.min(axis=0)).max())
    scale = size / side
    m = np.array(
        [[scale, 0, size / 2 - scale * centre[0]], [0, scale, size / 2 - scale * centre[1]]]
    )
    crop = cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
    )
    out = landmarks.copy()
    out[:, :2] = xy * scale + m[:, 2]
    out[:, 2] *= scale
    return crop, out


def _row(path: Path, subject: str, landmarks: np.ndarray, labels: dict[int, float]) -> dict:
    row: dict = {c.name: None for c in FITS.columns}
    row |= {"image_path": str(path), "face_index": 0, "dataset": "disfa",
            "subject_id": subject, "clip_id": subject, "frame_index": int(path.stem),
            "landmarks_px": landmarks.astype(np.float64), "status": "ok", "error": ""}  # fmt: skip
    for column in FITS.columns:
        if column.name.startswith("label_AU"):
            row[column.name] = float(labels.get(int(column.name[8:]), 0.0))
    row |= dict(zip(("label_valence", "label_arousal"), planted_va(labels), strict=True))
    return row


def planted_va(aus: dict[int, float]) -> tuple[float, float]:
    """Valence and arousal ([-1, 1]) planted as functions of a frame's AUs: valence rises
    with the smile (AU12) and falls with the frown (AU4); arousal rises with the open jaw
    (AU26) and the raised inner brows (AU1)."""
    return (aus[12] - aus[4]) / 5.0, (aus[26] + aus[1]) / 5.0 - 1.0


def planted_workdir(
    root: Path,
    faces_dir: Path,
    landmarker,
    model,
    *,
    frames: int = 30,
    augmented: int = 30,
    size: int = 144,
    seed: int = 0,
    people: tuple[str, ...] = PEOPLE,
) -> Path:
    """Write the workdir ``root`` (``fits.parquet``, ``output/labels.parquet``, frames).

    Parameters
    ----------
    root : the workdir to create.
    faces_dir : the shared photos (deepface's test set).
    landmarker : a :class:`~augmentface.face.detect.FaceLandmarker`.
    model : the face model.
    frames, augmented : real and augmented frames per subject.
    size : side of the stored face crops (px).
    seed : seed of the planted intensities (integers 0–5, independent per AU and frame).

    Returns
    -------
    Path
        ``root``.
    """
    rng = np.random.default_rng(seed)
    fits_rows, label_rows = [], []
    for person in people:
        subject = f"SN{Path(person).stem[3:]:0>3}"
        image = read_image(faces_dir / person)
        factor = min(1.0, 800 / max(image.shape[:2]))
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        face = landmarker.detect(image)[0]
        small, landmarks = _face_crop(image, face.landmarks_px, 2 * size)
        fit = fit_face(landmarks, model)
        for i in range(frames + augmented):
            aus = {au: float(rng.integers(0, 6)) for au in PLANTED_AUS}
            target = model.rig.vector(aus)
            delta = fit.expression_change_px(model.rig.offsets(target))
            rendered = render_expression(small, landmarks, delta, model)
            frame = blend_face(small, rendered.image_rgb, rendered.alpha, rendered.roi)
            moved = landmarks.copy()
            moved[:468] += delta
            crop, crop_landmarks = _face_crop(frame, moved, size)
            real = i < frames
            folder = root / ("frames" if real else "output/images") / subject
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{i:05d}.png"
            write_image_atomic(path, crop)
            if real:
                fits_rows.append(_row(path, subject, crop_landmarks, aus))
            else:  # an augmented frame: keyed on the subject's first real frame, as blend's
                source = fits_rows[-frames]
                row: dict = {c.name: None for c in LABELS.columns}
                row |= {"image_path": source["image_path"], "face_index": 0,
                        "target_id": "_".join(f"AU{a}={v:g}" for a, v in aus.items()),
                        "sample": i, "subject_id": subject, "clip_id": subject,
                        "frame": -1, "output_path": str(path), "kind": "au",
                        "va_class": -1,
                        "emotion_intensity": np.nan, "method": "alpha", "seed": seed,
                        "status": "ok", "error": ""}  # fmt: skip
                row["valence"], row["arousal"] = planted_va(aus)
                for name in AU_NAMES:
                    row[name] = float(aus.get(int(name[2:]), 0.0))
                label_rows.append(row)
    provenance = {"params": {"planted": True}, "seed": seed, "face_model_id": model.model_id}
    write_manifest(root / "fits.parquet", pd.DataFrame(fits_rows), FITS, **provenance)
    write_manifest(root / "output" / "labels.parquet", pd.DataFrame(label_rows), LABELS,
                   **provenance)  # fmt: skip
    return root
