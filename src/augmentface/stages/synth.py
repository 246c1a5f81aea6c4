"""Stages ``synth-au``, ``synth-va``, ``synth-emotion`` and ``transfer``: fitted faces ×
targets -> expression offsets.

Replace semantics: the target expression replaces the face's fitted expression (its identity is
kept), so the label is the target whatever the source showed. Where the offsets come from is an
:class:`~augmentface.expression.targets.ExpressionSource`: the FACS rig (default), a learned AU
model, VA or emotion class models, or another face's expression (transfer). A source that
depends on the face it is rendered on (the CAAE conditions on identity) has a
``for_identity(identity_offsets_model_mm)`` method returning the source for that face.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augmentface.errors import UsageError
from augmentface.expression import va_prior
from augmentface.expression.source_residual import shown_intensities, source_residual
from augmentface.expression.targets import (
    ExpressionSource,
    ExpressionTarget,
    RigSource,
    sample_rng,
)
from augmentface.face.detect import BLENDSHAPE_NAMES
from augmentface.face.model import FaceModel, identity_au_noise, load_face_model
from augmentface.manifest_stream import ManifestStream
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    FITS_FILE,
    TARGETS_FILE,
    StageReport,
    file_digest,
)
from augmentface.stages.execution import Execution
from augmentface.stages.lineage import FIT_FIRST
from augmentface.stages.runner import Stage, attempt, run_stage
from augmentface.stages.schemas import AU_NAMES, FITS, LABEL_AU_COLUMNS, TARGETS


@dataclass(frozen=True)
class SynthConfig:
    """Settings of the synthesis stage (see ``augmentface synth-au --help``)."""

    workdir: Path = DEFAULT_WORKDIR
    fits: Path | None = None  # default: <workdir>/fits.parquet
    samples: int = 1
    seed: int = 0
    #: Synthesize only on faces that show no expression (see :func:`is_neutral_face`), as
    #: Kollias et al. do: a source's own expression partly survives a replacement (its folds,
    #: cheeks and squint are texture). None (the default) does so when the fits carry dataset
    #: labels, which say which frames are neutral; False takes every face (``--any-source``).
    neutral_only: bool | None = None
    #: The model file the expression source was loaded from, if any: its sha256 goes into
    #: the run's parameters, so another model never resumes this one's rows.
    source_file: Path | None = None
    quiet: bool = False
    #: Where the jobs run: in this process, on Dask, or one shard.
    execution: Execution = field(default_factory=Execution)

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise UsageError(f"samples must be >= 1, got {self.samples}")


#: MediaPipe blendshape limits under which a face without labels counts as neutral (the same
#: rule that calibrated the model's neutral face, ``scripts/calibrate_neutral.py``). The
#: blendshapes judge better than the rig's fitted magnitude, which also absorbs identity.
NEUTRAL_BLENDSHAPE_LIMITS = {
    "mouthSmileLeft": 0.15,
    "mouthSmileRight": 0.15,
    "jawOpen": 0.1,
    "eyeBlinkLeft": 0.5,
    "eyeBlinkRight": 0.5,
    "browDownLeft": 0.5,
    "browDownRight": 0.5,
    "browInnerUp": 0.5,
}
#: Label limits of a neutral frame: every labelled AU below 1 (FACS "trace" or less), (V, A)
#: within 0.2 of the centre (one class), or the emotion label "neutral".
NEUTRAL_MAX_AU = 1.0
NEUTRAL_MAX_VA = 0.2


#: What :func:`is_neutral_face` and :func:`has_labels` read of a fitted face.
NEUTRAL_COLUMNS = (
    "blendshape_scores",
    *LABEL_AU_COLUMNS,
    "label_valence",
    "label_arousal",
    "label_emotion",
)
#: The fits columns a synthesis depends on (faces, their identity for the CAAE, what
#: ``--neutral-only`` reads), in the order of the run's ``fits_digest``.
FIT_COLUMNS_USED = (
    "image_path",
    "face_index",
    "status",
    "au_signed",
    "identity_offsets_model_mm",
    *NEUTRAL_COLUMNS,
)
#: Fitted faces decoded at a time: the stage holds one batch of fits rows, never the fits.
FACE_BATCH = 512


def is_neutral_face(face: Mapping) -> bool:
    """Whether a fitted face shows no expression: by its dataset labels when it has any,
    else by MediaPipe's blendshape scores in the fit."""
    aus = [face.get(c) for c in LABEL_AU_COLUMNS]
    aus = [float(v) for v in aus if v is not None and np.isfinite(v)]
    va = [face.get("label_valence"), face.get("label_arousal")]
    va = [float(v) for v in va if v is not None and np.isfinite(v)]
    emotion = face.get("label_emotion")
    if not isinstance(emotion, str):  # a missing label reads as None or NaN from Parquet
        emotion = None
    if aus or va or emotion:
        return (
            all(v < NEUTRAL_MAX_AU for v in aus)
            and float(np.linalg.norm(va)) <= NEUTRAL_MAX_VA  # 0 when unlabelled
            and emotion in (None, "neutral")
        )
    scores = dict(zip(BLENDSHAPE_NAMES, face["blendshape_scores"], strict=True))
    return all(scores[name] < limit for name, limit in NEUTRAL_BLENDSHAPE_LIMITS.items())


