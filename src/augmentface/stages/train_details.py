"""Learned expression-detail maps: per-AU shading, regressed from labelled video frames.

What an AU does to the skin's shading is measured where the mesh cannot follow it, in the
canonical mesh's UV space (:mod:`augmentface.render.details`):

1. each frame's luminance is unwrapped to UV through its fitted landmarks: every texel centre
   lies in one skin triangle of the UV layout with fixed barycentric weights (found once), so
   its place in the frame is those weights applied to the triangle's landmarks, and one
   ``cv2.remap`` samples the frame's log luminance there. A texel counts as seen when its
   triangle faces the camera and its place lies inside the frame;
2. per subject, the mean log luminance of the neutral frames (every AU label below 1,
   :func:`augmentface.stages.synth.is_neutral_face`) is the reference, and each frame's log
   ratio against it, where both saw the texel, is what its expression did to the skin;
3. per texel, ridge least squares on the labels over all subjects' frames:
   ``log ratio ≈ Σ_k (label_k / 5) · map_k + c``, so ``map_k`` is AU k's log ratio at intensity
   5 (the constant ``c`` takes up exposure drift and is not kept). The normal equations are
   summed frame by frame, a shared ``P x P`` Gram (P = AUs + 1) less, per texel, the terms of
   the frames that did not see it, and a ``P x texels`` right-hand side, so frames are
   streamed: one decoded frame is held at a time.

Ratios are of coded luminance, as the detail layer applies them. Texels seen in fewer than
``min_frames`` frames are left at 0. The maps are saved with the face model id and refused by
another face model (:func:`augmentface.render.details.load_detail_maps`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from augmentface.datasets.frames import read_frame
from augmentface.errors import RowError, UsageError
from augmentface.face.model import N_MESH_VERTICES, FaceModel
from augmentface.render.details import (
    INTENSITY_E,
    DetailMaps,
    sample_points,
    save_detail_maps,
    uv_texels,
)
from augmentface.render.rasterize import signed_areas_px2
from augmentface.stages.common import frame_order, progress
from augmentface.stages.fitted import read_fitted
from augmentface.stages.lineage import face_model_of
from augmentface.stages.schemas import LABEL_AU_COLUMNS
from augmentface.stages.synth import is_neutral_face

#: The largest log ratio a frame contributes: a fold darkens skin by far less than half.
MAX_LOG_RATIO = 0.7
# ITU-R BT.601 luma, as the detail layer measures relief.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class DetailLearnConfig:
    """Settings of ``augmentface synth-au train-details``.

    Attributes
    ----------
    fits : a fitted, labelled manifest (``augmentface import`` then ``fit3dmm``).
    out : the ``.npz`` to write.
    size : texels on a side of the maps (a power of two; 128 suits faces of 150–300 px).
    ridge : ridge penalty on each map, in frames at intensity 5 (the constant is free).
    min_frames : texels seen in fewer frames keep 0.
    unsteady : texels whose log luminance varies between a subject's neutral frames (SD,
        pooled over subjects) more than this many times its median over the face keep 0:
        the registration there is unsteady (hair, the face outline, lids, lips).
    """

    fits: Path
    out: Path
    size: int = 128
    ridge: float = 1.0
    min_frames: int = 20
    unsteady: float = 3.0

    def __post_init__(self) -> None:
        if self.size < 16 or self.size & (self.size - 1):
            raise UsageError(f"--size must be a power of two of at least 16, got {self.size}")
        if self.ridge < 0 or self.min_frames < 1 or self.unsteady <= 0:
            raise UsageError("--ridge must be >= 0, --min-frames >= 1, --unsteady > 0")


@dataclass(frozen=True)
class LearnedDetails:
    """What training made: the maps and how much data they rest on."""

    maps: DetailMaps
    frames: int  # frames in the regression
    subjects: int
    skipped_subjects: tuple[str, ...]  # no neutral frame: no reference
    failed_frames: int  # unreadable frames, skipped
    coverage: float  # share of the skin's texels with a map value


class UVUnwrap:
    """Samples a frame's log luminance at the texels of the UV layout, through its landmarks."""

    def __init__(self, model: FaceModel, size: int) -> None:
        self.size = size
        self.rows, self.cols, self.tri, self.bary = uv_texels(model, size)
        self.corners = model.triangles[self.tri]  # (M, 3) vertex indices of each texel's triangle
        self._triangles = model.triangles
        self._uv_sign = np.sign(signed_areas_px2(model.mesh.uv, model.triangles))
        area_uv = np.abs(signed_areas_px2(model.mesh.uv, model.triangles))
        self._skin_area_uv = area_uv[model.topology.skin_triangles].sum()
        self._skin = model.topology.skin_triangles

    def __call__(self, image_rgb: np.ndarray, landmarks_px: np.ndarray) -> tuple[np.ndarray, ...]:
        """Log luminance at every texel, and whether the frame saw it.

        Parameters
        ----------
        image_rgb : (H, W, 3) uint8 frame.
        landmarks_px : (478 or 468, 3) its fitted landmarks, image px.

        Returns
        -------
        log_luma : (M,) float32, ``log(1 + luma)`` of the coded values (0 where unseen).
        seen : (M,) bool.
        """
        verts = np.asarray(landmarks_px, dtype=np.float64)[:N_MESH_VERTICES, :2]
        points = np.einsum("mk,mkd->md", self.bary, verts[self.corners]).astype(np.float32)
        area_px = signed_areas_px2(verts, self._triangles)
        # Both the layout and the frame have y down: a triangle facing the camera keeps its sign.
        facing = np.sign(area_px) == self._uv_sign
        h, w = image_rgb.shape[:2]
        inside = (points >= 0).all(axis=1) & (points[:, 0] <= w - 1) & (points[:, 1] <= h - 1)
        seen = facing[self.tri] & inside
        if not seen.any():
            return np.zeros(len(seen), np.float32), seen
        x0, y0 = np.floor(points[seen].min(axis=0)).astype(int)
        x1, y1 = np.ceil(points[seen].max(axis=0)).astype(int) + 2
        luma = image_rgb[y0:y1, x0:x1].astype(np.float32) @ _LUMA
        log_luma = np.log1p(luma)
        # Where a texel spans several pixels, average them first: sampling alone would alias.
        skin_area_px = np.abs(area_px[self._skin & facing]).sum()
        px_per_texel = np.sqrt(skin_area_px / self._skin_area_uv) / self.size
        if px_per_texel > 1.0:
            log_luma = cv2.GaussianBlur(log_luma, (0, 0), 0.5 * px_per_texel)
        values = sample_points(log_luma, points - np.float32([x0, y0]))
        return np.where(seen, values, 0.0).astype(np.float32), seen


