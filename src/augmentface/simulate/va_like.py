"""AFEW-VA-like and Aff-Wild-like sequences of expression deformations with VA labels.

For tests and benchmarks of the VA class models, never for real data. Each subject has a
neutral stretch (labels ≈ (0, 0), no expression) followed by frames whose valence/arousal follow
a smooth random trace, and whose deformations follow the circumplex through the built-in prior:
``rig.offsets(va_prior.prior_aus(v, a))``, so the happiness region smiles (AU6 + AU12) and high
arousal opens eyes and mouth. Subjects differ by an overall expression gain, per-AU gains and a
small smooth offset field (an imperfect neutral reference); every frame gets vertex noise.

Label statistics, after the data sets' papers (Kossaifi et al. 2017, AFEW-VA; Kollias et al.
2019, Aff-Wild): *afew-va* has short clips (tens of frames) from films, each with its own
affect, covering much of the square, labels on the -10…10 integer scale (0.1 steps here);
*aff-wild* has long in-the-wild sequences whose continuous labels drift slowly about a
subject's mood, with valence skewed positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.au_rig import INTENSITY_MAX
from augmentface.face.model import FaceModel

STYLES = ("afew-va", "aff-wild")


@dataclass(frozen=True)
class VALikeConfig:
    """Settings of one generated data set.

    Attributes
    ----------
    style : str
        ``"afew-va"`` (short clips, quantised labels) or ``"aff-wild"`` (long drifting traces).
    n_subjects, frames_per_subject, neutral_frames : int
        Subjects; frames per subject, of which the first ``neutral_frames`` are neutral.
    clip_frames : int
        AFEW-VA clip length: the affect's centre is redrawn every clip.
    correlation_frames : float
        Correlation time of the VA trace (an Ornstein–Uhlenbeck process), frames.
    gain_sd, au_gain_sd : float
        Log-normal spread of the subject's overall and per-AU expression gains.
    shape_offset_mm : float
        RMS of the subject's smooth offset field, mm.
    noise_mm : float
        Per-vertex, per-axis Gaussian noise of every frame, mm.
    label_noise : float
        Standard deviation of the annotation noise on V and A.
    missing_label_fraction : float
        Fraction of frames whose labels are NaN (unannotated).
    seed : int
        Seed of everything random.
    """

    style: str = "aff-wild"
    n_subjects: int = 12
    frames_per_subject: int = 400
    neutral_frames: int = 30
    clip_frames: int = 40
    correlation_frames: float = 20.0
    gain_sd: float = 0.2
    au_gain_sd: float = 0.15
    shape_offset_mm: float = 0.3
    noise_mm: float = 0.15
    label_noise: float = 0.03
    missing_label_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise UsageError(f"style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if not 0 <= self.neutral_frames < self.frames_per_subject or self.n_subjects < 1:
            raise UsageError("need n_subjects ≥ 1 and 0 ≤ neutral_frames < frames_per_subject")


@dataclass(frozen=True)
class VALikeData:
    """Generated frames (N = subjects × frames per subject).

    Attributes
    ----------
    offsets_model_mm : np.ndarray
        (N, 468, 3) float32 deformation from the subject's neutral reference, mm.
    valence, arousal : np.ndarray
        (N,) float64 labels in [-1, 1], NaN where unannotated.
    subject_id : np.ndarray
        (N,) str.
    frame_index : np.ndarray
        (N,) int64 frame within the subject's sequence.
    emotion : np.ndarray
        (N,) str: the basic emotion nearest in circumplex angle to the true (V, A) when it is
        at least 0.3 from the centre, ``"neutral"`` nearer the centre, ``"other"`` for the
        low-arousal anchors (relaxed, sleepy) that name no category.
    au_intensities : np.ndarray
        (N, K_rig) float64 AU intensities the frames were made from (after subject gains).
    identity_offsets_model_mm : dict[str, np.ndarray]
        Subject -> (468, 3) float32 identity offsets, for :func:`fits_frame`.
    """

    offsets_model_mm: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    subject_id: np.ndarray
    frame_index: np.ndarray
    emotion: np.ndarray
    au_intensities: np.ndarray
    identity_offsets_model_mm: dict[str, np.ndarray]


def _smooth_field(
    verts_model_mm: np.ndarray, rng: np.random.Generator, rms_mm: float
) -> np.ndarray:
    """(V, 3) a few Gaussian bumps (σ 30 mm) with random directions, scaled to ``rms_mm``."""
    centres = verts_model_mm[rng.choice(len(verts_model_mm), 3, replace=False)]
    d2 = ((verts_model_mm[:, None, :] - centres[None]) ** 2).sum(axis=2)
    field = np.exp(-d2 / (2 * 30.0**2)) @ rng.normal(size=(3, 3))
    rms = float(np.sqrt((field**2).mean()))
    return field * (rms_mm / rms) if rms > 0 else field


def _ou_trace(
    n: int, centre: np.ndarray, spread: float, tau: float, rng: np.random.Generator
) -> np.ndarray:
    """(n, 2) Ornstein–Uhlenbeck path about ``centre`` with stationary s.d. ``spread``."""
    decay = np.exp(-1.0 / tau)
    step_sd = spread * np.sqrt(1.0 - decay**2)
    out = np.empty((n, 2))
    x = centre + rng.normal(0.0, spread, 2)
    for i in range(n):
        x = centre + decay * (x - centre) + rng.normal(0.0, step_sd, 2)
        out[i] = x
    return out


def _va_trace(n: int, config: VALikeConfig, rng: np.random.Generator) -> np.ndarray:
    if config.style == "aff-wild":
        mood = rng.normal([0.15, 0.15], 0.25)
        return _ou_trace(n, mood, 0.4, config.correlation_frames, rng)
    clips = [
        _ou_trace(
            min(config.clip_frames, n - start),
            rng.uniform(-0.8, 0.8, 2),
            0.1,
            config.correlation_frames,
            rng,
        )
        for start in range(0, n, config.clip_frames)
    ]
    return np.concatenate(clips)


def _emotion_of(valence: float, arousal: float) -> str:
    if np.hypot(valence, arousal) < 0.3:
        return "neutral"
    angle = np.arctan2(arousal, valence)
    nearest = min(va_prior.ANCHORS, key=lambda a: abs(np.angle(np.exp(1j * (a.angle - angle)))))
    return "other" if nearest.name in ("relaxed", "sleepy") else nearest.name


def generate_va_like(model: FaceModel, config: VALikeConfig) -> VALikeData:
    """Generate the frames of ``config.n_subjects`` subjects on ``model``'s mesh and rig."""
    rng = np.random.default_rng(config.seed)
    rig, verts = model.rig, model.mean_verts_model_mm
    fields = rig.fields_model_mm.reshape(len(rig.au_numbers), -1) / INTENSITY_MAX
    n = config.frames_per_subject
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("off", "va", "aus", "sid", "idx")}
    identities: dict[str, np.ndarray] = {}
    for s in range(config.n_subjects):
        subject = f"S{s:03d}"
        identities[subject] = _smooth_field(verts, rng, 3.0).astype(np.float32)
        gains = np.exp(
            rng.normal(0.0, config.gain_sd)
            + rng.normal(0.0, config.au_gain_sd, len(rig.au_numbers))
        )
        shape = _smooth_field(verts, rng, config.shape_offset_mm)
        true_va = np.zeros((n, 2))
        true_va[config.neutral_frames :] = np.clip(
            _va_trace(n - config.neutral_frames, config, rng), -1.0, 1.0
        )
        aus = np.stack([rig.vector(va_prior.prior_aus(v, a)) for v, a in true_va])
        aus = np.clip(aus * gains, 0.0, 5.0)
        offsets = (aus @ fields).reshape(n, *verts.shape) + shape
        offsets += rng.normal(0.0, config.noise_mm, offsets.shape)
        parts["off"].append(offsets.astype(np.float32))
        parts["va"].append(true_va)
        parts["aus"].append(aus)
        parts["sid"].append(np.full(n, subject))
        parts["idx"].append(np.arange(n))
    true_va = np.concatenate(parts["va"])
    labels = np.clip(true_va + rng.normal(0.0, config.label_noise, true_va.shape), -1.0, 1.0)
    if config.style == "afew-va":
        labels = np.round(labels * 10.0) / 10.0  # the -10…10 integer scale
    labels[rng.random(len(labels)) < config.missing_label_fraction] = np.nan
    return VALikeData(
        offsets_model_mm=np.concatenate(parts["off"]),
        valence=labels[:, 0],
        arousal=labels[:, 1],
        subject_id=np.concatenate(parts["sid"]),
        frame_index=np.concatenate(parts["idx"]).astype(np.int64),
        emotion=np.array([_emotion_of(v, a) for v, a in true_va]),
        au_intensities=np.concatenate(parts["aus"]),
        identity_offsets_model_mm=identities,
    )


