"""A DISFA-like fitted, labelled manifest: 12 AUs coded 0–5 on every frame of a few subjects.

What it imitates of DISFA (Mavadati et al. 2013, 27 subjects × 4845 frames):

- most frames show no AU at all (``neutral_share``, default 55 %);
- AUs come in the patterns of spontaneous expressions, so they co-occur as in the data set:
  AU6 with AU12 (smiles), AU1 with AU2 (brow raises), AU25 with AU26 (talking, laughing),
  AU1 + AU4 + AU15 (sadness), AU9 + AU4 (disgust), …;
- intensities are integers 0–5 from a skewed distribution (low levels far more common);
- each subject has an identity (a face-size scale plus random smooth offsets), a gain per AU
  (people move more or less), and a resting expression the fitter reads as expression;
- a frame's true intensity is its integer label plus uniform noise within the label's range;
  the deformation is the rig's offsets of those intensities times the subject's gains, plus
  landmark noise.

The fitted columns follow fit3dmm's contract: ``expression_offsets_model_mm`` is the rig at the
fitted (clipped 0–5) intensities, resting expression included; ``identity_offsets_model_mm``
holds everything else, so ``mean + identity + expression`` is the frame's shape.

:func:`disfa_like_chunks` yields the same frames in blocks of arrays, for DISFA-sized sets
(130k frames) that would not fit comfortably as a DataFrame of array cells.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from augmentface.errors import UsageError
from augmentface.expression.au_rig import INTENSITY_MAX
from augmentface.expression.learned.labels import DISFA_AUS, label_column
from augmentface.face.model import N_MESH_VERTICES, FaceModel

#: DISFA's size: 27 subjects × 4845 frames = 130,815 frames.
DISFA_SUBJECTS = 27
DISFA_FRAMES_PER_SUBJECT = 4845

#: Expression patterns: (weight, {AU: (probability in the pattern, intensity relative to the
#: pattern's level)}), after the EMFACS prototypes and DISFA's co-occurrence statistics.
_PATTERNS: tuple[tuple[float, dict[int, tuple[float, float]]], ...] = (
    (0.30, {12: (1.0, 1.0), 6: (0.8, 0.8), 25: (0.4, 0.6)}),  # smile
    (0.06, {12: (1.0, 1.0), 6: (1.0, 0.9), 25: (1.0, 0.9), 26: (0.8, 0.8)}),  # laugh
    (0.22, {25: (1.0, 1.0), 26: (0.6, 0.7)}),  # talking
    (0.10, {1: (1.0, 1.0), 2: (0.9, 0.9), 5: (0.4, 0.7), 25: (0.5, 0.7), 26: (0.4, 0.7)}),
    (0.12, {4: (1.0, 1.0), 17: (0.3, 0.6), 9: (0.15, 0.5)}),  # frown
    (0.08, {1: (0.8, 0.7), 4: (0.7, 0.8), 15: (1.0, 1.0), 17: (0.6, 0.7)}),  # sadness
    (0.06, {9: (1.0, 1.0), 4: (0.5, 0.6), 17: (0.4, 0.6), 15: (0.3, 0.5)}),  # disgust
    (0.03, {1: (1.0, 1.0), 2: (0.8, 0.8), 4: (0.8, 0.8), 5: (0.7, 0.8), 20: (1.0, 0.9)}),
    (0.03, {20: (1.0, 1.0)}),  # lip stretch
)
#: Probability of each pattern level 1–5: low intensities dominate, as in DISFA.
_LEVEL_P = np.array([0.35, 0.30, 0.20, 0.10, 0.05])
#: Width (mm) of the smooth identity bumps.
_BUMP_SIGMA_MM = 30.0


class SimulationError(UsageError):
    """Simulation settings out of range."""


@dataclass(frozen=True)
class DisfaLikeConfig:
    """Size and statistics of a simulated data set.

    Attributes
    ----------
    n_subjects, frames_per_subject : int
        Subjects ``SN001``… and frames of each (DISFA: 27 × 4845).
    seed : int
        The same seed gives the same frames, in either form.
    neutral_share : float
        Share of frames with every AU at 0.
    second_pattern_share : float
        Share of expressive frames mixing in a second pattern.
    gain_sd : float
        SD of each subject's log gain per AU.
    scale_sd : float
        SD of the subject's face size (scales the identity and every AU).
    identity_mm : float
        SD of the amplitude of the 8 smooth identity bumps, mm.
    resting_max : float
        Largest resting intensity of a subject's 2 resting AUs.
    landmark_noise_mm : float
        SD of the per-vertex, per-coordinate landmark noise, mm.
    chunk_rows : int
        Frames per block of :func:`disfa_like_chunks`.
    """

    n_subjects: int = 12
    frames_per_subject: int = 250
    seed: int = 0
    neutral_share: float = 0.55
    second_pattern_share: float = 0.2
    gain_sd: float = 0.15
    scale_sd: float = 0.06
    identity_mm: float = 2.0
    resting_max: float = 0.6
    landmark_noise_mm: float = 0.15
    chunk_rows: int = 8192

    def __post_init__(self) -> None:
        for name in ("n_subjects", "frames_per_subject", "chunk_rows"):
            if getattr(self, name) < 1:
                raise SimulationError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("neutral_share", "second_pattern_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SimulationError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    @property
    def n_frames(self) -> int:
        return self.n_subjects * self.frames_per_subject


@dataclass(frozen=True)
class DisfaLikeChunk:
    """A block of simulated frames of one subject (a ``LabelledChunk`` of the learned models).

    Attributes
    ----------
    subject_ids : (n,) str
    frame_numbers : (n,) int
    labels : (n, 12) float32, FACS 0–5, in the order of ``DISFA_AUS``
    deformations_model_mm : (n, 468, 3) float32, mm, from the subject's neutral (true)
    identity_offsets_model_mm : (n, 468, 3) float32, mm, as fitted
    expression_offsets_model_mm : (n, 468, 3) float32, mm, as fitted
    au_intensities : (n, K_rig) float32, fitted, rig order
    """

    subject_ids: np.ndarray
    frame_numbers: np.ndarray
    labels: np.ndarray
    deformations_model_mm: np.ndarray
    identity_offsets_model_mm: np.ndarray
    expression_offsets_model_mm: np.ndarray
    au_intensities: np.ndarray


@dataclass(frozen=True)
class _Subject:
    name: str
    identity_model_mm: np.ndarray  # (468, 3)
    gains: np.ndarray  # (12,) per DISFA AU
    resting: np.ndarray  # (K_rig,) resting intensities


def _subject(model: FaceModel, config: DisfaLikeConfig, index: int) -> _Subject:
    rng = np.random.default_rng([config.seed, 0, index])
    verts = model.mean_verts_model_mm
    scale = 1.0 + rng.normal(0.0, config.scale_sd)
    identity = (scale - 1.0) * (verts - verts.mean(axis=0))
    for centre in rng.choice(N_MESH_VERTICES, size=8, replace=False):
        d2 = np.sum((verts - verts[centre]) ** 2, axis=1)
        amplitude = rng.normal(0.0, config.identity_mm, size=3)
        identity += np.exp(-d2 / (2 * _BUMP_SIGMA_MM**2))[:, None] * amplitude
    gains = scale * np.exp(rng.normal(0.0, config.gain_sd, size=len(DISFA_AUS)))
    resting = np.zeros(len(model.rig.au_numbers))
    for au in rng.choice(DISFA_AUS, size=2, replace=False):
        resting[model.rig.au_numbers.index(int(au))] = rng.uniform(0.0, config.resting_max)
    return _Subject(f"SN{index + 1:03d}", identity, gains, resting)


def _labels(rng: np.random.Generator, n: int, config: DisfaLikeConfig) -> np.ndarray:
    """(n, 12) integer intensities 0–5 from the expression patterns."""
    labels = np.zeros((n, len(DISFA_AUS)))
    weights = np.array([w for w, _ in _PATTERNS])
    expressive = rng.random(n) >= config.neutral_share
    for take in (expressive, expressive & (rng.random(n) < config.second_pattern_share)):
        pattern = rng.choice(len(_PATTERNS), size=n, p=weights / weights.sum())
        level = rng.choice(np.arange(1, 6), size=n, p=_LEVEL_P)
        for p, (_, aus) in enumerate(_PATTERNS):
            rows = take & (pattern == p)
            for au, (probability, relative) in aus.items():
                on = rows & (rng.random(n) < probability)
                value = np.rint(level * relative + rng.normal(0.0, 0.4, size=n))
                # The pattern's defining AU (relative 1) is always visible when on.
                value = np.clip(value, 1.0 if relative == 1.0 else 0.0, INTENSITY_MAX)
                col = DISFA_AUS.index(au)
                labels[on, col] = np.maximum(labels[on, col], value[on])
    return labels


def _chunk(
    model: FaceModel, config: DisfaLikeConfig, subject: _Subject, index: int, block: int
) -> DisfaLikeChunk:
    start = block * config.chunk_rows
    n = min(config.chunk_rows, config.frames_per_subject - start)
    rng = np.random.default_rng([config.seed, 1, index, block])
    labels = _labels(rng, n, config)
    # A label stands for a range of intensities: k for [k − ½, k + ½]; 0 for a trace below A.
    true = np.where(
        labels > 0,
        np.clip(labels + rng.uniform(-0.5, 0.5, size=labels.shape), 0.5, INTENSITY_MAX),
        rng.uniform(0.0, 0.25, size=labels.shape),
    )
    rig = model.rig
    fields = (rig.fields_model_mm / INTENSITY_MAX).reshape(len(rig.au_numbers), -1)
    fields = fields.astype(np.float32)
    moving = np.zeros((n, len(rig.au_numbers)), dtype=np.float32)
    moving[:, [rig.au_numbers.index(au) for au in DISFA_AUS]] = true * subject.gains
    noise = rng.standard_normal((n, N_MESH_VERTICES * 3), dtype=np.float32)
    # Faces move as the rig draws them, combinations (1+4, 12+25) included.
    combinations = rig.combination_offsets(moving).reshape(n, -1).astype(np.float32)
    deformation = moving @ fields + combinations + config.landmark_noise_mm * noise
    fitted = np.clip(moving + subject.resting, 0.0, INTENSITY_MAX).astype(np.float32)
    expression = fitted @ fields
    # shape − mean = identity + resting + deformation; what the fitted rig misses is identity.
    identity = subject.identity_model_mm.reshape(-1) + subject.resting @ fields
    identity = (identity + deformation - expression).astype(np.float32)
    shape = (n, N_MESH_VERTICES, 3)
    return DisfaLikeChunk(
        subject_ids=np.full(n, subject.name),
        frame_numbers=np.arange(start, start + n),
        labels=labels.astype(np.float32),
        deformations_model_mm=deformation.reshape(shape),
        identity_offsets_model_mm=identity.reshape(shape),
        expression_offsets_model_mm=expression.reshape(shape),
        au_intensities=fitted,
    )


def _config(config: DisfaLikeConfig | None, overrides: dict[str, Any]) -> DisfaLikeConfig:
    return replace(config or DisfaLikeConfig(), **overrides)


def disfa_like_chunks(
    model: FaceModel, config: DisfaLikeConfig | None = None, **overrides: Any
) -> Iterator[DisfaLikeChunk]:
    """Simulated frames, subject by subject, in blocks of at most ``chunk_rows``.

    ``overrides`` replace fields of ``config`` (e.g. ``n_subjects=27``). Deterministic: every
    block has its own seed, so iterating again gives the same frames.
    """
    config = _config(config, overrides)
    for index in range(config.n_subjects):
        subject = _subject(model, config, index)
        n_blocks = -(-config.frames_per_subject // config.chunk_rows)
        for block in range(n_blocks):
            yield _chunk(model, config, subject, index, block)


def disfa_like_fits(
    model: FaceModel, config: DisfaLikeConfig | None = None, **overrides: Any
) -> pd.DataFrame:
    """A fitted, labelled manifest of simulated frames (all ``ok``), one row per frame.

    Parameters
    ----------
    model : FaceModel
    config : DisfaLikeConfig, optional
    **overrides
        Fields of ``config`` to replace, e.g. ``n_subjects=10, frames_per_subject=200, seed=1``.

    Returns
    -------
    pandas.DataFrame
        Columns ``image_path``, ``face_index``, ``subject_id``, ``status``,
        ``identity_offsets_model_mm``, ``expression_offsets_model_mm`` ((468, 3) float32 mm
        cells), ``au_intensities`` ((K_rig,) fitted, rig order) and ``label_AU<n>`` for the 12
        DISFA AUs (FACS 0–5).
    """
    parts = []
    for chunk in disfa_like_chunks(model, _config(config, overrides)):
        part = pd.DataFrame(
            {
                "image_path": [
                    f"{s}/{s}_{f:05d}.png"
                    for s, f in zip(chunk.subject_ids, chunk.frame_numbers, strict=True)
                ],
                "face_index": 0,
                "subject_id": chunk.subject_ids,
                "status": "ok",
                "identity_offsets_model_mm": list(chunk.identity_offsets_model_mm),
                "expression_offsets_model_mm": list(chunk.expression_offsets_model_mm),
                "au_intensities": list(chunk.au_intensities),
            }
        )
        for a, au in enumerate(DISFA_AUS):
            part[label_column(au)] = chunk.labels[:, a].astype(np.float64)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
