"""Where a stage's shards run: in this process, on a Dask cluster, or as one array-job shard.

Dask owns scheduling, retries and worker lifetime; augmentface only says which cluster:

- in-process (the default): no Dask at all;
- ``workers=N`` (N > 1): a :class:`distributed.LocalCluster` of N single-threaded processes;
- ``scheduler=ADDRESS``: a Dask scheduler someone already started (``dask scheduler``);
- ``cluster=FILE``: a batch-queue cluster through dask-jobqueue (Slurm, PBS, SGE, LSF), its
  settings read from a small YAML file (see ``examples/cluster-slurm.yaml``);
- ``shard=Shard(i, n)``: no Dask; this process does the i-th of n shards of the rows
  (``#SBATCH --array``), and the shards write one manifest side by side.

Models (MediaPipe's landmarker, dlib's networks) are loaded once per worker process and kept
in :func:`cached`; on Dask the :class:`.worker_plugin.ModelCache` plugin closes them when the worker
goes. Workers are replaced after ``worker_lifetime_s`` (Dask's ``lifetime``), because
MediaPipe leaks memory over long runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from augmentface.errors import UsageError

T = TypeVar("T")

#: The job-queue systems ``cluster=FILE`` accepts (its ``system:`` entry), and their
#: dask-jobqueue classes.
CLUSTER_SYSTEMS = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
}


@dataclass(frozen=True)
class Shard:
    """The ``index``-th of ``count`` shards of a stage's rows (``--shard I/N``, 0-based).

    Rows go to shards by a stable hash of their image, so every row of one photo or video
    frame lands in the same shard (it is decoded once) whatever the order of the rows.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(f"shard must be I/N with 0 <= I < N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` -> Shard(I, N)."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise UsageError(f"shard must look like I/N (e.g. 0/4), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def holds(self, image_path: str) -> bool:
        """Whether the rows of ``image_path`` belong to this shard."""
        digest = hashlib.blake2b(image_path.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Execution:
    """How a stage runs its rows (see the module docstring).

    Parameters
    ----------
    workers : int
        Worker processes of a local Dask cluster; 1 runs in this process.
    scheduler : str or None
        Address of a running Dask scheduler (``tcp://host:8786``).
    cluster : Path or None
        YAML file of a dask-jobqueue cluster (``system: slurm`` and the cluster's keyword
        arguments, plus ``jobs: N``).
    shard : Shard or None
        Run only this shard, in this process.
    rows_per_task : int or None
        Rows a worker does in one task: large enough to amortise a task's overhead, small
        enough that a lost worker costs little. None: the stage's own choice
        (``runner.Stage.rows_per_task``).
    retries : int
        Extra attempts Dask gives a task that raised; a task whose workers keep dying is
        split into single rows, and a row that still kills its worker gets status ``crashed``.
    worker_lifetime_s : float or None
        Dask replaces each worker after about this long (MediaPipe leaks); None: never.
    """

    workers: int = 1
    scheduler: str | None = None
    cluster: Path | None = None
    shard: Shard | None = None
    rows_per_task: int | None = None
    retries: int = 1
    worker_lifetime_s: float | None = 3600.0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UsageError(f"workers must be >= 1, got {self.workers}")
        if self.rows_per_task is not None and self.rows_per_task < 1:
            raise UsageError(f"rows per task must be >= 1, got {self.rows_per_task}")
        if self.retries < 0:
            raise UsageError(f"retries must be >= 0, got {self.retries}")
        chosen = [
            name
            for name, on in (
                ("--workers", self.workers > 1),
                ("--scheduler", self.scheduler is not None),
                ("--cluster", self.cluster is not None),
                ("--shard", self.shard is not None),
            )
            if on
        ]
        if len(chosen) > 1:
            raise UsageError(f"choose one of {', '.join(chosen)}, not several")
        if self.cluster is not None:
            read_cluster_file(self.cluster)  # a bad file fails now, not after the stage's set-up

    @property
    def uses_dask(self) -> bool:
        return self.workers > 1 or self.scheduler is not None or self.cluster is not None


# --- models cached per worker process ---------------------------------------------------------

_CACHE: dict[str, Any] = {}


def cached(name: str, factory: Callable[[], T]) -> T:
    """The model ``name`` of this process, made by ``factory`` on first use.

    A task calls this for its landmarker or networks, so a worker loads each model once for
    every task it runs, not once per task.
    """
    if name not in _CACHE:
        _CACHE[name] = factory()
    return _CACHE[name]


def close_cached() -> None:
    """Close every cached model that can be closed (MediaPipe's graphs) and forget them all."""
    while _CACHE:
        _, model = _CACHE.popitem()
        close = getattr(model, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):  # a model that fails to close is gone anyway
                close()


# --- Dask clients -------------------------------------------------------------------------------


def _require_dask():
    try:
        import distributed
    except ImportError as exc:  # an optional engine fails only when asked for
        raise UsageError(
            "running on Dask needs the `distributed` package: pip install distributed"
        ) from exc
    return distributed


def read_cluster_file(path: Path) -> tuple[str, int, dict[str, Any]]:
    """(system, jobs, keyword arguments of the dask-jobqueue cluster) from a YAML file.

    Raises
    ------
    UsageError
        A missing or unreadable file, an unknown ``system``, or ``jobs`` below 1.
    """
    import yaml

    try:
        settings = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read the cluster file ({exc})") from exc
    if not isinstance(settings, dict):
        raise UsageError(f"{path}: a cluster file is a YAML mapping (system: slurm, ...)")
    settings = dict(settings)
    system = str(settings.pop("system", "")).lower()
    if system not in CLUSTER_SYSTEMS:
        raise UsageError(f"{path}: system must be one of {', '.join(CLUSTER_SYSTEMS)}")
    jobs = settings.pop("jobs", 1)
    if not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"{path}: jobs must be an integer >= 1, got {jobs!r}")
    return system, jobs, settings


def jobqueue_cluster(path: Path):
    """The dask-jobqueue cluster a cluster file describes (not yet scaled: no job submitted)."""
    system, _, settings = read_cluster_file(path)
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise UsageError("--cluster needs dask-jobqueue: pip install dask-jobqueue") from exc
    try:
        return getattr(dask_jobqueue, CLUSTER_SYSTEMS[system])(**settings)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{path}: {exc}") from exc


@contextlib.contextmanager
def dask_client(execution: Execution) -> Iterator[Any]:
    """A :class:`distributed.Client` for ``execution`` (None when it runs in-process), with
    :class:`.worker_plugin.ModelCache` registered; the cluster it started is closed on exit."""
    if not execution.uses_dask:
        yield None
        return
    distributed = _require_dask()
    import dask

    # Dask's INFO lines (workers joining, leaving) would bury the run's own one-line messages.
    logging.getLogger("distributed").setLevel(logging.WARNING)

    lifetime = (
        {}
        if execution.worker_lifetime_s is None
        else {
            "lifetime": f"{execution.worker_lifetime_s}s",
            "lifetime_stagger": f"{execution.worker_lifetime_s / 10}s",
            "lifetime_restart": True,
        }
    )
    with contextlib.ExitStack() as stack:
        # A task whose worker dies is given to another worker this many times before Dask
        # gives up on it (KilledWorker); the runner then splits it into single rows.
        # Only a task a worker is running is blamed when that worker dies: with
        # worker-saturation 1.0 no other task waits queued on it, so a crash never counts
        # against its innocent neighbours.
        settings = {
            "distributed.scheduler.allowed-failures": 2,
            "distributed.scheduler.worker-saturation": 1.0,
        }
        stack.enter_context(dask.config.set(settings))
        if execution.scheduler is not None:
            client = stack.enter_context(distributed.Client(execution.scheduler))
        elif execution.cluster is not None:
            cluster = stack.enter_context(jobqueue_cluster(execution.cluster))
            cluster.scale(jobs=read_cluster_file(execution.cluster)[1])
            client = stack.enter_context(distributed.Client(cluster))
        else:
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=execution.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    **lifetime,
                )
            )
            client = stack.enter_context(distributed.Client(cluster))
        from augmentface.stages.worker_plugin import ModelCache

        local = execution.scheduler is None and execution.cluster is None
        cores = (
            tuple(sorted(os.sched_getaffinity(0)))
            if local and hasattr(os, "sched_getaffinity")
            else None
        )
        client.register_plugin(ModelCache(cores), name=ModelCache.name)
        yield client