def has_labels(face: Mapping) -> bool:
    """Whether a fitted face carries dataset labels (AU, VA or emotion)."""
    values = [face.get(c) for c in (*LABEL_AU_COLUMNS, "label_valence", "label_arousal")]
    numeric = any(v is not None and np.isfinite(v) for v in values)
    return numeric or isinstance(face.get("label_emotion"), str)


def _target_row(
    face: dict, target: ExpressionTarget, sample: int, source: str, au, offsets, residual
):
    has_va = bool(np.isfinite(target.valence) and np.isfinite(target.arousal))
    row = {
        "image_path": face["image_path"],
        "face_index": int(face["face_index"]),
        "target_id": target.target_id,
        "sample": sample,
        "subject_id": face.get("subject_id"),
        "clip_id": face.get("clip_id"),
        "sequence": target.sequence,
        "frame": target.frame,
        "source": source,
        "kind": target.kind,
        "valence": target.label_valence,
        "arousal": target.label_arousal,
        "va_class": va_prior.va_class(target.valence, target.arousal) if has_va else -1,
        "emotion": target.emotion,
        "emotion_intensity": target.emotion_intensity,
        "requested_valence": target.valence,
        "requested_arousal": target.arousal,
        "au_intensities": au,
        "expression_offsets_model_mm": offsets,
        "source_residual": residual,
        "status": "ok",
        "error": None,
    }
    row.update(zip(AU_NAMES, map(float, au), strict=True))
    return row


def _source_name(source: ExpressionSource, target: ExpressionTarget) -> str:
    """The rig serves every kind of target; name it by what chose the AUs."""
    if isinstance(source, RigSource) and target.kind in ("va", "emotion"):
        return f"{target.kind}-prior"
    return source.name


def _check_fits(fits: ManifestStream, model: FaceModel) -> None:
    """What :func:`.stages.fitted.read_fitted` checks, without reading the rows."""
    fitted_with = fits.meta.get("face_model_id")
    if fitted_with != model.model_id:
        raise UsageError(
            f"{fits.path}: fitted with face model {fitted_with}, but this installation has "
            f"{model.model_id}; run fit3dmm again"
        )
    if not fits.count_ok():
        raise UsageError(f"{fits.path}: no fitted face with status ok")


