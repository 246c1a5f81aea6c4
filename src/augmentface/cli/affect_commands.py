"""Affect commands: ``synth-va`` (prior or VA class models; build, inspect, evaluate),
``synth-emotion`` (prior or emotion class models; build) and ``transfer``."""

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
from augmentface.cli.synth_commands import FramesOption, PathOption, path_targets_from
from augmentface.expression.class_models import (
    ClassModelConfig,
    ClassModelSource,
    EmotionClassSource,
)
from augmentface.expression.emotion_prior import EMOTIONS
from augmentface.expression.targets import (
    ExpressionTarget,
    emotion_target,
    read_targets_csv,
    va_grid,
    va_target,
)
from augmentface.face.model import load_face_model
from augmentface.stages.affect_models import (
    BuildClassModelsConfig,
    EvaluateVAConfig,
    histogram_table,
    load_models_for,
    run_build_class_models,
    run_evaluate_va,
    run_inspect,
    va_prior_offsets,
)
from augmentface.stages.common import DEFAULT_WORKDIR, FITS_FILE
from augmentface.stages.synth import SynthConfig, run_synth

Mode = Annotated[
    str,
    typer.Option(
        help="With --model: mean (each class's mean deformation, as Kollias et al.) or "
        "sample (sample 0 the mean, later samples drawn from the class's components)."
    ),
]
FitsIn = Annotated[
    Path | None,
    typer.Option(help="Fitted, labelled manifest (default WORKDIR/fits.parquet)."),
]
MinFrames = Annotated[
    int,
    typer.Option(
        min=2,
        help="Classes with fewer frames borrow the nearest populated class (within 0.45 "
        "in V–A) or the built-in prior; the model records which.",
    ),
]
Components = Annotated[
    int, typer.Option(min=1, help="Sparse localized components (SPLOCS) per class.")
]


def _synth(targets, config: SynthConfig, source, allow_failures: bool) -> None:
    finish([run_or_exit(run_synth, targets, config, source)], config.quiet, allow_failures)


def _build(fits, workdir, out, kind, min_frames, components, quiet) -> None:
    from augmentface.expression.splocs import SplocsConfig

    classes = run_or_exit(
        ClassModelConfig, splocs=SplocsConfig(n_components=components), min_frames=min_frames
    )
    config = BuildClassModelsConfig(
        fits=fits or Path(workdir) / FITS_FILE, out=out, kind=kind, classes=classes
    )
    report = run_or_exit(run_build_class_models, config)
    if quiet:
        return
    table = report.models.class_table()
    populated = int((table["source"] == "own").sum())
    err.print(
        f"{kind} class models: {populated} of {len(table)} classes from their own frames "
        f"(the others borrow: see `synth-va inspect`); frames dropped: "
        f"{ {k: v for k, v in report.models.dropped.items() if v} or 'none' }; "
        f"neutral references: {report.references}"
    )
    err.print(f"written: {report.path}")


# --- synth-va -----------------------------------------------------------------------------

synth_va_app = typer.Typer(
    help=(
        "Expression for a target valence/arousal in [-1, 1]. Default: the built-in prior "
        "(basic emotions on the circumplex, EMFACS prototypes through the FACS rig). With "
        "--model: the 10×10 class blendshape models of Kollias et al., built from your "
        "data with `synth-va build`. Writes WORKDIR/targets.parquet."
    ),
)
app.add_typer(synth_va_app, name="synth-va")


def _va_targets(valence, arousal, csv, grid, label, models) -> list[ExpressionTarget]:
    median = models.class_median if models is not None else None
    targets: list[ExpressionTarget] = []
    if (valence is None) != (arousal is None):
        raise typer.BadParameter("give both --valence and --arousal")
    if valence is not None and arousal is not None:
        targets.append(va_target(valence, arousal, label=label, class_median=median))
    if csv:
        targets += [
            va_target(t.valence, t.arousal, label=label, class_median=median)
            for t in read_targets_csv(csv, label="target")
        ]
    if grid:
        populated = (
            range(100)
            if models is None
            else [i for i, s in enumerate(models.sources) if s == "own"]
        )
        targets += va_grid(label=label, classes=populated, class_median=median)
    return targets


