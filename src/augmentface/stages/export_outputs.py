"""``export-layout``: what needs every output of blend at once, written after it.

Blend composites and labels one output at a time (in shards, on Dask workers); what needs
them all is done here, once, from its labels manifest: ``labels.csv``, the videos of smooth
paths (``synth-va --path``) and, with a layout, the outputs in a dataset's own layout and
label format. ``blend`` without ``--shard`` runs it at the end (``blend --layout`` is the
shorthand); after array jobs, run it once when every blend shard is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augmentface.atomic import atomic_write_text
from augmentface.datasets.frames import parse_frame_ref
from augmentface.datasets.layouts import LAYOUTS, write_layout
from augmentface.errors import UsageError
from augmentface.imageio import read_image
from augmentface.manifest import read_manifest, write_manifest
from augmentface.manifest_index import ManifestIndex
from augmentface.manifest_parts import WriterLock
from augmentface.stages.common import DEFAULT_WORKDIR, LABELS_FILE, OUTPUT_DIR, log, sample_name
from augmentface.stages.lineage import upstream_path
from augmentface.stages.schemas import AU_NAMES, LABELS, RENDERS
from augmentface.video import write_video

SEQUENCES_DIR = "sequences"

#: Targets whose AU columns are labels someone asked for; VA and emotion targets get their AUs
#: from a prior or a model reading, which a dataset's AU files must not present as ground truth.
AU_LABELLED_KINDS = ("au", "transfer")


@dataclass(frozen=True)
class ExportOutputsConfig:
    """Settings of ``augmentface export-layout`` (and of blend's ``--layout`` shorthand)."""

    workdir: Path = DEFAULT_WORKDIR
    output: Path | None = None  # default: <workdir>/output
    #: Also write the outputs in a dataset's own layout ("flat", "disfa", "afew-va",
    #: "affwild2"), under ``layout_root`` (default ``<output>/<layout>``).
    layout: str | None = None
    layout_root: Path | None = None
    #: Frame rate of the videos written for smooth paths (``synth-va --path``).
    fps: float = 25.0

    def __post_init__(self) -> None:
        if self.layout is not None and self.layout not in LAYOUTS:
            raise UsageError(f"unknown layout {self.layout!r}; allowed: {', '.join(LAYOUTS)}")
        if not self.fps > 0:
            raise UsageError(f"fps must be > 0, got {self.fps}")

    @property
    def out_dir(self) -> Path:
        return Path(self.output or Path(self.workdir) / OUTPUT_DIR)

    def root(self) -> Path | None:
        """Where the layout goes (None without a layout)."""
        if self.layout is None:
            return None
        return Path(self.layout_root or self.out_dir / self.layout).resolve()


def run_export_outputs(config: ExportOutputsConfig) -> Path:
    """Write ``labels.csv``, the path videos and (with ``config.layout``) the dataset layout
    from ``<output>/labels.parquet``; returns the CSV's path.

    Raises
    ------
    MissingManifestError
        No labels manifest (run blend first).
    ManifestBusyError
        A blend run (or shard) is still writing it.
    UsageError
        The layout root holds the sources (it would replace the dataset's own files).
    """
    path = config.out_dir / LABELS_FILE
    # Held while reading and rewriting: no blend shard may add rows that this would miss.
    lock = WriterLock(path)
    try:
        finished = read_manifest(path, LABELS, run_first="augmentface blend")
        root = config.root()
        if config.layout is not None and root is not None:
            refuse_overwriting_sources(root, finished.df["image_path"])
            renders_path = upstream_path(finished.meta, "renders", path)
            _write_layout(path, finished, renders_path, config.layout, root)
        _write_sequences(finished.df, config.out_dir / SEQUENCES_DIR, config.fps)
        csv = path.with_suffix(".csv")
        atomic_write_text(csv, finished.df.to_csv(index=False))
    finally:
        lock.release()
    return csv


def refuse_overwriting_sources(root: Path, image_paths) -> None:
    """A layout written where the source dataset lies would replace its files: refuse."""
    for ref in sorted(set(image_paths)):
        source = parse_frame_ref(ref)[0].resolve()
        if source.is_relative_to(root):
            raise UsageError(
                f"layout root {root} holds the source {source}; writing the layout there would "
                "replace the dataset's own files: choose another --layout-root"
            )


def _write_layout(
    labels_path: Path, manifest, renders_path: Path, layout: str, root: Path
) -> None:
    """Write the finished outputs in a dataset's layout and record where each one went
    (``manifest.df`` and the file at ``labels_path`` both get the ``layout_path`` column)."""
    labels = manifest.df
    ok = labels[(labels["status"] == "ok") & labels["output_path"].notna()].copy()
    # Only files blend wrote are copied: a tampered manifest must not smuggle any readable
    # file (/etc/hostname) into a dataset layout.
    images = (labels_path.parent / "images").resolve()
    foreign = ~ok["output_path"].map(lambda p: Path(p).resolve().is_relative_to(images))
    for path in ok.loc[foreign, "output_path"]:
        log.warning("%s: not an output of this run (outside %s); not in the layout", path, images)
    ok = ok[~foreign]
    ok.loc[~ok["kind"].isin(AU_LABELLED_KINDS), list(AU_NAMES)] = np.nan
    renders = ManifestIndex(renders_path, RENDERS, ["target_ibug68_px"])
    ok["ibug68_px"] = [
        (renders.get(key) or {}).get("target_ibug68_px")
        for key in ok[list(LABELS.key)].itertuples(index=False, name=None)
    ]
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
