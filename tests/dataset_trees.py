"""Builders of small dataset trees in the published layouts, for tests.

Every builder writes real files (videos with ``cv2.VideoWriter``, PNG/JPEG frames, label files
in the dataset's own format) under a folder the test owns, and returns what it wrote so that a
test can compare an import with the truth. Frames are made from a photo by :func:`make_frames`:
each one is the photo shifted by a different amount, so a decoded frame can be matched to the
frame written even after MJPG compression.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
AFFWILD2_AU_HEADER = (
    "AU1",
    "AU2",
    "AU4",
    "AU6",
    "AU7",
    "AU10",
    "AU12",
    "AU15",
    "AU23",
    "AU24",
    "AU25",
    "AU26",
)
AFFWILD2_EXPR_HEADER = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
FRAME_SIZE = (96, 80)  # width, height: small frames keep the tests fast


def make_frames(
    photo_rgb: np.ndarray, n: int, size: tuple[int, int] = FRAME_SIZE
) -> list[np.ndarray]:
    """``n`` distinct ``(H, W, 3)`` uint8 RGB frames: the photo resized, shifted 9 px more each."""
    base = cv2.resize(photo_rgb, size, interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(np.roll(base, 9 * i, axis=1)) for i in range(n)]


def nearest_frame(decoded: np.ndarray, frames: Sequence[np.ndarray]) -> tuple[int, float]:
    """Index of the written frame closest to ``decoded`` and the mean absolute error to it."""
    errors = [np.abs(decoded.astype(np.int16) - f.astype(np.int16)).mean() for f in frames]
    best = int(np.argmin(errors))
    return best, float(errors[best])


def write_avi(path: Path, frames: Sequence[np.ndarray], fps: float = 20.0) -> Path:
    """Write RGB frames as an MJPG AVI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), path
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return path


def write_rgb(path: Path, image: np.ndarray) -> Path:
    """Write an RGB array as PNG or JPEG (by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])), path
    return path


def disfa_intensities(n_frames: int, seed: int = 0) -> np.ndarray:
    """``(n_frames, 12)`` whole intensities 0–5 in DISFA AU order, varying frame to frame."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 6, size=(n_frames, len(DISFA_AUS))).astype(float)


def build_disfa(
    root: Path,
    frames: Sequence[np.ndarray],
    *,
    subject: str = "SN001",
    intensities: np.ndarray | None = None,
    camera: str = "left",
) -> tuple[Path, np.ndarray]:
    """One DISFA subject: the camera's video and its 12 AU files.

    ``intensities`` is ``(n_label_frames, 12)``; its length may differ from the video's to
    build a mismatched subject. Returns the video path and the intensities written.
    """
    if intensities is None:
        intensities = disfa_intensities(len(frames))
    side = camera.capitalize()
    video = write_avi(root / f"Videos_{side}Camera" / f"{side}Video{subject}_comp.avi", frames)
    folder = root / "ActionUnit_Labels" / subject
    folder.mkdir(parents=True, exist_ok=True)
    for k, au in enumerate(DISFA_AUS):
        lines = "".join(f"{f},{int(v)}\n" for f, v in enumerate(intensities[:, k], 1))
        (folder / f"{subject}_au{au}.txt").write_text(lines)
    return video, intensities


def build_afew_va(
    root: Path,
    frames: Sequence[np.ndarray],
    *,
    clip: str = "001",
    va: np.ndarray | None = None,
    skip_entries: Sequence[int] = (),
) -> np.ndarray:
    """One AFEW-VA clip: PNG frames and ``NNN/NNN.json``; returns the (n, 2) values written."""
    if va is None:
        va = np.stack([np.arange(len(frames)) - 3, 10 - 2 * np.arange(len(frames))], axis=1)
    folder = root / clip
    entries = {}
    for i, frame in enumerate(frames):
        write_rgb(folder / f"{i:05d}.png", frame)
        if i not in skip_entries:
            landmarks = [[float(x), float(x + 1)] for x in range(68)]
            entries[f"{i:05d}"] = {
                "valence": int(va[i, 0]),
                "arousal": int(va[i, 1]),
                "landmarks": landmarks,
            }
    (folder / f"{clip}.json").write_text(json.dumps({"actor": "x", "frames": entries}))
    return va


