"""``augmentface import``: read a dataset in its own layout into a source manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from augmentface.cli._app import (
    AllowFailures,
    Quiet,
    Workdir,
    app,
    configure_logging,
    finish,
    run_or_exit,
)
from augmentface.datasets import DATASETS, ImportConfig
from augmentface.stages.common import DEFAULT_WORKDIR
from augmentface.stages.import_sources import ImportStageConfig, run_import


@app.command(
    "import",
    help=(
        "Read a dataset in its published layout into WORKDIR/sources.parquet: one row per "
        "frame (video frames are decoded on demand, never extracted), subject and clip ids, "
        "labels on the dataset's scale (raw_*) and normalised (label_*: AUs 0–5, valence "
        "and arousal in [-1, 1], emotion category). fit3dmm with no images reads it. "
        f"DATASET: {', '.join(DATASETS)}."
    ),
)
def import_command(
    dataset: Annotated[str, typer.Argument(help=f"Layout of ROOT: {', '.join(DATASETS)}.")],
    root: Annotated[Path, typer.Argument(help="The dataset's root folder.")],
    workdir: Workdir = DEFAULT_WORKDIR,
    camera: Annotated[str, typer.Option(help="DISFA camera: left or right.")] = "left",
    split: Annotated[
        str | None,
        typer.Option(
            help="Keep one split: Aff-Wild train/test, Aff-Wild2 Train/Validation, folder: the "
            "CSV's split column. Default: all."
        ),
    ] = None,
    labels_csv: Annotated[
        Path | None,
        typer.Option(
            help="folder only: CSV with a 'path' column (relative to ROOT) and any of "
            "subject_id, valence, arousal ([-1, 1]), AU1 … AU26 (0–5), emotion."
        ),
    ] = None,
    every_nth: Annotated[
        int, typer.Option(min=1, help="Keep every n-th frame of each clip (subsample video).")
    ] = 1,
    max_frames_per_clip: Annotated[
        int | None, typer.Option(min=1, help="Keep at most this many frames per clip.")
    ] = None,
    allow_outside_root: Annotated[
        bool,
        typer.Option(
            "--allow-outside-root",
            help="Import images and labels that resolve outside ROOT (symlinks followed); "
            "default: they get status outside_root and are never opened.",
        ),
    ] = False,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    configure_logging(quiet)
    dataset_config = run_or_exit(
        ImportConfig,
        camera=camera,
        split=split,
        labels_csv=labels_csv,
        every_nth=every_nth,
        max_frames_per_clip=max_frames_per_clip,
        allow_outside_root=allow_outside_root,
    )
    config = ImportStageConfig(workdir=workdir, dataset=dataset_config)
    finish([run_or_exit(run_import, dataset, root, config)], quiet, allow_failures)
