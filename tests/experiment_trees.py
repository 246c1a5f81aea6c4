"""Dataset trees in the published layouts whose frames carry PLANTED labels, taken through the
pipeline, for the ``augmentface experiment`` tests and benchmark.

Each subject is one shared photo of a distinct person (one per identity group of deepface's
``face-recognition-pivot.csv``). Its face is fitted once; every frame is then the project's own
render of the rig at the frame's planted AU intensities (replace semantics, blended back), so
the label is what the face shows. Frame 0 of every subject is neutral (every AU 0).

:func:`planted_workdir` writes the frames as DISFA does (one MJPG video per subject and one
label file per AU) and runs ``augmentface import disfa``, ``fit3dmm``, then ``synth-au --csv``
(the planted targets of the augmented frames, on each subject's neutral frame, as Kollias et
al. take neutral sources), ``render`` and ``blend``: the workdir a user would have.
:func:`planted_va_workdir` writes the same frames as AFEW-VA clips, valence and arousal planted
as functions of the AUs (:func:`planted_va`), and runs ``import afew-va`` and ``fit3dmm``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from typer.testing import CliRunner

from augmentface.blend import blend_face
from augmentface.cli import app
from augmentface.face.fitting import fit_face
from augmentface.imageio import read_image
from augmentface.render.face_render import render_expression
from tests.dataset_trees import DISFA_AUS, build_afew_va, build_disfa

#: One photo per person (distinct identity groups of the deepface pivot table).
PEOPLE: tuple[str, ...] = ("img1.jpg", "img3.jpg", "img18.jpg", "img20.jpg", "img34.jpg",
                           "img38.jpg")  # fmt: skip
#: One photo per person of every identity group (13 people), for larger trees (benchmark).
ALL_PEOPLE: tuple[str, ...] = (*PEOPLE, "img22.jpg", "img13.jpg", "img29.jpg", "img47.jpg",
                               "img16.jpg", "img26.jpg", "img24.jpg")  # fmt: skip
#: The AUs planted on every frame (DISFA AUs the rig has); the others stay 0.
PLANTED_AUS: tuple[int, ...] = (1, 4, 6, 12, 25, 26)


@dataclass(frozen=True)
class PlantedSubject:
    """One person's frames: (F, S, S, 3) uint8 RGB renders and their (F,) AU dicts."""

    subject: str
    frames: np.ndarray
    aus: tuple[dict[int, float], ...]


def planted_aus(rng: np.random.Generator) -> dict[int, float]:
    """Whole intensities 0–5 for :data:`PLANTED_AUS`, independent except where FACS ties them:
    the rig's jaw drop (AU26) parts the lips, and FACS codes parted lips as AU25 (25+26), so a
    frame with AU26 = k is coded AU25 >= k. Without this, a frame would show its lips apart
    under the label AU25 = 0: a label a coder would dispute."""
    aus = {au: float(rng.integers(0, 6)) for au in PLANTED_AUS}
    aus[25] = max(aus[25], aus[26])
    return aus


def planted_va(aus: dict[int, float]) -> tuple[float, float]:
    """Valence and arousal ([-1, 1]) planted as functions of a frame's AUs: valence rises
    with the smile (AU12) and falls with the frown (AU4); arousal rises with the open jaw
    (AU26) and the raised inner brows (AU1)."""
    return (aus[12] - aus[4]) / 5.0, (aus[26] + aus[1]) / 5.0 - 1.0


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


