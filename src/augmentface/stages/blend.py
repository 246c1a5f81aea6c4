"""Stage ``blend``: put each rendered face into its photo; write the images and the labels."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from augmentface.atomic import atomic_write_text
from augmentface.blend import BLEND_METHODS, BlendMethod, blend_face
from augmentface.datasets.frames import parse_frame_ref, read_frame
from augmentface.datasets.layouts import LAYOUTS, write_layout
from augmentface.errors import RenderError, UsageError
from augmentface.expression.source_residual import RESIDUAL_LIMIT, label_conflict
from augmentface.face.detect import DetectConfig, FaceLandmarker
from augmentface.imageio import read_image, write_image_atomic
from augmentface.manifest import ManifestWriter, done_keys, read_manifest, write_manifest
from augmentface.metrics.measure import OutputMeasurer, QualityGates
from augmentface.stages.common import (
    DEFAULT_WORKDIR,
    LABELS_FILE,
    OUTPUT_DIR,
    RENDERS_FILE,
    StageReport,
    frame_order,
    log,
    manifest_digest,
    previous_rows,
    progress,
    row_failure,
    sample_name,
    upstream,
)
from augmentface.stages.schemas import AU_NAMES, FITS, LABELS, RENDERS, TARGETS
from augmentface.video import write_video

#: Columns copied from the target to the label row.
LABEL_COLUMNS = (
    "subject_id",
    "clip_id",
    "sequence",
    "frame",
    "kind",
    *AU_NAMES,
    "valence",
    "arousal",
    "va_class",
    "emotion",
    "emotion_intensity",
)
SEQUENCES_DIR = "sequences"


@dataclass(frozen=True)
class BlendConfig:
    """Settings of the blend stage (see ``augmentface blend --help``)."""

    workdir: Path = DEFAULT_WORKDIR
    renders: Path | None = None  # default: <workdir>/renders.parquet
    output: Path | None = None  # default: <workdir>/output
    method: BlendMethod = "alpha"
    image_format: str = "jpg"
    jpeg_quality: int = 95
    gates: QualityGates = field(default_factory=QualityGates)
    #: Reject an output when the photo's own expression survives in it by at least this much
    #: (FACS units) against its label (:func:`.label_conflict`); None keeps every output.
    max_source_residual: float | None = RESIDUAL_LIMIT
    keep_rejected: bool = False
    #: Also write the outputs in a dataset's own layout ("flat", "disfa", "afew-va",
    #: "affwild2"), under ``layout_root`` (default ``<output>/<layout>``).
    layout: str | None = None
    layout_root: Path | None = None
    #: Frame rate of the videos written for smooth paths (``synth-va --path``).
    fps: float = 25.0
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.layout is not None and self.layout not in LAYOUTS:
            raise UsageError(f"unknown layout {self.layout!r}; allowed: {', '.join(LAYOUTS)}")
        if not self.fps > 0:
            raise UsageError(f"fps must be > 0, got {self.fps}")
        if self.method not in BLEND_METHODS:
            raise UsageError(
                f"unknown blend method {self.method!r}; allowed: {', '.join(BLEND_METHODS)}"
            )
        if self.image_format not in ("jpg", "png", "webp"):
            raise UsageError(f"image format must be jpg, png or webp, not {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise UsageError(f"jpeg quality must be in 1–100, got {self.jpeg_quality}")
        if self.max_source_residual is not None and not self.max_source_residual > 0:
            raise UsageError(
                f"max source residual must be > 0 (FACS units), got {self.max_source_residual}"
            )


def _read_render(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, alpha) of a render crop written by the render stage."""
    bgra = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if bgra is None or bgra.ndim != 3 or bgra.shape[2] != 4:
        raise RenderError(f"{path}: render crop missing or not an RGBA PNG")
    return np.ascontiguousarray(bgra[..., 2::-1]), bgra[..., 3]


@dataclass
class _Gatekeeper:
    """Measures blended images and applies the quality gates (opened only when gates are set)."""

    gates: QualityGates
    measurer: OutputMeasurer
    fits: dict

    def reasons(self, image: np.ndarray, row: dict, alpha: np.ndarray, label: dict, lossless):
        fit = self.fits[(row["image_path"], int(row["face_index"]))]
        metrics = self.measurer.measure(image, fit, row, alpha, lossless)
        requested = [int(n[2:]) for n in AU_NAMES if label[n] and label[n] > 0]
        return self.gates.reasons(metrics, requested)