def build_affwild(
    root: Path,
    frames: Sequence[np.ndarray],
    *,
    name: str = "vid1",
    split: str = "train",
    va: np.ndarray | None = None,
) -> tuple[Path, np.ndarray | None]:
    """One Aff-Wild video with (train) annotation files; ``va`` may have another length."""
    video = write_avi(root / "videos" / split / f"{name}.avi", frames)
    if split == "test":
        return video, None
    if va is None:
        t = np.linspace(-0.9, 0.9, len(frames))
        va = np.stack([t, -t], axis=1)
    for k, dimension in enumerate(("valence", "arousal")):
        path = root / "annotations" / split / dimension / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{v:.4f}\n" for v in va[:, k]))
    return video, va


def build_affwild2(
    root: Path,
    frames: Sequence[np.ndarray],
    *,
    video: str = "10-60-1280x720_left",
    va_lines: Sequence[str] | None = None,
    au_lines: Sequence[str] | None = None,
    expr_lines: Sequence[str] | None = None,
    split: str = "Train_Set",
    au_split: str | None = None,
) -> list[Path]:
    """One Aff-Wild2 video: ``cropped_aligned`` JPEG frames and the label files given."""
    paths = [
        write_rgb(root / "cropped_aligned" / video / f"{i:05d}.jpg", f)
        for i, f in enumerate(frames, 1)
    ]
    files = {
        "VA_Estimation_Challenge": ("valence,arousal", va_lines, split),
        "AU_Detection_Challenge": (",".join(AFFWILD2_AU_HEADER), au_lines, au_split or split),
        "EXPR_Recognition_Challenge": (AFFWILD2_EXPR_HEADER, expr_lines, split),
    }
    for folder, (header, lines, split_folder) in files.items():
        if lines is not None:
            path = root / folder / split_folder / f"{video}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join([header, *lines]) + "\n")
    return paths


def build_folder(
    root: Path, images: dict[str, np.ndarray], csv: pd.DataFrame | None = None
) -> None:
    """Images at the given relative paths, and ``labels.csv`` when ``csv`` is given."""
    for relative, image in images.items():
        write_rgb(root / relative, image)
    if csv is not None:
        csv.to_csv(root / "labels.csv", index=False)


def augmented_labels(
    out: Path,
    images: dict[str, list[np.ndarray]],
    *,
    kind: str,
    seed: int = 0,
    suffix: str = ".png",
) -> pd.DataFrame:
    """Rows as the blend stage writes them: one augmented image per row, per subject.

    ``images`` maps subject id -> frames to save as the "augmented" outputs. AU rows get
    intensities 0–5 in 0.5 steps (so rounding is exercised), VA rows valence/arousal in
    [−1, 1], emotion rows an emotion and AUs.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for subject, frames in images.items():
        for i, frame in enumerate(frames):
            path = write_rgb(out / f"{subject}_t{i}_s0{suffix}", frame)
            row = {
                "output_path": str(path),
                "subject_id": subject,
                "clip_id": subject,
                "image_path": f"/src/{subject}.png",
                "face_index": 0,
                "target_id": f"t{i:02d}",
                "sample": 0,
                "kind": kind,
            }
            aus = rng.integers(0, 11, size=len(DISFA_AUS)) / 2.0
            row.update(
                {
                    f"AU{n}": (v if kind != "va" else np.nan)
                    for n, v in zip(DISFA_AUS, aus, strict=True)
                }
            )
            va = np.round(rng.uniform(-1, 1, size=2), 2)
            row["valence"], row["arousal"] = va if kind == "va" else (np.nan, np.nan)
            row["emotion"] = ["happiness", "anger", None][i % 3] if kind == "emotion" else None
            row["ibug68_px"] = np.column_stack([np.arange(68.0), np.arange(68.0) + 0.5])
            rows.append(row)
    return pd.DataFrame(rows)
