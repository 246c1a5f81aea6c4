"""``synth-au``: expressions for target AUs, direct (FACS rig) or learned (train, evaluate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from augmentface.atomic import atomic_write_text
from augmentface.cli._app import (
    AllowFailures,
    Cluster,
    FitsOption,
    NeutralOnly,
    Quiet,
    Samples,
    Scheduler,
    Seed,
    ShardOption,
    Workdir,
    WorkerLifetime,
    Workers,
    app,
    configure_logging,
    err,
    execution_options,
    finish,
    print_table,
    run_or_exit,
)
from augmentface.errors import UsageError
from augmentface.expression.affect_paths import (
    PathConfig,
    interpolate_path,
    parse_path,
    path_targets,
)
from augmentface.expression.targets import (
    ExpressionTarget,
    au_target,
    parse_au_items,
    read_targets_csv,
)
from augmentface.face.model import load_face_model
from augmentface.stages.common import DEFAULT_WORKDIR, FITS_FILE
from augmentface.stages.synth import SynthConfig, run_synth


def _au_targets(au: list[str] | None, aus: str | None, csv: Path | None) -> list[ExpressionTarget]:
    items = list(au or []) + ([aus] if aus else [])
    targets = [au_target(parse_au_items(items))] if items else []
    if csv:
        targets += read_targets_csv(csv)
    return targets


def path_targets_from(text: str, frames: int, kind: str) -> list[ExpressionTarget]:
    """Per-frame targets of a smooth path of waypoints of ``kind`` ("va", "au", "emotion")."""
    path = parse_path(text)
    if path.kind != kind:
        raise UsageError(f"this command takes {kind} waypoints; {text!r} has {path.kind} ones")
    values = interpolate_path(path, PathConfig(frames))
    return path_targets(path, values, sequence=f"{kind}path")


PathOption = Annotated[
    str | None,
    typer.Option(
        "--path",
        help="A smooth path through waypoints, one target per frame, rendered as numbered "
        'frames and an MP4 by blend: VA "0,0 -> 0.6,0.4", AU "AU12=0 -> AU12=4,AU6=2", '
        'emotion "neutral -> happiness:0.8". Constant speed with eased ends.',
    ),
]
FramesOption = Annotated[int, typer.Option("--frames", min=2, help="Frames of a --path sequence.")]


synth_au_app = typer.Typer(
    help=(
        "Expression for target Action Units. Direct FACS rig by default; with --model, a "
        "learned CGAN/CAAE (train one with `synth-au train`). All --au/--aus items form ONE "
        "target; a CSV gives one target per row. The target replaces the face's own "
        "expression. AUs: 1 2 4 5 6 7 9 10 12 14 15 16 17 20 23 24 25 26 43 (45 = 43). "
        "Writes WORKDIR/targets.parquet."
    ),
    no_args_is_help=False,
)
app.add_typer(synth_au_app, name="synth-au")


@synth_au_app.callback(invoke_without_command=True)
def synth_au(
    ctx: typer.Context,
    au: Annotated[
        list[str] | None,
        typer.Option("--au", help="One AU target, e.g. --au 12=3 --au 6=2 (FACS intensity 0–5)."),
    ] = None,
    aus: Annotated[
        str | None, typer.Option("--aus", help='AU targets as one list: "AU6=2,AU12=3".')
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="CSV of targets, one row each, columns AU1 … AU43 (0–5)."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Learned model (.pt from `synth-au train`): N samples per target drawn from "
            "it, conditioned on each face's identity (CAAE). Default: the FACS rig."
        ),
    ] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    fits: FitsOption = None,
    path: PathOption = None,
    frames: FramesOption = 50,
    samples: Samples = 1,
    seed: Seed = 0,
    neutral_only: NeutralOnly = None,
    workers: Workers = 1,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    shard: ShardOption = None,
    worker_lifetime: WorkerLifetime = 3600.0,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    configure_logging(quiet)
    targets = run_or_exit(_au_targets, au, aus, csv)
    if path:
        targets += run_or_exit(path_targets_from, path, frames, "au")
    if not targets:
        raise typer.BadParameter("give --au, --aus, --csv or --path", param_hint="--au")
    source = None
    if model is not None:
        from augmentface.expression.learned.source import LearnedAUSource  # torch: load late

        source = run_or_exit(LearnedAUSource.from_checkpoint, model, load_face_model())
    config = SynthConfig(
        workdir=workdir,
        fits=fits,
        samples=samples,
        seed=seed,
        neutral_only=neutral_only,
        source_file=model,
        quiet=quiet,
        execution=execution_options(workers, scheduler, cluster, shard, worker_lifetime),
    )
    finish([run_or_exit(run_synth, targets, config, source)], quiet, allow_failures)


@synth_au_app.command(
    "train",
    help=(
        "Train a learned AU model (Liu et al. 2019) on a fitted, labelled manifest "
        "(`augmentface import disfa …` then `fit3dmm`): a CGAN G(z, y) or a CAAE that also "
        "conditions on the face's identity, generating expression coefficients in a PCA "
        "basis of the data's own deformations. Subjects are split for validation; the "
        "checkpoint carries its config, AUs, bases and face-model id."
    ),
)
def synth_au_train(
    out: Annotated[Path, typer.Option(help="Checkpoint to write (.pt).")],
    fits: Annotated[
        Path | None,
        typer.Option(help="Fitted, labelled manifest (default WORKDIR/fits.parquet)."),
    ] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    model: Annotated[
        str, typer.Option(help="cgan (conditional GAN) or caae (conditional adversarial AE).")
    ] = "caae",
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training frames.")] = 10,
    min_steps: Annotated[
        int,
        typer.Option(
            min=1,
            help="Least number of optimiser steps: a small manifest trains for more epochs "
            "(too few steps generate expressions well below their size).",
        ),
    ] = 1000,
    batch_size: Annotated[int, typer.Option(min=1, help="Frames per step.")] = 512,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")] = 1e-3,
    soft_labels: Annotated[
        float,
        typer.Option(
            help="Soft-label half-width in FACS units: labels y + U(-w, w), clipped to 0–5."
        ),
    ] = 0.5,
    no_soft_labels: Annotated[
        bool, typer.Option("--no-soft-labels", help="Train on the labels as they are.")
    ] = False,
    validation_share: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of subjects held out for validation.")
    ] = 0.2,
    device: Annotated[str, typer.Option(help="cpu, or cuda when present.")] = "cpu",
    seed: Seed = 0,
    quiet: Quiet = False,
) -> None:
    from augmentface.expression.learned.config import TrainConfig  # torch: load late
    from augmentface.stages.learned_au import TrainStageConfig, run_train_au

    configure_logging(quiet)
    train = run_or_exit(
        TrainConfig,
        model=model,
        epochs=epochs,
        min_steps=min_steps,
        batch_size=batch_size,
        lr=lr,
        soft_label_width=0.0 if no_soft_labels else soft_labels,
        validation_share=validation_share,
        device=device,
        seed=seed,
    )
    config = TrainStageConfig(fits=fits or Path(workdir) / FITS_FILE, out=out, train=train)

    def show(stats) -> None:
        if not quiet:
            losses = ", ".join(f"{k} {v:.3f}" for k, v in stats.losses.items())
            err.print(
                f"epoch {stats.epoch}: {stats.seconds:.1f} s, {losses}; validation label MAE "
                f"{stats.val_label_mae:.2f} (real frames {stats.val_label_mae_real:.2f})"
            )

    trained = run_or_exit(run_train_au, config, show)
    if not quiet:
        summary = trained.summary
        err.print(f"model: {out} ({model}, {trained.basis.n_components} coefficients; {summary})")


@synth_au_app.command(
    "train-details",
    help=(
        "Learn per-AU expression-detail maps (the wrinkles and folds an AU makes, as shading "
        "in the face mesh's UV space) from a fitted, labelled manifest (`augmentface import "
        "disfa …` then `fit3dmm`): each frame's log luminance against its subject's neutral "
        "frames (every AU label below 1), regressed per texel on the AU labels (0–5). A map "
        "is the log luminance ratio at intensity 5. Writes an .npz for `augmentface render "
        "--details`, refused by another face model."
    ),
)
def synth_au_train_details(
    out: Annotated[Path, typer.Option(help="Maps to write (.npz).")],
    fits: Annotated[
        Path | None,
        typer.Option(help="Fitted, labelled manifest (default WORKDIR/fits.parquet)."),
    ] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    size: Annotated[
        int,
        typer.Option(
            min=16,
            help="Texels on a side of the maps, a power of two (a texel is ~1.6 mm at 128; "
            "128 suits faces of 150–300 px, 256 larger ones).",
        ),
    ] = 128,
    ridge: Annotated[
        float, typer.Option(min=0.0, help="Ridge penalty per map, in frames at intensity 5.")
    ] = 1.0,
    min_frames: Annotated[
        int, typer.Option(min=1, help="Texels seen in fewer frames are left at 0.")
    ] = 20,
    unsteady: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Texels whose log luminance varies between a subject's neutral frames more "
            "than this many times its median over the face are left at 0 (hair, the face "
            "outline: the registration is unsteady there).",
        ),
    ] = 3.0,
    quiet: Quiet = False,
) -> None:
    from augmentface.stages.train_details import DetailLearnConfig, learn_detail_maps

    configure_logging(quiet)
    config = run_or_exit(
        DetailLearnConfig,
        fits=fits or Path(workdir) / FITS_FILE,
        out=out,
        size=size,
        ridge=ridge,
        min_frames=min_frames,
        unsteady=unsteady,
    )
    learned = run_or_exit(learn_detail_maps, config, quiet)
    if not quiet:
        aus = " ".join(f"AU{au}" for au in learned.maps.au_numbers)
        skipped = (
            f"; subjects without a neutral frame skipped: {', '.join(learned.skipped_subjects)}"
            if learned.skipped_subjects
            else ""
        )
        err.print(
            f"details: {out} ({aus}; {size}x{size} texels, {learned.coverage:.0%} of the skin "
            f"learned; {learned.frames} frames of {learned.subjects} subjects, "
            f"{learned.failed_frames} unreadable{skipped})"
        )


@synth_au_app.command(
    "evaluate",
    help=(
        "Compare direct mode (the FACS rig) and, with --model, a learned model on held-out "
        "subjects: label fidelity (ICC(3,1) and MAE of a ridge AU reader fitted on the real "
        "frames), realism (MMD² to real coefficients with the same labels) and diversity "
        "(RMS mm between samples of one label). Prints the table and writes it as CSV."
    ),
)
def synth_au_evaluate(
    fits: Annotated[Path, typer.Option(help="Fitted, labelled manifest of held-out subjects.")],
    model: Annotated[Path | None, typer.Option(help="Learned model (.pt) to compare.")] = None,
    out: Annotated[Path | None, typer.Option(help="CSV to write (default: beside --fits).")] = None,
    targets: Annotated[
        int, typer.Option(min=1, help="Held-out frames whose labels are generated.")
    ] = 2000,
    seed: Seed = 0,
    quiet: Quiet = False,
) -> None:
    from augmentface.expression.au_evaluation import AUEvaluationConfig  # torch: load late
    from augmentface.stages.learned_au import EvaluateAUStageConfig, run_evaluate_au

    configure_logging(quiet)
    config = EvaluateAUStageConfig(
        fits=fits, model=model, evaluation=AUEvaluationConfig(n_targets=targets, seed=seed)
    )
    table = run_or_exit(run_evaluate_au, config)
    path = out or fits.with_name("synth_au_evaluation.csv")
    atomic_write_text(path, table.to_csv(index=False))
    if not quiet:
        print_table(table, "synth-au evaluate: per AU, per source")
        err.print(f"written: {path}")