def residual_conflict(target: dict, au_numbers, limit: float | None) -> list[str]:
    """The label conflict of one target row's source residual, as a rejection reason list."""
    if limit is None:
        return []
    emotion = target.get("emotion")
    conflict = label_conflict(
        target["source_residual"],
        target["au_intensities"],
        au_numbers,
        valence=float(target.get("valence", np.nan)),
        emotion=emotion if isinstance(emotion, str) else None,
        au_labelled=target.get("kind") in AU_LABELLED_KINDS,
        limit=limit,
    )
    return [] if conflict is None else [conflict]


def _open_gatekeeper(config: BlendConfig, targets, stack: contextlib.ExitStack):
    if not config.gates.active:
        return None
    fits = upstream(Path(targets.meta["params"]["fits"]), FITS, "augmentface fit3dmm IMAGES")
    landmarker = stack.enter_context(FaceLandmarker(DetectConfig(max_faces=4)))
    measurer = OutputMeasurer(landmarker, tuple(fits.meta["params"]["blendshape_names"]))
    rows = {(r["image_path"], int(r["face_index"])): r for r in fits.df.to_dict("records")}
    return _Gatekeeper(config.gates, measurer, rows)


def run_blend(config: BlendConfig | None = None) -> StageReport:
    """Blend every render; write ``<output>/images/`` and ``<output>/labels.parquet`` + ``.csv``.

    An output whose source residual contradicts its label (``max_source_residual``), or with
    quality gates set one whose measurements fail them, is recorded with status ``rejected``
    and its reasons, and written to ``<output>/rejected/`` only with ``keep_rejected``.
    """
    config = config or BlendConfig()
    workdir = Path(config.workdir)
    renders_path = Path(config.renders or workdir / RENDERS_FILE)
    renders = upstream(renders_path, RENDERS, "augmentface render")
    targets = read_manifest(
        renders.meta["params"]["targets"],
        TARGETS,
        run_first="augmentface synth-au or augmentface synth-va",
    )
    labels = {tuple(r[k] for k in TARGETS.key): r for r in targets.df.to_dict("records")}
    out_dir = Path(config.output or workdir / OUTPUT_DIR)
    path = out_dir / LABELS_FILE
    layout_root = None
    if config.layout is not None:
        layout_root = Path(config.layout_root or out_dir / config.layout).resolve()
        _refuse_overwriting_sources(layout_root, renders.df["image_path"])
    params = {
        "renders": str(renders_path.resolve()),
        "renders_digest": manifest_digest(
            renders.df, [*RENDERS.key, "status", "render_path", "roi_px", "target_landmarks_px"]
        ),
        "labels_digest": manifest_digest(
            targets.df, [*TARGETS.key, *LABEL_COLUMNS, "au_intensities", "source_residual"]
        ),
        "layout": config.layout,
        "layout_root": None if layout_root is None else str(layout_root),
        "method": config.method,
        "image_format": config.image_format,
        "jpeg_quality": config.jpeg_quality,
        "gates": asdict(config.gates),
        "max_source_residual": config.max_source_residual,
        "keep_rejected": config.keep_rejected,
        "fps": config.fps,
    }
    previous = previous_rows(path, LABELS, params)
    done = done_keys(previous, LABELS)
    rows = [r for r in renders.df.to_dict("records") if r["status"] == "ok"]
    report = StageReport("blend", path)
    todo = []
    for row in rows:
        if tuple(row[k] for k in LABELS.key) in done:
            report.skipped += 1
        else:
            todo.append(row)
    todo.sort(key=lambda r: frame_order(r["image_path"]))
    seed = targets.meta.get("seed")
    au_numbers = tuple(int(name[2:]) for name in AU_NAMES)
    cached: tuple[str, np.ndarray] | None = None
    lossless = config.image_format == "png"
    with (
        contextlib.ExitStack() as stack,
        ManifestWriter(
            path,
            LABELS,
            previous,
            params=params,
            seed=seed,
            face_model_id=renders.meta.get("face_model_id"),
            every_n=1000,
        ) as writer,
    ):
        gatekeeper = _open_gatekeeper(config, targets, stack)
        for row in progress(todo, "blend", len(todo), config.quiet):
            key = {k: row[k] for k in LABELS.key}
            target = labels[tuple(key.values())]
            label = {c: target[c] for c in LABEL_COLUMNS}
            name = f"{sample_name(**key)}.{config.image_format}"
            try:
                if cached is None or cached[0] != row["image_path"]:
                    cached = (row["image_path"], read_frame(row["image_path"]))
                crop, alpha = _read_render(row["render_path"])
                roi = tuple(int(v) for v in row["roi_px"])
                image = blend_face(cached[1], crop, alpha, roi, config.method)
                rejected = residual_conflict(target, au_numbers, config.max_source_residual)
                if gatekeeper:
                    rejected += gatekeeper.reasons(image, row, alpha, label, lossless)
                folder = "rejected" if rejected else "images"
                file = out_dir / folder / name
                if not rejected or config.keep_rejected:
                    write_image_atomic(file, image, jpeg_quality=config.jpeg_quality)
            except Exception as exc:  # the row gets a status; the run goes on
                status, message = row_failure(exc, row["image_path"])
                writer.add({**key, **label, "status": status, "error": message})
                report.fail(status, message)
                continue
            kept = not rejected or config.keep_rejected
            writer.add(
                {
                    **key,
                    **label,
                    "output_path": str(file.resolve()) if kept else None,
                    "method": config.method,
                    "seed": seed,
                    "status": "rejected" if rejected else "ok",
                    "error": "; ".join(rejected) if rejected else None,
                }
            )
            if rejected:
                report.reject(f"{file.name}: {'; '.join(rejected)}")
            else:
                report.ok()
    finished = read_manifest(path, LABELS, run_first="augmentface blend")
    if config.layout is not None and layout_root is not None:
        _write_layout(path, finished, renders.df, config.layout, layout_root)
    _write_sequences(finished.df, out_dir / SEQUENCES_DIR, config.fps)
    atomic_write_text(path.with_suffix(".csv"), finished.df.to_csv(index=False))
    return report


