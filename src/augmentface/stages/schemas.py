"""The manifest schema of every stage — the documented contract between stages.

``docs/manifests.md`` is generated from these definitions:
``python -m augmentface.stages.schemas > docs/manifests.md``.
"""

from __future__ import annotations

from augmentface.datasets.schema import LABEL_AU_COLUMNS, SOURCES
from augmentface.expression.au_rig import AU_SPECS
from augmentface.manifest import Column, Schema
from augmentface.metrics.au_geometry import AU_CHANNELS, GEOMETRY_AUS

AU_NAMES: tuple[str, ...] = tuple(f"AU{s.number}" for s in AU_SPECS)
N_AUS = len(AU_NAMES)
#: The AUs that the geometric instrument measures (``geometry_*`` evaluation columns).
GEOMETRY_AU_NAMES: tuple[str, ...] = tuple(f"AU{n}" for n in GEOMETRY_AUS)

_KEY_FACE = (
    Column("image_path", "string", "Source image, as given (absolute path)", nullable=False),
    Column("face_index", "int64", "Face in the image, 0 = largest", nullable=False),
)
_KEY_SAMPLE = (
    *_KEY_FACE,
    Column(
        "target_id",
        "string",
        "Requested expression, e.g. AU6=2_AU12=3 or V+0.40_A+0.20",
        nullable=False,
    ),
    Column(
        "sample",
        "int64",
        "Sample number for this target (0 = the target itself, except for learned models)",
        nullable=False,
    ),
)
_AU_COLUMNS = tuple(
    Column(name, "float64", f"{name} intensity", unit="FACS 0–5") for name in AU_NAMES
)
_LABELS = (
    Column(
        "kind",
        "string",
        "Target kind: 'au' (AU intensities), 'va' (valence/arousal), 'emotion' (category) or "
        "'transfer' (another face's expression, its labels carried over)",
    ),
    *_AU_COLUMNS,
    Column("valence", "float64", "Valence label (NaN when the target has none)", unit="[-1, 1]"),
    Column("arousal", "float64", "Arousal label (NaN when the target has none)", unit="[-1, 1]"),
    Column("va_class", "int64", "VA class 0–99 (10 × arousal bin + valence bin), -1 if none"),
    Column("emotion", "string", "Emotion category label (null when the target has none)"),
    Column("emotion_intensity", "float64", "Emotion intensity (NaN when none)", unit="0–1"),
)
#: Carried from the fitted face so that every output keeps its person (subject-independent
#: splits) and a path's frames can be put together again.
_SUBJECT = (
    Column("subject_id", "string", "Person the source face belongs to (from fit3dmm)"),
    Column("clip_id", "string", "Source clip, if any"),
    Column("sequence", "string", "Smooth-path id shared by a path's frames (null otherwise)"),
    Column("frame", "int64", "Frame number within the path, from 0 (-1 outside a path)"),
)

#: Where a face came from and the labels its dataset gives it (see ``augmentface import``);
#: carried from the source manifest through every stage so that the subject survives
#: augmentation (subject-independent splits) and learned models can train on the labels.
SOURCE_LABEL_COLUMNS: tuple[str, ...] = (
    *LABEL_AU_COLUMNS,
    "label_valence",
    "label_arousal",
    "label_emotion",
)
_SOURCE_IDS = (
    Column(
        "dataset",
        "string",
        "Source dataset ('images' for images given directly to fit3dmm)",
        nullable=False,
    ),
    Column(
        "subject_id",
        "string",
        "Person, kept through augmentation (images given directly: the file name's stem)",
        nullable=False,
    ),
    Column("clip_id", "string", "Clip (video or frame folder), if any"),
    Column("frame_index", "int64", "The dataset's own frame number (-1 for a still)"),
)

