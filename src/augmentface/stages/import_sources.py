"""Stage ``import``: a dataset root -> the source manifest that fit3dmm reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from augmentface.datasets import ImportConfig, import_dataset, write_sources
from augmentface.stages.common import DEFAULT_WORKDIR, StageReport
from augmentface.stages.fit3dmm import SOURCES_FILE


@dataclass(frozen=True)
class ImportStageConfig:
    """Settings of ``augmentface import`` (see its ``--help``)."""

    workdir: Path = DEFAULT_WORKDIR
    dataset: ImportConfig = field(default_factory=ImportConfig)


def run_import(kind: str, root: str | Path, config: ImportStageConfig | None = None) -> StageReport:
    """Read dataset ``root`` (layout ``kind``) and write ``<workdir>/sources.parquet``.

    Frames whose labels are invalid are recorded with their status (counted as failed in the
    report, with the first message) but never dropped; fit3dmm still fits them.
    """
    config = config or ImportStageConfig()
    root = Path(root).expanduser().resolve()
    rows = import_dataset(kind, root, config.dataset)
    path = Path(config.workdir) / SOURCES_FILE
    params = {"dataset": kind, "root": str(root), **asdict(config.dataset)}
    write_sources(rows, path, params=params)
    report = StageReport("import", path)
    for row in rows[["status", "error"]].itertuples(index=False):
        if row.status == "ok":
            report.ok()
        else:
            report.fail(row.status, row.error)
    return report