@synth_va_app.callback(invoke_without_command=True)
def synth_va(
    ctx: typer.Context,
    valence: Annotated[
        float | None,
        typer.Option(help="Target valence in [-1, 1] (AFEW-VA's [-10, 10]: divide by 10)."),
    ] = None,
    arousal: Annotated[float | None, typer.Option(help="Target arousal in [-1, 1].")] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="CSV of targets with columns valence,arousal.")
    ] = None,
    grid: Annotated[
        bool,
        typer.Option(
            "--grid",
            help="One target at the centre of each class: all 100 (prior) or every class "
            "populated by its own frames (--model).",
        ),
    ] = False,
    label: Annotated[
        str,
        typer.Option(
            help="Label written: 'target' (the requested pair) or 'class-median' (the 0.2 × 0.2 "
            "class's median, as Kollias et al.; the class centre in prior mode)."
        ),
    ] = "target",
    model: Annotated[
        Path | None, typer.Option(help="VA class models (.npz from `synth-va build`).")
    ] = None,
    mode: Mode = "mean",
    path: PathOption = None,
    frames: FramesOption = 50,
    workdir: Workdir = DEFAULT_WORKDIR,
    fits: FitsOption = None,
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
    models = run_or_exit(load_models_for, model, "va") if model is not None else None
    targets = run_or_exit(_va_targets, valence, arousal, csv, grid, label, models)
    if path:
        targets += run_or_exit(path_targets_from, path, frames, "va")
    if not targets:
        raise typer.BadParameter("give --valence and --arousal, --csv, --grid or --path")
    source = None
    if models is not None:
        face_model = load_face_model()
        source = run_or_exit(
            ClassModelSource, models, face_model.rig, mode, va_prior_offsets(face_model)
        )
    config = SynthConfig(workdir=workdir, fits=fits, samples=samples, seed=seed,
                         neutral_only=neutral_only, source_file=model, quiet=quiet,
                         execution=execution_options(workers, scheduler, cluster, shard,
                                                     worker_lifetime))  # fmt: skip
    _synth(targets, config, source, allow_failures)


@synth_va_app.command(
    "build",
    help=(
        "Build the 10×10 VA class blendshape models (Kollias et al.) from a fitted, "
        "VA-labelled manifest (`augmentface import afew-va|affwild|affwild2 …` then "
        "`fit3dmm`): per class the frame count, mean deformation (each frame minus its "
        "subject's neutral frames), median (V, A) and sparse localized components (SPLOCS, "
        "Neumann et al. 2013) with their coefficient distributions. Frames with invalid "
        "labels (Aff-Wild2's -5) are dropped and counted."
    ),
)
def synth_va_build(
    out: Annotated[Path, typer.Option(help="Class models to write (.npz).")],
    fits: FitsIn = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    min_frames: MinFrames = 30,
    components: Components = 4,
    quiet: Quiet = False,
) -> None:
    configure_logging(quiet)
    _build(fits, workdir, out, "va", min_frames, components, quiet)


@synth_va_app.command(
    "inspect",
    help=(
        "Show what class models do: the 10×10 histogram of frames per class, and a PNG of "
        "each class's mean face as a shaded mesh at its place in the V–A square (fallback "
        "classes framed orange (nearest class) or red (prior))."
    ),
)
def synth_va_inspect(
    model: Annotated[Path, typer.Argument(help="Class models (.npz).")],
    out: Annotated[Path | None, typer.Option(help="PNG (default: beside the model).")] = None,
    quiet: Quiet = False,
) -> None:
    configure_logging(quiet)
    models, figure = run_or_exit(run_inspect, model, out)
    if not quiet:
        if models.kind == "va":
            print_table(histogram_table(models).reset_index(), "frames per class (V across)")
        else:
            print_table(models.class_table(), "frames per emotion class")
        err.print(f"figure: {figure}")


@synth_va_app.command(
    "evaluate",
    help=(
        "On held-out subjects, a ridge regressor from deformations to (V, A) fitted on "
        "their real frames reads what the class models (mean mode) and the built-in prior "
        "synthesize for the same labels: CCC and MSE against the targets (Kollias et al.'s "
        "metrics), per class and overall (va_class -1), beside the real frames themselves."
    ),
)
def synth_va_evaluate(
    model: Annotated[Path, typer.Option(help="VA class models (.npz).")],
    fits: Annotated[Path, typer.Option(help="Fitted, VA-labelled manifest of held-out subjects.")],
    out: Annotated[Path | None, typer.Option(help="CSV (default: beside --fits).")] = None,
    quiet: Quiet = False,
) -> None:
    configure_logging(quiet)
    table = run_or_exit(run_evaluate_va, EvaluateVAConfig(model=model, fits=fits))
    path = out or fits.with_name("synth_va_evaluation.csv")
    atomic_write_text(path, table.to_csv(index=False))
    if not quiet:
        print_table(table[table["va_class"] == -1], "synth-va evaluate (all classes)")
        err.print(f"per class: {path}")


