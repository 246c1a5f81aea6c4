"""``run``: every stage in order on one work directory, then a contact sheet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from augmentface.blend import BLEND_METHODS, BlendMethod
from augmentface.contact_sheet import write_contact_sheet
from augmentface.errors import UsageError
from augmentface.expression.source_residual import RESIDUAL_LIMIT
from augmentface.expression.targets import ExpressionTarget, au_target, va_target
from augmentface.metrics.measure import QualityGates
from augmentface.stages.blend import BlendConfig, run_blend
from augmentface.stages.common import DEFAULT_WORKDIR, StageReport
from augmentface.stages.execution import Execution, dask_client
from augmentface.stages.fit3dmm import Fit3dmmConfig, run_fit3dmm
from augmentface.stages.render import RenderConfig, run_render
from augmentface.stages.synth import SynthConfig, run_synth


def DEFAULT_TARGETS() -> tuple[ExpressionTarget, ...]:
    """What ``make augment`` synthesizes: readable prototypes a person can check at a glance."""
    return (
        au_target({6: 3.0, 12: 4.0}),  # Duchenne smile
        au_target({1: 4.0, 2: 4.0, 5: 2.0, 25: 3.0, 26: 4.0}),  # surprise
        au_target({1: 4.0, 4: 3.0, 15: 4.0}),  # sadness
        au_target({4: 4.0, 5: 2.0, 7: 3.0, 23: 3.0}),  # anger
        au_target({43: 5.0}),  # eyes closed
        va_target(0.8, 0.4),  # happy, excited
        va_target(-0.6, 0.6),  # distressed: fear/anger
        va_target(-0.7, -0.4),  # sad, depressed
    )


@dataclass(frozen=True)
class PipelineConfig:
    workdir: Path = DEFAULT_WORKDIR
    all_faces: bool = False
    method: BlendMethod = "alpha"
    samples: int = 1
    seed: int = 0
    contact_sheet: bool = True
    gates: QualityGates = field(default_factory=QualityGates)
    max_source_residual: float | None = RESIDUAL_LIMIT
    keep_rejected: bool = False
    #: Run render then blend, keeping render's crops and manifest; without it blend renders
    #: each target itself (``blend --from-targets``: the same outputs, no intermediate files).
    keep_renders: bool = False
    #: Where fit3dmm, render and blend run; one Dask cluster serves all three.
    execution: Execution = field(default_factory=Execution)
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.method not in BLEND_METHODS:
            raise UsageError(
                f"unknown blend method {self.method!r}; allowed: {', '.join(BLEND_METHODS)}"
            )


def run_pipeline(
    inputs: Sequence[str | Path], targets: Sequence[ExpressionTarget], config: PipelineConfig
) -> list[StageReport]:
    """fit3dmm -> synth -> render + blend (-> contact sheet); returns each stage's report.

    Render and blend run as one pass (``blend --from-targets``) unless ``keep_renders``.
    """
    if config.execution.shard is not None:
        raise UsageError("run does every row; give --shard to the stages one by one")
    with dask_client(config.execution) as client:
        # The stages connect to the one cluster started here instead of each starting its own.
        execution = config.execution
        if client is not None:
            execution = Execution(scheduler=client.scheduler.address)
        return _run_stages(inputs, targets, config, execution)


def _run_stages(inputs, targets, config: PipelineConfig, execution: Execution) -> list[StageReport]:
    workdir = Path(config.workdir)
    reports = [
        run_fit3dmm(
            inputs,
            Fit3dmmConfig(
                workdir=workdir,
                all_faces=config.all_faces,
                execution=execution,
                quiet=config.quiet,
            ),
        )
    ]
    reports.append(
        run_synth(
            targets,
            SynthConfig(
                workdir=workdir, samples=config.samples, seed=config.seed, quiet=config.quiet
            ),
        )
    )
    if config.keep_renders:
        reports.append(
            run_render(RenderConfig(workdir=workdir, execution=execution, quiet=config.quiet))
        )
    reports.append(
        run_blend(
            BlendConfig(
                workdir=workdir,
                from_targets=not config.keep_renders,
                method=config.method,
                gates=config.gates,
                max_source_residual=config.max_source_residual,
                keep_rejected=config.keep_rejected,
                execution=execution,
                quiet=config.quiet,
            )
        )
    )
    if config.contact_sheet:
        write_contact_sheet(workdir, workdir / "contact_sheet.png")
    return reports