def planted_subjects(
    faces_dir: Path,
    landmarker,
    model,
    *,
    frames: int = 30,
    size: int = 144,
    seed: int = 0,
    people: tuple[str, ...] = PEOPLE,
) -> list[PlantedSubject]:
    """Render every person's ``frames`` frames (``size`` px squares around the face), frame 0
    neutral, the others at :func:`planted_aus` drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    subjects = []
    for person in people:
        image = read_image(faces_dir / person)
        factor = min(1.0, 800 / max(image.shape[:2]))
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        face = landmarker.detect(image)[0]
        small, landmarks = _face_crop(image, face.landmarks_px, 2 * size)
        fit = fit_face(landmarks, model)
        rendered_frames, labels = [], []
        for i in range(frames):
            aus = {au: 0.0 for au in PLANTED_AUS} if i == 0 else planted_aus(rng)
            delta = fit.expression_change_px(model.rig.offsets(model.rig.vector(aus)))
            rendered = render_expression(small, landmarks, delta, model)
            frame = blend_face(small, rendered.image_rgb, rendered.alpha, rendered.roi)
            moved = landmarks.copy()
            moved[:468] += delta
            rendered_frames.append(_face_crop(frame, moved, size)[0])
            labels.append(aus)
        subject = f"SN{Path(person).stem[3:]:0>3}"
        subjects.append(PlantedSubject(subject, np.stack(rendered_frames), tuple(labels)))
    return subjects


def _cli(timings: dict[str, float] | None, *args: object) -> None:
    """Run ``augmentface ARGS`` in this process; its wall time (s) goes to ``timings`` under
    the command's name."""
    start = time.perf_counter()
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exit_code != 0:
        raise RuntimeError(f"augmentface {' '.join(map(str, args))}: {result.output}")
    if timings is not None:
        timings[str(args[0])] = time.perf_counter() - start


def planted_workdir(
    root: Path,
    subjects: list[PlantedSubject],
    *,
    augmented: int = 30,
    seed: int = 0,
    timings: dict[str, float] | None = None,
) -> Path:
    """A DISFA root of ``subjects`` under ``root/DISFA`` and the workdir ``root/augment``
    that ``import disfa``, ``fit3dmm``, ``synth-au --csv``, ``render`` and ``blend`` make of it.

    ``augmented`` targets (:func:`planted_aus`, drawn from ``seed + 1``) are rendered on every
    subject's neutral frame. Each command's wall time (s) goes to ``timings`` when given.
    Returns the workdir.
    """
    disfa = root / "DISFA"
    for s in subjects:
        intensities = np.array([[a.get(au, 0.0) for au in DISFA_AUS] for a in s.aus])
        build_disfa(disfa, list(s.frames), subject=s.subject, intensities=intensities)
    rng = np.random.default_rng(seed + 1)
    targets = pd.DataFrame([planted_aus(rng) for _ in range(augmented)])
    targets.columns = [f"AU{au}" for au in targets.columns]
    targets.to_csv(root / "targets.csv", index=False)
    workdir = root / "augment"
    _cli(timings, "import", "disfa", disfa, "-w", workdir, "-q")
    _cli(timings, "fit3dmm", "-w", workdir, "-q")
    if augmented:
        _cli(timings, "synth-au", "--csv", root / "targets.csv", "-w", workdir, "-q")
        _cli(timings, "render", "-w", workdir, "-q")
        _cli(timings, "blend", "-w", workdir, "-q")
    return workdir


def planted_va_workdir(root: Path, subjects: list[PlantedSubject]) -> Path:
    """The same frames as AFEW-VA clips (one per subject, valence and arousal from
    :func:`planted_va` on AFEW-VA's -10…10 scale) under ``root/AFEW-VA``, and the workdir
    ``root/augment-va`` that ``import afew-va`` and ``fit3dmm`` make of it. Returns the
    workdir."""
    afew = root / "AFEW-VA"
    for k, s in enumerate(subjects, 1):
        va = np.array([planted_va(a) for a in s.aus]) * 10
        build_afew_va(afew, list(s.frames), clip=f"{k:03d}", va=np.rint(va))
    workdir = root / "augment-va"
    _cli(None, "import", "afew-va", afew, "-w", workdir, "-q")
    _cli(None, "fit3dmm", "-w", workdir, "-q")
    return workdir