def fits_frame(data: VALikeData, *, with_emotion: bool = True) -> pd.DataFrame:
    """A fits-like table of the frames, for CLI and manifest tests.

    Columns: ``image_path`` (``<subject>/<frame>.png``, not a real file), ``face_index`` (0),
    ``subject_id``, ``status`` (``"ok"``), ``identity_offsets_model_mm`` and
    ``expression_offsets_model_mm`` ((468, 3) float32 cells; the expression is the frame's
    deformation, so each subject's neutral stretch is its neutral reference),
    ``label_valence``, ``label_arousal`` and, if ``with_emotion``, ``label_emotion``.
    """
    table = pd.DataFrame({
        "image_path": [f"{s}/{i:05d}.png" for s, i in zip(data.subject_id, data.frame_index,
                                                          strict=True)],
        "face_index": np.zeros(len(data.subject_id), dtype=np.int64),
        "subject_id": data.subject_id.astype(str),
        "status": "ok",
        "identity_offsets_model_mm": [data.identity_offsets_model_mm[s] for s in data.subject_id],
        "expression_offsets_model_mm": list(data.offsets_model_mm),
        "label_valence": data.valence,
        "label_arousal": data.arousal,
    })  # fmt: skip
    if with_emotion:
        table["label_emotion"] = data.emotion.astype(str)
    return table
