"""The Typer app, the options every command shares, and the summary/exit-code logic.

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
from augmentface.stages.common import StageReport
from augmentface.stages.execution import Execution, Shard

app = typer.Typer(
    help="Augment affect datasets with new, correctly labelled expression images of the same "
    "people. Stages: [import ->] fit3dmm -> synth-au | synth-va | synth-emotion | transfer -> "
    "render -> blend (or `run` for all).",
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
MaxSourceResidual = Annotated[
    float,
    typer.Option(
        "--max-source-residual",
        min=0.1,
        help="Reject an output when the photo's own expression survives in it against its "
        "label by at least this much (FACS units, 0–5; 2 = 'B', slight but clear): a broad "
        "smile under a sadness label, raised brows under a frown. What survives is what the "
        "photo shows beyond a person's own shape, less the target. Above 5: keep every output.",
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
        help="Samples per face and target, all seeded. Rig and priors: sample 0 is the target "
        "itself, later ones add jitter (SD 0.3 AU intensity); class models in sample mode: "
        "sample 0 is the class mean, later ones draws; learned models: every sample a draw.",
    ),
]

Workers = Annotated[
    int,
    typer.Option(
        min=1,
        help="Worker processes of a local Dask cluster (1: this process). Each worker keeps "
        "its models loaded and is replaced after --worker-lifetime seconds (MediaPipe leaks).",
    ),
]
Scheduler = Annotated[
    str | None,
    typer.Option(help="Address of a running Dask scheduler (tcp://host:8786) to run on."),
]
Cluster = Annotated[
    Path | None,
    typer.Option(
        help="YAML file of a batch-queue cluster (Slurm, PBS, SGE, LSF) through dask-jobqueue; "
        "see examples/cluster-slurm.yaml."
    ),
]
ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="I/N: do only shard I (0-based) of N, in this process, without Dask (array jobs, "
        "e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT); the shards write one "
        "manifest side by side.",
    ),
]
WorkerLifetime = Annotated[
    float,
    typer.Option(
        min=60, help="Seconds after which Dask replaces a worker (MediaPipe leaks memory)."
    ),
]


def execution_options(
    workers: int,
    scheduler: str | None,
    cluster: Path | None,
    shard: str | None,
    worker_lifetime_s: float = 3600.0,
) -> Execution:
    """The :class:`Execution` the execution options describe (errors: one line, exit 2)."""
    return run_or_exit(
        Execution,
        workers=workers,
        scheduler=scheduler,
        cluster=cluster,
        shard=None if shard is None else run_or_exit(Shard.parse, shard),
        worker_lifetime_s=worker_lifetime_s,
    )


FitsOption = Annotated[
    Path | None,
    typer.Option(help="Fitted faces to synthesize on (default WORKDIR/fits.parquet)."),
]
NeutralOnly = Annotated[
    bool | None,
    typer.Option(
        "--neutral-only/--any-source",
        help="Synthesize only on neutral faces (by their dataset labels when present: every "
        "AU below 1, (V, A) within 0.2 of the centre, emotion neutral; else by MediaPipe's "
        "blendshapes), or on every face. Default: neutral faces when the fits carry dataset "
        "labels, as Kollias et al. do (a source's own expression partly survives in the "
        "output), every face otherwise (blend then rejects outputs whose surviving expression "
        "contradicts their label).",
    ),
]


def print_table(table, title: str) -> None:
    """Print a data frame as a rich table (floats to 3 digits)."""
    out = Table(title=title)
    for column in table.columns:
        out.add_column(str(column), overflow="fold")
    for row in table.itertuples(index=False):
        out.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    err.print(out)


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


def finish(reports: list[StageReport], quiet: bool, allow_failures: bool) -> None:
    _summary(reports, quiet)
    if any(r.n_failed for r in reports) and not allow_failures:
        raise typer.Exit(1)


def configure_logging(quiet: bool) -> None:
    # MediaPipe's C++ side logs through glog/absl; keep its chatter out of users' terminals.
    os.environ.setdefault("GLOG_minloglevel", "2")
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="%(message)s")


def run_or_exit(func, *args, **kwargs):
    """Call a library function; a usage error, or a file-system error that stops the whole
    run (a workdir that is a file, a read-only or full disk), is one line on stderr and exit
    code 2. What a run wrote before is kept: manifests are written part by part."""
    try:
        return func(*args, **kwargs)
    except AugmentfaceError as exc:
        typer.echo(f"error: {exc}", err=True)  # one unwrapped line, easy to grep in job logs
        raise typer.Exit(2) from None
    except OSError as exc:
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        reason = exc.strerror or str(exc)
        typer.echo(f"error: {where + ': ' if where else ''}{reason}", err=True)
        raise typer.Exit(2) from None