class _NormalEquations:
    """Per-texel ridge least squares summed frame by frame (see the module docstring)."""

    def __init__(self, n_features: int, n_texels: int) -> None:
        self.gram = np.zeros((n_features, n_features))
        self.unseen_gram = np.zeros((n_texels, n_features, n_features))
        self.rhs = np.zeros((n_features, n_texels))
        self.frames = np.zeros(n_texels, np.int64)

    def add(self, features: np.ndarray, log_ratio: np.ndarray, valid: np.ndarray) -> None:
        """One frame: (P,) features, (M,) log ratio, (M,) bool where it counts."""
        outer = np.outer(features, features)
        self.gram += outer
        self.unseen_gram[~valid] += outer
        self.rhs += features[:, None] * np.where(valid, log_ratio, 0.0)[None, :]
        self.frames += valid

    def solve(self, ridge: float, min_frames: int) -> np.ndarray:
        """(P - 1, M) coefficients of the labels (the constant dropped); 0 where too few
        frames saw a texel."""
        penalty = np.diag(np.r_[np.full(len(self.gram) - 1, ridge), 0.0])
        learnt = np.flatnonzero(self.frames >= min_frames)
        out = np.zeros((len(self.gram) - 1, len(self.frames)))
        if learnt.size:
            systems = self.gram + penalty - self.unseen_gram[learnt]
            solution = np.linalg.solve(systems, self.rhs[:, learnt].T[..., None])[..., 0]
            out[:, learnt] = solution[:, :-1].T
        return out


def labelled_aus(fits: pd.DataFrame, model: FaceModel) -> tuple[int, ...]:
    """The rig's AUs the manifest labels, in the rig's order: a label column with some value
    of at least 1 (an AU never seen cannot be learned)."""
    out = []
    for au in model.rig.au_numbers:
        column = f"label_AU{au}"
        if column in LABEL_AU_COLUMNS and column in fits and (fits[column] >= 1).any():
            out.append(au)
    return tuple(out)