def _ok_faces(fits: ManifestStream, columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The ``ok`` fitted faces in manifest order, as dicts of ``columns``, a batch at a time."""
    for batch in fits.batches(columns, FACE_BATCH, ok_only=True):
        yield from batch.to_dict("records")


def _survey(fits: ManifestStream) -> tuple[int, bool]:
    """(neutral faces, whether any face carries dataset labels), from the label columns."""
    neutral, labelled = 0, False
    for face in _ok_faces(fits, NEUTRAL_COLUMNS):
        neutral += is_neutral_face(face)
        labelled = labelled or has_labels(face)
    return neutral, labelled


@dataclass(frozen=True)
class SynthTask:
    """synth's work on a few (face, target, sample) jobs, in any worker process."""

    source: ExpressionSource
    seed: int
    noise: np.ndarray  # identity AU noise per rig AU (identity_au_noise)
    au_numbers: tuple[int, ...]

    def __call__(self, jobs: Sequence[tuple[dict[str, Any], ExpressionTarget, int]]) -> list:
        return [attempt(self._row, job, job[0]["image_path"]) for job in jobs]

    def _row(self, job: tuple[dict[str, Any], ExpressionTarget, int]) -> list[dict[str, Any]]:
        face, target, sample = job
        source = _face_source(self.source, face)
        rng = sample_rng(
            self.seed, face["image_path"], face["face_index"], target.target_id, sample
        )
        au, offsets = source.realize(target, sample, rng)
        shown = shown_intensities(face["au_signed"], self.noise)
        residual = source_residual(shown, au, self.au_numbers)
        return [
            _target_row(face, target, sample, _source_name(source, target), au, offsets, residual)
        ]


#: The last face's source (a CAAE conditioned on its identity): a face's jobs come together.
_last_face_source: dict[tuple[int, str, int], ExpressionSource] = {}


def _face_source(source: ExpressionSource, face: Mapping[str, Any]) -> ExpressionSource:
    """``source`` for ``face``: itself, or its ``for_identity`` (made once per face)."""
    for_identity = getattr(source, "for_identity", None)
    if for_identity is None:
        return source
    key = (id(source), face["image_path"], int(face["face_index"]))
    if key not in _last_face_source:
        _last_face_source.clear()
        _last_face_source[key] = for_identity(face["identity_offsets_model_mm"])
    return _last_face_source[key]


def _failure_rows(
    job: tuple[dict[str, Any], ExpressionTarget, int], status: str, message: str
) -> list[dict[str, Any]]:
    face, target, sample = job
    key = (face["image_path"], int(face["face_index"]), target.target_id, sample)
    return [{**dict(zip(TARGETS.key, key, strict=True)), "status": status, "error": message}]


def run_synth(
    targets: Sequence[ExpressionTarget],
    config: SynthConfig | None = None,
    source: ExpressionSource | None = None,
) -> StageReport:
    """Realise every target on every fitted face; write ``<workdir>/targets.parquet``.

    ``source`` turns targets into offsets; by default the FACS rig (VA and emotion targets
    through their priors). The fits are streamed (:class:`.manifest_stream.ManifestStream`):
    a few passes over the columns each question needs, then the faces a batch at a time, their
    jobs made as they are done; what the stage holds is a batch of faces and a checkpoint.
    """
    config = config or SynthConfig()
    if not targets:
        raise UsageError("no targets given")
    fits_path = Path(config.fits or Path(config.workdir) / FITS_FILE)
    model = load_face_model()
    fits = ManifestStream(fits_path, FITS, run_first=FIT_FIRST)
    _check_fits(fits, model)
    source = source or RigSource(model.rig)
    n_neutral, labelled = _survey(fits)
    neutral_only = labelled if config.neutral_only is None else config.neutral_only
    path = Path(config.workdir) / TARGETS_FILE
    params = {
        "fits": str(fits_path.resolve()),
        "source": source.name,
        "source_file": (
            None
            if config.source_file is None
            else {"path": str(config.source_file), "sha256": file_digest(config.source_file)}
        ),
        # stages.common.manifest_digest of the ok rows, streamed (ManifestStream.digest).
        "fits_digest": fits.digest(FIT_COLUMNS_USED),
        "neutral_only": neutral_only,
        "samples": config.samples,
        "seed": config.seed,
        "targets": [t.target_id for t in targets],
        "labels": sorted(
            {
                "class-median" if t.kind == "va" and t.label_valence != t.valence else "target"
                for t in targets
            }
        ),
    }
    noise = identity_au_noise(model.rig.au_numbers)
    if neutral_only and not n_neutral:
        raise UsageError(
            f"{fits_path}: no neutral face to synthesize on (neutral sources only"
            f"{'' if config.neutral_only else ', the default for labelled frames'}; "
            "--any-source takes every face)"
        )
    for_identity = getattr(source, "for_identity", None)
    columns = (
        "subject_id",
        "clip_id",
        "au_signed",
        *(NEUTRAL_COLUMNS if neutral_only else ()),
        *(("identity_offsets_model_mm",) if for_identity else ()),
    )
    faces = (face for face in _ok_faces(fits, columns) if not neutral_only or is_neutral_face(face))
    jobs = (
        (face, target, sample)
        for face in faces
        for target in targets
        for sample in range(config.samples)
    )
    n_faces = n_neutral if neutral_only else fits.count_ok()
    stage = Stage(
        name="synth",
        schema=TARGETS,
        path=path,
        params=params,
        seed=config.seed,
        face_model_id=model.model_id,
        task=SynthTask(source, config.seed, noise, tuple(model.rig.au_numbers)),
        image_of=lambda job: job[0]["image_path"],
        resume_key=lambda job: (
            job[0]["image_path"],
            int(job[0]["face_index"]),
            job[1].target_id,
            job[2],
        ),
        failure_rows=_failure_rows,
        every_n=2000,
    )
    total = n_faces * len(targets) * config.samples
    return run_stage(stage, jobs, config.execution, config.quiet, total)
