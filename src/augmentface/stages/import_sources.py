"""Stage ``import``: a dataset root -> the source manifest that fit3dmm reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from augmentface.datasets import ImportConfig, import_dataset, write_sources
from augmentface.errors import LabelError, LabelMismatchError, MissingLabelError
from augmentface.stages.common import DEFAULT_WORKDIR, SOURCES_FILE, StageReport, log


@dataclass(frozen=True)
class ImportStageConfig:
    """Settings of ``augmentface import`` (see its ``--help``)."""

    workdir: Path = DEFAULT_WORKDIR
    dataset: ImportConfig = field(default_factory=ImportConfig)


#: Statuses of frames whose image is fine but whose labels are not: such frames are imported
#: (fit3dmm fits them, without labels), so they do not fail the import; one line per status
#: reports them. Aff-Wild2 marks thousands of frames -5 or -1 as a matter of course.
LABEL_STATUSES = (LabelError.status, LabelMismatchError.status, MissingLabelError.status)


def run_import(kind: str, root: str | Path, config: ImportStageConfig | None = None) -> StageReport:
    """Read dataset ``root`` (layout ``kind``) and write ``<workdir>/sources.parquet``.

    Every frame is recorded with its status, never dropped. Frames whose only problem is their
    labels count as done and are reported by one log line per status; frames that cannot be
    read (a video that does not open) count as failed.
    """
    config = config or ImportStageConfig()
    root = Path(root).expanduser().resolve()
    rows = import_dataset(kind, root, config.dataset)
    path = Path(config.workdir) / SOURCES_FILE
    params = {"dataset": kind, "root": str(root), **asdict(config.dataset)}
    write_sources(rows, path, params=params)
    report = StageReport("import", path)
    for status, group in rows.groupby("status", sort=True):
        if status == "ok":
            report.done += len(group)
            continue
        example = group["error"].iloc[0]
        if status in LABEL_STATUSES:
            report.done += len(group)
            log.warning("%d frames imported without labels (%s), e.g. %s", len(group), status,
                        example)  # fmt: skip
        else:
            report.failed[status] += len(group)
            report.examples.setdefault(status, example)
            log.warning("%d frames cannot be read (%s), e.g. %s", len(group), status, example)
    return report