FITS = Schema(
    stage="fit3dmm",
    version=4,
    key=("image_path", "face_index"),
    columns=(
        *_KEY_FACE,
        *_SOURCE_IDS,
        *(SOURCES.column(name) for name in SOURCE_LABEL_COLUMNS),
        Column("n_faces", "int64", "Faces found in the image"),
        Column(
            "source_size_bytes", "int64", "Size of the source file when fitted", unit="bytes"
        ),
        Column(
            "source_mtime_ns", "int64", "Modification time of the source file when fitted",
            unit="ns",
        ),
        Column(
            "source_digest",
            "string",
            "blake2b of the source file when fitted (whole up to 4 MiB, else first and last "
            "MiB; source_check.py): render and blend refuse a changed source",
        ),
        Column("width_px", "int64", "Image width after EXIF orientation", unit="px"),
        Column("height_px", "int64", "Image height after EXIF orientation", unit="px"),
        Column("detection_source", "string", "'full_frame' or 'proposal' (multi-scale pass)"),
        Column("bbox_px", "array", "Face box x0, y0, x1, y1", unit="px", shape=(4,)),
        Column(
            "landmarks_px", "array", "MediaPipe landmarks x, y, depth", unit="px", shape=(478, 3)
        ),
        Column("rotation", "array", "Pose rotation, model frame -> image frame", shape=(3, 3)),
        Column("scale_px_per_mm", "float64", "Pose scale", unit="px/mm"),
        Column("translation_px", "array", "Pose translation", unit="px", shape=(3,)),
        Column("yaw_deg", "float64", "Head yaw relative to frontal", unit="deg"),
        Column("pitch_deg", "float64", "Head pitch relative to frontal", unit="deg"),
        Column("roll_deg", "float64", "Head roll relative to frontal", unit="deg"),
        Column(
            "identity_offsets_model_mm",
            "array",
            "Per-face shape offsets from the mean",
            unit="mm",
            shape=(468, 3),
        ),
        Column(
            "expression_offsets_model_mm",
            "array",
            "Fitted expression offsets",
            unit="mm",
            shape=(468, 3),
        ),
        Column(
            "au_intensities",
            "array",
            "Fitted AU intensities in the order of the AU columns",
            unit="FACS 0–5",
            shape=(N_AUS,),
        ),
        Column(
            "au_signed",
            "array",
            "The fit's unbounded linear AU estimate, in the order of the AU columns: what the "
            "replacement removes (beyond identity noise) and what the photo shows of each AU",
            unit="FACS units",
            shape=(N_AUS,),
        ),
        *_AU_COLUMNS,
        Column(
            "blendshape_scores",
            "array",
            "MediaPipe's 52 blendshape scores (names in the file metadata)",
            shape=(52,),
        ),
    ),
)

TARGETS = Schema(
    stage="synth",
    version=3,
    key=("image_path", "face_index", "target_id", "sample"),
    columns=(
        *_KEY_SAMPLE,
        *_SUBJECT,
        Column(
            "source",
            "string",
            "Expression source: 'facs-rig' (direct), 'va-prior', 'emotion-prior', "
            "'learned-cgan', 'learned-caae', 'va-classes', 'emotion-classes' or 'transfer'",
        ),
        *_LABELS,
        Column("requested_valence", "float64", "Valence asked for (NaN for AU targets)"),
        Column("requested_arousal", "float64", "Arousal asked for (NaN for AU targets)"),
        Column(
            "au_intensities",
            "array",
            "AU intensities realised, in AU column order",
            unit="FACS 0–5",
            shape=(N_AUS,),
        ),
        Column(
            "expression_offsets_model_mm",
            "array",
            "Target expression offsets",
            unit="mm",
            shape=(468, 3),
        ),
        Column(
            "source_residual",
            "array",
            "What of the photo's own expression survives the replacement, per AU in AU column "
            "order: what the photo shows beyond identity noise, less the target "
            "(expression/source_residual.py); blend rejects an output whose residual "
            "contradicts its label",
            unit="FACS 0–5",
            shape=(N_AUS,),
        ),
    ),
)

RENDERS = Schema(
    stage="render",
    version=2,
    key=TARGETS.key,
    columns=(
        *_KEY_SAMPLE,
        Column(
            "render_path",
            "string",
            "RGBA crop (.rgbaz, render/crop_file.py): the re-rendered face, alpha = mask",
        ),
        Column(
            "roi_px",
            "array",
            "Crop position x0, y0, x1, y1 in the source image",
            unit="px",
            shape=(4,),
        ),
        Column(
            "target_landmarks_px",
            "array",
            "Deformed mesh vertices x, y, depth",
            unit="px",
            shape=(468, 3),
        ),
        Column(
            "target_ibug68_px",
            "array",
            "68 iBUG-300W points of the target",
            unit="px",
            shape=(68, 2),
        ),
        Column("mouth_painted", "bool", "A procedural mouth interior was painted"),
    ),
)

