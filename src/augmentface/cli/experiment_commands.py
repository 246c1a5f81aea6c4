"""``augmentface experiment au|va``: does augmentation help an estimator? The papers'
subject-independent evaluation of ``real`` against ``real+augmented`` in one command."""

from __future__ import annotations

from typing import Annotated

import typer

from augmentface.cli._app import Quiet, Workdir, app, configure_logging, print_table, run_or_exit
from augmentface.experiment.data import KINDS
from augmentface.experiment.estimators import ESTIMATORS
from augmentface.experiment.report import primary_metric, summary_table
from augmentface.experiment.run import CONTROLS, ExperimentConfig, run_experiment
from augmentface.stages.common import DEFAULT_WORKDIR


@app.command(
    help=(
        "Train the same estimator on the real training frames (condition `real`) and on the "
        "same frames plus augmented ones of the same training subjects (`real+augmented`), "
        "with the same steps and seeds, in subject-independent folds (DISFA 3, AFEW-VA 5, "
        "Aff-Wild2 its train/validation split, else --folds), and test on the held-out "
        "subjects' real frames. AU: ICC(3,1), MSE, PCC on FACS 0–5; VA: CCC, PCC, MSE on "
        "[-1, 1]. Reads WORKDIR/fits.parquet and WORKDIR/output/labels.parquet; writes "
        "WORKDIR/experiment/ (results.csv, results.png, protocol.json; a finished fold is "
        "kept when the run is repeated)."
    ),
)
def experiment(
    kind: Annotated[str, typer.Argument(help="au (AU intensities) or va (valence/arousal).")],
    workdir: Workdir = DEFAULT_WORKDIR,
    folds: Annotated[
        int | None,
        typer.Option(min=2, help="Subject-independent folds (default: the dataset's protocol)."),
    ] = None,
    ratio: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Augmented images per real training frame in `real+augmented` (0–any; drawn "
            "with replacement once the fold's augmented images run out).",
        ),
    ] = 1.0,
    balance: Annotated[
        bool,
        typer.Option(
            "--balance",
            help="Draw augmented images to flatten the label distribution (AU: inverse share "
            "of each AU's intensity level 0–5; VA: of its 10×10 bin).",
        ),
    ] = False,
    estimator: Annotated[
        str,
        typer.Option(help=f"Estimator: {', '.join(ESTIMATORS)} (hog-ridge: seconds on CPU)."),
    ] = "hog-ridge",
    steps: Annotated[
        int,
        typer.Option(min=1, help="Optimiser steps of the CNN (batches of 32); both conditions."),
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of folds, augmented draws and training.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda (the CNN).")] = "cpu",
    crop_size: Annotated[
        int, typer.Option(min=32, max=512, help="Side of the aligned face crops (px).")
    ] = 112,
    control: Annotated[
        str,
        typer.Option(
            help="Sanity control: none; shuffled-labels (training labels permuted: expect no "
            "skill); poisoned-augmentation (augmented labels permuted: expect a loss)."
        ),
    ] = "none",
    quiet: Quiet = False,
) -> None:
    configure_logging(quiet)
    if kind not in KINDS:
        raise typer.BadParameter("must be au or va", param_hint="KIND")
    if estimator not in ESTIMATORS:
        raise typer.BadParameter(
            f"must be one of {', '.join(ESTIMATORS)}", param_hint="--estimator"
        )
    if control not in CONTROLS:
        raise typer.BadParameter(f"must be one of {', '.join(CONTROLS)}", param_hint="--control")
    if device not in ("cpu", "cuda"):
        raise typer.BadParameter("must be cpu or cuda", param_hint="--device")
    config = run_or_exit(
        ExperimentConfig,
        workdir=workdir,
        kind=kind,
        folds=folds,
        ratio=ratio,
        balance=balance,
        estimator=estimator,
        steps=steps,
        seed=seed,
        device=device,
        crop_size=crop_size,
        control=control,
        quiet=quiet,
    )
    say = None if quiet else (lambda line: typer.echo(line, err=True))
    result = run_or_exit(run_experiment, config, progress=say)
    if not quiet:
        metric = primary_metric(kind).upper()
        print_table(
            summary_table(result.results, kind), f"experiment {kind}: fold means ({metric})"
        )
        typer.echo(f"wrote {result.out_dir}/results.csv, results.png, protocol.json", err=True)