def learn_detail_maps(config: DetailLearnConfig, quiet: bool = True) -> LearnedDetails:
    """Learn per-AU detail maps from ``config.fits``, write them to ``config.out``.

    Frames are read subject by subject, first the neutral ones (the reference), then all of
    them (the regression), with a progress bar unless ``quiet``.

    Raises
    ------
    UsageError
        The manifest is missing, of another face model, has no labelled AU, or no subject with
        a neutral frame.
    """
    model = face_model_of(config.fits)
    fits = read_fitted(config.fits, model)
    aus = labelled_aus(fits, model)
    if not aus:
        raise UsageError(
            f"{config.fits}: no AU labels (label_AU… columns); import a labelled dataset "
            "(augmentface import disfa …) and fit it"
        )
    columns = [f"label_AU{au}" for au in aus]
    fits = fits[np.isfinite(fits[columns].to_numpy(dtype=float)).all(axis=1)]
    subjects: dict[str, list[Mapping]] = {}
    for row in sorted(fits.to_dict("records"), key=lambda r: frame_order(r["image_path"])):
        subjects.setdefault(str(row["subject_id"]), []).append(row)
    neutral = {s: [r for r in rows if is_neutral_face(r)] for s, rows in subjects.items()}
    used = [s for s in subjects if neutral[s]]
    if not used:
        raise UsageError(
            f"{config.fits}: no subject has a neutral frame (every AU label below 1), so no "
            "reference to measure expressions against"
        )
    jobs = [
        (subject, is_reference, row)
        for subject in used
        for is_reference, rows in ((True, neutral[subject]), (False, subjects[subject]))
        for row in rows
    ]
    unwrap = UVUnwrap(model, config.size)
    equations = _NormalEquations(len(aus) + 1, len(unwrap.rows))
    references = {s: _Reference(len(unwrap.rows)) for s in used}
    failed = frames = 0
    for subject, is_reference, row in progress(jobs, "train-details", len(jobs), quiet):
        try:
            log_luma, seen = unwrap(read_frame(row["image_path"]), row["landmarks_px"])
        except (RowError, OSError):
            failed += 1
            continue
        reference = references[subject]
        if is_reference:
            reference.add(log_luma, seen)
            continue
        features = np.r_[np.asarray([row[c] for c in columns], float) / INTENSITY_E, 1.0]
        # A ratio beyond 2 is no fold but a misregistered edge (hair, a lid, the outline).
        ratio = np.clip(log_luma - reference.mean, -MAX_LOG_RATIO, MAX_LOG_RATIO)
        equations.add(features, ratio, seen & (reference.count > 0))
        frames += 1
    coefficients = equations.solve(config.ridge, config.min_frames)
    # Where a subject's neutral frames disagree the registration is unsteady (hair, the face
    # outline, moving lids): what the regression finds there is noise.
    squares = sum(r.squares for r in references.values())
    dof = sum(np.maximum(r.count - 1, 0) for r in references.values())
    measured = dof > 0
    if measured.any():
        neutral_sd = np.sqrt(squares / np.maximum(dof, 1))
        coefficients[:, neutral_sd > config.unsteady * np.median(neutral_sd[measured])] = 0.0
    maps = np.zeros((len(aus), config.size, config.size), np.float32)
    maps[:, unwrap.rows, unwrap.cols] = coefficients
    learned = DetailMaps(aus, maps, model.model_id, f"learned: {Path(config.fits).name}")
    save_detail_maps(learned, config.out)
    return LearnedDetails(
        learned,
        frames,
        len(used),
        tuple(sorted(set(subjects) - set(used))),
        failed,
        float(np.any(coefficients != 0, axis=0).mean()),
    )


class _Reference:
    """A subject's neutral frames, summed per texel: their mean log luminance and spread."""

    def __init__(self, n_texels: int) -> None:
        self.total = np.zeros(n_texels)
        self.total_squares = np.zeros(n_texels)
        self.count = np.zeros(n_texels)

    def add(self, log_luma: np.ndarray, seen: np.ndarray) -> None:
        """One neutral frame: (M,) log luminance, 0 where unseen, and (M,) bool seen."""
        self.total += log_luma
        self.total_squares += log_luma.astype(np.float64) ** 2
        self.count += seen

    @property
    def mean(self) -> np.ndarray:
        """(M,) mean over the frames that saw each texel (0 where none did)."""
        return self.total / np.maximum(self.count, 1)

    @property
    def squares(self) -> np.ndarray:
        """(M,) sum of squared deviations from the mean."""
        return np.maximum(self.total_squares - self.count * self.mean**2, 0.0)