def _refuse_overwriting_sources(root: Path, image_paths) -> None:
    """A layout written where the source dataset lies would replace its files: refuse."""
    for ref in sorted(set(image_paths)):
        source = parse_frame_ref(ref)[0].resolve()
        if source.is_relative_to(root):
            raise UsageError(
                f"layout root {root} holds the source {source}; writing the layout there would "
                "replace the dataset's own files: choose another --layout-root"
            )


#: Targets whose AU columns are labels someone asked for; VA and emotion targets get their AUs
#: from a prior or a model reading, which a dataset's AU files must not present as ground truth.
AU_LABELLED_KINDS = ("au", "transfer")


def _write_layout(labels_path: Path, manifest, renders, layout: str, root: Path) -> None:
    """Write the finished outputs in a dataset's layout and record where each one went
    (``manifest.df`` and the file at ``labels_path`` both get the ``layout_path`` column)."""
    labels = manifest.df
    ok = labels[(labels["status"] == "ok") & labels["output_path"].notna()].copy()
    ok.loc[~ok["kind"].isin(AU_LABELLED_KINDS), list(AU_NAMES)] = np.nan
    landmarks = {
        tuple(r[k] for k in LABELS.key): r["target_ibug68_px"] for r in renders.to_dict("records")
    }
    ok["ibug68_px"] = [landmarks.get(tuple(r[k] for k in LABELS.key)) for _, r in ok.iterrows()]
    written = write_layout(layout, ok, root)
    labels.loc[written.index, "layout_path"] = written["frame_ref"].where(
        written["frame_ref"].notna(), written["written_path"]
    )
    meta = manifest.meta
    write_manifest(
        labels_path,
        labels,
        LABELS,
        params=meta["params"],
        seed=meta.get("seed"),
        face_model_id=meta.get("face_model_id"),
    )


def _write_sequences(labels, folder: Path, fps: float) -> None:
    """One video per smooth path (``synth-va --path``): its frames in order.

    A path with a failed or rejected frame gets no video (a gap would put every later frame
    out of step with its label); the log names it.
    """
    paths = labels[labels["sequence"].notna()]
    for (image_path, face, sequence, sample), group in paths.groupby(
        ["image_path", "face_index", "sequence", "sample"], sort=True
    ):
        stem = sample_name(image_path, int(face), str(sequence), int(sample))
        if not (group["status"] == "ok").all():
            log.warning("%s: not every frame of the path was made; no video written", stem)
            continue
        frames = [read_image(p) for p in group.sort_values("frame")["output_path"]]
        write_video(folder / f"{stem}.mp4", frames, fps)