# --- synth-emotion --------------------------------------------------------------------------

synth_emotion_app = typer.Typer(
    help=(
        "Expression for a categorical emotion: "
        f"{', '.join(EMOTIONS)}. Default: EMFACS prototypes through the FACS rig, scaled by "
        "--intensity; with --model: one class blendshape model per emotion built from your "
        "labelled data (`synth-emotion build`). Label: the emotion and its intensity."
    ),
)
app.add_typer(synth_emotion_app, name="synth-emotion")


@synth_emotion_app.callback(invoke_without_command=True)
def synth_emotion(
    ctx: typer.Context,
    emotion: Annotated[
        list[str] | None,
        typer.Option("--emotion", help=f"Emotion, repeatable: {', '.join(EMOTIONS)}."),
    ] = None,
    intensity: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Intensity 0 (neutral) – 1 (full).")
    ] = 1.0,
    model: Annotated[
        Path | None, typer.Option(help="Emotion class models (.npz, `synth-emotion build`).")
    ] = None,
    mode: Mode = "mean",
    path: PathOption = None,
    frames: FramesOption = 50,
    workdir: Workdir = DEFAULT_WORKDIR,
    fits: FitsOption = None,
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
    targets = [run_or_exit(emotion_target, e, intensity) for e in emotion or []]
    if path:
        targets += run_or_exit(path_targets_from, path, frames, "emotion")
    if not targets:
        raise typer.BadParameter("give --emotion or --path", param_hint="--emotion")
    source = None
    if model is not None:
        models = run_or_exit(load_models_for, model, "emotion")
        source = run_or_exit(EmotionClassSource, models, load_face_model().rig, mode)
    config = SynthConfig(workdir=workdir, fits=fits, samples=samples, seed=seed,
                         neutral_only=neutral_only, source_file=model, quiet=quiet,
                         execution=execution_options(workers, scheduler, cluster, shard,
                                                     worker_lifetime))  # fmt: skip
    _synth(targets, config, source, allow_failures)


@synth_emotion_app.command(
    "build",
    help=(
        "Build one class blendshape model per emotion from a fitted manifest with emotion "
        "labels (Aff-Wild2's EXPR set, or a folder with a label CSV): frame count, mean "
        "deformation and SPLOCS components per class; 'other' is ignored; classes with too "
        "few frames use the EMFACS prior."
    ),
)
def synth_emotion_build(
    out: Annotated[Path, typer.Option(help="Class models to write (.npz).")],
    fits: FitsIn = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    min_frames: MinFrames = 30,
    components: Components = 4,
    quiet: Quiet = False,
) -> None:
    configure_logging(quiet)
    _build(fits, workdir, out, "emotion", min_frames, components, quiet)


# --- transfer -------------------------------------------------------------------------------


@app.command(
    help=(
        "Put one face's expression on every fitted face of WORKDIR (identity kept): the "
        "donor is a photo (fitted now) or a row of a fits manifest. Its label goes with it: "
        "the donor's dataset labels (AUs, valence/arousal, emotion) when it has any, else its "
        "fitted AU intensities. Writes WORKDIR/targets.parquet."
    ),
)
def transfer(
    donor: Annotated[
        Path, typer.Option("--from", help="A photo, or a fits manifest (with --row).")
    ],
    row: Annotated[
        int, typer.Option(min=0, help="Row of the fits manifest (0-based, among ok rows).")
    ] = 0,
    landmarker: Annotated[
        Path | None, typer.Option(help="Your own face_landmarker.task (photo donors).")
    ] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    fits: FitsOption = None,
    neutral_only: NeutralOnly = None,
    workers: Workers = 1,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    shard: ShardOption = None,
    worker_lifetime: WorkerLifetime = 3600.0,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    from augmentface.stages.transfer import TransferSource, load_donor, transfer_target

    configure_logging(quiet)
    found = run_or_exit(load_donor, donor, row, landmarker)
    source = TransferSource(found, load_face_model().rig.au_numbers)
    targets = [transfer_target(found)]
    config = SynthConfig(workdir=workdir, fits=fits, neutral_only=neutral_only,
                         source_file=donor, quiet=quiet,
                         execution=execution_options(workers, scheduler, cluster, shard,
                                                     worker_lifetime))  # fmt: skip
    _synth(targets, config, source, allow_failures)