LABELS = Schema(
    stage="blend",
    version=2,
    key=TARGETS.key,
    columns=(
        *_KEY_SAMPLE,
        *_SUBJECT,
        Column("output_path", "string", "Augmented image"),
        Column(
            "layout_path",
            "string",
            "Where --layout put the sample in the dataset's own layout (null for none)",
        ),
        *_LABELS,
        Column("method", "string", "Blend method: 'alpha' or 'poisson'"),
        Column("seed", "int64", "Seed of the synthesis run"),
    ),
)


def _geometry_channel(au_name: str) -> str:
    """``channel`` or ``-channel``: what the geometric response of an AU measures."""
    channel, sign = AU_CHANNELS[int(au_name[2:])]
    return channel if sign > 0 else f"-{channel}"


EVALUATION = Schema(
    stage="evaluate",
    version=3,
    key=TARGETS.key,
    columns=(
        *_KEY_SAMPLE,
        Column("output_path", "string", "Augmented image evaluated"),
        Column("redetected", "bool", "MediaPipe finds the face again in the output"),
        Column("identity_distance", "float64", "dlib ResNet embedding distance, source vs output"),
        Column("same_person", "bool", "identity_distance below dlib's threshold 0.6"),
        Column(
            "nme_mediapipe",
            "float64",
            "Re-detected MediaPipe landmarks vs the intended "
            "ones, mean error / outer inter-ocular distance",
        ),
        Column(
            "nme_dlib68",
            "float64",
            "dlib's 68 landmarks on the output vs the intended "
            "iBUG-68 points, mean error / outer inter-ocular distance",
        ),
        Column("seam_ratio", "float64", "Gradient energy along the mask edge, output / source"),
        Column(
            "outside_unchanged",
            "bool",
            "Pixels outside the mask equal the source's "
            "(lossless outputs only; null for JPEG/WebP)",
        ),
        *(
            Column(
                f"response_{name}",
                "float64",
                f"MediaPipe blendshape response mapped to {name}: output minus source",
                unit="score change",
            )
            for name in AU_NAMES
        ),
        Column(
            "geometry_baseline",
            "string",
            "What the geometric responses are measured against: 'neutral render' (the same "
            "face's output with no AU, when the run holds one: the person at rest as rendered) "
            "or 'source' (the photo)",
        ),
        *(
            Column(
                f"{prefix}_{name}",
                "float64",
                f"{landmarks} geometric response of {name}: change of "
                f"{_geometry_channel(name)} (metrics/au_geometry.py), output minus its "
                "baseline (geometry_baseline); positive for the AU's action, NaN when not "
                "measurable",
                unit="outer inter-ocular distance",
            )
            for prefix, landmarks in (
                ("geometry", "dlib-68"),
                ("geometry_mp", "MediaPipe (re-detected)"),
            )
            for name in GEOMETRY_AU_NAMES
        ),
    ),
)

ALL_SCHEMAS = (SOURCES, FITS, TARGETS, RENDERS, LABELS, EVALUATION)


def schemas_markdown() -> str:
    """Documentation of every manifest, as Markdown."""
    parts = [
        "# Manifests\n",
        "Generated from `augmentface/stages/schemas.py`. Every manifest is a Parquet "
        "dataset: a directory of parts `part-NNNNN.parquet`, each with a completion marker "
        "`_part-NNNNN.json` (row count, sha256), which `pandas.read_parquet(directory)` reads "
        "whole; each part's file metadata (key `augmentface`) holds the stage, schema "
        "version, package version, run parameters, seed and face-model id. Of a key written "
        "more than once (a retried row), the last part's row counts.\n",
    ]
    files = {
        "import": "sources.parquet",
        "fit3dmm": "fits.parquet",
        "synth": "targets.parquet",
        "render": "renders.parquet",
        "blend": "output/labels.parquet (+ labels.csv)",
        "evaluate": "output/evaluation.parquet (+ evaluation.csv)",
    }
    for schema in ALL_SCHEMAS:
        parts.append(
            f"## `{files[schema.stage]}` — stage `{schema.stage}`, "
            f"version {schema.version}\n\nKey: {', '.join(schema.key)}\n"
        )
        parts.append(schema.to_markdown())
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(schemas_markdown(), end="")
